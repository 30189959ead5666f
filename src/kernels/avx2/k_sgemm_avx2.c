/* SGEMM, AVX2+FMA: C:(m,n) = alpha op(A):(m,k) op(B):(k,n) + beta C.
 * BLIS-style blocking: k in blocks of <= KC, m in blocks of <= MC whose A is
 * packed into 6-row panels (L2), n in 16-column micro-panels of B packed per
 * block (L1), and a 6x16 register-blocked micro-kernel (12 accumulators,
 * 2 B loads and 6 broadcasts per k step). Packing absorbs the transposition
 * flags, so all four cases run the same micro-kernel; packing uses 8x8
 * register transposes where the source is laid out the other way.
 * m == 1 and n == 1 (the 1-output layer of a small MLP) take GEMV loops;
 * 2-16 rows (forward) or a contraction over 2-16 rows (dW) take the
 * small-row loops, which stream the weights without packing them.
 * Pack buffers are thread-local and static: the kernel never allocates. */
#include <immintrin.h>
#include <string.h>

#include "kernels/avx2/k_avx2.h"
#include "kernels/avx2/k_math_avx2.h"
#include "kernels/avx2/k_transpose_avx2.h"
#include "kernels/k_rows.h"

#define MR 6
#define NR 16
#define KC 256
#define MC 264 /* one block for batches of 256 rows; multiple of MR */
#ifndef SGEMM_DIRECT_A_N
#define SGEMM_DIRECT_A_N 32 /* A read in place when n <= this (and k >= 16) */
#endif
#ifndef SGEMM_DIRECT_B_M
#define SGEMM_DIRECT_B_M 24 /* B (tb = 0) read in place when m <= this */
#endif

/* + 16 floats of slack: panel stores of 8 lanes may run 2 floats past a panel */
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
            /* op(A)(i,p) = A[p*lda + i]: each p gives mr contiguous floats */
            const float *src = A + pc * lda + ic + i0;
            if (mr == MR) {
                for (size_t p = 0; p < kc; p++, src += lda) {
                    /* 4 + 2 floats; the 64-bit moves take any alignment */
                    _mm_storeu_ps(dst + p * MR, _mm_loadu_ps(src));
                    _mm_storel_epi64((__m128i_u *)(dst + p * MR + 4),
                                     _mm_loadl_epi64((const __m128i_u *)(src + 4)));
                }
            } else {
                for (size_t p = 0; p < kc; p++, src += lda)
                    for (size_t r = 0; r < MR; r++) dst[p * MR + r] = r < mr ? src[r] : 0.0f;
            }
        } else {
            /* op(A)(i,p) = A[i*lda + p]: rows are contiguous in p, transpose 8x8 */
            const float *row[MR];
            for (size_t r = 0; r < MR; r++) row[r] = A + (ic + i0 + (r < mr ? r : 0)) * lda + pc;
            size_t p = 0;
            for (; p + 8 <= kc; p += 8) {
                const float *rp[8];
                for (size_t r = 0; r < 8; r++) rp[r] = r < mr ? row[r] + p : dpt_zero8;
                __m256 v[8];
                transpose8_load(2, 0, rp, NULL, v);
                /* 8-lane stores overlap the next p's slot, rewritten in turn */
                for (size_t q = 0; q < 8; q++) _mm256_storeu_ps(dst + (p + q) * MR, v[q]);
            }
            for (; p < kc; p++)
                for (size_t r = 0; r < MR; r++) dst[p * MR + r] = r < mr ? row[r][p] : 0.0f;
        }
    }
}

/* Pack op(B)[pc:pc+kc, jc:jc+nr] into dst[p*w + j], w = 8 or 16, zero past nr. */
static void pack_b(int tb, const float *B, size_t ldb, size_t pc, size_t jc, size_t kc, size_t nr,
                   size_t w, float *dst)
{
    if (!tb) {
        /* op(B)(p,j) = B[p*ldb + j]: rows contiguous in j */
        const float *src = B + pc * ldb + jc;
        __m256i m0 = dpt_mask8(nr < 8 ? nr : 8), m1 = dpt_mask8(nr > 8 ? nr - 8 : 0);
        if (nr == w) /* whole rows: plain loads (a masked one is slower on some cores) */
            for (size_t p = 0; p < kc; p++, src += ldb) {
                _mm256_store_ps(dst + p * w, _mm256_loadu_ps(src));
                if (w == 16) _mm256_store_ps(dst + p * w + 8, _mm256_loadu_ps(src + 8));
            }
        else
            for (size_t p = 0; p < kc; p++, src += ldb) {
                _mm256_store_ps(dst + p * w, _mm256_maskload_ps(src, m0));
                if (w == 16) _mm256_store_ps(dst + p * w + 8, _mm256_maskload_ps(src + 8, m1));
            }
        return;
    }
    /* op(B)(p,j) = B[j*ldb + p]: columns contiguous in p, transpose 8x8 */
    for (size_t j0 = 0; j0 < w; j0 += 8) {
        const float *col[8];
        size_t nv = nr > j0 ? (nr - j0 < 8 ? nr - j0 : 8) : 0;
        for (size_t j = 0; j < 8; j++) col[j] = B + (jc + j0 + (j < nv ? j : 0)) * ldb + pc;
        size_t p = 0;
        for (; p + 8 <= kc; p += 8) {
            const float *cp[8];
            for (size_t j = 0; j < 8; j++) cp[j] = j < nv ? col[j] + p : dpt_zero8;
            __m256 v[8];
            transpose8_load(2, 0, cp, NULL, v);
            for (size_t q = 0; q < 8; q++) _mm256_store_ps(dst + (p + q) * w + j0, v[q]);
        }
        for (; p < kc; p++)
            for (size_t j = 0; j < 8; j++) dst[p * w + j0 + j] = j < nv ? col[j][p] : 0.0f;
    }
}

