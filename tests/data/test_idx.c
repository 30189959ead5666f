/* IDX (MNIST format), plain and gzip: value types, labels, and every way
 * such a file goes wrong; Fashion-MNIST as Debian installs it. */
#include <criterion/criterion.h>
#include <zlib.h>

#include "util.h"

static void teardown(void)
{
    rm_tdir();
}
TestSuite(idx, .fini = teardown);

#define FMNIST "/usr/share/datasets/fashion-mnist"

/* An IDX file: type, dims, then raw value bytes. Returns its size. */
static size_t make_idx(unsigned char *buf, int type, int ndim, const unsigned *dims,
                       const void *vals, size_t vbytes)
{
    buf[0] = buf[1] = 0;
    buf[2] = (unsigned char)type;
    buf[3] = (unsigned char)ndim;
    for (int k = 0; k < ndim; k++) {
        buf[4 + 4 * k] = (unsigned char)(dims[k] >> 24);
        buf[5 + 4 * k] = (unsigned char)(dims[k] >> 16);
        buf[6 + 4 * k] = (unsigned char)(dims[k] >> 8);
        buf[7 + 4 * k] = (unsigned char)dims[k];
    }
    memcpy(buf + 4 + 4 * ndim, vals, vbytes);
    return 4 + 4 * (size_t)ndim + vbytes;
}

static const char *write_gz(const char *name, const void *data, size_t len)
{
    const char *p = tpath(name);
    gzFile g = gzopen(p, "wb");
    cr_assert(g);
    cr_assert_eq(gzwrite(g, data, (unsigned)len), (int)len);
    gzclose(g);
    return p;
}

/* 3 images of 2x2 bytes and 3 labels */
static unsigned char img[64], lab[64];
static size_t img_len, lab_len;

static void make_pair(void)
{
    unsigned dims[3] = {3, 2, 2}, ldims[1] = {3};
    unsigned char px[12] = {0, 1, 2, 255, 4, 5, 6, 7, 8, 9, 10, 11}, ly[3] = {2, 0, 1};
    img_len = make_idx(img, 0x08, 3, dims, px, sizeof px);
    lab_len = make_idx(lab, 0x08, 1, ldims, ly, sizeof ly);
}

static int load_pair(const char *ip, const char *lp, dpt_dataset *ds)
{
    dpt_load_opts o;
    dpt_load_opts_defaults(&o);
    o.labels_path = lp;
    return dpt_load(ip, &o, ds);
}

Test(idx, plain_ubyte_with_labels)
{
    make_pair();
    dpt_dataset ds;
    int rc = load_pair(write_bytes("i-idx3-ubyte", img, img_len),
                       write_bytes("l-idx1-ubyte", lab, lab_len), &ds);
    cr_assert_eq(rc, 0, "%s", dpt_last_error());
    assert_layout(&ds);
    cr_assert_eq(ds.n, 3);
    cr_assert_eq(ds.d, 4);
    cr_assert_eq(X_at(&ds, 0, 3), 255.0f);
    cr_assert_eq(X_at(&ds, 2, 0), 8.0f);
    cr_assert_eq(ds.y[0], 2.0f);
    cr_assert_eq(ds.label_kind, DPT_LABEL_CLASS);
    cr_assert_eq(ds.classes, 3);
    dpt_dataset_free(&ds);
}

Test(idx, gzip_with_labels_and_no_labels)
{
    make_pair();
    dpt_dataset ds;
    const char *ip = write_gz("i.gz", img, img_len);
    int rc = load_pair(ip, write_gz("l.gz", lab, lab_len), &ds);
    cr_assert_eq(rc, 0, "%s", dpt_last_error());
    cr_assert_eq(X_at(&ds, 1, 1), 5.0f);
    cr_assert_eq(ds.y[2], 1.0f);
    dpt_dataset_free(&ds);
    cr_assert_eq(dpt_load(ip, NULL, &ds), 0, "%s", dpt_last_error());
    cr_assert_eq(ds.y[0], 0.0f);
    dpt_dataset_free(&ds);
}

