/* dpt compare --run: two dpt executables benchmarked in alternation, ABBA
 * (pair i runs A then B when i is even, B then A when odd), so that drift
 * of a shared runner hits both builds alike. Lockstep pairing (the
 * default): each pair starts both builds' bench with --lockstep and has
 * them take turns round by round (cli/lockstep.h); process pairing (an
 * older dpt): each side of a pair is a whole bench process. Each build's
 * pairs are gathered into one report whose sample i is pair i, for
 * dpt_compare_paired. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/compare_run.h"
#include "dpt/error.h"
#include "dpt/stats.h"

static const char *const CMD = "compare";

/* Copy the file at path to stderr (what a failed run said). */
static void show(const char *path)
{
    FILE *f = fopen(path, "r");
    char buf[4096];
    size_t n;
    if (!f) return;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stderr);
    fclose(f);
}

/* Start `exe bench <flags> <side's extra> --reps R --json path --quiet
 * [more]` (more: NULL-terminated), its stdout discarded (the reports are
 * read back from path) and its stderr kept in errpath, shown only when it
 * fails: its warnings are in the report, and the gate repeats them once
 * instead of once per run. lockfd >= 0 becomes the child's descriptor 3.
 * The child's pid, or -1 after printing why. */
static pid_t spawn_bench(const cli_compare_side *side, char *const *flags, int nflags, int reps,
                         const char *path, const char *errpath, const char *const *more, int lockfd)
{
    int nmore = 0;
    while (more && more[nmore]) nmore++;
    const char **argv =
        calloc((size_t)nflags + (size_t)side->nextra + (size_t)nmore + 8, sizeof *argv);
    if (!argv) return cli_fail(CMD, "out of memory"), -1;
    char rs[16];
    snprintf(rs, sizeof rs, "%d", reps > 1 ? reps : 1);
    int k = 0;
    argv[k++] = side->exe;
    argv[k++] = "bench";
    for (int i = 0; i < nflags; i++) argv[k++] = flags[i];
    for (int i = 0; i < side->nextra; i++) argv[k++] = side->extra[i];
    argv[k++] = "--reps";
    argv[k++] = rs;
    argv[k++] = "--json";
    argv[k++] = path;
    argv[k++] = "--quiet";
    for (int i = 0; i < nmore; i++) argv[k++] = more[i];
    argv[k] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        free(argv);
        return cli_fail(CMD, "cannot start %s: %s", side->exe, strerror(errno)), -1;
    }
    if (pid == 0) {
        int dn = open("/dev/null", O_WRONLY);
        int er = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (dn >= 0) dup2(dn, 1);
        if (er >= 0) dup2(er, 2);
        if (lockfd >= 0) dup2(lockfd, 3); /* the copy on 3 stays open across exec */
        execv(side->exe, (char *const *)argv);
        fprintf(stderr, "dpt %s: cannot run %s: %s\n", CMD, side->exe, strerror(errno));
        _exit(127);
    }
    free(argv);
    return pid;
}

/* Wait for a bench child into *ws; 0 or non-zero after printing why. */
static int reap_bench(const char *exe, pid_t pid, int *ws)
{
    while (waitpid(pid, ws, 0) < 0)
        if (errno != EINTR) return cli_fail(CMD, "waiting for %s: %s", exe, strerror(errno));
    return 0;
}

/* A reaped bench child's wait status: 0 when it exited 0, else non-zero
 * after showing what it said (errpath). */
static int bench_status(const char *exe, int ws, const char *errpath)
{
    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0) return 0;
    show(errpath);
    if (WIFEXITED(ws))
        return cli_usage_error(CMD, "%s bench exited with status %d", exe, WEXITSTATUS(ws));
    return cli_usage_error(CMD, "%s bench was killed by signal %d", exe, WTERMSIG(ws));
}

