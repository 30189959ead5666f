/* The training loop: one OpenMP parallel region per dpt_engine_train call
 * (no fork/join per step). Every step is the same sequence of phase
 * functions of (engine, thread t, team size P): begin, gather, compute,
 * the compute barrier, across ranks, verdict, combine, update, account; the
 * reduction strategy (reduce.c) is a plan of function pointers chosen at
 * create. An epoch ends with its own verdict, then commits or rolls back. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "dpt/error.h"
#include "engine/balance.h"
#include "engine/engine_impl.h"

/* Hand steps [s0, s1) of the epoch (all complete) to the trace callback:
 * at most two runs of rows, where the ring wraps. */
static void trace_flush(const dpt_engine *e, long s0, long s1)
{
    const size_t n = e->trace_steps, P = (size_t)e->P;
    while (s0 < s1) {
        size_t row = (size_t)s0 % n, k = n - row;
        if ((size_t)(s1 - s0) < k) k = (size_t)(s1 - s0);
        e->trace(e->trace_buf + row * P, k * P, e->trace_ud);
        s0 += (long)k;
    }
}

static void fill_stats(dpt_engine *e, dpt_epoch_stats *st)
{
    memset(&st->mean, 0, sizeof st->mean);
    memset(&st->max, 0, sizeof st->max);
    for (int t = 0; t < e->P; t++) {
        const dpt_phase_times *p = &e->ts[t].t;
#define ACC(f)                                                                                     \
    st->mean.f += p->f / e->P;                                                                     \
    if (p->f > st->max.f) st->max.f = p->f;
        ACC(compute) ACC(wait) ACC(reduce) ACC(update) ACC(shuffle) ACC(comm)
#undef ACC
    }
    st->imbalance = st->mean.compute > 0 ? st->max.compute / st->mean.compute : 1.0;
    st->rows_min = st->rows_max = e->ts[0].rows;
    for (int t = 1; t < e->P; t++) {
        if (e->ts[t].rows < st->rows_min) st->rows_min = e->ts[t].rows;
        if (e->ts[t].rows > st->rows_max) st->rows_max = e->ts[t].rows;
    }
}

/* The canonical sum's stack: a block per tree level, and one more. */
static size_t sum_stack_floats(const dpt_engine *e)
{
    size_t levels = 0;
    while (((size_t)1 << levels) < (size_t)e->U) levels++;
    return (levels + 2) * DPT_UPDATE_BLOCK;
}

/* Pin, first-touch this thread's buffers and (fixed order) copy its rows;
 * then every rank agrees that all got that far. Nonzero: do not train. */
static int thread_setup(dpt_engine *e, int t, int P)
{
    train_ctl *c = &e->ctl;
    thread_state *ts = &e->ts[t];
    const size_t np = e->m->n_params, nsc = dpt_model_scratch_floats(e->m);
    int u0, u1, failed = 0;
    thread_units(e, t, P, &u0, &u1);
    if (omp_get_num_threads() != P) {
#pragma omp atomic write
        c->team_ok = 0;
    }
    if (e->bind && dpt_topo_bind_self(e->topo, &e->plan[t]) != 0) {
#pragma omp critical /* unnamed: a named one exports its lock from libdpt.so */
        if (!e->bind_failed) {
            e->bind_failed = 1;
            char w[200];
            snprintf(w, sizeof w, "cannot pin threads (%s): running unpinned", dpt_last_error());
            dpt_engine_add_warning(e, w);
        }
    }
    /* first touch, after pinning: unit buffers, scratch, local rows */
    for (int u = u0; u < u1; u++)
        memset(e->G[unit_buf(e, u)], 0, dpt_pad_floats(np) * sizeof(float));
    if (!ts->scratch && !(ts->scratch = dpt_calloc((nsc ? nsc : 1) * sizeof(float)))) failed = 1;
    if (!ts->tsum && !(ts->tsum = dpt_alloc(sum_stack_floats(e) * sizeof(float)))) failed = 1;
    if (dpt_engine_split_buffers(e, t)) failed = 1;
    dpt_engine_refresh_copies(e, t);
    if (e->step_copy && dpt_engine_ensure_local(e, t, 1)) failed = 1;
    if (e->step_copy && e->local_batching && dpt_engine_copy_shard(e, t)) failed = 1;
    if (!e->step_copy && !e->local_ready) {
        if (dpt_engine_gather_local(e, t)) {
            failed = 1;
        } else {
            int node = -3;
            if (e->bind && ts->cap_rows &&
                dpt_topo_membind_check(e->topo, ts->X, ts->cap_rows * e->ds->ld * 4, &node))
                node = -3;
            ts->numa = node;
        }
    }
    if (failed) {
#pragma omp atomic write
        c->failed = 1;
    }
#pragma omp barrier
    if (e->comm) {
        /* a rank that failed here must not leave the others in a collective */
        if (t == 0) {
            c->comm_rc = e->comm->agree(e->comm->ctx, c->failed || !c->team_ok ? DPT_ENOMEM : 0);
            if (c->comm_rc && !c->failed && c->team_ok) c->failed = 2;
        }
#pragma omp barrier
    }
    if (c->failed || !c->team_ok) return 1;
#pragma omp single
    e->local_ready = !e->step_copy;
    return 0;
}

