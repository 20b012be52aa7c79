// The core ops of nn/ against straightforward double-precision references written here, on random
// data; the pooling ops also bit for bit against PyTorch's float summation order; the fused ops
// (conv + PReLU, BN + PReLU) bit for bit against the separate calls; and thread-count invariance
// (1, 2 and 3 threads must give bit-identical outputs). Convs run through every path: the direct
// kernel and, with it switched off, im2col + sgemm / 1x1 GEMM / the depthwise loop.
//
// Error bound for sums (conv, linear, conv transpose): |y - ref| <= 1e-5 * (sum_i |w_i x_i| + |b|),
// relative to the magnitude of the terms, which is what float32 accumulation can promise.
#include "test.h"
#include "../nn/nn.h"
#include "../nn/gemm_bf16.h"
#include "../nn/window.h"
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

// The context every op and model of this program runs on (main sets its threads).
static nn_ctx T;


// ---- conv2d -------------------------------------------------------------------------------------

typedef struct { int ci, co, k, s, p, d, g, h, w, bias; } conv_case;

// ref (co, ho, wo) and mag (co, ho, wo): the sum and the sum of |terms| of each output.
static void conv_ref(const conv_case *c, const float *x, const float *wt, const float *b,
                     double *ref, double *mag, int ho, int wo) {
    int cig = c->ci / c->g, cog = c->co / c->g;
    for (int o = 0; o < c->co; o++) {
        int g = o / cog;
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++) {
                double s = b ? b[o] : 0.0, m = b ? fabs(b[o]) : 0.0;
                for (int i = 0; i < cig; i++)
                    for (int ky = 0; ky < c->k; ky++)
                        for (int kx = 0; kx < c->k; kx++) {
                            int iy = oy * c->s - c->p + ky * c->d, ix = ox * c->s - c->p + kx * c->d;
                            if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w) continue;
                            double t = (double)wt[((o * cig + i) * c->k + ky) * c->k + kx] *
                                       x[((size_t)(g * cig + i) * c->h + iy) * c->w + ix];
                            s += t; m += fabs(t);
                        }
                ref[((size_t)o * ho + oy) * wo + ox] = s;
                mag[((size_t)o * ho + oy) * wo + ox] = m;
            }
    }
}

static const conv_case conv_cases[] = {
    //ci  co  k  s  p   d   g   h   w  bias
    {3, 16, 3, 2, 1, 1, 1, 17, 23, 0},     // ESPNet level1, odd size, stride 2
    {16, 16, 3, 2, 1, 1, 1, 16, 20, 1},    // even size, stride 2, bias
    {12, 16, 3, 1, 1, 1, 1, 20, 19, 0},    // d1
    {12, 12, 3, 1, 2, 2, 1, 37, 41, 0},    // d2
    {12, 12, 3, 1, 4, 4, 1, 37, 41, 0},    // d4
    {25, 25, 3, 1, 8, 8, 1, 23, 30, 0},    // d8
    {25, 25, 3, 1, 16, 16, 1, 22, 30, 0},  // d16, dilation wider than the map
    {12, 12, 3, 1, 16, 16, 1, 70, 70, 0},  // d16, several pixel tiles
    {64, 12, 1, 1, 0, 1, 1, 33, 35, 0},    // 1x1
    {64, 12, 1, 1, 0, 1, 1, 70, 70, 1},    // 1x1, several tiles, bias
    {64, 16, 1, 1, 0, 1, 4, 21, 19, 1},    // EESP proj: 1x1 groups 4
    {50, 10, 3, 1, 1, 1, 10, 13, 17, 0},   // EfficientPyrPool merge: groups P
    {20, 30, 3, 1, 1, 1, 10, 15, 14, 1},   // EfficientPWConv: groups gcd(20, 30)
    {20, 20, 3, 1, 1, 1, 20, 19, 23, 1},   // depthwise
    {20, 20, 3, 2, 2, 2, 20, 19, 23, 0},   // depthwise stride 2 dilation 2
    {8, 8, 3, 1, 4, 4, 8, 70, 70, 0},      // depthwise dilation 4
    {10, 10, 3, 1, 16, 16, 10, 9, 40, 0},  // depthwise dilation 16 > height
    {6, 9, 3, 1, 0, 1, 3, 11, 12, 1},      // groups 3, pad 0
    {131, 25, 3, 2, 1, 1, 1, 20, 26, 0},   // DownSamplerB(131, 128).c1
    {40, 24, 1, 2, 0, 1, 1, 15, 17, 1},    // 1x1 stride 2 (im2col path)
    {7, 5, 5, 1, 2, 1, 1, 12, 9, 1},       // k 5
    {96, 64, 3, 1, 1, 1, 1, 24, 24, 1},    // UperNet-like 3x3, long inner dimension
    {6, 4, 3, 3, 1, 1, 2, 10, 11, 0},      // stride 3
    {4, 6, 9, 1, 4, 1, 1, 12, 13, 1},      // k 9: beyond the direct kernel's taps
    {8, 8, 3, 2, 1, 1, 1, 70, 140, 0},     // stride 2, output wider than one pixel block
    {3, 3, 3, 1, 1, 1, 3, 1, 1, 1},        // 1x1 map
    {5, 5, 1, 1, 0, 1, 5, 9, 10, 1},       // depthwise 1x1 (direct kernel, k 1)
    {128, 32, 1, 1, 0, 1, 4, 16, 32, 0},   // ESPNetv2 proj on a small map
    {64, 128, 1, 1, 0, 1, 1, 40, 40, 1},   // wide 1x1 (wide tiles)
    {40, 160, 3, 1, 1, 1, 1, 23, 25, 1},   // wide 3x3 (wide tiles, one K chunk)
};

static int run_conv_case(const conv_case *c, double *worst) {
    err e = {0};
    int cig = c->ci / c->g;
    float *x = t_rand_buf((int64_t)c->ci * c->h * c->w, 1.0f);
    float *wt = t_rand_buf((int64_t)c->co * cig * c->k * c->k, 0.5f);
    float *b = c->bias ? t_rand_buf(c->co, 1.0f) : NULL;
    conv2d cv = {c->ci, c->co, c->k, c->s, c->p, c->d, c->g, wt, b, 0, NULL};
    int ho = conv2d_out_size(c->h, c->k, c->s, c->p, c->d), wo = conv2d_out_size(c->w, c->k, c->s, c->p, c->d);
    size_t n = (size_t)c->co * ho * wo;
    float *y = malloc(sizeof(float) * n);
    double *ref = malloc(sizeof(double) * n), *mag = malloc(sizeof(double) * n);
    int ok = conv2d_forward(&T, &cv, x, c->h, c->w, y, &e) == OODSEG_OK;
    conv_ref(c, x, wt, b, ref, mag, ho, wo);
    double wr = 0.0;
    for (size_t i = 0; ok && i < n; i++) {
        double r = fabs(y[i] - ref[i]) / (mag[i] + 1e-30);
        if (fabs(y[i] - ref[i]) > 1e-5 * mag[i] + 1e-30) ok = 0;
        if (r > wr) wr = r;
    }
    *worst = wr;
    free(x); free(wt); free(b); free(y); free(ref); free(mag);
    return ok;
}

// Every case through the default paths (direct kernel for few output channels per group) and again
// with the direct kernel off (im2col + sgemm, 1x1 GEMM, depthwise loop).
TEST(conv2d_matches_reference) {
    nn_ctx_init(&T, 2);
    for (int direct = 1; direct >= 0; direct--) {
        T.conv_im2col = !direct;
        for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
            const conv_case *c = &conv_cases[i];
            double worst;
            CHECK(run_conv_case(c, &worst), "direct %d case %zu: ci %d co %d k %d s %d p %d d %d "
                  "g %d %dx%d: worst |err|/sum|terms| %.3g > 1e-5", direct, i, c->ci, c->co, c->k,
                  c->s, c->p, c->d, c->g, c->h, c->w, worst);
        }
    }
    T.conv_im2col = 0;
}

// The fused PReLU epilogue equals conv2d_forward then prelu_inplace bit for bit, on every path.
TEST(conv2d_forward_prelu_equals_two_calls) {
    nn_ctx_init(&T, 2);
    err e = {0};
    for (int direct = 1; direct >= 0; direct--) {
        T.conv_im2col = !direct;
        for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
            const conv_case *c = &conv_cases[i];
            int cig = c->ci / c->g;
            float *x = t_rand_buf((int64_t)c->ci * c->h * c->w, 1.0f);
            float *wt = t_rand_buf((int64_t)c->co * cig * c->k * c->k, 0.5f);
            float *b = c->bias ? t_rand_buf(c->co, 1.0f) : NULL, *sl = t_rand_buf(c->co, 1.0f);
            conv2d cv = {c->ci, c->co, c->k, c->s, c->p, c->d, c->g, wt, b, 0, NULL};
            int ho = conv2d_out_size(c->h, c->k, c->s, c->p, c->d), wo = conv2d_out_size(c->w, c->k, c->s, c->p, c->d);
            size_t n = (size_t)c->co * ho * wo;
            float *y1 = malloc(sizeof(float) * n), *y2 = malloc(sizeof(float) * n);
            REQUIRE(conv2d_forward(&T, &cv, x, c->h, c->w, y1, &e) == OODSEG_OK);
            prelu_inplace(&T, y1, c->co, (int64_t)ho * wo, sl);
            REQUIRE(conv2d_forward_prelu(&T, &cv, x, c->h, c->w, sl, y2, &e) == OODSEG_OK);
            CHECK(memcmp(y1, y2, sizeof(float) * n) == 0, "direct %d case %zu differs", direct, i);
            free(x); free(wt); free(b); free(sl); free(y1); free(y2);
        }
    }
    T.conv_im2col = 0;
}

