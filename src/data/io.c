/* Plumbing shared by the loaders and writers: an input mapped or read once
 * (format sniffing, the text check), the memory estimate, atomic output, newline-aligned chunks for
 * parallel parsing and the block checksum of .dptb files. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "data/io_internal.h"
#include "dpt/error.h"

int io_nthreads(int nthreads)
{
    int hw = omp_get_num_procs();
    int cap = hw < 1 ? 4 : hw > 1024 ? 4096 : 4 * hw;
    int nt = nthreads > 0 ? nthreads : omp_get_max_threads();
    return nt < 1 ? 1 : nt > cap ? cap : nt;
}

const char *io_display_name(const char *path)
{
    return strcmp(path, "-") ? path : "<stdin>";
}

/* Guess from the first bytes: binary magics, else svmlight when the first
 * data line has INDEX:VALUE pairs, else CSV. */
dpt_format io_sniff(const char *b, size_t len)
{
    size_t n = len < 4096 ? len : 4096;
    if (n >= 8 && !memcmp(b, "DPTB\r\n\x1a\n", 8)) return DPT_FORMAT_DPTB;
    if (n >= 2 && (unsigned char)b[0] == 0x1f && (unsigned char)b[1] == 0x8b) return DPT_FORMAT_IDX;
    if (n >= 4 && b[0] == 0 && b[1] == 0 && b[3] > 0 && b[3] < 8) return DPT_FORMAT_IDX;
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && b[e] != '\n') e++;
        size_t s = i;
        while (s < e && (b[s] == ' ' || b[s] == '\t' || b[s] == '\r')) s++;
        if (s < e && b[s] != '#') {
            /* label, whitespace, then a token with a colon */
            while (s < e && b[s] != ' ' && b[s] != '\t') s++;
            while (s < e && (b[s] == ' ' || b[s] == '\t')) s++;
            size_t t = s;
            while (t < e && b[t] != ' ' && b[t] != '\t' && b[t] != ':' && b[t] != ',') t++;
            return t < e && t > s && b[t] == ':' ? DPT_FORMAT_SVMLIGHT : DPT_FORMAT_CSV;
        }
        i = e + 1;
    }
    return DPT_FORMAT_CSV;
}

int io_check_text(const char *name, const char *b, size_t len, dpt_format f)
{
    size_t n = len < IO_TEXT_CHECK ? len : IO_TEXT_CHECK;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)b[i];
        /* text has no control bytes but tab, newline, CR, VT and FF */
        if (c < 0x20 && !(c >= '\t' && c <= '\r'))
            return dpt_set_error(DPT_EFORMAT,
                                 "%s: binary data, not %s text (byte 0x%02X at offset %zu)", name,
                                 f == DPT_FORMAT_SVMLIGHT ? "svmlight" : "CSV", c, i);
    }
    return 0;
}

/* A stream is read once and can be endless (/dev/zero): its first block
 * must already look like text, and no line may outgrow IO_MAX_LINE. */
static int stream_block_check(const char *name, const char *buf, size_t len, dpt_format want)
{
    dpt_format f = want != DPT_FORMAT_AUTO ? want : io_sniff(buf, len);
    if (f == DPT_FORMAT_IDX) return 0;
    if (f == DPT_FORMAT_DPTB)
        return dpt_set_error(DPT_ENOTSUP,
                             "%s: %s data is read from a regular file only, not a pipe or device "
                             "(save it to a file first)",
                             name, dpt_format_name(f));
    return io_check_text(name, buf, len, f);
}

/* Read a pipe or device to its end, into memory: it can be read only
 * once, so every later look (the format, the rows) works on these bytes. */
