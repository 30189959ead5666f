/* End to end: the dpt executable (path in $DPT, set by meson) run as
 * `dpt topo` on synthetic topologies; JSON checked with jansson, exit
 * statuses and one-line errors checked for bad flags and topologies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <hwloc.h>
#include <jansson.h>

typedef struct run_result {
    int status;
    char *out; /* stdout, NUL-terminated */
    char *err; /* stderr */
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

/* Run "$DPT topo ARGS" (ARGS already shell-quoted). */
static run_result run_topo(const char *args)
{
    const char *dpt = getenv("DPT");
    cr_assert(dpt && *dpt, "DPT (path of the dpt executable) is not set");
    const char *dir = getenv("TMPDIR");
    char out[512], err[512], cmd[2048];
    snprintf(out, sizeof out, "%s/dpt-topo-cli-%d.out", dir && *dir ? dir : "/tmp", (int)getpid());
    snprintf(err, sizeof err, "%s/dpt-topo-cli-%d.err", dir && *dir ? dir : "/tmp", (int)getpid());
    snprintf(cmd, sizeof cmd, "env -u OMP_PROC_BIND -u OMP_PLACES '%s' topo %s >'%s' 2>'%s'", dpt,
             args, out, err);
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

/* The message is one line: text, then exactly one newline, at the end. */
static void expect_one_line(const run_result *r, const char *needle)
{
    size_t n = strlen(r->err);
    cr_assert(n > 1 && r->err[n - 1] == '\n' && !memchr(r->err, '\n', n - 1),
              "stderr is not one line: '%s'", r->err);
    cr_assert(strncmp(r->err, "dpt topo: ", 10) == 0, "stderr: %s", r->err);
    if (needle) cr_assert(strstr(r->err, needle), "stderr lacks '%s': %s", needle, r->err);
    cr_assert_str_empty(r->out, "nothing on stdout on error: %s", r->out);
}

static json_t *parse_json(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    cr_assert(j, "stdout is not one JSON document (%s at line %d): %s", e.text, e.line, text);
    return j;
}

static long jget(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    cr_assert(json_is_integer(v), "'%s' is not an integer", key);
    return (long)json_integer_value(v);
}

Test(topo_cli, json_scatter)
{
    run_result r =
        run_topo("--topology 'pack:2 numa:4 core:24 pu:2' --threads 10 --pin scatter --json");
    cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
    cr_assert_str_empty(r.err);
    json_t *j = parse_json(r.out);
    json_t *m = json_object_get(j, "machine");
    cr_assert(json_is_object(m));
    cr_assert_eq(jget(m, "packages"), 2);
    cr_assert_eq(jget(m, "numa_nodes"), 8);
    cr_assert_eq(jget(m, "cores"), 192);
    cr_assert_eq(jget(m, "pus"), 384);
    json_t *plan = json_object_get(j, "plan");
    cr_assert(json_is_array(plan));
    cr_assert_eq(json_array_size(plan), 10);
    static const long numa[10] = {0, 4, 1, 5, 2, 6, 3, 7, 0, 4};
    static const long core[10] = {0, 96, 24, 120, 48, 144, 72, 168, 1, 97};
    for (size_t i = 0; i < 10; i++) {
        json_t *e = json_array_get(plan, i);
        cr_assert_eq(jget(e, "thread"), (long)i);
        cr_assert_eq(jget(e, "pu"), 2 * core[i]);
        cr_assert_eq(jget(e, "core"), core[i]);
        cr_assert_eq(jget(e, "numa"), numa[i]);
        cr_assert_eq(jget(e, "package"), (long)(i % 2));
    }
    json_decref(j);
    run_free(&r);
}

/* Through the executable: scatter spreads 8 threads over 8 L3s, numa puts
 * 4 threads on two nodes of each package. */
Test(topo_cli, json_scatter_l3_numa_packages)
{
    run_result r =
        run_topo("--topology 'pack:2 numa:4 l3:2 core:6 pu:1' --threads 8 --pin scatter --json");
    cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
    json_t *j = parse_json(r.out);
    json_t *plan = json_object_get(j, "plan");
    cr_assert_eq(json_array_size(plan), 8);
    static const long core[8] = {0, 48, 12, 60, 24, 72, 36, 84}; /* L3 2n of node n */
    for (size_t i = 0; i < 8; i++) {
        json_t *e = json_array_get(plan, i);
        cr_assert_eq(jget(e, "core"), core[i], "thread %zu", i);
        cr_assert_eq(jget(e, "numa"), core[i] / 12, "thread %zu", i);
    }
    json_decref(j);
    run_free(&r);

    r = run_topo("--topology 'pack:2 numa:4 core:6 pu:1' --threads 4 --pin numa --json");
    cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
    j = parse_json(r.out);
    plan = json_object_get(j, "plan");
    static const long numa[4] = {0, 1, 4, 5};
    for (size_t i = 0; i < 4; i++) {
        json_t *e = json_array_get(plan, i);
        cr_assert_eq(jget(e, "numa"), numa[i], "thread %zu", i);
        cr_assert_eq(jget(e, "package"), (long)(i / 2), "thread %zu", i);
    }
    json_decref(j);
    run_free(&r);
}

/* Default thread count: one per core of the topology shown. */
Test(topo_cli, json_defaults)
{
    run_result r = run_topo("--topology 'pack:4 numa:6 core:8 pu:1' --json");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    json_t *j = parse_json(r.out);
    json_t *plan = json_object_get(j, "plan");
    cr_assert_eq(json_array_size(plan), 192);
    for (size_t i = 0; i < 192; i++) /* compact */
        cr_assert_eq(jget(json_array_get(plan, i), "core"), (long)i);
    cr_assert_str_eq(json_string_value(json_object_get(j, "pin")), "compact");
    json_decref(j);
    run_free(&r);
}

Test(topo_cli, json_numa_smt_oversubscribed)
{
    run_result r =
        run_topo("--topology 'pack:2 numa:12 core:8 pu:2' --threads 400 --pin numa --smt --json");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    json_t *j = parse_json(r.out);
    json_t *plan = json_object_get(j, "plan");
    cr_assert_eq(json_array_size(plan), 400);
    int shared = 0;
    for (size_t i = 0; i < 400; i++) {
        json_t *e = json_array_get(plan, i);
        shared += json_is_true(json_object_get(e, "shared"));
        /* 400 = 24 nodes x 16 PUs + 16: 200 per package of 12 nodes, so
         * nodes 0-7 and 12-19 get 17 threads, the others 16 */
        size_t k = i % 200, local = k < 8 * 17 ? k / 17 : 8 + (k - 8 * 17) / 16;
        long want = (long)((i / 200) * 12 + local);
        cr_assert_eq(jget(e, "numa"), want, "thread %zu", i);
    }
    cr_assert_eq(shared, 32);
    json_decref(j);
    run_free(&r);
}

Test(topo_cli, json_none)
{
    run_result r =
        run_topo("--topology 'pack:2 numa:4 core:24 pu:2' --threads 3 --pin none --json");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    json_t *j = parse_json(r.out);
    json_t *plan = json_object_get(j, "plan");
    cr_assert_eq(json_array_size(plan), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(plan, i);
        cr_assert_eq(jget(e, "thread"), (long)i);
        cr_assert(json_is_null(json_object_get(e, "pu")));
        cr_assert(json_is_null(json_object_get(e, "core")));
        cr_assert(json_is_null(json_object_get(e, "numa")));
        cr_assert(json_is_null(json_object_get(e, "package")));
    }
    json_decref(j);
    run_free(&r);
}

Test(topo_cli, json_xml)
{
    const char *dir = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/dpt-topo-cli-%d.xml", dir && *dir ? dir : "/tmp",
             (int)getpid());
    hwloc_topology_t h;
    cr_assert_eq(hwloc_topology_init(&h), 0);
    cr_assert_eq(hwloc_topology_set_synthetic(h, "pack:4 numa:2 core:4 pu:2"), 0);
    cr_assert_eq(hwloc_topology_load(h), 0);
    cr_assert_eq(hwloc_topology_export_xml(h, path, 0), 0);
    hwloc_topology_destroy(h);
    char args[700];
    snprintf(args, sizeof args, "--topology-xml '%s' --threads 4 --pin scatter --json", path);
    run_result r = run_topo(args);
    unlink(path);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    json_t *j = parse_json(r.out);
    cr_assert_eq(jget(json_object_get(j, "machine"), "numa_nodes"), 8);
    json_t *plan = json_object_get(j, "plan");
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(jget(json_array_get(plan, i), "package"), (long)i);
        cr_assert_eq(jget(json_array_get(plan, i), "core"), 8 * (long)i);
    }
    json_decref(j);
    run_free(&r);
}

