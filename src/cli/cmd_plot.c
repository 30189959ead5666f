/* dpt plot: charts of a `dpt bench --json` result, drawn by gnuplot. One
 * chart per workload and pinning policy, four panels: speedup with the ideal
 * line, parallel efficiency, samples/s, and achieved GB/s or GFLOP/s against
 * the machine ceilings measured in the same run. The gnuplot script, with
 * its data inline, stays in DIR beside the PNG and SVG, so a chart can be
 * restyled and redrawn with `cd DIR && gnuplot NAME.gp`.
 * A result with several rank counts (dpt bench --ranks under mpirun) gets
 * a line per rank count, against workers = ranks x threads. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/bench_target.h"
#include "cli/plot.h"
#include "dpt/error.h"
#include "dpt/report.h"

static const char *const CMD = "plot";

static void usage(FILE *f)
{
    fputs("usage: dpt plot RESULTS.json --out DIR\n"
          "       dpt plot TRAIN.json... --out DIR [--log]\n"
          "Draw a `dpt bench --json` result with gnuplot: DIR/WORKLOAD-PINS.png and .svg\n"
          "(speedup with the ideal line, efficiency, samples/s, GB/s or GFLOP/s against\n"
          "the measured ceilings), and DIR/WORKLOAD-PINS.gp, the gnuplot script with its\n"
          "data that draws them (cd DIR && gnuplot WORKLOAD-PINS.gp). One line per pin\n"
          "policy (and batch); error bars span the IQR of the epoch times (median -+\n"
          "IQR/2); a result the JSON marks as loaded or disturbed has hollow markers and\n"
          "says so under the title.\n\n"
          "With rows of several rank counts (dpt bench under mpirun), each rank count is a\n"
          "line of its own and the x axis is workers, ranks x threads.\n\n"
          "Given `dpt train --json` files, the training curves instead: DIR/training.png\n"
          "and .svg, the loss of every run against the epoch and against training time,\n"
          "one line per run labelled with its optimizer, rate, batch and momentum.\n\n"
          "Writes the files and prints their names.\n\n"
          "  --out DIR   where the charts go, created if missing (required)\n"
          "  --log       training curves: a logarithmic loss axis (default off: linear)\n"
          "  --help      this text\n\n"
          "Needs gnuplot (Debian: apt-get install gnuplot-nox); DPT_GNUPLOT names another\n"
          "program to run instead.\n",
          f);
}

static const char *gnuplot_program(void)
{
    const char *g = getenv("DPT_GNUPLOT");
    return g && *g ? g : "gnuplot";
}

/* Run gnuplot with args in directory dir (NULL: here), output to /dev/null
 * when quiet. Returns its exit status, 127 when it could not be started. */
static int run_gnuplot(const char *dir, const char *arg, int quiet)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return 127;
    if (pid == 0) {
        if (dir && chdir(dir)) _exit(126);
        if (quiet) {
            FILE *null = freopen("/dev/null", "w", stdout);
            (void)null;
        }
        execlp(gnuplot_program(), gnuplot_program(), arg, (char *)NULL);
        _exit(127);
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR) return 127;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128;
}

int cli_run_gnuplot(const char *dir, const char *script)
{
    return run_gnuplot(dir, script, 0);
}

int cli_mkdir_p(const char *path)
{
    char buf[4096];
    if (strlen(path) >= sizeof buf) return -1;
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) && errno != EEXIST) return -1;
    struct stat st;
    return stat(buf, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

/* A file-name-safe copy of s. */
static void safe_name(char *dst, size_t cap, const char *s)
{
    size_t n = 0;
    for (; *s && n + 1 < cap; s++)
        dst[n++] = (strchr("._-", *s) || (*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
                    (*s >= 'A' && *s <= 'Z'))
                       ? *s
                       : '_';
    dst[n] = '\0';
}

/* s as a single-quoted gnuplot string. */
void cli_gp_str(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        if (*s != '\n') fputc(*s, f);
    }
    fputc('\'', f);
}

/* s as a double-quoted gnuplot string: its newlines break the line. */
static void gp_dqstr(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '\n') {
            fputs("\\n", f);
            continue;
        }
        if (*s == '"' || *s == '\\' || *s == '$' || *s == '`') fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void gp_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, " %.9g", v);
    else
        fputs(" -", f);
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* One chart: the rows of one workload, a line per pin policy and batch
 * (and isa, and rank count), so that pinnings compare on one figure. */
