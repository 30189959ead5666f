/* Every kernel of every table (the one in use, the scalar reference and, when
 * this build and CPU have them, AVX2 and AVX-512) against a double-precision
 * reference, over awkward lengths and misaligned pointers, with the tolerance
 * of each op stated beside its test; AVX2 and AVX-512 against scalar where
 * they must agree bit for bit. Timing never decides anything here.
 *
 * Tolerances (u = 2^-24, the float unit roundoff):
 *   dot            |err| <= (n+2) u sum|x_i y_i|
 *   axpy           |err| <= 2u (|y| + |a x|)             (FMA: 1 rounding, scalar: 2)
 *   scale, add     exact: the one correctly rounded float operation
 *   update         exact: the same float operations as the rule written out
 *                  in C (so every table gives the same bits); the verdict on
 *                  a non-finite gradient exact
 *   vexp, vlog     <= 2 ulp of the exact result (measured over every float:
 *                  AVX2 1.01 / 0.83; glibc 0.50 / 0.79 on a 1/101 sample;
 *                  AVX-512 runs the same polynomials on 16 lanes)
 *   tanh, sigmoid  <= 3 ulp (every float: AVX2 1.51 / 2.40; scalar 2.13 / 2.48
 *                  on a 1/101 sample); sigmoid for z >= -87 only (below, the
 *                  reference's expf overflows and both sides are < 2^-125)
 *   relu           exact
 *   act_bwd        relu exact; tanh |err| <= 1.01u |da| (a^2 + 2|1-a^2|);
 *                  sigmoid <= 3.01u |exact|; AVX2, AVX-512 == scalar bit for bit
 *   col_sum        |err| <= (rows+1) u (|out| + sum|m|)
 *   sgemm          |err| <= (k+2) u (|alpha| sum_p |a_ip b_pj| + |beta c_ij|)
 *   glm_grad       z within zeta = (d+2) u (sum|x w| + |b|); loss and gradient
 *                  within the propagated bound, see check_glm
 *   softmax_ce     per row within 4(K+8)u (1 + max|z_j - max z|); correct
 *                  count exact (first maximum wins ties) */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/error.h"
#include "dpt/isa.h"
#include "dpt/limits.h"
#include "dpt_config.h"
#include "kernels/avx2/k_avx2.h"
#include "kernels/k_limits.h"
#include "kernels/kernels.h"

#define U        0x1p-24
#define SENTINEL 1234.5f

static const size_t LENS[] = {0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 1000, 4099};
#define NLENS (sizeof LENS / sizeof LENS[0])
static const size_t OFFS[] = {0, 1, 3, 7};
#define NOFFS (sizeof OFFS / sizeof OFFS[0])

/* ---- tables under test ---- */

typedef struct {
    dpt_kernels k;
    const char *name;
} table;

#define MAX_TABLES 4

/* The table in use, the scalar one, and AVX2 and AVX-512 when available
 * (AVX-512 filled over AVX2, as the dispatch does). */
static int tables(table *t)
{
    int n = 0;
    t[n].k = *dpt_kernels_get();
    t[n++].name = "in-use";
    dpt_kernels_fill_scalar(&t[n].k);
    t[n++].name = "scalar";
#if DPT_HAVE_AVX2
    if (dpt_cpu_has_avx2()) {
        dpt_kernels_fill_scalar(&t[n].k);
        dpt_kernels_fill_avx2(&t[n].k);
        t[n++].name = "avx2";
    }
#endif
#if DPT_HAVE_AVX512
    if (dpt_cpu_has_avx512()) {
        dpt_kernels_fill_scalar(&t[n].k);
        dpt_kernels_fill_avx2(&t[n].k);
        dpt_kernels_fill_avx512(&t[n].k);
        t[n++].name = "avx512";
    }
#endif
    return n;
}

static int have_avx2(void)
{
    return dpt_build_has_avx2() && dpt_cpu_has_avx2();
}

static int have_avx512(void)
{
    return have_avx2() && dpt_build_has_avx512() && dpt_cpu_has_avx512();
}

/* what "auto" picks */
static const char *best_isa(void)
{
    return have_avx512() ? "avx512" : have_avx2() ? "avx2" : "scalar";
}

/* ---- data ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t next_u64(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform in [lo, hi) */
static float urand(float lo, float hi)
{
    return lo + (hi - lo) * (float)((next_u64() >> 40) * 0x1p-24);
}

/* A buffer of n floats at a float offset from a 64-byte boundary, with
 * sentinels before and after to catch stray writes. */
typedef struct {
    float *base, *p;
    size_t n, off;
} buf;

#define GUARD 16

static buf buf_new(size_t n, size_t off)
{
    buf b;
    b.n = n;
    b.off = off;
    b.base = aligned_alloc(64, ((n + off + 2 * GUARD) * sizeof(float) + 63) / 64 * 64);
    cr_assert(b.base);
    for (size_t i = 0; i < n + off + 2 * GUARD; i++) b.base[i] = SENTINEL;
    b.p = b.base + GUARD + off;
    return b;
}

static void buf_rand(buf *b, float lo, float hi)
{
    for (size_t i = 0; i < b->n; i++) b->p[i] = urand(lo, hi);
}

static void buf_check_guards(const buf *b, const char *what)
{
    for (size_t i = 0; i < GUARD + b->off; i++)
        cr_assert(b->base[i] == SENTINEL, "%s: write before the buffer", what);
    for (size_t i = 0; i < GUARD; i++)
        cr_assert(b->p[b->n + i] == SENTINEL, "%s: write past the end (+%zu)", what, i);
}

static void buf_free(buf *b)
{
    free(b->base);
}

/* error of got against the exact ref, in ulps of ref */
static double ulp_err(float got, double ref)
{
    if (isnan(ref)) return isnan(got) ? 0 : INFINITY;
    if (isnan(got)) return INFINITY;
    if (isinf((float)ref) || isinf(got)) return (double)got == (double)(float)ref ? 0 : INFINITY;
    double a = fabs(ref), ulp;
    if (a < FLT_MIN) {
        ulp = 0x1p-149;
    } else {
        int e;
        frexp(a, &e);
        ulp = ldexp(1, e - 24);
    }
    return fabs((double)got - ref) / ulp;
}

/* ---- BLAS-1 ---- */

static void check_dot(const table *t)
{
    for (size_t li = 0; li < NLENS; li++)
        for (size_t oi = 0; oi < NOFFS; oi++) {
            size_t n = LENS[li];
            buf x = buf_new(n, OFFS[oi]), y = buf_new(n, OFFS[(oi + 1) % NOFFS]);
            buf_rand(&x, -1, 1);
            buf_rand(&y, -2, 2);
            double ref = 0, mag = 0;
            for (size_t i = 0; i < n; i++) {
                ref += (double)x.p[i] * y.p[i];
                mag += fabs((double)x.p[i] * y.p[i]);
            }
            float got = t->k.dot(n, x.p, y.p);
            cr_assert(fabs(got - ref) <= (n + 2) * U * mag + 1e-30,
                      "%s dot n=%zu off=%zu: %g vs %g", t->name, n, OFFS[oi], got, ref);
            buf_free(&x);
            buf_free(&y);
        }
}

static void check_axpy_scale_add(const table *t)
{
    for (size_t li = 0; li < NLENS; li++)
        for (size_t oi = 0; oi < NOFFS; oi++) {
            size_t n = LENS[li];
            buf x = buf_new(n, OFFS[oi]), y = buf_new(n, OFFS[(oi + 2) % NOFFS]);
            buf_rand(&x, -1, 1);
            buf_rand(&y, -1, 1);
            float *y0 = malloc((n + 1) * sizeof(float));
            memcpy(y0, y.p, n * sizeof(float));
            float a = -0.7431f;

            t->k.axpy(n, a, x.p, y.p);
            buf_check_guards(&y, "axpy");
            for (size_t i = 0; i < n; i++) {
                double ref = y0[i] + (double)a * x.p[i];
                double tol = 2 * U * (fabs(y0[i]) + fabs((double)a * x.p[i]));
                cr_assert(fabs(y.p[i] - ref) <= tol, "%s axpy n=%zu i=%zu", t->name, n, i);
            }

            memcpy(y.p, y0, n * sizeof(float));
            t->k.scale(n, a, y.p);
            buf_check_guards(&y, "scale");
            for (size_t i = 0; i < n; i++)
                cr_assert(y.p[i] == (float)((double)a * y0[i]), "%s scale n=%zu i=%zu", t->name, n,
                          i);

            memcpy(y.p, y0, n * sizeof(float));
            t->k.add(n, x.p, y.p);
            buf_check_guards(&y, "add");
            for (size_t i = 0; i < n; i++) {
                volatile float s = y0[i];
                s += x.p[i];
                cr_assert(y.p[i] == s, "%s add n=%zu i=%zu", t->name, n, i);
            }
            free(y0);
            buf_free(&x);
            buf_free(&y);
        }
}

/* The rule of dpt/optim.h written out, one correctly rounded float
 * operation per step (volatile keeps the compiler from fusing any). */
static void update_ref(dpt_update_rule rule, size_t n, float *w, const float *gs, float *v,
                       float gscale, float wd, float mu, float lr)
{
    for (size_t i = 0; i < n; i++) {
        volatile float a = gscale * gs[i], b = wd * w[i], g = a + b;
        if (rule != DPT_UPDATE_PLAIN) {
            volatile float mv = mu * v[i];
            v[i] = mv + g;
        }
        volatile float step = rule == DPT_UPDATE_PLAIN      ? g
                              : rule == DPT_UPDATE_MOMENTUM ? v[i]
                                                            : g + (float)(mu * v[i]);
        volatile float d = lr * step;
        w[i] = w[i] - d;
    }
}

static void check_update(const table *t)
{
    for (int rule = DPT_UPDATE_PLAIN; rule <= DPT_UPDATE_NESTEROV; rule++)
        for (size_t li = 0; li < NLENS; li++)
            for (size_t oi = 0; oi < NOFFS; oi++) {
                size_t n = LENS[li];
                buf w = buf_new(n, OFFS[oi]), g = buf_new(n, OFFS[(oi + 1) % NOFFS]),
                    v = buf_new(n, OFFS[(oi + 3) % NOFFS]);
                buf_rand(&w, -1, 1);
                buf_rand(&g, -50, 50);
                buf_rand(&v, -1, 1);
                float *rw = malloc((n + 1) * sizeof(float)), *rv = malloc((n + 1) * sizeof(float));
                memcpy(rw, w.p, n * sizeof(float));
                memcpy(rv, v.p, n * sizeof(float));
                const float gscale = 1.0f / 256, wd = 5e-4f, mu = 0.9f, lr = 0.05f;
                const float *gp = g.p;
                int bad = t->k.update((dpt_update_rule)rule, n, n, w.p, &gp, 1, 0,
                                      rule == DPT_UPDATE_PLAIN ? NULL : v.p, gscale, wd, mu, lr);
                update_ref((dpt_update_rule)rule, n, rw, g.p, rv, gscale, wd, mu, lr);
                cr_assert_eq(bad, 0, "%s update rule %d n=%zu: finite input called bad", t->name,
                             rule, n);
                buf_check_guards(&w, "update w");
                buf_check_guards(&v, "update v");
                for (size_t i = 0; i < n; i++) {
                    cr_assert(w.p[i] == rw[i], "%s update rule %d n=%zu i=%zu: w %a vs %a", t->name,
                              rule, n, i, w.p[i], rw[i]);
                    if (rule != DPT_UPDATE_PLAIN)
                        cr_assert(v.p[i] == rv[i], "%s update rule %d n=%zu i=%zu: v", t->name,
                                  rule, n, i);
                }
                /* one non-finite entry anywhere, the tail included, is seen */
                const float special[] = {INFINITY, -INFINITY, NAN};
                for (size_t k = 0; n && k < 3; k++) {
                    size_t at = (k * 7919 + n / 2) % n;
                    if (k == 2) at = n - 1;
                    float keep = g.p[at];
                    g.p[at] = special[k];
                    cr_assert(t->k.update((dpt_update_rule)rule, n, n, w.p, &gp, 1, 0,
                                          rule == DPT_UPDATE_PLAIN ? NULL : v.p, gscale, wd, mu,
                                          lr) != 0,
                              "%s update rule %d n=%zu: %g at %zu not seen", t->name, rule, n,
                              special[k], at);
                    g.p[at] = keep;
                }
                free(rw);
                free(rv);
                buf_free(&w);
                buf_free(&g);
                buf_free(&v);
            }
}

