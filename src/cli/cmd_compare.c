/* dpt compare: the speedup-regression gate, on two stored `dpt bench`
 * results or on two builds run here in alternation (--run). The gate is the
 * library's (dpt/compare.h); this turns flags into its options, prints its
 * messages on stderr and its report on stdout, writes the exports, and
 * exits with its status: 0 same or faster, 1 slower, 2 bad input, 3 cannot
 * decide. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/compare_run.h"
#include "cli/outpath.h"
#include "dpt/compare.h"
#include "dpt/error.h"

static const char *const CMD = "compare";

static void usage(FILE *f)
{
    fputs("usage: dpt compare BASE.json NEW.json [flags]\n"
          "       dpt compare --run BASE_DPT NEW_DPT [--pairs N] [flags] [bench flags]\n"
          "       dpt compare --calibrate [--runs N] [--slowdown PCT] [--pairs N] [flags]\n"
          "                   [bench flags]\n"
          "Compare two `dpt bench --json` results, or run two dpt executables' bench\n"
          "alternately (ABBA: pair i runs BASE then NEW when i is even, NEW then BASE\n"
          "when odd). For each pair --run starts both sides' `DPT bench BENCH_FLAGS`\n"
          "in bench's lockstep mode and has them take turns run by run, so that a runner\n"
          "whose speed drifts or jumps between regimes hits both alike; a dpt without\n"
          "that mode runs once per pair and side instead (the older way: --pairing\n"
          "process).\n\n"
          "Exit status: 0 nothing slower (same or faster), 1 a configuration is slower,\n"
          "or missing from NEW, or scales worse (--scaling fail), 2 bad input or usage,\n"
          "3 cannot decide (noise, too few repetitions or pairs, or too few undisturbed\n"
          "ones with --drop-disturbed).\n"
          "Prints one line per configuration (base and new median, change with its\n"
          "interval, p, verdict) and the verdict of the gate.\n\n"
          "  --threshold P       smallest change that counts, percent (5 or 5%; default 5%)\n"
          "  --alpha A           1 - confidence of the intervals, level of the tests\n"
          "                      (default 0.05)\n"
          "  --scaling fail|warn a significant loss of speedup vs 1 thread (1 rank x 1\n"
          "                      thread) fails the gate (default) or is only reported\n"
          "  --allow-missing     a configuration of BASE missing from NEW is a note, not\n"
          "                      a failure\n"
          "  --drop-disturbed    leave out samples that the bench telemetry flags as\n"
          "                      disturbed (other work on the run's CPUs, steal, migrations,\n"
          "                      preemption, a low clock; docs/gate.md). --run: a pair goes\n"
          "                      when either run of it was disturbed; with fewer than 6\n"
          "                      clean pairs the gate abstains (exit 3). Stored files: a\n"
          "                      configuration with fewer than 5 clean repetitions on a\n"
          "                      side abstains (cannot decide) instead of failing\n",
          f);
    fputs("  --run BASE_DPT NEW_DPT  run the two executables' bench in alternating pairs\n"
          "                      instead of reading two files (default off)\n"
          "  --base-args \"FLAGS\" --run: bench flags for BASE_DPT only (split at spaces;\n"
          "                      default none)\n"
          "  --new-args \"FLAGS\"  --run: bench flags for NEW_DPT only, e.g. bench's\n"
          "                      injected slowdown (default none)\n"
          "  --calibrate         run this dpt against itself --runs times (A/A) and against\n"
          "                      itself with bench's injected slowdown (A/B), paired as --run,\n"
          "                      and print the false-alarm rate, the detection rate, the\n"
          "                      abstentions, and the smallest slowdown caught in 95% of\n"
          "                      runs with these --pairs and --threshold (docs/gate.md)\n"
          "  --runs N            --calibrate: A/A and A/B runs each (default 10)\n"
          "  --slowdown PCT      --calibrate: the injected slowdown (default 10%)\n"
          "  --pairs N           --run: pairs of runs (default 10; 6 or more give a 95%\n"
          "                      interval)\n"
          "  --max-pairs M       --run: while the pairs so far cannot decide, run another\n"
          "                      pair, up to M in all (default 20; --pairs N or less: a\n"
          "                      fixed N)\n"
          "  --retries K         --run: a pair in which a side's repetitions of a\n"
          "                      configuration were all disturbed (telemetry) runs again,\n"
          "                      up to K times, and keeps the clean samples (default 2)\n"
          "  --pairing lockstep|process  --run: both bench processes stay up and take turns\n"
          "                      run by run, or every run is a bench process of its own\n"
          "                      (the older way, seconds apart; default lockstep)\n"
          "  --save-runs PREFIX  --run: also write the paired reports to PREFIXbase.json\n"
          "                      and PREFIXnew.json (default none)\n"
          "  --paired            BASE.json NEW.json hold paired samples (--save-runs):\n"
          "                      judge them as --run does (default off)\n"
          "  --run-reps R        --run: each side of a pair times R repetitions and counts\n"
          "                      the fastest undisturbed one (interference only adds time;\n"
          "                      default 1)\n"
          "  --json FILE         also write the comparison as JSON (\"dpt-compare/1\";\n"
          "                      default none)\n",
          f);
    fputs("  --markdown FILE     a GitHub-flavoured table for a job summary or PR comment\n"
          "                      (default none)\n"
          "  --bmf FILE          Bencher Metric Format JSON (latency, seconds per epoch;\n"
          "                      default none)\n"
          "  --github-benchmark FILE  github-action-benchmark customSmallerIsBetter JSON\n"
          "                      (default none)\n"
          "  --help              this text\n\n"
          "Rows match by workload, ranks, threads, pin and batch; a file without ranks\n"
          "(from before `dpt bench --ranks`) is one rank throughout.\n"
          "Stored files: two-sided Mann-Whitney U test; faster/slower = p < alpha and\n"
          "the median moved by more than the threshold; noise = it moved that much but\n"
          "p >= alpha; same = it moved less. The interval is the Hodges-Lehmann one of\n"
          "the change. 3 and 3 repetitions cannot reach p < 0.05 (5 and 5 reach 0.008);\n"
          "when no configuration can, the gate cannot decide (exit 3).\n"
          "--run: per pair the log ratio new/base; the change is its Hodges-Lehmann\n"
          "estimate with a 1 - alpha interval (two-sided signed-rank p): slower/faster\n"
          "only when the whole interval lies beyond the threshold, same when it lies\n"
          "within it, same or faster when it straddles only -threshold (not slower:\n"
          "passes), cannot decide (exit 3) when it straddles +threshold.\n",
          f);
}

/* "5" or "5%" in [0, hi] percent. */
static int parse_pct(const char *val, const char *flag, double hi, double *pct)
{
    char buf[64];
    size_t len = strlen(val);
    if (len == 0 || len >= sizeof buf)
        return cli_usage_error(CMD, "--%s: '%s' is not a percentage", flag, val);
    memcpy(buf, val, len + 1);
    if (buf[len - 1] == '%') buf[len - 1] = '\0';
    return cli_double(CMD, flag, buf, 0, hi, pct) ? DPT_EXIT_USAGE : 0;
}

