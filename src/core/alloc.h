/* Cache-line aligned allocation. */
#ifndef DPT_CORE_ALLOC_H
#define DPT_CORE_ALLOC_H

#include <stddef.h>

#define DPT_CACHE_LINE 64
/* Blocks of DPT_HUGE_MIN bytes or more are aligned to DPT_HUGE_PAGE and
 * advised onto transparent huge pages (x86-64's 2 MiB). */
#define DPT_HUGE_PAGE ((size_t)2 << 20)
#define DPT_HUGE_MIN  ((size_t)4 << 20)

/* 64-byte aligned block of at least bytes (rounded up), or NULL; from
 * DPT_HUGE_MIN bytes on huge-page aligned and advised. */
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
