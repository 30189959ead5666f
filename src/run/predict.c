/* Prediction: the counts of an epoch (dpt_engine_cost) turned into time
 * per phase with the machine model and the calibration, over thread counts
 * and pin policies; the verdict on what stops the curve; and the warnings
 * dpt train, bench and tune print for configurations that leave threads
 * idle. The model is described in docs/scaling.md. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dpt/error.h"
#include "dpt/file.h"
#include "dpt/predict.h"
#include "engine/balance.h"
#include "kernels/kernels.h"
#include "models/split.h"

/* ---- the engine's cut of an epoch, as engine.c and rows.c make it ---- */

typedef struct shape {
    size_t B;     /* rows per step */
    size_t last;  /* rows of the last step */
    long steps;   /* steps per epoch */
    int GU;       /* units a batch is cut into */
    int adaptive; /* one cut per thread by measured speed (costed even) */
    int shuffle;  /* reshuffled every epoch */
    int layer;    /* the layer split (dpt_split, auto resolved as the engine does) */
} shape;

static shape shape_of(const dpt_optim_spec *o, size_t n, const dpt_engine_opts *opts, int P)
{
    shape s;
    s.B = (o->kind == DPT_OPT_GD || o->batch == 0 || o->batch > n) ? n : o->batch;
    s.steps = (long)((n + s.B - 1) / s.B);
    s.last = n - (size_t)(s.steps - 1) * s.B;
    s.GU = opts->leaves > 0 ? opts->leaves : P;
    s.adaptive = opts->balance == DPT_BALANCE_ADAPTIVE && P > 1 && opts->leaves <= 0;
    s.shuffle = opts->shuffle && s.B < n;
    s.layer = opts->split == DPT_SPLIT_LAYER; /* auto: once the domains are known */
    return s;
}

/* Rows of thread t's gradient calls in a batch of b rows: calls[] (at most
 * cap), their count returned. */
static int thread_calls(const shape *s, int t, int P, size_t b, size_t *calls, int cap)
{
    if (s->adaptive) {
        double *cum = malloc(((size_t)P + 1) * sizeof *cum);
        size_t lo = b * (size_t)t / (size_t)P, hi = b * (size_t)(t + 1) / (size_t)P;
        if (cum) {
            for (int k = 0; k <= P; k++) cum[k] = (double)k / P;
            dpt_balance_cut(P, cum, b, t, &lo, &hi);
            free(cum);
        }
        calls[0] = hi - lo;
        return 1;
    }
    const int u0 = (int)((long)s->GU * t / P), u1 = (int)((long)s->GU * (t + 1) / P);
    int k = 0;
    for (int u = u0; u < u1 && k < cap; u++)
        calls[k++] = b * (size_t)(u + 1) / (size_t)s->GU - b * (size_t)u / (size_t)s->GU;
    return k;
}

/* Thread t's calibrated compute seconds over an epoch. The layer split:
 * its share of every unit of its domain (slots [first, first + k)), as the
 * calibration timed a thread's share of a domain's units side by side. */
static double compute_cpu(const dpt_calibration *cal, const dpt_model *m, const shape *s, int t,
                          int P, int first, int k_dom)
{
    size_t calls[4096];
    double secs = 0;
    const double zero = 1e-9 * cal->copy_ns * (double)m->n_params * sizeof(float);
    for (int pass = 0; pass < 2; pass++) {
        const long nsteps = pass ? 1 : s->steps - 1;
        const size_t b = pass ? s->last : s->B;
        if (nsteps <= 0) continue;
        int k = 0;
        if (s->layer)
            for (int q = first; q < first + k_dom; q++)
                k += thread_calls(s, q, P, b, calls + k, 4096 - k);
        else
            k = thread_calls(s, t, P, b, calls, 4096);
        double one = 0;
        for (int i = 0; i < k; i++) /* a call of no rows still clears its gradient buffer */
            one += !calls[i]  ? (s->layer ? zero / k_dom : zero)
                   : s->layer ? dpt_calibration_split(cal, k_dom, (double)calls[i])
                              : dpt_calibration_grad(cal, (double)calls[i]);
        secs += one * (double)nsteps;
    }
    return secs;
}

