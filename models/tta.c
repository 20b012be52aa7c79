// Multi-scale + flip test-time augmentation (models/tta.h; docs/dinov2-segformer.md A.6).
#include "tta.h"
#include "../nn/nn.h"
#include <stdlib.h>
#include <string.h>

// One augmentation: the probabilities of img at ratio r, flipped or not, at img's size, added
// channels-last into acc (img->h, img->w, C) with the flip undone.
static int tta_one(model *m, const image *img, float r, int flip, model_forward_fn fwd, float *acc, err *e) {
    const nn_ctx *ctx = &m->ctx;
    preprocess p = m->desc.pre;
    p.size_w = (int)(p.size_w * (double)r), p.size_h = (int)(p.size_h * (double)r);   // mmseg: int(scale * r)
    int w, h, C = m->desc.num_outputs, H = img->h, W = img->w;
    if (preprocess_target_size(&p, img->w, img->h, NULL, &w, &h, e)) return e->code;
    float *in = err_malloc(e, sizeof(float) * 3 * (size_t)h * w, "a TTA input");   // (3, h, w)
    float *fl = flip ? err_calloc(e, (size_t)3 * h * w, sizeof(float), "a flipped TTA input") : NULL;
    float *lg = err_malloc(e, sizeof(float) * (size_t)C * H * W, "TTA logits at image size");
    float *cl = err_malloc(e, sizeof(float) * (size_t)C * H * W, "TTA probabilities");
    tensor_list out = {0};
    int rc = (!in || (flip && !fl) || !lg || !cl) ? e->code : preprocess_image(ctx, &p, img, w, h, in, e);
    if (!rc && flip) add_flipped_w_cl(ctx, fl, in, 3 * h, w, 1, 1);   // each row of each channel reversed
    if (!rc) rc = fwd(m, flip ? fl : in, h, w, "logits", &out, e);
    const tensor *t = rc ? NULL : tl_get(&out, "logits");
    if (!rc && (!t || t->shape[1] != C || t->shape[2] != h || t->shape[3] != w))
        rc = err_set(e, OODSEG_E_INTERNAL, "TTA: model %s returned no logits at its input size", m->desc.arch);
    if (!rc) {
        resize_bilinear(ctx, t->data, C, h, w, lg, H, W, 0);
        nchw_to_nhwc(ctx, lg, C, H, W, cl);
        softmax_rows_inplace(ctx, cl, (int64_t)H * W, C);
        add_flipped_w_cl(ctx, acc, cl, H, W, C, flip);
    }
    tl_free(&out);
    free(in); free(fl); free(lg); free(cl);
    return rc;
}

int model_tta_probs(model *m, const image *img, const float *ratios, int n_ratios, int flip, model_forward_fn fwd,
                    float **probs, err *e) {
    *probs = NULL;
    if (m->desc.pre.size_rule != SIZE_KEEP_RATIO)
        return err_set(e, OODSEG_E_ARG, "--tta: model %s has no keep-ratio test resize to scale", m->desc.arch);
    if (n_ratios < 1 || img->c != 3) return err_set(e, OODSEG_E_ARG, "--tta: no ratios, or not an RGB image");
    if (!fwd) fwd = m->forward;
    int C = m->desc.num_outputs, H = img->h, W = img->w, n = 0;
    float *acc = err_calloc(e, (size_t)C * H * W, sizeof(float), "the TTA sum");   // (H, W, C)
    if (!acc) return e->code;
    for (int i = 0; i < n_ratios; i++)
        for (int f = 0; f <= (flip ? 1 : 0); f++, n++)
            if (tta_one(m, img, ratios[i], f, fwd, acc, e)) { free(acc); return e->code; }
    float *out = err_malloc(e, sizeof(float) * (size_t)C * H * W, "the TTA probabilities");
    if (!out) { free(acc); return e->code; }
    nhwc_to_nchw(&m->ctx, acc, H, W, C, out);
    free(acc);
    int64_t total = (int64_t)C * H * W;
    for (int64_t k = 0; k < total; k++) out[k] /= (float)n;   // the mean, as mmseg divides the sum
    *probs = out;
    return OODSEG_OK;
}