/* Open the epoch: each thread takes its slice of the snapshot (the model
 * the last epoch committed), thread 0 resets the accounting; the order is
 * reshuffled. */
static void epoch_begin(dpt_engine *e, int t, step *st)
{
    train_ctl *c = &e->ctl;
    thread_state *ts = &e->ts[t];
    memset(&ts->t, 0, sizeof ts->t);
    ts->rows = 0;
    ts->staged = 0;
    st->prev = ts->t;
    st->traced = 0;
    st->off = 0;
    if (t == 0) {
        c->epoch_t0 = c->last_progress = dpt_now();
        c->epoch_loss = 0;
        c->rows_done = 0;
        c->comm_bytes = 0;
    }
    /* each thread its slice: the one it updates, in its own memory */
    size_t lo, hi;
    thread_slice(e, t, e->m->n_params, &lo, &hi);
    memcpy(e->snapshot + lo, e->w + lo, (hi - lo) * sizeof(float));
    if (e->v) memcpy(e->vsnapshot + lo, e->v + lo, (hi - lo) * sizeof(float));
    const size_t mb = (hi - lo) * sizeof(float) * (e->v ? 2 : 1);
    cnt_read(e, t, DPT_CPH_EPOCH, t, mb);
    cnt_write(e, t, DPT_CPH_EPOCH, t, mb);
    if (e->shuffle) {
        double s0 = dpt_now();
        size_t lo = 0, hi = t == 0 ? e->ds->n : 0;
        if (e->local_batching) lo = e->shard_lo[t], hi = e->shard_lo[t + 1];
        dpt_engine_shuffle_range(e, st->epoch, lo, hi);
        cnt_read(e, t, DPT_CPH_EPOCH, t, (hi - lo) * sizeof(uint32_t));
        cnt_write(e, t, DPT_CPH_EPOCH, t, (hi - lo) * sizeof(uint32_t));
        team_barrier(e, t, DPT_CPH_EPOCH);
        ts->t.shuffle += dpt_now() - s0;
    }
}

/* The step's batch, rate and rows, and the last update's verdicts: read
 * before the compute barrier, since this step's update rewrites them. */
static void step_begin(dpt_engine *e, int t, step *st)
{
    st->gstep = e->step_count + st->s;
    st->b = batch_size(e, st->s);
    st->gscale = 1.0f / (float)st->b;
    st->lr = (float)dpt_optim_lr(&e->opt, st->gstep, st->epoch, e->steps_per_epoch);
    st->bad = __atomic_load_n(&e->grad_bad.v, __ATOMIC_RELAXED);
    cnt_read(e, t, DPT_CPH_SYNC, 0, DPT_LINE);
    st->tr = st->tu = 0;
    /* read once, by one thread, before the compute barrier: every thread
     * sees the same value in verdict, and the next write is after the
     * barrier that ends this step */
    if (t == 0) e->ctl.intr = e->intr_flag && !e->comm && *e->intr_flag;
    dpt_engine_batch_part(e, t, st->b, st->gstep, &st->tlo, &st->thi);
    if (e->adaptive) cnt_read(e, t, DPT_CPH_SYNC, 0, DPT_LINE); /* the shares */
}

