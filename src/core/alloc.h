/* Cache-line aligned allocation, and the first touch of a large block. */
#ifndef DPT_CORE_ALLOC_H
#define DPT_CORE_ALLOC_H

#include <stddef.h>

#define DPT_CACHE_LINE 64
/* dpt_populate asks the kernel for blocks from this size on. */
#define DPT_POPULATE_MIN ((size_t)1 << 20)

/* 64-byte aligned block of at least bytes (rounded up), or NULL. */
void *dpt_alloc(size_t bytes);
/* Same, zero-filled. */
void *dpt_calloc(size_t bytes);
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
