// The evaluator (see evaluator.h): pooled metrics, per-image rows and component metrics of
// several methods over a dataset, their reports and shard states.
#include "evaluator.h"
#include "datasets.h"
#include "mstate.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ev_image { int w, h; uint8_t *labels; } ev_image;   // labels: kept for the component pass

struct evaluator {
    int n_methods;
    char names[EVALUATOR_MAX_METHODS][EVALUATOR_NAME];
    macc *acc[EVALUATOR_MAX_METHODS];
    evaluator_opts o;
    comp_params cp[EVALUATOR_MAX_METHODS];
    int pending[EVALUATOR_MAX_METHODS];      // component threshold waits for the pooled curve
    comp_acc comp[EVALUATOR_MAX_METHODS];
    comp_result comp_res[EVALUATOR_MAX_METHODS];
    metrics_result res[EVALUATOR_MAX_METHODS];
    int finished, broken;
    report_row *rows;                        // NULL for a merged evaluator
    ev_image *img;                           // parallel to rows
    int n_rows, cap_rows;
    int merged;
    eval_meta_merged meta;                   // a merged evaluator's metadata
};

void evaluator_opts_default(evaluator_opts *o, int smiyc_track) {
    memset(o, 0, sizeof *o);
    o->conv = FPR_FIRST_GE;
    o->components = smiyc_track != 0;
    comp_params_default(&o->comp, smiyc_track == 2);
}

static evaluator *ev_alloc(int n_methods, err *e) {
    if (n_methods < 1 || n_methods > EVALUATOR_MAX_METHODS) {
        err_set(e, OODSEG_E_ARG, "%d methods; 1..%d allowed", n_methods, EVALUATOR_MAX_METHODS);
        return NULL;
    }
    evaluator *ev = err_calloc(e, 1, sizeof *ev, "evaluator");
    if (ev) ev->n_methods = n_methods;
    return ev;
}

int evaluator_new(evaluator **out, int n_methods, const char *const *names, const evaluator_opts *o, err *e) {
    *out = NULL;
    if (o && (unsigned)o->conv >= FPR_NUM_CONV) return err_set(e, OODSEG_E_ARG, "evaluator: bad FPR95 convention %d", (int)o->conv);
    evaluator *ev = ev_alloc(n_methods, e);
    if (!ev) return e->code;
    if (o) ev->o = *o; else evaluator_opts_default(&ev->o, 0);
    for (int m = 0; m < n_methods; m++) {
        snprintf(ev->names[m], EVALUATOR_NAME, "%s", names && names[m] ? names[m] : "?");
        ev->cp[m] = ev->o.comp;
        ev->pending[m] = ev->o.components && isnan(ev->cp[m].threshold);
        if (macc_new(&ev->acc[m], e)) { evaluator_free(ev); return e->code; }
    }
    *out = ev;
    return OODSEG_OK;
}

void evaluator_free(evaluator *ev) {
    if (!ev) return;
    for (int m = 0; m < ev->n_methods; m++) { macc_free(ev->acc[m]); metrics_result_free(&ev->res[m]); }
    for (int i = 0; i < ev->n_rows; i++) free(ev->img[i].labels);
    report_rows_free(ev->rows, ev->n_rows);
    free(ev->img);
    eval_meta_merged_free(&ev->meta);
    free(ev);
}

int evaluator_needs_maps(const evaluator *ev) {
    for (int m = 0; m < ev->n_methods; m++) if (ev->pending[m]) return 1;
    return 0;
}

// A new row (and image record) at the end of the table.
static int push_row(evaluator *ev, const char *stem, err *e) {
    if (ev->n_rows == ev->cap_rows) {
        int cap = ev->cap_rows ? ev->cap_rows * 2 : 256;
        report_row *r = realloc(ev->rows, (size_t)cap * sizeof *r);
        if (r) ev->rows = r;
        ev_image *im = r ? realloc(ev->img, (size_t)cap * sizeof *im) : NULL;
        if (im) ev->img = im;
        if (!r || !im) return err_set(e, OODSEG_E_NOMEM, "out of memory for the per-image table");
        ev->cap_rows = cap;
    }
    report_row *row = &ev->rows[ev->n_rows];
    memset(row, 0, sizeof *row);
    memset(&ev->img[ev->n_rows], 0, sizeof *ev->img);
    if (!(row->stem = strdup(stem))) return err_set(e, OODSEG_E_NOMEM, "out of memory");
    ev->n_rows++;
    return OODSEG_OK;
}

