/* The tuning race: run everything a little, drop what is clearly or
 * significantly slower than the current best, spend the remaining runs on
 * the close candidates, then confirm the winner against the runner-up.
 * Runs are interleaved over the candidates (with a rotating start) so that
 * machine drift spreads over all of them instead of favouring one. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/error.h"
#include "dpt/file.h"
#include "dpt/stats.h"
#include "dpt/tune.h"

void dpt_tune_options_defaults(dpt_tune_options *o)
{
    o->first_reps = 2;
    o->max_reps = 10;
    o->confirm_reps = 5;
    o->alpha = 0.05;
    o->gross = 0.25;
}

void dpt_tune_result_free(dpt_tune_result *r)
{
    if (r->entries)
        for (int i = 0; i < r->n; i++) free(r->entries[i].samples);
    free(r->entries);
    memset(r, 0, sizeof *r);
}

typedef struct {
    dpt_tune_result *r;
    const dpt_tune_options *opt;
    dpt_tune_measure_fn measure;
    void *ctx;
    int rotation; /* start of the next interleaved pass */
} race;

static int measure_once(race *rc, int i)
{
    dpt_tune_entry *e = &rc->r->entries[i];
    double s = rc->measure(rc->ctx, &e->cand, e->nsamples);
    if (!(s >= 0) || !isfinite(s)) {
        if (s < 0 && s >= -1000 && s == floor(s)) return (int)s;
        return dpt_set_error(DPT_EINVAL, "measuring %d threads, pin %s gave %g seconds",
                             e->cand.threads, e->cand.pin, s);
    }
    e->samples[e->nsamples++] = s;
    e->median = dpt_stats_median(e->samples, (size_t)e->nsamples);
    rc->r->runs++;
    return 0;
}

/* One run of every entry with want[i] set, starting at a rotating offset. */
static int pass(race *rc, const int *want)
{
    int n = rc->r->n;
    for (int k = 0; k < n; k++) {
        int i = (rc->rotation + k) % n;
        if (!want[i]) continue;
        int st = measure_once(rc, i);
        if (st) return st;
    }
    rc->rotation = (rc->rotation + 1) % n;
    return 0;
}

/* Lower median wins; equal medians go to fewer threads, then to the earlier candidate. */
static int faster(const dpt_tune_entry *a, const dpt_tune_entry *b)
{
    if (a->median != b->median) return a->median < b->median;
    return a->cand.threads < b->cand.threads;
}

/* Index of the fastest entry among those with mask[i] (or all when mask is
 * NULL), other than skip; -1 when none. */
static int fastest(const dpt_tune_result *r, const int *mask, int skip)
{
    int best = -1;
    for (int i = 0; i < r->n; i++) {
        if (i == skip || (mask && !mask[i])) continue;
        if (best < 0 || faster(&r->entries[i], &r->entries[best])) best = i;
    }
    return best;
}

static double max_of(const double *x, int n)
{
    double m = x[0];
    for (int i = 1; i < n; i++) m = fmax(m, x[i]);
    return m;
}

static double min_of(const double *x, int n)
{
    double m = x[0];
    for (int i = 1; i < n; i++) m = fmin(m, x[i]);
    return m;
}

/* One-sided p that a is slower than b. */
static int p_slower(const dpt_tune_entry *a, const dpt_tune_entry *b, double *p)
{
    dpt_utest u;
    int st = dpt_stats_utest(a->samples, (size_t)a->nsamples, b->samples, (size_t)b->nsamples,
                             DPT_ALT_GREATER, &u);
    *p = st ? NAN : u.p;
    return st;
}

static int check_options(const dpt_tune_options *o)
{
    if (o->first_reps < 1 || o->max_reps < o->first_reps || o->confirm_reps < 1 ||
        o->confirm_reps > o->max_reps || !(o->alpha > 0 && o->alpha < 1) || !(o->gross >= 0))
        return dpt_set_error(DPT_EINVAL,
                             "tune options: need 1 <= first_reps <= max_reps, 1 <= confirm_reps "
                             "<= max_reps, 0 < alpha < 1, gross >= 0");
    return 0;
}

