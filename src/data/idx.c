/* IDX loader (the MNIST format), plain or gzip: magic 00 00 TYPE NDIM,
 * NDIM big-endian uint32 sizes, then the values big-endian. The first
 * dimension is the sample count; the rest flatten into features. Values
 * become float32 as they are (pixels stay 0..255). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/io_internal.h"
#include "dpt/error.h"

/* deflate cannot expand data by more than about 1032:1 */
#define GZ_MAX_RATIO 1032

typedef struct idx_file {
    const char *path;  /* for messages */
    const io_file *in; /* the bytes, mapped or read from a stream once */
    size_t pos;        /* next unread byte of in */
    int gzip;
    z_stream zs;
    int zs_live;
    int type, esize;
    size_t n, d;      /* items, values per item */
    size_t file_size; /* bytes stored */
} idx_file;

static const char *type_name(int t)
{
    switch (t) {
    case 0x08:
        return "unsigned byte";
    case 0x09:
        return "signed byte";
    case 0x0B:
        return "int16";
    case 0x0C:
        return "int32";
    case 0x0D:
        return "float32";
    case 0x0E:
        return "float64";
    }
    return "?";
}

static int esize_of(int t)
{
    switch (t) {
    case 0x08:
    case 0x09:
        return 1;
    case 0x0B:
        return 2;
    case 0x0C:
    case 0x0D:
        return 4;
    case 0x0E:
        return 8;
    }
    return 0;
}

static int truncated(idx_file *f, const char *what, size_t want, size_t got)
{
    return dpt_set_error(DPT_EFORMAT, "%s: truncated in %s: expected %zu bytes, found %zu", f->path,
                         what, want, got);
}

/* Inflate into out[0..len): gzip members one after another, as gzread
 * reads them; *got gets the bytes produced (fewer at the end of the data).
 * Returns 0 or the error. */
static int inflate_some(idx_file *f, unsigned char *out, size_t len, const char *what,
                        size_t *got_out)
{
    size_t got = 0;
    *got_out = 0;
    while (got < len) {
        if (f->zs.avail_in == 0 && f->pos < f->in->len) {
            size_t k = f->in->len - f->pos < (1u << 30) ? f->in->len - f->pos : 1u << 30;
            f->zs.next_in = (unsigned char *)f->in->buf + f->pos;
            f->zs.avail_in = (unsigned)k;
            f->pos += k;
        }
        size_t k = len - got < (1u << 30) ? len - got : 1u << 30;
        f->zs.next_out = out + got;
        f->zs.avail_out = (unsigned)k;
        int r = inflate(&f->zs, Z_NO_FLUSH);
        got += k - f->zs.avail_out;
        if (r == Z_STREAM_END) {
            /* another member follows only if its magic does */
            const unsigned char *nx = f->zs.next_in;
            size_t left = f->zs.avail_in + (f->in->len - f->pos);
            if (left >= 2 && nx[0] == 0x1f && nx[1] == 0x8b) {
                inflateReset(&f->zs);
                continue;
            }
            f->pos = f->in->len;
            f->zs.avail_in = 0;
            break;
        }
        if (r == Z_BUF_ERROR && f->zs.avail_in == 0 && f->pos >= f->in->len)
            return dpt_set_error(DPT_EFORMAT,
                                 "%s: gzip data cut short (unexpected end of file) in %s", f->path,
                                 what);
        if (r == Z_DATA_ERROR || r == Z_NEED_DICT)
            return dpt_set_error(DPT_EFORMAT, "%s: corrupt gzip data in %s (%s)", f->path, what,
                                 f->zs.msg ? f->zs.msg : "bad data");
        if (r == Z_MEM_ERROR) return dpt_set_error(DPT_ENOMEM, "%s: out of memory", f->path);
        *got_out = got;
    }
    *got_out = got;
    return 0;
}

static int read_all(idx_file *f, void *buf, size_t len, const char *what, size_t done_before,
                    size_t total)
{
    if (!f->gzip) {
        size_t have = f->in->len - f->pos;
        if (have < len) return truncated(f, what, total, done_before + have);
        memcpy(buf, f->in->buf + f->pos, len);
        f->pos += len;
        return 0;
    }
    size_t got = 0;
    int rc = inflate_some(f, buf, len, what, &got);
    if (rc) return rc;
    if (got < len) return truncated(f, what, total, done_before + got);
    return 0;
}

