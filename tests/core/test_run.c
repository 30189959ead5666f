/* The run layer through the library alone: a run equals the engine driven
 * by hand, bit for bit; warm-up, per-epoch metrics and the callbacks leave
 * the result alone; labels are checked; the workload registry; the bench
 * sweep and the tuning race on a small problem, oversubscribed. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/error.h"
#include "dpt/compare.h"
#include "dpt/run.h"
#include "ref.h"
#include "run/sweep.h"

/* The small MLP of ref.c as a run spec. */
static void small_spec(dpt_run_spec *s, dpt_model *m, dpt_dataset *ds, int threads)
{
    dpt_optim_spec o;
    cr_assert_eq(ref_small_mlp(m, ds, &o, 300), 0);
    dpt_run_spec_defaults(s);
    s->train = ds;
    s->model = m->spec;
    s->opt = o;
    ref_engine_opts(&s->engine, threads, 1);
    s->engine.seed = 7;
    s->epochs = 3;
}

/* The same training by hand: engine, initial parameters, epochs. */
static float *by_hand(const dpt_model *m, const dpt_dataset *ds, const dpt_run_spec *s)
{
    dpt_optim_spec o = s->opt;
    o.epochs = s->epochs;
    dpt_engine *e;
    cr_assert_eq(dpt_engine_create(&e, m, &o, ds, &s->engine), 0, "%s", dpt_last_error());
    dpt_model_init_params(m, dpt_engine_params(e), s->engine.seed, s->engine.init);
    cr_assert_eq(dpt_engine_train(e, s->epochs, NULL, NULL), 0, "%s", dpt_last_error());
    float *w = malloc(m->n_params * sizeof *w);
    memcpy(w, dpt_engine_params(e), m->n_params * sizeof *w);
    dpt_engine_destroy(e);
    return w;
}

Test(run, equals_the_engine_by_hand)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_run_spec s;
    small_spec(&s, &m, &ds, 3);
    float *want = by_hand(&m, &ds, &s), *got;
    dpt_run_result res;
    cr_assert_eq(dpt_run_once(&s, &res, &got), 0, "%s", dpt_last_error());
    cr_assert_eq(memcmp(want, got, m.n_params * sizeof *got), 0);
    cr_assert_eq(res.epochs, 3);
    cr_assert_eq(res.steps, 5); /* 300 rows, batch 64 */
    cr_assert(res.seconds > 0);
    cr_assert(isfinite(res.train.loss) && isfinite(res.train.accuracy));
    cr_assert(isnan(res.test.loss), "no test set: no test metrics");
    cr_assert_eq(res.diverged, 0);
    free(want);
    free(got);
    dpt_dataset_free(&ds);
}

typedef struct seen {
    int calls, evaluated;
    unsigned mask;  /* bit e: epoch e was evaluated */
    int nan_others; /* epochs without metrics whose losses are NaN */
    double last_train_loss;
} seen;

static int count_epochs(const dpt_run_epoch *ep, void *ud)
{
    seen *c = ud;
    c->calls++;
    cr_assert_eq(ep->stats->epoch, c->calls);
    if (ep->evaluated) {
        c->evaluated++;
        c->mask |= 1u << ep->stats->epoch;
        c->last_train_loss = ep->train.loss;
    } else {
        c->nan_others += isnan(ep->train.loss) && isnan(ep->test.loss);
    }
    return 0;
}

/* s run as it is, then with warmup epochs first and metrics every
 * eval_epochs (c counts them): the same parameters, and the last epoch's
 * metrics, where it was evaluated, are the run's final ones. */
static void run_with_metrics(dpt_run_spec *s, const dpt_model *m, int warmup, int eval_epochs,
                             seen *c)
{
    float *plain, *other;
    dpt_run_result a, b;
    cr_assert_eq(dpt_run_once(s, &a, &plain), 0, "%s", dpt_last_error());
    s->warmup = warmup;
    s->eval_epochs = eval_epochs;
    s->on_epoch = count_epochs;
    s->ud = c;
    cr_assert_eq(dpt_run_once(s, &b, &other), 0, "%s", dpt_last_error());
    cr_assert_eq(memcmp(plain, other, m->n_params * sizeof *plain), 0);
    cr_expect_eq(c->last_train_loss, b.train.loss, "the last epoch's metrics are the final ones");
    cr_expect_eq(a.train.loss, b.train.loss);
    free(plain);
    free(other);
}

