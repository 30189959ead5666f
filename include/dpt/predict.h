/* Predicting a run on a machine we cannot reach: the counts of what every
 * phase moves (dpt/cost.h), turned into seconds with a small machine model
 * (bandwidth by distance, DRAM per node, the socket link, barrier latency)
 * and a calibration of this machine's per-thread CPU costs (the model's
 * gradient as a function of rows, the update, the vector add, the row copy,
 * a barrier). The model, its defaults and the reference servers are
 * described in docs/scaling.md. */
#ifndef DPT_PREDICT_H
#define DPT_PREDICT_H

#include "dpt/export.h"

#include <stddef.h>
#include <stdio.h>

#include "dpt/cost.h"
#include "dpt/engine.h"
#include "dpt/model.h"
#include "dpt/optim.h"
#include "dpt/topo.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the machine model ---- */

/* What a target machine does besides computing. Bandwidths in GB/s (1e9
 * bytes/s), latencies in nanoseconds. The keys of a machine file are the
 * field names (see dpt_machine_set). */
typedef struct dpt_machine {
    char name[64];
    /* hwloc synthetic string of the machine (the reference servers), or "" */
    char topology[256];
    /* One thread reading or writing a buffer whose owner is at distance d
     * (dpt_near): bw[DPT_NEAR_CORE] another thread on its core, [L3] another
     * core of its L3, [NUMA] another L3 of its node, [NODE] another node of
     * its package, [PACKAGE] another package, [UNKNOWN] an unpinned team.
     * bw[DPT_NEAR_SELF] is unused: a thread's own bytes are part of the
     * calibrated CPU costs. Keys bw_core, bw_l3, bw_numa, bw_node,
     * bw_package, bw_unknown. */
    double bw[DPT_NEAR_COUNT];
    double dram_node;   /* DRAM bandwidth of one NUMA node, all its cores reading */
    double link;        /* between two packages, all links together, each way */
    double barrier_a;   /* a team barrier of P threads costs barrier_a + */
    double barrier_b;   /* barrier_b * ceil(log2 P) ns (none for P = 1), */
    double barrier_pkg; /* + barrier_pkg ns when the team spans packages */
    double core_speed;  /* a core's compute speed over the calibration machine's */
    /* its speed with all cores busy over its speed alone (all-core over
     * single-core turbo clock; on a shared machine, the share left) */
    double allcore_speed;
    double smt_speed; /* one of two threads sharing a core, over a lone thread */
    double cache_kib; /* cache per core (L2 + its share of L3), KiB: rows a thread
                         reads beyond this each step come from DRAM */
    /* The latency of a handoff: per step and phase, a thread that moves B
     * bytes another thread owns (just written there) stalls handoff_ns for
     * the first line and handoff_line_ns for each further one, up to
     * handoff_lines lines (beyond them the prefetchers keep up and the
     * bandwidths above apply). Small, step-by-step transfers are bound by
     * this, not by bandwidth. 0: not modelled. */
    double handoff_ns, handoff_line_ns, handoff_lines;
} dpt_machine;

/* The reference servers ("genoa", "spr"; docs/scaling.md gives the
 * figures and where they come from) and "this" (this machine: filled from
 * a calibration with dpt_machine_from_calibration). DPT_EINVAL naming the
 * allowed names. */
DPT_API int dpt_machine_preset(const char *name, dpt_machine *m);

/* Set one field by key ("bw_l3", "dram_node", "link", "barrier_a", ...,
 * "name", "topology"). DPT_EINVAL with a message naming the key and what
 * it accepts (positive numbers; smt_speed in (0, 1]). */
DPT_API int dpt_machine_set(dpt_machine *m, const char *key, const char *value);

/* Override fields from a file: "key = value" lines ('#' comments, blank
 * lines), or one JSON object of the same keys (numbers or strings). A bad
 * line gives DPT_EFORMAT "FILE:LINE: problem"; an unreadable file
 * DPT_EIO. */
DPT_API int dpt_machine_load(dpt_machine *m, const char *path);

/* The fields as "key = value" lines (a file dpt_machine_load reads back). */
DPT_API void dpt_machine_print(const dpt_machine *m, FILE *f);

/* Barrier latency of a team of P threads in seconds; spans: the team
 * covers more than one package. */
DPT_API double dpt_machine_barrier(const dpt_machine *m, int P, int spans);

/* ---- calibration of this machine ---- */

#define DPT_CAL_POINTS 64
/* the layer split's calibration: threads per domain, rows per unit */
#define DPT_CAL_SPLIT_K    4
#define DPT_CAL_SPLIT_ROWS 5

/* Per-thread CPU time (CLOCK_THREAD_CPUTIME_ID: valid when threads share a
 * core) of the work a step does, measured on this machine for one model
 * and optimizer; medians of repetitions. */
