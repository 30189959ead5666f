/* The cost function: what an epoch moves per thread, from the plan alone
 * (dpt/cost.h). The counting itself lives where the bytes move, in train.c
 * and reduce.c; dpt_engine_counts hands it out. */
#include <stdlib.h>
#include <string.h>

#include "dpt/cost.h"
#include "dpt/error.h"
#include "engine/engine_impl.h"

const char *dpt_near_name(dpt_near d)
{
    static const char *const name[DPT_NEAR_COUNT] = {"self", "core",    "l3",     "numa",
                                                     "node", "package", "unknown"};
    return (unsigned)d < DPT_NEAR_COUNT ? name[d] : "?";
}

const char *dpt_cost_phase_name(dpt_cost_phase p)
{
    static const char *const name[DPT_CPH_COUNT] = {"gather", "compute", "reduce",
                                                    "update", "sync",    "epoch"};
    return (unsigned)p < DPT_CPH_COUNT ? name[p] : "?";
}

uint64_t dpt_move_read(const dpt_move *m)
{
    uint64_t s = 0;
    for (int d = 0; d < DPT_NEAR_COUNT; d++) s += m->read[d];
    return s;
}

uint64_t dpt_move_written(const dpt_move *m)
{
    uint64_t s = 0;
    for (int d = 0; d < DPT_NEAR_COUNT; d++) s += m->written[d];
    return s;
}

void dpt_thread_counts_add(dpt_thread_counts *a, const dpt_thread_counts *b)
{
    for (int p = 0; p < DPT_CPH_COUNT; p++) {
        a->phase[p].barriers += b->phase[p].barriers;
        for (int d = 0; d < DPT_NEAR_COUNT; d++) {
            a->phase[p].read[d] += b->phase[p].read[d];
            a->phase[p].written[d] += b->phase[p].written[d];
        }
    }
    a->steps += b->steps;
    a->rows += b->rows;
    a->idle_steps += b->idle_steps;
    a->flops += b->flops;
    a->sent += b->sent;
}

void dpt_counts_summarize(const dpt_thread_counts *c, int P, dpt_step_summary *out)
{
    memset(out, 0, sizeof *out);
    if (P < 1 || c[0].steps == 0) return;
    const double steps = (double)c[0].steps;
    out->steps = steps;
    out->rows_min = out->rows_max = (double)c[0].rows / steps;
    for (int t = 0; t < P; t++) {
        for (int p = 0; p < DPT_CPH_COUNT; p++) {
            out->barriers += (double)c[t].phase[p].barriers / steps / P;
            for (int d = 0; d < DPT_NEAR_COUNT; d++) {
                out->read[d] += (double)c[t].phase[p].read[d] / steps;
                out->written[d] += (double)c[t].phase[p].written[d] / steps;
            }
        }
        double rows = (double)c[t].rows / steps;
        if (rows < out->rows_min) out->rows_min = rows;
        if (rows > out->rows_max) out->rows_max = rows;
        out->idle_threads += (double)c[t].idle_steps / steps;
    }
}

void dpt_engine_counts(const dpt_engine *e, dpt_thread_counts *out)
{
    for (int t = 0; t < e->P; t++) out[t] = e->ts[t].cnt;
}

/* ---- the cost function: the engine's step, walked without running it ----
 * Each function below mirrors one phase of train.c/reduce.c and adds what
 * that phase's counting adds there; tests/core/test_cost.c holds the two
 * equal. */

static void c_scan(const dpt_engine *e, dpt_thread_counts *c, int t, int ph)
{
    for (int q = 0; q < e->P; q++) dpt_count_read(e, c, t, ph, q, DPT_LINE);
}

/* the optimizer over [lo, hi): w and v read and written, the flag */
static void c_update(const dpt_engine *e, dpt_thread_counts *c, int t, size_t lo, size_t hi,
                     int reads_g0)
{
    const size_t len = (hi - lo) * sizeof(float), wv = len * (e->v ? 2 : 1);
    if (reads_g0) dpt_count_read(e, c, t, DPT_CPH_UPDATE, e->unit_owner[0], len);
    dpt_count_read(e, c, t, DPT_CPH_UPDATE, t, wv);
    dpt_count_write(e, c, t, DPT_CPH_UPDATE, t, wv);
    dpt_count_write(e, c, t, DPT_CPH_UPDATE, t, DPT_LINE);
}