static int parse_threshold(const char *val, double *out)
{
    double pct;
    if (parse_pct(val, "threshold", 1000, &pct)) return DPT_EXIT_USAGE;
    *out = pct / 100;
    return 0;
}

typedef struct outputs {
    const char *json, *markdown, *bmf, *github;
} outputs;

/* Print and export a finished comparison; the exit status. */
static int report(dpt_compare_result *r, const outputs *w)
{
    dpt_compare_print(r, stdout);
    /* the library says what is missing; the tool says how to get it */
    if (r->blind && r->paired)
        fprintf(stderr, "hint: run more pairs (--pairs 6 or more for a 95%% interval)\n");
    else if (r->blind)
        fprintf(stderr, "hint: run dpt bench with --reps 5 or more (the U test's smallest p for "
                        "5 and 5 repetitions is 0.008)\n");
    if (r->outcome == DPT_COMPARE_CANNOT_DECIDE && r->paired && !r->blind)
        fprintf(stderr, "hint: more --pairs narrow the intervals\n");
    if (r->missing && !r->allow_missing)
        fprintf(stderr, "hint: --allow-missing makes a missing configuration a note\n");
    if (r->worse && !r->scaling_fails)
        fprintf(stderr, "note: --scaling warn: a lost speedup curve does not fail the gate\n");
    int status = r->exit_status;
    int (*const writers[4])(const dpt_compare_result *, const char *) = {
        dpt_compare_write_json, dpt_compare_write_markdown, dpt_compare_write_bmf,
        dpt_compare_write_github_benchmark};
    const char *paths[4] = {w->json, w->markdown, w->bmf, w->github};
    for (int i = 0; i < 4; i++)
        if (paths[i] && writers[i](r, paths[i])) {
            cli_fail(CMD, "%s", dpt_last_error());
            status = DPT_EXIT_USAGE; /* the gate result is lost: do not report a pass */
        }
    return status;
}

