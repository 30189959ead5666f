/* The engine end to end: the tree reduction at many thread counts (more
 * threads than cores and than rows, on purpose), reproducibility, the
 * deterministic mode, convergence, divergence handling. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/engine.h"
#include "dpt/error.h"
#include "kernels/kernels.h"
#include "ref.h"

static dpt_reduce reduce_mode = DPT_REDUCE_TREE;

static dpt_engine *make_engine(const dpt_model *m, const dpt_optim_spec *o, const dpt_dataset *ds,
                               int threads, int leaves, int shuffle)
{
    dpt_engine_opts eo;
    ref_engine_opts(&eo, threads, shuffle);
    eo.reduce = reduce_mode;
    eo.leaves = leaves;
    dpt_engine *e = NULL;
    int rc = dpt_engine_create(&e, m, o, ds, &eo);
    cr_assert_eq(rc, 0, "engine: %s", dpt_last_error());
    return e;
}

/* A linear model of the inputs of a synthetic spec and its data, and the
 * optimizer's defaults with kind and lr. */
static void linear_case(const char *spec, uint64_t seed, dpt_model *m, dpt_dataset *ds,
                        dpt_optim_spec *o, dpt_opt_kind kind, double lr)
{
    dpt_synth_spec sp;
    cr_assert_eq(dpt_synth_parse(&sp, spec), 0);
    cr_assert_eq(dpt_synth_generate(&sp, ds, seed), 0);
    dpt_model_spec s = {.kind = DPT_MODEL_LINEAR, .inputs = ds->d, .bias = 1};
    cr_assert_eq(dpt_model_init(m, &s), 0);
    dpt_optim_defaults(o);
    o->kind = kind;
    o->lr = lr;
}

struct red_case {
    int threads;
    size_t rows;
    dpt_reduce reduce;
};

ParameterizedTestParameters(engine, reduction_equals_double_sum)
{
    static struct red_case cases[] = {
        {1, 301, 0},  {2, 301, 0}, {3, 301, 0}, {5, 301, 0},  {7, 301, 0}, {8, 301, 0},
        {16, 301, 0}, {16, 5, 0},  {7, 3, 0},   {3, 1, 0},    {1, 301, 1}, {2, 301, 1},
        {3, 301, 1},  {5, 301, 1}, {7, 301, 1}, {16, 301, 1}, {16, 5, 1}};
    return cr_make_param_array(struct red_case, cases, sizeof cases / sizeof cases[0]);
}

/* One full-batch GD step with lr 1 from w0: w1 = w0 - sum(g)/n exposes the
 * reduced gradient, compared with finite differences in double. */
ParameterizedTest(struct red_case *c, engine, reduction_equals_double_sum)
{
    reduce_mode = c->reduce;
    dpt_model_spec s = {.kind = DPT_MODEL_SOFTMAX, .inputs = 13, .classes = 5, .bias = 1};
    dpt_model m;
    cr_assert_eq(dpt_model_init(&m, &s), 0);
    dpt_dataset ds;
    ref_make_data(&ds, c->rows, 13, &m.spec, 5);
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    o.kind = DPT_OPT_GD;
    o.lr = 1.0;
    dpt_engine *e = make_engine(&m, &o, &ds, c->threads, 0, 0);
    float *w = dpt_engine_params(e);
    dpt_model_init_params(&m, w, 9, DPT_INIT_UNIFORM);
    float *w0 = malloc(m.n_params * sizeof(float)), *g = malloc(m.n_params * sizeof(float));
    memcpy(w0, w, m.n_params * sizeof(float));
    cr_assert_eq(dpt_engine_train(e, 1, NULL, NULL), 0, "%s", dpt_last_error());
    for (size_t i = 0; i < m.n_params; i++) g[i] = (w0[i] - w[i]) * (float)c->rows;
    double *gref = malloc(m.n_params * sizeof(double));
    ref_grad_fd(&m, w0, ds.X, ds.ld, ds.y, ds.n, gref);
    double gmax = 0;
    for (size_t i = 0; i < m.n_params; i++) gmax = fmax(gmax, fabs(gref[i]));
    /* w0 - w1 loses bits against |w0|, hence the floor */
    double err = ref_max_rel(g, gref, m.n_params, 1e-3 * gmax + 1e-4 * c->rows);
    cr_expect(err < 2e-3, "%d threads, %zu rows, %s: relative error %g", c->threads, c->rows,
              c->reduce ? "scatter" : "tree", err);
    dpt_engine_destroy(e);
    free(w0);
    free(g);
    free(gref);
    dpt_dataset_free(&ds);
}

