// Resizes: PyTorch F.interpolate for feature maps, and bit-exact copies of the image resizes of
// the reference pipelines (OpenCV 4.6 cv2.resize INTER_LINEAR, Pillow 9.4 Image.resize BILINEAR).
// The image resizes reproduce each library's own arithmetic (coefficient rounding, operation
// order, fixed-point shifts, special cases), because the golden inputs were made with them and a
// one-level difference in a uint8 pixel already shows in the logits.
#include "nn.h"
#include "simd.h"
#include "avx512.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

// ---- PyTorch --------------------------------------------------------------------------------

// One axis of upsample_bilinear2d (aten/src/ATen/native/UpSample.h): the scale and the source
// index are float (opmath of float), the same expressions in the same order. PyTorch's AVX2
// kernels are compiled by GCC with FMA contraction, so scale*(o+0.5) - 0.5 is one fused
// multiply-add there; fmaf reproduces it (the golden tiny-t logits come out bit-exact).
static void torch_linear_at(int in, int out, int align_corners, int o, int *i0, int *i1,
                            float *l0, float *l1) {
    if (in == out) {   // PyTorch's "scale_factor = 1, simply copy"
        *i0 = *i1 = o;
        *l0 = 1.0f;
        *l1 = 0.0f;
        return;
    }
    float src;
    if (align_corners) {
        float scale = out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
        src = scale * (float)o;
    } else {
        float scale = (float)in / (float)out;
        src = fmaf(scale, (float)o + 0.5f, -0.5f);
        if (src < 0) src = 0;
    }
    int a = (int)src;
    if (a > in - 1) a = in - 1;
    float lam = src - (float)a;
    if (lam < 0) lam = 0;
    if (lam > 1) lam = 1;
    *i0 = a;
    *i1 = a + (a < in - 1 ? 1 : 0);
    *l1 = lam;
    *l0 = 1.0f - lam;
}

// One source row interpolated along x: t[ox] = fma(p[b0], w0, p[b1] * w1), ATen's order. fmaf
// is one rounding in either clone (an instruction in the AVX-512 one, libm's in the default).
NN_TARGET_CLONES
void resize_bilinear_hrow(const float *p, const int *xi, const float *xl, int ow, float *t) {
    for (int ox = 0; ox < ow; ox++)
        t[ox] = fmaf(p[xi[2 * ox]], xl[2 * ox], p[xi[2 * ox + 1]] * xl[2 * ox + 1]);
}

void resize_bilinear_table(int in, int out, int align_corners, int *idx, float *lam) {
    for (int o = 0; o < out; o++)
        torch_linear_at(in, out, align_corners, o, &idx[2 * o], &idx[2 * o + 1], &lam[2 * o], &lam[2 * o + 1]);
}

// Output row from two x-interpolated source rows: fma(t0, a0, t1 * a1), ATen's order. out does not
// overlap t0 or t1. Without the simd pragma GCC kept this loop scalar (it cannot rule the overlap
// out), one float stored per cycle at best: 9.6 ms of ESPNetv2's forward at 1024x512, and 30 %
// more or less with the code's alignment. Each lane is the same fma as the scalar loop's.
NN_TARGET_CLONES
void resize_bilinear_vmix(const float *t0, const float *t1, float a0, float a1, int ow, float *out) {
    #pragma omp simd
    for (int ox = 0; ox < ow; ox++) out[ox] = fmaf(t0[ox], a0, t1[ox] * a1);
}

// ---- x-interpolation 16 outputs at a time (AVX-512) -------------------------------------------
// resize_bilinear_hrow gathers its two inputs per output one by one. When the 16 outputs of a
// block read inputs within 32 consecutive ones (any up-sampling, and down-sampling to at least
// about half), those are two vector loads and each output's pair two permutes of them, with the
// same fma(p0, l0, p1 * l1): the same bits. A block's tables: its first input, each lane's two
// offsets from it and two weights.
typedef struct hrow_blocks {
    int nb;           // blocks of 16 outputs
    int *base;        // (nb)
    int *off;         // (nb, 2, 16): xi[2 o] - base, xi[2 o + 1] - base (0 past the row's end)
    float *lam;       // (nb, 2, 16): xl[2 o], xl[2 o + 1]
} hrow_blocks;

