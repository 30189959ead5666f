/* svmlight / LIBSVM: sparse rows made dense, label conventions, and the
 * bad inputs with their line and column. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <sys/resource.h>

#include "util.h"

static void teardown(void)
{
    rm_tdir();
}
TestSuite(svmlight, .fini = teardown);

Test(svmlight, dense_from_sparse_with_comments)
{
    dpt_dataset ds;
    int rc = load_text("t.svm",
                       "# a comment line\n"
                       "+1 1:0.5 3:-2 # trailing comment\n"
                       "\n"
                       "-1 qid:7 2:1e2\r\n"
                       "-1\n",
                       NULL, &ds);
    cr_assert_eq(rc, 0, "%s", dpt_last_error());
    assert_layout(&ds);
    cr_assert_eq(ds.n, 3);
    cr_assert_eq(ds.d, 3);
    cr_assert_eq(X_at(&ds, 0, 0), 0.5f);
    cr_assert_eq(X_at(&ds, 0, 1), 0.0f);
    cr_assert_eq(X_at(&ds, 0, 2), -2.0f);
    cr_assert_eq(X_at(&ds, 1, 1), 100.0f);
    cr_assert_eq(X_at(&ds, 2, 0), 0.0f);
    /* +1/-1 become 1/0 */
    cr_assert_eq(ds.y[0], 1.0f);
    cr_assert_eq(ds.y[1], 0.0f);
    cr_assert_eq(ds.y[2], 0.0f);
    cr_assert_eq(ds.label_kind, DPT_LABEL_BINARY);
    dpt_dataset_free(&ds);
}

Test(svmlight, class_ids_and_features_flag)
{
    dpt_load_opts o;
    dpt_load_opts_defaults(&o);
    o.features = 10;
    dpt_dataset ds;
    int rc = load_text("t.libsvm", "0 1:1\n2 4:1\n1 2:3\n", &o, &ds);
    cr_assert_eq(rc, 0, "%s", dpt_last_error());
    cr_assert_eq(ds.d, 10);
    cr_assert_eq(ds.ld, 16);
    cr_assert_eq(ds.label_kind, DPT_LABEL_CLASS);
    cr_assert_eq(ds.classes, 3);
    cr_assert_eq(ds.y[1], 2.0f);
    cr_assert_eq(X_at(&ds, 1, 3), 1.0f);
    dpt_dataset_free(&ds);
}

Test(svmlight, zero_one_labels_kept_and_regression_targets)
{
    dpt_dataset ds;
    cr_assert_eq(load_text("t.svm", "0 1:1\n1 1:2\n", NULL, &ds), 0);
    cr_assert_eq(ds.y[0], 0.0f);
    cr_assert_eq(ds.y[1], 1.0f);
    dpt_dataset_free(&ds);
    cr_assert_eq(load_text("t.svm", "-1.5 1:1\n1 1:2\n", NULL, &ds), 0);
    cr_assert_eq(ds.y[0], -1.5f);
    cr_assert_eq(ds.label_kind, DPT_LABEL_REAL);
    dpt_dataset_free(&ds);
}

Test(svmlight, sniffed_without_extension)
{
    dpt_dataset ds;
    cr_assert_eq(load_text("data.txt", "1 1:2 2:3\n0 2:1\n", NULL, &ds), 0, "%s", dpt_last_error());
    cr_assert_eq(ds.d, 2);
    dpt_dataset_free(&ds);
}

Test(svmlight, parallel_equals_serial)
{
    size_t rows = 40000;
    char *text = malloc(rows * 48);
    size_t k = 0;
    for (size_t i = 0; i < rows; i++)
        k += (size_t)sprintf(text + k, "%zu %zu:%zu %zu:0.25\n", i % 3, i % 7 + 1, i, i % 7 + 9);
    const char *p = write_text("big.svm", text);
    free(text);
    dpt_load_opts o;
    dpt_load_opts_defaults(&o);
    dpt_dataset a, b;
    o.nthreads = 1;
    cr_assert_eq(dpt_load(p, &o, &a), 0, "%s", dpt_last_error());
    o.nthreads = 3;
    cr_assert_eq(dpt_load(p, &o, &b), 0, "%s", dpt_last_error());
    cr_assert_eq(a.n, rows);
    cr_assert_eq(a.d, 15);
    cr_assert_eq(memcmp(a.X, b.X, a.n * a.ld * sizeof(float)), 0);
    cr_assert_eq(memcmp(a.y, b.y, a.n * sizeof(float)), 0);
    cr_assert_eq(X_at(&a, 30001, 30001 % 7), 30001.0f);
    assert_layout(&a);
    dpt_dataset_free(&a);
    dpt_dataset_free(&b);
}

struct bad_svm {
    char text[96];
    char frag1[48], frag2[64];
    int code;
};

