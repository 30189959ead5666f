/* The engine's inside, shared by its files: the engine object, a thread's
 * state, the per-call control block, one thread's view of a step, and the
 * phase functions the step is made of (train.c runs them in order). */
#ifndef DPT_ENGINE_IMPL_H
#define DPT_ENGINE_IMPL_H

#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "dpt/cost.h"
#include "dpt/engine.h"
#include "core/barrier.h"
#include "kernels/kernels.h"

typedef struct thread_state {
    float *X, *y;          /* this thread's rows: for the whole epoch in step order
                              (fixed order), or for one step (shuffled epochs) */
    size_t cap_rows;       /* capacity of X/y in rows */
    float *scratch;        /* model scratch */
    dpt_phase_times t;     /* this epoch */
    size_t rows;           /* rows this thread processed this epoch */
    double partial;        /* slice norm for clipping */
    double step_secs;      /* the last step's copy and compute time, and its rows */
    size_t step_rows;      /* (adaptive balancing) */
    int numa;              /* where its rows live: node, DPT_NUMA_NONE/MIXED, or -3 unknown */
    dpt_thread_counts cnt; /* what it moved since create/reset (dpt/cost.h) */
    float *tsum;           /* the canonical sum's stack: blocks of DPT_UPDATE_BLOCK floats */
    float *SX, *Sy;        /* local batching, reshuffled: its shard's rows, copied once */
    const float *sX, *sy;  /* layer split: this step's rows, batch row slo first */
    size_t slo;
    float *domX; /* layer split, a domain's first thread: its rows of a step
                    side by side (one block), so products take them at once */
    float *tile; /* layer split with the fold: where its dW rows are summed */
    int staged;  /* layer split: the next step's rows are in place (split.c) */
} __attribute__((aligned(64))) thread_state;

typedef struct unit_loss {
    double v;
} __attribute__((aligned(64))) unit_loss;

/* A flag on a line of its own: set, never cleared while training, so every
 * thread can read it each step and keep it in its cache until it is set. */
typedef struct flag_line {
    int v;
} __attribute__((aligned(64))) flag_line;

/* One thread's view of the step it is in; lives on its stack. */
typedef struct step {
    int epoch;            /* 0-based, counted since create/reset */
    long s, gstep;        /* step in the epoch, and since create/reset */
    size_t b;             /* rows in the batch */
    float gscale, lr;     /* 1/b, the step's learning rate */
    size_t tlo, thi;      /* this thread's rows of the batch */
    size_t base, off;     /* where the step's rows start in X; rows consumed so far */
    int bad;              /* some thread's last update was not finite */
    int loss_bad;         /* the step's loss (the rank's, or all ranks') is not finite */
    double lsum;          /* the step's loss sum: the rank's, then (across) all ranks' */
    double g0, c0;        /* clock: gather start, compute start */
    double t1, t2;        /* clock: compute end, after the compute barrier */
    double tr, tu;        /* this step's reduce and update time */
    dpt_phase_times prev; /* the phase times before this step (trace) */
    long traced;          /* thread 0: steps handed to the trace */
} step;

/* How a step combines the units' gradients, chosen once at create.
 * across: makes st->lsum the loss of every rank (and, for the all-reduce,
 *         G[0] the sum of every rank's gradient); nonzero on a comm failure.
 * combine: sums the unit buffers into G[0] (NULL: across did it); a fused
 *         one also updates the parameters, so the update phase is skipped.
 * Both are entered by all P threads and end with a barrier where they
 * share data. */
typedef struct reduce_plan {
    int (*across)(dpt_engine *e, int t, int P, step *st);
    void (*combine)(dpt_engine *e, int t, int P, step *st);
    int fused;
    int scatter; /* reduce-scatter, else the pairwise tree */
    /* the rank's own sum before an all-reduce: combine of an unfused kind */
    void (*rank_sum)(dpt_engine *e, int t, int P, step *st);
} reduce_plan;

