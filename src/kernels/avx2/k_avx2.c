/* AVX2+FMA kernels for the vector, elementwise and softmax ops, and the
 * function that overrides the scalar table with every AVX2 kernel. Only the
 * files under avx2/ are compiled with -mavx2 -mfma. Tails use masked loads
 * and stores, so no kernel touches memory past its arguments. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/avx2/k_avx2.h"
#include "kernels/avx2/k_math_avx2.h"

/* x:(n) y:(n) -> sum x*y; four accumulators hide the FMA latency */
static float dot_f32_avx2(size_t n, const float *x, const float *y)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    if (i < n) {
        __m256i m = dpt_mask8(n - i);
        a1 = _mm256_fmadd_ps(_mm256_maskload_ps(x + i, m), _mm256_maskload_ps(y + i, m), a1);
    }
    return dpt_hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

/* y:(n) += a * x:(n), one rounding per element (FMA) */
static void axpy_f32_avx2(size_t n, float a, const float *x, float *y)
{
    __m256 va = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        for (int u = 0; u < 32; u += 8)
            _mm256_storeu_ps(y + i + u, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i + u),
                                                        _mm256_loadu_ps(y + i + u)));
    }
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i,
                         _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    if (i < n) {
        __m256i m = dpt_mask8(n - i);
        _mm256_maskstore_ps(
            y + i, m,
            _mm256_fmadd_ps(va, _mm256_maskload_ps(x + i, m), _mm256_maskload_ps(y + i, m)));
    }
}

/* x:(n) *= a */
static void scale_f32_avx2(size_t n, float a, float *x)
{
    __m256 va = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int u = 0; u < 32; u += 8)
            _mm256_storeu_ps(x + i + u, _mm256_mul_ps(va, _mm256_loadu_ps(x + i + u)));
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(va, _mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i m = dpt_mask8(n - i);
        _mm256_maskstore_ps(x + i, m, _mm256_mul_ps(va, _mm256_maskload_ps(x + i, m)));
    }
}

/* dst:(n) += src:(n) */
static void add_f32_avx2(size_t n, const float *src, float *dst)
{
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int u = 0; u < 32; u += 8)
            _mm256_storeu_ps(dst + i + u, _mm256_add_ps(_mm256_loadu_ps(dst + i + u),
                                                        _mm256_loadu_ps(src + i + u)));
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i,
                         _mm256_add_ps(_mm256_loadu_ps(dst + i), _mm256_loadu_ps(src + i)));
    if (i < n) {
        __m256i m = dpt_mask8(n - i);
        _mm256_maskstore_ps(
            dst + i, m,
            _mm256_add_ps(_mm256_maskload_ps(dst + i, m), _mm256_maskload_ps(src + i, m)));
    }
}

DPT_INLINE __m256 act8(dpt_act act, __m256 z)
{
    switch (act) {
    case DPT_ACT_RELU:
        return _mm256_max_ps(z, _mm256_setzero_ps()); /* NaN -> 0 like z>0?z:0 */
    case DPT_ACT_TANH:
        return dpt_tanh8(z);
    default:
        return dpt_sigmoid8(z);
    }
}

/* Z:(rows,cols) stride ldz: z += b, then z = act(z) if apply_act. Inlined
 * once per activation so the switch is resolved outside the loops. */
DPT_INLINE void bias_act_rows(dpt_act act, int apply_act, size_t rows, size_t cols, const float *b,
                              float *Z, size_t ldz)
{
    size_t tail = cols & 7, full = cols - tail;
    __m256i mt = dpt_mask8(tail);
    for (size_t i = 0; i < rows; i++) {
        float *z = Z + i * ldz;
        size_t j = 0;
        for (; j < full; j += 8) {
            __m256 v = _mm256_loadu_ps(z + j);
            if (b) v = _mm256_add_ps(v, _mm256_loadu_ps(b + j));
            if (apply_act) v = act8(act, v);
            _mm256_storeu_ps(z + j, v);
        }
        if (tail) {
            __m256 v = _mm256_maskload_ps(z + j, mt);
            if (b) v = _mm256_add_ps(v, _mm256_maskload_ps(b + j, mt));
            if (apply_act) v = act8(act, v);
            _mm256_maskstore_ps(z + j, mt, v);
        }
    }
}

