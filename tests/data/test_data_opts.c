/* The shared data flags of dpt train/eval/predict (src/cli/data_opts.c),
 * driven directly: values validated, test and --val sets, standardization
 * with training statistics, --classes, and one-line errors. */
#include <criterion/criterion.h>
#include <math.h>

#include "cli/args.h"
#include "cli/data_opts.h"
#include "util.h"

static void teardown(void)
{
    rm_tdir();
}
TestSuite(data_opts, .fini = teardown);

/* stderr of the code under test goes to a file we read back */
static char errbuf[4096];
static FILE *errf;

static void capture(void)
{
    errf = tmpfile();
    cr_assert(errf);
    fflush(stderr);
    cr_assert(dup2(fileno(errf), 2) >= 0);
}

static const char *captured(void)
{
    fflush(stderr);
    rewind(errf);
    size_t n = fread(errbuf, 1, sizeof errbuf - 1, errf);
    errbuf[n] = '\0';
    return errbuf;
}

static int flag(cli_data_opts *o, int opt, const char *arg)
{
    return cli_data_flag("train", o, opt, arg);
}

Test(data_opts, flag_values)
{
    capture();
    cli_data_opts o;
    cli_data_opts_init(&o);
    cr_assert_eq(flag(&o, CLI_OPT_FORMAT, "libsvm"), 1);
    cr_assert_eq(o.load.format, DPT_FORMAT_SVMLIGHT);
    cr_assert_eq(flag(&o, CLI_OPT_HEADER, "no"), 1);
    cr_assert_eq(o.load.header, 0);
    cr_assert_eq(flag(&o, CLI_OPT_LABEL_COL, "3"), 1);
    cr_assert_eq(o.load.label_col, 2);
    cr_assert_eq(flag(&o, CLI_OPT_LABEL_COL, "none"), 1);
    cr_assert_eq(o.load.label_col, DPT_LABEL_COL_NONE);
    cr_assert_eq(flag(&o, CLI_OPT_DELIMITER, "tab"), 1);
    cr_assert_eq(o.load.delimiter, '\t');
    cr_assert_eq(flag(&o, CLI_OPT_VAL, "0.25"), 1);
    cr_assert_eq(o.val, 0.25);
    cr_assert_eq(flag(&o, CLI_OPT_CLASSES, "10"), 1);
    cr_assert_eq(flag(&o, CLI_OPT_SYNTH, "logreg:n=10"), 1);
    cr_assert_eq(flag(&o, 'x', "whatever"), 0, "not a data flag");
    cr_assert_str_empty(captured());
    static const struct {
        int opt;
        const char *arg, *frag;
    } bad[] = {
        {CLI_OPT_FORMAT, "xls", "--format: 'xls' is not one of: auto, csv, svmlight, idx, dptb"},
        {CLI_OPT_HEADER, "1", "--header: '1' is not one of: auto, yes, no"},
        {CLI_OPT_LABEL_COL, "-1", "--label-col: '-1'"},
        {CLI_OPT_DELIMITER, ",,", "--delimiter: ',,'"},
        {CLI_OPT_FEATURES, "0", "--features: '0'"},
        {CLI_OPT_CLASSES, "1", "--classes: '1'"},
        {CLI_OPT_VAL, "1", "--val: '1' is not a fraction"},
        {CLI_OPT_VAL, "0", "--val: '0' is not a fraction"},
        {CLI_OPT_SYNTH, "linreg:q=1", "--synth: unknown key 'q'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        capture();
        cr_assert_eq(flag(&o, bad[i].opt, bad[i].arg), -1, "%s accepted", bad[i].arg);
        const char *e = captured();
        cr_assert(strstr(e, bad[i].frag), "'%s' lacks '%s'", e, bad[i].frag);
        cr_assert(!strncmp(e, "dpt train: ", 11));
        cr_assert(strchr(e, '\n') == e + strlen(e) - 1, "not one line: %s", e);
    }
}

Test(data_opts, train_test_val_standardize)
{
    /* train: 100 rows, feature 1 = i, feature 2 = 3 (constant) */
    char *text = malloc(100 * 32);
    size_t k = 0;
    for (int i = 0; i < 100; i++) k += (size_t)sprintf(text + k, "%d,3,%d\n", i, i % 3);
    write_text("tr.csv", text);
    free(text);
    write_text("te.csv", "49.5,3,0\n50.5,4,2\n");
    cli_data_opts o;
    cli_data_opts_init(&o);
    o.data = tpath("tr.csv");
    o.test = tpath("te.csv");
    o.val = 0.1;
    o.standardize = 1;
    dpt_dataset tr, te, va;
    dpt_standardizer st;
    capture();
    cr_assert_eq(cli_data_load("train", &o, 2, &tr, &te, &va, &st), 0, "%s", captured());
    cr_assert_eq(tr.n, 90);
    cr_assert_eq(va.n, 10);
    cr_assert_eq(te.n, 2);
    cr_assert_eq(st.d, 2);
    cr_assert(st.mean[0] > 40 && st.mean[0] < 60, "mean %g", st.mean[0]);
    cr_assert(st.scale[0] > 0.03f && st.scale[0] < 0.04f, "scale %g (1/28.9)", st.scale[0]);
    cr_assert_eq(st.scale[1], 0.0f, "constant feature");
    /* test data transformed with the training statistics */
    cr_assert_float_eq(te.X[0], (49.5f - st.mean[0]) * st.scale[0], 1e-5);
    cr_assert_float_eq(te.X[te.ld], (50.5f - st.mean[0]) * st.scale[0], 1e-5);
    cr_assert_eq(te.X[1], 0.0f);
    cr_assert_eq(te.X[te.ld + 1], 0.0f);
    cr_assert_eq(te.y[1], 2.0f);
    double m = 0;
    for (size_t i = 0; i < tr.n; i++) m += tr.X[i * tr.ld];
    cr_assert(fabs(m / 90) < 0.2, "train mean after standardizing %g", m / 90);
    int classes = 0;
    cr_assert_eq(cli_data_check_labels("train", &o, DPT_LABEL_CLASS, &tr, &te, &va, &classes), 0);
    cr_assert_eq(classes, 3);
    capture();
    cr_assert_eq(cli_data_check_labels("train", &o, DPT_LABEL_BINARY, &tr, &te, &va, &classes), 1);
    cr_assert(strstr(captured(), "tr.csv: row 3: label 2 is not 0 or 1"), "%s", errbuf);
    dpt_dataset_free(&tr);
    dpt_dataset_free(&te);
    dpt_dataset_free(&va);
    dpt_standardizer_free(&st);
}

Test(data_opts, classes_flag)
{
    write_text("tr.csv", "1,0\n2,1\n3,4\n");
    write_text("te.csv", "1,5\n");
    cli_data_opts o;
    cli_data_opts_init(&o);
    o.data = tpath("tr.csv");
    o.classes = 5;
    dpt_dataset tr, te;
    capture();
    cr_assert_eq(cli_data_load("train", &o, 1, &tr, &te, NULL, NULL), 0, "%s", captured());
    cr_assert_eq(tr.classes, 5);
    dpt_dataset_free(&tr);
    o.test = tpath("te.csv");
    capture();
    cr_assert_eq(cli_data_load("train", &o, 1, &tr, &te, NULL, NULL), 1);
    cr_assert(strstr(captured(), "te.csv: row 1: class id 5 is not below the 5 classes"), "%s",
              errbuf);
    cr_assert_null(tr.X, "nothing left allocated after a failure");
}

Test(data_opts, feature_mismatch_and_svmlight_width)
{
    write_text("tr.csv", "1,2,0\n3,4,1\n");
    write_text("te.csv", "1,0\n");
    cli_data_opts o;
    cli_data_opts_init(&o);
    o.data = tpath("tr.csv");
    o.test = tpath("te.csv");
    dpt_dataset tr, te;
    capture();
    cr_assert_eq(cli_data_load("eval", &o, 1, &tr, &te, NULL, NULL), 1);
    const char *e = captured();
    cr_assert(strstr(e, "dpt eval: "), "%s", e);
    cr_assert(strstr(e, "te.csv: 1 features, but the training data"), "%s", e);
    cr_assert(strstr(e, "tr.csv) has 2"), "%s", e);
    /* svmlight test rows take the training width */
    write_text("tr.svm", "1 1:1 5:2\n0 2:1\n");
    write_text("te.svm", "1 2:1\n");
    o.data = tpath("tr.svm");
    o.test = tpath("te.svm");
    capture();
    cr_assert_eq(cli_data_load("eval", &o, 1, &tr, &te, NULL, NULL), 0, "%s", captured());
    cr_assert_eq(te.d, 5);
    dpt_dataset_free(&tr);
    dpt_dataset_free(&te);
    write_text("te2.svm", "1 6:1\n");
    o.test = tpath("te2.svm");
    capture();
    cr_assert_eq(cli_data_load("eval", &o, 1, &tr, &te, NULL, NULL), 1);
    cr_assert(strstr(captured(), "te2.svm:1:3: index 6 is beyond the 5 features"), "%s", errbuf);
}

Test(data_opts, usage_conflicts)
{
    static const struct {
        const char *data, *synth, *labels, *test_labels;
        double val;
        const char *frag;
    } cases[] = {
        {"a.csv", "linreg", NULL, NULL, 0, "--data and --synth do not go together"},
        {NULL, NULL, NULL, NULL, 0, "no data: give --data FILE or --synth KIND"},
        {NULL, "linreg", "l.idx", NULL, 0, "--labels needs --data"},
        {NULL, "linreg", NULL, "l.idx", 0, "--test-labels needs --test"},
        {NULL, "linreg", NULL, NULL, 0.5, "--val does not apply to dpt predict"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cli_data_opts o;
        cli_data_opts_init(&o);
        o.data = cases[i].data;
        o.synth = cases[i].synth;
        o.labels = cases[i].labels;
        o.test_labels = cases[i].test_labels;
        o.val = cases[i].val;
        dpt_dataset tr;
        capture();
        cr_assert_eq(cli_data_load("predict", &o, 1, &tr, NULL, NULL, NULL), 2);
        cr_assert(strstr(captured(), cases[i].frag), "'%s' lacks '%s'", errbuf, cases[i].frag);
    }
}

Test(data_opts, synth_and_bad_file)
{
    cli_data_opts o;
    cli_data_opts_init(&o);
    cr_assert_eq(flag(&o, CLI_OPT_SYNTH, "logreg:n=50,d=4"), 1);
    dpt_dataset tr;
    cr_assert_eq(cli_data_load("train", &o, 2, &tr, NULL, NULL, NULL), 0);
    cr_assert_eq(tr.n, 50);
    cr_assert_eq(tr.label_kind, DPT_LABEL_BINARY);
    dpt_dataset_free(&tr);
    cli_data_opts_init(&o);
    o.data = write_text("b.csv", "1,2\n3,4,5\n");
    capture();
    cr_assert_eq(cli_data_load("train", &o, 2, &tr, NULL, NULL, NULL), 1);
    const char *e = captured();
    cr_assert(strstr(e, "dpt train: "), "%s", e);
    cr_assert(strstr(e, "b.csv:2:4: 3 fields, expected 2"), "%s", e);
    cr_assert(strchr(e, '\n') == e + strlen(e) - 1, "not one line: %s", e);
}

/* Training on data without labels trained on all-zero targets (and IDX
 * test images without labels printed a perfect-looking accuracy): a usage
 * error naming the flags, where the command needs labels. */
Test(data_opts, labels_are_required_where_needed)
{
    static const struct {
        const char *data, *labels, *test, *test_labels;
        int label_none;
        const char *frag;
    } cases[] = {
        {"train-images-idx3-ubyte", NULL, NULL, NULL, 0,
         "train-images-idx3-ubyte is IDX data, which has no labels: give --labels FILE"},
        {"a.csv", NULL, "t10k-images-idx3-ubyte.gz", NULL, 0,
         "--test t10k-images-idx3-ubyte.gz is IDX data, which has no labels: give --test-labels "
         "FILE"},
        {"a.csv", NULL, NULL, NULL, 1, "--label-col none leaves dpt train no labels"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cli_data_opts o;
        cli_data_opts_init(&o);
        o.data = cases[i].data;
        o.labels = cases[i].labels;
        o.test = cases[i].test;
        o.test_labels = cases[i].test_labels;
        if (cases[i].label_none) cr_assert_eq(flag(&o, CLI_OPT_LABEL_COL, "none"), 1);
        dpt_dataset tr, te;
        capture();
        cr_assert_eq(cli_data_load("train", &o, 1, &tr, &te, NULL, NULL), 2, "%s", captured());
        cr_assert(strstr(captured(), cases[i].frag), "'%s' lacks '%s'", errbuf, cases[i].frag);
    }
    /* predict has no labels to want */
    cli_data_opts o;
    cli_data_opts_init(&o);
    o.needs_labels = 0;
    o.data = write_text("p.csv", "1,2,3\n4,5,6\n");
    cr_assert_eq(flag(&o, CLI_OPT_LABEL_COL, "none"), 1);
    dpt_dataset tr;
    capture();
    cr_assert_eq(cli_data_load("predict", &o, 1, &tr, NULL, NULL, NULL), 0, "%s", captured());
    cr_assert_eq(tr.d, 3);
    dpt_dataset_free(&tr);
}

/* Standard input can be read once. */
Test(data_opts, stdin_once)
{
    cli_data_opts o;
    cli_data_opts_init(&o);
    o.data = "-";
    o.test = "-";
    dpt_dataset tr, te;
    capture();
    cr_assert_eq(cli_data_load("train", &o, 1, &tr, &te, NULL, NULL), 2);
    cr_assert(strstr(captured(), "--data - and --test - cannot both read standard input"), "%s",
              errbuf);
}
