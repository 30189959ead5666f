/* The bench report: building it, deriving its statistics, probing the
 * machine context, and its JSON and CSV forms. The JSON reader trusts
 * nothing: every field is checked and an error names the file and the field. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dpt/error.h"
#include "dpt/report.h"
#include "dpt/stats.h"

/* ---- building ---- */

static void context_init(dpt_bench_context *c)
{
    memset(c, 0, sizeof *c);
    c->packages = c->numa_nodes = c->cores = c->pus = -1;
    c->boost = -1;
    for (int i = 0; i < 3; i++) c->load_average[i] = NAN;
}

void dpt_bench_report_init(dpt_bench_report *r)
{
    memset(r, 0, sizeof *r);
    context_init(&r->context);
}

void dpt_bench_report_free(dpt_bench_report *r)
{
    for (size_t i = 0; i < r->nresults; i++) {
        free(r->results[i].samples);
        free(r->results[i].telemetry);
    }
    free(r->results);
    free(r->limits);
    dpt_bench_report_init(r);
}

/* Copy src into dst[cap]; 0, or -1 when it does not fit. */
static int copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src ? src : "");
    if (n >= cap) {
        memcpy(dst, src, cap - 1);
        dst[cap - 1] = '\0';
        return -1;
    }
    memcpy(dst, src ? src : "", n + 1);
    return 0;
}

#define COPY(dst, src) copy_str((dst), sizeof(dst), (src))

static void result_init(dpt_bench_result *row)
{
    memset(row, 0, sizeof *row);
    row->median = row->min = row->max = row->iqr = NAN;
    row->samples_per_second = row->speedup = row->efficiency = NAN;
    row->gbytes_per_second = row->gflops = NAN;
    row->fraction_of_bandwidth = row->fraction_of_peak = NAN;
    row->final_loss = row->final_accuracy = NAN;
    row->phases = (dpt_bench_phases){NAN, NAN, NAN, NAN, NAN};
    row->imbalance = NAN;
    row->ranks = 1;
}

dpt_bench_result *dpt_bench_report_add(dpt_bench_report *r, const char *workload, int threads,
                                       const char *pin, const char *isa, long batch,
                                       const double *samples, int nsamples)
{
    dpt_bench_result *rows = realloc(r->results, (r->nresults + 1) * sizeof *rows);
    if (!rows) {
        dpt_set_error(DPT_ENOMEM, "out of memory adding a bench result");
        return NULL;
    }
    r->results = rows;
    dpt_bench_result *row = &rows[r->nresults];
    result_init(row);
    if (nsamples > 0) {
        row->samples = malloc((size_t)nsamples * sizeof *row->samples);
        if (!row->samples) {
            dpt_set_error(DPT_ENOMEM, "out of memory for %d samples", nsamples);
            return NULL;
        }
        memcpy(row->samples, samples, (size_t)nsamples * sizeof *row->samples);
        row->reps = nsamples;
    }
    COPY(row->workload, workload);
    COPY(row->implementation, "dpt");
    COPY(row->pin, pin);
    COPY(row->isa, isa);
    row->threads = threads;
    row->batch = batch;
    r->nresults++;
    return row;
}

int dpt_bench_report_add_limit(dpt_bench_report *r, int threads, const char *pin,
                               double read_gbytes_per_second, double peak_gflops)
{
    dpt_bench_limit *l = realloc(r->limits, (r->nlimits + 1) * sizeof *l);
    if (!l) return dpt_set_error(DPT_ENOMEM, "out of memory adding a limit");
    r->limits = l;
    dpt_bench_limit *p = &l[r->nlimits++];
    memset(p, 0, sizeof *p);
    p->threads = threads;
    COPY(p->pin, pin);
    p->read_gbytes_per_second = read_gbytes_per_second;
    p->peak_gflops = peak_gflops;
    return 0;
}

/* ---- derived fields ---- */

static const dpt_bench_limit *find_limit(const dpt_bench_report *r, int threads, const char *pin)
{
    const dpt_bench_limit *any = NULL;
    for (size_t i = 0; i < r->nlimits; i++) {
        if (r->limits[i].threads != threads) continue;
        if (!strcmp(r->limits[i].pin, pin)) return &r->limits[i];
        if (!any) any = &r->limits[i];
    }
    return any;
}

/* a / b when both are finite and b > 0, else NAN. */
static double ratio(double a, double b)
{
    return isfinite(a) && isfinite(b) && b > 0 ? a / b : NAN;
}

