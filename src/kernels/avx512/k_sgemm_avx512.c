/* SGEMM, AVX-512: C:(m,n) = alpha op(A):(m,k) op(B):(k,n) + beta C.
 * The AVX2 kernel's BLIS blocking (k in blocks of <= KC, m in blocks of
 * <= MC packed into MR-row panels for L2, n in NR-column micro-panels of B
 * packed per block for L1) with the register tile that 32 zmm registers
 * allow: 12x32, 24 accumulators + 2 B vectors + 1 broadcast (AVX2: 6x16 in
 * 12 of 16 ymm). Twice the rows per B load and twice the lanes per FMA.
 * Packing absorbs the transposition flags (8x8 transposes where the source
 * runs the other way); A whose rows run along k is read in place instead
 * (DPT_SGEMM_A_IN_PLACE, the same FMAs); column edges are opmask stores,
 * no scalar tail.
 * The AVX2 kernel's small-row loops (2-16 rows forward, a contraction over
 * 2-16 rows for dW) run here at 16 lanes, the forward's tiles also for
 * A B^T of 4-32 columns at any m, and with m <= 24 and B untransposed whole
 * B panels are read in place. Other shapes the packed path does not pay
 * for — m == 1 or n == 1 (GEMV), k == 1 (rank 1), n <= 32 with k >= 16 (A
 * read in place) — go to the AVX2 kernel, which the AVX-512 table always
 * has beside it.
 * Pack buffers are thread-local and static: the kernel never allocates. */
#include <immintrin.h>
#include <string.h>

#include "kernels/avx2/k_avx2.h"
#include "kernels/avx512/k_avx512.h"
#include "kernels/avx512/k_math_avx512.h"
#include "kernels/avx2/k_transpose_avx2.h"
#include "kernels/k_prefetch.h"
#include "kernels/k_rows.h"

#define MR 12
#define NR 32
#define KC 256
#define MC 264 /* one block for batches of 256 rows; multiple of MR */
/* the AVX2 kernel's thresholds for reading A or B in place */
#define DIRECT_A_N 32
#define DIRECT_B_M 24
/* A B^T with at most 32 columns, past the small-row limit: the small-row
 * forward's tiles, each row's bits those of its own small-row call */
#define NARROW_NT(ta, tb, m, n, k) (!(ta) && (tb) && (m) > 16 && (n) >= 4 && (n) <= 32 && (k) >= 32)

/* + 16 floats of slack: the 8-lane stores of a row panel run past it */
static _Thread_local float apack[MC * KC + 16] __attribute__((aligned(64)));
static _Thread_local float bpack[KC * NR] __attribute__((aligned(64)));

/* Pack op(A)[ic:ic+mc, pc:pc+kc] into panels of MR rows: panel q holds
 * dst[q*MR*kc + p*MR + r] = op(A)(ic + q*MR + r, pc + p), zero past mc. */
static void pack_a(int ta, const float *A, size_t lda, size_t ic, size_t pc, size_t mc, size_t kc,
                   float *dst)
{
    for (size_t i0 = 0; i0 < mc; i0 += MR, dst += MR * kc) {
        size_t mr = mc - i0 < MR ? mc - i0 : MR;
        if (ta) {
            /* op(A)(i,p) = A[p*lda + i]: each p gives mr contiguous floats,
             * read and written through masks (zeros past mr) */
            const float *src = A + pc * lda + ic + i0;
            __mmask16 mk = dpt_kmask16(mr);
            for (size_t p = 0; p < kc; p++, src += lda)
                _mm512_mask_storeu_ps(dst + p * MR, (__mmask16)0x0FFF,
                                      _mm512_maskz_loadu_ps(mk, src));
            continue;
        }
        /* op(A)(i,p) = A[i*lda + p]: rows contiguous in p; rows 0-7 and 8-11
         * go through one 8x8 transpose each */
        const float *row[MR];
        for (size_t r = 0; r < MR; r++) row[r] = A + (ic + i0 + (r < mr ? r : 0)) * lda + pc;
        size_t p = 0;
        for (; p + 8 <= kc; p += 8) {
            __m256 v[8], u[8];
            for (size_t r = 0; r < 8; r++)
                v[r] = r < mr ? _mm256_loadu_ps(row[r] + p) : _mm256_setzero_ps();
            for (size_t r = 0; r < 8; r++)
                u[r] = r < 4 && r + 8 < mr ? _mm256_loadu_ps(row[r + 8] + p) : _mm256_setzero_ps();
            transpose8(v);
            transpose8(u);
            for (size_t q = 0; q < 8; q++) {
                _mm256_storeu_ps(dst + (p + q) * MR, v[q]);
                _mm_storeu_ps(dst + (p + q) * MR + 8, _mm256_castps256_ps128(u[q]));
            }
        }
        for (; p < kc; p++)
            for (size_t r = 0; r < MR; r++) dst[p * MR + r] = r < mr ? row[r][p] : 0.0f;
    }
}

