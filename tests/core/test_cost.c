/* The engine's counters equal the cost function (dpt/cost.h): the engine
 * runs oversubscribed on synthetic topologies of large servers, with every
 * reduction strategy, with and without deterministic leaves, at thread
 * counts that do and do not divide the batch, and the per-thread counts
 * after two epochs must be twice what dpt_engine_cost computes without
 * running. A few hand-derived totals keep both honest. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/cost.h"
#include "dpt/engine.h"
#include "dpt/error.h"
#include "models/split.h"
#include "ref.h"

static const char *const topos[] = {
    "pack:2 numa:4 l3:2 core:6 pu:1",  /* 96 cores, 2 L3 per node */
    "pack:2 numa:12 core:8 pu:1",      /* 192 cores, 24 nodes */
    "pack:4 numa:2 core:16 pu:2",      /* 4 packages, SMT */
    "pack:2 numa:1 l3:1 core:24 pu:1", /* a 24-core L3 a package: the package level */
};

enum { OPT_SGD_MOMENTUM, OPT_GD_CLIP, OPT_SGD_LOCAL, OPT_GD_ADAPTIVE };

struct cost_case {
    int topo, threads, leaves, opt;
    dpt_reduce reduce;
    dpt_pin_policy pin;
    dpt_split split;
};

static void describe(const struct cost_case *c, char *buf, size_t len)
{
    static const char *const opt[] = {"sgd+momentum", "gd+clip", "sgd local", "gd adaptive"};
    snprintf(buf, len, "\"%s\" %d threads, %s, %s, leaves %d, pin %s, split %s", topos[c->topo],
             c->threads, c->reduce == DPT_REDUCE_TREE ? "tree" : "scatter", opt[c->opt], c->leaves,
             dpt_pin_name(c->pin), dpt_split_name(c->split));
}

/* 6-8-3 tanh MLP, 101 rows: batch 16 leaves a last batch of 5 */
static void setup(const struct cost_case *c, dpt_model *m, dpt_dataset *ds, dpt_optim_spec *o,
                  dpt_engine_opts *eo, dpt_topo **topo)
{
    cr_assert_eq(ref_small_mlp(m, ds, o, 101), 0);
    o->batch = 16;
    if (c->opt == OPT_GD_CLIP || c->opt == OPT_GD_ADAPTIVE) o->kind = DPT_OPT_GD;
    if (c->opt == OPT_GD_CLIP) o->clip_norm = 0.5;
    if (c->opt == OPT_SGD_LOCAL) o->kind = DPT_OPT_SGD;
    cr_assert_eq(dpt_topo_open(topo, topos[c->topo], NULL), 0, "%s", dpt_last_error());
    ref_engine_opts(eo, c->threads, 1);
    eo->topo = *topo;
    eo->pin.policy = c->pin;
    eo->reduce = c->reduce;
    eo->leaves = c->leaves;
    eo->batching_local = c->opt == OPT_SGD_LOCAL;
    if (c->opt == OPT_GD_ADAPTIVE) eo->balance = DPT_BALANCE_ADAPTIVE;
    eo->split = c->split;
}

static void expect_equal(const dpt_thread_counts *run, const dpt_thread_counts *cost, int epochs,
                         int t, const char *what)
{
#define EQ(field, name)                                                                            \
    cr_expect_eq(run->field, (uint64_t)epochs * cost->field,                                       \
                 "%s: thread %d %s: counted %llu, cost %llu x %d", what, t, name,                  \
                 (unsigned long long)run->field, (unsigned long long)cost->field, epochs)
    for (int p = 0; p < DPT_CPH_COUNT; p++) {
        char name[64];
        snprintf(name, sizeof name, "%s barriers", dpt_cost_phase_name(p));
        EQ(phase[p].barriers, name);
        for (int d = 0; d < DPT_NEAR_COUNT; d++) {
            snprintf(name, sizeof name, "%s read %s", dpt_cost_phase_name(p), dpt_near_name(d));
            EQ(phase[p].read[d], name);
            snprintf(name, sizeof name, "%s written %s", dpt_cost_phase_name(p), dpt_near_name(d));
            EQ(phase[p].written[d], name);
        }
    }
    EQ(steps, "steps");
    EQ(rows, "rows");
    EQ(idle_steps, "idle steps");
    EQ(flops, "flops");
    EQ(sent, "sent");
#undef EQ
}

#define NCASES 160
static struct cost_case cases[NCASES];

