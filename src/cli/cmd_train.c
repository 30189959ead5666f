/* dpt train: load or generate data, build the model, train data-parallel,
 * report per-epoch loss and speed, final metrics, and optionally JSON. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/job.h"
#include "cli/mpi_cli.h"
#include "cli/train_opts.h"
#include "dpt/engine.h"
#include "dpt/error.h"
#include "dpt/io.h"
#include "dpt/modelfile.h"
#include "dpt/report.h"
#include "dpt/topo.h"

static const char *const usage_text =
    "usage: dpt train (--synth KIND:k=v,... | --data FILE) [flags]\n" CLI_DATA_USAGE
    "model:     --model linear|logistic|softmax|mlp  --hidden 20|256,128  --act relu|tanh|sigmoid\n"
    "           --loss mse|ce (mlp)  --no-bias  --init uniform|zero\n"
    "optimizer: --opt gd|sgd|momentum|nesterov  --lr X  --momentum MU  --batch N (0 = full)\n"
    "           --epochs N  --weight-decay X  --lr-schedule const|step:EVERY:FACTOR|cosine\n"
    "           --warmup STEPS  --clip NORM  --seed N  --shuffle epoch|none\n"
    "engine:    --threads N  --pin compact|scatter|numa|none|list:0,2-5  --smt\n"
    "           --deterministic  --leaves N  --reduce tree|scatter  --batching global|local\n"
    "           --comm-overlap auto|off|on (mpirun: all-reduce in chunks while summing)\n"
    "           --balance static|adaptive (cut batches by thread speed)  --isa auto|scalar|avx2\n"
    "output:    --json FILE  --trace FILE (CSV: every step, every thread)  --quiet\n"
    "           --save MODEL  --init-from MODEL\n";

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
    dpt_engine *e;
    const dpt_dataset *test;
    const char *test_name;
    int quiet;
    json_t *epochs;
    double seconds;
    dpt_epoch_stats last;
    dpt_phase_times phases;
    double imbalance;
    int epochs_total;
    size_t rows;
    int live;          /* a progress line is being drawn on stderr */
    double comm_bytes; /* sent to other ranks, summed over epochs */
} train_ctx;

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