/* Pack op(B)[pc:pc+kc, jc:jc+nr] into dst[p*w + j], w = 16 or 32, zero past nr. */
static void pack_b(int tb, const float *B, size_t ldb, size_t pc, size_t jc, size_t kc, size_t nr,
                   size_t w, float *dst)
{
    if (!tb) {
        /* op(B)(p,j) = B[p*ldb + j]: rows contiguous in j */
        const float *src = B + pc * ldb + jc;
        __mmask16 m0 = dpt_kmask16(nr < 16 ? nr : 16), m1 = dpt_kmask16(nr > 16 ? nr - 16 : 0);
        for (size_t p = 0; p < kc; p++, src += ldb) {
            _mm512_store_ps(dst + p * w, _mm512_maskz_loadu_ps(m0, src));
            if (w == 32) _mm512_store_ps(dst + p * w + 16, _mm512_maskz_loadu_ps(m1, src + 16));
        }
        return;
    }
    /* op(B)(p,j) = B[j*ldb + p]: columns contiguous in p, transpose 8x8 */
    for (size_t j0 = 0; j0 < w; j0 += 8) {
        const float *col[8];
        size_t nv = nr > j0 ? (nr - j0 < 8 ? nr - j0 : 8) : 0;
        for (size_t j = 0; j < 8; j++) col[j] = B + (jc + (j < nv ? j0 + j : 0)) * ldb + pc;
        size_t p = 0;
        for (; p + 8 <= kc; p += 8) {
            __m256 v[8];
            for (size_t j = 0; j < 8; j++)
                v[j] = j < nv ? _mm256_loadu_ps(col[j] + p) : _mm256_setzero_ps();
            transpose8(v);
            for (size_t q = 0; q < 8; q++) _mm256_store_ps(dst + (p + q) * w + j0, v[q]);
        }
        for (; p < kc; p++)
            for (size_t j = 0; j < 8; j++) dst[p * w + j0 + j] = j < nv ? col[j][p] : 0.0f;
    }
}

/* A's tile: packed (p, MR floats a k step) or in place (p the
 * tile's first row, rs floats between rows, k contiguous) */
typedef struct {
    const float *p;
    size_t rs;
} a_rows;

#define ROW_FMA(r, c0, c1)                                                                         \
    do {                                                                                           \
        if ((r) >= MRA) break;                                                                     \
        __m512 av = _mm512_set1_ps(a[(r)*rs]);                                                     \
        c0 = _mm512_fmadd_ps(av, b0, c0);                                                          \
        if (NV == 2) c1 = _mm512_fmadd_ps(av, b1, c1);                                             \
    } while (0)

/* row r of the tile through masks m0, m1 (all ones for a full tile) */
#define ROW_STORE(r, c0, c1)                                                                       \
    do {                                                                                           \
        if ((r) >= mr) break;                                                                      \
        float *cr = c + (r)*ldc;                                                                   \
        __m512 x0 = _mm512_mul_ps(va, c0);                                                         \
        if (beta != 0.0f) x0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, cr), x0);             \
        _mm512_mask_storeu_ps(cr, m0, x0);                                                         \
        if (NV == 2) {                                                                             \
            __m512 x1 = _mm512_mul_ps(va, c1);                                                     \
            if (beta != 0.0f) x1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16), x1);    \
            _mm512_mask_storeu_ps(cr + 16, m1, x1);                                                \
        }                                                                                          \
    } while (0)

/* C:(mr,nr) tile = alpha * a:(kc, MR packed) b:(kc, 16*NV; rows bs apart) + beta C,
 * mr <= MRA <= 12, nr <= 16*NV; the FMAs run for MRA rows (the tile's
 * rows, a constant of each instance: a short tile costs its own rows, not
 * twelve), columns past nr are computed on the packing's zeros and dropped.
 * beta == 0 never reads C. */
DPT_INLINE void ukr_12xNV(const int NV, const int PACKED, const int MRA, size_t kc, const a_rows *A,
                          const float *b, size_t bs, float *c, size_t ldc, size_t mr, size_t nr,
                          float alpha, float beta)
{
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    __m512 c60 = c00, c61 = c00, c70 = c00, c71 = c00, c80 = c00, c81 = c00;
    __m512 c90 = c00, c91 = c00, ca0 = c00, ca1 = c00, cb0 = c00, cb1 = c00;
    for (size_t r = 0; r < mr; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        if (NV == 2) _mm_prefetch((const char *)(c + r * ldc + 31), _MM_HINT_T0);
    }
    const float *a = A->p;
    const size_t rs = PACKED ? 1 : A->rs;
#pragma GCC unroll 4
    for (size_t p = 0; p < kc; p++) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = NV == 2 ? _mm512_loadu_ps(b + 16) : b0;
        ROW_FMA(0, c00, c01);
        ROW_FMA(1, c10, c11);
        ROW_FMA(2, c20, c21);
        ROW_FMA(3, c30, c31);
        ROW_FMA(4, c40, c41);
        ROW_FMA(5, c50, c51);
        ROW_FMA(6, c60, c61);
        ROW_FMA(7, c70, c71);
        ROW_FMA(8, c80, c81);
        ROW_FMA(9, c90, c91);
        ROW_FMA(10, ca0, ca1);
        ROW_FMA(11, cb0, cb1);
        a += PACKED ? MR : 1;
        b += bs;
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    __mmask16 m0 = dpt_kmask16(nr < 16 ? nr : 16), m1 = dpt_kmask16(nr > 16 ? nr - 16 : 0);
    ROW_STORE(0, c00, c01);
    ROW_STORE(1, c10, c11);
    ROW_STORE(2, c20, c21);
    ROW_STORE(3, c30, c31);
    ROW_STORE(4, c40, c41);
    ROW_STORE(5, c50, c51);
    ROW_STORE(6, c60, c61);
    ROW_STORE(7, c70, c71);
    ROW_STORE(8, c80, c81);
    ROW_STORE(9, c90, c91);
    ROW_STORE(10, ca0, ca1);
    ROW_STORE(11, cb0, cb1);
}

