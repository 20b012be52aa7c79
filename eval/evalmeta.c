// Evaluation metadata as JSON (see evalmeta.h): one writer through core/text.h, one reader.
#include "evalmeta.h"
#include "mstate.h"
#include "../core/json.h"
#include "../core/text.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Appends raw text; -1 when it does not fit.
static int put(char *buf, size_t cap, const char *text) {
    size_t n = strlen(buf), l = strlen(text);
    if (n + l + 1 > cap) return -1;
    memcpy(buf + n, text, l + 1);
    return 0;
}

// Appends `, "key": "value"` (the first member without the comma).
static int put_member(char *buf, size_t cap, int first, const char *key, const char *value) {
    return put(buf, cap, first ? "" : ", ") || json_append_str(buf, cap, key) || put(buf, cap, ": ") ||
           json_append_str(buf, cap, value);
}

int eval_meta_json(const eval_info *in, int shard_i, int shard_n, char *buf, size_t cap, err *e) {
    if (!cap) return err_set(e, OODSEG_E_ARG, "state metadata: no room");
    buf[0] = 0;
    char tail[64];
    snprintf(tail, sizeof tail, ", \"images\": %d, \"shard\": \"%d/%d\"", in->n_images, shard_i, shard_n ? shard_n : 1);
    int bad = put(buf, cap, "{") ||
              put_member(buf, cap, 1, "dataset", in->dataset) || put_member(buf, cap, 0, "layout", in->layout) ||
              put_member(buf, cap, 0, "labels", in->labels_doc) || put_member(buf, cap, 0, "model", in->model) ||
              (in->model_arch && put_member(buf, cap, 0, "model_arch", in->model_arch)) || put(buf, cap, tail) ||
              (in->options_json && (put(buf, cap, ", \"options\": ") || put(buf, cap, in->options_json))) ||
              put(buf, cap, "}");
    if (bad) {
        buf[0] = 0;
        return err_set(e, OODSEG_E_ARG, "state metadata longer than %zu bytes; shorten the dataset path, model path or options", cap - 1);
    }
    return OODSEG_OK;
}

int eval_json_member(char *obj, size_t cap, const char *key, const char *str, const char *raw) {
    size_t n = strlen(obj);
    if (n < 2 || obj[0] != '{' || obj[n - 1] != '}') return -1;
    obj[n - 1] = 0;
    int first = n == 2;
    int bad = str ? put_member(obj, cap, first, key, str)
                  : (put(obj, cap, first ? "" : ", ") || json_append_str(obj, cap, key) || put(obj, cap, ": ") ||
                     put(obj, cap, raw ? raw : "null"));
    if (!bad) bad = put(obj, cap, "}");
    if (bad) { obj[n - 1] = '}'; obj[n] = 0; return -1; }
    return 0;
}

static const char *str_or(const json *j, const char *key, const char *dflt) {
    const json *v = j ? json_get(j, key) : NULL;
    return v && v->type == JSON_STRING ? v->str : dflt;
}

int eval_meta_merged_read(const char *const *paths, int n_paths, eval_meta_merged *m, err *e) {
    memset(m, 0, sizeof *m);
    char meta[8192];
    for (int i = 0; i < n_paths; i++) {   // add up the shards' image counts
        if (mstate_read_meta(paths[i], meta, sizeof meta, e)) return e->code;
        json *j = json_parse(meta, strlen(meta), paths[i], e);
        const json *im = j ? json_get(j, "images") : NULL;
        if (im && im->type == JSON_NUMBER) m->info.n_images += (int)im->i64;
        if (i == 0) m->json = j;
        else json_free(j);
    }
    // A state whose metadata is not JSON still merges: its report says "?".
    const json *j = m->json;
    m->info.dataset = str_or(j, "dataset", "?");
    m->info.layout = str_or(j, "layout", "?");
    m->info.labels_doc = str_or(j, "labels", "?");
    m->info.model = str_or(j, "model", "?");
    m->info.model_arch = str_or(j, "model_arch", NULL);
    snprintf(m->note, sizeof m->note, "merged from %d shard state%s", n_paths, n_paths == 1 ? "" : "s");
    m->info.note = m->note;
    return OODSEG_OK;
}

void eval_meta_merged_free(eval_meta_merged *m) {
    json_free(m->json);
    memset(m, 0, sizeof *m);
}
