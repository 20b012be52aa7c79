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
// The baseline of the conv benches: GFLOP/s of a square sgemm of size n, each of `threads` threads
// running a single-threaded sgemm (nn_sgemm, as the ops do) on its own n x (n/threads) slice;
// the median of `runs` (at most 32).
double bench_sgemm_peak(int n, int threads, int runs);
// Prints "load average at start: " and /proc/loadavg's line ("?" where it cannot be read).
void bench_print_loadavg(void);

#endif