int dpt_bench_report_derive(dpt_bench_report *r)
{
    for (size_t i = 0; i < r->nresults; i++) {
        dpt_bench_result *row = &r->results[i];
        dpt_summary s;
        if (row->reps < 1 || dpt_stats_summarize(row->samples, (size_t)row->reps, &s))
            return dpt_set_error(DPT_EINVAL,
                                 "result %zu (%s, %d threads, pin %s) has no valid samples", i,
                                 row->workload, row->threads, row->pin);
        row->median = s.median;
        row->min = s.min;
        row->max = s.max;
        row->iqr = s.iqr;
        if (row->work_samples > 0) row->samples_per_second = ratio(row->work_samples, s.median);
        if (row->work_bytes > 0) row->gbytes_per_second = ratio(row->work_bytes, s.median) / 1e9;
        if (row->work_flops > 0) row->gflops = ratio(row->work_flops, s.median) / 1e9;
        /* the limits were measured by one process: no ceiling for several */
        const dpt_bench_limit *lim = row->ranks == 1 ? find_limit(r, row->threads, row->pin) : NULL;
        if (lim) {
            row->fraction_of_bandwidth = ratio(row->gbytes_per_second, lim->read_gbytes_per_second);
            row->fraction_of_peak = ratio(row->gflops, lim->peak_gflops);
        }
    }
    for (size_t i = 0; i < r->nresults; i++) {
        dpt_bench_result *row = &r->results[i];
        row->speedup = row->efficiency = NAN;
        /* the baseline: 1 rank x 1 thread, else 1 thread at this rank count */
        const dpt_bench_result *base = NULL;
        for (size_t j = 0; j < r->nresults; j++) {
            const dpt_bench_result *one = &r->results[j];
            if (one->threads == 1 && (one->ranks == 1 || one->ranks == row->ranks) &&
                one->batch == row->batch && !strcmp(one->workload, row->workload) &&
                !strcmp(one->pin, row->pin) && !strcmp(one->isa, row->isa) &&
                !strcmp(one->implementation, row->implementation) &&
                (!base || one->ranks < base->ranks))
                base = one;
        }
        if (base) {
            row->speedup = ratio(base->median, row->median);
            row->efficiency = row->speedup * base->ranks / ((double)row->ranks * row->threads);
        }
    }
    return 0;
}

/* ---- machine context ---- */

/* First line of root/rel into buf, without the newline; 0 or -1. */
static int read_line(const char *root, const char *rel, char *buf, size_t cap)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int ok = fgets(buf, (int)cap, f) != NULL;
    fclose(f);
    if (!ok) return -1;
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

static void probe_cpu_model(dpt_bench_context *c, const char *root)
{
    static const char *const keys[] = {"model name", "cpu model", "Hardware", "cpu"};
    char path[512], line[512];
    snprintf(path, sizeof path, "%s/proc/cpuinfo", root);
    FILE *f = fopen(path, "r");
    if (!f) return;
    int best = (int)(sizeof keys / sizeof keys[0]); /* rank of the key found so far */
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        size_t klen = (size_t)(colon - line);
        while (klen && (line[klen - 1] == ' ' || line[klen - 1] == '\t')) klen--;
        for (int k = 0; k < best; k++) {
            if (strlen(keys[k]) != klen || strncmp(line, keys[k], klen)) continue;
            char *v = colon + 1;
            v += strspn(v, " \t");
            size_t len = strcspn(v, "\n");
            while (len && (v[len - 1] == ' ' || v[len - 1] == '\t')) len--;
            v[len] = '\0';
            if (*v) {
                COPY(c->cpu_model, v);
                best = k;
            }
            break;
        }
        if (best == 0) break;
    }
    fclose(f);
}

