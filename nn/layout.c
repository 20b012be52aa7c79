// Layout changes and small channel-wise helpers. Transposes go in square blocks so both sides stay
// in cache.
#include "nn.h"
#include <string.h>

#define TB 32   // transpose block edge

// dst (cols, rows) = src (rows, cols)^T.
static void transpose(const nn_ctx *ctx, const float *src, int64_t rows, int64_t cols, float *dst) {
    int64_t rb = (rows + TB - 1) / TB, cb = (cols + TB - 1) / TB;
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if (rows * cols >= 16384)
    for (int64_t b = 0; b < rb * cb; b++) {
        int64_t r0 = (b / cb) * TB, c0 = (b % cb) * TB;
        int64_t r1 = r0 + TB < rows ? r0 + TB : rows, c1 = c0 + TB < cols ? c0 + TB : cols;
        for (int64_t r = r0; r < r1; r++)
            for (int64_t cc = c0; cc < c1; cc++) dst[cc * rows + r] = src[r * cols + cc];
    }
}

void nchw_to_nhwc(const nn_ctx *ctx, const float *x, int c, int h, int w, float *y) {
    transpose(ctx, x, c, (int64_t)h * w, y);
}

void nhwc_to_nchw(const nn_ctx *ctx, const float *x, int h, int w, int c, float *y) {
    transpose(ctx, x, (int64_t)h * w, c, y);
}

void channel_shuffle(const nn_ctx *ctx, const float *x, int c, int64_t hw, int groups, float *y) {
    int per = c / groups;
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((int64_t)c * hw >= 16384)
    for (int oc = 0; oc < c; oc++) {
        int j = oc / groups, i = oc % groups;   // y[j*groups + i] = x[i*per + j]
        const float *src = x + (size_t)(i * per + j) * hw;
        float *dst = y + (size_t)oc * hw;
        for (int64_t p = 0; p < hw; p++) dst[p] = src[p];
    }
}

void add_inplace(const nn_ctx *ctx, float *y, const float *x, int64_t n) {
    #pragma omp parallel for simd schedule(static) num_threads(ctx->threads) if (n >= 16384)
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

void add_prelu_inplace(const nn_ctx *ctx, float *y, const float *x, int c, int64_t hw, const float *slope) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((int64_t)c * hw >= 16384)
    for (int ch = 0; ch < c; ch++) {
        float *yc = y + (size_t)ch * hw;
        const float *xc = x + (size_t)ch * hw;
        #pragma omp simd
        for (int64_t i = 0; i < hw; i++) yc[i] += xc[i];
        prelu_span(yc, hw, slope[ch]);
    }
}

void add_scaled_cl(const nn_ctx *ctx, float *x, const float *y, const float *gamma, int64_t n, int c) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if (n * c >= 16384)
    for (int64_t i = 0; i < n; i++) {
        float *xr = x + i * c;
        const float *yr = y + i * c;
        if (gamma) for (int k = 0; k < c; k++) xr[k] += gamma[k] * yr[k];
        else for (int k = 0; k < c; k++) xr[k] += yr[k];
    }
}

#define COPY_BLOCK 65536   // floats per work item

void copy_f32(const nn_ctx *ctx, float *y, const float *x, int64_t n) {
    int64_t nb = (n + COPY_BLOCK - 1) / COPY_BLOCK;
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if (nb > 1)
    for (int64_t b = 0; b < nb; b++) {
        int64_t i0 = b * COPY_BLOCK;
        memcpy(y + i0, x + i0, sizeof(float) * (size_t)(n - i0 < COPY_BLOCK ? n - i0 : COPY_BLOCK));
    }
}

void crop_topleft(const nn_ctx *ctx, const float *x, int c, int h, int w, float *y, int oh, int ow) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((int64_t)c * oh * ow >= 16384)
    for (int64_t r = 0; r < (int64_t)c * oh; r++) {
        int64_t ch = r / oh, row = r % oh;
        memcpy(y + r * ow, x + (ch * h + row) * w, sizeof(float) * (size_t)ow);
    }
}

void scale_channels_inplace(const nn_ctx *ctx, float *y, int c, int64_t hw, const float *s) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((int64_t)c * hw >= 16384)
    for (int ch = 0; ch < c; ch++) {
        float v = s[ch];
        float *yc = y + (size_t)ch * hw;
        #pragma omp simd
        for (int64_t i = 0; i < hw; i++) yc[i] *= v;
    }
}

void global_avgpool(const nn_ctx *ctx, const float *x, int c, int64_t hw, float *out) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((int64_t)c * hw >= 16384)
    for (int ch = 0; ch < c; ch++) {
        // Double accumulation: hw can be ~1e5 and PyTorch's mean is pairwise, i.e. accurate.
        double s = 0.0;
        const float *xc = x + (size_t)ch * hw;
        #pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < hw; i++) s += xc[i];
        out[ch] = (float)(s / (double)hw);
    }
}
