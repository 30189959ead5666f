/* The compare gate through the library alone: bench reports built in memory
 * with samples of known shift, so every U test's p-value is known exactly,
 * and the crafted files of tests/stats/data (DATA_DIR comes from Meson). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dpt/compare.h"
#include "dpt/error.h"
#include "dpt/report.h"

TestSuite(compare, .timeout = 10);

/* Allocation failure on demand: this test links with --wrap for malloc,
 * calloc, realloc and free, so libdpt's own calls come here; from the n-th
 * one on they fail, and the blocks still live are counted (LeakSanitizer
 * cannot tell here: scripts/lsan.supp drops every leak allocated under a
 * Criterion test, as libcriterion.so is on its stack). */
static long allocs_left = -1; /* -1: none fails */
static long live;             /* blocks allocated minus blocks freed */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);

static int alloc_fails(void)
{
    if (allocs_left == 0) return 1;
    if (allocs_left > 0) allocs_left--;
    return 0;
}

void *__wrap_malloc(size_t n)
{
    void *p = alloc_fails() ? NULL : __real_malloc(n);
    live += p != NULL;
    return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
    void *p = alloc_fails() ? NULL : __real_calloc(n, size);
    live += p != NULL;
    return p;
}

void *__wrap_realloc(void *old, size_t n)
{
    void *p = alloc_fails() ? NULL : __real_realloc(old, n);
    live += p != NULL && old == NULL;
    return p;
}

void __wrap_free(void *p)
{
    live -= p != NULL;
    __real_free(p);
}

/* 5 vs 5 with every new sample above every base one: the exact two-sided
 * p of the U test is 2 / C(10, 5) = 2/252. */
#define P_SEPARATED_5_5 (2.0 / 252.0)

static const double BASE5[5] = {1.00, 1.01, 1.02, 1.03, 1.04};

/* Append a row of `threads` threads, linreg, pin compact, full batch: the
 * n samples of x each times scale. */
static void add_row(dpt_bench_report *r, const char *workload, int threads, const char *isa,
                    const double *x, int n, double scale)
{
    double s[16];
    cr_assert_leq(n, 16);
    for (int i = 0; i < n; i++) s[i] = x[i] * scale;
    cr_assert_not_null(dpt_bench_report_add(r, workload, threads, "compact", isa, 0, s, n));
}

/* Compare two one-row reports: base BASE5, new BASE5 x scale. */
static void compare_scaled(double scale, const dpt_compare_opts *o, dpt_compare_result *res)
{
    dpt_bench_report b, n;
    dpt_bench_report_init(&b);
    dpt_bench_report_init(&n);
    add_row(&b, "linreg", 1, "avx2", BASE5, 5, 1);
    add_row(&n, "linreg", 1, "avx2", BASE5, 5, scale);
    cr_assert_eq(dpt_compare_reports(&b, &n, o, res), 0, "%s", dpt_last_error());
    dpt_bench_report_free(&b);
    dpt_bench_report_free(&n);
}

/* Index of the first message containing needle, or -1. */
static long find_msg(const dpt_compare_result *r, const char *needle)
{
    for (size_t i = 0; i < r->nmessages; i++)
        if (strstr(r->messages[i], needle)) return (long)i;
    return -1;
}

static void expect_msg(const dpt_compare_result *r, const char *needle)
{
    if (find_msg(r, needle) >= 0) return;
    for (size_t i = 0; i < r->nmessages; i++) cr_log_error("message: %s", r->messages[i]);
    cr_assert_fail("no message contains '%s'", needle);
}

Test(compare, defaults)
{
    dpt_compare_opts o;
    memset(&o, 0xff, sizeof o);
    dpt_compare_opts_defaults(&o);
    cr_assert_float_eq(o.threshold, 0.05, 1e-15);
    cr_assert_float_eq(o.alpha, 0.05, 1e-15);
    cr_assert_eq(o.scaling_fails, 1);
    cr_assert_null(o.base_name);
    cr_assert_null(o.new_name);
    cr_assert_str_eq(dpt_verdict_name(DPT_VERDICT_SLOWER), "slower");
    cr_assert_str_eq(dpt_verdict_name(DPT_VERDICT_WORSE), "worse");
}

Test(compare, slower_with_the_exact_p)
{
    dpt_compare_result r;
    compare_scaled(1.20, NULL, &r);
    cr_assert_eq(r.nrows, 1);
    const dpt_compare_row *p = &r.rows[0];
    cr_assert_eq(p->verdict, DPT_VERDICT_SLOWER);
    cr_assert_float_eq(p->base_median, 1.02, 1e-12);
    cr_assert_float_eq(p->new_median, 1.224, 1e-12);
    cr_assert_float_eq(p->change, 0.20, 1e-12);
    cr_assert_float_eq(p->p, P_SEPARATED_5_5, 1e-12, "p = %.17g", p->p);
    cr_assert_eq(p->sided, DPT_ALT_TWO_SIDED);
    /* two-sample Hodges-Lehmann on the log times: the 25 ratios new_j /
     * base_i, their median and, with C = 2 (P(U <= 2) = 4/252 <= 0.025),
     * their 3rd smallest and 3rd largest (enumerated with Python once) */
    cr_assert_float_eq(p->estimate, 0.19999999999999996, 1e-12, "%.17g", p->estimate);
    cr_assert_float_eq(p->interval_lo, 0.16538461538461532, 1e-12, "%.17g", p->interval_lo);
    cr_assert_float_eq(p->interval_hi, 0.2356435643564356, 1e-12, "%.17g", p->interval_hi);
    cr_assert_float_eq(p->interval_level, 1 - 8.0 / 252, 1e-12);
    cr_assert_eq(p->base_reps, 5);
    cr_assert_eq(p->new_reps, 5);
    cr_assert_not(p->blind);
    cr_assert_str_eq(p->key.workload, "linreg");
    cr_assert_eq(p->key.threads, 1);
    cr_assert_eq(p->key.ranks, 1);
    cr_assert_str_eq(p->key.pin, "compact");
    cr_assert_eq(p->key.batch, 0);
    cr_assert_str_eq(p->key.isa, "avx2");
    cr_assert_eq(r.slower, 1);
    cr_assert_eq(r.blind, 0);
    cr_assert_float_eq(r.geomean_ratio, 1.2, 1e-12);
    cr_assert_eq(r.outcome, DPT_COMPARE_FAIL);
    cr_assert_eq(r.exit_status, 1);
    cr_assert_eq(r.nmessages, 0, "%s", r.nmessages ? r.messages[0] : "");
    cr_assert_str_eq(r.base_name, "base");
    cr_assert_str_eq(r.new_name, "new");
    dpt_compare_result_free(&r);
}

