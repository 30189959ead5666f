/* Inside dpt_topo: the loaded hwloc topology and, per PU (hwloc logical
 * index), the tables the planner needs, computed once at open so plans are
 * plain arithmetic. Private to src/topo. */
#ifndef DPT_TOPO_IMPL_H
#define DPT_TOPO_IMPL_H

#include "dpt/topo.h"

struct dpt_topo {
    hwloc_topology_t h;
    int this_machine; /* hwloc_topology_is_thissystem */
    int npu;
    /* per PU, indexed by logical index; -1 where the PU has no such ancestor */
    int *core;    /* core logical index */
    int *numa;    /* logical index of the first NUMA node whose cpuset holds the PU */
    int *package; /* package logical index */
    int *rank;    /* SMT rank: 0 for the first PU of its core, 1 for the next... */
    unsigned *os; /* OS index */
    int max_rank; /* highest rank (0: no SMT) */
};

/* The environment variable that makes the OpenMP runtime bind threads
 * (OMP_PROC_BIND unless "false", else OMP_PLACES, GOMP_CPU_AFFINITY,
 * KMP_AFFINITY), or NULL when none does. */
const char *dpt_topo_omp_binding_var(void);

#endif
