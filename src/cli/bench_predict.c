/* dpt bench --predict TARGET: the predicted time per step and the speedup
 * curve of a job on a machine we may not have (a synthetic topology, an
 * lstopo XML export, the reference servers genoa and spr, or this one),
 * over thread counts and pin policies, from a calibration of this machine
 * and the cost function (dpt/predict.h, docs/scaling.md). Also
 * --calibrate-out alone (calibrate and save), the warnings train, bench
 * and tune print, and tune's pruning. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/job.h"
#include "cli/outpath.h"
#include "cli/predict_cli.h"
#include "dpt/error.h"
#include "dpt/predict.h"
#include "dpt/run.h"
#include "kernels/kernels.h"

#define MAX_COUNTS 256
#define MAX_PINS   8

int cli_bench_wants_predict(int argc, char **argv)
{
    /* its flags, so that one without --predict is explained there */
    static const char *const own[] = {"--predict", "--calibrate-out", "--calibration", "--machine",
                                      "--machine-set"};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        for (size_t k = 0; k < sizeof own / sizeof own[0]; k++) {
            size_t len = strlen(own[k]);
            if (!strncmp(argv[i], own[k], len) && (argv[i][len] == '\0' || argv[i][len] == '='))
                return 1;
        }
    }
    return 0;
}

static const char *const usage =
    "usage: dpt bench --predict TARGET (--workload NAME | training flags) [flags]\n"
    "       dpt bench --calibrate-out FILE (--workload NAME | training flags)\n"
    "Predicts the time per step and epoch, the speedup over 1 thread and the time of\n"
    "every phase (gather, compute, reduce, update, sync, epoch) at each thread count\n"
    "and pin policy on TARGET, and which phase stops the curve from which thread\n"
    "count. Nothing is trained: this machine's costs are calibrated (a few seconds),\n"
    "the engine's cost function counts what each thread moves on the target's\n"
    "topology, and a machine model turns bytes into time (docs/scaling.md).\n"
    "  --predict TARGET      genoa | spr (the reference servers), this (this machine),\n"
    "                        an hwloc synthetic string (\"pack:2 numa:4 l3:2 core:6\";\n"
    "                        without a pu level, one PU per core),\n"
    "                        or an hwloc XML file (lstopo --of xml, dpt topo --xml)\n"
    "  --machine M           genoa | spr | this | FILE of key = value lines or JSON\n"
    "                        (default: the target's own for genoa, spr and this;\n"
    "                        genoa's figures for other targets); a FILE overrides\n"
    "                        the default's keys\n"
    "  --machine-set KEY=VAL override one key (repeatable; keys in docs/scaling.md)\n"
    "  --calibration FILE    this machine's costs from a dpt-calibration/1 file\n"
    "                        (default: calibrate now)\n"
    "  --calibrate-out FILE  save the calibration (alone: calibrate and stop)\n"
    "  --reps N              calibration repetitions (default 5)\n"
    "  --threads 1,2,4 | 1-192 | all  (default: 1, powers of two, one package's cores,\n"
    "                       the target's cores)\n"
    "  --pin compact,scatter,numa,none | list:...  (default: what dpt train picks\n"
    "                        on the target for the workload, docs/pinning.md)\n"
    "  --json FILE           the prediction as dpt-predict/1 JSON (default: none)\n"
    "  --quiet               no header line on stderr\n"
    "  --workload linreg|logreg|mlp-seed|mlp-seed-sgd|mlp-wide|fmnist-mlp\n"
    "Any `dpt train` flag may follow a workload and overrides it (--reduce,\n"
    "--deterministic, --balance and --batch change what is predicted).\n";

enum {
    OPT_PREDICT = 1400,
    OPT_MACHINE,
    OPT_MACHINE_SET,
    OPT_CALIBRATION,
    OPT_CALIBRATE_OUT,
    OPT_REPS,
    OPT_JSON,
    OPT_QUIET,
    OPT_HELP
};