/* The step's rows into the thread's buffer, where they change every step
 * (reshuffled or adaptive); [*lo, *hi) of the epoch's order. */
static void copy_step_rows(dpt_engine *e, int t, const step *st, size_t *lo, size_t *hi)
{
    dpt_engine_step_span(e, t, st->s, st->off, st->tlo, st->thi, lo, hi);
    dpt_engine_copy_rows(e, t, *lo, *hi, e->ts[t].X, e->ts[t].y);
}

/* gather: this step's rows, copied fresh into cache for the kernels when
 * they change every step (reshuffled or adaptive); else already in place.
 * Staged (the layer split, stage_next), the copy is made already: only
 * counted here. */
static void gather(dpt_engine *e, int t, step *st)
{
    thread_state *ts = &e->ts[t];
    st->base = st->off;
    st->g0 = st->c0 = dpt_now();
    if (e->step_copy) {
        size_t lo, hi;
        if (ts->staged)
            dpt_engine_step_span(e, t, st->s, st->off, st->tlo, st->thi, &lo, &hi);
        else
            copy_step_rows(e, t, st, &lo, &hi);
        const size_t rb = (hi - lo) * (e->ds->ld + 1) * sizeof(float);
        cnt_read(e, t, DPT_CPH_GATHER, e->local_batching ? t : 0, (hi - lo) * sizeof(uint32_t));
        cnt_read(e, t, DPT_CPH_GATHER, ts->SX ? t : 0, rb);
        cnt_write(e, t, DPT_CPH_GATHER, t, rb);
        st->base = 0;
        st->c0 = dpt_now();
        ts->t.shuffle += st->c0 - st->g0;
    }
}

/* What one unit's gradient moves: the parameters (unless it has no rows),
 * its rows, the gradient buffer and the loss slot, all but w its own. */
static void count_unit(dpt_engine *e, int t, size_t n)
{
    const size_t np = e->m->n_params * sizeof(float);
    if (n) {
        dpt_engine_count_w(e, &e->ts[t].cnt, t, DPT_CPH_COMPUTE, np);
        cnt_read(e, t, DPT_CPH_COMPUTE, t, n * (e->ds->d + 1) * sizeof(float));
    }
    cnt_write(e, t, DPT_CPH_COMPUTE, t, np + DPT_LINE);
    e->ts[t].cnt.flops += (uint64_t)(e->flops_per_row * (double)n + 0.5);
}

/* compute: each of this thread's units' gradient into its own buffer, or
 * (layer split) its share of each of its domain's units' */
static void compute(dpt_engine *e, int t, int P, step *st)
{
    thread_state *ts = &e->ts[t];
    const dpt_dataset *ds = e->ds;
    const size_t b = st->b, rows = st->thi - st->tlo;
    int u0, u1;
    thread_units(e, t, P, &u0, &u1);
    if (e->split == DPT_SPLIT_LAYER) {
        dpt_engine_split_step(e, &ts->cnt, t, b, 1, ts->staged, ts->X + st->base * ds->ld,
                              ts->y + st->base, st->tlo);
        ts->staged = 0;
    } else
        for (int u = u0; u < u1; u++) {
            /* adaptive: one unit per thread, its rows the cut */
            size_t r0 = e->adaptive ? 0 : unit_row(e, b, u) - st->tlo;
            size_t n = e->adaptive ? rows : unit_row(e, b, u + 1) - unit_row(e, b, u);
            const size_t at = st->base + r0;
            dpt_engine_unit_loss(e, unit_buf(e, u),
                                 dpt_model_grad_to(e->m, e->k, e->wd[e->dom[t]],
                                                   ts->X + at * ds->ld, ds->ld, ts->y + at, n,
                                                   e->G[unit_buf(e, u)], ts->scratch));
            count_unit(e, t, n);
        }
    st->off += rows;
    st->t1 = dpt_now();
    ts->t.compute += st->t1 - st->c0;
    dpt_engine_inject(e, st);
    ts->rows += rows;
    ts->step_secs = st->t1 - st->g0;
    ts->step_rows = rows;
    ts->cnt.steps++;
    ts->cnt.rows += rows;
    ts->cnt.idle_steps += rows == 0;
}

