/* The data-parallel training loop.
 * shard:  each batch is cut into U units (U = threads, or a fixed number of
 *         leaves in deterministic mode); thread t owns a contiguous run of
 *         units and keeps its rows, for the whole epoch, in a buffer it
 *         first-touched after pinning itself. With adaptive balancing
 *         (balance.h) the rank's rows of each batch are cut among its threads
 *         by their measured speed instead, and copied every step.
 * kernel: each unit's gradient goes into its own cache-line padded buffer.
 * reduce: pairwise tree over the unit buffers, ceil(log2 U) rounds, every
 *         round split across all threads by parameter chunks.
 * update: fused into the last round: the thread that finishes a parameter
 *         slice's sum updates that slice at once.
 * Across ranks (dpt_comm), the rank's sum is all-reduced once per step
 * before the update, in chunks that go out while the threads sum the next
 * (overlap); in deterministic mode every rank gathers every leaf and runs
 * the same fixed tree. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "dpt/engine.h"
#include "dpt/error.h"
#include "engine/balance.h"
#include "kernels/kernels.h"

typedef struct thread_state {
    float *X, *y;      /* this thread's rows: for the whole epoch in step order
                          (fixed order), or for one step (shuffled epochs) */
    size_t cap_rows;   /* capacity of X/y in rows */
    float *scratch;    /* model scratch */
    dpt_phase_times t; /* this epoch */
    size_t rows;       /* rows this thread processed this epoch */
    double partial;    /* slice norm for clipping */
    int gradbad;       /* a non-finite gradient entry in the last update */
    double step_secs;  /* the last step's copy and compute time, and its rows */
    size_t step_rows;  /* (adaptive balancing) */
    int numa;          /* where its rows live: node, DPT_NUMA_NONE/MIXED, or -3 unknown */
} __attribute__((aligned(64))) thread_state;

typedef struct unit_loss {
    double v;
} __attribute__((aligned(64))) unit_loss;

struct dpt_engine {
    const dpt_model *m;
    dpt_optim_spec opt;
    const dpt_dataset *ds;
    const dpt_kernels *k;
    const dpt_comm *comm;
    dpt_reduce reduce;
    /* Units: each batch is cut into GU units; this rank computes units
     * [u_base, u_base + u_local) and reduces over U buffers: its own units,
     * or all GU leaves when deterministic across ranks (gathered). */
    int P, U, GU, u_base, u_local, gather_all;
    int shuffle, bind, own_topo, local_ready;
    int local_batching; /* rows of thread t come from its own shard */
    int adaptive;       /* batches cut by measured thread speed (balance.h) */
    int step_copy;      /* rows copied every step (reshuffled or adaptive) */
    double *speed;      /* adaptive: smoothed rows/s per thread (thread 0's) */
    double *cum;        /* adaptive: cumulative shares, (P+1) per step parity */
    double *bsecs;      /* adaptive: the last step's times and rows, gathered */
    size_t *brows;
    int ov_chunks;    /* >1: the all-reduce goes in this many overlapped chunks */
    size_t *shard_lo; /* local batching: shard of thread t is [shard_lo[t], shard_lo[t+1]) */
    uint64_t seed;
    dpt_topo *topo;
    dpt_place *plan;
    float *w, *v, *snapshot;
    float **G;
    unit_loss *uloss;
    thread_state *ts;
    uint32_t *order;
    size_t B;
    long steps_per_epoch, step_count;
    int epochs_done;
    int bind_failed;
    char warning[512];
    dpt_progress_cb progress;
    void *progress_ud;
    double progress_interval;
    dpt_trace_cb trace;
    void *trace_ud;
    dpt_step_record *trace_buf; /* trace_steps x P: step s of an epoch in row s % trace_steps */
    size_t trace_steps;
};

void dpt_engine_set_progress(dpt_engine *e, dpt_progress_cb cb, void *ud, double interval)
{
    e->progress = cb;
    e->progress_ud = ud;
    e->progress_interval = interval;
}

int dpt_engine_set_trace(dpt_engine *e, dpt_trace_cb cb, void *ud, size_t buffer_steps)
{
    free(e->trace_buf);
    e->trace_buf = NULL;
    e->trace = NULL;
    if (!cb) return 0;
    const size_t per_step = (size_t)e->P * sizeof(dpt_step_record);
    size_t n = buffer_steps ? buffer_steps : (size_t)e->steps_per_epoch;
    if (!buffer_steps && n > DPT_TRACE_BUFFER / per_step) n = DPT_TRACE_BUFFER / per_step;
    if (n > (size_t)e->steps_per_epoch) n = (size_t)e->steps_per_epoch;
    if (n < 1) n = 1;
    if (!(e->trace_buf = calloc(n, per_step))) return dpt_set_error(DPT_ENOMEM, "out of memory");
    e->trace_steps = n;
    e->trace = cb;
    e->trace_ud = ud;
    return 0;
}

/* Hand steps [s0, s1) of the epoch (all complete) to the trace callback:
 * at most two runs of rows, where the ring wraps. */
static void trace_flush(const dpt_engine *e, long s0, long s1)
{
    const size_t n = e->trace_steps, P = (size_t)e->P;
    while (s0 < s1) {
        size_t row = (size_t)s0 % n, k = n - row;
        if ((size_t)(s1 - s0) < k) k = (size_t)(s1 - s0);
        e->trace(e->trace_buf + row * P, k * P, e->trace_ud);
        s0 += (long)k;
    }
}

static void add_warning(dpt_engine *e, const char *text)
{
    size_t len = strlen(e->warning);
    snprintf(e->warning + len, sizeof e->warning - len, "%s%s", len ? "; " : "", text);
}

