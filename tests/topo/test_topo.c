/* Pinning plans on synthetic topologies of large servers (2 and 4 packages,
 * 8-24 NUMA nodes, SMT on and off), uneven topologies made by restricting
 * them, pin-spec parsing, and the error paths. Nothing here depends on the
 * machine running the tests, except the smoke tests at the end, which accept
 * any machine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <math.h>

#include "dpt/error.h"
#include "dpt/model.h"
#include "dpt/topo.h"

/* The servers: "pack:P numa:N core:C pu:S" (N NUMA nodes per package, C cores
 * per node, S PUs per core). */
typedef struct server {
    const char *desc;
    int P, N, C, S;
} server;

static const server servers[] = {
    {"pack:2 numa:4 core:24 pu:2", 2, 4, 24, 2}, /* 2 x 96 cores, SNC4, SMT */
    {"pack:2 numa:4 core:24 pu:1", 2, 4, 24, 1}, /* same, SMT off */
    {"pack:4 numa:6 core:8 pu:1", 4, 6, 8, 1},   /* 4 packages, 24 nodes */
    {"pack:2 numa:12 core:8 pu:2", 2, 12, 8, 2}, /* 24 nodes, SMT */
    {"pack:2 numa:8 core:16 pu:2", 2, 8, 16, 2}, /* 16 nodes */
    {"pack:4 numa:2 core:16 pu:4", 4, 2, 16, 4}, /* SMT4 */
};
#define NSERVERS (int)(sizeof servers / sizeof servers[0])

static dpt_topo *open_synth(const char *desc)
{
    dpt_topo *t = NULL;
    int rc = dpt_topo_open(&t, desc, NULL);
    cr_assert_eq(rc, 0, "open '%s': %s", desc, dpt_last_error());
    return t;
}

static dpt_place *plan(const dpt_topo *t, int n, const char *pin, int smt)
{
    dpt_pin_spec spec;
    cr_assert_eq(dpt_pin_parse(pin, &spec), 0, "parse '%s': %s", pin, dpt_last_error());
    spec.smt = smt;
    dpt_place *out = calloc((size_t)n, sizeof *out);
    cr_assert(out);
    int rc = dpt_topo_plan(t, n, &spec, out);
    cr_assert_eq(rc, 0, "plan %s x%d: %s", pin, n, dpt_last_error());
    dpt_pin_spec_free(&spec);
    return out;
}

static void expect_pus(const dpt_topo *t, const char *pin, int smt, int n, const int *want)
{
    dpt_place *p = plan(t, n, pin, smt);
    for (int i = 0; i < n; i++)
        cr_assert_eq(p[i].pu, want[i], "%s smt=%d thread %d: pu %d, want %d", pin, smt, i, p[i].pu,
                     want[i]);
    free(p);
}

/* Place of core `core` (global logical index), SMT rank r, on server s. */
static void expect_core(const server *s, const dpt_place *p, int core, int r, const char *what)
{
    int node = core / s->C;
    cr_assert_eq(p->core, core, "%s %s thread %d: core %d, want %d", s->desc, what, p->thread,
                 p->core, core);
    cr_assert_eq(p->pu, core * s->S + r, "%s %s thread %d: pu %d, want %d", s->desc, what,
                 p->thread, p->pu, core * s->S + r);
    cr_assert_eq(p->numa, node, "%s %s thread %d: numa %d, want %d", s->desc, what, p->thread,
                 p->numa, node);
    cr_assert_eq(p->package, node / s->N, "%s %s thread %d: package %d, want %d", s->desc, what,
                 p->thread, p->package, node / s->N);
    cr_assert_eq(p->os_pu, (unsigned)p->pu, "synthetic OS index = logical index");
}

Test(topo, counts)
{
    for (int k = 0; k < NSERVERS; k++) {
        const server *s = &servers[k];
        dpt_topo *t = open_synth(s->desc);
        cr_assert_eq(dpt_topo_count(t, HWLOC_OBJ_PACKAGE), s->P, "%s", s->desc);
        cr_assert_eq(dpt_topo_count(t, HWLOC_OBJ_NUMANODE), s->P * s->N, "%s", s->desc);
        cr_assert_eq(dpt_topo_count(t, HWLOC_OBJ_CORE), s->P * s->N * s->C, "%s", s->desc);
        cr_assert_eq(dpt_topo_count(t, HWLOC_OBJ_PU), s->P * s->N * s->C * s->S, "%s", s->desc);
        cr_assert_eq(dpt_topo_is_this_machine(t), 0);
        cr_assert(dpt_topo_hwloc(t) != NULL);
        dpt_topo_close(t);
    }
}

/* compact: thread i on core i; with --smt, once every core has a thread,
 * the second PUs in core order, then the third...; beyond that, wrap. */
Test(topo, compact)
{
    for (int k = 0; k < NSERVERS; k++) {
        const server *s = &servers[k];
        dpt_topo *t = open_synth(s->desc);
        int cores = s->P * s->N * s->C, pus = cores * s->S;
        for (int smt = 0; smt <= 1; smt++) {
            int cap = smt ? pus : cores;
            int n = cap + cap / 2 + 3; /* oversubscribed on purpose */
            dpt_place *p = plan(t, n, "compact", smt);
            for (int i = 0; i < n; i++) {
                int j = i % cap;
                cr_assert_eq(p[i].thread, i);
                expect_core(s, &p[i], j % cores, j / cores, "compact");
                cr_assert_eq(p[i].shared, j < n - cap, "%s compact thread %d shared", s->desc, i);
            }
            free(p);
        }
        dpt_topo_close(t);
    }
}

/* scatter: thread i goes to package i % P; the k = i / P-th thread of a
 * package to its NUMA node k % N; the k / N-th thread of a node to its next
 * core; siblings (with --smt) only after every core has a thread. */