// The fused residual + PReLU equals conv2d_forward then add_prelu_inplace (add_inplace without a
// slope) bit for bit: on the 1x1 GEMM path, where the epilogue adds it (several tiles, grouped, on 1
// and 3 threads), and on the paths that add it after.
TEST(conv2d_forward_residual_prelu_equals_two_calls) {
    static const conv_case cases[] = {
        {64, 64, 1, 1, 0, 1, 4, 70, 70, 1},    // EESP expansion: 1x1 GEMM, groups 4, several tiles
        {48, 128, 1, 1, 0, 1, 1, 33, 35, 0},   // 1x1 GEMM, wide tiles, no bias
        {8, 4, 1, 1, 0, 1, 1, 9, 10, 1},       // small 1x1: the direct kernel, added after
        {8, 8, 3, 1, 1, 1, 1, 9, 10, 1},       // 3x3: added after
    };
    err e = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const conv_case *c = &cases[i];
        int cig = c->ci / c->g, ho = conv2d_out_size(c->h, c->k, c->s, c->p, c->d);
        int wo = conv2d_out_size(c->w, c->k, c->s, c->p, c->d);
        int64_t hw = (int64_t)ho * wo, n = c->co * hw;
        float *x = t_rand_buf((int64_t)c->ci * c->h * c->w, 1.0f), *res = t_rand_buf(n, 1.0f);
        float *wt = t_rand_buf((int64_t)c->co * cig * c->k * c->k, 0.5f);
        float *b = c->bias ? t_rand_buf(c->co, 1.0f) : NULL, *sl = t_rand_buf(c->co, 1.0f);
        conv2d cv = {c->ci, c->co, c->k, c->s, c->p, c->d, c->g, wt, b, 0, NULL};
        float *y1 = malloc(sizeof(float) * n), *y2 = malloc(sizeof(float) * n);
        for (int act = 0; act < 2; act++)
            for (int th = 1; th <= 3; th += 2) {
                nn_ctx_init(&T, th);
                REQUIRE(conv2d_forward(&T, &cv, x, c->h, c->w, y1, &e) == OODSEG_OK, "%s", e.msg);
                if (act) add_prelu_inplace(&T, y1, res, c->co, hw, sl);
                else add_inplace(&T, y1, res, n);
                REQUIRE(conv2d_forward_residual_prelu(&T, &cv, x, c->h, c->w, res, act ? sl : NULL, y2, &e) ==
                        OODSEG_OK, "%s", e.msg);
                CHECK(memcmp(y1, y2, sizeof(float) * n) == 0, "case %zu, PReLU %d, %d threads: bits differ", i, act,
                      th);
            }
        free(x); free(res); free(wt); free(b); free(sl); free(y1); free(y2);
    }
    nn_ctx_init(&T, 2);
}

// A wide conv (co_g >= 128) whose inner dimension is split into two chunks (kdim * tile > 8 MB):
// against one sgemm on a full im2col built here, with |W| x |col| as the magnitude.
// Depthwise 3x3 straight from the input (nn/dwconv_nchw.c) against the direct kernel on its
// zero-padded row pack (conv_dw_pack): the same bits, for strides 1 and 2, dilations 1 to 4,
// paddings from 0 to beyond the dilation, rows narrower and wider than a 64-output block group,
// with and without bias and PReLU, on 1 and 3 threads. Includes zeros and -0.0 in the input.
TEST(depthwise_from_input_equals_packed_kernel) {
    if (!dwconv3x3_nchw_available()) SKIP("no AVX-512: depthwise convs run on the packed kernel only");
    static const int cfg[][6] = {   // c, h, w, stride, pad, dilation
        {3, 7, 5, 1, 1, 1}, {5, 9, 70, 1, 2, 2}, {4, 33, 130, 1, 3, 3}, {2, 20, 64, 1, 4, 4}, {3, 6, 17, 1, 0, 1},
        {6, 16, 131, 2, 1, 1}, {3, 15, 66, 2, 2, 2}, {2, 9, 200, 2, 4, 4}, {2, 5, 9, 2, 5, 2}, {1, 64, 257, 1, 1, 1},
    };
    int bad = 0;
    for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++) {
        const int c = cfg[k][0], h = cfg[k][1], w = cfg[k][2], st = cfg[k][3], pad = cfg[k][4], d = cfg[k][5];
        int ho = conv2d_out_size(h, 3, st, pad, d), wo = conv2d_out_size(w, 3, st, pad, d);
        float *x = t_rand_buf((int64_t)c * h * w, 1.0f), *wt = t_rand_buf(c * 9, 0.5f), *b = t_rand_buf(c, 0.5f);
        float *sl = t_rand_buf(c, 0.3f);
        for (int64_t i = 0; i < (int64_t)c * h * w; i += 7) x[i] = i % 2 ? 0.0f : -0.0f;
        float *y1 = malloc(sizeof(float) * (size_t)c * ho * wo), *y2 = malloc(sizeof(float) * (size_t)c * ho * wo);
        for (int variant = 0; variant < 4; variant++) {
            conv2d cv = {c, c, 3, st, pad, d, c, wt, variant & 1 ? b : NULL, 0, NULL};
            const float *slope = variant & 2 ? sl : NULL;
            err e = {0};
            nn_ctx_init(&T, 2);
            T.conv_dw_pack = 1;
            REQUIRE(conv2d_forward_prelu(&T, &cv, x, h, w, slope, y1, &e) == 0, "%s", e.msg);
            for (int th = 1; th <= 3; th += 2) {
                nn_ctx_init(&T, th);
                REQUIRE(conv2d_forward_prelu(&T, &cv, x, h, w, slope, y2, &e) == 0, "%s", e.msg);
                if (memcmp(y1, y2, sizeof(float) * (size_t)c * ho * wo) && bad++ < 4)
                    CHECK(0, "c %d %dx%d stride %d pad %d dilation %d bias %d prelu %d, %d threads: bits differ", c, h,
                          w, st, pad, d, variant & 1, variant >> 1, th);
            }
        }
        free(x); free(wt); free(b); free(sl); free(y1); free(y2);
    }
    nn_ctx_init(&T, 2);
    CHECK(bad == 0, "%d cases differ", bad);
}

// Several convs of one input in one parallel region (ESPNetv2's four EESP branches, dilations 1-4,
// stride 1 and 2, with and without bias) give the bits of the convs one by one, on 1 and 3
// threads; a set with a conv off the depthwise path (a 1x1) runs one by one, the same bits.
TEST(conv2d_forward_many_equals_one_by_one) {
    static const int cfg[][4] = {{8, 33, 70, 1}, {5, 16, 131, 2}, {3, 1, 19, 1}};   // c, h, w, stride
    for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++) {
        const int c = cfg[k][0], h = cfg[k][1], w = cfg[k][2], st = cfg[k][3];
        float *x = t_rand_buf((int64_t)c * h * w, 1.0f), *wt[4], *b = t_rand_buf(c, 0.5f), *w1 = t_rand_buf(c * c, 0.5f);
        conv2d cv[5];
        for (int i = 0; i < 4; i++) {
            wt[i] = t_rand_buf(c * 9, 0.5f);
            cv[i] = (conv2d){c, c, 3, st, i + 1, i + 1, c, wt[i], i % 2 ? b : NULL, 0, NULL};   // pad = dilation
        }
        cv[4] = (conv2d){c, c, 1, 1, 0, 1, 1, w1, b, 0, NULL};
        const int ho = conv2d_out_size(h, 3, st, 1, 1), wo = conv2d_out_size(w, 3, st, 1, 1);
        const size_t n = (size_t)c * ho * wo;
        float *one = malloc(sizeof(float) * 5 * n), *many = malloc(sizeof(float) * 5 * n);
        for (int set = 0; set < 2; set++) {   // the four branches; then branches 0, 1 and the 1x1 (stride 1)
            const int idx[2][4] = {{0, 1, 2, 3}, {0, 4, 1, -1}}, m = set ? 3 : 4;
            if (set && st != 1) continue;
            const conv2d *cs[4];
            float *ys[4];
            for (int th = 1; th <= 3; th += 2) {
                nn_ctx_init(&T, th);
                err e = {0};
                for (int i = 0; i < m; i++) {
                    cs[i] = &cv[idx[set][i]];
                    ys[i] = many + i * n;
                    REQUIRE(conv2d_forward(&T, cs[i], x, h, w, one + i * n, &e) == 0, "%s", e.msg);
                }
                REQUIRE(conv2d_forward_many(&T, cs, m, x, h, w, ys, &e) == 0, "%s", e.msg);
                CHECK(memcmp(one, many, sizeof(float) * m * n) == 0, "c %d %dx%d stride %d set %d, %d threads", c, h, w,
                      st, set, th);
            }
        }
        for (int i = 0; i < 4; i++) free(wt[i]);
        free(x); free(b); free(w1); free(one); free(many);
    }
    // ESPNet's ESP block: five dilated 3x3 convs (dilation = padding 1..16) of 12 channels, the
    // first 16 wide, on the direct kernel, over maps where some dilations leave kernel rows out
    static const int hws[][2] = {{64, 128}, {7, 40}, {33, 17}};
    for (size_t k = 0; k < sizeof hws / sizeof hws[0]; k++) {
        const int c = 12, h = hws[k][0], w = hws[k][1];
        const size_t n = (size_t)16 * h * w;
        float *x = t_rand_buf((int64_t)c * h * w, 1.0f), *b = t_rand_buf(16, 0.5f), *wt[5];
        float *one = malloc(sizeof(float) * 5 * n), *many = malloc(sizeof(float) * 5 * n);
        conv2d cv[5];
        const conv2d *cs[5];
        float *ys[5];
        for (int i = 0; i < 5; i++) {
            wt[i] = t_rand_buf((i ? c : 16) * c * 9, 0.3f);
            cv[i] = (conv2d){c, i ? c : 16, 3, 1, 1 << i, 1 << i, 1, wt[i], i == 2 ? b : NULL, 0, NULL};
            cs[i] = &cv[i];
            ys[i] = many + i * n;
        }
        for (int th = 1; th <= 3; th += 2) {
            nn_ctx_init(&T, th);
            err e = {0};
            for (int i = 0; i < 5; i++) REQUIRE(conv2d_forward(&T, cs[i], x, h, w, one + i * n, &e) == 0, "%s", e.msg);
            REQUIRE(conv2d_forward_many(&T, cs, 5, x, h, w, ys, &e) == 0, "%s", e.msg);
            int same = 1;
            for (int i = 0; i < 5; i++) same &= !memcmp(one + i * n, many + i * n, sizeof(float) * (i ? c : 16) * h * w);
            CHECK(same, "direct convs %dx%d, %d threads", h, w, th);
        }
        for (int i = 0; i < 5; i++) free(wt[i]);
        free(x); free(b); free(one); free(many);
    }
    nn_ctx_init(&T, 2);
}

