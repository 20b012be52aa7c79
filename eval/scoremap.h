// Score maps saved as .npy files by any tool (this one's `oodseg eval --save-scores` and
// `oodseg score`, or Python): DIR/<stem>.npy (or DIR/<stem>_score.npy), or, for a method NAME,
// DIR/<stem>_NAME_score.npy (the naming rule of `oodseg score`); float32 or any real dtype, shape
// (h, w) or (1, h, w) at label size, higher = more anomalous. The input of `oodseg metrics`.
#ifndef OODSEG_EVAL_SCOREMAP_H
#define OODSEG_EVAL_SCOREMAP_H

#include <stddef.h>
#include "../core/err.h"
#include "datasets.h"

// The path of stem's map in dir into path (method NULL: <stem>.npy, else <stem>_score.npy; a
// method: <stem>_<method>_score.npy). Returns 1 when that file exists, else 0 (path: the name
// expected).
int score_map_find(const char *dir, const char *stem, const char *method, char *path, size_t n);

// Finds stem's map in dir (score_map_find) and loads it as an h x w float map (caller frees),
// with errors naming the file for a missing map or a wrong shape (label_path: the label it must
// match, for the message).
int load_score_map(const char *dir, const char *stem, const char *method, int w, int h,
                   const char *label_path, float **out, err *e);

// An evaluator_map_fn (evaluator.h) over such folders, one per method: the component pass of an
// evaluation whose images are ds->items in order.
typedef struct score_dirs {
    const char *const *dirs;      // dirs[m]: method m's folder
    const dataset *ds;            // the labels' paths, for messages (NULL: the stem is named)
    const char *const *methods;   // NULL, or methods[m]: the NAME of <stem>_NAME_score.npy (or NULL)
} score_dirs;
int score_dirs_map(void *ctx, int image, const char *stem, int method, float *dst, int w, int h, err *e);

#endif