/* Fused with the reduction: the sum of ng arrays at an offset, added in
 * order, then the update; the same bits as adding first and updating after. */
static void check_update_sum(const table *t)
{
    static const size_t lens[] = {1, 9, 511, 512, 513, 1500};
    for (int ng = 2; ng <= 7; ng += 5)
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            size_t n = lens[li], goff = 3 + li;
            float *gs[7], *w = malloc(n * sizeof(float)), *v = malloc(n * sizeof(float));
            float *w2 = malloc(n * sizeof(float)), *v2 = malloc(n * sizeof(float));
            float *sum = malloc(n * sizeof(float));
            for (int u = 0; u < ng; u++) {
                gs[u] = malloc((n + goff) * sizeof(float));
                for (size_t i = 0; i < n + goff; i++) gs[u][i] = urand(-9, 9);
            }
            for (size_t i = 0; i < n; i++) {
                w[i] = w2[i] = urand(-1, 1);
                v[i] = v2[i] = urand(-1, 1);
                volatile float a = gs[0][goff + i];
                for (int u = 1; u < ng; u++) a += gs[u][goff + i];
                sum[i] = a;
            }
            int bad = t->k.update(DPT_UPDATE_NESTEROV, n, n, w, (const float *const *)gs, ng, goff,
                                  v, 0.01f, 1e-4f, 0.9f, 0.1f);
            update_ref(DPT_UPDATE_NESTEROV, n, w2, sum, v2, 0.01f, 1e-4f, 0.9f, 0.1f);
            cr_assert_eq(bad, 0);
            for (size_t i = 0; i < n; i++)
                cr_assert(w[i] == w2[i] && v[i] == v2[i], "%s update of %d arrays n=%zu i=%zu",
                          t->name, ng, n, i);
            gs[ng - 1][goff + n - 1] = NAN; /* the last entry of the last array */
            cr_assert_neq(t->k.update(DPT_UPDATE_PLAIN, n, n, w, (const float *const *)gs, ng, goff,
                                      NULL, 0.01f, 0, 0, 0.1f),
                          0, "%s: NaN in array %d not seen", t->name, ng - 1);
            for (int u = 0; u < ng; u++) free(gs[u]);
            free(w);
            free(v);
            free(w2);
            free(v2);
            free(sum);
        }
}

/* A slice updated a block at a time (the fused reduce-scatter): with the
 * rest of the slice passed as ahead, the block gets the bits of a call
 * without it, and nothing past the block is written. */
static void check_update_ahead(const table *t)
{
    static const size_t lens[] = {16, 100, 512, 1111};
    enum { REST = 3000 };
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
        for (int ng = 1; ng <= 3; ng += 2) {
            const size_t n = lens[li], all = n + REST;
            float *w = malloc(all * sizeof(float)), *v = malloc(all * sizeof(float));
            float *w2 = malloc(all * sizeof(float)), *v2 = malloc(all * sizeof(float));
            float *gs[3];
            for (int u = 0; u < ng; u++) {
                gs[u] = malloc(all * sizeof(float));
                for (size_t i = 0; i < all; i++) gs[u][i] = urand(-9, 9);
            }
            for (size_t i = 0; i < all; i++) {
                w[i] = w2[i] = urand(-1, 1);
                v[i] = v2[i] = urand(-1, 1);
            }
            const float *const *g = (const float *const *)gs;
            cr_assert_eq(
                t->k.update(DPT_UPDATE_MOMENTUM, n, all, w, g, ng, 0, v, 0.01f, 1e-4f, 0.9f, 0.1f),
                0);
            cr_assert_eq(
                t->k.update(DPT_UPDATE_MOMENTUM, n, n, w2, g, ng, 0, v2, 0.01f, 1e-4f, 0.9f, 0.1f),
                0);
            cr_assert(
                memcmp(w, w2, all * sizeof(float)) == 0 && memcmp(v, v2, all * sizeof(float)) == 0,
                "%s update n=%zu ng=%d: ahead changed the block or wrote past it", t->name, n, ng);
            for (int u = 0; u < ng; u++) free(gs[u]);
            free(w);
            free(v);
            free(w2);
            free(v2);
        }
}

Test(kernels, update)
{
    table t[MAX_TABLES];
    for (int i = 0, n = tables(t); i < n; i++) {
        check_update(&t[i]);
        check_update_sum(&t[i]);
        check_update_ahead(&t[i]);
    }
}

Test(kernels, dot)
{
    table t[MAX_TABLES];
    for (int i = 0, n = tables(t); i < n; i++) check_dot(&t[i]);
}

Test(kernels, axpy_scale_add)
{
    table t[MAX_TABLES];
    for (int i = 0, n = tables(t); i < n; i++) check_axpy_scale_add(&t[i]);
}

/* ---- elementwise exp / log ---- */

#define EXP_ULP     2.0
#define LOG_ULP     2.0
#define TANH_ULP    3.0
#define SIGMOID_ULP 3.0

static void check_vexp_vlog(const table *t)
{
    for (size_t li = 0; li < NLENS; li++)
        for (size_t oi = 0; oi < NOFFS; oi++) {
            size_t n = LENS[li];
            buf x = buf_new(n, OFFS[oi]), o = buf_new(n, OFFS[(oi + 1) % NOFFS]);
            buf_rand(&x, -100, 88);
            t->k.vexp(n, x.p, o.p);
            buf_check_guards(&o, "vexp");
            for (size_t i = 0; i < n; i++)
                cr_assert(ulp_err(o.p[i], exp((double)x.p[i])) <= EXP_ULP, "%s vexp(%a) = %a",
                          t->name, x.p[i], o.p[i]);
            for (size_t i = 0; i < n; i++) x.p[i] = expf(urand(-100, 88));
            t->k.vlog(n, x.p, o.p);
            buf_check_guards(&o, "vlog");
            for (size_t i = 0; i < n; i++)
                cr_assert(ulp_err(o.p[i], log((double)x.p[i])) <= LOG_ULP, "%s vlog(%a) = %a",
                          t->name, x.p[i], o.p[i]);
            /* in place */
            t->k.vexp(n, x.p, x.p);
            buf_free(&x);
            buf_free(&o);
        }
}

