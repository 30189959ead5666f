/* Datasets: dense float32 rows, 64-byte aligned, one sample per row.
 * X is n x d stored with a row stride of ld floats (ld is d rounded up to a
 * multiple of 16, so every row starts on a cache line). Labels y are float:
 * regression targets, 0/1 for binary, class ids 0..K-1 for multiclass. */
#ifndef DPT_DATA_H
#define DPT_DATA_H

#include "dpt/export.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    DPT_LABEL_REAL = 0,   /* regression target */
    DPT_LABEL_BINARY = 1, /* 0 or 1 */
    DPT_LABEL_CLASS = 2   /* integer class id 0..classes-1 */
} dpt_label_kind;

/* Rows [lo, hi) of a data set. */
typedef struct dpt_row_range {
    size_t lo, hi;
} dpt_row_range;

struct dpt_dataset_mem;

typedef struct dpt_dataset {
    size_t n;  /* rows */
    size_t d;  /* features */
    size_t ld; /* row stride in floats, multiple of DPT_ROW_ALIGN_FLOATS */
    float *X;  /* n * ld floats, 64-byte aligned; padding columns are zero */
    float *y;  /* n labels */
    dpt_label_kind label_kind;
    int classes; /* number of classes for DPT_LABEL_CLASS, 2 for binary, 0 else */
    /* Per-rank loading: the rows this process read, as sorted disjoint
     * ranges, adjacent ones merged (owned); NULL: all n rows. The other
     * rows of X were neither read nor checked and must not be used; their
     * labels are 0. */
    dpt_row_range *part;
    size_t npart;
    /* ownership of the block holding X and y (opaque; NULL: owns none) */
    struct dpt_dataset_mem *mem;
} dpt_dataset;

#define DPT_ROW_ALIGN_FLOATS 16

/* Row stride for d features. */
DPT_API size_t dpt_row_stride(size_t d);

/* Allocate an n x d dataset with zeroed padding (X and y uninitialised
 * unless zero is nonzero). Returns 0 or a negative status. */
DPT_API int dpt_dataset_alloc(dpt_dataset *ds, size_t n, size_t d, int zero);

/* Release what a dataset owns and zero it; safe on a zeroed dataset. */
DPT_API void dpt_dataset_free(dpt_dataset *ds);

/* Rows the data set holds: n, or the rows of its part. */
DPT_API size_t dpt_dataset_rows_held(const dpt_dataset *ds);
/* 1 when every row of [lo, hi) is held. */
DPT_API int dpt_dataset_holds(const dpt_dataset *ds, size_t lo, size_t hi);

/* ---- synthetic data (counter-based SplitMix64, see docs/workloads.md) ---- */

typedef enum {
    DPT_SYNTH_LINREG = 0,      /* y = X w* + noise e */
    DPT_SYNTH_LOGREG = 1,      /* y = 1[X w* + noise e > 0] */
    DPT_SYNTH_TEACHER_MLP = 2, /* y = teacher(x) + noise e (classes=0) or argmax */
} dpt_synth_kind;

#define DPT_SYNTH_MAX_LAYERS 8

typedef struct dpt_synth_spec {
    dpt_synth_kind kind;
    size_t n, d;
    double noise;
    uint64_t seed;
    int classes;                         /* teacher-mlp: 0 regression, K argmax labels */
    int n_hidden;                        /* teacher-mlp hidden layers */
    size_t hidden[DPT_SYNTH_MAX_LAYERS]; /* teacher-mlp hidden widths */
} dpt_synth_spec;

/* Defaults for a kind (n 10000, d 10/64, noise 0.01 or 0.5, seed 1, ...). */
DPT_API void dpt_synth_defaults(dpt_synth_spec *spec, dpt_synth_kind kind);

/* Parse "KIND:k=v,k=v" (keys n, d, noise, seed, classes, hidden=a/b/c). */
DPT_API int dpt_synth_parse(dpt_synth_spec *spec, const char *text);

/* Generate rows [0, n) of the spec into a freshly allocated dataset, in
 * parallel over nthreads OpenMP threads (0: the runtime's default). Each
 * element depends only on the seed and its index, so the result is the same
 * for every thread count. */
DPT_API int dpt_synth_generate(const dpt_synth_spec *spec, dpt_dataset *ds, int nthreads);

/* Per-rank generation: the rows of part[0..npart) only, each bit for bit
 * the row dpt_synth_generate gives (X and y). part must be sorted,
 * disjoint, non-empty ranges within n (DPT_EINVAL otherwise); ds->part gets
 * them merged. X lies in a mapping that reserves nothing, and the other
 * rows are never written, so they cost no memory; their labels are 0. part
 * NULL, or ranges covering every row, is dpt_synth_generate (ds->part
 * NULL); a non-NULL part of no ranges holds no rows. */
DPT_API int dpt_synth_generate_part(const dpt_synth_spec *spec, dpt_dataset *ds, int nthreads,
                                    const dpt_row_range *part, size_t npart);

/* ---- the counter-based generator itself ---- */
DPT_API uint64_t dpt_rng_key(uint64_t seed, unsigned stream);
DPT_API double dpt_rng_uniform(uint64_t key, uint64_t j);
DPT_API double dpt_rng_normal(uint64_t key, uint64_t j);

#ifdef __cplusplus
}
#endif
#endif