ParameterizedTestParameters(cost, counters_equal_cost)
{
    static const int threads[] = {1, 3, 8, 48};
    size_t k = 0;
    for (int tp = 0; tp < 3; tp++)
        for (int ti = 0; ti < 4; ti++)
            for (int red = 0; red < 2; red++)
                for (int det = 0; det < 2; det++)
                    for (int opt = 0; opt < 2; opt++)
                        cases[k++] = (struct cost_case){tp,  threads[ti],     det ? 5 : 0,   opt,
                                                        red, DPT_PIN_COMPACT, DPT_SPLIT_AUTO};
    /* placements, local batching, adaptive cuts, more threads than leaves */
    const struct cost_case extra[] = {
        {0, 12, 0, OPT_SGD_MOMENTUM, DPT_REDUCE_SCATTER, DPT_PIN_SCATTER, DPT_SPLIT_AUTO},
        {1, 16, 0, OPT_SGD_MOMENTUM, DPT_REDUCE_TREE, DPT_PIN_NUMA, DPT_SPLIT_AUTO},
        {2, 40, 0, OPT_GD_CLIP, DPT_REDUCE_SCATTER, DPT_PIN_SCATTER, DPT_SPLIT_AUTO},
        {0, 5, 0, OPT_SGD_LOCAL, DPT_REDUCE_SCATTER, DPT_PIN_COMPACT, DPT_SPLIT_AUTO},
        {1, 6, 0, OPT_SGD_LOCAL, DPT_REDUCE_TREE, DPT_PIN_NUMA, DPT_SPLIT_AUTO},
        {2, 7, 0, OPT_GD_ADAPTIVE, DPT_REDUCE_SCATTER, DPT_PIN_COMPACT, DPT_SPLIT_AUTO},
        {0, 16, 3, OPT_SGD_MOMENTUM, DPT_REDUCE_SCATTER, DPT_PIN_SCATTER, DPT_SPLIT_AUTO},
        {2, 9, 31, OPT_GD_CLIP, DPT_REDUCE_TREE, DPT_PIN_COMPACT, DPT_SPLIT_AUTO},
        /* the layer split: folding (scatter) and per-unit buffers (tree) */
        {0, 3, 0, OPT_SGD_MOMENTUM, DPT_REDUCE_SCATTER, DPT_PIN_COMPACT, DPT_SPLIT_LAYER},
        {0, 12, 0, OPT_SGD_MOMENTUM, DPT_REDUCE_SCATTER, DPT_PIN_SCATTER, DPT_SPLIT_LAYER},
        {1, 48, 0, OPT_SGD_MOMENTUM, DPT_REDUCE_SCATTER, DPT_PIN_COMPACT, DPT_SPLIT_LAYER},
        {1, 16, 0, OPT_GD_CLIP, DPT_REDUCE_TREE, DPT_PIN_NUMA, DPT_SPLIT_LAYER},
        {2, 8, 5, OPT_GD_CLIP, DPT_REDUCE_SCATTER, DPT_PIN_COMPACT, DPT_SPLIT_LAYER},
        {2, 40, 0, OPT_SGD_LOCAL, DPT_REDUCE_SCATTER, DPT_PIN_SCATTER, DPT_SPLIT_LAYER},
        {0, 16, 3, OPT_SGD_MOMENTUM, DPT_REDUCE_TREE, DPT_PIN_SCATTER, DPT_SPLIT_LAYER},
        {2, 9, 31, OPT_SGD_MOMENTUM, DPT_REDUCE_SCATTER, DPT_PIN_COMPACT, DPT_SPLIT_LAYER},
        /* groups summed in their package first, a copy of w per package */
        {3, 48, 0, OPT_SGD_MOMENTUM, DPT_REDUCE_SCATTER, DPT_PIN_COMPACT, DPT_SPLIT_LAYER},
        {3, 40, 5, OPT_GD_CLIP, DPT_REDUCE_SCATTER, DPT_PIN_COMPACT, DPT_SPLIT_LAYER},
        {3, 48, 0, OPT_SGD_LOCAL, DPT_REDUCE_TREE, DPT_PIN_COMPACT, DPT_SPLIT_LAYER},
        {3, 36, 0, OPT_SGD_MOMENTUM, DPT_REDUCE_SCATTER, DPT_PIN_COMPACT, DPT_SPLIT_AUTO},
    };
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) cases[k++] = extra[i];
    return cr_make_param_array(struct cost_case, cases, k);
}

ParameterizedTest(struct cost_case *c, cost, counters_equal_cost)
{
    char what[200];
    describe(c, what, sizeof what);
    dpt_model m;
    dpt_dataset ds;
    dpt_optim_spec o;
    dpt_engine_opts eo;
    dpt_topo *topo;
    setup(c, &m, &ds, &o, &eo, &topo);
    /* adaptive cuts follow measured speed after the first step: one GD step */
    const int epochs = c->opt == OPT_GD_ADAPTIVE ? 1 : 2;
    dpt_engine *e = NULL;
    cr_assert_eq(dpt_engine_create(&e, &m, &o, &ds, &eo), 0, "%s: %s", what, dpt_last_error());
    cr_assert_eq(dpt_engine_train(e, epochs, NULL, NULL), 0, "%s: %s", what, dpt_last_error());
    const int P = dpt_engine_threads(e);
    dpt_thread_counts *run = calloc((size_t)P, sizeof *run),
                      *cost = calloc((size_t)P, sizeof *cost);
    dpt_engine_counts(e, run);
    cr_assert_eq(dpt_engine_cost(topo, NULL, &m, &o, ds.n, &eo, cost), 0, "%s: %s", what,
                 dpt_last_error());
    for (int t = 0; t < P; t++) expect_equal(&run[t], &cost[t], epochs, t, what);
    /* the same plan handed in explicitly costs the same */
    dpt_thread_counts *again = calloc((size_t)P, sizeof *again);
    cr_assert_eq(dpt_engine_cost(NULL, dpt_engine_plan(e), &m, &o, ds.n, &eo, again), 0);
    cr_expect_eq(memcmp(again, cost, (size_t)P * sizeof *cost), 0, "%s: explicit plan", what);
    /* a reset clears the counters */
    dpt_engine_reset(e, dpt_engine_params(e));
    dpt_engine_counts(e, run);
    cr_expect_eq(run[0].steps, 0);
    free(run);
    free(cost);
    free(again);
    dpt_engine_destroy(e);
    dpt_topo_close(topo);
    dpt_dataset_free(&ds);
}

/* Derived by hand for the default engine (reduce-scatter fused with the
 * update, no velocity): per step, every unit's whole gradient is read once
 * in total; the parameters are read by every thread that has rows. */
