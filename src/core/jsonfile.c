/* JSON text as dpt writes it: indented like json_dumps(JSON_INDENT(2)), but
 * reals in the shortest form that reads back exactly and arrays of scalars
 * on one line, so result files stay exact and short; written atomically. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/error.h"
#include "dpt/file.h"

/* Shortest text that reads back as exactly v ("3.91", not jansson's
 * "3.9100000000000001"), still looking like a real. */
static void emit_real(FILE *f, double v)
{
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    fputs(buf, f);
    if (!strpbrk(buf, ".eE")) fputs(".0", f);
}

static void emit_string(FILE *f, const char *s)
{
    json_t *str = json_string(s);
    char *q = str ? json_dumps(str, JSON_ENCODE_ANY) : NULL;
    fputs(q ? q : "null", f);
    free(q);
    json_decref(str);
}

static int is_scalar(const json_t *v)
{
    return !json_is_object(v) && !json_is_array(v);
}

/* Indented JSON like json_dumps(JSON_INDENT(2)), but with the shortest
 * exact reals and arrays of scalars on one line (the samples). */
static void emit(FILE *f, json_t *v, int indent)
{
    size_t i;
    const char *key;
    json_t *x;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        if (!json_object_size(v)) {
            fputs("{}", f);
            break;
        }
        fputs("{", f);
        i = 0;
        json_object_foreach(v, key, x)
        {
            fprintf(f, "%s\n%*s", i++ ? "," : "", indent + 2, "");
            emit_string(f, key);
            fputs(": ", f);
            emit(f, x, indent + 2);
        }
        fprintf(f, "\n%*s}", indent, "");
        break;
    case JSON_ARRAY: {
        int flat = 1;
        json_array_foreach(v, i, x) flat &= is_scalar(x);
        fputs("[", f);
        json_array_foreach(v, i, x)
        {
            if (flat)
                fputs(i ? ", " : "", f);
            else
                fprintf(f, "%s\n%*s", i ? "," : "", indent + 2, "");
            emit(f, x, indent + 2);
        }
        if (!flat && json_array_size(v)) fprintf(f, "\n%*s", indent, "");
        fputs("]", f);
        break;
    }
    case JSON_STRING:
        emit_string(f, json_string_value(v));
        break;
    case JSON_INTEGER:
        fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        emit_real(f, json_real_value(v));
        break;
    case JSON_TRUE:
        fputs("true", f);
        break;
    case JSON_FALSE:
        fputs("false", f);
        break;
    default:
        fputs("null", f);
    }
}

int dpt_json_write_atomic(json_t *root, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return dpt_set_error(DPT_ENOMEM, "out of memory writing %s", path);
    emit(f, root, 0);
    fputc('\n', f);
    if (fclose(f)) {
        free(text);
        return dpt_set_error(DPT_ENOMEM, "out of memory writing %s", path);
    }
    int rc = dpt_write_file_atomic(path, text, len);
    free(text);
    return rc;
}
