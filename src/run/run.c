/* One training run: the spec checked against the data, the model and the
 * engine built, the initial parameters set (and shared by the ranks), then
 * warm-up, reset, the timed epochs with optional metrics between them, and
 * the final metrics. The per-epoch figures are summed here, once, for every
 * command that trains. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/error.h"
#include "dpt/run.h"

struct dpt_run {
    dpt_run_spec s;
    dpt_model m;
    dpt_engine *e;
    float *w0; /* the initial parameters every dpt_run_train starts from */
};

void dpt_run_spec_defaults(dpt_run_spec *s)
{
    memset(s, 0, sizeof *s);
    s->model.kind = DPT_MODEL_LINEAR;
    s->model.bias = 1;
    dpt_optim_defaults(&s->opt);
    dpt_engine_opts_defaults(&s->engine);
    s->epochs = 10;
    s->evaluate = 1;
}

static int needs_classes(const dpt_model_spec *m)
{
    return m->kind == DPT_MODEL_SOFTMAX || (m->kind == DPT_MODEL_MLP && m->loss == DPT_LOSS_CE);
}

static dpt_label_kind label_kind(const dpt_model_spec *m)
{
    if (m->kind == DPT_MODEL_LOGISTIC || (m->kind == DPT_MODEL_MLP && m->loss == DPT_LOSS_BCE))
        return DPT_LABEL_BINARY;
    return needs_classes(m) ? DPT_LABEL_CLASS : DPT_LABEL_REAL;
}

/* The model the spec describes for this data: its width and classes, with
 * every label of both sets checked against it. */
static int build_model(dpt_run *r)
{
    const dpt_run_spec *s = &r->s;
    dpt_model_spec ms = s->model;
    if (!ms.inputs) ms.inputs = s->train->d;
    if (needs_classes(&ms) && !ms.classes) ms.classes = s->train->classes;
    int k = needs_classes(&ms) ? ms.classes : 0;
    const dpt_label_kind want = label_kind(&ms);
    const dpt_dataset *sets[2] = {s->train, s->test};
    const char *names[2] = {"training set", "test set"};
    for (int i = 0; i < 2; i++) {
        if (!sets[i] || !sets[i]->n) continue;
        if (dpt_dataset_check_labels(sets[i], want, &k)) {
            char why[256];
            snprintf(why, sizeof why, "%s", dpt_last_error());
            return dpt_set_error(DPT_EINVAL, "the %s: %s", names[i], why);
        }
    }
    if (needs_classes(&ms) && !ms.classes) ms.classes = k;
    return dpt_model_init(&r->m, &ms);
}

/* Every rank has its engine, or all stop; then all take rank 0's start. */
static int share_start(dpt_run *r, int rc)
{
    const dpt_comm *c = r->s.engine.comm;
    if (!c || c->size < 2) return rc;
    int arc = c->agree(c->ctx, rc);
    if (rc || arc) return rc ? rc : arc;
    return c->broadcast(c->ctx, r->w0, r->m.n_params);
}

int dpt_run_create(dpt_run **out, const dpt_run_spec *s)
{
    *out = NULL;
    dpt_run *r = calloc(1, sizeof *r);
    if (!r) return dpt_set_error(DPT_ENOMEM, "out of memory");
    r->s = *s;
    int rc = 0;
    if (!s->train || !s->train->n)
        rc = dpt_set_error(DPT_EINVAL, "the run has no training data");
    else if (s->resume && (s->resume->epochs < 0 || s->resume->epochs > s->epochs))
        rc = dpt_set_error(DPT_EINVAL, "the run to continue has %d epochs done, the run %d in all",
                           s->resume->epochs, s->epochs);
    else if (s->eval_epochs < 0)
        rc = dpt_set_error(DPT_EINVAL, "eval_epochs is %d: 0 (at the end) or an interval N >= 1",
                           s->eval_epochs);
    else if (s->epochs < 1 || s->warmup < 0)
        rc = dpt_set_error(DPT_EINVAL,
                           "a run needs at least 1 epoch (%d asked) and a warm-up of "
                           "0 or more (%d)",
                           s->epochs, s->warmup);
    if (!rc && !(rc = build_model(r))) {
        if (r->s.opt.epochs <= 0) r->s.opt.epochs = s->epochs;
        rc = dpt_engine_create(&r->e, &r->m, &r->s.opt, s->train, &s->engine);
    }
    if (!rc && !(r->w0 = malloc(r->m.n_params * sizeof(float))))
        rc = dpt_set_error(DPT_ENOMEM, "out of memory");
    if (!rc) {
        if (s->init_params)
            memcpy(r->w0, s->init_params, r->m.n_params * sizeof(float));
        else
            dpt_model_init_params(&r->m, r->w0, s->engine.seed, s->engine.init);
    }
    if ((rc = share_start(r, rc))) {
        dpt_run_destroy(r);
        return rc;
    }
    dpt_engine_reset(r->e, r->w0);
    dpt_engine_set_interrupt(r->e, s->interrupt);
    *out = r;
    return 0;
}

