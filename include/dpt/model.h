/* Models: one network description covers them all. linear, logistic and
 * softmax regression are networks without hidden layers; an MLP has some.
 * Parameters live in one flat float buffer, layer by layer: W1 [out][in],
 * b1 [out], W2, b2, ... (PyTorch's order); gradients and optimizer state use
 * the same layout, so the update is one loop. */
#ifndef DPT_MODEL_H
#define DPT_MODEL_H

#include "dpt/export.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct dpt_kernels;

typedef enum {
    DPT_MODEL_LINEAR = 0,   /* one output, MSE */
    DPT_MODEL_LOGISTIC = 1, /* one output, binary cross-entropy on the logit */
    DPT_MODEL_SOFTMAX = 2,  /* K outputs, softmax cross-entropy */
    DPT_MODEL_MLP = 3       /* hidden layers, then MSE (1 output) or CE (K outputs) */
} dpt_model_kind;

typedef enum { DPT_LOSS_MSE = 0, DPT_LOSS_BCE = 1, DPT_LOSS_CE = 2 } dpt_loss;

/* Same values as the kernel table's activation enum. */
typedef enum {
    DPT_ACTIVATION_RELU = 0,
    DPT_ACTIVATION_TANH = 1,
    DPT_ACTIVATION_SIGMOID = 2
} dpt_activation;

typedef enum {
    DPT_INIT_UNIFORM = 0, /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)), stream 3: PyTorch's default */
    DPT_INIT_ZERO = 1     /* all zero (the canonical linear workloads) */
} dpt_init;

#define DPT_MAX_HIDDEN 8

typedef struct dpt_model_spec {
    dpt_model_kind kind;
    size_t inputs;
    int n_hidden;
    size_t hidden[DPT_MAX_HIDDEN];
    int classes; /* outputs for softmax / CE; 0 otherwise */
    dpt_activation act;
    dpt_loss loss; /* implied by kind for linear/logistic/softmax */
    int bias;      /* 1: bias terms (always on for MLP layers) */
} dpt_model_spec;

typedef struct dpt_model {
    dpt_model_spec spec;
    int layers;                       /* weight layers = n_hidden + 1 */
    size_t width[DPT_MAX_HIDDEN + 2]; /* width[0] inputs ... width[layers] outputs */
    size_t w_off[DPT_MAX_HIDDEN + 1]; /* offset of W_l in the flat buffer */
    size_t b_off[DPT_MAX_HIDDEN + 1]; /* offset of b_l, or SIZE_MAX without bias */
    size_t n_params;
} dpt_model;

/* Check a spec and lay out the parameters. */
DPT_API int dpt_model_init(dpt_model *m, const dpt_model_spec *spec);

/* Human-readable "mlp 10-20-1 relu mse" into buf. */
DPT_API void dpt_model_describe(const dpt_model *m, char *buf, size_t len);

/* Fill w:(n_params) with the initial parameters. */
DPT_API void dpt_model_init_params(const dpt_model *m, float *w, uint64_t seed, dpt_init init);

/* Floats of per-thread scratch that grad/eval/predict need. */
DPT_API size_t dpt_model_scratch_floats(const dpt_model *m);

/* Rows that grad/eval/predict push through the layers at a time (sized so
 * that a block's activations stay in L2): any row count works, but a caller
 * that buffers outputs in chunks wastes nothing with chunks of this size. */
DPT_API size_t dpt_model_block_rows(const dpt_model *m);

/* Floating-point operations one training sample costs (forward and
 * backward), counted as they are executed: 2 per multiply-add of the matrix
 * products, forward (every layer), weight gradient (every layer) and input
 * gradient (every layer but the first, which needs none). Bias, activation
 * and loss work is left out (under 1% of it for dpt's workloads). Below the
 * 6 x parameters rule of thumb by 2 x the first layer's weights: ~28% for
 * 784-256-128-10, ~11% for 256-512-512-10, a third for linear models. */
DPT_API double dpt_model_train_flops(const dpt_model *m);
/* Whether m's gradient with kernel table k (NULL: the one in use) runs on
 * layer products that the engine's layer split can cut by output columns
 * (dpt_split): not the fused single-pass kernels of one-output linear
 * models and tiny ReLU MLPs. */
DPT_API int dpt_model_splittable(const dpt_model *m, const struct dpt_kernels *k);

/* The functions below take the kernel table k to run on; NULL means the
 * table in use (dpt/isa.h), which is what a program outside the library
 * passes. They do not allocate: scratch holds dpt_model_scratch_floats(m)
 * floats, one buffer per calling thread. */

/* g:(n_params) += sum over the rows of the per-sample loss gradient.
 * X:(rows, inputs) stride ld, y:(rows). Returns the sum of per-sample losses. */
DPT_API double dpt_model_grad(const dpt_model *m, const struct dpt_kernels *k, const float *w,
                              const float *X, size_t ld, const float *y, size_t rows, float *g,
                              float *scratch);
/* The same sum written over g:(n_params), whatever it held (no clearing
 * pass: the products of the first rows overwrite it). */
DPT_API double dpt_model_grad_to(const dpt_model *m, const struct dpt_kernels *k, const float *w,
                                 const float *X, size_t ld, const float *y, size_t rows, float *g,
                                 float *scratch);

/* Forward only: returns the loss sum; *correct (may be NULL) += rows
 * classified right (classification models). */
DPT_API double dpt_model_eval(const dpt_model *m, const struct dpt_kernels *k, const float *w,
                              const float *X, size_t ld, const float *y, size_t rows,
                              size_t *correct, float *scratch);

/* Outputs for each row into out:(rows, outputs) stride ldo: the regression
 * value, the probability of class 1 (logistic) or the class probabilities. */
DPT_API void dpt_model_predict(const dpt_model *m, const struct dpt_kernels *k, const float *w,
                               const float *X, size_t ld, size_t rows, float *out, size_t ldo,
                               float *scratch);

/* Number of outputs of the last layer. */
static inline size_t dpt_model_outputs(const dpt_model *m)
{
    return m->width[m->layers];
}

#ifdef __cplusplus
}
#endif
#endif
