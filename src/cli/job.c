/* Flags of a training job, and the canonical workloads (dpt/run.h) as
 * presets of them: anything a workload does can also be spelled out by
 * hand, and flags given after it override it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "cli/args.h"
#include "cli/job.h"
#include "cli/mpi_cli.h"
#include "dpt/engine.h"
#include "dpt/mpi.h"
#include "dpt/error.h"
#include "dpt/run.h"

const char *cli_workload_names(void)
{
    static char buf[256];
    if (!buf[0])
        for (int i = 0; i < dpt_workload_count(); i++) {
            if (i) strcat(buf, ", ");
            strcat(buf, dpt_workload_at(i)->name);
        }
    return buf;
}

void cli_job_init(cli_job *j)
{
    memset(j, 0, sizeof *j);
    cli_train_defaults(&j->to);
    cli_data_opts_init(&j->data);
}

int cli_job_flag(const char *cmd, cli_job *j, int opt, const char *arg)
{
    if (opt == CLI_OPT_WORKLOAD) return 1; /* applied by cli_job_preset */
    int r = cli_train_flag(cmd, &j->to, opt, arg);
    if (r) return r;
    if (opt == 1115) j->data.seed = j->to.seed; /* --seed also seeds the --val split */
    return cli_data_flag(cmd, &j->data, opt, arg);
}

/* The workload's settings, as if its flags had been given. */
static void apply_preset(cli_job *j, const dpt_workload *w)
{
    cli_train_opts *t = &j->to;
    cli_data_opts *d = &j->data;
    t->model = w->model;
    t->model_set = 1;
    t->hidden_set = t->loss_set = w->model.kind == DPT_MODEL_MLP;
    t->opt.kind = w->opt.kind;
    t->opt.lr = w->opt.lr;
    t->opt.momentum = w->opt.momentum;
    t->opt.batch = w->opt.batch;
    t->batch_set = w->opt.kind != DPT_OPT_GD;
    t->momentum_set = dpt_optim_has_velocity(&w->opt);
    t->init = w->init;
    t->epochs = w->epochs;
    t->seed = d->seed = w->seed;
    t->shuffle = w->shuffle;
    d->synth = w->synth;
    d->data = w->train_path;
    d->labels = w->train_label;
    d->test = w->test_path;
    d->test_labels = w->test_label;
    d->standardize = w->standardize;
}

/* one changed setting onto buf's list */
static void add_change(char *buf, size_t len, int *n, const char *what)
{
    size_t at = strlen(buf);
    if (at < len) snprintf(buf + at, len - at, "%s%s", (*n)++ ? ", " : "", what);
}