void dpt_engine_numa_report(const dpt_engine *e, int *local, int *remote, int *unknown)
{
    *local = *remote = *unknown = 0;
    for (int t = 0; t < e->P; t++) {
        int n = e->ts[t].numa;
        if (n >= 0 && n == e->plan[t].numa)
            ++*local;
        else if (n >= 0 || n == DPT_NUMA_MIXED)
            ++*remote;
        else
            ++*unknown;
    }
}

static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static size_t thread_rows(const dpt_engine *e, int t);
static inline size_t unit_row(const dpt_engine *e, size_t b, int u);
static inline size_t batch_size(const dpt_engine *e, long s);

void dpt_engine_opts_defaults(dpt_engine_opts *o)
{
    memset(o, 0, sizeof *o);
    o->pin.policy = DPT_PIN_COMPACT;
    o->shuffle = 1;
    /* measured (docs/engine.md): one barrier per step beats log2 rounds for
     * small models and ties for large ones */
    o->reduce = DPT_REDUCE_SCATTER;
    o->seed = 1;
}

int dpt_engine_threads(const dpt_engine *e)
{
    return e->P;
}
const dpt_place *dpt_engine_plan(const dpt_engine *e)
{
    return e->plan;
}
const char *dpt_engine_isa(const dpt_engine *e)
{
    return e->k->isa;
}
float *dpt_engine_params(dpt_engine *e)
{
    return e->w;
}
const char *dpt_engine_warning(const dpt_engine *e)
{
    return e->warning[0] ? e->warning : NULL;
}

void dpt_engine_reset(dpt_engine *e, const float *w)
{
    size_t np = e->m->n_params;
    memcpy(e->w, w, np * sizeof(float));
    if (e->v) memset(e->v, 0, np * sizeof(float));
    e->step_count = 0;
    e->epochs_done = 0;
}

void dpt_engine_destroy(dpt_engine *e)
{
    if (!e) return;
    if (e->ts)
        for (int t = 0; t < e->P; t++) {
            dpt_free(e->ts[t].X);
            dpt_free(e->ts[t].y);
            dpt_free(e->ts[t].scratch);
        }
    if (e->G)
        for (int u = 0; u < e->U; u++) dpt_free(e->G[u]);
    free(e->G);
    dpt_free(e->ts);
    dpt_free(e->uloss);
    dpt_free(e->w);
    dpt_free(e->v);
    dpt_free(e->snapshot);
    free(e->speed);
    free(e->cum);
    free(e->bsecs);
    free(e->brows);
    free(e->order);
    free(e->shard_lo);
    free(e->trace_buf);
    free(e->plan);
    if (e->own_topo) dpt_topo_close(e->topo);
    free(e);
}

