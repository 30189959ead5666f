/* The bench report: derived fields, the JSON round trip, the reader's
 * errors, CSV, and the context probe against a fake /proc and /sys. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dpt/error.h"
#include "dpt/report.h"

static char tmpdir[64];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/dpt-report-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tree(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

static void cleanup(void)
{
    remove_tree(tmpdir);
}

TestSuite(report, .init = make_tmpdir, .fini = cleanup, .timeout = 10);

static void path_in(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", tmpdir, name);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* A small report: linreg at 1, 2, 4 threads (compact), 2 threads scatter,
 * and a logreg row with accuracy. */
static void sample_report(dpt_bench_report *r)
{
    dpt_bench_report_init(r);
    dpt_bench_context *c = &r->context;
    strcpy(c->cpu_model, "Test CPU \"quoted\", with comma");
    c->packages = 1;
    c->numa_nodes = 1;
    c->cores = 4;
    c->pus = 8;
    strcpy(c->isa, "avx2");
    strcpy(c->compiler, "gcc 12.2.0");
    strcpy(c->cflags, "-O2 -march=x86-64");
    strcpy(c->dpt_version, "0.1.0");
    strcpy(c->git_revision, "abc1234-dirty");
    strcpy(c->openmp, "libgomp 4.5");
    strcpy(c->governor, "performance");
    c->boost = 1;
    c->load_average[0] = 0.25;
    c->load_average[1] = 0.5;
    c->load_average[2] = 0.125;
    strcpy(c->date, "2025-01-31T12:00:00Z");
    strcpy(c->engine, "reduce=scatter balance=adaptive shuffle=epoch");
    cr_assert_eq(dpt_bench_report_add_limit(r, 1, "compact", 27.5, 117), 0);
    cr_assert_eq(dpt_bench_report_add_limit(r, 2, "compact", 29.75, 232), 0);
    cr_assert_eq(dpt_bench_report_add_limit(r, 4, "scatter", 30, 464), 0);

    const double s1[] = {0.040, 0.041, 0.039, 0.0405, 0.0395};
    const double s2[] = {0.021, 0.0212, 0.0209, 0.0215, 0.0208};
    const double s4[] = {0.012, 0.0121, 0.0119};
    const double s2s[] = {0.022, 0.0221};
    dpt_bench_result *row;
    row = dpt_bench_report_add(r, "linreg", 1, "compact", "avx2", 0, s1, 5);
    row->work_samples = 1e6;
    row->work_bytes = 256e6;
    row->work_flops = 6.0 * 64 * 1e6;
    row->final_loss = 0.946503;
    row->phases = (dpt_bench_phases){0.036, 0.001, 0.0005, 0.0025, 0};
    row->imbalance = 0.01;
    row = dpt_bench_report_add(r, "linreg", 2, "compact", "avx2", 0, s2, 5);
    row->work_samples = 1e6;
    row->work_bytes = 256e6;
    row = dpt_bench_report_add(r, "linreg", 4, "compact", "avx2", 0, s4, 3);
    row->work_bytes = 256e6;
    row = dpt_bench_report_add(r, "linreg", 2, "scatter", "avx2", 0, s2s, 2);
    row = dpt_bench_report_add(r, "logreg", 1, "compact", "avx2", 1024, s1, 5);
    row->final_loss = 0.0482072;
    row->final_accuracy = 0.97893;
    cr_assert_eq(dpt_bench_report_derive(r), 0, "%s", dpt_last_error());
}

static void expect_num(double a, double b, const char *what)
{
    cr_assert((isnan(a) && isnan(b)) || a == b, "%s: %.17g vs %.17g", what, a, b);
}

