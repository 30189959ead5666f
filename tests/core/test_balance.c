/* Adaptive load balancing (--balance adaptive): the policy on made-up
 * timings, then the engine under it: every row of every batch used exactly
 * once, whatever the cuts, and training as without it. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/engine.h"
#include "dpt/error.h"
#include "engine/balance.h"
#include "ref.h"

#define MAXP 16

/* Steps of threads whose rows cost cost[t] seconds each, from the cuts in
 * cum and the estimates in speed; leaves the next step's in both. */
static void run_steps(int P, const double *cost, size_t n, int steps, double *speed, double *cum)
{
    double secs[MAXP];
    size_t rows[MAXP];
    for (int s = 0; s < steps; s++) {
        for (int t = 0; t < P; t++) {
            size_t lo, hi;
            dpt_balance_cut(P, cum, n, t, &lo, &hi);
            rows[t] = hi - lo;
            secs[t] = (double)rows[t] * cost[t];
        }
        dpt_balance_update(P, secs, rows, speed, cum);
    }
}

/* The same from even cuts and nothing measured. */
static void simulate(int P, const double *cost, size_t n, int steps, double *speed, double *cum)
{
    for (int t = 0; t < P; t++) speed[t] = 0;
    for (int t = 0; t <= P; t++) cum[t] = (double)t / P;
    run_steps(P, cost, n, steps, speed, cum);
}

static size_t rows_of(int P, const double *cum, size_t n, int t)
{
    size_t lo, hi;
    dpt_balance_cut(P, cum, n, t, &lo, &hi);
    return hi - lo;
}

Test(balance, shares_follow_speed)
{
    double speed[MAXP], cum[MAXP + 1];
    /* thread 1 half as fast: 2/3 of 256 rows = 170.7 for thread 0 */
    const double two[] = {1e-5, 2e-5};
    simulate(2, two, 256, 40, speed, cum);
    size_t r0 = rows_of(2, cum, 256, 0);
    cr_expect(r0 >= 160 && r0 <= 176, "thread 0 got %zu of 256 rows", r0);
    /* one thread of four at a third of the speed: 1/10 of the rows */
    const double four[] = {1e-5, 1e-5, 1e-5, 3e-5};
    simulate(4, four, 1000, 60, speed, cum);
    size_t r3 = rows_of(4, cum, 1000, 3);
    cr_expect(r3 >= 88 && r3 <= 112, "the slow thread got %zu of 1000 rows", r3);
}

Test(balance, even_speeds_keep_even_cuts)
{
    double speed[MAXP], cum[MAXP + 1];
    const double cost[] = {1e-5, 1e-5, 1e-5};
    simulate(3, cost, 240, 20, speed, cum);
    for (int t = 0; t < 3; t++) {
        size_t lo, hi;
        dpt_balance_cut(3, cum, 240, t, &lo, &hi);
        cr_expect(lo == 80u * t && hi == 80u * (t + 1), "thread %d: [%zu, %zu)", t, lo, hi);
    }
}

/* Whatever the speeds, the cuts of any batch size tile it: contiguous,
 * from 0 to n, each on the 8-row grid except the last. */
Test(balance, cuts_tile_every_batch)
{
    const int Ps[] = {1, 2, 3, 5, 7, 16};
    const size_t ns[] = {0, 1, 7, 8, 9, 255, 256, 1000};
    srand(7);
    for (int trial = 0; trial < 50; trial++)
        for (size_t a = 0; a < sizeof Ps / sizeof *Ps; a++) {
            const int P = Ps[a];
            double speed[MAXP] = {0}, secs[MAXP], cum[MAXP + 1];
            size_t rows[MAXP];
            for (int t = 0; t < P; t++) {
                rows[t] = (size_t)(rand() % 3 == 0 ? 0 : 1 + rand() % 100);
                secs[t] = (rand() % 5) * 1e-4 * (1 + rand() % 1000);
            }
            dpt_balance_update(P, secs, rows, speed, cum);
            for (size_t b = 0; b < sizeof ns / sizeof *ns; b++) {
                size_t prev = 0;
                for (int t = 0; t < P; t++) {
                    size_t lo, hi;
                    dpt_balance_cut(P, cum, ns[b], t, &lo, &hi);
                    cr_assert_eq(lo, prev, "P %d, n %zu, thread %d starts at %zu, not %zu", P,
                                 ns[b], t, lo, prev);
                    cr_assert(hi >= lo && hi <= ns[b]);
                    if (t + 1 < P && hi < ns[b]) cr_assert_eq(hi % DPT_BALANCE_ROUND, 0);
                    prev = hi;
                }
                cr_assert_eq(prev, ns[b], "P %d: the cuts end at %zu of %zu", P, prev, ns[b]);
            }
        }
}

