/* Every model's gradient (float, through the kernel table in use) against
 * central finite differences of an independent double forward pass; the
 * public ISA choice (dpt/isa.h) and the models' NULL table. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/error.h"
#include "dpt/isa.h"
#include "dpt/model.h"
#include "kernels/kernels.h"
#include "ref.h"

struct case_ {
    dpt_model_kind kind;
    int bias;
    dpt_activation act;
    dpt_loss loss;
    int n_hidden;
    size_t h1, h2;
    int classes;
    size_t rows, d;
};

ParameterizedTestParameters(grad, finite_differences)
{
    static struct case_ cases[] = {
        {DPT_MODEL_LINEAR, 1, 0, DPT_LOSS_MSE, 0, 0, 0, 0, 37, 9},
        {DPT_MODEL_LINEAR, 0, 0, DPT_LOSS_MSE, 0, 0, 0, 0, 64, 17},
        {DPT_MODEL_LOGISTIC, 1, 0, DPT_LOSS_BCE, 0, 0, 0, 0, 50, 8},
        {DPT_MODEL_LOGISTIC, 0, 0, DPT_LOSS_BCE, 0, 0, 0, 0, 33, 5},
        {DPT_MODEL_SOFTMAX, 1, 0, DPT_LOSS_CE, 0, 0, 0, 4, 40, 7},
        {DPT_MODEL_SOFTMAX, 0, 0, DPT_LOSS_CE, 0, 0, 0, 3, 21, 16},
        {DPT_MODEL_MLP, 1, DPT_ACTIVATION_RELU, DPT_LOSS_MSE, 1, 20, 0, 0, 30, 10},
        {DPT_MODEL_MLP, 1, DPT_ACTIVATION_TANH, DPT_LOSS_MSE, 1, 7, 0, 0, 25, 5},
        {DPT_MODEL_MLP, 1, DPT_ACTIVATION_SIGMOID, DPT_LOSS_MSE, 2, 6, 5, 0, 20, 4},
        {DPT_MODEL_MLP, 1, DPT_ACTIVATION_RELU, DPT_LOSS_CE, 2, 9, 6, 3, 23, 6},
        {DPT_MODEL_MLP, 1, DPT_ACTIVATION_TANH, DPT_LOSS_CE, 1, 8, 0, 5, 19, 11},
        {DPT_MODEL_MLP, 1, DPT_ACTIVATION_SIGMOID, DPT_LOSS_BCE, 1, 5, 0, 0, 17, 3},
        /* more rows than one block: the block loop accumulates */
        {DPT_MODEL_MLP, 1, DPT_ACTIVATION_TANH, DPT_LOSS_MSE, 1, 3, 0, 0, 600, 2},
        {DPT_MODEL_SOFTMAX, 1, 0, DPT_LOSS_CE, 0, 0, 0, 3, 700, 2},
    };
    return cr_make_param_array(struct case_, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct case_ *c, grad, finite_differences)
{
    dpt_model_spec s = {.kind = c->kind,
                        .inputs = c->d,
                        .n_hidden = c->n_hidden,
                        .hidden = {c->h1, c->h2},
                        .classes = c->classes,
                        .act = c->act,
                        .loss = c->loss,
                        .bias = c->bias};
    dpt_model m;
    cr_assert_eq(dpt_model_init(&m, &s), 0);
    dpt_dataset ds;
    ref_make_data(&ds, c->rows, c->d, &m.spec, 7);
    float *w = calloc(m.n_params, sizeof(float)), *g = calloc(m.n_params, sizeof(float));
    float *scratch = calloc(dpt_model_scratch_floats(&m), sizeof(float));
    double *gref = malloc(m.n_params * sizeof(double));
    dpt_model_init_params(&m, w, 11, DPT_INIT_UNIFORM);

    /* NULL: the table in use, as a program outside the library calls it */
    const dpt_kernels *k = NULL;
    double loss = dpt_model_grad(&m, k, w, ds.X, ds.ld, ds.y, ds.n, g, scratch);
    double wd[4096];
    cr_assert(m.n_params <= 4096);
    for (size_t i = 0; i < m.n_params; i++) wd[i] = w[i];
    double lref = ref_loss_sum(&m, wd, ds.X, ds.ld, ds.y, ds.n);
    cr_expect(fabs(loss - lref) <= 1e-4 * fabs(lref) + 1e-6, "loss %g vs reference %g", loss, lref);

    ref_grad_fd(&m, w, ds.X, ds.ld, ds.y, ds.n, gref);
    double gmax = 0;
    for (size_t i = 0; i < m.n_params; i++) gmax = fmax(gmax, fabs(gref[i]));
    double err = ref_max_rel(g, gref, m.n_params, 1e-3 * gmax + 1e-6);
    cr_expect(err < 2e-3, "isa %s, %zu params: worst relative gradient error %g", dpt_isa_name(),
              m.n_params, err);

    /* grad_to writes the same sum over whatever g held */
    float *g2 = malloc(m.n_params * sizeof(float));
    for (size_t i = 0; i < m.n_params; i++) g2[i] = NAN;
    double loss2 = dpt_model_grad_to(&m, k, w, ds.X, ds.ld, ds.y, ds.n, g2, scratch);
    cr_expect_eq(loss2, loss);
    for (size_t i = 0; i < m.n_params; i++)
        cr_assert(g2[i] == g[i], "grad_to param %zu: %g vs %g", i, g2[i], g[i]);
    for (size_t i = 0; i < m.n_params; i++) g2[i] = NAN;
    cr_expect_eq(dpt_model_grad_to(&m, k, w, ds.X, ds.ld, ds.y, 0, g2, scratch), 0.0);
    for (size_t i = 0; i < m.n_params; i++) cr_assert(g2[i] == 0.0f, "no rows: param %zu", i);
    free(g2);

    /* eval agrees with grad's loss */
    double le = dpt_model_eval(&m, k, w, ds.X, ds.ld, ds.y, ds.n, NULL, scratch);
    cr_expect(fabs(le - loss) <= 1e-5 * fabs(loss) + 1e-6, "eval %g vs grad loss %g", le, loss);
    free(w);
    free(g);
    free(scratch);
    free(gref);
    dpt_dataset_free(&ds);
}

