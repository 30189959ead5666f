/* Which rows each thread computes in each step, and getting them into the
 * thread's own buffer: the units' rows of every batch (or an adaptive cut),
 * copied once per epoch in a fixed order or per step when reshuffled. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "engine/balance.h"
#include "engine/engine_impl.h"

/* Rows a gather asks for ahead of the one it copies: reshuffled rows are
 * scattered over the data set, so the hardware prefetchers see each row
 * only when it starts; 8 rows of Fashion-MNIST are 25 KB in flight. */
#define GATHER_AHEAD 8

/* Rows thread t processes in one epoch (per_step 0), or in its largest
 * step (per_step 1). */
static size_t rows_of(const dpt_engine *e, int t, int per_step)
{
    int u0, u1;
    thread_units(e, t, e->P, &u0, &u1);
    size_t rows = 0;
    for (long s = 0; s < e->steps_per_epoch; s++) {
        size_t b = batch_size(e, s), r = unit_row(e, b, u1) - unit_row(e, b, u0);
        rows = per_step ? (r > rows ? r : rows) : rows + r;
    }
    return rows;
}

size_t dpt_engine_thread_rows(const dpt_engine *e, int t)
{
    return rows_of(e, t, 0);
}

/* The most rows of one batch this rank computes: what one thread may get
 * under adaptive balancing. */
static size_t rank_step_rows(const dpt_engine *e)
{
    size_t most = 0;
    for (long s = 0; s < e->steps_per_epoch; s++) {
        size_t b = batch_size(e, s);
        size_t r = unit_row(e, b, e->u_base + e->u_local) - unit_row(e, b, e->u_base);
        most = r > most ? r : most;
    }
    return most;
}

/* Thread t's rows [*lo, *hi) of a batch of b rows, counted from the batch's
 * first: its units' rows, or under adaptive balancing its cut of the rank's
 * rows by the shares for global step gstep. */
void dpt_engine_batch_part(const dpt_engine *e, int t, size_t b, long gstep, size_t *lo, size_t *hi)
{
    if (e->adaptive) {
        size_t r0 = unit_row(e, b, e->u_base), r1 = unit_row(e, b, e->u_base + e->u_local);
        dpt_balance_cut(e->P, e->cum + (size_t)(gstep & 1) * ((size_t)e->P + 1), r1 - r0, t, lo,
                        hi);
        *lo += r0;
        *hi += r0;
        return;
    }
    int u0, u1;
    thread_units(e, t, e->P, &u0, &u1);
    *lo = unit_row(e, b, u0);
    *hi = unit_row(e, b, u1);
}

/* This thread's row buffer, allocated once (by the thread, after pinning)
 * so that nothing can fail once training has begun: the epoch's rows when
 * the order is fixed (copied once, reused every epoch), one step's rows when
 * it is reshuffled (copied every step, and still in cache when used). */
int dpt_engine_ensure_local(dpt_engine *e, int t, int touch)
{
    thread_state *ts = &e->ts[t];
    size_t rows = e->adaptive ? rank_step_rows(e) : rows_of(e, t, e->shuffle);
    if (ts->X && rows <= ts->cap_rows) return 0;
    dpt_free(ts->X);
    dpt_free(ts->y);
    ts->X = dpt_alloc_pages((rows ? rows : 1) * e->ds->ld * sizeof(float));
    ts->y = dpt_alloc(dpt_pad_floats(rows ? rows : 1) * sizeof(float));
    if (!ts->X || !ts->y) return -1;
    ts->cap_rows = rows;
    /* first touch here, by the owner and outside any timed epoch: the
     * page faults would otherwise land in the first epoch's shuffle */
    const size_t xbytes = (rows ? rows : 1) * e->ds->ld * sizeof(float);
    if (dpt_populate(ts->X, xbytes) && touch) memset(ts->X, 0, xbytes);
    memset(ts->y, 0, dpt_pad_floats(rows ? rows : 1) * sizeof(float));
    return 0;
}

/* The positions [*lo, *hi) in order[] of the rows thread t computes in
 * step s, its part [tlo, thi) of the batch (batch_part), after it consumed
 * rows in the earlier steps of the epoch. */
