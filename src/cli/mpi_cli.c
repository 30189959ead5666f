/* The dpt tool under mpirun (see mpi_cli.h): output rules per rank and
 * agreement on the exit status. Every collective here is one that all
 * ranks make in the same order: cli_mpi_agree rounds, then in cli_mpi_end
 * at most one more round and the gathers of the held output. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/mpi_cli.h"
#include "dpt/error.h"
#include "dpt/mpi.h"

#define HOLD_MAX ((size_t)60 << 10) /* bytes of stderr a rank holds */

static struct {
    int active, rank, size;
    int per_rank_stdout; /* topo, info: every rank's stdout, gathered */
    int solo;            /* a command that runs on rank 0 alone: no collectives */
    int failed;          /* a cli_mpi_agree round failed on every rank */
    int ended;
    dpt_comm comm;
    /* stderr: the cookie stream that replaced stderr, the original one */
    FILE *cookie, *orig_err;
    char *held;
    size_t held_len;
    int held_full; /* rank 0: stopped recording (only for comparing) */
    /* stdout when gathered: the original fd and the capture file */
    int saved_out;
    FILE *cap_out;
} M = {.size = 1, .saved_out = -1};

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

/* "a-b,c" from ascending ints */
static void format_ranks(const int *r, int n, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && len < cap; i++) {
        int j = i;
        while (j + 1 < n && r[j + 1] == r[j] + 1) j++;
        int w = j > i ? snprintf(buf + len, cap - len, "%s%d-%d", len ? "," : "", r[i], r[j])
                      : snprintf(buf + len, cap - len, "%s%d", len ? "," : "", r[i]);
        if (w < 0) break;
        len += (size_t)w;
        i = j;
    }
}

/* One line (without '\n') with the ranks inserted after "dpt CMD: ", or
 * in front when the line has no such prefix, then '\n', to fd. */
static void emit_line(int fd, const char *line, size_t n, const char *ranks, int plural)
{
    size_t pre = 0;
    if (n >= 4 && !memcmp(line, "dpt", 3) && (line[3] == ' ' || line[3] == ':')) {
        const char *c = memchr(line, ':', n);
        if (c && (size_t)(c - line) + 1 < n && c[1] == ' ') pre = (size_t)(c - line) + 2;
    }
    char tag[96];
    int t = snprintf(tag, sizeof tag, "rank%s %s: ", plural ? "s" : "", ranks);
    if (t < 0) t = 0;
    if ((size_t)t >= sizeof tag) t = (int)sizeof tag - 1;
    write_all(fd, line, pre);
    write_all(fd, tag, (size_t)t);
    write_all(fd, line + pre, n - pre);
    write_all(fd, "\n", 1);
}

/* Write text straight to stderr, every line tagged with this rank. */
static void spill(const char *p, size_t len)
{
    char r[16];
    snprintf(r, sizeof r, "%d", M.rank);
    const char *end = p + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        emit_line(2, p, n, r, 0);
        p += n + (nl ? 1 : 0);
    }
}

static ssize_t cookie_write(void *ud, const char *buf, size_t n)
{
    (void)ud;
    if (M.rank == 0) {
        /* rank 0 prints as it goes and keeps a copy to compare with the others' */
        write_all(2, buf, n);
        if (M.held_len + n > HOLD_MAX) M.held_full = 1;
        if (M.held_full) return (ssize_t)n;
    } else if (M.held_len + n > HOLD_MAX) {
        /* too much to hold: out now, tagged */
        spill(M.held, M.held_len);
        M.held_len = 0;
        if (n > HOLD_MAX) {
            spill(buf, n);
            return (ssize_t)n;
        }
    }
    memcpy(M.held + M.held_len, buf, n);
    M.held_len += n;
    return (ssize_t)n;
}

static void at_exit(void)
{
    /* a rank leaving without cli_mpi_end: its held lines must not be lost */
    if (M.ended || !M.cookie) return;
    fflush(M.cookie);
    if (M.rank != 0) spill(M.held, M.held_len);
    M.held_len = 0;
}

static int is_distributed(const char *cmd)
{
    static const char *const dist[] = {"train", "bench", "topo", "info"};
    for (size_t i = 0; i < sizeof dist / sizeof dist[0]; i++)
        if (cmd && !strcmp(cmd, dist[i])) return 1;
    return 0;
}

