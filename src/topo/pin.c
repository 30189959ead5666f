/* Pinning plans: which PU each engine thread gets under --pin
 * compact|scatter|numa|list|none. Pure functions of the topology tables and
 * the spec (no binding here), so tests can check them on synthetic servers.
 * The orders are documented in docs/pinning.md; keep the two in step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/error.h"
#include "topo/topo_impl.h"

#define PIN_ALLOWED  "compact, scatter, numa, none, list:IDS (logical PU ids, e.g. list:0,2,4-7)"
#define PIN_LIST_MAX (1 << 16) /* ids in one list, ranges expanded */
#define PIN_ID_MAX   (1 << 20)

const char *dpt_pin_name(dpt_pin_policy policy)
{
    switch (policy) {
    case DPT_PIN_NONE:
        return "none";
    case DPT_PIN_COMPACT:
        return "compact";
    case DPT_PIN_SCATTER:
        return "scatter";
    case DPT_PIN_NUMA:
        return "numa";
    case DPT_PIN_LIST:
        return "list";
    }
    return "?";
}

void dpt_pin_spec_free(dpt_pin_spec *spec)
{
    if (!spec) return;
    free(spec->list);
    memset(spec, 0, sizeof *spec);
}

/* One decimal id in [0, PIN_ID_MAX] spanning exactly [s, e). */
static int parse_id(const char *s, const char *e, int *out)
{
    if (s == e) return -1;
    long v = 0;
    for (const char *p = s; p < e; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (*p - '0');
        if (v > PIN_ID_MAX) return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_list(const char *text, const char *ids, dpt_pin_spec *spec)
{
    int cap = 16, n = 0;
    int *list = malloc((size_t)cap * sizeof *list);
    if (!list) return dpt_set_error(DPT_ENOMEM, "pin list: out of memory");
    const char *p = ids;
    for (;;) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *dash = memchr(p, '-', (size_t)(end - p));
        int lo, hi;
        if (dash ? parse_id(p, dash, &lo) || parse_id(dash + 1, end, &hi) : parse_id(p, end, &lo)) {
            free(list);
            return dpt_set_error(DPT_EINVAL,
                                 "pin list '%s': '%.*s' is not a PU id or a range of them "
                                 "(use e.g. list:0,2,4-7)",
                                 text, (int)(end - p), p);
        }
        if (!dash) hi = lo;
        if (hi < lo) {
            free(list);
            return dpt_set_error(DPT_EINVAL, "pin list '%s': range %d-%d is reversed", text, lo,
                                 hi);
        }
        if ((long)n + (hi - lo + 1) > PIN_LIST_MAX) {
            free(list);
            return dpt_set_error(DPT_EINVAL, "pin list '%s': more than %d PU ids", text,
                                 PIN_LIST_MAX);
        }
        while (n + (hi - lo + 1) > cap) cap *= 2;
        int *grown = realloc(list, (size_t)cap * sizeof *list);
        if (!grown) {
            free(list);
            return dpt_set_error(DPT_ENOMEM, "pin list: out of memory");
        }
        list = grown;
        for (int id = lo; id <= hi; id++) list[n++] = id;
        if (!*end) break;
        p = end + 1;
    }
    spec->policy = DPT_PIN_LIST;
    spec->n_list = n;
    spec->list = list;
    return 0;
}

int dpt_pin_parse(const char *text, dpt_pin_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    if (!text) return dpt_set_error(DPT_EINVAL, "pin policy missing (allowed: " PIN_ALLOWED ")");
    static const struct {
        const char *name;
        dpt_pin_policy policy;
    } names[] = {{"compact", DPT_PIN_COMPACT},
                 {"scatter", DPT_PIN_SCATTER},
                 {"numa", DPT_PIN_NUMA},
                 {"none", DPT_PIN_NONE}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(text, names[i].name)) {
            spec->policy = names[i].policy;
            return 0;
        }
    if (!strncmp(text, "list:", 5)) return parse_list(text, text + 5, spec);
    return dpt_set_error(DPT_EINVAL, "pin policy '%s' is not one of: " PIN_ALLOWED, text);
}

const char *dpt_pin_env_warning(const dpt_pin_spec *spec)
{
    static _Thread_local char msg[320];
    if (!spec || spec->policy == DPT_PIN_NONE) return NULL;
    const char *var = dpt_topo_omp_binding_var();
    if (!var) return NULL;
    snprintf(msg, sizeof msg,
             "%s is set, but pin policy %s binds each thread itself and wins over the "
             "OpenMP runtime's placement; pin policy none lets the runtime place threads",
             var, dpt_pin_name(spec->policy));
    return msg;
}

/* ---- orders ---------------------------------------------------------- */

/* Returns its constant (not dpt_set_error's value) so that the analyzer can
 * see every failure is negative. */
static int oom(void)
{
    dpt_set_error(DPT_ENOMEM, "pin plan: out of memory");
    return DPT_ENOMEM;
}

/* A candidate PU with the keys the orders sort on. */
typedef struct cand {
    int rank, package, numa, l3, pu;
} cand;

static int cmp_rank_pu(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->rank != y->rank) return x->rank < y->rank ? -1 : 1;
    return (x->pu > y->pu) - (x->pu < y->pu);
}

