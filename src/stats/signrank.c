/* Paired comparisons: the Wilcoxon signed-rank test on differences (exact
 * null distribution when it is small and untied, else the normal
 * approximation with tie correction, as scipy.stats.wilcoxon computes it
 * with zero_method='wilcox' and no continuity correction), and the
 * Hodges-Lehmann estimate of the shift with its exact confidence interval
 * (the order statistics of the Walsh averages that the signed-rank
 * distribution picks; Bauer 1972). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/error.h"
#include "dpt/stats.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* P(W+ <= w) for w = 0..n(n+1)/2 under the null, n <= DPT_SRTEST_EXACT_MAX:
 * the number of subsets of the ranks 1..n summing to w, over 2^n (the
 * counts stay below 2^53, exact in double). cdf gets M + 1 values. */
static int exact_cdf(size_t n, double *cdf)
{
    const size_t M = n * (n + 1) / 2;
    double *c = calloc(M + 1, sizeof *c);
    if (!c) return dpt_set_error(DPT_ENOMEM, "out of memory");
    c[0] = 1;
    for (size_t k = 1; k <= n; k++)
        for (size_t w = M; w >= k; w--) c[w] += c[w - k];
    double run = 0, total = ldexp(1.0, (int)n);
    for (size_t w = 0; w <= M; w++) cdf[w] = (run += c[w]) / total;
    free(c);
    return 0;
}

static double norm_cdf(double z)
{
    return 0.5 * erfc(-z / sqrt(2.0));
}

typedef struct ranked {
    double a; /* |d| */
    int pos;  /* d > 0 */
} ranked;

static int cmp_ranked(const void *x, const void *y)
{
    return cmp_double(&((const ranked *)x)->a, &((const ranked *)y)->a);
}

int dpt_stats_signed_rank(const double *d, size_t n, dpt_alternative alt, dpt_srtest *out)
{
    memset(out, 0, sizeof *out);
    out->p = NAN;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(d[i])) return dpt_set_error(DPT_EINVAL, "difference %zu is not finite", i);
    ranked *r = malloc((n ? n : 1) * sizeof *r);
    if (!r) return dpt_set_error(DPT_ENOMEM, "out of memory");
    size_t m = 0;
    for (size_t i = 0; i < n; i++) /* zeros say nothing about the sign: dropped */
        if (d[i] != 0) r[m++] = (ranked){fabs(d[i]), d[i] > 0};
    if (m == 0) {
        free(r);
        out->p = 1;
        return 0;
    }
    qsort(r, m, sizeof *r, cmp_ranked);
    double w = 0, ties = 0; /* W+ with mid-ranks, and sum of t^3 - t over tie groups */
    for (size_t i = 0, j; i < m; i = j) {
        for (j = i + 1; j < m && r[j].a == r[i].a; j++) continue;
        double rank = 0.5 * (double)(i + 1 + j), t = (double)(j - i);
        ties += t * t * t - t;
        for (size_t k = i; k < j; k++) w += r[k].pos ? rank : 0;
    }
    free(r);
    out->w = w;
    out->n = m;
    const double M = (double)m * (double)(m + 1) / 2;
    double lo, hi; /* P(W+ <= w), P(W+ >= w) */
    if (m <= DPT_SRTEST_EXACT_MAX && ties == 0) {
        double *cdf = malloc(((size_t)M + 1) * sizeof *cdf);
        if (!cdf || exact_cdf(m, cdf)) {
            free(cdf);
            return dpt_set_error(DPT_ENOMEM, "out of memory");
        }
        size_t wi = (size_t)w;
        lo = cdf[wi];
        hi = 1 - (wi ? cdf[wi - 1] : 0);
        free(cdf);
        out->exact = 1;
    } else {
        double var = (double)m * (double)(m + 1) * (double)(2 * m + 1) / 24 - ties / 48;
        double z = var > 0 ? (w - M / 2) / sqrt(var) : 0;
        lo = norm_cdf(z);
        hi = norm_cdf(-z);
    }
    out->p = alt == DPT_ALT_GREATER ? hi : alt == DPT_ALT_LESS ? lo : fmin(1, 2 * fmin(lo, hi));
    return 0;
}

/* z with norm_cdf(z) = q, by bisection (q in (0, 1)). */
static double norm_quantile(double q)
{
    double a = -40, b = 40;
    for (int i = 0; i < 200; i++) {
        double c = 0.5 * (a + b);
        if (norm_cdf(c) < q)
            a = c;
        else
            b = c;
    }
    return 0.5 * (a + b);
}

/* The largest C with P(W+ <= C) <= tail under the null, or -1; *level
 * gets 1 - 2 P(W+ <= C). Exact up to DPT_SRTEST_EXACT_MAX, else normal. */
static int critical(size_t n, double tail, long *C, double *level)
{
    const size_t M = n * (n + 1) / 2;
    *C = -1;
    *level = 0;
    if (n > DPT_SRTEST_EXACT_MAX) {
        double sd = sqrt((double)n * (double)(n + 1) * (double)(2 * n + 1) / 24);
        *C = (long)floor((double)M / 2 + norm_quantile(tail) * sd);
        if (*C >= 0) *level = 1 - 2 * norm_cdf(((double)*C + 0.5 - (double)M / 2) / sd);
        return 0;
    }
    double *cdf = malloc((M + 1) * sizeof *cdf);
    if (!cdf || exact_cdf(n, cdf)) {
        free(cdf);
        return dpt_set_error(DPT_ENOMEM, "out of memory");
    }
    for (size_t w = 0; w <= M && cdf[w] <= tail; w++) *C = (long)w;
    if (*C >= 0) *level = 1 - 2 * cdf[*C];
    free(cdf);
    return 0;
}

