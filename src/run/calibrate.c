/* Calibration: what a step's work costs on this machine, in per-thread CPU
 * time (CLOCK_THREAD_CPUTIME_ID, which stays valid when threads share a
 * core): the model's gradient as a function of rows (small row counts cost
 * far more per row), the update and the vector add per float, the row copy
 * per byte, the shuffle per row, a barrier; medians of repetitions. Saved
 * as JSON so that one machine's calibration can predict another. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/barrier.h"
#include "dpt/data.h"
#include "dpt/error.h"
#include "dpt/stats.h"
#include "dpt/file.h"
#include "dpt/limits.h"
#include "dpt/predict.h"
#include "dpt/run.h"
#include "kernels/kernels.h"
#include "models/split.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* the median of n repetitions (dpt/stats.h) */
static double median(const double *v, int n)
{
    return dpt_stats_median(v, (size_t)n);
}

/* Something a timed loop computes, so the compiler keeps the loop. */
static volatile double sink;

/* What one measurement runs: fn(ctx) once. */
typedef void (*work_fn)(void *ctx);

/* CPU seconds of one fn(ctx): repeated to at least min_s per repetition
 * (timer resolution, and small calls' noise), the median of reps. */
static double time_cpu(work_fn fn, void *ctx, int reps, double min_s)
{
    fn(ctx); /* warm: caches, page faults */
    double t0 = cpu_now();
    fn(ctx);
    double one = cpu_now() - t0;
    long iters = one > 0 ? (long)(min_s / one) + 1 : 1000;
    if (iters > 100000) iters = 100000;
    double v[64];
    if (reps > 64) reps = 64;
    for (int r = 0; r < reps; r++) {
        t0 = cpu_now();
        for (long i = 0; i < iters; i++) fn(ctx);
        v[r] = (cpu_now() - t0) / (double)iters;
    }
    return median(v, reps);
}

typedef struct grad_ctx {
    const dpt_model *m;
    const float *w, *X, *y;
    size_t ld, rows;
    float *g, *scratch;
    size_t n, at; /* streamed: the rows to walk through, the next call's first */
    int stream;
} grad_ctx;

static void run_grad(void *p)
{
    grad_ctx *c = p;
    size_t at = 0;
    if (c->stream) {
        if (c->at + c->rows > c->n) c->at = 0;
        at = c->at;
        c->at += c->rows;
    }
    sink = dpt_model_grad_to(c->m, NULL, c->w, c->X + at * c->ld, c->ld, c->y + at, c->rows, c->g,
                             c->scratch);
}

/* The layer split: thread 0's share of nu units side by side, k threads,
 * the others' parts not computed (a sync that waits for nobody); the units
 * one item, summed as the engine's fold sums a domain's (in registers, or
 * in the tile; tile NULL: each unit's dW written, all into g). */
typedef struct split_ctx {
    const dpt_model *m;
    const float *w, *X, *y;
    size_t ld, rows;
    float *g, *scratch, *tile;
    int k, nu;
} split_ctx;

static void no_sync(void *ud)
{
    (void)ud;
}

static void run_split(void *p)
{
    split_ctx *c = p;
    dpt_split_unit u[DPT_SPLIT_MAX_UNITS];
    for (int v = 0; v < c->nu; v++)
        u[v] = (dpt_split_unit){c->X + (size_t)v * c->rows * c->ld, c->y + (size_t)v * c->rows,
                                c->rows, c->g, 0};
    int end[DPT_SPLIT_MAX_UNITS] = {c->nu};
    const dpt_split_fold fold = {end, c->tile};
    dpt_model_grad_split(c->m, NULL, c->w, c->ld, u, c->nu, c->scratch, 0, c->k, no_sync, NULL,
                         c->tile && dpt_split_fold_fits(c->m, c->nu) ? &fold : NULL);
    sink = u[0].loss;
}

/* split_ns: per unit, k = 2, 4, 8, 16 threads, units of 1-16 rows, as many
 * side by side as a domain of k threads computes (k, or what fits a block) */
static void time_split(const dpt_model *m, const float *w, const float *X, size_t ld,
                       const float *y, size_t n, float *g, float *scratch, int reps, double min_s,
                       dpt_calibration *out)
{
    static const double K[DPT_CAL_SPLIT_K] = {2, 4, 8, 16},
                        R[DPT_CAL_SPLIT_ROWS] = {1, 2, 4, 8, 16};
    const size_t brows = dpt_model_block_rows(m);
    if (!dpt_model_splittable(m, NULL)) return;
    float *tile = dpt_alloc(DPT_SPLIT_TILE_FLOATS * sizeof(float)); /* NULL: no fold */
    out->nsplit_k = DPT_CAL_SPLIT_K;
    out->nsplit_rows = DPT_CAL_SPLIT_ROWS;
    for (int i = 0; i < DPT_CAL_SPLIT_K; i++) {
        out->split_k[i] = K[i];
        for (int j = 0; j < DPT_CAL_SPLIT_ROWS; j++) {
            out->split_rows[j] = R[j];
            split_ctx c = {m, w, X, y, ld, (size_t)R[j], g, scratch, tile, (int)K[i], (int)K[i]};
            if ((size_t)c.nu * c.rows > brows) c.nu = (int)(brows / c.rows);
            if ((size_t)c.nu * c.rows > n) c.nu = (int)(n / c.rows);
            out->split_ns[i][j] = c.nu > 0 ? 1e9 * time_cpu(run_split, &c, reps, min_s) / c.nu : 0;
        }
        /* monotone in rows, as the gradient's curve */
        for (int j = 1; j < DPT_CAL_SPLIT_ROWS; j++)
            if (out->split_ns[i][j] < out->split_ns[i][j - 1])
                out->split_ns[i][j] = out->split_ns[i][j - 1];
    }
    dpt_free(tile);
}