/* one instance per row count (kernels/k_rows.h) */
#define UKR_AT(R, NV, PACKED) ukr_12xNV(NV, PACKED, R, kc, A, b, bs, c, ldc, mr, nr, alpha, beta)
#define TILE_ROWS(NV, PACKED) DPT_BY_ROWS12(mr, UKR_AT, NV, PACKED)

typedef void (*tile_fn)(size_t kc, const a_rows *A, const float *b, size_t bs, float *c, size_t ldc,
                        size_t mr, size_t nr, float alpha, float beta);

static void tile32_packed(size_t kc, const a_rows *A, const float *b, size_t bs, float *c,
                          size_t ldc, size_t mr, size_t nr, float alpha, float beta)
{
    TILE_ROWS(2, 1);
}

static void tile16_packed(size_t kc, const a_rows *A, const float *b, size_t bs, float *c,
                          size_t ldc, size_t mr, size_t nr, float alpha, float beta)
{
    TILE_ROWS(1, 1);
}

static void tile32_direct(size_t kc, const a_rows *A, const float *b, size_t bs, float *c,
                          size_t ldc, size_t mr, size_t nr, float alpha, float beta)
{
    TILE_ROWS(2, 0);
}

static void tile16_direct(size_t kc, const a_rows *A, const float *b, size_t bs, float *c,
                          size_t ldc, size_t mr, size_t nr, float alpha, float beta)
{
    TILE_ROWS(1, 0);
}

/* The small-row regime (a thread's or a domain's 2-16 rows of a step), as
 * in the AVX2 kernel (same shapes, same loops) at twice the width: the
 * weights are streamed, not packed. */

/* Forward, C:(m,n) = alpha A:(m,k) B^T + beta C, B:(n,k) rows contiguous,
 * m <= 16: four rows of B against up to six of A, 16 lanes of p at a time
 * (up to 24 accumulators, 10 loads per 24 FMAs; the last 1-15 p through
 * masks). The group of B rows stays in L1 while all of A's rows pass it.
 * Each element: 16 lane sums over p, folded 16 -> 8 lanes, then the AVX2
 * kernel's pairwise tree, the same for every element of every tile;
 * columns [j0, j1). */
DPT_INLINE __m128 nt_fold4(__m512 x0, __m512 x1, __m512 x2, __m512 x3)
{
    __m256 y0 = _mm256_add_ps(_mm512_castps512_ps256(x0), _mm512_extractf32x8_ps(x0, 1));
    __m256 y1 = _mm256_add_ps(_mm512_castps512_ps256(x1), _mm512_extractf32x8_ps(x1, 1));
    __m256 y2 = _mm256_add_ps(_mm512_castps512_ps256(x2), _mm512_extractf32x8_ps(x2, 1));
    __m256 y3 = _mm256_add_ps(_mm512_castps512_ps256(x3), _mm512_extractf32x8_ps(x3, 1));
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(y0, y1), _mm256_hadd_ps(y2, y3));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

/* One tile: IA rows of A (a 16-lane load each) against four rows of B,
 * 4 IA accumulators; B's rows past nj alias its first (computed, never
 * stored). Every element's sum is the same lane order and the same fold
 * whatever the tile, so the tile shape never changes a bit. */
DPT_INLINE void nt_tile(const int IA, size_t nj, size_t k, float alpha, const float *A, size_t lda,
                        const float *const *b, float beta, float *C, size_t ldc, size_t npf)
{
    size_t tail = k & 15, full = k - tail;
    __mmask16 mt = dpt_kmask16(tail);
    const float *a[6];
    __m512 c[6][4];
    for (int r = 0; r < IA; r++) {
        a[r] = A + (size_t)r * lda;
        for (int q = 0; q < 4; q++) c[r][q] = _mm512_setzero_ps();
    }
    size_t p = 0;
    for (; p < full; p += 16) {
        __m512 w[4];
        /* the npf rows after this tile's, a line of each per step */
        for (size_t r = 0; r < npf; r++)
            dpt_prefetch_ahead(A, (((size_t)IA + r) * lda + p) * sizeof(float), 64);
        for (int q = 0; q < 4; q++) w[q] = _mm512_loadu_ps(b[q] + p);
        for (int r = 0; r < IA; r++) {
            __m512 x = _mm512_loadu_ps(a[r] + p);
            for (int q = 0; q < 4; q++) c[r][q] = _mm512_fmadd_ps(x, w[q], c[r][q]);
        }
    }
    if (tail) {
        __m512 w[4];
        for (int q = 0; q < 4; q++) w[q] = _mm512_maskz_loadu_ps(mt, b[q] + p);
        for (int r = 0; r < IA; r++) {
            __m512 x = _mm512_maskz_loadu_ps(mt, a[r] + p);
            for (int q = 0; q < 4; q++) c[r][q] = _mm512_fmadd_ps(x, w[q], c[r][q]);
        }
    }
    float s[6][4];
    for (int r = 0; r < IA; r++) _mm_storeu_ps(s[r], nt_fold4(c[r][0], c[r][1], c[r][2], c[r][3]));
    dpt_k_store_tile4((size_t)IA, nj, (const float(*)[4])s, alpha, beta, C, ldc);
}

