/* z-score standardization with training statistics. Sums run in double over
 * a fixed number of row blocks (set by n and d, never by the thread count)
 * and are combined in block order, so the statistics are reproducible. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "data/io_internal.h"
#include "dpt/error.h"
#include "dpt/io.h"

static size_t block_count(size_t n, size_t d)
{
    size_t nb = n / 4096 + 1;
    if (nb > 64) nb = 64;
    /* keep the partial sums under ~128 MB for very wide data */
    size_t cap = ((size_t)128 << 20) / (d * 3 * sizeof(double)) + 1;
    if (nb > cap) nb = cap;
    return nb;
}

int dpt_standardizer_fit(dpt_standardizer *st, const dpt_dataset *ds, int nthreads)
{
    memset(st, 0, sizeof *st);
    if (!ds || ds->n == 0 || ds->d == 0)
        return dpt_set_error(DPT_EINVAL, "standardize: empty training data");
    if (ds->part)
        return dpt_set_error(DPT_EINVAL,
                             "standardize: statistics need every row, and the training data "
                             "holds only part of its rows (per-rank loading)");
    const size_t n = ds->n, d = ds->d, ld = ds->ld, nb = block_count(n, d);
    int nt = io_nthreads(nthreads);
    double *part = malloc(nb * d * 2 * sizeof(double)); /* per block: sums, then squares */
    float *lo = malloc(nb * d * sizeof(float)), *hi = malloc(nb * d * sizeof(float));
    st->mean = dpt_alloc(dpt_pad_floats(d) * sizeof(float));
    st->scale = dpt_alloc(dpt_pad_floats(d) * sizeof(float));
    double *mean = malloc(d * sizeof(double));
    if (!part || !lo || !hi || !st->mean || !st->scale || !mean) {
        free(part);
        free(lo);
        free(hi);
        free(mean);
        dpt_standardizer_free(st);
        return dpt_set_error(DPT_ENOMEM, "standardize: out of memory for %zu features", d);
    }
    double *sum = part, *sq = part + nb * d;
#pragma omp parallel for num_threads(nt) schedule(static, 1)
    for (size_t b = 0; b < nb; b++) {
        size_t r0 = n * b / nb, r1 = n * (b + 1) / nb;
        double *s = sum + b * d;
        float *l = lo + b * d, *h = hi + b * d;
        for (size_t k = 0; k < d; k++) {
            s[k] = 0;
            l[k] = INFINITY;
            h[k] = -INFINITY;
        }
        for (size_t i = r0; i < r1; i++) {
            const float *x = ds->X + i * ld;
            for (size_t k = 0; k < d; k++) {
                s[k] += x[k];
                l[k] = x[k] < l[k] ? x[k] : l[k];
                h[k] = x[k] > h[k] ? x[k] : h[k];
            }
        }
    }
    for (size_t k = 0; k < d; k++) {
        double s = 0;
        for (size_t b = 0; b < nb; b++) s += sum[b * d + k];
        mean[k] = s / (double)n;
    }
#pragma omp parallel for num_threads(nt) schedule(static, 1)
    for (size_t b = 0; b < nb; b++) {
        size_t r0 = n * b / nb, r1 = n * (b + 1) / nb;
        double *q = sq + b * d;
        for (size_t k = 0; k < d; k++) q[k] = 0;
        for (size_t i = r0; i < r1; i++) {
            const float *x = ds->X + i * ld;
            for (size_t k = 0; k < d; k++) {
                double t = x[k] - mean[k];
                q[k] += t * t;
            }
        }
    }
    for (size_t k = 0; k < d; k++) {
        double q = 0;
        float l = INFINITY, h = -INFINITY;
        for (size_t b = 0; b < nb; b++) {
            q += sq[b * d + k];
            l = lo[b * d + k] < l ? lo[b * d + k] : l;
            h = hi[b * d + k] > h ? hi[b * d + k] : h;
        }
        double sd = sqrt(q / (double)n);
        st->mean[k] = (float)mean[k];
        /* a constant feature (all values equal) carries nothing: map it to 0 */
        st->scale[k] = l == h || !(sd > 0) ? 0.0f : (float)(1.0 / sd);
    }
    st->d = d;
    free(part);
    free(lo);
    free(hi);
    free(mean);
    return 0;
}

int dpt_standardizer_init(dpt_standardizer *st, size_t d, const float *mean, const float *scale)
{
    memset(st, 0, sizeof *st);
    if (d == 0) return dpt_set_error(DPT_EINVAL, "standardize: no features");
    st->mean = dpt_alloc(dpt_pad_floats(d) * sizeof(float));
    st->scale = dpt_alloc(dpt_pad_floats(d) * sizeof(float));
    if (!st->mean || !st->scale) {
        dpt_standardizer_free(st);
        return dpt_set_error(DPT_ENOMEM, "standardize: out of memory");
    }
    for (size_t k = 0; k < d; k++)
        if (!isfinite(mean[k]) || !isfinite(scale[k]) || scale[k] < 0) {
            dpt_standardizer_free(st);
            return dpt_set_error(DPT_EINVAL, "standardize: statistics of feature %zu are invalid",
                                 k + 1);
        }
    memcpy(st->mean, mean, d * sizeof(float));
    memcpy(st->scale, scale, d * sizeof(float));
    st->d = d;
    return 0;
}

int dpt_standardizer_apply(const dpt_standardizer *st, dpt_dataset *ds, int nthreads)
{
    if (!st->mean || st->d != ds->d)
        return dpt_set_error(DPT_EINVAL,
                             "standardize: statistics are for %zu features, the data has %zu",
                             st->d, ds->d);
    const size_t d = ds->d, ld = ds->ld;
    const float *mean = st->mean, *scale = st->scale;
    int nt = io_nthreads(nthreads);
    /* a partial set: its held rows only, the others are never touched */
    const dpt_row_range all = {0, ds->n}, *r = ds->part ? ds->part : &all;
    const size_t nr = ds->part ? ds->npart : 1;
#pragma omp parallel num_threads(nt)
    for (size_t j = 0; j < nr; j++) {
#pragma omp for schedule(static) nowait
        for (size_t i = r[j].lo; i < r[j].hi; i++) {
            float *x = ds->X + i * ld;
            for (size_t k = 0; k < d; k++)
                x[k] = scale[k] == 0 ? 0.0f : (x[k] - mean[k]) * scale[k];
        }
    }
    return 0;
}

void dpt_standardizer_free(dpt_standardizer *st)
{
    if (!st) return;
    dpt_free(st->mean);
    dpt_free(st->scale);
    memset(st, 0, sizeof *st);
}
