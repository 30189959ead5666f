/* The optimizer step, AVX-512: the scalar kernel's float operations in its
 * order, 16 lanes at a time. This file alone is built with -ffp-contract=off
 * and uses separate mul/add intrinsics, so no a*b+c is fused and every table
 * gives the same bits (kernels.h). Tails are masked. */
#include <immintrin.h>
#include <string.h>

#include "kernels/avx512/k_avx512.h"
#include "kernels/avx512/k_math_avx512.h"

/* lanes of x that are inf or nan: x - x is 0 elsewhere */
DPT_INLINE __mmask16 nonfinite16(__m512 x)
{
    return _mm512_cmp_ps_mask(_mm512_sub_ps(x, x), _mm512_setzero_ps(), _CMP_NEQ_UQ);
}

DPT_INLINE __m512 update16(dpt_update_rule rule, __m512 w, __m512 gs, __m512 *v, __m512 vgs,
                           __m512 vwd, __m512 vmu, __m512 vlr, __mmask16 *bad)
{
    __m512 g = _mm512_add_ps(_mm512_mul_ps(vgs, gs), _mm512_mul_ps(vwd, w));
    *bad |= nonfinite16(g);
    switch (rule) {
    case DPT_UPDATE_PLAIN:
        return _mm512_sub_ps(w, _mm512_mul_ps(vlr, g));
    case DPT_UPDATE_MOMENTUM:
        *v = _mm512_add_ps(_mm512_mul_ps(vmu, *v), g);
        return _mm512_sub_ps(w, _mm512_mul_ps(vlr, *v));
    default:
        *v = _mm512_add_ps(_mm512_mul_ps(vmu, *v), g);
        return _mm512_sub_ps(w, _mm512_mul_ps(vlr, _mm512_add_ps(g, _mm512_mul_ps(vmu, *v))));
    }
}

/* w[0, wlen) may be prefetched, wlen >= n */
static int update_block(dpt_update_rule rule, size_t n, size_t wlen, float *w, const float *gsum,
                        float *v, float gscale, float wd, float mu, float lr)
{
    const __m512 vgs = _mm512_set1_ps(gscale), vwd = _mm512_set1_ps(wd), vmu = _mm512_set1_ps(mu),
                 vlr = _mm512_set1_ps(lr);
    const int vel = rule != DPT_UPDATE_PLAIN;
    __mmask16 bad = 0;
    __m512 vv = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        /* w is shared with the other threads' forward pass: ask for its
         * lines ahead (PREFETCHW), as the AVX2 kernel does */
        if (i + DPT_UPDATE_PREFETCH < wlen) __builtin_prefetch(w + i + DPT_UPDATE_PREFETCH, 1, 3);
        if (vel) vv = _mm512_loadu_ps(v + i);
        __m512 nw = update16(rule, _mm512_loadu_ps(w + i), _mm512_loadu_ps(gsum + i), &vv, vgs, vwd,
                             vmu, vlr, &bad);
        bad |= nonfinite16(nw);
        _mm512_storeu_ps(w + i, nw);
        if (vel) _mm512_storeu_ps(v + i, vv);
    }
    if (i < n) {
        __mmask16 m = dpt_kmask16(n - i);
        /* masked-off lanes compute on zeros: finite, never stored */
        if (vel) vv = _mm512_maskz_loadu_ps(m, v + i);
        __m512 nw = update16(rule, _mm512_maskz_loadu_ps(m, w + i),
                             _mm512_maskz_loadu_ps(m, gsum + i), &vv, vgs, vwd, vmu, vlr, &bad);
        bad |= nonfinite16(nw);
        _mm512_mask_storeu_ps(w + i, m, nw);
        if (vel) _mm512_mask_storeu_ps(v + i, m, vv);
    }
    return bad != 0;
}

/* gsum = ((gs[0] + gs[1]) + gs[2]) + ... block by block in an L1 buffer,
 * then the step; see kernels.h */
int dpt_k_update_f32_avx512(dpt_update_rule rule, size_t n, size_t ahead, float *w,
                            const float *const *gs, int ng, size_t goff, float *v, float gscale,
                            float wd, float mu, float lr)
{
    if (ng == 1) return update_block(rule, n, ahead, w, gs[0] + goff, v, gscale, wd, mu, lr);
    float acc[DPT_UPDATE_BLOCK] __attribute__((aligned(64)));
    int bad = 0;
    for (size_t b0 = 0; b0 < n; b0 += DPT_UPDATE_BLOCK) {
        size_t nb = n - b0 < DPT_UPDATE_BLOCK ? n - b0 : DPT_UPDATE_BLOCK;
        memcpy(acc, gs[0] + goff + b0, nb * sizeof(float));
        for (int u = 1; u < ng; u++) dpt_k_add_f32_avx512(nb, gs[u] + goff + b0, acc);
        bad |=
            update_block(rule, nb, ahead - b0, w + b0, acc, v ? v + b0 : NULL, gscale, wd, mu, lr);
    }
    return bad;
}
