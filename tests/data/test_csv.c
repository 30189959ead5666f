/* CSV: the valid variants load to the exact values, and every kind of bad
 * input ends in one message naming the file, line and column. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>

#include "util.h"

static void teardown(void)
{
    rm_tdir();
}
TestSuite(csv, .fini = teardown);

static void load_ok(const char *text, const dpt_load_opts *o, dpt_dataset *ds)
{
    int rc = load_text("t.csv", text, o, ds);
    cr_assert_eq(rc, 0, "load failed: %s", dpt_last_error());
    assert_layout(ds);
}

Test(csv, plain_no_header)
{
    dpt_dataset ds;
    load_ok("1,2,3\n4,5,6\n", NULL, &ds);
    cr_assert_eq(ds.n, 2);
    cr_assert_eq(ds.d, 2);
    cr_assert_eq(X_at(&ds, 0, 0), 1.0f);
    cr_assert_eq(X_at(&ds, 0, 1), 2.0f);
    cr_assert_eq(X_at(&ds, 1, 1), 5.0f);
    cr_assert_eq(ds.y[0], 3.0f);
    cr_assert_eq(ds.y[1], 6.0f);
    cr_assert_eq(ds.label_kind, DPT_LABEL_CLASS);
    cr_assert_eq(ds.classes, 7);
    dpt_dataset_free(&ds);
}

Test(csv, header_detected_crlf_bom_trailing_blank)
{
    dpt_dataset ds;
    load_ok("\xEF\xBB\xBF\"a\",\"b\",label\r\n0.5,-1e-3,1\r\n+2.25,3E2,0\r\n\r\n", NULL, &ds);
    cr_assert_eq(ds.n, 2);
    cr_assert_eq(ds.d, 2);
    cr_assert_eq(X_at(&ds, 0, 0), 0.5f);
    cr_assert_eq(X_at(&ds, 0, 1), -1e-3f);
    cr_assert_eq(X_at(&ds, 1, 0), 2.25f);
    cr_assert_eq(X_at(&ds, 1, 1), 300.0f);
    cr_assert_eq(ds.label_kind, DPT_LABEL_BINARY);
    cr_assert_eq(ds.classes, 2);
    dpt_dataset_free(&ds);
}

Test(csv, no_final_newline_and_spaces_and_quotes)
{
    dpt_dataset ds;
    load_ok("1, 2 ,\"3\"\n 4,5,6.5", NULL, &ds);
    cr_assert_eq(ds.n, 2);
    cr_assert_eq(X_at(&ds, 0, 1), 2.0f);
    cr_assert_eq(ds.y[0], 3.0f);
    cr_assert_eq(ds.y[1], 6.5f);
    cr_assert_eq(ds.label_kind, DPT_LABEL_REAL);
    dpt_dataset_free(&ds);
}

Test(csv, label_col_first_and_none_and_delimiter)
{
    dpt_load_opts o;
    dpt_load_opts_defaults(&o);
    o.label_col = 0;
    o.delimiter = ';';
    dpt_dataset ds;
    load_ok("7;1;2\n8;3;4\n", &o, &ds);
    cr_assert_eq(ds.d, 2);
    cr_assert_eq(ds.y[0], 7.0f);
    cr_assert_eq(X_at(&ds, 1, 0), 3.0f);
    dpt_dataset_free(&ds);
    o.label_col = DPT_LABEL_COL_NONE;
    load_ok("7;1;2\n8;3;4\n", &o, &ds);
    cr_assert_eq(ds.d, 3);
    cr_assert_eq(ds.y[1], 0.0f);
    cr_assert_eq(X_at(&ds, 1, 0), 8.0f);
    dpt_dataset_free(&ds);
}

Test(csv, tsv_extension_means_tab)
{
    dpt_dataset ds;
    cr_assert_eq(load_text("t.tsv", "1\t2\n3\t4\n", NULL, &ds), 0, "%s", dpt_last_error());
    cr_assert_eq(ds.d, 1);
    cr_assert_eq(ds.y[1], 4.0f);
    dpt_dataset_free(&ds);
}

Test(csv, header_forced)
{
    dpt_load_opts o;
    dpt_load_opts_defaults(&o);
    o.header = 1;
    dpt_dataset ds;
    load_ok("0,1,2\n4,5,6\n", &o, &ds);
    cr_assert_eq(ds.n, 1);
    cr_assert_eq(X_at(&ds, 0, 0), 4.0f);
    dpt_dataset_free(&ds);
}

Test(csv, wide_rows_cross_stride)
{
    /* 33 features: stride 48, padding 15 floats */
    char buf[4096];
    size_t k = 0;
    for (int r = 0; r < 3; r++) {
        for (int c = 0; c < 34; c++)
            k += (size_t)sprintf(buf + k, "%d%c", r * 100 + c, c == 33 ? '\n' : ',');
    }
    dpt_dataset ds;
    load_ok(buf, NULL, &ds);
    cr_assert_eq(ds.d, 33);
    cr_assert_eq(ds.ld, 48);
    cr_assert_eq(X_at(&ds, 2, 32), 232.0f);
    cr_assert_eq(ds.y[2], 233.0f);
    dpt_dataset_free(&ds);
}