static int read_stream(io_file *f, int fd, const char *name, const dpt_load_opts *o,
                       dpt_format want)
{
    if (want == DPT_FORMAT_DPTB) return stream_block_check(name, "", 0, want);
    size_t limit = o && o->max_bytes ? o->max_bytes : dpt_mem_available();
    size_t cap = 1 << 16, len = 0, line = 1, line_start = 0;
    int checked = 0, rc = 0;
    char *buf = malloc(cap);
    if (!buf) return dpt_set_error(DPT_ENOMEM, "%s: out of memory while reading", name);
    for (;;) {
        if (len == cap) {
            if (cap >= limit) {
                char size[32];
                rc = dpt_set_error(DPT_ENOMEM, "%s: more than the %s of memory %s", name,
                                   io_size_text(size, sizeof size, limit),
                                   o && o->max_bytes ? "allowed" : "available");
                break;
            }
            size_t nc = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
            char *nb = realloc(buf, nc);
            if (!nb) {
                rc = dpt_set_error(DPT_ENOMEM, "%s: out of memory while reading", name);
                break;
            }
            buf = nb;
            cap = nc;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rc = dpt_set_error(DPT_EIO, "%s: %s", name, strerror(errno));
            break;
        }
        for (const char *p = buf + len, *e = buf + len + r;
             (p = memchr(p, '\n', (size_t)(e - p)));) {
            line++;
            line_start = (size_t)(++p - buf);
        }
        len += (size_t)r;
        if (!checked && (r == 0 || len >= IO_TEXT_CHECK)) {
            checked = 1;
            if ((rc = stream_block_check(name, buf, len, want))) break;
        }
        if (len - line_start > IO_MAX_LINE) {
            rc = dpt_set_error(DPT_EFORMAT,
                               "%s:%zu: line longer than %zu MiB, the most a line may hold", name,
                               line, IO_MAX_LINE >> 20);
            break;
        }
        if (r == 0) break;
    }
    if (rc) {
        free(buf);
        return rc;
    }
    f->heap_ = buf;
    f->buf = buf;
    f->len = len;
    return 0;
}

int io_file_open(io_file *f, const char *path, const dpt_load_opts *o, dpt_format want)
{
    memset(f, 0, sizeof *f);
    f->buf = "";
    const char *name = io_display_name(path);
    int is_stdin = !strcmp(path, "-");
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return dpt_set_error(DPT_EIO, "%s: %s", name, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st)) {
        rc = dpt_set_error(DPT_EIO, "%s: %s", name, strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        rc = dpt_set_error(DPT_EIO, "%s: is a directory, not a data file", name);
    } else if (S_ISREG(st.st_mode)) {
        f->regular = 1;
        if (st.st_size > 0) {
            void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (m == MAP_FAILED) {
                rc = dpt_set_error(DPT_EIO, "%s: cannot map: %s", name, strerror(errno));
            } else {
                madvise(m, (size_t)st.st_size, MADV_SEQUENTIAL);
                f->map_ = m;
                f->map_len_ = (size_t)st.st_size;
                f->buf = m;
                f->len = (size_t)st.st_size;
            }
        }
    } else {
        rc = read_stream(f, fd, name, o, want);
    }
    if (!is_stdin) close(fd);
    return rc;
}

void io_file_close(io_file *f)
{
    if (f->map_) munmap(f->map_, f->map_len_);
    free(f->heap_);
    memset(f, 0, sizeof *f);
}

/* First number in a small file, or 0. */
static unsigned long long read_number(const char *path)
{
    FILE *f = fopen(path, "r");
    unsigned long long v = 0;
    if (f) {
        if (fscanf(f, "%llu", &v) != 1) v = 0;
        fclose(f);
    }
    return v;
}

