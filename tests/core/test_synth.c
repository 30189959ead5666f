/* The synthetic generators reproduce docs/workloads.md bit for bit (SHA-256 of
 * the raw little-endian float32 arrays), whatever the thread count. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dpt/data.h"
#include "dpt/error.h"
#include "dpt/model.h"

/* SHA-256 via coreutils' sha256sum, fed through a pipe. */
static void sha256_of(const void *const *parts, const size_t *lens, int nparts, char out[65])
{
    char path[] = "/tmp/dpt-sha-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "sha256sum > %s", path);
    FILE *p = popen(cmd, "w");
    cr_assert(p);
    for (int i = 0; i < nparts; i++) fwrite(parts[i], 1, lens[i], p);
    cr_assert_eq(pclose(p), 0);
    FILE *f = fopen(path, "r");
    cr_assert(f && fscanf(f, "%64s", out) == 1);
    fclose(f);
    unlink(path);
}

static void sha_rows(const dpt_dataset *ds, char out[65])
{
    /* rows without their padding, one part per row would be slow: copy */
    float *dense = malloc(ds->n * ds->d * sizeof(float));
    for (size_t i = 0; i < ds->n; i++) memcpy(dense + i * ds->d, ds->X + i * ds->ld, ds->d * 4);
    const void *parts[1] = {dense};
    size_t lens[1] = {ds->n * ds->d * 4};
    sha256_of(parts, lens, 1, out);
    free(dense);
}

/* Criterion runs each parameter in a fresh process, where pointers into
 * the parameter array would dangle: strings live inline. */
struct wl {
    char spec[96];
    int threads;
    int int_labels;
    char x[65], y[65];
};

