/* The shared data flags: validation of each value, then loading (or
 * generating) the training set, the test set, the --val split and the
 * standardization, with one line on stderr for whatever goes wrong. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/data_opts.h"
#include "dpt/error.h"

void cli_data_opts_init(cli_data_opts *o)
{
    memset(o, 0, sizeof *o);
    dpt_load_opts_defaults(&o->load);
    o->seed = 1;
    o->needs_labels = 1;
}

static int parse_delimiter(const char *cmd, const char *arg, char *out)
{
    if (!strcmp(arg, "tab") || !strcmp(arg, "\\t")) {
        *out = '\t';
        return 0;
    }
    if (!strcmp(arg, "space")) {
        *out = ' ';
        return 0;
    }
    /* a character that cannot be part of a number or a line end */
    if (strlen(arg) == 1 && !strchr("0123456789.+-eE\"\r\n", arg[0]) && arg[0] > 0) {
        *out = arg[0];
        return 0;
    }
    return cli_usage_error(cmd,
                           "--delimiter: '%s' is not a single character (like , ; |) or tab or "
                           "space, other than digits, '.', '+', '-', 'e' and '\"'",
                           arg);
}

int cli_data_flag(const char *cmd, cli_data_opts *o, int opt, const char *arg)
{
    long v;
    switch (opt) {
    case CLI_OPT_DATA:
        o->data = arg;
        return 1;
    case CLI_OPT_LABELS:
        o->labels = arg;
        return 1;
    case CLI_OPT_TEST:
        o->test = arg;
        return 1;
    case CLI_OPT_TEST_LABELS:
        o->test_labels = arg;
        return 1;
    case CLI_OPT_STANDARDIZE:
        o->standardize = 1;
        return 1;
    case CLI_OPT_FORMAT: {
        static const char *const names[] = {"auto", "csv",    "svmlight", "idx",
                                            "dptb", "libsvm", NULL};
        int i;
        if (cli_choice(cmd, "format", arg, names, &i)) return -1;
        o->load.format = i == 5 ? DPT_FORMAT_SVMLIGHT : (dpt_format)i;
        return 1;
    }
    case CLI_OPT_HEADER: {
        static const char *const names[] = {"auto", "yes", "no", NULL};
        int i;
        if (cli_choice(cmd, "header", arg, names, &i)) return -1;
        o->load.header = i == 0 ? -1 : i == 1 ? 1 : 0;
        return 1;
    }
    case CLI_OPT_LABEL_COL:
        if (!strcmp(arg, "last")) {
            o->load.label_col = DPT_LABEL_COL_LAST;
            return 1;
        }
        if (!strcmp(arg, "none")) {
            o->load.label_col = DPT_LABEL_COL_NONE;
            return 1;
        }
        {
            char *end;
            v = strtol(arg, &end, 10);
            if (end == arg || *end || v < 1 || v > 1000000000L) {
                cli_usage_error(
                    cmd, "--label-col: '%s' is not a column number (from 1), last or none", arg);
                return -1;
            }
        }
        o->load.label_col = v - 1;
        return 1;
    case CLI_OPT_DELIMITER:
        return parse_delimiter(cmd, arg, &o->load.delimiter) ? -1 : 1;
    case CLI_OPT_FEATURES:
        if (cli_long(cmd, "features", arg, 1, 2147483647L, &v)) return -1;
        o->load.features = (size_t)v;
        return 1;
    case CLI_OPT_CLASSES:
        if (cli_long(cmd, "classes", arg, 2, 1000000, &v)) return -1;
        o->classes = (int)v;
        return 1;
    case CLI_OPT_VAL: {
        double f;
        if (cli_double(cmd, "val", arg, 0, 1, &f)) return -1;
        if (!(f > 0 && f < 1)) {
            cli_usage_error(cmd, "--val: '%s' is not a fraction strictly between 0 and 1", arg);
            return -1;
        }
        o->val = f;
        return 1;
    }
    case CLI_OPT_SYNTH: {
        dpt_synth_spec spec;
        if (dpt_synth_parse(&spec, arg)) {
            cli_usage_error(cmd, "--synth: %s", dpt_last_error());
            return -1;
        }
        o->synth = arg;
        return 1;
    }
    }
    return 0;
}

const char *cli_data_name(const cli_data_opts *o)
{
    if (!o->data) return "the --synth data";
    return strcmp(o->data, "-") ? o->data : "<stdin>";
}