static void expect_equal(const dpt_bench_report *a, const dpt_bench_report *b)
{
    const dpt_bench_context *x = &a->context, *y = &b->context;
    cr_assert_str_eq(x->cpu_model, y->cpu_model);
    cr_assert_eq(x->packages, y->packages);
    cr_assert_eq(x->numa_nodes, y->numa_nodes);
    cr_assert_eq(x->cores, y->cores);
    cr_assert_eq(x->pus, y->pus);
    cr_assert_str_eq(x->isa, y->isa);
    cr_assert_str_eq(x->compiler, y->compiler);
    cr_assert_str_eq(x->cflags, y->cflags);
    cr_assert_str_eq(x->dpt_version, y->dpt_version);
    cr_assert_str_eq(x->git_revision, y->git_revision);
    cr_assert_str_eq(x->openmp, y->openmp);
    cr_assert_str_eq(x->governor, y->governor);
    cr_assert_eq(x->boost, y->boost);
    for (int i = 0; i < 3; i++) expect_num(x->load_average[i], y->load_average[i], "load");
    cr_assert_str_eq(x->date, y->date);
    cr_assert_str_eq(x->engine, y->engine);
    cr_assert_eq(a->nlimits, b->nlimits);
    for (size_t i = 0; i < a->nlimits; i++) {
        cr_assert_eq(a->limits[i].threads, b->limits[i].threads);
        cr_assert_str_eq(a->limits[i].pin, b->limits[i].pin);
        expect_num(a->limits[i].read_gbytes_per_second, b->limits[i].read_gbytes_per_second, "bw");
        expect_num(a->limits[i].peak_gflops, b->limits[i].peak_gflops, "peak");
    }
    cr_assert_eq(a->nresults, b->nresults);
    for (size_t i = 0; i < a->nresults; i++) {
        const dpt_bench_result *p = &a->results[i], *q = &b->results[i];
        cr_assert_str_eq(p->workload, q->workload);
        cr_assert_eq(p->ranks, q->ranks);
        cr_assert_eq(p->threads, q->threads);
        cr_assert_str_eq(p->pin, q->pin);
        cr_assert_str_eq(p->isa, q->isa);
        cr_assert_eq(p->batch, q->batch);
        cr_assert_eq(p->reps, q->reps);
        for (int k = 0; k < p->reps; k++) expect_num(p->samples[k], q->samples[k], "sample");
        const double pv[] = {p->median,
                             p->min,
                             p->max,
                             p->iqr,
                             p->samples_per_second,
                             p->speedup,
                             p->efficiency,
                             p->gbytes_per_second,
                             p->gflops,
                             p->fraction_of_bandwidth,
                             p->fraction_of_peak,
                             p->final_loss,
                             p->final_accuracy,
                             p->phases.compute,
                             p->phases.reduce,
                             p->phases.update,
                             p->phases.wait,
                             p->phases.comm,
                             p->imbalance};
        const double qv[] = {q->median,
                             q->min,
                             q->max,
                             q->iqr,
                             q->samples_per_second,
                             q->speedup,
                             q->efficiency,
                             q->gbytes_per_second,
                             q->gflops,
                             q->fraction_of_bandwidth,
                             q->fraction_of_peak,
                             q->final_loss,
                             q->final_accuracy,
                             q->phases.compute,
                             q->phases.reduce,
                             q->phases.update,
                             q->phases.wait,
                             q->phases.comm,
                             q->imbalance};
        for (size_t k = 0; k < sizeof pv / sizeof pv[0]; k++) expect_num(pv[k], qv[k], "field");
    }
}

Test(report, derive)
{
    dpt_bench_report r;
    sample_report(&r);
    const dpt_bench_result *one = &r.results[0], *two = &r.results[1], *four = &r.results[2];
    cr_assert_eq(one->median, 0.040);
    cr_assert_eq(one->min, 0.039);
    cr_assert_eq(one->max, 0.041);
    cr_assert(fabs(one->iqr - 0.001) < 1e-15); /* q1 0.0395, q3 0.0405 */
    cr_assert(fabs(one->samples_per_second - 25e6) < 1e-3);
    cr_assert(fabs(one->gbytes_per_second - 6.4) < 1e-12);
    cr_assert(fabs(one->gflops - 9.6) < 1e-12);
    cr_assert(fabs(one->fraction_of_bandwidth - 6.4 / 27.5) < 1e-12);
    cr_assert(fabs(one->fraction_of_peak - 9.6 / 117) < 1e-12);
    cr_assert_eq(one->speedup, 1);
    cr_assert_eq(one->efficiency, 1);
    cr_assert_eq(two->median, 0.021);
    cr_assert(fabs(two->speedup - 0.040 / 0.021) < 1e-12);
    cr_assert(fabs(two->efficiency - 0.040 / 0.021 / 2) < 1e-12);
    cr_assert(isnan(two->gflops));
    /* 4 threads: the only limit at 4 threads is for scatter; used as fallback */
    cr_assert(fabs(four->fraction_of_bandwidth - 256e6 / 0.012 / 1e9 / 30) < 1e-12);
    cr_assert(isnan(four->samples_per_second));
    /* scatter has no 1-thread row: speedup unknown */
    cr_assert(isnan(r.results[3].speedup));
    cr_assert(isnan(r.results[3].efficiency));
    /* logreg at batch 1024 is its own 1-thread row */
    cr_assert_eq(r.results[4].speedup, 1);
    dpt_bench_report_free(&r);
}

Test(report, derive_needs_samples)
{
    dpt_bench_report r;
    dpt_bench_report_init(&r);
    cr_assert_not_null(dpt_bench_report_add(&r, "linreg", 2, "compact", "avx2", 0, NULL, 0));
    cr_assert_eq(dpt_bench_report_derive(&r), DPT_EINVAL);
    cr_assert(strstr(dpt_last_error(), "linreg"), "%s", dpt_last_error());
    dpt_bench_report_free(&r);
}

