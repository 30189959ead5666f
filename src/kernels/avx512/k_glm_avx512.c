/* Fused single-pass gradient of a one-output linear model (linear and
 * logistic regression), AVX-512. Blocks of 16 rows: their dot products four
 * rows at a time (w loaded once for four), the 16 residuals from one 16-lane
 * exp (and log1p for the logistic loss), then g += r_q x_q row by row over
 * the block re-read from L1. Column tails are opmask loads and stores, row
 * tails a masked residual vector (r = 0 past the last row). */
#include <immintrin.h>
#include <string.h>

#include "kernels/avx512/k_avx512.h"
#include "kernels/avx512/k_math_avx512.h"

#define RB      16 /* rows per block: one residual vector */
#define PF_ROWS 64 /* software prefetch distance in rows, as the AVX2 kernel */

/* 16 rows x:(16,d) stride ld, one prefetch per cache line, into L2 */
DPT_INLINE void glm_prefetch(const float *x, size_t ld, size_t d)
{
    for (size_t q = 0; q < RB; q++)
        for (size_t c = 0; c < d; c += 16)
            _mm_prefetch((const char *)(x + q * ld + c), _MM_HINT_T1);
}

/* loss and residual of 16 rows from their logits (rows outside rowm give 0);
 * the losses and residuals are summed in double into lacc, racc */
DPT_INLINE __m512 glm_resid(dpt_glm_loss loss, __m512 z, __m512 yv, __mmask16 rowm, __m512d *lacc,
                            __m512d *racc)
{
    const __m512 zero = _mm512_setzero_ps();
    __m512 r;
    __m512d l0, l1;
    if (loss == DPT_GLM_MSE) {
        __m512 e = _mm512_maskz_sub_ps(rowm, z, yv);
        r = _mm512_add_ps(e, e);
        /* (double)e * e as the reference: exact squares, summed in double */
        l0 = _mm512_cvtps_pd(_mm512_castps512_ps256(e));
        l1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1));
        l0 = _mm512_mul_pd(l0, l0);
        l1 = _mm512_mul_pd(l1, l1);
    } else {
        /* l = max(z,0) - z y + log1p(e^-|z|), one exp for l and r; r as
         * s - y (z < 0) or (1 - y) - s (z >= 0), s = sigmoid(-|z|): no
         * cancellation when y is 0 or 1 */
        const __m512 one = _mm512_set1_ps(1.0f);
        __m512 t = dpt_exp16(_mm512_sub_ps(zero, dpt_abs16(z)));
        __m512 s = _mm512_div_ps(t, _mm512_add_ps(one, t));
        __mmask16 neg = _mm512_cmp_ps_mask(z, zero, _CMP_LT_OQ);
        r = _mm512_mask_mov_ps(_mm512_sub_ps(_mm512_sub_ps(one, yv), s), neg, _mm512_sub_ps(s, yv));
        r = _mm512_maskz_mov_ps(rowm, r);
        __m512 l =
            _mm512_add_ps(_mm512_fnmadd_ps(z, yv, _mm512_max_ps(z, zero)), dpt_log1p16_unit(t));
        l = _mm512_maskz_mov_ps(rowm, l);
        l0 = _mm512_cvtps_pd(_mm512_castps512_ps256(l));
        l1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(l, 1));
    }
    *lacc = _mm512_add_pd(*lacc, _mm512_add_pd(l0, l1));
    *racc = _mm512_add_pd(*racc, _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(r)),
                                               _mm512_cvtps_pd(_mm512_extractf32x8_ps(r, 1))));
    return r;
}

