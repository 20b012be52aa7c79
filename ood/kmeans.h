// K-Means with scikit-learn 1.2 semantics (Lloyd, k-means++ greedy init with 2 + ln K candidates,
// tol relative to the mean feature variance, empty clusters moved to the farthest points, best of
// n_init by inertia). The k-means++ candidates are drawn from sklearn's D^2 distribution by an
// exponential race (kmeans_race.c), which a small change of the features rarely changes. Distances |x|^2 - 2 x.c + |c|^2 over fixed row blocks, OpenMP over blocks,
// with Elkan bounds: deterministic for a seed, identical for any thread count.
//
// The x.c products are not a BLAS call: with K <= 16 centres OpenBLAS's sgemm spends most of its
// time packing X (measured at D = 1280: a third of the whole fit), so kmeans_dist.c has a kernel that
// reads X once and has a proven error bound, which the bounds and the labels rely on (see
// kmeans.c). BENCHMARKS.md has the numbers.
#ifndef OODSEG_OOD_KMEANS_H
#define OODSEG_OOD_KMEANS_H

#include <stdint.h>
#include "../core/err.h"
#include "../nn/ctx.h"

typedef struct kmeans_params {
    int k;              // clusters (default 8)
    int n_init;         // restarts, best inertia kept (default 1)
    int max_iter;       // default 300
    double tol;         // default 1e-4, relative to mean per-feature variance
    uint64_t seed;      // default 0
    int exact_lloyd;    // 1: plain Lloyd, every distance every iteration (no Elkan bounds);
                        // for tests and benches, the results are the same
    int pp_one_by_one;  // 1: the n_init k-means++ runs one after another, not side by side
                        // sharing passes over the data; for tests, the results are the same
} kmeans_params;

void kmeans_params_default(kmeans_params *p);

typedef struct kmeans_result {
    int k, d;
    float *centers;     // (k, d)
    int32_t *labels;    // (n)
    double inertia;
    int n_iter;
} kmeans_result;

// X: (n, d) row-major. init: (k, d) starting centres, or NULL for k-means++ (then n_init restarts).
// ctx: the team size of every parallel region (the result does not depend on it).
// Errors: k < 1 or k > n (names both), NaN/Inf in X (names the row), out of memory.
int kmeans_fit(const nn_ctx *ctx, const float *X, int64_t n, int d, const kmeans_params *p,
               const float *init, kmeans_result *out, err *e);
void kmeans_result_free(kmeans_result *r);

#endif
