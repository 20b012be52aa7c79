// Conv2d and ConvTranspose2d(2, 2). Conv paths, chosen by shape (use_direct, conv_forward):
//   direct kernel   k <= 7 with <= 32 output channels per group (ESPNet/ESPNetv2's dilated and
//                   grouped 3x3s, strided ones too, depthwise): register-blocked, no GEMM;
//   1x1 GEMM        1x1 stride-1 convs: one sgemm per (group, pixel tile) on x in place;
//   im2col GEMM     the rest (UperNet's 512-channel 3x3s): im2col of a pixel tile, then sgemm,
//                   with the inner dimension chunked for wide convs;
//   depthwise loop  k > 7 depthwise, or the direct kernel switched off (ctx->conv_im2col);
//   Winograd F(4,3) wide 3x3 stride-1 convs (UperNet's), nn/winograd.c (use_winograd).
// Under a bf16 context (ctx->precision) the two GEMM paths run the bf16 GEMM (gemm_bf16.h) on the
// weight packed once as bf16 rows, and Winograd its 36 GEMMs; the direct kernel and the depthwise
// loop stay fp32
// (see conv_forward).
// Every path can fuse a PReLU into its epilogue (conv2d_forward_prelu).
//
// Bit-identical results for any thread count: the work is cut into items (group x pixel tile, or
// group x band of output rows) whose bounds depend only on the shapes; each output is computed
// by one item, in an order fixed by the shapes, with single-threaded BLAS; items write disjoint
// outputs.
#include "nn.h"
#include "gemm_bf16.h"
#include "prof.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

int conv2d_out_size(int in, int k, int stride, int pad, int dilation) {
    int num = in + 2 * pad - dilation * (k - 1) - 1;
    if (num < 0 || stride <= 0) return 0;   // C division truncates toward zero; PyTorch floors
    return num / stride + 1;
}

int conv2d_fold_bn(conv2d *c, const float *gamma, const float *beta, const float *mean,
                   const float *var, float eps, err *e) {
    int kk = c->k * c->k, cin_g = c->c_in / c->groups;
    size_t per_out = (size_t)cin_g * kk;
    float *w = err_malloc(e, sizeof(float) * per_out * c->c_out, "folded conv weight");
    float *b = err_malloc(e, sizeof(float) * c->c_out, "folded conv bias");
    if (!w || !b) { free(w); free(b); return OODSEG_E_NOMEM; }
    for (int o = 0; o < c->c_out; o++) {
        // Double for the scale so the fold adds as little rounding as possible over conv-then-BN.
        double s = (double)gamma[o] / sqrt((double)var[o] + (double)eps);
        for (size_t i = 0; i < per_out; i++)
            w[o * per_out + i] = (float)((double)c->weight[o * per_out + i] * s);
        double b0 = c->bias ? (double)c->bias[o] : 0.0;
        b[o] = (float)((b0 - (double)mean[o]) * s + (double)beta[o]);
    }
    if (c->owned) { free(c->weight); free(c->bias); }
    c->weight = w;
    c->bias = b;
    c->owned = 1;
    free(c->winograd_u);   // of the old weights
    c->winograd_u = NULL;
    return OODSEG_OK;
}

void conv2d_free(conv2d *c) {
    if (!c) return;
    if (c->owned) { free(c->weight); free(c->bias); }
    free(c->winograd_u);
    c->weight = c->bias = c->winograd_u = NULL;
    c->owned = 0;
}

// ---- depthwise ----------------------------------------------------------------------------------

// One channel: y (ho, wo) from x (h, w) with a k x k filter wk (k, k). Per kernel tap the valid
// output column range is computed once, so the inner loop has no bounds checks and vectorises
// (stride 1).
NN_TARGET_CLONES __attribute__((optimize("fp-contract=fast")))
static void dw_channel(const float *x, int h, int w, const float *wk, float bias, int k, int s,
                       int pad, int d, float *y, int ho, int wo) {
    for (int oy = 0; oy < ho; oy++) {
        float *yr = y + (size_t)oy * wo;
        #pragma omp simd
        for (int ox = 0; ox < wo; ox++) yr[ox] = bias;
        for (int ky = 0; ky < k; ky++) {
            int iy = oy * s - pad + ky * d;
            if (iy < 0 || iy >= h) continue;
            const float *xr = x + (size_t)iy * w;
            for (int kx = 0; kx < k; kx++) {
                float wv = wk[ky * k + kx];
                int off = kx * d - pad;   // ix = ox*s + off
                int lo = off < 0 ? (-off + s - 1) / s : 0;
                int hi = (w - 1 - off) < 0 ? -1 : (w - 1 - off) / s;   // last valid ox
                if (hi > wo - 1) hi = wo - 1;
                if (s == 1) {
                    const float *xs = xr + off;
                    #pragma omp simd
                    for (int ox = lo; ox <= hi; ox++) yr[ox] += wv * xs[ox];
                } else {
                    #pragma omp simd
                    for (int ox = lo; ox <= hi; ox++) yr[ox] += wv * xr[ox * s + off];
                }
            }
        }
    }
}

static void conv_depthwise(const nn_ctx *ctx, const conv2d *c, const float *x, int h, int w, const float *slope,
                           float *y, int ho, int wo) {
    int kk = c->k * c->k;
    #pragma omp parallel for schedule(dynamic, 1) num_threads(ctx->threads)
    for (int ch = 0; ch < c->c_out; ch++) {
        float *yc = y + (size_t)ch * ho * wo;
        dw_channel(x + (size_t)ch * h * w, h, w, c->weight + (size_t)ch * kk,
                   c->bias ? c->bias[ch] : 0.0f, c->k, c->stride, c->pad, c->dilation, yc, ho, wo);
        if (slope) prelu_span(yc, (int64_t)ho * wo, slope[ch]);
    }
}

// ---- GEMM paths ---------------------------------------------------------------------------------