/* Shared by the threads of one dpt_engine_train call. Written by thread 0
 * (or by every thread, the same value) before a barrier, read after it. */
typedef struct train_ctl {
    int failed;    /* 1: a buffer could not be allocated; 2: another rank failed */
    int team_ok;   /* the runtime gave all P threads */
    int diverged;  /* the verdict; why says where */
    int stop;      /* the epoch callback asked to stop */
    int comm_rc;   /* first failure of a collective */
    int committed; /* epochs completed and kept */
    int intr;      /* thread 0's reading of the interrupt flag at this step's start */
    int interrupted;
    double glsum;  /* all-reduce: the loss summed over ranks */
    double *gloss; /* all-gather: every leaf's loss */
    dpt_epoch_cb cb;
    void *ud;
    /* thread 0's accounting of the epoch */
    double epoch_loss, epoch_t0, last_progress, comm_bytes;
    size_t rows_done;
    char why[200];
} train_ctl;

struct dpt_engine {
    const dpt_model *m;
    dpt_optim_spec opt;
    const dpt_dataset *ds;
    const dpt_kernels *k;
    const dpt_comm *comm;
    dpt_reduce reduce;
    reduce_plan red;
    /* Units: each batch is cut into GU units; this rank computes units
     * [u_base, u_base + u_local) and reduces over U buffers: its own units,
     * or all GU leaves when deterministic across ranks (gathered). */
    int P, U, GU, u_base, u_local, gather_all;
    int *rank_units; /* all-gather: the units of every rank (counts, in rank order) */
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
    float *w, *v, *snapshot; /* snapshot: the last committed model, known finite */
    float *vsnapshot;        /* the velocity at that point */
    const volatile sig_atomic_t *intr_flag;
    float **G;
    unit_loss *uloss;
    thread_state *ts;
    uint32_t *order;
    size_t B;
    long steps_per_epoch, step_count;
    int epochs_done;
    double loss0; /* the first epoch's mean loss since create/reset (0: none yet) */
    int bind_failed;
    char warning[512];
    train_ctl ctl;
    /* the verdict's inputs, one line each instead of a line per thread and
     * unit: a unit's non-finite loss (its compute), a non-finite gradient or
     * parameter in an update (dpt_engine_unit_loss, dpt_engine_update_bad) */
    flag_line loss_bad, grad_bad;
    dpt_barrier bar; /* the team's per-step barrier, grouped by domain */
    dpt_progress_cb progress;
    void *progress_ud;
    double progress_interval;
    dpt_trace_cb trace;
    void *trace_ud;
    dpt_step_record *trace_buf; /* trace_steps x P: step s of an epoch in row s % trace_steps */
    size_t trace_steps;
    /* counters: near[t * P + q] is how far thread q's place is from t's;
     * unit_owner[u] the thread that first touches unit buffer u */
    unsigned char *near;
    int *unit_owner;
    double flops_per_row;
    /* domains (domain.c): threads grouped by a level of the machine; a
     * thread's slot (its place in domain order) picks its units and slice */
    int nd;
    dpt_domain_level domain; /* the level in use */
    int *dom, *slot, *slot_thread;
    int *dom_first; /* domain d's slots: [dom_first[d], dom_first[d + 1]) */
    float **wd;     /* the parameters each domain reads: w, or a copy */
    float **wcopy;  /* the copies (dpt_engine_copies of them) */
    int grouped;    /* the layer split cut the domains into groups (dpt_split_domains) */
    /* the canonical sum: the item of unit buffer x spans [x, item_end[x])
     * at tree level item_level[x]; the subtrees each domain sums first are
     * node_lo/node_hi[dnode_first[d] .. dnode_first[d + 1]) */
    int *item_end, *item_level, *node_lo, *node_hi, *dnode_first;
    /* packages (domain.c plan_packages): where the domains lie in npk >= 2
     * packages, each package's slots together, package k's slots are
     * [pk_first[k], pk_first[k + 1]) (else npk is 0); with a package level
     * (pk_level) the subtrees its threads sum from its domains' items are
     * pnode_lo/pnode_hi[pnode_first[k] .. pnode_first[k + 1]); the items
     * the slice owners read are top_end and top_level (item_end and
     * item_level without a package level) */
    int npk, pk_level, *pk_first, *pnode_lo, *pnode_hi, *pnode_first;
    int *top_end, *top_level;
    double inject; /* dpt_engine_opts.inject_slowdown (inject.c) */
    /* the layer split (split.c): in use; and the domains fold their items
     * as they compute (phase 1 of the canonical sum is then skipped) */
    dpt_split split;
    int fold;
    dpt_barrier *dbar; /* one per domain, of its threads */
};

