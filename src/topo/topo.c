/* Topology discovery with hwloc: load this machine, a synthetic description
 * or an XML export, tabulate each PU's core, NUMA node, package and SMT rank
 * for the planner, and bind threads / query page locations on this machine. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dpt/error.h"
#include "topo/topo_impl.h"

/* The CPU affinity mask the process started with (taskset, numactl, srun),
 * read before main() so that neither dpt's own binding nor a later call can
 * have narrowed it; NULL when unknown. */
static hwloc_bitmap_t start_affinity;

__attribute__((constructor)) static void capture_start_affinity(void)
{
    for (int ncpu = 1024; ncpu <= (1 << 20); ncpu *= 2) {
        cpu_set_t *set = CPU_ALLOC(ncpu);
        if (!set) return;
        size_t size = CPU_ALLOC_SIZE(ncpu);
        CPU_ZERO_S(size, set);
        if (sched_getaffinity(0, size, set) == 0) {
            hwloc_bitmap_t b = hwloc_bitmap_alloc();
            if (b) {
                for (int c = 0; c < ncpu; c++)
                    if (CPU_ISSET_S(c, size, set)) hwloc_bitmap_set(b, (unsigned)c);
                if (hwloc_bitmap_iszero(b))
                    hwloc_bitmap_free(b);
                else
                    start_affinity = b;
            }
            CPU_FREE(set);
            return;
        }
        CPU_FREE(set);
        if (errno != EINVAL) return; /* EINVAL: mask too small for the kernel's, retry */
    }
}

__attribute__((destructor)) static void free_start_affinity(void)
{
    hwloc_bitmap_free(start_affinity);
    start_affinity = NULL;
}

/* An OpenMP runtime configured to bind may already have bound the initial
 * thread to its first place before main(), so the start-up mask then says
 * nothing about what the user allowed. OMP_PROC_BIND=false turns binding
 * off (and OMP_PLACES with it); OMP_PLACES alone turns it on in libgomp. */
const char *dpt_topo_omp_binding_var(void)
{
    const char *bind = getenv("OMP_PROC_BIND");
    if (bind && *bind) return strcasecmp(bind, "false") ? "OMP_PROC_BIND" : NULL;
    static const char *const vars[] = {"OMP_PLACES", "GOMP_CPU_AFFINITY", "KMP_AFFINITY", NULL};
    for (int i = 0; vars[i]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return vars[i];
    }
    return NULL;
}

/* Drop the PUs outside the start-up affinity mask, so that plans stay inside
 * what taskset/numactl/srun gave the process (the cgroup cpuset is already
 * applied by hwloc). */
static int restrict_to_start_affinity(hwloc_topology_t h)
{
    if (!start_affinity || dpt_topo_omp_binding_var()) return 0;
    hwloc_bitmap_t set = hwloc_bitmap_dup(start_affinity);
    if (!set) return dpt_set_error(DPT_ENOMEM, "topology: out of memory");
    hwloc_const_cpuset_t all = hwloc_topology_get_topology_cpuset(h);
    hwloc_bitmap_and(set, set, all);
    int rc = 0;
    if (!hwloc_bitmap_iszero(set) && !hwloc_bitmap_isequal(set, all) &&
        hwloc_topology_restrict(h, set, 0) != 0)
        rc = dpt_set_error(errno == ENOMEM ? DPT_ENOMEM : DPT_EINVAL,
                           "topology: cannot restrict to the process's CPU affinity: %s",
                           strerror(errno));
    hwloc_bitmap_free(set);
    return rc;
}

