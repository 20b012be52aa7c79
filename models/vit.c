// The DINOv2 ViT backbone (docs/dinov2-segformer.md A.1-A.4), token-major (N, D) throughout,
// N = 1 + h*w tokens (cls first, then the patches row-major).
#include "vit.h"
#include "../nn/prof.h"
#include "../core/text.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The released sizes (A.1); all have head_dim 64.
static const struct { const char *size; int dim, depth, swiglu; } released[] = {
    {"s", 384, 12, 0}, {"b", 768, 12, 0}, {"l", 1024, 24, 0}, {"g", 1536, 40, 1},
};

int vit_recognise(const ckpt *ck, vit_arch *a, err *e) {
    memset(a, 0, sizeof *a);
    int64_t s[8];
    int nd = wb_shape(ck, s, "cls_token");
    if (nd != 3 || s[0] != 1 || s[1] != 1 || s[2] < 1)
        return err_set(e, OODSEG_E_MODEL, "%s: %s: not a DINOv2 backbone (needs 'cls_token' [1, 1, D])", ck->path,
                       nd ? "'cls_token' has another shape" : "no key 'cls_token'");
    a->dim = (int)s[2];
    nd = wb_shape(ck, s, "pos_embed");
    int M = nd == 3 ? (int)floor(sqrt((double)(s[1] - 1)) + 0.5) : 0;
    if (nd != 3 || s[0] != 1 || s[2] != a->dim || M < 1 || 1 + (int64_t)M * M != s[1])
        return err_set(e, OODSEG_E_MODEL, "%s: 'pos_embed' %s: a DINOv2 backbone needs [1, 1 + M*M, %d] "
                       "(M = 37 for the released img_size 518)", ck->path, nd ? "has another shape" : "is missing",
                       a->dim);
    a->grid = M;
    while (wb_shape(ck, s, "blocks.%d.norm1.weight", a->depth) == 1) a->depth++;
    if (a->depth == 0)
        return err_set(e, OODSEG_E_MODEL, "%s: no key 'blocks.0.norm1.weight': a DINOv2 backbone saved with "
                       "block chunks ('blocks.0.0.*') or another layout is not read", ck->path);
    if (wb_shape(ck, s, "blocks.0.mlp.w12.weight") == 2) {
        a->swiglu = 1;
        a->hidden = (int)(s[0] / 2);
    } else if (wb_shape(ck, s, "blocks.0.mlp.fc1.weight") == 2) {
        a->hidden = (int)s[0];
    } else {
        return err_set(e, OODSEG_E_MODEL, "%s: block 0 has neither 'mlp.fc1.weight' (Mlp) nor 'mlp.w12.weight' "
                       "(SwiGLU) as a 2-D key", ck->path);
    }
    for (size_t i = 0; i < sizeof released / sizeof released[0]; i++)
        if (a->dim == released[i].dim && a->depth == released[i].depth && a->swiglu == released[i].swiglu)
            a->size = released[i].size;
    // The head count is not stored. Released sizes: head_dim 64. Another width: the largest of
    // 64, 32, 16 that divides it (the golden tiny model, D 48, has 3 heads of 16), said in `info`.
    int hd = a->dim % 64 == 0 ? 64 : a->dim % 32 == 0 ? 32 : a->dim % 16 == 0 ? 16 : 0;
    if (!hd)
        return err_set(e, OODSEG_E_MODEL, "%s: DINOv2 width D = %d: the head count is not stored and D is no "
                       "multiple of 16, so it cannot be chosen", ck->path, a->dim);
    a->heads = a->dim / hd;
    if (!a->size) a->heads_why = hd == 64 ? "head_dim 64 as the released sizes" : "head_dim the largest of 64, 32, 16 dividing D";
    return OODSEG_OK;
}

