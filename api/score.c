// The public scorer: a model, the OoD methods asked for and their options (api/pipeline.c does
// the work), and the maps it hands back.
#include "api.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct maps_impl {
    oodseg_maps pub;          // first: the caller's pointer is this struct's
    pipeline_out out;
} maps_impl;

const char *oodseg_method_name(int index) {
    return index >= 0 && index < ood_method_count() ? ood_method_at(index)->name : NULL;
}

const char *oodseg_method_options_help(void) { return ood_options_help(); }

// The name/value list of the public API into method options (and "tta": on or off; "pictures"
// and "npy": what oodseg_maps_save writes), each read as the CLI's flag of that name.
static int set_options(ood_options *o, const char *const *kv, int *tta, pipeline_save_opts *so, err *e) {
    pipeline_config c;
    pipeline_config_default(&c);
    for (int i = 0; kv && kv[i]; i += 2) {
        if (!kv[i + 1]) return err_set(e, OODSEG_E_ARG, "method option '%s' has no value (the list is name, value, ..., NULL)", kv[i]);
        if (!strcmp(kv[i], "tta") || !strcmp(kv[i], "pictures") || !strcmp(kv[i], "npy")) {
            if (pipeline_config_set(&c, kv[i], kv[i + 1], e)) return e->code;
            *tta = c.tta;
            *so = (pipeline_save_opts){c.pictures, c.no_npy};
            continue;
        }
        int rc = ood_options_set(o, kv[i], kv[i + 1], e);
        if (rc == 1) return err_set(e, OODSEG_E_ARG, "unknown method option '%s' (see oodseg_method_options_help())", kv[i]);
        if (rc) return rc;
    }
    return OODSEG_OK;
}

int oodseg_scorer_open(oodseg_model *om, const char *methods, const char *const *options,
                       oodseg_scorer **out, oodseg_status *st) {
    err e = {0};
    if (!om || !out) { err_set(&e, OODSEG_E_ARG, "oodseg_scorer_open: model and out must not be NULL"); return api_status(&e, st); }
    *out = NULL;
    ood_options o;
    ood_options_default(&o);
    int tta = 0;
    pipeline_save_opts so = {PICTURES_DEFAULT, 0};
    if (set_options(&o, options, &tta, &so, &e)) return api_status(&e, st);
    oodseg_scorer *s = calloc(1, sizeof *s);
    if (!s) { err_set(&e, OODSEG_E_NOMEM, "out of memory"); return api_status(&e, st); }
    if (pipeline_attach(&s->p, om->m, om->has_size ? om->size : NULL, methods, &o, &e)) {
        free(s);
        return api_status(&e, st);
    }
    if (tta && pipeline_use_tta(&s->p, &e)) {
        pipeline_close(&s->p);
        free(s);
        return api_status(&e, st);
    }
    ood_options_json(&s->p.opt, s->options_json, sizeof s->options_json);
    s->om = om;
    s->save = so;
    *out = s;
    return api_status(&e, st);
}

void oodseg_scorer_close(oodseg_scorer *s) {
    if (!s) return;
    pipeline_close(&s->p);
    free(s);
}

const char *oodseg_scorer_options_json(const oodseg_scorer *s) { return s ? s->options_json : NULL; }

// Wraps a finished pipeline_out into the public maps (taking its buffers).
static int hand_over(const pipeline *p, pipeline_out *o, oodseg_maps **out, err *e) {
    maps_impl *mi = calloc(1, sizeof *mi);
    if (!mi) { pipeline_out_free(o); return err_set(e, OODSEG_E_NOMEM, "out of memory"); }
    mi->out = *o;
    oodseg_maps *m = &mi->pub;
    m->width = o->w;
    m->height = o->h;
    m->n_methods = p->n_methods;
    for (int i = 0; i < p->n_methods; i++) {
        m->method[i] = ood_method_def_of(p->methods[i])->name;
        m->score[i] = mi->out.scores[i];
    }
    m->seg = mi->out.pred;
    m->clusters = mi->out.clusters;
    m->num_clusters = mi->out.clusters ? mi->out.k : 0;
    m->cluster_ood = mi->out.clusters ? mi->out.ood_flag : NULL;
    m->tau = mi->out.tau_used;
    m->seconds_forward = mi->out.seconds_forward;
    m->seconds_methods = mi->out.seconds_methods;
    *out = m;
    return OODSEG_OK;
}