/* Right after the compute barrier: the wait, the trace's finished steps,
 * and (adaptive) the next step's cut from this step's speeds. */
static void after_compute(dpt_engine *e, int t, int P, step *st)
{
    st->t2 = dpt_now();
    e->ts[t].t.wait += st->t2 - st->t1;
    if (t != 0) return;
    /* steps before s are complete; step s reuses the row of step
     * s - trace_steps, written after the next barrier */
    if (e->trace && st->s - st->traced >= (long)e->trace_steps) {
        trace_flush(e, st->traced, st->s);
        st->traced = st->s;
    }
    if (e->adaptive) {
        cnt_scan(e, 0, DPT_CPH_SYNC);
        /* read at the next step's start, after the barrier that ends this
         * step; the other parity is in use now */
        for (int q = 0; q < P; q++) {
            e->bsecs[q] = e->ts[q].step_secs;
            e->brows[q] = e->ts[q].step_rows;
        }
        dpt_balance_update(P, e->bsecs, e->brows, e->speed,
                           e->cum + (size_t)((st->gstep + 1) & 1) * ((size_t)P + 1));
    }
}

/* Under the layer split, right after the compute barrier (the domain's
 * threads are done with this step's rows): the next step's rows, copied
 * and put where the domain reads them, so that its compute starts without
 * a barrier of its own; the team barriers that end this step order them
 * before it (split.c). Not past the epoch's end (the next epoch reshuffles
 * after its own barrier). Counted, and timed as the copy, when that step
 * gathers. */
static void stage_next(dpt_engine *e, int t, const step *st)
{
    const int d = e->dom[t];
    if (e->split != DPT_SPLIT_LAYER || st->s + 1 >= e->steps_per_epoch ||
        e->dom_first[d + 1] - e->dom_first[d] < 2)
        return;
    thread_state *ts = &e->ts[t];
    const double g0 = dpt_now();
    step nx = *st; /* off: this step's rows consumed already */
    nx.s = st->s + 1;
    nx.gstep = st->gstep + 1;
    nx.b = batch_size(e, nx.s);
    dpt_engine_batch_part(e, t, nx.b, nx.gstep, &nx.tlo, &nx.thi);
    size_t base = nx.off;
    if (e->step_copy) {
        size_t lo, hi;
        copy_step_rows(e, t, &nx, &lo, &hi);
        base = 0;
    }
    dpt_engine_split_stage(e, t, nx.b, ts->X + base * e->ds->ld, ts->y + base, nx.tlo);
    ts->t.shuffle += dpt_now() - g0;
}

/* Every thread sees the same loss and flags here, so all reach the same
 * verdict; nonzero: the step is not applied. */
static int verdict(dpt_engine *e, int t, const step *st)
{
    if (e->ctl.intr) {
        if (t == 0) e->ctl.interrupted = 1;
        return 1;
    }
    if (!st->loss_bad && !st->bad) return 0;
    if (t == 0) {
        e->ctl.diverged = 1;
        if (st->bad)
            snprintf(e->ctl.why, sizeof e->ctl.why,
                     "a non-finite gradient or parameter in the update of epoch %d step %ld",
                     st->epoch + 1, st->s);
        else
            snprintf(e->ctl.why, sizeof e->ctl.why, "the loss is %g at epoch %d step %ld", st->lsum,
                     st->epoch + 1, st->s + 1);
    }
    return 1;
}

/* update: with the whole sum in G[0], clip by the global norm, then the
 * optimizer over this thread's slice */
