/* The one atomic file writer of the library (dpt/file.h): temporary file
 * beside the target, fsync, rename, fsync of the directory; links resolved
 * so that they survive, devices and FIFOs written through. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dpt/error.h"
#include "dpt/file.h"

/* Symlink hops before giving up, as the kernel's own limit (ELOOP). */
#define MAX_HOPS 40

static void reset(dpt_out_file *o)
{
    free(o->tmp);
    free(o->path);
    free(o->name);
    memset(o, 0, sizeof *o);
}

static int oom(dpt_out_file *o)
{
    reset(o);
    return dpt_set_error(DPT_ENOMEM, "out of memory opening an output file");
}

/* a + b as one malloc'd string */
static char *concat(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    char *s = malloc(alen + blen + 1);
    if (!s) return NULL;
    memcpy(s, a, alen);
    memcpy(s + alen, b, blen + 1);
    return s;
}

/* Length of the directory part of p, slash included ("" -> 0: the cwd). */
static size_t dir_len(const char *p)
{
    const char *slash = strrchr(p, '/');
    return slash ? (size_t)(slash - p) + 1 : 0;
}

/* The file that a write to path lands on: every symlink of the last
 * component followed (the directories on the way are resolved by rename
 * itself). A missing file ends the walk: it is the one to create. NULL
 * with errno set on ELOOP, ENOMEM or an unreadable link. */
static char *resolve_links(const char *path)
{
    char *cur = strdup(path);
    for (int hops = 0; cur; hops++) {
        struct stat st;
        if (lstat(cur, &st) || !S_ISLNK(st.st_mode)) return cur;
        if (hops == MAX_HOPS) {
            free(cur);
            errno = ELOOP;
            return NULL;
        }
        size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
        char *target = malloc(cap);
        ssize_t n = target ? readlink(cur, target, cap) : -1;
        /* a link rewritten between lstat and readlink: ask again */
        if (n < 0 || (size_t)n >= cap) {
            int e = n < 0 ? errno : EAGAIN;
            free(target);
            free(cur);
            errno = e;
            return NULL;
        }
        target[n] = '\0';
        char *next = target[0] == '/' ? strdup(target) : concat(cur, dir_len(cur), target);
        free(target);
        free(cur);
        cur = next;
    }
    return NULL;
}

/* The standard streams under their device names and /dev/fd/N (or
 * /proc/self/fd/N): written through the descriptor the process already
 * has, so that the bytes go where its other output goes (a shell's
 * "> file" included). -1 for any other path. */
static int std_fd(const char *path)
{
    if (!strcmp(path, "/dev/stdout")) return 1;
    if (!strcmp(path, "/dev/stderr")) return 2;
    const char *num = !strncmp(path, "/dev/fd/", 8)          ? path + 8
                      : !strncmp(path, "/proc/self/fd/", 14) ? path + 14
                                                             : NULL;
    if (!num || !*num) return -1;
    char *end;
    long fd = strtol(num, &end, 10);
    return *end || fd < 0 || fd > 65535 ? -1 : (int)fd;
}

/* Open the temporary file of target: ".NAME.tmp.PID.XXXXXX" beside it,
 * created with O_EXCL and mode 0666 (the umask applies, as for fopen). */
static int open_tmp(dpt_out_file *o)
{
    static const char digits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    static unsigned long counter;
    size_t dl = dir_len(o->path);
    const char *base = o->path + dl;
    size_t cap = dl + strlen(base) + 64;
    if (!(o->tmp = malloc(cap))) return DPT_ENOMEM;
    for (int attempt = 0; attempt < 100; attempt++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^
                     (uint64_t)__atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) << 32 ^
                     (uint64_t)(uintptr_t)o;
        char rnd[7];
        for (int i = 0; i < 6; i++, x /= 36) rnd[i] = digits[x % 36];
        rnd[6] = '\0';
        snprintf(o->tmp, cap, "%.*s.%s.tmp.%ld.%s", (int)dl, o->path, base, (long)getpid(), rnd);
        int fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) return fd;
        if (errno != EEXIST) break;
    }
    return -1;
}

/* Write straight to fd (a device, a FIFO, one of our own descriptors):
 * nothing to rename; the FILE owns fd. */
static int write_through(dpt_out_file *o, int fd, const char *path)
{
    if (fd < 0 || !(o->f = fdopen(fd, "w"))) {
        int e = errno;
        if (fd >= 0) close(fd);
        reset(o);
        return dpt_set_error(DPT_EIO, "cannot write %s: %s", path, strerror(e));
    }
    o->own = 1;
    return 0;
}