size_t dpt_mem_available(void)
{
    size_t avail = SIZE_MAX;
    FILE *m = fopen("/proc/meminfo", "r");
    if (m) {
        char line[256];
        unsigned long long kb;
        while (fgets(line, sizeof line, m))
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
                avail = kb > SIZE_MAX / 1024 ? SIZE_MAX : (size_t)kb * 1024;
                break;
            }
        fclose(m);
    }
    if (avail == SIZE_MAX) {
        long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
        if (pages > 0 && psize > 0) avail = (size_t)pages * (size_t)psize;
    }
    /* a container's limit (cgroup v2) can be far below the machine's memory */
    unsigned long long lim = read_number("/sys/fs/cgroup/memory.max");
    if (lim) {
        unsigned long long used = read_number("/sys/fs/cgroup/memory.current");
        size_t left = used < lim ? (size_t)(lim - used) : 0;
        if (left < avail) avail = left;
    }
    /* so can the process's own (ulimit -v, -d): past it malloc fails, or
     * with overcommit the pages are promised and never there */
    unsigned long long vm = 0, data = 0, page = (unsigned long long)sysconf(_SC_PAGESIZE);
    FILE *sm = fopen("/proc/self/statm", "r");
    if (sm) {
        if (fscanf(sm, "%llu %*u %*u %*u %*u %llu", &vm, &data) != 2) vm = data = 0;
        fclose(sm);
    }
    struct rlimit rl;
    if (!getrlimit(RLIMIT_AS, &rl) && rl.rlim_cur != RLIM_INFINITY) {
        unsigned long long used = vm * page;
        size_t left = used < rl.rlim_cur ? (size_t)(rl.rlim_cur - used) : 0;
        if (left < avail) avail = left;
    }
    if (!getrlimit(RLIMIT_DATA, &rl) && rl.rlim_cur != RLIM_INFINITY) {
        unsigned long long used = data * page;
        size_t left = used < rl.rlim_cur ? (size_t)(rl.rlim_cur - used) : 0;
        if (left < avail) avail = left;
    }
    return avail;
}

size_t io_dataset_bytes(size_t n, size_t d)
{
    size_t ld = dpt_row_stride(d);
    if (d > SIZE_MAX / 8 || ld == 0 || n > (SIZE_MAX / 8) / (ld + 1)) return SIZE_MAX;
    return (n * ld + dpt_pad_floats(n)) * sizeof(float);
}

const char *io_size_text(char *buf, size_t cap, size_t bytes)
{
    double b = (double)bytes;
    if (b >= 1e9)
        snprintf(buf, cap, "%.1f GB", b / 1e9);
    else if (b >= 1e6)
        snprintf(buf, cap, "%.1f MB", b / 1e6);
    else
        snprintf(buf, cap, "%.1f kB", b / 1e3);
    return buf;
}

int io_check_memory(const char *path, const dpt_load_opts *o, size_t n, size_t d)
{
    size_t bytes = io_dataset_bytes(n, d);
    size_t limit = o && o->max_bytes ? o->max_bytes : dpt_mem_available();
    if (bytes <= limit) return 0;
    const char *rs = n == 1 ? "" : "s", *fs = d == 1 ? "" : "s";
    if (bytes == SIZE_MAX)
        return dpt_set_error(DPT_ENOMEM,
                             "%s: %zu row%s x %zu feature%s would not fit in memory as dense "
                             "float32",
                             path, n, rs, d, fs);
    char need[32], have[32];
    return dpt_set_error(
        DPT_ENOMEM, "%s: %zu row%s x %zu feature%s need %s as dense float32; %s %s", path, n, rs, d,
        fs, io_size_text(need, sizeof need, bytes), io_size_text(have, sizeof have, limit),
        o && o->max_bytes ? "allowed" : "available");
}

int io_error_prefix(int code, const char *path)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", dpt_last_error());
    return dpt_set_error(code, "%s: %s", path, msg);
}

void io_token(char *out, size_t cap, const char *p, size_t len)
{
    size_t k = 0;
    for (size_t i = 0; i < len && k + 5 < cap; i++) {
        unsigned char c = (unsigned char)p[i];
        if (i == 24) {
            memcpy(out + k, "...", 3);
            k += 3;
            break;
        }
        if (c >= 0x20 && c < 0x7f) {
            out[k++] = (char)c;
        } else {
            snprintf(out + k, cap - k, "\\x%02X", c);
            k += 4;
        }
    }
    out[k] = '\0';
}

