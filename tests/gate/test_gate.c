/* The gate on a noisy runner through the library: /proc/stat parsed from
 * fixture text, the disturbed rule on hand-made readings, the telemetry's
 * JSON round trip (and files without it), and --drop-disturbed on
 * synthetic reports of known shift: pairs dropped, intervals, abstaining. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dpt/compare.h"
#include "dpt/error.h"
#include "dpt/report.h"
#include "dpt/telemetry.h"

TestSuite(gate, .timeout = 30);

/* ---- /proc/stat ---- */

static const char STAT[] = "cpu  100 5 50 800 10 1 2 20 7 0\n"
                           "cpu0 50 2 25 400 5 1 1 10 7 0\n"
                           "cpu1 50 3 25 400 5 0 1 10 0 0\n"
                           "intr 12345 0 0\n"
                           "ctxt 999\n"
                           "cpu-like junk line\n";

Test(gate, parses_proc_stat)
{
    dpt_cpu_times t;
    cr_assert_eq(dpt_telemetry_parse_stat(STAT, &t), 0, "%s", dpt_last_error());
    /* user nice system irq softirq steal; guest is inside user already */
    cr_expect_float_eq(t.busy, 100 + 5 + 50 + 1 + 2 + 20, 1e-9);
    cr_expect_float_eq(t.idle, 800 + 10, 1e-9);
    cr_expect_float_eq(t.steal, 20, 1e-9);
    cr_expect_eq(t.cpus, 2);
}

Test(gate, parses_old_four_field_stat)
{
    dpt_cpu_times t;
    cr_assert_eq(dpt_telemetry_parse_stat("cpu 1 2 3 4\ncpu0 1 2 3 4\n", &t), 0);
    cr_expect_float_eq(t.busy, 6, 1e-9);
    cr_expect_float_eq(t.idle, 4, 1e-9);
    cr_expect_float_eq(t.steal, 0, 1e-9);
    cr_expect_eq(t.cpus, 1);
}

Test(gate, refuses_stat_without_cpu_line)
{
    dpt_cpu_times t;
    cr_expect_eq(dpt_telemetry_parse_stat("intr 1 2\nctxt 3\n", &t), DPT_EFORMAT);
    cr_expect_eq(dpt_telemetry_parse_stat("cpu 1 2\n", &t), DPT_EFORMAT);
    cr_expect_eq(dpt_telemetry_parse_stat("", &t), DPT_EFORMAT);
}

/* ---- the disturbed rule ---- */

static dpt_telemetry clean(int cpus, int threads)
{
    dpt_telemetry t;
    dpt_telemetry_init(&t);
    t.seconds = 1;
    t.cpus = cpus;
    t.threads = threads;
    t.steal = 0;
    t.others_busy = 0.1;
    t.run_wait = 0.01;
    t.invol_switches = 10;
    t.migrations = 1;
    t.load_average = 0.5;
    t.clock_ratio = 1.0;
    return t;
}

Test(gate, disturbed_rule)
{
    dpt_telemetry t = clean(2, 2);
    dpt_telemetry_judge(&t);
    cr_expect_eq(t.disturbed, 0);
    cr_expect_eq(t.reasons, 0);

    /* one other CPU's worth of work: fits beside 1 thread, not beside 2 */
    t = clean(2, 1);
    t.others_busy = 1.0;
    dpt_telemetry_judge(&t);
    cr_expect_eq(t.disturbed, 0);
    t = clean(2, 2);
    t.others_busy = 1.0;
    dpt_telemetry_judge(&t);
    cr_expect_eq(t.reasons, DPT_DISTURB_BY_OTHERS);
    t = clean(2, 2);
    t.others_busy = 0.2; /* under DPT_DISTURB_OTHERS of a CPU */
    dpt_telemetry_judge(&t);
    cr_expect_eq(t.disturbed, 0);

    dpt_telemetry u;
    const struct {
        double *field, value;
        int reason;
    } one[6] = {{&u.steal, 0.06, DPT_DISTURB_BY_STEAL},
                {&u.migrations, 51, DPT_DISTURB_BY_MIGRATIONS},
                /* over 1 s, 100 a second and 2 a thread */
                {&u.invol_switches, 105, DPT_DISTURB_BY_SWITCHES},
                {&u.clock_ratio, 0.85, DPT_DISTURB_BY_CLOCK},
                /* 0.25 and a tick on each of 2 CPUs over 1 s */
                {&u.others_busy, 0.28, DPT_DISTURB_BY_OTHERS},
                {&u.run_wait, 0.06, DPT_DISTURB_BY_WAIT}};
    for (int i = 0; i < 6; i++) {
        u = clean(2, 2);
        *one[i].field = one[i].value;
        dpt_telemetry_judge(&u);
        cr_expect_eq(u.disturbed, 1, "case %d", i);
        cr_expect_eq(u.reasons, one[i].reason, "case %d", i);
    }
    /* just under each line over 1 s */
    u = clean(2, 2);
    u.invol_switches = 103;
    u.others_busy = 0.26;
    u.run_wait = 0.05;
    dpt_telemetry_judge(&u);
    cr_expect_eq(u.disturbed, 0, "reasons %d", u.reasons);

    /* a repetition of 20 ms: 4 switches of its own and one /proc/stat tick
     * too many are no sharing; 12 switches or a tenth of the time waiting
     * for a CPU are */
    u = clean(2, 2);
    u.seconds = 0.02;
    u.invol_switches = 4 / 0.02;
    u.others_busy = 0.01 / 0.02;
    dpt_telemetry_judge(&u);
    cr_expect_eq(u.disturbed, 0, "reasons %d", u.reasons);
    u.invol_switches = 12 / 0.02;
    dpt_telemetry_judge(&u);
    cr_expect_eq(u.reasons, DPT_DISTURB_BY_SWITCHES);
    u.invol_switches = 4 / 0.02;
    u.run_wait = 0.1;
    dpt_telemetry_judge(&u);
    cr_expect_eq(u.reasons, DPT_DISTURB_BY_WAIT);

    /* readings the machine does not give take no part */
    dpt_telemetry_init(&u);
    dpt_telemetry_judge(&u);
    cr_expect_eq(u.disturbed, 0);
}

