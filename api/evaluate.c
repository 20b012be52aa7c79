// The public metrics, evaluator and dataset calls over eval/.
#include "api.h"
#include "../eval/datasets.h"
#include "../eval/metrics.h"
#include "../eval/evaluator.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The public view of a metrics_result; the curve pointers stay the result's.
static void view_metrics(const metrics_result *r, oodseg_metrics *m) {
    memset(m, 0, sizeof *m);
    m->n_pos = r->n_pos; m->n_neg = r->n_neg; m->defined = r->defined;
    m->ap = r->ap; m->auroc = r->auroc; m->fpr95 = r->fpr95; m->fpr95_threshold = r->fpr95_thr;
    m->best_f1 = r->best_f1; m->best_f1_threshold = r->best_f1_thr;
    m->curve_points = r->curve.n;
    m->recall = r->curve.recall; m->precision = r->curve.precision;
    m->fpr = r->curve.fpr; m->tpr = r->curve.tpr;
    m->comp_threshold = NAN; m->siou = NAN; m->ppv = NAN; m->f1_mean = NAN;
}

static int parse_fpr(const char *s, fpr_conv *c, err *e) {
    *c = FPR_FIRST_GE;
    return s ? fpr_conv_parse(s, c, e) : OODSEG_OK;
}

int oodseg_metrics_compute(const float *scores, const uint8_t *labels, int64_t n, int ood_value,
                           int ignore_value, const char *fpr_convention, oodseg_metrics *out,
                           oodseg_status *st) {
    err e = {0};
    fpr_conv conv;
    if (!scores || !labels || !out || n < 0 || ood_value < 0 || ood_value > 255 || ignore_value < 0 ||
        ignore_value > 255 || ood_value == ignore_value) {
        err_set(&e, OODSEG_E_ARG, "oodseg_metrics_compute: bad arguments (scores, labels and out must be set, "
                "n >= 0, ood_value %d and ignore_value %d distinct in 0..255)", ood_value, ignore_value);
        return api_status(&e, st);
    }
    memset(out, 0, sizeof *out);
    if (parse_fpr(fpr_convention, &conv, &e)) return api_status(&e, st);
    uint8_t *mapped = err_malloc(&e, n ? (size_t)n : 1, "the mapped labels");
    if (!mapped) return api_status(&e, st);
    for (int64_t i = 0; i < n; i++)
        mapped[i] = labels[i] == ood_value ? 1 : labels[i] == ignore_value ? 255 : 0;
    metrics_result r;
    if (!metrics_compute(scores, mapped, n, conv, 1, &r, &e)) view_metrics(&r, out);
    free(mapped);
    return api_status(&e, st);
}

void oodseg_metrics_release(oodseg_metrics *m) {
    if (!m) return;
    free((void *)m->recall); free((void *)m->precision); free((void *)m->fpr); free((void *)m->tpr);
    m->recall = m->precision = m->fpr = m->tpr = NULL;
    m->curve_points = 0;
}

// ---- the evaluator ---------------------------------------------------------------------------
struct oodseg_evaluator {
    evaluator *ev;
    uint8_t map[256];          // raw label value -> 0, 1, 255 or DS_BAD
    char convention[32], labels_doc[128];
    int n_methods, finished;
    int64_t *sizes;            // w*h of each image added, when the maps are kept
    float **kept;              // n_methods maps per image, kept for the component pass
    int n_kept, cap_kept;
};

// The convention's label table: "binary" (0 ID, 1 OoD, 255 ignore) or a dataset layout's.
static int open_convention(oodseg_evaluator *x, const char *conv, int *smiyc_track, err *e) {
    *smiyc_track = 0;
    if (!conv || !strcmp(conv, "binary")) {
        memset(x->map, DS_BAD, sizeof x->map);
        x->map[0] = 0; x->map[1] = 1; x->map[255] = 255;
        snprintf(x->convention, sizeof x->convention, "binary");
        snprintf(x->labels_doc, sizeof x->labels_doc, "0 ID, 1 OoD, 255 ignore");
        return OODSEG_OK;
    }
    snprintf(x->convention, sizeof x->convention, "%s", conv);
    return dataset_convention(conv, NULL, x->map, x->labels_doc, sizeof x->labels_doc, smiyc_track, e);
}

