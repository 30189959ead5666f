/* dpt's binary data format. A 64-byte little-endian header, then the rows
 * exactly as they sit in memory (n x ld float32, padding zero, so every row
 * is 64-byte aligned in the file), then the n labels zero-padded to 64
 * bytes. The loader maps the file copy-on-write and points X and y into
 * the mapping: nothing is copied.
 *
 *   0  magic "DPTB\r\n\x1a\n"   8  u32 version (1)   12 u32 header bytes (64)
 *  16  u64 n                   24  u64 d            32 u64 ld
 *  40  u32 label kind          44  u32 classes
 *  48  u64 checksum of X then y (io_checksum of each, combined)
 *  56  u64 checksum of bytes 0..55 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "data/io_internal.h"
#include "dpt/error.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error ".dptb stores little-endian floats as they lie in memory; add byte swapping here"
#endif

#define DPTB_MAGIC   "DPTB\r\n\x1a\n"
#define DPTB_VERSION 1
#define DPTB_HEADER  64

static void put32(unsigned char *p, uint32_t v)
{
    for (int k = 0; k < 4; k++) p[k] = (unsigned char)(v >> (8 * k));
}
static void put64(unsigned char *p, uint64_t v)
{
    for (int k = 0; k < 8; k++) p[k] = (unsigned char)(v >> (8 * k));
}
static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int k = 3; k >= 0; k--) v = v << 8 | p[k];
    return v;
}
static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--) v = v << 8 | p[k];
    return v;
}

static uint64_t data_checksum(const float *X, size_t xfloats, const float *y, size_t n, int nt)
{
    uint64_t hx = io_checksum(X, xfloats * sizeof(float), nt);
    uint64_t hy = io_checksum(y, n * sizeof(float), nt);
    return hx * 0x9E3779B97F4A7C15ULL ^ hy;
}

/* File size for n x d, or 0 on overflow. */
static size_t dptb_size(size_t n, size_t d)
{
    size_t b = io_dataset_bytes(n, d);
    return b == SIZE_MAX ? 0 : b + DPTB_HEADER;
}