void dpt_bench_context_probe(dpt_bench_context *c, const char *root)
{
    char buf[128];
    if (!root) root = "/";
    probe_cpu_model(c, root);
    if (!read_line(root, "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", buf, sizeof buf))
        COPY(c->governor, buf);
    /* acpi-cpufreq and amd-pstate expose "boost"; intel_pstate the inverse "no_turbo". */
    if (!read_line(root, "sys/devices/system/cpu/cpufreq/boost", buf, sizeof buf) ||
        !read_line(root, "sys/devices/system/cpu/cpu0/cpufreq/boost", buf, sizeof buf))
        c->boost = atoi(buf) != 0;
    else if (!read_line(root, "sys/devices/system/cpu/intel_pstate/no_turbo", buf, sizeof buf))
        c->boost = atoi(buf) == 0;
    double l[3];
    if (!read_line(root, "proc/loadavg", buf, sizeof buf) &&
        sscanf(buf, "%lf %lf %lf", &l[0], &l[1], &l[2]) == 3)
        memcpy(c->load_average, l, sizeof l);
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm)) strftime(c->date, sizeof c->date, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* "linreg, 4 threads, pin compact, batch 1024" ("linreg, 2 ranks x 4
 * threads, ..." with several ranks) */
static void describe_row(const dpt_bench_result *row, char *buf, size_t cap)
{
    char batch[32], ranks[32] = "";
    if (row->batch > 0)
        snprintf(batch, sizeof batch, "batch %ld", row->batch);
    else
        snprintf(batch, sizeof batch, "full batch");
    if (row->ranks > 1) snprintf(ranks, sizeof ranks, "%d ranks x ", row->ranks);
    snprintf(buf, cap, "%s, %s%d thread%s, pin %s, %s", row->workload, ranks, row->threads,
             row->threads == 1 ? "" : "s", row->pin, batch);
}

/* Repetitions of row that ran disturbed (dpt/telemetry.h). */
static int count_disturbed(const dpt_bench_result *row)
{
    int n = 0;
    for (int i = 0; row->telemetry && i < row->reps; i++) n += row->telemetry[i].disturbed != 0;
    return n;
}

size_t dpt_bench_report_warnings(const dpt_bench_report *r, char (*out)[DPT_WARNING_LEN],
                                 size_t cap)
{
    size_t n = 0;
#define WARN(...)                                                                                  \
    do {                                                                                           \
        if (n < cap) snprintf(out[n], DPT_WARNING_LEN, __VA_ARGS__);                               \
        n++;                                                                                       \
    } while (0)
    const dpt_bench_context *c = &r->context;
    if (c->load_average[0] >= 1.0)
        WARN("loaded machine: 1-minute load average %.2f before the run; other work competes "
             "for the cores",
             c->load_average[0]);
    if (c->governor[0] && strcmp(c->governor, "performance"))
        WARN("frequency governor is '%s', not 'performance': clock speed may change between "
             "runs",
             c->governor);
    for (size_t i = 0; i < r->nresults; i++) {
        const dpt_bench_result *row = &r->results[i];
        double spread = ratio(row->iqr, row->median);
        if (spread > 0.05) {
            char what[192];
            describe_row(row, what, sizeof what);
            WARN("%s: repetitions spread wide (IQR %.1f%% of the median)", what, 100 * spread);
        }
        /* above a ceiling measured in the same run: the ceiling read low
         * (its own measurement disturbed) or the row's work is miscounted;
         * either way not a result */
        const double over[2] = {row->fraction_of_bandwidth, row->fraction_of_peak};
        const char *of[2] = {"read bandwidth", "FMA peak"};
        for (int q = 0; q < 2; q++)
            if (over[q] > 1) {
                char what[160];
                describe_row(row, what, sizeof what);
                WARN("%s: %.0f%% of this run's %s: it read low, or the work is miscounted", what,
                     100 * over[q], of[q]);
            }
    }
    int dist = 0, reps = 0;
    for (size_t i = 0; i < r->nresults; i++)
        if (r->results[i].telemetry) {
            dist += count_disturbed(&r->results[i]);
            reps += r->results[i].reps;
        }
    if (dist)
        WARN("%d of %d repetitions ran disturbed (other work on the CPUs the run used, steal, "
             "migrations, preemption or a low clock: see \"telemetry\")",
             dist, reps);
#undef WARN
    return n;
}

/* ---- JSON writer ---- */

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}
static json_t *opt_int(int v)
{
    return v >= 0 ? json_integer(v) : json_null();
}
static json_t *opt_str(const char *s)
{
    return s[0] ? json_string(s) : json_null();
}

static json_t *context_json(const dpt_bench_context *c)
{
    json_t *la = json_array();
    for (int i = 0; i < 3; i++) json_array_append_new(la, num(c->load_average[i]));
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
                     "s:o, s:o}",
                     "cpu_model", opt_str(c->cpu_model), "packages", opt_int(c->packages),
                     "numa_nodes", opt_int(c->numa_nodes), "cores", opt_int(c->cores), "pus",
                     opt_int(c->pus), "isa", opt_str(c->isa), "compiler", opt_str(c->compiler),
                     "cflags", opt_str(c->cflags), "dpt_version", opt_str(c->dpt_version),
                     "git_revision", opt_str(c->git_revision), "openmp", opt_str(c->openmp),
                     "governor", opt_str(c->governor), "boost",
                     c->boost < 0 ? json_null() : json_boolean(c->boost), "load_average", la,
                     "date", opt_str(c->date), "engine", opt_str(c->engine));
}

/* One object per sample (dpt/telemetry.h); null for unknown readings. */
static json_t *telemetry_json(const dpt_bench_result *row)
{
    json_t *a = json_array();
    for (int i = 0; i < row->reps; i++) {
        const dpt_telemetry *t = &row->telemetry[i];
        json_array_append_new(
            a, json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b}", "seconds",
                         num(t->seconds), "cpus", opt_int(t->cpus), "threads", opt_int(t->threads),
                         "steal", num(t->steal), "others_busy", num(t->others_busy), "run_wait",
                         num(t->run_wait), "invol_switches", num(t->invol_switches), "migrations",
                         num(t->migrations), "load_average", num(t->load_average), "clock_ratio",
                         num(t->clock_ratio), "disturbed", t->disturbed));
    }
    return a;
}

static json_t *result_json(const dpt_bench_result *row)
{
    json_t *samples = json_array();
    for (int i = 0; i < row->reps; i++) json_array_append_new(samples, num(row->samples[i]));
    json_t *o = json_pack(
        "{s:s, s:i, s:i, s:s, s:s, s:I, s:i, s:{s:o, s:o, s:o, s:o, s:o}, s:o, s:o, s:o, s:o, "
        "s:o, s:o, s:o, s:o}",
        "workload", row->workload, "ranks", row->ranks, "threads", row->threads, "pin", row->pin,
        "isa", row->isa, "batch", (json_int_t)row->batch, "reps", row->reps, "seconds", "median",
        num(row->median), "min", num(row->min), "max", num(row->max), "iqr", num(row->iqr),
        "samples", samples, "samples_per_second", num(row->samples_per_second), "speedup",
        num(row->speedup), "efficiency", num(row->efficiency), "gbytes_per_second",
        num(row->gbytes_per_second), "gflops", num(row->gflops), "fraction_of_bandwidth",
        num(row->fraction_of_bandwidth), "fraction_of_peak", num(row->fraction_of_peak),
        "final_loss", num(row->final_loss));
    if (!o) return NULL;
    json_object_set_new(o, "implementation", json_string(row->implementation));
    if (isfinite(row->final_accuracy))
        json_object_set_new(o, "final_accuracy", json_real(row->final_accuracy));
    json_object_set_new(o, "phases",
                        json_pack("{s:o, s:o, s:o, s:o, s:o}", "compute", num(row->phases.compute),
                                  "reduce", num(row->phases.reduce), "update",
                                  num(row->phases.update), "wait", num(row->phases.wait), "comm",
                                  num(row->phases.comm)));
    json_object_set_new(o, "imbalance", num(row->imbalance));
    if (row->moves.steps > 0) json_object_set_new(o, "moves", dpt_step_summary_json(&row->moves));
    if (row->split[0]) json_object_set_new(o, "split", json_string(row->split));
    if (row->telemetry) json_object_set_new(o, "telemetry", telemetry_json(row));
    return o;
}

