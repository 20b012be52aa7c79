// Multi-scale + flip test-time augmentation (mmseg's MultiScaleFlipAug with aug_test), as the
// DINOv2 'ms' heads' configs use it (docs/dinov2-segformer.md A.6): off unless asked for, since it
// multiplies the cost by the number of augmentations.
#ifndef OODSEG_MODELS_TTA_H
#define OODSEG_MODELS_TTA_H

#include "model.h"

// One forward of the network input, m->forward's contract (NULL: m->forward; the engine's
// inference-mode dispatch or slide forward where the model's config slides).
typedef int (*model_forward_fn)(model *m, const float *input, int h, int w, const char *want, tensor_list *out,
                                err *e);

// For each ratio r in order, without then (flip) with a horizontal flip: img through the model's
// keep-ratio recipe with the scale multiplied by r (int(long*r), int(short*r)), flipped after the
// resize, forward, logits resized bilinearly to img's size, softmax over classes, flipped back,
// added; *probs (num_outputs, img->h, img->w), malloc'd, is the sum divided by the number of
// augmentations: the mean of probabilities, not of logits. The recipe must be SIZE_KEEP_RATIO.
int model_tta_probs(model *m, const image *img, const float *ratios, int n_ratios, int flip, model_forward_fn fwd,
                    float **probs, err *e);

#endif
