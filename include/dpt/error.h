/* Status codes and the last-error message.
 * Every fallible dpt call returns 0 on success or a negative DPT_E* code and
 * leaves a one-line message, readable with dpt_last_error(), in thread-local
 * storage. The library never prints and never exits. */
#ifndef DPT_ERROR_H
#define DPT_ERROR_H

#include "dpt/export.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    DPT_OK = 0,
    DPT_EINVAL = -1,      /* bad argument or option value */
    DPT_EIO = -2,         /* file missing, unreadable, unwritable */
    DPT_EFORMAT = -3,     /* malformed input file */
    DPT_ENOMEM = -4,      /* allocation failed or would not fit */
    DPT_ENOTSUP = -5,     /* not supported on this machine or build */
    DPT_EDIVERGED = -6,   /* training produced a non-finite loss or gradient */
    DPT_EINTERRUPTED = -7 /* training stopped on request (a signal) */
};

/* Message of the last failed call on this thread ("" when none). */
DPT_API const char *dpt_last_error(void);

/* Set the message (printf-style) and return code; for dpt's own modules. */
DPT_API int dpt_set_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

DPT_API void dpt_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
