/* Fused single-pass gradient of a one-output linear model (linear regression,
 * logistic regression), AVX2+FMA. Each row of X is read from memory once:
 * blocks of 8 rows get their dot products (two groups of 4 accumulators),
 * the 8 residuals come out of one vector exp (and a division-free log1p for
 * the logistic loss), and the gradient update re-reads the block from L1.
 * For d <= 64 the gradient stays in registers across all rows, and the
 * residuals of block b+1 are issued before the update of block b so their
 * long exp/log chain overlaps it; above 64 the gradient is updated in L1.
 * Rows a few blocks ahead are prefetched: one core cannot reach its read
 * bandwidth from the hardware prefetchers alone with this much work per row. */
#include <immintrin.h>
#include <string.h>

#include "kernels/avx2/k_avx2.h"
#include "kernels/avx2/k_math_avx2.h"

#define GLM_RB 8 /* rows per block */
#ifndef GLM_PF_ROWS
#define GLM_PF_ROWS 64 /* software prefetch distance in rows */
#endif
#ifndef GLM_PF_HINT
#define GLM_PF_HINT _MM_HINT_T1 /* into L2: its miss queue is deeper than L1's fill buffers */
#endif
#ifndef GLM_PF_STEP
#define GLM_PF_STEP 64 /* bytes between prefetches: one per cache line */
#endif

/* Prefetch 8 rows x:(8,d) stride ld, every GLM_PF_STEP bytes. One core
 * alone cannot keep enough misses in flight from the hardware prefetchers
 * with this much work per row between loads; asking for the lines a few
 * blocks ahead closes the gap. */
DPT_INLINE void glm_prefetch(const float *x, size_t ld, size_t d)
{
    if (ld == d) { /* rows back to back: one run of lines */
        const char *p = (const char *)x, *e = (const char *)(x + GLM_RB * d);
        for (; p < e; p += GLM_PF_STEP) _mm_prefetch(p, GLM_PF_HINT);
        return;
    }
    for (size_t q = 0; q < GLM_RB; q++)
        for (size_t c = 0; c < d; c += GLM_PF_STEP / sizeof(float))
            _mm_prefetch((const char *)(x + q * ld + c), GLM_PF_HINT);
}

/* lane r = sum of a_r, for four accumulators */
DPT_INLINE __m128 hsum_4x8(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

/* Loss and residual of 8 rows from their logits z (rows past nr masked to 0);
 * adds the losses and residuals to lacc and racc in double. */
DPT_INLINE __m256 glm_resid(dpt_glm_loss loss, __m256 z, __m256 yv, __m256 rowm, __m256d *lacc,
                            __m256d *racc, size_t *hits)
{
    const __m256 zero = _mm256_setzero_ps();
    __m256 r;
    __m256d l0, l1;
    if (loss == DPT_GLM_MSE) {
        __m256 e = _mm256_and_ps(_mm256_sub_ps(z, yv), rowm);
        r = _mm256_add_ps(e, e);
        /* (double)e * e as the reference: exact squares, summed in double */
        l0 = _mm256_cvtps_pd(_mm256_castps256_ps128(e));
        l1 = _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1));
        l0 = _mm256_mul_pd(l0, l0);
        l1 = _mm256_mul_pd(l1, l1);
    } else {
        /* l = max(z,0) - z y + log1p(e^-|z|), one exp for both l and r.
         * r = sigmoid(z) - y as s - y for z < 0 and (1 - y) - s for z >= 0,
         * s = sigmoid(-|z|) = t/(1+t): no cancellation when y is 0 or 1 */
        const __m256 one = _mm256_set1_ps(1.0f);
        __m256 t = dpt_exp8(_mm256_sub_ps(zero, dpt_abs8(z)));
        __m256 s = _mm256_div_ps(t, _mm256_add_ps(one, t));
        __m256 neg = _mm256_cmp_ps(z, zero, _CMP_LT_OQ);
        r = _mm256_blendv_ps(_mm256_sub_ps(_mm256_sub_ps(one, yv), s), _mm256_sub_ps(s, yv), neg);
        r = _mm256_and_ps(r, rowm);
        __m256 l =
            _mm256_add_ps(_mm256_fnmadd_ps(z, yv, _mm256_max_ps(z, zero)), dpt_log1p8_unit(t));
        l = _mm256_and_ps(l, rowm);
        l0 = _mm256_cvtps_pd(_mm256_castps256_ps128(l));
        l1 = _mm256_cvtps_pd(_mm256_extractf128_ps(l, 1));
        if (hits) { /* rows of the block with (z > 0) == (y > 0.5) */
            __m256 zp = _mm256_cmp_ps(z, zero, _CMP_GT_OQ);
            __m256 yp = _mm256_cmp_ps(yv, _mm256_set1_ps(0.5f), _CMP_GT_OQ);
            *hits += (size_t)__builtin_popcount(
                (unsigned)_mm256_movemask_ps(_mm256_andnot_ps(_mm256_xor_ps(zp, yp), rowm)));
        }
    }
    *lacc = _mm256_add_pd(*lacc, _mm256_add_pd(l0, l1));
    *racc = _mm256_add_pd(*racc, _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(r)),
                                               _mm256_cvtps_pd(_mm256_extractf128_ps(r, 1))));
    return r;
}

