/* Optimizer updates step by step against values computed by hand, with
 * PyTorch's conventions (torch.optim.SGD: v starts at 0, v = mu v + g,
 * nesterov uses g + mu v, weight decay adds wd w to g before momentum). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "dpt/engine.h"
#include "dpt/error.h"
#include "dpt/optim.h"
#include "kernels/kernels.h"

#define EQ(a, b)                                                                                   \
    cr_expect(fabs((double)(a) - (double)(b)) < 1e-6, "%s = %.9g, expected %.9g", #a, (double)(a), \
              (double)(b))

Test(optim, sgd_step)
{
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    o.kind = DPT_OPT_SGD;
    float w[2] = {1.0f, -2.0f}, gs[2] = {4.0f, 8.0f};
    /* mean gradient = gs / 4 = (1, 2); w -= 0.1 * g */
    cr_expect_eq(dpt_optim_update(&o, 0, 2, w, gs, NULL, 0.25f, 0.1f), 0);
    EQ(w[0], 0.9);
    EQ(w[1], -2.2);
}

Test(optim, momentum_two_steps_pytorch_convention)
{
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    o.kind = DPT_OPT_MOMENTUM;
    o.momentum = 0.9;
    float w[1] = {1.0f}, v[1] = {0}, g[1] = {0.5f};
    dpt_optim_update(&o, 0, 1, w, g, v, 1.0f, 0.1f);
    EQ(v[0], 0.5); /* first step: v = g */
    EQ(w[0], 0.95);
    g[0] = -1.0f;
    dpt_optim_update(&o, 0, 1, w, g, v, 1.0f, 0.1f);
    EQ(v[0], 0.9 * 0.5 - 1.0); /* -0.55 */
    EQ(w[0], 0.95 + 0.055);
}

Test(optim, nesterov_two_steps)
{
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    o.kind = DPT_OPT_NESTEROV;
    o.momentum = 0.5;
    float w[1] = {0.0f}, v[1] = {0}, g[1] = {1.0f};
    dpt_optim_update(&o, 0, 1, w, g, v, 1.0f, 1.0f);
    EQ(v[0], 1.0);
    EQ(w[0], -(1.0 + 0.5 * 1.0)); /* -1.5 */
    dpt_optim_update(&o, 0, 1, w, g, v, 1.0f, 1.0f);
    EQ(v[0], 1.5);
    EQ(w[0], -1.5 - (1.0 + 0.75));
}

Test(optim, weight_decay_and_slices)
{
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    o.kind = DPT_OPT_SGD;
    o.weight_decay = 0.1;
    float w[4] = {1, 2, 3, 4}, g[4] = {0, 0, 0, 0};
    dpt_optim_update(&o, 1, 3, w, g, NULL, 1.0f, 1.0f); /* only [1, 3) */
    EQ(w[0], 1);
    EQ(w[1], 2 - 0.2);
    EQ(w[2], 3 - 0.3);
    EQ(w[3], 4);
}

Test(optim, reports_non_finite_gradient)
{
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    o.kind = DPT_OPT_SGD;
    float w[3] = {0, 0, 0}, g[3] = {1, INFINITY, 0};
    cr_expect_neq(dpt_optim_update(&o, 0, 3, w, g, NULL, 1.0f, 0.1f), 0);
    w[1] = 0; /* the update above made it infinite */
    g[1] = NAN;
    cr_expect_neq(dpt_optim_update(&o, 0, 3, w, g, NULL, 1.0f, 0.1f), 0);
    w[1] = 0;
    g[1] = 2;
    cr_expect_eq(dpt_optim_update(&o, 0, 3, w, g, NULL, 1.0f, 0.1f), 0);
}

/* A finite gradient that carries a parameter past FLT_MAX: reported by
 * both kernel tables, in the vector body and in the tail, summed or not. */
Test(optim, reports_parameter_that_overflows)
{
    static const char *const isas[] = {"scalar", "avx2"};
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    o.kind = DPT_OPT_SGD;
    for (int k = 0; k < 2; k++) {
        if (k == 1 && !(dpt_cpu_has_avx2() && dpt_build_has_avx2())) continue;
        cr_assert_eq(dpt_kernels_select(isas[k]), 0);
        for (size_t at = 0; at < 11; at += 5) {
            float w[11] = {0}, g[11] = {0}, h[11] = {0};
            const float *gs[2] = {g, h};
            w[at] = 3e38f;
            g[at] = -3e38f;
            cr_expect_neq(dpt_optim_update(&o, 0, 11, w, g, NULL, 1.0f, 1.0f), 0, "%s, at %zu",
                          isas[k], at);
            cr_expect(isinf(w[at]));
            w[at] = 3e38f;
            cr_expect_neq(dpt_optim_update_sum(&o, 0, 11, w, gs, 2, NULL, 1.0f, 1.0f), 0,
                          "%s, at %zu, summed", isas[k], at);
            w[at] = 1e38f; /* finite result: no report */
            g[at] = -1e38f;
            cr_expect_eq(dpt_optim_update(&o, 0, 11, w, g, NULL, 1.0f, 1.0f), 0);
        }
    }
    cr_assert_eq(dpt_kernels_select("auto"), 0);
}

