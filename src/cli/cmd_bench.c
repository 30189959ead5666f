/* dpt bench, dpt tune and dpt limits: flags -> a run spec and a sweep ->
 * the library's bench sweep (dpt_bench_sweep), tuning race (dpt_tune_spec)
 * or limits, then the table and the files. What is timed and how ranks
 * take part is described in dpt/run.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/bench_target.h"
#include "cli/cli.h"
#include "cli/job.h"
#include "cli/lockstep.h"
#include "cli/mpi_cli.h"
#include "cli/outpath.h"
#include "cli/predict_cli.h"
#include "dpt/engine.h"
#include "dpt/error.h"
#include "dpt/limits.h"
#include "dpt/mpi.h"
#include "dpt/report.h"
#include "dpt/run.h"
#include "dpt/stats.h"
#include "dpt/tune.h"
#include "kernels/kernels.h"

#define MAX_THREADS DPT_SWEEP_MAX
#define MAX_PINS    8
#define MAX_RANKS   DPT_SWEEP_MAX

/* "1,2,4", "1-4" or "all" (1 to the job's ranks); every count at most the
 * ranks mpirun started. The count of values or -1 (printed). */
static int parse_ranks(const char *cmd, const char *val, int *out, int cap)
{
    const int size = cli_mpi_size();
    int n = cli_thread_list(cmd, "ranks", val, size, out, cap);
    for (int i = 0; i < n; i++) {
        if (out[i] <= size) continue;
        if (!dpt_mpi_active())
            cli_usage_error(cmd,
                            "--ranks: %d ranks asked, but this is one process (allowed: 1); run "
                            "dpt bench under mpirun -np N to sweep up to N ranks",
                            out[i]);
        else if (size == 1)
            cli_usage_error(cmd, "--ranks: %d ranks asked, but mpirun started 1 (allowed: 1)",
                            out[i]);
        else
            cli_usage_error(cmd, "--ranks: %d ranks asked, but mpirun started %d (allowed: 1-%d)",
                            out[i], size, size);
        return -1;
    }
    return n;
}

/* Default sweep: 1, powers of two below the core count, the core count. */
static int default_threads(int *out, int cap)
{
    int cores = dpt_topo_physical_cores(), n = 0;
    for (int t = 1; t < cores && n < cap - 1; t *= 2) out[n++] = t;
    out[n++] = cores;
    return n;
}

/* "compact,scatter" -> pins (at most MAX_PINS); "list:..." stays whole. */
static int parse_pins(const char *cmd, const char *val, char pins[][32])
{
    char buf[256];
    const char *tok[MAX_PINS];
    int n = 1;
    if (!strncmp(val, "list:", 5)) {
        if (strlen(val) >= 32)
            return cli_usage_error(cmd,
                                   "--pin: '%s' is longer than 31 characters (use ranges, "
                                   "e.g. list:0-15)",
                                   val),
                   -1;
        tok[0] = val;
    } else if ((n = cli_split(cmd, "pin", val, buf, sizeof buf, tok, MAX_PINS, "compact,scatter")) <
               0) {
        return -1;
    }
    for (int i = 0; i < n; i++) {
        dpt_pin_spec sp;
        if (dpt_pin_parse(tok[i], &sp))
            return cli_usage_error(cmd, "--pin: %s", dpt_last_error()), -1;
        dpt_pin_spec_free(&sp);
        snprintf(pins[i], 32, "%s", tok[i]);
    }
    return n;
}

/* The configurations bench and tune sweep: thread counts and pinnings. */
typedef struct sweep {
    int threads[MAX_THREADS], nt;
    char pins[MAX_PINS][32];
    int np;
} sweep;

/* A job flag, with --threads and --pin taking lists: 1 consumed, 0 not a
 * job flag, -1 bad value (printed). */
static int sweep_flag(const char *cmd, sweep *sw, cli_job *job, int c, const char *arg)
{
    if (c == 1122) /* --threads */
        return (sw->nt = cli_thread_list(cmd, "threads", arg, dpt_topo_physical_cores(),
                                         sw->threads, MAX_THREADS)) < 0
                   ? -1
                   : 1;
    if (c == 1116) /* --pin */
        return (sw->np = parse_pins(cmd, arg, sw->pins)) < 0 ? -1 : 1;
    return cli_job_flag(cmd, job, c, arg);
}

