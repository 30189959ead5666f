/* Scalar reference kernels: the definition of every op, and the fallback on
 * CPUs without AVX2. Straightforward loops; reductions accumulate in double
 * where the result is a loss. */
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"

static float dot_f32_scalar(size_t n, const float *x, const float *y)
{
    float s = 0;
    for (size_t i = 0; i < n; i++) s += x[i] * y[i];
    return s;
}

static void axpy_f32_scalar(size_t n, float a, const float *x, float *y)
{
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

static void scale_f32_scalar(size_t n, float a, float *x)
{
    for (size_t i = 0; i < n; i++) x[i] *= a;
}

static void add_f32_scalar(size_t n, const float *src, float *dst)
{
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

static int update_block_scalar(dpt_update_rule rule, size_t n, float *w, const float *gsum,
                               float *v, float gscale, float wd, float mu, float lr)
{
    int bad = 0; /* g - g is 0 unless g is inf or nan */
    for (size_t i = 0; i < n; i++) {
        float g = gscale * gsum[i] + wd * w[i];
        bad |= g - g != 0.0f;
        switch (rule) {
        case DPT_UPDATE_PLAIN:
            w[i] -= lr * g;
            break;
        case DPT_UPDATE_MOMENTUM:
            v[i] = mu * v[i] + g;
            w[i] -= lr * v[i];
            break;
        case DPT_UPDATE_NESTEROV:
            v[i] = mu * v[i] + g;
            w[i] -= lr * (g + mu * v[i]);
            break;
        }
        bad |= w[i] - w[i] != 0.0f; /* a finite g can still overflow w */
    }
    return bad;
}

static int update_f32_scalar(dpt_update_rule rule, size_t n, size_t ahead, float *w,
                             const float *const *gs, int ng, size_t goff, float *v, float gscale,
                             float wd, float mu, float lr)
{
    (void)ahead;
    if (ng == 1) return update_block_scalar(rule, n, w, gs[0] + goff, v, gscale, wd, mu, lr);
    float acc[DPT_UPDATE_BLOCK];
    int bad = 0;
    for (size_t b0 = 0; b0 < n; b0 += DPT_UPDATE_BLOCK) {
        size_t nb = n - b0 < DPT_UPDATE_BLOCK ? n - b0 : DPT_UPDATE_BLOCK;
        memcpy(acc, gs[0] + goff + b0, nb * sizeof(float));
        for (int u = 1; u < ng; u++) add_f32_scalar(nb, gs[u] + goff + b0, acc);
        bad |= update_block_scalar(rule, nb, w + b0, acc, v ? v + b0 : NULL, gscale, wd, mu, lr);
    }
    return bad;
}

/* log(1 + e^z) - y z, stable for large |z| */
static inline double bce_logits(double z, double y)
{
    return (z > 0 ? z : 0) - z * y + log1p(exp(-fabs(z)));
}

static double glm_grad_f32_scalar(dpt_glm_loss loss, size_t rows, size_t d, const float *X,
                                  size_t ld, const float *y, const float *w, float b, float *g,
                                  double *gb, size_t *hits)
{
    double lsum = 0, rsum = 0;
    for (size_t i = 0; i < rows; i++) {
        const float *x = X + i * ld;
        float z = b;
        for (size_t k = 0; k < d; k++) z += x[k] * w[k];
        float r;
        if (loss == DPT_GLM_MSE) {
            float e = z - y[i];
            lsum += (double)e * e;
            r = 2 * e;
        } else {
            lsum += bce_logits(z, y[i]);
            r = 1.0f / (1.0f + expf(-z)) - y[i];
            if (hits) *hits += (z > 0) == (y[i] > 0.5f);
        }
        rsum += r;
        if (g)
            for (size_t k = 0; k < d; k++) g[k] += r * x[k];
    }
    if (gb) *gb += rsum;
    return lsum;
}

/* Each element of C is scaled by beta, then gets its k products in p order
 * (tb = 0: alpha a_ip times b_pj added one at a time; tb = 1: the dot product
 * summed apart, then alpha times it added): nothing depends on where the
 * element sits, so a block is the loops over its rows and columns. */
static void sgemm_part_f32_scalar(int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                                  const float *A, size_t lda, const float *B, size_t ldb,
                                  float beta, float *C, size_t ldc, size_t i0, size_t i1, size_t j0,
                                  size_t j1)
{
    (void)m;
    (void)n;
    if (i0 >= i1 || j0 >= j1) return; /* C may be NULL then */
    size_t nb = j1 - j0;
    for (size_t i = i0; i < i1; i++) {
        float *c = C + i * ldc;
        if (beta == 0)
            memset(c + j0, 0, nb * sizeof(float));
        else if (beta != 1)
            for (size_t j = j0; j < j1; j++) c[j] *= beta;
        if (!tb) {
            /* i-p-j: the inner loop streams a row of B */
            for (size_t p = 0; p < k; p++) {
                float a = alpha * (ta ? A[p * lda + i] : A[i * lda + p]);
                const float *brow = B + p * ldb;
                for (size_t j = j0; j < j1; j++) c[j] += a * brow[j];
            }
        } else {
            for (size_t j = j0; j < j1; j++) {
                const float *bcol = B + j * ldb;
                float s = 0;
                if (!ta)
                    for (size_t p = 0; p < k; p++) s += A[i * lda + p] * bcol[p];
                else
                    for (size_t p = 0; p < k; p++) s += A[p * lda + i] * bcol[p];
                c[j] += alpha * s;
            }
        }
    }
}

/* every shape the same loops: nothing depends on m */
static int sgemm_class_scalar(int ta, int tb, size_t m, size_t n, size_t k)
{
    (void)ta, (void)tb, (void)m, (void)n, (void)k;
    return 0;
}

/* one part call a row: nothing to share in the reference */
static void sgemv_rows_scalar(size_t R, size_t n, size_t k, float alpha, const float *A, size_t lda,
                              const float *B, size_t ldb, float *C, size_t ldc, size_t j0,
                              size_t j1)
{
    for (size_t i = 0; i < R; i++)
        sgemm_part_f32_scalar(0, 1, 1, n, k, alpha, A + i * lda, lda, B, ldb, 0.0f, C + i * ldc,
                              ldc, 0, 1, j0, j1);
}

static void sgemm_f32_scalar(int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                             const float *A, size_t lda, const float *B, size_t ldb, float beta,
                             float *C, size_t ldc)
{
    sgemm_part_f32_scalar(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, 0, m, 0, n);
}

static void bias_act_f32_scalar(dpt_act act, int apply_act, size_t rows, size_t cols,
                                const float *b, float *Z, size_t ldz)
{
    for (size_t i = 0; i < rows; i++) {
        float *z = Z + i * ldz;
        if (b)
            for (size_t j = 0; j < cols; j++) z[j] += b[j];
        if (!apply_act) continue;
        for (size_t j = 0; j < cols; j++) {
            switch (act) {
            case DPT_ACT_RELU:
                z[j] = z[j] > 0 ? z[j] : 0;
                break;
            case DPT_ACT_TANH:
                z[j] = tanhf(z[j]);
                break;
            case DPT_ACT_SIGMOID:
                z[j] = 1.0f / (1.0f + expf(-z[j]));
                break;
            }
        }
    }
}

static void act_bwd_f32_scalar(dpt_act act, size_t rows, size_t cols, const float *A, size_t lda,
                               const float *dA, size_t ldda, float *dZ, size_t lddz)
{
    for (size_t i = 0; i < rows; i++) {
        const float *a = A + i * lda, *da = dA + i * ldda;
        float *dz = dZ + i * lddz;
        for (size_t j = 0; j < cols; j++) {
            switch (act) {
            case DPT_ACT_RELU:
                dz[j] = a[j] > 0 ? da[j] : 0;
                break;
            case DPT_ACT_TANH:
                dz[j] = da[j] * (1 - a[j] * a[j]);
                break;
            case DPT_ACT_SIGMOID:
                dz[j] = da[j] * a[j] * (1 - a[j]);
                break;
            }
        }
    }
}

static void col_sum_f32_scalar(size_t rows, size_t cols, const float *M, size_t ld, float *out)
{
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) out[j] += M[i * ld + j];
}

static double softmax_ce_f32_scalar(size_t rows, size_t K, const float *Z, size_t ldz,
                                    const float *y, float *dZ, size_t lddz, size_t *correct)
{
    double lsum = 0;
    size_t hits = 0;
    for (size_t i = 0; i < rows; i++) {
        const float *z = Z + i * ldz;
        size_t label = (size_t)y[i], best = 0;
        float mx = z[0];
        for (size_t j = 1; j < K; j++)
            if (z[j] > mx) mx = z[j], best = j;
        hits += best == label;
        double s = 0;
        for (size_t j = 0; j < K; j++) s += exp((double)z[j] - mx);
        lsum += log(s) - ((double)z[label] - mx);
        if (dZ) {
            float *dz = dZ + i * lddz;
            float inv = (float)(1.0 / s);
            for (size_t j = 0; j < K; j++) dz[j] = expf(z[j] - mx) * inv;
            dz[label] -= 1;
        }
    }
    if (correct) *correct += hits;
    return lsum;
}

static void vexp_f32_scalar(size_t n, const float *x, float *out)
{
    for (size_t i = 0; i < n; i++) out[i] = expf(x[i]);
}

static void vlog_f32_scalar(size_t n, const float *x, float *out)
{
    for (size_t i = 0; i < n; i++) out[i] = logf(x[i]);
}

/* The definition of the fused tiny MLP: row by row, as the generic path
 * computes it (MSE: dL/dz = 2(z - y); ReLU' from the activation, a > 0). */
static double mlp_tiny_grad_f32_scalar(size_t rows, size_t d, size_t h, const float *X, size_t ld,
                                       const float *y, const float *p, float *g)
{
    const float *W1 = p, *b1 = p + h * d, *W2 = b1 + h, b2 = W2[h];
    /* g NULL: the loss alone (no offsets from a null pointer) */
    float *gW1 = g, *gb1 = g ? gW1 + h * d : g, *gW2 = g ? gb1 + h : g, *gb2 = g ? gW2 + h : g;
    float a[DPT_TINY_MAX_H];
    double l = 0;
    for (size_t i = 0; i < rows; i++) {
        const float *x = X + i * ld;
        float o = b2;
        for (size_t j = 0; j < h; j++) {
            float z = b1[j];
            for (size_t k = 0; k < d; k++) z += W1[j * d + k] * x[k];
            a[j] = z > 0 ? z : 0;
            o += W2[j] * a[j];
        }
        float e = o - y[i], r = 2 * e;
        l += (double)e * e;
        if (!g) continue; /* the loss alone */
        *gb2 += r;
        for (size_t j = 0; j < h; j++) {
            gW2[j] += r * a[j];
            if (!(a[j] > 0)) continue;
            float dz = r * W2[j];
            gb1[j] += dz;
            for (size_t k = 0; k < d; k++) gW1[j * d + k] += dz * x[k];
        }
    }
    return l;
}

void dpt_kernels_fill_scalar(dpt_kernels *k)
{
    k->isa = "scalar";
    k->dot = dot_f32_scalar;
    k->axpy = axpy_f32_scalar;
    k->scale = scale_f32_scalar;
    k->add = add_f32_scalar;
    k->update = update_f32_scalar;
    k->glm_grad = glm_grad_f32_scalar;
    k->sgemm = sgemm_f32_scalar;
    k->sgemm_part = sgemm_part_f32_scalar;
    k->sgemm_class = sgemm_class_scalar;
    k->sgemv_rows = sgemv_rows_scalar;
    k->sgemm_tn_fold = NULL; /* the caller computes each unit and adds (the tile) */
    k->bias_act = bias_act_f32_scalar;
    k->act_bwd = act_bwd_f32_scalar;
    k->col_sum = col_sum_f32_scalar;
    k->softmax_ce = softmax_ce_f32_scalar;
    k->vexp = vexp_f32_scalar;
    k->vlog = vlog_f32_scalar;
    k->mlp_tiny_grad = mlp_tiny_grad_f32_scalar;
}
