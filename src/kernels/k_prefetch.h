/* A software prefetch of a span of memory some distance ahead of a pointer,
 * for kernels whose loads the hardware prefetchers do not follow (masked
 * loads of short rows). x86 only: included from the AVX2 and AVX-512 files. */
#ifndef DPT_K_PREFETCH_H
#define DPT_K_PREFETCH_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#ifndef DPT_INLINE
#define DPT_INLINE static inline __attribute__((always_inline))
#endif

/* bytes [ahead, ahead + span) past p into L1, one prefetch per 64-byte line;
 * a prefetch never faults, and the address is formed as an integer so that
 * no pointer runs past its array */
DPT_INLINE void dpt_prefetch_ahead(const void *p, size_t ahead, size_t span)
{
    uintptr_t a = (uintptr_t)p + ahead;
    for (size_t off = 0; off < span; off += 64) _mm_prefetch((const char *)(a + off), _MM_HINT_T0);
}

/* The parameters p (read) and the gradient g (written, PREFETCHW) of a
 * small model, np floats each, all lines at once: between the steps of a
 * mini-batch the other threads wrote p and read g, so each line is a miss
 * to another core; issued together the misses overlap instead of meeting
 * the kernel's loads one after another. */
DPT_INLINE void dpt_prefetch_params(const float *p, float *g, size_t np)
{
    for (size_t i = 0; i < np; i += 16) {
        _mm_prefetch((const char *)(p + i), _MM_HINT_T0);
        _m_prefetchw(g + i);
    }
}

#endif
