/* Cache-line aligned allocation. */
#ifndef DPT_CORE_ALLOC_H
#define DPT_CORE_ALLOC_H

#include <stddef.h>

#define DPT_CACHE_LINE 64

/* 64-byte aligned block of at least bytes (rounded up), or NULL. */
void *dpt_alloc(size_t bytes);
/* Same, zero-filled. */
void *dpt_calloc(size_t bytes);
void dpt_free(void *p);

/* Round n floats up to a whole number of cache lines. */
static inline size_t dpt_pad_floats(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

#endif
