// Sliding-window inference (slide.h), once for every model.
#include "slide.h"
#include "../nn/window.h"
#include "../nn/prof.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int slide_windows(int h, int w, const infer_cfg *c, slide_window *win, int max) {
    int hg = (h - c->crop_h + c->stride_h - 1 > 0 ? h - c->crop_h + c->stride_h - 1 : 0) / c->stride_h + 1;
    int wg = (w - c->crop_w + c->stride_w - 1 > 0 ? w - c->crop_w + c->stride_w - 1 : 0) / c->stride_w + 1;
    int n = 0;
    for (int hi = 0; hi < hg; hi++)
        for (int wi = 0; wi < wg; wi++, n++) {
            if (!win || n >= max) continue;
            int y1 = hi * c->stride_h, x1 = wi * c->stride_w;
            int y2 = y1 + c->crop_h < h ? y1 + c->crop_h : h, x2 = x1 + c->crop_w < w ? x1 + c->crop_w : w;
            win[n] = (slide_window){y2 - c->crop_h > 0 ? y2 - c->crop_h : 0, y2, x2 - c->crop_w > 0 ? x2 - c->crop_w : 0, x2};
        }
    return n;
}

// "HxW" or "S" (S x S), each side in [1, 65536].
static int parse_hw(const char *flag, const char *v, int *h, int *w, err *e) {
    char *end;
    long a = strtol(v, &end, 10), b = a;
    if (end != v && (*end == 'x' || *end == 'X')) {
        const char *q = end + 1;
        b = strtol(q, &end, 10);
        if (end == q) a = 0;
    }
    if (end == v || *end || a < 1 || b < 1 || a > 65536 || b > 65536)
        return err_set(e, OODSEG_E_ARG, "--%s '%s': expected HxW (height x width, as mmseg's test_cfg) or one size S, "
                       "e.g. 1024x1024 or 512", flag, v);
    *h = (int)a, *w = (int)b;
    return OODSEG_OK;
}

int slide_configure(infer_cfg *c, const model_options *opt, const char *arch, err *e) {
    infer_cfg n = *c;
    const char *mode = opt ? opt->mode : NULL;
    if (mode && !strcmp(mode, "whole")) n.mode = INFER_WHOLE;
    else if (mode && !strcmp(mode, "slide")) n.mode = INFER_SLIDE;
    else if (mode) return err_set(e, OODSEG_E_ARG, "--mode '%s': expected whole or slide", mode);
    if (opt && opt->crop && parse_hw("crop", opt->crop, &n.crop_h, &n.crop_w, e)) return e->code;
    if (opt && opt->stride && parse_hw("stride", opt->stride, &n.stride_h, &n.stride_w, e)) return e->code;
    if (n.mode == INFER_WHOLE) {
        if (opt && (opt->crop || opt->stride) && !mode)
            return err_set(e, OODSEG_E_ARG, "--crop/--stride: %s runs whole images by default; add --mode slide", arch);
        *c = n;
        return OODSEG_OK;
    }
    if (n.crop_h < 1 || n.stride_h < 1)
        return err_set(e, OODSEG_E_ARG, "--mode slide: %s has no official slide setting; give --crop HxW and --stride HxW",
                       arch);
    if (n.stride_h > n.crop_h || n.stride_w > n.crop_w)
        return err_set(e, OODSEG_E_ARG, "--stride %dx%d is larger than --crop %dx%d: pixels between the windows would "
                       "have no prediction", n.stride_h, n.stride_w, n.crop_h, n.crop_w);
    *c = n;
    return OODSEG_OK;
}

// One stitched output: its map of the whole input in `out`, and the windows covering each cell.
typedef struct stitched {
    tensor *t;           // (1, c, H, W) in the caller's list
    float *count;        // (H, W)
    int th, tw;          // a window's size of this output
} stitched;

// Where a window's output of (th, tw) cells goes on a side of `full` cells, for a window [a, b) of an
// input side of n pixels with windows of `win` pixels.
static int place(int a, int b, int n, int win, int t, int full) {
    if (b == n) return full - t;
    int o = (int)(((int64_t)a * t * 2 + win) / (2 * (int64_t)win));
    return o < full - t ? o : full - t;
}

