#include "common.h"
#include "../core/json.h"
#include <math.h>
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

// value = base + scale * U(-0.5, 0.5), by the kind of tensor the key names.
static void fill(const char *name, int ndim, int64_t fan_in, int is_int, float *buf, int64_t numel) {
    size_t ln = strlen(name);
    float base = 0, scale = 2.0f * sqrtf(3.0f / (float)fan_in);       // conv / linear weights
    if (is_int) base = 160000, scale = 0;                             // num_batches_tracked
    else if (strstr(name, "running_var")) base = 1, scale = 0.2f;
    else if (strstr(name, "running_mean")) scale = 0.1f;
    else if (strstr(name, "gamma")) base = 0.5f, scale = 0.2f;
    else if (ndim == 1 && ln > 7 && !strcmp(name + ln - 7, ".weight")) base = 1, scale = 0.2f;  // LN, BN
    else if (ndim == 1) scale = 0.05f;                               // biases
    for (int64_t i = 0; i < numel; i++) buf[i] = base + scale * bench_urand();
}

static json *read_json(const char *path, err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) { err_set(e, OODSEG_E_IO, "cannot open %s (set OODSEG_ASSETS)", path); return NULL; }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = len > 0 ? malloc((size_t)len) : NULL;
    size_t got = text ? fread(text, 1, (size_t)len, f) : 0;
    fclose(f);
    json *j = len > 0 && got == (size_t)len ? json_parse(text, (size_t)len, path, e) : NULL;
    if (!j && !e->code) err_set(e, OODSEG_E_IO, "cannot read %s", path);
    free(text);
    return j;
}

ckpt *bench_random_ckpt(const char *manifest, err *e) {
    json *j = read_json(manifest, e);
    if (!j) return NULL;
    const json *keys = json_get(j, "keys");
    ckpt *ck = keys ? ckpt_new_memory(e) : NULL;
    float *buf = NULL;
    for (int k = 0; ck && k < keys->n; k++) {
        const char *name = json_get(&keys->items[k], "name")->str;
        const json *sh = json_get(&keys->items[k], "shape");
        int64_t shape[8], numel = 1, fan_in = 1;
        for (int d = 0; d < sh->n && d < 8; d++) {
            shape[d] = sh->items[d].i64, numel *= shape[d];
            if (d > 0) fan_in *= shape[d];
        }
        int is_int = !strcmp(json_get(&keys->items[k], "dtype")->str, "I64");
        free(buf);
        if (!(buf = malloc(sizeof(float) * (size_t)(numel ? numel : 1)))) {
            err_set(e, OODSEG_E_NOMEM, "random weights");
            ckpt_close(ck);
            ck = NULL;
            break;
        }
        fill(name, sh->n, fan_in, is_int, buf, numel);
        if (ckpt_add(ck, name, is_int ? DT_I64 : DT_F32, sh->n, shape, buf, e)) { ckpt_close(ck); ck = NULL; }
    }
    free(buf);
    json_free(j);
    return ck;
}