// Pixel-tile width for a GEMM with inner dimension kdim: a (kdim x tile) col block of ~2 MiB
// (measured best for the 512-channel UperNet convs: 8-10% over 512 KiB), at least 128 pixels
// wide, and at least `parts` tiles per map when the map allows, so 2 threads have work to share
// (4 for one group; a grouped conv's groups are work items already, and fewer, wider GEMM calls
// scale better: ESPNetv2's 4-group 1x1s on 2 threads took 0.59 of their 1-thread time in 16
// calls of 512 pixels, 0.53 in 4 calls of 2048). Depends only on the shape.
static int64_t pixel_tile(int64_t kdim, int64_t npix, int parts) {
    int64_t t = (524288 / (kdim > 0 ? kdim : 1)) & ~(int64_t)15;
    if (t < 128) t = 128;
    if (t > 8192) t = 8192;
    int64_t part = ((npix + parts - 1) / parts + 15) & ~(int64_t)15;
    if (part < 64) part = 64;
    if (t > part) t = part;
    if (t > npix) t = npix;
    return t;
}

// Bias, then the optional residual (rows ld apart, as y's), then the optional PReLU, on a (co_g, nt)
// tile of rows ld apart, while it is in cache.
static void tile_epilogue(float *y, const float *bias, const float *res, const float *slope, int co0, int co_g,
                          int64_t ld, int64_t nt) {
    for (int o = 0; o < co_g; o++) {
        float *r = y + (size_t)o * ld;
        if (bias) {
            float b = bias[co0 + o];
            #pragma omp simd
            for (int64_t j = 0; j < nt; j++) r[j] += b;
        }
        if (res) {
            const float *q = res + (size_t)o * ld;
            #pragma omp simd
            for (int64_t j = 0; j < nt; j++) r[j] += q[j];
        }
        if (slope) prelu_span(r, nt, slope[co0 + o]);
    }
}

// y (m, nt) (+)= W (m, kd) col (kd, nt), rows ld* apart: sgemm on w, or with pw (bf16 rows, lda
// pairs per row) the bf16 GEMM from the weight's column k0 (even).
static void tile_gemm(const nn_ctx *ctx, const float *w, int ldw, const uint32_t *pw, int64_t lda, int k0, int m,
                      int64_t nt, int kd, const float *col, int64_t ldcol, float *y, int64_t ldy, int acc) {
    if (pw) nn_gemm_bf16_a(ctx, m, (int)nt, kd, pw + k0 / 2, lda, col, ldcol, y, ldy, acc);
    else nn_sgemm(0, 0, m, (int)nt, kd, 1.0f, w + k0, ldw, col, (int)ldcol, acc ? 1.0f : 0.0f, y, (int)ldy);
}

// Skinny 1x1 GEMMs (at most 32 outputs per group, at least twice as many inputs) in pixel tiles
// small enough for OpenBLAS's small-matrix kernel, which reads the operands in place: its AVX-512
// builds (0.3.21) take it for m * n * k <= 100^3, and packing costs these shapes more than their
// FMAs. In ESPNetv2 s2.0 at 1024x512, 1 thread, per call (ms, old tile -> this one): the EESP
// projections 64 -> 16 per group 1.36-1.42 -> 1.06-1.18, 128 -> 32 0.91-0.95 -> 0.81-0.89, the
// pyramid's 64 -> 10 0.22 -> 0.13, 48 -> 10 0.68 -> 0.50. Square shapes lost ((24, 24) +11 %,
// (32, 32) +20 %, (64, 64) +28 %, as did every m >= 64), so they keep their tiles. The bits: the
// small kernel sums each output's k products in one run, as the packed path does up to k = 320 on
// this build (and in blocks beyond it), so k stays <= 256: sgemm on 192- to 4096-pixel tiles
// against whole maps gave 0 differing values for (m, k) = (16, 64), (32, 128), (10, 256),
// (16, 256) and (10, 320), and 73,000 for (10, 352) and up.
static int64_t skinny_tile(int co_g, int ci_g, int64_t tile) {
    int64_t small = (1000000 / ((int64_t)co_g * ci_g)) & ~(int64_t)15;
    return co_g <= 32 && ci_g >= 2 * co_g && ci_g <= 256 && small >= 160 && small < tile ? small : tile;
}

#define WIDE_TILE 1024
#define COL_CHUNK_FLOATS 2097152   // 8 MiB

static void conv_1x1(const nn_ctx *ctx, const conv2d *c, const uint32_t *pw, const float *x, int64_t hw,
                     const float *res, const float *slope, float *y) {
    int g = c->groups, ci_g = c->c_in / g, co_g = c->c_out / g;
    const int parts = (4 + g - 1) / g;
    int64_t tile = pixel_tile(ci_g, hw, parts);
    // Wide convs: tiles of at least 1024 pixels so the weights are packed less often (see
    // conv_im2col); there is no col buffer here, x is read in place.
    if (co_g >= 128 && tile < WIDE_TILE) {
        int64_t quarter = ((hw + 3) / 4 + 15) & ~(int64_t)15;
        tile = WIDE_TILE < quarter ? WIDE_TILE : quarter;
        if (tile < pixel_tile(ci_g, hw, parts)) tile = pixel_tile(ci_g, hw, parts);
    }
    if (!pw) tile = skinny_tile(co_g, ci_g, tile);
    int64_t ntiles = (hw + tile - 1) / tile, items = ntiles * g;
    #pragma omp parallel for schedule(dynamic, 1) num_threads(ctx->threads)
    for (int64_t it = 0; it < items; it++) {
        int gi = (int)(it / ntiles);
        int64_t p0 = (it % ntiles) * tile, nt = hw - p0 < tile ? hw - p0 : tile;
        float *yt = y + (size_t)gi * co_g * hw + p0;
        int64_t lda = (ci_g + 1) / 2;
        tile_gemm(ctx, c->weight + (size_t)gi * co_g * ci_g, ci_g, pw ? pw + (size_t)gi * co_g * lda : NULL, lda, 0,
                  co_g, nt, ci_g, x + (size_t)gi * ci_g * hw + p0, hw, yt, hw, 0);
        tile_epilogue(yt, c->bias, res ? res + (yt - y) : NULL, slope, gi * co_g, co_g, hw, nt);
    }
}