/* chunk c of row x: full, or masked when it is the last one */
#define XC(x, c)                                                                                   \
    ((c) + 1 < NC ? _mm256_loadu_ps((x) + 8 * (c)) : _mm256_maskload_ps((x) + 8 * (c), ml))
#define GUPD(c, gc)                                                                                \
    if (NC > (c)) gc = _mm256_fmadd_ps(rq, XC(xq, c), gc)

/* Stage 1 of a block of 8 rows x0 + q*ld, q < 8 (all valid: a partial block
 * is copied into a zero-padded local block first): logits, losses and the 8
 * residuals, stored to rb. */
#define GLM_RESID(x0, ld, yv, rowm, rb)                                                            \
    do {                                                                                           \
        __m128 zq[2];                                                                              \
        for (int h = 0; h < 2; h++) {                                                              \
            const float *xh = (x0) + (size_t)(4 * h) * (ld);                                       \
            __m256 a0 = zero, a1 = zero, a2 = zero, a3 = zero;                                     \
            for (int c = 0; c < NC; c++) {                                                         \
                /* w re-read from L1 per chunk: holding it too would spill g */                    \
                __m256 wv = XC(w, c);                                                              \
                a0 = _mm256_fmadd_ps(XC(xh, c), wv, a0);                                           \
                a1 = _mm256_fmadd_ps(XC(xh + (ld), c), wv, a1);                                    \
                a2 = _mm256_fmadd_ps(XC(xh + 2 * (ld), c), wv, a2);                                \
                a3 = _mm256_fmadd_ps(XC(xh + 3 * (ld), c), wv, a3);                                \
                __asm__ volatile("" ::: "memory");                                                 \
            }                                                                                      \
            zq[h] = hsum_4x8(a0, a1, a2, a3);                                                      \
        }                                                                                          \
        __m256 z = _mm256_add_ps(_mm256_set_m128(zq[1], zq[0]), vb);                               \
        _mm256_store_ps((rb), glm_resid(loss, z, (yv), (rowm), &lacc, &racc, hits));               \
    } while (0)

/* Stage 2: g += r_q x_q, row by row so each g lane accumulates in the
 * reference's order; x is re-read from L1, not kept from stage 1. */
#define GLM_UPDATE(x0, ld, rb)                                                                     \
    do {                                                                                           \
        for (int q = 0; q < GLM_RB; q++) {                                                         \
            __m256 rq = _mm256_broadcast_ss((rb) + q);                                             \
            const float *xq = (x0) + (size_t)q * (ld);                                             \
            GUPD(0, g0);                                                                           \
            GUPD(1, g1);                                                                           \
            GUPD(2, g2);                                                                           \
            GUPD(3, g3);                                                                           \
            GUPD(4, g4);                                                                           \
            GUPD(5, g5);                                                                           \
            GUPD(6, g6);                                                                           \
            GUPD(7, g7);                                                                           \
            __asm__ volatile("" ::: "memory");                                                     \
        }                                                                                          \
    } while (0)

/* NC in 1..8: d in (8(NC-1), 8NC], gradient held in NC named registers
 * (an array would be spilled) across all rows. Software-pipelined: the
 * residuals of block b+1 (a long dependent chain through exp and log) are
 * issued before the gradient update of block b, so the two overlap. */