int dpt_engine_create(dpt_engine **out, const dpt_model *m, const dpt_optim_spec *o,
                      const dpt_dataset *ds, const dpt_engine_opts *opts)
{
    *out = NULL;
    int rc = 0;
    if (ds->n == 0) return dpt_set_error(DPT_EINVAL, "the training set has no rows");
    if (ds->d != m->width[0])
        return dpt_set_error(DPT_EINVAL, "the data has %zu features but the model expects %zu",
                             ds->d, m->width[0]);
    if (ds->n > UINT32_MAX) return dpt_set_error(DPT_EINVAL, "more than 2^32-1 rows");
    if (!(o->lr > 0) || !isfinite(o->lr))
        return dpt_set_error(DPT_EINVAL, "learning rate must be a positive number");
    dpt_engine *e = calloc(1, sizeof *e);
    if (!e) return dpt_set_error(DPT_ENOMEM, "out of memory");
    e->m = m;
    e->opt = *o;
    e->ds = ds;
    e->k = dpt_kernels_get();
    e->seed = opts->seed;
    e->P = opts->threads > 0 ? opts->threads : dpt_topo_physical_cores();
    e->comm = opts->comm && opts->comm->size > 1 ? opts->comm : NULL;
    e->reduce = opts->reduce;
    const int R = e->comm ? e->comm->size : 1, rank = e->comm ? e->comm->rank : 0;
    if (opts->leaves > 0) {
        if (opts->leaves % R) {
            free(e);
            return dpt_set_error(DPT_EINVAL, "--leaves %d must be a multiple of the %d ranks",
                                 opts->leaves, R);
        }
        e->GU = opts->leaves;
        e->u_local = opts->leaves / R;
        e->gather_all = R > 1;
    } else {
        e->GU = R * e->P;
        e->u_local = e->P;
    }
    e->u_base = rank * e->u_local;
    e->U = e->gather_all ? e->GU : e->u_local;
    e->B = (o->kind == DPT_OPT_GD || o->batch == 0 || o->batch > ds->n) ? ds->n : o->batch;
    e->shuffle = opts->shuffle && e->B < ds->n;
    e->steps_per_epoch = (long)((ds->n + e->B - 1) / e->B);
    e->bind = opts->pin.policy != DPT_PIN_NONE;
    if (opts->balance == DPT_BALANCE_ADAPTIVE && (opts->leaves > 0 || opts->batching_local)) {
        free(e);
        return dpt_set_error(DPT_EINVAL,
                             "--balance adaptive cuts batches by measured speed, so "
                             "it cannot be combined with %s",
                             opts->leaves > 0 ? "--deterministic" : "--batching local");
    }
    /* one thread has nothing to balance: it keeps the fixed-order buffers */
    e->adaptive = opts->balance == DPT_BALANCE_ADAPTIVE && e->P > 1;
    e->step_copy = e->shuffle || e->adaptive;
    if (ds->part) {
        /* per-rank loading: this rank's rows of every batch must be there */
        if (e->shuffle) {
            free(e);
            return dpt_set_error(DPT_EINVAL,
                                 "the training set holds only part of its rows (per-rank "
                                 "loading), so it cannot be reshuffled; use --shuffle none");
        }
        for (long s = 0; s < e->steps_per_epoch; s++) {
            size_t start = (size_t)s * e->B, b = batch_size(e, s);
            size_t lo = start + unit_row(e, b, e->u_base),
                   hi = start + unit_row(e, b, e->u_base + e->u_local);
            if (!dpt_dataset_holds(ds, lo, hi)) {
                free(e);
                return dpt_set_error(DPT_EINVAL,
                                     "rank %d trains on rows %zu-%zu, which its part of the "
                                     "training set does not hold",
                                     rank, lo + 1, hi);
            }
        }
    }

    if (opts->topo) {
        e->topo = opts->topo;
    } else {
        if ((rc = dpt_topo_open(&e->topo, NULL, NULL))) goto fail;
        e->own_topo = 1;
    }
    e->plan = calloc((size_t)e->P, sizeof *e->plan);
    if (!e->plan) goto oom;
    if ((rc = dpt_topo_plan(e->topo, e->P, &opts->pin, e->plan))) goto fail;
    for (int t = 0; t < e->P && e->bind; t++)
        if (e->plan[t].shared) {
            snprintf(e->warning, sizeof e->warning,
                     "%d threads share %d processing units: oversubscribed, timings suffer", e->P,
                     dpt_topo_count(e->topo, HWLOC_OBJ_PU));
            break;
        }

    size_t np = dpt_pad_floats(m->n_params);
    e->w = dpt_calloc(np * sizeof(float));
    e->snapshot = dpt_calloc(np * sizeof(float));
    if (!e->w || !e->snapshot) goto oom;
    if (dpt_optim_has_velocity(o) && !(e->v = dpt_calloc(np * sizeof(float)))) goto oom;
    /* unit buffers stay untouched here: their owners touch them first */
    e->G = calloc((size_t)e->U, sizeof *e->G);
    e->uloss = dpt_calloc((size_t)e->U * sizeof *e->uloss);
    e->ts = dpt_calloc((size_t)e->P * sizeof *e->ts);
    if (!e->G || !e->uloss || !e->ts) goto oom;
    for (int u = 0; u < e->U; u++)
        if (!(e->G[u] = dpt_alloc(np * sizeof(float)))) goto oom;
    e->order = malloc(ds->n * sizeof *e->order);
    if (!e->order) goto oom;
    if (e->adaptive) {
        e->speed = calloc((size_t)e->P, sizeof *e->speed);
        e->cum = malloc(2 * ((size_t)e->P + 1) * sizeof *e->cum);
        e->bsecs = calloc((size_t)e->P, sizeof *e->bsecs);
        e->brows = calloc((size_t)e->P, sizeof *e->brows);
        if (!e->speed || !e->cum || !e->bsecs || !e->brows) goto oom;
        for (int i = 0; i <= e->P; i++) e->cum[i] = e->cum[e->P + 1 + i] = (double)i / e->P;
    }
    for (size_t i = 0; i < ds->n; i++) e->order[i] = (uint32_t)i;
    if (e->comm && !e->gather_all && e->comm->start_allreduce && opts->overlap != DPT_OVERLAP_OFF) {
        /* where it pays: units of this rank to sum while a chunk is on the wire */
        size_t K = m->n_params / DPT_OVERLAP_MIN_CHUNK;
        if (opts->overlap == DPT_OVERLAP_ON && K < 2 && m->n_params >= 2) K = 2;
        if (K > 16) K = 16;
        if (K >= 2 && (e->U > 1 || opts->overlap == DPT_OVERLAP_ON)) e->ov_chunks = (int)K;
    }
    if (opts->batching_local) {
        if (e->comm) {
            rc = dpt_set_error(DPT_EINVAL, "--batching local works within one process only");
            goto fail;
        }
        /* shard t holds exactly the rows thread t consumes per epoch */
        e->local_batching = 1;
        if (!(e->shard_lo = calloc((size_t)e->P + 1, sizeof *e->shard_lo))) goto oom;
        for (int t = 0; t < e->P; t++) e->shard_lo[t + 1] = e->shard_lo[t] + thread_rows(e, t);
    }
    *out = e;
    return 0;
oom:
    rc = dpt_set_error(DPT_ENOMEM, "cannot allocate the engine's buffers for %d threads", e->P);
fail:
    dpt_engine_destroy(e);
    return rc;
}

int dpt_engine_rank_rows(size_t n, const dpt_optim_spec *o, int shuffle, int rank, int ranks,
                         dpt_row_range **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (n == 0 || ranks < 1 || rank < 0 || rank >= ranks)
        return dpt_set_error(DPT_EINVAL, "rank %d of %d, %zu rows", rank, ranks, n);
    const size_t B = (o->kind == DPT_OPT_GD || o->batch == 0 || o->batch > n) ? n : o->batch;
    const size_t steps = shuffle && B < n ? 1 : (n + B - 1) / B;
    dpt_row_range *r = malloc(steps * sizeof *r);
    if (!r) return dpt_set_error(DPT_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t s = 0; s < steps; s++) {
        size_t lo = 0, hi = n;
        if (!(shuffle && B < n)) {
            /* the engine's unit_row(b, u) at u = rank * (units per rank):
             * b * rank / ranks, whatever the units per rank */
            size_t start = s * B, b = n - start < B ? n - start : B;
            lo = start + b * (size_t)rank / (size_t)ranks;
            hi = start + b * (size_t)(rank + 1) / (size_t)ranks;
        }
        if (lo == hi) continue;
        if (k && r[k - 1].hi == lo)
            r[k - 1].hi = hi;
        else
            r[k++] = (dpt_row_range){lo, hi};
    }
    *out = r;
    *nout = k;
    return 0;
}

/* Global units [u0, u1) that thread t computes, and the first row of a
 * batch of size b that global unit u covers. */
static inline void thread_units(const dpt_engine *e, int t, int *u0, int *u1)
{
    *u0 = e->u_base + (int)((long)e->u_local * t / e->P);
    *u1 = e->u_base + (int)((long)e->u_local * (t + 1) / e->P);
}

static inline size_t unit_row(const dpt_engine *e, size_t b, int u)
{
    return b * (size_t)u / (size_t)e->GU;
}