typedef struct {
    const dpt_bench_report *r;
    const char *workload, *pin; /* pin: the first row's (for the ceilings) */
    char pins[160];             /* the pins of the chart, "-"-joined, for its name */
    char pin_words[192];        /* the same, ", "-joined, for its title */
    int multi_pin;
    /* the run was loaded or disturbed (dpt_bench_report_warnings): hollow
     * markers and this note in the title */
    char loaded[DPT_WARNING_LEN];
    int *rows; /* indices into r->results */
    int nrows;
    int series[64]; /* first row of each series */
    int nseries;
    int multi_isa;
    int multi_ranks; /* rows of more than one rank: x is ranks x threads */
} chart;

static int same_series(const dpt_bench_result *a, const dpt_bench_result *b)
{
    return a->batch == b->batch && a->ranks == b->ranks && !strcmp(a->isa, b->isa) &&
           !strcmp(a->pin, b->pin);
}

/* The x of a row: its threads, times its ranks (a row of one rank: threads). */
static int workers(const dpt_bench_result *row)
{
    return row->ranks * row->threads;
}

/* What the fourth panel shows. */
enum { PANEL_GBS, PANEL_GFLOPS, PANEL_TIME };

/* The double at offset in a result row (offsetof one of its fields). */
static double field(const dpt_bench_result *row, size_t offset)
{
    return *(const double *)((const char *)row + offset);
}

static int any_finite(const chart *c, size_t offset)
{
    for (int i = 0; i < c->nrows; i++)
        if (isfinite(field(&c->r->results[c->rows[i]], offset))) return 1;
    return 0;
}

static double max_field(const chart *c, size_t offset)
{
    double m = NAN;
    for (int i = 0; i < c->nrows; i++) {
        double v = field(&c->r->results[c->rows[i]], offset);
        if (isfinite(v) && !(v <= m)) m = v;
    }
    return m;
}

#define FIELD(name) offsetof(dpt_bench_result, name)

static int pick_panel(const chart *c)
{
    int bw = any_finite(c, FIELD(gbytes_per_second)), fl = any_finite(c, FIELD(gflops));
    if (bw && fl) {
        /* Both known: show the ceiling the workload is closer to. */
        double fb = max_field(c, FIELD(fraction_of_bandwidth));
        double fp = max_field(c, FIELD(fraction_of_peak));
        return isfinite(fp) && !(fb >= fp) ? PANEL_GFLOPS : PANEL_GBS;
    }
    return bw ? PANEL_GBS : fl ? PANEL_GFLOPS : PANEL_TIME;
}

/* Ceiling at each thread count for the chart's pin (any pin when none is
 * for this one), as the last data block. Returns how many points. */
static int write_ceilings(FILE *f, const chart *c)
{
    int n = 0, own = 0;
    for (size_t i = 0; i < c->r->nlimits; i++) own |= !strcmp(c->r->limits[i].pin, c->pin);
    fputs("# ceilings: threads read_GB/s peak_GFLOP/s\n", f);
    int *t = malloc((c->r->nlimits + 1) * sizeof *t);
    if (!t) return 0;
    for (size_t i = 0; i < c->r->nlimits; i++)
        if (!own || !strcmp(c->r->limits[i].pin, c->pin)) t[n++] = (int)i;
    /* sort by threads for a clean line */
    for (int a = 1; a < n; a++)
        for (int b = a; b > 0 && c->r->limits[t[b]].threads < c->r->limits[t[b - 1]].threads; b--) {
            int x = t[b];
            t[b] = t[b - 1];
            t[b - 1] = x;
        }
    for (int i = 0; i < n; i++) {
        const dpt_bench_limit *l = &c->r->limits[t[i]];
        fprintf(f, "%d", l->threads);
        gp_num(f, l->read_gbytes_per_second);
        gp_num(f, l->peak_gflops);
        fputc('\n', f);
    }
    free(t);
    return n;
}

static void series_title(FILE *f, const chart *c, int s)
{
    const dpt_bench_result *row = &c->r->results[c->series[s]];
    char t[128];
    int len = c->multi_pin ? snprintf(t, sizeof t, "pin %s, ", row->pin) : 0;
    if (len < 0 || (size_t)len >= sizeof t) len = 0;
    if (row->batch > 0)
        snprintf(t + len, sizeof t - (size_t)len, "batch %ld", row->batch);
    else
        snprintf(t + len, sizeof t - (size_t)len, "full batch");
    if (c->multi_isa) {
        size_t l = strlen(t);
        snprintf(t + l, sizeof t - l, ", %s", row->isa);
    }
    if (c->multi_ranks) {
        size_t l = strlen(t);
        snprintf(t + l, sizeof t - l, ", %d rank%s", row->ranks, row->ranks == 1 ? "" : "s");
    }
    cli_gp_str(f, t);
}