/* A shared scalar (a loss, a flag, a partial) moves one cache line. */
#define DPT_LINE        64u
#define DPT_LINE_FLOATS (DPT_LINE / sizeof(float))

/* Whether domains read copies of w (wd[d], refreshed by the update's
 * pushes): with several domains under the data split, one per domain;
 * under the layer split, whose threads read only their share of w, one
 * per package where it has a package level, else w itself (domain.c:
 * without the package level's groups, on an L3 a domain, the pushes cost
 * more than the reads over the link they save). */
static inline int dpt_engine_has_copies(const dpt_engine *e)
{
    return e->split == DPT_SPLIT_LAYER ? e->pk_level : e->nd > 1;
}

/* An update found a non-finite gradient or parameter (bad != 0): the
 * team's line, which the next step reads. */
static inline void dpt_engine_update_bad(dpt_engine *e, int bad)
{
    if (bad) __atomic_store_n(&e->grad_bad.v, 1, __ATOMIC_RELAXED);
}

/* Unit buffer u's loss of the step; a non-finite one sets the team's line. */
static inline void dpt_engine_unit_loss(dpt_engine *e, int u, double loss)
{
    e->uloss[u].v = loss;
    if (!isfinite(loss)) __atomic_store_n(&e->loss_bad.v, 1, __ATOMIC_RELAXED);
}

/* Thread t's counts c: bytes read from / written to owner's memory. */
static inline void dpt_count_read(const dpt_engine *e, dpt_thread_counts *c, int t, int ph,
                                  int owner, size_t bytes)
{
    c->phase[ph].read[e->near[(size_t)t * (size_t)e->P + (size_t)owner]] += bytes;
}

static inline void dpt_count_write(const dpt_engine *e, dpt_thread_counts *c, int t, int ph,
                                   int owner, size_t bytes)
{
    c->phase[ph].written[e->near[(size_t)t * (size_t)e->P + (size_t)owner]] += bytes;
}

static inline void cnt_read(dpt_engine *e, int t, int ph, int owner, size_t bytes)
{
    dpt_count_read(e, &e->ts[t].cnt, t, ph, owner, bytes);
}

static inline void cnt_write(dpt_engine *e, int t, int ph, int owner, size_t bytes)
{
    dpt_count_write(e, &e->ts[t].cnt, t, ph, owner, bytes);
}

static inline void cnt_barrier(dpt_engine *e, int t, int ph)
{
    e->ts[t].cnt.phase[ph].barriers++;
}

/* The team's barrier, counted in phase ph: core/barrier.h's, combining
 * in the domains' groups, and making no system call unless a thread
 * sleeps (libgomp's makes a futex call per barrier, a microsecond or more
 * in a VM, several times per step). A team
 * of one has nobody to wait for: skipped, and not counted
 * (dpt_engine_cost does the same). */
static inline void team_barrier(dpt_engine *e, int t, int ph)
{
    if (e->P > 1) {
        dpt_barrier_wait(&e->bar, t);
        cnt_barrier(e, t, ph);
    }
}

/* Thread t reads one line from each of the P threads (a scan of flags). */
static inline void cnt_scan(dpt_engine *e, int t, int ph)
{
    for (int q = 0; q < e->P; q++) cnt_read(e, t, ph, q, DPT_LINE);
}

