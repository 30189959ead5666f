/* Cache-line aligned allocation; large blocks on transparent huge pages. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/alloc.h"

void *dpt_alloc(size_t bytes)
{
    size_t rounded = (bytes + DPT_CACHE_LINE - 1) & ~(size_t)(DPT_CACHE_LINE - 1);
    if (rounded < bytes) return NULL;
    if (rounded == 0) rounded = DPT_CACHE_LINE;
    if (rounded < DPT_HUGE_MIN) return aligned_alloc(DPT_CACHE_LINE, rounded);
    /* a data set, a thread's rows, a wide layer's activations: aligned to
     * and filled up to whole huge pages, and advised to take them (THP's
     * "madvise" mode, Debian's and Ubuntu's default, gives them only when
     * asked). A first touch then faults once per 2 MiB, not per 4 KiB
     * (in a VM each fault is a trip to the hypervisor), and a stream
     * through the block misses the TLB 512 times less often. */
    size_t huge = (rounded + DPT_HUGE_PAGE - 1) & ~(size_t)(DPT_HUGE_PAGE - 1);
    void *p = aligned_alloc(DPT_HUGE_PAGE, huge);
#ifdef MADV_HUGEPAGE
    if (p) madvise(p, huge, MADV_HUGEPAGE); /* advice: refused is no error */
#endif
    return p;
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
