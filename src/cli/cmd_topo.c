/* dpt topo: the machine (or a synthetic / XML topology) and the placement
 * plan dpt would use for N threads under a --pin policy, as a table or JSON.
 * Nothing is bound here: it only shows dpt_topo_plan's answer. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "dpt/engine.h"
#include "dpt/error.h"
#include "dpt/file.h"
#include "dpt/topo.h"

static const char *const CMD = "topo";

static void help(void)
{
    printf("usage: dpt topo [--topology DESC | --topology-xml FILE] [--threads N] [--pin P]\n"
           "                [--smt] [--domain LEVEL] [--split data|layer] [--json]\n"
           "                [--xml FILE]\n\n"
           "Shows the machine and, for each thread, the PU, core, NUMA node and package it\n"
           "would be bound to (hwloc logical indexes; OS PU is the OS CPU number), and the\n"
           "domain the engine groups it in (threads of a domain reduce together first).\n\n"
           "  --topology DESC      an hwloc synthetic topology instead of this machine,\n"
           "                       e.g. \"pack:2 numa:4 core:24 pu:2\" (default: this machine)\n"
           "  --topology-xml FILE  an hwloc XML export, as lstopo writes it (default: this\n"
           "                       machine)\n"
           "  --threads N          threads to place (default: one per physical core)\n"
           "  --pin P              compact (default), scatter, numa, none, or list:IDS with\n"
           "                       logical PU ids, e.g. list:0,2,4-7 (see docs/pinning.md)\n"
           "  --smt                let compact/scatter/numa use SMT sibling PUs once every\n"
           "                       core has a thread\n"
           "  --domain LEVEL       auto (default), none, l3, numa or package: how the engine\n"
           "                       groups threads (auto: L3 groups where a NUMA node has\n"
           "                       several, else nodes; coarser while domains would hold\n"
           "                       under two threads; the layer split cuts those of over\n"
           "                       16 threads into groups of 8 within one package, or\n"
           "                       across packages of one domain each: --split layer)\n"
           "  --split data|layer   the domains of the data split (the machine's), or the\n"
           "                       layer split's groups where it cuts them, and whether\n"
           "                       each package's groups are summed there first (the\n"
           "                       package level) (default data)\n"
           "  --json               {\"machine\": {...}, \"domains\": {...}, \"plan\": [...]}\n"
           "                       on stdout instead of the table (default off)\n"
           "  --xml FILE           also write the topology as hwloc XML (\"-\": stdout), to\n"
           "                       bring a server's topology home for dpt bench --predict\n"
           "                       (default none)\n"
           "  --help               this text\n"
           "Prints the machine line (packages, NUMA nodes, cores, PUs), the domains, and a\n"
           "table, one row per thread: thread, PU, core, NUMA node, package, OS PU, domain.\n");
}

/* -1 (no such object, or not pinned) prints as "-" / null. */
static void cell(char *buf, size_t cap, long v)
{
    if (v < 0)
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%ld", v);
}

static json_t *jint(long v)
{
    return v < 0 ? json_null() : json_integer(v);
}

/* The engine's grouping of a plan's threads. */
typedef struct domains {
    int *of; /* thread -> domain */
    int count;
    dpt_domain_level level;
    int groups, across; /* the layer split's groups; in several packages */
} domains;

static int print_json(const dpt_topo *t, const dpt_pin_spec *spec, const dpt_place *plan, int n,
                      const domains *dm)
{
    json_t *root = json_object(), *machine = json_object(), *arr = json_array();
    if (!root || !machine || !arr) goto oom;
    json_object_set_new(machine, "packages", json_integer(dpt_topo_count(t, HWLOC_OBJ_PACKAGE)));
    json_object_set_new(machine, "numa_nodes", json_integer(dpt_topo_count(t, HWLOC_OBJ_NUMANODE)));
    json_object_set_new(machine, "cores", json_integer(dpt_topo_count(t, HWLOC_OBJ_CORE)));
    json_object_set_new(machine, "pus", json_integer(dpt_topo_count(t, HWLOC_OBJ_PU)));
    json_object_set_new(root, "machine", machine);
    machine = NULL;
    json_object_set_new(root, "pin", json_string(dpt_pin_name(spec->policy)));
    json_object_set_new(root, "smt", json_boolean(spec->smt));
    json_object_set_new(root, "threads", json_integer(n));
    json_object_set_new(root, "domains",
                        json_pack("{s:s, s:i, s:b, s:b}", "level", dpt_domain_name(dm->level),
                                  "count", dm->count, "groups", dm->groups, "package_level",
                                  dm->across));
    for (int i = 0; i < n; i++) {
        const dpt_place *p = &plan[i];
        json_t *e = json_object();
        if (!e) goto oom;
        json_object_set_new(e, "thread", json_integer(p->thread));
        json_object_set_new(e, "pu", jint(p->pu));
        json_object_set_new(e, "core", jint(p->core));
        json_object_set_new(e, "numa", jint(p->numa));
        json_object_set_new(e, "package", jint(p->package));
        json_object_set_new(e, "os_pu",
                            p->os_pu == DPT_OS_PU_NONE ? json_null() : json_integer(p->os_pu));
        json_object_set_new(e, "shared", json_boolean(p->shared));
        json_object_set_new(e, "domain", json_integer(dm->of[i]));
        json_array_append_new(arr, e);
    }
    json_object_set_new(root, "plan", arr);
    arr = NULL;
    int rc = json_dumpf(root, stdout, JSON_COMPACT) == 0 && fputc('\n', stdout) != EOF
                 ? DPT_EXIT_OK
                 : cli_fail(CMD, "cannot write the JSON to stdout");
    json_decref(root);
    return rc;
oom:
    json_decref(root);
    json_decref(machine);
    json_decref(arr);
    return cli_fail(CMD, "out of memory");
}