Test(cost, hand_derived_totals)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_optim_spec o;
    cr_assert_eq(ref_small_mlp(&m, &ds, &o, 96), 0);
    o.kind = DPT_OPT_SGD;
    o.batch = 32; /* 3 steps */
    dpt_topo *topo;
    cr_assert_eq(dpt_topo_open(&topo, "pack:2 numa:2 core:4 pu:2", NULL), 0);
    dpt_engine_opts eo;
    ref_engine_opts(&eo, 64, 1); /* 64 threads on 16 cores x 2 PUs: 32 PUs shared twice */
    eo.topo = topo;
    eo.pin.policy = DPT_PIN_COMPACT;
    eo.pin.smt = 1;
    eo.domain = DPT_DOMAIN_NONE; /* the flat engine */
    dpt_thread_counts c[64];
    cr_assert_eq(dpt_engine_cost(topo, NULL, &m, &o, ds.n, &eo, c), 0, "%s", dpt_last_error());
    const uint64_t M = m.n_params * 4, P = 64, steps = 3;
    uint64_t reduce_read = 0, compute_w = 0, idle = 0, rows = 0, pkg = 0, sync_read = 0;
    for (int t = 0; t < 64; t++) {
        reduce_read += dpt_move_read(&c[t].phase[DPT_CPH_REDUCE]);
        sync_read += dpt_move_read(&c[t].phase[DPT_CPH_SYNC]);
        compute_w += dpt_move_read(&c[t].phase[DPT_CPH_COMPUTE]);
        idle += c[t].idle_steps;
        rows += c[t].rows;
        pkg += c[t].phase[DPT_CPH_COMPUTE].read[DPT_NEAR_PACKAGE];
        cr_expect_eq(c[t].steps, steps);
        /* compute barrier + the fused scatter's barrier */
        cr_expect_eq(c[t].phase[DPT_CPH_SYNC].barriers + c[t].phase[DPT_CPH_REDUCE].barriers,
                     2 * steps);
    }
    cr_expect_eq(rows, 96);
    cr_expect_eq(reduce_read, steps * P * M, "each unit's gradient read once per step");
    /* the verdict: two flag lines a thread, and thread 0 the 64 units'
     * losses (not P + U lines on every thread) */
    cr_expect_eq(sync_read, steps * (2 * P + 64) * 64, "%" PRIu64 " bytes", sync_read);
    /* 32 rows over 64 threads: half the threads are idle every step */
    cr_expect_eq(idle, steps * 32);
    /* 32 threads with one row each read w and a row of 6 features + label */
    cr_expect_eq(compute_w, steps * 32 * (M + 7 * 4));
    /* unit u of 64 holds row u/2 of 32: the odd threads compute one row
     * each; those placed on the other package than thread 0 read w across
     * the socket link */
    dpt_place plan[64];
    cr_assert_eq(dpt_topo_plan(topo, 64, &eo.pin, plan), 0);
    uint64_t far = 0;
    for (int t = 1; t < 64; t += 2) far += plan[t].package != plan[0].package;
    cr_expect_eq(far, 16, "compact with SMT: 4 of every 16 threads are odd and on package 1");
    cr_expect_eq(pkg, steps * far * M);
    dpt_topo_close(topo);
    dpt_dataset_free(&ds);
}

/* Thread distances on a synthetic plan, level by level. */
Test(cost, near_levels)
{
    dpt_topo *topo;
    cr_assert_eq(dpt_topo_open(&topo, "pack:2 numa:2 l3:2 core:2 pu:2", NULL), 0);
    dpt_pin_spec pin = {.policy = DPT_PIN_LIST};
    int ids[] = {0, 1, 2, 4, 8, 16};
    pin.list = ids;
    pin.n_list = 6;
    dpt_place p[6];
    cr_assert_eq(dpt_topo_plan(topo, 6, &pin, p), 0, "%s", dpt_last_error());
    cr_expect_eq(dpt_topo_near(topo, &p[0], &p[0]), DPT_NEAR_SELF);
    cr_expect_eq(dpt_topo_near(topo, &p[0], &p[1]), DPT_NEAR_CORE);    /* PU 1: sibling */
    cr_expect_eq(dpt_topo_near(topo, &p[0], &p[2]), DPT_NEAR_L3);      /* PU 2: next core */
    cr_expect_eq(dpt_topo_near(topo, &p[0], &p[3]), DPT_NEAR_NUMA);    /* PU 4: next L3 */
    cr_expect_eq(dpt_topo_near(topo, &p[0], &p[4]), DPT_NEAR_NODE);    /* PU 8: next node */
    cr_expect_eq(dpt_topo_near(topo, &p[0], &p[5]), DPT_NEAR_PACKAGE); /* PU 16 */
    dpt_place none[2];
    dpt_pin_spec unpinned = {.policy = DPT_PIN_NONE};
    cr_assert_eq(dpt_topo_plan(topo, 2, &unpinned, none), 0);
    cr_expect_eq(dpt_topo_near(topo, &none[0], &none[1]), DPT_NEAR_UNKNOWN);
    dpt_topo_close(topo);
}

/* Bytes that cross packages per step for 784-256-128-10 at batch 256, by
 * the cost function: with domains, a few subtree sums per domain and the
 * updated parameters once per domain (at most 2 x domains x M bytes);
 * flat, every thread's gradient and parameters (about P x M). */
struct cross_case {
    int topo; /* of crossing_topos */
    int threads;
};

static const char *const crossing_topos[] = {
    "pack:2 numa:4 l3:2 core:6 pu:1",
    "pack:2 numa:4 l3:2 core:6 pu:2",
    "pack:2 numa:12 core:8 pu:1",
};

ParameterizedTestParameters(cost, domains_bound_crossing)
{
    static struct cross_case cases[] = {
        {0, 48}, {0, 96}, {1, 192}, {2, 48}, {2, 96}, {2, 192},
    };
    return cr_make_param_array(struct cross_case, cases, sizeof cases / sizeof cases[0]);
}

static double package_bytes_per_step(const dpt_thread_counts *c, int P)
{
    dpt_step_summary sum;
    dpt_counts_summarize(c, P, &sum);
    return sum.read[DPT_NEAR_PACKAGE] + sum.written[DPT_NEAR_PACKAGE];
}