typedef struct dpt_calibration {
    char model[128]; /* dpt_model_describe of the model calibrated */
    char opt[16];    /* the optimizer whose update was timed */
    char isa[16];    /* the kernels in use */
    char cpu[128];   /* this machine's CPU */
    int npoints;     /* gradient points, rows ascending */
    double rows[DPT_CAL_POINTS];
    double grad_ns[DPT_CAL_POINTS]; /* one dpt_model_grad_to call of rows[i] rows */
    double add_ns;                  /* per float of dst += src (the reduce), n_params long */
    double update_ns;               /* per parameter of the optimizer's update, one gradient */
    double copy_ns;                 /* per byte of a row copy into a thread's buffer */
    double shuffle_ns;              /* per row of the epoch's Fisher-Yates shuffle */
    double barrier_ns;              /* one team barrier of barrier_threads threads (wall) */
    int barrier_threads;
    double cross_gbs; /* one thread reading what another just wrote (0: not measured) */
    double read_gbs1; /* DRAM read bandwidth, one thread (dpt_limits) */
    double read_gbs;  /* the same with threads_all threads */
    int threads_all;
    int cores; /* this machine's physical cores */
    /* CPU seconds per wall second a busy thread got, alone and while all
     * cores were busy (1 on an idle machine, less when other work
     * competes): "this" machine's core_speed and allcore_speed; 0: not
     * measured */
    double cpu_share1, cpu_share;
    /* A thread's gradient speed (CPU time) while all cores compute one, over
     * alone, at grad_allcore_rows rows per call: shared caches, memory and
     * the all-core clock (<= 1; 0: not measured) */
    double grad_allcore;
    double grad_allcore_rows;
    /* The handoff latency (dpt_machine): a read of lines another core has
     * just written, over the same read of the thread's own lines, fitted
     * at 1 line, 64 lines and 4096 lines (0: not measured) */
    double handoff_ns, handoff_line_ns, handoff_lines;
    /* 1: the gradients were timed on rows streamed through the data set, as
     * the engine reads them in place; 0: on the same rows again and again,
     * hot in cache, as after the engine's gather of reshuffled rows */
    int streamed;
    /* The layer split (dpt_split): a thread's share, ith 0 of split_k[i],
     * of units of split_rows[j] rows each side by side (one group, as a
     * domain computes them; its barriers left out), per unit. nsplit_k 0:
     * not measured (a model without layer products, or an older file). */
    int nsplit_k, nsplit_rows;
    double split_k[DPT_CAL_SPLIT_K], split_rows[DPT_CAL_SPLIT_ROWS];
    double split_ns[DPT_CAL_SPLIT_K][DPT_CAL_SPLIT_ROWS];
} dpt_calibration;

/* dpt_calibrate flags */
#define DPT_CAL_QUICK   1 /* fewer points (powers of two) and repetitions */
#define DPT_CAL_NO_DRAM 2 /* skip the DRAM bandwidths (only "this" machine uses them) */
#define DPT_CAL_STREAM  4 /* gradient calls walk through all n rows (streamed), not the first */

/* Calibrate for model m and optimizer o: gradients of 1 to max_rows rows
 * (1, 2, 3, 4, 6, 8, 12, 16, ... x1.5 and x4/3 in turn, then max_rows) on
 * rows of X:(n, inputs) stride ld with labels y (as the model needs them):
 * with DPT_CAL_STREAM each call takes the rows after the last call's,
 * wrapping at n, as the engine's steps walk through a data set they read in
 * place; else every call the first rows. reps repetitions of each (0: 5,
 * quick 3); the gather's row copy draws its rows from all n. Takes seconds;
 * not from a parallel region. 0, DPT_EINVAL, DPT_ENOMEM. */
DPT_API int dpt_calibrate(const dpt_model *m, const dpt_optim_spec *o, const float *X, size_t ld,
                          const float *y, size_t n, size_t max_rows, int reps, int flags,
                          dpt_calibration *out);

/* The calibrated CPU seconds of one gradient call of rows rows:
 * interpolated linearly between the measured points, proportional to rows
 * beyond the last. 0 rows cost nothing. */
DPT_API double dpt_calibration_grad(const dpt_calibration *c, double rows);
/* Seconds of one thread's share of one unit of `rows` rows under the layer
 * split with k threads a domain (interpolated in log2 k and in rows; past
 * the largest k, that share times largest k / k); without split points,
 * dpt_calibration_grad(c, rows) / k. */
DPT_API double dpt_calibration_split(const dpt_calibration *c, int k, double rows);

/* JSON ("schema": "dpt-calibration/1"), written atomically. */
DPT_API int dpt_calibration_write(const dpt_calibration *c, const char *path);
/* Read it back: DPT_EIO, or DPT_EFORMAT naming the file and the problem. */
DPT_API int dpt_calibration_read(dpt_calibration *c, const char *path);

