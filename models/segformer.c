// SegFormer in mmsegmentation's naming: MixVisionTransformer + SegformerHead (segformer.h).
// Step names follow docs/segformer.md: S1 patch embedding, S2 efficient self-attention, S3 Mix-FFN,
// S4 stage norm, H1-H3 the head. The residual stream of a stage is a token list (h*w, C)
// (channels-last, token index = row*w + column), which LayerNorm, the projections and attention
// read directly; the convolutions (patch embedding, spatial reduction, Mix-FFN) run NCHW.
#include "segformer.h"
#include "random_weights.h"
#include "weights.h"
#include "../nn/nn.h"
#include "../nn/prof.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LN_EPS 1e-6f   // the backbone's norm_cfg (LN, eps 1e-6)
#define BN_EPS 1e-5f   // the head's BatchNorms

typedef struct mit_layer {      // backbone.layers.i.1.j
    const float *n1_w, *n1_b;   // norm1 (C)
    const float *in_w, *in_b;   // attn.attn.in_proj_weight (3C, C) = [W_q; W_k; W_v], in_proj_bias (3C)
    const float *out_w, *out_b; // attn.attn.out_proj (C, C), (C)
    conv2d sr;                  // attn.sr (C, C, sr, sr), stride sr, no padding; sr > 1 only
    const float *srn_w, *srn_b; // attn.norm (C); sr > 1 only
    const float *n2_w, *n2_b;   // norm2 (C)
    conv2d fc1, dw, fc2;        // ffn.layers.0 (4C, C, 1, 1), .1 (4C, 1, 3, 3) depthwise, .4 (C, 4C, 1, 1)
} mit_layer;

typedef struct mit_stage {      // backbone.layers.i
    conv2d proj;                // 0.projection (C, C_prev, p, p), stride s, padding p/2
    const float *pn_w, *pn_b;   // 0.norm (C)
    mit_layer *layer;           // 1.j
    const float *on_w, *on_b;   // 2 (C): the stage's output norm
} mit_stage;

typedef struct segformer {
    ckpt *ck;
    segformer_arch a;
    mit_stage st[4];
    conv2d convs[4];            // decode_head.convs.i: (ch, C_i, 1, 1), BN folded; then ReLU
    conv2d fusion;              // decode_head.fusion_conv: (ch, 4ch, 1, 1), BN folded; then ReLU
    conv2d conv_seg;            // decode_head.conv_seg: (nc, ch, 1, 1) + bias
} segformer;

// ---- the forward pass ----------------------------------------------------------------------------

typedef struct sf_run {
    const segformer *n;
    const nn_ctx *ctx;
    nn_arena *A;
    const char *want;
    tensor_list *out;
    int H[4], W[4];             // stage i's token grid
    float *o[4];                // stage outputs (C_i, H[i], W[i]), NCHW
} sf_run;

// A token list (n, c) as the output `name` of shape (1, n, c) when asked for (golden intermediates).
static int emit_tokens(sf_run *r, const char *name, const float *x, int64_t n, int c, err *e) {
    if (!model_wants(r->want, name)) return OODSEG_OK;
    return tl_add_copy(r->out, name, 3, (int64_t[]){1, n, c}, x, e) ? OODSEG_OK : e->code;
}