int io_load_dptb(const char *path, const dpt_load_opts *o, dpt_dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return dpt_set_error(DPT_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    unsigned char h[DPTB_HEADER];
    int rc = 0;
    void *m = MAP_FAILED;
    size_t size = 0;
    if (fstat(fd, &st)) {
        rc = dpt_set_error(DPT_EIO, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = dpt_set_error(DPT_EIO, "%s: is a directory, not a data file", path);
        goto fail;
    }
    size = (size_t)st.st_size;
    if (size == 0) {
        rc = dpt_set_error(DPT_EFORMAT, "%s: empty file", path);
        goto fail;
    }
    ssize_t got = pread(fd, h, sizeof h, 0);
    if (got < 0) {
        rc = dpt_set_error(DPT_EIO, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (got < 8 || memcmp(h, DPTB_MAGIC, 8)) {
        rc = dpt_set_error(DPT_EFORMAT, "%s: not a .dptb file (bad magic)", path);
        goto fail;
    }
    if (got < DPTB_HEADER) {
        rc = dpt_set_error(DPT_EFORMAT, "%s: truncated: %zd of the %d header bytes", path, got,
                           DPTB_HEADER);
        goto fail;
    }
    if (get64(h + 56) != io_checksum(h, 56, 1)) {
        rc = dpt_set_error(DPT_EFORMAT, "%s: corrupt header (checksum mismatch)", path);
        goto fail;
    }
    uint32_t version = get32(h + 8), hbytes = get32(h + 12), kind = get32(h + 40),
             classes = get32(h + 44);
    uint64_t n = get64(h + 16), d = get64(h + 24), ld = get64(h + 32);
    if (version != DPTB_VERSION) {
        rc = dpt_set_error(DPT_EFORMAT, "%s: .dptb version %u, this dpt reads version %d", path,
                           version, DPTB_VERSION);
        goto fail;
    }
    if (hbytes != DPTB_HEADER || n == 0 || d == 0 || n > SIZE_MAX / 2 || d > SIZE_MAX / 2 ||
        ld != dpt_row_stride((size_t)d) || kind > DPT_LABEL_CLASS || classes > 1000000) {
        rc = dpt_set_error(
            DPT_EFORMAT, "%s: inconsistent header (n %llu, d %llu, stride %llu, label kind %u)",
            path, (unsigned long long)n, (unsigned long long)d, (unsigned long long)ld, kind);
        goto fail;
    }
    size_t want = dptb_size((size_t)n, (size_t)d);
    if (want == 0 || size < want) {
        rc = dpt_set_error(DPT_EFORMAT,
                           "%s: truncated: %llu x %llu rows need %zu bytes, the file has %zu", path,
                           (unsigned long long)n, (unsigned long long)d, want, size);
        goto fail;
    }
    if (size > want) {
        rc = dpt_set_error(DPT_EFORMAT, "%s: %zu bytes of trailing data after the rows", path,
                           size - want);
        goto fail;
    }
    if (o->features && o->features != d) {
        rc = dpt_set_error(DPT_EFORMAT, "%s: %llu features, expected %zu", path,
                           (unsigned long long)d, o->features);
        goto fail;
    }
    /* copy-on-write: standardizing in place touches only private pages */
    m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
        rc = dpt_set_error(DPT_EIO, "%s: cannot map: %s", path, strerror(errno));
        goto fail;
    }
    close(fd);
    fd = -1;
    float *X = (float *)((char *)m + DPTB_HEADER);
    float *y = X + (size_t)n * ld;
    if (data_checksum(X, (size_t)n * ld, y, (size_t)n, o->nthreads) != get64(h + 48)) {
        rc = dpt_set_error(DPT_EFORMAT, "%s: corrupt data (checksum mismatch)", path);
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        if (!isfinite(y[i])) {
            rc = dpt_set_error(DPT_EFORMAT, "%s: label of row %zu is not finite", path, i + 1);
            goto fail;
        }
    ds->n = (size_t)n;
    ds->d = (size_t)d;
    ds->ld = (size_t)ld;
    ds->X = X;
    ds->y = y;
    ds->label_kind = (dpt_label_kind)kind;
    ds->classes = (int)classes;
    ds->mem_ = m;
    ds->mem_len_ = size;
    ds->mem_mapped_ = 1;
    return 0;
fail:
    if (m != MAP_FAILED) munmap(m, size);
    if (fd >= 0) close(fd);
    return rc;
}

int io_save_dptb(const dpt_dataset *ds, const char *path)
{
    unsigned char h[DPTB_HEADER];
    memset(h, 0, sizeof h);
    memcpy(h, DPTB_MAGIC, 8);
    put32(h + 8, DPTB_VERSION);
    put32(h + 12, DPTB_HEADER);
    put64(h + 16, ds->n);
    put64(h + 24, ds->d);
    put64(h + 32, ds->ld);
    put32(h + 40, (uint32_t)ds->label_kind);
    put32(h + 44, ds->classes > 0 ? (uint32_t)ds->classes : 0);
    put64(h + 48, data_checksum(ds->X, ds->n * ds->ld, ds->y, ds->n, 0));
    put64(h + 56, io_checksum(h, 56, 1));
    io_out w;
    int rc = io_out_open(&w, path);
    if (rc) return rc;
    io_out_write(&w, h, sizeof h);
    io_out_write(&w, ds->X, ds->n * ds->ld * sizeof(float));
    io_out_write(&w, ds->y, ds->n * sizeof(float));
    static const float zeros[16];
    io_out_write(&w, zeros, (dpt_pad_floats(ds->n) - ds->n) * sizeof(float));
    return io_out_commit(&w);
}