/* This machine as a target, from its calibration: the measured barrier,
 * cross-thread and DRAM bandwidths, core_speed and allcore_speed the CPU
 * shares its threads got (this machine as loaded when calibrated). */
DPT_API void dpt_machine_from_calibration(const dpt_calibration *c, dpt_machine *m);

/* ---- prediction ---- */

/* One configuration's predicted epoch. Phase seconds are per epoch and
 * include that phase's barriers. */
typedef struct dpt_predict_row {
    int threads;
    char pin[32];
    double epoch_s, step_s;
    double speedup;    /* over 1 thread at the same pin (epoch time ratio) */
    double efficiency; /* speedup / threads */
    double phase_s[DPT_CPH_COUNT];
    double barrier_s; /* the barriers' part of the phases */
    /* what bounds each phase: "cpu", "bytes" (the slowest thread's
     * transfers), "link", "dram", "barriers" or "" (an empty phase) */
    char bound[DPT_CPH_COUNT][12];
    int limiting;           /* the phase with the most time (dpt_cost_phase) */
    double rows_per_thread; /* the busiest thread's rows per step, mean over steps */
    int idle_threads;       /* threads that compute no row in some step */
    long steps;             /* steps per epoch */
    dpt_split split;        /* how a domain's threads share a step there (auto resolved) */
} dpt_predict_row;

typedef struct dpt_predict_result {
    dpt_predict_row *rows; /* one per pin x thread count, pins outer */
    int n;
    /* per pin (npins of them): the thread count with the least epoch time
     * (ties go to fewer threads), and the phase that grows most from there to
     * the next larger count (-1 when the best is the largest count) */
    int npins;
    int best_threads[8];
    int stop_phase[8];
    char verdict[8][256]; /* that in words */
} dpt_predict_result;

/* Predict epochs of training m with o over n rows: for every pin policy
 * (pins[i], as dpt_pin_parse reads it) and every thread count, plan on
 * target, cost with dpt_engine_cost (opts as the run's engine options:
 * reduction, leaves, batching, balance; threads, pin and topo are set
 * here) and turn the counts into time with the machine model and the
 * calibration (docs/scaling.md). 1 thread is costed as the speedup's base
 * whether asked or not. 0 or a DPT_E* status; free with
 * dpt_predict_result_free. */
DPT_API int dpt_predict(const dpt_topo *target, const dpt_machine *mach, const dpt_calibration *cal,
                        const dpt_model *m, const dpt_optim_spec *o, size_t n,
                        const dpt_engine_opts *opts, const int *threads, int nthreads,
                        const char (*pins)[32], int npins, dpt_predict_result *out);
DPT_API void dpt_predict_result_free(dpt_predict_result *r);

/* The time model on counts already in hand (P entries, for plan on
 * target; target NULL: a machine of P cores): fills row's times, bounds and limiting phase;
 * threads, pin, speedup, efficiency and the row figures are left to the caller. For tests and for
 * callers with counts of their own. */
DPT_API void dpt_predict_counts(const dpt_machine *mach, const dpt_calibration *cal,
                                const dpt_topo *target, const dpt_model *m, const dpt_optim_spec *o,
                                size_t n, const dpt_engine_opts *opts, const dpt_place *plan, int P,
                                const dpt_thread_counts *counts, dpt_predict_row *row);

/* The table: threads, pin, seconds per epoch and step, speedup,
 * efficiency, rows per thread, the phases, the limit; then the verdicts. */
DPT_API void dpt_predict_print(const dpt_predict_result *r, FILE *f);

/* {"schema": "dpt-predict/1", ...} as docs/scaling.md describes, written
 * atomically ("-": stdout). */
DPT_API int dpt_predict_write_json(const dpt_predict_result *r, const char *workload,
                                   const char *model, const char *target, const dpt_machine *mach,
                                   const dpt_calibration *cal, const char *path);

/* ---- telling the user ---- */

/* Rows of the kernels' GEMM tile (MR): 6 for AVX2, 12 for AVX-512, 1 for
 * the scalar kernels; isa NULL: the kernels in use. */
DPT_API int dpt_predict_row_tile(const char *isa);

/* Lines (at most cap, each under 256 bytes) warning that a configuration
 * leaves threads idle or nearly so: rows per thread per step below the
 * GEMM's row tile, deterministic mode with fewer leaves than threads,
 * adaptive balancing whose cuts (DPT_BALANCE_ROUND rows) leave threads
 * without rows, more threads than rows in a batch. n rows of training
 * data, opts->threads 0 meaning this machine's cores. Returns the number
 * of lines. */
DPT_API int dpt_predict_warnings(const dpt_model *m, const dpt_optim_spec *o, size_t n,
                                 const dpt_engine_opts *opts, char (*out)[256], int cap);

#ifdef __cplusplus
}
#endif
#endif