// col (ci_g*k*k, nt): rows in weight order (ci, ky, kx), columns the output pixels p0 .. p0+nt-1
// of a (ho, wo) map, zero where the tap falls into the padding.
static void im2col_tile(const float *x, int ci_g, int h, int w, int k, int s, int pad, int d,
                        int wo, int64_t p0, int64_t nt, float *col) {
    for (int ci = 0; ci < ci_g; ci++) {
        const float *xc = x + (size_t)ci * h * w;
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                float *cr = col + ((size_t)(ci * k + ky) * k + kx) * nt;
                int off = kx * d - pad;
                int lo = off < 0 ? (-off + s - 1) / s : 0;
                int hi = (w - 1 - off) < 0 ? -1 : (w - 1 - off) / s;
                if (hi > wo - 1) hi = wo - 1;
                int64_t p = p0, end = p0 + nt;
                while (p < end) {
                    int oy = (int)(p / wo), ox0 = (int)(p % wo);
                    int ox1 = wo;   // exclusive end of this row segment
                    if (end - p < ox1 - ox0) ox1 = ox0 + (int)(end - p);
                    float *dst = cr + (p - p0) - ox0;   // indexed by ox
                    int iy = oy * s - pad + ky * d;
                    int a = ox0 > lo ? ox0 : lo, b = ox1 - 1 < hi ? ox1 - 1 : hi;
                    if (iy < 0 || iy >= h || a > b) {
                        memset(dst + ox0, 0, sizeof(float) * (size_t)(ox1 - ox0));
                    } else {
                        // [ox0, a) and (b, ox1) fall into the padding, [a, b] into the image.
                        const float *xr = xc + (size_t)iy * w + off;
                        if (a > ox0) memset(dst + ox0, 0, sizeof(float) * (size_t)(a - ox0));
                        if (s == 1) {
                            memcpy(dst + a, xr + a, sizeof(float) * (size_t)(b - a + 1));
                        } else {
                            #pragma omp simd
                            for (int ox = a; ox <= b; ox++) dst[ox] = xr[(size_t)ox * s];
                        }
                        if (b + 1 < ox1) memset(dst + b + 1, 0, sizeof(float) * (size_t)(ox1 - b - 1));
                    }
                    p += ox1 - ox0;
                }
            }
    }
}

// Wide convs (UperNet's 512 output channels over K = 4608 .. 18432) lose to weight packing when
// the pixel tiles are small: OpenBLAS re-packs the whole weight matrix (up to 38 MB) on every call.
// So for co_g >= 128 the tiles are wide (WIDE_TILE pixels) and the inner dimension is split into
// chunks of whole input channels, accumulated with beta = 1, keeping the col block near 8 MB.

static int conv_im2col(const nn_ctx *ctx, const conv2d *c, const uint32_t *pw, const float *x, int h, int w,
                       const float *slope, float *y, int ho, int wo, err *e) {
    int g = c->groups, ci_g = c->c_in / g, co_g = c->c_out / g, k = c->k, kk = k * k;
    int kdim = ci_g * kk;
    int64_t hwo = (int64_t)ho * wo;
    int64_t tile = pixel_tile(kdim, hwo, 4);
    int cc = ci_g;   // input channels per K chunk
    if (co_g >= 128) {
        int64_t quarter = ((hwo + 3) / 4 + 15) & ~(int64_t)15;
        tile = WIDE_TILE < quarter ? WIDE_TILE : quarter;
        if (tile < 64) tile = 64;
        if (tile > hwo) tile = hwo;
        int64_t nchunks = ((int64_t)kdim * tile + COL_CHUNK_FLOATS - 1) / COL_CHUNK_FLOATS;
        cc = (int)((ci_g + nchunks - 1) / nchunks);
        if (pw && cc < ci_g) cc += cc & 1;   // bf16: each chunk starts on a whole pair of K (cc*kk even)
    }
    int64_t ntiles = (hwo + tile - 1) / tile, items = ntiles * g, csz = (int64_t)cc * kk * tile;
    int nth = ctx->threads;
    float *cols = err_malloc(e, sizeof(float) * (size_t)csz * nth, "im2col buffer");
    if (!cols) return OODSEG_E_NOMEM;
    #pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
    for (int64_t it = 0; it < items; it++) {
        float *col = cols + (size_t)omp_get_thread_num() * csz;   // (cc*k*k, tile)
        int gi = (int)(it / ntiles);
        int64_t p0 = (it % ntiles) * tile, nt = hwo - p0 < tile ? hwo - p0 : tile;
        float *yt = y + (size_t)gi * co_g * hwo + p0;
        const float *wg = c->weight + (size_t)gi * co_g * kdim;   // (co_g, kdim)
        int64_t lda = (kdim + 1) / 2;
        const uint32_t *pg = pw ? pw + (size_t)gi * co_g * lda : NULL;
        for (int c0 = 0; c0 < ci_g; c0 += cc) {
            int nc = ci_g - c0 < cc ? ci_g - c0 : cc;
            im2col_tile(x + ((size_t)gi * ci_g + c0) * h * w, nc, h, w, k, c->stride, c->pad,
                        c->dilation, wo, p0, nt, col);
            tile_gemm(ctx, wg, kdim, pg, lda, c0 * kk, co_g, nt, nc * kk, col, nt, yt, hwo, c0 > 0);
        }
        tile_epilogue(yt, c->bias, NULL, slope, gi * co_g, co_g, hwo, nt);
    }
    free(cols);
    return OODSEG_OK;
}

// ---- direct kernel for convs with few output channels per group -------------------------------
//
// ESPNet/ESPNetv2 are dominated by 3x3 (dilated) convs with 4..28 channels and grouped or
// depthwise 3x3 convs with 1..5 channels per group. As GEMMs these are M = 1..28 wide, and im2col
// plus OpenBLAS's packing cost as much as the arithmetic. This kernel instead keeps a block of up
// to DCONV_COB output channels x 16*nxv output pixels in vector registers and streams the input
// from a pack of zero-padded input rows (layouts: see conv_direct).
//
// A packed row holds the s phases of one input row: [r][m] = x[iy][m*s + r - pad], zero outside
// the image, so the tap kx (ix = ox*s - pad + kx*d) is a contiguous load at phase (kx*d) % s,
// offset ox + (kx*d)/s, also for stride 2. Each lane does the same FMA sequence in every build of
// the kernel, so the AVX-512 and AVX2 clones give identical results.

#define DCONV_KMAX 7   // larger kernels take the im2col path
#define DCONV_COB 6    // output channels per register block: 6 x 4 zmm accumulators + 4 inputs

typedef float v16 __attribute__((vector_size(64)));