/* one instance per tile height */
#define NT_AT(R) nt_tile(R, nj, k, alpha, A + i * lda, lda, b, beta, C + i * ldc + j, ldc, npf)

/* rows of A in tiles of 6 (6 loads of A and 4 of B feed 24 FMAs, against 16
 * for 4 x 4) where that leaves no thin tile, else of 4; the last tile as
 * high as the rows it has (no FMAs on aliased rows) */
DPT_INLINE size_t nt_tile_rows(size_t left)
{
    return left == 6 || left >= 9 ? 6 : left > 6 || left == 4 ? 4 : left;
}

/* rows [i, i + ni) of A against B's rows [j, j + nj), prefetching the
 * npf rows that follow them */
static void nt_tiles(size_t i, size_t ni, size_t j, size_t nj, size_t k, float alpha,
                     const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                     size_t ldc, size_t npf)
{
    const float *b[4];
    for (size_t q = 0; q < 4; q++) b[q] = B + (j + (q < nj ? q : 0)) * ldb;
    switch (ni) {
    case 6:
        NT_AT(6);
        break;
    case 5:
        NT_AT(5);
        break;
    case 4:
        NT_AT(4);
        break;
    case 3:
        NT_AT(3);
        break;
    case 2:
        NT_AT(2);
        break;
    default:
        NT_AT(1);
        break;
    }
}

/* m <= 16: each group of four B rows meets every row of A from L1 */
static void small_nt(size_t m, size_t j0, size_t j1, size_t k, float alpha, const float *A,
                     size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    for (size_t j = j0; j < j1; j += 4)
        for (size_t i = 0, ni; i < m; i += ni) {
            ni = nt_tile_rows(m - i);
            nt_tiles(i, ni, j, j1 - j < 4 ? j1 - j : 4, k, alpha, A, lda, B, ldb, beta, C, ldc, 0);
        }
}

/* Few columns (n <= 32, a classifier's last layer), any m: the same tiles,
 * B (at most 32 rows) held in L1 while each tile of A's rows meets all of
 * it, so A is read once; its first column group prefetches the next tile's
 * rows (short rows: the hardware prefetchers start each row too late) */
static void narrow_nt(size_t m, size_t j0, size_t j1, size_t k, float alpha, const float *A,
                      size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    for (size_t i = 0, ni; i < m; i += ni) {
        ni = nt_tile_rows(m - i);
        size_t next = m - i - ni, npf = next < 6 ? next : 6;
        for (size_t j = j0; j < j1; j += 4)
            nt_tiles(i, ni, j, j1 - j < 4 ? j1 - j : 4, k, alpha, A, lda, B, ldb, beta, C, ldc,
                     j == j0 ? npf : 0);
    }
}

/* dW, C:(m,n) = alpha A^T B + beta C with k <= 16 rows, A:(k,m), B:(k,n):
 * the AVX2 kernel's rank-k update (column blocks of B in L1, reused by every
 * row of C) with 12x32 register tiles: 24 accumulators, two B loads and 12
 * broadcasts of A's packed, alpha-scaled columns per p. Each element is
 * beta c (a multiply), then + (alpha a_p) b_p for p = 0..k-1 in order,
 * fused: the AVX2 kernel's bits. */
#define TN_JB 256

#define TN_INIT(r, c0, c1)                                                                         \
    do {                                                                                           \
        if ((r) >= MRA) break;                                                                     \
        if (beta == 0.0f || (r) >= mr) break;                                                      \
        c0 = _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m0, c + (r)*ldc));                            \
        c1 = _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m1, c + (r)*ldc + 16));                       \
    } while (0)
#define TN_FMA(r, c0, c1)                                                                          \
    do {                                                                                           \
        if ((r) >= MRA) break;                                                                     \
        __m512 av = _mm512_set1_ps(a[r]);                                                          \
        c0 = _mm512_fmadd_ps(av, b0, c0);                                                          \
        c1 = _mm512_fmadd_ps(av, b1, c1);                                                          \
    } while (0)
#define TN_STORE(r, c0, c1)                                                                        \
    do {                                                                                           \
        if ((r) >= MRA) break;                                                                     \
        if ((r) >= mr) break;                                                                      \
        _mm512_mask_storeu_ps(c + (r)*ldc, m0, c0);                                                \
        _mm512_mask_storeu_ps(c + (r)*ldc + 16, m1, c1);                                           \
    } while (0)
#define TN_ROWS(OP)                                                                                \
    OP(0, c00, c01);                                                                               \
    OP(1, c10, c11);                                                                               \
    OP(2, c20, c21);                                                                               \
    OP(3, c30, c31);                                                                               \
    OP(4, c40, c41);                                                                               \
    OP(5, c50, c51);                                                                               \
    OP(6, c60, c61);                                                                               \
    OP(7, c70, c71);                                                                               \
    OP(8, c80, c81);                                                                               \
    OP(9, c90, c91);                                                                               \
    OP(10, ca0, ca1);                                                                              \
    OP(11, cb0, cb1)