#define ROW_FMA(r, ar, c0, c1)                                                                     \
    do {                                                                                           \
        if ((r) >= MRA) break;                                                                     \
        __m256 av = _mm256_broadcast_ss(ar);                                                       \
        c0 = _mm256_fmadd_ps(av, b0, c0);                                                          \
        if (NV == 2) c1 = _mm256_fmadd_ps(av, b1, c1);                                             \
    } while (0)

/* row r of the tile: all 8*NV columns, or the first nr through masks m0, m1 */
#define ROW_STORE(r, c0, c1)                                                                       \
    do {                                                                                           \
        if ((r) >= mr) break;                                                                      \
        float *cr = c + (r)*ldc;                                                                   \
        __m256 x0 = _mm256_mul_ps(va, c0), x1 = _mm256_mul_ps(va, c1);                             \
        if (full) {                                                                                \
            if (beta != 0.0f) x0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), x0);                   \
            _mm256_storeu_ps(cr, x0);                                                              \
            if (NV == 2) {                                                                         \
                if (beta != 0.0f) x1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), x1);           \
                _mm256_storeu_ps(cr + 8, x1);                                                      \
            }                                                                                      \
        } else {                                                                                   \
            if (beta != 0.0f) x0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(cr, m0), x0);            \
            _mm256_maskstore_ps(cr, m0, x0);                                                       \
            if (NV == 2) {                                                                         \
                if (beta != 0.0f) x1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(cr + 8, m1), x1);    \
                _mm256_maskstore_ps(cr + 8, m1, x1);                                               \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* The A operand of a tile: six row pointers and the distance between k steps.
 * Packed: rows 1 float apart, k steps MR apart. In place (small problems,
 * where packing would cost more than it saves): rows of op(A) wherever they
 * are, rows past mr repeating a valid one (computed, then dropped). */
typedef struct {
    const float *r[MR];
    size_t cs;
} a_rows;

/* C:(mr, nr) tile = alpha * A:(6,kc) * b:(kc, 8*NV) (rows bs floats apart)
 * + beta * C, mr <= MRA <= 6, nr <= 8*NV; the FMAs run for MRA rows (a
 * constant of each instance: a short tile costs its own rows), columns past
 * nr are computed and dropped. beta == 0 never reads C. PACKED: A packed, 6
 * per k step (constant strides for the compiler); else A through a_rows. */
DPT_INLINE void ukr_6xNV(const int NV, const int PACKED, const int MRA, size_t kc, const a_rows *A,
                         const float *b, size_t bs, float *c, size_t ldc, size_t mr, size_t nr,
                         float alpha, float beta)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (size_t r = 0; r < mr; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        if (NV == 2) _mm_prefetch((const char *)(c + r * ldc + 15), _MM_HINT_T0);
    }
    const size_t cs = PACKED ? MR : A->cs;
    const float *a0 = A->r[0], *a1 = PACKED ? a0 + 1 : A->r[1], *a2 = PACKED ? a0 + 2 : A->r[2];
    const float *a3 = PACKED ? a0 + 3 : A->r[3], *a4 = PACKED ? a0 + 4 : A->r[4];
    const float *a5 = PACKED ? a0 + 5 : A->r[5];
    size_t o = 0;
#pragma GCC unroll 4
    for (size_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = NV == 2 ? _mm256_loadu_ps(b + 8) : b0;
        ROW_FMA(0, a0 + o, c00, c01);
        ROW_FMA(1, a1 + o, c10, c11);
        ROW_FMA(2, a2 + o, c20, c21);
        ROW_FMA(3, a3 + o, c30, c31);
        ROW_FMA(4, a4 + o, c40, c41);
        ROW_FMA(5, a5 + o, c50, c51);
        o += cs;
        b += bs;
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    int full = nr == 8 * (size_t)NV;
    __m256i m0 = dpt_mask8(nr < 8 ? nr : 8), m1 = dpt_mask8(nr > 8 ? nr - 8 : 0);
    ROW_STORE(0, c00, c01);
    ROW_STORE(1, c10, c11);
    ROW_STORE(2, c20, c21);
    ROW_STORE(3, c30, c31);
    ROW_STORE(4, c40, c41);
    ROW_STORE(5, c50, c51);
}