/* Metrics after every epoch (one engine call per epoch) and a warm-up
 * followed by a reset change nothing in the parameters. */
Test(run, epochs_warmup_and_metrics_keep_the_bits)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_run_spec s;
    small_spec(&s, &m, &ds, 2);
    seen c = {0};
    run_with_metrics(&s, &m, 2, 1, &c);
    cr_expect_eq(c.calls, 3);
    cr_expect_eq(c.evaluated, 3);
    dpt_dataset_free(&ds);
}

/* eval_epochs 2 over 5 epochs: metrics after epochs 2, 4 and the last, the
 * others handed over without them (NaN losses). */
Test(run, metrics_every_nth_epoch_and_the_last)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_run_spec s;
    small_spec(&s, &m, &ds, 2);
    s.epochs = 5;
    seen c = {0};
    run_with_metrics(&s, &m, 0, 2, &c);
    cr_expect_eq(c.calls, 5);
    cr_expect_eq(c.mask, (1u << 2) | (1u << 4) | (1u << 5), "evaluated epochs: mask %#x", c.mask);
    cr_expect_eq(c.nan_others, 2);
    dpt_dataset_free(&ds);
}

/* A negative interval is refused, not taken as "at the end". */
Test(run, negative_eval_interval_is_refused)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_run_spec s;
    small_spec(&s, &m, &ds, 1);
    s.eval_epochs = -2;
    dpt_run *r;
    cr_assert_eq(dpt_run_create(&r, &s), DPT_EINVAL);
    cr_assert_not_null(strstr(dpt_last_error(), "eval_epochs"), "%s", dpt_last_error());
    dpt_dataset_free(&ds);
}

static int stop_after_one(const dpt_run_epoch *ep, void *ud)
{
    (void)ep;
    (void)ud;
    return 1;
}

Test(run, callback_stops)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_run_spec s;
    small_spec(&s, &m, &ds, 1);
    s.on_epoch = stop_after_one;
    dpt_run_result res;
    cr_assert_eq(dpt_run_once(&s, &res, NULL), 0, "%s", dpt_last_error());
    cr_assert_eq(res.epochs, 1);
    cr_assert_eq(res.stopped, 1);
    dpt_dataset_free(&ds);
}

Test(run, labels_are_checked)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_run_spec s;
    small_spec(&s, &m, &ds, 1);
    ds.y[17] = 3; /* the model has 3 classes: ids 0..2 */
    dpt_run *r;
    cr_assert_eq(dpt_run_create(&r, &s), DPT_EINVAL);
    cr_assert_not_null(strstr(dpt_last_error(), "training set"), "%s", dpt_last_error());
    cr_assert_not_null(strstr(dpt_last_error(), "row 18"), "%s", dpt_last_error());
    dpt_dataset_free(&ds);
}

Test(run, model_from_the_data)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_run_spec s;
    small_spec(&s, &m, &ds, 1);
    s.model.inputs = 0;
    s.model.classes = 0;
    ds.classes = 0; /* from the labels: ids 0..2 */
    dpt_run *r;
    cr_assert_eq(dpt_run_create(&r, &s), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_run_model(r)->width[0], 6);
    cr_assert_eq(dpt_model_outputs(dpt_run_model(r)), 3);
    dpt_run_destroy(r);
    dpt_dataset_free(&ds);
}

