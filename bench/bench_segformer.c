// SegFormer-B0 forward time at 512x512 (an ADE20K-size input, whole mode) with random weights in the
// shapes of the real checkpoint (models/random_weights.h, built in memory), on 1 and 2 threads, and
// the share of the attention core: attention_forward timed alone on the shapes of every encoder
// layer (queries N = h*w of the stage, keys Nr = N / sr^2), summed over the layers, divided by the
// whole forward. Prints the command line and a Markdown table.
//
//   build/bench/bench_segformer [--size 512x512] [--threads 1,2] [--runs 5]
//        [--model b0-ade20k]
#include "../models/segformer.h"
#include "../models/random_weights.h"
#include "../nn/nn.h"
#include "common.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>




// Median of `runs` calls of attention_forward on every encoder layer's shapes, summed over layers.
static double attention_seconds(const nn_ctx *ctx, const segformer_arch *a, int h, int w, int runs) {
    double total = 0;
    for (int i = 0, ph = h, pw = w; i < 4; i++) {
        ph = (ph + a->stride[i] - 1) / a->stride[i], pw = (pw + a->stride[i] - 1) / a->stride[i];
        int C = a->dims[i], N = ph * pw, Nr = (ph / a->sr[i]) * (pw / a->sr[i]);
        float *q = malloc(sizeof(float) * (size_t)N * C), *k = malloc(sizeof(float) * (size_t)Nr * C);
        float *v = malloc(sizeof(float) * (size_t)Nr * C), *o = malloc(sizeof(float) * (size_t)N * C);
        for (int64_t x = 0; x < (int64_t)N * C; x++) q[x] = bench_urand();
        for (int64_t x = 0; x < (int64_t)Nr * C; x++) k[x] = bench_urand(), v[x] = bench_urand();
        double t[16];
        err e = {0};
        for (int r = 0; r < runs; r++) {
            double t0 = omp_get_wtime();
            attention_forward(ctx, q, k, v, N, Nr, a->heads[i], C / a->heads[i], 0.125f, o, &e);
            t[r] = omp_get_wtime() - t0;
        }
        qsort(t, (size_t)runs, sizeof t[0], bench_cmp_d);
        total += t[runs / 2] * a->depths[i];
        free(q), free(k), free(v), free(o);
    }
    return total;
}

int main(int argc, char **argv) {
    int h = 512, w = 512, runs = 5, nth = 0, th[4] = {1, 2};
    const char *which = "b0-ade20k";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--size")) sscanf(argv[i + 1], "%dx%d", &w, &h);
        else if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--model")) which = argv[i + 1];
        else if (!strcmp(argv[i], "--threads"))
            for (char *p = argv[i + 1]; *p && nth < 4; p += strcspn(p, ",") + (p[strcspn(p, ",")] != 0))
                th[nth++] = atoi(p);
    }
    if (!nth) nth = 2;
    if (runs < 1 || runs > 15) runs = 5;
    char arch[64];
    snprintf(arch, sizeof arch, "segformer-%s", which);
    printf("`bench_segformer --model %s --size %dx%d --runs %d`\n\n", which, w, h, runs);
    err e = {0};
    ckpt *ck = random_ckpt(arch, &e);
    segformer_arch a;
    model_desc d;
    model *m = NULL;
    if (!ck || segformer_describe(ck, NULL, &d, &a, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
    nn_ctx ctx;
    nn_ctx_init(&ctx, 1);
    if (model_from_ckpt(ck, &ctx, NULL, &m, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
    float *x = malloc(sizeof(float) * 3 * (size_t)h * w);
    for (int64_t i = 0; i < 3LL * h * w; i++) x[i] = 2.0f * bench_urand();
    printf("%s, %lld parameters, random weights, input %dx%d (WxH), whole mode\n\n", d.title,
           (long long)d.num_params, w, h);
    printf("| threads | forward (median of %d) | attention core | attention share |\n|---|---|---|---|\n", runs);
    for (int t = 0; t < nth; t++) {
        nn_ctx_init(&m->ctx, th[t]);
        double s[16];
        for (int r = -1; r < runs; r++) {   // one warm-up
            tensor_list out = {0};
            double t0 = omp_get_wtime();
            if (m->forward(m, x, h, w, NULL, &out, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
            if (r >= 0) s[r] = omp_get_wtime() - t0;
            tl_free(&out);
        }
        qsort(s, (size_t)runs, sizeof s[0], bench_cmp_d);
        double att = attention_seconds(&m->ctx, &a, h, w, runs);
        printf("| %d | %.1f ms | %.1f ms | %.0f %% |\n", th[t], 1e3 * s[runs / 2], 1e3 * att, 100 * att / s[runs / 2]);
    }
    free(x);
    model_close(m);
    return 0;
}
