#include "pipeline.h"
#include "../nn/nn.h"
#include "../core/paths.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *pipeline_default_model(err *e) {
    static char path[4096];
    return paths_default_model(path, sizeof path, e);
}

// Checks every tap in the comma list against what the model offers; fills strides (relative to
// the logits grid) in list order.
static int resolve_taps(const model_desc *d, const char *taps, int *strides, int *n, err *e) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", taps);
    *n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int found = -1;
        for (int i = 0; i < d->num_taps; i++)
            if (strcmp(d->taps[i].name, t) == 0) found = i;
        if (found < 0) {
            char avail[1024] = "";
            for (int i = 0; i < d->num_taps; i++) {
                strncat(avail, i ? ", " : "", sizeof avail - strlen(avail) - 1);
                strncat(avail, d->taps[i].name, sizeof avail - strlen(avail) - 1);
            }
            return err_set(e, OODSEG_E_ARG, "--taps: the model %s has no feature tap '%s' (it has: %s)",
                           d->arch, t, avail);
        }
        if (*n == 16) return err_set(e, OODSEG_E_ARG, "--taps: at most 16 taps");
        int s = d->taps[found].stride / (d->logits_stride > 0 ? d->logits_stride : 1);
        strides[(*n)++] = s > 0 ? s : 1;
    }
    if (*n == 0) return err_set(e, OODSEG_E_ARG, "--taps: empty list");
    return OODSEG_OK;
}

int pipeline_ood_input(const nn_ctx *ctx, const model_desc *d, const tensor_list *tl, const char *taps, ood_input *in,
                       const tensor **feats, int *strides, err *e) {
    (void)ctx;
    memset(in, 0, sizeof *in);
    const tensor *lg = tl_get(tl, "logits");
    if (!lg || lg->ndim != 4) return err_set(e, OODSEG_E_INTERNAL, "model %s returned no 4-D logits", d->arch);
    in->logits = lg->data;
    in->num_outputs = (int)lg->shape[1]; in->h = (int)lg->shape[2]; in->w = (int)lg->shape[3];
    in->id_channels = d->id_channels; in->num_id = d->num_id;
    in->feats = feats; in->feat_strides = strides;
    if (!taps || !taps[0]) return OODSEG_OK;
    int nf;
    if (resolve_taps(d, taps, strides, &nf, e)) return e->code;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", taps);
    int i = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save), i++)
        if (!(feats[i] = tl_get(tl, t)))
            return err_set(e, OODSEG_E_INTERNAL, "model %s did not return tap '%s'", d->arch, t);
    in->num_feats = nf;
    return OODSEG_OK;
}

int pipeline_open(pipeline *p, const nn_ctx *ctx, const char *model_path, const model_options *mo,
                  const char *methods_csv, const ood_options *opt, err *e) {
    memset(p, 0, sizeof *p);
    if (opt) p->opt = *opt;
    else ood_options_default(&p->opt);
    char buf[256];
    snprintf(buf, sizeof buf, "%s", methods_csv && *methods_csv ? methods_csv : "maxlogit");
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (p->n_methods == PIPE_MAX_METHODS)
            return err_set(e, OODSEG_E_ARG, "--method: at most %d methods at once", PIPE_MAX_METHODS);
        const ood_method_def *def = ood_method_find(t, e);
        if (!def) { pipeline_close(p); return e->code; }
        for (int i = 0; i < p->n_methods; i++)
            if (ood_method_def_of(p->methods[i]) == def) {
                pipeline_close(p);
                return err_set(e, OODSEG_E_ARG, "--method: '%s' given twice", t);
            }
        if (ood_method_open(t, &p->opt, &p->methods[p->n_methods], e)) { pipeline_close(p); return e->code; }
        p->n_methods++;
    }
    p->ctx = *ctx;
    p->size_override = mo ? mo->size : NULL;
    if (!model_path && !(model_path = pipeline_default_model(e))) { pipeline_close(p); return e->code; }
    if (model_open(model_path, ctx, mo, &p->m, e)) { pipeline_close(p); return e->code; }
    int any_taps = 0;
    for (int i = 0; i < p->n_methods; i++) any_taps |= (ood_method_def_of(p->methods[i])->flags & OOD_NEEDS_TAPS) != 0;
    if (any_taps) {
        snprintf(p->taps, sizeof p->taps, "%s", p->opt.taps[0] ? p->opt.taps : p->m->desc.default_taps);
        int strides[16], n;
        if (resolve_taps(&p->m->desc, p->taps, strides, &n, e)) { pipeline_close(p); return e->code; }
    }
    return OODSEG_OK;
}

