/* dpt bench --predict and --calibrate-out (bench_predict.c), and the
 * model's word for train, bench and tune: warnings about configurations
 * that leave threads idle, and tune's pruning of hopeless candidates. */
#ifndef DPT_CLI_PREDICT_H
#define DPT_CLI_PREDICT_H

#include "cli/job.h"
#include "dpt/tune.h"

/* 1 when argv asks bench to predict or calibrate rather than measure. */
int cli_bench_wants_predict(int argc, char **argv);
/* dpt bench --predict / --calibrate-out: the exit status. */
int cli_bench_predict(int argc, char **argv);

/* "dpt CMD: warning: ..." lines (dpt_predict_warnings) for a run of the
 * job's model and data with engine options eo at `threads` threads. */
void cli_predict_warn(const char *cmd, const cli_job *job, const dpt_optim_spec *o,
                      const dpt_engine_opts *eo, int threads);

/* dpt tune: predict every candidate on this machine (a quick calibration)
 * and drop those predicted slower than CLI_TUNE_HOPELESS times the best
 * predicted (CLI_TUNE_HOPELESS), saying which; *n is updated. 0, or the exit status after
 * printing. */
#define CLI_TUNE_HOPELESS 1.5
int cli_tune_prune(const char *cmd, const cli_job *job, dpt_tune_candidate *cands, int *n,
                   int quiet);

#endif