/* One whole bench run of a side (--pairing process). */
static int run_bench(const cli_compare_side *side, char *const *flags, int nflags, const char *path,
                     const char *errpath)
{
    const char *exe = side->exe;
    int ws;
    pid_t pid = spawn_bench(side, flags, nflags, side->reps, path, errpath, NULL, -1);
    if (pid < 0) return DPT_EXIT_USAGE;
    return reap_bench(exe, pid, &ws) ? DPT_EXIT_USAGE : bench_status(exe, ws, errpath);
}

static int same_row(const dpt_bench_result *a, const dpt_bench_result *b)
{
    return a->ranks == b->ranks && a->threads == b->threads && a->batch == b->batch &&
           !strcmp(a->workload, b->workload) && !strcmp(a->pin, b->pin) && !strcmp(a->isa, b->isa);
}

/* Row i's kept sample is flagged disturbed. */
static int row_disturbed(const dpt_bench_result *x)
{
    return x->telemetry && x->reps >= 1 && x->telemetry[0].disturbed;
}

/* Each row of a run down to its fastest repetition and that one's
 * telemetry, preferring undisturbed ones: interference only ever adds
 * time, so the fastest clean repetition is the one least disturbed. */
static void keep_fastest(dpt_bench_report *run)
{
    for (size_t i = 0; i < run->nresults; i++) {
        dpt_bench_result *x = &run->results[i];
        if (x->reps < 1) continue;
        int best = -1;
        for (int pass = 0; pass < 2 && best < 0; pass++)
            for (int k = 0; k < x->reps; k++) {
                if (!pass && x->telemetry && x->telemetry[k].disturbed) continue;
                if (best < 0 || x->samples[k] < x->samples[best]) best = k;
            }
        x->samples[0] = x->samples[best];
        if (x->telemetry) x->telemetry[0] = x->telemetry[best];
        x->reps = 1;
    }
}

/* Rows of run still disturbed that a retry's rows (same order: the same
 * flags) replace: a clean sample over a disturbed one. How many remain. */
static int merge_retry(dpt_bench_report *run, const dpt_bench_report *again)
{
    int left = 0;
    for (size_t i = 0; i < run->nresults; i++) {
        dpt_bench_result *x = &run->results[i];
        if (!row_disturbed(x)) continue;
        if (i < again->nresults && again->results[i].reps >= 1 &&
            !row_disturbed(&again->results[i])) {
            x->samples[0] = again->results[i].samples[0];
            x->telemetry[0] = again->results[i].telemetry[0];
        } else {
            left++;
        }
    }
    return left;
}

static int disturbed_rows(const dpt_bench_report *run)
{
    int n = 0;
    for (size_t i = 0; i < run->nresults; i++) n += row_disturbed(&run->results[i]);
    return n;
}

/* Append x's first telemetry reading to a's (which has a->reps); a run
 * without telemetry (an older dpt) leaves the row without. 0: no memory. */
static int append_telemetry(dpt_bench_result *a, const dpt_bench_result *x)
{
    if (!x->telemetry) {
        free(a->telemetry);
        a->telemetry = NULL;
        return 1;
    }
    dpt_telemetry *grown = realloc(a->telemetry, (size_t)(a->reps + 1) * sizeof *grown);
    if (!grown) return 0;
    a->telemetry = grown;
    a->telemetry[a->reps] = x->telemetry[0];
    return 1;
}

/* Append the one sample of each row of run to the matching row of acc
 * (the first run becomes acc). */
