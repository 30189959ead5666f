/* The data-parallel engine: shards each batch across pinned OpenMP threads,
 * computes per-thread gradients, reduces them (pairwise tree or
 * reduce-scatter, across ranks by all-reduce or all-gather) and runs the
 * update in parallel over parameter slices, all inside one persistent
 * parallel region per call (no fork/join per step). */
#ifndef DPT_ENGINE_H
#define DPT_ENGINE_H

#include "dpt/export.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "dpt/comm.h"
#include "dpt/data.h"
#include "dpt/model.h"
#include "dpt/optim.h"
#include "dpt/topo.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dpt_engine dpt_engine;

typedef enum {
    /* pairwise tree, ceil(log2 U) rounds, each split across all threads by
     * parameter chunks; the update fused into the last round (--reduce tree) */
    DPT_REDUCE_TREE = 0,
    /* reduce-scatter: thread t sums every unit's slice t of the parameters
     * and updates that slice; one barrier, each gradient byte read once.
     * The default (dpt_engine_opts_defaults), chosen by measurement. */
    DPT_REDUCE_SCATTER = 1
} dpt_reduce;

/* Across ranks: overlap the all-reduce with the rank's own reduction. */
typedef enum {
    /* on where it can pay: a rank with several units to sum and a model
     * of at least two chunks of DPT_OVERLAP_MIN_CHUNK floats */
    DPT_OVERLAP_AUTO = 0,
    DPT_OVERLAP_OFF = 1, /* sum the rank's units, then one all-reduce */
    DPT_OVERLAP_ON = 2   /* chunks whenever the model has two */
} dpt_overlap;

/* How each batch is cut among a process's threads. */
typedef enum {
    /* even parts, fixed: the same seed and thread count give the same bits */
    DPT_BALANCE_STATIC = 0,
    /* parts in proportion to each thread's measured speed (smoothed over
     * steps), for threads that run at different speeds: a busy SMT sibling,
     * a shared machine, big and little cores. Every row is still used once
     * per epoch, but the float sums follow the cuts, so runs are not
     * bitwise reproducible; not with deterministic mode or local batching */
    DPT_BALANCE_ADAPTIVE = 1
} dpt_balance;

/* How the threads of a domain share a step's work. */
typedef enum {
    /* layer where the model has layer products and at least
     * DPT_SPLIT_AUTO_PARAMS parameters, fewer than DPT_SPLIT_AUTO_ROWS rows
     * per thread remain per step (the small-row regime, where the weights,
     * not the rows, are the traffic), and the domains hold 2 to
     * DPT_SPLIT_AUTO_DOMAIN threads (one L3 group: its barriers stay
     * cheap; a team within one package, or across packages of one domain
     * each, has larger domains cut into groups of 8 for it,
     * docs/engine.md); else data */
    DPT_SPLIT_AUTO = 0,
    /* every thread takes its own rows: its units, a whole gradient each */
    DPT_SPLIT_DATA = 1,
    /* the threads of a domain take the domain's units one at a time, each
     * computing its share of every layer's outputs (rows of W_l, of the
     * gradient, of the optimizer's slice), so each reads and writes 1/k of
     * the model; the same bits as data (docs/engine.md) */
    DPT_SPLIT_LAYER = 2
} dpt_split;

#define DPT_SPLIT_AUTO_ROWS   16
#define DPT_SPLIT_AUTO_PARAMS 65536
#define DPT_SPLIT_AUTO_DOMAIN 16
/* The most threads of a group the layer split cuts a larger domain into
 * (dpt_topo_split_groups). */
#define DPT_SPLIT_GROUP 8

DPT_API const char *dpt_split_name(dpt_split s);
/* "auto", "data" or "layer"; DPT_EINVAL naming the allowed values */
DPT_API int dpt_split_parse(const char *text, dpt_split *out);

/* Smallest chunk worth a message of its own, in floats (256 KiB). */
#define DPT_OVERLAP_MIN_CHUNK ((size_t)65536)

