// LayerNorm (channels-last) and inference BatchNorm (NCHW).
#include "nn.h"
#include <math.h>

// One row. Two passes in double (vectorised lane-wise sums): the mean first, then the centred
// squares, so the variance does not suffer the cancellation of E[x^2] - E[x]^2 (we are compared to
// PyTorch at 1e-5). The lane split depends on the vector width, never on the thread count.
NN_TARGET_CLONES
static void layernorm_row(const float *xr, int c, const float *gamma, const float *beta, float eps,
                          float *yr) {
    double s = 0.0;
    #pragma omp simd reduction(+ : s)
    for (int j = 0; j < c; j++) s += xr[j];
    double mean = s / c, v = 0.0;
    #pragma omp simd reduction(+ : v)
    for (int j = 0; j < c; j++) { double d = xr[j] - mean; v += d * d; }
    float rstd = (float)(1.0 / sqrt(v / c + (double)eps));
    float m = (float)mean;
    #pragma omp simd
    for (int j = 0; j < c; j++) yr[j] = (xr[j] - m) * rstd * gamma[j] + beta[j];
}

void layernorm_cl(const nn_ctx *ctx, const float *x, int64_t n, int c, const float *gamma, const float *beta,
                  float eps, float *y) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if (n * c >= 16384)
    for (int64_t i = 0; i < n; i++)
        layernorm_row(x + (size_t)i * c, c, gamma, beta, eps, y + (size_t)i * c);
}

// Inference BN of channel ch as x * s + t (the scale and shift in double, rounded to float).
static void bn_fold(int ch, const float *gamma, const float *beta, const float *mean, const float *var, float eps,
                    float *s, float *t) {
    *s = (float)((double)gamma[ch] / sqrt((double)var[ch] + (double)eps));
    *t = (float)((double)beta[ch] - (double)mean[ch] * *s);
}

void batchnorm_inplace(const nn_ctx *ctx, float *x, int c, int64_t hw, const float *gamma, const float *beta,
                       const float *mean, const float *var, float eps) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (int ch = 0; ch < c; ch++) {
        float s, t;
        bn_fold(ch, gamma, beta, mean, var, eps, &s, &t);
        float *xc = x + (size_t)ch * hw;
        #pragma omp simd
        for (int64_t i = 0; i < hw; i++) xc[i] = xc[i] * s + t;
    }
}

// BN then PReLU in one pass over x into y (y may be x: half the memory traffic of the two calls),
// with exactly the float operations of batchnorm_inplace followed by prelu_inplace, so the results
// are identical. no-trapping-math lets GCC evaluate a * v for every lane and blend (see prelu_span).
__attribute__((optimize("no-trapping-math")))
static void bn_prelu_channel(const float *xc, int64_t hw, float s, float t, float a, float *yc) {
    #pragma omp simd
    for (int64_t i = 0; i < hw; i++) {
        float v = xc[i] * s + t;
        yc[i] = v >= 0.0f ? v : a * v;
    }
}

void batchnorm_prelu_shuffle(const nn_ctx *ctx, const float *x, int c, int64_t hw, int groups, const float *gamma,
                             const float *beta, const float *mean, const float *var, float eps, const float *slope,
                             float *y) {
    const int per = c / groups;
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((int64_t)c * hw >= 16384)
    for (int oc = 0; oc < c; oc++) {
        const int ic = oc % groups * per + oc / groups;   // y[j*groups + i] = x[i*per + j], as channel_shuffle
        float s, t;
        bn_fold(ic, gamma, beta, mean, var, eps, &s, &t);
        bn_prelu_channel(x + (size_t)ic * hw, hw, s, t, slope[ic], y + (size_t)oc * hw);
    }
}

// Channel ch of the folded BN (x * s + t) then PReLU.
static void bn_prelu_at(float *x, int ch, int64_t hw, const float *gamma, const float *beta, const float *mean,
                        const float *var, float eps, const float *slope) {
    float s, t;
    bn_fold(ch, gamma, beta, mean, var, eps, &s, &t);
    bn_prelu_channel(x + (size_t)ch * hw, hw, s, t, slope[ch], x + (size_t)ch * hw);
}

void batchnorm_prelu_inplace(const nn_ctx *ctx, float *x, int c, int64_t hw, const float *gamma, const float *beta,
                             const float *mean, const float *var, float eps, const float *slope) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((int64_t)c * hw >= 16384)
    for (int ch = 0; ch < c; ch++) bn_prelu_at(x, ch, hw, gamma, beta, mean, var, eps, slope);
}

// Channel q: x += res when res is given, then BN + PReLU.
static void res_bn_prelu_at(float *x, int q, int64_t hw, const float *res, const float *gamma, const float *beta,
                            const float *mean, const float *var, float eps, const float *slope) {
    if (res) {
        float *d = x + (size_t)q * hw;
        const float *r = res + (size_t)q * hw;
        #pragma omp simd
        for (int64_t i = 0; i < hw; i++) d[i] += r[i];
    }
    bn_prelu_at(x, q, hw, gamma, beta, mean, var, eps, slope);
}

void groupsum_batchnorm_prelu_inplace(const nn_ctx *ctx, float *x, int C, int off, int groups, int c, int64_t hw,
                                      const float *res, const float *gamma, const float *beta, const float *mean,
                                      const float *var, float eps, const float *slope) {
    const int rest = C - off - groups * c;   // channels after the groups
    // Items: the c group channels first (each 2 * groups - 1 passes), then the off + rest others (one
    // pass each), dynamically: in ESPNet's ESP blocks (off 28, c 25) a static split of the channels
    // in order gave one thread 27 passes and the other 176, and 2 threads took 0.98 of 1 thread's time.
    #pragma omp parallel for schedule(dynamic, 1) num_threads(ctx->threads) if ((int64_t)C * hw >= 16384)
    for (int u = 0; u < c + off + rest; u++) {
        if (u >= c) {   // a channel outside the groups
            const int v = u - c;
            res_bn_prelu_at(x, v < off ? v : v + groups * c, hw, res, gamma, beta, mean, var, eps, slope);
            continue;
        }
        const int ch = u;
        for (int g = 1; g < groups; g++) {   // the sums first: each reads the previous group as summed
            float *d = x + ((size_t)off + (size_t)g * c + ch) * hw;
            const float *s = d - (size_t)c * hw;
            #pragma omp simd
            for (int64_t i = 0; i < hw; i++) d[i] += s[i];
        }
        for (int g = 0; g < groups; g++)
            res_bn_prelu_at(x, off + g * c + ch, hw, res, gamma, beta, mean, var, eps, slope);
    }
}
