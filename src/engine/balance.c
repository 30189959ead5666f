/* Adaptive load balancing: smoothed per-thread speeds, proportional cuts. */
#include "engine/balance.h"

void dpt_balance_update(int P, const double *secs, const size_t *rows, double *speed, double *cum)
{
    double known = 0;
    int nknown = 0;
    for (int t = 0; t < P; t++) {
        /* a thread with no rows or no measurable time tells nothing new */
        if (rows[t] > 0 && secs[t] > 0) {
            double s = (double)rows[t] / secs[t];
            if (speed[t] > 0) {
                /* one preempted step moves the estimate a bounded amount */
                double lo = speed[t] / DPT_BALANCE_CLIP, hi = speed[t] * DPT_BALANCE_CLIP;
                s = s < lo ? lo : s > hi ? hi : s;
                s = (1 - DPT_BALANCE_ALPHA) * speed[t] + DPT_BALANCE_ALPHA * s;
            }
            speed[t] = s;
        }
        if (speed[t] > 0) {
            known += speed[t];
            nknown++;
        }
    }
    /* weights: the speed, the mean speed for a thread not yet measured,
     * and never below the floor */
    const double mean = nknown ? known / nknown : 1.0;
    const double lowest = DPT_BALANCE_FLOOR * mean;
    cum[0] = 0;
    for (int t = 0; t < P; t++) {
        double wt = speed[t] > 0 ? speed[t] : mean;
        cum[t + 1] = cum[t] + (wt > lowest ? wt : lowest);
    }
    const double sum = cum[P];
    for (int t = 1; t < P; t++) cum[t] /= sum;
    cum[P] = 1;
}

void dpt_balance_cut(int P, const double *cum, size_t n, int t, size_t *lo, size_t *hi)
{
    size_t c[2];
    for (int i = 0; i < 2; i++) {
        int k = t + i;
        if (k == 0 || k == P) {
            c[i] = k ? n : 0;
        } else {
            /* rounded to the row tile; monotone in cum, so the cuts tile [0, n) */
            size_t r = (size_t)(cum[k] * (double)n / DPT_BALANCE_ROUND + 0.5) * DPT_BALANCE_ROUND;
            c[i] = r < n ? r : n;
        }
    }
    *lo = c[0];
    *hi = c[1];
}