static float from_bits(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* Sweep float bit patterns with a prime stride: every binade, denormals too. */
static void sweep(const table *t, int op, double bound)
{
    enum { N = 1 << 16 };
    float *x = malloc(N * sizeof(float)), *o = malloc(N * sizeof(float));
    double worst = 0;
    float worst_x = 0;
    uint64_t b = 0;
    while (b < 0xFF800000ull) {
        size_t n = 0;
        for (; n < N && b < 0xFF800000ull; b += 4099) {
            float f = from_bits((uint32_t)b);
            if (isnan(f)) continue;
            if (op == 0 && !(f > -104 && f < 89)) continue;
            if (op == 1 && !(f > 0)) continue;
            if (op == 3 && !(f >= -87)) continue;
            x[n++] = f;
        }
        if (op == 0) t->k.vexp(n, x, o);
        if (op == 1) t->k.vlog(n, x, o);
        if (op >= 2) {
            memcpy(o, x, n * sizeof(float));
            t->k.bias_act(op == 2 ? DPT_ACT_TANH : DPT_ACT_SIGMOID, 1, 1, n, NULL, o, n);
        }
        for (size_t i = 0; i < n; i++) {
            double xd = x[i];
            double ref = op == 0   ? exp(xd)
                         : op == 1 ? log(xd)
                         : op == 2 ? tanh(xd)
                                   : 1 / (1 + exp(-xd));
            double e = ulp_err(o[i], ref);
            if (e > worst) worst = e, worst_x = x[i];
        }
    }
    static const char *names[] = {"exp", "log", "tanh", "sigmoid"};
    cr_log_info("%s %s: max %.3f ulp at %a", t->name, names[op], worst, worst_x);
    cr_assert(worst <= bound, "%s %s: %.3f ulp at %a (bound %.1f)", t->name, names[op], worst,
              worst_x, bound);
    free(x);
    free(o);
}

static void check_specials(const table *t)
{
    const float inf = INFINITY;
    float xe[] = {0.0f,    -0.0f,   inf,      -inf,    NAN,      88.72f, 88.73f,  89.0f,    1000.0f,
                  -87.33f, -103.0f, -103.97f, -104.0f, -1000.0f, 1e-30f, -1e-30f, 0x1p-149f};
    float o[sizeof xe / sizeof xe[0]];
    size_t n = sizeof xe / sizeof xe[0];
    t->k.vexp(n, xe, o);
    for (size_t i = 0; i < n; i++) {
        double ref = exp((double)xe[i]);
        if (isnan(xe[i]))
            cr_assert(isnan(o[i]), "%s exp(NaN)", t->name);
        else if ((float)ref == 0 || isinf((float)ref))
            cr_assert(o[i] == (float)ref || ulp_err(o[i], ref) <= EXP_ULP, "%s exp(%a) = %a",
                      t->name, xe[i], o[i]);
        else
            cr_assert(ulp_err(o[i], ref) <= EXP_ULP, "%s exp(%a) = %a", t->name, xe[i], o[i]);
    }
    float xl[] = {0.0f,    -0.0f,       -1.0f,       -inf,       inf,
                  NAN,     1.0f,        0x1p-149f,   0x1p-130f,  FLT_MIN,
                  FLT_MAX, 0.70710677f, 0.70710683f, 1.0000001f, 0.99999994f};
    n = sizeof xl / sizeof xl[0];
    t->k.vlog(n, xl, o);
    cr_assert(o[0] == -inf && o[1] == -inf, "%s log(+-0) = %a %a", t->name, o[0], o[1]);
    cr_assert(isnan(o[2]) && isnan(o[3]) && isnan(o[5]), "%s log(<0 or NaN)", t->name);
    cr_assert(o[4] == inf, "%s log(inf) = %a", t->name, o[4]);
    for (size_t i = 6; i < n; i++)
        cr_assert(ulp_err(o[i], log((double)xl[i])) <= LOG_ULP, "%s log(%a) = %a", t->name, xl[i],
                  o[i]);
    /* tanh and sigmoid at the ends and at NaN */
    float xa[] = {0.0f, -0.0f, inf, -inf, NAN, 0.625f, -0.625f, 0.62500006f, 50.0f, -50.0f, 1e-30f};
    n = sizeof xa / sizeof xa[0];
    memcpy(o, xa, sizeof xa);
    t->k.bias_act(DPT_ACT_TANH, 1, 1, n, NULL, o, n);
    for (size_t i = 0; i < n; i++) {
        if (isnan(xa[i]))
            cr_assert(isnan(o[i]), "%s tanh(NaN)", t->name);
        else
            cr_assert(ulp_err(o[i], tanh((double)xa[i])) <= TANH_ULP, "%s tanh(%a) = %a", t->name,
                      xa[i], o[i]);
    }
    memcpy(o, xa, sizeof xa);
    t->k.bias_act(DPT_ACT_SIGMOID, 1, 1, n, NULL, o, n);
    for (size_t i = 0; i < n; i++) {
        if (isnan(xa[i]))
            cr_assert(isnan(o[i]), "%s sigmoid(NaN)", t->name);
        else
            cr_assert(ulp_err(o[i], 1 / (1 + exp(-(double)xa[i]))) <= SIGMOID_ULP,
                      "%s sigmoid(%a) = %a", t->name, xa[i], o[i]);
    }
}

Test(kernels, vexp_vlog)
{
    table t[MAX_TABLES];
    for (int i = 0, n = tables(t); i < n; i++) check_vexp_vlog(&t[i]);
}

Test(kernels, math_specials)
{
    table t[MAX_TABLES];
    for (int i = 0, n = tables(t); i < n; i++) check_specials(&t[i]);
}

Test(kernels, math_ulp_sweep, .timeout = 120)
{
    table t[MAX_TABLES];
    for (int i = 0, n = tables(t); i < n; i++) {
        sweep(&t[i], 0, EXP_ULP);
        sweep(&t[i], 1, LOG_ULP);
        sweep(&t[i], 2, TANH_ULP);
        sweep(&t[i], 3, SIGMOID_ULP);
    }
}

/* ---- bias + activation, activation backward, column sums ---- */

static double act_ref(dpt_act act, double z)
{
    switch (act) {
    case DPT_ACT_RELU:
        return z > 0 ? z : 0;
    case DPT_ACT_TANH:
        return tanh(z);
    default:
        return 1 / (1 + exp(-z));
    }
}

static void check_bias_act(const table *t)
{
    const size_t rows = 3;
    for (int act = 0; act < 3; act++)
        for (int mode = 0; mode < 3; mode++) /* 0: bias+act, 1: act only, 2: bias only */
            for (size_t li = 0; li < NLENS; li++) {
                size_t cols = LENS[li], ld = cols + 5, off = OFFS[li % NOFFS];
                buf z = buf_new(rows * ld, off), b = buf_new(cols, OFFS[(li + 1) % NOFFS]);
                buf_rand(&z, -6, 6);
                buf_rand(&b, -1, 1);
                float *z0 = malloc((rows * ld + 1) * sizeof(float));
                memcpy(z0, z.p, rows * ld * sizeof(float));
                const float *bp = mode == 1 ? NULL : b.p;
                t->k.bias_act((dpt_act)act, mode != 2, rows, cols, bp, z.p, ld);
                buf_check_guards(&z, "bias_act");
                for (size_t i = 0; i < rows; i++) {
                    for (size_t j = 0; j < cols; j++) {
                        float zb = z0[i * ld + j];
                        if (bp) zb += bp[j]; /* one float rounding, as the kernels */
                        double ref = mode == 2 ? zb : act_ref((dpt_act)act, zb);
                        double bound = mode == 2 || act == DPT_ACT_RELU ? 0
                                       : act == DPT_ACT_TANH            ? TANH_ULP
                                                                        : SIGMOID_ULP;
                        cr_assert(ulp_err(z.p[i * ld + j], ref) <= bound,
                                  "%s bias_act act=%d mode=%d cols=%zu (%zu,%zu): %a vs %a",
                                  t->name, act, mode, cols, i, j, z.p[i * ld + j], ref);
                    }
                    for (size_t j = cols; j < ld && i + 1 < rows; j++)
                        cr_assert(z.p[i * ld + j] == z0[i * ld + j], "%s bias_act wrote padding",
                                  t->name);
                }
                free(z0);
                buf_free(&z);
                buf_free(&b);
            }
}

Test(kernels, bias_act)
{
    table t[MAX_TABLES];
    for (int i = 0, n = tables(t); i < n; i++) check_bias_act(&t[i]);
}

static void check_act_bwd(const table *t, const table *s)
{
    const size_t rows = 3;
    for (int act = 0; act < 3; act++)
        for (int inplace = 0; inplace < 2; inplace++)
            for (size_t li = 0; li < NLENS; li++) {
                size_t cols = LENS[li], ld = cols + 3;
                buf a = buf_new(rows * ld, OFFS[li % NOFFS]);
                buf da = buf_new(rows * ld, OFFS[(li + 1) % NOFFS]);
                buf dz = buf_new(rows * ld, OFFS[(li + 2) % NOFFS]);
                buf ds = buf_new(rows * ld, 0);
                for (size_t i = 0; i < rows * ld; i++)
                    a.p[i] = act == DPT_ACT_RELU   ? urand(-1, 1)
                             : act == DPT_ACT_TANH ? urand(-1, 1)
                                                   : urand(0, 1);
                a.p[0] = 0.0f; /* relu' at 0 is 0 */
                buf_rand(&da, -3, 3);
                memcpy(ds.p, da.p, rows * ld * sizeof(float));
                float *out = inplace ? da.p : dz.p;
                float *da0 = malloc((rows * ld + 1) * sizeof(float));
                memcpy(da0, da.p, rows * ld * sizeof(float));
                t->k.act_bwd((dpt_act)act, rows, cols, a.p, ld, da.p, ld, out, ld);
                s->k.act_bwd((dpt_act)act, rows, cols, a.p, ld, ds.p, ld, ds.p, ld);
                buf_check_guards(inplace ? &da : &dz, "act_bwd");
                for (size_t i = 0; i < rows; i++)
                    for (size_t j = 0; j < cols; j++) {
                        size_t q = i * ld + j;
                        double av = a.p[q], d = da0[q], ref, tol;
                        if (act == DPT_ACT_RELU) {
                            ref = av > 0 ? d : 0;
                            tol = 0;
                        } else if (act == DPT_ACT_TANH) {
                            ref = d * (1 - av * av);
                            tol = 1.01 * U * fabs(d) * (av * av + 2 * fabs(1 - av * av));
                        } else {
                            ref = d * av * (1 - av);
                            tol = 3.01 * U * fabs(ref);
                        }
                        cr_assert(fabs(out[q] - ref) <= tol + 1e-37, "%s act_bwd act=%d cols=%zu",
                                  t->name, act, cols);
                        cr_assert(out[q] == ds.p[q], "%s act_bwd differs from scalar", t->name);
                    }
                free(da0);
                buf_free(&a);
                buf_free(&da);
                buf_free(&dz);
                buf_free(&ds);
            }
}

Test(kernels, act_bwd)
{
    table t[MAX_TABLES];
    int n = tables(t);
    for (int i = 0; i < n; i++) check_act_bwd(&t[i], &t[1]);
}

static void check_col_sum(const table *t)
{
    static const size_t R[] = {0, 1, 5, 33, 256};
    for (size_t ri = 0; ri < sizeof R / sizeof R[0]; ri++)
        for (size_t li = 0; li < NLENS; li++) {
            size_t rows = R[ri], cols = LENS[li], ld = cols + 9;
            buf m = buf_new(rows * ld + 1, OFFS[li % NOFFS]);
            buf o = buf_new(cols, OFFS[(li + 3) % NOFFS]);
            buf_rand(&m, -1, 1);
            buf_rand(&o, -1, 1);
            double *ref = calloc(cols + 1, sizeof(double)), *mag = calloc(cols + 1, sizeof(double));
            for (size_t j = 0; j < cols; j++) ref[j] = o.p[j], mag[j] = fabs(o.p[j]);
            for (size_t i = 0; i < rows; i++)
                for (size_t j = 0; j < cols; j++)
                    ref[j] += m.p[i * ld + j], mag[j] += fabs(m.p[i * ld + j]);
            t->k.col_sum(rows, cols, m.p, ld, o.p);
            buf_check_guards(&o, "col_sum");
            for (size_t j = 0; j < cols; j++) {
                cr_assert(fabs(o.p[j] - ref[j]) <= (rows + 1) * U * mag[j],
                          "%s col_sum rows=%zu cols=%zu j=%zu", t->name, rows, cols, j);
            }
            free(ref);
            free(mag);
            buf_free(&m);
            buf_free(&o);
        }
}

Test(kernels, col_sum)
{
    table t[MAX_TABLES];
    int n = tables(t);
    for (int i = 0; i < n; i++) check_col_sum(&t[i]);
}

/* ---- softmax cross-entropy ---- */

static void check_softmax(const table *t)
{
    const size_t rows = 7;
    for (size_t li = 1; li < NLENS; li++)
        for (int mode = 0; mode < 3; mode++) { /* 0: separate dZ, 1: dZ == Z, 2: no dZ */
            size_t K = LENS[li], ld = K + 2;
            buf z = buf_new(rows * ld, OFFS[li % NOFFS]),
                dz = buf_new(rows * ld, OFFS[(li + 1) % NOFFS]);
            buf_rand(&z, -8, 8);
            float y[rows];
            for (size_t i = 0; i < rows; i++) y[i] = (float)(next_u64() % K);
            /* a row whose label holds the maximum, and a tie: first index wins */
            z.p[0 * ld + (size_t)y[0]] = 20;
            if (K > 2) {
                z.p[1 * ld + 1] = 30, z.p[1 * ld + K - 1] = 30;
                y[1] = (float)(K - 1);
            }
            float *z0 = malloc((rows * ld + 1) * sizeof(float));
            memcpy(z0, z.p, rows * ld * sizeof(float));
            float *out = mode == 0 ? dz.p : mode == 1 ? z.p : NULL;
            size_t correct = 100;
            double l = t->k.softmax_ce(rows, K, z.p, ld, y, out, ld, &correct);
            double lref = 0, tol = 0;
            size_t cref = 100;
            for (size_t i = 0; i < rows; i++) {
                const float *zi = z0 + i * ld;
                size_t best = 0;
                for (size_t j = 1; j < K; j++)
                    if (zi[j] > zi[best]) best = j;
                cref += best == (size_t)y[i];
                double mx = zi[best], s = 0, range = 0;
                for (size_t j = 0; j < K; j++) {
                    s += exp(zi[j] - mx);
                    range = fmax(range, mx - zi[j]);
                }
                double rt = 4 * (K + 8) * U * (1 + range);
                lref += log(s) - (zi[(size_t)y[i]] - mx);
                tol += rt;
                if (out)
                    for (size_t j = 0; j < K; j++) {
                        double p = exp(zi[j] - mx) / s - (j == (size_t)y[i]);
                        double tp = rt * (exp(zi[j] - mx) / s) + U;
                        cr_assert(fabs(out[i * ld + j] - p) <= tp,
                                  "%s softmax dZ K=%zu mode=%d (%zu,%zu): %g vs %g", t->name, K,
                                  mode, i, j, out[i * ld + j], p);
                    }
            }
            cr_assert(fabs(l - lref) <= tol, "%s softmax loss K=%zu: %.9g vs %.9g", t->name, K, l,
                      lref);
            cr_assert(correct == cref, "%s softmax correct K=%zu: %zu vs %zu", t->name, K, correct,
                      cref);
            if (mode == 2)
                cr_assert(!memcmp(z.p, z0, rows * ld * sizeof(float)), "%s softmax wrote Z",
                          t->name);
            buf_check_guards(&z, "softmax Z");
            buf_check_guards(&dz, "softmax dZ");
            /* NULL correct is allowed */
            t->k.softmax_ce(rows, K, z0, ld, y, NULL, 0, NULL);
            free(z0);
            buf_free(&z);
            buf_free(&dz);
        }
}

Test(kernels, softmax_ce)
{
    table t[MAX_TABLES];
    for (int i = 0, n = tables(t); i < n; i++) check_softmax(&t[i]);
}

/* ---- fused linear / logistic gradient ---- */

static void check_glm(const table *t, dpt_glm_loss loss, size_t rows, size_t d, size_t off,
                      int with_g)
{
    size_t ld = d + (d % 3) + 1;
    buf X = buf_new(rows * ld + 1, off), y = buf_new(rows, (off + 1) % 8);
    buf w = buf_new(d, (off + 2) % 8), g = buf_new(d, (off + 5) % 8);
    buf_rand(&X, -1, 1);
    buf_rand(&w, -0.5f, 0.5f);
    buf_rand(&g, -1, 1);
    for (size_t i = 0; i < rows; i++)
        y.p[i] = loss == DPT_GLM_MSE ? urand(-2, 2) : (float)(next_u64() & 1);
    float b = 0.25f;
    float *g0 = malloc((d + 1) * sizeof(float));
    memcpy(g0, g.p, d * sizeof(float));
    double *gref = calloc(d + 1, sizeof(double)), *gtol = calloc(d + 1, sizeof(double));
    double *gmag = calloc(d + 1, sizeof(double));
    double lref = 0, ltol = 0, gbref = 0, gbtol = 0;
    size_t href = 0, hnear = 0; /* rows classified right; rows whose float z may change sign */
    for (size_t k = 0; k < d; k++) gref[k] = g0[k], gmag[k] = fabs(g0[k]);
    for (size_t i = 0; i < rows; i++) {
        const float *x = X.p + i * ld;
        double z = b, zm = fabs(b);
        for (size_t k = 0; k < d; k++)
            z += (double)x[k] * w.p[k], zm += fabs((double)x[k] * w.p[k]);
        double zeta = (d + 2) * U * zm; /* error of the float dot product */
        double yi = y.p[i], r, rt, l, lt;
        if (loss == DPT_GLM_MSE) {
            double e = z - yi, de = zeta + U * (fabs(z) + fabs(yi));
            r = 2 * e;
            rt = 2 * de + 2 * U * fabs(e);
            l = e * e;
            lt = 2 * fabs(e) * de + de * de + 4 * U * l;
        } else {
            double sg = 1 / (1 + exp(-z));
            r = sg - yi;
            rt = zeta / 4 + 4 * U;
            double sp = log1p(exp(-fabs(z)));
            l = (z > 0 ? z : 0) - z * yi + sp;
            lt = fabs(r) * zeta + zeta * zeta + 8 * U * ((z > 0 ? z : 0) + fabs(z * yi) + sp);
            href += (z > 0) == (yi > 0.5);
            hnear += fabs(z) <= zeta;
        }
        lref += l;
        ltol += lt;
        gbref += r;
        gbtol += rt + U * fabs(r);
        for (size_t k = 0; k < d; k++) {
            gref[k] += r * x[k];
            gtol[k] += rt * fabs(x[k]);
            gmag[k] += fabs(r * x[k]);
        }
    }
    double gb = 0.5;
    size_t hits = 7; /* added to */
    double lgot =
        t->k.glm_grad(loss, rows, d, X.p, ld, y.p, w.p, b, with_g ? g.p : NULL, &gb, &hits);
    if (loss == DPT_GLM_MSE)
        cr_assert_eq(hits, 7, "%s glm mse touched hits", t->name);
    else
        cr_assert(hits >= 7 && (hits - 7 > href ? hits - 7 - href : href - (hits - 7)) <= hnear,
                  "%s glm hits rows=%zu d=%zu: %zu vs %zu (%zu rows near z = 0)", t->name, rows, d,
                  hits - 7, href, hnear);
    cr_assert(fabs(lgot - lref) <= 2 * ltol + 1e-300,
              "%s glm loss=%d rows=%zu d=%zu: %.10g vs %.10g", t->name, (int)loss, rows, d, lgot,
              lref);
    cr_assert(fabs(gb - 0.5 - gbref) <= 2 * gbtol + 1e-300,
              "%s glm gb loss=%d rows=%zu d=%zu: %.10g vs %.10g", t->name, (int)loss, rows, d,
              gb - 0.5, gbref);
    buf_check_guards(&g, "glm g");
    for (size_t k = 0; k < d; k++) {
        if (!with_g) {
            cr_assert(g.p[k] == g0[k], "%s glm wrote g when forward only", t->name);
            continue;
        }
        /* float accumulation over rows: (rows + 2) u of the magnitudes */
        double tol = 2 * gtol[k] + (rows + 2) * U * gmag[k];
        cr_assert(fabs(g.p[k] - gref[k]) <= tol, "%s glm g loss=%d rows=%zu d=%zu k=%zu: %g vs %g",
                  t->name, (int)loss, rows, d, k, g.p[k], gref[k]);
    }
    /* NULL gb and hits are allowed */
    t->k.glm_grad(loss, rows, d, X.p, ld, y.p, w.p, b, NULL, NULL, NULL);
    free(g0);
    free(gref);
    free(gtol);
    free(gmag);
    buf_free(&X);
    buf_free(&y);
    buf_free(&w);
    buf_free(&g);
}

Test(kernels, glm_grad, .timeout = 60)
{
    static const size_t D[] = {0, 1, 7, 8, 9, 15, 16, 17, 31, 56, 63, 64, 65, 100};
    table t[MAX_TABLES];
    for (int i = 0, n = tables(t); i < n; i++)
        for (int loss = 0; loss < 2; loss++)
            for (size_t di = 0; di < sizeof D / sizeof D[0]; di++)
                for (size_t li = 0; li < NLENS; li++) {
                    if (LENS[li] == 4099 && D[di] > 17) continue;
                    check_glm(&t[i], (dpt_glm_loss)loss, LENS[li], D[di], OFFS[(li + di) % NOFFS],
                              (li + di) % 5 != 0);
                }
}

/* Confident logits: the loss is log1p(e^-|z|), down to 1e-13 per row; its
 * relative error must stay at a few ulp (log(1 + t) in float would give 0). */
Test(kernels, glm_bce_confident)
{
    enum { R = 2011 };
    float Z[R], X[R], y[R], w = 1.0f;
    for (size_t i = 0; i < R; i++) {
        Z[i] = -40.0f + 80.0f * (float)i / (R - 1); /* both signs, 0 included */
        X[i] = Z[i], y[i] = Z[i] > 0;
    }
    table t[MAX_TABLES];
    for (int ti = 0, nt = tables(t); ti < nt; ti++)
        for (size_t i = 0; i < R; i++) {
            double ref = log1p(exp(-fabs((double)Z[i])));
            size_t hits = 0;
            double l =
                t[ti].k.glm_grad(DPT_GLM_BCE, 1, 1, X + i, 1, y + i, &w, 0.0f, NULL, NULL, &hits);
            cr_assert(fabs(l - ref) <= 8 * U * ref, "%s bce loss z=%g: %.9g vs %.9g", t[ti].name,
                      Z[i], l, ref);
            /* y = (z > 0), z exact: right at every z, 0 included (no tie) */
            cr_assert_eq(hits, 1, "%s bce hits z=%g", t[ti].name, Z[i]);
            double rsum = 0;
            float g = 0;
            t[ti].k.glm_grad(DPT_GLM_BCE, 1, 1, X + i, 1, y + i, &w, 0.0f, &g, &rsum, NULL);
            double rref = 1 / (1 + exp(-(double)Z[i])) - y[i];
            /* the reference's float sigmoid(z) - y cancels when y = 1: a few ulp of 1 */
            cr_assert(fabs(rsum - rref) <= 4 * U * (fabs(rref) + 1), "%s bce r z=%g: %g vs %g",
                      t[ti].name, Z[i], rsum, rref);
        }
}

/* ---- SGEMM ---- */

static float opA(int ta, const float *A, size_t lda, size_t i, size_t p)
{
    return ta ? A[p * lda + i] : A[i * lda + p];
}

static float opB(int tb, const float *B, size_t ldb, size_t p, size_t j)
{
    return tb ? B[j * ldb + p] : B[p * ldb + j];
}

static void check_gemm(const table *t, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                       float beta, size_t pad)
{
    /* stored shapes: A is (m,k) or (k,m), B is (k,n) or (n,k) */
    size_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    size_t lda = ac + pad, ldb = bc + 2 * pad, ldc = n + pad + 1;
    buf A = buf_new(ar * lda + 1, (m + 1) % 8), B = buf_new(br * ldb + 1, (n + 3) % 8);
    buf C = buf_new(m * ldc + 1, (k + 5) % 8);
    buf_rand(&A, -1, 1);
    buf_rand(&B, -1, 1);
    buf_rand(&C, -1, 1);
    float *C0 = malloc((m * ldc + 1) * sizeof(float));
    if (beta == 0)
        for (size_t i = 0; i < m * ldc; i++) C.p[i] = NAN; /* must not be read */
    memcpy(C0, C.p, m * ldc * sizeof(float));
    t->k.sgemm(ta, tb, m, n, k, alpha, A.p, lda, B.p, ldb, beta, C.p, ldc);
    buf_check_guards(&C, "sgemm C");
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            double s = 0, mag = 0;
            for (size_t p = 0; p < k; p++) {
                double v = (double)opA(ta, A.p, lda, i, p) * opB(tb, B.p, ldb, p, j);
                s += v;
                mag += fabs(v);
            }
            double c0 = beta == 0 ? 0 : C0[i * ldc + j];
            double ref = alpha * s + beta * c0;
            double tol = (k + 2) * U * (fabs(alpha) * mag + fabs(beta * c0)) + 1e-30;
            float got = C.p[i * ldc + j];
            cr_assert(fabs(got - ref) <= tol,
                      "%s sgemm ta=%d tb=%d m=%zu n=%zu k=%zu alpha=%g beta=%g (%zu,%zu): %g vs %g",
                      t->name, ta, tb, m, n, k, alpha, beta, i, j, got, ref);
        }
        /* the gap between rows is not C's */
        for (size_t j = n; j < ldc && i + 1 < m; j++)
            cr_assert(C.p[i * ldc + j] == C0[i * ldc + j] || (isnan(C.p[i * ldc + j]) && beta == 0),
                      "%s sgemm wrote past n", t->name);
    }
    free(C0);
    buf_free(&A);
    buf_free(&B);
    buf_free(&C);
}

