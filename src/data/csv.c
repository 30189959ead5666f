/* CSV loader: the input's bytes (mapped, or a stream read once) have their
 * lines counted in parallel, the dataset allocated once, then
 * newline-aligned chunks parsed in parallel straight into the rows. Errors
 * name the earliest bad line. */
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "data/io_internal.h"
#include "dpt/error.h"

typedef struct csv_ctx {
    const char *path;
    char delim;
    size_t ncols; /* fields per line */
    size_t label; /* column holding the label, or SIZE_MAX for none */
    int header;   /* the first line was a header */
} csv_ctx;

static int is_space(char c, char delim)
{
    return (c == ' ' || c == '\t') && c != delim;
}

/* The field at p as text (to the delimiter or line end), for messages. */
static size_t field_len(const char *p, const char *end, char delim)
{
    const char *q = p;
    while (q < end && *q != delim && *q != '\n' && *q != '\r') q++;
    return (size_t)(q - p);
}

static const char *line_end(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    return nl ? nl : end;
}

/* A delimiter the line seems to use instead of ours, or 0. */
static char other_delimiter(const char *line, const char *eol, char delim)
{
    static const char cand[] = {',', ';', '\t', '|'};
    for (size_t k = 0; k < sizeof cand; k++)
        if (cand[k] != delim && memchr(line, cand[k], (size_t)(eol - line))) return cand[k];
    return 0;
}

static const char *delim_name(char c, char *buf)
{
    if (c == '\t') return "tab";
    if (c == ' ') return "space";
    snprintf(buf, 8, "'%c'", c);
    return buf;
}

