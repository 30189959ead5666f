/* placeholder: being written */
#include <stdio.h>
#include "cli/cli.h"
int dpt_cmd_topo(int argc, char **argv) { (void)argc; (void)argv; fputs("dpt topo: not available yet\n", stderr); return 2; }
