/* .dptb: written and mapped back bit for bit with X pointing into the
 * mapping; every corruption refused; and round trips through every
 * writable format give identical rows. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <fcntl.h>

#include "data/io_internal.h"
#include "util.h"

static void teardown(void)
{
    rm_tdir();
}
TestSuite(dptb, .fini = teardown);

static void synth(dpt_dataset *ds, const char *spec)
{
    dpt_synth_spec s;
    cr_assert_eq(dpt_synth_parse(&s, spec), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_synth_generate(&s, ds, 2), 0, "%s", dpt_last_error());
}

static void assert_same(const dpt_dataset *a, const dpt_dataset *b)
{
    cr_assert_eq(a->n, b->n);
    cr_assert_eq(a->d, b->d);
    cr_assert_eq(a->ld, b->ld);
    for (size_t i = 0; i < a->n; i++) {
        cr_assert_eq(memcmp(a->X + i * a->ld, b->X + i * b->ld, a->d * sizeof(float)), 0,
                     "row %zu differs", i);
        cr_assert_eq(memcmp(&a->y[i], &b->y[i], sizeof(float)), 0, "label %zu: %a vs %a", i,
                     a->y[i], b->y[i]);
    }
}

static void save(const dpt_dataset *ds, const char *path)
{
    cr_assert_eq(dpt_save(ds, path, NULL), 0, "%s", dpt_last_error());
}

Test(dptb, round_trip_mapped)
{
    dpt_dataset a, b;
    synth(&a, "teacher-mlp:n=1000,d=37,classes=5");
    const char *p = tpath("a.dptb");
    save(&a, p);
    cr_assert_eq(dpt_load(p, NULL, &b), 0, "%s", dpt_last_error());
    cr_assert_eq(io_dataset_mapped(&b), 1);
    cr_assert_eq((char *)b.X, (const char *)io_dataset_base(&b) + 64,
                 "X points into the mapping after the header");
    assert_layout(&b);
    assert_same(&a, &b);
    cr_assert_eq(b.label_kind, DPT_LABEL_CLASS);
    cr_assert_eq(b.classes, 5);
    /* the mapping is private: rows may be changed in place */
    b.X[0] = 12345.0f;
    dpt_dataset c;
    cr_assert_eq(dpt_load(p, NULL, &c), 0);
    cr_assert_eq(c.X[0], a.X[0]);
    dpt_dataset_free(&a);
    dpt_dataset_free(&b);
    dpt_dataset_free(&c);
}

struct fmt_case {
    char spec[64], ext[16];
};

ParameterizedTestParameters(dptb, round_trip_formats)
{
    static struct fmt_case cases[] = {
        {"linreg:n=777,d=19", ".csv"},
        {"logreg:n=500,d=16", ".csv"},
        {"linreg:n=300,d=5", ".tsv"},
        {"logreg:n=400,d=33", ".svm"},
        {"teacher-mlp:n=300,d=7,classes=4", ".libsvm"},
        {"teacher-mlp:n=200,d=3", ".dptb"},
    };
    return cr_make_param_array(struct fmt_case, cases, sizeof cases / sizeof cases[0]);
}

/* gen -> file -> dptb -> load: the rows of the generator, bit for bit */
ParameterizedTest(struct fmt_case *c, dptb, round_trip_formats)
{
    dpt_dataset a, b, m;
    synth(&a, c->spec);
    char name[32];
    snprintf(name, sizeof name, "x%s", c->ext);
    save(&a, tpath(name));
    cr_assert_eq(dpt_load(tpath(name), NULL, &b), 0, "%s", dpt_last_error());
    assert_same(&a, &b);
    cr_assert_eq(b.label_kind, a.label_kind);
    save(&b, tpath("y.dptb"));
    cr_assert_eq(dpt_load(tpath("y.dptb"), NULL, &m), 0, "%s", dpt_last_error());
    assert_same(&a, &m);
    dpt_dataset_free(&a);
    dpt_dataset_free(&b);
    dpt_dataset_free(&m);
}