static int gather(dpt_bench_report *acc, dpt_bench_report *run, const char *exe, int pair)
{
    if (pair == 0) {
        *acc = *run;
        dpt_bench_report_init(run);
        return 0;
    }
    if (run->nresults != acc->nresults)
        return cli_usage_error(CMD, "%s gave %zu results in pair %d, %zu in pair 0", exe,
                               run->nresults, pair, acc->nresults);
    for (size_t i = 0; i < acc->nresults; i++) {
        dpt_bench_result *a = &acc->results[i];
        const dpt_bench_result *x = NULL;
        for (size_t j = 0; j < run->nresults && !x; j++)
            if (same_row(a, &run->results[j])) x = &run->results[j];
        if (!x || x->reps < 1)
            return cli_usage_error(CMD,
                                   "%s: results[%zu] of pair 0 (%s, %d threads) is not in "
                                   "pair %d",
                                   exe, i, a->workload, a->threads, pair);
        double *grown = realloc(a->samples, (size_t)(a->reps + 1) * sizeof *grown);
        if (!grown) return cli_fail(CMD, "out of memory");
        a->samples = grown;
        if (a->telemetry && !append_telemetry(a, x)) return cli_fail(CMD, "out of memory");
        a->samples[a->reps++] = x->samples[0];
    }
    return 0;
}

int cli_compare_undecided(const dpt_bench_report *base, const dpt_bench_report *cur, void *ud)
{
    dpt_compare_result r;
    if (dpt_compare_paired(base, cur, ud, &r)) return 0; /* the final judgement says why */
    int undecided = r.outcome == DPT_COMPARE_CANNOT_DECIDE;
    dpt_compare_result_free(&r);
    return undecided;
}

/* One run of a side into one (the fastest clean repetition per row); rows
 * whose every repetition was disturbed are run again, up to the side's
 * retries times. */
static int run_side(const cli_compare_side *side, char *const *flags, int nflags, const char *path,
                    const char *errpath, dpt_bench_report *one)
{
    int rc = run_bench(side, flags, nflags, path, errpath);
    if (rc) return rc;
    if (dpt_bench_report_read_json(one, path)) return cli_usage_error(CMD, "%s", dpt_last_error());
    keep_fastest(one);
    for (int k = 0; k < side->retries && disturbed_rows(one); k++) {
        dpt_bench_report again;
        if ((rc = run_bench(side, flags, nflags, path, errpath))) break;
        if (dpt_bench_report_read_json(&again, path)) {
            rc = cli_usage_error(CMD, "%s", dpt_last_error());
            break;
        }
        keep_fastest(&again);
        merge_retry(one, &again);
        dpt_bench_report_free(&again);
    }
    if (rc) dpt_bench_report_free(one);
    return rc;
}

/* ---- pairs of whole runs, one bench process per run (an older dpt) ---- */

static int process_run(const cli_compare_side *bs, const cli_compare_side *ns, int pairs,
                       int max_pairs, cli_compare_more_fn more, void *ud, char *const *flags,
                       int nflags, const char *path, const char *errpath, dpt_bench_report *base,
                       dpt_bench_report *cur)
{
    int rc = 0;
    for (int i = 0; i < max_pairs && !rc; i++) {
        if (i >= pairs && !(more && more(base, cur, ud))) break;
        for (int half = 0; half < 2 && !rc; half++) {
            int is_new = (i % 2 == 0) == (half == 1); /* even: A, B; odd: B, A */
            const cli_compare_side *side = is_new ? ns : bs;
            dpt_bench_report one;
            if ((rc = run_side(side, flags, nflags, path, errpath, &one))) break;
            rc = gather(is_new ? cur : base, &one, side->exe, i);
            dpt_bench_report_free(&one);
        }
    }
    return rc;
}

/* ---- lockstep: a pair's two bench processes up together, taking turns ---- */

#define LS_NO_LOCKSTEP (-2) /* a bench without --lockstep (an older dpt) */

/* One bench process under the protocol of cli/lockstep.h. */
typedef struct ls_proc {
    const cli_compare_side *side;
    pid_t pid;
    int fd;   /* our end of the socket */
    FILE *in; /* its lines */
    char path[600], errpath[600];
    int ncfg;
    unsigned char *clean; /* [k]: configuration k had an undisturbed run */
} ls_proc;

/* Start side's bench with --lockstep on one end of a socket pair, rounds
 * at most. 0, else non-zero after printing why. */
