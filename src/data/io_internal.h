/* Shared pieces of the loaders: the whole-file view, error messages in the
 * "FILE:LINE:COL: problem" form, the memory estimate, and the number parser
 * every text format uses. */
#ifndef DPT_DATA_IO_INTERNAL_H
#define DPT_DATA_IO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dpt/file.h"
#include "dpt/io.h"

/* Threads for a parallel region of the loaders and generators: nthreads,
 * or the OpenMP default when <= 0, bounded by 4 x the hardware threads
 * (at most 4096). The results never depend on the count, and a team of
 * tens of thousands (a stray OMP_NUM_THREADS) overflows libgomp's stack. */
int io_nthreads(int nthreads);

/* An input's bytes: a regular file memory-mapped, anything else (a pipe,
 * standard input, a device) read to its end once. */
typedef struct io_file {
    const char *buf;
    size_t len;
    int regular; /* a regular file, which the binary loaders may reopen */
    void *map_;
    size_t map_len_;
    char *heap_;
} io_file;

/* Open path ("-": standard input) and map or read it; "FILE: problem" on
 * failure. What is read from a stream is bounded by opts->max_bytes (or
 * dpt_mem_available) and IO_MAX_LINE, and its first block must be text of
 * format want (AUTO: whatever io_sniff says), or IDX; .dptb is read from
 * regular files only. An empty file has len 0 (the caller names
 * the problem). */
int io_file_open(io_file *f, const char *path, const dpt_load_opts *o, dpt_format want);

/* The most one line of a text file may hold: a longer one is refused (a
 * stream that never ends a line would otherwise grow without bound). */
#define IO_MAX_LINE ((size_t)64 << 20)
/* Bytes of a text input checked for binary data up front. */
#define IO_TEXT_CHECK ((size_t)64 << 10)

/* The format of an input from its first bytes (dpt_format_detect). */
dpt_format io_sniff(const char *b, size_t len);
/* Fail with "FILE: binary data, not CSV text (byte 0x00 at offset N)"
 * when the first IO_TEXT_CHECK bytes hold a control byte other than tab,
 * newline, CR, VT and FF. f names the format expected. */
int io_check_text(const char *name, const char *b, size_t len, dpt_format f);
void io_file_close(io_file *f);

/* The name messages use for path: "<stdin>" for "-". */
const char *io_display_name(const char *path);
/* Bytes for a message: "17.2 GB", "27.2 MB", "0.6 kB". */
const char *io_size_text(char *buf, size_t cap, size_t bytes);

/* Fail unless an n x d dataset fits under opts->max_bytes (or
 * dpt_mem_available), before anything is allocated: a sparse or
 * compressed file can describe far more than it holds. */
int io_check_memory(const char *path, const dpt_load_opts *o, size_t n, size_t d);
/* Bytes for an n x d dataset, or SIZE_MAX when that overflows. */
size_t io_dataset_bytes(size_t n, size_t d);

/* Prefix the last error message with "PATH: " and return code. The
 * message is copied first: formatting it into the thread-local buffer it
 * is read from garbled it. */
int io_error_prefix(int code, const char *path);

/* Copy a token for a message: at most 24 characters, unprintable bytes
 * shown as \xHH. */
void io_token(char *out, size_t cap, const char *p, size_t len);

/* Infer label_kind and classes from y (all finite). */
void io_infer_labels(dpt_dataset *ds);

/* The text loaders parse f's bytes; path names it in messages. */
int io_load_csv(const char *path, const io_file *f, const dpt_load_opts *o, dpt_dataset *ds);
int io_load_svmlight(const char *path, const io_file *f, const dpt_load_opts *o, dpt_dataset *ds);
/* IDX (plain or gzip) from f's bytes too; the labels file it opens
 * itself. */