ParameterizedTest(struct cross_case *k, cost, domains_bound_crossing)
{
    dpt_model m;
    cr_assert_eq(ref_fmnist_mlp(&m), 0);
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    o.kind = DPT_OPT_MOMENTUM;
    o.batch = 256;
    dpt_topo *topo;
    const char *topo_s = crossing_topos[k->topo];
    cr_assert_eq(dpt_topo_open(&topo, topo_s, NULL), 0);
    dpt_engine_opts eo;
    ref_engine_opts(&eo, k->threads, 1);
    eo.topo = topo;
    eo.pin.policy = DPT_PIN_SCATTER; /* both packages at every count */
    eo.pin.smt = 1;
    const size_t n = 60000;
    dpt_thread_counts *c = calloc((size_t)k->threads, sizeof *c);
    const double M = (double)m.n_params * 4;
    eo.domain = DPT_DOMAIN_NONE;
    cr_assert_eq(dpt_engine_cost(topo, NULL, &m, &o, n, &eo, c), 0, "%s", dpt_last_error());
    const double flat = package_bytes_per_step(c, k->threads);
    eo.domain = DPT_DOMAIN_AUTO;
    cr_assert_eq(dpt_engine_cost(topo, NULL, &m, &o, n, &eo, c), 0, "%s", dpt_last_error());
    const double dom = package_bytes_per_step(c, k->threads);
    dpt_place *plan = calloc((size_t)k->threads, sizeof *plan);
    int *d = calloc((size_t)k->threads, sizeof *d);
    cr_assert_eq(dpt_topo_plan(topo, k->threads, &eo.pin, plan), 0);
    const int nd = dpt_topo_domains(topo, plan, k->threads, DPT_DOMAIN_AUTO, d, NULL);
    cr_expect_gt(nd, 1);
    cr_expect_leq(dom, 2.0 * nd * M,
                  "\"%s\" %d threads: %.3g bytes cross packages per step, %d domains of %.3g",
                  topo_s, k->threads, dom, nd, M);
    cr_expect_geq(flat, 0.5 * k->threads * M, "flat: %.3g", flat);
    cr_expect_lt(dom, flat / 1.5, "domains %.3g against flat %.3g", dom, flat);
    free(plan);
    free(d);
    free(c);
    dpt_topo_close(topo);
}

/* Same seed and thread count: the same bits whatever the domains and the
 * reduction; with leaves, whatever the thread count too. */
struct bits_case {
    int threads, leaves;
};

ParameterizedTestParameters(cost, domains_same_bits)
{
    static struct bits_case cases[] = {{1, 0},  {2, 0},  {3, 0},  {8, 0},   {16, 0},
                                       {48, 0}, {3, 13}, {8, 13}, {16, 13}, {48, 13}};
    return cr_make_param_array(struct bits_case, cases, sizeof cases / sizeof cases[0]);
}

static float *train_bits(int threads, int leaves, const char *topo_s, dpt_domain_level dom,
                         dpt_reduce red, dpt_split split, dpt_pin_policy pin, int *nd_out)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_optim_spec o;
    cr_assert_eq(ref_small_mlp(&m, &ds, &o, 203), 0);
    o.batch = 50;
    dpt_topo *topo;
    cr_assert_eq(dpt_topo_open(&topo, topo_s, NULL), 0);
    dpt_engine_opts eo;
    ref_engine_opts(&eo, threads, 1);
    eo.topo = topo;
    eo.pin.policy = pin;
    eo.leaves = leaves;
    eo.domain = dom;
    eo.reduce = red;
    eo.split = split;
    dpt_engine *e;
    cr_assert_eq(dpt_engine_create(&e, &m, &o, &ds, &eo), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_engine_split(e), split == DPT_SPLIT_AUTO ? DPT_SPLIT_DATA : split);
    cr_assert_eq(dpt_engine_train(e, 3, NULL, NULL), 0, "%s", dpt_last_error());
    float *w = malloc(m.n_params * sizeof *w);
    memcpy(w, dpt_engine_params(e), m.n_params * sizeof *w);
    *nd_out = dpt_engine_domains(e, NULL); /* the layer split's groups counted */
    dpt_engine_destroy(e);
    dpt_topo_close(topo);
    dpt_dataset_free(&ds);
    return w;
}

ParameterizedTest(struct bits_case *c, cost, domains_same_bits)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_optim_spec o;
    cr_assert_eq(ref_small_mlp(&m, &ds, &o, 8), 0);
    const size_t bytes = m.n_params * sizeof(float);
    dpt_dataset_free(&ds);
    int nd;
    float *ref =
        train_bits(c->threads, c->leaves, "pack:2 numa:2 l3:2 core:3 pu:2", DPT_DOMAIN_NONE,
                   DPT_REDUCE_SCATTER, DPT_SPLIT_DATA, DPT_PIN_SCATTER, &nd);
    const dpt_split L = DPT_SPLIT_LAYER;
    const struct {
        const char *topo;
        dpt_domain_level dom;
        dpt_reduce red;
        dpt_split split;
        int compact; /* else scatter */
    } v[] = {
        {"pack:2 numa:2 l3:2 core:3 pu:2", DPT_DOMAIN_L3, DPT_REDUCE_SCATTER, 0, 0},
        {"pack:2 numa:2 l3:2 core:3 pu:2", DPT_DOMAIN_NUMA, DPT_REDUCE_SCATTER, 0, 0},
        {"pack:2 numa:2 l3:2 core:3 pu:2", DPT_DOMAIN_PACKAGE, DPT_REDUCE_TREE, 0, 0},
        {"pack:2 numa:12 core:8 pu:1", DPT_DOMAIN_AUTO, DPT_REDUCE_SCATTER, 0, 0},
        {"pack:4 numa:2 core:16 pu:2", DPT_DOMAIN_NUMA, DPT_REDUCE_TREE, 0, 0},
        /* the layer split: one domain, domains, folding or per-unit buffers */
        {"pack:2 numa:2 l3:2 core:3 pu:2", DPT_DOMAIN_NONE, DPT_REDUCE_SCATTER, L, 0},
        {"pack:2 numa:2 l3:2 core:3 pu:2", DPT_DOMAIN_L3, DPT_REDUCE_SCATTER, L, 0},
        {"pack:2 numa:2 l3:2 core:3 pu:2", DPT_DOMAIN_PACKAGE, DPT_REDUCE_TREE, L, 0},
        {"pack:2 numa:12 core:8 pu:1", DPT_DOMAIN_AUTO, DPT_REDUCE_SCATTER, L, 0},
        {"pack:4 numa:2 core:16 pu:2", DPT_DOMAIN_NUMA, DPT_REDUCE_TREE, L, 0},
        /* one 48-core L3: cut into groups of 8 past 16 threads */
        {"pack:1 numa:1 l3:1 core:48 pu:1", DPT_DOMAIN_AUTO, DPT_REDUCE_SCATTER, L, 0},
        /* two 24-core packages, compact: past 16 threads a package, groups
         * of 8 summed in their package first (the package level) and a
         * copy of w per package */
        {"pack:2 numa:1 l3:1 core:24 pu:1", DPT_DOMAIN_AUTO, DPT_REDUCE_SCATTER, L, 1},
    };
    int layouts = 0;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        float *w = train_bits(c->threads, c->leaves, v[i].topo, v[i].dom, v[i].red, v[i].split,
                              v[i].compact ? DPT_PIN_COMPACT : DPT_PIN_SCATTER, &nd);
        layouts += nd > 1;
        if (v[i].compact && c->threads == 48)
            cr_expect_eq(nd, 6, "two packages of 24 threads: %d groups, not 6", nd);
        cr_expect_eq(memcmp(w, ref, bytes), 0,
                     "%d threads, leaves %d, \"%s\" --domain %s (%d), %s, split %s", c->threads,
                     c->leaves, v[i].topo, dpt_domain_name(v[i].dom), nd,
                     v[i].red == DPT_REDUCE_TREE ? "tree" : "scatter", dpt_split_name(v[i].split));
        free(w);
    }
    if (c->threads >= 2) cr_expect_gt(layouts, 0, "no layout had more than one domain");
    if (c->leaves) {
        /* deterministic: the 1-thread run's bits */
        float *one = train_bits(1, c->leaves, "pack:2 numa:2 l3:2 core:3 pu:2", DPT_DOMAIN_NONE,
                                DPT_REDUCE_SCATTER, DPT_SPLIT_DATA, DPT_PIN_SCATTER, &nd);
        cr_expect_eq(memcmp(one, ref, bytes), 0, "leaves %d: %d threads against 1", c->leaves,
                     c->threads);
        free(one);
    }
    free(ref);
}

