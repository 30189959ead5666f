/* Entry points shared between the AVX2 kernel files (all compiled with
 * -mavx2 -mfma); the table itself is filled in k_avx2.c. */
#ifndef DPT_K_AVX2_H
#define DPT_K_AVX2_H

#include <stddef.h>

#include "kernels/kernels.h"

void dpt_k_sgemm_f32_avx2(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *A,
                          size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);
/* the table's sgemm_part; the AVX-512 kernel hands it the shapes it leaves */
void dpt_k_sgemm_part_f32_avx2(int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                               const float *A, size_t lda, const float *B, size_t ldb, float beta,
                               float *C, size_t ldc, size_t i0, size_t i1, size_t j0, size_t j1);

double dpt_k_glm_grad_f32_avx2(dpt_glm_loss loss, size_t rows, size_t d, const float *X, size_t ld,
                               const float *y, const float *w, float b, float *g, double *gb);

double dpt_k_mlp_tiny_grad_f32_avx2(size_t rows, size_t d, size_t h, const float *X, size_t ld,
                                    const float *y, const float *p, float *g);

#endif
