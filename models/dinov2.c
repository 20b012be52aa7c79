// DINOv2 + its official linear / 'ms' segmentation heads (BNHead) as one model
// (docs/dinov2-segformer.md A.5-A.6): recognition of the two files from keys and shapes, the
// model_desc (dataset, classes, the test pipeline, the taps) and the forward wiring
// CenterPadding -> ViT -> BNHead -> bilinear resize onto the unpadded input.
//
// What the keys cannot tell, and how it is decided:
//  - the taps are the last 4 blocks (the out_indices of every released config);
//  - linear (in_index [3], C = D) or ms (in_index [0,1,2,3], C = 4D) from the head's channel
//    count; a count that is neither does not belong to this backbone;
//  - 150 classes are ADE20K, 21 are Pascal VOC 2012;
//  - the head count of an unreleased width (models/vit.c).
#include "vit.h"
#include "../nn/prof.h"
#include "dinov2.h"
#include "../core/text.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Pascal VOC 2012 (the 'voc2012' heads), with the dataset's own colour map.
static const char *const voc_classes[21] = {
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
};
static const uint8_t voc_palette[21][3] = {
    {0, 0, 0}, {128, 0, 0}, {0, 128, 0}, {128, 128, 0}, {0, 0, 128}, {128, 0, 128}, {0, 128, 128},
    {128, 128, 128}, {64, 0, 0}, {192, 0, 0}, {64, 128, 0}, {192, 128, 0}, {64, 0, 128}, {192, 0, 128},
    {64, 128, 128}, {192, 128, 128}, {0, 64, 0}, {128, 64, 0}, {0, 192, 0}, {128, 192, 0}, {0, 64, 128},
};

// BNHead: BatchNorm (eps 1e-5) over the concatenated taps, then conv_seg 1x1.
typedef struct bnhead {
    int C, num_classes, n_in;
    int in_index[DINO_TAPS];
    bn_params bn;          // (C) each
    conv2d seg;            // (num_classes, C, 1, 1)
} bnhead;

typedef struct dino_model {
    ckpt *head_ck, *bb_ck;   // bb_ck == head_ck for a one-file model (closed once)
    vit net;
    bnhead head;
    int tap_blocks[DINO_TAPS];
} dino_model;

static int has_prefix_key(const ckpt *ck, const char *prefix) {
    size_t n = strlen(prefix);
    for (int i = 0; i < ck->n; i++) if (!strncmp(ck->e[i].name, prefix, n)) return 1;
    return 0;
}

static int has_backbone(const ckpt *ck) { return ckpt_find(ck, "cls_token") && ckpt_find(ck, "blocks.0.norm1.weight"); }

// The BNHead keys' prefix: "decode_head." (mmseg), "" (a bare head), or NULL when there is no BNHead.
static const char *head_prefix(const ckpt *ck) {
    if (ckpt_find(ck, "decode_head.conv_seg.weight") && ckpt_find(ck, "decode_head.bn.running_var"))
        return "decode_head.";
    if (ckpt_find(ck, "conv_seg.weight") && ckpt_find(ck, "bn.running_var")) return "";
    return NULL;
}

int dinov2_detect(const ckpt *ck) {
    // Other mmseg models have a "backbone." tree; a BNHead is what DINOv2's heads alone use.
    if (has_prefix_key(ck, "backbone.")) return 0;
    return has_backbone(ck) || head_prefix(ck) != NULL;
}