/* The engine says when the layer split cut its domains into groups, and
 * when their packages sum them first (dpt_engine_domain_groups): two
 * 24-core packages, compact, 48 threads; one package's 24; the two
 * scattered (not cut). */
Test(cost, engine_reports_groups)
{
    const struct {
        int threads;
        dpt_pin_policy pin;
        int groups, package_level, domains;
    } c[] = {
        {48, DPT_PIN_COMPACT, 1, 1, 6},
        {24, DPT_PIN_COMPACT, 1, 0, 3},
        {48, DPT_PIN_SCATTER, 0, 0, 2},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        dpt_model m;
        dpt_dataset ds;
        dpt_optim_spec o;
        cr_assert_eq(ref_small_mlp(&m, &ds, &o, 203), 0);
        dpt_topo *topo;
        cr_assert_eq(dpt_topo_open(&topo, "pack:2 numa:1 l3:1 core:24 pu:1", NULL), 0);
        dpt_engine_opts eo;
        ref_engine_opts(&eo, c[i].threads, 1);
        eo.topo = topo;
        eo.pin.policy = c[i].pin;
        eo.split = DPT_SPLIT_LAYER;
        dpt_engine *e;
        cr_assert_eq(dpt_engine_create(&e, &m, &o, &ds, &eo), 0, "%s", dpt_last_error());
        int pkl = -1;
        cr_expect_eq(dpt_engine_domain_groups(e, &pkl), c[i].groups, "case %zu: groups", i);
        cr_expect_eq(pkl, c[i].package_level, "case %zu: package level", i);
        cr_expect_eq(dpt_engine_domains(e, NULL), c[i].domains, "case %zu: domains", i);
        dpt_engine_destroy(e);
        dpt_topo_close(topo);
        dpt_dataset_free(&ds);
    }
}

/* The layer split on a many-core server (784-256-128-10, batch 256): each
 * thread reads 1/k of the parameters (k threads in its domain) instead of
 * all of them, and the domain's gradient is folded as it is computed, so
 * the reduce reads no unit's gradient twice. */
ParameterizedTestParameters(cost, layer_split_shares_the_model)
{
    static struct cross_case cases[] = {{0, 48}, {0, 96}, {2, 96}, {2, 192}};
    return cr_make_param_array(struct cross_case, cases, sizeof cases / sizeof cases[0]);
}

static void step_moves(const dpt_thread_counts *c, int P, int ph, double *self, double *other)
{
    *self = *other = 0;
    for (int t = 0; t < P; t++)
        for (int d = 0; d < DPT_NEAR_COUNT; d++) {
            const double b = (double)c[t].phase[ph].read[d] / (double)c[t].steps / P;
            if (d == DPT_NEAR_SELF)
                *self += b;
            else
                *other += b;
        }
}