// The running sum over groups, the residual and BN + PReLU in one pass equal add_inplace group by
// group, add_inplace of the residual and batchnorm_prelu_inplace, bit for bit: ESPNetv2's EESP (4
// groups, nothing else), ESPNet's ESP (a first conv's channels before the groups, a residual or
// not), channels after the groups, one group.
TEST(groupsum_bn_prelu_equals_adds_then_bn_prelu) {
    static const int cfg[][6] = {   // off, groups, c, rest, hw, residual
        {0, 4, 8, 0, 1000, 0}, {0, 4, 3, 0, 17, 0}, {0, 2, 5, 0, 40000, 1}, {0, 1, 6, 0, 300, 0},
        {13, 4, 12, 0, 2000, 1}, {12, 4, 12, 0, 513, 0}, {3, 3, 4, 5, 700, 1},
    };
    for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++) {
        const int off = cfg[k][0], g = cfg[k][1], c = cfg[k][2], rest = cfg[k][3], hw = cfg[k][4];
        const int C = off + g * c + rest;
        const int64_t n = (int64_t)C * hw;
        float *x = t_rand_buf(n, 1.0f), *want = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
        float *res = cfg[k][5] ? t_rand_buf(n, 1.0f) : NULL;
        float *gm = t_rand_buf(C, 1.0f), *bt = t_rand_buf(C, 1.0f), *mn = t_rand_buf(C, 1.0f), *vr = t_rand_buf(C, 1.0f);
        float *sl = t_rand_buf(C, 0.5f);
        for (int i = 0; i < C; i++) vr[i] = vr[i] * vr[i] + 0.1f;
        for (int th = 1; th <= 3; th += 2) {
            nn_ctx_init(&T, th);
            memcpy(want, x, sizeof(float) * n);
            for (int j = 1; j < g; j++)
                add_inplace(&T, want + (int64_t)(off + j * c) * hw, want + (int64_t)(off + (j - 1) * c) * hw, (int64_t)c * hw);
            if (res) add_inplace(&T, want, res, n);
            batchnorm_prelu_inplace(&T, want, C, hw, gm, bt, mn, vr, 1e-5f, sl);
            memcpy(got, x, sizeof(float) * n);
            groupsum_batchnorm_prelu_inplace(&T, got, C, off, g, c, hw, res, gm, bt, mn, vr, 1e-5f, sl);
            CHECK(memcmp(got, want, sizeof(float) * n) == 0, "case %zu, %d threads", k, th);
        }
        free(x); free(want); free(got); free(res); free(gm); free(bt); free(mn); free(vr); free(sl);
    }
    nn_ctx_init(&T, 2);
}

// BN + PReLU into the channel-shuffled order in one pass equals batchnorm_prelu_inplace then
// channel_shuffle, bit for bit (ESPNetv2's pyramid merge, 5 groups), and leaves x as it was.
TEST(bn_prelu_shuffle_equals_bn_prelu_then_shuffle) {
    static const int cfg[][3] = {{50, 5, 700}, {20, 5, 9}, {12, 3, 40000}, {4, 1, 33}};   // c, groups, hw
    for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++) {
        const int c = cfg[k][0], g = cfg[k][1], hw = cfg[k][2];
        const int64_t n = (int64_t)c * hw;
        float *x = t_rand_buf(n, 1.0f), *x0 = malloc(sizeof(float) * n), *tmp = malloc(sizeof(float) * n);
        float *want = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
        float *gm = t_rand_buf(c, 1.0f), *bt = t_rand_buf(c, 1.0f), *mn = t_rand_buf(c, 1.0f), *vr = t_rand_buf(c, 1.0f);
        float *sl = t_rand_buf(c, 0.5f);
        for (int i = 0; i < c; i++) vr[i] = vr[i] * vr[i] + 0.1f;
        memcpy(x0, x, sizeof(float) * n);
        for (int th = 1; th <= 3; th += 2) {
            nn_ctx_init(&T, th);
            memcpy(tmp, x, sizeof(float) * n);
            batchnorm_prelu_inplace(&T, tmp, c, hw, gm, bt, mn, vr, 1e-5f, sl);
            channel_shuffle(&T, tmp, c, hw, g, want);
            batchnorm_prelu_shuffle(&T, x, c, hw, g, gm, bt, mn, vr, 1e-5f, sl, got);
            CHECK(memcmp(got, want, sizeof(float) * n) == 0 && memcmp(x, x0, sizeof(float) * n) == 0,
                  "%d channels in %d groups x %d, %d threads", c, g, hw, th);
        }
        free(x); free(x0); free(tmp); free(want); free(got); free(gm); free(bt); free(mn); free(vr); free(sl);
    }
    nn_ctx_init(&T, 2);
}

TEST(conv2d_wide_chunked_matches_gemm) {
    nn_ctx_init(&T, 2);
    err e = {0};
    int ci = 232, co = 128, h = 64, w = 64, kd = ci * 9, P = h * w;
    float *x = t_rand_buf((int64_t)ci * P, 1.0f), *wt = t_rand_buf((int64_t)co * kd, 0.5f);
    float *col = calloc((size_t)kd * P, sizeof(float)), *acol = malloc(sizeof(float) * (size_t)kd * P);
    float *aw = malloc(sizeof(float) * (size_t)co * kd);
    float *ref = malloc(sizeof(float) * (size_t)co * P), *mag = malloc(sizeof(float) * (size_t)co * P);
    float *y = malloc(sizeof(float) * (size_t)co * P);
    for (int c = 0; c < ci; c++)
        for (int t = 0; t < 9; t++)
            for (int oy = 0; oy < h; oy++)
                for (int ox = 0; ox < w; ox++) {
                    int iy = oy - 1 + t / 3, ix = ox - 1 + t % 3;
                    if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                        col[((size_t)c * 9 + t) * P + oy * w + ox] = x[((size_t)c * h + iy) * w + ix];
                }
    for (size_t i = 0; i < (size_t)kd * P; i++) acol[i] = fabsf(col[i]);
    for (size_t i = 0; i < (size_t)co * kd; i++) aw[i] = fabsf(wt[i]);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, co, P, kd, 1.0f, wt, kd, col, P, 0.0f, ref, P);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, co, P, kd, 1.0f, aw, kd, acol, P, 0.0f, mag, P);
    conv2d cv = {ci, co, 3, 1, 1, 1, 1, wt, NULL, 0, NULL};
    REQUIRE(conv2d_forward(&T, &cv, x, h, w, y, &e) == OODSEG_OK, "%s", e.msg);
    int bad = 0;
    for (size_t i = 0; i < (size_t)co * P; i++) bad += fabsf(y[i] - ref[i]) > 2e-5f * mag[i] + 1e-30f;
    CHECK(bad == 0, "%d outputs differ", bad);
    free(x); free(wt); free(col); free(acol); free(aw); free(ref); free(mag); free(y);
}

// The two tests below compare a tiling of sgemm calls with one call: bit for bit on the OpenBLAS
// cores whose kernels were measured for it (SkylakeX and its successors, the AVX-512 ones, with
// the small-matrix kernel of conv.c's skinny_tile and linear.c's linear_cols); elsewhere another
// kernel may sum in another order, and |y - ref| <= 1e-5 sum |terms| (conv2d_matches_reference's
// bound) is what holds. The thread count never changes the bits (threads_bit_identical).
static int blas_bits_measured(void) {
    const char *core = openblas_get_corename();
    return core && (!strcmp(core, "SkylakeX") || !strcmp(core, "Cooperlake") || !strcmp(core, "SapphireRapids"));
}

// y against ref (n values): the same bits, or (not exact) within 1e-5 of mag, ref's sum of |terms|.
static int same_or_close(const float *y, const float *ref, const float *mag, size_t n, int exact) {
    if (exact) return memcmp(y, ref, sizeof(float) * n) == 0;
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(y[i] - ref[i]) <= 1e-5f * mag[i] + 1e-30f)) return 0;
    return 1;
}

// Skinny 1x1 convs (conv.c's skinny_tile) run in pixel tiles small enough for OpenBLAS's
// small-matrix kernel: exactly the bits of one sgemm per group over the whole map, bias after, on
// 1 and 3 threads. The last case has more inputs per group (352) than skinny_tile allows: the
// small kernel would sum them in another order (a tile of 272 pixels gives other bits), so a
// looser limit fails here.
TEST(conv2d_skinny_1x1_equals_whole_map_gemm) {
    static const int cases[][5] = {   // groups, c_in, c_out, h, w
        {4, 256, 64, 64, 128},   // EESP projection: 64 -> 16 per group
        {4, 512, 128, 32, 64},   // 128 -> 32 per group
        {1, 256, 10, 48, 96},    // the pyramid's projection at the inner-dimension limit
        {1, 352, 10, 48, 96},    // past the limit: packed tiles
    };
    err e = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int g = cases[i][0], ci = cases[i][1], co = cases[i][2], h = cases[i][3], w = cases[i][4];
        const int cig = ci / g, cog = co / g, hw = h * w;
        float *x = t_rand_buf((int64_t)ci * hw, 1.0f), *wt = t_rand_buf((int64_t)co * cig, 0.5f);
        float *b = t_rand_buf(co, 1.0f), *ref = malloc(sizeof(float) * (size_t)co * hw);
        float *y = malloc(sizeof(float) * (size_t)co * hw), *mag = malloc(sizeof(float) * (size_t)co * hw);
        float *ax = malloc(sizeof(float) * (size_t)ci * hw), *aw = malloc(sizeof(float) * (size_t)co * cig);
        for (size_t q = 0; q < (size_t)ci * hw; q++) ax[q] = fabsf(x[q]);
        for (size_t q = 0; q < (size_t)co * cig; q++) aw[q] = fabsf(wt[q]);
        for (int gi = 0; gi < g; gi++) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cog, hw, cig, 1.0f, wt + (size_t)gi * cog * cig,
                        cig, x + (size_t)gi * cig * hw, hw, 0.0f, ref + (size_t)gi * cog * hw, hw);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cog, hw, cig, 1.0f, aw + (size_t)gi * cog * cig,
                        cig, ax + (size_t)gi * cig * hw, hw, 0.0f, mag + (size_t)gi * cog * hw, hw);
        }
        for (int o = 0; o < co; o++)
            for (int j = 0; j < hw; j++) ref[(size_t)o * hw + j] += b[o], mag[(size_t)o * hw + j] += fabsf(b[o]);
        conv2d cv = {ci, co, 1, 1, 0, 1, g, wt, b, 0, NULL};
        for (int th = 1; th <= 3; th += 2) {
            nn_ctx_init(&T, th);
            REQUIRE(conv2d_forward(&T, &cv, x, h, w, y, &e) == OODSEG_OK, "%s", e.msg);
            CHECK(same_or_close(y, ref, mag, (size_t)co * hw, blas_bits_measured()), "case %zu (%d -> %d per group), "
                  "%d threads: differs from one sgemm per group (OpenBLAS core %s)", i, cig, cog, th,
                  openblas_get_corename());
        }
        free(x); free(wt); free(b); free(ref); free(y); free(mag); free(ax); free(aw);
    }
    nn_ctx_init(&T, 2);
}