int oodseg_evaluator_open(const char *const *methods, int n_methods, const oodseg_eval_options *opt,
                          oodseg_evaluator **out, oodseg_status *st) {
    err e = {0};
    oodseg_eval_options none = {0};
    if (!opt) opt = &none;
    if (!methods || !out || n_methods < 1 || n_methods > EVALUATOR_MAX_METHODS) {
        err_set(&e, OODSEG_E_ARG, "oodseg_evaluator_open: give 1..%d method names (got %d) and out", EVALUATOR_MAX_METHODS, n_methods);
        return api_status(&e, st);
    }
    *out = NULL;
    oodseg_evaluator *x = calloc(1, sizeof *x);
    if (!x) { err_set(&e, OODSEG_E_NOMEM, "out of memory"); return api_status(&e, st); }
    int track;
    evaluator_opts eo;
    if (open_convention(x, opt->convention, &track, &e)) { free(x); return api_status(&e, st); }
    evaluator_opts_default(&eo, track);
    if ((opt->fpr_convention && fpr_conv_parse(opt->fpr_convention, &eo.conv, &e))) { free(x); return api_status(&e, st); }
    if (opt->components) eo.components = opt->components > 0;
    if (opt->comp_threshold_set) eo.comp.threshold = opt->comp_threshold;
    if (evaluator_new(&x->ev, n_methods, methods, &eo, &e)) { free(x); return api_status(&e, st); }
    x->n_methods = n_methods;
    *out = x;
    return api_status(&e, st);
}

// Copies of one image's maps for the second (component) pass.
static int keep_maps(oodseg_evaluator *x, const float *const *scores, int64_t n, err *e) {
    if (x->n_kept == x->cap_kept) {
        int cap = x->cap_kept ? 2 * x->cap_kept : 64;
        float **k = realloc(x->kept, (size_t)cap * x->n_methods * sizeof *k);
        int64_t *sz = realloc(x->sizes, (size_t)cap * sizeof *sz);
        if (k) x->kept = k;
        if (sz) x->sizes = sz;
        if (!k || !sz) return err_set(e, OODSEG_E_NOMEM, "out of memory keeping the score maps for the component pass");
        x->cap_kept = cap;
    }
    float **row = x->kept + (size_t)x->n_kept * x->n_methods;
    for (int m = 0; m < x->n_methods; m++) {
        if (!(row[m] = err_malloc(e, (size_t)n * sizeof(float), "a kept score map"))) {
            while (m--) free(row[m]);
            return e->code;
        }
        memcpy(row[m], scores[m], (size_t)n * sizeof(float));
    }
    x->sizes[x->n_kept++] = n;
    return OODSEG_OK;
}

int oodseg_evaluator_add(oodseg_evaluator *x, const char *name, const float *const *scores,
                         const uint8_t *labels, int w, int h, oodseg_status *st) {
    err e = {0};
    if (!x || !scores || !labels || w <= 0 || h <= 0) {
        err_set(&e, OODSEG_E_ARG, "oodseg_evaluator_add: bad arguments (evaluator, scores and labels must be set, size %dx%d)", w, h);
        return api_status(&e, st);
    }
    if (x->finished) { err_set(&e, OODSEG_E_ARG, "oodseg_evaluator_add: the evaluator is finished"); return api_status(&e, st); }
    for (int m = 0; m < x->n_methods; m++)
        if (!scores[m]) { err_set(&e, OODSEG_E_ARG, "oodseg_evaluator_add: no score map for method %d", m); return api_status(&e, st); }
    const char *stem = name ? name : "(unnamed)";
    if (!evaluator_add_raw(x->ev, stem, scores, labels, x->map, w, h, 0, &e) && evaluator_needs_maps(x->ev))
        keep_maps(x, scores, (int64_t)w * h, &e);
    if (e.code && !strstr(e.msg, x->convention)) err_prefix(&e, "labels in the %s convention (%s): ", x->convention, x->labels_doc);
    return api_status(&e, st);
}