/* Whether series s has a finite value of the field at column col of the data. */
static int series_has(const chart *c, int s, size_t offset)
{
    for (int i = 0; i < c->nrows; i++) {
        const dpt_bench_result *row = &c->r->results[c->rows[i]];
        if (same_series(row, &c->r->results[c->series[s]]) && isfinite(field(row, offset)))
            return 1;
    }
    return 0;
}

/* Column layout of each series block in the data file: the figures, then
 * the error bars. The IQR is of the seconds per epoch; a rate (speedup,
 * efficiency, samples/s, GB/s, GFLOP/s) at median +- IQR/2 seconds is the
 * rate times COL_RLO or COL_RHI; ms per epoch has its own bounds. */
enum {
    COL_THREADS = 1,
    COL_SPEEDUP,
    COL_EFF,
    COL_SPS,
    COL_GBS,
    COL_GFLOPS,
    COL_MS,
    COL_SPREAD,
    COL_RLO,
    COL_RHI,
    COL_MSLO,
    COL_MSHI
};

/* "plot" with one line per series that has data in column col (field at
 * offset), with the IQR as error bars (none on the spread itself); then
 * extra, a further plot element (ideal line, ceiling) or NULL. */
static void plot_series(FILE *f, const chart *c, size_t offset, int col, const char *extra)
{
    int first = 1;
    fputs("plot", f);
    for (int s = 0; s < c->nseries; s++) {
        if (!series_has(c, s, offset)) continue;
        if (col == COL_SPREAD)
            fprintf(f, "%s '$data' index %d using 1:%d with linespoints ls %d title ",
                    first ? "" : ",", s, col, s + 1);
        else if (col == COL_MS)
            fprintf(f, "%s '$data' index %d using 1:%d:%d:%d with yerrorlines ls %d title ",
                    first ? "" : ",", s, col, COL_MSLO, COL_MSHI, s + 1);
        else
            fprintf(f,
                    "%s '$data' index %d using 1:%d:($%d*$%d):($%d*$%d) with yerrorlines ls %d "
                    "title ",
                    first ? "" : ",", s, col, col, COL_RLO, col, COL_RHI, s + 1);
        series_title(f, c, s);
        first = 0;
    }
    if (extra) fprintf(f, ", %s", extra);
    fputc('\n', f);
}

