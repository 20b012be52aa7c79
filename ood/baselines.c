// The standard baselines, over the in-distribution channels only (a background/void channel is
// never part of the softmax), computed in double per pixel from the shifted logits z - max z so
// that nothing overflows:
//   MSP      1 - max softmax           = 1 - 1 / sum_j exp(z_j - m)
//   MaxLogit -max logit                = -m
//   Entropy  -sum p log p (natural)    = log S - sum_j e_j (z_j - m) / S,  e_j = exp(z_j - m), S = sum e_j
//   Energy   -T logsumexp(z / T)       = -(m + T log sum_j exp((z_j - m) / T))
// Four table entries sharing one loop; none has a state.
#include "method.h"
#include <math.h>

typedef enum { B_MSP, B_MAXLOGIT, B_ENTROPY, B_ENERGY } baseline;

// The score of one pixel from its in-distribution logits z[j * hw], their max m.
static inline double pixel_score(baseline b, const float *z, const int *id, int nid, int64_t hw, double m,
                                 double T) {
    double s = 0, ez = 0, v;
    switch (b) {
    case B_MAXLOGIT:
        return -m;
    case B_MSP:
        for (int j = 0; j < nid; j++) s += exp(z[(int64_t)id[j] * hw] - m);
        return 1.0 - 1.0 / s;
    case B_ENTROPY:
        for (int j = 0; j < nid; j++) {
            double d = z[(int64_t)id[j] * hw] - m, ed = exp(d);
            s += ed;
            ez += ed * d;
        }
        v = log(s) - ez / s;
        return v < 0 ? 0 : v;   // rounding near a one-hot softmax
    default:   // B_ENERGY
        for (int j = 0; j < nid; j++) s += exp((z[(int64_t)id[j] * hw] - m) / T);
        return -(m + T * log(s));
    }
}

static int baseline_score(const nn_ctx *ctx, baseline b, const ood_input *in, double T, float *score, err *e) {
    const int64_t hw = (int64_t)in->h * in->w;
    const int nid = in->num_id;
    int64_t badpix = -1;
    #pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (int64_t p = 0; p < hw; p++) {
        double m;
        if (!ood_pixel_max(in, p, hw, &m, NULL)) {
            #pragma omp critical(ood_badpix2)
            if (badpix < 0 || p < badpix) badpix = p;
            score[p] = 0;
            continue;
        }
        score[p] = (float)pixel_score(b, in->logits + p, in->id_channels, nid, hw, m, T);
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
