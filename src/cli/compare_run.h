/* dpt compare --run: benchmark two dpt executables in alternation and
 * gather each one's runs into a report of paired samples. */
#ifndef DPT_CLI_COMPARE_RUN_H
#define DPT_CLI_COMPARE_RUN_H

#include "dpt/report.h"

/* Run `EXE bench FLAGS --reps 1 --json TMP --quiet` pairs times for each
 * executable, ABBA; base and cur get one sample per pair in every row.
 * 0, or non-zero after printing why (both reports then empty). */
int cli_compare_run(const char *base_exe, const char *new_exe, int pairs, char *const *flags,
                    int nflags, dpt_bench_report *base, dpt_bench_report *cur);

#endif
