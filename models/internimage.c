// The InternImage backbone (Wang et al., "InternImage: Exploring Large-Scale Vision Foundation
// Models with Deformable Convolutions", CVPR 2023), inference only, as OpenGVLab's
// segmentation/mmseg_custom/models/backbones/intern_image.py computes it. Channels-last (H, W, C)
// inside the stages, NCHW at the stem and downsampling convs and at the outputs.
#include "internimage.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LN_EPS 1e-6f   // every LayerNorm in InternImage

// ---- key binding ---------------------------------------------------------------------------

int ii_get(ckpt *ck, err *e, const float **dst, const int64_t *shape, int ndim, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    err_clear(e);
    *dst = NULL;
    // A names-and-shapes checkpoint (ckpt_add without data): check and mark the key without letting
    // ckpt_get allocate zeros for it (a real-size model would be a gigabyte of them).
    ckpt_entry *en = (ckpt_entry *)ckpt_find(ck, name);
    if (en && !en->f32 && !en->raw && en->ndim == ndim && en->src_dtype <= DT_F64) {
        int same = 1;
        for (int d = 0; d < ndim; d++) same &= en->shape[d] == shape[d];
        if (same) {
            en->used = 1;
            return OODSEG_OK;
        }
    }
    *dst = ckpt_get(ck, name, ndim, shape, e);
    return *dst ? OODSEG_OK : (e->code ? e->code : err_set(e, OODSEG_E_INTERNAL, "ckpt_get('%s') failed", name));
}

int ii_shape(const ckpt *ck, int64_t *shape, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const ckpt_entry *en = ckpt_find(ck, name);
    if (!en) return 0;
    for (int i = 0; i < en->ndim && i < 8; i++) shape[i] = en->shape[i];
    return en->ndim > 0 ? en->ndim : -1;   // -1: a scalar
}

int ii_tap(tensor_list *out, const char *name, const float *x, int c, int h, int w, err *e) {
    return tl_add_copy(out, name, 4, (int64_t[]){1, c, h, w}, x, e) ? OODSEG_OK : e->code;
}

int ii_tap_cl(const nn_ctx *ctx, tensor_list *out, const char *name, const float *x, int h, int w, int c, err *e) {
    tensor *t = tl_add(out, name, 4, (int64_t[]){1, c, h, w}, e);
    if (!t) return e->code;
    nhwc_to_nchw(ctx, x, h, w, c, t->data);
    return OODSEG_OK;
}

// ---- recognition ---------------------------------------------------------------------------

static const struct {
    const char *size;
    int channels, depths[4], groups[4], post_norm;
    float offset_scale;
} sizes[] = {   // segmentation/configs/*/upernet_internimage_{t,s,b,l,xl}_*.py
    {"t", 64, {4, 4, 18, 4}, {4, 8, 16, 32}, 0, 1.0f},
    {"s", 80, {4, 4, 21, 4}, {5, 10, 20, 40}, 1, 1.0f},
    {"b", 112, {4, 4, 21, 4}, {7, 14, 28, 56}, 1, 1.0f},
    {"l", 160, {5, 5, 22, 5}, {10, 20, 40, 80}, 1, 2.0f},
    {"xl", 192, {5, 5, 24, 5}, {12, 24, 48, 96}, 1, 2.0f},
};

