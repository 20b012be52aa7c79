// An optional profiler of where a forward's time goes, by layer family (`oodseg bench`). A context
// carries a pointer to one (nn_ctx.prof, NULL by default: then every bracket below is one branch).
// The model files bracket groups of ops with PROF_BEGIN / PROF_NEXT / PROF_END on the calling
// thread, outside parallel regions. Brackets nest: time is charged to the innermost open family
// (exclusive time), so the families' seconds add up to the time spent inside the outermost brackets
// and never count a second twice. The ops count their nominal FLOPs the same way (PROF_FLOP):
// one multiply-add is 2, a convolution counts as the direct one even where Winograd runs it (so
// GFLOP/s can pass the GEMM peak), and elementwise ops, norms and resizes count nothing. Each op
// counts itself once, on the calling thread, at the public entry that runs it.
#ifndef OODSEG_NN_PROF_H
#define OODSEG_NN_PROF_H

#include "ctx.h"

typedef enum nn_prof_family {
    PROF_STEM,         // the first convs (InternImage patch_embed, ESPNet level1, ViT patch embedding)
    PROF_DCN_GATHER,   // DCNv3's bilinear sampling (dcnv3_core)
    PROF_DCN_DW,       // DCNv3's depthwise 3x3 branch: layout, dw conv, LN, GELU
    PROF_PROJ,         // linear projections: DCNv3 input/output/offset/mask, attention q/k/v/out
    PROF_ATTENTION,    // the attention core (softmax(QK^T)V), SegFormer's spatial reduction
    PROF_MLP,          // the feed-forward blocks
    PROF_NORM,         // layer/batch norms and the residual adds next to them
    PROF_DOWNSAMPLE,   // stage transitions: downsampling convs, patch merging
    PROF_CONV_BLOCK,   // CNN encoder blocks (ESP, EESP, their downsamplers)
    PROF_PPM,          // pyramid pooling (UperNet PPM + bottleneck, ESPNetv2's pyramid pools)
    PROF_FPN,          // FPN laterals, convs and the fused bottleneck; decoder convs of the heads
    PROF_DECODER,      // CNN decoders (ESPNet, ESPNetv2 merges and upsampling)
    PROF_HEAD,         // the classifier (conv_seg) and the head's norms
    PROF_RESIZE,       // bilinear resizes and layout copies between the stages
    PROF_SLIDE,        // slide inference: cropping the windows, stitching and averaging their outputs
    PROF_OOD,          // the OoD method(s), the class map and the score maps (api/pipeline.c)
    PROF_FAMILIES
} nn_prof_family;

#define PROF_STACK 8

typedef struct nn_prof {
    double seconds[PROF_FAMILIES];   // exclusive time per family, summed over the brackets
    long calls[PROF_FAMILIES];       // brackets opened per family
    int depth;                       // open brackets (deeper than PROF_STACK: counted, not timed)
    int stack[PROF_STACK];
    double since;                    // when the innermost open bracket last started being charged
    double flop[PROF_FAMILIES];      // nominal FLOPs of the ops run while the family was innermost
    double flop_outside;             // FLOPs of ops run outside every bracket
} nn_prof;

// Zero every count and close every bracket (a failed forward may have left some open).
void nn_prof_clear(nn_prof *p);
void nn_prof_begin(nn_prof *p, nn_prof_family f);
// Closes the innermost bracket and opens f in its place.
void nn_prof_next(nn_prof *p, nn_prof_family f);
void nn_prof_end(nn_prof *p);
// Adds flop to the innermost open family (to flop_outside when none is open).
void nn_prof_flop(nn_prof *p, double flop);
// "stem", "dcn gather", ... (PROF_FAMILIES: "?").
const char *nn_prof_name(nn_prof_family f);

#define PROF_BEGIN(ctx, fam) do { if ((ctx)->prof) nn_prof_begin((ctx)->prof, fam); } while (0)
#define PROF_NEXT(ctx, fam) do { if ((ctx)->prof) nn_prof_next((ctx)->prof, fam); } while (0)
#define PROF_END(ctx) do { if ((ctx)->prof) nn_prof_end((ctx)->prof); } while (0)
#define PROF_FLOP(ctx, flop) do { if ((ctx)->prof) nn_prof_flop((ctx)->prof, (double)(flop)); } while (0)

#endif
