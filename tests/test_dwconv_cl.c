// dwconv3x3_cl (nn/dwconv_cl.c), the channels-last depthwise 3x3 conv of InternImage's DCNv3
// offset/mask branch: bit for bit against conv2d_forward (its direct kernel) on the NCHW
// transpose, within 1e-6 of |terms| of the depthwise loop (bias first, another summation order)
// and of a double reference, and bit-identical for 1, 2 and 3 threads. Shapes: H or W = 1, channel
// counts off the 64- and 16-lane blocks, with and without bias.
#include "test.h"
#include "../nn/nn.h"
#include <stdlib.h>
#include <string.h>

static nn_ctx T;


typedef struct { int h, w, c, bias; } dw_case;

static const dw_case cases[] = {
    {1, 1, 16, 1}, {1, 7, 64, 1}, {9, 1, 80, 1},   // H or W = 1
    {5, 6, 3, 1}, {7, 5, 17, 0}, {4, 9, 100, 1},    // c off the lane blocks: tail, 16 + tail, 64 + 32 + 4
    {13, 11, 64, 1}, {8, 12, 112, 0}, {6, 5, 160, 1},   // InternImage widths (T, B, L)
    {40, 37, 64, 1},                                  // enough work to run in parallel
};

// Double reference: y (h, w, c) and the sum of |terms| per output.
static void dw_ref(const dw_case *k, const float *x, const float *wt, const float *b, double *ref, double *mag) {
    for (int oy = 0; oy < k->h; oy++)
        for (int ox = 0; ox < k->w; ox++)
            for (int ch = 0; ch < k->c; ch++) {
                double s = b ? b[ch] : 0.0, m = b ? fabs(b[ch]) : 0.0;
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++) {
                        int iy = oy + ky - 1, ix = ox + kx - 1;
                        if (iy < 0 || iy >= k->h || ix < 0 || ix >= k->w) continue;
                        double t = (double)wt[ch * 9 + ky * 3 + kx] * x[((size_t)iy * k->w + ix) * k->c + ch];
                        s += t; m += fabs(t);
                    }
                size_t i = ((size_t)oy * k->w + ox) * k->c + ch;
                ref[i] = s; mag[i] = m;
            }
}

// y (h, w, c) through conv2d_forward on the NCHW transpose; im2col 1 takes the depthwise loop.
static int dw_nchw(const dw_case *k, const float *x, float *wt, float *b, int im2col, float *y) {
    err e = {0};
    size_t n = (size_t)k->h * k->w * k->c;
    float *xc = malloc(sizeof(float) * n), *yc = malloc(sizeof(float) * n);
    conv2d cv = {k->c, k->c, 3, 1, 1, 1, k->c, wt, b, 0, NULL};
    nhwc_to_nchw(&T, x, k->h, k->w, k->c, xc);
    T.conv_im2col = im2col;
    int rc = conv2d_forward(&T, &cv, xc, k->h, k->w, yc, &e);
    T.conv_im2col = 0;
    if (rc == OODSEG_OK) nchw_to_nhwc(&T, yc, k->c, k->h, k->w, y);
    free(xc); free(yc);
    return rc;
}

TEST(dwconv_cl_weights_transpose) {
    float w[5 * 9], wt[9 * 5];
    for (int i = 0; i < 45; i++) w[i] = (float)i;
    dwconv3x3_cl_weights(w, 5, wt);
    for (int ch = 0; ch < 5; ch++)
        for (int t = 0; t < 9; t++)
            CHECK(wt[t * 5 + ch] == w[ch * 9 + t], "tap %d channel %d: %g != %g", t, ch, wt[t * 5 + ch], w[ch * 9 + t]);
}

TEST(dwconv_cl_matches_nchw_paths_and_reference) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const dw_case *k = &cases[i];
        size_t n = (size_t)k->h * k->w * k->c;
        float *x = t_rand_buf((int64_t)n, 1.0f), *w = t_rand_buf((int64_t)k->c * 9, 0.5f);
        float *b = k->bias ? t_rand_buf(k->c, 1.0f) : NULL;
        float *wt = malloc(sizeof(float) * 9 * (size_t)k->c);
        float *y = malloc(sizeof(float) * n), *yd = malloc(sizeof(float) * n), *yl = malloc(sizeof(float) * n);
        double *ref = malloc(sizeof(double) * n), *mag = malloc(sizeof(double) * n);
        dwconv3x3_cl_weights(w, k->c, wt);
        dwconv3x3_cl(&T, x, k->h, k->w, k->c, wt, b, y);
        CHECK(dw_nchw(k, x, w, b, 0, yd) == OODSEG_OK, "case %zu: conv2d_forward failed", i);
        CHECK(dw_nchw(k, x, w, b, 1, yl) == OODSEG_OK, "case %zu: conv2d_forward (depthwise loop) failed", i);
        dw_ref(k, x, w, b, ref, mag);
        CHECK(memcmp(y, yd, sizeof(float) * n) == 0, "case %zu (%dx%dx%d bias %d): not bit-identical to "
              "conv2d_forward, max |diff| %.3g", i, k->h, k->w, k->c, k->bias, t_max_abs_diff(y, yd, (int64_t)n));
        int bad_loop = 0, bad_ref = 0;
        for (size_t j = 0; j < n; j++) {
            if (fabs((double)y[j] - yl[j]) > 1e-6 * mag[j] + 1e-30) bad_loop++;
            if (fabs(y[j] - ref[j]) > 1e-6 * mag[j] + 1e-30) bad_ref++;
        }
        CHECK(bad_loop == 0, "case %zu: %d outputs off the depthwise loop by > 1e-6 of |terms|", i, bad_loop);
        CHECK(bad_ref == 0, "case %zu: %d outputs off the double reference by > 1e-6 of |terms|", i, bad_ref);
        free(x); free(w); free(b); free(wt); free(y); free(yd); free(yl); free(ref); free(mag);
    }
}

TEST(dwconv_cl_thread_count_bit_identical) {
    const int h = 33, w = 29, c = 80;
    size_t n = (size_t)h * w * c;
    float *x = t_rand_buf((int64_t)n, 1.0f), *w0 = t_rand_buf(9 * c, 0.5f), *b = t_rand_buf(c, 1.0f);
    float *wt = malloc(sizeof(float) * 9 * c), *y1 = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    dwconv3x3_cl_weights(w0, c, wt);
    nn_ctx one;
    nn_ctx_init(&one, 1);
    dwconv3x3_cl(&one, x, h, w, c, wt, b, y1);
    for (int th = 2; th <= 3; th++) {
        nn_ctx ct;
        nn_ctx_init(&ct, th);
        memset(y, 0, sizeof(float) * n);
        dwconv3x3_cl(&ct, x, h, w, c, wt, b, y);
        CHECK(memcmp(y, y1, sizeof(float) * n) == 0, "%d threads differ from 1: max |diff| %.3g", th,
              t_max_abs_diff(y, y1, (int64_t)n));
    }
    free(x); free(w0); free(b); free(wt); free(y1); free(y);
}

int main(int argc, char **argv) {
    (void)argc;
    nn_ctx_init(&T, 2);
    RUN(dwconv_cl_weights_transpose);
    RUN(dwconv_cl_matches_nchw_paths_and_reference);
    RUN(dwconv_cl_thread_count_bit_identical);
    return t_finish(argv[0]);
}
