// A model's bf16 weights, packed once (gemm_bf16.h): an open-addressing table keyed by the fp32
// weight's address, shape and layout. The ops look their weights up on every call (a few hundred
// lookups per forward), so the table is a hash, not a list; a mutex makes first-use packing safe
// when an op runs inside another op's parallel region.
#include "gemm_bf16.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    const float *w;
    int rows, cols;
    nn_bf16_layout layout;
    uint32_t *packed;
} entry;

struct nn_bf16_weights {
    pthread_mutex_t lock;
    entry *t;
    size_t cap, n;   // cap a power of two, n <= cap/2
};

int nn_bf16_weights_new(nn_bf16_weights **out, err *e) {
    nn_bf16_weights *s = calloc(1, sizeof *s);
    if (s) s->t = calloc(64, sizeof *s->t);
    if (!s || !s->t) { free(s); *out = NULL; return err_set(e, OODSEG_E_NOMEM, "out of memory for the bf16 weights"); }
    s->cap = 64;
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return OODSEG_OK;
}

void nn_bf16_weights_free(nn_bf16_weights *s) {
    if (!s) return;
    for (size_t i = 0; i < s->cap; i++) free(s->t[i].packed);
    free(s->t);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static size_t slot(const entry *t, size_t cap, const float *w, int rows, int cols, nn_bf16_layout layout) {
    size_t h = ((uintptr_t)w >> 4) * 0x9E3779B97F4A7C15ull;
    for (size_t i = (h >> 20) & (cap - 1);; i = (i + 1) & (cap - 1))
        if (!t[i].packed || (t[i].w == w && t[i].rows == rows && t[i].cols == cols && t[i].layout == layout))
            return i;
}

static int grow(nn_bf16_weights *s) {
    size_t cap = s->cap * 2;
    entry *t = calloc(cap, sizeof *t);
    if (!t) return -1;
    for (size_t i = 0; i < s->cap; i++)
        if (s->t[i].packed) t[slot(t, cap, s->t[i].w, s->t[i].rows, s->t[i].cols, s->t[i].layout)] = s->t[i];
    free(s->t);
    s->t = t;
    s->cap = cap;
    return 0;
}

static uint32_t *pack(const float *w, int rows, int cols, nn_bf16_layout layout, err *e) {
    size_t n = layout == NN_BF16_ROWS ? nn_bf16_rows_size(rows, cols) : nn_bf16_panels_size(cols, rows);
    // 64-byte aligned: the kernel reads panels as whole zmm vectors.
    uint32_t *p = aligned_alloc(64, (n * sizeof(uint32_t) + 63) / 64 * 64 + 64);
    if (!p) { err_set(e, OODSEG_E_NOMEM, "out of memory packing a %dx%d weight as bf16", rows, cols); return NULL; }
    if (layout == NN_BF16_ROWS) nn_bf16_pack_rows(w, cols, rows, cols, p);
    else nn_bf16_pack_panels_t(w, cols, rows, cols, p);
    return p;
}

const uint32_t *nn_bf16_weights_get(nn_bf16_weights *s, const float *w, int rows, int cols,
                                    nn_bf16_layout layout, err *e) {
    pthread_mutex_lock(&s->lock);
    uint32_t *p = NULL;
    if ((s->n + 1) * 2 > s->cap && grow(s)) {   // keep the table at most half full
        err_set(e, OODSEG_E_NOMEM, "out of memory for the bf16 weights' table");
    } else {
        size_t i = slot(s->t, s->cap, w, rows, cols, layout);
        p = s->t[i].packed;
        if (!p && (p = pack(w, rows, cols, layout, e))) {
            s->t[i] = (entry){w, rows, cols, layout, p};
            s->n++;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return p;
}

size_t nn_bf16_weights_count(nn_bf16_weights *s) {
    pthread_mutex_lock(&s->lock);
    size_t n = s->n;
    pthread_mutex_unlock(&s->lock);
    return n;
}

const uint32_t *nn_bf16_weights_for(const nn_ctx *ctx, const float *w, int rows, int cols,
                                    nn_bf16_layout layout, uint32_t **tmp, err *e) {
    *tmp = NULL;
    if (ctx->bf16_weights) return nn_bf16_weights_get(ctx->bf16_weights, w, rows, cols, layout, e);
    return *tmp = pack(w, rows, cols, layout, e);
}