int io_load_idx(const char *path, const io_file *f, const dpt_load_opts *o, dpt_dataset *ds);
/* .dptb maps path itself (a regular file: its rows stay in the mapping). */
int io_load_dptb(const char *path, const dpt_load_opts *o, dpt_dataset *ds);
int io_save_csv(const dpt_dataset *ds, const char *path, const dpt_save_opts *o);
int io_save_svmlight(const dpt_dataset *ds, const char *path, const dpt_save_opts *o);
int io_save_dptb(const dpt_dataset *ds, const char *path);

/* Output through the one atomic writer (dpt/file.h): a temporary file
 * beside path, renamed on commit; links followed, devices and FIFOs written
 * through, "-" standard output. */
typedef struct io_out {
    dpt_out_file o;
} io_out;

int io_out_open(io_out *w, const char *path);
void io_out_write(io_out *w, const void *p, size_t len);
/* Flush, fsync and rename; on any earlier failure remove the temporary. */
int io_out_commit(io_out *w);
void io_out_abort(io_out *w);

/* Row ranges of a text buffer for parallel parsing: chunk c covers bytes
 * [start[c], start[c+1]) and begins at line first_line[c] (1-based); cuts
 * fall just after a newline. */
typedef struct io_chunks {
    int n;
    size_t *start;       /* n + 1 offsets */
    size_t *first_line;  /* n entries */
    size_t *lines;       /* newline-terminated or final lines per chunk */
    size_t longest;      /* bytes of the longest line, without its newline */
    size_t longest_line; /* its line number */
} io_chunks;

/* Fail when a line of c is longer than IO_MAX_LINE ("FILE:LINE: ..."). */
int io_chunks_check_lines(const io_chunks *c, const char *path);

int io_chunks_make(io_chunks *c, const char *buf, size_t len, size_t first_line, int nthreads);
void io_chunks_free(io_chunks *c);

/* Per-chunk error, reported by the earliest failing chunk. */
typedef struct io_err {
    size_t line, col; /* line 0: no error */
    int code;
    char msg[300];
} io_err;

/* 64-bit checksum of a byte range, computed over 1 MiB blocks in parallel;
 * the value does not depend on the thread count. */
uint64_t io_checksum(const void *p, size_t len, int nthreads);

/* The pieces of io_checksum, for .dptb's table of block hashes: a len-byte
 * range is cut into io_checksum_blocks(len) = len / IO_CHECKSUM_BLOCK + 1
 * blocks (the last one short, possibly empty); io_checksum_block hashes
 * block k of the range starting at p; io_checksum_chain folds the table of
 * every block hash into io_checksum's value, so
 * io_checksum_chain(table of p, len) == io_checksum(p, len, any). */
#define IO_CHECKSUM_BLOCK ((size_t)1 << 20)
size_t io_checksum_blocks(size_t len);
uint64_t io_checksum_block(const void *p, size_t len, size_t k);
uint64_t io_checksum_chain(const uint64_t *hashes, size_t len);
/* Every block hash of the range into hashes (io_checksum_blocks(len)
 * entries), in parallel. */
void io_checksum_table(const void *p, size_t len, uint64_t *hashes, int nthreads);

/* What a dataset owns: the block holding X and y, from dpt_alloc or a
 * mapping (anonymous or a .dptb file). */
struct dpt_dataset_mem {
    void *base;
    size_t len;
    int mapped;
};
/* Make ds own base (len bytes, mapped or from dpt_alloc); on failure
 * (DPT_ENOMEM) base is left to the caller. */
int io_dataset_adopt(dpt_dataset *ds, void *base, size_t len, int mapped);
/* The block ds owns and whether it is a mapping (for tests). */
static inline const void *io_dataset_base(const dpt_dataset *ds)
{
    return ds->mem ? ds->mem->base : NULL;
}
static inline int io_dataset_mapped(const dpt_dataset *ds)
{
    return ds->mem && ds->mem->mapped;
}

