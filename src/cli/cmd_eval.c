/* dpt eval and dpt predict: a saved model on new data. The model file's
 * standardization statistics are applied to the data, never refitted. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/data_opts.h"
#include "cli/outpath.h"
#include "core/alloc.h"
#include "dpt/engine.h"
#include "dpt/error.h"
#include "dpt/modelfile.h"
#include "dpt/report.h"
#include "dpt/topo.h"
#include "kernels/kernels.h"

typedef struct loaded {
    dpt_model m;
    float *w;
    dpt_standardizer st;
    dpt_dataset ds;
} loaded;

static void loaded_free(loaded *l)
{
    free(l->w);
    dpt_standardizer_free(&l->st);
    dpt_dataset_free(&l->ds);
}

#define EVAL_HELP                                                                                  \
    "  --model-file MODEL   a model file written by dpt train (required)\n" CLI_DATA_SOURCE_HELP   \
    "  --threads N          threads (default: one per physical core for eval, 1 for\n"             \
    "                       predict)\n"                                                            \
    "The model file's standardization statistics are applied to the data.\n"

static const char *const eval_usage[] = {
    "usage: dpt eval --model-file MODEL --data FILE [flags]\n"
    "Evaluates a saved model on labelled data. Prints one line: rows, loss, and\n"
    "accuracy (classifiers) or mse and r2 (regression); the same as JSON with --json.\n"
    "  --json FILE          the figures as dpt-eval/1 JSON (default none; - stdout)\n",
    EVAL_HELP "  --help               this text\n", NULL};

static const char *const predict_usage[] = {
    "usage: dpt predict --model-file MODEL --data FILE [flags] > predictions.csv\n"
    "Prints the model's predictions as CSV on standard output, one line per row:\n"
    "\"prediction\" (regression), or \"class,p0,p1,...\" (the most likely class and\n"
    "the probability of each). A CSV without a label column needs --label-col none.\n"
    "  --json FILE          the predictions as dpt-predictions/1 JSON instead of the\n"
    "                       CSV: {\"model\", \"rows\", \"predictions\": [number, or\n"
    "                       {\"class\", \"p\": [...]}]} (default none; - stdout)\n",
    EVAL_HELP "  --help               this text\n", NULL};

/* Parse flags, load the model file and the data (standardized with the
 * file's statistics). predict: labels are optional. */
