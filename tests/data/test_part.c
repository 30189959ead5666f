/* Per-rank loading: generating or reading part of the rows. Every held row
 * equals the whole generation bit for bit, the rows left out are never
 * touched (mincore), a .dptb version 2 file is checked block by block so
 * damage outside the part goes unread, and operations that need every row
 * refuse a partial set. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdint.h>
#include <sys/mman.h>

#include "data/io_internal.h"
#include "util.h"

static void teardown(void)
{
    rm_tdir();
}
TestSuite(part, .fini = teardown);

#define MAXR 64

static void spec_of(dpt_synth_spec *s, const char *text)
{
    cr_assert_eq(dpt_synth_parse(s, text), 0, "%s", dpt_last_error());
}

/* Gaps between the ranges of a part of n rows (the rows left out). */
static size_t gaps_of(const dpt_row_range *r, size_t nr, size_t n, dpt_row_range *g)
{
    size_t k = 0, at = 0;
    for (size_t i = 0; i <= nr; i++) {
        size_t lo = i < nr ? r[i].lo : n;
        if (lo > at) g[k++] = (dpt_row_range){at, lo};
        if (i < nr) at = r[i].hi;
    }
    return k;
}

/* Pages of X wholly inside rows [lo, hi) that are resident; *pages gets how
 * many whole pages there are. */
static size_t resident_pages(const dpt_dataset *ds, size_t lo, size_t hi, size_t *pages)
{
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)(ds->X + lo * ds->ld) + pg - 1) / pg * pg;
    uintptr_t b = (uintptr_t)(ds->X + hi * ds->ld) / pg * pg;
    *pages = 0;
    if (b <= a) return 0;
    size_t np = (b - a) / pg, res = 0;
    unsigned char *vec = malloc(np);
    cr_assert_eq(mincore((void *)a, b - a, vec), 0, "mincore failed");
    for (size_t i = 0; i < np; i++) res += vec[i] & 1;
    free(vec);
    *pages = np;
    return res;
}

/* ---- synthetic data per rank ---- */

struct layout {
    char name[24];
    size_t nr;
    dpt_row_range r[MAXR];
    size_t merged; /* ranges after merging */
};

static const struct layout layouts[] = {
    {"one range", 1, {{100, 700}}, 1},
    {"mid-block", 3, {{5, 21}, {40, 41}, {77, 130}}, 3},
    {"single row", 1, {{500, 501}}, 1},
    {"last row", 1, {{999, 1000}}, 1},
    {"first and last", 2, {{0, 1}, {999, 1000}}, 2},
    {"adjacent", 3, {{10, 20}, {20, 33}, {33, 47}}, 1},
    {"head", 1, {{0, 333}}, 1},
    {"tail", 1, {{667, 1000}}, 1},
};

/* many small ranges, some adjacent, starting and ending anywhere */
static size_t many_ranges(dpt_row_range *r)
{
    size_t k = 0, at = 3;
    for (int i = 0; k < MAXR && at < 1000; i++) {
        size_t len = 1 + (size_t)(i * 7) % 19, gap = (size_t)(i * 5) % 23;
        if (at + len > 1000) len = 1000 - at;
        r[k++] = (dpt_row_range){at, at + len};
        at += len + gap;
    }
    return k;
}

struct synth_case {
    char spec[96];
};

ParameterizedTestParameters(part, synth_rows_identical)
{
    static struct synth_case cases[] = {
        {"linreg:n=1000,d=64,seed=3"},
        {"logreg:n=1000,d=33,seed=4"},
        {"teacher-mlp:n=1000,d=10,seed=5"},
        {"teacher-mlp:n=1000,d=7,hidden=12/9,seed=6"},
        {"teacher-mlp:n=1000,d=20,hidden=16/8,classes=5,seed=7"},
    };
    return cr_make_param_array(struct synth_case, cases, sizeof cases / sizeof cases[0]);
}

/* One layout: residency first (nothing may read the unheld rows before),
 * then every held row against the full generation. */
