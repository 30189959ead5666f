/* dpt train: flags -> a run spec (dpt/run.h) -> one run, printing each
 * epoch's loss, speed and metrics as it ends, then the final metrics, the
 * phase breakdown and optionally JSON, a trace and the model. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/job.h"
#include "cli/mpi_cli.h"
#include "cli/outpath.h"
#include "cli/train_opts.h"
#include "cli/predict_cli.h"
#include "dpt/checkpoint.h"
#include "dpt/engine.h"
#include "dpt/error.h"
#include "dpt/io.h"
#include "dpt/modelfile.h"
#include "dpt/report.h"
#include "dpt/run.h"
#include "dpt/topo.h"

static const char *const usage_text[] = {
    "usage: dpt train (--data FILE | --synth KIND:k=v,... | --workload NAME) [flags]\n"
    "Trains a model data-parallel. Prints a header line (model, data, optimizer,\n"
    "engine), one line per epoch (epoch, loss: mean over the epoch's steps, seconds,\n"
    "samples/s, then the model's loss/acc/r2 on the training set and on the\n"
    "held-out set after the epoch), a final line, the per-epoch phase breakdown,\n"
    "and, with a target, when it was reached; see \"Reading the output\" in README.md.\n"
    "Flags default as shown; a --workload or --config sets new defaults.\n",
    CLI_DATA_HELP,
    CLI_MODEL_HELP,
    CLI_OPTIM_HELP "  --warmup STEPS       learning-rate warm-up steps (default 0)\n",
    CLI_ENGINE_HELP
    "  --threads N          worker threads (default: one per physical core)\n"
    "  --pin compact|scatter|numa|none|list:0,2-5  thread placement (default: compact for\n"
    "                       compute-bound models, scatter for bandwidth-bound ones)\n",
    "output:\n"
    "  --json FILE          the run as dpt-train/1 JSON: config (every flag that\n"
    "                       decides the bits), per-epoch history, final metrics\n"
    "                       (default none; - for stdout)\n"
    "  --config FILE        rerun the configuration of a --json file; flags given\n"
    "                       beside it override it (default none)\n"
    "  --trace FILE         CSV: every step of every thread (default none)\n"
    "  --eval-every N       the model's metrics on the training and held-out sets\n"
    "                       after every Nth epoch and the last; 0: at the end only\n"
    "                       (default 1; each is a forward pass over both sets)\n"
    "  --quiet              only the final line (default off)\n"
    "  --save MODEL         the trained model (default none)\n"
    "  --init-from MODEL    start from a saved model, its architecture too (default none)\n"
    "checkpoints:\n"
    "  --checkpoint FILE    a checkpoint at the end, on SIGINT/SIGTERM/SIGHUP and\n"
    "                       every --checkpoint-every (default none)\n"
    "  --checkpoint-every N|Ns  every N epochs or N seconds, at epoch ends (default none)\n"
    "  --resume FILE        continue a checkpoint's run: the same flags, bit for bit\n"
    "                       (default none)\n"
    "early stop:\n"
    "  --save-best MODEL    the epoch of least validation loss; needs --val (default none)\n"
    "  --patience N         stop after N epochs without a better validation loss\n"
    "                       (default none)\n"
    "  --help               this text\n",
    NULL};

/* The per-step trace: one CSV line per thread and step. */
static void on_trace(const dpt_step_record *r, size_t n, void *ud)
{
    FILE *f = ud;
    for (size_t i = 0; i < n; i++, r++)
        fprintf(f, "%d,%ld,%d,%zu,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n", r->epoch, r->step, r->thread,
                r->rows, r->t.shuffle, r->t.compute, r->t.wait, r->t.reduce, r->t.update,
                r->t.comm);
}

typedef struct train_ctx {
    int quiet, live, epochs_total;
    double load[3]; /* /proc/loadavg before the run (NAN: unknown), as bench records it */
    size_t rows;
    const char *eval_name; /* "test" or "val" when there is a held-out set */
    json_t *epochs;
    /* --save-best and --patience, on the validation loss */
    const char *cmd, *best_path, *init_path;
    int patience, rank0;
    dpt_run *run;
    const cli_job *job;
    double best_loss;
    int best_epoch, stopped_early, failed;
    /* --checkpoint: every ck_epochs epochs or ck_secs seconds */
    const char *ck_path;
    const dpt_run_spec *spec;
    int ck_epochs;
    double ck_secs, ck_last;
    int eval_every; /* --eval-every */
} train_ctx;

/* The signal that asked the run to stop (0: none). SA_RESETHAND puts the
 * default action back, so a second one ends the process at once. */
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

static const char *signal_name(int sig)
{
    return sig == SIGINT    ? "SIGINT"
           : sig == SIGTERM ? "SIGTERM"
           : sig == SIGHUP  ? "SIGHUP"
                            : "a signal";
}

/* Temporary files of the atomic writer (".NAME.tmp.PID.XXXXXX", dpt/file.h)
 * beside path whose process is gone: a run killed while saving left them. */
static void remove_stale_temps(const char *path)
{
    if (!path || !strcmp(path, "-")) return;
    const char *slash = strrchr(path, '/');
    char dir[4096], prefix[512];
    if (slash)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path + 1), path);
    else
        snprintf(dir, sizeof dir, ".");
    snprintf(prefix, sizeof prefix, ".%s.tmp.", slash ? slash + 1 : path);
    DIR *d = opendir(dir);
    if (!d) return;
    const size_t pl = strlen(prefix);
    for (struct dirent *de; (de = readdir(d));) {
        if (strncmp(de->d_name, prefix, pl)) continue;
        char *end;
        long pid = strtol(de->d_name + pl, &end, 10);
        if (pid <= 0 || *end != '.' || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == -1 && errno == ESRCH) unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

/* --resume FILE found anywhere in argv: the checkpoint is loaded first and
 * its settings become the defaults, as a --workload's do, so that the
 * flags given override them (and a difference is then refused). 0 or the
 * exit status after printing. */
static int resume_preset(const char *cmd, cli_job *j, dpt_checkpoint *ck, int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (!strcmp(argv[i], "--resume") && i + 1 < argc) path = argv[i + 1];
        if (!strncmp(argv[i], "--resume=", 9)) path = argv[i] + 9;
    }
    if (!path) return 0;
    if (dpt_checkpoint_load(path, ck)) return cli_fail(cmd, "--resume: %s", dpt_last_error());
    cli_train_opts *t = &j->to;
    t->model = ck->model.spec;
    t->model.inputs = 0; /* from the data, then checked */
    t->model.classes = 0;
    t->model_set = 1;
    t->hidden_set = t->loss_set = t->model.kind == DPT_MODEL_MLP;
    t->opt = ck->opt;
    t->batch_set = ck->opt.kind != DPT_OPT_GD;
    t->momentum_set = dpt_optim_has_velocity(&ck->opt);
    t->epochs = ck->epochs_total;
    t->seed = j->data.seed = ck->seed;
    t->shuffle = ck->shuffle;
    t->init = (dpt_init)ck->init;
    t->deterministic = ck->leaves;
    t->reduce = ck->reduce;
    t->batching_local = ck->batching_local;
    t->balance = ck->balance;
    t->threads = ck->threads;
    return 0;
}

