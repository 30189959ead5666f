/* svmlight / LIBSVM loader: "label [qid:N] index:value ... [# comment]"
 * with 1-based ascending indices. Chunks of lines are parsed in parallel
 * into sparse lists, then the dense rows are filled once the width (the
 * largest index, or the feature count given) is known. */
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/io_internal.h"
#include "dpt/error.h"

#define MAX_INDEX 2147483647UL

typedef struct entry {
    uint32_t idx; /* 1-based */
    float v;
} entry;

typedef struct part {
    entry *e;
    size_t ne;
    float *y;
    size_t *row_end; /* entries up to row r end at row_end[r] */
    size_t nr;
    size_t max_idx;
    io_err err;
} part;

static void perr(part *pt, size_t line, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void perr(part *pt, size_t line, size_t col, const char *fmt, ...)
{
    pt->err.line = line;
    pt->err.col = col;
    pt->err.code = DPT_EFORMAT;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pt->err.msg, sizeof pt->err.msg, fmt, ap);
    va_end(ap);
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}
static int ends_token(const char *p, const char *eol)
{
    return p == eol || is_ws(*p) || *p == '#';
}

static size_t tok_len(const char *p, const char *eol)
{
    const char *q = p;
    while (q < eol && !is_ws(*q)) q++;
    return (size_t)(q - p);
}

/* Parse the lines [p, end) of one chunk. Returns 0, or -1 with pt->err.
 * The arrays are sized for the worst case up front (a row per line, an
 * entry per 4 bytes: "1:1 "); pages never written are never touched. */
static int parse_part(part *pt, const char *p, const char *end, size_t lineno, size_t lines,
                      size_t features)
{
    char tok[128];
    pt->e = malloc(((size_t)(end - p) / 4 + 1) * sizeof(entry));
    pt->y = malloc((lines + 1) * sizeof(float));
    pt->row_end = malloc((lines + 1) * sizeof(size_t));
    if (!pt->e || !pt->y || !pt->row_end) goto oom;
    for (; p < end; lineno++) {
        const char *line = p;
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        const char *next = eol < end ? eol + 1 : end;
        while (p < eol && is_ws(*p)) p++;
        if (p == eol || *p == '#') {
            p = next;
            continue;
        }
        float label;
        int st;
        const char *q = io_parse_f32(p, eol, &label, &st);
        if (q == p || st != IO_NUM_OK || !ends_token(q, eol)) {
            io_token(tok, sizeof tok, p, tok_len(p, eol));
            perr(pt, lineno, (size_t)(p - line) + 1, "label '%s' %s", tok,
                 st == IO_NUM_RANGE ? "is out of float range" : "is not a number");
            return -1;
        }
        p = q;
        size_t prev = 0;
        for (;;) {
            while (p < eol && is_ws(*p)) p++;
            if (p == eol || *p == '#') break;
            const char *t = p;
            if (eol - p > 4 && !memcmp(p, "qid:", 4) && prev == 0) {
                p += 4;
                while (p < eol && (unsigned)(*p - '0') < 10) p++;
                if (p == t + 4 || !ends_token(p, eol)) {
                    io_token(tok, sizeof tok, t, tok_len(t, eol));
                    perr(pt, lineno, (size_t)(t - line) + 1, "'%s' is not qid:NUMBER", tok);
                    return -1;
                }
                continue;
            }
            size_t idx = 0;
            while (p < eol && (unsigned)(*p - '0') < 10) {
                if (idx <= MAX_INDEX) idx = idx * 10 + (size_t)(*p - '0');
                p++;
            }
            if (p == t || p == eol || *p != ':') {
                io_token(tok, sizeof tok, t, tok_len(t, eol));
                perr(pt, lineno, (size_t)(t - line) + 1, "'%s' is not INDEX:VALUE%s", tok,
                     p > t && (p == eol || is_ws(*p)) ? " (missing ':')" : "");
                return -1;
            }
            if (idx == 0) {
                perr(pt, lineno, (size_t)(t - line) + 1, "index 0: indices start at 1");
                return -1;
            }
            if (idx > MAX_INDEX) {
                io_token(tok, sizeof tok, t, (size_t)(p - t));
                perr(pt, lineno, (size_t)(t - line) + 1, "index %s is too large (at most %lu)", tok,
                     MAX_INDEX);
                return -1;
            }
            if (features && idx > features) {
                perr(pt, lineno, (size_t)(t - line) + 1,
                     "index %zu is beyond the %zu features expected", idx, features);
                return -1;
            }
            if (idx <= prev) {
                perr(pt, lineno, (size_t)(t - line) + 1,
                     "index %zu after %zu: indices must be ascending", idx, prev);
                return -1;
            }
            p++;
            float v;
            const char *vs = p;
            q = io_parse_f32(p, eol, &v, &st);
            if (q == p || st != IO_NUM_OK || !ends_token(q, eol)) {
                io_token(tok, sizeof tok, vs, tok_len(vs, eol));
                perr(pt, lineno, (size_t)(vs - line) + 1, "value '%s' of index %zu %s", tok, idx,
                     st == IO_NUM_RANGE && q != p ? "is out of float range"
                                                  : "is not a finite number");
                return -1;
            }
            p = q;
            prev = idx;
            if (v != 0) {
                pt->e[pt->ne].idx = (uint32_t)idx;
                pt->e[pt->ne].v = v;
                pt->ne++;
            }
        }
        if (prev > pt->max_idx) pt->max_idx = prev;
        pt->y[pt->nr] = label;
        pt->row_end[pt->nr] = pt->ne;
        pt->nr++;
        p = next;
    }
    return 0;
oom:
    perr(pt, lineno, 1, "out of memory");
    pt->err.code = DPT_ENOMEM;
    return -1;
}