typedef struct vec_ctx {
    const dpt_optim_spec *o;
    size_t n;
    float *a, *b, *v;
    const float *gs[1];
} vec_ctx;

static void run_add(void *p)
{
    vec_ctx *c = p;
    dpt_kernels_get()->add(c->n, c->a, c->b);
}

static void run_update(void *p)
{
    vec_ctx *c = p;
    /* a tiny rate: the parameters barely move, nothing overflows */
    sink = dpt_optim_update_sum(c->o, 0, c->n, c->b, c->gs, 1, c->v, 1e-3f, 1e-7f);
}

typedef struct copy_ctx {
    const float *X, *y;
    size_t ld, rows;
    float *dX, *dy;
    const uint32_t *order;
    size_t norder, at; /* the drawn rows, the next call's first */
} copy_ctx;

/* the engine's row copy: rows in shuffled order into a thread's buffer;
 * each call the next rows of the draw, so that the sources come from
 * memory as an epoch's do, not from the cache a previous call left */
static void run_copy(void *p)
{
    copy_ctx *c = p;
    float *X = c->dX, *y = c->dy;
    if (c->at + c->rows > c->norder) c->at = 0;
    const uint32_t *order = c->order + c->at;
    c->at += c->rows;
    for (size_t i = 0; i < c->rows; i++, X += c->ld, y++) {
        size_t r = order[i];
        memcpy(X, c->X + r * c->ld, c->ld * sizeof(float));
        *y = c->y[r];
    }
}

typedef struct shuffle_ctx {
    uint32_t *order;
    size_t n;
    uint64_t key, epoch;
} shuffle_ctx;

/* the engine's Fisher-Yates (rows.c) */
static void run_shuffle(void *p)
{
    shuffle_ctx *c = p;
    const uint64_t base = c->epoch++ * c->n;
    for (size_t i = 0; i < c->n; i++) c->order[i] = (uint32_t)i;
    for (size_t i = c->n - 1; i > 0; i--) {
        size_t j = (size_t)(dpt_rng_uniform(c->key, base + i) * (double)(i + 1));
        if (j > i) j = i;
        uint32_t t = c->order[i];
        c->order[i] = c->order[j];
        c->order[j] = t;
    }
}

/* Wall seconds of one barrier of T threads, the engine's (core/barrier.h):
 * the median over reps of blocks of barriers. */
static double time_barrier(int T, int reps)
{
    enum { ITERS = 2000 };
    double v[32];
    if (reps > 32) reps = 32;
    dpt_barrier *bar = dpt_alloc(sizeof *bar);
    if (!bar || dpt_barrier_init(bar, T, NULL)) {
        dpt_free(bar);
        return 0;
    }
    for (int r = 0; r < reps; r++) {
        double t0 = 0, t1 = 0;
#pragma omp parallel num_threads(T)
        {
#pragma omp barrier
#pragma omp master
            t0 = wall_now();
            for (int i = 0; i < ITERS; i++) dpt_barrier_wait(bar, omp_get_thread_num());
#pragma omp master
            t1 = wall_now();
        }
        v[r] = (t1 - t0) / ITERS;
    }
    dpt_barrier_destroy(bar);
    dpt_free(bar);
    return median(v, reps);
}

/* Reading `bytes` that another core has just written, and the same read
 * of lines the reader wrote itself: thread 0 writes, thread 1 reads, then
 * thread 1 writes and reads its own. The read consumes every float in one
 * chain, as a kernel does work between its loads: few lines in flight, as
 * in the engine. The two meet at the engine's barrier, which yields its
 * CPU when the other is not running (libgomp's spins for a while first:
 * on a loaded machine that was most of a minute). Medians over reps blocks
 * of seconds per read into *cross and *own; 0, or -1 (no memory, no team
 * of 2). */