// S2: efficient self-attention on the normalised tokens nx (N, C) of an (h, w) grid; the
// projected result goes to y (N, C). Keys and values come from the grid reduced by the stride-sr
// conv (Nr = floor(h/sr)*floor(w/sr) tokens) and LayerNorm'd, or from nx itself when sr = 1.
static int efficient_attention(sf_run *r, const mit_layer *L, int C, int heads, int sr, const float *nx, int h,
                               int w, float *y, const char *tag, err *e) {
    const nn_ctx *ctx = r->ctx;
    nn_arena *A = r->A;
    int64_t N = (int64_t)h * w;
    int hr = sr > 1 ? conv2d_out_size(h, sr, sr, 0, 1) : h, wr = sr > 1 ? conv2d_out_size(w, sr, sr, 0, 1) : w;
    int64_t Nr = (int64_t)hr * wr;
    float *t = NULL, *red = NULL, *kvt = NULL, *q = NULL, *k = NULL, *v = NULL, *att = NULL;
    const float *kv = nx;
    char name[64];
    if (sr > 1) {
        if (!(t = arena_floats(A, C * N, "attention reduction input", e))) goto done;          // (C, h, w)
        nhwc_to_nchw(ctx, nx, h, w, C, t);
        if (!(red = arena_floats(A, C * Nr, "attention reduction", e))) goto done;             // (C, hr, wr)
        if (conv2d_forward(ctx, &L->sr, t, h, w, red, e)) goto done;
        arena_release(A, t), t = NULL;
        if (!(kvt = arena_floats(A, C * Nr, "reduced keys and values", e))) goto done;         // (Nr, C)
        nchw_to_nhwc(ctx, red, C, hr, wr, kvt);
        arena_release(A, red), red = NULL;
        layernorm_cl(ctx, kvt, Nr, C, L->srn_w, L->srn_b, LN_EPS, kvt);
        kv = kvt;
    }
    snprintf(name, sizeof name, "%s.kv", tag);
    if (emit_tokens(r, name, kv, Nr, C, e)) goto done;
    // in_proj: rows 0..C-1 of the weight are W_q, C..2C-1 W_k, 2C..3C-1 W_v
    if (!(q = arena_floats(A, C * N, "queries", e)) || !(k = arena_floats(A, C * Nr, "keys", e)) ||
        !(v = arena_floats(A, C * Nr, "values", e)))
        goto done;
    PROF_BEGIN(ctx, PROF_PROJ);
    linear_forward(ctx, nx, N, C, L->in_w, L->in_b, C, q);
    linear_forward(ctx, kv, Nr, C, L->in_w + (size_t)C * C, L->in_b + C, C, k);
    linear_forward(ctx, kv, Nr, C, L->in_w + (size_t)2 * C * C, L->in_b + 2 * C, C, v);
    PROF_END(ctx);
    arena_release(A, kvt), kvt = NULL;
    if (!(att = arena_floats(A, C * N, "attention", e))) goto done;                             // (N, C)
    int d = C / heads;
    if (attention_forward(ctx, q, k, v, (int)N, (int)Nr, heads, d, 1.0f / sqrtf((float)d), att, e)) goto done;
    PROF_BEGIN(ctx, PROF_PROJ);
    linear_forward(ctx, att, N, C, L->out_w, L->out_b, C, y);
    PROF_END(ctx);
done:
    arena_release(A, t), arena_release(A, red), arena_release(A, kvt);
    arena_release(A, q), arena_release(A, k), arena_release(A, v), arena_release(A, att);
    return e->code;
}

// S3: Mix-FFN on the normalised tokens nx (N, C), NCHW inside: 1x1 conv C -> 4C, depthwise 3x3,
// GELU, 1x1 conv 4C -> C; the result as tokens in y (N, C).
static int mix_ffn(sf_run *r, const mit_layer *L, int C, const float *nx, int h, int w, float *y, err *e) {
    const nn_ctx *ctx = r->ctx;
    nn_arena *A = r->A;
    int64_t N = (int64_t)h * w;
    float *t = NULL, *f1 = NULL, *f2 = NULL;
    if (!(t = arena_floats(A, C * N, "Mix-FFN input", e))) goto done;                 // (C, h, w)
    nhwc_to_nchw(ctx, nx, h, w, C, t);
    if (!(f1 = arena_floats(A, 4 * C * N, "Mix-FFN hidden", e))) goto done;          // (4C, h, w)
    if (conv2d_forward(ctx, &L->fc1, t, h, w, f1, e)) goto done;
    if (!(f2 = arena_floats(A, 4 * C * N, "Mix-FFN depthwise", e))) goto done;       // (4C, h, w)
    if (conv2d_forward(ctx, &L->dw, f1, h, w, f2, e)) goto done;
    arena_release(A, f1), f1 = NULL;
    gelu_inplace(ctx, f2, 4 * C * N);
    if (conv2d_forward(ctx, &L->fc2, f2, h, w, t, e)) goto done;                     // (C, h, w)
    nchw_to_nhwc(ctx, t, C, h, w, y);
done:
    arena_release(A, t), arena_release(A, f1), arena_release(A, f2);
    return e->code;
}

