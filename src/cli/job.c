/* Flags of a training job, and the canonical workloads (WORKLOADS.md):
 * each is a preset of ordinary flags, so anything a workload does can also
 * be spelled out by hand, and flags given after it override it. */
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

#define FMNIST "/usr/share/datasets/fashion-mnist/"

const cli_workload cli_workloads[] = {
    {"linreg",
     "--synth linreg:n=1000000,d=64,seed=1,noise=0.01 --model linear --no-bias --init zero "
     "--opt gd --lr 0.05 --epochs 20",
     "linear regression, full-batch GD (memory-bound)", 0.946503, NAN, 0},
    {"logreg",
     "--synth logreg:n=1000000,d=64,seed=2,noise=0.5 --model logistic --no-bias --init zero "
     "--opt momentum --batch 1024 --lr 0.5 --momentum 0.9 --epochs 3 --shuffle none",
     "logistic regression, SGD with momentum", 0.0482072, 0.97893, 0},
    {"mlp-seed",
     "--synth teacher-mlp:n=1000000,d=10,hidden=20,seed=3,noise=0.01 --model mlp --hidden 20 "
     "--loss mse --seed 3 --opt gd --lr 0.01 --epochs 20",
     "10-20-1 ReLU MLP, full-batch GD", 0.289081, NAN, 0},
    {"mlp-seed-sgd",
     "--synth teacher-mlp:n=1000000,d=10,hidden=20,seed=3,noise=0.01 --model mlp --hidden 20 "
     "--loss mse --seed 3 --opt momentum --batch 256 --lr 0.01 --momentum 0.9 --epochs 2 "
     "--shuffle none",
     "10-20-1 ReLU MLP, SGD with momentum", 0.0010806, NAN, 0},
    {"mlp-wide",
     "--synth teacher-mlp:n=100000,d=256,hidden=512/512,classes=10,seed=4 --model mlp "
     "--hidden 512,512 --loss ce --seed 4 --opt momentum --batch 512 --lr 0.05 --momentum 0.9 "
     "--epochs 1 --shuffle none",
     "256-512-512-10 ReLU MLP, softmax CE (compute-bound)", 0.92205, 0.6548, 0},
    {"fmnist-mlp",
     "--data " FMNIST "train-images-idx3-ubyte.gz --labels " FMNIST "train-labels-idx1-ubyte.gz "
     "--test " FMNIST "t10k-images-idx3-ubyte.gz --test-labels " FMNIST "t10k-labels-idx1-ubyte.gz "
     "--standardize --model mlp --hidden 256,128 --loss ce --opt momentum --batch 128 --lr 0.01 "
     "--momentum 0.9 --epochs 15 --shuffle epoch --seed 1",
     "784-256-128-10 MLP on Fashion-MNIST", NAN, 0.88, 1},
};
const int cli_n_workloads = sizeof cli_workloads / sizeof cli_workloads[0];

const char *cli_workload_names(void)
{
    static char buf[256];
    if (!buf[0])
        for (int i = 0; i < cli_n_workloads; i++) {
            if (i) strcat(buf, ", ");
            strcat(buf, cli_workloads[i].name);
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

static int apply_preset(const char *cmd, cli_job *j, const cli_workload *w)
{
    static const struct option opts[] = {CLI_JOB_OPTIONS, {0, 0, 0, 0}};
    char *copy = strdup(w->flags);
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)cmd;
    for (char *save = NULL, *tok = strtok_r(copy, " ", &save); tok && argc < 63;
         tok = strtok_r(NULL, " ", &save))
        argv[argc++] = tok;
    argv[argc] = NULL;
    int c, rc = 0, saved = optind;
    optind = 1;
    while ((c = cli_getopt(cmd, argc, argv, opts)) != -1)
        if (c == '?' || cli_job_flag(cmd, j, c, optarg) != 1) {
            rc = DPT_EXIT_USAGE;
            break;
        }
    optind = saved;
    j->preset_buf = copy; /* the data options point into it */
    return rc;
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
    for (int i = 0; i < cli_n_workloads; i++)
        if (!strcmp(name, cli_workloads[i].name)) {
            j->workload = &cli_workloads[i];
            return apply_preset(cmd, j, j->workload);
        }
    return cli_usage_error(cmd, "--workload: '%s' is not one of: %s", name, cli_workload_names());
}

/* The rows of an n-row training set this rank trains on. */
static int rank_rows(void *ud, size_t n, dpt_row_range **out, size_t *nout)
{
    const cli_job *j = ud;
    return dpt_engine_rank_rows(n, &j->to.opt, j->to.shuffle != 0, j->to.deterministic,
                                cli_mpi_rank(), cli_mpi_size(), out, nout);
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

void cli_job_free(cli_job *j)
{
    dpt_dataset_free(&j->train);
    dpt_dataset_free(&j->test);
    dpt_dataset_free(&j->val);
    dpt_standardizer_free(&j->st);
    free(j->preset_buf);
    j->preset_buf = NULL;
}
