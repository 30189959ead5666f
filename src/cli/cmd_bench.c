#include <stdio.h>
#include "cli/cli.h"
int dpt_cmd_bench(int argc, char **argv) { (void)argc; (void)argv; fputs("dpt bench: not available yet\n", stderr); return 2; }
