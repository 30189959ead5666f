/* The model, optimizer and engine flags that `dpt train` and `dpt bench`
 * share, and the canonical workloads (docs/workloads.md) as presets of them. */
#ifndef DPT_CLI_TRAIN_OPTS_H
#define DPT_CLI_TRAIN_OPTS_H

#include <getopt.h>

#include "dpt/engine.h"
#include "dpt/model.h"
#include "dpt/optim.h"

typedef struct cli_train_opts {
    dpt_model_spec model;
    int model_set, hidden_set, loss_set;
    dpt_optim_spec opt;
    int batch_set, momentum_set;
    dpt_init init;
    int epochs;
    uint64_t seed;
    const char *pin; /* pin policy text */
    int smt;
    int threads;       /* 0: physical cores */
    int shuffle;       /* -1: default for the optimizer */
    int deterministic; /* leaves when > 0 */
    const char *isa;
    int reduce; /* dpt_reduce */
    int batching_local;
    int overlap; /* dpt_overlap */
    int balance; /* dpt_balance */
    int domain;  /* dpt_domain_level */
    int split;   /* dpt_split */
    int pin_given;
    char pin_why[160]; /* why the default pin policy was chosen ("" when --pin was given) */
    /* --target-loss, --target-accuracy (0: none): dpt_run_spec's */
    double target_loss, target_accuracy;
    double inject_slowdown; /* --inject-slowdown, a fraction (0.1 = 10%) */
} cli_train_opts;

/* Option codes 1100-1199 are these flags. */
/* clang-format off */
#define CLI_TRAIN_OPTIONS                                                                          \
    {"model", required_argument, 0, 1100}, {"hidden", required_argument, 0, 1101},                 \
        {"act", required_argument, 0, 1102}, {"loss", required_argument, 0, 1103},                 \
        {"no-bias", no_argument, 0, 1104}, {"init", required_argument, 0, 1105},                   \
        {"opt", required_argument, 0, 1106}, {"lr", required_argument, 0, 1107},                   \
        {"momentum", required_argument, 0, 1108}, {"batch", required_argument, 0, 1109},           \
        {"epochs", required_argument, 0, 1110}, {"weight-decay", required_argument, 0, 1111},      \
        {"lr-schedule", required_argument, 0, 1112}, {"warmup", required_argument, 0, 1113},       \
        {"clip", required_argument, 0, 1114}, {"seed", required_argument, 0, 1115},                \
        {"pin", required_argument, 0, 1116}, {"smt", no_argument, 0, 1117},                        \
        {"shuffle", required_argument, 0, 1118}, {"deterministic", no_argument, 0, 1119},          \
        {"leaves", required_argument, 0, 1120}, {"isa", required_argument, 0, 1121},               \
        {"threads", required_argument, 0, 1122}, {"reduce", required_argument, 0, 1123},           \
        {"batching", required_argument, 0, 1124}, {"comm-overlap", required_argument, 0, 1125},    \
        {"balance", required_argument, 0, 1126}, {"target-loss", required_argument, 0, 1127},      \
        {"target-accuracy", required_argument, 0, 1128}, {"domain", required_argument, 0, 1129},   \
        {"inject-slowdown", required_argument, 0, 1130}, {"split", required_argument, 0, 1131}
/* clang-format on */

/* Help lines of these flags (see the note in cli/args.h). --threads, --pin
 * and --warmup are each command's own: bench and tune take lists, and
 * their --warmup is epochs. */
#define CLI_MODEL_HELP                                                                             \
    "model:\n"                                                                                     \
    "  --model linear|logistic|softmax|mlp  (default linear)\n"                                    \
    "  --hidden 20|256,128  hidden layer widths (required with --model mlp)\n"                     \
    "  --act relu|tanh|sigmoid  hidden activation (default relu)\n"                                \
    "  --loss mse|bce|ce    mlp loss (default mse; linear: mse, logistic: bce)\n"                  \
    "  --no-bias            no bias term: linear, logistic, softmax (default off)\n"               \
    "  --init uniform|zero  initial weights (default uniform, from --seed)\n"
