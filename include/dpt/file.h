/* Atomic file output: every file dpt writes (models, reports, JSON, traces)
 * either appears complete or not at all, and a crash never leaves a
 * half-written file where the old one was.
 *
 * A regular file (or a missing one) is written to a temporary file in the
 * same directory, named ".NAME.tmp.PID.XXXXXX" (NAME the target's last
 * component, PID the writing process, XXXXXX random), then flushed, fsync'd
 * and renamed over the target, and the directory is fsync'd. A leftover
 * file of that pattern whose PID no longer runs is stale and may be
 * removed. Special cases:
 *  - "-" is standard output, written through (and not closed);
 *  - a symbolic link is followed (to any depth): the file it points to is
 *    replaced and the link stays a link; a dangling link creates its target;
 *  - a character device or FIFO (/dev/null, /dev/stdout, a named pipe) is
 *    opened and written through, never replaced by a regular file;
 *  - a directory (or another kind of file) is refused. */
#ifndef DPT_FILE_H
#define DPT_FILE_H

#include "dpt/export.h"

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dpt_out_file {
    FILE *f;    /* write here */
    char *tmp;  /* the temporary file; NULL when written through */
    char *path; /* the file replaced on commit (links resolved); NULL for stdout */
    char *name; /* the path as given, for messages */
    int own;    /* 1: f was opened here and is closed by commit/abort */
} dpt_out_file;

/* Open path for writing as described above. A zeroed dpt_out_file may be
 * passed to abort and commit (nothing happens). 0, DPT_EIO naming the path
 * (missing directory, no permission, a directory), or DPT_ENOMEM. */
DPT_API int dpt_out_open(dpt_out_file *o, const char *path);

/* The file descriptor under o->f, for writers that use write(2): what was
 * written through o->f is flushed first. Later stdio writes go after the
 * fd's; a writer that mixes the two flushes o->f before each switch.
 * -1 (DPT_EIO set) when the flush fails. */
DPT_API int dpt_out_fd(dpt_out_file *o);

/* Flush and install the file: 0, or DPT_EIO naming the path and the step
 * that failed (write, fsync, close, rename). A failed commit removes the
 * temporary file and leaves the old target as it was. o is reset either
 * way. */
DPT_API int dpt_out_commit(dpt_out_file *o);

/* Drop what was written: the temporary file is removed, the target is
 * untouched (what went to stdout, a device or a FIFO is gone already).
 * Safe on a zeroed or already committed dpt_out_file. */
DPT_API void dpt_out_abort(dpt_out_file *o);

/* len bytes of text into path atomically (open, write, commit). 0 or
 * DPT_EIO naming the file. */
DPT_API int dpt_write_file_atomic(const char *path, const char *text, size_t len);

/* A jansson value as indented JSON (reals in the shortest form that reads
 * back exactly, arrays of scalars on one line), written atomically like
 * the above. */
struct json_t;
DPT_API int dpt_json_write_atomic(struct json_t *root, const char *path);

#ifdef __cplusplus
}
#endif
#endif
