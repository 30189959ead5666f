/* The loops dpt_limits_measure times: a read-only sweep and an FMA chain
 * bundle, in a scalar (compiler-vectorized) and an AVX2 version, and an
 * AVX-512 FMA bundle (reads use the AVX2 loop: bandwidth, not width, bounds it). */
#ifndef DPT_K_LIMITS_H
#define DPT_K_LIMITS_H

#include <stddef.h>

/* Flops one call of the FMA loop does per iteration. */
#define DPT_K_FMA_FLOPS_AVX2   (12 * 4 * 16) /* 12 chains x 4 unrolled x 8 lanes x 2 */
#define DPT_K_FMA_FLOPS_SCALAR (16 * 4 * 2)
#define DPT_K_FMA_FLOPS_AVX512 (16 * 4 * 32) /* 16 chains x 4 unrolled x 16 lanes x 2 */

/* Independent sequential streams each thread reads at once (quarters of its
 * part), as a STREAM-like probe reads several arrays. */
#define DPT_K_READ_STREAMS 4

/* Stream k starts k * (n / DPT_K_READ_STREAMS + gap) floats into x: whole
 * quarters of a large power-of-two array are power-of-two multiples apart,
 * and four streams that far apart fall in the same DRAM banks (a Zen host
 * read 12.8 GB/s at 1 thread with them, 18.3-20.2 with the streams 1-32
 * KiB further apart, as an independent probe's separately allocated
 * arrays are). The gap is DPT_K_READ_GAP floats (16 KiB + a line) where
 * each stream holds 64 of it, else 0 (a cache-sized array). The first
 * three streams are 4 gaps longer than the last, read after the four. */
#define DPT_K_READ_GAP ((size_t)4112)
static inline size_t dpt_k_read_gap(size_t n)
{
    return n / DPT_K_READ_STREAMS >= 64 * DPT_K_READ_GAP ? DPT_K_READ_GAP : 0;
}

/* x:(n), n a multiple of 64 -> sum (returned so the reads cannot be elided),
 * read as DPT_K_READ_STREAMS streams */
float dpt_k_read_f32_avx2(size_t n, const float *x);
float dpt_k_read_f32_scalar(size_t n, const float *x);

/* The read loop dpt_limits_measure times: AVX2 wherever the CPU has it
 * (the bandwidth is the machine's, whatever the kernel table), else scalar;
 * also what bench/kernels pairs its memory rows with. */
typedef float (*dpt_k_read_fn)(size_t n, const float *x);
dpt_k_read_fn dpt_k_read_loop(void);

/* iters iterations of independent FMA chains; returns their sum */
float dpt_k_fma_f32_avx2(size_t iters);
float dpt_k_fma_f32_scalar(size_t iters);
float dpt_k_fma_f32_avx512(size_t iters);

#endif
