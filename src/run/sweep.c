/* The bench sweep: timed runs of one spec over rank counts, thread counts
 * and pinnings, interleaved within each repetition, against the machine
 * limits measured in the same run, into a dpt-bench/1 report. Time is the
 * training loop only, after untimed warm-up epochs, every repetition from
 * the same initial parameters. Under MPI a run of n ranks trains on the
 * first n; the others sleep in a barrier meanwhile, and times are rank 0's. */
#include <math.h>
#include <stddef.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/error.h"
#include "dpt/limits.h"
#include "dpt/mpi.h"
#include "dpt/run.h"
#include "dpt/stats.h"
#include "dpt_config.h"
#include "dpt_revision.h"
#include "kernels/kernels.h"
#include "run/sweep.h"

void dpt_bench_context_fill(dpt_bench_context *c)
{
    dpt_bench_context_probe(c, "/");
    dpt_topo *t;
    if (dpt_topo_open(&t, NULL, NULL) == 0) {
        c->packages = dpt_topo_count(t, HWLOC_OBJ_PACKAGE);
        c->numa_nodes = dpt_topo_count(t, HWLOC_OBJ_NUMANODE);
        c->cores = dpt_topo_count(t, HWLOC_OBJ_CORE);
        c->pus = dpt_topo_count(t, HWLOC_OBJ_PU);
        dpt_topo_close(t);
    }
    snprintf(c->isa, sizeof c->isa, "%s", dpt_kernels_get()->isa);
    snprintf(c->compiler, sizeof c->compiler, "%s", DPT_COMPILER);
    snprintf(c->cflags, sizeof c->cflags, "buildtype=%s sanitize=%s avx2-kernels=%s", DPT_BUILDTYPE,
             DPT_SANITIZE, dpt_build_has_avx2() ? "-mavx2 -mfma -mprfchw" : "off");
    snprintf(c->dpt_version, sizeof c->dpt_version, "%s", DPT_VERSION);
    snprintf(c->git_revision, sizeof c->git_revision, "%s", DPT_REVISION);
    /* the runtime the compiler links for -fopenmp, not a guess at run time */
#if defined(__clang__)
    const char *rt = "libomp";
#else
    const char *rt = "libgomp";
#endif
    snprintf(c->openmp, sizeof c->openmp, "%s, OpenMP %d, max threads %d", rt, _OPENMP,
             omp_get_max_threads());
}

void dpt_run_engine_context(const dpt_run_spec *s, char *buf, size_t cap)
{
    static const char *const reduce[] = {"tree", "scatter"}, *const overlap[] = {"auto", "off",
                                                                                 "on"};
    const dpt_engine_opts *e = &s->engine;
    const int shuffled = e->shuffle && s->opt.kind != DPT_OPT_GD && s->opt.batch != 0;
    snprintf(buf, cap,
             "reduce=%s balance=%s shuffle=%s batching=%s leaves=%d comm-overlap=%s domain=%s",
             reduce[e->reduce], e->balance == DPT_BALANCE_ADAPTIVE ? "adaptive" : "static",
             shuffled ? "epoch" : "none", e->batching_local ? "local" : "global", e->leaves,
             overlap[e->overlap], dpt_domain_name(e->domain));
    size_t len = strlen(buf); /* only when set: older contexts stay as they were */
    if (e->split != DPT_SPLIT_AUTO && len < cap)
        snprintf(buf + len, cap - len, " split=%s", dpt_split_name(e->split)), len = strlen(buf);
    if (e->inject_slowdown > 0 && len < cap)
        snprintf(buf + len, cap - len, " inject-slowdown=%g%%", 100 * e->inject_slowdown);
}

/* The ranks of one rank count: the comm of its first n ranks (made once,
 * before the timing) and whether this rank is one of them. */
typedef struct rank_set {
    int n, member;
    int whole; /* n is the whole job: every rank runs */
    int own;   /* sub came from dpt_mpi_comm_first: free it */
    dpt_comm sub;
    const dpt_comm *comm; /* for the engine; NULL with one process */
} rank_set;

typedef struct sweep_state {
    const dpt_run_spec *base;
    const dpt_sweep_spec *sw;
    rank_set *sets;
    int nsets;
    dpt_run_work work; /* of the model and data, from the first run */
    int have_work;
    dpt_telemetry_probe *probe; /* NULL: no telemetry (out of memory) */
} sweep_state;

typedef dpt_sweep_sample sample;

