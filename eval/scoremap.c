// Score maps from .npy folders (see scoremap.h).
#include "scoremap.h"
#include "../io/npy.h"
#include "../core/text.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int load_score_map(const char *dir, const char *stem, int w, int h, const char *label_path,
                   float **out, err *e) {
    char p[4200];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s.npy", dir, stem);
    if (stat(p, &st) != 0) {
        char q[4200];
        snprintf(q, sizeof q, "%s/%s_score.npy", dir, stem);
        if (stat(q, &st) != 0)
            return err_set(e, OODSEG_E_DATA, "%s: missing score map for image '%s' (expected <stem>.npy, float32, %dx%d as (%d, %d))",
                           p, stem, w, h, h, w);
        snprintf(p, sizeof p, "%s", q);
    }
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
    return OODSEG_OK;
}

int score_dirs_map(void *ctx, int image, const char *stem, int method, float *dst, int w, int h, err *e) {
    const score_dirs *sd = ctx;
    const char *label = sd->ds && image < sd->ds->n ? sd->ds->items[image].label : stem;
    float *s = NULL;
    if (load_score_map(sd->dirs[method], stem, w, h, label, &s, e)) return e->code;
    memcpy(dst, s, (size_t)w * h * sizeof *dst);
    free(s);
    return OODSEG_OK;
}