static float *train_copy(const dpt_model *m, const dpt_dataset *ds, const dpt_optim_spec *o,
                         int threads, int leaves, int epochs)
{
    dpt_engine *e = make_engine(m, o, ds, threads, leaves, 1);
    dpt_model_init_params(m, dpt_engine_params(e), 3, DPT_INIT_UNIFORM);
    cr_assert_eq(dpt_engine_train(e, epochs, NULL, NULL), 0, "%s", dpt_last_error());
    float *w = malloc(m->n_params * sizeof(float));
    memcpy(w, dpt_engine_params(e), m->n_params * sizeof(float));
    dpt_engine_destroy(e);
    return w;
}

static void mlp_setup(dpt_model *m, dpt_dataset *ds, dpt_optim_spec *o)
{
    cr_assert_eq(ref_small_mlp(m, ds, o, 517), 0);
}

Test(engine, same_seed_and_threads_is_bitwise_reproducible)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_optim_spec o;
    mlp_setup(&m, &ds, &o);
    float *a = train_copy(&m, &ds, &o, 3, 0, 3), *b = train_copy(&m, &ds, &o, 3, 0, 3);
    cr_expect_eq(memcmp(a, b, m.n_params * sizeof(float)), 0);
    free(a);
    free(b);
    dpt_dataset_free(&ds);
}

Test(engine, deterministic_mode_is_bitwise_identical_across_thread_counts)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_optim_spec o;
    mlp_setup(&m, &ds, &o);
    float *ref = train_copy(&m, &ds, &o, 1, 16, 3);
    const int threads[] = {2, 3, 4, 7};
    for (int i = 0; i < 8; i++) {
        /* the second half with the reduce-scatter variant: a different
         * summation order, but again the same for every thread count */
        if (i == 4) {
            free(ref);
            reduce_mode = DPT_REDUCE_SCATTER;
            ref = train_copy(&m, &ds, &o, 1, 16, 3);
        }
        float *w = train_copy(&m, &ds, &o, threads[i % 4], 16, 3);
        cr_expect_eq(memcmp(ref, w, m.n_params * sizeof(float)), 0,
                     "deterministic run at %d threads differs from 1 thread", threads[i % 4]);
        free(w);
    }
    free(ref);
    dpt_dataset_free(&ds);
}

Test(engine, batches_do_not_depend_on_thread_count)
{
    /* without --deterministic only the summation order differs */
    dpt_model m;
    dpt_dataset ds;
    dpt_optim_spec o;
    mlp_setup(&m, &ds, &o);
    float *a = train_copy(&m, &ds, &o, 1, 0, 2), *b = train_copy(&m, &ds, &o, 5, 0, 2);
    for (size_t i = 0; i < m.n_params; i++)
        cr_expect(fabsf(a[i] - b[i]) <= 1e-4f * (1 + fabsf(a[i])), "param %zu: %g vs %g", i, a[i],
                  b[i]);
    free(a);
    free(b);
    dpt_dataset_free(&ds);
}

Test(engine, gd_linreg_reaches_noise_floor)
{
    dpt_synth_spec sp;
    cr_assert_eq(dpt_synth_parse(&sp, "linreg:n=20000,d=16,noise=0.01,seed=4"), 0);
    dpt_dataset ds;
    cr_assert_eq(dpt_synth_generate(&sp, &ds, 2), 0);
    dpt_model_spec s = {.kind = DPT_MODEL_LINEAR, .inputs = 16, .bias = 0};
    dpt_model m;
    cr_assert_eq(dpt_model_init(&m, &s), 0);
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    o.kind = DPT_OPT_GD;
    o.lr = 0.1;
    dpt_engine *e = make_engine(&m, &o, &ds, 2, 0, 0);
    dpt_model_init_params(&m, dpt_engine_params(e), 1, DPT_INIT_ZERO);
    cr_assert_eq(dpt_engine_train(e, 60, NULL, NULL), 0);
    dpt_metrics mt;
    cr_assert_eq(dpt_engine_evaluate(e, &ds, &mt), 0);
    cr_expect(mt.mse < 2 * 0.01 * 0.01, "MSE %g is not within 2x of the noise variance 1e-4",
              mt.mse);
    cr_expect(mt.r2 > 0.999);
    dpt_engine_destroy(e);
    dpt_dataset_free(&ds);
}

static int count_epochs(const dpt_epoch_stats *st, void *ud)
{
    (void)st;
    ++*(int *)ud;
    return 0;
}

