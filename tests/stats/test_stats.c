/* Statistics against known values: quantiles and means by hand and numpy,
 * U test p-values from scipy.stats.mannwhitneyu (scipy 1.10, method 'exact'
 * without ties and n1+n2 <= 50, 'asymptotic' otherwise, as dpt chooses). */
#include <criterion/criterion.h>
#include <math.h>

#include "dpt/error.h"
#include "dpt/stats.h"

#define ARR(...)                                                                                   \
    (const double[])                                                                               \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }
#define LEN(...) (sizeof((const double[]){__VA_ARGS__}) / sizeof(double))

static void expect_rel(double got, double want, double rel)
{
    cr_assert(fabs(got - want) <= rel * fabs(want) + 1e-300, "got %.17g, want %.17g", got, want);
}

TestSuite(stats, .timeout = 10);

Test(stats, quantiles_type7)
{
    /* sorted: 0.7 1.2 2.2 3.1 4.8 5.5 9.0 ; h = 6p */
    const double x[] = {3.1, 1.2, 5.5, 2.2, 4.8, 9.0, 0.7};
    dpt_summary s;
    cr_assert_eq(dpt_stats_summarize(x, 7, &s), 0);
    cr_assert_eq(s.n, 7);
    expect_rel(s.min, 0.7, 0);
    expect_rel(s.q1, 1.7, 1e-15); /* h = 1.5: 1.2 + 0.5 * (2.2 - 1.2) */
    expect_rel(s.median, 3.1, 0);
    expect_rel(s.q3, 5.15, 1e-15); /* h = 4.5: 4.8 + 0.5 * (5.5 - 4.8) */
    expect_rel(s.max, 9.0, 0);
    expect_rel(s.iqr, 3.45, 1e-14);
    expect_rel(s.mean, 26.5 / 7, 1e-15);
    cr_assert_eq(x[0], 3.1, "input left unsorted");
}

Test(stats, even_count_and_single)
{
    const double x[] = {4, 1, 3, 2};
    dpt_summary s;
    cr_assert_eq(dpt_stats_summarize(x, 4, &s), 0);
    expect_rel(s.q1, 1.75, 0);
    expect_rel(s.median, 2.5, 0);
    expect_rel(s.q3, 3.25, 0);
    expect_rel(dpt_stats_median(ARR(7.5), 1), 7.5, 0);
    cr_assert_eq(dpt_stats_summarize(ARR(2.0), 1, &s), 0);
    cr_assert_eq(s.iqr, 0);
}

Test(stats, empty_and_nonfinite)
{
    dpt_summary s;
    cr_assert_lt(dpt_stats_summarize(NULL, 0, &s), 0);
    cr_assert_lt(dpt_stats_summarize(ARR(1, NAN), 2, &s), 0);
    cr_assert(isnan(dpt_stats_median(NULL, 0)));
    cr_assert(isnan(dpt_stats_mean(NULL, 0)));
    cr_assert(isnan(dpt_stats_quantile_sorted(NULL, 0, 0.5)));
}

Test(stats, geometric_mean)
{
    expect_rel(dpt_stats_geomean(ARR(0.5, 2.0, 1.1, 0.9), 4), 0.9974905699336812, 1e-14);
    expect_rel(dpt_stats_geomean(ARR(2, 8), 2), 4, 1e-15);
    cr_assert(isnan(dpt_stats_geomean(ARR(1, 0), 2)));
    cr_assert(isnan(dpt_stats_geomean(ARR(1, -2), 2)));
}

typedef struct {
    const char *name;
    const double *a, *b;
    size_t na, nb;
    double u, p[3]; /* two-sided, greater, less */
    int exact;
} ucase;

static const double sep55a[] = {1.0, 1.1, 1.2, 1.3, 1.4}, sep55b[] = {2.0, 2.1, 2.2, 2.3, 2.4};
static const double mixa[] = {0.51, 0.62, 0.48, 0.55, 0.60, 0.71};
static const double mixb[] = {0.58, 0.66, 0.69, 0.75, 0.63, 0.80, 0.77};
static const double tiea[] = {1, 2, 2, 3, 3, 3, 4}, tieb[] = {2, 3, 4, 4, 5, 5};
static const double s33a[] = {1, 2, 3}, s33b[] = {4, 5, 6};

