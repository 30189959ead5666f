/* Loader speed, in MB of file per second: a synthetic CSV of about
 * DPT_BENCH_MB megabytes (default 200; or the file given as argv[1]) parsed
 * with 1 thread and with all, best of 3; then the same rows as svmlight
 * and .dptb. A benchmark, never a test. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dpt/error.h"
#include "dpt/io.h"

static double file_mb(const char *p)
{
    struct stat st;
    return stat(p, &st) ? 0 : st.st_size / 1e6;
}

static int bench(const char *label, const char *path, int threads)
{
    dpt_load_opts o;
    dpt_load_opts_defaults(&o);
    o.nthreads = threads;
    double best = 1e30;
    size_t n = 0, d = 0;
    for (int r = 0; r < 3; r++) {
        dpt_dataset ds;
        double t = omp_get_wtime();
        if (dpt_load(path, &o, &ds)) {
            fprintf(stderr, "bench_parse: %s\n", dpt_last_error());
            return 1;
        }
        t = omp_get_wtime() - t;
        if (t < best) best = t;
        n = ds.n;
        d = ds.d;
        dpt_dataset_free(&ds);
    }
    double mb = file_mb(path);
    printf("%-9s %8.1f MB  %zu x %zu  %2d thread%s  %7.3f s  %7.0f MB/s\n", label, mb, n, d,
           threads, threads == 1 ? " " : "s", best, mb / best);
    return 0;
}

int main(int argc, char **argv)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char csv[512], svm[512], bin[512];
    int own = argc < 2;
    snprintf(csv, sizeof csv, "%s", own ? "" : argv[1]);
    snprintf(svm, sizeof svm, "%s/dpt-bench-parse-%d.svm", tmp, (int)getpid());
    snprintf(bin, sizeof bin, "%s/dpt-bench-parse-%d.dptb", tmp, (int)getpid());
    dpt_dataset ds = {0};
    if (own) {
        /* a linreg row of 64 features prints to about 790 bytes */
        const char *env = getenv("DPT_BENCH_MB");
        double mb = env ? atof(env) : 200;
        dpt_synth_spec s;
        dpt_synth_defaults(&s, DPT_SYNTH_LINREG);
        s.n = (size_t)(mb * 1e6 / 790) + 1;
        snprintf(csv, sizeof csv, "%s/dpt-bench-parse-%d.csv", tmp, (int)getpid());
        if (dpt_synth_generate(&s, &ds, 0) || dpt_save(&ds, csv, NULL)) {
            fprintf(stderr, "bench_parse: %s\n", dpt_last_error());
            return 1;
        }
    } else {
        dpt_load_opts o;
        dpt_load_opts_defaults(&o);
        if (dpt_load(csv, &o, &ds)) {
            fprintf(stderr, "bench_parse: %s\n", dpt_last_error());
            return 1;
        }
    }
    int rc = dpt_save(&ds, svm, NULL) || dpt_save(&ds, bin, NULL);
    dpt_dataset_free(&ds);
    if (rc) {
        fprintf(stderr, "bench_parse: %s\n", dpt_last_error());
        return 1;
    }
    int all = omp_get_max_threads();
    rc = bench("csv", csv, 1) || bench("csv", csv, all) || bench("svmlight", svm, 1) ||
         bench("svmlight", svm, all) || bench("dptb", bin, 1) || bench("dptb", bin, all);
    if (own) unlink(csv);
    unlink(svm);
    unlink(bin);
    return rc;
}