Test(kernels, sgemm_small_shapes, .timeout = 120)
{
    static const size_t S[] = {1, 2, 3, 5, 6, 7, 8, 13, 16, 17, 31, 33};
    enum { NS = sizeof S / sizeof S[0] };
    static const float AB[][2] = {{1, 0}, {1, 1}, {-0.5f, 0.3f}};
    table t[MAX_TABLES];
    int nt = tables(t);
    for (int ti = 0; ti < nt; ti++)
        for (int c = 0; c < 4; c++)
            for (size_t a = 0; a < NS; a++)
                for (size_t b = 0; b < NS; b++)
                    for (size_t q = 0; q < NS; q++) {
                        size_t v = (a + b + q + c) % 3;
                        check_gemm(&t[ti], c >> 1, c & 1, S[a], S[b], S[q], AB[v][0], AB[v][1],
                                   (a + q) % 4);
                    }
}

Test(kernels, sgemm_layer_shapes, .timeout = 120)
{
    /* MLP layers (forward ta=0 tb=1, dW ta=1 tb=0, dX ta=0 tb=0), GEMV and
     * rank-1 shapes of the 10-20-1 net, k past one block, m past one block */
    static const size_t SH[][3] = {{256, 128, 784},
                                   {256, 784, 128},
                                   {128, 784, 256},
                                   {256, 20, 10},
                                   {256, 1, 20},
                                   {1, 20, 256},
                                   {20, 10, 256},
                                   {256, 20, 1},
                                   {600, 40, 1000},
                                   {70, 530, 300},
                                   {1, 1, 5000},
                                   {3, 1, 700},
                                   /* the small-row regime of 784-256-128-10 */
                                   {2, 256, 784},
                                   {16, 128, 256},
                                   {5, 10, 128},
                                   {256, 784, 2},
                                   {128, 256, 16},
                                   {10, 128, 7},
                                   {8, 784, 256},
                                   {3, 37, 33}};
    table t[MAX_TABLES];
    int nt = tables(t);
    for (int ti = 0; ti < nt; ti++)
        for (size_t s = 0; s < sizeof SH / sizeof SH[0]; s++)
            for (int c = 0; c < 4; c++)
                check_gemm(&t[ti], c >> 1, c & 1, SH[s][0], SH[s][1], SH[s][2], s % 2 ? 1.0f : 0.5f,
                           s % 3 == 0 ? 0.0f : 1.0f, s % 3);
}

