#include "pipeline.h"
#include "../nn/nn.h"
#include "../nn/prof.h"
#include "../models/tta.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int pipeline_ood_input(const model *m, const tensor_list *tl, const char *taps, ood_input *in,
                       const tensor **feats, int *strides, err *e) {
    const model_desc *d = &m->desc;
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

const char *pipeline_method_name(const pipeline *p, int i) {
    return ood_method_def_of(p->methods[i])->name;
}

// Opens each method of the comma list once (options checked, files read), refusing repeats.
static int open_methods(pipeline *p, const char *methods, err *e) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", methods && *methods ? methods : "kmeans");
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (p->n_methods == PIPE_MAX_METHODS)
            return err_set(e, OODSEG_E_ARG, "--method: at most %d methods at once", PIPE_MAX_METHODS);
        const ood_method_def *def = ood_method_find(t, e);
        if (!def) return e->code;
        for (int i = 0; i < p->n_methods; i++)
            if (ood_method_def_of(p->methods[i]) == def) return err_set(e, OODSEG_E_ARG, "--method: '%s' given twice", t);
        if (ood_method_open(def->name, &p->opt, &p->methods[p->n_methods], e)) return e->code;
        p->n_methods++;
    }
    return OODSEG_OK;
}

// The taps to compute: --taps, or the model's default taps, checked against what it offers.
static int use_taps(pipeline *p, err *e) {
    snprintf(p->taps, sizeof p->taps, "%s", p->opt.taps[0] ? p->opt.taps : p->m->desc.default_taps);
    int strides[16], n;
    return resolve_taps(&p->m->desc, p->taps, strides, &n, e);
}

int pipeline_attach(pipeline *p, model *m, const char *size, const char *methods, const ood_options *o,
                    err *e) {
    memset(p, 0, sizeof *p);
    if (o) p->opt = *o;
    else ood_options_default(&p->opt);
    p->m = m;
    if (size && strlen(size) >= sizeof p->size) return err_set(e, OODSEG_E_ARG, "--size '%s': too long", size);
    snprintf(p->size, sizeof p->size, "%s", size ? size : "");
    int rc = open_methods(p, methods, e), any_taps = 0;
    for (int i = 0; !rc && i < p->n_methods; i++) any_taps |= ood_method_def_of(p->methods[i])->flags & OOD_NEEDS_TAPS;
    if (!rc && any_taps) rc = use_taps(p, e);
    if (rc) { p->m = NULL; pipeline_close(p); }
    return rc;
}

int pipeline_open(pipeline *p, const pipeline_config *c, err *e) {
    memset(p, 0, sizeof *p);
    model *m;
    if (pipeline_config_open_model(c, NULL, &m, e)) return e->code;
    if (pipeline_attach(p, m, c->size, c->methods, &c->oo, e)) { model_close(m); return e->code; }
    p->owns_model = 1;
    if (c->tta && pipeline_use_tta(p, e)) { pipeline_close(p); return e->code; }
    return OODSEG_OK;
}

void pipeline_close(pipeline *p) {
    for (int i = 0; i < p->n_methods; i++) ood_method_close(p->methods[i]);
    if (p->owns_model && p->m) model_close(p->m);
    memset(p, 0, sizeof *p);
}

void pipeline_out_free(pipeline_out *o) {
    for (int i = 0; i < PIPE_MAX_METHODS; i++) free(o->scores[i]);
    free(o->pred);
    free(o->clusters);
    memset(o, 0, sizeof *o);
}

