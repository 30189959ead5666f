#include <stdio.h>
#include "cli/cli.h"
int dpt_cmd_train(int argc, char **argv) { (void)argc; (void)argv; fputs("dpt train: not available yet\n", stderr); return 2; }
