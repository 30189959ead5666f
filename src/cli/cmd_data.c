/* dpt gen (synthetic data to a file) and dpt convert (between formats).
 * Both write atomically, so a failure leaves no output file. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/data_opts.h"
#include "dpt/error.h"
#include "dpt/io.h"
#include "dpt/run.h"

static const char gen_usage[] =
    "usage: dpt gen (--synth KIND[:k=v,...] | --workload NAME) --out FILE [flags]\n"
    "Writes a synthetic data set to FILE and prints one summary line (rows,\n"
    "features, labels, format, file).\n"
    "  --synth KIND[:k=v,...]  linreg, logreg or teacher-mlp, keys n, d, noise, seed,\n"
    "                      classes, hidden=a/b (this or --workload, default none;\n"
    "                      see docs/workloads.md)\n"
    "  --workload NAME     the training set a canonical workload trains on, byte for\n"
    "                      byte (fmnist-mlp: standardized), e.g. for bench/peers\n"
    "                      (default none)\n"
    "  --out FILE          .dptb, .csv, .tsv, .svm/.libsvm (required)\n"
    "  --format F          csv, svmlight, dptb (default: from --out's extension)\n"
    "  --delimiter C       CSV field separator (default ',', tab for .tsv)\n"
    "  --header yes|no     CSV header line x1..xD,y (default yes)\n"
    "  --threads N         generator threads (default: all)\n"
    "  --quiet             no summary line (default off)\n"
    "  --help              this text\n";

static const char convert_usage[] =
    "usage: dpt convert IN OUT [flags]\n"
    "Reads IN and writes its rows to OUT in another format; prints one summary line\n"
    "(rows, features, labels, format, file).\n"
    "input:\n" CLI_DATA_READ_HELP "output:\n"
    "  --to csv|svmlight|dptb  output format (default: from OUT's extension)\n"
    "  --out-delimiter C   CSV field separator of OUT (default ',', tab for .tsv)\n"
    "  --out-header yes|no CSV header line of OUT (default yes)\n"
    "  --threads N         parse threads (default: all)\n"
    "  --quiet             no summary line (default off)\n"
    "  --help              this text\n";

enum {
    OPT_OUT = 1,
    OPT_TO,
    OPT_OUT_DELIM,
    OPT_OUT_HEADER,
    OPT_THREADS,
    OPT_QUIET,
    OPT_HELP,
    OPT_WORKLOAD
};

static int out_format(const char *cmd, const char *flag, const char *arg, dpt_format *f)
{
    static const char *const names[] = {"csv", "svmlight", "dptb", "libsvm", NULL};
    static const dpt_format fmts[] = {DPT_FORMAT_CSV, DPT_FORMAT_SVMLIGHT, DPT_FORMAT_DPTB,
                                      DPT_FORMAT_SVMLIGHT};
    int i;
    if (cli_choice(cmd, flag, arg, names, &i)) return -1;
    *f = fmts[i];
    return 0;
}

/* Resolve the output format: a flag, else the extension. */
static int resolve_out(const char *cmd, const char *path, dpt_format *f, const char *flag)
{
    if (*f) return 0;
    *f = dpt_format_from_path(path);
    if (*f == DPT_FORMAT_IDX)
        return cli_usage_error(cmd, "%s: writing IDX is not supported (use .csv, .svm or .dptb)",
                               path);
    if (*f == DPT_FORMAT_AUTO)
        return cli_usage_error(cmd,
                               "cannot tell the output format from '%s': use a .csv, .tsv, .svm, "
                               ".libsvm or .dptb name, or --%s csv|svmlight|dptb",
                               path, flag);
    return 0;
}

static void summary(const char *cmd, const dpt_dataset *ds, const char *path, dpt_format f)
{
    struct stat st;
    double bytes = stat(path, &st) ? 0 : (double)st.st_size;
    fprintf(stderr, "dpt %s: wrote %zu rows x %zu features to %s (%s, %.1f %s)\n", cmd, ds->n,
            ds->d, path, dpt_format_name(f), bytes >= 1e6 ? bytes / 1e6 : bytes / 1e3,
            bytes >= 1e6 ? "MB" : "kB");
}

