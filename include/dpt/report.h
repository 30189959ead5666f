/* The result of one `dpt bench` run, as C structs that map one to one onto
 * the JSON schema "dpt-bench/1":
 *
 * {"schema": "dpt-bench/1",
 *  "context": {"cpu_model", "packages", "numa_nodes", "cores", "pus", "isa",
 *              "compiler", "cflags", "dpt_version", "git_revision", "openmp",
 *              "governor", "boost", "load_average": [1, 5, 15 min], "date",
 *              "engine" (optional)},
 *  "limits": {"points": [{"threads", "pin", "read_gbytes_per_second",
 *                         "peak_gflops"}]},
 *  "results": [{"workload", "implementation", "ranks", "threads", "pin", "isa", "batch", "reps",
 *               "seconds": {"median", "min", "max", "iqr", "samples": [...]},
 *               "samples_per_second", "speedup", "efficiency",
 *               "gbytes_per_second", "gflops", "fraction_of_bandwidth",
 *               "fraction_of_peak", "final_loss", "final_accuracy" (only where
 *               it applies), "phases": {"compute", "reduce", "update", "wait",
 *               "comm"}, "imbalance", "telemetry" (optional: one object per
 *               sample, see dpt_bench_result.telemetry)}]}
 *
 * Times are seconds per epoch (per step for fixed-step workloads). A number
 * that was not measured or does not apply is NAN in C and null in JSON (an
 * int field: -1 and null; a string: "" and null). Quartiles follow the
 * type-7 rule of dpt/stats.h. Writers are atomic (dpt/file.h); the reader
 * checks every field and names file and field on error.
 * "ranks" and "phases.comm" came later: a file without them reads as one
 * rank and an unknown communication time. */
#ifndef DPT_REPORT_H
#define DPT_REPORT_H

#include "dpt/export.h"

#include <stdio.h>

#include "dpt/cost.h"
#include "dpt/file.h" /* the atomic writers, which were declared here */
#include "dpt/telemetry.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DPT_BENCH_SCHEMA "dpt-bench/1"

typedef struct dpt_bench_context {
    char cpu_model[128];      /* probed: /proc/cpuinfo */
    int packages, numa_nodes; /* caller (topology); -1 unknown */
    int cores, pus;           /* caller: physical cores, hardware threads */
    char isa[16];             /* caller: kernels in use, "avx2" / "scalar" */
    char compiler[64];        /* caller: e.g. DPT_COMPILER of dpt_config.h */
    char cflags[256];         /* caller */
    char dpt_version[32];     /* caller */
    char git_revision[64];    /* caller */
    char openmp[64];          /* caller: runtime name and version */
    char governor[32];        /* probed: cpufreq governor of cpu0, "" unknown */
    int boost;                /* probed: 1 on, 0 off, -1 unknown */
    double load_average[3];   /* probed: /proc/loadavg, NAN unknown */
    char date[32];            /* probed: UTC, ISO 8601 "2025-01-31T12:00:00Z" */
    char engine[160];         /* caller: the engine settings of the runs, e.g. "reduce=scatter
                                 balance=static shuffle=epoch batching=global leaves=0"; ""
                                 unknown (optional in the file: older results lack it) */
} dpt_bench_context;

/* Measured machine ceiling at one thread count and placement. */
typedef struct dpt_bench_limit {
    int threads;
    char pin[32];
    double read_gbytes_per_second; /* STREAM-like read bandwidth */
    double peak_gflops;            /* fp32 FMA peak */
} dpt_bench_limit;

typedef struct dpt_bench_phases {
    double compute, reduce, update, wait; /* seconds per epoch, medians */
    double comm;                          /* between ranks (MPI), likewise */
} dpt_bench_phases;

typedef struct dpt_bench_result {
    char workload[64];
    /* who ran it: "dpt", or a peer (bench/peers: "pytorch", "numpy"); optional
     * in the file, absent reads as "dpt" */
    char implementation[32];
    int ranks;   /* MPI processes that trained together; 1 by default */
    int threads; /* per rank */
    char pin[32];
    char isa[16];
    long batch;                   /* rows per step; 0 = full batch */
    int reps;                     /* = number of samples */
    double *samples;              /* reps seconds per epoch, owned by the report */
    double median, min, max, iqr; /* of samples (dpt_bench_report_derive) */
    double samples_per_second;
    /* median of the baseline row over this median: the row of 1 rank and
     * 1 thread with the same workload, pin, isa and batch, else (a sweep
     * at one rank count) of 1 thread at this row's ranks; efficiency:
     * speedup / (workers of this row / workers of the baseline), workers =
     * ranks x threads */
    double speedup, efficiency;
    double gbytes_per_second, gflops; /* of all ranks together */
    /* of the matching limit; rows of one rank only (NAN for more) */
    double fraction_of_bandwidth, fraction_of_peak;
    double final_loss, final_accuracy;
    dpt_bench_phases phases;
    double imbalance;       /* slowest thread's compute time over the threads' mean (1:
                               balanced): the largest of a run's epochs, median of the runs */
    dpt_step_summary moves; /* what a step moved (the engine's counters; steps 0: unknown) */
    char split[8]; /* "data" or "layer": how a domain's threads shared a step; "": unknown */

    /* reps readings of dpt/telemetry.h, sample i's in [i], owned by the
     * report; NULL when not measured (files from before, or written by
     * hand). JSON: "telemetry": [{"seconds", "cpus", "threads", "steal",
     * "others_busy", "run_wait" (absent in older files), "invol_switches", "migrations",
     * "load_average", "clock_ratio", "disturbed"}], optional. */
    dpt_telemetry *telemetry;

    /* Work per epoch, not in the JSON: when > 0, derive() turns them into
     * samples_per_second, gbytes_per_second and gflops. */
    double work_samples, work_bytes, work_flops;
} dpt_bench_result;

