/* Cache-line aligned allocation. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

void *dpt_alloc(size_t bytes)
{
    size_t rounded = (bytes + DPT_CACHE_LINE - 1) & ~(size_t)(DPT_CACHE_LINE - 1);
    if (rounded < bytes) return NULL;
    if (rounded == 0) rounded = DPT_CACHE_LINE;
    return aligned_alloc(DPT_CACHE_LINE, rounded);
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
