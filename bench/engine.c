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
#include "dpt/run.h"
#include "dpt/stats.h"
#include "dpt/topo.h"

#define REPS 7

typedef struct overhead {
    double step_us, reduce_us, update_us, wait_us;
} overhead;

typedef struct epochs {
    double v[4][REPS];
    int n;
} epochs;

/* One epoch's per-step figures, us. */
static int on_epoch(const dpt_run_epoch *ep, void *ud)
{
    epochs *x = ud;
    const dpt_epoch_stats *st = ep->stats;
    const double per_step = 1e6 / (double)st->steps;
    x->v[0][x->n] = st->seconds * per_step;
    x->v[1][x->n] = st->mean.reduce * per_step;
    x->v[2][x->n] = st->mean.update * per_step;
    x->v[3][x->n] = st->mean.wait * per_step;
    x->n++;
    return 0;
}

/* REPS epochs of one run, medians of the per-step figures. */
static int measure(const dpt_model *m, const dpt_dataset *ds, int P, dpt_reduce red, size_t batch,
                   overhead *med)
{
    dpt_run_spec s;
    dpt_run_spec_defaults(&s);
    s.train = ds;
    s.model = m->spec;
    s.opt.kind = DPT_OPT_MOMENTUM;
    s.opt.batch = batch;
    s.opt.lr = 1e-5; /* tiny batches: keep far from divergence */
    s.engine.threads = P;
    s.engine.reduce = red;
    s.engine.shuffle = 0;
    s.epochs = REPS;
    s.evaluate = 0;
    epochs x = {.n = 0};
    s.on_epoch = on_epoch;
    s.ud = &x;
    dpt_run *r;
    if (dpt_run_create(&r, &s)) return -1;
    const char *w = dpt_engine_warning(dpt_run_engine(r));
    if (w && P <= dpt_topo_physical_cores()) fprintf(stderr, "warning: %s\n", w);
    dpt_run_result res;
    int rc = dpt_run_train(r, &res);
    dpt_run_destroy(r);
    if (rc) return -1;
    med->step_us = dpt_stats_median(x.v[0], (size_t)x.n);
    med->reduce_us = dpt_stats_median(x.v[1], (size_t)x.n);
    med->update_us = dpt_stats_median(x.v[2], (size_t)x.n);
    med->wait_us = dpt_stats_median(x.v[3], (size_t)x.n);
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