int evaluator_add(evaluator *ev, const char *stem, const float *const *scores, const uint8_t *labels,
                  int w, int h, double seconds, err *e) {
    if (ev->finished || ev->merged) return err_set(e, OODSEG_E_ARG, "evaluator: images cannot be added after finishing");
    if (ev->broken) return err_set(e, OODSEG_E_ARG, "evaluator: an earlier image failed; start a new evaluator");
    if (w < 1 || h < 1) return err_set(e, OODSEG_E_ARG, "%s: image size %dx%d", stem ? stem : "?", w, h);
    if (!stem) stem = "";
    int64_t n = (int64_t)w * h;
    if (push_row(ev, stem, e)) return e->code;
    ev->broken = 1;   // until every method has taken the image
    report_row *row = &ev->rows[ev->n_rows - 1];
    ev_image *im = &ev->img[ev->n_rows - 1];
    row->seconds = seconds;
    im->w = w; im->h = h;
    for (int m = 0; m < ev->n_methods; m++) {
        if (macc_add(ev->acc[m], scores[m], labels, n, e)) return err_prefix(e, "%s (%s): ", stem, ev->names[m]);
        metrics_result r;
        if (metrics_compute(scores[m], labels, n, ev->o.conv, 0, &r, e)) return err_prefix(e, "%s: ", stem);
        row->n_valid = r.n_pos + r.n_neg;
        row->n_ood = r.n_pos;
        row->ap[m] = r.ap; row->auroc[m] = r.auroc; row->fpr95[m] = r.fpr95;
        if (ev->o.components && !ev->pending[m] && comp_add(&ev->comp[m], scores[m], labels, w, h, &ev->cp[m], e))
            return err_prefix(e, "%s: ", stem);
    }
    if (evaluator_needs_maps(ev)) {
        if (!(im->labels = malloc((size_t)n))) return err_set(e, OODSEG_E_NOMEM, "%s: out of memory keeping the labels for the component pass", stem);
        memcpy(im->labels, labels, (size_t)n);
    }
    ev->broken = 0;
    return OODSEG_OK;
}

int evaluator_add_raw(evaluator *ev, const char *stem, const float *const *scores, const uint8_t *raw,
                      const uint8_t convention[256], int w, int h, double seconds, err *e) {
    for (int v = 0; v < 256; v++) {
        uint8_t c = convention[v];
        if (c != 0 && c != 1 && c != 255 && c != DS_BAD)
            return err_set(e, OODSEG_E_ARG, "label convention: raw value %d maps to %u; use 0 (ID), 1 (OoD), 255 (ignore) or %d (undefined)",
                           v, c, DS_BAD);
    }
    if (w < 1 || h < 1) return err_set(e, OODSEG_E_ARG, "%s: image size %dx%d", stem ? stem : "?", w, h);
    int64_t n = (int64_t)w * h;
    uint8_t *lab = err_malloc(e, (size_t)n, "mapped labels");
    if (!lab) return e->code;
    for (int64_t i = 0; i < n; i++) {
        if ((lab[i] = convention[raw[i]]) == DS_BAD) {
            err_set(e, OODSEG_E_DATA, "%s: unknown label value %u at pixel (x %lld, y %lld); the label convention does not define it",
                    stem ? stem : "?", raw[i], (long long)(i % w), (long long)(i / w));
            free(lab);
            return e->code;
        }
    }
    int rc = evaluator_add(ev, stem, scores, lab, w, h, seconds, e);
    free(lab);
    return rc;
}

int evaluator_n_images(const evaluator *ev) { return ev->merged ? ev->meta.info.n_images : ev->n_rows; }

// The second pass: each pending method's components at the threshold of its pooled curve.
static int comp_pass(evaluator *ev, evaluator_map_fn maps, void *ctx, err *e) {
    float *buf = NULL;
    size_t cap = 0;
    int rc = OODSEG_OK;
    for (int i = 0; i < ev->n_rows && !rc; i++) {
        const ev_image *im = &ev->img[i];
        size_t n = (size_t)im->w * im->h;
        if (n > cap) {
            free(buf);
            if (!(buf = malloc(n * sizeof *buf))) return err_set(e, OODSEG_E_NOMEM, "components: out of memory for a %dx%d map", im->w, im->h);
            cap = n;
        }
        for (int m = 0; m < ev->n_methods && !rc; m++) {
            if (!ev->pending[m] || !ev->res[m].defined) continue;
            rc = maps(ctx, i, ev->rows[i].stem, m, buf, im->w, im->h, e);
            if (!rc) rc = comp_add(&ev->comp[m], buf, im->labels, im->w, im->h, &ev->cp[m], e);
        }
    }
    free(buf);
    return rc;
}