/* Defaults for what was not given; returns the largest thread count. */
static int sweep_finish(sweep *sw, const cli_job *job)
{
    if (!sw->nt) sw->nt = default_threads(sw->threads, MAX_THREADS);
    if (!sw->np) snprintf(sw->pins[sw->np++], 32, "%s", job->to.pin);
    int maxt = 1;
    for (int i = 0; i < sw->nt; i++) maxt = sw->threads[i] > maxt ? sw->threads[i] : maxt;
    return maxt;
}

static const char *job_name(const cli_job *j)
{
    return j->workload ? j->workload->name : "custom";
}

/* The sweep's live line, on a terminal only (rank 0's: the others' stderr
 * is held until the end). */
static void on_progress(const char *what, int i, int n, void *ud)
{
    if (!*(const int *)ud) return;
    fprintf(stderr, "\r\033[K%s %d/%d", what, i, n);
    if (i == n) fprintf(stderr, "\r\033[K");
    fflush(stderr);
}

static void on_warning(const char *text, void *ud)
{
    fprintf(stderr, "%sdpt bench: warning: %s\n", *(const int *)ud ? "\r\033[K" : "", text);
}

/* A failure of the sweep: said once, by the rank it happened on. */
static int sweep_fail(const char *cmd)
{
    if (cli_mpi_size() > 1 && !strncmp(dpt_last_error(), "rank ", 5)) return DPT_EXIT_FAIL;
    return cli_fail(cmd, "%s", dpt_last_error());
}

static const char *const bench_usage[] = {
    "usage: dpt bench (--workload NAME | training flags) [flags]\n"
    "Times training epochs over thread counts and pinnings (and rank counts under\n"
    "mpirun). Prints a table, one row per configuration: median ms per epoch with\n"
    "its IQR, speedup, efficiency, samples/s, GB/s or GFLOP/s and their share of the\n"
    "measured limits, the phase breakdown and imbalance; then the final loss\n"
    "against the workload's reference (or, where the flags change what the workload\n"
    "trains, which settings they change), warnings about a loaded machine, and with\n"
    "a target the time to reach it. See \"Reading the output\" in README.md.\n"
    "  --threads 1,2,4|1-16|all  thread counts (default: 1, powers of two, physical\n"
    "                       cores)\n"
    "  --ranks 1,2,4|1-4|all  under mpirun: run each configuration on the first N\n"
    "                       ranks of the job (default: all of them)\n"
    "  --pin compact,scatter,numa,none|list:0,2-5  pinnings (default compact)\n"
    "  --reps N             timed repetitions of every configuration (default 5)\n"
    "  --warmup N           untimed epochs before each configuration (default 1)\n"
    "  --no-limits          do not measure bandwidth and FMA peak (default: measured)\n"
    "  --target-epochs N    with --target-loss/--target-accuracy: most epochs of a\n"
    "                       time-to-target run (default 100)\n"
    "  --json FILE          the result as dpt-bench/1 JSON (default none; - stdout)\n"
    "  --csv FILE           one CSV line per configuration (default none)\n"
    "  --quiet              no header or progress on stderr (default off)\n"
    "  --lockstep FD        let the process at the other end of socket FD start each\n"
    "                       timed run (`dpt compare --run` does; the protocol is in\n"
    "                       src/cli/lockstep.h); --reps is then the most rounds\n"
    "                       (default off)\n"
    "  --predict TARGET     predict instead of measuring, for a synthetic topology, an\n"
    "                       hwloc XML file, genoa, spr or this (default none; see\n"
    "                       dpt bench --predict this --help)\n"
    "  --help               this text\n"
    "Configurations are ranks x threads x pins, interleaved within each repetition.\n"
    "Speedup is against 1 rank x 1 thread (without that row, 1 thread at the same\n"
    "ranks), efficiency = speedup / (ranks x threads) (over the baseline's ranks).\n"
    "Under mpirun the ranks outside a run wait asleep, and times are rank 0's.\n"
    "%BW and %peak compare with limits that one process measures (rank 0 alone),\n"
    "so rows of more than one rank leave them empty.\n"
    "Any `dpt train` flag below may follow a workload and overrides it; --epochs is\n"
    "the timed epochs of a repetition.\n",
    CLI_DATA_HELP,
    CLI_MODEL_HELP,
    CLI_OPTIM_HELP,
    CLI_ENGINE_HELP,
    NULL};

