/* dpt_comm over MPI (MPI_COMM_WORLD), and the single-process fallback when
 * dpt is built without MPI (DPT_HAVE_MPI unset) or not started by mpirun.
 *
 * allreduce: in place, MPI_SUM, the float buffer in chunks (4 MiB default,
 *            counts stay far below INT_MAX whatever the model size), the
 *            scalars (doubles) in one more call.
 * allgather: deterministic mode. Each chunk of the parameter range: this
 *            rank's leaves packed side by side, MPI_Allgatherv in rank order
 *            (ranks may hold different numbers of leaves) into a staging
 *            buffer, unpacked into the other ranks' leaves.
 *            Plain copies: every rank ends with every leaf bit for bit, and
 *            then runs the same fixed tree.
 * broadcast: MPI_Bcast from rank 0, in chunks.
 * Errors: MPI_ERRORS_RETURN on the communicator, turned into DPT_EIO with
 * MPI's own message. */
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dpt/error.h"
#include "dpt/mpi.h"
#include "dpt_config.h"

#ifdef DPT_HAVE_MPI
#include <mpi.h>
#endif

#define DEFAULT_CHUNK_BYTES ((size_t)4 << 20)
#define MAX_TEXT            ((size_t)64 << 10)

static struct {
    int active, owns, finalized, rank, size;
    size_t chunk_bytes;
    float *stage; /* allgather: send part then receive part */
    size_t stage_floats;
    int *ints; /* allgather: per-rank first leaves, counts and offsets */
    size_t nints;
} g = {0, 0, 0, 0, 1, 0, NULL, 0, NULL, 0};

int dpt_mpi_built(void)
{
#ifdef DPT_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

static long env_long(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) return -1;
    char *end;
    long x = strtol(v, &end, 10);
    return *end == '\0' && x >= 0 ? x : -1;
}

int dpt_mpi_launched(void)
{
    long force = env_long("DPT_MPI");
    if (force == 0) return 0;
    /* Open MPI, MPICH/Hydra and Slurm's PMI-2 give the size; PMIx only a rank */
    static const char *const sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        long n = env_long(sizes[i]);
        if (n > 0) return n > INT32_MAX ? INT32_MAX : (int)n;
    }
    if (getenv("PMIX_RANK") || getenv("PMI_RANK")) return 1;
    return force > 0 ? 1 : 0;
}

int dpt_mpi_active(void)
{
    return g.active;
}
int dpt_mpi_rank(void)
{
    return g.active ? g.rank : 0;
}
int dpt_mpi_size(void)
{
    return g.active ? g.size : 1;
}

/* ---- single process: hooks that have nothing to exchange ---- */

static int solo_allreduce(void *ctx, float *buf, size_t n, double *scalars, int nscalars)
{
    (void)ctx, (void)buf, (void)n, (void)scalars, (void)nscalars;
    return 0;
}
static int solo_allgather(void *ctx, float **leaves, size_t n, const int *counts, double *loss)
{
    (void)ctx, (void)leaves, (void)n, (void)counts, (void)loss;
    return 0;
}
static int solo_broadcast(void *ctx, float *buf, size_t n)
{
    (void)ctx, (void)buf, (void)n;
    return 0;
}

static int solo_agree(void *ctx, int rc)
{
    (void)ctx;
    return rc;
}

static void solo_comm(dpt_comm *out)
{
    memset(out, 0, sizeof *out);
    out->rank = 0;
    out->size = 1;
    out->allreduce = solo_allreduce;
    out->allgather = solo_allgather;
    out->broadcast = solo_broadcast;
    out->agree = solo_agree;
}

static int solo_gather_text(const char *text, size_t len, char **all, size_t **lens)
{
    *all = malloc(len ? len : 1);
    *lens = malloc(sizeof **lens);
    if (!*all || !*lens) {
        free(*all), free(*lens);
        *all = NULL;
        *lens = NULL;
        return dpt_set_error(DPT_ENOMEM, "out of memory");
    }
    if (len) memcpy(*all, text, len);
    (*lens)[0] = len;
    return 0;
}