/* Written bytes of a small file, for corrupting. */
static size_t small_file(unsigned char *buf, size_t cap)
{
    dpt_dataset a;
    synth(&a, "linreg:n=10,d=3");
    const char *p = tpath("s.dptb");
    save(&a, p);
    dpt_dataset_free(&a);
    FILE *f = fopen(p, "rb");
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

Test(dptb, layout_on_disk)
{
    unsigned char buf[4096];
    size_t n = small_file(buf, sizeof buf);
    /* header 64, 10 rows x 16 floats, 10 labels padded to 16, then version
     * 2's table: the hash of X's one block */
    cr_assert_eq(n, 64 + 10 * 16 * 4 + 16 * 4 + 8);
    cr_assert_eq(memcmp(buf, "DPTB\r\n\x1a\n", 8), 0);
    cr_assert_eq(buf[8], 2);
    uint64_t t;
    memcpy(&t, buf + 64 + 10 * 16 * 4 + 16 * 4, 8);
    cr_assert_eq(t, io_checksum_block(buf + 64, 10 * 16 * 4, 0));
    cr_assert_eq(io_checksum_chain(&t, 10 * 16 * 4), io_checksum(buf + 64, 10 * 16 * 4, 1));
}

struct corrupt {
    size_t at;
    unsigned char xor_;
    char frag[64];
};

ParameterizedTestParameters(dptb, corrupted)
{
    static struct corrupt cases[] = {
        {0, 0x01, "not a .dptb file"},
        {8, 0x02, "corrupt header"},
        {16, 0x01, "corrupt header"},
        {60, 0x40, "corrupt header"},
        {64 + 5, 0x01, "corrupt data in rows 1-10 (checksum mismatch)"},
        {64 + 10 * 64 + 3, 0x80, "corrupt labels or block table (checksum mismatch)"},
        {64 + 10 * 64 + 16 * 4 + 7, 0x01, "corrupt labels or block table (checksum mismatch)"},
    };
    return cr_make_param_array(struct corrupt, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct corrupt *c, dptb, corrupted)
{
    unsigned char buf[4096];
    size_t n = small_file(buf, sizeof buf);
    buf[c->at] ^= c->xor_;
    dpt_dataset ds;
    cr_assert_eq(dpt_load(write_bytes("c.dptb", buf, n), NULL, &ds), DPT_EFORMAT);
    assert_msg_has("c.dptb: ", c->frag);
    cr_assert_null(ds.X);
}

Test(dptb, truncated_and_trailing_and_empty)
{
    unsigned char buf[4096];
    size_t n = small_file(buf, sizeof buf);
    dpt_dataset ds;
    cr_assert_eq(dpt_load(write_bytes("t.dptb", buf, n - 4), NULL, &ds), DPT_EFORMAT);
    assert_msg_has("t.dptb: truncated", "10 x 3");
    cr_assert_eq(dpt_load(write_bytes("t.dptb", buf, n - 8), NULL, &ds), DPT_EFORMAT);
    assert_msg_has("t.dptb: truncated", "10 x 3 rows need 776 bytes, the file has 768");
    cr_assert_eq(dpt_load(write_bytes("t.dptb", buf, n - 12), NULL, &ds), DPT_EFORMAT);
    assert_msg_has("t.dptb: truncated", "10 x 3");
    cr_assert_eq(dpt_load(write_bytes("h.dptb", buf, 40), NULL, &ds), DPT_EFORMAT);
    assert_msg_has("h.dptb: truncated", "header");
    buf[n] = 0;
    cr_assert_eq(dpt_load(write_bytes("l.dptb", buf, n + 1), NULL, &ds), DPT_EFORMAT);
    assert_msg_has("l.dptb: 1 bytes of trailing data");
    cr_assert_eq(dpt_load(write_bytes("e.dptb", buf, 0), NULL, &ds), DPT_EFORMAT);
    assert_msg_has("e.dptb: empty file");
}

Test(dptb, writer_leaves_nothing_on_failure)
{
    dpt_dataset a;
    synth(&a, "linreg:n=10,d=3");
    cr_assert_neq(dpt_save(&a, tpath("no/such/dir/x.dptb"), NULL), 0);
    assert_msg_has("x.dptb");
    cr_assert_neq(dpt_save(&a, tdir(), NULL), 0);
    assert_msg_has("is a directory");
    dpt_save_opts so;
    dpt_save_opts_defaults(&so);
    so.format = DPT_FORMAT_IDX;
    cr_assert_eq(dpt_save(&a, tpath("x.idx"), &so), DPT_ENOTSUP);
    cr_assert(!file_exists(tpath("x.idx")));
    dpt_dataset_free(&a);
}

Test(dptb, csv_writer_header_and_delimiter)
{
    dpt_dataset a, b;
    synth(&a, "linreg:n=3,d=2");
    dpt_save_opts so;
    dpt_save_opts_defaults(&so);
    so.delimiter = ';';
    so.format = DPT_FORMAT_CSV;
    cr_assert_eq(dpt_save(&a, tpath("o.txt"), &so), 0, "%s", dpt_last_error());
    FILE *f = fopen(tpath("o.txt"), "r");
    char line[128];
    cr_assert(fgets(line, sizeof line, f));
    fclose(f);
    cr_assert_str_eq(line, "x1;x2;y\n");
    dpt_load_opts o;
    dpt_load_opts_defaults(&o);
    o.delimiter = ';';
    cr_assert_eq(dpt_load(tpath("o.txt"), &o, &b), 0, "%s", dpt_last_error());
    assert_same(&a, &b);
    dpt_dataset_free(&a);
    dpt_dataset_free(&b);
}

Test(dptb, format_names_and_paths)
{
    dpt_format f;
    cr_assert_eq(dpt_format_parse("libsvm", &f), 0);
    cr_assert_eq(f, DPT_FORMAT_SVMLIGHT);
    cr_assert_eq(dpt_format_parse("parquet", &f), DPT_EINVAL);
    assert_msg_has("'parquet'", "csv, svmlight, idx, dptb");
    cr_assert_eq(dpt_format_from_path("a/b.CSV"), DPT_FORMAT_CSV);
    cr_assert_eq(dpt_format_from_path("train-images-idx3-ubyte.gz"), DPT_FORMAT_IDX);
    cr_assert_eq(dpt_format_from_path("x.svmlight"), DPT_FORMAT_SVMLIGHT);
    cr_assert_eq(dpt_format_from_path("x.dptb"), DPT_FORMAT_DPTB);
    cr_assert_eq(dpt_format_from_path("x.bin"), DPT_FORMAT_AUTO);
    cr_assert_str_eq(dpt_format_name(DPT_FORMAT_IDX), "idx");
}