static int ls_start(ls_proc *p, char *const *flags, int nflags, int rounds)
{
    const cli_compare_side *side = p->side;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return cli_fail(CMD, "cannot make a socket pair: %s", strerror(errno));
    static const char *const more[] = {"--no-limits", /* the gate compares times only */
                                       "--lockstep", "3", NULL};
    pid_t pid = spawn_bench(side, flags, nflags, rounds, p->path, p->errpath, more, sv[1]);
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return DPT_EXIT_USAGE;
    }
    close(sv[1]);
    p->pid = pid;
    p->fd = sv[0];
    int rfd = fcntl(sv[0], F_DUPFD_CLOEXEC, 3);
    if (rfd < 0 || !(p->in = fdopen(rfd, "r"))) {
        if (rfd >= 0) close(rfd);
        return cli_fail(CMD, "cannot read from %s: %s", side->exe, strerror(errno));
    }
    return 0;
}

/* Read p's ready line. 0; -1 when it said nothing (ls_end says why); else
 * non-zero after printing why. */
static int ls_ready(ls_proc *p)
{
    char line[64];
    int n = 0;
    if (!fgets(line, sizeof line, p->in) || sscanf(line, "ready %d", &n) != 1 || n < 1) return -1;
    p->ncfg = n;
    if (!(p->clean = calloc((size_t)n, 1))) return cli_fail(CMD, "out of memory");
    return 0;
}

/* End p and wait for it: with stop, "stop" (it then writes its report);
 * else the socket closes and it fails. 0 when it exited 0; LS_NO_LOCKSTEP
 * when it exited 2 on an unknown --lockstep; else non-zero after showing
 * what it said. */
static int ls_end(ls_proc *p, int stop)
{
    if (p->pid < 0) return 0;
    if (stop && send(p->fd, "stop\n", 5, MSG_NOSIGNAL) != 5) stop = 0;
    if (p->in) fclose(p->in);
    if (p->fd >= 0) close(p->fd);
    p->in = NULL;
    p->fd = -1;
    int ws;
    if (reap_bench(p->side->exe, p->pid, &ws)) return DPT_EXIT_USAGE;
    p->pid = -1;
    if (!stop && WIFEXITED(ws) && WEXITSTATUS(ws) == DPT_EXIT_USAGE) {
        FILE *f = fopen(p->errpath, "r");
        char buf[4096];
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f) fclose(f);
        buf[n] = '\0';
        if (strstr(buf, "'--lockstep'")) return LS_NO_LOCKSTEP; /* "unknown flag '--lockstep'" */
    }
    return bench_status(p->side->exe, ws, p->errpath);
}

/* End p quietly if it still runs (a failure was said already). */
static void ls_free(ls_proc *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR) continue;
        p->pid = -1;
    }
    if (p->in) fclose(p->in);
    if (p->fd >= 0) close(p->fd);
    p->in = NULL;
    p->fd = -1;
    free(p->clean);
    p->clean = NULL;
}

/* One round of p: each configuration once. */
static int ls_round(ls_proc *p)
{
    for (int k = 0; k < p->ncfg; k++) {
        char line[128];
        double secs;
        int dist;
        if (send(p->fd, "go\n", 3, MSG_NOSIGNAL) != 3 || !fgets(line, sizeof line, p->in) ||
            sscanf(line, "done %lf %d", &secs, &dist) != 2) {
            int rc = ls_end(p, 0);
            return rc ? rc
                      : cli_usage_error(CMD, "%s bench --lockstep stopped answering", p->side->exe);
        }
        p->clean[k] |= !dist;
    }
    return 0;
}

static int ls_all_clean(const ls_proc *p)
{
    for (int k = 0; k < p->ncfg; k++)
        if (!p->clean[k]) return 0;
    return 1;
}

