/* Output paths checked before any work: a run that trains for an hour must
 * not lose its model at the end because --json names a missing directory. */
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/outpath.h"

int cli_check_output(const char *cmd, const char *flag, const char *path)
{
    if (!path || !strcmp(path, "-")) return 0;
    if (!*path) return cli_usage_error(cmd, "%s: an empty path", flag);
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return cli_fail(cmd, "%s %s: a directory, not a file", flag, path);
        /* a file (or a link to one) is replaced; a device or pipe written */
        if (access(path, W_OK) && (errno == EACCES || errno == EROFS || errno == EPERM))
            return cli_fail(cmd, "%s %s: cannot be written: %s", flag, path, strerror(errno));
        if (!S_ISREG(st.st_mode)) return 0;
    }
    /* a new file, or a replaced one, is made beside it: the directory must take it */
    char *copy = strdup(path);
    if (!copy) return cli_fail(cmd, "out of memory");
    const char *dir = dirname(copy);
    int rc = 0;
    if (stat(dir, &st))
        rc = cli_fail(cmd, "%s %s: the directory %s does not exist", flag, path, dir);
    else if (!S_ISDIR(st.st_mode))
        rc = cli_fail(cmd, "%s %s: %s is not a directory", flag, path, dir);
    else if (access(dir, W_OK | X_OK))
        rc = cli_fail(cmd, "%s %s: cannot write in %s: %s", flag, path, dir, strerror(errno));
    free(copy);
    return rc;
}