/* Thread t's calibrated seconds of the reduction and the update over an
 * epoch, from its counts: whatever the strategy (scatter, tree, domains
 * summed first), each pair of gradient floats read is one calibrated add
 * (which reads two and writes one); the update is its slice of the
 * optimizer (with clipping's norm pass), and what it writes beyond its
 * slice of w and v is the copies pushed to other domains. */
static void combine_cpu(const dpt_calibration *cal, const dpt_model *m, const dpt_optim_spec *o,
                        const dpt_thread_counts *c, int t, int P, double *reduce, double *update)
{
    const size_t np = m->n_params;
    const int fuse = (float)o->clip_norm == 0;
    const double slice = (double)(np * (size_t)(t + 1) / (size_t)P - np * (size_t)t / (size_t)P);
    const double steps = (double)c->steps;
    *reduce = 1e-9 * cal->add_ns * (double)dpt_move_read(&c->phase[DPT_CPH_REDUCE]) / 8;
    const double wv = steps * slice * sizeof(float) * (dpt_optim_has_velocity(o) ? 2 : 1);
    double push = (double)dpt_move_written(&c->phase[DPT_CPH_UPDATE]) - wv - 64 * steps;
    if (push < 0) push = 0;
    /* a push is its slice copied whole into the other copies: a stream
     * through the caches, each float at most an add's work (which reads
     * two); copy_ns prices the gather's shuffled rows from memory. Where the
     * bytes land (another L3, another package) is the transfers' part. */
    *update = 1e-9 * (steps * slice * (cal->update_ns + (fuse ? 0 : cal->add_ns)) +
                      push / sizeof(float) * cal->add_ns);
}

/* ---- the time model ---- */

static int far_distance(int d)
{
    return d == DPT_NEAR_NUMA || d == DPT_NEAR_NODE || d == DPT_NEAR_PACKAGE ||
           d == DPT_NEAR_UNKNOWN;
}

static void set_bound(dpt_predict_row *row, int p, const char *what)
{
    snprintf(row->bound[p], sizeof row->bound[p], "%s", what);
}

