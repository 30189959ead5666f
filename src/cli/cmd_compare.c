/* placeholder: being written */
#include <stdio.h>
#include "cli/cli.h"
int dpt_cmd_compare(int argc, char **argv) { (void)argc; (void)argv; fputs("dpt compare: not available yet\n", stderr); return 2; }
