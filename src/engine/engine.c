/* The engine object: create (checks, the cut of batches into units and of
 * units over ranks, buffers, the reduction plan, the initial parameters),
 * destroy, accessors, and the rows a rank reads under per-rank loading.
 * The loop itself is in train.c, the rows in rows.c, the reductions in
 * reduce.c, evaluation in evaluate.c. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "dpt/error.h"
#include "engine/engine_impl.h"
#include "models/split.h"

void dpt_engine_set_progress(dpt_engine *e, dpt_progress_cb cb, void *ud, double interval)
{
    e->progress = cb;
    e->progress_ud = ud;
    e->progress_interval = interval;
}

int dpt_engine_set_trace(dpt_engine *e, dpt_trace_cb cb, void *ud, size_t buffer_steps)
{
    free(e->trace_buf);
    e->trace_buf = NULL;
    e->trace = NULL;
    if (!cb) return 0;
    const size_t per_step = (size_t)e->P * sizeof(dpt_step_record);
    size_t n = buffer_steps ? buffer_steps : (size_t)e->steps_per_epoch;
    if (!buffer_steps && n > DPT_TRACE_BUFFER / per_step) n = DPT_TRACE_BUFFER / per_step;
    if (n > (size_t)e->steps_per_epoch) n = (size_t)e->steps_per_epoch;
    if (n < 1) n = 1;
    if (!(e->trace_buf = calloc(n, per_step))) return dpt_set_error(DPT_ENOMEM, "out of memory");
    e->trace_steps = n;
    e->trace = cb;
    e->trace_ud = ud;
    return 0;
}

void dpt_engine_add_warning(dpt_engine *e, const char *text)
{
    size_t len = strlen(e->warning);
    snprintf(e->warning + len, sizeof e->warning - len, "%s%s", len ? "; " : "", text);
}

void dpt_engine_numa_report(const dpt_engine *e, int *local, int *remote, int *unknown)
{
    *local = *remote = *unknown = 0;
    for (int t = 0; t < e->P; t++) {
        int n = e->ts[t].numa;
        if (n >= 0 && n == e->plan[t].numa)
            ++*local;
        else if (n >= 0 || n == DPT_NUMA_MIXED)
            ++*remote;
        else
            ++*unknown;
    }
}

void dpt_engine_opts_defaults(dpt_engine_opts *o)
{
    memset(o, 0, sizeof *o);
    o->pin.policy = DPT_PIN_COMPACT;
    o->shuffle = 1;
    /* measured (docs/engine.md): one barrier per step beats log2 rounds for
     * small models and ties for large ones */
    o->reduce = DPT_REDUCE_SCATTER;
    o->seed = 1;
}

int dpt_engine_threads(const dpt_engine *e)
{
    return e->P;
}
int dpt_engine_domains(const dpt_engine *e, dpt_domain_level *level)
{
    if (level) *level = e->domain;
    return e->nd;
}
int dpt_engine_domain_groups(const dpt_engine *e, int *package_level)
{
    if (package_level) *package_level = e->pk_level;
    return e->grouped;
}
dpt_split dpt_engine_split(const dpt_engine *e)
{
    return e->split;
}

const char *dpt_split_name(dpt_split s)
{
    static const char *const name[] = {"auto", "data", "layer"};
    return (unsigned)s <= DPT_SPLIT_LAYER ? name[s] : "?";
}

int dpt_split_parse(const char *text, dpt_split *out)
{
    for (int s = DPT_SPLIT_AUTO; s <= DPT_SPLIT_LAYER; s++)
        if (!strcmp(text, dpt_split_name((dpt_split)s))) {
            *out = (dpt_split)s;
            return 0;
        }
    return dpt_set_error(DPT_EINVAL, "unknown split '%s' (allowed: auto, data, layer)", text);
}

const dpt_place *dpt_engine_plan(const dpt_engine *e)
{
    return e->plan;
}
const char *dpt_engine_isa(const dpt_engine *e)
{
    return e->k->isa;
}
float *dpt_engine_params(dpt_engine *e)
{
    return e->w;
}
const char *dpt_engine_warning(const dpt_engine *e)
{
    return e->warning[0] ? e->warning : NULL;
}