int internimage_recognise(const ckpt *ck, double offset_scale, internimage_arch *a, err *e) {
    memset(a, 0, sizeof *a);
    int64_t s[8];
    if (ii_shape(ck, s, "backbone.patch_embed.conv2.weight") != 4 || s[0] < 2 || s[0] % 2 || s[0] > 1 << 16)
        return err_set(e, OODSEG_E_MODEL, "InternImage: key 'backbone.patch_embed.conv2.weight' is missing "
                       "or not a (C, C/2, 3, 3) conv weight");
    a->channels = (int)s[0];
    for (int i = 0; i < 4; i++) {
        while (ii_shape(ck, s, "backbone.levels.%d.blocks.%d.dcn.offset.weight", i, a->depths[i]))
            a->depths[i]++;
        if (a->depths[i] == 0)
            return err_set(e, OODSEG_E_MODEL, "InternImage: key 'backbone.levels.%d.blocks.0.dcn.offset.weight' "
                           "is missing (stage %d has no blocks)", i, i);
        int nd = ii_shape(ck, s, "backbone.levels.%d.blocks.0.dcn.offset.weight", i);
        if (nd != 2 || s[0] % 18 || s[0] == 0)
            return err_set(e, OODSEG_E_MODEL, "InternImage: key 'backbone.levels.%d.blocks.0.dcn.offset.weight' "
                           "should be (groups*18, C) with a 3x3 kernel; its first dimension is %lld",
                           i, nd > 0 ? (long long)s[0] : -1LL);
        a->groups[i] = (int)(s[0] / 18);
        if (((int64_t)a->channels << i) % a->groups[i])
            return err_set(e, OODSEG_E_MODEL, "InternImage: stage %d has %d channels, not a multiple of its "
                           "%d DCNv3 groups", i, a->channels << i, a->groups[i]);
    }
    a->post_norm = !ii_shape(ck, s, "backbone.levels.0.norm.0.weight");
    a->layer_scale = ii_shape(ck, s, "backbone.levels.0.blocks.0.gamma1") != 0;
    // The released size with these flags, else the nearest one (same norm placement, nearest width).
    int best = -1, best_d = 1 << 30;
    for (int k = 0; k < (int)(sizeof sizes / sizeof sizes[0]); k++) {
        if (sizes[k].post_norm != a->post_norm) continue;
        if (sizes[k].channels == a->channels && !memcmp(sizes[k].depths, a->depths, sizeof a->depths) &&
            !memcmp(sizes[k].groups, a->groups, sizeof a->groups))
            a->size = sizes[k].size;
        int d = abs(sizes[k].channels - a->channels);
        if (d < best_d) best_d = d, best = k;
    }
    a->nearest = sizes[best].size;
    a->offset_scale = offset_scale > 0 ? (float)offset_scale : sizes[best].offset_scale;
    return OODSEG_OK;
}

// ---- binding -------------------------------------------------------------------------------

static void conv_init(conv2d *c, int c_in, int c_out, int k, int stride, int groups) {
    memset(c, 0, sizeof *c);
    c->c_in = c_in, c->c_out = c_out, c->k = k, c->stride = stride, c->pad = k / 2;
    c->dilation = 1, c->groups = groups;
}

#define GET(dst, shape, ...) do { if (ii_get(ck, e, (const float **)&(dst), shape, __VA_ARGS__)) return e->code; } while (0)

static int bind_block(ii_block *b, ckpt *ck, int i, int j, int C, int G, int layer_scale, err *e) {
    char p[64];
    snprintf(p, sizeof p, "backbone.levels.%d.blocks.%d.", i, j);
    if (layer_scale) {
        GET(b->gamma1, SHAPE(C), "%sgamma1", p);
        GET(b->gamma2, SHAPE(C), "%sgamma2", p);
    }
    GET(b->norm1_w, SHAPE(C), "%snorm1.0.weight", p);
    GET(b->norm1_b, SHAPE(C), "%snorm1.0.bias", p);
    conv_init(&b->dw_conv, C, C, 3, 1, C);
    GET(b->dw_conv.weight, SHAPE(C, 1, 3, 3), "%sdcn.dw_conv.0.weight", p);
    GET(b->dw_conv.bias, SHAPE(C), "%sdcn.dw_conv.0.bias", p);
    GET(b->dw_norm_w, SHAPE(C), "%sdcn.dw_conv.1.1.weight", p);
    GET(b->dw_norm_b, SHAPE(C), "%sdcn.dw_conv.1.1.bias", p);
    GET(b->offset_w, SHAPE(G * 18, C), "%sdcn.offset.weight", p);
    GET(b->offset_b, SHAPE(G * 18), "%sdcn.offset.bias", p);
    GET(b->mask_w, SHAPE(G * 9, C), "%sdcn.mask.weight", p);
    GET(b->mask_b, SHAPE(G * 9), "%sdcn.mask.bias", p);
    GET(b->input_proj_w, SHAPE(C, C), "%sdcn.input_proj.weight", p);
    GET(b->input_proj_b, SHAPE(C), "%sdcn.input_proj.bias", p);
    GET(b->output_proj_w, SHAPE(C, C), "%sdcn.output_proj.weight", p);
    GET(b->output_proj_b, SHAPE(C), "%sdcn.output_proj.bias", p);
    GET(b->norm2_w, SHAPE(C), "%snorm2.0.weight", p);
    GET(b->norm2_b, SHAPE(C), "%snorm2.0.bias", p);
    GET(b->fc1_w, SHAPE(4 * C, C), "%smlp.fc1.weight", p);
    GET(b->fc1_b, SHAPE(4 * C), "%smlp.fc1.bias", p);
    GET(b->fc2_w, SHAPE(C, 4 * C), "%smlp.fc2.weight", p);
    GET(b->fc2_b, SHAPE(C), "%smlp.fc2.bias", p);
    return OODSEG_OK;
}