Test(stats, utest_against_scipy)
{
    static const ucase cases[] = {
        {"separated 3/3", s33a, s33b, 3, 3, 0, {0.1, 1.0, 0.05}, 1},
        {"separated 5/5",
         sep55a,
         sep55b,
         5,
         5,
         0,
         {0.007936507936507936, 0.9999999999999998, 0.003968253968253968},
         1},
        {"overlapping 6/7",
         mixa,
         mixb,
         6,
         7,
         6,
         {0.03496503496503496, 0.988927738927739, 0.01748251748251748},
         1},
        {"ties 7/6",
         tiea,
         tieb,
         7,
         6,
         8.5,
         {0.07826242947714618, 0.9717782889227976, 0.03913121473857309},
         0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const ucase *c = &cases[k];
        for (int alt = 0; alt < 3; alt++) {
            dpt_utest u;
            cr_assert_eq(dpt_stats_utest(c->a, c->na, c->b, c->nb, (dpt_alternative)alt, &u), 0);
            cr_assert_eq(u.exact, c->exact, "%s: exact", c->name);
            cr_assert_eq(u.u, c->u, "%s: U %g", c->name, u.u);
            cr_assert(fabs(u.p - c->p[alt]) < 1e-12, "%s alt %d: p %.17g, scipy %.17g", c->name,
                      alt, u.p, c->p[alt]);
        }
    }
}

Test(stats, utest_large_uses_normal_approximation)
{
    /* 30 and 25 points evenly spread, no ties: n1 + n2 = 55 > 50 */
    double a[30], b[25];
    for (int i = 0; i < 30; i++) a[i] = i / 29.0;
    for (int i = 0; i < 25; i++) b[i] = 0.2 + i / 24.0;
    dpt_utest u;
    cr_assert_eq(dpt_stats_utest(a, 30, b, 25, DPT_ALT_TWO_SIDED, &u), 0);
    cr_assert_eq(u.exact, 0);
    cr_assert_eq(u.u, 244);
    cr_assert(fabs(u.p - 0.027394321633979014) < 1e-12, "p %.17g", u.p);
}

Test(stats, utest_edge_cases)
{
    dpt_utest u;
    /* all tied: no evidence at all */
    cr_assert_eq(dpt_stats_utest(ARR(1, 1, 1), 3, ARR(1, 1), 2, DPT_ALT_TWO_SIDED, &u), 0);
    cr_assert_eq(u.p, 1);
    /* one against one: p = 1 two-sided */
    cr_assert_eq(dpt_stats_utest(ARR(1), 1, ARR(2), 1, DPT_ALT_TWO_SIDED, &u), 0);
    cr_assert_eq(u.p, 1);
    cr_assert_lt(dpt_stats_utest(ARR(1), 1, NULL, 0, DPT_ALT_TWO_SIDED, &u), 0);
    cr_assert_lt(dpt_stats_utest(ARR(INFINITY), 1, ARR(1), 1, DPT_ALT_TWO_SIDED, &u), 0);
    /* symmetric: swapping the samples swaps the one-sided tails */
    dpt_utest g, l;
    cr_assert_eq(dpt_stats_utest(mixa, 6, mixb, 7, DPT_ALT_GREATER, &g), 0);
    cr_assert_eq(dpt_stats_utest(mixb, 7, mixa, 6, DPT_ALT_LESS, &l), 0);
    cr_assert(fabs(g.p - l.p) < 1e-15);
}

Test(stats, utest_exact_at_the_limit)
{
    /* 25 vs 25 complete separation: exact p = 2 / C(50, 25) */
    double a[25], b[25];
    for (int i = 0; i < 25; i++) {
        a[i] = i;
        b[i] = 100 + i;
    }
    dpt_utest u;
    cr_assert_eq(dpt_stats_utest(a, 25, b, 25, DPT_ALT_TWO_SIDED, &u), 0);
    cr_assert_eq(u.exact, 1);
    expect_rel(u.p, 2 / 126410606437752.0, 1e-12);
}

Test(stats, utest_min_p)
{
    expect_rel(dpt_stats_utest_min_p(3, 3), 0.1, 1e-12);
    expect_rel(dpt_stats_utest_min_p(5, 5), 2.0 / 252, 1e-12);
    cr_assert_eq(dpt_stats_utest_min_p(1, 1), 1);
    cr_assert_eq(dpt_stats_utest_min_p(0, 4), 1);
}

/* ---- signed-rank test and Hodges-Lehmann, against stored references:
 * p-values from scipy.stats.wilcoxon 1.10 (mode='exact', and for ties
 * mode='approx', zero_method='wilcox', correction=False); intervals from
 * the signed-rank tables (n = 8: critical value 3, n = 20: 52, two-sided
 * 0.05), their endpoints and coverage computed once by enumerating the
 * Walsh averages in Python. ---- */

static const double sr_a[8] = {1.5, -0.3, 2.1, 0.7, 1.1, -0.2, 0.9, 1.8};
static const double sr_b[20] = {0.050123,  0.079875,  0.022586, -0.039059, 0.004533,
                                -0.049165, 0.056014,  0.184022, 0.000779,  -0.012047,
                                0.098984,  0.085689,  0.060541, -0.043047, 0.047075,
                                0.11953,   -0.084421, 0.004238, -0.140122, -0.078954};

Test(signrank, exact_against_scipy)
{
    dpt_srtest t;
    cr_assert_eq(dpt_stats_signed_rank(sr_a, 8, DPT_ALT_TWO_SIDED, &t), 0);
    cr_expect_eq(t.w, 33);
    cr_expect_eq(t.n, 8);
    cr_expect_eq(t.exact, 1);
    cr_expect_float_eq(t.p, 0.0390625, 1e-15);
    cr_assert_eq(dpt_stats_signed_rank(sr_a, 8, DPT_ALT_GREATER, &t), 0);
    cr_expect_float_eq(t.p, 0.01953125, 1e-15);
    cr_assert_eq(dpt_stats_signed_rank(sr_a, 8, DPT_ALT_LESS, &t), 0);
    cr_expect_float_eq(t.p, 0.98828125, 1e-15);
    cr_assert_eq(dpt_stats_signed_rank(sr_b, 20, DPT_ALT_TWO_SIDED, &t), 0);
    cr_expect_eq(t.w, 137);
    cr_expect_float_eq(t.p, 0.24548721313476562, 1e-15);
    cr_assert_eq(dpt_stats_signed_rank(sr_b, 20, DPT_ALT_GREATER, &t), 0);
    cr_expect_float_eq(t.p, 0.12274360656738281, 1e-15);
    cr_assert_eq(dpt_stats_signed_rank(sr_b, 20, DPT_ALT_LESS, &t), 0);
    cr_expect_float_eq(t.p, 0.88474369049072266, 1e-15);
}

Test(signrank, ties_and_zeros_against_scipy)
{
    const double d[10] = {0.4, -0.1, 0.4, 0.0, 0.25, -0.1, 0.6, 0.3, 0.4, 0.05};
    dpt_srtest t;
    cr_assert_eq(dpt_stats_signed_rank(d, 10, DPT_ALT_TWO_SIDED, &t), 0);
    cr_expect_eq(t.n, 9, "the zero is dropped");
    cr_expect_eq(t.w, 40);
    cr_expect_eq(t.exact, 0, "ties: normal approximation");
    cr_expect_float_eq(t.p, 0.037308283938069522, 1e-12);
    cr_assert_eq(dpt_stats_signed_rank(d, 10, DPT_ALT_GREATER, &t), 0);
    cr_expect_float_eq(t.p, 0.018654141969034761, 1e-12);
    cr_assert_eq(dpt_stats_signed_rank(d, 10, DPT_ALT_LESS, &t), 0);
    cr_expect_float_eq(t.p, 0.98134585803096519, 1e-12);
    const double zeros[3] = {0, 0, 0};
    cr_assert_eq(dpt_stats_signed_rank(zeros, 3, DPT_ALT_TWO_SIDED, &t), 0);
    cr_expect_eq(t.p, 1);
    const double bad[2] = {1, NAN};
    cr_expect_eq(dpt_stats_signed_rank(bad, 2, DPT_ALT_TWO_SIDED, &t), DPT_EINVAL);
}

Test(signrank, hodges_lehmann_interval)
{
    dpt_hl h;
    cr_assert_eq(dpt_stats_hodges_lehmann(sr_a, 8, 0.95, &h), 0);
    cr_expect_float_eq(h.estimate, 0.925, 1e-15);
    cr_expect_float_eq(h.lo, 0.2, 1e-15);
    cr_expect_float_eq(h.hi, 1.8, 1e-15);
    cr_expect_float_eq(h.level, 0.9609375, 1e-15);
    cr_assert_eq(dpt_stats_hodges_lehmann(sr_a, 8, 0.90, &h), 0);
    cr_expect_float_eq(h.lo, 0.3, 1e-15);
    cr_expect_float_eq(h.hi, 1.6, 1e-15);
    cr_expect_float_eq(h.level, 0.921875, 1e-15);
    cr_assert_eq(dpt_stats_hodges_lehmann(sr_b, 20, 0.95, &h), 0);
    cr_expect_float_eq(h.estimate, 0.019663, 1e-15);
    cr_expect_float_eq(h.lo, -0.01914, 1e-15);
    cr_expect_float_eq(h.hi, 0.0541375, 1e-15);
    cr_expect_float_eq(h.level, 0.95155906677246094, 1e-15);
    /* six differences: the smallest 95% interval is min to max Walsh average */
    const double six[6] = {1, 2, 3, 4, 5, 6.5};
    cr_assert_eq(dpt_stats_hodges_lehmann(six, 6, 0.95, &h), 0);
    cr_expect_eq(h.lo, 1);
    cr_expect_eq(h.hi, 6.5);
    cr_expect_float_eq(h.level, 0.96875, 1e-15);
    /* five cannot give 95%: 2^-5 > 0.025 */
    cr_assert_eq(dpt_stats_hodges_lehmann(six, 5, 0.95, &h), 0);
    cr_expect_eq(h.estimate, 3);
    cr_expect(isnan(h.lo) && isnan(h.hi) && h.level == 0);
    cr_expect_eq(dpt_stats_hodges_lehmann(six, 6, 1.5, &h), DPT_EINVAL);
}

/* Beyond the exact range: the normal approximation still brackets the
 * estimate and covers about the level asked for. */
Test(signrank, large_samples)
{
    double d[200];
    for (int i = 0; i < 200; i++) d[i] = 0.01 * ((i * 37) % 101) - 0.3 + 1e-6 * i;
    dpt_hl h;
    cr_assert_eq(dpt_stats_hodges_lehmann(d, 200, 0.95, &h), 0);
    cr_expect(h.lo < h.estimate && h.estimate < h.hi);
    cr_expect(fabs(h.level - 0.95) < 0.01, "level %g", h.level);
    dpt_srtest t;
    cr_assert_eq(dpt_stats_signed_rank(d, 200, DPT_ALT_TWO_SIDED, &t), 0);
    cr_expect_eq(t.exact, 0);
    cr_expect(t.p > 0 && t.p <= 1);
}

/* Two-sample Hodges-Lehmann: estimates and intervals computed once with
 * /usr/bin/python3 (numpy 1.x, scipy 1.10) by enumerating every split of
 * the ranks for the exact U distribution, taking C the largest with
 * P(U <= C) <= (1 - conf)/2 and the order statistics C+1 and nm - C of the
 * sorted differences b_j - a_i; beyond 50 values C = floor(nm/2 +
 * norm.ppf((1 - conf)/2) sd), sd = sqrt(nm(n+m+1)/12). */
Test(signrank, hodges_lehmann_shift_against_enumeration)
{
    static const struct {
        double a[8], b[8];
        size_t na, nb;
        double conf, est, lo, hi, level;
    } cases[] = {
        {{1.0, 1.3, 0.7, 2.1, 1.6},
         {2.0, 2.4, 1.9, 3.3, 2.8},
         5,
         5,
         0.95,
         1.1999999999999997,
         0.29999999999999982,
         2.0999999999999996,
         0.96825396825396826},
        {{0.3, 0.9, 0.1},
         {0.5, 1.4, 1.1, 0.8},
         3,
         4,
         0.90,
         0.49999999999999994,
         -0.40000000000000002,
         1.2999999999999998,
         0.94285714285714284},
        {{5.1, 4.7, 5.9, 6.2, 5.0, 4.4, 5.5, 6.8},
         {6.0, 5.2, 7.1, 6.6, 5.8, 7.4, 6.1},
         8,
         7,
         0.95,
         0.89999999999999991,
         -0.10000000000000053,
         1.8999999999999995,
         0.95990675990675989},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        dpt_hl h;
        cr_assert_eq(dpt_stats_hodges_lehmann_shift(cases[i].a, cases[i].na, cases[i].b,
                                                    cases[i].nb, cases[i].conf, &h),
                     0);
        cr_expect_float_eq(h.estimate, cases[i].est, 1e-12, "case %zu: %.17g", i, h.estimate);
        cr_expect_float_eq(h.lo, cases[i].lo, 1e-12, "case %zu: %.17g", i, h.lo);
        cr_expect_float_eq(h.hi, cases[i].hi, 1e-12, "case %zu: %.17g", i, h.hi);
        cr_expect_float_eq(h.level, cases[i].level, 1e-12, "case %zu: %.17g", i, h.level);
    }
    /* 2 and 2: P(U <= 0) = 1/6 > 0.025, no interval at 95% */
    static const double a2[2] = {1.0, 2.0}, b2[2] = {1.5, 2.5};
    dpt_hl h;
    cr_assert_eq(dpt_stats_hodges_lehmann_shift(a2, 2, b2, 2, 0.95, &h), 0);
    cr_expect_float_eq(h.estimate, 0.5, 1e-12);
    cr_expect(isnan(h.lo) && isnan(h.hi));
    cr_expect_eq(h.level, 0);
    cr_expect_eq(dpt_stats_hodges_lehmann_shift(a2, 0, b2, 2, 0.95, &h), DPT_EINVAL);
    cr_expect_eq(dpt_stats_hodges_lehmann_shift(a2, 2, b2, 2, 1.0, &h), DPT_EINVAL);
    static const double bad[2] = {1.0, INFINITY};
    cr_expect_eq(dpt_stats_hodges_lehmann_shift(a2, 2, bad, 2, 0.95, &h), DPT_EINVAL);
}

Test(signrank, hodges_lehmann_shift_normal_beyond_50)
{
    double a[30], b[31];
    for (int i = 0; i < 30; i++) a[i] = (double)(i * 7919 % 101) / 10;
    for (int i = 0; i < 31; i++) b[i] = (double)(i * 104729 % 103) / 10 + 0.8;
    dpt_hl h;
    cr_assert_eq(dpt_stats_hodges_lehmann_shift(a, 30, b, 31, 0.95, &h), 0);
    cr_expect_float_eq(h.estimate, 0.79999999999999982, 1e-12, "%.17g", h.estimate);
    cr_expect_float_eq(h.lo, -0.80000000000000071, 1e-12, "%.17g", h.lo);
    cr_expect_float_eq(h.hi, 2.3999999999999995, 1e-12, "%.17g", h.hi);
    cr_expect_float_eq(h.level, 0.94938814675732974, 1e-9, "%.17g", h.level);
}