/* The target's topology, and the machine model it gets by default. */
static int open_target(const char *cmd, const char *target, dpt_topo **t, dpt_machine *mach,
                       int *is_this)
{
    struct stat sb;
    *is_this = 0;
    if (!strcmp(target, "genoa") || !strcmp(target, "spr")) {
        dpt_machine_preset(target, mach);
        if (dpt_topo_open(t, mach->topology, NULL)) return cli_fail(cmd, "%s", dpt_last_error());
        return 0;
    }
    dpt_machine_preset("genoa", mach);
    if (!strcmp(target, "this")) {
        *is_this = 1;
        if (dpt_topo_open(t, NULL, NULL)) return cli_fail(cmd, "%s", dpt_last_error());
        return 0;
    }
    if (strchr(target, ':')) {
        /* hwloc wants the PU level; without one, a PU per core */
        char syn[512];
        snprintf(syn, sizeof syn, "%s%s", target, strstr(target, "pu:") ? "" : " pu:1");
        if (dpt_topo_open(t, syn, NULL))
            return cli_usage_error(cmd, "--predict: '%s': %s", target, dpt_last_error());
        return 0;
    }
    if (stat(target, &sb) == 0 && S_ISREG(sb.st_mode)) {
        if (dpt_topo_open(t, NULL, target)) return cli_fail(cmd, "--predict: %s", dpt_last_error());
        return 0;
    }
    return cli_usage_error(cmd,
                           "--predict: '%s' is not genoa, spr, this, an hwloc synthetic string "
                           "(e.g. \"pack:2 numa:4 core:24\") or an XML file",
                           target);
}

/* --machine: a preset name, or a file over the target's default. */
static int apply_machine(const char *cmd, const char *spec, dpt_machine *mach,
                         const dpt_calibration *cal)
{
    if (!strcmp(spec, "this")) {
        dpt_machine_from_calibration(cal, mach);
        return 0;
    }
    if (!strcmp(spec, "genoa") || !strcmp(spec, "spr")) {
        dpt_machine_preset(spec, mach);
        return 0;
    }
    struct stat sb;
    if (stat(spec, &sb) != 0)
        return cli_usage_error(cmd, "--machine: '%s' is not genoa, spr, this or a file", spec);
    if (dpt_machine_load(mach, spec)) return cli_fail(cmd, "--machine: %s", dpt_last_error());
    return 0;
}

/* 1, powers of two, one package's cores where there are several (the
 * one-socket point, in order), the target's cores */
static int default_counts(int cores, int packages, int *out)
{
    int n = 0;
    const int pk = packages > 1 && cores % packages == 0 ? cores / packages : 0;
    for (int t = 1; t < cores && n < MAX_COUNTS - 2; t *= 2) {
        if (pk < t && (n == 0 || out[n - 1] < pk)) out[n++] = pk;
        out[n++] = t;
    }
    if (pk > 0 && (n == 0 || out[n - 1] < pk)) out[n++] = pk;
    out[n++] = cores > 0 ? cores : 1;
    return n;
}

static size_t batch_rows(const dpt_optim_spec *o, size_t n)
{
    return (o->kind == DPT_OPT_GD || o->batch == 0 || o->batch > n) ? n : o->batch;
}

/* The calibration on the job's rows: gradients of up to max_rows rows,
 * streamed through the whole set when the engine reads rows in place (no
 * reshuffled or adaptive batches, which it copies into a buffer first). */
static int calibrate_job(const char *cmd, const cli_job *job, const dpt_engine_opts *eo,
                         size_t max_rows, int reps, int flags, dpt_calibration *cal)
{
    const dpt_dataset *ds = &job->train;
    if (max_rows > ds->n) max_rows = ds->n;
    if (max_rows < 1) max_rows = 1;
    const size_t B = batch_rows(&job->to.opt, ds->n);
    if (!(eo->shuffle && B < ds->n) && eo->balance != DPT_BALANCE_ADAPTIVE) flags |= DPT_CAL_STREAM;
    if (dpt_calibrate(&job->model, &job->to.opt, ds->X, ds->ld, ds->y, ds->n, max_rows, reps, flags,
                      cal))
        return cli_fail(cmd, "calibration: %s", dpt_last_error());
    return 0;
}