static int time_cross_read(size_t bytes, int reps, double *cross, double *own)
{
    const size_t n = bytes / sizeof(float);
    float *a = dpt_alloc(n * sizeof(float)), *b = dpt_alloc(n * sizeof(float));
    dpt_barrier *bar = dpt_alloc(sizeof *bar);
    const int iters = bytes <= 4096 ? 2000 : bytes <= 65536 ? 400 : 40;
    double vc[32], vo[32];
    if (reps > 32) reps = 32;
    int ok = a && b && bar && n >= 16;
    if (bar && dpt_barrier_init(bar, 2, NULL)) {
        dpt_free(bar);
        bar = NULL;
        ok = 0;
    }
    for (int r = 0; r < reps && ok; r++) {
        double c = 0, o = 0;
#pragma omp parallel num_threads(2)
        {
            if (omp_get_num_threads() != 2) {
#pragma omp atomic write
                ok = 0;
            }
            const int t = omp_get_thread_num();
#pragma omp barrier
            for (int k = 0; k < iters && ok; k++) {
                if (t == 0)
                    for (size_t i = 0; i < n; i++) a[i] = (float)(i + (size_t)k);
                dpt_barrier_wait(bar, t);
                if (t == 1) {
                    double t0 = wall_now();
                    float s = 0;
                    for (size_t i = 0; i < n; i += 4) s += a[i] + a[i + 1] + a[i + 2] + a[i + 3];
                    sink = s;
                    c += wall_now() - t0;
                    for (size_t i = 0; i < n; i++) b[i] = (float)(i + (size_t)k);
                    t0 = wall_now();
                    s = 0;
                    for (size_t i = 0; i < n; i += 4) s += b[i] + b[i + 1] + b[i + 2] + b[i + 3];
                    sink = s;
                    o += wall_now() - t0;
                }
                dpt_barrier_wait(bar, t);
            }
        }
        vc[r] = c / iters;
        vo[r] = o / iters;
    }
    dpt_free(a);
    dpt_free(b);
    if (bar) dpt_barrier_destroy(bar);
    dpt_free(bar);
    if (!ok) return -1;
    *cross = median(vc, reps);
    *own = median(vo, reps);
    return 0;
}

/* GB/s of one thread reading a MiB another thread has just written (still
 * in that thread's cache): the reduce's and the broadcast's pattern. */
static double time_cross(int reps)
{
    const size_t bytes = (size_t)1 << 20;
    double cross, own;
    if (time_cross_read(bytes, reps, &cross, &own) || !(cross > 0)) return 0;
    return (double)bytes / cross / 1e9;
}

/* Nanoseconds a read of `bytes` that another core has just written takes
 * beyond the same read of the reader's own lines. */
static double time_handoff(size_t bytes, int reps)
{
    double cross, own;
    if (time_cross_read(bytes, reps, &cross, &own)) return 0;
    return cross > own ? 1e9 * (cross - own) : 0;
}

/* The handoff model (dpt_machine): the first line's latency, then each
 * further line's up to the count where the extra time stops growing. */
static void fit_handoff(int reps, dpt_calibration *out)
{
    const double e1 = time_handoff(64, reps), e64 = time_handoff(64 * 64, reps),
                 e4k = time_handoff(64 * 4096, reps);
    if (!(e1 > 0)) return;
    out->handoff_ns = e1;
    out->handoff_line_ns = e64 > e1 ? (e64 - e1) / 63 : 0;
    out->handoff_lines =
        out->handoff_line_ns > 0 ? (e4k > e64 ? (e4k - e1) / out->handoff_line_ns : 63) : 0;
    if (out->handoff_lines > 4095) out->handoff_lines = 4095;
}

/* CPU seconds per wall second of T threads all busy at once (the mean
 * over threads, median over reps): below 1 when other work competes. */
static double time_share(int T, int reps)
{
    double v[32];
    if (reps > 32) reps = 32;
    for (int r = 0; r < reps; r++) {
        double sum = 0;
#pragma omp parallel num_threads(T) reduction(+ : sum)
        {
            double w0 = wall_now(), c0 = cpu_now(), x = 1;
            while (wall_now() - w0 < 0.02)
                for (int i = 0; i < 1000; i++) x = x * 1.0000001 + 1e-9;
            sink = x;
            sum += (cpu_now() - c0) / (wall_now() - w0);
        }
        v[r] = sum / T;
    }
    double s = median(v, reps);
    return s > 1 ? 1 : s;
}

/* Per-thread gradient speed while T threads compute at once, over one
 * thread alone: each thread its own gradient and scratch and its own rows
 * (streamed from its own place in the data set when gc->stream), as the
 * engine's threads; CPU time per call, alone and together in turn, the
 * median ratio of reps (a drifting machine moves both sides). */
