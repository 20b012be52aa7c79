// D^2 sampling for k-means++ by an exponential race, internal to ood/kmeans.c (see kmeans_race.c).
#ifndef OODSEG_OOD_KMEANS_RACE_H
#define OODSEG_OOD_KMEANS_RACE_H

#include <stdint.h>

// The winner of the race of draw r over rows [s, e) of the weights w: the i with the least key
// -ln(u_i) / (w[i] scale) in float, u_i in (0, 1] a hash of (r, i), the first such i on a tie;
// -1 when no w[i] scale is above zero in float (then *key is +Inf). scale: 1 / sum(w), so that
// the float weights neither overflow nor underflow (a row below 1e-38 of the total is never
// drawn). Over all rows the winner is i with probability w[i] / sum(w); ranges with the same
// scale merge by the least key, the earlier range on a tie.
int64_t kmeans_race(const double *w, int64_t s, int64_t e, double scale, uint64_t r, float *key);

#endif
