/* The atomic file writer (dpt/file.h) on the cases that broke it before:
 * symlinks, FIFOs, aborts, missing directories. Everything happens in a
 * temporary directory; nothing is written to /dev. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dpt/error.h"
#include "dpt/file.h"

static char dir[64];

static void make_dir(void)
{
    strcpy(dir, "/tmp/dpt-outfile-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(outfile, .init = make_dir, .fini = remove_dir, .timeout = 20);

static void in_dir(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
}

/* The whole file, NUL-terminated; aborts the test when unreadable. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s: %s", path, strerror(errno));
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

/* Directory entries of d (not . and ..), and how many look like a temporary
 * file of the writer (".NAME.tmp.PID.XXXXXX"). */
static int entries(const char *d, int *temps)
{
    DIR *h = opendir(d);
    cr_assert_not_null(h);
    int n = 0;
    *temps = 0;
    for (struct dirent *e; (e = readdir(h));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        n++;
        *temps += e->d_name[0] == '.' && strstr(e->d_name, ".tmp.") != NULL;
    }
    closedir(h);
    return n;
}

Test(outfile, replaces_a_regular_file_and_keeps_its_mode)
{
    char p[128];
    in_dir(p, sizeof p, "out.txt");
    put(p, "old contents, longer than the new ones");
    cr_assert_eq(chmod(p, 0640), 0);
    cr_assert_eq(dpt_write_file_atomic(p, "new\n", 4), 0, "%s", dpt_last_error());
    cr_expect_str_eq(slurp(p), "new\n");
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_expect_eq(st.st_mode & 07777, 0640);
    int temps, n = entries(dir, &temps);
    cr_expect_eq(n, 1);
    cr_expect_eq(temps, 0);
}

Test(outfile, temporary_file_is_named_after_target_and_pid)
{
    char p[128], want[128];
    in_dir(p, sizeof p, "model.bin");
    dpt_out_file o;
    cr_assert_eq(dpt_out_open(&o, p), 0, "%s", dpt_last_error());
    cr_assert_not_null(o.tmp);
    snprintf(want, sizeof want, "%s/.model.bin.tmp.%ld.", dir, (long)getpid());
    cr_expect_eq(strncmp(o.tmp, want, strlen(want)), 0, "temporary file %s", o.tmp);
    cr_expect_eq(strlen(o.tmp), strlen(want) + 6, "temporary file %s", o.tmp);
    /* nothing at the target until the commit */
    fputs("x", o.f);
    cr_expect_eq(access(p, F_OK), -1);
    cr_assert_eq(dpt_out_commit(&o), 0, "%s", dpt_last_error());
    cr_expect_str_eq(slurp(p), "x");
}

Test(outfile, symlink_target_replaced_and_link_kept)
{
    char real[128], link[128], sub[128], link2[128];
    in_dir(real, sizeof real, "real.json");
    in_dir(link, sizeof link, "link.json");
    in_dir(sub, sizeof sub, "sub");
    in_dir(link2, sizeof link2, "sub/link2.json");
    put(real, "old");
    cr_assert_eq(symlink("real.json", link), 0);
    cr_assert_eq(mkdir(sub, 0755), 0);
    /* a chain of relative links, each relative to its own directory */
    cr_assert_eq(symlink("../link.json", link2), 0);

    cr_assert_eq(dpt_write_file_atomic(link, "one", 3), 0, "%s", dpt_last_error());
    struct stat st;
    cr_assert_eq(lstat(link, &st), 0);
    cr_expect(S_ISLNK(st.st_mode), "the link was replaced by a file");
    cr_expect_str_eq(slurp(real), "one");

    cr_assert_eq(dpt_write_file_atomic(link2, "two", 3), 0, "%s", dpt_last_error());
    cr_assert_eq(lstat(link2, &st), 0);
    cr_expect(S_ISLNK(st.st_mode));
    cr_assert_eq(lstat(link, &st), 0);
    cr_expect(S_ISLNK(st.st_mode));
    char target[64];
    ssize_t n = readlink(link, target, sizeof target - 1);
    cr_assert_gt(n, 0);
    target[n] = '\0';
    cr_expect_str_eq(target, "real.json");
    cr_expect_str_eq(slurp(real), "two");

    int temps;
    cr_expect_eq(entries(dir, &temps), 3);
    cr_expect_eq(temps, 0);
    cr_expect_eq(entries(sub, &temps), 1);
    cr_expect_eq(temps, 0);
}