/* the updated slice into every copy of the parameters */
static void c_push(const dpt_engine *e, dpt_thread_counts *c, int t, size_t lo, size_t hi)
{
    if (!dpt_engine_has_copies(e) || hi <= lo) return;
    dpt_count_read(e, c, t, DPT_CPH_UPDATE, t, (hi - lo) * sizeof(float));
    for (int k = 0; k < dpt_engine_copies(e); k++)
        dpt_count_write(e, c, t, DPT_CPH_UPDATE, dpt_engine_copy_owner(e, k),
                        (hi - lo) * sizeof(float));
}

/* this thread's rows of a batch of b: gathered (reshuffled epochs), then
 * one gradient per unit */
static void c_compute(const dpt_engine *e, dpt_thread_counts *c, int t, size_t b, long gstep)
{
    const size_t np = e->m->n_params * sizeof(float), d = e->ds->d, ld = e->ds->ld;
    size_t tlo, thi;
    dpt_engine_batch_part(e, t, b, gstep, &tlo, &thi);
    const size_t rows = thi - tlo;
    if (e->adaptive) dpt_count_read(e, c, t, DPT_CPH_SYNC, 0, DPT_LINE);
    if (e->step_copy) {
        dpt_count_read(e, c, t, DPT_CPH_GATHER, e->local_batching ? t : 0, rows * sizeof(uint32_t));
        /* local batching reads its own copy of its shard */
        dpt_count_read(e, c, t, DPT_CPH_GATHER, e->local_batching ? t : 0,
                       rows * (ld + 1) * sizeof(float));
        dpt_count_write(e, c, t, DPT_CPH_GATHER, t, rows * (ld + 1) * sizeof(float));
    }
    int u0, u1;
    thread_units(e, t, e->P, &u0, &u1);
    if (e->split == DPT_SPLIT_LAYER)
        dpt_engine_split_step((dpt_engine *)e, c, t, b, 0, gstep > 0, NULL, NULL, 0);
    else
        for (int u = u0; u < u1; u++) {
            size_t n = e->adaptive ? rows : unit_row(e, b, u + 1) - unit_row(e, b, u);
            if (n) {
                dpt_engine_count_w(e, c, t, DPT_CPH_COMPUTE, np);
                dpt_count_read(e, c, t, DPT_CPH_COMPUTE, t, n * (d + 1) * sizeof(float));
            }
            dpt_count_write(e, c, t, DPT_CPH_COMPUTE, t, np + DPT_LINE);
            c->flops += (uint64_t)(e->flops_per_row * (double)n + 0.5);
        }
    c->steps++;
    c->rows += rows;
    c->idle_steps += rows == 0;
}

/* the pairwise tree's rounds: this thread's share of every round's pairs */
static void c_tree(const dpt_engine *e, dpt_thread_counts *c, int t)
{
    const size_t np = e->m->n_params, P = (size_t)e->P;
    const int U = e->U;
    for (int sp = 1; sp < U; sp *= 2) {
        const size_t W = (size_t)((U - sp + 2 * sp - 1) / (2 * sp)) * np;
        const size_t sl = (size_t)slot_of(e, t);
        size_t f0 = share_edge(W, sl, P), f1 = share_edge(W, sl + 1, P);
        while (f0 < f1) {
            size_t pair = f0 / np, i0 = f0 % np;
            size_t i1 = f1 - pair * np < np ? f1 - pair * np : np;
            int a = (int)pair * 2 * sp;
            dpt_count_read(e, c, t, DPT_CPH_REDUCE, e->unit_owner[a + sp],
                           (i1 - i0) * sizeof(float));
            dpt_count_read(e, c, t, DPT_CPH_REDUCE, e->unit_owner[a], (i1 - i0) * sizeof(float));
            dpt_count_write(e, c, t, DPT_CPH_REDUCE, e->unit_owner[a], (i1 - i0) * sizeof(float));
            f0 = pair * np + i1;
        }
        if (2 * sp >= U && e->red.fused) {
            size_t lo, hi;
            thread_slice(e, t, np, &lo, &hi);
            c_update(e, c, t, lo, hi, 1);
            c_push(e, c, t, lo, hi);
        }
        c->phase[DPT_CPH_REDUCE].barriers++;
    }
}

/* the reduce-scatter over this thread's slice: with domains, first the
 * subtrees of its domain over its domain share, then (a package level)
 * those of its package over its package share; then the items of the
 * canonical sum, fused with the update or into G[0] */
