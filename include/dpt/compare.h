/* The regression gate between two bench reports (dpt-bench/1), as a library:
 * configurations matched across the files, a Mann-Whitney U test per pair
 * and per point of the speedup curves, verdicts, an overall outcome, and the
 * report in words (the table `dpt compare` prints) and as "dpt-compare/1" JSON.
 *
 * Matching: rows pair up by workload, ranks, threads, pin and batch, with the
 * same isa when the new file has one; otherwise a row whose key is unique in
 * both files pairs with the new file's row of another isa (and a message
 * says so). A file from before the ranks sweep reads as one rank throughout.
 * Each pair gets a two-sided U test on its repetitions. The speedup curves
 * compare every other pair against the pair of 1 rank x 1 thread of the same
 * workload, pin and batch, the U test running on each file's repetitions
 * divided by that file's baseline median, so a scaling loss at high thread
 * counts fails the gate even when one thread got faster.
 *
 * Verdicts: FASTER/SLOWER (curves: BETTER/WORSE) when p < alpha and the
 * median moved by more than the threshold; NOISE when it moved that much but
 * p >= alpha; SAME when it moved less. Each row also carries the two-sample
 * Hodges-Lehmann estimate of the change (the median of the ratios new_j /
 * base_i) with the interval at 1 - alpha that the U test inverts; it
 * informs, the U test decides. The outcome fails on a slower row, on a
 * configuration of the base missing from the new report (unless
 * allow_missing), or on a worse curve when scaling_fails is set; it cannot
 * decide when it would pass but no pair has the repetitions to reach
 * p < alpha (3 and 3 cannot reach 0.05).
 *
 * Paired reports (dpt_compare_paired: sample i of a base row and sample i
 * of its new row were measured back to back, the builds alternating) are
 * judged by the interval instead: per pair d_i = log(new_i / base_i), the
 * Wilcoxon signed-rank test and the Hodges-Lehmann estimate exp(HL) - 1 of
 * the change with its exact interval at 1 - alpha. SLOWER when the whole
 * interval lies above +threshold, FASTER when it lies below -threshold,
 * SAME when it lies within +-threshold, UNDECIDED when it straddles a
 * threshold (or the pairs are too few for an interval). Alternating the
 * builds cancels the drift of a shared runner that two stored reports,
 * measured minutes apart, carry into their difference.
 *
 * Exit status (dpt_compare_result.exit_status, that of `dpt compare`):
 * 0 same or faster, 1 slower (or a configuration missing, or a lost
 * speedup curve that fails), 2 bad input (the tool's), 3 cannot decide. */
#ifndef DPT_COMPARE_H
#define DPT_COMPARE_H

#include "dpt/export.h"

#include <stddef.h>
#include <stdio.h>

#include "dpt/report.h"
#include "dpt/stats.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DPT_COMPARE_SCHEMA "dpt-compare/1"

typedef struct dpt_compare_opts {
    double threshold;  /* smallest relative change that counts (0.05 = 5%) */
    double alpha;      /* significance level of the tests (0.05) */
    int scaling_fails; /* 1: a worse speedup curve fails the gate (default); 0: a warning */
    /* How messages, the printed header and the JSON name the two files;
     * NULL: "base" and "new". dpt_compare_files uses the paths. */
    const char *base_name, *new_name;
    int allow_missing; /* 1: a base configuration missing from the new report is a note */
    /* 1: leave out samples whose telemetry says disturbed (dpt/telemetry.h);
     * samples without telemetry count as clean. Paired: pair i (sample i
     * of every row on both sides, one run of each build) is dropped when
     * any of its samples is disturbed; fewer than DPT_COMPARE_MIN_CLEAN_PAIRS
     * clean pairs and every row abstains (cannot decide). Stored: each row
     * keeps its clean samples; a row left with fewer than
     * DPT_COMPARE_MIN_CLEAN_REPS on either side abstains. An abstaining
     * row keeps all its samples for the table, and its verdict is "cannot
     * decide" whatever they say. */
    int drop_disturbed;
} dpt_compare_opts;

/* The fewest clean pairs that still give a 95% interval (the exact
 * signed-rank interval needs 6), and the fewest clean repetitions per
 * side with which the U test can reach p < 0.05 (5 and 5: 0.008). */
#define DPT_COMPARE_MIN_CLEAN_PAIRS 6
#define DPT_COMPARE_MIN_CLEAN_REPS  5

/* threshold 0.05, alpha 0.05, scaling_fails 1, names NULL, allow_missing 0,
 * drop_disturbed 0. */
DPT_API void dpt_compare_opts_defaults(dpt_compare_opts *o);

