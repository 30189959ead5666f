/* The fused tiny MLP (d-h-1, ReLU, MSE), AVX-512: the AVX2 kernel's
 * algorithm (see k_tiny_avx2.c) with 16 rows per __m512 and a 128-row chunk;
 * X's rows are transposed 8 x 8 in AVX2 registers, two halves per vector.
 * With 32 registers the forward pass keeps a row vector's inputs in
 * registers for all hidden units and gW1 takes 4 x 5 tiles. The
 * accumulators lie in one array in g's order (gW1, gb1, gW2, gb2) where no
 * padding is needed, so that a call's lane sums go sixteen at a time.
 * The same results as the scalar reference within float rounding, not the
 * same bits (sums per lane, then across lanes). */
#include <immintrin.h>
#include <string.h>

#include "kernels/avx2/k_transpose_avx2.h"
#include "kernels/avx512/k_avx512.h"
#include "kernels/avx512/k_math_avx512.h"
#include "kernels/k_prefetch.h"

#define TV     8 /* row vectors per chunk: 128 rows */
#define JB     4 /* gW1 tile: hidden units ... */
#define KB     5 /* ... by inputs (20 accumulators, 9 loads per 20 FMAs) */
#define DP_MAX ((DPT_TINY_MAX_D + KB - 1) / KB * KB)
#define HP_MAX ((DPT_TINY_MAX_H + JB - 1) / JB * JB)

/* Thread-local like the SGEMM's pack buffers: the kernel never allocates.
 * About 48 KiB in use for 10-20-1 (L1 and L2). */
static _Thread_local __m512 xT[TV][DP_MAX], aT[TV][DPT_TINY_MAX_H], dzT[TV][HP_MAX];
static _Thread_local __m512 acc[HP_MAX * DP_MAX + 2 * DPT_TINY_MAX_H + 1];

/* g[i] += the lane sum of a[i], i < 16: dpt_hsum16's adds in its order
 * (halves, quarters, then elements 0+2, 1+3 and 0+1) for 16 vectors at
 * once, as a transpose: 46 instructions instead of 128. A 128-row call
 * spent a quarter of its time in the lane sums and the zeroing. */
DPT_INLINE void hsum16x16_add(const __m512 *a, float *g)
{
    __m512 w[8], x[4], y[2];
    for (int i = 0; i < 8; i++) /* lanes 0+2 and 1+3 of a[2i], a[2i+1] */
        w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44),
                             _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xEE));
    for (int i = 0; i < 4; i++) /* then 0+1: lane q holds a[4i + q]'s 4 sums */
        x[i] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], 0xDD));
    for (int i = 0; i < 2; i++) /* elements 0+2, 1+3 */
        y[i] = _mm512_add_ps(_mm512_shuffle_ps(x[2 * i], x[2 * i + 1], 0x44),
                             _mm512_shuffle_ps(x[2 * i], x[2 * i + 1], 0xEE));
    /* 0+1: element 4q + m holds a[q + 4m]'s sum */
    __m512 z =
        _mm512_add_ps(_mm512_shuffle_ps(y[0], y[1], 0x88), _mm512_shuffle_ps(y[0], y[1], 0xDD));
    const __m512i idx = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    _mm512_storeu_ps(g, _mm512_add_ps(_mm512_loadu_ps(g), _mm512_permutexvar_ps(idx, z)));
}

/* rows i0.. i0+nr-1 (nr <= 16) of X, columns c0.. c0+nc-1 (nc <= 8), into
 * xT[t][c0..]: missing rows repeat the last one (their residual is zeroed) */