void dpt_run_destroy(dpt_run *r)
{
    if (!r) return;
    dpt_engine_destroy(r->e);
    free(r->w0);
    free(r);
}

dpt_engine *dpt_run_engine(dpt_run *r)
{
    return r->e;
}

const dpt_model *dpt_run_model(const dpt_run *r)
{
    return &r->m;
}

typedef struct epoch_sink {
    dpt_run *r;
    dpt_run_result *out;
    int in_engine; /* hand each epoch to the caller from the engine's callback */
    int stop;
    dpt_epoch_stats last;
    /* the metrics of the last epoch trained, where it was evaluated: the
     * run's final metrics then, not a second pass over the data */
    int last_evaluated;
    dpt_metrics train, test;
} epoch_sink;

static void add_phases(dpt_phase_times *a, const dpt_phase_times *b)
{
    a->compute += b->compute;
    a->wait += b->wait;
    a->reduce += b->reduce;
    a->update += b->update;
    a->shuffle += b->shuffle;
    a->comm += b->comm;
}

static void no_metrics(dpt_metrics *m)
{
    memset(m, 0, sizeof *m);
    m->loss = m->accuracy = m->mse = m->r2 = NAN;
}

/* An epoch without metrics to the caller (evaluated 0, every figure NaN);
 * its answer stops the run. */
static void hand_over_plain(epoch_sink *k, const dpt_epoch_stats *st)
{
    if (!k->r->s.on_epoch) return;
    dpt_run_epoch ep = {.stats = st};
    no_metrics(&ep.train);
    no_metrics(&ep.test);
    if (k->r->s.on_epoch(&ep, k->r->s.ud)) k->stop = 1;
}

static int on_engine_epoch(const dpt_epoch_stats *st, void *ud)
{
    epoch_sink *k = ud;
    dpt_run_result *o = k->out;
    o->epochs++;
    o->steps = st->steps;
    o->seconds += st->seconds;
    add_phases(&o->phases, &st->mean);
    if (st->imbalance > o->imbalance) o->imbalance = st->imbalance;
    o->comm_bytes += st->comm_bytes;
    o->rows_min = st->rows_min;
    o->rows_max = st->rows_max;
    k->last = *st;
    if (k->in_engine) hand_over_plain(k, st);
    return k->stop;
}

/* Metrics on the training set and the test set; under MPI the ranks then
 * agree, so an error on one ends the run on all before the next epoch. */
static int evaluate(dpt_run *r, dpt_metrics *train, dpt_metrics *test)
{
    const dpt_comm *c = r->s.engine.comm;
    int rc = dpt_engine_evaluate(r->e, r->s.train, train);
    no_metrics(test);
    if (!rc && r->s.test && r->s.test->n) rc = dpt_engine_evaluate(r->e, r->s.test, test);
    if (c && c->size > 1) {
        int arc = c->agree(c->ctx, rc);
        if (!rc) rc = arc;
    }
    return rc;
}

static int has_target(const dpt_run_spec *s)
{
    return s->target_loss > 0 || s->target_accuracy > 0;
}

/* Whether the metrics after an epoch reach every target of the spec: on
 * the held-out set when there is one, else on the training set. */
static int target_met(const dpt_run_spec *s, const dpt_metrics *train, const dpt_metrics *test)
{
    const dpt_metrics *m = s->test && s->test->n ? test : train;
    if (s->target_loss > 0 && !(m->loss <= s->target_loss)) return 0;
    if (s->target_accuracy > 0 && !(m->accuracy >= s->target_accuracy)) return 0;
    return 1;
}

/* The epochs one at a time, with metrics after every epoch whose number
 * is a multiple of every, and after the last; the others reach the caller
 * without (evaluated 0, losses NaN), as from the engine. */
