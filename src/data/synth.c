/* Built-in synthetic data sets (docs/workloads.md, "The generator").
 * Stream 0 gives X, stream 1 the teacher, stream 2 the label noise; every
 * element is a pure function of (seed, stream, index), so rows are generated
 * in parallel, or only some of them (a rank's part), and the result does not
 * depend on the thread count. */
#include <errno.h>
#include <omp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "data/io_internal.h"
#include "dpt/data.h"
#include "dpt/error.h"

void dpt_synth_defaults(dpt_synth_spec *spec, dpt_synth_kind kind)
{
    memset(spec, 0, sizeof *spec);
    spec->kind = kind;
    spec->n = 10000;
    spec->seed = 1;
    switch (kind) {
    case DPT_SYNTH_LINREG:
        spec->d = 64;
        spec->noise = 0.01;
        break;
    case DPT_SYNTH_LOGREG:
        spec->d = 64;
        spec->noise = 0.5;
        break;
    case DPT_SYNTH_TEACHER_MLP:
        spec->d = 10;
        spec->noise = 0.01;
        spec->n_hidden = 1;
        spec->hidden[0] = 20;
        break;
    }
}

static int parse_size(const char *key, const char *val, size_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || end == val || *end || v < 1 || v > 1e12 || v != floor(v))
        return dpt_set_error(DPT_EINVAL, "%s=%s is not a positive integer", key, val);
    *out = (size_t)v;
    return 0;
}

