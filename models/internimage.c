// The InternImage backbone (Wang et al., "InternImage: Exploring Large-Scale Vision Foundation
// Models with Deformable Convolutions", CVPR 2023), inference only, as OpenGVLab's
// segmentation/mmseg_custom/models/backbones/intern_image.py computes it. Channels-last (H, W, C)
// inside the stages, NCHW at the stem and downsampling convs and at the outputs.
#include "internimage.h"
#include "../nn/prof.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LN_EPS 1e-6f   // every LayerNorm in InternImage

// ---- taps ----------------------------------------------------------------------------------

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
    if (wb_shape(ck, s, "backbone.patch_embed.conv2.weight") != 4 || s[0] < 2 || s[0] % 2 || s[0] > 1 << 16)
        return err_set(e, OODSEG_E_MODEL, "InternImage: key 'backbone.patch_embed.conv2.weight' is missing "
                       "or not a (C, C/2, 3, 3) conv weight");
    a->channels = (int)s[0];
    for (int i = 0; i < 4; i++) {
        while (wb_shape(ck, s, "backbone.levels.%d.blocks.%d.dcn.offset.weight", i, a->depths[i]))
            a->depths[i]++;
        if (a->depths[i] == 0)
            return err_set(e, OODSEG_E_MODEL, "InternImage: key 'backbone.levels.%d.blocks.0.dcn.offset.weight' "
                           "is missing (stage %d has no blocks)", i, i);
        int nd = wb_shape(ck, s, "backbone.levels.%d.blocks.0.dcn.offset.weight", i);
        if (nd != 2 || s[0] % 18 || s[0] == 0)
            return err_set(e, OODSEG_E_MODEL, "InternImage: key 'backbone.levels.%d.blocks.0.dcn.offset.weight' "
                           "should be (groups*18, C) with a 3x3 kernel; its first dimension is %lld",
                           i, nd > 0 ? (long long)s[0] : -1LL);
        a->groups[i] = (int)(s[0] / 18);
        if (((int64_t)a->channels << i) % a->groups[i])
            return err_set(e, OODSEG_E_MODEL, "InternImage: stage %d has %d channels, not a multiple of its "
                           "%d DCNv3 groups", i, a->channels << i, a->groups[i]);
    }
    a->post_norm = !wb_shape(ck, s, "backbone.levels.0.norm.0.weight");
    a->layer_scale = wb_shape(ck, s, "backbone.levels.0.blocks.0.gamma1") != 0;
    // The released size with these flags; else, for a custom size, the nearest by width of the sizes
    // with its norm placement and, when post-norm, with L/XL's offset_scale 2. The checkpoint does
    // not store offset_scale, and post-norm alone does not tell S/B (1.0) from L/XL (2.0): a custom
    // post-norm model is taken as L-like, as the golden tiny-l (L's config, shrunk) is.
    int exact = -1, best = -1, best_d = 1 << 30;
    for (int k = 0; k < (int)(sizeof sizes / sizeof sizes[0]); k++) {
        if (sizes[k].post_norm != a->post_norm) continue;
        if (sizes[k].channels == a->channels && !memcmp(sizes[k].depths, a->depths, sizeof a->depths) &&
            !memcmp(sizes[k].groups, a->groups, sizeof a->groups))
            exact = k;
        int d = abs(sizes[k].channels - a->channels);
        if ((!a->post_norm || sizes[k].offset_scale == 2.0f) && d < best_d) best_d = d, best = k;
    }
    if (exact >= 0) best = exact, a->size = sizes[exact].size;
    a->nearest = sizes[best].size;
    a->offset_scale = sizes[best].offset_scale;
    if (offset_scale > 0) {
        a->offset_scale = (float)offset_scale;
        a->offset_scale_why = "--offset-scale";
    } else if (!a->size) {
        a->offset_scale_why = a->post_norm ? "as L/XL: custom post-norm size; S/B use 1" : "as T: custom pre-norm size";
    }
    return OODSEG_OK;
}