json_t *dpt_step_summary_json(const dpt_step_summary *s)
{
    json_t *rd = json_object(), *wr = json_object();
    for (int d = 0; d < DPT_NEAR_COUNT; d++) {
        json_object_set_new(rd, dpt_near_name(d), json_real(s->read[d]));
        json_object_set_new(wr, dpt_near_name(d), json_real(s->written[d]));
    }
    return json_pack("{s:f, s:f, s:o, s:o, s:{s:f, s:f}, s:f}", "steps", s->steps,
                     "barriers_per_step", s->barriers, "read_bytes_per_step", rd,
                     "written_bytes_per_step", wr, "rows_per_thread", "min", s->rows_min, "max",
                     s->rows_max, "idle_threads_per_step", s->idle_threads);
}

/* The optional "moves" object of a row (files before it have none). */
static int read_moves(json_t *o, dpt_step_summary *m)
{
    json_t *mv = json_object_get(o, "moves");
    if (!mv) return 0;
    json_t *rd = json_object_get(mv, "read_bytes_per_step"),
           *wr = json_object_get(mv, "written_bytes_per_step"),
           *rows = json_object_get(mv, "rows_per_thread");
    if (!json_is_object(mv) || !json_is_object(rd) || !json_is_object(wr) || !json_is_object(rows))
        return -1;
    m->steps = json_number_value(json_object_get(mv, "steps"));
    m->barriers = json_number_value(json_object_get(mv, "barriers_per_step"));
    m->idle_threads = json_number_value(json_object_get(mv, "idle_threads_per_step"));
    m->rows_min = json_number_value(json_object_get(rows, "min"));
    m->rows_max = json_number_value(json_object_get(rows, "max"));
    for (int d = 0; d < DPT_NEAR_COUNT; d++) {
        m->read[d] = json_number_value(json_object_get(rd, dpt_near_name(d)));
        m->written[d] = json_number_value(json_object_get(wr, dpt_near_name(d)));
    }
    return 0;
}

int dpt_bench_report_write_json(const dpt_bench_report *r, const char *path)
{
    json_t *points = json_array(), *results = json_array();
    for (size_t i = 0; i < r->nlimits; i++) {
        const dpt_bench_limit *l = &r->limits[i];
        json_array_append_new(points, json_pack("{s:i, s:s, s:o, s:o}", "threads", l->threads,
                                                "pin", l->pin, "read_gbytes_per_second",
                                                num(l->read_gbytes_per_second), "peak_gflops",
                                                num(l->peak_gflops)));
    }
    for (size_t i = 0; i < r->nresults; i++)
        json_array_append_new(results, result_json(&r->results[i]));
    json_t *root =
        json_pack("{s:s, s:o, s:{s:o}, s:o}", "schema", DPT_BENCH_SCHEMA, "context",
                  context_json(&r->context), "limits", "points", points, "results", results);
    if (!root) return dpt_set_error(DPT_ENOMEM, "cannot build the JSON of %s", path);
    int rc = dpt_json_write_atomic(root, path);
    json_decref(root);
    return rc;
}

/* ---- JSON reader ---- */

typedef struct {
    const char *file;
    char where[160]; /* the object being read, e.g. "results[3]" */
} reader;

static int bad(const reader *rd, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(const reader *rd, const char *key, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *dot = rd->where[0] && key ? "." : "";
    if (!rd->where[0] && !key) return dpt_set_error(DPT_EFORMAT, "%s: %s", rd->file, what);
    return dpt_set_error(DPT_EFORMAT, "%s: %s%s%s: %s", rd->file, rd->where, dot, key ? key : "",
                         what);
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

static json_t *get(const reader *rd, json_t *obj, const char *key, json_type want, int *rc)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        *rc = bad(rd, key, "missing");
        return NULL;
    }
    if (json_typeof(v) != want) {
        static const char *const names[] = {"an object", "an array", "a string", "an integer",
                                            "a number"};
        *rc = bad(rd, key, "expected %s, got %s", want <= JSON_REAL ? names[want] : "?",
                  type_name(v));
        return NULL;
    }
    return v;
}

/* Number or null (NAN) at key; absent is an error unless optional. */
static int get_num(const reader *rd, json_t *obj, const char *key, int optional, double *out)
{
    json_t *v = json_object_get(obj, key);
    *out = NAN;
    if (!v) return optional ? 0 : bad(rd, key, "missing");
    if (json_is_null(v)) return 0;
    if (!json_is_number(v)) return bad(rd, key, "expected a number or null, got %s", type_name(v));
    *out = json_number_value(v);
    return 0;
}

