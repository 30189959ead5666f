/* The data flags that dpt train, eval and predict share: where the data
 * comes from (a file or --synth), how to read it, the held-out sets and
 * standardization. Option codes 1000-1099 are these flags. */
#ifndef DPT_CLI_DATA_OPTS_H
#define DPT_CLI_DATA_OPTS_H

#include <getopt.h>
#include <stdint.h>

#include "dpt/data.h"
#include "dpt/io.h"

typedef struct cli_data_opts {
    const char *data, *labels;      /* --data, --labels (IDX) */
    const char *test, *test_labels; /* --test, --test-labels (IDX) */
    const char *synth;              /* --synth KIND:k=v,... */
    dpt_load_opts load;             /* --format --header --label-col --delimiter --features */
    int classes;                    /* --classes K (0: from the data) */
    double val;                     /* --val FRACTION (0: none) */
    int standardize;                /* --standardize */
    uint64_t seed;                  /* seed of the --val split (default 1) */
    /* The command needs labels (default 1: train, eval, bench; 0 for
     * predict and convert): IDX data without its labels file, or
     * --label-col none, is then a usage error, not all-zero targets. */
    int needs_labels;
    /* Per-rank loading (set by the job under mpirun): called once the
     * training set's row count n is known, for the rows to read (--synth and
     * .dptb read just those; other formats read every row); NULL: all. */
    int (*rows_wanted)(void *ud, size_t n, dpt_row_range **out, size_t *nout);
    void *rows_ud;
} cli_data_opts;

enum {
    CLI_OPT_DATA = 1000,
    CLI_OPT_LABELS,
    CLI_OPT_FORMAT,
    CLI_OPT_HEADER,
    CLI_OPT_LABEL_COL,
    CLI_OPT_DELIMITER,
    CLI_OPT_FEATURES,
    CLI_OPT_CLASSES,
    CLI_OPT_TEST,
    CLI_OPT_TEST_LABELS,
    CLI_OPT_VAL,
    CLI_OPT_STANDARDIZE,
    CLI_OPT_SYNTH
};

/* The input-reading flags alone (for dpt convert and the like). */
// clang-format off
#define CLI_DATA_READ_OPTIONS                                                                      \
    {"labels", required_argument, 0, CLI_OPT_LABELS},                                              \
    {"format", required_argument, 0, CLI_OPT_FORMAT},                                              \
    {"header", required_argument, 0, CLI_OPT_HEADER},                                              \
    {"label-col", required_argument, 0, CLI_OPT_LABEL_COL},                                        \
    {"delimiter", required_argument, 0, CLI_OPT_DELIMITER},                                        \
    {"features", required_argument, 0, CLI_OPT_FEATURES}

/* All of them, to splice into a command's struct option array. */
#define CLI_DATA_OPTIONS                                                                           \
    {"data", required_argument, 0, CLI_OPT_DATA},                                                  \
    CLI_DATA_READ_OPTIONS,                                                                         \
    {"classes", required_argument, 0, CLI_OPT_CLASSES},                                            \
    {"test", required_argument, 0, CLI_OPT_TEST},                                                  \
    {"test-labels", required_argument, 0, CLI_OPT_TEST_LABELS},                                    \
    {"val", required_argument, 0, CLI_OPT_VAL},                                                    \
    {"standardize", no_argument, 0, CLI_OPT_STANDARDIZE},                                          \
    {"synth", required_argument, 0, CLI_OPT_SYNTH}
// clang-format on

/* Help lines of these flags, one per flag with its default (see the note
 * in cli/args.h): the reading flags, then the held-out sets. */
#define CLI_DATA_READ_HELP                                                                         \
    "  --format auto|csv|svmlight|idx|dptb  input format (default auto: from the\n"                \
    "                       name and content)\n"                                                   \
    "  --labels FILE        IDX: the labels file beside the images (default none)\n"               \
    "  --header auto|yes|no CSV: a header line (default auto: detected)\n"                         \
    "  --label-col N|last|none  CSV: the label column, 0-based (default last; none: no\n"          \
    "                       labels, as for predict)\n"                                             \
    "  --delimiter C|tab    CSV field separator (default ',', tab for .tsv)\n"                     \
    "  --features D         row width; svmlight: pads to D (default: from the data)\n"
#define CLI_DATA_SOURCE_HELP                                                                       \
    "  --data FILE|-        the data file, - for stdin (required, unless --synth)\n"               \
    "  --synth KIND[:k=v,...]  generated data instead (default none): linreg, logreg,\n"           \
    "                       teacher-mlp; keys n, d, noise, seed, classes, "                        \
    "hidden=a/b\n" CLI_DATA_READ_HELP                                                              \
    "  --classes K          number of classes (default: from the labels)\n"
#define CLI_DATA_HELP                                                                              \
    "data:\n" CLI_DATA_SOURCE_HELP                                                                 \
    "  --test FILE          held-out set, evaluated after every epoch (default none)\n"            \
    "  --test-labels FILE   IDX labels of --test (default none)\n"                                 \
    "  --val FRACTION       hold this share of the rows out as a validation set\n"                 \
    "                       (default none; split with --seed)\n"                                   \
    "  --standardize        z-score every feature with the training set's statistics\n"            \
    "                       (default off)\n"

void cli_data_opts_init(cli_data_opts *o);

/* 1: consumed, 0: not a data flag, -1: bad value (one line printed). */
int cli_data_flag(const char *cmd, cli_data_opts *o, int opt, const char *arg);

/* Load --data (or generate --synth) into train, --test into test (zeroed
 * when absent), split --val off train into val, and with --standardize fit
 * st on train and apply it to all three. test, val and st may be NULL when
 * those flags cannot occur. With --classes K the labels of every set must
 * be class ids below K, and each set's classes becomes K. Returns 0, or
 * the exit status after printing one line: 1 for bad data ("dpt CMD:
 * FILE:LINE:COL: problem"), 2 for flags that do not go together. */
int cli_data_load(const char *cmd, cli_data_opts *o, int nthreads, dpt_dataset *train,
                  dpt_dataset *test, dpt_dataset *val, dpt_standardizer *st);

/* Print dpt_load's failure message msg, with the flag that fixes it where
 * one does (--delimiter, --header yes, --features); returns 1. */
int cli_load_fail(const char *cmd, const char *msg);

/* The training data's name for messages: the --data path ("<stdin>" for
 * "-", as the loaders say), or "the --synth data". */
const char *cli_data_name(const cli_data_opts *o);

/* dpt_dataset_check_labels on train, val and test (any may be empty), each
 * message prefixed by the file it came from. *classes: in, K or 0 (from
 * the training data); out, the K to use. Returns 0 or 1 after printing. */
int cli_data_check_labels(const char *cmd, const cli_data_opts *o, dpt_label_kind want,
                          const dpt_dataset *train, const dpt_dataset *test, const dpt_dataset *val,
                          int *classes);

#endif