// One encoder layer (pre-norm) on the stage's tokens x (N, C), in place:
// x += attention(norm1(x)); x += MixFFN(norm2(x)).
static int mit_layer_forward(sf_run *r, int i, int j, float *x, err *e) {
    const segformer *n = r->n;
    const mit_layer *L = &n->st[i].layer[j];
    int C = n->a.dims[i], h = r->H[i], w = r->W[i];
    int64_t N = (int64_t)h * w;
    char tag[48], name[64];
    snprintf(tag, sizeof tag, "backbone.s%d.b%d", i, j);
    float *nx = arena_floats(r->A, C * N, "normalised tokens", e);   // (N, C)
    float *y = nx ? arena_floats(r->A, C * N, "layer branch", e) : NULL;   // (N, C)
    if (!y) goto done;
    PROF_BEGIN(r->ctx, PROF_NORM);
    layernorm_cl(r->ctx, x, N, C, L->n1_w, L->n1_b, LN_EPS, nx);
    snprintf(name, sizeof name, "%s.norm1", tag);
    if (emit_tokens(r, name, nx, N, C, e)) goto done;
    PROF_NEXT(r->ctx, PROF_ATTENTION);   // the reduction and the core; the projections nest
    if (efficient_attention(r, L, C, n->a.heads[i], n->a.sr[i], nx, h, w, y, tag, e)) goto done;
    PROF_NEXT(r->ctx, PROF_NORM);
    add_inplace(r->ctx, x, y, C * N);
    snprintf(name, sizeof name, "%s.attn_res", tag);
    if (emit_tokens(r, name, x, N, C, e)) goto done;
    layernorm_cl(r->ctx, x, N, C, L->n2_w, L->n2_b, LN_EPS, nx);
    PROF_NEXT(r->ctx, PROF_MLP);
    if (mix_ffn(r, L, C, nx, h, w, y, e)) goto done;
    PROF_NEXT(r->ctx, PROF_NORM);
    add_inplace(r->ctx, x, y, C * N);
    snprintf(name, sizeof name, "%s.out", tag);
    emit_tokens(r, name, x, N, C, e);
done:
    PROF_END(r->ctx);
    arena_release(r->A, nx);
    arena_release(r->A, y);
    return e->code;
}

// Stage i from its input x (C_prev, h, w): S1 patch embedding, the encoder layers, S4 the stage
// norm; the output o[i] (C_i, H[i], W[i]) NCHW.
static int mit_stage_forward(sf_run *r, int i, const float *x, int h, int w, err *e) {
    const segformer *n = r->n;
    const mit_stage *S = &n->st[i];
    int C = n->a.dims[i];
    int64_t N = (int64_t)r->H[i] * r->W[i];
    float *p = NULL, *t = NULL;
    char name[64];
    PROF_BEGIN(r->ctx, i ? PROF_DOWNSAMPLE : PROF_STEM);   // S1, and S4 below
    if (!(p = arena_floats(r->A, C * N, "patch embedding", e))) goto done;   // (C, H, W)
    if (conv2d_forward(r->ctx, &S->proj, x, h, w, p, e)) goto done;
    if (!(t = arena_floats(r->A, C * N, "stage tokens", e))) goto done;       // (N, C)
    nchw_to_nhwc(r->ctx, p, C, r->H[i], r->W[i], t);
    layernorm_cl(r->ctx, t, N, C, S->pn_w, S->pn_b, LN_EPS, t);
    snprintf(name, sizeof name, "backbone.s%d.patch_embed", i);
    if (emit_tokens(r, name, t, N, C, e)) goto done;
    for (int j = 0; j < n->a.depths[i]; j++)
        if (mit_layer_forward(r, i, j, t, e)) goto done;
    PROF_NEXT(r->ctx, PROF_NORM);
    layernorm_cl(r->ctx, t, N, C, S->on_w, S->on_b, LN_EPS, t);
    nhwc_to_nchw(r->ctx, t, r->H[i], r->W[i], C, p);
    r->o[i] = p, p = NULL;
done:
    PROF_END(r->ctx);
    arena_release(r->A, p);
    arena_release(r->A, t);
    return e->code;
}

