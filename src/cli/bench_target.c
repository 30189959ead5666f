/* Time to accuracy for dpt bench: see bench_target.h. The configurations
 * run one after another, each repetition from the run's initial
 * parameters; the seconds are training time only (the metrics after each
 * epoch are not timed). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/bench_target.h"
#include "cli/mpi_cli.h"
#include "dpt/error.h"
#include "dpt/file.h"
#include "dpt/stats.h"
#include "dpt/topo.h"

/* One configuration's repetitions: 0, or a dpt status (message set). */
static int measure(const dpt_run_spec *base, int threads, const char *pin, int reps, int max_epochs,
                   double *secs, double *epochs, int *reached)
{
    dpt_run_spec s = *base;
    s.engine.threads = threads;
    s.epochs = max_epochs;
    s.evaluate = 0;
    s.on_epoch = NULL;
    s.progress = NULL;
    s.interrupt = NULL;
    int rc = dpt_pin_parse(pin, &s.engine.pin);
    if (rc) return rc;
    s.engine.pin.smt = base->engine.pin.smt;
    dpt_run *r = NULL;
    if (!(rc = dpt_run_create(&r, &s))) {
        *reached = 0;
        for (int i = 0; i < reps && !rc; i++) {
            dpt_run_result res;
            rc = dpt_run_train(r, &res);
            if (!rc && res.target_reached) {
                secs[*reached] = res.target_seconds;
                epochs[(*reached)++] = res.target_epoch;
            }
        }
    }
    dpt_run_destroy(r);
    dpt_pin_spec_free(&s.engine.pin);
    return rc;
}

int cli_bench_target(const char *cmd, const dpt_run_spec *base, const char *on, const int *threads,
                     int nt, char pins[][32], int np, int reps, int max_epochs, FILE *out,
                     json_t **json)
{
    const int rank0 = cli_mpi_rank() == 0;
    double *secs = malloc((size_t)reps * sizeof *secs), *eps = malloc((size_t)reps * sizeof *eps);
    *json = NULL;
    if (!secs || !eps) {
        free(secs);
        free(eps);
        return cli_fail(cmd, "out of memory");
    }
    char what[128];
    int len = 0;
    if (base->target_loss > 0) len = snprintf(what, sizeof what, "loss <= %g", base->target_loss);
    if (base->target_accuracy > 0)
        len += snprintf(what + len, sizeof what - (size_t)len, "%saccuracy >= %g",
                        len ? " and " : "", base->target_accuracy);
    snprintf(what + len, sizeof what - (size_t)len, " on %s", on);
    json_t *root = json_object(), *rows = json_array();
    if (base->target_loss > 0) json_object_set_new(root, "loss", json_real(base->target_loss));
    if (base->target_accuracy > 0)
        json_object_set_new(root, "accuracy", json_real(base->target_accuracy));
    json_object_set_new(root, "on", json_string(on));
    json_object_set_new(root, "max_epochs", json_integer(max_epochs));
    json_object_set_new(root, "reps", json_integer(reps));
    json_object_set_new(root, "rows", rows);
    if (rank0) {
        fprintf(out,
                "\ntime to target (%s; at most %d epochs, %d reps; seconds of training until "
                "reached):\n",
                what, max_epochs, reps);
        fprintf(out, "%8s %-12s %8s %12s %12s %8s\n", "threads", "pin", "epochs", "median s",
                "IQR s", "reached");
    }
    int rc = 0;
    for (int p = 0; p < np && !rc; p++)
        for (int t = 0; t < nt && !rc; t++) {
            int reached = 0;
            if ((rc = measure(base, threads[t], pins[p], reps, max_epochs, secs, eps, &reached))) {
                rc = cli_fail(cmd, "time to target, %d threads, pin %s: %s", threads[t], pins[p],
                              dpt_last_error());
                break;
            }
            json_t *row = json_pack("{s:i,s:s,s:i}", "threads", threads[t], "pin", pins[p],
                                    "reached", reached);
            dpt_summary sm;
            if (reached && !dpt_stats_summarize(secs, (size_t)reached, &sm)) {
                double em = dpt_stats_median(eps, (size_t)reached);
                json_t *samples = json_array();
                for (int i = 0; i < reached; i++)
                    json_array_append_new(samples, json_real(secs[i]));
                json_object_set_new(row, "epochs_median", json_real(em));
                json_object_set_new(row, "seconds",
                                    json_pack("{s:f,s:f,s:f,s:f,s:o}", "median", sm.median, "min",
                                              sm.min, "max", sm.max, "iqr", sm.iqr, "samples",
                                              samples));
                if (rank0)
                    fprintf(out, "%8d %-12s %8.1f %12.4g %12.3g %5d/%d\n", threads[t], pins[p], em,
                            sm.median, sm.iqr, reached, reps);
            } else {
                json_object_set_new(row, "seconds", json_null());
                if (rank0)
                    fprintf(out, "%8d %-12s %8s %12s %12s %5d/%d\n", threads[t], pins[p], "-",
                            "not reached", "-", reached, reps);
            }
            json_array_append_new(rows, row);
        }
    free(secs);
    free(eps);
    if (rc || !rank0) {
        json_decref(root);
        return rc;
    }
    *json = root;
    return 0;
}

int cli_write_json_plus(const char *cmd, cli_json_writer write, const void *obj, const char *path,
                        const char *key, json_t *extra)
{
    if (!extra) return write(obj, path) ? cli_fail(cmd, "%s", dpt_last_error()) : 0;
    /* the library's JSON, read back, with the key added */
    char tmp[] = "/tmp/dpt-json-XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0) return cli_fail(cmd, "cannot create a temporary file in /tmp");
    close(fd);
    int rc = 0;
    json_t *root = NULL;
    json_error_t err;
    if (write(obj, tmp))
        rc = cli_fail(cmd, "%s", dpt_last_error());
    else if (!(root = json_load_file(tmp, 0, &err)))
        rc = cli_fail(cmd, "%s: %s", tmp, err.text);
    unlink(tmp);
    if (!rc) {
        json_object_set(root, key, extra);
        if (dpt_json_write_atomic(root, path)) rc = cli_fail(cmd, "%s", dpt_last_error());
    }
    json_decref(root);
    return rc;
}

static int write_bench(const void *rep, const char *path)
{
    return dpt_bench_report_write_json(rep, path);
}

int cli_bench_write_json(const char *cmd, const dpt_bench_report *rep, const char *path,
                         const char *key, json_t *extra)
{
    return cli_write_json_plus(cmd, write_bench, rep, path, key, extra);
}

const char *cli_machine_warning(const dpt_bench_report *r, char (*warn)[DPT_WARNING_LEN],
                                size_t cap)
{
    const size_t nw = dpt_bench_report_warnings(r, warn, cap);
    for (size_t w = 0; w < nw && w < cap; w++) {
        int of_row = 0;
        for (size_t j = 0; j < r->nresults && !of_row; j++) {
            size_t l = strlen(r->results[j].workload);
            of_row = !strncmp(warn[w], r->results[j].workload, l) && !strncmp(warn[w] + l, ", ", 2);
        }
        if (!of_row) return warn[w];
    }
    return NULL;
}
