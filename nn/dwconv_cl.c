// Depthwise 3x3 conv (stride 1, pad 1) on a channels-last map, vectorised along the channels, so
// channels-last models (InternImage's DCNv3 offset/mask branch) need no NCHW round trip.
#include "nn.h"
#include "prof.h"
#include "simd.h"
#include <string.h>

typedef float v16 __attribute__((vector_size(64)));

// By pointer: a v16 passed by value changes the ABI between the AVX-512 and AVX2 clones.
static inline __attribute__((always_inline)) void fma16(v16 *a, const float *w, const float *x) {
    v16 wv, xv;
    memcpy(&wv, w, sizeof wv), memcpy(&xv, x, sizeof xv);
    *a += wv * xv;
}
static inline __attribute__((always_inline)) void add16(v16 *a, const float *b) {
    v16 bv;
    memcpy(&bv, b, sizeof bv);
    *a += bv;
}

void dwconv3x3_cl_weights(const float *w, int c, float *wt) {
    for (int ch = 0; ch < c; ch++)
        for (int t = 0; t < 9; t++) wt[(size_t)t * c + ch] = w[(size_t)ch * 9 + t];
}

// One output row. Every pixel sums its in-bounds taps in (ky, kx) order with FMAs from zero, then
// adds the bias, as conv.c's direct kernel (conv2d_forward's path for a depthwise 3x3) does on the
// NCHW map, so the two agree bit for bit (the direct kernel's FMAs on the zero padding add +0 to a
// sum that is never -0, so skipping them changes no bit). The 64-channel block keeps 4
// accumulators in registers; the 16-channel block and the scalar tail cover any c.
NN_TARGET_CLONES __attribute__((optimize("fp-contract=fast")))
static void dw_row(const float *x, int h, int w, int c, const float *wt, const float *bias, int oy,
                   float *y) {
    for (int ox = 0; ox < w; ox++) {
        const float *xp[9], *wp[9];
        int nt = 0;
        for (int ky = 0; ky < 3; ky++) {
            int iy = oy + ky - 1;
            if (iy < 0 || iy >= h) continue;
            for (int kx = 0; kx < 3; kx++) {
                int ix = ox + kx - 1;
                if (ix < 0 || ix >= w) continue;
                xp[nt] = x + ((size_t)iy * w + ix) * c;
                wp[nt] = wt + (size_t)(ky * 3 + kx) * c;
                nt++;
            }
        }
        float *yp = y + (size_t)ox * c;
        int c0 = 0;
        for (; c0 + 64 <= c; c0 += 64) {
            v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            for (int t = 0; t < nt; t++) {
                const float *xt = xp[t] + c0, *wtt = wp[t] + c0;
                fma16(&a0, wtt, xt), fma16(&a1, wtt + 16, xt + 16);
                fma16(&a2, wtt + 32, xt + 32), fma16(&a3, wtt + 48, xt + 48);
            }
            if (bias) {
                add16(&a0, bias + c0), add16(&a1, bias + c0 + 16);
                add16(&a2, bias + c0 + 32), add16(&a3, bias + c0 + 48);
            }
            memcpy(yp + c0, &a0, sizeof a0), memcpy(yp + c0 + 16, &a1, sizeof a1);
            memcpy(yp + c0 + 32, &a2, sizeof a2), memcpy(yp + c0 + 48, &a3, sizeof a3);
        }
        for (; c0 + 16 <= c; c0 += 16) {
            v16 a = {0};
            for (int t = 0; t < nt; t++) fma16(&a, wp[t] + c0, xp[t] + c0);
            if (bias) add16(&a, bias + c0);
            memcpy(yp + c0, &a, sizeof a);
        }
        for (; c0 < c; c0++) {
            float a = 0.0f;
            for (int t = 0; t < nt; t++) a += wp[t][c0] * xp[t][c0];
            yp[c0] = bias ? a + bias[c0] : a;
        }
    }
}

void dwconv3x3_cl(const nn_ctx *ctx, const float *x, int h, int w, int c, const float *wt, const float *bias,
                  float *y) {
    PROF_FLOP(ctx, 2.0 * 9 * h * w * c);
    // Rows are independent, so any split gives the same bits.
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((int64_t)h * w * c >= 16384)
    for (int oy = 0; oy < h; oy++) dw_row(x, h, w, c, wt, bias, oy, y + (size_t)oy * w * c);
}