TEST(conv2d_out_size_floors) {
    err e = {0};
    float x[4] = {0}, y[4], wt[9] = {0};
    conv2d bad = {3, 4, 3, 1, 1, 1, 2, wt, NULL, 0, NULL};   // 3 input channels in 2 groups
    CHECK(conv2d_forward(&T, &bad, x, 2, 2, y, &e) == OODSEG_E_INTERNAL && e.msg[0], "%s", e.msg);
    conv2d small = {1, 1, 3, 1, 0, 2, 1, wt, NULL, 0, NULL};   // 2x2 input, dilated 3x3, no padding
    CHECK(conv2d_forward(&T, &small, x, 2, 2, y, &e) == OODSEG_E_INTERNAL, "%s", e.msg);
    CHECK(conv2d_out_size(17, 3, 2, 1, 1) == 9);
    CHECK(conv2d_out_size(16, 3, 2, 1, 1) == 8);
    CHECK(conv2d_out_size(10, 3, 1, 16, 16) == 10);
    CHECK(conv2d_out_size(2, 5, 1, 0, 1) == 0);   // negative numerator: no output, not 1
    CHECK(conv2d_out_size(4, 3, 1, 0, 2) == 0);
}

TEST(conv2d_fold_bn_equals_conv_then_bn) {
    nn_ctx_init(&T, 2);
    err e = {0};
    int ci = 12, co = 10, h = 13, w = 11;
    float *x = t_rand_buf(ci * h * w, 1.0f), *wt = t_rand_buf(co * ci * 9, 0.5f), *b = t_rand_buf(co, 1.0f);
    float *g = t_rand_buf(co, 1.0f), *be = t_rand_buf(co, 1.0f), *m = t_rand_buf(co, 1.0f), *v = t_rand_buf(co, 1.0f);
    for (int i = 0; i < co; i++) v[i] = fabsf(v[i]) + 0.1f;
    float *wcopy = malloc(sizeof(float) * co * ci * 9);
    memcpy(wcopy, wt, sizeof(float) * co * ci * 9);
    float bcopy[10];
    memcpy(bcopy, b, sizeof bcopy);
    conv_case cc = {ci, co, 3, 1, 1, 1, 1, h, w, 1};
    conv2d cv = {ci, co, 3, 1, 1, 1, 1, wt, b, 0, NULL};
    REQUIRE(conv2d_fold_bn(&cv, g, be, m, v, 1e-3f, &e) == OODSEG_OK, "%s", e.msg);
    CHECK(cv.owned == 1 && cv.weight != wt && cv.bias != b);
    CHECK(memcmp(wt, wcopy, sizeof(float) * co * ci * 9) == 0 && memcmp(b, bcopy, sizeof bcopy) == 0,
          "fold wrote the input arrays");
    float *y = malloc(sizeof(float) * co * h * w);
    double *ref = malloc(sizeof(double) * co * h * w), *mag = malloc(sizeof(double) * co * h * w);
    REQUIRE(conv2d_forward(&T, &cv, x, h, w, y, &e) == OODSEG_OK);
    conv_ref(&cc, x, wt, b, ref, mag, h, w);
    int bad = 0;
    for (int o = 0; o < co; o++) {
        double s = g[o] / sqrt((double)v[o] + 1e-3);
        for (int p = 0; p < h * w; p++) {
            size_t i = (size_t)o * h * w + p;
            double r = (ref[i] - m[o]) * s + be[o];
            double tol = 1e-5 * (mag[i] * fabs(s) + fabs(m[o] * s) + fabs(be[o])) + 1e-7;
            if (fabs(y[i] - r) > tol) bad++;
        }
    }
    CHECK(bad == 0, "%d outputs differ from conv then BN", bad);
    // Folding twice (a second BN) frees the first owned copy; ASan checks the bookkeeping.
    REQUIRE(conv2d_fold_bn(&cv, g, be, m, v, 1e-3f, &e) == OODSEG_OK);
    conv2d_free(&cv);
    CHECK(cv.weight == NULL && cv.owned == 0);
    free(x); free(wt); free(b); free(g); free(be); free(m); free(v); free(wcopy); free(y); free(ref); free(mag);
}

// ---- conv transpose, linear -----------------------------------------------------------------

static int check_convT(int ci, int co, int h, int w) {
    err e = {0};
    float *x = t_rand_buf((int64_t)ci * h * w, 1.0f), *wt = t_rand_buf(ci * co * 4, 0.5f);
    float *y = malloc(sizeof(float) * (size_t)co * 4 * h * w);
    int ok = conv_transpose2x2_forward(&T, wt, ci, co, x, h, w, y, &e) == OODSEG_OK;
    for (int o = 0; ok && o < co; o++)
        for (int yy = 0; yy < 2 * h; yy++)
            for (int xx = 0; xx < 2 * w; xx++) {
                int i = yy / 2, a = yy % 2, j = xx / 2, bb = xx % 2;
                double s = 0.0, m = 0.0;
                for (int c = 0; c < ci; c++) {
                    double t = (double)x[((size_t)c * h + i) * w + j] * wt[((c * co + o) * 2 + a) * 2 + bb];
                    s += t; m += fabs(t);
                }
                if (fabs(y[((size_t)o * 2 * h + yy) * 2 * w + xx] - s) > 1e-5 * m + 1e-30) ok = 0;
            }
    free(x); free(wt); free(y);
    return ok;
}

TEST(conv_transpose2x2_matches_formula) {
    nn_ctx_init(&T, 2);
    CHECK(check_convT(7, 5, 9, 13));
    CHECK(check_convT(20, 20, 64, 40));   // several row bands
    CHECK(check_convT(3, 2, 3, 2100));    // rows wider than a band
    CHECK(check_convT(1, 1, 1, 1));
    CHECK(check_convT(6, 7, 5, 32));      // no partial column block, channel remainder 3
}

static int check_linear(int64_t n, int ci, int co, int bias) {
    float *x = t_rand_buf(n * ci, 1.0f), *W = t_rand_buf((int64_t)co * ci, 0.5f);
    float *b = bias ? t_rand_buf(co, 1.0f) : NULL, *y = malloc(sizeof(float) * (size_t)(n * co));
    linear_forward(&T, x, n, ci, W, b, co, y);
    int ok = 1;
    for (int64_t r = 0; r < n; r++)
        for (int o = 0; o < co; o++) {
            double s = b ? b[o] : 0.0, m = b ? fabs(b[o]) : 0.0;
            for (int i = 0; i < ci; i++) { double t = (double)x[r * ci + i] * W[(size_t)o * ci + i]; s += t; m += fabs(t); }
            if (fabs(y[r * co + o] - s) > 1e-5 * m + 1e-30) ok = 0;
        }
    free(x); free(W); free(b); free(y);
    return ok;
}

TEST(linear_matches_reference) {
    nn_ctx_init(&T, 2);
    CHECK(check_linear(1, 3, 4, 1));
    CHECK(check_linear(600, 37, 19, 1));
    CHECK(check_linear(513, 64, 256, 0));
}

// The fused fc1 + GELU equals linear then gelu_inplace bit for bit (c_out a multiple of 8), for
// any thread count, including a last chunk of fewer rows.
TEST(linear_gelu_equals_the_two_calls) {
    static const int shapes[][3] = {{1100, 64, 256}, {37, 96, 384}, {513, 80, 320}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        int64_t n = shapes[k][0];
        int ci = shapes[k][1], co = shapes[k][2];
        float *x = t_rand_buf(n * ci, 1.0f), *W = t_rand_buf((int64_t)co * ci, 0.3f), *b = t_rand_buf(co, 0.5f);
        float *y1 = malloc(sizeof(float) * n * co), *y2 = malloc(sizeof(float) * n * co);
        nn_ctx_init(&T, 2);
        linear_forward(&T, x, n, ci, W, b, co, y1);
        gelu_inplace(&T, y1, n * co);
        for (int th = 1; th <= 3; th++) {
            nn_ctx_init(&T, th);
            linear_gelu_forward(&T, x, n, ci, W, b, co, y2);
            CHECK(!memcmp(y1, y2, sizeof(float) * n * co), "%lld x %d -> %d, %d threads: fused differs",
                  (long long)n, ci, co, th);
        }
        free(x); free(W); free(b); free(y1); free(y2);
    }
    nn_ctx_init(&T, 2);
}

// A layer whose rows make one work item (n <= 512) runs in blocks of output columns (linear.c):
// the two tests below compare it with one GEMM over all columns, for bias, bias + GELU and neither,
// on 1 and 3 threads. A case: the shape (rows, inputs, outputs), its random data, the reference.
static const int linear_block_shapes[][3] = {{512, 768, 3072}, {512, 3072, 768}, {256, 256, 1024}, {16, 1024, 128}};
typedef struct linear_case { int n, ci, co; float *x, *W, *b, *ref, *y; } linear_case;

static linear_case linear_case_new(const int *shape) {
    linear_case c = {shape[0], shape[1], shape[2], NULL, NULL, NULL, NULL, NULL};
    c.x = t_rand_buf((int64_t)c.n * c.ci, 1.0f), c.W = t_rand_buf((int64_t)c.co * c.ci, 0.3f);
    c.b = t_rand_buf(c.co, 0.5f);
    c.ref = malloc(sizeof(float) * c.n * c.co), c.y = malloc(sizeof(float) * c.n * c.co);
    return c;
}

static void linear_case_free(linear_case *c) { free(c->x), free(c->W), free(c->b), free(c->ref), free(c->y); }