/* one instance per row count (kernels/k_rows.h) */
#define UKR_AT(R, NV, PACKED) ukr_6xNV(NV, PACKED, R, kc, A, b, bs, c, ldc, mr, nr, alpha, beta)
#define TILE_ROWS(NV, PACKED) DPT_BY_ROWS6(mr, UKR_AT, NV, PACKED)

typedef void (*tile_fn)(size_t kc, const a_rows *A, const float *b, size_t bs, float *c, size_t ldc,
                        size_t mr, size_t nr, float alpha, float beta);

static void tile16_packed(size_t kc, const a_rows *A, const float *b, size_t bs, float *c,
                          size_t ldc, size_t mr, size_t nr, float alpha, float beta)
{
    TILE_ROWS(2, 1);
}

static void tile8_packed(size_t kc, const a_rows *A, const float *b, size_t bs, float *c,
                         size_t ldc, size_t mr, size_t nr, float alpha, float beta)
{
    TILE_ROWS(1, 1);
}

static void tile16_direct(size_t kc, const a_rows *A, const float *b, size_t bs, float *c,
                          size_t ldc, size_t mr, size_t nr, float alpha, float beta)
{
    TILE_ROWS(2, 0);
}

static void tile8_direct(size_t kc, const a_rows *A, const float *b, size_t bs, float *c,
                         size_t ldc, size_t mr, size_t nr, float alpha, float beta)
{
    TILE_ROWS(1, 0);
}

/* out[r*ldo] = alpha * M_r . v + beta * out[r*ldo] for rows M_r = M + r*ldm,
 * r < R; v:(K) contiguous. Four rows at a time share each load of v. */
static void gemv_dot(size_t R, size_t K, const float *M, size_t ldm, const float *v, float alpha,
                     float beta, float *out, size_t ldo)
{
    size_t tail = K & 7, full = K - tail;
    __m256i mt = dpt_mask8(tail);
    size_t r = 0;
    for (; r < R; r += 4) {
        size_t nr = R - r < 4 ? R - r : 4;
        const float *m0 = M + r * ldm, *m1 = nr > 1 ? m0 + ldm : m0;
        const float *m2 = nr > 2 ? m0 + 2 * ldm : m0, *m3 = nr > 3 ? m0 + 3 * ldm : m0;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        size_t p = 0;
        for (; p < full; p += 8) {
            __m256 vv = _mm256_loadu_ps(v + p);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(m0 + p), vv, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(m1 + p), vv, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(m2 + p), vv, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(m3 + p), vv, a3);
        }
        if (tail) {
            __m256 vv = _mm256_maskload_ps(v + p, mt);
            a0 = _mm256_fmadd_ps(_mm256_maskload_ps(m0 + p, mt), vv, a0);
            a1 = _mm256_fmadd_ps(_mm256_maskload_ps(m1 + p, mt), vv, a1);
            a2 = _mm256_fmadd_ps(_mm256_maskload_ps(m2 + p, mt), vv, a2);
            a3 = _mm256_fmadd_ps(_mm256_maskload_ps(m3 + p, mt), vv, a3);
        }
        __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
        float s[4];
        _mm_storeu_ps(s, _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1)));
        for (size_t q = 0; q < nr; q++) {
            float *o = out + (r + q) * ldo;
            *o = beta == 0.0f ? alpha * s[q] : alpha * s[q] + beta * *o;
        }
    }
}

/* out[j*ldo] = alpha * sum_p v[p*vs] M[p*ldm + j] + beta * out[j*ldo], j < N:
 * up to 64 outputs held in registers while p runs over all K rows of M; for
 * 32 outputs or fewer, even and odd p go to separate accumulators so the
 * FMA latency is hidden. Only outputs [lo, hi) are stored: the sum order
 * depends on the width of the 64-column chunk of [0, N) an output falls in,
 * so the chunks that meet [lo, hi) are computed whole. */