int internimage_bind(internimage *net, ckpt *ck, const internimage_arch *a, err *e) {
    memset(net, 0, sizeof *net);
    net->arch = *a;
    int C = a->channels;
    conv_init(&net->conv1, 3, C / 2, 3, 2, 1);
    GET(net->conv1.weight, SHAPE(C / 2, 3, 3, 3), "backbone.patch_embed.conv1.weight");
    GET(net->conv1.bias, SHAPE(C / 2), "backbone.patch_embed.conv1.bias");
    GET(net->norm1_w, SHAPE(C / 2), "backbone.patch_embed.norm1.1.weight");
    GET(net->norm1_b, SHAPE(C / 2), "backbone.patch_embed.norm1.1.bias");
    conv_init(&net->conv2, C / 2, C, 3, 2, 1);
    GET(net->conv2.weight, SHAPE(C, C / 2, 3, 3), "backbone.patch_embed.conv2.weight");
    GET(net->conv2.bias, SHAPE(C), "backbone.patch_embed.conv2.bias");
    GET(net->norm2_w, SHAPE(C), "backbone.patch_embed.norm2.1.weight");
    GET(net->norm2_b, SHAPE(C), "backbone.patch_embed.norm2.1.bias");
    for (int i = 0; i < 4; i++) {
        ii_level *L = &net->levels[i];
        int Ci = C << i;
        L->channels = Ci, L->groups = a->groups[i], L->depth = a->depths[i];
        L->blocks = err_calloc(e, (size_t)L->depth, sizeof *L->blocks, "InternImage blocks");
        if (!L->blocks) return e->code;
        for (int j = 0; j < L->depth; j++)
            if (bind_block(&L->blocks[j], ck, i, j, Ci, L->groups, a->layer_scale, e)) return e->code;
        if (!a->post_norm) {
            GET(L->norm_w, SHAPE(Ci), "backbone.levels.%d.norm.0.weight", i);
            GET(L->norm_b, SHAPE(Ci), "backbone.levels.%d.norm.0.bias", i);
        }
        if (i < 3) {
            conv_init(&L->down, Ci, 2 * Ci, 3, 2, 1);
            GET(L->down.weight, SHAPE(2 * Ci, Ci, 3, 3), "backbone.levels.%d.downsample.conv.weight", i);
            GET(L->down_norm_w, SHAPE(2 * Ci), "backbone.levels.%d.downsample.norm.1.weight", i);
            GET(L->down_norm_b, SHAPE(2 * Ci), "backbone.levels.%d.downsample.norm.1.bias", i);
        }
    }
    return OODSEG_OK;
}

void internimage_free(internimage *net) {
    for (int i = 0; i < 4; i++) {
        free(net->levels[i].blocks);
        net->levels[i].blocks = NULL;
    }
}

// ---- forward -------------------------------------------------------------------------------

// Per-stage scratch, channels-last, n = H*W pixels. The DCN intermediates live in `s` and are dead
// by the time the MLP's hidden layer (n x 4C) reuses it.
typedef struct ii_work {
    float *a;     // (n, C)  norm1(x) (the DCN input for T), later norm2(x); NULL with post_norm
    float *v;     // (n, C)  input_proj(in) = the sampled values, later the branch output
    float *s;     // (n, max(4C, 2C + 27G))
} ii_work;

