// Small pictures for the HTML report: box-filter downscaling of images and score maps, and a
// JPEG writer (libjpeg-turbo, already linked for reading). Thumbnails are for looking, never for
// measuring: every number comes from the full-size maps.
#ifndef OODSEG_IO_THUMBNAIL_H
#define OODSEG_IO_THUMBNAIL_H

#include <stdint.h>
#include "../core/err.h"
#include "image.h"

// The size of a thumbnail at most max_w wide (never upscaled), keeping the aspect ratio.
void thumb_size(int w, int h, int max_w, int *tw, int *th);
// Each output pixel is the mean of the source pixels its box covers (1 or 3 channels).
int image_downscale(const image *src, int tw, int th, image *out, err *e);
// The same for a float map (w x h -> tw x th, caller frees *out); non-finite values are left out
// of each mean (a box of only non-finite values gives NaN).
int score_downscale(const float *src, int w, int h, int tw, int th, float **out, err *e);
// Baseline JPEG, quality 1..100, 1 or 3 channels; temporary name + rename.
int image_save_jpeg(const char *path, const image *img, int quality, err *e);

#endif
