// DINOv2 + BNHead beyond the registry's detect/create (models/model.h): for tests and tools that
// hold the two checkpoints themselves.
#ifndef OODSEG_MODELS_DINOV2_H
#define OODSEG_MODELS_DINOV2_H

#include "model.h"

#define DINO_TAPS 4   // the blocks the heads read: the last four (linear: the last alone)

// Recognises head_ck with bb_ck (NULL: head_ck holds both key sets) and fills d, without reading
// any data (names-and-shapes checkpoints work). Neither checkpoint is closed.
int dinov2_describe(ckpt *head_ck, ckpt *bb_ck, const model_options *opt, model_desc *d, err *e);
// The model from both checkpoints (bb_ck NULL: head_ck holds both); takes ownership of both.
int dinov2_create_pair(ckpt *head_ck, ckpt *bb_ck, const model_options *opt, model **out, err *e);

#endif
