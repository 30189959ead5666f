/* dpt bench, dpt tune and dpt limits: timed training runs over rank and
 * thread counts and pinning policies, against the machine limits measured
 * in the same run; a race for the fastest setting; the limits alone.
 * Time is the training loop only (forward, backward, reduce, update), after
 * untimed warm-up epochs, each repetition from the same initial weights.
 * Under mpirun a run of n ranks trains on the first n; the others sleep in
 * a barrier meanwhile, and the time is rank 0's. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/job.h"
#include "cli/mpi_cli.h"
#include "dpt/engine.h"
#include "dpt/error.h"
#include "dpt/limits.h"
#include "dpt/mpi.h"
#include "dpt/report.h"
#include "dpt/stats.h"
#include "dpt/tune.h"
#include "dpt_config.h"
#include "dpt_revision.h"
#include "kernels/kernels.h"

#define MAX_THREADS 64
#define MAX_PINS    8
#define MAX_RANKS   64

typedef struct run_result {
    double sec_per_epoch;
    dpt_phase_times phases; /* per epoch, mean over threads */
    double imbalance;
    double final_loss, final_accuracy;
} run_result;

typedef struct epoch_acc {
    double seconds, imbalance;
    dpt_phase_times phases;
} epoch_acc;

static int acc_epoch(const dpt_epoch_stats *st, void *ud)
{
    epoch_acc *a = ud;
    a->seconds += st->seconds;
    a->phases.compute += st->mean.compute;
    a->phases.wait += st->mean.wait;
    a->phases.reduce += st->mean.reduce;
    a->phases.update += st->mean.update;
    a->phases.shuffle += st->mean.shuffle;
    a->phases.comm += st->mean.comm;
    if (st->imbalance > a->imbalance) a->imbalance = st->imbalance;
    return 0;
}

/* One timed run of the job at a thread count and pinning, over the ranks
 * of comm (NULL: this process alone). Makes exactly one cli_mpi_agree
 * call, after creating the engine, whatever fails; *agreed (when not
 * NULL): 1 when that call passed, so that further collectives are allowed. */
static int run_config(const char *cmd, cli_job *j, const dpt_comm *comm, int threads,
                      const char *pin, int warmup, int evaluate, int first, run_result *out,
                      int *agreed)
{
    dpt_engine_opts eo;
    cli_train_opts to = j->to;
    to.pin = pin;
    memset(out, 0, sizeof *out);
    out->final_loss = out->final_accuracy = NAN;
    if (agreed) *agreed = 0;
    dpt_engine *e = NULL;
    float *w0 = NULL;
    int rc = 0, have_opts = 0;
    size_t np = j->model.n_params;
    if (cli_engine_opts(cmd, &to, threads, &eo)) {
        rc = DPT_EXIT_USAGE;
    } else {
        have_opts = 1;
        eo.comm = comm;
        if (dpt_engine_create(&e, &j->model, &to.opt, &j->train, &eo))
            rc = cli_fail(cmd, "%s", dpt_last_error());
        else if (!(w0 = malloc(np * sizeof(float))))
            rc = cli_fail(cmd, "out of memory");
    }
    /* every rank has its engine, or all stop */
    if ((rc = cli_mpi_agree(rc))) {
        free(w0);
        goto done;
    }
    if (agreed) *agreed = 1;
    if (first && dpt_engine_warning(e))
        fprintf(stderr, "%sdpt %s: %d threads, pin %s: warning: %s\n",
                isatty(STDERR_FILENO) ? "\r\033[K" : "", cmd, threads, pin, dpt_engine_warning(e));
    dpt_model_init_params(&j->model, w0, to.seed, to.init);
    dpt_engine_reset(e, w0);
    epoch_acc acc = {0};
    if ((warmup > 0 && dpt_engine_train(e, warmup, NULL, NULL)) ||
        (dpt_engine_reset(e, w0), dpt_engine_train(e, to.epochs, acc_epoch, &acc))) {
        rc = cli_fail(cmd, "%s", dpt_last_error());
        free(w0);
        goto done;
    }
    free(w0);
    out->sec_per_epoch = acc.seconds / to.epochs;
    out->phases = acc.phases;
    out->phases.compute /= to.epochs;
    out->phases.wait /= to.epochs;
    out->phases.reduce /= to.epochs;
    out->phases.update /= to.epochs;
    out->phases.shuffle /= to.epochs;
    out->phases.comm /= to.epochs;
    out->imbalance = acc.imbalance;
    if (evaluate) {
        dpt_metrics mt;
        const dpt_dataset *acc_set =
            j->workload && j->workload->accuracy_is_test && j->test.n ? &j->test : &j->train;
        if (dpt_engine_evaluate(e, &j->train, &mt)) {
            rc = cli_fail(cmd, "%s", dpt_last_error());
            goto done;
        }
        out->final_loss = mt.loss;
        out->final_accuracy = mt.accuracy;
        if (acc_set != &j->train) {
            if (dpt_engine_evaluate(e, acc_set, &mt)) {
                rc = cli_fail(cmd, "%s", dpt_last_error());
                goto done;
            }
            out->final_accuracy = mt.accuracy;
        }
    }
done:
    dpt_engine_destroy(e);
    if (have_opts) dpt_pin_spec_free(&eo.pin);
    return rc;
}