static int idx_open(idx_file *f, const char *path, const io_file *in)
{
    memset(f, 0, sizeof *f);
    f->path = path;
    f->in = in;
    f->file_size = in->len;
    if (f->file_size == 0) return dpt_set_error(DPT_EFORMAT, "%s: empty file", path);
    f->gzip =
        in->len >= 2 && (unsigned char)in->buf[0] == 0x1f && (unsigned char)in->buf[1] == 0x8b;
    if (f->gzip) {
        /* 16: a gzip wrapper, not zlib's */
        if (inflateInit2(&f->zs, 15 + 16) != Z_OK)
            return dpt_set_error(DPT_ENOMEM, "%s: out of memory", path);
        f->zs_live = 1;
    }
    unsigned char h[4];
    int rc = read_all(f, h, 4, "the IDX header", 0, 4);
    if (rc) return rc;
    f->type = h[2];
    f->esize = esize_of(h[2]);
    if (h[0] || h[1] || !f->esize || h[3] == 0)
        return dpt_set_error(DPT_EFORMAT,
                             "%s: not an IDX file (starts %02X %02X %02X %02X; expected 00 00, a "
                             "type 08/09/0B/0C/0D/0E and a dimension count)",
                             path, h[0], h[1], h[2], h[3]);
    unsigned char dims[4 * 255];
    size_t hdr = 4 + 4 * (size_t)h[3];
    if ((rc = read_all(f, dims, 4 * (size_t)h[3], "the IDX header", 4, hdr))) return rc;
    f->d = 1;
    for (int k = 0; k < h[3]; k++) {
        size_t v = (size_t)dims[4 * k] << 24 | (size_t)dims[4 * k + 1] << 16 |
                   (size_t)dims[4 * k + 2] << 8 | dims[4 * k + 3];
        if (k == 0)
            f->n = v;
        else if (v && f->d > SIZE_MAX / 16 / v)
            return dpt_set_error(DPT_EFORMAT, "%s: IDX dimensions too large", path);
        else
            f->d *= v;
    }
    if (f->n == 0 || f->d == 0)
        return dpt_set_error(DPT_EFORMAT, "%s: IDX header gives %zu items of %zu values: no data",
                             path, f->n, f->d);
    /* the stored size, checked before anything is allocated */
    size_t body = f->n > SIZE_MAX / 8 / f->d ? SIZE_MAX : f->n * f->d * (size_t)f->esize;
    if (!f->gzip) {
        if (body == SIZE_MAX || hdr + body > f->file_size)
            return dpt_set_error(DPT_EFORMAT,
                                 "%s: truncated: header says %zu items of %zu %s values (%zu "
                                 "bytes), the file has %zu",
                                 path, f->n, f->d, type_name(f->type), hdr + body, f->file_size);
        if (hdr + body < f->file_size)
            return dpt_set_error(DPT_EFORMAT,
                                 "%s: %zu bytes of trailing data after %zu items of %zu values",
                                 path, f->file_size - hdr - body, f->n, f->d);
    } else if (body == SIZE_MAX || body / GZ_MAX_RATIO > f->file_size) {
        return dpt_set_error(DPT_EFORMAT,
                             "%s: truncated: header says %zu items of %zu values, more than %zu "
                             "bytes of gzip can hold",
                             path, f->n, f->d, f->file_size);
    }
    return 0;
}

static void idx_close(idx_file *f)
{
    if (f->zs_live) inflateEnd(&f->zs);
    f->zs_live = 0;
}

/* Convert count big-endian values at src to floats. Returns the index of
 * the first non-finite value, or count. */
static size_t convert(int type, const unsigned char *s, size_t count, float *dst)
{
    switch (type) {
    case 0x08:
        for (size_t i = 0; i < count; i++) dst[i] = s[i];
        return count;
    case 0x09:
        for (size_t i = 0; i < count; i++) dst[i] = (signed char)s[i];
        return count;
    case 0x0B:
        for (size_t i = 0; i < count; i++) dst[i] = (int16_t)(s[2 * i] << 8 | s[2 * i + 1]);
        return count;
    case 0x0C:
        for (size_t i = 0; i < count; i++) {
            uint32_t u = (uint32_t)s[4 * i] << 24 | (uint32_t)s[4 * i + 1] << 16 |
                         (uint32_t)s[4 * i + 2] << 8 | s[4 * i + 3];
            dst[i] = (float)(int32_t)u;
        }
        return count;
    case 0x0D:
        for (size_t i = 0; i < count; i++) {
            uint32_t u = (uint32_t)s[4 * i] << 24 | (uint32_t)s[4 * i + 1] << 16 |
                         (uint32_t)s[4 * i + 2] << 8 | s[4 * i + 3];
            memcpy(&dst[i], &u, 4);
            if (!isfinite(dst[i])) return i;
        }
        return count;
    default: /* 0x0E */
        for (size_t i = 0; i < count; i++) {
            uint64_t u = 0;
            for (int k = 0; k < 8; k++) u = u << 8 | s[8 * i + k];
            double v;
            memcpy(&v, &u, 8);
            dst[i] = (float)v;
            if (!isfinite(dst[i])) return i;
        }
        return count;
    }
}

