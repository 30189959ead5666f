/* The prediction's parts without timing anything: the time model on
 * hand-made counts (more bandwidth is never slower, the limiting phase is
 * named, the barrier term grows with P), machine files and their errors,
 * the calibration file's round trip and interpolation, and the warnings
 * about idle threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "dpt/error.h"
#include "dpt/predict.h"

/* A calibration made by hand: gradients cost 10 us + 1 us per row. */
static void fake_cal(dpt_calibration *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->model, sizeof c->model, "mlp 784-256-128-10 relu ce");
    snprintf(c->opt, sizeof c->opt, "momentum");
    snprintf(c->isa, sizeof c->isa, "avx2");
    snprintf(c->cpu, sizeof c->cpu, "test");
    const double rows[] = {1, 2, 4, 8, 16, 64, 256};
    c->npoints = 7;
    for (int i = 0; i < 7; i++) {
        c->rows[i] = rows[i];
        c->grad_ns[i] = 10000 + 1000 * rows[i];
    }
    c->add_ns = 0.1;
    c->update_ns = 0.3;
    c->copy_ns = 0.05;
    c->shuffle_ns = 5;
    c->barrier_ns = 1000;
    c->barrier_threads = 2;
    c->cross_gbs = 20;
    c->read_gbs1 = 10;
    c->read_gbs = 15;
    c->threads_all = 2;
    c->cores = 2;
    c->cpu_share1 = 0.9;
    c->cpu_share = 0.75;
    c->grad_allcore = 0.5;
    c->grad_allcore_rows = 64;
    c->handoff_ns = 140;
    c->handoff_line_ns = 9;
    c->handoff_lines = 300;
}

static void mlp(dpt_model *m)
{
    dpt_model_spec s = {.kind = DPT_MODEL_MLP,
                        .inputs = 784,
                        .n_hidden = 2,
                        .hidden = {256, 128},
                        .classes = 10,
                        .act = DPT_ACTIVATION_RELU,
                        .loss = DPT_LOSS_CE,
                        .bias = 1};
    cr_assert_eq(dpt_model_init(m, &s), 0, "%s", dpt_last_error());
}

/* P threads on 2 packages (half each), every thread moving `bytes` in
 * each phase at distance d, and one barrier per phase per step. */
static void fake_counts(int P, int d, uint64_t bytes, long steps, dpt_place *plan,
                        dpt_thread_counts *c)
{
    memset(c, 0, (size_t)P * sizeof *c);
    for (int t = 0; t < P; t++) {
        plan[t] = (dpt_place){.thread = t,
                              .pu = t,
                              .core = t,
                              .numa = t * 2 / P,
                              .package = t * 2 / P,
                              .os_pu = (unsigned)t};
        for (int p = 0; p < DPT_CPH_COUNT; p++) {
            c[t].phase[p].read[d] = bytes;
            c[t].phase[p].written[d] = bytes / 2;
            c[t].phase[p].barriers = (uint64_t)steps;
        }
        c[t].steps = (uint64_t)steps;
        c[t].rows = (uint64_t)(128 / P) * (uint64_t)steps;
    }
}

static void opts_of(dpt_engine_opts *eo, dpt_optim_spec *o, size_t batch)
{
    dpt_engine_opts_defaults(eo);
    dpt_optim_defaults(o);
    o->kind = DPT_OPT_MOMENTUM;
    o->batch = batch;
}

/* the model, the hand-made calibration, batch 128 and genoa with every
 * core as fast as one alone */
static void genoa_fixture(dpt_model *m, dpt_calibration *cal, dpt_engine_opts *eo,
                          dpt_optim_spec *o, dpt_machine *mach)
{
    mlp(m);
    fake_cal(cal);
    opts_of(eo, o, 128);
    dpt_machine_preset("genoa", mach);
    mach->allcore_speed = 1;
}

TestSuite(timemodel);

Test(timemodel, more_bandwidth_is_never_slower)
{
    dpt_model m;
    mlp(&m);
    dpt_calibration cal;
    fake_cal(&cal);
    dpt_engine_opts eo;
    dpt_optim_spec o;
    opts_of(&eo, &o, 128);
    const int P = 8;
    dpt_place plan[8];
    dpt_thread_counts c[8];
    for (int d = DPT_NEAR_CORE; d < DPT_NEAR_COUNT; d++) {
        fake_counts(P, d, 4u << 20, 10, plan, c);
        dpt_machine mach;
        dpt_machine_preset("genoa", &mach);
        double prev = INFINITY;
        for (double f = 0.25; f <= 64; f *= 2) {
            dpt_machine x = mach;
            for (int k = DPT_NEAR_CORE; k < DPT_NEAR_COUNT; k++) x.bw[k] = mach.bw[k] * f;
            x.dram_node = mach.dram_node * f;
            x.link = mach.link * f;
            dpt_predict_row row;
            memset(&row, 0, sizeof row);
            dpt_predict_counts(&x, &cal, NULL, &m, &o, 1280, &eo, plan, P, c, &row);
            cr_assert(row.epoch_s > 0 && isfinite(row.epoch_s));
            cr_expect_leq(row.epoch_s, prev * (1 + 1e-12), "distance %s, bandwidth x%g: %g > %g",
                          dpt_near_name(d), f, row.epoch_s, prev);
            prev = row.epoch_s;
        }
    }
}