/* --config FILE found anywhere in argv: the "config" block of a train
 * --json file (config_json), each key back into a flag, placed before the
 * command line's own flags so that those override it. *nargv is argv when
 * there is none; else malloc'd, its strings in *store (free both). 0 or
 * the exit status after printing. */
static int config_argv(const char *cmd, int argc, char **argv, int *nargc, char ***nargv,
                       char ***store, int *nstore)
{
    const char *path = NULL;
    *nargc = argc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (!strcmp(argv[i], "--config") && i + 1 < argc) path = argv[i + 1];
        if (!strncmp(argv[i], "--config=", 9)) path = argv[i] + 9;
    }
    if (!path) {
        *nargv = argv;
        return 0;
    }
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (!root) return cli_fail(cmd, "--config: %s:%d: %s", path, err.line, err.text);
    json_t *cf = json_object_get(root, "config");
    if (!json_is_object(cf)) {
        json_decref(root);
        return cli_fail(cmd,
                        "--config: %s has no \"config\" object (write one with dpt train "
                        "--json)",
                        path);
    }
    const size_t n = json_object_size(cf);
    char **av = calloc((size_t)argc + n + 1, sizeof *av), **st = calloc(n + 1, sizeof *st);
    int k = 0, m = 0, rc = 0;
    if (!av || !st) rc = cli_fail(cmd, "out of memory");
    const char *key;
    json_t *v;
    if (!rc) av[k++] = argv[0];
    json_object_foreach(cf, key, v)
    {
        if (rc) break;
        char buf[4200];
        if (json_is_true(v))
            snprintf(buf, sizeof buf, "--%s", key);
        else if (json_is_false(v) || json_is_null(v))
            continue;
        else if (json_is_string(v))
            snprintf(buf, sizeof buf, "--%s=%s", key, json_string_value(v));
        else if (json_is_integer(v))
            snprintf(buf, sizeof buf, "--%s=%lld", key, (long long)json_integer_value(v));
        else if (json_is_real(v))
            snprintf(buf, sizeof buf, "--%s=%.17g", key, json_real_value(v));
        else {
            rc = cli_fail(cmd, "--config: %s: config.%s is not a flag's value", path, key);
            break;
        }
        if (!(st[m] = strdup(buf))) rc = cli_fail(cmd, "out of memory");
        av[k++] = st[m++];
    }
    json_decref(root);
    for (int i = 1; !rc && i < argc; i++) av[k++] = argv[i];
    if (rc) {
        for (int i = 0; i < m; i++) free(st[i]);
        free(st);
        free(av);
        return rc;
    }
    *nargc = k;
    *nargv = av;
    *store = st;
    *nstore = m;
    return 0;
}

/* The 1-, 5- and 15-minute load averages (NAN where unknown). */
static void read_load(double load[3])
{
    load[0] = load[1] = load[2] = NAN;
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return;
    if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = NAN;
    fclose(f);
}

/* The run's checkpoint where it stands (between epochs). */
static int write_checkpoint(const train_ctx *c, const char *path)
{
    dpt_checkpoint ck;
    dpt_checkpoint_of_run(&ck, c->run, c->spec, &c->job->st);
    return dpt_checkpoint_save(path, &ck);
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* --checkpoint-every N or Ns: whether this epoch's end is due. */
static int checkpoint_due(train_ctx *c, int epoch)
{
    if (c->ck_epochs) return epoch % c->ck_epochs == 0;
    if (c->ck_secs > 0) {
        double now = mono_now();
        if (now - c->ck_last < c->ck_secs) return 0;
        c->ck_last = now;
        return 1;
    }
    return 0;
}

/* After an epoch with a validation loss: keep the best model on disk (a
 * file that is replaced only once complete) and count the epochs since. */
static int track_best(train_ctx *c, const dpt_run_epoch *ep)
{
    const int epoch = ep->stats->epoch;
    if (ep->test.loss < c->best_loss) {
        c->best_loss = ep->test.loss;
        c->best_epoch = epoch;
        if (c->best_path && c->rank0 &&
            dpt_model_save(c->best_path, dpt_run_model(c->run),
                           dpt_engine_params(dpt_run_engine(c->run)), &c->job->st)) {
            c->failed = cli_fail(c->cmd, "--save-best: %s", dpt_last_error());
            return 1;
        }
    } else if (c->patience && epoch - c->best_epoch >= c->patience) {
        c->stopped_early = 1;
        return 1;
    }
    return 0;
}

static json_t *metrics_json(const dpt_metrics *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "loss", json_real(m->loss));
    if (!isnan(m->accuracy)) json_object_set_new(o, "accuracy", json_real(m->accuracy));
    if (!isnan(m->mse)) json_object_set_new(o, "mse", json_real(m->mse));
    if (!isnan(m->r2)) json_object_set_new(o, "r2", json_real(m->r2));
    return o;
}

static json_t *phases_json(const dpt_phase_times *p)
{
    return json_pack("{s:f,s:f,s:f,s:f,s:f,s:f}", "compute", p->compute, "reduce", p->reduce,
                     "update", p->update, "wait", p->wait, "shuffle", p->shuffle, "comm", p->comm);
}

static void fprint_metrics(FILE *f, const char *name, const dpt_metrics *m)
{
    fprintf(f, "  %s loss %.6g", name, m->loss);
    if (!isnan(m->accuracy)) fprintf(f, " acc %.4f", m->accuracy);
    if (!isnan(m->r2)) fprintf(f, " r2 %.4f", m->r2);
}

/* Where the report goes: the header, the epoch lines and the final lines
 * share one stream, standard output unless --json - takes it. */
static FILE *rout;

static void print_metrics(const char *name, const dpt_metrics *m)
{
    fprint_metrics(rout, name, m);
}

