// Depthwise 3x3 conv (stride 1 or 2, any padding and dilation) on NCHW maps, straight from the
// input: ESPNetv2's EESP branches and pyramid stages, 40 % of its forward on conv.c's direct
// kernel, where packing each one-channel row cost as much as its nine FMAs per output.
//
// The taps of a block of 16 outputs are masked loads, zero where the tap falls outside the row, so
// every output sums the same products (zeros included) in the same order (ky, then kx) from zero,
// with the bias after and then the PReLU, as the direct kernel does on its zero-padded row pack:
// the same bits (tests/test_ops.c). Rows of the kernel that fall into the vertical padding are
// skipped by both. A stride-2 tap loads 32 inputs and keeps the even ones. Stride 1 computes three
// output rows d apart at once, which share their input rows (dw_rows_s1): 1.5-1.7x the one-row
// kernel in bench_ops (1 thread, `v2 dw 3x3 d3 32` 0.19 -> 0.12 ms).
#include "nn.h"
#include "avx512.h"
#include <omp.h>

// fp-contract=fast: acc += w * x fuses exactly where conv.c's direct kernel fuses its identical
// statement (from -O2; at -O1, in the sanitizer build, neither does), so the two stay bit-equal
// in every build.
#define HW __attribute__((target("avx512f"), optimize("fp-contract=fast")))
#define DW_BLOCKS 4   // 16-output blocks per step: four independent FMA chains

int dwconv3x3_nchw_available(void) { return nn_cpu_avx512f(); }

// Bit l set where input column p0 + l is inside the row [0, w).
static inline __mmask16 in_row(int64_t p0, int w) {
    int64_t lo = p0 < 0 ? -p0 : 0, hi = w - p0 < 16 ? w - p0 : 16;
    if (hi <= lo) return 0;
    return (__mmask16)((hi >= 16 ? 0xffffu : (1u << hi) - 1) & ~((1u << lo) - 1));
}

// The 16 * DW_BLOCKS outputs from ox0 of output row oy. s and full (every tap inside the row) are
// constants at each call (dw_row_s), so acc[] lives in registers and an inner block loads without
// masks. A tap's masks depend on its column only: computed once per block, for every kernel row.
HW static inline __attribute__((always_inline)) void dw_block(const int s, const int full, const float *xc, int w,
                                                              const float *wk, int ky0, int ky1, int d, int pad,
                                                              int iy0, int ox0, __m512 acc[DW_BLOCKS]) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    __mmask16 m[3][DW_BLOCKS][2];
    _Pragma("GCC unroll 3") for (int kx = 0; kx < 3; kx++)
        _Pragma("GCC unroll 4") for (int j = 0; j < DW_BLOCKS; j++) {
            int64_t p = (int64_t)(ox0 + 16 * j) * s + kx * d - pad;
            m[kx][j][0] = full ? (__mmask16)0xffff : in_row(p, w);
            m[kx][j][1] = full ? (__mmask16)0xffff : s == 2 ? in_row(p + 16, w) : 0;
        }
    _Pragma("GCC unroll 4") for (int j = 0; j < DW_BLOCKS; j++) acc[j] = _mm512_setzero_ps();
    for (int ky = ky0; ky < ky1; ky++) {
        const float *row = xc + (size_t)(iy0 + ky * d) * w;
        _Pragma("GCC unroll 3") for (int kx = 0; kx < 3; kx++) {
            __m512 wv = _mm512_set1_ps(wk[ky * 3 + kx]);
            _Pragma("GCC unroll 4") for (int j = 0; j < DW_BLOCKS; j++) {
                const float *q = row + (int64_t)(ox0 + 16 * j) * s + kx * d - pad;
                __m512 v = _mm512_maskz_loadu_ps(m[kx][j][0], q);
                if (s == 2) v = _mm512_permutex2var_ps(v, even, _mm512_maskz_loadu_ps(m[kx][j][1], q + 16));
                acc[j] += wv * v;   // fused as in the direct kernel (fp-contract, see HW)
            }
        }
    }
}

// The kernel rows [*ky0, *ky1) of input row iy0 + ky*d that fall inside the image (h rows).
static inline void dw_kernel_rows(int iy0, int d, int h, int *ky0, int *ky1) {
    int k0 = 0, k1 = 3;
    while (k0 < 3 && iy0 + k0 * d < 0) k0++;
    while (k1 > k0 && iy0 + (k1 - 1) * d >= h) k1--;
    *ky0 = k0, *ky1 = k1;
}

// The bias (has_b) after the sum, as PyTorch adds it, then the PReLU of slope a (has_a): v >= 0 ?
// v : a*v (NaN: a*NaN); stored to the first n (> 0) floats at q.
HW static inline __attribute__((always_inline)) void dw_store(__m512 v, int has_b, float b, int has_a, float a,
                                                              float *q, int n) {
    if (has_b) v = _mm512_add_ps(v, _mm512_set1_ps(b));
    if (has_a) {
        __mmask16 pos = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GE_OQ);
        v = _mm512_mask_blend_ps(pos, _mm512_mul_ps(_mm512_set1_ps(a), v), v);
    }
    _mm512_mask_storeu_ps(q, nn_lanes(n), v);
}

