/* Domains and the canonical sum. Threads are grouped by a level of the
 * machine (dpt_topo_domains); each thread takes a slot in domain order, and
 * the slot, not the thread, picks its units and its slice of the
 * parameters, so a domain's units and slices are contiguous.
 *
 * The gradient is the sum of the units' buffers in one fixed order, the
 * pairwise tree of the units (pairs (a, a + s) for a = 0, 2s, 4s, ..., s =
 * 1, 2, 4, ...: what --reduce tree computes in rounds). Its value depends
 * on the unit count alone, so every domain layout and either reduction
 * gives the same bits. With domains, each domain first sums the subtrees
 * that lie inside it (phase 1, in place into the subtree's first buffer),
 * and the slice owners finish the tree from those (phase 2): what crosses
 * domains is a few subtree sums per domain, not every thread's gradient. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "dpt/error.h"
#include "engine/engine_impl.h"
#include "models/split.h"

/* The subtrees of [a, b) of U leaves, left to right: at x the largest
 * node (x aligned to its size, within [a, b)) that has two children; its
 * span into end[x], its level into level[x], and where it has two leaves
 * or more, into the node list lo/hi. */
static void add_nodes(int U, int a, int b, int *end, int *level, int *lo, int *hi, int *nn)
{
    for (long x = a; x < b;) {
        int k = 0;
        while (x % (2L << k) == 0 && (x + (2L << k) < U ? x + (2L << k) : U) <= b &&
               x + (1L << k) < U)
            k++;
        long e = x + (1L << k) < U ? x + (1L << k) : U;
        end[x] = (int)e;
        level[x] = k;
        if (e - x >= 2) {
            lo[*nn] = (int)x;
            hi[*nn] = (int)e;
            ++*nn;
        }
        x = e;
    }
}

/* The unit buffers of domain d: those of its slots' units. */
static int domain_buf(const dpt_engine *e, int d)
{
    return unit_buf(e, e->u_base + (int)((long)e->u_local * e->dom_first[d] / e->P));
}

/* Packages, where the domains lie in two or more, each package's slots
 * together, in one process (else npk stays 0). Where the layer split cut
 * the domains into groups (which share their package's cache), the
 * package level of the canonical sum: the subtrees inside a package that
 * span several of its groups' items, which the package's threads sum
 * (phase 1b, reduce.c), so that the slice owners read a few items per
 * package, not one per group: what crosses the link per slice falls from
 * the other packages' groups to their packages' items; and the groups
 * read a copy of w per package (dpt_engine_alloc_copies). Elsewhere (an
 * L3 a domain) the pass would move more bytes between caches than it
 * keeps off the link (docs/engine.md). */
static int plan_packages(dpt_engine *e)
{
    const int P = e->P, U = e->U;
    int npk = 1;
    if (e->nd < 2 || e->comm || !e->plan) return 0;
    for (int s = 0; s < P; s++) {
        const int pk = e->plan[e->slot_thread[s]].package;
        if (pk < 0 || e->plan[e->slot_thread[s]].pu < 0) return 0; /* unpinned */
        if (s > 0 && pk != e->plan[e->slot_thread[s - 1]].package) {
            for (int q = 0; q < s; q++) /* a package seen before: not together */
                if (e->plan[e->slot_thread[q]].package == pk) return 0;
            npk++;
        }
    }
    if (npk < 2) return 0;
    if (!(e->pk_first = calloc((size_t)npk + 1, sizeof(int)))) return -1;
    for (int s = 1, k = 0; s < P; s++)
        if (e->plan[e->slot_thread[s]].package != e->plan[e->slot_thread[s - 1]].package)
            e->pk_first[++k] = s;
    e->pk_first[npk] = P;
    e->npk = npk;
    if (!e->grouped) return 0;
    e->pnode_first = calloc((size_t)npk + 1, sizeof(int));
    e->top_end = malloc((size_t)U * sizeof(int));
    e->top_level = malloc((size_t)U * sizeof(int));
    e->pnode_lo = malloc((size_t)U * sizeof(int));
    e->pnode_hi = malloc((size_t)U * sizeof(int));
    if (!e->pnode_first || !e->top_end || !e->top_level || !e->pnode_lo || !e->pnode_hi) return -1;
    memcpy(e->top_end, e->item_end, (size_t)U * sizeof(int));
    memcpy(e->top_level, e->item_level, (size_t)U * sizeof(int));
    int nn = 0;
    for (int k = 0; k < npk; k++) {
        const int a = unit_buf(e, e->u_base + (int)((long)e->u_local * e->pk_first[k] / P));
        const int b = unit_buf(e, e->u_base + (int)((long)e->u_local * e->pk_first[k + 1] / P));
        e->pnode_first[k] = nn;
        add_nodes(U, a, b, e->top_end, e->top_level, e->pnode_lo, e->pnode_hi, &nn);
        /* a node that is one domain item is summed already */
        int keep = e->pnode_first[k];
        for (int j = e->pnode_first[k]; j < nn; j++)
            if (e->item_end[e->pnode_lo[j]] != e->pnode_hi[j]) {
                e->pnode_lo[keep] = e->pnode_lo[j];
                e->pnode_hi[keep++] = e->pnode_hi[j];
            }
        nn = keep;
    }
    e->pnode_first[npk] = nn;
    e->pk_level = 1;
    return 0;
}