/* Shapes past the AVX2 kernel's in-place thresholds (n > 32 or k < 16, m >
 * 24), so the AVX-512 table runs its packed 12x32 path: row edges 1..11
 * of a 12-row panel, column edges of 16 and 32 lanes, k and m past one block. */
Test(kernels, sgemm_packed_edges, .timeout = 120)
{
    static const size_t SH[][3] = {{25, 33, 2},  {37, 47, 300}, {300, 65, 17}, {29, 100, 513},
                                   {277, 48, 9}, {26, 40, 15},  {35, 64, 8},   {46, 17, 3},
                                   {31, 81, 40}, {12, 96, 33},  {2, 70, 5},    {13, 49, 257}};
    table t[MAX_TABLES];
    int nt = tables(t);
    for (int ti = 0; ti < nt; ti++)
        for (size_t s = 0; s < sizeof SH / sizeof SH[0]; s++)
            for (int c = 0; c < 4; c++)
                check_gemm(&t[ti], c >> 1, c & 1, SH[s][0], SH[s][1], SH[s][2],
                           s % 2 ? 1.0f : -0.75f, s % 3 == 0 ? 0.0f : 0.5f, (s + (size_t)c) % 4);
}

Test(kernels, sgemm_degenerate)
{
    table t[MAX_TABLES];
    int nt = tables(t);
    for (int ti = 0; ti < nt; ti++) {
        float C[6] = {1, 2, 3, 4, 5, 6}, A[1] = {NAN}, B[1] = {NAN};
        /* k == 0: C = beta C; beta == 0 overwrites */
        t[ti].k.sgemm(0, 0, 2, 3, 0, 1.0f, A, 1, B, 1, 2.0f, C, 3);
        cr_assert(C[0] == 2 && C[5] == 12, "%s sgemm k=0 beta=2", t[ti].name);
        C[1] = NAN;
        t[ti].k.sgemm(1, 1, 2, 3, 0, 1.0f, A, 1, B, 1, 0.0f, C, 3);
        for (int i = 0; i < 6; i++) cr_assert(C[i] == 0, "%s sgemm k=0 beta=0", t[ti].name);
        /* m == 0 or n == 0: nothing touched */
        t[ti].k.sgemm(0, 0, 0, 3, 4, 1.0f, A, 1, B, 1, 0.0f, NULL, 3);
        t[ti].k.sgemm(0, 0, 2, 0, 4, 1.0f, A, 1, B, 1, 0.0f, NULL, 3);
    }
}

/* ---- bits of a block: the layer split ---- */

/* n floats equal bit for bit (NaN payloads included) */
static int same_bits(const float *x, const float *y, size_t n)
{
    return n == 0 || memcmp(x, y, n * sizeof(float)) == 0;
}

/* nth blocks [cut[t], cut[t+1]) of [0, len), uneven, some maybe empty */
static void random_cuts(size_t len, int nth, size_t *cut)
{
    cut[0] = 0;
    cut[nth] = len;
    for (int t = 1; t < nth; t++) cut[t] = len ? next_u64() % (len + 1) : 0;
    for (int t = 1; t < nth; t++) /* insertion sort of cut[1..nth-1] */
        for (int u = t; u > 1 && cut[u - 1] > cut[u]; u--) {
            size_t x = cut[u];
            cut[u] = cut[u - 1];
            cut[u - 1] = x;
        }
}

/* One call over C:(m,n) against (a) nth row blocks, (b) nth column blocks,
 * (c) a random block alone: every element bit for bit, nothing written
 * outside a block (the rest of C, the gaps between rows, the guards).
 * PART_OLD: each block through plain sgemm on the sub-matrix instead, to
 * see which shapes the part call is needed for (the test then fails). */
static void check_part(const table *t, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                       float beta, int nth, size_t pad)
{
    size_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    size_t lda = ac + pad, ldb = bc + pad + 1, ldc = n + pad + 2, nc = m * ldc;
    buf A = buf_new(ar * lda + 1, (m + 3) % 8), B = buf_new(br * ldb + 1, (n + 1) % 8);
    buf C = buf_new(nc, (k + 2) % 8);
    buf_rand(&A, -1, 1);
    buf_rand(&B, -1, 1);
    float *C0 = malloc((nc + 1) * sizeof(float)), *Cw = malloc((nc + 1) * sizeof(float));
    for (size_t i = 0; i < nc; i++) C0[i] = beta == 0 ? NAN : urand(-1, 1);
    memcpy(C.p, C0, nc * sizeof(float));
    t->k.sgemm(ta, tb, m, n, k, alpha, A.p, lda, B.p, ldb, beta, C.p, ldc);
    memcpy(Cw, C.p, nc * sizeof(float));
    size_t cut[8];
    for (int mode = 0; mode < 3; mode++) {
        memcpy(C.p, C0, nc * sizeof(float));
        size_t bi0 = 0, bi1 = m, bj0 = 0, bj1 = n; /* mode 2's block */
        if (mode == 2) {
            bi0 = next_u64() % m, bi1 = bi0 + 1 + next_u64() % (m - bi0);
            bj0 = next_u64() % n, bj1 = bj0 + 1 + next_u64() % (n - bj0);
        }
        int nb = mode == 2 ? 1 : nth;
        random_cuts(mode == 0 ? m : n, nth, cut);
        for (int q = 0; q < nb; q++) {
            size_t i0 = mode == 0 ? cut[q] : bi0, i1 = mode == 0 ? cut[q + 1] : bi1;
            size_t j0 = mode == 1 ? cut[q] : bj0, j1 = mode == 1 ? cut[q + 1] : bj1;
#ifdef PART_OLD
            if (i0 < i1 && j0 < j1)
                t->k.sgemm(ta, tb, i1 - i0, j1 - j0, k, alpha, A.p + (ta ? i0 : i0 * lda), lda,
                           B.p + (tb ? j0 * ldb : j0), ldb, beta, C.p + i0 * ldc + j0, ldc);
#else
            t->k.sgemm_part(ta, tb, m, n, k, alpha, A.p, lda, B.p, ldb, beta, C.p, ldc, i0, i1, j0,
                            j1);
#endif
        }
        buf_check_guards(&C, "sgemm_part C");
        for (size_t i = 0; i < m; i++) {
            const float *got = C.p + i * ldc, *w = Cw + i * ldc, *c0 = C0 + i * ldc;
            int in_rows = i >= bi0 && i < bi1;
            cr_assert(same_bits(got, c0, bj0),
                      "%s sgemm_part ta=%d tb=%d m=%zu n=%zu k=%zu alpha=%g beta=%g nth=%d "
                      "mode=%d row %zu left of the block",
                      t->name, ta, tb, m, n, k, alpha, beta, nth, mode, i);
            cr_assert(same_bits(got + bj0, (in_rows ? w : c0) + bj0, bj1 - bj0),
                      "%s sgemm_part ta=%d tb=%d m=%zu n=%zu k=%zu alpha=%g beta=%g nth=%d "
                      "mode=%d row %zu: not the whole call's bits",
                      t->name, ta, tb, m, n, k, alpha, beta, nth, mode, i);
            cr_assert(same_bits(got + bj1, c0 + bj1, n - bj1),
                      "%s sgemm_part ta=%d tb=%d m=%zu n=%zu k=%zu nth=%d mode=%d row %zu right "
                      "of the block",
                      t->name, ta, tb, m, n, k, nth, mode, i);
            if (mode == 2 && !in_rows)
                cr_assert(same_bits(got, c0, n), "%s sgemm_part wrote outside the block rows",
                          t->name);
            cr_assert(same_bits(got + n, c0 + n, i + 1 < m ? ldc - n : 0),
                      "%s sgemm_part wrote past n", t->name);
        }
    }
    free(C0);
    free(Cw);
    buf_free(&A);
    buf_free(&B);
    buf_free(&C);
}

/* A whose rows run along k (ta = 0) is read in place by the packed path
 * (DPT_SGEMM_A_IN_PLACE), except with rows a multiple of 1 KiB apart,
 * where it is packed: the same A at lda 512 (packed) and 513, 516 (in
 * place) gives the same bits, at row edges, both B layouts, k past one
 * block, n past the AVX2 kernel's in-place limit. */
Test(kernels, sgemm_a_in_place_bits, .timeout = 60)
{
    static const size_t SH[][3] = {{37, 33, 17}, {130, 64, 300}, {25, 100, 256}, {13, 48, 40}};
    static const size_t LD[] = {513, 516};
    table t[MAX_TABLES];
    int nt = tables(t);
    for (int ti = 1; ti < nt; ti++)
        for (size_t s = 0; s < sizeof SH / sizeof SH[0]; s++)
            for (int tb = 0; tb < 2; tb++)
                for (size_t l = 0; l < 2; l++) {
                    const size_t m = SH[s][0], n = SH[s][1], k = SH[s][2], ldb = tb ? k + 1 : n + 1;
                    const size_t ldc = n + 2, lp = 512, li = LD[l];
                    const float beta = (s + (size_t)tb) % 2 ? 1.0f : 0.0f;
                    cr_assert(!DPT_SGEMM_A_IN_PLACE(0, lp) && DPT_SGEMM_A_IN_PLACE(0, li));
                    buf Ap = buf_new(m * lp, 1), Ai = buf_new(m * li, 2);
                    buf B = buf_new((tb ? n : k) * ldb, 3);
                    buf_rand(&Ap, -1, 1);
                    buf_rand(&B, -1, 1);
                    for (size_t i = 0; i < m; i++)
                        memcpy(Ai.p + i * li, Ap.p + i * lp, k * sizeof(float));
                    float *Cp = malloc(m * ldc * sizeof(float)),
                          *Ci = malloc(m * ldc * sizeof(float));
                    for (size_t i = 0; i < m * ldc; i++) Cp[i] = Ci[i] = urand(-1, 1);
                    t[ti].k.sgemm(0, tb, m, n, k, 0.5f, Ap.p, lp, B.p, ldb, beta, Cp, ldc);
                    t[ti].k.sgemm(0, tb, m, n, k, 0.5f, Ai.p, li, B.p, ldb, beta, Ci, ldc);
                    for (size_t i = 0; i < m; i++)
                        cr_assert(same_bits(Cp + i * ldc, Ci + i * ldc, n),
                                  "%s: A in place (lda %zu) against packed (lda %zu), tb=%d "
                                  "m=%zu n=%zu k=%zu beta=%g: row %zu differs",
                                  t[ti].name, li, lp, tb, m, n, k, beta, i);
                    free(Cp), free(Ci);
                    buf_free(&Ap), buf_free(&Ai), buf_free(&B);
                }
}

/* Every path of every table's SGEMM (GEMV dot and axpy forms with 64-column
 * chunks cut across, the small-row loops, rank 1, k == 0, the 6x16 and 12x32
 * micro-kernels in place and packed, k past one block): shapes from
 * PM x PM and two of PK for each, all four transposition cases, alpha and
 * beta cycled (beta 0: C holds NaN, never read). */
