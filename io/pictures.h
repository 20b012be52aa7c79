// Pictures of one scored image for people, each explaining itself with a strip below the picture
// (the image part keeps the image's size, at the top):
//   heat map and overlay: a colour bar with the score's name and unit, its range and whether that
//     range is this image's own min..max or a fixed one (comparable across images);
//   classes (_seg): a legend of the classes present, largest first, with their colours and names;
//   clusters: a key for the OoD-flagged clusters (hatched, magenta outline) and the threshold used.
// Text is drawn with the built-in bitmap font (io/font.h).
#ifndef OODSEG_IO_PICTURES_H
#define OODSEG_IO_PICTURES_H

#include <stdint.h>
#include "../core/err.h"
#include "../io/image.h"

// The colormaps: inferno (scores) and tab20 (clusters), sampled from matplotlib 3.6.
extern const uint8_t pictures_inferno[256][3];
extern const uint8_t pictures_tab20[20][3];

// How scores map to colours: lo -> the bottom of inferno, hi -> its top.
typedef struct pictures_scale {
    int fixed;          // 0: each picture's own min..max of the finite scores; 1: lo..hi
    double lo, hi;
    const char *note;   // said on the bar; NULL: "per-image min..max" or "fixed scale"
} pictures_scale;

typedef struct pictures_in {
    const image *img;                 // the scored image, w x h (RGB or gray)
    const float *score;               // h*w, or NULL; non-finite scores are drawn as lo
    const char *score_label;          // the score's name and unit, e.g. "maxlogit = -max logit (logits)"
    pictures_scale scale;
    const uint8_t *pred;              // h*w class indices, or NULL
    const uint8_t (*palette)[3];      // n_classes colours
    const char *const *class_names;   // n_classes names, or NULL ("class N")
    int n_classes;
    const int32_t *clusters;          // h*w cluster ids, or NULL
    int k;
    const uint8_t *ood_flag;          // k flags (NULL: none marked)
    const char *cluster_rule;         // the key's threshold line, e.g. "OoD: mean max-logit < tau = 3.2"
} pictures_in;

// The range the heat map of in uses (in->scale, or the finite min..max of in->score; 0..0 when
// there is none).
void pictures_range(const pictures_in *in, int64_t n, double *lo, double *hi);
// Each makes a new picture (free with image_free): w x (h + its strip).
int pictures_heat(const pictures_in *in, image *heat, image *overlay, err *e);
int pictures_seg(const pictures_in *in, image *out, err *e);
int pictures_clusters(const pictures_in *in, image *out, err *e);

// The file format of the pictures. PICTURES_DEFAULT: the command's own default (PNG for
// `oodseg score`, none for `oodseg eval`), so a format given on purpose can be told from none.
typedef enum pictures_format { PICTURES_DEFAULT = 0, PICTURES_NONE, PICTURES_PNG, PICTURES_JPG, PICTURES_WEBP } pictures_format;
// The lossy formats' qualities. JPEG 90: the colour bar's text stays crisp. WebP 80 (libwebp's
// fastest method): about half the bytes of JPEG 90 with the text still legible, at ~20 ms a
// 1280x800 picture (bench/bench_pictures.c).
#define PICTURES_JPG_QUALITY 90
#define PICTURES_WEBP_QUALITY 80
// "none", "png", "jpg" (or "jpeg"), "webp"; OODSEG_E_ARG naming the choices otherwise.
int pictures_format_parse(const char *s, pictures_format *f, err *e);
// "png", "jpg", "webp" (PICTURES_DEFAULT: "png"), NULL for PICTURES_NONE.
const char *pictures_format_ext(pictures_format f);

// Writes into dir: <stem>_<method>_heat.png and _overlay.png (when in->score), <stem>_seg.png
// (when with_seg and in->pred, in->palette), <stem>_<method>_clusters.png (when in->clusters).
int pictures_save(const char *dir, const char *stem, const char *method, const pictures_in *in,
                  int with_seg, err *e);
// The same in format f (the extension follows it); PICTURES_NONE writes nothing.
int pictures_save_as(const char *dir, const char *stem, const char *method, const pictures_in *in,
                     int with_seg, pictures_format f, err *e);

#endif
