/* dpt plot on `dpt train --json` files: the training curves of several runs
 * overlaid, loss against epoch and against training time, one line per run
 * labelled from the settings it recorded (optimizer, rate, batch, momentum).
 * Like the bench charts, the gnuplot script with its data stays beside the
 * PNG and SVG. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/plot.h"

/* One run's curve: loss after each epoch (the epoch's mean while training)
 * against the epoch and the cumulative training seconds. */
typedef struct curve {
    char label[160];
    int n;
    double *loss, *secs;
    int loaded; /* the run's load_average[0] >= 1, as dpt bench warns: hollow markers */
} curve;

/* "momentum lr 0.01 batch 32 mu 0.9" from the run's recorded settings;
 * the file name when it has none. */
static void label_of(json_t *root, const char *path, char *buf, size_t cap)
{
    json_t *c = json_object_get(root, "config");
    const char *opt = json_string_value(json_object_get(c, "opt"));
    if (!opt) opt = json_string_value(json_object_get(c, "optimizer")); /* before --config */
    if (!opt) {
        const char *slash = strrchr(path, '/');
        snprintf(buf, cap, "%s", slash ? slash + 1 : path);
        return;
    }
    int len = snprintf(buf, cap, "%s lr %g", opt, json_number_value(json_object_get(c, "lr")));
    json_int_t batch = json_integer_value(json_object_get(c, "batch"));
    if (len > 0 && (size_t)len < cap) {
        if (strcmp(opt, "gd"))
            len += snprintf(buf + len, cap - (size_t)len, ", batch %lld", (long long)batch);
        else
            len += snprintf(buf + len, cap - (size_t)len, ", full batch");
    }
    json_t *mu = json_object_get(c, "momentum");
    if (mu && len > 0 && (size_t)len < cap)
        snprintf(buf + len, cap - (size_t)len, ", momentum %g", json_number_value(mu));
}

static int read_curve(const char *path, curve *cv)
{
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (!root) return cli_fail("plot", "%s:%d: %s", path, err.line, err.text);
    int rc = 0;
    json_t *eps = json_object_get(root, "epochs");
    const char *schema = json_string_value(json_object_get(root, "schema"));
    if (!schema || strcmp(schema, "dpt-train/1") || !json_is_array(eps) || !json_array_size(eps)) {
        rc = cli_fail("plot", "%s: not a dpt train --json file with epochs (schema dpt-train/1)",
                      path);
        goto out;
    }
    cv->n = (int)json_array_size(eps);
    cv->loss = malloc((size_t)cv->n * sizeof *cv->loss);
    cv->secs = malloc((size_t)cv->n * sizeof *cv->secs);
    if (!cv->loss || !cv->secs) {
        rc = cli_fail("plot", "out of memory");
        goto out;
    }
    double t = 0;
    for (int i = 0; i < cv->n; i++) {
        json_t *e = json_array_get(eps, (size_t)i);
        json_t *l = json_object_get(e, "loss"), *s = json_object_get(e, "seconds");
        if (!json_is_number(l) || !json_is_number(s)) {
            rc = cli_fail("plot", "%s: epochs[%d] has no loss or seconds", path, i);
            goto out;
        }
        cv->loss[i] = json_number_value(l);
        cv->secs[i] = t += json_number_value(s);
    }
    label_of(root, path, cv->label, sizeof cv->label);
    json_t *la = json_array_get(json_object_get(root, "load_average"), 0);
    cv->loaded = json_is_number(la) && json_number_value(la) >= 1.0;
out:
    json_decref(root);
    return rc;
}

static void write_script(FILE *f, const curve *cv, int n, int logscale)
{
    fputs("# dpt plot: training curves; the data blocks are the runs in order\n$data << EOD\n", f);
    for (int r = 0; r < n; r++) {
        if (r) fputs("\n\n", f);
        fprintf(f, "# %s: epoch loss seconds\n", cv[r].label);
        for (int i = 0; i < cv[r].n; i++)
            fprintf(f, "%d %.9g %.9g\n", i + 1, cv[r].loss[i], cv[r].secs[i]);
    }
    fputs("EOD\n", f);
    for (int pass = 0; pass < 2; pass++) {
        fputs(pass ? "set terminal svg size 1400,560 dynamic font 'sans,11' noenhanced\n"
                     "set output 'training.svg'\n"
                   : "set terminal pngcairo size 1400,560 font 'sans,10' noenhanced\n"
                     "set output 'training.png'\n",
              f);
        int loaded = 0;
        for (int r = 0; r < n; r++) loaded |= cv[r].loaded;
        fprintf(f,
                "set multiplot layout 1,2 title 'training loss%s'\nset grid\nset key top right\n",
                loaded ? " (hollow markers: a run on a loaded machine, 1-minute load >= 1; its "
                         "seconds may be inflated)"
                       : "");
        fprintf(f, "%sset ylabel 'loss (mean over the epoch)'\n",
                logscale ? "set logscale y\n" : "unset logscale y\n");
        for (int panel = 0; panel < 2; panel++) {
            /* times differ by orders of magnitude between full batch and batch 1 */
            if (panel && logscale) fputs("set logscale x\n", f);
            fprintf(f, "set xlabel '%s'\nplot", panel ? "training time, s" : "epoch");
            for (int r = 0; r < n; r++) {
                fprintf(f,
                        "%s '$data' index %d using %d:2 with linespoints lw 2 pt %d ps %s title ",
                        r ? "," : "", r, panel ? 3 : 1, cv[r].loaded ? 6 : 7,
                        cv[r].loaded ? "0.8" : "0.5");
                cli_gp_str(f, cv[r].label);
            }
            fputc('\n', f);
        }
        fputs("unset multiplot\nunset output\nunset logscale x\n", f);
    }
}

int cli_plot_training(char **files, int n, const char *dir, int logscale)
{
    curve *cv = calloc((size_t)n, sizeof *cv);
    if (!cv) return cli_fail("plot", "out of memory");
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) rc = read_curve(files[i], &cv[i]);
    char path[4096];
    if (!rc && cli_mkdir_p(dir))
        rc = cli_fail("plot", "cannot create directory %s: %s", dir, strerror(errno));
    FILE *f = NULL;
    if (!rc && (snprintf(path, sizeof path, "%s/training.gp", dir) >= (int)sizeof path ||
                !(f = fopen(path, "w"))))
        rc = cli_fail("plot", "cannot write %s/training.gp: %s", dir, strerror(errno));
    if (!rc) {
        write_script(f, cv, n, logscale);
        if (fclose(f)) rc = cli_fail("plot", "cannot write %s: %s", path, strerror(errno));
    }
    if (!rc) {
        int st = cli_run_gnuplot(dir, "training.gp");
        if (st) rc = cli_fail("plot", "gnuplot failed on %s (exit %d)", path, st);
    }
    if (!rc) printf("%s/training.png\n%s/training.svg\n", dir, dir);
    for (int i = 0; i < n; i++) {
        free(cv[i].loss);
        free(cv[i].secs);
    }
    free(cv);
    return rc;
}