void io_infer_labels(dpt_dataset *ds)
{
    int integral = 1;
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < ds->n; i++) {
        float v = ds->y[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        if (v != floorf(v)) integral = 0;
    }
    if (integral && lo >= 0 && hi <= 1) {
        ds->label_kind = DPT_LABEL_BINARY;
        ds->classes = 2;
    } else if (integral && lo >= 0 && hi < 1e6f) {
        ds->label_kind = DPT_LABEL_CLASS;
        ds->classes = (int)hi + 1;
    } else {
        ds->label_kind = DPT_LABEL_REAL;
        ds->classes = 0;
    }
}

float io_parse_f32_slow(const char *s, size_t len, int *status)
{
    char small[128], *tmp = small;
    if (len >= sizeof small && !(tmp = malloc(len + 1))) {
        *status = IO_NUM_BAD;
        return 0;
    }
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *end;
    errno = 0;
    float v = strtof(tmp, &end);
    int range = errno == ERANGE;
    int ok = end == tmp + len;
    if (tmp != small) free(tmp);
    if (!ok)
        *status = IO_NUM_BAD;
    else if (range && isinf(v))
        *status = IO_NUM_RANGE;
    else
        *status = IO_NUM_OK;
    return v;
}

/* ---- chunks ---- */

/* Newlines in [p, p + len), and the longest line (bytes, 0-based index). */
static size_t count_newlines(const char *p, size_t len, size_t *longest, size_t *longest_at)
{
    size_t c = 0, from = 0;
    *longest = *longest_at = 0;
    for (size_t i = 0; i < len; i++)
        if (p[i] == '\n') {
            if (i - from > *longest) {
                *longest = i - from;
                *longest_at = c;
            }
            from = i + 1;
            c++;
        }
    if (len - from > *longest) {
        *longest = len - from;
        *longest_at = c;
    }
    return c;
}

int io_chunks_make(io_chunks *c, const char *buf, size_t len, size_t first_line, int nthreads)
{
    memset(c, 0, sizeof *c);
    int nt = io_nthreads(nthreads);
    /* a few chunks per thread for balance; none under 256 KB */
    size_t want = (size_t)nt * 4, min_chunk = 256 << 10;
    if (want > len / min_chunk) want = len / min_chunk;
    if (want < 1) want = 1;
    if (want > 4096) want = 4096;
    c->start = malloc((want + 1) * sizeof(size_t));
    c->first_line = malloc(want * sizeof(size_t));
    c->lines = malloc(want * sizeof(size_t));
    size_t *longest = malloc(2 * want * sizeof(size_t));
    if (!c->start || !c->first_line || !c->lines || !longest) {
        free(longest);
        io_chunks_free(c);
        return dpt_set_error(DPT_ENOMEM, "out of memory");
    }
    size_t k = 0;
    c->start[0] = 0;
    for (size_t i = 1; i < want; i++) {
        size_t at = len / want * i;
        if (at <= c->start[k]) continue;
        const char *nl = memchr(buf + at, '\n', len - at);
        if (!nl) break;
        size_t cut = (size_t)(nl - buf) + 1;
        if (cut >= len) break;
        if (cut > c->start[k]) c->start[++k] = cut;
    }
    c->n = (int)k + 1;
    c->start[c->n] = len;
#pragma omp parallel for num_threads(nt) schedule(static, 1) if (c->n > 1)
    for (int i = 0; i < c->n; i++) {
        size_t a = c->start[i], b = c->start[i + 1];
        size_t nl = count_newlines(buf + a, b - a, &longest[2 * i], &longest[2 * i + 1]);
        /* a final line without a newline still counts */
        c->lines[i] = nl + (b > a && buf[b - 1] != '\n');
    }
    size_t line = first_line;
    for (int i = 0; i < c->n; i++) {
        c->first_line[i] = line;
        line += c->lines[i];
        if (longest[2 * i] > c->longest) {
            c->longest = longest[2 * i];
            c->longest_line = c->first_line[i] + longest[2 * i + 1];
        }
    }
    free(longest);
    return 0;
}

int io_chunks_check_lines(const io_chunks *c, const char *path)
{
    if (c->longest <= IO_MAX_LINE) return 0;
    return dpt_set_error(DPT_EFORMAT, "%s:%zu: line longer than %zu MiB, the most a line may hold",
                         path, c->longest_line, IO_MAX_LINE >> 20);
}

