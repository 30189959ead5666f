/* What a training step moves, per thread: barriers passed, bytes read and
 * written by how far their owner is, rows computed, steps left idle.
 *
 * Two sources give the same numbers. The engine counts them as it runs
 * (dpt_engine_counts, always on: a few integer adds per phase and thread);
 * dpt_engine_cost computes them from a topology, a plan, the model and the
 * options without running anything, so a 192-thread server can be read off
 * a 2-core laptop. Tests hold the two equal (docs/scaling.md).
 *
 * What counts. A buffer's owner is the thread that touches it first: a
 * thread's gradient buffers and rows are its own; the parameters, the
 * optimizer state, the data set and the shuffle order belong to thread 0
 * (the main thread allocates and fills them). A phase counts each buffer
 * range it touches once, however often its kernels re-read it from cache:
 * the bytes that must reach the thread. A scalar that threads share (a
 * loss, a flag, a norm partial) moves a cache line: 64 bytes. Thread
 * scratch and the per-step trace are not counted; bytes sent to other ranks
 * are counted apart (sent). */
#ifndef DPT_COST_H
#define DPT_COST_H

#include "dpt/export.h"

#include <stddef.h>
#include <stdint.h>

#include "dpt/engine.h"
#include "dpt/model.h"
#include "dpt/optim.h"
#include "dpt/topo.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How far a buffer's owner is from the thread that touches it. */
typedef enum {
    DPT_NEAR_SELF = 0,    /* the thread's own buffer */
    DPT_NEAR_CORE = 1,    /* another thread on the same core (SMT sibling, or the same PU) */
    DPT_NEAR_L3 = 2,      /* another core under the same L3 cache */
    DPT_NEAR_NUMA = 3,    /* the same NUMA node, another L3 (or no L3 level) */
    DPT_NEAR_NODE = 4,    /* another NUMA node of the same package */
    DPT_NEAR_PACKAGE = 5, /* another package (crosses the socket link) */
    DPT_NEAR_UNKNOWN = 6, /* unpinned threads: the OS decides */
    DPT_NEAR_COUNT = 7
} dpt_near;

/* "self", "core", "l3", "numa", "node", "package", "unknown" */
DPT_API const char *dpt_near_name(dpt_near d);

/* How far thread b's place is from thread a's on topology t (the places of
 * one plan, dpt_topo_plan). Threads of an unpinned plan are UNKNOWN to each
 * other. */
DPT_API dpt_near dpt_topo_near(const dpt_topo *t, const dpt_place *a, const dpt_place *b);

/* The parts of an epoch the counts are kept by. */
typedef enum {
    DPT_CPH_GATHER = 0,  /* a step's rows copied into the thread's buffer */
    DPT_CPH_COMPUTE = 1, /* the units' gradients */
    DPT_CPH_REDUCE = 2,  /* combining the units' gradients (and a fused update) */
    DPT_CPH_UPDATE = 3,  /* the optimizer's update (clipping's norm included) */
    DPT_CPH_SYNC = 4,    /* the compute barrier, loss sums and flag scans */
    DPT_CPH_EPOCH = 5,   /* once per epoch: shuffle, snapshot, the epoch's barriers */
    DPT_CPH_COUNT = 6
} dpt_cost_phase;

/* "gather", "compute", "reduce", "update", "sync", "epoch" */
DPT_API const char *dpt_cost_phase_name(dpt_cost_phase p);

typedef struct dpt_move {
    uint64_t barriers;                /* team barriers passed */
    uint64_t read[DPT_NEAR_COUNT];    /* bytes read, by the owner's distance */
    uint64_t written[DPT_NEAR_COUNT]; /* bytes written, by the owner's distance */
} dpt_move;

/* One thread's counts over some epochs. */
typedef struct dpt_thread_counts {
    dpt_move phase[DPT_CPH_COUNT];
    uint64_t steps;      /* steps taken */
    uint64_t rows;       /* rows computed */
    uint64_t idle_steps; /* steps in which the thread computed no row */
    uint64_t flops;      /* floating-point operations of its gradients (model's count) */
    uint64_t sent;       /* bytes sent to other ranks (thread 0 of a rank) */
} dpt_thread_counts;

/* Sum of a move over distances, and of a thread's counts over phases. */
DPT_API uint64_t dpt_move_read(const dpt_move *m);
DPT_API uint64_t dpt_move_written(const dpt_move *m);
/* a += b, every field */
DPT_API void dpt_thread_counts_add(dpt_thread_counts *a, const dpt_thread_counts *b);

/* Counts per step, over a team of P threads: each total divided by the
 * steps counted (thread 0's; the epoch phase spread over its steps). */
typedef struct dpt_step_summary {
    double steps;                   /* steps the counts cover (0: none) */
    double barriers;                /* barriers each thread passes per step */
    double read[DPT_NEAR_COUNT];    /* bytes all threads read per step, by distance */
    double written[DPT_NEAR_COUNT]; /* bytes all threads write per step, by distance */
    double rows_min, rows_max;      /* rows per thread per step, least and most */
    double idle_threads;            /* threads that computed no row, per step */
} dpt_step_summary;
DPT_API void dpt_counts_summarize(const dpt_thread_counts *c, int P, dpt_step_summary *out);

/* The engine's counts per thread (out has dpt_engine_threads(e) entries)
 * over the epochs trained since create or dpt_engine_reset, the steps of an
 * epoch that failed or was interrupted included. */
DPT_API void dpt_engine_counts(const dpt_engine *e, dpt_thread_counts *out);

/* What one epoch of training over n rows moves per thread, computed: the
 * engine dpt_engine_create(m, o, a set of n rows of m's width, opts) makes
 * would count, for each epoch, exactly this (out has P entries, P being
 * opts->threads or, when 0, this machine's physical cores). plan: the
 * placement to cost (P entries, from dpt_topo_plan on topo); NULL plans it
 * from opts->pin on topo. topo NULL: opts->topo, else this machine. With
 * adaptive balancing the cut follows measured speeds, so the costs given
 * are those of an even cut. 0, or DPT_EINVAL as dpt_engine_create refuses,
 * or DPT_ENOMEM. */
DPT_API int dpt_engine_cost(const dpt_topo *topo, const dpt_place *plan, const dpt_model *m,
                            const dpt_optim_spec *o, size_t n, const dpt_engine_opts *opts,
                            dpt_thread_counts *out);

#ifdef __cplusplus
}
#endif
#endif
