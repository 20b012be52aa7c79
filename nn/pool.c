// AvgPool2d(3, 2, 1) with count_include_pad and PyTorch's adaptive average pooling.
#include "nn.h"
#include "avx512.h"
#include <stdlib.h>
#include <string.h>

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

// ---- uneven windows, 16 outputs at once (AVX-512) ---------------------------------------------
// ESPNetv2's pyramid pools a 1.5x up-sampled map back (windows 2 wide, overlapping) and others by
// ratios like 6.4; the scalar loop above was 5 % of its forward. Output j of a row sums its window
// [x0_j, x0_j + wid_j) of each window row in order, from 0. 16 outputs whose windows lie within 32
// consecutive inputs take those inputs as two vector loads, each window column as a permute of
// them, and add it only in the lanes whose window is that wide (a masked add): every output adds
// the same values in the same order as the scalar loop, then divides by kh and kw the same way.

typedef struct adaptive_cols {
    int nb, wmax;     // blocks of 16 outputs; the widest window
    int *base;        // (nb) the first input column of block b
    int *off, *wid;   // (nb, 16) each lane's window start - base, and width (0 past ow)
} adaptive_cols;

// The column tables of an uneven (w -> ow) pooling, or 0 (then the scalar loop) when a block's
// windows span more than 32 inputs, when there is no memory, or without AVX-512.
static int adaptive_cols_make(int w, int ow, adaptive_cols *t) {
    memset(t, 0, sizeof *t);
    if (w % ow == 0 || !nn_cpu_avx512f()) return 0;
    t->nb = (ow + 15) / 16;
    t->base = malloc(sizeof(int) * t->nb);
    t->off = malloc(sizeof(int) * 16 * t->nb);
    t->wid = malloc(sizeof(int) * 16 * t->nb);
    int ok = t->base && t->off && t->wid;
    for (int b = 0; ok && b < t->nb; b++) {
        t->base[b] = (int)((int64_t)16 * b * w / ow);
        for (int l = 0; l < 16; l++) {
            const int j = 16 * b + l;
            int x0 = 0, x1 = 0;
            if (j < ow) x0 = (int)((int64_t)j * w / ow), x1 = (int)(((int64_t)(j + 1) * w + ow - 1) / ow);
            t->off[16 * b + l] = j < ow ? x0 - t->base[b] : 0;
            t->wid[16 * b + l] = x1 - x0;
            if (x1 - x0 > t->wmax) t->wmax = x1 - x0;
            if (j < ow && x1 - t->base[b] > 32) ok = 0;
        }
    }
    if (!ok) {
        free(t->base), free(t->off), free(t->wid);
        memset(t, 0, sizeof *t);
    }
    return ok;
}

static void adaptive_cols_free(adaptive_cols *t) { free(t->base), free(t->off), free(t->wid); }

__attribute__((target("avx512f")))
static void adaptive_channel_cols(const float *xc, int h, int w, float *yc, int oh, int ow, const adaptive_cols *t) {
    for (int i = 0; i < oh; i++) {
        const int y0 = (int)((int64_t)i * h / oh), y1 = (int)(((int64_t)(i + 1) * h + oh - 1) / oh);
        const __m512 kh = _mm512_set1_ps((float)(y1 - y0));
        for (int b = 0; b < t->nb; b++) {
            const int base = t->base[b];
            const __m512i off = _mm512_loadu_si512(t->off + 16 * b), wid = _mm512_loadu_si512(t->wid + 16 * b);
            __m512 s = _mm512_setzero_ps(), lo, hi;
            for (int yy = y0; yy < y1; yy++) {
                nn_load32(xc + (size_t)yy * w + base, w - base, &lo, &hi);
                for (int q = 0; q < t->wmax; q++) {
                    const __m512i qv = _mm512_set1_epi32(q);
                    const __m512 v = _mm512_permutex2var_ps(lo, _mm512_add_epi32(off, qv), hi);
                    s = _mm512_mask_add_ps(s, _mm512_cmpgt_epi32_mask(wid, qv), s, v);
                }
            }
            const __m512 kw = _mm512_cvtepi32_ps(wid), r = _mm512_div_ps(_mm512_div_ps(s, kh), kw);
            _mm512_mask_storeu_ps(yc + (size_t)i * ow + 16 * b, nn_lanes(ow - 16 * b), r);
        }
    }
}

void adaptive_avgpool_forward(const nn_ctx *ctx, const float *x, int c, int h, int w, float *y, int oh, int ow) {
    adaptive_cols t;
    const int cols = adaptive_cols_make(w, ow, &t);
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((int64_t)c * h * w >= 16384)
    for (int ch = 0; ch < c; ch++) {
        if (cols) adaptive_channel_cols(x + (size_t)ch * h * w, h, w, y + (size_t)ch * oh * ow, oh, ow, &t);
        else adaptive_channel(x + (size_t)ch * h * w, h, w, y + (size_t)ch * oh * ow, oh, ow);
    }
    if (cols) adaptive_cols_free(&t);
}
