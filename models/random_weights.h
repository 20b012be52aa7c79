// Models with random weights, by architecture name ("internimage-l-ade20k", "espnetv2-cityscapes",
// ...): `oodseg bench` times a network before its checkpoint (up to a gigabyte) is downloaded, and
// the benches time sizes whose checkpoints are not at hand. The key list is the architecture's own:
// its binder, run from the released config with make_keys set (models/weights.h), names every key
// with its shape; random_weights_fill then gives each one values of a sensible scale, and the model
// is built from that checkpoint exactly as from a file.
#ifndef OODSEG_MODELS_RANDOM_WEIGHTS_H
#define OODSEG_MODELS_RANDOM_WEIGHTS_H

#include "model.h"

// The names random_model_open takes, as one line for messages and help.
extern const char random_model_names[];

// 1 when `arch` is one of random_model_names (a name, not a file).
int random_model_known(const char *arch);
// The checkpoint of architecture `arch` with random weights (path "<arch> (random weights)");
// NULL with OODSEG_E_ARG listing the valid names for an unknown one.
ckpt *random_ckpt(const char *arch, err *e);
// A model of architecture `arch` with random weights (the same values in every run), on a copy of
// *ctx (NULL: every core). OODSEG_E_ARG listing the valid names for an unknown one.
int random_model_open(const char *arch, const nn_ctx *ctx, const model_options *opt, model **out, err *e);

// A new checkpoint with every key of `names` (shapes; data or not) filled with random values,
// uniform around a value chosen by the key's kind: LN/BN scales near 1, positive running variances,
// layer-scale gammas near 0.5, fan-in scaled conv/linear weights, small biases; integer keys
// (num_batches_tracked) a constant. Activations then stay finite and normal through any depth.
ckpt *random_weights_fill(const ckpt *names, err *e);

// The key makers of the architecture files: every key of a released config, names and shapes only,
// added to ck.
int espnet_keys(ckpt *ck, int p, int q, int classes, err *e);          // models/espnet.c
int espnetv2_keys(ckpt *ck, double s, err *e);                          // models/espnetv2.c
int segformer_keys(ckpt *ck, const char *size, int num_classes, err *e);   // models/segformer.c

#endif