DPT_INLINE double glm_regs(const int NC, dpt_glm_loss loss, size_t rows, size_t d, const float *X,
                           size_t ld, const float *y, const float *w, float b, float *g, double *gb,
                           size_t *hits)
{
    __m256i ml = dpt_mask8((d & 7) ? (d & 7) : 8); /* mask of the last chunk */
    const __m256 zero = _mm256_setzero_ps();
    __m256 g0 = zero, g1 = zero, g2 = zero, g3 = zero, g4 = zero, g5 = zero, g6 = zero, g7 = zero;
    if (g) {
        if (NC > 0) g0 = XC(g, 0);
        if (NC > 1) g1 = XC(g, 1);
        if (NC > 2) g2 = XC(g, 2);
        if (NC > 3) g3 = XC(g, 3);
        if (NC > 4) g4 = XC(g, 4);
        if (NC > 5) g5 = XC(g, 5);
        if (NC > 6) g6 = XC(g, 6);
        if (NC > 7) g7 = XC(g, 7);
    }
    const __m256 vb = _mm256_set1_ps(b);
    const __m256 allrows = _mm256_castsi256_ps(dpt_mask8(8));
    __m256d lacc = _mm256_setzero_pd(), racc = lacc;
    float rb[2][GLM_RB] __attribute__((aligned(32)));
    size_t nfull = rows / GLM_RB;
    if (nfull) GLM_RESID(X, ld, _mm256_loadu_ps(y), allrows, rb[0]);
    for (size_t bi = 0; bi < nfull; bi++) {
        const float *x0 = X + bi * GLM_RB * ld;
        if (bi + 1 < nfull) {
            const float *x1 = x0 + GLM_RB * ld;
            if ((bi + 1) * GLM_RB + GLM_PF_ROWS + GLM_RB <= rows)
                glm_prefetch(x1 + GLM_PF_ROWS * ld, ld, d);
            GLM_RESID(x1, ld, _mm256_loadu_ps(y + (bi + 1) * GLM_RB), allrows, rb[(bi + 1) & 1]);
        }
        if (g) GLM_UPDATE(x0, ld, rb[bi & 1]);
    }
    size_t i0 = nfull * GLM_RB;
    if (i0 < rows) {
        /* the last rows, copied into a zero-padded block: 0 * 0 adds nothing */
        size_t nr = rows - i0;
        float xb[GLM_RB * 64] __attribute__((aligned(32)));
        memset(xb, 0, sizeof xb);
        for (size_t q = 0; q < nr; q++)
            memcpy(xb + q * 8 * NC, X + (i0 + q) * ld, d * sizeof(float));
        __m256i rm = dpt_mask8(nr);
        GLM_RESID(xb, (size_t)(8 * NC), _mm256_maskload_ps(y + i0, rm), _mm256_castsi256_ps(rm),
                  rb[0]);
        if (g) GLM_UPDATE(xb, (size_t)(8 * NC), rb[0]);
    }
    if (g) {
        __m256 gv[8] = {g0, g1, g2, g3, g4, g5, g6, g7};
        for (int c = 0; c + 1 < NC; c++) _mm256_storeu_ps(g + 8 * c, gv[c]);
        _mm256_maskstore_ps(g + 8 * (NC - 1), ml, gv[NC - 1]);
    }
    if (gb) *gb += dpt_hsum4d(racc);
    return dpt_hsum4d(lacc);
}

/* any d: the gradient is updated in memory (L1) chunk by chunk, 8 rows at a time */
DPT_INLINE double glm_mem(dpt_glm_loss loss, size_t rows, size_t d, const float *X, size_t ld,
                          const float *y, const float *w, float b, float *g, double *gb,
                          size_t *hits)
{
    size_t tail = d & 7, full = d - tail;
    __m256i mt = dpt_mask8(tail);
    const __m256 zero = _mm256_setzero_ps(), vb = _mm256_set1_ps(b);
    __m256d lacc = _mm256_setzero_pd(), racc = lacc;
    float rbuf[GLM_RB] __attribute__((aligned(32)));
    for (size_t i0 = 0; i0 < rows; i0 += GLM_RB) {
        size_t nr = rows - i0 < GLM_RB ? rows - i0 : GLM_RB;
        const float *x0 = X + i0 * ld;
        if (i0 + GLM_PF_ROWS + GLM_RB <= rows) glm_prefetch(x0 + GLM_PF_ROWS * ld, ld, d);
        const float *xr[GLM_RB];
        for (size_t r = 0; r < GLM_RB; r++) xr[r] = r < nr ? x0 + r * ld : x0;
        __m128 zq[2];
        for (int h = 0; h < 2; h++) {
            const float *const *xh = xr + 4 * h;
            __m256 a0 = zero, a1 = zero, a2 = zero, a3 = zero;
            size_t c = 0;
            for (; c < full; c += 8) {
                __m256 wv = _mm256_loadu_ps(w + c);
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(xh[0] + c), wv, a0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(xh[1] + c), wv, a1);
                a2 = _mm256_fmadd_ps(_mm256_loadu_ps(xh[2] + c), wv, a2);
                a3 = _mm256_fmadd_ps(_mm256_loadu_ps(xh[3] + c), wv, a3);
            }
            if (tail) {
                __m256 wv = _mm256_maskload_ps(w + c, mt);
                a0 = _mm256_fmadd_ps(_mm256_maskload_ps(xh[0] + c, mt), wv, a0);
                a1 = _mm256_fmadd_ps(_mm256_maskload_ps(xh[1] + c, mt), wv, a1);
                a2 = _mm256_fmadd_ps(_mm256_maskload_ps(xh[2] + c, mt), wv, a2);
                a3 = _mm256_fmadd_ps(_mm256_maskload_ps(xh[3] + c, mt), wv, a3);
            }
            zq[h] = hsum_4x8(a0, a1, a2, a3);
        }
        __m256 z = _mm256_add_ps(_mm256_set_m128(zq[1], zq[0]), vb);
        __m256 rowm = _mm256_castsi256_ps(dpt_mask8(nr));
        __m256 yv = nr == GLM_RB ? _mm256_loadu_ps(y + i0)
                                 : _mm256_maskload_ps(y + i0, _mm256_castps_si256(rowm));
        __m256 r = glm_resid(loss, z, yv, rowm, &lacc, &racc, hits);
        if (!g) continue;
        _mm256_store_ps(rbuf, r);
        /* rows past nr have r = 0 and point at a valid row: adding 0 x is harmless */
        __m256 rq[GLM_RB];
        for (size_t q = 0; q < GLM_RB; q++) rq[q] = _mm256_broadcast_ss(rbuf + q);
        size_t c = 0;
        for (; c < full; c += 8) {
            __m256 gv = _mm256_loadu_ps(g + c);
            for (size_t q = 0; q < GLM_RB; q++)
                gv = _mm256_fmadd_ps(rq[q], _mm256_loadu_ps(xr[q] + c), gv);
            _mm256_storeu_ps(g + c, gv);
        }
        if (tail) {
            __m256 gv = _mm256_maskload_ps(g + c, mt);
            for (size_t q = 0; q < GLM_RB; q++)
                gv = _mm256_fmadd_ps(rq[q], _mm256_maskload_ps(xr[q] + c, mt), gv);
            _mm256_maskstore_ps(g + c, mt, gv);
        }
    }
    if (gb) *gb += dpt_hsum4d(racc);
    return dpt_hsum4d(lacc);
}

