// Winograd F(4,3) (nn/winograd.c) against a double-precision direct conv and the fp32 im2col path,
// on UperNet's layer shapes and on tiny maps (edge tiles, 1x1 images, one channel); bit-identical
// results for 1, 2 and 3 threads, prepared or not, fused PReLU or not; the dispatch (wide 3x3s
// only, ESPNet's convs untouched); and the InternImage goldens with every 3x3 stride-1 conv forced
// through Winograd.
//
// Error bound (stated in nn/winograd.c): per output, |y - y_exact| <= WG_BOUND * sum_i |w_i x_i|.
// Measured worst ratio on these cases: 2.6e-6 (im2col: 2e-7); one wrong entry of B^T, G or A^T
// gives 1.4e-3 .. 5e-2 (checked by hand: 1/24 -> 1/25, 5 -> 4, 8 -> 7). The RMS of the error is
// also held below WG_RMS_BOUND times the RMS of the output (measured <= 4.1e-6).
#include "test.h"
#include "../nn/nn.h"
#include "../models/internimage.h"
#include <stdlib.h>
#include <string.h>

#define WG_BOUND 1e-5
#define WG_RMS_BOUND 2e-5

static nn_ctx T;

static float *rand_buf(int64_t n, float lo, float hi) {
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * 0.5f * (t_frand() + 1.0f);
    return p;
}

typedef struct { int ci, co, pad, h, w, bias; } wcase;

// ref and mag (co, ho, wo): the exact sum (double) and sum |terms| of each output.
static void direct_ref(const wcase *c, const float *x, const float *wt, const float *b, int ho, int wo,
                       double *ref, double *mag) {
    #pragma omp parallel for schedule(static) num_threads(T.threads)
    for (int o = 0; o < c->co; o++)
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++) {
                double s = b ? b[o] : 0.0, m = b ? fabs(b[o]) : 0.0;
                for (int i = 0; i < c->ci; i++)
                    for (int ky = 0; ky < 3; ky++) {
                        int iy = oy - c->pad + ky;
                        if (iy < 0 || iy >= c->h) continue;
                        for (int kx = 0; kx < 3; kx++) {
                            int ix = ox - c->pad + kx;
                            if (ix < 0 || ix >= c->w) continue;
                            double t = (double)wt[((size_t)(o * c->ci + i) * 3 + ky) * 3 + kx] *
                                       x[((size_t)i * c->h + iy) * c->w + ix];
                            s += t, m += fabs(t);
                        }
                    }
                ref[((size_t)o * ho + oy) * wo + ox] = s;
                mag[((size_t)o * ho + oy) * wo + ox] = m;
            }
}

// Winograd (forced) and im2col against the direct reference: worst |err|/mag and RMS error over
// RMS output. x in [xlo, 1): 0 for post-ReLU maps like UperNet's.
static int check_case(const wcase *c, float xlo, double *worst_wg, double *worst_gemm) {
    err e = {0};
    int ho = conv2d_out_size(c->h, 3, 1, c->pad, 1), wo = conv2d_out_size(c->w, 3, 1, c->pad, 1);
    size_t n = (size_t)c->co * ho * wo;
    float *x = rand_buf((int64_t)c->ci * c->h * c->w, xlo, 1.0f);
    float *wt = rand_buf((int64_t)c->co * c->ci * 9, -0.5f, 0.5f);
    float *b = c->bias ? rand_buf(c->co, -1.0f, 1.0f) : NULL;
    float *yw = malloc(sizeof(float) * n), *yg = malloc(sizeof(float) * n);
    double *ref = malloc(sizeof(double) * n), *mag = malloc(sizeof(double) * n);
    conv2d cv = {c->ci, c->co, 3, 1, c->pad, 1, 1, wt, b, 0, NULL};
    T.conv_winograd = 2;
    int ok = conv2d_forward(&T, &cv, x, c->h, c->w, yw, &e) == OODSEG_OK;
    T.conv_winograd = 1, T.conv_im2col = 1;
    ok = ok && conv2d_forward(&T, &cv, x, c->h, c->w, yg, &e) == OODSEG_OK;
    T.conv_im2col = 0;
    direct_ref(c, x, wt, b, ho, wo, ref, mag);
    double ww = 0, wg = 0, se = 0, sy = 0;
    for (size_t i = 0; i < n; i++) {
        double ew = fabs(yw[i] - ref[i]), eg = fabs(yg[i] - ref[i]), m = mag[i] + 1e-30;
        if (ew / m > ww) ww = ew / m;
        if (eg / m > wg) wg = eg / m;
        se += ew * ew, sy += ref[i] * ref[i];
        if (!(ew <= WG_BOUND * m + 1e-30)) ok = 0;   // NaN fails too
        if (ew != ew) ww = INFINITY;
    }
    double rms = n ? sqrt(se / (sy + 1e-300)) : 0;
    fprintf(stderr, "    ci %4d co %4d pad %d %3dx%-3d bias %d: worst |err|/sum|wx| winograd %.2e, "
            "im2col %.2e; rms err / rms y %.2e\n", c->ci, c->co, c->pad, c->h, c->w, c->bias, ww, wg, rms);
    ok = ok && rms <= WG_RMS_BOUND;
    *worst_wg = ww, *worst_gemm = wg;
    free(x); free(wt); free(b); free(yw); free(yg); free(ref); free(mag);
    return ok;
}

