/* The experiment layer: one training run as a library call (initial
 * parameters, warm-up and reset, epochs, evaluation, phase totals, the
 * divergence policy), the canonical workloads, and the experiments built on
 * runs: the bench sweep and the tuning race. Everything `dpt train`, `dpt
 * bench` and `dpt tune` do is here; the tool only turns flags into a spec
 * and prints what comes back. */
#ifndef DPT_RUN_H
#define DPT_RUN_H

#include "dpt/export.h"

#include <stddef.h>
#include <stdint.h>

#include "dpt/data.h"
#include "dpt/cost.h"
#include "dpt/engine.h"
#include "dpt/io.h"
#include "dpt/model.h"
#include "dpt/optim.h"
#include "dpt/report.h"
#include "dpt/tune.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the canonical workloads ----
 * Each is data (generated, or files) plus model, optimizer and seed; the
 * same as a `dpt train` command line, which `dpt train --workload NAME`
 * applies before the other flags. */
typedef struct dpt_workload {
    const char *name;
    const char *description;
    const char *synth;       /* synthetic data spec ("KIND:k=v,..."), or NULL */
    const char *train_path;  /* else data files: training set */
    const char *train_label; /* its IDX labels, or NULL */
    const char *test_path;   /* held-out set, or NULL */
    const char *test_label;  /* its IDX labels, or NULL */
    int standardize;         /* z-score with the training set's statistics */
    dpt_model_spec model;    /* inputs and classes 0: from the data */
    dpt_optim_spec opt;      /* opt.epochs 0: the workload's epochs */
    dpt_init init;
    uint64_t seed; /* initial parameters and shuffling */
    int shuffle;   /* 1: reshuffle every epoch */
    int epochs;
    double ref_loss;      /* reference final training loss (float32), or NAN */
    double ref_accuracy;  /* reference accuracy, or NAN */
    int accuracy_is_test; /* ref_accuracy is on the test set */
} dpt_workload;

/* The registry: dpt_workload_count() entries, in a fixed order. */
DPT_API int dpt_workload_count(void);
DPT_API const dpt_workload *dpt_workload_at(int i);
/* By name; NULL (message set, listing the names) when there is none. */
DPT_API const dpt_workload *dpt_workload_find(const char *name);

/* Generate or read the workload's data: the training set, the test set
 * (zeroed when it has none; test may be NULL then), standardized as the
 * workload says (st, may be NULL, gets the statistics). nthreads as for
 * the loaders. 0 or a DPT_E* status; nothing is left allocated on error. */
DPT_API int dpt_workload_load(const dpt_workload *w, int nthreads, dpt_dataset *train,
                              dpt_dataset *test, dpt_standardizer *st);

/* ---- one run ---- */

/* One epoch as the run reports it: the engine's statistics and, when the
 * spec asks for them, metrics of the model at the end of the epoch on the
 * training and held-out sets (not timed). */
typedef struct dpt_run_epoch {
    const dpt_epoch_stats *stats;
    int evaluated;     /* 1: train (and test, when there is one) are set; 0: all NaN */
    dpt_metrics train; /* on the whole training set */
    dpt_metrics test;  /* on spec.test, when given */
} dpt_run_epoch;

/* Called after every timed epoch; a nonzero return stops the run. */
typedef int (*dpt_run_epoch_cb)(const dpt_run_epoch *ep, void *ud);