ParameterizedTest(struct cross_case *k, cost, layer_split_shares_the_model)
{
    dpt_model m;
    cr_assert_eq(ref_fmnist_mlp(&m), 0);
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    o.kind = DPT_OPT_MOMENTUM;
    o.batch = 256;
    dpt_topo *topo;
    cr_assert_eq(dpt_topo_open(&topo, crossing_topos[k->topo], NULL), 0);
    dpt_engine_opts eo;
    ref_engine_opts(&eo, k->threads, 1);
    eo.topo = topo;
    eo.pin.policy = DPT_PIN_COMPACT;
    eo.pin.smt = 1;
    const int P = k->threads;
    dpt_thread_counts *data = calloc((size_t)P, sizeof *data),
                      *layer = calloc((size_t)P, sizeof *layer);
    eo.split = DPT_SPLIT_DATA;
    cr_assert_eq(dpt_engine_cost(topo, NULL, &m, &o, 2560, &eo, data), 0, "%s", dpt_last_error());
    eo.split = DPT_SPLIT_LAYER;
    cr_assert_eq(dpt_engine_cost(topo, NULL, &m, &o, 2560, &eo, layer), 0, "%s", dpt_last_error());
    /* auto takes the layer split here: 256 rows over 48+ threads */
    eo.split = DPT_SPLIT_AUTO;
    dpt_thread_counts *aut = calloc((size_t)P, sizeof *aut);
    cr_assert_eq(dpt_engine_cost(topo, NULL, &m, &o, 2560, &eo, aut), 0);
    cr_expect_eq(memcmp(aut, layer, (size_t)P * sizeof *aut), 0, "auto is not the layer split");
    int *dom = calloc((size_t)P, sizeof *dom);
    dpt_place *plan = calloc((size_t)P, sizeof *plan);
    cr_assert_eq(dpt_topo_plan(topo, P, &eo.pin, plan), 0);
    const int nd = dpt_topo_domains(topo, plan, P, DPT_DOMAIN_AUTO, dom, NULL);
    const double M = (double)m.n_params * 4, kd = (double)P / nd;
    double ds, dother, ls, lother;
    step_moves(data, P, DPT_CPH_COMPUTE, &ds, &dother);
    step_moves(layer, P, DPT_CPH_COMPUTE, &ls, &lother);
    /* data: every thread reads all of w from its domain's copy (its own
     * for the domain's first thread) */
    cr_expect_geq(ds + dother, M, "data split: %.3g bytes of w and rows a thread", ds + dother);
    cr_expect_geq(dother, M * (1 - 1.5 / kd), "data split: %.3g bytes from others", dother);
    /* layer: about 2 M / k of w, plus its domain's rows and activations */
    cr_expect_leq(lother, 2.2 * M / kd + 0.2 * M,
                  "layer split, %d domains of %.0f threads: %.3g bytes a thread (M %.3g)", nd, kd,
                  lother, M);
    cr_expect_lt(lother, 0.5 * dother, "layer %.3g against data %.3g", lother, dother);
    cr_log_info("\"%s\" %d threads, %d domains: a thread reads %.3g bytes of others' a step "
                "(data split: %.3g), M = %.3g",
                crossing_topos[k->topo], P, nd, lother, dother, M);
    /* the reduce reads the domains' sums only, not every unit inside them */
    step_moves(data, P, DPT_CPH_REDUCE, &ds, &dother);
    step_moves(layer, P, DPT_CPH_REDUCE, &ls, &lother);
    cr_expect_lt(ls + lother, ds + dother, "reduce reads: layer %.3g, data %.3g", ls + lother,
                 ds + dother);
    /* the update: the data split pushes each slice into every other
     * domain's copy; the layer split's domains read w itself, so its
     * update writes nothing of others' (its share comes in the compute) */
    double dwo = 0, lwo = 0;
    for (int t = 0; t < P; t++)
        for (int d = DPT_NEAR_SELF + 1; d < DPT_NEAR_COUNT; d++) {
            dwo += (double)data[t].phase[DPT_CPH_UPDATE].written[d] / (double)data[t].steps;
            lwo += (double)layer[t].phase[DPT_CPH_UPDATE].written[d] / (double)layer[t].steps;
        }
    if (nd > 1) cr_expect_geq(dwo, (nd - 1) * M, "data split pushes %.3g bytes a step", dwo);
    cr_expect_eq(lwo, 0, "layer split, %d domains: the update writes %.3g bytes of others'", nd,
                 lwo);
    /* and the bits of a thread's share of w fall with the threads of a domain */
    for (int kk = 1; kk <= 12; kk++) {
        size_t most = 0;
        for (int i = 0; i < kk; i++) {
            const size_t f = dpt_split_w_floats(&m, i, kk);
            if (f > most) most = f;
        }
        cr_expect_leq((double)most, 2.0 * m.n_params / kk + 1024, "%d threads: %zu floats", kk,
                      most);
    }
    free(dom);
    free(plan);
    free(data);
    free(layer);
    free(aut);
    dpt_topo_close(topo);
}

/* Bytes of phase ph a step at distance d, all threads: read or written. */
static double step_at(const dpt_thread_counts *c, int P, int ph, int d, int written)
{
    double b = 0;
    for (int t = 0; t < P; t++)
        b += (double)(written ? c[t].phase[ph].written[d] : c[t].phase[ph].read[d]) /
             (double)c[t].steps;
    return b;
}

/* fmnist-mlp (784-256-128-10) at batch 256 over 2560 rows, P threads
 * pinned by pin on topology topo_s, with the given split and domains: the
 * cost function's counts (to free). */
static dpt_thread_counts *fmnist_cost(const dpt_model *m, dpt_opt_kind kind, const char *topo_s,
                                      int P, dpt_pin_policy pin, dpt_split split,
                                      dpt_domain_level domain)
{
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    o.kind = kind;
    o.batch = 256;
    dpt_topo *topo;
    cr_assert_eq(dpt_topo_open(&topo, topo_s, NULL), 0);
    dpt_engine_opts eo;
    ref_engine_opts(&eo, P, 1);
    eo.topo = topo;
    eo.pin.policy = pin;
    eo.split = split;
    eo.domain = domain;
    dpt_thread_counts *c = calloc((size_t)P, sizeof *c);
    cr_assert_eq(dpt_engine_cost(topo, NULL, m, &o, 2560, &eo, c), 0, "%s", dpt_last_error());
    dpt_topo_close(topo);
    return c;
}

/* the same under the layer split, the domains by default */
static dpt_thread_counts *fmnist_layer_cost(const dpt_model *m, dpt_opt_kind kind,
                                            const char *topo_s, int P, dpt_pin_policy pin)
{
    return fmnist_cost(m, kind, topo_s, P, pin, DPT_SPLIT_LAYER, DPT_DOMAIN_AUTO);
}

/* The update's slices (the flat engine: each thread sums and updates its
 * slice of the parameters) are cut at whole cache lines, so that no two
 * threads write into one line and every slice's vectors start where lines
 * do; they cover w once, and differ by less than two lines. */
Test(cost, slices_at_whole_lines)
{
    dpt_model m;
    cr_assert_eq(ref_fmnist_mlp(&m), 0);
    static const int threads[] = {2, 3, 7, 48};
    for (size_t i = 0; i < sizeof threads / sizeof threads[0]; i++) {
        const int P = threads[i];
        /* SGD: w alone, no velocity */
        dpt_thread_counts *c = fmnist_cost(&m, DPT_OPT_SGD, "pack:2 numa:2 core:12 pu:1", P,
                                           DPT_PIN_COMPACT, DPT_SPLIT_DATA, DPT_DOMAIN_NONE);
        uint64_t total = 0, lo = UINT64_MAX, hi = 0;
        for (int t = 0; t < P; t++) {
            /* its slice of w, and its verdict flag's line */
            const uint64_t b = c[t].phase[DPT_CPH_UPDATE].written[DPT_NEAR_SELF] / c[t].steps - 64;
            if (t + 1 < P)
                cr_expect_eq(b % 64, 0, "%d threads: thread %d's slice is %" PRIu64 " bytes", P, t,
                             b);
            total += b;
            lo = b < lo ? b : lo;
            hi = b > hi ? b : hi;
        }
        cr_expect_eq(total, m.n_params * sizeof(float), "%d threads: the slices hold %" PRIu64, P,
                     total);
        cr_expect_lt(hi - lo, 128, "%d threads: slices of %" PRIu64 " to %" PRIu64 " bytes", P, lo,
                     hi);
        free(c);
    }
}