#ifdef DPT_HAVE_MPI

static int mpi_error(int code, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING + 1];
    int len = 0;
    if (MPI_Error_string(code, msg, &len) != MPI_SUCCESS) len = 0;
    msg[len] = '\0';
    return dpt_set_error(DPT_EIO, "%s failed on rank %d: %s", what, g.rank,
                         len ? msg : "unknown MPI error");
}

int dpt_mpi_init(int *argc, char ***argv, int *active)
{
    *active = 0;
    if (g.active) {
        *active = 1;
        return 0;
    }
    if (g.finalized || !dpt_mpi_launched()) return 0;
    int inited = 0, provided = 0, rc;
    MPI_Initialized(&inited);
    if (!inited) {
        if ((rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided)) != MPI_SUCCESS)
            return mpi_error(rc, "MPI_Init_thread");
        g.owns = 1;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g.size);
    long cb = env_long("DPT_MPI_CHUNK_BYTES");
    g.chunk_bytes = cb >= (long)sizeof(double) ? (size_t)cb : DEFAULT_CHUNK_BYTES;
    if (g.chunk_bytes > (size_t)1 << 30) g.chunk_bytes = (size_t)1 << 30;
    g.active = 1;
    *active = 1;
    return 0;
}

/* What a dpt_comm's ctx points to: the communicator, this rank in it, and
 * the all-reduces started and not yet finished. */
typedef struct mpi_ctx {
    MPI_Comm comm;
    int rank, size;
    MPI_Request pending[DPT_COMM_MAX_PENDING];
    int npending;
} mpi_ctx;

static mpi_ctx world;

static size_t chunk_floats(void)
{
    size_t c = g.chunk_bytes / sizeof(float);
    return c ? c : 1;
}

static int mpi_allreduce(void *ctx, float *buf, size_t n, double *scalars, int nscalars)
{
    const mpi_ctx *c = ctx;
    const size_t C = chunk_floats();
    int rc;
    for (size_t off = 0; off < n; off += C) {
        size_t k = n - off < C ? n - off : C;
        if ((rc = MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)k, MPI_FLOAT, MPI_SUM, c->comm)) !=
            MPI_SUCCESS)
            return mpi_error(rc, "MPI_Allreduce of the gradient");
    }
    if (nscalars > 0 && (rc = MPI_Allreduce(MPI_IN_PLACE, scalars, nscalars, MPI_DOUBLE, MPI_SUM,
                                            c->comm)) != MPI_SUCCESS)
        return mpi_error(rc, "MPI_Allreduce of the loss");
    return 0;
}

/* g.ints with room for n ints; nonzero when out of memory. */
static int need_ints(size_t n)
{
    if (n <= g.nints) return 0;
    int *p = realloc(g.ints, n * sizeof *p);
    if (!p) return -1;
    g.ints = p;
    g.nints = n;
    return 0;
}