static int plan_items(dpt_engine *e)
{
    const int U = e->U, nd = e->nd;
    e->item_end = malloc((size_t)U * sizeof(int));
    e->item_level = malloc((size_t)U * sizeof(int));
    e->node_lo = malloc((size_t)U * sizeof(int));
    e->node_hi = malloc((size_t)U * sizeof(int));
    e->dnode_first = calloc((size_t)nd + 1, sizeof(int));
    if (!e->item_end || !e->item_level || !e->node_lo || !e->node_hi || !e->dnode_first) return -1;
    for (int x = 0; x < U; x++) e->item_end[x] = x + 1, e->item_level[x] = 0;
    int nn = 0;
    /* one domain needs no subtrees, unless the layer split folds it */
    for (int d = 0; d < nd && (nd > 1 || e->fold); d++) {
        e->dnode_first[d] = nn;
        add_nodes(U, domain_buf(e, d), domain_buf(e, d + 1), e->item_end, e->item_level, e->node_lo,
                  e->node_hi, &nn);
    }
    e->dnode_first[nd] = nn;
    if (plan_packages(e)) return -1;
    if (!e->pk_level) e->top_end = e->item_end, e->top_level = e->item_level;
    return 0;
}

int dpt_engine_plan_domains(dpt_engine *e, dpt_domain_level level, dpt_split want)
{
    const int P = e->P;
    e->dom = malloc((size_t)P * sizeof(int));
    e->slot = malloc((size_t)P * sizeof(int));
    e->slot_thread = malloc((size_t)P * sizeof(int));
    if (!e->dom || !e->slot || !e->slot_thread) return -1;
    e->nd = dpt_topo_domains(e->topo, e->plan, P, level, e->dom, &e->domain);
    /* the layer split's groups inside a large domain */
    const int whole = e->nd;
    e->nd = dpt_split_domains(e->m, dpt_kernels_get(), e->B, P, e->adaptive, e->plan, level, want,
                              e->dom, e->nd);
    e->grouped = e->nd != whole;
    if (!(e->dom_first = calloc((size_t)e->nd + 1, sizeof(int)))) return -1;
    for (int t = 0; t < P; t++) e->dom_first[e->dom[t] + 1]++;
    for (int d = 0; d < e->nd; d++) e->dom_first[d + 1] += e->dom_first[d];
    int *next = malloc((size_t)e->nd * sizeof(int));
    if (!next) return -1;
    memcpy(next, e->dom_first, (size_t)e->nd * sizeof(int));
    for (int t = 0; t < P; t++) {
        e->slot[t] = next[e->dom[t]]++;
        e->slot_thread[e->slot[t]] = t;
    }
    free(next);
    dpt_engine_resolve_split(e, want);
    return plan_items(e);
}