Test(engine, divergence_is_caught_and_rolled_back)
{
    dpt_dataset ds;
    dpt_model m;
    dpt_optim_spec o;
    linear_case("linreg:n=1000,d=8", 1, &m, &ds, &o, DPT_OPT_SGD, 50); /* far past stability */
    o.batch = 100;
    dpt_engine *e = make_engine(&m, &o, &ds, 2, 0, 1);
    dpt_model_init_params(&m, dpt_engine_params(e), 1, DPT_INIT_ZERO);
    int epochs = 0;
    int rc = dpt_engine_train(e, 50, count_epochs, &epochs);
    cr_expect_eq(rc, DPT_EDIVERGED);
    cr_expect(strstr(dpt_last_error(), "epoch") && strstr(dpt_last_error(), "step"), "%s",
              dpt_last_error());
    const float *w = dpt_engine_params(e);
    for (size_t i = 0; i < m.n_params; i++) cr_expect(isfinite(w[i]), "param %zu not finite", i);
    cr_expect_lt(epochs, 50);
    dpt_engine_destroy(e);
    dpt_dataset_free(&ds);
}

/* A non-finite loss in one thread's unit stops the step on every thread
 * (the verdict reads one flag line, set by that unit), names the step, and
 * leaves w as it was; the flag does not outlive the run: with the row
 * repaired, the same engine trains again. 8 threads on this machine's
 * cores (oversubscribed), so threads of one step pass the verdict at
 * different times. */
Test(engine, a_non_finite_loss_stops_every_thread)
{
    dpt_dataset ds;
    dpt_model m;
    dpt_optim_spec o;
    linear_case("linreg:n=800,d=8", 1, &m, &ds, &o, DPT_OPT_SGD, 0.01);
    o.batch = 80;
    dpt_engine *e = make_engine(&m, &o, &ds, 8, 0, 1); /* rows read afresh each step */
    float *w = dpt_engine_params(e);
    dpt_model_init_params(&m, w, 1, DPT_INIT_ZERO);
    const float keep = ds.X[437 * ds.ld + 3];
    ds.X[437 * ds.ld + 3] = NAN;
    int epochs = 0;
    cr_expect_eq(dpt_engine_train(e, 3, count_epochs, &epochs), DPT_EDIVERGED);
    cr_expect(strstr(dpt_last_error(), "loss") && strstr(dpt_last_error(), "step"), "%s",
              dpt_last_error());
    cr_expect_eq(epochs, 0);
    for (size_t i = 0; i < m.n_params; i++) cr_expect(isfinite(w[i]), "param %zu not finite", i);
    ds.X[437 * ds.ld + 3] = keep;
    epochs = 0;
    cr_expect_eq(dpt_engine_train(e, 2, count_epochs, &epochs), 0, "%s", dpt_last_error());
    cr_expect_eq(epochs, 2, "%d epochs", epochs);
    dpt_engine_destroy(e);
    dpt_dataset_free(&ds);
}

Test(engine, rejects_mismatched_data)
{
    dpt_dataset ds;
    dpt_model_spec ms = {.kind = DPT_MODEL_LINEAR, .inputs = 4};
    ref_make_data(&ds, 10, 5, &ms, 1);
    dpt_model m;
    cr_assert_eq(dpt_model_init(&m, &ms), 0);
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    dpt_engine_opts eo;
    dpt_engine_opts_defaults(&eo);
    dpt_engine *e = NULL;
    cr_expect_eq(dpt_engine_create(&e, &m, &o, &ds, &eo), DPT_EINVAL);
    cr_expect_null(e);
    dpt_dataset_free(&ds);
}

static dpt_engine *make_local(const dpt_model *m, const dpt_optim_spec *o, const dpt_dataset *ds,
                              int threads)
{
    dpt_engine_opts eo;
    dpt_engine_opts_defaults(&eo);
    eo.threads = threads;
    eo.pin.policy = DPT_PIN_NONE;
    eo.batching_local = 1;
    dpt_engine *e = NULL;
    cr_assert_eq(dpt_engine_create(&e, m, o, ds, &eo), 0, "%s", dpt_last_error());
    return e;
}

Test(engine, local_batching_full_batch_matches_global)
{
    /* one batch of all rows: local shards regroup the rows, the sum is the same */
    dpt_model m;
    dpt_dataset ds;
    dpt_optim_spec o;
    mlp_setup(&m, &ds, &o);
    o.kind = DPT_OPT_SGD;
    o.batch = ds.n;
    float *ref = train_copy(&m, &ds, &o, 3, 0, 2);
    dpt_engine *e = make_local(&m, &o, &ds, 3);
    dpt_model_init_params(&m, dpt_engine_params(e), 3, DPT_INIT_UNIFORM);
    cr_assert_eq(dpt_engine_train(e, 2, NULL, NULL), 0);
    const float *w = dpt_engine_params(e);
    for (size_t i = 0; i < m.n_params; i++)
        cr_expect(fabsf(w[i] - ref[i]) <= 1e-4f * (1 + fabsf(ref[i])), "param %zu", i);
    dpt_engine_destroy(e);
    free(ref);
    dpt_dataset_free(&ds);
}