static int kept_map(void *ctx, int image, const char *stem, int method, float *dst, int w, int h, err *e) {
    const oodseg_evaluator *x = ctx;
    (void)stem;
    if (image < 0 || image >= x->n_kept || x->sizes[image] != (int64_t)w * h)
        return err_set(e, OODSEG_E_INTERNAL, "component pass: no kept map for image %d", image);
    memcpy(dst, x->kept[(size_t)image * x->n_methods + method], (size_t)w * h * sizeof(float));
    return OODSEG_OK;
}

int oodseg_evaluator_finish(oodseg_evaluator *x, oodseg_status *st) {
    err e = {0};
    if (!x) { err_set(&e, OODSEG_E_ARG, "oodseg_evaluator_finish: no evaluator"); return api_status(&e, st); }
    if (x->finished) return api_status(&e, st);
    if (!evaluator_finish(x->ev, kept_map, x, &e)) x->finished = 1;
    return api_status(&e, st);
}

int oodseg_evaluator_result(const oodseg_evaluator *x, int m, oodseg_metrics *out, oodseg_status *st) {
    err e = {0};
    if (!x || !out || m < 0 || m >= x->n_methods) {
        err_set(&e, OODSEG_E_ARG, "oodseg_evaluator_result: method %d of %d", m, x ? x->n_methods : 0);
        return api_status(&e, st);
    }
    const metrics_result *r = x->finished ? evaluator_result(x->ev, m) : NULL;
    if (!r) { err_set(&e, OODSEG_E_ARG, "oodseg_evaluator_result: call oodseg_evaluator_finish first"); return api_status(&e, st); }
    view_metrics(r, out);
    const comp_result *c = evaluator_comp_result(x->ev, m);
    if (c) {
        out->has_components = 1;
        out->comp_threshold = evaluator_comp_params(x->ev, m)->threshold;
        out->siou = c->siou_gt; out->ppv = c->ppv; out->f1_mean = c->f1_mean;
    }
    return api_status(&e, st);
}

int oodseg_evaluator_write_reports(oodseg_evaluator *x, const char *dir, const char *title, oodseg_status *st) {
    err e = {0};
    if (!x || !dir || !x->finished) {
        err_set(&e, OODSEG_E_ARG, "oodseg_evaluator_write_reports: %s", !x || !dir ? "evaluator and dir must be set" : "call oodseg_evaluator_finish first");
        return api_status(&e, st);
    }
    eval_info info = {.dataset = x->convention, .layout = x->convention, .labels_doc = x->labels_doc,
                      .model = title ? title : "(given by the caller)", .n_images = evaluator_n_images(x->ev)};
    evaluator_write_reports(x->ev, &info, dir, &e);
    return api_status(&e, st);
}

int oodseg_evaluator_save_state(oodseg_evaluator *x, const char *path, oodseg_status *st) {
    err e = {0};
    char meta[2048];
    if (!x || !path) { err_set(&e, OODSEG_E_ARG, "oodseg_evaluator_save_state: evaluator and path must be set"); return api_status(&e, st); }
    eval_info info = {.dataset = x->convention, .layout = x->convention, .labels_doc = x->labels_doc,
                      .model = "(given by the caller)", .n_images = evaluator_n_images(x->ev)};
    if (!eval_meta_json(&info, 0, 1, meta, sizeof meta, &e)) evaluator_save_state(x->ev, path, meta, &e);
    return api_status(&e, st);
}

void oodseg_evaluator_close(oodseg_evaluator *x) {
    if (!x) return;
    for (int i = 0; i < x->n_kept * x->n_methods; i++) free(x->kept[i]);
    free(x->kept);
    free(x->sizes);
    evaluator_free(x->ev);
    free(x);
}

evaluator *api_evaluator_core(const oodseg_evaluator *x) { return x ? x->ev : NULL; }

