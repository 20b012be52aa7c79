// Images: PNG (8/16-bit, gray, RGB, palette, alpha), JPEG and WebP in; PNG out.
#ifndef OODSEG_IO_IMAGE_H
#define OODSEG_IO_IMAGE_H

#include <stdint.h>
#include "../core/err.h"

typedef struct image {
    int w, h, c;     // c = 3 (RGB interleaved) or 1
    uint8_t *px;     // h*w*c bytes, row-major
} image;

// Pixel limit above which loading refuses an image before allocating (OODSEG_E_NOMEM, naming
// the file and its size). Default 2^28 pixels; 0 restores the default.
void image_set_max_pixels(int64_t n);

// Loads as 8-bit RGB (palette expanded, alpha dropped, gray replicated, 16-bit scaled down).
int image_load_rgb(const char *path, image *out, err *e);
// Loads a label mask as one 8-bit channel of raw values: gray values as stored, palette PNGs as
// their indices (never expanded). An RGB label file is an error that says so.
int image_load_label(const char *path, image *out, err *e);
// PNG writer, c = 1 or 3; temporary name + rename.
int image_save_png(const char *path, const image *img, err *e);
void image_free(image *img);

#endif