static int mpi_allgather(void *ctx, float **leaves, size_t n, const int *counts, double *loss)
{
    const mpi_ctx *c = ctx;
    const int R = c->size, me = c->rank;
    if (need_ints(3 * (size_t)R + 1)) return dpt_set_error(DPT_ENOMEM, "out of memory");
    int *first = g.ints, *cnt = g.ints + R + 1; /* first[r]: rank r's first leaf */
    first[0] = 0;
    for (int r = 0; r < R; r++) {
        if (counts[r] < 1)
            return dpt_set_error(DPT_EINVAL, "allgather: %d leaves on rank %d", counts[r], r);
        first[r + 1] = first[r] + counts[r];
    }
    const size_t T = (size_t)first[R], L = (size_t)counts[me], F = (size_t)first[me];
    /* floats per leaf per chunk: this rank sends L*C of them and receives
     * T*C, at most the chunk size in all whatever the number of ranks */
    size_t C = chunk_floats() / T;
    if (C == 0) C = 1;
    if (C > n) C = n ? n : 1;
    const size_t need = (L + T) * C;
    if (need > g.stage_floats) {
        free(g.stage);
        g.stage = malloc(need * sizeof(float));
        g.stage_floats = g.stage ? need : 0;
        if (!g.stage) return dpt_set_error(DPT_ENOMEM, "no memory for the MPI staging buffer");
    }
    float *send = g.stage, *recv = g.stage + L * C;
    int rc;
    for (size_t off = 0; off < n; off += C) {
        size_t k = n - off < C ? n - off : C;
        for (size_t j = 0; j < L; j++) memcpy(send + j * k, leaves[F + j] + off, k * sizeof(float));
        /* a chunk of k floats per leaf: rank r's part is counts[r] * k at first[r] * k */
        int *displ = cnt + R;
        for (int r = 0; r < R; r++) cnt[r] = counts[r] * (int)k;
        for (int r = 0; r < R; r++) displ[r] = first[r] * (int)k;
        rc = MPI_Allgatherv(send, (int)(L * k), MPI_FLOAT, recv, cnt, displ, MPI_FLOAT, c->comm);
        if (rc != MPI_SUCCESS) return mpi_error(rc, "MPI_Allgatherv of the leaves");
        for (size_t j = 0; j < T; j++)
            if (j < F || j >= F + L) memcpy(leaves[j] + off, recv + j * k, k * sizeof(float));
    }
    if ((rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, loss, counts, first, MPI_DOUBLE,
                             c->comm)) != MPI_SUCCESS)
        return mpi_error(rc, "MPI_Allgatherv of the losses");
    return 0;
}

static int mpi_broadcast(void *ctx, float *buf, size_t n)
{
    const mpi_ctx *c = ctx;
    const size_t C = chunk_floats();
    for (size_t off = 0; off < n; off += C) {
        size_t k = n - off < C ? n - off : C;
        int rc = MPI_Bcast(buf + off, (int)k, MPI_FLOAT, 0, c->comm);
        if (rc != MPI_SUCCESS) return mpi_error(rc, "MPI_Bcast of the parameters");
    }
    return 0;
}

static int mpi_agree_hook(void *ctx, int rc)
{
    mpi_ctx *c = ctx;
    int v[2] = {rc < 0 ? -rc : 0, rc ? c->size - c->rank : 0};
    int mrc = MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_INT, MPI_MAX, c->comm);
    if (mrc != MPI_SUCCESS) return rc ? rc : mpi_error(mrc, "MPI_Allreduce of the status");
    if (rc) return rc;
    if (v[0]) return dpt_set_error(-v[0], "rank %d failed", c->size - v[1]);
    return 0;
}

/* Non-blocking: MPI_Iallreduce in place (in pieces of the chunk size, so
 * counts stay far below INT_MAX), advanced by MPI_Testall, which is what
 * drives Open MPI's non-blocking collectives without a progress thread. */
static int mpi_start_allreduce(void *ctx, float *buf, size_t n)
{
    mpi_ctx *c = ctx;
    const size_t C = chunk_floats();
    for (size_t off = 0; off < n; off += C) {
        /* out of request slots (small DPT_MPI_CHUNK_BYTES): let the
         * earlier ones finish first */
        if (c->npending == DPT_COMM_MAX_PENDING) {
            int rc = MPI_Waitall(c->npending, c->pending, MPI_STATUSES_IGNORE);
            c->npending = 0;
            if (rc != MPI_SUCCESS) return mpi_error(rc, "MPI_Waitall");
        }
        size_t k = n - off < C ? n - off : C;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, buf + off, (int)k, MPI_FLOAT, MPI_SUM, c->comm,
                                &c->pending[c->npending]);
        if (rc != MPI_SUCCESS) return mpi_error(rc, "MPI_Iallreduce of the gradient");
        c->npending++;
    }
    return 0;
}