Test(topo, scatter)
{
    for (int k = 0; k < NSERVERS; k++) {
        const server *s = &servers[k];
        dpt_topo *t = open_synth(s->desc);
        int cores = s->P * s->N * s->C, pus = cores * s->S;
        for (int smt = 0; smt <= 1; smt++) {
            int cap = smt ? pus : cores;
            int n = cap + 5;
            dpt_place *p = plan(t, n, "scatter", smt);
            for (int i = 0; i < n; i++) {
                int j = i % cap, r = j / cores, q = j % cores;
                int pkg = q % s->P, kk = q / s->P;
                int node = pkg * s->N + kk % s->N, c = kk / s->N;
                expect_core(s, &p[i], node * s->C + c, r, "scatter");
                cr_assert_eq(p[i].shared, j < n - cap, "%s scatter thread %d shared", s->desc, i);
            }
            free(p);
        }
        dpt_topo_close(t);
    }
}

/* The example of the docs, spelled out. */
Test(topo, scatter_example)
{
    dpt_topo *t = open_synth("pack:2 numa:4 core:24 pu:2");
    dpt_place *p = plan(t, 10, "scatter", 0);
    static const int numa[10] = {0, 4, 1, 5, 2, 6, 3, 7, 0, 4};
    static const int core[10] = {0, 96, 24, 120, 48, 144, 72, 168, 1, 97};
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(p[i].package, i % 2);
        cr_assert_eq(p[i].numa, numa[i], "thread %d numa %d", i, p[i].numa);
        cr_assert_eq(p[i].core, core[i], "thread %d core %d", i, p[i].core);
        cr_assert_eq(p[i].pu, 2 * core[i]);
    }
    free(p);
    dpt_topo_close(t);
}

/* Servers with L3 groups: "pack:P numa:N l3:L core:C pu:S" (L L3s per
 * node, C cores per L3), like chiplet CPUs with several L3s per NUMA node. */
typedef struct l3server {
    const char *desc;
    int P, N, L, C, S;
} l3server;

static const l3server l3servers[] = {
    {"pack:2 numa:4 l3:2 core:6 pu:1", 2, 4, 2, 6, 1}, /* the server */
    {"pack:2 numa:4 l3:2 core:6 pu:2", 2, 4, 2, 6, 2},
    {"pack:2 numa:1 l3:8 core:8 pu:2", 2, 1, 8, 8, 2}, /* one node per socket, 8 CCDs */
    {"pack:2 numa:2 l3:3 core:4 pu:1", 2, 2, 3, 4, 1}, /* odd L3 count */
    {"pack:1 numa:1 l3:4 core:2 pu:2", 1, 1, 4, 2, 2},
};
#define NL3SERVERS (int)(sizeof l3servers / sizeof l3servers[0])

/* scatter with L3s: thread i goes to package i % P; the k = i / P-th thread
 * of a package to its node k % N; the m = k / N-th thread of a node to its
 * L3 m % L; the m / L-th thread of an L3 to its next core. */
Test(topo, scatter_l3)
{
    for (int k = 0; k < NL3SERVERS; k++) {
        const l3server *s = &l3servers[k];
        dpt_topo *t = open_synth(s->desc);
        cr_assert_eq(dpt_topo_count(t, HWLOC_OBJ_L3CACHE), s->P * s->N * s->L, "%s", s->desc);
        int per_node = s->L * s->C, cores = s->P * s->N * per_node, pus = cores * s->S;
        for (int smt = 0; smt <= 1; smt++) {
            int cap = smt ? pus : cores, n = cap + 3;
            dpt_place *p = plan(t, n, "scatter", smt);
            for (int i = 0; i < n; i++) {
                int j = i % cap, r = j / cores, q = j % cores;
                int pkg = q % s->P, kk = q / s->P, node = pkg * s->N + kk % s->N, m = kk / s->N;
                int core = node * per_node + (m % s->L) * s->C + m / s->L;
                cr_assert_eq(p[i].core, core, "%s smt=%d thread %d: core %d, want %d", s->desc, smt,
                             i, p[i].core, core);
                cr_assert_eq(p[i].pu, core * s->S + r, "%s smt=%d thread %d", s->desc, smt, i);
                cr_assert_eq(p[i].numa, node, "%s thread %d", s->desc, i);
                cr_assert_eq(p[i].package, pkg, "%s thread %d", s->desc, i);
                cr_assert_eq(p[i].shared, j < n - cap, "%s thread %d shared", s->desc, i);
            }
            free(p);
        }
        dpt_topo_close(t);
    }
}

/* The example: 8 threads on 8 different L3s (one per node, both
 * packages), the next 8 on the nodes' other L3s. */
Test(topo, scatter_l3_example)
{
    dpt_topo *t = open_synth("pack:2 numa:4 l3:2 core:6 pu:1");
    static const int w[] = {0, 48, 12, 60, 24, 72, 36, 84, 6, 54, 18, 66, 30, 78, 42, 90, 1, 49};
    expect_pus(t, "scatter", 0, 18, w);
    dpt_topo_close(t);
}

/* An L3 that spans two NUMA nodes is the outer level: scatter alternates
 * the L3s of a package before the nodes under one L3. */
Test(topo, scatter_l3_outer)
{
    dpt_topo *t = open_synth("pack:2 l3:2 numa:2 core:2 pu:1");
    cr_assert_eq(dpt_topo_count(t, HWLOC_OBJ_L3CACHE), 4);
    static const int w[] = {0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15};
    expect_pus(t, "scatter", 0, 16, w);
    dpt_topo_close(t);
}

/* No L3 in the description: scatter is the package/node round-robin of
 * before (the scatter test checks that on every server); one L3 per node
 * changes nothing either. */
Test(topo, scatter_one_l3_per_node)
{
    dpt_topo *a = open_synth("pack:2 numa:4 core:6 pu:2"),
             *b = open_synth("pack:2 numa:4 l3:1 core:6 pu:2");
    for (int smt = 0; smt <= 1; smt++) {
        dpt_place *pa = plan(a, 100, "scatter", smt), *pb = plan(b, 100, "scatter", smt);
        cr_assert_eq(memcmp(pa, pb, 100 * sizeof *pa), 0, "smt=%d", smt);
        free(pa);
        free(pb);
    }
    dpt_topo_close(a);
    dpt_topo_close(b);
}

/* Threads --pin numa gives node g of server s out of n: the packages first
 * (the first ones get the extra), then each package's share over its nodes
 * (the first ones of the package get the extra). */