/* The ranks of one rank count: the communicator of its first n ranks
 * (made once, before the timing) and whether this rank is one of them. */
typedef struct rank_set {
    int n;
    int member;
    int whole; /* n is the whole job: every rank runs, as without --ranks */
    int own;   /* comm came from dpt_mpi_comm_first: free it */
    dpt_comm sub;
    const dpt_comm *comm; /* for the engine; NULL with one process */
} rank_set;

/* One timed run on the ranks of rs. Every rank makes the same collective
 * calls whatever fails: the engine check (inside run_config, or its
 * counterpart on the ranks that sit out), then, when only some ranks run,
 * the idle barrier that the others wait in asleep and the members join
 * after their run, and one more agreement on how the run went. */
static int run_on_ranks(const char *cmd, cli_job *j, const rank_set *rs, int threads,
                        const char *pin, int warmup, int evaluate, int first, run_result *out)
{
    if (rs->whole)
        return run_config(cmd, j, rs->comm, threads, pin, warmup, evaluate, first, out, NULL);
    int agreed = 0, rc;
    if (rs->member) {
        rc = run_config(cmd, j, rs->comm, threads, pin, warmup, evaluate, first, out, &agreed);
    } else {
        memset(out, 0, sizeof *out);
        out->sec_per_epoch = out->final_loss = out->final_accuracy = NAN;
        rc = cli_mpi_agree(0);
        agreed = rc == 0;
    }
    if (!agreed) return rc; /* an agreement failed on every rank: no more collectives */
    int brc = dpt_mpi_idle_barrier();
    if (brc && !rc) rc = cli_fail(cmd, "%s", dpt_last_error());
    return cli_mpi_agree(rc);
}

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

static void fill_context(dpt_bench_context *c)
{
    dpt_bench_context_probe(c, "/");
    dpt_topo *t;
    if (dpt_topo_open(&t, NULL, NULL) == 0) {
        c->packages = dpt_topo_count(t, HWLOC_OBJ_PACKAGE);
        c->numa_nodes = dpt_topo_count(t, HWLOC_OBJ_NUMANODE);
        c->cores = dpt_topo_count(t, HWLOC_OBJ_CORE);
        c->pus = dpt_topo_count(t, HWLOC_OBJ_PU);
        dpt_topo_close(t);
    }
    snprintf(c->isa, sizeof c->isa, "%s", dpt_kernels_get()->isa);
    snprintf(c->compiler, sizeof c->compiler, "%s", DPT_COMPILER);
    snprintf(c->cflags, sizeof c->cflags, "buildtype=%s sanitize=%s avx2-kernels=%s", DPT_BUILDTYPE,
             DPT_SANITIZE, dpt_build_has_avx2() ? "-mavx2 -mfma -mprfchw" : "off");
    snprintf(c->dpt_version, sizeof c->dpt_version, "%s", DPT_VERSION);
    snprintf(c->git_revision, sizeof c->git_revision, "%s", DPT_REVISION);
    /* the runtime the compiler links for -fopenmp, not a guess at run time */
#if defined(__clang__)
    const char *rt = "libomp";
#else
    const char *rt = "libgomp";
#endif
    snprintf(c->openmp, sizeof c->openmp, "%s, OpenMP %d, max threads %d", rt, _OPENMP,
             omp_get_max_threads());
}