void dpt_predict_counts(const dpt_machine *mach, const dpt_calibration *cal, const dpt_topo *target,
                        const dpt_model *m, const dpt_optim_spec *o, size_t n,
                        const dpt_engine_opts *opts, const dpt_place *plan, int P,
                        const dpt_thread_counts *counts, dpt_predict_row *row)
{
    shape s = shape_of(o, n, opts, P);
    memset(row->phase_s, 0, sizeof row->phase_s);
    memset(row->bound, 0, sizeof row->bound);
    row->barrier_s = 0;
    row->steps = s.steps;

    /* nodes and packages the plan uses, as small indexes */
    int npk = 0, nnodes = 0, pk_id[64], node_id[256];
    int *tnode = malloc((size_t)P * sizeof *tnode), *tpk = malloc((size_t)P * sizeof *tpk);
    double *slow = malloc((size_t)P * sizeof *slow);
    if (!tnode || !tpk || !slow) {
        free(tnode), free(tpk), free(slow);
        row->epoch_s = row->step_s = NAN;
        return;
    }
    for (int t = 0; t < P; t++) {
        int nd = plan[t].numa < 0 ? 0 : plan[t].numa, pk = plan[t].package;
        int i = 0;
        while (i < nnodes && node_id[i] != nd) i++;
        if (i == nnodes && nnodes < 256) node_id[nnodes++] = nd;
        tnode[t] = i < 256 ? i : 0;
        tpk[t] = -1;
        if (pk >= 0) {
            int j = 0;
            while (j < npk && pk_id[j] != pk) j++;
            if (j == npk && npk < 64) pk_id[npk++] = pk;
            tpk[t] = j < 64 ? j : -1;
        }
        /* how much slower than a lone thread on its core: sharing a PU
         * (time-sliced), an SMT sibling busy, the target's core speed */
        int same_pu = 0, sibling = 0;
        for (int q = 0; q < P; q++) {
            if (plan[q].pu < 0) continue;
            if (plan[q].pu == plan[t].pu)
                same_pu++;
            else if (plan[q].core >= 0 && plan[q].core == plan[t].core)
                sibling = 1;
        }
        slow[t] = (same_pu > 1 ? same_pu : 1) / (mach->core_speed > 0 ? mach->core_speed : 1) /
                  (sibling && mach->smt_speed > 0 ? mach->smt_speed : 1);
    }
    /* busier cores run slower (all-core turbo, or a shared machine's
     * share): linear from one busy core to all of them */
    int cores = target ? dpt_topo_count(target, HWLOC_OBJ_CORE) : 0;
    if (cores < 1) cores = P;
    const double busy = P > cores ? cores : P;
    const double allc =
        mach->allcore_speed > 0 && mach->allcore_speed <= 1 ? mach->allcore_speed : 1;
    const double clock = cores > 1 ? 1 - (1 - allc) * (busy - 1) / (cores - 1) : 1;
    for (int t = 0; t < P; t++) slow[t] /= clock;
    /* each thread's domain's first thread (dpt_topo_domains): the owner of
     * the parameters its compute reads */
    int *downer = malloc((size_t)P * sizeof *downer), *dom = malloc((size_t)P * sizeof *dom);
    if (!downer || !dom) {
        free(tnode), free(tpk), free(slow), free(downer), free(dom);
        row->epoch_s = row->step_s = NAN;
        return;
    }
    /* and (layer split) the first slot of its domain and the domain's size */
    int *dfirst = malloc((size_t)P * sizeof *dfirst), *dk = malloc((size_t)P * sizeof *dk);
    if (!dfirst || !dk) {
        free(tnode), free(tpk), free(slow), free(downer), free(dom), free(dfirst), free(dk);
        row->epoch_s = row->step_s = NAN;
        return;
    }
    for (int t = 0; t < P; t++) downer[t] = 0, dom[t] = 0;
    int nd = target ? dpt_topo_domains(target, plan, P, opts->domain, dom, NULL) : 1;
    if (target) /* as the engine: the layer split's groups inside a large domain */
        nd = dpt_split_domains(m, dpt_kernels_get(), s.B, P, s.adaptive, plan, opts->domain,
                               opts->split, dom, nd);
    const int domains = nd > 1;
    if (domains)
        for (int t = 0; t < P; t++) {
            int q = 0;
            while (dom[q] != dom[t]) q++;
            downer[t] = q;
        }
    for (int t = 0; t < P; t++) {
        dfirst[t] = dk[t] = 0;
        for (int q = 0; q < P; q++) {
            dfirst[t] += dom[q] < dom[t];
            dk[t] += dom[q] == dom[t];
        }
    }
    free(dom);
    int kmax = 1;
    for (int t = 0; t < P; t++) kmax = dk[t] > kmax ? dk[t] : kmax;
    if (opts->split == DPT_SPLIT_AUTO) /* as dpt_engine_resolve_split */
        s.layer = !s.adaptive && dpt_split_auto_layer(m, dpt_kernels_get(), s.B, P, kmax);
    const int spans = npk > 1;
    const double lat = dpt_machine_barrier(mach, P, spans);
    double node_bytes[256], pk_in[64];

    for (int p = 0; p < DPT_CPH_COUNT; p++) {
        double tmax = 0;
        int tmax_cpu = 1;
        uint64_t barriers = 0;
        memset(node_bytes, 0, sizeof node_bytes);
        memset(pk_in, 0, sizeof pk_in);
        for (int t = 0; t < P; t++) {
            const dpt_move *mv = &counts[t].phase[p];
            double cpu = 0;
            switch (p) {
            case DPT_CPH_GATHER:
                cpu = 1e-9 * cal->copy_ns * (double)dpt_move_written(mv);
                break;
            case DPT_CPH_COMPUTE:
                cpu = compute_cpu(cal, m, &s, t, P, dfirst[t], dk[t]);
                break;
            case DPT_CPH_REDUCE:
            case DPT_CPH_UPDATE: {
                double r, u;
                combine_cpu(cal, m, o, &counts[t], t, P, &r, &u);
                cpu = p == DPT_CPH_REDUCE ? r : u;
                break;
            }
            case DPT_CPH_EPOCH:
                if (s.shuffle && opts->batching_local)
                    cpu = 1e-9 * cal->shuffle_ns * (double)counts[t].rows;
                else if (s.shuffle && t == 0)
                    cpu = 1e-9 * cal->shuffle_ns * (double)n;
                /* its slice of the snapshot of w (and v) */
                cpu += 1e-9 * cal->copy_ns *
                       (double)(m->n_params * (size_t)(t + 1) / (size_t)P -
                                m->n_params * (size_t)t / (size_t)P) *
                       sizeof(float) * (dpt_optim_has_velocity(o) ? 2 : 1);
                break;
            default:
                break;
            }
            cpu *= slow[t];
            double xfer = 0, far = 0, moved = 0; /* moved: others' bytes, all distances */
            for (int d = DPT_NEAR_CORE; d < DPT_NEAR_COUNT; d++) {
                double bytes = (double)mv->read[d] + (double)mv->written[d];
                if (bytes > 0 && mach->bw[d] > 0) xfer += bytes / (mach->bw[d] * 1e9);
                if (far_distance(d)) far += bytes;
                moved += bytes;
            }
            /* where the bytes that leave a core's caches come from: the
             * compute reads its domain's copy of the parameters (the
             * domain's first thread's), or with one domain or the layer
             * split w itself, spread with the threads that update its
             * slices (across packages with the package level, its
             * package's copy, spread over the package); the update writes
             * into every domain's copy; the reduction reads the others'
             * gradients, sync and epoch the flag lines and losses:
             * spread over the nodes in use; the gather reads the data set,
             * which lives with thread 0 */
            const int spread = p == DPT_CPH_REDUCE || p == DPT_CPH_SYNC || p == DPT_CPH_EPOCH ||
                               p == DPT_CPH_UPDATE ||
                               (p == DPT_CPH_COMPUTE && (!domains || s.layer));
            if (spread)
                for (int k = 0; k < nnodes; k++) node_bytes[k] += far / nnodes;
            else if (p == DPT_CPH_COMPUTE)
                node_bytes[tnode[downer[t]]] += far;
            else
                node_bytes[tnode[0]] += far;
            /* rows that do not stay in the core's cache stream from its node */
            if (p == DPT_CPH_COMPUTE && s.steps > 0 &&
                (double)mv->read[DPT_NEAR_SELF] / (double)s.steps > mach->cache_kib * 1024)
                node_bytes[tnode[t]] += (double)mv->read[DPT_NEAR_SELF];
            if (npk > 1 && tpk[t] >= 0) {
                pk_in[tpk[t]] += (double)mv->read[DPT_NEAR_PACKAGE];
                for (int k = 0; k < npk; k++)
                    if (k != tpk[t]) pk_in[k] += (double)mv->written[DPT_NEAR_PACKAGE] / (npk - 1);
            }
            /* the handoffs' latency: this phase's bytes of other
             * threads' buffers, step by step, stall the thread */
            double hand = 0;
            if (moved > 0 && (mach->handoff_ns > 0 || mach->handoff_line_ns > 0)) {
                const double k = p != DPT_CPH_EPOCH && s.steps > 0 ? (double)s.steps : 1;
                double lines = ceil(moved / k / 64) - 1; /* 64-byte lines */
                if (lines > mach->handoff_lines) lines = mach->handoff_lines;
                hand = 1e-9 * k * (mach->handoff_ns + lines * mach->handoff_line_ns);
            }
            double tt = cpu + xfer + hand;
            if (tt > tmax) {
                tmax = tt;
                tmax_cpu = cpu >= xfer;
            }
            if (mv->barriers > barriers) barriers = mv->barriers;
        }
        double best = tmax;
        const char *why = tmax > 0 ? (tmax_cpu ? "cpu" : "bytes") : "";
        double dram = 0, link = 0;
        for (int k = 0; k < nnodes; k++)
            if (mach->dram_node > 0 && node_bytes[k] / (mach->dram_node * 1e9) > dram)
                dram = node_bytes[k] / (mach->dram_node * 1e9);
        for (int k = 0; k < npk && npk > 1; k++)
            if (mach->link > 0 && pk_in[k] / (mach->link * 1e9) > link)
                link = pk_in[k] / (mach->link * 1e9);
        if (dram > best) best = dram, why = "dram";
        if (link > best) best = link, why = "link";
        /* the layer split's barriers in the compute are its domain's */
        double bar = (double)barriers *
                     (p == DPT_CPH_COMPUTE && s.layer ? dpt_machine_barrier(mach, kmax, 0) : lat);
        if (bar > best) why = "barriers";
        row->phase_s[p] = best + bar;
        row->barrier_s += bar;
        set_bound(row, p, why);
    }
    row->epoch_s = 0;
    row->limiting = 0;
    for (int p = 0; p < DPT_CPH_COUNT; p++) {
        row->epoch_s += row->phase_s[p];
        if (row->phase_s[p] > row->phase_s[row->limiting]) row->limiting = p;
    }
    row->step_s = s.steps > 0 ? row->epoch_s / (double)s.steps : row->epoch_s;
    uint64_t most = 0;
    row->idle_threads = 0;
    for (int t = 0; t < P; t++) {
        if (counts[t].rows > most) most = counts[t].rows;
        row->idle_threads += counts[t].idle_steps > 0;
    }
    row->rows_per_thread = s.steps > 0 ? (double)most / (double)s.steps : 0;
    row->split = s.layer ? DPT_SPLIT_LAYER : DPT_SPLIT_DATA;
    free(tnode);
    free(tpk);
    free(slow);
    free(downer);
    free(dfirst);
    free(dk);
}