Test(grad, accumulates_into_g)
{
    /* grad adds to g rather than overwriting it: two halves sum to the whole */
    dpt_model_spec s = {.kind = DPT_MODEL_MLP,
                        .inputs = 5,
                        .n_hidden = 1,
                        .hidden = {4},
                        .act = DPT_ACTIVATION_TANH,
                        .loss = DPT_LOSS_MSE,
                        .bias = 1};
    dpt_model m;
    cr_assert_eq(dpt_model_init(&m, &s), 0);
    dpt_dataset ds;
    ref_make_data(&ds, 40, 5, &m.spec, 3);
    float w[64], g1[64] = {0}, g2[64] = {0};
    float *sc = calloc(dpt_model_scratch_floats(&m), sizeof(float));
    dpt_model_init_params(&m, w, 1, DPT_INIT_UNIFORM);
    const dpt_kernels *k = dpt_kernels_get();
    dpt_model_grad(&m, k, w, ds.X, ds.ld, ds.y, 40, g1, sc);
    dpt_model_grad(&m, k, w, ds.X, ds.ld, ds.y, 17, g2, sc);
    dpt_model_grad(&m, k, w, ds.X + 17 * ds.ld, ds.ld, ds.y + 17, 23, g2, sc);
    for (size_t i = 0; i < m.n_params; i++)
        cr_expect(fabsf(g1[i] - g2[i]) <= 1e-5f * (fabsf(g1[i]) + 1), "param %zu", i);
    free(sc);
    dpt_dataset_free(&ds);
}

Test(model, rejects_bad_specs)
{
    dpt_model m;
    dpt_model_spec s = {.kind = DPT_MODEL_SOFTMAX, .inputs = 4, .classes = 1, .bias = 1};
    cr_expect_eq(dpt_model_init(&m, &s), DPT_EINVAL);
    s = (dpt_model_spec){.kind = DPT_MODEL_MLP, .inputs = 4, .n_hidden = 0};
    cr_expect_eq(dpt_model_init(&m, &s), DPT_EINVAL);
    s = (dpt_model_spec){.kind = DPT_MODEL_LINEAR, .inputs = 0};
    cr_expect_eq(dpt_model_init(&m, &s), DPT_EINVAL);
}

Test(model, layout_is_pytorch_order)
{
    dpt_model_spec s = {
        .kind = DPT_MODEL_MLP, .inputs = 10, .n_hidden = 1, .hidden = {20}, .loss = DPT_LOSS_MSE};
    dpt_model m;
    cr_assert_eq(dpt_model_init(&m, &s), 0);
    cr_expect_eq(m.n_params, 10 * 20 + 20 + 20 + 1);
    cr_expect_eq(m.w_off[0], 0);
    cr_expect_eq(m.b_off[0], 200);
    cr_expect_eq(m.w_off[1], 220);
    cr_expect_eq(m.b_off[1], 240);
}