static void check_layout(const dpt_synth_spec *s, const dpt_dataset *full, const char *name,
                         const dpt_row_range *r, size_t nr, size_t merged)
{
    dpt_dataset p;
    cr_assert_eq(dpt_synth_generate_part(s, &p, 3, r, nr), 0, "%s", dpt_last_error());
    cr_assert_eq(p.n, full->n);
    cr_assert_eq(p.ld, full->ld);
    cr_assert_eq(p.label_kind, full->label_kind);
    cr_assert_eq(p.classes, full->classes);
    cr_assert_not_null(p.part, "%s: part kept", name);
    cr_assert_eq(p.npart, merged, "%s: %zu ranges after merging", name, p.npart);
    cr_assert_eq(io_dataset_mapped(&p), 1);
    cr_assert_eq((uintptr_t)p.X % 64, 0);
    size_t held = 0;
    for (size_t i = 0; i < nr; i++) held += r[i].hi - r[i].lo;
    cr_assert_eq(dpt_dataset_rows_held(&p), held);
    for (size_t i = 0; i < nr; i++) cr_assert(dpt_dataset_holds(&p, r[i].lo, r[i].hi));

    dpt_row_range g[MAXR + 1];
    size_t ng = gaps_of(p.part, p.npart, p.n, g), whole = 0;
    for (size_t i = 0; i < ng; i++) {
        size_t pages;
        cr_assert_eq(resident_pages(&p, g[i].lo, g[i].hi, &pages), 0,
                     "%s: rows %zu-%zu: unheld pages were touched", name, g[i].lo, g[i].hi);
        whole += pages;
    }
    /* mincore does see the held pages: the check above is not vacuous */
    size_t pages, res = resident_pages(&p, p.part[0].lo, p.part[0].hi, &pages);
    cr_assert_eq(res, pages, "%s: held pages not resident", name);
    if (!strcmp(name, "one range") || !strcmp(name, "single row"))
        cr_assert_gt(whole, 0, "%s: no whole unheld page to check", name);

    for (size_t i = 0; i < p.n; i++) {
        if (!dpt_dataset_holds(&p, i, i + 1)) {
            cr_assert_eq(p.y[i], 0.0f, "%s: label of unheld row %zu", name, i);
            continue;
        }
        cr_assert_eq(memcmp(p.X + i * p.ld, full->X + i * full->ld, p.ld * sizeof(float)), 0,
                     "%s: row %zu differs", name, i);
        cr_assert_eq(memcmp(&p.y[i], &full->y[i], sizeof(float)), 0, "%s: label %zu: %a vs %a",
                     name, i, p.y[i], full->y[i]);
    }
    dpt_dataset_free(&p);
    cr_assert_null(p.part);
}

ParameterizedTest(struct synth_case *c, part, synth_rows_identical)
{
    dpt_synth_spec s;
    spec_of(&s, c->spec);
    dpt_dataset full;
    cr_assert_eq(dpt_synth_generate(&s, &full, 2), 0, "%s", dpt_last_error());
    for (size_t l = 0; l < sizeof layouts / sizeof *layouts; l++)
        check_layout(&s, &full, layouts[l].name, layouts[l].r, layouts[l].nr, layouts[l].merged);
    dpt_row_range r[MAXR];
    size_t nr = many_ranges(r), merged = 1;
    for (size_t i = 1; i < nr; i++) merged += r[i].lo > r[i - 1].hi;
    cr_assert_gt(nr, 20);
    cr_assert_lt(merged, nr, "the many ranges include adjacent ones");
    check_layout(&s, &full, "many", r, nr, merged);
    dpt_dataset_free(&full);
}

/* A wide teacher whose unheld rows span many pages, at several thread counts. */
Test(part, synth_large_untouched)
{
    dpt_synth_spec s;
    spec_of(&s, "teacher-mlp:n=20000,d=100,hidden=8,classes=3,seed=2");
    dpt_dataset full;
    cr_assert_eq(dpt_synth_generate(&s, &full, 2), 0);
    dpt_row_range r[] = {{1003, 2011}, {9000, 9017}, {15001, 19999}};
    check_layout(&s, &full, "large", r, 3, 3);
    dpt_dataset_free(&full);
}