Test(outfile, dangling_symlink_creates_its_target)
{
    char link[128], real[128];
    in_dir(link, sizeof link, "dangling");
    in_dir(real, sizeof real, "created");
    cr_assert_eq(symlink("created", link), 0);
    cr_assert_eq(dpt_write_file_atomic(link, "hi", 2), 0, "%s", dpt_last_error());
    struct stat st;
    cr_assert_eq(lstat(link, &st), 0);
    cr_expect(S_ISLNK(st.st_mode));
    cr_expect_str_eq(slurp(real), "hi");
}

Test(outfile, symlink_loop_fails_naming_the_path)
{
    char a[128], b[128];
    in_dir(a, sizeof a, "a");
    in_dir(b, sizeof b, "b");
    cr_assert_eq(symlink("b", a), 0);
    cr_assert_eq(symlink("a", b), 0);
    cr_expect_eq(dpt_write_file_atomic(a, "x", 1), DPT_EIO);
    cr_expect(strstr(dpt_last_error(), a), "%s", dpt_last_error());
}

struct reader {
    char path[128];
    char got[256];
    size_t len;
};

static void *read_fifo(void *arg)
{
    struct reader *r = arg;
    int fd = open(r->path, O_RDONLY);
    if (fd < 0) return NULL;
    for (ssize_t n; (n = read(fd, r->got + r->len, sizeof r->got - 1 - r->len)) > 0;)
        r->len += (size_t)n;
    close(fd);
    return NULL;
}

Test(outfile, fifo_is_written_through)
{
    struct reader r = {0};
    in_dir(r.path, sizeof r.path, "pipe");
    cr_assert_eq(mkfifo(r.path, 0600), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, read_fifo, &r), 0);
    const char msg[] = "through the pipe\n";
    int rc = dpt_write_file_atomic(r.path, msg, sizeof msg - 1);
    pthread_join(t, NULL);
    cr_assert_eq(rc, 0, "%s", dpt_last_error());
    cr_expect_eq(r.len, sizeof msg - 1);
    cr_expect_eq(memcmp(r.got, msg, sizeof msg - 1), 0, "%.*s", (int)r.len, r.got);
    struct stat st;
    cr_assert_eq(lstat(r.path, &st), 0);
    cr_expect(S_ISFIFO(st.st_mode), "the FIFO was replaced");
    int temps;
    cr_expect_eq(entries(dir, &temps), 1);
    cr_expect_eq(temps, 0);
}

Test(outfile, symlink_to_fifo_is_written_through)
{
    struct reader r = {0};
    char link[128];
    in_dir(r.path, sizeof r.path, "pipe");
    in_dir(link, sizeof link, "to-pipe");
    cr_assert_eq(mkfifo(r.path, 0600), 0);
    cr_assert_eq(symlink("pipe", link), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, read_fifo, &r), 0);
    dpt_out_file o;
    int rc = dpt_out_open(&o, link);
    if (!rc) {
        cr_expect_null(o.tmp, "a FIFO gets no temporary file");
        fputs("a", o.f);
        /* the fd accessor: stdio's bytes first, then the fd's */
        int fd = dpt_out_fd(&o);
        cr_expect_geq(fd, 0);
        cr_expect_eq(write(fd, "b", 1), 1);
        rc = dpt_out_commit(&o);
    }
    pthread_join(t, NULL);
    cr_assert_eq(rc, 0, "%s", dpt_last_error());
    cr_expect_eq(r.len, 2);
    cr_expect_eq(memcmp(r.got, "ab", 2), 0);
    struct stat st;
    cr_assert_eq(lstat(r.path, &st), 0);
    cr_expect(S_ISFIFO(st.st_mode));
    cr_assert_eq(lstat(link, &st), 0);
    cr_expect(S_ISLNK(st.st_mode));
}

