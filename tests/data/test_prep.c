/* Standardization, label checks against the model kind, and the --val
 * split. */
#include <criterion/criterion.h>
#include <math.h>

#include "util.h"

static void make(dpt_dataset *ds, size_t n, size_t d)
{
    cr_assert_eq(dpt_dataset_alloc(ds, n, d, 1), 0);
}

Test(prep, standardize_matches_double_reference)
{
    dpt_dataset ds;
    dpt_synth_spec s;
    dpt_synth_parse(&s, "linreg:n=5000,d=21");
    dpt_synth_generate(&s, &ds, 1);
    /* shift and scale features so the statistics matter; feature 3 constant */
    for (size_t i = 0; i < ds.n; i++)
        for (size_t k = 0; k < ds.d; k++) {
            float *x = &ds.X[i * ds.ld + k];
            *x = k == 3 ? 7.25f : *x * (float)(k + 1) + (float)k * 100;
        }
    double mean[21] = {0}, var[21] = {0};
    for (size_t k = 0; k < ds.d; k++) {
        for (size_t i = 0; i < ds.n; i++) mean[k] += ds.X[i * ds.ld + k];
        mean[k] /= (double)ds.n;
        for (size_t i = 0; i < ds.n; i++) {
            double t = ds.X[i * ds.ld + k] - mean[k];
            var[k] += t * t;
        }
        var[k] /= (double)ds.n;
    }
    dpt_standardizer st1, st3;
    cr_assert_eq(dpt_standardizer_fit(&st1, &ds, 1), 0);
    cr_assert_eq(dpt_standardizer_fit(&st3, &ds, 3), 0);
    cr_assert_eq(memcmp(st1.mean, st3.mean, ds.d * sizeof(float)), 0, "thread count changed stats");
    cr_assert_eq(memcmp(st1.scale, st3.scale, ds.d * sizeof(float)), 0);
    for (size_t k = 0; k < ds.d; k++) {
        cr_assert_float_eq(st1.mean[k], (float)mean[k], 1e-5 * (1 + fabs(mean[k])), "mean %zu", k);
        if (k == 3)
            cr_assert_eq(st1.scale[k], 0.0f);
        else
            cr_assert_float_eq(st1.scale[k], (float)(1 / sqrt(var[k])), 1e-5 / sqrt(var[k]));
    }
    cr_assert_eq(dpt_standardizer_apply(&st1, &ds, 2), 0);
    assert_layout(&ds);
    for (size_t k = 0; k < ds.d; k++) {
        double m = 0, v = 0;
        for (size_t i = 0; i < ds.n; i++) m += ds.X[i * ds.ld + k];
        m /= (double)ds.n;
        for (size_t i = 0; i < ds.n; i++) v += pow(ds.X[i * ds.ld + k] - m, 2);
        v /= (double)ds.n;
        cr_assert(fabs(m) < 1e-4, "feature %zu mean %g", k, m);
        if (k == 3) {
            for (size_t i = 0; i < ds.n; i++) cr_assert_eq(ds.X[i * ds.ld + k], 0.0f);
        } else {
            cr_assert(fabs(v - 1) < 1e-4, "feature %zu variance %g", k, v);
        }
    }
    /* statistics adopted from a model file give the same transform */
    dpt_standardizer st2;
    cr_assert_eq(dpt_standardizer_init(&st2, ds.d, st1.mean, st1.scale), 0);
    cr_assert_eq(memcmp(st2.scale, st1.scale, ds.d * sizeof(float)), 0);
    dpt_dataset other;
    make(&other, 2, 5);
    cr_assert_eq(dpt_standardizer_apply(&st2, &other, 1), DPT_EINVAL);
    cr_assert(strstr(dpt_last_error(), "21 features, the data has 5"));
    dpt_standardizer_free(&st1);
    dpt_standardizer_free(&st2);
    dpt_standardizer_free(&st3);
    dpt_dataset_free(&ds);
    dpt_dataset_free(&other);
}

static dpt_dataset labels(const float *y, size_t n)
{
    dpt_dataset ds;
    make(&ds, n, 1);
    memcpy(ds.y, y, n * sizeof(float));
    return ds;
}

Test(prep, check_labels_binary)
{
    float ok[] = {0, 1, 1, 0};
    dpt_dataset ds = labels(ok, 4);
    int k = 0;
    cr_assert_eq(dpt_dataset_check_labels(&ds, DPT_LABEL_BINARY, &k), 0);
    cr_assert_eq(k, 2);
    dpt_dataset_free(&ds);
    float two[] = {1, 2, 2, 1};
    ds = labels(two, 4);
    cr_assert_eq(dpt_dataset_check_labels(&ds, DPT_LABEL_BINARY, &k), DPT_EFORMAT);
    assert_msg_has("row 2: label 2 is not 0 or 1", "two classes, 1 and 2");
    dpt_dataset_free(&ds);
    float three[] = {0, 1, 2};
    ds = labels(three, 3);
    cr_assert_eq(dpt_dataset_check_labels(&ds, DPT_LABEL_BINARY, &k), DPT_EFORMAT);
    assert_msg_has("row 3", "use softmax");
    dpt_dataset_free(&ds);
}

