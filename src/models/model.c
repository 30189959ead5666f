/* Network forward/backward over blocks of rows, batch-major, on the GEMM
 * kernels. A one-output model without hidden layers takes the fused
 * single-pass kernel instead (each row of X read once). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "dpt/data.h"
#include "dpt/error.h"
#include "dpt/model.h"
#include "kernels/kernels.h"
#include "models/layout.h"
#include "models/split.h"

static const char *const act_names[] = {"relu", "tanh", "sigmoid"};
static const char *const loss_names[] = {"mse", "bce", "ce"};

int dpt_model_init(dpt_model *m, const dpt_model_spec *spec)
{
    memset(m, 0, sizeof *m);
    dpt_model_spec s = *spec;
    if (s.inputs == 0) return dpt_set_error(DPT_EINVAL, "model needs at least one input feature");
    switch (s.kind) {
    case DPT_MODEL_LINEAR:
        s.n_hidden = 0;
        s.loss = DPT_LOSS_MSE;
        s.classes = 0;
        break;
    case DPT_MODEL_LOGISTIC:
        s.n_hidden = 0;
        s.loss = DPT_LOSS_BCE;
        s.classes = 2;
        break;
    case DPT_MODEL_SOFTMAX:
        s.n_hidden = 0;
        s.loss = DPT_LOSS_CE;
        if (s.classes < 2) return dpt_set_error(DPT_EINVAL, "softmax needs at least 2 classes");
        break;
    case DPT_MODEL_MLP:
        s.bias = 1;
        if (s.n_hidden < 1 || s.n_hidden > DPT_MAX_HIDDEN)
            return dpt_set_error(DPT_EINVAL, "mlp needs 1..%d hidden layers", DPT_MAX_HIDDEN);
        if (s.loss == DPT_LOSS_CE && s.classes < 2)
            return dpt_set_error(DPT_EINVAL,
                                 "mlp with cross-entropy loss needs at least 2 classes");
        if (s.loss == DPT_LOSS_MSE) s.classes = 0;
        if (s.loss == DPT_LOSS_BCE) s.classes = 2;
        break;
    default:
        return dpt_set_error(DPT_EINVAL, "unknown model kind %d", (int)s.kind);
    }
    if ((unsigned)s.act > DPT_ACTIVATION_SIGMOID)
        return dpt_set_error(DPT_EINVAL, "unknown activation %d", (int)s.act);
    m->spec = s;
    m->layers = s.n_hidden + 1;
    m->width[0] = s.inputs;
    for (int l = 0; l < s.n_hidden; l++) {
        if (s.hidden[l] == 0)
            return dpt_set_error(DPT_EINVAL, "hidden layer %d has width 0", l + 1);
        m->width[l + 1] = s.hidden[l];
    }
    m->width[m->layers] = s.loss == DPT_LOSS_CE ? (size_t)s.classes : 1;
    size_t off = 0;
    for (int l = 0; l < m->layers; l++) {
        m->w_off[l] = off;
        off += m->width[l] * m->width[l + 1];
        if (s.bias) {
            m->b_off[l] = off;
            off += m->width[l + 1];
        } else {
            m->b_off[l] = SIZE_MAX;
        }
    }
    m->n_params = off;
    return 0;
}

/* How scratch is cut, derived from the widths on each call (a few
 * compares) rather than kept in the public struct: ld is the stride of the
 * activation buffers, the widest layer output (or the input, for networks
 * with hidden layers) padded; rows per block keep a block's activations in
 * L2, ~64K floats per buffer. */
typedef struct blocking {
    size_t ld, rows;
} blocking;

static blocking blocking_of(const dpt_model *m)
{
    /* the buffers hold the layers' outputs and their gradients, never the
     * input rows: their width, not the input's, sets the stride and the
     * rows of a block (a 784-input net took blocks of 80 rows, so a batch
     * of 128 or 256 repacked every weight matrix and reread the first
     * layer's gradient once per block) */
    size_t wmax = 0;
    for (int l = 0; l < m->layers; l++)
        if (m->width[l + 1] > wmax) wmax = m->width[l + 1];
    blocking b = {dpt_pad_floats(wmax), 0};
    size_t r = 65536 / b.ld;
    /* a stride of a multiple of 1 KiB puts a column of many rows in a few L1
     * sets (the set is the address mod 4 KiB): one line more spreads them
     * (the rows per block, and with them the bits, stay the width's) */
    if (b.ld % 256 == 0) b.ld += 16;
    r = r < 16 ? 16 : r > 256 ? 256 : r;
    b.rows = r & ~(size_t)7;
    return b;
}