// H1-H3: each stage through its 1x1 ConvModule, resized to stage 0's grid and concatenated in
// stage order; the fusion ConvModule; conv_seg; then bilinear to the input size (encode_decode).
static int segformer_head(sf_run *r, int h, int w, err *e) {
    const segformer *n = r->n;
    const nn_ctx *ctx = r->ctx;
    int ch = n->a.channels, nc = n->a.num_classes, H0 = r->H[0], W0 = r->W[0];
    int64_t hw0 = (int64_t)H0 * W0;
    float *cat = NULL, *c = NULL, *f = NULL, *lg = NULL;
    char name[64];
    if (!(cat = arena_floats(r->A, 4 * ch * hw0, "head concat", e))) goto done;   // (4ch, H0, W0)
    for (int i = 0; i < 4; i++) {
        int64_t hw = (int64_t)r->H[i] * r->W[i];
        float *dst = i == 0 ? cat : (c = arena_floats(r->A, ch * hw, "head stage map", e));   // (ch, H[i], W[i])
        if (!dst || conv2d_forward(ctx, &n->convs[i], r->o[i], r->H[i], r->W[i], dst, e)) goto done;
        relu_inplace(ctx, dst, ch * hw);
        snprintf(name, sizeof name, "decode.conv%d", i);
        if (model_emit(r->out, r->want, name, dst, ch, r->H[i], r->W[i], e)) goto done;
        snprintf(name, sizeof name, "backbone.out%d", i);
        if (model_give(r->A, r->out, r->want, name, &r->o[i], n->a.dims[i], r->H[i], r->W[i], e)) goto done;
        if (i == 0) continue;
        PROF_BEGIN(ctx, PROF_RESIZE);
        resize_bilinear(ctx, c, ch, r->H[i], r->W[i], cat + (size_t)i * ch * hw0, H0, W0, 0);
        PROF_END(ctx);
        arena_release(r->A, c), c = NULL;
    }
    if (model_emit(r->out, r->want, "decode.concat", cat, 4 * ch, H0, W0, e)) goto done;
    if (!(f = arena_floats(r->A, ch * hw0, "head fusion", e))) goto done;   // (ch, H0, W0)
    if (conv2d_forward(ctx, &n->fusion, cat, H0, W0, f, e)) goto done;
    arena_release(r->A, cat), cat = NULL;
    relu_inplace(ctx, f, ch * hw0);
    if (model_emit(r->out, r->want, "decode.fusion", f, ch, H0, W0, e)) goto done;
    if (!(lg = arena_floats(r->A, nc * hw0, "decode logits", e))) goto done;   // (nc, H0, W0)
    PROF_BEGIN(ctx, PROF_HEAD);
    int rc = conv2d_forward(ctx, &n->conv_seg, f, H0, W0, lg, e);
    PROF_END(ctx);
    if (rc) goto done;
    tensor *t = tl_add_uninit(r->out, "logits", 4, (int64_t[]){1, nc, h, w}, e);
    if (!t) goto done;
    PROF_BEGIN(ctx, PROF_RESIZE);
    resize_bilinear(ctx, lg, nc, H0, W0, t->data, h, w, 0);
    PROF_END(ctx);
    model_give(r->A, r->out, r->want, "decode.logits", &lg, nc, H0, W0, e);
done:
    arena_release(r->A, cat), arena_release(r->A, c), arena_release(r->A, f), arena_release(r->A, lg);
    return e->code;
}

static int segformer_forward(model *m, const float *input, int h, int w, const char *want, tensor_list *out,
                             err *e) {
    err_clear(e);
    const segformer *n = m->impl;
    if (h < 1 || w < 1) return err_set(e, OODSEG_E_ARG, "SegFormer input %dx%d (WxH): empty", w, h);
    sf_run r = {.n = n, .ctx = &m->ctx, .A = m->arena, .want = want, .out = out};
    for (int i = 0, ph = h, pw = w; i < 4; i++) {
        const conv2d *p = &n->st[i].proj;
        r.H[i] = ph = conv2d_out_size(ph, p->k, p->stride, p->pad, 1);
        r.W[i] = pw = conv2d_out_size(pw, p->k, p->stride, p->pad, 1);
    }
    nn_fpenv env;
    nn_denormals_off(&m->ctx, &env);
    arena_reset(m->arena);
    for (int i = 0; i < 4 && !e->code; i++)
        mit_stage_forward(&r, i, i ? r.o[i - 1] : input, i ? r.H[i - 1] : h, i ? r.W[i - 1] : w, e);
    PROF_BEGIN(&m->ctx, PROF_FPN);   // the head's ConvModules; conv_seg and the resizes nest
    if (!e->code) segformer_head(&r, h, w, e);
    PROF_END(&m->ctx);
    for (int i = 0; i < 4; i++) arena_release(m->arena, r.o[i]);
    arena_end(m->arena);
    nn_fpenv_restore(&env);
    return e->code;
}

static void sf_free(segformer *n) {
    for (int i = 0; i < 4; i++) {
        conv2d_free(&n->st[i].proj);
        for (int j = 0; n->st[i].layer && j < n->a.depths[i]; j++) {
            mit_layer *L = &n->st[i].layer[j];
            conv2d_free(&L->sr), conv2d_free(&L->fc1), conv2d_free(&L->dw), conv2d_free(&L->fc2);
        }
        free(n->st[i].layer);
        conv2d_free(&n->convs[i]);
    }
    conv2d_free(&n->fusion);
    conv2d_free(&n->conv_seg);
}

static void segformer_destroy(model *m) {
    if (!m) return;
    segformer *n = m->impl;
    if (n) {
        sf_free(n);
        ckpt_close(n->ck);
        free(n);
    }
    arena_free(m->arena);
    free(m);
}

// ---- recognition -------------------------------------------------------------------------------

#define MMSEG_FIRST "backbone.layers.0.0.projection.weight"

static int is_nvlabs(const ckpt *ck) {
    return ckpt_find(ck, "patch_embed1.proj.weight") || ckpt_find(ck, "backbone.patch_embed1.proj.weight");
}