static int hrow_blocks_make(const int *xi, const float *xl, int ow, hrow_blocks *hb) {
    memset(hb, 0, sizeof *hb);
    if (!nn_cpu_avx512f()) return 0;
    hb->nb = (ow + 15) / 16;
    hb->base = malloc(sizeof(int) * hb->nb);
    hb->off = malloc(sizeof(int) * 32 * hb->nb);
    hb->lam = malloc(sizeof(float) * 32 * hb->nb);
    int ok = hb->base && hb->off && hb->lam;
    for (int b = 0; ok && b < hb->nb; b++) {
        int lo = xi[32 * b];
        for (int l = 0; l < 16 && 16 * b + l < ow; l++) {
            const int o = 16 * b + l;
            if (xi[2 * o] < lo) lo = xi[2 * o];
            if (xi[2 * o + 1] < lo) lo = xi[2 * o + 1];
        }
        hb->base[b] = lo;
        for (int l = 0; l < 16; l++) {
            const int o = 16 * b + l, in = o < ow;
            for (int k = 0; k < 2; k++) {
                const int d = in ? xi[2 * o + k] - lo : 0;
                if (d > 31) ok = 0;
                hb->off[32 * b + 16 * k + l] = d;
                hb->lam[32 * b + 16 * k + l] = in ? xl[2 * o + k] : 0.0f;
            }
        }
    }
    if (!ok) {
        free(hb->base), free(hb->off), free(hb->lam);
        memset(hb, 0, sizeof *hb);
    }
    return ok;
}

static void hrow_blocks_free(hrow_blocks *hb) { free(hb->base), free(hb->off), free(hb->lam); }

// t[0..ow) from source row p (w inputs), as resize_bilinear_hrow.
__attribute__((target("avx512f")))
static void hrow_blocks_run(const float *p, int w, const hrow_blocks *hb, int ow, float *t) {
    for (int b = 0; b < hb->nb; b++) {
        const int base = hb->base[b];
        __m512 lo, hi;
        nn_load32(p + base, w - base, &lo, &hi);
        const __m512 a = _mm512_permutex2var_ps(lo, _mm512_loadu_si512(hb->off + 32 * b), hi);
        const __m512 c = _mm512_permutex2var_ps(lo, _mm512_loadu_si512(hb->off + 32 * b + 16), hi);
        const __m512 v = _mm512_fmadd_ps(a, _mm512_loadu_ps(hb->lam + 32 * b), _mm512_mul_ps(c, _mm512_loadu_ps(hb->lam + 32 * b + 16)));
        _mm512_mask_storeu_ps(t + 16 * b, nn_lanes(ow - 16 * b), v);
    }
}

#define RESIZE_ROWS 64   // output rows per work item: fixed, so results never depend on threads

