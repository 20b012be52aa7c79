// UperNet (Xiao et al., "Unified Perceptual Parsing for Scene Understanding", ECCV 2018) as mmseg
// 0.27's UPerHead computes it at inference, plus the FCNHead auxiliary head the InternImage
// checkpoints carry (training only; it runs here only when "aux.logits" is asked for, to check it).
// Everything is NCHW. Every ConvModule's BatchNorm is folded into its conv at create time.
#include "internimage.h"
#include "../nn/prof.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BN_EPS 1e-5f
static const int pool_scales[4] = {1, 2, 3, 6};

// ---- binding -------------------------------------------------------------------------------

// A ConvModule under the prefix "<module>.": conv.weight (no bias), then bn.*.
static void bind_conv_module(wbind *w, conv_module *m, int c_in, int c_out, int k) {
    wb_conv(w, &m->conv, c_in, c_out, k, 1, 1, 1, "conv");
    wb_bn(w, &m->bn, c_out, "bn");
}

// The same, under the prefix "<fmt>." (printf-style).
#define BIND_CONV_MODULE(w, m, c_in, c_out, k, ...) \
    do { wb_push(w, __VA_ARGS__); bind_conv_module(w, m, c_in, c_out, k); wb_pop(w); } while (0)

// conv_seg under the head's prefix: (classes, c_in, 1, 1) + bias (classes).
static void bind_conv_seg(wbind *w, conv2d *c, int c_in, int classes) {
    wb_conv(w, c, c_in, classes, 1, 1, 1, 1, "conv_seg");
    wb_conv_bias(w, c, "conv_seg");
}

static void bind_decode_head(wbind *w, upernet *u) {
    int ch = u->channels, top = u->in_channels[3];
    wb_push(w, "decode_head.");
    for (int k = 0; k < 4; k++) BIND_CONV_MODULE(w, &u->psp[k], top, ch, 1, "psp_modules.%d.1.", k);
    BIND_CONV_MODULE(w, &u->bottleneck, top + 4 * ch, ch, 3, "bottleneck.");
    for (int l = 0; l < 3; l++) {
        BIND_CONV_MODULE(w, &u->lateral[l], u->in_channels[l], ch, 1, "lateral_convs.%d.", l);
        BIND_CONV_MODULE(w, &u->fpn[l], ch, ch, 3, "fpn_convs.%d.", l);
    }
    BIND_CONV_MODULE(w, &u->fpn_bottleneck, 4 * ch, ch, 3, "fpn_bottleneck.");
    bind_conv_seg(w, &u->conv_seg, ch, u->num_classes);
    wb_pop(w);
}

int upernet_bind(upernet *u, wbind *w, const int in_channels[4]) {
    const ckpt *ck = w->ck;
    memset(u, 0, sizeof *u);
    memcpy(u->in_channels, in_channels, sizeof u->in_channels);
    // The head width and the class count are whatever the checkpoint says (512 / 19 or 150 in the
    // releases, 32 / 19 in the golden tiny models).
    int64_t s[8];
    if (wb_shape(ck, s, "decode_head.conv_seg.weight") != 4 || s[0] < 1 || s[1] < 1 || s[0] > 4096 || s[1] > 1 << 16)
        return err_set(w->e, OODSEG_E_MODEL, "UperNet: key 'decode_head.conv_seg.weight' is missing or not a "
                       "(num_classes, channels, 1, 1) conv weight");
    u->num_classes = (int)s[0];
    u->channels = (int)s[1];
    bind_decode_head(w, u);

    // The auxiliary FCN head of the configs (in_index 2, one 3x3 ConvModule, conv_seg) is parsed and
    // checked when the checkpoint has one. It is training-only, so a checkpoint without it, or with
    // another auxiliary head (its keys are then ignored), still loads; and its class count is its
    // own (issue OpenGVLab/InternImage#57: the Cityscapes heads' counts do not always agree).
    int64_t seg[8];
    if (wb_shape(ck, s, "auxiliary_head.convs.0.conv.weight") == 4 &&
        !wb_shape(ck, seg, "auxiliary_head.convs.1.conv.weight") &&
        wb_shape(ck, seg, "auxiliary_head.conv_seg.weight") == 4 && seg[0] >= 1 && seg[0] <= 4096) {
        u->has_aux = 1;
        u->aux_channels = (int)s[0];
        u->aux_classes = (int)seg[0];
        wb_push(w, "auxiliary_head.");
        BIND_CONV_MODULE(w, &u->aux_conv, in_channels[2], u->aux_channels, 3, "convs.0.");
        bind_conv_seg(w, &u->aux_seg, u->aux_channels, u->aux_classes);
        wb_pop(w);
    }
    return w->e->code;
}