static void gemv_axpy(size_t N, size_t K, const float *M, size_t ldm, const float *v, size_t vs,
                      float alpha, float beta, float *out, size_t ldo, size_t lo, size_t hi)
{
    for (size_t j0 = lo / 64 * 64; j0 < hi; j0 += 64) {
        size_t nj = N - j0 < 64 ? N - j0 : 64;
        size_t nv = (nj + 7) / 8;
        __m256i ml = dpt_mask8(nj - 8 * (nv - 1));
        __m256 acc[8];
        for (size_t q = 0; q < 8; q++) acc[q] = _mm256_setzero_ps();
        const float *mrow = M + j0;
        if (nj == 64) {
            for (size_t p = 0; p < K; p++, mrow += ldm) {
                __m256 vp = _mm256_broadcast_ss(v + p * vs);
                for (size_t q = 0; q < 8; q++)
                    acc[q] = _mm256_fmadd_ps(vp, _mm256_loadu_ps(mrow + 8 * q), acc[q]);
            }
        } else if (nv <= 4) {
            size_t p = 0;
            for (; p + 2 <= K; p += 2, mrow += 2 * ldm) {
                __m256 v0 = _mm256_broadcast_ss(v + p * vs),
                       v1 = _mm256_broadcast_ss(v + (p + 1) * vs);
                for (size_t q = 0; q + 1 < nv; q++) {
                    acc[q] = _mm256_fmadd_ps(v0, _mm256_loadu_ps(mrow + 8 * q), acc[q]);
                    acc[q + 4] =
                        _mm256_fmadd_ps(v1, _mm256_loadu_ps(mrow + ldm + 8 * q), acc[q + 4]);
                }
                acc[nv - 1] =
                    _mm256_fmadd_ps(v0, _mm256_maskload_ps(mrow + 8 * (nv - 1), ml), acc[nv - 1]);
                acc[nv + 3] = _mm256_fmadd_ps(v1, _mm256_maskload_ps(mrow + ldm + 8 * (nv - 1), ml),
                                              acc[nv + 3]);
            }
            if (p < K) {
                __m256 v0 = _mm256_broadcast_ss(v + p * vs);
                for (size_t q = 0; q + 1 < nv; q++)
                    acc[q] = _mm256_fmadd_ps(v0, _mm256_loadu_ps(mrow + 8 * q), acc[q]);
                acc[nv - 1] =
                    _mm256_fmadd_ps(v0, _mm256_maskload_ps(mrow + 8 * (nv - 1), ml), acc[nv - 1]);
            }
            for (size_t q = 0; q < 4; q++) {
                acc[q] = _mm256_add_ps(acc[q], acc[q + 4]);
                acc[q + 4] = _mm256_setzero_ps();
            }
        } else {
            for (size_t p = 0; p < K; p++, mrow += ldm) {
                __m256 vp = _mm256_broadcast_ss(v + p * vs);
                for (size_t q = 0; q + 1 < nv; q++)
                    acc[q] = _mm256_fmadd_ps(vp, _mm256_loadu_ps(mrow + 8 * q), acc[q]);
                acc[nv - 1] =
                    _mm256_fmadd_ps(vp, _mm256_maskload_ps(mrow + 8 * (nv - 1), ml), acc[nv - 1]);
            }
        }
        float s[64] __attribute__((aligned(32)));
        for (size_t q = 0; q < 8; q++) _mm256_store_ps(s + 8 * q, acc[q]);
        size_t js = lo > j0 ? lo - j0 : 0, je = hi - j0 < nj ? hi - j0 : nj;
        for (size_t j = js; j < je; j++) {
            float *o = out + (j0 + j) * ldo;
            *o = beta == 0.0f ? alpha * s[j] : alpha * s[j] + beta * *o;
        }
    }
}

/* k == 1: C = alpha a b^T + beta C, a:(m) stride as, b:(n) contiguous */
static void rank1(size_t m, size_t n, float alpha, const float *a, size_t as, const float *b,
                  float beta, float *C, size_t ldc)
{
    size_t tail = n & 7, full = n - tail;
    __m256i mt = dpt_mask8(tail);
    __m256 vb = _mm256_set1_ps(beta);
    for (size_t i = 0; i < m; i++) {
        __m256 ai = _mm256_set1_ps(alpha * a[i * as]);
        float *c = C + i * ldc;
        size_t j = 0;
        for (; j < full; j += 8) {
            __m256 x = _mm256_mul_ps(ai, _mm256_loadu_ps(b + j));
            if (beta != 0.0f) x = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + j), x);
            _mm256_storeu_ps(c + j, x);
        }
        if (tail) {
            __m256 x = _mm256_mul_ps(ai, _mm256_maskload_ps(b + j, mt));
            if (beta != 0.0f) x = _mm256_fmadd_ps(vb, _mm256_maskload_ps(c + j, mt), x);
            _mm256_maskstore_ps(c + j, mt, x);
        }
    }
}

/* The small-row regime (2-16 rows: a thread's share of a step), where the
 * products are bound by streaming the weights, not by arithmetic, and
 * packing the weights on every call costs more than the product. */

/* Forward, C:(m,n) = alpha A:(m,k) B^T + beta C, B:(n,k) rows contiguous:
 * four rows of B against two of A (8 accumulators, 6 loads per 8 FMAs);
 * each group of B rows is read from memory once and from L1 for the other
 * rows of A. Columns [j0, j1) of C only (a later split of the layer's
 * outputs across threads takes a range each). A group, nt_rows: NI (1 or
 * 2) rows of A, a0 and lda apart, against four rows of B, into s[r][j]. */
