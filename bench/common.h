// What the benches share: a seeded uniform generator and medians. Random-weight models of the real
// architectures (to time them without their 1 GB checkpoints) come from the library:
// models/random_weights.h.
#ifndef OODSEG_BENCH_COMMON_H
#define OODSEG_BENCH_COMMON_H

#include "../io/checkpoint.h"

// Uniform in [-0.5, 0.5), the same sequence in every run (seed 12345).
float bench_urand(void);
// qsort comparator of doubles, for medians.
int bench_cmp_d(const void *a, const void *b);

#endif
