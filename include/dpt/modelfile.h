/* Model files: architecture, standardization statistics and parameters in
 * one versioned little-endian binary file with a CRC-32, written atomically.
 * Nothing in it varies between runs (no timestamp), so identical models
 * give identical files.
 *
 * Layout (version 1): "DPTMODEL" | u32 version | u32 kind | u64 inputs |
 * u32 n_hidden | u64 hidden[8] | u32 classes | u32 act | u32 loss |
 * u32 bias | u64 n_params | u64 std_d | f32 params[n_params] |
 * f32 mean[std_d] | f32 scale[std_d] | u32 crc32 of all bytes before it. */
#ifndef DPT_MODELFILE_H
#define DPT_MODELFILE_H

#include "dpt/export.h"

#include "dpt/io.h"
#include "dpt/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DPT_MODELFILE_VERSION 1

/* st may be NULL or empty (d == 0). 0, or DPT_EIO naming the file. */
DPT_API int dpt_model_save(const char *path, const dpt_model *m, const float *w,
                           const dpt_standardizer *st);

/* Load into m (initialised here), *w (malloc'd, n_params floats, caller
 * frees) and st (zeroed when the file has none). DPT_EIO for an unreadable
 * file, DPT_EFORMAT ("FILE: problem") for a corrupt, truncated or foreign
 * one. */
DPT_API int dpt_model_load(const char *path, dpt_model *m, float **w, dpt_standardizer *st);

#ifdef __cplusplus
}
#endif
#endif
