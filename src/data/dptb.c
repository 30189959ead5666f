/* dpt's binary data format. A 64-byte little-endian header, then the rows
 * exactly as they sit in memory (n x ld float32, padding zero, so every row
 * is 64-byte aligned in the file), then the n labels zero-padded to 64
 * bytes, then (version 2) the table of the X region's block hashes. The
 * loader maps the file copy-on-write and points X and y into the mapping:
 * nothing is copied.
 *
 *   0  magic "DPTB\r\n\x1a\n"   8  u32 version (2; 1 is still read)
 *  12  u32 header bytes (64)
 *  16  u64 n                   24  u64 d            32 u64 ld
 *  40  u32 label kind          44  u32 classes
 *  48  u64 checksum of X then y: io_checksum(X) * 0x9E3779B97F4A7C15 ^
 *      io_checksum(y), over the n * ld * 4 bytes of X and the n * 4 of y
 *  56  u64 io_checksum of bytes 0..55
 *  64  X: n * ld float32                then y: n float32, zeros to 64 bytes
 *  version 2 only, right after y's padding (64-byte aligned):
 *      nb u64: the hash of every 1 MiB block of X, nb = X bytes / 1 MiB + 1
 *      (the last block short, possibly empty), exactly the block values
 *      io_checksum(X) folds, so io_checksum(X) follows from the table alone.
 *      The file ends there.
 *
 * Version 1 is checked whole. Version 2 lets one process read part of the
 * rows (per-rank loading, dpt_load_opts.part): the table is checked against
 * the header (with the labels, which are always read whole), then only the
 * blocks that overlap the wanted rows are hashed, so the rest of X is never
 * read. A load of every row hashes every block. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
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
#define DPTB_VERSION 2
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

/* Version 2's table: nb hashes after the padded labels. */
static size_t table_blocks(size_t n, size_t ld)
{
    return io_checksum_blocks(n * ld * sizeof(float));
}

/* Zero bytes [p, p + len) of a private mapping: whole pages are replaced by
 * fresh anonymous ones (no copy of the file's page), the ends are written. */
static void zero_mapped(char *p, size_t len)
{
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + pg - 1) / pg * pg, b = ((uintptr_t)p + len) / pg * pg;
    if (b > a && mmap((void *)a, b - a, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
        memset(p, 0, a - (uintptr_t)p);
        memset((void *)b, 0, (uintptr_t)p + len - b);
        return;
    }
    memset(p, 0, len);
}

/* Version 2 after the header: the table against the header, then the blocks
 * of X that hold the rows of r[0..nr) (every block when r is NULL), then
 * the held labels. */
static int check_v2(const char *path, const unsigned char *h, const float *X, float *y, size_t n,
                    size_t ld, const dpt_row_range *r, size_t nr, int nthreads)
{
    const size_t xbytes = n * ld * sizeof(float), rowbytes = ld * sizeof(float);
    const size_t nb = table_blocks(n, ld);
    const uint64_t *tab = (const uint64_t *)(y + dpt_pad_floats(n)); /* 64-byte aligned */
    uint64_t hx = io_checksum_chain(tab, xbytes), hy = io_checksum(y, n * sizeof(float), nthreads);
    if ((hx * 0x9E3779B97F4A7C15ULL ^ hy) != get64(h + 48))
        return dpt_set_error(DPT_EFORMAT, "%s: corrupt labels or block table (checksum mismatch)",
                             path);
    unsigned char *need = NULL;
    if (r) {
        need = calloc(nb, 1);
        if (!need) return dpt_set_error(DPT_ENOMEM, "%s: out of memory", path);
        for (size_t i = 0; i < nr; i++)
            for (size_t k = r[i].lo * rowbytes / IO_CHECKSUM_BLOCK,
                        e = (r[i].hi * rowbytes - 1) / IO_CHECKSUM_BLOCK;
                 k <= e; k++)
                need[k] = 1;
    }
    size_t bad = SIZE_MAX;
    int nt = io_nthreads(nthreads);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) reduction(min : bad) if (nb > 1)
    for (size_t k = 0; k < nb; k++)
        if ((!need || need[k]) && io_checksum_block(X, xbytes, k) != tab[k] && k < bad) bad = k;
    free(need);
    if (bad != SIZE_MAX) {
        size_t b0 = bad * IO_CHECKSUM_BLOCK, b1 = b0 + IO_CHECKSUM_BLOCK;
        if (b1 > xbytes) b1 = xbytes;
        return dpt_set_error(DPT_EFORMAT, "%s: corrupt data in rows %zu-%zu (checksum mismatch)",
                             path, b0 / rowbytes + 1, (b1 + rowbytes - 1) / rowbytes);
    }
    const dpt_row_range all = {0, n};
    if (!r) {
        r = &all;
        nr = 1;
    }
    for (size_t i = 0; i < nr; i++)
        for (size_t j = r[i].lo; j < r[i].hi; j++)
            if (!isfinite(y[j]))
                return dpt_set_error(DPT_EFORMAT, "%s: label of row %zu is not finite", path,
                                     j + 1);
    /* the labels of the rows left out read as 0 */
    if (r == &all) return 0;
    size_t at = 0;
    for (size_t i = 0; i <= nr; i++) {
        size_t lo = i < nr ? r[i].lo : n;
        if (lo > at) zero_mapped((char *)(y + at), (lo - at) * sizeof(float));
        if (i < nr) at = r[i].hi;
    }
    return 0;
}

