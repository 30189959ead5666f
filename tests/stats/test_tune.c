/* The tuning race on synthetic cost models with deterministic pseudo-noise:
 * no timing, so the outcome is the same on every machine. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dpt/error.h"
#include "dpt/tune.h"

/* time = serial + work / threads + sync * threads, times 1.1 for scatter,
 * times adaptive (when set) for balance adaptive, times (1 + noise) with
 * noise in [-amp, amp] from a hash of the run. */
typedef struct {
    double serial, work, sync, amp, adaptive;
    int calls;
    int fail_at; /* call number that fails (0: never) */
} model;

static double unit_noise(uint64_t key)
{
    uint64_t z = key * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53 * 2 - 1;
}

static double measure(void *ctx, const dpt_tune_candidate *c, int rep)
{
    model *m = ctx;
    m->calls++;
    if (m->fail_at && m->calls == m->fail_at) {
        dpt_set_error(DPT_EDIVERGED, "loss became NaN");
        return DPT_EDIVERGED;
    }
    int scatter = !strcmp(c->pin, "scatter");
    double t = m->serial + m->work / c->threads + m->sync * c->threads;
    if (scatter) t *= 1.1;
    if (c->batch > 0) t *= 1 + 64.0 / (double)c->batch; /* small batches cost more steps */
    int adaptive = !strcmp(c->balance, "adaptive");
    if (adaptive && m->adaptive > 0) t *= m->adaptive;
    uint64_t key = (uint64_t)c->threads * 1000003u + (uint64_t)scatter * 7919u +
                   (uint64_t)c->batch * 31u + (uint64_t)adaptive * 104729u + (uint64_t)rep;
    return t * (1 + m->amp * unit_noise(key));
}

static dpt_tune_candidate cand(int threads, const char *pin, long batch, const char *balance)
{
    dpt_tune_candidate c = {.threads = threads, .batch = batch};
    snprintf(c.pin, sizeof c.pin, "%s", pin);
    snprintf(c.balance, sizeof c.balance, "%s", balance);
    return c;
}

static int grid(dpt_tune_candidate *c, const int *threads, int nt, int with_scatter)
{
    int n = 0;
    for (int p = 0; p <= with_scatter; p++)
        for (int i = 0; i < nt; i++) c[n++] = cand(threads[i], p ? "scatter" : "compact", 0, "");
    return n;
}

static const int THREADS[] = {1, 2, 4, 8, 16};

/* What dpt_tune_write_json writes for r, into buf. */
static void written(const dpt_tune_result *r, const char *workload, char *buf, size_t cap)
{
    char path[] = "/tmp/dpt-tune-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(dpt_tune_write_json(r, workload, path), 0, "%s", dpt_last_error());
    FILE *f = fopen(path, "r");
    size_t len = fread(buf, 1, cap - 1, f);
    buf[len] = '\0';
    fclose(f);
    unlink(path);
}

/* What dpt_tune_print writes for r (free it). */
static char *printed(const dpt_tune_result *r)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    dpt_tune_print(r, f);
    fclose(f);
    return text;
}

TestSuite(tune, .timeout = 10);

