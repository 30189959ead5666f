/* One fuzz input through one loader (or the model-file and checkpoint
 * readers), shared by the libFuzzer targets and by
 * tests/data/test_crashes.c (which replays every saved crash the same way).
 * The first byte picks loader options; the rest becomes a file in memory
 * (memfd), loaded by path like any user file. */
#ifndef DPT_FUZZ_ONE_H
#define DPT_FUZZ_ONE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "data/io_internal.h"
#include "dpt/checkpoint.h"
#include "dpt/error.h"
#include "dpt/io.h"
#include "dpt/modelfile.h"

static int fuzz_memfd(const uint8_t *data, size_t size, char *path, size_t cap)
{
    int fd = memfd_create("dpt-fuzz", MFD_CLOEXEC);
    if (fd < 0) return -1;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

/* A .dptb header with valid checksums for the bytes that follow, so that
 * mutations reach past the checksum test when the option bit asks. */
static void fuzz_fix_dptb(uint8_t *b, size_t size)
{
    if (size < 64) return;
    uint64_t n = 0, ld = 0;
    for (int k = 7; k >= 0; k--) n = n << 8 | b[16 + k];
    for (int k = 7; k >= 0; k--) ld = ld << 8 | b[32 + k];
    if (n && ld && n < (1u << 20) && ld < (1u << 20) && 64 + (n * ld + n) * 4 <= size) {
        const float *X = (const float *)(b + 64);
        uint64_t hx = io_checksum(X, n * ld * 4, 1), hy = io_checksum(X + n * ld, n * 4, 1);
        /* version 2: the block table after the padded labels, when it fits */
        size_t xb = n * ld * 4, tab = 64 + xb + (n + 15) / 16 * 64, nb = io_checksum_blocks(xb);
        if (b[8] == 2 && tab + nb * 8 <= size) {
            uint64_t *t = malloc(nb * sizeof *t);
            if (t) {
                io_checksum_table(X, xb, t, 1);
                for (size_t i = 0; i < nb; i++)
                    for (int k = 0; k < 8; k++) b[tab + i * 8 + k] = (uint8_t)(t[i] >> (8 * k));
                free(t);
            }
        }
        uint64_t h = hx * 0x9E3779B97F4A7C15ULL ^ hy;
        for (int k = 0; k < 8; k++) b[48 + k] = (uint8_t)(h >> (8 * k));
    }
    uint64_t hh = io_checksum(b, 56, 1);
    for (int k = 0; k < 8; k++) b[56 + k] = (uint8_t)(hh >> (8 * k));
}

/* The trailing CRC-32 of b[0, size) recomputed, so that mutations reach
 * past the checksum test. */
static void fuzz_fix_crc(uint8_t *b, size_t size)
{
    if (size < 4) return;
    uint32_t c = (uint32_t)crc32(0L, b, (uInt)(size - 4));
    memcpy(b + size - 4, &c, 4);
}

/* A model file or checkpoint: read it, then every value read. Option bit
 * 0: fix the CRCs first (a checkpoint's and the model file's inside it). */
static int fuzz_model(const char *target, uint8_t opt, const uint8_t *data, size_t size)
{
    uint8_t *copy = NULL;
    if ((opt & 1) && (copy = malloc(size ? size : 1))) {
        memcpy(copy, data, size);
        uint64_t mlen;
        if (!strcmp(target, "checkpoint") && size >= 20 &&
            (memcpy(&mlen, copy + 12, 8), mlen <= size - 20))
            fuzz_fix_crc(copy + 20, (size_t)mlen);
        fuzz_fix_crc(copy, size);
        data = copy;
    }
    char path[64];
    int fd = fuzz_memfd(data, size, path, sizeof path), rc = 0;
    if (fd >= 0) {
        float s = 0;
        if (!strcmp(target, "modelfile")) {
            dpt_model m;
            float *w;
            dpt_standardizer st;
            if ((rc = dpt_model_load(path, &m, &w, &st)) == 0) {
                for (size_t i = 0; i < m.n_params; i++) s += w[i];
                for (size_t i = 0; i < st.d; i++) s += st.mean[i] + st.scale[i];
                free(w);
                dpt_standardizer_free(&st);
            }
        } else {
            dpt_checkpoint ck;
            if ((rc = dpt_checkpoint_load(path, &ck)) == 0) {
                for (size_t i = 0; i < ck.model.n_params; i++)
                    s += ck.params[i] + (ck.velocity ? ck.velocity[i] : 0);
                for (size_t i = 0; i < ck.st.d; i++) s += ck.st.mean[i] + ck.st.scale[i];
                dpt_checkpoint_free(&ck);
            }
        }
        volatile float sink = s;
        (void)sink;
        close(fd);
    }
    free(copy);
    return rc;
}

/* target: "csv", "svmlight", "idx", "dptb", "modelfile" or "checkpoint".
 * Returns the load status. */
static int dpt_fuzz_one(const char *target, const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t opt = data[0];
    data++;
    size--;
    if (!strcmp(target, "modelfile") || !strcmp(target, "checkpoint"))
        return fuzz_model(target, opt, data, size);
    dpt_load_opts o;
    dpt_load_opts_defaults(&o);
    o.nthreads = 1;
    o.max_bytes = (size_t)64 << 20; /* a claimed size beyond this is refused */
    char p1[64], p2[64];
    int fd1 = -1, fd2 = -1, rc;
    dpt_dataset ds;
    if (!strcmp(target, "csv")) {
        static const char delims[] = {',', ';', '\t', ' '};
        static const int header[] = {-1, 0, 1, -1};
        o.format = DPT_FORMAT_CSV;
        o.header = header[opt & 3];
        o.delimiter = delims[(opt >> 2) & 3];
        o.label_col = (opt >> 4) % 3 == 0   ? DPT_LABEL_COL_LAST
                      : (opt >> 4) % 3 == 1 ? 0
                                            : DPT_LABEL_COL_NONE;
    } else if (!strcmp(target, "svmlight")) {
        o.format = DPT_FORMAT_SVMLIGHT;
        o.features = opt & 1 ? opt >> 3 : 0;
    } else if (!strcmp(target, "idx")) {
        o.format = DPT_FORMAT_IDX;
    } else {
        o.format = DPT_FORMAT_DPTB;
    }
    uint8_t *copy = NULL;
    if (o.format == DPT_FORMAT_DPTB && (opt & 1) && size >= 64 && (copy = malloc(size))) {
        memcpy(copy, data, size);
        fuzz_fix_dptb(copy, size);
        data = copy;
    }
    if (o.format == DPT_FORMAT_IDX && (opt & 1)) {
        /* images, then labels: the option byte's high bits set the split */
        size_t split = (size_t)(opt >> 1) * size / 127;
        if (split > size) split = size;
        fd1 = fuzz_memfd(data, split, p1, sizeof p1);
        fd2 = fuzz_memfd(data + split, size - split, p2, sizeof p2);
        o.labels_path = p2;
    } else {
        fd1 = fuzz_memfd(data, size, p1, sizeof p1);
    }
    if (fd1 < 0 || (o.labels_path && fd2 < 0)) {
        rc = 0;
    } else {
        rc = dpt_load(p1, &o, &ds);
        if (rc == 0) {
            /* touch every value: a bad pointer shows up here under ASan */
            float s = 0;
            for (size_t i = 0; i < ds.n; i++) {
                for (size_t k = 0; k < ds.ld; k++) s += ds.X[i * ds.ld + k];
                s += ds.y[i];
            }
            volatile float sink = s;
            (void)sink;
            dpt_dataset_free(&ds);
        }
    }
    if (fd1 >= 0) close(fd1);
    if (fd2 >= 0) close(fd2);
    free(copy);
    return rc;
}

#endif
