/* dpt plot's pieces: the bench charts (cmd_plot.c) and the training curves
 * (plot_train.c) share gnuplot and the output directory. */
#ifndef DPT_CLI_PLOT_H
#define DPT_CLI_PLOT_H

#include <stdio.h>

/* gnuplot (or DPT_GNUPLOT) on script in dir; its exit status, 127 when it
 * could not be started. */
int cli_run_gnuplot(const char *dir, const char *script);
/* mkdir -p; 0 or -1 with errno. */
int cli_mkdir_p(const char *path);
/* s as a single-quoted gnuplot string. */
void cli_gp_str(FILE *f, const char *s);

/* The training curves of the dpt train --json files into dir/training.*;
 * 0 or the exit status after one line. */
int cli_plot_training(char **files, int n, const char *dir, int logscale);

#endif