// c->y = the layer (variant 1: with its GELU) with bias bb on T as it is set, on `threads` threads.
static void linear_case_run(linear_case *c, int variant, const float *bb, int threads) {
    T.threads = threads;
    if (variant == 1) linear_gelu_forward(&T, c->x, c->n, c->ci, c->W, bb, c->co, c->y);
    else linear_forward(&T, c->x, c->n, c->ci, c->W, bb, c->co, c->y);
}

// fp32 (linear_cols): exactly the bits of one sgemm (the bias first, beta 1), then the GELU, on
// the measured OpenBLAS cores (blas_bits_measured). The last shape stays whole: its 4 blocks would
// be GEMMs small enough for OpenBLAS's small-matrix kernel, which sums them in another order, so a
// looser rule fails here.
TEST(linear_column_blocks_equal_one_gemm) {
    for (size_t k = 0; k < sizeof linear_block_shapes / sizeof linear_block_shapes[0]; k++) {
        linear_case c = linear_case_new(linear_block_shapes[k]);
        const int n = c.n, ci = c.ci, co = c.co;
        float *mag = malloc(sizeof(float) * n * co), *ax = malloc(sizeof(float) * n * ci);
        float *aw = malloc(sizeof(float) * co * ci);
        for (size_t q = 0; q < (size_t)n * ci; q++) ax[q] = fabsf(c.x[q]);
        for (size_t q = 0; q < (size_t)co * ci; q++) aw[q] = fabsf(c.W[q]);
        for (int variant = 0; variant < 3; variant++) {   // bias, bias + GELU, neither
            const float *bb = variant < 2 ? c.b : NULL;
            for (int r = 0; r < n; r++)   // the GELU's slope stays below 1.13: 2 x the sum covers it
                for (int j = 0; j < co; j++) {
                    c.ref[(size_t)r * co + j] = bb ? bb[j] : 0.0f;
                    mag[(size_t)r * co + j] = bb ? 2.0f * fabsf(bb[j]) : 0.0f;
                }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, co, ci, 1.0f, c.x, ci, c.W, ci, bb ? 1.0f : 0.0f,
                        c.ref, co);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, co, ci, 2.0f, ax, ci, aw, ci, 1.0f, mag, co);
            nn_ctx_init(&T, 2);
            if (variant == 1) gelu_inplace(&T, c.ref, (int64_t)n * co);
            for (int th = 1; th <= 3; th += 2) {
                linear_case_run(&c, variant, bb, th);
                CHECK(same_or_close(c.y, c.ref, mag, (size_t)n * co, blas_bits_measured()), "%d x %d -> %d, variant "
                      "%d, %d threads: differs from one sgemm (OpenBLAS core %s)", n, ci, co, variant, th,
                      openblas_get_corename());
            }
        }
        linear_case_free(&c);
        free(mag); free(ax); free(aw);
    }
    nn_ctx_init(&T, 2);
}

// bf16 (linear_cols): blocks of whole panels of the bf16 GEMM, exactly the bits of that GEMM
// over all columns (gemm_bf16.c sums each output in K order from its bias, whatever the blocks),
// then the bf16 layers' GELU. Our own kernel, so bit for bit on every CPU (the scalar reference
// without AVX512-BF16).
TEST(linear_bf16_column_blocks_equal_one_gemm) {
    for (size_t k = 0; k < sizeof linear_block_shapes / sizeof linear_block_shapes[0]; k++) {
        linear_case c = linear_case_new(linear_block_shapes[k]);
        uint32_t *pw = malloc(sizeof(uint32_t) * nn_bf16_panels_size(c.ci, c.co));
        uint32_t *scr = malloc(sizeof(uint32_t) * nn_gemm_bf16_b_scratch(c.n));
        nn_bf16_pack_panels_t(c.W, c.ci, c.co, c.ci, pw);
        for (int variant = 0; variant < 3; variant++) {   // bias, bias + GELU, neither
            const float *bb = variant < 2 ? c.b : NULL;
            nn_ctx_init(&T, 1);
            T.precision = NN_BF16;
            T.bf16_reference = nn_bf16_cpu() ? NN_BF16_AUTO : NN_BF16_REF_SCALAR;
            nn_gemm_bf16_b(&T, c.n, c.co, c.ci, c.x, c.ci, pw, scr, c.ref, c.co, 0, bb);
            if (variant == 1) gelu_span_bf16(c.ref, (int64_t)c.n * c.co);
            for (int th = 1; th <= 3; th += 2) {
                linear_case_run(&c, variant, bb, th);
                CHECK(!memcmp(c.ref, c.y, sizeof(float) * c.n * c.co), "%d x %d -> %d, variant %d, %d threads: bits "
                      "differ from one bf16 GEMM", c.n, c.ci, c.co, variant, th);
            }
        }
        linear_case_free(&c);
        free(pw); free(scr);
    }
    nn_ctx_init(&T, 2);
}

// ---- norms --------------------------------------------------------------------------------------

TEST(layernorm_cl_matches_reference) {
    nn_ctx_init(&T, 2);
    int64_t n = 301;
    int c = 96;
    float *x = t_rand_buf(n * c, 0.01f), *g = t_rand_buf(c, 1.0f), *b = t_rand_buf(c, 1.0f);
    // A large common offset with a small spread: the case E[x^2] - E[x]^2 gets wrong.
    for (int64_t i = 0; i < n * c; i++) x[i] += 100.0f;
    float *y = malloc(sizeof(float) * n * c), *xi = malloc(sizeof(float) * n * c);
    memcpy(xi, x, sizeof(float) * n * c);
    layernorm_cl(&T, x, n, c, g, b, 1e-6f, y);
    layernorm_cl(&T, xi, n, c, g, b, 1e-6f, xi);   // in place
    double worst = 0.0;
    for (int64_t r = 0; r < n; r++) {
        double m = 0.0, v = 0.0;
        for (int j = 0; j < c; j++) m += x[r * c + j];
        m /= c;
        for (int j = 0; j < c; j++) v += (x[r * c + j] - m) * (x[r * c + j] - m);
        v /= c;
        for (int j = 0; j < c; j++) {
            double ref = (x[r * c + j] - m) / sqrt(v + 1e-6) * g[j] + b[j];
            double d = fabs(y[r * c + j] - ref);
            if (d > worst) worst = d;
        }
    }
    // The normalised values are O(1); float rounding of x - mean limits the accuracy to ~1e-5 here
    // because x ~ 100 has an ulp of 7.6e-6 relative to a spread of 0.006.
    CHECK(worst < 1e-3, "layernorm worst %.3g", worst);
    CHECK(memcmp(xi, y, sizeof(float) * n * c) == 0, "in-place result differs");
    // Ordinary data: 1e-5.
    float *x2 = t_rand_buf(n * c, 3.0f);
    layernorm_cl(&T, x2, n, c, g, b, 1e-6f, y);
    worst = 0.0;
    for (int64_t r = 0; r < n; r++) {
        double m = 0.0, v = 0.0;
        for (int j = 0; j < c; j++) m += x2[r * c + j];
        m /= c;
        for (int j = 0; j < c; j++) v += (x2[r * c + j] - m) * (x2[r * c + j] - m);
        v /= c;
        for (int j = 0; j < c; j++) {
            double d = fabs(y[r * c + j] - ((x2[r * c + j] - m) / sqrt(v + 1e-6) * g[j] + b[j]));
            if (d > worst) worst = d;
        }
    }
    CHECK(worst < 1e-5, "layernorm worst %.3g", worst);
    free(x); free(g); free(b); free(y); free(xi); free(x2);
}

TEST(batchnorm_matches_reference) {
    int c = 5;
    int64_t hw = 77;
    float *x = t_rand_buf(c * hw, 2.0f), *g = t_rand_buf(c, 1.0f), *b = t_rand_buf(c, 1.0f), *m = t_rand_buf(c, 1.0f);
    float *v = t_rand_buf(c, 1.0f), *y = malloc(sizeof(float) * c * hw);
    for (int i = 0; i < c; i++) v[i] = fabsf(v[i]) + 0.01f;
    memcpy(y, x, sizeof(float) * c * hw);
    batchnorm_inplace(&T, y, c, hw, g, b, m, v, 1e-5f);
    double worst = 0.0;
    for (int ch = 0; ch < c; ch++)
        for (int64_t i = 0; i < hw; i++) {
            double r = (x[ch * hw + i] - (double)m[ch]) / sqrt((double)v[ch] + 1e-5) * g[ch] + b[ch];
            double d = fabs(y[ch * hw + i] - r) / (1.0 + fabs(r));
            if (d > worst) worst = d;
        }
    CHECK(worst < 1e-5, "batchnorm worst %.3g", worst);
    // The fused BN + PReLU must equal the two calls bit for bit.
    float slope[5] = {0.25f, -0.5f, 0.0f, 2.0f, 1e-3f};
    float *f = malloc(sizeof(float) * c * hw);
    memcpy(f, x, sizeof(float) * c * hw);
    memcpy(y, x, sizeof(float) * c * hw);
    batchnorm_inplace(&T, y, c, hw, g, b, m, v, 1e-5f);
    prelu_inplace(&T, y, c, hw, slope);
    batchnorm_prelu_inplace(&T, f, c, hw, g, b, m, v, 1e-5f, slope);
    CHECK(memcmp(f, y, sizeof(float) * c * hw) == 0, "fused BN + PReLU differs from the two calls");
    free(f);
    free(x); free(g); free(b); free(m); free(v); free(y);
}

// ---- activations --------------------------------------------------------------------------------

TEST(activations_match_reference) {
    int64_t n = 40000;   // above the parallel threshold
    float *x = t_rand_buf(n, 6.0f), *y = malloc(sizeof(float) * n);
    double wg = 0.0, ws = 0.0;
    memcpy(y, x, sizeof(float) * n);
    gelu_inplace(&T, y, n);
    for (int64_t i = 0; i < n; i++) {
        double r = 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0)));
        // Absolute below 1: for x << 0 both PyTorch and we lose 1 + erf(x) to cancellation.
        double d = fabs(y[i] - r) / (1.0 + fabs(r));
        if (d > wg) wg = d;
    }
    CHECK(wg < 2e-7, "gelu worst error / (1 + |gelu|) %.3g", wg);
    memcpy(y, x, sizeof(float) * n);
    sigmoid_inplace(&T, y, n);
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(y[i] - 1.0 / (1.0 + exp(-(double)x[i])));
        if (d > ws) ws = d;
    }
    CHECK(ws < 1e-6, "sigmoid worst %.3g", ws);
    memcpy(y, x, sizeof(float) * n);
    relu_inplace(&T, y, n);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad += y[i] != (x[i] > 0 ? x[i] : 0.0f);
    CHECK(bad == 0);
    float big[2] = {-1e30f, 1e30f};
    sigmoid_inplace(&T, big, 2);
    CHECK(big[0] == 0.0f && big[1] == 1.0f);
    // PReLU: 4 channels, per-channel slope.
    float slope[4] = {0.25f, -0.5f, 0.0f, 2.0f};
    memcpy(y, x, sizeof(float) * n);
    prelu_inplace(&T, y, 4, n / 4, slope);
    bad = 0;
    for (int64_t i = 0; i < n; i++) {
        float a = slope[i / (n / 4)];
        bad += y[i] != (x[i] >= 0 ? x[i] : a * x[i]);
    }
    CHECK(bad == 0);
    free(x); free(y);
}

