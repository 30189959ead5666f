/* Vectorized float math for the AVX-512 kernels: the AVX2 helpers'
 * polynomials (exp, log, log1p, tanh, sigmoid; k_math_avx2.h gives their
 * measured error) on 16 lanes, with opmask blends, plus tail masks and
 * horizontal sums. Include only from files compiled with the AVX-512 flags. */
#ifndef DPT_K_MATH_AVX512_H
#define DPT_K_MATH_AVX512_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define DPT_INLINE static inline __attribute__((always_inline))

/* lanes [0, n) set, n in 0..16 */
DPT_INLINE __mmask16 dpt_kmask16(size_t n)
{
    return (__mmask16)((1u << n) - 1u);
}

DPT_INLINE float dpt_hsum16(__m512 v)
{
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

DPT_INLINE double dpt_hsum8d(__m512d v)
{
    __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}

/* e^x, as dpt_exp8: x >= 88.73 gives +inf, x <= -103.98 gives 0, NaN stays */
DPT_INLINE __m512 dpt_exp16(__m512 x)
{
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 r2 = _mm512_mul_ps(r, r);
    p = _mm512_add_ps(_mm512_fmadd_ps(p, r2, r), _mm512_set1_ps(1.0f));
    /* 2^n in two normal halves, so denormal results come out right */
    __m512i ni = _mm512_cvtps_epi32(n);
    __m512i n1 = _mm512_srai_epi32(ni, 1);
    __m512i n2 = _mm512_sub_epi32(ni, n1);
    __m512i bias = _mm512_set1_epi32(127);
    __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, bias), 23));
    __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, bias), 23));
    return _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
}

/* the Cephes logf polynomial in f plus e log 2 in two parts */
DPT_INLINE __m512 dpt_log_poly16(__m512 f, __m512 e)
{
    __m512 z = _mm512_mul_ps(f, f);
    __m512 p = _mm512_set1_ps(7.0376836292e-2f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(-1.1514610310e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.1676998740e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(-1.2420140846e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.4249322787e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(-1.6668057665e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.0000714765e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(-2.4999993993e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(3.3333331174e-1f));
    __m512 y = _mm512_mul_ps(_mm512_mul_ps(p, f), z);
    y = _mm512_fmadd_ps(e, _mm512_set1_ps(-2.12194440e-4f), y);
    y = _mm512_fnmadd_ps(z, _mm512_set1_ps(0.5f), y);
    __m512 r = _mm512_add_ps(f, y);
    return _mm512_fmadd_ps(e, _mm512_set1_ps(0.693359375f), r);
}

/* log(x) as dpt_log8: denormals scaled first; 0 -> -inf, x < 0 -> NaN */
DPT_INLINE __m512 dpt_log16(__m512 x)
{
    const __m512 zero = _mm512_setzero_ps();
    __mmask16 tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(1.17549435e-38f), _CMP_LT_OQ);
    __m512 xs = _mm512_mask_mul_ps(x, tiny, x, _mm512_set1_ps(8388608.0f));
    __m512 eadj = _mm512_maskz_mov_ps(tiny, _mm512_set1_ps(23.0f));
    __m512i bits = _mm512_castps_si512(xs);
    __m512i ei = _mm512_sub_epi32(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(126));
    __m512 m = _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_and_si512(bits, _mm512_set1_epi32(0x007fffff)), _mm512_set1_epi32(0x3f000000)));
    __m512 e = _mm512_sub_ps(_mm512_cvtepi32_ps(ei), eadj);
    __mmask16 lo = _mm512_cmp_ps_mask(m, _mm512_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
    e = _mm512_mask_sub_ps(e, lo, e, _mm512_set1_ps(1.0f));
    __m512 f = _mm512_sub_ps(_mm512_mask_add_ps(m, lo, m, m), _mm512_set1_ps(1.0f));
    __m512 r = dpt_log_poly16(f, e);
    const __m512 inf = _mm512_set1_ps(__builtin_inff());
    r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(x, inf, _CMP_EQ_OQ), inf);
    r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(x, zero, _CMP_EQ_OQ),
                           _mm512_set1_ps(-__builtin_inff()));
    r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(x, zero, _CMP_NGE_UQ),
                           _mm512_set1_ps(__builtin_nanf("")));
    return r;
}

/* log(1 + t) for t in [0, 1], as dpt_log1p8_unit */
DPT_INLINE __m512 dpt_log1p16_unit(__m512 t)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 u = _mm512_add_ps(one, t);
    __mmask16 big = _mm512_cmp_ps_mask(u, _mm512_set1_ps(1.41421356237309505f), _CMP_GT_OQ);
    __m512 m = _mm512_mask_mul_ps(u, big, u, _mm512_set1_ps(0.5f));
    __m512 e = _mm512_maskz_mov_ps(big, one);
    __m512 f = _mm512_sub_ps(m, one);
    __m512 r = dpt_log_poly16(f, e);
    __m512 lost = _mm512_sub_ps(t, _mm512_sub_ps(u, one));
    /* rcp14 and one Newton step: 1/u to ~28 bits */
    __m512 q = _mm512_rcp14_ps(u);
    q = _mm512_mul_ps(q, _mm512_fnmadd_ps(u, q, _mm512_set1_ps(2.0f)));
    return _mm512_fmadd_ps(lost, q, r);
}

DPT_INLINE __m512 dpt_abs16(__m512 x)
{
    return _mm512_abs_ps(x);
}

/* 1 / (1 + e^-x) from t = e^-|x|, as dpt_sigmoid8_t */
DPT_INLINE __m512 dpt_sigmoid16_t(__m512 x, __m512 t)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 den = _mm512_add_ps(one, t);
    __m512 num = _mm512_mask_mov_ps(one, _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ), t);
    return _mm512_div_ps(num, den);
}

DPT_INLINE __m512 dpt_sigmoid16(__m512 x)
{
    return dpt_sigmoid16_t(x, dpt_exp16(_mm512_sub_ps(_mm512_setzero_ps(), dpt_abs16(x))));
}

/* tanh as dpt_tanh8: odd polynomial below |x| = 0.625, (1-t)/(1+t) above */
DPT_INLINE __m512 dpt_tanh16(__m512 x)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN));
    __m512 ax = dpt_abs16(x);
    __m512 t = dpt_exp16(_mm512_mul_ps(ax, _mm512_set1_ps(-2.0f)));
    __m512 big = _mm512_div_ps(_mm512_sub_ps(one, t), _mm512_add_ps(one, t));
    big = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(big), sign));
    __m512 z = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(-5.70498872745e-3f);
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(2.06390887954e-2f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-5.37397155531e-2f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(1.33314422036e-1f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-3.33332819422e-1f));
    __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, z), x, x);
    return _mm512_mask_mov_ps(small, _mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.625f), _CMP_GT_OQ),
                              big);
}

#endif
