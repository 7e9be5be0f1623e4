/* Seeded pseudo-random numbers (xoshiro256**, seeded through splitmix64): explicit state,
 * so the same seed always gives the same stream on every platform. */
#ifndef GN_RNG_H
#define GN_RNG_H

#include <stdint.h>

typedef struct gn_rng {
    uint64_t s[4];
} gn_rng;

void gn_rng_seed(gn_rng *rng, uint64_t seed);
uint64_t gn_rng_next(gn_rng *rng);
/* Uniform in [0, 1) with 24 random bits. */
float gn_rng_uniform(gn_rng *rng);
/* Standard normal (Box-Muller). */
float gn_rng_normal(gn_rng *rng);
/* Uniform integer in [0, n). */
uint32_t gn_rng_below(gn_rng *rng, uint32_t n);

#endif