int internimage_arch_of(const char *size, internimage_arch *a, err *e) {
    memset(a, 0, sizeof *a);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        if (!strcmp(sizes[k].size, size)) {
            a->channels = sizes[k].channels;
            memcpy(a->depths, sizes[k].depths, sizeof a->depths);
            memcpy(a->groups, sizes[k].groups, sizeof a->groups);
            a->post_norm = sizes[k].post_norm;
            a->layer_scale = 1;
            a->offset_scale = sizes[k].offset_scale;
            a->size = a->nearest = sizes[k].size;
            return OODSEG_OK;
        }
    return err_set(e, OODSEG_E_ARG, "InternImage size '%s': the released sizes are t, s, b, l, xl", size);
}

// ---- binding -------------------------------------------------------------------------------

// Under the prefix "backbone.levels.i.blocks.j.".
static void bind_block(wbind *w, ii_block *b, int C, int G, int layer_scale) {
    if (layer_scale) {
        b->gamma1 = wb_get(w, SHAPE(C), "gamma1");
        b->gamma2 = wb_get(w, SHAPE(C), "gamma2");
    }
    wb_norm(w, &b->norm1_w, &b->norm1_b, C, "norm1.0");
    wb_conv(w, &b->dw_conv, C, C, 3, 1, 1, C, "dcn.dw_conv.0");
    wb_conv_bias(w, &b->dw_conv, "dcn.dw_conv.0");
    // The branch runs on the channels-last map: the taps' weights contiguous along C.
    if (!w->e->code && b->dw_conv.weight) {
        b->dw_w_cl = err_calloc(w->e, (size_t)9 * C, sizeof *b->dw_w_cl, "InternImage dw_conv weights");
        if (b->dw_w_cl) dwconv3x3_cl_weights(b->dw_conv.weight, C, b->dw_w_cl);
    }
    wb_norm(w, &b->dw_norm_w, &b->dw_norm_b, C, "dcn.dw_conv.1.1");
    wb_linear(w, &b->offset_w, &b->offset_b, C, G * 18, "dcn.offset");
    wb_linear(w, &b->mask_w, &b->mask_b, C, G * 9, "dcn.mask");
    wb_linear(w, &b->input_proj_w, &b->input_proj_b, C, C, "dcn.input_proj");
    wb_linear(w, &b->output_proj_w, &b->output_proj_b, C, C, "dcn.output_proj");
    wb_norm(w, &b->norm2_w, &b->norm2_b, C, "norm2.0");
    wb_linear(w, &b->fc1_w, &b->fc1_b, C, 4 * C, "mlp.fc1");
    wb_linear(w, &b->fc2_w, &b->fc2_b, 4 * C, C, "mlp.fc2");
}

// Under the prefix "backbone.levels.i.".
static int bind_level(wbind *w, ii_level *L, int i, const internimage_arch *a) {
    int Ci = a->channels << i;
    L->channels = Ci, L->groups = a->groups[i], L->depth = a->depths[i];
    L->blocks = err_calloc(w->e, (size_t)L->depth, sizeof *L->blocks, "InternImage blocks");
    if (!L->blocks) return w->e->code;
    for (int j = 0; j < L->depth; j++) {
        wb_push(w, "blocks.%d.", j);
        bind_block(w, &L->blocks[j], Ci, L->groups, a->layer_scale);
        wb_pop(w);
    }
    if (!a->post_norm) wb_norm(w, &L->norm_w, &L->norm_b, Ci, "norm.0");
    if (i < 3) {
        wb_conv(w, &L->down, Ci, 2 * Ci, 3, 2, 1, 1, "downsample.conv");
        wb_norm(w, &L->down_norm_w, &L->down_norm_b, 2 * Ci, "downsample.norm.1");
    }
    return w->e->code;
}