Test(engine, local_batching_sgd_converges)
{
    dpt_dataset ds;
    dpt_model m;
    dpt_optim_spec o;
    linear_case("linreg:n=6000,d=8,noise=0.01,seed=2", 2, &m, &ds, &o, DPT_OPT_MOMENTUM, 0.01);
    o.batch = 60;
    dpt_engine *e = make_local(&m, &o, &ds, 5);
    dpt_model_init_params(&m, dpt_engine_params(e), 1, DPT_INIT_ZERO);
    cr_assert_eq(dpt_engine_train(e, 8, NULL, NULL), 0);
    dpt_metrics mt;
    cr_assert_eq(dpt_engine_evaluate(e, &ds, &mt), 0);
    cr_expect(mt.mse < 3e-4, "MSE %g", mt.mse);
    dpt_engine_destroy(e);
    dpt_dataset_free(&ds);
}

Test(engine, scalar_and_avx2_training_agree)
{
    if (!dpt_cpu_has_avx2() || !dpt_build_has_avx2()) cr_skip_test("no AVX2 on this CPU or build");
    dpt_model m;
    dpt_dataset ds;
    dpt_optim_spec o;
    mlp_setup(&m, &ds, &o);
    cr_assert_eq(dpt_kernels_select("scalar"), 0);
    float *a = train_copy(&m, &ds, &o, 2, 0, 3);
    cr_assert_eq(dpt_kernels_select("avx2"), 0);
    float *b = train_copy(&m, &ds, &o, 2, 0, 3);
    cr_assert_eq(dpt_kernels_select("auto"), 0);
    for (size_t i = 0; i < m.n_params; i++)
        cr_expect(fabsf(a[i] - b[i]) <= 1e-4f * (1 + fabsf(a[i])), "param %zu: scalar %g, avx2 %g",
                  i, a[i], b[i]);
    free(a);
    free(b);
    dpt_dataset_free(&ds);
}

/* Per-rank loading: the rows of every rank, over any batch size, rank
 * count and leaves (deterministic, spread unevenly when the ranks do not
 * divide them), partition the rows: sorted, merged, disjoint, all covered. */
static void check_rank_rows(size_t n, size_t batch, int leaves, int R)
{
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    o.kind = batch ? DPT_OPT_SGD : DPT_OPT_GD;
    o.batch = batch;
    unsigned char *seen = calloc(n, 1);
    for (int r = 0; r < R; r++) {
        dpt_row_range *rr;
        size_t k;
        cr_assert_eq(dpt_engine_rank_rows(n, &o, 0, leaves, r, R, &rr, &k), 0);
        for (size_t i = 0; i < k; i++) {
            cr_assert(rr[i].lo < rr[i].hi && rr[i].hi <= n);
            if (i) cr_assert(rr[i - 1].hi < rr[i].lo, "ranges merged and sorted");
            for (size_t j = rr[i].lo; j < rr[i].hi; j++) {
                cr_assert_eq(seen[j], 0, "row %zu in two ranks", j);
                seen[j] = 1;
            }
        }
        free(rr);
    }
    for (size_t j = 0; j < n; j++)
        cr_assert_eq(seen[j], 1, "n %zu batch %zu leaves %d ranks %d: row %zu unread", n, batch,
                     leaves, R, j);
    free(seen);
    /* shuffled: any row may come up, so every rank reads all */
    dpt_row_range *rr;
    size_t k;
    cr_assert_eq(dpt_engine_rank_rows(n, &o, 1, leaves, R - 1, R, &rr, &k), 0);
    if (batch && batch < n) cr_assert(k == 1 && rr[0].lo == 0 && rr[0].hi == n);
    free(rr);
}

Test(engine, rank_rows_partition_the_data)
{
    static const size_t ns[] = {7, 1000, 1001};
    static const size_t batches[] = {0, 3, 64, 100};
    static const int leaves[] = {0, 5, 16};
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 4; b++)
            for (size_t l = 0; l < 3; l++)
                for (int R = 1; R <= 5; R++)
                    if (!leaves[l] || R <= leaves[l])
                        check_rank_rows(ns[a], batches[b], leaves[l], R);
}

/* A training set holding part of its rows: training needs exactly the
 * rows of this rank, and evaluation covers the rows held. */
