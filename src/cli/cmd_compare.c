/* dpt compare: the speedup-regression gate between two `dpt bench` results.
 * Configurations are matched by workload, ranks, threads, pin and batch (a
 * file from before the ranks sweep is all one rank); each pair gets a
 * two-sided Mann-Whitney U test on its repetitions, and the speedup curves
 * (against 1 rank x 1 thread) are compared too, so a scaling loss at high
 * thread or rank counts fails the gate even when one thread got faster.
 * Exit: 0 nothing significantly slower, 1 something is, 2 cannot compare. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "dpt/error.h"
#include "dpt/report.h"
#include "dpt/stats.h"

static const char *const CMD = "compare";

static void usage(FILE *f)
{
    fputs("usage: dpt compare BASE.json NEW.json [flags]\n"
          "Compare two `dpt bench --json` results; exit 0 when no configuration is\n"
          "significantly slower by more than the threshold, 1 when one is (or scales\n"
          "worse), 2 when the files cannot be compared.\n\n"
          "  --threshold P       smallest change that counts, percent (5 or 5%; default 5%)\n"
          "  --alpha A           significance level of the U test (default 0.05)\n"
          "  --scaling fail|warn a significant loss of speedup vs 1 thread (1 rank x 1\n"
          "                      thread) fails the gate (default) or is only reported\n"
          "  --json FILE         also write the comparison as JSON (\"dpt-compare/1\")\n"
          "  --help              this text\n\n"
          "Rows match by workload, ranks, threads, pin and batch; a file without ranks\n"
          "(from before `dpt bench --ranks`) is one rank throughout.\n"
          "Verdicts: faster/slower = p < alpha and the median moved by more than the\n"
          "threshold; noise = it moved that much but p >= alpha; same = it moved less.\n"
          "Few repetitions limit the test: 3 and 3 cannot reach p < 0.05 (4 and 4 reach\n"
          "0.029, 5 and 5 0.008); when no configuration can, the gate cannot decide and\n"
          "exits 2.\n",
          f);
}

/* One matched configuration. */
typedef struct {
    const dpt_bench_result *b, *n;
    double base_med, new_med, change, p;
    const char *verdict;
} pair;

/* Speedup comparison of a matched pair against the matched 1-thread pair. */
typedef struct {
    const pair *pr, *one;
    double base_speedup, new_speedup, change, p;
    const char *verdict;
} scaling;

static const char *batch_str(long batch, char *buf, size_t cap)
{
    if (batch > 0)
        snprintf(buf, cap, "%ld", batch);
    else
        snprintf(buf, cap, "full");
    return buf;
}

static int same_key(const dpt_bench_result *a, const dpt_bench_result *b)
{
    return a->ranks == b->ranks && a->threads == b->threads && a->batch == b->batch &&
           !strcmp(a->workload, b->workload) && !strcmp(a->pin, b->pin);
}

/* The row of 1 rank and 1 thread that speedups are measured against. */
static int is_baseline(const dpt_bench_result *r)
{
    return r->ranks == 1 && r->threads == 1;
}