/* Messages first, also after a failure: the warnings gathered before it. */
static int finish(int rc, dpt_compare_result *r, const outputs *w)
{
    for (size_t i = 0; i < r->nmessages; i++) fprintf(stderr, "%s\n", r->messages[i]);
    int status;
    if (rc)
        status = rc == DPT_ENOMEM ? cli_fail(CMD, "%s", dpt_last_error())
                                  : cli_usage_error(CMD, "cannot compare: %s", dpt_last_error());
    else
        status = report(r, w);
    dpt_compare_result_free(r);
    return status;
}

/* --save-runs PREFIX: the gathered paired reports, for `dpt compare
 * --paired` later (another threshold, --drop-disturbed); r NULL: only
 * check, before any run, that the two files can be written. */
static int save_runs(const char *prefix, const dpt_bench_report *const r[2])
{
    char path[4096];
    const char *which[2] = {"base", "new"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s%s.json", prefix, which[i]);
        if (!r) {
            if (cli_check_output(CMD, "save-runs", path)) return DPT_EXIT_USAGE;
        } else if (dpt_bench_report_write_json(r[i], path)) {
            return cli_fail(CMD, "--save-runs: %s", dpt_last_error());
        }
    }
    return 0;
}

/* "--inject-slowdown 10 --epochs 2" -> the side's extra flags, split at
 * blanks (no quoting: bench flags need none). */
static int split_args(const char *text, cli_compare_side *side)
{
    char *copy = strdup(text);
    char **v = calloc(strlen(text) / 2 + 2, sizeof *v);
    if (!copy || !v) {
        free(copy);
        free(v);
        return cli_fail(CMD, "out of memory");
    }
    free(side->extra ? side->extra[-1] : NULL);
    free(side->extra ? side->extra - 1 : NULL);
    v[0] = copy; /* kept before the flags, to be freed with them */
    side->extra = v + 1;
    side->nextra = 0;
    for (char *t = strtok(copy, " \t\n"); t; t = strtok(NULL, " \t\n"))
        side->extra[side->nextra++] = t;
    return 0;
}

static void free_side(cli_compare_side *side)
{
    if (!side->extra) return;
    free(side->extra[-1]);
    free(side->extra - 1);
    side->extra = NULL;
}

/* --run and --calibrate: compare's own flags anywhere, everything else
 * goes to bench ("--" passes all that follows). */