DPT_INLINE void nt_rows(const int NI, size_t k, const float *a0, size_t lda, const float *b0,
                        const float *b1, const float *b2, const float *b3, float s[2][4])
{
    size_t tail = k & 7, full = k - tail;
    __m256i mt = dpt_mask8(tail);
    const float *a1 = a0 + lda;
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c03 = c00;
    __m256 c10 = c00, c11 = c00, c12 = c00, c13 = c00;
    for (size_t p = 0; p <= full; p += 8) {
        __m256 x0, x1 = _mm256_setzero_ps(), w0, w1, w2, w3;
        if (p < full) {
            x0 = _mm256_loadu_ps(a0 + p);
            if (NI > 1) x1 = _mm256_loadu_ps(a1 + p);
            w0 = _mm256_loadu_ps(b0 + p), w1 = _mm256_loadu_ps(b1 + p);
            w2 = _mm256_loadu_ps(b2 + p), w3 = _mm256_loadu_ps(b3 + p);
        } else if (tail) {
            x0 = _mm256_maskload_ps(a0 + p, mt);
            if (NI > 1) x1 = _mm256_maskload_ps(a1 + p, mt);
            w0 = _mm256_maskload_ps(b0 + p, mt), w1 = _mm256_maskload_ps(b1 + p, mt);
            w2 = _mm256_maskload_ps(b2 + p, mt), w3 = _mm256_maskload_ps(b3 + p, mt);
        } else {
            break;
        }
        c00 = _mm256_fmadd_ps(x0, w0, c00);
        c01 = _mm256_fmadd_ps(x0, w1, c01);
        c02 = _mm256_fmadd_ps(x0, w2, c02);
        c03 = _mm256_fmadd_ps(x0, w3, c03);
        if (NI > 1) {
            c10 = _mm256_fmadd_ps(x1, w0, c10);
            c11 = _mm256_fmadd_ps(x1, w1, c11);
            c12 = _mm256_fmadd_ps(x1, w2, c12);
            c13 = _mm256_fmadd_ps(x1, w3, c13);
        }
    }
    __m256 t0 = _mm256_hadd_ps(_mm256_hadd_ps(c00, c01), _mm256_hadd_ps(c02, c03));
    _mm_storeu_ps(s[0], _mm_add_ps(_mm256_castps256_ps128(t0), _mm256_extractf128_ps(t0, 1)));
    if (NI > 1) {
        __m256 t1 = _mm256_hadd_ps(_mm256_hadd_ps(c10, c11), _mm256_hadd_ps(c12, c13));
        _mm_storeu_ps(s[1], _mm_add_ps(_mm256_castps256_ps128(t1), _mm256_extractf128_ps(t1, 1)));
    }
}

static void small_nt(size_t m, size_t j0, size_t j1, size_t k, float alpha, const float *A,
                     size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    for (size_t j = j0; j < j1; j += 4) {
        size_t nj = j1 - j < 4 ? j1 - j : 4;
        const float *b0 = B + j * ldb, *b1 = nj > 1 ? b0 + ldb : b0;
        const float *b2 = nj > 2 ? b0 + 2 * ldb : b0, *b3 = nj > 3 ? b0 + 3 * ldb : b0;
        for (size_t i = 0; i < m; i += 2) {
            float s[2][4];
            /* a last odd row runs its own FMAs only */
            if (m - i < 2)
                nt_rows(1, k, A + i * lda, lda, b0, b1, b2, b3, s);
            else
                nt_rows(2, k, A + i * lda, lda, b0, b1, b2, b3, s);
            dpt_k_store_tile4(m - i < 2 ? 1 : 2, nj, (const float(*)[4])s, alpha, beta,
                              C + i * ldc + j, ldc);
        }
    }
}

/* dW, C:(m,n) = alpha A^T B + beta C with k <= 16 rows, A:(k,m), B:(k,n):
 * a rank-k update. B is taken in column blocks of TN_JB (k x TN_JB floats,
 * 16 KiB at k = 16: L1) that every row of C reuses, instead of streaming
 * all of B from L2 once per row; within a block, 6x16 register tiles with
 * A's six columns (scaled by alpha) packed per row group and broadcast.
 * Each element is beta c (a multiply), then + (alpha a_p) b_p for p = 0..k-1
 * in order, fused, wherever it falls in a tile or block. */
#define TN_JB 256

/* rows [0, mr) x columns [0, nr) of the tile, mr <= MRA (the rows the FMAs
 * run for); FULL: nr == 16, no masks */