int dpt_out_open(dpt_out_file *o, const char *path)
{
    memset(o, 0, sizeof *o);
    if (!path || !*path) return dpt_set_error(DPT_EIO, "no output file name given");
    if (!strcmp(path, "-") || !strcmp(path, "/dev/stdout")) {
        o->f = stdout;
        return 0;
    }
    if (!(o->name = strdup(path))) return oom(o);
    int sfd = std_fd(path);
    if (sfd == 2) {
        o->f = stderr;
        return 0;
    }
    if (sfd >= 0) {
        return write_through(o, fcntl(sfd, F_DUPFD_CLOEXEC, 3), path);
    }

    if (!(o->path = resolve_links(path))) {
        int e = errno;
        if (e == ENOMEM) return oom(o);
        reset(o);
        return dpt_set_error(DPT_EIO, "cannot write %s: %s", path, strerror(e));
    }
    struct stat st;
    int exists = stat(o->path, &st) == 0;
    if (exists && S_ISDIR(st.st_mode)) {
        reset(o);
        return dpt_set_error(DPT_EIO, "cannot write %s: it is a directory", path);
    }
    if (exists && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))) {
        /* a FIFO blocks here until a reader opens it, as a shell's "> fifo" does */
        return write_through(o, open(o->path, O_WRONLY | O_NOCTTY | O_CLOEXEC), path);
    }
    if (exists && !S_ISREG(st.st_mode)) {
        reset(o);
        return dpt_set_error(DPT_EIO,
                             "cannot write %s: not a regular file, character device or FIFO", path);
    }
    if (!o->path[dir_len(o->path)]) {
        reset(o);
        return dpt_set_error(DPT_EIO, "cannot write %s: it names a directory", path);
    }
    int fd = open_tmp(o);
    if (fd == DPT_ENOMEM) return oom(o);
    int e = errno;
    /* a replaced file keeps its permissions */
    if (fd >= 0 && exists && fchmod(fd, st.st_mode & 07777)) e = errno, close(fd), fd = -2;
    if (fd >= 0 && !(o->f = fdopen(fd, "w"))) e = errno, close(fd), fd = -2;
    if (fd < 0) {
        if (fd == -2) unlink(o->tmp);
        reset(o);
        return dpt_set_error(DPT_EIO, "cannot create %s: %s", path, strerror(e));
    }
    o->own = 1;
    return 0;
}

int dpt_out_fd(dpt_out_file *o)
{
    if (!o->f) {
        dpt_set_error(DPT_EIO, "output file is not open");
        return -1;
    }
    if (fflush(o->f)) {
        dpt_set_error(DPT_EIO, "cannot write %s: %s", o->name ? o->name : "stdout",
                      strerror(errno));
        return -1;
    }
    return fileno(o->f);
}

void dpt_out_abort(dpt_out_file *o)
{
    if (o->f && o->own) fclose(o->f);
    if (o->tmp) unlink(o->tmp);
    reset(o);
}

/* Make a rename in the directory of path durable. */
static void sync_dir(const char *path)
{
    size_t dl = dir_len(path);
    char *dir = dl ? concat(path, dl, "") : NULL;
    int dfd = open(dir ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(dir);
}

int dpt_out_commit(dpt_out_file *o)
{
    if (!o->f) {
        reset(o);
        return 0;
    }
    const char *name = o->name ? o->name : "stdout";
    const char *step = "write";
    int e = 0, rc = 0;
    if (ferror(o->f) || fflush(o->f)) rc = -1, e = errno;
    /* a device or FIFO cannot be synced (EINVAL), and nothing is renamed */
    if (!rc && o->tmp && fsync(fileno(o->f))) step = "fsync", rc = -1, e = errno;
    if (o->own && fclose(o->f) && !rc) step = "close", rc = -1, e = errno;
    if (!rc && o->tmp && rename(o->tmp, o->path)) step = "rename", rc = -1, e = errno;
    if (rc) {
        if (o->tmp) unlink(o->tmp);
        /* a short write with errno unset: the disk is full */
        rc = dpt_set_error(DPT_EIO, "cannot write %s (%s): %s", name, step,
                           e ? strerror(e) : "short write");
    } else if (o->tmp) {
        sync_dir(o->path);
    }
    reset(o);
    return rc;
}

int dpt_write_file_atomic(const char *path, const char *text, size_t len)
{
    dpt_out_file o;
    int rc = dpt_out_open(&o, path);
    if (rc) return rc;
    /* a short write leaves the error flag set, and commit fails on it */
    if (len) fwrite(text, 1, len, o.f);
    return dpt_out_commit(&o);
}
