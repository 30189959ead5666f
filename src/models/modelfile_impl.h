/* The model file's bytes apart from the file: encoded to and decoded from
 * memory, so that a checkpoint (checkpoint.c) carries a whole model file
 * inside it and the fuzz target reads the same code as dpt_model_load. */
#ifndef DPT_MODELFILE_IMPL_H
#define DPT_MODELFILE_IMPL_H

#include <stddef.h>

#include "dpt/io.h"
#include "dpt/model.h"

/* The file's bytes (*out malloc'd, *len of them); path names it in
 * messages. 0 or DPT_ENOMEM. */
int dpt_modelfile_encode(const char *path, const dpt_model *m, const float *w,
                         const dpt_standardizer *st, unsigned char **out, size_t *len);
/* As dpt_model_load, from size bytes at p. */
int dpt_modelfile_decode(const char *path, const unsigned char *p, size_t size, dpt_model *m,
                         float **w, dpt_standardizer *st);
/* A whole file into memory (*out malloc'd). 0 or DPT_EIO/DPT_ENOMEM. */
int dpt_modelfile_read(const char *path, unsigned char **out, size_t *len);

#endif
