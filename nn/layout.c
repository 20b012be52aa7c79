// Layout changes and small channel-wise helpers. Transposes go in square blocks so both sides stay
// in cache.
#include "nn.h"
#include "avx512.h"
#include <string.h>

#define TB 32   // transpose block edge

#define TR_HW __attribute__((target("avx512f")))

// The 16 x 16 block at src (rows ls apart) transposed into dst (rows ld apart): 16 loads, four
// rounds of shuffles, 16 stores.
TR_HW static void transpose16(const float *src, int64_t ls, float *dst, int64_t ld) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * ls);
    for (int i = 0; i < 16; i += 2) {   // pairs of rows: 32-bit interleave
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4)     // quads: 64-bit interleave
        for (int k = 0; k < 2; k++) {
            r[i + k] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + k]), _mm512_castps_pd(t[i + k + 2])));
            r[i + k + 2] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + k]), _mm512_castps_pd(t[i + k + 2])));
        }
    for (int i = 0; i < 16; i += 8)     // 128-bit lanes, pairs of quads
        for (int k = 0; k < 4; k++) {
            t[i + k] = _mm512_shuffle_f32x4(r[i + k], r[i + k + 4], 0x88);
            t[i + k + 4] = _mm512_shuffle_f32x4(r[i + k], r[i + k + 4], 0xdd);
        }
    for (int k = 0; k < 8; k++) {       // 256-bit halves of the two octets
        r[k] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0x88);
        r[k + 8] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0xdd);
    }
    // r[k] now holds column col[k] of the block (the 64-bit round swaps the middle two of each
    // quad); the stores put each where it belongs
    static const int col[16] = {0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15};
    for (int k = 0; k < 16; k++) _mm512_storeu_ps(dst + col[k] * ld, r[k]);
}

// Rows [r0, r1) x columns [c0, c1) of src (rows, cols) into dst (cols, rows): 16 x 16 blocks by
// AVX-512 shuffles where the CPU has it, the rest element by element. A data move: any path gives
// the same bytes.
static void transpose_block(const float *src, int64_t rows, int64_t cols, float *dst, int64_t r0, int64_t r1,
                            int64_t c0, int64_t c1, int avx512) {
    int64_t rf = r0, cf = c0;
    if (avx512) {
        rf = r0 + (r1 - r0) / 16 * 16, cf = c0 + (c1 - c0) / 16 * 16;
        for (int64_t r = r0; r < rf; r += 16)
            for (int64_t cc = c0; cc < cf; cc += 16) transpose16(src + r * cols + cc, cols, dst + cc * rows + r, rows);
    }
    for (int64_t r = r0; r < r1; r++)   // what the blocks left: columns from cf, and rows from rf
        for (int64_t cc = r < rf ? cf : c0; cc < c1; cc++) dst[cc * rows + r] = src[r * cols + cc];
}

// dst (cols, rows) = src (rows, cols)^T.
static void transpose(const nn_ctx *ctx, const float *src, int64_t rows, int64_t cols, float *dst) {
    int64_t rb = (rows + TB - 1) / TB, cb = (cols + TB - 1) / TB;
    const int avx512 = nn_cpu_avx512f();
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if (rows * cols >= 16384)
    for (int64_t b = 0; b < rb * cb; b++) {
        int64_t r0 = (b / cb) * TB, c0 = (b % cb) * TB;
        int64_t r1 = r0 + TB < rows ? r0 + TB : rows, c1 = c0 + TB < cols ? c0 + TB : cols;
        transpose_block(src, rows, cols, dst, r0, r1, c0, c1, avx512);
    }
}

void nchw_to_nhwc(const nn_ctx *ctx, const float *x, int c, int h, int w, float *y) {
    transpose(ctx, x, c, (int64_t)h * w, y);
}

void nhwc_to_nchw(const nn_ctx *ctx, const float *x, int h, int w, int c, float *y) {
    transpose(ctx, x, (int64_t)h * w, c, y);
}

void channel_shuffle(const nn_ctx *ctx, const float *x, int c, int64_t hw, int groups, float *y) {
    int per = c / groups;
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((int64_t)c * hw >= 16384)
    for (int oc = 0; oc < c; oc++) {
        int j = oc / groups, i = oc % groups;   // y[j*groups + i] = x[i*per + j]
        const float *src = x + (size_t)(i * per + j) * hw;
        float *dst = y + (size_t)oc * hw;
        for (int64_t p = 0; p < hw; p++) dst[p] = src[p];
    }
}

void add_inplace(const nn_ctx *ctx, float *y, const float *x, int64_t n) {
    #pragma omp parallel for simd schedule(static) num_threads(ctx->threads) if (n >= 16384)
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

void add_prelu_inplace(const nn_ctx *ctx, float *y, const float *x, int c, int64_t hw, const float *slope) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((int64_t)c * hw >= 16384)
    for (int ch = 0; ch < c; ch++) {
        float *yc = y + (size_t)ch * hw;
        const float *xc = x + (size_t)ch * hw;
        #pragma omp simd
        for (int64_t i = 0; i < hw; i++) yc[i] += xc[i];
        prelu_span(yc, hw, slope[ch]);
    }
}

void add_scaled_cl(const nn_ctx *ctx, float *x, const float *y, const float *gamma, int64_t n, int c) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if (n * c >= 16384)
    for (int64_t i = 0; i < n; i++) {
        float *xr = x + i * c;
        const float *yr = y + i * c;
        if (gamma) for (int k = 0; k < c; k++) xr[k] += gamma[k] * yr[k];
        else for (int k = 0; k < c; k++) xr[k] += yr[k];
    }
}

#define COPY_BLOCK 65536   // floats per work item

void copy_f32(const nn_ctx *ctx, float *y, const float *x, int64_t n) {
    int64_t nb = (n + COPY_BLOCK - 1) / COPY_BLOCK;
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if (nb > 1)
    for (int64_t b = 0; b < nb; b++) {
        int64_t i0 = b * COPY_BLOCK;
        memcpy(y + i0, x + i0, sizeof(float) * (size_t)(n - i0 < COPY_BLOCK ? n - i0 : COPY_BLOCK));
    }
}

void crop_topleft(const nn_ctx *ctx, const float *x, int c, int h, int w, float *y, int oh, int ow) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((int64_t)c * oh * ow >= 16384)
    for (int64_t r = 0; r < (int64_t)c * oh; r++) {
        int64_t ch = r / oh, row = r % oh;
        memcpy(y + r * ow, x + (ch * h + row) * w, sizeof(float) * (size_t)ow);
    }
}

void scale_channels_inplace(const nn_ctx *ctx, float *y, int c, int64_t hw, const float *s) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((int64_t)c * hw >= 16384)
    for (int ch = 0; ch < c; ch++) {
        float v = s[ch];
        float *yc = y + (size_t)ch * hw;
        #pragma omp simd
        for (int64_t i = 0; i < hw; i++) yc[i] *= v;
    }
}

void global_avgpool(const nn_ctx *ctx, const float *x, int c, int64_t hw, float *out) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((int64_t)c * hw >= 16384)
    for (int ch = 0; ch < c; ch++) {
        // Double accumulation: hw can be ~1e5 and PyTorch's mean is pairwise, i.e. accurate.
        double s = 0.0;
        const float *xc = x + (size_t)ch * hw;
        #pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < hw; i++) s += xc[i];
        out[ch] = (float)(s / (double)hw);
    }
}
