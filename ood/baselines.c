// The standard baselines, over the in-distribution channels only (a background/void channel is
// never part of the softmax), computed in double per pixel from the shifted logits z - max z so
// that nothing overflows:
//   MSP      1 - max softmax           = 1 - 1 / sum_j exp(z_j - m)
//   MaxLogit -max logit                = -m
//   Entropy  -sum p log p (natural)    = log S - sum_j e_j (z_j - m) / S,  e_j = exp(z_j - m), S = sum e_j
//   Energy   -T logsumexp(z / T)       = -(m + T log sum_j exp((z_j - m) / T))
#include "ood.h"
#include <math.h>
#include <omp.h>
#include "../nn/nn.h"

int ood_max_logit(const ood_input *in, float *ml, int32_t *pred, float *conf, err *e) {
    const int64_t hw = (int64_t)in->h * in->w;
    const int nid = in->num_id;
    int64_t badpix = -1;
    #pragma omp parallel for schedule(static) num_threads(in->ctx->threads)
    for (int64_t p = 0; p < hw; p++) {
        double m = -INFINITY;
        int arg = 0, ok = 1;
        for (int j = 0; j < nid; j++) {
            double z = in->logits[(int64_t)in->id_channels[j] * hw + p];
            if (!isfinite(z)) ok = 0;
            if (z > m) { m = z; arg = j; }
        }
        if (!ok) {
            #pragma omp critical(ood_badpix)
            if (badpix < 0 || p < badpix) badpix = p;
            ml[p] = 0;
            continue;
        }
        ml[p] = (float)m;
        if (pred) pred[p] = arg;
        if (conf) {
            double s = 0;
            for (int j = 0; j < nid; j++) s += exp(in->logits[(int64_t)in->id_channels[j] * hw + p] - m);
            conf[p] = (float)(1.0 / s);
        }
    }
    if (badpix >= 0)
        return err_set(e, OODSEG_E_ARG, "logits at pixel (x %lld, y %lld) are not finite (NaN or Inf)",
                       (long long)(badpix % in->w), (long long)(badpix / in->w));
    return OODSEG_OK;
}

int ood_baseline(ood_method method, const ood_input *in, double T, float *score, err *e) {
    const int64_t hw = (int64_t)in->h * in->w;
    const int nid = in->num_id;
    int64_t badpix = -1;
    #pragma omp parallel for schedule(static) num_threads(in->ctx->threads)
    for (int64_t p = 0; p < hw; p++) {
        double m = -INFINITY;
        int ok = 1;
        for (int j = 0; j < nid; j++) {
            double z = in->logits[(int64_t)in->id_channels[j] * hw + p];
            if (!isfinite(z)) ok = 0;
            if (z > m) m = z;
        }
        if (!ok) {
            #pragma omp critical(ood_badpix2)
            if (badpix < 0 || p < badpix) badpix = p;
            score[p] = 0;
            continue;
        }
        double s = 0, ez = 0, v;
        switch (method) {
        case OOD_MAXLOGIT:
            v = -m;
            break;
        case OOD_MSP:
            for (int j = 0; j < nid; j++) s += exp(in->logits[(int64_t)in->id_channels[j] * hw + p] - m);
            v = 1.0 - 1.0 / s;
            break;
        case OOD_ENTROPY:
            for (int j = 0; j < nid; j++) {
                double d = in->logits[(int64_t)in->id_channels[j] * hw + p] - m, ed = exp(d);
                s += ed;
                ez += ed * d;
            }
            v = log(s) - ez / s;
            if (v < 0) v = 0;   // rounding near a one-hot softmax
            break;
        default:   // OOD_ENERGY
            for (int j = 0; j < nid; j++) s += exp((in->logits[(int64_t)in->id_channels[j] * hw + p] - m) / T);
            v = -(m + T * log(s));
            break;
        }
        score[p] = (float)v;
    }
    if (badpix >= 0)
        return err_set(e, OODSEG_E_ARG, "logits at pixel (x %lld, y %lld) are not finite (NaN or Inf)",
                       (long long)(badpix % in->w), (long long)(badpix / in->w));
    return OODSEG_OK;
}