/* Integer in [lo, hi]; null gives -1 when nullable. */
static int get_int(const reader *rd, json_t *obj, const char *key, long lo, long hi, int nullable,
                   long *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return bad(rd, key, "missing");
    if (json_is_null(v) && nullable) {
        *out = -1;
        return 0;
    }
    if (!json_is_integer(v))
        return bad(rd, key, "expected an integer%s, got %s", nullable ? " or null" : "",
                   type_name(v));
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return bad(rd, key, "%lld is out of range %ld..%ld", (long long)x, lo, hi);
    *out = (long)x;
    return 0;
}

static int get_str(const reader *rd, json_t *obj, const char *key, int nullable, char *dst,
                   size_t cap)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return bad(rd, key, "missing");
    if (json_is_null(v) && nullable) {
        dst[0] = '\0';
        return 0;
    }
    if (!json_is_string(v))
        return bad(rd, key, "expected a string%s, got %s", nullable ? " or null" : "",
                   type_name(v));
    if (!nullable && json_string_length(v) == 0) return bad(rd, key, "is empty");
    if (copy_str(dst, cap, json_string_value(v)))
        return bad(rd, key, "longer than %zu characters", cap - 1);
    return 0;
}

#define TRY(x)                                                                                     \
    do {                                                                                           \
        if ((rc = (x))) goto fail;                                                                 \
    } while (0)

static int read_context(reader *rd, json_t *root, dpt_bench_context *c)
{
    int rc = 0;
    json_t *o = get(rd, root, "context", JSON_OBJECT, &rc);
    if (!o) return rc;
    snprintf(rd->where, sizeof rd->where, "context");
    long v;
    TRY(get_str(rd, o, "cpu_model", 1, c->cpu_model, sizeof c->cpu_model));
    TRY(get_int(rd, o, "packages", 0, 1L << 20, 1, &v));
    c->packages = (int)v;
    TRY(get_int(rd, o, "numa_nodes", 0, 1L << 20, 1, &v));
    c->numa_nodes = (int)v;
    TRY(get_int(rd, o, "cores", 0, 1L << 20, 1, &v));
    c->cores = (int)v;
    TRY(get_int(rd, o, "pus", 0, 1L << 20, 1, &v));
    c->pus = (int)v;
    TRY(get_str(rd, o, "isa", 1, c->isa, sizeof c->isa));
    TRY(get_str(rd, o, "compiler", 1, c->compiler, sizeof c->compiler));
    TRY(get_str(rd, o, "cflags", 1, c->cflags, sizeof c->cflags));
    TRY(get_str(rd, o, "dpt_version", 1, c->dpt_version, sizeof c->dpt_version));
    TRY(get_str(rd, o, "git_revision", 1, c->git_revision, sizeof c->git_revision));
    TRY(get_str(rd, o, "openmp", 1, c->openmp, sizeof c->openmp));
    TRY(get_str(rd, o, "governor", 1, c->governor, sizeof c->governor));
    c->engine[0] = '\0'; /* added later: absent from older files */
    if (json_object_get(o, "engine")) TRY(get_str(rd, o, "engine", 1, c->engine, sizeof c->engine));
    json_t *b = json_object_get(o, "boost");
    if (!b) TRY(bad(rd, "boost", "missing"));
    if (!json_is_null(b) && !json_is_boolean(b))
        TRY(bad(rd, "boost", "expected true, false or null, got %s", type_name(b)));
    c->boost = json_is_null(b) ? -1 : json_is_true(b);
    json_t *la = get(rd, o, "load_average", JSON_ARRAY, &rc);
    if (!la) goto fail;
    if (json_array_size(la) != 3) TRY(bad(rd, "load_average", "expected 3 numbers (1, 5, 15 min)"));
    for (size_t i = 0; i < 3; i++) {
        json_t *x = json_array_get(la, i);
        if (!json_is_number(x) && !json_is_null(x))
            TRY(bad(rd, "load_average", "item %zu is %s, expected a number or null", i,
                    type_name(x)));
        c->load_average[i] = json_is_number(x) ? json_number_value(x) : NAN;
    }
    TRY(get_str(rd, o, "date", 1, c->date, sizeof c->date));
fail:
    return rc;
}

static int read_limits(reader *rd, json_t *root, dpt_bench_report *r)
{
    int rc = 0;
    json_t *o = get(rd, root, "limits", JSON_OBJECT, &rc);
    if (!o) return rc;
    snprintf(rd->where, sizeof rd->where, "limits");
    json_t *pts = get(rd, o, "points", JSON_ARRAY, &rc);
    if (!pts) return rc;
    size_t i;
    json_t *p;
    json_array_foreach(pts, i, p)
    {
        snprintf(rd->where, sizeof rd->where, "limits.points[%zu]", i);
        if (!json_is_object(p)) return bad(rd, NULL, "expected an object, got %s", type_name(p));
        long threads;
        char pin[32];
        double bw, peak;
        TRY(get_int(rd, p, "threads", 1, 1L << 20, 0, &threads));
        TRY(get_str(rd, p, "pin", 0, pin, sizeof pin));
        TRY(get_num(rd, p, "read_gbytes_per_second", 0, &bw));
        TRY(get_num(rd, p, "peak_gflops", 0, &peak));
        TRY(dpt_bench_report_add_limit(r, (int)threads, pin, bw, peak));
    }
fail:
    return rc;
}

