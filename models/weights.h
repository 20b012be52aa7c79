// The one weight binder of every architecture: checkpoint keys to the model's weight pointers, each
// checked against the shape the architecture needs (docs/pytorch-checkpoints.md for the key names).
//
// A binder carries a key prefix, kept as a small stack (push a module's name, bind its parts, pop),
// and the first error: after a failure every later call does nothing and returns NULL, so a model
// binds all its weights and looks at e->code once. The messages are ckpt_get's: the key, both
// shapes and the file.
//
// Weights point into the checkpoint (zero-copy); only BN-folded convs own theirs. A names-and-shapes
// checkpoint (ckpt_add without data) binds with NULL pointers and allocates nothing, since
// recognition and key checking never read data (a real-size InternImage would be a gigabyte of
// zeros). The binder counts such keys in `no_data`, so that a model's create can refuse to run one.
#ifndef OODSEG_MODELS_WEIGHTS_H
#define OODSEG_MODELS_WEIGHTS_H

#include <stdint.h>
#include "../io/checkpoint.h"
#include "../nn/nn.h"

#define WB_DEPTH 8   // prefix levels: base, block, sub-module, ...

typedef struct wbind {
    ckpt *ck;
    err *e;                  // the first failure; later calls leave it as it is
    char prefix[160];        // prepended to every key
    int depth;               // pushed prefix levels
    int mark[WB_DEPTH];      // prefix length before each push
    int no_data;             // keys bound from a names-and-shapes checkpoint (NULL data)
    int make_keys;           // 1: a key that is missing is added to ck (name and shape, no data) and
                             // bound as names-only: a model's key list made from its config alone
                             // (models/random_weights.c)
} wbind;

#define WB_NARGS(...) ((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
// A shape as the (ndim, dims) argument pair: wb_get(b, SHAPE(C, 4 * C), "mlp.fc2.weight").
#define SHAPE(...) WB_NARGS(__VA_ARGS__), (const int64_t[]){__VA_ARGS__}

// Starts binding from ck with an empty prefix; clears e.
void wb_init(wbind *b, ckpt *ck, err *e);
// Appends printf(fmt, ...) to the prefix ("encoder.", "level2.%d."); wb_pop takes it off again.
void wb_push(wbind *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void wb_pop(wbind *b);

// The F32 data of prefix + printf(fmt, ...) with exactly this shape, marked used. NULL after an
// earlier failure, for a names-and-shapes entry, or when it fails here (missing key, other shape,
// integer tensor: OODSEG_E_MODEL naming the key and both shapes).
const float *wb_get(wbind *b, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

// The module `name` (printf-style, under the prefix) of each kind below. Shapes are PyTorch's.
//
// Conv2d, square kernel k, "same" padding dilation*(k-1)/2: name.weight (c_out, c_in/groups, k, k),
// no bias; wb_conv_bias adds name.bias (c_out).
void wb_conv(wbind *b, conv2d *cv, int c_in, int c_out, int k, int stride, int dilation, int groups,
             const char *name, ...) __attribute__((format(printf, 9, 10)));
void wb_conv_bias(wbind *b, conv2d *cv, const char *name, ...) __attribute__((format(printf, 3, 4)));

// An inference BatchNorm: name.weight, .bias, .running_mean, .running_var, (c) each.
typedef struct bn_params {
    const float *gamma, *beta, *mean, *var;
} bn_params;
void wb_bn(wbind *b, bn_params *bn, int c, const char *name, ...) __attribute__((format(printf, 4, 5)));
// Folds bn into cv (owned copies, see conv2d_fold_bn), then gives the checkpoint's conv and BN
// tensors back to ck (ckpt_release; ck may be NULL). Does nothing for an unbound or names-only bn.
int bn_fold(ckpt *ck, conv2d *cv, const bn_params *bn, float eps, err *e);
// wb_bn of the BatchNorm `name` that follows cv, folded into cv at once.
void wb_conv_bn(wbind *b, conv2d *cv, float eps, const char *name, ...) __attribute__((format(printf, 4, 5)));

// Linear: name.weight (c_out, c_in) and name.bias (c_out).
void wb_linear(wbind *b, const float **w, const float **bias, int c_in, int c_out, const char *name, ...)
    __attribute__((format(printf, 6, 7)));
// LayerNorm (or any per-channel affine): name.weight and name.bias, (c) each.
void wb_norm(wbind *b, const float **w, const float **bias, int c, const char *name, ...)
    __attribute__((format(printf, 5, 6)));
// PReLU with one slope per channel: name.weight (c).
const float *wb_prelu(wbind *b, int c, const char *name, ...) __attribute__((format(printf, 3, 4)));

// For recognition, before binding: the dimensions of the key printf(fmt, ...) into shape (up to
// 8), without marking it used. Returns ndim, -1 for a scalar, 0 when the key is absent.
int wb_shape(const ckpt *ck, int64_t shape[8], const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