// The head's classes and kind from its shapes, checked against the backbone's width.
static int head_recognise(const ckpt *ck, const char *pfx, const vit_arch *a, bnhead *h, err *e) {
    int64_t s[8];
    int nd = wb_shape(ck, s, "%sconv_seg.weight", pfx);
    if (nd != 4 || s[2] != 1 || s[3] != 1)
        return err_set(e, OODSEG_E_MODEL, "%s: '%sconv_seg.weight' must be [classes, C, 1, 1]", ck->path, pfx);
    h->num_classes = (int)s[0];
    h->C = (int)s[1];
    if (h->C == a->dim) {
        h->n_in = 1, h->in_index[0] = 3;
    } else if (h->C == DINO_TAPS * a->dim) {
        h->n_in = DINO_TAPS;
        for (int i = 0; i < DINO_TAPS; i++) h->in_index[i] = i;
    } else {
        return err_set(e, OODSEG_E_MODEL, "mismatched DINOv2 pair: the head %s reads %d channels but the backbone "
                       "%s has D = %d, so a head for it reads %d (linear) or %d (ms); give the backbone the head "
                       "was trained on (for a head with C channels: ViT-S 384/1536, ViT-B 768/3072, ViT-L "
                       "1024/4096, ViT-g 1536/6144)", ck->path, h->C, a->size ? a->size : "(custom)", a->dim, a->dim,
                       DINO_TAPS * a->dim);
    }
    if (h->num_classes != 150 && h->num_classes != 21)
        return err_set(e, OODSEG_E_MODEL, "%s: a BNHead with %d classes: oodseg knows DINOv2's ADE20K (150) and "
                       "Pascal VOC 2012 (21) heads", ck->path, h->num_classes);
    return OODSEG_OK;
}

static int head_bind(bnhead *h, wbind *b, const char *pfx) {
    wb_push(b, "%s", pfx);
    wb_bn(b, &h->bn, h->C, "bn");
    wb_conv(b, &h->seg, h->C, h->num_classes, 1, 1, 1, 1, "conv_seg");
    wb_conv_bias(b, &h->seg, "conv_seg");
    wb_pop(b);
    return b->e->code;
}

// The DINOv2 test pipeline (A.6): RGB, keep-ratio resize of the uint8 image with cv2 bilinear to
// a short side of 512 (img_scale (99999999, 512)), then imnormalize.
static void test_pipeline(preprocess *p) {
    const float mean[3] = {123.675f, 116.28f, 103.53f}, std[3] = {58.395f, 57.12f, 57.375f};
    memset(p, 0, sizeof *p);
    memcpy(p->mean, mean, sizeof mean);
    memcpy(p->std, std, sizeof std);
    p->scale_after = 1.0f;
    p->order = PRE_RESIZE_THEN_NORMALISE;
    p->interp = INTERP_CV_LINEAR_U8;
    p->size_rule = SIZE_KEEP_RATIO;
    p->size_w = 99999999, p->size_h = 512;
}

static int fill_desc(model_desc *d, const ckpt *head_ck, const ckpt *bb_ck, const vit_arch *a, const bnhead *h,
                     const model_options *opt, err *e) {
    memset(d, 0, sizeof *d);
    int ade = h->num_classes == 150, ms = h->n_in > 1;
    d->num_outputs = h->num_classes;
    char size[128];
    if (a->size) {
        snprintf(d->arch, sizeof d->arch, "dinov2-vit%s14+%s", a->size, ms ? "ms" : "linear");
        snprintf(size, sizeof size, "ViT-%s/14", a->size);
        if (a->size[0] != 'g') size[4] -= 32;   // ViT-S, ViT-B, ViT-L; ViT-g stays lower case
    } else {
        snprintf(d->arch, sizeof d->arch, "dinov2-custom(d%d)+%s", a->dim, ms ? "ms" : "linear");
        snprintf(size, sizeof size, "ViT (D=%d, depth %d, %d heads: %s)", a->dim, a->depth, a->heads, a->heads_why);
    }
    snprintf(d->dataset, sizeof d->dataset, ade ? "ade20k" : "voc2012");
    snprintf(d->title, sizeof d->title, "DINOv2 %s%s + %s BNHead (blocks %d-%d), %s", size, a->swiglu ? " [SwiGLU]" : "",
             ms ? "ms" : "linear", a->depth - DINO_TAPS, a->depth - 1, ade ? "ADE20K" : "Pascal VOC 2012");
    d->class_names = ade ? ade20k_classes : voc_classes;
    d->palette = ade ? ade20k_palette : voc_palette;
    snprintf(d->source_format, sizeof d->source_format, "%s", bb_ck->format);
    const ckpt_entry *w0 = ckpt_find(bb_ck, "patch_embed.proj.weight");
    snprintf(d->source_dtype, sizeof d->source_dtype, "%s", dtype_name(w0 ? w0->src_dtype : DT_F32));
    d->num_params = ckpt_num_learnable_params(bb_ck) + (head_ck != bb_ck ? ckpt_num_learnable_params(head_ck) : 0);
    d->num_id = h->num_classes;
    for (int i = 0; i < d->num_id; i++) d->id_channels[i] = i;
    if (opt->id_channels && model_set_id_channels(d, opt->id_channels, e)) return e->code;
    test_pipeline(&d->pre);
    // The official configs' test_cfg (docs/dinov2-segformer.md A.6): slide inference, crop 512,
    // stride 341; the VOC configs are assumed to share it (the spec's open question 2).
    d->infer = (infer_cfg){INFER_SLIDE, 512, 512, 341, 341};
    d->num_taps = DINO_TAPS;
    for (int i = 0; i < DINO_TAPS; i++) {
        snprintf(d->taps[i].name, sizeof d->taps[i].name, "backbone.feat%d", i);
        d->taps[i].stride = VIT_PATCH;
        d->taps[i].channels = a->dim;
    }
    // The patch tokens of the last tapped block (METHOD.md, "Feature taps on ViTs").
    snprintf(d->default_taps, sizeof d->default_taps, "backbone.feat%d", DINO_TAPS - 1);
    d->logits_stride = 1;
    return OODSEG_OK;
}