int cli_data_check_labels(const char *cmd, const cli_data_opts *o, dpt_label_kind want,
                          const dpt_dataset *train, const dpt_dataset *test, const dpt_dataset *val,
                          int *classes)
{
    const char *train_name = cli_data_name(o);
    int k = classes ? *classes : 0;
    if (dpt_dataset_check_labels(train, want, &k))
        return cli_fail(cmd, "%s: %s", train_name, dpt_last_error());
    if (val && val->n && dpt_dataset_check_labels(val, want, &k))
        return cli_fail(cmd, "%s (validation rows): %s", train_name, dpt_last_error());
    if (test && test->n && dpt_dataset_check_labels(test, want, &k))
        return cli_fail(cmd, "%s: %s", o->test_labels ? o->test_labels : o->test, dpt_last_error());
    if (classes) *classes = k;
    return 0;
}

/* The CSV-only flags, when given, need a CSV file. */
static int csv_flags_fit(const char *cmd, const cli_data_opts *o, const char *path,
                         const char *labels)
{
    const char *flag = o->load.header >= 0                       ? "--header"
                       : o->load.label_col != DPT_LABEL_COL_LAST ? "--label-col"
                       : o->load.delimiter                       ? "--delimiter"
                                                                 : NULL;
    if (!flag) return 0;
    dpt_format f = o->load.format ? o->load.format : dpt_format_detect(path, labels != NULL);
    /* a pipe's format shows only as it is loaded, once */
    if (f == DPT_FORMAT_CSV || f == DPT_FORMAT_AUTO) return 0;
    return cli_usage_error(cmd, "%s applies to CSV data only, and %s is %s", flag, path,
                           dpt_format_name(f));
}

/* A command that needs labels was given data without them: IDX images
 * without their labels file, or CSV with --label-col none. Loaded anyway,
 * they would be all-zero targets (and a perfect-looking test accuracy). */
static int labels_missing(const char *cmd, const cli_data_opts *o)
{
    if (o->load.label_col == DPT_LABEL_COL_NONE && (o->data || o->test))
        return cli_usage_error(
            cmd, "--label-col none leaves dpt %s no labels (it is for dpt predict)", cmd);
    dpt_format f = o->load.format;
    if (o->data && !o->labels && (f ? f : dpt_format_detect(o->data, 0)) == DPT_FORMAT_IDX)
        return cli_usage_error(cmd, "%s is IDX data, which has no labels: give --labels FILE",
                               o->data);
    if (o->test && !o->test_labels && (f ? f : dpt_format_detect(o->test, 0)) == DPT_FORMAT_IDX)
        return cli_usage_error(cmd,
                               "--test %s is IDX data, which has no labels: give "
                               "--test-labels FILE",
                               o->test);
    return 0;
}

int cli_load_fail(const char *cmd, const char *msg)
{
    /* the library speaks of the data; the flag that fixes it is ours */
    static const struct {
        const char *says, *hint;
    } hints[] = {
        {"as delimiter, not", " (pass --delimiter)"},
        {"(line 1 may be a header)", " (pass --header yes)"},
        {"no feature count was given", " (give --features)"},
    };
    for (size_t i = 0; i < sizeof hints / sizeof *hints; i++)
        if (strstr(msg, hints[i].says)) return cli_fail(cmd, "%s%s", msg, hints[i].hint);
    return cli_fail(cmd, "%s", msg);
}

/* Load one file with the shared reading flags; prints on failure. */
static int load_file(const char *cmd, const cli_data_opts *o, const char *path, const char *labels,
                     size_t features, int nthreads, const dpt_row_range *part, size_t npart,
                     dpt_dataset *ds)
{
    dpt_load_opts lo = o->load;
    lo.part = part;
    lo.npart = npart;
    lo.labels_path = labels;
    lo.nthreads = nthreads;
    if (features) lo.features = features;
    if (dpt_load(path, &lo, ds)) return cli_load_fail(cmd, dpt_last_error());
    return 0;
}

