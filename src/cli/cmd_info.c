#include <stdio.h>
#include "cli/cli.h"
int dpt_cmd_info(int argc, char **argv) { (void)argc; (void)argv; fputs("dpt info: not available yet\n", stderr); return 2; }