DPT_INLINE void load_cols(const float *X, size_t ld, size_t i0, size_t nr, size_t c0, size_t nc,
                          __m512 *dst)
{
    __mmask8 m = (__mmask8)((1u << nc) - 1);
    __m256 v[8], w[8];
    for (size_t q = 0; q < 8; q++) {
        v[q] = _mm256_maskz_loadu_ps(m, X + (i0 + (q < nr ? q : nr - 1)) * ld + c0);
        w[q] = _mm256_maskz_loadu_ps(m, X + (i0 + (q + 8 < nr ? q + 8 : nr - 1)) * ld + c0);
    }
    transpose8(v);
    transpose8(w);
    for (size_t k = 0; k < nc; k++)
        dst[c0 + k] = _mm512_insertf32x8(_mm512_castps256_ps512(v[k]), w[k], 1);
}

DPT_INLINE double tiny_body(const int GRAD, size_t rows, const size_t d, const size_t h,
                            const float *X, size_t ld, const float *y, const float *p, float *g)
{
    const float *W1 = p, *b1 = p + h * d, *W2 = b1 + h, b2 = W2[h];
    /* GRAD 0 (g NULL): the loss alone, and no offsets from a null pointer */
    float *gW1 = g, *gb1 = GRAD ? g + h * d : g, *gW2 = GRAD ? gb1 + h : g,
          *gb2 = GRAD ? gW2 + h : g;
    const size_t dp = (d + KB - 1) / KB * KB, hp = (h + JB - 1) / JB * JB;
    const __m512 zero = _mm512_setzero_ps();
    __m512 *accW1 = acc, *accb1 = acc + hp * dp, *accW2 = accb1 + h;
    for (size_t t = 0; t < TV; t++) {
        for (size_t k = d; k < dp; k++) xT[t][k] = zero; /* padding of the tiles */
        for (size_t j = h; j < hp; j++) dzT[t][j] = zero;
    }
    __m512 accb2 = zero, o[TV], r[TV];
    __m512d l = _mm512_setzero_pd();
    for (size_t r0 = 0; r0 < rows; r0 += 16 * TV) {
        const size_t nt = rows - r0 >= 16 * TV ? TV : (rows - r0 + 15) / 16;
        /* the first chunk starts the accumulators from a register zero
         * (the same adds as from zeroed memory, without zeroing 15 KiB) */
        const int first = r0 == 0;
        for (size_t t = 0; t < nt; t++) {
            size_t i0 = r0 + 16 * t, nr = rows - i0 < 16 ? rows - i0 : 16;
            /* the same rows one chunk ahead: the masked row loads leave the
             * hardware prefetchers behind when X streams from memory */
            dpt_prefetch_ahead(X + i0 * ld, 16 * TV * ld * sizeof(float), 16 * ld * sizeof(float));
            load_cols(X, ld, i0, nr, 0, d < 8 ? d : 8, xT[t]);
            if (d > 8) load_cols(X, ld, i0, nr, 8, d - 8, xT[t]);
            o[t] = _mm512_set1_ps(b2);
        }
        /* forward, a row vector at a time: its d inputs stay in registers
         * for all h units, the weights are broadcast from L1 */
        for (size_t t = 0; t < nt; t++) {
            __m512 x[DPT_TINY_MAX_D], ot = o[t];
            for (size_t k = 0; k < d; k++) x[k] = xT[t][k];
            for (size_t j = 0; j < h; j++) {
                const float *wj = W1 + j * d;
                /* two partial sums: half the FMA latency chain */
                __m512 z0 = _mm512_set1_ps(b1[j]), z1 = zero;
                size_t k = 0;
                for (; k + 2 <= d; k += 2) {
                    z0 = _mm512_fmadd_ps(_mm512_set1_ps(wj[k]), x[k], z0);
                    z1 = _mm512_fmadd_ps(_mm512_set1_ps(wj[k + 1]), x[k + 1], z1);
                }
                if (k < d) z0 = _mm512_fmadd_ps(_mm512_set1_ps(wj[k]), x[k], z0);
                __m512 a = _mm512_max_ps(_mm512_add_ps(z0, z1), zero);
                aT[t][j] = a;
                ot = _mm512_fmadd_ps(_mm512_set1_ps(W2[j]), a, ot);
            }
            o[t] = ot;
        }
        for (size_t t = 0; t < nt; t++) {
            size_t i0 = r0 + 16 * t, nr = rows - i0 < 16 ? rows - i0 : 16;
            __mmask16 m = (__mmask16)((1u << nr) - 1);
            __m512 e = _mm512_maskz_sub_ps(m, o[t], _mm512_maskz_loadu_ps(m, y + i0));
            __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(e));
            __m512d hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1));
            l = _mm512_fmadd_pd(lo, lo, l);
            l = _mm512_fmadd_pd(hi, hi, l);
            r[t] = _mm512_add_ps(e, e);
            accb2 = _mm512_add_ps(accb2, r[t]);
        }
        if (!GRAD) continue;
        for (size_t j = 0; j < h; j++) {
            const __m512 w2 = _mm512_set1_ps(W2[j]);
            __m512 sw = zero, sb = zero;
            for (size_t t = 0; t < nt; t++) {
                __m512 a = aT[t][j];
                sw = _mm512_fmadd_ps(r[t], a, sw);
                __m512 dz = _mm512_maskz_mul_ps(_mm512_cmp_ps_mask(a, zero, _CMP_GT_OQ), r[t], w2);
                dzT[t][j] = dz;
                sb = _mm512_add_ps(sb, dz);
            }
            accW2[j] = _mm512_add_ps(first ? zero : accW2[j], sw);
            accb1[j] = _mm512_add_ps(first ? zero : accb1[j], sb);
        }
        for (size_t j = 0; j < hp; j += JB)
            for (size_t k0 = 0; k0 < dp; k0 += KB) {
                __m512 c[JB][KB];
                for (size_t u = 0; u < JB; u++)
                    for (size_t q = 0; q < KB; q++)
                        c[u][q] = first ? zero : accW1[(j + u) * dp + k0 + q];
                for (size_t t = 0; t < nt; t++)
                    for (size_t q = 0; q < KB; q++) {
                        __m512 x = xT[t][k0 + q];
                        for (size_t u = 0; u < JB; u++)
                            c[u][q] = _mm512_fmadd_ps(dzT[t][j + u], x, c[u][q]);
                    }
                for (size_t u = 0; u < JB; u++)
                    for (size_t q = 0; q < KB; q++) accW1[(j + u) * dp + k0 + q] = c[u][q];
            }
    }
    if (!GRAD) return dpt_hsum8d(l);
    if (dp == d && hp == h) { /* acc is laid out as g: sixteen lane sums at a time */
        const size_t n = h * d + 2 * h + 1;
        size_t i = 0;
        accW2[h] = accb2;
        for (; i + 16 <= n; i += 16) hsum16x16_add(acc + i, g + i);
        for (; i < n; i++) g[i] += dpt_hsum16(acc[i]);
    } else {
        for (size_t j = 0; j < h; j++) {
            for (size_t k = 0; k < d; k++) gW1[j * d + k] += dpt_hsum16(accW1[j * dp + k]);
            gb1[j] += dpt_hsum16(accb1[j]);
            gW2[j] += dpt_hsum16(accW2[j]);
        }
        *gb2 += dpt_hsum16(accb2);
    }
    return dpt_hsum8d(l);
}

double dpt_k_mlp_tiny_grad_f32_avx512(size_t rows, size_t d, size_t h, const float *X, size_t ld,
                                      const float *y, const float *p, float *g)
{
    if (rows == 0) return 0;
    if (!g) { /* the loss alone: the forward pass */
        if (d == 10 && h == 20) return tiny_body(0, rows, 10, 20, X, ld, y, p, NULL);
        return tiny_body(0, rows, d, h, X, ld, y, p, NULL);
    }
    dpt_prefetch_params(p, g, h * d + 2 * h + 1);
    /* mlp-seed's shape with every loop bound a constant: unrolled, in registers */
    if (d == 10 && h == 20) return tiny_body(1, rows, 10, 20, X, ld, y, p, g);
    return tiny_body(1, rows, d, h, X, ld, y, p, g);
}