/* "linreg, 4 threads, pin compact" ("linreg, 2 ranks x 4 threads, ..."). */
static const char *config_str(const dpt_bench_result *r, char *buf, size_t cap)
{
    char ranks[32] = "";
    if (r->ranks > 1) snprintf(ranks, sizeof ranks, "%d ranks x ", r->ranks);
    snprintf(buf, cap, "%s, %s%d thread%s, pin %s", r->workload, ranks, r->threads,
             r->threads == 1 ? "" : "s", r->pin);
    return buf;
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

static int check_unique(const dpt_bench_report *r, const char *file)
{
    for (size_t i = 0; i < r->nresults; i++) {
        size_t j;
        if (count_key(r, &r->results[i], 1, &j) > 1) {
            char b[24], what[160];
            fprintf(stderr,
                    "dpt compare: cannot compare: %s: results[%zu] and results[%zu] are the same "
                    "configuration (%s, batch %s, isa %s)\n",
                    file, i, j, config_str(&r->results[i], what, sizeof what),
                    batch_str(r->results[i].batch, b, sizeof b), r->results[i].isa);
            return -1;
        }
    }
    return 0;
}

/* Verdict from a change (positive = the quantity grew) and its p-value. */
static const char *judge(double change, double p, double threshold, double alpha, const char *up,
                         const char *down)
{
    if (!(fabs(change) > threshold)) return "same";
    if (!(p < alpha)) return "noise";
    return change > 0 ? up : down;
}

static void warn_context(const dpt_bench_report *b, const dpt_bench_report *n, const char *bf,
                         const char *nf)
{
    const dpt_bench_context *x = &b->context, *y = &n->context;
    if (strcmp(x->cpu_model, y->cpu_model))
        fprintf(stderr, "warning: other CPU: base '%s', new '%s'\n",
                x->cpu_model[0] ? x->cpu_model : "unknown",
                y->cpu_model[0] ? y->cpu_model : "unknown");
    if (strcmp(x->isa, y->isa))
        fprintf(stderr, "warning: other ISA: base '%s', new '%s'\n", x->isa[0] ? x->isa : "unknown",
                y->isa[0] ? y->isa : "unknown");
    if (x->engine[0] && y->engine[0] && strcmp(x->engine, y->engine))
        fprintf(stderr, "warning: other engine settings: base '%s', new '%s'\n", x->engine,
                y->engine);
    if (x->packages != y->packages || x->numa_nodes != y->numa_nodes || x->cores != y->cores ||
        x->pus != y->pus)
        fprintf(stderr,
                "warning: other topology: base %d packages, %d NUMA nodes, %d cores, %d PUs; new "
                "%d, %d, %d, %d\n",
                x->packages, x->numa_nodes, x->cores, x->pus, y->packages, y->numa_nodes, y->cores,
                y->pus);
    if (strcmp(x->compiler, y->compiler))
        fprintf(stderr, "note: other compiler: base '%s', new '%s'\n", x->compiler, y->compiler);
    const dpt_bench_report *rs[2] = {b, n};
    const char *names[2] = {bf, nf};
    for (int k = 0; k < 2; k++) {
        char w[16][DPT_WARNING_LEN];
        size_t nw = dpt_bench_report_warnings(rs[k], w, 16);
        for (size_t i = 0; i < nw && i < 16; i++)
            fprintf(stderr, "warning: %s: %s\n", names[k], w[i]);
        if (nw > 16) fprintf(stderr, "warning: %s: %zu more warnings\n", names[k], nw - 16);
    }
}

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *key_json(const dpt_bench_result *r)
{
    return json_pack("{s:s, s:i, s:i, s:s, s:I}", "workload", r->workload, "ranks", r->ranks,
                     "threads", r->threads, "pin", r->pin, "batch", (json_int_t)r->batch);
}

static int write_json(const char *path, const char *bf, const char *nf, double threshold,
                      double alpha, const pair *pairs, size_t np, const scaling *sc, size_t ns,
                      double geomean, int status)
{
    json_t *rows = json_array(), *curves = json_array();
    for (size_t i = 0; i < np; i++) {
        json_t *o = key_json(pairs[i].b);
        json_object_set_new(o, "base_median", num(pairs[i].base_med));
        json_object_set_new(o, "new_median", num(pairs[i].new_med));
        json_object_set_new(o, "change", num(pairs[i].change));
        json_object_set_new(o, "p_value", num(pairs[i].p));
        json_object_set_new(o, "verdict", json_string(pairs[i].verdict));
        json_array_append_new(rows, o);
    }
    for (size_t i = 0; i < ns; i++) {
        json_t *o = key_json(sc[i].pr->b);
        json_object_set_new(o, "base_speedup", num(sc[i].base_speedup));
        json_object_set_new(o, "new_speedup", num(sc[i].new_speedup));
        json_object_set_new(o, "change", num(sc[i].change));
        json_object_set_new(o, "p_value", num(sc[i].p));
        json_object_set_new(o, "verdict", json_string(sc[i].verdict));
        json_array_append_new(curves, o);
    }
    json_t *root =
        json_pack("{s:s, s:s, s:s, s:f, s:f, s:o, s:o, s:o, s:i}", "schema", "dpt-compare/1",
                  "base", bf, "new", nf, "threshold", threshold, "alpha", alpha, "geomean_ratio",
                  num(geomean), "results", rows, "speedup", curves, "exit", status);
    if (!root) return cli_fail(CMD, "cannot build the JSON for %s", path);
    int rc = dpt_json_write_atomic(root, path);
    json_decref(root);
    if (rc) return cli_fail(CMD, "%s", dpt_last_error());
    return 0;
}

static int parse_threshold(const char *val, double *out)
{
    char buf[64];
    size_t len = strlen(val);
    if (len == 0 || len >= sizeof buf)
        return cli_usage_error(CMD, "--threshold: '%s' is not a percentage", val);
    memcpy(buf, val, len + 1);
    if (buf[len - 1] == '%') buf[len - 1] = '\0';
    double pct;
    if (cli_double(CMD, "threshold", buf, 0, 1000, &pct)) return DPT_EXIT_USAGE;
    *out = pct / 100;
    return 0;
}

static int compare(const char *bf, const char *nf, double threshold, double alpha,
                   int scaling_fails, const char *json_out)
{
    dpt_bench_report base, cur;
    pair *pairs = NULL;
    scaling *sc = NULL;
    double *ratios = NULL, *nb = NULL, *nn = NULL;
    int status = DPT_EXIT_USAGE;
    if (dpt_bench_report_read_json(&base, bf)) {
        fprintf(stderr, "dpt compare: cannot compare: %s\n", dpt_last_error());
        return DPT_EXIT_USAGE;
    }
    if (dpt_bench_report_read_json(&cur, nf)) {
        fprintf(stderr, "dpt compare: cannot compare: %s\n", dpt_last_error());
        dpt_bench_report_free(&base);
        return DPT_EXIT_USAGE;
    }
    if (check_unique(&base, bf) || check_unique(&cur, nf)) goto done;

    pairs = calloc(base.nresults + 1, sizeof *pairs);
    sc = calloc(base.nresults + 1, sizeof *sc);
    ratios = calloc(base.nresults + 1, sizeof *ratios);
    if (!pairs || !sc || !ratios) {
        status = cli_fail(CMD, "out of memory");
        goto done;
    }
    size_t np = 0;
    for (size_t i = 0; i < base.nresults; i++) {
        const dpt_bench_result *b = &base.results[i];
        size_t j, k;
        /* Same isa if there is one; otherwise a lone row of that key on each side. */
        if (!count_key(&cur, b, 1, &j) &&
            !(count_key(&cur, b, 0, &j) == 1 && count_key(&base, b, 0, &k) == 1))
            continue;
        pair *p = &pairs[np++];
        p->b = b;
        p->n = &cur.results[j];
        p->base_med = dpt_stats_median(b->samples, (size_t)b->reps);
        p->new_med = dpt_stats_median(p->n->samples, (size_t)p->n->reps);
        p->change = p->new_med / p->base_med - 1;
        dpt_utest u;
        p->p = dpt_stats_utest(b->samples, (size_t)b->reps, p->n->samples, (size_t)p->n->reps,
                               DPT_ALT_TWO_SIDED, &u)
                   ? NAN
                   : u.p;
        p->verdict = judge(p->change, p->p, threshold, alpha, "slower", "faster");
        char what[160];
        if (strcmp(b->isa, p->n->isa))
            fprintf(stderr, "warning: %s: isa %s in base, %s in new\n",
                    config_str(b, what, sizeof what), b->isa, p->n->isa);
    }
    warn_context(&base, &cur, bf, nf);
    if (np == 0) {
        fprintf(stderr,
                "dpt compare: cannot compare: no configuration (workload, ranks, threads, pin, "
                "batch) is in both %s (%zu results) and %s (%zu results)\n",
                bf, base.nresults, nf, cur.nresults);
        goto done;
    }
    int multi = 0; /* a ranks column when some row has more than one */
    for (size_t i = 0; i < cur.nresults; i++) {
        int found = 0;
        for (size_t k = 0; k < np && !found; k++) found = pairs[k].n == &cur.results[i];
        char what[160];
        if (!found)
            fprintf(stderr, "note: only in %s: %s\n", nf,
                    config_str(&cur.results[i], what, sizeof what));
    }
    for (size_t i = 0; i < base.nresults; i++) {
        int found = 0;
        for (size_t k = 0; k < np && !found; k++) found = pairs[k].b == &base.results[i];
        char what[160];
        if (!found)
            fprintf(stderr, "note: only in %s: %s\n", bf,
                    config_str(&base.results[i], what, sizeof what));
    }
    for (size_t k = 0; k < np; k++) multi |= pairs[k].b->ranks > 1;

    int blind = 0;
    for (size_t k = 0; k < np; k++)
        if (dpt_stats_utest_min_p((size_t)pairs[k].b->reps, (size_t)pairs[k].n->reps) >= alpha)
            blind++;
    if (blind)
        fprintf(stderr,
                "warning: %d configuration%s too few repetitions for the U test to reach p < "
                "%g (5 and 5 can reach 0.008): run dpt bench with --reps 5 or more\n",
                blind, blind == 1 ? " has" : "s have", alpha);

    /* Speedup curves: every other pair against the pair of rows of 1 rank
     * and 1 thread of the same workload, pin and batch. The U test runs on
     * the repetitions divided by their own file's median of that row. */
    size_t ns = 0;
    for (size_t k = 0; k < np; k++) {
        const pair *p = &pairs[k];
        if (is_baseline(p->b)) continue;
        const pair *one = NULL;
        for (size_t m = 0; m < np && !one; m++)
            if (is_baseline(pairs[m].b) && pairs[m].b->batch == p->b->batch &&
                !strcmp(pairs[m].b->workload, p->b->workload) &&
                !strcmp(pairs[m].b->pin, p->b->pin))
                one = &pairs[m];
        if (!one) continue;
        scaling *s = &sc[ns++];
        s->pr = p;
        s->one = one;
        s->base_speedup = one->base_med / p->base_med;
        s->new_speedup = one->new_med / p->new_med;
        s->change = s->new_speedup / s->base_speedup - 1;
        if (fabs(s->change) < 5e-5) s->change = 0; /* rounding of equal curves, not "-0.0%" */
        nb = realloc(nb, (size_t)p->b->reps * sizeof *nb);
        nn = realloc(nn, (size_t)p->n->reps * sizeof *nn);
        if (!nb || !nn) {
            status = cli_fail(CMD, "out of memory");
            goto done;
        }
        for (int i = 0; i < p->b->reps; i++) nb[i] = p->b->samples[i] / one->base_med;
        for (int i = 0; i < p->n->reps; i++) nn[i] = p->n->samples[i] / one->new_med;
        dpt_utest u;
        s->p =
            dpt_stats_utest(nb, (size_t)p->b->reps, nn, (size_t)p->n->reps, DPT_ALT_TWO_SIDED, &u)
                ? NAN
                : u.p;
        s->verdict = judge(s->change, s->p, threshold, alpha, "better", "worse");
    }

    int ww = 8;
    for (size_t k = 0; k < np; k++)
        if ((int)strlen(pairs[k].b->workload) > ww) ww = (int)strlen(pairs[k].b->workload);
    printf("base: %s (%s%s%s, %s)\nnew:  %s (%s%s%s, %s)\n\n", bf,
           base.context.dpt_version[0] ? base.context.dpt_version : "?",
           base.context.git_revision[0] ? " " : "", base.context.git_revision,
           base.context.date[0] ? base.context.date : "undated", nf,
           cur.context.dpt_version[0] ? cur.context.dpt_version : "?",
           cur.context.git_revision[0] ? " " : "", cur.context.git_revision,
           cur.context.date[0] ? cur.context.date : "undated");
    printf("%-*s", ww, "workload");
    if (multi) printf(" %5s", "ranks");
    printf(" %7s %-8s %6s %11s %11s %8s %8s  %s\n", "threads", "pin", "batch", "base ms", "new ms",
           "change", "p-value", "verdict");
    int slower = 0, worse = 0;
    for (size_t k = 0; k < np; k++) {
        const pair *p = &pairs[k];
        char bs[24];
        printf("%-*s", ww, p->b->workload);
        if (multi) printf(" %5d", p->b->ranks);
        printf(" %7d %-8s %6s %11.3f %11.3f %+7.1f%% %8.3g  %s\n", p->b->threads, p->b->pin,
               batch_str(p->b->batch, bs, sizeof bs), 1e3 * p->base_med, 1e3 * p->new_med,
               100 * p->change, p->p, p->verdict);
        ratios[k] = p->new_med / p->base_med;
        slower += !strcmp(p->verdict, "slower");
    }
    double geomean = dpt_stats_geomean(ratios, np);
    printf("\ngeometric mean of new/base times over %zu configuration%s: %.4f (%+.1f%%)\n", np,
           np == 1 ? "" : "s", geomean, 100 * (geomean - 1));

    if (ns) {
        printf("\nspeedup vs 1 %s:\n%-*s", multi ? "rank x 1 thread" : "thread", ww, "workload");
        if (multi) printf(" %5s", "ranks");
        printf(" %7s %-8s %6s %9s %9s %8s %8s  %s\n", "threads", "pin", "batch", "base", "new",
               "change", "p-value", "verdict");
        for (size_t k = 0; k < ns; k++) {
            const scaling *s = &sc[k];
            char bs[24];
            printf("%-*s", ww, s->pr->b->workload);
            if (multi) printf(" %5d", s->pr->b->ranks);
            printf(" %7d %-8s %6s %9.2f %9.2f %+7.1f%% %8.3g  %s\n", s->pr->b->threads,
                   s->pr->b->pin, batch_str(s->pr->b->batch, bs, sizeof bs), s->base_speedup,
                   s->new_speedup, 100 * s->change, s->p, s->verdict);
            worse += !strcmp(s->verdict, "worse");
        }
    }

    status = slower || (worse && scaling_fails) ? DPT_EXIT_FAIL : DPT_EXIT_OK;
    printf("\n");
    if (slower)
        printf("FAIL: %d configuration%s significantly slower by more than %g%%\n", slower,
               slower == 1 ? " is" : "s are", 100 * threshold);
    if (worse)
        printf("%s: %d configuration%s lost more than %g%% of %s speedup vs 1 %s%s\n",
               scaling_fails ? "FAIL" : "warning", worse, worse == 1 ? "" : "s", 100 * threshold,
               worse == 1 ? "its" : "their", multi ? "rank x 1 thread" : "thread",
               scaling_fails ? "" : " (--scaling warn)");
    if (status == DPT_EXIT_OK && blind == (int)np) {
        /* Nothing could have been called slower: a pass would mean nothing. */
        printf("cannot decide: no configuration has enough repetitions for the U test to reach "
               "p < %g (rerun dpt bench with --reps 5 or more)\n",
               alpha);
        status = DPT_EXIT_USAGE;
    } else if (status == DPT_EXIT_OK) {
        printf("OK: no configuration significantly slower by more than %g%% (alpha %g)\n",
               100 * threshold, alpha);
    }
    if (json_out) {
        int rc = write_json(json_out, bf, nf, threshold, alpha, pairs, np, sc, ns, geomean, status);
        if (rc) status = DPT_EXIT_USAGE; /* the gate result is lost: do not report a pass */
    }

done:
    free(pairs);
    free(sc);
    free(ratios);
    free(nb);
    free(nn);
    dpt_bench_report_free(&base);
    dpt_bench_report_free(&cur);
    return status;
}

int dpt_cmd_compare(int argc, char **argv)
{
    static const struct option opts[] = {{"threshold", required_argument, NULL, 't'},
                                         {"alpha", required_argument, NULL, 'a'},
                                         {"scaling", required_argument, NULL, 's'},
                                         {"json", required_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    static const char *const scaling_modes[] = {"fail", "warn", NULL};
    double threshold = 0.05, alpha = 0.05;
    int scaling_mode = 0;
    const char *json_out = NULL;
    int c;
    optind = 1;
    while ((c = cli_getopt(CMD, argc, argv, opts)) != -1) {
        switch (c) {
        case 't':
            if (parse_threshold(optarg, &threshold)) return DPT_EXIT_USAGE;
            break;
        case 'a':
            if (cli_double(CMD, "alpha", optarg, 1e-12, 0.5, &alpha)) return DPT_EXIT_USAGE;
            break;
        case 's':
            if (cli_choice(CMD, "scaling", optarg, scaling_modes, &scaling_mode))
                return DPT_EXIT_USAGE;
            break;
        case 'j':
            json_out = optarg;
            break;
        case 'h':
            usage(stdout);
            return DPT_EXIT_OK;
        default:
            return DPT_EXIT_USAGE;
        }
    }
    if (argc - optind != 2)
        return cli_usage_error(CMD, "needs two files, BASE.json and NEW.json (see dpt compare "
                                    "--help)");
    return compare(argv[optind], argv[optind + 1], threshold, alpha, scaling_mode == 0, json_out);
}