Test(isa, select_and_name)
{
    cr_assert_eq(dpt_isa_select("scalar"), 0, "%s", dpt_last_error());
    cr_expect_str_eq(dpt_isa_name(), "scalar");
    cr_expect_eq(dpt_kernels_get()->isa, dpt_isa_name(), "the public name is the table's");

    /* a bad name fails and leaves the choice alone */
    cr_expect_eq(dpt_isa_select("avx1024"), DPT_EINVAL);
    cr_expect(strstr(dpt_last_error(), "avx1024"), "%s", dpt_last_error());
    cr_expect_str_eq(dpt_isa_name(), "scalar");

    int have = dpt_build_has_avx2() && dpt_cpu_has_avx2();
    int rc = dpt_isa_select("avx2");
    if (have) {
        cr_expect_eq(rc, 0, "%s", dpt_last_error());
        cr_expect_str_eq(dpt_isa_name(), "avx2");
    } else {
        cr_expect_eq(rc, DPT_ENOTSUP);
        cr_expect_str_eq(dpt_isa_name(), "scalar");
    }
    /* auto: the widest the build has and the CPU and OS run */
    const char *best = have && dpt_build_has_avx512() && dpt_cpu_has_avx512() ? "avx512"
                       : have                                                 ? "avx2"
                                                                              : "scalar";
    cr_assert_eq(dpt_isa_select("auto"), 0);
    cr_expect_str_eq(dpt_isa_name(), best);
    cr_assert_eq(dpt_isa_select(NULL), 0);
    cr_expect_str_eq(dpt_isa_name(), best);
}

Test(isa, null_table_is_the_selected_one)
{
    /* NULL follows dpt_isa_select: with the scalar table chosen it gives
     * the scalar table's bits, not those of a table cached elsewhere */
    dpt_model_spec s = {.kind = DPT_MODEL_MLP,
                        .inputs = 10,
                        .n_hidden = 1,
                        .hidden = {20},
                        .act = DPT_ACTIVATION_RELU,
                        .loss = DPT_LOSS_MSE};
    dpt_model m;
    cr_assert_eq(dpt_model_init(&m, &s), 0);
    dpt_dataset ds;
    ref_make_data(&ds, 300, 10, &m.spec, 5);
    float *w = malloc(m.n_params * sizeof(float));
    float *g0 = calloc(m.n_params, sizeof(float)), *g1 = calloc(m.n_params, sizeof(float));
    float *sc = calloc(dpt_model_scratch_floats(&m), sizeof(float));
    float p0[300], p1[300];
    dpt_model_init_params(&m, w, 4, DPT_INIT_UNIFORM);
    dpt_kernels scalar;
    dpt_kernels_fill_scalar(&scalar);
    cr_assert_eq(dpt_isa_select("scalar"), 0);
    double l0 = dpt_model_grad(&m, &scalar, w, ds.X, ds.ld, ds.y, ds.n, g0, sc);
    double l1 = dpt_model_grad(&m, NULL, w, ds.X, ds.ld, ds.y, ds.n, g1, sc);
    cr_expect_eq(l0, l1);
    cr_expect_eq(memcmp(g0, g1, m.n_params * sizeof(float)), 0);
    cr_expect_eq(dpt_model_eval(&m, NULL, w, ds.X, ds.ld, ds.y, ds.n, NULL, sc),
                 dpt_model_eval(&m, &scalar, w, ds.X, ds.ld, ds.y, ds.n, NULL, sc));
    dpt_model_predict(&m, &scalar, w, ds.X, ds.ld, ds.n, p0, 1, sc);
    dpt_model_predict(&m, NULL, w, ds.X, ds.ld, ds.n, p1, 1, sc);
    cr_expect_eq(memcmp(p0, p1, sizeof p0), 0);
    free(w);
    free(g0);
    free(g1);
    free(sc);
    dpt_dataset_free(&ds);
}

/* Linear and logistic regression and a tiny-path MLP (d-h-1 ReLU MSE)
 * evaluate with their fused kernels' forward pass: the loss of the
 * gradient call to the bit, and within rounding of a reference (the MLP:
 * the generic path, the table without the fused kernel; the linear models:
 * their loss in double); the logistic model's rows classified right those
 * of the logits in double (but for rows whose float logit may change
 * sign). */