static void print_text(const dpt_topo *t, const char *synthetic, const char *xml,
                       const dpt_pin_spec *spec, const dpt_place *plan, int n, const domains *dm)
{
    printf("machine: %d packages, %d NUMA nodes, %d cores, %d PUs",
           dpt_topo_count(t, HWLOC_OBJ_PACKAGE), dpt_topo_count(t, HWLOC_OBJ_NUMANODE),
           dpt_topo_count(t, HWLOC_OBJ_CORE), dpt_topo_count(t, HWLOC_OBJ_PU));
    if (synthetic)
        printf(" (synthetic \"%s\")\n", synthetic);
    else if (xml)
        printf(" (XML %s)\n", xml);
    else
        printf(" (this machine)\n");

    int shared = 0;
    for (int i = 0; i < n; i++) shared += plan[i].shared;
    printf("plan: %d thread%s, --pin %s%s", n, n == 1 ? "" : "s", dpt_pin_name(spec->policy),
           spec->smt ? " --smt" : "");
    if (spec->policy == DPT_PIN_NONE)
        printf(": dpt does not bind; the OpenMP runtime places threads (OMP_PLACES, "
               "OMP_PROC_BIND)\n");
    else if (shared)
        printf(": oversubscribed, %d threads share a PU with another\n", shared);
    else
        printf("\n");

    printf("domains: %d (%s%s%s)\n", dm->count, dpt_domain_name(dm->level),
           dm->groups ? ", cut into the layer split's groups of at most 8" : "",
           dm->across ? "; each package's groups summed in it first" : "");
    printf("%6s %6s %6s %6s %8s %6s %6s\n", "thread", "PU", "core", "NUMA", "package", "OS PU",
           "domain");
    for (int i = 0; i < n; i++) {
        const dpt_place *p = &plan[i];
        char pu[16], core[16], numa[16], pkg[16], os[16];
        cell(pu, sizeof pu, p->pu);
        cell(core, sizeof core, p->core);
        cell(numa, sizeof numa, p->numa);
        cell(pkg, sizeof pkg, p->package);
        cell(os, sizeof os, p->os_pu == DPT_OS_PU_NONE ? -1 : (long)p->os_pu);
        printf("%6d %6s %6s %6s %8s %6s %6d%s\n", p->thread, pu, core, numa, pkg, os, dm->of[i],
               p->shared ? "  shared" : "");
    }
}

/* The topology as hwloc XML, written atomically. */
static int export_xml(const dpt_topo *t, const char *path)
{
    char *buf = NULL;
    int len = 0;
    if (hwloc_topology_export_xmlbuffer(dpt_topo_hwloc(t), &buf, &len, 0) || !buf)
        return cli_fail(CMD, "--xml: hwloc cannot export the topology");
    int rc = dpt_write_file_atomic(path, buf, len > 0 ? (size_t)len - 1 : 0);
    hwloc_free_xmlbuffer(dpt_topo_hwloc(t), buf);
    return rc ? cli_fail(CMD, "--xml: %s", dpt_last_error()) : 0;
}