typedef enum {
    DPT_VERDICT_SAME = 0,      /* moved less than the threshold */
    DPT_VERDICT_FASTER = 1,    /* rows: significantly faster by more than the threshold */
    DPT_VERDICT_SLOWER = 2,    /* rows: significantly slower by more than the threshold */
    DPT_VERDICT_NOISE = 3,     /* moved more than the threshold, but p >= alpha */
    DPT_VERDICT_BETTER = 4,    /* curves: significantly more speedup */
    DPT_VERDICT_WORSE = 5,     /* curves: significantly less speedup */
    DPT_VERDICT_UNDECIDED = 6, /* paired: the interval straddles the threshold */
    /* paired rows: the interval lies below +threshold and reaches below
     * -threshold: not slower (same or faster), which is all a gate asks */
    DPT_VERDICT_NOT_SLOWER = 7,
    /* paired curves: above -threshold, reaching above +threshold */
    DPT_VERDICT_NOT_WORSE = 8
} dpt_verdict;
#define DPT_VERDICT_COUNT 9

/* "same", "faster", "slower", "noise", "better", "worse", "cannot decide",
 * "same or faster", "same or better" ("?" otherwise). */
DPT_API const char *dpt_verdict_name(dpt_verdict v);

typedef enum {
    DPT_COMPARE_PASS = 0, /* nothing significantly slower (or worse, when that fails) */
    DPT_COMPARE_FAIL = 1, /* something is */
    /* it would pass, but no pair could have failed (stored reports), or some
     * interval straddles the threshold (paired); 3, as the exit status */
    DPT_COMPARE_CANNOT_DECIDE = 3
} dpt_compare_outcome;

/* What a configuration is matched by, and the base row's isa. */
typedef struct dpt_compare_key {
    char workload[64];
    int ranks, threads;
    char pin[32];
    long batch; /* 0 = full batch */
    char isa[16];
} dpt_compare_key;

/* One matched configuration. Times are seconds per epoch (or step). */
typedef struct dpt_compare_row {
    dpt_compare_key key;
    char new_isa[16];             /* the new row's isa (differs from key.isa only when unique) */
    size_t base_index, new_index; /* of the rows in the reports' results */
    int base_reps, new_reps;
    double base_median, new_median;
    /* new_median / base_median - 1; > 0 is slower. Paired: the estimate
     * exp(HL) - 1 of the paired log ratios, which the verdict rests on. */
    double change;
    double p;              /* of the U test (paired: signed-rank); NAN when it could not run */
    dpt_alternative sided; /* DPT_ALT_TWO_SIDED */
    double interval_lo, interval_hi; /* the change's Hodges-Lehmann interval at 1 - alpha;
                                        NAN: too few samples for one */
    int blind;                       /* these sample sizes cannot reach p < alpha (paired:
                                        cannot give an interval) */
    dpt_verdict verdict;   /* SAME, FASTER, SLOWER or NOISE (paired: UNDECIDED, no NOISE) */
    double estimate;       /* Hodges-Lehmann change exp(HL) - 1 (= change when paired) */
    double interval_level; /* the interval's exact coverage (0: none) */
    int dropped;           /* drop_disturbed: samples left out (paired: pairs), both sides */
    int abstained;         /* drop_disturbed: too few clean samples; verdict UNDECIDED */
} dpt_compare_row;

/* One point of a speedup curve: a row against its 1 rank x 1 thread row. */
typedef struct dpt_compare_curve {
    dpt_compare_key key;
    size_t row, one; /* indices into rows: this configuration and its baseline */
    double base_speedup, new_speedup;
    double change; /* new_speedup / base_speedup - 1 (0 within rounding); < 0 is worse */
    double p;
    dpt_alternative sided;
    double interval_lo, interval_hi; /* paired: of the change in speedup; NAN otherwise */
    dpt_verdict verdict; /* SAME, BETTER, WORSE or NOISE (paired: UNDECIDED, no NOISE) */
} dpt_compare_curve;

typedef struct dpt_compare_result {
    char *base_name, *new_name; /* copies of the names used */
    dpt_bench_context base_context, new_context;
    double threshold, alpha;
    int scaling_fails;

    dpt_compare_row *rows; /* in the base file's order */
    size_t nrows;
    dpt_compare_curve *curves; /* in the order of rows */
    size_t ncurves;
    dpt_compare_key *only_base, *only_new; /* configurations without a partner */
    size_t nonly_base, nonly_new;

    int blind;            /* rows whose sample sizes cannot reach p < alpha */
    int slower;           /* rows with DPT_VERDICT_SLOWER */
    int worse;            /* curves with DPT_VERDICT_WORSE */
    int multi_rank;       /* some row has more than one rank */
    double geomean_ratio; /* geometric mean of new/base medians over rows */
    dpt_compare_outcome outcome;
    int exit_status; /* of `dpt compare`: 0 pass, 1 fail, 3 cannot decide */
    int paired;      /* 1: from dpt_compare_paired */
    int missing;     /* base configurations missing from the new report (= nonly_base) */
    int allow_missing;
    int undecided;      /* rows with DPT_VERDICT_UNDECIDED, and curves when scaling_fails */
    int drop_disturbed; /* the option */
    int abstained;      /* rows that abstained for too few clean samples */

    /* Lines for the reader, each "warning: ..." or "note: ..." without a
     * newline, in the order `dpt compare` prints them on stderr: an isa
     * that differs within a pair, another CPU, ISA, engine settings,
     * topology or compiler, each file's own warnings (loaded machine,
     * governor, wide spread), configurations in one file only, too few
     * repetitions. */
    char **messages;
    size_t nmessages;
} dpt_compare_result;