/* The buffer that holds global unit u. */
static inline int unit_buf(const dpt_engine *e, int u)
{
    return e->gather_all ? u : u - e->u_base;
}

static inline size_t batch_size(const dpt_engine *e, long s)
{
    size_t start = (size_t)s * e->B;
    return e->ds->n - start < e->B ? e->ds->n - start : e->B;
}

/* Rows thread t processes in one epoch (per_step 0), or in its largest
 * step (per_step 1). */
static size_t rows_of(const dpt_engine *e, int t, int per_step)
{
    int u0, u1;
    thread_units(e, t, &u0, &u1);
    size_t rows = 0;
    for (long s = 0; s < e->steps_per_epoch; s++) {
        size_t b = batch_size(e, s), r = unit_row(e, b, u1) - unit_row(e, b, u0);
        rows = per_step ? (r > rows ? r : rows) : rows + r;
    }
    return rows;
}

static size_t thread_rows(const dpt_engine *e, int t)
{
    return rows_of(e, t, 0);
}

/* The most rows of one batch this rank computes: what one thread may get
 * under adaptive balancing. */
static size_t rank_step_rows(const dpt_engine *e)
{
    size_t most = 0;
    for (long s = 0; s < e->steps_per_epoch; s++) {
        size_t b = batch_size(e, s);
        size_t r = unit_row(e, b, e->u_base + e->u_local) - unit_row(e, b, e->u_base);
        most = r > most ? r : most;
    }
    return most;
}

/* Thread t's rows [*lo, *hi) of a batch of b rows, counted from the batch's
 * first: its units' rows, or under adaptive balancing its cut of the rank's
 * rows by the shares for global step gstep. */
static void batch_part(const dpt_engine *e, int t, size_t b, long gstep, size_t *lo, size_t *hi)
{
    if (e->adaptive) {
        size_t r0 = unit_row(e, b, e->u_base), r1 = unit_row(e, b, e->u_base + e->u_local);
        dpt_balance_cut(e->P, e->cum + (size_t)(gstep & 1) * ((size_t)e->P + 1), r1 - r0, t, lo,
                        hi);
        *lo += r0;
        *hi += r0;
        return;
    }
    int u0, u1;
    thread_units(e, t, &u0, &u1);
    *lo = unit_row(e, b, u0);
    *hi = unit_row(e, b, u1);
}

/* This thread's row buffer, allocated once (by the thread, after pinning)
 * so that nothing can fail once training has begun: the epoch's rows when
 * the order is fixed (copied once, reused every epoch), one step's rows when
 * it is reshuffled (copied every step, and still in cache when used). */
static int ensure_local(dpt_engine *e, int t)
{
    thread_state *ts = &e->ts[t];
    size_t rows = e->adaptive ? rank_step_rows(e) : rows_of(e, t, e->shuffle);
    if (ts->X && rows <= ts->cap_rows) return 0;
    dpt_free(ts->X);
    dpt_free(ts->y);
    ts->X = dpt_alloc((rows ? rows : 1) * e->ds->ld * sizeof(float));
    ts->y = dpt_alloc(dpt_pad_floats(rows ? rows : 1) * sizeof(float));
    if (!ts->X || !ts->y) return -1;
    /* first touch here, by the owner and outside any timed epoch: the
     * page faults would otherwise land in the first epoch's shuffle */
    memset(ts->X, 0, (rows ? rows : 1) * e->ds->ld * sizeof(float));
    memset(ts->y, 0, dpt_pad_floats(rows ? rows : 1) * sizeof(float));
    ts->cap_rows = rows;
    return 0;
}

/* The positions [*lo, *hi) in order[] of the rows thread t computes in
 * step s, its part [tlo, thi) of the batch (batch_part), after it consumed
 * rows in the earlier steps of the epoch. */
static void step_span(const dpt_engine *e, int t, long s, size_t consumed, size_t tlo, size_t thi,
                      size_t *lo, size_t *hi)
{
    size_t start = (size_t)s * e->B;
    *lo = start + tlo;
    *hi = start + thi;
    if (e->local_batching) { /* the next rows of this thread's own shard */
        *hi = e->shard_lo[t] + consumed + (*hi - *lo);
        *lo = e->shard_lo[t] + consumed;
    }
}

/* Copy the rows order[lo..hi) into X (stride ld) and y. */
static void copy_rows(const dpt_engine *e, size_t lo, size_t hi, float *X, float *y)
{
    const dpt_dataset *ds = e->ds;
    for (size_t i = lo; i < hi; i++, X += ds->ld, y++) {
        size_t r = e->order[i];
        memcpy(X, ds->X + r * ds->ld, ds->ld * sizeof(float));
        *y = ds->y[r];
    }
}

/* The fixed order: copy this thread's rows of every step, in step order. */
static int gather_local(dpt_engine *e, int t)
{
    thread_state *ts = &e->ts[t];
    if (ensure_local(e, t)) return -1;
    size_t off = 0, lo, hi;
    for (long s = 0; s < e->steps_per_epoch; s++, off += hi - lo) {
        size_t tlo, thi;
        batch_part(e, t, batch_size(e, s), s, &tlo, &thi);
        step_span(e, t, s, off, tlo, thi, &lo, &hi);
        copy_rows(e, lo, hi, ts->X + off * e->ds->ld, ts->y + off);
    }
    return 0;
}

/* Fisher-Yates of order[lo, hi) from the counter-based generator: depends
 * on seed, epoch and the range only. */