static double time_grad_together(const grad_ctx *gc, int T, int reps, double min_s)
{
    if (T < 2) return 0;
    const size_t sf = dpt_model_scratch_floats(gc->m) + 1, gf = dpt_pad_floats(gc->m->n_params);
    float *mem = dpt_calloc((size_t)T * (sf + gf) * sizeof(float));
    if (!mem) return 0;
    double v[32];
    if (reps > 32) reps = 32;
    long iters = 1;
    int ok = 1;
    for (int r = 0; r < reps && ok; r++) {
        /* alone: thread 0's buffers, no team around it */
        grad_ctx c0 = *gc;
        c0.g = mem;
        c0.scratch = mem + gf;
        run_grad(&c0);
        if (r == 0) {
            double t0 = cpu_now();
            run_grad(&c0);
            double one = cpu_now() - t0;
            iters = one > 0 ? (long)(min_s / one) + 1 : 1000;
            if (iters > 100000) iters = 100000;
        }
        double t0 = cpu_now();
        for (long i = 0; i < iters; i++) run_grad(&c0);
        const double solo = (cpu_now() - t0) / (double)iters;
        double mean = 0;
#pragma omp parallel num_threads(T) reduction(+ : mean)
        {
            const int t = omp_get_thread_num();
            if (omp_get_num_threads() != T) {
#pragma omp atomic write
                ok = 0;
            }
            grad_ctx c = *gc;
            c.g = mem + (size_t)t * (sf + gf);
            c.scratch = c.g + gf;
            c.at = c.stream ? (size_t)t * (c.n / (size_t)T) : 0;
            run_grad(&c);
#pragma omp barrier
            double s0 = cpu_now();
            for (long i = 0; i < iters; i++) run_grad(&c);
            mean += (cpu_now() - s0) / (double)iters / T;
        }
        v[r] = mean > 0 ? solo / mean : 0;
    }
    dpt_free(mem);
    if (!ok) return 0;
    const double s = median(v, reps);
    return s > 1 ? 1 : s;
}

/* 1, 2, 3, 4, 6, 8, 12, 16, 24, ... (x1.5 and x4/3 in turn), then max;
 * quick: 1, 2, 4, 8, ... */
static int grad_points(size_t max_rows, int quick, double *out)
{
    int n = 0;
    for (size_t r = 1; r < max_rows && n < DPT_CAL_POINTS - 1;) {
        out[n++] = (double)r;
        if (r == 1 || quick)
            r *= 2;
        else
            r = (r & (r - 1)) == 0 ? r + r / 2 : r / 3 * 4;
    }
    out[n++] = (double)max_rows;
    return n;
}