Test(compare, small_shift_is_same)
{
    dpt_compare_result r;
    compare_scaled(1.01, NULL, &r);
    cr_assert_float_eq(r.rows[0].change, 0.01, 1e-12);
    cr_assert_eq(r.rows[0].verdict, DPT_VERDICT_SAME);
    cr_assert_eq(r.outcome, DPT_COMPARE_PASS);
    cr_assert_eq(r.exit_status, 0);
    dpt_compare_result_free(&r);

    /* fully separated (p = 2/252) but 4.5% is under the 5% threshold; with
     * no threshold the same samples are slower */
    compare_scaled(1.045, NULL, &r);
    cr_assert_float_eq(r.rows[0].p, P_SEPARATED_5_5, 1e-12);
    cr_assert_eq(r.rows[0].verdict, DPT_VERDICT_SAME);
    dpt_compare_result_free(&r);
    dpt_compare_opts o;
    dpt_compare_opts_defaults(&o);
    o.threshold = 0;
    compare_scaled(1.045, &o, &r);
    cr_assert_eq(r.rows[0].verdict, DPT_VERDICT_SLOWER);
    cr_assert_eq(r.outcome, DPT_COMPARE_FAIL);
    dpt_compare_result_free(&r);
}

Test(compare, faster)
{
    dpt_compare_result r;
    compare_scaled(0.80, NULL, &r);
    cr_assert_eq(r.rows[0].verdict, DPT_VERDICT_FASTER);
    cr_assert_float_eq(r.rows[0].change, -0.20, 1e-12);
    cr_assert_float_eq(r.rows[0].p, P_SEPARATED_5_5, 1e-12);
    cr_assert_eq(r.slower, 0);
    cr_assert_eq(r.outcome, DPT_COMPARE_PASS);
    cr_assert_eq(r.exit_status, 0);
    dpt_compare_result_free(&r);
}

Test(compare, overlapping_shift_is_noise)
{
    /* median +7.8%, but the samples interleave: U = 16 of 25, and 69 of the
     * C(10, 5) = 252 rank sets give U >= 16, so p = 2 x 69/252 */
    static const double NEW[5] = {0.95, 1.005, 1.10, 1.20, 1.30};
    dpt_bench_report b, n;
    dpt_bench_report_init(&b);
    dpt_bench_report_init(&n);
    add_row(&b, "linreg", 1, "avx2", BASE5, 5, 1);
    add_row(&n, "linreg", 1, "avx2", NEW, 5, 1);
    cr_assert_eq(dpt_bench_report_derive(&n), 0, "%s", dpt_last_error()); /* the IQR */
    dpt_compare_result r;
    cr_assert_eq(dpt_compare_reports(&b, &n, NULL, &r), 0, "%s", dpt_last_error());
    cr_assert_float_eq(r.rows[0].change, 1.10 / 1.02 - 1, 1e-12);
    cr_assert_float_eq(r.rows[0].p, 138.0 / 252.0, 1e-12, "p = %.17g", r.rows[0].p);
    cr_assert_eq(r.rows[0].verdict, DPT_VERDICT_NOISE);
    cr_assert_eq(r.outcome, DPT_COMPARE_PASS);
    /* the new file's own warning about its spread comes along */
    expect_msg(&r, "warning: new: ");
    dpt_compare_result_free(&r);
    dpt_bench_report_free(&b);
    dpt_bench_report_free(&n);
}

/* 1 and 4 threads; the new 1-thread row 20% faster, 4 threads unchanged:
 * the speedup at 4 threads falls from 4 to 3.2. */
static void lost_curve(int scaling_fails, dpt_compare_result *r)
{
    dpt_bench_report b, n;
    dpt_bench_report_init(&b);
    dpt_bench_report_init(&n);
    add_row(&b, "linreg", 1, "avx2", BASE5, 5, 4);
    add_row(&b, "linreg", 4, "avx2", BASE5, 5, 1);
    add_row(&n, "linreg", 1, "avx2", BASE5, 5, 3.2);
    add_row(&n, "linreg", 4, "avx2", BASE5, 5, 1);
    dpt_compare_opts o;
    dpt_compare_opts_defaults(&o);
    o.scaling_fails = scaling_fails;
    cr_assert_eq(dpt_compare_reports(&b, &n, &o, r), 0, "%s", dpt_last_error());
    dpt_bench_report_free(&b);
    dpt_bench_report_free(&n);
}

