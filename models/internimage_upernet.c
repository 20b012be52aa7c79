// InternImage + UperNet as one model: recognition from key names and shapes, the model_desc
// (dataset, classes, the mmseg test pipeline, feature taps) and the forward wiring
// backbone -> UperNet -> logits at the input size.
//
// What the keys cannot tell, and how to say it:
//  - a 150-channel head is taken as ADE20K; a Cityscapes checkpoint trained with the repository's
//    num_classes=150 configs needs --id-channels 0-18 (any id list within 0..18 makes it Cityscapes);
//  - offset_scale is not stored: the released sizes get theirs (1.0 T/S/B, 2.0 L/XL); a custom size
//    gets T's 1.0 when pre-norm and L/XL's 2.0 when post-norm (the golden tiny-l, C=16 post-norm,
//    is L shrunk), which `info` says; an S/B-like custom model needs --offset-scale 1.
#include "internimage.h"
#include "../core/text.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int internimage_upernet_detect(const ckpt *ck) {
    return ckpt_find(ck, "backbone.patch_embed.conv2.weight") &&
           ckpt_find(ck, "backbone.levels.0.blocks.0.dcn.offset.weight") &&
           ckpt_find(ck, "decode_head.conv_seg.weight");
}

static void upper(char *s) {
    for (; *s; s++) if (*s >= 'a' && *s <= 'z') *s -= 32;
}

// d->arch and the backbone's part of the title into name: the size, or for a custom size its
// dimensions and the released size it runs as, then the flags that decide the forward pass.
static void backbone_name(model_desc *d, char *name, size_t n, const internimage_arch *a) {
    if (a->size) {
        snprintf(d->arch, sizeof d->arch, "internimage-%s+upernet", a->size);
        snprintf(name, n, "InternImage-%s", a->size);
        upper(name + 12);
    } else {
        snprintf(d->arch, sizeof d->arch, "internimage-custom(c%d)+upernet", a->channels);
        char near[4];
        snprintf(near, sizeof near, "%s", a->nearest);
        upper(near);
        snprintf(name, n, "InternImage (C=%d, depths %d-%d-%d-%d, %s-like flags)", a->channels,
                 a->depths[0], a->depths[1], a->depths[2], a->depths[3], near);
    }
    // offset_scale above all, since it is not stored: where a value other than the released
    // size's own came from
    size_t nl = strlen(name);
    snprintf(name + nl, n - nl, " [groups %d-%d-%d-%d, %s, offset_scale %g%s%s%s]", a->groups[0],
             a->groups[1], a->groups[2], a->groups[3], a->post_norm ? "post-norm" : "pre-norm",
             (double)a->offset_scale, a->offset_scale_why ? " (" : "",
             a->offset_scale_why ? a->offset_scale_why : "", a->offset_scale_why ? ")" : "");
}

// mmseg test pipeline: RGB, imnormalize, keep-ratio resize with cv2 bilinear on uint8; the
// Cityscapes and ADE20K (L/XL: larger) test sizes.
static void test_pipeline(preprocess *p, int city, int big) {
    const float mean[3] = {123.675f, 116.28f, 103.53f}, std[3] = {58.395f, 57.12f, 57.375f};
    memcpy(p->mean, mean, sizeof mean);
    memcpy(p->std, std, sizeof std);
    p->bgr = 0;
    p->scale_after = 1.0f;
    p->order = PRE_RESIZE_THEN_NORMALISE;
    p->interp = INTERP_CV_LINEAR_U8;
    p->size_rule = SIZE_KEEP_RATIO;
    if (city) p->size_w = 2048, p->size_h = 1024, p->size_divisor = 0;
    else p->size_w = big ? 2560 : 2048, p->size_h = big ? 640 : 512, p->size_divisor = 32;
}