static int same_str(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

static int same_model(const dpt_model_spec *a, const dpt_model_spec *b)
{
    if (a->kind != b->kind || a->n_hidden != b->n_hidden) return 0;
    for (int l = 0; l < a->n_hidden; l++)
        if (a->hidden[l] != b->hidden[l]) return 0;
    /* activation and loss are the MLP's own; the others imply theirs */
    return a->kind != DPT_MODEL_MLP || (a->act == b->act && a->loss == b->loss);
}

int cli_job_changes(const cli_job *j, char *buf, size_t len)
{
    const dpt_workload *w = j->workload;
    if (len) buf[0] = 0;
    if (!w) return 0;
    const cli_train_opts *t = &j->to;
    const cli_data_opts *d = &j->data;
    const dpt_optim_spec *o = &t->opt, *wo = &w->opt;
    char what[96];
    int n = 0;
    if (!same_str(d->synth, w->synth) || !same_str(d->data, w->train_path) ||
        !same_str(d->labels, w->train_label) || d->standardize != w->standardize)
        add_change(buf, len, &n, "data");
    if (d->val > 0) add_change(buf, len, &n, "training rows (--val)");
    if (!same_model(&t->model, &w->model)) add_change(buf, len, &n, "model");
    if (o->kind != wo->kind) add_change(buf, len, &n, "optimizer");
    if (o->kind != DPT_OPT_GD && o->batch != wo->batch) {
        snprintf(what, sizeof what, "batch %zu (workload %zu)", o->batch, wo->batch);
        add_change(buf, len, &n, what);
    }
    if (o->lr != wo->lr) {
        snprintf(what, sizeof what, "lr %g (workload %g)", o->lr, wo->lr);
        add_change(buf, len, &n, what);
    }
    if (dpt_optim_has_velocity(o) && o->momentum != wo->momentum) {
        snprintf(what, sizeof what, "momentum %g (workload %g)", o->momentum, wo->momentum);
        add_change(buf, len, &n, what);
    }
    if (o->weight_decay != wo->weight_decay || o->schedule != wo->schedule ||
        o->warmup != wo->warmup || o->clip_norm != wo->clip_norm)
        add_change(buf, len, &n, "learning-rate schedule, weight decay or clipping");
    if (t->epochs != w->epochs) {
        snprintf(what, sizeof what, "epochs %d (workload %d)", t->epochs, w->epochs);
        add_change(buf, len, &n, what);
    }
    if (t->seed != w->seed) add_change(buf, len, &n, "seed");
    if (t->shuffle != w->shuffle) add_change(buf, len, &n, "shuffling");
    if (t->init != w->init) add_change(buf, len, &n, "initialization");
    return n;
}

int cli_job_preset(const char *cmd, cli_job *j, int argc, char **argv)
{
    const char *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (!strcmp(argv[i], "--workload") && i + 1 < argc) name = argv[i + 1];
        if (!strncmp(argv[i], "--workload=", 11)) name = argv[i] + 11;
    }
    if (!name) return 0;
    if (!(j->workload = dpt_workload_find(name)))
        return cli_usage_error(cmd, "--workload: '%s' is not one of: %s", name,
                               cli_workload_names());
    apply_preset(j, j->workload);
    return 0;
}

/* The rows of an n-row training set this rank trains on. */
static int rank_rows(void *ud, size_t n, dpt_row_range **out, size_t *nout)
{
    const cli_job *j = ud;
    return dpt_engine_rank_rows(n, &j->to.opt, j->to.shuffle != 0, j->to.deterministic,
                                cli_mpi_rank(), cli_mpi_size(), out, nout);
}

/* The bits of a data set's held rows (features and labels), in 64 fixed
 * blocks hashed in parallel and combined in order, so that the value does
 * not depend on the thread count: four FNV-1a lanes over 32-bit words. */
static uint64_t data_hash(const dpt_dataset *ds)
{
    enum { BLOCKS = 64 };
    uint64_t hb[BLOCKS];
    const size_t n = ds->n, d = ds->d;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < BLOCKS; b++) {
        uint64_t h[4] = {0xcbf29ce484222325ULL, 1, 2, 3};
        for (size_t i = n * (size_t)b / BLOCKS; i < n * (size_t)(b + 1) / BLOCKS; i++) {
            if (!dpt_dataset_holds(ds, i, i + 1)) continue;
            const float *x = ds->X + i * ds->ld;
            for (size_t k = 0; k < d; k++) {
                uint32_t w;
                memcpy(&w, &x[k], sizeof w);
                h[k & 3] = (h[k & 3] ^ w) * 0x100000001b3ULL;
            }
            uint32_t w;
            memcpy(&w, &ds->y[i], sizeof w);
            h[0] = (h[0] ^ w) * 0x100000001b3ULL;
        }
        hb[b] = h[0] ^ (h[1] * 3) ^ (h[2] * 5) ^ (h[3] * 7);
    }
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int b = 0; b < BLOCKS; b++) h = (h ^ hb[b]) * 0x100000001b3ULL;
    return h;
}

