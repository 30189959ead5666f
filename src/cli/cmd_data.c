/* placeholder: being written */
#include <stdio.h>
#include "cli/cli.h"
int dpt_cmd_gen(int argc, char **argv) { (void)argc; (void)argv; fputs("dpt gen: not available yet\n", stderr); return 2; }
int dpt_cmd_convert(int argc, char **argv) { (void)argc; (void)argv; fputs("dpt convert: not available yet\n", stderr); return 2; }
