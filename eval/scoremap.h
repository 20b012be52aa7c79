// Score maps saved as .npy files by any tool (this one's `oodseg eval --save-scores`, or Python):
// DIR/<stem>.npy (or DIR/<stem>_score.npy), float32 or any real dtype, shape (h, w) or (1, h, w)
// at label size, higher = more anomalous. The input of `oodseg metrics`.
#ifndef OODSEG_EVAL_SCOREMAP_H
#define OODSEG_EVAL_SCOREMAP_H

#include "../core/err.h"
#include "datasets.h"

// Finds dir/<stem>.npy (or dir/<stem>_score.npy) and loads it as an h x w float map (caller
// frees), with errors naming the file for a missing map or a wrong shape (label_path: the label
// it must match, for the message).
int load_score_map(const char *dir, const char *stem, int w, int h, const char *label_path,
                   float **out, err *e);

// An evaluator_map_fn (evaluator.h) over such folders, one per method: the component pass of an
// evaluation whose images are ds->items in order.
typedef struct score_dirs {
    const char *const *dirs;   // dirs[m]: method m's folder
    const dataset *ds;         // the labels' paths, for messages (NULL: the stem is named)
} score_dirs;
int score_dirs_map(void *ctx, int image, const char *stem, int method, float *dst, int w, int h, err *e);

#endif
