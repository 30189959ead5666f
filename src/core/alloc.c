/* Cache-line aligned allocation, and the first touch of a large block. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/alloc.h"

void *dpt_alloc(size_t bytes)
{
    size_t rounded = (bytes + DPT_CACHE_LINE - 1) & ~(size_t)(DPT_CACHE_LINE - 1);
    if (rounded < bytes) return NULL;
    if (rounded == 0) rounded = DPT_CACHE_LINE;
    return aligned_alloc(DPT_CACHE_LINE, rounded);
}

void *dpt_alloc_pages(size_t bytes)
{
    size_t rounded = (bytes + DPT_PAGE - 1) & ~(size_t)(DPT_PAGE - 1);
    if (rounded < bytes) return NULL;
    if (rounded == 0) rounded = DPT_PAGE;
    return aligned_alloc(DPT_PAGE, rounded);
}

void *dpt_alloc_large(size_t bytes)
{
#ifdef MADV_HUGEPAGE
    if (bytes >= DPT_HUGE_MIN) {
        size_t rounded = (bytes + DPT_HUGE_PAGE - 1) & ~(size_t)(DPT_HUGE_PAGE - 1);
        if (rounded < bytes) return NULL;
        void *p = aligned_alloc(DPT_HUGE_PAGE, rounded);
        if (p) madvise(p, rounded, MADV_HUGEPAGE);
        return p;
    }
#endif
    return dpt_alloc(bytes);
}

void *dpt_calloc(size_t bytes)
{
    void *p = dpt_alloc(bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

void dpt_free(void *p)
{
    free(p);
}

int dpt_populate(void *p, size_t bytes)
{
#ifdef MADV_POPULATE_WRITE
    /* the whole pages inside the block at once, in the kernel: one call
     * instead of a fault per 4 KiB page (in a VM each fault is a trip to
     * the hypervisor); the bytes of the partial pages at its ends are
     * written, which touches those */
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)p;
    const uintptr_t lo = (a + page - 1) & ~(page - 1), hi = (a + bytes) & ~(page - 1);
    if (bytes >= DPT_POPULATE_MIN && hi > lo &&
        !madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE)) {
        memset(p, 0, lo - a);
        memset((void *)hi, 0, a + bytes - hi);
        return 0;
    }
#endif
    (void)p, (void)bytes;
    return -1; /* before Linux 5.14, or a small block: the caller touches it */
}
