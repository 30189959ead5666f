/* dpt: the command-line front end. Dispatches to a subcommand. */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/help_topics.h"
#include "cli/mpi_cli.h"
#include "dpt_config.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"train", dpt_cmd_train, "train a model data-parallel"},
    {"bench", dpt_cmd_bench, "scaling benchmark over thread counts and pinning"},
    {"eval", dpt_cmd_eval, "evaluate a saved model on data"},
    {"predict", dpt_cmd_predict, "predictions of a saved model as CSV"},
    {"tune", dpt_cmd_tune, "find the fastest thread count and pinning"},
    {"limits", dpt_cmd_limits, "measure read bandwidth and FMA peak"},
    {"info", dpt_cmd_info, "version, build options, ISA and topology"},
    {"topo", dpt_cmd_topo, "machine topology and the thread placement plan"},
    {"gen", dpt_cmd_gen, "write a synthetic data set to a file"},
    {"convert", dpt_cmd_convert, "convert a data file between formats"},
    {"compare", dpt_cmd_compare, "compare two bench results (regression gate)"},
    {"plot", dpt_cmd_plot, "charts of a bench result"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: dpt COMMAND [flags]   (dpt COMMAND --help for its flags; dpt help "
               "TOPIC)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
}

static int dispatch(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return DPT_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    /* dpt help [COMMAND|TOPIC] */
    if (!strcmp(argv[1], "help")) {
        for (size_t i = 0; argc > 2 && i < sizeof commands / sizeof commands[0]; i++)
            if (!strcmp(argv[2], commands[i].name)) {
                char *av[] = {argv[2], "--help", NULL};
                return commands[i].fn(2, av);
            }
        return cli_help_topic(argc > 2 ? argv[2] : NULL, usage);
    }
    if (!strcmp(argv[1], "--version")) {
        printf("dpt %s\n", DPT_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return cli_mpi_runs_here(argv[1]) ? commands[i].fn(argc - 1, argv + 1) : 0;
    const size_t n = sizeof commands / sizeof commands[0];
    const char *near =
        cli_closest(argv[1], strlen(argv[1]), &commands[0].name, sizeof commands[0], n);
    if (near)
        fprintf(stderr, "dpt: unknown command '%s': did you mean %s?\n", argv[1], near);
    else
        fprintf(stderr,
                "dpt: unknown command '%s' (allowed: train, eval, predict, bench, tune, limits, "
                "info, topo, gen, convert, compare, plot)\n",
                argv[1]);
    return DPT_EXIT_USAGE;
}

/* OMP_NUM_THREADS=100000 overflows libgomp's stack when a team starts, and
 * tens of thousands of threads never finish: the default team gets the
 * bound the library puts on parse and generate threads. */
static void cap_default_threads(void)
{
    int hw = omp_get_num_procs();
    int cap = hw < 1 ? 4 : hw > 1024 ? 4096 : 4 * hw;
    if (omp_get_max_threads() > cap) omp_set_num_threads(cap);
}

int main(int argc, char **argv)
{
    cap_default_threads();
    /* under mpirun: MPI up, stdout of rank 0 only, one exit status for all ranks */
    int rc = cli_mpi_begin(&argc, &argv);
    if (rc) return rc;
    return cli_mpi_end(dispatch(argc, argv));
}