static void check_fused_eval(const dpt_model_spec *s, size_t d, unsigned seed)
{
    dpt_model m;
    cr_assert_eq(dpt_model_init(&m, s), 0);
    dpt_dataset ds;
    ref_make_data(&ds, 1001, d, &m.spec, seed);
    float *w = malloc(m.n_params * sizeof(float)), *g = malloc(m.n_params * sizeof(float));
    float *sc = calloc(dpt_model_scratch_floats(&m) + 1, sizeof(float));
    dpt_model_init_params(&m, w, 6, DPT_INIT_UNIFORM);
    dpt_kernels t[3];
    int n = 0;
    dpt_kernels_fill_scalar(&t[n++]);
    if (dpt_cpu_has_avx2() && dpt_build_has_avx2()) {
        t[n] = t[0];
        dpt_kernels_fill_avx2(&t[n++]);
    }
    if (dpt_cpu_has_avx512() && dpt_build_has_avx512()) {
        t[n] = t[n - 1];
        dpt_kernels_fill_avx512(&t[n++]);
    }
    /* the loss in double, from the float parameters */
    double lref = 0;
    size_t href = 0, hnear = 0;
    for (size_t i = 0; i < ds.n && m.layers == 1; i++) {
        const float *x = ds.X + i * ds.ld;
        double z = m.b_off[0] != SIZE_MAX ? w[m.b_off[0]] : 0, zm = fabs(z);
        for (size_t k = 0; k < d; k++) z += (double)w[k] * x[k], zm += fabs((double)w[k] * x[k]);
        if (s->loss == DPT_LOSS_BCE) {
            lref += (z > 0 ? z : 0) - z * ds.y[i] + log1p(exp(-fabs(z)));
            href += (z > 0) == (ds.y[i] > 0.5f);
            hnear += fabs(z) <= (d + 2) * 0x1p-24 * zm;
        } else
            lref += (z - ds.y[i]) * (z - ds.y[i]);
    }
    for (int i = 0; i < n; i++) {
        double lg = dpt_model_grad_to(&m, &t[i], w, ds.X, ds.ld, ds.y, ds.n, g, sc);
        size_t hits = 0;
        double le = dpt_model_eval(&m, &t[i], w, ds.X, ds.ld, ds.y, ds.n, &hits, sc);
        cr_expect(le == lg, "%s: eval %.17g, gradient's loss %.17g", t[i].isa, le, lg);
        if (s->loss == DPT_LOSS_BCE)
            cr_expect((hits > href ? hits - href : href - hits) <= hnear && hits > ds.n / 10,
                      "%s: %zu rows right, reference %zu (%zu near z = 0)", t[i].isa, hits, href,
                      hnear);
        else
            cr_expect_eq(hits, 0, "%s: MSE counted rows", t[i].isa);
        double lr = lref;
        if (m.layers > 1) {
            dpt_kernels generic = t[i];
            generic.mlp_tiny_grad = NULL;
            lr = dpt_model_eval(&m, &generic, w, ds.X, ds.ld, ds.y, ds.n, NULL, sc);
        }
        cr_expect(fabs(le - lr) <= 1e-5 * fabs(lr), "%s: eval %.9g, reference %.9g", t[i].isa, le,
                  lr);
        cr_expect(le != 0);
    }
    free(w);
    free(g);
    free(sc);
    dpt_dataset_free(&ds);
}

Test(model, fused_eval_is_the_gradient_loss)
{
    dpt_model_spec tiny = {.kind = DPT_MODEL_MLP,
                           .inputs = 10,
                           .n_hidden = 1,
                           .hidden = {20},
                           .act = DPT_ACTIVATION_RELU,
                           .loss = DPT_LOSS_MSE,
                           .bias = 1};
    check_fused_eval(&tiny, 10, 8);
    dpt_model_spec lin = {.kind = DPT_MODEL_LINEAR, .inputs = 37, .loss = DPT_LOSS_MSE, .bias = 1};
    check_fused_eval(&lin, 37, 9);
    lin.bias = 0;
    check_fused_eval(&lin, 37, 10);
    dpt_model_spec logit = {
        .kind = DPT_MODEL_LOGISTIC, .inputs = 70, .loss = DPT_LOSS_BCE, .bias = 1};
    check_fused_eval(&logit, 70, 11);
    logit.bias = 0;
    check_fused_eval(&logit, 70, 12);
}

