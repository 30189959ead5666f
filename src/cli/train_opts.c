/* Parsing and checking of the model/optimizer/engine flags. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/mpi_cli.h"
#include "cli/train_opts.h"
#include "dpt/data.h"
#include "dpt/error.h"
#include "kernels/kernels.h"

static const char *const models[] = {"linear", "logistic", "softmax", "mlp", NULL};
static const char *const acts[] = {"relu", "tanh", "sigmoid", NULL};
static const char *const losses[] = {"mse", "bce", "ce", NULL};
static const char *const opts_k[] = {"gd", "sgd", "momentum", "nesterov", NULL};
static const char *const inits[] = {"uniform", "zero", NULL};
static const char *const shuffles[] = {"none", "epoch", NULL};

void cli_train_defaults(cli_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->model.kind = DPT_MODEL_LINEAR;
    o->model.bias = 1;
    o->model.act = DPT_ACTIVATION_RELU;
    dpt_optim_defaults(&o->opt);
    o->opt.kind = DPT_OPT_GD;
    o->opt.lr = 0.01;
    o->init = DPT_INIT_UNIFORM;
    o->epochs = 10;
    o->seed = 1;
    o->pin = "compact";
    o->shuffle = -1;
    o->isa = NULL;
    o->reduce = DPT_REDUCE_SCATTER;
}

static int parse_hidden(const char *cmd, dpt_model_spec *s, const char *arg)
{
    char buf[256];
    const char *tok[DPT_MAX_HIDDEN];
    int n = cli_split(cmd, "hidden", arg, buf, sizeof buf, tok, DPT_MAX_HIDDEN, "20 or 256,128");
    if (n < 0) return DPT_EXIT_USAGE;
    for (int l = 0; l < n; l++) {
        long v;
        if (cli_long(cmd, "hidden", tok[l], 1, 1 << 20, &v)) return DPT_EXIT_USAGE;
        s->hidden[l] = (size_t)v;
    }
    s->n_hidden = n;
    return 0;
}

static int parse_schedule(const char *cmd, dpt_optim_spec *o, const char *arg)
{
    if (!strcmp(arg, "const")) {
        o->schedule = DPT_LR_CONST;
    } else if (!strcmp(arg, "cosine")) {
        o->schedule = DPT_LR_COSINE;
    } else if (!strncmp(arg, "step:", 5)) {
        char *end;
        long every = strtol(arg + 5, &end, 10);
        double f = *end == ':' ? strtod(end + 1, &end) : -1;
        if (every < 1 || !(f > 0) || *end)
            return cli_usage_error(cmd,
                                   "--lr-schedule: '%s' is not step:EVERY:FACTOR "
                                   "(e.g. step:5:0.5)",
                                   arg);
        o->schedule = DPT_LR_STEP;
        o->step_every = every;
        o->step_factor = f;
    } else {
        return cli_usage_error(cmd,
                               "--lr-schedule: '%s' is not one of: const, "
                               "step:EVERY:FACTOR, cosine",
                               arg);
    }
    return 0;
}

/* --inject-slowdown: "10" or "10%", a percentage in [0, 1000]. */
static int parse_slowdown(const char *cmd, const char *arg, double *pct)
{
    char buf[64], *end;
    size_t len = strlen(arg);
    if (len && len < sizeof buf) {
        memcpy(buf, arg, len + 1);
        if (buf[len - 1] == '%') buf[len - 1] = '\0';
        errno = 0;
        *pct = strtod(buf, &end);
        if (!errno && end != buf && !*end && *pct >= 0 && *pct <= 1000) return 0;
    }
    return cli_usage_error(cmd,
                           "--inject-slowdown: '%s' is not a percentage in [0, 1000] (e.g. 10 "
                           "or 10%%)",
                           arg);
}

