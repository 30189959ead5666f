/* Interference telemetry around a timed repetition (dpt/telemetry.h):
 * /proc/stat and getrusage deltas, perf software and hardware counters on
 * every thread of the process, the load average and the clock. Nothing
 * here fails a run: what cannot be read stays NAN. */
#include <dirent.h>
#include <linux/perf_event.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "dpt/error.h"
#include "dpt/telemetry.h"

void dpt_telemetry_init(dpt_telemetry *t)
{
    memset(t, 0, sizeof *t);
    t->cpus = t->threads = -1;
    t->seconds = t->steal = t->others_busy = t->run_wait = t->invol_switches = NAN;
    t->migrations = t->load_average = t->clock_ratio = NAN;
}

int dpt_telemetry_parse_stat(const char *text, dpt_cpu_times *out)
{
    memset(out, 0, sizeof *out);
    int have = 0;
    for (const char *line = text; line && *line;) {
        const char *next = strchr(line, '\n');
        if (!strncmp(line, "cpu", 3)) {
            if (line[3] >= '0' && line[3] <= '9') {
                out->cpus++;
            } else if (line[3] == ' ' && !have) {
                /* user nice system idle iowait irq softirq steal guest guest_nice */
                double v[10] = {0};
                int n = sscanf(line + 3, "%lf %lf %lf %lf %lf %lf %lf %lf %lf %lf", &v[0], &v[1],
                               &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
                if (n < 4) break;
                out->busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
                out->idle = v[3] + v[4];
                out->steal = v[7];
                have = 1;
            }
        }
        line = next ? next + 1 : NULL;
    }
    if (!have) return dpt_set_error(DPT_EFORMAT, "/proc/stat: no \"cpu\" line of 4 fields or more");
    return 0;
}

void dpt_telemetry_judge(dpt_telemetry *t)
{
    int why = 0;
    /* the CPUs the run left to others; NAN or unknown counts take no part */
    double spare = t->cpus > 0 && t->threads > 0 ? (double)(t->cpus - t->threads) : NAN;
    if (spare < 0) spare = 0;
    /* /proc/stat counts in ticks: each CPU's figure may be off by one */
    double ticks = t->cpus > 0 && t->seconds > 0 ? t->cpus * DPT_STAT_TICK / t->seconds : 0;
    if (t->others_busy - spare > DPT_DISTURB_OTHERS + ticks) why |= DPT_DISTURB_BY_OTHERS;
    if (t->run_wait > DPT_DISTURB_WAIT) why |= DPT_DISTURB_BY_WAIT;
    if (t->steal > DPT_DISTURB_STEAL) why |= DPT_DISTURB_BY_STEAL;
    if (t->migrations > DPT_DISTURB_MIGRATIONS) why |= DPT_DISTURB_BY_MIGRATIONS;
    /* a short repetition's few switches of its own (perf counters opened on
     * every thread, wake-ups) are no sharing: allow DPT_DISTURB_SWITCHES_OWN
     * a thread over the interval beside the rate */
    double own =
        t->threads > 0 && t->seconds > 0 ? DPT_DISTURB_SWITCHES_OWN * t->threads / t->seconds : 0;
    if (t->invol_switches > DPT_DISTURB_SWITCHES + own) why |= DPT_DISTURB_BY_SWITCHES;
    if (t->clock_ratio < DPT_DISTURB_CLOCK) why |= DPT_DISTURB_BY_CLOCK;
    t->reasons = why;
    t->disturbed = why != 0;
}

/* ---- the probe ---- */

enum { EV_MIGRATIONS, EV_CYCLES, EV_REF_CYCLES, NEV };

#define MAX_TASKS 1024

struct dpt_telemetry_probe {
    double t0, cpu0; /* wall clock; this process's CPU seconds */
    long nivcsw0;
    dpt_cpu_times stat0;
    int have_stat;
    int tid[MAX_TASKS]; /* the threads at the start, and their run_delay */
    double wait0[MAX_TASKS];
    int ntid;               /* -1: no schedstat */
    int fd[NEV][MAX_TASKS]; /* per thread of the process, -1 when refused */
    int nfd;
    long ticks; /* clock ticks per second of /proc/stat */
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int read_stat(dpt_cpu_times *out)
{
    char buf[8192];
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return dpt_telemetry_parse_stat(buf, out) ? -1 : 0;
}

static void self_usage(double *cpu, long *nivcsw)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) {
        *cpu = NAN;
        *nivcsw = -1;
        return;
    }
    *cpu = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
    *nivcsw = ru.ru_nivcsw;
}

/* Nanoseconds thread tid has waited runnable for a CPU (the second
 * field of its schedstat), or NAN. */
static double run_delay(int tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", tid);
    FILE *f = fopen(path, "r");
    double on, wait = NAN;
    if (f) {
        if (fscanf(f, "%lf %lf", &on, &wait) != 2) wait = NAN;
        fclose(f);
    }
    return wait;
}

/* The threads' run_delay now: those seen at the start from then on, later
 * ones since they began (a thread that ended takes its share along). NAN
 * when schedstat cannot be read. */
static double waited(const dpt_telemetry_probe *p)
{
    if (p->ntid < 0) return NAN;
    DIR *d = opendir("/proc/self/task");
    if (!d) return NAN;
    double sum = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int tid = atoi(e->d_name);
        if (tid <= 0) continue;
        double w = run_delay(tid);
        if (isnan(w)) continue; /* ended meanwhile */
        for (int i = 0; i < p->ntid; i++)
            if (p->tid[i] == tid) {
                w -= p->wait0[i];
                break;
            }
        sum += w;
    }
    closedir(d);
    return sum * 1e-9;
}