/* ---- the probe on a real contention ---- */

static atomic_int spin_go, spin_stop;

static void *spin(void *cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(*(int *)cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    while (!atomic_load(&spin_go)) sched_yield();
    volatile double x = 1;
    while (!atomic_load(&spin_stop)) x = x * 1.0000001 + 1e-9;
    return NULL;
}

/* Two threads pinned to one CPU for 300 ms: each gets about half of it,
 * so the probe reads about half their time waiting, and says disturbed. */
Test(gate, probe_sees_threads_waiting)
{
    if (access("/proc/self/schedstat", R_OK))
        cr_skip_test("no /proc/self/schedstat (a kernel without CONFIG_SCHED_INFO)");
    cpu_set_t mine;
    cr_assert_eq(sched_getaffinity(0, sizeof mine, &mine), 0);
    int cpu = 0;
    while (!CPU_ISSET(cpu, &mine)) cpu++;
    pthread_t th[2];
    for (int i = 0; i < 2; i++) cr_assert_eq(pthread_create(&th[i], NULL, spin, &cpu), 0);
    usleep(50 * 1000); /* both pinned and waiting */
    dpt_telemetry_probe *p;
    cr_assert_eq(dpt_telemetry_open(&p), 0);
    dpt_telemetry t;
    dpt_telemetry_start(p);
    atomic_store(&spin_go, 1);
    usleep(300 * 1000);
    dpt_telemetry_stop(p, 2, &t);
    atomic_store(&spin_stop, 1);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    dpt_telemetry_close(p);
    /* 0.5 when the two share the CPU evenly; more when others want it too */
    cr_expect(t.run_wait > 0.3 && t.run_wait < 1.0, "run_wait %g", t.run_wait);
    cr_expect(t.reasons & DPT_DISTURB_BY_WAIT, "reasons %d", t.reasons);
}

/* ---- reports ---- */

/* A row of n samples x[i] * scale, its telemetry disturbed where dist[i]
 * (dist NULL: no telemetry). */
static void add_row(dpt_bench_report *r, int threads, const double *x, int n, double scale,
                    const int *dist)
{
    double s[32];
    for (int i = 0; i < n; i++) s[i] = x[i] * scale;
    dpt_bench_result *row =
        dpt_bench_report_add(r, "mlp-seed", threads, "compact", "avx2", 0, s, n);
    cr_assert_not_null(row);
    if (!dist) return;
    row->telemetry = calloc((size_t)n, sizeof *row->telemetry);
    for (int i = 0; i < n; i++) {
        row->telemetry[i] = clean(2, threads);
        if (dist[i]) {
            row->telemetry[i].steal = 0.5;
            dpt_telemetry_judge(&row->telemetry[i]);
        }
    }
}

static const double BASE8[8] = {1.00, 1.02, 0.99, 1.01, 1.03, 0.98, 1.00, 1.01};

Test(gate, telemetry_round_trips_and_is_optional)
{
    dpt_bench_report r, back;
    dpt_bench_report_init(&r);
    const int dist[8] = {0, 1, 0, 0, 0, 0, 1, 0};
    add_row(&r, 2, BASE8, 8, 1, dist);
    add_row(&r, 1, BASE8, 8, 2, NULL);
    cr_assert_eq(dpt_bench_report_derive(&r), 0);
    char path[] = "/tmp/dpt-test-gate-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    cr_assert_eq(dpt_bench_report_write_json(&r, path), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_bench_report_read_json(&back, path), 0, "%s", dpt_last_error());
    cr_assert_not_null(back.results[0].telemetry);
    cr_expect_null(back.results[1].telemetry, "a row without telemetry reads without");
    for (int i = 0; i < 8; i++) {
        const dpt_telemetry *t = &back.results[0].telemetry[i];
        cr_expect_eq(t->disturbed, dist[i]);
        cr_expect_eq(t->cpus, 2);
        cr_expect_eq(t->threads, 2);
        cr_expect_float_eq(t->steal, dist[i] ? 0.5 : 0, 1e-12);
        cr_expect_float_eq(t->others_busy, 0.1, 1e-12);
        cr_expect_float_eq(t->run_wait, 0.01, 1e-12);
        cr_expect(isnan(t->clock_ratio) == 0);
    }
    /* the table marks the disturbed repetitions */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    dpt_bench_report_print_table(&back, f);
    fclose(f);
    cr_expect(strstr(text, "disturbed"), "%s", text);
    cr_expect(strstr(text, "2/8 -*----*-"), "%s", text);
    free(text);
    /* and the warnings count them */
    char w[8][DPT_WARNING_LEN];
    size_t nw = dpt_bench_report_warnings(&back, w, 8);
    int seen = 0;
    for (size_t i = 0; i < nw && i < 8; i++) seen |= strstr(w[i], "2 of 8 repetitions") != NULL;
    cr_expect(seen, "no warning counts the disturbed repetitions");
    dpt_bench_report_free(&back);
    dpt_bench_report_free(&r);
    unlink(path);
}

/* Paired reports of one row: new_i = base_i * ratio[i], disturbed where
 * dist_b or dist_n. */
static void paired(dpt_bench_report *b, dpt_bench_report *n, const double *ratio, int np,
                   const int *dist_b, const int *dist_n)
{
    double x[32];
    for (int i = 0; i < np; i++) x[i] = BASE8[i % 8] * ratio[i];
    dpt_bench_report_init(b);
    dpt_bench_report_init(n);
    add_row(b, 1, BASE8, np, 1, dist_b);
    add_row(n, 1, x, np, 1, dist_n);
}

static dpt_compare_opts drop_opts(void)
{
    dpt_compare_opts o;
    dpt_compare_opts_defaults(&o);
    o.drop_disturbed = 1;
    return o;
}

Test(gate, drop_disturbed_pairs_paired)
{
    /* 8 pairs 10% slower, except two disturbed ones where the new run was
     * held up (x2); either side's flag drops the pair */
    const double ratio[8] = {1.10, 2.0, 1.10, 1.10, 1.10, 1.10, 2.0, 1.10};
    const int db[8] = {0, 1, 0, 0, 0, 0, 0, 0}, dn[8] = {0, 0, 0, 0, 0, 0, 1, 0};
    dpt_bench_report b, n;
    paired(&b, &n, ratio, 8, db, dn);
    dpt_compare_opts o = drop_opts();
    dpt_compare_result r;
    cr_assert_eq(dpt_compare_paired(&b, &n, &o, &r), 0, "%s", dpt_last_error());
    cr_assert_eq(r.nrows, 1);
    const dpt_compare_row *p = &r.rows[0];
    cr_expect_eq(p->dropped, 2);
    cr_expect_eq(p->abstained, 0);
    cr_expect_eq(p->base_reps, 6);
    /* six clean pairs, each exactly +10%: estimate and interval are +10% */
    cr_expect_float_eq(p->estimate, 0.10, 1e-9);
    cr_expect_float_eq(p->interval_lo, 0.10, 1e-9);
    cr_expect_float_eq(p->interval_hi, 0.10, 1e-9);
    cr_expect_eq(p->verdict, DPT_VERDICT_SLOWER);
    cr_expect_eq(r.exit_status, 1);
    cr_expect_eq(r.drop_disturbed, 1);
    dpt_compare_result_free(&r);
    /* without dropping, the held-up pairs are in the estimate */
    dpt_compare_opts_defaults(&o);
    cr_assert_eq(dpt_compare_paired(&b, &n, &o, &r), 0);
    cr_expect_eq(r.rows[0].dropped, 0);
    cr_expect_gt(r.rows[0].interval_hi, 0.10 + 1e-6);
    dpt_compare_result_free(&r);
    dpt_bench_report_free(&b);
    dpt_bench_report_free(&n);
}

Test(gate, too_few_clean_pairs_abstain_instead_of_failing)
{
    /* 8 pairs 50% slower: a failure, unless 3 are disturbed and only 5
     * clean pairs remain (6 needed): then the gate abstains, exit 3 */
    const double ratio[8] = {1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5};
    const int db[8] = {1, 0, 0, 1, 0, 0, 0, 0}, dn[8] = {0, 0, 0, 0, 0, 1, 0, 0};
    dpt_bench_report b, n;
    paired(&b, &n, ratio, 8, db, dn);
    dpt_compare_opts o;
    dpt_compare_opts_defaults(&o);
    dpt_compare_result r;
    cr_assert_eq(dpt_compare_paired(&b, &n, &o, &r), 0);
    cr_expect_eq(r.exit_status, 1, "without dropping it fails");
    dpt_compare_result_free(&r);
    o = drop_opts();
    cr_assert_eq(dpt_compare_paired(&b, &n, &o, &r), 0, "%s", dpt_last_error());
    cr_expect_eq(r.rows[0].abstained, 1);
    cr_expect_eq(r.rows[0].verdict, DPT_VERDICT_UNDECIDED);
    cr_expect_eq(r.abstained, 1);
    cr_expect_eq(r.outcome, DPT_COMPARE_CANNOT_DECIDE);
    cr_expect_eq(r.exit_status, 3);
    int said = 0;
    for (size_t i = 0; i < r.nmessages; i++) said |= strstr(r.messages[i], "5 of 8 pairs") != NULL;
    cr_expect(said, "no message says how many pairs were clean");
    dpt_compare_result_free(&r);
    dpt_bench_report_free(&b);
    dpt_bench_report_free(&n);
}

Test(gate, a_pair_goes_from_every_row)
{
    /* two rows (1 and 2 threads) measured in the same runs: a disturbed
     * sample of the 2-thread row drops that pair from the 1-thread row too,
     * so the speedup curve's pairs stay aligned */
    dpt_bench_report b, n;
    dpt_bench_report_init(&b);
    dpt_bench_report_init(&n);
    const int d2[8] = {0, 0, 1, 0, 0, 0, 0, 0};
    add_row(&b, 1, BASE8, 8, 2, NULL);
    add_row(&b, 2, BASE8, 8, 1, d2);
    add_row(&n, 1, BASE8, 8, 2, NULL);
    add_row(&n, 2, BASE8, 8, 1, NULL);
    dpt_compare_opts o = drop_opts();
    dpt_compare_result r;
    cr_assert_eq(dpt_compare_paired(&b, &n, &o, &r), 0, "%s", dpt_last_error());
    cr_assert_eq(r.nrows, 2);
    for (int k = 0; k < 2; k++) {
        cr_expect_eq(r.rows[k].dropped, 1);
        cr_expect_eq(r.rows[k].base_reps, 7);
        cr_expect_eq(r.rows[k].verdict, DPT_VERDICT_SAME);
    }
    cr_expect_eq(r.exit_status, 0);
    dpt_compare_result_free(&r);
    dpt_bench_report_free(&b);
    dpt_bench_report_free(&n);
}

Test(gate, stored_mode_drops_and_abstains_per_row)
{
    /* stored reports: the 1-thread row loses 2 of 8 base repetitions and
     * keeps 6 (judged); the 2-thread row keeps 4 of 6 new ones (abstains) */
    dpt_bench_report b, n;
    dpt_bench_report_init(&b);
    dpt_bench_report_init(&n);
    const int d1[8] = {1, 0, 0, 0, 1, 0, 0, 0}, d2[6] = {0, 1, 0, 1, 0, 0};
    add_row(&b, 1, BASE8, 8, 2, d1);
    add_row(&b, 2, BASE8, 6, 1, NULL);
    add_row(&n, 1, BASE8, 8, 2, NULL);
    add_row(&n, 2, BASE8, 6, 3, d2); /* 3x slower: a failure if judged */
    dpt_compare_opts o;
    dpt_compare_opts_defaults(&o);
    dpt_compare_result r;
    cr_assert_eq(dpt_compare_reports(&b, &n, &o, &r), 0);
    cr_expect_eq(r.exit_status, 1, "without dropping the 2-thread row fails");
    dpt_compare_result_free(&r);
    o = drop_opts();
    cr_assert_eq(dpt_compare_reports(&b, &n, &o, &r), 0, "%s", dpt_last_error());
    cr_assert_eq(r.nrows, 2);
    cr_expect_eq(r.rows[0].dropped, 2);
    cr_expect_eq(r.rows[0].base_reps, 6);
    cr_expect_eq(r.rows[0].abstained, 0);
    cr_expect_eq(r.rows[0].verdict, DPT_VERDICT_SAME);
    cr_expect_eq(r.rows[1].abstained, 1);
    cr_expect_eq(r.rows[1].verdict, DPT_VERDICT_UNDECIDED);
    cr_expect_eq(r.exit_status, 3);
    dpt_compare_result_free(&r);
    dpt_bench_report_free(&b);
    dpt_bench_report_free(&n);
}
