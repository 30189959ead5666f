/* A training job as the commands see it: data flags, model/optimizer/engine
 * flags, and the canonical workloads (dpt/run.h) as presets of both.
 * train, bench and tune parse the same flags through here. */
#ifndef DPT_CLI_JOB_H
#define DPT_CLI_JOB_H

#include "cli/data_opts.h"
#include "cli/train_opts.h"
#include "dpt/io.h"
#include "dpt/model.h"
#include "dpt/run.h"

typedef struct cli_job {
    cli_train_opts to;
    cli_data_opts data;
    const dpt_workload *workload; /* NULL: flags only */
    /* Set by a command that trains at the job's own rank count: under
     * mpirun each rank then loads only its rows, where the data and the
     * flags allow (see cli_job_load). */
    int per_rank;
    /* filled by cli_job_load */
    dpt_dataset train, test, val;
    dpt_standardizer st;
    dpt_model model;
} cli_job;

#define CLI_OPT_WORKLOAD 1200
#define CLI_JOB_OPTIONS                                                                            \
    CLI_TRAIN_OPTIONS, CLI_DATA_OPTIONS,                                                           \
    {                                                                                              \
        "workload", required_argument, 0, CLI_OPT_WORKLOAD                                         \
    }

void cli_job_init(cli_job *j);
/* Apply --workload NAME found anywhere in argv first, so that the other
 * flags override the preset. 0 or the exit status after printing. */
int cli_job_preset(const char *cmd, cli_job *j, int argc, char **argv);
/* 1 consumed, 0 not a job flag, -1 bad value (printed). */
int cli_job_flag(const char *cmd, cli_job *j, int opt, const char *arg);
/* Load/generate the data, check labels against the model, build the model.
 * With per_rank under mpirun (several ranks), a fixed row order (full batch
 * or --shuffle none) and nothing that needs every row (--standardize,
 * --val), each rank reads only the rows it trains on (--synth, .dptb); the
 * ranks then agree on the outcome and on the number of classes, so every
 * rank must call this. 0 or the exit status after printing. */
int cli_job_load(const char *cmd, cli_job *j, int threads);
/* The run the job's flags describe, after cli_job_load: its data (the test
 * set, else the validation set, as spec.test), model, optimizer and engine
 * options, on the job's MPI ranks. Free s->engine.pin with
 * dpt_pin_spec_free. 0 or the exit status after printing. */
int cli_job_spec(const char *cmd, const cli_job *j, int threads, dpt_run_spec *s);
void cli_job_free(cli_job *j);
/* What the job's flags changed of its workload's own settings (data, model,
 * optimizer, epochs, seed, shuffling, initialization), the settings its
 * reference loss and accuracy hold for: "epochs 2 (workload 20), lr 0.1
 * (workload 0.5)" into buf (cut to len), and how many; 0 without a
 * workload or without a change. */
int cli_job_changes(const cli_job *j, char *buf, size_t len);
/* Comma-separated workload names, for messages. */
const char *cli_workload_names(void);

#endif