/* One configuration: plan, cost, time. */
static int predict_one(const dpt_topo *target, const dpt_machine *mach, const dpt_calibration *cal,
                       const dpt_model *m, const dpt_optim_spec *o, size_t n,
                       const dpt_engine_opts *opts, const dpt_pin_spec *pin, int P,
                       dpt_predict_row *row)
{
    dpt_place *plan = calloc((size_t)P, sizeof *plan);
    dpt_thread_counts *counts = calloc((size_t)P, sizeof *counts);
    int rc = 0;
    if (!plan || !counts) {
        rc = dpt_set_error(DPT_ENOMEM, "out of memory for %d threads", P);
        goto done;
    }
    if ((rc = dpt_topo_plan(target, P, pin, plan))) goto done;
    dpt_engine_opts eo = *opts;
    eo.threads = P;
    eo.pin = *pin;
    eo.topo = (dpt_topo *)target;
    eo.comm = NULL;
    if ((rc = dpt_engine_cost(target, plan, m, o, n, &eo, counts))) goto done;
    memset(row, 0, sizeof *row);
    row->threads = P;
    dpt_predict_counts(mach, cal, target, m, o, n, &eo, plan, P, counts, row);
done:
    free(plan);
    free(counts);
    return rc;
}

int dpt_predict(const dpt_topo *target, const dpt_machine *mach, const dpt_calibration *cal,
                const dpt_model *m, const dpt_optim_spec *o, size_t n, const dpt_engine_opts *opts,
                const int *threads, int nthreads, const char (*pins)[32], int npins,
                dpt_predict_result *out)
{
    memset(out, 0, sizeof *out);
    if (nthreads < 1 || npins < 1 || npins > 8 || n == 0)
        return dpt_set_error(DPT_EINVAL, "nothing to predict (threads, pins or rows missing)");
    for (int i = 0; i < nthreads; i++)
        if (threads[i] < 1 || threads[i] > 65536)
            return dpt_set_error(DPT_EINVAL, "%d threads: not in 1-65536", threads[i]);
    out->rows = calloc((size_t)nthreads * (size_t)npins, sizeof *out->rows);
    if (!out->rows) return dpt_set_error(DPT_ENOMEM, "out of memory");
    out->npins = npins;
    int rc = 0;
    for (int i = 0; i < npins; i++) {
        dpt_pin_spec spec;
        if ((rc = dpt_pin_parse(pins[i], &spec))) goto fail;
        spec.smt = opts->pin.smt;
        dpt_predict_row base;
        rc = predict_one(target, mach, cal, m, o, n, opts, &spec, 1, &base);
        for (int k = 0; k < nthreads && !rc; k++) {
            dpt_predict_row *r = &out->rows[out->n];
            rc = predict_one(target, mach, cal, m, o, n, opts, &spec, threads[k], r);
            if (rc) break;
            snprintf(r->pin, sizeof r->pin, "%s", pins[i]);
            r->speedup = r->epoch_s > 0 ? base.epoch_s / r->epoch_s : 0;
            r->efficiency = r->speedup / r->threads;
            out->n++;
        }
        dpt_pin_spec_free(&spec);
        if (rc) goto fail;
        /* the verdict, over the thread counts in ascending order */
        dpt_predict_row *rows = out->rows + (size_t)i * (size_t)nthreads;
        int best = 0, next = -1;
        for (int k = 1; k < nthreads; k++)
            if (rows[k].epoch_s < rows[best].epoch_s ||
                (rows[k].epoch_s == rows[best].epoch_s && rows[k].threads < rows[best].threads))
                best = k;
        for (int k = 0; k < nthreads; k++)
            if (rows[k].threads > rows[best].threads &&
                (next < 0 || rows[k].threads < rows[next].threads))
                next = k;
        out->best_threads[i] = rows[best].threads;
        out->stop_phase[i] = -1;
        const dpt_predict_row *b = &rows[best];
        if (next < 0) {
            snprintf(out->verdict[i], sizeof out->verdict[i],
                     "--pin %s: fastest at %d threads (%.2fx), the most asked; the largest phase "
                     "there is %s (%.0f%% of the epoch, %s-bound)",
                     pins[i], b->threads, b->speedup, dpt_cost_phase_name(b->limiting),
                     100 * b->phase_s[b->limiting] / b->epoch_s, b->bound[b->limiting]);
        } else {
            const dpt_predict_row *x = &rows[next];
            int grow = 0;
            for (int p = 1; p < DPT_CPH_COUNT; p++)
                if (x->phase_s[p] - b->phase_s[p] > x->phase_s[grow] - b->phase_s[grow]) grow = p;
            out->stop_phase[i] = grow;
            snprintf(out->verdict[i], sizeof out->verdict[i],
                     "--pin %s: fastest at %d threads (%.2fx); from there %s stops the curve "
                     "(%s-bound at %d threads: %+.3g ms per epoch over %d threads)",
                     pins[i], b->threads, b->speedup, dpt_cost_phase_name(grow), x->bound[grow],
                     x->threads, 1e3 * (x->phase_s[grow] - b->phase_s[grow]), b->threads);
        }
    }
    return 0;
fail:
    dpt_predict_result_free(out);
    return rc;
}