int cli_train_flag(const char *cmd, cli_train_opts *o, int opt, const char *arg)
{
    long v;
    double x = 0;
    int i;
    switch (opt) {
    case 1100:
        if (cli_choice(cmd, "model", arg, models, &i)) return -1;
        o->model.kind = (dpt_model_kind)i;
        o->model_set = 1;
        break;
    case 1101:
        if (parse_hidden(cmd, &o->model, arg)) return -1;
        o->hidden_set = 1;
        break;
    case 1102:
        if (cli_choice(cmd, "act", arg, acts, &i)) return -1;
        o->model.act = (dpt_activation)i;
        break;
    case 1103:
        if (cli_choice(cmd, "loss", arg, losses, &i)) return -1;
        o->model.loss = (dpt_loss)i;
        o->loss_set = 1;
        break;
    case 1104:
        o->model.bias = 0;
        break;
    case 1105:
        if (cli_choice(cmd, "init", arg, inits, &i)) return -1;
        o->init = (dpt_init)i;
        break;
    case 1106:
        if (cli_choice(cmd, "opt", arg, opts_k, &i)) return -1;
        o->opt.kind = (dpt_opt_kind)i;
        break;
    case 1107:
        if (cli_double(cmd, "lr", arg, 1e-12, 1e6, &o->opt.lr)) return -1;
        break;
    case 1108:
        if (cli_double(cmd, "momentum", arg, 0, 0.999999, &o->opt.momentum)) return -1;
        o->momentum_set = 1;
        break;
    case 1109:
        if (cli_long(cmd, "batch", arg, 0, 1L << 40, &v)) return -1;
        o->opt.batch = (size_t)v;
        o->batch_set = 1;
        break;
    case 1110:
        if (cli_long(cmd, "epochs", arg, 1, 1000000, &v)) return -1;
        o->epochs = (int)v;
        break;
    case 1111:
        if (cli_double(cmd, "weight-decay", arg, 0, 1e3, &o->opt.weight_decay)) return -1;
        break;
    case 1112:
        if (parse_schedule(cmd, &o->opt, arg)) return -1;
        break;
    case 1113:
        if (cli_long(cmd, "warmup", arg, 0, 1L << 40, &v)) return -1;
        o->opt.warmup = v;
        break;
    case 1114:
        if (cli_double(cmd, "clip", arg, 0, 1e30, &o->opt.clip_norm)) return -1;
        break;
    case 1115:
        if (cli_long(cmd, "seed", arg, 0, 0x7fffffffffffffffL, &v)) return -1;
        o->seed = (uint64_t)v;
        break;
    case 1116: {
        dpt_pin_spec sp;
        if (dpt_pin_parse(arg, &sp)) {
            cli_usage_error(cmd, "--pin: %s", dpt_last_error());
            return -1;
        }
        dpt_pin_spec_free(&sp);
        o->pin = arg;
        o->pin_given = 1;
        break;
    }
    case 1117:
        o->smt = 1;
        break;
    case 1118:
        if (cli_choice(cmd, "shuffle", arg, shuffles, &i)) return -1;
        o->shuffle = i;
        break;
    case 1119:
        if (!o->deterministic) o->deterministic = 16;
        break;
    case 1120:
        if (cli_long(cmd, "leaves", arg, 1, 4096, &v)) return -1;
        o->deterministic = (int)v;
        break;
    case 1121: {
        static const char *const isas[] = {"auto", "scalar", "avx2", "avx512", NULL};
        if (cli_choice(cmd, "isa", arg, isas, &i)) return -1;
        o->isa = arg;
        break;
    }
    case 1122:
        if (cli_long(cmd, "threads", arg, 1, 4096, &v)) return -1;
        o->threads = (int)v;
        break;
    case 1124: {
        static const char *const bs[] = {"global", "local", NULL};
        if (cli_choice(cmd, "batching", arg, bs, &i)) return -1;
        o->batching_local = i;
        break;
    }
    case 1125: {
        static const char *const ovs[] = {"auto", "off", "on", NULL};
        if (cli_choice(cmd, "comm-overlap", arg, ovs, &i)) return -1;
        o->overlap = i;
        break;
    }
    case 1126: {
        static const char *const bals[] = {"static", "adaptive", NULL};
        if (cli_choice(cmd, "balance", arg, bals, &i)) return -1;
        o->balance = i;
        break;
    }
    case 1129: {
        dpt_domain_level d;
        if (dpt_domain_parse(arg, &d))
            return cli_usage_error(cmd, "--domain: %s", dpt_last_error()), -1;
        o->domain = d;
        break;
    }
    case 1131: {
        dpt_split sp;
        if (dpt_split_parse(arg, &sp))
            return cli_usage_error(cmd, "--split: %s", dpt_last_error()), -1;
        o->split = sp;
        break;
    }
    case 1127:
        if (cli_double(cmd, "target-loss", arg, 1e-300, 1e300, &o->target_loss)) return -1;
        break;
    case 1128:
        if (cli_double(cmd, "target-accuracy", arg, 1e-9, 1, &o->target_accuracy)) return -1;
        break;
    case 1123: {
        static const char *const reds[] = {"tree", "scatter", NULL};
        if (cli_choice(cmd, "reduce", arg, reds, &i)) return -1;
        o->reduce = i;
        break;
    }
    case 1130: /* "10" or "10%": percent of each step's compute time */
        if (parse_slowdown(cmd, arg, &x)) return -1;
        o->inject_slowdown = x / 100;
        break;
    default:
        return 0;
    }
    return 1;
}

