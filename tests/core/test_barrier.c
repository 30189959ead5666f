/* The engine's team barrier (src/core/barrier.h): every thread sees every
 * other thread's writes from before the barrier, round after round, with
 * one group or many, and with more threads than this machine has CPUs
 * (where waiters must yield and sleep, not spin forever). */
#include <criterion/criterion.h>
#include <omp.h>
#include <stdlib.h>

#include "core/barrier.h"

/* P threads, rounds rounds: each writes its slot, waits, checks all slots,
 * waits (so nobody overwrites a slot another still reads). The number of
 * mismatches seen, or -1 when the team was not P threads. */
static long run_rounds(int P, const int *domain, int rounds)
{
    dpt_barrier *b = dpt_alloc(sizeof *b);
    int *slot = calloc((size_t)P * 16, sizeof *slot); /* a line per thread */
    cr_assert(b && slot);
    cr_assert_eq(dpt_barrier_init(b, P, domain), 0);
    long bad = 0;
    int team = 0;
    omp_set_dynamic(0);
#pragma omp parallel num_threads(P) reduction(+ : bad)
    {
        const int t = omp_get_thread_num();
#pragma omp single
        team = omp_get_num_threads();
        for (int r = 1; r <= rounds; r++) {
            slot[t * 16] = r * P + t;
            dpt_barrier_wait(b, t);
            for (int q = 0; q < P; q++) bad += slot[q * 16] != r * P + q;
            dpt_barrier_wait(b, t);
        }
    }
    dpt_barrier_destroy(b);
    dpt_free(b);
    free(slot);
    return team == P ? bad : -1;
}

Test(barrier, one_thread_returns_at_once)
{
    cr_assert_eq(run_rounds(1, NULL, 100), 0);
}

Test(barrier, two_threads_many_rounds)
{
    cr_assert_eq(run_rounds(2, NULL, 20000), 0);
}

Test(barrier, oversubscribed_flat)
{
    /* far more threads than CPUs: 24 threads in groups of 8 */
    cr_assert_eq(run_rounds(24, NULL, 300), 0);
}

Test(barrier, groups_by_domain)
{
    /* 3 domains of uneven sizes, interleaved: 11, 7 and 2 threads, so one
     * domain splits into a group of 8 and one of 3 */
    enum { P = 20 };
    int dom[P];
    for (int t = 0; t < P; t++) dom[t] = t < 14 ? t % 2 : (t < 18 ? 0 : 2);
    dpt_barrier b;
    cr_assert_eq(dpt_barrier_init(&b, P, dom), 0);
    int size[P] = {0};
    for (int t = 0; t < P; t++) {
        cr_assert(b.group_of[t] >= 0 && b.group_of[t] < b.ngroups);
        size[b.group_of[t]]++;
    }
    /* domain 0: 7 + 4 = 11 threads -> 8 + 3; domain 1: 7; domain 2: 2 */
    cr_assert_eq(b.ngroups, 4);
    int seen8 = 0, seen3 = 0, seen7 = 0, seen2 = 0;
    for (int g = 0; g < b.ngroups; g++) {
        cr_assert_leq(size[g], DPT_BARRIER_GROUP);
        seen8 += size[g] == 8, seen3 += size[g] == 3, seen7 += size[g] == 7, seen2 += size[g] == 2;
        /* every thread of a group is of one domain */
        int d = -1;
        for (int t = 0; t < P; t++)
            if (b.group_of[t] == g) {
                if (d < 0) d = dom[t];
                cr_assert_eq(dom[t], d, "group %d mixes domains %d and %d", g, d, dom[t]);
            }
    }
    cr_assert(seen8 == 1 && seen3 == 1 && seen7 == 1 && seen2 == 1);
    dpt_barrier_destroy(&b);
    cr_assert_eq(run_rounds(P, dom, 300), 0);
}
