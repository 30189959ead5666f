/* The dpt tool under mpirun: MPI start and end, which rank prints what,
 * and agreement on errors so that a failure on any rank ends the whole job
 * with one message and the same non-zero status, never a hang.
 *
 * Output with more than one rank:
 *  - stdout: rank 0's only; the other ranks' goes to /dev/null. For the
 *    per-rank commands (topo, info) every rank's stdout is collected and
 *    rank 0 prints it in rank order, each under a line naming the rank, its
 *    host and the CPUs it is bound to.
 *  - stderr: rank 0's passes through as it is written. The other ranks'
 *    is held and, at cli_mpi_end, rank 0 prints the lines that it did not
 *    print itself, once, with the ranks inserted: "dpt train: rank 1: ...",
 *    "dpt train: ranks 1-3: ...". (If a rank exits without cli_mpi_end, its
 *    held lines go straight to stderr with the rank.)
 * Commands other than train, bench, topo and info run on rank 0 alone.
 * With one process (no mpirun, or -np 1) all of this is a no-op. */
#ifndef DPT_CLI_MPI_CLI_H
#define DPT_CLI_MPI_CLI_H

#include "dpt/comm.h"

/* Call first in main. Starts MPI when launched by an MPI launcher and sets
 * up the output rules for the command in argv[1]. 0, or the exit status
 * after printing one line (MPI failed to start, or launched with several
 * ranks by a dpt built without MPI). */
int cli_mpi_begin(int *argc, char ***argv);

/* 1 when this rank runs the command cmd (argv[1]): always with one
 * process; train, bench, topo and info on every rank; the others on rank 0
 * only (ranks that skip it pass 0 to cli_mpi_end). */
int cli_mpi_runs_here(const char *cmd);

/* A checkpoint every rank must reach the same number of times: returns 0
 * when rc is 0 on every rank, else this rank's rc when nonzero, else
 * DPT_EXIT_FAIL (another rank failed and printed why). After a nonzero
 * return make no other collective call (no comm hook, no further agree):
 * go straight to cli_mpi_end. Without MPI: rc. */
int cli_mpi_agree(int rc);

/* Call last in main with the command's exit status: agrees on the status
 * across ranks (unless a cli_mpi_agree already failed), prints the ranks'
 * collected output on rank 0, finalizes MPI. Returns the status to exit
 * with: rc when nonzero, else the status of a failed rank, else 0. */
int cli_mpi_end(int rc);

/* The comm hooks for dpt_engine_opts.comm; NULL with one process. */
const dpt_comm *cli_mpi_comm(void);
int cli_mpi_rank(void); /* 0 with one process */
int cli_mpi_size(void); /* 1 with one process */

#endif
