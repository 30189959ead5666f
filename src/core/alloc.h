/* Cache-line aligned allocation, and the first touch of a large block. */
#ifndef DPT_CORE_ALLOC_H
#define DPT_CORE_ALLOC_H

#include <stddef.h>

#define DPT_CACHE_LINE 64
/* dpt_populate asks the kernel for blocks from this size on. */
#define DPT_POPULATE_MIN ((size_t)1 << 20)

/* 64-byte aligned block of at least bytes (rounded up), or NULL. */
void *dpt_alloc(size_t bytes);
/* A block of rows streamed start to end: on a 4 KiB page boundary, in
 * whole pages. A row block that starts a line into a page is read ~25%
 * slower by the linear models' gradient on a Zen core (the same rows at
 * page offsets 0 / 64 / 2048: 23.5 / 29.4 / 24.2 ms for 256 MB, 4 KiB
 * pages or huge pages alike); malloc's large blocks start 16 bytes in. */
#define DPT_PAGE ((size_t)4096)
void *dpt_alloc_pages(size_t bytes);
/* Same, zero-filled. */
void *dpt_calloc(size_t bytes);
/* A block for a data set, filled once and kept: from DPT_HUGE_MIN
 * on, on a 2 MiB boundary, in whole 2 MiB pages, advised MADV_HUGEPAGE
 * (used where transparent huge pages are "always" or "madvise"), so that
 * filling it takes a fault per 2 MiB instead of per 4 KiB (Fashion-MNIST's
 * 188 MB: 90 faults, not 46,000; each a hypervisor trip in a VM). Below,
 * dpt_alloc. Freed with dpt_free. */
#define DPT_HUGE_PAGE ((size_t)2 << 20)
#define DPT_HUGE_MIN  ((size_t)16 << 20)
void *dpt_alloc_large(size_t bytes);
void dpt_free(void *p);
/* First touch of a large block from the calling thread (its pages then
 * sit on that thread's NUMA node), all its pages populated by the kernel
 * in one call (MADV_POPULATE_WRITE), without a page fault each. 0; -1
 * where it cannot (before Linux 5.14, a block under DPT_POPULATE_MIN):
 * the caller then touches the block itself. Contents stay undefined. */
int dpt_populate(void *p, size_t bytes);

/* Round n floats up to a whole number of cache lines. */
static inline size_t dpt_pad_floats(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

#endif
