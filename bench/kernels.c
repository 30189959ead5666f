/* bench/kernels: speed of every kernel at every ISA this CPU runs (scalar,
 * avx2, avx512), as time, GB/s or GFLOP/s and a fraction of this machine's
 * limits measured in the same run (STREAM-like read bandwidth; the FMA peak
 * of the row's own ISA; at 1 and at all threads), and the speedup over the
 * scalar reference. A benchmark, never a test.
 *   kernels [--quick] [--threads N] [--no-scalar] [--only glm|gemm|mlp|elem|vec]
 *           [--isa scalar|avx2|avx512]
 * DPT_ISA (or --isa) runs that one table only; --no-scalar still times the
 * scalar table's own rows but drops the scalar timing beside every other
 * row (the "scalar" and "speedup" columns). */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "dpt/error.h"
#include "dpt/limits.h"
#include "dpt_config.h"
#include "kernels/k_limits.h"
#include "kernels/kernels.h"
#include "models/layout.h"

static int quick;
static int with_scalar = 1;
static const char *only;      /* run one group: glm, gemm, mlp, elem, vec */
static const dpt_kernels *K;  /* the table being measured */
static dpt_kernels S;         /* scalar reference */
static dpt_limits lim1, limN; /* at 1 and at all threads */

/* One ISA's table and its FMA peak, at 1 and at all threads: GFLOP/s rows
 * are set against the peak of the loop in their own ISA. */
typedef struct {
    const char *name;
    dpt_kernels k;
    float (*fma)(size_t);
    double flops_iter;
    size_t iters;
    double med[2], best[2];
} isa_run;
static const isa_run *cur;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One benchmark case: run(ctx, table) does one call of the op. */
typedef struct bcase {
    void (*run)(struct bcase *c, const dpt_kernels *k);
    void (*pair)(struct bcase *c, const dpt_kernels *k); /* read kernel on the same data */
    size_t m, n, kk, d;
    int ta, tb, act, threads;
    float *A, *B, *C, *X, *y, *w, *g;
    double sink;
} bcase;

/* seconds per call, median and best of reps: calls batched to >= ~20 ms
 * per repetition */
static double timeit(bcase *c, const dpt_kernels *k, int reps, double *best)
{
    c->run(c, k); /* warm-up: caches, page faults, frequency */
    double t0 = now();
    c->run(c, k);
    double one = now() - t0;
    double target = quick ? 0.005 : 0.02;
    long calls = one > 0 ? (long)(target / one) + 1 : 1000;
    if (calls > 1000000) calls = 1000000;
    double t[16];
    if (reps > 16) reps = 16;
    for (int r = 0; r < reps; r++) {
        t0 = now();
        for (long i = 0; i < calls; i++) c->run(c, k);
        t[r] = (now() - t0) / (double)calls;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmpd);
    if (best) *best = t[0];
    return t[reps / 2];
}

/* what a rate is measured against */
enum { VS_NONE, VS_READ, VS_FMA };

static void header(void)
{
    printf("%-11s %-30s %3s %10s %9s %-7s %6s %6s %6s %10s %7s\n", "op", "size", "thr", "time",
           "rate", "unit", "%lim", "%best", "%pair", "scalar", "speedup");
}

static void fmt_time(char *buf, size_t len, double t)
{
    if (t < 1e-3)
        snprintf(buf, len, "%.2f us", t * 1e6);
    else
        snprintf(buf, len, "%.3f ms", t * 1e3);
}

/* One row: work is bytes (GB/s), flops (GFLOP/s) or elements (Gel/s).
 * %lim: median rate over the median limit at the row's thread count;
 * %best: best rate over the best limit (less sensitive to neighbours);
 * %pair (memory rows, small rows): median rate over the median of the read
 * kernel run on the same array with the same threads (small rows: the
 * step's bytes read from its weights), interleaved with the op in batches
 * of about 2 ms, so both see the same neighbours. */
/* the median seconds of the last row's paired read */
static double pair_time;

