/* dpt help [TOPIC|COMMAND]: short texts compiled into the tool, so that an
 * installed dpt explains itself without the source tree: how to read its
 * output, the workloads, pinning, the regression gate, installing. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/help_topics.h"

static const struct {
    const char *name, *summary;
    const char *const text[3];
} topics[] = {
    {"output",
     "the columns of train, bench, tune, compare and limits",
     {"dpt train prints, on standard output: a header (model, data, optimizer,\n"
      "engine), one line per epoch and the final lines.\n"
      "  epoch N          the epoch (JSON epochs[].epoch)\n"
      "  loss X           mean minibatch loss during the epoch (epochs[].loss)\n"
      "  S s              training seconds of the epoch (epochs[].seconds)\n"
      "  R samples/s      rows / seconds (epochs[].samples_per_second)\n"
      "  train loss/acc/r2  the model after the epoch, whole training set\n"
      "                   (epochs[].train.loss, .accuracy, .r2); with --eval-every N\n"
      "                   only after every Nth epoch and the last\n"
      "  val|test ...     the same on --val or --test (epochs[].val, .test)\n"
      "  final: ...       the last model (JSON final.train_loss, final.val_loss, ...)\n"
      "  per epoch: ...   phases (compute, reduce, update, wait, shuffle) and\n"
      "                   imbalance = slowest thread's compute / mean\n"
      "  target ...       --target-loss/--target-accuracy: the epoch and seconds of\n"
      "                   training to reach it (JSON target.epoch, target.seconds)\n"
      "The train JSON's config holds every flag that decides the bits, by flag\n"
      "name; dpt train --config FILE reruns it.\n\n",
      "dpt bench: one row per configuration: ms/epoch (median; JSON\n"
      "seconds.median in seconds), IQR% (spread), samples/s, speedup (1-thread\n"
      "median / this), eff% (speedup / threads), GB/s and GFLOP/s with %BW and\n"
      "%peak of the limits dpt limits measures, comp% red% upd% wait% (phases),\n"
      "imbal, final loss. LOADED OR DISTURBED RUN under the table: the machine\n"
      "was busy. With a target: epochs and seconds to reach it per configuration.\n\n"
      "dpt tune: threads, pin, batch, balance, reps, median ms (per epoch, or to\n"
      "the target with one), vs best, p slower (one-sided U), outcome.\n"
      "dpt compare: base ms, new ms, change, interval, p, verdict; exit 0 same or\n"
      "faster, 1 slower, 2 usage, 3 cannot decide.\n"
      "dpt limits: threads, read GB/s, FMA GFLOP/s (fp32).\n"
      "README.md, \"Reading the output\", has the whole list.\n",
      NULL}},
    {"workloads",
     "the canonical workloads of --workload",
     {"--workload NAME gives train, bench and tune the data, model, optimizer,\n"
      "seed and epochs of a fixed experiment, reproduced bit for bit, with a\n"
      "reference loss that dpt bench compares against:\n"
      "  linreg        linear, 10^6 x 64 generated rows, full-batch GD\n"
      "  logreg        logistic, 10^6 x 64, batch 1024 with momentum\n"
      "  mlp-seed      the 10-20-1 ReLU MLP with MSE on a 10-20-1 teacher,\n"
      "                10^6 rows, full-batch GD\n"
      "  mlp-seed-sgd  the same with batch 256 and momentum\n"
      "  mlp-wide      256-512-512-10 ReLU MLP, softmax, 10^5 x 256\n"
      "  fmnist-mlp    784-256-128-10 on Fashion-MNIST (Debian's\n"
      "                dataset-fashion-mnist)\n"
      "Flags given beside a workload override it. docs/workloads.md defines each.\n",
      NULL}},
    {"pinning",
     "where --pin puts the threads",
     {"--pin compact|scatter|numa|none|list:IDS (default compact), --smt:\n"
      "  compact   cores in logical order: package 0 fills before package 1\n"
      "  scatter   round-robin over packages, then over their NUMA nodes\n"
      "  numa      contiguous blocks of threads, one per NUMA node, compact\n"
      "            inside it\n"
      "  none      no binding: OpenMP and the OS place the threads\n"
      "  list:IDS  these hwloc logical PU ids, in order, e.g. list:0,2,4-7\n"
      "Without --smt one PU per core; with it, SMT siblings after every core.\n"
      "dpt topo --threads N --pin P prints the plan; docs/pinning.md has more.\n",
      NULL}},
    {"gate",
     "dpt compare as a regression gate",
     {"dpt compare BASE.json NEW.json compares two dpt bench --json results,\n"
      "configuration by configuration, with a two-sided Mann-Whitney U test:\n"
      "slower or faster needs p < --alpha (0.05) and a change beyond --threshold\n"
      "(5%). Exit 0: nothing slower; 1: a configuration slower or missing; 2: bad\n"
      "input; 3: cannot decide (noise, too few repetitions: use --reps 5 or more).\n"
      "dpt compare --run BASE_DPT NEW_DPT runs two binaries alternately (ABBA).\n",
      NULL}},
    {"install",
     "where meson install puts dpt",
     {"meson setup build --buildtype=release --prefix=$HOME/.local\n"
      "meson install -C build\n"
      "installs bin/dpt, lib/.../libdpt.so and libdpt.a, include/dpt/*.h,\n"
      "lib/.../pkgconfig/dpt.pc (pkg-config --cflags --libs dpt) and\n"
      "share/man/man1/dpt.1 under the prefix; put PREFIX/bin on PATH.\n",
      NULL}},
};

static void list_topics(FILE *f)
{
    fputs("\nhelp topics (dpt help TOPIC):\n", f);
    for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++)
        fprintf(f, "  %-9s %s\n", topics[i].name, topics[i].summary);
}

int cli_help_topic(const char *name, void (*usage)(FILE *))
{
    if (!name) {
        usage(stdout);
        list_topics(stdout);
        return DPT_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++)
        if (!strcmp(name, topics[i].name)) {
            cli_help(topics[i].text);
            return DPT_EXIT_OK;
        }
    const char *near = cli_closest(name, strlen(name), &topics[0].name, sizeof topics[0],
                                   sizeof topics / sizeof topics[0]);
    if (near)
        fprintf(stderr, "dpt help: no topic '%s': did you mean %s?\n", name, near);
    else
        fprintf(stderr,
                "dpt help: no topic '%s' (topics: output, workloads, pinning, gate, "
                "install; or a command)\n",
                name);
    return DPT_EXIT_USAGE;
}