Test(report, json_round_trip)
{
    dpt_bench_report r, back;
    sample_report(&r);
    char path[128];
    path_in(path, sizeof path, "bench.json");
    cr_assert_eq(dpt_bench_report_write_json(&r, path), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_bench_report_read_json(&back, path), 0, "%s", dpt_last_error());
    expect_equal(&r, &back);
    dpt_bench_report_free(&back);

    /* unknown context fields survive as unknown */
    dpt_bench_report_free(&r);
    dpt_bench_report_init(&r);
    cr_assert_not_null(dpt_bench_report_add(&r, "x", 1, "none", "scalar", 7, (double[]){1}, 1));
    cr_assert_eq(dpt_bench_report_write_json(&r, path), 0);
    cr_assert_eq(dpt_bench_report_read_json(&back, path), 0, "%s", dpt_last_error());
    expect_equal(&r, &back);
    cr_assert_eq(back.context.cores, -1);
    cr_assert_eq(back.context.boost, -1);
    dpt_bench_report_free(&back);
    dpt_bench_report_free(&r);

    /* the write left nothing else behind (the temporary file was renamed) */
    DIR *d = opendir(tmpdir);
    int files = 0;
    for (struct dirent *e; (e = readdir(d));) files += e->d_name[0] != '.';
    closedir(d);
    cr_assert_eq(files, 1);
}

Test(report, json_reals_read_back_exactly)
{
    /* written in their shortest form, yet every bit comes back */
    const double awkward[] = {
        0.1 + 0.2, 1e-300, 4.9406564584124654e-324, 1e300, 2.0 / 3, 123456789.123456789, 3.91, 0};
    const size_t n = sizeof awkward / sizeof awkward[0];
    dpt_bench_report r, back;
    dpt_bench_report_init(&r);
    cr_assert_not_null(dpt_bench_report_add(&r, "x", 1, "none", "scalar", 0, awkward, (int)n));
    char path[128];
    path_in(path, sizeof path, "reals.json");
    cr_assert_eq(dpt_bench_report_write_json(&r, path), 0);
    cr_assert_eq(dpt_bench_report_read_json(&back, path), 0, "%s", dpt_last_error());
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(back.results[0].samples[i], awkward[i], "%.17g", awkward[i]);
    FILE *f = fopen(path, "r");
    char text[8192];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    cr_assert(strstr(text, "\"samples\": [0.30000000000000004, 1e-300, 4.94065645841247e-324, "
                           "1e+300, 0.6666666666666666, 123456789.12345679, 3.91, 0.0]"),
              "%s", text);
    dpt_bench_report_free(&r);
    dpt_bench_report_free(&back);
}

Test(report, json_layout)
{
    dpt_bench_report r;
    sample_report(&r);
    char path[128];
    path_in(path, sizeof path, "bench.json");
    cr_assert_eq(dpt_bench_report_write_json(&r, path), 0);
    FILE *f = fopen(path, "r");
    char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    cr_assert(strstr(text, "\"schema\": \"dpt-bench/1\""));
    static const char *const keys[] = {"\"workload\"",
                                       "\"threads\"",
                                       "\"pin\"",
                                       "\"isa\"",
                                       "\"batch\"",
                                       "\"reps\"",
                                       "\"seconds\"",
                                       "\"median\"",
                                       "\"iqr\"",
                                       "\"samples\"",
                                       "\"samples_per_second\"",
                                       "\"speedup\"",
                                       "\"efficiency\"",
                                       "\"gbytes_per_second\"",
                                       "\"gflops\"",
                                       "\"fraction_of_bandwidth\"",
                                       "\"fraction_of_peak\"",
                                       "\"final_loss\"",
                                       "\"final_accuracy\"",
                                       "\"phases\"",
                                       "\"compute\"",
                                       "\"reduce\"",
                                       "\"update\"",
                                       "\"wait\"",
                                       "\"imbalance\"",
                                       "\"cpu_model\"",
                                       "\"load_average\"",
                                       "\"governor\"",
                                       "\"points\"",
                                       "\"read_gbytes_per_second\"",
                                       "\"peak_gflops\""};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_assert(strstr(text, keys[i]), "missing %s", keys[i]);
    /* unknown numbers are null, accuracy only where it applies (one row) */
    cr_assert(strstr(text, "\"gflops\": null"));
    const char *first = strstr(text, "\"final_accuracy\"");
    cr_assert(first && !strstr(first + 1, "\"final_accuracy\""));
    dpt_bench_report_free(&r);
}

/* Write text to a file and expect the reader to fail naming file and field. */
static void expect_read_error(const char *text, const char *needle)
{
    char path[128];
    path_in(path, sizeof path, "bad.json");
    write_text(path, text);
    dpt_bench_report r;
    cr_assert_lt(dpt_bench_report_read_json(&r, path), 0, "accepted: %s", text);
    cr_assert(strstr(dpt_last_error(), path), "no file name in: %s", dpt_last_error());
    cr_assert(strstr(dpt_last_error(), needle), "'%s' not in: %s", needle, dpt_last_error());
    cr_assert_eq(r.nresults, 0);
}

#define CTX                                                                                        \
    "\"context\": {\"cpu_model\": null, \"packages\": null, \"numa_nodes\": null, \"cores\": "     \
    "null, \"pus\": null, \"isa\": null, \"compiler\": null, \"cflags\": null, \"dpt_version\": "  \
    "null, \"git_revision\": null, \"openmp\": null, \"governor\": null, \"boost\": null, "        \
    "\"load_average\": [null, null, null], \"date\": null}, \"limits\": {\"points\": []}"
