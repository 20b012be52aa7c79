// Horizontal flip folded into an accumulation, for test-time augmentation (docs/dinov2-segformer.md
// A.6): the prediction of a flipped image is flipped back while it is added.
#include "nn.h"

void add_flipped_w_cl(const nn_ctx *ctx, float *acc, const float *x, int h, int w, int c, int flip) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((int64_t)h * w * c >= 65536)
    for (int y = 0; y < h; y++)
        for (int q = 0; q < w; q++) {
            float *a = acc + ((size_t)y * w + q) * c;
            const float *s = x + ((size_t)y * w + (flip ? w - 1 - q : q)) * c;
            for (int k = 0; k < c; k++) a[k] += s[k];
        }
}
