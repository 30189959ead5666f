/* The tool's flag validation: every bad flag or value gives exit status 2
 * and one line on stderr naming the flag and what it accepts. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Run `dpt ARGS`, return the exit status; stderr (or stdout) into err. */
static int run_dpt_stream(const char *args, char *err, size_t cap, int want_stdout)
{
    const char *exe = getenv("DPT_EXE");
    cr_assert(exe, "DPT_EXE is not set");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, want_stdout ? "%s %s 2>/dev/null" : "%s %s 2>&1 >/dev/null", exe,
             args);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    size_t n = fread(err, 1, cap - 1, p);
    err[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int run_dpt(const char *args, char *err, size_t cap)
{
    return run_dpt_stream(args, err, cap, 0);
}

static int lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* strings inline: Criterion runs each parameter in a fresh process */
struct bad {
    char args[128], must_contain[64];
};

ParameterizedTestParameters(cli, bad_flags)
{
    static struct bad cases[] = {
        {"train --synth linreg --frobnicate", "--frobnicate"},
        {"train --synth linreg --threads 0", "--threads"},
        {"train --synth linreg --threads lots", "--threads"},
        {"train --synth linreg --opt adam", "gd, sgd, momentum, nesterov"},
        {"train --synth linreg --model forest", "linear, logistic, softmax, mlp"},
        {"train --synth linreg --lr -1", "--lr"},
        {"train --synth linreg --lr nan", "--lr"},
        {"train --synth linreg --epochs 1.5", "--epochs"},
        {"train --synth linreg --pin diagonal", "--pin"},
        {"train --synth linreg --isa sse9", "auto, scalar, avx2"},
        {"train --synth linreg --model mlp", "--hidden"},
        {"train --synth linreg --hidden 20", "--hidden"},
        {"train --synth linreg --hidden 0", "--hidden"},
        {"train --synth linreg --opt gd --batch 32", "--batch"},
        {"train --synth linreg --momentum 0.9", "--momentum"},
        {"train --synth linreg --lr-schedule weekly", "step:EVERY:FACTOR"},
        {"train --synth linreg --shuffle always", "epoch"},
        {"train --synth linreg --epochs", "needs a value"},
        {"train --synth linreg extra", "extra"},
        {"train --synth linreg --reduce ring", "tree, scatter"},
        {"train --synth linreg --split rows", "auto, data, layer"},
        {"train --synth linreg --split layer", "--split data"},
        {"train --synth teacher-mlp --model mlp --hidden 20 --act tanh --split layer --balance "
         "adaptive",
         "--split layer"},
        {"bench --synth linreg --split diagonal", "auto, data, layer"},
        {"train --synth linreg --batching nearby", "global, local"},
        {"train --synth linreg --balance even", "static, adaptive"},
        {"train --synth linreg --balance adaptive --deterministic", "--deterministic"},
        {"train --synth linreg --balance adaptive --batching local", "--batching local"},
        {"train --synth linreg --deterministic --batching local", "--deterministic"},
        {"train --synth linreg --trace -", "--quiet"},
        {"train --synth linreg --quiet --trace - --json -", "only one"},
        {"tune --synth linreg --balances even", "static, adaptive"},
        {"tune --synth linreg --balances static,static", "twice"},
        {"tune --synth linreg --balances adaptive --deterministic", "--deterministic"},
        {"tune --synth linreg --batches 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", "at most 16"},
        {"tune --synth linreg --batches ,", "--batches"},
        {"bench --synth linreg --pin list:0,2,4,6,8,10,12,14,16,18,20,22", "31 characters"},
        {"train --synth linreg --model mlp --hidden ,", "--hidden"},
        {"train --synth linreg --eval-every -1", "--eval-every"},
        {"train --synth linreg --eval-every often", "--eval-every"},
        {"train --synth linreg --val 0.1 --patience 2 --eval-every 2", "--eval-every"},
        {"train --synth linreg --eval-every 0 --target-loss 0.5", "--eval-every 0"},
        {"frobnicate", "unknown command"},
        {"train --synth linreg --hiden 20", "did you mean --hidden?"},
        {"bench --synth linreg --threds 1", "did you mean --threads?"},
        {"trian --synth linreg", "did you mean train?"},
    };
    return cr_make_param_array(struct bad, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct bad *c, cli, bad_flags)
{
    char err[4096];
    int st = run_dpt(c->args, err, sizeof err);
    cr_expect_eq(st, 2, "dpt %s: exit %d, stderr: %s", c->args, st, err);
    cr_expect_eq(lines(err), 1, "dpt %s: expected one line, got: %s", c->args, err);
    cr_expect(strstr(err, c->must_contain), "dpt %s: '%s' not in: %s", c->args, c->must_contain,
              err);
}

/* Run `dpt ARGS --json FILE`: the exit status, stdout into out and the
 * file's text into json (the file is removed). */
static int run_dpt_json(const char *args, char *out, size_t cap, char *json, size_t jcap)
{
    char path[] = "/tmp/dpt-cli-XXXXXX", cmd[768];
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    snprintf(cmd, sizeof cmd, "%s --json %s", args, path);
    int st = run_dpt_stream(cmd, out, cap, 1);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(json, 1, jcap - 1, f) : 0;
    json[n] = 0;
    if (f) fclose(f);
    unlink(path);
    return st;
}

/* three epochs of a small MLP, for the tests of what train prints */
#define SMALL_MLP_RUN                                                                              \
    "train --synth teacher-mlp:n=2000 --model mlp --hidden 20 --opt momentum --batch 64 --lr "     \
    "0.01 --epochs 3 "

Test(cli, train_runs_and_writes_json, .timeout = 120)
{
    char err[8192], buf[16384];
    int st = run_dpt_json(SMALL_MLP_RUN "--threads 3 --pin none", err, sizeof err, buf, sizeof buf);
    cr_assert_eq(st, 0, "stdout: %s", err);
    cr_expect(strstr(err, "epoch   3"), "%s", err);
    cr_expect(strstr(err, "final:"), "%s", err);
    const char *keys[] = {"\"threads\": 3", "\"isa\"",        "\"epochs\"",
                          "\"final\"",      "\"train_loss\"", "\"samples_per_second\"",
                          "\"seconds\"",    "\"loss\""};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_expect(strstr(buf, keys[i]), "%s missing from %s", keys[i], buf);
}

/* --eval-every 2 over 3 epochs: the metrics on the epoch lines and in the
 * JSON history after epochs 2 and 3 (the last) only */
Test(cli, train_evaluates_every_nth_epoch, .timeout = 120)
{
    char out[8192], buf[16384];
    int st = run_dpt_json(SMALL_MLP_RUN "--val 0.2 --eval-every 2 --threads 2", out, sizeof out,
                          buf, sizeof buf);
    cr_assert_eq(st, 0, "stdout: %s", out);
    const char *ep[4] = {NULL, strstr(out, "epoch   1"), strstr(out, "epoch   2"),
                         strstr(out, "epoch   3")};
    cr_assert(ep[1] && ep[2] && ep[3], "%s", out);
    for (int e = 1; e <= 3; e++) {
        const char *eol = strchr(ep[e], '\n'), *tl = strstr(ep[e], "train loss"),
                   *vl = strstr(ep[e], "val loss");
        int shown = tl && tl < eol && vl && vl < eol;
        cr_expect_eq(shown, e != 1, "epoch %d: metrics %s: %s", e, shown ? "shown" : "missing",
                     out);
    }
    int n = 0;
    for (const char *p = buf; (p = strstr(p, "\"train\":")); p++) n++;
    cr_expect_eq(n, 2, "epochs with train metrics in the JSON: %d in %s", n, buf);
    cr_expect(strstr(buf, "\"train_loss\""), "the final metrics: %s", buf);
    /* --config reruns it: a target is checked on the evaluated epochs only */
    cr_expect(strstr(buf, "\"eval-every\": 2"), "the config records --eval-every: %s", buf);
}

Test(cli, engine_flags_are_accepted)
{
    char err[4096];
    int st = run_dpt("train --synth linreg:n=500,d=4 --opt sgd --batch 50 --epochs 2 --threads 3 "
                     "--reduce tree --batching local --pin none --quiet",
                     err, sizeof err);
    cr_expect_eq(st, 0, "%s", err);
    st = run_dpt("train --synth linreg:n=500,d=4 --opt momentum --batch 50 --epochs 2 --threads 2 "
                 "--reduce scatter --deterministic --leaves 8 --pin none --quiet",
                 err, sizeof err);
    cr_expect_eq(st, 0, "%s", err);
    st = run_dpt("train --synth linreg:n=500,d=4 --opt momentum --batch 50 --epochs 2 --threads 3 "
                 "--balance adaptive --shuffle none --pin none --quiet",
                 err, sizeof err);
    cr_expect_eq(st, 0, "%s", err);
}

Test(cli, unwritable_json_fails_cleanly)
{
    char err[4096];
    int st = run_dpt("train --synth linreg:n=100 --epochs 1 --json /nonexistent-dir/out.json", err,
                     sizeof err);
    cr_expect_eq(st, 1, "stderr: %s", err);
    cr_expect(strstr(err, "/nonexistent-dir/out.json"), "%s", err);
}

static void tmpname(char *buf, size_t cap, const char *suffix)
{
    snprintf(buf, cap, "/tmp/dpt-test-%d-%s", (int)getpid(), suffix);
}

Test(cli, save_eval_predict_round_trip, .timeout = 120)
{
    char model[128], data[128], pred[128], err[8192], args[1024];
    tmpname(model, sizeof model, "m.dptm");
    tmpname(data, sizeof data, "d.csv");
    tmpname(pred, sizeof pred, "p.csv");
    snprintf(args, sizeof args, "gen --synth teacher-mlp:n=500,classes=3,seed=2 --out %s", data);
    cr_assert_eq(run_dpt(args, err, sizeof err), 0, "%s", err);
    snprintf(args, sizeof args,
             "train --data %s --model mlp --hidden 8 --loss ce --opt momentum --batch 32 "
             "--epochs 2 --standardize --threads 2 --quiet --save %s",
             data, model);
    cr_assert_eq(run_dpt(args, err, sizeof err), 0, "%s", err);
    /* saving twice gives the same bytes: no timestamps in model files */
    char model2[128];
    tmpname(model2, sizeof model2, "m2.dptm");
    snprintf(args, sizeof args,
             "train --data %s --model mlp --hidden 8 --loss ce --opt momentum --batch 32 "
             "--epochs 2 --standardize --threads 2 --quiet --save %s",
             data, model2);
    cr_assert_eq(run_dpt(args, err, sizeof err), 0, "%s", err);
    char cmp[512];
    snprintf(cmp, sizeof cmp, "cmp -s %s %s", model, model2);
    cr_expect_eq(system(cmp), 0, "identical training runs gave different model files");

    /* predict twice: identical output; eval reports an accuracy */
    snprintf(args, sizeof args, "predict --model-file %s --data %s > %s", model, data, pred);
    char out[8192];
    cr_assert_eq(run_dpt_stream(args, out, sizeof out, 1), 0);
    snprintf(args, sizeof args, "predict --model-file %s --data %s", model2, data);
    char out2[65536];
    cr_assert_eq(run_dpt_stream(args, out2, sizeof out2, 1), 0);
    FILE *f = fopen(pred, "r");
    char first[64];
    cr_assert(f && fgets(first, sizeof first, f));
    cr_expect_str_eq(first, "class,p0,p1,p2\n");
    fclose(f);
    snprintf(args, sizeof args, "eval --model-file %s --data %s", model, data);
    cr_assert_eq(run_dpt_stream(args, out, sizeof out, 1), 0, "%s", out);
    cr_expect(strstr(out, "accuracy"), "%s", out);

    /* --init-from starts from the saved parameters: with a negligible step
     * the predictions stay those of the saved model */
    char model3[128];
    tmpname(model3, sizeof model3, "m3.dptm");
    snprintf(args, sizeof args,
             "train --data %s --model mlp --hidden 8 --loss ce --opt sgd --lr 1e-12 --epochs 1 "
             "--standardize --threads 2 --quiet --init-from %s --save %s",
             data, model, model3);
    cr_assert_eq(run_dpt(args, err, sizeof err), 0, "%s", err);
    snprintf(args, sizeof args, "predict --model-file %s --data %s", model3, data);
    char out3[65536];
    cr_assert_eq(run_dpt_stream(args, out3, sizeof out3, 1), 0);
    cr_expect_str_eq(out3, out2, "predictions after --init-from differ from the saved model's");
    /* and a model of another shape is refused */
    snprintf(args, sizeof args,
             "train --data %s --model mlp --hidden 9 --loss ce --epochs 1 --init-from %s", data,
             model);
    cr_expect_eq(run_dpt(args, err, sizeof err), 1, "%s", err);
    cr_expect(strstr(err, "--init-from"), "%s", err);
    unlink(model3);

    /* a corrupted model file is refused with one line */
    f = fopen(model, "r+b");
    fseek(f, 200, SEEK_SET);
    fputc(0x5a, f);
    fclose(f);
    snprintf(args, sizeof args, "eval --model-file %s --data %s", model, data);
    cr_expect_eq(run_dpt(args, err, sizeof err), 1);
    cr_expect(strstr(err, "checksum"), "%s", err);
    cr_expect_eq(lines(err), 1, "%s", err);
    /* and a truncated one */
    snprintf(cmp, sizeof cmp, "truncate -s 90 %s", model2);
    cr_assert_eq(system(cmp), 0);
    snprintf(args, sizeof args, "eval --model-file %s --data %s", model2, data);
    cr_expect_eq(run_dpt(args, err, sizeof err), 1);
    cr_expect(strstr(err, model2), "%s", err);
    unlink(model);
    unlink(model2);
    unlink(data);
    unlink(pred);
}

Test(cli, divergence_exits_1_naming_epoch_and_step)
{
    char err[4096];
    int st = run_dpt("train --synth linreg:n=2000,d=8 --opt sgd --batch 50 --lr 1000 --epochs 5",
                     err, sizeof err);
    cr_expect_eq(st, 1, "%s", err);
    cr_expect(strstr(err, "diverged") && strstr(err, "epoch") && strstr(err, "step"), "%s", err);
}

/* the race over --balances: both modes run, the table and the JSON name them */
Test(cli, tune_races_balance_modes, .timeout = 120)
{
    char out[8192], buf[16384];
    int st = run_dpt_json("tune --synth teacher-mlp:n=4000,d=8,hidden=16 --model mlp --hidden 16 "
                          "--opt momentum --batch 64 --lr 0.01 --epochs 1 --threads 2 --pin none "
                          "--balances static,adaptive",
                          out, sizeof out, buf, sizeof buf);
    cr_assert_eq(st, 0, "%s", out);
    cr_expect(strstr(out, " static "), "%s", out);
    cr_expect(strstr(out, " adaptive "), "%s", out);
    cr_expect(strstr(out, "recommended: 2 threads, pin none, balance "), "%s", out);
    cr_expect(strstr(buf, "\"balance\": \"static\""), "%s", buf);
    cr_expect(strstr(buf, "\"balance\": \"adaptive\""), "%s", buf);
}

/* a run that fails inside the tune race: its one message, not twice */
Test(cli, tune_divergence_is_one_line)
{
    char err[4096];
    int st = run_dpt("tune --synth linreg:n=2000,d=8 --model linear --opt gd --lr 1e6 --epochs 30 "
                     "--threads 1 --quiet",
                     err, sizeof err);
    cr_expect_eq(st, 1, "%s", err);
    cr_expect(strstr(err, "dpt tune: training diverged"), "%s", err);
    cr_expect_eq(lines(err), 1, "%s", err);
}

Test(cli, bench_runs_end_to_end_and_writes_schema, .timeout = 180)
{
    char out[16384], json[16384];
    int st = run_dpt_json("bench --synth teacher-mlp:n=3000 --model mlp --hidden 8 --opt sgd "
                          "--batch 100 --epochs 1 --threads 1,3 --reps 3 --warmup 0 --no-limits "
                          "--quiet",
                          out, sizeof out, json, sizeof json);
    cr_assert_eq(st, 0, "%s", out);
    cr_expect(strstr(out, "speedup"), "%s", out);
    cr_assert(json[0], "no JSON file");
    cr_expect(strstr(json, "\"schema\": \"dpt-bench/1\""), "%s", json);
    cr_expect(strstr(json, "\"samples\""), "%s", json);
    cr_expect(strstr(json, "\"final_loss\""), "%s", json);
}

/* The workload's reference loss is compared only where the flags leave its
 * training as defined (linreg: 20 epochs of full-batch GD end within 1e-4
 * of it); a flag that changes what is trained is named instead, with the
 * workload's own value, and the run ends no less well for it. */
Test(cli, bench_compares_the_reference_only_as_defined, .timeout = 120)
{
    char out[8192];
    const char *base =
        "bench --workload linreg --threads 1 --reps 1 --warmup 0 --no-limits --quiet";
    char args[512];
    cr_assert_eq(run_dpt_stream(base, out, sizeof out, 1), 0, "%s", out);
    const char *line = strstr(out, "\nfinal loss ");
    cr_assert(line, "%s", out);
    double loss = NAN, ref = NAN;
    cr_assert_eq(sscanf(line, "\nfinal loss %lf, reference %lf", &loss, &ref), 2, "%s", line);
    cr_expect_lt(fabs(loss - ref) / ref, 1e-4, "%s", line);
    cr_expect(!strstr(out, "not compared"), "%s", out);

    snprintf(args, sizeof args, "%s --epochs 2 --lr 0.1", base);
    cr_assert_eq(run_dpt_stream(args, out, sizeof out, 1), 0, "%s", out);
    line = strstr(out, "\nfinal loss ");
    cr_assert(line, "%s", out);
    cr_expect(!strstr(line, "reference 0"), "%s", line);
    cr_expect(strstr(line, "not compared"), "%s", line);
    cr_expect(strstr(line, "epochs 2 (workload 20)"), "%s", line);
    cr_expect(strstr(line, "lr 0.1 (workload 0.05)"), "%s", line);

    /* rows held out for validation are rows not trained on */
    snprintf(args, sizeof args, "%s --epochs 20 --val 0.1", base);
    cr_assert_eq(run_dpt_stream(args, out, sizeof out, 1), 0, "%s", out);
    cr_expect(strstr(out, "not compared") && strstr(out, "training rows (--val)"), "%s", out);

    /* a flag that leaves the training as defined is not a change */
    snprintf(args, sizeof args, "%s --epochs 20 --isa scalar", base);
    cr_assert_eq(run_dpt_stream(args, out, sizeof out, 1), 0, "%s", out);
    cr_expect(strstr(out, ", reference "), "%s", out);
    cr_expect(!strstr(out, "not compared"), "%s", out);
}

/* --trace: one CSV line per step and thread; the lines add up to the rows of
 * each batch and to the phase times dpt train prints */
Test(cli, train_writes_a_per_step_trace, .timeout = 120)
{
    char trace[128], args[512], out[8192];
    tmpname(trace, sizeof trace, "trace.csv");
    snprintf(args, sizeof args,
             "train --synth teacher-mlp:n=1000,d=20,hidden=8,classes=3 --model mlp --hidden 8 "
             "--loss ce --opt momentum --batch 96 --epochs 2 --threads 3 --pin none --trace %s",
             trace);
    cr_assert_eq(run_dpt_stream(args, out, sizeof out, 1), 0, "%s", out);
    const char *pe = strstr(out, "per epoch: compute ");
    cr_assert(pe, "%s", out);
    double printed = atof(pe + strlen("per epoch: compute "));

    FILE *f = fopen(trace, "r");
    cr_assert(f, "no trace file");
    char line[512];
    cr_assert(fgets(line, sizeof line, f));
    cr_expect_str_eq(
        line, "epoch,step,thread,rows,shuffle_s,compute_s,wait_s,reduce_s,update_s,comm_s\n");
    int n = 0, epoch, thread, last_epoch = 0;
    long step, last_step = 0;
    size_t rows, step_rows = 0;
    double ph[6], compute = 0;
    /* 1000 rows in batches of 96: 10 of 96 and one of 40 */
    while (fgets(line, sizeof line, f)) {
        int k = sscanf(line, "%d,%ld,%d,%zu,%lf,%lf,%lf,%lf,%lf,%lf", &epoch, &step, &thread, &rows,
                       &ph[0], &ph[1], &ph[2], &ph[3], &ph[4], &ph[5]);
        cr_assert_eq(k, 10, "line %d: %s", n + 2, line);
        cr_expect_eq(thread, n % 3, "line %d: %s", n + 2, line);
        if (thread == 0) {
            if (n) cr_expect_eq(step_rows, last_step < 11 ? 96u : 40u, "step %ld", last_step);
            cr_expect(step == last_step + 1 || (step == 1 && epoch == last_epoch + 1), "%s", line);
            step_rows = 0;
        }
        step_rows += rows;
        last_step = step;
        last_epoch = epoch;
        compute += ph[1];
        n++;
    }
    fclose(f);
    cr_expect_eq(step_rows, 40u);
    cr_expect_eq(n, 2 * 11 * 3, "%d lines", n);
    cr_expect_eq(last_epoch, 2);
    /* the mean over threads and epochs, as printed with 4 digits */
    double mean = compute / 3 / 2;
    cr_expect(fabs(mean - printed) <= 1e-3 * printed, "trace %g s, printed %g s", mean, printed);
    unlink(trace);
}

/* no trace file (and no temporary one) where the run fails or the path
 * cannot be written */
Test(cli, trace_is_all_or_nothing)
{
    char dir[] = "/tmp/dpt-trace-XXXXXX", args[512], err[4096];
    cr_assert(mkdtemp(dir));
    snprintf(args, sizeof args,
             "train --synth linreg:n=2000,d=8 --opt sgd --batch 50 --lr 1000 --epochs 5 "
             "--trace %s/t.csv",
             dir);
    cr_expect_eq(run_dpt(args, err, sizeof err), 1, "%s", err);
    snprintf(args, sizeof args, "find %s -mindepth 1 | grep -q .", dir);
    cr_expect_neq(system(args), 0, "a failed run left files in %s", dir);
    snprintf(args, sizeof args, "train --synth linreg:n=100 --epochs 1 --trace %s/no/t.csv", dir);
    cr_expect_eq(run_dpt(args, err, sizeof err), 1, "%s", err);
    cr_expect_eq(lines(err), 1, "%s", err);
    cr_expect(strstr(err, "--trace") && strstr(err, "/no/t.csv"), "%s", err);
    rmdir(dir);
}

/* bench's --warmup is epochs of its own; once the learning-rate warm-up
 * flag of the same name took it, and every bench warmed up one epoch */
Test(cli, bench_warmup_is_its_own, .timeout = 120)
{
    char err[4096];
    int st = run_dpt("bench --synth linreg:n=1000,d=4 --model linear --opt gd --lr 0.1 --epochs 1 "
                     "--threads 1 --reps 1 --warmup 3 --no-limits",
                     err, sizeof err);
    cr_assert_eq(st, 0, "%s", err);
    cr_expect(strstr(err, "after 3 warm-up"), "%s", err);
}

/* A model trained on standardized data keeps its statistics: --init-from
 * applies them (not the raw features, nor new statistics), so training
 * goes on where it stopped; once it started from a loss of millions. */
Test(cli, init_from_applies_the_saved_standardization, .timeout = 120)
{
    char data[128], model[128], model2[128], args[1024], out[8192], json[16384];
    tmpname(data, sizeof data, "s.csv");
    tmpname(model, sizeof model, "s.dpt");
    tmpname(model2, sizeof model2, "s2.dpt");
    FILE *f = fopen(data, "w");
    cr_assert(f);
    fprintf(f, "x1,x2,x3,y\n");
    for (int i = 0; i < 400; i++) {
        double x[3] = {500 + 1000 * sin(0.37 * i), 2000 + 300 * cos(0.11 * i),
                       -700 + 50 * sin(1.3 * i + 1)};
        fprintf(f, "%.6f,%.6f,%.6f,%.6f\n", x[0], x[1], x[2],
                0.002 * (x[0] - 500) - 0.01 * (x[1] - 2000) + 0.05 * (x[2] + 700));
    }
    fclose(f);
    snprintf(args, sizeof args,
             "train --data %s --model linear --opt gd --lr 0.1 --epochs 60 --standardize "
             "--quiet --save %s",
             data, model);
    cr_assert_eq(run_dpt(args, out, sizeof out), 0, "%s", out);
    snprintf(args, sizeof args,
             "train --data %s --model linear --opt gd --lr 0.1 --epochs 1 --quiet --init-from %s "
             "--save %s",
             data, model, model2);
    cr_assert_eq(run_dpt_json(args, out, sizeof out, json, sizeof json), 0, "%s", out);
    const char *l = strstr(json, "\"loss\": ");
    cr_assert(l, "%s", json);
    double loss = atof(l + 8);
    cr_expect(loss < 0.05, "first epoch's loss %g: the saved statistics were not applied", loss);
    /* and the new file carries them on: eval on the raw data agrees */
    snprintf(args, sizeof args, "eval --model-file %s --data %s", model2, data);
    cr_assert_eq(run_dpt_stream(args, out, sizeof out, 1), 0, "%s", out);
    cr_expect(strstr(out, "r2 0.99") || strstr(out, "r2 1.0"), "%s", out);
    unlink(data);
    unlink(model);
    unlink(model2);
}

/* Outputs are checked before the work: a long run never loses its model
 * at the end to a --save or --json in a directory that is not there. */
Test(cli, outputs_are_checked_before_training, .timeout = 60)
{
    char dir[] = "/tmp/dpt-out-XXXXXX", args[512], err[4096];
    cr_assert(mkdtemp(dir));
    const char *flags[] = {"--save %s/no/m.dpt", "--json %s/no/r.json", "--trace %s/no/t.csv",
                           "--save %s"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        char flag[256];
        snprintf(flag, sizeof flag, flags[i], dir);
        snprintf(args, sizeof args,
                 "train --synth linreg:n=200000,d=32 --opt gd --lr 0.1 --epochs 1000 %s", flag);
        char out[4096];
        cr_expect_eq(run_dpt_stream(args, out, sizeof out, 1), 1, "%s", flag);
        cr_expect_null(strstr(out, "epoch"), "%s: it trained first: %s", flag, out);
        cr_expect_eq(run_dpt(args, err, sizeof err), 1, "%s", flag);
        cr_expect_eq(lines(err), 1, "%s", err);
        cr_expect(strstr(err, i == 3 ? "a directory" : "does not exist"), "%s", err);
    }
    snprintf(args, sizeof args, "bench --synth linreg:n=1000,d=4 --epochs 1 --json %s/no/b.json",
             dir);
    cr_expect_eq(run_dpt(args, err, sizeof err), 1, "%s", err);
    cr_expect(strstr(err, "--json") && strstr(err, "/no/b.json"), "%s", err);
    cr_expect_null(strstr(err, "running"), "%s", err);
    rmdir(dir);
}

/* --patience stops when the validation loss has not improved for N
 * epochs, and --save-best keeps the model of the best epoch on disk. A
 * 10-64-1 MLP on 60 noisy rows overfits within a few dozen epochs. */
Test(cli, early_stopping_keeps_the_best_epoch, .timeout = 120)
{
    char best[128], args[1024], out[8192];
    static char json[1 << 20];
    tmpname(best, sizeof best, "best.dpt");
    snprintf(args, sizeof args,
             "train --synth teacher-mlp:n=80,d=10,hidden=20,seed=5,noise=0.5 --model mlp "
             "--hidden 64 --opt gd --lr 0.05 --epochs 3000 --val 0.25 --patience 20 --quiet "
             "--threads 2 --save-best %s",
             best);
    cr_assert_eq(run_dpt_json(args, out, sizeof out, json, sizeof json), 0, "%s", out);
    const char *be = strstr(json, "\"best_epoch\": ");
    cr_assert(be, "%s", out);
    int best_epoch = atoi(be + 14);
    cr_expect(strstr(json, "\"stopped_early\": true"), "did not stop early");
    /* the best epoch is the one of least validation loss in the history */
    int epochs = 0, argmin = 0;
    double least = INFINITY;
    for (const char *p = strstr(json, "\"val\": {"); p; p = strstr(p + 1, "\"val\": {")) {
        const char *l = strstr(p, "\"loss\": ");
        double v = atof(l + 8);
        epochs++;
        if (v < least) least = v, argmin = epochs;
    }
    cr_expect_eq(best_epoch, argmin);
    cr_expect_eq(epochs, best_epoch + 20, "stopped %d epochs after the best", epochs - best_epoch);
    cr_expect_lt(epochs, 3000);
    struct stat sb;
    cr_expect_eq(stat(best, &sb), 0, "no --save-best file");
    unlink(best);
    cr_expect_eq(run_dpt("train --synth linreg:n=100 --patience 3", out, sizeof out), 2, "%s", out);
    cr_expect(strstr(out, "--val"), "%s", out);
}

/* A run that diverges leaves a better model in --save alone, saves its
 * last finite model where there was none, and still writes --json with the
 * epochs it had and the reason. */
Test(cli, divergence_never_destroys_a_better_model, .timeout = 120)
{
    char model[128], args[1024], out[8192], json[65536];
    tmpname(model, sizeof model, "good.dpt");
    const char *data = "--synth linreg:n=1000,d=8 --model linear --opt gd --quiet";
    snprintf(args, sizeof args, "train %s --lr 0.1 --epochs 30 --save %s", data, model);
    cr_assert_eq(run_dpt(args, out, sizeof out), 0, "%s", out);
    struct stat before, after;
    cr_assert_eq(stat(model, &before), 0);
    snprintf(args, sizeof args, "train %s --lr 5 --epochs 50 --save %s", data, model);
    cr_expect_eq(run_dpt_json(args, out, sizeof out, json, sizeof json), 1);
    cr_assert_eq(stat(model, &after), 0);
    cr_expect_eq(before.st_ino, after.st_ino, "the better model was replaced");
    cr_expect(strstr(json, "\"diverged\": \"training diverged"), "%s", json);
    cr_expect(strstr(json, "\"epochs\": ["), "%s", json);
    cr_expect(strstr(json, "\"train_loss\""), "%s", json);
    unlink(model);
    snprintf(args, sizeof args, "train %s --lr 5 --epochs 50 --save %s", data, model);
    cr_expect_eq(run_dpt(args, out, sizeof out), 1, "%s", out);
    cr_expect(strstr(out, "saved the last finite model"), "%s", out);
    snprintf(args, sizeof args, "eval --model-file %s --synth linreg:n=1000,d=8", model);
    cr_expect_eq(run_dpt_stream(args, out, sizeof out, 1), 0, "%s", out);
    cr_expect_null(strstr(out, "nan"), "the saved model is not finite: %s", out);
    unlink(model);
}

/* --quiet still says how the run ended, in one line; --init-from without
 * model flags takes the file's architecture; predict on a file without a
 * label column says which flag reads it. */
Test(cli, quiet_result_init_architecture_and_predict_hint, .timeout = 120)
{
    char model[128], data[128], bare[128], args[1024], out[8192];
    tmpname(model, sizeof model, "q.dpt");
    tmpname(data, sizeof data, "q.csv");
    tmpname(bare, sizeof bare, "qx.csv");
    snprintf(args, sizeof args,
             "train --synth teacher-mlp:n=2000,classes=3 --model mlp --hidden 16,8 --loss ce "
             "--opt momentum --batch 32 --epochs 2 --quiet --save %s",
             model);
    cr_assert_eq(run_dpt_stream(args, out, sizeof out, 1), 0, "%s", out);
    cr_expect_eq(lines(out), 1, "%s", out);
    cr_expect(!strncmp(out, "final:  train loss ", 19) && strstr(out, " acc ") &&
                  strstr(out, "2 epochs"),
              "%s", out);
    snprintf(args, sizeof args,
             "train --synth teacher-mlp:n=2000,classes=3 --opt momentum --batch 32 --epochs 1 "
             "--init-from %s --quiet",
             model);
    cr_expect_eq(run_dpt(args, out, sizeof out), 0, "the file's architecture: %s", out);
    snprintf(args, sizeof args,
             "train --synth teacher-mlp:n=2000,classes=3 --model softmax --epochs 1 "
             "--init-from %s --quiet",
             model);
    cr_expect_eq(run_dpt(args, out, sizeof out), 1, "flags that ask for another model: %s", out);
    snprintf(args, sizeof args, "gen --synth linreg:n=50,d=4 --out %s --quiet", data);
    cr_assert_eq(run_dpt(args, out, sizeof out), 0, "%s", out);
    snprintf(args, sizeof args, "train --data %s --epochs 1 --quiet --save %s", data, model);
    cr_assert_eq(run_dpt(args, out, sizeof out), 0, "%s", out);
    snprintf(args, sizeof args, "cut -d, -f1-4 %s > %s", data, bare);
    cr_assert_eq(system(args), 0);
    snprintf(args, sizeof args, "predict --model-file %s --data %s", model, bare);
    cr_expect_eq(run_dpt(args, out, sizeof out), 1, "%s", out);
    cr_expect(strstr(out, "--label-col none"), "%s", out);
    unlink(model);
    unlink(data);
    unlink(bare);
}
