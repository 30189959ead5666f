/* MPI for training across processes (ranks): start-up, the dpt_comm hooks
 * the engine calls, agreement on errors, shutdown. Built with -Dmpi
 * (src/mpi/mpi.c); without MPI the same file builds the same calls, which
 * describe a single process, so callers need no #ifdefs.
 * Call everything from the thread that called dpt_mpi_init (MPI is
 * initialised with MPI_THREAD_FUNNELED; the engine calls the hooks from
 * thread 0 of its team, which is that thread). */
#ifndef DPT_MPI_H
#define DPT_MPI_H

#include "dpt/export.h"

#include "dpt/comm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when this build has MPI support. */
DPT_API int dpt_mpi_built(void);

/* Ranks the launcher announced in the environment (Open MPI, MPICH/Hydra,
 * PMIx, Slurm's PMI): 0 when not started by an MPI launcher. DPT_MPI=0 in
 * the environment forces 0, DPT_MPI=1 forces at least 1. */
DPT_API int dpt_mpi_launched(void);

/* Initialise MPI (MPI_Init_thread, MPI_THREAD_FUNNELED) when this process
 * was started by an MPI launcher, so that a plain `dpt ...` never pays for
 * MPI. *active: 1 when MPI is now initialised, else 0 (single process).
 * DPT_ENOTSUP when launched with more than one rank by a launcher but
 * built without MPI; DPT_EIO when MPI fails to start. */
DPT_API int dpt_mpi_init(int *argc, char ***argv, int *active);

/* 1 after a successful dpt_mpi_init that initialised MPI. */
DPT_API int dpt_mpi_active(void);
DPT_API int dpt_mpi_rank(void); /* 0 when not active */
DPT_API int dpt_mpi_size(void); /* 1 when not active */

/* The hooks for dpt_engine_opts.comm over MPI_COMM_WORLD: rank, size and
 * allreduce / allgather / broadcast in chunks (DPT_MPI_CHUNK_BYTES in the
 * environment overrides the 4 MiB default). Not active: rank 0 of 1, hooks
 * that do nothing. The struct stays valid until dpt_mpi_finalize. */
DPT_API int dpt_mpi_comm(dpt_comm *out);

/* A collective: the first n ranks of the job as a dpt_comm of their own
 * (rank, size n), for sweeping rank counts within one job. *member: 1 on
 * those ranks, 0 on the others (out is then a single-process comm). Free
 * with dpt_mpi_comm_free. Not active: n must be 1. 0 or DPT_E*. */
DPT_API int dpt_mpi_comm_first(int n, dpt_comm *out, int *member);
/* Free a comm from dpt_mpi_comm_first (no-op for others); leaves a
 * single-process comm in c. */
DPT_API void dpt_mpi_comm_free(dpt_comm *c);

/* A collective: the ranks on this node (MPI_COMM_TYPE_SHARED), this rank's
 * index among them, and over the whole job the most ranks whose CPU
 * affinity includes one same CPU (1: every rank has CPUs of its own; more:
 * unbound or overlapping ranks, whose threads will compete). Not active:
 * 0, 1, 1. 0 or DPT_EIO. */
DPT_API int dpt_mpi_node_info(int *local_rank, int *local_size, int *max_sharing);

/* A collective on every rank: returns 0 when rc is 0 on every rank; this
 * rank's rc when it is nonzero; else the nonzero rc of another rank
 * (positive ones, exit statuses, before negative ones, DPT_E* codes). Use
 * it before anything that would wait for the other ranks, so an error on
 * one rank becomes an error on all of them instead of a hang. A failure of
 * MPI itself gives DPT_EIO. Not active: rc. */
DPT_API int dpt_mpi_agree(int rc);

/* A collective on every rank: a barrier over the whole job that waits
 * asleep (MPI_Ibarrier, then MPI_Test every millisecond with nanosleep in
 * between) instead of spinning as MPI_Barrier does. For ranks that sit out
 * while others are timed on the same cores: they enter it at once, the
 * busy ranks when they are done. 0 or DPT_EIO. Not active: 0. */
DPT_API int dpt_mpi_idle_barrier(void);

/* Largest value of v over all ranks (v when not active); 0 or DPT_EIO. */
DPT_API int dpt_mpi_max_double(double *v);

/* A collective: rank 0 receives every rank's bytes (at most 64 KiB each):
 * *all, the texts concatenated in rank order, and *lens, the length of
 * each (size entries), both malloc'd for the caller to free; NULL on the
 * other ranks. Not active: a copy of this rank's bytes. 0, DPT_ENOMEM or
 * DPT_EIO, the same on every rank. */
DPT_API int dpt_mpi_gather_text(const char *text, size_t len, char **all, size_t **lens);

/* Host name of this rank (MPI_Get_processor_name, or gethostname). */
DPT_API void dpt_mpi_host(char *buf, size_t cap);

/* Free the comm buffers and MPI_Finalize when active. Idempotent. */
DPT_API void dpt_mpi_finalize(void);

#ifdef __cplusplus
}
#endif
#endif
