/* Engine overhead: time per step of the 10-20-1 MLP with one row per thread,
 * so the step is almost all barriers, reduction and update, at 1..16 threads
 * (oversubscribed past the core count on purpose), for both reductions.
 * Also the reduction alone for a large model (mlp-wide's 400K parameters).
 * Medians of several runs; prints a table. Not a test: nothing here passes
 * or fails on time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/engine.h"
#include "dpt/error.h"
#include "dpt/stats.h"
#include "dpt/topo.h"

#define REPS 7

typedef struct overhead {
    double step_us, reduce_us, update_us, wait_us;
} overhead;

static int on_epoch(const dpt_epoch_stats *st, void *ud)
{
    overhead *o = ud;
    o->step_us = st->seconds / st->steps * 1e6;
    o->reduce_us = st->mean.reduce / st->steps * 1e6;
    o->update_us = st->mean.update / st->steps * 1e6;
    o->wait_us = st->mean.wait / st->steps * 1e6;
    return 0;
}

static int measure(const dpt_model *m, const dpt_dataset *ds, int P, dpt_reduce red, size_t batch,
                   overhead *med)
{
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    o.kind = DPT_OPT_MOMENTUM;
    o.batch = batch;
    o.lr = 1e-5; /* tiny batches: keep far from divergence */
    dpt_engine_opts eo;
    dpt_engine_opts_defaults(&eo);
    eo.threads = P;
    eo.reduce = red;
    eo.shuffle = 0;
    dpt_engine *e;
    if (dpt_engine_create(&e, m, &o, ds, &eo)) return -1;
    if (dpt_engine_warning(e) && P <= dpt_topo_physical_cores())
        fprintf(stderr, "warning: %s\n", dpt_engine_warning(e));
    dpt_model_init_params(m, dpt_engine_params(e), 1, DPT_INIT_UNIFORM);
    double s[4][REPS];
    for (int r = 0; r < REPS; r++) {
        overhead o1;
        if (dpt_engine_train(e, 1, on_epoch, &o1)) return -1;
        s[0][r] = o1.step_us;
        s[1][r] = o1.reduce_us;
        s[2][r] = o1.update_us;
        s[3][r] = o1.wait_us;
    }
    med->step_us = dpt_stats_median(s[0], REPS);
    med->reduce_us = dpt_stats_median(s[1], REPS);
    med->update_us = dpt_stats_median(s[2], REPS);
    med->wait_us = dpt_stats_median(s[3], REPS);
    dpt_engine_destroy(e);
    return 0;
}

static int table(const char *title, const char *synth, const dpt_model_spec *spec,
                 int rows_per_thread)
{
    dpt_synth_spec sp;
    dpt_dataset ds;
    dpt_model m;
    if (dpt_synth_parse(&sp, synth) || dpt_synth_generate(&sp, &ds, 0) || dpt_model_init(&m, spec))
        return fprintf(stderr, "%s\n", dpt_last_error()), 1;
    printf("%s (%zu parameters), %d row(s) per thread per step; medians of %d epochs, us/step\n",
           title, m.n_params, rows_per_thread, REPS);
    printf("%8s %-8s %10s %10s %10s %10s\n", "threads", "reduce", "step", "reduce", "update",
           "wait");
    static const int Ps[] = {1, 2, 3, 4, 8, 16};
    for (int i = 0; i < 6; i++)
        for (int red = 0; red < 2; red++) {
            overhead o;
            if (measure(&m, &ds, Ps[i], (dpt_reduce)red, (size_t)Ps[i] * rows_per_thread, &o))
                return fprintf(stderr, "%s\n", dpt_last_error()), 1;
            printf("%8d %-8s %10.2f %10.2f %10.2f %10.2f\n", Ps[i], red ? "scatter" : "tree",
                   o.step_us, o.reduce_us, o.update_us, o.wait_us);
        }
    dpt_dataset_free(&ds);
    return 0;
}

int main(void)
{
    dpt_model_spec small = {
        .kind = DPT_MODEL_MLP, .inputs = 10, .n_hidden = 1, .hidden = {20}, .loss = DPT_LOSS_MSE};
    dpt_model_spec wide = {.kind = DPT_MODEL_MLP,
                           .inputs = 256,
                           .n_hidden = 2,
                           .hidden = {512, 512},
                           .classes = 10,
                           .loss = DPT_LOSS_CE};
    if (table("10-20-1 MLP step overhead", "teacher-mlp:n=32000,d=10", &small, 1)) return 1;
    putchar('\n');
    return table("256-512-512-10 MLP", "teacher-mlp:n=512,d=256,classes=10", &wide, 1);
}