/* The copies of w (dpt_engine_has_copies): one per domain under the data
 * split, allocated here and first touched by its threads: w itself is
 * spread over the threads that update it (each its slice,
 * dpt_engine_touch_slices), so no domain reads it. With one domain, it
 * reads w. So does every domain of the layer split within a package: a
 * thread there reads only its share of w (its rows, and its columns for
 * the input gradient), during the compute, from the threads that updated
 * them; per-domain copies would cost the update a push of all of w into
 * every domain (docs/engine.md). Across packages (a package level) the
 * layer split reads one copy per package, first touched by its threads:
 * the update pushes each slice once over the link instead of every
 * group reading its share of it from there every step. */
static int n_copies(const dpt_engine *e)
{
    return !dpt_engine_has_copies(e) ? 0 : e->split == DPT_SPLIT_LAYER ? e->npk : e->nd;
}

/* The copy domain d reads. */
static int copy_of_domain(const dpt_engine *e, int d)
{
    return e->split == DPT_SPLIT_LAYER ? dpt_engine_package_of(e, e->slot_thread[e->dom_first[d]])
                                       : d;
}

/* The slots of copy c's threads (a domain's or a package's): the first
 * returned, the end into *s1. */
static int copy_slots(const dpt_engine *e, int c, int *s1)
{
    const int s0 = e->split == DPT_SPLIT_LAYER ? e->pk_first[c] : e->dom_first[c];
    *s1 = e->split == DPT_SPLIT_LAYER ? e->pk_first[c + 1] : e->dom_first[c + 1];
    return s0;
}

int dpt_engine_alloc_copies(dpt_engine *e)
{
    const int nc = n_copies(e);
    if (!(e->wd = calloc((size_t)e->nd, sizeof *e->wd))) return -1;
    if (nc && !(e->wcopy = calloc((size_t)nc, sizeof *e->wcopy))) return -1;
    for (int c = 0; c < nc; c++)
        if (!(e->wcopy[c] = dpt_alloc(dpt_pad_floats(e->m->n_params) * sizeof(float)))) return -1;
    for (int d = 0; d < e->nd; d++) e->wd[d] = nc ? e->wcopy[copy_of_domain(e, d)] : e->w;
    return 0;
}

void dpt_engine_count_w(const dpt_engine *e, dpt_thread_counts *c, int t, int ph, size_t bytes)
{
    int s0 = 0, s1 = e->P;
    if (dpt_engine_has_copies(e)) {
        if (e->split != DPT_SPLIT_LAYER) {
            dpt_count_read(e, c, t, ph, dpt_engine_domain_owner(e, e->dom[t]), bytes);
            return;
        }
        s0 = copy_slots(e, dpt_engine_package_of(e, t), &s1);
    }
    /* spread with the threads that wrote the slices: w's slice owners, or
     * the package's threads (their package shares of its copy) */
    const size_t K = (size_t)(s1 - s0);
    for (size_t s = 0; s < K; s++)
        dpt_count_read(e, c, t, ph, e->slot_thread[s0 + (int)s],
                       bytes * (s + 1) / K - bytes * s / K);
}

void dpt_engine_touch_slices(dpt_engine *e, int t)
{
    size_t lo, hi;
    thread_slice(e, t, e->m->n_params, &lo, &hi);
    float *const buf[] = {e->w, e->snapshot, e->v, e->vsnapshot};
    for (size_t i = 0; i < sizeof buf / sizeof buf[0]; i++)
        if (buf[i]) memset(buf[i] + lo, 0, (hi - lo) * sizeof(float));
}

void dpt_engine_free_domains(dpt_engine *e)
{
    if (e->wcopy)
        for (int c = 0; c < n_copies(e); c++) dpt_free(e->wcopy[c]);
    free(e->wcopy);
    free(e->wd);
    free(e->dom);
    free(e->slot);
    free(e->slot_thread);
    free(e->dom_first);
    free(e->item_end);
    free(e->item_level);
    free(e->node_lo);
    free(e->node_hi);
    free(e->dnode_first);
    if (e->top_end != e->item_end) free(e->top_end);
    if (e->top_level != e->item_level) free(e->top_level);
    free(e->pk_first);
    free(e->pnode_first);
    free(e->pnode_lo);
    free(e->pnode_hi);
}

