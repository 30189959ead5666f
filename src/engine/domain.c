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
 * node (x aligned to its size, within [a, b)) that has two children. */
static int add_nodes(dpt_engine *e, int a, int b, int *nn)
{
    const long U = e->U;
    for (long x = a; x < b;) {
        int k = 0;
        while (x % (2L << k) == 0 && (x + (2L << k) < U ? x + (2L << k) : U) <= b &&
               x + (1L << k) < U)
            k++;
        long end = x + (1L << k) < U ? x + (1L << k) : U;
        e->item_end[x] = (int)end;
        e->item_level[x] = k;
        if (end - x >= 2) {
            e->node_lo[*nn] = (int)x;
            e->node_hi[*nn] = (int)end;
            ++*nn;
        }
        x = end;
    }
    return 0;
}

/* The unit buffers of domain d: those of its slots' units. */
static int domain_buf(const dpt_engine *e, int d)
{
    return unit_buf(e, e->u_base + (int)((long)e->u_local * e->dom_first[d] / e->P));
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
        add_nodes(e, domain_buf(e, d), domain_buf(e, d + 1), &nn);
    }
    e->dnode_first[nd] = nn;
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
    e->nd = dpt_split_domains(e->m, dpt_kernels_get(), e->B, P, e->adaptive, e->plan, level, want,
                              e->dom, e->nd);
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

/* With domains, a copy of the parameters for each, allocated here and
 * first touched by its threads: w itself is spread over the threads that
 * update it (each its slice, dpt_engine_touch_slices), so no domain reads
 * it. With one domain, it reads w. So does every domain of the layer
 * split: a thread there reads only its share of w (its rows, and its
 * columns for the input gradient), during the compute, from the threads
 * that updated them; the copies would cost the update a push of all of w
 * into every domain (docs/engine.md). */
int dpt_engine_alloc_copies(dpt_engine *e)
{
    if (!(e->wd = calloc((size_t)e->nd, sizeof *e->wd))) return -1;
    for (int d = 0; d < e->nd; d++)
        if (!dpt_engine_has_copies(e))
            e->wd[d] = e->w;
        else if (!(e->wd[d] = dpt_alloc(dpt_pad_floats(e->m->n_params) * sizeof(float))))
            return -1;
    return 0;
}

void dpt_engine_count_w(const dpt_engine *e, dpt_thread_counts *c, int t, int ph, size_t bytes)
{
    if (dpt_engine_has_copies(e)) {
        dpt_count_read(e, c, t, ph, dpt_engine_domain_owner(e, e->dom[t]), bytes);
        return;
    }
    const size_t P = (size_t)e->P;
    for (size_t s = 0; s < P; s++)
        dpt_count_read(e, c, t, ph, e->slot_thread[s], bytes * (s + 1) / P - bytes * s / P);
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
    if (e->wd && dpt_engine_has_copies(e))
        for (int d = 0; d < e->nd; d++) dpt_free(e->wd[d]);
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
}

/* Thread t's share of [0, n) inside its domain. */
void dpt_engine_domain_share(const dpt_engine *e, int t, size_t n, size_t *lo, size_t *hi)
{
    const int d = e->dom[t], s0 = e->dom_first[d], D = e->dom_first[d + 1] - s0;
    const size_t i = (size_t)(e->slot[t] - s0);
    *lo = n * i / (size_t)D;
    *hi = n * (i + 1) / (size_t)D;
}

/* The copy of domain d's parameters: w for domain 0. */
static float *copy_of(const dpt_engine *e, int d)
{
    return e->wd[d];
}

void dpt_engine_refresh_copies(dpt_engine *e, int t)
{
    if (!dpt_engine_has_copies(e)) return;
    size_t lo, hi;
    dpt_engine_domain_share(e, t, e->m->n_params, &lo, &hi);
    memcpy(copy_of(e, e->dom[t]) + lo, e->w + lo, (hi - lo) * sizeof(float));
}

void dpt_engine_push_copies(dpt_engine *e, int t, size_t lo, size_t hi)
{
    if (!dpt_engine_has_copies(e) || hi <= lo) return;
    cnt_read(e, t, DPT_CPH_UPDATE, t, (hi - lo) * sizeof(float));
    for (int d = 0; d < e->nd; d++) {
        memcpy(copy_of(e, d) + lo, e->w + lo, (hi - lo) * sizeof(float));
        cnt_write(e, t, DPT_CPH_UPDATE, dpt_engine_domain_owner(e, d), (hi - lo) * sizeof(float));
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
                                 int hi, int leaves)
{
    const float *ptr[64];
    int lvl[64], depth = 0;
    for (int x = lo; x < hi;) {
        int k = leaves ? 0 : e->item_level[x];
        const float *cur = e->G[x] + b0;
        x = leaves ? x + 1 : e->item_end[x];
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
