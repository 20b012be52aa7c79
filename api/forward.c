// `oodseg forward`'s job as library code: one image through the model's preprocessing and
// forward pass, saved as safetensors with the input, the logits and the feature taps.
#include "pipeline.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The named feature taps plus the decoder's own logits where the model has them; all: "*".
static void forward_want(const model *m, int all, char *want, size_t n) {
    if (all) { snprintf(want, n, "*"); return; }
    want[0] = 0;
    for (int i = 0; i < m->desc.num_taps; i++) {
        strncat(want, i ? "," : "", n - strlen(want) - 1);
        strncat(want, m->desc.taps[i].name, n - strlen(want) - 1);
    }
    strncat(want, ",decode.logits", n - strlen(want) - 1);
}

int forward_save(model *m, const image *img, const char *image_name, const char *size, int all,
                 const char *path, tensor_list *tl, err *e) {
    int iw, ih;
    if (preprocess_target_size(&m->desc.pre, img->w, img->h, size, &iw, &ih, e)) return e->code;
    int64_t ishape[4] = {1, 3, ih, iw};
    tensor *in = tl_add(tl, "input", 4, ishape, e);
    if (!in) return e->code;
    if (preprocess_image(&m->ctx, &m->desc.pre, img, iw, ih, in->data, e)) return e->code;
    char want[2048];
    forward_want(m, all, want, sizeof want);
    if (model_forward(m, in->data, ih, iw, want, tl, e)) return e->code;   // appends after "input"
    st_tensor *st = err_calloc(e, (size_t)tl->n, sizeof *st, "the tensor table");
    if (!st) return e->code;
    for (int i = 0; i < tl->n; i++) {
        st[i].name = tl->t[i].name; st[i].ndim = tl->t[i].ndim;
        st[i].shape = tl->t[i].shape; st[i].data = tl->t[i].data;
    }
    const char *meta[] = {"format", "pt", "oodseg_version", OODSEG_VERSION, "model", m->desc.arch, "image", image_name};
    int rc = safetensors_write(path, st, tl->n, meta, 4, e);
    free(st);
    return rc;
}