int dpt_calibrate(const dpt_model *m, const dpt_optim_spec *o, const float *X, size_t ld,
                  const float *y, size_t n, size_t max_rows, int reps, int flags,
                  dpt_calibration *out)
{
    const int quick = flags & DPT_CAL_QUICK;
    memset(out, 0, sizeof *out);
    if (!X || !y || max_rows < 1 || n < max_rows || ld < m->width[0])
        return dpt_set_error(DPT_EINVAL, "calibration needs rows of the model's width, at least "
                                         "max_rows of them");
    if (reps <= 0) reps = quick ? 3 : 5;
    const double min_s = quick ? 2e-4 : 1e-3;
    const size_t np = m->n_params, nv = np > 4096 ? np : 4096;
    int rc = 0;
    float *w = dpt_calloc(dpt_pad_floats(nv) * sizeof(float));
    float *g = dpt_calloc(dpt_pad_floats(nv) * sizeof(float));
    float *v = dpt_calloc(dpt_pad_floats(nv) * sizeof(float));
    float *scratch = dpt_calloc((dpt_model_scratch_floats(m) + 1) * sizeof(float));
    const size_t crows = max_rows < 256 ? max_rows : 256;
    float *dX = dpt_alloc(crows * ld * sizeof(float));
    float *dy = dpt_alloc(dpt_pad_floats(crows) * sizeof(float));
    const size_t nshuf = quick ? (size_t)1 << 16 : (size_t)1 << 20;
    uint32_t *order = malloc((nshuf > crows ? nshuf : crows) * sizeof *order);
    if (!w || !g || !v || !scratch || !dX || !dy || !order) {
        rc = dpt_set_error(DPT_ENOMEM, "out of memory for the calibration");
        goto done;
    }
    dpt_model_init_params(m, w, 1, DPT_INIT_UNIFORM);
    dpt_model_describe(m, out->model, sizeof out->model);
    static const char *const kinds[] = {"gd", "sgd", "momentum", "nesterov"};
    snprintf(out->opt, sizeof out->opt, "%s", kinds[o->kind]);
    snprintf(out->isa, sizeof out->isa, "%s", dpt_kernels_get()->isa);
    dpt_bench_context ctx;
    memset(&ctx, 0, sizeof ctx);
    dpt_bench_context_fill(&ctx);
    snprintf(out->cpu, sizeof out->cpu, "%s", ctx.cpu_model);
    out->cores = dpt_topo_physical_cores();

    /* the gradient, rows ascending */
    out->npoints = grad_points(max_rows, quick, out->rows);
    out->streamed = (flags & DPT_CAL_STREAM) != 0;
    grad_ctx gc = {m, w, X, y, ld, 0, g, scratch, n, 0, out->streamed};
    for (int i = 0; i < out->npoints; i++) {
        gc.rows = (size_t)out->rows[i];
        out->grad_ns[i] = 1e9 * time_cpu(run_grad, &gc, reps, min_s);
    }
    /* keep the curve monotone: a noisy point below its predecessor would
     * make more rows look cheaper */
    for (int i = 1; i < out->npoints; i++)
        if (out->grad_ns[i] < out->grad_ns[i - 1]) out->grad_ns[i] = out->grad_ns[i - 1];
    time_split(m, w, X, ld, y, n, g, scratch, reps, min_s, out);

    vec_ctx vc = {o, np, g, v, w, {g}};
    for (size_t i = 0; i < nv; i++) g[i] = 1e-3f * (float)(i % 7);
    vc.n = np > 1024 ? np : 1024;
    out->add_ns = 1e9 * time_cpu(run_add, &vc, reps, min_s) / (double)vc.n;
    vc.b = w;
    vc.v = dpt_optim_has_velocity(o) ? v : NULL;
    out->update_ns = 1e9 * time_cpu(run_update, &vc, reps, min_s) / (double)vc.n;

    uint64_t key = dpt_rng_key(7, 5);
    const size_t norder = nshuf > crows ? nshuf : crows;
    for (size_t i = 0; i < norder; i++)
        order[i] = (uint32_t)((size_t)(dpt_rng_uniform(key, i) * (double)n) % n);
    copy_ctx cc = {X, y, ld, crows, dX, dy, order, norder, 0};
    out->copy_ns =
        1e9 * time_cpu(run_copy, &cc, reps, min_s) / (double)(crows * (ld + 1) * sizeof(float));
    shuffle_ctx sc = {order, nshuf, key, 0};
    out->shuffle_ns = 1e9 * time_cpu(run_shuffle, &sc, quick ? 1 : 3, 0) / (double)nshuf;

    out->barrier_threads = out->cores > 1 ? out->cores : 2;
    out->barrier_ns = 1e9 * time_barrier(out->barrier_threads, quick ? 3 : reps);
    out->cross_gbs = time_cross(quick ? 3 : reps);
    fit_handoff(quick ? 3 : reps, out);
    out->threads_all = out->cores;
    if (out->cores > 1) {
        /* the gradient point nearest a step's rows per thread with all
         * cores in the team */
        int k = 0;
        while (k + 1 < out->npoints && out->rows[k + 1] <= (double)max_rows / out->cores) k++;
        gc.rows = (size_t)out->rows[k];
        gc.at = 0;
        out->grad_allcore_rows = out->rows[k];
        out->grad_allcore = time_grad_together(&gc, out->cores, quick ? 3 : reps, min_s);
    }
    out->cpu_share1 = time_share(1, quick ? 3 : reps);
    out->cpu_share = out->cores > 1 ? time_share(out->cores, quick ? 3 : reps) : out->cpu_share1;
    if (!quick && !(flags & DPT_CAL_NO_DRAM)) {
        dpt_limits L;
        if (!dpt_limits_measure_sized(1, DPT_LIMITS_QUICK_BYTES, 3, &L))
            out->read_gbs1 = L.read_gbs;
        if (out->cores > 1 && !dpt_limits_measure_sized(out->cores, DPT_LIMITS_QUICK_BYTES, 3, &L))
            out->read_gbs = L.read_gbs;
        else
            out->read_gbs = out->read_gbs1;
    }
done:
    dpt_free(w);
    dpt_free(g);
    dpt_free(v);
    dpt_free(scratch);
    dpt_free(dX);
    dpt_free(dy);
    free(order);
    return rc;
}

double dpt_calibration_grad(const dpt_calibration *c, double rows)
{
    if (!(rows > 0) || c->npoints < 1) return 0;
    const double *r = c->rows, *t = c->grad_ns;
    const int n = c->npoints;
    double ns;
    if (rows <= r[0]) {
        ns = t[0] * rows / r[0];
    } else if (rows >= r[n - 1]) {
        /* beyond the batch: the last stretch's cost per row */
        double per = n > 1 ? (t[n - 1] - t[n - 2]) / (r[n - 1] - r[n - 2]) : t[0] / r[0];
        if (!(per > 0)) per = t[n - 1] / r[n - 1];
        ns = t[n - 1] + per * (rows - r[n - 1]);
    } else {
        int i = 1;
        while (r[i] < rows) i++;
        double f = (rows - r[i - 1]) / (r[i] - r[i - 1]);
        ns = t[i - 1] + f * (t[i] - t[i - 1]);
    }
    return 1e-9 * ns;
}

/* linear in rows between the split's points; past the last, the
 * gradient's curve's growth */