/* Pair i: both sides' bench started together (they load and warm up
 * side by side; nothing is timed before both are ready), then reps rounds of each,
 * the sides taking turns round by round (ABBA within the pair too), more
 * rounds while a side has a configuration with no undisturbed run, up to
 * retries x reps more, then both stopped and their reports read into
 * one[0] (base) and one[1] (new), each row down to its fastest undisturbed
 * repetition. LS_NO_LOCKSTEP (before any run) when a side does not know
 * --lockstep. */
static int ls_pair(ls_proc p[2], int i, int reps, int retries, char *const *flags, int nflags,
                   dpt_bench_report one[2])
{
    const int first = i % 2, rounds = reps * (1 + retries);
    int rc = 0;
    for (int h = 0; h < 2 && !rc; h++) rc = ls_start(&p[first ^ h], flags, nflags, rounds);
    for (int h = 0; h < 2 && !rc; h++) {
        ls_proc *q = &p[first ^ h];
        if ((rc = ls_ready(q)) < 0 && (rc = ls_end(q, 0)) == 0)
            rc =
                cli_usage_error(CMD, "%s bench --lockstep ended before it was ready", q->side->exe);
    }
    if (!rc && p[0].ncfg != p[1].ncfg)
        rc = cli_usage_error(CMD, "%s runs %d configurations and %s %d: the two need the same",
                             p[0].side->exe, p[0].ncfg, p[1].side->exe, p[1].ncfg);
    for (int r = 0; !rc && r < rounds; r++) {
        if (r >= reps && r % reps == 0 && ls_all_clean(&p[0]) && ls_all_clean(&p[1])) break;
        for (int h = 0; h < 2 && !rc; h++) {
            /* the other side's OpenMP threads spin for a few ms after its run */
            nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
            rc = ls_round(&p[first ^ (r % 2) ^ h]);
        }
    }
    for (int s = 0; s < 2 && !rc; s++) rc = ls_end(&p[s], 1);
    for (int s = 0; s < 2 && !rc; s++) {
        if (dpt_bench_report_read_json(&one[s], p[s].path)) {
            rc = cli_usage_error(CMD, "%s", dpt_last_error());
            if (s) dpt_bench_report_free(&one[0]);
        } else {
            keep_fastest(&one[s]);
        }
    }
    for (int s = 0; s < 2; s++) {
        ls_free(&p[s]);
        unlink(p[s].path);
        unlink(p[s].errpath);
    }
    return rc;
}

static int lockstep_run(const cli_compare_side *bs, const cli_compare_side *ns, int pairs,
                        int max_pairs, cli_compare_more_fn more, void *ud, char *const *flags,
                        int nflags, const char *dir, dpt_bench_report *base, dpt_bench_report *cur)
{
    ls_proc p[2] = {{.side = bs, .pid = -1, .fd = -1}, {.side = ns, .pid = -1, .fd = -1}};
    for (int s = 0; s < 2; s++) {
        snprintf(p[s].path, sizeof p[s].path, "%s/%s.json", dir, s ? "new" : "base");
        snprintf(p[s].errpath, sizeof p[s].errpath, "%s/%s.err", dir, s ? "new" : "base");
    }
    int rc = 0, i;
    for (i = 0; i < max_pairs && !rc; i++) {
        if (i >= pairs && !(more && more(base, cur, ud))) break;
        dpt_bench_report one[2];
        if ((rc = ls_pair(p, i, bs->reps > 1 ? bs->reps : 1, bs->retries, flags, nflags, one)))
            break;
        if (!(rc = gather(base, &one[0], bs->exe, i))) rc = gather(cur, &one[1], ns->exe, i);
        dpt_bench_report_free(&one[0]);
        dpt_bench_report_free(&one[1]);
    }
    if (rc == LS_NO_LOCKSTEP && i > 0)
        rc = cli_usage_error(CMD, "a bench without --lockstep after %d pairs with it", i);
    return rc;
}