/* rows [0, mr) x columns [0, nr) of C, mr <= MRA (the rows the FMAs run
 * for); a: k steps of MR packed values; FULL: nr == 32 (B read without
 * masks) */
DPT_INLINE void small_tn_tile(const int FULL, const int MRA, size_t k, const float *a,
                              const float *b, size_t ldb, float beta, float *c, size_t ldc,
                              size_t mr, size_t nr)
{
    __mmask16 m0 = dpt_kmask16(nr < 16 ? nr : 16), m1 = dpt_kmask16(nr > 16 ? nr - 16 : 0);
    const __m512 vb = _mm512_set1_ps(beta);
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    __m512 c60 = c00, c61 = c00, c70 = c00, c71 = c00, c80 = c00, c81 = c00;
    __m512 c90 = c00, c91 = c00, ca0 = c00, ca1 = c00, cb0 = c00, cb1 = c00;
    TN_ROWS(TN_INIT);
#pragma GCC unroll 4
    for (size_t p = 0; p < k; p++, a += MR, b += ldb) {
        __m512 b0 = FULL ? _mm512_loadu_ps(b) : _mm512_maskz_loadu_ps(m0, b);
        __m512 b1 = FULL ? _mm512_loadu_ps(b + 16) : _mm512_maskz_loadu_ps(m1, b + 16);
        TN_ROWS(TN_FMA);
    }
    TN_ROWS(TN_STORE);
}

/* one instance per row count, as the packed tiles */
#define TN_AT(R, FULL, b, c, nr) small_tn_tile(FULL, R, k, a, b, ldb, beta, c, ldc, mr, nr)
#define TN_TILE(FULL, b, c, nr)  DPT_BY_ROWS12(mr, TN_AT, FULL, b, c, nr)

static void small_tn(size_t m, size_t n, size_t k, float alpha, const float *A, size_t lda,
                     const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    float a[16 * MR];
    for (size_t jb = 0; jb < n; jb += TN_JB) {
        size_t je = n - jb < TN_JB ? n : jb + TN_JB;
        for (size_t i = 0; i < m; i += MR) {
            size_t mr = m - i < MR ? m - i : MR;
            dpt_k_pack_tn_a(k, mr, MR, alpha, A + i, lda, a);
            float *c = C + i * ldc;
            size_t j = jb;
            for (; j + NR <= je; j += NR) TN_TILE(1, B + j, c + j, NR);
            if (j < je) TN_TILE(0, B + j, c + j, je - j);
        }
    }
}

/* The path is chosen from the whole shape, then run over the block (the
 * AVX2 kernel's part call for the shapes it takes): the micro-kernel's
 * per-element order is its k blocking, which depends on k alone. */
/* The loops of dpt_k_sgemm_part_f32_avx512 below, in its order of tests;
 * the shapes it hands to the AVX2 kernel keep that kernel's classes, apart
 * from its own. */
int dpt_k_sgemm_class_avx512(int ta, int tb, size_t m, size_t n, size_t k)
{
    int c = -1;
    if (k <= 1 || m == 1 || n == 1 ||
        (!DPT_SGEMM_SMALL_NT(ta, tb, m, n, k) && !NARROW_NT(ta, tb, m, n, k) &&
         !DPT_SGEMM_SMALL_TN(ta, tb, m, n, k) && n <= DIRECT_A_N && k >= 16))
        c = dpt_k_sgemm_class_avx2(ta, tb, m, n, k);
    else if (DPT_SGEMM_SMALL_NT(ta, tb, m, n, k) || NARROW_NT(ta, tb, m, n, k))
        return 0;
    else if (DPT_SGEMM_SMALL_TN(ta, tb, m, n, k))
        return 1;
    else
        return 2;
    return c < 0 ? c : 3 + c;
}

