/* The canonical workloads: the data, model, optimizer and seed of each, as
 * the reference losses were measured (docs/workloads.md), and their loading.
 * `dpt train --workload NAME` applies the same values as flags would. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dpt/error.h"
#include "dpt/run.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/"

#define MLP(h1, h2, n_h, loss_)                                                                    \
    {                                                                                              \
        .kind = DPT_MODEL_MLP, .n_hidden = n_h, .hidden = {h1, h2}, .act = DPT_ACTIVATION_RELU,    \
        .loss = loss_, .bias = 1                                                                   \
    }

static const dpt_workload workloads[] = {
    {.name = "linreg",
     .description = "linear regression, full-batch GD (memory-bound)",
     .synth = "linreg:n=1000000,d=64,seed=1,noise=0.01",
     .model = {.kind = DPT_MODEL_LINEAR, .loss = DPT_LOSS_MSE, .bias = 0},
     .opt = {.kind = DPT_OPT_GD, .lr = 0.05, .momentum = 0.9},
     .init = DPT_INIT_ZERO,
     .seed = 1,
     .shuffle = 1,
     .epochs = 20,
     .ref_loss = 0.946503,
     .ref_accuracy = NAN},
    {.name = "logreg",
     .description = "logistic regression, SGD with momentum",
     .synth = "logreg:n=1000000,d=64,seed=2,noise=0.5",
     .model = {.kind = DPT_MODEL_LOGISTIC, .loss = DPT_LOSS_BCE, .bias = 0},
     .opt = {.kind = DPT_OPT_MOMENTUM, .lr = 0.5, .momentum = 0.9, .batch = 1024},
     .init = DPT_INIT_ZERO,
     .seed = 1,
     .shuffle = 0,
     .epochs = 3,
     .ref_loss = 0.0482072,
     .ref_accuracy = 0.97893},
    {.name = "mlp-seed",
     .description = "10-20-1 ReLU MLP, full-batch GD",
     .synth = "teacher-mlp:n=1000000,d=10,hidden=20,seed=3,noise=0.01",
     .model = MLP(20, 0, 1, DPT_LOSS_MSE),
     .opt = {.kind = DPT_OPT_GD, .lr = 0.01, .momentum = 0.9},
     .init = DPT_INIT_UNIFORM,
     .seed = 3,
     .shuffle = 1,
     .epochs = 20,
     .ref_loss = 0.289081,
     .ref_accuracy = NAN},
    {.name = "mlp-seed-sgd",
     .description = "10-20-1 ReLU MLP, SGD with momentum",
     .synth = "teacher-mlp:n=1000000,d=10,hidden=20,seed=3,noise=0.01",
     .model = MLP(20, 0, 1, DPT_LOSS_MSE),
     .opt = {.kind = DPT_OPT_MOMENTUM, .lr = 0.01, .momentum = 0.9, .batch = 256},
     .init = DPT_INIT_UNIFORM,
     .seed = 3,
     .shuffle = 0,
     .epochs = 2,
     .ref_loss = 0.0010806,
     .ref_accuracy = NAN},
    {.name = "mlp-wide",
     .description = "256-512-512-10 ReLU MLP, softmax CE (compute-bound)",
     .synth = "teacher-mlp:n=100000,d=256,hidden=512/512,classes=10,seed=4",
     .model = MLP(512, 512, 2, DPT_LOSS_CE),
     .opt = {.kind = DPT_OPT_MOMENTUM, .lr = 0.05, .momentum = 0.9, .batch = 512},
     .init = DPT_INIT_UNIFORM,
     .seed = 4,
     .shuffle = 0,
     .epochs = 1,
     .ref_loss = 0.92205,
     .ref_accuracy = 0.6548},
    {.name = "fmnist-mlp",
     .description = "784-256-128-10 MLP on Fashion-MNIST",
     .train_path = FMNIST "train-images-idx3-ubyte.gz",
     .train_label = FMNIST "train-labels-idx1-ubyte.gz",
     .test_path = FMNIST "t10k-images-idx3-ubyte.gz",
     .test_label = FMNIST "t10k-labels-idx1-ubyte.gz",
     .standardize = 1,
     .model = MLP(256, 128, 2, DPT_LOSS_CE),
     .opt = {.kind = DPT_OPT_MOMENTUM, .lr = 0.01, .momentum = 0.9, .batch = 128},
     .init = DPT_INIT_UNIFORM,
     .seed = 1,
     .shuffle = 1,
     .epochs = 15,
     .ref_loss = NAN,
     .ref_accuracy = 0.88,
     .accuracy_is_test = 1},
};

int dpt_workload_count(void)
{
    return (int)(sizeof workloads / sizeof workloads[0]);
}

const dpt_workload *dpt_workload_at(int i)
{
    return i >= 0 && i < dpt_workload_count() ? &workloads[i] : NULL;
}

const dpt_workload *dpt_workload_find(const char *name)
{
    char names[256] = "";
    for (int i = 0; i < dpt_workload_count(); i++) {
        if (!strcmp(name, workloads[i].name)) return &workloads[i];
        size_t len = strlen(names);
        snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "", workloads[i].name);
    }
    dpt_set_error(DPT_EINVAL, "no workload '%s' (allowed: %s)", name, names);
    return NULL;
}

static int load_file(const char *path, const char *labels, int nthreads, dpt_dataset *ds)
{
    dpt_load_opts lo;
    dpt_load_opts_defaults(&lo);
    lo.labels_path = labels;
    lo.nthreads = nthreads;
    return dpt_load(path, &lo, ds);
}

int dpt_workload_load(const dpt_workload *w, int nthreads, dpt_dataset *train, dpt_dataset *test,
                      dpt_standardizer *st)
{
    dpt_standardizer own = {0};
    dpt_standardizer *s = st ? st : &own;
    memset(train, 0, sizeof *train);
    if (test) memset(test, 0, sizeof *test);
    memset(s, 0, sizeof *s);
    int rc;
    if (w->synth) {
        dpt_synth_spec spec;
        if ((rc = dpt_synth_parse(&spec, w->synth)) ||
            (rc = dpt_synth_generate(&spec, train, nthreads)))
            return rc;
    } else if ((rc = load_file(w->train_path, w->train_label, nthreads, train))) {
        return rc;
    }
    if (test && w->test_path && (rc = load_file(w->test_path, w->test_label, nthreads, test)))
        goto fail;
    if (w->standardize) {
        if ((rc = dpt_standardizer_fit(s, train, nthreads)) ||
            (rc = dpt_standardizer_apply(s, train, nthreads)) ||
            (test && test->n && (rc = dpt_standardizer_apply(s, test, nthreads))))
            goto fail;
    }
    dpt_standardizer_free(&own);
    return 0;
fail:
    dpt_dataset_free(train);
    if (test) dpt_dataset_free(test);
    dpt_standardizer_free(s);
    return rc;
}
