/* dpt gen and dpt convert end to end: round trips through every format,
 * and bad data or flags give one line on stderr, the right exit status and
 * no output file. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdarg.h>
#include <sys/wait.h>

#include "util.h"

static void teardown(void)
{
    rm_tdir();
}
TestSuite(data_cli, .fini = teardown);

static char err[4096];

/* Run "dpt ARGS" in the test directory; stderr lands in err. */
static int dpt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int dpt(const char *fmt, ...)
{
    const char *exe = getenv("DPT_EXE");
    cr_assert(exe, "DPT_EXE is not set");
    char args[2048], cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>&1 >/dev/null", tdir(), exe, args);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    size_t n = fread(err, 1, sizeof err - 1, p);
    err[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char out[1 << 16];

/* Run a shell script in the test directory with $DPT naming the
 * executable; its stdout and stderr land in out. Returns the exit status. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    const char *exe = getenv("DPT_EXE");
    cr_assert(exe, "DPT_EXE is not set");
    char script[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(script, sizeof script, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && DPT='%s' && export DPT && { %s ; } 2>&1", tdir(), exe,
             script);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static char *slurp(const char *name, size_t *len)
{
    FILE *f = fopen(tpath(name), "rb");
    cr_assert(f, "missing %s", name);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    char *b = malloc(*len + 1);
    cr_assert_eq(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void assert_same_file(const char *a, const char *b)
{
    size_t la, lb;
    char *x = slurp(a, &la), *y = slurp(b, &lb);
    cr_assert_eq(la, lb, "%s and %s differ in size", a, b);
    cr_assert_eq(memcmp(x, y, la), 0, "%s and %s differ", a, b);
    free(x);
    free(y);
}

Test(data_cli, gen_convert_round_trip)
{
    cr_assert_eq(dpt("gen --synth logreg:n=2000,d=13,seed=5 --out a.csv --quiet"), 0, "%s", err);
    cr_assert_eq(dpt("convert a.csv b.dptb --quiet"), 0, "%s", err);
    cr_assert_eq(dpt("convert b.dptb c.svm --quiet"), 0, "%s", err);
    cr_assert_eq(dpt("convert c.svm d.csv --quiet"), 0, "%s", err);
    assert_same_file("a.csv", "d.csv");
    cr_assert_eq(dpt("gen --synth logreg:n=2000,d=13,seed=5 --out e.dptb --quiet"), 0, "%s", err);
    assert_same_file("b.dptb", "e.dptb");
    cr_assert_eq(dpt("convert e.dptb f.txt --to csv --out-delimiter ';' --out-header no"), 0, "%s",
                 err);
    cr_assert(strstr(err, "wrote 2000 rows x 13 features to f.txt (csv"), "%s", err);
    cr_assert_eq(dpt("convert f.txt g.dptb --delimiter ';' --header no --quiet"), 0, "%s", err);
    assert_same_file("b.dptb", "g.dptb");
}

/* gen --workload: the bytes dpt trains on, the same as the workload's --synth */
Test(data_cli, gen_workload_is_the_workloads_data, .timeout = 60)
{
    cr_assert_eq(dpt("gen --workload mlp-seed --out w.dptb --threads 2"), 0, "%s", err);
    cr_assert(strstr(err, "wrote 1000000 rows x 10 features to w.dptb"), "%s", err);
    cr_assert_eq(dpt("gen --synth teacher-mlp:n=1000000,d=10,hidden=20,seed=3,noise=0.01 --out "
                     "s.dptb --quiet"),
                 0, "%s", err);
    assert_same_file("w.dptb", "s.dptb");
}

Test(data_cli, convert_idx_fashion_mnist, .timeout = 120)
{
    const char *fm = "/usr/share/datasets/fashion-mnist";
    cr_assert_eq(dpt("convert %s/t10k-images-idx3-ubyte.gz --labels %s/t10k-labels-idx1-ubyte.gz "
                     "t.dptb --quiet",
                     fm, fm),
                 0, "%s", err);
    dpt_dataset ds;
    cr_assert_eq(dpt_load(tpath("t.dptb"), NULL, &ds), 0, "%s", dpt_last_error());
    cr_assert_eq(ds.n, 10000);
    cr_assert_eq(ds.d, 784);
    cr_assert_eq(ds.classes, 10);
    dpt_dataset_free(&ds);
}

struct bad_data {
    char file[16];
    char text[64];
    char args[96];
    char frag[64];
};

ParameterizedTestParameters(data_cli, bad_data)
{
    static struct bad_data cases[] = {
        {"b.csv", "1,2\n3,x\n", "convert b.csv out.dptb", "b.csv:2:3: field 2: 'x'"},
        {"b.csv", "", "convert b.csv out.dptb", "b.csv: empty file"},
        {"b.svm", "1 0:3\n", "convert b.svm out.dptb", "b.svm:1:3: index 0"},
        {"b.dptb", "DPTB\r\n\x1a\nxx", "convert b.dptb out.csv", "b.dptb: truncated"},
        {"b.idx", "\x01\x02\x03\x04", "convert b.idx out.csv", "b.idx: not an IDX file"},
        {"b.csv", "1,2\n", "convert missing.csv out.dptb", "missing.csv: No such file"},
        {"b.csv", "1,2\n", "convert . out.dptb", ".: is a directory"},
        {"b.csv", "1,2\n", "convert b.csv --labels b.csv out.dptb", "b.csv: not an IDX file"},
    };
    return cr_make_param_array(struct bad_data, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct bad_data *c, data_cli, bad_data)
{
    write_text(c->file, c->text);
    int rc = dpt("%s", c->args);
    cr_assert_eq(rc, 1, "'%s': exit %d (%s)", c->args, rc, err);
    cr_assert(strstr(err, c->frag), "'%s': stderr '%s' lacks '%s'", c->args, err, c->frag);
    cr_assert(!strncmp(err, "dpt convert: ", 13), "%s", err);
    cr_assert_eq(lines(err), 1, "'%s': more than one line: %s", c->args, err);
    cr_assert(!file_exists(tpath("out.dptb")) && !file_exists(tpath("out.csv")),
              "an output file was left behind");
}

struct bad_flag {
    char args[96];
    char frag[80];
};

ParameterizedTestParameters(data_cli, bad_flags)
{
    static struct bad_flag cases[] = {
        {"gen --out x.csv", "--synth"},
        {"gen --workload nope --out x.csv", "no workload 'nope' (allowed: linreg"},
        {"gen --workload linreg --synth linreg --out x.csv", "one of --synth"},
        {"gen --synth linreg", "--out"},
        {"gen --synth nope --out x.csv", "unknown kind 'nope'"},
        {"gen --synth linreg:n=0 --out x.csv", "n=0"},
        {"gen --synth linreg --out x.bin", "cannot tell the output format"},
        {"gen --synth linreg --out x.csv --format xml", "--format: 'xml' is not one of: csv"},
        {"gen --synth linreg --out x.csv --header maybe", "--header: 'maybe'"},
        {"gen --synth linreg --out x.csv --delimiter ab", "--delimiter: 'ab'"},
        {"gen --synth linreg --out x.idx", "writing IDX is not supported"},
        {"gen --synth linreg --out x.csv --threads 0", "--threads"},
        {"gen --synth linreg --out x.csv extra", "unexpected argument 'extra'"},
        {"gen --synth linreg --out x.csv --bogus", "unknown flag '--bogus'"},
        {"convert a.csv", "needs two arguments"},
        {"convert a.csv b.csv c.csv", "needs two arguments"},
        {"convert a.csv b.csv --format parquet", "--format: 'parquet'"},
        {"convert a.csv b.csv --label-col 0", "--label-col: '0'"},
        {"convert a.csv b.csv --header sometimes", "--header: 'sometimes'"},
        {"convert a.csv b.csv --features -3", "--features"},
        {"convert a.csv b.csv --delimiter 5", "--delimiter: '5'"},
        {"convert a.csv b.csv --to idx", "--to: 'idx'"},
        {"convert a.csv b.csv --val 0.5", "unknown flag '--val'"},
        {"convert a.csv b.csv --format csv --labels l.idx", "--labels applies to IDX"},
        {"convert a.svm b.csv --label-col 1", "--label-col applies to CSV data only"},
        {"convert a.dptb b.csv --header no", "--header applies to CSV data only"},
        {"convert a.csv b.dptb --format idx --delimiter ';'", "--delimiter applies to CSV"},
    };
    return cr_make_param_array(struct bad_flag, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct bad_flag *c, data_cli, bad_flags)
{
    int rc = dpt("%s", c->args);
    cr_assert_eq(rc, 2, "'%s': exit %d (%s)", c->args, rc, err);
    cr_assert(strstr(err, c->frag), "'%s': stderr '%s' lacks '%s'", c->args, err, c->frag);
    cr_assert_eq(lines(err), 1, "'%s': more than one line: %s", c->args, err);
}

/* Huge svmlight indices: the dense rows would not fit; refused up front. */
Test(data_cli, too_large_for_memory)
{
    FILE *f = fopen(tpath("huge.svm"), "w");
    for (int i = 0; i < 1000; i++) fprintf(f, "1 2147483647:1\n");
    fclose(f);
    cr_assert_eq(dpt("convert huge.svm out.dptb"), 1, "%s", err);
    cr_assert(strstr(err, "huge.svm: 1000 rows x 2147483647 features need 8589.9 GB as dense "
                          "float32; "),
              "%s", err);
    cr_assert_eq(lines(err), 1);
    cr_assert(!file_exists(tpath("out.dptb")));
}

Test(data_cli, help)
{
    cr_assert_eq(dpt("gen --help"), 0);
    cr_assert_eq(dpt("convert --help"), 0);
}

/* Labels the model has no output for: the loss kernels would index past
 * their rows (a heap overflow in softmax-CE), so eval refuses them. */
Test(data_cli, eval_checks_labels_against_the_model, .timeout = 120)
{
    cr_assert_eq(dpt("gen --synth teacher-mlp:n=300,d=4,classes=3 --out soft.csv --quiet"), 0, "%s",
                 err);
    cr_assert_eq(dpt("train --data soft.csv --model softmax --epochs 2 --save sm.dpt"), 0, "%s",
                 err);
    cr_assert_eq(dpt("gen --synth logreg:n=300,d=4 --out bin.csv --quiet"), 0, "%s", err);
    cr_assert_eq(dpt("train --data bin.csv --model logistic --epochs 2 --save lg.dpt"), 0, "%s",
                 err);
    write_text("bad.csv", "x1,x2,x3,x4,y\n1,2,3,4,0\n1,2,3,4,2000000000\n");
    write_text("three.csv", "x1,x2,x3,x4,y\n1,2,3,4,3\n");
    write_text("real.csv", "x1,x2,x3,x4,y\n1,2,3,4,0\n1,2,3,4,0.5\n");
    write_text("two.csv", "x1,x2,x3,x4,y\n1,2,3,4,2\n");
    static const struct {
        const char *model, *data, *frag;
    } cases[] = {
        {"sm.dpt", "bad.csv", "bad.csv: row 2: class id 2000000000"},
        {"sm.dpt", "three.csv", "three.csv: row 1: class id 3"},
        {"sm.dpt", "real.csv", "real.csv: row 2: label 0.5"},
        {"lg.dpt", "two.csv", "two.csv: row 1: label 2 is not 0 or 1"},
        {"lg.dpt", "real.csv", "real.csv: row 2: label 0.5 is not 0 or 1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        for (int pr = 0; pr < 2; pr++) {
            const char *cmd = pr ? "predict" : "eval";
            int rc = dpt("%s --model-file %s --data %s", cmd, cases[i].model, cases[i].data);
            cr_assert_eq(rc, 1, "%s %s on %s: exit %d (%s)", cmd, cases[i].model, cases[i].data, rc,
                         err);
            cr_assert(strstr(err, cases[i].frag), "'%s' lacks '%s'", err, cases[i].frag);
            cr_assert(!strncmp(err, "dpt ", 4) && lines(err) == 1, "%s", err);
        }
    }
    /* standard input is named as the loaders name it */
    int rc = sh("\"$DPT\" eval --model-file sm.dpt --data - < bad.csv 2>&1 >/dev/null");
    cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
    cr_assert(strstr(out, "dpt eval: <stdin>: row 2: class id 2000000000"), "%s", out);
    /* labels in range still evaluate */
    write_text("ok.csv", "x1,x2,x3,x4,y\n1,2,3,4,2\n1,2,3,4,0\n");
    cr_assert_eq(dpt("eval --model-file sm.dpt --data ok.csv"), 0, "%s", err);
}

/* A stray OMP_NUM_THREADS overflowed libgomp's stack (100000) or hung
 * (20000): the default team is bounded like --threads. */
Test(data_cli, huge_omp_num_threads_is_capped, .timeout = 120)
{
    int rc = sh("OMP_NUM_THREADS=100000 \"$DPT\" gen --synth linreg:n=100,d=4 --out x.csv --quiet "
                "&& OMP_NUM_THREADS=100000 \"$DPT\" convert x.csv y.csv --quiet "
                "&& OMP_NUM_THREADS=30000 \"$DPT\" convert x.csv z.dptb --quiet");
    cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
    assert_same_file("x.csv", "y.csv");
}

/* A pipe can be read once: the format was sniffed from its first 4 kB,
 * which the loader then never saw (144 of 400 rows, exit 0), and a FIFO
 * blocked forever on the second open. */
Test(data_cli, pipes_and_fifos_lose_no_rows, .timeout = 60)
{
    cr_assert_eq(dpt("gen --synth linreg:n=400,d=5,seed=3 --out f.csv --quiet"), 0, "%s", err);
    cr_assert_eq(dpt("convert f.csv file.dptb --quiet"), 0, "%s", err);
    int rc = sh("cat f.csv | \"$DPT\" convert - stdin.dptb --quiet");
    cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
    assert_same_file("file.dptb", "stdin.dptb");
    rc = sh("cat f.csv | \"$DPT\" convert /dev/stdin devstdin.dptb --quiet");
    cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
    assert_same_file("file.dptb", "devstdin.dptb");
    rc = sh("mkfifo p.fifo && { cat f.csv > p.fifo & } && \"$DPT\" convert p.fifo fifo.dptb "
            "--quiet");
    cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
    assert_same_file("file.dptb", "fifo.dptb");
    /* svmlight is sniffed from the same bytes */
    cr_assert_eq(dpt("convert f.csv f.svm --quiet"), 0, "%s", err);
    rc = sh("cat f.svm | \"$DPT\" convert - svm.dptb --quiet");
    cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
    assert_same_file("file.dptb", "svm.dptb");
    /* training sees every row, and the same ones */
    rc = sh("\"$DPT\" train --data f.csv --epochs 2 --threads 1 --seed 1 2>&1 | grep final");
    cr_assert_eq(rc, 0, "%s", out);
    /* the losses, before the throughput */
    char from_file[512];
    size_t len = strlen(out) < sizeof from_file ? strlen(out) : sizeof from_file - 1;
    memcpy(from_file, out, len);
    from_file[len] = '\0';
    char *cut = strchr(from_file, '|');
    cr_assert(cut, "%s", from_file);
    rc = sh("cat f.csv | \"$DPT\" train --data - --epochs 2 --threads 1 --seed 1 2>&1");
    cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
    cr_assert(strstr(out, "| 400 rows x 5 |"), "%s", out);
    cr_assert(strstr(out, "final:"), "%s", out);
    cr_assert(!strncmp(strstr(out, "final:"), from_file, (size_t)(cut - from_file)), "'%s' vs '%s'",
              out, from_file);
    /* the binary formats need a file, and say so */
    rc = sh("cat file.dptb | \"$DPT\" convert - x.csv");
    cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
    cr_assert(strstr(out, "dpt convert: <stdin>: dptb data is read from a regular file only"), "%s",
              out);
    cr_assert(!file_exists(tpath("x.csv")));
}

/* An endless stream (like /dev/zero or /dev/urandom) was read until memory
 * ran out: binary bytes are refused after the first block, and a line that
 * never ends after 64 MiB. */
Test(data_cli, endless_streams_end, .timeout = 60)
{
    int rc = sh("yes '' | tr '\\n' '\\000' | \"$DPT\" convert - x.dptb");
    cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
    cr_assert(
        strstr(out, "dpt convert: <stdin>: binary data, not CSV text (byte 0x00 at offset 0)"),
        "%s", out);
    cr_assert_eq(lines(out), 1, "%s", out);
    rc = sh("yes 1 | tr -d '\\n' | \"$DPT\" convert - x.dptb");
    cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
    cr_assert(strstr(out, "dpt convert: <stdin>:1: line longer than 64 MiB"), "%s", out);
    cr_assert_eq(lines(out), 1, "%s", out);
    cr_assert(!file_exists(tpath("x.dptb")));
}

/* dpt train needs labels; dpt predict does not. */
Test(data_cli, train_refuses_data_without_labels, .timeout = 60)
{
    cr_assert_eq(dpt("gen --synth linreg:n=50,d=3 --out a.csv --quiet"), 0, "%s", err);
    int rc = dpt("train --data a.csv --label-col none --epochs 1");
    cr_assert_eq(rc, 2, "exit %d: %s", rc, err);
    cr_assert(strstr(err, "dpt train: --label-col none leaves dpt train no labels"), "%s", err);
    cr_assert_eq(lines(err), 1, "%s", err);
    rc = dpt("train --data a.csv --test t10k-images-idx3-ubyte --epochs 1");
    cr_assert_eq(rc, 2, "exit %d: %s", rc, err);
    cr_assert(strstr(err, "give --test-labels FILE"), "%s", err);
    cr_assert_eq(dpt("train --data a.csv --epochs 1 --save m.dpt"), 0, "%s", err);
    rc = dpt("eval --model-file m.dpt --data a.csv --label-col none");
    cr_assert_eq(rc, 2, "exit %d: %s", rc, err);
    write_text("x.csv", "1,2,3\n4,5,6\n");
    cr_assert_eq(dpt("predict --model-file m.dpt --data x.csv --label-col none"), 0, "%s", err);
}

/* The CLI adds the flag that fixes what the library describes. */
Test(data_cli, flag_hints_come_from_the_cli)
{
    write_text("h.csv", "x1,x2,y\n1,2,3\n");
    write_text("s.csv", "1;2;3\n4;5;6\n");
    write_text("n.svm", "1\n0\n");
    static const struct {
        const char *args, *frag;
    } cases[] = {
        {"convert h.csv o.dptb --header no",
         "dpt convert: h.csv:1:1: field 1: 'x1' is not a number (line 1 may be a header) (pass "
         "--header yes)"},
        {"convert s.csv o.dptb", "not ',' (pass --delimiter)"},
        {"convert n.svm o.dptb", "no feature count was given (give --features)"},
        {"gen --synth linreg:q=1 --out o.csv", "dpt gen: --synth: unknown key 'q'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = dpt("%s", cases[i].args);
        cr_assert(rc == 1 || rc == 2, "'%s': exit %d (%s)", cases[i].args, rc, err);
        cr_assert(strstr(err, cases[i].frag), "'%s': '%s' lacks '%s'", cases[i].args, err,
                  cases[i].frag);
        cr_assert_eq(lines(err), 1, "%s", err);
    }
}