/* Compare cur against base. out is always initialised and must be freed
 * with dpt_compare_result_free, also after a failure; then it holds the
 * messages gathered so far (the context warnings when no configuration is
 * in common). o NULL: the defaults. 0, or DPT_EINVAL naming the file when
 * they cannot be compared (two rows of one configuration and isa in a
 * file, a row without samples, no configuration in common, a threshold or
 * alpha out of range), DPT_ENOMEM. */
DPT_API int dpt_compare_reports(const dpt_bench_report *base, const dpt_bench_report *cur,
                                const dpt_compare_opts *o, dpt_compare_result *out);

/* The same on reports whose rows hold paired samples: sample i of a base
 * row and sample i of the new row it matches were measured back to back
 * (`dpt compare --run`); matching rows must have as many samples. Judged
 * by the Hodges-Lehmann interval of the paired log ratios (see above).
 * 0, or as dpt_compare_reports, DPT_EINVAL also for unequal sample counts. */
DPT_API int dpt_compare_paired(const dpt_bench_report *base, const dpt_bench_report *cur,
                               const dpt_compare_opts *o, dpt_compare_result *out);

/* The same on two dpt-bench/1 files, named by their paths; a file that
 * cannot be read gives the reader's status and message (DPT_EIO,
 * DPT_EFORMAT, ...). */
DPT_API int dpt_compare_files(const char *base_path, const char *new_path,
                              const dpt_compare_opts *o, dpt_compare_result *out);

DPT_API void dpt_compare_result_free(dpt_compare_result *r);

/* The report `dpt compare` prints on stdout: both files, the table of
 * rows, the geometric mean, the speedup table, and the outcome in words.
 * It names no flags of the tool: `dpt compare` adds its own hints. */
DPT_API void dpt_compare_print(const dpt_compare_result *r, FILE *f);

/* {"schema": "dpt-compare/1", "base", "new", "threshold", "alpha",
 *  "geomean_ratio", "results": [{"workload", "ranks", "threads", "pin",
 *  "batch", "base_median", "new_median", "change", "p_value", "verdict",
 *  "test", "sided", "estimate", "interval_lo", "interval_hi",
 *  "interval_level", "base_reps", "new_reps"}], "speedup": [{...
 *  "base_speedup", "new_speedup", "change", "p_value", "verdict", "test",
 *  "sided", "interval_lo", "interval_hi"}], "exit", "outcome" ("pass",
 *  "fail", "cannot decide"), "paired", "missing": [{key}],
 *  "allow_missing", "drop_disturbed"}, rows also "dropped" and "abstained"
 *  when drop_disturbed; unknown numbers null; "test" is "mann-whitney-u" or
 *  "wilcoxon-signed-rank", "sided" "two-sided"; verdict "cannot decide" only
 *  when paired. Written atomically ("-": stdout). 0, or DPT_EIO naming the
 *  file, DPT_ENOMEM. */
DPT_API int dpt_compare_write_json(const dpt_compare_result *r, const char *path);

/* "p (two-sided U)" or "p (two-sided signed-rank)": the label of the
 * p-values of r, for a table or a report. */
DPT_API const char *dpt_compare_p_label(const dpt_compare_result *r);

/* CI exports, each written atomically ("-": stdout); 0, or DPT_EIO naming
 * the file, DPT_ENOMEM.
 * Markdown: a GitHub-flavoured table (configuration, base ms, new ms,
 * change with its interval, p, verdict) and the outcome line, for a job
 * summary or a pull-request comment. */
DPT_API int dpt_compare_write_markdown(const dpt_compare_result *r, const char *path);

/* Bencher Metric Format: {"<workload>/<ranks>x<threads>/<pin>/<batch>":
 * {"latency": {"value", "lower_value", "upper_value"}}} per row, the new
 * report's seconds per epoch (the median) and the interval's bounds
 * applied to the base median (the value when there is no interval). */
DPT_API int dpt_compare_write_bmf(const dpt_compare_result *r, const char *path);

/* github-action-benchmark "customSmallerIsBetter": [{"name", "unit": "ms",
 * "value" (the new median), "range" (the change's interval, "+1.2% .. +3.4%",
 * or "" without one), "extra" (base median, change, p, verdict)}]. */
DPT_API int dpt_compare_write_github_benchmark(const dpt_compare_result *r, const char *path);

#ifdef __cplusplus
}
#endif
#endif
