/* dpt compare --run: two dpt executables benchmarked in alternation, ABBA
 * (pair i runs A then B when i is even, B then A when odd), one repetition
 * per invocation, so slow drift of a shared runner hits both builds alike.
 * Each build's invocations are gathered into one report whose sample i is
 * pair i, for dpt_compare_paired. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/compare_run.h"
#include "dpt/error.h"

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

/* exe bench <flags> --reps 1 --json path --quiet, its stdout discarded (the
 * reports are read back from path) and its stderr kept in errpath, shown
 * only when it fails: its warnings are in the report, and the gate repeats
 * them once instead of once per run. */
static int run_bench(const char *exe, char *const *flags, int nflags, const char *path,
                     const char *errpath)
{
    const char **argv = calloc((size_t)nflags + 8, sizeof *argv);
    if (!argv) return cli_fail(CMD, "out of memory");
    int k = 0;
    argv[k++] = exe;
    argv[k++] = "bench";
    for (int i = 0; i < nflags; i++) argv[k++] = flags[i];
    argv[k++] = "--reps";
    argv[k++] = "1";
    argv[k++] = "--json";
    argv[k++] = path;
    argv[k++] = "--quiet";
    argv[k] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        free(argv);
        return cli_fail(CMD, "cannot start %s: %s", exe, strerror(errno));
    }
    if (pid == 0) {
        int dn = open("/dev/null", O_WRONLY);
        int er = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (dn >= 0) dup2(dn, 1);
        if (er >= 0) dup2(er, 2);
        execv(exe, (char *const *)argv);
        fprintf(stderr, "dpt %s: cannot run %s: %s\n", CMD, exe, strerror(errno));
        _exit(127);
    }
    free(argv);
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR) return cli_fail(CMD, "waiting for %s: %s", exe, strerror(errno));
    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0) return 0;
    show(errpath);
    if (WIFEXITED(ws))
        return cli_usage_error(CMD, "%s bench exited with status %d", exe, WEXITSTATUS(ws));
    return cli_usage_error(CMD, "%s bench was killed by signal %d", exe, WTERMSIG(ws));
}

static int same_row(const dpt_bench_result *a, const dpt_bench_result *b)
{
    return a->ranks == b->ranks && a->threads == b->threads && a->batch == b->batch &&
           !strcmp(a->workload, b->workload) && !strcmp(a->pin, b->pin) && !strcmp(a->isa, b->isa);
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
        a->samples[a->reps++] = x->samples[0];
    }
    return 0;
}

int cli_compare_run(const char *base_exe, const char *new_exe, int pairs, char *const *flags,
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
    int rc = 0;
    for (int i = 0; i < pairs && !rc; i++) {
        for (int half = 0; half < 2 && !rc; half++) {
            int is_new = (i % 2 == 0) == (half == 1); /* even: A, B; odd: B, A */
            const char *exe = is_new ? new_exe : base_exe;
            dpt_bench_report one;
            if ((rc = run_bench(exe, flags, nflags, path, errpath))) break;
            if (dpt_bench_report_read_json(&one, path)) {
                rc = cli_usage_error(CMD, "%s", dpt_last_error());
                break;
            }
            rc = gather(is_new ? cur : base, &one, exe, i);
            dpt_bench_report_free(&one);
        }
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