/* one table row; returns the median seconds */
static double row(const char *op, const char *size, bcase *c, double work, const char *unit, int vs)
{
    int reps = quick ? 3 : 7;
    double best, best_s;
    char pair[16] = "-";
    double t;
    if (c->pair) {
        /* the two in turn, each a batch of calls of about 2 ms (one call of
         * the memory rows, tens of milliseconds; many of a small-row step) */
        double tk[16], tp[16];
        c->run(c, K);
        c->pair(c, K);
        double t0 = now();
        c->run(c, K);
        double one = now() - t0;
        long calls = one > 0 && one < 0.002 ? (long)(0.002 / one) + 1 : 1;
        for (int r = 0; r < reps; r++) {
            t0 = now();
            for (long i = 0; i < calls; i++) c->pair(c, K);
            tp[r] = (now() - t0) / (double)calls;
            t0 = now();
            for (long i = 0; i < calls; i++) c->run(c, K);
            tk[r] = (now() - t0) / (double)calls;
        }
        qsort(tk, (size_t)reps, sizeof tk[0], cmpd);
        qsort(tp, (size_t)reps, sizeof tp[0], cmpd);
        t = tk[reps / 2];
        best = tk[0];
        snprintf(pair, sizeof pair, "%.0f%%", 100 * tp[reps / 2] / t);
        pair_time = tp[reps / 2];
    } else {
        t = timeit(c, K, reps, &best);
    }
    int cmp = with_scalar && strcmp(K->isa, "scalar");
    double ts = cmp ? timeit(c, &S, quick ? 1 : 3, &best_s) : t;
    double rate = work / t * 1e-9, rate_best = work / best * 1e-9;
    const dpt_limits *l = c->threads > 1 ? &limN : &lim1;
    char frac[16] = "-", fracb[16] = "-";
    if (vs == VS_READ) {
        snprintf(frac, sizeof frac, "%.0f%%", 100 * rate / l->read_gbs);
        snprintf(fracb, sizeof fracb, "%.0f%%", 100 * rate_best / l->read_gbs_best);
    }
    if (vs == VS_FMA) {
        int ti = c->threads > 1;
        snprintf(frac, sizeof frac, "%.0f%%", 100 * rate / cur->med[ti]);
        snprintf(fracb, sizeof fracb, "%.0f%%", 100 * rate_best / cur->best[ti]);
    }
    char tm[32], tsc[32] = "-", sp[16] = "-";
    fmt_time(tm, sizeof tm, t);
    if (cmp) {
        fmt_time(tsc, sizeof tsc, ts);
        snprintf(sp, sizeof sp, "%.1fx", ts / t);
    }
    printf("%-11s %-30s %3d %10s %9.2f %-7s %6s %6s %6s %10s %7s\n", op, size,
           c->threads ? c->threads : 1, tm, rate, unit, frac, fracb, pair, tsc, sp);
    fflush(stdout);
    return t;
}

static float *falloc(size_t n, float lo, float hi, unsigned seed)
{
    float *p = dpt_alloc(n * sizeof(float) + 64);
    if (!p) {
        fprintf(stderr, "kernels: out of memory (%zu MiB)\n", (n * sizeof(float)) >> 20);
        exit(1);
    }
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        p[i] = lo + (hi - lo) * (float)((s >> 40) * 0x1p-24);
    }
    return p;
}

/* ---- BLAS-1 and elementwise ---- */

static void run_dot(bcase *c, const dpt_kernels *k)
{
    c->sink += k->dot(c->n, c->X, c->y);
}
static void run_axpy(bcase *c, const dpt_kernels *k)
{
    k->axpy(c->n, 1e-7f, c->X, c->y);
}
static void run_scale(bcase *c, const dpt_kernels *k)
{
    k->scale(c->n, 1.0000001f, c->y);
}
static void run_add(bcase *c, const dpt_kernels *k)
{
    k->add(c->n, c->X, c->y);
}
static void run_vexp(bcase *c, const dpt_kernels *k)
{
    k->vexp(c->n, c->X, c->y);
}
static void run_vlog(bcase *c, const dpt_kernels *k)
{
    k->vlog(c->n, c->y, c->X + c->n);
}

static void bench_vec(void)
{
    size_t sizes[] = {4096, quick ? (size_t)8 << 20 : (size_t)32 << 20};
    for (int si = 0; si < 2; si++) {
        size_t n = sizes[si];
        bcase c = {0};
        c.n = n;
        c.X = falloc(2 * n, -1, 1, 1);
        c.y = falloc(n, 0.5f, 1.5f, 2);
        char sz[64];
        snprintf(sz, sizeof sz, "n=%zu (%s)", n, si ? "memory" : "L1");
        /* the writing kernels' GB/s counts reads and writes, which the
         * read bandwidth does not bound (scale read 190% of it on Zen 5):
         * no ceiling for them */
        c.run = run_dot;
        row("dot", sz, &c, si ? 8.0 * n : 2.0 * n, si ? "GB/s" : "GFLOP/s", si ? VS_READ : VS_FMA);
        c.run = run_axpy;
        row("axpy", sz, &c, si ? 12.0 * n : 2.0 * n, si ? "GB/s" : "GFLOP/s",
            si ? VS_NONE : VS_FMA);
        c.run = run_scale;
        row("scale", sz, &c, si ? 8.0 * n : n, si ? "GB/s" : "Gel/s", VS_NONE);
        c.run = run_add;
        row("add", sz, &c, si ? 12.0 * n : n, si ? "GB/s" : "Gel/s", VS_NONE);
        if (!si) {
            c.run = run_vexp;
            row("vexp", sz, &c, n, "Gel/s", VS_NONE);
            c.run = run_vlog;
            row("vlog", sz, &c, n, "Gel/s", VS_NONE);
        }
        dpt_free(c.X);
        dpt_free(c.y);
    }
}