/* "telemetry": one object per sample; the readings may be null, and
 * "disturbed" is taken as written (the rule may have been another). */
static int read_telemetry(reader *rd, json_t *o, dpt_bench_result *row)
{
    int rc = 0;
    json_t *a = get(rd, o, "telemetry", JSON_ARRAY, &rc);
    if (!a) return rc;
    if ((long)json_array_size(a) != row->reps)
        return bad(rd, "telemetry", "has %zu items but reps is %d", json_array_size(a), row->reps);
    row->telemetry = calloc((size_t)row->reps, sizeof *row->telemetry);
    if (!row->telemetry) return dpt_set_error(DPT_ENOMEM, "out of memory for the telemetry");
    size_t len = strlen(rd->where);
    for (int i = 0; i < row->reps; i++) {
        json_t *x = json_array_get(a, (size_t)i);
        dpt_telemetry *t = &row->telemetry[i];
        long v;
        dpt_telemetry_init(t);
        snprintf(rd->where + len, sizeof rd->where - len, ".telemetry[%d]", i);
        if (!json_is_object(x)) TRY(bad(rd, NULL, "expected an object, got %s", type_name(x)));
        TRY(get_num(rd, x, "seconds", 1, &t->seconds));
        if (json_object_get(x, "cpus")) TRY(get_int(rd, x, "cpus", 0, 1L << 20, 1, &v));
        t->cpus = json_object_get(x, "cpus") ? (int)v : -1;
        if (json_object_get(x, "threads")) TRY(get_int(rd, x, "threads", 0, 1L << 20, 1, &v));
        t->threads = json_object_get(x, "threads") ? (int)v : -1;
        TRY(get_num(rd, x, "steal", 1, &t->steal));
        TRY(get_num(rd, x, "others_busy", 1, &t->others_busy));
        TRY(get_num(rd, x, "run_wait", 1, &t->run_wait)); /* absent before 2026-12-06 */
        TRY(get_num(rd, x, "invol_switches", 1, &t->invol_switches));
        TRY(get_num(rd, x, "migrations", 1, &t->migrations));
        TRY(get_num(rd, x, "load_average", 1, &t->load_average));
        TRY(get_num(rd, x, "clock_ratio", 1, &t->clock_ratio));
        json_t *d = json_object_get(x, "disturbed");
        if (!json_is_boolean(d)) TRY(bad(rd, "disturbed", "expected true or false"));
        t->disturbed = json_is_true(d);
    }
    rd->where[len] = '\0';
fail:
    return rc;
}