/* --quiet: the run's result in one line, on standard output unless the
 * trace or the JSON streams there. */
static void print_quiet_result(FILE *f, const char *eval_name, const dpt_run_result *res)
{
    fputs("final:", f);
    fprint_metrics(f, "train", &res->train);
    if (eval_name) fprint_metrics(f, eval_name, &res->test);
    fprintf(f, " | %d epochs, %.3f s training\n", res->epochs, res->seconds);
}

/* The live line on a terminal: redrawn in place, erased before the
 * epoch's own line is printed. */
static void on_progress(const dpt_progress *p, void *ud)
{
    const train_ctx *c = ud;
    double frac = (double)p->step / (double)p->steps;
    double eta = p->seconds / frac * (1 - frac) + (c->epochs_total - p->epoch) * p->seconds / frac;
    double sps = (double)c->rows * frac / (p->seconds > 0 ? p->seconds : 1e-9);
    fprintf(stderr, "\r\033[Kepoch %d/%d  step %ld/%ld  loss %.5g  %.3g samples/s  ETA %.0f s",
            p->epoch, c->epochs_total, p->step, p->steps, p->loss, sps, eta);
    fflush(stderr);
}

/* An epoch and the metrics of the model after it: a line and a JSON entry. */
static int on_epoch(const dpt_run_epoch *ep, void *ud)
{
    train_ctx *c = ud;
    const dpt_epoch_stats *st = ep->stats;
    if (c->live) fputs("\r\033[K", stderr);
    if (!c->quiet) {
        fprintf(rout, "epoch %3d  loss %.6g  %.4f s  %.4g samples/s", st->epoch, st->loss,
                st->seconds, st->samples_per_second);
        if (ep->evaluated) {
            print_metrics("train", &ep->train);
            if (c->eval_name) print_metrics(c->eval_name, &ep->test);
        }
        fputc('\n', rout);
        fflush(rout);
    }
    json_t *je = json_pack("{s:i,s:f,s:f,s:f,s:o,s:f}", "epoch", st->epoch, "loss", st->loss,
                           "seconds", st->seconds, "samples_per_second", st->samples_per_second,
                           "phases", phases_json(&st->mean), "imbalance", st->imbalance);
    if (ep->evaluated) json_object_set_new(je, "train", metrics_json(&ep->train));
    json_object_set_new(
        je, "rows_per_thread",
        json_pack("{s:I,s:I}", "min", (json_int_t)st->rows_min, "max", (json_int_t)st->rows_max));
    if (c->eval_name && ep->evaluated)
        json_object_set_new(je, c->eval_name, metrics_json(&ep->test));
    json_array_append_new(c->epochs, je);
    if (c->ck_path && c->rank0 && checkpoint_due(c, st->epoch) && write_checkpoint(c, c->ck_path)) {
        c->failed = cli_fail(c->cmd, "--checkpoint: %s", dpt_last_error());
        return 1;
    }
    return c->best_path || c->patience ? track_best(c, ep) : 0;
}

/* A model file to start from (--init-from): its architecture, parameters
 * and the standardization its weights were trained with. */
typedef struct init_model {
    dpt_model m;
    float *w;
    dpt_standardizer st;
} init_model;

/* The file's architecture must be the one the flags ask for. */
static int check_init(const char *cmd, const char *path, const init_model *im,
                      const dpt_model *want)
{
    char a[128], b[128];
    dpt_model_describe(&im->m, a, sizeof a);
    dpt_model_describe(want, b, sizeof b);
    if (strcmp(a, b) || im->m.n_params != want->n_params)
        return cli_fail(cmd, "--init-from: %s holds a %s, the flags ask for a %s", path, a, b);
    return 0;
}

/* The weights of a model trained on standardized data expect inputs
 * standardized the same way: its statistics, not new ones, apply to every
 * set, and are saved with the model again. */
static int apply_init_standardizer(const char *cmd, cli_job *job, init_model *im)
{
    dpt_dataset *sets[3] = {&job->train, &job->test, &job->val};
    for (int i = 0; i < 3; i++)
        if (sets[i]->n && dpt_standardizer_apply(&im->st, sets[i], 0))
            return cli_fail(cmd, "--init-from: %s", dpt_last_error());
    dpt_standardizer_free(&job->st);
    job->st = im->st;
    memset(&im->st, 0, sizeof im->st);
    return 0;
}

/* The run header, on the report's stream: model, data, optimizer, engine. */
static void print_header(const cli_job *job, const dpt_run_spec *s, dpt_engine *e, int threads)
{
    const cli_train_opts *tp = &job->to;
    const dpt_dataset *trainp = &job->train;
    const int ranks = cli_mpi_size();
    static const char *const optn[] = {"gd", "sgd", "momentum", "nesterov"};
    char desc[128];
    dpt_model_describe(&job->model, desc, sizeof desc);
    fprintf(rout, "dpt train: %s, %zu params | %zu rows x %zu | %s lr %g", desc,
            job->model.n_params, trainp->n, trainp->d, optn[tp->opt.kind], tp->opt.lr);
    if (tp->opt.kind != DPT_OPT_GD) fprintf(rout, " batch %zu", tp->opt.batch);
    fprintf(rout, " | %d threads", threads);
    if (ranks > 1) fprintf(rout, " x %d ranks", ranks);
    fprintf(rout, ", pin %s, isa %s%s", tp->pin, dpt_engine_isa(e),
            tp->deterministic ? ", deterministic" : "");
    if (tp->pin_why[0]) fprintf(rout, " (default pin: %s)", tp->pin_why);
    dpt_domain_level dl;
    const int nd = dpt_engine_domains(e, &dl);
    int pkl;
    const int groups = dpt_engine_domain_groups(e, &pkl);
    if (nd > 1)
        fprintf(rout, ", %d domains (%s%s%s)", nd, dpt_domain_name(dl), groups ? ", groups" : "",
                pkl ? ", summed per package first" : "");
    if (dpt_engine_split(e) == DPT_SPLIT_LAYER) fprintf(rout, ", layer split");
    if (trainp->part) {
        /* the same line on every rank: the range over all ranks */
        size_t lo = SIZE_MAX, hi = 0;
        for (int r = 0; r < ranks; r++) {
            dpt_row_range *rr = NULL;
            size_t k = 0, rows = 0;
            if (dpt_engine_rank_rows(trainp->n, &s->opt, 0, tp->deterministic, r, ranks, &rr, &k) ==
                0)
                for (size_t i = 0; i < k; i++) rows += rr[i].hi - rr[i].lo;
            free(rr);
            lo = rows < lo ? rows : lo;
            hi = rows > hi ? rows : hi;
        }
        if (lo == hi)
            fprintf(rout, " | per-rank loading: %zu of %zu rows per rank", lo, trainp->n);
        else
            fprintf(rout, " | per-rank loading: %zu-%zu of %zu rows per rank", lo, hi, trainp->n);
    }
    fputc('\n', rout);
    if (dpt_engine_warning(e)) fprintf(stderr, "dpt train: warning: %s\n", dpt_engine_warning(e));
}