Test(outfile, abort_leaves_no_file)
{
    char p[128];
    in_dir(p, sizeof p, "never.json");
    dpt_out_file o;
    cr_assert_eq(dpt_out_open(&o, p), 0, "%s", dpt_last_error());
    fputs("{\"half\": ", o.f);
    dpt_out_abort(&o);
    cr_expect_null(o.f);
    cr_expect_eq(access(p, F_OK), -1);
    int temps;
    cr_expect_eq(entries(dir, &temps), 0, "abort left a file behind");
    /* a zeroed or aborted handle: abort and commit do nothing */
    dpt_out_abort(&o);
    cr_expect_eq(dpt_out_commit(&o), 0);
    cr_expect_eq(entries(dir, &temps), 0);
}

Test(outfile, abort_keeps_the_old_file)
{
    char p[128];
    in_dir(p, sizeof p, "keep.txt");
    put(p, "old");
    dpt_out_file o;
    cr_assert_eq(dpt_out_open(&o, p), 0, "%s", dpt_last_error());
    fputs("new", o.f);
    dpt_out_abort(&o);
    cr_expect_str_eq(slurp(p), "old");
    int temps;
    cr_expect_eq(entries(dir, &temps), 1);
    cr_expect_eq(temps, 0);
}

Test(outfile, missing_directory_fails_naming_the_path)
{
    char p[128];
    in_dir(p, sizeof p, "no/such/dir/out.json");
    cr_expect_eq(dpt_write_file_atomic(p, "x", 1), DPT_EIO);
    cr_expect(strstr(dpt_last_error(), p), "%s", dpt_last_error());
    cr_expect(strstr(dpt_last_error(), "No such file"), "%s", dpt_last_error());
}

Test(outfile, commit_after_the_directory_went_away_fails_naming_the_path)
{
    char sub[128], moved[128], p[128];
    in_dir(sub, sizeof sub, "sub");
    in_dir(moved, sizeof moved, "moved");
    in_dir(p, sizeof p, "sub/out.json");
    cr_assert_eq(mkdir(sub, 0755), 0);
    dpt_out_file o;
    cr_assert_eq(dpt_out_open(&o, p), 0, "%s", dpt_last_error());
    fputs("data", o.f);
    cr_assert_eq(rename(sub, moved), 0);
    cr_expect_eq(dpt_out_commit(&o), DPT_EIO);
    cr_expect(strstr(dpt_last_error(), p), "%s", dpt_last_error());
    cr_expect(strstr(dpt_last_error(), "rename"), "%s", dpt_last_error());
    cr_expect_eq(access(p, F_OK), -1);
}

Test(outfile, directory_is_refused)
{
    char p[128];
    in_dir(p, sizeof p, "adir");
    cr_assert_eq(mkdir(p, 0755), 0);
    cr_expect_eq(dpt_write_file_atomic(p, "x", 1), DPT_EIO);
    cr_expect(strstr(dpt_last_error(), "directory"), "%s", dpt_last_error());
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_expect(S_ISDIR(st.st_mode));
}

Test(outfile, open_descriptor_is_written_through)
{
    /* /proc/self/fd/N (like /dev/stdout) means the descriptor the process
     * holds, here a pipe's write end: the bytes go down the pipe */
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fds[1]);
    cr_assert_eq(dpt_write_file_atomic(p, "piped", 5), 0, "%s", dpt_last_error());
    close(fds[1]);
    char got[16] = {0};
    cr_expect_eq(read(fds[0], got, sizeof got - 1), 5);
    cr_expect_str_eq(got, "piped");
    close(fds[0]);
}
