// The weight binder (weights.h): key names from the prefix stack, shape checks through ckpt_get.
#include "weights.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void wb_init(wbind *b, ckpt *ck, err *e) {
    memset(b, 0, sizeof *b);
    b->ck = ck;
    b->e = e;
    err_clear(e);
}

// printf(fmt, ap) into o; a name that does not fit is a bug of the model code, reported as such.
static int vformat(wbind *b, char *o, size_t n, const char *fmt, va_list ap) {
    int w = vsnprintf(o, n, fmt, ap);
    if (w < 0 || (size_t)w >= n) {
        err_set(b->e, OODSEG_E_INTERNAL, "weight binder: key name '%s...' is longer than %zu characters", o, n - 1);
        return -1;
    }
    return 0;
}

void wb_push(wbind *b, const char *fmt, ...) {
    if (b->e->code) return;
    if (b->depth == WB_DEPTH) {
        err_set(b->e, OODSEG_E_INTERNAL, "weight binder: more than %d prefix levels under '%s'", WB_DEPTH, b->prefix);
        return;
    }
    size_t len = strlen(b->prefix);
    va_list ap;
    va_start(ap, fmt);
    int rc = vformat(b, b->prefix + len, sizeof b->prefix - len, fmt, ap);
    va_end(ap);
    if (rc) { b->prefix[len] = 0; return; }
    b->mark[b->depth++] = (int)len;
}

void wb_pop(wbind *b) {
    if (b->depth > 0) b->prefix[b->mark[--b->depth]] = 0;
}

// prefix + module + suffix, with exactly this shape. A names-and-shapes entry that matches is
// checked and marked used here without data; everything else (including its mismatches) goes
// through ckpt_get, so that every message is ckpt_get's.
static const float *bind(wbind *b, int ndim, const int64_t *shape, const char *module, const char *suffix) {
    if (b->e->code) return NULL;
    char name[320];
    int w = snprintf(name, sizeof name, "%s%s%s", b->prefix, module, suffix);
    if (w < 0 || (size_t)w >= sizeof name) {
        err_set(b->e, OODSEG_E_INTERNAL, "weight binder: key name '%s' is too long", name);
        return NULL;
    }
    ckpt_entry *en = (ckpt_entry *)ckpt_find(b->ck, name);
    if (!en && b->make_keys && !ckpt_add(b->ck, name, DT_F32, ndim, shape, NULL, b->e))
        en = (ckpt_entry *)ckpt_find(b->ck, name);
    if (en && !en->f32 && !en->raw && !en->released && en->ndim == ndim && en->src_dtype <= DT_F64) {
        int same = 1;
        for (int d = 0; d < ndim; d++) same &= en->shape[d] == shape[d];
        if (same) {
            en->used = 1;
            b->no_data++;
            return NULL;
        }
    }
    return ckpt_get(b->ck, name, ndim, shape, b->e);
}

// The module name of a binder call, printf(fmt, ap); -1 after an earlier failure or when too long.
static int module_name(wbind *b, char mod[160], const char *fmt, va_list ap) {
    return b->e->code ? -1 : vformat(b, mod, 160, fmt, ap);
}

// In each binder call below: declares `mod`, its printf-style name argument formatted, and `rc`.
#define MODULE_NAME(mod, last)                      \
    char mod[160];                                  \
    va_list ap;                                     \
    va_start(ap, last);                             \
    int rc = module_name(b, mod, last, ap);         \
    va_end(ap)

const float *wb_get(wbind *b, int ndim, const int64_t *shape, const char *fmt, ...) {
    MODULE_NAME(key, fmt);
    if (rc) return NULL;
    return bind(b, ndim, shape, key, "");
}

void wb_conv(wbind *b, conv2d *cv, int c_in, int c_out, int k, int stride, int dilation, int groups,
             const char *name, ...) {
    memset(cv, 0, sizeof *cv);
    cv->c_in = c_in, cv->c_out = c_out, cv->k = k, cv->stride = stride;
    cv->dilation = dilation, cv->groups = groups, cv->pad = dilation * (k - 1) / 2;
    MODULE_NAME(mod, name);
    if (rc) return;
    cv->weight = (float *)bind(b, SHAPE(c_out, c_in / groups, k, k), mod, ".weight");
}

void wb_conv_bias(wbind *b, conv2d *cv, const char *name, ...) {
    MODULE_NAME(mod, name);
    if (rc) return;
    cv->bias = (float *)bind(b, SHAPE(cv->c_out), mod, ".bias");
}

static void bind_bn(wbind *b, bn_params *bn, int c, const char *mod) {
    bn->gamma = bind(b, SHAPE(c), mod, ".weight");
    bn->beta = bind(b, SHAPE(c), mod, ".bias");
    bn->mean = bind(b, SHAPE(c), mod, ".running_mean");
    bn->var = bind(b, SHAPE(c), mod, ".running_var");
}

void wb_bn(wbind *b, bn_params *bn, int c, const char *name, ...) {
    memset(bn, 0, sizeof *bn);
    MODULE_NAME(mod, name);
    if (rc) return;
    bind_bn(b, bn, c, mod);
}

int bn_fold(ckpt *ck, conv2d *cv, const bn_params *bn, float eps, err *e) {
    if (!cv->weight || !bn->gamma || !bn->beta || !bn->mean || !bn->var) return OODSEG_OK;
    const float *w0 = cv->owned ? NULL : cv->weight, *b0 = cv->owned ? NULL : cv->bias;
    if (conv2d_fold_bn(cv, bn->gamma, bn->beta, bn->mean, bn->var, eps, e)) return e->code;
    // The folded conv owns its weights now: the checkpoint's copies would only double them (for
    // UperNet's head, 124 MB of InternImage-T's resident memory).
    ckpt_release(ck, w0), ckpt_release(ck, b0);
    ckpt_release(ck, bn->gamma), ckpt_release(ck, bn->beta);
    ckpt_release(ck, bn->mean), ckpt_release(ck, bn->var);
    return OODSEG_OK;
}

void wb_conv_bn(wbind *b, conv2d *cv, float eps, const char *name, ...) {
    MODULE_NAME(mod, name);
    if (rc) return;
    bn_params bn;
    bind_bn(b, &bn, cv->c_out, mod);
    if (!b->e->code) bn_fold(b->ck, cv, &bn, eps, b->e);
}

void wb_linear(wbind *b, const float **w, const float **bias, int c_in, int c_out, const char *name, ...) {
    *w = *bias = NULL;
    MODULE_NAME(mod, name);
    if (rc) return;
    *w = bind(b, SHAPE(c_out, c_in), mod, ".weight");
    *bias = bind(b, SHAPE(c_out), mod, ".bias");
}

void wb_norm(wbind *b, const float **w, const float **bias, int c, const char *name, ...) {
    *w = *bias = NULL;
    MODULE_NAME(mod, name);
    if (rc) return;
    *w = bind(b, SHAPE(c), mod, ".weight");
    *bias = bind(b, SHAPE(c), mod, ".bias");
}

const float *wb_prelu(wbind *b, int c, const char *name, ...) {
    MODULE_NAME(mod, name);
    if (rc) return NULL;
    return bind(b, SHAPE(c), mod, ".weight");
}

int wb_shape(const ckpt *ck, int64_t shape[8], const char *fmt, ...) {
    char name[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const ckpt_entry *en = ckpt_find(ck, name);
    if (!en) return 0;
    for (int i = 0; i < en->ndim && i < 8; i++) shape[i] = en->shape[i];
    return en->ndim > 0 ? en->ndim : -1;
}