Test(engine, partial_training_set)
{
    dpt_model_spec s = {.kind = DPT_MODEL_LINEAR, .inputs = 6, .bias = 1};
    dpt_model m;
    cr_assert_eq(dpt_model_init(&m, &s), 0);
    dpt_dataset ds;
    ref_make_data(&ds, 100, 6, &m.spec, 3);
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    o.batch = 10;
    o.lr = 0.01;
    dpt_engine *full = make_engine(&m, &o, &ds, 3, 0, 0);
    float *w0 = malloc(m.n_params * sizeof(float));
    dpt_model_init_params(&m, w0, 4, DPT_INIT_UNIFORM);
    dpt_engine_reset(full, w0);
    cr_assert_eq(dpt_engine_train(full, 2, NULL, NULL), 0);

    /* one rank holds every row: the same model, bit for bit */
    ds.part = malloc(2 * sizeof *ds.part);
    ds.part[0] = (dpt_row_range){0, 100};
    ds.npart = 1;
    dpt_engine *part = make_engine(&m, &o, &ds, 3, 0, 0);
    dpt_engine_reset(part, w0);
    cr_assert_eq(dpt_engine_train(part, 2, NULL, NULL), 0);
    cr_assert_eq(
        memcmp(dpt_engine_params(part), dpt_engine_params(full), m.n_params * sizeof(float)), 0);

    /* evaluation: the rows held, as if they were the whole set */
    ds.part[0] = (dpt_row_range){10, 40};
    ds.part[1] = (dpt_row_range){60, 100};
    ds.npart = 2;
    dpt_dataset sub;
    cr_assert_eq(dpt_dataset_alloc(&sub, 70, 6, 1), 0);
    memcpy(sub.X, ds.X + 10 * ds.ld, 30 * ds.ld * sizeof(float));
    memcpy(sub.X + 30 * ds.ld, ds.X + 60 * ds.ld, 40 * ds.ld * sizeof(float));
    memcpy(sub.y, ds.y + 10, 30 * sizeof(float));
    memcpy(sub.y + 30, ds.y + 60, 40 * sizeof(float));
    dpt_metrics a, b;
    cr_assert_eq(dpt_engine_evaluate(part, &ds, &a), 0);
    cr_assert_eq(dpt_engine_evaluate(part, &sub, &b), 0);
    cr_assert_eq(a.n, 70);
    cr_assert(fabs(a.loss - b.loss) <= 1e-6 * b.loss, "%g vs %g", a.loss, b.loss);
    cr_assert(fabs(a.r2 - b.r2) <= 1e-6, "%g vs %g", a.r2, b.r2);

    /* rows this rank trains on but does not hold: refused, naming them */
    dpt_engine *e = NULL;
    dpt_engine_opts eo;
    dpt_engine_opts_defaults(&eo);
    eo.threads = 2;
    eo.shuffle = 0;
    eo.pin.policy = DPT_PIN_NONE;
    cr_assert_eq(dpt_engine_create(&e, &m, &o, &ds, &eo), DPT_EINVAL);
    cr_assert(strstr(dpt_last_error(), "rows 1-10"), "%s", dpt_last_error());
    /* and a partial set cannot be reshuffled */
    ds.part[0] = (dpt_row_range){0, 100};
    ds.npart = 1;
    eo.shuffle = 1;
    cr_assert_eq(dpt_engine_create(&e, &m, &o, &ds, &eo), DPT_EINVAL);
    cr_assert(strstr(dpt_last_error(), "fixed order"), "%s", dpt_last_error());

    dpt_engine_destroy(full);
    dpt_engine_destroy(part);
    free(w0);
    dpt_dataset_free(&sub);
    dpt_dataset_free(&ds);
}

/* A stand-in for a second rank that holds the same gradient as this one:
 * every all-reduce doubles (exactly), the non-blocking ones only when
 * finished, so a chunk read before its finish would show. */
typedef struct twin {
    float *buf[DPT_COMM_MAX_PENDING];
    size_t n[DPT_COMM_MAX_PENDING];
    int pending, started, finished;
} twin;

static void twin_double(float *b, size_t n)
{
    for (size_t i = 0; i < n; i++) b[i] *= 2;
}
static int twin_allreduce(void *ctx, float *buf, size_t n, double *sc, int ns)
{
    (void)ctx;
    twin_double(buf, n);
    for (int i = 0; i < ns; i++) sc[i] *= 2;
    return 0;
}
static int twin_broadcast(void *ctx, float *buf, size_t n)
{
    (void)ctx, (void)buf, (void)n;
    return 0;
}
static int twin_agree(void *ctx, int rc)
{
    (void)ctx;
    return rc;
}
static int twin_start(void *ctx, float *buf, size_t n)
{
    twin *w = ctx;
    cr_assert(w->pending < DPT_COMM_MAX_PENDING);
    w->buf[w->pending] = buf;
    w->n[w->pending++] = n;
    w->started++;
    return 0;
}
static int twin_progress(void *ctx)
{
    (void)ctx;
    return 0;
}
static int twin_finish(void *ctx)
{
    twin *w = ctx;
    for (int i = 0; i < w->pending; i++) twin_double(w->buf[i], w->n[i]);
    w->finished += w->pending;
    w->pending = 0;
    return 0;
}

