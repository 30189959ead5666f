/* Entry points shared between the AVX-512 kernel files; the table itself is
 * filled in k_avx512.c. */
#ifndef DPT_K_AVX512_H
#define DPT_K_AVX512_H

#include <stddef.h>

#include "kernels/kernels.h"

void dpt_k_sgemm_f32_avx512(int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                            const float *A, size_t lda, const float *B, size_t ldb, float beta,
                            float *C, size_t ldc);
int dpt_k_sgemm_class_avx512(int ta, int tb, size_t m, size_t n, size_t k);
int dpt_k_sgemm_tn_fold_avx512(int nu, const size_t *k, const float *const *A, size_t lda,
                               const float *const *B, size_t ldb, size_t m, size_t n, size_t i0,
                               size_t i1, float *C, size_t ldc);
void dpt_k_sgemm_part_f32_avx512(int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                                 const float *A, size_t lda, const float *B, size_t ldb, float beta,
                                 float *C, size_t ldc, size_t i0, size_t i1, size_t j0, size_t j1);

double dpt_k_glm_grad_f32_avx512(dpt_glm_loss loss, size_t rows, size_t d, const float *X,
                                 size_t ld, const float *y, const float *w, float b, float *g,
                                 double *gb, size_t *hits);

/* dst:(n) += src:(n), shared by the update's reduction */
void dpt_k_add_f32_avx512(size_t n, const float *src, float *dst);

int dpt_k_update_f32_avx512(dpt_update_rule rule, size_t n, size_t ahead, float *w,
                            const float *const *gs, int ng, size_t goff, float *v, float gscale,
                            float wd, float mu, float lr);

double dpt_k_mlp_tiny_grad_f32_avx512(size_t rows, size_t d, size_t h, const float *X, size_t ld,
                                      const float *y, const float *p, float *g);

#endif
