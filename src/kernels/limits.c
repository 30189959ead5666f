/* dpt_limits_measure: the machine's read bandwidth and FMA throughput at a
 * thread count, measured in one run so reports can give each kernel's speed
 * as a fraction of what this machine does right now. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "dpt/error.h"
#include "dpt/limits.h"
#include "dpt_config.h"
#include "kernels/k_limits.h"
#include "kernels/kernels.h"

/* Plain C versions for builds or CPUs without AVX2: 16 independent lanes, so
 * the compiler may vectorize them without reassociating anything. */
float dpt_k_read_f32_scalar(size_t n, const float *x)
{
    const size_t q = n / DPT_K_READ_STREAMS, gap = dpt_k_read_gap(n);
    const size_t len = q - (DPT_K_READ_STREAMS - 1) * gap; /* the last stream's */
    float s[DPT_K_READ_STREAMS][16] = {{0}};
    for (size_t i = 0; i < len; i += 16)
        for (int k = 0; k < DPT_K_READ_STREAMS; k++)
            for (int j = 0; j < 16; j++) s[k][j] += x[k * (q + gap) + i + j];
    for (size_t i = len; i < q + gap; i += 16)
        for (int k = 0; k + 1 < DPT_K_READ_STREAMS; k++)
            for (int j = 0; j < 16; j++) s[k][j] += x[k * (q + gap) + i + j];
    float t = 0;
    for (int k = 0; k < DPT_K_READ_STREAMS; k++)
        for (int j = 0; j < 16; j++) t += s[k][j];
    return t;
}

dpt_k_read_fn dpt_k_read_loop(void)
{
#if DPT_HAVE_AVX2
    if (dpt_cpu_has_avx2()) return dpt_k_read_f32_avx2;
#endif
    return dpt_k_read_f32_scalar;
}

float dpt_k_fma_f32_scalar(size_t iters)
{
    float c[16];
    for (int j = 0; j < 16; j++) c[j] = 0.5f + 0.01f * (float)j; /* distinct: none merged */
    for (size_t i = 0; i < iters; i++)
        for (int u = 0; u < 4; u++)
            for (int j = 0; j < 16; j++) c[j] = c[j] * 0.999999f + 1e-6f;
    float t = 0;
    for (int j = 0; j < 16; j++) t += c[j];
    return t;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#define MAX_REPS 64

int dpt_limits_measure_sized(int threads, size_t read_bytes, int reps, dpt_limits *out)
{
    if (!out) return dpt_set_error(DPT_EINVAL, "dpt_limits_measure: no output struct");
    if (threads <= 0) threads = omp_get_max_threads();
    if (!read_bytes) read_bytes = DPT_LIMITS_READ_BYTES;
    if (reps <= 0) reps = 5;
    if (reps > MAX_REPS) reps = MAX_REPS;
    /* each thread's part is a whole number of 256-byte steps */
    size_t per = read_bytes / sizeof(float) / (size_t)threads / 64 * 64;
    if (per == 0) per = 64;
    size_t n = per * (size_t)threads;
    /* an array of cache size is read several times per repetition, so that
     * a repetition reads at least DPT_LIMITS_QUICK_BYTES: one pass over
     * 1 MiB lasts microseconds, and the timer and the barriers around it
     * would be part of the figure (918 KiB read 73-95 GB/s in single passes,
     * 150-160 GB/s in back-to-back ones, on a Zen 5 with 1 MiB of L2) */
    const size_t bytes_n = n * sizeof(float);
    const size_t passes = bytes_n < DPT_LIMITS_QUICK_BYTES ? DPT_LIMITS_QUICK_BYTES / bytes_n : 1;
    float *x = dpt_alloc(n * sizeof(float));
    if (!x)
        return dpt_set_error(DPT_ENOMEM, "limits: cannot allocate %zu MiB for the read test",
                             (n * sizeof(float)) >> 20);
    const dpt_k_read_fn rd = dpt_k_read_loop();
    float (*fm)(size_t) = dpt_k_fma_f32_scalar;
    int avx2 = 0, avx512 = 0;
    /* the peak is the kernel table's in use (the widest the CPU runs, or
     * the one --isa / DPT_ISA chose), so that a run's %peak is against
     * what its kernels can reach */
    const char *isa = dpt_kernels_get()->isa;
#if DPT_HAVE_AVX2
    if (dpt_cpu_has_avx2()) {
        if (strcmp(isa, "scalar")) {
            fm = dpt_k_fma_f32_avx2;
            avx2 = 1;
        }
    }
#endif
#if DPT_HAVE_AVX512
    if (avx2 && dpt_cpu_has_avx512() && !strcmp(isa, "avx512")) {
        fm = dpt_k_fma_f32_avx512;
        avx512 = 1;
    }
#endif
    double flops_per_iter = avx512 ? DPT_K_FMA_FLOPS_AVX512
                            : avx2 ? DPT_K_FMA_FLOPS_AVX2
                                   : DPT_K_FMA_FLOPS_SCALAR;
    /* ~40 ms per repetition at the expected rate */
    size_t iters = avx512 ? 7500000 / 4 : avx2 ? 20000000 / 4 : 2000000 / 4;
    double tr[MAX_REPS + 1], tf[MAX_REPS + 1];
    float acc = 0;
    int nth = threads;
#pragma omp parallel num_threads(threads) reduction(+ : acc)
    {
        int t = omp_get_thread_num();
#pragma omp single
        nth = omp_get_num_threads();
        size_t lo = per * (size_t)t;
        size_t len = t < nth ? per : 0;
        /* first touch by the thread that reads it */
        for (size_t i = lo; i < lo + len; i++) x[i] = 1.0f;
        float s = 0;
        /* one warm-up repetition, then reps timed ones */
        for (int r = 0; r <= reps; r++) {
            double t0 = 0;
#pragma omp barrier
#pragma omp master
            t0 = omp_get_wtime();
            for (size_t q = 0; q < passes; q++) s += rd(len, x + lo);
#pragma omp barrier
#pragma omp master
            tr[r] = omp_get_wtime() - t0;
        }
        for (int r = 0; r <= reps; r++) {
            double t0 = 0;
#pragma omp barrier
#pragma omp master
            t0 = omp_get_wtime();
            s += fm(iters);
#pragma omp barrier
#pragma omp master
            tf[r] = omp_get_wtime() - t0;
        }
        acc += s;
    }
    /* the sums must look used, or the loops could be dropped */
    volatile float sink = acc;
    (void)sink;
    dpt_free(x);
    /* threads that got no part (omp gave fewer) read nothing: n counts only parts read */
    double bytes = (double)per * (double)nth * sizeof(float);
    for (int r = 0; r < reps; r++) {
        tr[r] = bytes * (double)passes / tr[r + 1] * 1e-9;
        tf[r] = flops_per_iter * (double)iters * nth / tf[r + 1] * 1e-9;
    }
    memset(out, 0, sizeof *out);
    out->threads = nth;
    out->read_gbs = median(tr, reps); /* sorts: the best is last */
    out->fma_gflops = median(tf, reps);
    out->read_gbs_best = tr[reps - 1];
    out->fma_gflops_best = tf[reps - 1];
    out->read_bytes = (size_t)bytes;
    out->reps = reps;
    out->isa = avx512 ? "avx512" : avx2 ? "avx2" : "scalar";
    return 0;
}

int dpt_limits_measure(int threads, dpt_limits *out)
{
    return dpt_limits_measure_sized(threads, 0, 0, out);
}