void io_chunks_free(io_chunks *c)
{
    free(c->start);
    free(c->first_line);
    free(c->lines);
    memset(c, 0, sizeof *c);
}

/* ---- checksum: four 64-bit lanes per 32 bytes (xxh64's round), per 1 MiB
 * block, then the block values folded in order ---- */

#define P1    0x9E3779B185EBCA87ULL
#define P2    0xC2B2AE3D27D4EB4FULL
#define P3    0x165667B19E3779F9ULL
#define BLOCK IO_CHECKSUM_BLOCK

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}
static inline uint64_t round64(uint64_t acc, uint64_t in)
{
    return rotl64(acc + in * P2, 31) * P1;
}
static inline uint64_t avalanche(uint64_t h)
{
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    return h ^ (h >> 32);
}

static uint64_t hash_block(const unsigned char *p, size_t len, uint64_t seed)
{
    uint64_t a = seed + P1 + P2, b = seed + P2, c = seed, d = seed - P1;
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        uint64_t w[4];
        memcpy(w, p + i, 32);
        a = round64(a, w[0]);
        b = round64(b, w[1]);
        c = round64(c, w[2]);
        d = round64(d, w[3]);
    }
    uint64_t h = rotl64(a, 1) + rotl64(b, 7) + rotl64(c, 12) + rotl64(d, 18) + len;
    for (; i < len; i++) h = rotl64(h ^ (p[i] * P3), 11) * P1;
    return avalanche(h);
}

size_t io_checksum_blocks(size_t len)
{
    return len / IO_CHECKSUM_BLOCK + 1;
}

uint64_t io_checksum_block(const void *data, size_t len, size_t k)
{
    size_t off = k * BLOCK;
    size_t l = len - off < BLOCK ? len - off : BLOCK;
    return hash_block((const unsigned char *)data + off, l, k);
}

/* The fold of io_checksum: length, then every block hash in order. */
static uint64_t chain_start(size_t len)
{
    return avalanche(len + P3);
}

uint64_t io_checksum_chain(const uint64_t *hashes, size_t len)
{
    uint64_t h = chain_start(len);
    for (size_t k = 0, nb = io_checksum_blocks(len); k < nb; k++) h = round64(h, hashes[k]);
    return avalanche(h);
}

void io_checksum_table(const void *data, size_t len, uint64_t *hashes, int nthreads)
{
    long long nb = (long long)io_checksum_blocks(len);
    int nt = io_nthreads(nthreads);
#pragma omp parallel for num_threads(nt) schedule(static) if (nb > 1)
    for (long long k = 0; k < nb; k++) hashes[k] = io_checksum_block(data, len, (size_t)k);
}

uint64_t io_checksum(const void *data, size_t len, int nthreads)
{
    size_t nb = io_checksum_blocks(len);
    uint64_t h = chain_start(len);
    uint64_t part[64];
    int nt = io_nthreads(nthreads);
    for (size_t b0 = 0; b0 < nb; b0 += 64) {
        size_t cnt = nb - b0 < 64 ? nb - b0 : 64;
#pragma omp parallel for num_threads(nt) schedule(static) if (cnt > 1)
        for (size_t k = 0; k < cnt; k++) part[k] = io_checksum_block(data, len, b0 + k);
        for (size_t k = 0; k < cnt; k++) h = round64(h, part[k]);
    }
    return avalanche(h);
}

/* ---- atomic output ---- */

int io_out_open(io_out *w, const char *path)
{
    return dpt_out_open(&w->o, path);
}

/* A write error shows in ferror(), which fails the commit. */
void io_out_write(io_out *w, const void *p, size_t len)
{
    if (len && !ferror(w->o.f)) fwrite(p, 1, len, w->o.f);
}

int io_out_commit(io_out *w)
{
    return dpt_out_commit(&w->o);
}

void io_out_abort(io_out *w)
{
    dpt_out_abort(&w->o);
}
