/* Order statistics, means and the Mann-Whitney U test for benchmark
 * repetitions. The exact U distribution comes from the Gaussian binomial
 * coefficient [na+nb choose na]_q, whose q^u coefficient counts the rank
 * arrangements with U = u. */
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

static int all_finite(const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

double dpt_stats_quantile_sorted(const double *sorted, size_t n, double p)
{
    if (n == 0) return NAN;
    if (p <= 0) return sorted[0];
    if (p >= 1) return sorted[n - 1];
    double h = (double)(n - 1) * p;
    size_t lo = (size_t)h;
    if (lo + 1 >= n) return sorted[n - 1];
    return sorted[lo] + (h - (double)lo) * (sorted[lo + 1] - sorted[lo]);
}

int dpt_stats_summarize(const double *x, size_t n, dpt_summary *out)
{
    if (n == 0) return dpt_set_error(DPT_EINVAL, "summary of an empty sample");
    if (!all_finite(x, n)) return dpt_set_error(DPT_EINVAL, "summary of a non-finite value");
    double *s = malloc(n * sizeof *s);
    if (!s) return dpt_set_error(DPT_ENOMEM, "out of memory sorting %zu values", n);
    memcpy(s, x, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    out->n = n;
    out->min = s[0];
    out->max = s[n - 1];
    out->q1 = dpt_stats_quantile_sorted(s, n, 0.25);
    out->median = dpt_stats_quantile_sorted(s, n, 0.5);
    out->q3 = dpt_stats_quantile_sorted(s, n, 0.75);
    out->iqr = out->q3 - out->q1;
    out->mean = dpt_stats_mean(x, n);
    free(s);
    return 0;
}

double dpt_stats_median(const double *x, size_t n)
{
    dpt_summary s;
    if (n == 0 || dpt_stats_summarize(x, n, &s)) return NAN;
    return s.median;
}

double dpt_stats_mean(const double *x, size_t n)
{
    if (n == 0) return NAN;
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += x[i];
    return sum / (double)n;
}

double dpt_stats_geomean(const double *x, size_t n)
{
    if (n == 0) return NAN;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || x[i] <= 0) return NAN;
        sum += log(x[i]);
    }
    return exp(sum / (double)n);
}

/* Upper tail P(U >= u) of the null distribution of U for sizes m, n, from
 * the coefficients of [m+n choose m]_q: start from 1 and, for i = 1..m,
 * multiply by (1 - q^(n+i)) and divide by (1 - q^i). Every intermediate
 * coefficient is an integer below C(m+n, m), so doubles hold them exactly
 * while m + n <= DPT_UTEST_EXACT_MAX. */
static int exact_upper_tail(size_t m, size_t n, double u, double *out)
{
    if (m > n) {
        size_t t = m;
        m = n;
        n = t;
    }
    size_t deg = m * n;
    double *c = calloc(deg + m + 1, sizeof *c); /* room for the product before division */
    if (!c) return dpt_set_error(DPT_ENOMEM, "out of memory for the U distribution");
    c[0] = 1;
    size_t cur = 0; /* degree so far */
    for (size_t i = 1; i <= m; i++) {
        size_t k = n + i;
        for (size_t j = cur + k; j >= k; j--) c[j] -= c[j - k];
        cur += n;
        for (size_t j = i; j <= cur; j++) c[j] += c[j - i];
        for (size_t j = cur + 1; j <= cur + i; j++) c[j] = 0; /* the quotient ends at cur */
    }
    double total = 0, tail = 0;
    for (size_t j = 0; j <= deg; j++) {
        total += c[j];
        if ((double)j >= u - 1e-9) tail += c[j];
    }
    free(c);
    *out = tail / total;
    return 0;
}

/* Standard normal upper tail. */
static double norm_sf(double z)
{
    return 0.5 * erfc(z / sqrt(2.0));
}

typedef struct {
    double v;
    int from_a;
} tagged;

static int cmp_tagged(const void *a, const void *b)
{
    return cmp_double(&((const tagged *)a)->v, &((const tagged *)b)->v);
}

int dpt_stats_utest(const double *a, size_t na, const double *b, size_t nb, dpt_alternative alt,
                    dpt_utest *out)
{
    if (na == 0 || nb == 0)
        return dpt_set_error(DPT_EINVAL, "U test needs two non-empty samples (got %zu and %zu)", na,
                             nb);
    if (!all_finite(a, na) || !all_finite(b, nb))
        return dpt_set_error(DPT_EINVAL, "U test of a non-finite value");
    size_t n = na + nb;
    tagged *t = malloc(n * sizeof *t);
    if (!t) return dpt_set_error(DPT_ENOMEM, "out of memory ranking %zu values", n);
    for (size_t i = 0; i < na; i++) t[i] = (tagged){a[i], 1};
    for (size_t i = 0; i < nb; i++) t[na + i] = (tagged){b[i], 0};
    qsort(t, n, sizeof *t, cmp_tagged);

    /* Midranks (1-based) and the tie term sum(t^3 - t). */
    double rank_sum_a = 0, tie_term = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && t[j + 1].v == t[i].v) j++;
        double len = (double)(j - i + 1);
        double rank = 0.5 * (double)(i + j) + 1.0;
        for (size_t k = i; k <= j; k++)
            if (t[k].from_a) rank_sum_a += rank;
        tie_term += len * len * len - len;
        i = j + 1;
    }
    free(t);

    double n1 = (double)na, n2 = (double)nb;
    double u1 = rank_sum_a - n1 * (n1 + 1) / 2;
    double u2 = n1 * n2 - u1;
    out->u = u1;

    if (tie_term == 0 && n <= DPT_UTEST_EXACT_MAX) {
        out->exact = 1;
        double p = 1;
        /* The null distribution is symmetric, so P(U <= u) = P(U >= n1 n2 - u). */
        double u_tail = alt == DPT_ALT_GREATER ? u1 : alt == DPT_ALT_LESS ? u2 : fmax(u1, u2);
        int rc = exact_upper_tail(na, nb, u_tail, &p);
        if (rc) return rc;
        if (alt == DPT_ALT_TWO_SIDED) p *= 2;
        out->p = fmin(p, 1.0);
        return 0;
    }

    out->exact = 0;
    double dn = (double)n;
    double var = n1 * n2 / 12.0 * ((dn + 1) - tie_term / (dn * (dn - 1)));
    if (var <= 0) { /* every value tied */
        out->p = 1;
        return 0;
    }
    double mu = n1 * n2 / 2;
    double u_tail = alt == DPT_ALT_GREATER ? u1 : alt == DPT_ALT_LESS ? u2 : fmax(u1, u2);
    double p = norm_sf((u_tail - mu - 0.5) / sqrt(var));
    if (alt == DPT_ALT_TWO_SIDED) p *= 2;
    out->p = fmin(p, 1.0);
    return 0;
}

double dpt_stats_utest_min_p(size_t na, size_t nb)
{
    if (na == 0 || nb == 0) return 1;
    double log_choose =
        lgamma((double)(na + nb) + 1) - lgamma((double)na + 1) - lgamma((double)nb + 1);
    return fmin(1.0, 2.0 * exp(-log_choose));
}