int vit_bind(vit *v, wbind *b, const vit_arch *a) {
    memset(v, 0, sizeof *v);
    v->a = *a;
    int D = a->dim, H = a->hidden, M = a->grid;
    v->cls_token = wb_get(b, SHAPE(1, 1, D), "cls_token");
    v->pos_embed = wb_get(b, SHAPE(1, 1 + (int64_t)M * M, D), "pos_embed");
    wb_conv(b, &v->patch, 3, D, VIT_PATCH, VIT_PATCH, 1, 1, "patch_embed.proj");
    v->patch.pad = 0;   // the patch embedding has none (wb_conv's default is "same")
    wb_conv_bias(b, &v->patch, "patch_embed.proj");
    v->blocks = calloc((size_t)a->depth, sizeof *v->blocks);
    if (!v->blocks) return err_set(b->e, OODSEG_E_NOMEM, "ViT blocks: out of memory");
    for (int i = 0; i < a->depth; i++) {
        vit_block *k = &v->blocks[i];
        wb_push(b, "blocks.%d.", i);
        wb_norm(b, &k->norm1_w, &k->norm1_b, D, "norm1");
        const float *qkv_w = wb_get(b, SHAPE(3 * D, D), "attn.qkv.weight");
        const float *qkv_b = wb_get(b, SHAPE(3 * D), "attn.qkv.bias");
        if (qkv_w) k->q_w = qkv_w, k->k_w = qkv_w + (size_t)D * D, k->v_w = qkv_w + (size_t)2 * D * D;
        if (qkv_b) k->q_b = qkv_b, k->k_b = qkv_b + D, k->v_b = qkv_b + 2 * D;
        wb_linear(b, &k->proj_w, &k->proj_b, D, D, "attn.proj");
        k->ls1 = wb_get(b, SHAPE(D), "ls1.gamma");
        wb_norm(b, &k->norm2_w, &k->norm2_b, D, "norm2");
        if (a->swiglu) {
            const float *w12 = wb_get(b, SHAPE(2 * H, D), "mlp.w12.weight");
            const float *b12 = wb_get(b, SHAPE(2 * H), "mlp.w12.bias");
            if (w12) k->fc1_w = w12, k->fc1g_w = w12 + (size_t)H * D;
            if (b12) k->fc1_b = b12, k->fc1g_b = b12 + H;
            wb_linear(b, &k->fc2_w, &k->fc2_b, H, D, "mlp.w3");
        } else {
            wb_linear(b, &k->fc1_w, &k->fc1_b, D, H, "mlp.fc1");
            wb_linear(b, &k->fc2_w, &k->fc2_b, H, D, "mlp.fc2");
        }
        k->ls2 = wb_get(b, SHAPE(D), "ls2.gamma");
        wb_pop(b);
    }
    wb_norm(b, &v->norm_w, &v->norm_b, D, "norm");
    return b->e->code;
}

void vit_free(vit *v) {
    free(v->blocks);
    v->blocks = NULL;
}

void vit_pos_embed(const nn_ctx *ctx, const vit *v, int h, int w, float *pe) {
    int D = v->a.dim, M = v->a.grid;
    copy_f32(ctx, pe, v->pos_embed, D);   // the cls row, unchanged
    if (h * w == M * M && h == w) {
        copy_f32(ctx, pe + D, v->pos_embed + D, (int64_t)M * M * D);
        return;
    }
    // The stored grid (M, M, D) is already channels-last, as the tokens are.
    resize_bicubic_cl(ctx, v->pos_embed + D, M, M, D, pe + D, h, w, (h + 0.1) / M, (w + 0.1) / M);
}

// A token list (L, D) as the output `name` with shape (1, L, D), when `want` asks for it.
static int emit_tokens(tensor_list *out, const char *want, const char *name, const float *x, int L, int D,
                       err *e) {
    if (!model_wants(want, name)) return OODSEG_OK;
    int64_t s[3] = {1, L, D};
    return tl_add_copy(out, name, 3, s, x, e) ? OODSEG_OK : e->code;
}

// Scratch of one forward, all (N, D) but hid (N, hidden) and gate (SwiGLU's x2 half).
typedef struct vit_bufs { float *x, *n, *q, *k, *v, *a, *hid, *gate; } vit_bufs;

// One pre-norm block on x (A.2 step 4): x += ls1 * proj(attn(norm1(x))), x += ls2 * ffn(norm2(x)).
static int vit_block_forward(const nn_ctx *ctx, const vit *v, int i, vit_bufs *b, int N, const char *want,
                             tensor_list *out, err *e) {
    const vit_block *k = &v->blocks[i];
    int D = v->a.dim, hd = D / v->a.heads, H = v->a.hidden;
    char name[64];
    PROF_BEGIN(ctx, PROF_NORM);
    layernorm_cl(ctx, b->x, N, D, k->norm1_w, k->norm1_b, 1e-6f, b->n);
    snprintf(name, sizeof name, "backbone.b%d.norm1", i);
    if (emit_tokens(out, want, name, b->n, N, D, e)) return e->code;
    PROF_NEXT(ctx, PROF_PROJ);
    linear_forward(ctx, b->n, N, D, k->q_w, k->q_b, D, b->q);
    linear_forward(ctx, b->n, N, D, k->k_w, k->k_b, D, b->k);
    linear_forward(ctx, b->n, N, D, k->v_w, k->v_b, D, b->v);
    PROF_NEXT(ctx, PROF_ATTENTION);
    if (attention_forward(ctx, b->q, b->k, b->v, N, N, v->a.heads, hd, (float)(1.0 / sqrt((double)hd)), b->a, e))
        return e->code;
    PROF_NEXT(ctx, PROF_PROJ);
    linear_forward(ctx, b->a, N, D, k->proj_w, k->proj_b, D, b->n);
    snprintf(name, sizeof name, "backbone.b%d.attn", i);
    if (emit_tokens(out, want, name, b->n, N, D, e)) return e->code;
    PROF_NEXT(ctx, PROF_NORM);
    add_scaled_cl(ctx, b->x, b->n, k->ls1, N, D);
    snprintf(name, sizeof name, "backbone.b%d.res1", i);
    if (emit_tokens(out, want, name, b->x, N, D, e)) return e->code;
    layernorm_cl(ctx, b->x, N, D, k->norm2_w, k->norm2_b, 1e-6f, b->n);
    PROF_NEXT(ctx, PROF_MLP);
    if (v->a.swiglu) {
        linear_forward(ctx, b->n, N, D, k->fc1_w, k->fc1_b, H, b->hid);
        linear_forward(ctx, b->n, N, D, k->fc1g_w, k->fc1g_b, H, b->gate);
        silu_mul_inplace(ctx, b->hid, b->gate, (int64_t)N * H);
    } else {
        linear_gelu_forward(ctx, b->n, N, D, k->fc1_w, k->fc1_b, H, b->hid);
    }
    linear_forward(ctx, b->hid, N, H, k->fc2_w, k->fc2_b, D, b->n);
    snprintf(name, sizeof name, "backbone.b%d.mlp", i);
    if (emit_tokens(out, want, name, b->n, N, D, e)) return e->code;
    PROF_NEXT(ctx, PROF_NORM);
    add_scaled_cl(ctx, b->x, b->n, k->ls2, N, D);
    PROF_END(ctx);
    snprintf(name, sizeof name, "backbone.block%d", i);
    return emit_tokens(out, want, name, b->x, N, D, e);
}