int dpt_tune_run(const dpt_tune_candidate *cands, int n, const dpt_tune_options *opt,
                 dpt_tune_measure_fn measure, void *ctx, dpt_tune_result *out)
{
    dpt_tune_options defaults;
    if (!opt) {
        dpt_tune_options_defaults(&defaults);
        opt = &defaults;
    }
    memset(out, 0, sizeof *out);
    if (n < 1) return dpt_set_error(DPT_EINVAL, "tune: no candidate configurations");
    int st = check_options(opt);
    if (st) return st;
    int *alive = NULL, *want = NULL;
    out->entries = calloc((size_t)n, sizeof *out->entries);
    alive = calloc((size_t)n, sizeof *alive);
    want = calloc((size_t)n, sizeof *want);
    if (!out->entries || !alive || !want) goto nomem;
    out->n = n;
    for (int i = 0; i < n; i++) {
        out->entries[i].cand = cands[i];
        out->entries[i].median = NAN;
        out->entries[i].p_slower = NAN;
        out->entries[i].samples = malloc((size_t)opt->max_reps * sizeof(double));
        if (!out->entries[i].samples) goto nomem;
        alive[i] = 1;
    }
    race rc = {out, opt, measure, ctx, 0};

    for (int rep = 0; rep < opt->first_reps; rep++)
        if ((st = pass(&rc, alive))) goto fail;

    for (;;) {
        int best = fastest(out, alive, -1);
        const dpt_tune_entry *b = &out->entries[best];
        int nalive = 0, more = 0;
        for (int i = 0; i < n; i++) {
            if (!alive[i] || i == best) continue;
            dpt_tune_entry *e = &out->entries[i];
            if (min_of(e->samples, e->nsamples) >
                max_of(b->samples, b->nsamples) * (1 + opt->gross)) {
                e->outcome = DPT_TUNE_GROSS;
                alive[i] = 0;
            } else if ((st = p_slower(e, b, &e->p_slower))) {
                goto fail;
            } else if (e->p_slower < opt->alpha) {
                e->outcome = DPT_TUNE_TEST;
                alive[i] = 0;
            }
        }
        for (int i = 0; i < n; i++) {
            nalive += alive[i];
            want[i] = alive[i] && out->entries[i].nsamples < opt->max_reps;
            more += want[i];
        }
        if (nalive == 1 || !more) break;
        if ((st = pass(&rc, want))) goto fail;
    }

    /* Confirm: the winner and the runner-up need enough runs for the U test
     * to be able to call their difference. Extra runs can reorder them, so
     * pick again after each pass. */
    for (;;) {
        int best = fastest(out, NULL, -1), second = fastest(out, NULL, best);
        memset(want, 0, (size_t)n * sizeof *want);
        int more = 0;
        if (out->entries[best].nsamples < opt->confirm_reps) want[best] = more = 1;
        if (second >= 0 && out->entries[second].nsamples < opt->confirm_reps)
            want[second] = more = 1;
        if (!more) {
            out->best = best;
            out->runner_up = second;
            break;
        }
        if ((st = pass(&rc, want))) goto fail;
    }

    const dpt_tune_entry *b = &out->entries[out->best];
    out->entries[out->best].p_slower = NAN;
    out->entries[out->best].outcome = DPT_TUNE_RAN;
    for (int i = 0; i < n; i++)
        if (i != out->best && (st = p_slower(&out->entries[i], b, &out->entries[i].p_slower)))
            goto fail;
    out->margin = NAN;
    out->p_value = 1;
    if (out->runner_up >= 0) {
        const dpt_tune_entry *r2 = &out->entries[out->runner_up];
        dpt_utest u;
        if ((st = dpt_stats_utest(b->samples, (size_t)b->nsamples, r2->samples,
                                  (size_t)r2->nsamples, DPT_ALT_TWO_SIDED, &u)))
            goto fail;
        out->margin = b->median > 0 ? r2->median / b->median - 1 : NAN;
        out->p_value = u.p;
    }
    out->significant = out->p_value < opt->alpha;

    out->more_threads_slower = -1;
    out->trap_slowdown = NAN;
    int most = -1;
    for (int i = 0; i < n; i++) {
        const dpt_tune_entry *e = &out->entries[i];
        if (e->cand.batch == b->cand.batch && !strcmp(e->cand.pin, b->cand.pin) &&
            !strcmp(e->cand.balance, b->cand.balance) &&
            (most < 0 || e->cand.threads > out->entries[most].cand.threads))
            most = i;
    }
    if (most >= 0 && most != out->best && out->entries[most].cand.threads > b->cand.threads) {
        const dpt_tune_entry *m = &out->entries[most];
        if (m->outcome != DPT_TUNE_RAN || m->p_slower < opt->alpha) {
            out->more_threads_slower = most;
            out->trap_slowdown = b->median > 0 ? m->median / b->median : NAN;
        }
    }
    free(alive);
    free(want);
    return 0;

nomem:
    st = dpt_set_error(DPT_ENOMEM, "out of memory for %d tune candidates", n);
fail:
    free(alive);
    free(want);
    dpt_tune_result_free(out);
    return st;
}

