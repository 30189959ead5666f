/* dpt compare --run: benchmark two dpt executables in alternation and
 * gather each one's runs into a report of paired samples. */
#ifndef DPT_CLI_COMPARE_RUN_H
#define DPT_CLI_COMPARE_RUN_H

#include "dpt/compare.h"
#include "dpt/report.h"

/* One side of the comparison: the executable and the flags for it alone
 * (--base-args, --new-args; --calibrate: --inject-slowdown on the new side). */
typedef struct cli_compare_side {
    const char *exe;
    char **extra;
    int nextra;
    int reps; /* repetitions per run, of which the fastest counts (0, 1: one) */
} cli_compare_side;

/* Run `EXE bench FLAGS EXTRA --reps R --json TMP --quiet` pairs times for
 * each side, ABBA; base and cur get one sample (and its telemetry) per
 * pair in every row: the fastest of the run's R repetitions. 0, or non-zero after printing why
 * (both reports then empty). */
int cli_compare_run(const cli_compare_side *base_side, const cli_compare_side *new_side, int pairs,
                    char *const *flags, int nflags, dpt_bench_report *base, dpt_bench_report *cur);

/* dpt compare --calibrate: this executable against itself, runs times A/A
 * and runs times A/B with --inject-slowdown slowdown_pct on the new side
 * (alternating A/A and A/B runs), each pairs pairs judged with o; prints
 * per configuration the false alarms, detections and abstentions and the
 * smallest slowdown detectable at 95%. The exit status (0, or 2 when a
 * run failed, printed). */
int cli_compare_calibrate(const dpt_compare_opts *o, int runs, int pairs, int reps,
                          double slowdown_pct, char *const *flags, int nflags);

#endif
