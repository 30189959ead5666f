/* dpt compare and dpt plot end to end: exit codes and messages on crafted
 * result files in tests/stats/data. DPT_EXE and DATA_DIR come from Meson. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char out_dir[64];
static char output[1 << 16]; /* stdout and stderr of the last run */

static void setup(void)
{
    strcpy(out_dir, "/tmp/dpt-cli-XXXXXX");
    cr_assert_not_null(mkdtemp(out_dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", out_dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 30);

/* Run dpt with the NULL-terminated arguments (data files by bare name are
 * taken from DATA_DIR), with env "NAME=VALUE" or NULL. Returns the exit
 * status; output holds what it printed. */
static int run(const char *env, ...)
{
    const char *argv[40] = {DPT_EXE};
    static char paths[40][512];
    int argc = 1;
    va_list ap;
    va_start(ap, env);
    for (const char *a; (a = va_arg(ap, const char *)); argc++) {
        cr_assert_lt(argc, 39, "too many arguments for run()");
        if (strstr(a, ".json") && !strchr(a, '/')) {
            snprintf(paths[argc], sizeof paths[argc], "%s/%s", DATA_DIR, a);
            argv[argc] = paths[argc];
        } else {
            argv[argc] = a;
        }
    }
    va_end(ap);
    argv[argc] = NULL;
    char log[128];
    snprintf(log, sizeof log, "%s/output.txt", out_dir);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        if (!freopen(log, "w", stdout) || dup2(fileno(stdout), 2) < 0) _exit(99);
        if (env) putenv((char *)env);
        execv(argv[0], (char *const *)argv);
        _exit(98);
    }
    int ws;
    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    FILE *f = fopen(log, "r");
    size_t n = f ? fread(output, 1, sizeof output - 1, f) : 0;
    if (f) fclose(f);
    output[n] = '\0';
    cr_assert(WIFEXITED(ws), "dpt did not exit normally");
    return WEXITSTATUS(ws);
}

static void expect_output(const char *needle)
{
    cr_assert(strstr(output, needle), "'%s' not in:\n%s", needle, output);
}

/* The verdict column of the row for `threads` threads in the first table. */
static void expect_verdict(int threads, const char *verdict)
{
    char line[160];
    snprintf(line, sizeof line, "%-8s %7d compact", "linreg", threads);
    const char *row = strstr(output, line);
    cr_assert_not_null(row, "no row for %d threads in:\n%s", threads, output);
    const char *end = strchr(row, '\n');
    size_t len = (size_t)(end - row), vl = strlen(verdict);
    cr_assert(len > vl && !strncmp(end - vl, verdict, vl), "%d threads: want %s in '%.*s'", threads,
              verdict, (int)len, row);
}

Test(cli, compare_identical)
{
    cr_assert_eq(run(NULL, "compare", "base.json", "identical.json", NULL), 0, "%s", output);
    for (int t = 1; t <= 8; t *= 2) expect_verdict(t, "same");
    expect_output("geometric mean of new/base times over 4 configurations: 1.0000");
    expect_output("OK: no configuration");
}

Test(cli, compare_regressed)
{
    cr_assert_eq(run(NULL, "compare", "base.json", "regressed.json", NULL), 1, "%s", output);
    expect_verdict(4, "slower");
    expect_verdict(1, "same");
    expect_output("+20.0%");
    expect_output("FAIL: 1 configuration is significantly slower by more than 5%");
    /* a 25% threshold lets a 20% slowdown through */
    cr_assert_eq(run(NULL, "compare", "base.json", "regressed.json", "--threshold", "25%",
                     "--scaling", "warn", NULL),
                 0, "%s", output);
    expect_verdict(4, "same");
}

Test(cli, compare_improved)
{
    cr_assert_eq(run(NULL, "compare", "base.json", "improved.json", NULL), 0, "%s", output);
    for (int t = 1; t <= 8; t *= 2) expect_verdict(t, "faster");
    expect_output("0.9000 (-10.0%)");
}

Test(cli, compare_noisy_is_not_a_regression)
{
    cr_assert_eq(run(NULL, "compare", "base.json", "noisy.json", NULL), 0, "%s", output);
    expect_verdict(8, "noise");
    expect_output("+15.0%");
    expect_output("repetitions spread wide");
}

Test(cli, compare_scaling_regression)
{
    /* 1 thread got 20% faster, 8 threads did not: speedup at 8 fell 20% */
    cr_assert_eq(run(NULL, "compare", "base.json", "scaling.json", NULL), 1, "%s", output);
    expect_verdict(1, "faster");
    expect_verdict(8, "same");
    expect_output("speedup vs 1 thread:");
    expect_output("-20.0%");
    expect_output("worse");
    expect_output("FAIL: 2 configurations lost more than 5% of their speedup");
    cr_assert_eq(run(NULL, "compare", "base.json", "scaling.json", "--scaling", "warn", NULL), 0,
                 "%s", output);
    expect_output("warning: 2 configurations lost");
}

Test(cli, compare_incompatible)
{
    cr_assert_eq(run(NULL, "compare", "base.json", "old_schema.json", NULL), 2, "%s", output);
    expect_output("schema is \"dpt-bench/0\"");
    expect_output("old_schema.json");
    cr_assert_eq(run(NULL, "compare", "base.json", "disjoint.json", NULL), 2, "%s", output);
    expect_output("no configuration (workload, ranks, threads, pin, batch) is in both");
    cr_assert_eq(run(NULL, "compare", "bad_sample.json", "base.json", NULL), 2, "%s", output);
    expect_output("results[1].seconds.samples: item 2 is a string");
    cr_assert_eq(run(NULL, "compare", "base.json", "/nonexistent/new.json", NULL), 2);
    expect_output("/nonexistent/new.json");
}

Test(cli, compare_too_few_repetitions_cannot_decide)
{
    /* 30% slower everywhere, but 3 and 3 repetitions cannot reach p < 0.05 */
    cr_assert_eq(run(NULL, "compare", "base_3reps.json", "slower_3reps.json", NULL), 3, "%s",
                 output);
    expect_verdict(4, "noise");
    expect_output("too few repetitions");
    expect_output("cannot decide");
}

Test(cli, compare_warns_other_machine)
{
    cr_assert_eq(run(NULL, "compare", "base.json", "other_cpu.json", NULL), 0, "%s", output);
    expect_output("warning: other CPU: base 'AMD EPYC 9R14 96-Core Processor', new 'Intel(R) "
                  "Xeon(R) Platinum 8480+'");
    expect_output("warning: other ISA: base 'avx2', new 'scalar'");
}

Test(cli, compare_warns_other_engine_settings)
{
    cr_assert_eq(run(NULL, "compare", "base.json", "other_engine.json", NULL), 0, "%s", output);
    expect_output("warning: other engine settings: base 'reduce=scatter balance=static "
                  "shuffle=none batching=global leaves=0 comm-overlap=auto', new "
                  "'reduce=scatter balance=adaptive");
    /* a file without the settings (older dpt) is no reason to warn */
    cr_assert_eq(run(NULL, "compare", "base.json", "identical.json", NULL), 0, "%s", output);
    cr_assert_null(strstr(output, "engine settings"), "%s", output);
}

Test(cli, compare_usage)
{
    cr_assert_eq(run(NULL, "compare", "base.json", NULL), 2);
    expect_output("needs two files");
    cr_assert_eq(run(NULL, "compare", "base.json", "base.json", "--threshold", "five", NULL), 2);
    expect_output("--threshold");
    cr_assert_eq(run(NULL, "compare", "base.json", "base.json", "--alpha", "2", NULL), 2);
    cr_assert_eq(run(NULL, "compare", "--help", NULL), 0);
    expect_output("usage: dpt compare");
}

Test(cli, compare_json)
{
    char path[128];
    snprintf(path, sizeof path, "%s/cmp.json", out_dir);
    cr_assert_eq(run(NULL, "compare", "base.json", "regressed.json", "--json", path, NULL), 1);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    char text[1 << 15];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    cr_assert(strstr(text, "\"schema\": \"dpt-compare/1\""));
    cr_assert(strstr(text, "\"verdict\": \"slower\""));
    cr_assert(strstr(text, "\"exit\": 1"));
}

static int is_png(const char *path)
{
    unsigned char sig[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(sig, 1, 8, f);
    fclose(f);
    return n == 8 && !memcmp(sig, "\x89PNG\r\n\x1a\n", 8);
}

Test(cli, plot_without_gnuplot)
{
    cr_assert_eq(
        run("DPT_GNUPLOT=/nonexistent/gnuplot", "plot", "base.json", "--out", out_dir, NULL), 1);
    expect_output("gnuplot is needed");
    expect_output("apt-get install gnuplot-nox");
}

Test(cli, plot_usage)
{
    cr_assert_eq(run(NULL, "plot", "base.json", NULL), 2);
    expect_output("--out DIR is required");
}

Test(cli, plot_charts)
{
    if (system("gnuplot --version >/dev/null 2>&1") != 0) cr_skip_test("gnuplot not installed");
    char dir[128], png[192], svg[192], gp[192];
    snprintf(dir, sizeof dir, "%s/charts/new", out_dir);
    cr_assert_eq(run(NULL, "plot", "base.json", "--out", dir, NULL), 0, "%s", output);
    snprintf(png, sizeof png, "%s/linreg-compact.png", dir);
    snprintf(svg, sizeof svg, "%s/linreg-compact.svg", dir);
    snprintf(gp, sizeof gp, "%s/linreg-compact.gp", dir);
    cr_assert(is_png(png), "%s is not a PNG", png);
    struct stat st;
    cr_assert_eq(stat(svg, &st), 0);
    cr_assert_gt(st.st_size, 1000);
    cr_assert_eq(stat(gp, &st), 0);
    expect_output(png);
}

Test(cli, compare_matches_ranks)
{
    /* base.json predates ranks: its rows are the 1-rank rows of ranks.json */
    cr_assert_eq(run(NULL, "compare", "base.json", "ranks.json", NULL), 0, "%s", output);
    for (int t = 1; t <= 8; t *= 2) expect_verdict(t, "same");
    expect_output("over 4 configurations: 1.0000");
    expect_output("only in");
    expect_output("ranks.json: linreg, 2 ranks x 4 threads, pin compact");
    expect_output("speedup vs 1 thread:");

    /* 2 ranks x 4 threads 20% slower: a slower row and a worse speedup */
    cr_assert_eq(run(NULL, "compare", "ranks.json", "ranks_slower.json", NULL), 1, "%s", output);
    expect_output("workload ranks threads pin");
    expect_output("speedup vs 1 rank x 1 thread:");
    const char *row =
        strstr(output, "linreg       2       4 compact    full       6.500       7.800");
    cr_assert_not_null(row, "%s", output);
    const char *eol = strchr(row, '\n');
    cr_assert(eol && eol - row > 6 && !strncmp(eol - 6, "slower", 6), "%s", output);
    expect_output("FAIL: 1 configuration is significantly slower by more than 5%");
    expect_output("lost more than 5% of its speedup vs 1 rank x 1 thread");
}

Test(cli, plot_ranks)
{
    if (system("gnuplot --version >/dev/null 2>&1") != 0) cr_skip_test("gnuplot not installed");
    char dir[128], gp[192], png[192];
    snprintf(dir, sizeof dir, "%s/charts", out_dir);
    cr_assert_eq(run(NULL, "plot", "ranks.json", "--out", dir, NULL), 0, "%s", output);
    snprintf(png, sizeof png, "%s/linreg-compact.png", dir);
    cr_assert(is_png(png), "%s is not a PNG", png);
    snprintf(gp, sizeof gp, "%s/linreg-compact.gp", dir);
    FILE *f = fopen(gp, "r");
    cr_assert_not_null(f);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    /* a line per rank count, against ranks x threads: 2 x 4 is at 8 */
    cr_assert(strstr(text, "set xlabel 'workers (ranks x threads)'"), "%s", text);
    cr_assert(strstr(text, "title 'full batch, 2 ranks'"), "%s", text);
    cr_assert(strstr(text, "\n8 6.15384615 76.9230769 "), "%s", text);
}

/* Training curves: dpt plot on several dpt train --json files overlays
 * them, labelled from the settings each recorded. */
Test(cli, plot_training_curves, .timeout = 120)
{
    if (system("gnuplot --version >/dev/null 2>&1") != 0) cr_skip_test("gnuplot not installed");
    char a[128], b[128], dir[128], gp[192], png[192];
    snprintf(a, sizeof a, "%s/gd.json", out_dir);
    snprintf(b, sizeof b, "%s/mom.json", out_dir);
    snprintf(dir, sizeof dir, "%s/curves", out_dir);
    const char *S = "teacher-mlp:n=2000,d=10,hidden=20,seed=3";
    cr_assert_eq(run(NULL, "train", "--synth", S, "--model", "mlp", "--hidden", "20", "--opt", "gd",
                     "--lr", "0.1", "--epochs", "4", "--quiet", "--json", a, NULL),
                 0, "%s", output);
    cr_assert_eq(run(NULL, "train", "--synth", S, "--model", "mlp", "--hidden", "20", "--opt",
                     "momentum", "--batch", "32", "--lr", "0.01", "--epochs", "3", "--quiet",
                     "--json", b, NULL),
                 0, "%s", output);
    cr_assert_eq(run(NULL, "plot", a, b, "--out", dir, "--log", NULL), 0, "%s", output);
    snprintf(png, sizeof png, "%s/training.png", dir);
    snprintf(gp, sizeof gp, "%s/training.gp", dir);
    cr_assert(is_png(png), "%s is not a PNG", png);
    FILE *f = fopen(gp, "r");
    cr_assert(f);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    cr_expect(strstr(text, "'gd lr 0.1, full batch'"), "%s", text);
    cr_expect(strstr(text, "'momentum lr 0.01, batch 32, momentum 0.9'"), "%s", text);
    /* 4 + 3 epochs of data, one line each */
    int rows = 0;
    for (char *p = text; (p = strchr(p, '\n')); p++)
        if (p[1] >= '1' && p[1] <= '9') rows++;
    cr_expect_eq(rows, 7, "%s", text);
    /* a bench result and train files do not mix; --log is for curves */
    cr_expect_eq(run(NULL, "plot", "base.json", a, "--out", dir, NULL), 2, "%s", output);
    cr_expect_eq(run(NULL, "plot", "base.json", "--out", dir, "--log", NULL), 2, "%s", output);
}

/* ---- the gate's exit codes and CI exports ---- */

Test(cli, compare_missing_configuration_fails)
{
    cr_assert_eq(run(NULL, "compare", "base.json", "missing.json", NULL), 1, "%s", output);
    expect_output("warning: only in ");
    expect_output("linreg, 8 threads, pin compact (missing from the new report)");
    expect_output("FAIL: 1 configuration of ");
    expect_output("--allow-missing");
    cr_assert_eq(run(NULL, "compare", "base.json", "missing.json", "--allow-missing", NULL), 0,
                 "%s", output);
    expect_output("note: only in ");
    expect_output("OK: no configuration");
    /* extra configurations in the new file never fail */
    cr_assert_eq(run(NULL, "compare", "missing.json", "base.json", NULL), 0, "%s", output);
}

Test(cli, compare_help_documents_exit_codes)
{
    cr_assert_eq(run(NULL, "compare", "--help", NULL), 0);
    expect_output("3 cannot decide");
    expect_output("--run BASE_DPT NEW_DPT");
    expect_output("--markdown FILE");
    expect_output("--bmf FILE");
    expect_output("--github-benchmark FILE");
    expect_output("--allow-missing");
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s not written", path);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    return text;
}

static json_t *load(const char *path)
{
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    cr_assert_not_null(j, "%s: %s", path, err.text);
    return j;
}

Test(cli, compare_exports)
{
    char md[128], bmf[128], gh[128], js[128];
    snprintf(md, sizeof md, "%s/summary.md", out_dir);
    snprintf(bmf, sizeof bmf, "%s/bmf.json", out_dir);
    snprintf(gh, sizeof gh, "%s/gh.json", out_dir);
    snprintf(js, sizeof js, "%s/cmp.json", out_dir);
    cr_assert_eq(run(NULL, "compare", "base.json", "regressed.json", "--markdown", md, "--bmf", bmf,
                     "--github-benchmark", gh, "--json", js, NULL),
                 1, "%s", output);

    const char *text = slurp(md);
    cr_assert(strstr(text, "| configuration | base ms | new ms | change (95% interval) | p "
                           "(two-sided U) | verdict |\n|---|"),
              "%s", text);
    cr_assert(strstr(text, "| linreg, 4 threads, pin compact, batch full | 11.000 | 13.200 | "
                           "+20.0% [+18.3%, +21.7%] | 0.00794 | **slower** |"),
              "%s", text);
    cr_assert(strstr(text, "| linreg, 1 thread, pin compact, batch full | 40.000 | 40.000 | "
                           "+0.0% [-1.4%, +1.4%] | 1 | same |"),
              "%s", text);
    cr_assert(strstr(text, "\nFAIL: 1 configuration is significantly slower by more than 5%\n"),
              "%s", text);

    /* Bencher: seconds per epoch of the new file, bounds from the interval */
    json_t *b = load(bmf);
    cr_assert(json_is_object(b));
    cr_assert_eq(json_object_size(b), 4);
    json_t *lat = json_object_get(json_object_get(b, "linreg/1x4/compact/full"), "latency");
    cr_assert_not_null(lat, "no linreg/1x4/compact/full latency");
    double v = json_real_value(json_object_get(lat, "value"));
    double lo = json_real_value(json_object_get(lat, "lower_value"));
    double hi = json_real_value(json_object_get(lat, "upper_value"));
    cr_assert_float_eq(v, 0.0132, 1e-12);
    cr_assert(lo < v && v < hi, "%g %g %g", lo, v, hi);
    cr_assert_float_eq(lo, 0.011 * 1.183, 0.011 * 0.001);
    json_decref(b);

    /* github-action-benchmark customSmallerIsBetter */
    json_t *g = load(gh);
    cr_assert(json_is_array(g));
    cr_assert_eq(json_array_size(g), 4);
    json_t *e = json_array_get(g, 2);
    cr_assert_str_eq(json_string_value(json_object_get(e, "name")), "linreg/1x4/compact/full");
    cr_assert_str_eq(json_string_value(json_object_get(e, "unit")), "ms");
    cr_assert_float_eq(json_real_value(json_object_get(e, "value")), 13.2, 1e-9);
    cr_assert_str_eq(json_string_value(json_object_get(e, "range")), "+18.3% .. +21.7%");
    cr_assert(strstr(json_string_value(json_object_get(e, "extra")), "slower"));
    json_decref(g);

    /* dpt-compare/1 keeps its fields and gains the interval's */
    json_t *c = load(js);
    cr_assert_str_eq(json_string_value(json_object_get(c, "schema")), "dpt-compare/1");
    cr_assert_eq(json_integer_value(json_object_get(c, "exit")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(c, "outcome")), "fail");
    cr_assert(json_is_false(json_object_get(c, "paired")));
    json_t *row = json_array_get(json_object_get(c, "results"), 2);
    cr_assert_str_eq(json_string_value(json_object_get(row, "verdict")), "slower");
    cr_assert_str_eq(json_string_value(json_object_get(row, "test")), "mann-whitney-u");
    cr_assert_str_eq(json_string_value(json_object_get(row, "sided")), "two-sided");
    cr_assert_float_eq(json_real_value(json_object_get(row, "p_value")), 2.0 / 252, 1e-12);
    cr_assert_float_eq(json_real_value(json_object_get(row, "interval_lo")), 0.183, 0.001);
    cr_assert_float_eq(json_real_value(json_object_get(row, "interval_hi")), 0.217, 0.001);
    json_decref(c);

    /* a file that cannot be written loses the gate's result: not a pass */
    cr_assert_eq(run(NULL, "compare", "base.json", "identical.json", "--markdown",
                     "/nonexistent/dir/s.md", NULL),
                 2, "%s", output);
}

/* Paired runs of two paths to the same dpt: an A/A test. With a 50%
 * threshold timing noise cannot make it "slower"; it says "same" ("same or
 * faster" when the interval reaches below -50%) or, when the runner is
 * noisy, "cannot decide". */
Test(cli, compare_run_a_a, .timeout = 120)
{
    char alias[128], js[128], md[128];
    snprintf(alias, sizeof alias, "%s/dpt-new", out_dir);
    snprintf(js, sizeof js, "%s/paired.json", out_dir);
    snprintf(md, sizeof md, "%s/paired.md", out_dir);
    cr_assert_eq(symlink(DPT_EXE, alias), 0);
    int st = run(NULL, "compare", "--run", DPT_EXE, alias, "--pairs", "6", "--max-pairs", "6",
                 "--threshold", "50%", "--synth", "linreg:n=2000,d=8", "--model", "linear", "--opt",
                 "gd", "--lr", "0.1", "--epochs", "1", "--threads", "1", "--no-limits", "--json",
                 js, "--markdown", md, NULL);
    cr_assert(st == 0 || st == 3, "exit %d:\n%s", st, output);
    expect_output("paired: 6 alternating runs of each");
    expect_output("p (two-sided signed-rank)");
    cr_assert_null(strstr(output, "slower"), "%s", output);
    json_t *c = load(js);
    cr_assert(json_is_true(json_object_get(c, "paired")));
    cr_assert_eq(json_integer_value(json_object_get(c, "exit")), st);
    json_t *rows = json_object_get(c, "results");
    cr_assert_eq(json_array_size(rows), 1);
    json_t *row = json_array_get(rows, 0);
    cr_assert_eq(json_integer_value(json_object_get(row, "base_reps")), 6);
    cr_assert_eq(json_integer_value(json_object_get(row, "new_reps")), 6);
    cr_assert_str_eq(json_string_value(json_object_get(row, "test")), "wilcoxon-signed-rank");
    /* an interval that straddles only -50% is "same or faster" (a pass):
     * the A/A pairs' noise can reach that far on a busy runner */
    const char *verdict = json_string_value(json_object_get(row, "verdict"));
    const int pass = !strcmp(verdict, "same") || !strcmp(verdict, "same or faster");
    cr_assert(pass || !strcmp(verdict, "cannot decide"), "%s", verdict);
    cr_assert_eq(pass, st == 0);
    /* 6 pairs give a 95% interval: the extremes of the Walsh averages */
    cr_assert(json_is_real(json_object_get(row, "interval_lo")));
    cr_assert(json_is_real(json_object_get(row, "interval_hi")));
    json_decref(c);
    cr_assert(strstr(slurp(md), "p (two-sided signed-rank)"));
}

Test(cli, compare_run_errors)
{
    cr_assert_eq(run(NULL, "compare", "--run", DPT_EXE, "/nonexistent/dpt", "--pairs", "1",
                     "--synth", "linreg:n=200,d=2", "--epochs", "1", "--threads", "1",
                     "--no-limits", NULL),
                 2, "%s", output);
    expect_output("/nonexistent/dpt");
    cr_assert_eq(run(NULL, "compare", "--run", DPT_EXE, DPT_EXE, "--pairs", "0", NULL), 2);
    expect_output("pairs");
    cr_assert_eq(run(NULL, "compare", "--run", DPT_EXE, NULL), 2);
    expect_output("--run needs two dpt executables");
    /* a bench flag it does not know: bench's own message, then compare's */
    cr_assert_eq(run(NULL, "compare", "--run", DPT_EXE, DPT_EXE, "--pairs", "1", "--bogus", NULL),
                 2, "%s", output);
    expect_output("--bogus");
}
