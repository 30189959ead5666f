/* Choosing a configuration (threads x pinning x batch x load balancing) with as few timed
 * runs as it takes: a race. Every candidate runs a couple of times, those
 * clearly or significantly slower than the current best leave, the close
 * ones get more repetitions, and the winner and the runner-up are measured
 * until their difference can be judged with the Mann-Whitney U test.
 * The measuring is the caller's: a callback returns seconds for one run. */
#ifndef DPT_TUNE_H
#define DPT_TUNE_H

#include "dpt/export.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dpt_tune_candidate {
    int threads;
    char pin[32];
    long batch;       /* 0 = the workload's own */
    char balance[16]; /* "static" or "adaptive"; "" = the workload's own */
} dpt_tune_candidate;

/* Seconds for one run of c (rep counts that candidate's runs from 0). On
 * failure return a negative dpt status (e.g. (double)DPT_EDIVERGED) after
 * dpt_set_error(); the race stops and dpt_tune_run returns that status. */
typedef double (*dpt_tune_measure_fn)(void *ctx, const dpt_tune_candidate *c, int rep);

typedef struct dpt_tune_options {
    int first_reps;   /* runs of every candidate before any leaves (2) */
    int max_reps;     /* most runs of one candidate (10) */
    int confirm_reps; /* runs the winner and runner-up get at least (5) */
    double alpha;     /* significance level of the U tests (0.05) */
    double gross;     /* leave at once when the fastest run is this much slower
                       * than the best's slowest run (0.25 = 25%) */
} dpt_tune_options;

DPT_API void dpt_tune_options_defaults(dpt_tune_options *o);

typedef enum {
    DPT_TUNE_RAN = 0,   /* stayed in the race to the end */
    DPT_TUNE_GROSS = 1, /* left: every run slower than every run of the best by > gross */
    DPT_TUNE_TEST = 2   /* left: slower than the best, one-sided U test p < alpha */
} dpt_tune_outcome;

typedef struct dpt_tune_entry {
    dpt_tune_candidate cand;
    double *samples; /* nsamples seconds, in run order */
    int nsamples;
    double median;
    dpt_tune_outcome outcome;
    double p_slower; /* one-sided U p that it is slower than the winner (NAN for the winner) */
} dpt_tune_entry;

typedef struct dpt_tune_result {
    dpt_tune_entry *entries; /* in the order of the candidates given */
    int n;
    int best;        /* index of the recommendation */
    int runner_up;   /* next lowest median, -1 with a single candidate */
    double margin;   /* runner-up median / best median - 1 */
    double p_value;  /* two-sided U test, best vs runner-up (1 without a runner-up) */
    int significant; /* p_value < alpha */
    int runs;        /* measurements taken in all */
    /* The classic trap: the candidate with the most threads at the
     * winner's pin and batch, when that is more threads than the winner
     * and significantly slower (-1 otherwise), and its slowdown. */
    int more_threads_slower;
    double trap_slowdown; /* its median / best median */
} dpt_tune_result;

/* Race the n candidates. Ties in median go to fewer threads. 0, or
 * DPT_EINVAL (no candidates, bad options), DPT_ENOMEM, or the status the
 * callback returned. Free the result with dpt_tune_result_free. */
DPT_API int dpt_tune_run(const dpt_tune_candidate *cands, int n, const dpt_tune_options *opt,
                         dpt_tune_measure_fn measure, void *ctx, dpt_tune_result *out);
DPT_API void dpt_tune_result_free(dpt_tune_result *r);

/* {"schema": "dpt-tune/1", "workload", "recommended": {"threads", "pin",
 *  "batch", "median_seconds"}, "runner_up": {...} or null, "margin",
 *  "p_value", "significant", "runs", "more_threads_slower": {...} or null,
 *  "candidates": [{"threads", "pin", "batch", "reps", "median_seconds",
 *  "samples", "outcome", "p_slower"}]}, written atomically ("-": stdout). */
DPT_API int dpt_tune_write_json(const dpt_tune_result *r, const char *workload, const char *path);

/* The candidates table and the recommendation in words. */
DPT_API void dpt_tune_print(const dpt_tune_result *r, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