#define ROW(seconds)                                                                               \
    "{\"workload\": \"linreg\", \"threads\": 2, \"pin\": \"compact\", \"isa\": \"avx2\", "         \
    "\"batch\": 0, \"reps\": 2, \"seconds\": " seconds ", \"samples_per_second\": null, "          \
    "\"speedup\": null, \"efficiency\": null, \"gbytes_per_second\": null, \"gflops\": null, "     \
    "\"fraction_of_bandwidth\": null, \"fraction_of_peak\": null, \"final_loss\": null, "          \
    "\"phases\": {\"compute\": null, \"reduce\": null, \"update\": null, \"wait\": null}, "        \
    "\"imbalance\": null}"

Test(report, reader_accepts_minimal)
{
    char path[128];
    path_in(path, sizeof path, "ok.json");
    write_text(path, "{\"schema\": \"dpt-bench/1\", " CTX ", \"results\": [" ROW(
                         "{\"median\": 1.5, \"min\": 1, \"max\": 2, \"iqr\": 0.5, "
                         "\"samples\": [1, 2]}") "]}");
    dpt_bench_report r;
    cr_assert_eq(dpt_bench_report_read_json(&r, path), 0, "%s", dpt_last_error());
    cr_assert_eq(r.nresults, 1);
    cr_assert_eq(r.results[0].samples[1], 2);
    cr_assert(isnan(r.results[0].final_accuracy));
    cr_assert_str_eq(r.context.engine, "", "written before the engine settings were recorded");
    /* written before the ranks sweep: one rank, no communication time */
    cr_assert_eq(r.results[0].ranks, 1);
    cr_assert(isnan(r.results[0].phases.comm));
    dpt_bench_report_free(&r);
}

Test(report, reader_errors)
{
    char missing[160];
    path_in(missing, sizeof missing, "nope.json");
    dpt_bench_report r;
    cr_assert_eq(dpt_bench_report_read_json(&r, missing), DPT_EIO);
    cr_assert(strstr(dpt_last_error(), "nope.json"), "%s", dpt_last_error());

    expect_read_error("{\"schema\": \"dpt-bench/1\",", "not valid JSON");
    expect_read_error("[1, 2]", "not a dpt bench result");
    expect_read_error("{\"results\": []}", "no \"schema\"");
    expect_read_error("{\"schema\": \"dpt-bench/2\"}", "schema is \"dpt-bench/2\"");
    expect_read_error("{\"schema\": \"dpt-bench/1\", \"results\": []}", "context: missing");
    expect_read_error("{\"schema\": \"dpt-bench/1\", " CTX "}", "results: missing");
    expect_read_error("{\"schema\": \"dpt-bench/1\", " CTX ", \"results\": [" ROW(
                          "{\"median\": 1, \"min\": 1, \"max\": 2, \"iqr\": 0.5, "
                          "\"samples\": [1, 2, 3]}") "]}",
                      "results[0].seconds.samples: has 3 values but reps is 2");
    expect_read_error("{\"schema\": \"dpt-bench/1\", " CTX ", \"results\": [" ROW(
                          "{\"median\": 1, \"min\": 1, \"max\": 2, \"iqr\": 0.5, "
                          "\"samples\": [1, -2]}") "]}",
                      "results[0].seconds.samples: item 1 is negative");
    expect_read_error("{\"schema\": \"dpt-bench/1\", " CTX ", \"results\": [" ROW(
                          "{\"median\": \"fast\", \"min\": 1, \"max\": 2, \"iqr\": 0.5, "
                          "\"samples\": [1, 2]}") "]}",
                      "results[0].seconds.median: expected a number or null, got a string");
    expect_read_error("{\"schema\": \"dpt-bench/1\", " CTX ", \"results\": [" ROW(
                          "{\"median\": 1, \"min\": 1, \"max\": 2, \"iqr\": 0.5}") "]}",
                      "results[0].seconds.samples: missing");
    expect_read_error("{\"schema\": \"dpt-bench/1\", " CTX ", \"results\": [{\"workload\": "
                      "\"linreg\", \"threads\": 0}]}",
                      "results[0].threads: 0 is out of range");
    expect_read_error("{\"schema\": \"dpt-bench/1\", " CTX ", \"results\": [{\"workload\": "
                      "\"linreg\", \"ranks\": 0, \"threads\": 1}]}",
                      "results[0].ranks: 0 is out of range");
    expect_read_error("{\"schema\": \"dpt-bench/1\", " CTX ", \"results\": [{\"workload\": "
                      "\"linreg\", \"ranks\": \"2\", \"threads\": 1}]}",
                      "results[0].ranks: expected an integer, got a string");
}