/* Read f's n x d values into rows of stride ld at X (ld 1 for labels). */
static int read_values(idx_file *f, float *X, size_t ld)
{
    size_t rows_per = ((size_t)1 << 20) / (f->d * (size_t)f->esize) + 1;
    if (rows_per > f->n) rows_per = f->n;
    unsigned char *buf = malloc(rows_per * f->d * (size_t)f->esize);
    if (!buf) return dpt_set_error(DPT_ENOMEM, "%s: out of memory", f->path);
    size_t total = f->n * f->d * (size_t)f->esize;
    int rc = 0;
    for (size_t r0 = 0; r0 < f->n && !rc; r0 += rows_per) {
        size_t rn = f->n - r0 < rows_per ? f->n - r0 : rows_per;
        size_t bytes = rn * f->d * (size_t)f->esize;
        rc = read_all(f, buf, bytes, "the values", r0 * f->d * (size_t)f->esize, total);
        for (size_t r = 0; r < rn && !rc; r++) {
            size_t k = convert(f->type, buf + r * f->d * (size_t)f->esize, f->d, X + (r0 + r) * ld);
            if (k != f->d)
                rc = dpt_set_error(DPT_EFORMAT, "%s: item %zu, value %zu is not finite", f->path,
                                   r0 + r + 1, k + 1);
        }
    }
    free(buf);
    if (rc) return rc;
    /* a plain file's size was checked against its header */
    if (!f->gzip) return 0;
    unsigned char extra;
    size_t got = 0;
    if ((rc = inflate_some(f, &extra, 1, "the end of the file", &got))) return rc;
    if (got)
        return dpt_set_error(DPT_EFORMAT, "%s: trailing data after %zu items of %zu values",
                             f->path, f->n, f->d);
    return 0;
}

int io_load_idx(const char *path, const io_file *in, const dpt_load_opts *o, dpt_dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    idx_file im, lb;
    memset(&im, 0, sizeof im);
    memset(&lb, 0, sizeof lb);
    io_file lin;
    memset(&lin, 0, sizeof lin);
    const char *lname = o->labels_path ? io_display_name(o->labels_path) : NULL;
    int rc = idx_open(&im, path, in);
    if (rc) goto fail;
    if (o->features && o->features != im.d) {
        rc = dpt_set_error(DPT_EFORMAT, "%s: %zu features, expected %zu", path, im.d, o->features);
        goto fail;
    }
    if (o->labels_path) {
        if ((rc = io_file_open(&lin, o->labels_path, o, DPT_FORMAT_IDX))) goto fail;
        if ((rc = idx_open(&lb, lname, &lin))) goto fail;
        if (lb.d != 1) {
            rc = dpt_set_error(DPT_EFORMAT, "%s: labels must be one value per item, not %zu", lname,
                               lb.d);
            goto fail;
        }
        if (lb.n != im.n) {
            rc = dpt_set_error(DPT_EFORMAT, "%s: %zu labels, but %s has %zu images", lname, lb.n,
                               path, im.n);
            goto fail;
        }
    }
    if ((rc = io_check_memory(path, o, im.n, im.d))) goto fail;
    if ((rc = dpt_dataset_alloc(ds, im.n, im.d, 0))) {
        rc = io_error_prefix(rc, path);
        goto fail;
    }
    if ((rc = read_values(&im, ds->X, ds->ld))) goto fail;
    if (o->labels_path) {
        if ((rc = read_values(&lb, ds->y, 1))) goto fail;
        io_infer_labels(ds);
    } else {
        memset(ds->y, 0, ds->n * sizeof(float));
        ds->label_kind = DPT_LABEL_REAL;
        ds->classes = 0;
    }
    idx_close(&im);
    idx_close(&lb);
    io_file_close(&lin);
    return 0;
fail:
    idx_close(&im);
    idx_close(&lb);
    io_file_close(&lin);
    dpt_dataset_free(ds);
    return rc;
}
