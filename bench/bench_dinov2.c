// DINOv2 ViT-S/14 + the linear BNHead (ADE20K, 150 classes) forward time on a 512x512 input (one
// ADE20K slide window: CenterPadding to 518, 37x37 patches, 1,370 tokens), with random weights
// in the real shapes (ViT-S: D 384, 12 blocks, 6 heads, FFN 1536), on 1 and 2 threads; and the
// share of attention: the same 12 attention_forward calls (1,370 x 1,370, 6 heads of 64) timed
// alone, as a fraction of the forward. Prints a Markdown table.
//
//   build/bench/bench_dinov2 [--threads 1,2] [--runs 5] [--size 512]
//
// Compare with bench/bench_dinov2.py (the official PyTorch code, same shapes) run in the same sitting.
#include "../models/dinov2.h"
#include "../models/random_weights.h"
#include "../nn/nn.h"
#include "common.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

static double median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, bench_cmp_d);
    return t[n / 2];
}

int main(int argc, char **argv) {
    const char *threads_list = "1,2";
    int runs = 5, size = 512;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads_list = argv[i + 1];
        else if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--size")) size = atoi(argv[i + 1]);
    }
    if (runs < 1 || runs > 50 || size < 14) { fprintf(stderr, "bad --runs or --size\n"); return 2; }
    err e = {0};
    model *m;
    if (random_model_open("dinov2-vits14-ade20k", NULL, NULL, &m, &e)) {
        fprintf(stderr, "bench_dinov2: %s\n", e.msg);
        return 1;
    }
    float *x = malloc(sizeof(float) * 3 * size * size);
    for (int i = 0; i < 3 * size * size; i++) x[i] = 2.0f * bench_urand();
    int tokens = 1 + ((size + 13) / 14) * ((size + 13) / 14), D = 384, heads = 6, hd = 64;
    float *q = malloc(sizeof(float) * (size_t)tokens * D), *k = malloc(sizeof(float) * (size_t)tokens * D);
    float *v = malloc(sizeof(float) * (size_t)tokens * D), *o = malloc(sizeof(float) * (size_t)tokens * D);
    for (int i = 0; i < tokens * D; i++) q[i] = bench_urand(), k[i] = bench_urand(), v[i] = bench_urand();
    printf("%s: %s, input %dx%d (%d tokens), %d runs (median)\n\n", argv[0], m->desc.title, size, size, tokens, runs);
    printf("| threads | forward s | attention s (12 calls) | attention share |\n|---:|---:|---:|---:|\n");
    char buf[64];
    snprintf(buf, sizeof buf, "%s", threads_list);
    for (char *save = NULL, *tk = strtok_r(buf, ",", &save); tk; tk = strtok_r(NULL, ",", &save)) {
        nn_ctx_init(&m->ctx, atoi(tk));
        double tf[50], ta[50];
        tensor_list out = {0};
        if (m->forward(m, x, size, size, "logits", &out, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }   // warm-up
        tl_free(&out);
        for (int r = 0; r < runs; r++) {
            double t0 = omp_get_wtime();
            if (m->forward(m, x, size, size, "logits", &out, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
            tf[r] = omp_get_wtime() - t0;
            tl_free(&out);
            t0 = omp_get_wtime();
            for (int b = 0; b < 12; b++)
                if (attention_forward(&m->ctx, q, k, v, tokens, tokens, heads, hd, 0.125f, o, &e)) return 1;
            ta[r] = omp_get_wtime() - t0;
        }
        double f = median(tf, runs), a = median(ta, runs);
        printf("| %d | %.3f | %.3f | %.0f %% |\n", m->ctx.threads, f, a, 100.0 * a / f);
    }
    free(x); free(q); free(k); free(v); free(o);
    model_close(m);
    return 0;
}