static void write_body(FILE *f, const chart *c, int panel, int max_threads, int nceil)
{
    const dpt_bench_context *ctx = &c->r->context;
    char title[1024], cores[32] = "";
    if (ctx->cores > 0) snprintf(cores, sizeof cores, ", %d cores", ctx->cores);
    snprintf(title, sizeof title, "%s, pin %s  |  %s%s, %s kernels  |  dpt %s %s  %s%s%s%s",
             c->workload, c->pin_words, ctx->cpu_model[0] ? ctx->cpu_model : "unknown CPU", cores,
             ctx->isa[0] ? ctx->isa : c->r->results[c->rows[0]].isa,
             ctx->dpt_version[0] ? ctx->dpt_version : "?", ctx->git_revision, ctx->date,
             c->loaded[0] ? "\nLOADED OR DISTURBED RUN (hollow markers): " : "", c->loaded,
             c->loaded[0] ? "; the times may be inflated" : "");
    fputs("set multiplot layout 2,2 title ", f);
    gp_dqstr(f, title);
    fputs(" font ',13'\n", f);
    fprintf(f, "set xrange [0.5:%g]\n", max_threads + 0.5);

    const char *one = c->multi_ranks ? "1 rank x 1 thread" : "1 thread";
    fprintf(f,
            "set title 'Speedup over %s'\nset ylabel 'speedup (x)'\n"
            "set yrange [0:*]\nset key top left\n",
            one);
    if (any_finite(c, FIELD(speedup)))
        plot_series(f, c, FIELD(speedup), COL_SPEEDUP,
                    "x with lines ls 100 title 'ideal (linear)'");
    else
        fprintf(f,
                "set label 1 'no %s run in this result' at graph 0.65,0.25 center\n"
                "plot x with lines ls 100 title 'ideal (linear)'\nunset label 1\n",
                one);

    fputs("set title 'Parallel efficiency'\nset ylabel 'efficiency (% of ideal)'\n"
          "set yrange [0:*]\nset key bottom left\n",
          f);
    if (any_finite(c, FIELD(efficiency)))
        plot_series(f, c, FIELD(efficiency), COL_EFF, "100 with lines ls 100 title 'ideal (100%)'");
    else
        fprintf(f,
                "set label 1 'no %s run in this result' at graph 0.65,0.25 center\n"
                "plot 100 with lines ls 100 title 'ideal (100%%)'\nunset label 1\n",
                one);

    fputs("set title 'Throughput'\nset ylabel 'samples/s'\nset format y '%.1s%c'\n"
          "set yrange [0:*]\nset key top left\n",
          f);
    if (any_finite(c, FIELD(samples_per_second))) {
        plot_series(f, c, FIELD(samples_per_second), COL_SPS, NULL);
    } else {
        fputs("set title 'Spread of the repetitions'\nset ylabel 'IQR (% of the median)'\n"
              "set format y '%g'\n",
              f);
        plot_series(f, c, FIELD(iqr), COL_SPREAD, NULL);
    }
    fputs("set format y '%g'\n", f);

    char ceil[160] = "";
    int ceil_col = panel == PANEL_GBS ? 2 : 3;
    int has_ceiling = 0;
    for (size_t i = 0; i < c->r->nlimits; i++)
        has_ceiling |= isfinite(panel == PANEL_GBS ? c->r->limits[i].read_gbytes_per_second
                                                   : c->r->limits[i].peak_gflops);
    if (panel != PANEL_TIME && nceil > 0 && has_ceiling)
        snprintf(ceil, sizeof ceil,
                 "'$data' index %d using 1:%d with linespoints ls 101 title '%s (ceiling%s)'",
                 c->nseries, ceil_col,
                 panel == PANEL_GBS ? "measured read bandwidth" : "measured FMA peak",
                 c->multi_ranks ? " of one process" : "");
    fputs("set yrange [0:*]\nset key top left\n", f);
    switch (panel) {
    case PANEL_GBS:
        fputs("set title 'Memory bandwidth achieved'\nset ylabel 'GB/s'\n", f);
        plot_series(f, c, FIELD(gbytes_per_second), COL_GBS, ceil[0] ? ceil : NULL);
        break;
    case PANEL_GFLOPS:
        fputs("set title 'Compute achieved (fp32)'\nset ylabel 'GFLOP/s'\n", f);
        plot_series(f, c, FIELD(gflops), COL_GFLOPS, ceil[0] ? ceil : NULL);
        break;
    default:
        fputs("set title 'Time per epoch'\nset ylabel 'ms per epoch'\n", f);
        plot_series(f, c, FIELD(median), COL_MS, NULL);
    }
    fputs("unset multiplot\n", f);
}

