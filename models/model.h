// One model interface for every architecture (InternImage+UperNet, ESPNet, ESPNetv2, ...).
// Recognising the architecture from a checkpoint's keys and shapes happens in one place,
// models/registry.c; each architecture file offers a detect and a create function.
//
// The journey: image file -> io/image -> model_preprocess (the model's own recipe) -> input tensor
// (1, 3, H, W) -> model->forward -> tensor_list with "logits" and the requested feature taps.
#ifndef OODSEG_MODELS_MODEL_H
#define OODSEG_MODELS_MODEL_H

#include <stdint.h>
#include "../core/err.h"
#include "../nn/tensor.h"
#include "../nn/ctx.h"
#include "../nn/arena.h"
#include "../io/checkpoint.h"
#include "../io/image.h"

// ---- preprocessing recipe ------------------------------------------------------------------
typedef enum { PRE_RESIZE_THEN_NORMALISE, PRE_NORMALISE_THEN_RESIZE } pre_order;
typedef enum {
    INTERP_CV_LINEAR_U8,    // cv2.resize INTER_LINEAR on the uint8 image (mmcv imresize)
    INTERP_CV_LINEAR_F32,   // cv2.resize INTER_LINEAR on float32 data (ESPNet: after normalising)
    INTERP_PIL_BILINEAR     // PIL Image.resize BILINEAR on the 8-bit image (antialiased)
} pre_interp;
typedef enum {
    SIZE_FIXED,             // resize to (size_w, size_h) (ESPNet, ESPNetv2); skipped if equal
    SIZE_KEEP_RATIO,        // mmseg keep_ratio: f = min(long/max(w,h), short/min(w,h)),
                            // new = (int(w*f+0.5), int(h*f+0.5)); then round up to size_divisor
    SIZE_NATIVE             // no resize
} pre_size_rule;

typedef struct preprocess {
    int bgr;                // 1: the network input channels are B, G, R
    float mean[3], std[3];  // per network input channel, on the 0..255 scale
    float scale_after;      // multiplied after resize (ESPNet: 1/255); 1 otherwise
    pre_order order;
    pre_interp interp;
    pre_size_rule size_rule;
    int size_w, size_h;     // SIZE_FIXED: target; SIZE_KEEP_RATIO: (long side, short side) scale
    int size_divisor;       // SIZE_KEEP_RATIO: round each side up to a multiple (ADE20K: 32), 0 = none
    int h_mod, w_mod;       // input constraint: side % mod must be 0 or mod-1 (ESPNet 8, ESPNetv2 16); 0 = any
    int mod_need_zero;      // 1: side % mod must be 0 (InternImage needs nothing; reserved)
    // Exactness (a zero-initialised recipe keeps the plain meaning above):
    float div_after;        // > 0: divide by it after the resize instead of multiplying by
                            // scale_after (ESPNet: 255, numpy's float32 `img /= 255`)
    int unit_range;         // 1: torchvision to_tensor + normalize: x/255 first (float32), then
                            // (x - mean)/std with mean/std on the 0..1 scale (ESPNetv2:
                            // mean {0.485, 0.456, 0.406}, std {0.229, 0.224, 0.225}). This is
                            // not the same float as (x - 255*mean)/(255*std), hence the flag.
} preprocess;

// Computes the network input size for an image of w x h under recipe p (and an optional
// "native"/"WxH" override); checks the model's size constraint with a clear error.
int preprocess_target_size(const preprocess *p, int w, int h, const char *size_override,
                           int *out_w, int *out_h, err *e);
// RGB image -> (1, 3, oh, ow) float input, exactly as the reference pipeline. `input` must hold
// 3*oh*ow floats. Per network channel k (source channel 2-k when bgr):
//   resize first:    v = resize(pixels) (uint8: cv2 or PIL), then (v - mean)/std, then the
//                    after-scale (unit_range: (v/255 - mean)/std)
//   normalise first: (pixel - mean)/std as float32 HWC, cv2 float resize, then the after-scale.
// SIZE_KEEP_RATIO with a size_divisor resizes twice, as mmseg does (keep-ratio size, then the
// multiple), when (ow, oh) is the recipe's own target; any other (ow, oh) is one resize.

int preprocess_image(const nn_ctx *ctx, const preprocess *p, const image *img, int ow, int oh,
                     float *input, err *e);

// ---- description ---------------------------------------------------------------------------
#define MODEL_MAX_TAPS 32

// How a forward pass covers the network input (docs/segformer.md "Slide inference"): the whole
// input at once, or mmseg's slide_inference, overlapping crop_h x crop_w windows stride_h, stride_w
// apart whose outputs are summed and divided by the number of windows covering each pixel.
typedef enum { INFER_WHOLE = 0, INFER_SLIDE = 1 } infer_mode;
typedef struct infer_cfg {
    infer_mode mode;
    int crop_h, crop_w;      // INFER_SLIDE: the window (mmseg crop_size, (h, w))
    int stride_h, stride_w;  // INFER_SLIDE: the step between windows (mmseg stride)
} infer_cfg;

