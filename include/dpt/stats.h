/* Statistics for benchmark repetitions: order statistics, means, and the
 * Mann-Whitney U test that decides whether two sets of timings differ.
 * Plain functions on arrays of doubles; nothing here allocates for the caller
 * to free, and nothing prints. */
#ifndef DPT_STATS_H
#define DPT_STATS_H

#include "dpt/export.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Quantile p in [0, 1] of n sorted values, by linear interpolation between
 * order statistics (Hyndman-Fan type 7, the default of R and numpy):
 * h = (n-1)p, q = x[floor h] + (h - floor h)(x[floor h + 1] - x[floor h]).
 * NAN when n == 0. */
DPT_API double dpt_stats_quantile_sorted(const double *sorted, size_t n, double p);

typedef struct dpt_summary {
    size_t n;
    double min, q1, median, q3, max;
    double iqr; /* q3 - q1, quartiles by the type-7 rule above */
    double mean;
} dpt_summary;

/* Summary of n finite values (any order; x is not modified).
 * 0, or DPT_EINVAL (n == 0, a non-finite value) / DPT_ENOMEM. */
DPT_API int dpt_stats_summarize(const double *x, size_t n, dpt_summary *out);

/* Median of n values (type 7: mean of the two middle ones for even n);
 * NAN when n == 0 or on allocation failure. */
DPT_API double dpt_stats_median(const double *x, size_t n);

/* Arithmetic mean; NAN when n == 0. */
DPT_API double dpt_stats_mean(const double *x, size_t n);

/* Geometric mean exp(mean(log x)), for ratios; NAN when n == 0 or any
 * value is not finite and > 0. */
DPT_API double dpt_stats_geomean(const double *x, size_t n);

/* ---- Mann-Whitney U test (Wilcoxon rank-sum) ---- */

typedef enum {
    DPT_ALT_TWO_SIDED = 0, /* the distributions differ */
    DPT_ALT_GREATER = 1,   /* a tends to be larger than b */
    DPT_ALT_LESS = 2       /* a tends to be smaller than b */
} dpt_alternative;

typedef struct dpt_utest {
    double u;  /* U of a: pairs (a_i, b_j) with a_i > b_j, ties counting 1/2 */
    double p;  /* p-value for the alternative asked for */
    int exact; /* 1: exact null distribution, 0: normal approximation */
} dpt_utest;

/* Exact distribution when there are no ties and na + nb <= this (its
 * counts are then integers below 2^53, exact in double); otherwise the
 * normal approximation with tie correction and continuity correction,
 * which is what scipy.stats.mannwhitneyu(method='asymptotic') computes.
 * All values tied gives p = 1. */
#define DPT_UTEST_EXACT_MAX 50

/* 0, or DPT_EINVAL (an empty sample, a non-finite value) / DPT_ENOMEM. */
DPT_API int dpt_stats_utest(const double *a, size_t na, const double *b, size_t nb,
                            dpt_alternative alt, dpt_utest *out);

/* Smallest two-sided p the test can give for these sample sizes (complete
 * separation, no ties): 2 / C(na+nb, na), at most 1. With 3 and 3
 * repetitions it is 0.1, so such a comparison can never reach p < 0.05. */
DPT_API double dpt_stats_utest_min_p(size_t na, size_t nb);

/* ---- paired differences: Wilcoxon signed-rank test, Hodges-Lehmann ---- */

typedef struct dpt_srtest {
    double w;  /* W+: the sum of the ranks of |d| of the positive differences
                  (mid-ranks for ties; zeros dropped, as zero_method='wilcox') */
    size_t n;  /* differences that are not zero */
    double p;  /* for the alternative asked for: GREATER, the d tend to be > 0 */
    int exact; /* 1: exact null distribution, 0: normal approximation */
} dpt_srtest;

/* Exact distribution when no |d| ties and at most this many differences
 * are not zero; otherwise the normal approximation with tie correction and
 * no continuity correction: what scipy.stats.wilcoxon(d, zero_method=
 * 'wilcox', correction=False) computes. All zeros gives p = 1. */
#define DPT_SRTEST_EXACT_MAX 50

/* 0, or DPT_EINVAL (a non-finite value) / DPT_ENOMEM. */
DPT_API int dpt_stats_signed_rank(const double *d, size_t n, dpt_alternative alt, dpt_srtest *out);

typedef struct dpt_hl {
    double estimate; /* Hodges-Lehmann: the median of the Walsh averages (d_i + d_j)/2, i <= j */
    double lo, hi;   /* confidence interval, NAN when n is too small for the level */
    double level;    /* its actual coverage under the null (>= the level asked for; 0
                        without an interval) */
} dpt_hl;

/* The shift the differences d estimate and its confidence interval at
 * level conf (e.g. 0.95): the order statistics C+1 and M-C of the M sorted
 * Walsh averages, C the largest with P(W+ <= C) <= (1 - conf)/2 under the
 * exact signed-rank distribution (normal beyond DPT_SRTEST_EXACT_MAX).
 * 0, or DPT_EINVAL (no values, a non-finite one, conf outside (0, 1)) /
 * DPT_ENOMEM. */
DPT_API int dpt_stats_hodges_lehmann(const double *d, size_t n, double conf, dpt_hl *out);

/* ---- two samples: Hodges-Lehmann shift ---- */

/* The shift of b against a and its confidence interval at level conf:
 * the estimate is the median of the na * nb differences b_j - a_i, the
 * interval their order statistics C+1 and na nb - C, C the largest with
 * P(U <= C) <= (1 - conf)/2 under the Mann-Whitney null (exact when
 * na + nb <= DPT_UTEST_EXACT_MAX, normal beyond; the interval the U test
 * inverts). On log times it is the log of the typical ratio new/base.
 * lo, hi NAN and level 0 when the samples are too small for conf.
 * 0, or DPT_EINVAL (an empty sample, a non-finite value, conf outside
 * (0, 1)) / DPT_ENOMEM. */
DPT_API int dpt_stats_hodges_lehmann_shift(const double *a, size_t na, const double *b, size_t nb,
                                           double conf, dpt_hl *out);

#ifdef __cplusplus
}
#endif
#endif