size_t dpt_model_block_rows(const dpt_model *m)
{
    return blocking_of(m).rows;
}

size_t dpt_model_act_stride(const dpt_model *m)
{
    return blocking_of(m).ld;
}

void dpt_model_describe(const dpt_model *m, char *buf, size_t len)
{
    static const char *const kinds[] = {"linear", "logistic", "softmax", "mlp"};
    int n = snprintf(buf, len, "%s ", kinds[m->spec.kind]);
    for (int l = 0; l <= m->layers && n > 0 && (size_t)n < len; l++)
        n += snprintf(buf + n, len - n, "%s%zu", l ? "-" : "", m->width[l]);
    if (n > 0 && (size_t)n < len && m->spec.kind == DPT_MODEL_MLP)
        n += snprintf(buf + n, len - n, " %s", act_names[m->spec.act]);
    if (n > 0 && (size_t)n < len)
        snprintf(buf + n, len - n, " %s%s", loss_names[m->spec.loss],
                 m->spec.bias ? "" : " no-bias");
}

void dpt_model_init_params(const dpt_model *m, float *w, uint64_t seed, dpt_init init)
{
    if (init == DPT_INIT_ZERO) {
        memset(w, 0, m->n_params * sizeof(float));
        return;
    }
    /* docs/workloads.md, stream 3: uniforms in order W1, b1, W2, b2, ... */
    uint64_t key = dpt_rng_key(seed, 3), j = 0;
    for (int l = 0; l < m->layers; l++) {
        size_t in = m->width[l], out = m->width[l + 1];
        double bound = 1.0 / sqrt((double)in);
        float *W = w + m->w_off[l];
        for (size_t i = 0; i < in * out; i++)
            W[i] = (float)((2 * dpt_rng_uniform(key, j++) - 1) * bound);
        if (m->b_off[l] != SIZE_MAX) {
            float *b = w + m->b_off[l];
            for (size_t i = 0; i < out; i++)
                b[i] = (float)((2 * dpt_rng_uniform(key, j++) - 1) * bound);
        }
    }
}

double dpt_model_train_flops(const dpt_model *m)
{
    double f = 0;
    for (int l = 0; l < m->layers; l++) {
        const double w = (double)m->width[l] * (double)m->width[l + 1];
        f += (l == 0 ? 4 : 6) * w; /* forward + dW, and dX past the first layer */
    }
    return f;
}

size_t dpt_model_scratch_floats(const dpt_model *m)
{
    /* activations of every layer, plus two gradient buffers */
    blocking bl = blocking_of(m);
    return (size_t)(m->layers + 2) * bl.rows * bl.ld;
}

static inline int glm_path(const dpt_model *m)
{
    return m->layers == 1 && m->width[1] == 1;
}

/* d-h-1 ReLU with MSE and biases, small enough for the fused kernel that
 * keeps a block of rows in registers and L1 through forward and backward
 * (mlp-seed's 10-20-1: the generic path's SGEMM calls of a few columns
 * spend most of their time on overhead) */
static inline int tiny_path(const dpt_model *m, const dpt_kernels *k)
{
    return k->mlp_tiny_grad && m->spec.kind == DPT_MODEL_MLP && m->layers == 2 &&
           m->width[2] == 1 && m->spec.loss == DPT_LOSS_MSE && m->spec.act == DPT_ACTIVATION_RELU &&
           m->spec.bias && m->width[0] <= DPT_TINY_MAX_D && m->width[1] <= DPT_TINY_MAX_H;
}

static inline double bce_logits(double z, double y)
{
    return (z > 0 ? z : 0) - z * y + log1p(exp(-fabs(z)));
}

