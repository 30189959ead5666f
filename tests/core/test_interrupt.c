/* Never losing a model, through the dpt tool: 3 epochs and a resume for 3
 * more give the bits of 6; SIGTERM mid-epoch exits 143 with a checkpoint
 * from which a resume gives the bits of an uninterrupted run (SIGINT 130,
 * SIGHUP 129); a second SIGINT ends the process at once; SIGKILL at random
 * points of repeated saves leaves the old or the new file, whole, and the
 * next run removes the stray temporary files; a checkpoint of another run
 * is refused with one line. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dpt/error.h"
#include "dpt/modelfile.h"

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/dpt-intr-XXXXXX");
    cr_assert(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(interrupt, .init = make_dir, .fini = remove_dir);

/* `dpt ARGS` through the shell (%s in args is the work directory): the
 * exit status; stderr into err when given. */
static int dpt(char *err, size_t cap, const char *args)
{
    const char *exe = getenv("DPT_EXE");
    cr_assert(exe, "DPT_EXE is not set");
    char a[1024], cmd[1400];
    snprintf(a, sizeof a, args, dir, dir, dir, dir);
    snprintf(cmd, sizeof cmd, "%s %s 2>&1 >/dev/null", exe, a);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    char sink[4096];
    size_t n = fread(err ? err : sink, 1, (err ? cap : sizeof sink) - 1, p);
    (err ? err : sink)[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* `exec dpt ARGS` in a child whose stdout and stderr come back on *out
 * (one pipe); its pid is the dpt process's. */
static pid_t spawn(const char *args, int *out)
{
    const char *exe = getenv("DPT_EXE");
    char a[1024], cmd[1400];
    snprintf(a, sizeof a, args, dir, dir, dir, dir);
    snprintf(cmd, sizeof cmd, "exec %s %s", exe, a);
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], 1);
        dup2(fd[1], 2);
        close(fd[0]);
        close(fd[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    *out = fd[0];
    return pid;
}

/* Read until a line that starts with prefix; 0 at end of file. */
static int wait_line(int fd, const char *prefix)
{
    char line[4096];
    size_t n = 0;
    for (;;) {
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r <= 0) return 0;
        if (ch != '\n') {
            if (n < sizeof line - 1) line[n++] = ch;
            continue;
        }
        line[n] = '\0';
        n = 0;
        if (!strncmp(line, prefix, strlen(prefix))) return 1;
    }
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 20];
    *len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    char *p = malloc(*len + 1);
    memcpy(p, buf, *len);
    p[*len] = '\0';
    return p;
}

static int same_files(const char *a, const char *b)
{
    size_t la = 0, lb = 0;
    char *pa = slurp(a, &la), *pb = slurp(b, &lb);
    int same = pa && pb && la == lb && la > 0 && !memcmp(pa, pb, la);
    free(pa);
    free(pb);
    return same;
}

/* Files in the work directory whose name contains ".tmp." */
static int temp_files(void)
{
    DIR *d = opendir(dir);
    cr_assert(d);
    int n = 0;
    for (struct dirent *de; (de = readdir(d));) n += strstr(de->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static int exists(const char *name)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat sb;
    return stat(p, &sb) == 0;
}

static int lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

#define DATA "--synth teacher-mlp:n=3000,d=8 --model mlp --hidden 12 --pin none --quiet "

Test(interrupt, three_plus_three_is_six)
{
    static const char *const runs[] = {
        "--opt gd --lr 0.5 --threads 1",
        "--opt gd --lr 0.5 --threads 3",
        "--opt momentum --lr 0.01 --batch 64 --shuffle none --threads 1",
        "--opt momentum --lr 0.01 --batch 64 --shuffle epoch --threads 3",
        "--opt sgd --lr 0.01 --batch 64 --shuffle epoch --threads 1",
    };
    char err[2048], args[512], a[256], b[256];
    snprintf(a, sizeof a, "%s/a.m", dir);
    snprintf(b, sizeof b, "%s/b.m", dir);
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        snprintf(args, sizeof args, "train " DATA "%s --epochs 6 --save %%s/a.m", runs[i]);
        cr_assert_eq(dpt(err, sizeof err, args), 0, "%s", err);
        snprintf(args, sizeof args, "train " DATA "%s --epochs 3 --checkpoint %%s/ck", runs[i]);
        cr_assert_eq(dpt(err, sizeof err, args), 0, "%s", err);
        snprintf(args, sizeof args, "train " DATA "%s --epochs 6 --resume %%s/ck --save %%s/b.m",
                 runs[i]);
        cr_assert_eq(dpt(err, sizeof err, args), 0, "%s", err);
        cr_assert(same_files(a, b), "%s: 3 + resume 3 is not the bits of 6", runs[i]);
    }
}

