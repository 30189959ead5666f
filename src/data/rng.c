/* Counter-based SplitMix64 generator of docs/workloads.md: every draw is a pure
 * function of (key, index), so any thread can produce any element. */
#include <math.h>

#include "dpt/data.h"

#define GAMMA 0x9E3779B97F4A7C15ULL

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

uint64_t dpt_rng_key(uint64_t seed, unsigned stream)
{
    return mix64(seed * 256 + stream + GAMMA);
}

double dpt_rng_uniform(uint64_t key, uint64_t j)
{
    uint64_t draw = mix64(key + (j + 1) * GAMMA);
    return ((double)(draw >> 11) + 0.5) * 0x1.0p-53;
}

double dpt_rng_normal(uint64_t key, uint64_t j)
{
    double u1 = dpt_rng_uniform(key, 2 * j), u2 = dpt_rng_uniform(key, 2 * j + 1);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}