Test(compare, lost_speedup_curve_fails)
{
    dpt_compare_result r;
    lost_curve(1, &r);
    cr_assert_eq(r.nrows, 2);
    cr_assert_eq(r.rows[0].verdict, DPT_VERDICT_FASTER);
    cr_assert_eq(r.rows[1].verdict, DPT_VERDICT_SAME);
    cr_assert_eq(r.ncurves, 1);
    const dpt_compare_curve *c = &r.curves[0];
    cr_assert_eq(c->key.threads, 4);
    cr_assert_eq(c->row, 1);
    cr_assert_eq(c->one, 0);
    cr_assert_float_eq(c->base_speedup, 4.0, 1e-12);
    cr_assert_float_eq(c->new_speedup, 3.2, 1e-12);
    cr_assert_float_eq(c->change, -0.20, 1e-12);
    cr_assert_float_eq(c->p, P_SEPARATED_5_5, 1e-12);
    cr_assert_eq(c->verdict, DPT_VERDICT_WORSE);
    cr_assert_eq(r.slower, 0);
    cr_assert_eq(r.worse, 1);
    cr_assert_eq(r.outcome, DPT_COMPARE_FAIL);
    cr_assert_eq(r.exit_status, 1);
    dpt_compare_result_free(&r);
}

Test(compare, lost_speedup_curve_only_warns_when_scaling_does_not_fail)
{
    dpt_compare_result r;
    lost_curve(0, &r);
    cr_assert_eq(r.curves[0].verdict, DPT_VERDICT_WORSE);
    cr_assert_eq(r.worse, 1);
    cr_assert_eq(r.outcome, DPT_COMPARE_PASS);
    cr_assert_eq(r.exit_status, 0);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    dpt_compare_print(&r, f);
    fclose(f);
    cr_assert(strstr(text, "\nwarning: 1 configuration lost more than 5% of its speedup vs 1 "
                           "thread"),
              "%s", text);
    cr_assert(strstr(text, "\nOK: no configuration significantly slower"), "%s", text);
    cr_assert_null(strstr(text, "FAIL"), "%s", text);
    free(text);
    dpt_compare_result_free(&r);
}

Test(compare, configurations_in_one_file_only)
{
    dpt_bench_report b, n;
    dpt_bench_report_init(&b);
    dpt_bench_report_init(&n);
    add_row(&b, "linreg", 1, "avx2", BASE5, 5, 1);
    add_row(&b, "linreg", 2, "avx2", BASE5, 5, 0.5);
    add_row(&n, "linreg", 1, "avx2", BASE5, 5, 1);
    add_row(&n, "linreg", 4, "avx2", BASE5, 5, 0.25);
    cr_assert_not_null(dpt_bench_report_add(&n, "linreg", 2, "compact", "avx2", 256, BASE5, 5));
    dpt_compare_opts o;
    dpt_compare_opts_defaults(&o);
    o.base_name = "b.json";
    o.new_name = "n.json";
    dpt_compare_result r;
    cr_assert_eq(dpt_compare_reports(&b, &n, &o, &r), 0, "%s", dpt_last_error());
    cr_assert_eq(r.nrows, 1);
    cr_assert_eq(r.rows[0].key.threads, 1);
    cr_assert_eq(r.nonly_base, 1);
    cr_assert_eq(r.only_base[0].threads, 2);
    cr_assert_eq(r.only_base[0].batch, 0);
    cr_assert_eq(r.nonly_new, 2);
    cr_assert_eq(r.only_new[0].threads, 4);
    /* another batch is another configuration */
    cr_assert_eq(r.only_new[1].threads, 2);
    cr_assert_eq(r.only_new[1].batch, 256);
    /* the new file's first, as dpt compare has always printed them */
    long in_new = find_msg(&r, "note: only in n.json: linreg, 4 threads, pin compact");
    long in_base = find_msg(&r, "warning: only in b.json: linreg, 2 threads, pin compact "
                                "(missing from the new report)");
    cr_assert_geq(in_new, 0);
    cr_assert_gt(in_base, in_new);
    /* a configuration the new report lost fails the gate: nothing measured
     * it, so nothing shows it did not get slower */
    cr_assert_eq(r.missing, 1); /* the two only in the new report do not count */
    cr_assert_eq(r.slower, 0);
    cr_assert_eq(r.outcome, DPT_COMPARE_FAIL);
    cr_assert_eq(r.exit_status, 1);
    dpt_compare_result_free(&r);

    /* allowed, it is a note and the one common row passes */
    o.allow_missing = 1;
    cr_assert_eq(dpt_compare_reports(&b, &n, &o, &r), 0, "%s", dpt_last_error());
    cr_assert_eq(r.missing, 1);
    cr_assert_eq(r.outcome, DPT_COMPARE_PASS);
    cr_assert_eq(r.exit_status, 0);
    expect_msg(&r, "note: only in b.json: linreg, 2 threads, pin compact");
    cr_assert_lt(find_msg(&r, "missing from the new report"), 0);
    dpt_compare_result_free(&r);

    dpt_bench_report_free(&b);
    dpt_bench_report_free(&n);
}

Test(compare, three_and_three_repetitions_cannot_decide)
{
    dpt_bench_report b, n;
    dpt_bench_report_init(&b);
    dpt_bench_report_init(&n);
    add_row(&b, "linreg", 1, "avx2", BASE5, 3, 1);
    add_row(&n, "linreg", 1, "avx2", BASE5, 3, 1.30);
    dpt_compare_result r;
    cr_assert_eq(dpt_compare_reports(&b, &n, NULL, &r), 0, "%s", dpt_last_error());
    /* 30% slower and separated, but 2 / C(6, 3) = 0.1 is the least p there is */
    cr_assert_float_eq(r.rows[0].p, 0.1, 1e-12);
    cr_assert_eq(r.rows[0].verdict, DPT_VERDICT_NOISE);
    cr_assert(r.rows[0].blind);
    cr_assert_eq(r.blind, 1);
    cr_assert_eq(r.outcome, DPT_COMPARE_CANNOT_DECIDE);
    cr_assert_eq(r.exit_status, 3);
    expect_msg(&r, "warning: 1 configuration has too few repetitions");
    dpt_compare_result_free(&r);
    dpt_bench_report_free(&b);
    dpt_bench_report_free(&n);
}

