/* SGEMM, AVX-512: C:(m,n) = alpha op(A):(m,k) op(B):(k,n) + beta C.
 * The AVX2 kernel's BLIS blocking (k in blocks of <= KC, m in blocks of
 * <= MC packed into MR-row panels for L2, n in NR-column micro-panels of B
 * packed per block for L1) with the register tile that 32 zmm registers
 * allow: 12x32, 24 accumulators + 2 B vectors + 1 broadcast (AVX2: 6x16 in
 * 12 of 16 ymm). Twice the rows per B load and twice the lanes per FMA.
 * Packing absorbs the transposition flags (8x8 transposes where the source
 * runs the other way); column edges are opmask stores, no scalar tail.
 * Shapes the packed path does not pay for — m == 1 or n == 1 (GEMV), k == 1
 * (rank 1), and the small problems the AVX2 kernel reads in place — go to
 * the AVX2 kernel, which the AVX-512 table always has beside it.
 * Pack buffers are thread-local and static: the kernel never allocates. */
#include <immintrin.h>
#include <string.h>

#include "kernels/avx2/k_avx2.h"
#include "kernels/avx512/k_avx512.h"
#include "kernels/avx512/k_math_avx512.h"
#include "kernels/avx2/k_transpose_avx2.h"

#define MR 12
#define NR 32
#define KC 256
#define MC 264 /* one block for batches of 256 rows; multiple of MR */
/* the AVX2 kernel's thresholds for reading A or B in place */
#define DIRECT_A_N 32
#define DIRECT_B_M 24

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

#define ROW_FMA(r, c0, c1)                                                                         \
    do {                                                                                           \
        __m512 av = _mm512_set1_ps(a[r]);                                                          \
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

/* C:(mr,nr) tile = alpha * a:(kc, MR packed) b:(kc, 16*NV packed) + beta C,
 * mr <= 12, nr <= 16*NV; rows past mr and columns past nr are computed on
 * the packing's zeros and dropped. beta == 0 never reads C. */
DPT_INLINE void ukr_12xNV(const int NV, size_t kc, const float *a, const float *b, float *c,
                          size_t ldc, size_t mr, size_t nr, float alpha, float beta)
{
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    __m512 c60 = c00, c61 = c00, c70 = c00, c71 = c00, c80 = c00, c81 = c00;
    __m512 c90 = c00, c91 = c00, ca0 = c00, ca1 = c00, cb0 = c00, cb1 = c00;
    for (size_t r = 0; r < mr; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        if (NV == 2) _mm_prefetch((const char *)(c + r * ldc + 31), _MM_HINT_T0);
    }
    const size_t bs = 16 * (size_t)NV;
#pragma GCC unroll 4
    for (size_t p = 0; p < kc; p++) {
        __m512 b0 = _mm512_load_ps(b), b1 = NV == 2 ? _mm512_load_ps(b + 16) : b0;
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
        a += MR;
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

static void tile32(size_t kc, const float *a, const float *b, float *c, size_t ldc, size_t mr,
                   size_t nr, float alpha, float beta)
{
    ukr_12xNV(2, kc, a, b, c, ldc, mr, nr, alpha, beta);
}

static void tile16(size_t kc, const float *a, const float *b, float *c, size_t ldc, size_t mr,
                   size_t nr, float alpha, float beta)
{
    ukr_12xNV(1, kc, a, b, c, ldc, mr, nr, alpha, beta);
}

/* The path is chosen from the whole shape, then run over the block (the
 * AVX2 kernel's part call for the shapes it takes): the micro-kernel's
 * per-element order is its k blocking, which depends on k alone. */
void dpt_k_sgemm_part_f32_avx512(int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                                 const float *A, size_t lda, const float *B, size_t ldb, float beta,
                                 float *C, size_t ldc, size_t i0, size_t i1, size_t j0, size_t j1)
{
    if (i0 >= i1 || j0 >= j1) return;
    /* the AVX2 kernel's small-row loops are bound by streaming, not width */
    int small = (!ta && tb && m <= 16 && n >= 4 && k >= 32) || (ta && !tb && k <= 16 && n >= 32);
    if (k <= 1 || m == 1 || n == 1 || (n <= DIRECT_A_N && k >= 16) || (!tb && m <= DIRECT_B_M) ||
        small) {
        dpt_k_sgemm_part_f32_avx2(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, i0, i1, j0,
                                  j1);
        return;
    }
    /* even block sizes: no thin leftover block in k or m */
    size_t nkb = (k + KC - 1) / KC, kcb = (k + nkb - 1) / nkb;
    size_t nmb = (m + MC - 1) / MC, mcb = (m + nmb - 1) / nmb;
    mcb = (mcb + MR - 1) / MR * MR;
    for (size_t pc = 0; pc < k; pc += kcb) {
        size_t kc = k - pc < kcb ? k - pc : kcb;
        float bet = pc ? 1.0f : beta;
        for (size_t ic = i0; ic < i1; ic += mcb) {
            size_t mc = i1 - ic < mcb ? i1 - ic : mcb;
            pack_a(ta, A, lda, ic, pc, mc, kc, apack);
            for (size_t jc = j0; jc < j1; jc += NR) {
                size_t nr = j1 - jc < NR ? j1 - jc : NR;
                size_t w = nr > 16 ? 32 : 16;
                pack_b(tb, B, ldb, pc, jc, kc, nr, w, bpack);
                for (size_t ir = 0; ir < mc; ir += MR) {
                    size_t mr = mc - ir < MR ? mc - ir : MR;
                    float *c = C + (ic + ir) * ldc + jc;
                    if (w == 32)
                        tile32(kc, apack + ir * kc, bpack, c, ldc, mr, nr, alpha, bet);
                    else
                        tile16(kc, apack + ir * kc, bpack, c, ldc, mr, nr, alpha, bet);
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