static void shuffle_range(dpt_engine *e, int epoch, size_t lo, size_t hi)
{
    size_t n = e->ds->n;
    uint64_t key = dpt_rng_key(e->seed, 5);
    uint64_t base = (uint64_t)epoch * n + lo;
    uint32_t *order = e->order + lo;
    n = hi - lo;
    for (size_t i = 0; i < n; i++) order[i] = (uint32_t)(lo + i);
    for (size_t i = n ? n - 1 : 0; i > 0; i--) {
        size_t j = (size_t)(dpt_rng_uniform(key, base + i) * (double)(i + 1));
        if (j > i) j = i;
        uint32_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
}

static void fill_stats(dpt_engine *e, dpt_epoch_stats *st)
{
    memset(&st->mean, 0, sizeof st->mean);
    memset(&st->max, 0, sizeof st->max);
    for (int t = 0; t < e->P; t++) {
        const dpt_phase_times *p = &e->ts[t].t;
#define ACC(f)                                                                                     \
    st->mean.f += p->f / e->P;                                                                     \
    if (p->f > st->max.f) st->max.f = p->f;
        ACC(compute) ACC(wait) ACC(reduce) ACC(update) ACC(shuffle) ACC(comm)
#undef ACC
    }
    st->imbalance = st->mean.compute > 0 ? st->max.compute / st->mean.compute : 1.0;
    st->rows_min = st->rows_max = e->ts[0].rows;
    for (int t = 1; t < e->P; t++) {
        if (e->ts[t].rows < st->rows_min) st->rows_min = e->ts[t].rows;
        if (e->ts[t].rows > st->rows_max) st->rows_max = e->ts[t].rows;
    }
}

/* Combine the U unit buffers into G[0], every thread taking its share;
 * with fuse, each thread updates the parameter slice whose sum it just
 * completed. Ends with a barrier. */
static void reduce_units(dpt_engine *e, int t, int fuse, float gscale, float lr, double *tr,
                         double *tu)
{
    const size_t np = e->m->n_params, P = (size_t)e->P;
    const int U = e->U;
    const dpt_kernels *k = e->k;
    thread_state *ts = &e->ts[t];
    const size_t lo = np * (size_t)t / P, hi = np * (size_t)(t + 1) / P;
    if ((e->reduce == DPT_REDUCE_SCATTER || U == 1) && fuse) {
        /* the sum of this slice goes straight into the update, never stored */
        double r0 = now();
        ts->gradbad = dpt_optim_update_sum(&e->opt, lo, hi, e->w, (const float *const *)e->G, U,
                                           e->v, gscale, lr);
        *tu += now() - r0;
#pragma omp barrier
        return;
    }
    if (e->reduce == DPT_REDUCE_SCATTER || U == 1) {
        double r0 = now();
        /* blocks of 4096 floats keep the slice of G[0] in cache across units */
        for (size_t b0 = lo; b0 < hi; b0 += 4096) {
            size_t b1 = hi - b0 < 4096 ? hi : b0 + 4096;
            for (int u = 1; u < U; u++) k->add(b1 - b0, e->G[u] + b0, e->G[0] + b0);
        }
        *tr += now() - r0;
#pragma omp barrier
        return;
    }
    for (int st = 1; st < U; st *= 2) {
        /* pairs (a, a + st) for a = 0, 2st, 4st, ... with a + st < U */
        const size_t npairs = (size_t)((U - st + 2 * st - 1) / (2 * st));
        const int last = 2 * st >= U;
        const size_t W = npairs * np;
        size_t f0 = W * (size_t)t / P, f1 = W * (size_t)(t + 1) / P;
        double r0 = now();
        while (f0 < f1) {
            size_t pair = f0 / np, i0 = f0 % np;
            size_t i1 = f1 - pair * np < np ? f1 - pair * np : np;
            int a = (int)pair * 2 * st;
            k->add(i1 - i0, e->G[a + st] + i0, e->G[a] + i0);
            f0 = pair * np + i1;
        }
        double r1 = now();
        *tr += r1 - r0;
        /* the last round has one pair, so this thread's chunk is [lo, hi) */
        if (last && fuse) {
            ts->gradbad = dpt_optim_update(&e->opt, lo, hi, e->w, e->G[0], e->v, gscale, lr);
            *tu += now() - r1;
        }
#pragma omp barrier
    }
}

/* Across ranks, overlapped: the parameters in ov_chunks chunks; for each,
 * every thread sums its share of the units into G[0], a barrier, and thread
 * 0 starts the chunk's all-reduce, which runs while all threads sum the next
 * chunk (thread 0 nudging it along between blocks). Then thread 0 finishes
 * them all and sums the loss. Ends with a barrier; *comm_rc is for all. */
static void reduce_overlapped(dpt_engine *e, int t, double lsum, double *glsum, int *comm_rc,
                              double *tr)
{
    const size_t np = e->m->n_params, P = (size_t)e->P, K = (size_t)e->ov_chunks;
    const dpt_comm *comm = e->comm;
    const int U = e->U;
    thread_state *ts = &e->ts[t];
    for (size_t c = 0; c < K; c++) {
        const size_t c0 = np * c / K, len = np * (c + 1) / K - c0;
        const size_t lo = c0 + len * (size_t)t / P, hi = c0 + len * (size_t)(t + 1) / P;
        double r0 = now();
        for (size_t b0 = lo; b0 < hi; b0 += 4096) {
            size_t b1 = hi - b0 < 4096 ? hi : b0 + 4096;
            for (int u = 1; u < U; u++) e->k->add(b1 - b0, e->G[u] + b0, e->G[0] + b0);
            if (t == 0 && c > 0 && !*comm_rc) *comm_rc = comm->progress(comm->ctx);
        }
        *tr += now() - r0;
#pragma omp barrier
        if (t == 0 && !*comm_rc) {
            double q0 = now();
            *comm_rc = comm->start_allreduce(comm->ctx, e->G[0] + c0, len);
            ts->t.comm += now() - q0;
        }
    }
    if (t == 0) {
        double q0 = now();
        int rc = comm->finish(comm->ctx); /* even after a failure: nothing left pending */
        if (!*comm_rc) *comm_rc = rc;
        *glsum = lsum;
        if (!*comm_rc) *comm_rc = comm->allreduce(comm->ctx, NULL, 0, glsum, 1);
        ts->t.comm += now() - q0;
    }
#pragma omp barrier
}

int dpt_engine_train(dpt_engine *e, int epochs, dpt_epoch_cb cb, void *ud)
{
    const dpt_model *m = e->m;
    const dpt_kernels *k = e->k;
    const size_t np = m->n_params, nsc = dpt_model_scratch_floats(m);
    const int P = e->P, U = e->U;
    const long total_steps = e->steps_per_epoch * (long)(e->epochs_done + epochs);
    const float clip = (float)e->opt.clip_norm;
    const dpt_comm *comm = e->comm;
    /* is the loss known for all ranks right after the compute barrier? */
    const int global_loss = !comm || e->gather_all;
    double *gloss = NULL;
    int failed = 0, diverged = 0, team_ok = 1, stop = 0, comm_rc = 0;
    double glsum = 0, comm_bytes = 0;
    char why[160] = "";
    double epoch_loss = 0, epoch_t0 = 0, last_progress = 0;
    size_t rows_done = 0;
    for (int t = 0; t < P; t++) e->ts[t].gradbad = 0;
    if (e->gather_all && !(gloss = malloc((size_t)e->GU * sizeof *gloss)))
        return dpt_set_error(DPT_ENOMEM, "out of memory");

    omp_set_dynamic(0);
#pragma omp parallel num_threads(P)
    {
        const int t = omp_get_thread_num();
        thread_state *ts = &e->ts[t];
        int u0, u1;
        thread_units(e, t, &u0, &u1);
        if (omp_get_num_threads() != P) {
#pragma omp atomic write
            team_ok = 0;
        }
        if (e->bind && dpt_topo_bind_self(e->topo, &e->plan[t]) != 0) {
#pragma omp critical(dpt_engine_warn)
            if (!e->bind_failed) {
                e->bind_failed = 1;
                char w[200];
                snprintf(w, sizeof w, "cannot pin threads (%s): running unpinned",
                         dpt_last_error());
                add_warning(e, w);
            }
        }
        /* first touch, after pinning: unit buffers, scratch, local rows */
        for (int u = u0; u < u1; u++)
            memset(e->G[unit_buf(e, u)], 0, dpt_pad_floats(np) * sizeof(float));
        if (!ts->scratch && !(ts->scratch = dpt_calloc((nsc ? nsc : 1) * sizeof(float)))) {
#pragma omp atomic write
            failed = 1;
        }
        if (e->step_copy && ensure_local(e, t)) {
#pragma omp atomic write
            failed = 1;
        }
        if (!e->step_copy && !e->local_ready) {
            if (gather_local(e, t)) {
#pragma omp atomic write
                failed = 1;
            } else {
                int node = -3;
                if (e->bind && ts->cap_rows &&
                    dpt_topo_membind_check(e->topo, ts->X, ts->cap_rows * e->ds->ld * 4, &node))
                    node = -3;
                ts->numa = node;
            }
        }
#pragma omp barrier
        if (comm) {
            /* a rank that failed here must not leave the others in a collective */
            if (t == 0) {
                comm_rc = comm->agree(comm->ctx, failed || !team_ok ? DPT_ENOMEM : 0);
                if (comm_rc && !failed && team_ok) failed = 2;
            }
#pragma omp barrier
        }
        if (!failed && team_ok) {
#pragma omp single
            e->local_ready = !e->step_copy;
        }
        int mydiv = 0; /* every thread reaches the same verdict at the same step */
        for (int ep = 0; ep < epochs && !failed && team_ok && !stop; ep++) {
            const int epoch = e->epochs_done + ep;
            memset(&ts->t, 0, sizeof ts->t);
            ts->rows = 0;
            dpt_phase_times prev = ts->t; /* the phase times before this step */
            long traced = 0;              /* thread 0: steps handed to the trace */
            if (t == 0) {
                epoch_t0 = last_progress = now();
                epoch_loss = 0;
                rows_done = 0;
                comm_bytes = 0;
                memcpy(e->snapshot, e->w, np * sizeof(float));
            }
            if (e->shuffle) {
                double s0 = now();
                if (e->local_batching)
                    shuffle_range(e, epoch, e->shard_lo[t], e->shard_lo[t + 1]);
                else if (t == 0)
                    shuffle_range(e, epoch, 0, e->ds->n);
#pragma omp barrier
                ts->t.shuffle += now() - s0;
            }
            size_t off = 0; /* rows this thread consumed so far this epoch */
            for (long s = 0; s < e->steps_per_epoch; s++) {
                const long gstep = e->step_count + s;
                const size_t b = batch_size(e, s);
                const float gscale = 1.0f / (float)b;
                const float lr = (float)dpt_optim_lr(&e->opt, gstep, epoch, total_steps,
                                                     e->epochs_done + epochs);
                /* the last update's verdicts: read before the barrier below,
                 * since this step's update rewrites them after it */
                int bad = 0;
                for (int q = 0; q < P; q++) bad |= e->ts[q].gradbad;
                size_t base = off; /* where this step's rows start in ts->X */
                size_t tlo, thi;   /* this thread's rows of the batch */
                batch_part(e, t, b, gstep, &tlo, &thi);
                double g0 = now(), t0 = g0;
                if (e->step_copy) {
                    /* this step's rows, fresh in cache for the kernels */
                    size_t lo, hi;
                    step_span(e, t, s, off, tlo, thi, &lo, &hi);
                    copy_rows(e, lo, hi, ts->X, ts->y);
                    base = 0;
                    t0 = now();
                    ts->t.shuffle += t0 - g0;
                }
                for (int u = u0; u < u1; u++) {
                    /* adaptive: one unit per thread, its rows the cut */
                    size_t r0 = e->adaptive ? 0 : unit_row(e, b, u) - tlo;
                    size_t rows =
                        e->adaptive ? thi - tlo : unit_row(e, b, u + 1) - unit_row(e, b, u);
                    e->uloss[unit_buf(e, u)].v = dpt_model_grad_to(
                        m, k, e->w, ts->X + (base + r0) * e->ds->ld, e->ds->ld, ts->y + base + r0,
                        rows, e->G[unit_buf(e, u)], ts->scratch);
                }
                off += thi - tlo;
                double t1 = now();
                ts->t.compute += t1 - t0;
                ts->rows += thi - tlo;
                ts->step_secs = t1 - g0;
                ts->step_rows = thi - tlo;
#pragma omp barrier
                double t2 = now();
                ts->t.wait += t2 - t1;
                /* steps before s are complete; step s reuses the row of
                 * step s - trace_steps, written after the next barrier */
                if (e->trace && t == 0 && s - traced >= (long)e->trace_steps) {
                    trace_flush(e, traced, s);
                    traced = s;
                }
                if (e->adaptive && t == 0) {
                    /* the next step's cut: read at its start, after the barrier
                     * that ends this step; the other parity is in use now */
                    for (int q = 0; q < P; q++) {
                        e->bsecs[q] = e->ts[q].step_secs;
                        e->brows[q] = e->ts[q].step_rows;
                    }
                    dpt_balance_update(P, e->bsecs, e->brows, e->speed,
                                       e->cum + (size_t)((gstep + 1) & 1) * ((size_t)P + 1));
                }
                if (e->gather_all) {
                    /* deterministic across ranks: every rank gets every leaf */
                    if (t == 0) {
                        for (int u = 0; u < e->GU; u++) gloss[u] = e->uloss[u].v;
                        double c0 = now();
                        comm_rc = comm->allgather(comm->ctx, e->G, np, e->u_local, gloss);
                        ts->t.comm += now() - c0;
                        comm_bytes += (double)e->u_local * np * sizeof(float);
                        for (int u = 0; u < e->GU; u++) e->uloss[u].v = gloss[u];
                    }
#pragma omp barrier
                    if (comm_rc) break;
                }
                /* every thread sees the same sums after the barrier, so all
                 * take the same decision */
                double lsum = 0;
                for (int u = 0; u < U; u++) lsum += e->uloss[u].v;
                if (global_loss && (!isfinite(lsum) || bad)) {
                    mydiv = 1;
                    if (t == 0) {
                        diverged = 1;
                        if (bad)
                            snprintf(why, sizeof why, "non-finite gradient at epoch %d step %ld",
                                     epoch + 1, s == 0 ? e->steps_per_epoch : s);
                        else
                            snprintf(why, sizeof why, "loss is %g at epoch %d step %ld", lsum,
                                     epoch + 1, s + 1);
                    }
                    break;
                }
                double tr = 0, tu = 0;
                const int fuse = global_loss && clip == 0;
                if (global_loss) {
                    reduce_units(e, t, fuse, gscale, lr, &tr, &tu);
                } else {
                    if (e->ov_chunks > 1) {
                        /* chunk by chunk, each all-reduced while the next is summed */
                        reduce_overlapped(e, t, lsum, &glsum, &comm_rc, &tr);
                    } else {
                        /* the rank's sum, then one all-reduce of it (and the loss) */
                        reduce_units(e, t, 0, gscale, lr, &tr, &tu);
                        if (t == 0) {
                            double c0 = now();
                            glsum = lsum;
                            comm_rc = comm->allreduce(comm->ctx, e->G[0], np, &glsum, 1);
                            ts->t.comm += now() - c0;
                        }
#pragma omp barrier
                    }
                    if (t == 0) comm_bytes += (double)np * sizeof(float);
                    if (comm_rc) break;
                    lsum = glsum;
                    if (!isfinite(lsum) || bad) {
                        mydiv = 1;
                        if (t == 0) {
                            diverged = 1;
                            snprintf(why, sizeof why, "loss is %g at epoch %d step %ld", lsum,
                                     epoch + 1, s + 1);
                        }
                        break;
                    }
                }
                if (!fuse) {
                    /* the whole sum is known: clip by the global norm, then update */
                    double c0 = now();
                    size_t lo = np * (size_t)t / (size_t)P, hi = np * (size_t)(t + 1) / (size_t)P;
                    float c = 1.0f;
                    if (clip > 0) {
                        double ss = 0;
                        for (size_t i = lo; i < hi; i++) ss += (double)e->G[0][i] * e->G[0][i];
                        ts->partial = ss;
#pragma omp barrier
                        double tot = 0;
                        for (int q = 0; q < P; q++) tot += e->ts[q].partial;
                        double norm = sqrt(tot) * gscale;
                        if (norm > clip) c = (float)(clip / norm);
                    }
                    ts->gradbad =
                        dpt_optim_update(&e->opt, lo, hi, e->w, e->G[0], e->v, gscale * c, lr);
                    tu += now() - c0;
#pragma omp barrier
                }
                if (t == 0) {
                    epoch_loss += lsum;
                    rows_done += b;
                    if (e->progress && t2 - last_progress >= e->progress_interval) {
                        last_progress = t2;
                        dpt_progress pr = {epoch + 1, s + 1, e->steps_per_epoch,
                                           epoch_loss / (double)rows_done, t2 - epoch_t0};
                        e->progress(&pr, e->progress_ud);
                    }
                }
                ts->t.reduce += tr;
                ts->t.update += tu;
                if (e->trace) {
                    dpt_step_record *r =
                        &e->trace_buf[((size_t)s % e->trace_steps) * (size_t)P + (size_t)t];
                    r->epoch = epoch + 1;
                    r->step = s + 1;
                    r->thread = t;
                    r->rows = thi - tlo;
                    r->t = (dpt_phase_times){.compute = ts->t.compute - prev.compute,
                                             .wait = ts->t.wait - prev.wait,
                                             .reduce = ts->t.reduce - prev.reduce,
                                             .update = ts->t.update - prev.update,
                                             .shuffle = ts->t.shuffle - prev.shuffle,
                                             .comm = ts->t.comm - prev.comm};
                    prev = ts->t;
                }
            }
            if (mydiv || failed || comm_rc) break;
                /* every thread's phase times are final before one reads them all */
#pragma omp barrier
            if (t == 0) {
                dpt_epoch_stats st = {0};
                e->step_count += e->steps_per_epoch;
                st.epoch = epoch + 1;
                st.steps = e->steps_per_epoch;
                st.seconds = now() - epoch_t0;
                st.loss = epoch_loss / (double)e->ds->n;
                st.samples_per_second = (double)e->ds->n / st.seconds;
                st.comm_bytes = comm_bytes;
                fill_stats(e, &st);
                /* after the epoch's time is taken */
                if (e->trace) trace_flush(e, traced, e->steps_per_epoch);
                if (cb && cb(&st, ud)) stop = 1;
            }
#pragma omp barrier
        }
    }
    free(gloss);
    e->epochs_done += epochs;
    if (!team_ok)
        return dpt_set_error(DPT_ENOTSUP,
                             "the OpenMP runtime gave fewer than %d threads "
                             "(check OMP_THREAD_LIMIT)",
                             P);
    if (failed == 2) return comm_rc; /* another rank failed: its message is set */
    if (failed) return dpt_set_error(DPT_ENOMEM, "cannot allocate per-thread buffers");
    if (comm_rc) return comm_rc;
    if (diverged) {
        memcpy(e->w, e->snapshot, np * sizeof(float));
        return dpt_set_error(DPT_EDIVERGED,
                             "training diverged: %s (model rolled back to the "
                             "start of that epoch); try a smaller --lr",
                             why);
    }
    return 0;
}

/* The spans of rows among the held rows [h0, h1) of a data set, counted
 * in order over its part (all rows when it has none), one at a time: how
 * threads split the rows a rank holds. */
typedef struct held_iter {
    const dpt_dataset *ds;
    size_t k, seen, h0, h1;
} held_iter;

static int held_next(held_iter *it, size_t *lo, size_t *hi)
{
    const dpt_dataset *ds = it->ds;
    const size_t nr = ds->part ? ds->npart : 1;
    for (; it->k < nr && it->seen < it->h1; it->k++) {
        size_t r0 = ds->part ? ds->part[it->k].lo : 0, r1 = ds->part ? ds->part[it->k].hi : ds->n;
        size_t len = r1 - r0, s = it->seen;
        it->seen += len;
        size_t a = it->h0 > s ? it->h0 - s : 0, b = it->h1 - s < len ? it->h1 - s : len;
        if (a < b) {
            *lo = r0 + a;
            *hi = r0 + b;
            it->k++;
            return 1;
        }
    }
    return 0;
}

int dpt_engine_evaluate(dpt_engine *e, const dpt_dataset *ds, dpt_metrics *out)
{
    const dpt_model *m = e->m;
    memset(out, 0, sizeof *out);
    out->n = ds->n;
    out->accuracy = out->mse = out->r2 = NAN;
    if (ds->n == 0) return dpt_set_error(DPT_EINVAL, "evaluation set has no rows");
    if (ds->d != m->width[0])
        return dpt_set_error(DPT_EINVAL, "the data has %zu features but the model expects %zu",
                             ds->d, m->width[0]);
    const int P = e->P;
    const size_t nsc = dpt_model_scratch_floats(m), H = dpt_dataset_rows_held(ds);
    /* a partial set: every rank evaluates the rows it holds, then the sums
     * of all ranks are combined (each rank holds its own rows) */
    const dpt_comm *comm = ds->part ? e->comm : NULL;
    double lsum = 0, ysum = 0;
    size_t correct = 0;
    int failed = 0;
#pragma omp parallel num_threads(P) reduction(+ : lsum, correct, ysum)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        size_t h0 = H * (size_t)t / (size_t)nt, h1 = H * (size_t)(t + 1) / (size_t)nt;
        float *sc = t < e->P ? e->ts[t].scratch : NULL;
        float *own = NULL;
        if (!sc) sc = own = dpt_alloc((nsc ? nsc : 1) * sizeof(float));
        if (!sc) {
#pragma omp atomic write
            failed = 1;
        } else {
            held_iter it = {ds, 0, 0, h0, h1};
            size_t lo, hi;
            while (held_next(&it, &lo, &hi)) {
                lsum += dpt_model_eval(m, e->k, e->w, ds->X + lo * ds->ld, ds->ld, ds->y + lo,
                                       hi - lo, &correct, sc);
                for (size_t i = lo; i < hi; i++) ysum += ds->y[i];
            }
        }
        dpt_free(own);
    }
    /* every rank makes the same calls, failed or not */
    double tot[4] = {lsum, (double)correct, (double)H, ysum};
    int rc = comm ? comm->allreduce(comm->ctx, NULL, 0, tot, 4) : 0;
    if (failed) return dpt_set_error(DPT_ENOMEM, "cannot allocate evaluation scratch");
    if (rc) return rc;
    const double n = tot[2];
    out->loss = tot[0] / n;
    if (m->spec.loss == DPT_LOSS_MSE) {
        double mean = tot[3] / n, sst = 0;
        held_iter it = {ds, 0, 0, 0, H};
        size_t lo, hi;
        while (held_next(&it, &lo, &hi))
            for (size_t i = lo; i < hi; i++) sst += (ds->y[i] - mean) * (ds->y[i] - mean);
        if (comm && (rc = comm->allreduce(comm->ctx, NULL, 0, &sst, 1))) return rc;
        out->mse = out->loss;
        out->r2 = sst > 0 ? 1 - tot[0] / sst : NAN;
    } else {
        out->accuracy = tot[1] / n;
    }
    out->n = (size_t)n;
    return 0;
}