DPT_INLINE void small_tn_tile(const int FULL, const int MRA, size_t k, const float *a,
                              const float *b, size_t ldb, float beta, float *c, size_t ldc,
                              size_t mr, size_t nr)
{
    __m256i m0 = dpt_mask8(nr < 8 ? nr : 8), m1 = dpt_mask8(nr > 8 ? nr - 8 : 0);
    __m256 acc[6][2];
#pragma GCC unroll 6
    for (size_t r = 0; r < 6; r++) {
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        if (beta == 0.0f || r >= mr) continue;
        __m256 vb = _mm256_set1_ps(beta);
        const float *cr = c + r * ldc;
        acc[r][0] = _mm256_mul_ps(vb, FULL ? _mm256_loadu_ps(cr) : _mm256_maskload_ps(cr, m0));
        acc[r][1] =
            _mm256_mul_ps(vb, FULL ? _mm256_loadu_ps(cr + 8) : _mm256_maskload_ps(cr + 8, m1));
    }
    for (size_t p = 0; p < k; p++, a += 6, b += ldb) {
        __m256 b0 = FULL ? _mm256_loadu_ps(b) : _mm256_maskload_ps(b, m0);
        __m256 b1 = FULL ? _mm256_loadu_ps(b + 8) : _mm256_maskload_ps(b + 8, m1);
#pragma GCC unroll 6
        for (size_t r = 0; r < (size_t)MRA; r++) {
            __m256 av = _mm256_broadcast_ss(a + r);
            acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
        }
    }
#pragma GCC unroll 6
    for (size_t r = 0; r < 6; r++) {
        if (r >= mr) break;
        float *cr = c + r * ldc;
        if (FULL) {
            _mm256_storeu_ps(cr, acc[r][0]);
            _mm256_storeu_ps(cr + 8, acc[r][1]);
        } else {
            _mm256_maskstore_ps(cr, m0, acc[r][0]);
            _mm256_maskstore_ps(cr + 8, m1, acc[r][1]);
        }
    }
}

/* one instance per row count, as the packed tiles */
#define TN_AT(R, FULL, b, c, nr) small_tn_tile(FULL, R, k, a, b, ldb, beta, c, ldc, mr, nr)
#define TN_TILE(FULL, b, c, nr)  DPT_BY_ROWS6(mr, TN_AT, FULL, b, c, nr)

static void small_tn(size_t m, size_t n, size_t k, float alpha, const float *A, size_t lda,
                     const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    float a[16 * 6];
    for (size_t jb = 0; jb < n; jb += TN_JB) {
        size_t je = n - jb < TN_JB ? n : jb + TN_JB;
        for (size_t i = 0; i < m; i += 6) {
            size_t mr = m - i < 6 ? m - i : 6;
            dpt_k_pack_tn_a(k, mr, 6, alpha, A + i, lda, a);
            float *c = C + i * ldc;
            size_t j = jb;
            for (; j + 16 <= je; j += 16) TN_TILE(1, B + j, c + j, 16);
            if (j < je) TN_TILE(0, B + j, c + j, je - j);
        }
    }
}

/* n == 1 or m == 1: matrix-vector products, outputs [o0, o1) of the m
 * (n == 1) or n (m == 1) outputs. The dot form's order does not depend on
 * the row's place; the axpy form's does (gemv_axpy). */
static void gemv_cases(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *A,
                       size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc,
                       size_t o0, size_t o1)
{
    /* the vector operand, and its stride */
    const float *v;
    size_t vs;
    if (n == 1) {
        v = B;
        vs = tb ? 1 : ldb;
        if (ta) {
            gemv_axpy(m, k, A, lda, v, vs, alpha, beta, C, ldc, o0, o1);
            return;
        }
    } else {
        v = A;
        vs = ta ? lda : 1;
        if (!tb) {
            gemv_axpy(n, k, B, ldb, v, vs, alpha, beta, C, 1, o0, o1);
            return;
        }
    }
    /* dot form: rows of M against v, v made contiguous in blocks of KB */
    const float *M = n == 1 ? A : B;
    size_t ldm = n == 1 ? lda : ldb, ldo = n == 1 ? ldc : 1;
    M += o0 * ldm;
    C += o0 * ldo;
    enum { KB = MC * KC };
    for (size_t p0 = 0; p0 < k; p0 += KB) {
        size_t kb = k - p0 < KB ? k - p0 : KB;
        const float *vc = v + p0 * vs;
        if (vs != 1) {
            for (size_t p = 0; p < kb; p++) apack[p] = vc[p * vs];
            vc = apack;
        }
        gemv_dot(o1 - o0, kb, M + p0, ldm, vc, alpha, p0 ? 1.0f : beta, C, ldo);
    }
}

/* The path is chosen from the whole shape, then run over the block: the
 * small-row loops, rank1 and the dot-form GEMV compute each element apart
 * from its neighbours; the micro-kernel's per-element order is its k
 * blocking, which depends on k alone (the m blocking and packing, the
 * in-place choices and the tile edges only move data); gemv_axpy computes
 * the whole chunks that meet the block. */
/* One row (m == 1, tb == 1, n >= 2) is the dot-form GEMV of gemv_cases,
 * whose per-element operations are small_nt's (8-lane sums over p, the
 * masked tail, the same hadd fold, alpha then beta): so R rows at once are
 * small_nt over them, in gemv_cases' blocks of KB along k (beta 1 past the
 * first); k == 0 writes zeros. */
void dpt_k_sgemv_rows_avx2(size_t R, size_t n, size_t k, float alpha, const float *A, size_t lda,
                           const float *B, size_t ldb, float *C, size_t ldc, size_t j0, size_t j1)
{
    (void)n;
    if (j0 >= j1 || R == 0) return;
    if (k == 0) {
        for (size_t i = 0; i < R; i++) memset(C + i * ldc + j0, 0, (j1 - j0) * sizeof(float));
        return;
    }
    enum { KB = MC * KC };
    for (size_t p0 = 0; p0 < k; p0 += KB)
        small_nt(R, j0, j1, k - p0 < KB ? k - p0 : KB, alpha, A + p0, lda, B + p0, ldb,
                 p0 ? 1.0f : 0.0f, C, ldc);
}

