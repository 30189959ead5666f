/* The regression gate of dpt/compare.h: pairing the rows of two bench
 * reports, the U tests on rows and speedup curves, the outcome, and the
 * report as text and as dpt-compare/1 JSON. The words are those `dpt
 * compare` has always printed, so its output did not change when the gate
 * moved here from the tool. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/compare.h"
#include "dpt/error.h"
#include "dpt/file.h"
#include "dpt/report.h"
#include "dpt/stats.h"

void dpt_compare_opts_defaults(dpt_compare_opts *o)
{
    memset(o, 0, sizeof *o);
    o->threshold = 0.05;
    o->alpha = 0.05;
    o->scaling_fails = 1;
}

const char *dpt_verdict_name(dpt_verdict v)
{
    switch (v) {
    case DPT_VERDICT_SAME:
        return "same";
    case DPT_VERDICT_FASTER:
        return "faster";
    case DPT_VERDICT_SLOWER:
        return "slower";
    case DPT_VERDICT_NOISE:
        return "noise";
    case DPT_VERDICT_BETTER:
        return "better";
    case DPT_VERDICT_WORSE:
        return "worse";
    case DPT_VERDICT_UNDECIDED:
        return "cannot decide";
    case DPT_VERDICT_NOT_SLOWER:
        return "same or faster";
    case DPT_VERDICT_NOT_WORSE:
        return "same or better";
    }
    return "?";
}

void dpt_compare_result_free(dpt_compare_result *r)
{
    free(r->base_name);
    free(r->new_name);
    free(r->rows);
    free(r->curves);
    free(r->only_base);
    free(r->only_new);
    for (size_t i = 0; i < r->nmessages; i++) free(r->messages[i]);
    free(r->messages);
    memset(r, 0, sizeof *r);
}

/* ---- words ---- */

static const char *batch_str(long batch, char *buf, size_t cap)
{
    if (batch > 0)
        snprintf(buf, cap, "%ld", batch);
    else
        snprintf(buf, cap, "full");
    return buf;
}

/* "linreg, 4 threads, pin compact" ("linreg, 2 ranks x 4 threads, ..."). */
static const char *config_str(const char *workload, int ranks, int threads, const char *pin,
                              char *buf, size_t cap)
{
    char rk[32] = "";
    if (ranks > 1) snprintf(rk, sizeof rk, "%d ranks x ", ranks);
    snprintf(buf, cap, "%s, %s%d thread%s, pin %s", workload, rk, threads, threads == 1 ? "" : "s",
             pin);
    return buf;
}

static const char *row_str(const dpt_bench_result *r, char *buf, size_t cap)
{
    return config_str(r->workload, r->ranks, r->threads, r->pin, buf, cap);
}