DPT_INLINE double glm_impl(dpt_glm_loss loss, size_t rows, size_t d, const float *X, size_t ld,
                           const float *y, const float *w, float b, float *g, double *gb)
{
    size_t tail = d & 15, full = d - tail;
    __mmask16 mt = dpt_kmask16(tail);
    const __m512 zero = _mm512_setzero_ps();
    __m512d lacc = _mm512_setzero_pd(), racc = lacc;
    float zb[RB] __attribute__((aligned(64)));
    float rbuf[RB] __attribute__((aligned(64)));
    for (size_t i0 = 0; i0 < rows; i0 += RB) {
        size_t nr = rows - i0 < RB ? rows - i0 : RB;
        const float *x0 = X + i0 * ld;
        if (i0 + PF_ROWS + RB <= rows) glm_prefetch(x0 + PF_ROWS * ld, ld, d);
        /* rows past nr point at a valid row: their r is 0, so adding 0 x is harmless */
        const float *xr[RB];
        for (size_t q = 0; q < RB; q++) xr[q] = q < nr ? x0 + q * ld : x0;
        for (size_t q = 0; q < nr; q += 4) {
            const float *p0 = xr[q], *p1 = xr[q + 1], *p2 = xr[q + 2], *p3 = xr[q + 3];
            __m512 a0 = zero, a1 = zero, a2 = zero, a3 = zero;
            size_t c = 0;
            for (; c < full; c += 16) {
                __m512 wv = _mm512_loadu_ps(w + c);
                a0 = _mm512_fmadd_ps(_mm512_loadu_ps(p0 + c), wv, a0);
                a1 = _mm512_fmadd_ps(_mm512_loadu_ps(p1 + c), wv, a1);
                a2 = _mm512_fmadd_ps(_mm512_loadu_ps(p2 + c), wv, a2);
                a3 = _mm512_fmadd_ps(_mm512_loadu_ps(p3 + c), wv, a3);
            }
            if (tail) {
                __m512 wv = _mm512_maskz_loadu_ps(mt, w + c);
                a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, p0 + c), wv, a0);
                a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, p1 + c), wv, a1);
                a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, p2 + c), wv, a2);
                a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, p3 + c), wv, a3);
            }
            zb[q] = _mm512_reduce_add_ps(a0);
            zb[q + 1] = _mm512_reduce_add_ps(a1);
            zb[q + 2] = _mm512_reduce_add_ps(a2);
            zb[q + 3] = _mm512_reduce_add_ps(a3);
        }
        __mmask16 rowm = dpt_kmask16(nr);
        /* lanes past nr: whatever the last group of 4 left, masked below */
        __m512 z = _mm512_add_ps(_mm512_maskz_load_ps(rowm, zb), _mm512_set1_ps(b));
        __m512 r = glm_resid(loss, z, _mm512_maskz_loadu_ps(rowm, y + i0), rowm, &lacc, &racc);
        if (!g) continue;
        _mm512_store_ps(rbuf, r);
        for (size_t c = 0; c < d; c += 16) {
            __mmask16 mk = d - c < 16 ? mt : (__mmask16)0xFFFF;
            __m512 gv = _mm512_maskz_loadu_ps(mk, g + c);
            for (size_t q = 0; q < nr; q++)
                gv = _mm512_fmadd_ps(_mm512_set1_ps(rbuf[q]), _mm512_maskz_loadu_ps(mk, xr[q] + c),
                                     gv);
            _mm512_mask_storeu_ps(g + c, mk, gv);
        }
    }
    if (gb) *gb += _mm512_reduce_add_pd(racc);
    return _mm512_reduce_add_pd(lacc);
}

/* out of line per loss, so the loss test is resolved outside the loops */
static __attribute__((noinline)) double glm_mse(size_t rows, size_t d, const float *X, size_t ld,
                                                const float *y, const float *w, float b, float *g,
                                                double *gb)
{
    return glm_impl(DPT_GLM_MSE, rows, d, X, ld, y, w, b, g, gb);
}

static __attribute__((noinline)) double glm_bce(size_t rows, size_t d, const float *X, size_t ld,
                                                const float *y, const float *w, float b, float *g,
                                                double *gb)
{
    return glm_impl(DPT_GLM_BCE, rows, d, X, ld, y, w, b, g, gb);
}

/* X:(rows,d) stride ld, y:(rows), w:(d), g:(d) or NULL; see kernels.h */
double dpt_k_glm_grad_f32_avx512(dpt_glm_loss loss, size_t rows, size_t d, const float *X,
                                 size_t ld, const float *y, const float *w, float b, float *g,
                                 double *gb)
{
    return (loss == DPT_GLM_MSE ? glm_mse : glm_bce)(rows, d, X, ld, y, w, b, g, gb);
}
