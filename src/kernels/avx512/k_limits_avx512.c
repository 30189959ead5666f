/* The AVX-512 FMA loop of the machine-limit measurement (src/kernels/limits.c). */
#include <immintrin.h>

#include "kernels/avx512/k_math_avx512.h"
#include "kernels/k_limits.h"

/* 16 independent chains: more than latency (4) x FMA ports (2), half the 32
 * registers; c -> c*m + a converges to 1, no denormals, no overflow */
float dpt_k_fma_f32_avx512(size_t iters)
{
    const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-6f);
    __m512 c[16];
    /* distinct starting values: equal chains would be merged by the compiler */
    for (int j = 0; j < 16; j++) c[j] = _mm512_set1_ps(0.50f + 0.01f * (float)j);
    for (size_t i = 0; i < iters; i++) {
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++)
#pragma GCC unroll 16
            for (int j = 0; j < 16; j++) c[j] = _mm512_fmadd_ps(c[j], m, a);
        /* opaque to the compiler: all 16 chains stay distinct and are computed */
        __asm__ volatile("" /* two statements: asm takes at most 30 operands */
                         : "+v"(c[0]), "+v"(c[1]), "+v"(c[2]), "+v"(c[3]), "+v"(c[4]), "+v"(c[5]),
                           "+v"(c[6]), "+v"(c[7]));
        __asm__ volatile(""
                         : "+v"(c[8]), "+v"(c[9]), "+v"(c[10]), "+v"(c[11]), "+v"(c[12]),
                           "+v"(c[13]), "+v"(c[14]), "+v"(c[15]));
    }
    __m512 s = _mm512_setzero_ps();
    for (int j = 0; j < 16; j++) s = _mm512_add_ps(s, c[j]);
    return dpt_hsum16(s);
}