int segformer_detect(const ckpt *ck) {
    return (ckpt_find(ck, MMSEG_FIRST) && ckpt_find(ck, "backbone.layers.0.1.0.attn.attn.in_proj_weight")) ||
           is_nvlabs(ck);
}

// The original NVlabs/SegFormer files name the same backbone differently and have another head;
// users hold both kinds, so the message says what differs and what to use.
static int refuse_nvlabs(const ckpt *ck, err *e) {
    return err_set(e, OODSEG_E_MODEL,
                   "%s: a SegFormer checkpoint in the original NVlabs/SegFormer naming (patch_embed1.proj, "
                   "block1.0.attn.q / attn.kv / attn.proj, mlp.fc1 / mlp.dwconv.dwconv / mlp.fc2 as Linear layers, "
                   "norm1..4, and the head decode_head.linear_c1..4 / linear_fuse / linear_pred); oodseg reads "
                   "mmsegmentation's naming (backbone.layers.i.0.projection, attn.attn.in_proj_weight = [q; kv], "
                   "attn.attn.out_proj, ffn.layers.0/1/4 as 1x1/3x3/1x1 convs, backbone.layers.i.2, and "
                   "decode_head.convs.i / fusion_conv / conv_seg). Use the mmsegmentation release of the same model "
                   "(configs/segformer, README: segformer_mit-b*_*.pth); mmseg's "
                   "tools/model_converters/mit2mmseg.py converts the backbone only, not the head",
                   ck->path);
}

static int dim(const ckpt *ck, int k, const char *fmt, int i) {
    int64_t s[8];
    int nd = wb_shape(ck, s, fmt, i);
    return nd > k ? (int)s[k] : -1;
}

// The released sizes (mmseg configs/_base_/models/segformer_mit-b0.py and configs/segformer/*).
static const struct { const char *name; int c0, d[4]; } sizes[6] = {
    {"b0", 32, {2, 2, 2, 2}}, {"b1", 64, {2, 2, 2, 2}}, {"b2", 64, {3, 4, 6, 3}},
    {"b3", 64, {3, 4, 18, 3}}, {"b4", 64, {3, 8, 27, 3}}, {"b5", 64, {3, 6, 40, 3}}};
static const int heads[4] = {1, 2, 5, 8}, srs[4] = {8, 4, 2, 1};

// The sizes from the shapes (segformer.h says which key gives what).
static int recognise(const ckpt *ck, segformer_arch *a, err *e) {
    memset(a, 0, sizeof *a);
    int prev = 3;
    for (int i = 0; i < 4; i++) {
        int64_t s[8];
        if (wb_shape(ck, s, "backbone.layers.%d.0.projection.weight", i) != 4 || s[1] != prev || s[2] != s[3])
            return err_set(e, OODSEG_E_MODEL, "%s: SegFormer stage %d: backbone.layers.%d.0.projection.weight is "
                           "missing or not [C, %d, p, p]", ck->path, i, i, prev);
        a->dims[i] = prev = (int)s[0];
        a->patch[i] = (int)s[2];
        if (a->patch[i] != 7 && a->patch[i] != 3)
            return err_set(e, OODSEG_E_MODEL, "%s: SegFormer stage %d: patch size %d (backbone.layers.%d.0."
                           "projection.weight); the MiT configs use 7 (stride 4) and 3 (stride 2)",
                           ck->path, i, a->patch[i], i);
        a->stride[i] = a->patch[i] == 7 ? 4 : 2;
        char key[96];
        while (snprintf(key, sizeof key, "backbone.layers.%d.1.%d.norm1.weight", i, a->depths[i]), ckpt_find(ck, key))
            a->depths[i]++;
        if (a->depths[i] == 0)
            return err_set(e, OODSEG_E_MODEL, "%s: SegFormer stage %d has no encoder layer (backbone.layers.%d.1.0.*)",
                           ck->path, i, i);
        a->sr[i] = dim(ck, 2, "backbone.layers.%d.1.0.attn.sr.weight", i);
        if (a->sr[i] < 1) a->sr[i] = 1;
        a->heads[i] = a->dims[i] / a->dims[0];
        if (a->heads[i] * a->dims[0] != a->dims[i])
            return err_set(e, OODSEG_E_MODEL, "%s: SegFormer stage %d width %d is not a multiple of stage 0's %d "
                           "(mmseg: C_i = embed_dims * num_heads[i], num_heads[0] = 1)", ck->path, i, a->dims[i],
                           a->dims[0]);
    }
    int64_t s[8];
    if (wb_shape(ck, s, "decode_head.conv_seg.weight") != 4 || !ckpt_find(ck, "decode_head.fusion_conv.conv.weight"))
        return err_set(e, OODSEG_E_MODEL, "%s: a Mix Transformer backbone without a SegformerHead "
                       "(decode_head.conv_seg.weight, decode_head.fusion_conv.conv.weight); oodseg reads SegFormer "
                       "as mmsegmentation releases it", ck->path);
    a->num_classes = (int)s[0];
    a->channels = (int)s[1];
    if (a->num_classes != 19 && a->num_classes != 150)
        return err_set(e, OODSEG_E_MODEL, "%s: SegFormer head with %d classes (decode_head.conv_seg.weight [%d, %d, 1, 1]); "
                       "oodseg knows the Cityscapes (19) and ADE20K (150) checkpoints", ck->path, a->num_classes,
                       a->num_classes, a->channels);
    for (int k = 0; k < 6; k++) {
        int same = a->dims[0] == sizes[k].c0;
        for (int i = 0; i < 4; i++)
            same &= a->depths[i] == sizes[k].d[i] && a->heads[i] == heads[i] && a->sr[i] == srs[i];
        if (same) snprintf(a->size, sizeof a->size, "%s", sizes[k].name);
    }
    return OODSEG_OK;
}

