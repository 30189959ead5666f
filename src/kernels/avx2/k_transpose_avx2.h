/* An 8x8 transpose of eight __m256 rows in registers: the AVX2 and AVX-512
 * SGEMM kernels both use it to read op(B) panels across rows; and the AVX2
 * kernels' transpose of eight rows read from memory. Needs AVX (included
 * from files built with -mavx2 or -mavx512f). */
#ifndef DPT_K_TRANSPOSE_AVX2_H
#define DPT_K_TRANSPOSE_AVX2_H

#include <immintrin.h>

#ifndef DPT_INLINE
#define DPT_INLINE static inline __attribute__((always_inline))
#endif

/* r[0..7] rows in, r[0..7] columns out */
DPT_INLINE void transpose8(__m256 *r)
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* What rows past the valid ones read in transpose8_load. */
static const float dpt_zero8[8] __attribute__((aligned(32)));

/* out[k] = column k of the 8x8 block whose row q starts at r[q], for the
 * first 4 * NH columns (NH = 1 or 2): what transpose8 gives for the loaded
 * rows, without its cross-lane step. Each row is read as 128-bit halves, row q's into the
 * low lane of a vector and row q + 4's into the high one (an insert from
 * memory), so that in-lane 4x4 transposes finish it. vperm2f128, transpose8's
 * last step, is 8 uops with a throughput of one per 3 cycles on Zen 1 (1 uop
 * on later cores); these loads are cheap everywhere. MASKED: half h reads
 * only the lanes of mask m[h] (0 elsewhere), never past them; else m is
 * not read (NULL). */
DPT_INLINE __m128 t8_half(const int MASKED, const float *p, const __m128i *m, int h)
{
    return MASKED ? _mm_maskload_ps(p, m[h]) : _mm_loadu_ps(p);
}

DPT_INLINE void transpose8_load(const int NH, const int MASKED, const float *const *r,
                                const __m128i *m, __m256 *out)
{
    for (int h = 0; h < NH; h++) { /* columns 4h .. 4h + 3 */
        __m256 a[4];
        for (int q = 0; q < 4; q++)
            a[q] = _mm256_insertf128_ps(_mm256_castps128_ps256(t8_half(MASKED, r[q] + 4 * h, m, h)),
                                        t8_half(MASKED, r[q + 4] + 4 * h, m, h), 1);
        __m256 t0 = _mm256_unpacklo_ps(a[0], a[1]), t1 = _mm256_unpackhi_ps(a[0], a[1]);
        __m256 t2 = _mm256_unpacklo_ps(a[2], a[3]), t3 = _mm256_unpackhi_ps(a[2], a[3]);
        out[4 * h + 0] = _mm256_shuffle_ps(t0, t2, 0x44);
        out[4 * h + 1] = _mm256_shuffle_ps(t0, t2, 0xEE);
        out[4 * h + 2] = _mm256_shuffle_ps(t1, t3, 0x44);
        out[4 * h + 3] = _mm256_shuffle_ps(t1, t3, 0xEE);
    }
}

#endif