static void bias_act_f32_avx2(dpt_act act, int apply_act, size_t rows, size_t cols, const float *b,
                              float *Z, size_t ldz)
{
    if (!apply_act) {
        if (b) bias_act_rows(DPT_ACT_RELU, 0, rows, cols, b, Z, ldz);
        return;
    }
    switch (act) {
    case DPT_ACT_RELU:
        bias_act_rows(DPT_ACT_RELU, 1, rows, cols, b, Z, ldz);
        break;
    case DPT_ACT_TANH:
        bias_act_rows(DPT_ACT_TANH, 1, rows, cols, b, Z, ldz);
        break;
    case DPT_ACT_SIGMOID:
        bias_act_rows(DPT_ACT_SIGMOID, 1, rows, cols, b, Z, ldz);
        break;
    default:
        if (b) bias_act_rows(DPT_ACT_RELU, 0, rows, cols, b, Z, ldz);
        break;
    }
}

/* Same operation order as the scalar reference, so results agree bit for bit. */
DPT_INLINE __m256 act_bwd8(dpt_act act, __m256 a, __m256 da)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    switch (act) {
    case DPT_ACT_RELU:
        return _mm256_and_ps(_mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_GT_OQ), da);
    case DPT_ACT_TANH:
        return _mm256_mul_ps(da, _mm256_sub_ps(one, _mm256_mul_ps(a, a)));
    default:
        return _mm256_mul_ps(_mm256_mul_ps(da, a), _mm256_sub_ps(one, a));
    }
}

/* dZ:(rows,cols) = dA * act'(A), from the activation output A */
DPT_INLINE void act_bwd_rows(dpt_act act, size_t rows, size_t cols, const float *A, size_t lda,
                             const float *dA, size_t ldda, float *dZ, size_t lddz)
{
    size_t tail = cols & 7, full = cols - tail;
    __m256i mt = dpt_mask8(tail);
    for (size_t i = 0; i < rows; i++) {
        const float *a = A + i * lda, *da = dA + i * ldda;
        float *dz = dZ + i * lddz;
        size_t j = 0;
        for (; j < full; j += 8)
            _mm256_storeu_ps(dz + j,
                             act_bwd8(act, _mm256_loadu_ps(a + j), _mm256_loadu_ps(da + j)));
        if (tail)
            _mm256_maskstore_ps(
                dz + j, mt,
                act_bwd8(act, _mm256_maskload_ps(a + j, mt), _mm256_maskload_ps(da + j, mt)));
    }
}

static void act_bwd_f32_avx2(dpt_act act, size_t rows, size_t cols, const float *A, size_t lda,
                             const float *dA, size_t ldda, float *dZ, size_t lddz)
{
    switch (act) {
    case DPT_ACT_RELU:
        act_bwd_rows(DPT_ACT_RELU, rows, cols, A, lda, dA, ldda, dZ, lddz);
        break;
    case DPT_ACT_TANH:
        act_bwd_rows(DPT_ACT_TANH, rows, cols, A, lda, dA, ldda, dZ, lddz);
        break;
    case DPT_ACT_SIGMOID:
        act_bwd_rows(DPT_ACT_SIGMOID, rows, cols, A, lda, dA, ldda, dZ, lddz);
        break;
    default:
        break;
    }
}

/* Columns [0, nc) of col_sum, nc <= 8 NV (FULL: nc = 8 NV, plain loads;
 * else masked loads). Each column's order, wherever it falls: s = out, then
 * s += (m_i + m_i+1) + (m_i+2 + m_i+3) for each group of 4 rows, then the
 * last rows % 4 rows one at a time. The sum of a group does not wait for s,
 * so a single column still keeps 4 loads and 3 adds in flight per add on
 * the chain (narrow matrices: the bias gradient of a small layer). */
