// The test-time preprocessing of each reference pipeline, reproduced to the bit: mmseg (InternImage),
// ESPNet's VisualizeResults.py and EdgeNets' test_segmentation.py. The recipe (models/model.h) says
// which; the arithmetic below follows the reference libraries' float32 order of operations.
#include "model.h"
#include "../nn/nn.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SIDE 16384

// mmcv rescale_size + _scale_size: f = min(long/max(w,h), short/min(w,h)) in double,
// new = int(w*f + 0.5) (Python int() truncates; the values are positive).
static void keep_ratio_size(const preprocess *p, int w, int h, int *ow, int *oh) {
    double lng = p->size_w > p->size_h ? p->size_w : p->size_h;
    double sht = p->size_w > p->size_h ? p->size_h : p->size_w;
    double mx = w > h ? w : h, mn = w > h ? h : w;
    double f1 = lng / mx, f2 = sht / mn, f = f1 < f2 ? f1 : f2;
    *ow = (int)(w * f + 0.5);
    *oh = (int)(h * f + 0.5);
    if (*ow < 1) *ow = 1;
    if (*oh < 1) *oh = 1;
}

static int round_up(int v, int d) { return d > 0 ? (v + d - 1) / d * d : v; }

static int side_ok(int v, int mod, int need_zero) {
    if (mod <= 0) return 1;
    int r = v % mod;
    return r == 0 || (!need_zero && r == mod - 1);
}

// "nearby sizes: 352, 359, 360" (up to two valid values below and two above v).
static void nearby(int v, int mod, int need_zero, char *buf, size_t n) {
    int below[2], above[2], nb = 0, na = 0;
    for (int s = v - 1; s >= 1 && nb < 2; s--) if (side_ok(s, mod, need_zero)) below[nb++] = s;
    for (int s = v + 1; s <= MAX_SIDE && na < 2; s++) if (side_ok(s, mod, need_zero)) above[na++] = s;
    size_t len = 0;
    buf[0] = 0;
    for (int i = nb - 1; i >= 0; i--)
        len += snprintf(buf + len, len < n ? n - len : 0, "%s%d", len ? ", " : "", below[i]);
    for (int i = 0; i < na; i++)
        len += snprintf(buf + len, len < n ? n - len : 0, "%s%d", len ? ", " : "", above[i]);
}

static int parse_wxh(const char *s, int *w, int *h) {
    char *end;
    errno = 0;
    long a = strtol(s, &end, 10);
    if (end == s || (*end != 'x' && *end != 'X') || errno) return 0;
    const char *s2 = end + 1;
    long b = strtol(s2, &end, 10);
    if (end == s2 || *end || errno) return 0;
    if (a < 1 || b < 1 || a > MAX_SIDE || b > MAX_SIDE) return 0;
    *w = (int)a;
    *h = (int)b;
    return 1;
}

int preprocess_target_size(const preprocess *p, int w, int h, const char *size_override,
                           int *out_w, int *out_h, err *e) {
    int tw, th;
    if (w < 1 || h < 1)
        return err_set(e, OODSEG_E_ARG, "image size %dx%d: both sides must be positive", w, h);
    if (size_override && *size_override) {
        if (!strcmp(size_override, "native")) { tw = w; th = h; }
        else if (!parse_wxh(size_override, &tw, &th))
            return err_set(e, OODSEG_E_ARG,
                           "size '%s': expected \"native\" or WIDTHxHEIGHT such as 1024x512 "
                           "(each side 1..%d)", size_override, MAX_SIDE);
    } else {
        switch (p->size_rule) {
        case SIZE_FIXED: tw = p->size_w; th = p->size_h; break;
        case SIZE_KEEP_RATIO:
            keep_ratio_size(p, w, h, &tw, &th);
            tw = round_up(tw, p->size_divisor);
            th = round_up(th, p->size_divisor);
            break;
        default: tw = w; th = h; break;
        }
    }
    int okw = side_ok(tw, p->w_mod, p->mod_need_zero), okh = side_ok(th, p->h_mod, p->mod_need_zero);
    if (!okw || !okh) {
        char nw[80] = "", nh[80] = "", mw[200] = "", mh[200] = "";
        const char *rule = p->mod_need_zero ? "" : " or one less";
        if (!okw) {
            nearby(tw, p->w_mod, p->mod_need_zero, nw, sizeof nw);
            snprintf(mw, sizeof mw, " The width must be a multiple of %d%s; nearby widths: %s.",
                     p->w_mod, rule, nw);
        }
        if (!okh) {
            nearby(th, p->h_mod, p->mod_need_zero, nh, sizeof nh);
            snprintf(mh, sizeof mh, " The height must be a multiple of %d%s; nearby heights: %s.",
                     p->h_mod, rule, nh);
        }
        return err_set(e, OODSEG_E_ARG,
                       "network input size %dx%d does not fit this model (its decoder joins maps "
                       "of neighbouring strides).%s%s Choose a size with --size WxH.",
                       tw, th, mw, mh);
    }
    if ((int64_t)tw * th > (int64_t)MAX_SIDE * MAX_SIDE)
        return err_set(e, OODSEG_E_ARG, "network input size %dx%d is too large", tw, th);
    *out_w = tw;
    *out_h = th;
    return OODSEG_OK;
}

