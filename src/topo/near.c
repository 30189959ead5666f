/* How far apart two threads of a plan sit: the level of the topology they
 * first share (core, L3, NUMA node, package). The engine's counters and the
 * cost function (dpt/cost.h) file every byte a thread touches under the
 * distance of the buffer's owner. */
#include "dpt/cost.h"
#include <stdlib.h>
#include <string.h>

#include "dpt/error.h"
#include "topo/topo_impl.h"

/* Logical index of the L3 cache above PU pu, or -1 (no such level). */
static int l3_of(const dpt_topo *t, int pu)
{
    hwloc_obj_t o = hwloc_get_obj_by_type(t->h, HWLOC_OBJ_PU, (unsigned)pu);
    while (o && o->type != HWLOC_OBJ_L3CACHE) o = o->parent;
    return o ? (int)o->logical_index : -1;
}

dpt_near dpt_topo_near(const dpt_topo *t, const dpt_place *a, const dpt_place *b)
{
    if (a->thread == b->thread) return DPT_NEAR_SELF;
    if (a->pu < 0 || b->pu < 0) return DPT_NEAR_UNKNOWN;
    if (a->pu == b->pu || (a->core >= 0 && a->core == b->core)) return DPT_NEAR_CORE;
    int l3 = l3_of(t, a->pu);
    if (l3 >= 0 && l3 == l3_of(t, b->pu)) return DPT_NEAR_L3;
    if (a->numa == b->numa) return DPT_NEAR_NUMA;
    if (a->package == b->package) return DPT_NEAR_NODE;
    return DPT_NEAR_PACKAGE;
}

const char *dpt_domain_name(dpt_domain_level level)
{
    static const char *const name[] = {"auto", "none", "l3", "numa", "package"};
    return (unsigned)level <= DPT_DOMAIN_PACKAGE ? name[level] : "?";
}

int dpt_domain_parse(const char *text, dpt_domain_level *out)
{
    for (int l = DPT_DOMAIN_AUTO; l <= DPT_DOMAIN_PACKAGE; l++)
        if (!strcmp(text, dpt_domain_name((dpt_domain_level)l))) {
            *out = (dpt_domain_level)l;
            return 0;
        }
    return dpt_set_error(DPT_EINVAL, "unknown domain '%s' (allowed: auto, none, l3, numa, package)",
                         text);
}

/* The key of a thread's domain at a fixed level: the L3's logical index,
 * the NUMA node's, the package's (-1 where the PU has none above it). */
static int domain_key(const dpt_topo *t, const dpt_place *p, dpt_domain_level level)
{
    switch (level) {
    case DPT_DOMAIN_L3:
        return l3_of(t, p->pu);
    case DPT_DOMAIN_NUMA:
        return p->numa;
    case DPT_DOMAIN_PACKAGE:
        return p->package;
    default:
        return 0;
    }
}

/* Domains at a fixed level: keys numbered by first appearance. */
static int domains_at(const dpt_topo *t, const dpt_place *plan, int P, dpt_domain_level level,
                      int *out)
{
    int n = 0;
    for (int i = 0; i < P; i++) {
        int key = domain_key(t, &plan[i], level), d = 0;
        while (d < i && domain_key(t, &plan[d], level) != key) d++;
        out[i] = d < i ? out[d] : n++;
    }
    return n;
}