// A key of ck that nothing bound, other than the training-only ones, as an error.
static int refuse_unused(const ckpt *ck, const char *what, err *e) {
    static const char *const ignore[] = {"num_batches_tracked", "mask_token"};
    const ckpt_entry *x = ckpt_first_unused(ck, ignore, 2);
    if (!x) return OODSEG_OK;
    char s[160];
    return err_set(e, OODSEG_E_MODEL, "unexpected key '%s' %s in '%s': not part of a DINOv2 %s", x->name,
                   fmt_shape(s, sizeof s, x->ndim, x->shape), ck->path, what);
}

// Recognises and binds both key sets and checks that nothing is left over; fills d. Data not read.
static int build(ckpt *head_ck, ckpt *bb_ck, const model_options *opt, dino_model *m, model_desc *d, err *e) {
    const char *pfx = head_prefix(head_ck);
    if (!pfx)
        return err_set(e, OODSEG_E_MODEL, "%s: no BNHead keys ('decode_head.conv_seg.weight', 'decode_head.bn.*'): "
                       "not a DINOv2 segmentation head file", head_ck->path);
    vit_arch a;
    if (vit_recognise(bb_ck, &a, e)) return e->code;
    if (a.depth < DINO_TAPS)
        return err_set(e, OODSEG_E_MODEL, "%s: a DINOv2 backbone of %d blocks: the heads read the last %d", bb_ck->path,
                       a.depth, DINO_TAPS);
    if (head_recognise(head_ck, pfx, &a, &m->head, e)) return e->code;
    for (int i = 0; i < DINO_TAPS; i++) m->tap_blocks[i] = a.depth - DINO_TAPS + i;
    wbind w;
    wb_init(&w, bb_ck, e);
    if (vit_bind(&m->net, &w, &a)) return e->code;
    wb_init(&w, head_ck, e);
    if (head_bind(&m->head, &w, pfx)) return e->code;
    if (refuse_unused(bb_ck, head_ck == bb_ck ? "backbone + BNHead" : "backbone", e)) return e->code;
    if (head_ck != bb_ck && refuse_unused(head_ck, "BNHead", e)) return e->code;
    return fill_desc(d, head_ck, bb_ck, &a, &m->head, opt, e);
}

int dinov2_describe(ckpt *head_ck, ckpt *bb_ck, const model_options *opt, model_desc *d, err *e) {
    model_options none = {0};
    dino_model m;
    memset(&m, 0, sizeof m);
    int rc = build(head_ck, bb_ck ? bb_ck : head_ck, opt ? opt : &none, &m, d, e);
    vit_free(&m.net);
    return rc;
}