static int numa_share(const server *s, int n, int g)
{
    int q = g / s->N, idx = g % s->N;
    int pkg = n / s->P + (q < n % s->P);
    return pkg / s->N + (idx < pkg % s->N);
}

/* numa: contiguous blocks of threads per NUMA node, packages' shares
 * differing by at most one, then nodes' within a package, compact inside
 * each node. */
Test(topo, numa)
{
    for (int k = 0; k < NSERVERS; k++) {
        const server *s = &servers[k];
        dpt_topo *t = open_synth(s->desc);
        int nodes = s->P * s->N;
        const int counts[] = {1,
                              2,
                              3,
                              nodes - 1,
                              nodes,
                              nodes + 1,
                              2 * nodes + 5,
                              nodes * s->C,
                              nodes * s->C + 3,
                              nodes * s->C * s->S + 1};
        for (int smt = 0; smt <= 1; smt++)
            for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
                int n = counts[ci];
                if (n < 1) continue;
                dpt_place *p = plan(t, n, "numa", smt);
                int cap = smt ? s->C * s->S : s->C; /* per node */
                int th = 0;
                for (int g = 0; g < nodes; g++) {
                    int want = numa_share(s, n, g);
                    for (int j = 0; j < want; j++, th++) {
                        int jj = j % cap;
                        expect_core(s, &p[th], g * s->C + jj % s->C, jj / s->C, "numa");
                        cr_assert_eq(p[th].shared, want > cap && (jj < want - cap),
                                     "%s numa x%d thread %d shared", s->desc, n, th);
                    }
                }
                cr_assert_eq(th, n);
                free(p);
            }
        dpt_topo_close(t);
    }
}

/* The cases: 4 threads on 2 packages of 4 nodes used to land on
 * package 0 only, 12 split 8/4; now two nodes per package, then 2+2+1+1 on
 * each package. */
Test(topo, numa_alternates_packages)
{
    dpt_topo *t = open_synth("pack:2 numa:4 core:6 pu:1");
    static const int w4[] = {0, 6, 24, 30};
    expect_pus(t, "numa", 0, 4, w4);
    static const int w12[] = {0, 1, 6, 7, 12, 18, 24, 25, 30, 31, 36, 42};
    expect_pus(t, "numa", 0, 12, w12);
    static const int w3[] = {0, 6, 24}; /* package 0 gets the odd thread */
    expect_pus(t, "numa", 0, 3, w3);
    dpt_topo_close(t);
}

/* The example of the docs: 10 threads, 5 per package, node 0 and node 4
 * take two each. */
Test(topo, numa_example)
{
    dpt_topo *t = open_synth("pack:2 numa:4 core:24 pu:2");
    dpt_place *p = plan(t, 10, "numa", 0);
    static const int numa[10] = {0, 0, 1, 2, 3, 4, 4, 5, 6, 7};
    static const int core[10] = {0, 1, 24, 48, 72, 96, 97, 120, 144, 168};
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(p[i].package, i / 5);
        cr_assert_eq(p[i].numa, numa[i], "thread %d numa %d", i, p[i].numa);
        cr_assert_eq(p[i].core, core[i], "thread %d core %d", i, p[i].core);
    }
    free(p);
    dpt_topo_close(t);
}

Test(topo, list)
{
    dpt_topo *t = open_synth("pack:2 numa:4 core:24 pu:2");
    dpt_place *p = plan(t, 9, "list:0,2,4-7,383", 0);
    static const int pus[9] = {0, 2, 4, 5, 6, 7, 383, 0, 2};
    for (int i = 0; i < 9; i++) {
        cr_assert_eq(p[i].pu, pus[i]);
        cr_assert_eq(p[i].core, pus[i] / 2);
        cr_assert_eq(p[i].numa, pus[i] / 48);
        cr_assert_eq(p[i].package, pus[i] / 192);
        cr_assert_eq(p[i].shared, pus[i] == 0 || pus[i] == 2, "thread %d", i);
    }
    free(p);

    dpt_pin_spec spec;
    dpt_place out[4];
    cr_assert_eq(dpt_pin_parse("list:1,384", &spec), 0);
    cr_assert_eq(dpt_topo_plan(t, 4, &spec, out), DPT_EINVAL);
    cr_assert(strstr(dpt_last_error(), "384"), "message names the bad id: %s", dpt_last_error());
    cr_assert(strstr(dpt_last_error(), "0-383"), "and the range: %s", dpt_last_error());
    dpt_pin_spec_free(&spec);
    cr_assert_eq(spec.list, NULL);
    dpt_topo_close(t);
}

Test(topo, none)
{
    dpt_topo *t = open_synth("pack:2 numa:12 core:8 pu:2");
    dpt_place *p = plan(t, 500, "none", 1);
    for (int i = 0; i < 500; i++) {
        cr_assert_eq(p[i].thread, i);
        cr_assert(p[i].pu == -1 && p[i].core == -1 && p[i].numa == -1 && p[i].package == -1);
        cr_assert_eq(p[i].os_pu, DPT_OS_PU_NONE);
        cr_assert_eq(p[i].shared, 0);
        cr_assert_eq(dpt_topo_bind_self(t, &p[i]), 0, "binding to no PU is a no-op");
    }
    free(p);
    dpt_topo_close(t);
}

