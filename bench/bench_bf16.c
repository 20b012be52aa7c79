// The bf16 GEMM (nn/gemm_bf16.h) against cblas_sgemm in the same run, at UperNet's shapes: the
// head's 3x3 convs as GEMMs of M = 512 output channels, K = 4608 (512 channels x 9) or 18432
// (the fpn_bottleneck's 2048 x 9), N = 4096 output pixels, cut into WIDE_TILE = 1024-pixel work
// items as nn/conv.c does. The bf16 number includes the per-call conversion of the activations;
// the weights are packed once, outside the timing (as a model does). Then the head's 3x3 convs
// through fp32 im2col, fp32 Winograd, bf16 im2col and bf16 Winograd. Medians of several runs.
//   usage: bench_bf16 [threads (0: 1 and 2)] [runs (default 5)]
#include "../nn/nn.h"
#include "../nn/gemm_bf16.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include "common.h"

#define TILE 1024

static double median(double *v, int n) {
    qsort(v, n, sizeof *v, bench_cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static float *rbuf(size_t n) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = bench_urand();
    return p;
}

// GFLOP/s of C (m, n) = W (m, k) X (k, n) in TILE-column items over `threads` threads; bf16 or sgemm.
static double gemm_gflops(int m, int k, int n, int threads, int bf16, int runs) {
    float *w = rbuf((size_t)m * k), *x = rbuf((size_t)k * n), *c = rbuf((size_t)m * n);
    uint32_t *pw = malloc(sizeof(uint32_t) * nn_bf16_rows_size(m, k));
    nn_bf16_pack_rows(w, k, m, k, pw);
    nn_ctx ctx;
    nn_ctx_init(&ctx, threads);
    ctx.precision = bf16 ? NN_BF16 : NN_FP32;
    double t[64];
    int items = (n + TILE - 1) / TILE;
    for (int r = 0; r < runs; r++) {
        double t0 = omp_get_wtime();
        #pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
        for (int it = 0; it < items; it++) {
            int j0 = it * TILE, nt = n - j0 < TILE ? n - j0 : TILE;
            if (bf16) nn_gemm_bf16_a(&ctx, m, nt, k, pw, (k + 1) / 2, x + j0, n, c + j0, n, 0);
            else nn_sgemm(0, 0, m, nt, k, 1.0f, w, k, x + j0, n, 0.0f, c + j0, n);
        }
        t[r] = omp_get_wtime() - t0;
    }
    free(w); free(x); free(c); free(pw);
    return 2.0 * m * (double)k * n / median(t, runs) / 1e9;
}

// UperNet's 3x3 convs (InternImage-T at 512x1024) through the four paths a wide 3x3 can take, in
// one run: fp32 im2col + sgemm, fp32 Winograd F(4,3) (its weights prepared once), bf16 im2col
// (forced: conv.c sends these convs to Winograd under bf16 too) and bf16 Winograd (the models'
// bf16 path: U rounded to bf16 once, kept in the weight store).
typedef struct { const char *name; int ci, co, h, w; } shape;
static const shape upernet_t[] = {
    {"fpn_bottleneck 2048->512", 2048, 512, 128, 256},
    {"fpn_convs.0 512->512", 512, 512, 128, 256},
    {"fpn_convs.1 512->512", 512, 512, 64, 128},
    {"psp bottleneck 2560->512", 2560, 512, 16, 32},
};

static double time_conv(const nn_ctx *ctx, const conv2d *c, const float *x, int h, int w, float *y, int runs) {
    err e = {0};
    double t[64];
    conv2d_forward(ctx, c, x, h, w, y, &e);   // warm-up (bf16: packs the weight)
    for (int r = 0; r < runs; r++) {
        double t0 = omp_get_wtime();
        if (conv2d_forward(ctx, c, x, h, w, y, &e)) { fprintf(stderr, "%s\n", e.msg); exit(1); }
        t[r] = omp_get_wtime() - t0;
    }
    return median(t, runs);
}

static void conv_table(int threads, int runs) {
    printf("\nUperNet 3x3 convs, %d thread%s, median ms (GFLOP/s as direct-conv FLOPs over the time)\n", threads,
           threads == 1 ? "" : "s");
    printf("%-26s %16s %16s %16s %16s\n", "conv", "fp32 im2col", "fp32 winograd", "bf16 im2col", "bf16 winograd");
    for (size_t i = 0; i < sizeof upernet_t / sizeof *upernet_t; i++) {
        const shape *s = &upernet_t[i];
        err e = {0};
        float *x = rbuf((size_t)s->ci * s->h * s->w), *wt = rbuf((size_t)s->co * s->ci * 9);
        float *y = malloc(sizeof(float) * (size_t)s->co * s->h * s->w);
        conv2d c = {s->ci, s->co, 3, 1, 1, 1, 1, wt, NULL, 0, NULL};
        if (conv2d_winograd_prepare(&c, &e)) { fprintf(stderr, "%s\n", e.msg); exit(1); }
        nn_ctx f32, wino, b16, b16w;
        nn_ctx_init(&f32, threads);
        wino = b16 = f32;
        f32.conv_winograd = 0;
        wino.conv_winograd = 2;
        b16.precision = NN_BF16;
        b16.conv_winograd = 0;
        if (nn_bf16_weights_new(&b16.bf16_weights, &e)) { fprintf(stderr, "%s\n", e.msg); exit(1); }
        b16w = b16;   // the models' bf16 path for these convs: Winograd with U in bf16 (nn/winograd.c)
        b16w.conv_winograd = 2;
        double gf = 2.0 * s->co * s->ci * 9 * (double)s->h * s->w / 1e9;
        double a = time_conv(&f32, &c, x, s->h, s->w, y, runs), b = time_conv(&wino, &c, x, s->h, s->w, y, runs);
        double d = time_conv(&b16, &c, x, s->h, s->w, y, runs), g = time_conv(&b16w, &c, x, s->h, s->w, y, runs);
        printf("%-26s %8.1f (%5.0f) %8.1f (%5.0f) %8.1f (%5.0f) %8.1f (%5.0f)\n", s->name, a * 1e3, gf / a, b * 1e3,
               gf / b, d * 1e3, gf / d, g * 1e3, gf / g);
        nn_bf16_weights_free(b16.bf16_weights);
        conv2d_free(&c);
        free(x); free(wt); free(y);
    }
}

int main(int argc, char **argv) {
    int th = argc > 1 ? atoi(argv[1]) : 0, runs = argc > 2 ? atoi(argv[2]) : 5;
    if (runs < 1 || runs > 64) runs = 5;
    if (!nn_bf16_cpu()) {
        printf("bench_bf16: this CPU has no AVX512-BF16; nothing to time\n");
        return 0;
    }
    static const int ks[] = {4608, 18432};
    printf("GEMM M=512 N=4096 (items of %d columns), median of %d runs, GFLOP/s\n", TILE, runs);
    printf("%-8s %-8s %10s %10s %8s\n", "threads", "K", "sgemm", "bf16", "ratio");
    for (int t = th ? th : 1; t <= (th ? th : 2); t++)
        for (int i = 0; i < 2; i++) {
            double f = gemm_gflops(512, ks[i], 4096, t, 0, runs), b = gemm_gflops(512, ks[i], 4096, t, 1, runs);
            printf("%-8d %-8d %10.1f %10.1f %7.2fx\n", t, ks[i], f, b, b / f);
        }
    for (int t = th ? th : 1; t <= (th ? th : 2); t++) conv_table(t, runs);
    return 0;
}