static void print_final(const cli_job *job, const train_ctx *c, const dpt_run_result *res)
{
    const int n = res->epochs > 0 ? res->epochs : 1, ranks = cli_mpi_size();
    const double sps = (double)job->train.n * n / res->seconds;
    fprintf(rout, "final:");
    print_metrics("train", &res->train);
    if (c->eval_name) print_metrics(c->eval_name, &res->test);
    fprintf(rout, " | %.4g samples/s, %.3f s training\n", sps, res->seconds);
    fprintf(rout,
            "per epoch: compute %.4g s, reduce %.4g s, update %.4g s, wait %.4g s, shuffle "
            "%.4g s; imbalance %.3f (max/mean compute); rows per thread %zu-%zu\n",
            res->phases.compute, res->phases.reduce, res->phases.update, res->phases.wait,
            res->phases.shuffle, res->imbalance, res->rows_min, res->rows_max);
    if (ranks > 1) {
        double steps = res->steps > 0 ? (double)res->steps : 1;
        fprintf(rout,
                "across %d ranks: comm %.4g s per epoch, %.4g ms per step, %.4g MB sent per "
                "step by each rank\n",
                ranks, res->phases.comm, 1e3 * res->phases.comm / steps,
                res->comm_bytes / steps / 1e6);
    }
}

/* Every setting that decides the run's bits, keyed by the flag that sets
 * it (without "--"): `dpt train --config FILE` gives them back as flags.
 * Outputs (--json, --save, --trace, --checkpoint) are not settings. */
static json_t *config_json(const cli_job *job, const train_ctx *c, int threads, const char *isa)
{
    static const char *const models[] = {"linear", "logistic", "softmax", "mlp"};
    static const char *const acts[] = {"relu", "tanh", "sigmoid"};
    static const char *const losses[] = {"mse", "bce", "ce"};
    static const char *const optn[] = {"gd", "sgd", "momentum", "nesterov"};
    static const char *const inits[] = {"uniform", "zero"};
    static const char *const formats[] = {"auto", "csv", "svmlight", "idx", "dptb"};
    const cli_train_opts *t = &job->to;
    const dpt_optim_spec *o = &t->opt;
    const cli_data_opts *d = &job->data;
    json_t *cf = json_object();
    /* the data */
    if (job->workload) json_object_set_new(cf, "workload", json_string(job->workload->name));
    if (d->synth) json_object_set_new(cf, "synth", json_string(d->synth));
    if (d->data) json_object_set_new(cf, "data", json_string(d->data));
    if (d->labels) json_object_set_new(cf, "labels", json_string(d->labels));
    if (d->test) json_object_set_new(cf, "test", json_string(d->test));
    if (d->test_labels) json_object_set_new(cf, "test-labels", json_string(d->test_labels));
    if (!d->synth) {
        const dpt_load_opts *l = &d->load;
        json_object_set_new(cf, "format", json_string(formats[l->format]));
        json_object_set_new(cf, "header",
                            json_string(l->header < 0 ? "auto"
                                        : l->header   ? "yes"
                                                      : "no"));
        char col[32];
        if (l->label_col == DPT_LABEL_COL_LAST)
            snprintf(col, sizeof col, "last");
        else if (l->label_col == DPT_LABEL_COL_NONE)
            snprintf(col, sizeof col, "none");
        else
            snprintf(col, sizeof col, "%ld", l->label_col);
        json_object_set_new(cf, "label-col", json_string(col));
        if (l->delimiter) {
            char dl[2] = {l->delimiter, 0};
            json_object_set_new(cf, "delimiter", json_string(l->delimiter == '\t' ? "tab" : dl));
        }
        if (l->features) json_object_set_new(cf, "features", json_integer((json_int_t)l->features));
    }
    if (d->classes) json_object_set_new(cf, "classes", json_integer(d->classes));
    if (d->val > 0) json_object_set_new(cf, "val", json_real(d->val));
    json_object_set_new(cf, "standardize", json_boolean(d->standardize));
    /* the model */
    json_object_set_new(cf, "model", json_string(models[job->model.spec.kind]));
    if (job->model.spec.kind == DPT_MODEL_MLP) {
        char h[256] = "";
        for (int l = 0; l < job->model.spec.n_hidden; l++)
            snprintf(h + strlen(h), sizeof h - strlen(h), "%s%zu", l ? "," : "",
                     job->model.spec.hidden[l]);
        json_object_set_new(cf, "hidden", json_string(h));
        json_object_set_new(cf, "act", json_string(acts[job->model.spec.act]));
        json_object_set_new(cf, "loss", json_string(losses[job->model.spec.loss]));
    } else {
        json_object_set_new(cf, "no-bias", json_boolean(!job->model.spec.bias));
    }
    json_object_set_new(cf, "init", json_string(inits[t->init]));
    if (c->init_path) json_object_set_new(cf, "init-from", json_string(c->init_path));
    /* the optimizer */
    json_object_set_new(cf, "opt", json_string(optn[o->kind]));
    json_object_set_new(cf, "lr", json_real(o->lr));
    json_object_set_new(cf, "batch", json_integer((json_int_t)o->batch));
    if (dpt_optim_has_velocity(o)) json_object_set_new(cf, "momentum", json_real(o->momentum));
    json_object_set_new(cf, "weight-decay", json_real(o->weight_decay));
    char sched[64];
    if (o->schedule == DPT_LR_STEP)
        snprintf(sched, sizeof sched, "step:%ld:%.17g", (long)o->step_every, o->step_factor);
    else
        snprintf(sched, sizeof sched, "%s", o->schedule == DPT_LR_COSINE ? "cosine" : "const");
    json_object_set_new(cf, "lr-schedule", json_string(sched));
    json_object_set_new(cf, "warmup", json_integer((json_int_t)o->warmup));
    json_object_set_new(cf, "clip", json_real(o->clip_norm));
    json_object_set_new(cf, "epochs", json_integer(t->epochs));
    json_object_set_new(cf, "seed", json_integer((json_int_t)t->seed));
    json_object_set_new(cf, "shuffle", json_string(t->shuffle == 0 ? "none" : "epoch"));
    if (t->target_loss > 0) json_object_set_new(cf, "target-loss", json_real(t->target_loss));
    if (t->target_accuracy > 0)
        json_object_set_new(cf, "target-accuracy", json_real(t->target_accuracy));
    if (c->patience) json_object_set_new(cf, "patience", json_integer(c->patience));
    /* which epochs a target is checked on, and what the epoch lines show */
    if (c->eval_every != 1) json_object_set_new(cf, "eval-every", json_integer(c->eval_every));
    /* the engine */
    static const char *const reds[] = {"tree", "scatter"};
    static const char *const ovs[] = {"auto", "off", "on"};
    json_object_set_new(cf, "threads", json_integer(threads));
    json_object_set_new(cf, "pin", json_string(t->pin));
    json_object_set_new(cf, "smt", json_boolean(t->smt));
    if (t->deterministic) json_object_set_new(cf, "leaves", json_integer(t->deterministic));
    json_object_set_new(cf, "reduce", json_string(reds[t->reduce]));
    json_object_set_new(cf, "batching", json_string(t->batching_local ? "local" : "global"));
    json_object_set_new(cf, "comm-overlap", json_string(ovs[t->overlap]));
    json_object_set_new(cf, "balance",
                        json_string(t->balance == DPT_BALANCE_ADAPTIVE ? "adaptive" : "static"));
    json_object_set_new(cf, "isa", json_string(isa));
    return cf;
}