/* Per-rank loading. Check part (sorted, disjoint, non-empty ranges within
 * n rows; "WHAT: problem" otherwise, DPT_EINVAL) and merge adjacent ranges
 * into *out (malloc'd, *nout ranges). *out is NULL when part is NULL or
 * covers all n rows; a non-NULL part of no ranges holds no rows (*out is
 * then a non-NULL allocation with *nout 0). */
int io_part_merge(const char *what, const dpt_row_range *part, size_t npart, size_t n,
                  dpt_row_range **out, size_t *nout);
/* An n x d dataset in an anonymous, zero-filled mapping that reserves
 * nothing: pages cost memory only once written, so the rows a part leaves
 * out cost none. X and y as dpt_dataset_alloc lays them out. */
int io_dataset_alloc_mapped(dpt_dataset *ds, size_t n, size_t d);

/* ---- numbers ----
 * Decimal floats: [+-]digits[.digits][(e|E)[+-]digits]. Up to 19
 * significant digits and exponents within +-22 take Clinger's fast path
 * (one correctly rounded double operation), whose result is correctly
 * rounded to float unless the double lies exactly on a float rounding
 * midpoint; those, and longer inputs, go to strtof. So the result always
 * equals strtof's. */

enum { IO_NUM_OK = 0, IO_NUM_BAD = 1, IO_NUM_RANGE = 2 };

float io_parse_f32_slow(const char *s, size_t len, int *status);

static const double io_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                    1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                    1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Parse a number at p (< end); returns the first byte after it. status
 * gets IO_NUM_OK, IO_NUM_BAD (no number here) or IO_NUM_RANGE (overflows
 * float); NaN and Inf spellings are IO_NUM_BAD. */
static inline const char *io_parse_f32(const char *p, const char *end, float *out, int *status)
{
    const char *s = p;
    int neg = 0;
    if (p < end && (*p == '-' || *p == '+')) {
        neg = *p == '-';
        p++;
    }
    uint64_t m = 0;
    int nd = 0, exp10 = 0, dropped = 0;
    const char *d0 = p;
    while (p < end && (unsigned)(*p - '0') < 10) {
        unsigned c = (unsigned)(*p - '0');
        if (nd < 19) {
            m = m * 10 + c;
            nd += m != 0;
        } else {
            exp10++;
            dropped |= c != 0;
        }
        p++;
    }
    size_t ndig = (size_t)(p - d0);
    if (p < end && *p == '.') {
        p++;
        const char *f0 = p;
        while (p < end && (unsigned)(*p - '0') < 10) {
            unsigned c = (unsigned)(*p - '0');
            if (nd < 19) {
                m = m * 10 + c;
                nd += m != 0;
                exp10--;
            } else {
                dropped |= c != 0;
            }
            p++;
        }
        ndig += (size_t)(p - f0);
    }
    if (ndig == 0) {
        *status = IO_NUM_BAD;
        return s;
    }
    if (p < end && (*p | 0x20) == 'e') {
        const char *e = p + 1;
        int eneg = 0;
        if (e < end && (*e == '-' || *e == '+')) {
            eneg = *e == '-';
            e++;
        }
        if (e >= end || (unsigned)(*e - '0') >= 10) {
            *status = IO_NUM_BAD;
            return s;
        }
        int ev = 0;
        while (e < end && (unsigned)(*e - '0') < 10) {
            if (ev < 100000) ev = ev * 10 + (*e - '0');
            e++;
        }
        exp10 += eneg ? -ev : ev;
        p = e;
    }
    if (!dropped && m <= (1ULL << 53) && exp10 >= -22 && exp10 <= 22) {
        double v = (double)m;
        v = exp10 < 0 ? v / io_pow10[-exp10] : v * io_pow10[exp10];
        uint64_t bits;
        memcpy(&bits, &v, sizeof bits);
        if ((bits & 0x1FFFFFFFULL) != 0x10000000ULL) {
            float f = (float)v;
            *out = neg ? -f : f;
            *status = IO_NUM_OK;
            return p;
        }
    }
    *out = io_parse_f32_slow(s, (size_t)(p - s), status);
    return p;
}

#endif
