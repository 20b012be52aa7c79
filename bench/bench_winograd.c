// Winograd F(4,3) (nn/winograd.c) against im2col + sgemm on UperNet's 3x3 convs at InternImage-T's
// 512x1024 input (strides 4..32: 128x256 .. 16x32), and on narrower 3x3s that decide the dispatch
// threshold (WINOGRAD_MIN_CH in nn/conv.c). Per conv: median ms with Winograd off (the path the
// conv takes otherwise: im2col + sgemm, or the direct kernel below 33 output channels) and on,
// the effective GFLOP/s (direct-conv FLOPs 2*c_out*c_in*9*H*W over the time) and the speed-up;
// and the sgemm peak
// measured in the same run (per-thread slices, as the ops use BLAS). Winograd runs with its
// weights prepared once, as the models do. Wall-clock timings: run on an otherwise idle machine.
//   usage: bench_winograd [threads (0: 1 and 2)] [runs (default 3)] [skip the 128x256 maps: 1]
#include "../nn/nn.h"
#include "common.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

static nn_ctx T;

static float *rbuf(size_t n) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = bench_urand();
    return p;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bench_cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}


typedef struct { const char *name; int ci, co, h, w; } shape;

static const shape upernet_t[] = {
    {"fpn_bottleneck 2048->512", 2048, 512, 128, 256},
    {"fpn_convs.0 512->512", 512, 512, 128, 256},
    {"fpn_convs.1 512->512", 512, 512, 64, 128},
    {"fpn_convs.2 512->512", 512, 512, 32, 64},
    {"psp bottleneck 2560->512", 2560, 512, 16, 32},
};
static const shape narrow[] = {
    {"32->32", 32, 32, 64, 128},     {"48->48", 48, 48, 64, 128},   {"64->64", 64, 64, 64, 128},
    {"128->128", 128, 128, 64, 128}, {"256->256", 256, 256, 32, 64}, {"64->256", 64, 256, 32, 64},
    {"512->512 8x16", 512, 512, 8, 16},
};

// Median seconds of the conv with conv_winograd = wg.
static double time_conv(const conv2d *c, const float *x, int h, int w, float *y, int wg, int runs) {
    err e = {0};
    double t[32];
    T.conv_winograd = wg;
    conv2d_forward(&T, c, x, h, w, y, &e);   // warm-up
    for (int r = 0; r < runs; r++) {
        double t0 = omp_get_wtime();
        if (conv2d_forward(&T, c, x, h, w, y, &e)) { fprintf(stderr, "%s\n", e.msg); exit(1); }
        t[r] = omp_get_wtime() - t0;
    }
    T.conv_winograd = 1;
    return median(t, runs);
}

static void run_table(const char *title, const shape *tab, int n, int runs, int skip_big) {
    printf("  %-26s %9s %9s %8s %8s %7s\n", title, "off ms", "wino ms", "off GF", "wino GF", "speedup");
    double tg = 0, tw = 0;
    for (int i = 0; i < n; i++) {
        const shape *s = &tab[i];
        if (skip_big && s->h >= 128) continue;
        err e = {0};
        float *x = rbuf((size_t)s->ci * s->h * s->w), *wt = rbuf((size_t)s->co * s->ci * 9);
        float *y = malloc(sizeof(float) * (size_t)s->co * s->h * s->w);
        conv2d c = {s->ci, s->co, 3, 1, 1, 1, 1, wt, NULL, 0, NULL};
        if (conv2d_winograd_prepare(&c, &e)) { fprintf(stderr, "%s\n", e.msg); exit(1); }
        double gf = 2.0 * s->co * s->ci * 9 * (double)s->h * s->w / 1e9;
        double a = time_conv(&c, x, s->h, s->w, y, 0, runs), b = time_conv(&c, x, s->h, s->w, y, 2, runs);
        tg += a, tw += b;
        printf("  %-26s %9.2f %9.2f %8.1f %8.1f %7.2f   (%dx%d)\n", s->name, a * 1e3, b * 1e3, gf / a, gf / b,
               a / b, s->h, s->w);
        conv2d_free(&c);   // the Winograd weights; x's and wt's buffers are this function's
        free(x); free(wt); free(y);
    }
    printf("  %-26s %9.2f %9.2f %8s %8s %7.2f\n", "total", tg * 1e3, tw * 1e3, "", "", tg / tw);
}

int main(int argc, char **argv) {
    int only = argc > 1 ? atoi(argv[1]) : 0, runs = argc > 2 ? atoi(argv[2]) : 3;
    int skip_big = argc > 3 ? atoi(argv[3]) : 0;
    if (runs < 1) runs = 1;
    if (runs > 32) runs = 32;
    bench_print_loadavg();
    for (int th = 1; th <= 2; th++) {
        if (only && th != only) continue;
        nn_ctx_init(&T, th);
        printf("threads %d\n", th);
        printf("  sgemm peak (n=1536, per-thread slices): %.1f GFLOP/s\n", bench_sgemm_peak(1536, th, runs));
        run_table("UperNet (InternImage-T)", upernet_t, (int)(sizeof upernet_t / sizeof upernet_t[0]), runs, skip_big);
        run_table("threshold (3x3, pad 1)", narrow, (int)(sizeof narrow / sizeof narrow[0]), runs, skip_big);
    }
    return 0;
}
