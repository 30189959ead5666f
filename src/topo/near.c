/* How far apart two threads of a plan sit: the level of the topology they
 * first share (core, L3, NUMA node, package). The engine's counters and the
 * cost function (dpt/cost.h) file every byte a thread touches under the
 * distance of the buffer's owner. */
#include "dpt/cost.h"
#include "topo/topo_impl.h"

/* Logical index of the L3 cache above PU pu, or -1 (no such level). */
static int l3_of(const dpt_topo *t, int pu)
{
    hwloc_obj_t o = hwloc_get_obj_by_type(t->h, HWLOC_OBJ_PU, (unsigned)pu);
    while (o && o->type != HWLOC_OBJ_L3CACHE) o = o->parent;
    return o ? (int)o->logical_index : -1;
}

dpt_near dpt_topo_near(const dpt_topo *t, const dpt_place *a, const dpt_place *b)
{
    if (a->thread == b->thread) return DPT_NEAR_SELF;
    if (a->pu < 0 || b->pu < 0) return DPT_NEAR_UNKNOWN;
    if (a->pu == b->pu || (a->core >= 0 && a->core == b->core)) return DPT_NEAR_CORE;
    int l3 = l3_of(t, a->pu);
    if (l3 >= 0 && l3 == l3_of(t, b->pu)) return DPT_NEAR_L3;
    if (a->numa == b->numa) return DPT_NEAR_NUMA;
    if (a->package == b->package) return DPT_NEAR_NODE;
    return DPT_NEAR_PACKAGE;
}