#define LONG                                                                                       \
    "train --synth teacher-mlp:n=20000,d=10 --model mlp --hidden 16 --opt momentum --batch 32 "    \
    "--lr 0.01 --lr-schedule cosine --threads 3 --pin none --epochs 8 "

Test(interrupt, sigterm_then_resume_gives_the_bits, .timeout = 300)
{
    char err[2048], a[256], b[256];
    cr_assert_eq(dpt(err, sizeof err, LONG "--quiet --save %s/full.m"), 0, "%s", err);
    int out;
    pid_t pid = spawn(LONG "--save %s/part.m --checkpoint %s/ck --json %s/run.json", &out);
    cr_assert(wait_line(out, "epoch "), "no epoch line");
    usleep(30000); /* most likely inside epoch 2: its steps are then undone */
    cr_assert_eq(kill(pid, SIGTERM), 0);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    close(out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 143, "status %d", st);
    cr_assert(exists("ck"), "no checkpoint");
    cr_assert(!exists("part.m"), "an unfinished run wrote --save");
    cr_assert_eq(temp_files(), 0, "temporary files left");
    snprintf(a, sizeof a, "%s/run.json", dir);
    size_t len;
    char *json = slurp(a, &len);
    cr_assert(json && strstr(json, "\"interrupted\": \"SIGTERM\""), "%s", json ? json : "no JSON");
    free(json);
    /* the data alone: model, optimizer, schedule, epochs and threads are
     * the checkpoint's */
    cr_assert_eq(dpt(err, sizeof err,
                     "train --synth teacher-mlp:n=20000,d=10 --pin none --quiet --save %s/part.m "
                     "--resume %s/ck"),
                 0, "%s", err);
    snprintf(a, sizeof a, "%s/full.m", dir);
    snprintf(b, sizeof b, "%s/part.m", dir);
    cr_assert(same_files(a, b), "SIGTERM + resume is not the bits of an uninterrupted run");
    cr_assert_eq(temp_files(), 0, "temporary files left");
}

Test(interrupt, sigint_and_sighup_statuses, .timeout = 300)
{
    static const int sigs[] = {SIGINT, SIGHUP};
    for (int i = 0; i < 2; i++) {
        int out;
        /* no --checkpoint: beside --save */
        pid_t pid = spawn(LONG "--save %s/m", &out);
        cr_assert(wait_line(out, "epoch "), "no epoch line");
        cr_assert_eq(kill(pid, sigs[i]), 0);
        int st;
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        close(out);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 128 + sigs[i], "signal %d: status %d",
                  sigs[i], st);
        cr_assert(exists("m.interrupted.ckpt"), "no checkpoint beside --save");
        cr_assert(!exists("m"));
        cr_assert_eq(temp_files(), 0);
        char p[256];
        snprintf(p, sizeof p, "%s/m.interrupted.ckpt", dir);
        unlink(p);
    }
}

/* Whether the process still catches sig (/proc/PID/status SigCgt). */
static int catches(pid_t pid, int sig)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    unsigned long long mask = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "SigCgt: %llx", &mask) == 1) break;
    fclose(f);
    return (int)(mask >> (sig - 1) & 1);
}

