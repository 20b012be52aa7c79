// The ops of sliding-window inference (models/slide.c, docs/segformer.md "Slide inference"):
// a window cut out of a map, a window's result summed into the whole map, the per-pixel window
// counts, and the division by them. All NCHW, batch 1.
#ifndef OODSEG_NN_WINDOW_H
#define OODSEG_NN_WINDOW_H

#include <stdint.h>
#include "ctx.h"

// y (c, oh, ow) = x[:, y0:y0+oh, x0:x0+ow] of x (c, h, w); the window lies inside x.
void window_crop(const nn_ctx *ctx, const float *x, int c, int h, int w, int y0, int x0, float *y, int oh,
                 int ow);
// y[:, y0:y0+xh, x0:x0+xw] += x (c, xh, xw), y (c, h, w); the window lies inside y. One addition
// per value, so windows summed in a fixed order give the same bits for any thread count.
void window_add(const nn_ctx *ctx, float *y, int c, int h, int w, int y0, int x0, const float *x, int xh,
                int xw);
// count[y0:y0+wh, x0:x0+ww] += 1, count (h, w).
void window_count(float *count, int h, int w, int y0, int x0, int wh, int ww);
// y[ch, p] /= count[p] for y (c, hw): float32 division, as mmseg's preds / count_mat.
void divide_by_count(const nn_ctx *ctx, float *y, int c, int64_t hw, const float *count);

#endif