enum {
    OPT_REPS = 1300,
    OPT_WARMUP,
    OPT_JSON,
    OPT_CSV,
    OPT_NOLIMITS,
    OPT_QUIET,
    OPT_HELP,
    OPT_BATCHES,
    OPT_RANKS,
    OPT_BALANCES,
    OPT_TARGET_EPOCHS,
    OPT_PREDICT,
    OPT_LOCKSTEP
};

int dpt_cmd_bench(int argc, char **argv)
{
    const char *cmd = "bench";
    cli_job job;
    cli_job_init(&job);
    int reps = 5, warmup = 1, limits = 1, quiet = 0, target_epochs = 100, lockstep_fd = -1;
    cli_lockstep ls = {.fd = -1};
    json_t *ttt = NULL;
    sweep sw = {0};
    const char *json_path = NULL, *csv_path = NULL;
    dpt_bench_report rep;
    dpt_bench_report_init(&rep);
    dpt_run_spec spec;
    int ranks[MAX_RANKS], nr = 0, have_spec = 0;
    int rc;
    if (cli_bench_wants_predict(argc, argv)) return cli_bench_predict(argc, argv);
    /* bench's own --warmup (epochs) before the training flags' (steps of
     * the learning-rate warm-up): getopt_long takes the first match */
    static const struct option opts[] = {{"ranks", required_argument, 0, OPT_RANKS},
                                         {"reps", required_argument, 0, OPT_REPS},
                                         {"warmup", required_argument, 0, OPT_WARMUP},
                                         {"json", required_argument, 0, OPT_JSON},
                                         {"csv", required_argument, 0, OPT_CSV},
                                         {"no-limits", no_argument, 0, OPT_NOLIMITS},
                                         {"target-epochs", required_argument, 0, OPT_TARGET_EPOCHS},
                                         {"quiet", no_argument, 0, OPT_QUIET},
                                         {"lockstep", required_argument, 0, OPT_LOCKSTEP},
                                         {"help", no_argument, 0, OPT_HELP},
                                         /* taken before parsing (bench_predict.c) */
                                         {"predict", required_argument, 0, OPT_PREDICT},
                                         CLI_JOB_OPTIONS,
                                         {0, 0, 0, 0}};
    if ((rc = cli_job_preset(cmd, &job, argc, argv))) goto done;
    rc = DPT_EXIT_USAGE;
    optind = 1;
    int c;
    long v;
    while ((c = cli_getopt(cmd, argc, argv, opts)) != -1) {
        if (c == '?') goto done;
        int r = sweep_flag(cmd, &sw, &job, c, optarg);
        if (r < 0) goto done;
        if (r > 0) continue;
        switch (c) {
        case OPT_RANKS:
            if ((nr = parse_ranks(cmd, optarg, ranks, MAX_RANKS)) < 0) goto done;
            break;
        case OPT_REPS:
            if (cli_long(cmd, "reps", optarg, 1, 1000, &v)) goto done;
            reps = (int)v;
            break;
        case OPT_WARMUP:
            if (cli_long(cmd, "warmup", optarg, 0, 100, &v)) goto done;
            warmup = (int)v;
            break;
        case OPT_JSON:
            json_path = optarg;
            break;
        case OPT_CSV:
            csv_path = optarg;
            break;
        case OPT_NOLIMITS:
            limits = 0;
            break;
        case OPT_PREDICT:
            rc = cli_bench_predict(argc, argv);
            goto done;
        case OPT_TARGET_EPOCHS:
            if (cli_long(cmd, "target-epochs", optarg, 1, 1000000, &v)) goto done;
            target_epochs = (int)v;
            break;
        case OPT_QUIET:
            quiet = 1;
            break;
        case OPT_LOCKSTEP:
            if (cli_long(cmd, "lockstep", optarg, 0, 1 << 20, &v)) goto done;
            lockstep_fd = (int)v;
            break;
        case OPT_HELP:
            cli_help(bench_usage);
            rc = 0;
            goto done;
        default:
            goto done;
        }
    }
    if (optind < argc) {
        rc = cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
        goto done;
    }
    const int size = cli_mpi_size(), rank0 = cli_mpi_rank() == 0;
    if (lockstep_fd >= 0 && size > 1) {
        rc = cli_usage_error(cmd, "--lockstep runs one process, not under mpirun (%d ranks)", size);
        goto done;
    }
    if (lockstep_fd >= 0 && (rc = cli_lockstep_open(cmd, lockstep_fd, &ls))) goto done;
    if ((rc = cli_check_output(cmd, "--json", json_path)) ||
        (rc = cli_check_output(cmd, "--csv", csv_path)))
        goto done;
    if (!nr) ranks[nr++] = size;
    /* a run on fewer ranks needs every row; when every run takes all the
     * job's ranks, each may load just its own (cli_job_load). A rank that
     * failed to load stops every rank before the first barrier. */
    job.per_rank = 1;
    for (int i = 0; i < nr; i++) job.per_rank &= ranks[i] == size;
    rc = cli_job_load(cmd, &job, sweep_finish(&sw, &job));
    if (!rc && !(rc = cli_job_spec(cmd, &job, 1, &spec))) have_spec = 1;
    if ((rc = cli_mpi_agree(rc))) goto done;
    if (!quiet && rank0)
        cli_predict_warn(cmd, &job, &spec.opt, &spec.engine, sweep_finish(&sw, &job));

    dpt_sweep_spec ss = {0};
    ss.workload = job_name(&job);
    memcpy(ss.threads, sw.threads, sizeof ss.threads);
    ss.nthreads = sw.nt;
    memcpy(ss.pins, sw.pins, sizeof ss.pins);
    ss.npins = sw.np;
    memcpy(ss.ranks, ranks, (size_t)nr * sizeof *ranks);
    ss.nranks = nr;
    ss.reps = reps;
    ss.warmup = warmup;
    ss.limits = limits;
    ss.accuracy_from_test = job.workload && job.workload->accuracy_is_test;
    int tty = !quiet && rank0 && isatty(2);
    ss.progress = on_progress;
    ss.warning = on_warning;
    ss.progress_ud = &tty;
    spec.evaluate = 1;
    /* the sweep times epochs; the target has runs of its own after it */
    dpt_run_spec target_spec = spec;
    spec.target_loss = spec.target_accuracy = 0;

    char desc[128], rl[96] = "";
    dpt_model_describe(&job.model, desc, sizeof desc);
    if (size > 1) {
        size_t len = (size_t)snprintf(rl, sizeof rl, ", ranks");
        for (int i = 0; i < nr && len < sizeof rl; i++)
            len += (size_t)snprintf(rl + len, sizeof rl - len, "%s%d", i ? "," : " ", ranks[i]);
        if (len < sizeof rl) len += (size_t)snprintf(rl + len, sizeof rl - len, " of %d", size);
        /* the same words on every rank (the rows held differ) */
        if (job.train.part && len < sizeof rl)
            snprintf(rl + len, sizeof rl - len, ", per-rank loading");
    }
    if (!quiet)
        fprintf(stderr,
                "dpt bench: %s: %s, %zu rows, %d epoch(s) x %d reps after %d warm-up, isa %s%s\n",
                job_name(&job), desc, job.train.n, job.to.epochs, reps, warmup,
                dpt_kernels_get()->isa, rl);
    if (lockstep_fd >= 0) {
        if (target_spec.target_loss > 0 || target_spec.target_accuracy > 0) {
            rc = cli_usage_error(cmd, "--lockstep times epochs: it takes no --target-loss or "
                                      "--target-accuracy");
            goto done;
        }
        ls.sw = &ss;
        ss.before_run = cli_lockstep_before;
        ss.after_run = cli_lockstep_after;
        ss.run_ud = &ls;
    }
    if (dpt_bench_sweep(&spec, &ss, &rep)) {
        rc = sweep_fail(cmd);
        goto done;
    }
    /* the report is rank 0's times */
    if (rank0) dpt_bench_report_print_table(&rep, stdout);
    if (target_spec.target_loss > 0 || target_spec.target_accuracy > 0) {
        const char *on = job.test.n ? "test" : job.val.n ? "val" : "train";
        if ((rc = cli_bench_target(cmd, &target_spec, on, sw.threads, sw.nt, sw.pins, sw.np, reps,
                                   target_epochs, stdout, &ttt)))
            goto done;
    }
    /* the other ranks are done */
    if (!rank0) {
        rc = 0;
        goto done;
    }
    if (job.workload) {
        const dpt_workload *w = job.workload;
        double fl = rep.results[0].final_loss, fa = rep.results[0].final_accuracy;
        const char *on = w->accuracy_is_test ? "test " : "";
        char changes[256];
        /* the references hold for the workload as defined, not for a run
         * whose flags change what it trains */
        if (cli_job_changes(&job, changes, sizeof changes)) {
            if (!isnan(w->ref_loss)) printf("final loss %.7g", fl);
            if (!isnan(w->ref_accuracy))
                printf("%sfinal %saccuracy %.4f", isnan(w->ref_loss) ? "" : ", ", on, fa);
            printf("; not compared with the workload's reference (docs/workloads.md), which "
                   "this run changes: %s\n",
                   changes);
        } else {
            if (!isnan(w->ref_loss))
                printf("final loss %.7g, reference %.7g (docs/workloads.md; %+.2e relative)\n", fl,
                       w->ref_loss, (fl - w->ref_loss) / w->ref_loss);
            if (!isnan(w->ref_accuracy))
                printf("final %saccuracy %.4f, reference %.4f\n", on, fa, w->ref_accuracy);
        }
    }
    char warn[16][DPT_WARNING_LEN];
    size_t nw = dpt_bench_report_warnings(&rep, warn, 16);
    for (size_t i = 0; i < nw && i < 16; i++) fprintf(stderr, "dpt bench: warning: %s\n", warn[i]);
    /* the mark on the table itself, where the figures are read */
    const char *mw = cli_machine_warning(&rep, warn, 16);
    if (mw)
        printf("LOADED OR DISTURBED RUN: %.*s; the times above may be inflated (warnings on "
               "stderr)\n",
               (int)strcspn(mw, ";"), mw);
    /* only rank 0 gets here, and writes the files */
    if (json_path && (rc = cli_bench_write_json(cmd, &rep, json_path, "time_to_target", ttt)))
        goto done;
    if (csv_path && dpt_bench_report_write_csv(&rep, csv_path)) {
        rc = cli_fail(cmd, "%s", dpt_last_error());
        goto done;
    }
    rc = 0;
done:
    cli_lockstep_close(&ls);
    json_decref(ttt);
    if (have_spec) dpt_pin_spec_free(&spec.engine.pin);
    dpt_bench_report_free(&rep);
    cli_job_free(&job);
    return rc;
}

