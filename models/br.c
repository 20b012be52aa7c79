// BR = BatchNorm -> PReLU (br.h).
#include "br.h"

void br_bind(wbind *b, br *r, int c, float eps, const char *bn, const char *act) {
    r->c = c;
    r->eps = eps;
    wb_bn(b, &r->bn, c, "%s", bn);
    r->slope = wb_prelu(b, c, "%s", act);
}

void br_apply(const nn_ctx *ctx, const br *r, float *x, int64_t hw) {
    batchnorm_prelu_inplace(ctx, x, r->c, hw, r->bn.gamma, r->bn.beta, r->bn.mean, r->bn.var, r->eps, r->slope);
}

void br_apply_into(const nn_ctx *ctx, const br *r, int c0, int n, const float *x, float *y, int64_t hw) {
    // (a channel shuffle of 1 group is the identity)
    batchnorm_prelu_shuffle(ctx, x, n, hw, 1, r->bn.gamma + c0, r->bn.beta + c0, r->bn.mean + c0, r->bn.var + c0,
                            r->eps, r->slope + c0, y);
}

void br_apply_part(const nn_ctx *ctx, const br *r, int c0, int n, float *x, int64_t hw) {
    batchnorm_prelu_inplace(ctx, x, n, hw, r->bn.gamma + c0, r->bn.beta + c0, r->bn.mean + c0, r->bn.var + c0, r->eps,
                            r->slope + c0);
}

void br_apply_groupsum(const nn_ctx *ctx, const br *r, int off, int groups, int c, float *x, const float *res,
                       int64_t hw) {
    groupsum_batchnorm_prelu_inplace(ctx, x, r->c, off, groups, c, hw, res, r->bn.gamma, r->bn.beta, r->bn.mean,
                                     r->bn.var, r->eps, r->slope);
}
