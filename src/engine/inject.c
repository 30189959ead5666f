/* The calibration aid of dpt_engine_opts.inject_slowdown: after a thread's
 * compute phase, more work in proportion to the compute time it just
 * measured, so that a build can be compared against itself made slower by
 * a known fraction (`dpt compare --calibrate`). The work is a dependent
 * chain of fused multiply-adds on the thread's own core, not a sleep: it
 * holds the core as real compute would, and suffers the same interference
 * (a thread that loses its core meanwhile is slowed like one computing).
 * It touches no parameter, gradient or row, so the trained bits stay the
 * same; the time shows up as wait (after compute, before the barrier). */
#include <math.h>

#include "engine/engine_impl.h"

/* FMAs between two looks at the clock: ~1 us of latency-bound work. */
#define INJECT_CHUNK 256

void dpt_engine_inject(const dpt_engine *e, const step *st)
{
    if (!(e->inject > 0)) return;
    const double until = st->t1 + e->inject * (st->t1 - st->c0);
    double x = st->t1; /* a value the compiler cannot know */
    do {
        /* each FMA waits for the last: no vectorising; without
         * -ffast-math no reassociation either */
        for (int i = 0; i < INJECT_CHUNK; i++) x = fma(x, 0.999999, 1e-6);
    } while (dpt_now() < until);
    volatile double sink = x; /* the chain is used: it cannot be removed */
    (void)sink;
}
