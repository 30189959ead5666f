/* Vectorized float math for the AVX2 kernels: exp, log, log1p, tanh, sigmoid
 * on 8 lanes, plus tail masks and horizontal sums. Include only from files
 * compiled with -mavx2 -mfma.
 * Error against the exact result (double libm), measured over every float of
 * the domain: exp 1.01 ulp (x in (-104, 89)), log 0.83 ulp (all x > 0,
 * denormals too), tanh 1.51 ulp, sigmoid 2.40 ulp (x >= -87). The bounds
 * stated and tested in tests/kernels are 2, 2, 3 and 3 ulp. */
#ifndef DPT_K_MATH_AVX2_H
#define DPT_K_MATH_AVX2_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define DPT_INLINE static inline __attribute__((always_inline))

/* lanes [0, n) set, n in 0..8 */
DPT_INLINE __m256i dpt_mask8(size_t n)
{
    static const int32_t tab[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(tab + 8 - n));
}

DPT_INLINE float dpt_hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

DPT_INLINE double dpt_hsum4d(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}

DPT_INLINE float dpt_hmax8(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* e^x. Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial
 * (Cephes expf), scaled by 2^n in two halves so results down to the smallest
 * denormal come out right. x >= 88.73 gives +inf, x <= -103.98 gives 0, NaN
 * stays NaN. */
DPT_INLINE __m256 dpt_exp8(__m256 x)
{
    /* min/max return their second operand when one is NaN: keep x second */
    x = _mm256_min_ps(_mm256_set1_ps(89.0f), x);
    x = _mm256_max_ps(_mm256_set1_ps(-104.0f), x);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 r2 = _mm256_mul_ps(r, r);
    p = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0f));
    /* 2^n = 2^n1 * 2^n2 with n1 = floor(n/2): both halves are normal floats */
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1);
    __m256i n2 = _mm256_sub_epi32(ni, n1);
    __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

/* log(2^e (1 + f)) for f in [sqrt(1/2) - 1, sqrt(2) - 1]: the Cephes
 * logf polynomial in f, plus e log 2 in two parts (shared by log and log1p). */
DPT_INLINE __m256 dpt_log_poly8(__m256 f, __m256 e)
{
    __m256 z = _mm256_mul_ps(f, f);
    __m256 p = _mm256_set1_ps(7.0376836292e-2f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-1.1514610310e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.1676998740e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-1.2420140846e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.4249322787e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-1.6668057665e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.0000714765e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-2.4999993993e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(3.3333331174e-1f));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, f), z);
    y = _mm256_fmadd_ps(e, _mm256_set1_ps(-2.12194440e-4f), y);
    y = _mm256_fnmadd_ps(z, _mm256_set1_ps(0.5f), y);
    __m256 r = _mm256_add_ps(f, y);
    r = _mm256_fmadd_ps(e, _mm256_set1_ps(0.693359375f), r);
    return r;
}

/* log(x) (Cephes logf): x = 2^e m, m in [sqrt(1/2), sqrt(2)), degree-8
 * polynomial in f = m - 1. Denormals are scaled up first. log(0) = -inf,
 * log(x<0) = NaN, log(+inf) = +inf, NaN stays NaN. */