static void update(dpt_engine *e, int t, int P, step *st)
{
    const size_t np = e->m->n_params;
    const float clip = (float)e->opt.clip_norm;
    thread_state *ts = &e->ts[t];
    double c0 = dpt_now();
    size_t lo, hi;
    thread_slice(e, t, np, &lo, &hi);
    float c = 1.0f;
    if (clip > 0) {
        double ss = 0;
        for (size_t i = lo; i < hi; i++) ss += (double)e->G[0][i] * e->G[0][i];
        ts->partial = ss;
        cnt_read(e, t, DPT_CPH_UPDATE, e->unit_owner[0], (hi - lo) * sizeof(float));
        cnt_write(e, t, DPT_CPH_UPDATE, t, DPT_LINE);
        team_barrier(e, t, DPT_CPH_UPDATE);
        double tot = 0; /* in slot order: the same sum whatever the domains */
        for (int s = 0; s < P; s++) tot += e->ts[e->slot_thread[s]].partial;
        cnt_scan(e, t, DPT_CPH_UPDATE);
        double norm = sqrt(tot) * st->gscale;
        if (norm > clip) c = (float)(clip / norm);
    }
    dpt_engine_update_bad(
        e, dpt_optim_update(&e->opt, lo, hi, e->w, e->G[0], e->v, st->gscale * c, st->lr));
    dpt_engine_count_update(e, t, lo, hi, 1);
    dpt_engine_push_copies(e, t, lo, hi);
    st->tu += dpt_now() - c0;
    team_barrier(e, t, DPT_CPH_UPDATE);
}

/* account: the epoch's loss and progress (thread 0), the phase times, and
 * this thread's trace record */
static void step_end(dpt_engine *e, int t, int P, step *st)
{
    train_ctl *c = &e->ctl;
    thread_state *ts = &e->ts[t];
    if (t == 0) {
        c->epoch_loss += st->lsum;
        c->rows_done += st->b;
        if (e->progress && st->t2 - c->last_progress >= e->progress_interval) {
            c->last_progress = st->t2;
            dpt_progress pr = {st->epoch + 1, st->s + 1, e->steps_per_epoch,
                               c->epoch_loss / (double)c->rows_done, st->t2 - c->epoch_t0};
            e->progress(&pr, e->progress_ud);
        }
    }
    ts->t.reduce += st->tr;
    ts->t.update += st->tu;
    if (!e->trace) return;
    dpt_step_record *r = &e->trace_buf[((size_t)st->s % e->trace_steps) * (size_t)P + (size_t)t];
    r->epoch = st->epoch + 1;
    r->step = st->s + 1;
    r->thread = t;
    r->rows = st->thi - st->tlo;
    r->t = (dpt_phase_times){.compute = ts->t.compute - st->prev.compute,
                             .wait = ts->t.wait - st->prev.wait,
                             .reduce = ts->t.reduce - st->prev.reduce,
                             .update = ts->t.update - st->prev.update,
                             .shuffle = ts->t.shuffle - st->prev.shuffle,
                             .comm = ts->t.comm - st->prev.comm};
    st->prev = ts->t;
}

/* One step; nonzero: training stops (divergence, a failed collective). */
static int run_step(dpt_engine *e, int t, int P, step *st)
{
    step_begin(e, t, st);
    gather(e, t, st);
    compute(e, t, P, st);
    team_barrier(e, t, DPT_CPH_SYNC);
    after_compute(e, t, P, st);
    stage_next(e, t, st);
    if (e->red.across(e, t, P, st) || verdict(e, t, st)) return 1;
    if (e->red.combine) e->red.combine(e, t, P, st);
    if (!e->red.fused) update(e, t, P, st);
    step_end(e, t, P, st);
    return 0;
}

/* Thread 0, the epoch complete and finite: its statistics, the loss rule,
 * then commit (the next epoch's snapshot) and the callbacks. */
static void epoch_commit(dpt_engine *e, const step *st)
{
    train_ctl *c = &e->ctl;
    dpt_epoch_stats es = {0};
    es.epoch = st->epoch + 1;
    es.steps = e->steps_per_epoch;
    es.seconds = dpt_now() - c->epoch_t0;
    es.loss = c->epoch_loss / (double)e->ds->n;
    es.samples_per_second = (double)e->ds->n / es.seconds;
    es.comm_bytes = c->comm_bytes;
    fill_stats(e, &es);
    if (e->loss0 > 0 && !(es.loss <= DPT_DIVERGE_LOSS_FACTOR * e->loss0)) {
        c->diverged = 1;
        snprintf(c->why, sizeof c->why,
                 "epoch %d's mean loss %g is over %g times the first epoch's (%g)", es.epoch,
                 es.loss, DPT_DIVERGE_LOSS_FACTOR, e->loss0);
        return;
    }
    if (e->loss0 == 0) e->loss0 = es.loss;
    e->step_count += e->steps_per_epoch;
    c->committed++;
    /* after the epoch's time is taken */
    if (e->trace) trace_flush(e, st->traced, e->steps_per_epoch);
    if (c->cb && c->cb(&es, c->ud)) c->stop = 1;
}

