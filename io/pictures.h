// Pictures of one scored image for people: heat map, heat over the image, predicted classes and
// the kmeans method's clusters.
#ifndef OODSEG_IO_PICTURES_H
#define OODSEG_IO_PICTURES_H

#include <stdint.h>
#include "../core/err.h"
#include "../io/image.h"

// The colormaps: inferno (scores) and tab20 (clusters), sampled from matplotlib 3.6.
extern const uint8_t pictures_inferno[256][3];
extern const uint8_t pictures_tab20[20][3];

// Writes into dir, all at the image's size (img->w x img->h; score, pred and clusters are h*w):
//   <stem><suffix>_heat.png     the score in the inferno colormap, min -> black, max -> yellow;
//   <stem><suffix>_heat.txt     the scale: "colormap inferno min <score> max <score>";
//   <stem><suffix>_overlay.png  the heat blended over the image (55 % heat);
//   <stem>_seg.png              the predicted classes in the palette (when pred and palette are given);
//   <stem><suffix>_clusters.png each cluster a colour (tab20), cluster borders dark, OoD clusters
//                               hatched in white and outlined in magenta (when clusters is given).
// suffix: "" for one method, "_maxlogit" etc. when several methods are written side by side.
// ood_flag: k flags (may be NULL: none marked). Non-finite scores are drawn as the minimum.
int pictures_save(const char *dir, const char *stem, const char *suffix, const image *img,
                  const float *score, const uint8_t *pred, const uint8_t (*palette)[3],
                  int n_classes, const int32_t *clusters, int k, const uint8_t *ood_flag, err *e);

#endif