/* Forward pass of one block; returns the output activations (logits). */
static float *forward_block(const dpt_model *m, blocking bl, const dpt_kernels *k, const float *w,
                            const float *Xb, size_t ld, size_t R, float *scratch)
{
    const float *in = Xb;
    size_t ldin = ld;
    float *Z = NULL;
    for (int l = 0; l < m->layers; l++) {
        Z = scratch + (size_t)l * bl.rows * bl.ld;
        size_t nin = m->width[l], nout = m->width[l + 1];
        k->sgemm(0, 1, R, nout, nin, 1.0f, in, ldin, w + m->w_off[l], nin, 0.0f, Z, bl.ld);
        const float *b = m->b_off[l] != SIZE_MAX ? w + m->b_off[l] : NULL;
        k->bias_act((dpt_act)m->spec.act, l + 1 < m->layers, R, nout, b, Z, bl.ld);
        in = Z;
        ldin = bl.ld;
    }
    return Z;
}

/* Loss of a block's outputs Z; writes dL/dZ into D when D is not NULL. */
static double output_loss(const dpt_model *m, size_t ldz, const dpt_kernels *k, const float *Z,
                          const float *y, size_t R, float *D, size_t *correct)
{
    if (m->spec.loss == DPT_LOSS_CE)
        return k->softmax_ce(R, m->width[m->layers], Z, ldz, y, D, ldz, correct);
    double lsum = 0;
    size_t hits = 0;
    for (size_t i = 0; i < R; i++) {
        float z = Z[i * ldz];
        if (m->spec.loss == DPT_LOSS_MSE) {
            float e = z - y[i];
            lsum += (double)e * e;
            if (D) D[i * ldz] = 2 * e;
        } else {
            lsum += bce_logits(z, y[i]);
            hits += (z > 0) == (y[i] > 0.5f);
            if (D) D[i * ldz] = 1.0f / (1.0f + expf(-z)) - y[i];
        }
    }
    if (correct) *correct += hits;
    return lsum;
}

/* A one-output linear model's pass through the fused kernel: its loss, and
 * (g not NULL) the gradient added to g, bias included; hits as glm_grad's. */
static double glm_pass(const dpt_model *m, const struct dpt_kernels *k, const float *w,
                       const float *X, size_t ld, const float *y, size_t rows, float *g,
                       size_t *hits)
{
    const int bias = m->b_off[0] != SIZE_MAX;
    const dpt_glm_loss loss = m->spec.loss == DPT_LOSS_BCE ? DPT_GLM_BCE : DPT_GLM_MSE;
    double gb = 0;
    double l = k->glm_grad(loss, rows, m->width[0], X, ld, y, w, bias ? w[m->b_off[0]] : 0.0f, g,
                           g ? &gb : NULL, hits);
    if (g && bias) g[m->b_off[0]] += (float)gb;
    return l;
}

/* The gradient sum into g: added to it (set 0), or over it (set 1, no
 * need to clear g first: the first block's products overwrite it). */