typedef struct dpt_run_spec {
    const dpt_dataset *train; /* must outlive the run */
    const dpt_dataset *test;  /* evaluated with the training set, or NULL */
    /* inputs 0: train->d; classes 0 where the loss needs classes:
     * train->classes */
    dpt_model_spec model;
    /* the schedule's horizon opt.epochs 0: `epochs` below */
    dpt_optim_spec opt;
    dpt_engine_opts engine;   /* seed and init give the initial parameters */
    int epochs;               /* timed epochs */
    int warmup;               /* untimed epochs first, then back to the initial parameters */
    const float *init_params; /* n_params floats to start from, or NULL: engine.seed/init */
    /* N > 0: metrics (dpt_run_epoch) after every epoch whose number is a
     * multiple of N and after the last; the others are handed over with
     * evaluated 0. 0: metrics at the end only (evaluate). Negative:
     * dpt_run_create fails with DPT_EINVAL. */
    int eval_epochs;
    int evaluate; /* 1: final metrics (dpt_run_result train/test); 0: none */
    dpt_run_epoch_cb on_epoch;
    void *ud;
    dpt_progress_cb progress; /* live progress within epochs, or NULL */
    void *progress_ud;
    double progress_interval; /* seconds */
    /* Continue a run (dpt/checkpoint.h): init_params are the saved
     * parameters and this the engine's state; resume->epochs of `epochs`
     * are done, the others are trained. NULL: a run from the start. */
    const dpt_engine_state *resume;
    /* Nonzero (a signal handler's flag): stop, see dpt_engine_set_interrupt.
     * NULL: none. */
    const volatile sig_atomic_t *interrupt;
    /* Time to accuracy: stop after the first epoch whose model reaches
     * every target given (0: none): a loss at most target_loss, an
     * accuracy at least target_accuracy, measured on spec.test when there
     * is one, else on the whole training set, on the epochs eval_epochs
     * evaluates (not timed); eval_epochs 0 with a target: every epoch. */
    double target_loss;
    double target_accuracy;
} dpt_run_spec;

/* Defaults: no data, a linear model, dpt_optim_defaults, the engine's
 * defaults, 10 epochs, no warm-up, final metrics on. */
DPT_API void dpt_run_spec_defaults(dpt_run_spec *s);

typedef struct dpt_run_result {
    int epochs;                /* timed epochs completed */
    long steps;                /* steps per epoch */
    double seconds;            /* time of the timed epochs (training only) */
    dpt_phase_times phases;    /* per epoch: the epochs' thread means, averaged */
    double imbalance;          /* the largest epoch's (max / mean compute) */
    double comm_bytes;         /* sent to other ranks per epoch */
    size_t rows_min, rows_max; /* rows per thread in the last epoch */
    dpt_metrics train, test;   /* final metrics (spec.evaluate), else loss NAN */
    /* The divergence policy: training stops at the first non-finite or
     * exploding loss (dpt_engine_train), the parameters are the last
     * finite model, the call returns DPT_EDIVERGED and diverged is 1. */
    int diverged;
    int stopped;     /* 1: the epoch callback asked to stop */
    int interrupted; /* 1: spec.interrupt stopped it (DPT_EINTERRUPTED); the model is that
                        of the last completed epoch */
    /* With spec.target_loss or target_accuracy: 1 when reached, at the end
     * of epoch target_epoch (counted from the run's start, as
     * dpt_epoch_stats.epoch), after target_seconds of timed training (the
     * timed epochs of this call up to it); 0, -1 and NAN when not. */
    int target_reached;
    int target_epoch;
    double target_seconds;
    dpt_step_summary moves; /* what a step of the timed epochs moved (dpt/cost.h) */
    dpt_split split;        /* how a domain's threads shared a step (auto resolved) */
} dpt_run_result;

typedef struct dpt_run dpt_run;

/* Check the spec against the data (labels, features), build the model and
 * the engine, and set the initial parameters (from init_params, or the seed;
 * under MPI every rank then takes rank 0's). 0 or a DPT_E* status. */
DPT_API int dpt_run_create(dpt_run **r, const dpt_run_spec *s);
DPT_API void dpt_run_destroy(dpt_run *r);

/* Warm-up and reset, then the timed epochs with their callbacks, then the
 * final metrics. Returns 0, DPT_EDIVERGED (see dpt_run_result.diverged;
 * out is filled up to the last good epoch), DPT_EINTERRUPTED
 * (dpt_run_result.interrupted) or another status. Each call starts from
 * the initial parameters (and spec.resume) again. */
DPT_API int dpt_run_train(dpt_run *r, dpt_run_result *out);

/* create + train + destroy; *params (when not NULL) gets a malloc'd copy of
 * the final parameters (the last finite model after a divergence). */
DPT_API int dpt_run_once(const dpt_run_spec *s, dpt_run_result *out, float **params);

DPT_API dpt_engine *dpt_run_engine(dpt_run *r);
DPT_API const dpt_model *dpt_run_model(const dpt_run *r);

/* The work one epoch does, to turn times into rates: samples, bytes of
 * training data read (linear models, which stream X once per epoch; 0
 * otherwise) and floating-point operations. */
