/* Flags of a training job, and the canonical workloads (dpt/run.h) as
 * presets of them: anything a workload does can also be spelled out by
 * hand, and flags given after it override it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/job.h"
#include "cli/mpi_cli.h"
#include "dpt/engine.h"
#include "dpt/mpi.h"
#include "dpt/error.h"
#include "dpt/run.h"

const char *cli_workload_names(void)
{
    static char buf[256];
    if (!buf[0])
        for (int i = 0; i < dpt_workload_count(); i++) {
            if (i) strcat(buf, ", ");
            strcat(buf, dpt_workload_at(i)->name);
        }
    return buf;
}

void cli_job_init(cli_job *j)
{
    memset(j, 0, sizeof *j);
    cli_train_defaults(&j->to);
    cli_data_opts_init(&j->data);
}

int cli_job_flag(const char *cmd, cli_job *j, int opt, const char *arg)
{
    if (opt == CLI_OPT_WORKLOAD) return 1; /* applied by cli_job_preset */
    int r = cli_train_flag(cmd, &j->to, opt, arg);
    if (r) return r;
    if (opt == 1115) j->data.seed = j->to.seed; /* --seed also seeds the --val split */
    return cli_data_flag(cmd, &j->data, opt, arg);
}

/* The workload's settings, as if its flags had been given. */
static void apply_preset(cli_job *j, const dpt_workload *w)
{
    cli_train_opts *t = &j->to;
    cli_data_opts *d = &j->data;
    t->model = w->model;
    t->model_set = 1;
    t->hidden_set = t->loss_set = w->model.kind == DPT_MODEL_MLP;
    t->opt.kind = w->opt.kind;
    t->opt.lr = w->opt.lr;
    t->opt.momentum = w->opt.momentum;
    t->opt.batch = w->opt.batch;
    t->batch_set = w->opt.kind != DPT_OPT_GD;
    t->momentum_set = dpt_optim_has_velocity(&w->opt);
    t->init = w->init;
    t->epochs = w->epochs;
    t->seed = d->seed = w->seed;
    t->shuffle = w->shuffle;
    d->synth = w->synth;
    d->data = w->train_path;
    d->labels = w->train_label;
    d->test = w->test_path;
    d->test_labels = w->test_label;
    d->standardize = w->standardize;
}

int cli_job_preset(const char *cmd, cli_job *j, int argc, char **argv)
{
    const char *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (!strcmp(argv[i], "--workload") && i + 1 < argc) name = argv[i + 1];
        if (!strncmp(argv[i], "--workload=", 11)) name = argv[i] + 11;
    }
    if (!name) return 0;
    if (!(j->workload = dpt_workload_find(name)))
        return cli_usage_error(cmd, "--workload: '%s' is not one of: %s", name,
                               cli_workload_names());
    apply_preset(j, j->workload);
    return 0;
}

/* The rows of an n-row training set this rank trains on. */
static int rank_rows(void *ud, size_t n, dpt_row_range **out, size_t *nout)
{
    const cli_job *j = ud;
    return dpt_engine_rank_rows(n, &j->to.opt, j->to.shuffle != 0, cli_mpi_rank(), cli_mpi_size(),
                                out, nout);
}

int cli_job_load(const char *cmd, cli_job *j, int threads)
{
    const int per_rank = j->per_rank && cli_mpi_size() > 1;
    if (per_rank && !j->data.standardize && !(j->data.val > 0)) {
        j->data.rows_wanted = rank_rows;
        j->data.rows_ud = j;
    }
    int rc = cli_data_load(cmd, &j->data, threads, &j->train, &j->test, &j->val, &j->st);
    int classes = j->data.classes;
    if (!rc)
        rc = cli_data_check_labels(cmd, &j->data, (dpt_label_kind)cli_train_label_kind(&j->to),
                                   &j->train, &j->test, &j->val, &classes);
    if (per_rank) {
        /* a rank that failed to load must not leave the others waiting */
        if ((rc = cli_mpi_agree(rc))) return rc;
        /* each rank saw the labels of its own rows: the largest class id
         * of any rank sizes the model on all */
        double k = classes;
        if (dpt_mpi_max_double(&k)) return cli_fail(cmd, "%s", dpt_last_error());
        classes = (int)k;
    }
    if (rc) return rc;
    return cli_train_finish(cmd, &j->to, j->train.d, classes, &j->model);
}

int cli_job_spec(const char *cmd, const cli_job *j, int threads, dpt_run_spec *s)
{
    dpt_run_spec_defaults(s);
    if (cli_engine_opts(cmd, &j->to, threads, &s->engine)) return DPT_EXIT_USAGE;
    s->engine.comm = cli_mpi_comm();
    s->engine.init = j->to.init;
    s->train = &j->train;
    s->test = j->test.n ? &j->test : j->val.n ? &j->val : NULL;
    s->model = j->model.spec;
    s->opt = j->to.opt;
    s->epochs = j->to.epochs;
    return 0;
}

void cli_job_free(cli_job *j)
{
    dpt_dataset_free(&j->train);
    dpt_dataset_free(&j->test);
    dpt_dataset_free(&j->val);
    dpt_standardizer_free(&j->st);
}