int dpt_synth_parse(dpt_synth_spec *spec, const char *text)
{
    static const char *kinds = "linreg, logreg, teacher-mlp";
    char buf[512];
    if (strlen(text) >= sizeof buf) return dpt_set_error(DPT_EINVAL, "value too long");
    strcpy(buf, text);
    char *colon = strchr(buf, ':');
    if (colon) *colon = '\0';
    if (!strcmp(buf, "linreg"))
        dpt_synth_defaults(spec, DPT_SYNTH_LINREG);
    else if (!strcmp(buf, "logreg"))
        dpt_synth_defaults(spec, DPT_SYNTH_LOGREG);
    else if (!strcmp(buf, "teacher-mlp"))
        dpt_synth_defaults(spec, DPT_SYNTH_TEACHER_MLP);
    else
        return dpt_set_error(DPT_EINVAL, "unknown kind '%s' (allowed: %s)", buf, kinds);
    if (!colon) return 0;
    char *save = NULL;
    for (char *kv = strtok_r(colon + 1, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) return dpt_set_error(DPT_EINVAL, "'%s' is not key=value", kv);
        *eq = '\0';
        const char *key = kv, *val = eq + 1;
        int rc = 0;
        size_t v = 0;
        if (!strcmp(key, "n")) {
            rc = parse_size(key, val, &spec->n);
        } else if (!strcmp(key, "d")) {
            rc = parse_size(key, val, &spec->d);
        } else if (!strcmp(key, "seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(val, &end, 10);
            if (errno || end == val || *end || val[0] == '-')
                return dpt_set_error(DPT_EINVAL, "seed=%s is not a non-negative integer", val);
            spec->seed = s;
        } else if (!strcmp(key, "noise")) {
            char *end;
            errno = 0;
            double x = strtod(val, &end);
            if (errno || end == val || *end || !(x >= 0) || !isfinite(x))
                return dpt_set_error(DPT_EINVAL, "noise=%s is not a number >= 0", val);
            spec->noise = x;
        } else if (!strcmp(key, "classes")) {
            if (spec->kind != DPT_SYNTH_TEACHER_MLP)
                return dpt_set_error(DPT_EINVAL, "classes applies to teacher-mlp only");
            rc = parse_size(key, val, &v);
            if (!rc && (v < 2 || v > 100000))
                return dpt_set_error(DPT_EINVAL, "classes=%s must be 2..100000", val);
            spec->classes = (int)v;
        } else if (!strcmp(key, "hidden")) {
            if (spec->kind != DPT_SYNTH_TEACHER_MLP)
                return dpt_set_error(DPT_EINVAL, "hidden applies to teacher-mlp only");
            spec->n_hidden = 0;
            char *hs = NULL;
            for (char *h = strtok_r((char *)val, "/", &hs); h; h = strtok_r(NULL, "/", &hs)) {
                if (spec->n_hidden == DPT_SYNTH_MAX_LAYERS)
                    return dpt_set_error(DPT_EINVAL, "at most %d hidden layers",
                                         DPT_SYNTH_MAX_LAYERS);
                rc = parse_size(key, h, &spec->hidden[spec->n_hidden++]);
                if (rc) return rc;
            }
            if (spec->n_hidden == 0)
                return dpt_set_error(DPT_EINVAL, "hidden= needs widths like 20 or 512/512");
        } else {
            return dpt_set_error(DPT_EINVAL, "unknown key '%s' (allowed: n, d, noise, seed%s)", key,
                                 spec->kind == DPT_SYNTH_TEACHER_MLP ? ", classes, hidden" : "");
        }
        if (rc) return rc;
    }
    return 0;
}

/* Teacher parameters as floats, drawn in order W1, b1, W2, b2, ... from
 * stream 1, W as [out][in]. */
typedef struct teacher {
    int layers;
    size_t width[DPT_SYNTH_MAX_LAYERS + 2];
    float *w[DPT_SYNTH_MAX_LAYERS + 1], *b[DPT_SYNTH_MAX_LAYERS + 1];
    float *mem;
} teacher;

static int teacher_build(teacher *t, const dpt_synth_spec *s)
{
    memset(t, 0, sizeof *t);
    t->layers = s->n_hidden + 1;
    t->width[0] = s->d;
    for (int l = 0; l < s->n_hidden; l++) t->width[l + 1] = s->hidden[l];
    t->width[t->layers] = s->classes ? (size_t)s->classes : 1;
    size_t total = 0;
    for (int l = 0; l < t->layers; l++) total += t->width[l] * t->width[l + 1] + t->width[l + 1];
    t->mem = malloc(total * sizeof(float));
    if (!t->mem) return dpt_set_error(DPT_ENOMEM, "cannot allocate the teacher network");
    uint64_t key = dpt_rng_key(s->seed, 1), j = 0;
    float *p = t->mem;
    for (int l = 0; l < t->layers; l++) {
        size_t in = t->width[l], out = t->width[l + 1];
        double scale = 1.0 / sqrt((double)in);
        t->w[l] = p;
        for (size_t i = 0; i < in * out; i++) *p++ = (float)(dpt_rng_normal(key, j++) * scale);
        t->b[l] = p;
        for (size_t i = 0; i < out; i++) *p++ = (float)(0.1 * dpt_rng_normal(key, j++));
    }
    return 0;
}

/* Rows per teacher block: each row's sums run in the order docs/workloads.md
 * fixes (k = 0, 1, ...), but TB rows advance together so the loop over rows
 * vectorizes and the dependency chains overlap. */
#define TB 16

/* Forward pass of the teacher in double for rows x[0..nr) (nr <= TB, row
 * stride ld); out[r] gets the regression output or, with classes, the
 * argmax. work holds 2 * TB * max width doubles, laid out [unit][row]. */
static void teacher_forward(const teacher *t, const float *x, size_t ld, size_t nr, double *out,
                            double *work, size_t wmax)
{
    double *cur = work, *nxt = work + TB * wmax;
    memset(cur, 0, TB * t->width[0] * sizeof(double));
    for (size_t r = 0; r < nr; r++)
        for (size_t k = 0; k < t->width[0]; k++) cur[k * TB + r] = x[r * ld + k];
    for (int l = 0; l < t->layers; l++) {
        size_t in = t->width[l], out_w = t->width[l + 1];
        int relu = l + 1 < t->layers;
        for (size_t o = 0; o < out_w; o++) {
            const float *w = t->w[l] + o * in;
            double z[TB];
            for (size_t r = 0; r < TB; r++) z[r] = t->b[l][o];
            for (size_t k = 0; k < in; k++) {
                const double wk = w[k], *c = cur + k * TB;
                for (size_t r = 0; r < TB; r++) z[r] += wk * c[r];
            }
            for (size_t r = 0; r < TB; r++) nxt[o * TB + r] = (relu && z[r] < 0) ? 0 : z[r];
        }
        double *tmp = cur;
        cur = nxt;
        nxt = tmp;
    }
    size_t nout = t->width[t->layers];
    for (size_t r = 0; r < nr; r++) {
        if (nout == 1) {
            out[r] = cur[r];
            continue;
        }
        size_t best = 0;
        for (size_t o = 1; o < nout; o++)
            if (cur[o * TB + r] > cur[best * TB + r]) best = o;
        out[r] = (double)best;
    }
}

/* The rows of ranges r[0..nr) as pieces that never cross a teacher block:
 * piece p lies in range ri with first[ri] <= p < first[ri + 1]. */
static size_t piece_first(const dpt_row_range *r, size_t nr, size_t *first)
{
    size_t p = 0;
    for (size_t i = 0; i < nr; i++) {
        first[i] = p;
        p += (r[i].hi - 1) / TB - r[i].lo / TB + 1;
    }
    first[nr] = p;
    return p;
}

/* Rows [a, b) of piece p: its range, cut at multiples of TB. */
static void piece_rows(const dpt_row_range *r, size_t nr, const size_t *first, size_t p, size_t *a,
                       size_t *b)
{
    size_t lo = 0, hi = nr;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (first[mid] <= p)
            lo = mid;
        else
            hi = mid;
    }
    size_t blk = r[lo].lo / TB + (p - first[lo]);
    *a = blk * TB > r[lo].lo ? blk * TB : r[lo].lo;
    *b = (blk + 1) * TB < r[lo].hi ? (blk + 1) * TB : r[lo].hi;
}