static double split_at(const dpt_calibration *c, int i, double rows)
{
    const double *r = c->split_rows, *t = c->split_ns[i];
    const int n = c->nsplit_rows;
    if (rows <= r[0]) return t[0] * rows / r[0];
    if (rows >= r[n - 1]) {
        const double g1 = dpt_calibration_grad(c, r[n - 1]);
        return g1 > 0 ? t[n - 1] * dpt_calibration_grad(c, rows) / g1 : t[n - 1] * rows / r[n - 1];
    }
    int j = 1;
    while (r[j] < rows) j++;
    return t[j - 1] + (rows - r[j - 1]) / (r[j] - r[j - 1]) * (t[j] - t[j - 1]);
}

double dpt_calibration_split(const dpt_calibration *c, int k, double rows)
{
    if (!(rows > 0)) return 0;
    if (k <= 1) return dpt_calibration_grad(c, rows);
    if (c->nsplit_k < 1 || c->nsplit_rows < 1) return dpt_calibration_grad(c, rows) / k;
    const double *K = c->split_k;
    const int n = c->nsplit_k;
    if (k >= K[n - 1]) return 1e-9 * split_at(c, n - 1, rows) * K[n - 1] / k;
    if (k <= K[0]) { /* between one thread (the whole gradient) and the first point */
        const double f = log2((double)k) / log2(K[0]);
        return (1 - f) * dpt_calibration_grad(c, rows) + f * 1e-9 * split_at(c, 0, rows);
    }
    int i = 1;
    while (K[i] < k) i++;
    const double f = (log2((double)k) - log2(K[i - 1])) / (log2(K[i]) - log2(K[i - 1]));
    return 1e-9 * ((1 - f) * split_at(c, i - 1, rows) + f * split_at(c, i, rows));
}

void dpt_machine_from_calibration(const dpt_calibration *c, dpt_machine *m)
{
    dpt_machine_preset("this", m);
    if (c->cross_gbs > 0)
        for (int d = DPT_NEAR_CORE; d < DPT_NEAR_COUNT; d++) m->bw[d] = c->cross_gbs;
    if (c->read_gbs1 > 0) {
        m->bw[DPT_NEAR_NODE] = m->bw[DPT_NEAR_PACKAGE] = c->read_gbs1;
        m->dram_node = c->read_gbs > c->read_gbs1 ? c->read_gbs : c->read_gbs1;
        m->link = m->dram_node;
    }
    if (c->cpu_share1 > 0 && c->cpu_share > 0) {
        m->core_speed = c->cpu_share1;
        m->allcore_speed = c->cpu_share < c->cpu_share1 ? c->cpu_share / c->cpu_share1 : 1;
    }
    /* a share of the CPU (wall) and the speed within it (CPU time) compound */
    if (c->grad_allcore > 0 && c->grad_allcore <= 1) m->allcore_speed *= c->grad_allcore;
    if (c->barrier_ns > 0) m->barrier_a = c->barrier_ns;
    m->barrier_b = 0;
    m->handoff_ns = c->handoff_ns;
    m->handoff_line_ns = c->handoff_line_ns;
    m->handoff_lines = c->handoff_lines;
}

/* ---- the file ---- */

int dpt_calibration_write(const dpt_calibration *c, const char *path)
{
    json_t *root = json_object(), *rows = json_array(), *ns = json_array();
    if (!root || !rows || !ns) {
        json_decref(root);
        json_decref(rows);
        json_decref(ns);
        return dpt_set_error(DPT_ENOMEM, "out of memory");
    }
    for (int i = 0; i < c->npoints; i++) {
        json_array_append_new(rows, json_real(c->rows[i]));
        json_array_append_new(ns, json_real(c->grad_ns[i]));
    }
    json_object_set_new(root, "schema", json_string("dpt-calibration/1"));
    json_object_set_new(root, "model", json_string(c->model));
    json_object_set_new(root, "opt", json_string(c->opt));
    json_object_set_new(root, "isa", json_string(c->isa));
    json_object_set_new(root, "cpu", json_string(c->cpu));
    json_object_set_new(root, "cores", json_integer(c->cores));
    json_object_set_new(root, "grad_rows", rows);
    json_object_set_new(root, "grad_ns", ns);
    json_object_set_new(root, "grad_rows_streamed", json_boolean(c->streamed));
    if (c->nsplit_k > 0 && c->nsplit_rows > 0) {
        json_t *sk = json_array(), *sr = json_array(), *sn = json_array();
        for (int i = 0; i < c->nsplit_k; i++) {
            json_t *row = json_array();
            for (int j = 0; j < c->nsplit_rows; j++)
                json_array_append_new(row, json_real(c->split_ns[i][j]));
            json_array_append_new(sk, json_real(c->split_k[i]));
            json_array_append_new(sn, row);
        }
        for (int j = 0; j < c->nsplit_rows; j++)
            json_array_append_new(sr, json_real(c->split_rows[j]));
        json_object_set_new(root, "split_threads", sk);
        json_object_set_new(root, "split_rows", sr);
        json_object_set_new(root, "split_ns", sn);
    }
    json_object_set_new(root, "add_ns_per_float", json_real(c->add_ns));
    json_object_set_new(root, "update_ns_per_float", json_real(c->update_ns));
    json_object_set_new(root, "copy_ns_per_byte", json_real(c->copy_ns));
    json_object_set_new(root, "shuffle_ns_per_row", json_real(c->shuffle_ns));
    json_object_set_new(root, "barrier_ns", json_real(c->barrier_ns));
    json_object_set_new(root, "barrier_threads", json_integer(c->barrier_threads));
    json_object_set_new(root, "cross_gbs", json_real(c->cross_gbs));
    json_object_set_new(root, "read_gbs_1", json_real(c->read_gbs1));
    json_object_set_new(root, "read_gbs_all", json_real(c->read_gbs));
    json_object_set_new(root, "threads_all", json_integer(c->threads_all));
    json_object_set_new(root, "cpu_share_1", json_real(c->cpu_share1));
    json_object_set_new(root, "cpu_share_all", json_real(c->cpu_share));
    if (c->handoff_ns > 0) {
        json_object_set_new(root, "handoff_ns", json_real(c->handoff_ns));
        json_object_set_new(root, "handoff_line_ns", json_real(c->handoff_line_ns));
        json_object_set_new(root, "handoff_lines", json_real(c->handoff_lines));
    }
    if (c->grad_allcore > 0) {
        json_object_set_new(root, "grad_allcore_speed", json_real(c->grad_allcore));
        json_object_set_new(root, "grad_allcore_rows", json_real(c->grad_allcore_rows));
    }
    int rc = dpt_json_write_atomic(root, path);
    json_decref(root);
    return rc;
}