/* The engine flags every run of the sweep shares, for the report. */
static void engine_context(const cli_train_opts *o, char *buf, size_t cap)
{
    static const char *const reduce[] = {"tree", "scatter"}, *const overlap[] = {"auto", "off",
                                                                                 "on"};
    snprintf(buf, cap, "reduce=%s balance=%s shuffle=%s batching=%s leaves=%d comm-overlap=%s",
             reduce[o->reduce], o->balance == DPT_BALANCE_ADAPTIVE ? "adaptive" : "static",
             o->shuffle != 0 && o->opt.kind != DPT_OPT_GD && o->opt.batch != 0 ? "epoch" : "none",
             o->batching_local ? "local" : "global", o->deterministic, overlap[o->overlap]);
}

static const char *job_name(const cli_job *j)
{
    return j->workload ? j->workload->name : "custom";
}

static void progress(int on, const char *what, int i, int n)
{
    if (!on) return;
    fprintf(stderr, "\r\033[K%s %d/%d", what, i, n);
    if (i == n) fprintf(stderr, "\r\033[K");
    fflush(stderr);
}

/* Rank 0 measures alone (the limits are one process's); the other ranks
 * wait asleep in the idle barrier. Then every rank agrees on the outcome. */
static int measure_limits(const char *cmd, dpt_bench_report *rep, const int *threads, int nt,
                          int quiet)
{
    int rc = 0;
    if (cli_mpi_rank() == 0) {
        for (int i = 0; i < nt && !rc; i++) {
            int seen = 0;
            for (int k = 0; k < i; k++) seen |= threads[k] == threads[i];
            if (seen) continue;
            dpt_limits L;
            progress(!quiet && isatty(2), "measuring limits, threads", threads[i],
                     threads[nt - 1] > threads[i] ? threads[nt - 1] : threads[i]);
            if (dpt_limits_measure_sized(threads[i], DPT_LIMITS_QUICK_BYTES, 3, &L))
                rc = cli_fail(cmd, "limits: %s", dpt_last_error());
            else if (dpt_bench_report_add_limit(rep, threads[i], "none", L.read_gbs, L.fma_gflops))
                rc = cli_fail(cmd, "%s", dpt_last_error());
        }
        if (!quiet && isatty(2)) fprintf(stderr, "\r\033[K");
    }
    if (dpt_mpi_idle_barrier() && !rc) rc = cli_fail(cmd, "%s", dpt_last_error());
    return cli_mpi_agree(rc);
}

static const char *const bench_usage =
    "usage: dpt bench (--workload NAME | training flags) [flags]\n"
    "  --workload linreg|logreg|mlp-seed|mlp-seed-sgd|mlp-wide|fmnist-mlp\n"
    "  --threads 1,2,4 | 1-16 | all   (default: 1, powers of two, physical cores)\n"
    "  --ranks 1,2,4 | 1-4 | all      under mpirun: run each configuration on the first\n"
    "                                 N ranks of the job (default: all of them)\n"
    "  --pin compact,scatter,numa,none | list:0,2-5   (default compact)\n"
    "  --reps N (5)  --warmup N epochs (1)  --epochs N  --no-limits\n"
    "  --json FILE  --csv FILE  --quiet\n"
    "Any `dpt train` flag may follow a workload and overrides it.\n"
    "Configurations are ranks x threads x pins, interleaved within each repetition.\n"
    "Speedup is against 1 rank x 1 thread (without that row, 1 thread at the same\n"
    "ranks), efficiency = speedup / (ranks x threads) (over the baseline's ranks).\n"
    "Under mpirun the ranks outside a run wait asleep, and times are rank 0's.\n"
    "%BW and %peak compare with limits that one process measures (rank 0 alone),\n"
    "so rows of more than one rank leave them empty.\n";

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
    OPT_BALANCES
};