static double model_grad(const dpt_model *m, const struct dpt_kernels *k, const float *w,
                         const float *X, size_t ld, const float *y, size_t rows, float *g,
                         float *scratch, int set)
{
    if (!k) k = dpt_kernels_get();
    if (rows == 0 || glm_path(m)) {
        if (set) memset(g, 0, m->n_params * sizeof(float));
        return rows ? glm_pass(m, k, w, X, ld, y, rows, g, NULL) : 0;
    }
    if (tiny_path(m, k)) {
        if (set) memset(g, 0, m->n_params * sizeof(float));
        return k->mlp_tiny_grad(rows, m->width[0], m->width[1], X, ld, y, w, g);
    }
    if (set)
        for (int l = 0; l < m->layers; l++)
            if (m->b_off[l] != SIZE_MAX)
                memset(g + m->b_off[l], 0, m->width[l + 1] * sizeof(float));
    const blocking bl = blocking_of(m);
    const size_t ldA = bl.ld, blk = bl.rows * ldA;
    float *D = scratch + (size_t)m->layers * blk, *E = D + blk;
    double lsum = 0;
    for (size_t r0 = 0; r0 < rows; r0 += bl.rows) {
        size_t R = rows - r0 < bl.rows ? rows - r0 : bl.rows;
        const float *Xb = X + r0 * ld;
        const float beta = set && r0 == 0 ? 0.0f : 1.0f;
        float *Z = forward_block(m, bl, k, w, Xb, ld, R, scratch);
        lsum += output_loss(m, ldA, k, Z, y + r0, R, D, NULL);
        for (int l = m->layers - 1; l >= 0; l--) {
            size_t nin = m->width[l], nout = m->width[l + 1];
            const float *in = l ? scratch + (size_t)(l - 1) * blk : Xb;
            size_t ldin = l ? ldA : ld;
            /* dW_l:(out,in) (+)= D^T:(out,R) x in:(R,in) */
            k->sgemm(1, 0, nout, nin, R, 1.0f, D, ldA, in, ldin, beta, g + m->w_off[l], nin);
            if (m->b_off[l] != SIZE_MAX) k->col_sum(R, nout, D, ldA, g + m->b_off[l]);
            if (l == 0) break;
            /* dA_{l-1}:(R,in) = D:(R,out) x W_l:(out,in), then through the activation */
            k->sgemm(0, 0, R, nin, nout, 1.0f, D, ldA, w + m->w_off[l], nin, 0.0f, E, ldA);
            k->act_bwd((dpt_act)m->spec.act, R, nin, in, ldA, E, ldA, E, ldA);
            float *t = D;
            D = E;
            E = t;
        }
    }
    return lsum;
}

double dpt_model_grad(const dpt_model *m, const struct dpt_kernels *k, const float *w,
                      const float *X, size_t ld, const float *y, size_t rows, float *g,
                      float *scratch)
{
    return model_grad(m, k, w, X, ld, y, rows, g, scratch, 0);
}

double dpt_model_grad_to(const dpt_model *m, const struct dpt_kernels *k, const float *w,
                         const float *X, size_t ld, const float *y, size_t rows, float *g,
                         float *scratch)
{
    return model_grad(m, k, w, X, ld, y, rows, g, scratch, 1);
}

/* ---- the layer split (models/split.h) ---- */

int dpt_model_splittable(const dpt_model *m, const dpt_kernels *k)
{
    if (!k) k = dpt_kernels_get();
    return !glm_path(m) && !tiny_path(m, k);
}

int dpt_split_auto_layer(const dpt_model *m, const dpt_kernels *k, size_t B, int P, int kmax)
{
    return P > 1 && kmax >= 2 && kmax <= DPT_SPLIT_AUTO_DOMAIN && dpt_model_splittable(m, k) &&
           m->n_params >= DPT_SPLIT_AUTO_PARAMS && B < (size_t)DPT_SPLIT_AUTO_ROWS * (size_t)P;
}

static int largest_domain(const int *dom, int P, int nd)
{
    int most = 0;
    for (int d = 0; d < nd; d++) {
        int k = 0;
        for (int t = 0; t < P; t++) k += dom[t] == d;
        most = k > most ? k : most;
    }
    return most;
}

int dpt_split_domains(const dpt_model *m, const dpt_kernels *k, size_t B, int P, int adaptive,
                      const dpt_place *plan, dpt_domain_level level, dpt_split want, int *dom,
                      int nd)
{
    if (level != DPT_DOMAIN_AUTO || want == DPT_SPLIT_DATA || adaptive) return nd;
    int *g = malloc((size_t)P * sizeof *g);
    if (!g) return nd;
    memcpy(g, dom, (size_t)P * sizeof *g);
    const int ng =
        dpt_topo_split_groups(plan, P, g, nd, DPT_SPLIT_AUTO_DOMAIN, DPT_SPLIT_GROUP, NULL);
    if (ng > nd &&
        (want == DPT_SPLIT_LAYER || dpt_split_auto_layer(m, k, B, P, largest_domain(g, P, ng)))) {
        memcpy(dom, g, (size_t)P * sizeof *g);
        nd = ng;
    }
    free(g);
    return nd;
}