typedef struct dpt_run_work {
    double samples, bytes, flops;
} dpt_run_work;
DPT_API void dpt_run_work_of(const dpt_model *m, const dpt_dataset *train, dpt_run_work *w);

/* ---- the bench sweep ---- */

#define DPT_SWEEP_MAX 64 /* most values of each swept setting */

typedef struct dpt_sweep_spec {
    const char *workload;  /* the name the report's rows carry */
    char workload_buf[64]; /* storage a caller may point workload at */
    int threads[DPT_SWEEP_MAX], nthreads;
    char pins[8][32]; /* pin policies ("compact", "list:0-3", ...) */
    int npins;
    /* rank counts under MPI (the first n ranks of the job's comm, which is
     * spec.engine.comm); nranks 0: all of them */
    int ranks[DPT_SWEEP_MAX], nranks;
    int reps;               /* timed repetitions of every configuration */
    int warmup;             /* untimed epochs before each configuration's first repetition */
    int limits;             /* 1: measure read bandwidth and FMA peak at each thread count */
    int accuracy_from_test; /* final_accuracy on spec.test (else on the training set) */
    /* between runs: (done, total); for a live display */
    void (*progress)(const char *what, int done, int total, void *ud);
    /* a configuration's engine warning, once (e.g. oversubscribed) */
    void (*warning)(const char *text, void *ud);
    void *progress_ud; /* for both */
    /* Lockstep (`dpt bench --lockstep`, for `dpt compare --run`): another
     * process decides when each timed run starts. NULL: off. Called before
     * each timed run, round r of configuration k (the order of the
     * report's rows); returns 0 to run it, 1 to end the sweep there (at
     * k = 0 and r >= 1 only: the rounds done are the samples, reps is only
     * their cap), or a DPT_E* status to fail. The final loss is then round
     * 0's (every round starts from the same parameters). */
    int (*before_run)(int round, int config, void *ud);
    /* after each timed run: its seconds per epoch and whether its
     * telemetry says disturbed (dpt/telemetry.h) */
    void (*after_run)(int round, int config, double secs, int disturbed, void *ud);
    void *run_ud; /* for both */
} dpt_sweep_spec;

/* How many configurations (rows) a sweep runs: rank counts x thread
 * counts x pinnings, each once per round. */
DPT_API int dpt_sweep_configs(const dpt_sweep_spec *sw);

/* Run every configuration (ranks x threads x pins) reps times, the
 * configurations interleaved within each repetition so that drift spreads
 * evenly, each repetition from the same initial parameters after the
 * warm-up, and fill rep: the machine context, the limits, one row per
 * configuration with its samples (seconds per epoch), the phase medians,
 * the imbalance, the final loss and accuracy of the last repetition and
 * the derived rates. Under MPI it is a collective: every rank calls it; a
 * run of n ranks trains on the first n while the others wait asleep, the
 * times are rank 0's, and every rank returns the same status. rep is
 * initialised here. 0 or a DPT_E* status (rep then freed). */
DPT_API int dpt_bench_sweep(const dpt_run_spec *base, const dpt_sweep_spec *sw,
                            dpt_bench_report *rep);

/* The context of this machine and build for a report: CPU, topology,
 * kernels, compiler and flags, version, OpenMP runtime, governor, load. */
DPT_API void dpt_bench_context_fill(dpt_bench_context *c);

/* The engine settings of a spec, as a report's context.engine records them. */
DPT_API void dpt_run_engine_context(const dpt_run_spec *s, char *buf, size_t cap);

/* ---- the tuning race over runs ---- */

#define DPT_TUNE_NOT_REACHED 1e6 /* seconds: a time-to-target race's "never" */

/* Race the candidates (threads, pin, batch, balancing) with runs of base,
 * each candidate's first run after base's warm-up epochs. Without a target
 * in base a run's time is its seconds per epoch; with target_loss or
 * target_accuracy, its seconds until the target is reached (run to
 * base.epochs at most; not reached: DPT_TUNE_NOT_REACHED + its seconds). Failures of a
 * run stop the race with its status. See dpt_tune_run. */
DPT_API int dpt_tune_spec(const dpt_run_spec *base, const dpt_tune_candidate *cands, int n,
                          const dpt_tune_options *opt, dpt_tune_result *out);

#ifdef __cplusplus
}
#endif
#endif