/* --split layer shows the layer split's groups: two 56-core sockets,
 * compact, 112 threads: 14 groups, summed per package first; scattered
 * over the sockets, the two whole domains. */
Test(topo_cli, json_split_layer)
{
    run_result r =
        run_topo("--topology 'pack:2 numa:1 core:56 pu:2' --threads 112 --split layer --json");
    cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
    json_t *j = parse_json(r.out), *d = json_object_get(j, "domains");
    cr_assert_eq(jget(d, "count"), 14);
    cr_assert(json_is_true(json_object_get(d, "groups")));
    cr_assert(json_is_true(json_object_get(d, "package_level")));
    json_t *plan = json_object_get(j, "plan");
    cr_assert_eq(jget(json_array_get(plan, 111), "domain"), 13);
    json_decref(j);
    run_free(&r);
    r = run_topo("--topology 'pack:2 numa:1 core:56 pu:2' --threads 112 --split layer --pin "
                 "scatter --json");
    cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
    j = parse_json(r.out);
    d = json_object_get(j, "domains");
    cr_assert_eq(jget(d, "count"), 2);
    cr_assert(json_is_false(json_object_get(d, "groups")));
    json_decref(j);
    run_free(&r);
    /* without a model there is no auto */
    r = run_topo("--split auto");
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "--split") && strstr(r.err, "data, layer"), "%s", r.err);
    run_free(&r);
}