static int write_chart(const chart *c, const char *dir, char *name, size_t cap)
{
    char w[64], p[160];
    safe_name(w, sizeof w, c->workload);
    safe_name(p, sizeof p, c->pins);
    snprintf(name, cap, "%s-%s", w, p);

    int max_threads = 1; /* workers, with several rank counts */
    for (int i = 0; i < c->nrows; i++)
        if (workers(&c->r->results[c->rows[i]]) > max_threads)
            max_threads = workers(&c->r->results[c->rows[i]]);
    int panel = pick_panel(c);

    char path[4096];
    snprintf(path, sizeof path, "%s/%s.gp", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return cli_fail(CMD, "cannot write %s: %s", path, strerror(errno));
    fprintf(f, "# dpt plot: %s, pin %s. Redraw with: gnuplot %s.gp\n", c->workload, c->pins, name);
    /* The data lives in the script (a datablock) so the script stands alone. */
    fputs("$data << EOD\n", f);
    for (int s = 0; s < c->nseries; s++) {
        fprintf(f,
                "# %s speedup efficiency_%% samples/s GB/s GFLOP/s ms/epoch IQR_%% "
                "rate_low/rate rate_high/rate ms_low ms_high (median -+ IQR/2)\n",
                c->multi_ranks ? "workers" : "threads");
        int t[1024], n = 0;
        for (int i = 0; i < c->nrows && n < 1024; i++)
            if (same_series(&c->r->results[c->rows[i]], &c->r->results[c->series[s]]))
                t[n++] = c->rows[i];
        /* rows of a series in thread order */
        for (int a = 1; a < n; a++)
            for (int b = a;
                 b > 0 && workers(&c->r->results[t[b]]) < workers(&c->r->results[t[b - 1]]); b--) {
                int x = t[b];
                t[b] = t[b - 1];
                t[b - 1] = x;
            }
        for (int i = 0; i < n; i++) {
            const dpt_bench_result *row = &c->r->results[t[i]];
            fprintf(f, "%d", workers(row));
            gp_num(f, row->speedup);
            gp_num(f, 100 * row->efficiency);
            gp_num(f, row->samples_per_second);
            gp_num(f, row->gbytes_per_second);
            gp_num(f, row->gflops);
            gp_num(f, 1e3 * row->median);
            gp_num(f, 100 * row->iqr / row->median);
            const double lo = row->median - row->iqr / 2, hi = row->median + row->iqr / 2;
            gp_num(f, row->median / hi);
            /* an IQR near or above the median (a disturbed run): the bar is
             * capped at 3x, which the hollow markers and the title explain */
            gp_num(f, lo > row->median / 3 ? row->median / lo : 3);
            gp_num(f, 1e3 * (lo > 0 ? lo : 0));
            gp_num(f, 1e3 * hi);
            fputc('\n', f);
        }
        fputs("\n\n", f);
    }
    int nceil = write_ceilings(f, c);
    fputs("EOD\n\n", f);

    fprintf(f,
            "set datafile missing '-'\nset termoption noenhanced\n"
            "set grid lc rgb '#dddddd'\nset xlabel '%s'\nset mxtics 1\n"
            "set border 3\nset tics nomirror\nset key opaque box lc rgb '#bbbbbb'\n"
            "set offsets 0, 0, graph 0.15, 0\n", /* headroom above the highest point */
            c->multi_ranks ? "workers (ranks x threads)" : "threads");
    /* thread (worker) counts as x tics when there are few of them */
    int tl[1024], nt = 0;
    for (int i = 0; i < c->nrows && nt < 1024; i++) tl[nt++] = workers(&c->r->results[c->rows[i]]);
    qsort(tl, (size_t)nt, sizeof *tl, cmp_int);
    int distinct = 0;
    for (int i = 0; i < nt; i++) distinct += i == 0 || tl[i] != tl[i - 1];
    if (distinct <= 12) {
        fputs("set xtics (", f);
        for (int i = 0, k = 0; i < nt; i++)
            if (i == 0 || tl[i] != tl[i - 1]) fprintf(f, "%s%d", k++ ? ", " : "", tl[i]);
        fputs(")\n", f);
    }
    static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                         "#ff7f0e", "#17becf", "#8c564b", "#e377c2"};
    /* filled markers; hollow ones for a loaded or disturbed run */
    static const int points[] = {7, 5, 9, 11, 13, 15, 7, 5};
    static const int hollow[] = {6, 4, 8, 10, 12, 14, 6, 4};
    for (int s = 0; s < c->nseries; s++)
        fprintf(f, "set style line %d lc rgb '%s' lw 2 pt %d ps 1.3\n", s + 1, colors[s % 8],
                (c->loaded[0] ? hollow : points)[s % 8]);
    fputs("set style line 100 lc rgb '#555555' lw 1.5 dt 2\n"
          "set style line 101 lc rgb '#000000' lw 2 dt 3 pt 2 ps 1.2\n",
          f);
    fprintf(f,
            "set terminal pngcairo size 1400,1000 font 'sans,11' noenhanced\n"
            "set output '%s.png'\n",
            name);
    write_body(f, c, panel, max_threads, nceil);
    fprintf(f,
            "set terminal svg size 1400,1000 dynamic font 'sans,11' noenhanced\n"
            "set output '%s.svg'\n",
            name);
    write_body(f, c, panel, max_threads, nceil);
    fputs("unset output\n", f);
    if (fclose(f)) return cli_fail(CMD, "cannot write %s: %s", path, strerror(errno));

    char script[300];
    snprintf(script, sizeof script, "%s.gp", name);
    int st = run_gnuplot(dir, script, 0);
    if (st) return cli_fail(CMD, "gnuplot failed on %s (exit %d)", path, st);
    return 0;
}

