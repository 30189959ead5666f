/* Double-precision reference for the models: a plain forward pass and loss,
 * written independently of the kernels, and central finite differences. */
#ifndef DPT_TEST_REF_H
#define DPT_TEST_REF_H

#include <stddef.h>

#include "dpt/data.h"
#include "dpt/engine.h"
#include "dpt/model.h"
#include "dpt/optim.h"

/* Mean? No: the SUM of per-sample losses of the model with parameters w. */
double ref_loss_sum(const dpt_model *m, const double *w, const float *X, size_t ld, const float *y,
                    size_t rows);

/* g:(n_params) = d(loss sum)/dw by central differences in double. */
void ref_grad_fd(const dpt_model *m, const float *wf, const float *X, size_t ld, const float *y,
                 size_t rows, double *g);

/* Largest |a-b| / (|b| + floor) over n entries. */
double ref_max_rel(const float *a, const double *b, size_t n, double floor);

/* A small random data set for model kind (labels suited to the loss). */
void ref_make_data(dpt_dataset *ds, size_t n, size_t d, const dpt_model_spec *s, unsigned seed);

/* The engine tests' small problem: a 6-8-3 tanh MLP with cross-entropy,
 * momentum (lr 0.05, batch 64), on `rows` rows of ref_make_data (seed 21).
 * 0, or -1 where the model does not initialise. */
/* Engine defaults for the tests: unpinned (placement has tests of its own),
 * with this many threads and shuffling on or off. */
void ref_engine_opts(dpt_engine_opts *eo, int threads, int shuffle);

/* fmnist-mlp's network, 784-256-128-10 ReLU with cross-entropy. */
int ref_fmnist_mlp(dpt_model *m);

int ref_small_mlp(dpt_model *m, dpt_dataset *ds, dpt_optim_spec *o, size_t rows);

#endif
