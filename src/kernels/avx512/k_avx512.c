/* AVX-512 kernels for the vector, elementwise and softmax ops, and the fill
 * that overrides an AVX2 table with every AVX-512 kernel. Only the files
 * under avx512/ get the AVX-512 flags. Tails are opmask loads and stores
 * (masked-off lanes are neither read nor written, so no fault past the end)
 * instead of scalar loops. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/avx2/k_avx2.h"
#include "kernels/avx512/k_avx512.h"
#include "kernels/avx512/k_math_avx512.h"

#define LD(m, p) _mm512_maskz_loadu_ps(m, p)

/* x:(n) y:(n) -> sum x*y; four accumulators hide the FMA latency */
static float dot_f32_avx512(size_t n, const float *x, const float *y)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48), a3);
    }
    for (; i + 16 <= n; i += 16)
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
    if (i < n) {
        __mmask16 m = dpt_kmask16(n - i);
        a1 = _mm512_fmadd_ps(LD(m, x + i), LD(m, y + i), a1);
    }
    return dpt_hsum16(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

/* y:(n) += a * x:(n), one rounding per element (FMA) */
static void axpy_f32_avx512(size_t n, float a, const float *x, float *y)
{
    __m512 va = _mm512_set1_ps(a);
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int u = 0; u < 64; u += 16)
            _mm512_storeu_ps(y + i + u, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i + u),
                                                        _mm512_loadu_ps(y + i + u)));
    for (; i < n; i += 16) {
        __mmask16 m = dpt_kmask16(n - i < 16 ? n - i : 16);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, LD(m, x + i), LD(m, y + i)));
    }
}

/* x:(n) *= a */
static void scale_f32_avx512(size_t n, float a, float *x)
{
    __m512 va = _mm512_set1_ps(a);
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int u = 0; u < 64; u += 16)
            _mm512_storeu_ps(x + i + u, _mm512_mul_ps(va, _mm512_loadu_ps(x + i + u)));
    for (; i < n; i += 16) {
        __mmask16 m = dpt_kmask16(n - i < 16 ? n - i : 16);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(va, LD(m, x + i)));
    }
}

/* dst:(n) += src:(n) */
void dpt_k_add_f32_avx512(size_t n, const float *src, float *dst)
{
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int u = 0; u < 64; u += 16)
            _mm512_storeu_ps(dst + i + u, _mm512_add_ps(_mm512_loadu_ps(dst + i + u),
                                                        _mm512_loadu_ps(src + i + u)));
    for (; i < n; i += 16) {
        __mmask16 m = dpt_kmask16(n - i < 16 ? n - i : 16);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_add_ps(LD(m, dst + i), LD(m, src + i)));
    }
}

DPT_INLINE __m512 act16(dpt_act act, __m512 z)
{
    switch (act) {
    case DPT_ACT_RELU:
        return _mm512_max_ps(z, _mm512_setzero_ps()); /* NaN -> 0 like z>0?z:0 */
    case DPT_ACT_TANH:
        return dpt_tanh16(z);
    default:
        return dpt_sigmoid16(z);
    }
}

/* Z:(rows,cols) stride ldz: z += b, then z = act(z) if apply_act. Inlined
 * once per activation so the switch is resolved outside the loops. */
DPT_INLINE void bias_act_rows(dpt_act act, int apply_act, size_t rows, size_t cols, const float *b,
                              float *Z, size_t ldz)
{
    size_t tail = cols & 15, full = cols - tail;
    __mmask16 mt = dpt_kmask16(tail);
    for (size_t i = 0; i < rows; i++) {
        float *z = Z + i * ldz;
        size_t j = 0;
        for (; j < full; j += 16) {
            __m512 v = _mm512_loadu_ps(z + j);
            if (b) v = _mm512_add_ps(v, _mm512_loadu_ps(b + j));
            if (apply_act) v = act16(act, v);
            _mm512_storeu_ps(z + j, v);
        }
        if (tail) {
            __m512 v = LD(mt, z + j);
            if (b) v = _mm512_add_ps(v, LD(mt, b + j));
            if (apply_act) v = act16(act, v);
            _mm512_mask_storeu_ps(z + j, mt, v);
        }
    }
}