int dpt_split_ranges(const dpt_model *m, int ith, int nth,
                     dpt_split_range r[2 * (DPT_MAX_HIDDEN + 1)])
{
    int n = 0;
    for (int l = 0; l < m->layers; l++) {
        const size_t nin = m->width[l];
        size_t j0, j1;
        dpt_split_share(m->width[l + 1], ith, nth, &j0, &j1);
        if (j1 == j0) continue;
        r[n++] = (dpt_split_range){m->w_off[l] + j0 * nin, m->w_off[l] + j1 * nin};
        if (m->b_off[l] != SIZE_MAX) r[n++] = (dpt_split_range){m->b_off[l] + j0, m->b_off[l] + j1};
    }
    return n;
}

size_t dpt_split_w_floats(const dpt_model *m, int ith, int nth)
{
    size_t f = 0;
    for (int l = 0; l < m->layers; l++) {
        const size_t nin = m->width[l], nout = m->width[l + 1];
        size_t j0, j1, k0, k1;
        dpt_split_share(nout, ith, nth, &j0, &j1);
        f += (j1 - j0) * (nin + (m->b_off[l] != SIZE_MAX));
        if (l == 0) continue;
        /* the input gradient's columns, outside its own rows */
        dpt_split_share(nin, ith, nth, &k0, &k1);
        f += (k1 - k0) * (nout - (j1 - j0));
    }
    return f;
}

/* The end of the run of units from v whose rows one product (ta, tb, n, k)
 * can take in one call, rows of in[] ld apart: the inputs side by side, and
 * every unit's row count in the kernel's class of loops for the run's (the
 * bits of one call per unit; units without rows join any run). */
static int row_run(const dpt_kernels *k, int ta, int tb, size_t n, size_t kk,
                   const float *const *in, size_t ld, const size_t *R, int v, int nu)
{
    if (!R[v]) return v + 1;
    const int c = k->sgemm_class(ta, tb, R[v], n, kk);
    size_t rows = R[v];
    int e = v + 1;
    if (c < 0) return e;
    for (; e < nu; e++) {
        if (!R[e]) continue;
        if (in[e] != in[v] + rows * ld) break;
        if (R[e] != R[v] && k->sgemm_class(ta, tb, R[e], n, kk) != c) break;
        if (k->sgemm_class(ta, tb, rows + R[e], n, kk) != c) break;
        rows += R[e];
    }
    return e;
}

/* The end of the run of one-row units from v whose rows lie ld apart (v
 * itself when unit v has another row count). */
static int one_row_run(const float *const *in, size_t ld, const size_t *R, int v, int nu)
{
    int e = v;
    while (e < nu && R[e] == 1 && (e == v || in[e] == in[e - 1] + ld)) e++;
    return e;
}

int dpt_split_fold_fits(const dpt_model *m, int n)
{
    int levels = 0;
    while ((1 << levels) < n) levels++;
    for (int l = 0; l < m->layers; l++)
        if ((size_t)levels * m->width[l] > DPT_SPLIT_TILE_FLOATS) return 0;
    return 1;
}

/* C's base for rows [c0, ...) of a row-major C (ldc floats a row) that are
 * to land at dst: an address formed as an integer, no pointer before dst */
static float *rows_at(float *dst, size_t c0, size_t ldc)
{
    return (float *)((uintptr_t)dst - c0 * ldc * sizeof(float));
}

/* dW_l's rows [j0, j1) of item [a, b) (b - a >= 2), the units' dW summed in
 * the canonical pairwise order into u[a].g: a few rows at a time, each
 * unit's rows into the next slot of a stack (slot 0 is u[a].g itself, the
 * others in tile), equal levels merged as they come, the rest right to
 * left at the end: the pairs of the rounds (a, a + s), each added as the
 * engine's fold adds it. Returns 0, or -1 when the tile cannot hold a row
 * per level (the caller then writes every unit's rows). */