void dpt_predict_result_free(dpt_predict_result *r)
{
    free(r->rows);
    memset(r, 0, sizeof *r);
}

void dpt_predict_print(const dpt_predict_result *r, FILE *f)
{
    fprintf(f, "%7s %-10s %10s %9s %7s %5s %8s", "threads", "pin", "epoch s", "step ms", "speedup",
            "eff", "rows/thr");
    for (int p = 0; p < DPT_CPH_COUNT; p++) fprintf(f, " %9s", dpt_cost_phase_name(p));
    fprintf(f, "  limit\n");
    for (int i = 0; i < r->n; i++) {
        const dpt_predict_row *x = &r->rows[i];
        fprintf(f, "%7d %-10s %10.4g %9.4g %7.2f %5.2f %8.1f", x->threads, x->pin, x->epoch_s,
                1e3 * x->step_s, x->speedup, x->efficiency, x->rows_per_thread);
        for (int p = 0; p < DPT_CPH_COUNT; p++) fprintf(f, " %9.3g", 1e3 * x->phase_s[p]);
        fprintf(f, "  %s (%s)%s%s\n", dpt_cost_phase_name(x->limiting), x->bound[x->limiting],
                x->idle_threads ? " idle threads" : "",
                x->split == DPT_SPLIT_LAYER ? " layer split" : "");
    }
    fprintf(f, "(phases: ms per epoch, barriers included)\n");
    for (int i = 0; i < r->npins; i++) fprintf(f, "%s\n", r->verdict[i]);
}