// One InternImageLayer on x (H, W, C) in place. tap: 1 for levels.0.blocks.0 (the golden taps).
static int block_forward(const nn_ctx *ctx, const ii_block *b, float *x, int H, int W, int C, int G, int post_norm,
                         float offset_scale, ii_work *wk, int tap, const char *want, tensor_list *out,
                         err *e) {
    int64_t n = (int64_t)H * W;
    float *in = post_norm ? x : wk->a;
    float *nchw = wk->s, *dw = wk->s + n * C;          // (C, H, W) each
    float *offset = wk->s + 2 * n * C;                 // (n, G*18)
    float *mask = offset + n * G * 18;                 // (n, G*9)
    float *core = wk->s;                               // (n, C), reuses nchw once it is dead
    float *hidden = wk->s;                             // (n, 4C)
#define TAP(nm, buf, c) do { if (tap && model_wants(want, nm) && ii_tap_cl(ctx, out, nm, buf, H, W, c, e)) return e->code; } while (0)

    // x = x + gamma1 * DCN(norm1(x))   or, post_norm,   x = x + gamma1 * norm1(DCN(x))
    if (!post_norm) layernorm_cl(ctx, x, n, C, b->norm1_w, b->norm1_b, LN_EPS, in);
    TAP("l0.b0.dcn.in", in, C);
    linear_forward(ctx, in, n, C, b->input_proj_w, b->input_proj_b, C, wk->v);
    TAP("l0.b0.dcn.input_proj", wk->v, C);
    // Offsets and masks come from a depthwise 3x3 conv of the DCN input, not of the values.
    nhwc_to_nchw(ctx, in, H, W, C, nchw);
    if (conv2d_forward(ctx, &b->dw_conv, nchw, H, W, dw, e)) return e->code;
    float *x1 = nchw;
    nchw_to_nhwc(ctx, dw, C, H, W, x1);
    layernorm_cl(ctx, x1, n, C, b->dw_norm_w, b->dw_norm_b, LN_EPS, x1);
    gelu_inplace(ctx, x1, n * C);
    TAP("l0.b0.dcn.dw_conv", x1, C);
    linear_forward(ctx, x1, n, C, b->offset_w, b->offset_b, G * 18, offset);
    linear_forward(ctx, x1, n, C, b->mask_w, b->mask_b, G * 9, mask);
    softmax_rows_inplace(ctx, mask, n * G, 9);
    TAP("l0.b0.dcn.offset", offset, G * 18);
    TAP("l0.b0.dcn.mask", mask, G * 9);
    dcnv3_core(ctx, wk->v, offset, mask, H, W, G, C / G, offset_scale, core);
    TAP("l0.b0.dcn.core", core, C);
    linear_forward(ctx, core, n, C, b->output_proj_w, b->output_proj_b, C, wk->v);
    TAP("l0.b0.dcn.out", wk->v, C);
    if (post_norm) layernorm_cl(ctx, wk->v, n, C, b->norm1_w, b->norm1_b, LN_EPS, wk->v);
    add_scaled_cl(ctx, x, wk->v, b->gamma1, n, C);

    // x = x + gamma2 * MLP(norm2(x))   or, post_norm,   x = x + gamma2 * norm2(MLP(x))
    const float *mlp_in = x;
    if (!post_norm) {
        layernorm_cl(ctx, x, n, C, b->norm2_w, b->norm2_b, LN_EPS, wk->a);
        mlp_in = wk->a;
    }
    linear_forward(ctx, mlp_in, n, C, b->fc1_w, b->fc1_b, 4 * C, hidden);
    gelu_inplace(ctx, hidden, n * 4 * C);
    linear_forward(ctx, hidden, n, 4 * C, b->fc2_w, b->fc2_b, C, wk->v);
    if (post_norm) layernorm_cl(ctx, wk->v, n, C, b->norm2_w, b->norm2_b, LN_EPS, wk->v);
    add_scaled_cl(ctx, x, wk->v, b->gamma2, n, C);
    TAP("l0.b0.out", x, C);
#undef TAP
    return OODSEG_OK;
}

// patch_embed: conv s2 -> LN -> GELU -> conv s2 -> LN. Returns x (H, W, C) channels-last.
static float *stem_forward(const nn_ctx *ctx, const internimage *net, const float *input, int h, int w, int *Ho, int *Wo,
                           err *e) {
    int C = net->arch.channels;
    int h1 = conv2d_out_size(h, 3, 2, 1, 1), w1 = conv2d_out_size(w, 3, 2, 1, 1);
    int h2 = conv2d_out_size(h1, 3, 2, 1, 1), w2 = conv2d_out_size(w1, 3, 2, 1, 1);
    int64_t n1 = (int64_t)h1 * w1, n2 = (int64_t)h2 * w2;
    float *x = NULL, *s1 = err_malloc(e, (size_t)(n1 * C / 2) * sizeof(float), "InternImage stem");
    float *s2 = s1 ? err_malloc(e, (size_t)(n1 * C / 2) * sizeof(float), "InternImage stem") : NULL;
    if (!s2) goto done;
    if (conv2d_forward(ctx, &net->conv1, input, h, w, s1, e)) goto done;
    nchw_to_nhwc(ctx, s1, C / 2, h1, w1, s2);
    layernorm_cl(ctx, s2, n1, C / 2, net->norm1_w, net->norm1_b, LN_EPS, s2);
    gelu_inplace(ctx, s2, n1 * C / 2);
    nhwc_to_nchw(ctx, s2, h1, w1, C / 2, s1);
    free(s2);
    s2 = err_malloc(e, (size_t)(n2 * C) * sizeof(float), "InternImage stem");
    if (!s2 || conv2d_forward(ctx, &net->conv2, s1, h1, w1, s2, e)) goto done;
    free(s1);
    s1 = NULL;
    x = err_malloc(e, (size_t)(n2 * C) * sizeof(float), "InternImage stem");
    if (!x) goto done;
    nchw_to_nhwc(ctx, s2, C, h2, w2, x);
    layernorm_cl(ctx, x, n2, C, net->norm2_w, net->norm2_b, LN_EPS, x);
    *Ho = h2, *Wo = w2;
done:
    free(s1);
    free(s2);
    return x;
}