/* Two packages of one 56-core node each (a two-socket Sapphire Rapids),
 * 112 threads, the layer split: each package's seven groups are summed in
 * the package first, so a slice owner reads from the other package that
 * package's items of the canonical tree, not its seven groups' sums: for
 * 112 units, package 0 holds [0, 32), [32, 48), [48, 56) and package 1
 * [56, 64), [64, 112), so package 0's slices (half of w) read 2 and
 * package 1's read 3. The compute reads its package's copy of w (nothing
 * over the link) and the update pushes each slice once into the other
 * package's copy. */
Test(cost, package_level_crosses_once)
{
    dpt_model m;
    cr_assert_eq(ref_fmnist_mlp(&m), 0);
    const int P = 112;
    const char *topo = "pack:2 numa:1 core:56 pu:1";
    dpt_thread_counts *c = fmnist_layer_cost(&m, DPT_OPT_MOMENTUM, topo, P, DPT_PIN_COMPACT);
    const double half = (double)m.n_params / 2 * sizeof(float);
    /* package 0's slices: half of w, cut at a whole cache line */
    const double w0 = (double)(m.n_params / 2 / 16 * 16) * sizeof(float);
    const double w1 = (double)m.n_params * sizeof(float) - w0;
    const int far = DPT_NEAR_PACKAGE;
    cr_expect_eq(step_at(c, P, DPT_CPH_REDUCE, far, 0), 2 * w0 + 3 * w1,
                 "the reduce reads %.6g bytes a step from the other package, not %.6g",
                 step_at(c, P, DPT_CPH_REDUCE, far, 0), 2 * w0 + 3 * w1);
    cr_expect_eq(step_at(c, P, DPT_CPH_REDUCE, far, 1), 0, "the reduce writes over the link");
    cr_expect_eq(step_at(c, P, DPT_CPH_COMPUTE, far, 0), 0,
                 "the compute reads %.6g bytes a step over the link",
                 step_at(c, P, DPT_CPH_COMPUTE, far, 0));
    cr_expect_eq(step_at(c, P, DPT_CPH_UPDATE, far, 1), 2 * half,
                 "the update writes %.6g bytes a step over the link, not w once (%.6g)",
                 step_at(c, P, DPT_CPH_UPDATE, far, 1), 2 * half);
    /* the package's pass: a barrier more in the reduce than one package's team */
    cr_expect_eq(c[0].phase[DPT_CPH_REDUCE].barriers, 2 * (uint64_t)c[0].steps);
    free(c);
    /* the same team scattered over the packages is not cut: no package level */
    c = fmnist_layer_cost(&m, DPT_OPT_MOMENTUM, topo, P, DPT_PIN_SCATTER);
    cr_expect_eq(c[0].phase[DPT_CPH_REDUCE].barriers, (uint64_t)c[0].steps);
    free(c);
}

/* The layer split's compute: 2 x layers barriers of the domain a step,
 * plus one at the epoch's first step only; the later steps' rows are put
 * side by side right after the compute barrier of the step before
 * (train.c stage_next), which the team barriers then order. */
Test(cost, layer_split_stages_the_rows)
{
    dpt_model m;
    cr_assert_eq(ref_fmnist_mlp(&m), 0);
    const int P = 56;
    dpt_thread_counts *c =
        fmnist_layer_cost(&m, DPT_OPT_SGD, "pack:1 numa:1 core:56 pu:1", P, DPT_PIN_COMPACT);
    for (int t = 0; t < P; t++)
        cr_expect_eq(c[t].phase[DPT_CPH_COMPUTE].barriers, c[t].steps * 2 * (uint64_t)m.layers + 1,
                     "thread %d: %" PRIu64 " compute barriers in %" PRIu64 " steps", t,
                     c[t].phase[DPT_CPH_COMPUTE].barriers, c[t].steps);
    free(c);
}

/* auto keeps the data split where a domain is too big for cheap barriers
 * and cannot be cut (packages of several large nodes) or rows are
 * plentiful; the layer split where the domains are L3 groups of a few
 * cores, or a team in one package, or packages of one domain each, whose
 * large domains the layer split cuts into groups, and rows are few. */
Test(cost, split_auto_rule)
{
    dpt_model m;
    cr_assert_eq(ref_fmnist_mlp(&m), 0);
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    o.kind = DPT_OPT_SGD;
    const struct {
        const char *topo;
        int threads;
        size_t batch;
        dpt_split expect;
    } c[] = {
        /* one package: its two 56-thread nodes cut into 8-thread groups */
        {"pack:2 numa:2 core:56 pu:1", 112, 256, DPT_SPLIT_LAYER},
        /* two packages of one node each: cut too, each package's groups
         * summed in it first (the package level) */
        {"pack:2 numa:1 core:56 pu:1", 112, 256, DPT_SPLIT_LAYER},
        /* two packages of two nodes each: kept whole (no package level) */
        {"pack:2 numa:2 core:28 pu:1", 112, 256, DPT_SPLIT_DATA},
        {"pack:2 numa:4 l3:2 core:6 pu:1", 96, 256, DPT_SPLIT_LAYER}, /* 6-thread L3s */
        {"pack:2 numa:4 l3:2 core:6 pu:1", 96, 4096, DPT_SPLIT_DATA}, /* 42 rows a thread */
        {"pack:2 numa:4 l3:2 core:6 pu:1", 1, 8, DPT_SPLIT_DATA},     /* one thread */
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        dpt_topo *topo;
        cr_assert_eq(dpt_topo_open(&topo, c[i].topo, NULL), 0);
        dpt_engine_opts eo;
        ref_engine_opts(&eo, c[i].threads, 1);
        eo.topo = topo;
        eo.pin.policy = DPT_PIN_COMPACT;
        o.batch = c[i].batch;
        const int P = c[i].threads;
        dpt_thread_counts *a = calloc((size_t)P, sizeof *a), *x = calloc((size_t)P, sizeof *x);
        eo.split = DPT_SPLIT_AUTO;
        cr_assert_eq(dpt_engine_cost(topo, NULL, &m, &o, 8192, &eo, a), 0, "%s", dpt_last_error());
        eo.split = c[i].expect;
        cr_assert_eq(dpt_engine_cost(topo, NULL, &m, &o, 8192, &eo, x), 0, "%s", dpt_last_error());
        cr_expect_eq(memcmp(a, x, (size_t)P * sizeof *a), 0,
                     "\"%s\" %d threads, batch %zu: auto is not %s", c[i].topo, P, c[i].batch,
                     dpt_split_name(c[i].expect));
        free(a);
        free(x);
        dpt_topo_close(topo);
    }
}