// UperNet's 3x3s (FPN 512 -> 512, fpn_bottleneck 2048 -> 512 halved to keep the test quick) at
// odd sizes that are not multiples of 4, pad 1, on post-ReLU inputs and on signed inputs.
TEST(winograd_upernet_shapes_within_bound) {
    static const wcase cases[] = {{512, 512, 1, 13, 11, 1}, {1024, 512, 1, 9, 14, 0}};
    for (int signed_x = 0; signed_x <= 1; signed_x++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            double ww, wg;
            CHECK(check_case(&cases[i], signed_x ? -1.0f : 0.0f, &ww, &wg),
                  "case %zu signed %d: worst %.3g > %.0e (im2col %.3g)", i, signed_x, ww, WG_BOUND, wg);
        }
}

// Edge tiles: maps smaller than a tile, 1x1 images, one channel, pads 0 and 2; several blocks with
// one starting mid-row (70x75: 342 tiles); c_out slices of unequal size (130 channels, 1 block).
TEST(winograd_small_and_edge_shapes) {
    static const wcase cases[] = {
        {1, 1, 1, 1, 1, 0},   {1, 1, 1, 2, 3, 1},  {3, 2, 0, 5, 4, 1},  {2, 3, 1, 4, 4, 0},
        {5, 7, 2, 3, 9, 1},   {1, 1, 1, 7, 1, 0},  {4, 4, 0, 6, 6, 1},  {3, 5, 1, 17, 18, 1},
        {1, 9, 3, 2, 2, 1},   {16, 16, 1, 70, 75, 1}, {8, 130, 1, 9, 10, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double ww, wg;
        CHECK(check_case(&cases[i], -1.0f, &ww, &wg), "case %zu: worst %.3g > %.0e", i, ww, WG_BOUND);
    }
}

// Input channels in chunks (V capped at 8 MiB: 300 channels x 256 tiles is two chunks), against
// the im2col path, with sum|w||x| from the same conv on |w| and |x|.
TEST(winograd_chunked_inputs_match_im2col) {
    err e = {0};
    int ci = 300, co = 64, h = 70, w = 70;
    size_t n = (size_t)co * h * w, nx = (size_t)ci * h * w, nw = (size_t)co * ci * 9;
    float *x = rand_buf((int64_t)nx, -1.0f, 1.0f), *wt = rand_buf((int64_t)nw, -0.5f, 0.5f);
    float *ax = malloc(sizeof(float) * nx), *aw = malloc(sizeof(float) * nw);
    for (size_t i = 0; i < nx; i++) ax[i] = fabsf(x[i]);
    for (size_t i = 0; i < nw; i++) aw[i] = fabsf(wt[i]);
    float *yw = malloc(sizeof(float) * n), *yg = malloc(sizeof(float) * n), *mag = malloc(sizeof(float) * n);
    conv2d cv = {ci, co, 3, 1, 1, 1, 1, wt, NULL, 0, NULL}, ca = {ci, co, 3, 1, 1, 1, 1, aw, NULL, 0, NULL};
    T.conv_winograd = 2;
    REQUIRE(conv2d_forward(&T, &cv, x, h, w, yw, &e) == OODSEG_OK, "%s", e.msg);
    T.conv_winograd = 1, T.conv_im2col = 1;
    REQUIRE(conv2d_forward(&T, &cv, x, h, w, yg, &e) == OODSEG_OK, "%s", e.msg);
    REQUIRE(conv2d_forward(&T, &ca, ax, h, w, mag, &e) == OODSEG_OK, "%s", e.msg);
    T.conv_im2col = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double r = fabs((double)yw[i] - yg[i]) / ((double)mag[i] + 1e-30);
        if (!(r <= worst)) worst = r;
    }
    fprintf(stderr, "    ci %d co %d %dx%d: worst |winograd - im2col| / sum|wx| %.2e\n", ci, co, h, w, worst);
    CHECK(worst <= WG_BOUND, "worst %.3g > %.0e", worst, WG_BOUND);
    free(x); free(wt); free(ax); free(aw); free(yw); free(yg); free(mag);
}

