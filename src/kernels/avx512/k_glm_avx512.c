/* Fused single-pass gradient of a one-output linear model (linear and
 * logistic regression), AVX-512. Blocks of 16 rows: their 16 dot products
 * in 16 accumulators (each w chunk loaded once for all 16 rows), summed
 * across lanes by one transpose-and-add tree straight into the vector of 16
 * logits (a reduction per row would cost more than the dot products at
 * small d), the 16 residuals from one 16-lane exp (and log1p for the
 * logistic loss), then g += r_q x_q over the block re-read from L1. Up to
 * d = 64 (glm_regs) w and g live in registers for the whole shard, so the
 * kernel streams X at the memory's read rate; above, w and g are re-read
 * from L1 per block (glm_impl). Column tails are opmask loads, row tails a
 * masked residual vector (r = 0 past the last row). */
#include <immintrin.h>
#include <string.h>

#include "kernels/avx512/k_avx512.h"
#include "kernels/avx512/k_math_avx512.h"
#include "kernels/k_prefetch.h"

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
                            __m512d *racc, size_t *hits)
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
        if (hits) { /* rows of the block with (z > 0) == (y > 0.5) */
            __mmask16 zp = _mm512_cmp_ps_mask(z, zero, _CMP_GT_OQ);
            __mmask16 yp = _mm512_cmp_ps_mask(yv, _mm512_set1_ps(0.5f), _CMP_GT_OQ);
            *hits += (size_t)__builtin_popcount((unsigned)(~(zp ^ yp) & rowm & 0xFFFFu));
        }
    }
    *lacc = _mm512_add_pd(*lacc, _mm512_add_pd(l0, l1));
    *racc = _mm512_add_pd(*racc, _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(r)),
                                               _mm512_cvtps_pd(_mm512_extractf32x8_ps(r, 1))));
    return r;
}

/* lane i of the result = the sum of the lanes of a_i: pairs of rows, then
 * quads inside each 128-bit lane, then across the four 128-bit lanes */
DPT_INLINE __m512 pair_sum(__m512 a, __m512 b)
{
    return _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
}

DPT_INLINE __m512 quad_sum(__m512 a01, __m512 a23)
{
    return _mm512_add_ps(_mm512_shuffle_ps(a01, a23, 0x44), _mm512_shuffle_ps(a01, a23, 0xEE));
}

DPT_INLINE __m512 lane_sum(__m512 a, __m512 b)
{
    return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
}

#define DOT16(F)                                                                                   \
    F(0);                                                                                          \
    F(1);                                                                                          \
    F(2);                                                                                          \
    F(3);                                                                                          \
    F(4);                                                                                          \
    F(5);                                                                                          \
    F(6);                                                                                          \
    F(7);                                                                                          \
    F(8);                                                                                          \
    F(9);                                                                                          \
    F(10);                                                                                         \
    F(11);                                                                                         \
    F(12);                                                                                         \
    F(13);                                                                                         \
    F(14);                                                                                         \
    F(15)

/* the 16 logits of a block from its 16 dot-product accumulators */
#define GLM_LOGITS(b)                                                                              \
    _mm512_add_ps(lane_sum(lane_sum(quad_sum(pair_sum(a0, a1), pair_sum(a2, a3)),                  \
                                    quad_sum(pair_sum(a4, a5), pair_sum(a6, a7))),                 \
                           lane_sum(quad_sum(pair_sum(a8, a9), pair_sum(a10, a11)),                \
                                    quad_sum(pair_sum(a12, a13), pair_sum(a14, a15)))),            \
                  _mm512_set1_ps(b))

/* d <= 64, NC = ceil(d / 16) chunks: w and the gradient stay in registers
 * across all rows, so a row costs its NC loads in the dot products and NC
 * more from L1 in the update, and nothing else touches memory. Dot products
 * row by row (the loads walk the block in address order, one stream for the
 * hardware prefetchers, and a software prefetch of each line of the row
 * PF_ROWS ahead into L1); the update adds r_q x_q into two sets of
 * accumulators, even and odd rows, so that no chain of dependent FMAs is
 * longer than 8 per block. The
 * last rows (fewer than 16) are copied into a zero-padded block. */