/* Tree order: package, NUMA node, L3, PU (logical PU order is tree order,
 * so the middle keys only matter where the tables disagree with it). */
static int cmp_tree(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->package != y->package) return x->package < y->package ? -1 : 1;
    if (x->numa != y->numa) return x->numa < y->numa ? -1 : 1;
    if (x->l3 != y->l3) return x->l3 < y->l3 ? -1 : 1;
    return (x->pu > y->pu) - (x->pu < y->pu);
}

static int cmp_pkg_numa_rank_pu(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->package != y->package) return x->package < y->package ? -1 : 1;
    if (x->numa != y->numa) return x->numa < y->numa ? -1 : 1;
    return cmp_rank_pu(a, b);
}

/* Logical index of the L3 cache above PU pu, or -1 (no such level). */
static int l3_of(const dpt_topo *t, int pu)
{
    hwloc_obj_t o = hwloc_get_obj_by_type(t->h, HWLOC_OBJ_PU, (unsigned)pu);
    while (o && o->type != HWLOC_OBJ_L3CACHE) o = o->parent;
    return o ? (int)o->logical_index : -1;
}

/* The PUs a policy may use: with smt, all; without, the first PU of each
 * core (a PU with no core above it counts as its own core). */
static int candidates(const dpt_topo *t, int smt, cand **out)
{
    cand *c = malloc((size_t)t->npu * sizeof *c);
    *out = c;
    if (!c) return oom();
    int n = 0;
    for (int i = 0; i < t->npu; i++)
        if (smt || t->rank[i] == 0)
            c[n++] = (cand){t->rank[i], t->package[i], t->numa[i], l3_of(t, i), i};
    if (n == 0) { /* cannot happen: every core has a first PU */
        free(c);
        *out = NULL;
        dpt_set_error(DPT_EINVAL, "pin plan: the topology has no usable PU");
        return DPT_EINVAL;
    }
    return n;
}

/* The levels scatter deals over, outermost first: package, then NUMA node
 * and L3 in the order they nest. 1 where an L3 spans several nodes (one L3
 * per package with sub-NUMA clustering): the L3 is the outer of the two.
 * 0 where a node holds several L3s (chiplets), one, or none: the node is.
 * c is in tree order, so an L3 spanning nodes shows at a node boundary. */
static int l3_outer(const cand *c, int n)
{
    for (int i = 1; i < n; i++)
        if (c[i].l3 >= 0 && c[i].l3 == c[i - 1].l3 && c[i].numa != c[i - 1].numa) return 1;
    return 0;
}

#define NLEVELS 3 /* package, outer, inner */

static int level_key(const cand *c, int level, int l3_out)
{
    if (level == 0) return c->package;
    return (level == 1) == !l3_out ? c->numa : c->l3;
}

/* Order c[0..n) (sorted in tree order) by round-robin interleaving: level 0
 * deals one PU to each package in turn, each package's own sequence dealing
 * in turn over its NUMA nodes (or L3s, whichever is outer: level 1), each of
 * those over its L3s (or nodes: level 2), each of those sequences being its
 * PUs in logical order. A level the topology lacks is one group and changes
 * nothing. Groups run out at different times when the tree is uneven; the
 * round-robin then skips them. */
static int interleave(const cand *c, int n, int level, int l3_out, int *out)
{
    if (level == NLEVELS || n <= 1) {
        for (int i = 0; i < n; i++) out[i] = c[i].pu;
        return 0;
    }
    int *start = malloc((size_t)(n + 1) * sizeof *start); /* group g: [start[g], start[g+1]) */
    int *sub = malloc((size_t)n * sizeof *sub);
    int rc = 0, ngroups = 0;
    if (!start || !sub) {
        rc = oom();
        goto done;
    }
    for (int i = 0; i < n; i++)
        if (i == 0 || level_key(&c[i], level, l3_out) != level_key(&c[i - 1], level, l3_out))
            start[ngroups++] = i;
    start[ngroups] = n;
    for (int g = 0; g < ngroups; g++)
        if ((rc = interleave(c + start[g], start[g + 1] - start[g], level + 1, l3_out,
                             sub + start[g])))
            goto done;
    for (int round = 0, pos = 0; pos < n; round++)
        for (int g = 0; g < ngroups; g++)
            if (start[g] + round < start[g + 1]) out[pos++] = sub[start[g] + round];
done:
    free(start);
    free(sub);
    return rc;
}