static int fold_dw(const dpt_model *m, const dpt_kernels *k, int l, const dpt_split_unit *u, int a,
                   int b, const size_t *R, const float *const *Dv, size_t ldA,
                   const float *const *in, size_t ldin, size_t j0, size_t j1, float *tile)
{
    const size_t nin = m->width[l], nout = m->width[l + 1];
    if (k->sgemm_tn_fold && !k->sgemm_tn_fold(b - a, R + a, Dv + a, ldA, in + a, ldin, nout, nin,
                                              j0, j1, u[a].g + m->w_off[l], nin))
        return 0;
    int levels = 0;
    while ((1 << levels) < b - a) levels++;
    const size_t cr = DPT_SPLIT_TILE_FLOATS / ((size_t)levels * nin);
    if (cr == 0) return -1;
    for (size_t c0 = j0; c0 < j1; c0 += cr) {
        const size_t c1 = j1 - c0 < cr ? j1 : c0 + cr, cn = (c1 - c0) * nin;
        float *ptr[32];
        int lvl[32], depth = 0;
        for (int v = a; v < b; v++) {
            float *cur =
                depth ? tile + (size_t)(depth - 1) * cr * nin : u[a].g + m->w_off[l] + c0 * nin;
            k->sgemm_part(1, 0, nout, nin, R[v], 1.0f, Dv[v], ldA, in[v], ldin, 0.0f,
                          rows_at(cur, c0, nin), nin, c0, c1, 0, nin);
            int kl = 0;
            while (depth && lvl[depth - 1] == kl) {
                k->add(cn, cur, ptr[depth - 1]);
                cur = ptr[--depth];
                kl++;
            }
            ptr[depth] = cur;
            lvl[depth++] = kl;
        }
        for (; depth > 1; depth--) k->add(cn, ptr[depth - 1], ptr[depth - 2]);
    }
    return 0;
}

/* model_grad's generic path (set) for each unit, the units' rows side by
 * side in the scratch and every product cut by output columns: per layer
 * the forward products of the units and a sync (the next layer reads all
 * columns); the units' losses, spread over the threads, and a sync; per
 * layer each unit's dW rows and bias sums of this thread's outputs and,
 * past the first layer, its columns of the units' input gradient and a
 * sync. Each unit's rows get the float operations of the call model_grad
 * makes for it: dW is that call; a forward or input-gradient product takes
 * a run of units at once where their rows lie side by side and the kernel
 * computes them in the same class of loops (row_run), and one-row units
 * side by side go through sgemv_rows: the same bits. A
 * block's activations and D/E are not rewritten before the next block's
 * first sync, so blocks and calls need no sync of their own. */