int dpt_cmd_gen(int argc, char **argv)
{
    const char *cmd = "gen";
    static const struct option opts[] = {{"synth", required_argument, 0, CLI_OPT_SYNTH},
                                         {"workload", required_argument, 0, OPT_WORKLOAD},
                                         {"out", required_argument, 0, OPT_OUT},
                                         {"format", required_argument, 0, OPT_TO},
                                         {"delimiter", required_argument, 0, CLI_OPT_DELIMITER},
                                         {"header", required_argument, 0, OPT_OUT_HEADER},
                                         {"threads", required_argument, 0, OPT_THREADS},
                                         {"quiet", no_argument, 0, OPT_QUIET},
                                         {"help", no_argument, 0, OPT_HELP},
                                         {0, 0, 0, 0}};
    cli_data_opts d;
    cli_data_opts_init(&d);
    dpt_save_opts so;
    dpt_save_opts_defaults(&so);
    const char *out = NULL, *workload = NULL;
    long threads = 0;
    int quiet = 0, c;
    optind = 1;
    while ((c = cli_getopt(cmd, argc, argv, opts)) != -1) {
        int i;
        switch (c) {
        case '?':
            return DPT_EXIT_USAGE;
        case OPT_OUT:
            out = optarg;
            break;
        case OPT_WORKLOAD:
            workload = optarg;
            break;
        case OPT_TO:
            if (out_format(cmd, "format", optarg, &so.format)) return DPT_EXIT_USAGE;
            break;
        case OPT_OUT_HEADER: {
            static const char *const yn[] = {"yes", "no", NULL};
            if (cli_choice(cmd, "header", optarg, yn, &i)) return DPT_EXIT_USAGE;
            so.header = i == 0;
            break;
        }
        case OPT_THREADS:
            if (cli_long(cmd, "threads", optarg, 1, 4096, &threads)) return DPT_EXIT_USAGE;
            break;
        case OPT_QUIET:
            quiet = 1;
            break;
        case OPT_HELP:
            fputs(gen_usage, stdout);
            return 0;
        default:
            if (cli_data_flag(cmd, &d, c, optarg) < 0) return DPT_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s' (see dpt gen --help)", argv[optind]);
    if (!d.synth == !workload)
        return cli_usage_error(cmd, "give one of --synth KIND[:k=v,...] and --workload NAME");
    const dpt_workload *w = NULL;
    if (workload && !(w = dpt_workload_find(workload)))
        return cli_usage_error(cmd, "--workload: %s", dpt_last_error());
    if (!out) return cli_usage_error(cmd, "--out FILE is required");
    if (resolve_out(cmd, out, &so.format, "format")) return DPT_EXIT_USAGE;
    so.delimiter = d.load.delimiter;

    dpt_synth_spec spec;
    dpt_dataset ds = {0};
    if (w) {
        /* the same call dpt train and dpt bench make, so the bytes are theirs */
        if (dpt_workload_load(w, (int)threads, &ds, NULL, NULL))
            return cli_fail(cmd, "--workload %s: %s", w->name, dpt_last_error());
    } else {
        if (dpt_synth_parse(&spec, d.synth))
            return cli_usage_error(cmd, "--synth: %s", dpt_last_error());
        if (dpt_synth_generate(&spec, &ds, (int)threads))
            return cli_fail(cmd, "--synth: %s", dpt_last_error());
    }
    int rc = DPT_EXIT_OK;
    if (dpt_save(&ds, out, &so))
        rc = cli_fail(cmd, "%s", dpt_last_error());
    else if (!quiet)
        summary(cmd, &ds, out, so.format);
    dpt_dataset_free(&ds);
    return rc;
}

int dpt_cmd_convert(int argc, char **argv)
{
    const char *cmd = "convert";
    static const struct option opts[] = {CLI_DATA_READ_OPTIONS,
                                         {"to", required_argument, 0, OPT_TO},
                                         {"out-delimiter", required_argument, 0, OPT_OUT_DELIM},
                                         {"out-header", required_argument, 0, OPT_OUT_HEADER},
                                         {"threads", required_argument, 0, OPT_THREADS},
                                         {"quiet", no_argument, 0, OPT_QUIET},
                                         {"help", no_argument, 0, OPT_HELP},
                                         {0, 0, 0, 0}};
    cli_data_opts d;
    cli_data_opts_init(&d);
    d.needs_labels = 0;
    dpt_save_opts so;
    dpt_save_opts_defaults(&so);
    long threads = 0;
    int quiet = 0, c;
    optind = 1;
    while ((c = cli_getopt(cmd, argc, argv, opts)) != -1) {
        int i;
        switch (c) {
        case '?':
            return DPT_EXIT_USAGE;
        case OPT_TO:
            if (out_format(cmd, "to", optarg, &so.format)) return DPT_EXIT_USAGE;
            break;
        case OPT_OUT_DELIM: {
            cli_data_opts tmp;
            cli_data_opts_init(&tmp);
            if (cli_data_flag(cmd, &tmp, CLI_OPT_DELIMITER, optarg) < 0) return DPT_EXIT_USAGE;
            so.delimiter = tmp.load.delimiter;
            break;
        }
        case OPT_OUT_HEADER: {
            static const char *const yn[] = {"yes", "no", NULL};
            if (cli_choice(cmd, "out-header", optarg, yn, &i)) return DPT_EXIT_USAGE;
            so.header = i == 0;
            break;
        }
        case OPT_THREADS:
            if (cli_long(cmd, "threads", optarg, 1, 4096, &threads)) return DPT_EXIT_USAGE;
            break;
        case OPT_QUIET:
            quiet = 1;
            break;
        case OPT_HELP:
            fputs(convert_usage, stdout);
            return 0;
        default:
            if (cli_data_flag(cmd, &d, c, optarg) < 0) return DPT_EXIT_USAGE;
        }
    }
    if (argc - optind != 2)
        return cli_usage_error(cmd, "needs two arguments, IN and OUT (see dpt convert --help)");
    const char *in = argv[optind], *out = argv[optind + 1];
    if (resolve_out(cmd, out, &so.format, "to")) return DPT_EXIT_USAGE;
    d.data = in;
    dpt_dataset ds;
    int rc = cli_data_load(cmd, &d, (int)threads, &ds, NULL, NULL, NULL);
    if (rc) return rc;
    if (dpt_save(&ds, out, &so))
        rc = cli_fail(cmd, "%s", dpt_last_error());
    else if (!quiet)
        summary(cmd, &ds, out, so.format);
    dpt_dataset_free(&ds);
    return rc;
}