/* One timed run at a rank set, thread count and pinning. Makes exactly
 * one world agreement after creating the run, whatever fails; *agreed
 * (when not NULL): 1 when it passed, so that further collectives are
 * allowed. */
static int run_config(sweep_state *st, const dpt_comm *comm, int threads, const char *pin,
                      int warmup, int evaluate, int first, sample *out, int *agreed)
{
    dpt_run_spec s = *st->base;
    s.engine.comm = comm;
    s.engine.threads = threads;
    s.warmup = warmup;
    s.evaluate = evaluate;
    s.eval_epochs = 0;
    s.on_epoch = NULL;
    s.progress = NULL;
    memset(out, 0, sizeof *out);
    out->loss = out->accuracy = NAN;
    dpt_telemetry_init(&out->telemetry);
    if (agreed) *agreed = 0;
    dpt_run *r = NULL;
    int rc = dpt_pin_parse(pin, &s.engine.pin), have_pin = rc == 0;
    s.engine.pin.smt = st->base->engine.pin.smt;
    if (!rc) rc = dpt_run_create(&r, &s);
    if ((rc = dpt_mpi_agree(rc))) goto done; /* every rank has its run, or all stop */
    if (agreed) *agreed = 1;
    const char *w = dpt_engine_warning(dpt_run_engine(r));
    if (first && w && st->sw->warning) {
        char msg[640];
        snprintf(msg, sizeof msg, "%d threads, pin %s: %s", threads, pin, w);
        st->sw->warning(msg, st->sw->progress_ud);
    }
    if (!st->have_work) {
        dpt_run_work_of(dpt_run_model(r), s.train, &st->work);
        st->have_work = 1;
    }
    dpt_run_result res;
    if (st->probe) dpt_telemetry_start(st->probe);
    if ((rc = dpt_run_train(r, &res))) goto done;
    if (st->probe) dpt_telemetry_stop(st->probe, threads, &out->telemetry);
    out->secs = res.seconds / res.epochs;
    out->phases = res.phases;
    out->imbalance = res.imbalance;
    out->moves = res.moves;
    out->split = res.split;
    if (evaluate) {
        out->loss = res.train.loss;
        out->accuracy = st->sw->accuracy_from_test && s.test && s.test->n ? res.test.accuracy
                                                                          : res.train.accuracy;
    }
done:
    dpt_run_destroy(r);
    if (have_pin) dpt_pin_spec_free(&s.engine.pin);
    return rc;
}

/* One timed run on the ranks of rs. Every rank makes the same collective
 * calls whatever fails: the world agreement inside run_config (or its
 * counterpart on the ranks that sit out), then, when only some ranks run,
 * the idle barrier that the others wait in asleep and the members join
 * after their run, and one more agreement on how the run went. */
static int run_on_ranks(sweep_state *st, const rank_set *rs, int threads, const char *pin,
                        int warmup, int evaluate, int first, sample *out)
{
    if (rs->whole) return run_config(st, rs->comm, threads, pin, warmup, evaluate, first, out, 0);
    int agreed = 0, rc;
    if (rs->member) {
        rc = run_config(st, rs->comm, threads, pin, warmup, evaluate, first, out, &agreed);
    } else {
        memset(out, 0, sizeof *out);
        out->secs = out->loss = out->accuracy = NAN;
        rc = dpt_mpi_agree(0);
        agreed = rc == 0;
    }
    if (!agreed) return rc; /* an agreement failed on every rank: no more collectives */
    int brc = dpt_mpi_idle_barrier();
    return dpt_mpi_agree(rc ? rc : brc);
}

/* A comm per rank count, before the timing: dpt_mpi_comm_first is a
 * collective on every rank, so every rank makes each one even when one of
 * them failed, and they agree once all are made. */
static int make_rank_sets(sweep_state *st, int *one_rank)
{
    const dpt_sweep_spec *sw = st->sw;
    const dpt_comm *world = st->base->engine.comm;
    const int size = world ? world->size : 1;
    int err = 0;
    *one_rank = 0;
    for (; st->nsets < (sw->nranks ? sw->nranks : 1); st->nsets++) {
        rank_set *rs = &st->sets[st->nsets];
        memset(rs, 0, sizeof *rs);
        rs->n = sw->nranks ? sw->ranks[st->nsets] : size;
        rs->member = 1;
        *one_rank |= rs->n == 1;
        if (rs->n == size) {
            rs->whole = 1;
            rs->comm = world;
            continue;
        }
        if (rs->n < 1 || rs->n > size) {
            if (!err)
                err = dpt_set_error(DPT_EINVAL, "%d ranks asked, the job has %d", rs->n, size);
            continue;
        }
        if (dpt_mpi_comm_first(rs->n, &rs->sub, &rs->member)) {
            if (!err) err = DPT_EIO;
            continue;
        }
        rs->own = 1;
        rs->comm = &rs->sub;
    }
    return dpt_mpi_agree(err);
}

