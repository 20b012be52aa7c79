// Bicubic resize of a channels-last map with PyTorch's F.interpolate(mode='bicubic',
// align_corners=False, antialias=False) semantics when a scale factor is given: the source
// coordinate uses 1/scale_factor, not in/out (DINOv2's position embeddings depend on it:
// docs/dinov2-segformer.md A.3).
#include "nn.h"
#include <math.h>

#define CUBIC_A -0.75f

// Cubic-convolution weights of the taps i0-1 .. i0+2 for the fraction t (PyTorch's
// get_cubic_upsample_coefficients).
static void cubic_weights(float t, float w[4]) {
    const float A = CUBIC_A;
    float x1 = t + 1.0f, x2 = t, y1 = 1.0f - t, y2 = 2.0f - t;
    w[0] = ((A * x1 - 5.0f * A) * x1 + 8.0f * A) * x1 - 4.0f * A;
    w[1] = ((A + 2.0f) * x2 - (A + 3.0f)) * x2 * x2 + 1.0f;
    w[2] = ((A + 2.0f) * y1 - (A + 3.0f)) * y1 * y1 + 1.0f;
    w[3] = ((A * y2 - 5.0f * A) * y2 + 8.0f * A) * y2 - 4.0f * A;
}

// Taps and weights of output index o: src = (o + 0.5)/scale - 0.5 in float (no clamp of src),
// the four taps clamped to [0, in-1].
static void cubic_taps(int o, int in, double scale, int idx[4], float w[4]) {
    float rs = (float)(1.0 / scale);
    float src = rs * ((float)o + 0.5f) - 0.5f;
    float f = floorf(src);
    int i0 = (int)f;
    cubic_weights(src - f, w);
    for (int k = 0; k < 4; k++) {
        int i = i0 - 1 + k;
        idx[k] = i < 0 ? 0 : i >= in ? in - 1 : i;
    }
}

void resize_bicubic_cl(const nn_ctx *ctx, const float *x, int h, int w, int c, float *y, int oh, int ow,
                       double scale_h, double scale_w) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((int64_t)oh * ow * c >= 65536)
    for (int oy = 0; oy < oh; oy++) {
        int iy[4], ix[4];
        float wy[4], wx[4];
        cubic_taps(oy, h, scale_h, iy, wy);
        for (int ox = 0; ox < ow; ox++) {
            cubic_taps(ox, w, scale_w, ix, wx);
            float *yo = y + ((size_t)oy * ow + ox) * c;
            for (int ch = 0; ch < c; ch++) yo[ch] = 0.0f;
            for (int a = 0; a < 4; a++) {
                // y += wy[a] * (sum_b wx[b] x[iy[a], ix[b], :]): rows first, as PyTorch sums
                const float *r0 = x + ((size_t)iy[a] * w + ix[0]) * c, *r1 = x + ((size_t)iy[a] * w + ix[1]) * c;
                const float *r2 = x + ((size_t)iy[a] * w + ix[2]) * c, *r3 = x + ((size_t)iy[a] * w + ix[3]) * c;
                #pragma omp simd
                for (int ch = 0; ch < c; ch++)
                    yo[ch] += wy[a] * (wx[0] * r0[ch] + wx[1] * r1[ch] + wx[2] * r2[ch] + wx[3] * r3[ch]);
            }
        }
    }
}