Test(part, synth_whole_and_empty)
{
    dpt_synth_spec s;
    spec_of(&s, "teacher-mlp:n=300,d=5,hidden=4,seed=8");
    dpt_dataset a, b, e;
    cr_assert_eq(dpt_synth_generate(&s, &a, 1), 0);
    /* ranges covering every row: the whole generation, no part */
    dpt_row_range all[] = {{0, 100}, {100, 300}};
    cr_assert_eq(dpt_synth_generate_part(&s, &b, 2, all, 2), 0, "%s", dpt_last_error());
    cr_assert_null(b.part);
    cr_assert_eq(io_dataset_mapped(&b), 0);
    cr_assert_eq(memcmp(a.X, b.X, a.n * a.ld * 4), 0);
    cr_assert_eq(memcmp(a.y, b.y, a.n * 4), 0);
    /* a part of no ranges holds no rows */
    dpt_row_range none[1];
    cr_assert_eq(dpt_synth_generate_part(&s, &e, 2, none, 0), 0, "%s", dpt_last_error());
    cr_assert_not_null(e.part);
    cr_assert_eq(e.npart, 0);
    cr_assert_eq(dpt_dataset_rows_held(&e), 0);
    cr_assert(!dpt_dataset_holds(&e, 0, 1));
    dpt_dataset_free(&a);
    dpt_dataset_free(&b);
    dpt_dataset_free(&e);
}

struct bad_part {
    size_t nr;
    dpt_row_range r[3];
    char frag[48];
};