Test(prep, check_labels_class)
{
    float y[] = {0, 3, 1, 2};
    dpt_dataset ds = labels(y, 4);
    int k = 0;
    cr_assert_eq(dpt_dataset_check_labels(&ds, DPT_LABEL_CLASS, &k), 0);
    cr_assert_eq(k, 4);
    k = 10;
    cr_assert_eq(dpt_dataset_check_labels(&ds, DPT_LABEL_CLASS, &k), 0);
    cr_assert_eq(k, 10);
    k = 3;
    cr_assert_eq(dpt_dataset_check_labels(&ds, DPT_LABEL_CLASS, &k), DPT_EFORMAT);
    assert_msg_has("row 2: class id 3 is not below the 3 classes");
    ds.y[2] = 1.5f;
    k = 0;
    cr_assert_eq(dpt_dataset_check_labels(&ds, DPT_LABEL_CLASS, &k), DPT_EFORMAT);
    assert_msg_has("row 3: label 1.5 is not a class id");
    ds.y[2] = -1;
    cr_assert_eq(dpt_dataset_check_labels(&ds, DPT_LABEL_CLASS, NULL), DPT_EFORMAT);
    dpt_dataset_free(&ds);
    float one[] = {0, 0};
    ds = labels(one, 2);
    cr_assert_eq(dpt_dataset_check_labels(&ds, DPT_LABEL_CLASS, NULL), DPT_EFORMAT);
    assert_msg_has("only one class");
    dpt_dataset_free(&ds);
}

Test(prep, check_labels_real)
{
    float y[] = {0.5f, -3, 1e30f};
    dpt_dataset ds = labels(y, 3);
    int k = 7;
    cr_assert_eq(dpt_dataset_check_labels(&ds, DPT_LABEL_REAL, &k), 0);
    cr_assert_eq(k, 0);
    ds.y[1] = NAN;
    cr_assert_eq(dpt_dataset_check_labels(&ds, DPT_LABEL_REAL, &k), DPT_EFORMAT);
    assert_msg_has("row 2: label nan is not finite");
    dpt_dataset_free(&ds);
}

Test(prep, split_is_seeded_and_complete)
{
    dpt_dataset ds, val, ds2, val2;
    size_t n = 1001;
    make(&ds, n, 3);
    for (size_t i = 0; i < n; i++) {
        ds.X[i * ds.ld] = (float)i;
        ds.y[i] = (float)(i % 2);
    }
    ds.label_kind = DPT_LABEL_BINARY;
    ds.classes = 2;
    make(&ds2, n, 3);
    memcpy(ds2.X, ds.X, n * ds.ld * sizeof(float));
    memcpy(ds2.y, ds.y, n * sizeof(float));
    cr_assert_eq(dpt_dataset_split(&ds, 0.2, 9, &val), 0, "%s", dpt_last_error());
    cr_assert_eq(val.n, 200);
    cr_assert_eq(ds.n, 801);
    cr_assert_eq(val.label_kind, DPT_LABEL_BINARY);
    assert_layout(&ds);
    assert_layout(&val);
    /* every row lands in exactly one part; the training rows keep their order */
    char *seen = calloc(n, 1);
    for (size_t i = 0; i < ds.n; i++) {
        size_t r = (size_t)ds.X[i * ds.ld];
        cr_assert(!seen[r]);
        seen[r] = 1;
        cr_assert_eq(ds.y[i], (float)(r % 2));
        if (i) cr_assert(ds.X[i * ds.ld] > ds.X[(i - 1) * ds.ld]);
    }
    for (size_t i = 0; i < val.n; i++) {
        size_t r = (size_t)val.X[i * val.ld];
        cr_assert(!seen[r]);
        seen[r] = 1;
    }
    free(seen);
    /* not simply the last rows */
    cr_assert(val.X[0] < 800);
    /* same seed, same split */
    cr_assert_eq(dpt_dataset_split(&ds2, 0.2, 9, &val2), 0);
    cr_assert_eq(memcmp(val.X, val2.X, val.n * val.ld * sizeof(float)), 0);
    dpt_dataset_free(&ds2);
    dpt_dataset_free(&val2);
    /* fractions that leave a part empty */
    cr_assert_eq(dpt_dataset_split(&ds, 0.0001, 1, &val2), DPT_EINVAL);
    assert_msg_has("leaves one part empty");
    cr_assert_eq(dpt_dataset_split(&ds, 1.0, 1, &val2), DPT_EINVAL);
    cr_assert_eq(ds.n, 801, "a refused split leaves the data alone");
    dpt_dataset_free(&ds);
    dpt_dataset_free(&val);
}

/* An absurd thread count (a stray OMP_NUM_THREADS, or a caller's) is
 * bounded, not handed to libgomp, whose stack it overflowed. */
Test(prep, absurd_thread_counts_are_bounded, .timeout = 60)
{
    dpt_synth_spec spec;
    cr_assert_eq(dpt_synth_parse(&spec, "linreg:n=100,d=4"), 0);
    dpt_dataset a, b;
    cr_assert_eq(dpt_synth_generate(&spec, &a, 1), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_synth_generate(&spec, &b, 100000), 0, "%s", dpt_last_error());
    cr_assert_eq(memcmp(a.X, b.X, a.n * a.ld * sizeof(float)), 0);
    dpt_standardizer st;
    cr_assert_eq(dpt_standardizer_fit(&st, &b, 100000), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_standardizer_apply(&st, &b, 100000), 0, "%s", dpt_last_error());
    dpt_standardizer_free(&st);
    dpt_dataset_free(&a);
    dpt_dataset_free(&b);
}
