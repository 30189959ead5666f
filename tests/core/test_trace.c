/* The per-step trace (dpt_engine_set_trace): every step of every thread
 * handed over once, in order, whether the buffer holds the whole epoch or
 * wraps within it; the records add up to the epoch's own phase times and
 * rows; and tracing changes nothing in the training. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/engine.h"
#include "dpt/error.h"
#include "ref.h"

#define MAX_EPOCHS 4

typedef struct trace_log {
    dpt_step_record *r;
    size_t n, cap;
    int calls;
    dpt_epoch_stats st[MAX_EPOCHS];
    int epochs;
} trace_log;

static void collect(const dpt_step_record *r, size_t n, void *ud)
{
    trace_log *lg = ud;
    if (lg->n + n > lg->cap) {
        lg->cap = 2 * (lg->n + n);
        lg->r = realloc(lg->r, lg->cap * sizeof *lg->r);
    }
    memcpy(lg->r + lg->n, r, n * sizeof *r);
    lg->n += n;
    lg->calls++;
}

static int keep_stats(const dpt_epoch_stats *st, void *ud)
{
    trace_log *lg = ud;
    if (lg->epochs < MAX_EPOCHS) lg->st[lg->epochs++] = *st;
    return 0;
}

static void setup(dpt_model *m, dpt_dataset *ds, dpt_optim_spec *o, size_t rows)
{
    cr_assert_eq(ref_small_mlp(m, ds, o, rows), 0);
}

static dpt_engine *make(const dpt_model *m, const dpt_optim_spec *o, const dpt_dataset *ds,
                        int threads, dpt_balance balance)
{
    dpt_engine_opts eo;
    ref_engine_opts(&eo, threads, 1);
    eo.balance = balance;
    dpt_engine *e = NULL;
    cr_assert_eq(dpt_engine_create(&e, m, o, ds, &eo), 0, "engine: %s", dpt_last_error());
    dpt_model_init_params(m, dpt_engine_params(e), 3, DPT_INIT_UNIFORM);
    return e;
}

/* The phases as an array: compute, wait, reduce, update, shuffle, comm. */
static void phases(const dpt_phase_times *p, double v[6])
{
    v[0] = p->compute, v[1] = p->wait, v[2] = p->reduce;
    v[3] = p->update, v[4] = p->shuffle, v[5] = p->comm;
}

static int near(double a, double b)
{
    return fabs(a - b) <= 1e-9 * fabs(b) + 1e-12;
}

struct trace_case {
    int threads;
    size_t buffer_steps; /* 0: the whole epoch */
    dpt_balance balance;
};

ParameterizedTestParameters(trace, every_step_once_and_sums_match_the_epoch)
{
    static struct trace_case c[] = {
        {1, 0, DPT_BALANCE_STATIC}, {3, 0, DPT_BALANCE_STATIC},   {3, 3, DPT_BALANCE_STATIC},
        {7, 1, DPT_BALANCE_STATIC}, {5, 4, DPT_BALANCE_ADAPTIVE},
    };
    return cr_make_param_array(struct trace_case, c, sizeof c / sizeof c[0]);
}