int cli_compare_run(const cli_compare_side *bs, const cli_compare_side *ns, int pairs,
                    int max_pairs, cli_compare_more_fn more, void *ud, char *const *flags,
                    int nflags, dpt_bench_report *base, dpt_bench_report *cur)
{
    dpt_bench_report_init(base);
    dpt_bench_report_init(cur);
    const char *tmp = getenv("TMPDIR");
    char dir[512], path[600], errpath[600];
    snprintf(dir, sizeof dir, "%s/dpt-compare-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return cli_fail(CMD, "cannot make a directory in %s: %s", tmp && *tmp ? tmp : "/tmp",
                        strerror(errno));
    snprintf(path, sizeof path, "%s/run.json", dir);
    snprintf(errpath, sizeof errpath, "%s/stderr.txt", dir);
    if (max_pairs < pairs) max_pairs = pairs;
    int rc = bs->lockstep
                 ? lockstep_run(bs, ns, pairs, max_pairs, more, ud, flags, nflags, dir, base, cur)
                 : LS_NO_LOCKSTEP;
    if (rc == LS_NO_LOCKSTEP) {
        dpt_bench_report_free(base);
        dpt_bench_report_free(cur);
        if (bs->lockstep)
            fprintf(stderr,
                    "dpt %s: note: a dpt without bench --lockstep: each pair runs whole "
                    "bench processes (--pairing process)\n",
                    CMD);
        rc = process_run(bs, ns, pairs, max_pairs, more, ud, flags, nflags, path, errpath, base,
                         cur);
    }
    unlink(path);
    unlink(errpath);
    rmdir(dir);
    if (rc) {
        dpt_bench_report_free(base);
        dpt_bench_report_free(cur);
    }
    return rc;
}

/* ---- dpt compare --calibrate ---- */

/* What calibration gathers about one configuration over the runs. */
typedef struct cal_row {
    dpt_compare_key key;
    int aa[DPT_VERDICT_COUNT], ab[DPT_VERDICT_COUNT]; /* verdicts */
    double *aa_est, *aa_half, *ab_est; /* log(1 + change), half-width of the log interval */
    int naa, nab;
} cal_row;

typedef struct calibration {
    cal_row *rows;
    int nrows, cap; /* cap: runs, the most estimates a row gets */
} calibration;

static cal_row *cal_find(calibration *c, const dpt_compare_key *k)
{
    for (int i = 0; i < c->nrows; i++) {
        const dpt_compare_key *x = &c->rows[i].key;
        if (x->ranks == k->ranks && x->threads == k->threads && x->batch == k->batch &&
            !strcmp(x->workload, k->workload) && !strcmp(x->pin, k->pin))
            return &c->rows[i];
    }
    cal_row *grown = realloc(c->rows, (size_t)(c->nrows + 1) * sizeof *grown);
    if (!grown) return NULL;
    c->rows = grown;
    cal_row *r = &grown[c->nrows];
    memset(r, 0, sizeof *r);
    r->key = *k;
    r->aa_est = calloc((size_t)c->cap, sizeof *r->aa_est);
    r->aa_half = calloc((size_t)c->cap, sizeof *r->aa_half);
    r->ab_est = calloc((size_t)c->cap, sizeof *r->ab_est);
    if (!r->aa_est || !r->aa_half || !r->ab_est) {
        free(r->aa_est);
        free(r->aa_half);
        free(r->ab_est);
        return NULL;
    }
    c->nrows++;
    return r;
}

/* Count one comparison's verdicts and keep its estimates; 0 or no memory. */
static int cal_add(calibration *c, const dpt_compare_result *res, int is_ab)
{
    for (size_t i = 0; i < res->nrows; i++) {
        const dpt_compare_row *p = &res->rows[i];
        cal_row *r = cal_find(c, &p->key);
        if (!r) return -1;
        (is_ab ? r->ab : r->aa)[p->verdict]++;
        if (!isfinite(p->estimate)) continue;
        if (is_ab) {
            r->ab_est[r->nab++] = log1p(p->estimate);
        } else if (isfinite(p->interval_lo) && isfinite(p->interval_hi)) {
            r->aa_est[r->naa] = log1p(p->estimate);
            r->aa_half[r->naa++] = (log1p(p->interval_hi) - log1p(p->interval_lo)) / 2;
        }
    }
    return 0;
}