static const char *outcome_name(dpt_tune_outcome o)
{
    return o == DPT_TUNE_GROSS  ? "dropped-clearly-slower"
           : o == DPT_TUNE_TEST ? "dropped-significantly-slower"
                                : "raced";
}

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *setting(const dpt_tune_entry *e)
{
    return json_pack("{s:i, s:s, s:I, s:o, s:o}", "threads", e->cand.threads, "pin", e->cand.pin,
                     "batch", (json_int_t)e->cand.batch, "balance",
                     e->cand.balance[0] ? json_string(e->cand.balance) : json_null(),
                     "median_seconds", num(e->median));
}

int dpt_tune_write_json(const dpt_tune_result *r, const char *workload, const char *path)
{
    json_t *cands = json_array();
    for (int i = 0; i < r->n; i++) {
        const dpt_tune_entry *e = &r->entries[i];
        json_t *s = json_array();
        for (int k = 0; k < e->nsamples; k++) json_array_append_new(s, json_real(e->samples[k]));
        json_t *c = setting(e);
        json_object_set_new(c, "reps", json_integer(e->nsamples));
        json_object_set_new(c, "samples", s);
        json_object_set_new(c, "outcome", json_string(outcome_name(e->outcome)));
        json_object_set_new(c, "p_slower", num(e->p_slower));
        json_array_append_new(cands, c);
    }
    json_t *trap = json_null();
    if (r->more_threads_slower >= 0) {
        trap = setting(&r->entries[r->more_threads_slower]);
        json_object_set_new(trap, "slowdown", num(r->trap_slowdown));
    }
    json_t *root = json_pack(
        "{s:s, s:s, s:o, s:o, s:o, s:o, s:b, s:i, s:o, s:o}", "schema", "dpt-tune/1", "workload",
        workload ? workload : "", "recommended", setting(&r->entries[r->best]), "runner_up",
        r->runner_up >= 0 ? setting(&r->entries[r->runner_up]) : json_null(), "margin",
        num(r->margin), "p_value", num(r->p_value), "significant", r->significant, "runs", r->runs,
        "more_threads_slower", trap, "candidates", cands);
    if (!root) return dpt_set_error(DPT_ENOMEM, "cannot build the JSON of %s", path);
    int st = dpt_json_write_atomic(root, path);
    json_decref(root);
    return st;
}

static void describe(const dpt_tune_candidate *c, char *buf, size_t cap)
{
    int len = snprintf(buf, cap, "%d threads, pin %s", c->threads, c->pin);
    if (c->batch > 0 && len >= 0 && (size_t)len < cap)
        len += snprintf(buf + len, cap - (size_t)len, ", batch %ld", c->batch);
    if (c->balance[0] && len >= 0 && (size_t)len < cap)
        snprintf(buf + len, cap - (size_t)len, ", balance %s", c->balance);
}

void dpt_tune_print(const dpt_tune_result *r, FILE *f)
{
    fprintf(f, "%7s %-8s %6s %-8s %4s %10s %8s %22s  %s\n", "threads", "pin", "batch", "balance",
            "reps", "median ms", "vs best", "p slower (one-sided U)", "outcome");
    for (int i = 0; i < r->n; i++) {
        const dpt_tune_entry *e = &r->entries[i];
        const dpt_tune_entry *b = &r->entries[r->best];
        char batch[24];
        snprintf(batch, sizeof batch, e->cand.batch > 0 ? "%ld" : "-", e->cand.batch);
        fprintf(f, "%7d %-8s %6s %-8s %4d %10.3f %+7.1f%%", e->cand.threads, e->cand.pin, batch,
                e->cand.balance[0] ? e->cand.balance : "-", e->nsamples, 1e3 * e->median,
                100 * (e->median / b->median - 1));
        if (isfinite(e->p_slower))
            fprintf(f, " %22.3g", e->p_slower);
        else
            fprintf(f, " %22s", "-");
        fprintf(f, "  %s\n",
                i == r->best        ? "recommended"
                : i == r->runner_up ? "runner-up"
                                    : outcome_name(e->outcome));
    }
    char what[128];
    describe(&r->entries[r->best].cand, what, sizeof what);
    fprintf(f, "recommended: %s (%.3f ms)", what, 1e3 * r->entries[r->best].median);
    if (r->runner_up >= 0) {
        describe(&r->entries[r->runner_up].cand, what, sizeof what);
        fprintf(f, "; runner-up %s is %.1f%% slower (%s, two-sided U test p = %.3g)\n", what,
                100 * r->margin, r->significant ? "significant" : "not significant", r->p_value);
    } else {
        fputc('\n', f);
    }
    if (r->more_threads_slower >= 0) {
        const dpt_tune_entry *m = &r->entries[r->more_threads_slower];
        fprintf(f,
                "note: %d threads is %.2fx slower than %d: the work per step is too small to "
                "split over that many threads\n",
                m->cand.threads, r->trap_slowdown, r->entries[r->best].cand.threads);
    }
}