Test(report, csv)
{
    dpt_bench_report r;
    sample_report(&r);
    char path[128];
    path_in(path, sizeof path, "bench.csv");
    cr_assert_eq(dpt_bench_report_write_csv(&r, path), 0, "%s", dpt_last_error());
    FILE *f = fopen(path, "r");
    char line[1024];
    cr_assert_not_null(fgets(line, sizeof line, f));
    static const char head[] = "workload,threads,pin,isa,batch,reps,median_s,";
    cr_assert_eq(strncmp(line, head, sizeof head - 1), 0, "%s", line);
    int commas = 0;
    for (char *p = line; *p; p++) commas += *p == ',';
    cr_assert_eq(commas, 25);
    cr_assert(strstr(line, ",imbalance,ranks,comm_s\n"), "%s", line);
    cr_assert_not_null(fgets(line, sizeof line, f));
    cr_assert_eq(strncmp(line, "linreg,1,compact,avx2,0,5,0.04", 30), 0, "%s", line);
    /* the 2-thread row has no GFLOP/s: an empty cell */
    cr_assert_not_null(fgets(line, sizeof line, f));
    cr_assert(strstr(line, ",,"), "%s", line);
    int rows = 2;
    while (fgets(line, sizeof line, f)) rows++;
    fclose(f);
    cr_assert_eq(rows, 5);
    dpt_bench_report_free(&r);
}

Test(report, table)
{
    dpt_bench_report r;
    sample_report(&r);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    dpt_bench_report_print_table(&r, f);
    fclose(f);
    cr_assert(strstr(text, "ms/epoch"));
    cr_assert(strstr(text, "comp%") && strstr(text, "wait%") && strstr(text, "imbal"), "%s", text);
    cr_assert(strstr(text, "40.000"), "%s", text);
    cr_assert(strstr(text, "1.90"), "%s", text); /* speedup at 2 threads */
    cr_assert(strstr(text, " 1024 "), "%s", text);
    free(text);
    dpt_bench_report_free(&r);
}

static void mkdirs(const char *root, const char *rel)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/%s'", root, rel);
    cr_assert_eq(system(cmd), 0);
}

Test(report, probe_fake_machine)
{
    mkdirs(tmpdir, "proc");
    mkdirs(tmpdir, "sys/devices/system/cpu/cpu0/cpufreq");
    mkdirs(tmpdir, "sys/devices/system/cpu/intel_pstate");
    char p[256];
    path_in(p, sizeof p, "proc/cpuinfo");
    write_text(p, "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Fake Xeon(R) 9999  "
                  "\nflags\t\t: fpu avx2\n\nprocessor\t: 1\nmodel name\t: Fake Xeon(R) 9999\n");
    path_in(p, sizeof p, "proc/loadavg");
    write_text(p, "2.50 1.25 0.75 3/456 7890\n");
    path_in(p, sizeof p, "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor");
    write_text(p, "powersave\n");
    path_in(p, sizeof p, "sys/devices/system/cpu/intel_pstate/no_turbo");
    write_text(p, "1\n");

    dpt_bench_report r;
    dpt_bench_report_init(&r);
    r.context.cores = 8; /* the caller's fields are left alone */
    dpt_bench_context_probe(&r.context, tmpdir);
    cr_assert_str_eq(r.context.cpu_model, "Fake Xeon(R) 9999");
    cr_assert_str_eq(r.context.governor, "powersave");
    cr_assert_eq(r.context.boost, 0);
    cr_assert_eq(r.context.load_average[0], 2.5);
    cr_assert_eq(r.context.load_average[2], 0.75);
    cr_assert_eq(strlen(r.context.date), 20, "%s", r.context.date);
    cr_assert_eq(r.context.date[19], 'Z');
    cr_assert_eq(r.context.cores, 8);

    /* loaded machine and powersave governor are warned about */
    char w[8][DPT_WARNING_LEN];
    size_t n = dpt_bench_report_warnings(&r, w, 8);
    cr_assert_eq(n, 2);
    cr_assert(strstr(w[0], "load average 2.50"), "%s", w[0]);
    cr_assert(strstr(w[1], "'powersave'"), "%s", w[1]);
    dpt_bench_report_free(&r);

    /* an empty tree: everything stays unknown */
    char empty[160];
    path_in(empty, sizeof empty, "empty");
    mkdirs(tmpdir, "empty");
    dpt_bench_report_init(&r);
    dpt_bench_context_probe(&r.context, empty);
    cr_assert_str_eq(r.context.cpu_model, "");
    cr_assert_eq(r.context.boost, -1);
    cr_assert(isnan(r.context.load_average[0]));
    cr_assert_eq(dpt_bench_report_warnings(&r, w, 8), 0);
}

Test(report, spread_warning)
{
    dpt_bench_report r;
    dpt_bench_report_init(&r);
    cr_assert_not_null(dpt_bench_report_add(&r, "mlp-wide", 4, "scatter", "avx2", 512,
                                            (double[]){1, 1.2, 1.5, 0.9}, 4));
    cr_assert_eq(dpt_bench_report_derive(&r), 0);
    char w[2][DPT_WARNING_LEN];
    cr_assert_eq(dpt_bench_report_warnings(&r, w, 2), 1);
    cr_assert(strstr(w[0], "mlp-wide, 4 threads, pin scatter, batch 512"), "%s", w[0]);
    cr_assert(strstr(w[0], "spread wide"), "%s", w[0]);
    dpt_bench_report_free(&r);
}