int dpt_cmd_topo(int argc, char **argv)
{
    static const struct option opts[] = {
        {"topology", required_argument, NULL, 't'},
        {"topology-xml", required_argument, NULL, 'x'},
        {"threads", required_argument, NULL, 'n'},
        {"pin", required_argument, NULL, 'p'},
        {"smt", no_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"domain", required_argument, NULL, 'd'},
        {"split", required_argument, NULL, 'S'},
        {"xml", required_argument, NULL, 'X'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *synthetic = NULL, *xml = NULL, *pin = "compact", *xml_out = NULL;
    long nthreads = 0;
    int smt = 0, json = 0, c;
    dpt_domain_level level = DPT_DOMAIN_AUTO;
    dpt_split split = DPT_SPLIT_DATA;
    optind = 1;
    while ((c = cli_getopt(CMD, argc, argv, opts)) != -1) {
        switch (c) {
        case 't':
            synthetic = optarg;
            break;
        case 'x':
            xml = optarg;
            break;
        case 'n':
            if (cli_long(CMD, "threads", optarg, 1, 1 << 16, &nthreads)) return DPT_EXIT_USAGE;
            break;
        case 'p':
            pin = optarg;
            break;
        case 's':
            smt = 1;
            break;
        case 'j':
            json = 1;
            break;
        case 'd':
            if (dpt_domain_parse(optarg, &level))
                return cli_usage_error(CMD, "--domain: %s", dpt_last_error());
            break;
        case 'X':
            xml_out = optarg;
            break;
        case 'S':
            if (dpt_split_parse(optarg, &split) || split == DPT_SPLIT_AUTO)
                return cli_usage_error(CMD,
                                       "--split: '%s' (allowed: data, layer; auto needs a "
                                       "model: see dpt train)",
                                       optarg);
            break;
        case 'h':
            help();
            return DPT_EXIT_OK;
        default:
            return DPT_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error(CMD, "unexpected argument '%s' (see dpt topo --help)", argv[optind]);
    if (synthetic && xml)
        return cli_usage_error(CMD, "--topology and --topology-xml exclude each other");

    dpt_pin_spec spec;
    if (dpt_pin_parse(pin, &spec)) return cli_usage_error(CMD, "--pin: %s", dpt_last_error());
    spec.smt = smt;

    dpt_topo *t = NULL;
    dpt_place *plan = NULL;
    domains dm = {0};
    int rc;
    if (dpt_topo_open(&t, synthetic, xml)) {
        rc = cli_fail(CMD, "%s", dpt_last_error());
        goto done;
    }
    if (xml_out && (rc = export_xml(t, xml_out))) goto done;
    if (!nthreads) {
        nthreads = dpt_topo_count(t, HWLOC_OBJ_CORE);
        if (nthreads < 1) nthreads = dpt_topo_count(t, HWLOC_OBJ_PU);
    }
    plan = malloc((size_t)nthreads * sizeof *plan);
    dm.of = malloc((size_t)nthreads * sizeof *dm.of);
    if (!plan || !dm.of) {
        rc = cli_fail(CMD, "out of memory for %ld threads", nthreads);
        goto done;
    }
    int prc = dpt_topo_plan(t, (int)nthreads, &spec, plan);
    if (prc) {
        /* a list id the topology lacks is a bad --pin value */
        rc = prc == DPT_EINVAL ? cli_usage_error(CMD, "--pin: %s", dpt_last_error())
                               : cli_fail(CMD, "%s", dpt_last_error());
        goto done;
    }
    dm.count = dpt_topo_domains(t, plan, (int)nthreads, level, dm.of, &dm.level);
    if (split == DPT_SPLIT_LAYER && level == DPT_DOMAIN_AUTO) { /* as the engine */
        const int n = dpt_topo_split_groups(plan, (int)nthreads, dm.of, dm.count,
                                            DPT_SPLIT_AUTO_DOMAIN, DPT_SPLIT_GROUP, &dm.across);
        if (n < 0) {
            rc = cli_fail(CMD, "%s", dpt_last_error());
            goto done;
        }
        dm.groups = n > dm.count;
        dm.count = n;
    }
    const char *warn = dpt_topo_is_this_machine(t) ? dpt_pin_env_warning(&spec) : NULL;
    if (warn) fprintf(stderr, "dpt topo: warning: %s (--pin none)\n", warn);
    if (json) {
        rc = print_json(t, &spec, plan, (int)nthreads, &dm);
    } else {
        print_text(t, synthetic, xml, &spec, plan, (int)nthreads, &dm);
        rc = fflush(stdout) == 0 ? DPT_EXIT_OK : cli_fail(CMD, "cannot write to stdout");
    }
done:
    free(plan);
    free(dm.of);
    dpt_topo_close(t);
    dpt_pin_spec_free(&spec);
    return rc;
}
