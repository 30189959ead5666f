/* Real data, end to end through the dpt tool: scikit-learn's bundled sets
 * against scikit-learn's own fits (computed once with scikit-learn 1.2 on
 * the same standardized data: LogisticRegression(C=1) is dpt's softmax or
 * logistic with --weight-decay 1/n; LinearRegression is linear GD run to
 * convergence), and Fashion-MNIST accuracy. Needs python3-sklearn and
 * dataset-fashion-mnist, which scripts/setup installs. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SK "/usr/lib/python3/dist-packages/sklearn/datasets/data/"
#define FM "/usr/share/datasets/fashion-mnist/"

/* Run dpt with args and --json; return the "final" object's number key. */
static json_t *run_json(const char *args)
{
    const char *exe = getenv("DPT_EXE");
    cr_assert(exe);
    char path[64], cmd[2048];
    snprintf(path, sizeof path, "/tmp/dpt-real-%d.json", (int)getpid());
    snprintf(cmd, sizeof cmd, "%s %s --quiet --json %s", exe, args, path);
    int st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "failed: %s", cmd);
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    cr_assert(root, "%s: %s", path, err.text);
    unlink(path);
    return root;
}

static double final_num(json_t *root, const char *key)
{
    json_t *v = json_object_get(json_object_get(root, "final"), key);
    cr_assert(json_is_number(v), "final.%s missing", key);
    return json_number_value(v);
}

struct sk_case {
    char name[32];
    char args[512];
    double loss, loss_tol; /* scikit-learn's training loss, relative tolerance */
    double acc;            /* its training accuracy (or R^2), absolute tolerance 0.005 */
    int r2;
};

ParameterizedTestParameters(realdata, sklearn_sets)
{
    static struct sk_case cases[] = {
        {"wine",
         "--data " SK "wine_data.csv --header yes --model softmax --standardize --opt gd "
         "--lr 0.5 --epochs 2000 --weight-decay 0.0056179775",
         0.0319, 0.05, 1.0, 0},
        {"breast cancer",
         "--data " SK "breast_cancer.csv --header yes --model logistic --standardize --opt gd "
         "--lr 0.5 --epochs 2000 --weight-decay 0.0017574692",
         0.0534, 0.05, 0.9877, 0},
        {"digits",
         "--data /tmp/dpt-digits.csv --model softmax --standardize --opt gd --lr 0.5 "
         "--epochs 2000 --weight-decay 0.00055648303",
         0.0291, 0.2, 0.9989, 0},
        {"diabetes",
         "--data /tmp/dpt-diabetes.txt --format csv --delimiter ' ' --model linear "
         "--standardize --opt gd --lr 0.1 --epochs 3000",
         2859.696, 0.001, 0.51775, 1},
    };
    return cr_make_param_array(struct sk_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct sk_case *c, realdata, sklearn_sets, .timeout = 120)
{
    /* the gzip'd and split files as plain CSV; each case may run in its own
     * process at the same time, so write aside and rename */
    cr_assert_eq(system("zcat " SK "digits.csv.gz > /tmp/dpt-digits.$$ && "
                        "mv /tmp/dpt-digits.$$ /tmp/dpt-digits.csv"),
                 0, "python3-sklearn is not installed (scripts/setup installs it)");
    cr_assert_eq(system("zcat " SK "diabetes_data_raw.csv.gz > /tmp/dpt-dx.$$ && "
                        "zcat " SK "diabetes_target.csv.gz > /tmp/dpt-dy.$$ && "
                        "paste -d' ' /tmp/dpt-dx.$$ /tmp/dpt-dy.$$ > /tmp/dpt-diab.$$ && "
                        "mv /tmp/dpt-diab.$$ /tmp/dpt-diabetes.txt; rm -f /tmp/dpt-dx.$$ "
                        "/tmp/dpt-dy.$$"),
                 0);
    char args[640];
    snprintf(args, sizeof args, "train %s --threads 2", c->args);
    json_t *root = run_json(args);
    double loss = final_num(root, "train_loss");
    double acc = final_num(root, c->r2 ? "train_r2" : "train_accuracy");
    cr_expect(fabs(loss - c->loss) <= c->loss_tol * c->loss, "%s: loss %g, scikit-learn %g",
              c->name, loss, c->loss);
    cr_expect(fabs(acc - c->acc) <= 0.005, "%s: %s %g, scikit-learn %g", c->name,
              c->r2 ? "R^2" : "accuracy", acc, c->acc);
    json_decref(root);
}

Test(realdata, fashion_mnist_softmax_regression, .timeout = 600)
{
    json_t *root = run_json("train --data " FM "train-images-idx3-ubyte.gz --labels " FM
                            "train-labels-idx1-ubyte.gz --test " FM "t10k-images-idx3-ubyte.gz "
                            "--test-labels " FM "t10k-labels-idx1-ubyte.gz --standardize "
                            "--model softmax --opt momentum --momentum 0.9 --batch 256 --lr 0.01 "
                            "--epochs 10 --seed 1 --threads 2");
    double acc = final_num(root, "test_accuracy");
    cr_expect(acc >= 0.83, "softmax regression test accuracy %g < 0.83", acc);
    json_decref(root);
}

Test(realdata, fashion_mnist_mlp, .timeout = 900)
{
    json_t *root = run_json("train --workload fmnist-mlp --threads 2");
    double acc = final_num(root, "test_accuracy");
    cr_expect(acc >= 0.88, "784-256-128-10 MLP test accuracy %g < 0.88", acc);
    json_decref(root);
}

/* The canonical workloads land on the reference losses of docs/workloads.md (float32
 * PyTorch runs): a wrong gradient, batch order or update rule shows here. */
struct wl_case {
    char name[32];
    double loss, tol; /* reference final training loss, relative tolerance */
    double acc;       /* reference accuracy, or -1 */
};

ParameterizedTestParameters(realdata, canonical_workloads)
{
    static struct wl_case cases[] = {
        {"linreg", 0.946503, 1e-5, -1},      {"logreg", 0.0482072, 1e-5, 0.97893},
        {"mlp-seed", 0.289081, 1e-5, -1},    {"mlp-seed-sgd", 0.0010806, 1e-4, -1},
        {"mlp-wide", 0.92205, 1e-3, 0.6548},
    };
    return cr_make_param_array(struct wl_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct wl_case *c, realdata, canonical_workloads, .timeout = 900)
{
    const char *exe = getenv("DPT_EXE");
    cr_assert(exe);
    char path[64], cmd[512];
    snprintf(path, sizeof path, "/tmp/dpt-wl-%d.json", (int)getpid());
    snprintf(cmd, sizeof cmd,
             "%s bench --workload %s --threads 2 --reps 1 --warmup 0 --no-limits --quiet "
             "--json %s > /dev/null",
             exe, c->name, path);
    int st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "failed: %s", cmd);
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    cr_assert(root, "%s: %s", path, err.text);
    unlink(path);
    json_t *r0 = json_array_get(json_object_get(root, "results"), 0);
    double loss = json_number_value(json_object_get(r0, "final_loss"));
    cr_expect(fabs(loss - c->loss) <= c->tol * c->loss, "%s: final loss %.7g, reference %.7g",
              c->name, loss, c->loss);
    if (c->acc >= 0) {
        double acc = json_number_value(json_object_get(r0, "final_accuracy"));
        cr_expect(fabs(acc - c->acc) <= 0.001, "%s: accuracy %.5f, reference %.5f", c->name, acc,
                  c->acc);
    }
    json_decref(root);
}
