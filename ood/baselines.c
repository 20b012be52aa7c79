// The standard baselines, over the in-distribution channels only (a background/void channel is
// never part of the softmax), computed in double per pixel from the shifted logits z - max z so
// that nothing overflows:
//   MSP      1 - max softmax           = 1 - 1 / sum_j exp(z_j - m)
//   MaxLogit -max logit                = -m
//   Entropy  -sum p log p (natural)    = log S - sum_j e_j (z_j - m) / S,  e_j = exp(z_j - m), S = sum e_j
//   Energy   -T logsumexp(z / T)       = -(m + T log sum_j exp((z_j - m) / T))
// Four table entries sharing one loop; none has a state.
#include "method.h"
#include "../nn/simd.h"
#include <math.h>

typedef enum { B_MSP, B_MAXLOGIT, B_ENTROPY, B_ENERGY } baseline;

// Vector exp and log in double from glibc's libmvec, as nn/activation.c's erf and exp: GCC calls
// their _ZGV* variants in the simd loops below. In double they are far more accurate than the float
// scores need; the scalar libm calls took 70 ms of ESPNet's 1024x512 frame per method on one thread.
double exp(double) __attribute__((simd("notinbranch")));
double log(double) __attribute__((simd("notinbranch")));

// The scores of the pixels [p0, p0 + n) from their max logits m: channel by channel over the
// block, each pixel's sums in channel order, in double. (n <= OOD_BLOCK, and the blocks are fixed:
// which pixels take a vector lane never depends on the thread count.)
NN_TARGET_CLONES
static void block_score(baseline b, const ood_input *in, int64_t p0, int n, const float *m, double T,
                        float *score) {
    const int64_t hw = (int64_t)in->h * in->w;
    double s[OOD_BLOCK] = {0}, ez[OOD_BLOCK] = {0};
    if (b == B_MAXLOGIT) {
        for (int q = 0; q < n; q++) score[q] = (float)-(double)m[q];
        return;
    }
    for (int j = 0; j < in->num_id; j++) {
        const float *z = in->logits + (int64_t)in->id_channels[j] * hw + p0;
        if (b == B_MSP) {
            #pragma omp simd
            for (int q = 0; q < n; q++) s[q] += exp((double)z[q] - m[q]);
        } else if (b == B_ENERGY) {
            #pragma omp simd
            for (int q = 0; q < n; q++) s[q] += exp(((double)z[q] - m[q]) / T);
        } else {
            #pragma omp simd
            for (int q = 0; q < n; q++) {
                double d = (double)z[q] - m[q], ed = exp(d);
                s[q] += ed;
                ez[q] += ed * d;
            }
        }
    }
    if (b == B_MSP) {
        #pragma omp simd
        for (int q = 0; q < n; q++) score[q] = (float)(1.0 - 1.0 / s[q]);
    } else if (b == B_ENERGY) {
        #pragma omp simd
        for (int q = 0; q < n; q++) score[q] = (float)-(m[q] + T * log(s[q]));
    } else {
        #pragma omp simd
        for (int q = 0; q < n; q++) {
            double v = log(s[q]) - ez[q] / s[q];
            score[q] = (float)(v < 0 ? 0 : v);   // rounding near a one-hot softmax
        }
    }
}

static int baseline_score(const nn_ctx *ctx, baseline b, const ood_input *in, double T, float *score, err *e) {
    const int64_t hw = (int64_t)in->h * in->w, nb = (hw + OOD_BLOCK - 1) / OOD_BLOCK;
    int64_t badpix = -1;
    #pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (int64_t blk = 0; blk < nb; blk++) {
        float m[OOD_BLOCK];
        int32_t a[OOD_BLOCK];
        const int n = ood_block_max(in, blk, m, a, &badpix);
        block_score(b, in, blk * OOD_BLOCK, n, m, T, score + blk * OOD_BLOCK);
    }
    return badpix >= 0 ? ood_bad_logits(in, badpix, e) : OODSEG_OK;
}

#define BASELINE(fn, kind)                                                                            \
    static int fn(const nn_ctx *ctx, const void *state, const ood_options *o, const ood_input *in,  \
                  float *score, ood_aux *aux, err *e) {                                             \
        (void)state; (void)aux;                                                                     \
        return baseline_score(ctx, kind, in, o->energy_T, score, e);                                \
    }
BASELINE(msp_score, B_MSP)
BASELINE(maxlogit_score, B_MAXLOGIT)
BASELINE(entropy_score, B_ENTROPY)
BASELINE(energy_score, B_ENERGY)

const ood_method_def ood_def_msp = {"msp", "1 - max softmax", 0, "", NULL, msp_score, NULL};
const ood_method_def ood_def_maxlogit = {"maxlogit", "-max logit", 0, "", NULL, maxlogit_score, NULL};
const ood_method_def ood_def_entropy = {"entropy", "entropy of the softmax (natural log)", 0, "", NULL,
                                        entropy_score, NULL};
const ood_method_def ood_def_energy = {"energy", "-T logsumexp(logits / T)", 0, "T", NULL, energy_score, NULL};
