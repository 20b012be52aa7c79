// SegFormer (Xie et al., NeurIPS 2021) as mmsegmentation builds it: the Mix Transformer backbone
// (MixVisionTransformer, B0-B5) and the all-MLP SegformerHead. docs/segformer.md has the forward
// pass in execution order, the key names of both namings and the test pipelines.
#ifndef OODSEG_MODELS_SEGFORMER_H
#define OODSEG_MODELS_SEGFORMER_H

#include "model.h"

// What the keys and shapes say (nothing here is read from a config).
typedef struct segformer_arch {
    char size[16];       // "b0".."b5", or "" for a custom size
    int dims[4];         // C_i: backbone.layers.i.0.projection.weight [C_i, C_{i-1}, p_i, p_i]
    int depths[4];       // encoder layers per stage (backbone.layers.i.1.j)
    int heads[4];        // C_i / C_0: mmseg's C_i = embed_dims * num_heads[i], and num_heads[0] = 1
    int sr[4];           // spatial reduction: attn.sr.weight [C, C, sr, sr]; 1 without it
    int patch[4];        // patch embedding kernel p_i (7, 3, 3, 3)
    int stride[4];       // its stride: 4 for p 7, 2 for p 3 (the mmseg configs)
    int channels;        // head width: decode_head.conv_seg.weight [num_classes, channels, 1, 1]
    int num_classes;     // 19 Cityscapes, 150 ADE20K
} segformer_arch;

// Recognises the architecture, binds and checks every key (a names-and-shapes checkpoint is
// enough: no data is read) and fills d. arch may be NULL.
int segformer_describe(ckpt *ck, const model_options *opt, model_desc *d, segformer_arch *arch, err *e);

#endif
