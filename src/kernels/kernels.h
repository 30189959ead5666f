/* The kernel table: every hot loop of training goes through it.
 * Filled with the scalar reference first, then overridden by the optimized
 * ISA's entries (BLIS style), so a missing kernel falls back by itself.
 * Selected once, before any parallel region; kernels never allocate, never
 * create threads, and take any alignment and any length (tails handled).
 * All matrices are row-major with explicit leading dimensions (in floats). */
#ifndef DPT_KERNELS_H
#define DPT_KERNELS_H

#include <stddef.h>

typedef enum { DPT_ISA_SCALAR = 0, DPT_ISA_AVX2 = 1, DPT_ISA_AVX512 = 2 } dpt_isa;

typedef enum { DPT_ACT_RELU = 0, DPT_ACT_TANH = 1, DPT_ACT_SIGMOID = 2 } dpt_act;

typedef enum {
    DPT_UPDATE_PLAIN = 0,
    DPT_UPDATE_MOMENTUM = 1,
    DPT_UPDATE_NESTEROV = 2
} dpt_update_rule;

/* Floats the update kernel sums at a time when it reduces several arrays
 * (2 KiB: the partial sum stays in L1). */
#define DPT_UPDATE_BLOCK 512
/* how far ahead (floats) the AVX2 and AVX-512 updates ask for w's lines */
#define DPT_UPDATE_PREFETCH 1024

/* The largest input and hidden widths the fused tiny-MLP kernel takes. */
#define DPT_TINY_MAX_D 16
#define DPT_TINY_MAX_H 32

/* Loss of a single-output linear model in the fused gradient kernel. */
typedef enum { DPT_GLM_MSE = 0, DPT_GLM_BCE = 1 } dpt_glm_loss;

