/* Dataset storage: one aligned block holding X (n x ld) then y. */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "core/alloc.h"
#include "dpt/data.h"
#include "dpt/error.h"

size_t dpt_row_stride(size_t d)
{
    return (d + DPT_ROW_ALIGN_FLOATS - 1) / DPT_ROW_ALIGN_FLOATS * DPT_ROW_ALIGN_FLOATS;
}

int dpt_dataset_alloc(dpt_dataset *ds, size_t n, size_t d, int zero)
{
    memset(ds, 0, sizeof *ds);
    if (d == 0) return dpt_set_error(DPT_EINVAL, "dataset needs at least one feature");
    size_t ld = dpt_row_stride(d);
    if (n > SIZE_MAX / 4 / (ld + 1) - 16)
        return dpt_set_error(DPT_ENOMEM, "dataset of %zu x %zu floats is too large", n, d);
    size_t xbytes = n * ld * sizeof(float);
    size_t ybytes = dpt_pad_floats(n) * sizeof(float);
    char *mem = dpt_alloc(xbytes + ybytes);
    if (!mem)
        return dpt_set_error(DPT_ENOMEM, "cannot allocate %.1f MB for a %zu x %zu dataset",
                             (xbytes + ybytes) / 1e6, n, d);
    ds->n = n;
    ds->d = d;
    ds->ld = ld;
    ds->X = (float *)mem;
    ds->y = (float *)(mem + xbytes);
    ds->mem_ = mem;
    ds->mem_len_ = xbytes + ybytes;
    if (zero) {
        memset(mem, 0, xbytes + ybytes);
    } else if (ld != d) {
        for (size_t i = 0; i < n; i++) memset(ds->X + i * ld + d, 0, (ld - d) * sizeof(float));
    }
    return 0;
}

void dpt_dataset_free(dpt_dataset *ds)
{
    if (!ds) return;
    if (ds->mem_) {
        if (ds->mem_mapped_)
            munmap(ds->mem_, ds->mem_len_);
        else
            dpt_free(ds->mem_);
    }
    memset(ds, 0, sizeof *ds);
}