Test(idx, other_value_types)
{
    unsigned char buf[128];
    unsigned dims[2] = {2, 2};
    /* int16 big-endian: -2, 300, 7, -32768 */
    unsigned char s16[8] = {0xFF, 0xFE, 0x01, 0x2C, 0x00, 0x07, 0x80, 0x00};
    size_t n = make_idx(buf, 0x0B, 2, dims, s16, sizeof s16);
    dpt_dataset ds;
    cr_assert_eq(dpt_load(write_bytes("s16.idx", buf, n), NULL, &ds), 0, "%s", dpt_last_error());
    cr_assert_eq(X_at(&ds, 0, 0), -2.0f);
    cr_assert_eq(X_at(&ds, 0, 1), 300.0f);
    cr_assert_eq(X_at(&ds, 1, 1), -32768.0f);
    dpt_dataset_free(&ds);
    /* float32 big-endian: 1.5 (0x3FC00000), -0.25 (0xBE800000) */
    unsigned dims1[2] = {1, 2};
    unsigned char f32[8] = {0x3F, 0xC0, 0, 0, 0xBE, 0x80, 0, 0};
    n = make_idx(buf, 0x0D, 2, dims1, f32, sizeof f32);
    cr_assert_eq(dpt_load(write_bytes("f32.idx", buf, n), NULL, &ds), 0, "%s", dpt_last_error());
    cr_assert_eq(X_at(&ds, 0, 0), 1.5f);
    cr_assert_eq(X_at(&ds, 0, 1), -0.25f);
    dpt_dataset_free(&ds);
    /* a float32 NaN is refused */
    unsigned char nan32[8] = {0x3F, 0xC0, 0, 0, 0x7F, 0xC0, 0, 0};
    n = make_idx(buf, 0x0D, 2, dims1, nan32, sizeof nan32);
    cr_assert_eq(dpt_load(write_bytes("nan.idx", buf, n), NULL, &ds), DPT_EFORMAT);
    assert_msg_has("nan.idx: item 1, value 2 is not finite");
}

Test(idx, wrong_magic)
{
    make_pair();
    img[2] = 0x07;
    dpt_dataset ds;
    cr_assert_eq(dpt_load(write_bytes("bad-idx3-ubyte", img, img_len), NULL, &ds), DPT_EFORMAT);
    assert_msg_has("bad-idx3-ubyte: not an IDX file", "00 00 07 03");
    /* text in an IDX-named file */
    cr_assert_eq(dpt_load(write_text("t.idx", "1,2,3\n"), NULL, &ds), DPT_EFORMAT);
    assert_msg_has("t.idx: not an IDX file");
}

Test(idx, truncated_plain)
{
    make_pair();
    dpt_dataset ds;
    cr_assert_eq(dpt_load(write_bytes("i.idx", img, img_len - 1), NULL, &ds), DPT_EFORMAT);
    assert_msg_has("i.idx: truncated", "3 items of 4");
    cr_assert_eq(dpt_load(write_bytes("h.idx", img, 10), NULL, &ds), DPT_EFORMAT);
    assert_msg_has("h.idx: truncated in the IDX header");
    cr_assert_eq(dpt_load(write_bytes("e.idx", img, 0), NULL, &ds), DPT_EFORMAT);
    assert_msg_has("e.idx: empty file");
}

Test(idx, trailing_data)
{
    make_pair();
    dpt_dataset ds;
    cr_assert_eq(dpt_load(write_bytes("i.idx", img, img_len + 1), NULL, &ds), DPT_EFORMAT);
    assert_msg_has("i.idx: 1 bytes of trailing data");
}

Test(idx, gzip_cut_short)
{
    /* a larger image file so the cut lands inside the deflate stream */
    size_t n = 500, d = 64;
    unsigned char *buf = malloc(16 + n * d);
    unsigned char *px = malloc(n * d);
    for (size_t i = 0; i < n * d; i++) px[i] = (unsigned char)(i * 2654435761u >> 13);
    unsigned dims[2] = {(unsigned)n, (unsigned)d};
    size_t len = make_idx(buf, 0x08, 2, dims, px, n * d);
    const char *full = write_gz("full.gz", buf, len);
    FILE *f = fopen(full, "rb");
    unsigned char *gz = malloc(len * 2);
    size_t gzlen = fread(gz, 1, len * 2, f);
    fclose(f);
    dpt_dataset ds;
    cr_assert_eq(dpt_load(write_bytes("cut.idx.gz", gz, gzlen / 2), NULL, &ds), DPT_EFORMAT);
    assert_msg_has("cut.idx.gz: gzip data cut short");
    /* corrupt the middle of the deflate stream */
    for (size_t i = gzlen / 3; i < gzlen / 3 + 16; i++) gz[i] ^= 0x5A;
    int rc = dpt_load(write_bytes("bad.idx.gz", gz, gzlen), NULL, &ds);
    cr_assert_eq(rc, DPT_EFORMAT);
    assert_msg_has("bad.idx.gz:");
    free(buf);
    free(px);
    free(gz);
}

Test(idx, count_mismatch)
{
    make_pair();
    unsigned ldims[1] = {2};
    unsigned char ly[2] = {1, 0};
    unsigned char l2[32];
    size_t n = make_idx(l2, 0x08, 1, ldims, ly, 2);
    dpt_dataset ds;
    cr_assert_eq(load_pair(write_bytes("i.idx", img, img_len), write_bytes("l.idx", l2, n), &ds),
                 DPT_EFORMAT);
    assert_msg_has("l.idx: 2 labels, but", "i.idx has 3 images");
    /* labels with two values per item */
    cr_assert_eq(load_pair(tpath("i.idx"), write_bytes("l2.idx", img, img_len), &ds), DPT_EFORMAT);
    assert_msg_has("l2.idx: labels must be one value per item");
}