int dpt_predict_write_json(const dpt_predict_result *r, const char *workload, const char *model,
                           const char *target, const dpt_machine *mach, const dpt_calibration *cal,
                           const char *path)
{
    json_t *root = json_object(), *rows = json_array(), *verd = json_array();
    json_t *mj = json_object(), *cj = json_object();
    if (!root || !rows || !verd || !mj || !cj) {
        json_decref(root), json_decref(rows), json_decref(verd), json_decref(mj), json_decref(cj);
        return dpt_set_error(DPT_ENOMEM, "out of memory");
    }
    json_object_set_new(root, "schema", json_string("dpt-predict/1"));
    json_object_set_new(root, "workload", json_string(workload ? workload : "custom"));
    json_object_set_new(root, "model", json_string(model ? model : ""));
    json_object_set_new(root, "target", json_string(target ? target : ""));
    json_object_set_new(mj, "name", json_string(mach->name));
    json_object_set_new(mj, "topology", json_string(mach->topology));
    for (int d = DPT_NEAR_CORE; d < DPT_NEAR_COUNT; d++) {
        char key[32];
        snprintf(key, sizeof key, "bw_%s", dpt_near_name(d));
        json_object_set_new(mj, key, json_real(mach->bw[d]));
    }
    json_object_set_new(mj, "dram_node", json_real(mach->dram_node));
    json_object_set_new(mj, "link", json_real(mach->link));
    json_object_set_new(mj, "barrier_a", json_real(mach->barrier_a));
    json_object_set_new(mj, "barrier_b", json_real(mach->barrier_b));
    json_object_set_new(mj, "barrier_pkg", json_real(mach->barrier_pkg));
    json_object_set_new(mj, "core_speed", json_real(mach->core_speed));
    json_object_set_new(mj, "allcore_speed", json_real(mach->allcore_speed));
    json_object_set_new(mj, "smt_speed", json_real(mach->smt_speed));
    json_object_set_new(mj, "cache_kib", json_real(mach->cache_kib));
    json_object_set_new(root, "machine", mj);
    json_object_set_new(cj, "model", json_string(cal->model));
    json_object_set_new(cj, "isa", json_string(cal->isa));
    json_object_set_new(cj, "cpu", json_string(cal->cpu));
    json_object_set_new(root, "calibration", cj);
    for (int i = 0; i < r->n; i++) {
        const dpt_predict_row *x = &r->rows[i];
        json_t *o = json_object(), *ph = json_object();
        if (!o || !ph) {
            json_decref(o), json_decref(ph);
            continue;
        }
        for (int p = 0; p < DPT_CPH_COUNT; p++) {
            json_t *e = json_object();
            json_object_set_new(e, "seconds", json_real(x->phase_s[p]));
            json_object_set_new(e, "bound", json_string(x->bound[p]));
            json_object_set_new(ph, dpt_cost_phase_name(p), e);
        }
        json_object_set_new(o, "threads", json_integer(x->threads));
        json_object_set_new(o, "pin", json_string(x->pin));
        json_object_set_new(o, "epoch_seconds", json_real(x->epoch_s));
        json_object_set_new(o, "step_seconds", json_real(x->step_s));
        json_object_set_new(o, "steps", json_integer(x->steps));
        json_object_set_new(o, "speedup", json_real(x->speedup));
        json_object_set_new(o, "efficiency", json_real(x->efficiency));
        json_object_set_new(o, "rows_per_thread", json_real(x->rows_per_thread));
        json_object_set_new(o, "idle_threads", json_integer(x->idle_threads));
        json_object_set_new(o, "split", json_string(dpt_split_name(x->split)));
        json_object_set_new(o, "barrier_seconds", json_real(x->barrier_s));
        json_object_set_new(o, "limiting", json_string(dpt_cost_phase_name(x->limiting)));
        json_object_set_new(o, "phases", ph);
        json_array_append_new(rows, o);
    }
    for (int i = 0; i < r->npins; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "pin", json_string(r->n ? r->rows[i * (r->n / r->npins)].pin : ""));
        json_object_set_new(o, "best_threads", json_integer(r->best_threads[i]));
        json_object_set_new(o, "stop_phase",
                            r->stop_phase[i] >= 0
                                ? json_string(dpt_cost_phase_name(r->stop_phase[i]))
                                : json_null());
        json_object_set_new(o, "text", json_string(r->verdict[i]));
        json_array_append_new(verd, o);
    }
    json_object_set_new(root, "rows", rows);
    json_object_set_new(root, "verdicts", verd);
    int rc = dpt_json_write_atomic(root, path);
    json_decref(root);
    return rc;
}