Test(timemodel, the_limiting_phase_is_named)
{
    dpt_model m;
    mlp(&m);
    dpt_calibration cal;
    fake_cal(&cal);
    dpt_engine_opts eo;
    dpt_optim_spec o;
    opts_of(&eo, &o, 128);
    dpt_machine mach;
    dpt_machine_preset("genoa", &mach);
    mach.allcore_speed = 1; /* the calibrated speed, busy or not */
    const int P = 4;
    dpt_place plan[4];
    dpt_thread_counts c[4];
    /* nothing moves: compute (the calibrated gradients) is all there is */
    fake_counts(P, DPT_NEAR_L3, 0, 10, plan, c);
    for (int t = 0; t < P; t++)
        for (int p = 0; p < DPT_CPH_COUNT; p++) c[t].phase[p].barriers = 0;
    dpt_predict_row row;
    dpt_predict_counts(&mach, &cal, NULL, &m, &o, 1280, &eo, plan, P, c, &row);
    cr_expect_eq(row.limiting, DPT_CPH_COMPUTE, "%s", dpt_cost_phase_name(row.limiting));
    cr_expect_str_eq(row.bound[DPT_CPH_COMPUTE], "cpu");
    /* 32 rows per call: 10 us + 32 us, ten steps */
    cr_expect(fabs(row.phase_s[DPT_CPH_COMPUTE] - 10 * 42e-6) < 1e-9, "%g",
              row.phase_s[DPT_CPH_COMPUTE]);
    /* a gigabyte read across packages in the reduce: the link (or the
     * thread's own transfers) bounds it, and it is the limit */
    for (int t = 0; t < P; t++) c[t].phase[DPT_CPH_REDUCE].read[DPT_NEAR_PACKAGE] = 1u << 30;
    dpt_predict_counts(&mach, &cal, NULL, &m, &o, 1280, &eo, plan, P, c, &row);
    cr_expect_eq(row.limiting, DPT_CPH_REDUCE, "%s", dpt_cost_phase_name(row.limiting));
    cr_expect_str_eq(row.bound[DPT_CPH_REDUCE], "bytes");
    mach.link = 1; /* a slow link: now it is the bound */
    dpt_predict_counts(&mach, &cal, NULL, &m, &o, 1280, &eo, plan, P, c, &row);
    cr_expect_str_eq(row.bound[DPT_CPH_REDUCE], "link");
    /* barriers that cost a millisecond each bound the sync phase */
    mach.barrier_a = 1e6;
    c[0].phase[DPT_CPH_SYNC].barriers = 10;
    dpt_predict_counts(&mach, &cal, NULL, &m, &o, 1280, &eo, plan, P, c, &row);
    cr_expect_str_eq(row.bound[DPT_CPH_SYNC], "barriers");
    cr_expect_geq(row.phase_s[DPT_CPH_SYNC], 10e-3);
}

Test(timemodel, the_barrier_term_grows_with_P)
{
    dpt_machine mach;
    dpt_machine_preset("spr", &mach);
    cr_expect_eq(dpt_machine_barrier(&mach, 1, 0), 0);
    double prev = 0;
    for (int P = 2; P <= 1024; P *= 2) {
        double b = dpt_machine_barrier(&mach, P, 0);
        cr_expect_gt(b, prev, "P %d", P);
        cr_expect_gt(dpt_machine_barrier(&mach, P, 1), b);
        prev = b;
    }
    /* and in a row: the same counts at more threads cost more barrier time */
    dpt_model m;
    mlp(&m);
    dpt_calibration cal;
    fake_cal(&cal);
    dpt_engine_opts eo;
    dpt_optim_spec o;
    opts_of(&eo, &o, 128);
    static dpt_place plan[64];
    static dpt_thread_counts c[64];
    double last = 0;
    for (int P = 2; P <= 64; P *= 2) {
        fake_counts(P, DPT_NEAR_L3, 0, 10, plan, c);
        dpt_predict_row row;
        dpt_predict_counts(&mach, &cal, NULL, &m, &o, 1280, &eo, plan, P, c, &row);
        cr_expect_gt(row.barrier_s, last, "P %d", P);
        last = row.barrier_s;
    }
}

Test(timemodel, busier_cores_compute_slower)
{
    dpt_model m;
    mlp(&m);
    dpt_calibration cal;
    fake_cal(&cal);
    dpt_engine_opts eo;
    dpt_optim_spec o;
    opts_of(&eo, &o, 128);
    dpt_machine mach;
    dpt_machine_preset("spr", &mach);
    dpt_place plan[4];
    dpt_thread_counts c[4];
    fake_counts(4, DPT_NEAR_L3, 0, 10, plan, c);
    for (int t = 0; t < 4; t++) c[t].phase[DPT_CPH_COMPUTE].barriers = 0;
    dpt_predict_row a, b;
    mach.allcore_speed = 1;
    dpt_predict_counts(&mach, &cal, NULL, &m, &o, 1280, &eo, plan, 4, c, &a);
    mach.allcore_speed = 0.5;
    dpt_predict_counts(&mach, &cal, NULL, &m, &o, 1280, &eo, plan, 4, c, &b);
    cr_expect(fabs(b.phase_s[DPT_CPH_COMPUTE] - 2 * a.phase_s[DPT_CPH_COMPUTE]) < 1e-12, "%g %g",
              a.phase_s[DPT_CPH_COMPUTE], b.phase_s[DPT_CPH_COMPUTE]);
}

