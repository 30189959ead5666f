/* Thread-local last-error message. */
#include <stdarg.h>
#include <stdio.h>

#include "dpt/error.h"

static _Thread_local char last_error[512];

const char *dpt_last_error(void)
{
    return last_error;
}

void dpt_clear_error(void)
{
    last_error[0] = '\0';
}

int dpt_set_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}