Test(optim, schedules)
{
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    o.lr = 1.0;
    o.epochs = 10; /* horizon: 10 epochs of 10 steps */
    EQ(dpt_optim_lr(&o, 5, 2, 10), 1.0);
    o.schedule = DPT_LR_STEP;
    o.step_every = 2;
    o.step_factor = 0.5;
    EQ(dpt_optim_lr(&o, 0, 1, 10), 1.0);
    EQ(dpt_optim_lr(&o, 0, 2, 10), 0.5);
    EQ(dpt_optim_lr(&o, 0, 5, 10), 0.25);
    o.schedule = DPT_LR_COSINE;
    EQ(dpt_optim_lr(&o, 0, 0, 10), 1.0);
    EQ(dpt_optim_lr(&o, 50, 0, 10), 0.5);
    EQ(dpt_optim_lr(&o, 100, 0, 10), 0.0);
    o.schedule = DPT_LR_CONST;
    o.warmup = 4;
    EQ(dpt_optim_lr(&o, 0, 0, 10), 0.25);
    EQ(dpt_optim_lr(&o, 3, 0, 10), 1.0);
    EQ(dpt_optim_lr(&o, 9, 0, 10), 1.0);
}

/* The engine's SGD with momentum on a data set small enough to do by hand:
 * y = 2x, one weight, no bias, batches of 2 in order. */
Test(optim, engine_momentum_steps_by_hand)
{
    dpt_dataset ds;
    cr_assert_eq(dpt_dataset_alloc(&ds, 4, 1, 1), 0);
    const float xs[4] = {1, 2, 3, 4};
    for (int i = 0; i < 4; i++) {
        ds.X[i * ds.ld] = xs[i];
        ds.y[i] = 2 * xs[i];
    }
    dpt_model_spec s = {.kind = DPT_MODEL_LINEAR, .inputs = 1, .bias = 0};
    dpt_model m;
    cr_assert_eq(dpt_model_init(&m, &s), 0);
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    o.kind = DPT_OPT_MOMENTUM;
    o.momentum = 0.9;
    o.lr = 0.01;
    o.batch = 2;
    dpt_engine_opts eo;
    dpt_engine_opts_defaults(&eo);
    eo.threads = 2;
    eo.shuffle = 0;
    eo.pin.policy = DPT_PIN_NONE;
    dpt_engine *e;
    cr_assert_eq(dpt_engine_create(&e, &m, &o, &ds, &eo), 0, "%s", dpt_last_error());
    float *w = dpt_engine_params(e);
    w[0] = 0;
    cr_assert_eq(dpt_engine_train(e, 1, NULL, NULL), 0);
    /* step 1, rows x=1,2: g = mean 2(wx - 2x)x = 2*(-2*1 - 2*4)/2 = -10; v = -10; w = 0.1
     * step 2, rows x=3,4 at w=0.1: g = mean 2(0.1-2)x^2 = -1.9*(9+16) = -47.5;
     *         v = 0.9*-10 - 47.5 = -56.5; w = 0.1 + 0.565 = 0.665 */
    EQ(w[0], 0.665);
    dpt_engine_destroy(e);
    dpt_dataset_free(&ds);
}

/* Global-norm clipping, by hand: y = 2x on x = 1..4, w = 0, full batch:
 * g = mean 2(0 - 2x)x = -4 mean(x^2) = -30, clipped to norm 0.5, lr 1. */
Test(optim, engine_clips_the_global_gradient_norm)
{
    dpt_dataset ds;
    cr_assert_eq(dpt_dataset_alloc(&ds, 4, 1, 1), 0);
    for (int i = 0; i < 4; i++) {
        ds.X[i * ds.ld] = (float)(i + 1);
        ds.y[i] = 2.0f * (float)(i + 1);
    }
    dpt_model_spec s = {.kind = DPT_MODEL_LINEAR, .inputs = 1, .bias = 0};
    dpt_model m;
    cr_assert_eq(dpt_model_init(&m, &s), 0);
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    o.kind = DPT_OPT_GD;
    o.lr = 1.0;
    o.clip_norm = 0.5;
    dpt_engine_opts eo;
    dpt_engine_opts_defaults(&eo);
    eo.threads = 3;
    eo.pin.policy = DPT_PIN_NONE;
    dpt_engine *e;
    cr_assert_eq(dpt_engine_create(&e, &m, &o, &ds, &eo), 0, "%s", dpt_last_error());
    float *w = dpt_engine_params(e);
    w[0] = 0;
    cr_assert_eq(dpt_engine_train(e, 1, NULL, NULL), 0);
    EQ(w[0], 0.5);
    dpt_engine_destroy(e);
    dpt_dataset_free(&ds);
}