Test(tune, small_model_trap)
{
    /* compact 1: 1.40  2: 1.20  4: 1.55  8: 2.625  16: 4.9; scatter 10% more */
    model m = {.serial = 0.1, .work = 1.0, .sync = 0.3, .amp = 0.03};
    dpt_tune_candidate c[10];
    int n = grid(c, THREADS, 5, 1);
    dpt_tune_result r;
    cr_assert_eq(dpt_tune_run(c, n, NULL, measure, &m, &r), 0, "%s", dpt_last_error());
    const dpt_tune_entry *best = &r.entries[r.best];
    cr_assert_eq(best->cand.threads, 2);
    cr_assert_str_eq(best->cand.pin, "compact");
    cr_assert_geq(r.runner_up, 0);
    /* 2 threads scattered (1.32) beats 1 thread (1.40) */
    cr_assert_eq(r.entries[r.runner_up].cand.threads, 2);
    cr_assert_str_eq(r.entries[r.runner_up].cand.pin, "scatter");
    cr_assert(r.margin > 0.05 && r.margin < 0.15, "margin %g", r.margin);
    cr_assert(r.significant, "p %g", r.p_value);
    cr_assert_lt(r.p_value, 0.05);
    /* the trap is named: 16 threads, several times slower than 2 */
    cr_assert_geq(r.more_threads_slower, 0);
    cr_assert_eq(r.entries[r.more_threads_slower].cand.threads, 16);
    cr_assert(r.trap_slowdown > 3.5, "%g", r.trap_slowdown);
    /* cheap: the hopeless ones left after the first round */
    cr_assert_eq(r.entries[4].outcome, DPT_TUNE_GROSS);
    cr_assert_eq(r.entries[4].nsamples, 2);
    cr_assert_eq(r.runs, m.calls);
    cr_assert_lt(r.runs, n * 10 / 2, "used %d runs", r.runs);
    /* everyone's samples are kept */
    for (int i = 0; i < n; i++) cr_assert_geq(r.entries[i].nsamples, 2);

    char *text = printed(&r);
    cr_assert(strstr(text, "recommended: 2 threads, pin compact"), "%s", text);
    cr_assert(strstr(text, "16 threads is"), "%s", text);
    free(text);
    dpt_tune_result_free(&r);
}

Test(tune, large_model_scales)
{
    model m = {.serial = 0.5, .work = 400, .sync = 0.05, .amp = 0.03};
    dpt_tune_candidate c[10];
    int n = grid(c, THREADS, 5, 1);
    dpt_tune_result r;
    cr_assert_eq(dpt_tune_run(c, n, NULL, measure, &m, &r), 0);
    cr_assert_eq(r.entries[r.best].cand.threads, 16);
    cr_assert_str_eq(r.entries[r.best].cand.pin, "compact");
    cr_assert_eq(r.more_threads_slower, -1);
    cr_assert(r.significant);
    dpt_tune_result_free(&r);
}

Test(tune, tie_is_not_significant)
{
    /* the same cost at 4 and 8 threads: 0 + 8/4 + 0.25*4 = 3 = 8/8 + 0.25*8 */
    model m = {.serial = 0, .work = 8, .sync = 0.25, .amp = 0.03};
    dpt_tune_candidate c[2];
    int n = grid(c, (const int[]){4, 8}, 2, 0);
    dpt_tune_result r;
    dpt_tune_options o;
    dpt_tune_options_defaults(&o);
    cr_assert_eq(dpt_tune_run(c, n, &o, measure, &m, &r), 0);
    cr_assert_not(r.significant, "p %g", r.p_value);
    cr_assert_lt(fabs(r.margin), 0.05);
    /* neither could be dropped: both ran to the cap */
    cr_assert_eq(r.entries[0].nsamples, o.max_reps);
    cr_assert_eq(r.entries[1].nsamples, o.max_reps);
    cr_assert_eq(r.more_threads_slower, -1);
    dpt_tune_result_free(&r);
}

Test(tune, batch_dimension)
{
    model m = {.serial = 0.1, .work = 1.0, .sync = 0.3, .amp = 0.02};
    dpt_tune_candidate c[6];
    int n = 0;
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 3; t++) c[n++] = cand(THREADS[t], "compact", b ? 1024 : 64, "");
    dpt_tune_result r;
    cr_assert_eq(dpt_tune_run(c, n, NULL, measure, &m, &r), 0);
    cr_assert_eq(r.entries[r.best].cand.batch, 1024);
    cr_assert_eq(r.entries[r.best].cand.threads, 2);
    dpt_tune_result_free(&r);
}

/* Balance as a dimension: adaptive 6% faster here (threads of unequal
 * speed); named in the table, the recommendation and the JSON. */
