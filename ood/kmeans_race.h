// D^2 sampling for k-means++ by an exponential race, internal to ood/kmeans.c (see kmeans_race.c).
#ifndef OODSEG_OOD_KMEANS_RACE_H
#define OODSEG_OOD_KMEANS_RACE_H

#include <stdint.h>
#include <string.h>

// -ln(u) for the race's keys, within 2.1e-7 relative for each u the race uses (tests/test_kmeans.c
// checks all 2^23 against libm's double log): u = m 2^x with m in [sqrt(1/2), sqrt(2)),
// ln m = 2 atanh(t), t = (m - 1) / (m + 1), |t| < 0.172, by its odd series to t^9 (the next term
// is below 4e-10). Plain arithmetic, so the keys do not depend on libm, and the loop is vector code.
static inline float kmeans_neg_ln(float u) {
    uint32_t b;
    memcpy(&b, &u, sizeof b);
    const uint32_t mb = b & 0x7fffffu, hi = mb > 0x3504f3u;   // m > sqrt(2): halve it (integer tests
    float x = (float)((int32_t)(b >> 23) - 127 + (int32_t)hi), m;   // keep the loop vector code)
    b = mb | (hi ? 0x3f000000u : 0x3f800000u);
    memcpy(&m, &b, sizeof m);
    const float t = (m - 1.0f) / (m + 1.0f), t2 = t * t;
    const float lm = t * (2.0f + t2 * (2.0f / 3 + t2 * (2.0f / 5 + t2 * (2.0f / 7 + t2 * (2.0f / 9)))));
    return -(x * 0.693147181f + lm);
}

// The winner of the race of draw r over rows [s, e) of the weights w: the i with the least key
// -ln(u_i) / (w[i] scale) in float, u_i in (0, 1) a hash of (r, i), the first such i on a tie;
// -1 when no w[i] scale is above zero in float (then *key is +Inf). scale: 1 / sum(w), so that
// the float weights neither overflow nor underflow (a row below 1e-38 of the total is never
// drawn). Over all rows the winner is i with probability w[i] / sum(w); ranges with the same
// scale merge by the least key, the earlier range on a tie.
int64_t kmeans_race(const double *w, int64_t s, int64_t e, double scale, uint64_t r, float *key);

#endif