Test(report, above_ceiling_warning)
{
    dpt_bench_report r;
    dpt_bench_report_init(&r);
    dpt_bench_result *a =
        dpt_bench_report_add(&r, "linreg", 2, "compact", "avx512", 0, (double[]){1, 1, 1}, 3);
    cr_assert_not_null(a);
    a->work_bytes = 30e9; /* 30 GB/s */
    dpt_bench_result *b =
        dpt_bench_report_add(&r, "linreg", 1, "compact", "avx512", 0, (double[]){1, 1, 1}, 3);
    cr_assert_not_null(b);
    b->work_bytes = 20e9;
    b->work_flops = 10e9;
    cr_assert_eq(dpt_bench_report_add_limit(&r, 2, "compact", 25, 400), 0);
    cr_assert_eq(dpt_bench_report_add_limit(&r, 1, "compact", 25, 200), 0);
    cr_assert_eq(dpt_bench_report_derive(&r), 0);
    char w[4][DPT_WARNING_LEN];
    /* 2 threads: 120% of 25 GB/s; 1 thread: 80% and 5%, no warning */
    cr_assert_eq(dpt_bench_report_warnings(&r, w, 4), 1);
    cr_assert(strstr(w[0], "linreg, 2 threads, pin compact, full batch: 120% of this run's read "
                           "bandwidth"),
              "%s", w[0]);
    dpt_bench_report_free(&r);
}

Test(report, write_failure_names_file)
{
    dpt_bench_report r;
    sample_report(&r);
    cr_assert_eq(dpt_bench_report_write_json(&r, "/nonexistent-dir/x.json"), DPT_EIO);
    cr_assert(strstr(dpt_last_error(), "/nonexistent-dir/x.json"), "%s", dpt_last_error());
    dpt_bench_report_free(&r);
}

/* linreg at ranks x threads 1x1, 1x2, 2x1, 2x2 and 4x1, full batch, with
 * one-process limits at 1 and 2 threads. */
static void ranks_report(dpt_bench_report *r)
{
    dpt_bench_report_init(r);
    cr_assert_eq(dpt_bench_report_add_limit(r, 1, "none", 20, 100), 0);
    cr_assert_eq(dpt_bench_report_add_limit(r, 2, "none", 30, 200), 0);
    static const struct {
        int ranks, threads;
        double s[3], comm;
    } rows[] = {{1, 1, {0.040, 0.041, 0.039}, 0},
                {1, 2, {0.021, 0.022, 0.020}, 0},
                {2, 1, {0.022, 0.023, 0.021}, 0.002},
                {2, 2, {0.0125, 0.012, 0.013}, 0.0015},
                {4, 1, {0.016, 0.015, 0.017}, 0.004}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        dpt_bench_result *row =
            dpt_bench_report_add(r, "linreg", rows[i].threads, "compact", "avx2", 0, rows[i].s, 3);
        cr_assert_not_null(row);
        cr_assert_eq(row->ranks, 1); /* the default */
        row->ranks = rows[i].ranks;
        row->work_bytes = 256e6;
        row->phases = (dpt_bench_phases){0.01, 0.001, 0.001, 0.002, rows[i].comm};
        row->final_loss = 0.946503 + 1e-7 * (double)i;
    }
    cr_assert_eq(dpt_bench_report_derive(r), 0, "%s", dpt_last_error());
}

