/* A team barrier for the engine's per-step synchronisation.
 *
 * libgomp's barrier ends in a futex wake system call made by the last
 * thread to arrive, whether or not anyone sleeps: about a microsecond in a
 * VM, two or three times per step. And it counts every arrival on one
 * cache line, which on a 192-thread, two-socket server means 192 atomic
 * updates of a line that travels between the sockets, one after another.
 *
 * This one combines in two levels: threads arrive on their group's
 * counter (a group is a few threads of one domain, which share an L3);
 * the last of each group arrives on the top counter; the last of all
 * resets the counters and bumps the generation. The others spin on the
 * generation (pausing), then yield their CPU for a while (a team with
 * more threads than CPUs), then sleep on a futex, which the last arrival
 * wakes only when somebody sleeps. Release/acquire: what a thread wrote
 * before its arrival is visible to every thread after the barrier. */
#ifndef DPT_CORE_BARRIER_H
#define DPT_CORE_BARRIER_H

#include <stdatomic.h>

#include "core/alloc.h"

/* one group's arrivals, a line of its own */
typedef struct dpt_barrier_group {
    _Alignas(DPT_CACHE_LINE) atomic_int count; /* arrivals still awaited */
    int size;
} dpt_barrier_group;

typedef struct dpt_barrier {
    _Alignas(DPT_CACHE_LINE) atomic_int gen; /* bumped when all arrived */
    atomic_int sleepers;                     /* threads in futex_wait */
    _Alignas(DPT_CACHE_LINE) atomic_int top; /* groups still awaited */
    int P, ngroups;
    int spin, yields;          /* a waiter's pauses, then yields, before it sleeps */
    int *group_of;             /* thread -> group */
    dpt_barrier_group *groups; /* ngroups of them */
} dpt_barrier;

/* Groups of at most this many threads (a group's arrivals are serial). */
#define DPT_BARRIER_GROUP 8

/* For a team of P threads; domain[t] (NULL: all one domain) groups them:
 * threads of one domain, in thread order, DPT_BARRIER_GROUP at a time.
 * Waiters spin less when P exceeds the machine's online CPUs. 0, or -1
 * when out of memory. */
int dpt_barrier_init(dpt_barrier *b, int P, const int *domain);
void dpt_barrier_destroy(dpt_barrier *b);

/* Thread t waits until all P threads have called it (any number of
 * rounds). */
void dpt_barrier_wait(dpt_barrier *b, int t);

#endif
