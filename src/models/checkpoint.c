/* Checkpoints (dpt/checkpoint.h): a model file, the engine's state and the
 * settings a continuation must share, with a CRC-32 over all of it; and
 * the check that a run continues the one that wrote it. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "dpt/checkpoint.h"
#include "dpt/error.h"
#include "dpt/file.h"
#include "models/modelfile_impl.h"

static const char magic[8] = {'D', 'P', 'T', 'C', 'K', 'P', 'T', 0};
/* the fixed fields after the model file, up to has_velocity included */
#define STATE_BYTES (4 + 4 + 8 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 7 * 4 + 3 * 8 + 4)

uint64_t dpt_checkpoint_data_hash(const dpt_dataset *ds)
{
    /* FNV-1a over the bytes: cheap, and any changed bit of a sampled row
     * changes it */
    uint64_t h = 0xcbf29ce484222325ULL;
#define MIX(ptr, len)                                                                              \
    for (size_t i_ = 0; i_ < (len); i_++)                                                          \
    h = (h ^ ((const unsigned char *)(ptr))[i_]) * 0x100000001b3ULL
    uint64_t shape[2] = {ds->n, ds->d};
    MIX(shape, sizeof shape);
    if (ds->part || !ds->n) return h;
    const size_t k = ds->n < 4096 ? ds->n : 4096;
    for (size_t j = 0; j < k; j++) {
        size_t r = j * ds->n / k;
        MIX(ds->X + r * ds->ld, ds->d * sizeof(float));
        MIX(ds->y + r, sizeof(float));
    }
#undef MIX
    return h;
}

void dpt_checkpoint_of_run(dpt_checkpoint *ck, dpt_run *r, const dpt_run_spec *s,
                           const dpt_standardizer *st)
{
    memset(ck, 0, sizeof *ck);
    dpt_engine *e = dpt_run_engine(r);
    ck->model = *dpt_run_model(r);
    ck->params = dpt_engine_params(e);
    if (st) ck->st = *st;
    dpt_engine_get_state(e, &ck->state);
    ck->velocity = (float *)ck->state.velocity;
    ck->epochs_total = s->epochs;
    ck->opt = s->opt;
    if (ck->opt.epochs <= 0) ck->opt.epochs = s->epochs;
    ck->seed = s->engine.seed;
    ck->shuffle = s->engine.shuffle;
    ck->init = (int)s->engine.init;
    ck->leaves = s->engine.leaves;
    ck->balance = (int)s->engine.balance;
    ck->batching_local = s->engine.batching_local;
    ck->reduce = (int)s->engine.reduce;
    ck->threads = dpt_engine_threads(e);
    ck->rows = s->train->n;
    ck->features = s->train->d;
    ck->data_hash = dpt_checkpoint_data_hash(s->train);
}

typedef struct wbuf {
    unsigned char *p;
    size_t len;
} wbuf;

static void put(wbuf *b, const void *v, size_t n)
{
    memcpy(b->p + b->len, v, n);
    b->len += n;
}
static void put32(wbuf *b, uint32_t v)
{
    put(b, &v, 4);
}
static void put64(wbuf *b, uint64_t v)
{
    put(b, &v, 8);
}
static void putf64(wbuf *b, double v)
{
    put(b, &v, 8);
}

int dpt_checkpoint_save(const char *path, const dpt_checkpoint *ck)
{
    unsigned char *mf;
    size_t mlen;
    int rc =
        dpt_modelfile_encode(path, &ck->model, ck->params, ck->st.d ? &ck->st : NULL, &mf, &mlen);
    if (rc) return rc;
    const size_t np = ck->model.n_params;
    const size_t total = 8 + 4 + 8 + mlen + STATE_BYTES + (ck->velocity ? 4 * np : 0) + 4;
    wbuf b = {malloc(total), 0};
    if (!b.p) {
        free(mf);
        return dpt_set_error(DPT_ENOMEM, "%s: out of memory", path);
    }
    const dpt_optim_spec *o = &ck->opt;
    put(&b, magic, 8);
    put32(&b, DPT_CHECKPOINT_VERSION);
    put64(&b, mlen);
    put(&b, mf, mlen);
    free(mf);
    put32(&b, (uint32_t)ck->state.epochs);
    put32(&b, (uint32_t)ck->epochs_total);
    put64(&b, (uint64_t)ck->state.steps);
    putf64(&b, ck->state.loss0);
    put64(&b, ck->seed);
    put32(&b, (uint32_t)o->kind);
    putf64(&b, o->lr);
    putf64(&b, o->momentum);
    put64(&b, o->batch);
    putf64(&b, o->weight_decay);
    put32(&b, (uint32_t)o->schedule);
    put64(&b, (uint64_t)o->step_every);
    putf64(&b, o->step_factor);
    put64(&b, (uint64_t)o->warmup);
    putf64(&b, o->clip_norm);
    put32(&b, (uint32_t)ck->shuffle);
    put32(&b, (uint32_t)ck->init);
    put32(&b, (uint32_t)ck->leaves);
    put32(&b, (uint32_t)ck->balance);
    put32(&b, (uint32_t)ck->batching_local);
    put32(&b, (uint32_t)ck->reduce);
    put32(&b, (uint32_t)ck->threads);
    put64(&b, ck->rows);
    put64(&b, ck->features);
    put64(&b, ck->data_hash);
    put32(&b, ck->velocity ? 1 : 0);
    if (ck->velocity) put(&b, ck->velocity, 4 * np);
    put32(&b, (uint32_t)crc32(0L, b.p, (uInt)b.len));
    rc = dpt_write_file_atomic(path, (const char *)b.p, b.len);
    free(b.p);
    return rc;
}