Test(model, scratch_and_blocks)
{
    /* activation stride = the widest layer output padded to 16 floats (one
     * line more where a multiple of 256), rows = 65536 / the padded width
     * within [16, 256], a multiple of 8; scratch = (layers + 2) x rows x
     * stride. The input's width sets neither: 784-256-128-10 takes its
     * batches of 128 and 256 in one block (it took blocks of 80 rows at a
     * stride of 784 floats) */
    struct {
        dpt_model_spec s;
        size_t rows, scratch;
    } cases[] = {
        {{.kind = DPT_MODEL_MLP, .inputs = 10, .n_hidden = 1, .hidden = {20}}, 256, 4 * 256 * 32},
        {{.kind = DPT_MODEL_MLP,
          .inputs = 784,
          .n_hidden = 2,
          .hidden = {256, 128},
          .classes = 10,
          .loss = DPT_LOSS_CE},
         256,
         5 * 256 * 272},
        {{.kind = DPT_MODEL_LINEAR, .inputs = 64, .bias = 1}, 256, 3 * 256 * 16},
        {{.kind = DPT_MODEL_SOFTMAX, .inputs = 5000, .classes = 3000}, 16, 3 * 16 * 3008},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dpt_model m;
        cr_assert_eq(dpt_model_init(&m, &cases[i].s), 0, "%s", dpt_last_error());
        cr_expect_eq(dpt_model_block_rows(&m), cases[i].rows, "case %zu", i);
        cr_expect_eq(dpt_model_scratch_floats(&m), cases[i].scratch, "case %zu", i);
    }
}

Test(model, cross_entropy_message_names_no_flag)
{
    dpt_model m;
    dpt_model_spec s = {
        .kind = DPT_MODEL_MLP, .inputs = 3, .n_hidden = 1, .hidden = {4}, .loss = DPT_LOSS_CE};
    cr_assert_eq(dpt_model_init(&m, &s), DPT_EINVAL);
    cr_expect(strstr(dpt_last_error(), "cross-entropy"), "%s", dpt_last_error());
    cr_expect_null(strstr(dpt_last_error(), "--"), "%s", dpt_last_error());
}

/* ---- the layer split (models/split.h): nth threads, one call's bits ---- */

#include <omp.h>

#include "models/split.h"

static void omp_sync(void *ud)
{
    if (ud) ++*(int *)ud; /* this thread's syncs */
#pragma omp barrier
}

struct split_case {
    dpt_activation act;
    dpt_loss loss;
    int n_hidden;
    size_t d, h1, h2;
    int classes;
};

/* Every table this CPU runs, scalar first. */
static int split_tables(dpt_kernels *t)
{
    int n = 0;
    dpt_kernels_fill_scalar(&t[n++]);
    if (dpt_cpu_has_avx2() && dpt_build_has_avx2()) {
        dpt_kernels_fill_scalar(&t[n]);
        dpt_kernels_fill_avx2(&t[n++]);
    }
    if (dpt_cpu_has_avx512() && dpt_build_has_avx512()) {
        dpt_kernels_fill_scalar(&t[n]);
        dpt_kernels_fill_avx2(&t[n]);
        dpt_kernels_fill_avx512(&t[n++]);
    }
    return n;
}