void resize_bilinear(const nn_ctx *ctx, const float *x, int c, int h, int w, float *y, int oh, int ow,
                     int align_corners) {
    // Tables of the source columns/weights and of the source rows; each source row is
    // interpolated along x once per work item and reused by every output row that reads it
    // (up-sampling x2 reads each twice). The values are those of the direct formula, bit for bit.
    int *xi = malloc(sizeof(int) * 2 * (size_t)ow);
    float *xl = malloc(sizeof(float) * 2 * (size_t)ow);
    int *yi = malloc(sizeof(int) * 2 * (size_t)oh);
    float *yl = malloc(sizeof(float) * 2 * (size_t)oh);
    if (!xi || !xl || !yi || !yl) {
        // no memory for the tables (this function has no error path): the direct formula
        free(xi); free(xl); free(yi); free(yl);
        int64_t rows = (int64_t)c * oh;
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
        for (int64_t r = 0; r < rows; r++) {
            int ch = (int)(r / oh), oy = (int)(r % oh), y0, y1, b0, b1;
            float a0, a1, w0, w1;
            torch_linear_at(h, oh, align_corners, oy, &y0, &y1, &a0, &a1);
            const float *p0 = x + ((size_t)ch * h + y0) * w, *p1 = x + ((size_t)ch * h + y1) * w;
            for (int ox = 0; ox < ow; ox++) {
                torch_linear_at(w, ow, align_corners, ox, &b0, &b1, &w0, &w1);
                float t0 = fmaf(p0[b0], w0, p0[b1] * w1), t1 = fmaf(p1[b0], w0, p1[b1] * w1);
                y[(size_t)r * ow + ox] = fmaf(t0, a0, t1 * a1);
            }
        }
        return;
    }
    resize_bilinear_table(w, ow, align_corners, xi, xl);
    resize_bilinear_table(h, oh, align_corners, yi, yl);
    hrow_blocks hb;
    const int blocked = hrow_blocks_make(xi, xl, ow, &hb);
    int blocks = (oh + RESIZE_ROWS - 1) / RESIZE_ROWS;
    int64_t items = (int64_t)c * blocks;
#pragma omp parallel num_threads(ctx->threads)
    {
        // two cached x-interpolated rows (ow floats each) and the source rows they hold
        float *buf = malloc(sizeof(float) * 2 * (size_t)ow);
#pragma omp for schedule(static)
        for (int64_t it = 0; it < items; it++) {
            int ch = (int)(it / blocks), oy0 = (int)(it % blocks) * RESIZE_ROWS;
            int oy1 = oy0 + RESIZE_ROWS < oh ? oy0 + RESIZE_ROWS : oh;
            const float *xc = x + (size_t)ch * h * w;
            int held[2] = {-1, -1};
            for (int oy = oy0; oy < oy1; oy++) {
                int y0 = yi[2 * oy], y1 = yi[2 * oy + 1];
                float a0 = yl[2 * oy], a1 = yl[2 * oy + 1];
                float *q = y + ((size_t)ch * oh + oy) * ow;
                if (!buf) {   // no row cache: interpolate both rows per output row
                    for (int ox = 0; ox < ow; ox++) {
                        const float *p0 = xc + (size_t)y0 * w, *p1 = xc + (size_t)y1 * w;
                        float t0 = fmaf(p0[xi[2 * ox]], xl[2 * ox], p0[xi[2 * ox + 1]] * xl[2 * ox + 1]);
                        float t1 = fmaf(p1[xi[2 * ox]], xl[2 * ox], p1[xi[2 * ox + 1]] * xl[2 * ox + 1]);
                        q[ox] = fmaf(t0, a0, t1 * a1);
                    }
                    continue;
                }
                float *t[2];
                int need[2] = {y0, y1};
                for (int k = 0; k < 2; k++) {
                    int slot = held[0] == need[k] ? 0 : held[1] == need[k] ? 1 : -1;
                    if (slot < 0) {
                        // evict the slot the other needed row is not in
                        slot = (k == 1 && t[0] == buf) ? 1 : (k == 1 ? 0 : (held[1] == need[1] ? 0 : 1));
                        if (blocked) hrow_blocks_run(xc + (size_t)need[k] * w, w, &hb, ow, buf + (size_t)slot * ow);
                        else resize_bilinear_hrow(xc + (size_t)need[k] * w, xi, xl, ow, buf + (size_t)slot * ow);
                        held[slot] = need[k];
                    }
                    t[k] = buf + (size_t)slot * ow;
                }
                resize_bilinear_vmix(t[0], t[1], a0, a1, ow, q);
            }
        }
        free(buf);
    }
    if (blocked) hrow_blocks_free(&hb);
    free(xi); free(xl); free(yi); free(yl);
}

void resize_nearest_i32(const nn_ctx *ctx, const int32_t *x, int h, int w, int32_t *y, int oh, int ow) {
    float sy = (float)h / (float)oh, sx = (float)w / (float)ow;
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (int oy = 0; oy < oh; oy++) {
        int iy = (int)floorf((float)oy * sy);
        if (iy > h - 1) iy = h - 1;
        for (int ox = 0; ox < ow; ox++) {
            int ix = (int)floorf((float)ox * sx);
            if (ix > w - 1) ix = w - 1;
            y[(size_t)oy * ow + ox] = x[(size_t)iy * w + ix];
        }
    }
}

// ---- OpenCV 4.6 INTER_LINEAR ------------------------------------------------------------------
// hal::resize: inv_scale = dst/src (double), scale = 1/inv_scale, f = (float)((d+0.5)*scale-0.5),
// s = floor(f), f -= s. Along x a source index outside the image is clamped with f = 0; along y
// the weights keep the unclamped f and only the row fetch is clamped.

#define CV_COEF_BITS 11
#define CV_COEF_SCALE (1 << CV_COEF_BITS)

typedef struct cv_axis { int s; float f; } cv_axis;