// Output row oy of one channel: wk (3, 3), b the bias (has_b), a the PReLU slope (has_a).
HW static inline __attribute__((always_inline)) void dw_row_s(const int s, const float *xc, int h, int w,
                                                              const float *wk, int has_b, float b, int has_a, float a,
                                                              int pad, int d, int oy, int wo, float *yr) {
    int ky0, ky1;
    dw_kernel_rows(oy * s - pad, d, h, &ky0, &ky1);
    for (int ox0 = 0; ox0 < wo; ox0 += 16 * DW_BLOCKS) {
        __m512 acc[DW_BLOCKS];
        int64_t first = (int64_t)ox0 * s - pad, last = (int64_t)(ox0 + 16 * DW_BLOCKS - 1) * s + 2 * d - pad + (s - 1);
        if (first >= 0 && last < w) dw_block(s, 1, xc, w, wk, ky0, ky1, d, pad, oy * s - pad, ox0, acc);
        else dw_block(s, 0, xc, w, wk, ky0, ky1, d, pad, oy * s - pad, ox0, acc);
        _Pragma("GCC unroll 4") for (int j = 0; j < DW_BLOCKS; j++) {
            int n = wo - ox0 - 16 * j;
            if (n <= 0) break;
            dw_store(acc[j], has_b, b, has_a, a, yr + ox0 + 16 * j, n);
        }
    }
}

// Output row oy of one channel, stride 2 (stride 1: dw_rows_1, below).
HW static void dw_row2(const float *xc, int h, int w, const float *wk, int has_b, float b, int has_a, float a,
                       int pad, int d, int oy, int wo, float *yr) {
    dw_row_s(2, xc, h, w, wk, has_b, b, has_a, a, pad, d, oy, wo, yr);
}

// ---- stride 1: R output rows at once ---------------------------------------------------------
// Output rows oy, oy + d, oy + 2d (R <= 3) of a stride-1 conv read input rows oy - pad + u*d for
// u = 0 .. R + 1: each is loaded once per block and feeds every output row whose kernel covers it
// (15 loads for 27 FMAs instead of 27). Each output still sums its taps in the order ky, then kx,
// from zero, and skips the kernel rows in the vertical padding: the bits of dw_block.
typedef struct dw_rows { int ky0[3], ky1[3]; } dw_rows;

HW static inline __attribute__((always_inline)) void dw_block_rows(const int R, const int full, const float *xc, int w,
                                                                   const __m512 *wv, const dw_rows *kr, int d, int pad,
                                                                   int iy0, int ox0, __m512 acc[3][DW_BLOCKS]) {
    __mmask16 m[3][DW_BLOCKS];
    _Pragma("GCC unroll 3") for (int kx = 0; kx < 3; kx++)
        _Pragma("GCC unroll 4") for (int j = 0; j < DW_BLOCKS; j++)
            m[kx][j] = full ? (__mmask16)0xffff : in_row((int64_t)ox0 + 16 * j + kx * d - pad, w);
    _Pragma("GCC unroll 3") for (int t = 0; t < R; t++)
        _Pragma("GCC unroll 4") for (int j = 0; j < DW_BLOCKS; j++) acc[t][j] = _mm512_setzero_ps();
    _Pragma("GCC unroll 5") for (int u = 0; u < R + 2; u++) {
        int use[3], any = 0;
        _Pragma("GCC unroll 3") for (int t = 0; t < R; t++) {
            use[t] = u - t >= 0 && u - t < 3 && u - t >= kr->ky0[t] && u - t < kr->ky1[t];
            any |= use[t];
        }
        if (!any) continue;   // a row in the vertical padding: never loaded
        const float *row = xc + (int64_t)(iy0 + u * d) * w + ox0 - pad;
        _Pragma("GCC unroll 3") for (int kx = 0; kx < 3; kx++)
            _Pragma("GCC unroll 4") for (int j = 0; j < DW_BLOCKS; j++) {
                __m512 v = _mm512_maskz_loadu_ps(m[kx][j], row + 16 * j + kx * d);
                _Pragma("GCC unroll 3") for (int t = 0; t < R; t++)
                    if (u - t >= 0 && u - t < 3 && use[t])   // (the first two: constants once unrolled)
                        acc[t][j] += wv[(u - t) * 3 + kx] * v;   // fused as in dw_block (HW)
            }
    }
}