// cob and nxv are compile-time constants at every call site (always_inline), so with the unroll
// pragmas acc[][] lives in registers: up to 24 zmm for 6 x 4, plus 4 for the inputs.
static inline __attribute__((always_inline)) void dconv_kernel(
    const int cob, const int nxv, const float *rp, int64_t base, int64_t cstride, int64_t kstride,
    int cig, int k, int ky0, int ky1, const int64_t *toff, const float *w, int wstride, int ox,
    const float *bias, const float *slope, float *out, int64_t ostride) {
    v16 acc[DCONV_COB][4];
    _Pragma("GCC unroll 8") for (int o = 0; o < cob; o++)
        _Pragma("GCC unroll 4") for (int j = 0; j < nxv; j++) acc[o][j] = (v16){0};
    for (int ci = 0; ci < cig; ci++)
        for (int ky = ky0; ky < ky1; ky++) {
            const float *row = rp + (base + ci * cstride + ky * kstride + ox);
            const float *wk = w + (ci * k + ky) * k;
            for (int kx = 0; kx < k; kx++) {
                const float *src = row + toff[kx];
                v16 xv[4];
                _Pragma("GCC unroll 4") for (int j = 0; j < nxv; j++)
                    memcpy(&xv[j], src + 16 * j, sizeof(v16));
                _Pragma("GCC unroll 8") for (int o = 0; o < cob; o++) {
                    float wv = wk[o * wstride + kx];
                    _Pragma("GCC unroll 4") for (int j = 0; j < nxv; j++) acc[o][j] += wv * xv[j];
                }
            }
        }
    typedef int vi16 __attribute__((vector_size(64)));
    _Pragma("GCC unroll 8") for (int o = 0; o < cob; o++) {
        float b = bias ? bias[o] : 0.0f;   // after the sum, as PyTorch adds it
        float a = slope ? slope[o] : 0.0f;
        _Pragma("GCC unroll 4") for (int j = 0; j < nxv; j++) {
            if (bias) acc[o][j] += b;
            if (slope) {   // v >= 0 ? v : a*v, lane-wise
                vi16 pos = acc[o][j] >= (v16){0};
                v16 neg = a * acc[o][j];
                acc[o][j] = (v16)(((vi16)acc[o][j] & pos) | ((vi16)neg & ~pos));
            }
            memcpy(out + o * ostride + 16 * j, &acc[o][j], sizeof(v16));
        }
    }
}

// Where the kernel finds input row (ci, ky) of the current output row in the pack:
// rp + base + ci*cstride + ky*kstride, then phase and column offsets per tap.
typedef struct dconv_args {
    const float *rp;
    int64_t base, cstride, kstride;
    int cig, k, d, s;
    int ky0, ky1;   // kernel rows that fall inside the image for this output row
    int64_t lm;
} dconv_args;

// One output row of cog channels (bias: (cog) or NULL): the pixel blocks that fit in wo straight
// into y (cog rows of stride ystride), the last partial one into tmp (cog, 16*nxv) for the caller
// to copy. fp-contract: -std=c11 turns contraction off, and without FMAs the kernel runs at half
// speed.
NN_TARGET_CLONES __attribute__((optimize("fp-contract=fast")))
static void dconv_row(const dconv_args *a, const float *w, int wstride, const float *bias,
                      const float *slope, int cog, int nxv, int wo, float *y, int64_t ystride,
                      float *tmp) {
    int bw = 16 * nxv, wo_pad = (wo + bw - 1) / bw * bw;
    int64_t toff[DCONV_KMAX];   // offset of tap kx in the row pack (no division in the loop)
    for (int kx = 0; kx < a->k; kx++) toff[kx] = (int64_t)(kx * a->d % a->s) * a->lm + kx * a->d / a->s;
    // Pixel blocks outside, channel blocks inside: the pack columns of one pixel block
    // (cig*k rows x ~bw) stay in L1 while every channel block reads them.
    // Channel blocks as even as possible (25 = 5 x 5, not 4 x 6 + 1: a 1-channel block does one
    // FMA per load).
    int nblk = (cog + DCONV_COB - 1) / DCONV_COB;
    for (int ox = 0; ox < wo_pad; ox += bw)
        for (int bi = 0, cb = 0, cob = 0; bi < nblk; bi++, cb += cob) {
            cob = (cog - cb + (nblk - bi) - 1) / (nblk - bi);   // ceil of the remaining share
            const float *wb = w + (size_t)cb * wstride, *bb = bias ? bias + cb : NULL;
            const float *sb = slope ? slope + cb : NULL;
            int full = ox + bw <= wo;
            float *ob = full ? y + (size_t)cb * ystride + ox : tmp + (size_t)cb * bw;
            int64_t os = full ? ystride : bw;
#define DCALL(C, N) dconv_kernel(C, N, a->rp, a->base, a->cstride, a->kstride, a->cig, a->k, a->ky0, a->ky1, toff, wb, wstride, ox, bb, sb, ob, os)
            if (nxv == 4) {
                switch (cob) {
                case 6: DCALL(6, 4); break;
                case 5: DCALL(5, 4); break;
                case 4: DCALL(4, 4); break;
                case 3: DCALL(3, 4); break;
                case 2: DCALL(2, 4); break;
                default: DCALL(1, 4); break;
                }
            } else {
                switch (cob) {
                case 6: DCALL(6, 2); break;
                case 5: DCALL(5, 2); break;
                case 4: DCALL(4, 2); break;
                case 3: DCALL(3, 2); break;
                case 2: DCALL(2, 2); break;
                default: DCALL(1, 2); break;
                }
            }
#undef DCALL
        }
}

// Measured (bench_ops, 1 thread): the direct kernel wins 1.3-1.6x on k = 3 convs with <= 32
// output channels per group, strided ones included; OpenBLAS wins on 1x1 stride-1 convs (no im2col
// there) unless the groups are tiny, and on wide convs.
static int use_direct(const nn_ctx *ctx, const conv2d *c) {
    int cig = c->c_in / c->groups, cog = c->c_out / c->groups, kdim = cig * c->k * c->k;
    if (ctx->conv_im2col || cog > 32 || kdim > 1200 || c->k > DCONV_KMAX) return 0;
    if (c->k == 1 && c->stride == 1 && c->pad == 0) return cig * cog < 64;
    return 1;
}