// BNHead on the taps (each (D, h, w)): concat in in_index order, BN, conv_seg -> (classes, h, w).
static int bnhead_forward(const nn_ctx *ctx, nn_arena *ar, const bnhead *hd, float *const *feats, int D, int h,
                          int w, const char *want, tensor_list *out, float **logits, err *e) {
    int64_t hw = (int64_t)h * w;
    *logits = NULL;
    float *in = arena_floats(ar, (int64_t)hd->C * hw, "BNHead input", e);
    if (!in) return e->code;
    for (int i = 0; i < hd->n_in; i++) copy_f32(ctx, in + (size_t)i * D * hw, feats[hd->in_index[i]], (int64_t)D * hw);
    int rc = model_emit(out, want, "head.in", in, hd->C, h, w, e);
    if (!rc) {
        batchnorm_inplace(ctx, in, hd->C, hw, hd->bn.gamma, hd->bn.beta, hd->bn.mean, hd->bn.var, 1e-5f);
        rc = model_emit(out, want, "head.bn", in, hd->C, h, w, e);
    }
    if (!rc && (*logits = arena_floats(ar, (int64_t)hd->num_classes * hw, "BNHead logits", e)))
        rc = conv2d_forward(ctx, &hd->seg, in, h, w, *logits, e);
    else rc = e->code;
    arena_release(ar, in);
    if (!rc) rc = model_emit(out, want, "head.logits", *logits, hd->num_classes, h, w, e);
    if (rc) { arena_release(ar, *logits); *logits = NULL; }
    return rc;
}

static int forward(model *mo, const float *input, int h, int w, const char *want, tensor_list *out, err *e) {
    dino_model *m = mo->impl;
    const nn_ctx *ctx = &mo->ctx;
    nn_arena *ar = mo->arena;
    err_clear(e);
    if (h < 1 || w < 1 || !input) return err_set(e, OODSEG_E_ARG, "DINOv2: bad input size %dx%d", w, h);
    // CenterPadding(14) with zeros in the normalised domain (A.5 step 1).
    int Hp = (h + VIT_PATCH - 1) / VIT_PATCH * VIT_PATCH, Wp = (w + VIT_PATCH - 1) / VIT_PATCH * VIT_PATCH;
    int gh = Hp / VIT_PATCH, gw = Wp / VIT_PATCH, D = m->net.a.dim, NC = m->head.num_classes;
    float *feats[DINO_TAPS] = {0}, *lg = NULL;
    arena_reset(ar);
    float *padded = arena_floats(ar, (int64_t)3 * Hp * Wp, "the centre-padded input", e);
    if (!padded) goto done;
    PROF_BEGIN(ctx, PROF_STEM);
    pad_zero(ctx, input, 3, h, w, padded, (Hp - h) / 2, (Wp - w) / 2, Hp, Wp);
    PROF_END(ctx);
    if (model_emit(out, want, "padded", padded, 3, Hp, Wp, e) ||
        vit_forward(ctx, ar, &m->net, padded, Hp, Wp, DINO_TAPS, m->tap_blocks, feats, want, out, e))
        goto done;
    arena_release(ar, padded);
    padded = NULL;
    PROF_BEGIN(ctx, PROF_HEAD);
    int rc = bnhead_forward(ctx, ar, &m->head, feats, D, gh, gw, want, out, &lg, e);
    PROF_END(ctx);
    if (rc) goto done;
    for (int i = 0; i < DINO_TAPS; i++) {
        char name[32];
        snprintf(name, sizeof name, "backbone.feat%d", i);
        if (model_give(ar, out, want, name, &feats[i], D, gh, gw, e)) goto done;
    }
    // The padded extent's logits stretched onto the unpadded input, not cropped (A.5 step 4).
    int64_t s[4] = {1, NC, h, w};
    tensor *t = tl_add_uninit(out, "logits", 4, s, e);
    if (!t) goto done;
    PROF_BEGIN(ctx, PROF_RESIZE);
    resize_bilinear(ctx, lg, NC, gh, gw, t->data, h, w, 0);
    PROF_END(ctx);
done:
    for (int i = 0; i < DINO_TAPS; i++) arena_release(ar, feats[i]);
    arena_release(ar, padded);
    arena_release(ar, lg);
    arena_end(ar);
    return e->code;
}

static void destroy(model *mo) {
    if (!mo) return;
    dino_model *m = mo->impl;
    if (m) {
        vit_free(&m->net);
        if (m->bb_ck != m->head_ck) ckpt_close(m->bb_ck);
        ckpt_close(m->head_ck);
        free(m);
    }
    arena_free(mo->arena);
    free(mo);
}

