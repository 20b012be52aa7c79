// Distance kernels of K-Means, internal to ood/kmeans.c (see kmeans_dist.c).
#ifndef OODSEG_OOD_KMEANS_DIST_H
#define OODSEG_OOD_KMEANS_DIST_H

#include <stddef.h>

// Floats of scratch kmeans_dots() needs for m centres.
size_t kmeans_dots_scratch(int m);

// out[r * ldo + j] = sum_c (xr[r][c] - mean[c]) * Cp[j * ldc + c] for r < nr, j < m, in float.
// Cp: (m, ldc), zero-padded, ldc >= d rounded up to 16. Error per dot product at most
// gamma_{ceil(d/16)+4} * (|x - mean|^2 + |c|^2) / 2. scratch: kmeans_dots_scratch(m) floats,
// 64-byte aligned.
void kmeans_dots(const float *const *xr, int nr, const float *mean, const float *Cp, int ldc, int m,
                 int d, float *scratch, float *out, int ldo);

// |x - mean|^2 and |(x - mean) - c|^2 in double.
double kmeans_row_norm2(const float *x, const float *mean, int d);
double kmeans_dist2(const float *x, const float *mean, const float *c, int d);

#endif
