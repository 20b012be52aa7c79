// AvgPool2d(3, 2, 1) with count_include_pad and PyTorch's adaptive average pooling.
#include "nn.h"

// Sums each window in row-major order (dy, then dx) from 0, as PyTorch's CPU kernel does, so the
// result is bit-identical to it; interior columns are vectorised across outputs, which keeps that
// per-output order.
NN_TARGET_CLONES
static void avgpool_row(const float *xc, int h, int w, int oy, int wo, float *yr) {
    int y0 = 2 * oy - 1 < 0 ? 0 : 2 * oy - 1, y1 = 2 * oy + 1 < h - 1 ? 2 * oy + 1 : h - 1;
    // Interior outputs: all three columns 2ox-1 .. 2ox+1 inside [0, w).
    int lo = 1, hi = (w - 2) / 2;   // ox in [lo, hi]
    for (int ox = 0; ox < wo; ox++) {
        if (ox >= lo && ox <= hi) { ox = hi; continue; }
        float s = 0.0f;
        for (int iy = y0; iy <= y1; iy++)
            for (int ix = 2 * ox - 1; ix <= 2 * ox + 1; ix++)
                if (ix >= 0 && ix < w) s += xc[(size_t)iy * w + ix];
        yr[ox] = s / 9.0f;   // padding zeros count (count_include_pad)
    }
    if (hi < lo) return;
    for (int ox = lo; ox <= hi; ox++) yr[ox] = 0.0f;
    for (int iy = y0; iy <= y1; iy++) {
        const float *r = xc + (size_t)iy * w;
        #pragma omp simd
        for (int ox = lo; ox <= hi; ox++) yr[ox] = ((yr[ox] + r[2 * ox - 1]) + r[2 * ox]) + r[2 * ox + 1];
    }
    #pragma omp simd
    for (int ox = lo; ox <= hi; ox++) yr[ox] = yr[ox] / 9.0f;
}

void avgpool3x3s2_forward(const nn_ctx *ctx, const float *x, int c, int h, int w, float *y) {
    int ho = (h - 1) / 2 + 1, wo = (w - 1) / 2 + 1;
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((int64_t)c * h * w >= 16384)
    for (int64_t it = 0; it < (int64_t)c * ho; it++) {
        int ch = (int)(it / ho), oy = (int)(it % ho);
        avgpool_row(x + (size_t)ch * h * w, h, w, oy, wo, y + ((size_t)ch * ho + oy) * wo);
    }
}

// Exactly PyTorch's CPU kernel (cpu_adaptive_avg_pool): a float sum from 0 over the window in
// row-major order, then sum / kh / kw (two divisions, as it does). When the sizes divide evenly
// (windows r x r, e.g. ESPNetv2's 2x pooling back from an up-sampled map) each output row is
// vectorised across outputs with strided loads, keeping that per-output order.
NN_TARGET_CLONES
static void adaptive_channel(const float *xc, int h, int w, float *yc, int oh, int ow) {
    int exact_w = w % ow == 0, rw = w / ow;
    for (int i = 0; i < oh; i++) {
        int y0 = (int)((int64_t)i * h / oh), y1 = (int)(((int64_t)(i + 1) * h + oh - 1) / oh);
        float kh = (float)(y1 - y0);
        float *yr = yc + (size_t)i * ow;
        if (exact_w) {
            float kw = (float)rw;
            for (int j = 0; j < ow; j++) yr[j] = 0.0f;
            for (int yy = y0; yy < y1; yy++) {
                const float *xr = xc + (size_t)yy * w;
                for (int t = 0; t < rw; t++) {
                    #pragma omp simd
                    for (int j = 0; j < ow; j++) yr[j] += xr[(size_t)j * rw + t];
                }
            }
            #pragma omp simd
            for (int j = 0; j < ow; j++) yr[j] = yr[j] / kh / kw;
            continue;
        }
        for (int j = 0; j < ow; j++) {
            int x0 = (int)((int64_t)j * w / ow), x1 = (int)(((int64_t)(j + 1) * w + ow - 1) / ow);
            float s = 0.0f;
            for (int yy = y0; yy < y1; yy++)
                for (int xx = x0; xx < x1; xx++) s += xc[(size_t)yy * w + xx];
            yr[j] = s / kh / (float)(x1 - x0);
        }
    }
}

void adaptive_avgpool_forward(const nn_ctx *ctx, const float *x, int c, int h, int w, float *y, int oh, int ow) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((int64_t)c * h * w >= 16384)
    for (int ch = 0; ch < c; ch++)
        adaptive_channel(x + (size_t)ch * h * w, h, w, y + (size_t)ch * oh * ow, oh, ow);
}