int api_evaluator_wrap(evaluator *ev, const char *convention, oodseg_evaluator **out, err *e) {
    oodseg_evaluator *x = err_calloc(e, 1, sizeof *x, "an evaluator");
    if (!x) return e->code;
    memset(x->map, DS_BAD, sizeof x->map);   // nothing may be added to a finished evaluator
    snprintf(x->convention, sizeof x->convention, "%s", convention);
    x->ev = ev;
    x->n_methods = evaluator_n_methods(ev);
    x->finished = 1;
    *out = x;
    return OODSEG_OK;
}

// ---- datasets --------------------------------------------------------------------------------
struct oodseg_dataset { dataset ds; };

int oodseg_dataset_open(const char *spec, const char *const *options, oodseg_dataset **out,
                        oodseg_status *st) {
    err e = {0};
    if (!spec || !out) { err_set(&e, OODSEG_E_ARG, "oodseg_dataset_open: spec and out must not be NULL"); return api_status(&e, st); }
    *out = NULL;
    ds_generic g = {0};
    for (int i = 0; options && options[i]; i += 2) {
        const char *k = options[i], *v = options[i + 1];
        if (!v) { err_set(&e, OODSEG_E_ARG, "dataset option '%s' has no value (the list is name, value, ..., NULL)", k); return api_status(&e, st); }
        if (!strcmp(k, "images")) g.images = v;
        else if (!strcmp(k, "labels")) g.labels = v;
        else if (!strcmp(k, "label-suffix")) g.label_suffix = v;
        else if (!strcmp(k, "ood")) g.ood = v;
        else if (!strcmp(k, "ignore")) g.ignore = v;
        else if (!strcmp(k, "id")) g.id = v;
        else { err_set(&e, OODSEG_E_ARG, "unknown dataset option '%s' (images, labels, label-suffix, ood, ignore, id)", k); return api_status(&e, st); }
    }
    oodseg_dataset *d = calloc(1, sizeof *d);
    if (!d) { err_set(&e, OODSEG_E_NOMEM, "out of memory"); return api_status(&e, st); }
    if (dataset_open(spec, &g, &d->ds, &e)) { free(d); return api_status(&e, st); }
    *out = d;
    return api_status(&e, st);
}

int oodseg_dataset_count(const oodseg_dataset *d) { return d ? d->ds.n : 0; }

const char *oodseg_dataset_image(const oodseg_dataset *d, int i) {
    return d && i >= 0 && i < d->ds.n ? d->ds.items[i].image : NULL;
}

int oodseg_dataset_rgb(const oodseg_dataset *d, int i, uint8_t **rgb, int *w, int *h, oodseg_status *st) {
    err e = {0};
    if (!d || !rgb || !w || !h || i < 0 || i >= d->ds.n) {
        err_set(&e, OODSEG_E_ARG, "oodseg_dataset_rgb: bad arguments (item %d of %d)", i, d ? d->ds.n : 0);
        return api_status(&e, st);
    }
    image img = {0};
    *rgb = NULL;
    if (!dataset_load_image(&d->ds, i, &img, &e)) {
        *rgb = img.px;
        *w = img.w;
        *h = img.h;
    }
    return api_status(&e, st);
}

const char *oodseg_dataset_name(const oodseg_dataset *d, int i) {
    return d && i >= 0 && i < d->ds.n ? d->ds.items[i].stem : NULL;
}

int oodseg_dataset_label(const oodseg_dataset *d, int i, int width, int height, uint8_t **labels,
                         int *lw, int *lh, oodseg_status *st) {
    err e = {0};
    if (!d || !labels || !lw || !lh || i < 0 || i >= d->ds.n) {
        err_set(&e, OODSEG_E_ARG, "oodseg_dataset_label: bad arguments (item %d of %d)", i, d ? d->ds.n : 0);
        return api_status(&e, st);
    }
    *labels = NULL;
    image lab = {0};
    if (dataset_load_label(&d->ds, i, width, height, &lab, &e)) return api_status(&e, st);
    *labels = lab.px;
    *lw = lab.w;
    *lh = lab.h;
    return api_status(&e, st);
}

void oodseg_dataset_close(oodseg_dataset *d) {
    if (!d) return;
    dataset_free(&d->ds);
    free(d);
}

void oodseg_free(void *p) { free(p); }