static int read_result(reader *rd, json_t *o, dpt_bench_report *r)
{
    int rc = 0;
    char workload[64], pin[32], isa[16];
    long ranks = 1, threads, batch, reps;
    if (!json_is_object(o)) return bad(rd, NULL, "expected an object, got %s", type_name(o));
    TRY(get_str(rd, o, "workload", 0, workload, sizeof workload));
    /* written since the ranks sweep; before it every row was one process */
    if (json_object_get(o, "ranks")) TRY(get_int(rd, o, "ranks", 1, 1L << 20, 0, &ranks));
    TRY(get_int(rd, o, "threads", 1, 1L << 20, 0, &threads));
    TRY(get_str(rd, o, "pin", 0, pin, sizeof pin));
    TRY(get_str(rd, o, "isa", 0, isa, sizeof isa));
    TRY(get_int(rd, o, "batch", 0, 1L << 62, 0, &batch));
    TRY(get_int(rd, o, "reps", 1, 1L << 30, 0, &reps));
    json_t *sec = get(rd, o, "seconds", JSON_OBJECT, &rc);
    if (!sec) goto fail;
    size_t len = strlen(rd->where);
    snprintf(rd->where + len, sizeof rd->where - len, ".seconds");
    json_t *samples = get(rd, sec, "samples", JSON_ARRAY, &rc);
    if (!samples) goto fail;
    if ((long)json_array_size(samples) != reps)
        TRY(bad(rd, "samples", "has %zu values but reps is %ld", json_array_size(samples), reps));
    dpt_bench_result *row =
        dpt_bench_report_add(r, workload, (int)threads, pin, isa, batch, NULL, 0);
    if (!row) return DPT_ENOMEM;
    row->ranks = (int)ranks;
    /* written since bench/peers; before it every row was dpt's */
    if (json_object_get(o, "implementation"))
        TRY(get_str(rd, o, "implementation", 0, row->implementation, sizeof row->implementation));
    row->samples = malloc((size_t)reps * sizeof *row->samples);
    if (!row->samples) return dpt_set_error(DPT_ENOMEM, "out of memory for %ld samples", reps);
    row->reps = (int)reps;
    for (long i = 0; i < reps; i++) {
        json_t *x = json_array_get(samples, (size_t)i);
        double v = json_is_number(x) ? json_number_value(x) : NAN;
        if (!(v >= 0) || !isfinite(v))
            TRY(bad(rd, "samples", "item %ld is %s; expected seconds, a number >= 0", i,
                    json_is_number(x) ? "negative" : type_name(x)));
        row->samples[i] = v;
    }
    TRY(get_num(rd, sec, "median", 0, &row->median));
    TRY(get_num(rd, sec, "min", 0, &row->min));
    TRY(get_num(rd, sec, "max", 0, &row->max));
    TRY(get_num(rd, sec, "iqr", 0, &row->iqr));
    rd->where[len] = '\0';
    TRY(get_num(rd, o, "samples_per_second", 0, &row->samples_per_second));
    TRY(get_num(rd, o, "speedup", 0, &row->speedup));
    TRY(get_num(rd, o, "efficiency", 0, &row->efficiency));
    TRY(get_num(rd, o, "gbytes_per_second", 0, &row->gbytes_per_second));
    TRY(get_num(rd, o, "gflops", 0, &row->gflops));
    TRY(get_num(rd, o, "fraction_of_bandwidth", 0, &row->fraction_of_bandwidth));
    TRY(get_num(rd, o, "fraction_of_peak", 0, &row->fraction_of_peak));
    TRY(get_num(rd, o, "final_loss", 0, &row->final_loss));
    TRY(get_num(rd, o, "final_accuracy", 1, &row->final_accuracy));
    json_t *ph = get(rd, o, "phases", JSON_OBJECT, &rc);
    if (!ph) goto fail;
    snprintf(rd->where + len, sizeof rd->where - len, ".phases");
    TRY(get_num(rd, ph, "compute", 0, &row->phases.compute));
    TRY(get_num(rd, ph, "reduce", 0, &row->phases.reduce));
    TRY(get_num(rd, ph, "update", 0, &row->phases.update));
    TRY(get_num(rd, ph, "wait", 0, &row->phases.wait));
    TRY(get_num(rd, ph, "comm", 1, &row->phases.comm));
    rd->where[len] = '\0';
    TRY(get_num(rd, o, "imbalance", 0, &row->imbalance));
    if (read_moves(o, &row->moves)) {
        rc = bad(rd, "moves", "is not an object of the step's moves");
        goto fail;
    }
    /* added with the layer split: older files and the peers' rows have none */
    if (json_object_get(o, "split")) {
        TRY(get_str(rd, o, "split", 0, row->split, sizeof row->split));
        if (strcmp(row->split, "data") && strcmp(row->split, "layer")) {
            rc = bad(rd, "split", "is '%s'; expected data or layer", row->split);
            goto fail;
        }
    }
    /* added with the interference telemetry: older files have none */
    if (json_object_get(o, "telemetry")) TRY(read_telemetry(rd, o, row));
fail:
    return rc;
}

int dpt_bench_report_read_json(dpt_bench_report *r, const char *path)
{
    dpt_bench_report_init(r);
    json_error_t err;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        if (err.line < 0) return dpt_set_error(DPT_EIO, "%s: %s", path, err.text);
        return dpt_set_error(DPT_EFORMAT, "%s:%d:%d: not valid JSON: %s", path, err.line,
                             err.column, err.text);
    }
    reader rd = {.file = path, .where = ""};
    int rc = 0;
    if (!json_is_object(root)) {
        rc = bad(&rd, NULL, "not a dpt bench result (top level is %s, expected an object)",
                 type_name(root));
        goto fail;
    }
    json_t *schema = json_object_get(root, "schema");
    if (!json_is_string(schema)) {
        rc = bad(&rd, NULL, "not a dpt bench result (no \"schema\": \"%s\")", DPT_BENCH_SCHEMA);
        goto fail;
    }
    if (strcmp(json_string_value(schema), DPT_BENCH_SCHEMA)) {
        rc = bad(&rd, NULL, "schema is \"%s\", this dpt reads \"%s\"", json_string_value(schema),
                 DPT_BENCH_SCHEMA);
        goto fail;
    }
    TRY(read_context(&rd, root, &r->context));
    rd.where[0] = '\0';
    TRY(read_limits(&rd, root, r));
    rd.where[0] = '\0';
    json_t *results = get(&rd, root, "results", JSON_ARRAY, &rc);
    if (!results) goto fail;
    size_t i;
    json_t *o;
    json_array_foreach(results, i, o)
    {
        snprintf(rd.where, sizeof rd.where, "results[%zu]", i);
        TRY(read_result(&rd, o, r));
    }
    json_decref(root);
    return 0;
fail:
    json_decref(root);
    dpt_bench_report_free(r);
    return rc;
}

/* ---- CSV and table ---- */

static void csv_num(FILE *f, double v)
{
    fputc(',', f);
    if (isfinite(v)) fprintf(f, "%.17g", v);
}