// 1, 2 and 3 threads, several blocks, slices and chunks, bias and PReLU: bit-identical; the same
// with the weights prepared once (conv2d_winograd_prepare) and transformed per call; and the fused
// PReLU equal to the conv then prelu_inplace bit for bit.
TEST(winograd_threads_prepare_prelu_bit_identical) {
    err e = {0};
    int ci = 260, co = 130, h = 37, w = 71;
    int64_t n = (int64_t)co * h * w;
    float *x = rand_buf((int64_t)ci * h * w, 0.0f, 1.0f), *wt = rand_buf((int64_t)co * ci * 9, -0.5f, 0.5f);
    float *b = rand_buf(co, -1.0f, 1.0f), *sl = rand_buf(co, 0.0f, 0.5f);
    float *y[4];
    for (int i = 0; i < 4; i++) y[i] = malloc(sizeof(float) * (size_t)n);
    conv2d cv = {ci, co, 3, 1, 1, 1, 1, wt, b, 0, NULL};
    for (int th = 1; th <= 3; th++) {
        nn_ctx_init(&T, th);
        T.conv_winograd = 2;   // not prepared: Winograd only when forced, weights transformed per call
        REQUIRE(conv2d_forward_prelu(&T, &cv, x, h, w, sl, y[th - 1], &e) == OODSEG_OK, "%s", e.msg);
    }
    T.conv_winograd = 1;   // prepared: the default takes it
    CHECK(!memcmp(y[0], y[1], sizeof(float) * (size_t)n), "1 vs 2 threads differ");
    CHECK(!memcmp(y[0], y[2], sizeof(float) * (size_t)n), "1 vs 3 threads differ");
    REQUIRE(conv2d_winograd_prepare(&cv, &e) == OODSEG_OK && cv.winograd_u, "%s", e.msg);
    REQUIRE(conv2d_forward_prelu(&T, &cv, x, h, w, sl, y[1], &e) == OODSEG_OK, "%s", e.msg);
    CHECK(!memcmp(y[0], y[1], sizeof(float) * (size_t)n), "prepared differs from per-call weights");
    REQUIRE(conv2d_forward(&T, &cv, x, h, w, y[3], &e) == OODSEG_OK, "%s", e.msg);
    prelu_inplace(&T, y[3], co, (int64_t)h * w, sl);
    CHECK(!memcmp(y[0], y[3], sizeof(float) * (size_t)n), "fused PReLU differs from the two calls");
    conv2d_free(&cv);   // frees the Winograd weights only (weight and bias are borrowed)
    CHECK(!cv.winograd_u);
    nn_ctx_init(&T, 2);
    for (int i = 0; i < 4; i++) free(y[i]);
    free(x); free(wt); free(b); free(sl);
}