static void print_metrics(const char *name, const dpt_metrics *m)
{
    printf("  %s loss %.6g", name, m->loss);
    if (!isnan(m->accuracy)) printf(" acc %.4f", m->accuracy);
    if (!isnan(m->r2)) printf(" r2 %.4f", m->r2);
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

static int on_epoch(const dpt_epoch_stats *st, void *ud)
{
    train_ctx *c = ud;
    c->last = *st;
    c->seconds += st->seconds;
#define SUMP(f) c->phases.f += st->mean.f;
    SUMP(compute)
    SUMP(wait)
    SUMP(reduce)
    SUMP(update)
    SUMP(shuffle)
    SUMP(comm)
#undef SUMP
    if (st->imbalance > c->imbalance) c->imbalance = st->imbalance;
    c->comm_bytes += st->comm_bytes;
    return 0;
}

int dpt_cmd_train(int argc, char **argv)
{
    const char *cmd = "train";
    cli_job job;
    cli_job_init(&job);
    cli_train_opts *const tp = &job.to;
    const char *json_path = NULL, *save_path = NULL, *init_path = NULL, *trace_path = NULL;
    dpt_out_file trace = {0};
    int quiet = 0, rc = DPT_EXIT_USAGE;
    float *w_init = NULL;
    static const struct option opts[] = {CLI_JOB_OPTIONS,
                                         {"json", required_argument, 0, 'j'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"trace", required_argument, 0, 't'},
                                         {"save", required_argument, 0, 's'},
                                         {"init-from", required_argument, 0, 'i'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    dpt_engine *e = NULL;
    dpt_engine_opts eo = {0};
    json_t *root = NULL;
    train_ctx ctx = {0};
    int c;
    if ((rc = cli_job_preset(cmd, &job, argc, argv))) goto done;
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
        case 'h':
            fputs(usage_text, stdout);
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
    const int threads = tp->threads ? tp->threads : dpt_topo_physical_cores();
    job.per_rank = 1;
    if ((rc = cli_job_load(cmd, &job, threads))) goto done;
    const dpt_dataset *const trainp = &job.train;
    const dpt_model *const mp = &job.model;
    if ((rc = cli_engine_opts(cmd, tp, threads, &eo))) goto done;
    eo.comm = cli_mpi_comm();
    if (dpt_engine_create(&e, mp, &tp->opt, trainp, &eo)) {
        rc = cli_fail(cmd, "%s", dpt_last_error());
        goto done;
    }
    dpt_model_init_params(mp, dpt_engine_params(e), tp->seed, tp->init);
    const int rank0 = cli_mpi_rank() == 0, ranks = cli_mpi_size();
    /* rank 0's threads only, like the phase times; opened now, so a path
     * that cannot be written stops the run before it starts */
    if (trace_path && rank0) {
        if (dpt_out_open(&trace, trace_path) || dpt_engine_set_trace(e, on_trace, trace.f, 0)) {
            rc = cli_fail(cmd, "--trace: %s", dpt_last_error());
            goto done;
        }
        fputs("epoch,step,thread,rows,shuffle_s,compute_s,wait_s,reduce_s,update_s,comm_s\n",
              trace.f);
    }
    if (init_path) {
        dpt_model fm;
        dpt_standardizer fst;
        if (dpt_model_load(init_path, &fm, &w_init, &fst)) {
            rc = cli_fail(cmd, "--init-from: %s", dpt_last_error());
            goto done;
        }
        dpt_standardizer_free(&fst);
        char a[128], b[128];
        dpt_model_describe(&fm, a, sizeof a);
        dpt_model_describe(mp, b, sizeof b);
        if (strcmp(a, b) || fm.n_params != mp->n_params) {
            rc = cli_fail(cmd, "--init-from: %s holds a %s, the flags ask for a %s", init_path, a,
                          b);
            goto done;
        }
        dpt_engine_reset(e, w_init);
    }
    /* every rank is set up (data, engine, initial model), or all stop here;
     * then all start from rank 0's parameters */
    if ((rc = cli_mpi_agree(0))) goto done;
    if (eo.comm && eo.comm->broadcast(eo.comm->ctx, dpt_engine_params(e), mp->n_params)) {
        rc = cli_fail(cmd, "%s", dpt_last_error());
        goto done;
    }

    char desc[128];
    dpt_model_describe(mp, desc, sizeof desc);
    static const char *const optn[] = {"gd", "sgd", "momentum", "nesterov"};
    if (!quiet) {
        fprintf(stderr, "dpt train: %s, %zu params | %zu rows x %zu | %s lr %g", desc, mp->n_params,
                trainp->n, trainp->d, optn[tp->opt.kind], tp->opt.lr);
        if (tp->opt.kind != DPT_OPT_GD) fprintf(stderr, " batch %zu", tp->opt.batch);
        fprintf(stderr, " | %d threads", threads);
        if (ranks > 1) fprintf(stderr, " x %d ranks", ranks);
        fprintf(stderr, ", pin %s, isa %s%s", tp->pin, dpt_engine_isa(e),
                tp->deterministic ? ", deterministic" : "");
        if (trainp->part) {
            /* the same line on every rank: the range over all ranks */
            size_t lo = SIZE_MAX, hi = 0;
            for (int r = 0; r < ranks; r++) {
                dpt_row_range *rr = NULL;
                size_t k = 0, rows = 0;
                if (dpt_engine_rank_rows(trainp->n, &tp->opt, 0, tp->deterministic, r, ranks, &rr,
                                         &k) == 0)
                    for (size_t i = 0; i < k; i++) rows += rr[i].hi - rr[i].lo;
                free(rr);
                lo = rows < lo ? rows : lo;
                hi = rows > hi ? rows : hi;
            }
            if (lo == hi)
                fprintf(stderr, " | per-rank loading: %zu of %zu rows per rank", lo, trainp->n);
            else
                fprintf(stderr, " | per-rank loading: %zu-%zu of %zu rows per rank", lo, hi,
                        trainp->n);
        }
        fputc('\n', stderr);
        if (dpt_engine_warning(e))
            fprintf(stderr, "dpt train: warning: %s\n", dpt_engine_warning(e));
    }

    const dpt_dataset *eval_set = job.test.n ? &job.test : job.val.n ? &job.val : NULL;
    const char *eval_name = job.test.n ? "test" : "val";
    ctx.e = e;
    ctx.test = eval_set;
    ctx.quiet = quiet;
    ctx.epochs = json_array();
    ctx.epochs_total = tp->epochs;
    ctx.rows = trainp->n;
    ctx.live = !quiet && rank0 && isatty(STDERR_FILENO);
    if (ctx.live) dpt_engine_set_progress(e, on_progress, &ctx, 0.25);
    for (int ep = 0; ep < tp->epochs; ep++) {
        int r = dpt_engine_train(e, 1, on_epoch, &ctx);
        if (r) {
            rc = cli_fail(cmd, "%s", dpt_last_error());
            /* the engine rolled back to the last finite model: keep it */
            if (r == DPT_EDIVERGED && save_path && rank0 &&
                dpt_model_save(save_path, mp, dpt_engine_params(e), &job.st) == 0)
                fprintf(stderr, "dpt train: saved the last finite model to %s\n", save_path);
            goto done;
        }
        /* metrics of the model as it stands after the epoch, on the whole
         * training set and the held-out set (not timed) */
        dpt_metrics trm = {0}, tm = {0};
        if (dpt_engine_evaluate(e, trainp, &trm) ||
            (eval_set && dpt_engine_evaluate(e, eval_set, &tm))) {
            rc = cli_fail(cmd, "%s", dpt_last_error());
            goto done;
        }
        /* an error on another rank ends this one too, before the next epoch */
        if ((rc = cli_mpi_agree(0))) goto done;
        const dpt_epoch_stats *st = &ctx.last;
        if (ctx.live) fputs("\r\033[K", stderr);
        if (!quiet) {
            printf("epoch %3d  loss %.6g  %.4f s  %.4g samples/s", st->epoch, st->loss, st->seconds,
                   st->samples_per_second);
            print_metrics("train", &trm);
            if (eval_set) print_metrics(eval_name, &tm);
            putchar('\n');
            fflush(stdout);
        }
        json_t *je = json_pack("{s:i,s:f,s:f,s:f,s:o,s:f}", "epoch", st->epoch, "loss", st->loss,
                               "seconds", st->seconds, "samples_per_second", st->samples_per_second,
                               "phases", phases_json(&st->mean), "imbalance", st->imbalance);
        json_object_set_new(je, "train", metrics_json(&trm));
        json_object_set_new(je, "rows_per_thread",
                            json_pack("{s:I,s:I}", "min", (json_int_t)st->rows_min, "max",
                                      (json_int_t)st->rows_max));
        if (eval_set) json_object_set_new(je, eval_name, metrics_json(&tm));
        json_array_append_new(ctx.epochs, je);
    }

    dpt_metrics fin = {0}, fte = {0};
    if (dpt_engine_evaluate(e, trainp, &fin) ||
        (eval_set && dpt_engine_evaluate(e, eval_set, &fte))) {
        rc = cli_fail(cmd, "%s", dpt_last_error());
        goto done;
    }
    double sps = (double)trainp->n * tp->epochs / ctx.seconds;
    int local, remote, unknown;
    dpt_engine_numa_report(e, &local, &remote, &unknown);
    if (!quiet && remote)
        fprintf(stderr,
                "dpt train: warning: %d of %d threads have their rows on another NUMA "
                "node than their core\n",
                remote, threads);
    if (!quiet) {
        printf("final:");
        print_metrics("train", &fin);
        if (eval_set) print_metrics(eval_name, &fte);
        printf(" | %.4g samples/s, %.3f s training\n", sps, ctx.seconds);
        printf("per epoch: compute %.4g s, reduce %.4g s, update %.4g s, wait %.4g s, shuffle "
               "%.4g s; imbalance %.3f (max/mean compute); rows per thread %zu-%zu\n",
               ctx.phases.compute / tp->epochs, ctx.phases.reduce / tp->epochs,
               ctx.phases.update / tp->epochs, ctx.phases.wait / tp->epochs,
               ctx.phases.shuffle / tp->epochs, ctx.imbalance, ctx.last.rows_min,
               ctx.last.rows_max);
        if (ranks > 1) {
            double steps = ctx.last.steps > 0 ? (double)ctx.last.steps : 1;
            printf("across %d ranks: comm %.4g s per epoch, %.4g ms per step, %.4g MB sent per "
                   "step by each rank\n",
                   ranks, ctx.phases.comm / tp->epochs, 1e3 * ctx.phases.comm / tp->epochs / steps,
                   ctx.comm_bytes / tp->epochs / steps / 1e6);
        }
    }
    /* only rank 0 writes files: every rank holds the same model */
    if (json_path && rank0) {
        json_t *final = json_object();
        json_object_set_new(final, "train_loss", json_real(fin.loss));
        if (!isnan(fin.accuracy))
            json_object_set_new(final, "train_accuracy", json_real(fin.accuracy));
        if (!isnan(fin.r2)) json_object_set_new(final, "train_r2", json_real(fin.r2));
        if (eval_set) {
            char key[32];
            snprintf(key, sizeof key, "%s_loss", eval_name);
            json_object_set_new(final, key, json_real(fte.loss));
            if (!isnan(fte.accuracy)) {
                snprintf(key, sizeof key, "%s_accuracy", eval_name);
                json_object_set_new(final, key, json_real(fte.accuracy));
            }
            if (!isnan(fte.mse)) {
                snprintf(key, sizeof key, "%s_mse", eval_name);
                json_object_set_new(final, key, json_real(fte.mse));
                snprintf(key, sizeof key, "%s_r2", eval_name);
                json_object_set_new(final, key, json_real(fte.r2));
            }
        }
        root =
            json_pack("{s:s,s:s,s:i,s:s,s:s,s:o,s:o,s:f,s:f,s:o,s:f}", "schema", "dpt-train/1",
                      "model", desc, "threads", threads, "pin", tp->pin, "isa", dpt_engine_isa(e),
                      "epochs", ctx.epochs, "final", final, "samples_per_second", sps, "seconds",
                      ctx.seconds, "phases", phases_json(&ctx.phases), "imbalance", ctx.imbalance);
        ctx.epochs = NULL;
        json_object_set_new(root, "ranks", json_integer(ranks));
        json_object_set_new(
            root, "balance",
            json_string(tp->balance == DPT_BALANCE_ADAPTIVE ? "adaptive" : "static"));
        json_object_set_new(root, "rows_read_by_rank0",
                            json_integer((json_int_t)dpt_dataset_rows_held(trainp)));
        json_object_set_new(root, "comm_bytes_per_epoch", json_real(ctx.comm_bytes / tp->epochs));
        if (dpt_json_write_atomic(root, json_path)) {
            rc = cli_fail(cmd, "%s", dpt_last_error());
            goto done;
        }
    }
    if (save_path && rank0 && dpt_model_save(save_path, mp, dpt_engine_params(e), &job.st)) {
        rc = cli_fail(cmd, "%s", dpt_last_error());
        goto done;
    }
    if (trace.f && dpt_out_commit(&trace)) {
        rc = cli_fail(cmd, "--trace: %s", dpt_last_error());
        goto done;
    }
    rc = 0;
done:
    dpt_out_abort(&trace); /* a failed run leaves no trace file */
    free(w_init);
    json_decref(root);
    json_decref(ctx.epochs);
    dpt_engine_destroy(e);
    dpt_pin_spec_free(&eo.pin);
    cli_job_free(&job);
    return rc;
}