static void csv_str(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

int dpt_bench_report_write_csv(const dpt_bench_report *r, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return dpt_set_error(DPT_ENOMEM, "out of memory for %s", path);
    fputs("workload,threads,pin,isa,batch,reps,median_s,min_s,max_s,iqr_s,samples_per_second,"
          "speedup,efficiency,gbytes_per_second,gflops,fraction_of_bandwidth,fraction_of_peak,"
          "final_loss,final_accuracy,compute_s,reduce_s,update_s,wait_s,imbalance,ranks,comm_s\n",
          f);
    for (size_t i = 0; i < r->nresults; i++) {
        const dpt_bench_result *row = &r->results[i];
        csv_str(f, row->workload);
        fprintf(f, ",%d,", row->threads);
        csv_str(f, row->pin);
        fputc(',', f);
        csv_str(f, row->isa);
        fprintf(f, ",%ld,%d", row->batch, row->reps);
        const double v[] = {row->median,
                            row->min,
                            row->max,
                            row->iqr,
                            row->samples_per_second,
                            row->speedup,
                            row->efficiency,
                            row->gbytes_per_second,
                            row->gflops,
                            row->fraction_of_bandwidth,
                            row->fraction_of_peak,
                            row->final_loss,
                            row->final_accuracy,
                            row->phases.compute,
                            row->phases.reduce,
                            row->phases.update,
                            row->phases.wait,
                            row->imbalance};
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) csv_num(f, v[k]);
        fprintf(f, ",%d", row->ranks);
        csv_num(f, row->phases.comm);
        fputc('\n', f);
    }
    if (fclose(f)) {
        free(text);
        return dpt_set_error(DPT_ENOMEM, "out of memory for %s", path);
    }
    int rc = dpt_write_file_atomic(path, text, len);
    free(text);
    return rc;
}

/* Right-aligned number in width w with the given precision, "-" if unknown. */
static void cell(FILE *f, int w, int prec, double v)
{
    if (isfinite(v))
        fprintf(f, " %*.*f", w, prec, v);
    else
        fprintf(f, " %*s", w, "-");
}

/* "  2/5 *-*--": how many repetitions ran disturbed, and which ('*'), the
 * first ten. */
static void print_disturbed(const dpt_bench_result *row, FILE *f)
{
    if (!row->telemetry) {
        fprintf(f, "  %9s", "-");
        return;
    }
    fprintf(f, "  %d/%d ", count_disturbed(row), row->reps);
    for (int i = 0; i < row->reps && i < 10; i++) fputc(row->telemetry[i].disturbed ? '*' : '-', f);
}

void dpt_bench_report_print_table(const dpt_bench_report *r, FILE *f)
{
    int ww = 8, multi = 0, peers = 0;
    for (size_t i = 0; i < r->nresults; i++) {
        int l = (int)strlen(r->results[i].workload);
        if (l > ww) ww = l;
        multi |= r->results[i].ranks > 1;
        peers |= strcmp(r->results[i].implementation, "dpt") != 0;
    }
    fprintf(f, "%-*s", ww, "workload");
    if (peers) fprintf(f, " %-8s", "impl");
    if (multi) fprintf(f, " %5s", "ranks");
    fprintf(f, " %7s %-8s %-6s %6s %4s %10s %6s", "threads", "pin", "isa", "batch", "reps",
            "ms/epoch", "IQR%");
    if (multi) fprintf(f, " %8s", "comm ms");
    fprintf(f, " %12s %7s %5s %7s %4s %8s %5s %5s %5s %5s %5s %5s %10s", "samples/s", "speedup",
            "eff%", "GB/s", "%BW", "GFLOP/s", "%peak", "comp%", "red%", "upd%", "wait%", "imbal",
            "final loss");
    int tele = 0; /* the column of disturbed repetitions, where measured */
    for (size_t i = 0; i < r->nresults; i++) tele |= r->results[i].telemetry != NULL;
    fputs(tele ? "  disturbed\n" : "\n", f);
    for (size_t i = 0; i < r->nresults; i++) {
        const dpt_bench_result *row = &r->results[i];
        char batch[24];
        if (row->batch > 0)
            snprintf(batch, sizeof batch, "%ld", row->batch);
        else
            snprintf(batch, sizeof batch, "full");
        fprintf(f, "%-*s", ww, row->workload);
        if (peers) fprintf(f, " %-8s", row->implementation);
        if (multi) fprintf(f, " %5d", row->ranks);
        fprintf(f, " %7d %-8s %-6s %6s %4d", row->threads, row->pin, row->isa, batch, row->reps);
        cell(f, 10, 3, row->median * 1e3);
        cell(f, 6, 1, 100 * ratio(row->iqr, row->median));
        if (multi) cell(f, 8, 3, row->phases.comm * 1e3);
        cell(f, 12, 0, row->samples_per_second);
        cell(f, 7, 2, row->speedup);
        cell(f, 5, 0, 100 * row->efficiency);
        cell(f, 7, 1, row->gbytes_per_second);
        cell(f, 4, 0, 100 * row->fraction_of_bandwidth);
        cell(f, 8, 1, row->gflops);
        cell(f, 5, 0, 100 * row->fraction_of_peak);
        /* where an epoch's time goes (thread means, medians over repetitions) */
        cell(f, 5, 0, 100 * ratio(row->phases.compute, row->median));
        cell(f, 5, 0, 100 * ratio(row->phases.reduce, row->median));
        cell(f, 5, 0, 100 * ratio(row->phases.update, row->median));
        cell(f, 5, 0, 100 * ratio(row->phases.wait, row->median));
        cell(f, 5, 2, row->imbalance);
        if (isfinite(row->final_loss))
            fprintf(f, " %10.6g", row->final_loss);
        else
            fprintf(f, " %10s", "-");
        if (tele) print_disturbed(row, f);
        fputc('\n', f);
    }
}