static void bias_act_f32_avx512(dpt_act act, int apply_act, size_t rows, size_t cols,
                                const float *b, float *Z, size_t ldz)
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
DPT_INLINE __m512 act_bwd16(dpt_act act, __m512 a, __m512 da)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    switch (act) {
    case DPT_ACT_RELU:
        return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_GT_OQ), da);
    case DPT_ACT_TANH:
        return _mm512_mul_ps(da, _mm512_sub_ps(one, _mm512_mul_ps(a, a)));
    default:
        return _mm512_mul_ps(_mm512_mul_ps(da, a), _mm512_sub_ps(one, a));
    }
}

DPT_INLINE void act_bwd_rows(dpt_act act, size_t rows, size_t cols, const float *A, size_t lda,
                             const float *dA, size_t ldda, float *dZ, size_t lddz)
{
    size_t tail = cols & 15, full = cols - tail;
    __mmask16 mt = dpt_kmask16(tail);
    for (size_t i = 0; i < rows; i++) {
        const float *a = A + i * lda, *da = dA + i * ldda;
        float *dz = dZ + i * lddz;
        size_t j = 0;
        for (; j < full; j += 16)
            _mm512_storeu_ps(dz + j,
                             act_bwd16(act, _mm512_loadu_ps(a + j), _mm512_loadu_ps(da + j)));
        if (tail) _mm512_mask_storeu_ps(dz + j, mt, act_bwd16(act, LD(mt, a + j), LD(mt, da + j)));
    }
}

/* dZ:(rows,cols) = dA * act'(A), from the activation output A */
static void act_bwd_f32_avx512(dpt_act act, size_t rows, size_t cols, const float *A, size_t lda,
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

/* Columns [0, nc) of col_sum, nc <= 16 NV (FULL: nc = 16 NV, plain loads;
 * else opmask loads). Each column's order, wherever it falls (the AVX2
 * kernel's): s = out, then s += (m_i + m_i+1) + (m_i+2 + m_i+3) for each
 * group of 4 rows, then the last rows % 4 rows one at a time. The sum of a
 * group does not wait for s, so a narrow matrix (a small layer's bias
 * gradient) keeps 4 loads and 3 adds in flight per add on the chain. */
DPT_INLINE void col_sum_strip(const int NV, const int FULL, size_t rows, const float *m, size_t ld,
                              float *out, size_t nc)
{
    __mmask16 mk[8];
    __m512 s[8];
    for (int q = 0; q < NV; q++) {
        size_t lo = 16 * (size_t)q, w = nc > lo ? (nc - lo < 16 ? nc - lo : 16) : 0;
        mk[q] = dpt_kmask16(w);
    }
#define CS_LD(p, q) (FULL ? _mm512_loadu_ps(p) : LD(mk[q], p))
    for (int q = 0; q < NV; q++) s[q] = CS_LD(out + 16 * q, q);
    size_t i = 0;
    for (; i + 4 <= rows; i += 4, m += 4 * ld)
        for (int q = 0; q < NV; q++) {
            const float *r = m + 16 * q;
            __m512 t = _mm512_add_ps(_mm512_add_ps(CS_LD(r, q), CS_LD(r + ld, q)),
                                     _mm512_add_ps(CS_LD(r + 2 * ld, q), CS_LD(r + 3 * ld, q)));
            s[q] = _mm512_add_ps(s[q], t);
        }
    for (; i < rows; i++, m += ld)
        for (int q = 0; q < NV; q++) s[q] = _mm512_add_ps(s[q], CS_LD(m + 16 * q, q));
    for (int q = 0; q < NV; q++) {
        if (FULL)
            _mm512_storeu_ps(out + 16 * q, s[q]);
        else
            _mm512_mask_storeu_ps(out + 16 * q, mk[q], s[q]);
    }
#undef CS_LD
}

/* out:(cols) += column sums of M:(rows,cols) stride ld: 128 columns in
 * registers at a time, the last 1..127 32 at a time (opmasks). Every column
 * is summed in the same order (col_sum_strip), so a slice of the columns
 * gives the whole call's bits. */
static void col_sum_f32_avx512(size_t rows, size_t cols, const float *M, size_t ld, float *out)
{
    size_t j = 0;
    for (; j + 128 <= cols; j += 128) col_sum_strip(8, 1, rows, M + j, ld, out + j, 128);
    for (; j < cols; j += 32)
        col_sum_strip(2, 0, rows, M + j, ld, out + j, cols - j < 32 ? cols - j : 32);
}

static double softmax_ce_f32_avx512(size_t rows, size_t K, const float *Z, size_t ldz,
                                    const float *y, float *dZ, size_t lddz, size_t *correct)
{
    if (K == 0) return 0;
    const __m512 ninf = _mm512_set1_ps(-__builtin_inff());
    double lsum = 0;
    size_t hits = 0;
    for (size_t i = 0; i < rows; i++) {
        const float *z = Z + i * ldz;
        size_t label = (size_t)y[i];
        float zl = z[label];
        __m512 vm = ninf;
        for (size_t j = 0; j < K; j += 16) {
            __mmask16 mk = dpt_kmask16(K - j < 16 ? K - j : 16);
            vm = _mm512_mask_max_ps(vm, mk, vm, LD(mk, z + j));
        }
        float mx = _mm512_reduce_max_ps(vm);
        __m512 bm = _mm512_set1_ps(mx);
        /* first index holding the maximum, as the reference's strict '>' scan */
        size_t best = 0;
        for (size_t j = 0; j < K; j += 16) {
            __mmask16 mk = dpt_kmask16(K - j < 16 ? K - j : 16);
            __mmask16 eq = _mm512_mask_cmp_ps_mask(mk, LD(mk, z + j), bm, _CMP_EQ_OQ);
            if (eq) {
                best = j + (size_t)__builtin_ctz((unsigned)eq);
                break;
            }
        }
        hits += best == label;
        float *dz = dZ ? dZ + i * lddz : NULL;
        __m512 s = _mm512_setzero_ps();
        for (size_t j = 0; j < K; j += 16) {
            __mmask16 mk = dpt_kmask16(K - j < 16 ? K - j : 16);
            __m512 e = _mm512_maskz_mov_ps(mk, dpt_exp16(_mm512_sub_ps(LD(mk, z + j), bm)));
            s = _mm512_add_ps(s, e);
            if (dz) _mm512_mask_storeu_ps(dz + j, mk, e);
        }
        double sum = dpt_hsum16(s);
        lsum += log(sum) - ((double)zl - mx);
        if (dz) {
            __m512 inv = _mm512_set1_ps((float)(1.0 / sum));
            for (size_t j = 0; j < K; j += 16) {
                __mmask16 mk = dpt_kmask16(K - j < 16 ? K - j : 16);
                _mm512_mask_storeu_ps(dz + j, mk, _mm512_mul_ps(LD(mk, dz + j), inv));
            }
            dz[label] -= 1;
        }
    }
    if (correct) *correct += hits;
    return lsum;
}

static void vexp_f32_avx512(size_t n, const float *x, float *out)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, dpt_exp16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = dpt_kmask16(n - i);
        _mm512_mask_storeu_ps(out + i, m, dpt_exp16(LD(m, x + i)));
    }
}

