/* The tuning race over runs of one spec: each candidate's measurement is a
 * timed run with its thread count, pinning, batch and balancing, its first
 * one after the spec's warm-up epochs. */
#include <string.h>

#include "dpt/error.h"
#include "dpt/run.h"

typedef struct race_ctx {
    const dpt_run_spec *base;
} race_ctx;

static double measure(void *ud, const dpt_tune_candidate *c, int rep)
{
    const race_ctx *x = ud;
    dpt_run_spec s = *x->base;
    s.engine.threads = c->threads;
    s.warmup = rep == 0 ? x->base->warmup : 0;
    s.evaluate = 0;
    s.eval_epochs = 0;
    s.on_epoch = NULL;
    s.progress = NULL;
    if (c->batch > 0) s.opt.batch = (size_t)c->batch;
    if (c->balance[0])
        s.engine.balance =
            strcmp(c->balance, "adaptive") ? DPT_BALANCE_STATIC : DPT_BALANCE_ADAPTIVE;
    int rc = dpt_pin_parse(c->pin, &s.engine.pin);
    if (rc) return (double)rc;
    s.engine.pin.smt = x->base->engine.pin.smt;
    dpt_run_result res;
    rc = dpt_run_once(&s, &res, NULL);
    dpt_pin_spec_free(&s.engine.pin);
    if (rc) return (double)rc;
    /* with a target the race is to it, since batch sizes and balancing
     * change convergence: seconds until reached; never reached counts as
     * DPT_TUNE_NOT_REACHED seconds more than the run took (the race takes
     * finite times only) */
    if (s.target_loss > 0 || s.target_accuracy > 0)
        return res.target_reached ? res.target_seconds : DPT_TUNE_NOT_REACHED + res.seconds;
    return res.seconds / res.epochs;
}

int dpt_tune_spec(const dpt_run_spec *base, const dpt_tune_candidate *cands, int n,
                  const dpt_tune_options *opt, dpt_tune_result *out)
{
    race_ctx x = {base};
    return dpt_tune_run(cands, n, opt, measure, &x, out);
}
