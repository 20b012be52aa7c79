#include "common.h"
#include "../nn/nn.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rng = 12345;

float bench_urand(void) {
    rng = rng * 1664525u + 1013904223u;
    return (float)(rng >> 8) / 16777216.0f - 0.5f;
}

int bench_cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_sgemm_peak(int n, int threads, int runs) {
    // BLAS single-threaded as in the ops (nn_sgemm): a 1-thread OpenMP region is inactive, so
    // OpenBLAS would otherwise fork its own threads and the "1 thread" peak would be the 2-thread one.
    size_t nn = (size_t)n * n;
    float *a = malloc(sizeof(float) * nn), *b = malloc(sizeof(float) * nn), *c = malloc(sizeof(float) * nn);
    if (!a || !b || !c) { free(a); free(b); free(c); return 0.0; }
    for (size_t i = 0; i < nn; i++) a[i] = bench_urand(), b[i] = bench_urand();
    int cols = n / threads;
    double t[32];
    if (runs > 32) runs = 32;
    if (runs < 1) runs = 1;
    for (int r = 0; r < runs; r++) {
        double t0 = omp_get_wtime();
        #pragma omp parallel for num_threads(threads)
        for (int i = 0; i < threads; i++)
            nn_sgemm(0, 0, n, cols, n, 1.0f, a, n, b + (size_t)i * cols, n, 0.0f, c + (size_t)i * cols, n);
        t[r] = omp_get_wtime() - t0;
    }
    free(a); free(b); free(c);
    qsort(t, (size_t)runs, sizeof t[0], bench_cmp_d);
    double med = runs % 2 ? t[runs / 2] : 0.5 * (t[runs / 2 - 1] + t[runs / 2]);
    return 2.0 * n * n * (double)cols * threads / med / 1e9;
}

void bench_print_loadavg(void) {
    FILE *la = fopen("/proc/loadavg", "r");
    char line[64] = "?\n";
    if (la) { if (!fgets(line, sizeof line, la)) snprintf(line, sizeof line, "?\n"); fclose(la); }
    printf("load average at start: %s", line);
}
