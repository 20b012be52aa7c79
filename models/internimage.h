// InternImage (DCNv3 backbone) + UperNet head, as released by OpenGVLab/InternImage on mmseg 0.27.
// Internal header shared by internimage.c (backbone), upernet.c (decode and auxiliary heads) and
// internimage_upernet.c (recognition, model_desc, forward wiring). The spec is
// docs/internimage-upernet.md; the names below are the checkpoint's own module names.
//
// Weights are bound by models/weights.h: they point into the checkpoint (zero-copy) except the
// BN-folded UperNet convs, which own theirs, and a names-and-shapes checkpoint binds with NULL
// pointers (recognition and key checking never read the data).
#ifndef OODSEG_MODELS_INTERNIMAGE_H
#define OODSEG_MODELS_INTERNIMAGE_H

#include <stdint.h>
#include "model.h"
#include "weights.h"
#include "../nn/nn.h"

// ---- backbone (internimage.c) --------------------------------------------------------------
typedef struct internimage_arch {
    int channels;          // C; stage i has C * 2^i channels
    int depths[4];         // blocks per stage
    int groups[4];         // DCNv3 groups per stage (channels per group is 16 in every release)
    int post_norm;         // 1 for S/B/L/XL: LN after DCN/MLP and no stage norm; 0 for T
    int layer_scale;       // 1 when gamma1/gamma2 exist (all released configs)
    float offset_scale;    // 1.0 T/S/B, 2.0 L/XL (not stored in checkpoints)
    const char *offset_scale_why;   // NULL for a released size's own, else where the value came from
    const char *size;      // "t", "s", "b", "l", "xl", or NULL for a custom size
    const char *nearest;   // the released size a custom size runs as: T (pre-norm), L or XL (post-norm)
} internimage_arch;

// Reads C, depths, groups, post_norm and layer_scale from key names and shapes; the size letter
// when all of them match a released config. offset_scale: `offset_scale` when > 0, else the
// released size's, else the nearest size's (a custom post-norm size gets L/XL's 2.0).
int internimage_recognise(const ckpt *ck, double offset_scale, internimage_arch *a, err *e);
// The released size `size` ("t", "s", "b", "l", "xl") as recognition would find it; OODSEG_E_ARG
// for another name.
int internimage_arch_of(const char *size, internimage_arch *a, err *e);

typedef struct ii_block {           // levels.i.blocks.j (InternImageLayer), C channels, G groups
    const float *gamma1, *gamma2;   // (C) each, NULL without layer scale
    const float *norm1_w, *norm1_b; // (C) LN eps 1e-6; before the DCN (T) or after it (post_norm)
    const float *norm2_w, *norm2_b; // (C)
    // dcn (DCNv3):
    const float *input_proj_w, *input_proj_b;   // (C, C), (C)
    conv2d dw_conv;                             // depthwise (C, 1, 3, 3) + bias (C)
    float *dw_w_cl;                             // (3, 3, C) dw_conv's weight for dwconv3x3_cl, owned
    const float *dw_norm_w, *dw_norm_b;         // (C) dw_conv.1.1, LN
    const float *offset_w, *offset_b;           // (G*18, C), (G*18)
    const float *mask_w, *mask_b;               // (G*9, C), (G*9)
    const float *output_proj_w, *output_proj_b; // (C, C), (C)
    // mlp:
    const float *fc1_w, *fc1_b;     // (4C, C), (4C)
    const float *fc2_w, *fc2_b;     // (C, 4C), (C)
} ii_block;

typedef struct ii_level {
    int channels, groups, depth;
    ii_block *blocks;                   // depth
    const float *norm_w, *norm_b;       // (C) levels.i.norm.0, NULL with post_norm
    conv2d down;                        // (2C, C, 3, 3), stride 2, no bias; c_out 0 on the last level
    const float *down_norm_w, *down_norm_b;  // (2C)
} ii_level;

typedef struct internimage {
    internimage_arch arch;
    conv2d conv1;                       // (C/2, 3, 3, 3) stride 2 + bias (C/2)
    const float *norm1_w, *norm1_b;     // (C/2) patch_embed.norm1.1
    conv2d conv2;                       // (C, C/2, 3, 3) stride 2 + bias (C)
    const float *norm2_w, *norm2_b;     // (C) patch_embed.norm2.1
    ii_level levels[4];
} internimage;