void dpt_engine_reset(dpt_engine *e, const float *w)
{
    size_t np = e->m->n_params;
    memcpy(e->w, w, np * sizeof(float));
    if (e->v) memset(e->v, 0, np * sizeof(float));
    e->step_count = 0;
    e->epochs_done = 0;
    e->loss0 = 0;
    for (int t = 0; t < e->P; t++) memset(&e->ts[t].cnt, 0, sizeof e->ts[t].cnt);
}

void dpt_engine_get_state(const dpt_engine *e, dpt_engine_state *s)
{
    s->epochs = e->epochs_done;
    s->steps = e->step_count;
    s->loss0 = e->loss0;
    s->velocity = e->v;
}

void dpt_engine_set_state(dpt_engine *e, const dpt_engine_state *s)
{
    e->epochs_done = s->epochs;
    e->step_count = s->steps;
    e->loss0 = s->loss0;
    if (e->v) {
        if (s->velocity)
            memcpy(e->v, s->velocity, e->m->n_params * sizeof(float));
        else
            memset(e->v, 0, e->m->n_params * sizeof(float));
    }
}

void dpt_engine_set_interrupt(dpt_engine *e, const volatile sig_atomic_t *flag)
{
    e->intr_flag = flag;
}

void dpt_engine_destroy(dpt_engine *e)
{
    if (!e) return;
    if (e->ts)
        for (int t = 0; t < e->P; t++) {
            dpt_free(e->ts[t].X);
            dpt_free(e->ts[t].y);
            dpt_free(e->ts[t].scratch);
            dpt_free(e->ts[t].tsum);
            dpt_free(e->ts[t].SX);
            dpt_free(e->ts[t].Sy);
            dpt_free(e->ts[t].domX);
            dpt_free(e->ts[t].tile);
        }
    if (e->G)
        for (int u = 0; u < e->U; u++) dpt_free(e->G[u]);
    free(e->G);
    dpt_free(e->ts);
    dpt_free(e->uloss);
    dpt_free(e->w);
    dpt_free(e->v);
    dpt_free(e->snapshot);
    dpt_free(e->vsnapshot);
    free(e->speed);
    free(e->cum);
    free(e->bsecs);
    free(e->brows);
    free(e->order);
    free(e->shard_lo);
    free(e->rank_units);
    free(e->trace_buf);
    free(e->near);
    free(e->unit_owner);
    dpt_barrier_destroy(&e->bar);
    if (e->dbar)
        for (int d = 0; d < e->nd; d++) dpt_barrier_destroy(&e->dbar[d]);
    free(e->dbar);
    dpt_engine_free_domains(e);
    free(e->plan);
    if (e->own_topo) dpt_topo_close(e->topo);
    dpt_free(e);
}

