/* The reduction strategies: how a step turns the units' gradients into one
 * sum (and, fused, into the update). Within a rank: a pairwise tree or a
 * reduce-scatter; across ranks: an all-reduce of the rank's sum (blocking or
 * in overlapped chunks) or, deterministic, an all-gather of every leaf. */
#include <string.h>

#include "dpt/error.h"
#include "engine/engine_impl.h"
#include "optim/optim_impl.h"

double dpt_engine_loss_sum(const dpt_engine *e)
{
    double lsum = 0;
    for (int u = 0; u < e->U; u++) lsum += e->uloss[u].v;
    return lsum;
}

/* dpt_engine_loss_sum by thread t: a line from each unit's owner */
static void count_loss_sum(dpt_engine *e, int t)
{
    for (int u = 0; u < e->U; u++) cnt_read(e, t, DPT_CPH_SYNC, e->unit_owner[u], DPT_LINE);
}

void dpt_engine_count_update(dpt_engine *e, int t, size_t lo, size_t hi, int reads_g0)
{
    const size_t len = (hi - lo) * sizeof(float), wv = len * (e->v ? 2 : 1);
    if (reads_g0) cnt_read(e, t, DPT_CPH_UPDATE, e->unit_owner[0], len);
    cnt_read(e, t, DPT_CPH_UPDATE, t, wv); /* its own slice (touch_slices) */
    cnt_write(e, t, DPT_CPH_UPDATE, t, wv);
    cnt_write(e, t, DPT_CPH_UPDATE, t, DPT_LINE); /* its verdict flag */
}

/* Subtrees [nlo[j], nhi[j]), j in [j0, j1), over floats [lo, hi), each
 * summed into its first buffer from its items (at x: [x, end[x]) at level
 * level[x]; end NULL: its leaves), and counted. */
static void sum_nodes(dpt_engine *e, int t, size_t lo, size_t hi, const int *nlo, const int *nhi,
                      int j0, int j1, const int *end, const int *level)
{
    for (int j = j0; j < j1; j++) {
        const int a = nlo[j], b = nhi[j];
        for (size_t b0 = lo; b0 < hi; b0 += DPT_UPDATE_BLOCK) {
            const size_t n = hi - b0 < DPT_UPDATE_BLOCK ? hi - b0 : DPT_UPDATE_BLOCK;
            const float *sum = dpt_engine_tree_sum(e, e->ts[t].tsum, b0, n, a, b, end, level);
            memcpy(e->G[a] + b0, sum, n * sizeof(float));
        }
        for (int x = a; x < b; x = end ? end[x] : x + 1)
            cnt_read(e, t, DPT_CPH_REDUCE, e->unit_owner[x], (hi - lo) * sizeof(float));
        cnt_write(e, t, DPT_CPH_REDUCE, e->unit_owner[a], (hi - lo) * sizeof(float));
    }
}

/* Phase 1 of the canonical sum (domain.c), with more than one domain and
 * unless the layer split folded the items as it computed (split.c): the
 * subtrees inside this thread's domain, over its domain share of the
 * parameters, from their leaves. A barrier ends it. */
static void domain_nodes(dpt_engine *e, int t)
{
    const int d = e->dom[t];
    size_t lo, hi;
    dpt_engine_domain_share(e, t, e->m->n_params, &lo, &hi);
    sum_nodes(e, t, lo, hi, e->node_lo, e->node_hi, e->dnode_first[d], e->dnode_first[d + 1], NULL,
              NULL);
    team_barrier(e, t, DPT_CPH_REDUCE);
}

/* Phase 1b, with a package level (domain.c plan_packages): the subtrees
 * inside this thread's package that span several of its domains' items,
 * over its package share of the parameters, from those items. A barrier
 * ends it. */
static void package_nodes(dpt_engine *e, int t)
{
    const int k = dpt_engine_package_of(e, t);
    size_t lo, hi;
    dpt_engine_package_share(e, t, e->m->n_params, &lo, &hi);
    sum_nodes(e, t, lo, hi, e->pnode_lo, e->pnode_hi, e->pnode_first[k], e->pnode_first[k + 1],
              e->item_end, e->item_level);
    team_barrier(e, t, DPT_CPH_REDUCE);
}

/* Phases 1 and 1b, where they have work. */
static void below_slices(dpt_engine *e, int t)
{
    if (e->nd > 1 && !e->fold) domain_nodes(e, t);
    if (e->pk_level) package_nodes(e, t);
}

/* Phase 2's reads: this slice of every item's buffer. */
static void count_items(dpt_engine *e, int t, size_t lo, size_t hi)
{
    for (int x = 0; x < e->U; x = e->top_end[x])
        cnt_read(e, t, DPT_CPH_REDUCE, e->unit_owner[x], (hi - lo) * sizeof(float));
}

