/* The layer split (dpt_split DPT_SPLIT_LAYER): the threads of a domain
 * compute the domain's units together. Each computes its share of every
 * layer's outputs (models/split.h): its rows of each W_l read and of the
 * gradient written, its columns of the activations; a domain barrier
 * between the layers. The units are the data split's, cut the
 * same way, so the gradient of each unit has the data split's bits.
 *
 * Where the rank's combine is the reduce-scatter (no all-reduce, no tree),
 * the domain also sums its units: each item's (domain.c's canonical
 * subtrees) sum is left in its first buffer, what domain.c's phase 1
 * computes, in the same order, but over slices the thread wrote itself, so
 * phase 1 is skipped. An item whose units go through one call is summed as
 * it is computed, in registers or the thread's tile (dpt_split_fold), and
 * written once;
 * the thread folds the others' slices pairwise in place after the groups.
 * Otherwise the combine is as for the data split.
 *
 * Units go through dpt_model_grad_split in groups whose rows fit one
 * block together (the small-row regime: a whole domain's units at once,
 * 2 x layers barriers a step), or one at a time when a unit has more. In
 * the first case each thread copies its rows into the domain's buffer
 * (domX of its first thread), so that the units' rows lie side by side and
 * products take runs of them at once: for a step past an epoch's first,
 * right after the previous step's compute (train.c stage_next), so that
 * the team barriers that end that step order them before this one's
 * compute; for the first, before a barrier of the domain's own.
 *
 * One walk serves the step and the cost function: run == 0 only counts. */
#include <string.h>

#include "core/alloc.h"
#include "engine/engine_impl.h"
#include "models/split.h"

typedef struct split_sync {
    dpt_barrier *bar;
    int i;
} split_sync;

static void split_wait(void *ud)
{
    const split_sync *s = ud;
    dpt_barrier_wait(s->bar, s->i);
}

static void split_none(void *ud)
{
    (void)ud;
}

/* The thread whose rows hold global unit u of domain d: the data split's. */
static int unit_thread(const dpt_engine *e, int d, int u)
{
    int s = e->dom_first[d];
    while (s + 1 < e->dom_first[d + 1] && u >= e->u_base + (int)((long)e->u_local * (s + 1) / e->P))
        s++;
    return e->slot_thread[s];
}

/* Per row of a unit, the activation floats thread i of nth reads from and
 * writes to the domain's shared scratch: every product reads its whole
 * input (forward past the first layer, dW past the first, the input
 * gradient reads all of D), and writes its share of the outputs; the loss
 * reads a unit's logits and writes its D (every nth-th unit). */
static void act_floats(const dpt_model *m, int i, int nth, size_t *rd, size_t *wr)
{
    const int L = m->layers;
    size_t r = 0, w = 0, lo, hi;
    for (int l = 0; l < L; l++) {
        dpt_split_share(m->width[l + 1], i, nth, &lo, &hi);
        w += hi - lo;
        if (l == 0) continue;
        r += 2 * m->width[l] + m->width[l + 1];
        dpt_split_share(m->width[l], i, nth, &lo, &hi);
        w += hi - lo;
    }
    *rd = r;
    *wr = w;
}

/* The next group of units from x (buffers), up to xb: units whose rows fit
 * one block together, or one unit of more rows. Returns its end. */
static int next_group(const dpt_engine *e, size_t b, int xa, int ua, int x, int xb, size_t brows)
{
    size_t sum = 0;
    int v = x;
    while (v < xb && v - x < DPT_SPLIT_MAX_UNITS) {
        const int u = v - xa + ua;
        const size_t n = unit_row(e, b, u + 1) - unit_row(e, b, u);
        if (sum + n > brows) break;
        sum += n;
        v++;
    }
    return v > x ? v : x + 1;
}

/* The canonical sum of items [x, end) of the domain in place, over the
 * thread's ranges: pairwise rounds, what domain.c's phase 1 computes. */
static void fold_item(dpt_engine *e, dpt_thread_counts *c, int t, int run, int x, int end,
                      const dpt_split_range *r, int nr, size_t gbytes)
{
    for (int s = 1; x + s < end; s *= 2)
        for (int a = x; a + s < end; a += 2 * s) {
            if (run)
                for (int j = 0; j < nr; j++)
                    e->k->add(r[j].hi - r[j].lo, e->G[a + s] + r[j].lo, e->G[a] + r[j].lo);
            dpt_count_read(e, c, t, DPT_CPH_COMPUTE, t, 2 * gbytes);
            dpt_count_write(e, c, t, DPT_CPH_COMPUTE, t, gbytes);
        }
}