Test(report, derive_across_ranks_and_threads)
{
    dpt_bench_report r;
    ranks_report(&r);
    const double one = 0.040;
    for (size_t i = 0; i < r.nresults; i++) {
        const dpt_bench_result *row = &r.results[i];
        double speedup = one / row->median;
        cr_assert(fabs(row->speedup - speedup) < 1e-12, "row %zu: %g vs %g", i, row->speedup,
                  speedup);
        cr_assert(fabs(row->efficiency - speedup / (row->ranks * row->threads)) < 1e-12,
                  "row %zu: efficiency %g", i, row->efficiency);
        /* throughput of all ranks together */
        cr_assert(fabs(row->gbytes_per_second - 256e6 / row->median / 1e9) < 1e-9);
        /* one process's limits: a ceiling for rows of one rank only */
        if (row->ranks == 1)
            cr_assert(isfinite(row->fraction_of_bandwidth), "row %zu", i);
        else
            cr_assert(isnan(row->fraction_of_bandwidth) && isnan(row->fraction_of_peak),
                      "row %zu: %g", i, row->fraction_of_bandwidth);
    }
    cr_assert_eq(r.results[0].speedup, 1);
    cr_assert(fabs(r.results[3].speedup - 0.040 / 0.0125) < 1e-12); /* 2 x 2 */
    cr_assert(fabs(r.results[3].efficiency - 0.040 / 0.0125 / 4) < 1e-12);
    cr_assert(fabs(r.results[4].efficiency - 0.040 / 0.016 / 4) < 1e-12); /* 4 x 1 */

    /* without a row of 1 rank and 1 thread, a sweep at one rank count is
     * measured against its own 1-thread row, and efficiency counts the
     * workers added over it (threads here) */
    dpt_bench_report_free(&r);
    dpt_bench_report_init(&r);
    dpt_bench_result *row =
        dpt_bench_report_add(&r, "linreg", 1, "compact", "avx2", 0, (double[]){0.02}, 1);
    row->ranks = 2;
    row = dpt_bench_report_add(&r, "linreg", 2, "compact", "avx2", 0, (double[]){0.0125}, 1);
    row->ranks = 2;
    row = dpt_bench_report_add(&r, "linreg", 2, "compact", "avx2", 0, (double[]){0.01}, 1);
    row->ranks = 3; /* no 1-thread row at 3 ranks: no baseline */
    cr_assert_eq(dpt_bench_report_derive(&r), 0);
    cr_assert(fabs(r.results[0].speedup - 1) < 1e-12 && fabs(r.results[0].efficiency - 1) < 1e-12);
    cr_assert(fabs(r.results[1].speedup - 1.6) < 1e-12, "%g", r.results[1].speedup);
    cr_assert(fabs(r.results[1].efficiency - 0.8) < 1e-12, "%g", r.results[1].efficiency);
    cr_assert(isnan(r.results[2].speedup) && isnan(r.results[2].efficiency));
    dpt_bench_report_free(&r);
}

Test(report, ranks_round_trip)
{
    dpt_bench_report r, back;
    ranks_report(&r);
    char path[128];
    path_in(path, sizeof path, "ranks.json");
    cr_assert_eq(dpt_bench_report_write_json(&r, path), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_bench_report_read_json(&back, path), 0, "%s", dpt_last_error());
    expect_equal(&r, &back);
    cr_assert_eq(back.results[3].ranks, 2);
    cr_assert_eq(back.results[4].ranks, 4);
    cr_assert_eq(back.results[4].phases.comm, 0.004);
    FILE *f = fopen(path, "r");
    char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    cr_assert(strstr(text, "\"ranks\": 4,"), "%s", text);
    cr_assert(strstr(text, "\"comm\": 0.004"), "%s", text);
    dpt_bench_report_free(&back);

    /* CSV: ranks and comm_s, the last two cells of each row */
    path_in(path, sizeof path, "ranks.csv");
    cr_assert_eq(dpt_bench_report_write_csv(&r, path), 0, "%s", dpt_last_error());
    f = fopen(path, "r");
    char line[1024];
    cr_assert_not_null(fgets(line, sizeof line, f));
    cr_assert(strstr(line, ",ranks,comm_s\n"), "%s", line);
    static const char *const tails[] = {",1,0\n", ",1,0\n", ",2,0.002\n", ",2,0.0015\n",
                                        ",4,0.0040000000000000001\n"};
    for (size_t i = 0; i < 5; i++) {
        cr_assert_not_null(fgets(line, sizeof line, f));
        size_t len = strlen(line), tl = strlen(tails[i]);
        cr_assert(len > tl && !strcmp(line + len - tl, tails[i]), "row %zu: %s", i, line);
    }
    cr_assert_null(fgets(line, sizeof line, f));
    fclose(f);
    dpt_bench_report_free(&r);
}

/* The table of r, as text in buf. */
static void table_text(const dpt_bench_report *r, char *buf, size_t cap)
{
    FILE *f = fmemopen(buf, cap, "w");
    cr_assert_not_null(f);
    dpt_bench_report_print_table(r, f);
    fclose(f);
}

Test(report, table_shows_ranks_when_there_are_several)
{
    dpt_bench_report r;
    sample_report(&r);
    char text[8192];
    table_text(&r, text, sizeof text);
    cr_assert(!strstr(text, "ranks") && !strstr(text, "comm ms"), "%s", text);
    dpt_bench_report_free(&r);

    ranks_report(&r);
    table_text(&r, text, sizeof text);
    cr_assert(strstr(text, "workload ranks threads"), "%s", text);
    cr_assert(strstr(text, "comm ms"), "%s", text);
    /* 2 ranks x 2 threads: 12.5 ms, 1.5 ms of it communication, speedup 3.20, 80% */
    char *row = strstr(text, "\nlinreg       2       2");
    cr_assert(row, "%s", text);
    char *end = strchr(row + 1, '\n');
    if (end) *end = '\0';
    cr_assert(strstr(row, "12.500") && strstr(row, "1.500") && strstr(row, "3.20") &&
                  strstr(row, " 80 "),
              "%s", row);
    dpt_bench_report_free(&r);
}

/* bench/peers' rows: the implementation survives the round trip, older files
 * read as dpt's, and a peer's speedup is against the peer's own 1-thread row. */