/* ---- combine: the unit buffers into G[0], each thread its share ---- */

/* The lines of every item's block at b0 (DPT_UPDATE_BLOCK floats), where
 * it lies below hi: the blocks are summed in turn, and the hardware
 * prefetchers do not follow the other cores' buffers far enough ahead
 * (784-256-128-10 at 2 threads: the fused update 107-116 -> 97-101 us a
 * step, with w's lines asked for as well). */
static void prefetch_items(const dpt_engine *e, size_t b0, size_t hi)
{
    if (b0 + DPT_UPDATE_BLOCK > hi) return;
    for (int x = 0; x < e->U; x = e->top_end[x])
        for (size_t o = 0; o < DPT_UPDATE_BLOCK; o += DPT_LINE_FLOATS)
            __builtin_prefetch(e->G[x] + b0 + o, 0, 3);
}

/* reduce-scatter fused with the update: the canonical sum of this thread's
 * slice, a block at a time, goes straight into the update, never stored */
static void combine_scatter_fused(dpt_engine *e, int t, int P, step *st)
{
    size_t lo, hi;
    double r0 = dpt_now();
    /* other threads: their gradients and their reads of w are in other
     * cores' caches, so ask for those lines ahead; alone, the hardware
     * prefetchers keep up and the requests only cost (784-256-128-10 at 1
     * thread: the update 33-46 -> 43-54 us a step with them) */
    const int ask = P > 1;
    below_slices(e, t);
    thread_slice(e, t, e->m->n_params, &lo, &hi);
    int bad = 0;
    for (size_t b0 = lo; b0 < hi; b0 += DPT_UPDATE_BLOCK) {
        const size_t n = hi - b0 < DPT_UPDATE_BLOCK ? hi - b0 : DPT_UPDATE_BLOCK;
        if (ask) prefetch_items(e, b0 + 2 * DPT_UPDATE_BLOCK, hi);
        const float *sum =
            dpt_engine_tree_sum(e, e->ts[t].tsum, b0, n, 0, e->U, e->top_end, e->top_level);
        /* the rest of the slice is this thread's: the kernel asks for the
         * lines of w ahead of the block, which the other threads' forward
         * passes read (each store would wait for them to be taken back) */
        bad |= dpt_optim_update_ahead(&e->opt, n, ask ? hi - b0 : n, e->w + b0, &sum, 1,
                                      e->v ? e->v + b0 : NULL, st->gscale, st->lr);
    }
    dpt_engine_update_bad(e, bad);
    count_items(e, t, lo, hi);
    dpt_engine_count_update(e, t, lo, hi, 0);
    dpt_engine_push_copies(e, t, lo, hi);
    st->tu += dpt_now() - r0;
    team_barrier(e, t, DPT_CPH_REDUCE);
}

/* reduce-scatter: thread t's slice of the canonical sum into G[0] */
static void combine_scatter(dpt_engine *e, int t, int P, step *st)
{
    size_t lo, hi;
    double r0 = dpt_now();
    (void)P;
    below_slices(e, t);
    thread_slice(e, t, e->m->n_params, &lo, &hi);
    for (size_t b0 = lo; b0 < hi; b0 += DPT_UPDATE_BLOCK) {
        const size_t n = hi - b0 < DPT_UPDATE_BLOCK ? hi - b0 : DPT_UPDATE_BLOCK;
        const float *sum =
            dpt_engine_tree_sum(e, e->ts[t].tsum, b0, n, 0, e->U, e->top_end, e->top_level);
        if (sum != e->G[0] + b0) memcpy(e->G[0] + b0, sum, n * sizeof(float));
    }
    count_items(e, t, lo, hi);
    if (e->U > 1) cnt_write(e, t, DPT_CPH_REDUCE, e->unit_owner[0], (hi - lo) * sizeof(float));
    st->tr += dpt_now() - r0;
    team_barrier(e, t, DPT_CPH_REDUCE);
}

/* Pairwise tree: pairs (a, a + st) for a = 0, 2st, 4st, ... with a + st < U,
 * each round split across all threads by parameter chunks, a barrier after
 * each; with fuse the update rides on the last round (one pair, so this
 * thread's chunk of it is its slice [lo, hi)). */