int vit_forward(const nn_ctx *ctx, nn_arena *ar, const vit *v, const float *x, int H, int W, int n_taps,
                const int *tap_blocks, float **feats, const char *want, tensor_list *out, err *e) {
    int D = v->a.dim, h = H / VIT_PATCH, w = W / VIT_PATCH, N = 1 + h * w, Hd = v->a.hidden;
    for (int t = 0; t < n_taps; t++) feats[t] = NULL;
    if (H % VIT_PATCH || W % VIT_PATCH || h < 1 || w < 1)
        return err_set(e, OODSEG_E_ARG, "ViT: input %dx%d is not a positive multiple of %d (CenterPadding comes first)",
                       W, H, VIT_PATCH);
    vit_bufs b = {0};
    float *pe = NULL;
    int64_t nd = (int64_t)N * D;
    if (!(b.x = arena_floats(ar, nd, "ViT tokens", e)) || !(b.n = arena_floats(ar, nd, "ViT normed tokens", e)) ||
        !(b.q = arena_floats(ar, nd, "ViT queries", e)) || !(b.k = arena_floats(ar, nd, "ViT keys", e)) ||
        !(b.v = arena_floats(ar, nd, "ViT values", e)) || !(b.a = arena_floats(ar, nd, "ViT attention", e)) ||
        !(b.hid = arena_floats(ar, (int64_t)N * Hd, "ViT FFN hidden", e)) ||
        (v->a.swiglu && !(b.gate = arena_floats(ar, (int64_t)N * Hd, "ViT SwiGLU gate", e))))
        goto done;
    // Patches (D, h, w) -> tokens 1..hw row-major; the cls token in row 0 (A.2 steps 1-2).
    PROF_BEGIN(ctx, PROF_STEM);
    int rc = conv2d_forward(ctx, &v->patch, x, H, W, b.a, e);
    PROF_END(ctx);
    if (rc) goto done;
    PROF_BEGIN(ctx, PROF_STEM);   // the tokens and the position embedding
    nchw_to_nhwc(ctx, b.a, D, h, w, b.x + D);
    if (emit_tokens(out, want, "backbone.patch_embed", b.x + D, h * w, D, e)) goto done;
    copy_f32(ctx, b.x, v->cls_token, D);
    if (!(pe = arena_floats(ar, nd, "ViT position embedding", e))) goto done;
    vit_pos_embed(ctx, v, h, w, pe);
    if (emit_tokens(out, want, "backbone.pos_embed", pe, N, D, e)) goto done;
    add_inplace(ctx, b.x, pe, nd);
    arena_release(ar, pe);
    pe = NULL;
    PROF_END(ctx);
    if (emit_tokens(out, want, "backbone.tokens_in", b.x, N, D, e)) goto done;
    int last = n_taps ? tap_blocks[n_taps - 1] : v->a.depth - 1;
    for (int i = 0, t = 0; i <= last; i++) {
        if (vit_block_forward(ctx, v, i, &b, N, want, out, e)) goto done;
        if (t < n_taps && tap_blocks[t] == i) {
            // A tap: the final norm of the block's output, the cls token dropped, (D, h, w) (A.2 step 5).
            PROF_BEGIN(ctx, PROF_NORM);
            layernorm_cl(ctx, b.x, N, D, v->norm_w, v->norm_b, 1e-6f, b.n);
            PROF_END(ctx);
            if (!(feats[t] = arena_floats(ar, (int64_t)D * h * w, "ViT feature tap", e))) goto done;
            nhwc_to_nchw(ctx, b.n + D, h, w, D, feats[t]);
            t++;
        }
    }
done:
    arena_release(ar, pe);
    arena_release(ar, b.gate); arena_release(ar, b.hid); arena_release(ar, b.a); arena_release(ar, b.v);
    arena_release(ar, b.k); arena_release(ar, b.q); arena_release(ar, b.n); arena_release(ar, b.x);
    if (e->code)
        for (int t = 0; t < n_taps; t++) { arena_release(ar, feats[t]); feats[t] = NULL; }
    return e->code;
}