static int mpi_progress(void *ctx)
{
    mpi_ctx *c = ctx;
    int done = 0;
    if (!c->npending) return 0;
    int rc = MPI_Testall(c->npending, c->pending, &done, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) return mpi_error(rc, "MPI_Testall");
    if (done) c->npending = 0;
    return 0;
}

static int mpi_finish(void *ctx)
{
    mpi_ctx *c = ctx;
    int n = c->npending;
    c->npending = 0;
    int rc = n ? MPI_Waitall(n, c->pending, MPI_STATUSES_IGNORE) : MPI_SUCCESS;
    return rc == MPI_SUCCESS ? 0 : mpi_error(rc, "MPI_Waitall");
}

static void fill_comm(dpt_comm *out, mpi_ctx *c)
{
    out->rank = c->rank;
    out->size = c->size;
    out->ctx = c;
    out->allreduce = mpi_allreduce;
    out->allgather = mpi_allgather;
    out->broadcast = mpi_broadcast;
    out->agree = mpi_agree_hook;
    out->start_allreduce = mpi_start_allreduce;
    out->progress = mpi_progress;
    out->finish = mpi_finish;
}

int dpt_mpi_comm(dpt_comm *out)
{
    solo_comm(out);
    if (!g.active) return 0;
    world.comm = MPI_COMM_WORLD;
    world.rank = g.rank;
    world.size = g.size;
    fill_comm(out, &world);
    return 0;
}

int dpt_mpi_comm_first(int n, dpt_comm *out, int *member)
{
    solo_comm(out);
    *member = 1;
    if (!g.active) return n == 1 ? 0 : dpt_set_error(DPT_EINVAL, "%d ranks asked of 1", n);
    if (n < 1 || n > g.size)
        return dpt_set_error(DPT_EINVAL, "%d ranks asked, the job has %d", n, g.size);
    *member = g.rank < n;
    mpi_ctx *c = calloc(1, sizeof *c);
    /* MPI_Comm_split is collective: made on every rank even without memory */
    MPI_Comm sub = MPI_COMM_NULL;
    int rc = MPI_Comm_split(MPI_COMM_WORLD, *member ? 0 : MPI_UNDEFINED, g.rank, &sub);
    if (rc != MPI_SUCCESS) {
        free(c);
        return mpi_error(rc, "MPI_Comm_split");
    }
    if (!c) {
        if (sub != MPI_COMM_NULL) MPI_Comm_free(&sub);
        return dpt_set_error(DPT_ENOMEM, "out of memory");
    }
    if (!*member) {
        free(c);
        return 0;
    }
    MPI_Comm_set_errhandler(sub, MPI_ERRORS_RETURN);
    c->comm = sub;
    MPI_Comm_rank(sub, &c->rank);
    MPI_Comm_size(sub, &c->size);
    fill_comm(out, c);
    return 0;
}

void dpt_mpi_comm_free(dpt_comm *c)
{
    if (c && c->ctx && c->ctx != (void *)&world) {
        mpi_ctx *x = c->ctx;
        if (g.active) MPI_Comm_free(&x->comm);
        free(x);
    }
    if (c) solo_comm(c);
}

int dpt_mpi_node_info(int *local_rank, int *local_size, int *max_sharing)
{
    *local_rank = 0;
    *local_size = 1;
    *max_sharing = 1;
    if (!g.active) return 0;
    MPI_Comm node;
    int rc =
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g.rank, MPI_INFO_NULL, &node);
    if (rc != MPI_SUCCESS) return mpi_error(rc, "MPI_Comm_split_type");
    MPI_Comm_set_errhandler(node, MPI_ERRORS_RETURN);
    MPI_Comm_rank(node, local_rank);
    MPI_Comm_size(node, local_size);
    /* how many ranks of this node may run on each CPU */
    cpu_set_t mine;
    CPU_ZERO(&mine);
    if (sched_getaffinity(0, sizeof mine, &mine) != 0) CPU_ZERO(&mine);
    int cnt[CPU_SETSIZE];
    for (int c = 0; c < CPU_SETSIZE; c++) cnt[c] = CPU_ISSET(c, &mine) ? 1 : 0;
    rc = MPI_Allreduce(MPI_IN_PLACE, cnt, CPU_SETSIZE, MPI_INT, MPI_SUM, node);
    MPI_Comm_free(&node);
    if (rc != MPI_SUCCESS) return mpi_error(rc, "MPI_Allreduce of the CPU masks");
    int most = 1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (cnt[c] > most) most = cnt[c];
    rc = MPI_Allreduce(MPI_IN_PLACE, &most, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_error(rc, "MPI_Allreduce");
    *max_sharing = most;
    return 0;
}