/* Under mpirun every rank must train on the same data: a rank that read a
 * file of another shape would leave the others in a collective of another
 * size, and one of the same shape but other rows would train silently on a
 * mix. Rank 0 compares every rank's shape and content (rows held per rank
 * under per-rank loading: the shape alone) with its own; any difference
 * ends the job with one line. Ranks that sit out (tune) skip it. */
static int agree_on_data(const char *cmd, const cli_job *j)
{
    if (!cli_mpi_comm()) return 0;
    char mine[320];
    int len = snprintf(mine, sizeof mine, "%zu rows x %zu features, %s labels", j->train.n,
                       j->train.d, j->train.label_kind == DPT_LABEL_REAL ? "real" : "class");
    if (j->test.n)
        len += snprintf(mine + len, sizeof mine - (size_t)len, ", a test set of %zu x %zu",
                        j->test.n, j->test.d);
    if (!j->train.part)
        snprintf(
            mine + len, sizeof mine - (size_t)len, ", content %016llx",
            (unsigned long long)(data_hash(&j->train) ^ (j->test.n ? data_hash(&j->test) : 0)));
    char *all = NULL;
    size_t *lens = NULL;
    if (dpt_mpi_gather_text(mine, strlen(mine) + 1, &all, &lens))
        return cli_mpi_agree(cli_fail(cmd, "%s", dpt_last_error()));
    int rc = 0;
    if (all) { /* rank 0 */
        const char *t = all;
        for (int r = 0; r < cli_mpi_size() && !rc; t += lens[r++])
            if (strcmp(t, mine))
                rc = cli_fail(cmd,
                              "rank %d trains on other data than rank 0: %s on rank %d, %s "
                              "on rank 0 (every rank must read the same data)",
                              r, t, r, mine);
    }
    free(all);
    free(lens);
    return cli_mpi_agree(rc);
}

int cli_job_load(const char *cmd, cli_job *j, int threads)
{
    const int per_rank = j->per_rank && cli_mpi_size() > 1;
    if (per_rank && !j->data.standardize && !(j->data.val > 0)) {
        j->data.rows_wanted = rank_rows;
        j->data.rows_ud = j;
    }
    int rc = cli_data_load(cmd, &j->data, threads, &j->train, &j->test, &j->val, &j->st);
    int classes = j->data.classes;
    if (!rc)
        rc = cli_data_check_labels(cmd, &j->data, (dpt_label_kind)cli_train_label_kind(&j->to),
                                   &j->train, &j->test, &j->val, &classes);
    if (per_rank) {
        /* a rank that failed to load must not leave the others waiting */
        if ((rc = cli_mpi_agree(rc))) return rc;
        /* each rank saw the labels of its own rows: the largest class id
         * of any rank sizes the model on all */
        double k = classes;
        if (dpt_mpi_max_double(&k)) return cli_fail(cmd, "%s", dpt_last_error());
        classes = (int)k;
    } else if ((rc = cli_mpi_agree(rc))) {
        return rc; /* before the data comparison, which is a collective */
    }
    if ((rc = agree_on_data(cmd, j))) return rc;
    return cli_train_finish(cmd, &j->to, j->train.d, classes, &j->model);
}

int cli_job_spec(const char *cmd, const cli_job *j, int threads, dpt_run_spec *s)
{
    dpt_run_spec_defaults(s);
    if (cli_engine_opts(cmd, &j->to, threads, &s->engine)) return DPT_EXIT_USAGE;
    s->engine.comm = cli_mpi_comm();
    s->engine.init = j->to.init;
    s->train = &j->train;
    s->test = j->test.n ? &j->test : j->val.n ? &j->val : NULL;
    s->model = j->model.spec;
    s->opt = j->to.opt;
    s->epochs = j->to.epochs;
    s->target_loss = j->to.target_loss;
    s->target_accuracy = j->to.target_accuracy;
    return 0;
}

void cli_job_free(cli_job *j)
{
    dpt_dataset_free(&j->train);
    dpt_dataset_free(&j->test);
    dpt_dataset_free(&j->val);
    dpt_standardizer_free(&j->st);
}
