/* dpt info: version, build options, the ISA in use and the topology. */
#include <hwloc.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "dpt/error.h"
#include "dpt/mpi.h"
#include "dpt/topo.h"
#include "dpt_config.h"
#include "dpt_revision.h"
#include "kernels/kernels.h"

int dpt_cmd_info(int argc, char **argv)
{
    const char *cmd = "info";
    static const struct option opts[] = {
        {"isa", required_argument, 0, 'i'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    static const char *const isas[] = {"auto", "scalar", "avx2", "avx512", NULL};
    const char *isa = NULL;
    int c, idx;
    optind = 1;
    while ((c = cli_getopt(cmd, argc, argv, opts)) != -1) {
        switch (c) {
        case 'i':
            if (cli_choice(cmd, "isa", optarg, isas, &idx)) return DPT_EXIT_USAGE;
            isa = optarg;
            break;
        case 'h':
            puts("usage: dpt info [--isa auto|scalar|avx2|avx512]\n"
                 "Prints the version, the build options, the kernels in use (and the ISAs this\n"
                 "CPU has), and the topology: packages, NUMA nodes, cores, PUs.\n"
                 "  --isa auto|scalar|avx2|avx512  the kernels to report (default auto: the\n"
                 "                       widest this CPU runs, or DPT_ISA)\n"
                 "  --help               this text");
            return 0;
        default:
            return DPT_EXIT_USAGE;
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (isa && dpt_kernels_select(isa)) return cli_usage_error(cmd, "--isa: %s", dpt_last_error());
    const dpt_kernels *k = dpt_kernels_get();
    printf("dpt %s (revision %s)\n", DPT_VERSION, DPT_REVISION);
    printf("build:     %s, %s, sanitizers: %s, AVX2 kernels %s, AVX-512 kernels %s\n", DPT_COMPILER,
           DPT_BUILDTYPE, DPT_SANITIZE, dpt_build_has_avx2() ? "built" : "not built",
           dpt_build_has_avx512() ? "built" : "not built");
    /* AVX-512 needs the OS too: a kernel or hypervisor that does not save
     * the ZMM state leaves it off even where the CPU has it */
    printf("isa:       %s (cpu supports avx2+fma: %s, avx512 f/bw/dq/vl with OS-saved ZMM: %s; "
           "DPT_ISA or --isa to force)\n",
           k->isa, dpt_cpu_has_avx2() ? "yes" : "no", dpt_cpu_has_avx512() ? "yes" : "no");
    printf("openmp:    %d (spec date), max threads %d\n", _OPENMP, omp_get_max_threads());
    printf("hwloc API: %u.%u.%u\n", hwloc_get_api_version() >> 16,
           (hwloc_get_api_version() >> 8) & 0xff, hwloc_get_api_version() & 0xff);
    printf("mpi:       %s",
           dpt_mpi_built() ? "built" : "not built (install libopenmpi-dev and rebuild)");
    if (dpt_mpi_built()) printf(", this process is rank %d of %d", dpt_mpi_rank(), dpt_mpi_size());
    putchar('\n');
    dpt_topo *t;
    if (dpt_topo_open(&t, NULL, NULL)) return cli_fail(cmd, "topology: %s", dpt_last_error());
    printf("topology:  %d packages, %d NUMA nodes, %d cores, %d PUs\n",
           dpt_topo_count(t, HWLOC_OBJ_PACKAGE), dpt_topo_count(t, HWLOC_OBJ_NUMANODE),
           dpt_topo_count(t, HWLOC_OBJ_CORE), dpt_topo_count(t, HWLOC_OBJ_PU));
    dpt_topo_close(t);
    return 0;
}