// Adds window wi's outputs (list wl) to the stitched maps, creating them at the first window.
static int stitch_window(const nn_ctx *ctx, const slide_window *s, int h, int w, const tensor_list *wl, tensor_list *out,
                         stitched *st, int *n_st, err *e) {
    int wh = s->y2 - s->y1, ww = s->x2 - s->x1;
    for (int i = 0, k = 0; i < wl->n; i++) {
        const tensor *x = &wl->t[i];
        if (x->ndim != 4) continue;
        int c = (int)x->shape[1], th = (int)x->shape[2], tw = (int)x->shape[3];
        int H = th == wh ? h : (int)(((int64_t)h * th + wh - 1) / wh);
        int W = tw == ww ? w : (int)(((int64_t)w * tw + ww - 1) / ww);
        if (k == *n_st) {   // the first window: make the map
            if (k == MODEL_MAX_TAPS + 8) return err_set(e, OODSEG_E_ARG, "slide: more than %d outputs", k);
            tensor *t = tl_add(out, x->name, 4, (int64_t[]){1, c, H, W}, e);
            if (!t) return e->code;
            st[k] = (stitched){t, NULL, th, tw};
            if (!(st[k].count = err_calloc(e, (size_t)H * W, sizeof(float), "a slide count map"))) return e->code;
            (*n_st)++;
        }
        stitched *o = &st[k++];
        if (strcmp(o->t->name, x->name) || o->th != th || o->tw != tw || o->t->shape[1] != c)
            return err_set(e, OODSEG_E_INTERNAL, "slide: window %d:%d,%d:%d returned '%s' (%d, %d, %d), unlike the "
                           "first window", s->y1, s->y2, s->x1, s->x2, x->name, c, th, tw);
        int oy = place(s->y1, s->y2, h, wh, th, H), ox = place(s->x1, s->x2, w, ww, tw, W);
        window_add(ctx, o->t->data, c, H, W, oy, ox, x->data, th, tw);
        window_count(o->count, H, W, oy, ox, th, tw);
    }
    return OODSEG_OK;
}

// Every stitched map divided by its counts; a cell no window covered is an error (it cannot
// happen with stride <= crop, which slide_configure checks).
static int divide(const nn_ctx *ctx, stitched *st, int n_st, err *e) {
    for (int k = 0; k < n_st; k++) {
        int64_t hw = st[k].t->shape[2] * st[k].t->shape[3];
        for (int64_t p = 0; p < hw; p++)
            if (st[k].count[p] == 0)
                return err_set(e, OODSEG_E_INTERNAL, "slide: cell %lld of '%s' lies in no window",
                               (long long)p, st[k].t->name);
        divide_by_count(ctx, st[k].t->data, (int)st[k].t->shape[1], hw, st[k].count);
    }
    return OODSEG_OK;
}

int slide_forward(model *m, const float *input, int h, int w, const char *want, tensor_list *out, err *e) {
    err_clear(e);
    const infer_cfg *c = &m->desc.infer;
    int n = slide_windows(h, w, c, NULL, 0);
    slide_window *win = err_malloc(e, (size_t)n * sizeof *win, "the slide windows");
    int wh = c->crop_h < h ? c->crop_h : h, ww = c->crop_w < w ? c->crop_w : w;
    float *crop = win ? err_malloc(e, (size_t)3 * wh * ww * sizeof(float), "a slide window") : NULL;   // (1, 3, wh, ww)
    stitched st[MODEL_MAX_TAPS + 8];
    int n_st = 0, first = out->n;
    PROF_BEGIN(&m->ctx, PROF_SLIDE);   // each window's forward nests its own families
    if (!crop) goto done;
    slide_windows(h, w, c, win, n);
    for (int i = 0; i < n; i++) {
        const slide_window *s = &win[i];
        window_crop(&m->ctx, input, 3, h, w, s->y1, s->x1, crop, wh, ww);
        tensor_list wl = {0};
        if (m->forward(m, crop, wh, ww, want, &wl, e) ||
            stitch_window(&m->ctx, s, h, w, &wl, out, st, &n_st, e)) {
            tl_free(&wl);
            err_prefix(e, "slide window %d of %d (rows %d-%d, columns %d-%d of %dx%d): ", i + 1, n, s->y1, s->y2 - 1,
                       s->x1, s->x2 - 1, w, h);
            goto done;
        }
        tl_free(&wl);
    }
    if (divide(&m->ctx, st, n_st, e)) goto done;
    if (model_wants(want, "slide.count"))
        for (int k = 0; k < n_st; k++)
            if (st[k].t->shape[2] == h && st[k].t->shape[3] == w) {
                tl_add_copy(out, "slide.count", 4, (int64_t[]){1, 1, h, w}, st[k].count, e);
                break;
            }
done:
    PROF_END(&m->ctx);
    for (int k = 0; k < n_st; k++) free(st[k].count);
    free(crop);
    free(win);
    if (e->code)   // nothing half-made stays in the caller's list
        while (out->n > first) tl_remove(out, out->t[out->n - 1].name);
    return e->code;
}