DPT_INLINE double glm_regs(const int NC, dpt_glm_loss loss, size_t rows, size_t d, const float *X,
                           size_t ld, const float *y, const float *w, float b, float *g, double *gb,
                           size_t *hits)
{
    __mmask16 ml = dpt_kmask16((d & 15) ? (d & 15) : 16); /* the last chunk's columns */
    const __m512 zero = _mm512_setzero_ps();
    __m512 w0 = zero, w1 = zero, w2 = zero, w3 = zero;
    __m512 e0 = zero, e1 = zero, e2 = zero, e3 = zero, o0 = zero, o1 = zero, o2 = zero, o3 = zero;
#define CHUNK(p, c)                                                                                \
    (c + 1 < NC ? _mm512_loadu_ps((p) + 16 * (c)) : _mm512_maskz_loadu_ps(ml, (p) + 16 * (c)))
    w0 = CHUNK(w, 0);
    if (NC > 1) w1 = CHUNK(w, 1);
    if (NC > 2) w2 = CHUNK(w, 2);
    if (NC > 3) w3 = CHUNK(w, 3);
    if (g) {
        e0 = CHUNK(g, 0);
        if (NC > 1) e1 = CHUNK(g, 1);
        if (NC > 2) e2 = CHUNK(g, 2);
        if (NC > 3) e3 = CHUNK(g, 3);
    }
    __m512d lacc = _mm512_setzero_pd(), racc = lacc;
    float rbuf[RB] __attribute__((aligned(64)));
    float xb[RB * 64] __attribute__((aligned(64)));
    for (size_t i0 = 0; i0 < rows; i0 += RB) {
        size_t nr = rows - i0 < RB ? rows - i0 : RB;
        const float *x0 = X + i0 * ld;
        size_t xl = ld;
        if (nr < RB) {
            /* the last rows, then zeros: r is masked to 0 past nr, and 0 x
             * adds nothing; columns past d are masked off by CHUNK */
            memset(xb + nr * 64, 0, (RB - nr) * 64 * sizeof(float));
            for (size_t q = 0; q < nr; q++) memcpy(xb + q * 64, x0 + q * ld, d * sizeof(float));
            x0 = xb;
            xl = 64;
        }
        /* one running row pointer: 16 rows' offsets would not fit in registers */
        const float *xq = x0;
#define DOT(q)                                                                                     \
    dpt_prefetch_ahead(xq, PF_ROWS *ld * sizeof(float), 64 * (size_t)NC);                          \
    __m512 a##q = _mm512_mul_ps(CHUNK(xq, 0), w0);                                                 \
    if (NC > 1) a##q = _mm512_fmadd_ps(CHUNK(xq, 1), w1, a##q);                                    \
    if (NC > 2) a##q = _mm512_fmadd_ps(CHUNK(xq, 2), w2, a##q);                                    \
    if (NC > 3) a##q = _mm512_fmadd_ps(CHUNK(xq, 3), w3, a##q);                                    \
    xq += xl
        DOT16(DOT);
#undef DOT
        __mmask16 rowm = dpt_kmask16(nr);
        __m512 r = glm_resid(loss, GLM_LOGITS(b), _mm512_maskz_loadu_ps(rowm, y + i0), rowm, &lacc,
                             &racc, hits);
        if (!g) continue;
        _mm512_store_ps(rbuf, r);
        /* re-read the block from L1 below: kept from the dot products, its
         * 64 chunks would be spilled to the stack */
        __asm__ volatile("" ::: "memory");
        xq = x0;
#define UPD(q)                                                                                     \
    do {                                                                                           \
        __m512 rq = _mm512_set1_ps(rbuf[q]);                                                       \
        if ((q)&1) {                                                                               \
            o0 = _mm512_fmadd_ps(rq, CHUNK(xq, 0), o0);                                            \
            if (NC > 1) o1 = _mm512_fmadd_ps(rq, CHUNK(xq, 1), o1);                                \
            if (NC > 2) o2 = _mm512_fmadd_ps(rq, CHUNK(xq, 2), o2);                                \
            if (NC > 3) o3 = _mm512_fmadd_ps(rq, CHUNK(xq, 3), o3);                                \
        } else {                                                                                   \
            e0 = _mm512_fmadd_ps(rq, CHUNK(xq, 0), e0);                                            \
            if (NC > 1) e1 = _mm512_fmadd_ps(rq, CHUNK(xq, 1), e1);                                \
            if (NC > 2) e2 = _mm512_fmadd_ps(rq, CHUNK(xq, 2), e2);                                \
            if (NC > 3) e3 = _mm512_fmadd_ps(rq, CHUNK(xq, 3), e3);                                \
        }                                                                                          \
        xq += xl;                                                                                  \
    } while (0)
        DOT16(UPD);
#undef UPD
    }
#undef CHUNK
    if (g) {
        __m512 gv[4] = {_mm512_add_ps(e0, o0), _mm512_add_ps(e1, o1), _mm512_add_ps(e2, o2),
                        _mm512_add_ps(e3, o3)};
        for (int c = 0; c + 1 < NC; c++) _mm512_storeu_ps(g + 16 * c, gv[c]);
        _mm512_mask_storeu_ps(g + 16 * (NC - 1), ml, gv[NC - 1]);
    }
    if (gb) *gb += _mm512_reduce_add_pd(racc);
    return _mm512_reduce_add_pd(lacc);
}