/* Transfers add to a thread's CPU work (what it waits for from another
 * core it does not compute meanwhile), and handoffs stall it per step:
 * handoff_ns + min(lines - 1, handoff_lines) x handoff_line_ns, with the
 * epoch phase's bytes taken as one transfer. */
Test(timemodel, transfers_add_and_handoffs_stall_per_step)
{
    dpt_model m;
    dpt_calibration cal;
    dpt_engine_opts eo;
    dpt_optim_spec o;
    dpt_machine mach;
    genoa_fixture(&m, &cal, &eo, &o, &mach);
    const int P = 4;
    dpt_place plan[4];
    dpt_thread_counts c[4];
    /* 10 steps, each thread reading 4 KiB and writing 2 KiB of another
     * core's lines per phase: 6144 bytes, 96 lines, over all 10 steps */
    fake_counts(P, DPT_NEAR_L3, 40960, 10, plan, c);
    for (int t = 0; t < P; t++)
        for (int p = 0; p < DPT_CPH_COUNT; p++) c[t].phase[p].barriers = 0;
    dpt_predict_row none, with;
    dpt_predict_counts(&mach, &cal, NULL, &m, &o, 1280, &eo, plan, P, c, &none);
    const double xfer = 61440 / (mach.bw[DPT_NEAR_L3] * 1e9);
    cr_expect(fabs(none.phase_s[DPT_CPH_COMPUTE] - (10 * 42e-6 + xfer)) < 1e-12, "%g",
              none.phase_s[DPT_CPH_COMPUTE]);
    mach.handoff_ns = 150;
    mach.handoff_line_ns = 10;
    mach.handoff_lines = 50; /* fewer than the 95 further lines: capped */
    dpt_predict_counts(&mach, &cal, NULL, &m, &o, 1280, &eo, plan, P, c, &with);
    const double step = 1e-9 * (150 + 50 * 10);
    cr_expect(fabs(with.phase_s[DPT_CPH_COMPUTE] - none.phase_s[DPT_CPH_COMPUTE] - 10 * step) <
                  1e-12,
              "%g %g", none.phase_s[DPT_CPH_COMPUTE], with.phase_s[DPT_CPH_COMPUTE]);
    /* the epoch phase: once */
    cr_expect(fabs(with.phase_s[DPT_CPH_EPOCH] - none.phase_s[DPT_CPH_EPOCH] - step) < 1e-12,
              "%g %g", none.phase_s[DPT_CPH_EPOCH], with.phase_s[DPT_CPH_EPOCH]);
    /* below the cap: 960 bytes a step, 15 lines, 14 further ones */
    mach.handoff_lines = 1000;
    fake_counts(P, DPT_NEAR_L3, 6400, 10, plan, c); /* 640 + 320 bytes a step */
    for (int t = 0; t < P; t++)
        for (int p = 0; p < DPT_CPH_COUNT; p++) c[t].phase[p].barriers = 0;
    dpt_predict_counts(&mach, &cal, NULL, &m, &o, 1280, &eo, plan, P, c, &with);
    mach.handoff_ns = mach.handoff_line_ns = 0;
    dpt_predict_counts(&mach, &cal, NULL, &m, &o, 1280, &eo, plan, P, c, &none);
    cr_expect(fabs(with.phase_s[DPT_CPH_REDUCE] - none.phase_s[DPT_CPH_REDUCE] -
                   10e-9 * (150 + 14 * 10)) < 1e-12,
              "%g %g", none.phase_s[DPT_CPH_REDUCE], with.phase_s[DPT_CPH_REDUCE]);
}

/* The update's pushes into the other domains' copies: a contiguous slice
 * streamed through the caches, one calibrated add per float, whatever the
 * gather's copy of shuffled rows costs. */
