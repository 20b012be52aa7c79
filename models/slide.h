// Sliding-window inference as a mode of the engine, for every model (docs/segformer.md "Slide
// inference"; mmseg's slide_inference). The input is covered by a grid of windows; each window runs
// through the model's own forward; every 4-D output (the logits and the feature taps) is summed
// into a map of the whole input and divided by the number of windows that covered each cell.
#ifndef OODSEG_MODELS_SLIDE_H
#define OODSEG_MODELS_SLIDE_H

#include "model.h"

typedef struct slide_window { int y1, y2, x1, x2; } slide_window;   // rows y1..y2-1, columns x1..x2-1

// mmseg's window grid for an h x w input: h_grids = max(h - crop_h + stride_h - 1, 0) / stride_h + 1
// (w_grids likewise), row-major; y1 = i*stride_h, y2 = min(y1 + crop_h, h), y1 = max(y2 - crop_h, 0)
// (the last windows are shifted back inside the input, never padded). Returns the number of windows
// and writes the first `max` of them to win (win may be NULL).
int slide_windows(int h, int w, const infer_cfg *c, slide_window *win, int max);

// Applies --mode/--crop/--stride of opt (each NULL: keep) to c, which holds the model's official
// default; checks that a slide mode has a crop and a stride no larger than the crop. arch names the
// model in messages.
int slide_configure(infer_cfg *c, const model_options *opt, const char *arch, err *e);

// The slide forward of m over input (1, 3, h, w), same contract as m->forward. A 4-D output of
// size (th, tw) from a window of (wh, ww) pixels is placed at the nearest cell of a map of
// ceil(h*th/wh) x ceil(w*tw/ww) cells (exactly at y1, x1 for outputs at input resolution, such as
// the logits); windows that touch the bottom or right edge are placed flush with it. Other outputs
// (token lists) are dropped. "slide.count" (1, 1, h, w), the windows covering each pixel, is added
// when `want` asks for it.
int slide_forward(model *m, const float *input, int h, int w, const char *want, tensor_list *out, err *e);

#endif