/* Properties every plan must have, over odd thread counts. */
Test(topo, invariants)
{
    static const char *const pins[] = {"compact", "scatter", "numa"};
    for (int k = 0; k < NSERVERS; k++) {
        const server *s = &servers[k];
        dpt_topo *t = open_synth(s->desc);
        hwloc_topology_t h = dpt_topo_hwloc(t);
        int cores = s->P * s->N * s->C, pus = cores * s->S;
        const int counts[] = {1, 2, 3, 5, 7, 16, 17, cores - 1, cores, cores + 1, pus, pus + 7};
        for (size_t pi = 0; pi < 3; pi++)
            for (int smt = 0; smt <= 1; smt++)
                for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
                    int n = counts[ci];
                    dpt_place *p = plan(t, n, pins[pi], smt);
                    int *load = calloc((size_t)pus, sizeof *load);
                    int *core_load = calloc((size_t)cores, sizeof *core_load);
                    for (int i = 0; i < n; i++) {
                        cr_assert(p[i].pu >= 0 && p[i].pu < pus);
                        hwloc_obj_t pu = hwloc_get_obj_by_type(h, HWLOC_OBJ_PU, (unsigned)p[i].pu);
                        hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(h, HWLOC_OBJ_CORE, pu);
                        hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(h, HWLOC_OBJ_PACKAGE, pu);
                        cr_assert_eq(p[i].core, (int)core->logical_index);
                        cr_assert_eq(p[i].package, (int)pkg->logical_index);
                        cr_assert_eq(p[i].os_pu, pu->os_index);
                        load[p[i].pu]++;
                        core_load[p[i].core]++;
                    }
                    for (int i = 0; i < n; i++)
                        cr_assert_eq(p[i].shared, load[p[i].pu] > 1, "%s %s smt=%d x%d thread %d",
                                     s->desc, pins[pi], smt, n, i);
                    /* no oversubscription while there is room, and one
                     * thread per core before any sibling */
                    if (n <= (smt ? pus : cores))
                        for (int i = 0; i < pus; i++) cr_assert(load[i] <= 1);
                    if (n <= cores)
                        for (int c = 0; c < cores; c++)
                            cr_assert(core_load[c] <= 1, "%s %s smt=%d x%d: core %d has %d",
                                      s->desc, pins[pi], smt, n, c, core_load[c]);
                    if (!smt)
                        for (int i = 0; i < n; i++) cr_assert_eq(p[i].pu % s->S, 0);
                    /* numa keeps a node's threads together */
                    if (pi == 2)
                        for (int i = 1; i < n; i++) cr_assert(p[i].numa >= p[i - 1].numa);
                    /* scatter reaches every package, then every node, first */
                    if (pi == 1) {
                        for (int i = 0; i < n && i < s->P; i++) cr_assert_eq(p[i].package, i);
                        for (int i = 0; i < n && i < s->P * s->N; i++)
                            for (int j = 0; j < i; j++) cr_assert_neq(p[i].numa, p[j].numa);
                    }
                    free(load);
                    free(core_load);
                    free(p);
                }
        dpt_topo_close(t);
    }
}

/* Logical index of the L3 above PU pu, or -1. */
static int l3_of(hwloc_topology_t h, int pu)
{
    hwloc_obj_t o = hwloc_get_obj_by_type(h, HWLOC_OBJ_PU, (unsigned)pu);
    while (o && o->type != HWLOC_OBJ_L3CACHE) o = o->parent;
    return o ? (int)o->logical_index : -1;
}

/* Over the groups g < ng with parent[g] == want (all groups when parent is
 * NULL), max count - min count. */
static int spread(const int *count, const int *parent, int ng, int want)
{
    int lo = -1, hi = -1;
    for (int g = 0; g < ng; g++) {
        if (parent && parent[g] != want) continue;
        if (lo < 0 || count[g] < lo) lo = count[g];
        if (count[g] > hi) hi = count[g];
    }
    return hi - lo;
}

/* Balance, for every thread count 1..2 x cores: under scatter and numa the
 * packages' thread counts differ by at most one, and so do the nodes' of a
 * package; under scatter also the L3s' of a node. */
static void check_balance(const char *desc)
{
    dpt_topo *t = open_synth(desc);
    hwloc_topology_t h = dpt_topo_hwloc(t);
    int P = dpt_topo_count(t, HWLOC_OBJ_PACKAGE), nodes = dpt_topo_count(t, HWLOC_OBJ_NUMANODE);
    int nl3 = dpt_topo_count(t, HWLOC_OBJ_L3CACHE), cores = dpt_topo_count(t, HWLOC_OBJ_CORE);
    int pus = dpt_topo_count(t, HWLOC_OBJ_PU);
    /* parents: node -> package and L3 -> node, read off a plan of all PUs */
    int *node_pkg = calloc((size_t)nodes, sizeof *node_pkg);
    int *l3_node = calloc((size_t)(nl3 + 1), sizeof *l3_node);
    dpt_place *all = plan(t, pus, "compact", 1);
    for (int i = 0; i < pus; i++) {
        node_pkg[all[i].numa] = all[i].package;
        if (nl3) l3_node[l3_of(h, all[i].pu)] = all[i].numa;
    }
    free(all);
    int *pkg_n = malloc((size_t)P * sizeof *pkg_n),
        *node_n = malloc((size_t)nodes * sizeof *node_n);
    int *l3_n = malloc((size_t)(nl3 + 1) * sizeof *l3_n);
    static const char *const pins[] = {"scatter", "numa"};
    for (int pi = 0; pi < 2; pi++)
        for (int smt = 0; smt <= 1; smt++)
            for (int n = 1; n <= 2 * cores; n++) {
                dpt_place *p = plan(t, n, pins[pi], smt);
                memset(pkg_n, 0, (size_t)P * sizeof *pkg_n);
                memset(node_n, 0, (size_t)nodes * sizeof *node_n);
                memset(l3_n, 0, (size_t)(nl3 + 1) * sizeof *l3_n);
                for (int i = 0; i < n; i++) {
                    pkg_n[p[i].package]++;
                    node_n[p[i].numa]++;
                    if (nl3) l3_n[l3_of(h, p[i].pu)]++;
                }
                cr_assert_leq(spread(pkg_n, NULL, P, 0), 1, "%s %s smt=%d x%d: packages", desc,
                              pins[pi], smt, n);
                for (int q = 0; q < P; q++)
                    cr_assert_leq(spread(node_n, node_pkg, nodes, q), 1,
                                  "%s %s smt=%d x%d: nodes of package %d", desc, pins[pi], smt, n,
                                  q);
                if (pi == 0)
                    for (int g = 0; g < nodes && nl3; g++)
                        cr_assert_leq(spread(l3_n, l3_node, nl3, g), 1,
                                      "%s scatter smt=%d x%d: L3s of node %d", desc, smt, n, g);
                free(p);
            }
    free(pkg_n);
    free(node_n);
    free(l3_n);
    free(node_pkg);
    free(l3_node);
    dpt_topo_close(t);
}

