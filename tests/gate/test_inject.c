/* --inject-slowdown, the calibration aid: it changes no bit of the trained
 * model, the engine refuses a fraction outside [0, 10], and the tool a
 * percentage outside [0, 1000], with one line naming the flag. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../core/ref.h"
#include "dpt/engine.h"
#include "dpt/error.h"

TestSuite(inject, .timeout = 300);

/* The parameters after epochs of the engine tests' small MLP on threads
 * threads, with the given slowdown. */
static float *train(double slowdown, int threads, size_t *n)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_optim_spec o;
    cr_assert_eq(ref_small_mlp(&m, &ds, &o, 517), 0);
    dpt_engine_opts eo;
    ref_engine_opts(&eo, threads, 1);
    eo.inject_slowdown = slowdown;
    dpt_engine *e = NULL;
    cr_assert_eq(dpt_engine_create(&e, &m, &o, &ds, &eo), 0, "%s", dpt_last_error());
    dpt_model_init_params(&m, dpt_engine_params(e), 3, DPT_INIT_UNIFORM);
    cr_assert_eq(dpt_engine_train(e, 3, NULL, NULL), 0, "%s", dpt_last_error());
    float *w = malloc(m.n_params * sizeof *w);
    memcpy(w, dpt_engine_params(e), m.n_params * sizeof *w);
    *n = m.n_params;
    dpt_engine_destroy(e);
    dpt_dataset_free(&ds);
    return w;
}

Test(inject, changes_no_bit_of_the_model)
{
    for (int threads = 1; threads <= 3; threads += 2) {
        size_t n, n2;
        float *a = train(0, threads, &n), *b = train(0.5, threads, &n2);
        cr_assert_eq(n, n2);
        cr_expect_eq(memcmp(a, b, n * sizeof *a), 0, "%d threads: the parameters differ", threads);
        free(a);
        free(b);
    }
}

Test(inject, engine_refuses_out_of_range)
{
    const double bad[] = {-0.01, 10.5, NAN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dpt_model m;
        dpt_dataset ds;
        dpt_optim_spec o;
        cr_assert_eq(ref_small_mlp(&m, &ds, &o, 64), 0);
        dpt_engine_opts eo;
        ref_engine_opts(&eo, 1, 0);
        eo.inject_slowdown = bad[i];
        dpt_engine *e = NULL;
        cr_expect_eq(dpt_engine_create(&e, &m, &o, &ds, &eo), DPT_EINVAL, "%g accepted", bad[i]);
        cr_expect_null(e);
        cr_expect(strstr(dpt_last_error(), "inject_slowdown"), "%s", dpt_last_error());
        dpt_dataset_free(&ds);
    }
}

/* `dpt bench|train ... --inject-slowdown VALUE`: exit status and stderr. */
static int run_tool(const char *cmd, const char *value, char *err, size_t cap)
{
    const char *exe = getenv("DPT_EXE");
    cr_assert(exe, "DPT_EXE is not set");
    char line[1024], path[] = "/tmp/dpt-test-inject-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    snprintf(line, sizeof line,
             "'%s' %s --synth linreg:n=64,d=3 --model linear --epochs 1 --threads 1 "
             "--inject-slowdown '%s' --quiet %s >/dev/null 2>'%s'",
             exe, cmd, value, !strcmp(cmd, "bench") ? "--reps 1 --no-limits" : "", path);
    int st = system(line);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(err, 1, cap - 1, f) : 0;
    err[n] = '\0';
    if (f) fclose(f);
    unlink(path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(inject, tool_refuses_bad_values)
{
    const char *cmds[] = {"bench", "train"};
    const char *bad[] = {"1001", "-1", "ten", "", "10%%"};
    char err[2048];
    for (int c = 0; c < 2; c++)
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            cr_expect_eq(run_tool(cmds[c], bad[i], err, sizeof err), 2, "%s '%s'", cmds[c], bad[i]);
            cr_expect(strstr(err, "--inject-slowdown") && strstr(err, "[0, 1000]"), "%s '%s': %s",
                      cmds[c], bad[i], err);
        }
}

Test(inject, tool_takes_percentages)
{
    char err[2048];
    const char *good[] = {"0", "10", "10%", "1000"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_expect_eq(run_tool("bench", good[i], err, sizeof err), 0, "'%s': %s", good[i], err);
}

/* Run a shell line; its exit status, stdout into out. */
static int sh(const char *line, char *out, size_t cap)
{
    char full[2048], path[] = "/tmp/dpt-test-inject-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    snprintf(full, sizeof full, "(%s) >'%s'", line, path);
    int st = system(full);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(out, 1, cap - 1, f) : 0;
    out[n] = '\0';
    if (f) fclose(f);
    unlink(path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define TINY "--synth linreg:n=256,d=4 --model linear --epochs 1 --threads 1 --warmup 0 --no-limits"

/* --calibrate runs A/A and A/B and prints its table; what the timings say
 * is not checked (timing never decides a test), only that it all ran. */
Test(inject, calibrate_prints_its_table)
{
    const char *exe = getenv("DPT_EXE");
    cr_assert(exe);
    char line[1024], out[8192];
    snprintf(line, sizeof line,
             "'%s' compare --calibrate --runs 1 --pairs 2 --max-pairs 2 " TINY " 2>/dev/null", exe);
    cr_assert_eq(sh(line, out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "1 A/A and 1 A/B runs (+10% injected"), "%s", out);
    cr_expect(strstr(out, "false alarm") && strstr(out, "detectable"), "%s", out);
    cr_expect(strstr(out, "custom") || strstr(out, "linear"), "no row: %s", out);
}

/* --new-args reaches one side only (the engine settings differ), and the
 * saved runs are judged again with --paired, telemetry and all. */
Test(inject, new_args_and_saved_runs)
{
    const char *exe = getenv("DPT_EXE");
    cr_assert(exe);
    char line[2048], out[8192], prefix[] = "/tmp/dpt-test-saved-XXXXXX";
    int fd = mkstemp(prefix);
    cr_assert_geq(fd, 0);
    close(fd);
    snprintf(
        line, sizeof line,
        "'%s' compare --run '%s' '%s' --pairs 2 --max-pairs 2 --new-args '--inject-slowdown 20' "
        "--save-runs '%s-' " TINY " 2>&1",
        exe, exe, exe, prefix);
    int st = sh(line, out, sizeof out);
    cr_expect(st == 0 || st == 1 || st == 3, "status %d: %s", st, out);
    cr_expect(strstr(out, "inject-slowdown=20%"), "the new side's settings: %s", out);
    snprintf(line, sizeof line,
             "'%s' compare --paired '%s-base.json' '%s-new.json' "
             "--drop-disturbed 2>&1",
             exe, prefix, prefix);
    st = sh(line, out, sizeof out);
    /* 2 pairs give no interval: the gate cannot decide */
    cr_expect_eq(st, 3, "%s", out);
    char p[256];
    snprintf(p, sizeof p, "%s-base.json", prefix);
    unlink(p);
    snprintf(p, sizeof p, "%s-new.json", prefix);
    unlink(p);
    unlink(prefix);
}