int cli_train_label_kind(const cli_train_opts *o)
{
    switch (o->model.kind) {
    case DPT_MODEL_LOGISTIC:
        return DPT_LABEL_BINARY;
    case DPT_MODEL_SOFTMAX:
        return DPT_LABEL_CLASS;
    case DPT_MODEL_MLP:
        return o->model.loss == DPT_LOSS_CE    ? DPT_LABEL_CLASS
               : o->model.loss == DPT_LOSS_BCE ? DPT_LABEL_BINARY
                                               : DPT_LABEL_REAL;
    default:
        return DPT_LABEL_REAL;
    }
}

int cli_balance_conflict(const char *cmd, const cli_train_opts *o, const char *flag)
{
    if (!o->deterministic && !o->batching_local) return 0;
    return cli_usage_error(cmd,
                           "%s adaptive cuts batches by measured thread speed; it cannot be "
                           "combined with %s",
                           flag,
                           o->deterministic ? "--deterministic/--leaves" : "--batching local");
}

/* No --pin: the policy by what bounds the workload (dpt_pin_default_for),
 * its training flops against the bytes of a row. */
static void default_pin(cli_train_opts *o, const dpt_model *m, size_t inputs)
{
    dpt_topo *t = NULL;
    if (dpt_topo_open(&t, NULL, NULL)) t = NULL;
    const int threads = o->threads > 0 ? o->threads : dpt_topo_physical_cores();
    const double fpb = dpt_model_train_flops(m) / ((double)(inputs + 1) * sizeof(float));
    const char *why = NULL;
    o->pin = dpt_pin_name(dpt_pin_default_for(t, threads, fpb, 0, &why));
    snprintf(o->pin_why, sizeof o->pin_why, "%s", why ? why : "");
    dpt_topo_close(t);
}