DPT_INLINE double glm_impl(dpt_glm_loss loss, size_t rows, size_t d, const float *X, size_t ld,
                           const float *y, const float *w, float b, float *g, double *gb,
                           size_t *hits)
{
    size_t tail = d & 15, full = d - tail;
    __mmask16 mt = dpt_kmask16(tail);
    __m512d lacc = _mm512_setzero_pd(), racc = lacc;
    float rbuf[RB] __attribute__((aligned(64)));
    for (size_t i0 = 0; i0 < rows; i0 += RB) {
        size_t nr = rows - i0 < RB ? rows - i0 : RB;
        const float *x0 = X + i0 * ld;
        if (i0 + PF_ROWS + RB <= rows) glm_prefetch(x0 + PF_ROWS * ld, ld, d);
        /* rows past nr point at a valid row: their r is 0, so adding 0 x is harmless */
        const float *xr[RB];
        for (size_t q = 0; q < RB; q++) xr[q] = q < nr ? x0 + q * ld : x0;
#define DECL(q) __m512 a##q = _mm512_setzero_ps()
        DOT16(DECL);
#undef DECL
        size_t c = 0;
        /* four chunks of each row in turn, row after row: the loads walk
         * the block in address order (each accumulator still adds its
         * chunks in column order) */
#define ACC(q)                                                                                     \
    a##q = _mm512_fmadd_ps(_mm512_loadu_ps(xr[q] + c), w0, a##q);                                  \
    a##q = _mm512_fmadd_ps(_mm512_loadu_ps(xr[q] + c + 16), w1, a##q);                             \
    a##q = _mm512_fmadd_ps(_mm512_loadu_ps(xr[q] + c + 32), w2, a##q);                             \
    a##q = _mm512_fmadd_ps(_mm512_loadu_ps(xr[q] + c + 48), w3, a##q)
        for (; c + 64 <= full; c += 64) {
            __m512 w0 = _mm512_loadu_ps(w + c), w1 = _mm512_loadu_ps(w + c + 16),
                   w2 = _mm512_loadu_ps(w + c + 32), w3 = _mm512_loadu_ps(w + c + 48);
            DOT16(ACC);
        }
#undef ACC
#define ACC(q) a##q = _mm512_fmadd_ps(_mm512_loadu_ps(xr[q] + c), wv, a##q)
        for (; c < full; c += 16) {
            __m512 wv = _mm512_loadu_ps(w + c);
            DOT16(ACC);
        }
#undef ACC
#define ACC(q) a##q = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, xr[q] + c), wv, a##q)
        if (tail) {
            __m512 wv = _mm512_maskz_loadu_ps(mt, w + c);
            DOT16(ACC);
        }
#undef ACC
        __mmask16 rowm = dpt_kmask16(nr);
        __m512 r = glm_resid(loss, GLM_LOGITS(b), _mm512_maskz_loadu_ps(rowm, y + i0), rowm, &lacc,
                             &racc, hits);
        if (!g) continue;
        _mm512_store_ps(rbuf, r);
        /* four partial sums per chunk (rows q mod 4): one chain of 16
         * dependent FMAs would leave the FMA units waiting on latency */
        for (size_t cc = 0; cc < d; cc += 16) {
            __mmask16 mk = d - cc < 16 ? mt : (__mmask16)0xFFFF;
            __m512 g0 = _mm512_maskz_loadu_ps(mk, g + cc), g1 = _mm512_setzero_ps(), g2 = g1,
                   g3 = g1;
            for (size_t q = 0; q < RB; q += 4) {
                g0 = _mm512_fmadd_ps(_mm512_set1_ps(rbuf[q]), _mm512_maskz_loadu_ps(mk, xr[q] + cc),
                                     g0);
                g1 = _mm512_fmadd_ps(_mm512_set1_ps(rbuf[q + 1]),
                                     _mm512_maskz_loadu_ps(mk, xr[q + 1] + cc), g1);
                g2 = _mm512_fmadd_ps(_mm512_set1_ps(rbuf[q + 2]),
                                     _mm512_maskz_loadu_ps(mk, xr[q + 2] + cc), g2);
                g3 = _mm512_fmadd_ps(_mm512_set1_ps(rbuf[q + 3]),
                                     _mm512_maskz_loadu_ps(mk, xr[q + 3] + cc), g3);
            }
            g0 = _mm512_add_ps(_mm512_add_ps(g0, g1), _mm512_add_ps(g2, g3));
            _mm512_mask_storeu_ps(g + cc, mk, g0);
        }
    }
    if (gb) *gb += _mm512_reduce_add_pd(racc);
    return _mm512_reduce_add_pd(lacc);
}