static int run_mode(int argc, char **argv, int calibrate_mode)
{
    dpt_compare_opts o;
    dpt_compare_opts_defaults(&o);
    outputs w = {0};
    cli_compare_side bs = {0}, ns = {0};
    long pairs = 10, max_pairs = 20, runs = 10, reps = 1, retries = 2;
    double slowdown = 10;
    int calibrate = 0, lockstep = 1;
    const char *save = NULL;
    char **flags = calloc((size_t)argc + 1, sizeof *flags);
    int nflags = 0, rc = DPT_EXIT_USAGE;
    if (!flags) return cli_fail(CMD, "out of memory"), DPT_EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes =
            !strcmp(a, "--pairs") || !strcmp(a, "--threshold") || !strcmp(a, "--alpha") ||
            !strcmp(a, "--scaling") || !strcmp(a, "--json") || !strcmp(a, "--markdown") ||
            !strcmp(a, "--bmf") || !strcmp(a, "--github-benchmark") || !strcmp(a, "--base-args") ||
            !strcmp(a, "--new-args") || !strcmp(a, "--run-reps") || !strcmp(a, "--save-runs") ||
            !strcmp(a, "--max-pairs") || !strcmp(a, "--retries") || !strcmp(a, "--pairing") ||
            (calibrate_mode && (!strcmp(a, "--runs") || !strcmp(a, "--slowdown")));
        if (!strcmp(a, "--")) {
            while (++i < argc) flags[nflags++] = argv[i];
            break;
        }
        if (!strcmp(a, "--run")) {
            if (i + 2 >= argc) {
                cli_usage_error(CMD, "--run needs two dpt executables, BASE_DPT and NEW_DPT");
                goto done;
            }
            bs.exe = argv[++i];
            ns.exe = argv[++i];
            continue;
        }
        if (!strcmp(a, "--calibrate")) {
            calibrate = 1;
            continue;
        }
        if (!strcmp(a, "--allow-missing")) {
            o.allow_missing = 1;
            continue;
        }
        if (!strcmp(a, "--drop-disturbed")) {
            o.drop_disturbed = 1;
            continue;
        }
        if (!strcmp(a, "--help")) {
            usage(stdout);
            rc = DPT_EXIT_OK;
            goto done;
        }
        if (!takes) {
            flags[nflags++] = argv[i];
            continue;
        }
        if (!v) {
            cli_usage_error(CMD, "%s needs a value", a);
            goto done;
        }
        i++;
        if (!strcmp(a, "--pairs")) {
            if (cli_long(CMD, "pairs", v, 1, 10000, &pairs)) goto done;
        } else if (!strcmp(a, "--max-pairs")) {
            if (cli_long(CMD, "max-pairs", v, 1, 10000, &max_pairs)) goto done;
        } else if (!strcmp(a, "--retries")) {
            if (cli_long(CMD, "retries", v, 0, 100, &retries)) goto done;
        } else if (!strcmp(a, "--save-runs")) {
            save = v;
        } else if (!strcmp(a, "--pairing")) {
            static const char *const modes[] = {"lockstep", "process", NULL};
            int mode;
            if (cli_choice(CMD, "pairing", v, modes, &mode)) goto done;
            lockstep = mode == 0;
        } else if (!strcmp(a, "--run-reps")) {
            if (cli_long(CMD, "run-reps", v, 1, 1000, &reps)) goto done;
        } else if (!strcmp(a, "--runs")) {
            if (cli_long(CMD, "runs", v, 1, 10000, &runs)) goto done;
        } else if (!strcmp(a, "--slowdown")) {
            if (parse_pct(v, "slowdown", 1000, &slowdown)) goto done;
        } else if (!strcmp(a, "--base-args")) {
            if (split_args(v, &bs)) goto done;
        } else if (!strcmp(a, "--new-args")) {
            if (split_args(v, &ns)) goto done;
        } else if (!strcmp(a, "--threshold")) {
            if (parse_threshold(v, &o.threshold)) goto done;
        } else if (!strcmp(a, "--alpha")) {
            if (cli_double(CMD, "alpha", v, 1e-12, 0.5, &o.alpha)) goto done;
        } else if (!strcmp(a, "--scaling")) {
            static const char *const modes[] = {"fail", "warn", NULL};
            int mode;
            if (cli_choice(CMD, "scaling", v, modes, &mode)) goto done;
            o.scaling_fails = mode == 0;
        } else if (!strcmp(a, "--json")) {
            w.json = v;
        } else if (!strcmp(a, "--markdown")) {
            w.markdown = v;
        } else if (!strcmp(a, "--bmf")) {
            w.bmf = v;
        } else {
            w.github = v;
        }
    }
    if (calibrate && (bs.exe || ns.extra || bs.extra)) {
        cli_usage_error(CMD, "--calibrate runs this dpt against itself (the new side with "
                             "--inject-slowdown): it takes no --run, --base-args or --new-args");
        goto done;
    }
    if (lockstep && reps * (1 + retries) > 1000) {
        cli_usage_error(CMD,
                        "--run-reps %ld with --retries %ld asks a bench for %ld rounds; bench "
                        "takes at most 1000 (--run-reps x (1 + --retries))",
                        reps, retries, reps * (1 + retries));
        goto done;
    }
    bs.reps = ns.reps = (int)reps;
    bs.retries = ns.retries = (int)retries;
    bs.lockstep = ns.lockstep = lockstep;
    if (calibrate) {
        rc = cli_compare_calibrate(&o, (int)runs, (int)pairs, (int)max_pairs, &bs, slowdown, flags,
                                   nflags);
        goto done;
    }
    if (save && save_runs(save, NULL)) goto done;
    dpt_bench_report base, cur;
    if (cli_compare_run(&bs, &ns, (int)pairs, (int)max_pairs, cli_compare_undecided, &o, flags,
                        nflags, &base, &cur))
        goto done;
    o.base_name = bs.exe;
    o.new_name = ns.exe;
    const dpt_bench_report *both[2] = {&base, &cur};
    if (save && save_runs(save, both)) {
        dpt_bench_report_free(&base);
        dpt_bench_report_free(&cur);
        goto done;
    }
    dpt_compare_result r;
    int st = dpt_compare_paired(&base, &cur, &o, &r);
    rc = finish(st, &r, &w);
    dpt_bench_report_free(&base);
    dpt_bench_report_free(&cur);
done:
    free(flags);
    free_side(&bs);
    free_side(&ns);
    return rc;
}