// One input row xr (w) into its s phases dst (s, lm): dst[r][m] = x[m*s + r - pad], zero outside
// the row. For s = 2 the columns where both phases are inside the row are split in one pass
// (an even/odd split, which vectorises as permutes; a strided gather per phase was 28% of a
// stride-2 conv); the few border columns are done one by one.
NN_TARGET_CLONES
static void pack_row(const float *xr, int w, int pad, int s, int64_t lm, float *dst) {
    if (s == 1) {
        // m - pad in [0, w): the image; outside: padding zeros.
        int64_t a = pad < lm ? pad : lm, b = (int64_t)pad + w < lm ? (int64_t)pad + w : lm;
        memset(dst, 0, sizeof(float) * (size_t)a);
        if (b > a) memcpy(dst + a, xr, sizeof(float) * (size_t)(b - a));
        if (lm > (b > a ? b : a)) memset(dst + (b > a ? b : a), 0, sizeof(float) * (size_t)(lm - (b > a ? b : a)));
        return;
    }
    int64_t m0 = 0, m1 = 0;   // [m0, m1): every phase inside the row
    if (s == 2) {
        m0 = (pad + 1) / 2;
        m1 = (int64_t)(w - 2 + pad) < 0 ? 0 : (int64_t)(w - 2 + pad) / 2 + 1;
        if (m1 > lm) m1 = lm;
        if (m0 > m1) m0 = m1;
        float *d0 = dst, *d1 = dst + lm;
        #pragma omp simd
        for (int64_t m = m0; m < m1; m++) {   // both indices inside [0, w) here
            d0[m] = xr[2 * m - pad];
            d1[m] = xr[2 * m + 1 - pad];
        }
    }
    for (int r = 0; r < s; r++)
        for (int64_t m = 0; m < lm; m++) {
            if (m == m0 && m1 > m0) { m = m1 - 1; continue; }
            int64_t ix = m * s + r - pad;
            dst[r * lm + m] = ix >= 0 && ix < w ? xr[ix] : 0.0f;
        }
}

// Work items are (group, band of output rows). Two pack layouts:
//   per tap row  rp (cig, k, s, lm): row (ci, ky) of each output row packed on its own; any
//                stride and dilation, but each input row is packed up to k times;
//   per image row rp (cig, nr, lm), stride 1 only: the nr = band + (k-1)*d input rows the band
//                needs, each packed once and read by every output row of the band at base
//                (oy - pad - iy0)*lm, kstride d*lm. Used when that packs fewer rows.
typedef struct dconv_plan {
    int nxv, bw, band, by_image;
    int64_t lm, nr, nbands, items;
    int64_t rp_sz, per_th;   // floats of a thread's row pack, and of its pack plus output block
} dconv_plan;

static dconv_plan dconv_plan_of(const conv2d *c, int ho, int wo) {
    dconv_plan p;
    int g = c->groups, cig = c->c_in / g, cog = c->c_out / g, k = c->k, s = c->stride, d = c->dilation;
    p.nxv = wo <= 32 ? 2 : 4;
    p.bw = 16 * p.nxv;
    int wo_pad = (wo + p.bw - 1) / p.bw * p.bw;
    p.lm = wo_pad + (int64_t)(k - 1) * d / s + 1;   // per-phase row length
    // Rows per work item: at least ~64K FMAs per item so the scheduling overhead stays small
    // (depthwise rows are only 9*wo FMAs). Shape-only, like every chunking here.
    int64_t row_work = (int64_t)cog * cig * k * k * wo_pad;
    int band = (int)(65536 / row_work) + 1;
    // Image-row packing wants bands several rows tall; keep >= 8 bands per group for threads.
    int bimg = 4 * d > 8 ? 4 * d : 8, cap = ho / 8 > 1 ? ho / 8 : 1;
    if (bimg > cap) bimg = cap;
    if (bimg < band) bimg = band;
    p.by_image = s == 1 && k > 1 && (int64_t)bimg + (int64_t)(k - 1) * d < (int64_t)k * bimg;
    if (p.by_image) band = bimg;
    if (band > ho) band = ho;
    p.band = band;
    p.nr = p.by_image ? band + (int64_t)(k - 1) * d : 0;   // image rows per band (at most)
    p.nbands = (ho + band - 1) / band;
    p.items = (int64_t)g * p.nbands;
    p.rp_sz = p.by_image ? cig * p.nr * p.lm : (int64_t)cig * k * s * p.lm;
    p.per_th = p.rp_sz + (int64_t)cog * p.bw;
    return p;
}

// Work item `it` of conv c under plan p; rp: the thread's (p.per_th) floats.
static void dconv_item(const conv2d *c, const dconv_plan *p, const float *x, int h, int w, const float *slope,
                       float *y, int ho, int wo, int64_t it, float *rp) {
    int g = c->groups, cig = c->c_in / g, cog = c->c_out / g, k = c->k, s = c->stride;
    int d = c->dilation, pad = c->pad, band = p->band, nxv = p->nxv, bw = p->bw;
    int64_t lm = p->lm, nr = p->nr, hwo = (int64_t)ho * wo, hw = (int64_t)h * w;
    float *ob = rp + p->rp_sz;                                 // (cog, bw)
    int gi = (int)(it / p->nbands), oy0 = (int)(it % p->nbands) * band;
    int oy1 = oy0 + band < ho ? oy0 + band : ho;
    const float *xg = x + (size_t)gi * cig * hw;
    int iy0 = 0;
    if (p->by_image) {
        iy0 = oy0 - pad > 0 ? oy0 - pad : 0;
        int iy1 = oy1 - 1 - pad + (k - 1) * d + 1;
        if (iy1 > h) iy1 = h;
        for (int ci = 0; ci < cig; ci++)
            for (int iy = iy0; iy < iy1; iy++)
                pack_row(xg + (size_t)ci * hw + (size_t)iy * w, w, pad, 1, lm, rp + ((int64_t)ci * nr + (iy - iy0)) * lm);
    }
    for (int oy = oy0; oy < oy1; oy++) {
        // Kernel rows in the vertical padding contribute nothing: neither packed nor computed
        // (a third of the taps at the borders of a dilation-16 conv on a 64-row map).
        int ky0 = 0, ky1 = k;
        while (ky0 < k && oy * s - pad + ky0 * d < 0) ky0++;
        while (ky1 > ky0 && oy * s - pad + (ky1 - 1) * d >= h) ky1--;
        dconv_args a = {rp, 0, (int64_t)k * s * lm, (int64_t)s * lm, cig, k, d, s, ky0, ky1, lm};
        if (p->by_image) {
            a.base = (int64_t)(oy - pad - iy0) * lm;   // + ky*d*lm >= 0 for ky >= ky0
            a.cstride = nr * lm;
            a.kstride = (int64_t)d * lm;
        } else {
            for (int ci = 0; ci < cig; ci++)
                for (int ky = ky0; ky < ky1; ky++) {
                    int iy = oy * s - pad + ky * d;
                    pack_row(xg + (size_t)ci * hw + (size_t)iy * w, w, pad, s, lm, rp + (int64_t)(ci * k + ky) * s * lm);
                }
        }
        int co0 = gi * cog;
        float *yr = y + (size_t)co0 * hwo + (size_t)oy * wo;
        dconv_row(&a, c->weight + (size_t)co0 * cig * k * k, cig * k * k, c->bias ? c->bias + co0 : NULL,
                  slope ? slope + co0 : NULL, cog, nxv, wo, yr, hwo, ob);
        int tail = wo % bw;
        if (tail)
            for (int o = 0; o < cog; o++)
                memcpy(yr + (size_t)o * hwo + (wo - tail), ob + (size_t)o * bw, sizeof(float) * tail);
    }
}