// conv2d_winograd_forward_cat reads a concatenation of maps at the input size and smaller ones
// upsampled on the fly (UperNet's fpn_bottleneck): bit for bit the conv of the concatenation that
// resize_bilinear stores, for 1, 2 and 3 threads. The scales are 1, 2, 4 and odd ones (70 from 23,
// 9, 1), and the input-channel chunks (227 channels at 70x70) end inside parts.
TEST(winograd_concat_parts_equal_stored_concat) {
    err e = {0};
    enum { NP = 5 };
    const int H = 70, W = 70, co = 24, pc[NP] = {100, 60, 70, 50, 20}, ph[NP] = {70, 35, 23, 9, 1},
              pw[NP] = {70, 35, 17, 18, 1};
    int ci = 0;
    for (int k = 0; k < NP; k++) ci += pc[k];
    size_t nx = (size_t)ci * H * W, n = (size_t)co * H * W;
    float *cat = malloc(sizeof(float) * nx), *part[NP];
    conv_cat_part in[NP];
    float *dst = cat;
    for (int k = 0; k < NP; k++) {
        part[k] = rand_buf((int64_t)pc[k] * ph[k] * pw[k], -1.0f, 1.0f);
        in[k] = (conv_cat_part){part[k], pc[k], ph[k], pw[k]};
        resize_bilinear(&T, part[k], pc[k], ph[k], pw[k], dst, H, W, 0);
        dst += (size_t)pc[k] * H * W;
    }
    float *wt = rand_buf((int64_t)co * ci * 9, -0.5f, 0.5f), *b = rand_buf(co, -1.0f, 1.0f);
    float *ref = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    conv2d cv = {ci, co, 3, 1, 1, 1, 1, wt, b, 0, NULL};
    REQUIRE(conv2d_winograd_prepare(&cv, &e) == OODSEG_OK, "%s", e.msg);
    REQUIRE(conv2d_winograd_forward(&T, &cv, cat, H, W, NULL, ref, H, W, &e) == OODSEG_OK, "%s", e.msg);
    for (int th = 1; th <= 3; th++) {
        nn_ctx_init(&T, th);
        memset(y, 0xff, sizeof(float) * n);
        REQUIRE(conv2d_winograd_forward_cat(&T, &cv, in, NP, H, W, y, &e) == OODSEG_OK, "%s", e.msg);
        CHECK(!memcmp(ref, y, sizeof(float) * n), "%d threads: the concat read on the fly differs", th);
    }
    nn_ctx_init(&T, 2);
    // Parts that do not add up to the conv's inputs are an internal error, not a wrong read.
    in[NP - 1].c = 19;
    CHECK(conv2d_winograd_forward_cat(&T, &cv, in, NP, H, W, y, &e) == OODSEG_E_INTERNAL);
    conv2d_free(&cv);
    for (int k = 0; k < NP; k++) free(part[k]);
    free(cat); free(wt); free(b); free(ref); free(y);
}

// Which convs take Winograd: by default the wide 3x3 stride-1 ones only; conv_winograd 0 and
// conv_im2col 1 turn it off. Told apart by bits: each path rounds differently.
static void run(const conv2d *c, int wg, int im2col, const float *x, int h, int w, float *y) {
    err e = {0};
    T.conv_winograd = wg, T.conv_im2col = im2col;
    if (conv2d_forward(&T, c, x, h, w, y, &e)) CHECK(0, "%s", e.msg);
    T.conv_winograd = 1, T.conv_im2col = 0;
}
TEST(winograd_dispatch) {
    int h = 19, w = 23;
    float *x = rand_buf(512 * h * w, -1.0f, 1.0f), *wt = rand_buf(512 * 512 * 9, -0.5f, 0.5f);
    size_t n = (size_t)512 * h * w;
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n), *c = malloc(sizeof(float) * n);
    conv2d wide = {512, 512, 3, 1, 1, 1, 1, wt, NULL, 0, NULL};
    // Not prepared: the default keeps the im2col path (the model did not pay for U).
    run(&wide, 1, 0, x, h, w, a);
    run(&wide, 0, 0, x, h, w, c);
    CHECK(!memcmp(a, c, sizeof(float) * n), "an unprepared 512 -> 512 3x3 took Winograd by default");
    err pe = {0};
    REQUIRE(conv2d_winograd_prepare(&wide, &pe) == OODSEG_OK, "%s", pe.msg);
    run(&wide, 1, 0, x, h, w, a);
    run(&wide, 2, 0, x, h, w, b);
    CHECK(!memcmp(a, b, sizeof(float) * n), "a prepared 512 -> 512 3x3 does not take Winograd by default");
    CHECK(memcmp(a, c, sizeof(float) * n), "conv_winograd 0 still runs Winograd");
    run(&wide, 2, 1, x, h, w, b);
    CHECK(!memcmp(b, c, sizeof(float) * n), "conv_im2col 1 does not override conv_winograd");
    // ESPNet's 3x3s (<= 32 output channels, or dilated, or strided) keep their path; narrow ones too.
    static const int narrow[][5] = {{25, 28, 1, 1, 1}, {25, 25, 2, 1, 2}, {131, 25, 1, 2, 1},
                                    {36, 20, 1, 1, 1}, {48, 64, 1, 1, 1}, {64, 48, 1, 1, 1}};
    for (size_t i = 0; i < sizeof narrow / sizeof narrow[0]; i++) {
        conv2d cv = {narrow[i][0], narrow[i][1], 3, narrow[i][3], narrow[i][2], narrow[i][4], 1, wt, NULL, 0, NULL};
        run(&cv, 1, 0, x, h, w, a);
        run(&cv, 0, 0, x, h, w, b);
        int ho = conv2d_out_size(h, 3, cv.stride, cv.pad, cv.dilation), wo = conv2d_out_size(w, 3, cv.stride, cv.pad, cv.dilation);
        CHECK(!memcmp(a, b, sizeof(float) * (size_t)cv.c_out * ho * wo), "%d -> %d took Winograd", cv.c_in, cv.c_out);
    }
    free(wide.winograd_u);
    free(x); free(wt); free(a); free(b); free(c);
}