Test(topo_cli, text)
{
    run_result r = run_topo("--topology 'pack:2 numa:4 core:24 pu:2' --threads 2 --pin scatter");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert(strstr(r.out, "2 packages, 8 NUMA nodes, 192 cores, 384 PUs"), "%s", r.out);
    cr_assert(strstr(r.out, "--pin scatter"), "%s", r.out);
    run_free(&r);
    r = run_topo("--help");
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "--topology-xml"), "%s", r.out);
    run_free(&r);
}

Test(topo_cli, bad_flags_exit_2)
{
    static const struct {
        const char *args, *needle;
    } cases[] = {
        {"--frobnicate", "--frobnicate"},
        {"--threads 0", "--threads"},
        {"--threads abc", "--threads"},
        {"--threads", "--threads"},
        {"--pin spread", "compact, scatter, numa, none, list:"},
        {"--pin list:4-1", "4-1"},
        {"--topology 'pack:2 numa:4 core:24 pu:2' --pin list:0,384", "384"},
        {"--topology 'pack:2 pu:2' --topology-xml x.xml", "--topology-xml"},
        {"stray", "stray"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_result r = run_topo(cases[i].args);
        cr_assert_eq(r.status, 2, "'%s': exit %d, stderr: %s", cases[i].args, r.status, r.err);
        expect_one_line(&r, cases[i].needle);
        run_free(&r);
    }
}

Test(topo_cli, bad_topology_exit_1)
{
    static const struct {
        const char *args, *needle;
    } cases[] = {
        {"--topology 'pack:2 numa:x pu:2'", "pack:2 numa:x pu:2"},
        {"--topology bogus", "bogus"},
        {"--topology-xml /nonexistent/topo.xml", "/nonexistent/topo.xml"},
        {"--topology-xml /dev/null", "/dev/null"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_result r = run_topo(cases[i].args);
        cr_assert_eq(r.status, 1, "'%s': exit %d, stderr: %s", cases[i].args, r.status, r.err);
        expect_one_line(&r, cases[i].needle);
        run_free(&r);
    }
}