// ---- binding -------------------------------------------------------------------------------------

static int bind_layer(wbind *L, mit_layer *l, int C, int sr) {
    wb_norm(L, &l->n1_w, &l->n1_b, C, "norm1");
    l->in_w = wb_get(L, SHAPE(3 * C, C), "attn.attn.in_proj_weight");
    l->in_b = wb_get(L, SHAPE(3 * C), "attn.attn.in_proj_bias");
    wb_linear(L, &l->out_w, &l->out_b, C, C, "attn.attn.out_proj");
    if (sr > 1) {
        wb_conv(L, &l->sr, C, C, sr, sr, 1, 1, "attn.sr");
        wb_conv_bias(L, &l->sr, "attn.sr");
        l->sr.pad = 0;   // nn.Conv2d(C, C, sr, stride=sr): no padding, unlike wb_conv's "same"
        wb_norm(L, &l->srn_w, &l->srn_b, C, "attn.norm");
    }
    wb_norm(L, &l->n2_w, &l->n2_b, C, "norm2");
    wb_conv(L, &l->fc1, C, 4 * C, 1, 1, 1, 1, "ffn.layers.0");
    wb_conv_bias(L, &l->fc1, "ffn.layers.0");
    wb_conv(L, &l->dw, 4 * C, 4 * C, 3, 1, 1, 4 * C, "ffn.layers.1");
    wb_conv_bias(L, &l->dw, "ffn.layers.1");
    wb_conv(L, &l->fc2, 4 * C, C, 1, 1, 1, 1, "ffn.layers.4");
    wb_conv_bias(L, &l->fc2, "ffn.layers.4");
    return L->e->code;
}

// make_keys: add each missing key (names and shapes) instead of refusing it (segformer_keys).
static int bind(ckpt *ck, segformer *n, int make_keys, err *e) {
    const segformer_arch *a = &n->a;
    wbind L;
    wb_init(&L, ck, e);
    L.make_keys = make_keys;
    for (int i = 0, prev = 3; i < 4; prev = a->dims[i], i++) {
        mit_stage *S = &n->st[i];
        int C = a->dims[i];
        wb_push(&L, "backbone.layers.%d.", i);
        wb_conv(&L, &S->proj, prev, C, a->patch[i], a->stride[i], 1, 1, "0.projection");
        wb_conv_bias(&L, &S->proj, "0.projection");
        wb_norm(&L, &S->pn_w, &S->pn_b, C, "0.norm");
        if (!(S->layer = err_calloc(e, (size_t)a->depths[i], sizeof *S->layer, "SegFormer layers"))) return e->code;
        for (int j = 0; j < a->depths[i]; j++) {
            wb_push(&L, "1.%d.", j);
            bind_layer(&L, &S->layer[j], C, a->sr[i]);
            wb_pop(&L);
        }
        wb_norm(&L, &S->on_w, &S->on_b, C, "2");
        wb_pop(&L);
    }
    wb_push(&L, "decode_head.");
    for (int i = 0; i < 4; i++) {
        wb_conv(&L, &n->convs[i], a->dims[i], a->channels, 1, 1, 1, 1, "convs.%d.conv", i);
        wb_conv_bn(&L, &n->convs[i], BN_EPS, "convs.%d.bn", i);
    }
    wb_conv(&L, &n->fusion, 4 * a->channels, a->channels, 1, 1, 1, 1, "fusion_conv.conv");
    wb_conv_bn(&L, &n->fusion, BN_EPS, "fusion_conv.bn");
    wb_conv(&L, &n->conv_seg, a->channels, a->num_classes, 1, 1, 1, 1, "conv_seg");
    wb_conv_bias(&L, &n->conv_seg, "conv_seg");
    wb_pop(&L);
    if (e->code) return e->code;
    static const char *const ignore[] = {"num_batches_tracked"};
    const ckpt_entry *u = ckpt_first_unused(ck, ignore, 1);
    if (u) return err_set(e, OODSEG_E_MODEL, "%s: unexpected key '%s' for SegFormer (MiT-%s)", ck->path, u->name,
                          a->size[0] ? a->size : "custom");
    return L.no_data ? -1 : OODSEG_OK;   // -1: names and shapes only (describe accepts it, create does not)
}