int dpt_cmd_bench(int argc, char **argv)
{
    const char *cmd = "bench";
    cli_job job;
    cli_job_init(&job);
    int reps = 5, warmup = 1, limits = 1, quiet = 0;
    sweep sw = {0};
    const char *json_path = NULL, *csv_path = NULL;
    dpt_bench_report rep;
    dpt_bench_report_init(&rep);
    run_result *runs = NULL;
    double *samples = NULL;
    int ranks[MAX_RANKS], nr = 0;
    rank_set sets[MAX_RANKS];
    int nsets = 0; /* made so far: freed at the end */
    int rc;
    static const struct option opts[] = {CLI_JOB_OPTIONS,
                                         {"ranks", required_argument, 0, OPT_RANKS},
                                         {"reps", required_argument, 0, OPT_REPS},
                                         {"warmup", required_argument, 0, OPT_WARMUP},
                                         {"json", required_argument, 0, OPT_JSON},
                                         {"csv", required_argument, 0, OPT_CSV},
                                         {"no-limits", no_argument, 0, OPT_NOLIMITS},
                                         {"quiet", no_argument, 0, OPT_QUIET},
                                         {"help", no_argument, 0, OPT_HELP},
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
        case OPT_QUIET:
            quiet = 1;
            break;
        case OPT_HELP:
            fputs(bench_usage, stdout);
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
    if (!nr) ranks[nr++] = size;
    /* a run on fewer ranks needs every row; when every run takes all the
     * job's ranks, each may load just its own (cli_job_load). A rank that
     * failed to load stops every rank before the first barrier. */
    job.per_rank = 1;
    for (int i = 0; i < nr; i++) job.per_rank &= ranks[i] == size;
    rc = cli_job_load(cmd, &job, sweep_finish(&sw, &job));
    const int nt = sw.nt, np = sw.np, *threads = sw.threads;
    char(*pins)[32] = sw.pins;

    const int ncfg = nr * nt * np;
    if (!rc) {
        runs = calloc((size_t)ncfg * reps, sizeof *runs);
        samples = malloc((size_t)reps * sizeof *samples);
        if (!runs || !samples) rc = cli_fail(cmd, "out of memory");
    }
    if ((rc = cli_mpi_agree(rc))) goto done;

    /* a communicator per rank count, before the timing: dpt_mpi_comm_first
     * is a collective on every rank, so every rank makes each one even when
     * one of them failed, and they agree once all are made */
    int one_rank = 0, cerr = 0;
    for (; nsets < nr; nsets++) {
        rank_set *rs = &sets[nsets];
        memset(rs, 0, sizeof *rs);
        rs->n = ranks[nsets];
        rs->member = 1;
        one_rank |= rs->n == 1;
        if (rs->n == size) {
            rs->whole = 1;
            rs->comm = cli_mpi_comm();
            continue;
        }
        if (dpt_mpi_comm_first(rs->n, &rs->sub, &rs->member)) {
            if (!cerr) cerr = cli_fail(cmd, "%s", dpt_last_error());
            continue;
        }
        rs->own = 1;
        rs->comm = &rs->sub;
    }
    if ((rc = cli_mpi_agree(cerr))) goto done;

    fill_context(&rep.context);
    engine_context(&job.to, rep.context.engine, sizeof rep.context.engine);
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
    /* the limits only serve rows of one rank */
    if (limits && one_rank && (rc = measure_limits(cmd, &rep, threads, nt, quiet))) goto done;

    /* configurations interleaved within each repetition: drift spreads evenly */
    const int tty = !quiet && rank0 && isatty(2);
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < ncfg; k++) {
            progress(tty, "running", r * ncfg + k + 1, reps * ncfg);
            if ((rc = run_on_ranks(cmd, &job, &sets[k / (nt * np)], threads[k % nt],
                                   pins[(k / nt) % np], r == 0 ? warmup : 0, r == reps - 1, r == 0,
                                   &runs[(size_t)k * reps + r])))
                goto done;
        }
    /* the report is rank 0's times: the other ranks are done */
    if (!rank0) {
        rc = 0;
        goto done;
    }

    const int linear = job.model.layers == 1;
    for (int k = 0; k < ncfg; k++) {
        const run_result *rr = &runs[(size_t)k * reps];
        for (int r = 0; r < reps; r++) samples[r] = rr[r].sec_per_epoch;
        dpt_bench_result *res =
            dpt_bench_report_add(&rep, job_name(&job), threads[k % nt], pins[(k / nt) % np],
                                 dpt_kernels_get()->isa, (long)job.to.opt.batch, samples, reps);
        if (!res) {
            rc = cli_fail(cmd, "%s", dpt_last_error());
            goto done;
        }
        res->ranks = sets[k / (nt * np)].n;
        double ph[5][64];
        int m = reps < 64 ? reps : 64;
        for (int r = 0; r < m; r++) {
            ph[0][r] = rr[r].phases.compute;
            ph[1][r] = rr[r].phases.reduce;
            ph[2][r] = rr[r].phases.update;
            ph[3][r] = rr[r].phases.wait;
            ph[4][r] = rr[r].phases.comm;
            samples[r] = rr[r].imbalance;
        }
        res->phases.compute = dpt_stats_median(ph[0], m);
        res->phases.reduce = dpt_stats_median(ph[1], m);
        res->phases.update = dpt_stats_median(ph[2], m);
        res->phases.wait = dpt_stats_median(ph[3], m);
        res->phases.comm = dpt_stats_median(ph[4], m);
        res->imbalance = dpt_stats_median(samples, m);
        res->final_loss = rr[reps - 1].final_loss;
        res->final_accuracy = rr[reps - 1].final_accuracy;
        res->work_samples = (double)job.train.n;
        res->work_flops = 6.0 * (double)job.model.n_params * (double)job.train.n;
        if (linear) res->work_bytes = (double)job.train.n * job.train.d * sizeof(float);
    }
    if (dpt_bench_report_derive(&rep)) {
        rc = cli_fail(cmd, "%s", dpt_last_error());
        goto done;
    }
    dpt_bench_report_print_table(&rep, stdout);
    if (job.workload) {
        const cli_workload *w = job.workload;
        double fl = rep.results[0].final_loss, fa = rep.results[0].final_accuracy;
        if (!isnan(w->ref_loss))
            printf("final loss %.7g, WORKLOADS.md reference %.7g (%+.2e relative)\n", fl,
                   w->ref_loss, (fl - w->ref_loss) / w->ref_loss);
        if (!isnan(w->ref_accuracy))
            printf("final %saccuracy %.4f, reference %.4f\n", w->accuracy_is_test ? "test " : "",
                   fa, w->ref_accuracy);
    }
    char warn[16][DPT_WARNING_LEN];
    size_t nw = dpt_bench_report_warnings(&rep, warn, 16);
    for (size_t i = 0; i < nw && i < 16; i++) fprintf(stderr, "dpt bench: warning: %s\n", warn[i]);
    /* only rank 0 gets here, and writes the files */
    if (json_path && dpt_bench_report_write_json(&rep, json_path)) {
        rc = cli_fail(cmd, "%s", dpt_last_error());
        goto done;
    }
    if (csv_path && dpt_bench_report_write_csv(&rep, csv_path)) {
        rc = cli_fail(cmd, "%s", dpt_last_error());
        goto done;
    }
    rc = 0;
done:
    for (int i = 0; i < nsets; i++)
        if (sets[i].own) dpt_mpi_comm_free(&sets[i].sub);
    free(runs);
    free(samples);
    dpt_bench_report_free(&rep);
    cli_job_free(&job);
    return rc;
}

