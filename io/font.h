// A built-in bitmap font for the text in pictures (colour bars, keys, legends): printable ASCII in
// 5x8 cells (5x7 capitals and digits, one row below the baseline for descenders), drawn at an
// integer scale. No font file is read: pictures look the same on every machine.
#ifndef OODSEG_IO_FONT_H
#define OODSEG_IO_FONT_H

#include <stdint.h>
#include "image.h"

#define FONT_CELL_W 6   // 5 columns + 1 of spacing
#define FONT_CELL_H 9   // 8 rows + 1 of spacing

// Width in pixels of s at scale (the last character's spacing column included).
int font_width(const char *s, int scale);
// Draws s with its top-left corner at (x, y) in colour rgb; pixels outside im are skipped, and
// characters outside printable ASCII are drawn as '?'. im: 3 channels.
void font_draw(image *im, int x, int y, const char *s, int scale, const uint8_t rgb[3]);

#endif