// Network channel k reads source (RGB) channel src_ch(k).
static int src_ch(const preprocess *p, int k) { return p->bgr ? 2 - k : k; }

// The after-resize step: numpy's `img /= 255` divides; otherwise multiply by scale_after.
static float after(const preprocess *p, float v) {
    if (p->div_after > 0) return v / p->div_after;
    if (p->scale_after != 1.0f && p->scale_after != 0.0f) return v * p->scale_after;
    return v;
}

static float normalise(const preprocess *p, int k, uint8_t px) {
    float v = (float)px;
    if (p->unit_range) v = v / 255.0f;   // torchvision to_tensor: float32 division
    return (v - p->mean[k]) / p->std[k];
}

int preprocess_image(const nn_ctx *ctx, const preprocess *p, const image *img, int ow, int oh,
                     float *input, err *e) {
    if (!img || !img->px || img->c != 3 || img->w < 1 || img->h < 1)
        return err_set(e, OODSEG_E_ARG, "preprocess: expected an RGB image (got %s%dx%d, %d channels)",
                       img && img->px ? "" : "no pixels, ", img ? img->w : 0, img ? img->h : 0,
                       img ? img->c : 0);
    if (ow < 1 || oh < 1 || ow > MAX_SIDE || oh > MAX_SIDE)
        return err_set(e, OODSEG_E_ARG, "preprocess: bad network input size %dx%d", ow, oh);
    for (int k = 0; k < 3; k++)
        if (!(p->std[k] != 0.0f))
            return err_set(e, OODSEG_E_INTERNAL, "preprocess recipe: std[%d] is 0", k);
    const int w = img->w, h = img->h;
    const size_t plane = (size_t)ow * oh;

    if (p->order == PRE_NORMALISE_THEN_RESIZE) {
        // ESPNet: float32 HWC in network channel order, (x - mean)/std, cv2 float resize.
        if (p->interp != INTERP_CV_LINEAR_F32)
            return err_set(e, OODSEG_E_INTERNAL,
                           "preprocess recipe: normalising before the resize needs a float resize");
        float *f = err_malloc(e, sizeof(float) * 3 * (size_t)w * h, "the normalised image");
        if (!f) return e->code;
        for (size_t i = 0; i < (size_t)w * h; i++)
            for (int k = 0; k < 3; k++) f[i * 3 + k] = normalise(p, k, img->px[i * 3 + src_ch(p, k)]);
        float *r = f;
        if (ow != w || oh != h) {
            r = err_malloc(e, sizeof(float) * 3 * plane, "the resized image");
            if (!r) { free(f); return e->code; }
            resize_cv_linear_f32(ctx, f, h, w, 3, r, oh, ow);
        }
        for (size_t i = 0; i < plane; i++)
            for (int k = 0; k < 3; k++) input[k * plane + i] = after(p, r[i * 3 + k]);
        if (r != f) free(r);
        free(f);
        return OODSEG_OK;
    }

    // Resize the 8-bit image first (mmseg, ESPNetv2).
    const uint8_t *px = img->px;
    uint8_t *buf = NULL, *buf2 = NULL;
    if (ow != w || oh != h) {
        int mw = ow, mh = oh, two = 0;
        if (p->size_rule == SIZE_KEEP_RATIO && p->size_divisor > 0) {
            // mmseg Resize(keep_ratio) then ResizeToMultiple: two resizes when (ow, oh) is the
            // recipe's own target and the keep-ratio size is not already a multiple.
            int kw, kh;
            keep_ratio_size(p, w, h, &kw, &kh);
            if (round_up(kw, p->size_divisor) == ow && round_up(kh, p->size_divisor) == oh &&
                (kw != ow || kh != oh)) {
                mw = kw; mh = kh; two = 1;
            }
        }
        buf = err_malloc(e, (size_t)mw * mh * 3, "the resized image");
        if (!buf) return e->code;
        int rc;
        if (p->interp == INTERP_PIL_BILINEAR) rc = resize_pil_bilinear_u8(ctx, px, h, w, 3, buf, mh, mw, e);
        else if (p->interp == INTERP_CV_LINEAR_U8) rc = resize_cv_linear_u8(ctx, px, h, w, 3, buf, mh, mw, e);
        else {
            free(buf);
            return err_set(e, OODSEG_E_INTERNAL,
                           "preprocess recipe: resizing before normalising needs an 8-bit resize");
        }
        if (rc) { free(buf); return rc; }
        if (two) {
            buf2 = err_malloc(e, plane * 3, "the resized image");
            if (!buf2) { free(buf); return e->code; }
            if ((rc = resize_cv_linear_u8(ctx, buf, mh, mw, 3, buf2, oh, ow, e))) {
                free(buf); free(buf2);
                return rc;
            }
            free(buf);
            buf = buf2;
        }
        px = buf;
    }
    for (size_t i = 0; i < plane; i++)
        for (int k = 0; k < 3; k++)
            input[k * plane + i] = after(p, normalise(p, k, px[i * 3 + src_ch(p, k)]));
    free(buf);
    return OODSEG_OK;
}