// The weights are final once BN is folded: the Winograd weights of the 3x3s that take that path
// are made here, once. They cost 4x the conv's weights, so only the convs on the 1/4 to 1/16 maps
// get them (the FPN convs and fpn_bottleneck: most of the head's time). The PPM bottleneck runs on
// the 1/32 map, where 2560 -> 512 channels (InternImage-T) would hold 189 MB of Winograd weights to
// save ~30 ms at 1024x512; the auxiliary head is training-only. Both keep the im2col path.
static int fold(ckpt *ck, conv_module *m, int winograd, err *e) {
    if (bn_fold(ck, &m->conv, &m->bn, BN_EPS, e)) return e->code;
    return winograd ? conv2d_winograd_prepare(&m->conv, e) : OODSEG_OK;
}

int upernet_fold(upernet *u, ckpt *ck, err *e) {
    for (int k = 0; k < 4; k++) if (fold(ck, &u->psp[k], 0, e)) return e->code;
    if (fold(ck, &u->bottleneck, 0, e)) return e->code;
    for (int l = 0; l < 3; l++) if (fold(ck, &u->lateral[l], 0, e) || fold(ck, &u->fpn[l], 1, e)) return e->code;
    if (fold(ck, &u->fpn_bottleneck, 1, e)) return e->code;
    if (u->has_aux && fold(ck, &u->aux_conv, 0, e)) return e->code;
    return OODSEG_OK;
}

void upernet_free(upernet *u) {
    for (int k = 0; k < 4; k++) conv2d_free(&u->psp[k].conv);
    conv2d_free(&u->bottleneck.conv);
    for (int l = 0; l < 3; l++) conv2d_free(&u->lateral[l].conv), conv2d_free(&u->fpn[l].conv);
    conv2d_free(&u->fpn_bottleneck.conv);
    conv2d_free(&u->aux_conv.conv);
}

// ---- forward -------------------------------------------------------------------------------

static float *alloc_map(nn_arena *A, int64_t c, int64_t h, int64_t w, err *e) {
    return arena_floats(A, c * h * w, "UperNet feature map", e);
}

// conv (BN folded) -> ReLU into y (c_out, h, w); stride 1, so the size is kept.
static int conv_module_forward(const nn_ctx *ctx, const conv_module *m, const float *x, int h, int w, float *y, err *e) {
    if (conv2d_forward(ctx, &m->conv, x, h, w, y, e)) return e->code;
    relu_inplace(ctx, y, (int64_t)m->conv.c_out * h * w);
    return OODSEG_OK;
}

// FCNHead on F3 (stride 16): 3x3 ConvModule -> conv_seg, into the output list's own memory.
static int aux_forward(const nn_ctx *ctx, nn_arena *A, const upernet *u, const float *f3, int h, int w,
                       tensor_list *out, err *e) {
    float *t = alloc_map(A, u->aux_channels, h, w, e);
    if (!t) return e->code;
    tensor *o = tl_add_uninit(out, "aux.logits", 4, (int64_t[]){1, u->aux_classes, h, w}, e);
    if (o && !conv_module_forward(ctx, &u->aux_conv, f3, h, w, t, e))
        conv2d_forward(ctx, &u->aux_seg, t, h, w, o->data, e);
    arena_release(A, t);
    return e->code;
}

// One forward of the head: the backbone's maps (taken over from the caller), the laterals, and the
// current stride-4 map, all arena blocks, NULL once dead.
typedef struct uper_run {
    const nn_ctx *ctx;
    nn_arena *A;
    const upernet *u;
    float **feats;            // F1..F4, (in_channels[i], fh[i], fw[i])
    const int *fh, *fw;
    float *lat[4];            // laterals l0..l3, (ch, fh[i], fw[i])
    float *map;               // the current stride-4 map (the FPN concat, then fpn_bottleneck's output)
    float *fo[4];             // or, when fpn_bottleneck runs Winograd, the FPN outputs at their own
                              // sizes, which it reads upsampled without storing the concat
    const char *want;
    tensor_list *out;
} uper_run;