typedef struct dpt_bench_report {
    dpt_bench_context context;
    dpt_bench_limit *limits;
    size_t nlimits;
    dpt_bench_result *results;
    size_t nresults;
} dpt_bench_report;

/* An empty report: context fields unknown, no limits, no results. */
DPT_API void dpt_bench_report_init(dpt_bench_report *r);
DPT_API void dpt_bench_report_free(dpt_bench_report *r);

/* Append a row of one rank with every number unknown (NAN) and the given
 * samples copied (set ->ranks after for more ranks). Returns the row
 * (valid until the next append) or NULL (ENOMEM, message set). */
DPT_API dpt_bench_result *dpt_bench_report_add(dpt_bench_report *r, const char *workload,
                                               int threads, const char *pin, const char *isa,
                                               long batch, const double *samples, int nsamples);
/* Append a limit point; 0 or DPT_ENOMEM. */
DPT_API int dpt_bench_report_add_limit(dpt_bench_report *r, int threads, const char *pin,
                                       double read_gbytes_per_second, double peak_gflops);

/* Fill what follows from the samples and the other rows: median, min, max,
 * iqr; throughput from work_* where given; for rows of one rank, fractions
 * of the limit with the same threads and pin (else same threads, any pin;
 * the limits are one process's, so rows of more ranks get NAN); speedup
 * and efficiency against the baseline row of the same workload, pin, isa
 * and batch: 1 rank x 1 thread, else 1 thread at the row's rank count
 * (NAN when there is none). 0, or DPT_EINVAL
 * naming the row without samples. */
DPT_API int dpt_bench_report_derive(dpt_bench_report *r);

/* Fill cpu_model, governor, boost, load_average and date from what is
 * readable under root ("/" for this machine; a fake tree in tests), and
 * leave every other field as it is. Unreadable items stay unknown. */
DPT_API void dpt_bench_context_probe(dpt_bench_context *c, const char *root);

/* Warnings a reader of the numbers should see: a loaded machine (1-minute
 * load average >= 1 before the run), a governor other than "performance",
 * rows whose repetitions spread wide (IQR over 5% of the median). Writes up
 * to cap lines into out (each NUL-terminated, no newline); returns how many
 * there are in all. */
#define DPT_WARNING_LEN 256
DPT_API size_t dpt_bench_report_warnings(const dpt_bench_report *r, char (*out)[DPT_WARNING_LEN],
                                         size_t cap);

/* A step summary as the JSON object "moves" of bench rows and train
 * files: {"steps", "barriers_per_step", "read_bytes_per_step": {distance:
 * bytes}, "written_bytes_per_step": {...}, "rows_per_thread": {"min",
 * "max"}, "idle_threads_per_step"}; NULL when out of memory. */
DPT_API struct json_t *dpt_step_summary_json(const dpt_step_summary *s);

/* JSON file of the report, written atomically; "-" writes to stdout. */
DPT_API int dpt_bench_report_write_json(const dpt_bench_report *r, const char *path);
/* Read and validate a "dpt-bench/1" file into r (initialised here). On
 * error r is empty and the message reads "FILE: where: what is wrong". */
DPT_API int dpt_bench_report_read_json(dpt_bench_report *r, const char *path);

/* One CSV line per result with a header line; unknown numbers are empty
 * cells; ranks and comm_s are the last columns (added after the others,
 * whose places stay). Written atomically; "-" writes to stdout. */
DPT_API int dpt_bench_report_write_csv(const dpt_bench_report *r, const char *path);

/* The aligned table `dpt bench` prints: per configuration the median
 * time per epoch and its IQR, throughput, speedup and efficiency, the rates
 * against the limits, where the epoch's time goes (compute, reduce, update
 * and wait, % of the epoch: thread means) and the imbalance, and the final
 * loss last; with columns for the ranks and the communication time when a
 * row has more than one rank. */
DPT_API void dpt_bench_report_print_table(const dpt_bench_report *r, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