/* compact: SMT rank passes (all cores' first PUs, then all second PUs...),
 * each in logical order. */
static int order_compact(const dpt_topo *t, int smt, int **order, int *n)
{
    cand *c;
    int k = candidates(t, smt, &c);
    if (k < 0) return k;
    qsort(c, (size_t)k, sizeof *c, cmp_rank_pu);
    int *o = malloc((size_t)k * sizeof *o);
    if (!o) {
        free(c);
        return oom();
    }
    for (int i = 0; i < k; i++) o[i] = c[i].pu;
    free(c);
    *order = o;
    *n = k;
    return 0;
}

/* scatter: SMT rank passes, each interleaved over packages, NUMA nodes and
 * L3s. */
static int order_scatter(const dpt_topo *t, int smt, int **order, int *n)
{
    cand *c;
    int k = candidates(t, smt, &c);
    if (k < 0) return k;
    int *o = malloc((size_t)k * sizeof *o);
    int rc = 0;
    if (!o) {
        rc = oom();
        goto fail;
    }
    qsort(c, (size_t)k, sizeof *c, cmp_rank_pu); /* group the passes */
    for (int s = 0; s < k;) {
        int e = s;
        while (e < k && c[e].rank == c[s].rank) e++;
        qsort(c + s, (size_t)(e - s), sizeof *c, cmp_tree);
        if ((rc = interleave(c + s, e - s, 0, l3_outer(c + s, e - s), o + s))) goto fail;
        s = e;
    }
    free(c);
    *order = o;
    *n = k;
    return 0;
fail:
    free(c);
    free(o);
    return rc;
}

/* Deal n threads over ng groups that hold cap[g] usable PUs: one per group
 * in turn, skipping full groups; once all are full, one more per group in
 * turn. The shares of groups with room differ by at most one, the first
 * groups getting the extra. */
static void deal(int n, const int *cap, int ng, int *cnt)
{
    for (int g = 0; g < ng; g++) cnt[g] = 0;
    for (int progressed = 1; n > 0 && progressed;) {
        progressed = 0;
        for (int g = 0; g < ng && n > 0; g++)
            if (cnt[g] < cap[g]) {
                cnt[g]++;
                n--;
                progressed = 1;
            }
    }
    for (int g = 0; n > 0; g = (g + 1) % ng) {
        cnt[g]++;
        n--;
    }
}

/* numa: threads split into contiguous blocks, one per NUMA node that has
 * usable PUs, in package then node order. Packages first: the threads are
 * dealt over the packages (deal above, a package's capacity being its
 * usable PUs), so packages get equal shares, then each package's share is
 * dealt over its nodes. A node spanning packages is one block per package.
 * Inside a node, the compact order, wrapping when oversubscribed. */
static int plan_numa(const dpt_topo *t, int smt, int nthreads, int *tpu)
{
    cand *c;
    int k = candidates(t, smt, &c);
    if (k < 0) return k;
    qsort(c, (size_t)k, sizeof *c, cmp_pkg_numa_rank_pu);
    /* blocks b: c[start[b]..start[b]+size[b]), cnt[b] threads; packages q:
     * blocks first[q]..first[q+1], pcap[q] PUs, pcnt[q] threads */
    int *buf = malloc((size_t)6 * (size_t)(k + 1) * sizeof *buf);
    if (!buf) {
        free(c);
        return oom();
    }
    int *start = buf, *size = start + (k + 1), *cnt = size + (k + 1), *first = cnt + (k + 1),
        *pcap = first + (k + 1), *pcnt = pcap + (k + 1);
    int nb = 0, np = 0;
    for (int i = 0; i < k; i++) {
        int new_pkg = i == 0 || c[i].package != c[i - 1].package;
        if (new_pkg || c[i].numa != c[i - 1].numa) start[nb++] = i;
        if (new_pkg) first[np++] = nb - 1;
    }
    start[nb] = k;
    first[np] = nb;
    for (int b = 0; b < nb; b++) size[b] = start[b + 1] - start[b];
    for (int q = 0; q < np; q++) pcap[q] = start[first[q + 1]] - start[first[q]];
    deal(nthreads, pcap, np, pcnt);
    for (int q = 0; q < np; q++)
        deal(pcnt[q], size + first[q], first[q + 1] - first[q], cnt + first[q]);
    for (int b = 0, th = 0; b < nb; b++)
        for (int j = 0; j < cnt[b]; j++) tpu[th++] = c[start[b] + j % size[b]].pu;
    free(c);
    free(buf);
    return 0;
}

/* ---- the default policy ---------------------------------------------- */

/* Usable cores of t (one PU each, as the policies without smt use them),
 * and in *several whether they lie in more than one package, NUMA node or
 * L3: where they do not, scatter's order is compact's. */