// Dataset, classes and the mmseg test pipeline (docs/internimage-upernet.md section 6).
static int fill_desc(model_desc *d, const ckpt *ck, const internimage_arch *a, const upernet *u,
                     const model_options *opt, err *e) {
    memset(d, 0, sizeof *d);
    int NC = u->num_classes;
    d->num_outputs = NC;
    // A 150-channel head is ADE20K, unless the user says only channels 0..18 are in-distribution:
    // the Cityscapes configs in the InternImage repository kept ADE20K's num_classes=150, so a
    // Cityscapes checkpoint may have 150 outputs of which only the 19 trainIds were trained.
    int city = NC == 19;
    if (NC == 150 && opt->id_channels) {
        if (model_set_id_channels(d, opt->id_channels, e)) return e->code;
        int max = 0;
        for (int i = 0; i < d->num_id; i++) if (d->id_channels[i] > max) max = d->id_channels[i];
        city = max <= 18;
    }
    if (!city && NC != 150)
        return err_set(e, OODSEG_E_MODEL, "UperNet head with %d classes (decode_head.conv_seg.weight [%d, %d, 1, 1]): "
                       "oodseg knows the Cityscapes (19) and ADE20K (150) InternImage checkpoints", NC, NC, u->channels);
    char name[160];
    backbone_name(d, name, sizeof name, a);
    if (city) {
        snprintf(d->dataset, sizeof d->dataset, "cityscapes");
        snprintf(d->title, sizeof d->title, "%s + UperNet, Cityscapes%s", name,
                 NC == 150 ? " (150-channel head, trainIds 0-18)" : "");
        d->class_names = NC == 19 ? cityscapes_classes : cityscapes150_classes;
        d->palette = NC == 19 ? cityscapes_palette : cityscapes150_palette;
    } else {
        snprintf(d->dataset, sizeof d->dataset, "ade20k");
        snprintf(d->title, sizeof d->title, "%s + UperNet, ADE20K", name);
        d->class_names = ade20k_classes;
        d->palette = ade20k_palette;
    }
    snprintf(d->source_format, sizeof d->source_format, "%s", ck->format);
    const ckpt_entry *w0 = ckpt_find(ck, "backbone.patch_embed.conv1.weight");
    snprintf(d->source_dtype, sizeof d->source_dtype, "%s", dtype_name(w0 ? w0->src_dtype : DT_F32));
    d->num_params = ckpt_num_learnable_params(ck);   // the auxiliary head included where the file has it
    // In-distribution channels: the trainIds (Cityscapes) or all 150 (ADE20K), unless given.
    d->num_id = city ? 19 : NC;
    for (int i = 0; i < d->num_id; i++) d->id_channels[i] = i;
    if (opt->id_channels && model_set_id_channels(d, opt->id_channels, e)) return e->code;

    const char *size = a->size ? a->size : a->nearest;
    test_pipeline(&d->pre, city, !strcmp(size, "l") || !strcmp(size, "xl"));
    d->num_taps = 4;
    for (int i = 0; i < 4; i++) {
        snprintf(d->taps[i].name, sizeof d->taps[i].name, "backbone.out%d", i);
        d->taps[i].stride = 4 << i;
        d->taps[i].channels = a->channels << i;
    }
    snprintf(d->default_taps, sizeof d->default_taps, "backbone.out3");
    d->logits_stride = 1;
    return OODSEG_OK;
}

// Recognises, binds and checks every key; fills d. The data are not read.
static int build(ckpt *ck, const model_options *opt, ii_model *m, model_desc *d, internimage_arch *arch_out,
                 err *e) {
    internimage_arch a;
    if (internimage_recognise(ck, opt->offset_scale, &a, e)) return e->code;
    wbind w;
    wb_init(&w, ck, e);
    if (internimage_bind(&m->net, &w, &a)) return e->code;
    int in_ch[4];
    for (int i = 0; i < 4; i++) in_ch[i] = a.channels << i;
    if (upernet_bind(&m->head, &w, in_ch)) return e->code;
    // The auxiliary head is training-only: extra or different auxiliary_head.* keys are tolerated.
    static const char *const ignore[] = {"num_batches_tracked", "auxiliary_head."};
    const ckpt_entry *extra = ckpt_first_unused(ck, ignore, 2);
    if (extra) {
        char s[160];
        return err_set(e, OODSEG_E_MODEL, "unexpected key '%s' %s in checkpoint '%s': not part of "
                       "InternImage (C=%d, depths %d-%d-%d-%d, %s) + UperNet", extra->name,
                       fmt_shape(s, sizeof s, extra->ndim, extra->shape), ck->path,
                       a.channels, a.depths[0], a.depths[1], a.depths[2], a.depths[3],
                       a.post_norm ? "post-norm" : "pre-norm");
    }
    if (fill_desc(d, ck, &a, &m->head, opt, e)) return e->code;
    if (arch_out) *arch_out = a;
    return OODSEG_OK;
}

int internimage_upernet_describe(ckpt *ck, const model_options *opt, model_desc *d, internimage_arch *a,
                                 err *e) {
    model_options none = {0};
    ii_model m;
    memset(&m, 0, sizeof m);
    int rc = build(ck, opt ? opt : &none, &m, d, a, e);
    internimage_free(&m.net);
    upernet_free(&m.head);
    return rc;
}

static int forward(model *mo, const float *input, int h, int w, const char *want, tensor_list *out, err *e) {
    ii_model *m = mo->impl;
    const nn_ctx *ctx = &mo->ctx;
    err_clear(e);
    if (h < 1 || w < 1 || !input)
        return err_set(e, OODSEG_E_ARG, "InternImage: bad input size %dx%d", w, h);
    float *feats[4];
    int fh[4], fw[4];
    arena_reset(mo->arena);
    if (!internimage_forward(ctx, mo->arena, &m->net, input, h, w, want, out, feats, fh, fw, e)) {
        for (int i = 0; i < 4 && !e->code; i++) {
            char name[32];
            snprintf(name, sizeof name, "backbone.out%d", i);
            if (model_wants(want, name)) ii_tap(out, name, feats[i], m->net.levels[i].channels, fh[i], fw[i], e);
        }
        if (e->code) for (int k = 0; k < 4; k++) arena_release(mo->arena, feats[k]);
        else upernet_forward(ctx, mo->arena, &m->head, feats, fh, fw, h, w, want, out, e);
    }
    arena_end(mo->arena);
    return e->code;
}