Test(topo, balance)
{
    for (int k = 0; k < NSERVERS; k++) check_balance(servers[k].desc);
    for (int k = 0; k < NL3SERVERS; k++) check_balance(l3servers[k].desc);
}

/* ---- uneven topologies: a synthetic one restricted, through XML ---- */

static char *tmp_path(const char *tag)
{
    const char *dir = getenv("TMPDIR");
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/dpt-topo-%s-XXXXXX", dir && *dir ? dir : "/tmp", tag);
    int fd = mkstemp(buf);
    cr_assert(fd >= 0, "mkstemp %s", buf);
    close(fd);
    return strdup(buf);
}

/* Export `desc` restricted to the OS PUs in `keep` ("0-11") as XML, open it. */
static dpt_topo *open_restricted(const char *desc, const char *keep)
{
    hwloc_topology_t h;
    cr_assert_eq(hwloc_topology_init(&h), 0);
    cr_assert_eq(hwloc_topology_set_synthetic(h, desc), 0);
    cr_assert_eq(hwloc_topology_load(h), 0);
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    cr_assert_eq(hwloc_bitmap_list_sscanf(set, keep), 0);
    cr_assert_eq(hwloc_topology_restrict(h, set, 0), 0);
    hwloc_bitmap_free(set);
    char *path = tmp_path("xml");
    cr_assert_eq(hwloc_topology_export_xml(h, path, 0), 0);
    hwloc_topology_destroy(h);
    dpt_topo *t = NULL;
    cr_assert_eq(dpt_topo_open(&t, NULL, path), 0, "%s", dpt_last_error());
    unlink(path);
    free(path);
    return t;
}

/* Package 0 keeps 4 cores, package 1 only 2: the round-robin skips the
 * exhausted package, and siblings still come after every core. */
Test(topo, scatter_uneven)
{
    dpt_topo *t = open_restricted("pack:2 core:4 pu:2", "0-11");
    cr_assert_eq(dpt_topo_count(t, HWLOC_OBJ_CORE), 6);
    static const int w0[] = {0, 8, 2, 10, 4, 6, 0, 8};
    expect_pus(t, "scatter", 0, 8, w0);
    static const int w1[] = {0, 8, 2, 10, 4, 6, 1, 9, 3, 11, 5, 7};
    expect_pus(t, "scatter", 1, 12, w1);
    dpt_topo_close(t);
}

/* L3 0 keeps 4 cores, L3 1 only 2: the L3 round-robin skips the exhausted
 * one too. */
Test(topo, scatter_l3_uneven)
{
    dpt_topo *t = open_restricted("pack:1 numa:1 l3:2 core:4 pu:1", "0-5");
    static const int w[] = {0, 4, 1, 5, 2, 3, 0};
    expect_pus(t, "scatter", 0, 7, w);
    dpt_topo_close(t);
}

/* Node 0 has 4 cores, node 1 has 2: fill in turn, skip the full node, then
 * oversubscribe in turn. */
Test(topo, numa_uneven)
{
    dpt_topo *t = open_restricted("pack:1 numa:2 core:4 pu:1", "0-5");
    static const int w5[] = {0, 1, 2, 4, 5};
    expect_pus(t, "numa", 0, 5, w5);
    static const int w6[] = {0, 1, 2, 3, 4, 5};
    expect_pus(t, "numa", 0, 6, w6);
    static const int w8[] = {0, 1, 2, 3, 0, 4, 5, 4};
    expect_pus(t, "numa", 0, 8, w8);
    dpt_topo_close(t);
}

/* Package 0 keeps 8 cores (nodes 0 and 1), package 1 only 6 (node 2 has
 * 4, node 3 2): numa deals over the packages first, each within its room,
 * then over each package's nodes; oversubscribed, one more per package in
 * turn, then per node. */
Test(topo, numa_uneven_packages)
{
    dpt_topo *t = open_restricted("pack:2 numa:2 core:4 pu:1", "0-13");
    static const int w12[] = {0, 1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13};
    expect_pus(t, "numa", 0, 12, w12);
    static const int w16[] = {0, 1, 2, 3, 0, 4, 5, 6, 7, 8, 9, 10, 11, 8, 12, 13};
    expect_pus(t, "numa", 0, 16, w16);
    static const int w3[] = {0, 4, 8};
    expect_pus(t, "numa", 0, 3, w3);
    dpt_topo_close(t);
}

/* A core that lost its first PU: its remaining sibling is its first PU now. */
Test(topo, smt_partial_core)
{
    dpt_topo *t = open_restricted("pack:1 core:2 pu:2", "1-3");
    cr_assert_eq(dpt_topo_count(t, HWLOC_OBJ_PU), 3);
    dpt_place *p = plan(t, 3, "compact", 0);
    cr_assert_eq(p[0].pu, 0);
    cr_assert_eq(p[0].os_pu, 1u);
    cr_assert_eq(p[1].pu, 1);
    cr_assert_eq(p[1].os_pu, 2u);
    cr_assert_eq(p[2].pu, 0, "no --smt: wraps rather than using the sibling");
    cr_assert(p[2].shared && p[0].shared && !p[1].shared);
    free(p);
    static const int w[] = {0, 1, 2};
    expect_pus(t, "compact", 1, 3, w);
    dpt_topo_close(t);
}

/* No NUMA level in the description, or PUs with no core above them. */
Test(topo, sparse_levels)
{
    dpt_topo *t = open_synth("pack:2 pu:3");
    cr_assert_eq(dpt_topo_count(t, HWLOC_OBJ_CORE), 0);
    cr_assert_eq(dpt_topo_count(t, HWLOC_OBJ_NUMANODE), 1);
    dpt_place *p = plan(t, 6, "scatter", 0);
    static const int w[] = {0, 3, 1, 4, 2, 5};
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(p[i].pu, w[i]);
        cr_assert_eq(p[i].core, -1);
        cr_assert_eq(p[i].numa, 0);
        cr_assert_eq(p[i].package, w[i] / 3);
    }
    free(p);
    dpt_topo_close(t);
}