void dpt_model_grad_split(const dpt_model *m, const dpt_kernels *k, const float *w, size_t ld,
                          dpt_split_unit *u, int nu, float *scratch, int ith, int nth,
                          dpt_split_sync sync, void *ud, const dpt_split_fold *fold)
{
    if (!k) k = dpt_kernels_get();
    if (nu < 2) fold = NULL;
    const dpt_act act = (dpt_act)m->spec.act;
    const blocking bl = blocking_of(m);
    const size_t ldA = bl.ld, blk = bl.rows * ldA;
    size_t rows = 0, off[DPT_SPLIT_MAX_UNITS + 1];
    /* an item's units past its first keep their bias sums in the tile */
    unsigned char inside[DPT_SPLIT_MAX_UNITS] = {0};
    for (int v = 0; fold && v < nu; v++)
        for (int x = v + 1; x < fold->end[v]; x++) inside[x] = 1;
    for (int v = 0; v < nu; v++) {
        u[v].loss = 0;
        rows = u[v].rows > rows ? u[v].rows : rows;
        for (int l = 0; !inside[v] && l < m->layers; l++)
            if (m->b_off[l] != SIZE_MAX) {
                size_t j0, j1;
                dpt_split_share(m->width[l + 1], ith, nth, &j0, &j1);
                memset(u[v].g + m->b_off[l] + j0, 0, (j1 - j0) * sizeof(float));
            }
    }
    if (nu > 1) rows = 1; /* the units fit one block together */
    float *D = scratch + (size_t)m->layers * blk, *E = D + blk;
    for (size_t r0 = 0; r0 == 0 || r0 < rows; r0 += bl.rows) {
        /* unit v's rows of this block: R[v], at scratch row off[v] */
        size_t R[DPT_SPLIT_MAX_UNITS];
        off[0] = 0;
        for (int v = 0; v < nu; v++) {
            R[v] = nu > 1 ? u[v].rows : (u[0].rows - r0 < bl.rows ? u[0].rows - r0 : bl.rows);
            off[v + 1] = off[v] + R[v];
        }
        const float beta = r0 == 0 ? 0.0f : 1.0f;
        size_t j0, j1, k0, k1;
        float *Z = NULL;
        for (int l = 0; l < m->layers; l++) {
            const size_t nin = m->width[l], nout = m->width[l + 1];
            const float *Zin = scratch + (size_t)(l - 1) * blk;
            Z = scratch + (size_t)l * blk;
            dpt_split_share(nout, ith, nth, &j0, &j1);
            const float *in[DPT_SPLIT_MAX_UNITS];
            for (int v = 0; v < nu; v++) in[v] = l ? Zin + off[v] * ldA : u[v].X + r0 * ld;
            for (int v = 0, e; v < nu; v = e) {
                /* one-row units side by side: GEMVs sharing the loads of W */
                e = nout >= 2 ? one_row_run(in, l ? ldA : ld, R, v, nu) : v;
                if (e - v >= 2) {
                    k->sgemv_rows((size_t)(e - v), nout, nin, 1.0f, in[v], l ? ldA : ld,
                                  w + m->w_off[l], nin, Z + off[v] * ldA, ldA, j0, j1);
                    continue;
                }
                e = row_run(k, 0, 1, nout, nin, in, l ? ldA : ld, R, v, nu);
                const size_t n = off[e] - off[v];
                k->sgemm_part(0, 1, n, nout, nin, 1.0f, in[v], l ? ldA : ld, w + m->w_off[l], nin,
                              0.0f, Z + off[v] * ldA, ldA, 0, n, j0, j1);
            }
            const float *b = m->b_off[l] != SIZE_MAX ? w + m->b_off[l] + j0 : NULL;
            if (j1 > j0 && off[nu])
                k->bias_act(act, l + 1 < m->layers, off[nu], j1 - j0, b, Z + j0, ldA);
            sync(ud);
        }
        for (int v = ith; v < nu; v += nth)
            u[v].loss +=
                output_loss(m, ldA, k, Z + off[v] * ldA, u[v].y + r0, R[v], D + off[v] * ldA, NULL);
        sync(ud);
        for (int l = m->layers - 1; l >= 0; l--) {
            const size_t nin = m->width[l], nout = m->width[l + 1];
            const float *Zin = scratch + (size_t)(l - 1) * blk;
            dpt_split_share(nout, ith, nth, &j0, &j1);
            dpt_split_share(nin, ith, nth, &k0, &k1);
            const float *Dv[DPT_SPLIT_MAX_UNITS], *in[DPT_SPLIT_MAX_UNITS];
            for (int v = 0; v < nu; v++) {
                Dv[v] = D + off[v] * ldA;
                in[v] = l ? Zin + off[v] * ldA : u[v].X + r0 * ld;
            }
            const size_t ldin = l ? ldA : ld;
            for (int v = 0, e; v < nu; v = e) {
                e = fold && fold->end[v] > v + 1 ? fold->end[v] : v + 1;
                if (e == v + 1 ||
                    fold_dw(m, k, l, u, v, e, R, Dv, ldA, in, ldin, j0, j1, fold->tile)) {
                    const size_t rn = (j1 - j0) * nin, at = m->w_off[l] + j0 * nin;
                    for (int x = v; x < e; x++)
                        k->sgemm_part(1, 0, nout, nin, R[x], 1.0f, Dv[x], ldA, in[x], ldin, beta,
                                      u[x].g + m->w_off[l], nin, j0, j1, 0, nin);
                    for (int s = 1; s < e - v; s *= 2) /* an item whose rows the tile cannot hold */
                        for (int x = v; x + s < e; x += 2 * s)
                            k->add(rn, u[x + s].g + at, u[x].g + at);
                }
                if (m->b_off[l] == SIZE_MAX || j1 == j0) continue;
                float *gb[DPT_SPLIT_MAX_UNITS];
                const size_t bn = j1 - j0;
                const int in_tile = (size_t)(e - v - 1) * bn <= DPT_SPLIT_TILE_FLOATS;
                for (int x = v; x < e; x++) {
                    gb[x - v] = x > v && in_tile ? fold->tile + (size_t)(x - v - 1) * bn
                                                 : u[x].g + m->b_off[l] + j0;
                    if (x > v) memset(gb[x - v], 0, bn * sizeof(float));
                    k->col_sum(R[x], bn, Dv[x] + j0, ldA, gb[x - v]);
                }
                for (int s = 1; s < e - v; s *= 2) /* the item's bias, its rounds */
                    for (int x = 0; x + s < e - v; x += 2 * s) k->add(bn, gb[x + s], gb[x]);
            }
            /* the input gradient, row by row: runs of units at once */
            for (int v = 0, e; l && v < nu; v = e) {
                e = row_run(k, 0, 0, nin, nout, Dv, ldA, R, v, nu);
                const size_t n = off[e] - off[v];
                k->sgemm_part(0, 0, n, nin, nout, 1.0f, Dv[v], ldA, w + m->w_off[l], nin, 0.0f,
                              E + off[v] * ldA, ldA, 0, n, k0, k1);
            }
            if (l == 0) break;
            if (k1 > k0 && off[nu])
                k->act_bwd(act, off[nu], k1 - k0, Zin + k0, ldA, E + k0, ldA, E + k0, ldA);
            sync(ud);
            float *t = D;
            D = E;
            E = t;
        }
    }
}

