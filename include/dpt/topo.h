/* Machine topology (hwloc) and thread placement: which PU each thread of the
 * engine runs on, and binding the calling thread there. Plans are pure
 * functions of a topology and a pin spec, so they can be computed and tested
 * on synthetic topologies of machines we do not have. All indexes are hwloc
 * logical indexes unless named os_*. See docs/pinning.md for the orders. */
#ifndef DPT_TOPO_H
#define DPT_TOPO_H

#include "dpt/export.h"

#include <stddef.h>

#include <hwloc.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque; wraps a loaded hwloc_topology_t and per-PU tables for planning. */
typedef struct dpt_topo dpt_topo;

typedef enum {
    DPT_PIN_NONE = 0, /* dpt does not bind; the OpenMP runtime (OMP_PLACES...) decides */
    DPT_PIN_COMPACT,  /* cores in logical order, one thread per core before siblings */
    DPT_PIN_SCATTER,  /* round-robin over packages, then NUMA nodes, then L3s, then cores */
    DPT_PIN_NUMA,     /* contiguous blocks per NUMA node, equal per package first, compact inside */
    DPT_PIN_LIST      /* the given logical PU ids, in order */
} dpt_pin_policy;

typedef struct dpt_pin_spec {
    dpt_pin_policy policy;
    int smt;    /* 1: compact/scatter/numa may use SMT sibling PUs (after every core has one) */
    int n_list; /* DPT_PIN_LIST: number of ids */
    int *list;  /* DPT_PIN_LIST: logical PU ids, owned by the spec (dpt_pin_spec_free) */
} dpt_pin_spec;

/* One thread's place. For DPT_PIN_NONE: pu, core, numa, package = -1,
 * os_pu = DPT_OS_PU_NONE, shared = 0. core/numa/package are also -1 where
 * the topology has no such object above the PU. */
typedef struct dpt_place {
    int thread;
    int pu;
    int core;
    int numa;
    int package;
    unsigned os_pu; /* OS index of the PU (what taskset and /proc show) */
    int shared;     /* 1: another thread of the plan is on this PU too (oversubscribed) */
} dpt_place;

#define DPT_OS_PU_NONE ((unsigned)-1)

/* dpt_topo_membind_check results besides a NUMA logical index. */
#define DPT_NUMA_NONE  (-1) /* no page of the area is resident yet */
#define DPT_NUMA_MIXED (-2) /* the pages lie on more than one NUMA node */

/* Load a topology: synthetic (hwloc synthetic string, "pack:2 numa:4 core:24
 * pu:2"), or xml_path (an hwloc XML export), or both NULL for this machine.
 * This machine's topology covers only the CPUs the process may use: the
 * cgroup cpuset, and the affinity mask the process started with (taskset,
 * numactl, srun) unless an OpenMP affinity variable asks the runtime to bind
 * (see dpt_pin_env_warning). DPT_EINVAL for a bad synthetic string or both given, DPT_EIO for an
 * unreadable XML file, DPT_EFORMAT for a malformed one. */
DPT_API int dpt_topo_open(dpt_topo **t, const char *synthetic, const char *xml_path);
DPT_API void dpt_topo_close(dpt_topo *t);

/* The underlying hwloc topology (owned by t; do not modify it). */
DPT_API hwloc_topology_t dpt_topo_hwloc(const dpt_topo *t);

/* Number of objects of a type (HWLOC_OBJ_PACKAGE, HWLOC_OBJ_NUMANODE,
 * HWLOC_OBJ_CORE, HWLOC_OBJ_PU, ...); 0 when the topology has none. */
DPT_API int dpt_topo_count(const dpt_topo *t, hwloc_obj_type_t type);

/* 1 when the topology is this machine's (binding and membind queries can
 * work), 0 for synthetic and XML topologies. */
DPT_API int dpt_topo_is_this_machine(const dpt_topo *t);

/* Parse "compact", "scatter", "numa", "none" or "list:0,2,4-7" (logical PU
 * ids, ranges inclusive). Fills every field of spec; smt is set to 0 (set it
 * afterwards from --smt). On error spec is left empty and DPT_EINVAL is
 * returned with a message naming the allowed values. */
DPT_API int dpt_pin_parse(const char *text, dpt_pin_spec *spec);
DPT_API void dpt_pin_spec_free(dpt_pin_spec *spec);

/* Name of a policy: "none", "compact", "scatter", "numa", "list". */
DPT_API const char *dpt_pin_name(dpt_pin_policy policy);

/* The placement of nthreads threads (out has nthreads entries). More threads
 * than the PUs the policy may use wrap around onto the same PUs in the same
 * order and are marked shared: never an error. DPT_EINVAL for nthreads < 1
 * or a list id that is not a PU of t (the message names it). */
DPT_API int dpt_topo_plan(const dpt_topo *t, int nthreads, const dpt_pin_spec *spec,
                          dpt_place *out);

/* Bind the calling thread to p->pu (no-op returning 0 when p->pu < 0, as with
 * DPT_PIN_NONE). DPT_ENOTSUP with a message when the topology is not this
 * machine's or the OS refuses (containers, seccomp): run unpinned then. */
DPT_API int dpt_topo_bind_self(const dpt_topo *t, const dpt_place *p);