static void destroy(model *mo) {
    if (!mo) return;
    ii_model *m = mo->impl;
    if (m) {
        internimage_free(&m->net);
        upernet_free(&m->head);
        ckpt_close(m->ck);
        free(m);
    }
    arena_free(mo->arena);
    free(mo);
}

int internimage_upernet_create(ckpt *ck, const model_options *opt, model **out, err *e) {
    model_options none = {0};
    if (!opt) opt = &none;
    *out = NULL;
    model *mo = err_calloc(e, 1, sizeof *mo, "model");
    ii_model *m = mo ? err_calloc(e, 1, sizeof *m, "model") : NULL;
    if (!m) {
        free(mo);
        ckpt_close(ck);
        return e->code;
    }
    mo->impl = m;
    mo->forward = forward;
    mo->destroy = destroy;
    m->ck = ck;
    if (model_arena_open(mo, e) || build(ck, opt, m, &mo->desc, NULL, e)) goto fail;
    if (!m->net.conv1.weight) {
        err_set(e, OODSEG_E_MODEL, "checkpoint '%s' has key names and shapes but no weights", ck->path);
        goto fail;
    }
    if (upernet_fold(&m->head, ck, e)) goto fail;
    *out = mo;
    return OODSEG_OK;
fail:
    destroy(mo);
    return e->code;
}

// ---- activation estimate (model.estimate) -----------------------------------------------------

// The live peak of forward(): the largest of the sets of blocks alive together in the stem, each
// stage's blocks and down-sampling (models/internimage.c), and UperNet's PPM, FPN and head
// (models/upernet.c), with the block sizes of the forward itself.
uint64_t internimage_upernet_estimate(const model *mo, int h, int w) {
    const ii_model *m = mo->impl;
    const internimage_arch *a = &m->net.arch;
    const upernet *u = &m->head;
    int C = a->channels, h1 = (h + 1) / 2, w1 = (w + 1) / 2, H[4], W[4];
    H[0] = (h1 + 1) / 2, W[0] = (w1 + 1) / 2;
    for (int i = 1; i < 4; i++) H[i] = (H[i - 1] + 1) / 2, W[i] = (W[i - 1] + 1) / 2;
    uint64_t n1 = (uint64_t)h1 * w1, n[4], f[4], peak;
    for (int i = 0; i < 4; i++) n[i] = (uint64_t)H[i] * W[i], f[i] = EST_F(m->net.levels[i].channels * n[i]);
    // the stem: two half-width maps at s2, then one at s2 beside one at s4, then two at s4
    peak = max_u64(EST_F(C * n1), max_u64(EST_F(C / 2 * n1 + C * n[0]), EST_F(2 * C * n[0])));
    uint64_t done = 0;   // the stage outputs kept for the head
    for (int i = 0; i < 4; i++) {
        int Ci = m->net.levels[i].channels, G = m->net.levels[i].groups;
        int64_t per_px = 4 * Ci > 2 * Ci + 27 * G ? 4 * Ci : 2 * Ci + 27 * G;
        uint64_t x = EST_F(Ci * n[i]);
        peak = max_u64(peak, done + x + (a->post_norm ? 0 : x) + x + EST_F(per_px * n[i]));   // x, a, v, s
        done += f[i];
        peak = max_u64(peak, done + x);                                                       // feats[i] beside x
        if (i < 3) peak = max_u64(peak, done + EST_F(4 * Ci * n[i + 1]));                     // downsample y, x
    }
    // PPM on F4 beside every stage output; then l3 beside the concat
    int ch = u->channels, top = u->in_channels[3];
    uint64_t cat = EST_F((top + 4 * ch) * n[3]), lat3 = EST_F(ch * n[3]);
    peak = max_u64(peak, done + cat + EST_F(36 * (top + ch)));
    peak = max_u64(peak, f[0] + f[1] + f[2] + cat + lat3);
    // FPN: the laterals, the top-down buffer and the stride-4 concat
    uint64_t lat = EST_F(ch * (n[0] + n[1] + n[2])) + lat3, l0 = EST_F(ch * n[0]);
    peak = max_u64(peak, f[0] + f[1] + f[2] + l0 + lat3);
    if (conv2d_takes_winograd(&mo->ctx, &u->fpn_bottleneck.conv)) {
        // no concat (upernet.c fpn): the laterals beside the top-down buffer or the first FPN
        // output, then the FPN outputs (the laterals' sizes) beside fpn_bottleneck's output
        peak = max_u64(peak, lat + l0);
        peak = max_u64(peak, l0 + EST_F(u->num_classes * n[0]));
        return peak + EST_SLACK;
    }
    peak = max_u64(peak, lat + l0 + 4 * l0);
    // the head: the concat and fpn_bottleneck's output, then that and conv_seg's
    peak = max_u64(peak, 5 * l0);
    peak = max_u64(peak, l0 + EST_F(u->num_classes * n[0]));
    return peak + EST_SLACK;
}
