/* Optimizers over the flat parameter buffer. The update of a parameter
 * slice [lo, hi) depends on that slice alone, so threads update disjoint
 * slices in parallel. Conventions are PyTorch's (torch.optim.SGD). */
#ifndef DPT_OPTIM_H
#define DPT_OPTIM_H

#include "dpt/export.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    DPT_OPT_GD = 0,       /* full-batch gradient descent */
    DPT_OPT_SGD = 1,      /* mini-batch SGD */
    DPT_OPT_MOMENTUM = 2, /* heavy ball: v = mu v + g; w -= lr v */
    DPT_OPT_NESTEROV = 3  /* v = mu v + g; w -= lr (g + mu v) */
} dpt_opt_kind;

typedef enum { DPT_LR_CONST = 0, DPT_LR_STEP = 1, DPT_LR_COSINE = 2 } dpt_lr_schedule;

typedef struct dpt_optim_spec {
    dpt_opt_kind kind;
    double lr;
    double momentum;     /* mu, for momentum and nesterov */
    size_t batch;        /* rows per step; 0 = the whole data set */
    double weight_decay; /* L2 added to the gradient: g += wd w */
    dpt_lr_schedule schedule;
    long step_every; /* DPT_LR_STEP: multiply by step_factor every step_every epochs */
    double step_factor;
    long warmup;      /* linear warm-up over this many steps */
    double clip_norm; /* clip the global gradient norm to this (0: off) */
    long epochs;      /* schedule horizon: the run's length in epochs, however many
                         dpt_engine_train calls it takes; DPT_LR_COSINE needs it */
} dpt_optim_spec;

/* Defaults: sgd, lr 0.01, momentum 0.9, batch 32, constant rate. */
DPT_API void dpt_optim_defaults(dpt_optim_spec *o);

/* Whether the optimizer keeps a velocity buffer. */
static inline int dpt_optim_has_velocity(const dpt_optim_spec *o)
{
    return o->kind == DPT_OPT_MOMENTUM || o->kind == DPT_OPT_NESTEROV;
}

/* Learning rate of a step (0-based, counted from the run's start) in an
 * epoch (0-based) under the schedule and warm-up. The cosine schedule runs
 * over the horizon, o->epochs x steps_per_epoch steps (constant when
 * o->epochs is 0). */
DPT_API double dpt_optim_lr(const dpt_optim_spec *o, long step, long epoch, long steps_per_epoch);

/* One update of w[lo:hi) from the summed gradient gsum[lo:hi):
 * g = gscale * gsum + wd * w, then the rule of o->kind with rate lr.
 * v (NULL unless dpt_optim_has_velocity) has the same layout as w.
 * Returns nonzero when a gradient entry in the slice, or an updated
 * parameter, is not finite (a finite gradient can still overflow w). */
DPT_API int dpt_optim_update(const dpt_optim_spec *o, size_t lo, size_t hi, float *w,
                             const float *gsum, float *v, float gscale, float lr);
/* The same with the sum of ng arrays gs[u] as gsum, added in the order
 * ((gs[0] + gs[1]) + gs[2]) + ..., in one pass: the last step of a
 * reduce-scatter fused with the update (gs are only read). */
DPT_API int dpt_optim_update_sum(const dpt_optim_spec *o, size_t lo, size_t hi, float *w,
                                 const float *const *gs, int ng, float *v, float gscale, float lr);

#ifdef __cplusplus
}
#endif
#endif
