/* Flag parsing for the subcommands: long options only (getopt_long), and
 * value checks that print one line naming the flag and what it accepts. */
#ifndef DPT_CLI_ARGS_H
#define DPT_CLI_ARGS_H

#include <getopt.h>
#include <stddef.h>

/* Exit statuses of the tool. */
#define DPT_EXIT_OK    0
#define DPT_EXIT_FAIL  1
#define DPT_EXIT_USAGE 2

/* "dpt CMD: message" on stderr. Returns DPT_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "dpt CMD: message" on stderr. Returns DPT_EXIT_FAIL. */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse integer/real values of a flag in [lo, hi]; 0 ok, else prints and
 * returns DPT_EXIT_USAGE. */
int cli_long(const char *cmd, const char *flag, const char *val, long lo, long hi, long *out);
int cli_double(const char *cmd, const char *flag, const char *val, double lo, double hi,
               double *out);
/* val must be one of the NULL-terminated choices; *out gets its index. */
int cli_choice(const char *cmd, const char *flag, const char *val, const char *const *choices,
               int *out);

/* The name among n (at names, stride bytes apart, NULL-terminated or n
 * long) within a typo's distance of word[0..len), or NULL: for "did you
 * mean". */
const char *cli_closest(const char *word, size_t len, const char *const *names, size_t stride,
                        size_t n);

/* Adding a flag to a command takes two edits in one file: its entry in the
 * command's struct option table (or the shared CLI_*_OPTIONS macros) and
 * its line in the command's --help text (or the shared CLI_*_HELP macros),
 * written "  --flag ARG   what it does (default X)" with "(default ...)"
 * or "(required)" on that line, in the section saying what the command
 * prints. `dpt CMD --list-flags` (hidden, answered by cli_getopt) prints
 * the table; tests/cli/help.sh checks that every flag in it has its help
 * line with a default and that every --flag the help names is accepted. */

/* Print a --help text given in parts (C11 caps one string literal at 4095
 * characters), NULL-terminated, on standard output. */
void cli_help(const char *const *parts);

/* Run getopt_long and report an unknown flag (with the closest flag, when
 * one is a typo away) or a missing value the dpt way. Returns the option,
 * -1 at the end, or '?' after printing. */
int cli_getopt(const char *cmd, int argc, char **argv, const struct option *opts);

/* Split a comma-separated list: val is copied into buf (bufcap bytes) and
 * tok[i] points at its items. Returns their count, at least 1, or -1 after
 * one line naming --flag: a list too long for buf, more than cap items, or
 * none (example: what a good value looks like). */
int cli_split(const char *cmd, const char *flag, const char *val, char *buf, size_t bufcap,
              const char **tok, int cap, const char *example);

/* Parse a thread list "1,2,4", "1-16", "all" (physical cores) into out
 * (at most cap entries). Returns count, or -1 after printing. */
int cli_thread_list(const char *cmd, const char *flag, const char *val, int ncores, int *out,
                    int cap);

#endif