/* Many rows, parsed by several threads: identical to one thread. */
Test(csv, parallel_equals_serial)
{
    size_t rows = 60000;
    char *text = malloc(rows * 40);
    size_t k = 0;
    for (size_t i = 0; i < rows; i++)
        k += (size_t)sprintf(text + k, "%.7g,%zu,%.3f\n", sin((double)i) * 1e3, i % 13, i * 0.5);
    const char *p = write_text("big.csv", text);
    free(text);
    dpt_load_opts o;
    dpt_load_opts_defaults(&o);
    dpt_dataset a, b;
    o.nthreads = 1;
    cr_assert_eq(dpt_load(p, &o, &a), 0, "%s", dpt_last_error());
    o.nthreads = 5;
    cr_assert_eq(dpt_load(p, &o, &b), 0, "%s", dpt_last_error());
    cr_assert_eq(a.n, rows);
    cr_assert_eq(memcmp(a.X, b.X, a.n * a.ld * sizeof(float)), 0);
    cr_assert_eq(memcmp(a.y, b.y, a.n * sizeof(float)), 0);
    cr_assert_eq(X_at(&a, 12345, 1), (float)(12345 % 13));
    dpt_dataset_free(&a);
    dpt_dataset_free(&b);
}

/* An error deep in a big file is reported at its own line by any thread. */
Test(csv, parallel_error_line)
{
    size_t rows = 50000;
    char *text = malloc(rows * 16);
    size_t k = 0;
    for (size_t i = 0; i < rows; i++)
        k += (size_t)sprintf(text + k, i == 43210 || i == 49000 ? "1,x%zu\n" : "1,%zu\n", i);
    const char *p = write_text("bad.csv", text);
    free(text);
    dpt_load_opts o;
    dpt_load_opts_defaults(&o);
    o.nthreads = 4;
    dpt_dataset ds;
    cr_assert_eq(dpt_load(p, &o, &ds), DPT_EFORMAT);
    assert_msg_has("bad.csv:43211:3:", "field 2", "'x43210'", "not a number");
    cr_assert_null(ds.X);
}

struct bad_csv {
    char text[96];
    char frag1[64], frag2[64];
    int code;
};