static void gen_x(float *x, size_t i, size_t d, uint64_t k0)
{
    for (size_t k = 0; k < d; k++) x[k] = (float)dpt_rng_normal(k0, i * d + k);
}

int dpt_synth_generate(const dpt_synth_spec *s, dpt_dataset *ds, int nthreads)
{
    return dpt_synth_generate_part(s, ds, nthreads, NULL, 0);
}

int dpt_synth_generate_part(const dpt_synth_spec *s, dpt_dataset *ds, int nthreads,
                            const dpt_row_range *part, size_t npart)
{
    memset(ds, 0, sizeof *ds);
    if (s->n == 0 || s->d == 0)
        return dpt_set_error(DPT_EINVAL, "a synthetic data set needs n and d >= 1");
    dpt_row_range *mp = NULL;
    size_t nmp = 0;
    int rc = io_part_merge("synthetic data", part, npart, s->n, &mp, &nmp);
    if (rc) return rc;
    /* a part's rows alone are written, into memory that costs nothing elsewhere */
    rc = mp ? io_dataset_alloc_mapped(ds, s->n, s->d) : dpt_dataset_alloc(ds, s->n, s->d, 0);
    if (rc) {
        free(mp);
        return rc;
    }
    ds->part = mp;
    ds->npart = nmp;
    const size_t n = s->n, d = s->d, ld = ds->ld;
    const uint64_t k0 = dpt_rng_key(s->seed, 0), k1 = dpt_rng_key(s->seed, 1),
                   k2 = dpt_rng_key(s->seed, 2);
    float *X = ds->X, *y = ds->y;
    float *wstar = NULL;
    size_t *first = NULL;
    teacher t = {0};
    size_t wmax = d;
    const dpt_row_range all = {0, n}, *ranges = mp ? mp : &all;
    const size_t nranges = mp ? nmp : 1;

    if (s->kind == DPT_SYNTH_TEACHER_MLP) {
        if ((rc = teacher_build(&t, s))) goto fail;
        for (int l = 0; l <= t.layers; l++)
            if (t.width[l] > wmax) wmax = t.width[l];
        ds->label_kind = s->classes ? DPT_LABEL_CLASS : DPT_LABEL_REAL;
        ds->classes = s->classes;
    } else {
        wstar = malloc(d * sizeof(float));
        if (!wstar) {
            rc = dpt_set_error(DPT_ENOMEM, "cannot allocate the teacher weights");
            goto fail;
        }
        for (size_t k = 0; k < d; k++) wstar[k] = (float)dpt_rng_normal(k1, k);
        ds->label_kind = s->kind == DPT_SYNTH_LOGREG ? DPT_LABEL_BINARY : DPT_LABEL_REAL;
        ds->classes = s->kind == DPT_SYNTH_LOGREG ? 2 : 0;
    }
    first = malloc((nranges + 1) * sizeof *first);
    if (!first) {
        rc = dpt_set_error(DPT_ENOMEM, "cannot allocate the row pieces");
        goto fail;
    }
    const size_t npieces = piece_first(ranges, nranges, first);

    int failed = 0;
#pragma omp parallel num_threads(io_nthreads(nthreads))
    {
        double *work = NULL;
        float *xs = NULL; /* a whole teacher block, for pieces that hold part of one */
        if (s->kind == DPT_SYNTH_TEACHER_MLP) {
            work = malloc(2 * TB * wmax * sizeof(double));
            if (mp) xs = malloc(TB * ld * sizeof(float));
            if (!work || (mp && !xs)) {
#pragma omp atomic write
                failed = 1;
            }
        }
        /* static schedule: each thread first-touches a contiguous run of rows */
#pragma omp for schedule(static)
        for (size_t p = 0; p < npieces; p++) {
            size_t a, b;
            piece_rows(ranges, nranges, first, p, &a, &b);
            for (size_t i = a; i < b; i++) gen_x(X + i * ld, i, d, k0);
            if (s->kind == DPT_SYNTH_TEACHER_MLP) {
                if (!work) continue;
                /* The teacher runs TB rows side by side in fixed lanes (row
                 * i0 + r in lane r); part of a block runs the whole block
                 * in scratch so each row keeps its lane and its bits. */
                size_t i0 = a / TB * TB, nr = n - i0 < TB ? n - i0 : TB;
                const float *xb = X + i0 * ld;
                if (a != i0 || b != i0 + nr) {
                    if (!xs) continue;
                    for (size_t r = 0; r < nr; r++) gen_x(xs + r * ld, i0 + r, d, k0);
                    xb = xs;
                }
                double out[TB];
                teacher_forward(&t, xb, ld, nr, out, work, wmax);
                for (size_t i = a; i < b; i++)
                    y[i] = s->classes
                               ? (float)out[i - i0]
                               : (float)(out[i - i0] + s->noise * (float)dpt_rng_normal(k2, i));
                continue;
            }
            for (size_t i = a; i < b; i++) {
                const float *x = X + i * ld;
                double z = 0;
                for (size_t k = 0; k < d; k++) z += (double)x[k] * wstar[k];
                z += s->noise * (float)dpt_rng_normal(k2, i);
                y[i] = s->kind == DPT_SYNTH_LOGREG ? (float)(z > 0) : (float)z;
            }
        }
        free(work);
        free(xs);
    }
    if (failed) {
        rc = dpt_set_error(DPT_ENOMEM, "cannot allocate teacher scratch");
        goto fail;
    }
    free(first);
    free(wstar);
    free(t.mem);
    return 0;
fail:
    free(first);
    free(wstar);
    free(t.mem);
    dpt_dataset_free(ds);
    return rc;
}
