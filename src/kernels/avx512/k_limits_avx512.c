/* The AVX-512 FMA loop of the machine-limit measurement (src/kernels/limits.c). */
#include <immintrin.h>

#include "kernels/avx512/k_math_avx512.h"
#include "kernels/k_limits.h"

/* 16 independent chains: more than latency (4) x FMA ports (2), half the 32
 * registers; c -> c*m + a converges to 1, no denormals, no overflow */
float dpt_k_fma_f32_avx512(size_t iters)
{
    const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-6f);
    /* named registers, not an array (which the compiler keeps in memory);
     * distinct starting values: equal chains would be merged */
#define C(j) const __m512 i##j = _mm512_set1_ps(0.50f + 0.01f * (j))
    C(0);
    C(1);
    C(2);
    C(3);
    C(4);
    C(5);
    C(6);
    C(7);
    C(8);
    C(9);
    C(10);
    C(11);
    C(12);
    C(13);
    C(14);
    C(15);
    __m512 c0 = i0, c1 = i1, c2 = i2, c3 = i3, c4 = i4, c5 = i5, c6 = i6, c7 = i7, c8 = i8, c9 = i9,
           c10 = i10, c11 = i11, c12 = i12, c13 = i13, c14 = i14, c15 = i15;
#undef C
#define F(j) c##j = _mm512_fmadd_ps(c##j, m, a)
    for (size_t i = 0; i < iters; i++) {
        for (int u = 0; u < 4; u++) {
            F(0), F(1), F(2), F(3), F(4), F(5), F(6), F(7);
            F(8), F(9), F(10), F(11), F(12), F(13), F(14), F(15);
        }
        /* opaque to the compiler: all 16 chains stay distinct and are
         * computed (two statements: asm takes at most 30 operands) */
        __asm__ volatile(""
                         : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5), "+v"(c6),
                           "+v"(c7));
        __asm__ volatile(""
                         : "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11), "+v"(c12), "+v"(c13),
                           "+v"(c14), "+v"(c15));
    }
#undef F
    __m512 s0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                              _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    __m512 s1 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)),
                              _mm512_add_ps(_mm512_add_ps(c12, c13), _mm512_add_ps(c14, c15)));
    return dpt_hsum16(_mm512_add_ps(s0, s1));
}