/* Rank 0 measures alone (the limits are one process's); the other ranks
 * wait asleep in the idle barrier. Then every rank agrees on the outcome. */
static int measure_limits(sweep_state *st, dpt_bench_report *rep)
{
    const dpt_sweep_spec *sw = st->sw;
    int rc = 0;
    if (dpt_mpi_rank() == 0) {
        int most = 0;
        for (int i = 0; i < sw->nthreads; i++) most = sw->threads[i] > most ? sw->threads[i] : most;
        for (int i = 0; i < sw->nthreads && !rc; i++) {
            int seen = 0;
            for (int k = 0; k < i; k++) seen |= sw->threads[k] == sw->threads[i];
            if (seen) continue;
            dpt_limits L;
            if (sw->progress)
                sw->progress("measuring limits, threads", sw->threads[i], most, sw->progress_ud);
            if (!(rc = dpt_limits_measure_sized(sw->threads[i], DPT_LIMITS_QUICK_BYTES, 3, &L)))
                rc = dpt_bench_report_add_limit(rep, sw->threads[i], "none", L.read_gbs,
                                                L.fma_gflops);
        }
    }
    int brc = dpt_mpi_idle_barrier();
    return dpt_mpi_agree(rc ? rc : brc);
}

/* Median over the repetitions of the double at byte offset off of a sample. */
static double median_at(const sample *sm, int reps, double *tmp, size_t off)
{
    for (int r = 0; r < reps; r++) memcpy(&tmp[r], (const char *)&sm[r] + off, sizeof *tmp);
    return dpt_stats_median(tmp, (size_t)reps);
}

int dpt_sweep_add_row(dpt_bench_report *rep, const char *workload, int ranks, int threads,
                      const char *pin, long batch, const dpt_run_work *work, const sample *sm,
                      int reps)
{
    double *tmp = malloc((size_t)reps * sizeof *tmp);
    if (!tmp) return dpt_set_error(DPT_ENOMEM, "out of memory");
    for (int r = 0; r < reps; r++) tmp[r] = sm[r].secs;
    dpt_bench_result *res =
        dpt_bench_report_add(rep, workload, threads, pin, dpt_kernels_get()->isa, batch, tmp, reps);
    if (!res) {
        free(tmp);
        return DPT_ENOMEM;
    }
    res->ranks = ranks;
    res->phases.compute = median_at(sm, reps, tmp, offsetof(sample, phases.compute));
    res->phases.reduce = median_at(sm, reps, tmp, offsetof(sample, phases.reduce));
    res->phases.update = median_at(sm, reps, tmp, offsetof(sample, phases.update));
    res->phases.wait = median_at(sm, reps, tmp, offsetof(sample, phases.wait));
    res->phases.comm = median_at(sm, reps, tmp, offsetof(sample, phases.comm));
    res->imbalance = median_at(sm, reps, tmp, offsetof(sample, imbalance));
    free(tmp);
    res->moves = sm[reps - 1].moves; /* counts do not vary between repetitions */
    snprintf(res->split, sizeof res->split, "%s", dpt_split_name(sm[reps - 1].split));
    /* telemetry only where every repetition has it (a reading names its threads) */
    int measured = 1;
    for (int r = 0; r < reps; r++) measured &= sm[r].telemetry.threads > 0;
    if (measured && (res->telemetry = malloc((size_t)reps * sizeof *res->telemetry)))
        for (int r = 0; r < reps; r++) res->telemetry[r] = sm[r].telemetry;
    int last = reps - 1; /* the last evaluated repetition (lockstep: the first) */
    while (last > 0 && isnan(sm[last].loss)) last--;
    res->final_loss = sm[last].loss;
    res->final_accuracy = sm[last].accuracy;
    res->work_samples = work->samples;
    res->work_flops = work->flops;
    if (work->bytes > 0) res->work_bytes = work->bytes;
    return 0;
}