Test(compare, duplicate_rows_cannot_be_compared)
{
    dpt_bench_report b, n;
    dpt_bench_report_init(&b);
    dpt_bench_report_init(&n);
    add_row(&b, "linreg", 1, "avx2", BASE5, 5, 1);
    add_row(&n, "linreg", 1, "avx2", BASE5, 5, 1);
    add_row(&n, "linreg", 2, "avx2", BASE5, 5, 1);
    add_row(&n, "linreg", 1, "avx2", BASE5, 5, 1.1);
    dpt_compare_opts o;
    dpt_compare_opts_defaults(&o);
    o.new_name = "n.json";
    dpt_compare_result r;
    cr_assert_eq(dpt_compare_reports(&b, &n, &o, &r), DPT_EINVAL);
    cr_assert(strstr(dpt_last_error(), "n.json: results[0] and results[2] are the same "
                                       "configuration (linreg, 1 thread, pin compact, batch "
                                       "full, isa avx2)"),
              "%s", dpt_last_error());
    cr_assert_eq(r.nrows, 0);
    dpt_compare_result_free(&r);

    /* the same key with another isa is another row, not a duplicate */
    dpt_bench_report_free(&n);
    dpt_bench_report_init(&n);
    add_row(&n, "linreg", 1, "avx2", BASE5, 5, 1);
    add_row(&n, "linreg", 1, "scalar", BASE5, 5, 3);
    cr_assert_eq(dpt_compare_reports(&b, &n, &o, &r), 0, "%s", dpt_last_error());
    cr_assert_eq(r.nrows, 1);
    cr_assert_str_eq(r.rows[0].new_isa, "avx2");
    cr_assert_eq(r.nonly_new, 1);
    dpt_compare_result_free(&r);
    dpt_bench_report_free(&b);
    dpt_bench_report_free(&n);
}

Test(compare, nothing_in_common_cannot_be_compared)
{
    dpt_bench_report b, n;
    dpt_bench_report_init(&b);
    dpt_bench_report_init(&n);
    add_row(&b, "linreg", 1, "avx2", BASE5, 5, 1);
    add_row(&n, "logreg", 1, "avx2", BASE5, 5, 1);
    snprintf(b.context.cpu_model, sizeof b.context.cpu_model, "CPU A");
    snprintf(n.context.cpu_model, sizeof n.context.cpu_model, "CPU B");
    dpt_compare_result r;
    cr_assert_eq(dpt_compare_reports(&b, &n, NULL, &r), DPT_EINVAL);
    cr_assert(strstr(dpt_last_error(), "no configuration (workload, ranks, threads, pin, batch) "
                                       "is in both base (1 results) and new (1 results)"),
              "%s", dpt_last_error());
    /* what was gathered before the failure stays for the caller to show */
    expect_msg(&r, "warning: other CPU: base 'CPU A', new 'CPU B'");
    dpt_compare_result_free(&r);
    dpt_bench_report_free(&b);
    dpt_bench_report_free(&n);
}

Test(compare, bad_options_and_rows)
{
    dpt_bench_report b;
    dpt_bench_report_init(&b);
    add_row(&b, "linreg", 1, "avx2", BASE5, 5, 1);
    dpt_compare_opts o;
    dpt_compare_opts_defaults(&o);
    dpt_compare_result r;
    o.alpha = 0;
    cr_assert_eq(dpt_compare_reports(&b, &b, &o, &r), DPT_EINVAL);
    dpt_compare_result_free(&r);
    dpt_compare_opts_defaults(&o);
    o.threshold = NAN;
    cr_assert_eq(dpt_compare_reports(&b, &b, &o, &r), DPT_EINVAL);
    dpt_compare_result_free(&r);
    /* a row without samples has nothing to test */
    b.results[0].reps = 0;
    cr_assert_eq(dpt_compare_reports(&b, &b, NULL, &r), DPT_EINVAL);
    cr_assert(strstr(dpt_last_error(), "base: results[0]"), "%s", dpt_last_error());
    dpt_compare_result_free(&r);
    b.results[0].reps = 5;
    dpt_bench_report_free(&b);
}

Test(compare, context_and_isa_warnings_in_order)
{
    dpt_bench_report b, n;
    dpt_bench_report_init(&b);
    dpt_bench_report_init(&n);
    add_row(&b, "linreg", 1, "avx2", BASE5, 5, 1);
    add_row(&n, "linreg", 1, "scalar", BASE5, 5, 1);
    snprintf(b.context.isa, sizeof b.context.isa, "avx2");
    snprintf(n.context.isa, sizeof n.context.isa, "scalar");
    snprintf(b.context.engine, sizeof b.context.engine, "reduce=scatter balance=static");
    snprintf(n.context.engine, sizeof n.context.engine, "reduce=scatter balance=adaptive");
    n.context.cores = 8;
    snprintf(n.context.compiler, sizeof n.context.compiler, "gcc 13");
    dpt_compare_result r;
    cr_assert_eq(dpt_compare_reports(&b, &n, NULL, &r), 0, "%s", dpt_last_error());
    /* lone rows of a key pair up across isas, with a word about it */
    cr_assert_eq(r.nrows, 1);
    cr_assert_str_eq(r.rows[0].key.isa, "avx2");
    cr_assert_str_eq(r.rows[0].new_isa, "scalar");
    static const char *const want[] = {
        "warning: linreg, 1 thread, pin compact: isa avx2 in base, scalar in new",
        "warning: other ISA: base 'avx2', new 'scalar'",
        "warning: other engine settings: base 'reduce=scatter balance=static', new "
        "'reduce=scatter balance=adaptive'",
        "warning: other topology: base -1 packages, -1 NUMA nodes, -1 cores, -1 PUs; new -1, "
        "-1, 8, -1",
        "note: other compiler: base '', new 'gcc 13'",
    };
    cr_assert_eq(r.nmessages, sizeof want / sizeof *want);
    for (size_t i = 0; i < r.nmessages; i++) cr_assert_str_eq(r.messages[i], want[i]);
    dpt_compare_result_free(&r);
    dpt_bench_report_free(&b);
    dpt_bench_report_free(&n);
}