int cli_bench_predict(int argc, char **argv)
{
    const char *cmd = "bench";
    cli_job job;
    cli_job_init(&job);
    const char *target = NULL, *machine = NULL, *cal_in = NULL, *cal_out = NULL, *json = NULL;
    const char *threads_arg = NULL, *sets[32];
    int nsets = 0, quiet = 0, reps = 5, rc, c;
    char pins[MAX_PINS][32];
    int npins = 0;
    dpt_topo *topo = NULL;
    dpt_predict_result res = {0};
    dpt_engine_opts eo;
    int have_eo = 0;
    static const struct option opts[] = {{"predict", required_argument, 0, OPT_PREDICT},
                                         {"machine", required_argument, 0, OPT_MACHINE},
                                         {"machine-set", required_argument, 0, OPT_MACHINE_SET},
                                         {"calibration", required_argument, 0, OPT_CALIBRATION},
                                         {"calibrate-out", required_argument, 0, OPT_CALIBRATE_OUT},
                                         {"reps", required_argument, 0, OPT_REPS},
                                         {"json", required_argument, 0, OPT_JSON},
                                         {"quiet", no_argument, 0, OPT_QUIET},
                                         {"help", no_argument, 0, OPT_HELP},
                                         CLI_JOB_OPTIONS,
                                         {0, 0, 0, 0}};
    if ((rc = cli_job_preset(cmd, &job, argc, argv))) goto done;
    rc = DPT_EXIT_USAGE;
    optind = 1;
    long v;
    while ((c = cli_getopt(cmd, argc, argv, opts)) != -1) {
        switch (c) {
        case '?':
            goto done;
        case OPT_PREDICT:
            target = optarg;
            break;
        case OPT_MACHINE:
            machine = optarg;
            break;
        case OPT_MACHINE_SET:
            if (nsets == 32 || !strchr(optarg, '=')) {
                rc = cli_usage_error(cmd, "--machine-set: '%s' is not KEY=VALUE%s", optarg,
                                     nsets == 32 ? " (at most 32 of them)" : "");
                goto done;
            }
            sets[nsets++] = optarg;
            break;
        case OPT_CALIBRATION:
            cal_in = optarg;
            break;
        case OPT_CALIBRATE_OUT:
            cal_out = optarg;
            break;
        case OPT_REPS:
            if (cli_long(cmd, "reps", optarg, 1, 64, &v)) goto done;
            reps = (int)v;
            break;
        case OPT_JSON:
            json = optarg;
            break;
        case OPT_QUIET:
            quiet = 1;
            break;
        case OPT_HELP:
            fputs(usage, stdout);
            rc = 0;
            goto done;
        case 1122: /* --threads: a list, read once the target's cores are known */
            threads_arg = optarg;
            break;
        case 1116: { /* --pin: a list */
            char buf[256];
            const char *tok[MAX_PINS];
            int n = 1;
            if (!strncmp(optarg, "list:", 5))
                tok[0] = optarg;
            else if ((n = cli_split(cmd, "pin", optarg, buf, sizeof buf, tok, MAX_PINS,
                                    "compact,scatter")) < 0)
                goto done;
            for (int i = 0; i < n; i++) {
                dpt_pin_spec sp;
                if (strlen(tok[i]) >= 32 || dpt_pin_parse(tok[i], &sp)) {
                    rc = cli_usage_error(cmd, "--pin: %s",
                                         strlen(tok[i]) >= 32 ? "longer than 31 characters"
                                                              : dpt_last_error());
                    goto done;
                }
                dpt_pin_spec_free(&sp);
                snprintf(pins[i], 32, "%s", tok[i]);
            }
            npins = n;
            break;
        }
        default: {
            int r = cli_job_flag(cmd, &job, c, optarg);
            if (r <= 0) goto done;
        }
        }
    }
    if (optind < argc) {
        rc = cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
        goto done;
    }
    if (!target && (machine || nsets || !cal_out)) {
        rc = cli_usage_error(cmd, "%s needs --predict TARGET",
                             machine ? "--machine"
                             : nsets ? "--machine-set"
                                     : "--calibration");
        goto done;
    }
    if ((rc = cli_check_output(cmd, "--json", json)) ||
        (rc = cli_check_output(cmd, "--calibrate-out", cal_out)))
        goto done;
    if (cal_in && cal_out) {
        rc = cli_usage_error(cmd, "--calibration and --calibrate-out exclude each other");
        goto done;
    }
    /* the target first: a bad one is a usage error before any work */
    dpt_machine mach;
    int is_this = 0;
    if (target && (rc = open_target(cmd, target, &topo, &mach, &is_this))) goto done;
    if (machine && strcmp(machine, "genoa") && strcmp(machine, "spr") && strcmp(machine, "this")) {
        /* a bad file says so before any work */
        struct stat sb;
        dpt_machine probe = mach;
        if (stat(machine, &sb) != 0) {
            rc = cli_usage_error(cmd, "--machine: '%s' is not genoa, spr, this or a file", machine);
            goto done;
        }
        if (dpt_machine_load(&probe, machine)) {
            rc = cli_fail(cmd, "--machine: %s", dpt_last_error());
            goto done;
        }
    }
    for (int i = 0; i < nsets; i++) {
        char key[64];
        const char *eq = strchr(sets[i], '=');
        snprintf(key, sizeof key, "%.*s", (int)(eq - sets[i]), sets[i]);
        dpt_machine probe;
        dpt_machine_preset("genoa", &probe);
        if (dpt_machine_set(&probe, key, eq + 1)) {
            rc = cli_usage_error(cmd, "--machine-set: %s", dpt_last_error());
            goto done;
        }
    }
    int counts[MAX_COUNTS], ncounts = 0;
    if (target) {
        int cores = dpt_topo_count(topo, HWLOC_OBJ_CORE);
        if (cores < 1) cores = dpt_topo_count(topo, HWLOC_OBJ_PU);
        if (threads_arg) {
            if ((ncounts =
                     cli_thread_list(cmd, "threads", threads_arg, cores, counts, MAX_COUNTS)) < 0) {
                rc = DPT_EXIT_USAGE;
                goto done;
            }
        } else {
            ncounts = default_counts(cores, dpt_topo_count(topo, HWLOC_OBJ_PACKAGE), counts);
        }
    }

    if ((rc = cli_job_load(cmd, &job, dpt_topo_physical_cores()))) goto done;
    const size_t n = job.train.n, B = batch_rows(&job.to.opt, n);
    const char *pin_why = NULL;
    if (!npins && job.to.pin_given) {
        snprintf(pins[npins++], 32, "%s", job.to.pin);
    } else if (!npins && target) {
        /* what dpt train would pick on the target, at the largest count
         * that leaves cores free (all cores make every policy the same) */
        int cores = dpt_topo_count(topo, HWLOC_OBJ_CORE), ref = 0;
        for (int i = 0; i < ncounts; i++)
            if (counts[i] > ref && (counts[i] < cores || cores < 1)) ref = counts[i];
        if (!ref) ref = counts[0];
        const double fpb =
            dpt_model_train_flops(&job.model) / ((double)(job.model.width[0] + 1) * sizeof(float));
        snprintf(pins[npins++], 32, "%s",
                 dpt_pin_name(dpt_pin_default_for(topo, ref, fpb, 0, &pin_why)));
    }
    char desc[128];
    dpt_model_describe(&job.model, desc, sizeof desc);
    if ((rc = cli_engine_opts(cmd, &job.to, 1, &eo))) goto done;
    have_eo = 1;
    dpt_calibration cal;
    if (cal_in) {
        if (dpt_calibration_read(&cal, cal_in)) {
            rc = cli_fail(cmd, "--calibration: %s", dpt_last_error());
            goto done;
        }
        if (strcmp(cal.model, desc)) {
            rc = cli_fail(cmd, "--calibration: %s is a calibration of %s, not of this job's %s",
                          cal_in, cal.model, desc);
            goto done;
        }
    } else {
        if (!quiet)
            fprintf(stderr, "dpt bench: calibrating %s on this machine (gradients of 1-%zu rows)\n",
                    desc, B);
        if ((rc = calibrate_job(
                 cmd, &job, &eo, B, reps,
                 is_this || cal_out || (machine && !strcmp(machine, "this")) ? 0 : DPT_CAL_NO_DRAM,
                 &cal)))
            goto done;
    }
    if (cal_out && dpt_calibration_write(&cal, cal_out)) {
        rc = cli_fail(cmd, "--calibrate-out: %s", dpt_last_error());
        goto done;
    }
    if (!target) {
        if (!quiet)
            printf("calibration of %s (%s, isa %s) written to %s\n", desc, cal.cpu, cal.isa,
                   cal_out);
        rc = 0;
        goto done;
    }
    if (is_this) dpt_machine_from_calibration(&cal, &mach);
    if (machine && (rc = apply_machine(cmd, machine, &mach, &cal))) goto done;
    for (int i = 0; i < nsets; i++) {
        char key[64];
        const char *eq = strchr(sets[i], '=');
        snprintf(key, sizeof key, "%.*s", (int)(eq - sets[i]), sets[i]);
        dpt_machine_set(&mach, key, eq + 1); /* checked above */
    }
    if (dpt_predict(topo, &mach, &cal, &job.model, &job.to.opt, n, &eo, counts, ncounts,
                    (const char(*)[32])pins, npins, &res)) {
        rc = cli_fail(cmd, "%s", dpt_last_error());
        goto done;
    }
    if (!quiet)
        fprintf(stderr,
                "dpt bench: predicting %s: %s, %zu rows, batch %zu, on %s (%d packages, %d NUMA "
                "nodes, %d cores, %d PUs), machine model %s, calibrated on %s (isa %s)\n",
                job.workload ? job.workload->name : "custom", desc, n, B, target,
                dpt_topo_count(topo, HWLOC_OBJ_PACKAGE), dpt_topo_count(topo, HWLOC_OBJ_NUMANODE),
                dpt_topo_count(topo, HWLOC_OBJ_CORE), dpt_topo_count(topo, HWLOC_OBJ_PU), mach.name,
                cal.cpu[0] ? cal.cpu : "?", cal.isa);
    if (!quiet && pin_why) fprintf(stderr, "dpt bench: pin: %s (--pin to choose)\n", pin_why);
    dpt_predict_print(&res, stdout);
    if (json && dpt_predict_write_json(&res, job.workload ? job.workload->name : "custom", desc,
                                       target, &mach, &cal, json)) {
        rc = cli_fail(cmd, "--json: %s", dpt_last_error());
        goto done;
    }
    rc = 0;
done:
    if (have_eo) dpt_pin_spec_free(&eo.pin);
    dpt_predict_result_free(&res);
    dpt_topo_close(topo);
    cli_job_free(&job);
    return rc;
}

