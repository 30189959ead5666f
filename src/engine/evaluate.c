/* Loss and metrics of the current parameters on a data set, in parallel
 * over the engine's threads; a data set held in parts (per-rank loading)
 * is summed over the ranks of the engine's comm. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/alloc.h"
#include "dpt/error.h"
#include "engine/engine_impl.h"

/* The spans of rows among the held rows [h0, h1) of a data set, counted
 * in order over its part (all rows when it has none), one at a time: how
 * threads split the rows a rank holds. */
typedef struct held_iter {
    const dpt_dataset *ds;
    size_t k, seen, h0, h1;
} held_iter;

static int held_next(held_iter *it, size_t *lo, size_t *hi)
{
    const dpt_dataset *ds = it->ds;
    const size_t nr = ds->part ? ds->npart : 1;
    for (; it->k < nr && it->seen < it->h1; it->k++) {
        size_t r0 = ds->part ? ds->part[it->k].lo : 0, r1 = ds->part ? ds->part[it->k].hi : ds->n;
        size_t len = r1 - r0, s = it->seen;
        it->seen += len;
        size_t a = it->h0 > s ? it->h0 - s : 0, b = it->h1 - s < len ? it->h1 - s : len;
        if (a < b) {
            *lo = r0 + a;
            *hi = r0 + b;
            it->k++;
            return 1;
        }
    }
    return 0;
}

int dpt_engine_evaluate(dpt_engine *e, const dpt_dataset *ds, dpt_metrics *out)
{
    const dpt_model *m = e->m;
    memset(out, 0, sizeof *out);
    out->n = ds->n;
    out->accuracy = out->mse = out->r2 = NAN;
    if (ds->n == 0) return dpt_set_error(DPT_EINVAL, "evaluation set has no rows");
    if (ds->d != m->width[0])
        return dpt_set_error(DPT_EINVAL, "the data has %zu features but the model expects %zu",
                             ds->d, m->width[0]);
    const int P = e->P;
    const size_t nsc = dpt_model_scratch_floats(m), H = dpt_dataset_rows_held(ds);
    /* a partial set: every rank evaluates the rows it holds, then the sums
     * of all ranks are combined (each rank holds its own rows) */
    const dpt_comm *comm = ds->part ? e->comm : NULL;
    double lsum = 0, ysum = 0;
    size_t correct = 0;
    int failed = 0, team = 0;
    /* each thread's sums, added in thread order afterwards: a reduction
     * clause combines them in whatever order the threads finish, which
     * moves the last bit of the loss from run to run */
    typedef struct {
        double l, y;
        size_t c;
    } __attribute__((aligned(64))) partial;
    partial *part = dpt_calloc((size_t)P * sizeof *part);
    if (!part) return dpt_set_error(DPT_ENOMEM, "cannot allocate evaluation sums");
#pragma omp parallel num_threads(P)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        double l = 0, y = 0;
        size_t c = 0;
        if (t == 0) team = nt;
        size_t h0 = H * (size_t)t / (size_t)nt, h1 = H * (size_t)(t + 1) / (size_t)nt;
        float *sc = t < e->P ? e->ts[t].scratch : NULL;
        float *own = NULL;
        if (!sc) sc = own = dpt_alloc((nsc ? nsc : 1) * sizeof(float));
        if (!sc) {
#pragma omp atomic write
            failed = 1;
        } else {
            held_iter it = {ds, 0, 0, h0, h1};
            size_t lo, hi;
            while (held_next(&it, &lo, &hi)) {
                l += dpt_model_eval(m, e->k, e->w, ds->X + lo * ds->ld, ds->ld, ds->y + lo, hi - lo,
                                    &c, sc);
                for (size_t i = lo; i < hi; i++) y += ds->y[i];
            }
        }
        part[t] = (partial){l, y, c};
        dpt_free(own);
    }
    for (int t = 0; t < team; t++) lsum += part[t].l, ysum += part[t].y, correct += part[t].c;
    dpt_free(part);
    /* every rank makes the same calls, failed or not */
    double tot[4] = {lsum, (double)correct, (double)H, ysum};
    int rc = comm ? comm->allreduce(comm->ctx, NULL, 0, tot, 4) : 0;
    if (failed) return dpt_set_error(DPT_ENOMEM, "cannot allocate evaluation scratch");
    if (rc) return rc;
    const double n = tot[2];
    out->loss = tot[0] / n;
    if (m->spec.loss == DPT_LOSS_MSE) {
        double mean = tot[3] / n, sst = 0;
        held_iter it = {ds, 0, 0, 0, H};
        size_t lo, hi;
        while (held_next(&it, &lo, &hi))
            for (size_t i = lo; i < hi; i++) sst += (ds->y[i] - mean) * (ds->y[i] - mean);
        if (comm && (rc = comm->allreduce(comm->ctx, NULL, 0, &sst, 1))) return rc;
        out->mse = out->loss;
        out->r2 = sst > 0 ? 1 - tot[0] / sst : NAN;
    } else {
        out->accuracy = tot[1] / n;
    }
    out->n = (size_t)n;
    return 0;
}
