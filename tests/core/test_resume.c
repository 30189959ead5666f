/* Exact resume through the library: a run stopped after 3 of 6 epochs,
 * saved as a checkpoint and continued from the file gives the bits of 6
 * straight epochs (GD, SGD with momentum, shuffled or not, a cosine
 * schedule, 1 and 3 threads); an interrupt mid-epoch rolls back to the
 * epoch's start and a continuation still gives those bits; a continuation
 * of another run is refused; damaged checkpoints are refused. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dpt/checkpoint.h"
#include "dpt/error.h"
#include "dpt/modelfile.h"
#include "dpt/run.h"
#include "ref.h"

typedef struct rcase {
    int kind; /* dpt_opt_kind */
    int shuffle, cosine, threads;
} rcase;

static void make_spec(const rcase *c, dpt_run_spec *s, dpt_model *m, dpt_dataset *ds)
{
    dpt_optim_spec o;
    cr_assert_eq(ref_small_mlp(m, ds, &o, 300), 0);
    o.kind = (dpt_opt_kind)c->kind;
    if (c->kind == DPT_OPT_GD) o.lr = 0.5;
    if (c->cosine) o.schedule = DPT_LR_COSINE;
    dpt_run_spec_defaults(s);
    s->train = ds;
    s->model = m->spec;
    s->opt = o;
    ref_engine_opts(&s->engine, c->threads, c->shuffle);
    s->engine.seed = 11;
    s->epochs = 6;
    s->evaluate = 0;
}

/* malloc'd copy of a run's parameters */
static float *params_of(dpt_run *r)
{
    size_t np = dpt_run_model(r)->n_params;
    float *w = malloc(np * sizeof *w);
    memcpy(w, dpt_engine_params(dpt_run_engine(r)), np * sizeof *w);
    return w;
}

static int stop_at_3(const dpt_run_epoch *ep, void *ud)
{
    (void)ud;
    return ep->stats->epoch == 3;
}

static void tmp_path(char *buf, size_t cap, const char *what)
{
    snprintf(buf, cap, "/tmp/dpt-resume-%d-%s", (int)getpid(), what);
}

/* 3 epochs, a checkpoint file, 3 more from it (a fresh run): memcmp with 6
 * straight, and the saved model files are the same bytes. */
static void three_plus_three(const rcase *c, int eval_epochs)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_run_spec s;
    make_spec(c, &s, &m, &ds);
    s.eval_epochs = eval_epochs;
    dpt_run *r;
    dpt_run_result res;
    cr_assert_eq(dpt_run_create(&r, &s), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_run_train(r, &res), 0, "%s", dpt_last_error());
    cr_assert_eq(res.epochs, 6);
    float *want = params_of(r);
    dpt_run_destroy(r);

    dpt_run_spec s1 = s;
    s1.on_epoch = stop_at_3;
    cr_assert_eq(dpt_run_create(&r, &s1), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_run_train(r, &res), 0, "%s", dpt_last_error());
    cr_assert_eq(res.epochs, 3);
    cr_assert(res.stopped);
    dpt_checkpoint ck;
    dpt_checkpoint_of_run(&ck, r, &s1, NULL);
    cr_assert_eq(ck.state.epochs, 3);
    char path[128], m1[128], m2[128];
    tmp_path(path, sizeof path, "ck");
    cr_assert_eq(dpt_checkpoint_save(path, &ck), 0, "%s", dpt_last_error());
    dpt_run_destroy(r);

    dpt_checkpoint back;
    cr_assert_eq(dpt_checkpoint_load(path, &back), 0, "%s", dpt_last_error());
    cr_assert_eq(back.state.epochs, 3);
    cr_assert_eq(back.state.steps, 3 * res.steps);
    cr_assert_eq(!back.velocity, c->kind < DPT_OPT_MOMENTUM);
    dpt_run_spec s2 = s;
    cr_assert_eq(dpt_checkpoint_resume(&back, &m, &s2), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_run_create(&r, &s2), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_run_train(r, &res), 0, "%s", dpt_last_error());
    cr_assert_eq(res.epochs, 3, "only the 3 epochs left are trained");
    float *got = params_of(r);
    cr_assert_eq(memcmp(want, got, m.n_params * sizeof *got), 0,
                 "3 epochs + resume for 3 differ from 6 straight");
    /* the model files too */
    tmp_path(m1, sizeof m1, "m1");
    tmp_path(m2, sizeof m2, "m2");
    cr_assert_eq(dpt_model_save(m1, &m, want, NULL), 0);
    cr_assert_eq(dpt_model_save(m2, dpt_run_model(r), got, NULL), 0);
    FILE *f1 = fopen(m1, "rb"), *f2 = fopen(m2, "rb");
    char b1[8192], b2[8192];
    size_t n1 = fread(b1, 1, sizeof b1, f1), n2 = fread(b2, 1, sizeof b2, f2);
    fclose(f1);
    fclose(f2);
    cr_assert(n1 == n2 && n1 > 0 && !memcmp(b1, b2, n1));
    dpt_run_destroy(r);
    dpt_checkpoint_free(&back);
    unlink(path);
    unlink(m1);
    unlink(m2);
    free(want);
    free(got);
    dpt_dataset_free(&ds);
}