DPT_INLINE double glm_impl(const int NC, dpt_glm_loss loss, size_t rows, size_t d, const float *X,
                           size_t ld, const float *y, const float *w, float b, float *g, double *gb,
                           size_t *hits)
{
    if (NC) return glm_regs(NC, loss, rows, d, X, ld, y, w, b, g, gb, hits);
    return glm_mem(loss, rows, d, X, ld, y, w, b, g, gb, hits);
}

/* one out-of-line instance per (loss, NC): each keeps its gradient registers */
#define GLM_INSTANCE(nc)                                                                           \
    static __attribute__((noinline)) double glm_mse_##nc(                                          \
        size_t rows, size_t d, const float *X, size_t ld, const float *y, const float *w, float b, \
        float *g, double *gb, size_t *hits)                                                        \
    {                                                                                              \
        return glm_impl(nc, DPT_GLM_MSE, rows, d, X, ld, y, w, b, g, gb, hits);                    \
    }                                                                                              \
    static __attribute__((noinline)) double glm_bce_##nc(                                          \
        size_t rows, size_t d, const float *X, size_t ld, const float *y, const float *w, float b, \
        float *g, double *gb, size_t *hits)                                                        \
    {                                                                                              \
        return glm_impl(nc, DPT_GLM_BCE, rows, d, X, ld, y, w, b, g, gb, hits);                    \
    }
GLM_INSTANCE(0)
GLM_INSTANCE(1)
GLM_INSTANCE(2)
GLM_INSTANCE(3)
GLM_INSTANCE(4)
GLM_INSTANCE(5)
GLM_INSTANCE(6)
GLM_INSTANCE(7)
GLM_INSTANCE(8)

typedef double (*glm_fn)(size_t, size_t, const float *, size_t, const float *, const float *, float,
                         float *, double *, size_t *);

/* X:(rows,d) stride ld, y:(rows), w:(d), g:(d) or NULL; see kernels.h */
double dpt_k_glm_grad_f32_avx2(dpt_glm_loss loss, size_t rows, size_t d, const float *X, size_t ld,
                               const float *y, const float *w, float b, float *g, double *gb,
                               size_t *hits)
{
    static const glm_fn mse[9] = {glm_mse_0, glm_mse_1, glm_mse_2, glm_mse_3, glm_mse_4,
                                  glm_mse_5, glm_mse_6, glm_mse_7, glm_mse_8};
    static const glm_fn bce[9] = {glm_bce_0, glm_bce_1, glm_bce_2, glm_bce_3, glm_bce_4,
                                  glm_bce_5, glm_bce_6, glm_bce_7, glm_bce_8};
    size_t nc = (d + 7) / 8;
    if (nc > 8) nc = 0;
    return (loss == DPT_GLM_MSE ? mse : bce)[nc](rows, d, X, ld, y, w, b, g, gb, hits);
}