int cli_mpi_begin(int *argc, char ***argv)
{
    int active = 0;
    if (dpt_mpi_init(argc, argv, &active)) {
        fprintf(stderr, "dpt: %s\n", dpt_last_error());
        return DPT_EXIT_FAIL;
    }
    dpt_mpi_comm(&M.comm);
    M.active = active;
    M.rank = dpt_mpi_rank();
    M.size = dpt_mpi_size();
    if (!active || M.size < 2) return 0;
    const char *cmd = *argc > 1 ? (*argv)[1] : NULL;
    M.per_rank_stdout = cmd && (!strcmp(cmd, "topo") || !strcmp(cmd, "info"));
    M.solo = !is_distributed(cmd);

    fflush(stdout);
    if (M.per_rank_stdout) {
        M.cap_out = tmpfile();
        M.saved_out = dup(1);
        if (!M.cap_out || M.saved_out < 0 || dup2(fileno(M.cap_out), 1) < 0) {
            /* cannot collect: this rank prints as it goes (and still takes
             * part in the gather, with a header only) */
            if (M.cap_out) fclose(M.cap_out);
            if (M.saved_out >= 0) close(M.saved_out);
            M.cap_out = NULL;
            M.saved_out = -1;
        }
    } else if (M.rank != 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            close(fd);
        }
    }

    /* ranks that share CPUs: every one runs a thread per core it sees
     * (a collective, so before anything that may end this function early) */
    int lr, ls, sharing = 1;
    if (cmd && (!strcmp(cmd, "train") || !strcmp(cmd, "bench")) &&
        dpt_mpi_node_info(&lr, &ls, &sharing) != 0)
        sharing = 1;

    if ((M.held = malloc(HOLD_MAX))) {
        cookie_io_functions_t io = {.write = cookie_write};
        fflush(stderr);
        if ((M.cookie = fopencookie(NULL, "w", io))) {
            setvbuf(M.cookie, NULL, _IOLBF, 1024);
            M.orig_err = stderr;
            stderr = M.cookie;
            atexit(at_exit);
        } else {
            free(M.held); /* stderr stays as it is */
            M.held = NULL;
        }
    }
    if (sharing > 1 && M.rank == 0)
        fprintf(stderr,
                "dpt: warning: up to %d ranks share a CPU (not bound, or bound to overlapping "
                "CPUs), so their threads compete; give each rank cores of its own (mpirun "
                "--map-by socket --bind-to socket, or --bind-to core) or lower --threads\n",
                sharing);
    return 0;
}

int cli_mpi_runs_here(const char *cmd)
{
    return M.size < 2 || M.rank == 0 || is_distributed(cmd);
}

int cli_mpi_agree(int rc)
{
    /* rank 0 alone (tune, eval, ...): the others wait in cli_mpi_end */
    if (!M.active || M.size < 2 || M.solo) return rc;
    int r = dpt_mpi_agree(rc);
    if (!r) return 0;
    M.failed = 1;
    if (rc) return rc;
    if (r < 0 && strncmp(dpt_last_error(), "rank ", 5))
        fprintf(stderr, "dpt: %s\n", dpt_last_error()); /* MPI itself failed */
    return r > 0 ? r : DPT_EXIT_FAIL;
}

/* The lines of text, one by one: *p advances past each. */
static int next_line(const char **p, const char *end, const char **line, size_t *n)
{
    if (*p >= end) return 0;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    *line = *p;
    *n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    *p += *n + (nl ? 1 : 0);
    return 1;
}

static int text_has_line(const char *t, size_t len, const char *line, size_t n)
{
    const char *p = t, *end = t + len, *l;
    size_t k;
    while (next_line(&p, end, &l, &k))
        if (k == n && !memcmp(l, line, n)) return 1;
    return 0;
}

/* Rank 0: print each line of ranks 1.. that rank 0 did not print, once,
 * tagged with every rank that printed it. */
static void print_others(const char *all, const size_t *lens)
{
    const char *base0 = all, *text = all + lens[0];
    int *ranks = malloc((size_t)M.size * sizeof *ranks);
    if (!ranks) return;
    for (int r = 1; r < M.size; r++) {
        const char *p = text, *end = text + lens[r], *l;
        size_t n;
        while (next_line(&p, end, &l, &n)) {
            if (n == 0 || text_has_line(base0, lens[0], l, n)) continue;
            /* printed already for an earlier rank? or earlier in this rank? */
            int seen = 0;
            const char *q = all + lens[0];
            for (int s = 1; s <= r && !seen; s++) {
                const char *qe = s == r ? l : q + lens[s];
                seen = text_has_line(q, (size_t)(qe - q), l, n);
                q += lens[s];
            }
            if (seen) continue;
            int k = 0;
            ranks[k++] = r;
            q = text + lens[r];
            for (int s = r + 1; s < M.size; s++) {
                if (text_has_line(q, lens[s], l, n)) ranks[k++] = s;
                q += lens[s];
            }
            char rs[64];
            format_ranks(ranks, k, rs, sizeof rs);
            emit_line(2, l, n, rs, k > 1);
        }
        text += lens[r];
    }
    free(ranks);
}

static void cpus_bound(char *buf, size_t cap)
{
    cpu_set_t set;
    buf[0] = '\0';
    if (sched_getaffinity(0, sizeof set, &set) != 0) {
        snprintf(buf, cap, "unknown CPUs");
        return;
    }
    int ids[CPU_SETSIZE], n = 0;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set)) ids[n++] = c;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    char list[160];
    format_ranks(ids, n, list, sizeof list);
    if (online > 0 && n >= online)
        snprintf(buf, cap, "not bound (OS CPUs %s)", list);
    else
        snprintf(buf, cap, "bound to OS CPU%s %s", n == 1 ? "" : "s", list);
}