/* The loops of dpt_k_sgemm_part_f32_avx2 below, in its order of tests. A
 * GEMV over n == 1 is left without a class. The packed loop gives each
 * element its k products in p order, in k blocks set by k alone; reading
 * A or B in place changes where operands come from, not the order. */
int dpt_k_sgemm_class_avx2(int ta, int tb, size_t m, size_t n, size_t k)
{
    if (k == 0) return 0;
    if (n == 1) return -1;
    if (m == 1) return 1;
    if (DPT_SGEMM_SMALL_NT(ta, tb, m, n, k)) return 2;
    if (DPT_SGEMM_SMALL_TN(ta, tb, m, n, k)) return 3;
    if (k == 1 && n <= KC * NR) return 4;
    return 5;
}

void dpt_k_sgemm_part_f32_avx2(int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                               const float *A, size_t lda, const float *B, size_t ldb, float beta,
                               float *C, size_t ldc, size_t i0, size_t i1, size_t j0, size_t j1)
{
    if (i0 >= i1 || j0 >= j1) return;
    if (k == 0) {
        for (size_t i = i0; i < i1; i++) {
            if (beta == 0.0f)
                memset(C + i * ldc + j0, 0, (j1 - j0) * sizeof(float));
            else if (beta != 1.0f)
                for (size_t j = j0; j < j1; j++) C[i * ldc + j] *= beta;
        }
        return;
    }
    if (n == 1 || m == 1) {
        if (n == 1)
            gemv_cases(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, i0, i1);
        else
            gemv_cases(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, j0, j1);
        return;
    }
    if (DPT_SGEMM_SMALL_NT(ta, tb, m, n, k)) {
        small_nt(i1 - i0, j0, j1, k, alpha, A + i0 * lda, lda, B, ldb, beta, C + i0 * ldc, ldc);
        return;
    }
    if (DPT_SGEMM_SMALL_TN(ta, tb, m, n, k)) {
        small_tn(i1 - i0, j1 - j0, k, alpha, A + i0, lda, B + j0, ldb, beta, C + i0 * ldc + j0,
                 ldc);
        return;
    }
    if (k == 1 && n <= KC * NR) {
        const float *b = B + j0;
        if (tb) {
            for (size_t j = j0; j < j1; j++) bpack[j - j0] = B[j * ldb];
            b = bpack;
        }
        size_t as = ta ? 1 : lda;
        rank1(i1 - i0, j1 - j0, alpha, A + i0 * as, as, b, beta, C + i0 * ldc + j0, ldc);
        return;
    }
    /* Packing is skipped where it costs more than it saves: A is used in
     * place when each of its elements meets few columns (n small) or its
     * rows run along k (DPT_SGEMM_A_IN_PLACE), B when few rows meet it (m
     * small) and its rows are contiguous (tb=0). */
    int direct_a = (n <= SGEMM_DIRECT_A_N && k >= 16) || DPT_SGEMM_A_IN_PLACE(ta, lda);
    int direct_b = !tb && m <= SGEMM_DIRECT_B_M;
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
                size_t w = nr > 8 ? 16 : 8;
                const float *bp = bpack;
                size_t bs = w;
                if (direct_b && nr == w) {
                    bp = B + pc * ldb + jc;
                    bs = ldb;
                } else {
                    pack_b(tb, B, ldb, pc, jc, kc, nr, w, bpack);
                }
                tile_fn tl = direct_a ? (w == 16 ? tile16_direct : tile8_direct)
                                      : (w == 16 ? tile16_packed : tile8_packed);
                for (size_t ir = 0; ir < mc; ir += MR) {
                    size_t mr = mc - ir < MR ? mc - ir : MR;
                    a_rows ar;
                    if (direct_a) {
                        for (size_t r = 0; r < MR; r++) {
                            size_t i = ic + ir + (r < mr ? r : 0);
                            ar.r[r] = ta ? A + pc * lda + i : A + i * lda + pc;
                        }
                        ar.cs = ta ? lda : 1;
                    } else {
                        ar.r[0] = apack + ir * kc;
                    }
                    tl(kc, &ar, bp, bs, C + (ic + ir) * ldc + jc, ldc, mr, nr, alpha, bet);
                }
            }
        }
    }
}

void dpt_k_sgemm_f32_avx2(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *A,
                          size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    dpt_k_sgemm_part_f32_avx2(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, 0, m, 0, n);
}

