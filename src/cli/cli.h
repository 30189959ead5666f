/* Subcommands of the dpt tool. Each returns the process exit status:
 * 0 ok, 1 runtime failure (bad data, divergence), 2 bad usage. */
#ifndef DPT_CLI_H
#define DPT_CLI_H

int dpt_cmd_train(int argc, char **argv);
int dpt_cmd_bench(int argc, char **argv);
int dpt_cmd_tune(int argc, char **argv);
int dpt_cmd_limits(int argc, char **argv);
int dpt_cmd_info(int argc, char **argv);
int dpt_cmd_eval(int argc, char **argv);
int dpt_cmd_predict(int argc, char **argv);
int dpt_cmd_topo(int argc, char **argv);
int dpt_cmd_gen(int argc, char **argv);
int dpt_cmd_convert(int argc, char **argv);
int dpt_cmd_compare(int argc, char **argv);
int dpt_cmd_plot(int argc, char **argv);

#endif