void dpt_k_sgemm_part_f32_avx512(int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                                 const float *A, size_t lda, const float *B, size_t ldb, float beta,
                                 float *C, size_t ldc, size_t i0, size_t i1, size_t j0, size_t j1)
{
    if (i0 >= i1 || j0 >= j1) return;
    if (k <= 1 || m == 1 || n == 1) {
        dpt_k_sgemm_part_f32_avx2(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, i0, i1, j0,
                                  j1);
        return;
    }
    /* the AVX2 kernel's small-row shapes, at this width */
    if (DPT_SGEMM_SMALL_NT(ta, tb, m, n, k)) {
        small_nt(i1 - i0, j0, j1, k, alpha, A + i0 * lda, lda, B, ldb, beta, C + i0 * ldc, ldc);
        return;
    }
    if (NARROW_NT(ta, tb, m, n, k)) {
        narrow_nt(i1 - i0, j0, j1, k, alpha, A + i0 * lda, lda, B, ldb, beta, C + i0 * ldc, ldc);
        return;
    }
    if (DPT_SGEMM_SMALL_TN(ta, tb, m, n, k)) {
        small_tn(i1 - i0, j1 - j0, k, alpha, A + i0, lda, B + j0, ldb, beta, C + i0 * ldc + j0,
                 ldc);
        return;
    }
    if (n <= DIRECT_A_N && k >= 16) {
        dpt_k_sgemm_part_f32_avx2(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, i0, i1, j0,
                                  j1);
        return;
    }
    /* few rows (m <= 24) meet each B panel: B rows read in place (tb = 0)
     * where a panel is whole, instead of packed for one or two tiles */
    int direct_b = !tb && m <= DIRECT_B_M;
    /* A's rows along k: read in place, one row pointer a tile */
    int direct_a = DPT_SGEMM_A_IN_PLACE(ta, lda);
    /* even block sizes: no thin leftover block in k or m */
    size_t nkb = (k + KC - 1) / KC, kcb = (k + nkb - 1) / nkb;
    size_t nmb = (m + MC - 1) / MC, mcb = (m + nmb - 1) / nmb;
    mcb = (mcb + MR - 1) / MR * MR;
    for (size_t pc = 0; pc < k; pc += kcb) {
        size_t kc = k - pc < kcb ? k - pc : kcb;
        float bet = pc ? 1.0f : beta;
        for (size_t ic = i0; ic < i1; ic += mcb) {
            size_t mc = i1 - ic < mcb ? i1 - ic : mcb;
            if (!direct_a) pack_a(ta, A, lda, ic, pc, mc, kc, apack);
            for (size_t jc = j0; jc < j1; jc += NR) {
                size_t nr = j1 - jc < NR ? j1 - jc : NR;
                size_t w = nr > 16 ? 32 : 16;
                const float *bp = bpack;
                size_t bs = w;
                if (direct_b && nr == w) {
                    bp = B + pc * ldb + jc;
                    bs = ldb;
                } else {
                    pack_b(tb, B, ldb, pc, jc, kc, nr, w, bpack);
                }
                tile_fn tl = direct_a ? (w == 32 ? tile32_direct : tile16_direct)
                                      : (w == 32 ? tile32_packed : tile16_packed);
                for (size_t ir = 0; ir < mc; ir += MR) {
                    size_t mr = mc - ir < MR ? mc - ir : MR;
                    a_rows ar = {direct_a ? A + (ic + ir) * lda + pc : apack + ir * kc, lda};
                    tl(kc, &ar, bp, bs, C + (ic + ir) * ldc + jc, ldc, mr, nr, alpha, bet);
                }
            }
        }
    }
}

void dpt_k_sgemm_f32_avx512(int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                            const float *A, size_t lda, const float *B, size_t ldb, float beta,
                            float *C, size_t ldc)
{
    dpt_k_sgemm_part_f32_avx512(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, 0, m, 0, n);
}

/* The layer split's fold of one item (kernels.h, sgemm_tn_fold): every
 * unit's product and the item's pairwise sum in registers, a block of RB
 * rows x 32 columns of C at a time, stored once. A unit's block is the
 * small-row dW loop's (small_tn: 0, then + a_p b_p fused, p in order) or,
 * for one row, AVX2's rank-1 product (one multiply), the loops sgemm_part
 * runs for those shapes; the sum is a binary counter over slots s_j (the
 * sum of 2^j units): a unit is added to s_0, s_1, ... while the slot is
 * taken, and lands in the first free one, as the engine's stack does; the
 * slots left are added lowest first. Each add is add's: s_j + cur. */
typedef struct {
    __m512 v[4][2]; /* [row][half] */
} fold_blk;

DPT_INLINE fold_blk fold_add(const int RB, fold_blk x, fold_blk y)
{
    for (int r = 0; r < RB; r++)
        for (int h = 0; h < 2; h++) x.v[r][h] = _mm512_add_ps(x.v[r][h], y.v[r][h]);
    return x;
}

/* rows i .. i + RB - 1, columns j .. j + 31 (m0, m1: the columns past n off) */
DPT_INLINE fold_blk fold_unit(const int RB, const int K, size_t k, const float *A, size_t lda,
                              const float *B, size_t ldb, size_t i, size_t j, __mmask16 m0,
                              __mmask16 m1)
{
    if (K) k = (size_t)K;
    fold_blk c;
    const float *b = B + j, *a = A + i;
    __m512 b0 = _mm512_maskz_loadu_ps(m0, b), b1 = _mm512_maskz_loadu_ps(m1, b + 16);
    for (int r = 0; r < RB; r++) {
        __m512 av = _mm512_set1_ps(a[r]);
        if (k == 1) {
            c.v[r][0] = _mm512_mul_ps(av, b0);
            c.v[r][1] = _mm512_mul_ps(av, b1);
        } else {
            c.v[r][0] = _mm512_fmadd_ps(av, b0, _mm512_setzero_ps());
            c.v[r][1] = _mm512_fmadd_ps(av, b1, _mm512_setzero_ps());
        }
    }
    for (size_t p = 1; p < k; p++) {
        b += ldb;
        a += lda;
        b0 = _mm512_maskz_loadu_ps(m0, b), b1 = _mm512_maskz_loadu_ps(m1, b + 16);
        for (int r = 0; r < RB; r++) {
            __m512 av = _mm512_set1_ps(a[r]);
            c.v[r][0] = _mm512_fmadd_ps(av, b0, c.v[r][0]);
            c.v[r][1] = _mm512_fmadd_ps(av, b1, c.v[r][1]);
        }
    }
    return c;
}

