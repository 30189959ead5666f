/* The fused tiny MLP (d-h-1, ReLU, MSE; mlp-seed's 10-20-1), AVX2+FMA.
 * The generic path runs such a network through SGEMM calls of a few columns
 * each, which spend more time on call overhead, packing and activations
 * written out than on arithmetic. Here rows sit in the vector lanes (8 per
 * __m256) and a chunk of 64 rows is carried through forward, loss and
 * backward in L1-resident scratch:
 *   1. X's rows transposed into xT[t][k] (8 rows of input k per vector);
 *   2. forward per hidden unit j, its d weights broadcast in registers and
 *      reused over the chunk's 8 row vectors;
 *   3. residuals r = 2 (o - y), lanes past the last row zeroed;
 *   4. per unit: gW2, gb1 and dz = r W2[j] [a > 0];
 *   5. gW1 += dz^T x as 2x5 register tiles over the chunk, into per-lane
 *      vector accumulators that are summed across lanes once, at the end.
 * The sums run in another order than the generic path's (per lane, then
 * across lanes): the same results within float rounding, not the same bits. */
#include <immintrin.h>
#include <string.h>

#include "kernels/avx2/k_avx2.h"
#include "kernels/avx2/k_math_avx2.h"
#include "kernels/avx2/k_transpose_avx2.h"
#include "kernels/k_prefetch.h"

#define TV     8 /* row vectors per chunk: 64 rows */
#define JB     2 /* gW1 tile: hidden units ... */
#define KB     5 /* ... by inputs (10 accumulators, 7 loads per 10 FMAs) */
#define DP_MAX ((DPT_TINY_MAX_D + KB - 1) / KB * KB)
#define HP_MAX ((DPT_TINY_MAX_H + JB - 1) / JB * JB)

/* Thread-local like the SGEMM's pack buffers: the kernel never allocates.
 * About 24 KiB in use for 10-20-1. */
static _Thread_local __m256 xT[TV][DP_MAX], aT[TV][DPT_TINY_MAX_H], dzT[TV][HP_MAX];
static _Thread_local __m256 accW1[HP_MAX * DP_MAX], accb1[DPT_TINY_MAX_H], accW2[DPT_TINY_MAX_H];

/* rows i0.. i0+nr-1 (nr <= 8) of X, columns c0.. c0+nc-1 (nc <= 8), into
 * xT[t][c0..]: missing rows repeat the last one (their residual is zeroed).
 * Whole 4-column halves are read plainly where the row stride holds them
 * (the lanes past nc are dropped), else through masks. */
DPT_INLINE void load_cols(const float *X, size_t ld, size_t i0, size_t nr, size_t c0, size_t nc,
                          __m256 *dst)
{
    const float *r[8];
    for (size_t q = 0; q < 8; q++) r[q] = X + (i0 + (q < nr ? q : nr - 1)) * ld + c0;
    __m256 v[8];
    const size_t nh = nc > 4 ? 2 : 1;
    if (c0 + 4 * nh <= ld) {
        if (nh == 2)
            transpose8_load(2, 0, r, NULL, v);
        else
            transpose8_load(1, 0, r, NULL, v);
    } else {
        __m256i m8 = dpt_mask8(nc);
        __m128i m[2] = {_mm256_castsi256_si128(m8), _mm256_extractf128_si256(m8, 1)};
        transpose8_load(2, 1, r, m, v);
    }
    for (size_t k = 0; k < nc; k++) dst[c0 + k] = v[k];
}

