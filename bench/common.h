// What the benches share: a seeded uniform generator, medians, and a checkpoint of random weights
// in the real key layout of a manifest (../shared/golden/manifest-*.json), so that a bench times
// a real architecture without its 1 GB checkpoint.
#ifndef OODSEG_BENCH_COMMON_H
#define OODSEG_BENCH_COMMON_H

#include "../io/checkpoint.h"

// Uniform in [-0.5, 0.5), the same sequence in every run (seed 12345).
float bench_urand(void);
// qsort comparator of doubles, for medians.
int bench_cmp_d(const void *a, const void *b);
// The manifest's keys with random weights of sensible scale, so that activations stay finite and
// normal: LN/BN scales near 1, layer-scale gammas near 0.5, positive variances, fan-in scaled
// conv and linear weights, small biases; integer keys (num_batches_tracked) a constant.
ckpt *bench_random_ckpt(const char *manifest, err *e);

#endif