Test(timemodel, pushes_cost_an_add_per_float)
{
    dpt_model m;
    dpt_calibration cal;
    dpt_engine_opts eo;
    dpt_optim_spec o;
    dpt_machine mach;
    genoa_fixture(&m, &cal, &eo, &o, &mach);
    const int P = 2;
    const long steps = 10;
    dpt_place plan[2];
    dpt_thread_counts c[2];
    fake_counts(P, DPT_NEAR_PACKAGE, 0, steps, plan, c);
    cr_assert_eq(m.n_params % P, 0);
    /* each thread writes its slice of w and v, the flag line, and 40,000
     * bytes of copies */
    const uint64_t wv = (uint64_t)steps * (m.n_params / P) * sizeof(float) * 2;
    for (int t = 0; t < P; t++)
        c[t].phase[DPT_CPH_UPDATE].written[DPT_NEAR_PACKAGE] = wv + 64 * steps + 40000;
    dpt_predict_row a, b, d;
    dpt_predict_counts(&mach, &cal, NULL, &m, &o, 1280, &eo, plan, P, c, &a);
    cal.copy_ns *= 100;
    dpt_predict_counts(&mach, &cal, NULL, &m, &o, 1280, &eo, plan, P, c, &b);
    cr_expect(fabs(a.phase_s[DPT_CPH_UPDATE] - b.phase_s[DPT_CPH_UPDATE]) < 1e-15, "%g %g",
              a.phase_s[DPT_CPH_UPDATE], b.phase_s[DPT_CPH_UPDATE]);
    cal.add_ns += 1;
    dpt_predict_counts(&mach, &cal, NULL, &m, &o, 1280, &eo, plan, P, c, &d);
    cr_expect(fabs(d.phase_s[DPT_CPH_UPDATE] - a.phase_s[DPT_CPH_UPDATE] - 1e-9 * 40000 / 4) <
                  1e-12,
              "%g %g", a.phase_s[DPT_CPH_UPDATE], d.phase_s[DPT_CPH_UPDATE]);
}

/* each thread copies its own slice into the epoch's snapshot (train.c's
 * epoch_begin), so the copy's price is a slice's, not all of w on one */
Test(timemodel, snapshot_is_each_threads_slice)
{
    dpt_model m;
    dpt_calibration cal;
    dpt_engine_opts eo;
    dpt_optim_spec o;
    dpt_machine mach;
    genoa_fixture(&m, &cal, &eo, &o, &mach);
    enum { P = 4 };
    dpt_place plan[P];
    dpt_thread_counts c[P];
    fake_counts(P, DPT_NEAR_PACKAGE, 0, 10, plan, c);
    dpt_predict_row a, b;
    dpt_predict_counts(&mach, &cal, NULL, &m, &o, 1280, &eo, plan, P, c, &a);
    cal.copy_ns += 1;
    dpt_predict_counts(&mach, &cal, NULL, &m, &o, 1280, &eo, plan, P, c, &b);
    /* w and v (momentum), thread 0's slice: the largest with the shuffle */
    const double slice = (double)(m.n_params / P) * sizeof(float) * 2;
    cr_expect(fabs(b.phase_s[DPT_CPH_EPOCH] - a.phase_s[DPT_CPH_EPOCH] - 1e-9 * slice) < 1e-12,
              "%g -> %g: a slice's copy is %g s", a.phase_s[DPT_CPH_EPOCH],
              b.phase_s[DPT_CPH_EPOCH], 1e-9 * slice);
}

Test(timemodel, calibration_interpolates)
{
    dpt_calibration cal;
    fake_cal(&cal);
    cr_expect_eq(dpt_calibration_grad(&cal, 0), 0);
    cr_expect(fabs(dpt_calibration_grad(&cal, 8) - 18e-6) < 1e-12);
    cr_expect(fabs(dpt_calibration_grad(&cal, 3) - 13e-6) < 1e-12); /* between 2 and 4 */
    /* beyond the last point: the last stretch's cost per row */
    cr_expect(fabs(dpt_calibration_grad(&cal, 512) - (266e-6 + 256e-6)) < 1e-12);
    double prev = 0;
    for (double r = 0.5; r < 1000; r *= 1.3) {
        double t = dpt_calibration_grad(&cal, r);
        cr_expect_geq(t, prev, "%g rows", r);
        prev = t;
    }
}

/* The layer split's table: a thread's share of a unit, interpolated in
 * log2 k and rows; one thread is the whole gradient; past the largest k the
 * share shrinks as 1/k; without a table, the gradient over k. */
static void fake_split(dpt_calibration *c)
{
    const double K[] = {2, 4, 8, 16}, R[] = {1, 2, 4, 8, 16};
    c->nsplit_k = 4;
    c->nsplit_rows = 5;
    for (int i = 0; i < 4; i++) {
        c->split_k[i] = K[i];
        for (int j = 0; j < 5; j++) {
            c->split_rows[j] = R[j];
            c->split_ns[i][j] = (6000 + 600 * R[j]) * 2 / K[i]; /* a little worse than 1/k */
        }
    }
}