/* A counter on thread tid and the threads it creates; -1 when refused. */
static int open_counter(int tid, int ev)
{
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = ev == EV_MIGRATIONS ? PERF_TYPE_SOFTWARE : PERF_TYPE_HARDWARE;
    a.config = ev == EV_MIGRATIONS ? PERF_COUNT_SW_CPU_MIGRATIONS
               : ev == EV_CYCLES   ? PERF_COUNT_HW_CPU_CYCLES
                                   : PERF_COUNT_HW_REF_CPU_CYCLES;
    a.inherit = 1;
    a.exclude_kernel = ev != EV_MIGRATIONS; /* allowed at perf_event_paranoid 2 */
    a.exclude_hv = 1;
    return (int)syscall(SYS_perf_event_open, &a, tid, -1, -1, 0);
}

/* Counters on every thread of the process now (a counter follows one
 * thread and those it creates after), and each thread's run_delay. */
static void open_counters(dpt_telemetry_probe *p)
{
    p->nfd = 0;
    p->ntid = -1;
    DIR *d = opendir("/proc/self/task");
    if (!d) return;
    struct dirent *e;
    int have_wait = 1;
    while ((e = readdir(d)) && p->nfd < MAX_TASKS) {
        int tid = atoi(e->d_name);
        if (tid <= 0) continue;
        for (int ev = 0; ev < NEV; ev++) p->fd[ev][p->nfd] = open_counter(tid, ev);
        p->tid[p->nfd] = tid;
        p->wait0[p->nfd] = run_delay(tid);
        have_wait &= !isnan(p->wait0[p->nfd]);
        p->nfd++;
    }
    closedir(d);
    p->ntid = have_wait && !e ? p->nfd : -1; /* every thread, each with its reading */
}

/* The sum of event ev over the threads, closing the counters; NAN when
 * one of them was refused. */
static double close_counters(dpt_telemetry_probe *p, int ev)
{
    double sum = p->nfd ? 0 : NAN;
    for (int i = 0; i < p->nfd; i++) {
        unsigned long long v;
        int fd = p->fd[ev][i];
        if (fd < 0 || read(fd, &v, sizeof v) != (ssize_t)sizeof v)
            sum = NAN;
        else
            sum += (double)v;
        if (fd >= 0) close(fd);
        p->fd[ev][i] = -1;
    }
    return sum;
}

int dpt_telemetry_open(dpt_telemetry_probe **out)
{
    dpt_telemetry_probe *p = calloc(1, sizeof *p);
    *out = p;
    if (!p) return dpt_set_error(DPT_ENOMEM, "out of memory for the telemetry");
    p->ticks = sysconf(_SC_CLK_TCK);
    return 0;
}

void dpt_telemetry_close(dpt_telemetry_probe *p)
{
    if (!p) return;
    for (int ev = 0; ev < NEV; ev++) close_counters(p, ev);
    free(p);
}

void dpt_telemetry_start(dpt_telemetry_probe *p)
{
    for (int ev = 0; ev < NEV; ev++) close_counters(p, ev); /* a start without a stop */
    open_counters(p);
    p->have_stat = read_stat(&p->stat0) == 0;
    self_usage(&p->cpu0, &p->nivcsw0);
    p->t0 = now();
}

/* Effective over nominal clock from cpufreq, NAN where there is none. */
static double cpufreq_ratio(void)
{
    static const char *const files[2] = {"/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq",
                                         "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"};
    double v[2];
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "r");
        int ok = f && fscanf(f, "%lf", &v[i]) == 1 && v[i] > 0;
        if (f) fclose(f);
        if (!ok) return NAN;
    }
    return v[0] / v[1];
}

void dpt_telemetry_stop(dpt_telemetry_probe *p, int threads, dpt_telemetry *t)
{
    double t1 = now(), cpu1;
    long nivcsw1;
    self_usage(&cpu1, &nivcsw1);
    const double wait = waited(p);
    dpt_cpu_times s1;
    int have_stat = p->have_stat && read_stat(&s1) == 0;
    double mig = close_counters(p, EV_MIGRATIONS), cyc = close_counters(p, EV_CYCLES),
           ref = close_counters(p, EV_REF_CYCLES);
    dpt_telemetry_init(t);
    t->threads = threads;
    t->seconds = t1 - p->t0;
    const double secs = t->seconds > 0 ? t->seconds : NAN;
    if (have_stat && p->ticks > 0) {
        const double total = (s1.busy + s1.idle) - (p->stat0.busy + p->stat0.idle);
        t->cpus = s1.cpus;
        t->steal = total > 0 ? (s1.steal - p->stat0.steal) / total : NAN;
        const double busy = (s1.busy - p->stat0.busy) / (double)p->ticks;
        t->others_busy = (busy - (cpu1 - p->cpu0)) / secs;
        if (t->others_busy < 0) t->others_busy = 0; /* tick rounding */
    }
    if (threads > 0) t->run_wait = wait / (secs * threads);
    if (nivcsw1 >= 0 && p->nivcsw0 >= 0) t->invol_switches = (double)(nivcsw1 - p->nivcsw0) / secs;
    t->migrations = mig / secs;
    t->clock_ratio = cyc > 0 && ref > 0 ? cyc / ref : cpufreq_ratio();
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &t->load_average) != 1) t->load_average = NAN;
        fclose(f);
    }
    dpt_telemetry_judge(t);
}