void dpt_checkpoint_free(dpt_checkpoint *ck)
{
    free(ck->params);
    free(ck->velocity);
    dpt_standardizer_free(&ck->st);
    memset(ck, 0, sizeof *ck);
}

static int corrupt(const char *path, const char *what)
{
    return dpt_set_error(DPT_EFORMAT, "%s: not a valid dpt checkpoint: %s", path, what);
}

/* A checkpoint's bytes; path names it in messages. */
static int decode(const char *path, const unsigned char *p, size_t size, dpt_checkpoint *ck)
{
    size_t off = 0;
#define GET(dst, n) (memcpy(&(dst), p + off, n), off += n)
    if (size < 8 + 4 + 8 + STATE_BYTES + 4)
        return corrupt(path, size < 8 ? "too short" : "truncated");
    if (memcmp(p, magic, 8)) return corrupt(path, "wrong magic");
    off = 8;
    uint32_t version, crc;
    uint64_t mlen;
    GET(version, 4);
    if (version != DPT_CHECKPOINT_VERSION)
        return dpt_set_error(DPT_EFORMAT, "%s: checkpoint version %u, this dpt reads version %d",
                             path, version, DPT_CHECKPOINT_VERSION);
    memcpy(&crc, p + size - 4, 4);
    if (crc != (uint32_t)crc32(0L, p, (uInt)(size - 4)))
        return corrupt(path, "checksum mismatch (corrupted or truncated)");
    GET(mlen, 8);
    if (mlen > size - off - STATE_BYTES - 4) return corrupt(path, "size does not match its header");
    int rc = dpt_modelfile_decode(path, p + off, (size_t)mlen, &ck->model, &ck->params, &ck->st);
    if (rc) return rc;
    off += (size_t)mlen;
    uint32_t u32[12];
    uint64_t u64[8];
    double f64[6];
    GET(u32[0], 4); /* epochs */
    GET(u32[1], 4); /* epochs_total */
    GET(u64[0], 8); /* steps */
    GET(f64[0], 8); /* loss0 */
    GET(ck->seed, 8);
    GET(u32[2], 4); /* kind */
    GET(f64[1], 8); /* lr */
    GET(f64[2], 8); /* momentum */
    GET(u64[1], 8); /* batch */
    GET(f64[3], 8); /* weight decay */
    GET(u32[3], 4); /* schedule */
    GET(u64[2], 8); /* step_every */
    GET(f64[4], 8); /* step_factor */
    GET(u64[3], 8); /* warmup */
    GET(f64[5], 8); /* clip */
    for (int i = 4; i < 11; i++) GET(u32[i], 4);
    GET(ck->rows, 8);
    GET(ck->features, 8);
    GET(ck->data_hash, 8);
    GET(u32[11], 4); /* has_velocity */
#undef GET
    const size_t np = ck->model.n_params;
    const size_t vbytes = u32[11] ? 4 * np : 0;
    if (u32[11] > 1 || off + vbytes + 4 != size)
        return corrupt(path, "size does not match its header");
    if (u32[0] > u32[1] || u32[1] > 100000000 || u64[0] > (uint64_t)LONG_MAX || u32[2] > 3 ||
        u32[3] > 2 || u64[2] > (uint64_t)LONG_MAX || u64[3] > (uint64_t)LONG_MAX ||
        u32[10] > 1000000 || !isfinite(f64[0]))
        return corrupt(path, "a field out of range");
    ck->state.epochs = (int)u32[0];
    ck->epochs_total = (int)u32[1];
    ck->state.steps = (long)u64[0];
    ck->state.loss0 = f64[0];
    ck->opt = (dpt_optim_spec){.kind = (dpt_opt_kind)u32[2],
                               .lr = f64[1],
                               .momentum = f64[2],
                               .batch = (size_t)u64[1],
                               .weight_decay = f64[3],
                               .schedule = (dpt_lr_schedule)u32[3],
                               .step_every = (long)u64[2],
                               .step_factor = f64[4],
                               .warmup = (long)u64[3],
                               .clip_norm = f64[5],
                               .epochs = (long)u32[1]};
    ck->shuffle = (int)(u32[4] != 0);
    ck->init = (int)u32[5];
    ck->leaves = (int)(u32[6] & 0x7fffffff);
    ck->balance = (int)u32[7];
    ck->batching_local = (int)(u32[8] != 0);
    ck->reduce = (int)u32[9];
    ck->threads = (int)u32[10];
    if (vbytes) {
        if (!(ck->velocity = malloc(vbytes ? vbytes : 4)))
            return dpt_set_error(DPT_ENOMEM, "%s: out of memory", path);
        memcpy(ck->velocity, p + off, vbytes);
    }
    ck->state.velocity = ck->velocity;
    return 0;
}