/* Wait for a request without keeping a core busy: a rank that reaches a
 * checkpoint early (another still loading, or a command that runs on rank
 * 0 alone) sleeps nap_ns between tests, after `spins` quick ones, instead
 * of spinning. */
static int wait_idle(MPI_Request *req, long spins, long nap_ns)
{
    int done = 0, rc;
    for (long i = 0; !done; i++) {
        if ((rc = MPI_Test(req, &done, MPI_STATUS_IGNORE)) != MPI_SUCCESS) return rc;
        if (!done && i >= spins) {
            struct timespec ts = {0, nap_ns};
            nanosleep(&ts, NULL);
        }
    }
    return MPI_SUCCESS;
}

int dpt_mpi_agree(int rc)
{
    if (!g.active) return rc;
    /* largest exit status, largest |DPT_E*|, and (size - rank) of the first failing rank */
    int v[3] = {rc > 0 ? rc : 0, rc < 0 ? -rc : 0, rc ? g.size - g.rank : 0};
    MPI_Request req;
    int mrc = MPI_Iallreduce(MPI_IN_PLACE, v, 3, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &req);
    if (mrc == MPI_SUCCESS) mrc = wait_idle(&req, 2000, 200000);
    if (mrc != MPI_SUCCESS) return rc ? rc : mpi_error(mrc, "MPI_Iallreduce of the status");
    if (rc) return rc;
    if (v[0]) return v[0];
    if (v[1]) return dpt_set_error(-v[1], "rank %d failed", g.size - v[2]);
    return 0;
}

int dpt_mpi_idle_barrier(void)
{
    if (!g.active) return 0;
    /* the busy ranks arrive after a whole timed run: a test a millisecond
     * costs them nothing and keeps the waiting ranks off their cores */
    MPI_Request req;
    int rc = MPI_Ibarrier(MPI_COMM_WORLD, &req);
    if (rc == MPI_SUCCESS) rc = wait_idle(&req, 0, 1000000);
    return rc == MPI_SUCCESS ? 0 : mpi_error(rc, "MPI_Ibarrier");
}