/* XML export of a synthetic server plans exactly like the server. */
Test(topo, xml_roundtrip)
{
    const char *desc = "pack:2 numa:4 core:24 pu:2";
    hwloc_topology_t h;
    cr_assert_eq(hwloc_topology_init(&h), 0);
    cr_assert_eq(hwloc_topology_set_synthetic(h, desc), 0);
    cr_assert_eq(hwloc_topology_load(h), 0);
    char *path = tmp_path("xml");
    cr_assert_eq(hwloc_topology_export_xml(h, path, 0), 0);
    hwloc_topology_destroy(h);
    dpt_topo *a = open_synth(desc), *b = NULL;
    cr_assert_eq(dpt_topo_open(&b, NULL, path), 0, "%s", dpt_last_error());
    unlink(path);
    free(path);
    static const char *const pins[] = {"compact", "scatter", "numa"};
    for (int k = 0; k < 3; k++) {
        dpt_place *pa = plan(a, 200, pins[k], 1), *pb = plan(b, 200, pins[k], 1);
        cr_assert_eq(memcmp(pa, pb, 200 * sizeof *pa), 0, "%s", pins[k]);
        free(pa);
        free(pb);
    }
    dpt_topo_close(a);
    dpt_topo_close(b);
}

/* ---- the default policy by what bounds the workload ---- */

static dpt_pin_policy pick(const dpt_topo *t, int n, double fpb, double balance, const char *want)
{
    const char *why = NULL;
    dpt_pin_policy p = dpt_pin_default_for(t, n, fpb, balance, &why);
    cr_assert(why && !strncmp(why, dpt_pin_name(p), strlen(dpt_pin_name(p))),
              "the reason names the policy first: %s", why ? why : "NULL");
    cr_assert(strstr(why, want), "x%d at %g flops/byte: %s", n, fpb, why);
    cr_assert_eq(dpt_pin_default_for(t, n, fpb, balance, NULL), p, "why may be NULL");
    return p;
}

/* Flops per byte of a row for a model over `inputs` features. */
static double row_intensity(const dpt_model_spec *spec)
{
    dpt_model m;
    cr_assert_eq(dpt_model_init(&m, spec), 0, "%s", dpt_last_error());
    return dpt_model_train_flops(&m) / (4.0 * (double)(spec->inputs + 1));
}

/* Linear models stream their rows: bandwidth-bound, scatter. MLPs do
 * hundreds of flops per byte: compute-bound, compact. */
Test(topo, default_for_models)
{
    dpt_topo *t = open_synth("pack:2 numa:4 core:6 pu:2");
    dpt_model_spec lin = {.kind = DPT_MODEL_LINEAR, .inputs = 28, .bias = 1};
    double fl = row_intensity(&lin);
    cr_assert(fl > 0.5 && fl < 2, "linear: %g flops per byte", fl);
    cr_assert_eq(pick(t, 8, fl, 0, "bandwidth-bound"), DPT_PIN_SCATTER);
    dpt_model_spec soft = {.kind = DPT_MODEL_SOFTMAX, .inputs = 784, .classes = 10, .bias = 1};
    cr_assert_eq(pick(t, 8, row_intensity(&soft), 0, "bandwidth-bound"), DPT_PIN_SCATTER);
    dpt_model_spec mlp = {.kind = DPT_MODEL_MLP,
                          .inputs = 784,
                          .n_hidden = 2,
                          .hidden = {256, 128},
                          .classes = 10,
                          .loss = DPT_LOSS_CE,
                          .bias = 1};
    double fm = row_intensity(&mlp);
    cr_assert(fm > 100, "mlp: %g flops per byte", fm);
    cr_assert_eq(pick(t, 8, fm, 0, "compute-bound"), DPT_PIN_COMPACT);
    dpt_topo_close(t);
}

Test(topo, default_for_rule)
{
    dpt_topo *t = open_synth("pack:2 numa:4 core:6 pu:2"); /* 48 cores, 96 PUs */
    /* the balance: DPT_PIN_BALANCE by default, the caller's when given */
    cr_assert_eq(pick(t, 8, DPT_PIN_BALANCE, 0, "compute-bound"), DPT_PIN_COMPACT);
    cr_assert_eq(pick(t, 8, DPT_PIN_BALANCE * 0.99, 0, "bandwidth"), DPT_PIN_SCATTER);
    cr_assert_eq(pick(t, 8, 20, 0, "balance 16"), DPT_PIN_COMPACT);
    cr_assert_eq(pick(t, 8, 20, 40, "balance 40"), DPT_PIN_SCATTER);
    cr_assert_eq(pick(t, 8, 20, NAN, "compute-bound"), DPT_PIN_COMPACT);
    cr_assert_eq(pick(t, 8, 20, -3, "compute-bound"), DPT_PIN_COMPACT);
    /* threads filling every core: scatter would use the same cores */
    cr_assert_eq(pick(t, 47, 1, 0, "scatter"), DPT_PIN_SCATTER);
    cr_assert_eq(pick(t, 48, 1, 0, "48 threads fill all 48 cores"), DPT_PIN_COMPACT);
    cr_assert_eq(pick(t, 96, 1, 0, "fill all 48 cores"), DPT_PIN_COMPACT);
    /* intensity unknown */
    cr_assert_eq(pick(t, 8, 0, 0, "not known"), DPT_PIN_COMPACT);
    cr_assert_eq(pick(t, 8, -1, 0, "not known"), DPT_PIN_COMPACT);
    cr_assert_eq(pick(t, 8, NAN, 0, "not known"), DPT_PIN_COMPACT);
    /* no topology: the intensity alone */
    cr_assert_eq(pick(NULL, 1000, 1, 0, "bandwidth"), DPT_PIN_SCATTER);
    cr_assert_eq(pick(NULL, 2, 500, 0, "compute"), DPT_PIN_COMPACT);
    dpt_topo_close(t);

    /* one package, node and L3: scatter is compact's order */
    t = open_synth("pack:1 core:8 pu:2");
    cr_assert_eq(pick(t, 4, 1, 0, "one package, NUMA node and L3"), DPT_PIN_COMPACT);
    dpt_topo_close(t);
    /* one node of several L3s: scatter spreads over them */
    t = open_synth("pack:1 numa:1 l3:4 core:2 pu:2");
    cr_assert_eq(pick(t, 4, 1, 0, "bandwidth"), DPT_PIN_SCATTER);
    dpt_topo_close(t);
}

