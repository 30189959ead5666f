/* Adaptive load balancing (--balance adaptive): how a batch is cut among
 * threads that run at different speeds (a busy SMT sibling, another tenant
 * on a shared machine, big and little cores). Each thread's speed in rows
 * per second is smoothed over steps; the next batch is cut in proportion. */
#ifndef DPT_ENGINE_BALANCE_H
#define DPT_ENGINE_BALANCE_H

#include <stddef.h>

/* Weight of the newest step in the smoothed speed. */
#define DPT_BALANCE_ALPHA 0.25
/* A step's speed counts at most this factor away from the estimate. */
#define DPT_BALANCE_CLIP 1.5
/* No thread weighs less than this fraction of the mean speed, so a
 * thread that stalled once (preempted) still gets rows and is re-measured. */
#define DPT_BALANCE_FLOOR 0.25
/* Cuts fall on multiples of this many rows (the GEMM's row tile). */
#define DPT_BALANCE_ROUND 8

/* One step's measurements: thread t took secs[t] for rows[t] rows. Updates
 * speed[P] (0: not yet measured) and writes the cumulative shares cum[P+1]
 * (cum[0] = 0, cum[P] = 1) of the next batch. */
void dpt_balance_update(int P, const double *secs, const size_t *rows, double *speed, double *cum);

/* Thread t's rows [*lo, *hi) of n rows under the cumulative shares cum. */
void dpt_balance_cut(int P, const double *cum, size_t n, int t, size_t *lo, size_t *hi);

#endif
