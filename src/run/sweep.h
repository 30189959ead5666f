/* The bench sweep's pieces that tests reach directly: one configuration's
 * row of a report from its repetitions. */
#ifndef DPT_RUN_SWEEP_H
#define DPT_RUN_SWEEP_H

#include "dpt/run.h"
#include "dpt/telemetry.h"

/* One timed repetition of a configuration. */
typedef struct dpt_sweep_sample {
    double secs; /* per epoch */
    double imbalance, loss, accuracy;
    dpt_phase_times phases;  /* per epoch */
    dpt_step_summary moves;  /* what a step moved (the same every repetition) */
    dpt_telemetry telemetry; /* interference while it ran */
    dpt_split split;         /* the split the engine used */
} dpt_sweep_sample;

/* Append the row of reps repetitions to rep: the seconds as its samples,
 * the median of each phase and of the imbalance over all of them, the
 * last evaluated repetition's loss and accuracy, and the work per epoch. 0 or
 * DPT_ENOMEM. */
int dpt_sweep_add_row(dpt_bench_report *rep, const char *workload, int ranks, int threads,
                      const char *pin, long batch, const dpt_run_work *work,
                      const dpt_sweep_sample *sm, int reps);

#endif