// n direct convs of the same input (same output size) in one parallel region: the work items of
// all of them. slope: NULL, or conv k's PReLU (or NULL) at slope[k].
static int conv_direct_many(const nn_ctx *ctx, const conv2d *const *c, int n, const float *const *slope,
                            const float *x, int h, int w, float *const *y, int ho, int wo, err *e) {
    dconv_plan p[DW_MANY_MAX];
    int64_t first[DW_MANY_MAX + 1] = {0}, per_th = 0;
    for (int k = 0; k < n; k++) {
        p[k] = dconv_plan_of(c[k], ho, wo);
        first[k + 1] = first[k] + p[k].items;
        if (p[k].per_th > per_th) per_th = p[k].per_th;
    }
    int nth = ctx->threads;
    float *buf = err_malloc(e, sizeof(float) * (size_t)per_th * nth, "conv row pack");
    if (!buf) return OODSEG_E_NOMEM;
    #pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
    for (int64_t it = 0; it < first[n]; it++) {
        int k = 0;
        while (it >= first[k + 1]) k++;
        dconv_item(c[k], &p[k], x, h, w, slope ? slope[k] : NULL, y[k], ho, wo, it - first[k],
                   buf + (size_t)omp_get_thread_num() * per_th);
    }
    free(buf);
    return OODSEG_OK;
}

static int conv_direct(const nn_ctx *ctx, const conv2d *c, const float *x, int h, int w, const float *slope, float *y,
                       int ho, int wo, err *e) {
    return conv_direct_many(ctx, &c, 1, &slope, x, h, w, &y, ho, wo, e);
}

// Winograd F(4,3) needs fewer multiplications (36 per 4x4 tile instead of 144) but transforms the
// inputs and outputs and packs 4x more weights per block of tiles. Measured (bench_winograd, 1
// thread, 3x3 at 64x128): 48 -> 48 channels 1.15x over the current path, 64 -> 64 1.4x,
// 128 -> 128 1.8x, UperNet's 512-channel convs 2-2.5x. From 64 channels on, the gain is clear;
// narrower convs (ESPNet's: <= 32 output channels, the direct kernel) keep their paths, and with
// them their bit-tight goldens.
#define WINOGRAD_MIN_CH 64

// By default only a conv whose model prepared its Winograd weights takes the path: U costs 4x the
// conv's weights in memory (36 floats per (o, i) pair instead of 9), which the model pays only where
// enough tiles amortise it (models/upernet.c: the FPN levels, not the PPM bottleneck on the 1/32 map).
static int use_winograd(const nn_ctx *ctx, const conv2d *c) {
    if (ctx->conv_im2col || !ctx->conv_winograd || !conv2d_winograd_shape(c)) return 0;
    return ctx->conv_winograd == 2 ||
           (c->winograd_u && c->c_in >= WINOGRAD_MIN_CH && c->c_out >= WINOGRAD_MIN_CH);
}

int conv2d_takes_winograd(const nn_ctx *ctx, const conv2d *c) { return use_winograd(ctx, c); }

// The depthwise path from the input (dwconv3x3_nchw), for c under ctx (after Winograd's).
static int takes_dw_nchw(const nn_ctx *ctx, const conv2d *c) {
    return c->groups == c->c_in && c->groups == c->c_out && c->k == 3 && c->stride <= 2 && !ctx->conv_im2col &&
           !ctx->conv_dw_pack && dwconv3x3_nchw_available();
}

// The path conv_forward takes for c (without a slope): the depthwise kernel from the input, the
// direct kernel, or another (the convs of conv2d_forward_many then run one after another).
enum { PATH_DW_NCHW, PATH_DIRECT, PATH_OTHER };
static int conv_path(const nn_ctx *ctx, const conv2d *c) {
    if (c->groups <= 0 || c->c_in % c->groups || c->c_out % c->groups || c->k <= 0 || c->stride <= 0 ||
        c->dilation <= 0 || c->pad < 0 || use_winograd(ctx, c))
        return PATH_OTHER;
    if (takes_dw_nchw(ctx, c)) return PATH_DW_NCHW;
    return use_direct(ctx, c) ? PATH_DIRECT : PATH_OTHER;
}

// The 1x1 GEMM path (conv_1x1), the one that adds a residual in its epilogue: a 1x1 stride-1 conv
// that is neither direct nor depthwise. (A bad config gets here too, and conv_forward refuses it.)
static int takes_gemm_1x1(const nn_ctx *ctx, const conv2d *c) {
    return c->k == 1 && c->stride == 1 && c->pad == 0 && conv_path(ctx, c) == PATH_OTHER &&
           !(c->groups == c->c_in && c->groups == c->c_out);
}

double conv2d_flop(const conv2d *c, int ho, int wo) {
    return 2.0 * c->c_out * (c->c_in / c->groups) * c->k * c->k * ho * wo;
}

