/* Format choice (extension, then content) and the public load/save entry
 * points. dpt_load opens its input once and every loader but .dptb's
 * parses those bytes, so a pipe loses nothing. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/io_internal.h"
#include "dpt/error.h"

static const char *const format_names[] = {"auto", "csv", "svmlight", "idx", "dptb"};

const char *dpt_format_name(dpt_format f)
{
    return (unsigned)f < sizeof format_names / sizeof *format_names ? format_names[f] : "?";
}

int dpt_format_parse(const char *name, dpt_format *out)
{
    for (int i = 0; i < 5; i++)
        if (!strcmp(name, format_names[i])) {
            *out = (dpt_format)i;
            return 0;
        }
    if (!strcmp(name, "libsvm")) {
        *out = DPT_FORMAT_SVMLIGHT;
        return 0;
    }
    return dpt_set_error(DPT_EINVAL,
                         "unknown format '%s' (allowed: auto, csv, svmlight, idx, dptb)", name);
}

static int ends_with(const char *s, size_t len, const char *suffix)
{
    size_t k = strlen(suffix);
    return len >= k && !strncasecmp(s + len - k, suffix, k);
}

dpt_format dpt_format_from_path(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    int gz = ends_with(base, len, ".gz");
    if (gz) len -= 3;
    if (ends_with(base, len, ".csv") || ends_with(base, len, ".tsv"))
        return gz ? DPT_FORMAT_AUTO : DPT_FORMAT_CSV;
    if (ends_with(base, len, ".svm") || ends_with(base, len, ".libsvm") ||
        ends_with(base, len, ".svmlight"))
        return gz ? DPT_FORMAT_AUTO : DPT_FORMAT_SVMLIGHT;
    if (ends_with(base, len, ".dptb")) return gz ? DPT_FORMAT_AUTO : DPT_FORMAT_DPTB;
    if (ends_with(base, len, ".idx") || ends_with(base, len, "-ubyte") ||
        ends_with(base, len, ".ubyte"))
        return DPT_FORMAT_IDX;
    return DPT_FORMAT_AUTO;
}

dpt_format dpt_format_detect(const char *path, int has_labels)
{
    dpt_format f = has_labels ? DPT_FORMAT_IDX : dpt_format_from_path(path);
    if (f != DPT_FORMAT_AUTO) return f;
    /* a pipe's bytes are gone once read: only dpt_load may look */
    struct stat st;
    if (!strcmp(path, "-") || stat(path, &st) || !S_ISREG(st.st_mode)) return DPT_FORMAT_AUTO;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return DPT_FORMAT_CSV; /* the loader names the problem */
    char b[4096];
    ssize_t n = read(fd, b, sizeof b);
    close(fd);
    return io_sniff(b, n > 0 ? (size_t)n : 0);
}

void dpt_load_opts_defaults(dpt_load_opts *o)
{
    memset(o, 0, sizeof *o);
    o->header = -1;
    o->label_col = DPT_LABEL_COL_LAST;
}

int dpt_load(const char *path, const dpt_load_opts *opts, dpt_dataset *ds)
{
    dpt_load_opts o;
    if (opts)
        o = *opts;
    else
        dpt_load_opts_defaults(&o);
    memset(ds, 0, sizeof *ds);
    dpt_clear_error();
    const char *name = io_display_name(path);
    dpt_format f = o.format;
    if (f == DPT_FORMAT_AUTO && o.labels_path) f = DPT_FORMAT_IDX;
    if (f == DPT_FORMAT_AUTO) f = dpt_format_from_path(path);
    /* the input is opened once: its format is sniffed from the bytes the
     * text loaders then parse, so a pipe loses nothing */
    io_file in;
    int rc = io_file_open(&in, path, &o, f);
    if (rc) return rc;
    if (f == DPT_FORMAT_AUTO) f = io_sniff(in.buf, in.len);
    if ((f == DPT_FORMAT_CSV || f == DPT_FORMAT_SVMLIGHT) &&
        (rc = io_check_text(name, in.buf, in.len, f)))
        goto done;
    if (o.labels_path && f != DPT_FORMAT_IDX) {
        rc = dpt_set_error(DPT_EINVAL, "%s: a labels file applies to IDX data only, not %s", name,
                           dpt_format_name(f));
        goto done;
    }
    if (f == DPT_FORMAT_DPTB && !in.regular) {
        rc = dpt_set_error(DPT_ENOTSUP,
                           "%s: %s data is read from a regular file only, not a pipe or device "
                           "(save it to a file first)",
                           name, dpt_format_name(f));
        goto done;
    }
    /* per-rank loading: only .dptb can read part of the rows */
    if (f != DPT_FORMAT_DPTB) {
        o.part = NULL;
        o.npart = 0;
    }
    switch (f) {
    case DPT_FORMAT_CSV:
        if (!o.delimiter) o.delimiter = ends_with(path, strlen(path), ".tsv") ? '\t' : ',';
        rc = io_load_csv(name, &in, &o, ds);
        break;
    case DPT_FORMAT_SVMLIGHT:
        rc = io_load_svmlight(name, &in, &o, ds);
        break;
    case DPT_FORMAT_IDX:
        rc = io_load_idx(name, &in, &o, ds);
        break;
    case DPT_FORMAT_DPTB:
        io_file_close(&in);
        rc = io_load_dptb(path, &o, ds);
        break;
    default:
        rc = dpt_set_error(DPT_EINVAL, "%s: unknown format", name);
    }
done:
    io_file_close(&in);
    return rc;
}

void dpt_save_opts_defaults(dpt_save_opts *o)
{
    memset(o, 0, sizeof *o);
    o->header = 1;
}

int dpt_save(const dpt_dataset *ds, const char *path, const dpt_save_opts *opts)
{
    dpt_save_opts o;
    if (opts)
        o = *opts;
    else
        dpt_save_opts_defaults(&o);
    if (!ds || !ds->X || ds->n == 0 || ds->d == 0)
        return dpt_set_error(DPT_EINVAL, "%s: nothing to write (empty dataset)", path);
    if (ds->part)
        return dpt_set_error(DPT_EINVAL,
                             "%s: cannot write a data set that holds only part of its rows "
                             "(per-rank loading)",
                             path);
    dpt_format f = o.format ? o.format : dpt_format_from_path(path);
    if (f == DPT_FORMAT_AUTO) f = DPT_FORMAT_DPTB;
    switch (f) {
    case DPT_FORMAT_CSV:
        if (!o.delimiter) o.delimiter = ends_with(path, strlen(path), ".tsv") ? '\t' : ',';
        return io_save_csv(ds, path, &o);
    case DPT_FORMAT_SVMLIGHT:
        return io_save_svmlight(ds, path, &o);
    case DPT_FORMAT_DPTB:
        return io_save_dptb(ds, path);
    case DPT_FORMAT_IDX:
        return dpt_set_error(DPT_ENOTSUP,
                             "%s: writing IDX is not supported (use csv, svmlight "
                             "or dptb)",
                             path);
    default:
        return dpt_set_error(DPT_EINVAL, "%s: unknown format", path);
    }
}