DPT_INLINE double tiny_body(const int GRAD, size_t rows, const size_t d, const size_t h,
                            const float *X, size_t ld, const float *y, const float *p, float *g)
{
    const float *W1 = p, *b1 = p + h * d, *W2 = b1 + h, b2 = W2[h];
    /* GRAD 0 (g NULL): the loss alone, and no offsets from a null pointer */
    float *gW1 = g, *gb1 = GRAD ? g + h * d : g, *gW2 = GRAD ? gb1 + h : g,
          *gb2 = GRAD ? gW2 + h : g;
    const size_t dp = (d + KB - 1) / KB * KB, hp = (h + JB - 1) / JB * JB;
    const __m256 zero = _mm256_setzero_ps();
    for (size_t t = 0; t < TV; t++) {
        for (size_t k = d; k < dp; k++) xT[t][k] = zero; /* padding of the tiles */
        for (size_t j = h; j < hp; j++) dzT[t][j] = zero;
    }
    __m256 accb2 = zero, o[TV], r[TV];
    __m256d l = _mm256_setzero_pd();
    for (size_t r0 = 0; r0 < rows; r0 += 8 * TV) {
        const size_t nt = rows - r0 >= 8 * TV ? TV : (rows - r0 + 7) / 8;
        /* the first chunk starts the accumulators from a register zero
         * (the same adds as from zeroed memory, without zeroing ~7 KiB
         * per call: a 128-row call spent ~5% of its time there) */
        const int first = r0 == 0;
        for (size_t t = 0; t < nt; t++) {
            size_t i0 = r0 + 8 * t, nr = rows - i0 < 8 ? rows - i0 : 8;
            /* the same rows one chunk ahead: the row loads leave the
             * hardware prefetchers behind when X streams from memory */
            dpt_prefetch_ahead(X + i0 * ld, 8 * TV * ld * sizeof(float), 8 * ld * sizeof(float));
            load_cols(X, ld, i0, nr, 0, d < 8 ? d : 8, xT[t]);
            if (d > 8) load_cols(X, ld, i0, nr, 8, d - 8, xT[t]);
            o[t] = _mm256_set1_ps(b2);
        }
        for (size_t j = 0; j < h; j++) {
            __m256 w[DPT_TINY_MAX_D];
            for (size_t k = 0; k < d; k++) w[k] = _mm256_broadcast_ss(W1 + j * d + k);
            const __m256 bj = _mm256_broadcast_ss(b1 + j), w2 = _mm256_broadcast_ss(W2 + j);
            for (size_t t = 0; t < nt; t++) {
                /* two partial sums: half the FMA latency chain */
                __m256 z0 = bj, z1 = zero;
                size_t k = 0;
                for (; k + 2 <= d; k += 2) {
                    z0 = _mm256_fmadd_ps(w[k], xT[t][k], z0);
                    z1 = _mm256_fmadd_ps(w[k + 1], xT[t][k + 1], z1);
                }
                if (k < d) z0 = _mm256_fmadd_ps(w[k], xT[t][k], z0);
                __m256 a = _mm256_max_ps(_mm256_add_ps(z0, z1), zero);
                aT[t][j] = a;
                o[t] = _mm256_fmadd_ps(w2, a, o[t]);
            }
        }
        for (size_t t = 0; t < nt; t++) {
            size_t i0 = r0 + 8 * t, nr = rows - i0 < 8 ? rows - i0 : 8;
            __m256i m = dpt_mask8(nr);
            __m256 e = _mm256_sub_ps(o[t], _mm256_maskload_ps(y + i0, m));
            e = _mm256_and_ps(e, _mm256_castsi256_ps(m));
            __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(e));
            __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1));
            l = _mm256_fmadd_pd(lo, lo, l);
            l = _mm256_fmadd_pd(hi, hi, l);
            r[t] = _mm256_add_ps(e, e);
            accb2 = _mm256_add_ps(accb2, r[t]);
        }
        if (!GRAD) continue;
        for (size_t j = 0; j < h; j++) {
            const __m256 w2 = _mm256_broadcast_ss(W2 + j);
            __m256 sw = zero, sb = zero;
            for (size_t t = 0; t < nt; t++) {
                __m256 a = aT[t][j];
                sw = _mm256_fmadd_ps(r[t], a, sw);
                __m256 dz =
                    _mm256_and_ps(_mm256_mul_ps(r[t], w2), _mm256_cmp_ps(a, zero, _CMP_GT_OQ));
                dzT[t][j] = dz;
                sb = _mm256_add_ps(sb, dz);
            }
            accW2[j] = _mm256_add_ps(first ? zero : accW2[j], sw);
            accb1[j] = _mm256_add_ps(first ? zero : accb1[j], sb);
        }
        for (size_t j = 0; j < hp; j += JB)
            for (size_t k0 = 0; k0 < dp; k0 += KB) {
                __m256 c[JB][KB];
                for (size_t u = 0; u < JB; u++)
                    for (size_t q = 0; q < KB; q++)
                        c[u][q] = first ? zero : accW1[(j + u) * dp + k0 + q];
                for (size_t t = 0; t < nt; t++)
                    for (size_t q = 0; q < KB; q++) {
                        __m256 x = xT[t][k0 + q];
                        /* one load for the JB FMAs: the compiler would fold it into each */
                        __asm__("" : "+x"(x));
                        for (size_t u = 0; u < JB; u++)
                            c[u][q] = _mm256_fmadd_ps(dzT[t][j + u], x, c[u][q]);
                    }
                for (size_t u = 0; u < JB; u++)
                    for (size_t q = 0; q < KB; q++) accW1[(j + u) * dp + k0 + q] = c[u][q];
            }
    }
    for (size_t j = 0; GRAD && j < h; j++) {
        for (size_t k = 0; k < d; k++) gW1[j * d + k] += dpt_hsum8(accW1[j * dp + k]);
        gb1[j] += dpt_hsum8(accb1[j]);
        gW2[j] += dpt_hsum8(accW2[j]);
    }
    if (GRAD) *gb2 += dpt_hsum8(accb2);
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(l), _mm256_extractf128_pd(l, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

double dpt_k_mlp_tiny_grad_f32_avx2(size_t rows, size_t d, size_t h, const float *X, size_t ld,
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