int io_load_svmlight(const char *path, const io_file *f, const dpt_load_opts *o, dpt_dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    int rc = 0;
    io_chunks ch = {0};
    part *parts = NULL;
    if (f->len == 0) {
        rc = dpt_set_error(DPT_EFORMAT, "%s: empty file (no rows)", path);
        goto fail;
    }
    if ((rc = io_chunks_make(&ch, f->buf, f->len, 1, o->nthreads))) goto fail;
    if ((rc = io_chunks_check_lines(&ch, path))) goto fail;
    parts = calloc((size_t)ch.n, sizeof *parts);
    if (!parts) {
        rc = dpt_set_error(DPT_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    int nt = io_nthreads(o->nthreads);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (ch.n > 1)
    for (int i = 0; i < ch.n; i++)
        parse_part(&parts[i], f->buf + ch.start[i], f->buf + ch.start[i + 1], ch.first_line[i],
                   ch.lines[i], o->features);
    size_t n = 0, d = o->features;
    for (int i = 0; i < ch.n; i++) {
        if (parts[i].err.line) {
            rc = dpt_set_error(parts[i].err.code, "%s:%zu:%zu: %s", path, parts[i].err.line,
                               parts[i].err.col, parts[i].err.msg);
            goto fail;
        }
        n += parts[i].nr;
        if (!o->features && parts[i].max_idx > d) d = parts[i].max_idx;
    }
    if (n == 0) {
        rc = dpt_set_error(DPT_EFORMAT, "%s: no data rows (only comments or blank lines)", path);
        goto fail;
    }
    if (d == 0) {
        rc = dpt_set_error(
            DPT_EFORMAT,
            "%s: no features: no row has INDEX:VALUE pairs and no feature count was given", path);
        goto fail;
    }
    if ((rc = io_check_memory(path, o, n, d))) goto fail;
    if ((rc = dpt_dataset_alloc(ds, n, d, 0))) {
        rc = io_error_prefix(rc, path);
        goto fail;
    }
    size_t *row0 = malloc(((size_t)ch.n + 1) * sizeof *row0);
    if (!row0) {
        rc = dpt_set_error(DPT_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    row0[0] = 0;
    for (int i = 0; i < ch.n; i++) row0[i + 1] = row0[i] + parts[i].nr;
    int pm_only = 1, any_neg = 0;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (ch.n > 1)
    for (int i = 0; i < ch.n; i++) {
        const part *pt = &parts[i];
        size_t e0 = 0;
        for (size_t r = 0; r < pt->nr; r++) {
            float *x = ds->X + (row0[i] + r) * ds->ld;
            memset(x, 0, ds->ld * sizeof(float));
            for (size_t k = e0; k < pt->row_end[r]; k++) x[pt->e[k].idx - 1] = pt->e[k].v;
            e0 = pt->row_end[r];
            ds->y[row0[i] + r] = pt->y[r];
        }
    }
    free(row0);
    for (size_t i = 0; i < n; i++) {
        if (ds->y[i] != 1 && ds->y[i] != -1) pm_only = 0;
        any_neg |= ds->y[i] == -1;
    }
    /* the svmlight convention for two classes: +1/-1 -> 1/0 */
    if (pm_only && any_neg)
        for (size_t i = 0; i < n; i++) ds->y[i] = ds->y[i] > 0 ? 1.0f : 0.0f;
    io_infer_labels(ds);
    rc = 0;
    goto done;
fail:
    dpt_dataset_free(ds);
done:
    if (parts)
        for (int i = 0; i < ch.n; i++) {
            free(parts[i].e);
            free(parts[i].y);
            free(parts[i].row_end);
        }
    free(parts);
    io_chunks_free(&ch);
    return rc;
}