Test(run, workload_registry)
{
    cr_assert_eq(dpt_workload_count(), 6);
    const dpt_workload *w = dpt_workload_find("mlp-seed-sgd");
    cr_assert_not_null(w);
    cr_assert_eq(w->model.kind, DPT_MODEL_MLP);
    cr_assert_eq(w->model.hidden[0], 20);
    cr_assert_eq(w->opt.batch, 256);
    cr_assert_eq(w->seed, 3);
    cr_assert_null(dpt_workload_find("mlp-seeds"));
    cr_assert_not_null(strstr(dpt_last_error(), "fmnist-mlp"), "names the workloads: %s",
                       dpt_last_error());
    for (int i = 0; i < dpt_workload_count(); i++)
        cr_assert_eq(dpt_workload_find(dpt_workload_at(i)->name), dpt_workload_at(i));
    cr_assert_null(dpt_workload_at(6));
}

/* A workload's data and spec through the library: a small copy of
 * mlp-seed-sgd (its generator with fewer rows) trains to a finite loss. */
Test(run, workload_loads_and_runs)
{
    dpt_workload w = *dpt_workload_find("mlp-seed-sgd");
    w.synth = "teacher-mlp:n=2000,d=10,hidden=20,seed=3,noise=0.01";
    dpt_dataset train, test;
    cr_assert_eq(dpt_workload_load(&w, 2, &train, &test, NULL), 0, "%s", dpt_last_error());
    cr_assert_eq(train.n, 2000);
    cr_assert_eq(test.n, 0);
    dpt_run_spec s;
    dpt_run_spec_defaults(&s);
    s.train = &train;
    s.model = w.model;
    s.opt = w.opt;
    s.engine.seed = w.seed;
    s.engine.init = w.init;
    s.engine.shuffle = w.shuffle;
    s.engine.threads = 2;
    s.engine.pin.policy = DPT_PIN_NONE;
    s.epochs = w.epochs;
    dpt_run_result res;
    cr_assert_eq(dpt_run_once(&s, &res, NULL), 0, "%s", dpt_last_error());
    cr_assert(res.train.loss > 0 && res.train.loss < 1, "loss %g", res.train.loss);
    dpt_dataset_free(&train);
}

Test(run, sweep_rows_and_bits)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_run_spec s;
    small_spec(&s, &m, &ds, 1);
    s.epochs = 2;
    dpt_sweep_spec sw = {0};
    sw.workload = "small";
    sw.threads[0] = 1;
    sw.threads[1] = 3; /* oversubscribed on a 2-core machine, on purpose */
    sw.nthreads = 2;
    strcpy(sw.pins[0], "none");
    sw.npins = 1;
    sw.reps = 3;
    sw.warmup = 1;
    dpt_bench_report rep;
    cr_assert_eq(dpt_bench_sweep(&s, &sw, &rep), 0, "%s", dpt_last_error());
    cr_assert_eq(rep.nresults, 2);
    cr_assert_eq(rep.nlimits, 0);
    cr_assert_str_eq(rep.context.engine,
                     "reduce=scatter balance=static shuffle=epoch batching=global leaves=0 "
                     "comm-overlap=auto domain=auto");
    for (size_t i = 0; i < 2; i++) {
        const dpt_bench_result *r = &rep.results[i];
        cr_assert_str_eq(r->workload, "small");
        cr_assert_eq(r->threads, i ? 3 : 1);
        cr_assert_eq(r->ranks, 1);
        cr_assert_eq(r->reps, 3);
        cr_assert_eq(r->batch, 64);
        for (int k = 0; k < 3; k++) cr_assert(r->samples[k] > 0);
        cr_assert(r->phases.compute > 0 && isfinite(r->phases.update));
        cr_assert(r->samples_per_second > 0);
        /* the last repetition's model is the run's, at that thread count */
        s.engine.threads = r->threads;
        dpt_run_result one;
        cr_assert_eq(dpt_run_once(&s, &one, NULL), 0, "%s", dpt_last_error());
        cr_assert_eq(r->final_loss, one.train.loss);
        cr_assert_eq(r->final_accuracy, one.train.accuracy);
        /* the split the engine used: this small model has no layer split */
        cr_assert_str_eq(r->split, "data");
        cr_assert_eq(one.split, DPT_SPLIT_DATA);
    }
    cr_assert_float_eq(rep.results[0].speedup, 1.0, 1e-12);
    dpt_bench_report_free(&rep);
    dpt_dataset_free(&ds);
}