static void err_at(io_err *e, size_t line, size_t col, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void err_at(io_err *e, size_t line, size_t col, int code, const char *fmt, ...)
{
    e->line = line;
    e->col = col;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
}

/* Describe why the field at p (column k, 0-based) is not a number. */
static void bad_field(io_err *e, const csv_ctx *c, const char *line, const char *p, const char *end,
                      size_t lineno, size_t k, int status)
{
    char tok[128], dn[8];
    const char *eol = line_end(p, end);
    size_t col = (size_t)(p - line) + 1;
    size_t fl = field_len(p, eol, c->delim);
    if (fl == 0) {
        err_at(e, lineno, col, DPT_EFORMAT, "field %zu is empty", k + 1);
        return;
    }
    io_token(tok, sizeof tok, p, fl);
    if (status == IO_NUM_RANGE) {
        err_at(e, lineno, col, DPT_EFORMAT, "field %zu: '%s' is out of float range", k + 1, tok);
        return;
    }
    const char *what = "is not a number";
    float dummy;
    int st;
    const char *q = p + (*p == '-' || *p == '+');
    if (eol - q >= 3 && (!strncasecmp(q, "nan", 3) || !strncasecmp(q, "inf", 3)))
        what = "is not a finite number (NaN and Inf are not allowed)";
    else if (memchr(p, '\0', fl))
        what = "holds binary data (a NUL byte): not a text file";
    else if (io_parse_f32(p, eol, &dummy, &st) != p && st == IO_NUM_OK)
        what = "has trailing characters after the number";
    char other = other_delimiter(line, eol, c->delim);
    if (other && !memchr(line, c->delim, (size_t)(eol - line))) {
        char on[8];
        err_at(e, lineno, col, DPT_EFORMAT,
               "field %zu: '%s' %s (the file seems to use %s as delimiter, not %s)", k + 1, tok,
               what, delim_name(other, on), delim_name(c->delim, dn));
        return;
    }
    err_at(e, lineno, col, DPT_EFORMAT, "field %zu: '%s' %s%s", k + 1, tok, what,
           lineno == 1 && !c->header ? " (line 1 may be a header)" : "");
}

/* Parse one line starting at p into x (d features) and *y. Returns the
 * start of the next line, or NULL with e set. */
static const char *parse_line(const csv_ctx *c, const char *p, const char *end, size_t lineno,
                              float *x, float *y, io_err *e)
{
    const char *line = p;
    const char delim = c->delim;
    const char *hint = c->header ? " (as in the header)" : " (as on the first line)";
    size_t k = 0;
    float *dst = x;
    for (;;) {
        while (p < end && is_space(*p, delim)) p++;
        const char *fs = p;
        int quoted = p < end && *p == '"';
        p += quoted;
        float v;
        int st;
        const char *q = io_parse_f32(p, end, &v, &st);
        if (q == p || st != IO_NUM_OK) {
            if (k == 0 &&
                (p == end || *p == '\n' || (*p == '\r' && (p + 1 == end || p[1] == '\n'))))
                err_at(e, lineno, 1, DPT_EFORMAT,
                       "empty line (only trailing blank lines are allowed)");
            else
                bad_field(e, c, line, fs, end, lineno, k, q == p ? IO_NUM_BAD : st);
            return NULL;
        }
        p = q;
        if (quoted && p < end && *p == '"')
            p++;
        else if (quoted)
            p = fs; /* unbalanced quote: reported below */
        while (p < end && is_space(*p, delim)) p++;
        if (k == c->label)
            *y = v;
        else if (k < c->ncols)
            *dst++ = v;
        k++;
        if (p < end && *p == delim && k < c->ncols) {
            p++;
            continue;
        }
        int at_eol = p == end || *p == '\n' || (*p == '\r' && (p + 1 == end || p[1] == '\n'));
        if (at_eol && k == c->ncols) {
            if (p < end && *p == '\r') p++;
            return p < end ? p + 1 : p;
        }
        if (at_eol || *p == delim) {
            const char *eol = line_end(p, end);
            size_t fields = k;
            for (const char *s = p; s < eol; s++) fields += *s == delim;
            err_at(e, lineno, (size_t)(p - line) + 1, DPT_EFORMAT, "%zu fields, expected %zu%s",
                   fields, c->ncols, hint);
            return NULL;
        }
        bad_field(e, c, line, fs, end, lineno, k - 1, IO_NUM_BAD);
        return NULL;
    }
}

/* Fields of the first line (quotes respected, for headers). */
static size_t count_fields(const char *p, const char *eol, char delim)
{
    size_t n = 1;
    int inq = 0;
    for (; p < eol; p++) {
        if (*p == '"')
            inq = !inq;
        else if (*p == delim && !inq)
            n++;
    }
    return n;
}

/* Does any field of the line parse as a number? */
static int any_numeric(const char *p, const char *eol, char delim)
{
    while (p <= eol) {
        while (p < eol && is_space(*p, delim)) p++;
        if (p < eol && *p == '"') p++;
        float v;
        int st;
        const char *q = io_parse_f32(p, eol, &v, &st);
        if (q != p && st == IO_NUM_OK) {
            while (q < eol && (is_space(*q, delim) || *q == '"' || *q == '\r')) q++;
            if (q == eol || *q == delim) return 1;
        }
        const char *nx = memchr(p, delim, (size_t)(eol - p));
        if (!nx) break;
        p = nx + 1;
    }
    return 0;
}

int io_load_csv(const char *path, const io_file *f, const dpt_load_opts *o, dpt_dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    int rc = 0;
    csv_ctx c = {.path = path, .delim = o->delimiter ? o->delimiter : ','};
    io_chunks ch = {0};
    const char *buf = f->buf, *end = f->buf + f->len;
    if (end - buf >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3)) buf += 3;
    /* trailing blank lines (and the final newline) are not rows */
    while (end > buf) {
        const char *ls = end;
        while (ls > buf && ls[-1] != '\n') ls--;
        int blank = 1;
        for (const char *s = ls; s < end && blank; s++) blank = *s == '\r' || is_space(*s, c.delim);
        if (!blank) break;
        end = ls > buf ? ls - 1 : ls;
    }
    if (end == buf) {
        rc = dpt_set_error(DPT_EFORMAT, "%s: empty file (no rows)", path);
        goto fail;
    }
    const char *eol1 = line_end(buf, end);
    const char *e1 = eol1 > buf && eol1[-1] == '\r' ? eol1 - 1 : eol1;
    c.ncols = count_fields(buf, e1, c.delim);
    if (o->header > 0)
        c.header = 1;
    else if (o->header < 0)
        c.header = !any_numeric(buf, e1, c.delim);
    const char *body = c.header ? (eol1 < end ? eol1 + 1 : end) : buf;
    if (body >= end) {
        rc = dpt_set_error(DPT_EFORMAT, "%s: header only, no data rows", path);
        goto fail;
    }
    if (o->header > 0) {
        /* --header yes only skips line 1: the first data row sets the width,
         * so headers of another shape (scikit-learn's "n,d,names...") load */
        const char *eol2 = line_end(body, end);
        const char *e2 = eol2 > body && eol2[-1] == '\r' ? eol2 - 1 : eol2;
        c.ncols = count_fields(body, e2, c.delim);
    }
    if (o->label_col == DPT_LABEL_COL_NONE)
        c.label = SIZE_MAX;
    else if (o->label_col == DPT_LABEL_COL_LAST || o->label_col < 0)
        c.label = c.ncols - 1;
    else if ((size_t)o->label_col >= c.ncols) {
        rc = dpt_set_error(DPT_EINVAL, "%s:1: label column %ld, but the first line has %zu fields",
                           path, o->label_col + 1, c.ncols);
        goto fail;
    } else
        c.label = (size_t)o->label_col;
    size_t d = c.ncols - (c.label != SIZE_MAX);
    if (d == 0) {
        char dn[8], on[8];
        char other = other_delimiter(buf, e1, c.delim);
        if (other)
            rc = dpt_set_error(DPT_EFORMAT,
                               "%s:1: one field per line: the file seems to use %s as delimiter, "
                               "not %s",
                               path, delim_name(other, on), delim_name(c.delim, dn));
        else
            rc = dpt_set_error(DPT_EFORMAT,
                               "%s:1: only one column: need features besides the label", path);
        goto fail;
    }
    if (o->features && o->features != d) {
        rc = dpt_set_error(DPT_EFORMAT, "%s: %zu features, expected %zu", path, d, o->features);
        goto fail;
    }
    size_t first_line = 1 + (size_t)c.header;
    if ((rc = io_chunks_make(&ch, body, (size_t)(end - body), first_line, o->nthreads))) goto fail;
    if ((rc = io_chunks_check_lines(&ch, path))) goto fail;
    size_t n = 0;
    for (int i = 0; i < ch.n; i++) n += ch.lines[i];
    if ((rc = io_check_memory(path, o, n, d))) goto fail;
    if ((rc = dpt_dataset_alloc(ds, n, d, 0))) {
        rc = io_error_prefix(rc, path);
        goto fail;
    }
    io_err *errs = calloc((size_t)ch.n, sizeof *errs);
    if (!errs) {
        rc = dpt_set_error(DPT_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    int nt = io_nthreads(o->nthreads);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (ch.n > 1)
    for (int i = 0; i < ch.n; i++) {
        const char *p = body + ch.start[i], *ce = body + ch.start[i + 1];
        size_t row = ch.first_line[i] - first_line;
        float dummy;
        for (size_t l = 0; l < ch.lines[i] && p; l++, row++) {
            float *yp = c.label == SIZE_MAX ? &dummy : &ds->y[row];
            p = parse_line(&c, p, ce, ch.first_line[i] + l, ds->X + row * ds->ld, yp, &errs[i]);
        }
    }
    if (c.label == SIZE_MAX) memset(ds->y, 0, n * sizeof(float));
    for (int i = 0; i < ch.n; i++)
        if (errs[i].line) {
            rc = dpt_set_error(errs[i].code, "%s:%zu:%zu: %s", path, errs[i].line, errs[i].col,
                               errs[i].msg);
            free(errs);
            goto fail;
        }
    free(errs);
    io_chunks_free(&ch);
    io_infer_labels(ds);
    return 0;
fail:
    io_chunks_free(&ch);
    dpt_dataset_free(ds);
    return rc;
}
