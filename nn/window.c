// Sliding-window inference's ops (window.h). Rows are copied or summed whole; the parallel loops
// split channel rows, whose boundaries do not depend on the thread count.
#include "window.h"
#include <string.h>

void window_crop(const nn_ctx *ctx, const float *x, int c, int h, int w, int y0, int x0, float *y, int oh,
                 int ow) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((int64_t)c * oh * ow >= 16384)
    for (int64_t r = 0; r < (int64_t)c * oh; r++) {
        int64_t ch = r / oh, row = r % oh;
        memcpy(y + r * ow, x + (ch * h + y0 + row) * w + x0, sizeof(float) * (size_t)ow);
    }
}

void window_add(const nn_ctx *ctx, float *y, int c, int h, int w, int y0, int x0, const float *x, int xh,
                int xw) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((int64_t)c * xh * xw >= 16384)
    for (int64_t r = 0; r < (int64_t)c * xh; r++) {
        int64_t ch = r / xh, row = r % xh;
        float *dst = y + (ch * h + y0 + row) * w + x0;
        const float *src = x + r * xw;
        #pragma omp simd
        for (int i = 0; i < xw; i++) dst[i] += src[i];
    }
}

void window_count(float *count, int h, int w, int y0, int x0, int wh, int ww) {
    (void)h;
    for (int r = 0; r < wh; r++) {
        float *dst = count + (int64_t)(y0 + r) * w + x0;
        for (int i = 0; i < ww; i++) dst[i] += 1.0f;
    }
}

void divide_by_count(const nn_ctx *ctx, float *y, int c, int64_t hw, const float *count) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((int64_t)c * hw >= 16384)
    for (int ch = 0; ch < c; ch++) {
        float *yc = y + (int64_t)ch * hw;
        #pragma omp simd
        for (int64_t i = 0; i < hw; i++) yc[i] /= count[i];
    }
}