typedef struct dpt_engine_opts {
    int threads;          /* 0: the number of physical cores */
    dpt_pin_spec pin;     /* placement policy; policy NONE leaves it to OpenMP */
    int shuffle;          /* 1: reshuffle rows every epoch (SGD); 0: fixed order */
    uint64_t seed;        /* shuffle seed, and the initial parameters' */
    int leaves;           /* >0: deterministic mode, the gradient is summed over this
                             many fixed leaves whatever the thread and rank count
                             (spread over ranks as evenly as they go; at least one
                             per rank); not with local batching */
    dpt_topo *topo;       /* topology to plan on; NULL: this machine (opened and owned) */
    dpt_reduce reduce;    /* how per-thread gradients are combined */
    const dpt_comm *comm; /* other ranks (MPI); NULL: this process alone */
    int batching_local;   /* 1: thread t draws its part of every batch from its own
                             shard (NUMA-friendly; batches depend on the thread count) */
    dpt_overlap overlap;  /* with comm: pipeline the all-reduce in chunks, each
                             sent while the threads sum the next */
    dpt_balance balance;  /* how batches are cut among the threads */
    dpt_init init;        /* initial parameters, drawn with seed (DPT_INIT_UNIFORM = 0) */
    /* threads grouped by a level of the machine (dpt/topo.h): the gradient
     * is summed inside each domain first and each domain reads its own copy
     * of the parameters; the bits do not depend on it (DPT_DOMAIN_AUTO = 0) */
    dpt_domain_level domain;
    /* how a domain's threads share the work; the bits do not depend on it
     * (DPT_SPLIT_AUTO = 0). Layer needs a model of layer products (not the
     * fused linear and tiny-MLP kernels) and static balancing. */
    dpt_split split;
    /* A calibration aid, 0 otherwise: after its compute, each thread spins
     * (a dependent FMA chain) for this fraction of that step's compute
     * time, in [0, 10] (0.1: 10% more compute). The trained bits do not
     * change; `dpt compare --calibrate` uses it as a known slowdown. */
    double inject_slowdown;
} dpt_engine_opts;

/* A divergence: an epoch whose mean loss exceeds this many times the first
 * epoch's (the first since create or reset) stops training as if the loss
 * were not finite. */
#define DPT_DIVERGE_LOSS_FACTOR 1e6

/* Time per phase, seconds, summed over an epoch. */
typedef struct dpt_phase_times {
    double compute, wait, reduce, update, shuffle, comm;
} dpt_phase_times;

typedef struct dpt_epoch_stats {
    int epoch; /* 1-based */
    long steps;
    double loss;    /* mean per-sample loss over the epoch's batches */
    double seconds; /* wall time of the epoch */
    double samples_per_second;
    dpt_phase_times mean;      /* per-thread times averaged over threads */
    dpt_phase_times max;       /* slowest thread per phase */
    double imbalance;          /* max / mean of per-thread compute time */
    double comm_bytes;         /* payload this rank sent to other ranks */
    size_t rows_min, rows_max; /* rows processed per thread, least and most */
} dpt_epoch_stats;

/* Called by one thread after every epoch; a nonzero return stops training. */
typedef int (*dpt_epoch_cb)(const dpt_epoch_stats *st, void *ud);

/* Progress within an epoch, for a live display; called by one thread at
 * most every interval seconds, between steps. */
typedef struct dpt_progress {
    int epoch;      /* 1-based */
    long step;      /* steps done in this epoch */
    long steps;     /* steps per epoch */
    double loss;    /* mean per-sample loss so far in this epoch */
    double seconds; /* since the epoch began */
} dpt_progress;
typedef void (*dpt_progress_cb)(const dpt_progress *p, void *ud);

typedef struct dpt_metrics {
    size_t n;
    double loss;     /* mean per-sample loss */
    double accuracy; /* classification, else NAN */
    double mse, r2;  /* regression, else NAN */
} dpt_metrics;