/* ---- specs and errors ---- */

Test(topo, parse)
{
    dpt_pin_spec s;
    static const struct {
        const char *text;
        dpt_pin_policy policy;
    } ok[] = {{"compact", DPT_PIN_COMPACT},
              {"scatter", DPT_PIN_SCATTER},
              {"numa", DPT_PIN_NUMA},
              {"none", DPT_PIN_NONE}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        s.smt = 7;
        cr_assert_eq(dpt_pin_parse(ok[i].text, &s), 0);
        cr_assert_eq(s.policy, ok[i].policy);
        cr_assert_eq(s.smt, 0);
        cr_assert_eq(s.n_list, 0);
        cr_assert_eq(s.list, NULL);
        cr_assert_str_eq(dpt_pin_name(s.policy), ok[i].text);
        dpt_pin_spec_free(&s);
    }
    cr_assert_eq(dpt_pin_parse("list:0,2,4-7,3,3", &s), 0);
    static const int want[] = {0, 2, 4, 5, 6, 7, 3, 3};
    cr_assert_eq(s.policy, DPT_PIN_LIST);
    cr_assert_eq(s.n_list, 8);
    for (int i = 0; i < 8; i++) cr_assert_eq(s.list[i], want[i]);
    dpt_pin_spec_free(&s);
    cr_assert_eq(s.list, NULL);
    cr_assert_eq(s.n_list, 0);
    dpt_pin_spec_free(&s); /* twice is fine */

    cr_assert_eq(dpt_pin_parse("list:0-999", &s), 0);
    cr_assert_eq(s.n_list, 1000);
    cr_assert_eq(s.list[999], 999);
    dpt_pin_spec_free(&s);
}

Test(topo, parse_errors)
{
    static const char *const bad[] = {"",         "foo",       "Compact",         "compact ",
                                      "list",     "list:",     "list:a",          "list:1,,2",
                                      "list:3-1", "list:-1",   "list:1-",         "list:,1",
                                      "list:1,",  "list:1.5",  "list:0-99999999", "list:0x1",
                                      "list: 1",  "scatter:2", "LIST:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dpt_pin_spec s;
        cr_assert_eq(dpt_pin_parse(bad[i], &s), DPT_EINVAL, "'%s' accepted", bad[i]);
        cr_assert_eq(s.list, NULL);
        cr_assert_eq(s.n_list, 0);
        cr_assert(strlen(dpt_last_error()) > 0);
        dpt_pin_spec_free(&s);
    }
    dpt_pin_spec s;
    cr_assert_eq(dpt_pin_parse("spread", &s), DPT_EINVAL);
    const char *m = dpt_last_error();
    cr_assert(strstr(m, "spread") && strstr(m, "compact") && strstr(m, "scatter") &&
                  strstr(m, "numa") && strstr(m, "none") && strstr(m, "list:"),
              "message names the allowed values: %s", m);
    cr_assert_eq(dpt_pin_parse("list:7-3", &s), DPT_EINVAL);
    cr_assert(strstr(dpt_last_error(), "7-3"), "%s", dpt_last_error());
}

Test(topo, plan_errors)
{
    dpt_topo *t = open_synth("pack:2 numa:4 core:24 pu:2");
    dpt_pin_spec s;
    dpt_place out[2];
    cr_assert_eq(dpt_pin_parse("compact", &s), 0);
    cr_assert_eq(dpt_topo_plan(t, 0, &s, out), DPT_EINVAL);
    cr_assert_eq(dpt_topo_plan(t, -3, &s, out), DPT_EINVAL);
    s.policy = DPT_PIN_LIST; /* a list spec with no ids */
    cr_assert_eq(dpt_topo_plan(t, 2, &s, out), DPT_EINVAL);
    s.policy = (dpt_pin_policy)42;
    cr_assert_eq(dpt_topo_plan(t, 2, &s, out), DPT_EINVAL);
    dpt_topo_close(t);
}

Test(topo, open_errors)
{
    dpt_topo *t = (dpt_topo *)1;
    cr_assert_eq(dpt_topo_open(&t, "pack:2 numa:x pu:2", NULL), DPT_EINVAL);
    cr_assert_eq(t, NULL);
    cr_assert(strstr(dpt_last_error(), "pack:2 numa:x pu:2"), "%s", dpt_last_error());
    /* without a PU level, one PU a core */
    cr_assert_eq(dpt_topo_open(&t, "pack:2 numa:4 core:24", NULL), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_topo_count(t, HWLOC_OBJ_PU), 192);
    dpt_topo_close(t);
    cr_assert_eq(dpt_topo_open(&t, "bogus", NULL), DPT_EINVAL);
    cr_assert_eq(dpt_topo_open(&t, "", NULL), DPT_EINVAL);
    cr_assert_eq(dpt_topo_open(&t, "pack:2 pu:2", "x.xml"), DPT_EINVAL);
    cr_assert_eq(dpt_topo_open(&t, NULL, "/nonexistent/dir/topo.xml"), DPT_EIO);
    cr_assert(strstr(dpt_last_error(), "/nonexistent/dir/topo.xml"), "%s", dpt_last_error());

    char *path = tmp_path("bad");
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs("<?xml version=\"1.0\"?>\n<notatopology/>\n", f);
    fclose(f);
    cr_assert_eq(dpt_topo_open(&t, NULL, path), DPT_EFORMAT);
    cr_assert(strstr(dpt_last_error(), path), "%s", dpt_last_error());
    f = fopen(path, "w");
    fputs("garbage", f);
    fclose(f);
    cr_assert_eq(dpt_topo_open(&t, NULL, path), DPT_EFORMAT);
    cr_assert_eq(t, NULL);
    unlink(path);
    free(path);
    dpt_topo_close(NULL);
}