static void c_scatter(const dpt_engine *e, dpt_thread_counts *c, int t)
{
    const size_t np = e->m->n_params;
    size_t lo, hi;
    if (e->nd > 1 && !e->fold) {
        const int d = e->dom[t];
        dpt_engine_domain_share(e, t, np, &lo, &hi);
        for (int j = e->dnode_first[d]; j < e->dnode_first[d + 1]; j++) {
            for (int x = e->node_lo[j]; x < e->node_hi[j]; x++)
                dpt_count_read(e, c, t, DPT_CPH_REDUCE, e->unit_owner[x],
                               (hi - lo) * sizeof(float));
            dpt_count_write(e, c, t, DPT_CPH_REDUCE, e->unit_owner[e->node_lo[j]],
                            (hi - lo) * sizeof(float));
        }
        c->phase[DPT_CPH_REDUCE].barriers++;
    }
    if (e->pk_level) { /* phase 1b: the package's subtrees over its package share */
        const int k = dpt_engine_package_of(e, t);
        dpt_engine_package_share(e, t, np, &lo, &hi);
        for (int j = e->pnode_first[k]; j < e->pnode_first[k + 1]; j++) {
            for (int x = e->pnode_lo[j]; x < e->pnode_hi[j]; x = e->item_end[x])
                dpt_count_read(e, c, t, DPT_CPH_REDUCE, e->unit_owner[x],
                               (hi - lo) * sizeof(float));
            dpt_count_write(e, c, t, DPT_CPH_REDUCE, e->unit_owner[e->pnode_lo[j]],
                            (hi - lo) * sizeof(float));
        }
        c->phase[DPT_CPH_REDUCE].barriers++;
    }
    thread_slice(e, t, np, &lo, &hi);
    const size_t len = (hi - lo) * sizeof(float);
    for (int x = 0; x < e->U; x = e->top_end[x])
        dpt_count_read(e, c, t, DPT_CPH_REDUCE, e->unit_owner[x], len);
    if (e->red.fused) {
        c_update(e, c, t, lo, hi, 0);
        c_push(e, c, t, lo, hi);
    } else if (e->U > 1) {
        dpt_count_write(e, c, t, DPT_CPH_REDUCE, e->unit_owner[0], len);
    }
    c->phase[DPT_CPH_REDUCE].barriers++;
}

/* the update after an unfused combine: clipping's norm, then the optimizer */
static void c_unfused_update(const dpt_engine *e, dpt_thread_counts *c, int t)
{
    size_t lo, hi;
    thread_slice(e, t, e->m->n_params, &lo, &hi);
    if ((float)e->opt.clip_norm > 0) {
        dpt_count_read(e, c, t, DPT_CPH_UPDATE, e->unit_owner[0], (hi - lo) * sizeof(float));
        dpt_count_write(e, c, t, DPT_CPH_UPDATE, t, DPT_LINE);
        c->phase[DPT_CPH_UPDATE].barriers++;
        c_scan(e, c, t, DPT_CPH_UPDATE);
    }
    c_update(e, c, t, lo, hi, 1);
    c_push(e, c, t, lo, hi);
    c->phase[DPT_CPH_UPDATE].barriers++;
}

static void c_step(const dpt_engine *e, dpt_thread_counts *c, int t, long s)
{
    const size_t b = batch_size(e, s);
    dpt_count_read(e, c, t, DPT_CPH_SYNC, 0, DPT_LINE); /* the updates' flag line */
    c_compute(e, c, t, b, s);
    c->phase[DPT_CPH_SYNC].barriers++;
    if (e->adaptive && t == 0) c_scan(e, c, t, DPT_CPH_SYNC);
    dpt_count_read(e, c, t, DPT_CPH_SYNC, 0, DPT_LINE); /* the losses' flag line */
    for (int u = 0; t == 0 && u < e->U; u++)            /* thread 0 sums the losses */
        dpt_count_read(e, c, t, DPT_CPH_SYNC, e->unit_owner[u], DPT_LINE);
    if (e->red.scatter)
        c_scatter(e, c, t);
    else
        c_tree(e, c, t);
    if (!e->red.fused) c_unfused_update(e, c, t);
}

