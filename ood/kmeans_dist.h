// Distance kernels of K-Means, internal to ood/kmeans.c (see kmeans_dist.c).
#ifndef OODSEG_OOD_KMEANS_DIST_H
#define OODSEG_OOD_KMEANS_DIST_H

#include <stddef.h>
#include "../nn/simd.h"

// Centres C (m, ldC) packed for kmeans_dots(): kmeans_pack_floats(m, d) floats, 64-byte aligned.
size_t kmeans_pack_floats(int m, int d);
void kmeans_pack(const float *C, size_t ldC, int m, int d, float *P);

// out[r * ldo + j] = sum_c (xr[r][c] - mean[c]) * C[j][c] for r < nr, j < m, in float, from the
// packed centres P. Error per dot product at most gamma_n * (|x - mean|^2 + |c|^2) / 2 with
// n = kmeans_dots_depth(m, d). scratch: kmeans_dots_scratch(m) floats, 64-byte aligned.
// norms: NULL, or (nr) |x - mean|^2 in double (x - mean in float), from the centred rows the
// kernel forms anyway: the first pass then reads each row once.
void kmeans_dots(const float *const *xr, int nr, const float *mean, const float *P, int m, int d,
                 float *scratch, float *out, int ldo, double *norms);
size_t kmeans_dots_scratch(int m);
int kmeans_dots_depth(int m, int d);

// The pair kernel at any m: each dot product gets the arithmetic kmeans_dots() gives it when
// m <= 4, whatever the other centres, so that several sets of centres can share one pass over
// the data with the bits of one set at a time (k-means++ runs side by side).
size_t kmeans_pack_pairs_floats(int m, int d);
void kmeans_pack_pairs(const float *C, size_t ldC, int m, int d, float *P);
void kmeans_dots_pairs(const float *const *xr, int nr, const float *mean, const float *P, int m, int d,
                       float *scratch, float *out, int ldo, double *norms);
size_t kmeans_dots_pairs_scratch(int m);
// (kmeans_dots() uses the pair kernel for m <= KMEANS_PAIR_MAX)
#define KMEANS_PAIR_MAX 4

// |x - mean|^2 and |(x - mean) - c|^2 in double.
double kmeans_row_norm2(const float *x, const float *mean, int d);
double kmeans_dist2(const float *x, const float *mean, const float *c, int d);

#endif