static void tree_rounds(dpt_engine *e, int t, int P, step *st, int fuse)
{
    const size_t np = e->m->n_params;
    const int U = e->U;
    size_t lo, hi; /* the update: this thread's slice, the one it first touched */
    thread_slice(e, t, np, &lo, &hi);
    for (int sp = 1; sp < U; sp *= 2) {
        const size_t npairs = (size_t)((U - sp + 2 * sp - 1) / (2 * sp));
        const size_t W = npairs * np;
        /* by slot: the last round's chunk is the slice this thread updates */
        const size_t sl = (size_t)slot_of(e, t);
        size_t f0 = share_edge(W, sl, (size_t)P), f1 = share_edge(W, sl + 1, (size_t)P);
        double r0 = dpt_now();
        while (f0 < f1) {
            size_t pair = f0 / np, i0 = f0 % np;
            size_t i1 = f1 - pair * np < np ? f1 - pair * np : np;
            int a = (int)pair * 2 * sp;
            e->k->add(i1 - i0, e->G[a + sp] + i0, e->G[a] + i0);
            const size_t len = (i1 - i0) * sizeof(float);
            cnt_read(e, t, DPT_CPH_REDUCE, e->unit_owner[a + sp], len);
            cnt_read(e, t, DPT_CPH_REDUCE, e->unit_owner[a], len);
            cnt_write(e, t, DPT_CPH_REDUCE, e->unit_owner[a], len);
            f0 = pair * np + i1;
        }
        double r1 = dpt_now();
        st->tr += r1 - r0;
        if (2 * sp >= U && fuse) {
            dpt_engine_update_bad(
                e, dpt_optim_update(&e->opt, lo, hi, e->w, e->G[0], e->v, st->gscale, st->lr));
            dpt_engine_count_update(e, t, lo, hi, 1);
            dpt_engine_push_copies(e, t, lo, hi);
            st->tu += dpt_now() - r1;
        }
        team_barrier(e, t, DPT_CPH_REDUCE);
    }
}

static void combine_tree(dpt_engine *e, int t, int P, step *st)
{
    tree_rounds(e, t, P, st, 0);
}

static void combine_tree_fused(dpt_engine *e, int t, int P, step *st)
{
    tree_rounds(e, t, P, st, 1);
}

/* ---- across: the loss (and the gradient) of every rank ---- */

/* one process, or nothing to exchange: the rank's loss is the loss. Its
 * verdict is the team's flag line (a unit's loss not finite); thread 0 alone
 * sums the units' losses, for the epoch's loss and the progress */
static int across_none(dpt_engine *e, int t, int P, step *st)
{
    (void)P;
    st->loss_bad = __atomic_load_n(&e->loss_bad.v, __ATOMIC_RELAXED);
    cnt_read(e, t, DPT_CPH_SYNC, 0, DPT_LINE);
    st->lsum = 0;
    if (t == 0) {
        st->lsum = dpt_engine_loss_sum(e);
        count_loss_sum(e, t);
    }
    return 0;
}

/* deterministic across ranks: every rank gets every leaf and its loss, then
 * runs the same fixed combine over all of them */
static int across_allgather(dpt_engine *e, int t, int P, step *st)
{
    train_ctl *c = &e->ctl;
    const dpt_comm *comm = e->comm;
    const size_t np = e->m->n_params;
    (void)P;
    if (t == 0) {
        for (int u = 0; u < e->GU; u++) c->gloss[u] = e->uloss[u].v;
        double c0 = dpt_now();
        c->comm_rc = comm->allgather(comm->ctx, e->G, np, e->rank_units, c->gloss);
        e->ts[0].t.comm += dpt_now() - c0;
        c->comm_bytes += (double)e->u_local * (double)np * sizeof(float);
        e->ts[0].cnt.sent += (uint64_t)e->u_local * np * sizeof(float);
        for (int u = 0; u < e->GU; u++) e->uloss[u].v = c->gloss[u];
    }
    team_barrier(e, t, DPT_CPH_SYNC);
    if (c->comm_rc) return 1;
    st->lsum = dpt_engine_loss_sum(e);
    st->loss_bad = !isfinite(st->lsum);
    count_loss_sum(e, t);
    return 0;
}

/* the rank's sum, then one all-reduce of it and of the loss */
static int across_allreduce(dpt_engine *e, int t, int P, step *st)
{
    train_ctl *c = &e->ctl;
    const dpt_comm *comm = e->comm;
    const size_t np = e->m->n_params;
    const double lsum = dpt_engine_loss_sum(e);
    count_loss_sum(e, t);
    e->red.rank_sum(e, t, P, st);
    if (t == 0) {
        double c0 = dpt_now();
        c->glsum = lsum;
        c->comm_rc = comm->allreduce(comm->ctx, e->G[0], np, &c->glsum, 1);
        e->ts[0].t.comm += dpt_now() - c0;
    }
    team_barrier(e, t, DPT_CPH_SYNC);
    if (t == 0) c->comm_bytes += (double)np * sizeof(float);
    if (t == 0) e->ts[0].cnt.sent += np * sizeof(float);
    if (c->comm_rc) return 1;
    st->lsum = c->glsum;
    st->loss_bad = !isfinite(st->lsum);
    return 0;
}