/* Runs whose verdict passes the gate: same, faster, or same or faster. */
static int passed(const int *v)
{
    return v[DPT_VERDICT_SAME] + v[DPT_VERDICT_FASTER] + v[DPT_VERDICT_NOT_SLOWER];
}

/* "+1.2%" ("-" unknown) into buf. */
static const char *pct(double v, char *buf, size_t cap)
{
    if (isfinite(v))
        snprintf(buf, cap, "%+.1f%%", 100 * v);
    else
        snprintf(buf, cap, "-");
    return buf;
}

/* One line per run on stderr: each configuration's verdict and interval. */
static void cal_progress(const dpt_compare_result *res, const char *what, int k, int runs)
{
    fprintf(stderr, "dpt compare: calibrate: %s %d/%d:", what, k, runs);
    for (size_t i = 0; i < res->nrows; i++) {
        const dpt_compare_row *p = &res->rows[i];
        char a[32], b[32], c[32];
        fprintf(stderr, " %s/%d %s [%s, %s] %s;", p->key.workload, p->key.threads,
                pct(p->change, a, sizeof a), pct(p->interval_lo, b, sizeof b),
                pct(p->interval_hi, c, sizeof c), dpt_verdict_name(p->verdict));
    }
    fprintf(stderr, " exit %d\n", res->exit_status);
}

static double sample_sd(const double *x, int n)
{
    if (n < 2) return NAN;
    double m = dpt_stats_mean(x, (size_t)n), ss = 0;
    for (int i = 0; i < n; i++) ss += (x[i] - m) * (x[i] - m);
    return sqrt(ss / (n - 1));
}

/* The smallest slowdown whose interval clears the threshold in 95% of
 * runs: in logs, threshold + the median half-width of the A/A intervals
 * + 1.645 standard deviations of the A/A estimates (the estimate of a
 * true shift d scatters around d as the A/A estimates scatter around 0,
 * and the gate calls it slower when estimate - half-width > threshold). */
static double cal_detectable(const cal_row *r, double threshold)
{
    if (r->naa < 2) return NAN;
    return expm1(log1p(threshold) + dpt_stats_median(r->aa_half, (size_t)r->naa) +
                 1.645 * sample_sd(r->aa_est, r->naa));
}

static void cal_print(const calibration *c, int runs, int pairs, double slowdown,
                      const dpt_compare_opts *o)
{
    printf("calibration: %d A/A and %d A/B runs (+%g%% injected into each step's compute) of %d "
           "pairs each; threshold %g%%, alpha %g%s\n\n",
           runs, runs, slowdown, pairs, 100 * o->threshold, o->alpha,
           o->drop_disturbed ? ", disturbed pairs dropped" : "");
    printf("%-12s %7s %-8s %6s | %12s %8s %8s | %9s %8s %8s | %10s %8s %10s\n", "workload",
           "threads", "pin", "batch", "false alarm", "A/A ?", "A/A ok", "detected", "A/B ?",
           "A/B ok", "A/B change", "A/A sd", "detectable");
    for (int i = 0; i < c->nrows; i++) {
        const cal_row *r = &c->rows[i];
        char bs[24];
        if (r->key.batch > 0)
            snprintf(bs, sizeof bs, "%ld", r->key.batch);
        else
            snprintf(bs, sizeof bs, "full");
        const double ab = r->nab ? expm1(dpt_stats_median(r->ab_est, (size_t)r->nab)) : NAN;
        char x[32], y[32], z[32];
        const double sd = sample_sd(r->aa_est, r->naa);
        if (isfinite(sd))
            snprintf(y, sizeof y, "%.2f%%", 100 * sd);
        else
            snprintf(y, sizeof y, "-");
        printf("%-12s %7d %-8s %6s | %5d/%-6d %8d %8d | %3d/%-5d %8d %8d | %10s %8s %10s\n",
               r->key.workload, r->key.threads, r->key.pin, bs, r->aa[DPT_VERDICT_SLOWER], runs,
               r->aa[DPT_VERDICT_UNDECIDED], passed(r->aa), r->ab[DPT_VERDICT_SLOWER], runs,
               r->ab[DPT_VERDICT_UNDECIDED], passed(r->ab), pct(ab, x, sizeof x), y,
               pct(cal_detectable(r, o->threshold), z, sizeof z));
    }
    printf("\nfalse alarm: A/A judged slower; ?: cannot decide (abstentions); detected: A/B "
           "judged slower.\n"
           "A/B change: median estimate of the injected slowdown (the epoch slows by the\n"
           "injected share of its compute time). A/A sd: spread of the A/A estimates (log).\n"
           "detectable: smallest slowdown caught in 95%% of runs = threshold + median A/A\n"
           "half-width + 1.645 A/A sd (in logs). Set --threshold so that A/A gives no false\n"
           "alarms and the slowdowns you care about lie above 'detectable'.\n");
}