Test(kernels, sgemm_part_bits, .timeout = 120)
{
    static const size_t PM[] = {1, 2, 3, 4, 5, 7, 8, 10, 13, 16, 17, 24, 31, 32, 33, 64, 100, 130};
    static const size_t PK[] = {1, 2, 5, 16, 17, 31, 32, 33, 100, 256, 300, 784};
    enum { NM = sizeof PM / sizeof PM[0], NK = sizeof PK / sizeof PK[0] };
    static const float AB[][2] = {{1, 0},    {1, 1},      {-0.75f, 0},
                                  {1, 0.5f}, {-0.75f, 1}, {0.3f, -1.25f}};
    table t[MAX_TABLES];
    int nt = tables(t);
    for (int ti = 1; ti < nt; ti++) /* t[0], the table in use, is one of the others */
        for (size_t a = 0; a < NM; a++)
            for (size_t b = 0; b < NM; b++)
                for (int c = 0; c < 4; c++)
                    for (size_t r = 0; r < 2; r++) {
                        size_t kk = PK[(a + 3 * b + 5 * (size_t)c + 7 * r) % NK];
                        size_t v = (a + 2 * b + (size_t)c + 3 * r) % 6;
                        check_part(&t[ti], c >> 1, c & 1, PM[a], PM[b], kk, AB[v][0], AB[v][1],
                                   2 + (int)((a + b + (size_t)c + r) % 5), (a + (size_t)c) % 3);
                    }
}

/* sgemm_class's promise: where m1 rows, m2 rows and their m1 + m2 get the
 * same class, one call over the stacked rows gives each row the bits of its
 * own call (what the layer split's units rely on). Returns 1 when the
 * classes matched and the rows were compared. */
static int check_class_rows(const table *t, int ta, int tb, size_t m1, size_t m2, size_t n,
                            size_t k, float alpha, float beta)
{
    const size_t m = m1 + m2;
    const int c = t->k.sgemm_class(ta, tb, m, n, k);
    if (c < 0 || t->k.sgemm_class(ta, tb, m1, n, k) != c || t->k.sgemm_class(ta, tb, m2, n, k) != c)
        return 0;
    size_t lda = (ta ? m : k) + 1, ldb = (tb ? k : n) + 2, ldc = n + 3;
    buf A = buf_new((ta ? k : m) * lda, 1), B = buf_new((tb ? n : k) * ldb, 2);
    buf_rand(&A, -1, 1);
    buf_rand(&B, -1, 1);
    float *C0 = malloc(m * ldc * sizeof(float)), *Cs = malloc(m * ldc * sizeof(float)),
          *Cj = malloc(m * ldc * sizeof(float));
    for (size_t i = 0; i < m * ldc; i++) C0[i] = beta == 0 ? NAN : urand(-1, 1);
    memcpy(Cs, C0, m * ldc * sizeof(float));
    memcpy(Cj, C0, m * ldc * sizeof(float));
    /* rows [0, m1) and [m1, m) of op(A): rows of A (ta = 0) or its columns */
    const float *A2 = A.p + (ta ? m1 : m1 * lda);
    t->k.sgemm_part(ta, tb, m1, n, k, alpha, A.p, lda, B.p, ldb, beta, Cs, ldc, 0, m1, 0, n);
    t->k.sgemm_part(ta, tb, m2, n, k, alpha, A2, lda, B.p, ldb, beta, Cs + m1 * ldc, ldc, 0, m2, 0,
                    n);
    t->k.sgemm_part(ta, tb, m, n, k, alpha, A.p, lda, B.p, ldb, beta, Cj, ldc, 0, m, 0, n);
    for (size_t i = 0; i < m; i++)
        cr_assert(same_bits(Cs + i * ldc, Cj + i * ldc, n),
                  "%s sgemm_class %d: ta=%d tb=%d %zu + %zu rows n=%zu k=%zu alpha=%g beta=%g: row "
                  "%zu differs from its own call",
                  t->name, c, ta, tb, m1, m2, n, k, alpha, beta, i);
    free(C0), free(Cs), free(Cj);
    buf_free(&A), buf_free(&B);
    return 1;
}

/* Every table's sgemm_class over row counts on both sides of the small-row
 * and GEMV limits, all four transposition cases; the vector tables must
 * let the layer split's shapes (2-16 rows forward, any rows past 1 for the
 * input gradient) through, or the promise is never used. */
Test(kernels, sgemm_class_rows, .timeout = 120)
{
    static const size_t PM[] = {1, 2, 3, 5, 8, 14, 16, 17, 30};
    static const size_t PN[] = {1, 4, 10, 31, 33, 256};
    static const size_t PK[] = {1, 2, 16, 40, 300};
    static const float AB[][2] = {{1, 0}, {-0.75f, 1}, {0.5f, 0.25f}};
    enum { NM = sizeof PM / sizeof PM[0] };
    table t[MAX_TABLES];
    int nt = tables(t);
    for (int ti = 1; ti < nt; ti++) {
        int checked = 0, v = 0;
        for (int c = 0; c < 4; c++)
            for (size_t a = 0; a < NM; a++)
                for (size_t b = a; b < NM; b++)
                    for (size_t in = 0; in < sizeof PN / sizeof PN[0]; in++)
                        for (size_t ik = 0; ik < sizeof PK / sizeof PK[0]; ik++, v = (v + 1) % 3)
                            checked += check_class_rows(&t[ti], c >> 1, c & 1, PM[a], PM[b], PN[in],
                                                        PK[ik], AB[v][0], AB[v][1]);
        cr_expect_gt(checked, 100, "%s: only %d shapes shared a class", t[ti].name, checked);
        /* the layer split's products of 784-256-128-10 */
        const dpt_kernels *k = &t[ti].k;
        cr_expect_eq(k->sgemm_class(0, 1, 2, 256, 784), k->sgemm_class(0, 1, 16, 256, 784),
                     "%s: forward, 2 and 16 rows", t[ti].name);
        cr_expect_eq(k->sgemm_class(0, 0, 2, 256, 128), k->sgemm_class(0, 0, 40, 256, 128),
                     "%s: input gradient, 2 and 40 rows", t[ti].name);
        cr_expect_geq(k->sgemm_class(0, 0, 2, 256, 128), 0, "%s", t[ti].name);
    }
}

/* sgemv_rows: R one-row products at once, each row the bits of its own
 * one-row part call, nothing written outside the columns asked for. */
Test(kernels, sgemv_rows_bits, .timeout = 60)
{
    static const size_t PR[] = {1, 2, 3, 5}, PN[] = {2, 3, 4, 5, 10, 33, 256},
                        PK[] = {0, 1, 7, 8, 9, 31, 784};
    table t[MAX_TABLES];
    int nt = tables(t);
    for (int ti = 1; ti < nt; ti++)
        for (size_t a = 0; a < sizeof PR / sizeof PR[0]; a++)
            for (size_t b = 0; b < sizeof PN / sizeof PN[0]; b++)
                for (size_t c = 0; c < sizeof PK / sizeof PK[0]; c++) {
                    const size_t R = PR[a], n = PN[b], k = PK[c], lda = k + 3, ldb = k + 1,
                                 ldc = n + 2;
                    const float alpha = c & 1 ? -0.75f : 1.0f;
                    buf A = buf_new(R * lda + 1, (R + c) % 8), B = buf_new(n * ldb + 1, b % 8);
                    buf_rand(&A, -1, 1);
                    buf_rand(&B, -1, 1);
                    float *want = malloc(R * ldc * sizeof(float)),
                          *got = malloc(R * ldc * sizeof(float));
                    for (size_t i = 0; i < R * ldc; i++) want[i] = got[i] = (float)i;
                    size_t j0 = next_u64() % n, j1 = j0 + 1 + next_u64() % (n - j0);
                    for (size_t i = 0; i < R; i++)
                        t[ti].k.sgemm_part(0, 1, 1, n, k, alpha, A.p + i * lda, lda, B.p, ldb, 0.0f,
                                           want + i * ldc, ldc, 0, 1, j0, j1);
                    t[ti].k.sgemv_rows(R, n, k, alpha, A.p, lda, B.p, ldb, got, ldc, j0, j1);
                    cr_assert(same_bits(want, got, R * ldc),
                              "%s sgemv_rows R=%zu n=%zu k=%zu columns [%zu, %zu): not each row's "
                              "own call",
                              t[ti].name, R, n, k, j0, j1);
                    free(want), free(got);
                    buf_free(&A), buf_free(&B);
                }
}

/* The dW small-row loop (A^T B over k = 2-16 rows, n >= 32) is the same
 * per-element arithmetic in every vector table (beta c, then the fused
 * alpha-scaled products in order): the AVX-512 12x32 tiles give the AVX2
 * 6x16 tiles' bits, over row and column edges of both and B blocks past
 * the first. */
Test(kernels, sgemm_small_tn_same_bits)
{
    static const size_t SH[][3] = {{256, 784, 16}, {128, 256, 2},  {13, 33, 5},   {25, 300, 16},
                                   {7, 47, 3},     {130, 517, 11}, {12, 32, 16},  {1, 40, 9},
                                   {37, 64, 15},   {6, 255, 8},    {64, 1000, 4}, {100, 96, 7}};
    static const float AB[][2] = {{1, 0}, {1, 1}, {-0.75f, 0.5f}};
    table t[MAX_TABLES];
    int nt = tables(t), nv = 0;
    const table *vec[MAX_TABLES];
    for (int ti = 1; ti < nt; ti++)
        if (strcmp(t[ti].name, "scalar")) vec[nv++] = &t[ti];
    /* a skip, not a warning: Criterion exits 1 after a test that logs one */
    if (nv < 2) cr_skip_test("needs two vector tables (AVX2 and AVX-512); this CPU runs %d", nv);
    for (size_t s = 0; s < sizeof SH / sizeof SH[0]; s++) {
        size_t m = SH[s][0], n = SH[s][1], k = SH[s][2], pad = s % 3;
        size_t lda = m + pad, ldb = n + pad + 1, ldc = n + 2 * pad;
        float alpha = AB[s % 3][0], beta = AB[s % 3][1];
        buf A = buf_new(k * lda, s % 8), B = buf_new(k * ldb, (s + 3) % 8);
        buf_rand(&A, -1, 1);
        buf_rand(&B, -1, 1);
        float *C0 = malloc(m * ldc * sizeof(float));
        for (size_t i = 0; i < m * ldc; i++) C0[i] = urand(-1, 1);
        float *C[MAX_TABLES];
        for (int v = 0; v < nv; v++) {
            C[v] = malloc(m * ldc * sizeof(float));
            memcpy(C[v], C0, m * ldc * sizeof(float));
            vec[v]->k.sgemm(1, 0, m, n, k, alpha, A.p, lda, B.p, ldb, beta, C[v], ldc);
        }
        for (int v = 1; v < nv; v++)
            cr_assert(same_bits(C[v], C[0], m * ldc), "%s vs %s: small dW %zux%zu k=%zu differ",
                      vec[v]->name, vec[0]->name, m, n, k);
        for (int v = 0; v < nv; v++) free(C[v]);
        free(C0);
        buf_free(&A);
        buf_free(&B);
    }
}

/* sgemm_tn_fold against its contract: every unit's product as sgemm_part
 * computes it, the products summed by the engine's binary counter (a unit
 * added to the sums of 1, 2, 4, ... units before it while they are
 * complete, then the partial sums left added lowest first), bit for bit;
 * 2 to 64 units of 1 to 16 rows, alike and mixed, row ranges whose blocks
 * leave every tail, and the rows outside [i0, i1) untouched. */