/* Synthetic topologies are not this machine: no binding, no page queries. */
Test(topo, synthetic_cannot_bind)
{
    dpt_topo *t = open_synth("pack:2 numa:4 core:24 pu:2");
    dpt_place *p = plan(t, 1, "compact", 0);
    cr_assert_eq(dpt_topo_bind_self(t, &p[0]), DPT_ENOTSUP);
    cr_assert(strlen(dpt_last_error()) > 0);
    int node = 5;
    char buf[64] = {0};
    cr_assert_eq(dpt_topo_membind_check(t, buf, sizeof buf, &node), DPT_ENOTSUP);
    cr_assert_eq(node, DPT_NUMA_NONE);
    free(p);
    dpt_topo_close(t);
}

Test(topo, env_warning)
{
    dpt_pin_spec s;
    cr_assert_eq(dpt_pin_parse("scatter", &s), 0);
    unsetenv("OMP_PROC_BIND");
    unsetenv("OMP_PLACES");
    unsetenv("GOMP_CPU_AFFINITY");
    unsetenv("KMP_AFFINITY");
    cr_assert_eq(dpt_pin_env_warning(&s), NULL);
    setenv("OMP_PROC_BIND", "false", 1);
    cr_assert_eq(dpt_pin_env_warning(&s), NULL, "OMP_PROC_BIND=false binds nothing");
    setenv("OMP_PROC_BIND", "spread", 1);
    const char *w = dpt_pin_env_warning(&s);
    cr_assert(w && strstr(w, "OMP_PROC_BIND") && strstr(w, "pin policy none"), "%s",
              w ? w : "NULL");
    cr_expect_null(strstr(w, "--"), "a library message names no CLI flag: %s", w);
    s.policy = DPT_PIN_NONE;
    cr_assert_eq(dpt_pin_env_warning(&s), NULL, "pin none leaves placement to the runtime");
    unsetenv("OMP_PROC_BIND");
    setenv("OMP_PLACES", "cores", 1);
    s.policy = DPT_PIN_COMPACT;
    w = dpt_pin_env_warning(&s);
    cr_assert(w && strstr(w, "OMP_PLACES"), "%s", w ? w : "NULL");
    unsetenv("OMP_PLACES");
}

/* ---- this machine: outcomes that hold on any machine ---- */

Test(topo, this_machine_smoke)
{
    cr_assert_geq(dpt_topo_physical_cores(), 1);
    dpt_topo *t = NULL;
    cr_assert_eq(dpt_topo_open(&t, NULL, NULL), 0, "%s", dpt_last_error());
    cr_assert_geq(dpt_topo_count(t, HWLOC_OBJ_PU), 1);
    dpt_place *p = plan(t, 3, "compact", 0);
    int rc = dpt_topo_bind_self(t, &p[0]);
    cr_assert(rc == 0 || rc == DPT_ENOTSUP, "bind: %d %s", rc, dpt_last_error());

    size_t len = 1 << 20;
    char *buf = malloc(len);
    cr_assert(buf);
    memset(buf, 1, len);
    int node = 99;
    rc = dpt_topo_membind_check(t, buf, len, &node);
    cr_assert(rc == 0 || rc == DPT_ENOTSUP, "membind: %d %s", rc, dpt_last_error());
    if (rc == 0)
        cr_assert(node == DPT_NUMA_MIXED ||
                      (node >= 0 && node < dpt_topo_count(t, HWLOC_OBJ_NUMANODE)),
                  "node %d", node);
    free(buf);
    free(p);
    dpt_topo_close(t);
}

/* The layer split's groups: a team in one package, or across packages of
 * one domain of consecutive threads each, has its domains of more than 16
 * threads cut into groups of at most 8 (across: the package level); teams
 * whose packages hold several domains, or interleave, keep theirs. */
Test(topo, split_groups)
{
    const struct {
        const char *topo;
        int threads;
        dpt_pin_policy pin;
        int count, across;
    } c[] = {
        {"pack:1 numa:1 core:56 pu:1", 56, DPT_PIN_COMPACT, 7, 0},
        {"pack:2 numa:1 core:56 pu:1", 112, DPT_PIN_COMPACT, 14, 1},
        {"pack:2 numa:1 core:56 pu:1", 112, DPT_PIN_NUMA, 14, 1},
        {"pack:2 numa:1 core:56 pu:1", 112, DPT_PIN_SCATTER, 2, 0}, /* interleaved */
        {"pack:2 numa:2 core:28 pu:1", 112, DPT_PIN_COMPACT, 4, 0}, /* two nodes a package */
        {"pack:2 numa:1 core:56 pu:1", 32, DPT_PIN_COMPACT, 4, 0},  /* one package, 32 */
        {"pack:2 numa:1 core:56 pu:1", 16, DPT_PIN_COMPACT, 1, 0},  /* 16: not cut */
        {"pack:2 numa:1 core:56 pu:1", 112, DPT_PIN_NONE, 1, 0},    /* unpinned */
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        dpt_topo *t;
        cr_assert_eq(dpt_topo_open(&t, c[i].topo, NULL), 0);
        const int P = c[i].threads;
        dpt_place *plan = calloc((size_t)P, sizeof *plan);
        int *dom = calloc((size_t)P, sizeof *dom), across = -1;
        dpt_pin_spec spec = {.policy = c[i].pin};
        cr_assert_eq(dpt_topo_plan(t, P, &spec, plan), 0);
        const int nd = dpt_topo_domains(t, plan, P, DPT_DOMAIN_AUTO, dom, NULL);
        const int n = dpt_topo_split_groups(plan, P, dom, nd, 16, 8, &across);
        cr_expect_eq(n, c[i].count, "\"%s\" %d threads, pin %d: %d domains", c[i].topo, P,
                     (int)c[i].pin, n);
        cr_expect_eq(across, c[i].across, "\"%s\" %d threads: across %d", c[i].topo, P, across);
        for (int q = 1; q < P && n > nd; q++) /* groups of consecutive threads, in order */
            cr_expect(dom[q] == dom[q - 1] || dom[q] == dom[q - 1] + 1, "thread %d", q);
        free(plan);
        free(dom);
        dpt_topo_close(t);
    }
}