/* What create refuses before allocating anything; R ranks. */
static int check_opts(const dpt_model *m, const dpt_optim_spec *o, const dpt_dataset *ds,
                      const dpt_engine_opts *opts, int R)
{
    if (ds->n == 0) return dpt_set_error(DPT_EINVAL, "the training set has no rows");
    if (ds->d != m->width[0])
        return dpt_set_error(DPT_EINVAL, "the data has %zu features but the model expects %zu",
                             ds->d, m->width[0]);
    if (ds->n > UINT32_MAX) return dpt_set_error(DPT_EINVAL, "more than 2^32-1 rows");
    if (!(o->lr > 0) || !isfinite(o->lr))
        return dpt_set_error(DPT_EINVAL, "learning rate must be a positive number");
    if (o->schedule == DPT_LR_COSINE && o->epochs <= 0)
        return dpt_set_error(DPT_EINVAL, "a cosine learning-rate schedule needs the run's length "
                                         "in epochs (the schedule horizon)");
    if (opts->balance == DPT_BALANCE_ADAPTIVE && (opts->leaves > 0 || opts->batching_local))
        return dpt_set_error(DPT_EINVAL,
                             "adaptive balancing cuts batches by measured speed, so it cannot "
                             "be combined with %s",
                             opts->leaves > 0 ? "deterministic mode" : "local batching");
    if (!(opts->inject_slowdown >= 0 && opts->inject_slowdown <= 10))
        return dpt_set_error(DPT_EINVAL, "inject_slowdown %g is outside [0, 10]",
                             opts->inject_slowdown);
    if (opts->leaves > 0 && opts->batching_local)
        return dpt_set_error(DPT_EINVAL, "local batching makes the batches depend on the thread "
                                         "count, so it cannot be combined with deterministic mode");
    if (opts->leaves > 0 && opts->leaves < R)
        return dpt_set_error(DPT_EINVAL,
                             "deterministic mode sums %d leaves, fewer than the %d ranks "
                             "(every rank computes one leaf at least)",
                             opts->leaves, R);
    if (opts->batching_local && R > 1)
        return dpt_set_error(DPT_EINVAL, "local batching works within one process only");
    if ((unsigned)opts->split > DPT_SPLIT_LAYER)
        return dpt_set_error(DPT_EINVAL, "unknown split %d", (int)opts->split);
    if (opts->split == DPT_SPLIT_LAYER && !dpt_model_splittable(m, dpt_kernels_get()))
        return dpt_set_error(DPT_EINVAL,
                             "the layer split cuts a network's layer products by output columns; "
                             "this model's gradient is one fused kernel (a one-output linear "
                             "model or a tiny MLP): use the data split");
    if (opts->split == DPT_SPLIT_LAYER && opts->balance == DPT_BALANCE_ADAPTIVE)
        return dpt_set_error(DPT_EINVAL, "adaptive balancing cuts rows among threads, which the "
                                         "layer split shares: use static balancing");
    return 0;
}

/* The split in use, once the domains are known (domain.c): auto takes the
 * layer split in the small-row regime of a model big enough for its
 * weights to be the traffic, where every domain holds 2 to
 * DPT_SPLIT_AUTO_DOMAIN threads (dpt_split). The fold follows: the
 * reduce-scatter of one rank reads the items; the tree and the all-reduce
 * read every unit. The layer split's domains read w itself, no copies
 * (dpt_engine_has_copies). */
void dpt_engine_resolve_split(dpt_engine *e, dpt_split want)
{
    int kmax = 0;
    for (int d = 0; d < e->nd; d++)
        if (e->dom_first[d + 1] - e->dom_first[d] > kmax)
            kmax = e->dom_first[d + 1] - e->dom_first[d];
    e->split = want;
    if (want == DPT_SPLIT_AUTO)
        e->split = !e->adaptive && dpt_split_auto_layer(e->m, dpt_kernels_get(), e->B, e->P, kmax)
                       ? DPT_SPLIT_LAYER
                       : DPT_SPLIT_DATA;
    e->fold =
        e->split == DPT_SPLIT_LAYER && !e->comm && (e->reduce == DPT_REDUCE_SCATTER || e->U == 1);
}

/* The cut of every batch into GU units and of the units over the ranks,
 * and what follows from it: batches, steps, how rows reach the threads. */
static void plan_units(dpt_engine *e, const dpt_engine_opts *opts)
{
    const int R = e->comm ? e->comm->size : 1, rank = e->comm ? e->comm->rank : 0;
    if (opts->leaves > 0) {
        e->GU = opts->leaves;
        e->gather_all = R > 1;
    } else {
        e->GU = R * e->P;
    }
    e->u_base = rank_first_unit(e->GU, rank, R);
    e->u_local = rank_first_unit(e->GU, rank + 1, R) - e->u_base;
    e->U = e->gather_all ? e->GU : e->u_local;
    const dpt_optim_spec *o = &e->opt;
    const size_t n = e->ds->n;
    e->B = (o->kind == DPT_OPT_GD || o->batch == 0 || o->batch > n) ? n : o->batch;
    e->shuffle = opts->shuffle && e->B < n;
    e->steps_per_epoch = (long)((n + e->B - 1) / e->B);
    e->bind = opts->pin.policy != DPT_PIN_NONE;
    /* one thread has nothing to balance: it keeps the fixed-order buffers */
    e->adaptive = opts->balance == DPT_BALANCE_ADAPTIVE && e->P > 1;
    e->step_copy = e->shuffle || e->adaptive;
}

