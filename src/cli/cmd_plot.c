/* placeholder: being written */
#include <stdio.h>
#include "cli/cli.h"
int dpt_cmd_plot(int argc, char **argv) { (void)argc; (void)argv; fputs("dpt plot: not available yet\n", stderr); return 2; }
