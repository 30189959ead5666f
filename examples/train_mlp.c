/* libdpt from C, through <dpt/dpt.h> alone: train the 10-20-1 ReLU MLP on
 * teacher-mlp synthetic data, save it, load it back and check that the
 * loaded model predicts exactly what the trained one does.
 *
 *   cc train_mlp.c $(pkg-config --cflags --libs dpt) -o train_mlp
 *   ./train_mlp [MODEL_FILE]      (default: train_mlp.model)
 *
 * Prints a few lines and exits 0, or prints what failed and exits 1. */
#include <dpt/dpt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREDICT_ROWS 8

static int failed(const char *what)
{
    fprintf(stderr, "train_mlp: %s: %s\n", what, dpt_last_error());
    return 1;
}

static int print_epoch(const dpt_epoch_stats *st, void *ud)
{
    (void)ud;
    printf("epoch %d: loss %.6f, %.0f samples/s\n", st->epoch, st->loss, st->samples_per_second);
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "train_mlp.model";
    dpt_dataset ds = {0};
    dpt_engine *e = NULL;
    dpt_engine_opts eo;
    float *loaded_w = NULL, *scratch = NULL;
    dpt_standardizer st = {0};
    int rc = 1;

    dpt_synth_spec ss;
    if (dpt_synth_parse(&ss, "teacher-mlp:n=20000,d=10,seed=1")) return failed("synthetic spec");
    if (dpt_synth_generate(&ss, &ds, 2)) return failed("generating the data");

    dpt_model_spec ms = {.kind = DPT_MODEL_MLP,
                         .inputs = ds.d,
                         .n_hidden = 1,
                         .hidden = {20},
                         .act = DPT_ACTIVATION_RELU,
                         .loss = DPT_LOSS_MSE,
                         .bias = 1};
    dpt_model m;
    if (dpt_model_init(&m, &ms)) {
        rc = failed("model");
        goto done;
    }
    char desc[64];
    dpt_model_describe(&m, desc, sizeof desc);
    printf("%s, %zu parameters, %zu rows, kernels %s\n", desc, m.n_params, ds.n, dpt_isa_name());

    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    o.kind = DPT_OPT_MOMENTUM;
    o.lr = 0.01;
    o.batch = 256;
    dpt_engine_opts_defaults(&eo);
    eo.threads = 2;
    eo.pin.policy = DPT_PIN_NONE; /* leave placement to OpenMP */
    if (dpt_engine_create(&e, &m, &o, &ds, &eo)) {
        rc = failed("engine");
        goto done;
    }
    /* the PyTorch-style start, whatever the engine set */
    float *w = dpt_engine_params(e);
    dpt_model_init_params(&m, w, 1, DPT_INIT_UNIFORM);

    dpt_metrics before, after;
    if (dpt_engine_evaluate(e, &ds, &before) || dpt_engine_train(e, 5, print_epoch, NULL) ||
        dpt_engine_evaluate(e, &ds, &after)) {
        rc = failed("training");
        goto done;
    }
    printf("loss %.6f -> %.6f (r2 %.4f)\n", before.loss, after.loss, after.r2);
    if (!(after.loss < 0.5 * before.loss)) {
        fprintf(stderr, "train_mlp: training did not halve the loss\n");
        goto done;
    }

    if (dpt_model_save(path, &m, w, NULL)) {
        rc = failed("saving");
        goto done;
    }
    dpt_model lm;
    if (dpt_model_load(path, &lm, &loaded_w, &st)) {
        rc = failed("loading");
        goto done;
    }
    if (lm.n_params != m.n_params || memcmp(loaded_w, w, m.n_params * sizeof *w)) {
        fprintf(stderr, "train_mlp: %s holds other parameters than were saved\n", path);
        goto done;
    }

    /* NULL kernels: the table in use (dpt_isa_select may change it) */
    size_t sf = dpt_model_scratch_floats(&m);
    if (dpt_model_scratch_floats(&lm) > sf) sf = dpt_model_scratch_floats(&lm);
    scratch = malloc(sf * sizeof *scratch);
    float trained[PREDICT_ROWS], again[PREDICT_ROWS];
    if (!scratch) {
        fprintf(stderr, "train_mlp: out of memory\n");
        goto done;
    }
    dpt_model_predict(&m, NULL, w, ds.X, ds.ld, PREDICT_ROWS, trained, 1, scratch);
    dpt_model_predict(&lm, NULL, loaded_w, ds.X, ds.ld, PREDICT_ROWS, again, 1, scratch);
    for (int i = 0; i < PREDICT_ROWS; i++) {
        printf("row %d: label %9.5f  trained %9.5f  loaded %9.5f\n", i, ds.y[i], trained[i],
               again[i]);
        if (trained[i] != again[i]) {
            fprintf(stderr, "train_mlp: row %d: the loaded model predicts %.9g, not %.9g\n", i,
                    again[i], trained[i]);
            goto done;
        }
    }
    printf("saved to %s; the loaded model predicts the same\n", path);
    rc = 0;
done:
    free(scratch);
    free(loaded_w);
    dpt_standardizer_free(&st);
    dpt_engine_destroy(e);
    dpt_dataset_free(&ds);
    return rc;
}