Test(timemodel, split_calibration_interpolates)
{
    dpt_calibration cal;
    fake_cal(&cal);
    /* no table: the gradient over k */
    cr_expect(fabs(dpt_calibration_split(&cal, 4, 8) - 18e-6 / 4) < 1e-12);
    fake_split(&cal);
    cr_expect_eq(dpt_calibration_split(&cal, 4, 0), 0);
    cr_expect(fabs(dpt_calibration_split(&cal, 1, 8) - 18e-6) < 1e-12, "one thread");
    cr_expect(fabs(dpt_calibration_split(&cal, 4, 8) - 5400e-9) < 1e-12, "a point");
    cr_expect(fabs(dpt_calibration_split(&cal, 4, 3) - 0.5 * (3600e-9 + 4200e-9)) < 1e-12);
    /* between 4 and 8 threads, log2-linear: 6 threads */
    const double f = log2(6.0) - 2;
    cr_expect(fabs(dpt_calibration_split(&cal, 6, 8) - ((1 - f) * 5400e-9 + f * 2700e-9)) < 1e-12);
    /* past 16 threads: the 16-thread share times 16 / k */
    cr_expect(fabs(dpt_calibration_split(&cal, 64, 8) - 1350e-9 / 4) < 1e-12);
    /* past 16 rows: the gradient curve's growth */
    cr_expect(fabs(dpt_calibration_split(&cal, 2, 64) - 15600e-9 * 74e-6 / 26e-6) < 1e-12);
    for (int k = 2; k <= 64; k++) {
        double prev = 0;
        for (double r = 0.5; r < 300; r *= 1.4) {
            const double t = dpt_calibration_split(&cal, k, r);
            cr_expect_geq(t, prev, "%d threads, %g rows", k, r);
            cr_expect_leq(t, dpt_calibration_split(&cal, k - 1, r) + 1e-15, "%d threads", k);
            prev = t;
        }
    }
}

/* ---- machine files ---- */