static int check_sweep(const dpt_sweep_spec *sw)
{
    if (sw->nthreads < 1 || sw->nthreads > DPT_SWEEP_MAX || sw->npins < 1 || sw->npins > 8 ||
        sw->nranks < 0 || sw->nranks > DPT_SWEEP_MAX || sw->reps < 1 || sw->warmup < 0)
        return dpt_set_error(DPT_EINVAL,
                             "a sweep needs 1-%d thread counts (%d), 1-8 pinnings (%d), 0-%d "
                             "rank counts (%d), 1 or more repetitions (%d) and a warm-up >= 0",
                             DPT_SWEEP_MAX, sw->nthreads, sw->npins, DPT_SWEEP_MAX, sw->nranks,
                             sw->reps);
    return 0;
}

int dpt_sweep_configs(const dpt_sweep_spec *sw)
{
    return (sw->nranks ? sw->nranks : 1) * sw->nthreads * sw->npins;
}

/* Every configuration once per round, reps rounds (or, in lockstep, until
 * before_run ends them); the rounds run into *rounds. */
static int timed_runs(sweep_state *st, sample *runs, int *rounds)
{
    const dpt_sweep_spec *sw = st->sw;
    const int nt = sw->nthreads, np = sw->npins, reps = sw->reps, ncfg = st->nsets * nt * np;
    *rounds = 0;
    for (int r = 0; r < reps; r++) {
        for (int k = 0; k < ncfg; k++) {
            if (sw->before_run) {
                int go = sw->before_run(r, k, sw->run_ud);
                if (go == 1 && k == 0 && r > 0) return 0;
                if (go == 1)
                    return dpt_set_error(DPT_EINVAL,
                                         "lockstep: asked to stop at round %d, "
                                         "configuration %d (only between rounds "
                                         "after the first)",
                                         r, k);
                if (go) return go;
            }
            if (sw->progress)
                sw->progress("running", r * ncfg + k + 1, reps * ncfg, sw->progress_ud);
            /* lockstep does not know its last round: round 0 evaluates */
            const int evaluate = sw->before_run ? r == 0 : r == reps - 1;
            sample *out = &runs[(size_t)k * reps + r];
            int rc = run_on_ranks(st, &st->sets[k / (nt * np)], sw->threads[k % nt],
                                  sw->pins[(k / nt) % np], r == 0 ? sw->warmup : 0, evaluate,
                                  r == 0, out);
            if (rc) return rc;
            if (sw->after_run) sw->after_run(r, k, out->secs, out->telemetry.disturbed, sw->run_ud);
        }
        *rounds = r + 1;
    }
    return 0;
}

int dpt_bench_sweep(const dpt_run_spec *base, const dpt_sweep_spec *sw, dpt_bench_report *rep)
{
    dpt_bench_report_init(rep);
    int rc = check_sweep(sw);
    if (rc) return rc;
    sweep_state st = {.base = base, .sw = sw};
    const int nsets = sw->nranks ? sw->nranks : 1, ncfg = dpt_sweep_configs(sw);
    sample *runs = calloc((size_t)ncfg * (size_t)sw->reps, sizeof *runs);
    st.sets = calloc((size_t)nsets, sizeof *st.sets);
    rc = !runs || !st.sets ? dpt_set_error(DPT_ENOMEM, "out of memory") : 0;
    /* every rank has its buffers, or all stop */
    int one_rank = 0, rounds = 0;
    if (!rc && dpt_telemetry_open(&st.probe)) st.probe = NULL; /* the run goes on without */
    if (!(rc = dpt_mpi_agree(rc)) && !(rc = make_rank_sets(&st, &one_rank))) {
        dpt_bench_context_fill(&rep->context);
        dpt_run_engine_context(base, rep->context.engine, sizeof rep->context.engine);
        /* the limits only serve rows of one rank */
        if (sw->limits && one_rank) rc = measure_limits(&st, rep);
        if (!rc) rc = timed_runs(&st, runs, &rounds);
    }
    /* the report holds rank 0's times: the other ranks return it empty */
    const int nt = sw->nthreads, np = sw->npins;
    for (int k = 0; !rc && dpt_mpi_rank() == 0 && k < ncfg; k++)
        rc = dpt_sweep_add_row(rep, sw->workload, st.sets[k / (nt * np)].n, sw->threads[k % nt],
                               sw->pins[(k / nt) % np], (long)base->opt.batch, &st.work,
                               &runs[(size_t)k * sw->reps], rounds);
    if (!rc && dpt_mpi_rank() == 0) rc = dpt_bench_report_derive(rep);
    for (int i = 0; i < st.nsets; i++)
        if (st.sets[i].own) dpt_mpi_comm_free(&st.sets[i].sub);
    dpt_telemetry_close(st.probe);
    free(st.sets);
    free(runs);
    if (rc) dpt_bench_report_free(rep);
    return rc;
}