/* ---- fused linear / logistic gradient ---- */

/* Each thread takes a contiguous slice of rows, as the engine does, with its
 * own gradient buffer (cache-line padded); X was first-touched by the same
 * static split. */
static void run_glm(bcase *c, const dpt_kernels *k)
{
    size_t n = c->n, d = c->d, ld = c->kk;
    size_t gld = dpt_pad_floats(d) + 16;
    double lsum = 0;
#pragma omp parallel num_threads(c->threads) reduction(+ : lsum)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        size_t lo = n * (size_t)t / (size_t)nt, hi = n * (size_t)(t + 1) / (size_t)nt;
        float *g = c->g + (size_t)t * gld;
        memset(g, 0, d * sizeof(float));
        double gb = 0;
        lsum += k->glm_grad((dpt_glm_loss)c->act, hi - lo, d, c->X + lo * ld, ld, c->y + lo, c->w,
                            0.0f, g, &gb, NULL);
    }
    for (int t = 1; t < c->threads; t++) k->add(d, c->g + (size_t)t * gld, c->g);
    c->sink += lsum;
}

/* the read loop over run_glm's X, same split */
static void run_read_x(bcase *c, const dpt_kernels *k)
{
    (void)k;
    size_t n = c->n, ld = c->kk;
    dpt_k_read_fn rd = dpt_k_read_loop();
    double s = 0;
#pragma omp parallel num_threads(c->threads) reduction(+ : s)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        size_t lo = n * (size_t)t / (size_t)nt, hi = n * (size_t)(t + 1) / (size_t)nt;
        size_t len = (hi - lo) * ld / 64 * 64; /* the read loop takes 64-float steps */
        s += rd(len, c->X + lo * ld);
    }
    c->sink += s;
}

