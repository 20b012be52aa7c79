// BR, ESPNet's and ESPNetv2's name for a BatchNorm followed by a PReLU (docs/espnet-espnetv2.md).
// Both networks put one on every concatenation and residual sum, where a sum or a concat of
// several convs sits between conv and BN, so the BN cannot be folded into a conv.
#ifndef OODSEG_MODELS_BR_H
#define OODSEG_MODELS_BR_H

#include "weights.h"

typedef struct br {
    int c;
    float eps;           // 1e-3 in ESPNet, 1e-5 in ESPNetv2
    bn_params bn;        // (c) each
    const float *slope;  // (c) PReLU
} br;

// The BatchNorm `bn` and the PReLU `act` (module names under the binder's prefix) of c channels.
void br_bind(wbind *b, br *r, int c, float eps, const char *bn, const char *act);
// x (c, hw) in place: BN with the running statistics, then PReLU.
void br_apply(const nn_ctx *ctx, const br *r, float *x, int64_t hw);
// Channels [c0, c0 + n) of the BR from x into y ((n, hw) each, x left as it was): the bits of
// br_apply on those channels, without a copy of x first.
void br_apply_into(const nn_ctx *ctx, const br *r, int c0, int n, const float *x, float *y, int64_t hw);
// Channels [c0, c0 + n) of the BR on x ((n, hw), in place).
void br_apply_part(const nn_ctx *ctx, const br *r, int c0, int n, float *x, int64_t hw);
// x (r->c, hw) holds `groups` groups of c channels from channel off: group g += group g - 1 in
// turn (hierarchical feature fusion), then x += res (NULL: none), then br_apply, in one pass
// (groupsum_batchnorm_prelu_inplace).
void br_apply_groupsum(const nn_ctx *ctx, const br *r, int off, int groups, int c, float *x, const float *res,
                       int64_t hw);

#endif