static int plot(const char *in, const char *dir)
{
    if (run_gnuplot(NULL, "--version", 1) != 0)
        return cli_fail(CMD,
                        "cannot run '%s': gnuplot is needed to draw charts (Debian: apt-get "
                        "install gnuplot-nox; or set DPT_GNUPLOT to its path)",
                        gnuplot_program());
    dpt_bench_report r;
    if (dpt_bench_report_read_json(&r, in)) return cli_fail(CMD, "%s", dpt_last_error());
    int status = DPT_EXIT_OK;
    int *rows = NULL, *done = NULL;
    if (r.nresults == 0) {
        status = cli_fail(CMD, "%s has no results to plot", in);
        goto out;
    }
    if (cli_mkdir_p(dir)) {
        status = cli_fail(CMD, "cannot create directory %s: %s", dir, strerror(errno));
        goto out;
    }
    rows = malloc(r.nresults * sizeof *rows);
    done = calloc(r.nresults, sizeof *done);
    if (!rows || !done) {
        status = cli_fail(CMD, "out of memory");
        goto out;
    }
    /* the machine's state (load, clock) marks the figures; a wide spread of
     * one configuration's repetitions is its error bar's to show */
    char warn[32][DPT_WARNING_LEN];
    const char *machine = cli_machine_warning(&r, warn, 32);
    for (size_t i = 0; i < r.nresults; i++) {
        if (done[i]) continue;
        chart c = {
            .r = &r, .workload = r.results[i].workload, .pin = r.results[i].pin, .rows = rows};
        if (machine) /* its first clause: the title has one line for it */
            snprintf(c.loaded, sizeof c.loaded, "%.*s", (int)strcspn(machine, ";"), machine);
        for (size_t j = i; j < r.nresults; j++) {
            const dpt_bench_result *x = &r.results[j];
            if (done[j] || strcmp(x->workload, c.workload)) continue;
            done[j] = 1;
            /* the pins in order of appearance: the chart's name and title */
            char key[40];
            snprintf(key, sizeof key, "-%s-", x->pin);
            char have[164];
            snprintf(have, sizeof have, "-%s-", c.pins);
            if (!strstr(have, key)) {
                size_t l = strlen(c.pins);
                snprintf(c.pins + l, sizeof c.pins - l, "%s%s", l ? "-" : "", x->pin);
                l = strlen(c.pin_words);
                snprintf(c.pin_words + l, sizeof c.pin_words - l, "%s%s", l ? ", " : "", x->pin);
                c.multi_pin = l > 0;
            }
            rows[c.nrows++] = (int)j;
            int s = 0;
            while (s < c.nseries && !same_series(x, &r.results[c.series[s]])) s++;
            if (s == c.nseries && c.nseries < 64) c.series[c.nseries++] = (int)j;
            if (strcmp(x->isa, r.results[i].isa)) c.multi_isa = 1;
            if (x->ranks != 1) c.multi_ranks = 1;
        }
        char name[256];
        if ((status = write_chart(&c, dir, name, sizeof name))) goto out;
        printf("%s/%s.png\n%s/%s.svg\n", dir, name, dir, name);
    }
out:
    free(rows);
    free(done);
    dpt_bench_report_free(&r);
    return status;
}

/* Whether path is a `dpt train --json` file (else a bench result). */
static int is_train_json(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char head[4096];
    size_t n = fread(head, 1, sizeof head - 1, f);
    fclose(f);
    head[n] = '\0';
    return strstr(head, "\"dpt-train/1\"") != NULL;
}

int dpt_cmd_plot(int argc, char **argv)
{
    static const struct option opts[] = {{"out", required_argument, NULL, 'o'},
                                         {"log", no_argument, NULL, 'l'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *out = NULL;
    int c, logscale = 0;
    optind = 1;
    while ((c = cli_getopt(CMD, argc, argv, opts)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'l':
            logscale = 1;
            break;
        case 'h':
            usage(stdout);
            return DPT_EXIT_OK;
        default:
            return DPT_EXIT_USAGE;
        }
    }
    if (argc - optind < 1)
        return cli_usage_error(CMD, "needs RESULTS.json or TRAIN.json files (see dpt plot --help)");
    if (!out) return cli_usage_error(CMD, "--out DIR is required (where the charts go)");
    if (is_train_json(argv[optind])) {
        if (run_gnuplot(NULL, "--version", 1) != 0)
            return cli_fail(CMD,
                            "cannot run '%s': gnuplot is needed to draw charts (Debian: apt-get "
                            "install gnuplot-nox; or set DPT_GNUPLOT to its path)",
                            gnuplot_program());
        return cli_plot_training(argv + optind, argc - optind, out, logscale);
    }
    if (argc - optind != 1)
        return cli_usage_error(CMD, "a bench result is drawn alone: one RESULTS.json (see dpt "
                                    "plot --help)");
    if (logscale) return cli_usage_error(CMD, "--log applies to training curves (train JSON)");
    return plot(argv[optind], out);
}