static void fold_ref(const table *t, int nu, const size_t *k, const float *const *A, size_t lda,
                     const float *const *B, size_t ldb, size_t m, size_t n, size_t i0, size_t i1,
                     float *C, size_t ldc)
{
    const size_t sz = m * ldc;
    float *slot[8], *cur = malloc(sz * sizeof(float));
    int used[8] = {0};
    for (int j = 0; j < 8; j++) slot[j] = malloc(sz * sizeof(float));
    for (int v = 0; v < nu; v++) {
        memset(cur, 0, sz * sizeof(float));
        t->k.sgemm_part(1, 0, m, n, k[v], 1.0f, A[v], lda, B[v], ldb, 0.0f, cur, ldc, i0, i1, 0, n);
        int j = 0;
        for (; used[j]; j++) {
            t->k.add(sz, slot[j], cur); /* cur = s_j + cur */
            used[j] = 0;
        }
        memcpy(slot[j], cur, sz * sizeof(float));
        used[j] = 1;
    }
    int have = 0;
    for (int j = 0; j < 8; j++) {
        if (!used[j]) continue;
        if (have)
            t->k.add(sz, slot[j], cur);
        else
            memcpy(cur, slot[j], sz * sizeof(float));
        have = 1;
    }
    for (size_t i = i0; i < i1; i++) memcpy(C + i * ldc, cur + i * ldc, n * sizeof(float));
    for (int j = 0; j < 8; j++) free(slot[j]);
    free(cur);
}

Test(kernels, sgemm_tn_fold, .timeout = 120)
{
    static const int NU[] = {2, 3, 4, 5, 8, 9, 16, 17, 31, 32, 64};
    static const size_t MN[][4] = {/* m, n, i0, i1 */
                                   {32, 784, 0, 32}, {30, 40, 3, 30},  {16, 256, 0, 16},
                                   {13, 33, 1, 12},  {64, 512, 8, 47}, {7, 96, 0, 7}};
    table t[MAX_TABLES];
    int nt = tables(t), tested = 0;
    for (int ti = 0; ti < nt; ti++) {
        if (!t[ti].k.sgemm_tn_fold) continue;
        for (size_t a = 0; a < sizeof NU / sizeof NU[0]; a++)
            for (int kind = 0; kind < 4; kind++) {
                const int nu = NU[a];
                const size_t *sh = MN[(a + (size_t)kind) % (sizeof MN / sizeof MN[0])];
                const size_t m = sh[0], n = sh[1], i0 = sh[2], i1 = sh[3];
                const size_t lda = m + (size_t)kind, ldb = n + 16 * (size_t)(kind & 1), ldc = n + 3;
                size_t k[64];
                const float *Ap[64], *Bp[64];
                buf Ab[64], Bb[64];
                for (int v = 0; v < nu; v++) {
                    /* alike 1, alike 2, 1 and 2 mixed, 1 to 16 */
                    k[v] = kind == 0   ? 1
                           : kind == 1 ? 2
                           : kind == 2 ? 1 + (size_t)(v % 2)
                                       : 1 + (size_t)((v * 7 + 3) % 16);
                    Ab[v] = buf_new(k[v] * lda, (size_t)v % 4);
                    Bb[v] = buf_new(k[v] * ldb, (size_t)(v + 1) % 4);
                    buf_rand(&Ab[v], -1, 1);
                    buf_rand(&Bb[v], -1, 1);
                    Ap[v] = Ab[v].p;
                    Bp[v] = Bb[v].p;
                }
                float *got = malloc(m * ldc * sizeof(float)),
                      *want = malloc(m * ldc * sizeof(float));
                for (size_t i = 0; i < m * ldc; i++) got[i] = want[i] = urand(-1, 1);
                if (t[ti].k.sgemm_tn_fold(nu, k, Ap, lda, Bp, ldb, m, n, i0, i1, got, ldc) == 0) {
                    fold_ref(&t[ti], nu, k, Ap, lda, Bp, ldb, m, n, i0, i1, want, ldc);
                    cr_expect(same_bits(got, want, m * ldc),
                              "%s: %d units (rows kind %d), %zux%zu rows %zu-%zu: the fold's bits "
                              "differ",
                              t[ti].name, nu, kind, m, n, i0, i1);
                    tested++;
                }
                free(got);
                free(want);
                for (int v = 0; v < nu; v++) buf_free(&Ab[v]), buf_free(&Bb[v]);
            }
    }
    if (have_avx2()) cr_expect_gt(tested, 40, "the fold took %d of the cases", tested);
}

/* bias_act, act_bwd and col_sum over column slices (pointers + j0, cols =
 * j1 - j0, the slices cut anywhere relative to the vector width) give the
 * whole rows' bits. */
static void check_slices(const table *t, size_t rows, size_t cols, int nth)
{
    size_t ld = cols + 3, nz = rows * ld, cut[8];
    buf z = buf_new(nz, cols % 8), b = buf_new(cols, (cols + 5) % 8);
    buf a = buf_new(nz, 1), da = buf_new(nz, 3), w = buf_new(nz, 2), s = buf_new(nz, 5);
    buf_rand(&b, -1, 1);
    for (int act = 0; act < 3; act++) {
        for (int mode = 0; mode < 3; mode++) { /* 0: bias+act, 1: act only, 2: bias only */
            const float *bp = mode == 1 ? NULL : b.p;
            buf_rand(&z, -6, 6);
            memcpy(w.p, z.p, nz * sizeof(float));
            memcpy(s.p, z.p, nz * sizeof(float));
            t->k.bias_act((dpt_act)act, mode != 2, rows, cols, bp, w.p, ld);
            random_cuts(cols, nth, cut);
            for (int q = 0; q < nth; q++)
                t->k.bias_act((dpt_act)act, mode != 2, rows, cut[q + 1] - cut[q],
                              bp ? bp + cut[q] : NULL, s.p + cut[q], ld);
            buf_check_guards(&s, "bias_act slices");
            cr_assert(same_bits(s.p, w.p, nz), "%s bias_act act=%d mode=%d rows=%zu cols=%zu",
                      t->name, act, mode, rows, cols);
        }
        for (int inplace = 0; inplace < 2; inplace++) {
            for (size_t i = 0; i < nz; i++)
                a.p[i] = act == DPT_ACT_SIGMOID ? urand(0, 1) : urand(-1, 1);
            buf_rand(&da, -3, 3);
            buf_rand(&z, -1, 1); /* what an out-of-place dZ held */
            const float *src = inplace ? da.p : z.p;
            memcpy(w.p, src, nz * sizeof(float));
            memcpy(s.p, src, nz * sizeof(float));
            const float *dw = inplace ? w.p : da.p, *dsl = inplace ? s.p : da.p;
            t->k.act_bwd((dpt_act)act, rows, cols, a.p, ld, dw, ld, w.p, ld);
            random_cuts(cols, nth, cut);
            for (int q = 0; q < nth; q++)
                t->k.act_bwd((dpt_act)act, rows, cut[q + 1] - cut[q], a.p + cut[q], ld,
                             dsl + cut[q], ld, s.p + cut[q], ld);
            buf_check_guards(&s, "act_bwd slices");
            cr_assert(same_bits(s.p, w.p, nz), "%s act_bwd act=%d inplace=%d rows=%zu cols=%zu",
                      t->name, act, inplace, rows, cols);
        }
    }
    buf o = buf_new(cols, (cols + 1) % 8), os = buf_new(cols, (cols + 6) % 8);
    buf_rand(&z, -1, 1);
    buf_rand(&o, -1, 1);
    memcpy(os.p, o.p, cols * sizeof(float));
    t->k.col_sum(rows, cols, z.p, ld, o.p);
    random_cuts(cols, nth, cut);
    for (int q = 0; q < nth; q++)
        t->k.col_sum(rows, cut[q + 1] - cut[q], z.p + cut[q], ld, os.p + cut[q]);
    buf_check_guards(&os, "col_sum slices");
    cr_assert(same_bits(os.p, o.p, cols), "%s col_sum rows=%zu cols=%zu", t->name, rows, cols);
    buf_free(&o);
    buf_free(&os);
    buf_free(&z);
    buf_free(&b);
    buf_free(&a);
    buf_free(&da);
    buf_free(&w);
    buf_free(&s);
}

Test(kernels, slice_elementwise_bits, .timeout = 60)
{
    static const size_t R[] = {1, 3, 4, 5, 7, 33, 256};
    static const size_t C[] = {1,  2,  7,  8,   9,   15,  16,  17,  31,  33,
                               63, 64, 65, 100, 127, 128, 130, 200, 300, 784};
    table t[MAX_TABLES];
    int nt = tables(t);
    for (int ti = 1; ti < nt; ti++)
        for (size_t r = 0; r < sizeof R / sizeof R[0]; r++)
            for (size_t c = 0; c < sizeof C / sizeof C[0]; c++)
                for (int nth = 2; nth <= 6; nth += 2)
                    check_slices(&t[ti], R[r], C[c], nth + (int)(c % 2));
}

/* AVX2 and scalar agree within the stated bounds on the same inputs (both
 * are checked against the double reference above; this catches a table
 * whose entries were filled from the wrong ISA). */
Test(kernels, avx2_table_complete)
{
    if (!have_avx2()) return;
    dpt_kernels s, a;
    dpt_kernels_fill_scalar(&s);
    dpt_kernels_fill_scalar(&a);
    dpt_kernels_fill_avx2(&a);
    cr_assert_str_eq(a.isa, "avx2");
    cr_assert(a.dot != s.dot && a.axpy != s.axpy && a.scale != s.scale && a.add != s.add);
    cr_assert(a.glm_grad != s.glm_grad && a.sgemm != s.sgemm && a.bias_act != s.bias_act);
    cr_assert(a.sgemm_part != s.sgemm_part && a.sgemm_class != s.sgemm_class);
    cr_assert(a.sgemv_rows != s.sgemv_rows);
    cr_assert(a.act_bwd != s.act_bwd && a.col_sum != s.col_sum && a.softmax_ce != s.softmax_ce);
    cr_assert(a.vexp != s.vexp && a.vlog != s.vlog && a.update != s.update);
}

/* The AVX-512 fill overrides every entry of an AVX2 table (none is left to
 * fall back), and the table it gives is the one the dispatch installs. */
Test(kernels, avx512_table_complete)
{
    if (!have_avx512())
        cr_skip_test("this build or CPU/OS has no AVX-512 F/BW/DQ/VL: nothing to check");
    dpt_kernels s, a, x;
    dpt_kernels_fill_scalar(&s);
    dpt_kernels_fill_avx2(&s);
    a = s;
    dpt_kernels_fill_avx512(&a);
    cr_assert_str_eq(a.isa, "avx512");
    cr_assert(a.dot != s.dot && a.axpy != s.axpy && a.scale != s.scale && a.add != s.add);
    cr_assert(a.glm_grad != s.glm_grad && a.sgemm != s.sgemm && a.bias_act != s.bias_act);
    cr_assert(a.sgemm_part != s.sgemm_part && a.sgemm_class != s.sgemm_class);
    cr_assert(a.act_bwd != s.act_bwd && a.col_sum != s.col_sum && a.softmax_ce != s.softmax_ce);
    cr_assert(a.vexp != s.vexp && a.vlog != s.vlog && a.update != s.update);
    cr_assert_eq(dpt_kernels_select("avx512"), 0);
    x = *dpt_kernels_get();
    cr_assert(x.sgemm == a.sgemm && x.update == a.update && x.dot == a.dot);
}

/* ---- dispatch ---- */

Test(dispatch, env_setup_honoured)
{
    const char *env = getenv("DPT_ISA");
    const dpt_kernels *k = dpt_kernels_get();
    if (env && !strcmp(env, "scalar"))
        cr_assert_str_eq(k->isa, "scalar");
    else if (env && !strcmp(env, "avx2"))
        cr_assert_str_eq(k->isa, "avx2");
    else if (env && !strcmp(env, "avx512"))
        cr_assert_str_eq(k->isa, "avx512");
    else if (!env || !*env || !strcmp(env, "auto"))
        cr_assert_str_eq(k->isa, best_isa());
}

Test(dispatch, env_scalar_picked_at_first_use)
{
    setenv("DPT_ISA", "scalar", 1);
    cr_assert_str_eq(dpt_kernels_get()->isa, "scalar");
}

