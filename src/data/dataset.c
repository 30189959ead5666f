/* Dataset storage: one aligned block holding X (n x ld) then y, and the
 * row parts of per-rank loading. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/alloc.h"
#include "data/io_internal.h"
#include "dpt/data.h"
#include "dpt/error.h"

size_t dpt_row_stride(size_t d)
{
    return (d + DPT_ROW_ALIGN_FLOATS - 1) / DPT_ROW_ALIGN_FLOATS * DPT_ROW_ALIGN_FLOATS;
}

/* Zero ds, then the stride and the bytes of X and of y (padded) for n x d;
 * 0 or the error. */
static int dataset_layout(dpt_dataset *ds, size_t n, size_t d, size_t *ld, size_t *xbytes,
                          size_t *ybytes)
{
    memset(ds, 0, sizeof *ds);
    if (d == 0) return dpt_set_error(DPT_EINVAL, "dataset needs at least one feature");
    *ld = dpt_row_stride(d);
    if (n > SIZE_MAX / 4 / (*ld + 1) - 16)
        return dpt_set_error(DPT_ENOMEM, "dataset of %zu x %zu floats is too large", n, d);
    *xbytes = n * *ld * sizeof(float);
    *ybytes = dpt_pad_floats(n) * sizeof(float);
    return 0;
}

int dpt_dataset_alloc(dpt_dataset *ds, size_t n, size_t d, int zero)
{
    size_t ld = 0, xbytes = 0, ybytes = 0;
    int rc = dataset_layout(ds, n, d, &ld, &xbytes, &ybytes);
    if (rc) return rc;
    char *mem = dpt_alloc_large(xbytes + ybytes);
    if (!mem)
        return dpt_set_error(DPT_ENOMEM, "cannot allocate %.1f MB for a %zu x %zu dataset",
                             (xbytes + ybytes) / 1e6, n, d);
    if ((rc = io_dataset_adopt(ds, mem, xbytes + ybytes, 0))) {
        dpt_free(mem);
        return rc;
    }
    ds->n = n;
    ds->d = d;
    ds->ld = ld;
    ds->X = (float *)mem;
    ds->y = (float *)(mem + xbytes);
    if (zero) {
        memset(mem, 0, xbytes + ybytes);
    } else if (ld != d) {
        for (size_t i = 0; i < n; i++) memset(ds->X + i * ld + d, 0, (ld - d) * sizeof(float));
    }
    return 0;
}

int io_dataset_alloc_mapped(dpt_dataset *ds, size_t n, size_t d)
{
    size_t ld = 0, xbytes = 0, ybytes = 0;
    int rc = dataset_layout(ds, n, d, &ld, &xbytes, &ybytes);
    if (rc) return rc;
    void *mem = mmap(NULL, xbytes + ybytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED)
        return dpt_set_error(DPT_ENOMEM, "cannot map %.1f MB for a %zu x %zu dataset",
                             (xbytes + ybytes) / 1e6, n, d);
    /* a huge page would fault in the unheld rows around every range edge */
    madvise(mem, xbytes + ybytes, MADV_NOHUGEPAGE);
    if ((rc = io_dataset_adopt(ds, mem, xbytes + ybytes, 1))) {
        munmap(mem, xbytes + ybytes);
        return rc;
    }
    ds->n = n;
    ds->d = d;
    ds->ld = ld;
    ds->X = mem;
    ds->y = (float *)((char *)mem + xbytes);
    return 0;
}

int io_dataset_adopt(dpt_dataset *ds, void *base, size_t len, int mapped)
{
    struct dpt_dataset_mem *m = malloc(sizeof *m);
    if (!m) return dpt_set_error(DPT_ENOMEM, "out of memory");
    m->base = base;
    m->len = len;
    m->mapped = mapped;
    ds->mem = m;
    return 0;
}

int io_part_merge(const char *what, const dpt_row_range *part, size_t npart, size_t n,
                  dpt_row_range **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (!part) return 0;
    size_t m = 0;
    for (size_t i = 0; i < npart; i++) {
        size_t lo = part[i].lo, hi = part[i].hi;
        if (lo >= hi)
            return dpt_set_error(DPT_EINVAL, "%s: row range %zu of %zu [%zu, %zu) is empty", what,
                                 i + 1, npart, lo, hi);
        if (hi > n)
            return dpt_set_error(DPT_EINVAL,
                                 "%s: row range %zu of %zu [%zu, %zu) lies beyond the %zu rows",
                                 what, i + 1, npart, lo, hi, n);
        if (i > 0 && lo < part[i - 1].hi)
            return dpt_set_error(
                DPT_EINVAL, "%s: row range %zu of %zu [%zu, %zu) %s range %zu [%zu, %zu)", what,
                i + 1, npart, lo, hi, lo < part[i - 1].lo ? "is not sorted after" : "overlaps", i,
                part[i - 1].lo, part[i - 1].hi);
        m += i == 0 || lo > part[i - 1].hi;
    }
    if (m == 1 && part[0].lo == 0 && part[npart - 1].hi == n) return 0;
    dpt_row_range *r = malloc((m ? m : 1) * sizeof *r);
    if (!r) return dpt_set_error(DPT_ENOMEM, "%s: out of memory for %zu row ranges", what, m);
    size_t k = 0;
    for (size_t i = 0; i < npart; i++) {
        if (k && part[i].lo == r[k - 1].hi)
            r[k - 1].hi = part[i].hi;
        else
            r[k++] = part[i];
    }
    *out = r;
    *nout = k;
    return 0;
}

size_t dpt_dataset_rows_held(const dpt_dataset *ds)
{
    if (!ds->part) return ds->n;
    size_t rows = 0;
    for (size_t i = 0; i < ds->npart; i++) rows += ds->part[i].hi - ds->part[i].lo;
    return rows;
}

int dpt_dataset_holds(const dpt_dataset *ds, size_t lo, size_t hi)
{
    if (lo >= hi) return 1;
    if (hi > ds->n) return 0;
    if (!ds->part) return 1;
    /* the last range starting at or before lo must reach hi */
    size_t a = 0, b = ds->npart;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (ds->part[mid].lo <= lo)
            a = mid + 1;
        else
            b = mid;
    }
    return a > 0 && ds->part[a - 1].hi >= hi;
}

void dpt_dataset_free(dpt_dataset *ds)
{
    if (!ds) return;
    free(ds->part);
    if (ds->mem) {
        if (ds->mem->mapped)
            munmap(ds->mem->base, ds->mem->len);
        else
            dpt_free(ds->mem->base);
        free(ds->mem);
    }
    memset(ds, 0, sizeof *ds);
}