/* The 64 header bytes, their magic and checksum checked. */
static int header_read(const char *path, int fd, unsigned char *h)
{
    ssize_t got = pread(fd, h, DPTB_HEADER, 0);
    if (got < 0) return dpt_set_error(DPT_EIO, "%s: %s", path, strerror(errno));
    if (got < 8 || memcmp(h, DPTB_MAGIC, 8))
        return dpt_set_error(DPT_EFORMAT, "%s: not a .dptb file (bad magic)", path);
    if (got < DPTB_HEADER)
        return dpt_set_error(DPT_EFORMAT, "%s: truncated: %zd of the %d header bytes", path, got,
                             DPTB_HEADER);
    if (get64(h + 56) != io_checksum(h, 56, 1))
        return dpt_set_error(DPT_EFORMAT, "%s: corrupt header (checksum mismatch)", path);
    return 0;
}

int dpt_dptb_rows(const char *path, size_t *n)
{
    *n = 0;
    unsigned char h[DPTB_HEADER];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return dpt_set_error(DPT_EIO, "%s: %s", path, strerror(errno));
    int rc = header_read(path, fd, h);
    close(fd);
    if (rc) return rc;
    uint64_t rows = get64(h + 16);
    if (rows == 0 || rows > SIZE_MAX / 2)
        return dpt_set_error(DPT_EFORMAT, "%s: inconsistent header (n %llu)", path,
                             (unsigned long long)rows);
    *n = (size_t)rows;
    return 0;
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
    dpt_row_range *part = NULL;
    size_t npart = 0;
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
    if ((rc = header_read(path, fd, h))) goto fail;
    uint32_t version = get32(h + 8), hbytes = get32(h + 12), kind = get32(h + 40),
             classes = get32(h + 44);
    uint64_t n = get64(h + 16), d = get64(h + 24), ld = get64(h + 32);
    if (version != 1 && version != DPTB_VERSION) {
        rc = dpt_set_error(DPT_EFORMAT, "%s: .dptb version %u, this dpt reads versions 1 to %d",
                           path, version, DPTB_VERSION);
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
    if (want && version >= 2) {
        size_t tb = table_blocks((size_t)n, (size_t)ld) * sizeof(uint64_t);
        want = want > SIZE_MAX - tb ? 0 : want + tb;
    }
    if (want == 0 || size < want) {
        rc = dpt_set_error(DPT_EFORMAT,
                           "%s: truncated: %llu x %llu rows need %zu bytes, the file has %zu", path,
                           (unsigned long long)n, (unsigned long long)d, want, size);
        goto fail;
    }
    if (size > want) {
        rc = dpt_set_error(DPT_EFORMAT, "%s: %zu bytes of trailing data after the %s", path,
                           size - want, version >= 2 ? "block table" : "rows");
        goto fail;
    }
    if (o->features && o->features != d) {
        rc = dpt_set_error(DPT_EFORMAT, "%s: %llu features, expected %zu", path,
                           (unsigned long long)d, o->features);
        goto fail;
    }
    /* version 1 has one checksum over everything: it is read whole */
    if (version >= 2 && (rc = io_part_merge(path, o->part, o->npart, (size_t)n, &part, &npart)))
        goto fail;
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
    if (version >= 2) {
        if ((rc = check_v2(path, h, X, y, (size_t)n, (size_t)ld, part, npart, o->nthreads)))
            goto fail;
    } else {
        if (data_checksum(X, (size_t)n * ld, y, (size_t)n, o->nthreads) != get64(h + 48)) {
            rc = dpt_set_error(DPT_EFORMAT, "%s: corrupt data (checksum mismatch)", path);
            goto fail;
        }
        for (size_t i = 0; i < n; i++)
            if (!isfinite(y[i])) {
                rc = dpt_set_error(DPT_EFORMAT, "%s: label of row %zu is not finite", path, i + 1);
                goto fail;
            }
    }
    if ((rc = io_dataset_adopt(ds, m, size, 1))) goto fail;
    ds->n = (size_t)n;
    ds->d = (size_t)d;
    ds->ld = (size_t)ld;
    ds->X = X;
    ds->y = y;
    ds->label_kind = (dpt_label_kind)kind;
    ds->classes = (int)classes;
    ds->part = part;
    ds->npart = npart;
    return 0;
fail:
    free(part);
    if (m != MAP_FAILED) munmap(m, size);
    if (fd >= 0) close(fd);
    return rc;
}

int io_save_dptb(const dpt_dataset *ds, const char *path)
{
    const size_t xbytes = ds->n * ds->ld * sizeof(float), nb = io_checksum_blocks(xbytes);
    uint64_t *tab = malloc(nb * sizeof *tab);
    if (!tab) return dpt_set_error(DPT_ENOMEM, "%s: out of memory", path);
    io_checksum_table(ds->X, xbytes, tab, 0);
    uint64_t hx = io_checksum_chain(tab, xbytes), hy = io_checksum(ds->y, ds->n * sizeof(float), 0);
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
    put64(h + 48, hx * 0x9E3779B97F4A7C15ULL ^ hy);
    put64(h + 56, io_checksum(h, 56, 1));
    io_out w;
    int rc = io_out_open(&w, path);
    if (rc) {
        free(tab);
        return rc;
    }
    io_out_write(&w, h, sizeof h);
    io_out_write(&w, ds->X, xbytes);
    io_out_write(&w, ds->y, ds->n * sizeof(float));
    static const float zeros[16];
    io_out_write(&w, zeros, (dpt_pad_floats(ds->n) - ds->n) * sizeof(float));
    io_out_write(&w, tab, nb * sizeof *tab); /* little-endian, as the floats */
    free(tab);
    return io_out_commit(&w);
}
