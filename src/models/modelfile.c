/* Model files: fixed little-endian fields, parameters, optional
 * standardization statistics, CRC-32 (zlib) over everything before it. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "dpt/error.h"
#include "dpt/modelfile.h"
#include "dpt/file.h"
#include "models/modelfile_impl.h"

static const char magic[8] = {'D', 'P', 'T', 'M', 'O', 'D', 'E', 'L'};
#define HEADER_BYTES (8 + 4 + 4 + 8 + 4 + 8 * DPT_MAX_HIDDEN + 4 + 4 + 4 + 4 + 8 + 8)

typedef struct buf {
    unsigned char *p;
    size_t len;
} buf;

/* x86-64 and arm64 are little-endian: fields are copied as they are. */
static void put(buf *b, const void *v, size_t n)
{
    memcpy(b->p + b->len, v, n);
    b->len += n;
}
static void put32(buf *b, uint32_t v)
{
    put(b, &v, 4);
}
static void put64(buf *b, uint64_t v)
{
    put(b, &v, 8);
}

int dpt_modelfile_encode(const char *path, const dpt_model *m, const float *w,
                         const dpt_standardizer *st, unsigned char **out, size_t *len)
{
    size_t sd = st && st->d ? st->d : 0;
    size_t total = HEADER_BYTES + 4 * (m->n_params + 2 * sd) + 4;
    buf b = {malloc(total), 0};
    *out = NULL;
    *len = 0;
    if (!b.p) return dpt_set_error(DPT_ENOMEM, "%s: out of memory", path);
    const dpt_model_spec *s = &m->spec;
    put(&b, magic, 8);
    put32(&b, DPT_MODELFILE_VERSION);
    put32(&b, (uint32_t)s->kind);
    put64(&b, s->inputs);
    put32(&b, (uint32_t)s->n_hidden);
    for (int l = 0; l < DPT_MAX_HIDDEN; l++) put64(&b, l < s->n_hidden ? s->hidden[l] : 0);
    put32(&b, (uint32_t)s->classes);
    put32(&b, (uint32_t)s->act);
    put32(&b, (uint32_t)s->loss);
    put32(&b, (uint32_t)s->bias);
    put64(&b, m->n_params);
    put64(&b, sd);
    put(&b, w, 4 * m->n_params);
    if (sd) {
        put(&b, st->mean, 4 * sd);
        put(&b, st->scale, 4 * sd);
    }
    put32(&b, (uint32_t)crc32(0L, b.p, (uInt)b.len));
    *out = b.p;
    *len = b.len;
    return 0;
}

int dpt_model_save(const char *path, const dpt_model *m, const float *w, const dpt_standardizer *st)
{
    unsigned char *p;
    size_t len;
    int rc = dpt_modelfile_encode(path, m, w, st, &p, &len);
    if (!rc) rc = dpt_write_file_atomic(path, (const char *)p, len);
    free(p);
    return rc;
}

static int corrupt(const char *path, const char *what)
{
    return dpt_set_error(DPT_EFORMAT, "%s: not a valid dpt model file: %s", path, what);
}

int dpt_modelfile_read(const char *path, unsigned char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return dpt_set_error(DPT_EIO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char *p = NULL;
    int rc = 0;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        rc = dpt_set_error(DPT_EIO, "%s: cannot read (is it a directory?)", path);
    } else if (!(p = malloc(size ? (size_t)size : 1)) ||
               fread(p, 1, (size_t)size, f) != (size_t)size) {
        rc = dpt_set_error(p ? DPT_EIO : DPT_ENOMEM, "%s: cannot read", path);
        free(p);
        p = NULL;
    }
    fclose(f);
    *out = p;
    *len = p ? (size_t)size : 0;
    return rc;
}

int dpt_model_load(const char *path, dpt_model *m, float **w, dpt_standardizer *st)
{
    unsigned char *p;
    size_t len;
    *w = NULL;
    memset(st, 0, sizeof *st);
    int rc = dpt_modelfile_read(path, &p, &len);
    if (!rc) rc = dpt_modelfile_decode(path, p, len, m, w, st);
    free(p);
    return rc;
}

int dpt_modelfile_decode(const char *path, const unsigned char *p, size_t size, dpt_model *m,
                         float **w, dpt_standardizer *st)
{
    *w = NULL;
    memset(st, 0, sizeof *st);
    int rc = 0;
    if (size < HEADER_BYTES + 4) {
        rc = corrupt(path, size < 8 ? "too short" : "truncated header");
        goto done;
    }
    if (memcmp(p, magic, 8)) {
        rc = corrupt(path, "wrong magic");
        goto done;
    }
    size_t off = 8;
#define GET(dst, n) (memcpy(&(dst), p + off, n), off += n)
    uint32_t version, kind, nh, classes, act, loss, bias;
    uint64_t inputs, hidden[DPT_MAX_HIDDEN], np, sd;
    GET(version, 4);
    if (version != DPT_MODELFILE_VERSION) {
        rc = dpt_set_error(DPT_EFORMAT, "%s: model file version %u, this dpt reads version %d",
                           path, version, DPT_MODELFILE_VERSION);
        goto done;
    }
    GET(kind, 4);
    GET(inputs, 8);
    GET(nh, 4);
    for (int l = 0; l < DPT_MAX_HIDDEN; l++) GET(hidden[l], 8);
    GET(classes, 4);
    GET(act, 4);
    GET(loss, 4);
    GET(bias, 4);
    GET(np, 8);
    GET(sd, 8);
    if (np > (uint64_t)size || sd > (uint64_t)size ||
        (uint64_t)size != HEADER_BYTES + 4 * (np + 2 * sd) + 4) {
        rc = corrupt(path, "size does not match its header (truncated?)");
        goto done;
    }
    uint32_t crc;
    memcpy(&crc, p + size - 4, 4);
    if (crc != (uint32_t)crc32(0L, p, (uInt)(size - 4))) {
        rc = corrupt(path, "checksum mismatch (corrupted)");
        goto done;
    }
    if (nh > DPT_MAX_HIDDEN || kind > DPT_MODEL_MLP) {
        rc = corrupt(path, "unknown architecture");
        goto done;
    }
    dpt_model_spec s = {.kind = (dpt_model_kind)kind,
                        .inputs = inputs,
                        .n_hidden = (int)nh,
                        .classes = (int)classes,
                        .act = (dpt_activation)act,
                        .loss = (dpt_loss)loss,
                        .bias = (int)bias};
    for (uint32_t l = 0; l < nh; l++) s.hidden[l] = hidden[l];
    if (dpt_model_init(m, &s)) {
        rc = corrupt(path, dpt_last_error());
        goto done;
    }
    if (m->n_params != np || (sd && sd != inputs)) {
        rc = corrupt(path, "parameter count does not match the architecture");
        goto done;
    }
    *w = malloc(np ? np * 4 : 4);
    if (!*w) {
        rc = dpt_set_error(DPT_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    memcpy(*w, p + off, 4 * np);
    off += 4 * np;
    if (sd && (rc = dpt_standardizer_init(st, sd, (const float *)(p + off),
                                          (const float *)(p + off + 4 * sd)))) {
        free(*w);
        *w = NULL;
    }
#undef GET
done:
    return rc;
}