#define RELEASE(r, p) (arena_release((r)->A, p), (p) = NULL)

// PPM on F4: cat[F4, up(conv(pool_1(F4))), ..., up(conv(pool_6(F4)))] -> 3x3 bottleneck = l3.
static int ppm(uper_run *r, err *e) {
    const upernet *u = r->u;
    const int ch = u->channels, top = u->in_channels[3], h3 = r->fh[3], w3 = r->fw[3];
    const int64_t n3 = (int64_t)h3 * w3;
    float *cat = alloc_map(r->A, top + 4 * ch, h3, w3, e);
    float *pool = cat ? alloc_map(r->A, top, 6, 6, e) : NULL;   // the largest pooled map
    float *tmp = pool ? alloc_map(r->A, ch, 6, 6, e) : NULL;
    if (!tmp) goto done;
    copy_f32(r->ctx, cat, r->feats[3], top * n3);
    for (int k = 0; k < 4; k++) {
        int s = pool_scales[k];
        adaptive_avgpool_forward(r->ctx, r->feats[3], top, h3, w3, pool, s, s);
        if (conv_module_forward(r->ctx, &u->psp[k], pool, s, s, tmp, e)) goto done;
        resize_bilinear(r->ctx, tmp, ch, s, s, cat + (top + (int64_t)k * ch) * n3, h3, w3, 0);
    }
    RELEASE(r, r->feats[3]), RELEASE(r, pool), RELEASE(r, tmp);
    r->lat[3] = alloc_map(r->A, ch, h3, w3, e);
    if (!r->lat[3] || conv_module_forward(r->ctx, &u->bottleneck, cat, h3, w3, r->lat[3], e)) goto done;
    RELEASE(r, cat);
    if (model_wants(r->want, "decode.psp_bottleneck"))
        ii_tap(r->out, "decode.psp_bottleneck", r->lat[3], ch, h3, w3, e);
done:
    arena_release(r->A, cat), arena_release(r->A, pool), arena_release(r->A, tmp);
    return e->code;
}

// Laterals of F1..F3, the top-down pathway l_{i-1} += up(l_i), then the FPN outputs (3x3
// ConvModules on l0..l2, l3 as is), all brought to stride 4 and concatenated into r->map.
static int fpn(uper_run *r, err *e) {
    const upernet *u = r->u;
    const int ch = u->channels, *fh = r->fh, *fw = r->fw;
    const int64_t n0 = (int64_t)fh[0] * fw[0];
    float *tmp = NULL;
    for (int l = 0; l < 3; l++) {
        r->lat[l] = alloc_map(r->A, ch, fh[l], fw[l], e);
        if (!r->lat[l] || conv_module_forward(r->ctx, &u->lateral[l], r->feats[l], fh[l], fw[l], r->lat[l], e))
            return e->code;
        RELEASE(r, r->feats[l]);
    }
    if (!(tmp = alloc_map(r->A, ch, fh[0], fw[0], e))) return e->code;
    PROF_BEGIN(r->ctx, PROF_RESIZE);   // the top-down pathway
    for (int i = 3; i >= 1; i--) {
        resize_bilinear(r->ctx, r->lat[i], ch, fh[i], fw[i], tmp, fh[i - 1], fw[i - 1], 0);
        add_inplace(r->ctx, r->lat[i - 1], tmp, (int64_t)ch * fh[i - 1] * fw[i - 1]);
    }
    PROF_END(r->ctx);
    if (conv2d_takes_winograd(r->ctx, &u->fpn_bottleneck.conv)) {
        // The concat would be 4x fpn_bottleneck's output (256 MB of InternImage-T's 405 MB peak at
        // 1024x512); conv2d_winograd_forward_cat reads the same values without it.
        RELEASE(r, tmp);
        for (int i = 0; i < 3; i++) {
            if (!(r->fo[i] = alloc_map(r->A, ch, fh[i], fw[i], e)) ||
                conv_module_forward(r->ctx, &u->fpn[i], r->lat[i], fh[i], fw[i], r->fo[i], e))
                goto done;
            RELEASE(r, r->lat[i]);
        }
        r->fo[3] = r->lat[3], r->lat[3] = NULL;
        goto done;
    }
    if (!(r->map = alloc_map(r->A, 4 * ch, fh[0], fw[0], e))) goto done;
    for (int i = 0; i < 4; i++) {
        float *slot = r->map + (int64_t)i * ch * n0;
        const float *src = r->lat[i];
        if (i < 3) {
            if (conv_module_forward(r->ctx, &u->fpn[i], r->lat[i], fh[i], fw[i], i == 0 ? slot : tmp, e)) goto done;
            src = tmp;
        }
        PROF_BEGIN(r->ctx, PROF_RESIZE);
        if (i > 0) resize_bilinear(r->ctx, src, ch, fh[i], fw[i], slot, fh[0], fw[0], 0);
        PROF_END(r->ctx);
        RELEASE(r, r->lat[i]);
    }
done:
    arena_release(r->A, tmp);
    return e->code;
}

