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
    int reps;     /* repetitions per side of a pair; the fastest clean one counts (0, 1: one) */
    int retries;  /* a side with a configuration all disturbed runs again, this often */
    int lockstep; /* 1: a pair's two bench processes take turns run by run (cli/lockstep.h) */
} cli_compare_side;

/* Sequential pairs: after the first pairs, another pair while this says
 * the pairs so far do not decide (nonzero), up to max_pairs. */
typedef int (*cli_compare_more_fn)(const dpt_bench_report *base, const dpt_bench_report *cur,
                                   void *ud);

/* Run `EXE bench FLAGS EXTRA` for each side, ABBA, pairs times, then more
 * pairs while more(base, cur, ud) (may be NULL) asks for them, up to
 * max_pairs: with lockstep, both sides' bench up together per pair taking
 * turns round by round (an older dpt without --lockstep: falls back, with
 * a note), else one bench process per side and pair. base and cur get one
 * sample (and its telemetry) per pair in every row: the fastest
 * undisturbed one of the side's R repetitions; a configuration with none
 * runs again, up to the retries. 0, or non-zero after printing why (both
 * reports then empty). */
int cli_compare_run(const cli_compare_side *base_side, const cli_compare_side *new_side, int pairs,
                    int max_pairs, cli_compare_more_fn more, void *ud, char *const *flags,
                    int nflags, dpt_bench_report *base, dpt_bench_report *cur);

/* A cli_compare_more_fn: the paired judgement with the dpt_compare_opts at
 * ud cannot decide yet. */
int cli_compare_undecided(const dpt_bench_report *base, const dpt_bench_report *cur, void *ud);

/* dpt compare --calibrate: this executable against itself, runs times A/A
 * and runs times A/B with --inject-slowdown slowdown_pct on the new side
 * (alternating A/A and A/B runs), each pairs pairs judged with o; prints
 * per configuration the false alarms, detections and abstentions and the
 * smallest slowdown detectable at 95%. The exit status (0, or 2 when a
 * run failed, printed). */
int cli_compare_calibrate(const dpt_compare_opts *o, int runs, int pairs, int max_pairs,
                          const cli_compare_side *side, double slowdown_pct, char *const *flags,
                          int nflags);

#endif
