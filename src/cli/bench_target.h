/* dpt bench --target-loss/--target-accuracy: time to accuracy beside time
 * per epoch. Every configuration trains from the same start until the
 * target or --target-epochs, --reps times; the table and the bench JSON's
 * "time_to_target" get the median seconds of training to reach it. */
#ifndef DPT_CLI_BENCH_TARGET_H
#define DPT_CLI_BENCH_TARGET_H

#include <jansson.h>
#include <stdio.h>

#include "dpt/report.h"
#include "dpt/run.h"

/* Run the configurations (threads x pins) of base (its target set) reps
 * times each, print the table on out (rank 0) and return the JSON object
 * in *json (NULL on other ranks). on: "val", "test" or "train", for the
 * words. 0 or the exit status after printing. */
int cli_bench_target(const char *cmd, const dpt_run_spec *base, const char *on, const int *threads,
                     int nt, char pins[][32], int np, int reps, int max_epochs, FILE *out,
                     json_t **json);

/* A library writer of JSON files (0 or a dpt status, message set). */
typedef int (*cli_json_writer)(const void *obj, const char *path);
/* write(obj, path), with extra (when not NULL) added under key: the
 * file is written to /tmp, read back, amended and written atomically to
 * path ("-": stdout). 0 or the exit status after printing. */
int cli_write_json_plus(const char *cmd, cli_json_writer write, const void *obj, const char *path,
                        const char *key, json_t *extra);

/* dpt_bench_report_write_json, with extra (when not NULL) under key. */
int cli_bench_write_json(const char *cmd, const dpt_bench_report *rep, const char *path,
                         const char *key, json_t *extra);

/* The first of the report's warnings (dpt_bench_report_warnings, into
 * warn) about the machine (load, clock) rather than one configuration's
 * spread, or NULL: what marks a table or figure as from a loaded or
 * disturbed run. */
const char *cli_machine_warning(const dpt_bench_report *r, char (*warn)[DPT_WARNING_LEN],
                                size_t cap);

#endif
