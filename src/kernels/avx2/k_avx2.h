/* Entry points shared between the AVX2 kernel files (all compiled with
 * -mavx2 -mfma); the table itself is filled in k_avx2.c. */
#ifndef DPT_K_AVX2_H
#define DPT_K_AVX2_H

#include <stddef.h>

#include "kernels/kernels.h"

void dpt_k_sgemm_f32_avx2(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *A,
                          size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);
/* the table's sgemm_part; the AVX-512 kernel hands it the shapes it leaves */
int dpt_k_sgemm_tn_fold_avx2(int nu, const size_t *k, const float *const *A, size_t lda,
                             const float *const *B, size_t ldb, size_t m, size_t n, size_t i0,
                             size_t i1, float *C, size_t ldc);
void dpt_k_sgemv_rows_avx2(size_t R, size_t n, size_t k, float alpha, const float *A, size_t lda,
                           const float *B, size_t ldb, float *C, size_t ldc, size_t j0, size_t j1);
int dpt_k_sgemm_class_avx2(int ta, int tb, size_t m, size_t n, size_t k);
void dpt_k_sgemm_part_f32_avx2(int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                               const float *A, size_t lda, const float *B, size_t ldb, float beta,
                               float *C, size_t ldc, size_t i0, size_t i1, size_t j0, size_t j1);

/* The small-row shapes, which both tables send to their small-row loops
 * (after GEMV, m or n == 1, and rank 1, k == 1): the forward A B^T of a few
 * rows, and dW, A^T B contracted over a few rows. */
#define DPT_SGEMM_SMALL_NT(ta, tb, m, n, k) (!(ta) && (tb) && (m) <= 16 && (n) >= 4 && (k) >= 32)
#define DPT_SGEMM_SMALL_TN(ta, tb, m, n, k) ((ta) && !(tb) && (k) >= 2 && (k) <= 16 && (n) >= 32)

/* The packed path reads A in place, without packing, where its rows run
 * along k (ta = 0): the micro-kernel broadcasts one float of each row a k
 * step, so the rows' layout costs nothing, and the pack's transposes (a
 * tenth of a forward product's time) are saved; the FMAs are the same, in
 * the same order. Not where the rows lie a multiple of 1 KiB apart: a
 * tile's rows would share four or fewer L1 sets with the packed B panel. */
#define DPT_SGEMM_A_IN_PLACE(ta, lda) (!(ta) && (lda) * sizeof(float) % 1024 != 0)

/* dW's A panel for rows i..i+mr-1 of C: a[p*w + r] = alpha A[p*lda + r] for
 * r < mr, 0 for mr <= r < w (A already at column i) */
static inline void dpt_k_pack_tn_a(size_t k, size_t mr, size_t w, float alpha, const float *A,
                                   size_t lda, float *a)
{
    for (size_t p = 0; p < k; p++)
        for (size_t r = 0; r < w; r++) a[p * w + r] = r < mr ? alpha * A[p * lda + r] : 0.0f;
}

/* The ni x nj corner of a small-row forward tile: C[r*ldc + q] = alpha
 * s[r][q] + beta C[r*ldc + q] (C not read when beta == 0) */
static inline void dpt_k_store_tile4(size_t ni, size_t nj, const float (*s)[4], float alpha,
                                     float beta, float *C, size_t ldc)
{
    for (size_t r = 0; r < ni; r++)
        for (size_t q = 0; q < nj; q++) {
            float *o = C + r * ldc + q;
            *o = beta == 0.0f ? alpha * s[r][q] : alpha * s[r][q] + beta * *o;
        }
}

double dpt_k_glm_grad_f32_avx2(dpt_glm_loss loss, size_t rows, size_t d, const float *X, size_t ld,
                               const float *y, const float *w, float b, float *g, double *gb,
                               size_t *hits);

double dpt_k_mlp_tiny_grad_f32_avx2(size_t rows, size_t d, size_t h, const float *X, size_t ld,
                                    const float *y, const float *p, float *g);

#endif