Test(idx, huge_header_small_gzip)
{
    unsigned char buf[32];
    unsigned dims[2] = {4000000000u, 4000000000u};
    size_t len = make_idx(buf, 0x08, 2, dims, "", 0);
    dpt_dataset ds;
    cr_assert_eq(dpt_load(write_gz("h.gz", buf, len), NULL, &ds), DPT_EFORMAT);
    assert_msg_has("h.gz: truncated");
}

Test(idx, labels_file_only_for_idx)
{
    dpt_load_opts o;
    dpt_load_opts_defaults(&o);
    o.labels_path = "whatever";
    o.format = DPT_FORMAT_CSV;
    dpt_dataset ds;
    cr_assert_eq(dpt_load(write_text("t.csv", "1,2\n"), &o, &ds), DPT_EINVAL);
    assert_msg_has("labels file applies to IDX data only");
}

/* CI installs dataset-fashion-mnist: it must be there and load. */
Test(idx, fashion_mnist, .timeout = 120)
{
    cr_assert(file_exists(FMNIST "/train-images-idx3-ubyte.gz"),
              "Fashion-MNIST is missing: apt-get install dataset-fashion-mnist");
    dpt_dataset tr, te;
    int rc =
        load_pair(FMNIST "/train-images-idx3-ubyte.gz", FMNIST "/train-labels-idx1-ubyte.gz", &tr);
    cr_assert_eq(rc, 0, "%s", dpt_last_error());
    cr_assert_eq(tr.n, 60000);
    cr_assert_eq(tr.d, 784);
    cr_assert_eq(tr.classes, 10);
    assert_layout(&tr);
    size_t count[10] = {0};
    double sum = 0;
    for (size_t i = 0; i < tr.n; i++) {
        count[(int)tr.y[i]]++;
        for (size_t k = 0; k < tr.d; k++) sum += X_at(&tr, i, k);
    }
    for (int c = 0; c < 10; c++) cr_assert_eq(count[c], 6000);
    double mean = sum / (60000.0 * 784);
    cr_assert(mean > 72 && mean < 73.5, "mean pixel %g (Fashion-MNIST's is 72.94)", mean);
    rc = load_pair(FMNIST "/t10k-images-idx3-ubyte.gz", FMNIST "/t10k-labels-idx1-ubyte.gz", &te);
    cr_assert_eq(rc, 0, "%s", dpt_last_error());
    cr_assert_eq(te.n, 10000);
    cr_assert_eq(te.d, 784);
    dpt_dataset_free(&tr);
    dpt_dataset_free(&te);
}

/* Put len bytes of data on standard input through a pipe (they fit its
 * buffer, so the write end closes before the load). */
static void stdin_from(const void *data, size_t len)
{
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    cr_assert_eq(write(fd[1], data, len), (ssize_t)len);
    close(fd[1]);
    cr_assert(dup2(fd[0], 0) == 0);
    close(fd[0]);
}

/* IDX on a pipe (path "-"), plain and gzip: read once from the bytes the
 * format was sniffed from, the same rows as from the file. */
Test(idx, from_a_pipe)
{
    make_pair();
    const char *lp = write_bytes("l.idx", lab, lab_len);
    dpt_dataset a, b;
    cr_assert_eq(load_pair(write_bytes("i.idx", img, img_len), lp, &a), 0, "%s", dpt_last_error());
    stdin_from(img, img_len);
    cr_assert_eq(load_pair("-", lp, &b), 0, "%s", dpt_last_error());
    cr_assert_eq(b.n, a.n);
    cr_assert_eq(b.d, a.d);
    cr_assert_eq(memcmp(a.X, b.X, a.n * a.ld * sizeof(float)), 0);
    cr_assert_eq(memcmp(a.y, b.y, a.n * sizeof(float)), 0);
    dpt_dataset_free(&b);
    /* gzip, sniffed (no labels, no extension) */
    const char *gp = write_gz("i.gz", img, img_len);
    FILE *f = fopen(gp, "rb");
    unsigned char gz[512];
    size_t gzlen = fread(gz, 1, sizeof gz, f);
    fclose(f);
    stdin_from(gz, gzlen);
    cr_assert_eq(dpt_load("-", NULL, &b), 0, "%s", dpt_last_error());
    cr_assert_eq(memcmp(a.X, b.X, a.n * a.ld * sizeof(float)), 0);
    dpt_dataset_free(&b);
    /* a cut gzip stream is named as such, from standard input */
    stdin_from(gz, gzlen / 2);
    cr_assert_eq(dpt_load("-", NULL, &b), DPT_EFORMAT);
    assert_msg_has("<stdin>: gzip data cut short");
    dpt_dataset_free(&a);
}