Test(interrupt, second_sigint_exits_at_once, .timeout = 300)
{
    int out;
    /* one long step (full batch over a wide MLP): the first SIGINT waits
     * for its end, the second must not */
    pid_t pid = spawn("train --synth teacher-mlp:n=200000,d=32 --model mlp --hidden 64 --opt gd "
                      "--lr 0.1 --threads 1 --pin none --epochs 100 --checkpoint %s/ck",
                      &out);
    cr_assert(wait_line(out, "dpt train: mlp"), "no header");
    cr_assert(catches(pid, SIGINT), "SIGINT is not caught during training");
    cr_assert_eq(kill(pid, SIGINT), 0);
    for (int i = 0; i < 20000 && catches(pid, SIGINT); i++) usleep(500);
    cr_assert(!catches(pid, SIGINT), "the first SIGINT did not put the default action back");
    cr_assert_eq(kill(pid, SIGINT), 0);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    close(out);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGINT,
              "the second SIGINT did not end the process at once (status %d)", st);
}

Test(interrupt, sigkill_during_saves, .timeout = 300)
{
    const char *loop = getenv("SAVE_LOOP");
    cr_assert(loop, "SAVE_LOOP is not set");
    char target[256], cmd[512];
    snprintf(target, sizeof target, "%s/target", dir);
    snprintf(cmd, sizeof cmd, "exec %s %s", loop, target);
    srand((unsigned)time(NULL));
    for (int i = 0; i < 30; i++) {
        pid_t pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
            execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
            _exit(127);
        }
        /* the first run leaves an old file for the others to replace */
        if (i == 0)
            for (int k = 0; k < 10000 && !exists("target"); k++) usleep(1000);
        usleep((useconds_t)(rand() % 50000));
        cr_assert_eq(kill(pid, SIGKILL), 0);
        int st;
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        cr_assert(WIFSIGNALED(st), "save_loop ended by itself (status %d)", st);
        dpt_model m;
        float *w;
        dpt_standardizer sd;
        cr_assert_eq(dpt_model_load(target, &m, &w, &sd), 0, "kill %d: %s", i, dpt_last_error());
        for (size_t k = 1; k < m.n_params; k++)
            cr_assert(w[k] == w[0] && (w[0] == 1 || w[0] == 2), "kill %d: a mixed model", i);
        free(w);
        dpt_standardizer_free(&sd);
    }
    char err[2048];
    cr_assert_eq(
        dpt(err, sizeof err,
            "train --synth linreg:n=200,d=4 --epochs 1 --quiet --pin none --save %s/target"),
        0, "%s", err);
    cr_assert_eq(temp_files(), 0, "stray temporary files after a successful run");
}

Test(interrupt, other_run_refused)
{
    char err[2048];
    cr_assert_eq(dpt(err, sizeof err, "train " DATA "--opt sgd --epochs 2 --checkpoint %s/ck"), 0,
                 "%s", err);
    static const char *const other[] = {
        "train --synth teacher-mlp:n=3000,d=8 --model mlp --hidden 13 --pin none --quiet --opt sgd "
        "--epochs 4 --resume %s/ck",
        "train --synth teacher-mlp:n=3001,d=8 --model mlp --hidden 12 --pin none --quiet --opt sgd "
        "--epochs 4 --resume %s/ck",
        "train --synth teacher-mlp:n=3000,d=8,seed=5 --model mlp --hidden 12 --pin none --quiet "
        "--opt sgd --epochs 4 --resume %s/ck",
        "train " DATA "--opt momentum --epochs 4 --resume %s/ck",
        "train " DATA "--opt sgd --epochs 1 --resume %s/ck",
    };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        int rc = dpt(err, sizeof err, other[i]);
        cr_assert(rc == 1 || rc == 2, "case %zu: status %d", i, rc);
        cr_assert_eq(lines(err), 1, "case %zu: %s", i, err);
        cr_assert(strstr(err, "dpt train: --resume"), "case %zu: %s", i, err);
    }
    /* a damaged checkpoint */
    char p[256];
    snprintf(p, sizeof p, "%s/ck", dir);
    FILE *f = fopen(p, "r+b");
    fseek(f, 40, SEEK_SET);
    fputc(0x55, f);
    fclose(f);
    int rc = dpt(err, sizeof err, "train " DATA "--opt sgd --epochs 4 --resume %s/ck");
    cr_assert_eq(rc, 1, "%s", err);
    cr_assert(strstr(err, "checksum"), "%s", err);
}