static int get_num(json_t *root, const char *path, const char *key, double *out)
{
    json_t *v = json_object_get(root, key);
    if (!json_is_number(v) || !(json_number_value(v) >= 0))
        return dpt_set_error(DPT_EFORMAT, "%s: '%s' is missing or not a number >= 0", path, key);
    *out = json_number_value(v);
    return 0;
}

static int get_str(json_t *root, const char *path, const char *key, char *out, size_t cap)
{
    json_t *v = json_object_get(root, key);
    if (!json_is_string(v))
        return dpt_set_error(DPT_EFORMAT, "%s: '%s' is missing or not a string", path, key);
    snprintf(out, cap, "%s", json_string_value(v));
    return 0;
}

/* the layer split's optional table: split_threads (2 and up, ascending),
 * split_rows (1 and up, ascending), split_ns[threads][rows] >= 0 */
static int ascending(json_t *a, size_t cap, double lo, double *out, size_t *n)
{
    *n = json_array_size(a);
    if (!json_is_array(a) || *n < 1 || *n > cap) return -1;
    for (size_t i = 0; i < *n; i++) {
        json_t *x = json_array_get(a, i);
        if (!json_is_number(x) || !(json_number_value(x) >= lo) ||
            (i && !(json_number_value(x) > out[i - 1])))
            return -1;
        out[i] = json_number_value(x);
    }
    return 0;
}

static int read_split(json_t *root, const char *path, dpt_calibration *c)
{
    json_t *sk = json_object_get(root, "split_threads"), *sr = json_object_get(root, "split_rows"),
           *sn = json_object_get(root, "split_ns");
    if (!sk && !sr && !sn) return 0;
    size_t nk, nr;
    if (ascending(sk, DPT_CAL_SPLIT_K, 2, c->split_k, &nk) ||
        ascending(sr, DPT_CAL_SPLIT_ROWS, 1, c->split_rows, &nr) || !json_is_array(sn) ||
        json_array_size(sn) != nk)
        return dpt_set_error(DPT_EFORMAT,
                             "%s: 'split_threads' (2 and up) and 'split_rows' (1 and up) must "
                             "ascend, at most %d and %d numbers, and 'split_ns' hold a row of "
                             "times for each thread count",
                             path, DPT_CAL_SPLIT_K, DPT_CAL_SPLIT_ROWS);
    for (size_t i = 0; i < nk; i++) {
        json_t *row = json_array_get(sn, i);
        if (!json_is_array(row) || json_array_size(row) != nr)
            return dpt_set_error(DPT_EFORMAT, "%s: split_ns row %zu must hold %zu times", path,
                                 i + 1, nr);
        for (size_t j = 0; j < nr; j++) {
            json_t *x = json_array_get(row, j);
            if (!json_is_number(x) || !(json_number_value(x) >= 0) ||
                !(json_number_value(x) <= 1e12))
                return dpt_set_error(DPT_EFORMAT,
                                     "%s: split_ns row %zu: times must be numbers in [0, 1e12]",
                                     path, i + 1);
            c->split_ns[i][j] = json_number_value(x);
        }
    }
    c->nsplit_k = (int)nk;
    c->nsplit_rows = (int)nr;
    return 0;
}