/* Train with the twin as the other rank; returns the parameters. */
static float *train_with_twin(const dpt_model *m, const dpt_dataset *ds, int threads,
                              dpt_overlap ov, twin *w)
{
    dpt_comm c = {.rank = 0,
                  .size = 2,
                  .ctx = w,
                  .allreduce = twin_allreduce,
                  .broadcast = twin_broadcast,
                  .agree = twin_agree,
                  .start_allreduce = twin_start,
                  .progress = twin_progress,
                  .finish = twin_finish};
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    o.batch = 16;
    o.lr = 0.05;
    dpt_engine_opts eo;
    dpt_engine_opts_defaults(&eo);
    eo.threads = threads;
    eo.shuffle = 0;
    eo.pin.policy = DPT_PIN_NONE;
    eo.comm = &c;
    eo.overlap = ov;
    dpt_engine *e = NULL;
    cr_assert_eq(dpt_engine_create(&e, m, &o, ds, &eo), 0, "%s", dpt_last_error());
    dpt_model_init_params(m, dpt_engine_params(e), 2, DPT_INIT_UNIFORM);
    cr_assert_eq(dpt_engine_train(e, 2, NULL, NULL), 0, "%s", dpt_last_error());
    float *p = malloc(m->n_params * sizeof(float));
    memcpy(p, dpt_engine_params(e), m->n_params * sizeof(float));
    dpt_engine_destroy(e);
    return p;
}

/* The all-reduce in overlapped chunks gives the model of one all-reduce
 * after the sum, bit for bit, at any thread count; each chunk is started
 * once per step and all are finished before the update. */
Test(engine, overlapped_allreduce_matches_blocking)
{
    dpt_model_spec s = {.kind = DPT_MODEL_MLP,
                        .inputs = 9,
                        .n_hidden = 1,
                        .hidden = {13},
                        .act = DPT_ACTIVATION_TANH,
                        .loss = DPT_LOSS_MSE,
                        .bias = 1};
    dpt_model m;
    cr_assert_eq(dpt_model_init(&m, &s), 0);
    dpt_dataset ds;
    ref_make_data(&ds, 160, 9, &m.spec, 8);
    const long steps = 2 * 160 / 16;
    for (int P = 1; P <= 5; P += 2) {
        twin a = {0}, b = {0}, c = {0};
        float *off = train_with_twin(&m, &ds, P, DPT_OVERLAP_OFF, &a);
        float *on = train_with_twin(&m, &ds, P, DPT_OVERLAP_ON, &b);
        float *aut = train_with_twin(&m, &ds, P, DPT_OVERLAP_AUTO, &c);
        cr_assert_eq(memcmp(off, on, m.n_params * sizeof(float)), 0, "%d threads", P);
        cr_assert_eq(memcmp(off, aut, m.n_params * sizeof(float)), 0, "%d threads", P);
        cr_assert_eq(a.started, 0);
        cr_assert_eq(b.started, 2 * steps, "%d threads: %d chunks started", P, b.started);
        cr_assert_eq(b.finished, b.started);
        /* auto: a model this small is one chunk, not worth splitting */
        cr_assert_eq(c.started, 0);
        free(off);
        free(on);
        free(aut);
    }
    dpt_dataset_free(&ds);
}

/* The model after every committed epoch, as the epoch callback sees it. */
typedef struct model_log {
    dpt_engine *e;
    size_t np;
    int epochs;
    float *w;     /* (epochs + 1) x np: the start, then after each epoch */
    double *loss; /* epochs: each epoch's mean loss */
} model_log;

static int log_model(const dpt_epoch_stats *st, void *ud)
{
    model_log *g = ud;
    g->epochs++;
    cr_assert_eq(st->epoch, g->epochs, "epochs are reported once each, in order");
    g->w = realloc(g->w, (size_t)(g->epochs + 1) * g->np * sizeof(float));
    g->loss = realloc(g->loss, (size_t)g->epochs * sizeof(double));
    memcpy(g->w + (size_t)g->epochs * g->np, dpt_engine_params(g->e), g->np * sizeof(float));
    g->loss[g->epochs - 1] = st->loss;
    return 0;
}

/* Train until it fails or ends, logging the models; returns the status. */
static int train_logged(dpt_engine *e, const dpt_model *m, int epochs, model_log *g)
{
    *g = (model_log){.e = e, .np = m->n_params};
    g->w = malloc(g->np * sizeof(float));
    memcpy(g->w, dpt_engine_params(e), g->np * sizeof(float));
    return dpt_engine_train(e, epochs, log_model, g);
}

