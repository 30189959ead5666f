/* An independent read-bandwidth probe to check `dpt limits` against: plain C
 * and OpenMP, nothing from libdpt, written the way STREAM is (one static
 * OpenMP loop over a large array, each thread first touching the part it
 * reads), with a sum as the only work so that nothing is written.
 *
 *   bench/bw_probe [THREADS [MIB [REPS]]]   (defaults: all, 1024, 11)
 *
 * Prints the median and best GB/s (1e9 bytes/s) of the repetitions after one
 * warm-up. 16 independent accumulators keep the adds off the critical path. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : omp_get_max_threads();
    size_t mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 1024;
    int reps = argc > 3 ? atoi(argv[3]) : 11;
    if (threads < 1 || mib < 1 || reps < 1 || reps > 1000) {
        fprintf(stderr, "usage: bw_probe [THREADS >= 1 [MIB >= 1 [REPS 1-1000]]]\n");
        return 2;
    }
    size_t n = mib * (1u << 20) / sizeof(float) / 16 * 16;
    float *x = aligned_alloc(64, n * sizeof(float));
    double *t = malloc((size_t)reps * sizeof *t);
    if (!x || !t) {
        fprintf(stderr, "bw_probe: cannot allocate %zu MiB\n", mib);
        return 1;
    }
#pragma omp parallel for schedule(static) num_threads(threads)
    for (size_t i = 0; i < n; i += 16)
        for (int j = 0; j < 16; j++) x[i + j] = 1.0f;
    float total = 0;
    for (int r = -1; r < reps; r++) {
        double t0 = omp_get_wtime();
        float sum = 0;
#pragma omp parallel for schedule(static) num_threads(threads) reduction(+ : sum)
        for (size_t i = 0; i < n; i += 4096) {
            float s[16] = {0};
            size_t end = i + 4096 < n ? i + 4096 : n;
            for (size_t k = i; k < end; k += 16)
                for (int j = 0; j < 16; j++) s[j] += x[k + j];
            for (int j = 0; j < 16; j++) sum += s[j];
        }
        double dt = omp_get_wtime() - t0;
        total += sum;
        if (r >= 0) t[r] = dt;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp);
    double bytes = (double)n * sizeof(float);
    printf("bw_probe: %d threads, %zu MiB: median %.2f GB/s, best %.2f GB/s (check %.0f)\n",
           threads, mib, bytes / t[reps / 2] * 1e-9, bytes / t[0] * 1e-9, (double)total);
    free(x);
    free(t);
    return 0;
}