/* Where the pages of [addr, addr+len) live: *numa_out gets the NUMA logical
 * index when all resident pages are on one node, DPT_NUMA_NONE when none is
 * resident, DPT_NUMA_MIXED when they span nodes. DPT_ENOTSUP where hwloc
 * cannot tell (other OSes, synthetic/XML topologies, refused queries). */
DPT_API int dpt_topo_membind_check(const dpt_topo *t, const void *addr, size_t len, int *numa_out);

/* Domains: groups of threads that share a level of the machine (an L3
 * cache, a NUMA node, a package). The engine reduces inside a domain first
 * and keeps a copy of the parameters per domain, so what crosses NUMA
 * nodes and sockets each step scales with the domains, not the threads. */
typedef enum {
    DPT_DOMAIN_AUTO = 0, /* the L3 group where a NUMA node holds several, else the
                            NUMA node; a coarser level while domains would average
                            under two threads; none when one domain is left */
    DPT_DOMAIN_NONE = 1, /* one domain: the flat engine */
    DPT_DOMAIN_L3 = 2,
    DPT_DOMAIN_NUMA = 3,
    DPT_DOMAIN_PACKAGE = 4
} dpt_domain_level;

/* "auto", "none", "l3", "numa", "package" */
DPT_API const char *dpt_domain_name(dpt_domain_level level);
/* One of those names; DPT_EINVAL naming the allowed values otherwise. */
DPT_API int dpt_domain_parse(const char *text, dpt_domain_level *out);

/* The domain of each of the P threads of plan at level (AUTO resolved as
 * above, into *used when not NULL): out[t] in [0, count), numbered in the
 * order of their first thread. Threads of an unpinned plan, and every
 * thread under NONE, share domain 0. Returns the number of domains. */
DPT_API int dpt_topo_domains(const dpt_topo *t, const dpt_place *plan, int P,
                             dpt_domain_level level, int *out, dpt_domain_level *used);

/* Cut every domain of dom (P threads' domains, numbered in the order of
 * their first thread, as dpt_topo_domains gives them) that holds more than
 * most threads into the fewest groups of at most size (>= 1) consecutive
 * threads of it, as even as they come; renumbered the same way. Returns
 * the number of domains, or -1 (dpt_last_error says why: domains not
 * numbered so, a size under 1, no memory), dom untouched. */
DPT_API int dpt_topo_domain_groups(int *dom, int P, int most, int size);

/* The layer split's groups (docs/engine.md): where the team of plan may be
 * cut (pinned, and within one package, or across packages each of which
 * holds one domain of consecutive threads), every domain of dom (nd of
 * them, dpt_topo_domains's) of more than most threads is cut into groups
 * of at most size (dpt_topo_domain_groups), dom rewritten; else dom stays.
 * Returns the domain count in use (-1 as dpt_topo_domain_groups), and in
 * *across (when not NULL) 1 where the cut groups lie in several packages:
 * the engine then sums each package's groups in it first (its package
 * level) and the groups read a copy of the parameters per package. */
DPT_API int dpt_topo_split_groups(const dpt_place *plan, int P, int *dom, int nd, int most,
                                  int size, int *across);

/* Physical cores of this machine available to the process (as
 * dpt_topo_open(NULL, NULL) sees them), for the default thread count.
 * Falls back to PUs, then to the online CPU count; always >= 1. */
DPT_API int dpt_topo_physical_cores(void);

/* The machine balance dpt_pin_default_for assumes when given none: flops per
 * byte of memory read. Servers measure ~5-40 (dpt_limits); linear models sit
 * near 1, MLPs in the hundreds, so the split does not hinge on the value. */
#define DPT_PIN_BALANCE 16.0

/* The pin policy to use when none is asked for, by what bounds the
 * workload: flops_per_byte is its training flops per byte streamed from
 * memory (dpt_model_train_flops over a row's bytes, plus the parameters'
 * bytes per row where they do not fit the caches); balance is the machine's
 * flops per byte of read bandwidth (dpt_limits: fma_gflops / read_gbs), or
 * <= 0 for DPT_PIN_BALANCE. Below the balance the workload is
 * bandwidth-bound: DPT_PIN_SCATTER, to draw on every package's, NUMA node's
 * and L3's bandwidth, except where that changes nothing: nthreads filling
 * all of t's cores, or t's cores in one package, node and L3 (t NULL: no
 * such check). At or above it, or with flops_per_byte unknown (<= 0, NaN):
 * DPT_PIN_COMPACT, which keeps a domain's threads on shared caches. *why
 * (when why is not NULL) gets a one-line reason naming the policy first,
 * valid until the next call on this thread. Never fails. */
DPT_API dpt_pin_policy dpt_pin_default_for(const dpt_topo *t, int nthreads, double flops_per_byte,
                                           double balance, const char **why);

/* When spec binds threads (policy != NONE) and an OpenMP affinity variable
 * asks the runtime to bind too (OMP_PROC_BIND other than "false", or else
 * OMP_PLACES, GOMP_CPU_AFFINITY, KMP_AFFINITY), a one-line warning naming it
 * for the caller to print once (valid until the next call on this thread),
 * else NULL. dpt's binding wins over the runtime's; the text says so and
 * names the policy that leaves placement to the runtime (none). */
DPT_API const char *dpt_pin_env_warning(const dpt_pin_spec *spec);

#ifdef __cplusplus
}
#endif
#endif
