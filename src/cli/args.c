/* Flag parsing helpers shared by the subcommands. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"

static void vmsg(const char *cmd, const char *fmt, va_list ap)
{
    fprintf(stderr, "dpt %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(cmd, fmt, ap);
    va_end(ap);
    return DPT_EXIT_USAGE;
}

int cli_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(cmd, fmt, ap);
    va_end(ap);
    return DPT_EXIT_FAIL;
}

int cli_long(const char *cmd, const char *flag, const char *val, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || end == val || *end || v < lo || v > hi)
        return cli_usage_error(cmd, "--%s: '%s' is not an integer in %ld..%ld", flag, val, lo, hi);
    *out = v;
    return 0;
}

int cli_double(const char *cmd, const char *flag, const char *val, double lo, double hi,
               double *out)
{
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || end == val || *end || !isfinite(v) || v < lo || v > hi)
        return cli_usage_error(cmd, "--%s: '%s' is not a number in [%g, %g]", flag, val, lo, hi);
    *out = v;
    return 0;
}

int cli_choice(const char *cmd, const char *flag, const char *val, const char *const *choices,
               int *out)
{
    for (int i = 0; choices[i]; i++)
        if (!strcmp(val, choices[i])) {
            *out = i;
            return 0;
        }
    char allowed[256] = "";
    for (int i = 0; choices[i]; i++) {
        if (i) strncat(allowed, ", ", sizeof allowed - strlen(allowed) - 1);
        strncat(allowed, choices[i], sizeof allowed - strlen(allowed) - 1);
    }
    return cli_usage_error(cmd, "--%s: '%s' is not one of: %s", flag, val, allowed);
}

/* Edit distance (insert, delete, substitute, swap of neighbours), capped:
 * anything above cap counts as cap + 1. */
static size_t distance(const char *a, size_t na, const char *b, size_t nb, size_t cap)
{
    if (na > 64 || nb > 64) return cap + 1;
    size_t d[65][65];
    for (size_t i = 0; i <= na; i++) d[i][0] = i;
    for (size_t j = 0; j <= nb; j++) d[0][j] = j;
    for (size_t i = 1; i <= na; i++)
        for (size_t j = 1; j <= nb; j++) {
            size_t v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < v) v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[na][nb] > cap ? cap + 1 : d[na][nb];
}

const char *cli_closest(const char *word, size_t len, const char *const *names, size_t stride,
                        size_t n)
{
    /* a typo, not another word: at most 1 edit in 4 characters, 2 at most */
    size_t cap = len < 4 ? 1 : len / 4 < 2 ? len / 4 : 2, best = cap + 1;
    const char *hit = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *name = *(const char *const *)((const char *)names + i * stride);
        if (!name) break;
        size_t dd = distance(word, len, name, strlen(name), cap);
        if (dd < best) best = dd, hit = name;
    }
    return hit;
}

/* dpt CMD --list-flags (hidden): the flags CMD accepts, one a line, from
 * the same table its parser uses; tests/cli/help.sh compares them with
 * CMD --help both ways. */
static void list_flags(int argc, char **argv, const struct option *opts)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--list-flags")) {
            for (; opts->name; opts++) printf("%s%s\n", opts->name, opts->has_arg ? "=" : "");
            fflush(stdout);
            exit(0);
        }
}

int cli_getopt(const char *cmd, int argc, char **argv, const struct option *opts)
{
    if (optind <= 1) list_flags(argc, argv, opts);
    opterr = 0;
    int c = getopt_long(argc, argv, ":", opts, NULL);
    if (c == '?') {
        const char *bad = argv[optind - 1];
        if (optopt) {
            cli_usage_error(cmd, "unknown flag '-%c' (see dpt %s --help)", optopt, cmd);
            return '?';
        }
        const char *word = bad + (bad[0] == '-') + (bad[0] == '-' && bad[1] == '-');
        size_t n = 0, len = strcspn(word, "=");
        while (opts[n].name) n++;
        const char *near = cli_closest(word, len, &opts[0].name, sizeof opts[0], n);
        if (near)
            cli_usage_error(cmd, "unknown flag '%s': did you mean --%s? (see dpt %s --help)", bad,
                            near, cmd);
        else
            cli_usage_error(cmd, "unknown flag '%s' (see dpt %s --help)", bad, cmd);
        return '?';
    }
    if (c == ':') {
        cli_usage_error(cmd, "flag '%s' needs a value (see dpt %s --help)", argv[optind - 1], cmd);
        return '?';
    }
    return c;
}

int cli_split(const char *cmd, const char *flag, const char *val, char *buf, size_t bufcap,
              const char **tok, int cap, const char *example)
{
    if (strlen(val) >= bufcap) {
        cli_usage_error(cmd, "--%s: list too long", flag);
        return -1;
    }
    strcpy(buf, val);
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == cap) {
            cli_usage_error(cmd, "--%s: at most %d values", flag, cap);
            return -1;
        }
        tok[n++] = t;
    }
    if (n == 0) {
        cli_usage_error(cmd, "--%s: '%s' names nothing (use e.g. %s)", flag, val, example);
        return -1;
    }
    return n;
}

int cli_thread_list(const char *cmd, const char *flag, const char *val, int ncores, int *out,
                    int cap)
{
    int n = 0;
    if (!strcmp(val, "all")) {
        for (int t = 1; t <= ncores && n < cap; t++) out[n++] = t;
        return n;
    }
    char buf[256];
    if (strlen(val) >= sizeof buf) {
        cli_usage_error(cmd, "--%s: list too long", flag);
        return -1;
    }
    strcpy(buf, val);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *dash = strchr(tok, '-');
        long lo = 0, hi = 0;
        if (dash) {
            *dash = '\0';
            if (cli_long(cmd, flag, tok, 1, 4096, &lo) ||
                cli_long(cmd, flag, dash + 1, lo, 4096, &hi))
                return -1;
        } else {
            if (cli_long(cmd, flag, tok, 1, 4096, &lo)) return -1;
            hi = lo;
        }
        for (long t = lo; t <= hi; t++) {
            if (n == cap) {
                cli_usage_error(cmd, "--%s: more than %d counts", flag, cap);
                return -1;
            }
            out[n++] = (int)t;
        }
    }
    if (n == 0) {
        cli_usage_error(cmd, "--%s: '%s' names no count (use e.g. 1,2,4 or 1-16 or all)", flag,
                        val);
        return -1;
    }
    return n;
}

void cli_help(const char *const *parts)
{
    for (; *parts; parts++) fputs(*parts, stdout);
}