// fpn_bottleneck on the concat, conv_seg (dropout is the identity at test time), then mmseg's
// 'whole' resize to the input size (h, w) into the output list's own memory.
static int seg_head(uper_run *r, int h, int w, err *e) {
    const upernet *u = r->u;
    const int ch = u->channels, NC = u->num_classes, h0 = r->fh[0], w0 = r->fw[0];
    float *seg = NULL, *t = alloc_map(r->A, ch, h0, w0, e);
    if (!t) goto done;
    if (r->map) {
        if (conv_module_forward(r->ctx, &u->fpn_bottleneck, r->map, h0, w0, t, e)) goto done;
        RELEASE(r, r->map);
    } else {
        conv_cat_part in[4];
        for (int i = 0; i < 4; i++) in[i] = (conv_cat_part){r->fo[i], ch, r->fh[i], r->fw[i]};
        if (conv2d_winograd_forward_cat(r->ctx, &u->fpn_bottleneck.conv, in, 4, h0, w0, t, e)) goto done;
        relu_inplace(r->ctx, t, (int64_t)ch * h0 * w0);
        for (int i = 0; i < 4; i++) RELEASE(r, r->fo[i]);
    }
    if (model_wants(r->want, "decode.fpn_bottleneck") && ii_tap(r->out, "decode.fpn_bottleneck", t, ch, h0, w0, e))
        goto done;
    seg = alloc_map(r->A, NC, h0, w0, e);
    PROF_BEGIN(r->ctx, PROF_HEAD);
    int rc = !seg || conv2d_forward(r->ctx, &u->conv_seg, t, h0, w0, seg, e);
    PROF_END(r->ctx);
    if (rc) goto done;
    RELEASE(r, t);
    if (model_wants(r->want, "decode.logits") && ii_tap(r->out, "decode.logits", seg, NC, h0, w0, e)) goto done;
    tensor *logits = tl_add_uninit(r->out, "logits", 4, (int64_t[]){1, NC, h, w}, e);
    PROF_BEGIN(r->ctx, PROF_RESIZE);
    if (logits) resize_bilinear(r->ctx, seg, NC, h0, w0, logits->data, h, w, 0);
    PROF_END(r->ctx);
done:
    arena_release(r->A, t), arena_release(r->A, seg);
    return e->code;
}

int upernet_forward(const nn_ctx *ctx, nn_arena *A, const upernet *u, float *feats[4], const int fh[4],
                    const int fw[4], int h, int w, const char *want, tensor_list *out, err *e) {
    uper_run r = {.ctx = ctx, .A = A, .u = u, .feats = feats, .fh = fh, .fw = fw, .want = want, .out = out};
    if (model_wants(want, "aux.logits")) {
        // With want "*" a checkpoint without the (standard) auxiliary head simply has no aux.logits.
        if (!u->has_aux && strcmp(want, "*"))
            err_set(e, OODSEG_E_ARG, "aux.logits: this checkpoint has no FCN auxiliary head");
        else if (u->has_aux)
            aux_forward(ctx, A, u, feats[2], fh[2], fw[2], out, e);
    }
    PROF_BEGIN(ctx, PROF_PPM);
    if (!e->code && !ppm(&r, e)) {
        PROF_NEXT(ctx, PROF_FPN);
        if (!fpn(&r, e)) seg_head(&r, h, w, e);
    }
    PROF_END(ctx);
    for (int i = 0; i < 4; i++) RELEASE(&r, feats[i]), RELEASE(&r, r.lat[i]), RELEASE(&r, r.fo[i]);
    RELEASE(&r, r.map);
    return e->code;
}
