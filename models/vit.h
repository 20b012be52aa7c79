// The DINOv2 Vision Transformer backbone (docs/dinov2-segformer.md, part A): recognition from the
// plain state_dict's keys and shapes, binding, and the forward pass up to the final-norm taps
// that the segmentation heads read. models/dinov2.c puts a BNHead on top.
#ifndef OODSEG_MODELS_VIT_H
#define OODSEG_MODELS_VIT_H

#include "model.h"
#include "weights.h"

#define VIT_PATCH 14

typedef struct vit_arch {
    int dim;            // D: the token width
    int depth;          // blocks
    int heads;          // attention heads; head_dim = dim / heads
    int hidden;         // FFN width: 4D (Mlp) or SwiGLU's (int(4D*2/3)+7)//8*8
    int swiglu;         // 1: mlp.w12 / mlp.w3 (ViT-g), 0: mlp.fc1 / mlp.fc2
    int grid;           // M: pos_embed holds 1 + M*M rows (37 for img_size 518)
    const char *size;   // "s", "b", "l", "g", or NULL for a width that is none of the released ones
    const char *heads_why;   // NULL for a released size; else how the head count was chosen
} vit_arch;

typedef struct vit_block {
    const float *norm1_w, *norm1_b;     // (D)
    const float *q_w, *k_w, *v_w;       // (D, D) each: rows 0..D-1, D..2D-1, 2D..3D-1 of attn.qkv.weight
    const float *q_b, *k_b, *v_b;       // (D) each, slices of attn.qkv.bias
    const float *proj_w, *proj_b;       // (D, D), (D)
    const float *ls1, *ls2;             // (D) layer scale
    const float *norm2_w, *norm2_b;
    const float *fc1_w, *fc1_b;         // Mlp: (hidden, D). SwiGLU: the x1 half of mlp.w12 (rows 0..hidden-1)
    const float *fc1g_w, *fc1g_b;       // SwiGLU: the x2 half (rows hidden..2*hidden-1); NULL for Mlp
    const float *fc2_w, *fc2_b;         // (D, hidden): mlp.fc2 or mlp.w3
} vit_block;

typedef struct vit {
    vit_arch a;
    const float *cls_token;   // (D)
    const float *pos_embed;   // (1 + M*M, D)
    conv2d patch;             // patch_embed.proj: (D, 3, 14, 14), stride 14
    vit_block *blocks;        // depth
    const float *norm_w, *norm_b;   // the final norm, applied to every tap
} vit;

// The architecture of the backbone keys in ck (no prefix: dinov2_<arch>_pretrain.pth). OODSEG_E_MODEL
// naming the key when one that decides the architecture is missing or has an unexpected shape.
int vit_recognise(const ckpt *ck, vit_arch *a, err *e);
// Binds every backbone weight (mask_token is training-only and left unbound).
int vit_bind(vit *v, wbind *b, const vit_arch *a);
void vit_free(vit *v);

// The forward pass of x (3, H, W), H and W multiples of 14 (after CenterPadding): tokens, the
// interpolated position embedding, the blocks; each block listed in tap_blocks (n_taps, ascending)
// yields feats[t] (D, H/14, W/14) = final norm of its output, cls token dropped, from the arena.
// Every named intermediate in `want` goes to out under the name prefix + "patch_embed" etc.
int vit_forward(const nn_ctx *ctx, nn_arena *ar, const vit *v, const float *x, int H, int W, int n_taps,
                const int *tap_blocks, float **feats, const char *want, tensor_list *out, err *e);

// The position embedding for an h x w patch grid, (1 + h*w, D) into pe: the stored one when
// h*w == M*M and h == w, else its patch part resized bicubically with the scale factor
// ((h + 0.1)/M, (w + 0.1)/M) (docs/dinov2-segformer.md A.3), the cls row unchanged.
void vit_pos_embed(const nn_ctx *ctx, const vit *v, int h, int w, float *pe);

#endif
