// Forward time of ESPNet (p=2, q=8, Cityscapes) and ESPNetv2 (s=2.0, Cityscapes) at 1024x512, and of
// the CamVid ESPNet at 480x360, on 1 and 2 threads: median of `runs` forwards after one warm-up.
// Goals on 2 threads: ESPNet <= 0.10 s, ESPNetv2 <= 0.15 s (PyTorch 1.13 CPU: 0.25 s / 0.32 s).
//   usage: OODSEG_ASSETS=../shared bench_espnet [runs (default 11)] [threads (default: 1 and 2)]
// Also prints the median process CPU time per forward and the load average: on a shared machine the
// wall times of 2-thread runs mean little when the load is above the core count (OpenMP threads spin
// at barriers); 1-thread CPU time is then the closer estimate of the unloaded 1-thread wall time.
// The per-conv-shape cost of these networks is in bench_ops; `perf record` on this binary gives the
// per-function split.
#include "../models/model.h"
#include "../nn/nn.h"
#include <malloc.h>
#include "common.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

// The context every op and model of this program runs on (main sets its threads).
static nn_ctx T;

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    nn_ctx_init(&T, 0);   // every core
    // The CLI's malloc policy (cli/main.c), so that the times are those of `oodseg`. The
    // activations come from the model's arena, which needs no policy; what the policy still
    // saves here is the page faults of each forward's fresh logits (40 MB at 1024x512), whose
    // freed pages the next forward's logits reuse.
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    int runs = argc > 1 ? atoi(argv[1]) : 11, only = argc > 2 ? atoi(argv[2]) : 0;
    if (runs < 1) runs = 1;
    if (runs > 100) runs = 100;
    const char *assets = getenv("OODSEG_ASSETS");
    if (!assets || !*assets) assets = "../shared";
    static const struct { const char *path; int w, h; double goal; } nets[] = {
        {"models/espnet/pretrained/decoder/espnet_p_2_q_8.pth", 1024, 512, 0.10},
        {"models/espnetv2/espnetv2_s_2.0_city_1024x512.pth", 1024, 512, 0.15},
        {"models/espnet/pretrained/decoder/espnet_p_2_q_8_camvid.pth", 480, 360, 0},
    };
    bench_print_loadavg();
    printf("%-34s %-10s %7s %10s %10s %10s %10s\n", "model", "input", "threads", "median s", "min s", "cpu s",
           "goal s");
    for (size_t k = 0; k < sizeof nets / sizeof nets[0]; k++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", assets, nets[k].path);
        model *m = NULL;
        err e = {0};
        if (model_open(path, &T, NULL, &m, &e)) { printf("%s: %s\n", path, e.msg); continue; }
        int w = nets[k].w, h = nets[k].h;
        float *x = malloc(sizeof(float) * 3 * w * h);
        uint32_t s = 1;
        for (int i = 0; i < 3 * w * h; i++) { s = s * 1664525u + 1013904223u; x[i] = (float)(s >> 8) / 16777216.0f - 0.5f; }
        for (int th = 1; th <= 2; th++) {
            if (only && th != only) continue;
            m->ctx.threads = th;
            double t[100], c[100];
            for (int r = -1; r < runs; r++) {
                tensor_list out = {0};
                double t0 = omp_get_wtime(), c0 = cpu_now();
                if (m->forward(m, x, h, w, "", &out, &e)) { printf("forward: %s\n", e.msg); return 1; }
                if (r >= 0) { t[r] = omp_get_wtime() - t0; c[r] = cpu_now() - c0; }
                tl_free(&out);
            }
            qsort(t, runs, sizeof t[0], cmp_d);
            qsort(c, runs, sizeof c[0], cmp_d);
            char goal[16] = "-", in[16];
            if (nets[k].goal > 0 && th == 2) snprintf(goal, sizeof goal, "%.2f", nets[k].goal);
            snprintf(in, sizeof in, "%dx%d", w, h);
            printf("%-34s %-10s %7d %10.4f %10.4f %10.4f %10s\n", m->desc.title, in, th, t[runs / 2], t[0],
                   c[runs / 2], goal);
        }
        free(x);
        model_close(m);
    }
    return 0;
}