TEST(softmax_rows_stable_and_correct) {
    int64_t rows = 3000;
    int group = 9;
    float *x = t_rand_buf(rows * group, 5.0f), *y = malloc(sizeof(float) * rows * group);
    for (int j = 0; j < group; j++) x[j] = 1000.0f + j;   // would overflow without the max shift
    memcpy(y, x, sizeof(float) * rows * group);
    softmax_rows_inplace(&T, y, rows, group);
    double worst = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        double m = -INFINITY, s = 0.0;
        for (int j = 0; j < group; j++) m = fmax(m, x[r * group + j]);
        for (int j = 0; j < group; j++) s += exp(x[r * group + j] - m);
        for (int j = 0; j < group; j++) {
            double d = fabs(y[r * group + j] - exp(x[r * group + j] - m) / s);
            if (!(d <= worst)) worst = d;   // NaN-safe
        }
    }
    CHECK(worst < 1e-6, "softmax worst %.3g", worst);
    free(x); free(y);
}

// ---- pooling ------------------------------------------------------------------------------------

static int check_avgpool(int c, int h, int w) {
    float *x = t_rand_buf(c * h * w, 1.0f);
    int ho = (h + 1) / 2, wo = (w + 1) / 2, ok = 1;
    float *y = malloc(sizeof(float) * c * ho * wo);
    avgpool3x3s2_forward(&T, x, c, h, w, y);
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < ho; i++)
            for (int j = 0; j < wo; j++) {
                double s = 0.0;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        int yy = 2 * i + dy, xx = 2 * j + dx;
                        if (yy >= 0 && yy < h && xx >= 0 && xx < w) s += x[(ch * h + yy) * w + xx];
                    }
                if (fabs(y[(ch * ho + i) * wo + j] - s / 9.0) > 1e-6) ok = 0;
                // PyTorch's CPU kernel sums in float, row-major from 0: we must match it exactly.
                float f = 0.0f;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        int yy = 2 * i + dy, xx = 2 * j + dx;
                        if (yy >= 0 && yy < h && xx >= 0 && xx < w) f += x[(ch * h + yy) * w + xx];
                    }
                if (y[(ch * ho + i) * wo + j] != f / 9.0f) ok = 0;
            }
    free(x); free(y);
    return ok;
}

TEST(avgpool3x3s2_counts_padding) {
    CHECK(check_avgpool(3, 17, 23));
    CHECK(check_avgpool(2, 16, 8));
    CHECK(check_avgpool(1, 1, 1));
    CHECK(check_avgpool(2, 3, 2));
    CHECK(check_avgpool(3, 64, 129));
    float one[4] = {9, 9, 9, 9}, out[1];
    avgpool3x3s2_forward(&T, one, 1, 2, 2, out);
    CHECK(out[0] == 4.0f, "corner divides by 9 not 4: %g", out[0]);   // (9*4)/9
}

static int check_adaptive(int c, int h, int w, int oh, int ow) {
    float *x = t_rand_buf(c * h * w, 1.0f), *y = malloc(sizeof(float) * c * oh * ow);
    int ok = 1;
    adaptive_avgpool_forward(&T, x, c, h, w, y, oh, ow);
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                int y0 = (int)floor((double)i * h / oh), y1 = (int)ceil((double)(i + 1) * h / oh);
                int x0 = (int)floor((double)j * w / ow), x1 = (int)ceil((double)(j + 1) * w / ow);
                double s = 0.0;
                for (int yy = y0; yy < y1; yy++)
                    for (int xx = x0; xx < x1; xx++) s += x[(ch * h + yy) * w + xx];
                s /= (double)(y1 - y0) * (x1 - x0);
                if (fabs(y[(ch * oh + i) * ow + j] - s) > 1e-6) ok = 0;
                // Bit-exact with PyTorch's CPU kernel: float sum in row-major order, / kh / kw.
                float f = 0.0f;
                for (int yy = y0; yy < y1; yy++)
                    for (int xx = x0; xx < x1; xx++) f += x[(ch * h + yy) * w + xx];
                if (y[(ch * oh + i) * ow + j] != f / (float)(y1 - y0) / (float)(x1 - x0)) ok = 0;
            }
    free(x); free(y);
    return ok;
}

TEST(adaptive_avgpool_pytorch_bins) {
    CHECK(check_adaptive(2, 13, 17, 6, 6));
    CHECK(check_adaptive(2, 16, 32, 1, 1));
    CHECK(check_adaptive(2, 3, 4, 5, 9));      // output larger than input: windows repeat
    CHECK(check_adaptive(1, 8, 16, 5, 8));
    CHECK(check_adaptive(3, 64, 128, 3, 2));
    CHECK(check_adaptive(4, 16, 32, 8, 16));   // exact 2x ratio (the vectorised path)
    CHECK(check_adaptive(2, 30, 60, 5, 6));    // exact ratios 6 and 10
    CHECK(check_adaptive(2, 24, 48, 16, 32));  // 1.5x: overlapping windows
    // uneven windows 16 outputs at a time (AVX-512): ESPNetv2's 1.5x pools back (a short last
    // block, odd sizes), its 0.1 pyramid level's wide windows, a ratio whose 16 windows span more
    // than 32 inputs (the scalar loop), and windows that run to the end of the row
    CHECK(check_adaptive(3, 48, 96, 32, 64));
    CHECK(check_adaptive(2, 39, 77, 26, 51));
    CHECK(check_adaptive(2, 32, 64, 4, 7));
    CHECK(check_adaptive(2, 16, 100, 8, 37));
    CHECK(check_adaptive(1, 5, 131, 3, 47));
    CHECK(check_adaptive(1, 4, 33, 2, 31));
    float x[3] = {1, 2, 4}, y[2];
    adaptive_avgpool_forward(&T, x, 1, 1, 3, y, 1, 2);   // bins [0,2) and [1,3)
    CHECK(y[0] == 1.5f && y[1] == 3.0f, "%g %g", y[0], y[1]);
}

// ---- layout -------------------------------------------------------------------------------------

TEST(layout_ops) {
    int c = 37, h = 19, w = 41;
    int64_t hw = (int64_t)h * w, n = c * hw;
    float *x = t_rand_buf(n, 1.0f), *t = malloc(sizeof(float) * n), *u = malloc(sizeof(float) * n);
    nchw_to_nhwc(&T, x, c, h, w, t);
    int bad = 0;
    for (int ch = 0; ch < c; ch++)
        for (int64_t p = 0; p < hw; p++) bad += t[p * c + ch] != x[ch * hw + p];
    CHECK(bad == 0);
    nhwc_to_nchw(&T, t, h, w, c, u);
    CHECK(memcmp(u, x, sizeof(float) * n) == 0);
    // channel shuffle, 10 channels in 5 groups: y[j*5 + i] = x[i*2 + j]
    float *s = malloc(sizeof(float) * 10 * hw);
    channel_shuffle(&T, x, 10, hw, 5, s);
    bad = 0;
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 2; j++) bad += memcmp(s + (j * 5 + i) * hw, x + (i * 2 + j) * hw, sizeof(float) * hw) != 0;
    CHECK(bad == 0);
    memcpy(u, x, sizeof(float) * n);
    add_inplace(&T, u, t, n);
    bad = 0;
    for (int64_t i = 0; i < n; i++) bad += u[i] != x[i] + t[i];
    CHECK(bad == 0);
    float *sc = t_rand_buf(c, 2.0f);
    memcpy(u, x, sizeof(float) * n);
    scale_channels_inplace(&T, u, c, hw, sc);
    bad = 0;
    for (int64_t i = 0; i < n; i++) bad += u[i] != x[i] * sc[i / hw];
    CHECK(bad == 0);
    float *gp = malloc(sizeof(float) * c);
    global_avgpool(&T, x, c, hw, gp);
    double worst = 0.0;
    for (int ch = 0; ch < c; ch++) {
        double m = 0.0;
        for (int64_t p = 0; p < hw; p++) m += x[ch * hw + p];
        worst = fmax(worst, fabs(gp[ch] - m / hw));
    }
    CHECK(worst < 1e-7, "global_avgpool worst %.3g", worst);
    free(x); free(t); free(u); free(s); free(sc); free(gp);
}

// ---- ops the models use for what they once computed inline --------------------------------
// A table of cases per op, each against a plain loop written here, bit for bit (the ops promise
// the same float operations in the same order), on 1 and 2 threads.

typedef struct { int n, c, gamma; } scaled_case;

TEST(add_scaled_cl_matches_loop) {
    static const scaled_case cases[] = {{1, 1, 1}, {7, 3, 0}, {300, 64, 1}, {4096, 16, 1}, {5000, 8, 0}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const scaled_case *t = &cases[k];
        int64_t n = (int64_t)t->n * t->c;
        float *x = t_rand_buf(n, 1.0f), *y = t_rand_buf(n, 1.0f), *g = t->gamma ? t_rand_buf(t->c, 1.0f) : NULL;
        float *ref = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
        for (int64_t i = 0; i < n; i++) ref[i] = x[i] + (g ? g[i % t->c] * y[i] : y[i]);
        for (int th = 1; th <= 2; th++) {
            T.threads = th;
            memcpy(got, x, sizeof(float) * n);
            add_scaled_cl(&T, got, y, g, t->n, t->c);
            CHECK(memcmp(got, ref, sizeof(float) * n) == 0, "case %zu (n %d, c %d), %d threads", k, t->n, t->c, th);
        }
        free(x); free(y); free(g); free(ref); free(got);
    }
    nn_ctx_init(&T, 0);
}