/* Rank 0 prints every rank's stdout in rank order: one JSON array when each
 * is a JSON document, else each under a line naming the rank. */
static void print_per_rank(const char *all, const size_t *lens)
{
    const char *p = all;
    int json = 1;
    json_t *arr = json_array();
    for (int r = 0; r < M.size && json; r++) {
        /* each rank's text: its header line, then its output */
        const char *nl = memchr(p, '\n', lens[r]);
        size_t h = nl ? (size_t)(nl - p) + 1 : lens[r];
        json_error_t err;
        json_t *doc = lens[r] > h ? json_loadb(p + h, lens[r] - h, 0, &err) : NULL;
        json_t *meta = h ? json_loadb(p, h, 0, &err) : NULL;
        if (!doc || !meta || !arr) {
            json = 0;
        } else {
            json_object_set_new(meta, "output", doc);
            doc = NULL;
            json_array_append(arr, meta);
        }
        json_decref(doc);
        json_decref(meta);
        p += lens[r];
    }
    if (json && arr) {
        json_dumpf(arr, stdout, JSON_COMPACT);
        fputc('\n', stdout);
    } else {
        p = all;
        for (int r = 0; r < M.size; r++) {
            const char *nl = memchr(p, '\n', lens[r]);
            size_t h = nl ? (size_t)(nl - p) + 1 : lens[r];
            json_error_t err;
            json_t *meta = json_loadb(p, h, 0, &err);
            const char *host = json_string_value(json_object_get(meta, "host"));
            const char *cpus = json_string_value(json_object_get(meta, "cpus"));
            printf("== rank %d of %d on %s, pid %lld, %s ==\n", r, M.size, host ? host : "?",
                   (long long)json_integer_value(json_object_get(meta, "pid")), cpus ? cpus : "?");
            fwrite(p + h, 1, lens[r] - h, stdout);
            if (lens[r] > h && p[lens[r] - 1] != '\n') fputc('\n', stdout);
            json_decref(meta);
            p += lens[r];
        }
    }
    json_decref(arr);
    fflush(stdout);
}

/* Every rank's captured stdout, headed by a JSON line about the rank. */
static int gather_stdout(char **all, size_t **lens)
{
    fflush(stdout);
    char host[256], cpus[200];
    dpt_mpi_host(host, sizeof host);
    cpus_bound(cpus, sizeof cpus);
    json_t *meta = json_pack("{s:i,s:i,s:s,s:I,s:s}", "rank", M.rank, "ranks", M.size, "host", host,
                             "pid", (json_int_t)getpid(), "cpus", cpus);
    char *head = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
    json_decref(meta);
    size_t hl = head ? strlen(head) : 0, len = hl + 1;
    long cap = M.cap_out ? ftell(M.cap_out) : 0;
    if (cap < 0) cap = 0;
    char *text = malloc(len + (size_t)cap + 1);
    if (text) {
        if (hl) memcpy(text, head, hl);
        text[hl] = '\n';
        if (cap > 0 && fseek(M.cap_out, 0, SEEK_SET) == 0)
            len += fread(text + len, 1, (size_t)cap, M.cap_out);
    } else {
        len = 0;
    }
    free(head);
    /* rank 0's own stdout again, for the gathered print */
    if (M.cap_out) {
        dup2(M.saved_out, 1);
        close(M.saved_out);
        M.saved_out = -1;
        fclose(M.cap_out);
        M.cap_out = NULL;
    }
    int rc = dpt_mpi_gather_text(text ? text : "", len, all, lens);
    free(text);
    return rc;
}

int cli_mpi_end(int rc)
{
    if (!M.active) return rc;
    int status = rc;
    if (M.size > 1) {
        if (!M.failed) {
            int r = dpt_mpi_agree(rc);
            if (!rc && r) status = r > 0 ? r : DPT_EXIT_FAIL;
        }
        size_t *lens = NULL;
        char *all = NULL;
        if (M.per_rank_stdout) {
            if (gather_stdout(&all, &lens) == 0 && all) print_per_rank(all, lens);
            free(all);
            free(lens);
            all = NULL;
            lens = NULL;
        }
        if (M.cookie) {
            fflush(M.cookie);
            stderr = M.orig_err;
            fclose(M.cookie);
            M.cookie = NULL;
        }
        /* on every rank, held lines or not, so the collectives match */
        if (dpt_mpi_gather_text(M.held ? M.held : "", M.held ? M.held_len : 0, &all, &lens) == 0 &&
            all)
            print_others(all, lens);
        free(all);
        free(lens);
        free(M.held);
        M.held = NULL;
    }
    M.ended = 1;
    fflush(stdout);
    dpt_mpi_finalize();
    M.active = 0;
    return status;
}

const dpt_comm *cli_mpi_comm(void)
{
    return M.active && M.size > 1 && !M.solo ? &M.comm : NULL;
}

int cli_mpi_rank(void)
{
    return M.active ? M.rank : 0;
}

int cli_mpi_size(void)
{
    return M.active ? M.size : 1;
}