/* the register kernel for its number of chunks, else the general one */
DPT_INLINE double glm_by_width(dpt_glm_loss loss, size_t rows, size_t d, const float *X, size_t ld,
                               const float *y, const float *w, float b, float *g, double *gb,
                               size_t *hits)
{
    switch ((d + 15) / 16) {
    case 1:
        return glm_regs(1, loss, rows, d, X, ld, y, w, b, g, gb, hits);
    case 2:
        return glm_regs(2, loss, rows, d, X, ld, y, w, b, g, gb, hits);
    case 3:
        return glm_regs(3, loss, rows, d, X, ld, y, w, b, g, gb, hits);
    case 4:
        return glm_regs(4, loss, rows, d, X, ld, y, w, b, g, gb, hits);
    }
    return glm_impl(loss, rows, d, X, ld, y, w, b, g, gb, hits);
}

/* out of line per loss, so the loss test is resolved outside the loops */
static __attribute__((noinline)) double glm_mse(size_t rows, size_t d, const float *X, size_t ld,
                                                const float *y, const float *w, float b, float *g,
                                                double *gb, size_t *hits)
{
    return glm_by_width(DPT_GLM_MSE, rows, d, X, ld, y, w, b, g, gb, hits);
}

static __attribute__((noinline)) double glm_bce(size_t rows, size_t d, const float *X, size_t ld,
                                                const float *y, const float *w, float b, float *g,
                                                double *gb, size_t *hits)
{
    return glm_by_width(DPT_GLM_BCE, rows, d, X, ld, y, w, b, g, gb, hits);
}

/* X:(rows,d) stride ld, y:(rows), w:(d), g:(d) or NULL; see kernels.h */
double dpt_k_glm_grad_f32_avx512(dpt_glm_loss loss, size_t rows, size_t d, const float *X,
                                 size_t ld, const float *y, const float *w, float b, float *g,
                                 double *gb, size_t *hits)
{
    return (loss == DPT_GLM_MSE ? glm_mse : glm_bce)(rows, d, X, ld, y, w, b, g, gb, hits);
}