/* Fill the per-PU tables of t from t->h. */
static int tabulate(dpt_topo *t)
{
    hwloc_topology_t h = t->h;
    int n = hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_PU);
    if (n <= 0) return dpt_set_error(DPT_EFORMAT, "topology has no processing units");
    t->npu = n;
    t->core = malloc((size_t)n * sizeof *t->core);
    t->numa = malloc((size_t)n * sizeof *t->numa);
    t->package = malloc((size_t)n * sizeof *t->package);
    t->rank = malloc((size_t)n * sizeof *t->rank);
    t->os = malloc((size_t)n * sizeof *t->os);
    if (!t->core || !t->numa || !t->package || !t->rank || !t->os)
        return dpt_set_error(DPT_ENOMEM, "topology: out of memory for %d PUs", n);

    for (int i = 0; i < n; i++) {
        hwloc_obj_t pu = hwloc_get_obj_by_type(h, HWLOC_OBJ_PU, (unsigned)i);
        hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(h, HWLOC_OBJ_CORE, pu);
        hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(h, HWLOC_OBJ_PACKAGE, pu);
        t->os[i] = pu->os_index;
        t->core[i] = core ? (int)core->logical_index : -1;
        t->package[i] = pkg ? (int)pkg->logical_index : -1;
        t->numa[i] = -1;
        t->rank[i] = 0;
    }
    /* SMT rank: PUs of a core are consecutive in logical order. */
    t->max_rank = 0;
    for (int i = 1; i < n; i++)
        if (t->core[i] >= 0 && t->core[i] == t->core[i - 1]) {
            t->rank[i] = t->rank[i - 1] + 1;
            if (t->rank[i] > t->max_rank) t->max_rank = t->rank[i];
        }
    /* A PU's NUMA node: the first (lowest logical index) node whose cpuset
     * holds it; several nodes can (DRAM + HBM), the first is the DRAM one. */
    int nnuma = hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_NUMANODE);
    for (int k = 0; k < nnuma; k++) {
        hwloc_obj_t node = hwloc_get_obj_by_type(h, HWLOC_OBJ_NUMANODE, (unsigned)k);
        if (!node->cpuset) continue;
        unsigned os;
        hwloc_bitmap_foreach_begin(os, node->cpuset)
        {
            hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(h, os);
            if (pu && t->numa[pu->logical_index] < 0) t->numa[pu->logical_index] = k;
        }
        hwloc_bitmap_foreach_end();
    }
    return 0;
}

int dpt_topo_open(dpt_topo **out, const char *synthetic, const char *xml_path)
{
    if (!out) return dpt_set_error(DPT_EINVAL, "dpt_topo_open: no output pointer");
    *out = NULL;
    if (synthetic && xml_path)
        return dpt_set_error(DPT_EINVAL,
                             "topology: give a synthetic description or an XML file, not both");
    dpt_topo *t = calloc(1, sizeof *t);
    if (!t) return dpt_set_error(DPT_ENOMEM, "topology: out of memory");
    int rc = 0;
    if (hwloc_topology_init(&t->h) != 0) {
        t->h = NULL;
        rc = dpt_set_error(DPT_ENOMEM, "topology: hwloc_topology_init failed");
        goto fail;
    }
    if (synthetic) {
        /* hwloc wants the PU level last; "core:6" alone means one PU a core */
        char desc[512];
        const int has_pu = strstr(synthetic, "pu:") || strstr(synthetic, "PU:") ||
                           !strchr(synthetic, ':');
        snprintf(desc, sizeof desc, "%s%s", synthetic, has_pu ? "" : " pu:1");
        if (hwloc_topology_set_synthetic(t->h, desc) != 0 || hwloc_topology_load(t->h)) {
            rc = dpt_set_error(DPT_EINVAL,
                               "topology '%s' is not an hwloc synthetic description "
                               "(e.g. \"pack:2 numa:4 core:24 pu:2\")",
                               synthetic);
            goto fail;
        }
    } else if (xml_path) {
        FILE *f = fopen(xml_path, "rb");
        if (!f) {
            rc = dpt_set_error(DPT_EIO, "cannot read topology XML '%s': %s", xml_path,
                               strerror(errno));
            goto fail;
        }
        fclose(f);
        if (hwloc_topology_set_xml(t->h, xml_path) != 0 || hwloc_topology_load(t->h)) {
            rc = dpt_set_error(DPT_EFORMAT,
                               "'%s' is not an hwloc XML topology (hwloc's lstopo "
                               "exports one)",
                               xml_path);
            goto fail;
        }
    } else {
        if (hwloc_topology_load(t->h) != 0) {
            rc = dpt_set_error(DPT_ENOTSUP, "topology: hwloc cannot discover this machine: %s",
                               strerror(errno));
            goto fail;
        }
        if ((rc = restrict_to_start_affinity(t->h))) goto fail;
    }
    t->this_machine = hwloc_topology_is_thissystem(t->h);
    if ((rc = tabulate(t))) goto fail;
    *out = t;
    return 0;
fail:
    dpt_topo_close(t);
    return rc;
}

