// D^2 sampling by an exponential race (the k-means++ draws of ood/kmeans.c).
//
// k-means++ draws each next candidate with probability w_i / sum(w), w_i the squared distance of
// point i to its nearest chosen centre. sklearn searches a uniform u * sum(w) in the cumulative
// sums of w. That pick moves to another point as soon as the sums before it shift by more than one
// point's weight: with n = 2048 points one weight is 1/2048 of the total on average, so features
// that change in their third digit (a bf16 network, another device, another BLAS) change most
// draws, and K-Means lands in another local optimum on nearly every image.
//
// The race draws from the same distribution. Each point gets E_i = -ln(u_i), independent Exp(1)
// variables, and the winner is the argmin of E_i / w_i: E_i / w_i is Exp(w_i), and the least of
// independent exponentials is i with probability w_i / sum(w). u_i is a hash of the generator's
// draw and i, so one draw per candidate, as before. A small change of the weights now changes the
// winner only when the two least keys are that close. Measured with the real ESPNetv2 weights on
// the 233 CamVid-OOD images (K = 16, n_init 3), bf16 against fp32 features: all three k-means++
// inits were the same on 194 images (with the cumulative sums, on 1), and the clusterings moved
// more than 10 % of the pixels on 47 images instead of 207 (BENCHMARKS.md).
#include "kmeans_race.h"
#include "../nn/simd.h"
#include <math.h>

// u_i in (0, 1), odd multiples of 2^-24 (so -ln u > 0): murmur3's 32-bit finaliser, twice, over
// i and the two halves of the draw r (32-bit multiplies, so that the loop below is vector code on
// AVX2 too).
static inline uint32_t fmix32(uint32_t z) {
    z ^= z >> 16;
    z *= 0x85ebca6bu;
    z ^= z >> 13;
    z *= 0xc2b2ae35u;
    return z ^ (z >> 16);
}
static inline float race_u(uint64_t r, int64_t i) {
    uint32_t z = fmix32(fmix32((uint32_t)i * 0x9E3779B9u + (uint32_t)r) ^ (uint32_t)(r >> 32));
    return (float)(int32_t)((z >> 9) * 2 + 1) * 0x1.0p-24f;   // through int32: no branch for unsigned
}

#define RACE_BLOCK 256

NN_TARGET_CLONES
int64_t kmeans_race(const double *w, int64_t s, int64_t e, double scale, uint64_t r, float *key) {
    float best = INFINITY, k[RACE_BLOCK];
    int64_t at = -1;
    for (int64_t b = s; b < e; b += RACE_BLOCK) {
        const int nb = (int)(e - b < RACE_BLOCK ? e - b : RACE_BLOCK);
        NN_SIMD_INT
        for (int j = 0; j < nb; j++)   // a weight of 0 gives +Inf (-ln u > 0), never less than best
            k[j] = kmeans_neg_ln(race_u(r, b + j)) / fabsf((float)(w[b + j] * scale));
        float least = INFINITY;
        #pragma omp simd reduction(min : least)
        for (int j = 0; j < nb; j++) least = k[j] < least ? k[j] : least;
        if (least < best) {   // the first row with it
            int j = 0;
            while (k[j] != least) j++;
            best = least;
            at = b + j;
        }
    }
    *key = best;
    return at;
}
