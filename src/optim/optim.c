/* The update step: GD, SGD, heavy-ball momentum and Nesterov, with weight
 * decay, warm-up and learning-rate schedules, as torch.optim.SGD does them. */
#include <math.h>

#include "dpt/optim.h"
#include "kernels/kernels.h"
#include "optim/optim_impl.h"

void dpt_optim_defaults(dpt_optim_spec *o)
{
    *o = (dpt_optim_spec){.kind = DPT_OPT_SGD,
                          .lr = 0.01,
                          .momentum = 0.9,
                          .batch = 32,
                          .schedule = DPT_LR_CONST,
                          .step_every = 1,
                          .step_factor = 1.0};
}

double dpt_optim_lr(const dpt_optim_spec *o, long step, long epoch, long steps_per_epoch)
{
    const long total_steps = o->epochs * steps_per_epoch;
    double lr = o->lr;
    switch (o->schedule) {
    case DPT_LR_CONST:
        break;
    case DPT_LR_STEP:
        if (o->step_every > 0) lr *= pow(o->step_factor, (double)(epoch / o->step_every));
        break;
    case DPT_LR_COSINE:
        if (total_steps > 0) lr *= 0.5 * (1 + cos(M_PI * (double)step / (double)total_steps));
        break;
    }
    if (o->warmup > 0 && step < o->warmup) lr *= (double)(step + 1) / (double)o->warmup;
    return lr;
}

int dpt_optim_update(const dpt_optim_spec *o, size_t lo, size_t hi, float *w, const float *gsum,
                     float *v, float gscale, float lr)
{
    return dpt_optim_update_sum(o, lo, hi, w, &gsum, 1, v, gscale, lr);
}

static int update(const dpt_optim_spec *o, size_t lo, size_t n, size_t ahead, float *w,
                  const float *const *gs, int ng, float *v, float gscale, float lr)
{
    static const dpt_update_rule rule[] = {
        [DPT_OPT_GD] = DPT_UPDATE_PLAIN,
        [DPT_OPT_SGD] = DPT_UPDATE_PLAIN,
        [DPT_OPT_MOMENTUM] = DPT_UPDATE_MOMENTUM,
        [DPT_OPT_NESTEROV] = DPT_UPDATE_NESTEROV,
    };
    if (!n || ng < 1) return 0;
    return dpt_kernels_get()->update(rule[o->kind], n, ahead, w + lo, gs, ng, lo, v ? v + lo : NULL,
                                     gscale, (float)o->weight_decay, (float)o->momentum, lr);
}

int dpt_optim_update_sum(const dpt_optim_spec *o, size_t lo, size_t hi, float *w,
                         const float *const *gs, int ng, float *v, float gscale, float lr)
{
    return hi > lo ? update(o, lo, hi - lo, hi - lo, w, gs, ng, v, gscale, lr) : 0;
}

int dpt_optim_update_ahead(const dpt_optim_spec *o, size_t n, size_t ahead, float *w,
                           const float *const *gs, int ng, float *v, float gscale, float lr)
{
    return update(o, 0, n, ahead > n ? ahead : n, w, gs, ng, v, gscale, lr);
}