/* Per-rank loading: this rank's rows of every batch must be there. */
static int check_part(const dpt_engine *e)
{
    const int rank = e->comm ? e->comm->rank : 0;
    if (!e->ds->part) return 0;
    if (e->shuffle)
        return dpt_set_error(DPT_EINVAL, "the training set holds only part of its rows (per-rank "
                                         "loading), so it cannot be reshuffled: it needs a fixed "
                                         "order");
    for (long s = 0; s < e->steps_per_epoch; s++) {
        size_t start = (size_t)s * e->B, b = batch_size(e, s);
        size_t lo = start + unit_row(e, b, e->u_base),
               hi = start + unit_row(e, b, e->u_base + e->u_local);
        if (!dpt_dataset_holds(e->ds, lo, hi))
            return dpt_set_error(DPT_EINVAL,
                                 "rank %d trains on rows %zu-%zu, which its part of the "
                                 "training set does not hold",
                                 rank, lo + 1, hi);
    }
    return 0;
}

/* Placement: the plan of the threads on the topology. */
static int plan_threads(dpt_engine *e, const dpt_engine_opts *opts)
{
    int rc;
    if (opts->topo) {
        e->topo = opts->topo;
    } else {
        if ((rc = dpt_topo_open(&e->topo, NULL, NULL))) return rc;
        e->own_topo = 1;
    }
    if (!(e->plan = calloc((size_t)e->P, sizeof *e->plan)))
        return dpt_set_error(DPT_ENOMEM, "out of memory");
    if ((rc = dpt_topo_plan(e->topo, e->P, &opts->pin, e->plan))) return rc;
    for (int t = 0; t < e->P && e->bind; t++)
        if (e->plan[t].shared) {
            snprintf(e->warning, sizeof e->warning,
                     "%d threads share %d processing units: oversubscribed, timings suffer", e->P,
                     dpt_topo_count(e->topo, HWLOC_OBJ_PU));
            break;
        }
    return 0;
}

/* Every buffer training needs, so that nothing fails once it has begun.
 * The unit buffers stay untouched here: their owners touch them first. */
static int alloc_buffers(dpt_engine *e)
{
    const size_t np = dpt_pad_floats(e->m->n_params), n = e->ds->n;
    /* first touched slice by slice by the threads that update them
     * (touch_slices), before the parameters are written */
    e->w = dpt_alloc(np * sizeof(float));
    e->snapshot = dpt_alloc(np * sizeof(float));
    if (!e->w || !e->snapshot) return -1;
    if (dpt_optim_has_velocity(&e->opt) && (!(e->v = dpt_alloc(np * sizeof(float))) ||
                                            !(e->vsnapshot = dpt_alloc(np * sizeof(float)))))
        return -1;
    e->G = calloc((size_t)e->U, sizeof *e->G);
    e->uloss = dpt_calloc((size_t)e->U * sizeof *e->uloss);
    e->ts = dpt_calloc((size_t)e->P * sizeof *e->ts);
    if (!e->G || !e->uloss || !e->ts) return -1;
    for (int u = 0; u < e->U; u++)
        if (!(e->G[u] = dpt_alloc(np * sizeof(float)))) return -1;
    if (!(e->order = malloc(n * sizeof *e->order))) return -1;
    for (size_t i = 0; i < n; i++) e->order[i] = (uint32_t)i;
    if (e->adaptive) {
        e->speed = calloc((size_t)e->P, sizeof *e->speed);
        e->cum = malloc(2 * ((size_t)e->P + 1) * sizeof *e->cum);
        e->bsecs = calloc((size_t)e->P, sizeof *e->bsecs);
        e->brows = calloc((size_t)e->P, sizeof *e->brows);
        if (!e->speed || !e->cum || !e->bsecs || !e->brows) return -1;
        for (int i = 0; i <= e->P; i++) e->cum[i] = e->cum[e->P + 1 + i] = (double)i / e->P;
    }
    if (e->gather_all) {
        const int R = e->comm->size;
        if (!(e->rank_units = malloc((size_t)R * sizeof *e->rank_units))) return -1;
        for (int r = 0; r < R; r++)
            e->rank_units[r] = rank_first_unit(e->GU, r + 1, R) - rank_first_unit(e->GU, r, R);
    }
    if (e->local_batching) {
        /* shard t holds exactly the rows thread t consumes per epoch */
        if (!(e->shard_lo = calloc((size_t)e->P + 1, sizeof *e->shard_lo))) return -1;
        for (int t = 0; t < e->P; t++)
            e->shard_lo[t + 1] = e->shard_lo[t] + dpt_engine_thread_rows(e, t);
    }
    return 0;
}

