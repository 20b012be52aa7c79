// The gate of a SwiGLU feed-forward layer (DINOv2 ViT-g: docs/dinov2-segformer.md A.2):
// h = SiLU(x1) * x2, SiLU(t) = t * sigmoid(t) = t / (1 + exp(-t)).
#include "nn.h"
#include <math.h>

void silu_mul_inplace(const nn_ctx *ctx, float *x1, const float *x2, int64_t n) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if (n >= 65536)
    for (int64_t i = 0; i < n; i++) {
        float t = x1[i];
        x1[i] = t / (1.0f + expf(-t)) * x2[i];
    }
}