DPT_INLINE __m256 dpt_log8(__m256 x)
{
    const __m256 zero = _mm256_setzero_ps();
    __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(1.17549435e-38f), _CMP_LT_OQ);
    __m256 xs = _mm256_blendv_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(8388608.0f)), tiny);
    __m256 eadj = _mm256_and_ps(tiny, _mm256_set1_ps(23.0f));
    __m256i bits = _mm256_castps_si256(xs);
    __m256i ei = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(126));
    __m256 m = _mm256_castsi256_ps(_mm256_or_si256(
        _mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f000000)));
    __m256 e = _mm256_sub_ps(_mm256_cvtepi32_ps(ei), eadj);
    /* m in [0.5, 1): below sqrt(1/2) use 2m - 1 and e - 1, else m - 1 */
    __m256 lo = _mm256_cmp_ps(m, _mm256_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
    e = _mm256_sub_ps(e, _mm256_and_ps(lo, _mm256_set1_ps(1.0f)));
    __m256 f = _mm256_sub_ps(_mm256_add_ps(m, _mm256_and_ps(lo, m)), _mm256_set1_ps(1.0f));
    __m256 r = dpt_log_poly8(f, e);
    /* specials: x < 0 or NaN -> NaN, 0 -> -inf, +inf -> +inf */
    const __m256 inf = _mm256_set1_ps(__builtin_inff());
    r = _mm256_blendv_ps(r, inf, _mm256_cmp_ps(x, inf, _CMP_EQ_OQ));
    r = _mm256_blendv_ps(r, _mm256_set1_ps(-__builtin_inff()), _mm256_cmp_ps(x, zero, _CMP_EQ_OQ));
    r = _mm256_blendv_ps(r, _mm256_set1_ps(__builtin_nanf("")),
                         _mm256_cmp_ps(x, zero, _CMP_NGE_UQ));
    return r;
}

/* log(1 + t) for t in [0, 1] (the softplus of -|z|): u = 1 + t rounded lies
 * in [1, 2], so the exponent is 0 or 1 and no special case can occur; the
 * logf polynomial gives log(u), and (t - (u - 1)) / u restores what rounding
 * u lost. For t < 2^-24, u == 1 and the result is t itself. No division. */
DPT_INLINE __m256 dpt_log1p8_unit(__m256 t)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 u = _mm256_add_ps(one, t);
    __m256 big = _mm256_cmp_ps(u, _mm256_set1_ps(1.41421356237309505f), _CMP_GT_OQ);
    __m256 m = _mm256_mul_ps(u, _mm256_blendv_ps(one, _mm256_set1_ps(0.5f), big));
    __m256 e = _mm256_and_ps(big, one);
    __m256 f = _mm256_sub_ps(m, one);
    __m256 r = dpt_log_poly8(f, e);
    /* lost can be 1% of a tiny result: 1/u to ~22 bits (rcp and one Newton step) */
    __m256 lost = _mm256_sub_ps(t, _mm256_sub_ps(u, one));
    __m256 q = _mm256_rcp_ps(u);
    q = _mm256_mul_ps(q, _mm256_fnmadd_ps(u, q, _mm256_set1_ps(2.0f)));
    return _mm256_fmadd_ps(lost, q, r);
}

DPT_INLINE __m256 dpt_abs8(__m256 x)
{
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
}

/* 1 / (1 + e^-x) from t = e^-|x|: 1/(1+t) for x >= 0, t/(1+t) below, so
 * neither side loses relative accuracy (down to the denormal range). */
DPT_INLINE __m256 dpt_sigmoid8_t(__m256 x, __m256 t)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 den = _mm256_add_ps(one, t);
    __m256 num = _mm256_blendv_ps(one, t, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
    return _mm256_div_ps(num, den);
}

DPT_INLINE __m256 dpt_sigmoid8(__m256 x)
{
    return dpt_sigmoid8_t(x, dpt_exp8(_mm256_sub_ps(_mm256_setzero_ps(), dpt_abs8(x))));
}

/* tanh: odd polynomial below |x| = 0.625 (Cephes tanhf), (1 - t)/(1 + t)
 * with t = e^-2|x| above, sign restored. NaN stays NaN. */
DPT_INLINE __m256 dpt_tanh8(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
    __m256 ax = dpt_abs8(x);
    __m256 t = dpt_exp8(_mm256_mul_ps(ax, _mm256_set1_ps(-2.0f)));
    __m256 big = _mm256_div_ps(_mm256_sub_ps(one, t), _mm256_add_ps(one, t));
    big = _mm256_or_ps(big, sign);
    __m256 z = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(-5.70498872745e-3f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.06390887954e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.37397155531e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.33314422036e-1f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.33332819422e-1f));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
    return _mm256_blendv_ps(small, big, _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_GT_OQ));
}

#endif