static inline double dpt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The first row of a batch of size b that global unit u covers. */
static inline size_t unit_row(const dpt_engine *e, size_t b, int u)
{
    return b * (size_t)u / (size_t)e->GU;
}

/* Thread t's slot: its place in domain order (t itself before domains). */
static inline int slot_of(const dpt_engine *e, int t)
{
    return e->slot ? e->slot[t] : t;
}

/* Global units [u0, u1) that thread t of P computes: its slot's. */
static inline void thread_units(const dpt_engine *e, int t, int P, int *u0, int *u1)
{
    const int s = slot_of(e, t);
    *u0 = e->u_base + (int)((long)e->u_local * s / P);
    *u1 = e->u_base + (int)((long)e->u_local * (s + 1) / P);
}

/* The start of share s of [0, n) cut in P (s == P: n): n s / P down to a
 * whole cache line of floats, so that no two shares meet inside a line
 * and a share's vectors start where lines start, as the buffers do. */
static inline size_t share_edge(size_t n, size_t s, size_t P)
{
    return s >= P ? n : n * s / P / DPT_LINE_FLOATS * DPT_LINE_FLOATS;
}

/* Thread t's slice of n parameters: its slot's share. */
static inline void thread_slice(const dpt_engine *e, int t, size_t n, size_t *lo, size_t *hi)
{
    const size_t s = (size_t)slot_of(e, t), P = (size_t)e->P;
    *lo = share_edge(n, s, P);
    *hi = share_edge(n, s + 1, P);
}

/* The thread that owns domain d's copy of the parameters (its first);
 * with one domain there is no copy (dpt_engine_count_w). */