int internimage_forward(const nn_ctx *ctx, const internimage *net, const float *input, int h, int w, const char *want,
                        tensor_list *out, float *feats[4], int fh[4], int fw[4], err *e) {
    const internimage_arch *a = &net->arch;
    ii_work wk = {0};
    float *y = NULL;
    int H, W;
    for (int i = 0; i < 4; i++) feats[i] = NULL;
    float *x = stem_forward(ctx, net, input, h, w, &H, &W, e);   // (H, W, C)
    if (!x) return e->code;
    if (model_wants(want, "stem.out") && ii_tap_cl(ctx, out, "stem.out", x, H, W, a->channels, e)) goto fail;

    for (int i = 0; i < 4; i++) {
        const ii_level *L = &net->levels[i];
        int C = L->channels, G = L->groups;
        int64_t n = (int64_t)H * W;
        int64_t per_px = 4 * C > 2 * C + 27 * G ? 4 * C : 2 * C + 27 * G;
        // Post-norm blocks normalise the branch outputs in place and need no `a`.
        if (!a->post_norm && !(wk.a = err_malloc(e, (size_t)(n * C) * sizeof(float), "InternImage stage buffers")))
            goto fail;
        wk.v = err_malloc(e, (size_t)(n * C) * sizeof(float), "InternImage stage buffers");
        wk.s = wk.v ? err_malloc(e, (size_t)(n * per_px) * sizeof(float), "InternImage stage buffers") : NULL;
        if (!wk.s) goto fail;
        for (int j = 0; j < L->depth; j++)
            if (block_forward(ctx, &L->blocks[j], x, H, W, C, G, a->post_norm, a->offset_scale, &wk,
                              i == 0 && j == 0, want, out, e)) goto fail;
        free(wk.a), free(wk.v), free(wk.s);
        wk = (ii_work){0};
        if (L->norm_w) layernorm_cl(ctx, x, n, C, L->norm_w, L->norm_b, LN_EPS, x);
        // The stage output (NCHW) is also the downsampling conv's input.
        feats[i] = err_malloc(e, (size_t)(n * C) * sizeof(float), "InternImage stage output");
        if (!feats[i]) goto fail;
        nhwc_to_nchw(ctx, x, H, W, C, feats[i]);
        fh[i] = H, fw[i] = W;
        free(x);
        x = NULL;
        if (i == 3) break;
        int H2 = conv2d_out_size(H, 3, 2, 1, 1), W2 = conv2d_out_size(W, 3, 2, 1, 1);
        int64_t n2 = (int64_t)H2 * W2;
        y = err_malloc(e, (size_t)(n2 * 2 * C) * sizeof(float), "InternImage downsample");
        if (!y || conv2d_forward(ctx, &L->down, feats[i], H, W, y, e)) goto fail;
        x = err_malloc(e, (size_t)(n2 * 2 * C) * sizeof(float), "InternImage downsample");
        if (!x) goto fail;
        nchw_to_nhwc(ctx, y, 2 * C, H2, W2, x);
        free(y);
        y = NULL;
        layernorm_cl(ctx, x, n2, 2 * C, L->down_norm_w, L->down_norm_b, LN_EPS, x);
        H = H2, W = W2;
    }
    return OODSEG_OK;
fail:
    free(x), free(y), free(wk.a), free(wk.v), free(wk.s);
    for (int i = 0; i < 4; i++) free(feats[i]), feats[i] = NULL;
    return e->code ? e->code : err_set(e, OODSEG_E_INTERNAL, "InternImage forward failed");
}