static void bench_glm(int nthreads)
{
    size_t n = quick ? 250000 : 1000000, d = 64, ld = dpt_pad_floats(d);
    bcase c = {0};
    c.n = n;
    c.d = d;
    c.kk = ld;
    c.X = dpt_alloc(n * ld * sizeof(float));
    c.y = falloc(n, 0, 1, 3);
    c.w = falloc(d, -0.1f, 0.1f, 4);
    c.g = dpt_alloc((size_t)nthreads * (dpt_pad_floats(d) + 16) * sizeof(float));
    if (!c.X || !c.g) {
        fprintf(stderr, "kernels: out of memory for the gradient case\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) c.y[i] = c.y[i] > 0.5f;
#pragma omp parallel num_threads(nthreads)
    {
        /* first touch by the thread that reads the rows, with the split run_glm uses */
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        size_t lo = n * (size_t)t / (size_t)nt, hi = n * (size_t)(t + 1) / (size_t)nt;
        uint64_t s = 0x9E3779B97F4A7C15ull * (t + 7);
        for (size_t i = lo * ld; i < hi * ld; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            c.X[i] = (float)((s >> 40) * 0x1p-23) - 1.0f;
        }
    }
    char sz[64];
    double bytes = (double)n * d * sizeof(float); /* docs/workloads.md: X only */
    int th[2] = {1, nthreads};
    for (int ti = 0; ti < (nthreads > 1 ? 2 : 1); ti++)
        for (int loss = 0; loss < 2; loss++) {
            c.threads = th[ti];
            c.act = loss;
            c.run = run_glm;
            c.pair = run_read_x;
            snprintf(sz, sizeof sz, "n=%zu d=%zu %s (memory)", n, d, loss ? "bce" : "mse");
            row("glm_grad", sz, &c, bytes, "GB/s", VS_READ);
        }
    c.pair = NULL;
    /* in cache (L2): compute rate, 4 flops per element (dot and update FMAs) */
    c.n = 2000;
    c.threads = 1;
    for (int loss = 0; loss < 2; loss++) {
        c.act = loss;
        snprintf(sz, sizeof sz, "n=%zu d=%zu %s (L2)", c.n, d, loss ? "bce" : "mse");
        row("glm_grad", sz, &c, 4.0 * c.n * d, "GFLOP/s", VS_FMA);
    }
    dpt_free(c.X);
    dpt_free(c.y);
    dpt_free(c.w);
    dpt_free(c.g);
}

/* ---- SGEMM ---- */

static void run_gemm(bcase *c, const dpt_kernels *k)
{
    /* stored shapes follow the flags; leading dimensions are the widths */
    size_t lda = c->ta ? c->m : c->kk, ldb = c->tb ? c->kk : c->n;
    k->sgemm(c->ta, c->tb, c->m, c->n, c->kk, 1.0f, c->A, lda, c->B, ldb, c->ta ? 1.0f : 0.0f, c->C,
             c->n);
}

static void gemm_row(const char *what, int ta, int tb, size_t m, size_t n, size_t k)
{
    bcase c = {0};
    c.ta = ta, c.tb = tb, c.m = m, c.n = n, c.kk = k;
    c.A = falloc(m * k, -1, 1, 5);
    c.B = falloc(k * n, -1, 1, 6);
    c.C = falloc(m * n, -1, 1, 7);
    c.run = run_gemm;
    char sz[64], op[32];
    snprintf(sz, sizeof sz, "%zux%zux%zu %s", m, n, k, what);
    snprintf(op, sizeof op, "sgemm %s%s", ta ? "T" : "N", tb ? "T" : "N");
    row(op, sz, &c, 2.0 * m * n * k, "GFLOP/s", VS_FMA);
    dpt_free(c.A);
    dpt_free(c.B);
    dpt_free(c.C);
}

static void bench_gemm(void)
{
    /* MLP layers with a batch of 256: (inputs, outputs) */
    static const size_t L[][2] = {{784, 256}, {256, 128}, {784, 128}, {256, 512}, {512, 512}};
    size_t nl = quick ? 2 : sizeof L / sizeof L[0];
    const size_t B = 256;
    for (size_t i = 0; i < nl; i++) {
        size_t in = L[i][0], out = L[i][1];
        char w[48];
        snprintf(w, sizeof w, "fwd %zu->%zu", in, out);
        gemm_row(w, 0, 1, B, out, in); /* Z = X W^T */
        snprintf(w, sizeof w, "dW %zu->%zu", in, out);
        gemm_row(w, 1, 0, out, in, B); /* dW += dZ^T X */
        snprintf(w, sizeof w, "dX %zu->%zu", in, out);
        gemm_row(w, 0, 0, B, in, out); /* dX = dZ W */
    }
    /* in cache */
    gemm_row("(L1/L2)", 0, 0, 64, 64, 64);
    gemm_row("(L1/L2)", 0, 1, 64, 64, 64);
    gemm_row("(L2)", 0, 0, 128, 128, 128);
    gemm_row("(L2)", 1, 1, 128, 128, 128);
    /* the 10-20-1 network of mlp-seed, batch 256 */
    gemm_row("10-20-1 fwd1", 0, 1, 256, 20, 10);
    gemm_row("10-20-1 fwd2", 0, 1, 256, 1, 20);
    gemm_row("10-20-1 dW2", 1, 0, 1, 20, 256);
    gemm_row("10-20-1 dX2", 0, 0, 256, 20, 1);
    gemm_row("10-20-1 dW1", 1, 0, 20, 10, 256);
}

/* ---- activations, column sums, softmax ---- */

static void run_bias_act(bcase *c, const dpt_kernels *k)
{
    /* from the same input every call: tanh/sigmoid of saturated values are faster */
    memcpy(c->C, c->A, c->m * c->n * sizeof(float));
    k->bias_act((dpt_act)c->act, 1, c->m, c->n, c->w, c->C, c->n);
}
static void run_act_bwd(bcase *c, const dpt_kernels *k)
{
    k->act_bwd((dpt_act)c->act, c->m, c->n, c->A, c->n, c->B, c->n, c->C, c->n);
}
static void run_col_sum(bcase *c, const dpt_kernels *k)
{
    k->col_sum(c->m, c->n, c->A, c->n, c->w);
}
static void run_softmax(bcase *c, const dpt_kernels *k)
{
    size_t hits = 0;
    c->sink += k->softmax_ce(c->m, c->n, c->A, c->n, c->y, c->C, c->n, &hits);
}

static void bench_elementwise(void)
{
    static const char *acts[] = {"relu", "tanh", "sigmoid"};
    size_t m = 256, n = 512;
    bcase c = {0};
    c.m = m, c.n = n;
    c.A = falloc(m * n, -3, 3, 8);
    c.B = falloc(m * n, -1, 1, 9);
    c.C = falloc(m * n, 0, 1, 10);
    c.w = falloc(n, -0.1f, 0.1f, 11);
    c.y = falloc(m, 0, 10, 12);
    char sz[64];
    for (int a = 0; a < 3; a++) {
        c.act = a;
        c.run = run_bias_act;
        snprintf(sz, sizeof sz, "%zux%zu %s (+copy)", m, n, acts[a]);
        row("bias_act", sz, &c, (double)m * n, "Gel/s", VS_NONE);
    }
    for (int a = 0; a < 3; a++) {
        c.act = a;
        c.run = run_act_bwd;
        snprintf(sz, sizeof sz, "%zux%zu %s", m, n, acts[a]);
        row("act_bwd", sz, &c, (double)m * n, "Gel/s", VS_NONE);
    }
    c.run = run_col_sum;
    snprintf(sz, sizeof sz, "%zux%zu", m, n);
    row("col_sum", sz, &c, (double)m * n, "Gel/s", VS_NONE);
    for (size_t i = 0; i < m; i++) c.y[i] = (float)(int)c.y[i];
    c.n = 10;
    c.run = run_softmax;
    snprintf(sz, sizeof sz, "%zux10", m);
    row("softmax_ce", sz, &c, (double)m * 10, "Gel/s", VS_NONE);
    dpt_free(c.A);
    dpt_free(c.B);
    dpt_free(c.C);
    dpt_free(c.w);
    dpt_free(c.y);
}

/* ---- one MLP training step on a batch, through the table as models call it ---- */

typedef struct {
    int layers;
    size_t width[5];
    size_t batch;
    float *X, *y, *W, *G, *act[5], *D, *E;
    size_t woff[4], boff[4], ld;
    size_t nw;         /* floats of W (and of G) */
    double pair_bytes; /* what the paired read reads: the step's streamed bytes */
} mlp;

static void run_mlp(bcase *c, const dpt_kernels *k)
{
    mlp *p = (mlp *)c->A;
    size_t R = p->batch, ld = p->ld;
    int L = p->layers;
    const float *in = p->X;
    size_t ldin = p->width[0];
    for (int l = 0; l < L; l++) {
        size_t nin = p->width[l], nout = p->width[l + 1];
        k->sgemm(0, 1, R, nout, nin, 1.0f, in, ldin, p->W + p->woff[l], nin, 0.0f, p->act[l], ld);
        k->bias_act(DPT_ACT_RELU, l + 1 < L, R, nout, p->W + p->boff[l], p->act[l], ld);
        in = p->act[l];
        ldin = ld;
    }
    float *D = p->D, *E = p->E;
    size_t K = p->width[L];
    if (K > 1) {
        c->sink += k->softmax_ce(R, K, p->act[L - 1], ld, p->y, D, ld, NULL);
    } else {
        for (size_t i = 0; i < R; i++) D[i * ld] = 2 * (p->act[L - 1][i * ld] - p->y[i]);
    }
    for (int l = L - 1; l >= 0; l--) {
        size_t nin = p->width[l], nout = p->width[l + 1];
        const float *a = l ? p->act[l - 1] : p->X;
        size_t lda = l ? ld : p->width[0];
        k->sgemm(1, 0, nout, nin, R, 1.0f, D, ld, a, lda, 1.0f, p->G + p->woff[l], nin);
        k->col_sum(R, nout, D, ld, p->G + p->boff[l]);
        if (l == 0) break;
        k->sgemm(0, 0, R, nin, nout, 1.0f, D, ld, p->W + p->woff[l], nin, 0.0f, E, ld);
        k->act_bwd(DPT_ACT_RELU, R, nin, a, ld, E, ld, E, ld);
        float *t = D;
        D = E;
        E = t;
    }
    /* the update, as the optimizer's single loop over the flat buffers */
    k->axpy(p->boff[L - 1] + K, -1e-6f, p->G, p->W);
}

/* The small-row step's pair: the bytes the step streams, read over and
 * over from its W with dpt_limits' read loop (the read bandwidth at the
 * weights' size, as the row's limit is measured), interleaved with the
 * step so that both meet the same neighbours (row(): %pair) */
static void run_read_w(bcase *c, const dpt_kernels *k)
{
    (void)k;
    const mlp *p = (const mlp *)c->A;
    dpt_k_read_fn rd = dpt_k_read_loop();
    size_t left = (size_t)(p->pair_bytes / sizeof(float)) / 64 * 64, whole = p->nw / 64 * 64;
    double s = 0;
    while (left) {
        size_t n = left < whole ? left : whole;
        s += rd(n, p->W);
        left -= n;
    }
    c->sink += s;
}

/* bytes_lim: time the step as weight streaming (GB/s) against that read
 * bandwidth instead of as GFLOP/s against the FMA peak */
static void mlp_row_as(const char *name, int layers, const size_t *width, size_t batch,
                       const dpt_limits *bytes_lim)
{
    mlp p = {0};
    p.layers = layers;
    p.batch = batch;
    size_t off = 0;
    for (int l = 0; l <= layers; l++) p.width[l] = width[l];
    for (int l = 0; l < layers; l++) {
        p.woff[l] = off;
        off += width[l] * width[l + 1];
        p.boff[l] = off;
        off += width[l + 1];
    }
    /* the activations strided as the model strides them */
    dpt_model_spec spec = {.kind = DPT_MODEL_MLP,
                           .inputs = width[0],
                           .n_hidden = layers - 1,
                           .classes = width[layers] > 1 ? (int)width[layers] : 0,
                           .act = DPT_ACTIVATION_RELU,
                           .loss = width[layers] > 1 ? DPT_LOSS_CE : DPT_LOSS_MSE,
                           .bias = 1};
    for (int l = 0; l + 1 < layers; l++) spec.hidden[l] = width[l + 1];
    dpt_model model;
    if (dpt_model_init(&model, &spec)) {
        fprintf(stderr, "kernels: %s: %s\n", name, dpt_last_error());
        exit(1);
    }
    p.ld = dpt_model_act_stride(&model);
    p.nw = off;
    p.W = falloc(off, -0.05f, 0.05f, 13);
    p.G = falloc(off, 0, 0, 14);
    p.X = falloc(batch * width[0], -1, 1, 15);
    p.y = falloc(batch, 0, (float)width[layers], 16);
    for (size_t i = 0; i < batch; i++) p.y[i] = width[layers] > 1 ? (float)(int)p.y[i] : p.y[i];
    for (int l = 0; l < layers; l++) p.act[l] = falloc(batch * p.ld, 0, 0, 17);
    p.D = falloc(batch * p.ld, 0, 0, 18);
    p.E = falloc(batch * p.ld, 0, 0, 19);
    bcase c = {0};
    c.A = (float *)(void *)&p;
    c.run = run_mlp;
    char sz[64];
    snprintf(sz, sizeof sz, "%s batch %zu", name, batch);
    /* flops executed: forward and dW 2 x weights per sample each, dX for all
     * layers but the first (docs/workloads.md's 6 x parameters also counts the
     * first layer's dX, which training never computes) */
    double wsum = 0, wfirst = (double)width[0] * width[1];
    for (int l = 0; l < layers; l++) wsum += (double)width[l] * width[l + 1];
    if (bytes_lim) {
        /* what one step streams: W forward, gW read and written by dW (beta 1),
         * W again for dX past the first layer, and the update's read of G and
         * read and write of W; the biases with them */
        double wb = 4.0 * (double)p.boff[layers - 1] + 4.0 * (double)width[layers];
        double bytes = 7 * wb - 4 * wfirst;
        dpt_limits save = lim1;
        lim1 = *bytes_lim;
        p.pair_bytes = bytes;
        c.pair = run_read_w;
        double t = row("mlp small", sz, &c, bytes, "GB/s", VS_READ);
        lim1 = save;
        /* the roofline: from a few rows on the FMAs, not the bytes, take
         * longer at their peak (this ISA's, this run); the bytes at the
         * paired read's rate, which met the same neighbours as the step */
        double flops = 2.0 * batch * (3 * wsum - wfirst);
        double tb = pair_time, tf = flops / (cur->med[0] * 1e9);
        printf("%-11s %-30s     streaming %.1f us (the paired read), FMAs %.1f us at peak: %.0f%% "
               "of the roofline (%s-bound)\n",
               "", "", tb * 1e6, tf * 1e6, 100 * (tb > tf ? tb : tf) / t,
               tb > tf ? "bandwidth" : "FMA");
    } else {
        row("mlp step", sz, &c, 2.0 * batch * (3 * wsum - wfirst), "GFLOP/s", VS_FMA);
    }
    dpt_free(p.W);
    dpt_free(p.G);
    dpt_free(p.X);
    dpt_free(p.y);
    for (int l = 0; l < layers; l++) dpt_free(p.act[l]);
    dpt_free(p.D);
    dpt_free(p.E);
}

static void mlp_row(const char *name, int layers, const size_t *width, size_t batch)
{
    mlp_row_as(name, layers, width, batch, NULL);
}

/* The small-row regime (1-16 rows per step: a thread's share on the
 * two-level engine): each step is bound by streaming the weights and their
 * gradients, so it is set against the read bandwidth measured at the
 * weights' size (L2/L3) in the same run, not against DRAM or the FMA peak. */
static void bench_small_rows(void)
{
    static const size_t fm[] = {784, 256, 128, 10}, ms[] = {1, 2, 4, 8, 16};
    size_t wbytes = 4 * (784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
    dpt_limits lc;
    if (dpt_limits_measure_sized(1, wbytes, 0, &lc)) {
        fprintf(stderr, "kernels: %s\n", dpt_last_error());
        exit(1);
    }
    printf("small rows, 784-256-128-10 (%zu KiB of weights): read bandwidth at that size "
           "%.1f (%.1f) GB/s; %%lim is against it,\n%%pair against the same read of the step's "
           "bytes interleaved with it\n",
           wbytes >> 10, lc.read_gbs, lc.read_gbs_best);
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        mlp_row_as("784-256-128-10", 3, fm, ms[i], &lc);
}

/* the fused tiny-MLP gradient (the path dpt_model_grad takes for 10-20-1) */
static void run_tiny(bcase *c, const dpt_kernels *k)
{
    c->sink += k->mlp_tiny_grad(c->m, c->d, c->n, c->X, c->d, c->y, c->w, c->g);
}

static void tiny_row(size_t rows)
{
    size_t d = 10, h = 20, np = h * d + 2 * h + 1;
    bcase c = {0};
    c.m = rows;
    c.d = d;
    c.n = h;
    c.X = falloc(rows * d, -1, 1, 20);
    c.y = falloc(rows, -1, 1, 21);
    c.w = falloc(np, -0.3f, 0.3f, 22);
    c.g = falloc(np, 0, 0, 23);
    c.run = run_tiny;
    char sz[64];
    snprintf(sz, sizeof sz, "10-20-1 fused, %zu rows", rows);
    /* dpt_model_train_flops: 4 x 200 + 6 x 20 per row */
    row("mlp tiny", sz, &c, 920.0 * (double)rows, "GFLOP/s", VS_FMA);
    dpt_free(c.X);
    dpt_free(c.y);
    dpt_free(c.w);
    dpt_free(c.g);
}

static void bench_mlp(void)
{
    static const size_t seed[] = {10, 20, 1}, fm[] = {784, 256, 128, 10},
                        wide[] = {256, 512, 512, 10};
    mlp_row("10-20-1", 2, seed, 256);
    tiny_row(256);
    tiny_row(65536);
    tiny_row(quick ? 250000 : 1000000);    /* mlp-seed's full batch, streamed from memory */
    mlp_row("784-256-128-10", 3, fm, 128); /* fmnist-mlp's batch */
    mlp_row("784-256-128-10", 3, fm, 256);
    mlp_row("256-512-512-10", 3, wide, 512);
    bench_small_rows();
}

/* the FMA loop of one ISA on every thread at once: median and best of 5 */
static void fma_peak(isa_run *r, int threads, int ti)
{
    enum { REPS = 5 };
    double t[REPS + 1];
    float acc = 0;
    size_t iters = quick ? r->iters / 4 : r->iters;
    int nth = threads;
#pragma omp parallel num_threads(threads) reduction(+ : acc)
    {
#pragma omp single
        nth = omp_get_num_threads();
        for (int q = 0; q <= REPS; q++) {
            double t0 = 0;
#pragma omp barrier
#pragma omp master
            t0 = now();
            acc += r->fma(iters);
#pragma omp barrier
#pragma omp master
            t[q] = now() - t0;
        }
    }
    volatile float sink = acc;
    (void)sink;
    for (int q = 0; q < REPS; q++) t[q] = r->flops_iter * (double)iters * nth / t[q + 1] * 1e-9;
    qsort(t, REPS, sizeof t[0], cmpd);
    r->med[ti] = t[REPS / 2];
    r->best[ti] = t[REPS - 1];
}

int main(int argc, char **argv)
{
    const char *want = getenv("DPT_ISA");
    int threads = omp_get_max_threads();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            quick = 1;
        } else if (!strcmp(argv[i], "--no-scalar")) {
            with_scalar = 0;
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            only = argv[++i];
        } else if (!strcmp(argv[i], "--isa") && i + 1 < argc) {
            want = argv[++i];
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
            if (threads < 1) threads = 1;
        } else {
            fprintf(stderr,
                    "usage: %s [--quick] [--threads N] [--no-scalar] "
                    "[--only glm|gemm|mlp|elem|vec] [--isa scalar|avx2|avx512]\n",
                    argv[0]);
            return 2;
        }
    }
    if (want && *want && strcmp(want, "auto") && dpt_kernels_select(want) != 0) {
        fprintf(stderr, "kernels: %s\n", dpt_last_error());
        return 2;
    }
    dpt_kernels_fill_scalar(&S);
    isa_run runs[3];
    int nruns = 0;
    runs[nruns++] = (isa_run){
        "scalar", S, dpt_k_fma_f32_scalar, DPT_K_FMA_FLOPS_SCALAR, 2000000 / 4, {0, 0}, {0, 0}};
#if DPT_HAVE_AVX2
    if (dpt_cpu_has_avx2()) {
        runs[nruns] = (isa_run){
            "avx2", S, dpt_k_fma_f32_avx2, DPT_K_FMA_FLOPS_AVX2, 20000000 / 4, {0, 0}, {0, 0}};
        dpt_kernels_fill_avx2(&runs[nruns++].k);
    }
#endif
#if DPT_HAVE_AVX512
    if (dpt_cpu_has_avx2() && dpt_cpu_has_avx512()) {
        runs[nruns] = (isa_run){"avx512",
                                runs[nruns - 1].k,
                                dpt_k_fma_f32_avx512,
                                DPT_K_FMA_FLOPS_AVX512,
                                7500000 / 4,
                                {0, 0},
                                {0, 0}};
        dpt_kernels_fill_avx512(&runs[nruns++].k);
    }
#endif
    if (want && *want && strcmp(want, "auto")) {
        /* one table: the one just selected */
        for (int i = 0; i < nruns; i++)
            if (!strcmp(runs[i].name, dpt_kernels_get()->isa)) runs[0] = runs[i];
        nruns = 1;
    }
    printf("dpt kernel benchmark: ISAs");
    for (int i = 0; i < nruns; i++) printf(" %s", runs[i].name);
    printf(" (CPU AVX2+FMA %s, AVX-512 %s; build AVX2 %s, AVX-512 %s), %d threads%s\n",
           dpt_cpu_has_avx2() ? "yes" : "no", dpt_cpu_has_avx512() ? "yes" : "no",
           dpt_build_has_avx2() ? "yes" : "no", dpt_build_has_avx512() ? "yes" : "no", threads,
           quick ? ", quick" : "");
    size_t bytes = quick ? DPT_LIMITS_QUICK_BYTES : DPT_LIMITS_READ_BYTES;
    if (dpt_limits_measure_sized(1, bytes, 0, &lim1) ||
        dpt_limits_measure_sized(threads, bytes, 0, &limN)) {
        fprintf(stderr, "kernels: %s\n", dpt_last_error());
        return 1;
    }
    printf("read bandwidth, this run (%zu MiB read, %d reps): median (best)\n",
           lim1.read_bytes >> 20, lim1.reps);
    printf("  1 thread : %6.1f (%6.1f) GB/s\n", lim1.read_gbs, lim1.read_gbs_best);
    printf("  %d threads: %6.1f (%6.1f) GB/s\n", limN.threads, limN.read_gbs, limN.read_gbs_best);
    printf("FMA peak of each ISA's loop, this run: median (best) GFLOP/s\n");
    for (int i = 0; i < nruns; i++) {
        fma_peak(&runs[i], 1, 0);
        fma_peak(&runs[i], threads, 1);
        printf("  %-7s 1 thread %7.1f (%7.1f)   %d threads %7.1f (%7.1f)\n", runs[i].name,
               runs[i].med[0], runs[i].best[0], threads, runs[i].med[1], runs[i].best[1]);
    }
    printf("GB/s against the read bandwidth (reads only: none for axpy, scale and add, whose "
           "GB/s\ncounts their writes too), GFLOP/s against the FMA peak of the row's ISA, at "
           "the row's\nthread count; %%lim = median/median, %%best = best/best, %%pair = against "
           "the read kernel on\nthe same array (small rows: the step's bytes from its weights), "
           "interleaved batch by batch;\nspeedup = scalar median / the ISA's median\n");
    for (int i = 0; i < nruns; i++) {
        cur = &runs[i];
        K = &runs[i].k;
        printf("\n== %s\n", K->isa);
        header();
        if (!only || !strcmp(only, "glm")) bench_glm(threads);
        if (!only || !strcmp(only, "gemm")) bench_gemm();
        if (!only || !strcmp(only, "mlp")) bench_mlp();
        if (!only || !strcmp(only, "elem")) bench_elementwise();
        if (!only || !strcmp(only, "vec")) bench_vec();
    }
    return 0;
}
