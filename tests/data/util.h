/* Helpers for the data tests: a private temporary directory, files written
 * from strings, and loading with the message kept. */
#ifndef DPT_TESTS_DATA_UTIL_H
#define DPT_TESTS_DATA_UTIL_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dpt/error.h"
#include "dpt/io.h"

/* Each Criterion test runs in its own process: one directory per process. */
static inline const char *tdir(void)
{
    static char dir[256];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(dir, sizeof dir, "%s/dpt-data-test-XXXXXX", base);
        cr_assert(mkdtemp(dir), "mkdtemp failed");
    }
    return dir;
}

static inline void rm_tdir(void)
{
    const char *d = tdir();
    DIR *dp = opendir(d);
    if (!dp) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(dp)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", d, e->d_name);
            unlink(p);
        }
    closedir(dp);
    rmdir(d);
}

/* Path of name inside the test directory (a static buffer per call slot). */
static inline const char *tpath(const char *name)
{
    static char buf[8][512];
    static int slot;
    char *p = buf[slot++ & 7];
    snprintf(p, 512, "%s/%s", tdir(), name);
    return p;
}

static inline const char *write_bytes(const char *name, const void *data, size_t len)
{
    const char *p = tpath(name);
    FILE *f = fopen(p, "wb");
    cr_assert(f, "cannot create %s", p);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
    return p;
}

static inline const char *write_text(const char *name, const char *text)
{
    return write_bytes(name, text, strlen(text));
}

static inline int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Load text written to name with opts (NULL: defaults). */
static inline int load_text(const char *name, const char *text, const dpt_load_opts *o,
                            dpt_dataset *ds)
{
    return dpt_load(write_text(name, text), o, ds);
}

/* The message must contain every fragment given (NULL-terminated). */
#define assert_msg_has(...)                                                                        \
    do {                                                                                           \
        const char *frags_[] = {__VA_ARGS__, NULL};                                                \
        for (int i_ = 0; frags_[i_]; i_++)                                                         \
            cr_assert(strstr(dpt_last_error(), frags_[i_]), "message '%s' lacks '%s'",             \
                      dpt_last_error(), frags_[i_]);                                               \
        cr_assert(!strchr(dpt_last_error(), '\n'), "message spans lines: '%s'", dpt_last_error()); \
    } while (0)

static inline float X_at(const dpt_dataset *ds, size_t i, size_t k)
{
    return ds->X[i * ds->ld + k];
}

/* Padding columns must be zero and rows 64-byte aligned. */
static inline void assert_layout(const dpt_dataset *ds)
{
    cr_assert_eq(ds->ld, dpt_row_stride(ds->d));
    cr_assert_eq((uintptr_t)ds->X % 64, 0);
    for (size_t i = 0; i < ds->n; i++)
        for (size_t k = ds->d; k < ds->ld; k++) cr_assert_eq(ds->X[i * ds->ld + k], 0.0f);
}

#endif