int dpt_engine_split_buffers(dpt_engine *e, int t)
{
    thread_state *ts = &e->ts[t];
    if (e->split != DPT_SPLIT_LAYER) return 0;
    if (e->fold && !ts->tile && !(ts->tile = dpt_calloc(DPT_SPLIT_TILE_FLOATS * sizeof(float))))
        return -1;
    const int s0 = e->dom_first[e->dom[t]];
    if (ts->domX || e->dom_first[e->dom[t] + 1] - s0 < 2 || e->slot_thread[s0] != t) return 0;
    const size_t n = dpt_model_block_rows(e->m) * e->ds->ld;
    return (ts->domX = dpt_calloc(n * sizeof(float))) ? 0 : -1;
}

/* Whether grad_split sums item [y, ye) of the group that ends at gend as
 * it computes it (the fold, an item inside the group, a tile that holds
 * it); else fold_item sums it after the groups. */
static int folds_in_group(const dpt_engine *e, int y, int ye, int gend)
{
    return e->fold && ye - y >= 2 && ye <= gend && dpt_split_fold_fits(e->m, ye - y);
}

/* The bias floats of thread ith of nth's share. */
static size_t bias_floats(const dpt_model *m, int ith, int nth)
{
    size_t f = 0, lo, hi;
    for (int l = 0; l < m->layers; l++)
        if (m->b_off[l] != SIZE_MAX) {
            dpt_split_share(m->width[l + 1], ith, nth, &lo, &hi);
            f += hi - lo;
        }
    return f;
}

/* Thread t's rows of a step of b rows, batch row slo first, put where its
 * domain reads them: where they are (sX, sy, slo), and where the domain's
 * rows fit one block, side by side in unit order in the domain's buffer,
 * so that a product takes a run of units in one call
 * (dpt_model_grad_split). The domain reads them after a barrier. */
static void put_rows(dpt_engine *e, int t, size_t b, const float *rows_X, const float *rows_y,
                     size_t slo)
{
    const int d = e->dom[t], s0 = e->dom_first[d], kd = e->dom_first[d + 1] - s0;
    const int ua = e->u_base + (int)((long)e->u_local * s0 / e->P);
    const int ub = e->u_base + (int)((long)e->u_local * (s0 + kd) / e->P);
    const size_t dr0 = unit_row(e, b, ua), ld = e->ds->ld;
    e->ts[t].sX = rows_X, e->ts[t].sy = rows_y, e->ts[t].slo = slo;
    if (kd > 1 && unit_row(e, b, ub) - dr0 <= dpt_model_block_rows(e->m)) {
        int t0, t1;
        thread_units(e, t, e->P, &t0, &t1);
        const size_t own = unit_row(e, b, t1) - unit_row(e, b, t0);
        memcpy(e->ts[e->slot_thread[s0]].domX + (slo - dr0) * ld, rows_X, own * ld * sizeof(float));
    }
}

void dpt_engine_split_stage(dpt_engine *e, int t, size_t b, const float *rows_X,
                            const float *rows_y, size_t slo)
{
    put_rows(e, t, b, rows_X, rows_y, slo);
    e->ts[t].staged = 1;
}