DPT_INLINE void col_sum_strip(const int NV, const int FULL, size_t rows, const float *m, size_t ld,
                              float *out, size_t nc)
{
    __m256i mk[8];
    __m256 s[8];
    for (int q = 0; q < NV; q++) {
        size_t lo = 8 * (size_t)q, w = nc > lo ? (nc - lo < 8 ? nc - lo : 8) : 0;
        mk[q] = dpt_mask8(w);
    }
#define CS_LD(p, q) (FULL ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mk[q]))
    for (int q = 0; q < NV; q++) s[q] = CS_LD(out + 8 * q, q);
    size_t i = 0;
    for (; i + 4 <= rows; i += 4, m += 4 * ld)
        for (int q = 0; q < NV; q++) {
            const float *r = m + 8 * q;
            __m256 t = _mm256_add_ps(_mm256_add_ps(CS_LD(r, q), CS_LD(r + ld, q)),
                                     _mm256_add_ps(CS_LD(r + 2 * ld, q), CS_LD(r + 3 * ld, q)));
            s[q] = _mm256_add_ps(s[q], t);
        }
    for (; i < rows; i++, m += ld)
        for (int q = 0; q < NV; q++) s[q] = _mm256_add_ps(s[q], CS_LD(m + 8 * q, q));
    for (int q = 0; q < NV; q++) {
        if (FULL)
            _mm256_storeu_ps(out + 8 * q, s[q]);
        else
            _mm256_maskstore_ps(out + 8 * q, mk[q], s[q]);
    }
#undef CS_LD
}

/* out:(cols) += column sums of M:(rows,cols) stride ld: 64 columns in
 * registers at a time, the last 1..63 16 at a time (masked). Every column
 * is summed in the same order (col_sum_strip), so a slice of the columns
 * gives the whole call's bits; the order is not the scalar reference's
 * (which adds the rows one at a time). */
static void col_sum_f32_avx2(size_t rows, size_t cols, const float *M, size_t ld, float *out)
{
    size_t j = 0;
    for (; j + 64 <= cols; j += 64) col_sum_strip(8, 1, rows, M + j, ld, out + j, 64);
    for (; j < cols; j += 16)
        col_sum_strip(2, 0, rows, M + j, ld, out + j, cols - j < 16 ? cols - j : 16);
}

static double softmax_ce_f32_avx2(size_t rows, size_t K, const float *Z, size_t ldz, const float *y,
                                  float *dZ, size_t lddz, size_t *correct)
{
    if (K == 0) return 0;
    const __m256 ninf = _mm256_set1_ps(-__builtin_inff());
    size_t tail = K & 7, full = K - tail;
    __m256i mt = dpt_mask8(tail);
    double lsum = 0;
    size_t hits = 0;
    for (size_t i = 0; i < rows; i++) {
        const float *z = Z + i * ldz;
        size_t label = (size_t)y[i];
        float zl = z[label];
        __m256 vm = ninf;
        size_t j = 0;
        for (; j < full; j += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(z + j));
        if (tail)
            vm = _mm256_max_ps(
                vm, _mm256_blendv_ps(ninf, _mm256_maskload_ps(z + j, mt), _mm256_castsi256_ps(mt)));
        float mx = dpt_hmax8(vm);
        /* first index holding the maximum, as the reference's strict '>' scan */
        size_t best = 0;
        __m256 bm = _mm256_set1_ps(mx);
        for (j = 0; j < K; j += 8) {
            __m256i mk = dpt_mask8(K - j < 8 ? K - j : 8);
            int bits = _mm256_movemask_ps(
                _mm256_and_ps(_mm256_cmp_ps(_mm256_maskload_ps(z + j, mk), bm, _CMP_EQ_OQ),
                              _mm256_castsi256_ps(mk)));
            if (bits) {
                best = j + (size_t)__builtin_ctz((unsigned)bits);
                break;
            }
        }
        hits += best == label;
        float *dz = dZ ? dZ + i * lddz : NULL;
        __m256 s = _mm256_setzero_ps();
        for (j = 0; j < full; j += 8) {
            __m256 e = dpt_exp8(_mm256_sub_ps(_mm256_loadu_ps(z + j), bm));
            s = _mm256_add_ps(s, e);
            if (dz) _mm256_storeu_ps(dz + j, e);
        }
        if (tail) {
            __m256 e = dpt_exp8(_mm256_sub_ps(_mm256_maskload_ps(z + j, mt), bm));
            e = _mm256_and_ps(e, _mm256_castsi256_ps(mt));
            s = _mm256_add_ps(s, e);
            if (dz) _mm256_maskstore_ps(dz + j, mt, e);
        }
        double sum = dpt_hsum8(s);
        lsum += log(sum) - ((double)zl - mx);
        if (dz) {
            __m256 inv = _mm256_set1_ps((float)(1.0 / sum));
            for (j = 0; j < full; j += 8)
                _mm256_storeu_ps(dz + j, _mm256_mul_ps(_mm256_loadu_ps(dz + j), inv));
            if (tail)
                _mm256_maskstore_ps(dz + j, mt, _mm256_mul_ps(_mm256_maskload_ps(dz + j, mt), inv));
            dz[label] -= 1;
        }
    }
    if (correct) *correct += hits;
    return lsum;
}