static int usable_cores(const dpt_topo *t, int *several)
{
    cand *c;
    int k = candidates(t, 0, &c);
    if (k < 0) return k;
    *several = 0;
    for (int i = 1; i < k; i++)
        if (c[i].package != c[0].package || c[i].numa != c[0].numa || c[i].l3 != c[0].l3)
            *several = 1;
    free(c);
    return k;
}

dpt_pin_policy dpt_pin_default_for(const dpt_topo *t, int nthreads, double flops_per_byte,
                                   double balance, const char **why)
{
    static _Thread_local char msg[256];
    if (!(balance > 0)) balance = DPT_PIN_BALANCE; /* also NaN */
    dpt_pin_policy p = DPT_PIN_COMPACT;
    int several = 1, cores = t ? usable_cores(t, &several) : 0;
    if (!(flops_per_byte > 0))
        snprintf(msg, sizeof msg, "compact: the workload's flops per byte are not known");
    else if (flops_per_byte >= balance)
        snprintf(msg, sizeof msg,
                 "compact: compute-bound (%.3g flops per byte, machine balance %.3g), so "
                 "neighbouring threads share caches",
                 flops_per_byte, balance);
    else if (cores > 0 && nthreads >= cores)
        snprintf(msg, sizeof msg,
                 "compact: bandwidth-bound (%.3g flops per byte, machine balance %.3g), but "
                 "%d threads fill all %d cores, which scatter would use too",
                 flops_per_byte, balance, nthreads, cores);
    else if (cores > 0 && !several)
        snprintf(msg, sizeof msg,
                 "compact: bandwidth-bound (%.3g flops per byte, machine balance %.3g), but one "
                 "package, NUMA node and L3, where scatter is the same order",
                 flops_per_byte, balance);
    else {
        p = DPT_PIN_SCATTER;
        snprintf(msg, sizeof msg,
                 "scatter: bandwidth-bound (%.3g flops per byte, machine balance %.3g), so the "
                 "threads spread over every package, NUMA node and L3",
                 flops_per_byte, balance);
    }
    if (why) *why = msg;
    return p;
}

int dpt_topo_plan(const dpt_topo *t, int nthreads, const dpt_pin_spec *spec, dpt_place *out)
{
    if (!t || !spec || !out) return dpt_set_error(DPT_EINVAL, "pin plan: missing argument");
    if (nthreads < 1)
        return dpt_set_error(DPT_EINVAL, "pin plan: %d threads (need at least 1)", nthreads);
    if (spec->policy == DPT_PIN_NONE) {
        for (int i = 0; i < nthreads; i++)
            out[i] = (dpt_place){i, -1, -1, -1, -1, DPT_OS_PU_NONE, 0};
        return 0;
    }
    int *tpu = malloc((size_t)nthreads * sizeof *tpu);
    int *load = calloc((size_t)t->npu, sizeof *load);
    int *order = NULL, n = 0, rc = 0;
    if (!tpu || !load) {
        rc = dpt_set_error(DPT_ENOMEM, "pin plan: out of memory for %d threads", nthreads);
        goto done;
    }
    switch (spec->policy) {
    case DPT_PIN_COMPACT:
    case DPT_PIN_SCATTER:
        rc = spec->policy == DPT_PIN_COMPACT ? order_compact(t, spec->smt, &order, &n)
                                             : order_scatter(t, spec->smt, &order, &n);
        if (rc) goto done;
        for (int i = 0; i < nthreads; i++) tpu[i] = order[i % n];
        break;
    case DPT_PIN_NUMA:
        if ((rc = plan_numa(t, spec->smt, nthreads, tpu))) goto done;
        break;
    case DPT_PIN_LIST:
        if (spec->n_list < 1 || !spec->list) {
            rc = dpt_set_error(DPT_EINVAL, "pin list is empty");
            goto done;
        }
        for (int j = 0; j < spec->n_list; j++)
            if (spec->list[j] < 0 || spec->list[j] >= t->npu) {
                rc = dpt_set_error(DPT_EINVAL,
                                   "pin list: PU %d does not exist (this topology has PUs "
                                   "0-%d, logical ids)",
                                   spec->list[j], t->npu - 1);
                goto done;
            }
        for (int i = 0; i < nthreads; i++) tpu[i] = spec->list[i % spec->n_list];
        break;
    default:
        rc = dpt_set_error(DPT_EINVAL, "pin plan: unknown policy %d", (int)spec->policy);
        goto done;
    }
    for (int i = 0; i < nthreads; i++) load[tpu[i]]++;
    for (int i = 0; i < nthreads; i++) {
        int p = tpu[i];
        out[i] = (dpt_place){i, p, t->core[p], t->numa[p], t->package[p], t->os[p], load[p] > 1};
    }
done:
    free(tpu);
    free(load);
    free(order);
    return rc;
}