/* Append a printf-formatted line to out->messages; 0 or DPT_ENOMEM. */
static int add_msg(dpt_compare_result *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int add_msg(dpt_compare_result *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *text = len < 0 ? NULL : malloc((size_t)len + 1);
    char **grown = text ? realloc(out->messages, (out->nmessages + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(text);
        return dpt_set_error(DPT_ENOMEM, "out of memory for the comparison's messages");
    }
    out->messages = grown;
    va_start(ap, fmt);
    vsnprintf(text, (size_t)len + 1, fmt, ap);
    va_end(ap);
    out->messages[out->nmessages++] = text;
    return 0;
}

/* ---- matching ---- */

static int same_key(const dpt_bench_result *a, const dpt_bench_result *b)
{
    return a->ranks == b->ranks && a->threads == b->threads && a->batch == b->batch &&
           !strcmp(a->workload, b->workload) && !strcmp(a->pin, b->pin);
}

/* The row of 1 rank and 1 thread that speedups are measured against. */
static int is_baseline(const dpt_compare_key *k)
{
    return k->ranks == 1 && k->threads == 1;
}

/* Rows of r with the key of x (and its isa when with_isa); the last such index in *at. */
static int count_key(const dpt_bench_report *r, const dpt_bench_result *x, int with_isa, size_t *at)
{
    int c = 0;
    for (size_t i = 0; i < r->nresults; i++)
        if (same_key(&r->results[i], x) && (!with_isa || !strcmp(r->results[i].isa, x->isa))) {
            c++;
            *at = i;
        }
    return c;
}

/* Every row has samples and no configuration and isa appears twice. */
static int check_rows(const dpt_bench_report *r, const char *file)
{
    for (size_t i = 0; i < r->nresults; i++) {
        const dpt_bench_result *x = &r->results[i];
        char b[24], what[160];
        size_t j;
        if (x->reps < 1 || !x->samples)
            return dpt_set_error(DPT_EINVAL, "%s: results[%zu] (%s) has no samples", file, i,
                                 row_str(x, what, sizeof what));
        if (count_key(r, x, 1, &j) > 1)
            return dpt_set_error(DPT_EINVAL,
                                 "%s: results[%zu] and results[%zu] are the same configuration "
                                 "(%s, batch %s, isa %s)",
                                 file, i, j, row_str(x, what, sizeof what),
                                 batch_str(x->batch, b, sizeof b), x->isa);
    }
    return 0;
}

static void key_of(const dpt_bench_result *r, dpt_compare_key *k)
{
    memset(k, 0, sizeof *k);
    snprintf(k->workload, sizeof k->workload, "%s", r->workload);
    snprintf(k->pin, sizeof k->pin, "%s", r->pin);
    snprintf(k->isa, sizeof k->isa, "%s", r->isa);
    k->ranks = r->ranks;
    k->threads = r->threads;
    k->batch = r->batch;
}

/* Verdict from a change (positive = the quantity grew) and its p-value. */
static dpt_verdict judge(double change, double p, double threshold, double alpha, dpt_verdict up,
                         dpt_verdict down)
{
    if (!(fabs(change) > threshold)) return DPT_VERDICT_SAME;
    if (!(p < alpha)) return DPT_VERDICT_NOISE;
    return change > 0 ? up : down;
}

static double two_sided_p(const double *a, size_t na, const double *b, size_t nb)
{
    dpt_utest u;
    return dpt_stats_utest(a, na, b, nb, DPT_ALT_TWO_SIDED, &u) ? NAN : u.p;
}

/* Paired verdict from the interval [lo, hi] of a relative change (positive
 * = the quantity grew): an interval wholly beyond the threshold, or wholly
 * within it, decides; so does one that straddles only the threshold on the
 * harmless side (`up` is the harmful direction for rows, times that grew;
 * `down` for curves, speedups that fell): it rules out the harm, which is
 * what the gate asks, and says `ok` (same or faster, same or better). */
static dpt_verdict judge_interval(double lo, double hi, double threshold, dpt_verdict up,
                                  dpt_verdict down, int harm_up, dpt_verdict ok)
{
    if (!isfinite(lo) || !isfinite(hi)) return DPT_VERDICT_UNDECIDED;
    if (lo > threshold) return up;
    if (hi < -threshold) return down;
    if (lo >= -threshold && hi <= threshold) return DPT_VERDICT_SAME;
    if (harm_up ? hi <= threshold : lo >= -threshold) return ok;
    return DPT_VERDICT_UNDECIDED;
}

/* Signed-rank p, Hodges-Lehmann estimate and interval of the n paired log
 * ratios d, as relative changes exp(.) - 1. 0 or DPT_ENOMEM. */
static int paired_change(const double *d, size_t n, double alpha, double *p, double *est,
                         double *lo, double *hi, double *level)
{
    dpt_srtest t;
    dpt_hl h;
    *p = *est = *lo = *hi = NAN;
    *level = 0;
    int rc = dpt_stats_signed_rank(d, n, DPT_ALT_TWO_SIDED, &t);
    if (!rc) rc = dpt_stats_hodges_lehmann(d, n, 1 - alpha, &h);
    /* a time that is not finite and > 0 leaves the pair undecided */
    if (rc) return rc == DPT_ENOMEM ? rc : 0;
    *p = t.p;
    *est = expm1(h.estimate);
    *lo = expm1(h.lo); /* NAN stays NAN */
    *hi = expm1(h.hi);
    *level = h.level;
    return 0;
}

/* Two-sample Hodges-Lehmann change of b over a (medians of the ratios),
 * with the interval at 1 - alpha. 0 or DPT_ENOMEM. */
static int shift_change(const double *a, size_t na, const double *b, size_t nb, double alpha,
                        double *est, double *lo, double *hi, double *level)
{
    double *la = malloc((na + nb) * sizeof *la);
    if (!la) return dpt_set_error(DPT_ENOMEM, "out of memory for the intervals");
    for (size_t i = 0; i < na; i++) la[i] = log(a[i]);
    for (size_t j = 0; j < nb; j++) la[na + j] = log(b[j]);
    dpt_hl h;
    int rc = dpt_stats_hodges_lehmann_shift(la, na, la + na, nb, 1 - alpha, &h);
    free(la);
    *est = expm1(h.estimate);
    *lo = expm1(h.lo);
    *hi = expm1(h.hi);
    *level = h.level;
    /* a time that is not finite and > 0 leaves the row without an estimate */
    return rc == DPT_ENOMEM ? rc : 0;
}

/* The machine and settings the two files came from, and each file's own
 * warnings: a comparison across them measures more than the code. */
static int warn_context(const dpt_bench_report *b, const dpt_bench_report *n,
                        dpt_compare_result *out)
{
    const dpt_bench_context *x = &b->context, *y = &n->context;
    int rc;
    if (strcmp(x->cpu_model, y->cpu_model) &&
        (rc = add_msg(out, "warning: other CPU: base '%s', new '%s'",
                      x->cpu_model[0] ? x->cpu_model : "unknown",
                      y->cpu_model[0] ? y->cpu_model : "unknown")))
        return rc;
    if (strcmp(x->isa, y->isa) &&
        (rc = add_msg(out, "warning: other ISA: base '%s', new '%s'",
                      x->isa[0] ? x->isa : "unknown", y->isa[0] ? y->isa : "unknown")))
        return rc;
    /* a file without the settings (older dpt) is no reason to warn */
    if (x->engine[0] && y->engine[0] && strcmp(x->engine, y->engine) &&
        (rc = add_msg(out, "warning: other engine settings: base '%s', new '%s'", x->engine,
                      y->engine)))
        return rc;
    if ((x->packages != y->packages || x->numa_nodes != y->numa_nodes || x->cores != y->cores ||
         x->pus != y->pus) &&
        (rc = add_msg(out,
                      "warning: other topology: base %d packages, %d NUMA nodes, %d cores, %d "
                      "PUs; new %d, %d, %d, %d",
                      x->packages, x->numa_nodes, x->cores, x->pus, y->packages, y->numa_nodes,
                      y->cores, y->pus)))
        return rc;
    if (strcmp(x->compiler, y->compiler) &&
        (rc = add_msg(out, "note: other compiler: base '%s', new '%s'", x->compiler, y->compiler)))
        return rc;
    const dpt_bench_report *rs[2] = {b, n};
    const char *names[2] = {out->base_name, out->new_name};
    for (int k = 0; k < 2; k++) {
        char w[16][DPT_WARNING_LEN];
        size_t nw = dpt_bench_report_warnings(rs[k], w, 16);
        for (size_t i = 0; i < nw && i < 16; i++)
            if ((rc = add_msg(out, "warning: %s: %s", names[k], w[i]))) return rc;
        if (nw > 16 && (rc = add_msg(out, "warning: %s: %zu more warnings", names[k], nw - 16)))
            return rc;
    }
    return 0;
}

/* Configurations of r that no row pairs with (which: 0 base, 1 new). */
static int list_unpaired(const dpt_bench_report *r, int which, dpt_compare_result *out)
{
    dpt_compare_key **list = which ? &out->only_new : &out->only_base;
    size_t *n = which ? &out->nonly_new : &out->nonly_base;
    const char *name = which ? out->new_name : out->base_name;
    *list = calloc(r->nresults + 1, sizeof **list);
    if (!*list)
        return dpt_set_error(DPT_ENOMEM, "out of memory comparing %zu results", r->nresults);
    for (size_t i = 0; i < r->nresults; i++) {
        int found = 0;
        for (size_t k = 0; k < out->nrows && !found; k++)
            found = (which ? out->rows[k].new_index : out->rows[k].base_index) == i;
        if (found) continue;
        char what[160];
        key_of(&r->results[i], &(*list)[(*n)++]);
        /* a base configuration the new report lost is a failure unless allowed */
        int fails = !which && !out->allow_missing;
        int rc = add_msg(out, "%s: only in %s: %s%s", fails ? "warning" : "note", name,
                         row_str(&r->results[i], what, sizeof what),
                         fails ? " (missing from the new report)" : "");
        if (rc) return rc;
    }
    return 0;
}

/* Speedup curves: every other row against the row of 1 rank and 1 thread
 * of the same workload, pin and batch. */
static int compare_curves(const dpt_bench_report *base, const dpt_bench_report *cur,
                          dpt_compare_result *out)
{
    int rc = 0;
    int most = 1;
    for (size_t k = 0; k < out->nrows; k++) {
        if (out->rows[k].base_reps > most) most = out->rows[k].base_reps;
        if (out->rows[k].new_reps > most) most = out->rows[k].new_reps;
    }
    out->curves = calloc(out->nrows + 1, sizeof *out->curves);
    double *nb = malloc((size_t)most * sizeof *nb), *nn = malloc((size_t)most * sizeof *nn);
    double *d = malloc((size_t)most * sizeof *d);
    if (!out->curves || !nb || !nn || !d) {
        rc = dpt_set_error(DPT_ENOMEM, "out of memory for the speedup curves");
        goto done;
    }
    for (size_t k = 0; k < out->nrows; k++) {
        const dpt_compare_row *p = &out->rows[k];
        if (is_baseline(&p->key)) continue;
        size_t one = out->nrows;
        for (size_t m = 0; m < out->nrows && one == out->nrows; m++)
            if (is_baseline(&out->rows[m].key) && out->rows[m].key.batch == p->key.batch &&
                !strcmp(out->rows[m].key.workload, p->key.workload) &&
                !strcmp(out->rows[m].key.pin, p->key.pin))
                one = m;
        if (one == out->nrows) continue;
        const dpt_compare_row *o = &out->rows[one];
        dpt_compare_curve *s = &out->curves[out->ncurves++];
        s->key = p->key;
        s->row = k;
        s->one = one;
        s->base_speedup = o->base_median / p->base_median;
        s->new_speedup = o->new_median / p->new_median;
        s->change = s->new_speedup / s->base_speedup - 1;
        if (fabs(s->change) < 5e-5) s->change = 0; /* rounding of equal curves, not "-0.0%" */
        /* Repetitions over their own file's baseline median: the test asks
         * whether the time relative to 1 thread moved, not the time. */
        const double *bs = base->results[p->base_index].samples;
        const double *ns = cur->results[p->new_index].samples;
        for (int i = 0; i < p->base_reps; i++) nb[i] = bs[i] / o->base_median;
        for (int i = 0; i < p->new_reps; i++) nn[i] = ns[i] / o->new_median;
        s->sided = DPT_ALT_TWO_SIDED;
        s->interval_lo = s->interval_hi = NAN;
        if (out->paired) {
            /* per pair, the log of new speedup over base speedup */
            const double *b1 = base->results[o->base_index].samples;
            const double *n1 = cur->results[o->new_index].samples;
            size_t np = (size_t)(p->base_reps < o->base_reps ? p->base_reps : o->base_reps);
            for (size_t i = 0; i < np; i++) d[i] = log((n1[i] / ns[i]) / (b1[i] / bs[i]));
            double est, level;
            if ((rc = paired_change(d, np, out->alpha, &s->p, &est, &s->interval_lo,
                                    &s->interval_hi, &level)))
                goto done;
            s->change = est;
            s->verdict =
                judge_interval(s->interval_lo, s->interval_hi, out->threshold, DPT_VERDICT_BETTER,
                               DPT_VERDICT_WORSE, 0, DPT_VERDICT_NOT_WORSE);
        } else {
            s->p = two_sided_p(nb, (size_t)p->base_reps, nn, (size_t)p->new_reps);
            s->verdict = judge(s->change, s->p, out->threshold, out->alpha, DPT_VERDICT_BETTER,
                               DPT_VERDICT_WORSE);
        }
        /* a row that abstains takes its curve with it */
        if (p->abstained || o->abstained) s->verdict = DPT_VERDICT_UNDECIDED;
        out->worse += s->verdict == DPT_VERDICT_WORSE;
    }
done:
    free(nb);
    free(nn);
    free(d);
    return rc;
}

/* ---- dropping disturbed samples ---- */

/* The reports with their disturbed samples left out, and per row what
 * was dropped and whether it abstains. */
typedef struct filtered {
    dpt_bench_report base, cur;
    int *drop_b, *drop_c;             /* per row of the originals: samples left out */
    unsigned char *short_b, *short_c; /* per row: too few clean samples, abstains */
    int pairs, clean;                 /* paired: pairs in all, clean ones */
} filtered;

static int disturbed_at(const dpt_bench_result *x, int i)
{
    return x->telemetry && i < x->reps && x->telemetry[i].disturbed;
}

/* Append x to dst with the samples i where keep[i] (keep NULL: all). */
static int copy_row(dpt_bench_report *dst, const dpt_bench_result *x, const unsigned char *keep)
{
    double *v = malloc((size_t)x->reps * sizeof *v);
    dpt_telemetry *t = x->telemetry ? malloc((size_t)x->reps * sizeof *t) : NULL;
    int n = 0;
    if (!v || (x->telemetry && !t)) {
        free(v);
        free(t);
        return dpt_set_error(DPT_ENOMEM, "out of memory dropping disturbed samples");
    }
    for (int i = 0; i < x->reps; i++) {
        if (keep && !keep[i]) continue;
        if (t) t[n] = x->telemetry[i];
        v[n++] = x->samples[i];
    }
    dpt_bench_result *row =
        dpt_bench_report_add(dst, x->workload, x->threads, x->pin, x->isa, x->batch, v, n);
    free(v);
    if (!row) {
        free(t);
        return DPT_ENOMEM;
    }
    double *samples = row->samples;
    *row = *x; /* every derived field as it was */
    row->samples = samples;
    row->reps = n;
    row->telemetry = t;
    return 0;
}

/* Stored: a row keeps its clean samples, or all of them (and abstains)
 * when fewer than DPT_COMPARE_MIN_CLEAN_REPS are clean. */
static int filter_stored(const dpt_bench_report *r, dpt_bench_report *dst, int *drop,
                         unsigned char *short_rows)
{
    int rc = 0;
    for (size_t k = 0; k < r->nresults && !rc; k++) {
        const dpt_bench_result *x = &r->results[k];
        unsigned char *keep = malloc((size_t)x->reps + 1);
        if (!keep) return dpt_set_error(DPT_ENOMEM, "out of memory dropping disturbed samples");
        int clean = 0;
        for (int i = 0; i < x->reps; i++) clean += keep[i] = !disturbed_at(x, i);
        short_rows[k] = clean < DPT_COMPARE_MIN_CLEAN_REPS;
        drop[k] = short_rows[k] ? 0 : x->reps - clean;
        rc = copy_row(dst, x, short_rows[k] ? NULL : keep);
        free(keep);
    }
    return rc;
}

/* Paired: pair i goes when any sample i of either report is disturbed;
 * with fewer than DPT_COMPARE_MIN_CLEAN_PAIRS clean pairs every row keeps
 * all and abstains. */
static int filter_paired(const dpt_bench_report *base, const dpt_bench_report *cur, filtered *f)
{
    const dpt_bench_report *rs[2] = {base, cur};
    for (int s = 0; s < 2; s++)
        for (size_t k = 0; k < rs[s]->nresults; k++)
            if (rs[s]->results[k].reps > f->pairs) f->pairs = rs[s]->results[k].reps;
    unsigned char *keep = malloc((size_t)f->pairs + 1);
    if (!keep) return dpt_set_error(DPT_ENOMEM, "out of memory dropping disturbed samples");
    for (int i = 0; i < f->pairs; i++) {
        keep[i] = 1;
        for (int s = 0; s < 2; s++)
            for (size_t k = 0; k < rs[s]->nresults; k++)
                if (disturbed_at(&rs[s]->results[k], i)) keep[i] = 0;
        f->clean += keep[i];
    }
    const int abstain = f->clean < DPT_COMPARE_MIN_CLEAN_PAIRS;
    int rc = 0;
    dpt_bench_report *dst[2] = {&f->base, &f->cur};
    int *drop[2] = {f->drop_b, f->drop_c};
    unsigned char *sh[2] = {f->short_b, f->short_c};
    for (int s = 0; s < 2; s++)
        for (size_t k = 0; k < rs[s]->nresults && !rc; k++) {
            const dpt_bench_result *x = &rs[s]->results[k];
            int kept = 0;
            for (int i = 0; i < x->reps; i++) kept += keep[i];
            sh[s][k] = (unsigned char)abstain;
            drop[s][k] = abstain ? 0 : x->reps - kept;
            rc = copy_row(dst[s], x, abstain ? NULL : keep);
        }
    free(keep);
    return rc;
}

static void filtered_free(filtered *f)
{
    dpt_bench_report_free(&f->base);
    dpt_bench_report_free(&f->cur);
    free(f->drop_b);
    free(f->drop_c);
    free(f->short_b);
    free(f->short_c);
}

static int filter(const dpt_bench_report *base, const dpt_bench_report *cur, int paired,
                  filtered *f)
{
    memset(f, 0, sizeof *f);
    dpt_bench_report_init(&f->base);
    dpt_bench_report_init(&f->cur);
    f->base.context = base->context;
    f->cur.context = cur->context;
    f->drop_b = calloc(base->nresults + 1, sizeof *f->drop_b);
    f->drop_c = calloc(cur->nresults + 1, sizeof *f->drop_c);
    f->short_b = calloc(base->nresults + 1, 1);
    f->short_c = calloc(cur->nresults + 1, 1);
    if (!f->drop_b || !f->drop_c || !f->short_b || !f->short_c)
        return dpt_set_error(DPT_ENOMEM, "out of memory dropping disturbed samples");
    if (paired) return filter_paired(base, cur, f);
    int rc = filter_stored(base, &f->base, f->drop_b, f->short_b);
    return rc ? rc : filter_stored(cur, &f->cur, f->drop_c, f->short_c);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* What dropping the disturbed samples did, in the messages. */
static int note_dropped(const filtered *f, int paired, dpt_compare_result *out)
{
    if (paired && f->clean < DPT_COMPARE_MIN_CLEAN_PAIRS)
        return add_msg(out,
                       "warning: only %d of %d pairs ran undisturbed, %d are needed: every "
                       "configuration abstains (cannot decide)",
                       f->clean, f->pairs, DPT_COMPARE_MIN_CLEAN_PAIRS);
    if (paired)
        return add_msg(out, "note: %d of %d pairs dropped as disturbed, %d clean",
                       f->pairs - f->clean, f->pairs, f->clean);
    int dropped = 0;
    for (size_t k = 0; k < out->nrows; k++) dropped += out->rows[k].dropped;
    if (dropped &&
        add_msg(out, "note: %d disturbed repetition%s dropped", dropped, dropped == 1 ? "" : "s"))
        return DPT_ENOMEM;
    if (out->abstained)
        return add_msg(out,
                       "warning: %d configuration%s fewer than %d undisturbed repetitions on a "
                       "side: %s (cannot decide)",
                       out->abstained, out->abstained == 1 ? " has" : "s have",
                       DPT_COMPARE_MIN_CLEAN_REPS,
                       out->abstained == 1 ? "it abstains" : "they abstain");
    return 0;
}

/* The comparison; f (not NULL) says what was dropped as disturbed. */
static int compare_core(const dpt_bench_report *base, const dpt_bench_report *cur,
                        const dpt_compare_opts *o, int paired, const filtered *f,
                        dpt_compare_result *out)
{
    double *ratios = NULL, *d = NULL;
    int rc = 0;
    if (!(o->threshold >= 0) || !isfinite(o->threshold))
        return dpt_set_error(DPT_EINVAL, "compare: threshold %g is not a finite number >= 0",
                             o->threshold);
    if (!(o->alpha > 0 && o->alpha < 1))
        return dpt_set_error(DPT_EINVAL, "compare: alpha %g is not in (0, 1)", o->alpha);
    out->base_name = dup_str(o->base_name ? o->base_name : "base");
    out->new_name = dup_str(o->new_name ? o->new_name : "new");
    out->rows = calloc(base->nresults + 1, sizeof *out->rows);
    ratios = calloc(base->nresults + 1, sizeof *ratios);
    if (!out->base_name || !out->new_name || !out->rows || !ratios) {
        rc = dpt_set_error(DPT_ENOMEM, "out of memory comparing %zu results", base->nresults);
        goto done;
    }
    out->base_context = base->context;
    out->new_context = cur->context;
    out->threshold = o->threshold;
    out->alpha = o->alpha;
    out->scaling_fails = o->scaling_fails != 0;
    out->allow_missing = o->allow_missing != 0;
    out->paired = paired;
    out->drop_disturbed = f != NULL;
    out->geomean_ratio = NAN;
    if ((rc = check_rows(base, out->base_name)) || (rc = check_rows(cur, out->new_name))) goto done;

    for (size_t i = 0; i < base->nresults; i++) {
        const dpt_bench_result *b = &base->results[i];
        size_t j, k;
        /* Same isa if there is one; otherwise a lone row of that key on each side. */
        if (!count_key(cur, b, 1, &j) &&
            !(count_key(cur, b, 0, &j) == 1 && count_key(base, b, 0, &k) == 1))
            continue;
        const dpt_bench_result *n = &cur->results[j];
        char what[160];
        if (paired && b->reps != n->reps) {
            rc = dpt_set_error(DPT_EINVAL, "%s: %d samples in %s, %d in %s: they must pair up",
                               row_str(b, what, sizeof what), b->reps, out->base_name, n->reps,
                               out->new_name);
            goto done;
        }
        dpt_compare_row *p = &out->rows[out->nrows++];
        key_of(b, &p->key);
        snprintf(p->new_isa, sizeof p->new_isa, "%s", n->isa);
        p->base_index = i;
        p->new_index = j;
        p->base_reps = b->reps;
        p->new_reps = n->reps;
        p->base_median = dpt_stats_median(b->samples, (size_t)b->reps);
        p->new_median = dpt_stats_median(n->samples, (size_t)n->reps);
        p->change = p->new_median / p->base_median - 1;
        p->sided = DPT_ALT_TWO_SIDED;
        if (paired) {
            double *grown = realloc(d, (size_t)b->reps * sizeof *d);
            if (!grown) {
                rc = dpt_set_error(DPT_ENOMEM, "out of memory for the paired differences");
                goto done;
            }
            d = grown;
            for (int i = 0; i < b->reps; i++) d[i] = log(n->samples[i] / b->samples[i]);
            if ((rc = paired_change(d, (size_t)b->reps, o->alpha, &p->p, &p->estimate,
                                    &p->interval_lo, &p->interval_hi, &p->interval_level)))
                goto done;
            p->change = p->estimate;
            p->blind = p->interval_level == 0;
            p->verdict =
                judge_interval(p->interval_lo, p->interval_hi, o->threshold, DPT_VERDICT_SLOWER,
                               DPT_VERDICT_FASTER, 1, DPT_VERDICT_NOT_SLOWER);
        } else {
            p->p = two_sided_p(b->samples, (size_t)b->reps, n->samples, (size_t)n->reps);
            if ((rc = shift_change(b->samples, (size_t)b->reps, n->samples, (size_t)n->reps,
                                   o->alpha, &p->estimate, &p->interval_lo, &p->interval_hi,
                                   &p->interval_level)))
                goto done;
            p->blind = dpt_stats_utest_min_p((size_t)b->reps, (size_t)n->reps) >= o->alpha;
            p->verdict = judge(p->change, p->p, o->threshold, o->alpha, DPT_VERDICT_SLOWER,
                               DPT_VERDICT_FASTER);
        }
        if (f) {
            p->dropped = paired ? f->drop_b[i] : f->drop_b[i] + f->drop_c[j];
            p->abstained = f->short_b[i] || f->short_c[j];
            if (p->abstained) p->verdict = DPT_VERDICT_UNDECIDED;
            out->abstained += p->abstained;
        }
        out->multi_rank |= b->ranks > 1;
        out->slower += p->verdict == DPT_VERDICT_SLOWER;
        out->undecided += p->verdict == DPT_VERDICT_UNDECIDED;
        out->blind += p->blind;
        ratios[out->nrows - 1] = p->new_median / p->base_median;
        if (strcmp(b->isa, n->isa) && (rc = add_msg(out, "warning: %s: isa %s in base, %s in new",
                                                    row_str(b, what, sizeof what), b->isa, n->isa)))
            goto done;
    }
    if ((rc = warn_context(base, cur, out))) goto done;
    if (out->nrows == 0) {
        rc = dpt_set_error(DPT_EINVAL,
                           "no configuration (workload, ranks, threads, pin, batch) is in both %s "
                           "(%zu results) and %s (%zu results)",
                           out->base_name, base->nresults, out->new_name, cur->nresults);
        goto done;
    }
    if ((rc = list_unpaired(cur, 1, out)) || (rc = list_unpaired(base, 0, out))) goto done;
    out->missing = (int)out->nonly_base;
    if (paired && out->blind &&
        (rc = add_msg(out,
                      "warning: %d configuration%s too few pairs for an interval at %g%% "
                      "(6 pairs give one at 95%%)",
                      out->blind, out->blind == 1 ? " has" : "s have", 100 * (1 - o->alpha))))
        goto done;
    if (!paired && out->blind &&
        (rc = add_msg(out,
                      "warning: %d configuration%s too few repetitions for the U test to reach "
                      "p < %g (5 and 5 can reach 0.008): 5 or more repetitions are needed",
                      out->blind, out->blind == 1 ? " has" : "s have", o->alpha)))
        goto done;
    if ((rc = compare_curves(base, cur, out))) goto done;
    if (f && (rc = note_dropped(f, paired, out))) goto done;

    out->geomean_ratio = dpt_stats_geomean(ratios, out->nrows);
    int curves_undecided = 0;
    for (size_t k = 0; k < out->ncurves; k++)
        curves_undecided += out->curves[k].verdict == DPT_VERDICT_UNDECIDED;
    if (out->scaling_fails) out->undecided += curves_undecided;
    /* When no pair could have been called slower, a pass would mean nothing. */
    if (out->slower || (out->worse && out->scaling_fails) || (out->missing && !out->allow_missing))
        out->outcome = DPT_COMPARE_FAIL;
    else if (out->undecided > 0 || (!paired && out->blind == (int)out->nrows))
        out->outcome = DPT_COMPARE_CANNOT_DECIDE;
    else
        out->outcome = DPT_COMPARE_PASS;
    out->exit_status = (int)out->outcome;

done:
    free(ratios);
    free(d);
    return rc;
}

static int compare(const dpt_bench_report *base, const dpt_bench_report *cur,
                   const dpt_compare_opts *o, int paired, dpt_compare_result *out)
{
    memset(out, 0, sizeof *out);
    dpt_compare_opts def;
    if (!o) {
        dpt_compare_opts_defaults(&def);
        o = &def;
    }
    if (!o->drop_disturbed) return compare_core(base, cur, o, paired, NULL, out);
    filtered f;
    int rc = filter(base, cur, paired, &f);
    if (!rc) rc = compare_core(&f.base, &f.cur, o, paired, &f, out);
    filtered_free(&f);
    return rc;
}

int dpt_compare_reports(const dpt_bench_report *base, const dpt_bench_report *cur,
                        const dpt_compare_opts *o, dpt_compare_result *out)
{
    return compare(base, cur, o, 0, out);
}

int dpt_compare_paired(const dpt_bench_report *base, const dpt_bench_report *cur,
                       const dpt_compare_opts *o, dpt_compare_result *out)
{
    return compare(base, cur, o, 1, out);
}

int dpt_compare_files(const char *base_path, const char *new_path, const dpt_compare_opts *o,
                      dpt_compare_result *out)
{
    memset(out, 0, sizeof *out);
    dpt_bench_report base, cur;
    int rc = dpt_bench_report_read_json(&base, base_path);
    if (rc) return rc;
    if ((rc = dpt_bench_report_read_json(&cur, new_path))) {
        dpt_bench_report_free(&base);
        return rc;
    }
    dpt_compare_opts named;
    if (o)
        named = *o;
    else
        dpt_compare_opts_defaults(&named);
    named.base_name = base_path;
    named.new_name = new_path;
    rc = dpt_compare_reports(&base, &cur, &named, out);
    dpt_bench_report_free(&base);
    dpt_bench_report_free(&cur);
    return rc;
}

/* ---- the report in words ---- */

const char *dpt_compare_p_label(const dpt_compare_result *r)
{
    return r->paired ? "p (two-sided signed-rank)" : "p (two-sided U)";
}

/* "[-1.2%, +3.4%]", or "-" without an interval. */
static const char *interval_str(double lo, double hi, char *buf, size_t cap)
{
    if (isfinite(lo) && isfinite(hi))
        snprintf(buf, cap, "[%+.1f%%, %+.1f%%]", 100 * lo, 100 * hi);
    else
        snprintf(buf, cap, "-");
    return buf;
}

/* The outcome in one line (two when scaling only warns), as printed. */
static void print_outcome(const dpt_compare_result *r, FILE *f)
{
    const char *per = r->multi_rank ? "rank x 1 thread" : "thread";
    const char *how = r->paired ? "with its whole interval" : "significantly";
    if (r->slower)
        fprintf(f, "FAIL: %d configuration%s %s slower by more than %g%%\n", r->slower,
                r->slower == 1 ? " is" : "s are", how, 100 * r->threshold);
    if (r->missing && !r->allow_missing)
        fprintf(f, "FAIL: %d configuration%s of %s missing from %s\n", r->missing,
                r->missing == 1 ? "" : "s", r->base_name, r->new_name);
    if (r->worse)
        fprintf(f, "%s: %d configuration%s lost more than %g%% of %s speedup vs 1 %s%s\n",
                r->scaling_fails ? "FAIL" : "warning", r->worse, r->worse == 1 ? "" : "s",
                100 * r->threshold, r->worse == 1 ? "its" : "their", per,
                r->scaling_fails ? "" : " (scaling losses only warn)");
    if (r->outcome == DPT_COMPARE_CANNOT_DECIDE && r->abstained)
        fprintf(f,
                "cannot decide: %d configuration%s too few undisturbed %s to judge (they "
                "abstain)\n",
                r->abstained, r->abstained == 1 ? " has" : "s have",
                r->paired ? "pairs" : "repetitions");
    else if (r->outcome == DPT_COMPARE_CANNOT_DECIDE && r->paired)
        fprintf(f,
                "cannot decide: the %g%% interval of %d configuration%s straddles the %g%% "
                "threshold (more pairs narrow it)\n",
                100 * (1 - r->alpha), r->undecided, r->undecided == 1 ? "" : "s",
                100 * r->threshold);
    else if (r->outcome == DPT_COMPARE_CANNOT_DECIDE)
        fprintf(f,
                "cannot decide: no configuration has enough repetitions for the U test to reach "
                "p < %g (5 or more repetitions per configuration are needed)\n",
                r->alpha);
    else if (r->outcome == DPT_COMPARE_PASS && r->paired)
        fprintf(f, "OK: every configuration's %g%% interval lies below +%g%%\n",
                100 * (1 - r->alpha), 100 * r->threshold);
    else if (r->outcome == DPT_COMPARE_PASS)
        fprintf(f, "OK: no configuration significantly slower by more than %g%% (alpha %g)\n",
                100 * r->threshold, r->alpha);
}

void dpt_compare_print(const dpt_compare_result *r, FILE *f)
{
    const dpt_bench_context *bc = &r->base_context, *nc = &r->new_context;
    const char *per = r->multi_rank ? "rank x 1 thread" : "thread";
    const char *plabel = dpt_compare_p_label(r);
    const int pw = (int)strlen(plabel);
    int ww = 8;
    for (size_t k = 0; k < r->nrows; k++)
        if ((int)strlen(r->rows[k].key.workload) > ww) ww = (int)strlen(r->rows[k].key.workload);
    fprintf(f, "base: %s (%s%s%s, %s)\nnew:  %s (%s%s%s, %s)\n", r->base_name,
            bc->dpt_version[0] ? bc->dpt_version : "?", bc->git_revision[0] ? " " : "",
            bc->git_revision, bc->date[0] ? bc->date : "undated", r->new_name,
            nc->dpt_version[0] ? nc->dpt_version : "?", nc->git_revision[0] ? " " : "",
            nc->git_revision, nc->date[0] ? nc->date : "undated");
    if (r->paired && r->nrows)
        fprintf(f,
                "paired: %d alternating runs of each; change = Hodges-Lehmann estimate of the "
                "paired ratios\n",
                r->rows[0].base_reps);
    fprintf(f, "\n%-*s", ww, "workload");
    if (r->multi_rank) fprintf(f, " %5s", "ranks");
    fprintf(f, " %7s %-8s %6s %11s %11s %8s %-17s %*s  %s\n", "threads", "pin", "batch", "base ms",
            "new ms", "change", "interval", pw, plabel, "verdict");
    for (size_t k = 0; k < r->nrows; k++) {
        const dpt_compare_row *p = &r->rows[k];
        char bs[24], iv[48];
        fprintf(f, "%-*s", ww, p->key.workload);
        if (r->multi_rank) fprintf(f, " %5d", p->key.ranks);
        fprintf(f, " %7d %-8s %6s %11.3f %11.3f %+7.1f%% %-17s %*.3g  %s\n", p->key.threads,
                p->key.pin, batch_str(p->key.batch, bs, sizeof bs), 1e3 * p->base_median,
                1e3 * p->new_median, 100 * p->change,
                interval_str(p->interval_lo, p->interval_hi, iv, sizeof iv), pw, p->p,
                dpt_verdict_name(p->verdict));
    }
    fprintf(f, "\ngeometric mean of new/base times over %zu configuration%s: %.4f (%+.1f%%)\n",
            r->nrows, r->nrows == 1 ? "" : "s", r->geomean_ratio, 100 * (r->geomean_ratio - 1));
    if (!r->paired && r->nrows)
        fprintf(f,
                "interval: Hodges-Lehmann %g%% interval of the change (median of the ratios "
                "new/base); the U test decides\n",
                100 * (1 - r->alpha));

    if (r->ncurves) {
        fprintf(f, "\nspeedup vs 1 %s:\n%-*s", per, ww, "workload");
        if (r->multi_rank) fprintf(f, " %5s", "ranks");
        fprintf(f, " %7s %-8s %6s %9s %9s %8s %-17s %*s  %s\n", "threads", "pin", "batch", "base",
                "new", "change", "interval", pw, plabel, "verdict");
        for (size_t k = 0; k < r->ncurves; k++) {
            const dpt_compare_curve *s = &r->curves[k];
            char bs[24], iv[48];
            fprintf(f, "%-*s", ww, s->key.workload);
            if (r->multi_rank) fprintf(f, " %5d", s->key.ranks);
            fprintf(f, " %7d %-8s %6s %9.2f %9.2f %+7.1f%% %-17s %*.3g  %s\n", s->key.threads,
                    s->key.pin, batch_str(s->key.batch, bs, sizeof bs), s->base_speedup,
                    s->new_speedup, 100 * s->change,
                    interval_str(s->interval_lo, s->interval_hi, iv, sizeof iv), pw, s->p,
                    dpt_verdict_name(s->verdict));
        }
    }

    fprintf(f, "\n");
    print_outcome(r, f);
}

/* ---- JSON ---- */

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static const char *test_name(const dpt_compare_result *r)
{
    return r->paired ? "wilcoxon-signed-rank" : "mann-whitney-u";
}

static const char *outcome_name(dpt_compare_outcome o)
{
    return o == DPT_COMPARE_FAIL            ? "fail"
           : o == DPT_COMPARE_CANNOT_DECIDE ? "cannot decide"
                                            : "pass";
}

static json_t *key_json(const dpt_compare_key *k)
{
    return json_pack("{s:s, s:i, s:i, s:s, s:I}", "workload", k->workload, "ranks", k->ranks,
                     "threads", k->threads, "pin", k->pin, "batch", (json_int_t)k->batch);
}

int dpt_compare_write_json(const dpt_compare_result *r, const char *path)
{
    json_t *rows = json_array(), *curves = json_array();
    for (size_t i = 0; i < r->nrows; i++) {
        const dpt_compare_row *p = &r->rows[i];
        json_t *o = key_json(&p->key);
        json_object_set_new(o, "base_median", num(p->base_median));
        json_object_set_new(o, "new_median", num(p->new_median));
        json_object_set_new(o, "change", num(p->change));
        json_object_set_new(o, "p_value", num(p->p));
        json_object_set_new(o, "verdict", json_string(dpt_verdict_name(p->verdict)));
        json_object_set_new(o, "test", json_string(test_name(r)));
        json_object_set_new(o, "sided", json_string("two-sided"));
        json_object_set_new(o, "estimate", num(p->estimate));
        json_object_set_new(o, "interval_lo", num(p->interval_lo));
        json_object_set_new(o, "interval_hi", num(p->interval_hi));
        json_object_set_new(o, "interval_level", num(p->interval_level));
        json_object_set_new(o, "base_reps", json_integer(p->base_reps));
        json_object_set_new(o, "new_reps", json_integer(p->new_reps));
        if (r->drop_disturbed) {
            json_object_set_new(o, "dropped", json_integer(p->dropped));
            json_object_set_new(o, "abstained", json_boolean(p->abstained));
        }
        json_array_append_new(rows, o);
    }
    for (size_t i = 0; i < r->ncurves; i++) {
        const dpt_compare_curve *s = &r->curves[i];
        json_t *o = key_json(&s->key);
        json_object_set_new(o, "base_speedup", num(s->base_speedup));
        json_object_set_new(o, "new_speedup", num(s->new_speedup));
        json_object_set_new(o, "change", num(s->change));
        json_object_set_new(o, "p_value", num(s->p));
        json_object_set_new(o, "verdict", json_string(dpt_verdict_name(s->verdict)));
        json_object_set_new(o, "test", json_string(test_name(r)));
        json_object_set_new(o, "sided", json_string("two-sided"));
        json_object_set_new(o, "interval_lo", num(s->interval_lo));
        json_object_set_new(o, "interval_hi", num(s->interval_hi));
        json_array_append_new(curves, o);
    }
    json_t *missing = json_array();
    for (size_t i = 0; i < r->nonly_base; i++)
        json_array_append_new(missing, key_json(&r->only_base[i]));
    json_t *root =
        json_pack("{s:s, s:s, s:s, s:f, s:f, s:o, s:o, s:o, s:i, s:s, s:b, s:o, s:b}", "schema",
                  DPT_COMPARE_SCHEMA, "base", r->base_name ? r->base_name : "base", "new",
                  r->new_name ? r->new_name : "new", "threshold", r->threshold, "alpha", r->alpha,
                  "geomean_ratio", num(r->geomean_ratio), "results", rows, "speedup", curves,
                  "exit", r->exit_status, "outcome", outcome_name(r->outcome), "paired", r->paired,
                  "missing", missing, "allow_missing", r->allow_missing);
    if (!root) return dpt_set_error(DPT_ENOMEM, "cannot build the JSON for %s", path);
    json_object_set_new(root, "drop_disturbed", json_boolean(r->drop_disturbed));
    int rc = dpt_json_write_atomic(root, path);
    json_decref(root);
    return rc;
}

/* ---- CI exports ---- */

/* "linreg/1x4/compact/full": a benchmark name without spaces, for trackers. */
static const char *bench_name(const dpt_compare_key *k, char *buf, size_t cap)
{
    char bs[24];
    snprintf(buf, cap, "%s/%dx%d/%s/%s", k->workload, k->ranks, k->threads, k->pin,
             batch_str(k->batch, bs, sizeof bs));
    return buf;
}

int dpt_compare_write_markdown(const dpt_compare_result *r, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return dpt_set_error(DPT_ENOMEM, "cannot build the markdown for %s", path);
    fprintf(f, "### dpt compare: %s\n\n",
            r->outcome == DPT_COMPARE_FAIL            ? "FAIL"
            : r->outcome == DPT_COMPARE_CANNOT_DECIDE ? "cannot decide"
                                                      : "OK");
    fprintf(f, "| configuration | base ms | new ms | change (%g%% interval) | %s | verdict |\n",
            100 * (1 - r->alpha), dpt_compare_p_label(r));
    fprintf(f, "|---|---:|---:|---:|---:|---|\n");
    for (size_t k = 0; k < r->nrows; k++) {
        const dpt_compare_row *p = &r->rows[k];
        char what[160], bs[24], iv[48];
        fprintf(f, "| %s, batch %s | %.3f | %.3f | %+.1f%% %s | %.3g | %s |\n",
                config_str(p->key.workload, p->key.ranks, p->key.threads, p->key.pin, what,
                           sizeof what),
                batch_str(p->key.batch, bs, sizeof bs), 1e3 * p->base_median, 1e3 * p->new_median,
                100 * p->change, interval_str(p->interval_lo, p->interval_hi, iv, sizeof iv), p->p,
                p->verdict == DPT_VERDICT_SLOWER ? "**slower**" : dpt_verdict_name(p->verdict));
    }
    for (size_t k = 0; k < r->nonly_base; k++) {
        const dpt_compare_key *m = &r->only_base[k];
        char what[160], bs[24];
        fprintf(f, "| %s, batch %s | | | | | %s |\n",
                config_str(m->workload, m->ranks, m->threads, m->pin, what, sizeof what),
                batch_str(m->batch, bs, sizeof bs),
                r->allow_missing ? "missing (allowed)" : "**missing**");
    }
    fprintf(f, "\n");
    print_outcome(r, f);
    if (fclose(f)) {
        free(text);
        return dpt_set_error(DPT_ENOMEM, "cannot build the markdown for %s", path);
    }
    int rc = dpt_write_file_atomic(path, text, len);
    free(text);
    return rc;
}

int dpt_compare_write_bmf(const dpt_compare_result *r, const char *path)
{
    json_t *root = json_object();
    for (size_t k = 0; root && k < r->nrows; k++) {
        const dpt_compare_row *p = &r->rows[k];
        char name[256];
        double v = p->new_median, lo = v, hi = v;
        /* the interval of the change, carried onto the base's time */
        if (isfinite(p->interval_lo) && isfinite(p->interval_hi)) {
            lo = fmin(v, p->base_median * (1 + p->interval_lo));
            hi = fmax(v, p->base_median * (1 + p->interval_hi));
        }
        json_t *m = json_pack("{s:{s:f, s:f, s:f}}", "latency", "value", v, "lower_value", lo,
                              "upper_value", hi);
        if (!m || json_object_set_new(root, bench_name(&p->key, name, sizeof name), m)) {
            json_decref(root);
            root = NULL;
        }
    }
    if (!root) return dpt_set_error(DPT_ENOMEM, "cannot build the JSON for %s", path);
    int rc = dpt_json_write_atomic(root, path);
    json_decref(root);
    return rc;
}

int dpt_compare_write_github_benchmark(const dpt_compare_result *r, const char *path)
{
    json_t *root = json_array();
    for (size_t k = 0; root && k < r->nrows; k++) {
        const dpt_compare_row *p = &r->rows[k];
        char name[256], range[64] = "", extra[256];
        if (isfinite(p->interval_lo) && isfinite(p->interval_hi))
            snprintf(range, sizeof range, "%+.1f%% .. %+.1f%%", 100 * p->interval_lo,
                     100 * p->interval_hi);
        snprintf(extra, sizeof extra, "base %.3f ms, change %+.1f%%, %s %.3g, %s",
                 1e3 * p->base_median, 100 * p->change, dpt_compare_p_label(r), p->p,
                 dpt_verdict_name(p->verdict));
        json_t *o =
            json_pack("{s:s, s:s, s:f, s:s, s:s}", "name", bench_name(&p->key, name, sizeof name),
                      "unit", "ms", "value", 1e3 * p->new_median, "range", range, "extra", extra);
        if (!o || json_array_append_new(root, o)) {
            json_decref(root);
            root = NULL;
        }
    }
    if (!root) return dpt_set_error(DPT_ENOMEM, "cannot build the JSON for %s", path);
    int rc = dpt_json_write_atomic(root, path);
    json_decref(root);
    return rc;
}