// Binds every backbone.* key of the architecture (shape-checked). Returns w's error code.
int internimage_bind(internimage *net, wbind *w, const internimage_arch *a);
// input: (3, h, w). feats[i]: stage outputs NCHW (C*2^i, fh[i], fw[i]), blocks of A that the
// caller releases (upernet_forward does). Every activation comes from A. Adds the taps "stem.out"
// and "l0.b0.*" that `want` names.
int internimage_forward(const nn_ctx *ctx, nn_arena *A, const internimage *net, const float *input, int h, int w,
                        const char *want, tensor_list *out, float *feats[4], int fh[4], int fw[4], err *e);
void internimage_free(internimage *net);

// ---- UperNet + auxiliary FCN head (upernet.c) ----------------------------------------------
typedef struct conv_module {        // mmcv ConvModule: conv (no bias) -> BN (eps 1e-5) -> ReLU
    conv2d conv;                    // BN folded in by upernet_fold (then conv.bias is owned)
    bn_params bn;                   // (c_out) each
} conv_module;

typedef struct upernet {
    int in_channels[4];             // C, 2C, 4C, 8C
    int channels;                   // 512 in the releases (read from the shapes)
    int num_classes;
    conv_module psp[4];             // psp_modules.k.1: (channels, 8C, 1, 1), pool scales 1, 2, 3, 6
    conv_module bottleneck;         // (channels, 8C + 4*channels, 3, 3)
    conv_module lateral[3];         // lateral_convs.l: (channels, C_l, 1, 1)
    conv_module fpn[3];             // fpn_convs.l: (channels, channels, 3, 3)
    conv_module fpn_bottleneck;     // (channels, 4*channels, 3, 3)
    conv2d conv_seg;                // (num_classes, channels, 1, 1) + bias (num_classes)
    int has_aux;                    // auxiliary_head present (training only; run for "aux.logits")
    int aux_channels;               // 256 in the releases
    int aux_classes;                // its own conv_seg's count (normally num_classes)
    conv_module aux_conv;           // auxiliary_head.convs.0: (aux_channels, 4C, 3, 3)
    conv2d aux_seg;                 // (aux_classes, aux_channels, 1, 1) + bias
} upernet;

// Binds decode_head.* (and auxiliary_head.* when present); channels and classes from the shapes.
// Returns w's error code.
int upernet_bind(upernet *u, wbind *w, const int in_channels[4]);
int upernet_fold(upernet *u, ckpt *ck, err *e);   // folds every BN into its conv (needs the data),
                                                 // giving ck's copies back (bn_fold)
// feats: the four backbone outputs, blocks of A; each is released (and set NULL) as soon as it is
// dead, also on failure. Every activation comes from A. Writes "logits" (num_classes, h, w) and the
// "decode.*" / "aux.logits" taps `want` names.
int upernet_forward(const nn_ctx *ctx, nn_arena *A, const upernet *u, float *feats[4], const int fh[4],
                    const int fw[4], int h, int w, const char *want, tensor_list *out, err *e);
void upernet_free(upernet *u);

// ---- the whole model (internimage_upernet.c) -----------------------------------------------
typedef struct ii_model {   // model->impl
    ckpt *ck;               // kept open: the backbone's weights point into it
    internimage net;
    upernet head;
} ii_model;

// Recognises an InternImage + UperNet checkpoint and checks every key and shape (missing, unexpected,
// mis-shaped: OODSEG_E_MODEL) without reading any data; fills d and, when a is not NULL, the backbone
// flags. internimage_upernet_create does the same and then builds the model.
int internimage_upernet_describe(ckpt *ck, const model_options *opt, model_desc *d, internimage_arch *a,
                                 err *e);

// ---- shared helpers ------------------------------------------------------------------------
// Appends an NCHW copy named `name` of a channels-last map (hw pixels x c) as (1, c, h, w).
int ii_tap_cl(const nn_ctx *ctx, tensor_list *out, const char *name, const float *x, int h, int w, int c, err *e);
// Appends a copy of an NCHW map as (1, c, h, w).
int ii_tap(tensor_list *out, const char *name, const float *x, int c, int h, int w, err *e);

#endif