DPT_API void dpt_engine_opts_defaults(dpt_engine_opts *o);

/* Plan placement, allocate per-thread buffers (first touched later by
 * their owners) and initialise the parameters as dpt_model_init_params(m,
 * w, opts->seed, opts->init) does. The model, optimizer spec and data set
 * must outlive the engine. Refused (DPT_EINVAL): a cosine schedule without
 * a horizon (o->epochs), deterministic mode with local batching or with
 * fewer leaves than ranks, adaptive balancing with either of those, local
 * batching across ranks. */
DPT_API int dpt_engine_create(dpt_engine **e, const dpt_model *m, const dpt_optim_spec *o,
                              const dpt_dataset *train, const dpt_engine_opts *opts);
DPT_API void dpt_engine_destroy(dpt_engine *e);

/* Train for epochs more epochs. Returns 0, or DPT_EDIVERGED, or
 * DPT_EINTERRUPTED (dpt_engine_set_interrupt), or another error.
 * Divergence: a non-finite loss, gradient or updated parameter at any step
 * (the message names the epoch and step), or an epoch's mean loss above
 * DPT_DIVERGE_LOSS_FACTOR times the first epoch's (the message says so).
 * The parameters are then rolled back to the end of the last epoch that
 * completed finite (the start of the one that failed), which is the model
 * the run had there; the epoch callback is not called for the epoch that
 * failed. Learning-rate schedules count steps and epochs since create or
 * reset, over the horizon o->epochs, so one call of N epochs and N calls of
 * one give the same bits. */
DPT_API int dpt_engine_train(dpt_engine *e, int epochs, dpt_epoch_cb cb, void *ud);

/* Loss and metrics of the current parameters on a data set, in parallel.
 * A data set that holds part of its rows (ds->part, per-rank loading) is
 * evaluated on the rows held, summed over the ranks of the engine's comm:
 * with every rank holding its own rows, the metrics of the whole set. */
DPT_API int dpt_engine_evaluate(dpt_engine *e, const dpt_dataset *ds, dpt_metrics *out);

/* The rows of an n-row training set that rank `rank` of `ranks` reads in
 * training, as sorted, merged ranges (*out malloc'd, *nout of them): with
 * a fixed order (no shuffle, or full batch) its slice of every batch,
 * whatever its thread count; with shuffling every row, since any row may
 * fall in its slice of a batch. leaves: the engine's (opts.leaves; 0: not
 * deterministic), since the leaves a rank computes decide its slice. Load
 * just these rows (ds->part) to train on a rank without reading the rest.
 * 0 or DPT_ENOMEM/DPT_EINVAL. */
DPT_API int dpt_engine_rank_rows(size_t n, const dpt_optim_spec *o, int shuffle, int leaves,
                                 int rank, int ranks, dpt_row_range **out, size_t *nout);

DPT_API float *dpt_engine_params(dpt_engine *e); /* n_params floats, writable */
/* Reset parameters to w (n_params floats) and clear optimizer state, the
 * step and epoch counters and the first epoch's loss, for repeated runs
 * from the same start. */
DPT_API void dpt_engine_reset(dpt_engine *e, const float *w);

/* Where training stands, beyond the parameters: what a checkpoint needs to
 * continue bit for bit (dpt/checkpoint.h). The shuffle order is a pure
 * function of the seed and the epoch, and the schedule of the counters, so
 * nothing else is kept. Adaptive balancing's speeds are not part of it:
 * such runs are not bitwise reproducible anyway. */
typedef struct dpt_engine_state {
    int epochs;   /* epochs committed since create/reset */
    long steps;   /* steps taken since create/reset */
    double loss0; /* the first epoch's mean loss, the divergence rule's reference (0: none) */
    /* get: the engine's velocity (n_params floats, valid until the next
     * train or reset), NULL when the optimizer keeps none; set: copied in,
     * NULL clears it */
    const float *velocity;
} dpt_engine_state;
DPT_API void dpt_engine_get_state(const dpt_engine *e, dpt_engine_state *s);
/* Continue from s (after dpt_engine_reset with the saved parameters). */
DPT_API void dpt_engine_set_state(dpt_engine *e, const dpt_engine_state *s);

