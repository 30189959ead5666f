/* End to end: `dpt bench --predict` through the executable (path in $DPT):
 * a row per thread count on a synthetic server, the JSON's schema, and
 * one-line errors with a non-zero exit for bad targets, machines and
 * machine files; `dpt topo --xml` read back as a target. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

typedef struct run_result {
    int status;
    char *out, *err;
} run_result;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "open %s", path);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (size_t r; (r = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += r;
        if (cap - n < 2) buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static const char *tmpdir(void)
{
    const char *dir = getenv("TMPDIR");
    return dir && *dir ? dir : "/tmp";
}

/* Run "$DPT ARGS" (ARGS shell-quoted already). */
static run_result run(const char *args)
{
    const char *dpt = getenv("DPT");
    cr_assert(dpt && *dpt, "DPT (path of the dpt executable) is not set");
    char out[512], err[512], cmd[4096];
    snprintf(out, sizeof out, "%s/dpt-predict-cli-%d.out", tmpdir(), (int)getpid());
    snprintf(err, sizeof err, "%s/dpt-predict-cli-%d.err", tmpdir(), (int)getpid());
    snprintf(cmd, sizeof cmd, "env -u OMP_PROC_BIND -u OMP_PLACES '%s' %s >'%s' 2>'%s'", dpt, args,
             out, err);
    int st = system(cmd);
    cr_assert(st != -1 && WIFEXITED(st), "could not run: %s", cmd);
    run_result r = {WEXITSTATUS(st), slurp(out), slurp(err)};
    unlink(out);
    unlink(err);
    return r;
}

static void run_free(run_result *r)
{
    free(r->out);
    free(r->err);
}

static int lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* The row of `threads` in the table: a line that starts with the count. */
static int has_row(const char *out, int threads)
{
    for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        int t;
        char pin[32];
        if (sscanf(l, "%d %31s", &t, pin) == 2 && t == threads && strcmp(pin, "threads")) return 1;
    }
    return 0;
}

Test(predict_cli, a_row_per_thread_count, .timeout = 300)
{
    char json[512], args[1024];
    snprintf(json, sizeof json, "%s/dpt-predict-%d.json", tmpdir(), (int)getpid());
    snprintf(args, sizeof args,
             "bench --predict 'pack:2 numa:4 l3:2 core:6' --workload mlp-seed --threads 1,2,4,48 "
             "--reps 2 --json '%s'",
             json);
    run_result r = run(args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    for (int t = 1; t <= 48; t *= 2) {
        if (t == 8) t = 48;
        cr_expect(has_row(r.out, t), "no row for %d threads:\n%s", t, r.out);
    }
    cr_expect(strstr(r.out, "fastest at"), "%s", r.out);
    json_error_t e;
    json_t *root = json_load_file(json, 0, &e);
    cr_assert(root, "%s: %s", json, e.text);
    cr_expect_str_eq(json_string_value(json_object_get(root, "schema")), "dpt-predict/1");
    json_t *rows = json_object_get(root, "rows");
    cr_expect_eq(json_array_size(rows), 4);
    json_t *r48 = json_array_get(rows, 3);
    cr_expect_eq(json_integer_value(json_object_get(r48, "threads")), 48);
    cr_expect_gt(json_real_value(json_object_get(r48, "speedup")), 1);
    cr_expect(json_object_get(json_object_get(r48, "phases"), "compute"));
    json_decref(root);
    unlink(json);
    run_free(&r);
}

/* The default sweep: 1, powers of two, one package's cores (the
 * one-socket point) and all of them, in order. */
Test(predict_cli, default_counts_hold_one_package, .timeout = 300)
{
    run_result r = run("bench --predict 'pack:2 numa:1 core:12' --workload mlp-seed --reps 2");
    cr_assert_eq(r.status, 0, "%s", r.err);
    const int want[] = {1, 2, 4, 8, 12, 16, 24};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect(has_row(r.out, want[i]), "no row for %d threads:\n%s", want[i], r.out);
    cr_expect(!has_row(r.out, 32), "%s", r.out);
    const char *a = strstr(r.out, "\n      8 "), *b = strstr(r.out, "\n     12 "),
               *c = strstr(r.out, "\n     16 ");
    cr_expect(a && b && c && a < b && b < c, "the rows out of order:\n%s", r.out);
    run_free(&r);
}

/* Bad targets and machines: one line, exit 2 (usage) or 1 (a bad file),
 * before any data is made. */
Test(predict_cli, bad_targets_and_machines_are_one_line, .timeout = 60)
{
    static const struct {
        const char *args;
        int status;
        const char *says;
    } cases[] = {
        {"bench --predict nosuch --workload mlp-seed", 2, "is not genoa, spr, this"},
        {"bench --predict 'pack:two core:x' --workload mlp-seed", 2, "--predict"},
        {"bench --predict genoa --machine epyc --workload mlp-seed", 2, "--machine: 'epyc'"},
        {"bench --predict genoa --machine-set warp=9 --workload mlp-seed", 2, "unknown key"},
        {"bench --predict genoa --machine-set link --workload mlp-seed", 2, "KEY=VALUE"},
        {"bench --predict genoa --workload mlp-seed --threads 0", 2, "--threads"},
        {"bench --predict genoa --workload nosuch", 2, "--workload"},
        {"bench --machine spr --workload mlp-seed", 2, "needs --predict"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_result r = run(cases[i].args);
        cr_expect_eq(r.status, cases[i].status, "%s: %d\n%s", cases[i].args, r.status, r.err);
        cr_expect(strstr(r.err, cases[i].says), "%s:\n%s", cases[i].args, r.err);
        cr_expect_eq(lines(r.err), 1, "%s:\n%s", cases[i].args, r.err);
        cr_expect(!strncmp(r.err, "dpt bench: ", 11), "%s", r.err);
        run_free(&r);
    }
    /* a machine file with a bad line: its name and line */
    char path[512], args[1024];
    snprintf(path, sizeof path, "%s/dpt-machine-%d.txt", tmpdir(), (int)getpid());
    FILE *f = fopen(path, "w");
    fputs("link = 100\nbw_l3 = -4\n", f);
    fclose(f);
    snprintf(args, sizeof args, "bench --predict genoa --machine '%s' --workload mlp-seed", path);
    run_result r = run(args);
    char want[600];
    snprintf(want, sizeof want, "%s:2: ", path);
    cr_expect_eq(r.status, 1, "%s", r.err);
    cr_expect(strstr(r.err, want), "%s", r.err);
    cr_expect_eq(lines(r.err), 1, "%s", r.err);
    unlink(path);
    run_free(&r);
}

/* A topology exported as XML is a target. */
Test(predict_cli, topo_xml_round_trip, .timeout = 60)
{
    char path[512], args[1024];
    snprintf(path, sizeof path, "%s/dpt-topo-%d.xml", tmpdir(), (int)getpid());
    snprintf(args, sizeof args,
             "topo --topology 'pack:2 numa:2 core:3 pu:2' --threads 1 --xml '%s'", path);
    run_result r = run(args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    snprintf(args, sizeof args, "topo --topology-xml '%s' --threads 1", path);
    r = run(args);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "2 packages, 4 NUMA nodes, 12 cores, 24 PUs"), "%s", r.out);
    run_free(&r);
    unlink(path);
}