Test(split, same_bits_as_one_call, .timeout = 120)
{
    static const struct split_case cases[] = {
        {DPT_ACTIVATION_RELU, DPT_LOSS_CE, 2, 784, 256, 128, 10}, /* fmnist-mlp */
        {DPT_ACTIVATION_TANH, DPT_LOSS_CE, 1, 37, 50, 0, 3},
        {DPT_ACTIVATION_SIGMOID, DPT_LOSS_BCE, 2, 20, 33, 17, 0},
        {DPT_ACTIVATION_TANH, DPT_LOSS_MSE, 1, 10, 20, 0, 0},    /* 10-20-1, not the tiny path */
        {DPT_ACTIVATION_RELU, DPT_LOSS_CE, 0, 64, 0, 0, 10},     /* softmax regression */
        {DPT_ACTIVATION_RELU, DPT_LOSS_CE, 2, 64, 256, 256, 10}, /* activations 1 KiB wide */
    };
    static const size_t rows[] = {1, 2, 3, 7, 16, 17, 40, 300};
    dpt_kernels tab[3];
    const int ntab = split_tables(tab);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const struct split_case *k = &cases[c];
        dpt_model_spec s = {.kind = k->n_hidden ? DPT_MODEL_MLP : DPT_MODEL_SOFTMAX,
                            .inputs = k->d,
                            .n_hidden = k->n_hidden,
                            .hidden = {k->h1, k->h2},
                            .classes = k->classes,
                            .act = k->act,
                            .loss = k->loss,
                            .bias = 1};
        dpt_model m;
        cr_assert_eq(dpt_model_init(&m, &s), 0, "%s", dpt_last_error());
        dpt_dataset ds;
        ref_make_data(&ds, 300, k->d, &m.spec, 11);
        float *w = malloc(m.n_params * sizeof *w), *g1 = malloc(m.n_params * sizeof *g1),
              *g2 = malloc(m.n_params * sizeof *g2);
        dpt_model_init_params(&m, w, 3, DPT_INIT_UNIFORM);
        float *sc = calloc(dpt_model_scratch_floats(&m), sizeof *sc),
              *shared = calloc(dpt_model_scratch_floats(&m), sizeof *shared);
        for (int ti = 0; ti < ntab; ti++) {
            const dpt_kernels *kt = &tab[ti];
            cr_assert(dpt_model_splittable(&m, kt));
            for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++) {
                const size_t R = rows[ri];
                const double l1 = dpt_model_grad_to(&m, kt, w, ds.X, ds.ld, ds.y, R, g1, sc);
                for (int nth = 1; nth <= 6; nth++) {
                    /* NaN where no thread writes: a gap would show */
                    for (size_t i = 0; i < m.n_params; i++) g2[i] = NAN;
                    double l2 = 0;
                    int syncs = 0;
#pragma omp parallel num_threads(nth) reduction(+ : l2) reduction(max : syncs)
                    {
                        dpt_split_unit u = {ds.X, ds.y, R, g2, 0};
                        int mine = 0;
                        dpt_model_grad_split(&m, kt, w, ds.ld, &u, 1, shared, omp_get_thread_num(),
                                             nth, omp_sync, &mine, NULL);
                        l2 += u.loss;
                        syncs = mine;
                    }
                    /* the syncs the cost function counts (engine/split.c):
                     * 2 x layers a block of rows */
                    const size_t br = dpt_model_block_rows(&m);
                    cr_expect_eq(syncs, 2 * m.layers * (int)((R + br - 1) / br),
                                 "case %zu, %zu rows, %d threads", c, R, nth);
                    cr_expect_eq(memcmp(g1, g2, m.n_params * sizeof *g1), 0,
                                 "%s case %zu, %zu rows, %d threads: the gradient's bits differ",
                                 kt->isa, c, R, nth);
                    cr_expect_eq(l1, l2, "%s case %zu, %zu rows, %d threads: loss %.17g vs %.17g",
                                 kt->isa, c, R, nth, l1, l2);
                }
                /* the ranges tile the parameters */
                for (int nth = 1; nth <= 7; nth++) {
                    size_t covered = 0;
                    for (int i = 0; i < nth; i++) {
                        dpt_split_range r[2 * (DPT_MAX_HIDDEN + 1)];
                        const int n = dpt_split_ranges(&m, i, nth, r);
                        for (int j = 0; j < n; j++) covered += r[j].hi - r[j].lo;
                    }
                    cr_expect_eq(covered, m.n_params);
                }
            }
        }
        free(w);
        free(g1);
        free(g2);
        free(sc);
        free(shared);
        dpt_dataset_free(&ds);
    }
}

Test(split, fused_models_are_not_splittable)
{
    dpt_model_spec lin = {.kind = DPT_MODEL_LINEAR, .inputs = 8, .bias = 1};
    dpt_model_spec tiny = {.kind = DPT_MODEL_MLP,
                           .inputs = 10,
                           .n_hidden = 1,
                           .hidden = {20},
                           .act = DPT_ACTIVATION_RELU,
                           .loss = DPT_LOSS_MSE};
    dpt_model m;
    dpt_kernels s;
    dpt_kernels_fill_scalar(&s);
    cr_assert_eq(dpt_model_init(&m, &lin), 0);
    cr_expect_not(dpt_model_splittable(&m, &s));
    cr_assert_eq(dpt_model_init(&m, &tiny), 0);
    cr_expect_eq(dpt_model_splittable(&m, &s), s.mlp_tiny_grad == NULL,
                 "the tiny MLP takes its fused kernel where the table has one");
}

/* Several units side by side in one call (a domain's small units): each
 * gets the bits of its own dpt_model_grad_to call, whether the units' rows
 * lie side by side (runs of units go through one product where the kernels'
 * classes allow) or apart (each unit its own products). */