/* The counters' tables: how far each thread is from each other one, and
 * who owns each unit buffer (its computing thread; a leaf gathered from
 * another rank lands through thread 0). */
int dpt_engine_plan_counters(dpt_engine *e)
{
    const size_t P = (size_t)e->P;
    if (!(e->near = malloc(P * P)) || !(e->unit_owner = malloc((size_t)e->U * sizeof(int))))
        return -1;
    for (size_t t = 0; t < P; t++)
        for (size_t q = 0; q < P; q++)
            e->near[t * P + q] = (unsigned char)dpt_topo_near(e->topo, &e->plan[t], &e->plan[q]);
    for (int u = 0; u < e->U; u++) e->unit_owner[u] = 0;
    for (int t = 0; t < e->P; t++) {
        int u0, u1;
        thread_units(e, t, e->P, &u0, &u1);
        for (int u = u0; u < u1; u++) e->unit_owner[unit_buf(e, u)] = t;
    }
    e->flops_per_row = dpt_model_train_flops(e->m);
    return 0;
}

/* Across ranks: the all-reduce in chunks where it pays, units of this rank
 * to sum while a chunk is on the wire. */
static void pick_overlap(dpt_engine *e, dpt_overlap overlap)
{
    const size_t np = e->m->n_params;
    if (!e->comm || e->gather_all || !e->comm->start_allreduce || overlap == DPT_OVERLAP_OFF)
        return;
    size_t K = np / DPT_OVERLAP_MIN_CHUNK;
    if (overlap == DPT_OVERLAP_ON && K < 2 && np >= 2) K = 2;
    if (K > 16) K = 16;
    if (K >= 2 && (e->U > 1 || overlap == DPT_OVERLAP_ON)) e->ov_chunks = (int)K;
}

/* Each thread, placed as it will train, first-touches its slices of the
 * parameters, the velocity and their snapshots: the update's own memory.
 * The padding past n_params is zeroed by the calling thread. */
static void touch_slices(dpt_engine *e)
{
    const size_t np = e->m->n_params, pad = dpt_pad_floats(np) - np;
    int full = 0;
    omp_set_dynamic(0);
#pragma omp parallel num_threads(e->P)
    {
        const int t = omp_get_thread_num();
        if (omp_get_num_threads() == e->P) {
            if (e->bind) dpt_topo_bind_self(e->topo, &e->plan[t]);
            dpt_engine_touch_slices(e, t);
            if (t == 0) full = 1;
        }
    }
    /* a short team (OMP_THREAD_LIMIT; train refuses it): zeroed here */
    float *const buf[] = {e->w, e->snapshot, e->v, e->vsnapshot};
    for (size_t i = 0; i < sizeof buf / sizeof buf[0]; i++)
        if (buf[i]) memset(buf[i] + (full ? np : 0), 0, (full ? pad : np + pad) * sizeof(float));
}