Test(dispatch, env_unknown_falls_back_to_auto)
{
    setenv("DPT_ISA", "sse9", 1);
    cr_assert_str_eq(dpt_kernels_get()->isa, best_isa());
}

static void *get_table(void *arg)
{
    (void)arg;
    return (void *)dpt_kernels_get();
}

/* the first use may come from several threads at once: one table for all */
Test(dispatch, first_use_from_threads)
{
    pthread_t th[6];
    void *got[6];
    for (int i = 0; i < 6; i++) cr_assert_eq(pthread_create(&th[i], NULL, get_table, NULL), 0);
    for (int i = 0; i < 6; i++) pthread_join(th[i], &got[i]);
    for (int i = 1; i < 6; i++) cr_assert_eq(got[i], got[0]);
    cr_assert(((const dpt_kernels *)got[0])->sgemm != NULL);
}

Test(dispatch, select_names)
{
    cr_assert_eq(dpt_kernels_select("scalar"), 0);
    cr_assert_str_eq(dpt_kernels_get()->isa, "scalar");
    cr_assert_eq(dpt_kernels_select("auto"), 0);
    cr_assert_str_eq(dpt_kernels_get()->isa, best_isa());
    cr_assert_eq(dpt_kernels_select(NULL), 0);
}

Test(dispatch, select_unknown_refused)
{
    dpt_clear_error();
    cr_assert_eq(dpt_kernels_select("avx1024"), DPT_EINVAL);
    cr_assert(strstr(dpt_last_error(), "avx1024"), "message: %s", dpt_last_error());
    cr_assert(strstr(dpt_last_error(), "avx512"), "lists the choices: %s", dpt_last_error());
    cr_assert_eq(dpt_kernels_select(""), DPT_EINVAL);
}

Test(dispatch, select_avx2)
{
    dpt_clear_error();
    int rc = dpt_kernels_select("avx2");
    if (have_avx2()) {
        cr_assert_eq(rc, 0);
        cr_assert_str_eq(dpt_kernels_get()->isa, "avx2");
    } else {
        /* a build without the AVX2 files (-Davx2=disabled) or a CPU without AVX2 */
        cr_assert_eq(rc, DPT_ENOTSUP);
        cr_assert(strstr(dpt_last_error(), "avx2"), "message: %s", dpt_last_error());
        cr_assert_str_eq(dpt_kernels_get()->isa, "scalar");
    }
#if !DPT_HAVE_AVX2
    cr_assert(!dpt_build_has_avx2());
    cr_assert_eq(rc, DPT_ENOTSUP);
#endif
}

Test(dispatch, cpu_probe_consistent)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (dpt_cpu_has_avx2())
        cr_assert(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
#endif
    cr_assert_eq(dpt_build_has_avx2(), DPT_HAVE_AVX2);
    cr_assert_eq(dpt_build_has_avx512(), DPT_HAVE_AVX512);
#if defined(__x86_64__)
    if (dpt_cpu_has_avx512()) {
        cr_assert(dpt_cpu_has_avx2());
        cr_assert(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"));
        /* the OS saves opmask and ZMM state */
        unsigned lo, hi;
        __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        cr_assert((lo & 0xe6) == 0xe6, "XCR0 %#x", lo);
    }
#endif
}

Test(dispatch, select_avx512)
{
    dpt_clear_error();
    cr_assert_eq(dpt_kernels_select("scalar"), 0);
    int rc = dpt_kernels_select("avx512");
    if (have_avx512()) {
        cr_assert_eq(rc, 0);
        cr_assert_str_eq(dpt_kernels_get()->isa, "avx512");
        cr_assert_str_eq(dpt_isa_name(), "avx512");
        cr_assert_eq(dpt_isa_select("auto"), 0);
        cr_assert_str_eq(dpt_isa_name(), "avx512", "auto picks the widest");
    } else {
        /* a build without the AVX-512 files, or a CPU or OS without AVX-512 */
        cr_assert_eq(rc, DPT_ENOTSUP);
        cr_assert(strstr(dpt_last_error(), "avx512"), "message: %s", dpt_last_error());
        cr_assert_str_eq(dpt_kernels_get()->isa, "scalar", "the table in use is kept");
    }
#if !DPT_HAVE_AVX512
    cr_assert_eq(rc, DPT_ENOTSUP);
#endif
}

/* ---- limits: runs and reports, nothing about speed ---- */

Test(limits, measure_small)
{
    dpt_limits l;
    cr_assert_eq(dpt_limits_measure_sized(2, (size_t)4 << 20, 3, &l), 0);
    cr_assert(l.threads >= 1 && l.threads <= 2);
    cr_assert(l.read_gbs > 0 && isfinite(l.read_gbs));
    cr_assert(l.fma_gflops > 0 && isfinite(l.fma_gflops));
    cr_assert(l.read_gbs_best >= l.read_gbs && l.fma_gflops_best >= l.fma_gflops);
    cr_assert(l.reps == 3 && l.read_bytes > 0 && l.read_bytes <= ((size_t)4 << 20));
    cr_assert_str_eq(l.isa, dpt_kernels_get()->isa);
    cr_assert_eq(dpt_limits_measure(1, NULL), DPT_EINVAL);
}

/* The FMA peak is the loop of the kernel table in use (what --isa or
 * DPT_ISA chose), so a run's %peak is against what its kernels can reach:
 * an AVX2 table on an AVX-512 CPU is not held to the AVX-512 peak. */
Test(limits, peak_of_the_table_in_use)
{
    static const char *const isas[] = {"scalar", "avx2", "avx512"};
    for (int i = 0; i < 3; i++) {
        if (dpt_kernels_select(isas[i])) continue; /* not on this CPU or build */
        dpt_limits l;
        cr_assert_eq(dpt_limits_measure_sized(1, (size_t)1 << 20, 1, &l), 0);
        cr_expect_str_eq(l.isa, isas[i], "table %s: the peak of %s", isas[i], l.isa);
    }
    cr_assert_eq(dpt_kernels_select(best_isa()), 0);
}

/* The read loop of dpt limits (several streams per thread) reads every
 * element exactly once: small integers sum exactly in float. From 64 gaps
 * per stream on, the streams start a gap apart (the last two sizes). */
Test(limits, read_kernels_read_everything_once)
{
    enum { NMAX = 64 * 17188 };
    static const size_t ns[] = {64, 128, 192, 4096, 65600, 4 * 64 * DPT_K_READ_GAP, NMAX};
    cr_assert_eq(dpt_k_read_gap(ns[4]), 0);
    cr_assert_eq(dpt_k_read_gap(ns[5]), DPT_K_READ_GAP);
    float *x = aligned_alloc(64, NMAX * sizeof(float));
    cr_assert_not_null(x);
    for (size_t i = 0; i < NMAX; i++) x[i] = (float)(i % 7);
    for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
        double want = 0;
        for (size_t i = 0; i < ns[c]; i++) want += x[i];
        cr_assert_eq(dpt_k_read_f32_scalar(ns[c], x), (float)want, "scalar, n %zu", ns[c]);
#if DPT_HAVE_AVX2
        if (dpt_cpu_has_avx2())
            cr_assert_eq(dpt_k_read_f32_avx2(ns[c], x), (float)want, "avx2, n %zu", ns[c]);
#endif
    }
    free(x);
}

/* ---- the fused tiny MLP (d-h-1 ReLU, MSE) ---- */

/* Every table's kernel against a double reference of the generic path's
 * math (the ReLU mask from the float pre-activation, as the kernels see it),
 * added onto a nonzero g, over odd row counts (chunk and vector tails),
 * strides and widths up to the limits. Tolerance: a few ulp of the sum of
 * the terms' magnitudes per entry. */
static void check_tiny(const table *t, size_t rows, size_t d, size_t h, size_t off)
{
    size_t ld = d + (d % 3) + 2, np = h * d + 2 * h + 1;
    buf X = buf_new(rows * ld + 1, off), y = buf_new(rows + 1, (off + 1) % 8);
    buf p = buf_new(np, (off + 2) % 8), g = buf_new(np, (off + 5) % 8);
    buf_rand(&X, -1, 1);
    buf_rand(&y, -1, 1);
    buf_rand(&p, -0.6f, 0.6f);
    buf_rand(&g, -1, 1);
    double *gref = calloc(np, sizeof(double)), *gmag = calloc(np, sizeof(double));
    double *a = calloc(h, sizeof(double));
    for (size_t q = 0; q < np; q++) gref[q] = g.p[q], gmag[q] = fabs(g.p[q]);
    const float *W1 = p.p, *b1 = W1 + h * d, *W2 = b1 + h;
    double lref = 0, lmag = 0;
    for (size_t i = 0; i < rows; i++) {
        const float *x = X.p + i * ld;
        double o = W2[h];
        for (size_t j = 0; j < h; j++) {
            double z = b1[j];
            float zf = b1[j];
            for (size_t k = 0; k < d; k++)
                z += (double)W1[j * d + k] * x[k], zf += W1[j * d + k] * x[k];
            a[j] = zf > 0 ? z : 0;
            o += W2[j] * a[j];
        }
        double e = o - y.p[i], r = 2 * e;
        lref += e * e;
        lmag += e * e + 2 * fabs(e) + 1;
        gref[np - 1] += r, gmag[np - 1] += fabs(r) + 1;
        for (size_t j = 0; j < h; j++) {
            gref[h * d + h + j] += r * a[j], gmag[h * d + h + j] += fabs(r) * (fabs(a[j]) + 1);
            if (!(a[j] > 0)) continue;
            double dz = r * W2[j];
            gref[h * d + j] += dz, gmag[h * d + j] += fabs(dz) + 1;
            for (size_t k = 0; k < d; k++)
                gref[j * d + k] += dz * x[k], gmag[j * d + k] += fabs(dz * x[k]) + fabs(x[k]);
        }
    }
    /* g NULL: the loss alone, the same bits as with the gradient */
    const double lonly = t->k.mlp_tiny_grad(rows, d, h, X.p, ld, y.p, p.p, NULL);
    double l = t->k.mlp_tiny_grad(rows, d, h, X.p, ld, y.p, p.p, g.p);
    cr_assert(lonly == l, "%s: tiny %zu rows %zu-%zu-1: loss alone %.17g, with g %.17g", t->name,
              rows, d, h, lonly, l);
    double tol = 16 * U * (double)(rows + d + h);
    cr_assert(fabs(l - lref) <= tol * lmag, "%s: tiny %zu rows %zu-%zu-1: loss %.9g, want %.9g",
              t->name, rows, d, h, l, lref);
    for (size_t q = 0; q < np; q++)
        cr_assert(fabs(g.p[q] - gref[q]) <= tol * gmag[q],
                  "%s: tiny %zu rows %zu-%zu-1: g[%zu] %.9g, want %.9g", t->name, rows, d, h, q,
                  g.p[q], gref[q]);
    buf_check_guards(&X, "X");
    buf_check_guards(&g, "g");
    buf_free(&X);
    buf_free(&y);
    buf_free(&p);
    buf_free(&g);
    free(gref);
    free(gmag);
    free(a);
}

Test(kernels, mlp_tiny_grad, .timeout = 60)
{
    static const size_t R[] = {0, 1, 7, 8, 9, 63, 64, 65, 200, 1001};
    static const size_t D[] = {1, 3, 8, 9, 10, 16}, H[] = {1, 5, 20, 32};
    table t[MAX_TABLES];
    for (int i = 0, n = tables(t); i < n; i++)
        for (size_t ri = 0; ri < sizeof R / sizeof R[0]; ri++)
            for (size_t di = 0; di < sizeof D / sizeof D[0]; di++)
                for (size_t hi = 0; hi < sizeof H / sizeof H[0]; hi++)
                    check_tiny(&t[i], R[ri], D[di], H[hi], OFFS[(ri + di + hi) % NOFFS]);
}
