/* dpt compare: the speedup-regression gate between two `dpt bench` results.
 * The gate is the library's (dpt/compare.h); this turns flags into its
 * options, prints its messages on stderr and its report on stdout, and
 * exits with its status: 0 nothing significantly slower, 1 something is,
 * 2 cannot compare (or cannot decide). */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "dpt/compare.h"
#include "dpt/error.h"

static const char *const CMD = "compare";

static void usage(FILE *f)
{
    fputs("usage: dpt compare BASE.json NEW.json [flags]\n"
          "Compare two `dpt bench --json` results; exit 0 when no configuration is\n"
          "significantly slower by more than the threshold, 1 when one is (or scales\n"
          "worse), 2 when the files cannot be compared.\n\n"
          "  --threshold P       smallest change that counts, percent (5 or 5%; default 5%)\n"
          "  --alpha A           significance level of the U test (default 0.05)\n"
          "  --scaling fail|warn a significant loss of speedup vs 1 thread (1 rank x 1\n"
          "                      thread) fails the gate (default) or is only reported\n"
          "  --json FILE         also write the comparison as JSON (\"dpt-compare/1\")\n"
          "  --help              this text\n\n"
          "Rows match by workload, ranks, threads, pin and batch; a file without ranks\n"
          "(from before `dpt bench --ranks`) is one rank throughout.\n"
          "Verdicts: faster/slower = p < alpha and the median moved by more than the\n"
          "threshold; noise = it moved that much but p >= alpha; same = it moved less.\n"
          "Few repetitions limit the test: 3 and 3 cannot reach p < 0.05 (4 and 4 reach\n"
          "0.029, 5 and 5 0.008); when no configuration can, the gate cannot decide and\n"
          "exits 2.\n",
          f);
}

static int parse_threshold(const char *val, double *out)
{
    char buf[64];
    size_t len = strlen(val);
    if (len == 0 || len >= sizeof buf)
        return cli_usage_error(CMD, "--threshold: '%s' is not a percentage", val);
    memcpy(buf, val, len + 1);
    if (buf[len - 1] == '%') buf[len - 1] = '\0';
    double pct;
    if (cli_double(CMD, "threshold", buf, 0, 1000, &pct)) return DPT_EXIT_USAGE;
    *out = pct / 100;
    return 0;
}

static int compare(const char *bf, const char *nf, const dpt_compare_opts *o, const char *json_out)
{
    dpt_compare_result r;
    int rc = dpt_compare_files(bf, nf, o, &r);
    /* also after a failure: the warnings gathered before it */
    for (size_t i = 0; i < r.nmessages; i++) fprintf(stderr, "%s\n", r.messages[i]);
    if (rc) {
        int status = rc == DPT_ENOMEM
                         ? cli_fail(CMD, "%s", dpt_last_error())
                         : cli_usage_error(CMD, "cannot compare: %s", dpt_last_error());
        dpt_compare_result_free(&r);
        return status;
    }
    dpt_compare_print(&r, stdout);
    /* the library says what is missing; the tool says how to get it */
    if (r.blind)
        fprintf(stderr, "hint: run dpt bench with --reps 5 or more (the U test's smallest p for "
                        "5 and 5 repetitions is 0.008)\n");
    if (r.worse && !r.scaling_fails)
        fprintf(stderr, "note: --scaling warn: a lost speedup curve does not fail the gate\n");
    int status = r.exit_status;
    if (json_out && dpt_compare_write_json(&r, json_out)) {
        cli_fail(CMD, "%s", dpt_last_error());
        status = DPT_EXIT_USAGE; /* the gate result is lost: do not report a pass */
    }
    dpt_compare_result_free(&r);
    return status;
}

int dpt_cmd_compare(int argc, char **argv)
{
    static const struct option opts[] = {{"threshold", required_argument, NULL, 't'},
                                         {"alpha", required_argument, NULL, 'a'},
                                         {"scaling", required_argument, NULL, 's'},
                                         {"json", required_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    static const char *const scaling_modes[] = {"fail", "warn", NULL};
    dpt_compare_opts o;
    dpt_compare_opts_defaults(&o);
    int scaling_mode = 0;
    const char *json_out = NULL;
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
            json_out = optarg;
            break;
        case 'h':
            usage(stdout);
            return DPT_EXIT_OK;
        default:
            return DPT_EXIT_USAGE;
        }
    }
    if (argc - optind != 2)
        return cli_usage_error(CMD, "needs two files, BASE.json and NEW.json (see dpt compare "
                                    "--help)");
    o.scaling_fails = scaling_mode == 0;
    return compare(argv[optind], argv[optind + 1], &o, json_out);
}
