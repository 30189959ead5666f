/* Data files: loaders (CSV, svmlight, IDX, dpt's own .dptb), writers,
 * z-score standardization and label checks. Every loader fills a
 * dpt_dataset (rows 64-byte aligned, padding zeroed) or fails with a
 * one-line message "FILE:LINE:COL: problem" (or "FILE: problem"). */
#ifndef DPT_IO_H
#define DPT_IO_H

#include "dpt/export.h"

#include <stddef.h>

#include "dpt/data.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    DPT_FORMAT_AUTO = 0, /* from the extension, then from the content */
    DPT_FORMAT_CSV = 1,
    DPT_FORMAT_SVMLIGHT = 2,
    DPT_FORMAT_IDX = 3,
    DPT_FORMAT_DPTB = 4
} dpt_format;

/* Name of a format ("csv", "svmlight", "idx", "dptb"; "auto"). */
DPT_API const char *dpt_format_name(dpt_format f);
/* Parse a format name (also "libsvm"); returns 0 or DPT_EINVAL. */
DPT_API int dpt_format_parse(const char *name, dpt_format *out);
/* Format a path's extension names (.csv .tsv .svm .libsvm .svmlight .dptb
 * .idx, *-ubyte, and those with .gz), or DPT_FORMAT_AUTO when none. */
DPT_API dpt_format dpt_format_from_path(const char *path);

/* The format dpt_load would read path as: IDX when there is a labels
 * file, else format_from_path, else a look at the first bytes of a
 * regular file. DPT_FORMAT_AUTO when only the content could tell and the
 * input cannot be read twice (path "-", a pipe, a device): dpt_load alone
 * looks at those bytes. */
DPT_API dpt_format dpt_format_detect(const char *path, int has_labels);

#define DPT_LABEL_COL_LAST (-1) /* CSV: the last column holds the label */
#define DPT_LABEL_COL_NONE (-2) /* CSV: no label column (y = 0) */

typedef struct dpt_load_opts {
    dpt_format format;       /* DPT_FORMAT_AUTO: from the path and content */
    int header;              /* CSV: -1 detect, 0 no header, 1 header line */
    long label_col;          /* CSV: 0-based column, or DPT_LABEL_COL_LAST/NONE */
    char delimiter;          /* CSV: field separator; 0 = ',' (tab for .tsv) */
    size_t features;         /* svmlight: row width (0: largest index seen);
                                other formats: must match when nonzero */
    const char *labels_path; /* IDX: the labels file (NULL: no labels, y = 0) */
    size_t max_bytes;        /* refuse datasets needing more (0: available RAM) */
    int nthreads;            /* parse threads (0: OpenMP default) */
    /* Per-rank loading: read only these rows (sorted, disjoint, non-empty
     * ranges; NULL: every row) where the format allows it (.dptb version
     * 2), leaving the others unread and ds->part set; other formats ignore
     * it and read every row, leaving ds->part NULL. */
    const dpt_row_range *part;
    size_t npart;
} dpt_load_opts;

/* Defaults: auto format, detect header, last column, ',' , 0 features. */
DPT_API void dpt_load_opts_defaults(dpt_load_opts *o);

/* Load a data file into ds (zeroed on failure). path "-" is standard
 * input. The input is opened once; a pipe, standard input or a device is
 * read to its end into memory (bounded by max_bytes or the available
 * memory), which CSV and svmlight parse; IDX and .dptb need a regular
 * file (DPT_ENOTSUP otherwise). Labels: CSV and IDX as
 * read; svmlight labels that are all +1/-1 become 1/0. The label kind is
 * inferred: all 0/1 -> BINARY (classes 2), non-negative integers ->
 * CLASS (classes = max + 1), otherwise REAL. A .dptb file is memory-mapped
 * (copy-on-write, so the rows may be modified in place). opts may be NULL. */
DPT_API int dpt_load(const char *path, const dpt_load_opts *opts, dpt_dataset *ds);

/* Rows of a .dptb file, from its header alone (magic and header checksum
 * checked; the rest is left to dpt_load): for choosing a part before
 * loading. Returns 0 or a negative status. */
DPT_API int dpt_dptb_rows(const char *path, size_t *n);

/* Bytes of memory the loaders may use when max_bytes is 0: MemAvailable,
 * less where a cgroup limit or the process's RLIMIT_AS / RLIMIT_DATA
 * leaves less room. */
DPT_API size_t dpt_mem_available(void);

/* ---- writers: atomic (temporary file, fsync, rename), so a failed write
 * leaves no output file ---- */

typedef struct dpt_save_opts {
    dpt_format format; /* DPT_FORMAT_AUTO: from the extension, else dptb */
    char delimiter;    /* CSV: 0 = ',' */
    int header;        /* CSV: write a header line x1..xD,y (default 1) */
} dpt_save_opts;

DPT_API void dpt_save_opts_defaults(dpt_save_opts *o);
/* Write ds to path; CSV and svmlight values round-trip exactly (%.9g).
 * svmlight rows list nonzero features, and the first row also lists
 * feature d so a reader finds the width. IDX is not written. .dptb is
 * written as version 2. A data set holding part of its rows (ds->part) is
 * refused (DPT_EINVAL). */
DPT_API int dpt_save(const dpt_dataset *ds, const char *path, const dpt_save_opts *opts);

/* ---- standardization: x' = (x - mean) * scale, scale = 1/std (population
 * std over the training rows), scale 0 for constant features, which become
 * 0. Statistics are accumulated in double over fixed row blocks, so they do
 * not depend on the thread count. ---- */

typedef struct dpt_standardizer {
    size_t d;
    float *mean;  /* d values */
    float *scale; /* d values */
} dpt_standardizer;

/* Statistics need every row: a data set holding part of its rows
 * (ds->part) is refused (DPT_EINVAL). */
DPT_API int dpt_standardizer_fit(dpt_standardizer *st, const dpt_dataset *ds, int nthreads);
/* Adopt saved statistics (copies them), e.g. from a model file. */
DPT_API int dpt_standardizer_init(dpt_standardizer *st, size_t d, const float *mean,
                                  const float *scale);
/* Apply to every row in place (to the held rows only when ds->part is
 * set: the others are never touched); ds->d must equal st->d. */
DPT_API int dpt_standardizer_apply(const dpt_standardizer *st, dpt_dataset *ds, int nthreads);
DPT_API void dpt_standardizer_free(dpt_standardizer *st);

/* ---- labels against the model ----
 * want BINARY: every label 0 or 1 (logistic); CLASS: integer ids 0..K-1
 * where K is *classes when > 0 on entry, else max + 1 from the data (at
 * least 2); REAL: finite values. On success *classes (may be NULL) gets 2,
 * K or 0. Messages name the data row (1-based): "row 17: label 2.5 ...".
 * A data set holding part of its rows (ds->part) has its held rows checked;
 * its K, when not given, is max + 1 over those rows alone, which may be
 * below the whole set's (even 1, which is then not an error here): ranks
 * must agree on K, e.g. the maximum over ranks, checked to be >= 2. */
DPT_API int dpt_dataset_check_labels(const dpt_dataset *ds, dpt_label_kind want, int *classes);

/* Split off a validation set: round(fraction * n) rows chosen by a seeded
 * shuffle (the other rows keep their order) move from ds to val. fraction
 * must leave both parts non-empty. ds is replaced by the remaining rows.
 * A data set holding part of its rows (ds->part) is refused (DPT_EINVAL). */
DPT_API int dpt_dataset_split(dpt_dataset *ds, double fraction, unsigned long long seed,
                              dpt_dataset *val);

#ifdef __cplusplus
}
#endif
#endif