int dpt_checkpoint_load(const char *path, dpt_checkpoint *ck)
{
    memset(ck, 0, sizeof *ck);
    unsigned char *p;
    size_t len;
    int rc = dpt_modelfile_read(path, &p, &len);
    if (!rc && (rc = decode(path, p, len, ck))) dpt_checkpoint_free(ck);
    free(p);
    return rc;
}

/* One line for the first setting that differs. */
#define DIFF_NUM(what, a, b, fmt)                                                                  \
    if ((a) != (b))                                                                                \
    return dpt_set_error(DPT_EINVAL,                                                               \
                         "the checkpoint's run has %s " fmt ", this run " fmt                      \
                         ": a continuation must have the same",                                    \
                         what, a, b)

int dpt_checkpoint_resume(const dpt_checkpoint *ck, const dpt_model *m, dpt_run_spec *s)
{
    static const char *const optn[] = {"gd", "sgd", "momentum", "nesterov"};
    static const char *const schedn[] = {"const", "step", "cosine"};
    char a[128], b[128];
    dpt_model_describe(&ck->model, a, sizeof a);
    dpt_model_describe(m, b, sizeof b);
    if (strcmp(a, b) || ck->model.n_params != m->n_params)
        return dpt_set_error(DPT_EINVAL, "the checkpoint holds a %s, this run trains a %s", a, b);
    const dpt_dataset *ds = s->train;
    if (ck->rows != ds->n || ck->features != ds->d)
        return dpt_set_error(DPT_EINVAL,
                             "the checkpoint's run trained on %llu rows x %llu features, this run "
                             "has %zu x %zu: other training data",
                             (unsigned long long)ck->rows, (unsigned long long)ck->features, ds->n,
                             ds->d);
    if (ck->data_hash != dpt_checkpoint_data_hash(ds))
        return dpt_set_error(DPT_EINVAL, "the training data has the checkpoint's shape but other "
                                         "values (or another order)");
    const dpt_optim_spec *o = &s->opt, *c = &ck->opt;
    if (o->kind != c->kind)
        return dpt_set_error(DPT_EINVAL, "the checkpoint's run used the optimizer %s, this run %s",
                             optn[c->kind], optn[o->kind]);
    if (o->schedule != c->schedule)
        return dpt_set_error(DPT_EINVAL,
                             "the checkpoint's run used the learning-rate schedule %s, this run %s",
                             schedn[c->schedule], schedn[o->schedule]);
    DIFF_NUM("the learning rate", c->lr, o->lr, "%g");
    if (dpt_optim_has_velocity(o)) DIFF_NUM("momentum", c->momentum, o->momentum, "%g");
    if (o->kind != DPT_OPT_GD) DIFF_NUM("the batch size", c->batch, o->batch, "%zu");
    DIFF_NUM("weight decay", c->weight_decay, o->weight_decay, "%g");
    if (o->schedule == DPT_LR_STEP) {
        DIFF_NUM("a step schedule every", c->step_every, o->step_every, "%ld");
        DIFF_NUM("a step schedule factor", c->step_factor, o->step_factor, "%g");
    }
    DIFF_NUM("a warm-up of steps", c->warmup, o->warmup, "%ld");
    DIFF_NUM("gradient clipping at", c->clip_norm, o->clip_norm, "%g");
    const long horizon = o->epochs > 0 ? o->epochs : s->epochs;
    if (o->schedule == DPT_LR_COSINE)
        DIFF_NUM("a schedule horizon of epochs", c->epochs, horizon, "%ld");
    if (s->epochs < ck->state.epochs)
        return dpt_set_error(DPT_EINVAL,
                             "the checkpoint has %d epochs done, more than the %d this run asks",
                             ck->state.epochs, s->epochs);
    DIFF_NUM("the seed", (unsigned long long)ck->seed, (unsigned long long)s->engine.seed, "%llu");
    DIFF_NUM("shuffling (1 on)", ck->shuffle, s->engine.shuffle, "%d");
    DIFF_NUM("deterministic leaves", ck->leaves, s->engine.leaves, "%d");
    DIFF_NUM("local batching (1 on)", ck->batching_local, s->engine.batching_local, "%d");
    DIFF_NUM("the reduction (0 tree, 1 scatter)", ck->reduce, (int)s->engine.reduce, "%d");
    if (!ck->velocity != !dpt_optim_has_velocity(o))
        return dpt_set_error(DPT_EINVAL, "the checkpoint's velocity does not fit the optimizer");
    s->init_params = ck->params;
    s->resume = &ck->state;
    return 0;
}
