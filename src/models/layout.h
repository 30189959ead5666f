/* The model's activation layout, for code in the tree that runs a step
 * through the kernel table as the model does (bench/kernels). */
#ifndef DPT_MODELS_LAYOUT_H
#define DPT_MODELS_LAYOUT_H

#include <stddef.h>

#include "dpt/model.h"

/* Floats between rows of the model's activation and gradient buffers. */
size_t dpt_model_act_stride(const dpt_model *m);

#endif