/* What --target-loss/--target-accuracy asked and when it was reached. */
static json_t *target_json(const cli_job *job, const train_ctx *c, const dpt_run_result *res)
{
    json_t *t = json_object();
    if (job->to.target_loss > 0) json_object_set_new(t, "loss", json_real(job->to.target_loss));
    if (job->to.target_accuracy > 0)
        json_object_set_new(t, "accuracy", json_real(job->to.target_accuracy));
    json_object_set_new(t, "on", json_string(c->eval_name ? c->eval_name : "train"));
    json_object_set_new(t, "reached", json_boolean(res->target_reached));
    json_object_set_new(t, "epoch",
                        res->target_reached ? json_integer(res->target_epoch) : json_null());
    json_object_set_new(t, "seconds",
                        res->target_reached ? json_real(res->target_seconds) : json_null());
    return t;
}

/* "loss <= 0.3 on val" for the lines that report the target. */
static void target_words(const cli_job *job, const train_ctx *c, char *buf, size_t cap)
{
    const cli_train_opts *t = &job->to;
    int n = 0;
    if (t->target_loss > 0) n = snprintf(buf, cap, "loss <= %g", t->target_loss);
    if (t->target_accuracy > 0)
        n += snprintf(buf + n, cap - (size_t)n, "%saccuracy >= %g", n ? " and " : "",
                      t->target_accuracy);
    snprintf(buf + n, cap - (size_t)n, " on %s", c->eval_name ? c->eval_name : "train");
}

static void print_target(FILE *f, const cli_job *job, const train_ctx *c, const dpt_run_result *res)
{
    if (!(job->to.target_loss > 0 || job->to.target_accuracy > 0)) return;
    char w[128];
    target_words(job, c, w, sizeof w);
    if (res->target_reached)
        fprintf(f, "target %s: reached after epoch %d, %.4g s of training\n", w, res->target_epoch,
                res->target_seconds);
    else
        fprintf(f, "target %s: not reached in %d epochs (%.4g s of training)\n", w, res->epochs,
                res->seconds);
}

static int write_json(const char *cmd, const char *path, const cli_job *job, train_ctx *c,
                      const dpt_run_result *res, dpt_engine *e, int threads, const char *diverged,
                      const char *interrupted)
{
    const cli_train_opts *tp = &job->to;
    const dpt_metrics *fin = &res->train, *fte = &res->test;
    json_t *final = json_object();
    json_object_set_new(final, "train_loss", json_real(fin->loss));
    if (!isnan(fin->accuracy))
        json_object_set_new(final, "train_accuracy", json_real(fin->accuracy));
    if (!isnan(fin->r2)) json_object_set_new(final, "train_r2", json_real(fin->r2));
    if (c->eval_name) {
        char key[32];
        snprintf(key, sizeof key, "%s_loss", c->eval_name);
        json_object_set_new(final, key, json_real(fte->loss));
        if (!isnan(fte->accuracy)) {
            snprintf(key, sizeof key, "%s_accuracy", c->eval_name);
            json_object_set_new(final, key, json_real(fte->accuracy));
        }
        if (!isnan(fte->mse)) {
            snprintf(key, sizeof key, "%s_mse", c->eval_name);
            json_object_set_new(final, key, json_real(fte->mse));
            snprintf(key, sizeof key, "%s_r2", c->eval_name);
            json_object_set_new(final, key, json_real(fte->r2));
        }
    }
    char desc[128];
    dpt_model_describe(&job->model, desc, sizeof desc);
    const int n = res->epochs > 0 ? res->epochs : 1;
    json_t *root =
        json_pack("{s:s,s:s,s:i,s:s,s:s,s:o,s:o,s:f,s:f,s:o,s:f}", "schema", "dpt-train/1", "model",
                  desc, "threads", threads, "pin", tp->pin, "isa", dpt_engine_isa(e), "epochs",
                  c->epochs, "final", final, "samples_per_second",
                  res->seconds > 0 ? (double)job->train.n * n / res->seconds : 0.0, "seconds",
                  res->seconds, "phases", phases_json(&res->phases), "imbalance", res->imbalance);
    c->epochs = NULL;
    json_object_set_new(root, "ranks", json_integer(cli_mpi_size()));
    if (!isnan(c->load[0]))
        json_object_set_new(root, "load_average",
                            json_pack("[f,f,f]", c->load[0], c->load[1], c->load[2]));
    json_object_set_new(root, "balance",
                        json_string(tp->balance == DPT_BALANCE_ADAPTIVE ? "adaptive" : "static"));
    json_object_set_new(root, "config", config_json(job, c, threads, dpt_engine_isa(e)));
    json_object_set_new(root, "rows_read_by_rank0",
                        json_integer((json_int_t)dpt_dataset_rows_held(&job->train)));
    json_object_set_new(root, "comm_bytes_per_epoch", json_real(res->comm_bytes));
    dpt_domain_level dl;
    const int nd = dpt_engine_domains(e, &dl);
    int pkl;
    const int groups = dpt_engine_domain_groups(e, &pkl);
    json_object_set_new(root, "domains",
                        json_pack("{s:s, s:i, s:b, s:b}", "level", dpt_domain_name(dl), "count", nd,
                                  "groups", groups, "package_level", pkl));
    json_object_set_new(root, "split", json_string(dpt_split_name(dpt_engine_split(e))));
    if (res->moves.steps > 0)
        json_object_set_new(root, "moves", dpt_step_summary_json(&res->moves));
    if (diverged) json_object_set_new(root, "diverged", json_string(diverged));
    if (interrupted) json_object_set_new(root, "interrupted", json_string(interrupted));
    if (tp->target_loss > 0 || tp->target_accuracy > 0)
        json_object_set_new(root, "target", target_json(job, c, res));
    if (c->best_epoch) {
        json_object_set_new(root, "best_epoch", json_integer(c->best_epoch));
        json_object_set_new(root, "best_val_loss", json_real(c->best_loss));
        json_object_set_new(root, "stopped_early", json_boolean(c->stopped_early));
    }
    int rc = dpt_json_write_atomic(root, path) ? cli_fail(cmd, "%s", dpt_last_error()) : 0;
    json_decref(root);
    return rc;
}