int dpt_stats_hodges_lehmann(const double *d, size_t n, double conf, dpt_hl *out)
{
    out->estimate = out->lo = out->hi = NAN;
    out->level = 0;
    if (n == 0) return dpt_set_error(DPT_EINVAL, "no differences");
    if (!(conf > 0 && conf < 1))
        return dpt_set_error(DPT_EINVAL, "confidence %g is not between 0 and 1", conf);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(d[i])) return dpt_set_error(DPT_EINVAL, "difference %zu is not finite", i);
    const size_t M = n * (n + 1) / 2;
    double *a = malloc(M * sizeof *a);
    if (!a) return dpt_set_error(DPT_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) /* the Walsh averages (d_i + d_j) / 2, i <= j */
        for (size_t j = i; j < n; j++) a[k++] = 0.5 * (d[i] + d[j]);
    qsort(a, M, sizeof *a, cmp_double);
    out->estimate = M % 2 ? a[M / 2] : 0.5 * (a[M / 2 - 1] + a[M / 2]);
    long C;
    int rc = critical(n, (1 - conf) / 2, &C, &out->level);
    if (!rc && C >= 0 && (size_t)C < M / 2) {
        out->lo = a[C];
        out->hi = a[M - 1 - (size_t)C];
    } else {
        out->level = 0; /* too few differences for an interval at this level */
    }
    free(a);
    return rc;
}

/* P(U <= u) for u = 0..m n under the null, m + n <= DPT_UTEST_EXACT_MAX:
 * the coefficients of the Gaussian binomial [m+n choose m]_q over
 * C(m+n, m), built as prod_k (1 - q^(n+k)) / (1 - q^k), every partial
 * product a polynomial with integer coefficients below 2^53. */
static int u_cdf(size_t m, size_t n, double *cdf)
{
    const size_t M = m * n, cap = M + m + n + 1;
    double *c = calloc(cap, sizeof *c);
    if (!c) return dpt_set_error(DPT_ENOMEM, "out of memory");
    c[0] = 1;
    size_t deg = 0;
    for (size_t k = 1; k <= m; k++) {
        size_t up = n + k;
        deg += up;
        for (size_t w = deg; w >= up; w--) c[w] -= c[w - up];
        for (size_t w = k; w <= deg; w++) c[w] += c[w - k];
        deg -= k;
    }
    double run = 0, total = 0;
    for (size_t w = 0; w <= M; w++) total += c[w];
    for (size_t w = 0; w <= M; w++) cdf[w] = (run += c[w]) / total;
    free(c);
    return 0;
}

int dpt_stats_hodges_lehmann_shift(const double *a, size_t na, const double *b, size_t nb,
                                   double conf, dpt_hl *out)
{
    out->estimate = out->lo = out->hi = NAN;
    out->level = 0;
    if (na == 0 || nb == 0) return dpt_set_error(DPT_EINVAL, "an empty sample");
    if (!(conf > 0 && conf < 1))
        return dpt_set_error(DPT_EINVAL, "confidence %g is not between 0 and 1", conf);
    for (size_t i = 0; i < na; i++)
        if (!isfinite(a[i])) return dpt_set_error(DPT_EINVAL, "value %zu of a is not finite", i);
    for (size_t j = 0; j < nb; j++)
        if (!isfinite(b[j])) return dpt_set_error(DPT_EINVAL, "value %zu of b is not finite", j);
    const size_t M = na * nb;
    const double tail = (1 - conf) / 2;
    double *d = malloc(M * sizeof *d);
    double *cdf = NULL;
    if (!d) return dpt_set_error(DPT_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++) d[k++] = b[j] - a[i];
    qsort(d, M, sizeof *d, cmp_double);
    out->estimate = M % 2 ? d[M / 2] : 0.5 * (d[M / 2 - 1] + d[M / 2]);
    long C = -1;
    double level = 0;
    if (na + nb > DPT_UTEST_EXACT_MAX) {
        double sd = sqrt((double)na * (double)nb * (double)(na + nb + 1) / 12);
        C = (long)floor((double)M / 2 + norm_quantile(tail) * sd);
        if (C >= 0) level = 1 - 2 * norm_cdf(((double)C + 0.5 - (double)M / 2) / sd);
    } else {
        cdf = malloc((M + 1) * sizeof *cdf);
        if (!cdf || u_cdf(na, nb, cdf)) {
            free(cdf);
            free(d);
            return dpt_set_error(DPT_ENOMEM, "out of memory");
        }
        for (size_t w = 0; w <= M && cdf[w] <= tail; w++) C = (long)w;
        if (C >= 0) level = 1 - 2 * cdf[C];
    }
    if (C >= 0 && (size_t)C < (M + 1) / 2) {
        out->lo = d[C];
        out->hi = d[M - 1 - (size_t)C];
        out->level = level;
    }
    free(cdf);
    free(d);
    return 0;
}