ParameterizedTestParameters(csv, bad_input)
{
    static struct bad_csv cases[] = {
        {"", "t.csv: empty file", "", DPT_EFORMAT},
        {"\n\n", "t.csv: empty file", "", DPT_EFORMAT},
        {"a,b,c\n", "t.csv: header only", "", DPT_EFORMAT},
        {"1,2,3\n4,5\n", "t.csv:2:4:", "2 fields, expected 3", DPT_EFORMAT},
        {"1,2,3\n4,5,6,7\n", "t.csv:2:6:", "4 fields, expected 3", DPT_EFORMAT},
        {"x,y\n1,2\n3,4,5\n", "t.csv:3:4:", "expected 2 (as in the header)", DPT_EFORMAT},
        {"1,2,3\n4,abc,6\n", "t.csv:2:3:", "field 2: 'abc' is not a number", DPT_EFORMAT},
        {"1,2,3\n4,nan,6\n", "t.csv:2:3:", "not a finite number", DPT_EFORMAT},
        {"1,2,3\n4,-Inf,6\n", "t.csv:2:3:", "not a finite number", DPT_EFORMAT},
        {"1,2,3\n4,1e39,6\n", "t.csv:2:3:", "'1e39' is out of float range", DPT_EFORMAT},
        {"1,2,3\n4,5x,6\n", "t.csv:2:3:", "trailing characters", DPT_EFORMAT},
        {"1,2,3\n4,,6\n", "t.csv:2:3:", "field 2 is empty", DPT_EFORMAT},
        {"1,2,3\n\n4,5,6\n", "t.csv:2:1:", "empty line", DPT_EFORMAT},
        {"1;2;3\n4;5;6\n", "t.csv:1:", "';' as delimiter", DPT_EFORMAT},
        {"1,2\n3;4\n", "t.csv:2:1: field 1: '3;4'", "';' as delimiter", DPT_EFORMAT},
        {"1,2\n3,4\x01\n", "t.csv: binary data, not CSV text (byte 0x01 at offset 7)", "",
         DPT_EFORMAT},
        {"1,2\n3,\"4\n", "t.csv:2:3:", "field 2", DPT_EFORMAT},
        {"7\n8\n", "t.csv:1:", "only one column", DPT_EFORMAT},
        {"1,2\n3,0x10\n", "t.csv:2:3:", "field 2", DPT_EFORMAT},
        {"1,2\n3,1e\n", "t.csv:2:3:", "not a number", DPT_EFORMAT},
    };
    return cr_make_param_array(struct bad_csv, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct bad_csv *c, csv, bad_input)
{
    dpt_dataset ds;
    int rc = load_text("t.csv", c->text, NULL, &ds);
    cr_assert_eq(rc, c->code, "'%s': rc %d (%s)", c->text, rc, dpt_last_error());
    if (c->frag2[0])
        assert_msg_has(c->frag1, c->frag2);
    else
        assert_msg_has(c->frag1);
    cr_assert_null(ds.X);
}

Test(csv, binary_garbage)
{
    unsigned char junk[512];
    for (int i = 0; i < 512; i++) junk[i] = (unsigned char)(i * 7919 + 13);
    dpt_load_opts o;
    dpt_load_opts_defaults(&o);
    o.format = DPT_FORMAT_CSV;
    dpt_dataset ds;
    cr_assert_eq(dpt_load(write_bytes("junk.csv", junk, sizeof junk), &o, &ds), DPT_EFORMAT);
    assert_msg_has("junk.csv: binary data, not CSV text (byte 0x");
}

/* A file of NULs read as "header only", and one of random bytes as some
 * bad field far in: both are binary, said up front with the first
 * offending byte, whatever the format is taken to be. */
Test(csv, binary_files_are_named_binary)
{
    size_t len = (size_t)4 << 20;
    unsigned char *b = calloc(len, 1);
    cr_assert(b);
    const char *nul = write_bytes("zeros", b, len);
    dpt_dataset ds;
    cr_assert_eq(dpt_load(nul, NULL, &ds), DPT_EFORMAT);
    assert_msg_has("zeros: binary data, not CSV text (byte 0x00 at offset 0)");
    dpt_load_opts o;
    dpt_load_opts_defaults(&o);
    o.format = DPT_FORMAT_SVMLIGHT;
    cr_assert_eq(dpt_load(nul, &o, &ds), DPT_EFORMAT);
    assert_msg_has("zeros: binary data, not svmlight text (byte 0x00 at offset 0)");
    /* random bytes after a plausible first line */
    uint64_t x = 42;
    for (size_t i = 0; i < len; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        b[i] = (unsigned char)(x >> 56);
    }
    memcpy(b, "1,2,3\n", 6);
    const char *rnd = write_bytes("random.csv", b, len);
    cr_assert_eq(dpt_load(rnd, NULL, &ds), DPT_EFORMAT);
    assert_msg_has("random.csv: binary data, not CSV text (byte 0x");
    free(b);
}

/* A line may hold at most 64 MiB: one that long is named, not parsed. */
Test(csv, overlong_line_is_refused, .timeout = 60)
{
    size_t len = ((size_t)64 << 20) + 10;
    char *b = malloc(len);
    cr_assert(b);
    memcpy(b, "1,2\n3,4\n", 8);
    memset(b + 8, '1', len - 8);
    b[len - 1] = '\n';
    dpt_dataset ds;
    cr_assert_eq(dpt_load(write_bytes("long.csv", b, len), NULL, &ds), DPT_EFORMAT);
    assert_msg_has("long.csv:3: line longer than 64 MiB");
    free(b);
}

Test(csv, missing_file_and_directory)
{
    dpt_dataset ds;
    cr_assert_eq(dpt_load(tpath("nope.csv"), NULL, &ds), DPT_EIO);
    assert_msg_has("nope.csv: No such file or directory");
    cr_assert_eq(dpt_load(tdir(), NULL, &ds), DPT_EIO);
    assert_msg_has("is a directory");
}

Test(csv, too_large_for_memory)
{
    dpt_load_opts o;
    dpt_load_opts_defaults(&o);
    o.max_bytes = 500;
    dpt_dataset ds;
    cr_assert_eq(
        load_text("t.csv", "1,2\n3,4\n5,6\n7,8\n9,10\n11,12\n13,14\n15,16\n17,18\n", &o, &ds),
        DPT_ENOMEM);
    assert_msg_has("t.csv: 9 rows x 1 feature need 0.6 kB as dense float32; 0.5 kB allowed", "");
}

Test(csv, features_must_match)
{
    dpt_load_opts o;
    dpt_load_opts_defaults(&o);
    o.features = 3;
    dpt_dataset ds;
    cr_assert_eq(load_text("t.csv", "1,2,3\n", &o, &ds), DPT_EFORMAT);
    assert_msg_has("2 features, expected 3");
}

Test(csv, label_col_out_of_range)
{
    dpt_load_opts o;
    dpt_load_opts_defaults(&o);
    o.label_col = 5;
    dpt_dataset ds;
    cr_assert_neq(load_text("t.csv", "1,2,3\n", &o, &ds), 0);
    assert_msg_has("label column 6", "3 fields");
}

Test(csv, header_like_numbers_need_flag)
{
    /* pandas writes integer column names: the header is not guessed away */
    dpt_dataset ds;
    cr_assert_eq(load_text("t.csv", "0,1,label\n5,6,1\n", NULL, &ds), DPT_EFORMAT);
    assert_msg_has("t.csv:1:5:", "'label'");
}

/* The library speaks of the data, never of the CLI's flags: those are the
 * CLI's to add. */
Test(csv, messages_name_no_flags)
{
    static const char *const texts[] = {"x1,x2,y\n1,2,3\n", "1;2;3\n4;5;6\n", "1,2\n3;4\n"};
    dpt_load_opts o;
    dpt_load_opts_defaults(&o);
    o.header = 0;
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        dpt_dataset ds;
        cr_assert_eq(load_text("t.csv", texts[i], &o, &ds), DPT_EFORMAT);
        cr_assert(!strstr(dpt_last_error(), "--"), "%s", dpt_last_error());
    }
    dpt_dataset ds;
    cr_assert_eq(load_text("t.csv", "x1,x2,y\n1,2,3\n", &o, &ds), DPT_EFORMAT);
    assert_msg_has("t.csv:1:1: field 1: 'x1' is not a number (line 1 may be a header)");
    cr_assert_eq(load_text("t.svm", "1\n0 # nothing\n", NULL, &ds), DPT_EFORMAT);
    assert_msg_has("no feature count was given");
    cr_assert(!strstr(dpt_last_error(), "--"), "%s", dpt_last_error());
    dpt_synth_spec spec;
    cr_assert_eq(dpt_synth_parse(&spec, "linreg:q=1"), DPT_EINVAL);
    cr_assert(!strstr(dpt_last_error(), "--"), "%s", dpt_last_error());
}