/* ---- the model's word for train, bench and tune ---- */

void cli_predict_warn(const char *cmd, const cli_job *job, const dpt_optim_spec *o,
                      const dpt_engine_opts *eo, int threads)
{
    char w[4][256];
    dpt_engine_opts x = *eo;
    x.threads = threads;
    int k = dpt_predict_warnings(&job->model, o, job->train.n, &x, w, 4);
    for (int i = 0; i < k; i++) fprintf(stderr, "dpt %s: warning: %s\n", cmd, w[i]);
}

int cli_tune_prune(const char *cmd, const cli_job *job, dpt_tune_candidate *cands, int *n,
                   int quiet)
{
    if (*n < 2) return 0;
    size_t most = 0;
    for (int i = 0; i < *n; i++) {
        dpt_optim_spec o = job->to.opt;
        if (cands[i].batch > 0) o.batch = (size_t)cands[i].batch;
        size_t b = batch_rows(&o, job->train.n);
        most = b > most ? b : most;
    }
    dpt_calibration cal;
    dpt_topo *topo = NULL;
    dpt_engine_opts eo1;
    if (cli_engine_opts(cmd, &job->to, 1, &eo1)) return 0;
    double *pred = calloc((size_t)*n, sizeof *pred);
    int cal_rc = !pred || calibrate_job(cmd, job, &eo1, most, 0, DPT_CAL_QUICK, &cal);
    dpt_pin_spec_free(&eo1.pin);
    if (cal_rc || dpt_topo_open(&topo, NULL, NULL)) {
        free(pred);
        dpt_clear_error();
        return 0; /* no prediction: race them all */
    }
    dpt_machine mach;
    dpt_machine_from_calibration(&cal, &mach);
    double best = 0;
    int ok = 1;
    for (int i = 0; i < *n && ok; i++) {
        dpt_engine_opts eo;
        dpt_optim_spec o = job->to.opt;
        if (cands[i].batch > 0) o.batch = (size_t)cands[i].batch;
        if (cli_engine_opts(cmd, &job->to, cands[i].threads, &eo)) {
            ok = 0;
            break;
        }
        if (cands[i].balance[0])
            eo.balance =
                strcmp(cands[i].balance, "adaptive") ? DPT_BALANCE_STATIC : DPT_BALANCE_ADAPTIVE;
        dpt_predict_result r;
        const int t = cands[i].threads;
        char pin[1][32];
        snprintf(pin[0], 32, "%s", cands[i].pin);
        if (dpt_predict(topo, &mach, &cal, &job->model, &o, job->train.n, &eo, &t, 1,
                        (const char(*)[32])pin, 1, &r)) {
            ok = 0;
        } else {
            pred[i] = r.rows[0].epoch_s;
            if (i == 0 || pred[i] < best) best = pred[i];
            dpt_predict_result_free(&r);
        }
        dpt_pin_spec_free(&eo.pin);
    }
    dpt_topo_close(topo);
    if (!ok || !(best > 0)) {
        free(pred);
        dpt_clear_error();
        return 0;
    }
    char said[1024] = "";
    size_t len = 0;
    int kept = 0, skipped = 0;
    for (int i = 0; i < *n; i++) {
        if (pred[i] > CLI_TUNE_HOPELESS * best) {
            skipped++;
            if (len < sizeof said)
                len += (size_t)snprintf(
                    said + len, sizeof said - len, "%s%d threads %s%s%s (%.1fx)",
                    skipped > 1 ? ", " : "", cands[i].threads, cands[i].pin,
                    cands[i].balance[0] ? " " : "", cands[i].balance, pred[i] / best);
            continue;
        }
        cands[kept++] = cands[i];
    }
    if (skipped && !quiet)
        fprintf(stderr,
                "dpt %s: skipping %d of %d candidates the model predicts over %.1fx slower than "
                "the best predicted (docs/scaling.md): %s\n",
                cmd, skipped, *n, CLI_TUNE_HOPELESS, said);
    *n = kept;
    free(pred);
    return 0;
}
