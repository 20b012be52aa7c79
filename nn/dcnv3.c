// DCNv3 core sampling. The golden tensors come from dcnv3_core_pytorch, which builds the sampling
// locations in coordinates normalised to the zero-padded map (Hp = H+2, Wp = W+2) and lets
// grid_sample (CPU, vectorised kernel) map them back. We repeat that float32 arithmetic step by
// step, so the result matches the golden l0.b0.dcn.core bit for bit instead of to ~4e-6; the
// sampling itself is the CUDA kernel's (zero outside the map, points outside contribute nothing).
// PyTorch's AVX2 kernels are built by GCC with FMA contraction: grid_sample's unnormalize
// (g+1)*size/2 - 0.5 and its corner sum are fused multiply-adds there, so they are fmaf here
// (fmaf is exactly rounded, so this is deterministic on any platform).
#include "nn.h"
#include <math.h>

void dcnv3_core(const nn_ctx *ctx, const float *value, const float *offset, const float *mask, int H, int W, int G,
                int D, float offset_scale, float *out) {
    const int C = G * D, P = 9;
    const float Hp = (float)(H + 2), Wp = (float)(W + 2);
    // grid_sample's unnormalize for align_corners=False in the vectorised kernel:
    // (g + 1) * (size / 2) - 0.5, all float.
    const float half_w = Wp / 2, half_h = Hp / 2;
    // _generate_dilation_grids: linspace(-1, 1, 3) / size, then * offset_scale.
    float gx[3], gy[3];
    for (int i = 0; i < 3; i++) {
        gx[i] = ((float)(i - 1) / Wp) * offset_scale;
        gy[i] = ((float)(i - 1) / Hp) * offset_scale;
    }
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (int h = 0; h < H; h++) {
        // _get_reference_points: linspace(1.5, ...) is exact here (step 1), then / size.
        const float ref_y = ((float)h + 1.5f) / Hp;
        for (int w = 0; w < W; w++) {
            const float ref_x = ((float)w + 1.5f) / Wp;
            const size_t pix = (size_t)h * W + w;
            const float *off = offset + pix * (size_t)G * P * 2;
            const float *msk = mask + pix * (size_t)G * P;
            float *o = out + pix * C;
            for (int c = 0; c < C; c++) o[c] = 0.0f;
            for (int g = 0; g < G; g++) {
                float *og = o + g * D;
                // torch's sum(-1) over the 9 products (vectorised inner sum, 8 lanes): the ninth
                // point first, then points 0..7.
                for (int pp = 0; pp < P; pp++) {
                    const int p = (pp + P - 1) % P;
                    const int i = p / 3, j = p % 3;   // i: x (column), j: y (row)
                    const float dx = off[(g * P + p) * 2], dy = off[(g * P + p) * 2 + 1];
                    const float m = msk[g * P + p];
                    // sampling_locations = (ref + grid*s) + offset*s / size; grid = 2*loc - 1
                    float lx = (ref_x + gx[i]) + (dx * offset_scale) / Wp;
                    float ly = (ref_y + gy[j]) + (dy * offset_scale) / Hp;
                    float sx = fmaf((2.0f * lx - 1.0f) + 1.0f, half_w, -0.5f);   // padded pixels
                    float sy = fmaf((2.0f * ly - 1.0f) + 1.0f, half_h, -0.5f);
                    // Outside (-1, size) in unpadded pixels every corner is zero: skip, as the
                    // CUDA kernel does (also keeps the int conversions below in range).
                    if (!(sy > 0.0f && sy < Hp - 1.0f && sx > 0.0f && sx < Wp - 1.0f)) continue;
                    float fx = floorf(sx), fy = floorf(sy);
                    float wx = sx - fx, ex = 1.0f - wx, ny = sy - fy, sv = 1.0f - ny;
                    float nw = sv * ex, ne = sv * wx, sw = ny * ex, se = ny * wx;
                    // padded (x, y) -> unpadded (x-1, y-1); the pad ring and beyond are zero
                    int x0 = (int)fx - 1, y0 = (int)fy - 1, x1 = x0 + 1, y1 = y0 + 1;
                    // A corner outside the map gets weight 0 on some valid pixel: the same sum
                    // as grid_sample's masked gather of 0 (up to the sign of a zero).
                    const float *any = value + pix * C + g * D;
                    const float *v00 = any, *v01 = any, *v10 = any, *v11 = any;
                    if (y0 >= 0 && x0 >= 0) v00 = value + ((size_t)y0 * W + x0) * C + g * D; else nw = 0;
                    if (y0 >= 0 && x1 < W) v01 = value + ((size_t)y0 * W + x1) * C + g * D; else ne = 0;
                    if (y1 < H && x0 >= 0) v10 = value + ((size_t)y1 * W + x0) * C + g * D; else sw = 0;
                    if (y1 < H && x1 < W) v11 = value + ((size_t)y1 * W + x1) * C + g * D; else se = 0;
                    for (int c = 0; c < D; c++) {
                        // ((nw*v + ne*v) + sw*v) + se*v, grid_sample's order, fused
                        float s = fmaf(v01[c], ne, v00[c] * nw);
                        s = fmaf(v10[c], sw, s);
                        s = fmaf(v11[c], se, s);
                        og[c] += s * m;
                    }
                }
            }
        }
    }
}
