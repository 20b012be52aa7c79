// Images: PNG (8/16-bit, gray, RGB, palette, alpha), JPEG and WebP in; PNG and WebP out (JPEG out:
// io/thumbnail.h).
#ifndef OODSEG_IO_IMAGE_H
#define OODSEG_IO_IMAGE_H

#include <stdint.h>
#include "../core/err.h"

typedef struct image {
    int w, h, c;     // c = 3 (RGB interleaved) or 1
    uint8_t *px;     // h*w*c bytes, row-major
} image;

// The pixel limit comes from the run's memory limit (--max-memory, core/memlimit.h): an image of
// w x h pixels needs MEMLIMIT_BYTES_PER_IMAGE_PIXEL x w x h bytes (the decoded pixels and the
// run's buffers at image size), and one that needs more than the limit is refused from its header,
// before any pixel buffer is allocated (OODSEG_E_NOMEM, naming the file, its size, what it needs
// and the limit).

// Loads as 8-bit RGB (palette expanded, alpha dropped, gray replicated, 16-bit scaled down) under
// the run's memory limit max_memory (0: the default, core/memlimit.h's memlimit_default()).
int image_load_rgb_mem(const char *path, uint64_t max_memory, image *out, err *e);
// Loads a label mask as one 8-bit channel of raw values: gray values as stored, palette PNGs as
// their indices (never expanded). An RGB label file is an error that says so.
int image_load_label_mem(const char *path, uint64_t max_memory, image *out, err *e);
// The same under the default limit.
int image_load_rgb(const char *path, image *out, err *e);
int image_load_label(const char *path, image *out, err *e);
// The same with a plain pixel cap (> 0) instead of a memory limit (the fuzz targets: a small cap
// keeps each input fast).
int image_load_rgb_max(const char *path, int64_t max_pixels, image *out, err *e);
int image_load_label_max(const char *path, int64_t max_pixels, image *out, err *e);
// PNG writer (io/png_write.c), c = 1 or 3; temporary name + rename. Tuned for speed (zlib Z_RLE
// over Paeth rows); an RGB image of at most 256 colours is stored with a palette (same pixels).
int image_save_png(const char *path, const image *img, err *e);
// Lossy WebP writer, quality 0..100, c = 1 or 3 (gray is stored as RGB); temporary name + rename.
int image_save_webp(const char *path, const image *img, int quality, err *e);
void image_free(image *img);

#endif