int dpt_mpi_max_double(double *v)
{
    if (!g.active) return 0;
    int rc = MPI_Allreduce(MPI_IN_PLACE, v, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_error(rc, "MPI_Allreduce");
}

int dpt_mpi_gather_text(const char *text, size_t len, char **all, size_t **lens)
{
    *all = NULL;
    *lens = NULL;
    if (len > MAX_TEXT) len = MAX_TEXT;
    if (!g.active) return solo_gather_text(text, len, all, lens);
    int mine = (int)len, rc;
    int *counts = NULL, *displs = NULL;
    size_t *ls = NULL;
    char *buf = NULL;
    /* every allocation is agreed on before the collective that needs it */
    if (g.rank == 0) {
        counts = calloc((size_t)g.size, sizeof *counts);
        displs = calloc((size_t)g.size, sizeof *displs);
        ls = calloc((size_t)g.size, sizeof *ls);
    }
    if ((rc = dpt_mpi_agree(g.rank == 0 && (!counts || !displs || !ls) ? DPT_ENOMEM : 0))) goto out;
    if ((rc = MPI_Gather(&mine, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD)) !=
        MPI_SUCCESS) {
        rc = mpi_error(rc, "MPI_Gather");
        goto out;
    }
    if (g.rank == 0) {
        size_t total = 0;
        for (int r = 0; r < g.size; r++) {
            displs[r] = (int)total;
            total += (size_t)counts[r];
            ls[r] = (size_t)counts[r];
        }
        buf = malloc(total ? total : 1);
    }
    if ((rc = dpt_mpi_agree(g.rank == 0 && !buf ? DPT_ENOMEM : 0))) goto out;
    if ((rc = MPI_Gatherv(text, mine, MPI_CHAR, buf, counts, displs, MPI_CHAR, 0,
                          MPI_COMM_WORLD)) != MPI_SUCCESS) {
        rc = mpi_error(rc, "MPI_Gatherv");
        goto out;
    }
    if (g.rank == 0) {
        *all = buf;
        *lens = ls;
        buf = NULL;
        ls = NULL;
    }
out:
    if (rc == DPT_ENOMEM) dpt_set_error(DPT_ENOMEM, "out of memory for the ranks' messages");
    free(buf);
    free(ls);
    free(counts);
    free(displs);
    return rc;
}

void dpt_mpi_host(char *buf, size_t cap)
{
    char name[MPI_MAX_PROCESSOR_NAME + 1];
    int len = 0;
    if (g.active && MPI_Get_processor_name(name, &len) == MPI_SUCCESS && len > 0) {
        name[len] = '\0';
    } else if (gethostname(name, sizeof name) == 0) {
        name[sizeof name - 1] = '\0';
    } else {
        snprintf(name, sizeof name, "unknown");
    }
    snprintf(buf, cap, "%s", name);
}

void dpt_mpi_finalize(void)
{
    free(g.stage);
    g.stage = NULL;
    free(g.ints);
    g.ints = NULL;
    g.nints = 0;
    g.stage_floats = 0;
    if (g.active && g.owns) {
        int done = 0;
        MPI_Finalized(&done);
        if (!done) MPI_Finalize();
    }
    if (g.active) g.finalized = 1;
    g.active = 0;
}

#else /* without MPI: one process */

int dpt_mpi_init(int *argc, char ***argv, int *active)
{
    (void)argc, (void)argv;
    *active = 0;
    int n = dpt_mpi_launched();
    if (n > 1)
        return dpt_set_error(DPT_ENOTSUP,
                             "started by an MPI launcher with %d ranks, but this dpt was built "
                             "without MPI, so the ranks would not work together (rebuild with "
                             "meson setup -Dmpi=enabled and an MPI installed)",
                             n);
    return 0;
}

int dpt_mpi_comm(dpt_comm *out)
{
    solo_comm(out);
    return 0;
}

int dpt_mpi_comm_first(int n, dpt_comm *out, int *member)
{
    solo_comm(out);
    *member = 1;
    return n == 1 ? 0 : dpt_set_error(DPT_EINVAL, "%d ranks asked of 1", n);
}

void dpt_mpi_comm_free(dpt_comm *c)
{
    if (c) solo_comm(c);
}

int dpt_mpi_node_info(int *local_rank, int *local_size, int *max_sharing)
{
    *local_rank = 0;
    *local_size = 1;
    *max_sharing = 1;
    return 0;
}

int dpt_mpi_agree(int rc)
{
    return rc;
}

int dpt_mpi_idle_barrier(void)
{
    return 0;
}

int dpt_mpi_max_double(double *v)
{
    (void)v;
    return 0;
}

int dpt_mpi_gather_text(const char *text, size_t len, char **all, size_t **lens)
{
    if (len > MAX_TEXT) len = MAX_TEXT;
    return solo_gather_text(text, len, all, lens);
}

void dpt_mpi_host(char *buf, size_t cap)
{
    char name[256];
    if (gethostname(name, sizeof name) != 0) snprintf(name, sizeof name, "unknown");
    name[sizeof name - 1] = '\0';
    snprintf(buf, cap, "%s", name);
}

void dpt_mpi_finalize(void) {}

#endif
