// Score maps from .npy folders (see scoremap.h).
#include "scoremap.h"
#include "../io/npy.h"
#include "../core/text.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int score_map_find(const char *dir, const char *stem, const char *method, char *path, size_t n) {
    struct stat st;
    if (method) {
        snprintf(path, n, "%s/%s_%s_score.npy", dir, stem, method);
        return stat(path, &st) == 0;
    }
    char alt[4200];
    snprintf(alt, sizeof alt, "%s/%s_score.npy", dir, stem);
    snprintf(path, n, "%s/%s.npy", dir, stem);
    if (stat(path, &st) == 0) return 1;
    if (stat(alt, &st) != 0) return 0;
    snprintf(path, n, "%s", alt);
    return 1;
}

int load_score_map(const char *dir, const char *stem, const char *method, int w, int h, const char *label_path,
                   float **out, err *e) {
    char p[4200];
    if (!score_map_find(dir, stem, method, p, sizeof p))
        return err_set(e, OODSEG_E_DATA, "%s: missing score map for image '%s' (expected %s, float32, %dx%d as (%d, %d); "
                       "--partial evaluates the images that have one)", p, stem,
                       method ? "<stem>_<method>_score.npy" : "<stem>.npy", w, h, h, w);
    npy_array a;
    if (npy_read(p, &a, e)) return e->code;
    int ok = (a.ndim == 2 && a.shape[0] == h && a.shape[1] == w) ||
             (a.ndim == 3 && a.shape[0] == 1 && a.shape[1] == h && a.shape[2] == w);
    if (!ok) {
        char sh[128];
        fmt_shape(sh, sizeof sh, a.ndim < 4 ? a.ndim : 4, a.shape);   // "[17, 24]"; the message says (17, 24)
        sh[strlen(sh) - 1] = 0;
        npy_free(&a);
        return err_set(e, OODSEG_E_DATA, "%s: score map of shape (%s) but the label %s is %dx%d; save maps at label size, shape (%d, %d)",
                       p, sh + 1, label_path, w, h, h, w);
    }
    if (!strcmp(a.dtype, "f4")) { *out = a.data; a.data = NULL; }
    else if (!(*out = npy_to_f32(&a, e))) { npy_free(&a); return err_prefix(e, "%s: ", p); }
    npy_free(&a);
    for (int64_t i = 0; i < (int64_t)w * h; i++)   // named here, where the file is known
        if ((*out)[i] != (*out)[i]) {
            free(*out);
            *out = NULL;
            return err_set(e, OODSEG_E_DATA, "%s: the score map is NaN at pixel (x %lld, y %lld); a score map must be "
                           "finite or +-inf where the method saturates, never NaN: fix the tool that wrote it",
                           p, (long long)(i % w), (long long)(i / w));
        }
    return OODSEG_OK;
}

int score_dirs_map(void *ctx, int image, const char *stem, int method, float *dst, int w, int h, err *e) {
    const score_dirs *sd = ctx;
    const char *label = sd->ds && image < sd->ds->n ? sd->ds->items[image].label : stem;
    float *s = NULL;
    if (load_score_map(sd->dirs[method], stem, sd->methods ? sd->methods[method] : NULL, w, h, label, &s, e)) return e->code;
    memcpy(dst, s, (size_t)w * h * sizeof *dst);
    free(s);
    return OODSEG_OK;
}
