/* The optimizer step for the engine's callers that update a slice a block
 * at a time (not part of the public API). */
#ifndef DPT_OPTIM_IMPL_H
#define DPT_OPTIM_IMPL_H

#include <stddef.h>

#include "dpt/optim.h"

/* dpt_optim_update_sum over w[0, n), the sum of gs[u][0, n), u < ng, with
 * w[0, ahead) (ahead >= n) the caller's: the rest of its slice, whose lines
 * the kernel asks for while it updates this block (the kernel table's
 * update). The same bits as dpt_optim_update_sum. */
int dpt_optim_update_ahead(const dpt_optim_spec *o, size_t n, size_t ahead, float *w,
                           const float *const *gs, int ng, float *v, float gscale, float lr);

#endif