/* --paired: two files of paired samples (--save-runs), judged as --run. */
static int compare_paired_files(const char *bp, const char *np, dpt_compare_opts *o,
                                dpt_compare_result *r)
{
    dpt_bench_report base, cur;
    memset(r, 0, sizeof *r);
    int rc = dpt_bench_report_read_json(&base, bp);
    if (rc) return rc;
    if ((rc = dpt_bench_report_read_json(&cur, np))) {
        dpt_bench_report_free(&base);
        return rc;
    }
    o->base_name = bp;
    o->new_name = np;
    rc = dpt_compare_paired(&base, &cur, o, r);
    dpt_bench_report_free(&base);
    dpt_bench_report_free(&cur);
    return rc;
}

int dpt_cmd_compare(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "--run") || !strcmp(argv[i], "--calibrate"))
            return run_mode(argc, argv, !strcmp(argv[i], "--calibrate"));
    enum { OPT_MD = 256, OPT_BMF, OPT_GH, OPT_MISSING, OPT_DROP, OPT_PAIRED, OPT_RUNONLY };
    static const struct option opts[] = {{"threshold", required_argument, NULL, 't'},
                                         {"alpha", required_argument, NULL, 'a'},
                                         {"scaling", required_argument, NULL, 's'},
                                         {"json", required_argument, NULL, 'j'},
                                         {"markdown", required_argument, NULL, OPT_MD},
                                         {"bmf", required_argument, NULL, OPT_BMF},
                                         {"github-benchmark", required_argument, NULL, OPT_GH},
                                         {"allow-missing", no_argument, NULL, OPT_MISSING},
                                         {"drop-disturbed", no_argument, NULL, OPT_DROP},
                                         {"paired", no_argument, NULL, OPT_PAIRED},
                                         /* taken by run_mode; alone they are misplaced */
                                         {"run", required_argument, NULL, OPT_RUNONLY},
                                         {"calibrate", no_argument, NULL, OPT_RUNONLY},
                                         {"pairs", required_argument, NULL, OPT_RUNONLY},
                                         {"max-pairs", required_argument, NULL, OPT_RUNONLY},
                                         {"retries", required_argument, NULL, OPT_RUNONLY},
                                         {"pairing", required_argument, NULL, OPT_RUNONLY},
                                         {"runs", required_argument, NULL, OPT_RUNONLY},
                                         {"slowdown", required_argument, NULL, OPT_RUNONLY},
                                         {"base-args", required_argument, NULL, OPT_RUNONLY},
                                         {"new-args", required_argument, NULL, OPT_RUNONLY},
                                         {"run-reps", required_argument, NULL, OPT_RUNONLY},
                                         {"save-runs", required_argument, NULL, OPT_RUNONLY},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    static const char *const scaling_modes[] = {"fail", "warn", NULL};
    dpt_compare_opts o;
    dpt_compare_opts_defaults(&o);
    int scaling_mode = 0, paired = 0;
    outputs w = {0};
    int c;
    optind = 1;
    while ((c = cli_getopt(CMD, argc, argv, opts)) != -1) {
        switch (c) {
        case 't':
            if (parse_threshold(optarg, &o.threshold)) return DPT_EXIT_USAGE;
            break;
        case 'a':
            if (cli_double(CMD, "alpha", optarg, 1e-12, 0.5, &o.alpha)) return DPT_EXIT_USAGE;
            break;
        case 's':
            if (cli_choice(CMD, "scaling", optarg, scaling_modes, &scaling_mode))
                return DPT_EXIT_USAGE;
            break;
        case 'j':
            w.json = optarg;
            break;
        case OPT_MD:
            w.markdown = optarg;
            break;
        case OPT_RUNONLY:
            return cli_usage_error(CMD, "--pairs, --max-pairs, --retries, --pairing, --runs, "
                                        "--slowdown, --base-args, --new-args, --run-reps and "
                                        "--save-runs apply to --run or --calibrate only");
        case OPT_BMF:
            w.bmf = optarg;
            break;
        case OPT_GH:
            w.github = optarg;
            break;
        case OPT_MISSING:
            o.allow_missing = 1;
            break;
        case OPT_DROP:
            o.drop_disturbed = 1;
            break;
        case OPT_PAIRED:
            paired = 1;
            break;
        case 'h':
            usage(stdout);
            return DPT_EXIT_OK;
        default:
            return DPT_EXIT_USAGE;
        }
    }
    if (argc - optind != 2)
        return cli_usage_error(CMD, "needs two files, BASE.json and NEW.json, or --run BASE_DPT "
                                    "NEW_DPT (see dpt compare --help)");
    o.scaling_fails = scaling_mode == 0;
    dpt_compare_result r;
    int rc = paired ? compare_paired_files(argv[optind], argv[optind + 1], &o, &r)
                    : dpt_compare_files(argv[optind], argv[optind + 1], &o, &r);
    return finish(rc, &r, &w);
}
