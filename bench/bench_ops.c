// Speed of the core ops: the sgemm peak of this machine (1 thread; 2 threads as two OpenMP threads
// each running a single-threaded sgemm on its own half, which is how the ops use BLAS), and the
// achieved GFLOP/s of conv2d on ESPNet and UperNet shapes. Prints medians of several runs.
// Wall-clock timings: run on an otherwise idle machine (the load average is printed).
//   usage: bench_ops [threads (0: 1 and 2)] [runs (default 7)] [gemm: 1 also times every conv with
//          the direct kernel off (im2col + sgemm), for comparison]
#include "../nn/nn.h"
#include "common.h"
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The context every op and model of this program runs on (main sets its threads).
static nn_ctx T;

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, int n) {
    qsort(v, n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
static double g_min;   // the fastest run of the last median() call of time_conv
static float *rbuf(size_t n) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) { s = s * 1664525u + 1013904223u; p[i] = (float)(s >> 8) / 16777216.0f - 0.5f; }
    return p;
}


typedef struct { const char *name; int ci, co, k, s, p, d, g, h, w, count; } shape;

// ESPNet (p 2, q 8, 20 classes) at 1024x512: every conv of the forward pass with its count.
static const shape espnet[] = {
    {"level1 3->16 s2", 3, 16, 3, 2, 1, 1, 1, 512, 1024, 1},
    {"l2_0.c1 19->12 s2", 19, 12, 3, 2, 1, 1, 1, 256, 512, 1},
    {"l2 d1 12->16", 12, 16, 3, 1, 1, 1, 1, 128, 256, 3},
    {"l2 d2 12->12", 12, 12, 3, 1, 2, 2, 1, 128, 256, 3},
    {"l2 d4 12->12", 12, 12, 3, 1, 4, 4, 1, 128, 256, 3},
    {"l2 d8 12->12", 12, 12, 3, 1, 8, 8, 1, 128, 256, 3},
    {"l2 d16 12->12", 12, 12, 3, 1, 16, 16, 1, 128, 256, 3},
    {"l2 c1 64->12 1x1", 64, 12, 1, 1, 0, 1, 1, 128, 256, 2},
    {"l3_0.c1 131->25 s2", 131, 25, 3, 2, 1, 1, 1, 128, 256, 1},
    {"l3 d1 25->28", 25, 28, 3, 1, 1, 1, 1, 64, 128, 9},
    {"l3 d2 25->25", 25, 25, 3, 1, 2, 2, 1, 64, 128, 9},
    {"l3 d4 25->25", 25, 25, 3, 1, 4, 4, 1, 64, 128, 9},
    {"l3 d8 25->25", 25, 25, 3, 1, 8, 8, 1, 64, 128, 9},
    {"l3 d16 25->25", 25, 25, 3, 1, 16, 16, 1, 64, 128, 9},
    {"l3 c1 128->25 1x1", 128, 25, 1, 1, 0, 1, 1, 64, 128, 8},
    {"classifier 256->20", 256, 20, 1, 1, 0, 1, 1, 64, 128, 1},
    {"level3_C 131->20", 131, 20, 1, 1, 0, 1, 1, 128, 256, 1},
    {"comb c1 40->4 1x1", 40, 4, 1, 1, 0, 1, 1, 128, 256, 1},
    {"comb d 4->4", 4, 4, 3, 1, 4, 4, 1, 128, 256, 5},
    {"conv 36->20 3x3", 36, 20, 3, 1, 1, 1, 1, 256, 512, 1},
};
// ESPNetv2 (s 2.0) at 1024x512: its grouped 1x1 convs (the EESP projections and expansions).
static const shape espnetv2_1x1[] = {
    {"l2_0 exp g4 96->96", 96, 96, 1, 1, 0, 1, 4, 128, 256, 1},
    {"l3_0 proj g4 128->32", 128, 32, 1, 1, 0, 1, 4, 128, 256, 1},
    {"l3_0 exp g4 128->128", 128, 128, 1, 1, 0, 1, 4, 64, 128, 1},
    {"l3 proj g4 256->64", 256, 64, 1, 1, 0, 1, 4, 64, 128, 4},
    {"l3 exp g4 256->256", 256, 256, 1, 1, 0, 1, 4, 64, 128, 3},
    {"l4_0 exp g4 256->256", 256, 256, 1, 1, 0, 1, 4, 32, 64, 1},
    {"l4 proj g4 512->128", 512, 128, 1, 1, 0, 1, 4, 32, 64, 7},
    {"l4 exp g4 512->512", 512, 512, 1, 1, 0, 1, 4, 32, 64, 7},
};
// ESPNetv2 and UperNet kinds of conv the ESPNet list lacks.
static const shape other[] = {
    {"v2 proj 1x1 g4 128->32", 128, 32, 1, 1, 0, 1, 4, 64, 128, 1},
    {"v2 exp 1x1 g4 128->128", 128, 128, 1, 1, 0, 1, 4, 64, 128, 1},
    {"v2 dw 3x3 d3 32", 32, 32, 3, 1, 3, 3, 32, 64, 128, 1},
    {"v2 pw g10 3x3 50->10", 50, 10, 3, 1, 1, 1, 10, 128, 256, 1},
    {"v2 pwconv g gcd 3x3 ...", 128, 96, 3, 1, 1, 1, 32, 64, 128, 1},
    {"uper fpn 512->512 3x3", 512, 512, 3, 1, 1, 1, 1, 32, 64, 1},
    {"uper bottleneck 2048->512", 2048, 512, 3, 1, 1, 1, 1, 16, 32, 1},
    {"uper lateral 1x1 256->512", 256, 512, 1, 1, 0, 1, 1, 64, 128, 1},
    {"intern dw 3x3 128", 128, 128, 3, 1, 1, 1, 128, 64, 128, 1},
};