static int epochs_evaluated(dpt_run *r, epoch_sink *k, int epochs, int every)
{
    for (int ep = 0; ep < epochs && !k->stop; ep++) {
        int before = k->out->epochs;
        k->last_evaluated = 0;
        int rc = dpt_engine_train(r->e, 1, on_engine_epoch, k);
        if (rc) return rc;
        if (k->out->epochs == before) break;
        if (k->last.epoch % every && ep < epochs - 1) {
            hand_over_plain(k, &k->last);
            continue;
        }
        dpt_run_epoch e = {0};
        if ((rc = evaluate(r, &e.train, &e.test))) return rc;
        k->last_evaluated = 1;
        k->train = e.train;
        k->test = e.test;
        e.stats = &k->last;
        e.evaluated = 1;
        if (has_target(&r->s) && target_met(&r->s, &e.train, &e.test)) {
            k->out->target_reached = 1;
            k->out->target_epoch = k->last.epoch;
            k->out->target_seconds = k->out->seconds;
            k->stop = 1;
        }
        /* the callback sees the epoch that reached the target too */
        if (r->s.on_epoch && r->s.on_epoch(&e, r->s.ud)) k->stop = 1;
    }
    return 0;
}

/* What a step of the timed epochs moved: the counters were cleared by the
 * reset before them (left zero when out of memory). */
static void summarize_moves(dpt_run *r, dpt_run_result *out)
{
    const int P = dpt_engine_threads(r->e);
    dpt_thread_counts *c = calloc((size_t)P, sizeof *c);
    if (!c) return;
    dpt_engine_counts(r->e, c);
    dpt_counts_summarize(c, P, &out->moves);
    free(c);
}

int dpt_run_train(dpt_run *r, dpt_run_result *out)
{
    const dpt_run_spec *s = &r->s;
    memset(out, 0, sizeof *out);
    no_metrics(&out->train);
    no_metrics(&out->test);
    out->target_epoch = -1;
    out->target_seconds = NAN;
    epoch_sink k = {0};
    dpt_engine_reset(r->e, r->w0);
    int rc = s->warmup > 0 ? dpt_engine_train(r->e, s->warmup, NULL, NULL) : 0;
    if (!rc || rc == DPT_EINTERRUPTED) {
        /* an interrupted warm-up leaves the run at its start, not at the
         * warm-up's state */
        dpt_engine_reset(r->e, r->w0);
        if (s->resume) dpt_engine_set_state(r->e, s->resume);
    }
    if (!rc) {
        const int todo = s->epochs - (s->resume ? s->resume->epochs : 0);
        dpt_engine_set_progress(r->e, s->progress, s->progress_ud, s->progress_interval);
        /* a target is checked on evaluated epochs: every one unless told */
        const int every = s->eval_epochs > 0 ? s->eval_epochs : has_target(s) ? 1 : 0;
        k = (epoch_sink){.r = r, .out = out, .in_engine = !every};
        if (todo > 0)
            rc = every ? epochs_evaluated(r, &k, todo, every)
                       : dpt_engine_train(r->e, todo, on_engine_epoch, &k);
        out->stopped = k.stop && !out->target_reached;
    }
    summarize_moves(r, out);
    out->split = dpt_engine_split(r->e);
    if (out->epochs > 0) {
        const double n = out->epochs;
        out->phases.compute /= n;
        out->phases.wait /= n;
        out->phases.reduce /= n;
        out->phases.update /= n;
        out->phases.shuffle /= n;
        out->phases.comm /= n;
        out->comm_bytes /= n;
    }
    if (rc == DPT_EDIVERGED) out->diverged = 1;
    if (rc == DPT_EINTERRUPTED) out->interrupted = 1;
    if (rc) return rc;
    if (!s->evaluate) return 0;
    if (k.last_evaluated) { /* the model has not moved since */
        out->train = k.train;
        out->test = k.test;
        return 0;
    }
    return evaluate(r, &out->train, &out->test);
}

int dpt_run_once(const dpt_run_spec *s, dpt_run_result *out, float **params)
{
    dpt_run *r;
    if (params) *params = NULL;
    int rc = dpt_run_create(&r, s);
    if (rc) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    rc = dpt_run_train(r, out);
    if (params && (!rc || rc == DPT_EDIVERGED || rc == DPT_EINTERRUPTED)) {
        size_t np = r->m.n_params;
        if ((*params = malloc(np * sizeof(float))))
            memcpy(*params, dpt_engine_params(r->e), np * sizeof(float));
        else if (!rc)
            rc = dpt_set_error(DPT_ENOMEM, "out of memory");
    }
    dpt_run_destroy(r);
    return rc;
}

void dpt_run_work_of(const dpt_model *m, const dpt_dataset *train, dpt_run_work *w)
{
    const double n = (double)train->n;
    w->samples = n;
    w->flops = dpt_model_train_flops(m) * n; /* as executed, not 6 x parameters */
    /* a linear model streams its rows once per epoch: bandwidth-bound */
    w->bytes = m->layers == 1 ? n * (double)train->d * sizeof(float) : 0;
}