int internimage_bind(internimage *net, wbind *w, const internimage_arch *a) {
    memset(net, 0, sizeof *net);
    net->arch = *a;
    int C = a->channels;
    wb_push(w, "backbone.");
    wb_conv(w, &net->conv1, 3, C / 2, 3, 2, 1, 1, "patch_embed.conv1");
    wb_conv_bias(w, &net->conv1, "patch_embed.conv1");
    wb_norm(w, &net->norm1_w, &net->norm1_b, C / 2, "patch_embed.norm1.1");
    wb_conv(w, &net->conv2, C / 2, C, 3, 2, 1, 1, "patch_embed.conv2");
    wb_conv_bias(w, &net->conv2, "patch_embed.conv2");
    wb_norm(w, &net->norm2_w, &net->norm2_b, C, "patch_embed.norm2.1");
    for (int i = 0; i < 4 && !w->e->code; i++) {
        wb_push(w, "levels.%d.", i);
        bind_level(w, &net->levels[i], i, a);
        wb_pop(w);
    }
    wb_pop(w);
    return w->e->code;
}

void internimage_free(internimage *net) {
    for (int i = 0; i < 4; i++) {
        for (int j = 0; net->levels[i].blocks && j < net->levels[i].depth; j++)
            free(net->levels[i].blocks[j].dw_w_cl);
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
    float *x1 = wk->s;                                 // (n, C) the offset/mask branch's dw conv
    float *offset = wk->s + 2 * n * C;                 // (n, G*18)
    float *mask = offset + n * G * 18;                 // (n, G*9)
    float *core = wk->s;                               // (n, C), reuses x1 once it is dead
    float *hidden = wk->s;                             // (n, 4C)
#define TAP(nm, buf, c) do { if (tap && model_wants(want, nm) && ii_tap_cl(ctx, out, nm, buf, H, W, c, e)) return e->code; } while (0)

    // x = x + gamma1 * DCN(norm1(x))   or, post_norm,   x = x + gamma1 * norm1(DCN(x))
    PROF_BEGIN(ctx, PROF_NORM);
    if (!post_norm) layernorm_cl(ctx, x, n, C, b->norm1_w, b->norm1_b, LN_EPS, in);
    TAP("l0.b0.dcn.in", in, C);
    PROF_NEXT(ctx, PROF_PROJ);
    linear_forward(ctx, in, n, C, b->input_proj_w, b->input_proj_b, C, wk->v);
    TAP("l0.b0.dcn.input_proj", wk->v, C);
    // Offsets and masks come from a depthwise 3x3 conv of the DCN input, not of the values.
    PROF_NEXT(ctx, PROF_DCN_DW);
    dwconv3x3_cl(ctx, in, H, W, C, b->dw_w_cl, b->dw_conv.bias, x1);
    layernorm_cl(ctx, x1, n, C, b->dw_norm_w, b->dw_norm_b, LN_EPS, x1);
    gelu_inplace(ctx, x1, n * C);
    TAP("l0.b0.dcn.dw_conv", x1, C);
    PROF_NEXT(ctx, PROF_PROJ);
    linear_forward(ctx, x1, n, C, b->offset_w, b->offset_b, G * 18, offset);
    linear_forward(ctx, x1, n, C, b->mask_w, b->mask_b, G * 9, mask);
    softmax_rows_inplace(ctx, mask, n * G, 9);
    TAP("l0.b0.dcn.offset", offset, G * 18);
    TAP("l0.b0.dcn.mask", mask, G * 9);
    PROF_NEXT(ctx, PROF_DCN_GATHER);
    dcnv3_core(ctx, wk->v, offset, mask, H, W, G, C / G, offset_scale, core);
    TAP("l0.b0.dcn.core", core, C);
    PROF_NEXT(ctx, PROF_PROJ);
    linear_forward(ctx, core, n, C, b->output_proj_w, b->output_proj_b, C, wk->v);
    TAP("l0.b0.dcn.out", wk->v, C);
    PROF_NEXT(ctx, PROF_NORM);
    if (post_norm) layernorm_cl(ctx, wk->v, n, C, b->norm1_w, b->norm1_b, LN_EPS, wk->v);
    add_scaled_cl(ctx, x, wk->v, b->gamma1, n, C);

    // x = x + gamma2 * MLP(norm2(x))   or, post_norm,   x = x + gamma2 * norm2(MLP(x))
    const float *mlp_in = x;
    if (!post_norm) {
        layernorm_cl(ctx, x, n, C, b->norm2_w, b->norm2_b, LN_EPS, wk->a);
        mlp_in = wk->a;
    }
    PROF_NEXT(ctx, PROF_MLP);
    linear_gelu_forward(ctx, mlp_in, n, C, b->fc1_w, b->fc1_b, 4 * C, hidden);
    linear_forward(ctx, hidden, n, 4 * C, b->fc2_w, b->fc2_b, C, wk->v);
    PROF_NEXT(ctx, PROF_NORM);
    if (post_norm) layernorm_cl(ctx, wk->v, n, C, b->norm2_w, b->norm2_b, LN_EPS, wk->v);
    add_scaled_cl(ctx, x, wk->v, b->gamma2, n, C);
    PROF_END(ctx);
    TAP("l0.b0.out", x, C);
#undef TAP
    return OODSEG_OK;
}

// patch_embed: conv s2 -> LN -> GELU -> conv s2 -> LN. Returns x (H, W, C) channels-last.
static float *stem_forward(const nn_ctx *ctx, nn_arena *A, const internimage *net, const float *input, int h, int w,
                           int *Ho, int *Wo, err *e) {
    int C = net->arch.channels;
    int h1 = conv2d_out_size(h, 3, 2, 1, 1), w1 = conv2d_out_size(w, 3, 2, 1, 1);
    int h2 = conv2d_out_size(h1, 3, 2, 1, 1), w2 = conv2d_out_size(w1, 3, 2, 1, 1);
    int64_t n1 = (int64_t)h1 * w1, n2 = (int64_t)h2 * w2;
    float *x = NULL, *s1 = arena_floats(A, n1 * C / 2, "InternImage stem", e);
    float *s2 = s1 ? arena_floats(A, n1 * C / 2, "InternImage stem", e) : NULL;
    if (!s2) goto done;
    if (conv2d_forward(ctx, &net->conv1, input, h, w, s1, e)) goto done;
    nchw_to_nhwc(ctx, s1, C / 2, h1, w1, s2);
    layernorm_cl(ctx, s2, n1, C / 2, net->norm1_w, net->norm1_b, LN_EPS, s2);
    gelu_inplace(ctx, s2, n1 * C / 2);
    nhwc_to_nchw(ctx, s2, h1, w1, C / 2, s1);
    arena_release(A, s2);
    s2 = arena_floats(A, n2 * C, "InternImage stem", e);
    if (!s2 || conv2d_forward(ctx, &net->conv2, s1, h1, w1, s2, e)) goto done;
    arena_release(A, s1);
    s1 = NULL;
    x = arena_floats(A, n2 * C, "InternImage stem", e);
    if (!x) goto done;
    nchw_to_nhwc(ctx, s2, C, h2, w2, x);
    layernorm_cl(ctx, x, n2, C, net->norm2_w, net->norm2_b, LN_EPS, x);
    *Ho = h2, *Wo = w2;
done:
    arena_release(A, s1);
    arena_release(A, s2);
    return x;
}

// Stage i's blocks (and its norm) on x (H, W, C) in place, with the stage's scratch from A.
static int stage_blocks(const nn_ctx *ctx, nn_arena *A, const internimage *net, int i, float *x, int H, int W,
                        const char *want, tensor_list *out, err *e) {
    const internimage_arch *a = &net->arch;
    const ii_level *L = &net->levels[i];
    int C = L->channels, G = L->groups;
    int64_t n = (int64_t)H * W;
    int64_t per_px = 4 * C > 2 * C + 27 * G ? 4 * C : 2 * C + 27 * G;
    ii_work wk = {0};
    // Post-norm blocks normalise the branch outputs in place and need no `a`.
    if (!a->post_norm && !(wk.a = arena_floats(A, n * C, "InternImage stage buffers", e))) goto done;
    wk.v = arena_floats(A, n * C, "InternImage stage buffers", e);
    wk.s = wk.v ? arena_floats(A, n * per_px, "InternImage stage buffers", e) : NULL;
    if (!wk.s) goto done;
    for (int j = 0; j < L->depth; j++)
        if (block_forward(ctx, &L->blocks[j], x, H, W, C, G, a->post_norm, a->offset_scale, &wk,
                          i == 0 && j == 0, want, out, e)) goto done;
    PROF_BEGIN(ctx, PROF_NORM);
    if (L->norm_w) layernorm_cl(ctx, x, n, C, L->norm_w, L->norm_b, LN_EPS, x);
    PROF_END(ctx);
done:
    arena_release(A, wk.a), arena_release(A, wk.v), arena_release(A, wk.s);
    return e->code;
}

// levels.i.downsample: conv 3x3 s2 on the stage output f (C, H, W) NCHW, then LN, into a new
// channels-last x (H2, W2, 2C).
static float *downsample(const nn_ctx *ctx, nn_arena *A, const ii_level *L, const float *f, int H, int W, int H2,
                         int W2, err *e) {
    int C = L->channels;
    int64_t n2 = (int64_t)H2 * W2;
    float *y = arena_floats(A, n2 * 2 * C, "InternImage downsample", e);
    float *x = y ? arena_floats(A, n2 * 2 * C, "InternImage downsample", e) : NULL;
    if (!x || conv2d_forward(ctx, &L->down, f, H, W, y, e)) {
        arena_release(A, y), arena_release(A, x);
        return NULL;
    }
    nchw_to_nhwc(ctx, y, 2 * C, H2, W2, x);
    arena_release(A, y);
    layernorm_cl(ctx, x, n2, 2 * C, L->down_norm_w, L->down_norm_b, LN_EPS, x);
    return x;
}

int internimage_forward(const nn_ctx *ctx, nn_arena *A, const internimage *net, const float *input, int h, int w,
                        const char *want, tensor_list *out, float *feats[4], int fh[4], int fw[4], err *e) {
    const internimage_arch *a = &net->arch;
    int H, W;
    for (int i = 0; i < 4; i++) feats[i] = NULL;
    PROF_BEGIN(ctx, PROF_STEM);
    float *x = stem_forward(ctx, A, net, input, h, w, &H, &W, e);   // (H, W, C)
    PROF_END(ctx);
    if (!x) return e->code;
    if (model_wants(want, "stem.out") && ii_tap_cl(ctx, out, "stem.out", x, H, W, a->channels, e)) goto fail;

    for (int i = 0; i < 4; i++) {
        const ii_level *L = &net->levels[i];
        int C = L->channels;
        if (stage_blocks(ctx, A, net, i, x, H, W, want, out, e)) goto fail;
        // The stage output (NCHW) is also the downsampling conv's input.
        feats[i] = arena_floats(A, (int64_t)H * W * C, "InternImage stage output", e);
        if (!feats[i]) goto fail;
        PROF_BEGIN(ctx, PROF_DOWNSAMPLE);   // the layout change and the downsampling conv
        nhwc_to_nchw(ctx, x, H, W, C, feats[i]);
        fh[i] = H, fw[i] = W;
        arena_release(A, x);
        x = NULL;
        if (i == 3) { PROF_END(ctx); break; }
        int H2 = conv2d_out_size(H, 3, 2, 1, 1), W2 = conv2d_out_size(W, 3, 2, 1, 1);
        x = downsample(ctx, A, L, feats[i], H, W, H2, W2, e);
        PROF_END(ctx);
        if (!x) goto fail;
        H = H2, W = W2;
    }
    return OODSEG_OK;
fail:
    arena_release(A, x);
    for (int i = 0; i < 4; i++) arena_release(A, feats[i]), feats[i] = NULL;
    return e->code ? e->code : err_set(e, OODSEG_E_INTERNAL, "InternImage forward failed");
}