/* A flag (set by a signal handler) that stops training: when it is nonzero
 * at the start of a step, that step's gradient is computed but not applied,
 * and dpt_engine_train rolls the parameters and the velocity back to the
 * start of the epoch (the end of the last completed one) and returns
 * DPT_EINTERRUPTED; the state then is that of the completed epochs, so a
 * run continued from it repeats the interrupted epoch and gives the bits
 * of an uninterrupted run. NULL: none. Ignored across ranks (comm): a rank
 * cannot stop its peers in the middle of a collective. */
DPT_API void dpt_engine_set_interrupt(dpt_engine *e, const volatile sig_atomic_t *flag);

/* Live progress reports (cb NULL: none). */
DPT_API void dpt_engine_set_progress(dpt_engine *e, dpt_progress_cb cb, void *ud, double interval);

/* One thread's part of one step, for a per-step trace: where the time went
 * (as dpt_phase_times, but for this step alone) and how many rows it
 * computed. The epoch's first step also carries the epoch's shuffle. */
typedef struct dpt_step_record {
    int epoch;  /* 1-based */
    long step;  /* 1-based, within the epoch */
    int thread; /* 0-based, within this rank */
    size_t rows;
    dpt_phase_times t;
} dpt_step_record;

/* Receives whole steps in order, each step's records in thread order
 * (n = steps x threads). Called by one thread at the end of every epoch,
 * after the epoch's time is taken and before the epoch callback; mid-epoch
 * only when more steps piled up than the buffer holds, which then delays
 * that one step. */
typedef void (*dpt_trace_cb)(const dpt_step_record *r, size_t n, void *ud);

/* Per-step trace (cb NULL: none); not from inside dpt_engine_train (its
 * callbacks). buffer_steps: how many steps to hold before a mid-epoch
 * hand-over (0: a whole epoch, up to DPT_TRACE_BUFFER bytes of records).
 * The steps of an epoch that fails are not handed over. 0 or DPT_ENOMEM. */
#define DPT_TRACE_BUFFER ((size_t)16 << 20)
DPT_API int dpt_engine_set_trace(dpt_engine *e, dpt_trace_cb cb, void *ud, size_t buffer_steps);

DPT_API int dpt_engine_threads(const dpt_engine *e);
/* The domains in use: their count, and the level (AUTO resolved) in *level
 * when not NULL; 1 and DPT_DOMAIN_NONE for the flat engine. */
DPT_API int dpt_engine_domains(const dpt_engine *e, dpt_domain_level *level);
/* Whether the layer split cut the level's domains into groups
 * (dpt_topo_split_groups), and in *package_level (when not NULL) whether
 * each package's groups are summed in it first, with a copy of the
 * parameters per package (docs/engine.md). */
DPT_API int dpt_engine_domain_groups(const dpt_engine *e, int *package_level);
/* The split in use (AUTO resolved). */
DPT_API dpt_split dpt_engine_split(const dpt_engine *e);
DPT_API const dpt_place *dpt_engine_plan(const dpt_engine *e);
DPT_API const char *dpt_engine_isa(const dpt_engine *e);
/* Where each thread's first-touched rows live, checked with hwloc after the
 * first gather: threads whose pages sit on their own NUMA node, elsewhere,
 * or where the OS cannot tell (synthetic topology, unsupported query). */
DPT_API void dpt_engine_numa_report(const dpt_engine *e, int *local, int *remote, int *unknown);

/* A warning to show the user (binding refused, fewer cores than threads),
 * or NULL. */
DPT_API const char *dpt_engine_warning(const dpt_engine *e);

#ifdef __cplusplus
}
#endif
#endif