/* The training loss of the model in path when it is this run's kind of
 * model (architecture and standardization), else NAN: evaluated on the
 * engine's own buffer, which gets the current parameters back after. */
static double loss_of_file(const char *path, const cli_job *job, dpt_engine *e)
{
    dpt_model fm;
    dpt_standardizer fst;
    float *wf = NULL, *keep = NULL;
    double loss = NAN;
    if (access(path, F_OK) || dpt_model_load(path, &fm, &wf, &fst)) return NAN;
    char a[128], b[128];
    dpt_model_describe(&fm, a, sizeof a);
    dpt_model_describe(&job->model, b, sizeof b);
    const size_t np = job->model.n_params, d = fst.d;
    int same = !strcmp(a, b) && fm.n_params == np && d == job->st.d &&
               (!d || (!memcmp(fst.mean, job->st.mean, d * sizeof(float)) &&
                       !memcmp(fst.scale, job->st.scale, d * sizeof(float))));
    dpt_metrics m;
    if (same && (keep = malloc(np * sizeof *keep))) {
        memcpy(keep, dpt_engine_params(e), np * sizeof *keep);
        memcpy(dpt_engine_params(e), wf, np * sizeof *wf);
        if (!dpt_engine_evaluate(e, &job->train, &m)) loss = m.loss;
        memcpy(dpt_engine_params(e), keep, np * sizeof *keep);
    }
    free(keep);
    free(wf);
    dpt_standardizer_free(&fst);
    return loss;
}

/* After a divergence the engine holds the last finite model. It goes to
 * --save unless that file already holds a model of this run's kind that
 * fits the training data better; --json gets the epochs so far and why. */
static void after_divergence(const char *cmd, const char *why, const char *save_path,
                             const char *json_path, cli_job *job, train_ctx *ctx,
                             dpt_run_result *res, dpt_engine *e, int threads)
{
    if (dpt_engine_evaluate(e, &job->train, &res->train) ||
        (job->test.n && dpt_engine_evaluate(e, &job->test, &res->test)) ||
        (!job->test.n && job->val.n && dpt_engine_evaluate(e, &job->val, &res->test)) ||
        cli_mpi_rank() != 0)
        return;
    if (save_path) {
        double old = loss_of_file(save_path, job, e);
        if (old <= res->train.loss)
            fprintf(stderr,
                    "dpt train: kept %s: its training loss %.6g is no worse than the last finite "
                    "model's %.6g\n",
                    save_path, old, res->train.loss);
        else if (dpt_model_save(save_path, &job->model, dpt_engine_params(e), &job->st) == 0)
            fprintf(stderr, "dpt train: saved the last finite model to %s\n", save_path);
    }
    if (json_path) write_json(cmd, json_path, job, ctx, res, e, threads, why, NULL);
}