/* ---- dpt tune ---- */

typedef struct tune_json {
    const dpt_tune_result *res;
    const char *workload;
} tune_json;

static int write_tune(const void *obj, const char *path)
{
    const tune_json *t = obj;
    return dpt_tune_write_json(t->res, t->workload, path);
}

static const char *const tune_usage[] = {
    "usage: dpt tune (--workload NAME | training flags) [flags]\n"
    "Races the settings and recommends the fastest: every candidate runs a few\n"
    "times, those clearly or significantly slower than the best drop out, and the\n"
    "winner and runner-up run until their difference can be judged (Mann-Whitney\n"
    "U). Prints a table of the candidates (threads, pin, batch, balance, runs,\n"
    "median ms, %% slower than the best, p that it is slower than the winner, how\n"
    "each left the race) and the recommendation in words. A run's time is its\n"
    "ms per epoch; with --target-loss or --target-accuracy it is the ms of training\n"
    "until the target (at most --epochs epochs). --batches and --balances change\n"
    "convergence, so a race over them is always to a target: without one, to the\n"
    "loss the job's own settings reach in --epochs (within twice as many). The\n"
    "first line says what was ranked. See README.md, \"Reading the output\".\n"
    "  --threads 1,2,4|1-16|all  thread counts (default: 1, powers of two, physical\n"
    "                       cores)\n"
    "  --pin compact,scatter,numa,none|list:...  pinnings (default compact)\n"
    "  --batches 64,128,... batch sizes to race too (default: the job's)\n"
    "  --balances static,adaptive  balancing modes to race too (default: the job's)\n"
    "  --warmup N           untimed epochs before a candidate's first run (default 1)\n"
    "  --json FILE          the race as dpt-tune/1 JSON (default none)\n"
    "  --quiet              no header on stderr (default off)\n"
    "  --help               this text\n"
    "Any `dpt train` flag below may follow a workload and overrides it.\n",
    CLI_DATA_HELP,
    CLI_MODEL_HELP,
    CLI_OPTIM_HELP,
    CLI_ENGINE_HELP,
    NULL};