// pipeline_run with the model entered for the call.
static int run_image(oodseg_scorer *s, const image *img, pipeline_out *o, err *e) {
    if (api_enter(s->om, e)) return e->code;
    int rc = pipeline_run(&s->p, img, o, e);
    api_leave(s->om);
    return rc;
}

int oodseg_score_rgb(oodseg_scorer *s, const uint8_t *rgb, int width, int height, int row_stride,
                     oodseg_maps **out, oodseg_status *st) {
    err e = {0};
    if (!s || !rgb || !out || width <= 0 || height <= 0 || (row_stride && row_stride < 3 * width)) {
        err_set(&e, OODSEG_E_ARG, "oodseg_score_rgb: bad arguments (scorer, pixels and out must be set; size %dx%d, "
                "row stride %d bytes, at least 3 * width)", width, height, row_stride);
        return api_status(&e, st);
    }
    *out = NULL;
    image img = {width, height, 3, (uint8_t *)rgb};
    uint8_t *packed = NULL;
    if (row_stride && row_stride != 3 * width) {   // the stages read packed rows
        packed = err_malloc(&e, (size_t)3 * width * height, "a packed copy of the image");
        if (!packed) return api_status(&e, st);
        for (int y = 0; y < height; y++) memcpy(packed + (size_t)3 * width * y, rgb + (size_t)row_stride * y, (size_t)3 * width);
        img.px = packed;
    }
    pipeline_out o;
    if (!run_image(s, &img, &o, &e)) hand_over(&s->p, &o, out, &e);
    free(packed);
    return api_status(&e, st);
}

int oodseg_score_image(oodseg_scorer *s, const char *path, oodseg_maps **out, oodseg_status *st) {
    err e = {0};
    if (!s || !path || !out) { err_set(&e, OODSEG_E_ARG, "oodseg_score_image: scorer, path and out must not be NULL"); return api_status(&e, st); }
    *out = NULL;
    image img = {0};
    if (image_load_rgb_mem(path, s->om->m->max_memory, &img, &e)) return api_status(&e, st);
    pipeline_out o;
    if (run_image(s, &img, &o, &e)) err_prefix(&e, "%s: ", path);
    else hand_over(&s->p, &o, out, &e);
    image_free(&img);
    return api_status(&e, st);
}

int oodseg_score_tensor(oodseg_scorer *s, const float *input, int height, int width, oodseg_maps **out,
                        oodseg_status *st) {
    err e = {0};
    if (!s || !input || !out || height <= 0 || width <= 0) {
        err_set(&e, OODSEG_E_ARG, "oodseg_score_tensor: bad arguments (scorer, input and out must be set, size %dx%d)", width, height);
        return api_status(&e, st);
    }
    *out = NULL;
    pipeline_out o;
    int rc = api_enter(s->om, &e);
    if (!rc) {
        rc = pipeline_run_tensor(&s->p, input, height, width, &o, &e);
        api_leave(s->om);
    }
    if (!rc) hand_over(&s->p, &o, out, &e);
    return api_status(&e, st);
}

int oodseg_maps_save(const oodseg_scorer *s, const oodseg_maps *maps, const uint8_t *rgb, const char *dir,
                     const char *stem, oodseg_status *st) {
    err e = {0};
    if (!s || !maps || !rgb || !dir || !stem) {
        err_set(&e, OODSEG_E_ARG, "oodseg_maps_save: scorer, maps, rgb, dir and stem must not be NULL");
        return api_status(&e, st);
    }
    const maps_impl *mi = (const maps_impl *)maps;
    image img = {maps->width, maps->height, 3, (uint8_t *)rgb};
    pipeline_save_with(&s->p, &img, &mi->out, dir, stem, &s->save, &e);
    return api_status(&e, st);
}

void oodseg_maps_free(oodseg_maps *maps) {
    if (!maps) return;
    maps_impl *mi = (maps_impl *)maps;
    pipeline_out_free(&mi->out);
    free(mi);
}