void dpt_engine_split_step(dpt_engine *e, dpt_thread_counts *c, int t, size_t b, int run,
                           int staged, const float *rows_X, const float *rows_y, size_t slo)
{
    const dpt_model *m = e->m;
    const int d = e->dom[t], s0 = e->dom_first[d], kd = e->dom_first[d + 1] - s0;
    const int i = e->slot[t] - s0, so = e->slot_thread[s0];
    const size_t ld = e->ds->ld, brows = dpt_model_block_rows(m);
    split_sync ss = {e->dbar ? &e->dbar[d] : NULL, i};
    const dpt_split_sync sync = kd > 1 ? split_wait : split_none;
    dpt_split_range r[2 * (DPT_MAX_HIDDEN + 1)];
    const int nr = dpt_split_ranges(m, i, kd, r);
    size_t gfl = 0, ard, awr;
    for (int j = 0; j < nr; j++) gfl += r[j].hi - r[j].lo;
    gfl *= sizeof(float);
    act_floats(m, i, kd, &ard, &awr);
    const int ua = e->u_base + (int)((long)e->u_local * s0 / e->P);
    const int ub = e->u_base + (int)((long)e->u_local * (s0 + kd) / e->P);
    /* where the domain's rows fit one block, each thread puts its own in
     * the domain's buffer, side by side in unit order (put_rows) */
    const size_t dr0 = unit_row(e, b, ua), xf = e->ds->d * sizeof(float);
    const int sbs = kd > 1 && unit_row(e, b, ub) - dr0 <= brows;
    float *side = sbs && run ? e->ts[so].domX : NULL;
    int t0, t1;
    thread_units(e, t, e->P, &t0, &t1);
    const size_t own = unit_row(e, b, t1) - unit_row(e, b, t0);
    if (sbs) {
        dpt_count_read(e, c, t, DPT_CPH_COMPUTE, t, own * xf);
        dpt_count_write(e, c, t, DPT_CPH_COMPUTE, so, own * xf);
    }
    /* every thread's rows of the step in place: a barrier, unless they were
     * put there before the previous step's last (staged) */
    if (run && !staged) put_rows(e, t, b, rows_X, rows_y, slo);
    if (run && !staged && kd > 1) sync(&ss);
    if (kd > 1 && !staged) c->phase[DPT_CPH_COMPUTE].barriers++;
    const int xa = unit_buf(e, ua), xb = unit_buf(e, ub);
    dpt_split_unit un[DPT_SPLIT_MAX_UNITS];
    /* y: the first item not yet summed */
    int fend[DPT_SPLIT_MAX_UNITS], w_read = 0, y = xa;
    const size_t bfl = bias_floats(m, i, kd) * sizeof(float);
    for (int x = xa; x < xb;) {
        const int end = next_group(e, b, xa, ua, x, xb, brows);
        size_t most = 0;
        /* the items summed in this group: their units past the first
         * write only their bias sums (the thread's tile), their dW is
         * added as it is computed */
        for (int v = x; v < end; v++) fend[v - x] = 0;
        for (int z = y; z < end; z = e->item_end[z])
            if (z >= x && folds_in_group(e, z, e->item_end[z], end)) {
                fend[z - x] = e->item_end[z] - x;
                for (int s = 1; s < e->item_end[z] - z; s *= 2)
                    for (int a = z; a + s < e->item_end[z]; a += 2 * s) {
                        dpt_count_read(e, c, t, DPT_CPH_COMPUTE, t, 2 * bfl);
                        dpt_count_write(e, c, t, DPT_CPH_COMPUTE, t, bfl);
                    }
            }
        for (int v = x, cur = 0; v < end; v++) {
            /* cur: the end of the summed item v is in, or 0 */
            const int first = fend[v - x] > 0;
            if (first)
                cur = fend[v - x] + x;
            else if (v >= cur)
                cur = 0;
            const int u = v - xa + ua, q = unit_thread(e, d, u);
            const size_t n = unit_row(e, b, u + 1) - unit_row(e, b, u);
            most = n > most ? n : most;
            if (run) {
                const thread_state *tq = &e->ts[q];
                const size_t at = unit_row(e, b, u) - tq->slo;
                const float *X = side ? side + (unit_row(e, b, u) - dr0) * ld : tq->sX + at * ld;
                un[v - x] = (dpt_split_unit){X, tq->sy + at, n, e->G[v], 0};
            }
            if (n) {
                /* its share of w, once a step: its own cache has it for
                 * the domain's further units */
                if (!w_read)
                    dpt_engine_count_w(e, c, t, DPT_CPH_COMPUTE,
                                       dpt_split_w_floats(m, i, kd) * sizeof(float));
                w_read = 1;
                dpt_count_read(e, c, t, DPT_CPH_COMPUTE, sbs ? so : q, n * xf);
                dpt_count_read(e, c, t, DPT_CPH_COMPUTE, q, n * sizeof(float));
                dpt_count_read(e, c, t, DPT_CPH_COMPUTE, so, n * ard * sizeof(float));
                dpt_count_write(e, c, t, DPT_CPH_COMPUTE, so, n * awr * sizeof(float));
            }
            if ((v - x) % kd == i) {
                dpt_count_read(e, c, t, DPT_CPH_COMPUTE, so,
                               n * m->width[m->layers] * sizeof(float));
                dpt_count_write(e, c, t, DPT_CPH_COMPUTE, so,
                                n * m->width[m->layers] * sizeof(float));
                dpt_count_write(e, c, t, DPT_CPH_COMPUTE, t, DPT_LINE);
            }
            dpt_count_write(e, c, t, DPT_CPH_COMPUTE, t, cur && !first ? bfl : gfl);
            c->flops += (uint64_t)(e->flops_per_row * (double)n * (i + 1) / kd + 0.5) -
                        (uint64_t)(e->flops_per_row * (double)n * i / kd + 0.5);
        }
        if (run) {
            const dpt_split_fold fo = {fend, e->ts[t].tile};
            dpt_model_grad_split(m, e->k, e->wd[d], ld, un, end - x, e->ts[so].scratch, i, kd, sync,
                                 &ss, e->fold ? &fo : NULL);
            for (int v = x + i; v < end; v += kd) dpt_engine_unit_loss(e, v, un[v - x].loss);
        }
        if (kd > 1)
            c->phase[DPT_CPH_COMPUTE].barriers +=
                (uint64_t)(end - x > 1 || most == 0 ? 1 : (most + brows - 1) / brows) *
                (uint64_t)(2 * m->layers);
        /* the items complete now that this group did not sum: in place,
         * over the slices this thread wrote */
        for (; e->fold && y < xb && e->item_end[y] <= end; y = e->item_end[y])
            if (!(y >= x && folds_in_group(e, y, e->item_end[y], end)))
                fold_item(e, c, t, run, y, e->item_end[y], r, nr, gfl);
        x = end;
    }
}