/* ---- telling the user ---- */

int dpt_predict_row_tile(const char *isa)
{
    if (!isa) isa = dpt_kernels_get()->isa;
    if (!strcmp(isa, "avx512")) return 12; /* MR of src/kernels/avx512/k_sgemm_avx512.c */
    if (!strcmp(isa, "avx2")) return 6;    /* MR of src/kernels/avx2/k_sgemm_avx2.c */
    return 1;
}

int dpt_predict_warnings(const dpt_model *m, const dpt_optim_spec *o, size_t n,
                         const dpt_engine_opts *opts, char (*out)[256], int cap)
{
    int k = 0;
    if (n == 0 || cap < 1) return 0;
    const int P = opts->threads > 0 ? opts->threads : dpt_topo_physical_cores();
    const int R = opts->comm && opts->comm->size > 1 ? opts->comm->size : 1;
    const shape s = shape_of(o, n, opts, P);
    const size_t B = s.B;
    if (P <= 1 && R <= 1) return 0;
    /* deterministic: the leaves are the units, spread over the threads */
    if (opts->leaves > 0 && opts->leaves < P * R && k < cap)
        snprintf(out[k++], 256,
                 "--deterministic sums %d leaves over %d threads%s: %d thread%s no leaf and "
                 "sit%s idle every step (use --leaves %d, or %d threads)",
                 opts->leaves, P * R, R > 1 ? " (all ranks)" : "", P * R - opts->leaves,
                 P * R - opts->leaves == 1 ? " gets" : "s get",
                 P * R - opts->leaves == 1 ? "s" : "", P * R, opts->leaves);
    if (s.adaptive && R == 1 && k < cap) {
        int empty = 0;
        size_t calls[1];
        for (int t = 0; t < P; t++) {
            thread_calls(&s, t, P, B, calls, 1);
            empty += calls[0] == 0;
        }
        if (empty)
            snprintf(out[k++], 256,
                     "--balance adaptive cuts batches in multiples of %d rows: a batch of %zu "
                     "leaves %d of %d threads without rows (a batch of %d or more, or fewer "
                     "threads)",
                     DPT_BALANCE_ROUND, B, empty, P, DPT_BALANCE_ROUND * P);
    }
    const size_t units = opts->leaves > 0 ? (size_t)opts->leaves : (size_t)P * (size_t)R;
    const double per = (double)B / (double)units;
    const int glm = m->layers == 1 && m->width[1] == 1;
    const int tile = dpt_predict_row_tile(NULL);
    if (B < units && opts->leaves <= 0 && k < cap) {
        snprintf(out[k++], 256,
                 "a batch of %zu rows for %zu threads%s: %zu of them compute no row in a step "
                 "(a larger --batch, or %zu threads)",
                 B, units, R > 1 ? " (all ranks)" : "", units - B, B);
    } else if (!glm && per < tile && !s.adaptive && k < cap) {
        size_t fit = B / (size_t)tile;
        snprintf(out[k++], 256,
                 "about %.1f rows per %s per step (batch %zu over %zu) is below the %d-row tile "
                 "of the %s GEMM: such calls cost about as much as a full tile; %zu %s or a "
                 "larger --batch use the cores better",
                 per, opts->leaves > 0 ? "leaf" : "thread", B, units, tile, dpt_kernels_get()->isa,
                 fit > 1 ? fit : 1,
                 opts->leaves > 0 ? (fit > 1 ? "leaves" : "leaf")
                                  : (fit > 1 ? "threads" : "thread"));
    }
    return k;
}