Test(report, implementation_field)
{
    dpt_bench_report r, back;
    dpt_bench_report_init(&r);
    const double d1[] = {0.040}, d2[] = {0.020}, p1[] = {0.100}, p2[] = {0.080};
    cr_assert_not_null(dpt_bench_report_add(&r, "linreg", 1, "compact", "avx2", 0, d1, 1));
    cr_assert_not_null(dpt_bench_report_add(&r, "linreg", 2, "compact", "avx2", 0, d2, 1));
    dpt_bench_result *row = dpt_bench_report_add(&r, "linreg", 1, "compact", "avx2", 0, p1, 1);
    strcpy(row->implementation, "pytorch");
    row = dpt_bench_report_add(&r, "linreg", 2, "compact", "avx2", 0, p2, 1);
    strcpy(row->implementation, "pytorch");
    cr_assert_eq(dpt_bench_report_derive(&r), 0, "%s", dpt_last_error());
    cr_assert_str_eq(r.results[0].implementation, "dpt");
    cr_assert(fabs(r.results[1].speedup - 2) < 1e-12, "%g", r.results[1].speedup);
    cr_assert(fabs(r.results[3].speedup - 1.25) < 1e-12, "%g", r.results[3].speedup);

    char path[128];
    path_in(path, sizeof path, "peers.json");
    cr_assert_eq(dpt_bench_report_write_json(&r, path), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_bench_report_read_json(&back, path), 0, "%s", dpt_last_error());
    cr_assert_eq(back.nresults, 4);
    cr_assert_str_eq(back.results[1].implementation, "dpt");
    cr_assert_str_eq(back.results[2].implementation, "pytorch");
    dpt_bench_report_free(&back);

    char text[8192];
    table_text(&r, text, sizeof text);
    cr_assert(strstr(text, "workload impl     threads"), "%s", text);
    cr_assert(strstr(text, "\nlinreg   pytorch        2"), "%s", text);
    dpt_bench_report_free(&r);

    path_in(path, sizeof path, "old.json");
    write_text(path, "{\"schema\": \"dpt-bench/1\", " CTX ", \"results\": [" ROW(
                         "{\"median\": 1.5, \"min\": 1, \"max\": 2, \"iqr\": 0.5, "
                         "\"samples\": [1, 2]}") "]}");
    cr_assert_eq(dpt_bench_report_read_json(&back, path), 0, "%s", dpt_last_error());
    cr_assert_str_eq(back.results[0].implementation, "dpt");
    dpt_bench_report_free(&back);
}

/* A row's split: written when known, read back, absent in older files and
 * the peers' rows, anything but data or layer refused naming the key. */
Test(report, split_field)
{
    dpt_bench_report r, back;
    dpt_bench_report_init(&r);
    const double s1[] = {0.040}, s2[] = {0.020};
    dpt_bench_result *row = dpt_bench_report_add(&r, "fmnist-mlp", 1, "compact", "avx2", 0, s1, 1);
    strcpy(row->split, "data");
    row = dpt_bench_report_add(&r, "fmnist-mlp", 2, "compact", "avx2", 0, s2, 1);
    strcpy(row->split, "layer");
    cr_assert_eq(dpt_bench_report_derive(&r), 0, "%s", dpt_last_error());
    char path[128];
    path_in(path, sizeof path, "split.json");
    cr_assert_eq(dpt_bench_report_write_json(&r, path), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_bench_report_read_json(&back, path), 0, "%s", dpt_last_error());
    cr_assert_str_eq(back.results[0].split, "data");
    cr_assert_str_eq(back.results[1].split, "layer");
    dpt_bench_report_free(&back);
    dpt_bench_report_free(&r);

    path_in(path, sizeof path, "old-split.json");
    write_text(path, "{\"schema\": \"dpt-bench/1\", " CTX ", \"results\": [" ROW(
                         "{\"median\": 1.5, \"min\": 1, \"max\": 2, \"iqr\": 0.5, "
                         "\"samples\": [1, 2]}") "]}");
    cr_assert_eq(dpt_bench_report_read_json(&back, path), 0, "%s", dpt_last_error());
    cr_assert_str_eq(back.results[0].split, "");
    dpt_bench_report_free(&back);

    /* the same row with a split that is neither */
    char text[4096];
    snprintf(text, sizeof text, "%s",
             "{\"schema\": \"dpt-bench/1\", " CTX
             ", \"results\": [" ROW("{\"median\": 1.5, \"min\": 1, \"max\": 2, \"iqr\": 0.5, "
                                    "\"samples\": [1, 2]}") "]}");
    char *end = strstr(text, "\"imbalance\": null}");
    cr_assert_not_null(end);
    snprintf(end, sizeof text - (size_t)(end - text), "%s",
             "\"imbalance\": null, \"split\": \"rows\"}]}");
    path_in(path, sizeof path, "bad-split.json");
    write_text(path, text);
    cr_assert_neq(dpt_bench_report_read_json(&back, path), 0);
    cr_assert(strstr(dpt_last_error(), "split") && strstr(dpt_last_error(), "rows"), "%s",
              dpt_last_error());
}