static void linreg_gd(dpt_model *m, dpt_dataset *ds, dpt_optim_spec *o, double lr)
{
    linear_case("linreg:n=1000,d=8", 1, m, ds, o, DPT_OPT_GD, lr);
}

/* Full-batch GD far past the stability limit (dpt train --synth
 * linreg:n=1000,d=8 --model linear --opt gd --lr 5): it stops diverged
 * with a finite model, the very one the run had after its last epoch. */
Test(engine, divergence_keeps_the_last_finite_model)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_optim_spec o;
    linreg_gd(&m, &ds, &o, 5);
    for (int threads = 1; threads <= 3; threads += 2) {
        dpt_engine *e = make_engine(&m, &o, &ds, threads, 0, 0);
        model_log g;
        int rc = train_logged(e, &m, 50, &g);
        cr_expect_eq(rc, DPT_EDIVERGED, "%s", dpt_last_error());
        cr_expect_lt(g.epochs, 50);
        char where[32];
        snprintf(where, sizeof where, "epoch %d", g.epochs + 1);
        cr_expect(strstr(dpt_last_error(), where), "not at %s: %s", where, dpt_last_error());
        const float *w = dpt_engine_params(e);
        for (size_t i = 0; i < m.n_params; i++) cr_expect(isfinite(w[i]), "param %zu: %g", i, w[i]);
        cr_expect_eq(memcmp(w, g.w + (size_t)g.epochs * g.np, g.np * sizeof(float)), 0,
                     "%d threads: the parameters are not the model after epoch %d", threads,
                     g.epochs);
        free(g.w);
        free(g.loss);
        dpt_engine_destroy(e);
    }
    dpt_dataset_free(&ds);
}

/* The first update overflows the parameters while its gradient and the
 * loss it came from are finite: the epoch's own end catches it, and the
 * rollback gives back the starting model, not an infinite one. */
Test(engine, non_finite_last_update_of_an_epoch_is_rolled_back)
{
    dpt_dataset ds;
    cr_assert_eq(dpt_dataset_alloc(&ds, 8, 1, 1), 0);
    for (int i = 0; i < 8; i++) {
        ds.X[i * ds.ld] = (float)(i + 1);
        ds.y[i] = 10.0f * (float)(i + 1);
    }
    dpt_model_spec s = {.kind = DPT_MODEL_LINEAR, .inputs = 1, .bias = 1};
    dpt_model m;
    cr_assert_eq(dpt_model_init(&m, &s), 0);
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    o.kind = DPT_OPT_GD;
    o.lr = 1e38; /* the gradient is about -500: w lands past FLT_MAX */
    for (int r = 0; r < 2; r++) {
        reduce_mode = r ? DPT_REDUCE_SCATTER : DPT_REDUCE_TREE;
        dpt_engine *e = make_engine(&m, &o, &ds, 2, 0, 0);
        model_log g;
        cr_expect_eq(train_logged(e, &m, 3, &g), DPT_EDIVERGED);
        cr_expect_eq(g.epochs, 0, "the epoch that overflowed was committed");
        cr_expect(strstr(dpt_last_error(), "epoch 1 step 1"), "%s", dpt_last_error());
        cr_expect_eq(memcmp(dpt_engine_params(e), g.w, g.np * sizeof(float)), 0,
                     "not rolled back to the starting model");
        free(g.w);
        free(g.loss);
        dpt_engine_destroy(e);
    }
    reduce_mode = DPT_REDUCE_TREE;
    dpt_dataset_free(&ds);
}

/* An epoch whose mean loss is above DPT_DIVERGE_LOSS_FACTOR times the
 * first epoch's stops the run, all floats still finite, and rolls back to
 * the epoch before. */
Test(engine, exploding_loss_is_a_divergence)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_optim_spec o;
    linreg_gd(&m, &ds, &o, 1.5); /* grows a few times per epoch */
    dpt_engine *e = make_engine(&m, &o, &ds, 2, 0, 0);
    model_log g;
    cr_assert_eq(train_logged(e, &m, 200, &g), DPT_EDIVERGED, "%s", dpt_last_error());
    cr_expect(strstr(dpt_last_error(), "times the first epoch's"), "%s", dpt_last_error());
    cr_assert_geq(g.epochs, 2);
    for (int i = 0; i < g.epochs; i++)
        cr_expect(g.loss[i] <= DPT_DIVERGE_LOSS_FACTOR * g.loss[0], "epoch %d: %g", i + 1,
                  g.loss[i]);
    /* it grew steadily, so the next epoch is the one that crossed */
    cr_expect_gt(g.loss[g.epochs - 1], 1e3 * g.loss[0]);
    cr_expect_eq(memcmp(dpt_engine_params(e), g.w + (size_t)g.epochs * g.np, g.np * sizeof(float)),
                 0);
    /* a reset forgets the first epoch's loss: training starts over */
    dpt_engine_reset(e, g.w);
    model_log h;
    cr_expect_eq(train_logged(e, &m, 1, &h), 0, "%s", dpt_last_error());
    cr_expect_eq(h.loss[0], g.loss[0]);
    free(h.w);
    free(h.loss);
    free(g.w);
    free(g.loss);
    dpt_engine_destroy(e);
    dpt_dataset_free(&ds);
}

