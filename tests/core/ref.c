/* Double-precision reference forward pass and finite differences. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"

static double act(dpt_activation a, double z)
{
    switch (a) {
    case DPT_ACTIVATION_RELU:
        return z > 0 ? z : 0;
    case DPT_ACTIVATION_TANH:
        return tanh(z);
    default:
        return 1 / (1 + exp(-z));
    }
}

double ref_loss_sum(const dpt_model *m, const double *w, const float *X, size_t ld, const float *y,
                    size_t rows)
{
    size_t wmax = 0;
    for (int l = 0; l <= m->layers; l++) wmax = m->width[l] > wmax ? m->width[l] : wmax;
    double *cur = malloc(wmax * sizeof(double)), *nxt = malloc(wmax * sizeof(double));
    double total = 0;
    for (size_t i = 0; i < rows; i++) {
        for (size_t k = 0; k < m->width[0]; k++) cur[k] = X[i * ld + k];
        for (int l = 0; l < m->layers; l++) {
            size_t in = m->width[l], out = m->width[l + 1];
            for (size_t o = 0; o < out; o++) {
                double z = m->b_off[l] != SIZE_MAX ? w[m->b_off[l] + o] : 0;
                for (size_t k = 0; k < in; k++) z += w[m->w_off[l] + o * in + k] * cur[k];
                nxt[o] = l + 1 < m->layers ? act(m->spec.act, z) : z;
            }
            double *t = cur;
            cur = nxt;
            nxt = t;
        }
        size_t K = m->width[m->layers];
        if (m->spec.loss == DPT_LOSS_MSE) {
            total += (cur[0] - y[i]) * (cur[0] - y[i]);
        } else if (m->spec.loss == DPT_LOSS_BCE) {
            double z = cur[0];
            total += log(1 + exp(z)) - y[i] * z;
        } else {
            double mx = cur[0], s = 0;
            for (size_t j = 1; j < K; j++) mx = cur[j] > mx ? cur[j] : mx;
            for (size_t j = 0; j < K; j++) s += exp(cur[j] - mx);
            total += log(s) + mx - cur[(size_t)y[i]];
        }
    }
    free(cur);
    free(nxt);
    return total;
}

void ref_grad_fd(const dpt_model *m, const float *wf, const float *X, size_t ld, const float *y,
                 size_t rows, double *g)
{
    double *w = malloc(m->n_params * sizeof(double));
    for (size_t i = 0; i < m->n_params; i++) w[i] = wf[i];
    for (size_t i = 0; i < m->n_params; i++) {
        double h = 1e-6 * (fabs(w[i]) > 1 ? fabs(w[i]) : 1), keep = w[i];
        w[i] = keep + h;
        double lp = ref_loss_sum(m, w, X, ld, y, rows);
        w[i] = keep - h;
        double lm = ref_loss_sum(m, w, X, ld, y, rows);
        w[i] = keep;
        g[i] = (lp - lm) / (2 * h);
    }
    free(w);
}

double ref_max_rel(const float *a, const double *b, size_t n, double floor)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double r = fabs(a[i] - b[i]) / (fabs(b[i]) + floor);
        if (!(r <= worst)) worst = r; /* NaN propagates */
    }
    return worst;
}

void ref_make_data(dpt_dataset *ds, size_t n, size_t d, const dpt_model_spec *s, unsigned seed)
{
    dpt_dataset_alloc(ds, n, d, 1);
    uint64_t key = dpt_rng_key(seed, 0);
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < d; k++)
            ds->X[i * ds->ld + k] = (float)dpt_rng_normal(key, i * d + k);
        double u = dpt_rng_uniform(key, 1000000 + i);
        if (s->kind == DPT_MODEL_SOFTMAX || (s->kind == DPT_MODEL_MLP && s->loss == DPT_LOSS_CE))
            ds->y[i] = (float)(size_t)(u * s->classes);
        else if (s->kind == DPT_MODEL_LOGISTIC || s->loss == DPT_LOSS_BCE)
            ds->y[i] = u < 0.5f ? 0.0f : 1.0f;
        else
            ds->y[i] = (float)(2 * u - 1);
    }
    ds->label_kind = DPT_LABEL_REAL;
}

int ref_fmnist_mlp(dpt_model *m)
{
    dpt_model_spec s = {.kind = DPT_MODEL_MLP,
                        .inputs = 784,
                        .n_hidden = 2,
                        .hidden = {256, 128},
                        .classes = 10,
                        .act = DPT_ACTIVATION_RELU,
                        .loss = DPT_LOSS_CE};
    return dpt_model_init(m, &s);
}

int ref_small_mlp(dpt_model *m, dpt_dataset *ds, dpt_optim_spec *o, size_t rows)
{
    dpt_model_spec s = {.kind = DPT_MODEL_MLP,
                        .inputs = 6,
                        .n_hidden = 1,
                        .hidden = {8},
                        .classes = 3,
                        .act = DPT_ACTIVATION_TANH,
                        .loss = DPT_LOSS_CE};
    if (dpt_model_init(m, &s)) return -1;
    ref_make_data(ds, rows, 6, &m->spec, 21);
    dpt_optim_defaults(o);
    o->kind = DPT_OPT_MOMENTUM;
    o->lr = 0.05;
    o->batch = 64;
    return 0;
}

void ref_engine_opts(dpt_engine_opts *eo, int threads, int shuffle)
{
    dpt_engine_opts_defaults(eo);
    eo->threads = threads;
    eo->shuffle = shuffle;
    eo->pin.policy = DPT_PIN_NONE;
}