/* dpt_topo_domain_groups: domains past `most` threads cut into the fewest
 * groups of at most `size` consecutive threads, as even as they come,
 * numbered by first thread (interleaved domains too); small ones kept. */
Test(cost, domain_groups)
{
    int dom[130];
    /* 56 + 56 + 10, the first two interleaved thread by thread */
    for (int t = 0; t < 112; t++) dom[t] = t % 2;
    for (int t = 112; t < 122; t++) dom[t] = 2;
    const int n = dpt_topo_domain_groups(dom, 122, 16, 8);
    cr_expect_eq(n, 7 + 7 + 1);
    int size[16] = {0}, first[16];
    for (int g = 0; g < 16; g++) first[g] = -1;
    for (int t = 0; t < 122; t++) {
        cr_assert(dom[t] >= 0 && dom[t] < n, "thread %d in %d", t, dom[t]);
        if (first[dom[t]] < 0) first[dom[t]] = t;
        size[dom[t]]++;
    }
    for (int g = 0; g < n; g++) {
        cr_expect(size[g] == 8 || (g == n - 1 && size[g] == 10), "group %d: %d", g, size[g]);
        if (g) cr_expect_gt(first[g], first[g - 1], "group %d numbered out of order", g);
    }
    /* each group's threads come from one domain, consecutive in it */
    for (int t = 2; t < 112; t++)
        if (dom[t] != dom[t - 2]) cr_expect_gt(dom[t], dom[t - 2]);
    /* 50 threads: 7 groups of 7 or 8 */
    for (int t = 0; t < 50; t++) dom[t] = 0;
    cr_expect_eq(dpt_topo_domain_groups(dom, 50, 16, 8), 7);
    for (int g = 0; g < 7; g++) {
        int k = 0;
        for (int t = 0; t < 50; t++) k += dom[t] == g;
        cr_expect(k == 7 || k == 8, "group %d: %d threads", g, k);
    }
    /* domains not numbered by first thread, a negative one, no group size:
     * -1 with the reason, dom untouched */
    int bad[4] = {0, 2, 1, 1}, keep[4];
    memcpy(keep, bad, sizeof bad);
    cr_expect_eq(dpt_topo_domain_groups(bad, 4, 1, 1), -1);
    cr_expect(strstr(dpt_last_error(), "thread 1"), "%s", dpt_last_error());
    cr_expect_eq(memcmp(bad, keep, sizeof bad), 0);
    bad[1] = -5;
    cr_expect_eq(dpt_topo_domain_groups(bad, 4, 1, 1), -1);
    bad[1] = 1;
    cr_expect_eq(dpt_topo_domain_groups(bad, 4, 1, 0), -1);
    cr_expect_eq(dpt_topo_domain_groups(bad, 4, 1, 1), 4); /* every thread its own group */
}

/* The engine's domains: the layer split (asked, or auto in the small-row
 * regime) cuts a one-package team's 48-thread L3 into six groups of 8; the
 * data split, explicit --domain, and an unpinned team keep it whole. */
Test(cost, layer_split_cuts_a_large_l3)
{
    dpt_model m;
    cr_assert_eq(ref_fmnist_mlp(&m), 0);
    dpt_dataset ds;
    ref_make_data(&ds, 512, m.width[0], &m.spec, 3);
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    o.kind = DPT_OPT_SGD;
    o.batch = 256;
    dpt_topo *topo;
    cr_assert_eq(dpt_topo_open(&topo, "pack:1 numa:1 l3:1 core:48 pu:1", NULL), 0);
    const struct {
        dpt_split split;
        dpt_domain_level dom;
        dpt_pin_policy pin;
        int nd;
    } c[] = {{DPT_SPLIT_LAYER, DPT_DOMAIN_AUTO, DPT_PIN_COMPACT, 6},
             {DPT_SPLIT_AUTO, DPT_DOMAIN_AUTO, DPT_PIN_COMPACT, 6},
             {DPT_SPLIT_DATA, DPT_DOMAIN_AUTO, DPT_PIN_COMPACT, 1},
             {DPT_SPLIT_LAYER, DPT_DOMAIN_L3, DPT_PIN_COMPACT, 1},
             {DPT_SPLIT_LAYER, DPT_DOMAIN_AUTO, DPT_PIN_NONE, 1}};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        dpt_engine_opts eo;
        ref_engine_opts(&eo, 48, 1);
        eo.topo = topo;
        eo.pin.policy = c[i].pin;
        eo.split = c[i].split;
        eo.domain = c[i].dom;
        dpt_engine *e;
        cr_assert_eq(dpt_engine_create(&e, &m, &o, &ds, &eo), 0, "%s", dpt_last_error());
        dpt_domain_level used;
        cr_expect_eq(dpt_engine_domains(e, &used), c[i].nd, "case %zu: %d domains", i,
                     dpt_engine_domains(e, &used));
        cr_expect_eq(dpt_engine_split(e),
                     c[i].split == DPT_SPLIT_DATA ? DPT_SPLIT_DATA : DPT_SPLIT_LAYER);
        dpt_engine_destroy(e);
    }
    dpt_topo_close(topo);
    dpt_dataset_free(&ds);
}