int segformer_keys(ckpt *ck, const char *size, int num_classes, err *e) {
    segformer *n = err_calloc(e, 1, sizeof *n, "SegFormer key list");
    if (!n) return e->code;
    segformer_arch *a = &n->a;
    for (int k = 0; k < 6; k++)
        if (!strcmp(sizes[k].name, size)) {
            snprintf(a->size, sizeof a->size, "%s", size);
            for (int i = 0; i < 4; i++) {
                a->dims[i] = sizes[k].c0 * heads[i], a->depths[i] = sizes[k].d[i];
                a->heads[i] = heads[i], a->sr[i] = srs[i];
                a->patch[i] = i ? 3 : 7, a->stride[i] = i ? 2 : 4;
            }
        }
    a->channels = 256, a->num_classes = num_classes;   // every released SegformerHead is 256 wide
    if (!a->size[0]) err_set(e, OODSEG_E_ARG, "SegFormer size '%s': the released sizes are b0 ... b5", size);
    else bind(ck, n, 1, e);   // returns -1 (names only, as asked) with e clear
    sf_free(n);
    free(n);
    return e->code;
}

// ---- description ---------------------------------------------------------------------------------

// Dataset, classes, the mmseg test pipeline (docs/segformer.md "Test pipelines") and the taps.
static void fill_desc(model_desc *d, const ckpt *ck, const segformer_arch *a) {
    memset(d, 0, sizeof *d);
    int city = a->num_classes == 19;
    char name[96];
    if (a->size[0]) snprintf(name, sizeof name, "MiT-%c%c", a->size[0] - 32, a->size[1]);
    else snprintf(name, sizeof name, "MiT custom (C %d,%d,%d,%d; depths %d,%d,%d,%d)", a->dims[0], a->dims[1],
                  a->dims[2], a->dims[3], a->depths[0], a->depths[1], a->depths[2], a->depths[3]);
    snprintf(d->arch, sizeof d->arch, "segformer-%s", a->size[0] ? a->size : "custom");
    snprintf(d->dataset, sizeof d->dataset, city ? "cityscapes" : "ade20k");
    snprintf(d->title, sizeof d->title, "SegFormer %s + SegformerHead (%d ch), %s", name, a->channels,
             city ? "Cityscapes" : "ADE20K");
    snprintf(d->source_format, sizeof d->source_format, "%s", ck->format);
    const ckpt_entry *w0 = ckpt_find(ck, MMSEG_FIRST);
    snprintf(d->source_dtype, sizeof d->source_dtype, "%s", dtype_name(w0 ? w0->src_dtype : DT_F32));
    d->num_params = ckpt_num_learnable_params(ck);
    d->num_outputs = d->num_id = a->num_classes;
    for (int i = 0; i < d->num_id; i++) d->id_channels[i] = i;
    d->class_names = city ? cityscapes_classes : ade20k_classes;
    d->palette = city ? cityscapes_palette : ade20k_palette;
    // mmseg 0.x: cv2 uint8 keep-ratio resize to (2048, 1024) Cityscapes / (2048, 512) ADE20K, RGB,
    // ImageNet mean/std on 0..255. Cityscapes test_cfg: slide, crop 1024x1024, stride 768x768;
    // ADE20K (the base config's test_cfg): whole.
    preprocess *p = &d->pre;
    static const float mean[3] = {123.675f, 116.28f, 103.53f}, stdv[3] = {58.395f, 57.12f, 57.375f};
    memcpy(p->mean, mean, sizeof mean);
    memcpy(p->std, stdv, sizeof stdv);
    p->scale_after = 1.0f;
    p->order = PRE_RESIZE_THEN_NORMALISE;
    p->interp = INTERP_CV_LINEAR_U8;
    p->size_rule = SIZE_KEEP_RATIO;
    p->size_w = 2048;
    p->size_h = city ? 1024 : 512;
    if (city) d->infer = (infer_cfg){INFER_SLIDE, 1024, 1024, 768, 768};
    d->num_taps = 4;
    for (int i = 0, s = 1; i < 4; i++) {
        s *= a->stride[i];
        snprintf(d->taps[i].name, sizeof d->taps[i].name, "backbone.out%d", i);
        d->taps[i].stride = s;
        d->taps[i].channels = a->dims[i];
    }
    // The rule InternImage follows (METHOD.md): a hierarchical backbone's last stage, stride 32.
    snprintf(d->default_taps, sizeof d->default_taps, "backbone.out3");
    d->logits_stride = 1;
}