static inline int dpt_engine_domain_owner(const dpt_engine *e, int d)
{
    return e->slot_thread[e->dom_first[d]];
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

/* The first unit of rank r of R when GU units are spread over them: every
 * rank gets GU/R or one more (the deterministic leaves need not divide). */
static inline int rank_first_unit(int GU, int r, int R)
{
    return (int)((long)GU * r / R);
}

/* inject.c: the calibration slowdown after a thread's compute */
void dpt_engine_inject(const dpt_engine *e, const step *st);

/* engine.c */
void dpt_engine_add_warning(dpt_engine *e, const char *text);
/* The counters' tables (near, unit_owner) from e->topo, e->plan and the
 * units; -1 when out of memory. */
int dpt_engine_plan_counters(dpt_engine *e);
/* Create's checks, units, batches and reduction plan for an engine of one
 * rank with m, opt, ds (n and d alone are read) and P set, and nothing
 * allocated: what the cost function needs. */
int dpt_engine_layout(dpt_engine *e, const dpt_engine_opts *opts);

/* split.c: the layer split. Thread t allocates (first touch) its tile
 * where the fold sums units, and, first of a domain of several threads, the
 * buffer its domain's rows of a step are put side by side in; nonzero: out
 * of memory. */
int dpt_engine_split_buffers(dpt_engine *e, int t);
/* Thread t's part of the step's gradients under the layer split, counted
 * into c; run == 0 counts only (the cost function). rows_X, rows_y: its
 * rows of the step, batch row slo first; staged: they are in place
 * already (dpt_engine_split_stage), so the step starts without a barrier. */
void dpt_engine_split_step(dpt_engine *e, dpt_thread_counts *c, int t, size_t b, int run,
                           int staged, const float *rows_X, const float *rows_y, size_t slo);
/* Thread t's rows of the next step (b rows), put where its domain reads
 * them (their place, and side by side in the domain's buffer) after this
 * step's compute barrier; marks them staged for the next step. */
void dpt_engine_split_stage(dpt_engine *e, int t, size_t b, const float *rows_X,
                            const float *rows_y, size_t slo);

/* rows.c: a thread's rows of each batch */
size_t dpt_engine_thread_rows(const dpt_engine *e, int t);
void dpt_engine_batch_part(const dpt_engine *e, int t, size_t b, long gstep, size_t *lo,
                           size_t *hi);
/* thread t's local rows X, y for a step (or the epoch); a new X's pages
 * are first touched by the owner: populated, or zeroed with touch where
 * they cannot be (a new y is zeroed) */
int dpt_engine_ensure_local(dpt_engine *e, int t, int touch);
int dpt_engine_gather_local(dpt_engine *e, int t);
void dpt_engine_step_span(const dpt_engine *e, int t, long s, size_t consumed, size_t tlo,
                          size_t thi, size_t *lo, size_t *hi);
void dpt_engine_copy_rows(const dpt_engine *e, int t, size_t lo, size_t hi, float *X, float *y);
/* Local batching, reshuffled: thread t's own copy of its shard (first
 * touched by t, once); -1 when out of memory. */
int dpt_engine_copy_shard(dpt_engine *e, int t);
void dpt_engine_shuffle_range(dpt_engine *e, int epoch, size_t lo, size_t hi);

/* domain.c: domains, the parameters' copies, the canonical sum */
/* The domains at level, the split (want resolved, dpt_engine_resolve_split)
 * and the canonical sum's items. */
int dpt_engine_plan_domains(dpt_engine *e, dpt_domain_level level, dpt_split want);
/* engine.c: e->split and e->fold from want, the model, the batch and the
 * domains' sizes. */
void dpt_engine_resolve_split(dpt_engine *e, dpt_split want);
int dpt_engine_alloc_copies(dpt_engine *e);
void dpt_engine_free_domains(dpt_engine *e);
/* Thread t's share of [0, n) among its domain's threads. */
void dpt_engine_domain_share(const dpt_engine *e, int t, size_t n, size_t *lo, size_t *hi);
/* Thread t copies its share of w into the copy it reads (setup): its
 * domain share, or its package share of its package's copy. */
void dpt_engine_refresh_copies(dpt_engine *e, int t);
/* Thread t reads `bytes` of the parameters its domain reads (counted in
 * c, phase ph): its domain's copy, or with one domain w itself, whose
 * slices live with the threads that update them (in proportion). */
void dpt_engine_count_w(const dpt_engine *e, dpt_thread_counts *c, int t, int ph, size_t bytes);
/* Thread t first-touches its slices of w, v and their snapshots (create). */
void dpt_engine_touch_slices(dpt_engine *e, int t);
/* After an update of w[lo, hi): the slice into every copy. */
void dpt_engine_push_copies(dpt_engine *e, int t, size_t lo, size_t hi);
/* How many copies of w there are, and the thread a push into copy c is
 * counted to (its first). */
int dpt_engine_copies(const dpt_engine *e);
int dpt_engine_copy_owner(const dpt_engine *e, int c);
/* The canonical sum over floats [b0, b0 + n) of the unit buffers' items
 * [lo, hi) (the item at x spans [x, end[x]) at tree level level[x]; end
 * NULL: each buffer one leaf), in stack's blocks; returns where it is (a
 * buffer itself when there is one item). */
const float *dpt_engine_tree_sum(const dpt_engine *e, float *stack, size_t b0, size_t n, int lo,
                                 int hi, const int *end, const int *level);
/* With a package level: thread t's share of [0, n) among its package's
 * threads, and its package's index (pk_first). */
void dpt_engine_package_share(const dpt_engine *e, int t, size_t n, size_t *lo, size_t *hi);
int dpt_engine_package_of(const dpt_engine *e, int t);

/* reduce.c: the reduction strategies; fills e->red for the engine's
 * comm, reduce mode, units and clipping */
void dpt_engine_pick_reduce(dpt_engine *e);
/* Count the update of slice [lo, hi) by thread t: w and v read and
 * written, its flag, and (reads_g0) the summed gradient's slice read. */
void dpt_engine_count_update(dpt_engine *e, int t, size_t lo, size_t hi, int reads_g0);
/* The sum of the U units' losses, in unit order. */
double dpt_engine_loss_sum(const dpt_engine *e);

#endif