static char *write_tmp(const char *text)
{
    static char path[256];
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/dpt-machine-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

TestSuite(machine);

Test(machine, presets_and_names)
{
    dpt_machine m;
    cr_expect_eq(dpt_machine_preset("genoa", &m), 0);
    cr_expect_str_eq(m.name, "genoa");
    cr_expect(strstr(m.topology, "pack:2"));
    cr_expect_eq(dpt_machine_preset("spr", &m), 0);
    cr_expect_eq(dpt_machine_preset("this", &m), 0);
    cr_expect_eq(dpt_machine_preset("epyc", &m), DPT_EINVAL);
    cr_expect(strstr(dpt_last_error(), "genoa, spr"), "%s", dpt_last_error());
    cr_expect_eq(dpt_machine_set(&m, "bw_l3", "12.5"), 0);
    cr_expect_eq(m.bw[DPT_NEAR_L3], 12.5);
    cr_expect_eq(dpt_machine_set(&m, "bw_l3", "-1"), DPT_EINVAL);
    cr_expect_eq(dpt_machine_set(&m, "bw_l3", "fast"), DPT_EINVAL);
    cr_expect_eq(dpt_machine_set(&m, "smt_speed", "1.5"), DPT_EINVAL);
    cr_expect_eq(dpt_machine_set(&m, "barrier_b", "0"), 0);
    cr_expect_eq(dpt_machine_set(&m, "bandwidth", "1"), DPT_EINVAL);
    cr_expect(strstr(dpt_last_error(), "bw_numa"), "%s", dpt_last_error());
}

Test(machine, file_overrides_and_round_trip)
{
    dpt_machine m;
    dpt_machine_preset("genoa", &m);
    char *p = write_tmp("# a server\n\n name = lab  \nlink = 99 # measured\ndram_node=123.5\n");
    cr_assert_eq(dpt_machine_load(&m, p), 0, "%s", dpt_last_error());
    unlink(p);
    cr_expect_str_eq(m.name, "lab");
    cr_expect_eq(m.link, 99);
    cr_expect_eq(m.dram_node, 123.5);
    cr_expect_eq(m.bw[DPT_NEAR_L3], 80); /* genoa's, untouched */
    /* print, read back: the same machine */
    char path[256];
    snprintf(path, sizeof path, "%s", write_tmp(""));
    FILE *f = fopen(path, "w");
    dpt_machine_print(&m, f);
    fclose(f);
    dpt_machine back;
    dpt_machine_preset("spr", &back);
    cr_assert_eq(dpt_machine_load(&back, path), 0, "%s", dpt_last_error());
    unlink(path);
    cr_expect_str_eq(back.name, "lab");
    for (int d = DPT_NEAR_CORE; d < DPT_NEAR_COUNT; d++)
        cr_expect(fabs(back.bw[d] - m.bw[d]) < 1e-9 * m.bw[d]);
    cr_expect_eq(back.barrier_pkg, m.barrier_pkg);
    /* JSON: the same keys */
    p = write_tmp("{\"name\": \"j\", \"bw_package\": 7, \"core_speed\": 1.25}\n");
    cr_assert_eq(dpt_machine_load(&m, p), 0, "%s", dpt_last_error());
    unlink(p);
    cr_expect_eq(m.bw[DPT_NEAR_PACKAGE], 7);
    cr_expect_eq(m.core_speed, 1.25);
}

/* Each bad file: DPT_EFORMAT and "FILE:LINE: ..." naming the problem. */
Test(machine, bad_lines_name_file_and_line)
{
    static const struct {
        const char *text;
        int line;
        const char *says;
    } bad[] = {
        {"link = 10\nlink 10\n", 2, "key = value"},
        {"# c\nlink = fast\n", 2, "positive number"},
        {"\n\n\nwarp = 9\n", 4, "unknown key 'warp'"},
        {"link =\n", 1, "without a value"},
        {"= 3\n", 1, "without a key"},
        {"smt_speed = 2\n", 1, "(0, 1]"},
        {"{\"link\": 1,\n \"dram_node\": }\n", 2, ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dpt_machine m;
        dpt_machine_preset("genoa", &m);
        char *p = write_tmp(bad[i].text);
        cr_expect_eq(dpt_machine_load(&m, p), DPT_EFORMAT, "case %zu", i);
        char want[300];
        snprintf(want, sizeof want, "%s:%d: ", p, bad[i].line);
        cr_expect(!strncmp(dpt_last_error(), want, strlen(want)), "case %zu: %s", i,
                  dpt_last_error());
        cr_expect(strstr(dpt_last_error(), bad[i].says), "case %zu: %s", i, dpt_last_error());
        cr_expect(!strchr(dpt_last_error(), '\n'), "case %zu: %s", i, dpt_last_error());
        unlink(p);
    }
    dpt_machine m;
    cr_expect_eq(dpt_machine_load(&m, "/nonexistent/machine"), DPT_EIO);
    cr_expect(strstr(dpt_last_error(), "/nonexistent/machine"));
}

/* ---- the calibration file ---- */

TestSuite(calibration);

Test(calibration, file_round_trip)
{
    dpt_calibration c, back;
    fake_cal(&c);
    c.grad_ns[3] = 1.0 / 3; /* a real that needs all its digits */
    fake_split(&c);
    c.split_ns[2][3] = 2.0 / 3;
    char path[256];
    snprintf(path, sizeof path, "%s", write_tmp(""));
    cr_assert_eq(dpt_calibration_write(&c, path), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_calibration_read(&back, path), 0, "%s", dpt_last_error());
    unlink(path);
    cr_expect_str_eq(back.model, c.model);
    cr_expect_str_eq(back.opt, c.opt);
    cr_expect_str_eq(back.isa, c.isa);
    cr_expect_eq(back.npoints, c.npoints);
    for (int i = 0; i < c.npoints; i++) {
        cr_expect_eq(back.rows[i], c.rows[i]);
        cr_expect_eq(back.grad_ns[i], c.grad_ns[i], "point %d", i);
    }
    cr_expect_eq(back.add_ns, c.add_ns);
    cr_expect_eq(back.update_ns, c.update_ns);
    cr_expect_eq(back.copy_ns, c.copy_ns);
    cr_expect_eq(back.shuffle_ns, c.shuffle_ns);
    cr_expect_eq(back.barrier_ns, c.barrier_ns);
    cr_expect_eq(back.barrier_threads, c.barrier_threads);
    cr_expect_eq(back.cross_gbs, c.cross_gbs);
    cr_expect_eq(back.read_gbs, c.read_gbs);
    cr_expect_eq(back.cores, c.cores);
    cr_expect_eq(back.cpu_share, c.cpu_share);
    cr_expect_eq(back.cpu_share1, c.cpu_share1);
    cr_expect_eq(back.grad_allcore, c.grad_allcore);
    cr_expect_eq(back.grad_allcore_rows, c.grad_allcore_rows);
    cr_expect_eq(back.handoff_ns, c.handoff_ns);
    cr_expect_eq(back.handoff_line_ns, c.handoff_line_ns);
    cr_expect_eq(back.handoff_lines, c.handoff_lines);
    cr_expect_eq(back.nsplit_k, c.nsplit_k);
    cr_expect_eq(back.nsplit_rows, c.nsplit_rows);
    cr_expect_eq(memcmp(back.split_k, c.split_k, sizeof c.split_k), 0);
    cr_expect_eq(memcmp(back.split_rows, c.split_rows, sizeof c.split_rows), 0);
    cr_expect_eq(memcmp(back.split_ns, c.split_ns, sizeof c.split_ns), 0);
    /* the machine: the handoff as measured; the CPU share's ratio times
     * the gradient's all-core speed */
    dpt_machine mach;
    dpt_machine_from_calibration(&back, &mach);
    cr_expect_eq(mach.handoff_ns, c.handoff_ns);
    cr_expect_eq(mach.handoff_line_ns, c.handoff_line_ns);
    cr_expect_eq(mach.handoff_lines, c.handoff_lines);
    cr_expect(fabs(mach.allcore_speed - 0.75 / 0.9 * 0.5) < 1e-12, "%g", mach.allcore_speed);
}

Test(calibration, bad_files)
{
    char *p = write_tmp("{\"schema\": \"dpt-calibration/1\", \"model\": 3}");
    dpt_calibration c;
    cr_expect_eq(dpt_calibration_read(&c, p), DPT_EFORMAT);
    cr_expect(strstr(dpt_last_error(), "'model'"), "%s", dpt_last_error());
    unlink(p);
    p = write_tmp("{\"schema\": \"dpt-bench/1\"}");
    cr_expect_eq(dpt_calibration_read(&c, p), DPT_EFORMAT);
    cr_expect(strstr(dpt_last_error(), "dpt-calibration/1"), "%s", dpt_last_error());
    unlink(p);
    cr_expect_eq(dpt_calibration_read(&c, "/nonexistent/cal.json"), DPT_EIO);
    /* a good file with a handoff no machine has, or half a handoff */
    dpt_calibration good;
    fake_cal(&good);
    char path[256];
    snprintf(path, sizeof path, "%s", write_tmp(""));
    good.handoff_lines = 1e12;
    cr_assert_eq(dpt_calibration_write(&good, path), 0, "%s", dpt_last_error());
    cr_expect_eq(dpt_calibration_read(&c, path), DPT_EFORMAT);
    cr_expect(strstr(dpt_last_error(), path) && strstr(dpt_last_error(), "handoff"), "%s",
              dpt_last_error());
    unlink(path);
    /* the layer split's table: thread counts from 2, ascending; a row each
     * (a good file with a bad table appended) */
    fake_cal(&good);
    snprintf(path, sizeof path, "%s", write_tmp(""));
    cr_assert_eq(dpt_calibration_write(&good, path), 0, "%s", dpt_last_error());
    char text[8192];
    FILE *f = fopen(path, "r");
    cr_assert(f);
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = 0;
    char *end = strrchr(text, '}');
    cr_assert(end);
    snprintf(end, sizeof text - (size_t)(end - text),
             ", \"split_threads\": [2, 4], \"split_rows\": [1, 2], \"split_ns\": [[1, 2]]}");
    unlink(path);
    p = write_tmp(text);
    cr_expect_eq(dpt_calibration_read(&c, p), DPT_EFORMAT);
    cr_expect(strstr(dpt_last_error(), "split_"), "%s", dpt_last_error());
    unlink(p);
}

/* A splittable model's calibration times a thread's share under the layer
 * split: every point positive, more rows no cheaper. */
Test(calibration, times_the_layer_split, .timeout = 120)
{
    dpt_model m;
    dpt_model_spec s = {.kind = DPT_MODEL_MLP,
                        .inputs = 8,
                        .n_hidden = 1,
                        .hidden = {64},
                        .classes = 3,
                        .act = DPT_ACTIVATION_TANH,
                        .loss = DPT_LOSS_CE,
                        .bias = 1};
    cr_assert_eq(dpt_model_init(&m, &s), 0);
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    const size_t rows = 64, ld = 16;
    float *X = calloc(rows * ld, sizeof *X), *y = calloc(rows, sizeof *y);
    for (size_t i = 0; i < rows * ld; i++) X[i] = (float)(i % 13) / 13;
    for (size_t i = 0; i < rows; i++) y[i] = (float)(i % 3);
    dpt_calibration c;
    cr_assert_eq(
        dpt_calibrate(&m, &o, X, ld, y, rows, rows, 3, DPT_CAL_QUICK | DPT_CAL_NO_DRAM, &c), 0,
        "%s", dpt_last_error());
    free(X);
    free(y);
    cr_assert_eq(c.nsplit_k, DPT_CAL_SPLIT_K);
    cr_assert_eq(c.nsplit_rows, DPT_CAL_SPLIT_ROWS);
    for (int i = 0; i < c.nsplit_k; i++)
        for (int j = 0; j < c.nsplit_rows; j++) {
            cr_expect_gt(c.split_ns[i][j], 0, "%g threads, %g rows", c.split_k[i], c.split_rows[j]);
            if (j) cr_expect_geq(c.split_ns[i][j], c.split_ns[i][j - 1]);
        }
}

/* A real calibration of a tiny model: every figure positive, the curve
 * monotone, and the machine made from it usable. */
Test(calibration, measures_this_machine, .timeout = 60)
{
    dpt_model m;
    dpt_model_spec s = {.kind = DPT_MODEL_MLP,
                        .inputs = 8,
                        .n_hidden = 1,
                        .hidden = {16},
                        .act = DPT_ACTIVATION_RELU,
                        .loss = DPT_LOSS_MSE,
                        .bias = 1};
    cr_assert_eq(dpt_model_init(&m, &s), 0);
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    const size_t rows = 64, ld = 16;
    float *X = calloc(rows * ld, sizeof *X), *y = calloc(rows, sizeof *y);
    for (size_t i = 0; i < rows * ld; i++) X[i] = (float)(i % 13) / 13;
    dpt_calibration c;
    cr_assert_eq(dpt_calibrate(&m, &o, X, ld, y, rows, rows, 3, DPT_CAL_QUICK, &c), 0, "%s",
                 dpt_last_error());
    free(X);
    free(y);
    cr_expect_eq(c.rows[0], 1);
    cr_expect_eq(c.rows[c.npoints - 1], 64);
    for (int i = 0; i < c.npoints; i++) cr_expect_gt(c.grad_ns[i], 0);
    for (int i = 1; i < c.npoints; i++) cr_expect_geq(c.grad_ns[i], c.grad_ns[i - 1]);
    cr_expect_gt(c.add_ns, 0);
    cr_expect_gt(c.update_ns, 0);
    cr_expect_gt(c.copy_ns, 0);
    cr_expect_str_eq(c.model, "mlp 8-16-1 relu mse");
    dpt_machine mach;
    dpt_machine_from_calibration(&c, &mach);
    cr_expect_str_eq(mach.name, "this");
    cr_expect_gt(mach.barrier_a, 0);
    cr_expect(c.cpu_share > 0 && c.cpu_share <= 1, "%g", c.cpu_share);
    cr_expect_eq(mach.core_speed, c.cpu_share1);
    cr_expect(mach.allcore_speed > 0 && mach.allcore_speed <= 1, "%g", mach.allcore_speed);
    /* measured where there are two cores, 0 (not measured) else */
    cr_expect(c.grad_allcore >= 0 && c.grad_allcore <= 1, "%g", c.grad_allcore);
    cr_expect_geq(c.handoff_ns, 0);
    cr_expect_geq(c.handoff_line_ns, 0);
    cr_expect_eq(mach.handoff_ns, c.handoff_ns);
}

/* Streamed: the gradient calls walk through all n rows (the engine reading
 * in place), which the calibration and its file say; fewer rows than the
 * largest call are refused. */
Test(calibration, streams_through_the_rows, .timeout = 60)
{
    dpt_model m;
    dpt_model_spec s = {.kind = DPT_MODEL_LINEAR, .inputs = 8, .loss = DPT_LOSS_MSE, .bias = 1};
    cr_assert_eq(dpt_model_init(&m, &s), 0);
    dpt_optim_spec o;
    dpt_optim_defaults(&o);
    const size_t n = 4096, ld = 16;
    float *X = calloc(n * ld, sizeof *X), *y = calloc(n, sizeof *y);
    for (size_t i = 0; i < n * ld; i++) X[i] = (float)(i % 11) / 11;
    dpt_calibration c;
    cr_expect_eq(dpt_calibrate(&m, &o, X, ld, y, 32, 64, 3, DPT_CAL_QUICK, &c), DPT_EINVAL);
    cr_assert_eq(dpt_calibrate(&m, &o, X, ld, y, n, 64, 3, DPT_CAL_QUICK | DPT_CAL_STREAM, &c), 0,
                 "%s", dpt_last_error());
    cr_expect_eq(c.streamed, 1);
    cr_expect_eq(c.rows[c.npoints - 1], 64);
    for (int i = 0; i < c.npoints; i++) cr_expect_gt(c.grad_ns[i], 0);
    char path[] = "/tmp/dpt-cal-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(dpt_calibration_write(&c, path), 0);
    dpt_calibration back;
    cr_assert_eq(dpt_calibration_read(&back, path), 0, "%s", dpt_last_error());
    cr_expect_eq(back.streamed, 1);
    unlink(path);
    cr_assert_eq(dpt_calibrate(&m, &o, X, ld, y, n, 64, 3, DPT_CAL_QUICK, &c), 0);
    cr_expect_eq(c.streamed, 0);
    free(X);
    free(y);
}

/* ---- warnings ---- */

TestSuite(warnings);

static int warn(const dpt_model *m, size_t batch, int threads, int leaves, int adaptive,
                char (*w)[256])
{
    dpt_engine_opts eo;
    dpt_optim_spec o;
    opts_of(&eo, &o, batch);
    eo.threads = threads;
    eo.leaves = leaves;
    eo.balance = adaptive ? DPT_BALANCE_ADAPTIVE : DPT_BALANCE_STATIC;
    return dpt_predict_warnings(m, &o, 60000, &eo, w, 4);
}

Test(warnings, idle_and_nearly_idle_threads)
{
    dpt_model m;
    mlp(&m);
    char w[4][256];
    const int tile = dpt_predict_row_tile(NULL);
    cr_expect_eq(dpt_predict_row_tile("avx2"), 6);
    cr_expect_eq(dpt_predict_row_tile("avx512"), 12);
    cr_expect_eq(dpt_predict_row_tile("scalar"), 1);
    /* plenty of rows: nothing to say */
    cr_expect_eq(warn(&m, 256, 2, 0, 0, w), 0, "%s", w[0]);
    cr_expect_eq(warn(&m, 256, 1, 0, 0, w), 0);
    /* 256 over 192 threads: below any tile but the scalar one's */
    if (tile > 1) {
        cr_expect_eq(warn(&m, 256, 192, 0, 0, w), 1);
        cr_expect(strstr(w[0], "tile"), "%s", w[0]);
    }
    /* more threads than rows */
    cr_expect_eq(warn(&m, 16, 32, 0, 0, w), 1);
    cr_expect(strstr(w[0], "16 of them compute no row"), "%s", w[0]);
    /* 16 leaves for 32 threads */
    cr_expect_geq(warn(&m, 256, 32, 16, 0, w), 1);
    cr_expect(strstr(w[0], "16 leaves") && strstr(w[0], "idle"), "%s", w[0]);
    /* adaptive: cuts of 8 rows, a batch of 64 over 16 threads */
    int k = warn(&m, 64, 16, 0, 1, w);
    cr_expect_geq(k, 1);
    cr_expect(strstr(w[0], "adaptive") && strstr(w[0], "without rows"), "%s", w[0]);
    for (int i = 0; i < k; i++) cr_expect(!strchr(w[i], '\n'));
}