typedef struct tap_info {
    char name[48];          // as `forward --save` writes it, e.g. "backbone.out3", "enc_l3_out_s8"
    int stride;             // relative to the network input
    int channels;
} tap_info;

typedef struct model_desc {
    char arch[48];          // "internimage-t+upernet", "espnet-p2-q8", "espnetv2-s2.0"
    char dataset[16];       // "cityscapes", "ade20k", "camvid"
    char title[256];        // "InternImage-T [flags] + UperNet, Cityscapes"
    char source_format[16]; // from the checkpoint
    char source_dtype[8];
    int64_t num_params;
    int num_outputs;        // logit channels
    int num_id;             // in-distribution channels (indices in id_channels)
    int id_channels[256];
    const char *const *class_names;     // num_outputs names
    const uint8_t (*palette)[3];        // num_outputs colours
    preprocess pre;
    int num_taps;
    tap_info taps[MODEL_MAX_TAPS];       // every feature tap the model can return
    char default_taps[128];              // comma list the K-Means method clusters by default
    int logits_stride;                   // 1 when "logits" is at input size
    infer_cfg infer;                     // whole (zero) or slide: the official config's test_cfg,
                                         // or what --mode/--crop/--stride set
} model_desc;

typedef struct model_options {
    const char *size;        // NULL, "native" or "WxH"
    const char *id_channels; // NULL or "0-18" / "0,1,5"
    double offset_scale;     // 0: recognised default
    const char *mode;        // NULL: the model's official test mode; "whole" or "slide"
    const char *crop;        // NULL or "HxW" (or "S" for S x S): the slide window
    const char *stride;      // NULL or "HxW" (or "S"): the step between slide windows
    const char *backbone;    // NULL, or the backbone file of a two-file model (DINOv2: the head file
                             // is the model, dinov2_<arch>_pretrain.pth the backbone)
    uint64_t max_memory;     // bytes one run may use (--max-memory); 0: the default, core/memlimit.h
} model_options;

typedef struct model model;
struct model {
    model_desc desc;
    nn_ctx ctx;              // a copy of the context the model was opened with; forward runs on it
    nn_arena *arena;         // every activation of a forward comes from here (nn/arena.h); made by
                             // create on ctx.device, reset and ended by each forward, freed by destroy
    void *impl;
    // input: (1, 3, h, w). Writes "logits" (num_outputs, at the model's output resolution: input
    // size for all current models) and each tap named in `want` (comma list; NULL or "" = none;
    // "*" = every named tensor the model can produce, including the golden intermediates).
    // Only what is asked for is kept; every other activation goes back to the arena as soon as it
    // is dead. The tensors in `out` are ordinary malloc'd memory owned by the list: they outlive
    // the model's next forward and the model itself.
    int (*forward)(model *m, const float *input, int h, int w, const char *want,
                   tensor_list *out, err *e);
    void (*destroy)(model *m);
    // The run's memory limit (model_options.max_memory resolved at open), which model_forward
    // checks before every forward pass.
    uint64_t max_memory;
    // The activation bytes one m->forward on a (1, 3, h, w) input takes from the arena (its live
    // peak), estimated from the configuration alone, before any forward has run: the
    // architecture's *_estimate below, set by models/registry.c.
    uint64_t (*estimate)(const model *m, int h, int w);
    // 1: forward only reads impl (the fp32 weights), so model_twin can give the model twins whose
    // forwards run at the same time as its own (set by the architectures that were checked).
    int shareable;
    const model *twin_of;    // a twin: the model whose weights it shares, else NULL
};

// registry.c: opens the checkpoint, recognises the architecture, builds the model, which keeps a
// copy of *ctx (NULL: a default context, every core) for all its forwards.
int model_open(const char *path, const nn_ctx *ctx, const model_options *opt, model **out, err *e);
// Takes ownership of ck.
int model_from_ckpt(ckpt *ck, const nn_ctx *ctx, const model_options *opt, model **out, err *e);
void model_close(model *m);
// A second handle on m's weights with its own arena and a context of `threads` threads, for a
// host thread that runs forwards while other threads run m's (or other twins'): the same outputs,
// bit for bit, since results do not depend on the thread count. Only for a shareable fp32 model
// (OODSEG_E_ARG otherwise, saying why). The twin starts with m's arena plan when m has one
// (model_twin_adopt_plan). Never make a twin while m runs a forward. model_close frees the twin's
// own parts only; close every twin before m.
int model_twin(const model *m, int threads, model **out, err *e);
// A twin t takes the arena plan of its model (arena_adopt_plan): its next forward of the size the
// model last ran runs from a slab. 1 when adopted; 0 when the model has no plan (or t is NULL or
// not a twin). Only while neither runs a forward.
int model_twin_adopt_plan(model *t);
// The model's forward in its inference mode (desc.infer): m->forward on the whole input, or the
// slide windows stitched (models/slide.c). Same contract as m->forward.
int model_forward(model *m, const float *input, int h, int w, const char *want, tensor_list *out, err *e);
// The model's own preprocessing of img (size: NULL, "native" or "WxH") then model_forward: out gets
// "logits" and the taps named in `want`. The input tensor is freed before returning.
int model_forward_image(model *m, const image *img, const char *size, const char *want,
                        tensor_list *out, err *e);
