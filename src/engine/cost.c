/* The cost function: what an epoch moves per thread, from the plan alone
 * (dpt/cost.h). Filled in next; the counters live in train.c and reduce.c. */
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

dpt_near dpt_topo_near(const dpt_topo *t, const dpt_place *a, const dpt_place *b)
{
    (void)t, (void)a, (void)b;
    return DPT_NEAR_UNKNOWN;
}

void dpt_engine_counts(const dpt_engine *e, dpt_thread_counts *out)
{
    memset(out, 0, (size_t)e->P * sizeof *out);
}

int dpt_engine_cost(const dpt_topo *topo, const dpt_place *plan, const dpt_model *m,
                    const dpt_optim_spec *o, size_t n, const dpt_engine_opts *opts,
                    dpt_thread_counts *out)
{
    (void)topo, (void)plan, (void)m, (void)o, (void)n, (void)opts, (void)out;
    return dpt_set_error(DPT_ENOTSUP, "dpt_engine_cost: not yet");
}