/* Thread t's share of [0, n) inside its domain. */
void dpt_engine_domain_share(const dpt_engine *e, int t, size_t n, size_t *lo, size_t *hi)
{
    const int d = e->dom[t], s0 = e->dom_first[d], D = e->dom_first[d + 1] - s0;
    const size_t i = (size_t)(e->slot[t] - s0);
    *lo = n * i / (size_t)D;
    *hi = n * (i + 1) / (size_t)D;
}

void dpt_engine_package_share(const dpt_engine *e, int t, size_t n, size_t *lo, size_t *hi)
{
    const int s = slot_of(e, t);
    int k = 0;
    while (s >= e->pk_first[k + 1]) k++;
    const size_t i = (size_t)(s - e->pk_first[k]),
                 K = (size_t)(e->pk_first[k + 1] - e->pk_first[k]);
    *lo = n * i / K;
    *hi = n * (i + 1) / K;
}

int dpt_engine_package_of(const dpt_engine *e, int t)
{
    const int s = slot_of(e, t);
    int k = 0;
    while (s >= e->pk_first[k + 1]) k++;
    return k;
}

void dpt_engine_refresh_copies(dpt_engine *e, int t)
{
    if (!dpt_engine_has_copies(e)) return;
    size_t lo, hi;
    if (e->split == DPT_SPLIT_LAYER)
        dpt_engine_package_share(e, t, e->m->n_params, &lo, &hi);
    else
        dpt_engine_domain_share(e, t, e->m->n_params, &lo, &hi);
    memcpy(e->wd[e->dom[t]] + lo, e->w + lo, (hi - lo) * sizeof(float));
}

/* The owner a push into copy c is counted to: its first thread. */
int dpt_engine_copy_owner(const dpt_engine *e, int c)
{
    int s1;
    return e->slot_thread[copy_slots(e, c, &s1)];
}

int dpt_engine_copies(const dpt_engine *e)
{
    return n_copies(e);
}

void dpt_engine_push_copies(dpt_engine *e, int t, size_t lo, size_t hi)
{
    if (!dpt_engine_has_copies(e) || hi <= lo) return;
    cnt_read(e, t, DPT_CPH_UPDATE, t, (hi - lo) * sizeof(float));
    for (int c = 0; c < n_copies(e); c++) {
        memcpy(e->wcopy[c] + lo, e->w + lo, (hi - lo) * sizeof(float));
        cnt_write(e, t, DPT_CPH_UPDATE, dpt_engine_copy_owner(e, c), (hi - lo) * sizeof(float));
    }
}

/* left + right into stack slot p (left may already be there) */
static const float *merge(const dpt_engine *e, float *stack, int p, const float *left,
                          const float *right, size_t n)
{
    float *buf = stack + (size_t)p * DPT_UPDATE_BLOCK;
    if (left != buf) memcpy(buf, left, n * sizeof(float));
    e->k->add(n, right, buf);
    return buf;
}

const float *dpt_engine_tree_sum(const dpt_engine *e, float *stack, size_t b0, size_t n, int lo,
                                 int hi, const int *end, const int *level)
{
    const float *ptr[64];
    int lvl[64], depth = 0;
    for (int x = lo; x < hi;) {
        int k = end ? level[x] : 0;
        const float *cur = e->G[x] + b0;
        x = end ? end[x] : x + 1;
        while (depth && lvl[depth - 1] == k) {
            cur = merge(e, stack, depth - 1, ptr[depth - 1], cur, n);
            depth--;
            k++;
        }
        ptr[depth] = cur;
        lvl[depth++] = k;
    }
    for (; depth > 1; depth--)
        ptr[depth - 2] = merge(e, stack, depth - 2, ptr[depth - 2], ptr[depth - 1], n);
    return ptr[0];
}