static void vexp_f32_avx2(size_t n, const float *x, float *out)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, dpt_exp8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i m = dpt_mask8(n - i);
        _mm256_maskstore_ps(out + i, m, dpt_exp8(_mm256_maskload_ps(x + i, m)));
    }
}

/* All ones in the lanes of x that are inf or nan: x - x is 0 elsewhere. */
static inline __m256 nonfinite8(__m256 x)
{
    return _mm256_cmp_ps(_mm256_sub_ps(x, x), _mm256_setzero_ps(), _CMP_NEQ_UQ);
}

/* One lane group of the optimizer step: the scalar kernel's operations,
 * in its order, 8 at a time. */
static inline __m256 update8(dpt_update_rule rule, __m256 w, __m256 gs, __m256 *v, __m256 vgs,
                             __m256 vwd, __m256 vmu, __m256 vlr, __m256 *bad)
{
    __m256 g = _mm256_add_ps(_mm256_mul_ps(vgs, gs), _mm256_mul_ps(vwd, w));
    *bad = _mm256_or_ps(*bad, nonfinite8(g));
    switch (rule) {
    case DPT_UPDATE_PLAIN:
        return _mm256_sub_ps(w, _mm256_mul_ps(vlr, g));
    case DPT_UPDATE_MOMENTUM:
        *v = _mm256_add_ps(_mm256_mul_ps(vmu, *v), g);
        return _mm256_sub_ps(w, _mm256_mul_ps(vlr, *v));
    default:
        *v = _mm256_add_ps(_mm256_mul_ps(vmu, *v), g);
        return _mm256_sub_ps(w, _mm256_mul_ps(vlr, _mm256_add_ps(g, _mm256_mul_ps(vmu, *v))));
    }
}

