// DCNv3 core sampling. The golden tensors come from dcnv3_core_pytorch, which builds the sampling
// locations in coordinates normalised to the zero-padded map (Hp = H+2, Wp = W+2) and lets
// grid_sample (CPU, vectorised kernel) map them back. We repeat that float32 arithmetic step by
// step, so the result matches the golden l0.b0.dcn.core bit for bit instead of to ~4e-6; the
// sampling itself is the CUDA kernel's (zero outside the map, points outside contribute nothing).
// PyTorch's AVX2 kernels are built by GCC with FMA contraction: grid_sample's unnormalize
// (g+1)*size/2 - 0.5 and its corner sum are fused multiply-adds there, so they are fmaf here
// (fmaf is exactly rounded, so this is deterministic on any platform).
#include "nn.h"
#include "prof.h"
#include <math.h>

#include "simd.h"
#include <stdint.h>
#include <string.h>

// Points per batch: whole groups of 9, at most DCN_BATCH.
#define DCN_BATCH 144

// The sampling of a batch of points k = 0..n-1 of one pixel (point k: group g0 + k / 9, point k % 9),
// vectorised over the points with the float operations of the per-point formula, in its order:
// the four corners (float offsets into value; an outside corner points at `any` with weight 0),
// their weights and the mask; ok[k] = 0 for a point outside (-1, size), which contributes nothing.
typedef struct dcn_points {
    int64_t i00[DCN_BATCH], i01[DCN_BATCH], i10[DCN_BATCH], i11[DCN_BATCH];
    float nw[DCN_BATCH], ne[DCN_BATCH], sw[DCN_BATCH], se[DCN_BATCH], m[DCN_BATCH];
    int32_t ok[DCN_BATCH];
} dcn_points;

typedef struct dcn_geom {
    int H, W, C, D;
    float Hp, Wp, half_w, half_h, offset_scale;
    float gx[DCN_BATCH], gy[DCN_BATCH];   // the dilation grid of point k (columns i = p / 3, rows j = p % 3)
} dcn_geom;

NN_TARGET_CLONES
static void dcn_locate(const dcn_geom *q, const float *off, const float *msk, float ref_x, float ref_y,
                       int64_t any, int g0, int n, dcn_points *P) {
    const int H = q->H, W = q->W;
    const int64_t C = q->C, D = q->D;
    const float Hp = q->Hp, Wp = q->Wp, half_w = q->half_w, half_h = q->half_h, os = q->offset_scale;
    #pragma omp simd
    for (int k = 0; k < n; k++) {
        const float dx = off[2 * k], dy = off[2 * k + 1];
        // sampling_locations = (ref + grid*s) + offset*s / size; grid = 2*loc - 1
        float lx = (ref_x + q->gx[k]) + (dx * os) / Wp;
        float ly = (ref_y + q->gy[k]) + (dy * os) / Hp;
        float sx = fmaf((2.0f * lx - 1.0f) + 1.0f, half_w, -0.5f);   // padded pixels
        float sy = fmaf((2.0f * ly - 1.0f) + 1.0f, half_h, -0.5f);
        // Outside (-1, size) in unpadded pixels every corner is zero: skip, as the CUDA kernel
        // does; such a point is moved to (1, 1) so the int conversions below stay in range.
        int ok = (sy > 0.0f) & (sy < Hp - 1.0f) & (sx > 0.0f) & (sx < Wp - 1.0f);   // & : no branches
        // (a bitwise select: with `ok ? sx : 1.0f` GCC keeps a branch before the conversions)
        int32_t bx, by, keep = -ok;
        memcpy(&bx, &sx, 4);
        memcpy(&by, &sy, 4);
        bx = (bx & keep) | (0x3f800000 & ~keep);
        by = (by & keep) | (0x3f800000 & ~keep);
        memcpy(&sx, &bx, 4);
        memcpy(&sy, &by, 4);
        // sx, sy > 0 here, so floor is the truncation (which vectorises; floorf does not)
        int ix = (int)sx, iy = (int)sy;
        float fx = (float)ix, fy = (float)iy;
        float wx = sx - fx, ex = 1.0f - wx, ny = sy - fy, sv = 1.0f - ny;
        float nw = sv * ex, ne = sv * wx, sw = ny * ex, se = ny * wx;
        // padded (x, y) -> unpadded (x-1, y-1); the pad ring and beyond are zero
        int x0 = ix - 1, y0 = iy - 1, x1 = x0 + 1, y1 = y0 + 1;
        // A corner outside the map gets weight 0 on some valid pixel: the same sum as
        // grid_sample's masked gather of 0 (up to the sign of a zero).
        int64_t gd = (int64_t)(g0 + k / 9) * D, a = any + gd;
        int c00 = (y0 >= 0) & (x0 >= 0), c01 = (y0 >= 0) & (x1 < W), c10 = (y1 < H) & (x0 >= 0), c11 = (y1 < H) & (x1 < W);
        // selects as arithmetic (a corner in or out: 1 or 0), so that GCC vectorises the loop
        int64_t r0 = (int64_t)y0 * W, r1 = r0 + W;
        P->i00[k] = a + c00 * ((r0 + x0) * C + gd - a);
        P->i01[k] = a + c01 * ((r0 + x1) * C + gd - a);
        P->i10[k] = a + c10 * ((r1 + x0) * C + gd - a);
        P->i11[k] = a + c11 * ((r1 + x1) * C + gd - a);
        P->nw[k] = (float)c00 * nw;   // nw >= 0: 0 * nw is +0, the 0 it replaces
        P->ne[k] = (float)c01 * ne;
        P->sw[k] = (float)c10 * sw;
        P->se[k] = (float)c11 * se;
        P->m[k] = msk[k];
        P->ok[k] = ok;
    }
}