typedef struct dpt_kernels {
    const char *isa; /* "scalar", "avx2" or "avx512" */

    /* x:(n) y:(n) -> sum x*y */
    float (*dot)(size_t n, const float *x, const float *y);
    /* y:(n) += a * x:(n) */
    void (*axpy)(size_t n, float a, const float *x, float *y);
    /* x:(n) *= a */
    void (*scale)(size_t n, float a, float *x);
    /* dst:(n) += src:(n); the step of the tree reduction */
    void (*add)(size_t n, const float *src, float *dst);
    /* The optimizer step over n parameters (dpt/optim.h), fused with the
     * last reduction: gsum = ((gs[0] + gs[1]) + gs[2]) + ... over the ng >= 1
     * arrays gs[u] + goff, n floats each, then g = gscale * gsum + wd * w, then plain:
     * w -= lr g; momentum: v = mu v + g, w -= lr v; nesterov: v = mu v + g,
     * w -= lr (g + mu v). These float operations in this order, never fused,
     * so every table gives the same bits; gs is only read. v is unused (may be
     * NULL) for plain. Returns nonzero when some g or some resulting w is
     * not finite. w[0, ahead) (ahead >= n) is the caller's: a caller that
     * updates a slice a block at a time passes the slice's end, and the
     * kernel asks for w's lines past the block early (PREFETCHW), never
     * writing there. */
    int (*update)(dpt_update_rule rule, size_t n, size_t ahead, float *w, const float *const *gs,
                  int ng, size_t goff, float *v, float gscale, float wd, float mu, float lr);

    /* Fused single pass over rows of a one-output linear model:
     * X:(rows,d) stride ld, y:(rows), w:(d), b scalar.
     * z = x.w + b, l = loss(z, y), r = dl/dz; g:(d) += r * x; *gb += r.
     * MSE: l = (z-y)^2, r = 2(z-y). BCE with logits: l = log(1+e^z) - y z,
     * r = sigmoid(z) - y. g may be NULL (forward only). BCE: hits, unless
     * NULL, gets the rows with (z > 0) == (y > 0.5) added (those a 0.5
     * threshold classifies right); MSE leaves it alone. Returns sum of l. */
    double (*glm_grad)(dpt_glm_loss loss, size_t rows, size_t d, const float *X, size_t ld,
                       const float *y, const float *w, float b, float *g, double *gb, size_t *hits);

    /* C:(m,n) = alpha * op(A) op(B) + beta * C.
     * op(A):(m,k) is A[i*lda+p] (ta=0) or A[p*lda+i] (ta=1);
     * op(B):(k,n) is B[p*ldb+j] (tb=0) or B[j*ldb+p] (tb=1).
     * beta == 0 overwrites C without reading it. */
    void (*sgemm)(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *A,
                  size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);
    /* The block [i0, i1) x [j0, j1) of sgemm's C (the same arguments: A, B
     * and C the whole matrices' base pointers, m, n, k the whole shape),
     * i0 <= i1 <= m, j0 <= j1 <= n. Each element of the block gets the float
     * operations, in the order, that the whole call gives it: the same bits,
     * whatever the block (the code path is chosen from the whole shape, then
     * run over the block). Nothing outside the block is written in C, nor
     * read there. An empty block does nothing. Threads that each take a
     * block of rows or columns of one product (the layer split) get the
     * bits of one call. sgemm is this over the whole of C. */
    void (*sgemm_part)(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *A,
                       size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc,
                       size_t i0, size_t i1, size_t j0, size_t j1);
    /* Which of sgemm_part's loops a shape runs, as seen from the rows: two
     * shapes that differ only in m and get the same class >= 0 give each
     * element of a row the same float operations in the same order, so
     * that the rows of several calls can go through one (the layer split's
     * units) with the bits of one call each. Negative: no such promise. */
    int (*sgemm_class)(int ta, int tb, size_t m, size_t n, size_t k);
    /* R one-row forward products at once: for i < R, columns [j0, j1) of
     * C_i = C + i*ldc, (1, n) = alpha * (A + i*lda):(1, k) B^T, B:(n,k) rows
     * contiguous, each with the bits sgemm_part(0, 1, 1, n, k, alpha, A +
     * i*lda, lda, B, ldb, 0, C_i, ldc, 0, 1, j0, j1) gives it; n >= 2. The
     * layer split's one-row units share each load of B. */
    void (*sgemv_rows)(size_t R, size_t n, size_t k, float alpha, const float *A, size_t lda,
                       const float *B, size_t ldb, float *C, size_t ldc, size_t j0, size_t j1);
    /* The layer split's fold of an item's dW rows: rows [i0, i1) (all n
     * columns) of C = the pairwise sum over units v < nu of A_v^T B_v,
     * A_v:(k[v], m) lda apart, B_v:(k[v], n) ldb apart, each unit's product
     * with the bits sgemm_part(1, 0, m, n, k[v], 1, A_v, lda, B_v, ldb, 0,
     * ...) gives it, the sums add's in the engine's order (a unit added to
     * the sums of 1, 2, 4, ... units before it while they are complete, the
     * partial sums left added lowest first), C written once. Returns
     * nonzero, having written nothing, for units whose shapes it does not
     * compute this way; NULL in a table without it. Callers then compute
     * each unit and add. */
    int (*sgemm_tn_fold)(int nu, const size_t *k, const float *const *A, size_t lda,
                         const float *const *B, size_t ldb, size_t m, size_t n, size_t i0,
                         size_t i1, float *C, size_t ldc);

    /* Z:(rows,cols) stride ldz: each row += b:(cols), then A = act(Z) in place
     * or into A (A may equal Z). */
    void (*bias_act)(dpt_act act, int apply_act, size_t rows, size_t cols, const float *b, float *Z,
                     size_t ldz);
    /* dZ:(rows,cols) = dA * act'(.) computed from the activation output A:
     * relu: A>0, tanh: 1-A^2, sigmoid: A(1-A). dZ may equal dA. */
    void (*act_bwd)(dpt_act act, size_t rows, size_t cols, const float *A, size_t lda,
                    const float *dA, size_t ldda, float *dZ, size_t lddz);
    /* out:(cols) += column sums of M:(rows,cols) stride ld */
    void (*col_sum)(size_t rows, size_t cols, const float *M, size_t ld, float *out);
    /* bias_act, act_bwd and col_sum compute each column the same way
     * wherever it falls in the row (vector body or masked tail): a slice of
     * the columns (pointers + j0, cols = j1 - j0) gives the bits the whole
     * rows give those columns, for the layer split. */

    /* Softmax cross-entropy over rows of logits Z:(rows,K) stride ldz, labels
     * y:(rows) class ids as floats. dZ (may be NULL, may equal Z) gets
     * softmax(z) - onehot(y). *correct (may be NULL) += rows whose argmax == y.
     * Returns the sum of -log softmax(z)[y]. */
    double (*softmax_ce)(size_t rows, size_t K, const float *Z, size_t ldz, const float *y,
                         float *dZ, size_t lddz, size_t *correct);
    /* A tiny MLP fused over rows (mlp-seed's 10-20-1): one ReLU hidden layer
     * of h units, one output, MSE; forward, loss and backward per block of
     * rows without writing activations out. X:(rows,d) stride ld, y:(rows);
     * p = W1:(h,d), b1:(h), W2:(1,h), b2 as the model lays them out, g the
     * same layout, added to, or NULL: the loss alone (the forward pass, as
     * evaluation wants it). Returns sum (z - y)^2. Needs d <=
     * DPT_TINY_MAX_D and h <= DPT_TINY_MAX_H. Sums in another order than the
     * generic path: the same results within float rounding, not the same bits. */
    double (*mlp_tiny_grad)(size_t rows, size_t d, size_t h, const float *X, size_t ld,
                            const float *y, const float *p, float *g);

    /* Elementwise exp/log over x:(n) into out:(n) (out may equal x). */
    void (*vexp)(size_t n, const float *x, float *out);
    void (*vlog)(size_t n, const float *x, float *out);
} dpt_kernels;

/* The table in use. The first call picks it: DPT_ISA from the environment
 * when set, else the best the CPU supports. */
const dpt_kernels *dpt_kernels_get(void);

/* Force a choice: "auto", "scalar", "avx2" or "avx512". Fails (DPT_EINVAL or
 * DPT_ENOTSUP, message set) on an unknown name or a CPU/build without it.
 * Must be called outside parallel regions. */
int dpt_kernels_select(const char *name);

/* Whether this CPU and OS (YMM state saved) and this build can run AVX2+FMA. */
int dpt_cpu_has_avx2(void);
int dpt_build_has_avx2(void);
/* Whether this CPU has AVX-512 F, BW, DQ and VL and the OS saves the opmask
 * and ZMM state (XCR0 bits 1, 2, 5, 6, 7), and this build has the kernels. */
int dpt_cpu_has_avx512(void);
int dpt_build_has_avx512(void);

/* Reference and optimized tables, filled by their files. On a build without
 * the AVX2 (AVX-512) files dpt_kernels_fill_avx2 (_avx512) leaves the table
 * as it is. The AVX-512 fill overrides an AVX2-filled table: apply scalar,
 * then AVX2, then AVX-512, and a kernel it lacks stays AVX2. */
void dpt_kernels_fill_scalar(dpt_kernels *k);
void dpt_kernels_fill_avx2(dpt_kernels *k);
void dpt_kernels_fill_avx512(dpt_kernels *k);

#endif