Test(tune, balance_dimension)
{
    model m = {.serial = 0.1, .work = 1.0, .sync = 0.3, .amp = 0.02, .adaptive = 0.94};
    dpt_tune_candidate c[6];
    int n = 0;
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 3; t++)
            c[n++] = cand(THREADS[t], "compact", 0, b ? "adaptive" : "static");
    dpt_tune_result r;
    cr_assert_eq(dpt_tune_run(c, n, NULL, measure, &m, &r), 0);
    cr_assert_str_eq(r.entries[r.best].cand.balance, "adaptive");
    cr_assert_eq(r.entries[r.best].cand.threads, 2);
    cr_assert_str_eq(r.entries[r.runner_up].cand.balance, "static");
    char *text = printed(&r);
    cr_assert(strstr(text, "recommended: 2 threads, pin compact, balance adaptive"), "%s", text);
    cr_assert(strstr(text, "runner-up 2 threads, pin compact, balance static"), "%s", text);
    free(text);
    char json[65536];
    written(&r, "custom", json, sizeof json);
    cr_assert(strstr(json, "\"balance\": \"adaptive\",\n    \"median_seconds\""), "%s", json);
    dpt_tune_result_free(&r);
}

Test(tune, single_candidate)
{
    model m = {.serial = 1, .amp = 0.01};
    dpt_tune_candidate c = {.threads = 1, .pin = "none"};
    dpt_tune_result r;
    cr_assert_eq(dpt_tune_run(&c, 1, NULL, measure, &m, &r), 0);
    cr_assert_eq(r.best, 0);
    cr_assert_eq(r.runner_up, -1);
    cr_assert_not(r.significant);
    cr_assert_eq(r.entries[0].nsamples, 5); /* confirm_reps */
    dpt_tune_result_free(&r);
}

Test(tune, measurement_failure_stops_the_race)
{
    model m = {.serial = 0.1, .work = 1, .sync = 0.3, .amp = 0.03, .fail_at = 7};
    dpt_tune_candidate c[5];
    int n = grid(c, THREADS, 5, 0);
    dpt_tune_result r;
    cr_assert_eq(dpt_tune_run(c, n, NULL, measure, &m, &r), DPT_EDIVERGED);
    cr_assert_str_eq(dpt_last_error(), "loss became NaN");
    cr_assert_eq(m.calls, 7);
    cr_assert_null(r.entries);
}

Test(tune, bad_options)
{
    model m = {.serial = 1};
    dpt_tune_candidate c = {.threads = 1, .pin = "none"};
    dpt_tune_result r;
    dpt_tune_options o;
    dpt_tune_options_defaults(&o);
    o.confirm_reps = o.max_reps + 1;
    cr_assert_eq(dpt_tune_run(&c, 1, &o, measure, &m, &r), DPT_EINVAL);
    cr_assert_eq(dpt_tune_run(&c, 0, NULL, measure, &m, &r), DPT_EINVAL);
    cr_assert_eq(m.calls, 0);
}

Test(tune, json)
{
    model m = {.serial = 0.1, .work = 1.0, .sync = 0.3, .amp = 0.03};
    dpt_tune_candidate c[5];
    int n = grid(c, THREADS, 5, 0);
    dpt_tune_result r;
    cr_assert_eq(dpt_tune_run(c, n, NULL, measure, &m, &r), 0);
    char text[65536];
    written(&r, "mlp-seed", text, sizeof text);
    cr_assert(strstr(text, "\"schema\": \"dpt-tune/1\""));
    cr_assert(strstr(text, "\"recommended\": {\n    \"threads\": 2,"), "%s", text);
    cr_assert(strstr(text, "\"runner_up\": {"));
    cr_assert(strstr(text, "\"candidates\": ["));
    cr_assert(strstr(text, "\"outcome\": \"dropped-clearly-slower\""));
    cr_assert(strstr(text, "\"significant\": true"));
    dpt_tune_result_free(&r);
}
