/* The layer split: the threads of a domain share its units' rows and split
 * every layer's products by output columns (ggml's (ith, nth)), each
 * computing its share of the activations and its rows of every W_l and b_l
 * of the gradient. The bits are those of dpt_model_grad_to on each unit's
 * rows: every product is the call that one makes for the unit, cut with
 * the kernels' part calls (sgemm_part, and the elementwise kernels on
 * column slices), which compute each element as the whole call does; each
 * unit's loss is one thread's, in row order. Library-internal: the
 * engine's. */
#ifndef DPT_MODELS_SPLIT_H
#define DPT_MODELS_SPLIT_H

#include <stddef.h>

#include "dpt/engine.h"
#include "dpt/model.h"
#include "kernels/kernels.h"

/* Thread ith of nth's share of n outputs: [lo, hi). */
static inline void dpt_split_share(size_t n, int ith, int nth, size_t *lo, size_t *hi)
{
    *lo = n * (size_t)ith / (size_t)nth;
    *hi = n * (size_t)(ith + 1) / (size_t)nth;
}

/* dpt_split's auto rule: the layer split for a splittable model of at
 * least DPT_SPLIT_AUTO_PARAMS parameters when fewer than
 * DPT_SPLIT_AUTO_ROWS rows per thread (batch B over P threads) remain and
 * the largest domain holds 2 to DPT_SPLIT_AUTO_DOMAIN threads (kmax). */
int dpt_split_auto_layer(const dpt_model *m, const dpt_kernels *k, size_t B, int P, int kmax);

/* The domains a step works in. With automatic domains (level AUTO), a
 * pinned team within one package, or across packages each of which holds
 * one domain of consecutive threads, and the layer split asked for or
 * taken by auto once they are cut, every domain of more than
 * DPT_SPLIT_AUTO_DOMAIN threads (a large L3 or NUMA node: a 56-core
 * socket) is cut into groups of at most DPT_SPLIT_GROUP consecutive threads
 * (dpt_topo_domain_groups), whose barriers and activations stay among a
 * few cores; across packages the engine sums each package's groups there
 * first and the groups read a copy of w per package (the package level,
 * docs/engine.md). Else the domains stay as dpt_topo_domains made them:
 * the data split reduces fewer, larger domains for less, and where a
 * package holds several domains (or its threads are not together) every
 * extra group's share of the reduction would cross the link
 * (docs/scaling.md). dom, nd: dpt_topo_domains's,
 * rewritten in place; plan: the threads' places (a team of unpinned
 * threads is not cut: its groups would be no nearer than the whole);
 * returns the count in use. */
int dpt_split_domains(const dpt_model *m, const dpt_kernels *k, size_t B, int P, int adaptive,
                      const dpt_place *plan, dpt_domain_level level, dpt_split want, int *dom,
                      int nd);

/* One range of a thread's share of the parameters: floats [lo, hi). */
typedef struct dpt_split_range {
    size_t lo, hi;
} dpt_split_range;

/* Thread ith of nth's share of the parameters: rows [j0, j1) of each W_l
 * and b_l, j the share of layer l's outputs; up to 2 * layers ranges, in
 * parameter order, empty ones left out. Returns the count. */
int dpt_split_ranges(const dpt_model *m, int ith, int nth,
                     dpt_split_range r[2 * (DPT_MAX_HIDDEN + 1)]);

/* The floats of w thread ith of nth reads in a gradient: its rows of each
 * W_l and b_l (forward, dW) and its columns of each W_l past the first
 * (the input gradient), counted once where they overlap. */
size_t dpt_split_w_floats(const dpt_model *m, int ith, int nth);

/* Called between the phases: returns when all nth threads have called it. */
typedef void (*dpt_split_sync)(void *ud);

/* The most units one call takes side by side. */
#define DPT_SPLIT_MAX_UNITS 256

/* One unit of a call: its rows X:(rows, ld) and y, the gradient buffer g
 * (the model's layout) and, out, its loss sum. */
typedef struct dpt_split_unit {
    const float *X, *y;
    size_t rows;
    float *g;
    double loss;
} dpt_split_unit;

/* Optional to dpt_model_grad_split, where several units go in: units
 * summed as they are computed. end[v] > v + 1 makes units [v, end[v]) one
 * item, whose gradient is the canonical pairwise sum of theirs (rounds of
 * pairs (a, a + s), s = 1, 2, 4, ..., as the engine's fold), left in
 * u[v].g, this thread's ranges; the item's other units' g are not written.
 * The units' dW rows are summed as they are computed and written once: in
 * registers by the table's sgemm_tn_fold where it has one and takes the
 * units' shapes, else a few rows at a time in tile (DPT_SPLIT_TILE_FLOATS
 * floats of this thread's own), which also holds the units' bias sums. */
typedef struct dpt_split_fold {
    const int *end;
    float *tile;
} dpt_split_fold;

#define DPT_SPLIT_TILE_FLOATS 16384

/* Whether the tile holds a row of each W_l per level of an item of n units'
 * tree, so that the item is summed as it goes on every table; else, where
 * sgemm_tn_fold does not take it, grad_split writes each unit's rows and
 * adds them in place (the engine then folds such items after the group). */
int dpt_split_fold_fits(const dpt_model *m, int n);

/* The gradients of units u[0..nu) (set, as dpt_model_grad_to), computed by
 * nth threads that call it together with the same arguments but ith (and
 * their own copy of u); scratch is one buffer of dpt_model_scratch_floats(m)
 * floats they share. Either one unit of any rows, or up to
 * DPT_SPLIT_MAX_UNITS whose rows fit one block together (sum <=
 * dpt_model_block_rows(m)). Thread ith overwrites its ranges
 * (dpt_split_ranges) of each u[v].g, and nothing else of them; the bits
 * equal dpt_model_grad_to's on each unit's rows. u[v].loss is the unit's
 * loss on thread v % nth (0 on the others). Every thread calls sync the
 * same number of times: 2 x layers per block. fold: NULL, or the items
 * summed as they go (nu > 1). */
void dpt_model_grad_split(const dpt_model *m, const dpt_kernels *k, const float *w, size_t ld,
                          dpt_split_unit *u, int nu, float *scratch, int ith, int nth,
                          dpt_split_sync sync, void *ud, const dpt_split_fold *fold);

#endif
