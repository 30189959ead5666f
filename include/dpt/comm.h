/* Communication between processes (ranks) for training across machines.
 * The engine knows nothing of MPI: it calls these hooks, which the MPI
 * layer (src/mpi, built with -Dmpi=enabled) implements. Within a rank the
 * threads reduce first with the engine's tree; then one call per step
 * combines the ranks. Every rank must make the same calls in the same order. */
#ifndef DPT_COMM_H
#define DPT_COMM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Most all-reduces started and not finished at a time. */
#define DPT_COMM_MAX_PENDING 64

typedef struct dpt_comm {
    int rank, size;
    void *ctx;
    /* Sum buf:(n) and *scalars:(nscalars, doubles) elementwise over all
     * ranks, in place; every rank gets the sums. 0 or a negative status. */
    int (*allreduce)(void *ctx, float *buf, size_t n, double *scalars, int nscalars);
    /* Deterministic mode: counts:(size) leaves per rank, in rank order (not
     * all equal when the ranks do not divide the leaves); leaves:(sum of
     * counts) buffers of n floats, rank r's from the sum of counts[0..r).
     * This rank filled its own; afterwards every rank holds every leaf, bit
     * for bit, and loss:(sum of counts) likewise. 0 or a negative status. */
    int (*allgather)(void *ctx, float **leaves, size_t n, const int *counts, double *loss);
    /* Copy buf:(n) from rank 0 to all ranks. */
    int (*broadcast)(void *ctx, float *buf, size_t n);
    /* Every rank passes its status (0 or negative); returns 0 when all are
     * 0, else a failure (this rank's own, or one naming the failed rank),
     * so that a local failure never leaves the other ranks in a collective. */
    int (*agree)(void *ctx, int rc);
    /* Optional (NULL: not offered): allreduce's float sum started and
     * finished apart, to overlap it with other work. start_allreduce begins
     * summing buf:(n) in place (past DPT_COMM_MAX_PENDING pending sums it
     * waits for the earlier ones first);
     * progress lets the pending sums advance (call it between pieces of
     * work); finish waits for all of them. A buffer is not to be touched
     * between its start and finish. Every rank starts the same sums in the
     * same order. 0 or a negative status. */
    int (*start_allreduce)(void *ctx, float *buf, size_t n);
    int (*progress)(void *ctx);
    int (*finish)(void *ctx);
} dpt_comm;

#ifdef __cplusplus
}
#endif
#endif