// The tiny InternImage goldens (UperNet width 32: below the default threshold) with every 3x3
// stride-1 conv through Winograd: the head's tolerances hold (1e-4 tiny-t, 5e-4 tiny-l).
static void golden_forced(const char *variant, double tol) {
    char rel[128];
    snprintf(rel, sizeof rel, "golden/%s/model.safetensors", variant);
    ASSET_OR_SKIP(mrel, rel);
    char mp[1024];
    snprintf(mp, sizeof mp, "%s", mrel);
    snprintf(rel, sizeof rel, "golden/%s/io.safetensors", variant);
    ASSET_OR_SKIP(iopath, rel);
    err e = {0};
    ckpt *ck = NULL, *io = NULL;
    model *m = NULL;
    REQUIRE(!ckpt_open(mp, &ck, &e), "%s", e.msg);
    REQUIRE(!internimage_upernet_create(ck, NULL, &m, &e), "%s", e.msg);
    m->ctx = T;
    m->ctx.conv_winograd = 2;
    if (ckpt_open(iopath, &io, &e)) { model_close(m); REQUIRE(0, "%s", e.msg); }
    const ckpt_entry *in = ckpt_find(io, "input");
    tensor_list out = {0};
    int rc = in && in->ndim == 4 ? m->forward(m, in->f32, (int)in->shape[2], (int)in->shape[3], "*", &out, &e) : -1;
    CHECK(rc == OODSEG_OK, "%s", e.msg);
    static const char *names[] = {"decode.psp_bottleneck", "decode.fpn_bottleneck", "decode.logits", "logits", "aux.logits"};
    for (size_t k = 0; rc == OODSEG_OK && k < sizeof names / sizeof names[0]; k++) {
        const ckpt_entry *g = ckpt_find(io, names[k]);
        tensor *t = tl_get(&out, names[k]);
        CHECK(g && t && tensor_numel(t) == g->numel, "%s: %s missing or of another size", variant, names[k]);
        if (!g || !t || tensor_numel(t) != g->numel) continue;
        double d = t_max_abs_diff(t->data, g->f32, g->numel);
        fprintf(stderr, "    %s %-22s max |diff| %.2e (limit %.0e)\n", variant, names[k], d, tol);
        CHECK(d <= tol, "%s %s: %.3g > %.0e", variant, names[k], d, tol);
    }
    tl_free(&out);
    ckpt_close(io);
    model_close(m);
}
TEST(winograd_golden_tiny_t) { golden_forced("tiny-t", 1e-4); }
TEST(winograd_golden_tiny_l) { golden_forced("tiny-l", 5e-4); }

int main(int argc, char **argv) {
    (void)argc;
    nn_ctx_init(&T, 2);
    RUN(winograd_upernet_shapes_within_bound);
    RUN(winograd_small_and_edge_shapes);
    RUN(winograd_chunked_inputs_match_im2col);
    RUN(winograd_threads_prepare_prelu_bit_identical);
    RUN(winograd_concat_parts_equal_stored_concat);
    RUN(winograd_dispatch);
    RUN(winograd_golden_tiny_t);
    RUN(winograd_golden_tiny_l);
    return t_finish(argv[0]);
}
