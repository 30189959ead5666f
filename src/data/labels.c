/* Labels against the model, and the seeded validation split. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/error.h"
#include "dpt/io.h"

#define MAX_CLASSES 1000000

/* The rows a data set holds: all n, or its part's ranges. */
#define FOR_HELD_ROWS(ds, i)                                                                       \
    for (size_t j_ = 0, nr_ = (ds)->part ? (ds)->npart : 1; j_ < nr_; j_++)                        \
        for (size_t i = (ds)->part ? (ds)->part[j_].lo : 0,                                        \
                    e_ = (ds)->part ? (ds)->part[j_].hi : (ds)->n;                                 \
             i < e_; i++)

/* Up to three distinct held labels into v; returns how many. */
static int distinct3(const dpt_dataset *ds, float v[3])
{
    int nd = 0;
    FOR_HELD_ROWS(ds, j)
    {
        int seen = 0;
        for (int k = 0; k < nd; k++) seen |= ds->y[j] == v[k];
        if (seen) continue;
        if (nd == 3) return nd;
        v[nd++] = ds->y[j];
    }
    return nd;
}

int dpt_dataset_check_labels(const dpt_dataset *ds, dpt_label_kind want, int *classes)
{
    const float *y = ds->y;
    FOR_HELD_ROWS(ds, i)
    {
        if (!isfinite(y[i]))
            return dpt_set_error(DPT_EFORMAT, "row %zu: label %g is not finite", i + 1, y[i]);
    }
    if (want == DPT_LABEL_REAL) {
        if (classes) *classes = 0;
        return 0;
    }
    if (want == DPT_LABEL_BINARY) {
        FOR_HELD_ROWS(ds, i)
        {
            if (y[i] == 0 || y[i] == 1) continue;
            /* say whether the data has two other values or more classes */
            float v[3];
            int nd = distinct3(ds, v);
            if (nd == 2)
                return dpt_set_error(DPT_EFORMAT,
                                     "row %zu: label %g is not 0 or 1 (the data has two classes, "
                                     "%g and %g: relabel them 0 and 1)",
                                     i + 1, y[i], fminf(v[0], v[1]), fmaxf(v[0], v[1]));
            return dpt_set_error(DPT_EFORMAT,
                                 "row %zu: label %g is not 0 or 1 (a binary model needs two "
                                 "classes 0/1%s)",
                                 i + 1, y[i], nd > 2 ? "; for more classes use softmax" : "");
        }
        if (classes) *classes = 2;
        return 0;
    }
    if (want != DPT_LABEL_CLASS) return dpt_set_error(DPT_EINVAL, "unknown label kind %d", want);
    int given = classes && *classes > 0 ? *classes : 0;
    float hi = 0;
    FOR_HELD_ROWS(ds, i)
    {
        float v = y[i];
        if (v < 0 || v != floorf(v))
            return dpt_set_error(DPT_EFORMAT,
                                 "row %zu: label %.10g is not a class id (0, 1, 2, ...)", i + 1, v);
        if (given && v >= given)
            return dpt_set_error(DPT_EFORMAT,
                                 "row %zu: class id %.10g is not below the %d classes (0..%d)",
                                 i + 1, v, given, given - 1);
        if (v >= MAX_CLASSES)
            return dpt_set_error(DPT_EFORMAT, "row %zu: class id %.10g is too large (at most %d)",
                                 i + 1, v, MAX_CLASSES - 1);
        if (v > hi) hi = v;
    }
    int k = given ? given : (int)hi + 1;
    /* part of the rows cannot tell: the ranks' K combined decide */
    if (k < 2 && !ds->part)
        return dpt_set_error(DPT_EFORMAT,
                             "only one class (0) in the labels: classification needs at least 2");
    if (classes) *classes = k;
    return 0;
}

int dpt_dataset_split(dpt_dataset *ds, double fraction, unsigned long long seed, dpt_dataset *val)
{
    memset(val, 0, sizeof *val);
    if (ds->part)
        return dpt_set_error(DPT_EINVAL,
                             "cannot split off validation rows: the data set holds only part of "
                             "its rows (per-rank loading)");
    const size_t n = ds->n;
    double want = fraction * (double)n;
    size_t nv = !(fraction > 0 && fraction < 1) ? 0 : (size_t)floor(want + 0.5);
    if (nv == 0 || nv >= n)
        return dpt_set_error(DPT_EINVAL,
                             "a validation fraction of %g of %zu rows leaves one part empty",
                             fraction, n);
    size_t *perm = malloc(n * sizeof *perm);
    unsigned char *is_val = calloc(n, 1);
    dpt_dataset tr = {0};
    int rc = 0;
    if (!perm || !is_val) {
        rc = dpt_set_error(DPT_ENOMEM, "out of memory for the validation split");
        goto done;
    }
    /* the first nv draws of a seeded Fisher-Yates shuffle */
    uint64_t key = dpt_rng_key(seed, 4);
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = 0; i < nv; i++) {
        size_t j = i + (size_t)(dpt_rng_uniform(key, i) * (double)(n - i));
        if (j >= n) j = n - 1;
        size_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        is_val[perm[i]] = 1;
    }
    if ((rc = dpt_dataset_alloc(&tr, n - nv, ds->d, 0)) ||
        (rc = dpt_dataset_alloc(val, nv, ds->d, 0)))
        goto done;
    size_t a = 0, b = 0;
    for (size_t i = 0; i < n; i++) {
        dpt_dataset *dst = is_val[i] ? val : &tr;
        size_t r = is_val[i] ? b++ : a++;
        memcpy(dst->X + r * dst->ld, ds->X + i * ds->ld, ds->d * sizeof(float));
        dst->y[r] = ds->y[i];
    }
    tr.label_kind = val->label_kind = ds->label_kind;
    tr.classes = val->classes = ds->classes;
    dpt_dataset_free(ds);
    *ds = tr;
    memset(&tr, 0, sizeof tr);
done:
    if (rc) dpt_dataset_free(val);
    dpt_dataset_free(&tr);
    free(perm);
    free(is_val);
    return rc;
}