/* Overlapped: the parameters in ov_chunks chunks; for each, every thread
 * sums its share of the units into G[0], a barrier, and thread 0 starts the
 * chunk's all-reduce, which runs while all threads sum the next chunk
 * (thread 0 nudging it along between blocks). Then thread 0 finishes them
 * all and sums the loss, and a barrier. */
static int across_overlapped(dpt_engine *e, int t, int P, step *st)
{
    train_ctl *c = &e->ctl;
    const dpt_comm *comm = e->comm;
    const size_t np = e->m->n_params, K = (size_t)e->ov_chunks;
    const double lsum = dpt_engine_loss_sum(e);
    count_loss_sum(e, t);
    for (size_t ch = 0; ch < K; ch++) {
        const size_t c0 = np * ch / K, len = np * (ch + 1) / K - c0;
        const size_t lo = c0 + len * (size_t)t / (size_t)P,
                     hi = c0 + len * (size_t)(t + 1) / (size_t)P;
        double r0 = dpt_now();
        /* the canonical sum of the leaves (domain.c), as the blocking path */
        for (size_t b0 = lo; b0 < hi; b0 += DPT_UPDATE_BLOCK) {
            const size_t n = hi - b0 < DPT_UPDATE_BLOCK ? hi - b0 : DPT_UPDATE_BLOCK;
            const float *sum = dpt_engine_tree_sum(e, e->ts[t].tsum, b0, n, 0, e->U, NULL, NULL);
            if (sum != e->G[0] + b0) memcpy(e->G[0] + b0, sum, n * sizeof(float));
            if (t == 0 && ch > 0 && !c->comm_rc) c->comm_rc = comm->progress(comm->ctx);
        }
        for (int u = 0; u < e->U; u++)
            cnt_read(e, t, DPT_CPH_REDUCE, e->unit_owner[u], (hi - lo) * sizeof(float));
        if (e->U > 1) cnt_write(e, t, DPT_CPH_REDUCE, e->unit_owner[0], (hi - lo) * sizeof(float));
        st->tr += dpt_now() - r0;
        team_barrier(e, t, DPT_CPH_REDUCE);
        if (t == 0 && !c->comm_rc) {
            double q0 = dpt_now();
            c->comm_rc = comm->start_allreduce(comm->ctx, e->G[0] + c0, len);
            e->ts[0].t.comm += dpt_now() - q0;
        }
    }
    if (t == 0) {
        double q0 = dpt_now();
        int rc = comm->finish(comm->ctx); /* even after a failure: nothing left pending */
        if (!c->comm_rc) c->comm_rc = rc;
        c->glsum = lsum;
        if (!c->comm_rc) c->comm_rc = comm->allreduce(comm->ctx, NULL, 0, &c->glsum, 1);
        e->ts[0].t.comm += dpt_now() - q0;
    }
    team_barrier(e, t, DPT_CPH_SYNC);
    if (t == 0) c->comm_bytes += (double)np * sizeof(float);
    if (t == 0) e->ts[0].cnt.sent += np * sizeof(float);
    if (c->comm_rc) return 1;
    st->lsum = c->glsum;
    st->loss_bad = !isfinite(st->lsum);
    return 0;
}

/* ---- the tables: a new strategy is one function and one entry ---- */

typedef enum { ACROSS_NONE, ACROSS_ALLGATHER, ACROSS_ALLREDUCE, ACROSS_OVERLAPPED } across_kind;
static int (*const across_fn[])(dpt_engine *, int, int, step *) = {
    [ACROSS_NONE] = across_none,
    [ACROSS_ALLGATHER] = across_allgather,
    [ACROSS_ALLREDUCE] = across_allreduce,
    [ACROSS_OVERLAPPED] = across_overlapped,
};

/* [scatter][fused] */
static void (*const combine_fn[2][2])(dpt_engine *, int, int, step *) = {
    {combine_tree, combine_tree_fused},
    {combine_scatter, combine_scatter_fused},
};

void dpt_engine_pick_reduce(dpt_engine *e)
{
    /* one unit has nothing to pair: the scatter form is a plain update */
    const int scatter = e->reduce == DPT_REDUCE_SCATTER || e->U == 1;
    /* the whole sum is on this rank once across is done (no all-reduce
     * after the combine), so the update can ride on it unless the global
     * norm must be known first (clipping) */
    const int local_sum = !e->comm || e->gather_all;
    const int fuse = local_sum && (float)e->opt.clip_norm == 0;
    across_kind a = !e->comm           ? ACROSS_NONE
                    : e->gather_all    ? ACROSS_ALLGATHER
                    : e->ov_chunks > 1 ? ACROSS_OVERLAPPED
                                       : ACROSS_ALLREDUCE;
    e->red.across = across_fn[a];
    e->red.combine = local_sum ? combine_fn[scatter][fuse] : NULL;
    e->red.fused = fuse;
    e->red.scatter = scatter;
    e->red.rank_sum = combine_fn[scatter][0];
}
