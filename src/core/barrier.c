/* The engine's team barrier (barrier.h). */
#include "core/barrier.h"

#include <limits.h>
#include <sched.h>
#include <stdlib.h>

#include <unistd.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* A waiter pauses SPIN times (a few microseconds: a step's usual
 * imbalance), then yields its CPU up to YIELDS times, then sleeps. In a
 * team with more threads than the machine has CPUs the thread it waits
 * for may be waiting for its CPU: a short spin and a few yields. */
enum { SPIN = 512, YIELDS = 64, SPIN_OVER = 16, YIELDS_OVER = 4 };

int dpt_barrier_init(dpt_barrier *b, int P, const int *domain)
{
    b->P = P > 1 ? P : 1;
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    const int over = cpus > 0 && b->P > cpus;
    b->spin = over ? SPIN_OVER : SPIN;
    b->yields = over ? YIELDS_OVER : YIELDS;
    b->group_of = malloc((size_t)b->P * sizeof *b->group_of);
    b->groups = dpt_alloc((size_t)b->P * sizeof *b->groups);
    if (!b->group_of || !b->groups) {
        dpt_barrier_destroy(b);
        return -1;
    }
    /* a domain's threads in thread order, DPT_BARRIER_GROUP at a time:
     * each thread joins the open group of its domain, or opens one */
    int *open = malloc((size_t)b->P * sizeof *open); /* domain index -> group, or -1 */
    if (!open) {
        dpt_barrier_destroy(b);
        return -1;
    }
    for (int i = 0; i < b->P; i++) open[i] = -1;
    b->ngroups = 0;
    for (int t = 0; t < b->P; t++) {
        int d = domain ? domain[t] : 0;
        if (d < 0 || d >= b->P) d = 0;
        int g = open[d];
        if (g < 0 || b->groups[g].size == DPT_BARRIER_GROUP) {
            g = open[d] = b->ngroups++;
            b->groups[g].size = 0;
        }
        b->groups[g].size++;
        b->group_of[t] = g;
    }
    free(open);
    for (int g = 0; g < b->ngroups; g++) atomic_init(&b->groups[g].count, b->groups[g].size);
    atomic_init(&b->top, b->ngroups);
    atomic_init(&b->gen, 0);
    atomic_init(&b->sleepers, 0);
    return 0;
}

void dpt_barrier_destroy(dpt_barrier *b)
{
    free(b->group_of);
    dpt_free(b->groups);
    b->group_of = NULL;
    b->groups = NULL;
}

static void sleep_while(atomic_int *gen, int g)
{
#if defined(__linux__)
    /* returns at once when *gen is no longer g (EAGAIN), on a wake, or
     * spuriously: the caller loops */
    syscall(SYS_futex, (int *)gen, FUTEX_WAIT_PRIVATE, g, NULL, NULL, 0);
#else
    (void)gen, (void)g;
    sched_yield();
#endif
}

static void wake_all(atomic_int *gen)
{
#if defined(__linux__)
    syscall(SYS_futex, (int *)gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    (void)gen;
#endif
}

void dpt_barrier_wait(dpt_barrier *b, int t)
{
    if (b->P <= 1) return;
    /* stable until this thread arrives: the round cannot end without it */
    const int g = atomic_load_explicit(&b->gen, memory_order_relaxed);
    dpt_barrier_group *grp = &b->groups[b->group_of[t]];
    /* acq_rel: the last arrival of a group acquires its members' writes
     * and passes them on with its own arrival at the top */
    if (atomic_fetch_sub_explicit(&grp->count, 1, memory_order_acq_rel) == 1) {
        /* nobody touches a count again before seeing the new gen */
        atomic_store_explicit(&grp->count, grp->size, memory_order_relaxed);
        /* one group: its last arrival is the last of all */
        if (b->ngroups == 1 || atomic_fetch_sub_explicit(&b->top, 1, memory_order_acq_rel) == 1) {
            if (b->ngroups > 1) atomic_store_explicit(&b->top, b->ngroups, memory_order_relaxed);
            /* seq_cst store then load, against the sleepers' seq_cst add
             * then load: either they see the new gen or this sees them */
            atomic_store_explicit(&b->gen, g + 1, memory_order_seq_cst);
            if (atomic_load_explicit(&b->sleepers, memory_order_seq_cst) > 0) wake_all(&b->gen);
            return;
        }
    }
    for (int i = 0; i < b->spin; i++) {
        if (atomic_load_explicit(&b->gen, memory_order_acquire) != g) return;
        cpu_relax();
    }
    for (int i = 0; i < b->yields; i++) {
        if (atomic_load_explicit(&b->gen, memory_order_acquire) != g) return;
        sched_yield();
    }
    atomic_fetch_add_explicit(&b->sleepers, 1, memory_order_seq_cst);
    while (atomic_load_explicit(&b->gen, memory_order_seq_cst) == g) sleep_while(&b->gen, g);
    atomic_fetch_sub_explicit(&b->sleepers, 1, memory_order_relaxed);
}