// res (the output's shape) or NULL: y = PReLU(conv(x) + res), the residual added before the PReLU,
// in the 1x1 GEMM's epilogue, or after the other paths in one more pass (add_prelu_inplace).
static int conv_forward(const nn_ctx *ctx, const conv2d *c, const float *x, int h, int w, const float *res,
                        const float *slope, float *y, err *e) {
    if (res && !takes_gemm_1x1(ctx, c)) {
        if (conv_forward(ctx, c, x, h, w, NULL, NULL, y, e)) return e->code;
        int64_t hwo = (int64_t)conv2d_out_size(h, c->k, c->stride, c->pad, c->dilation) *
                      conv2d_out_size(w, c->k, c->stride, c->pad, c->dilation);
        if (slope) add_prelu_inplace(ctx, y, res, c->c_out, hwo, slope);
        else add_inplace(ctx, y, res, (int64_t)c->c_out * hwo);
        return OODSEG_OK;
    }
    if (c->groups <= 0 || c->c_in % c->groups || c->c_out % c->groups || c->k <= 0 ||
        c->stride <= 0 || c->dilation <= 0 || c->pad < 0)
        return err_set(e, OODSEG_E_INTERNAL, "conv2d: bad config c_in %d c_out %d k %d stride %d "
                       "pad %d dilation %d groups %d", c->c_in, c->c_out, c->k, c->stride, c->pad,
                       c->dilation, c->groups);
    int ho = conv2d_out_size(h, c->k, c->stride, c->pad, c->dilation);
    int wo = conv2d_out_size(w, c->k, c->stride, c->pad, c->dilation);
    if (ho <= 0 || wo <= 0)
        return err_set(e, OODSEG_E_INTERNAL, "conv2d: input %dx%d too small for k %d dilation %d "
                       "pad %d", h, w, c->k, c->dilation, c->pad);
    // Under bf16 too the wide 3x3s take Winograd, with bf16 GEMMs (nn/winograd.c): its 4x fewer
    // multiplications beat bf16 im2col's 2x rate (bench_bf16, 1 thread, fpn_bottleneck at 128x256:
    // fp32 im2col 29.7 s, bf16 im2col 21.7 s, fp32 Winograd 7.0 s, on a loaded machine), at 10x
    // bf16 im2col's rounding error (tests/test_bf16.c, winograd_in_bf16).
    if (use_winograd(ctx, c)) return conv2d_winograd_forward(ctx, c, x, h, w, slope, y, ho, wo, e);   // counts itself
    PROF_FLOP(ctx, conv2d_flop(c, ho, wo));
    if (takes_dw_nchw(ctx, c)) {
        dwconv3x3_nchw(ctx, c, x, h, w, slope, y, ho, wo);
        return OODSEG_OK;
    }
    if (use_direct(ctx, c)) return conv_direct(ctx, c, x, h, w, slope, y, ho, wo, e);
    if (c->groups == c->c_in && c->groups == c->c_out) {
        conv_depthwise(ctx, c, x, h, w, slope, y, ho, wo);
        return OODSEG_OK;
    }
    // bf16: the GEMM paths on the weight as bf16 rows (packed once in a model's store).
    const uint32_t *pw = NULL;
    uint32_t *tmp = NULL;
    if (nn_bf16_layer(ctx, c->c_out) &&
        !(pw = nn_bf16_weights_for(ctx, c->weight, c->c_out, c->c_in / c->groups * c->k * c->k, NN_BF16_ROWS, &tmp, e)))
        return e->code;
    int rc = OODSEG_OK;
    if (c->k == 1 && c->stride == 1 && c->pad == 0) conv_1x1(ctx, c, pw, x, (int64_t)h * w, res, slope, y);
    else rc = conv_im2col(ctx, c, pw, x, h, w, slope, y, ho, wo, e);
    free(tmp);
    return rc;
}

int conv2d_forward(const nn_ctx *ctx, const conv2d *c, const float *x, int h, int w, float *y,
                   err *e) {
    return conv_forward(ctx, c, x, h, w, NULL, NULL, y, e);
}

int conv2d_forward_many(const nn_ctx *ctx, const conv2d *const *c, int n, const float *x, int h, int w,
                        float *const *y, err *e) {
    int together = n >= 1 && n <= DW_MANY_MAX, path = n >= 1 ? conv_path(ctx, c[0]) : PATH_OTHER;
    int ho = 0, wo = 0;
    for (int k = 0; together && k < n; k++) {
        int a = conv2d_out_size(h, c[k]->k, c[k]->stride, c[k]->pad, c[k]->dilation);
        int b = conv2d_out_size(w, c[k]->k, c[k]->stride, c[k]->pad, c[k]->dilation);
        if (k == 0) ho = a, wo = b;
        together = path != PATH_OTHER && conv_path(ctx, c[k]) == path && a == ho && b == wo && ho > 0 && wo > 0;
    }
    for (int k = 0; together && k < n; k++) PROF_FLOP(ctx, conv2d_flop(c[k], ho, wo));
    if (together && path == PATH_DIRECT) return conv_direct_many(ctx, c, n, NULL, x, h, w, y, ho, wo, e);
    if (together) {
        dwconv3x3_nchw_many(ctx, c, n, NULL, x, h, w, y, ho, wo);
        return OODSEG_OK;
    }
    for (int k = 0; k < n; k++)
        if (conv_forward(ctx, c[k], x, h, w, NULL, NULL, y[k], e)) return e->code;
    return OODSEG_OK;
}

int conv2d_forward_prelu(const nn_ctx *ctx, const conv2d *c, const float *x, int h, int w, const float *slope,
                         float *y, err *e) {
    return conv_forward(ctx, c, x, h, w, NULL, slope, y, e);
}

int conv2d_forward_residual_prelu(const nn_ctx *ctx, const conv2d *c, const float *x, int h, int w,
                                  const float *res, const float *slope, float *y, err *e) {
    return conv_forward(ctx, c, x, h, w, res, slope, y, e);
}

#define ACC_SPAN 1024   // pixels per step of conv2d_1x1_accumulate: its partial sums stay in L1

// Few input channels, so each output channel is one pass over the inputs, accumulated in input
// order with the bias last (the order ESPNetv2's input reinforcement was written and checked in).
// The sums run input by input over a span of pixels, each a vector loop: with the loop over the
// inputs inside the loop over pixels GCC left it scalar, simd pragma or not (3.5 % of ESPNetv2's
// `score`). Per pixel the same float operations in the same order (no contraction: -std=c11).
void conv2d_1x1_accumulate(const nn_ctx *ctx, const conv2d *c, const float *x, int64_t hw, const float *slope,
                           float *y) {
    const int ci = c->c_in;
    PROF_FLOP(ctx, 2.0 * c->c_out * ci * hw);
    #pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (int o = 0; o < c->c_out; o++) {
        const float *wo = c->weight + (size_t)o * ci;
        float b = c->bias[o], *yo = y + (size_t)o * hw, s[ACC_SPAN];
        for (int64_t p0 = 0; p0 < hw; p0 += ACC_SPAN) {
            const int n = hw - p0 < ACC_SPAN ? (int)(hw - p0) : ACC_SPAN;
            const float *xp = x + p0;
            #pragma omp simd
            for (int i = 0; i < n; i++) s[i] = wo[0] * xp[i];
            for (int k = 1; k < ci; k++) {
                const float wk = wo[k], *xk = xp + (size_t)k * hw;
                #pragma omp simd
                for (int i = 0; i < n; i++) s[i] += wk * xk[i];
            }
            float *yp = yo + p0;
            #pragma omp simd
            for (int i = 0; i < n; i++) yp[i] += s[i] + b;
        }
        if (slope) prelu_span(yo, hw, slope[o]);
    }
}