ParameterizedTestParameters(part, synth_bad_parts)
{
    static struct bad_part cases[] = {
        {2, {{50, 60}, {10, 20}}, "range 2 of 2 [10, 20) is not sorted"},
        {2, {{10, 30}, {20, 40}}, "range 2 of 2 [20, 40) overlaps range 1"},
        {2, {{10, 30}, {10, 12}}, "overlaps"},
        {1, {{90, 101}}, "range 1 of 1 [90, 101) lies beyond the 100 rows"},
        {1, {{100, 101}}, "lies beyond the 100 rows"},
        {2, {{0, 10}, {20, 20}}, "range 2 of 2 [20, 20) is empty"},
        {1, {{7, 3}}, "range 1 of 1 [7, 3) is empty"},
    };
    return cr_make_param_array(struct bad_part, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct bad_part *c, part, synth_bad_parts)
{
    dpt_synth_spec s;
    spec_of(&s, "linreg:n=100,d=3");
    dpt_dataset ds;
    cr_assert_eq(dpt_synth_generate_part(&s, &ds, 2, c->r, c->nr), DPT_EINVAL);
    assert_msg_has("synthetic data: row ", c->frag);
    cr_assert_null(ds.X);
    cr_assert_null(ds.part);
}

/* ---- .dptb version 2 read per rank ----
 * 20000 x 40 floats: rows of 192 bytes, so the 1 MiB blocks of X (four:
 * three whole, one short) start and end mid-row. */

#define BN      20000
#define ROWB    (48 * 4)
#define BLOCK_B ((size_t)1 << 20)

static void big(dpt_dataset *ds)
{
    dpt_synth_spec s;
    spec_of(&s, "teacher-mlp:n=20000,d=40,hidden=6,classes=4,seed=11");
    cr_assert_eq(dpt_synth_generate(&s, ds, 2), 0, "%s", dpt_last_error());
    cr_assert_eq(ds->ld * 4, ROWB);
}

static unsigned char *read_all(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    cr_assert(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    unsigned char *b = malloc(*len + 16);
    cr_assert_eq(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

/* The big file written once, its bytes returned (to corrupt and rewrite). */
static unsigned char *big_file(dpt_dataset *ds, size_t *len)
{
    big(ds);
    cr_assert_eq(dpt_save(ds, tpath("big.dptb"), NULL), 0, "%s", dpt_last_error());
    return read_all(tpath("big.dptb"), len);
}

static int load_part(const char *p, const dpt_row_range *r, size_t nr, dpt_dataset *ds)
{
    dpt_load_opts o;
    dpt_load_opts_defaults(&o);
    o.part = r;
    o.npart = nr;
    o.nthreads = 2;
    return dpt_load(p, &o, ds);
}

/* Held rows equal the source; unheld labels read 0. */
static void assert_held_rows(const dpt_dataset *a, const dpt_dataset *b)
{
    cr_assert_eq(a->n, b->n);
    cr_assert_eq(a->ld, b->ld);
    for (size_t i = 0; i < a->n; i++) {
        if (!dpt_dataset_holds(b, i, i + 1)) {
            cr_assert_eq(b->y[i], 0.0f, "label of unheld row %zu", i);
            continue;
        }
        cr_assert_eq(memcmp(a->X + i * a->ld, b->X + i * b->ld, a->ld * 4), 0, "row %zu", i);
        cr_assert_eq(memcmp(&a->y[i], &b->y[i], 4), 0, "label %zu", i);
    }
}

Test(part, dptb_v2_layout_and_round_trip)
{
    dpt_dataset a, b;
    size_t len;
    unsigned char *buf = big_file(&a, &len);
    size_t xbytes = (size_t)BN * ROWB, nb = xbytes / BLOCK_B + 1;
    cr_assert_eq(nb, 4);
    size_t tab = 64 + xbytes + ((size_t)BN + 15) / 16 * 16 * 4;
    cr_assert_eq(len, tab + nb * 8, "header, X, padded labels, then the table alone");
    cr_assert_eq(buf[8], 2);
    uint64_t t[4];
    memcpy(t, buf + tab, sizeof t);
    for (size_t k = 0; k < nb; k++)
        cr_assert_eq(t[k], io_checksum_block(a.X, xbytes, k), "table entry %zu", k);
    /* the header's checksum keeps its meaning: io_checksum(X), from the table alone */
    uint64_t hx = io_checksum_chain(t, xbytes), h48;
    cr_assert_eq(hx, io_checksum(a.X, xbytes, 3));
    memcpy(&h48, buf + 48, 8);
    cr_assert_eq(h48, hx * 0x9E3779B97F4A7C15ULL ^ io_checksum(a.y, BN * 4, 1));
    cr_assert_eq(dpt_load(tpath("big.dptb"), NULL, &b), 0, "%s", dpt_last_error());
    cr_assert_null(b.part);
    assert_held_rows(&a, &b);
    cr_assert_eq(b.classes, 4);
    free(buf);
    dpt_dataset_free(&a);
    dpt_dataset_free(&b);
}

/* io_checksum's values, from the pieces, over lengths around the block
 * size; and the values themselves, as the code before the pieces gave them
 * (so version-1 files still check). */
Test(part, checksum_pieces)
{
    size_t lens[] = {0, 1, 31, 32, 4097, BLOCK_B - 1, BLOCK_B, BLOCK_B + 1, 3 * BLOCK_B + 77};
    static const uint64_t before[] = {
        0x9b435154786d78bfULL, 0xd9e7f1ac9e3aafa8ULL, 0x35738824fe4993d3ULL,
        0x0a0955685a7a15a6ULL, 0xc1f819acf8a2e1cbULL, 0x3bcddb04644cefc4ULL,
        0x78030151b113b56dULL, 0xcf3c48a93ab282faULL, 0x0a22381c98c11b2eULL,
    };
    unsigned char *p = malloc(3 * BLOCK_B + 77);
    for (size_t i = 0; i < 3 * BLOCK_B + 77; i++) p[i] = (unsigned char)(i * 131 + (i >> 9));
    for (size_t c = 0; c < sizeof lens / sizeof *lens; c++) {
        size_t nb = io_checksum_blocks(lens[c]);
        cr_assert_eq(nb, lens[c] / BLOCK_B + 1);
        uint64_t t[5], u[5];
        for (size_t k = 0; k < nb; k++) t[k] = io_checksum_block(p, lens[c], k);
        io_checksum_table(p, lens[c], u, 3);
        cr_assert_eq(memcmp(t, u, nb * 8), 0);
        cr_assert_eq(io_checksum_chain(t, lens[c]), io_checksum(p, lens[c], 1), "len %zu", lens[c]);
        cr_assert_eq(io_checksum(p, lens[c], 1), io_checksum(p, lens[c], 4));
        cr_assert_eq(io_checksum(p, lens[c], 2), before[c], "len %zu", lens[c]);
    }
    free(p);
}

Test(part, dptb_partial_skips_damage_elsewhere)
{
    dpt_dataset a, b;
    size_t len;
    unsigned char *buf = big_file(&a, &len);
    /* rows 6000-6999 lie in block 1 alone; damage blocks 0 and 2 */
    buf[64 + 100 * ROWB + 5] ^= 0x10;
    buf[64 + 15000 * ROWB + 7] ^= 0x01;
    const char *p = write_bytes("dmg.dptb", buf, len);
    dpt_row_range r[] = {{6000, 7000}};
    cr_assert_eq(load_part(p, r, 1, &b), 0, "%s", dpt_last_error());
    cr_assert_eq(b.npart, 1);
    cr_assert_eq(b.part[0].lo, 6000);
    cr_assert_eq(b.part[0].hi, 7000);
    cr_assert_eq(dpt_dataset_rows_held(&b), 1000);
    assert_held_rows(&a, &b);
    /* the mapping stays private: held rows change in place, the file does not */
    b.X[6000 * b.ld] = 42.0f;
    dpt_dataset_free(&b);
    /* reading everything finds the first damaged block, named by its rows */
    cr_assert_eq(dpt_load(p, NULL, &b), DPT_EFORMAT);
    assert_msg_has("dmg.dptb: corrupt data in rows 1-5462 (checksum mismatch)");
    cr_assert_null(b.X);
    /* a part reaching into block 2 finds that one */
    dpt_row_range r2[] = {{6000, 6001}, {12000, 12001}};
    cr_assert_eq(load_part(p, r2, 2, &b), DPT_EFORMAT);
    assert_msg_has("dmg.dptb: corrupt data in rows 10923-16384 (checksum mismatch)");
    free(buf);
    dpt_dataset_free(&a);
}

Test(part, dptb_partial_many_ranges)
{
    dpt_dataset a, b;
    size_t len;
    unsigned char *buf = big_file(&a, &len);
    dpt_row_range r[] = {{0, 1},         {5461, 5462},   {5462, 5470},  {8000, 8100},
                         {10922, 10923}, {19000, 19999}, {19999, 20000}};
    cr_assert_eq(load_part(tpath("big.dptb"), r, 7, &b), 0, "%s", dpt_last_error());
    cr_assert_eq(b.npart, 5, "adjacent ranges merged");
    cr_assert_eq(b.part[1].lo, 5461);
    cr_assert_eq(b.part[1].hi, 5470);
    cr_assert_eq(b.part[4].lo, 19000);
    cr_assert_eq(b.part[4].hi, 20000);
    assert_held_rows(&a, &b);
    cr_assert_eq(dpt_dataset_check_labels(&b, DPT_LABEL_CLASS, NULL), 0, "%s", dpt_last_error());
    dpt_dataset_free(&b);
    /* ranges covering every row: a whole load */
    dpt_row_range all[] = {{0, 7}, {7, BN}};
    cr_assert_eq(load_part(tpath("big.dptb"), all, 2, &b), 0, "%s", dpt_last_error());
    cr_assert_null(b.part);
    assert_held_rows(&a, &b);
    dpt_dataset_free(&b);
    /* a bad part names the file */
    dpt_row_range bad[] = {{10, 20}, {15, 30}};
    cr_assert_eq(load_part(tpath("big.dptb"), bad, 2, &b), DPT_EINVAL);
    assert_msg_has("big.dptb: row range 2 of 2 [15, 30) overlaps");
    dpt_row_range far[] = {{10, BN + 1}};
    cr_assert_eq(load_part(tpath("big.dptb"), far, 1, &b), DPT_EINVAL);
    assert_msg_has("big.dptb: row range 1 of 1", "beyond the 20000 rows");
    cr_assert_null(b.X);
    free(buf);
    dpt_dataset_free(&a);
}

Test(part, dptb_partial_damage_in_part)
{
    dpt_dataset a, b;
    size_t len;
    unsigned char *buf = big_file(&a, &len);
    buf[64 + 6500 * ROWB + 3] ^= 0x04;
    const char *p = write_bytes("d.dptb", buf, len);
    dpt_row_range r[] = {{6400, 6600}};
    cr_assert_eq(load_part(p, r, 1, &b), DPT_EFORMAT);
    assert_msg_has("d.dptb: corrupt data in rows 5462-10923 (checksum mismatch)");
    cr_assert_null(b.X);
    cr_assert_null(b.part);
    free(buf);
    dpt_dataset_free(&a);
}

Test(part, dptb_table_and_labels_checked)
{
    dpt_dataset a, b;
    size_t len;
    unsigned char *buf = big_file(&a, &len);
    size_t tab = len - 4 * 8;
    dpt_row_range r[] = {{6000, 7000}};
    /* the table entry of a block the part never reads */
    buf[tab + 3 * 8 + 2] ^= 0x20;
    cr_assert_eq(load_part(write_bytes("t.dptb", buf, len), r, 1, &b), DPT_EFORMAT);
    assert_msg_has("t.dptb: corrupt labels or block table (checksum mismatch)");
    buf[tab + 3 * 8 + 2] ^= 0x20;
    /* the label of a row outside the part */
    size_t y0 = 64 + (size_t)BN * ROWB;
    buf[y0 + 4 * 15000 + 1] ^= 0x01;
    cr_assert_eq(load_part(write_bytes("l.dptb", buf, len), r, 1, &b), DPT_EFORMAT);
    assert_msg_has("l.dptb: corrupt labels or block table (checksum mismatch)");
    cr_assert_eq(dpt_load(tpath("l.dptb"), NULL, &b), DPT_EFORMAT);
    assert_msg_has("l.dptb: corrupt labels or block table (checksum mismatch)");
    buf[y0 + 4 * 15000 + 1] ^= 0x01;
    /* truncated inside the table, trailing bytes after it */
    cr_assert_eq(load_part(write_bytes("c.dptb", buf, len - 5), r, 1, &b), DPT_EFORMAT);
    assert_msg_has("c.dptb: truncated: 20000 x 40 rows need", "the file has");
    cr_assert_eq(load_part(write_bytes("c.dptb", buf, len - 32), r, 1, &b), DPT_EFORMAT);
    assert_msg_has("c.dptb: truncated");
    memset(buf + len, 0, 8);
    cr_assert_eq(load_part(write_bytes("e.dptb", buf, len + 8), r, 1, &b), DPT_EFORMAT);
    assert_msg_has("e.dptb: 8 bytes of trailing data after the block table");
    cr_assert_eq(load_part(write_bytes("ok.dptb", buf, len), r, 1, &b), 0, "%s", dpt_last_error());
    dpt_dataset_free(&b);
    free(buf);
    dpt_dataset_free(&a);
}

/* A non-finite label outside the part is neither read nor seen. */
Test(part, dptb_labels_of_held_rows_only)
{
    dpt_dataset a, b;
    dpt_synth_spec s;
    spec_of(&s, "linreg:n=100,d=3");
    cr_assert_eq(dpt_synth_generate(&s, &a, 1), 0);
    a.y[5] = NAN;
    cr_assert_eq(dpt_save(&a, tpath("n.dptb"), NULL), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_load(tpath("n.dptb"), NULL, &b), DPT_EFORMAT);
    assert_msg_has("n.dptb: label of row 6 is not finite");
    dpt_row_range r[] = {{0, 5}, {6, 100}};
    cr_assert_eq(load_part(tpath("n.dptb"), r, 2, &b), 0, "%s", dpt_last_error());
    cr_assert_eq(b.y[5], 0.0f);
    cr_assert_eq(dpt_dataset_check_labels(&b, DPT_LABEL_REAL, NULL), 0, "%s", dpt_last_error());
    dpt_dataset_free(&b);
    dpt_row_range r2[] = {{3, 9}};
    cr_assert_eq(load_part(tpath("n.dptb"), r2, 1, &b), DPT_EFORMAT);
    assert_msg_has("n.dptb: label of row 6 is not finite");
    dpt_dataset_free(&a);
}

/* Version 1 (no table) still loads, whole: the part is ignored. */
Test(part, dptb_version1_read_whole)
{
    dpt_dataset a, b;
    size_t len;
    unsigned char *buf = big_file(&a, &len);
    len -= 4 * 8;
    buf[8] = 1;
    uint64_t hh = io_checksum(buf, 56, 1);
    memcpy(buf + 56, &hh, 8);
    const char *p = write_bytes("v1.dptb", buf, len);
    dpt_row_range r[] = {{6000, 7000}};
    cr_assert_eq(load_part(p, r, 1, &b), 0, "%s", dpt_last_error());
    cr_assert_null(b.part);
    assert_held_rows(&a, &b);
    dpt_dataset_free(&b);
    cr_assert_eq(dpt_load(p, NULL, &b), 0, "%s", dpt_last_error());
    assert_held_rows(&a, &b);
    dpt_dataset_free(&b);
    size_t n;
    cr_assert_eq(dpt_dptb_rows(p, &n), 0);
    cr_assert_eq(n, BN);
    /* its one checksum covers everything, the part included or not */
    buf[64 + 15000 * ROWB] ^= 0x01;
    cr_assert_eq(load_part(write_bytes("v1c.dptb", buf, len), r, 1, &b), DPT_EFORMAT);
    assert_msg_has("v1c.dptb: corrupt data (checksum mismatch)");
    /* a version-1 file with a table is trailing data */
    cr_assert_eq(dpt_load(write_bytes("v1t.dptb", buf, len + 32), NULL, &b), DPT_EFORMAT);
    assert_msg_has("v1t.dptb: 32 bytes of trailing data after the rows");
    buf[8] = 3;
    hh = io_checksum(buf, 56, 1);
    memcpy(buf + 56, &hh, 8);
    cr_assert_eq(dpt_load(write_bytes("v3.dptb", buf, len), NULL, &b), DPT_EFORMAT);
    assert_msg_has("v3.dptb: .dptb version 3, this dpt reads versions 1 to 2");
    free(buf);
    dpt_dataset_free(&a);
}

Test(part, rows_from_header)
{
    dpt_dataset a;
    size_t len, n = 1;
    unsigned char *buf = big_file(&a, &len);
    cr_assert_eq(dpt_dptb_rows(tpath("big.dptb"), &n), 0, "%s", dpt_last_error());
    cr_assert_eq(n, BN);
    buf[20] ^= 1;
    cr_assert_eq(dpt_dptb_rows(write_bytes("h.dptb", buf, 64), &n), DPT_EFORMAT);
    assert_msg_has("h.dptb: corrupt header");
    cr_assert_eq(n, 0);
    cr_assert_eq(dpt_dptb_rows(write_text("x.csv", "1,2\n"), &n), DPT_EFORMAT);
    assert_msg_has("x.csv: not a .dptb file");
    cr_assert_eq(dpt_dptb_rows(tpath("none.dptb"), &n), DPT_EIO);
    free(buf);
    dpt_dataset_free(&a);
}

/* Other formats read every row and ignore the part. */
Test(part, csv_ignores_part)
{
    dpt_dataset ds;
    dpt_row_range r[] = {{1, 2}};
    const char *p = write_text("a.csv", "1,2,0\n3,4,1\n5,6,0\n");
    cr_assert_eq(load_part(p, r, 1, &ds), 0, "%s", dpt_last_error());
    cr_assert_null(ds.part);
    cr_assert_eq(ds.n, 3);
    cr_assert_eq(X_at(&ds, 0, 0), 1.0f);
    cr_assert_eq(X_at(&ds, 2, 1), 6.0f);
    cr_assert_eq(ds.y[1], 1.0f);
    dpt_dataset_free(&ds);
    /* not even checked there */
    dpt_row_range bad[] = {{5, 1}};
    cr_assert_eq(load_part(p, bad, 1, &ds), 0, "%s", dpt_last_error());
    cr_assert_null(ds.part);
    dpt_dataset_free(&ds);
}

/* ---- what needs every row ---- */

Test(part, whole_set_operations_refused)
{
    dpt_synth_spec s;
    spec_of(&s, "logreg:n=500,d=9");
    dpt_dataset ds, val;
    dpt_row_range r[] = {{0, 100}, {300, 400}};
    cr_assert_eq(dpt_synth_generate_part(&s, &ds, 2, r, 2), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_dataset_split(&ds, 0.2, 1, &val), DPT_EINVAL);
    assert_msg_has("holds only part of its rows (per-rank loading)");
    cr_assert_null(val.X);
    cr_assert_not_null(ds.X, "the data set is left as it was");
    dpt_standardizer st;
    cr_assert_eq(dpt_standardizer_fit(&st, &ds, 2), DPT_EINVAL);
    assert_msg_has("standardize: ", "holds only part of its rows (per-rank loading)");
    cr_assert_null(st.mean);
    const char *fmts[] = {"p.dptb", "p.csv", "p.svm"};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(dpt_save(&ds, tpath(fmts[i]), NULL), DPT_EINVAL);
        assert_msg_has(fmts[i], "holds only part of its rows (per-rank loading)");
        cr_assert(!file_exists(tpath(fmts[i])));
    }
    int k = 0;
    cr_assert_eq(dpt_dataset_check_labels(&ds, DPT_LABEL_BINARY, &k), 0, "%s", dpt_last_error());
    cr_assert_eq(k, 2);
    dpt_dataset_free(&ds);
}

/* Class ids of held rows only: a part whose rows are all class 0 is no
 * error here (the ranks' K decide), a whole set of one class is. */
Test(part, check_labels_class_on_part)
{
    dpt_synth_spec s;
    spec_of(&s, "teacher-mlp:n=2000,d=6,hidden=5,classes=3,seed=4");
    dpt_dataset full, ds;
    cr_assert_eq(dpt_synth_generate(&s, &full, 2), 0);
    dpt_row_range r[4];
    size_t nr = 0;
    for (size_t i = 0; i < full.n && nr < 4; i++)
        if (full.y[i] == 0) r[nr++] = (dpt_row_range){i, i + 1};
    cr_assert_eq(nr, 4);
    cr_assert_eq(dpt_synth_generate_part(&s, &ds, 2, r, nr), 0, "%s", dpt_last_error());
    int k = 0;
    cr_assert_eq(dpt_dataset_check_labels(&ds, DPT_LABEL_CLASS, &k), 0, "%s", dpt_last_error());
    cr_assert_eq(k, 1);
    k = 3;
    cr_assert_eq(dpt_dataset_check_labels(&ds, DPT_LABEL_CLASS, &k), 0);
    cr_assert_eq(k, 3);
    k = 0;
    cr_assert_eq(dpt_dataset_check_labels(&full, DPT_LABEL_CLASS, &k), 0);
    cr_assert_eq(k, 3);
    dpt_dataset_free(&ds);
    dpt_dataset_free(&full);
}

/* Standardizing a partial set changes its held rows as a whole set's, and
 * never touches the others. */
Test(part, standardize_apply_held_rows)
{
    dpt_synth_spec s;
    spec_of(&s, "linreg:n=4000,d=64,seed=9");
    dpt_dataset full, ds;
    cr_assert_eq(dpt_synth_generate(&s, &full, 2), 0);
    dpt_standardizer st;
    cr_assert_eq(dpt_standardizer_fit(&st, &full, 2), 0);
    dpt_row_range r[] = {{17, 400}, {2500, 2501}, {3000, 3999}};
    cr_assert_eq(dpt_synth_generate_part(&s, &ds, 2, r, 3), 0, "%s", dpt_last_error());
    cr_assert_eq(dpt_standardizer_apply(&st, &full, 3), 0);
    cr_assert_eq(dpt_standardizer_apply(&st, &ds, 3), 0);
    dpt_row_range g[4];
    size_t ng = gaps_of(ds.part, ds.npart, ds.n, g), whole = 0;
    for (size_t i = 0; i < ng; i++) {
        size_t pages;
        cr_assert_eq(resident_pages(&ds, g[i].lo, g[i].hi, &pages), 0, "rows %zu-%zu touched",
                     g[i].lo, g[i].hi);
        whole += pages;
    }
    cr_assert_gt(whole, 0);
    assert_held_rows(&full, &ds);
    dpt_standardizer_free(&st);
    dpt_dataset_free(&ds);
    dpt_dataset_free(&full);
}
