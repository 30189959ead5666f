/* Time to accuracy in the run layer (dpt_run_spec.target_loss and
 * target_accuracy): the run stops at the first epoch whose metrics reach
 * the target, on the held-out set when there is one, and reports the
 * epoch and the training seconds up to it; a target out of reach runs
 * every epoch and says so. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "../core/ref.h"
#include "dpt/error.h"
#include "dpt/run.h"

static void small_spec(dpt_run_spec *s, dpt_model *m, dpt_dataset *ds)
{
    dpt_optim_spec o;
    cr_assert_eq(ref_small_mlp(m, ds, &o, 300), 0);
    dpt_run_spec_defaults(s);
    s->train = ds;
    s->model = m->spec;
    s->opt = o;
    ref_engine_opts(&s->engine, 2, 1);
    s->engine.seed = 7;
    s->epochs = 40;
}

typedef struct trail {
    int n;
    double loss[64], test_acc[64];
} trail;

static int keep(const dpt_run_epoch *ep, void *ud)
{
    trail *t = ud;
    t->loss[t->n] = ep->train.loss;
    t->test_acc[t->n] = ep->test.accuracy;
    t->n++;
    return 0;
}

/* The loss after every epoch of a run without a target. */
static void full_trail(dpt_run_spec s, trail *t)
{
    s.eval_epochs = 1;
    s.on_epoch = keep;
    s.ud = t;
    dpt_run_result res;
    cr_assert_eq(dpt_run_once(&s, &res, NULL), 0, "%s", dpt_last_error());
    cr_assert_eq(res.target_reached, 0);
    cr_assert_eq(res.target_epoch, -1);
    cr_assert(isnan(res.target_seconds));
}

Test(target, stops_at_the_first_epoch_that_reaches_the_loss)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_run_spec s;
    small_spec(&s, &m, &ds);
    trail t = {0};
    full_trail(s, &t);
    cr_assert_eq(t.n, 40);
    /* a loss first reached in the middle of the run */
    const double target = t.loss[9] * 1.0000001;
    int first = 0;
    while (!(t.loss[first] <= target)) first++;
    s.target_loss = target;
    trail u = {0};
    s.on_epoch = keep;
    s.ud = &u;
    dpt_run_result res;
    cr_assert_eq(dpt_run_once(&s, &res, NULL), 0, "%s", dpt_last_error());
    cr_assert_eq(res.target_reached, 1);
    cr_assert_eq(res.target_epoch, first + 1);
    cr_assert_eq(res.epochs, first + 1, "the run stops at the target");
    cr_assert_eq(u.n, first + 1, "the callback sees the epoch that reached it");
    cr_assert_eq(res.stopped, 0, "a target is not the callback's stop");
    cr_assert(res.target_seconds > 0 && res.target_seconds <= res.seconds);
    cr_assert(res.train.loss <= target, "final metrics are those of the stopping epoch");
    dpt_dataset_free(&ds);
}

Test(target, out_of_reach_runs_every_epoch)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_run_spec s;
    small_spec(&s, &m, &ds);
    s.epochs = 5;
    s.target_loss = 1e-30;
    dpt_run_result res;
    cr_assert_eq(dpt_run_once(&s, &res, NULL), 0, "%s", dpt_last_error());
    cr_assert_eq(res.target_reached, 0);
    cr_assert_eq(res.epochs, 5);
    cr_assert_eq(res.target_epoch, -1);
    cr_assert(isnan(res.target_seconds));
    dpt_dataset_free(&ds);
}

Test(target, accuracy_on_the_held_out_set)
{
    dpt_model m;
    dpt_dataset ds;
    dpt_run_spec s;
    small_spec(&s, &m, &ds);
    s.test = &ds; /* held out: the same rows, but the test metrics decide */
    trail t = {0};
    full_trail(s, &t);
    /* the best accuracy of the run, first reached at some epoch */
    int first = 0;
    for (int i = 1; i < t.n; i++)
        if (t.test_acc[i] > t.test_acc[first]) first = i;
    cr_assert(t.test_acc[first] > 0, "the run learns something");
    s.target_accuracy = t.test_acc[first];
    s.eval_epochs = 0; /* a target evaluates every epoch by itself */
    dpt_run_result res;
    cr_assert_eq(dpt_run_once(&s, &res, NULL), 0, "%s", dpt_last_error());
    cr_assert_eq(res.target_reached, 1);
    cr_assert_eq(res.target_epoch, first + 1);
    cr_assert(res.test.accuracy >= s.target_accuracy);
    dpt_dataset_free(&ds);
}