Test(compare, print_is_the_dpt_compare_report)
{
    dpt_bench_report b, n;
    dpt_bench_report_init(&b);
    dpt_bench_report_init(&n);
    add_row(&b, "linreg", 1, "avx2", BASE5, 5, 0.004);
    add_row(&b, "linreg", 2, "avx2", BASE5, 5, 0.002);
    add_row(&n, "linreg", 1, "avx2", BASE5, 5, 0.004);
    add_row(&n, "linreg", 2, "avx2", BASE5, 5, 0.0024);
    snprintf(b.context.dpt_version, sizeof b.context.dpt_version, "0.1.0");
    snprintf(b.context.git_revision, sizeof b.context.git_revision, "abc1234");
    snprintf(b.context.date, sizeof b.context.date, "2025-01-31T12:00:00Z");
    dpt_compare_opts o;
    dpt_compare_opts_defaults(&o);
    o.base_name = "b.json";
    o.new_name = "n.json";
    dpt_compare_result r;
    cr_assert_eq(dpt_compare_reports(&b, &n, &o, &r), 0, "%s", dpt_last_error());
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    dpt_compare_print(&r, f);
    fclose(f);
    const char *want =
        "base: b.json (0.1.0 abc1234, 2025-01-31T12:00:00Z)\n"
        "new:  n.json (?, undated)\n"
        "\n"
        "workload threads pin       batch     base ms      new ms   change interval          "
        "p (two-sided U)  verdict\n"
        "linreg         1 compact    full       4.080       4.080    +0.0% [-2.9%, +3.0%]    "
        "              1  same\n"
        "linreg         2 compact    full       2.040       2.448   +20.0% [+16.5%, +23.6%]  "
        "        0.00794  slower\n"
        "\n"
        "geometric mean of new/base times over 2 configurations: 1.0954 (+9.5%)\n"
        "interval: Hodges-Lehmann 95% interval of the change (median of the ratios new/base); "
        "the U test decides\n"
        "\n"
        "speedup vs 1 thread:\n"
        "workload threads pin       batch      base       new   change interval          "
        "p (two-sided U)  verdict\n"
        "linreg         2 compact    full      2.00      1.67   -16.7% -                 "
        "        0.00794  worse\n"
        "\n"
        "FAIL: 1 configuration is significantly slower by more than 5%\n"
        "FAIL: 1 configuration lost more than 5% of its speedup vs 1 thread\n";
    cr_assert_str_eq(text, want);
    free(text);
    dpt_compare_result_free(&r);
    dpt_bench_report_free(&b);
    dpt_bench_report_free(&n);
}

Test(compare, fixture_files)
{
    dpt_compare_result r;
    const char *base = DATA_DIR "/base.json", *regressed = DATA_DIR "/regressed.json";
    cr_assert_eq(dpt_compare_files(base, regressed, NULL, &r), 0, "%s", dpt_last_error());
    cr_assert_str_eq(r.base_name, base);
    cr_assert_str_eq(r.new_name, regressed);
    cr_assert_eq(r.nrows, 4);
    for (size_t k = 0; k < r.nrows; k++) {
        const dpt_compare_row *p = &r.rows[k];
        cr_assert_eq(p->key.threads, 1 << k);
        if (p->key.threads == 4) {
            cr_assert_eq(p->verdict, DPT_VERDICT_SLOWER);
            cr_assert_float_eq(p->change, 0.20, 1e-9);
            cr_assert_float_eq(p->p, P_SEPARATED_5_5, 1e-12);
        } else {
            cr_assert_eq(p->verdict, DPT_VERDICT_SAME, "%d threads", p->key.threads);
        }
    }
    cr_assert_eq(r.outcome, DPT_COMPARE_FAIL);
    cr_assert_eq(r.exit_status, 1);
    dpt_compare_result_free(&r);

    /* 1 thread 20% faster, 8 threads not: the curve at 4 and 8 threads is worse */
    cr_assert_eq(dpt_compare_files(base, DATA_DIR "/scaling.json", NULL, &r), 0, "%s",
                 dpt_last_error());
    cr_assert_eq(r.rows[0].verdict, DPT_VERDICT_FASTER);
    cr_assert_eq(r.rows[3].verdict, DPT_VERDICT_SAME);
    cr_assert_eq(r.ncurves, 3);
    cr_assert_eq(r.curves[0].verdict, DPT_VERDICT_SAME);
    cr_assert_eq(r.curves[1].verdict, DPT_VERDICT_WORSE);
    cr_assert_eq(r.curves[2].verdict, DPT_VERDICT_WORSE);
    cr_assert_float_eq(r.curves[2].change, -0.20, 1e-9);
    cr_assert_eq(r.worse, 2);
    cr_assert_eq(r.outcome, DPT_COMPARE_FAIL);
    dpt_compare_result_free(&r);

    /* ranks: the 2 x 4 row slower, its speedup vs 1 rank x 1 thread worse */
    cr_assert_eq(dpt_compare_files(DATA_DIR "/ranks.json", DATA_DIR "/ranks_slower.json", NULL, &r),
                 0, "%s", dpt_last_error());
    cr_assert(r.multi_rank);
    cr_assert_eq(r.nrows, 7);
    cr_assert_eq(r.rows[6].key.ranks, 2);
    cr_assert_eq(r.rows[6].key.threads, 4);
    cr_assert_eq(r.rows[6].verdict, DPT_VERDICT_SLOWER);
    cr_assert_eq(r.slower, 1);
    cr_assert_eq(r.worse, 1);
    cr_assert_eq(r.curves[r.ncurves - 1].verdict, DPT_VERDICT_WORSE);
    dpt_compare_result_free(&r);

    /* a file that cannot be read: the reader's status and message */
    int rc = dpt_compare_files(base, "/nonexistent/new.json", NULL, &r);
    cr_assert_lt(rc, 0);
    cr_assert(strstr(dpt_last_error(), "/nonexistent/new.json"), "%s", dpt_last_error());
    dpt_compare_result_free(&r);
}

