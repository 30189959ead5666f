/* The machine model of a prediction target: bandwidth by distance, DRAM per
 * node, the socket link, barrier latency, core speed; the two reference
 * servers, overrides by key, machine files (key = value lines or JSON).
 * The figures and their sources are in docs/scaling.md. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dpt/error.h"
#include "dpt/predict.h"

/* 2 x AMD EPYC 9654 (Genoa, Zen 4), 96 cores each in 12 CCDs of 8 cores
 * sharing a 32 MiB L3, NPS1 (one NUMA node per socket), SMT on, 12 channels
 * of DDR5-4800 per socket, 4 xGMI links between the sockets. */
static const dpt_machine genoa = {
    .name = "genoa",
    .topology = "pack:2 numa:1 l3:12 core:8 pu:2",
    .bw = {[DPT_NEAR_SELF] = 0,
           [DPT_NEAR_CORE] = 120,
           [DPT_NEAR_L3] = 80,
           [DPT_NEAR_NUMA] = 30,
           [DPT_NEAR_NODE] = 25,
           [DPT_NEAR_PACKAGE] = 18,
           [DPT_NEAR_UNKNOWN] = 25},
    .dram_node = 360,
    .link = 180,
    .barrier_a = 300,
    .barrier_b = 250,
    .barrier_pkg = 800,
    .core_speed = 1.0,
    .allcore_speed = 0.95,
    .smt_speed = 0.6,
    .cache_kib = 1024 + 4096,
};

/* 2 x Intel Xeon Platinum 8480+ (Sapphire Rapids), 56 cores each, one
 * 105 MB L3 per socket, SNC off (one NUMA node per socket), HT on, 8
 * channels of DDR5-4800 per socket, 4 UPI 2.0 links between the sockets. */
static const dpt_machine spr = {
    .name = "spr",
    .topology = "pack:2 numa:1 l3:1 core:56 pu:2",
    .bw = {[DPT_NEAR_SELF] = 0,
           [DPT_NEAR_CORE] = 100,
           [DPT_NEAR_L3] = 35,
           [DPT_NEAR_NUMA] = 25,
           [DPT_NEAR_NODE] = 20,
           [DPT_NEAR_PACKAGE] = 10,
           [DPT_NEAR_UNKNOWN] = 20},
    .dram_node = 240,
    .link = 65,
    .barrier_a = 300,
    .barrier_b = 300,
    .barrier_pkg = 1000,
    .core_speed = 1.0,
    .allcore_speed = 0.8,
    .smt_speed = 0.6,
    .cache_kib = 2048 + 1920,
};

/* Until a calibration fills it: a generic one-socket machine. */
static const dpt_machine this_default = {
    .name = "this",
    .topology = "",
    .bw = {[DPT_NEAR_CORE] = 60,
           [DPT_NEAR_L3] = 30,
           [DPT_NEAR_NUMA] = 15,
           [DPT_NEAR_NODE] = 10,
           [DPT_NEAR_PACKAGE] = 8,
           [DPT_NEAR_UNKNOWN] = 15},
    .dram_node = 40,
    .link = 40,
    .barrier_a = 500,
    .barrier_b = 0,
    .barrier_pkg = 0,
    .core_speed = 1.0,
    .allcore_speed = 1.0,
    .smt_speed = 0.6,
    .cache_kib = 2048,
};

int dpt_machine_preset(const char *name, dpt_machine *m)
{
    if (name && !strcmp(name, "genoa"))
        *m = genoa;
    else if (name && !strcmp(name, "spr"))
        *m = spr;
    else if (name && !strcmp(name, "this"))
        *m = this_default;
    else
        return dpt_set_error(DPT_EINVAL, "no machine '%s' (allowed: genoa, spr, this, or a file)",
                             name ? name : "");
    return 0;
}

/* The numeric keys, in print order, with where they live. */
typedef struct key_def {
    const char *key;
    size_t off;
    double lo, hi; /* accepted range, lo exclusive */
} key_def;

#define F(field) offsetof(dpt_machine, field)
static const key_def keys[] = {
    {"bw_core", F(bw[DPT_NEAR_CORE]), 0, 1e6},
    {"bw_l3", F(bw[DPT_NEAR_L3]), 0, 1e6},
    {"bw_numa", F(bw[DPT_NEAR_NUMA]), 0, 1e6},
    {"bw_node", F(bw[DPT_NEAR_NODE]), 0, 1e6},
    {"bw_package", F(bw[DPT_NEAR_PACKAGE]), 0, 1e6},
    {"bw_unknown", F(bw[DPT_NEAR_UNKNOWN]), 0, 1e6},
    {"dram_node", F(dram_node), 0, 1e7},
    {"link", F(link), 0, 1e7},
    {"barrier_a", F(barrier_a), -1e-300, 1e9},
    {"barrier_b", F(barrier_b), -1e-300, 1e9},
    {"barrier_pkg", F(barrier_pkg), -1e-300, 1e9},
    {"core_speed", F(core_speed), 0, 1e3},
    {"allcore_speed", F(allcore_speed), 0, 1},
    {"smt_speed", F(smt_speed), 0, 1},
    {"cache_kib", F(cache_kib), -1e-300, 1e9},
    {"handoff_ns", F(handoff_ns), -1e-300, 1e9},
    {"handoff_line_ns", F(handoff_line_ns), -1e-300, 1e9},
    {"handoff_lines", F(handoff_lines), -1e-300, 1e9},
};
#undef F
#define NKEYS (sizeof keys / sizeof keys[0])