/* slot j of the counter: taken when bit j of v (units so far) is set */
#define FOLD_SLOT(j)                                                                               \
    if ((j) < LV) {                                                                                \
        if (!(v & (1 << (j)))) {                                                                   \
            s##j = cur;                                                                            \
            continue;                                                                              \
        }                                                                                          \
        cur = fold_add(RB, s##j, cur);                                                             \
    }
#define FOLD_LAST(j)                                                                               \
    if ((j) < LV && (nu & (1 << (j)))) {                                                           \
        acc = have ? fold_add(RB, s##j, acc) : s##j;                                               \
        have = 1;                                                                                  \
    }

/* rows i .. i + RB - 1 x columns j .. j + 31 of C; LV slots hold up to
 * 2^LV units: a unit lands in slot j < log2(nu), and the one that would
 * fill slot log2(nu) is the last, whose sum stays in cur (7 holds any) */
DPT_INLINE void fold_block(const int RB, const int LV, const int K, int nu, const size_t *k,
                           const float *const *A, size_t lda, const float *const *B, size_t ldb,
                           size_t i, size_t j, __mmask16 m0, __mmask16 m1, float *C, size_t ldc)
{
    fold_blk cur = {0}, s0 = cur, s1 = cur, s2 = cur, s3 = cur, s4 = cur, s5 = cur, s6 = cur;
    for (int v = 0; v < nu; v++) {
        cur = fold_unit(RB, K, K ? 0 : k[v], A[v], lda, B[v], ldb, i, j, m0, m1);
        FOLD_SLOT(0)
        FOLD_SLOT(1)
        FOLD_SLOT(2)
        FOLD_SLOT(3)
        FOLD_SLOT(4)
        FOLD_SLOT(5)
        FOLD_SLOT(6)
    }
    fold_blk acc = cur;
    int have = 0;
    FOLD_LAST(0)
    FOLD_LAST(1)
    FOLD_LAST(2)
    FOLD_LAST(3)
    FOLD_LAST(4)
    FOLD_LAST(5)
    FOLD_LAST(6)
    for (int r = 0; r < RB; r++) {
        _mm512_mask_storeu_ps(C + (i + r) * ldc + j, m0, acc.v[r][0]);
        _mm512_mask_storeu_ps(C + (i + r) * ldc + j + 16, m1, acc.v[r][1]);
    }
}

#define FOLD_ROWS4(L)                                                                              \
    for (; i + 4 <= i1; i += 4) fold_block(4, L, K, nu, k, A, lda, B, ldb, i, j, m0, m1, C, ldc)

/* a column block of every unit's B (nu x k x 32 floats) stays in L1 while
 * the rows pass it, four at a time: each B load feeds four rows' FMAs (two
 * in a 2-row block, one in a 1-row one, where the loads bound the fold).
 * The counter has as many slots as the item's units need, ceil(log2 nu):
 * a slot the item never fills still holds registers (with 16 units, 4 x 32
 * blocks spill some of them and still beat 2 x 32 ones). The last rows,
 * fewer than four, take the general counter. K: every unit's k, or 0 (each
 * its own) */
DPT_INLINE void fold_cols(const int K, int nu, const size_t *k, const float *const *A, size_t lda,
                          const float *const *B, size_t ldb, size_t n, size_t i0, size_t i1,
                          float *C, size_t ldc)
{
    int lv = 1;
    while ((1 << lv) < nu) lv++;
    for (size_t j = 0; j < n; j += 32) {
        __mmask16 m0 = dpt_kmask16(n - j < 16 ? n - j : 16);
        __mmask16 m1 = dpt_kmask16(n - j > 32 ? 16 : n - j > 16 ? n - j - 16 : 0);
        size_t i = i0;
        switch (lv) {
        case 1:
            FOLD_ROWS4(1);
            break;
        case 2:
            FOLD_ROWS4(2);
            break;
        case 3:
            FOLD_ROWS4(3);
            break;
        case 4:
            FOLD_ROWS4(4);
            break;
        case 5:
            FOLD_ROWS4(5);
            break;
        default: /* up to 64 units */
            FOLD_ROWS4(6);
            break;
        }
        switch (i1 - i) {
        case 3:
            fold_block(3, 7, K, nu, k, A, lda, B, ldb, i, j, m0, m1, C, ldc);
            break;
        case 2:
            fold_block(2, 7, K, nu, k, A, lda, B, ldb, i, j, m0, m1, C, ldc);
            break;
        case 1:
            fold_block(1, 7, K, nu, k, A, lda, B, ldb, i, j, m0, m1, C, ldc);
            break;
        }
    }
}

/* Units of more rows (k > 8): their FMAs bound the fold, not its adds.
 * Here a block of RB rows x 64 columns (4 RB chains) is in registers and
 * the counter's slots in a buffer in L1: the same operations, the partial
 * sums kept elsewhere. (Up to 8 rows the 4 x 32 register counter is ahead:
 * 8 units of 4 rows, 64 x 512: 18.7 us here, 12.3 there.) */
DPT_INLINE void fold_wide_block(const int RB, int nu, const size_t *k, const float *const *A,
                                size_t lda, const float *const *B, size_t ldb, size_t i, size_t j,
                                const __mmask16 *mk, float *C, size_t ldc, float *slots)
{
    __m512 c[4][4], bv[4];
    for (int r = 0; r < 4; r++)
        for (int h = 0; h < 4; h++) c[r][h] = _mm512_setzero_ps(); /* nu >= 2 sets them */
    for (int v = 0; v < nu; v++) {
        const float *b = B[v] + j, *a = A[v] + i;
        const size_t kv = k[v];
        for (int h = 0; h < 4; h++) bv[h] = _mm512_maskz_loadu_ps(mk[h], b + 16 * h);
        for (int r = 0; r < RB; r++) {
            __m512 av = _mm512_set1_ps(a[r]);
            for (int h = 0; h < 4; h++)
                c[r][h] = kv == 1 ? _mm512_mul_ps(av, bv[h])
                                  : _mm512_fmadd_ps(av, bv[h], _mm512_setzero_ps());
        }
        for (size_t p = 1; p < kv; p++) {
            b += ldb;
            a += lda;
            for (int h = 0; h < 4; h++) bv[h] = _mm512_maskz_loadu_ps(mk[h], b + 16 * h);
            for (int r = 0; r < RB; r++) {
                __m512 av = _mm512_set1_ps(a[r]);
                for (int h = 0; h < 4; h++) c[r][h] = _mm512_fmadd_ps(av, bv[h], c[r][h]);
            }
        }
        int sl = 0;
        for (; v & (1 << sl); sl++)
            for (int r = 0; r < RB; r++)
                for (int h = 0; h < 4; h++)
                    c[r][h] =
                        _mm512_add_ps(_mm512_load_ps(slots + (sl * 4 + r) * 64 + 16 * h), c[r][h]);
        for (int r = 0; r < RB; r++)
            for (int h = 0; h < 4; h++)
                _mm512_store_ps(slots + (sl * 4 + r) * 64 + 16 * h, c[r][h]);
    }
    int have = 0;
    for (int sl = 0; sl < 7; sl++) {
        if (!(nu & (1 << sl))) continue;
        for (int r = 0; r < RB; r++)
            for (int h = 0; h < 4; h++) {
                __m512 x = _mm512_load_ps(slots + (sl * 4 + r) * 64 + 16 * h);
                c[r][h] = have ? _mm512_add_ps(x, c[r][h]) : x;
            }
        have = 1;
    }
    for (int r = 0; r < RB; r++)
        for (int h = 0; h < 4; h++)
            _mm512_mask_storeu_ps(C + (i + r) * ldc + j + 16 * h, mk[h], c[r][h]);
}

static void fold_wide(int nu, const size_t *k, const float *const *A, size_t lda,
                      const float *const *B, size_t ldb, size_t n, size_t i0, size_t i1, float *C,
                      size_t ldc)
{
    float slots[7 * 4 * 64] __attribute__((aligned(64)));
    for (size_t j = 0; j < n; j += 64) {
        __mmask16 mk[4];
        for (int h = 0; h < 4; h++) {
            size_t c0 = j + 16 * (size_t)h;
            mk[h] = dpt_kmask16(c0 >= n ? 0 : n - c0 < 16 ? n - c0 : 16);
        }
        size_t i = i0;
        for (; i + 4 <= i1; i += 4)
            fold_wide_block(4, nu, k, A, lda, B, ldb, i, j, mk, C, ldc, slots);
        switch (i1 - i) {
        case 3:
            fold_wide_block(3, nu, k, A, lda, B, ldb, i, j, mk, C, ldc, slots);
            break;
        case 2:
            fold_wide_block(2, nu, k, A, lda, B, ldb, i, j, mk, C, ldc, slots);
            break;
        case 1:
            fold_wide_block(1, nu, k, A, lda, B, ldb, i, j, mk, C, ldc, slots);
            break;
        }
    }
}

int dpt_k_sgemm_tn_fold_avx512(int nu, const size_t *k, const float *const *A, size_t lda,
                               const float *const *B, size_t ldb, size_t m, size_t n, size_t i0,
                               size_t i1, float *C, size_t ldc)
{
    /* the shapes whose loops fold_unit repeats: small_tn (2-16 rows, n >= 32)
     * and, for one row, AVX2's rank-1 product (n <= its KC x NR) */
    if (nu < 2 || nu > 64 || m < 2 || n < 32) return -1;
    for (int v = 0; v < nu; v++)
        if (k[v] < 1 || k[v] > 16 || (k[v] == 1 && n > 4096)) return -1;
    /* units of up to eight rows: the register counter, one instance for
     * the row count every unit has where they agree (1, 2, 4); more rows:
     * the wide blocks, whose longer FMA chains the counter's adds no longer
     * slow (measured, docs/kernels.md) */
    int K = (int)k[0], wide = 0;
    for (int v = 0; v < nu; v++) {
        if (k[v] != k[0]) K = 0;
        if (k[v] > 8) wide = 1;
    }
    if (wide) {
        fold_wide(nu, k, A, lda, B, ldb, n, i0, i1, C, ldc);
        return 0;
    }
    switch (K) {
    case 1:
        fold_cols(1, nu, k, A, lda, B, ldb, n, i0, i1, C, ldc);
        break;
    case 2:
        fold_cols(2, nu, k, A, lda, B, ldb, n, i0, i1, C, ldc);
        break;
    case 4:
        fold_cols(4, nu, k, A, lda, B, ldb, n, i0, i1, C, ldc);
        break;
    default: /* units of other or mixed row counts */
        fold_cols(0, nu, k, A, lda, B, ldb, n, i0, i1, C, ldc);
        break;
    }
    return 0;
}