void dpt_engine_step_span(const dpt_engine *e, int t, long s, size_t consumed, size_t tlo,
                          size_t thi, size_t *lo, size_t *hi)
{
    size_t start = (size_t)s * e->B;
    *lo = start + tlo;
    *hi = start + thi;
    if (e->local_batching) { /* the next rows of this thread's own shard */
        *hi = e->shard_lo[t] + consumed + (*hi - *lo);
        *lo = e->shard_lo[t] + consumed;
    }
}

/* Copy the rows order[lo..hi) into X (stride ld) and y: from thread t's
 * copy of its shard where it has one, else from the data set; each row's
 * lines are prefetched GATHER_AHEAD rows before it is copied. */
void dpt_engine_copy_rows(const dpt_engine *e, int t, size_t lo, size_t hi, float *X, float *y)
{
    const dpt_dataset *ds = e->ds;
    const thread_state *ts = &e->ts[t];
    const size_t base = ts->SX ? e->shard_lo[t] : 0;
    const float *SX = ts->SX ? ts->SX : ds->X, *Sy = ts->SX ? ts->Sy : ds->y;
    const size_t row_bytes = ds->ld * sizeof(float);
    for (size_t i = lo; i < hi; i++, X += ds->ld, y++) {
        size_t r = e->order[i] - base;
        if (i + GATHER_AHEAD < hi) {
            const char *next = (const char *)(SX + (e->order[i + GATHER_AHEAD] - base) * ds->ld);
            for (size_t off = 0; off < row_bytes; off += 64) __builtin_prefetch(next + off, 0, 3);
        }
        memcpy(X, SX + r * ds->ld, row_bytes);
        *y = Sy[r];
    }
}

int dpt_engine_copy_shard(dpt_engine *e, int t)
{
    thread_state *ts = &e->ts[t];
    if (ts->SX) return 0;
    const size_t lo = e->shard_lo[t], rows = e->shard_lo[t + 1] - lo, ld = e->ds->ld;
    ts->SX = dpt_alloc_pages((rows ? rows : 1) * ld * sizeof(float));
    ts->Sy = dpt_alloc(dpt_pad_floats(rows ? rows : 1) * sizeof(float));
    if (!ts->SX || !ts->Sy) return -1;
    memcpy(ts->SX, e->ds->X + lo * ld, rows * ld * sizeof(float));
    memcpy(ts->Sy, e->ds->y + lo, rows * sizeof(float));
    return 0;
}

/* The fixed order: copy this thread's rows of every step, in step order. */
int dpt_engine_gather_local(dpt_engine *e, int t)
{
    thread_state *ts = &e->ts[t];
    /* the owner's first touch: populated at once where the kernel can,
     * else by the copy; what the copy leaves is zeroed after it */
    if (dpt_engine_ensure_local(e, t, 0)) return -1;
    const size_t ld = e->ds->ld, cap = ts->cap_rows ? ts->cap_rows : 1;
    size_t off = 0, lo, hi;
    for (long s = 0; s < e->steps_per_epoch; s++, off += hi - lo) {
        size_t tlo, thi;
        dpt_engine_batch_part(e, t, batch_size(e, s), s, &tlo, &thi);
        dpt_engine_step_span(e, t, s, off, tlo, thi, &lo, &hi);
        dpt_engine_copy_rows(e, t, lo, hi, ts->X + off * ld, ts->y + off);
    }
    if (off < cap) memset(ts->X + off * ld, 0, (cap - off) * ld * sizeof(float));
    return 0;
}

/* Fisher-Yates of order[lo, hi) from the counter-based generator: depends
 * on seed, epoch and the range only. */
void dpt_engine_shuffle_range(dpt_engine *e, int epoch, size_t lo, size_t hi)
{
    size_t n = e->ds->n;
    uint64_t key = dpt_rng_key(e->seed, 5);
    uint64_t base = (uint64_t)epoch * n + lo;
    uint32_t *order = e->order + lo;
    n = hi - lo;
    for (size_t i = 0; i < n; i++) order[i] = (uint32_t)(lo + i);
    for (size_t i = n ? n - 1 : 0; i > 0; i--) {
        size_t j = (size_t)(dpt_rng_uniform(key, base + i) * (double)(i + 1));
        if (j > i) j = i;
        uint32_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
}