/* The layer split's barriers: one per domain, of its threads. */
static int domain_barriers(dpt_engine *e)
{
    if (e->split != DPT_SPLIT_LAYER) return 0;
    if (!(e->dbar = calloc((size_t)e->nd, sizeof *e->dbar))) return -1;
    for (int d = 0; d < e->nd; d++)
        if (dpt_barrier_init(&e->dbar[d], e->dom_first[d + 1] - e->dom_first[d], NULL)) return -1;
    return 0;
}

int dpt_engine_layout(dpt_engine *e, const dpt_engine_opts *opts)
{
    int rc = check_opts(e->m, &e->opt, e->ds, opts, 1);
    if (rc) return rc;
    plan_units(e, opts);
    dpt_engine_pick_reduce(e);
    return 0;
}

int dpt_engine_create(dpt_engine **out, const dpt_model *m, const dpt_optim_spec *o,
                      const dpt_dataset *ds, const dpt_engine_opts *opts)
{
    *out = NULL;
    const dpt_comm *comm = opts->comm && opts->comm->size > 1 ? opts->comm : NULL;
    int rc = check_opts(m, o, ds, opts, comm ? comm->size : 1);
    if (rc) return rc;
    dpt_engine *e = dpt_calloc(sizeof *e); /* 64-aligned: the barrier's lines */
    if (!e) return dpt_set_error(DPT_ENOMEM, "out of memory");
    e->m = m;
    e->opt = *o;
    e->ds = ds;
    e->k = dpt_kernels_get();
    e->seed = opts->seed;
    e->P = opts->threads > 0 ? opts->threads : dpt_topo_physical_cores();
    e->comm = comm;
    e->reduce = opts->reduce;
    e->local_batching = opts->batching_local != 0;
    e->inject = opts->inject_slowdown;
    plan_units(e, opts);
    if ((rc = check_part(e)) || (rc = plan_threads(e, opts))) goto fail;
    if (dpt_engine_plan_domains(e, opts->domain, opts->split) || alloc_buffers(e) ||
        dpt_engine_alloc_copies(e) || dpt_engine_plan_counters(e) ||
        dpt_barrier_init(&e->bar, e->P, e->dom) || domain_barriers(e)) {
        rc = dpt_set_error(DPT_ENOMEM, "cannot allocate the engine's buffers for %d threads", e->P);
        goto fail;
    }
    pick_overlap(e, opts->overlap);
    dpt_engine_pick_reduce(e);
    touch_slices(e);
    dpt_model_init_params(m, e->w, opts->seed, opts->init);
    *out = e;
    return 0;
fail:
    dpt_engine_destroy(e);
    return rc;
}

int dpt_engine_rank_rows(size_t n, const dpt_optim_spec *o, int shuffle, int leaves, int rank,
                         int ranks, dpt_row_range **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (n == 0 || ranks < 1 || rank < 0 || rank >= ranks || leaves < 0)
        return dpt_set_error(DPT_EINVAL, "rank %d of %d, %zu rows", rank, ranks, n);
    const size_t B = (o->kind == DPT_OPT_GD || o->batch == 0 || o->batch > n) ? n : o->batch;
    const size_t steps = shuffle && B < n ? 1 : (n + B - 1) / B;
    /* the engine's units: its rank's first unit of GU, whatever the threads
     * (GU = ranks x threads reduces to b * rank / ranks) */
    const int GU = leaves > 0 ? leaves : ranks;
    const size_t u0 = (size_t)rank_first_unit(GU, rank, ranks),
                 u1 = (size_t)rank_first_unit(GU, rank + 1, ranks);
    dpt_row_range *r = malloc(steps * sizeof *r);
    if (!r) return dpt_set_error(DPT_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t s = 0; s < steps; s++) {
        size_t lo = 0, hi = n;
        if (!(shuffle && B < n)) {
            size_t start = s * B, b = n - start < B ? n - start : B;
            lo = start + b * u0 / (size_t)GU;
            hi = start + b * u1 / (size_t)GU;
        }
        if (lo == hi) continue;
        if (k && r[k - 1].hi == lo)
            r[k - 1].hi = hi;
        else
            r[k++] = (dpt_row_range){lo, hi};
    }
    *out = r;
    *nout = k;
    return 0;
}
