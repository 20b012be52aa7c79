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
#include "../models/weights.h"
#include "common.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>



// One tensor of random values: `fill` >= 0 gives fill + 0.1 * noise (norm scales, variances),
// else fan-in scaled noise.
static int add(ckpt *ck, const char *name, int nd, const int64_t *s, float fill, err *e) {
    int64_t n = 1;
    for (int d = 0; d < nd; d++) n *= s[d];
    float *x = malloc(sizeof(float) * (size_t)n);
    if (!x) return err_set(e, OODSEG_E_NOMEM, "bench weights");
    float sc = nd >= 2 ? 2.0f / sqrtf((float)(n / s[0])) : 0.2f;
    for (int64_t i = 0; i < n; i++) x[i] = fill >= 0 ? fill + 0.1f * bench_urand() : sc * bench_urand();
    int rc = ckpt_add(ck, name, DT_F32, nd, s, x, e);
    free(x);
    return rc;
}
#define ADD(ck, fill, name, ...) add(ck, name, WB_NARGS(__VA_ARGS__), (const int64_t[]){__VA_ARGS__}, fill, e)

static int vits14(ckpt **bb, ckpt **head, err *e) {
    const int D = 384, H = 1536, depth = 12, NC = 150;
    *bb = ckpt_new_memory(e);
    *head = ckpt_new_memory(e);
    if (!*bb || !*head) return e->code;
    ckpt *b = *bb;
    int rc = ADD(b, -1, "cls_token", 1, 1, D) || ADD(b, -1, "pos_embed", 1, 1370, D) || ADD(b, -1, "mask_token", 1, D) ||
             ADD(b, -1, "patch_embed.proj.weight", D, 3, 14, 14) || ADD(b, -1, "patch_embed.proj.bias", D);
    for (int i = 0; i < depth && !rc; i++) {
        char k[96];
#define K(s) (snprintf(k, sizeof k, "blocks.%d.%s", i, s), k)
        rc = ADD(b, 1, K("norm1.weight"), D) || ADD(b, -1, K("norm1.bias"), D) ||
             ADD(b, -1, K("attn.qkv.weight"), 3 * D, D) || ADD(b, -1, K("attn.qkv.bias"), 3 * D) ||
             ADD(b, -1, K("attn.proj.weight"), D, D) || ADD(b, -1, K("attn.proj.bias"), D) || ADD(b, 0.1f, K("ls1.gamma"), D) ||
             ADD(b, 1, K("norm2.weight"), D) || ADD(b, -1, K("norm2.bias"), D) || ADD(b, -1, K("mlp.fc1.weight"), H, D) ||
             ADD(b, -1, K("mlp.fc1.bias"), H) || ADD(b, -1, K("mlp.fc2.weight"), D, H) || ADD(b, -1, K("mlp.fc2.bias"), D) ||
             ADD(b, 0.1f, K("ls2.gamma"), D);
#undef K
    }
    if (!rc) rc = ADD(b, 1, "norm.weight", D) || ADD(b, -1, "norm.bias", D);
    ckpt *h = *head;
    if (!rc) rc = ADD(h, -1, "decode_head.conv_seg.weight", NC, D, 1, 1) || ADD(h, -1, "decode_head.conv_seg.bias", NC) ||
                  ADD(h, 1, "decode_head.bn.weight", D) || ADD(h, -1, "decode_head.bn.bias", D) ||
                  ADD(h, -1, "decode_head.bn.running_mean", D) || ADD(h, 1, "decode_head.bn.running_var", D);
    return rc ? e->code : OODSEG_OK;
}

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
    ckpt *bb, *head;
    model *m;
    if (vits14(&bb, &head, &e) || dinov2_create_pair(head, bb, NULL, &m, &e)) {
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