// Output rows oy + t*d (t < R) of one channel, stride 1.
HW static inline __attribute__((always_inline)) void dw_rows_s1(const int R, const float *xc, int h, int w,
                                                                const float *wk, int has_b, float b, int has_a,
                                                                float a, int pad, int d, int oy, int wo, float *yr) {
    __m512 wv[9];
    for (int i = 0; i < 9; i++) wv[i] = _mm512_set1_ps(wk[i]);
    dw_rows kr;
    for (int t = 0; t < R; t++) dw_kernel_rows(oy + t * d - pad, d, h, &kr.ky0[t], &kr.ky1[t]);
    for (int ox0 = 0; ox0 < wo; ox0 += 16 * DW_BLOCKS) {
        __m512 acc[3][DW_BLOCKS];
        int64_t first = (int64_t)ox0 - pad, last = (int64_t)ox0 + 16 * DW_BLOCKS - 1 + 2 * d - pad;
        if (first >= 0 && last < w) dw_block_rows(R, 1, xc, w, wv, &kr, d, pad, oy - pad, ox0, acc);
        else dw_block_rows(R, 0, xc, w, wv, &kr, d, pad, oy - pad, ox0, acc);
        _Pragma("GCC unroll 3") for (int t = 0; t < R; t++)
            _Pragma("GCC unroll 4") for (int j = 0; j < DW_BLOCKS; j++) {
                int n = wo - ox0 - 16 * j;
                if (n <= 0) break;
                dw_store(acc[t][j], has_b, b, has_a, a, yr + (size_t)t * d * wo + ox0 + 16 * j, n);
            }
    }
}

HW static void dw_rows_1(int R, const float *xc, int h, int w, const float *wk, int has_b, float b, int has_a, float a,
                         int pad, int d, int oy, int wo, float *yr) {
    if (R == 3) dw_rows_s1(3, xc, h, w, wk, has_b, b, has_a, a, pad, d, oy, wo, yr);
    else if (R == 2) dw_rows_s1(2, xc, h, w, wk, has_b, b, has_a, a, pad, d, oy, wo, yr);
    else dw_rows_s1(1, xc, h, w, wk, has_b, b, has_a, a, pad, d, oy, wo, yr);
}

// Rows oy0..oy1-1 of channel ch of one conv. Stride 1 takes them in groups of rows d apart: each
// stretch of 3d rows is d groups {r, r + d, r + 2d}; a shorter tail, groups of what is left.
static void dw_band(const conv2d *c, const float *x, int h, int w, const float *slope, float *y, int ho, int wo,
                    int ch, int oy0, int oy1) {
    const float *xc = x + (size_t)ch * h * w, *wk = c->weight + (size_t)ch * 9;
    const int has_b = c->bias != NULL, has_a = slope != NULL, d = c->dilation;
    const float b = has_b ? c->bias[ch] : 0.0f, a = has_a ? slope[ch] : 0.0f;
    float *yc = y + (size_t)ch * ho * wo;
    if (c->stride == 1) {
        for (int t0 = oy0; t0 < oy1; t0 += 3 * d)
            for (int r = 0; r < d && t0 + r < oy1; r++) {
                int oy = t0 + r, R = oy + 2 * d < oy1 ? 3 : oy + d < oy1 ? 2 : 1;
                dw_rows_1(R, xc, h, w, wk, has_b, b, has_a, a, c->pad, d, oy, wo, yc + (size_t)oy * wo);
            }
        return;
    }
    for (int oy = oy0; oy < oy1; oy++)
        dw_row2(xc, h, w, wk, has_b, b, has_a, a, c->pad, d, oy, wo, yc + (size_t)oy * wo);
}

// Output rows per work item: about 16K outputs; shape-only.
static int dw_rows_per_item(int ho, int wo) {
    int band = 16384 / (wo > 0 ? wo : 1);
    if (band < 1) band = 1;
    return band > ho ? ho : band;
}

// Work items: (conv, channel, band of output rows); shape-only.
void dwconv3x3_nchw_many(const nn_ctx *ctx, const conv2d *const *c, int n, const float *const *slope, const float *x,
                         int h, int w, float *const *y, int ho, int wo) {
    const int band = dw_rows_per_item(ho, wo);
    int64_t nb = (ho + band - 1) / band, per[DW_MANY_MAX + 1] = {0};
    for (int k = 0; k < n; k++) per[k + 1] = per[k] + (int64_t)c[k]->c_out * nb;
    #pragma omp parallel for schedule(dynamic, 1) num_threads(ctx->threads)
    for (int64_t it = 0; it < per[n]; it++) {
        int k = 0;
        while (it >= per[k + 1]) k++;
        const int64_t r = it - per[k];
        int ch = (int)(r / nb), oy0 = (int)(r % nb) * band, oy1 = oy0 + band < ho ? oy0 + band : ho;
        dw_band(c[k], x, h, w, slope ? slope[k] : NULL, y[k], ho, wo, ch, oy0, oy1);
    }
}

void dwconv3x3_nchw(const nn_ctx *ctx, const conv2d *c, const float *x, int h, int w, const float *slope,
                    float *y, int ho, int wo) {
    dwconv3x3_nchw_many(ctx, &c, 1, &slope, x, h, w, &y, ho, wo);
}
