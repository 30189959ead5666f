/* The update step: GD, SGD, heavy-ball momentum and Nesterov, with weight
 * decay, warm-up and learning-rate schedules, as torch.optim.SGD does them. */
#include <math.h>

#include "dpt/optim.h"

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

double dpt_optim_lr(const dpt_optim_spec *o, long step, long epoch, long total_steps,
                    long total_epochs)
{
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
    (void)total_epochs;
    if (o->warmup > 0 && step < o->warmup) lr *= (double)(step + 1) / (double)o->warmup;
    return lr;
}

int dpt_optim_update(const dpt_optim_spec *o, size_t lo, size_t hi, float *w, const float *gsum,
                     float *v, float gscale, float lr)
{
    const float wd = (float)o->weight_decay, mu = (float)o->momentum;
    float bad = 0; /* stays finite (0) unless some g is inf or nan */
    switch (o->kind) {
    case DPT_OPT_GD:
    case DPT_OPT_SGD:
        for (size_t i = lo; i < hi; i++) {
            float g = gscale * gsum[i] + wd * w[i];
            bad += g - g;
            w[i] -= lr * g;
        }
        break;
    case DPT_OPT_MOMENTUM:
        for (size_t i = lo; i < hi; i++) {
            float g = gscale * gsum[i] + wd * w[i];
            bad += g - g;
            v[i] = mu * v[i] + g;
            w[i] -= lr * v[i];
        }
        break;
    case DPT_OPT_NESTEROV:
        for (size_t i = lo; i < hi; i++) {
            float g = gscale * gsum[i] + wd * w[i];
            bad += g - g;
            v[i] = mu * v[i] + g;
            w[i] -= lr * (g + mu * v[i]);
        }
        break;
    }
    return bad != 0 || isnan(bad);
}
