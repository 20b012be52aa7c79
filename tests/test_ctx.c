// The explicit context: two models with different thread counts run at the same time in two host
// threads (pthreads), several forwards each, and every output is bit for bit what each model gives
// when it runs alone. Nothing process-wide may leak from one model's context into the other's.
#include "test.h"
#include "../models/model.h"
#include "../nn/nn.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define ITERS 3

typedef struct job {
    model *m;
    const float *x;
    int h, w;
    const char *want;
    tensor_list ref;        // the run alone
    int mismatches, rc;
    char msg[1024];
} job;

static float *input(int h, int w, unsigned seed) {
    float *x = malloc(sizeof(float) * 3 * h * w);
    for (int i = 0; i < 3 * h * w; i++) x[i] = (float)(((unsigned)i * 104729u + seed) % 511u) / 255.0f - 1.0f;
    return x;
}

static int same(const tensor_list *a, const tensor_list *b) {
    if (a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++) {
        if (strcmp(a->t[i].name, b->t[i].name) || tensor_numel(&a->t[i]) != tensor_numel(&b->t[i])) return 0;
        if (memcmp(a->t[i].data, b->t[i].data, sizeof(float) * (size_t)tensor_numel(&a->t[i]))) return 0;
    }
    return 1;
}

static void *run(void *p) {
    job *j = p;
    for (int it = 0; it < ITERS; it++) {
        tensor_list out = {0};
        err e = {0};
        if ((j->rc = j->m->forward(j->m, j->x, j->h, j->w, j->want, &out, &e))) {
            snprintf(j->msg, sizeof j->msg, "%s", e.msg);
            tl_free(&out);
            return NULL;
        }
        j->mismatches += !same(&out, &j->ref);
        tl_free(&out);
    }
    return NULL;
}

static model *open_with(const char *path, int threads) {
    nn_ctx c;
    nn_ctx_init(&c, threads);
    model *m = NULL;
    err e = {0};
    if (model_open(path, &c, NULL, &m, &e)) fprintf(stderr, "  %s\n", e.msg);
    return m;
}

// Model a on 1 thread and model b on 2 threads, each first alone, then both at once.
static void two_at_once(const char *pa, int ha, int wa, const char *pb, int hb, int wb) {
    model *ma = open_with(pa, 1), *mb = open_with(pb, 2);
    REQUIRE(ma && mb);
    CHECK(ma->ctx.threads == 1 && mb->ctx.threads == 2);
    job a = {ma, input(ha, wa, 1), ha, wa, ma->desc.default_taps, {0}, 0, 0, ""};
    job b = {mb, input(hb, wb, 2), hb, wb, mb->desc.default_taps, {0}, 0, 0, ""};
    err e = {0};
    REQUIRE(ma->forward(ma, a.x, ha, wa, a.want, &a.ref, &e) == 0, "%s", e.msg);
    REQUIRE(mb->forward(mb, b.x, hb, wb, b.want, &b.ref, &e) == 0, "%s", e.msg);
    pthread_t ta, tb;
    REQUIRE(pthread_create(&ta, NULL, run, &a) == 0);
    REQUIRE(pthread_create(&tb, NULL, run, &b) == 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(a.rc == 0 && b.rc == 0, "%s %s", a.msg, b.msg);
    CHECK(a.mismatches == 0, "%s (1 thread): %d of %d concurrent forwards differ from the run alone",
          ma->desc.arch, a.mismatches, ITERS);
    CHECK(b.mismatches == 0, "%s (2 threads): %d of %d concurrent forwards differ from the run alone",
          mb->desc.arch, b.mismatches, ITERS);
    tl_free(&a.ref); tl_free(&b.ref);
    free((float *)a.x); free((float *)b.x);
    model_close(ma); model_close(mb);
}

TEST(espnet_and_espnetv2_at_once) {
    ASSET_OR_SKIP(pa, "models/espnet/pretrained/decoder/espnet_p_2_q_8.pth");
    char a[1024];
    snprintf(a, sizeof a, "%s", pa);
    ASSET_OR_SKIP(pb, "models/espnetv2/espnetv2_s_2.0_city_1024x512.pth");
    int s = t_sanitized() ? 4 : 1;   // smaller inputs under the sanitizers
    two_at_once(a, 256 / s, 512 / s, pb, 256 / s, 512 / s);
}

TEST(tiny_internimages_at_once) {
    ASSET_OR_SKIP(pa, "golden/tiny-t/model.safetensors");
    char a[1024];
    snprintf(a, sizeof a, "%s", pa);
    ASSET_OR_SKIP(pb, "golden/tiny-l/model.safetensors");
    two_at_once(a, 64, 96, pb, 96, 64);
}

int main(int argc, char **argv) {
    (void)argc;
    RUN(espnet_and_espnetv2_at_once);
    RUN(tiny_internimages_at_once);
    return t_finish(argv[0]);
}