static void vlog_f32_avx512(size_t n, const float *x, float *out)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, dpt_log16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = dpt_kmask16(n - i);
        /* masked-off lanes are log(0) = -inf: computed, never stored */
        _mm512_mask_storeu_ps(out + i, m, dpt_log16(LD(m, x + i)));
    }
}

void dpt_kernels_fill_avx512(dpt_kernels *k)
{
    k->isa = "avx512";
    k->dot = dot_f32_avx512;
    k->axpy = axpy_f32_avx512;
    k->scale = scale_f32_avx512;
    k->add = dpt_k_add_f32_avx512;
    k->update = dpt_k_update_f32_avx512;
    k->glm_grad = dpt_k_glm_grad_f32_avx512;
    k->sgemm = dpt_k_sgemm_f32_avx512;
    k->sgemm_part = dpt_k_sgemm_part_f32_avx512;
    k->sgemm_class = dpt_k_sgemm_class_avx512;
    k->sgemv_rows = dpt_k_sgemv_rows_avx2; /* one row is AVX2's GEMV */
    k->sgemm_tn_fold = dpt_k_sgemm_tn_fold_avx512;
    k->bias_act = bias_act_f32_avx512;
    k->act_bwd = act_bwd_f32_avx512;
    k->col_sum = col_sum_f32_avx512;
    k->softmax_ce = softmax_ce_f32_avx512;
    k->vexp = vexp_f32_avx512;
    k->vlog = vlog_f32_avx512;
    k->mlp_tiny_grad = dpt_k_mlp_tiny_grad_f32_avx512;
}