double dpt_model_eval(const dpt_model *m, const struct dpt_kernels *k, const float *w,
                      const float *X, size_t ld, const float *y, size_t rows, size_t *correct,
                      float *scratch)
{
    if (!k) k = dpt_kernels_get();
    /* the fused kernel's forward pass: the generic path's SGEMM calls of a
     * few columns took twice a training epoch of mlp-seed-sgd to evaluate
     * it (MSE: no accuracy to count); the same loss as the gradient's */
    if (tiny_path(m, k))
        return rows ? k->mlp_tiny_grad(rows, m->width[0], m->width[1], X, ld, y, w, NULL) : 0;
    /* linear and logistic regression: the fused gradient kernel without its
     * gradient, one pass over X at the read rate, counting the rows
     * classified right (the generic path's GEMV writes the outputs and
     * reads them again: 17 ms for linreg's 10^6 rows against 5-7 for a
     * training epoch, and its logistic loss is scalar libm: 36-62 ms for
     * logreg's, against an 11 ms epoch) */
    if (glm_path(m)) return rows ? glm_pass(m, k, w, X, ld, y, rows, NULL, correct) : 0;
    const blocking bl = blocking_of(m);
    double lsum = 0;
    for (size_t r0 = 0; r0 < rows; r0 += bl.rows) {
        size_t R = rows - r0 < bl.rows ? rows - r0 : bl.rows;
        float *Z = forward_block(m, bl, k, w, X + r0 * ld, ld, R, scratch);
        lsum += output_loss(m, bl.ld, k, Z, y + r0, R, NULL, correct);
    }
    return lsum;
}

void dpt_model_predict(const dpt_model *m, const struct dpt_kernels *k, const float *w,
                       const float *X, size_t ld, size_t rows, float *out, size_t ldo,
                       float *scratch)
{
    if (!k) k = dpt_kernels_get();
    const blocking bl = blocking_of(m);
    size_t K = dpt_model_outputs(m);
    for (size_t r0 = 0; r0 < rows; r0 += bl.rows) {
        size_t R = rows - r0 < bl.rows ? rows - r0 : bl.rows;
        float *Z = forward_block(m, bl, k, w, X + r0 * ld, ld, R, scratch);
        for (size_t i = 0; i < R; i++) {
            const float *z = Z + i * bl.ld;
            float *o = out + (r0 + i) * ldo;
            if (m->spec.loss == DPT_LOSS_MSE) {
                o[0] = z[0];
            } else if (m->spec.loss == DPT_LOSS_BCE) {
                o[0] = 1.0f / (1.0f + expf(-z[0]));
            } else {
                float mx = z[0];
                for (size_t j = 1; j < K; j++) mx = z[j] > mx ? z[j] : mx;
                double s = 0;
                for (size_t j = 0; j < K; j++) s += exp((double)z[j] - mx);
                for (size_t j = 0; j < K; j++) o[j] = (float)(exp((double)z[j] - mx) / s);
            }
        }
    }
}