#define CLI_OPTIM_HELP                                                                             \
    "optimizer:\n"                                                                                 \
    "  --opt gd|sgd|momentum|nesterov  (default gd: full batch)\n"                                 \
    "  --lr X               learning rate (default 0.01)\n"                                        \
    "  --momentum MU        momentum and nesterov (default 0.9)\n"                                 \
    "  --batch N            rows per step (default 32; gd: 0, the whole set)\n"                    \
    "  --epochs N           passes over the training set (default 10)\n"                           \
    "  --weight-decay X     L2 penalty (default 0)\n"                                              \
    "  --lr-schedule const|step:EVERY:FACTOR|cosine  (default const)\n"                            \
    "  --clip NORM          clip the gradient's global norm (default 0: none)\n"                   \
    "  --seed N             initial weights, shuffling, --val split (default 1)\n"                 \
    "  --shuffle epoch|none reshuffle the rows every epoch (default epoch)\n"                      \
    "  --target-loss X      stop at the first epoch whose loss is <= X\n"                          \
    "                       (on --val/--test when given, else the training set; default\n"         \
    "                       none)\n"                                                               \
    "  --target-accuracy X  likewise, accuracy >= X (classifiers; default none)\n"
#define CLI_ENGINE_HELP                                                                            \
    "engine:\n"                                                                                    \
    "  --smt                compact/scatter/numa may use SMT siblings (default off)\n"             \
    "  --deterministic      the same bits at any thread count, 16 leaves (default off)\n"          \
    "  --leaves N           --deterministic with N leaves (default none)\n"                        \
    "  --reduce tree|scatter  gradient reduction (default scatter)\n"                              \
    "  --batching global|local  one batch cut over the threads, or one per thread\n"               \
    "                       (default global)\n"                                                    \
    "  --comm-overlap auto|off|on  mpirun: all-reduce in chunks while summing (default\n"          \
    "                       auto)\n"                                                               \
    "  --balance static|adaptive  cut batches by measured thread speed (default static)\n"         \
    "  --domain auto|none|l3|numa|package  reduce inside each group of threads first\n"            \
    "                       (default auto: L3 groups where a node has several, else nodes)\n"      \
    "  --split auto|data|layer  a domain's threads take their own rows (data) or share\n"          \
    "                       each unit, splitting every layer by outputs (layer); same bits\n"      \
    "                       (default auto: layer below 16 rows a thread per step, on\n"            \
    "                       networks of 64K+ parameters, in domains of 2-16 threads)\n"            \
    "  --inject-slowdown PCT  calibration aid: spin PCT% of each step's compute, 0-1000\n"         \
    "                       (default 0; dpt compare --calibrate)\n"                                \
    "  --isa auto|scalar|avx2|avx512  kernels (default auto: the widest; or DPT_ISA)\n"            \
    "  --workload NAME      a canonical workload (docs/workloads.md) as defaults for\n"            \
    "                       the other flags (default none): linreg, logreg, mlp-seed,\n"           \
    "                       mlp-seed-sgd, mlp-wide, fmnist-mlp\n"

void cli_train_defaults(cli_train_opts *o);
/* 1 consumed, 0 not a training flag, -1 bad value (printed). */
int cli_train_flag(const char *cmd, cli_train_opts *o, int opt, const char *arg);
/* Fill in what depends on the data (inputs, classes) and check the whole;
 * prints and returns nonzero on error. classes_from_data: K of the data. */
int cli_train_finish(const char *cmd, cli_train_opts *o, size_t inputs, int classes_from_data,
                     dpt_model *m);
/* Engine options from the flags; the pin spec must be freed by the caller. */
/* A usage error (exit 2, one line naming `flag`) where adaptive balancing
 * meets --deterministic or --batching local, which it cannot serve; else 0. */
int cli_balance_conflict(const char *cmd, const cli_train_opts *o, const char *flag);

int cli_engine_opts(const char *cmd, const cli_train_opts *o, int threads, dpt_engine_opts *eo);
/* The label kind the model needs of the data. */
int cli_train_label_kind(const cli_train_opts *o);

#endif