int cli_train_finish(const char *cmd, cli_train_opts *o, size_t inputs, int classes_from_data,
                     dpt_model *m)
{
    if (o->isa && dpt_kernels_select(o->isa))
        return cli_usage_error(cmd, "--isa: %s", dpt_last_error());
    if (!o->isa) {
        const char *env = getenv("DPT_ISA");
        if (env && *env && dpt_kernels_select(env))
            return cli_usage_error(cmd, "DPT_ISA: %s", dpt_last_error());
    }
    if (o->hidden_set && o->model.kind != DPT_MODEL_MLP)
        return cli_usage_error(cmd, "--hidden applies to --model mlp only");
    if (o->model.kind == DPT_MODEL_MLP && !o->hidden_set)
        return cli_usage_error(cmd, "--model mlp needs --hidden (e.g. --hidden 20 or 256,128)");
    if (o->loss_set && o->model.kind != DPT_MODEL_MLP)
        return cli_usage_error(cmd, "--loss applies to --model mlp only (linear is mse, logistic "
                                    "bce, softmax ce)");
    if (o->model.kind == DPT_MODEL_MLP && !o->model.bias)
        return cli_usage_error(cmd, "--no-bias applies to linear, logistic and softmax only");
    if (o->balance == DPT_BALANCE_ADAPTIVE && cli_balance_conflict(cmd, o, "--balance"))
        return DPT_EXIT_USAGE;
    if (o->deterministic && o->deterministic < cli_mpi_size())
        return cli_usage_error(cmd,
                               "--leaves %d: fewer leaves than the %d ranks (every rank "
                               "computes one at least)",
                               o->deterministic, cli_mpi_size());
    if (o->deterministic && o->batching_local)
        return cli_usage_error(cmd, "--batching local makes batches depend on the thread count; "
                                    "it cannot be combined with --deterministic/--leaves");
    if (o->target_accuracy > 0 && cli_train_label_kind(o) == DPT_LABEL_REAL)
        return cli_usage_error(cmd, "--target-accuracy needs a classifier (--model logistic, "
                                    "softmax, or mlp with --loss ce|bce); use --target-loss");
    if (o->momentum_set && !dpt_optim_has_velocity(&o->opt))
        return cli_usage_error(cmd, "--momentum needs --opt momentum or nesterov");
    if (o->opt.kind == DPT_OPT_GD) {
        if (o->batch_set && o->opt.batch != 0)
            return cli_usage_error(cmd, "--batch: gd is full-batch; use --opt sgd for "
                                        "mini-batches");
        o->opt.batch = 0;
    } else if (!o->batch_set) {
        o->opt.batch = 32;
    }
    o->opt.epochs = o->epochs; /* the schedule's horizon is the whole run */
    o->model.inputs = inputs;
    if (o->model.kind == DPT_MODEL_SOFTMAX ||
        (o->model.kind == DPT_MODEL_MLP && o->model.loss == DPT_LOSS_CE)) {
        if (!o->model.classes) o->model.classes = classes_from_data;
        if (o->model.classes < 2)
            return cli_fail(cmd, "the model needs class labels 0..K-1 with K >= 2 in the data");
    }
    if (dpt_model_init(m, &o->model)) return cli_usage_error(cmd, "%s", dpt_last_error());
    if (o->split == DPT_SPLIT_LAYER && !dpt_model_splittable(m, NULL))
        return cli_usage_error(cmd, "--split layer cuts a network's layer products; this model's "
                                    "gradient is one fused kernel (a one-output linear model or a "
                                    "tiny ReLU MLP): use --split data");
    if (o->split == DPT_SPLIT_LAYER && o->balance == DPT_BALANCE_ADAPTIVE)
        return cli_usage_error(cmd, "--balance adaptive cuts rows among threads, which --split "
                                    "layer shares: it cannot be combined with --split layer");
    if (!o->pin_given) default_pin(o, m, inputs);
    return 0;
}

int cli_engine_opts(const char *cmd, const cli_train_opts *o, int threads, dpt_engine_opts *eo)
{
    dpt_engine_opts_defaults(eo);
    if (dpt_pin_parse(o->pin, &eo->pin)) return cli_usage_error(cmd, "--pin: %s", dpt_last_error());
    eo->pin.smt = o->smt;
    eo->threads = threads;
    eo->seed = o->seed;
    eo->init = o->init;
    eo->leaves = o->deterministic;
    eo->reduce = (dpt_reduce)o->reduce;
    eo->batching_local = o->batching_local;
    eo->overlap = (dpt_overlap)o->overlap;
    eo->balance = (dpt_balance)o->balance;
    eo->domain = (dpt_domain_level)o->domain;
    eo->split = (dpt_split)o->split;
    eo->shuffle = o->shuffle < 0 ? 1 : o->shuffle;
    eo->inject_slowdown = o->inject_slowdown;
    return 0;
}