int cli_data_load(const char *cmd, cli_data_opts *o, int nthreads, dpt_dataset *train,
                  dpt_dataset *test, dpt_dataset *val, dpt_standardizer *st)
{
    memset(train, 0, sizeof *train);
    if (test) memset(test, 0, sizeof *test);
    if (val) memset(val, 0, sizeof *val);
    if (st) memset(st, 0, sizeof *st);
    if (o->data && o->synth) return cli_usage_error(cmd, "--data and --synth do not go together");
    if (!o->data && !o->synth)
        return cli_usage_error(cmd, "no data: give --data FILE or --synth KIND (see dpt %s --help)",
                               cmd);
    if (o->labels && !o->data) return cli_usage_error(cmd, "--labels needs --data (IDX images)");
    if (o->test_labels && !o->test)
        return cli_usage_error(cmd, "--test-labels needs --test (IDX images)");
    if (o->test && !test) return cli_usage_error(cmd, "--test does not apply to dpt %s", cmd);
    if (o->data && o->test && !strcmp(o->data, "-") && !strcmp(o->test, "-"))
        return cli_usage_error(cmd, "--data - and --test - cannot both read standard input");
    if (o->val > 0 && !val) return cli_usage_error(cmd, "--val does not apply to dpt %s", cmd);
    if (o->standardize && !st)
        return cli_usage_error(cmd, "--standardize does not apply to dpt %s", cmd);
    if (o->labels && o->load.format && o->load.format != DPT_FORMAT_IDX)
        return cli_usage_error(cmd, "--labels applies to IDX data only, not --format %s",
                               dpt_format_name(o->load.format));

    if (o->needs_labels && labels_missing(cmd, o)) return DPT_EXIT_USAGE;
    if ((o->data && csv_flags_fit(cmd, o, o->data, o->labels)) ||
        (o->test && csv_flags_fit(cmd, o, o->test, o->test_labels)))
        return DPT_EXIT_USAGE;

    int rc = DPT_EXIT_FAIL;
    const char *train_name = cli_data_name(o);
    dpt_row_range *part = NULL;
    size_t npart = 0;
    if (o->synth) {
        dpt_synth_spec spec;
        if (dpt_synth_parse(&spec, o->synth))
            return cli_usage_error(cmd, "--synth: %s", dpt_last_error());
        if (o->rows_wanted && spec.n && o->rows_wanted(o->rows_ud, spec.n, &part, &npart)) {
            return cli_fail(cmd, "%s", dpt_last_error());
        }
        rc = dpt_synth_generate_part(&spec, train, nthreads, part, npart);
        free(part);
        if (rc) return cli_fail(cmd, "--synth: %s", dpt_last_error());
    } else {
        dpt_format f = o->load.format ? o->load.format : dpt_format_detect(o->data, 0);
        size_t n = 0;
        if (o->rows_wanted && f == DPT_FORMAT_DPTB && dpt_dptb_rows(o->data, &n) == 0 &&
            o->rows_wanted(o->rows_ud, n, &part, &npart))
            return cli_fail(cmd, "%s", dpt_last_error());
        rc = load_file(cmd, o, o->data, o->labels, 0, nthreads, part, npart, train);
        free(part);
        if (rc) return rc;
    }
    rc = DPT_EXIT_FAIL;
    if (o->test) {
        /* svmlight test rows take the training width; the others must match it */
        dpt_format tf =
            o->load.format ? o->load.format : dpt_format_detect(o->test, o->test_labels != NULL);
        size_t w = tf == DPT_FORMAT_SVMLIGHT ? train->d : 0;
        if (load_file(cmd, o, o->test, o->test_labels, w, nthreads, NULL, 0, test)) goto fail;
        if (test->d != train->d) {
            cli_fail(cmd, "%s: %zu features, but the training data (%s) has %zu", o->test, test->d,
                     train_name, train->d);
            goto fail;
        }
    }
    if (o->val > 0 && dpt_dataset_split(train, o->val, o->seed, val)) {
        cli_fail(cmd, "--val %g: %s: %s", o->val, train_name, dpt_last_error());
        goto fail;
    }
    if (o->classes > 0) {
        int k = o->classes;
        if (cli_data_check_labels(cmd, o, DPT_LABEL_CLASS, train, test, val, &k)) goto fail;
        train->classes = k;
        if (val) val->classes = k;
        if (test) test->classes = k;
    }
    if (o->standardize) {
        if (dpt_standardizer_fit(st, train, nthreads) ||
            dpt_standardizer_apply(st, train, nthreads) ||
            (val && val->n && dpt_standardizer_apply(st, val, nthreads)) ||
            (test && test->n && dpt_standardizer_apply(st, test, nthreads))) {
            cli_fail(cmd, "--standardize: %s", dpt_last_error());
            goto fail;
        }
    }
    return 0;
fail:
    dpt_dataset_free(train);
    if (test) dpt_dataset_free(test);
    if (val) dpt_dataset_free(val);
    if (st) dpt_standardizer_free(st);
    return rc;
}
