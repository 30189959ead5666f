/* The AVX2 loops of the machine-limit measurement (src/kernels/limits.c). */
#include <immintrin.h>

#include "kernels/avx2/k_math_avx2.h"
#include "kernels/k_limits.h"

/* 16 floats of one stream at x into its two accumulators */
DPT_INLINE void read16(__m256 *a, __m256 *b, const float *x)
{
    *a = _mm256_add_ps(*a, _mm256_load_ps(x));
    *b = _mm256_add_ps(*b, _mm256_load_ps(x + 8));
}

/* x:(n), n a multiple of 64, read as DPT_K_READ_STREAMS (4) streams at
 * once, as a STREAM-like probe's threads do with several arrays: two 32-byte
 * loads per stream per iteration into 8 accumulators. One sequential stream
 * per thread left the 2-thread figure below what independent probes read.
 * The streams start a gap apart beyond the quarters (kernels/k_limits.h). */
float dpt_k_read_f32_avx2(size_t n, const float *x)
{
    const size_t q = n / DPT_K_READ_STREAMS, gap = dpt_k_read_gap(n);
    const size_t len = q - (DPT_K_READ_STREAMS - 1) * gap; /* the last stream's */
    const float *x0 = x, *x1 = x + (q + gap), *x2 = x + 2 * (q + gap), *x3 = x + 3 * (q + gap);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
    size_t i = 0;
    for (; i < len; i += 16) {
        read16(&s0, &s1, x0 + i);
        read16(&s2, &s3, x1 + i);
        read16(&s4, &s5, x2 + i);
        read16(&s6, &s7, x3 + i);
    }
    for (; i < q + gap; i += 16) { /* the first three streams' longer part */
        read16(&s0, &s1, x0 + i);
        read16(&s2, &s3, x1 + i);
        read16(&s4, &s5, x2 + i);
    }
    s0 = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    s4 = _mm256_add_ps(_mm256_add_ps(s4, s5), _mm256_add_ps(s6, s7));
    return dpt_hsum8(_mm256_add_ps(s0, s4));
}

/* 12 independent chains: more than latency (4) x FMA ports (2), fewer than
 * the 16 registers; c -> c*m + a converges to 1, no denormals, no overflow */
float dpt_k_fma_f32_avx2(size_t iters)
{
    const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-6f);
    /* distinct starting values: equal chains would be merged by the compiler */
    __m256 c0 = _mm256_set1_ps(0.50f), c1 = _mm256_set1_ps(0.51f), c2 = _mm256_set1_ps(0.52f);
    __m256 c3 = _mm256_set1_ps(0.53f), c4 = _mm256_set1_ps(0.54f), c5 = _mm256_set1_ps(0.55f);
    __m256 c6 = _mm256_set1_ps(0.56f), c7 = _mm256_set1_ps(0.57f), c8 = _mm256_set1_ps(0.58f);
    __m256 c9 = _mm256_set1_ps(0.59f), c10 = _mm256_set1_ps(0.60f), c11 = _mm256_set1_ps(0.61f);
    for (size_t i = 0; i < iters; i++) {
        for (int u = 0; u < 4; u++) {
            c0 = _mm256_fmadd_ps(c0, m, a);
            c1 = _mm256_fmadd_ps(c1, m, a);
            c2 = _mm256_fmadd_ps(c2, m, a);
            c3 = _mm256_fmadd_ps(c3, m, a);
            c4 = _mm256_fmadd_ps(c4, m, a);
            c5 = _mm256_fmadd_ps(c5, m, a);
            c6 = _mm256_fmadd_ps(c6, m, a);
            c7 = _mm256_fmadd_ps(c7, m, a);
            c8 = _mm256_fmadd_ps(c8, m, a);
            c9 = _mm256_fmadd_ps(c9, m, a);
            c10 = _mm256_fmadd_ps(c10, m, a);
            c11 = _mm256_fmadd_ps(c11, m, a);
        }
        /* opaque to the compiler: all 12 chains stay distinct and are computed */
        __asm__ volatile(""
                         : "+x"(c0), "+x"(c1), "+x"(c2), "+x"(c3), "+x"(c4), "+x"(c5), "+x"(c6),
                           "+x"(c7), "+x"(c8), "+x"(c9), "+x"(c10), "+x"(c11));
    }
    c0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                       _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    c0 = _mm256_add_ps(c0, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
    return dpt_hsum8(c0);
}