int dpt_cmd_tune(int argc, char **argv)
{
    const char *cmd = "tune";
    cli_job job;
    cli_job_init(&job);
    int nb = 0, nbal = 0, warmup = 1, quiet = 0;
    sweep sw = {0};
    long batches[16];
    int bals[2];
    const char *json_path = NULL;
    dpt_tune_candidate *cands = NULL;
    dpt_tune_result res = {0};
    dpt_run_spec spec;
    int have_res = 0, have_spec = 0, rc;
    /* tune's own --warmup (epochs) first, as in bench */
    static const struct option opts[] = {{"batches", required_argument, 0, OPT_BATCHES},
                                         {"balances", required_argument, 0, OPT_BALANCES},
                                         {"warmup", required_argument, 0, OPT_WARMUP},
                                         {"json", required_argument, 0, OPT_JSON},
                                         {"quiet", no_argument, 0, OPT_QUIET},
                                         {"help", no_argument, 0, OPT_HELP},
                                         CLI_JOB_OPTIONS,
                                         {0, 0, 0, 0}};
    static const char *const bal_names[] = {"static", "adaptive", NULL};
    if ((rc = cli_job_preset(cmd, &job, argc, argv))) goto done;
    rc = DPT_EXIT_USAGE;
    optind = 1;
    int c;
    long v;
    while ((c = cli_getopt(cmd, argc, argv, opts)) != -1) {
        if (c == '?') goto done;
        int r = sweep_flag(cmd, &sw, &job, c, optarg);
        if (r < 0) goto done;
        if (r > 0) continue;
        switch (c) {
        case OPT_BATCHES: {
            char buf[256];
            const char *tok[16];
            if ((nb = cli_split(cmd, "batches", optarg, buf, sizeof buf, tok, 16, "64,128,256")) <
                0)
                goto done;
            for (int i = 0; i < nb; i++)
                if (cli_long(cmd, "batches", tok[i], 1, 1L << 30, &batches[i])) goto done;
            break;
        }
        case OPT_BALANCES: {
            char buf[64];
            const char *tok[2];
            if ((nbal = cli_split(cmd, "balances", optarg, buf, sizeof buf, tok, 2,
                                  "static,adaptive")) < 0)
                goto done;
            for (int k = 0; k < nbal; k++) {
                if (cli_choice(cmd, "balances", tok[k], bal_names, &bals[k])) goto done;
                if (k && bals[k] == bals[0]) {
                    rc = cli_usage_error(cmd, "--balances: '%s' given twice", tok[k]);
                    goto done;
                }
            }
            break;
        }
        case OPT_WARMUP:
            if (cli_long(cmd, "warmup", optarg, 0, 100, &v)) goto done;
            warmup = (int)v;
            break;
        case OPT_JSON:
            json_path = optarg;
            break;
        case OPT_QUIET:
            quiet = 1;
            break;
        case OPT_HELP:
            cli_help(tune_usage);
            rc = 0;
            goto done;
        default:
            goto done;
        }
    }
    if (optind < argc) {
        rc = cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
        goto done;
    }
    if ((rc = cli_check_output(cmd, "--json", json_path))) goto done;
    if (nb && job.to.opt.kind == DPT_OPT_GD) {
        rc = cli_usage_error(cmd, "--batches: the optimizer is full-batch gd");
        goto done;
    }
    for (int k = 0; k < nbal; k++)
        if (bals[k] == DPT_BALANCE_ADAPTIVE &&
            (rc = cli_balance_conflict(cmd, &job.to, "--balances")))
            goto done;
    if (!nb) batches[nb++] = 0;
    const int maxt = sweep_finish(&sw, &job);
    if ((rc = cli_job_load(cmd, &job, maxt))) goto done;
    const int nt = sw.nt, np = sw.np, *threads = sw.threads;
    char(*pins)[32] = sw.pins;
    const int nl = nbal ? nbal : 1;
    int n = nt * np * nb * nl;
    cands = calloc((size_t)n, sizeof *cands);
    if (!cands) {
        rc = cli_fail(cmd, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        cands[i].threads = threads[i % nt];
        snprintf(cands[i].pin, sizeof cands[i].pin, "%s", pins[(i / nt) % np]);
        cands[i].batch = batches[(i / (nt * np)) % nb];
        if (nbal)
            snprintf(cands[i].balance, sizeof cands[i].balance, "%s",
                     bal_names[bals[i / (nt * np * nb)]]);
    }
    if (!quiet)
        fprintf(stderr, "dpt tune: %s, %d candidates, isa %s\n", job_name(&job), n,
                dpt_kernels_get()->isa);
    dpt_tune_options to;
    dpt_tune_options_defaults(&to);
    if ((rc = cli_job_spec(cmd, &job, 1, &spec))) goto done;
    have_spec = 1;
    spec.warmup = warmup;
    int ttt = spec.target_loss > 0 || spec.target_accuracy > 0, auto_target = 0;
    const char *on = job.test.n ? "test" : job.val.n ? "val" : "train";
    if (!ttt && (nb > 1 || nbal > 1)) {
        /* batch size and balancing change convergence: without a target the
         * race is to the loss the job's own settings reach in its epochs,
         * within twice as many (threads do not change the loss) */
        dpt_run_spec ref = spec;
        ref.engine.threads = maxt;
        ref.warmup = 0;
        ref.evaluate = 1;
        dpt_run_result rr;
        if (dpt_run_once(&ref, &rr, NULL)) {
            rc = cli_fail(cmd, "the reference run for the target: %s", dpt_last_error());
            goto done;
        }
        spec.target_loss = spec.test ? rr.test.loss : rr.train.loss;
        spec.epochs = 2 * job.to.epochs;
        ttt = auto_target = 1;
    }
    if (!quiet) cli_predict_warn(cmd, &job, &spec.opt, &spec.engine, sweep_finish(&sw, &job));
    cli_tune_prune(cmd, &job, cands, &n, quiet);
    int r = dpt_tune_spec(&spec, cands, n, &to, &res);
    have_res = r == 0;
    if (r) {
        rc = cli_fail(cmd, "%s", dpt_last_error());
        goto done;
    }
    if (ttt) {
        char w[96];
        int len = 0;
        if (spec.target_loss > 0) len = snprintf(w, sizeof w, "loss <= %g", spec.target_loss);
        if (spec.target_accuracy > 0)
            len += snprintf(w + len, sizeof w - (size_t)len, "%saccuracy >= %g", len ? " and " : "",
                            spec.target_accuracy);
        printf("ranked by time to target (%s on %s", w, on);
        if (auto_target)
            printf(", what the job's own %s reaches in %d epochs; --target-loss sets another",
                   job.to.opt.batch ? "batch size" : "full batch", job.to.epochs);
        printf("): \"median ms\" is training until reached, not per epoch, since the %s "
               "changes convergence; %.0e ms and more: not reached in %d epochs\n",
               nb > 1     ? "batch size"
               : nbal > 1 ? "balancing"
                          : "setting",
               1e3 * DPT_TUNE_NOT_REACHED, spec.epochs);
    } else {
        printf("ranked by median ms per epoch\n");
    }
    dpt_tune_print(&res, stdout);
    if (json_path) {
        /* what the medians are: per epoch, or to the target */
        tune_json tj = {&res, job_name(&job)};
        json_t *rb = json_object();
        json_object_set_new(rb, "metric",
                            json_string(ttt ? "seconds_to_target" : "seconds_per_epoch"));
        if (spec.target_loss > 0)
            json_object_set_new(rb, "target_loss", json_real(spec.target_loss));
        if (spec.target_accuracy > 0)
            json_object_set_new(rb, "target_accuracy", json_real(spec.target_accuracy));
        if (ttt) {
            json_object_set_new(rb, "on", json_string(on));
            json_object_set_new(rb, "max_epochs", json_integer(spec.epochs));
            json_object_set_new(rb, "target_from_job", json_boolean(auto_target));
        }
        rc = cli_write_json_plus(cmd, write_tune, &tj, json_path, "ranked_by", rb);
        json_decref(rb);
        if (rc) goto done;
    }
    rc = 0;
done:
    if (have_spec) dpt_pin_spec_free(&spec.engine.pin);
    if (have_res) dpt_tune_result_free(&res);
    free(cands);
    cli_job_free(&job);
    return rc;
}

/* ---- dpt limits ---- */

int dpt_cmd_limits(int argc, char **argv)
{
    const char *cmd = "limits";
    int threads[MAX_THREADS], nt = 0, c;
    long reps = 5;
    const char *json_path = NULL;
    static const struct option opts[] = {{"threads", required_argument, 0, 't'},
                                         {"reps", required_argument, 0, 'r'},
                                         {"json", required_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    optind = 1;
    while ((c = cli_getopt(cmd, argc, argv, opts)) != -1) {
        switch (c) {
        case 't':
            if ((nt = cli_thread_list(cmd, "threads", optarg, dpt_topo_physical_cores(), threads,
                                      MAX_THREADS)) < 0)
                return DPT_EXIT_USAGE;
            break;
        case 'r':
            if (cli_long(cmd, "reps", optarg, 1, 100, &reps)) return DPT_EXIT_USAGE;
            break;
        case 'j':
            json_path = optarg;
            break;
        case 'h':
            fputs("usage: dpt limits [--threads LIST] [--reps N] [--json FILE]\n"
                  "Measures this machine's ceilings at each thread count, the figures dpt bench\n"
                  "compares with: read bandwidth (GB/s, 1e9 bytes/s: every thread streams its\n"
                  "part of a 1 GiB array) and the fp32 FMA peak (GFLOP/s, an FMA counted as 2,\n"
                  "with the kernel table's ISA: the widest this CPU runs, or DPT_ISA's),\n"
                  "medians of the repetitions.\n"
                  "Prints one line per thread count: threads, read GB/s, FMA GFLOP/s.\n"
                  "  --threads 1,2,4 | 1-16 | all  (default: 1, powers of two, physical cores)\n"
                  "  --reps N     repetitions (default 5)\n"
                  "  --json FILE  the figures as a dpt-bench/1 file, limits only (default none)\n"
                  "  --help       this text\n"
                  "Warns, like dpt bench, when the machine was loaded or not at full clock.\n",
                  stdout);
            return 0;
        default:
            return DPT_EXIT_USAGE;
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (cli_check_output(cmd, "--json", json_path)) return DPT_EXIT_FAIL;
    if (!nt) nt = default_threads(threads, MAX_THREADS);
    dpt_bench_report rep;
    dpt_bench_report_init(&rep);
    dpt_bench_context_fill(&rep.context);
    printf("%8s %16s %16s\n", "threads", "read GB/s", "FMA GFLOP/s");
    for (int i = 0; i < nt; i++) {
        dpt_limits L;
        if (dpt_limits_measure_sized(threads[i], DPT_LIMITS_READ_BYTES, (int)reps, &L)) {
            dpt_bench_report_free(&rep);
            return cli_fail(cmd, "%s", dpt_last_error());
        }
        printf("%8d %16.2f %16.2f\n", threads[i], L.read_gbs, L.fma_gflops);
        if (dpt_bench_report_add_limit(&rep, threads[i], "none", L.read_gbs, L.fma_gflops)) {
            dpt_bench_report_free(&rep);
            return cli_fail(cmd, "%s", dpt_last_error());
        }
    }
    char warn[16][DPT_WARNING_LEN];
    size_t nw = dpt_bench_report_warnings(&rep, warn, 16);
    for (size_t i = 0; i < nw && i < 16; i++) fprintf(stderr, "dpt limits: warning: %s\n", warn[i]);
    const char *mw = cli_machine_warning(&rep, warn, 16);
    if (mw)
        printf("LOADED OR DISTURBED RUN: %.*s; the figures above may be low (warnings on "
               "stderr)\n",
               (int)strcspn(mw, ";"), mw);
    int rc = 0;
    if (json_path && dpt_bench_report_write_json(&rep, json_path))
        rc = cli_fail(cmd, "%s", dpt_last_error());
    dpt_bench_report_free(&rep);
    return rc;
}