/* w[0, wlen) may be prefetched, wlen >= n. */
static int update_block_avx2(dpt_update_rule rule, size_t n, size_t wlen, float *w,
                             const float *gsum, float *v, float gscale, float wd, float mu,
                             float lr)
{
    const __m256 vgs = _mm256_set1_ps(gscale), vwd = _mm256_set1_ps(wd), vmu = _mm256_set1_ps(mu),
                 vlr = _mm256_set1_ps(lr);
    const int vel = rule != DPT_UPDATE_PLAIN;
    __m256 bad = _mm256_setzero_ps(), vv = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        /* w is shared: the other threads read it in the forward pass, so
         * each store must first take the line from them. Asking for the
         * lines a few KiB ahead (PREFETCHW) overlaps those requests. */
        if (!(i & 15) && i + DPT_UPDATE_PREFETCH < wlen)
            __builtin_prefetch(w + i + DPT_UPDATE_PREFETCH, 1, 3);
        if (vel) vv = _mm256_loadu_ps(v + i);
        __m256 nw = update8(rule, _mm256_loadu_ps(w + i), _mm256_loadu_ps(gsum + i), &vv, vgs, vwd,
                            vmu, vlr, &bad);
        bad = _mm256_or_ps(bad, nonfinite8(nw));
        _mm256_storeu_ps(w + i, nw);
        if (vel) _mm256_storeu_ps(v + i, vv);
    }
    if (i < n) {
        __m256i m = dpt_mask8(n - i);
        /* masked-off lanes compute on zeros: finite, never stored */
        if (vel) vv = _mm256_maskload_ps(v + i, m);
        __m256 nw = update8(rule, _mm256_maskload_ps(w + i, m), _mm256_maskload_ps(gsum + i, m),
                            &vv, vgs, vwd, vmu, vlr, &bad);
        bad = _mm256_or_ps(bad, nonfinite8(nw));
        _mm256_maskstore_ps(w + i, m, nw);
        if (vel) _mm256_maskstore_ps(v + i, m, vv);
    }
    return _mm256_movemask_ps(bad) != 0;
}

/* The sum of the ng arrays block by block in a buffer that stays in L1,
 * each array read once, in order, and nothing written back but w and v. */
static int update_f32_avx2(dpt_update_rule rule, size_t n, size_t ahead, float *w,
                           const float *const *gs, int ng, size_t goff, float *v, float gscale,
                           float wd, float mu, float lr)
{
    if (ng == 1) return update_block_avx2(rule, n, ahead, w, gs[0] + goff, v, gscale, wd, mu, lr);
    float acc[DPT_UPDATE_BLOCK] __attribute__((aligned(32)));
    int bad = 0;
    for (size_t b0 = 0; b0 < n; b0 += DPT_UPDATE_BLOCK) {
        size_t nb = n - b0 < DPT_UPDATE_BLOCK ? n - b0 : DPT_UPDATE_BLOCK;
        memcpy(acc, gs[0] + goff + b0, nb * sizeof(float));
        for (int u = 1; u < ng; u++) add_f32_avx2(nb, gs[u] + goff + b0, acc);
        bad |= update_block_avx2(rule, nb, ahead - b0, w + b0, acc, v ? v + b0 : NULL, gscale, wd,
                                 mu, lr);
    }
    return bad;
}

static void vlog_f32_avx2(size_t n, const float *x, float *out)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, dpt_log8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i m = dpt_mask8(n - i);
        _mm256_maskstore_ps(out + i, m, dpt_log8(_mm256_maskload_ps(x + i, m)));
    }
}

void dpt_kernels_fill_avx2(dpt_kernels *k)
{
    k->isa = "avx2";
    k->dot = dot_f32_avx2;
    k->axpy = axpy_f32_avx2;
    k->scale = scale_f32_avx2;
    k->add = add_f32_avx2;
    k->update = update_f32_avx2;
    k->glm_grad = dpt_k_glm_grad_f32_avx2;
    k->sgemm = dpt_k_sgemm_f32_avx2;
    k->sgemm_part = dpt_k_sgemm_part_f32_avx2;
    k->sgemm_class = dpt_k_sgemm_class_avx2;
    k->sgemv_rows = dpt_k_sgemv_rows_avx2;
    k->sgemm_tn_fold = dpt_k_sgemm_tn_fold_avx2;
    k->bias_act = bias_act_f32_avx2;
    k->act_bwd = act_bwd_f32_avx2;
    k->col_sum = col_sum_f32_avx2;
    k->softmax_ce = softmax_ce_f32_avx2;
    k->vexp = vexp_f32_avx2;
    k->vlog = vlog_f32_avx2;
    k->mlp_tiny_grad = dpt_k_mlp_tiny_grad_f32_avx2;
}