/* The phase medians take every repetition (once only the first 64). */
Test(run, sweep_row_medians_use_every_repetition)
{
    enum { REPS = 70 };
    dpt_sweep_sample sm[REPS];
    memset(sm, 0, sizeof sm);
    for (int r = 0; r < REPS; r++) {
        sm[r].secs = 1 + 0.01 * r;
        sm[r].phases.compute = r;
        sm[r].phases.wait = 2.0 * r;
        sm[r].imbalance = 1 + r;
        sm[r].loss = r;
    }
    dpt_run_work work = {100, 0, 600};
    dpt_bench_report rep;
    dpt_bench_report_init(&rep);
    cr_assert_eq(dpt_sweep_add_row(&rep, "w", 1, 2, "compact", 32, &work, sm, REPS), 0);
    const dpt_bench_result *r = &rep.results[0];
    cr_assert_eq(r->reps, REPS);
    cr_assert_float_eq(r->phases.compute, 34.5, 1e-12); /* of 0..69; of 0..63: 31.5 */
    cr_assert_float_eq(r->phases.wait, 69.0, 1e-12);
    cr_assert_float_eq(r->imbalance, 35.5, 1e-12);
    cr_assert_eq(r->final_loss, 69);
    cr_assert_eq(r->work_flops, 600);
    dpt_bench_report_free(&rep);
}

Test(run, sweep_refuses_empty_settings)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_run_spec s;
    small_spec(&s, &m, &ds, 1);
    dpt_sweep_spec sw = {0};
    sw.workload = "small";
    sw.reps = 1;
    dpt_bench_report rep;
    cr_assert_eq(dpt_bench_sweep(&s, &sw, &rep), DPT_EINVAL);
    cr_assert_not_null(strstr(dpt_last_error(), "thread counts"), "%s", dpt_last_error());
    dpt_dataset_free(&ds);
}

Test(run, tune_race)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_run_spec s;
    small_spec(&s, &m, &ds, 1);
    s.epochs = 1;
    dpt_tune_candidate c[2] = {{.threads = 1, .pin = "none"}, {.threads = 2, .pin = "none"}};
    dpt_tune_options o;
    dpt_tune_options_defaults(&o);
    o.max_reps = 3;
    o.confirm_reps = 3;
    dpt_tune_result res;
    cr_assert_eq(dpt_tune_spec(&s, c, 2, &o, &res), 0, "%s", dpt_last_error());
    cr_assert(res.best == 0 || res.best == 1);
    cr_assert(res.runs >= 4, "every candidate ran at least its first repetitions");
    for (int i = 0; i < 2; i++) cr_assert(res.entries[i].nsamples >= 2);
    dpt_tune_result_free(&res);
    /* a candidate that cannot run stops the race with its status */
    dpt_tune_candidate bad = {.threads = 1, .pin = "nonsense"};
    cr_assert_lt(dpt_tune_spec(&s, &bad, 1, &o, &res), 0);
    dpt_dataset_free(&ds);
}

/* The whole gate through the library: a sweep, then the compare gate on
 * its report against itself (the same: pass) and against a copy slower
 * than every one of its repetitions (caught). */
