// Constant-zero padding of an NCHW map (F.pad with value 0), as DINOv2's CenterPadding applies it
// to the normalised input (docs/dinov2-segformer.md A.5).
#include "nn.h"
#include <string.h>

void pad_zero(const nn_ctx *ctx, const float *x, int c, int h, int w, float *y, int top, int left, int oh,
              int ow) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((int64_t)c * oh * ow >= 65536)
    for (int ch = 0; ch < c; ch++) {
        float *yc = y + (size_t)ch * oh * ow;
        const float *xc = x + (size_t)ch * h * w;
        for (int r = 0; r < oh; r++) {
            float *yr = yc + (size_t)r * ow;
            int sr = r - top;
            if (sr < 0 || sr >= h) { memset(yr, 0, sizeof(float) * (size_t)ow); continue; }
            memset(yr, 0, sizeof(float) * (size_t)left);
            memcpy(yr + left, xc + (size_t)sr * w, sizeof(float) * (size_t)w);
            memset(yr + left + w, 0, sizeof(float) * (size_t)(ow - left - w));
        }
    }
}