Test(split, units_side_by_side, .timeout = 120)
{
    dpt_model m;
    cr_assert_eq(ref_fmnist_mlp(&m), 0);
    dpt_dataset ds;
    ref_make_data(&ds, 200, 784, &m.spec, 12);
    float *w = malloc(m.n_params * sizeof *w);
    dpt_model_init_params(&m, w, 4, DPT_INIT_UNIFORM);
    enum { NU = 7, NP = 3 };
    /* 44 rows: one block; eight units of 2-4 rows, the small-row runs; one-row
     * units, the GEMVs taken together (a run of three, of two, one apart) */
    static const size_t rows_of[NP][NU + 1] = {
        {1, 2, 0, 5, 16, 17, 3}, {2, 2, 3, 2, 4, 2, 2, 1}, {1, 1, 1, 2, 1, 1, 0, 1}};
    static const int nu_of[NP] = {NU, NU + 1, NU + 1};
    cr_assert_leq(44, dpt_model_block_rows(&m));
    float *ref[NU + 1], *got[NU + 1], *apart[NU + 1];
    double lref[NU + 1];
    float *sc = calloc(dpt_model_scratch_floats(&m), sizeof *sc);
    dpt_kernels tab[3];
    const int ntab = split_tables(tab);
    for (int ti = 0; ti < ntab; ti++)
        for (int pi = 0; pi < NP; pi++) {
            const size_t *rows = rows_of[pi];
            const int nu = nu_of[pi];
            size_t at = 0;
            for (int v = 0; v < nu; v++) {
                ref[v] = malloc(m.n_params * sizeof(float));
                got[v] = malloc(m.n_params * sizeof(float));
                lref[v] = dpt_model_grad_to(&m, &tab[ti], w, ds.X + at * ds.ld, ds.ld, ds.y + at,
                                            rows[v], ref[v], sc);
                /* a copy of the unit's rows on its own, a row's gap before it */
                apart[v] = malloc((rows[v] + 1) * ds.ld * sizeof(float));
                memcpy(apart[v] + ds.ld, ds.X + at * ds.ld, rows[v] * ds.ld * sizeof(float));
                at += rows[v];
            }
            for (int lay = 0; lay < 2; lay++)
                for (int nth = 1; nth <= 5; nth++) {
                    double loss[NU + 1] = {0};
                    for (int v = 0; v < nu; v++)
                        for (size_t i = 0; i < m.n_params; i++) got[v][i] = NAN;
#pragma omp parallel num_threads(nth)
                    {
                        dpt_split_unit u[NU + 1];
                        size_t a = 0;
                        for (int v = 0; v < nu; v++) {
                            const float *X = lay ? apart[v] + ds.ld : ds.X + a * ds.ld;
                            u[v] = (dpt_split_unit){X, ds.y + a, rows[v], got[v], 0};
                            a += rows[v];
                        }
                        const int ith = omp_get_thread_num();
                        dpt_model_grad_split(&m, &tab[ti], w, ds.ld, u, nu, sc, ith, nth, omp_sync,
                                             NULL, NULL);
                        for (int v = ith; v < nu; v += nth) loss[v] = u[v].loss;
                    }
                    for (int v = 0; v < nu; v++) {
                        cr_expect_eq(memcmp(ref[v], got[v], m.n_params * sizeof(float)), 0,
                                     "%s, rows %s, %d threads, unit %d (%zu rows): the "
                                     "gradient's bits differ",
                                     tab[ti].isa, lay ? "apart" : "side by side", nth, v, rows[v]);
                        cr_expect_eq(loss[v], lref[v], "%s, %d threads, unit %d: loss", tab[ti].isa,
                                     nth, v);
                    }
                }
            for (int v = 0; v < nu; v++) free(ref[v]), free(got[v]), free(apart[v]);
        }
    free(sc);
    free(w);
    dpt_dataset_free(&ds);
}

/* The canonical pairwise sum of n gradients (rounds of pairs (a, a + s)),
 * as plain float adds, into out. */
static void pairwise_sum(float *const *g, int n, size_t len, float *out)
{
    float **t = malloc((size_t)n * sizeof *t);
    for (int v = 0; v < n; v++) {
        t[v] = malloc(len * sizeof(float));
        memcpy(t[v], g[v], len * sizeof(float));
    }
    for (int s = 1; s < n; s *= 2)
        for (int a = 0; a + s < n; a += 2 * s)
            for (size_t i = 0; i < len; i++) t[a][i] += t[a + s][i];
    memcpy(out, t[0], len * sizeof(float));
    for (int v = 0; v < n; v++) free(t[v]);
    free(t);
}

/* Units summed as they go (dpt_split_fold): each item's first gradient is
 * the pairwise sum of its units' own gradients, bit for bit, whether the
 * tile holds the item's dW rows (784 inputs) or not (6,000 inputs, 8 units:
 * written and added in place; the vector tables fold either in their
 * sgemm_tn_fold, the scalar table has none), for items of 2-8 units and singles beside
 * them; units of 1-3 rows, of one row each, and of 4-16 rows (the AVX-512
 * fold's instances: rows that differ, rows all alike, more than four). */