ParameterizedTest(struct trace_case *c, trace, every_step_once_and_sums_match_the_epoch)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_optim_spec o;
    const size_t n = 517; /* 9 steps of 64 rows, the last of 5 */
    const long S = 9;
    const int P = c->threads, epochs = 3;
    setup(&m, &ds, &o, n);
    dpt_engine *e = make(&m, &o, &ds, P, c->balance);
    trace_log lg = {0};
    cr_assert_eq(dpt_engine_set_trace(e, collect, &lg, c->buffer_steps), 0);
    /* two calls, as dpt train makes one per epoch */
    cr_assert_eq(dpt_engine_train(e, 1, keep_stats, &lg), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_engine_train(e, epochs - 1, keep_stats, &lg), 0, "%s", dpt_last_error());
    cr_assert_eq(lg.epochs, epochs);
    cr_assert_eq(lg.n, (size_t)(epochs * S * P), "%zu records", lg.n);
    size_t per = c->buffer_steps ? c->buffer_steps : (size_t)S;
    cr_expect_eq(lg.calls, epochs * (int)((S + (long)per - 1) / (long)per), "%d hand-overs",
                 lg.calls);

    size_t i = 0;
    for (int ep = 1; ep <= epochs; ep++) {
        double sum[6][16] = {{0}};
        size_t rows[16] = {0};
        for (long s = 1; s <= S; s++) {
            size_t step_rows = 0;
            for (int t = 0; t < P; t++, i++) {
                const dpt_step_record *r = &lg.r[i];
                cr_assert(r->epoch == ep && r->step == s && r->thread == t,
                          "record %zu is epoch %d step %ld thread %d, expected %d %ld %d", i,
                          r->epoch, r->step, r->thread, ep, s, t);
                double v[6];
                phases(&r->t, v);
                for (int k = 0; k < 6; k++) {
                    cr_expect(isfinite(v[k]) && v[k] >= 0, "phase %d of record %zu is %g", k, i,
                              v[k]);
                    sum[k][t] += v[k];
                }
                step_rows += r->rows;
                rows[t] += r->rows;
            }
            cr_expect_eq(step_rows, s < S ? (size_t)64 : n - 64 * (size_t)(S - 1),
                         "step %ld of epoch %d: %zu rows", s, ep, step_rows);
        }
        /* the records add up to the epoch's mean and slowest thread */
        const dpt_epoch_stats *st = &lg.st[ep - 1];
        double mean[6], max[6];
        phases(&st->mean, mean);
        phases(&st->max, max);
        for (int k = 0; k < 6; k++) {
            double tot = 0, hi = 0;
            for (int t = 0; t < P; t++) {
                tot += sum[k][t];
                hi = sum[k][t] > hi ? sum[k][t] : hi;
            }
            cr_expect(near(tot / P, mean[k]), "epoch %d phase %d: mean %.12g, records %.12g", ep, k,
                      mean[k], tot / P);
            cr_expect(near(hi, max[k]), "epoch %d phase %d: max %.12g, records %.12g", ep, k,
                      max[k], hi);
        }
        size_t lo = SIZE_MAX, top = 0;
        for (int t = 0; t < P; t++) {
            lo = rows[t] < lo ? rows[t] : lo;
            top = rows[t] > top ? rows[t] : top;
        }
        cr_expect(lo == st->rows_min && top == st->rows_max, "rows %zu-%zu, stats %zu-%zu", lo, top,
                  st->rows_min, st->rows_max);
    }
    free(lg.r);
    dpt_engine_destroy(e);
    dpt_dataset_free(&ds);
}

Test(trace, tracing_changes_nothing_and_can_be_turned_off)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_optim_spec o;
    setup(&m, &ds, &o, 517);
    dpt_engine *a = make(&m, &o, &ds, 3, DPT_BALANCE_STATIC);
    dpt_engine *b = make(&m, &o, &ds, 3, DPT_BALANCE_STATIC);
    trace_log lg = {0};
    cr_assert_eq(dpt_engine_set_trace(b, collect, &lg, 2), 0);
    cr_assert_eq(dpt_engine_train(a, 2, NULL, NULL), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_engine_train(b, 2, NULL, NULL), 0, "%s", dpt_last_error());
    cr_expect_eq(memcmp(dpt_engine_params(a), dpt_engine_params(b), m.n_params * sizeof(float)), 0,
                 "the traced run trained a different model");
    cr_expect_eq(lg.n, (size_t)(2 * 9 * 3));
    size_t before = lg.n;
    cr_assert_eq(dpt_engine_set_trace(b, NULL, NULL, 0), 0);
    cr_assert_eq(dpt_engine_train(b, 1, NULL, NULL), 0, "%s", dpt_last_error());
    cr_expect_eq(lg.n, before, "records after the trace was turned off");
    free(lg.r);
    dpt_engine_destroy(a);
    dpt_engine_destroy(b);
    dpt_dataset_free(&ds);
}