typedef struct { int c, h, w, oh, ow; } crop_case;

TEST(copy_and_crop_match_loop) {
    static const crop_case cases[] = {{1, 1, 1, 1, 1}, {3, 8, 8, 7, 7}, {20, 512, 1024, 511, 1023},
                                      {12, 360, 480, 359, 480}, {5, 9, 4, 2, 4}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const crop_case *t = &cases[k];
        int64_t n = (int64_t)t->c * t->h * t->w, m = (int64_t)t->c * t->oh * t->ow;
        float *x = t_rand_buf(n, 1.0f), *y = malloc(sizeof(float) * n), *ref = malloc(sizeof(float) * m);
        for (int ch = 0; ch < t->c; ch++)
            for (int r = 0; r < t->oh; r++)
                for (int q = 0; q < t->ow; q++)
                    ref[((int64_t)ch * t->oh + r) * t->ow + q] = x[((int64_t)ch * t->h + r) * t->w + q];
        for (int th = 1; th <= 2; th++) {
            T.threads = th;
            memset(y, 0, sizeof(float) * n);
            copy_f32(&T, y, x, n);
            CHECK(memcmp(y, x, sizeof(float) * n) == 0, "copy case %zu, %d threads", k, th);
            memset(y, 0, sizeof(float) * n);
            crop_topleft(&T, x, t->c, t->h, t->w, y, t->oh, t->ow);
            CHECK(memcmp(y, ref, sizeof(float) * m) == 0, "crop case %zu, %d threads", k, th);
        }
        free(x); free(y); free(ref);
    }
    nn_ctx_init(&T, 0);
}

// Sliding-window inference's ops (nn/window.h) against plain loops: a window cut out, summed back
// at an offset, counted, and the division by the counts; 1 and 2 threads give the same bits.
TEST(window_ops_match_loops) {
    static const struct { int c, h, w, y0, x0, oh, ow; } cases[] = {
        {1, 1, 1, 0, 0, 1, 1}, {3, 64, 85, 24, 53, 32, 32}, {19, 200, 300, 100, 37, 100, 263}, {2, 9, 5, 8, 0, 1, 5}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int c = cases[k].c, h = cases[k].h, w = cases[k].w, y0 = cases[k].y0, x0 = cases[k].x0;
        int oh = cases[k].oh, ow = cases[k].ow;
        int64_t n = (int64_t)c * h * w, m = (int64_t)c * oh * ow;
        float *x = t_rand_buf(n, 1.0f), *win = t_rand_buf(m, 1.0f), *y = malloc(sizeof(float) * n);
        float *ref = malloc(sizeof(float) * n), *cut = malloc(sizeof(float) * m);
        float *cnt = calloc((size_t)h * w, sizeof(float)), *rcnt = calloc((size_t)h * w, sizeof(float));
        window_count(cnt, h, w, y0, x0, oh, ow);
        window_count(cnt, h, w, 0, 0, 1, 1);
        for (int r = 0; r < oh; r++)
            for (int q = 0; q < ow; q++) rcnt[(y0 + r) * w + x0 + q] += 1;
        rcnt[0] += 1;
        CHECK(memcmp(cnt, rcnt, sizeof(float) * h * w) == 0, "count case %zu", k);
        for (int64_t i = 0; i < (int64_t)h * w; i++) rcnt[i] = rcnt[i] > 0 ? rcnt[i] : 1;
        for (int th = 1; th <= 2; th++) {
            T.threads = th;
            window_crop(&T, x, c, h, w, y0, x0, cut, oh, ow);
            int ok = 1;
            for (int ch = 0; ch < c; ch++)
                for (int r = 0; r < oh; r++)
                    for (int q = 0; q < ow; q++)
                        ok &= cut[((int64_t)ch * oh + r) * ow + q] == x[((int64_t)ch * h + y0 + r) * w + x0 + q];
            CHECK(ok, "crop case %zu, %d threads", k, th);
            memcpy(y, x, sizeof(float) * n);
            memcpy(ref, x, sizeof(float) * n);
            window_add(&T, y, c, h, w, y0, x0, win, oh, ow);
            for (int ch = 0; ch < c; ch++)
                for (int r = 0; r < oh; r++)
                    for (int q = 0; q < ow; q++)
                        ref[((int64_t)ch * h + y0 + r) * w + x0 + q] += win[((int64_t)ch * oh + r) * ow + q];
            CHECK(memcmp(y, ref, sizeof(float) * n) == 0, "add case %zu, %d threads", k, th);
            divide_by_count(&T, y, c, (int64_t)h * w, rcnt);
            for (int64_t i = 0; i < n; i++) ref[i] /= rcnt[i % ((int64_t)h * w)];
            CHECK(memcmp(y, ref, sizeof(float) * n) == 0, "divide case %zu, %d threads", k, th);
        }
        free(x); free(win); free(y); free(ref); free(cut); free(cnt); free(rcnt);
    }
    nn_ctx_init(&T, 0);
}

typedef struct { int ci, co, hw; } acc_case;

TEST(conv2d_1x1_accumulate_matches_loop) {
    static const acc_case cases[] = {{1, 1, 1}, {3, 3, 17}, {3, 128, 32768}, {3, 512, 2048}, {5, 7, 100}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const acc_case *t = &cases[k];
        int64_t n = (int64_t)t->co * t->hw;
        float *x = t_rand_buf((int64_t)t->ci * t->hw, 1.0f), *wt = t_rand_buf((int64_t)t->co * t->ci, 0.5f);
        float *b = t_rand_buf(t->co, 1.0f), *y0 = t_rand_buf(n, 1.0f);
        float *ref = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
        for (int o = 0; o < t->co; o++)
            for (int64_t i = 0; i < t->hw; i++) {
                float s = wt[o * t->ci] * x[i];
                for (int c = 1; c < t->ci; c++) s += wt[o * t->ci + c] * x[c * t->hw + i];
                ref[o * t->hw + i] = y0[o * t->hw + i] + (s + b[o]);
            }
        conv2d cv = {t->ci, t->co, 1, 1, 0, 1, 1, wt, b, 0, NULL};
        float *slope = t_rand_buf(t->co, 0.5f), *ref_act = malloc(sizeof(float) * n);
        for (int64_t i = 0; i < n; i++) {   // then PReLU, slope per output channel
            float v = ref[i];
            ref_act[i] = v >= 0.0f ? v : slope[i / t->hw] * v;
        }
        for (int th = 1; th <= 2; th++)
            for (int act = 0; act < 2; act++) {
                T.threads = th;
                memcpy(got, y0, sizeof(float) * n);
                conv2d_1x1_accumulate(&T, &cv, x, t->hw, act ? slope : NULL, got);
                CHECK(memcmp(got, act ? ref_act : ref, sizeof(float) * n) == 0,
                      "case %zu (%d -> %d, %d px), %d threads, PReLU %d", k, t->ci, t->co, t->hw, th, act);
            }
        free(x); free(wt); free(b); free(y0); free(ref); free(got); free(slope); free(ref_act);
    }
    nn_ctx_init(&T, 0);
}

// add_prelu_inplace is add_inplace then prelu_inplace, bit for bit, on either side of the size
// where it goes parallel, with negative and -0.0 sums.
TEST(add_prelu_equals_add_then_prelu) {
    static const int shapes[][2] = {{1, 1}, {3, 17}, {16, 4096}, {5, 6000}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const int c = shapes[k][0], hw = shapes[k][1];
        const int64_t n = (int64_t)c * hw;
        float *y0 = t_rand_buf(n, 1.0f), *x = t_rand_buf(n, 1.0f), *slope = t_rand_buf(c, 0.5f);
        float *want = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
        x[0] = -y0[0];   // a zero sum
        for (int th = 1; th <= 3; th += 2) {
            T.threads = th;
            memcpy(want, y0, sizeof(float) * n);
            add_inplace(&T, want, x, n);
            prelu_inplace(&T, want, c, hw, slope);
            memcpy(got, y0, sizeof(float) * n);
            add_prelu_inplace(&T, got, x, c, hw, slope);
            CHECK(memcmp(got, want, sizeof(float) * n) == 0, "%d x %d, %d threads", c, hw, th);
        }
        int neg = 0;
        for (int64_t i = 0; i < n; i++) neg += y0[i] + x[i] < 0;
        CHECK(neg > 0 || n == 1, "no negative sums in %d x %d", c, hw);
        free(y0); free(x); free(slope); free(want); free(got);
    }
    nn_ctx_init(&T, 0);
}

// ---- ViT ops: zero padding, bicubic resize with a scale factor, the SwiGLU gate -----------------

TEST(pad_zero_places_the_map) {
    nn_ctx_init(&T, 2);
    int c = 3, h = 5, w = 7, oh = 14, ow = 14, top = 4, left = 3;
    float *x = t_rand_buf(c * h * w, 1.0f), *y = malloc(sizeof(float) * c * oh * ow);
    for (int i = 0; i < c * oh * ow; i++) y[i] = 99.0f;
    pad_zero(&T, x, c, h, w, y, top, left, oh, ow);
    int bad = 0;
    for (int ch = 0; ch < c; ch++)
        for (int r = 0; r < oh; r++)
            for (int q = 0; q < ow; q++) {
                int sr = r - top, sq = q - left;
                float want = sr >= 0 && sr < h && sq >= 0 && sq < w ? x[(ch * h + sr) * w + sq] : 0.0f;
                bad += y[(ch * oh + r) * ow + q] != want;
            }
    CHECK(bad == 0, "%d values wrong", bad);
    free(x); free(y);
}

// PyTorch's bicubic (A = -0.75, taps clamped) with src = (o + 0.5)/scale - 0.5, in double.
static void bicubic_ref_taps(int o, int in, double scale, int idx[4], double w[4]) {
    double src = (o + 0.5) / scale - 0.5, f = floor(src), t = src - f, A = -0.75;
    double d[4] = {t + 1, t, 1 - t, 2 - t};
    for (int k = 0; k < 4; k++) {
        double a = d[k];
        w[k] = a <= 1 ? ((A + 2) * a - (A + 3)) * a * a + 1 : ((A * a - 5 * A) * a + 8 * A) * a - 4 * A;
        int i = (int)f - 1 + k;
        idx[k] = i < 0 ? 0 : i >= in ? in - 1 : i;
    }
}

