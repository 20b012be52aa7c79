// What an evaluation ran on (dataset, labels, model, options), and the one place that writes it as
// the JSON metadata of a shard state (mstate.h) and reads it back when states are merged.
#ifndef OODSEG_EVAL_EVALMETA_H
#define OODSEG_EVAL_EVALMETA_H

#include <stddef.h>
#include "../core/err.h"

typedef struct eval_info {
    const char *dataset;       // the dataset as given, e.g. "camvid-ood:/data/CamVid"
    const char *layout;        // "camvid-ood"
    const char *labels_doc;    // "0..10 ID, 11 void, 12 OoD"
    const char *model;         // checkpoint path, or "score maps in DIR"
    const char *model_arch;    // or NULL
    const char *options_json;  // the method options as a JSON object text, or NULL
    const char *note;          // free text (shard, merge), or NULL
    int n_images;
} eval_info;

// The metadata of a shard state:
//   {"dataset": .., "layout": .., "labels": .., "model": .., ["model_arch": ..,] "images": N,
//    "shard": "I/N"[, "options": {..}]}
// (model_arch and options only when given; shard_n 0 counts as 1). OODSEG_E_ARG when it does not
// fit in cap bytes.
int eval_meta_json(const eval_info *in, int shard_i, int shard_n, char *buf, size_t cap, err *e);

// Adds the member "key": value to the JSON object text obj ("{}" or "{...}", capacity cap),
// keeping it a valid object: value is the string str (escaped), or, when str is NULL, the JSON
// text raw as it is. Returns 0, or -1 when it does not fit (obj is then unchanged).
int eval_json_member(char *obj, size_t cap, const char *key, const char *str, const char *raw);

// The metadata of states being merged: the strings of the first state's metadata (or "?" where
// absent), n_images summed over all of them, a note saying how many were merged. The strings
// live in m and stay valid until eval_meta_merged_free.
typedef struct eval_meta_merged {
    eval_info info;
    char note[128];
    void *json;                // the parsed first metadata, owning info's strings
} eval_meta_merged;
int eval_meta_merged_read(const char *const *paths, int n_paths, eval_meta_merged *m, err *e);
void eval_meta_merged_free(eval_meta_merged *m);

#endif