ParameterizedTestParameters(svmlight, bad_input)
{
    static struct bad_svm cases[] = {
        {"", "t.svm: empty file", "", DPT_EFORMAT},
        {"# only a comment\n\n", "t.svm: no data rows", "", DPT_EFORMAT},
        {"1\n0\n", "t.svm: no features", "", DPT_EFORMAT},
        {"1 0:1\n", "t.svm:1:3:", "index 0", DPT_EFORMAT},
        {"1 1:1\n1 3:1 2:1\n", "t.svm:2:7:", "index 2 after 3", DPT_EFORMAT},
        {"1 2:1 2:1\n", "t.svm:1:7:", "index 2 after 2", DPT_EFORMAT},
        {"1 99999999999:1\n", "t.svm:1:3:", "too large", DPT_EFORMAT},
        {"1 3 4\n", "t.svm:1:3:", "'3' is not INDEX:VALUE (missing ':')", DPT_EFORMAT},
        {"1 a:4\n", "t.svm:1:3:", "'a:4' is not INDEX:VALUE", DPT_EFORMAT},
        {"1 2:x\n", "t.svm:1:5:", "value 'x' of index 2", DPT_EFORMAT},
        {"1 2:nan\n", "t.svm:1:5:", "not a finite number", DPT_EFORMAT},
        {"1 2:1e40\n", "t.svm:1:5:", "out of float range", DPT_EFORMAT},
        {"1 2:\n", "t.svm:1:5:", "value '' of index 2", DPT_EFORMAT},
        {"yes 1:1\n", "t.svm:1:1:", "label 'yes' is not a number", DPT_EFORMAT},
        {"1,2 1:1\n", "t.svm:1:1:", "label '1,2'", DPT_EFORMAT},
        {"1 1:1\n1 qid:x 2:1\n", "t.svm:2:3:", "qid", DPT_EFORMAT},
    };
    return cr_make_param_array(struct bad_svm, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct bad_svm *c, svmlight, bad_input)
{
    dpt_dataset ds;
    int rc = load_text("t.svm", c->text, NULL, &ds);
    cr_assert_eq(rc, c->code, "'%s': rc %d (%s)", c->text, rc, dpt_last_error());
    if (c->frag2[0])
        assert_msg_has(c->frag1, c->frag2);
    else
        assert_msg_has(c->frag1);
    cr_assert_null(ds.X);
}

Test(svmlight, index_beyond_features)
{
    dpt_load_opts o;
    dpt_load_opts_defaults(&o);
    o.features = 4;
    dpt_dataset ds;
    cr_assert_eq(load_text("t.svm", "1 1:1\n0 5:2\n", &o, &ds), DPT_EFORMAT);
    assert_msg_has("t.svm:2:3:", "index 5 is beyond the 4 features");
}

/* Huge indices make huge dense rows: refused before allocating. */
Test(svmlight, huge_index_too_large_for_memory)
{
    dpt_dataset ds;
    char text[4096] = "";
    for (int i = 0; i < 200; i++) strcat(text, "1 2000000000:1\n");
    cr_assert_eq(load_text("t.svm", text, NULL, &ds), DPT_ENOMEM, "%s", dpt_last_error());
    assert_msg_has("t.svm: 200 rows x 2000000000 features need 1600.0 GB as dense float32; ",
                   "GB available");
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* Address space in use by this process, from /proc/self/statm. */
static __attribute__((unused)) size_t vm_bytes(void)
{
    unsigned long long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    cr_assert(f);
    cr_assert_eq(fscanf(f, "%llu", &pages), 1);
    fclose(f);
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* The loader prefixes the allocator's message with the path; it used to
 * format the message into the buffer it was reading ("t.svm: t.svm:
 * locate ..."). An address-space limit makes the 400 MB allocation fail
 * (a caller's max_bytes above it lets the loader try). */
Test(svmlight, allocation_failure_message_reads_right)
{
#ifdef UNDER_ASAN
    cr_skip_test("AddressSanitizer reserves more address space than the limit allows");
#else
    const char *p = write_text("t.svm", "1 1:0.5 50000000:1\n0 2:1\n");
    struct rlimit rl = {vm_bytes() + (200u << 20), RLIM_INFINITY};
    cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
    dpt_load_opts o;
    dpt_load_opts_defaults(&o);
    o.max_bytes = (size_t)1 << 40;
    o.nthreads = 1;
    dpt_dataset ds;
    cr_assert_eq(dpt_load(p, &o, &ds), DPT_ENOMEM);
    char want[600];
    snprintf(want, sizeof want, "%s: cannot allocate 400.0 MB for a 2 x 50000000 dataset", p);
    cr_assert_str_eq(dpt_last_error(), want);
#endif
}

/* 40 bytes describing 2 dense rows of 2^31-1 floats (17.2 GB): refused
 * before anything is allocated, against the process's address-space
 * limit even where the machine has the memory. */
Test(svmlight, dense_size_beyond_the_limit_is_refused_up_front)
{
#ifdef UNDER_ASAN
    cr_skip_test("AddressSanitizer reserves more address space than the limit allows");
#else
    const char *p = write_text("big.svm", "1 1:0.5 2147483647:1\n0 2:1\n");
    struct rlimit rl = {vm_bytes() + (1u << 30), RLIM_INFINITY};
    cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
    dpt_dataset ds;
    cr_assert_eq(dpt_load(p, NULL, &ds), DPT_ENOMEM);
    char want[600];
    snprintf(want, sizeof want, "%s: 2 rows x 2147483647 features need 17.2 GB as dense float32; ",
             p);
    cr_assert(!strncmp(dpt_last_error(), want, strlen(want)), "%s", dpt_last_error());
    cr_assert(strstr(dpt_last_error(), " GB available"), "%s", dpt_last_error());
    /* a caller's own limit is named as such */
    dpt_load_opts o;
    dpt_load_opts_defaults(&o);
    o.max_bytes = 3100000000u;
    cr_assert_eq(dpt_load(p, &o, &ds), DPT_ENOMEM);
    cr_assert(strstr(dpt_last_error(), "need 17.2 GB as dense float32; 3.1 GB allowed"), "%s",
              dpt_last_error());
#endif
}
