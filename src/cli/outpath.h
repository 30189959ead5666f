/* Checks of output paths, made before a command does any work. */
#ifndef DPT_CLI_OUTPATH_H
#define DPT_CLI_OUTPATH_H

/* 0 when path ("-" is standard output, NULL nothing) can be written: an
 * existing file that may be replaced, a device or pipe that may be written,
 * or a new file in a directory that exists and takes new files. Else the
 * failure status after one line naming the flag, the path and the problem
 * (missing directory, a directory given as the file, no permission, a
 * read-only file system); an empty path is a usage error. */
int cli_check_output(const char *cmd, const char *flag, const char *path);

#endif