int dpt_calibration_read(dpt_calibration *c, const char *path)
{
    memset(c, 0, sizeof *c);
    json_error_t err;
    FILE *f = fopen(path, "r");
    if (!f) return dpt_set_error(DPT_EIO, "%s: cannot open", path);
    json_t *root = json_loadf(f, 0, &err);
    fclose(f);
    if (!root) return dpt_set_error(DPT_EFORMAT, "%s:%d: %s", path, err.line, err.text);
    int rc = 0;
    json_t *schema = json_object_get(root, "schema");
    if (!json_is_string(schema) || strcmp(json_string_value(schema), "dpt-calibration/1")) {
        rc = dpt_set_error(DPT_EFORMAT, "%s: not a dpt-calibration/1 file", path);
        goto done;
    }
    double bt = 0, ta = 0, cores = 0;
    /* optional: files before it timed hot rows */
    c->streamed = json_is_true(json_object_get(root, "grad_rows_streamed"));
    if ((rc = get_str(root, path, "model", c->model, sizeof c->model)) ||
        (rc = get_str(root, path, "opt", c->opt, sizeof c->opt)) ||
        (rc = get_str(root, path, "isa", c->isa, sizeof c->isa)) ||
        (rc = get_str(root, path, "cpu", c->cpu, sizeof c->cpu)) ||
        (rc = get_num(root, path, "add_ns_per_float", &c->add_ns)) ||
        (rc = get_num(root, path, "update_ns_per_float", &c->update_ns)) ||
        (rc = get_num(root, path, "copy_ns_per_byte", &c->copy_ns)) ||
        (rc = get_num(root, path, "shuffle_ns_per_row", &c->shuffle_ns)) ||
        (rc = get_num(root, path, "barrier_ns", &c->barrier_ns)) ||
        (rc = get_num(root, path, "barrier_threads", &bt)) ||
        (rc = get_num(root, path, "cross_gbs", &c->cross_gbs)) ||
        (rc = get_num(root, path, "read_gbs_1", &c->read_gbs1)) ||
        (rc = get_num(root, path, "read_gbs_all", &c->read_gbs)) ||
        (rc = get_num(root, path, "threads_all", &ta)) ||
        (rc = get_num(root, path, "cores", &cores)))
        goto done;
    /* optional: 0 (not measured) leaves "this" machine's core speed at 1 */
    if ((json_object_get(root, "cpu_share_1") &&
         (rc = get_num(root, path, "cpu_share_1", &c->cpu_share1))) ||
        (json_object_get(root, "cpu_share_all") &&
         (rc = get_num(root, path, "cpu_share_all", &c->cpu_share))) ||
        (json_object_get(root, "handoff_ns") &&
         ((rc = get_num(root, path, "handoff_ns", &c->handoff_ns)) ||
          (rc = get_num(root, path, "handoff_line_ns", &c->handoff_line_ns)) ||
          (rc = get_num(root, path, "handoff_lines", &c->handoff_lines)))) ||
        (json_object_get(root, "grad_allcore_speed") &&
         ((rc = get_num(root, path, "grad_allcore_speed", &c->grad_allcore)) ||
          (rc = get_num(root, path, "grad_allcore_rows", &c->grad_allcore_rows)))))
        goto done;
    if (c->grad_allcore < 0 || c->grad_allcore > 1) {
        rc = dpt_set_error(DPT_EFORMAT, "%s: grad_allcore_speed %g is outside [0, 1]", path,
                           c->grad_allcore);
        goto done;
    }
    /* the machine file's bounds for the same figures (machine.c) */
    if (c->handoff_ns > 1e9 || c->handoff_line_ns > 1e9 || c->handoff_lines > 1e9) {
        rc = dpt_set_error(DPT_EFORMAT,
                           "%s: handoff_ns, handoff_line_ns and handoff_lines must "
                           "be at most 1e9",
                           path);
        goto done;
    }
    c->barrier_threads = (int)bt;
    c->threads_all = (int)ta;
    c->cores = (int)cores;
    json_t *rows = json_object_get(root, "grad_rows"), *ns = json_object_get(root, "grad_ns");
    size_t n = json_array_size(rows);
    if (!json_is_array(rows) || !json_is_array(ns) || n != json_array_size(ns) || n < 1 ||
        n > DPT_CAL_POINTS) {
        rc = dpt_set_error(DPT_EFORMAT,
                           "%s: 'grad_rows' and 'grad_ns' must be arrays of the same length, "
                           "1 to %d numbers",
                           path, DPT_CAL_POINTS);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(rows, i), *b = json_array_get(ns, i);
        if (!json_is_number(a) || !json_is_number(b) || !(json_number_value(a) >= 1) ||
            !(json_number_value(b) >= 0) || (i && !(json_number_value(a) > c->rows[i - 1]))) {
            rc = dpt_set_error(DPT_EFORMAT,
                               "%s: grad point %zu: rows must ascend from 1 and times be >= 0",
                               path, i + 1);
            goto done;
        }
        c->rows[i] = json_number_value(a);
        c->grad_ns[i] = json_number_value(b);
    }
    c->npoints = (int)n;
    rc = read_split(root, path, c);
done:
    json_decref(root);
    return rc;
}
