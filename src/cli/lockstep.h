/* The lockstep protocol between `dpt compare --run` and the `dpt bench
 * --lockstep FD` processes it starts, two at a time (one per build), so
 * that the two builds' timed runs take turns within a second of each
 * other. One stream socket per bench process, text lines:
 *
 *   bench -> compare  "ready NCONFIGS\n" once it has loaded and set up
 *   compare -> bench  "go\n" (run the next configuration once) or
 *                     "stop\n" (between rounds: write the report, exit)
 *   bench -> compare  "done SECONDS DISTURBED\n" after each run (seconds
 *                     per epoch; DISTURBED 0 or 1, the telemetry's rule)
 *
 * The configurations run in the order of the report's rows, every one
 * once per round. A bench that exits 2 on not knowing --lockstep (an
 * older dpt) is run the older way, one bench process per run. */
#ifndef DPT_CLI_LOCKSTEP_H
#define DPT_CLI_LOCKSTEP_H

#include <stdio.h>

#include "dpt/run.h"

/* The bench side: hooks for dpt_sweep_spec.before_run/after_run. */
typedef struct cli_lockstep {
    int fd;
    FILE *in; /* fd, read side */
    const dpt_sweep_spec *sw;
    int ready; /* the ready lines went out */
} cli_lockstep;

/* Open the protocol on fd (a socket), before the loading; set ls->sw
 * before the sweep. 0 or non-zero after printing why. */
int cli_lockstep_open(const char *cmd, int fd, cli_lockstep *ls);
void cli_lockstep_close(cli_lockstep *ls);
int cli_lockstep_before(int round, int config, void *ud);
void cli_lockstep_after(int round, int config, double secs, int disturbed, void *ud);

#endif