static const char *key_list(void)
{
    static char buf[512];
    if (!buf[0]) {
        size_t len = (size_t)snprintf(buf, sizeof buf, "name, topology");
        for (size_t i = 0; i < NKEYS; i++)
            len += (size_t)snprintf(buf + len, sizeof buf - len, ", %s", keys[i].key);
    }
    return buf;
}

int dpt_machine_set(dpt_machine *m, const char *key, const char *value)
{
    if (!strcmp(key, "name") || !strcmp(key, "topology")) {
        char *dst = !strcmp(key, "name") ? m->name : m->topology;
        size_t cap = !strcmp(key, "name") ? sizeof m->name : sizeof m->topology;
        if (strlen(value) >= cap)
            return dpt_set_error(DPT_EINVAL, "%s: longer than %zu characters", key, cap - 1);
        snprintf(dst, cap, "%s", value);
        return 0;
    }
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(key, keys[i].key)) continue;
        char *end;
        errno = 0;
        double v = strtod(value, &end);
        while (*end == ' ' || *end == '\t') end++;
        if (end == value || *end || errno || !isfinite(v) || !(v > keys[i].lo) || v > keys[i].hi) {
            if (keys[i].lo < 0)
                return dpt_set_error(DPT_EINVAL, "%s: '%s' is not a number >= 0", key, value);
            if (keys[i].hi == 1)
                return dpt_set_error(DPT_EINVAL, "%s: '%s' is not a number in (0, 1]", key, value);
            return dpt_set_error(DPT_EINVAL, "%s: '%s' is not a positive number", key, value);
        }
        *(double *)((char *)m + keys[i].off) = v;
        return 0;
    }
    return dpt_set_error(DPT_EINVAL, "unknown key '%s' (allowed: %s)", key, key_list());
}

void dpt_machine_print(const dpt_machine *m, FILE *f)
{
    fprintf(f, "name = %s\n", m->name);
    if (m->topology[0]) fprintf(f, "topology = %s\n", m->topology);
    for (size_t i = 0; i < NKEYS; i++)
        fprintf(f, "%s = %.6g\n", keys[i].key, *(const double *)((const char *)m + keys[i].off));
}

double dpt_machine_barrier(const dpt_machine *m, int P, int spans)
{
    if (P <= 1) return 0;
    double lv = ceil(log2((double)P));
    return 1e-9 * (m->barrier_a + m->barrier_b * lv + (spans ? m->barrier_pkg : 0));
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

static int load_json(dpt_machine *m, const char *path, const char *text)
{
    json_error_t err;
    json_t *root = json_loads(text, 0, &err);
    if (!root)
        return dpt_set_error(DPT_EFORMAT, "%s:%d: %s", path, err.line > 0 ? err.line : 1, err.text);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = dpt_set_error(DPT_EFORMAT, "%s:1: not a JSON object of machine keys", path);
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        char buf[300];
        if (json_is_string(v))
            snprintf(buf, sizeof buf, "%s", json_string_value(v));
        else if (json_is_number(v))
            snprintf(buf, sizeof buf, "%.17g", json_number_value(v));
        else {
            rc = dpt_set_error(DPT_EFORMAT, "%s: key '%s': not a number or a string", path, key);
            goto done;
        }
        if (!strcmp(key, "schema")) continue;
        if (dpt_machine_set(m, key, buf)) {
            char why[300];
            snprintf(why, sizeof why, "%s", dpt_last_error());
            rc = dpt_set_error(DPT_EFORMAT, "%s: %s", path, why);
            goto done;
        }
    }
done:
    json_decref(root);
    return rc;
}

int dpt_machine_load(dpt_machine *m, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return dpt_set_error(DPT_EIO, "%s: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    if (!text) {
        fclose(f);
        return dpt_set_error(DPT_ENOMEM, "out of memory");
    }
    for (size_t r; (r = fread(text + len, 1, cap - len - 1, f)) > 0;) {
        len += r;
        if (cap - len < 2) {
            char *t = cap < (64u << 20) ? realloc(text, cap * 2) : NULL;
            if (!t) {
                free(text);
                fclose(f);
                return dpt_set_error(DPT_EFORMAT, "%s: too large for a machine file", path);
            }
            text = t;
            cap *= 2;
        }
    }
    int ioerr = ferror(f);
    fclose(f);
    text[len] = '\0';
    if (ioerr) {
        free(text);
        return dpt_set_error(DPT_EIO, "%s: read error", path);
    }
    const char *p = text;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (*p == '{') {
        int rc = load_json(m, path, text);
        free(text);
        return rc;
    }
    int rc = 0, line = 0;
    for (char *s = text, *next; s && *s && !rc; s = next) {
        line++;
        next = strchr(s, '\n');
        if (next) *next++ = '\0';
        char *hash = strchr(s, '#');
        if (hash) *hash = '\0';
        char *t = trim(s);
        if (!*t) continue;
        char *eq = strchr(t, '=');
        if (!eq) {
            rc = dpt_set_error(DPT_EFORMAT, "%s:%d: '%s' is not key = value", path, line, t);
            break;
        }
        *eq = '\0';
        char *k = trim(t), *v = trim(eq + 1);
        if (!*k || !*v) {
            rc = dpt_set_error(DPT_EFORMAT, "%s:%d: %s", path, line,
                               *k ? "a key without a value" : "a value without a key");
            break;
        }
        if (dpt_machine_set(m, k, v)) {
            char why[300];
            snprintf(why, sizeof why, "%s", dpt_last_error());
            rc = dpt_set_error(DPT_EFORMAT, "%s:%d: %s", path, line, why);
        }
    }
    free(text);
    return rc;
}