static int load_all(const char *cmd, int argc, char **argv, int predict, loaded *L,
                    const char **json_path, int *threads)
{
    cli_data_opts d;
    cli_data_opts_init(&d);
    d.needs_labels = !predict;
    const char *model_path = NULL;
    /* the model file carries its standardization: no --standardize, and
     * no held-out sets (--test, --val) */
#define EVAL_OPTIONS                                                                               \
    {"data", required_argument, 0, CLI_OPT_DATA}, CLI_DATA_READ_OPTIONS,                           \
        {"classes", required_argument, 0, CLI_OPT_CLASSES},                                        \
        {"synth", required_argument, 0, CLI_OPT_SYNTH}, {"model-file", required_argument, 0, 'm'}, \
        {"threads", required_argument, 0, 't'},                                                    \
    {                                                                                              \
        "help", no_argument, 0, 'h'                                                                \
    }
    static const struct option eval_opts[] = {
        EVAL_OPTIONS, {"json", required_argument, 0, 'j'}, {0, 0, 0, 0}};
    static const struct option predict_opts[] = {
        EVAL_OPTIONS, {"json", required_argument, 0, 'j'}, {0, 0, 0, 0}};
    const struct option *opts = predict ? predict_opts : eval_opts;
    int c;
    long v;
    optind = 1;
    while ((c = cli_getopt(cmd, argc, argv, opts)) != -1) {
        if (c == '?') return DPT_EXIT_USAGE;
        int r = cli_data_flag(cmd, &d, c, optarg);
        if (r < 0) return DPT_EXIT_USAGE;
        if (r > 0) continue;
        switch (c) {
        case 'm':
            model_path = optarg;
            break;
        case 'j':
            *json_path = optarg;
            break;
        case 't':
            if (cli_long(cmd, "threads", optarg, 1, 4096, &v)) return DPT_EXIT_USAGE;
            *threads = (int)v;
            break;
        case 'h':
            cli_help(predict ? predict_usage : eval_usage);
            return -1;
        default:
            return DPT_EXIT_USAGE;
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!model_path) return cli_usage_error(cmd, "--model-file is required");
    if (dpt_model_load(model_path, &L->m, &L->w, &L->st))
        return cli_fail(cmd, "%s", dpt_last_error());
    int rc = cli_data_load(cmd, &d, *threads, &L->ds, NULL, NULL, NULL);
    if (rc) return rc;
    if (L->ds.d != L->m.spec.inputs) {
        /* one short: the last column, read as the label, was a feature */
        const int no_label =
            predict && L->ds.d + 1 == L->m.spec.inputs && d.load.label_col != DPT_LABEL_COL_NONE;
        return cli_fail(cmd, "%s has %zu features, the model in %s expects %zu%s",
                        cli_data_name(&d), L->ds.d, model_path, L->m.spec.inputs,
                        no_label ? " (a file without a label column: pass --label-col none)" : "");
    }
    /* the loss kernels index by label: a class id beyond the model's
     * outputs would read and write outside their rows */
    dpt_label_kind want = L->m.spec.loss == DPT_LOSS_CE    ? DPT_LABEL_CLASS
                          : L->m.spec.loss == DPT_LOSS_BCE ? DPT_LABEL_BINARY
                                                           : DPT_LABEL_REAL;
    int k = want == DPT_LABEL_CLASS ? (int)dpt_model_outputs(&L->m) : 0;
    if (cli_data_check_labels(cmd, &d, want, &L->ds, NULL, NULL, &k)) return DPT_EXIT_FAIL;
    if (L->st.d && dpt_standardizer_apply(&L->st, &L->ds, *threads))
        return cli_fail(cmd, "%s", dpt_last_error());
    return 0;
}

int dpt_cmd_eval(int argc, char **argv)
{
    const char *cmd = "eval";
    loaded L = {0};
    const char *json_path = NULL;
    int threads = dpt_topo_physical_cores();
    int rc = load_all(cmd, argc, argv, 0, &L, &json_path, &threads);
    if (rc) {
        loaded_free(&L);
        return rc < 0 ? 0 : rc;
    }
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    dpt_engine_opts eo;
    dpt_engine_opts_defaults(&eo);
    eo.threads = threads;
    eo.pin.policy = DPT_PIN_NONE;
    eo.shuffle = 0;
    dpt_engine *e = NULL;
    dpt_metrics mt;
    json_t *root = NULL;
    if (dpt_engine_create(&e, &L.m, &o, &L.ds, &eo) ||
        (dpt_engine_reset(e, L.w), dpt_engine_evaluate(e, &L.ds, &mt))) {
        rc = cli_fail(cmd, "%s", dpt_last_error());
        goto done;
    }
    printf("rows %zu  loss %.6g", mt.n, mt.loss);
    if (!isnan(mt.accuracy)) printf("  accuracy %.4f", mt.accuracy);
    if (!isnan(mt.mse)) printf("  mse %.6g  r2 %.4f", mt.mse, mt.r2);
    putchar('\n');
    if (json_path) {
        root = json_pack("{s:s,s:I,s:f}", "schema", "dpt-eval/1", "rows", (json_int_t)mt.n, "loss",
                         mt.loss);
        if (!isnan(mt.accuracy)) json_object_set_new(root, "accuracy", json_real(mt.accuracy));
        if (!isnan(mt.mse)) json_object_set_new(root, "mse", json_real(mt.mse));
        if (!isnan(mt.r2)) json_object_set_new(root, "r2", json_real(mt.r2));
        if (dpt_json_write_atomic(root, json_path)) rc = cli_fail(cmd, "%s", dpt_last_error());
    }
done:
    json_decref(root);
    dpt_engine_destroy(e);
    loaded_free(&L);
    return rc;
}

/* One row's prediction: the value, or the class and its probabilities. */
static json_t *prediction_json(const dpt_model *m, const float *o, size_t K)
{
    if (m->spec.loss == DPT_LOSS_MSE) return json_real(o[0]);
    json_t *p = json_array();
    size_t best = 0;
    if (m->spec.loss == DPT_LOSS_BCE) {
        best = o[0] > 0.5f;
        json_array_append_new(p, json_real(1 - o[0]));
        json_array_append_new(p, json_real(o[0]));
    } else {
        for (size_t j = 0; j < K; j++) {
            best = o[j] > o[best] ? j : best;
            json_array_append_new(p, json_real(o[j]));
        }
    }
    return json_pack("{s:I, s:o}", "class", (json_int_t)best, "p", p);
}

int dpt_cmd_predict(int argc, char **argv)
{
    const char *cmd = "predict";
    loaded L = {0};
    json_t *preds = NULL; /* --json: the rows' predictions */
    const char *json_path = NULL;
    int threads = 1;
    int rc = load_all(cmd, argc, argv, 1, &L, &json_path, &threads);
    if (rc) {
        loaded_free(&L);
        return rc < 0 ? 0 : rc;
    }
    const dpt_kernels *k = dpt_kernels_get();
    size_t K = dpt_model_outputs(&L.m), R = dpt_model_block_rows(&L.m);
    float *sc = dpt_alloc(dpt_model_scratch_floats(&L.m) * sizeof(float));
    float *out = malloc(R * K * sizeof(float));
    if (!sc || !out) {
        rc = cli_fail(cmd, "out of memory");
        goto done;
    }
    if (json_path && (rc = cli_check_output(cmd, "--json", json_path))) goto done;
    if (json_path && !(preds = json_array())) {
        rc = cli_fail(cmd, "out of memory");
        goto done;
    }
    /* header: the prediction, then class probabilities where they apply */
    if (!preds && L.m.spec.loss == DPT_LOSS_MSE) {
        puts("prediction");
    } else if (!preds) {
        printf("class");
        for (size_t j = 0; j < (L.m.spec.loss == DPT_LOSS_BCE ? 2 : K); j++) printf(",p%zu", j);
        putchar('\n');
    }
    for (size_t r0 = 0; r0 < L.ds.n; r0 += R) {
        size_t rows = L.ds.n - r0 < R ? L.ds.n - r0 : R;
        dpt_model_predict(&L.m, k, L.w, L.ds.X + r0 * L.ds.ld, L.ds.ld, rows, out, K, sc);
        for (size_t i = 0; i < rows; i++) {
            const float *o = out + i * K;
            if (preds) {
                json_array_append_new(preds, prediction_json(&L.m, o, K));
            } else if (L.m.spec.loss == DPT_LOSS_MSE) {
                printf("%.9g\n", o[0]);
            } else if (L.m.spec.loss == DPT_LOSS_BCE) {
                printf("%d,%.6g,%.6g\n", o[0] > 0.5f, 1 - o[0], o[0]);
            } else {
                size_t best = 0;
                for (size_t j = 1; j < K; j++) best = o[j] > o[best] ? j : best;
                printf("%zu", best);
                for (size_t j = 0; j < K; j++) printf(",%.6g", o[j]);
                putchar('\n');
            }
        }
    }
    if (preds) {
        char desc[128];
        dpt_model_describe(&L.m, desc, sizeof desc);
        json_t *root = json_pack("{s:s, s:s, s:I, s:o}", "schema", "dpt-predictions/1", "model",
                                 desc, "rows", (json_int_t)L.ds.n, "predictions", preds);
        preds = NULL;
        if (!root || dpt_json_write_atomic(root, json_path))
            rc = cli_fail(cmd, "%s", root ? dpt_last_error() : "out of memory");
        json_decref(root);
    }
    if (fflush(stdout) != 0) rc = cli_fail(cmd, "cannot write the predictions");
done:
    json_decref(preds);
    dpt_free(sc);
    free(out);
    loaded_free(&L);
    return rc;
}