int dpt_topo_domains(const dpt_topo *t, const dpt_place *plan, int P, dpt_domain_level level,
                     int *out, dpt_domain_level *used)
{
    int unpinned = 0;
    for (int i = 0; i < P; i++) unpinned |= plan[i].pu < 0;
    if (unpinned || level == DPT_DOMAIN_NONE) {
        for (int i = 0; i < P; i++) out[i] = 0;
        if (used) *used = DPT_DOMAIN_NONE;
        return 1;
    }
    if (level != DPT_DOMAIN_AUTO) {
        if (used) *used = level;
        return domains_at(t, plan, P, level, out);
    }
    /* the L3 level counts when a NUMA node holds several L3 caches */
    const int l3 = dpt_topo_count(t, HWLOC_OBJ_L3CACHE),
              numa = dpt_topo_count(t, HWLOC_OBJ_NUMANODE);
    const dpt_domain_level order[] = {DPT_DOMAIN_L3, DPT_DOMAIN_NUMA, DPT_DOMAIN_PACKAGE};
    for (int k = l3 > (numa > 0 ? numa : 1) ? 0 : 1; k < 3; k++) {
        int n = domains_at(t, plan, P, order[k], out);
        if (n > 1 && P >= 2 * n) {
            if (used) *used = order[k];
            return n;
        }
    }
    for (int i = 0; i < P; i++) out[i] = 0;
    if (used) *used = DPT_DOMAIN_NONE;
    return 1;
}

/* Whether a pinned team may be cut: within one package, or across
 * packages each of which holds one domain, of consecutive threads (the
 * groups of a package then share its cache and are summed there first).
 * *packages: how many it spans. */
static int cuttable(const dpt_place *plan, const int *dom, int P, int *packages)
{
    unsigned char seen[1024] = {0};
    int runs = 0, mixed = 0;
    *packages = 0;
    for (int t = 0; t < P; t++) {
        const int pk = plan[t].package;
        if (plan[t].pu < 0 || pk < 0 || pk >= 1024) return 0;
        if (t == 0 || pk != plan[t - 1].package)
            runs++;
        else
            mixed |= dom[t] != dom[t - 1];
        *packages += !seen[pk];
        seen[pk] = 1;
    }
    return *packages == 1 || (runs == *packages && !mixed);
}

int dpt_topo_split_groups(const dpt_place *plan, int P, int *dom, int nd, int most, int size,
                          int *across)
{
    int packages, largest = 0;
    if (across) *across = 0;
    if (!plan || !dom || P < 1 || !cuttable(plan, dom, P, &packages)) return nd;
    int *k = calloc((size_t)nd + 1, sizeof *k);
    if (!k) {
        dpt_set_error(DPT_ENOMEM, "out of memory");
        return -1;
    }
    for (int t = 0; t < P; t++)
        if (dom[t] >= 0 && dom[t] < nd && ++k[dom[t]] > largest) largest = k[dom[t]];
    free(k);
    if (largest <= most) return nd;
    const int n = dpt_topo_domain_groups(dom, P, most, size);
    if (across && n > nd) *across = packages > 1;
    return n;
}

int dpt_topo_domain_groups(int *dom, int P, int most, int size)
{
    if (P < 0 || size < 1) {
        dpt_set_error(DPT_EINVAL, "domain groups: %d threads, groups of %d", P, size);
        return -1;
    }
    int nd = 0;
    for (int t = 0; t < P; t++) {
        if (dom[t] < 0 || dom[t] > nd) {
            dpt_set_error(DPT_EINVAL, "thread %d's domain %d is not numbered by first thread", t,
                          dom[t]);
            return -1;
        }
        nd += dom[t] == nd;
    }
    /* per domain: its threads, those seen, its first group; per group its
     * new number */
    int *k = calloc(3 * (size_t)nd + (size_t)P + 1, sizeof *k);
    if (!k) {
        dpt_set_error(DPT_ENOMEM, "out of memory");
        return -1;
    }
    int *seen = k + nd, *base = seen + nd, *id = base + nd, n = 0, m = 0;
    for (int t = 0; t < P; t++) k[dom[t]]++;
    for (int d = 0; d < nd; d++) {
        base[d] = n;
        n += k[d] > most ? (k[d] + size - 1) / size : 1;
    }
    for (int g = 0; g < n; g++) id[g] = -1;
    for (int t = 0; t < P; t++) {
        const int d = dom[t], ng = k[d] > most ? (k[d] + size - 1) / size : 1;
        const int g = base[d] + (int)((long)seen[d]++ * ng / k[d]);
        /* numbered by first thread again (groups of interleaved domains) */
        if (id[g] < 0) id[g] = m++;
        dom[t] = id[g];
    }
    free(k);
    return n;
}