Test(balance, one_stalled_step_moves_the_cut_a_little)
{
    double speed[MAXP], cum[MAXP + 1];
    const double cost[] = {1e-5, 1e-5};
    simulate(2, cost, 256, 20, speed, cum);
    /* thread 1 preempted for 50 times its work in one step */
    double secs[2] = {128e-5, 50 * 128e-5};
    size_t rows[2] = {128, 128};
    dpt_balance_update(2, secs, rows, speed, cum);
    size_t r1 = rows_of(2, cum, 256, 1);
    cr_expect(r1 >= 112 && r1 < 128, "after one stall thread 1 got %zu of 256 rows", r1);
    /* and the even cut comes back once it runs normally again */
    run_steps(2, cost, 256, 30, speed, cum);
    cr_expect_eq(rows_of(2, cum, 256, 1), 128);
}

Test(balance, a_very_slow_thread_still_gets_rows)
{
    double speed[MAXP], cum[MAXP + 1];
    const double cost[] = {1e-6, 1e-4};
    simulate(2, cost, 256, 200, speed, cum);
    /* its weight stops at a quarter of the mean speed: about 11% */
    size_t r1 = rows_of(2, cum, 256, 1);
    cr_expect(r1 >= 16 && r1 <= 40, "the slow thread got %zu of 256 rows", r1);
}

Test(balance, an_unmeasured_thread_counts_at_the_mean)
{
    double speed[2] = {0, 0}, cum[3];
    double secs[2] = {1e-3, 0};
    size_t rows[2] = {128, 0};
    dpt_balance_update(2, secs, rows, speed, cum);
    cr_expect_float_eq(cum[1], 0.5, 1e-12);
    cr_expect_eq(speed[1], 0.0);
}

/* Data of small integers: every sum of two SGD steps of a linear model
 * from w = 0 with lr and 1/batch powers of two is exact in float, in any
 * order, so the parameters after them are the same bits however the rows
 * were cut, if and only if each row was used exactly once. */
static void integer_data(dpt_dataset *ds, size_t n, size_t d)
{
    cr_assert_eq(dpt_dataset_alloc(ds, n, d, 1), 0);
    ds->label_kind = DPT_LABEL_REAL;
    unsigned z = 12345;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++) {
            z = z * 1103515245u + 12345u;
            ds->X[i * ds->ld + j] = (float)((int)((z >> 16) % 5) - 2);
        }
        z = z * 1103515245u + 12345u;
        ds->y[i] = (float)((int)((z >> 16) % 7) - 3);
    }
}

static dpt_engine *make(const dpt_model *m, const dpt_optim_spec *o, const dpt_dataset *ds,
                        int threads, dpt_balance bal, int shuffle)
{
    dpt_engine_opts eo;
    ref_engine_opts(&eo, threads, shuffle);
    eo.balance = bal;
    dpt_engine *e = NULL;
    cr_assert_eq(dpt_engine_create(&e, m, o, ds, &eo), 0, "%s", dpt_last_error());
    return e;
}

/* A linear model of 4 inputs on n rows of integer_data. */
static void linear_setup(dpt_model *m, dpt_dataset *ds, size_t n, dpt_optim_spec *o)
{
    dpt_model_spec s = {.kind = DPT_MODEL_LINEAR, .inputs = 4};
    cr_assert_eq(dpt_model_init(m, &s), 0);
    integer_data(ds, n, 4);
    dpt_optim_defaults(o);
}