/* The path of this executable, to run it against itself. */
static int self_exe(char *buf, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
    if (n <= 0) return cli_fail(CMD, "cannot find this executable: %s", strerror(errno));
    buf[n] = '\0';
    return 0;
}

/* One paired comparison of the two sides, counted into c. */
static int cal_run(calibration *c, const cli_compare_side *a, const cli_compare_side *b,
                   const dpt_compare_opts *o, int pairs, int max_pairs, char *const *flags,
                   int nflags, int is_ab, int k, int runs)
{
    dpt_bench_report base, cur;
    if (cli_compare_run(a, b, pairs, max_pairs, cli_compare_undecided, (void *)o, flags, nflags,
                        &base, &cur))
        return DPT_EXIT_USAGE;
    dpt_compare_result res;
    int rc = dpt_compare_paired(&base, &cur, o, &res);
    dpt_bench_report_free(&base);
    dpt_bench_report_free(&cur);
    if (rc)
        rc = cli_usage_error(CMD, "cannot compare: %s", dpt_last_error());
    else if (cal_add(c, &res, is_ab))
        rc = cli_fail(CMD, "out of memory");
    else
        cal_progress(&res, is_ab ? "A/B" : "A/A", k, runs);
    dpt_compare_result_free(&res);
    return rc;
}

int cli_compare_calibrate(const dpt_compare_opts *o, int runs, int pairs, int max_pairs,
                          const cli_compare_side *side, double slowdown_pct, char *const *flags,
                          int nflags)
{
    char exe[4096], pct[32];
    if (self_exe(exe, sizeof exe)) return DPT_EXIT_USAGE;
    snprintf(pct, sizeof pct, "%g", slowdown_pct);
    char *inject[2] = {"--inject-slowdown", pct};
    const cli_compare_side a = {exe, NULL, 0, side->reps, side->retries, side->lockstep},
                           b = {exe, inject, 2, side->reps, side->retries, side->lockstep};
    calibration c = {.cap = runs};
    int rc = 0;
    /* A/A and A/B alternate, so that the runner's drift reaches both alike */
    for (int k = 1; k <= runs && !rc; k++) {
        rc = cal_run(&c, &a, &a, o, pairs, max_pairs, flags, nflags, 0, k, runs);
        if (!rc) rc = cal_run(&c, &a, &b, o, pairs, max_pairs, flags, nflags, 1, k, runs);
    }
    if (!rc) cal_print(&c, runs, pairs, slowdown_pct, o);
    for (int i = 0; i < c.nrows; i++) {
        free(c.rows[i].aa_est);
        free(c.rows[i].aa_half);
        free(c.rows[i].ab_est);
    }
    free(c.rows);
    return rc;
}