int dpt_cmd_train(int argc, char **argv)
{
    const char *cmd = "train";
    cli_job job;
    cli_job_init(&job);
    cli_train_opts *const tp = &job.to;
    const char *json_path = NULL, *save_path = NULL, *init_path = NULL, *trace_path = NULL,
               *resume_path = NULL, *every_text = NULL;
    dpt_checkpoint ck = {0};
    char *intr_path = NULL;
    dpt_out_file trace = {0};
    int quiet = 0, rc = DPT_EXIT_USAGE, have_spec = 0;
    init_model im = {0};
    static const struct option opts[] = {CLI_JOB_OPTIONS,
                                         {"json", required_argument, 0, 'j'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"trace", required_argument, 0, 't'},
                                         {"save", required_argument, 0, 's'},
                                         {"init-from", required_argument, 0, 'i'},
                                         {"save-best", required_argument, 0, 'b'},
                                         {"patience", required_argument, 0, 'p'},
                                         {"checkpoint", required_argument, 0, 'c'},
                                         {"checkpoint-every", required_argument, 0, 'E'},
                                         {"eval-every", required_argument, 0, 'v'},
                                         {"resume", required_argument, 0, 'r'},
                                         {"config", required_argument, 0, 'C'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    dpt_run *run = NULL;
    dpt_run_spec spec;
    train_ctx ctx = {0};
    int c, nconf = 0;
    char **confv = NULL, **conf_store = NULL;
    ctx.eval_every = 1;
    if ((rc = config_argv(cmd, argc, argv, &argc, &confv, &conf_store, &nconf))) goto done;
    if (confv != argv)
        argv = confv;
    else
        confv = NULL;
    if ((rc = cli_job_preset(cmd, &job, argc, argv)) ||
        (rc = resume_preset(cmd, &job, &ck, argc, argv)))
        goto done;
    rc = DPT_EXIT_USAGE;
    optind = 1;
    while ((c = cli_getopt(cmd, argc, argv, opts)) != -1) {
        if (c == '?') goto done;
        int r = cli_job_flag(cmd, &job, c, optarg);
        if (r < 0) goto done;
        if (r > 0) continue;
        switch (c) {
        case 'j':
            json_path = optarg;
            break;
        case 'q':
            quiet = 1;
            break;
        case 't':
            trace_path = optarg;
            break;
        case 's':
            save_path = optarg;
            break;
        case 'i':
            init_path = optarg;
            break;
        case 'b':
            ctx.best_path = optarg;
            break;
        case 'p': {
            long v;
            if (cli_long(cmd, "patience", optarg, 1, 1000000, &v)) goto done;
            ctx.patience = (int)v;
            break;
        }
        case 'c':
            ctx.ck_path = optarg;
            break;
        case 'E': {
            char *end;
            double v = strtod(optarg, &end);
            every_text = optarg;
            if (end == optarg || !(v > 0) || !isfinite(v) || (*end && strcmp(end, "s"))) {
                rc = cli_usage_error(cmd,
                                     "--checkpoint-every: '%s' is neither a number of epochs (N) "
                                     "nor of seconds (Ns)",
                                     optarg);
                goto done;
            }
            if (*end) {
                ctx.ck_secs = v;
            } else if (v != floor(v) || v > 1e9) {
                rc = cli_usage_error(cmd, "--checkpoint-every: '%s' epochs is not a whole number",
                                     optarg);
                goto done;
            } else {
                ctx.ck_epochs = (int)v;
            }
            break;
        }
        case 'v': {
            long v;
            if (cli_long(cmd, "eval-every", optarg, 0, 1000000000, &v)) goto done;
            ctx.eval_every = (int)v;
            break;
        }
        case 'r':
            resume_path = optarg;
            break;
        case 'C': /* applied by config_argv */
            break;
        case 'h':
            cli_help(usage_text);
            rc = 0;
            goto done;
        default:
            goto done;
        }
    }
    if (optind < argc) {
        rc = cli_usage_error(cmd, "unexpected argument '%s' (see dpt train --help)", argv[optind]);
        goto done;
    }
    if (trace_path && !strcmp(trace_path, "-") && !quiet) {
        rc = cli_usage_error(cmd, "--trace -: the epoch lines go to standard output too; add "
                                  "--quiet, or give a file");
        goto done;
    }
    if (trace_path && json_path && !strcmp(trace_path, "-") && !strcmp(json_path, "-")) {
        rc = cli_usage_error(cmd, "--trace - and --json -: only one of them can have standard "
                                  "output; give the other a file");
        goto done;
    }
    if ((ctx.best_path || ctx.patience) && (!(job.data.val > 0) || job.data.test)) {
        rc = cli_usage_error(cmd,
                             "%s needs --val FRACTION and no --test: the best epoch is the "
                             "one of least validation loss",
                             ctx.best_path ? "--save-best" : "--patience");
        goto done;
    }
    if ((ctx.best_path || ctx.patience) && ctx.eval_every != 1) {
        rc = cli_usage_error(cmd,
                             "%s needs the validation loss of every epoch: leave --eval-every "
                             "at 1",
                             ctx.best_path ? "--save-best" : "--patience");
        goto done;
    }
    if (ctx.eval_every == 0 && (job.to.target_loss > 0 || job.to.target_accuracy > 0)) {
        rc = cli_usage_error(cmd, "--eval-every 0 evaluates no epoch before the end, and a target "
                                  "is checked on evaluated epochs: give N >= 1");
        goto done;
    }
    if (every_text && !ctx.ck_path) {
        rc = cli_usage_error(cmd, "--checkpoint-every needs --checkpoint FILE");
        goto done;
    }
    if (resume_path && init_path) {
        rc = cli_usage_error(cmd, "--resume and --init-from: a continued run starts from its "
                                  "checkpoint; give one of them");
        goto done;
    }
    /* every output is checked before the data is even loaded */
    if ((rc = cli_check_output(cmd, "--json", json_path)) ||
        (rc = cli_check_output(cmd, "--save-best", ctx.best_path)) ||
        (rc = cli_check_output(cmd, "--save", save_path)) ||
        (rc = cli_check_output(cmd, "--trace", trace_path)) ||
        (rc = cli_check_output(cmd, "--checkpoint", ctx.ck_path)))
        goto done;
    const char *outs[] = {json_path, ctx.best_path, save_path, trace_path, ctx.ck_path};
    for (size_t i = 0; i < sizeof outs / sizeof outs[0] && cli_mpi_rank() == 0; i++)
        remove_stale_temps(outs[i]);
    if (resume_path) {
        /* loaded by resume_preset; its data was standardized with these statistics: they apply
         * again, as with --init-from */
        im.st = ck.st;
        memset(&ck.st, 0, sizeof ck.st);
    }
    if (init_path && dpt_model_load(init_path, &im.m, &im.w, &im.st)) {
        rc = cli_fail(cmd, "--init-from: %s", dpt_last_error());
        goto done;
    }
    /* the saved statistics, not new ones (apply_init_standardizer) */
    if (im.st.d) job.data.standardize = 0;
    /* no model flags: the architecture is the file's */
    if (init_path && !tp->model_set && !tp->hidden_set && !tp->loss_set) {
        tp->model = im.m.spec;
        tp->model.inputs = 0;
        tp->model_set = 1;
        tp->hidden_set = tp->loss_set = im.m.spec.kind == DPT_MODEL_MLP;
    }
    const int threads = tp->threads ? tp->threads : dpt_topo_physical_cores();
    job.per_rank = 1;
    if ((rc = cli_job_load(cmd, &job, threads))) goto done;
    if (init_path) rc = check_init(cmd, init_path, &im, &job.model);
    if (!rc && im.st.d) rc = apply_init_standardizer(cmd, &job, &im);
    if (!rc && !(rc = cli_job_spec(cmd, &job, threads, &spec))) have_spec = 1;
    const int rank0 = cli_mpi_rank() == 0;
    /* rank 0's threads only, like the phase times; opened now, so a path
     * that cannot be written stops the run before it starts */
    if (!rc && trace_path && rank0 && dpt_out_open(&trace, trace_path))
        rc = cli_fail(cmd, "--trace: %s", dpt_last_error());
    /* every rank is ready, or all stop here */
    if ((rc = cli_mpi_agree(rc))) goto done;

    rout = json_path && !strcmp(json_path, "-") ? stderr : stdout;
    ctx.quiet = quiet;
    ctx.epochs = json_array();
    ctx.epochs_total = tp->epochs;
    ctx.rows = job.train.n;
    ctx.live = !quiet && rank0 && isatty(STDERR_FILENO);
    ctx.eval_name = job.test.n ? "test" : job.val.n ? "val" : NULL;
    ctx.cmd = cmd;
    ctx.init_path = init_path;
    ctx.rank0 = rank0;
    ctx.job = &job;
    ctx.best_loss = INFINITY;
    spec.init_params = im.w;
    if (resume_path && dpt_checkpoint_resume(&ck, &job.model, &spec)) {
        rc = cli_fail(cmd, "--resume %s: %s; give the flags of the run that wrote it", resume_path,
                      dpt_last_error());
        goto done;
    }
    ctx.spec = &spec;
    /* a signal ends the step, then the run: see after the training. Under
     * mpirun the ranks cannot stop together mid-epoch; mpirun ends them. */
    if (cli_mpi_size() == 1) {
        spec.interrupt = &stop_signal;
        catch_signals();
    }
    spec.eval_epochs = ctx.eval_every;
    spec.on_epoch = on_epoch;
    spec.ud = &ctx;
    if (ctx.live) {
        spec.progress = on_progress;
        spec.progress_ud = &ctx;
        spec.progress_interval = 0.25;
    }
    /* every rank makes the run (agreeing inside), then all start from
     * rank 0's parameters */
    if (dpt_run_create(&run, &spec)) {
        rc = cli_fail(cmd, "%s", dpt_last_error());
        goto done;
    }
    dpt_engine *e = dpt_run_engine(run);
    ctx.run = run;
    if (trace.f) {
        if (dpt_engine_set_trace(e, on_trace, trace.f, 0)) {
            rc = cli_fail(cmd, "--trace: %s", dpt_last_error());
            goto done;
        }
        fputs("epoch,step,thread,rows,shuffle_s,compute_s,wait_s,reduce_s,update_s,comm_s\n",
              trace.f);
    }
    if (!quiet) print_header(&job, &spec, e, threads);
    if (!quiet && rank0) cli_predict_warn(cmd, &job, &spec.opt, &spec.engine, threads);
    if (!quiet && spec.resume)
        fprintf(stderr, "dpt train: resuming %s after epoch %d of %d\n", resume_path,
                spec.resume->epochs, spec.epochs);
    if (!quiet && spec.resume && ck.threads != threads && !tp->deterministic)
        fprintf(stderr,
                "dpt train: warning: the checkpoint's run had %d threads, this one %d: the result "
                "is not the bits of an uninterrupted run (see --deterministic)\n",
                ck.threads, threads);
    ctx.ck_last = mono_now(); /* --checkpoint-every Ns counts from here */
    read_load(ctx.load);

    dpt_run_result res;
    int r = dpt_run_train(run, &res);
    if (ctx.failed) { /* --save-best could not write: said already */
        rc = ctx.failed;
        goto done;
    }
    if (r == DPT_EINTERRUPTED) {
        const int sig = stop_signal;
        if (ctx.live) fputs("\r\033[K", stderr);
        const char *path = ctx.ck_path;
        if (!path && save_path && strcmp(save_path, "-") &&
            (intr_path = malloc(strlen(save_path) + 32))) {
            sprintf(intr_path, "%s.interrupted.ckpt", save_path);
            path = intr_path;
        }
        const int done_epochs = (spec.resume ? spec.resume->epochs : 0) + res.epochs;
        if (!path)
            fprintf(stderr,
                    "dpt train: interrupted by %s in epoch %d: no checkpoint written (give "
                    "--checkpoint FILE or --save)\n",
                    signal_name(sig), done_epochs + 1);
        else if (write_checkpoint(&ctx, path))
            fprintf(stderr, "dpt train: interrupted by %s; --checkpoint: %s\n", signal_name(sig),
                    dpt_last_error());
        else
            fprintf(stderr,
                    "dpt train: interrupted by %s in epoch %d: the model of epoch %d is in %s "
                    "(continue with --resume %s)\n",
                    signal_name(sig), done_epochs + 1, done_epochs, path, path);
        if (json_path)
            write_json(cmd, json_path, &job, &ctx, &res, e, threads, NULL, signal_name(sig));
        rc = 128 + sig;
        goto done;
    }
    if (r) {
        rc = cli_fail(cmd, res.diverged ? "%s (--lr)" : "%s", dpt_last_error());
        if (res.diverged) {
            char why[512];
            snprintf(why, sizeof why, "%s", dpt_last_error());
            after_divergence(cmd, why, save_path, json_path, &job, &ctx, &res, e, threads);
        }
        goto done;
    }
    int local, remote, unknown;
    dpt_engine_numa_report(e, &local, &remote, &unknown);
    if (!quiet && remote)
        fprintf(stderr,
                "dpt train: warning: %d of %d threads have their rows on another NUMA "
                "node than their core\n",
                remote, threads);
    if (!quiet && ctx.stopped_early)
        fprintf(rout,
                "early stop after epoch %d: no better validation loss for %d epochs; the best was "
                "epoch %d (val loss %.6g)%s%s\n",
                res.epochs, ctx.patience, ctx.best_epoch, ctx.best_loss,
                ctx.best_path ? ", saved to " : "", ctx.best_path ? ctx.best_path : "");
    if (!quiet) {
        print_final(&job, &ctx, &res);
        print_target(rout, &job, &ctx, &res);
    } else if (rank0) {
        int taken =
            (trace_path && !strcmp(trace_path, "-")) || (json_path && !strcmp(json_path, "-"));
        print_quiet_result(taken ? stderr : stdout, ctx.eval_name, &res);
        print_target(taken ? stderr : stdout, &job, &ctx, &res);
    }
    /* only rank 0 writes files: every rank holds the same model */
    if (json_path && rank0 &&
        (rc = write_json(cmd, json_path, &job, &ctx, &res, e, threads, NULL, NULL)))
        goto done;
    if (save_path && rank0 &&
        dpt_model_save(save_path, &job.model, dpt_engine_params(e), &job.st)) {
        rc = cli_fail(cmd, "%s", dpt_last_error());
        goto done;
    }
    if (ctx.ck_path && rank0 && write_checkpoint(&ctx, ctx.ck_path)) {
        rc = cli_fail(cmd, "--checkpoint: %s", dpt_last_error());
        goto done;
    }
    if (trace.f && dpt_out_commit(&trace)) {
        rc = cli_fail(cmd, "--trace: %s", dpt_last_error());
        goto done;
    }
    rc = 0;
done:
    dpt_out_abort(&trace); /* a failed run leaves no trace file */
    free(im.w);
    free(intr_path);
    dpt_checkpoint_free(&ck);
    dpt_standardizer_free(&im.st);
    json_decref(ctx.epochs);
    dpt_run_destroy(run);
    if (have_spec) dpt_pin_spec_free(&spec.engine.pin);
    cli_job_free(&job);
    for (int i = 0; i < nconf; i++) free(conf_store[i]);
    free(conf_store);
    free(confv);
    return rc;
}