Test(run, sweep_then_compare)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_run_spec s;
    small_spec(&s, &m, &ds, 1);
    s.epochs = 1;
    dpt_sweep_spec sw = {0};
    sw.workload = "small";
    sw.threads[0] = 1;
    sw.threads[1] = 2;
    sw.nthreads = 2;
    strcpy(sw.pins[0], "none");
    sw.npins = 1;
    sw.reps = 5;
    dpt_bench_report rep, slow;
    cr_assert_eq(dpt_bench_sweep(&s, &sw, &rep), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_bench_sweep(&s, &sw, &slow), 0, "%s", dpt_last_error());
    /* slower than every repetition of the base, whatever the noise */
    for (size_t i = 0; i < slow.nresults; i++) {
        double most = 0;
        for (int k = 0; k < rep.results[i].reps; k++)
            most = rep.results[i].samples[k] > most ? rep.results[i].samples[k] : most;
        for (int k = 0; k < slow.results[i].reps; k++)
            slow.results[i].samples[k] = 2 * most * (1 + 0.01 * k);
    }
    dpt_compare_opts o;
    dpt_compare_opts_defaults(&o);
    dpt_compare_result same, worse;
    cr_assert_eq(dpt_compare_reports(&rep, &rep, &o, &same), 0, "%s", dpt_last_error());
    cr_assert_eq(same.nrows, 2);
    cr_assert_eq(same.outcome, DPT_COMPARE_PASS);
    for (size_t i = 0; i < same.nrows; i++) cr_assert_eq(same.rows[i].verdict, DPT_VERDICT_SAME);
    cr_assert_eq(dpt_compare_reports(&rep, &slow, &o, &worse), 0, "%s", dpt_last_error());
    cr_assert_eq(worse.outcome, DPT_COMPARE_FAIL);
    cr_assert_eq(worse.exit_status, 1);
    for (size_t i = 0; i < worse.nrows; i++) {
        cr_assert_eq(worse.rows[i].verdict, DPT_VERDICT_SLOWER);
        cr_assert_gt(worse.rows[i].change, 1.0);
        /* 5 vs 5, fully apart: the exact p, where the base's repetitions
         * are distinct (two equal timings make it the tie-corrected normal
         * approximation's, still below alpha) */
        const dpt_bench_result *b = &rep.results[worse.rows[i].base_index];
        cr_assert_eq(b->reps, 5);
        int tied = 0;
        for (int k = 0; k < b->reps; k++)
            for (int q = 0; q < k; q++) tied |= b->samples[k] == b->samples[q];
        if (tied)
            cr_assert_lt(worse.rows[i].p, o.alpha, "p %g", worse.rows[i].p);
        else
            cr_assert_float_eq(worse.rows[i].p, 2.0 / 252, 1e-12, "p %g, samples %g %g %g %g %g",
                               worse.rows[i].p, b->samples[0], b->samples[1], b->samples[2],
                               b->samples[3], b->samples[4]);
    }
    dpt_compare_result_free(&same);
    dpt_compare_result_free(&worse);
    dpt_bench_report_free(&rep);
    dpt_bench_report_free(&slow);
    dpt_dataset_free(&ds);
}

/* Work is counted as executed: the first layer computes no input
 * gradient, so 784-256-128-10 does ~28% less than 6 x parameters. */
Test(run, flops_as_executed)
{
    dpt_model_spec s = {.kind = DPT_MODEL_MLP,
                        .inputs = 784,
                        .n_hidden = 2,
                        .hidden = {256, 128},
                        .classes = 10,
                        .loss = DPT_LOSS_CE,
                        .bias = 1};
    dpt_model m;
    cr_assert_eq(dpt_model_init(&m, &s), 0);
    const double W = 784.0 * 256 + 256.0 * 128 + 128.0 * 10;
    cr_assert_float_eq(dpt_model_train_flops(&m), 6 * W - 2 * 784.0 * 256, 1e-6);
    double six = 6.0 * (double)m.n_params;
    cr_expect(fabs(dpt_model_train_flops(&m) / six - 0.715) < 0.01, "%g of 6P",
              dpt_model_train_flops(&m) / six);
    dpt_model_spec lin = {.kind = DPT_MODEL_LINEAR, .inputs = 64, .loss = DPT_LOSS_MSE};
    cr_assert_eq(dpt_model_init(&m, &lin), 0);
    cr_assert_float_eq(dpt_model_train_flops(&m), 4.0 * 64, 1e-9);
    dpt_dataset ds = {.n = 1000, .d = 64};
    dpt_run_work w;
    dpt_run_work_of(&m, &ds, &w);
    cr_assert_float_eq(w.flops, 256000.0, 1e-6);
    cr_assert_float_eq(w.bytes, 1000.0 * 64 * 4, 1e-6);
}