/* The epoch's last verdict, on its last update: every update ends with a
 * barrier and the next is steps away, so all threads read the same flags
 * without another barrier. Nonzero: training stops. */
static int epoch_end(dpt_engine *e, int t, const step *st)
{
    train_ctl *c = &e->ctl;
    const int bad = __atomic_load_n(&e->grad_bad.v, __ATOMIC_RELAXED);
    cnt_read(e, t, DPT_CPH_EPOCH, 0, DPT_LINE);
    if (bad) {
        if (t == 0) {
            c->diverged = 1;
            snprintf(c->why, sizeof c->why,
                     "a non-finite gradient or parameter in the update of epoch %d step %ld",
                     st->epoch + 1, e->steps_per_epoch);
        }
        return 1;
    }
    /* every thread's phase times are final before one reads them all */
    team_barrier(e, t, DPT_CPH_EPOCH);
    if (t == 0) {
        cnt_scan(e, 0, DPT_CPH_EPOCH);
        epoch_commit(e, st);
    }
    team_barrier(e, t, DPT_CPH_EPOCH);
    return c->stop || c->diverged;
}

static int run_epoch(dpt_engine *e, int t, int P, int epoch)
{
    step st = {.epoch = epoch};
    epoch_begin(e, t, &st);
    for (st.s = 0; st.s < e->steps_per_epoch; st.s++)
        if (run_step(e, t, P, &st)) return 1;
    return epoch_end(e, t, &st);
}

/* The call's outcome; a divergence restores the last committed model. */
static int train_status(dpt_engine *e)
{
    const train_ctl *c = &e->ctl;
    if (!c->team_ok)
        return dpt_set_error(DPT_ENOTSUP,
                             "the OpenMP runtime gave fewer than %d threads "
                             "(check OMP_THREAD_LIMIT)",
                             e->P);
    if (c->failed == 2) return c->comm_rc; /* another rank failed: its message is set */
    if (c->failed) return dpt_set_error(DPT_ENOMEM, "cannot allocate per-thread buffers");
    if (c->comm_rc) return c->comm_rc;
    if (c->diverged || c->interrupted) {
        memcpy(e->w, e->snapshot, e->m->n_params * sizeof(float));
        if (e->v) memcpy(e->v, e->vsnapshot, e->m->n_params * sizeof(float));
    }
    if (c->interrupted)
        return dpt_set_error(DPT_EINTERRUPTED,
                             "training interrupted in epoch %d; the model is that of the end of "
                             "epoch %d",
                             e->epochs_done + 1, e->epochs_done);
    if (c->diverged) {
        return dpt_set_error(DPT_EDIVERGED,
                             "training diverged: %s (model rolled back to the start of that "
                             "epoch); try a smaller learning rate",
                             c->why);
    }
    return 0;
}

int dpt_engine_train(dpt_engine *e, int epochs, dpt_epoch_cb cb, void *ud)
{
    train_ctl *c = &e->ctl;
    memset(c, 0, sizeof *c);
    c->team_ok = 1;
    c->cb = cb;
    c->ud = ud;
    e->loss_bad.v = e->grad_bad.v = 0;
    if (e->gather_all && !(c->gloss = malloc((size_t)e->GU * sizeof *c->gloss)))
        return dpt_set_error(DPT_ENOMEM, "out of memory");
    const int first = e->epochs_done;
    omp_set_dynamic(0);
#pragma omp parallel num_threads(e->P)
    {
        const int t = omp_get_thread_num(), P = e->P;
        if (!thread_setup(e, t, P))
            for (int ep = 0; ep < epochs; ep++)
                if (run_epoch(e, t, P, first + ep)) break;
    }
    free(c->gloss);
    c->gloss = NULL;
    e->epochs_done += c->committed;
    return train_status(e);
}