ParameterizedTestParameters(resume, bits)
{
    static rcase cases[] = {
        {DPT_OPT_GD, 0, 0, 1},       {DPT_OPT_GD, 0, 1, 3},       {DPT_OPT_SGD, 0, 0, 1},
        {DPT_OPT_SGD, 1, 1, 3},      {DPT_OPT_MOMENTUM, 0, 0, 1}, {DPT_OPT_MOMENTUM, 1, 0, 3},
        {DPT_OPT_MOMENTUM, 1, 1, 1}, {DPT_OPT_MOMENTUM, 0, 1, 3}, {DPT_OPT_NESTEROV, 1, 1, 3},
    };
    return cr_make_param_array(rcase, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(rcase *c, resume, bits)
{
    three_plus_three(c, 0);
    three_plus_three(c, 1);
}

/* Set by the progress callback in the middle of epoch 4. */
static volatile sig_atomic_t flag;
static void raise_in_epoch_4(const dpt_progress *p, void *ud)
{
    (void)ud;
    if (p->epoch == 4 && p->step == 2) flag = 1;
}

Test(resume, interrupt_mid_epoch_rolls_back)
{
    rcase c = {DPT_OPT_MOMENTUM, 1, 1, 3};
    dpt_model m;
    dpt_dataset ds;
    dpt_run_spec s;
    make_spec(&c, &s, &m, &ds);
    dpt_run *r;
    dpt_run_result res;
    cr_assert_eq(dpt_run_create(&r, &s), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_run_train(r, &res), 0, "%s", dpt_last_error());
    float *want = params_of(r);
    dpt_run_destroy(r);

    dpt_run_spec s1 = s;
    flag = 0;
    s1.interrupt = &flag;
    s1.progress = raise_in_epoch_4;
    s1.progress_interval = 0;
    cr_assert_eq(dpt_run_create(&r, &s1), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_run_train(r, &res), DPT_EINTERRUPTED);
    cr_assert(res.interrupted);
    cr_assert_eq(res.epochs, 3);
    cr_assert(strstr(dpt_last_error(), "interrupted in epoch 4"), "%s", dpt_last_error());
    dpt_checkpoint ck;
    dpt_checkpoint_of_run(&ck, r, &s1, NULL);
    cr_assert_eq(ck.state.epochs, 3);
    cr_assert_eq(ck.state.steps, 3 * res.steps, "the interrupted epoch's steps are undone");
    char path[128];
    tmp_path(path, sizeof path, "intr");
    cr_assert_eq(dpt_checkpoint_save(path, &ck), 0, "%s", dpt_last_error());
    dpt_run_destroy(r);

    dpt_checkpoint back;
    cr_assert_eq(dpt_checkpoint_load(path, &back), 0, "%s", dpt_last_error());
    dpt_run_spec s2 = s;
    cr_assert_eq(dpt_checkpoint_resume(&back, &m, &s2), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_run_create(&r, &s2), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_run_train(r, &res), 0, "%s", dpt_last_error());
    float *got = params_of(r);
    cr_assert_eq(memcmp(want, got, m.n_params * sizeof *got), 0,
                 "interrupt + resume differs from an uninterrupted run");
    dpt_run_destroy(r);
    dpt_checkpoint_free(&back);
    unlink(path);
    free(want);
    free(got);
    dpt_dataset_free(&ds);
}

Test(resume, other_run_refused)
{
    rcase c = {DPT_OPT_MOMENTUM, 1, 0, 1};
    dpt_model m;
    dpt_dataset ds;
    dpt_run_spec s;
    make_spec(&c, &s, &m, &ds);
    s.on_epoch = stop_at_3;
    dpt_run *r;
    dpt_run_result res;
    cr_assert_eq(dpt_run_create(&r, &s), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_run_train(r, &res), 0, "%s", dpt_last_error());
    dpt_checkpoint ck;
    dpt_checkpoint_of_run(&ck, r, &s, NULL);

    dpt_run_spec t = s;
    t.opt.lr *= 2;
    cr_assert_eq(dpt_checkpoint_resume(&ck, &m, &t), DPT_EINVAL);
    cr_assert(strstr(dpt_last_error(), "learning rate"), "%s", dpt_last_error());
    cr_assert_null(t.resume);
    t = s;
    t.engine.seed++;
    cr_assert_eq(dpt_checkpoint_resume(&ck, &m, &t), DPT_EINVAL);
    cr_assert(strstr(dpt_last_error(), "seed"), "%s", dpt_last_error());
    /* the same shape, one value changed */
    t = s;
    dpt_dataset other = ds;
    float *X = malloc(ds.n * ds.ld * sizeof *X);
    memcpy(X, ds.X, ds.n * ds.ld * sizeof *X);
    X[0] += 1;
    other.X = X;
    t.train = &other;
    cr_assert_eq(dpt_checkpoint_resume(&ck, &m, &t), DPT_EINVAL);
    cr_assert(strstr(dpt_last_error(), "other values"), "%s", dpt_last_error());
    other.n = ds.n - 1;
    cr_assert_eq(dpt_checkpoint_resume(&ck, &m, &t), DPT_EINVAL);
    cr_assert(strstr(dpt_last_error(), "rows"), "%s", dpt_last_error());
    /* another model */
    dpt_model m2;
    dpt_model_spec ms = m.spec;
    ms.hidden[0] = 9;
    cr_assert_eq(dpt_model_init(&m2, &ms), 0);
    t = s;
    cr_assert_eq(dpt_checkpoint_resume(&ck, &m2, &t), DPT_EINVAL);
    cr_assert(strstr(dpt_last_error(), "checkpoint holds"), "%s", dpt_last_error());
    t = s;
    cr_assert_eq(dpt_checkpoint_resume(&ck, &m, &t), 0, "%s", dpt_last_error());
    cr_assert_not_null(t.resume);
    free(X);
    dpt_run_destroy(r);
    dpt_dataset_free(&ds);
}

Test(resume, damaged_file_refused)
{
    rcase c = {DPT_OPT_MOMENTUM, 1, 0, 1};
    dpt_model m;
    dpt_dataset ds;
    dpt_run_spec s;
    make_spec(&c, &s, &m, &ds);
    s.epochs = 1;
    dpt_run *r;
    dpt_run_result res;
    cr_assert_eq(dpt_run_create(&r, &s), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_run_train(r, &res), 0, "%s", dpt_last_error());
    dpt_checkpoint ck, back;
    dpt_checkpoint_of_run(&ck, r, &s, NULL);
    char path[128];
    tmp_path(path, sizeof path, "dmg");
    cr_assert_eq(dpt_checkpoint_save(path, &ck), 0, "%s", dpt_last_error());
    FILE *f = fopen(path, "rb");
    static unsigned char b[16384];
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    cr_assert(n > 100 && n < sizeof b);
    /* a flipped byte anywhere, and every truncation point we try */
    for (size_t at = 0; at < n; at += 37) {
        b[at] ^= 0x40;
        f = fopen(path, "wb");
        fwrite(b, 1, n, f);
        fclose(f);
        b[at] ^= 0x40;
        cr_assert_eq(dpt_checkpoint_load(path, &back), DPT_EFORMAT, "byte %zu", at);
    }
    for (size_t len = 0; len < n; len += 53) {
        f = fopen(path, "wb");
        fwrite(b, 1, len, f);
        fclose(f);
        cr_assert_eq(dpt_checkpoint_load(path, &back), DPT_EFORMAT, "length %zu", len);
    }
    /* a model file is not a checkpoint, and the other way round */
    cr_assert_eq(dpt_model_save(path, &m, ck.params, NULL), 0);
    cr_assert_eq(dpt_checkpoint_load(path, &back), DPT_EFORMAT);
    cr_assert(strstr(dpt_last_error(), "not a valid dpt checkpoint"), "%s", dpt_last_error());
    unlink(path);
    dpt_run_destroy(r); /* ck points into it */
    dpt_dataset_free(&ds);
}

/* The trace hands over each epoch's steps at its end, warm-up epochs too. */
static void raise_after_an_epoch(const dpt_step_record *r, size_t n, void *ud)
{
    (void)r, (void)n, (void)ud;
    flag = 1;
}

Test(resume, interrupted_warmup_leaves_the_start)
{
    rcase c = {DPT_OPT_MOMENTUM, 1, 0, 3};
    dpt_model m;
    dpt_dataset ds;
    dpt_run_spec s;
    make_spec(&c, &s, &m, &ds);
    s.warmup = 3;
    flag = 0;
    s.interrupt = &flag;
    dpt_run *r;
    dpt_run_result res;
    cr_assert_eq(dpt_run_create(&r, &s), 0, "%s", dpt_last_error());
    float *w0 = params_of(r);
    /* interrupted in the second warm-up epoch, one epoch done */
    cr_assert_eq(dpt_engine_set_trace(dpt_run_engine(r), raise_after_an_epoch, NULL, 0), 0);
    cr_assert_eq(dpt_run_train(r, &res), DPT_EINTERRUPTED);
    cr_assert(res.interrupted);
    cr_assert_eq(res.epochs, 0);
    dpt_engine_state st;
    dpt_engine_get_state(dpt_run_engine(r), &st);
    cr_assert_eq(st.epochs, 0, "the warm-up's epoch counts as the run's");
    cr_assert_eq(st.steps, 0);
    float *w = params_of(r);
    cr_assert_eq(memcmp(w, w0, m.n_params * sizeof *w), 0, "not the run's start");
    for (size_t i = 0; i < m.n_params; i++) cr_assert_eq(st.velocity[i], 0.0f);
    free(w);
    free(w0);
    dpt_run_destroy(r);
    dpt_dataset_free(&ds);
}