ParameterizedTestParameters(synth, workloads_md_hashes)
{
    static struct wl cases[] = {
        {"linreg:n=1000000,d=64,seed=1,noise=0.01", 2, 0,
         "6ffe4d942cb528b25c089039d3ddf5a6ea4e957bf5d1345a1387fcc94e36d04f",
         "d92e4bc10fe4cae7f663fe8c593bcf6155c20469a7ff19ffab0df9f5855abbd3"},
        {"logreg:n=1000000,d=64,seed=2,noise=0.5", 3, 0,
         "508c5ac7a90a17ca1678d388c3e5a254b486c87d74fd313c9e1fa53f0c7f7add",
         "573786ad476e75d3e3d3d497b388e2e5621cf4cbb05c3351abaa056c29188652"},
        {"teacher-mlp:n=1000000,d=10,seed=3,hidden=20,noise=0.01", 1, 0,
         "5f65b2d3eda898e9661a95c309ccebe81bc51fec6f5a4096365c4d26f5b03fab",
         "0e4809aceff9d1140da7a05740bd24703f4abff9e6bd12118929d98aaf9f986f"},
        {"teacher-mlp:n=100000,d=256,seed=4,hidden=512/512,classes=10", 5, 1,
         "719276863a12c6a42d306786f7c47c26f58d25a8cacdbbbf3a40f02f90981c4c",
         "770fc97a13b171a81299e1064e5c53532bfb6384f5148ba8ff764896842e5ba8"},
    };
    return cr_make_param_array(struct wl, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct wl *c, synth, workloads_md_hashes)
{
    dpt_synth_spec s;
    cr_assert_eq(dpt_synth_parse(&s, c->spec), 0, "%s", dpt_last_error());
    dpt_dataset ds;
    cr_assert_eq(dpt_synth_generate(&s, &ds, c->threads), 0, "%s", dpt_last_error());
    char hx[65], hy[65];
    sha_rows(&ds, hx);
    cr_expect_str_eq(hx, c->x, "X of %s", c->spec);
    int32_t *lab = NULL;
    const void *parts[1] = {ds.y};
    size_t lens[1] = {ds.n * 4};
    if (c->int_labels) {
        lab = malloc(ds.n * 4);
        for (size_t i = 0; i < ds.n; i++) lab[i] = (int32_t)ds.y[i];
        parts[0] = lab;
    }
    sha256_of(parts, lens, 1, hy);
    cr_expect_str_eq(hy, c->y, "y of %s", c->spec);
    free(lab);
    dpt_dataset_free(&ds);
}

struct init_case {
    size_t d, h1, h2, out;
    uint64_t seed;
    char w1[65];
};

ParameterizedTestParameters(synth, student_init_hashes)
{
    static struct init_case cases[] = {
        {10, 20, 0, 1, 3, "b3383d49e4a56b92af56ff72ab947434cdb10feb3fa52d286b589a1d9d3e58e1"},
        {256, 512, 512, 10, 4, "632ab98274704a01f82cf5f1427c8cd7fca50d9f87cc29adc6fe5f540dd7d156"},
    };
    return cr_make_param_array(struct init_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct init_case *c, synth, student_init_hashes)
{
    dpt_model_spec s = {.kind = DPT_MODEL_MLP,
                        .inputs = c->d,
                        .n_hidden = c->h2 ? 2 : 1,
                        .hidden = {c->h1, c->h2},
                        .classes = (int)c->out,
                        .loss = c->out > 1 ? DPT_LOSS_CE : DPT_LOSS_MSE};
    dpt_model m;
    cr_assert_eq(dpt_model_init(&m, &s), 0);
    float *w = malloc(m.n_params * sizeof(float));
    dpt_model_init_params(&m, w, c->seed, DPT_INIT_UNIFORM);
    char h[65];
    const void *parts[1] = {w + m.w_off[0]};
    size_t lens[1] = {c->d * c->h1 * 4};
    sha256_of(parts, lens, 1, h);
    cr_expect_str_eq(h, c->w1);
    free(w);
}

Test(synth, independent_of_thread_count)
{
    dpt_synth_spec s;
    cr_assert_eq(dpt_synth_parse(&s, "teacher-mlp:n=999,d=7,hidden=5/3,seed=9"), 0);
    dpt_dataset a, b;
    cr_assert_eq(dpt_synth_generate(&s, &a, 1), 0);
    cr_assert_eq(dpt_synth_generate(&s, &b, 7), 0);
    cr_expect_eq(memcmp(a.X, b.X, a.n * a.ld * 4), 0);
    cr_expect_eq(memcmp(a.y, b.y, a.n * 4), 0);
    for (size_t i = 0; i < a.n; i++)
        for (size_t k = a.d; k < a.ld; k++) cr_assert_eq(a.X[i * a.ld + k], 0.0f);
    cr_expect_eq((uintptr_t)a.X % 64, 0);
    dpt_dataset_free(&a);
    dpt_dataset_free(&b);
}

Test(synth, parse_errors_name_the_problem)
{
    dpt_synth_spec s;
    cr_expect_eq(dpt_synth_parse(&s, "cubic"), DPT_EINVAL);
    cr_expect(strstr(dpt_last_error(), "linreg, logreg, teacher-mlp"));
    cr_expect_eq(dpt_synth_parse(&s, "linreg:n=abc"), DPT_EINVAL);
    cr_expect(strstr(dpt_last_error(), "n=abc"));
    cr_expect_eq(dpt_synth_parse(&s, "linreg:k=3"), DPT_EINVAL);
    cr_expect_eq(dpt_synth_parse(&s, "linreg:classes=3"), DPT_EINVAL);
    cr_expect_eq(dpt_synth_parse(&s, "linreg:noise=-1"), DPT_EINVAL);
    cr_expect_eq(dpt_synth_parse(&s, "linreg:n"), DPT_EINVAL);
    cr_expect_eq(dpt_synth_parse(&s, "teacher-mlp:hidden=4/0"), DPT_EINVAL);
    cr_expect_eq(dpt_synth_parse(&s, "logreg:n=10,d=3,seed=5"), 0);
    cr_expect_eq(s.n, 10);
    cr_expect_eq(s.d, 3);
    cr_expect_eq(s.seed, 5);
}