// What a model_forward of m on a (1, 3, h, w) input needs in all: the weights, the activations
// (m->estimate, per window in slide mode), the input and the outputs at input size (the logits and
// the slide accumulators). *activations (may be NULL) gets the activation part.
uint64_t model_memory_needed(const model *m, int h, int w, uint64_t *activations);
// OODSEG_OK when that fits m->max_memory (0: no limit); otherwise OODSEG_E_NOMEM saying what the forward at
// w x h needs (activations, weights), the limit, and to use a smaller --size or a higher --max-memory.
// model_forward calls it first.
int model_check_memory(const model *m, int h, int w, err *e);
// Parses "0-18" / "0,1,5" into desc->id_channels (checked against num_outputs).
int model_set_id_channels(model_desc *d, const char *spec, err *e);
// True when name is in the comma list `want` (or want is "*").
int model_wants(const char *want, const char *name);
// Appends a copy of x (c, h, w) as the output `name` (shape (1, c, h, w)) when `want` asks for it.
int model_emit(tensor_list *out, const char *want, const char *name, const float *x, int c, int h,
               int w, err *e);
// Hands an arena block that is dead from here on to the output list when `want` asks for `name`
// (detached from the arena, no copy), otherwise releases it to the arena. *buf is NULL afterwards
// either way.
int model_give(nn_arena *a, tensor_list *out, const char *want, const char *name, float **buf, int c,
               int h, int w, err *e);
// The arena of a model being created (on its context's device); destroy frees it with arena_free.
int model_arena_open(model *m, err *e);

// Architecture files. detect: 1 when the key layout is this family. create takes the checkpoint
// (the model keeps it open for zero-copy weights; destroy closes it).
int internimage_upernet_detect(const ckpt *ck);
int internimage_upernet_create(ckpt *ck, const model_options *opt, model **out, err *e);
int espnet_detect(const ckpt *ck);
int espnet_create(ckpt *ck, const model_options *opt, model **out, err *e);
int espnetv2_detect(const ckpt *ck);
int espnetv2_create(ckpt *ck, const model_options *opt, model **out, err *e);
int segformer_detect(const ckpt *ck);   // mmseg naming, and the NVlabs naming it refuses with a message
int segformer_create(ckpt *ck, const model_options *opt, model **out, err *e);
// DINOv2 (models/dinov2.c): ck is a BNHead file (its backbone from opt->backbone) or one file with
// both key sets; a backbone alone is refused with what to pass instead.
int dinov2_detect(const ckpt *ck);
int dinov2_create(ckpt *ck, const model_options *opt, model **out, err *e);
// Activation estimates (model.estimate), one per architecture file, at the end of each file.
// The estimates take the largest of the sets of blocks alive together.
static inline uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }
uint64_t internimage_upernet_estimate(const model *m, int h, int w);
uint64_t espnet_estimate(const model *m, int h, int w);
uint64_t espnetv2_estimate(const model *m, int h, int w);
uint64_t segformer_estimate(const model *m, int h, int w);
uint64_t dinov2_estimate(const model *m, int h, int w);
// Bytes of n floats, and the slack every estimate adds for the arena's 64-byte rounding of each
// block and the few small blocks (pooled vectors, weights of a step) the estimates leave out.
#define EST_F(n) ((uint64_t)(n) * sizeof(float))
#define EST_SLACK ((uint64_t)4 << 10)

// Shared class tables (models/classes.c).
extern const char *const cityscapes_classes[19];
extern const uint8_t cityscapes_palette[19][3];
extern const char *const ade20k_classes[150];
extern const uint8_t ade20k_palette[150][3];
extern const char *const camvid_classes[11];
extern const uint8_t camvid_palette[11][3];
// A Cityscapes head that kept ADE20K's 150 outputs (InternImage's Cityscapes configs): the 19
// trainIds, then 131 untrained channels named "(untrained)" and coloured black.
extern const char *const cityscapes150_classes[150];
extern const uint8_t cityscapes150_palette[150][3];

#endif