int segformer_describe(ckpt *ck, const model_options *opt, model_desc *d, segformer_arch *arch, err *e) {
    err_clear(e);
    if (is_nvlabs(ck)) return refuse_nvlabs(ck, e);
    segformer n = {0};
    if (recognise(ck, &n.a, e)) return e->code;
    int rc = bind(ck, &n, 0, e);
    sf_free(&n);
    if (rc > 0) return rc;
    fill_desc(d, ck, &n.a);
    if (opt && opt->id_channels && model_set_id_channels(d, opt->id_channels, e)) return e->code;
    if (arch) *arch = n.a;
    return OODSEG_OK;
}

int segformer_create(ckpt *ck, const model_options *opt, model **out, err *e) {
    *out = NULL;
    err_clear(e);
    if (is_nvlabs(ck)) { refuse_nvlabs(ck, e); ckpt_close(ck); return e->code; }
    model *m = err_calloc(e, 1, sizeof *m, "SegFormer model");
    segformer *n = err_calloc(e, 1, sizeof *n, "SegFormer model");
    if (!m || !n) { free(m); free(n); ckpt_close(ck); return e->code; }
    m->impl = n;
    m->forward = segformer_forward;
    m->destroy = segformer_destroy;
    n->ck = ck;
    if (model_arena_open(m, e) || recognise(ck, &n->a, e)) goto fail;
    int rc = bind(ck, n, 0, e);
    if (rc < 0) err_set(e, OODSEG_E_MODEL, "checkpoint '%s' has key names and shapes but no weights", ck->path);
    if (rc) goto fail;
    fill_desc(&m->desc, ck, &n->a);
    if (opt && opt->id_channels && model_set_id_channels(&m->desc, opt->id_channels, e)) goto fail;
    *out = m;
    return OODSEG_OK;
fail:
    segformer_destroy(m);
    return e->code;
}

// ---- activation estimate (model.estimate) -----------------------------------------------------

// The live peak of segformer_forward: the largest of the sets of blocks alive together in each
// stage's attention and Mix-FFN and in the head, with the block sizes of the forward itself.
uint64_t segformer_estimate(const model *m, int h, int w) {
    const segformer *n = m->impl;
    int H[4], W[4], ch = n->a.channels;
    uint64_t N[4], o[4], prev = 0, peak = 0;
    for (int i = 0, ph = h, pw = w; i < 4; i++) {
        const conv2d *p = &n->st[i].proj;
        H[i] = ph = conv2d_out_size(ph, p->k, p->stride, p->pad, 1);
        W[i] = pw = conv2d_out_size(pw, p->k, p->stride, p->pad, 1);
        N[i] = (uint64_t)H[i] * W[i];
    }
    for (int i = 0; i < 4; i++) {
        int C = n->a.dims[i], sr = n->a.sr[i];
        uint64_t cn = EST_F(C * N[i]), cnr = cn;
        if (sr > 1) cnr = EST_F((uint64_t)C * conv2d_out_size(H[i], sr, sr, 0, 1) * conv2d_out_size(W[i], sr, sr, 0, 1));
        uint64_t layer = 4 * cn;   // patch embedding, tokens, normalised tokens, branch
        // attention: the reduction, q beside k, v and the reduced tokens, then the result
        uint64_t att = max_u64(sr > 1 ? cn + cnr : 0, max_u64(cn + 3 * cnr, 2 * cn + 2 * cnr));
        peak = max_u64(peak, prev + layer + att);
        peak = max_u64(peak, prev + layer + 9 * cn);   // Mix-FFN: input, hidden, depthwise (4C each)
        o[i] = cn;
        prev += cn;
    }
    // the head: the stage outputs beside the concat, then concat and fusion, then fusion and logits
    uint64_t hw0 = N[0], cat = EST_F(4 * (uint64_t)ch * hw0);
    peak = max_u64(peak, prev + cat);
    peak = max_u64(peak, o[1] + o[2] + o[3] + cat + EST_F(ch * N[1]));
    peak = max_u64(peak, cat + EST_F(ch * hw0));
    peak = max_u64(peak, EST_F((ch + n->a.num_classes) * hw0));
    return peak + EST_SLACK;
}
