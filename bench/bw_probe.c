/* An independent read-bandwidth probe to check `dpt limits` against: plain C
 * and OpenMP, nothing from libdpt, written the way STREAM is: ARRAYS arrays
 * allocated one by one, one static OpenMP loop over them all (each thread
 * first touches the slice of every array it reads), so each thread reads
 * ARRAYS concurrent sequential streams, and a sum as the only work, so that
 * nothing is written.
 *
 *   bench/bw_probe [THREADS [MIB [REPS [ARRAYS]]]]   (defaults: all, 1024, 11, 4)
 *
 * MIB is the total over all arrays. Prints the median and best GB/s (1e9
 * bytes/s) of the repetitions after one warm-up, and the sum of every element
 * read over all repetitions (each element is 1: the count of floats read, so
 * a wrong loop shows). 16 independent accumulators keep the adds off the
 * critical path. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_ARRAYS 8
#define CHUNK      4096 /* floats per scheduled chunk of each array */

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* the sum of elements [i, end) of arrays x[0..k), read in one loop; inlined
 * for each k below so that the compiler unrolls and vectorizes it (inside an
 * OpenMP region k would be a variable) */
static inline __attribute__((always_inline)) double chunk_sum(const int k, float *const *x,
                                                              size_t i, size_t end)
{
    float s[16] = {0};
    for (size_t e = i; e < end; e += 16)
        for (int a = 0; a < k; a++)
            for (int j = 0; j < 16; j++) s[j] += x[a][e + j];
    double sum = 0;
    for (int j = 0; j < 16; j++) sum += s[j];
    return sum;
}

static double chunk_sum_k(int k, float *const *x, size_t i, size_t end)
{
    switch (k) {
    case 1:
        return chunk_sum(1, x, i, end);
    case 2:
        return chunk_sum(2, x, i, end);
    case 3:
        return chunk_sum(3, x, i, end);
    case 4:
        return chunk_sum(4, x, i, end);
    case 5:
        return chunk_sum(5, x, i, end);
    case 6:
        return chunk_sum(6, x, i, end);
    case 7:
        return chunk_sum(7, x, i, end);
    default:
        return chunk_sum(8, x, i, end);
    }
}

/* the sum of x[0..k)[0..n): each thread reads its static share of chunks */
static double sum_arrays(int threads, int k, size_t n, float *const *x)
{
    double sum = 0;
#pragma omp parallel for schedule(static) num_threads(threads) reduction(+ : sum)
    for (size_t i = 0; i < n; i += CHUNK)
        sum += chunk_sum_k(k, x, i, i + CHUNK < n ? i + CHUNK : n);
    return sum;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : omp_get_max_threads();
    size_t mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 1024;
    int reps = argc > 3 ? atoi(argv[3]) : 11;
    int k = argc > 4 ? atoi(argv[4]) : 4;
    if (argc > 5 || threads < 1 || mib < 1 || reps < 1 || reps > 1000 || k < 1 || k > MAX_ARRAYS) {
        fprintf(stderr, "usage: bw_probe [THREADS >= 1 [MIB >= 1 [REPS 1-1000 [ARRAYS 1-%d]]]]\n",
                MAX_ARRAYS);
        return 2;
    }
    /* each array a whole number of 16-float groups */
    size_t n = mib * (1u << 20) / sizeof(float) / (size_t)k / 16 * 16;
    float *x[MAX_ARRAYS] = {0};
    double *t = malloc((size_t)reps * sizeof *t);
    int ok = n > 0 && t;
    for (int a = 0; a < k && ok; a++) ok = (x[a] = aligned_alloc(64, n * sizeof(float))) != NULL;
    if (!ok) {
        fprintf(stderr, "bw_probe: cannot allocate %zu MiB in %d arrays\n", mib, k);
        return 1;
    }
#pragma omp parallel for schedule(static) num_threads(threads)
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t end = i + CHUNK < n ? i + CHUNK : n;
        for (int a = 0; a < k; a++)
            for (size_t e = i; e < end; e++) x[a][e] = 1.0f;
    }
    double total = 0;
    for (int r = -1; r < reps; r++) {
        double t0 = omp_get_wtime();
        total += sum_arrays(threads, k, n, x);
        double dt = omp_get_wtime() - t0;
        if (r >= 0) t[r] = dt;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp);
    double bytes = (double)n * (double)k * sizeof(float);
    printf("bw_probe: %d threads, %zu MiB in %d arrays: median %.2f GB/s, best %.2f GB/s "
           "(read %.0f floats, expected %.0f)\n",
           threads, mib, k, bytes / t[reps / 2] * 1e-9, bytes / t[0] * 1e-9, total,
           (double)n * k * (reps + 1));
    for (int a = 0; a < k; a++) free(x[a]);
    free(t);
    return 0;
}