/* once per epoch: the snapshot, the shuffle, the closing verdict */
static void c_epoch(const dpt_engine *e, dpt_thread_counts *c, int t)
{
    {
        size_t lo, hi;
        thread_slice(e, t, e->m->n_params, &lo, &hi);
        const size_t mb = (hi - lo) * sizeof(float) * (e->v ? 2 : 1);
        dpt_count_read(e, c, t, DPT_CPH_EPOCH, t, mb);
        dpt_count_write(e, c, t, DPT_CPH_EPOCH, t, mb);
    }
    if (e->shuffle) {
        size_t lo = 0, hi = t == 0 ? e->ds->n : 0;
        if (e->local_batching) lo = e->shard_lo[t], hi = e->shard_lo[t + 1];
        dpt_count_read(e, c, t, DPT_CPH_EPOCH, t, (hi - lo) * sizeof(uint32_t));
        dpt_count_write(e, c, t, DPT_CPH_EPOCH, t, (hi - lo) * sizeof(uint32_t));
        c->phase[DPT_CPH_EPOCH].barriers++;
    }
    dpt_count_read(e, c, t, DPT_CPH_EPOCH, 0, DPT_LINE); /* the updates' flag line */
    c->phase[DPT_CPH_EPOCH].barriers += 2;
    if (t == 0) c_scan(e, c, t, DPT_CPH_EPOCH);
}

/* A shadow engine: the layout create would make, with the tables the
 * costs need (no parameter or gradient buffers). */
static int shadow(dpt_engine *e, const dpt_topo *topo, const dpt_place *plan,
                  const dpt_engine_opts *opts)
{
    int rc = dpt_engine_layout(e, opts);
    if (rc) return rc;
    e->topo = (dpt_topo *)topo;
    if (!(e->plan = calloc((size_t)e->P, sizeof *e->plan)))
        return dpt_set_error(DPT_ENOMEM, "out of memory");
    if (plan)
        memcpy(e->plan, plan, (size_t)e->P * sizeof *e->plan);
    else if ((rc = dpt_topo_plan(topo, e->P, &opts->pin, e->plan)))
        return rc;
    if (dpt_engine_plan_domains(e, opts->domain, opts->split) || dpt_engine_plan_counters(e))
        return dpt_set_error(DPT_ENOMEM, "out of memory");
    if (e->adaptive) {
        if (!(e->cum = malloc(2 * ((size_t)e->P + 1) * sizeof *e->cum)))
            return dpt_set_error(DPT_ENOMEM, "out of memory");
        for (int i = 0; i <= e->P; i++) e->cum[i] = e->cum[e->P + 1 + i] = (double)i / e->P;
    }
    if (e->local_batching) {
        if (!(e->shard_lo = calloc((size_t)e->P + 1, sizeof *e->shard_lo)))
            return dpt_set_error(DPT_ENOMEM, "out of memory");
        for (int t = 0; t < e->P; t++)
            e->shard_lo[t + 1] = e->shard_lo[t] + dpt_engine_thread_rows(e, t);
    }
    /* the costs read only whether there is a velocity, never its values */
    static float has_velocity;
    e->v = dpt_optim_has_velocity(&e->opt) ? &has_velocity : NULL;
    return 0;
}

int dpt_engine_cost(const dpt_topo *topo, const dpt_place *plan, const dpt_model *m,
                    const dpt_optim_spec *o, size_t n, const dpt_engine_opts *opts,
                    dpt_thread_counts *out)
{
    if (opts->comm && opts->comm->size > 1)
        return dpt_set_error(DPT_ENOTSUP, "the cost function covers one rank (no comm)");
    dpt_topo *own = NULL;
    int rc;
    if (!topo) topo = opts->topo;
    if (!topo) {
        if ((rc = dpt_topo_open(&own, NULL, NULL))) return rc;
        topo = own;
    }
    dpt_dataset ds = {.n = n, .d = m->width[0]};
    ds.ld = (ds.d + DPT_ROW_ALIGN_FLOATS - 1) / DPT_ROW_ALIGN_FLOATS * DPT_ROW_ALIGN_FLOATS;
    dpt_engine e = {.m = m, .opt = *o, .ds = &ds, .reduce = opts->reduce};
    e.P = opts->threads > 0 ? opts->threads : dpt_topo_physical_cores();
    e.local_batching = opts->batching_local != 0;
    if (!(rc = shadow(&e, topo, plan, opts))) {
        memset(out, 0, (size_t)e.P * sizeof *out);
        for (int t = 0; t < e.P; t++) {
            for (long s = 0; s < e.steps_per_epoch; s++) c_step(&e, &out[t], t, s);
            c_epoch(&e, &out[t], t);
            /* a team of one skips its barriers (team_barrier) */
            if (e.P == 1)
                for (int p = 0; p < DPT_CPH_COUNT; p++) out[t].phase[p].barriers = 0;
        }
    }
    free(e.plan);
    free(e.near);
    free(e.unit_owner);
    free(e.cum);
    free(e.shard_lo);
    dpt_engine_free_domains(&e);
    dpt_topo_close(own);
    return rc;
}