// Method i at logit resolution into `score` (and the cluster map into cl when it makes one), then
// bilinear to the image size: the reference order.
static int score_method(pipeline *p, int i, const ood_input *in, float *score, int32_t *cl,
                        pipeline_out *out, err *e) {
    int64_t n_img = (int64_t)out->w * out->h;
    ood_aux aux = {0};
    int makes = ood_method_def_of(p->methods[i])->flags & OOD_MAKES_CLUSTERS;
    aux.clusters = makes ? cl : NULL;
    if (ood_method_score(p->methods[i], &p->m->ctx, in, score, makes ? &aux : NULL, e)) return e->code;
    if (!(out->scores[i] = err_malloc(e, (size_t)n_img * sizeof(float), "a score map at image size"))) return e->code;
    resize_bilinear(&p->m->ctx, score, 1, in->h, in->w, out->scores[i], out->h, out->w, 0);
    if (!makes || out->k) return OODSEG_OK;   // the first clustering method's map and flags are kept
    out->k = aux.k;
    memcpy(out->ood_flag, aux.ood_flag, sizeof out->ood_flag);
    out->tau_used = aux.tau_used;
    if (p->no_class_maps) return OODSEG_OK;
    if (!(out->clusters = err_malloc(e, (size_t)n_img * sizeof(int32_t), "the cluster map at image size"))) return e->code;
    resize_nearest_i32(&p->m->ctx, cl, in->h, in->w, out->clusters, out->h, out->w);
    return OODSEG_OK;
}

// The predicted class: the argmax over the ID channels (an index into id_channels), mapped to the
// output channel and brought to the image size.
static int predict_classes(pipeline *p, const ood_input *in, pipeline_out *out, err *e) {
    int64_t n_lg = (int64_t)in->h * in->w, n_img = (int64_t)out->w * out->h;
    int32_t *pi = err_malloc(e, (size_t)n_lg * sizeof(int32_t), "the class map");
    int32_t *po = err_malloc(e, (size_t)n_img * sizeof(int32_t), "the class map");
    out->pred = err_malloc(e, (size_t)n_img, "the class map at image size");
    int rc = pi && po && out->pred ? OODSEG_OK : e->code;
    if (!rc) {
        for (int64_t i = 0; i < n_lg; i++) pi[i] = p->m->desc.id_channels[in->argmax[i]];
        resize_nearest_i32(&p->m->ctx, pi, in->h, in->w, po, out->h, out->w);
        for (int64_t i = 0; i < n_img; i++) out->pred[i] = (uint8_t)(po[i] > 255 ? 255 : po[i]);
    }
    free(pi); free(po);
    return rc;
}

// Every method and the class map from one forward pass's outputs, at out->w x out->h. The max
// logit and its class are computed once here for all of them.
static int score_outputs(pipeline *p, const tensor_list *tl, pipeline_out *out, err *e) {
    double t0 = omp_get_wtime();
    PROF_BEGIN(&p->m->ctx, PROF_OOD);
    ood_input in;
    const tensor *feats[16];
    int strides[16];
    if (pipeline_ood_input(p->m, tl, p->taps, &in, feats, strides, e)) { PROF_END(&p->m->ctx); return e->code; }
    int64_t n_lg = (int64_t)in.h * in.w;
    float *score = err_malloc(e, (size_t)n_lg * sizeof(float), "a score map");
    int32_t *cl = err_malloc(e, (size_t)n_lg * sizeof(int32_t), "the cluster map");
    float *ml = err_malloc(e, (size_t)n_lg * sizeof(float), "the max-logit map");
    int32_t *arg = err_malloc(e, (size_t)n_lg * sizeof(int32_t), "the class map");
    int rc = score && cl && ml && arg ? ood_max_logit(&p->m->ctx, &in, ml, arg, NULL, e) : e->code;
    in.max_logit = ml;
    in.argmax = arg;
    for (int i = 0; i < p->n_methods && !rc; i++) rc = score_method(p, i, &in, score, cl, out, e);
    if (!rc && !p->no_class_maps) rc = predict_classes(p, &in, out, e);
    free(score);
    free(cl);
    free(ml);
    free(arg);
    PROF_END(&p->m->ctx);
    out->seconds_methods = omp_get_wtime() - t0;
    return rc;
}