Test(balance, engine_uses_every_row_once)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_optim_spec o;
    linear_setup(&m, &ds, 128, &o);
    o.kind = DPT_OPT_SGD;
    o.batch = 64;
    o.lr = 1.0 / 1024;
    float zero[4] = {0};
    for (int shuffle = 0; shuffle < 2; shuffle++) {
        dpt_engine *ref = make(&m, &o, &ds, 1, DPT_BALANCE_STATIC, shuffle);
        dpt_engine_reset(ref, zero);
        cr_assert_eq(dpt_engine_train(ref, 1, NULL, NULL), 0, "%s", dpt_last_error());
        const float *want = dpt_engine_params(ref);
        cr_assert(want[0] != 0 || want[1] != 0, "the reference did not move");
        const int threads[] = {2, 3, 5, 7, 16};
        for (int i = 0; i < 5; i++) {
            dpt_engine *e = make(&m, &o, &ds, threads[i], DPT_BALANCE_ADAPTIVE, shuffle);
            /* again from w = 0, the cuts following the speeds measured so far */
            for (int rep = 0; rep < 6; rep++) {
                dpt_engine_reset(e, zero);
                cr_assert_eq(dpt_engine_train(e, 1, NULL, NULL), 0, "%s", dpt_last_error());
                cr_assert_eq(memcmp(dpt_engine_params(e), want, 4 * sizeof(float)), 0,
                             "%d threads, shuffle %d, repetition %d: not the sum of every row "
                             "once",
                             threads[i], shuffle, rep);
            }
            dpt_engine_destroy(e);
        }
        dpt_engine_destroy(ref);
    }
    dpt_dataset_free(&ds);
}

static int rows_seen(const dpt_epoch_stats *st, void *ud)
{
    size_t *mm = ud;
    mm[0] = st->rows_min;
    mm[1] = st->rows_max;
    return 0;
}

/* An MLP with momentum trains as with even cuts, up to summation order. */
Test(balance, engine_trains_as_static)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_optim_spec o;
    cr_assert_eq(ref_small_mlp(&m, &ds, &o, 517), 0);
    float *w[2];
    for (int a = 0; a < 2; a++) {
        dpt_engine *e =
            make(&m, &o, &ds, a ? 5 : 1, a ? DPT_BALANCE_ADAPTIVE : DPT_BALANCE_STATIC, 1);
        dpt_model_init_params(&m, dpt_engine_params(e), 3, DPT_INIT_UNIFORM);
        size_t mm[2] = {0, 0};
        cr_assert_eq(dpt_engine_train(e, 3, rows_seen, mm), 0, "%s", dpt_last_error());
        cr_expect(mm[0] <= mm[1] && mm[1] <= 517, "rows per thread %zu-%zu", mm[0], mm[1]);
        w[a] = malloc(m.n_params * sizeof(float));
        memcpy(w[a], dpt_engine_params(e), m.n_params * sizeof(float));
        dpt_engine_destroy(e);
    }
    for (size_t i = 0; i < m.n_params; i++)
        cr_expect(fabsf(w[0][i] - w[1][i]) <= 1e-4f * (1 + fabsf(w[0][i])), "param %zu: %g vs %g",
                  i, w[0][i], w[1][i]);
    free(w[0]);
    free(w[1]);
    dpt_dataset_free(&ds);
}

Test(balance, engine_refuses_fixed_leaves_and_local_batching)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_optim_spec o;
    linear_setup(&m, &ds, 64, &o);
    for (int c = 0; c < 2; c++) {
        dpt_engine_opts eo;
        dpt_engine_opts_defaults(&eo);
        eo.threads = 2;
        eo.balance = DPT_BALANCE_ADAPTIVE;
        if (c)
            eo.batching_local = 1;
        else
            eo.leaves = 16;
        dpt_engine *e = NULL;
        cr_expect_eq(dpt_engine_create(&e, &m, &o, &ds, &eo), DPT_EINVAL);
        cr_expect_null(e);
        cr_expect(strstr(dpt_last_error(), c ? "local batching" : "deterministic mode") != NULL,
                  "message: %s", dpt_last_error());
    }
    dpt_dataset_free(&ds);
}
