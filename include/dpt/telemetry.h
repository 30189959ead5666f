/* Interference telemetry: what else happened on the machine while one timed
 * repetition ran, so that a sample taken under interference can be told
 * from a clean one (the bench JSON's per-sample "telemetry", `dpt compare
 * --drop-disturbed`).
 *
 * Readings, each a delta over the repetition (NAN where the machine does
 * not expose it):
 *   steal         fraction of all CPUs' time the hypervisor gave to other
 *                 guests (/proc/stat "steal")
 *   others_busy   CPUs' worth of busy time not spent by this process:
 *                 all CPUs' non-idle time (/proc/stat) minus this process's
 *                 user + system time (getrusage), over the interval; 1.0 =
 *                 one whole CPU kept busy by something else
 *   run_wait      the time this process's threads spent runnable but
 *                 waiting for a CPU (/proc/self/task/N/schedstat, second
 *                 field), over the interval times the run's threads: 0.5
 *                 = as if each thread had had half a CPU; NAN without
 *                 schedstat
 *   invol_switches  involuntary context switches of this process's threads
 *                 (getrusage RUSAGE_SELF ru_nivcsw), per second
 *   migrations    CPU migrations of this process's threads (perf software
 *                 event, one counter per thread at the start, inherited by
 *                 the threads they create), per second; NAN when
 *                 perf_event_open is refused
 *   load_average  the 1-minute load average at the end (/proc/loadavg)
 *   clock_ratio   effective over nominal clock: hardware cycles over
 *                 reference cycles (perf events) where both count, else
 *                 cpufreq scaling_cur_freq over cpuinfo_max_freq of cpu0 at
 *                 the end, else NAN
 *
 * The disturbed rule (dpt_telemetry_judge), with the thresholds below:
 * a repetition is disturbed when
 *   - others took more than DPT_DISTURB_OTHERS (0.25) of a CPU that the
 *     run needed: others_busy - (cpus - threads) > 0.25, i.e. the other
 *     work did not fit on the CPUs the run left free, beyond what one
 *     /proc/stat tick per CPU (DPT_STAT_TICK) over the interval can be
 *     off by (over 20 ms on 2 CPUs that is a whole CPU: a short
 *     repetition is judged by run_wait instead); or
 *   - the threads waited for a CPU more than DPT_DISTURB_WAIT (5%) of
 *     their time (run_wait); or
 *   - steal exceeds DPT_DISTURB_STEAL (5% of the interval); or
 *   - migrations exceed DPT_DISTURB_MIGRATIONS (50 per second); or
 *   - involuntary switches exceed DPT_DISTURB_SWITCHES (100 per second,
 *     the rate of a thread sharing its CPU at the usual 4-10 ms slices)
 *     plus DPT_DISTURB_SWITCHES_OWN (2) per thread over the interval: a
 *     repetition has a few switches of its own however short it is (the
 *     probe's counters opened on every thread, wake-ups), which over 20 ms
 *     alone read as 100-200 per second; or
 *   - clock_ratio is below DPT_DISTURB_CLOCK (0.90 of nominal).
 * A reading that is NAN takes no part. */
#ifndef DPT_TELEMETRY_H
#define DPT_TELEMETRY_H

#include "dpt/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DPT_DISTURB_OTHERS       0.25
#define DPT_DISTURB_WAIT         0.05
#define DPT_STAT_TICK            0.01 /* seconds: /proc/stat's USER_HZ of 100 */
#define DPT_DISTURB_STEAL        0.05
#define DPT_DISTURB_MIGRATIONS   50.0
#define DPT_DISTURB_SWITCHES     100.0
#define DPT_DISTURB_SWITCHES_OWN 2.0
#define DPT_DISTURB_CLOCK        0.90

/* Why a repetition is disturbed: bits of dpt_telemetry.reasons. */
enum {
    DPT_DISTURB_BY_OTHERS = 1,
    DPT_DISTURB_BY_STEAL = 2,
    DPT_DISTURB_BY_MIGRATIONS = 4,
    DPT_DISTURB_BY_SWITCHES = 8,
    DPT_DISTURB_BY_CLOCK = 16,
    DPT_DISTURB_BY_WAIT = 32
};

typedef struct dpt_telemetry {
    double seconds; /* the interval, wall clock */
    int cpus;       /* CPUs in /proc/stat (-1 unknown) */
    int threads;    /* threads the run used */
    double steal, others_busy, invol_switches, migrations, load_average, clock_ratio;
    int disturbed;   /* by the rule above */
    int reasons;     /* DPT_DISTURB_BY_* bits */
    double run_wait; /* last, so that the fields before keep their offsets */
} dpt_telemetry;

/* Every reading unknown (NAN, -1), not disturbed. */
DPT_API void dpt_telemetry_init(dpt_telemetry *t);

/* Cumulative CPU times from /proc/stat, in clock ticks. */
typedef struct dpt_cpu_times {
    double busy;  /* user + nice + system + irq + softirq + steal of the "cpu" line */
    double idle;  /* idle + iowait */
    double steal; /* steal */
    int cpus;     /* "cpuN" lines */
} dpt_cpu_times;

/* Parse the text of /proc/stat: the "cpu" line's fields (guest time is
 * part of user already and not counted twice) and the count of cpuN
 * lines. 0, or DPT_EFORMAT when there is no "cpu" line of 4 fields or more. */
DPT_API int dpt_telemetry_parse_stat(const char *text, dpt_cpu_times *out);

/* Set t->disturbed and t->reasons by the rule above. */
DPT_API void dpt_telemetry_judge(dpt_telemetry *t);

/* A probe around repetitions: opened once, started and stopped around
 * each repetition (the perf counters are opened at the start on every
 * thread of the process then, and closed at the stop). */
typedef struct dpt_telemetry_probe dpt_telemetry_probe;

/* 0, or DPT_ENOMEM. Counters the kernel refuses are left out (their
 * readings NAN); that is no error. */
DPT_API int dpt_telemetry_open(dpt_telemetry_probe **p);
DPT_API void dpt_telemetry_close(dpt_telemetry_probe *p);
DPT_API void dpt_telemetry_start(dpt_telemetry_probe *p);
/* The readings since the start, for a run of threads threads, judged. */
DPT_API void dpt_telemetry_stop(dpt_telemetry_probe *p, int threads, dpt_telemetry *out);

#ifdef __cplusplus
}
#endif
#endif