void dpt_topo_close(dpt_topo *t)
{
    if (!t) return;
    if (t->h) hwloc_topology_destroy(t->h);
    free(t->core);
    free(t->numa);
    free(t->package);
    free(t->rank);
    free(t->os);
    free(t);
}

hwloc_topology_t dpt_topo_hwloc(const dpt_topo *t)
{
    return t->h;
}

int dpt_topo_count(const dpt_topo *t, hwloc_obj_type_t type)
{
    int n = hwloc_get_nbobjs_by_type(t->h, type);
    return n > 0 ? n : 0;
}

int dpt_topo_is_this_machine(const dpt_topo *t)
{
    return t->this_machine;
}

int dpt_topo_bind_self(const dpt_topo *t, const dpt_place *p)
{
    if (p->pu < 0) return 0;
    if (!t->this_machine)
        return dpt_set_error(DPT_ENOTSUP,
                             "cannot bind to PU %d: the topology is synthetic or from XML, "
                             "not this machine's",
                             p->pu);
    const struct hwloc_topology_support *s = hwloc_topology_get_support(t->h);
    if (!s->cpubind->set_thisthread_cpubind)
        return dpt_set_error(DPT_ENOTSUP, "thread binding is not supported on this system");
    hwloc_obj_t pu = hwloc_get_obj_by_type(t->h, HWLOC_OBJ_PU, (unsigned)p->pu);
    if (!pu) return dpt_set_error(DPT_EINVAL, "cannot bind to PU %d: no such PU", p->pu);
    if (hwloc_set_cpubind(t->h, pu->cpuset, HWLOC_CPUBIND_THREAD) != 0)
        return dpt_set_error(DPT_ENOTSUP, "binding thread %d to PU %d (OS CPU %u) refused: %s",
                             p->thread, p->pu, pu->os_index, strerror(errno));
    return 0;
}

int dpt_topo_membind_check(const dpt_topo *t, const void *addr, size_t len, int *numa_out)
{
    *numa_out = DPT_NUMA_NONE;
    if (!t->this_machine)
        return dpt_set_error(DPT_ENOTSUP, "page locations: the topology is not this machine's");
    const struct hwloc_topology_support *s = hwloc_topology_get_support(t->h);
    if (!s->membind->get_area_memlocation)
        return dpt_set_error(DPT_ENOTSUP, "page locations are not available on this system");
    hwloc_nodeset_t set = hwloc_bitmap_alloc();
    if (!set) return dpt_set_error(DPT_ENOMEM, "page locations: out of memory");
    int rc = 0;
    if (hwloc_get_area_memlocation(t->h, addr, len, set, HWLOC_MEMBIND_BYNODESET) != 0) {
        rc = dpt_set_error(DPT_ENOTSUP, "page location query refused: %s", strerror(errno));
        goto done;
    }
    int w = hwloc_bitmap_weight(set);
    if (w == 1) {
        hwloc_obj_t node =
            hwloc_get_numanode_obj_by_os_index(t->h, (unsigned)hwloc_bitmap_first(set));
        *numa_out = node ? (int)node->logical_index : DPT_NUMA_MIXED;
    } else if (w > 1) {
        *numa_out = DPT_NUMA_MIXED;
    }
done:
    hwloc_bitmap_free(set);
    return rc;
}

int dpt_topo_physical_cores(void)
{
    dpt_topo *t;
    int n = 0;
    if (dpt_topo_open(&t, NULL, NULL) == 0) {
        n = dpt_topo_count(t, HWLOC_OBJ_CORE);
        if (n < 1) n = dpt_topo_count(t, HWLOC_OBJ_PU);
        dpt_topo_close(t);
    }
    if (n < 1) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    return n;
}