/* The schedules count from the run's start over its horizon, so one call
 * of 4 epochs and four calls of 1 give the same bits. */
Test(engine, schedules_do_not_depend_on_how_epochs_are_called)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_optim_spec o;
    mlp_setup(&m, &ds, &o);
    o.epochs = 4;
    o.warmup = 5;
    for (int k = 0; k < 2; k++) {
        o.schedule = k ? DPT_LR_STEP : DPT_LR_COSINE;
        o.step_every = 1;
        o.step_factor = 0.5;
        dpt_engine *a = make_engine(&m, &o, &ds, 3, 0, 1), *b = make_engine(&m, &o, &ds, 3, 0, 1);
        cr_assert_eq(dpt_engine_train(a, 4, NULL, NULL), 0, "%s", dpt_last_error());
        for (int i = 0; i < 4; i++)
            cr_assert_eq(dpt_engine_train(b, 1, NULL, NULL), 0, "%s", dpt_last_error());
        cr_expect_eq(memcmp(dpt_engine_params(a), dpt_engine_params(b), m.n_params * sizeof(float)),
                     0, "%s: 4 epochs at once differ from 4 calls of one", k ? "step" : "cosine");
        dpt_engine_destroy(a);
        dpt_engine_destroy(b);
    }
    /* cosine without a horizon has no end to decay towards */
    o.schedule = DPT_LR_COSINE;
    o.epochs = 0;
    dpt_engine_opts eo;
    ref_engine_opts(&eo, 2, 1);
    dpt_engine *e = NULL;
    cr_expect_eq(dpt_engine_create(&e, &m, &o, &ds, &eo), DPT_EINVAL);
    cr_expect_null(e);
    cr_expect(strstr(dpt_last_error(), "horizon"), "%s", dpt_last_error());
    dpt_dataset_free(&ds);
}

/* Local batching makes the batches depend on the thread count, which
 * deterministic mode promises they do not: refused, in library terms. */
Test(engine, deterministic_mode_refuses_local_batching)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_optim_spec o;
    mlp_setup(&m, &ds, &o);
    dpt_engine_opts eo;
    ref_engine_opts(&eo, 3, 1);
    eo.leaves = 16;
    eo.batching_local = 1;
    dpt_engine *e = NULL;
    cr_expect_eq(dpt_engine_create(&e, &m, &o, &ds, &eo), DPT_EINVAL);
    cr_expect_null(e);
    cr_expect(strstr(dpt_last_error(), "local batching") &&
                  strstr(dpt_last_error(), "deterministic mode"),
              "%s", dpt_last_error());
    cr_expect_null(strstr(dpt_last_error(), "--"), "a flag in: %s", dpt_last_error());
    dpt_dataset_free(&ds);
}

/* create initialises the parameters as dpt_model_init_params does with
 * the engine's seed and init. */
Test(engine, create_initialises_the_parameters)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_optim_spec o;
    mlp_setup(&m, &ds, &o);
    float *w = malloc(m.n_params * sizeof(float));
    for (int k = 0; k < 2; k++) {
        dpt_engine_opts eo;
        ref_engine_opts(&eo, 2, 1);
        eo.seed = 77;
        eo.init = k ? DPT_INIT_ZERO : DPT_INIT_UNIFORM;
        dpt_engine *e = NULL;
        cr_assert_eq(dpt_engine_create(&e, &m, &o, &ds, &eo), 0, "%s", dpt_last_error());
        dpt_model_init_params(&m, w, 77, eo.init);
        cr_expect_eq(memcmp(dpt_engine_params(e), w, m.n_params * sizeof(float)), 0);
        size_t nonzero = 0;
        for (size_t i = 0; i < m.n_params; i++) nonzero += dpt_engine_params(e)[i] != 0;
        if (k)
            cr_expect_eq(nonzero, 0);
        else
            cr_expect_gt(nonzero, m.n_params / 2, "an MLP would train from zeros");
        dpt_engine_destroy(e);
    }
    free(w);
    dpt_dataset_free(&ds);
}