Test(split, units_folded, .timeout = 180)
{
    enum { NU = 8, NR = 3 };
    static const size_t rows_of[NR][NU] = {
        {2, 2, 3, 2, 2, 2, 2, 1}, {1, 1, 1, 1, 1, 1, 1, 1}, {5, 16, 7, 9, 4, 4, 4, 4}};
    static const int ends[][NU] = {
        {8, 0, 0, 0, 0, 0, 0, 0}, /* one item */
        {4, 0, 0, 0, 8, 0, 0, 0}, /* two of four */
        {0, 4, 0, 0, 6, 0, 0, 0}, /* a single, three, two, two singles */
        {7, 0, 0, 0, 0, 0, 0, 0}, /* seven: three partial subtrees at the end */
        {0, 7, 0, 0, 0, 0, 0, 0}, /* six */
    };
    for (int mi = 0; mi < 2; mi++) {
        dpt_model m;
        if (mi == 0) {
            cr_assert_eq(ref_fmnist_mlp(&m), 0);
        } else {
            dpt_model_spec sp = {.kind = DPT_MODEL_MLP,
                                 .inputs = 6000,
                                 .n_hidden = 1,
                                 .hidden = {24},
                                 .classes = 3,
                                 .act = DPT_ACTIVATION_TANH,
                                 .loss = DPT_LOSS_CE};
            cr_assert_eq(dpt_model_init(&m, &sp), 0);
        }
        cr_expect_eq(dpt_split_fold_fits(&m, NU), mi == 0, "model %d: does the tile hold it", mi);
        dpt_dataset ds;
        cr_assert_leq(16, dpt_model_block_rows(&m));
        ref_make_data(&ds, 64, m.width[0], &m.spec, 13);
        float *w = malloc(m.n_params * sizeof *w), *want = malloc(m.n_params * sizeof *want);
        dpt_model_init_params(&m, w, 5, DPT_INIT_UNIFORM);
        float *ref[NU], *got[NU], *tile[5];
        float *sc = calloc(dpt_model_scratch_floats(&m), sizeof *sc);
        dpt_kernels tab[3];
        const int ntab = split_tables(tab);
        for (int ri = 0; ri < NR; ri++)
            for (int ti = 0; ti < ntab; ti++) {
                const size_t *rows = rows_of[ri];
                size_t at = 0, sum = 0;
                for (int v = 0; v < NU; v++) sum += rows[v];
                /* one block of rows (the 784-input model's holds them all) */
                if (sum > dpt_model_block_rows(&m)) {
                    cr_assert_neq(mi, 0, "the 784-input model's block holds %zu rows", sum);
                    continue;
                }
                for (int v = 0; v < NU; v++) {
                    ref[v] = malloc(m.n_params * sizeof(float));
                    got[v] = malloc(m.n_params * sizeof(float));
                    dpt_model_grad_to(&m, &tab[ti], w, ds.X + at * ds.ld, ds.ld, ds.y + at, rows[v],
                                      ref[v], sc);
                    at += rows[v];
                }
                for (size_t ei = 0; ei < sizeof ends / sizeof ends[0]; ei++)
                    for (int nth = 1; nth <= 5; nth += 2) {
                        for (int v = 0; v < NU; v++)
                            for (size_t i = 0; i < m.n_params; i++) got[v][i] = NAN;
#pragma omp parallel num_threads(nth)
                        {
                            const int ith = omp_get_thread_num();
                            tile[ith] = malloc(DPT_SPLIT_TILE_FLOATS * sizeof(float));
                            dpt_split_unit u[NU];
                            size_t a = 0;
                            for (int v = 0; v < NU; v++) {
                                u[v] = (dpt_split_unit){ds.X + a * ds.ld, ds.y + a, rows[v], got[v],
                                                        0};
                                a += rows[v];
                            }
                            const dpt_split_fold fo = {ends[ei], tile[ith]};
                            dpt_model_grad_split(&m, &tab[ti], w, ds.ld, u, NU, sc, ith, nth,
                                                 omp_sync, NULL, &fo);
                            free(tile[ith]);
                        }
                        for (int v = 0; v < NU; v++) {
                            int e = ends[ei][v] > v + 1 ? ends[ei][v] : v + 1;
                            int inside = 0; /* v is past the first unit of an item */
                            for (int x = 0; x < v; x++) inside |= ends[ei][x] > v;
                            if (inside) continue;
                            pairwise_sum(ref + v, e - v, m.n_params, want);
                            cr_expect_eq(memcmp(want, got[v], m.n_params * sizeof(float)), 0,
                                         "%s, model %d, rows %d, items %zu, %d threads: the sum "
                                         "of units %d-%d differs",
                                         tab[ti].isa, mi, ri, ei, nth, v, e - 1);
                        }
                    }
                for (int v = 0; v < NU; v++) free(ref[v]), free(got[v]);
            }
        free(sc);
        free(w);
        free(want);
        dpt_dataset_free(&ds);
    }
}