TEST(resize_bicubic_cl_matches_reference) {
    nn_ctx_init(&T, 2);
    static const int cs[][4] = {{37, 37, 4, 5}, {37, 37, 52, 70}, {6, 9, 6, 9}, {10, 3, 1, 7}};
    int c = 5;
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        int h = cs[k][0], w = cs[k][1], oh = cs[k][2], ow = cs[k][3];
        double sh = (oh + 0.1) / h, sw = (ow + 0.1) / w;
        float *x = t_rand_buf(h * w * c, 1.0f), *y = malloc(sizeof(float) * oh * ow * c);
        resize_bicubic_cl(&T, x, h, w, c, y, oh, ow, sh, sw);
        double worst = 0.0;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                int iy[4], ix[4];
                double wy[4], wx[4];
                bicubic_ref_taps(oy, h, sh, iy, wy);
                bicubic_ref_taps(ox, w, sw, ix, wx);
                for (int ch = 0; ch < c; ch++) {
                    double r = 0.0;
                    for (int a = 0; a < 4; a++)
                        for (int b = 0; b < 4; b++) r += wy[a] * wx[b] * x[(iy[a] * w + ix[b]) * c + ch];
                    worst = fmax(worst, fabs(y[(oy * ow + ox) * c + ch] - r));
                }
            }
        // 1e-5: the op computes the source coordinate in float32 as PyTorch does (its ulp near 37 is
        // 3.8e-6, which moves the weights by about as much); the reference uses double.
        CHECK(worst < 1e-5, "%dx%d -> %dx%d: worst %.3g", h, w, oh, ow, worst);
        free(x); free(y);
    }
}

TEST(add_flipped_w_cl_matches_loop) {
    nn_ctx_init(&T, 2);
    int h = 7, w = 9, c = 5;
    float *x = t_rand_buf(h * w * c, 1.0f), *a = t_rand_buf(h * w * c, 1.0f), *b = malloc(sizeof(float) * h * w * c);
    for (int flip = 0; flip < 2; flip++) {
        memcpy(b, a, sizeof(float) * h * w * c);
        add_flipped_w_cl(&T, b, x, h, w, c, flip);
        int bad = 0;
        for (int y = 0; y < h; y++)
            for (int q = 0; q < w; q++)
                for (int k = 0; k < c; k++)
                    bad += b[(y * w + q) * c + k] != a[(y * w + q) * c + k] + x[(y * w + (flip ? w - 1 - q : q)) * c + k];
        CHECK(bad == 0, "flip %d: %d values wrong", flip, bad);
    }
    free(x); free(a); free(b);
}

TEST(silu_mul_matches_reference) {
    nn_ctx_init(&T, 2);
    int n = 100003;
    float *a = t_rand_buf(n, 12.0f), *b = t_rand_buf(n, 2.0f), *y = malloc(sizeof(float) * n);
    memcpy(y, a, sizeof(float) * n);
    silu_mul_inplace(&T, y, b, n);
    double worst = 0.0;
    for (int i = 0; i < n; i++) {
        double r = a[i] / (1.0 + exp(-(double)a[i])) * b[i];
        worst = fmax(worst, fabs(y[i] - r) / (fabs(r) + 1e-30));
    }
    CHECK(worst < 1e-6, "worst relative error %.3g", worst);
    free(a); free(b); free(y);
}

// ---- BLAS on the calling thread --------------------------------------------------------------

static double thread_cpu(int who) {
    struct rusage r;
    getrusage(who, &r);
    return r.ru_utime.tv_sec + 1e-6 * r.ru_utime.tv_usec + r.ru_stime.tv_sec + 1e-6 * r.ru_stime.tv_usec;
}

// A 1-thread context must run the sgemm of linear_forward on the calling thread alone (OpenBLAS
// would otherwise fork its own team, since a 1-thread region is not "active"), and must leave the
// host's OpenMP setting as it was. CPU time, not wall time: the machine may be shared.
TEST(blas_runs_on_the_calling_thread) {
    if (omp_get_num_procs() < 2) SKIP("one core: nothing to tell apart");
    int host = omp_get_max_threads();
    const int64_t n = 4096;
    const int c = 512;
    float *x = t_rand_buf(n * c, 1.0f), *W = t_rand_buf((int64_t)c * c, 0.1f), *y = malloc(sizeof(float) * n * c);
    nn_ctx one;
    nn_ctx_init(&one, 1);
    linear_forward(&one, x, n, c, W, NULL, c, y);   // warm-up
    double p0 = thread_cpu(RUSAGE_SELF), t0 = thread_cpu(RUSAGE_THREAD);
    for (int r = 0; r < 3; r++) linear_forward(&one, x, n, c, W, NULL, c, y);
    double all = thread_cpu(RUSAGE_SELF) - p0, mine = thread_cpu(RUSAGE_THREAD) - t0;
    CHECK(mine >= 0.9 * all, "the calling thread did %.3f s of %.3f s CPU: BLAS ran threads of its own",
          mine, all);
    CHECK(omp_get_max_threads() == host, "the host's OpenMP thread count changed: %d -> %d", host,
          omp_get_max_threads());
    free(x); free(W); free(y);
}

// ---- thread-count invariance --------------------------------------------------------------------

// Runs every threaded op with `threads` threads; out receives all outputs back to back.
static void run_all(int threads, float *out, const float *x, const float *wt) {
    err e = {0};
    T.threads = threads;
    float *o = out;
    static const conv_case cs[] = {
        {24, 24, 3, 1, 2, 2, 1, 66, 70, 1},   // im2col, several tiles
        {64, 48, 1, 1, 0, 1, 1, 66, 70, 1},   // 1x1
        {64, 48, 1, 1, 0, 1, 4, 66, 70, 0},   // 1x1 grouped
        {24, 24, 3, 1, 1, 1, 24, 66, 70, 1},  // depthwise
        {24, 30, 3, 2, 1, 1, 6, 66, 70, 0},   // grouped strided
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        const conv_case *c = &cs[i];
        conv2d cv = {c->ci, c->co, c->k, c->s, c->p, c->d, c->g, (float *)wt, c->bias ? (float *)wt + 7 : NULL, 0, NULL};
        conv2d_forward(&T, &cv, x, c->h, c->w, o, &e);
        o += (size_t)c->co * conv2d_out_size(c->h, c->k, c->s, c->p, c->d) * conv2d_out_size(c->w, c->k, c->s, c->p, c->d);
    }
    conv_transpose2x2_forward(&T, wt, 20, 20, x, 66, 70, o, &e);
    o += 20 * 4 * 66 * 70;
    linear_forward(&T, x, 1000, 64, wt, wt + 3, 96, o);
    o += 1000 * 96;
    layernorm_cl(&T, x, 2000, 64, wt, wt + 1, 1e-6f, o);
    o += 2000 * 64;
    memcpy(o, x, sizeof(float) * 100000);
    gelu_inplace(&T, o, 100000);
    o += 100000;
    memcpy(o, x, sizeof(float) * 100000);
    softmax_rows_inplace(&T, o, 100000 / 9, 9);
    o += 100000;
    global_avgpool(&T, x, 64, 4620, o);
    o += 64;
}

TEST(threads_bit_identical) {
    size_t n = 2 * 1000 * 1000;
    float *x = t_rand_buf(64 * 66 * 70, 1.0f), *wt = t_rand_buf(64 * 64 * 9, 0.2f);
    float *a = calloc(n, sizeof(float)), *b = calloc(n, sizeof(float)), *c = calloc(n, sizeof(float));
    for (int direct = 1; direct >= 0; direct--) {
        T.conv_im2col = !direct;
        run_all(1, a, x, wt);
        run_all(2, b, x, wt);
        run_all(3, c, x, wt);
        CHECK(memcmp(a, b, sizeof(float) * n) == 0, "direct %d: 1 vs 2 threads differ", direct);
        CHECK(memcmp(a, c, sizeof(float) * n) == 0, "direct %d: 1 vs 3 threads differ", direct);
    }
    T.conv_im2col = 0;
    nn_ctx_init(&T, 0);   // <= 0: all cores
    CHECK(T.threads == omp_get_num_procs(), "%d threads for %d cores", T.threads,
          omp_get_num_procs());
    nn_ctx_init(&T, 2);
    free(x); free(wt); free(a); free(b); free(c);
}

int main(int argc, char **argv) {
    t_seed(88172645463325252ull);   // this binary's data, as before the stream moved to testlib
    nn_ctx_init(&T, 0);   // every core
    (void)argc;
    RUN(conv2d_out_size_floors);
    RUN(conv2d_matches_reference);
    RUN(conv2d_forward_prelu_equals_two_calls);
    RUN(conv2d_forward_residual_prelu_equals_two_calls);
    RUN(depthwise_from_input_equals_packed_kernel);
    RUN(conv2d_wide_chunked_matches_gemm);
    RUN(conv2d_fold_bn_equals_conv_then_bn);
    RUN(conv_transpose2x2_matches_formula);
    RUN(linear_matches_reference);
    RUN(linear_gelu_equals_the_two_calls);
    RUN(linear_column_blocks_equal_one_gemm);
    RUN(linear_bf16_column_blocks_equal_one_gemm);
    RUN(layernorm_cl_matches_reference);
    RUN(batchnorm_matches_reference);
    RUN(activations_match_reference);
    RUN(softmax_rows_stable_and_correct);
    RUN(avgpool3x3s2_counts_padding);
    RUN(adaptive_avgpool_pytorch_bins);
    RUN(layout_ops);
    RUN(add_scaled_cl_matches_loop);
    RUN(copy_and_crop_match_loop);
    RUN(window_ops_match_loops);
    RUN(conv2d_1x1_accumulate_matches_loop);
    RUN(add_prelu_equals_add_then_prelu);
    RUN(conv2d_forward_many_equals_one_by_one);
    RUN(conv2d_skinny_1x1_equals_whole_map_gemm);
    RUN(groupsum_bn_prelu_equals_adds_then_bn_prelu);
    RUN(bn_prelu_shuffle_equals_bn_prelu_then_shuffle);
    RUN(pad_zero_places_the_map);
    RUN(resize_bicubic_cl_matches_reference);
    RUN(add_flipped_w_cl_matches_loop);
    RUN(silu_mul_matches_reference);
    RUN(blas_runs_on_the_calling_thread);
    RUN(threads_bit_identical);
    return t_finish(argv[0]);
}