static cv_axis cv_coord(int d, int in, int out, int clamp) {
    double inv_scale = (double)out / in;
    double scale = 1. / inv_scale;
    float f = (float)((d + 0.5) * scale - 0.5);
    int s = (int)floorf(f);
    f -= (float)s;
    cv_axis a = { s, f };
    if (clamp) {
        if (s < 0) { a.s = 0; a.f = 0; }
        if (a.s >= in - 1) { a.s = in - 1; a.f = 0; }
    }
    return a;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// cvRound of a float: round half to even (lrintf under the default rounding mode).
static short cv_round_short(float v) {
    long r = lrintf(v);
    return (short)(r < -32768 ? -32768 : (r > 32767 ? 32767 : r));
}

// 2x down-scaling in both directions: OpenCV switches INTER_LINEAR to its fast INTER_AREA path.
static int cv_is_area2(int h, int w, int oh, int ow) {
    double sx = 1. / ((double)ow / w), sy = 1. / ((double)oh / h);
    return sx == 2.0 && sy == 2.0;
}

static void cv_area2_f32(const nn_ctx *ctx, const float *src, int h, int w, int c, float *dst, int oh, int ow) {
    (void)h;
    int wd = ow * c;
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (int dy = 0; dy < oh; dy++) {
        const float *S0 = src + (size_t)(2 * dy) * w * c, *S1 = S0 + (size_t)w * c;
        float *D = dst + (size_t)dy * wd;
        int dx = 0;
        // ResizeAreaFastVec_SIMD_32f (SSE, 4 lanes) handles cn 1 and 4 as (a+b + (c+d)) * 0.25;
        // everything else goes through the scalar loop, ((a+b)+c)+d then * 0.25.
        if (c == 1 || c == 4)
            for (; dx <= wd - 4; dx++) {
                int i = (dx / c) * 2 * c + dx % c;
                D[dx] = ((S0[i] + S0[i + c]) + (S1[i] + S1[i + c])) * 0.25f;
            }
        for (; dx < wd; dx++) {
            int i = (dx / c) * 2 * c + dx % c;
            float sum = 0;
            sum += S0[i] + S0[i + c] + S1[i] + S1[i + c];
            D[dx] = sum * 0.25f;
        }
    }
}

static void cv_area2_u8(const nn_ctx *ctx, const uint8_t *src, int h, int w, int c, uint8_t *dst, int oh, int ow) {
    (void)h;
    int wd = ow * c;
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (int dy = 0; dy < oh; dy++) {
        const uint8_t *S0 = src + (size_t)(2 * dy) * w * c, *S1 = S0 + (size_t)w * c;
        uint8_t *D = dst + (size_t)dy * wd;
        for (int dx = 0; dx < wd; dx++) {
            int i = (dx / c) * 2 * c + dx % c;
            int sum = S0[i] + S0[i + c] + S1[i] + S1[i + c];
            if (c == 1 || c == 3 || c == 4) D[dx] = (uint8_t)((sum + 2) >> 2);
            else D[dx] = (uint8_t)clampi((int)lrintf((float)sum * 0.25f), 0, 255);
        }
    }
}

void resize_cv_linear_f32(const nn_ctx *ctx, const float *src, int h, int w, int c, float *dst, int oh, int ow) {
    if (oh == h && ow == w) {   // cv::resize copies when the size is unchanged
        memcpy(dst, src, sizeof(float) * (size_t)h * w * c);
        return;
    }
    if (cv_is_area2(h, w, oh, ow)) { cv_area2_f32(ctx, src, h, w, c, dst, oh, ow); return; }
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (int dy = 0; dy < oh; dy++) {
        cv_axis ay = cv_coord(dy, h, oh, 0);
        float b0 = 1.f - ay.f, b1 = ay.f;
        const float *S0 = src + (size_t)clampi(ay.s, 0, h - 1) * w * c;
        const float *S1 = src + (size_t)clampi(ay.s + 1, 0, h - 1) * w * c;
        float *D = dst + (size_t)dy * ow * c;
        for (int dx = 0; dx < ow; dx++) {
            cv_axis ax = cv_coord(dx, w, ow, 1);
            float a0 = 1.f - ax.f, a1 = ax.f;
            int sx = ax.s * c;
            // The right border (source index clamped to w-1) is a single tap S*1 in OpenCV.
            int two = ax.s < w - 1;
            for (int k = 0; k < c; k++) {
                float h0, h1;
                if (two) {
                    h0 = S0[sx + k] * a0 + S0[sx + c + k] * a1;
                    h1 = S1[sx + k] * a0 + S1[sx + c + k] * a1;
                } else {
                    h0 = S0[sx + k];
                    h1 = S1[sx + k];
                }
                D[dx * c + k] = h0 * b0 + h1 * b1;
            }
        }
    }
}

int resize_cv_linear_u8(const nn_ctx *ctx, const uint8_t *src, int h, int w, int c, uint8_t *dst, int oh, int ow,
                        err *e) {
    if (oh == h && ow == w) {
        memcpy(dst, src, (size_t)h * w * c);
        return OODSEG_OK;
    }
    if (cv_is_area2(h, w, oh, ow)) { cv_area2_u8(ctx, src, h, w, c, dst, oh, ow); return OODSEG_OK; }
    int wd = ow * c;
    int *xofs = err_malloc(e, sizeof(int) * (size_t)ow, "resize x offsets");
    short *alpha = err_malloc(e, sizeof(short) * 2 * (size_t)ow, "resize x weights");
    int nth = ctx->threads;
    int *rows = err_malloc(e, sizeof(int) * 2 * (size_t)wd * nth, "resize row buffers");
    if (!xofs || !alpha || !rows) {
        free(xofs); free(alpha); free(rows);
        return OODSEG_E_NOMEM;
    }
    for (int dx = 0; dx < ow; dx++) {
        cv_axis ax = cv_coord(dx, w, ow, 1);
        xofs[dx] = ax.s;
        alpha[2 * dx] = cv_round_short((1.f - ax.f) * CV_COEF_SCALE);
        alpha[2 * dx + 1] = cv_round_short(ax.f * CV_COEF_SCALE);
    }
#pragma omp parallel num_threads(nth)
    {
        int *R0 = rows + (size_t)2 * wd * omp_get_thread_num(), *R1 = R0 + wd;
#pragma omp for schedule(static)
        for (int dy = 0; dy < oh; dy++) {
            cv_axis ay = cv_coord(dy, h, oh, 0);
            int b0 = cv_round_short((1.f - ay.f) * CV_COEF_SCALE);
            int b1 = cv_round_short(ay.f * CV_COEF_SCALE);
            const uint8_t *S[2] = { src + (size_t)clampi(ay.s, 0, h - 1) * w * c,
                                    src + (size_t)clampi(ay.s + 1, 0, h - 1) * w * c };
            int *R[2] = { R0, R1 };
            for (int r = 0; r < 2; r++)
                for (int dx = 0; dx < ow; dx++) {
                    int sx = xofs[dx] * c, a0 = alpha[2 * dx], a1 = alpha[2 * dx + 1];
                    for (int k = 0; k < c; k++)
                        R[r][dx * c + k] = xofs[dx] < w - 1
                            ? S[r][sx + k] * a0 + S[r][sx + c + k] * a1
                            : S[r][sx + k] * CV_COEF_SCALE;
                }
            uint8_t *D = dst + (size_t)dy * wd;
            // VResizeLinear<uchar, int, short>: both the SIMD body and the scalar tail drop 4 bits,
            // keep the high half of the 16x16 product, then round off the last 2 bits.
            for (int x = 0; x < wd; x++) {
                int v = (((b0 * (R0[x] >> 4)) >> 16) + ((b1 * (R1[x] >> 4)) >> 16) + 2) >> 2;
                D[x] = (uint8_t)clampi(v, 0, 255);
            }
        }
    }
    free(xofs); free(alpha); free(rows);
    return OODSEG_OK;
}

// ---- Pillow 9.4 ImagingResample, bilinear -----------------------------------------------------
// libImaging/Resample.c: precompute_coeffs (double), normalize_coeffs_8bpc (PRECISION_BITS = 22),
// horizontal pass then vertical pass, each rounding and clipping to 8 bits.

#define PIL_PRECISION_BITS (32 - 8 - 2)

static double pil_bilinear(double x) {
    if (x < 0.0) x = -x;
    if (x < 1.0) return 1.0 - x;
    return 0.0;
}

// Returns ksize; bounds: (min, count) per output; kk: ksize ints per output.
static int pil_coeffs(int in_size, int out_size, int **boundsp, int **kkp, err *e) {
    float in0 = 0.f, in1 = (float)in_size;
    double scale = (double)(in1 - in0) / out_size, filterscale = scale;
    if (filterscale < 1.0) filterscale = 1.0;
    double support = 1.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *pre = err_malloc(e, sizeof(double) * (size_t)out_size * ksize, "resize coefficients");
    int *kk = err_malloc(e, sizeof(int) * (size_t)out_size * ksize, "resize coefficients");
    int *bounds = err_malloc(e, sizeof(int) * 2 * (size_t)out_size, "resize bounds");
    if (!pre || !kk || !bounds) {
        free(pre); free(kk); free(bounds);
        return -1;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = in0 + (xx + 0.5) * scale;
        double ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double *k = pre + (size_t)xx * ksize;
        int x;
        for (x = 0; x < xmax; x++) {
            double wv = pil_bilinear((x + xmin - center + 0.5) * ss);
            k[x] = wv;
            ww += wv;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        for (; x < ksize; x++) k[x] = 0;
        bounds[2 * xx] = xmin;
        bounds[2 * xx + 1] = xmax;
    }
    for (size_t i = 0; i < (size_t)out_size * ksize; i++)
        kk[i] = pre[i] < 0 ? (int)(-0.5 + pre[i] * (1 << PIL_PRECISION_BITS))
                           : (int)(0.5 + pre[i] * (1 << PIL_PRECISION_BITS));
    free(pre);
    *boundsp = bounds;
    *kkp = kk;
    return ksize;
}

static uint8_t pil_clip8(int v) {
    v >>= PIL_PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Horizontal pass over rows [y0, y0 + nrows) of src (w wide) into out (ow wide, nrows rows).
static void pil_horizontal(const nn_ctx *ctx, const uint8_t *src, int w, int c, int y0, int nrows, uint8_t *out,
                           int ow, int ksize, const int *bounds, const int *kk) {
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (int yy = 0; yy < nrows; yy++) {
        const uint8_t *S = src + (size_t)(yy + y0) * w * c;
        uint8_t *D = out + (size_t)yy * ow * c;
        for (int xx = 0; xx < ow; xx++) {
            int xmin = bounds[2 * xx], xmax = bounds[2 * xx + 1];
            const int *k = kk + (size_t)xx * ksize;
            for (int ch = 0; ch < c; ch++) {
                int ss = 1 << (PIL_PRECISION_BITS - 1);
                for (int x = 0; x < xmax; x++) ss += S[(x + xmin) * c + ch] * k[x];
                D[xx * c + ch] = pil_clip8(ss);
            }
        }
    }
}

static void pil_vertical(const nn_ctx *ctx, const uint8_t *src, int w, int c, uint8_t *out, int oh, int ksize,
                         const int *bounds, const int *kk) {
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (int yy = 0; yy < oh; yy++) {
        int ymin = bounds[2 * yy], ymax = bounds[2 * yy + 1];
        const int *k = kk + (size_t)yy * ksize;
        uint8_t *D = out + (size_t)yy * w * c;
        for (int i = 0; i < w * c; i++) {
            int ss = 1 << (PIL_PRECISION_BITS - 1);
            for (int y = 0; y < ymax; y++) ss += src[(size_t)(y + ymin) * w * c + i] * k[y];
            D[i] = pil_clip8(ss);
        }
    }
}

int resize_pil_bilinear_u8(const nn_ctx *ctx, const uint8_t *src, int h, int w, int c, uint8_t *dst, int oh, int ow,
                           err *e) {
    int need_h = ow != w, need_v = oh != h;
    if (!need_h && !need_v) {   // Image.resize returns a copy
        memcpy(dst, src, (size_t)h * w * c);
        return OODSEG_OK;
    }
    int *bh = NULL, *kh = NULL, *bv = NULL, *kv = NULL, kszh = 0, kszv = 0;
    uint8_t *tmp = NULL;
    int rc = OODSEG_E_NOMEM;
    if (need_h && (kszh = pil_coeffs(w, ow, &bh, &kh, e)) < 0) goto done;
    if (need_v && (kszv = pil_coeffs(h, oh, &bv, &kv, e)) < 0) goto done;
    if (need_h && need_v) {
        // Only the source rows the vertical pass reads go through the horizontal pass.
        int first = bv[0], last = bv[2 * oh - 2] + bv[2 * oh - 1];
        for (int i = 0; i < oh; i++) bv[2 * i] -= first;
        tmp = err_malloc(e, (size_t)(last - first) * ow * c, "resize intermediate image");
        if (!tmp) goto done;
        pil_horizontal(ctx, src, w, c, first, last - first, tmp, ow, kszh, bh, kh);
        pil_vertical(ctx, tmp, ow, c, dst, oh, kszv, bv, kv);
    } else if (need_h) {
        pil_horizontal(ctx, src, w, c, 0, h, dst, ow, kszh, bh, kh);
    } else {
        pil_vertical(ctx, src, w, c, dst, oh, kszv, bv, kv);
    }
    rc = OODSEG_OK;
done:
    free(bh); free(kh); free(bv); free(kv); free(tmp);
    return rc;
}