// The batch's groups into o (channels-last, the groups' D channels each): per group, torch's
// sum(-1) over the 9 products (vectorised inner sum, 8 lanes): the ninth point first, then 0..7.
NN_TARGET_CLONES
static void dcn_gather(const dcn_points *P, const float *value, int ng, int D, float *o) {
    for (int g = 0; g < ng; g++) {
        float *og = o + (size_t)g * D;
        for (int pp = 0; pp < 9; pp++) {
            const int k = g * 9 + (pp + 8) % 9;
            if (!P->ok[k]) continue;
            const float *v00 = value + P->i00[k], *v01 = value + P->i01[k];
            const float *v10 = value + P->i10[k], *v11 = value + P->i11[k];
            const float nw = P->nw[k], ne = P->ne[k], sw = P->sw[k], se = P->se[k], m = P->m[k];
            #pragma omp simd
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

// Per pixel, batches of up to DCN_BATCH / 9 groups: the points located together, then gathered.
void dcnv3_core(const nn_ctx *ctx, const float *value, const float *offset, const float *mask, int H, int W, int G,
                int D, float offset_scale, float *out) {
    const int C = G * D, P = 9, gb = DCN_BATCH / P;
    PROF_FLOP(ctx, 10.0 * H * W * C * P);   // per point and channel: 4 bilinear corners and the mask
    dcn_geom q = {H, W, C, D, (float)(H + 2), (float)(W + 2), 0, 0, offset_scale, {0}, {0}};
    // grid_sample's unnormalize for align_corners=False in the vectorised kernel:
    // (g + 1) * (size / 2) - 0.5, all float.
    q.half_w = q.Wp / 2;
    q.half_h = q.Hp / 2;
    // _generate_dilation_grids: linspace(-1, 1, 3) / size, then * offset_scale.
    for (int k = 0; k < DCN_BATCH; k++) {
        int p = k % P;
        q.gx[k] = ((float)(p / 3 - 1) / q.Wp) * offset_scale;
        q.gy[k] = ((float)(p % 3 - 1) / q.Hp) * offset_scale;
    }
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (int h = 0; h < H; h++) {
        dcn_points pts;
        // _get_reference_points: linspace(1.5, ...) is exact here (step 1), then / size.
        const float ref_y = ((float)h + 1.5f) / q.Hp;
        for (int w = 0; w < W; w++) {
            const float ref_x = ((float)w + 1.5f) / q.Wp;
            const size_t pix = (size_t)h * W + w;
            float *o = out + pix * C;
            for (int c = 0; c < C; c++) o[c] = 0.0f;
            for (int g0 = 0; g0 < G; g0 += gb) {
                int ng = G - g0 < gb ? G - g0 : gb;
                dcn_locate(&q, offset + (pix * G + g0) * P * 2, mask + (pix * G + g0) * P, ref_x, ref_y,
                           (int64_t)pix * C, g0, ng * P, &pts);
                dcn_gather(&pts, value, ng, D, o + (size_t)g0 * D);
            }
        }
    }
}