/* The layer split's fold of one item (kernels.h, sgemm_tn_fold), at 8
 * lanes: blocks of RB rows x 16 columns (2 RB chains of FMAs) in registers,
 * the counter's slots in an L1 buffer (16 registers hold no more). A unit's
 * block is small_tn's loop (0, then + a_p b_p fused, p in order) or, for
 * one row, rank1's single multiply; the counter as the AVX-512 kernel's: a
 * unit is added to the complete sums of 1, 2, 4, ... units before it and
 * takes the first free slot, the slots left are added lowest first, each
 * add add's (s_j + cur). */
DPT_INLINE void fold_block8(const int RB, int nu, const size_t *k, const float *const *A,
                            size_t lda, const float *const *B, size_t ldb, size_t i, size_t j,
                            __m256i m0, __m256i m1, float *C, size_t ldc, float *slots)
{
    __m256 c[4][2], b0, b1;
    for (int r = 0; r < 4; r++) c[r][0] = c[r][1] = _mm256_setzero_ps(); /* nu >= 2 sets them */
    for (int v = 0; v < nu; v++) {
        const float *b = B[v] + j, *a = A[v] + i;
        const size_t kv = k[v];
        b0 = _mm256_maskload_ps(b, m0), b1 = _mm256_maskload_ps(b + 8, m1);
        for (int r = 0; r < RB; r++) {
            __m256 av = _mm256_broadcast_ss(a + r);
            c[r][0] =
                kv == 1 ? _mm256_mul_ps(av, b0) : _mm256_fmadd_ps(av, b0, _mm256_setzero_ps());
            c[r][1] =
                kv == 1 ? _mm256_mul_ps(av, b1) : _mm256_fmadd_ps(av, b1, _mm256_setzero_ps());
        }
        for (size_t p = 1; p < kv; p++) {
            b += ldb;
            a += lda;
            b0 = _mm256_maskload_ps(b, m0), b1 = _mm256_maskload_ps(b + 8, m1);
            for (int r = 0; r < RB; r++) {
                __m256 av = _mm256_broadcast_ss(a + r);
                c[r][0] = _mm256_fmadd_ps(av, b0, c[r][0]);
                c[r][1] = _mm256_fmadd_ps(av, b1, c[r][1]);
            }
        }
        int sl = 0;
        for (; v & (1 << sl); sl++)
            for (int r = 0; r < RB; r++)
                for (int h = 0; h < 2; h++)
                    c[r][h] =
                        _mm256_add_ps(_mm256_load_ps(slots + (sl * 4 + r) * 16 + 8 * h), c[r][h]);
        for (int r = 0; r < RB; r++)
            for (int h = 0; h < 2; h++) _mm256_store_ps(slots + (sl * 4 + r) * 16 + 8 * h, c[r][h]);
    }
    int have = 0;
    for (int sl = 0; sl < 7; sl++) {
        if (!(nu & (1 << sl))) continue;
        for (int r = 0; r < RB; r++)
            for (int h = 0; h < 2; h++) {
                __m256 x = _mm256_load_ps(slots + (sl * 4 + r) * 16 + 8 * h);
                c[r][h] = have ? _mm256_add_ps(x, c[r][h]) : x;
            }
        have = 1;
    }
    for (int r = 0; r < RB; r++) {
        _mm256_maskstore_ps(C + (i + r) * ldc + j, m0, c[r][0]);
        _mm256_maskstore_ps(C + (i + r) * ldc + j + 8, m1, c[r][1]);
    }
}

int dpt_k_sgemm_tn_fold_avx2(int nu, const size_t *k, const float *const *A, size_t lda,
                             const float *const *B, size_t ldb, size_t m, size_t n, size_t i0,
                             size_t i1, float *C, size_t ldc)
{
    /* the shapes whose loops fold_block8 repeats: small_tn (2-16 rows, n >=
     * 32) and, for one row, rank1 (n <= KC x NR) */
    if (nu < 2 || nu > 64 || m < 2 || n < 32) return -1;
    for (int v = 0; v < nu; v++)
        if (k[v] < 1 || k[v] > 16 || (k[v] == 1 && n > KC * NR)) return -1;
    float slots[7 * 4 * 16] __attribute__((aligned(32)));
    /* a column block of every unit's B stays in L1 while the rows pass it */
    for (size_t j = 0; j < n; j += 16) {
        __m256i m0 = dpt_mask8(n - j < 8 ? n - j : 8);
        __m256i m1 = dpt_mask8(n - j > 16 ? 8 : n - j > 8 ? n - j - 8 : 0);
        size_t i = i0;
        for (; i + 4 <= i1; i += 4)
            fold_block8(4, nu, k, A, lda, B, ldb, i, j, m0, m1, C, ldc, slots);
        switch (i1 - i) {
        case 3:
            fold_block8(3, nu, k, A, lda, B, ldb, i, j, m0, m1, C, ldc, slots);
            break;
        case 2:
            fold_block8(2, nu, k, A, lda, B, ldb, i, j, m0, m1, C, ldc, slots);
            break;
        case 1:
            fold_block8(1, nu, k, A, lda, B, ldb, i, j, m0, m1, C, ldc, slots);
            break;
        }
    }
    return 0;
}