Test(compare, json)
{
    char dir[] = "/tmp/dpt-compare-XXXXXX", path[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/cmp.json", dir);
    dpt_compare_result r;
    cr_assert_eq(dpt_compare_files(DATA_DIR "/base.json", DATA_DIR "/regressed.json", NULL, &r), 0,
                 "%s", dpt_last_error());
    cr_assert_eq(dpt_compare_write_json(&r, path), 0, "%s", dpt_last_error());
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    cr_assert_not_null(root, "%s", err.text);
    cr_assert_str_eq(json_string_value(json_object_get(root, "schema")), "dpt-compare/1");
    cr_assert_eq(json_integer_value(json_object_get(root, "exit")), 1);
    cr_assert_float_eq(json_real_value(json_object_get(root, "threshold")), 0.05, 1e-15);
    json_t *rows = json_object_get(root, "results");
    cr_assert_eq(json_array_size(rows), 4);
    json_t *four = json_array_get(rows, 2);
    cr_assert_eq(json_integer_value(json_object_get(four, "threads")), 4);
    cr_assert_str_eq(json_string_value(json_object_get(four, "verdict")), "slower");
    cr_assert_float_eq(json_real_value(json_object_get(four, "p_value")), P_SEPARATED_5_5, 1e-12);
    cr_assert_eq(json_array_size(json_object_get(root, "speedup")), 3);
    json_decref(root);
    /* a file that cannot be written says so and leaves nothing behind */
    cr_assert_lt(dpt_compare_write_json(&r, "/nonexistent/dir/cmp.json"), 0);
    cr_assert(strstr(dpt_last_error(), "/nonexistent/dir/cmp.json"), "%s", dpt_last_error());
    dpt_compare_result_free(&r);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(rmdir(dir), 0);
}

Test(compare, out_of_memory_at_every_allocation)
{
    /* rows, curves, notes and context warnings: every kind of allocation */
    dpt_bench_report b, n;
    dpt_bench_report_init(&b);
    dpt_bench_report_init(&n);
    add_row(&b, "linreg", 1, "avx2", BASE5, 5, 4);
    add_row(&b, "linreg", 4, "avx2", BASE5, 5, 1);
    add_row(&b, "linreg", 8, "avx2", BASE5, 5, 1);
    add_row(&n, "linreg", 1, "avx2", BASE5, 5, 3.2);
    add_row(&n, "linreg", 4, "avx2", BASE5, 5, 1);
    add_row(&n, "linreg", 2, "avx2", BASE5, 5, 1);
    snprintf(n.context.cpu_model, sizeof n.context.cpu_model, "CPU B");
    /* stored and paired: the same rows, other allocations (intervals, differences) */
    int (*const how[2])(const dpt_bench_report *, const dpt_bench_report *,
                        const dpt_compare_opts *,
                        dpt_compare_result *) = {dpt_compare_reports, dpt_compare_paired};
    int failed = 0;
    for (int h = 0; h < 2; h++) {
        dpt_compare_result r;
        allocs_left = 1L << 40;
        cr_assert_eq(how[h](&b, &n, NULL, &r), 0, "%s", dpt_last_error());
        long used = (1L << 40) - allocs_left;
        allocs_left = -1;
        cr_assert_gt(r.nmessages, 2);
        dpt_compare_result_free(&r);
        cr_assert_gt(used, 8);
        for (long k = 0; k < used; k++) {
            long before = live;
            allocs_left = k;
            int rc = how[h](&b, &n, NULL, &r);
            allocs_left = -1;
            /* a median or U test without memory only loses its number */
            cr_assert(rc == 0 || rc == DPT_ENOMEM, "%d, allocation %ld: %d %s", h, k, rc,
                      dpt_last_error());
            if (rc) cr_assert_neq(dpt_last_error()[0], '\0');
            failed += rc != 0;
            dpt_compare_result_free(&r);
            cr_assert_eq(live, before, "%d, allocation %ld failing leaks %ld blocks", h, k,
                         live - before);
        }
    }
    cr_assert_gt(failed, 0);
    dpt_bench_report_free(&b);
    dpt_bench_report_free(&n);
}

/* ---- paired reports (dpt compare --run) ---- */

static const double BASE8[8] = {1.00, 1.01, 1.02, 1.03, 1.04, 1.05, 1.06, 1.07};

/* One row per report: sample i of the new row is BASE8[i] * f[i]. */
static int compare_pairs(const double *f, int n, const dpt_compare_opts *o, dpt_compare_result *res)
{
    dpt_bench_report b, c;
    dpt_bench_report_init(&b);
    dpt_bench_report_init(&c);
    double s[16];
    for (int i = 0; i < n; i++) s[i] = BASE8[i % 8] * f[i];
    add_row(&b, "linreg", 1, "avx2", BASE8, n, 1);
    cr_assert_not_null(dpt_bench_report_add(&c, "linreg", 1, "compact", "avx2", 0, s, n));
    int rc = dpt_compare_paired(&b, &c, o, res);
    dpt_bench_report_free(&b);
    dpt_bench_report_free(&c);
    return rc;
}

/* Estimates, intervals and p-values from /usr/bin/python3 once: the Walsh
 * averages of d_i = log(f_i), their median, the order statistics C+1 and
 * M-C with C = 3 for 8 pairs at 95% (P(W+ <= 3) = 5/256), exp(.) - 1;
 * p from scipy.stats.wilcoxon as dpt_stats_signed_rank computes it: zeros
 * dropped, exact without ties, else mode='approx', correction=False (the
 * two pairs of 1.20 tie). */
Test(compare, paired_slower_only_when_the_interval_is_beyond)
{
    static const double f[8] = {1.18, 1.21, 1.19, 1.22, 1.20, 1.17, 1.23, 1.20};
    dpt_compare_result r;
    cr_assert_eq(compare_pairs(f, 8, NULL, &r), 0, "%s", dpt_last_error());
    const dpt_compare_row *p = &r.rows[0];
    cr_assert(r.paired);
    cr_assert_float_eq(p->change, 0.19997916612410993, 1e-12, "%.17g", p->change);
    cr_assert_float_eq(p->estimate, p->change, 1e-15);
    cr_assert_float_eq(p->interval_lo, 0.17999999999999994, 1e-12, "%.17g", p->interval_lo);
    cr_assert_float_eq(p->interval_hi, 0.21995901570503587, 1e-12, "%.17g", p->interval_hi);
    cr_assert_float_eq(p->interval_level, 1 - 10.0 / 256, 1e-12);
    cr_assert_float_eq(p->p, 0.011616044899262472, 1e-12, "%.17g", p->p);
    cr_assert_eq(p->verdict, DPT_VERDICT_SLOWER);
    cr_assert_eq(r.outcome, DPT_COMPARE_FAIL);
    cr_assert_eq(r.exit_status, 1);
    cr_assert_str_eq(dpt_compare_p_label(&r), "p (two-sided signed-rank)");
    dpt_compare_result_free(&r);

    /* a 25% threshold: the interval [+18%, +22%] lies inside it */
    dpt_compare_opts o;
    dpt_compare_opts_defaults(&o);
    o.threshold = 0.25;
    cr_assert_eq(compare_pairs(f, 8, &o, &r), 0, "%s", dpt_last_error());
    cr_assert_eq(r.rows[0].verdict, DPT_VERDICT_SAME);
    cr_assert_eq(r.exit_status, 0);
    dpt_compare_result_free(&r);

    /* 20%: the interval straddles it, so it cannot say which side */
    o.threshold = 0.20;
    cr_assert_eq(compare_pairs(f, 8, &o, &r), 0, "%s", dpt_last_error());
    cr_assert_eq(r.rows[0].verdict, DPT_VERDICT_UNDECIDED);
    cr_assert_str_eq(dpt_verdict_name(r.rows[0].verdict), "cannot decide");
    cr_assert_eq(r.outcome, DPT_COMPARE_CANNOT_DECIDE);
    cr_assert_eq(r.exit_status, 3);
    cr_assert_eq(r.undecided, 1);
    dpt_compare_result_free(&r);

    /* the mirror image is faster */
    double g[8];
    for (int i = 0; i < 8; i++) g[i] = 1 / f[i];
    cr_assert_eq(compare_pairs(g, 8, NULL, &r), 0, "%s", dpt_last_error());
    cr_assert_eq(r.rows[0].verdict, DPT_VERDICT_FASTER);
    cr_assert_float_eq(r.rows[0].interval_hi, 1 / 1.18 - 1, 1e-9, "%.17g", r.rows[0].interval_hi);
    cr_assert_eq(r.exit_status, 0);
    dpt_compare_result_free(&r);
}

Test(compare, paired_same_and_cannot_decide)
{
    static const double same[8] = {1.004, 0.995, 1.01, 0.998, 1.003, 0.991, 1.007, 1.0};
    dpt_compare_result r;
    cr_assert_eq(compare_pairs(same, 8, NULL, &r), 0, "%s", dpt_last_error());
    const dpt_compare_row *p = &r.rows[0];
    cr_assert_float_eq(p->change, 0.00098876113024110274, 1e-12, "%.17g", p->change);
    cr_assert_float_eq(p->interval_lo, -0.0050000000000000044, 1e-12, "%.17g", p->interval_lo);
    cr_assert_float_eq(p->interval_hi, 0.006995531271117416, 1e-12, "%.17g", p->interval_hi);
    cr_assert_float_eq(p->p, 0.6875, 1e-12, "%.17g", p->p);
    cr_assert_eq(p->verdict, DPT_VERDICT_SAME);
    cr_assert_eq(r.outcome, DPT_COMPARE_PASS);
    cr_assert_eq(r.exit_status, 0);
    dpt_compare_result_free(&r);

    /* +0% .. +10%: the interval [+1.5%, +9.0%] straddles 5% */
    static const double straddle[8] = {1.00, 1.10, 1.03, 1.08, 1.05, 1.01, 1.09, 1.06};
    cr_assert_eq(compare_pairs(straddle, 8, NULL, &r), 0, "%s", dpt_last_error());
    cr_assert_float_eq(r.rows[0].change, 0.052017984549843264, 1e-12);
    cr_assert_float_eq(r.rows[0].interval_lo, 0.01488915650922196, 1e-12);
    cr_assert_float_eq(r.rows[0].interval_hi, 0.089954127475097082, 1e-12);
    cr_assert_eq(r.rows[0].verdict, DPT_VERDICT_UNDECIDED);
    cr_assert_eq(r.exit_status, 3);
    dpt_compare_result_free(&r);

    /* its mirror, [-8.3%, -1.5%], straddles only -5%: whether same or
     * faster, not slower, which passes the gate (and decides) */
    double mirror[8];
    for (int i = 0; i < 8; i++) mirror[i] = 1 / straddle[i];
    cr_assert_eq(compare_pairs(mirror, 8, NULL, &r), 0, "%s", dpt_last_error());
    cr_assert_float_eq(r.rows[0].interval_lo, 1 / 1.089954127475097082 - 1, 1e-12);
    cr_assert_float_eq(r.rows[0].interval_hi, 1 / 1.01488915650922196 - 1, 1e-12);
    cr_assert_eq(r.rows[0].verdict, DPT_VERDICT_NOT_SLOWER);
    cr_assert_str_eq(dpt_verdict_name(r.rows[0].verdict), "same or faster");
    cr_assert_eq(r.outcome, DPT_COMPARE_PASS);
    cr_assert_eq(r.exit_status, 0);
    cr_assert_eq(r.undecided, 0);
    dpt_compare_result_free(&r);

    /* 5 pairs: P(W+ <= 0) = 1/32 > 0.025, no 95% interval however clear */
    static const double five[5] = {1.5, 1.5, 1.5, 1.5, 1.5};
    cr_assert_eq(compare_pairs(five, 5, NULL, &r), 0, "%s", dpt_last_error());
    cr_assert(r.rows[0].blind);
    cr_assert(isnan(r.rows[0].interval_lo));
    cr_assert_eq(r.rows[0].verdict, DPT_VERDICT_UNDECIDED);
    cr_assert_eq(r.exit_status, 3);
    expect_msg(&r, "too few pairs for an interval at 95%");
    dpt_compare_result_free(&r);
}

Test(compare, paired_needs_as_many_samples)
{
    dpt_bench_report b, n;
    dpt_bench_report_init(&b);
    dpt_bench_report_init(&n);
    add_row(&b, "linreg", 1, "avx2", BASE8, 8, 1);
    add_row(&n, "linreg", 1, "avx2", BASE8, 7, 1);
    dpt_compare_result r;
    cr_assert_eq(dpt_compare_paired(&b, &n, NULL, &r), DPT_EINVAL);
    cr_assert(strstr(dpt_last_error(), "8 samples in base, 7 in new"), "%s", dpt_last_error());
    dpt_compare_result_free(&r);
    dpt_bench_report_free(&b);
    dpt_bench_report_free(&n);
}

/* The speedup curve, paired: pair i's speedup in each build. 2 threads
 * keeps its time in base but takes 1.3x in new, while 1 thread is the
 * same: its speedup falls by 1/1.3 in every pair. */
Test(compare, paired_curve_worse)
{
    dpt_bench_report b, n;
    dpt_bench_report_init(&b);
    dpt_bench_report_init(&n);
    add_row(&b, "linreg", 1, "avx2", BASE8, 8, 1);
    add_row(&b, "linreg", 2, "avx2", BASE8, 8, 0.5);
    add_row(&n, "linreg", 1, "avx2", BASE8, 8, 1);
    add_row(&n, "linreg", 2, "avx2", BASE8, 8, 0.65);
    dpt_compare_result r;
    cr_assert_eq(dpt_compare_paired(&b, &n, NULL, &r), 0, "%s", dpt_last_error());
    cr_assert_eq(r.ncurves, 1);
    cr_assert_float_eq(r.curves[0].change, 1 / 1.3 - 1, 1e-9);
    cr_assert_float_eq(r.curves[0].interval_lo, 1 / 1.3 - 1, 1e-9);
    cr_assert_float_eq(r.curves[0].interval_hi, 1 / 1.3 - 1, 1e-9);
    cr_assert_eq(r.curves[0].verdict, DPT_VERDICT_WORSE);
    cr_assert_eq(r.rows[1].verdict, DPT_VERDICT_SLOWER);
    cr_assert_eq(r.exit_status, 1);
    dpt_compare_result_free(&r);
    dpt_bench_report_free(&b);
    dpt_bench_report_free(&n);

    /* 2 threads 1.5% to 8.3% faster in new, pair by pair (the mirror of
     * paired_same_and_cannot_decide's straddle): the speedup's interval
     * straddles only +5%, same or better, and the rows same or faster */
    static const double straddle[8] = {1.00, 1.10, 1.03, 1.08, 1.05, 1.01, 1.09, 1.06};
    double s2[8];
    for (int i = 0; i < 8; i++) s2[i] = 0.5 * BASE8[i] / straddle[i];
    dpt_bench_report_init(&b);
    dpt_bench_report_init(&n);
    add_row(&b, "linreg", 1, "avx2", BASE8, 8, 1);
    add_row(&b, "linreg", 2, "avx2", BASE8, 8, 0.5);
    add_row(&n, "linreg", 1, "avx2", BASE8, 8, 1);
    cr_assert_not_null(dpt_bench_report_add(&n, "linreg", 2, "compact", "avx2", 0, s2, 8));
    cr_assert_eq(dpt_compare_paired(&b, &n, NULL, &r), 0, "%s", dpt_last_error());
    cr_assert_float_eq(r.curves[0].interval_lo, 0.01488915650922196, 1e-9, "%.17g",
                       r.curves[0].interval_lo);
    cr_assert_eq(r.curves[0].verdict, DPT_VERDICT_NOT_WORSE);
    cr_assert_str_eq(dpt_verdict_name(r.curves[0].verdict), "same or better");
    cr_assert_eq(r.rows[1].verdict, DPT_VERDICT_NOT_SLOWER);
    cr_assert_eq(r.exit_status, 0);
    dpt_compare_result_free(&r);
    dpt_bench_report_free(&b);
    dpt_bench_report_free(&n);
}