int evaluator_finish(evaluator *ev, evaluator_map_fn maps, void *ctx, err *e) {
    if (ev->finished) return err_set(e, OODSEG_E_ARG, "evaluator: already finished");
    if (ev->broken) return err_set(e, OODSEG_E_ARG, "evaluator: an earlier image failed; start a new evaluator");
    if (evaluator_needs_maps(ev) && !maps)
        return err_set(e, OODSEG_E_ARG, "component metrics at the pooled default threshold need the score maps again: "
                       "pass a map callback, or set a component threshold");
    int any = 0;
    for (int m = 0; m < ev->n_methods; m++) {
        if (macc_compute(ev->acc[m], ev->o.conv, 1, &ev->res[m], e)) return err_prefix(e, "%s: ", ev->names[m]);
        if (ev->pending[m] && ev->res[m].defined) { ev->cp[m].threshold = comp_default_threshold(&ev->res[m]); any = 1; }
    }
    ev->finished = 1;
    if (any && comp_pass(ev, maps, ctx, e)) return e->code;
    for (int i = 0; i < ev->n_rows; i++) { free(ev->img[i].labels); ev->img[i].labels = NULL; }
    if (ev->o.components)
        for (int m = 0; m < ev->n_methods; m++) comp_finish(&ev->comp[m], &ev->comp_res[m]);
    return OODSEG_OK;
}

// ---- results ------------------------------------------------------------------------------------
int evaluator_n_methods(const evaluator *ev) { return ev->n_methods; }

const char *evaluator_method(const evaluator *ev, int m) {
    return m >= 0 && m < ev->n_methods ? ev->names[m] : NULL;
}

const metrics_result *evaluator_result(const evaluator *ev, int m) {
    return ev->finished && m >= 0 && m < ev->n_methods ? &ev->res[m] : NULL;
}

const comp_result *evaluator_comp_result(const evaluator *ev, int m) {
    return ev->finished && ev->o.components && m >= 0 && m < ev->n_methods ? &ev->comp_res[m] : NULL;
}

const comp_params *evaluator_comp_params(const evaluator *ev, int m) {
    return ev->o.components && m >= 0 && m < ev->n_methods ? &ev->cp[m] : NULL;
}

const report_row *evaluator_rows(const evaluator *ev, int *n) {
    if (n) *n = ev->rows ? ev->n_rows : 0;
    return ev->rows;
}

const eval_info *evaluator_info(const evaluator *ev) { return ev->merged ? &ev->meta.info : NULL; }

// ---- reports ------------------------------------------------------------------------------------
void evaluator_report(const evaluator *ev, const eval_info *info, report *r) {
    memset(r, 0, sizeof *r);
    if (info) r->info = *info;
    if (!info && ev->merged) {   // what the states said, without their options
        r->info = ev->meta.info;
        r->info.options_json = NULL;
    }
    if (!r->info.dataset) r->info.dataset = "";
    if (!r->info.layout) r->info.layout = "";
    if (!r->info.labels_doc) r->info.labels_doc = "";
    if (!r->info.model) r->info.model = "";
    if (!r->info.n_images) r->info.n_images = evaluator_n_images(ev);
    r->conv = ev->o.conv;
    r->n_methods = ev->n_methods;
    for (int m = 0; m < ev->n_methods; m++) {
        r->methods[m] = ev->names[m];
        r->res[m] = &ev->res[m];
        if (ev->o.components) { r->comp[m] = ev->comp_res[m]; r->comp_p[m] = ev->cp[m]; }
    }
    r->has_comp = ev->o.components;
    r->rows = ev->rows;
    r->n_rows = ev->rows ? ev->n_rows : 0;
}

int evaluator_write_reports(const evaluator *ev, const eval_info *info, const char *dir, err *e) {
    if (!ev->finished) return err_set(e, OODSEG_E_ARG, "evaluator: finish before writing reports");
    report r;
    evaluator_report(ev, info, &r);
    return report_write_all(&r, dir, e);
}

