/* The machine's own limits, measured in one run: STREAM-like read bandwidth
 * over out-of-cache arrays and fp32 FMA throughput, at a given thread count.
 * Reports (dpt limits, dpt bench, bench/kernels) give every kernel's speed as
 * a fraction of these numbers, measured in the same run. */
#ifndef DPT_LIMITS_H
#define DPT_LIMITS_H

#include "dpt/export.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dpt_limits {
    int threads;            /* OpenMP threads that ran the loops */
    double read_gbs;        /* read bandwidth, 1e9 bytes/s, median over reps */
    double fma_gflops;      /* fp32 FMA throughput, 1e9 flop/s (an FMA is 2), median */
    double read_gbs_best;   /* the fastest repetition: on a shared machine the */
    double fma_gflops_best; /* median moves with the neighbours, the best less so */
    size_t read_bytes;      /* total size of the array read (all threads together) */
    int reps;               /* repetitions the medians are taken over */
    const char *isa; /* FMA loop: "avx512" (512-bit), "avx2" (256-bit) or "scalar" (compiler's) */
} dpt_limits;

/* Array size of the full measurement: well past any last-level cache. */
#define DPT_LIMITS_READ_BYTES ((size_t)1 << 30)
/* A quick measurement (--quick): smaller array, fewer repetitions. */
#define DPT_LIMITS_QUICK_BYTES ((size_t)256 << 20)

/* Measure with `threads` OpenMP threads (<= 0: omp_get_max_threads()), the
 * full-size array. Each thread first-touches and then reads its own part as
 * four concurrent sequential streams (its quarters, a little more than a
 * quarter apart so that they do not share DRAM banks), as a STREAM-like
 * probe reads several arrays: one stream per thread reads less on some machines.
 * Takes about a second. Returns 0, or DPT_ENOMEM / DPT_EINVAL (message set).
 * Call outside parallel regions. */
DPT_API int dpt_limits_measure(int threads, dpt_limits *out);

/* Same with a chosen array size in bytes (0: DPT_LIMITS_READ_BYTES) and
 * number of repetitions (0: 5). Sizes under the last-level cache measure the
 * cache, not memory; an array under DPT_LIMITS_QUICK_BYTES is read several
 * times in each repetition (read_bytes stays the array's size). */
DPT_API int dpt_limits_measure_sized(int threads, size_t read_bytes, int reps, dpt_limits *out);

#ifdef __cplusplus
}
#endif
#endif