void pipeline_close(pipeline *p) {
    if (p->m) model_close(p->m);
    p->m = NULL;
    for (int i = 0; i < p->n_methods; i++) ood_method_close(p->methods[i]);
    p->n_methods = 0;
}

void pipeline_out_free(pipeline_out *o) {
    for (int i = 0; i < PIPE_MAX_METHODS; i++) free(o->scores[i]);
    free(o->pred);
    free(o->clusters);
    memset(o, 0, sizeof *o);
}

int pipeline_run(pipeline *p, const image *img, pipeline_out *out, err *e) {
    memset(out, 0, sizeof *out);
    model *m = p->m;
    const model_desc *d = &m->desc;
    double t0 = omp_get_wtime();
    tensor_list tl = {0};
    int rc = model_forward_image(m, img, p->size_override, p->taps, &tl, e);
    if (rc) { tl_free(&tl); return rc; }
    out->seconds_forward = omp_get_wtime() - t0;
    t0 = omp_get_wtime();

    ood_input in;
    const tensor *feats[16];
    int strides[16];
    if (pipeline_ood_input(&p->ctx, d, &tl, p->taps, &in, feats, strides, e)) { tl_free(&tl); return e->code; }
    int H = in.h, W = in.w;

    out->w = img->w; out->h = img->h;
    int64_t n_img = (int64_t)img->w * img->h, n_lg = (int64_t)H * W;
    float *score = err_malloc(e, (size_t)n_lg * sizeof(float), "a score map");
    int32_t *cl = NULL;
    if (!score) { tl_free(&tl); return e->code; }
    for (int i = 0; i < p->n_methods && !rc; i++) {
        ood_aux aux = {0};
        int makes_clusters = (ood_method_def_of(p->methods[i])->flags & OOD_MAKES_CLUSTERS) != 0;
        if (makes_clusters) {
            cl = err_malloc(e, (size_t)n_lg * sizeof(int32_t), "the cluster map");
            if (!cl) { rc = e->code; break; }
            aux.clusters = cl;
        }
        if ((rc = ood_method_score(p->methods[i], &p->ctx, &in, score, makes_clusters ? &aux : NULL, e))) break;
        out->scores[i] = err_malloc(e, (size_t)n_img * sizeof(float), "a score map at image size");
        if (!out->scores[i]) { rc = e->code; break; }
        // The reference order: score at the logits' resolution, then bilinear to the image size.
        resize_bilinear(&p->ctx, score, 1, H, W, out->scores[i], img->h, img->w, 0);
        if (cl) {
            out->clusters = err_malloc(e, (size_t)n_img * sizeof(int32_t), "the cluster map at image size");
            if (!out->clusters) { rc = e->code; break; }
            resize_nearest_i32(&p->ctx, cl, H, W, out->clusters, img->h, img->w);
            out->k = aux.k;
            memcpy(out->ood_flag, aux.ood_flag, sizeof out->ood_flag);
            out->tau_used = aux.tau_used;
            free(cl);
            cl = NULL;
        }
    }
    free(cl);
    if (!rc) {
        // The predicted class: the argmax over the ID channels (ood_max_logit's, an index into
        // id_channels), mapped to the output channel and brought to the image size.
        float *ml = err_malloc(e, (size_t)n_lg * sizeof(float), "the max-logit map");
        out->pred = err_malloc(e, (size_t)n_img, "the class map at image size");
        int32_t *pi = err_malloc(e, (size_t)n_lg * sizeof(int32_t), "the class map");
        int32_t *po = err_malloc(e, (size_t)n_img * sizeof(int32_t), "the class map");
        if (ml && out->pred && pi && po && !(rc = ood_max_logit(&p->ctx, &in, ml, pi, NULL, e))) {
            for (int64_t i = 0; i < n_lg; i++) pi[i] = d->id_channels[pi[i]];
            resize_nearest_i32(&p->ctx, pi, H, W, po, img->h, img->w);
            for (int64_t i = 0; i < n_img; i++) out->pred[i] = (uint8_t)(po[i] > 255 ? 255 : po[i]);
        } else if (!rc) rc = e->code;
        free(ml); free(pi); free(po);
    }
    free(score);
    tl_free(&tl);
    out->seconds_methods = omp_get_wtime() - t0;
    if (rc) pipeline_out_free(out);
    return rc;
}