int dinov2_create_pair(ckpt *head_ck, ckpt *bb_ck, const model_options *opt, model **out, err *e) {
    model_options none = {0};
    if (!opt) opt = &none;
    *out = NULL;
    model *mo = err_calloc(e, 1, sizeof *mo, "model");
    dino_model *m = mo ? err_calloc(e, 1, sizeof *m, "model") : NULL;
    if (!m) {
        free(mo);
        if (bb_ck && bb_ck != head_ck) ckpt_close(bb_ck);
        ckpt_close(head_ck);
        return e->code;
    }
    mo->impl = m;
    mo->forward = forward;
    mo->destroy = destroy;
    m->head_ck = head_ck;
    m->bb_ck = bb_ck ? bb_ck : head_ck;
    if (model_arena_open(mo, e) || build(m->head_ck, m->bb_ck, opt, m, &mo->desc, e)) goto fail;
    if (!m->net.patch.weight || !m->head.seg.weight) {
        err_set(e, OODSEG_E_MODEL, "checkpoint '%s' has key names and shapes but no weights",
                m->net.patch.weight ? m->head_ck->path : m->bb_ck->path);
        goto fail;
    }
    *out = mo;
    return OODSEG_OK;
fail:
    destroy(mo);
    return e->code;
}

int dinov2_create(ckpt *ck, const model_options *opt, model **out, err *e) {
    model_options none = {0};
    if (!opt) opt = &none;
    *out = NULL;
    int bb = has_backbone(ck), hd = head_prefix(ck) != NULL;
    if (bb && !hd) {
        err_set(e, OODSEG_E_MODEL, "%s is a DINOv2 backbone without a segmentation head: pass the head file as the "
                "model and this file as the backbone (--model dinov2_<arch>_<dataset>_<linear|ms>_head.pth "
                "--backbone %s)", ck->path, ck->path);
        ckpt_close(ck);
        return e->code;
    }
    if (bb && opt->backbone) {
        err_set(e, OODSEG_E_ARG, "%s holds a DINOv2 backbone already; --backbone %s is not used with it: drop one",
                ck->path, opt->backbone);
        ckpt_close(ck);
        return e->code;
    }
    ckpt *bb_ck = NULL;
    if (!bb) {
        if (!opt->backbone) {
            err_set(e, OODSEG_E_ARG, "%s is a DINOv2 segmentation head: its backbone is a file of its own; give it "
                    "with --backbone (dinov2_<arch>_pretrain.pth, the same ViT size as the head)", ck->path);
            ckpt_close(ck);
            return e->code;
        }
        if (ckpt_open_limit(opt->backbone, ck->max_bytes, &bb_ck, e)) {
            err_prefix(e, "--backbone: ");
            ckpt_close(ck);
            return e->code;
        }
    }
    return dinov2_create_pair(ck, bb_ck, opt, out, e);
}

// ---- activation estimate (model.estimate) -----------------------------------------------------

// The live peak of forward(): the padded input beside the ViT's token buffers (models/vit.c:
// tokens, norm, q, k, v, attention, the FFN hidden and SwiGLU gate, the position embedding while it
// is added, the taps as they are made), then the BNHead's input and logits beside the taps.
uint64_t dinov2_estimate(const model *mo, int h, int w) {
    const dino_model *m = mo->impl;
    int Hp = (h + VIT_PATCH - 1) / VIT_PATCH * VIT_PATCH, Wp = (w + VIT_PATCH - 1) / VIT_PATCH * VIT_PATCH;
    uint64_t hw = (uint64_t)(Hp / VIT_PATCH) * (Wp / VIT_PATCH), N = 1 + hw, D = m->net.a.dim;
    uint64_t nd = EST_F(N * D), taps = EST_F(DINO_TAPS * D * hw), padded = EST_F(3 * (uint64_t)Hp * Wp);
    uint64_t ffn = EST_F((m->net.a.swiglu ? 2 : 1) * N * m->net.a.hidden);
    uint64_t peak = padded + 6 * nd + ffn + max_u64(nd, taps);
    peak = max_u64(peak, taps + EST_F((m->head.C + m->head.num_classes) * hw));
    return peak + EST_SLACK;
}