/* ---- dpt tune ---- */

typedef struct tune_ctx {
    const char *cmd;
    cli_job *job;
    int warm;
    int exit_status; /* a run failed and printed why: the status to exit with */
} tune_ctx;

static double tune_measure(void *ud, const dpt_tune_candidate *c, int rep)
{
    tune_ctx *t = ud;
    cli_job *j = t->job;
    size_t keep = j->to.opt.batch;
    int keep_bal = j->to.balance;
    if (c->batch > 0) j->to.opt.batch = (size_t)c->batch;
    if (c->balance[0])
        j->to.balance = strcmp(c->balance, "adaptive") ? DPT_BALANCE_STATIC : DPT_BALANCE_ADAPTIVE;
    run_result rr;
    int rc = run_config(t->cmd, j, cli_mpi_comm(), c->threads, c->pin, rep == 0 ? t->warm : 0, 0,
                        rep == 0, &rr, NULL);
    j->to.opt.batch = keep;
    j->to.balance = keep_bal;
    if (rc) {
        t->exit_status = rc; /* run_config printed the message */
        return (double)DPT_EINVAL;
    }
    return rr.sec_per_epoch;
}

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
    int have_res = 0, rc;
    static const struct option opts[] = {CLI_JOB_OPTIONS,
                                         {"batches", required_argument, 0, OPT_BATCHES},
                                         {"balances", required_argument, 0, OPT_BALANCES},
                                         {"warmup", required_argument, 0, OPT_WARMUP},
                                         {"json", required_argument, 0, OPT_JSON},
                                         {"quiet", no_argument, 0, OPT_QUIET},
                                         {"help", no_argument, 0, OPT_HELP},
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
            fputs("usage: dpt tune (--workload NAME | training flags) [--threads LIST] "
                  "[--pin compact,scatter,...] [--batches 64,128,...] "
                  "[--balances static,adaptive] [--warmup N] [--json FILE]\n",
                  stdout);
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
    if (nb && job.to.opt.kind == DPT_OPT_GD) {
        rc = cli_usage_error(cmd, "--batches: the optimizer is full-batch gd");
        goto done;
    }
    for (int k = 0; k < nbal; k++)
        if (bals[k] == DPT_BALANCE_ADAPTIVE &&
            (rc = cli_balance_conflict(cmd, &job.to, "--balances")))
            goto done;
    if (!nb) batches[nb++] = 0;
    if ((rc = cli_job_load(cmd, &job, sweep_finish(&sw, &job)))) goto done;
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
    tune_ctx tc = {cmd, &job, warmup, 0};
    int r = dpt_tune_run(cands, n, &to, tune_measure, &tc, &res);
    have_res = r == 0;
    if (r) {
        rc = tc.exit_status ? tc.exit_status : cli_fail(cmd, "%s", dpt_last_error());
        goto done;
    }
    dpt_tune_print(&res, stdout);
    if (json_path && dpt_tune_write_json(&res, job_name(&job), json_path)) {
        rc = cli_fail(cmd, "%s", dpt_last_error());
        goto done;
    }
    rc = 0;
done:
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
            puts("usage: dpt limits [--threads LIST] [--reps N] [--json FILE]");
            return 0;
        default:
            return DPT_EXIT_USAGE;
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!nt) nt = default_threads(threads, MAX_THREADS);
    dpt_bench_report rep;
    dpt_bench_report_init(&rep);
    fill_context(&rep.context);
    printf("%8s %16s %16s\n", "threads", "read GB/s", "FMA GFLOP/s");
    for (int i = 0; i < nt; i++) {
        dpt_limits L;
        if (dpt_limits_measure_sized(threads[i], DPT_LIMITS_READ_BYTES, (int)reps, &L)) {
            dpt_bench_report_free(&rep);
            return cli_fail(cmd, "%s", dpt_last_error());
        }
        printf("%8d %16.2f %16.2f\n", threads[i], L.read_gbs, L.fma_gflops);
        dpt_bench_report_add_limit(&rep, threads[i], "none", L.read_gbs, L.fma_gflops);
    }
    int rc = 0;
    if (json_path && dpt_bench_report_write_json(&rep, json_path))
        rc = cli_fail(cmd, "%s", dpt_last_error());
    dpt_bench_report_free(&rep);
    return rc;
}
