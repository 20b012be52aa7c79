// OoD segmentation datasets: one table of known layouts (each with its label convention) plus a
// generic layout. Opening a dataset lists and pairs its files and checks the pairing; loading an
// item's label checks its size against the image and maps every value to 0 (in-distribution),
// 1 (OoD) or 255 (ignore), refusing values the layout does not define.
//
//   name                layout under PATH                                      labels
//   roadanomaly         frame_list.json (JSON array of "<stem>.jpg"), frames/<stem>.jpg,
//                       frames/<stem>.labels/labels_semantic.png               0 ID, 2 OoD, 255 ignore
//   smiyc-anomaly,      images/<stem>.{jpg,jpeg,webp,png},
//   smiyc-obstacle      labels_masks/<stem>_labels_semantic.png                 0 ID, 1 OoD, 255 void
//   fishyscapes-laf,    original/ (or images/) <stem>.{png,jpg,webp}, labels/<stem>.png
//   fishyscapes-static  (or labels/<stem>_labels.png)                          0 ID, 1 OoD, 255 void
//   camvid-ood          test_ood.txt: "test_ood/<stem>.png testannot_ood/<stem>.png" a line,
//                       relative to PATH                                       0..10 ID, 11 void, 12 OoD
//   ade-ood             images/<stem>.jpg, annotations/<stem>_mask.png         0 ID, 1 OoD, 255 ignore
//   generic             --images DIR --labels DIR [--label-suffix S]: label DIR/<stem>S.png;
//                       --images VIDEO: the frames with a label <video-stem>_f<index>S.png
//                       (S default ""), values --ood V,.. --ignore V,.. [--id V,..]; without --id
//                       every other value is in-distribution
#ifndef OODSEG_EVAL_DATASETS_H
#define OODSEG_EVAL_DATASETS_H

#include <stddef.h>
#include <stdint.h>
#include "../core/err.h"
#include "../io/image.h"

#define DS_BAD 254   // label map entry: a value the layout does not define

typedef struct ds_item {
    char *stem;      // file name without folder and extension; the name of score maps and reports
    char *image;     // paths (a video file when frame >= 0)
    char *label;
    int64_t frame;   // -1: a still image; else this frame of the video (generic layout, --images VIDEO)
} ds_item;

typedef struct dataset {
    char name[32];        // the layout, e.g. "camvid-ood"
    char root[1024];      // PATH as given
    int n;
    ds_item *items;       // sorted by stem (list order for roadanomaly and camvid-ood)
    uint8_t map[256];     // raw label value -> 0, 1, 255 or DS_BAD
    char labels_doc[128];  // "0..10 ID, 11 void, 12 OoD", for messages and reports
    int smiyc_track;      // 0: none, 1: anomaly track, 2: obstacle track (component metrics)
} dataset;

typedef struct ds_generic {
    const char *images, *labels, *label_suffix;
    const char *ood, *ignore, *id;   // comma lists of label values, e.g. "1" / "255,254"
} ds_generic;

// spec: "NAME:PATH" (or "generic" with g). Errors name the file: missing list file, empty
// folder, an image without a label or a label without an image, a bad list line.
int dataset_open(const char *spec, const ds_generic *g, dataset *ds, err *e);
void dataset_free(dataset *ds);
// Keeps the first `limit` items (0: all), then the i-th of n contiguous slices (n = 0 or 1: all).
int dataset_select(dataset *ds, int limit, int shard_i, int shard_n, err *e);
// Loads item i's label as one channel mapped to 0/1/255. img_w/img_h > 0: the label must have
// that size (else OODSEG_E_DATA naming both files). Unknown values: OODSEG_E_DATA naming the file,
// the value and the pixel.
int dataset_load_label(const dataset *ds, int i, int img_w, int img_h, image *out, err *e);
// A layout's label convention without opening a folder: map[v] is 0 (ID), 1 (OoD), 255 (ignore)
// or DS_BAD for each raw label value v; labels_doc (n bytes, or NULL) receives its description,
// smiyc_track (or NULL) 0, 1 or 2 as in `dataset`. layout: a name of the table above (a
// NAME:PATH spec also works; the path is not looked at). "generic" takes g's ood/ignore/id lists.
int dataset_convention(const char *layout, const ds_generic *g, uint8_t map[256], char *labels_doc, size_t n,
                       int *smiyc_track, err *e);
// Loads item i's pixels as RGB: its image file, or its frame of the video (frame >= 0).
int dataset_load_image(const dataset *ds, int i, image *out, err *e);
// The same under the run's memory limit (--max-memory; 0: the default) for an image file's pixel cap.
int dataset_load_image_mem(const dataset *ds, int i, uint64_t max_memory, image *out, err *e);
// Parses "I/N" (0 <= I < N).
int dataset_parse_shard(const char *s, int *i, int *n, err *e);
// The table above, for --help.
const char *dataset_help(void);

#endif
