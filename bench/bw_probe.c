/* An independent read-bandwidth probe to check `dpt limits` against: plain C
 * and OpenMP, nothing from libdpt, written the way STREAM is: ARRAYS arrays
 * allocated one by one, one static OpenMP loop over them all (each thread
 * first touches the slice of every array it reads), so each thread reads
 * ARRAYS concurrent sequential streams, and a sum as the only work, so that
 * nothing is written.
 *
 *   bench/bw_probe [THREADS [MIB [REPS [ARRAYS]]]]   (defaults: all, 1024, 11, 4;
 *                                                    at most 4096, 2^20, 1000, 8)
 *
 * MIB is the total over all arrays. Prints the median and best GB/s (1e9
 * bytes/s) of the repetitions after one warm-up, and the sum of every element
 * read over all repetitions (each element is 1: the count of floats read, so
 * a wrong loop shows). 16 independent accumulators keep the adds off the
 * critical path. */
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_ARRAYS  8
#define MAX_THREADS 4096
#define MAX_MIB     1048576 /* 1 TiB */
#define STR_(x)     #x
#define STR(x)      STR_(x)
#define USAGE                                                                                      \
    "usage: bw_probe [THREADS 1-" STR(MAX_THREADS) " [MIB 1-" STR(                                 \
        MAX_MIB) " [REPS 1-1000 [ARRAYS 1-" STR(MAX_ARRAYS) "]]]]"
#define CHUNK 4096 /* floats per scheduled chunk of each array */

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

/* argument i (1-based) as an integer in [lo, hi], def when absent; -1 and
 * a message naming the argument when it is not a whole number in range */
static long arg(int argc, char **argv, int i, const char *name, long lo, long hi, long def)
{
    if (argc <= i) return def;
    char *end;
    errno = 0;
    long v = strtol(argv[i], &end, 10);
    if (errno || end == argv[i] || *end || v < lo || v > hi) {
        fprintf(stderr, USAGE ": %s must be a whole number from %ld to %ld, not '%s'\n", name, lo,
                hi, argv[i]);
        return -1;
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc > 5) {
        fprintf(stderr, USAGE ": at most 4 arguments, not %d\n", argc - 1);
        return 2;
    }
    long a1 = arg(argc, argv, 1, "THREADS", 1, MAX_THREADS, omp_get_max_threads());
    long a2 = arg(argc, argv, 2, "MIB", 1, MAX_MIB, 1024);
    long a3 = arg(argc, argv, 3, "REPS", 1, 1000, 11);
    long a4 = arg(argc, argv, 4, "ARRAYS", 1, MAX_ARRAYS, 4);
    if (a1 < 0 || a2 < 0 || a3 < 0 || a4 < 0) return 2;
    const int threads = (int)a1, reps = (int)a3, k = (int)a4;
    const size_t mib = (size_t)a2;
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
