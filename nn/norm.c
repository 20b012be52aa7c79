// LayerNorm (channels-last) and inference BatchNorm (NCHW).
#include "nn.h"
#include <math.h>

void layernorm_cl(const float *x, int64_t n, int c, const float *gamma, const float *beta,
                  float eps, float *y) {
    #pragma omp parallel for schedule(static) num_threads(nn_get_threads())
    for (int64_t i = 0; i < n; i++) {
        const float *xr = x + (size_t)i * c;
        float *yr = y + (size_t)i * c;
        // Two passes in double: the mean first, then the centred squares, so the variance does not
        // suffer the cancellation of E[x^2] - E[x]^2 (we are compared to PyTorch at 1e-5).
        double s = 0.0;
        for (int j = 0; j < c; j++) s += xr[j];
        double mean = s / c, v = 0.0;
        for (int j = 0; j < c; j++) { double d = xr[j] - mean; v += d * d; }
        float rstd = (float)(1.0 / sqrt(v / c + (double)eps));
        float m = (float)mean;
        for (int j = 0; j < c; j++) yr[j] = (xr[j] - m) * rstd * gamma[j] + beta[j];
    }
}

void batchnorm_inplace(float *x, int c, int64_t hw, const float *gamma, const float *beta,
                       const float *mean, const float *var, float eps) {
    #pragma omp parallel for schedule(static) num_threads(nn_get_threads())
    for (int ch = 0; ch < c; ch++) {
        float s = (float)((double)gamma[ch] / sqrt((double)var[ch] + (double)eps));
        float t = (float)((double)beta[ch] - (double)mean[ch] * s);
        float *xc = x + (size_t)ch * hw;
        for (int64_t i = 0; i < hw; i++) xc[i] = xc[i] * s + t;
    }
}