int pipeline_use_tta(pipeline *p, err *e) {
    for (int i = 0; i < p->n_methods; i++)
        if (ood_method_def_of(p->methods[i])->flags & OOD_NEEDS_TAPS)
            return err_set(e, OODSEG_E_ARG, "--tta: the method %s reads feature taps, and the averaged map of the "
                           "augmentations has no features of its own; use --tta with msp, maxlogit, entropy or energy",
                           pipeline_method_name(p, i));
    if (p->m->desc.pre.size_rule != SIZE_KEEP_RATIO)
        return err_set(e, OODSEG_E_ARG, "--tta: the model %s has a fixed input size; multi-scale test-time "
                       "augmentation needs a keep-ratio test resize (InternImage, SegFormer, DINOv2)", p->m->desc.arch);
    p->tta = 1;
    return OODSEG_OK;
}

// The augmented forward: log of the mean softmax over the ratios of the 'ms' configs, with and
// without a flip (docs/dinov2-segformer.md A.6), as "logits" at the image's size.
static int tta_logits(pipeline *p, const image *img, tensor_list *tl, err *e) {
    static const float ratios[] = {1.0f, 1.32f, 1.73f, 2.28f, 3.0f};
    float *probs = NULL;
    if (model_tta_probs(p->m, img, ratios, 5, 1, model_forward, &probs, e)) return e->code;
    int64_t n = (int64_t)p->m->desc.num_outputs * img->h * img->w;
    log_floor_inplace(&p->m->ctx, probs, n);
    int64_t shape[4] = {1, p->m->desc.num_outputs, img->h, img->w};
    return tl_add_take(tl, "logits", 4, shape, probs, e) ? OODSEG_OK : e->code;
}

int pipeline_forward(pipeline *p, const image *img, tensor_list *tl, pipeline_out *out, err *e) {
    memset(out, 0, sizeof *out);
    *tl = (tensor_list){0};
    double t0 = omp_get_wtime();
    int rc = p->tta ? tta_logits(p, img, tl, e)
                    : model_forward_image(p->m, img, p->size[0] ? p->size : NULL, p->taps, tl, e);
    out->seconds_forward = omp_get_wtime() - t0;
    out->w = img->w; out->h = img->h;
    if (rc) tl_free(tl);
    return rc;
}

int pipeline_score(const pipeline *p, tensor_list *tl, pipeline_out *out, err *e) {
    int rc = score_outputs((pipeline *)p, tl, out, e);
    tl_free(tl);
    if (rc) pipeline_out_free(out);
    return rc;
}

int pipeline_run(pipeline *p, const image *img, pipeline_out *out, err *e) {
    tensor_list tl;
    int rc = pipeline_forward(p, img, &tl, out, e);
    return rc ? rc : pipeline_score(p, &tl, out, e);
}

int pipeline_run_tensor(pipeline *p, const float *input, int h, int w, pipeline_out *out, err *e) {
    memset(out, 0, sizeof *out);
    if (p->tta)
        return err_set(e, OODSEG_E_ARG, "--tta resizes the image itself at several scales: score an image or RGB "
                       "pixels, not a preprocessed tensor");
    double t0 = omp_get_wtime();
    tensor_list tl = {0};
    int rc = model_forward(p->m, input, h, w, p->taps, &tl, e);
    out->seconds_forward = omp_get_wtime() - t0;
    out->w = w; out->h = h;
    if (!rc) rc = score_outputs(p, &tl, out, e);
    tl_free(&tl);
    if (rc) pipeline_out_free(out);
    return rc;
}

int pipeline_stats_add(pipeline *p, const image *img, ood_stats *st, err *e) {
    if (!p->taps[0] && use_taps(p, e)) return e->code;
    tensor_list tl = {0};
    int rc = model_forward_image(p->m, img, p->size[0] ? p->size : NULL, p->taps, &tl, e);
    if (!rc) {
        ood_input in;
        const tensor *feats[16];
        int strides[16];
        if (!(rc = pipeline_ood_input(p->m, &tl, p->taps, &in, feats, strides, e)))
            rc = ood_stats_add(st, &p->m->ctx, &in, &p->opt, e);
    }
    tl_free(&tl);
    return rc;
}