char *evaluator_table_md(const evaluator *ev) {
    report r;
    evaluator_report(ev, NULL, &r);
    return report_table_md(&r);
}

// ---- shard states -------------------------------------------------------------------------------
int evaluator_save_state(evaluator *ev, const char *path, const char *meta_json, err *e) {
    if (ev->merged) return err_set(e, OODSEG_E_ARG, "evaluator: a merged evaluator saves its state through evaluator_merge");
    const char *names[EVALUATOR_MAX_METHODS];
    for (int m = 0; m < ev->n_methods; m++) names[m] = ev->names[m];
    return mstate_save(path, meta_json, ev->n_methods, names, ev->acc, e);
}

int evaluator_merge(evaluator **out, const char *const *paths, int n_paths, fpr_conv conv,
                    const char *save_path, err *e) {
    return evaluator_merge_as(out, paths, n_paths, conv, save_path, NULL, e);
}

int evaluator_merge_as(evaluator **out, const char *const *paths, int n_paths, fpr_conv conv,
                       const char *save_path, const char *save_meta, err *e) {
    *out = NULL;
    if (n_paths < 1) return err_set(e, OODSEG_E_ARG, "merge: no state files given");
    evaluator *ev = ev_alloc(1, e);
    if (!ev) return e->code;
    ev->merged = 1;
    ev->o.conv = conv;
    int ns = 0, rc = eval_meta_merged_read(paths, n_paths, &ev->meta, e);
    char names[MSTATE_MAX_SECTIONS][MSTATE_NAME], meta[8192];   // meta: for the merged state file
    if (!rc) rc = mstate_merge_as(paths, n_paths, conv, 1, save_path, save_meta, &ns, names, ev->res, meta, sizeof meta, e);
    if (rc) { evaluator_free(ev); return rc; }
    ev->n_methods = ns;
    for (int m = 0; m < ns; m++) memcpy(ev->names[m], names[m], EVALUATOR_NAME);
    ev->finished = 1;
    *out = ev;
    return OODSEG_OK;
}

// One image of the merged pass: its labels, then each method's map at the image's size.
static int merged_comp_image(evaluator *ev, int i, const char *stem, evaluator_labels_fn labels,
                             evaluator_map_fn maps, void *ctx, float **buf, size_t *cap, err *e) {
    uint8_t *lab = NULL;
    int w = 0, h = 0, rc = labels(ctx, i, stem, &lab, &w, &h, e);
    size_t n = (size_t)w * h;
    if (!rc && n > *cap) {
        free(*buf);
        *cap = 0;
        if (!(*buf = malloc(n * sizeof **buf))) rc = err_set(e, OODSEG_E_NOMEM, "components: out of memory for a %dx%d map", w, h);
        else *cap = n;
    }
    for (int m = 0; m < ev->n_methods && !rc; m++) {
        if (ev->pending[m] && !ev->res[m].defined) continue;   // as comp_pass: no curve, no threshold
        rc = maps(ctx, i, stem, m, *buf, w, h, e);
        if (!rc && comp_add(&ev->comp[m], *buf, lab, w, h, &ev->cp[m], e)) err_prefix(e, "%s: ", stem);
    }
    free(lab);
    return rc;
}

int evaluator_merged_components(evaluator *ev, const comp_params *p, int n, const char *const *stems,
                                evaluator_labels_fn labels, evaluator_map_fn maps, void *ctx, err *e) {
    if (!ev->merged || ev->o.components) return err_set(e, OODSEG_E_ARG, "evaluator: component pass on an evaluator that is not a fresh merge");
    ev->o.components = 1;
    ev->o.comp = *p;
    for (int m = 0; m < ev->n_methods; m++) {
        ev->cp[m] = *p;
        ev->pending[m] = isnan(p->threshold);
        memset(&ev->comp[m], 0, sizeof ev->comp[m]);
        if (ev->pending[m] && ev->res[m].defined) ev->cp[m].threshold = comp_default_threshold(&ev->res[m]);
    }
    float *buf = NULL;
    size_t cap = 0;
    int rc = OODSEG_OK;
    for (int i = 0; i < n && !rc; i++) rc = merged_comp_image(ev, i, stems[i], labels, maps, ctx, &buf, &cap, e);
    free(buf);
    if (rc) { ev->o.components = 0; return rc; }
    for (int m = 0; m < ev->n_methods; m++) comp_finish(&ev->comp[m], &ev->comp_res[m]);
    return OODSEG_OK;
}
