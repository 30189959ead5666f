/* CSV and svmlight writers. Blocks of rows are formatted in parallel and
 * written in order; %.9g makes every float32 read back bit for bit. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/io_internal.h"
#include "dpt/error.h"

/* widest "%.9g" of a float: "-1.17549435e-38" */
#define NUM_MAX 16

static size_t put_num(char *p, float v)
{
    return (size_t)sprintf(p, "%.9g", (double)v);
}

static size_t fmt_csv_row(char *p, const dpt_dataset *ds, size_t i, char delim)
{
    char *s = p;
    const float *x = ds->X + i * ds->ld;
    for (size_t k = 0; k < ds->d; k++) {
        p += put_num(p, x[k]);
        *p++ = delim;
    }
    p += put_num(p, ds->y[i]);
    *p++ = '\n';
    return (size_t)(p - s);
}

static size_t fmt_svm_row(char *p, const dpt_dataset *ds, size_t i)
{
    char *s = p;
    const float *x = ds->X + i * ds->ld;
    p += put_num(p, ds->y[i]);
    for (size_t k = 0; k < ds->d; k++) {
        /* the first row names the last feature so a reader finds the width */
        if (x[k] == 0 && !(i == 0 && k + 1 == ds->d)) continue;
        p += sprintf(p, " %zu:", k + 1);
        p += put_num(p, x[k]);
    }
    *p++ = '\n';
    return (size_t)(p - s);
}

static int write_rows(const dpt_dataset *ds, const char *path, int svm, char delim,
                      const char *head, size_t head_len)
{
    io_out w;
    int rc = io_out_open(&w, path);
    if (rc) return rc;
    io_out_write(&w, head, head_len);
    /* bytes per row at most: every value, a delimiter, and an index for svmlight */
    size_t row_max = (ds->d + 1) * (NUM_MAX + 1 + (svm ? 12 : 0)) + 2;
    size_t per = ((size_t)256 << 10) / row_max + 1;
    long nblocks = (long)((ds->n + per - 1) / per);
    int failed = 0;
#pragma omp parallel
    {
        char *buf = malloc(per * row_max);
        if (!buf) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for ordered schedule(static, 1)
        for (long b = 0; b < nblocks; b++) {
            size_t len = 0;
            size_t r1 = ((size_t)b + 1) * per < ds->n ? ((size_t)b + 1) * per : ds->n;
            if (buf)
                for (size_t i = (size_t)b * per; i < r1; i++)
                    len +=
                        svm ? fmt_svm_row(buf + len, ds, i) : fmt_csv_row(buf + len, ds, i, delim);
#pragma omp ordered
            io_out_write(&w, buf, len);
        }
        free(buf);
    }
    if (failed) {
        io_out_abort(&w);
        return dpt_set_error(DPT_ENOMEM, "%s: out of memory while formatting", path);
    }
    return io_out_commit(&w);
}

int io_save_csv(const dpt_dataset *ds, const char *path, const dpt_save_opts *o)
{
    char delim = o->delimiter ? o->delimiter : ',';
    char *head = NULL;
    size_t hl = 0;
    if (o->header) {
        head = malloc(ds->d * 24 + 8);
        if (!head) return dpt_set_error(DPT_ENOMEM, "%s: out of memory", path);
        for (size_t k = 0; k < ds->d; k++) hl += (size_t)sprintf(head + hl, "x%zu%c", k + 1, delim);
        hl += (size_t)sprintf(head + hl, "y\n");
    }
    int rc = write_rows(ds, path, 0, delim, head, hl);
    free(head);
    return rc;
}

int io_save_svmlight(const dpt_dataset *ds, const char *path, const dpt_save_opts *o)
{
    (void)o;
    return write_rows(ds, path, 1, 0, "", 0);
}