// Median seconds of one conv; *gf gets its GFLOP count.
static double time_conv(const shape *s, int runs, double *gf) {
    err e = {0};
    int cig = s->ci / s->g;
    float *x = rbuf((size_t)s->ci * s->h * s->w), *wt = rbuf((size_t)s->co * cig * s->k * s->k);
    conv2d c = {s->ci, s->co, s->k, s->s, s->p, s->d, s->g, wt, NULL, 0, NULL};
    int ho = conv2d_out_size(s->h, s->k, s->s, s->p, s->d), wo = conv2d_out_size(s->w, s->k, s->s, s->p, s->d);
    float *y = malloc(sizeof(float) * (size_t)s->co * ho * wo);
    double t[32];
    conv2d_forward(&T, &c, x, s->h, s->w, y, &e);   // warm-up
    for (int r = 0; r < runs; r++) {
        double t0 = omp_get_wtime();
        conv2d_forward(&T, &c, x, s->h, s->w, y, &e);
        t[r] = omp_get_wtime() - t0;
    }
    *gf = 2.0 * s->co * cig * s->k * s->k * (double)ho * wo / 1e9;
    free(x); free(wt); free(y);
    double m = median(t, runs);
    g_min = t[0];
    return m;
}

// ConvTranspose2d(2, 2), c -> c channels on an h x w input.
static double time_convt(int c, int h, int w, int runs, double *gf) {
    err e = {0};
    float *x = rbuf((size_t)c * h * w), *wt = rbuf((size_t)c * c * 4), *y = rbuf((size_t)c * 4 * h * w);
    double t[32];
    conv_transpose2x2_forward(&T, wt, c, c, x, h, w, y, &e);
    for (int r = 0; r < runs; r++) {
        double t0 = omp_get_wtime();
        conv_transpose2x2_forward(&T, wt, c, c, x, h, w, y, &e);
        t[r] = omp_get_wtime() - t0;
    }
    *gf = 2.0 * c * c * 4 * (double)h * w / 1e9;
    free(x); free(wt); free(y);
    double m = median(t, runs);
    g_min = t[0];
    return m;
}

static int g_compare;   // also time the im2col + sgemm path

static void run_table(const char *title, const shape *tab, int n, int runs) {
    double tot_t = 0.0, tot_f = 0.0, tot_g = 0.0;
    printf("  %-28s %5s %9s %9s %8s %9s%s\n", title, "count", "ms median", "ms min", "GFLOP/s",
           "ms total", g_compare ? "  gemm ms" : "");
    for (int i = 0; i < n; i++) {
        double gf, t = time_conv(&tab[i], runs, &gf), tmin = g_min;
        tot_t += t * tab[i].count;
        tot_f += gf * tab[i].count;
        printf("  %-28s %5d %9.3f %9.3f %8.1f %9.2f", tab[i].name, tab[i].count, t * 1e3,
               tmin * 1e3, gf / t, t * tab[i].count * 1e3);
        if (g_compare) {
            T.conv_im2col = 1;
            double tg = time_conv(&tab[i], runs, &gf);
            T.conv_im2col = 0;
            tot_g += tg * tab[i].count;
            printf(" %9.3f", tg * 1e3);
        }
        printf("\n");
    }
    printf("  %-28s %5s %9s %9s %8.1f %9.2f", "total", "", "", "", tot_f / tot_t, tot_t * 1e3);
    if (g_compare) printf(" %9.2f", tot_g * 1e3);
    printf("\n");
}

// The three ConvTranspose2d(20, 20, 2, 2) of ESPNet at 1024x512.
static void run_convt(int runs) {
    static const int hw[3][2] = {{64, 128}, {128, 256}, {256, 512}};
    double tot = 0.0;
    for (int i = 0; i < 3; i++) {
        double gf, t = time_convt(20, hw[i][0], hw[i][1], runs, &gf);
        tot += t;
        printf("  convT 20->20 on %3dx%-3d      %5d %9.3f %9.3f %8.1f %9.2f\n", hw[i][0], hw[i][1], 1,
               t * 1e3, g_min * 1e3, gf / t, t * 1e3);
    }
    printf("  %-28s %5s %9s %9s %8s %9.2f\n", "total", "", "", "", "", tot * 1e3);
}

int main(int argc, char **argv) {
    nn_ctx_init(&T, 0);   // every core
    int only = argc > 1 ? atoi(argv[1]) : 0, runs = argc > 2 ? atoi(argv[2]) : 7;
    g_compare = argc > 3 ? atoi(argv[3]) : 0;
    if (runs < 1) runs = 1;
    if (runs > 32) runs = 32;
    printf("OpenBLAS %s\n", openblas_get_config());
    bench_print_loadavg();
    for (int th = 1; th <= 2; th++) {
        if (only && th != only) continue;
        nn_ctx_init(&T, th);
        printf("threads %d\n", th);
        printf("  sgemm peak (n=1536, per-thread slices): %.1f GFLOP/s\n", bench_sgemm_peak(1536, th, runs));
        run_table("ESPNet 1024x512 convs", espnet, (int)(sizeof espnet / sizeof espnet[0]), runs);
        run_table("ESPNetv2 s2.0 1x1 convs", espnetv2_1x1, (int)(sizeof espnetv2_1x1 / sizeof espnetv2_1x1[0]), runs);
        run_table("ESPNetv2 / UperNet convs", other, (int)(sizeof other / sizeof other[0]), runs);
        run_convt(runs);
    }
    return 0;
}