// ---- ConvTranspose2d(k 2, s 2) ------------------------------------------------------------------
//
// Direct: per input row i and block of 4 output channels, 16 accumulators (channel o, a, b) over 16
// input columns; each input vector feeds 16 FMAs. The (b = 0, b = 1) pair is interleaved into 32
// consecutive outputs of row 2i + a. The output (4x the input pixels) is the memory cost that remains.

#define CT_COB 4

// One 16-column block of input row xr (c_in rows of stride xs) for output channels co..co+cob-1:
// writes 32 outputs to each of rows a = 0, 1 at out + o*ocs + a*ors (ocs: channel stride, ors:
// row stride). cob is a compile-time constant at each call so acc[][] stays in registers.
static inline __attribute__((always_inline)) void convt_block(
    const int cob, const float *xr, int64_t xs, int c_in, int c_out, const float *wt, int co,
    float *out, int64_t ocs, int64_t ors) {
    v16 acc[CT_COB][4];
    _Pragma("GCC unroll 4") for (int o = 0; o < cob; o++)
        _Pragma("GCC unroll 4") for (int t = 0; t < 4; t++) acc[o][t] = (v16){0};
    for (int ci = 0; ci < c_in; ci++) {
        v16 xv;
        memcpy(&xv, xr + (size_t)ci * xs, sizeof xv);
        const float *wk = wt + ((size_t)ci * c_out + co) * 4;
        _Pragma("GCC unroll 4") for (int o = 0; o < cob; o++)
            _Pragma("GCC unroll 4") for (int t = 0; t < 4; t++) acc[o][t] += wk[o * 4 + t] * xv;
    }
    typedef int i16 __attribute__((vector_size(64)));
    _Pragma("GCC unroll 4") for (int o = 0; o < cob; o++)
        _Pragma("GCC unroll 2") for (int a = 0; a < 2; a++) {
            // interleave b = 0 and b = 1: lanes (b0[0] b1[0] b0[1] b1[1] ...)
            v16 lo = __builtin_shuffle(acc[o][a * 2], acc[o][a * 2 + 1],
                (i16){0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23});
            v16 hi = __builtin_shuffle(acc[o][a * 2], acc[o][a * 2 + 1],
                (i16){8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31});
            float *dst = out + o * ocs + a * ors;
            memcpy(dst, &lo, sizeof lo);
            memcpy(dst + 16, &hi, sizeof hi);
        }
}

// Input row i: x rows (c_in, stride hw) for the full 16-column blocks, straight into y (c_out, 2h,
// 2w); the last partial block from the zero-padded copy tail (c_in, 16) into tmp (c_out, 2, 32).
NN_TARGET_CLONES __attribute__((optimize("fp-contract=fast")))
static void convt_row(const float *xrow, int64_t hw, const float *tail, int c_in, int c_out, int w,
                      const float *wt, float *yrow, float *tmp) {
    int full = w / 16 * 16;
    for (int j0 = 0; j0 < full; j0 += 16) {
        int co = 0;
        for (; co + CT_COB <= c_out; co += CT_COB)
            convt_block(CT_COB, xrow + j0, hw, c_in, c_out, wt, co, yrow + (size_t)co * 4 * hw + 2 * j0,
                        4 * hw, 2 * w);
        for (; co < c_out; co++)
            convt_block(1, xrow + j0, hw, c_in, c_out, wt, co, yrow + (size_t)co * 4 * hw + 2 * j0,
                        4 * hw, 2 * w);
    }
    if (full < w) {
        int co = 0;
        for (; co + CT_COB <= c_out; co += CT_COB)
            convt_block(CT_COB, tail, 16, c_in, c_out, wt, co, tmp + (size_t)co * 64, 64, 32);
        for (; co < c_out; co++)
            convt_block(1, tail, 16, c_in, c_out, wt, co, tmp + (size_t)co * 64, 64, 32);
    }
}

int conv_transpose2x2_forward(const nn_ctx *ctx, const float *weight, int c_in, int c_out, const float *x, int h,
                              int w, float *y, err *e) {
    int full = w / 16 * 16, rem = w - full;
    int64_t hw = (int64_t)h * w, tsz = (int64_t)c_in * 16 + (int64_t)c_out * 64;
    PROF_FLOP(ctx, 2.0 * c_in * c_out * 4 * hw);
    int nth = ctx->threads;
    float *buf = err_malloc(e, sizeof(float) * (size_t)tsz * nth, "conv_transpose buffer");
    if (!buf) return OODSEG_E_NOMEM;
    int W2 = 2 * w;
    #pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
    for (int i = 0; i < h; i++) {
        float *tail = buf + (size_t)omp_get_thread_num() * tsz;   // (c_in, 16)
        float *tmp = tail + (size_t)c_in * 16;                    // (c_out, 2, 32)
        if (rem) {
            for (int ci = 0; ci < c_in; ci++) {
                memcpy(tail + ci * 16, x + (size_t)ci * hw + (size_t)i * w + full, sizeof(float) * rem);
                memset(tail + ci * 16 + rem, 0, sizeof(float) * (16 - rem));
            }
        }
        float *yrow = y + (size_t)(2 * i) * W2;
        convt_row(x + (size_t)i * w, hw, tail, c_in, c_out, w, weight, yrow, tmp);
        if (rem)
            for (int co = 0; co < c_out; co++)
                for (int a = 0; a < 2; a++)
                    memcpy(yrow + (size_t)co * 4 * hw + (size_t)a * W2 + 2 * full,
                           tmp + (size_t)co * 64 + a * 32, sizeof(float) * 2 * rem);
    }
    free(buf);
    return OODSEG_OK;
}
