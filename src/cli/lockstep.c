/* dpt bench --lockstep FD: the bench side of the protocol in lockstep.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/lockstep.h"
#include "dpt/error.h"

/* One line to the comparing process; -1 when it cannot take it (it went
 * away: no SIGPIPE, the caller reports). */
__attribute__((format(printf, 2, 3))) static int say(int fd, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf) return -1;
    for (int off = 0; off < n;) {
        ssize_t w = send(fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        off += (int)w;
    }
    return 0;
}

int cli_lockstep_open(const char *cmd, int fd, cli_lockstep *ls)
{
    memset(ls, 0, sizeof *ls);
    ls->fd = -1;
    struct stat st;
    if (fstat(fd, &st))
        return cli_usage_error(cmd, "--lockstep %d: not an open descriptor (%s)", fd,
                               strerror(errno));
    if (!S_ISSOCK(st.st_mode))
        return cli_usage_error(cmd, "--lockstep %d: not a socket (dpt compare --run passes one)",
                               fd);
    int dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (dupfd < 0) return cli_fail(cmd, "--lockstep %d: %s", fd, strerror(errno));
    ls->in = fdopen(dupfd, "r");
    if (!ls->in) {
        close(dupfd);
        return cli_fail(cmd, "--lockstep %d: %s", fd, strerror(errno));
    }
    ls->fd = fd;
    return 0;
}

void cli_lockstep_close(cli_lockstep *ls)
{
    if (ls->in) fclose(ls->in);
    ls->in = NULL;
}

int cli_lockstep_before(int round, int config, void *ud)
{
    cli_lockstep *ls = ud;
    (void)round;
    (void)config;
    if (!ls->ready) {
        if (say(ls->fd, "ready %d\n", dpt_sweep_configs(ls->sw))) goto lost;
        ls->ready = 1;
    }
    char line[64];
    if (!fgets(line, sizeof line, ls->in))
        return dpt_set_error(DPT_EIO, "lockstep: the comparing process went away");
    if (!strcmp(line, "go\n")) return 0;
    if (!strcmp(line, "stop\n")) return 1;
    return dpt_set_error(DPT_EIO, "lockstep: unexpected message '%.*s'", (int)strcspn(line, "\n"),
                         line);
lost:
    return dpt_set_error(DPT_EIO, "lockstep: cannot write to the comparing process: %s",
                         strerror(errno));
}

void cli_lockstep_after(int round, int config, double secs, int disturbed, void *ud)
{
    cli_lockstep *ls = ud;
    (void)round;
    (void)config;
    /* a lost peer shows at the next before_run */
    (void)say(ls->fd, "done %.17g %d\n", secs, disturbed ? 1 : 0);
}
