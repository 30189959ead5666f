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
        int rc =
            add_msg(out, "note: only in %s: %s", name, row_str(&r->results[i], what, sizeof what));
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
    if (!out->curves || !nb || !nn) {
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
        s->p = two_sided_p(nb, (size_t)p->base_reps, nn, (size_t)p->new_reps);
        s->sided = DPT_ALT_TWO_SIDED;
        s->interval_lo = s->interval_hi = NAN;
        s->verdict = judge(s->change, s->p, out->threshold, out->alpha, DPT_VERDICT_BETTER,
                           DPT_VERDICT_WORSE);
        out->worse += s->verdict == DPT_VERDICT_WORSE;
    }
done:
    free(nb);
    free(nn);
    return rc;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

int dpt_compare_reports(const dpt_bench_report *base, const dpt_bench_report *cur,
                        const dpt_compare_opts *o, dpt_compare_result *out)
{
    memset(out, 0, sizeof *out);
    dpt_compare_opts def;
    if (!o) {
        dpt_compare_opts_defaults(&def);
        o = &def;
    }
    double *ratios = NULL;
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
        p->p = two_sided_p(b->samples, (size_t)b->reps, n->samples, (size_t)n->reps);
        p->sided = DPT_ALT_TWO_SIDED;
        p->interval_lo = p->interval_hi = NAN;
        p->blind = dpt_stats_utest_min_p((size_t)b->reps, (size_t)n->reps) >= o->alpha;
        p->verdict =
            judge(p->change, p->p, o->threshold, o->alpha, DPT_VERDICT_SLOWER, DPT_VERDICT_FASTER);
        out->multi_rank |= b->ranks > 1;
        out->slower += p->verdict == DPT_VERDICT_SLOWER;
        out->blind += p->blind;
        ratios[out->nrows - 1] = p->new_median / p->base_median;
        char what[160];
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
    if (out->blind &&
        (rc = add_msg(out,
                      "warning: %d configuration%s too few repetitions for the U test to reach "
                      "p < %g (5 and 5 can reach 0.008): 5 or more repetitions are needed",
                      out->blind, out->blind == 1 ? " has" : "s have", o->alpha)))
        goto done;
    if ((rc = compare_curves(base, cur, out))) goto done;

    out->geomean_ratio = dpt_stats_geomean(ratios, out->nrows);
    /* When no pair could have been called slower, a pass would mean nothing. */
    if (out->slower || (out->worse && out->scaling_fails))
        out->outcome = DPT_COMPARE_FAIL;
    else if (out->blind == (int)out->nrows)
        out->outcome = DPT_COMPARE_CANNOT_DECIDE;
    else
        out->outcome = DPT_COMPARE_PASS;
    out->exit_status = (int)out->outcome;

done:
    free(ratios);
    return rc;
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

void dpt_compare_print(const dpt_compare_result *r, FILE *f)
{
    const dpt_bench_context *bc = &r->base_context, *nc = &r->new_context;
    const char *per = r->multi_rank ? "rank x 1 thread" : "thread";
    int ww = 8;
    for (size_t k = 0; k < r->nrows; k++)
        if ((int)strlen(r->rows[k].key.workload) > ww) ww = (int)strlen(r->rows[k].key.workload);
    fprintf(f, "base: %s (%s%s%s, %s)\nnew:  %s (%s%s%s, %s)\n\n", r->base_name,
            bc->dpt_version[0] ? bc->dpt_version : "?", bc->git_revision[0] ? " " : "",
            bc->git_revision, bc->date[0] ? bc->date : "undated", r->new_name,
            nc->dpt_version[0] ? nc->dpt_version : "?", nc->git_revision[0] ? " " : "",
            nc->git_revision, nc->date[0] ? nc->date : "undated");
    fprintf(f, "%-*s", ww, "workload");
    if (r->multi_rank) fprintf(f, " %5s", "ranks");
    fprintf(f, " %7s %-8s %6s %11s %11s %8s %8s  %s\n", "threads", "pin", "batch", "base ms",
            "new ms", "change", "p-value", "verdict");
    for (size_t k = 0; k < r->nrows; k++) {
        const dpt_compare_row *p = &r->rows[k];
        char bs[24];
        fprintf(f, "%-*s", ww, p->key.workload);
        if (r->multi_rank) fprintf(f, " %5d", p->key.ranks);
        fprintf(f, " %7d %-8s %6s %11.3f %11.3f %+7.1f%% %8.3g  %s\n", p->key.threads, p->key.pin,
                batch_str(p->key.batch, bs, sizeof bs), 1e3 * p->base_median, 1e3 * p->new_median,
                100 * p->change, p->p, dpt_verdict_name(p->verdict));
    }
    fprintf(f, "\ngeometric mean of new/base times over %zu configuration%s: %.4f (%+.1f%%)\n",
            r->nrows, r->nrows == 1 ? "" : "s", r->geomean_ratio, 100 * (r->geomean_ratio - 1));

    if (r->ncurves) {
        fprintf(f, "\nspeedup vs 1 %s:\n%-*s", per, ww, "workload");
        if (r->multi_rank) fprintf(f, " %5s", "ranks");
        fprintf(f, " %7s %-8s %6s %9s %9s %8s %8s  %s\n", "threads", "pin", "batch", "base", "new",
                "change", "p-value", "verdict");
        for (size_t k = 0; k < r->ncurves; k++) {
            const dpt_compare_curve *s = &r->curves[k];
            char bs[24];
            fprintf(f, "%-*s", ww, s->key.workload);
            if (r->multi_rank) fprintf(f, " %5d", s->key.ranks);
            fprintf(f, " %7d %-8s %6s %9.2f %9.2f %+7.1f%% %8.3g  %s\n", s->key.threads, s->key.pin,
                    batch_str(s->key.batch, bs, sizeof bs), s->base_speedup, s->new_speedup,
                    100 * s->change, s->p, dpt_verdict_name(s->verdict));
        }
    }

    fprintf(f, "\n");
    if (r->slower)
        fprintf(f, "FAIL: %d configuration%s significantly slower by more than %g%%\n", r->slower,
                r->slower == 1 ? " is" : "s are", 100 * r->threshold);
    if (r->worse)
        fprintf(f, "%s: %d configuration%s lost more than %g%% of %s speedup vs 1 %s%s\n",
                r->scaling_fails ? "FAIL" : "warning", r->worse, r->worse == 1 ? "" : "s",
                100 * r->threshold, r->worse == 1 ? "its" : "their", per,
                r->scaling_fails ? "" : " (scaling losses only warn)");
    if (r->outcome == DPT_COMPARE_CANNOT_DECIDE)
        fprintf(f,
                "cannot decide: no configuration has enough repetitions for the U test to reach "
                "p < %g (5 or more repetitions per configuration are needed)\n",
                r->alpha);
    else if (r->outcome == DPT_COMPARE_PASS)
        fprintf(f, "OK: no configuration significantly slower by more than %g%% (alpha %g)\n",
                100 * r->threshold, r->alpha);
}

/* ---- JSON ---- */

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
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
        json_array_append_new(curves, o);
    }
    json_t *root = json_pack("{s:s, s:s, s:s, s:f, s:f, s:o, s:o, s:o, s:i}", "schema",
                             DPT_COMPARE_SCHEMA, "base", r->base_name ? r->base_name : "base",
                             "new", r->new_name ? r->new_name : "new", "threshold", r->threshold,
                             "alpha", r->alpha, "geomean_ratio", num(r->geomean_ratio), "results",
                             rows, "speedup", curves, "exit", r->exit_status);
    if (!root) return dpt_set_error(DPT_ENOMEM, "cannot build the JSON for %s", path);
    int rc = dpt_json_write_atomic(root, path);
    json_decref(root);
    return rc;
}
