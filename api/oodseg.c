// The public API (include/oodseg.h) over the internal stages. Holds no global state: each model
// runs on its own context (threads), so separate model instances may run in separate threads.
#include "api.h"
#include "../core/paths.h"
#include "../nn/nn.h"
#include "../nn/gemm_bf16.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct oodseg_result {
    tensor_list tl;
};

int api_status(const err *e, oodseg_status *st) {
    if (st) {
        st->code = e->code;
        snprintf(st->message, sizeof st->message, "%s", e->msg);
    }
    return e->code;
}

const char *oodseg_version(void) { return OODSEG_VERSION; }

int api_enter(oodseg_model *om, err *e) {
    if (!atomic_exchange(&om->busy, 1)) return OODSEG_OK;
    return err_set(e, OODSEG_E_ARG, "the model %s is in use by another thread: a model and its scorers serve one call "
                   "at a time (open one model per thread; they run side by side)", om->m->desc.arch);
}

void api_leave(oodseg_model *om) { atomic_store(&om->busy, 0); }

const char *oodseg_default_model(oodseg_status *st) {
    static _Thread_local char path[4096];   // per thread: a caller's string is never rewritten by another
    err e = {0};
    const char *p = paths_default_model(path, sizeof path, &e);
    api_status(&e, st);
    return p;
}

int oodseg_model_open(const char *path, const oodseg_options *opt, oodseg_model **out, oodseg_status *st) {
    err e = {0};
    oodseg_options none = {0};
    if (!opt) opt = &none;
    if (!out) { err_set(&e, OODSEG_E_ARG, "oodseg_model_open: out must not be NULL"); return api_status(&e, st); }
    *out = NULL;
    if (opt->device != OODSEG_DEVICE_CPU) {
        err_set(&e, OODSEG_E_ARG, "oodseg_model_open: device %d is not available; this build has the CPU "
                "(OODSEG_DEVICE_CPU) only", opt->device);
        return api_status(&e, st);
    }
    char dflt[4096];
    if (!path && !(path = paths_default_model(dflt, sizeof dflt, &e))) return api_status(&e, st);
    oodseg_model *om = calloc(1, sizeof *om);
    if (om) atomic_init(&om->busy, 0);
    if (!om) { err_set(&e, OODSEG_E_NOMEM, "out of memory"); return api_status(&e, st); }
    model_options mo = {0};
    if (opt->size) {
        snprintf(om->size, sizeof om->size, "%s", opt->size);
        om->has_size = 1;
        mo.size = om->size;
    }
    mo.id_channels = opt->id_channels;
    mo.offset_scale = opt->offset_scale;
    mo.mode = opt->mode;
    mo.crop = opt->crop;
    mo.stride = opt->stride;
    mo.backbone = opt->backbone;
    mo.max_memory = opt->max_memory;
    om->want_all = opt->want_all;
    nn_ctx ctx;
    nn_ctx_init(&ctx, opt->threads);   // 0: every core
    if (opt->precision && nn_precision_parse(opt->precision, "precision", &ctx.precision, &e)) {
        free(om);
        return api_status(&e, st);
    }
    if (model_open(path, &ctx, &mo, &om->m, &e)) { free(om); return api_status(&e, st); }
    *out = om;
    err_clear(&e);
    return api_status(&e, st);
}

void oodseg_model_close(oodseg_model *m) {
    if (!m) return;
    model_close(m->m);
    free(m);
}

void oodseg_model_get_info(const oodseg_model *om, oodseg_model_info *info) {
    const model_desc *d = &om->m->desc;
    info->arch = d->arch;
    info->dataset = d->dataset;
    info->source_format = d->source_format;
    info->source_dtype = d->source_dtype;
    info->num_parameters = d->num_params;
    info->num_outputs = d->num_outputs;
    info->num_id_classes = d->num_id;
}

// All named taps; with want_all every intermediate.
static void want_list(const oodseg_model *om, char *want, size_t n) {
    if (om->want_all) { snprintf(want, n, "*"); return; }
    want[0] = 0;
    for (int i = 0; i < om->m->desc.num_taps; i++) {
        strncat(want, i ? "," : "", n - strlen(want) - 1);
        strncat(want, om->m->desc.taps[i].name, n - strlen(want) - 1);
    }
}

int oodseg_run_tensor(oodseg_model *om, const float *input, int h, int w, oodseg_result **out, oodseg_status *st) {
    err e = {0};
    if (!om || !input || !out || h <= 0 || w <= 0) {
        err_set(&e, OODSEG_E_ARG, "oodseg_run_tensor: bad arguments (model, input and out must be set, size %dx%d)", w, h);
        return api_status(&e, st);
    }
    *out = NULL;
    oodseg_result *r = calloc(1, sizeof *r);
    if (!r) { err_set(&e, OODSEG_E_NOMEM, "out of memory"); return api_status(&e, st); }
    char want[2048];
    want_list(om, want, sizeof want);
    if (api_enter(om, &e)) { oodseg_result_free(r); return api_status(&e, st); }
    int rc = model_forward(om->m, input, h, w, want, &r->tl, &e);
    api_leave(om);
    if (rc) { oodseg_result_free(r); return api_status(&e, st); }
    *out = r;
    return api_status(&e, st);
}

int oodseg_run_rgb(oodseg_model *om, const uint8_t *rgb, int width, int height, oodseg_result **out, oodseg_status *st) {
    err e = {0};
    if (!om || !rgb || !out || width <= 0 || height <= 0) {
        err_set(&e, OODSEG_E_ARG, "oodseg_run_rgb: bad arguments (size %dx%d)", width, height);
        return api_status(&e, st);
    }
    *out = NULL;
    image img = {width, height, 3, (uint8_t *)rgb};
    oodseg_result *r = calloc(1, sizeof *r);
    if (!r) { err_set(&e, OODSEG_E_NOMEM, "out of memory"); return api_status(&e, st); }
    char want[2048];
    want_list(om, want, sizeof want);
    int rc = api_enter(om, &e);
    if (!rc) {
        rc = model_forward_image(om->m, &img, om->has_size ? om->size : NULL, want, &r->tl, &e);
        api_leave(om);
    }
    if (rc) {
        oodseg_result_free(r);
        return api_status(&e, st);
    }
    *out = r;
    return api_status(&e, st);
}

int oodseg_run_image(oodseg_model *om, const char *path, oodseg_result **out, oodseg_status *st) {
    err e = {0};
    image img = {0};
    if (!om || !path || !out) { err_set(&e, OODSEG_E_ARG, "oodseg_run_image: bad arguments"); return api_status(&e, st); }
    if (image_load_rgb_mem(path, om->m->max_memory, &img, &e)) return api_status(&e, st);
    int rc = oodseg_run_rgb(om, img.px, img.w, img.h, out, st);
    image_free(&img);
    return rc;
}

int oodseg_result_count(const oodseg_result *r) { return r ? r->tl.n : 0; }

static void view(const tensor *t, oodseg_tensor *v) {
    v->name = t->name;
    v->ndim = t->ndim;
    for (int i = 0; i < 4; i++) v->shape[i] = i < t->ndim ? t->shape[i] : 0;
    v->data = t->data;
}

int oodseg_result_at(const oodseg_result *r, int index, oodseg_tensor *t) {
    if (!r || index < 0 || index >= r->tl.n) return OODSEG_E_ARG;
    view(&r->tl.t[index], t);
    return OODSEG_OK;
}

int oodseg_result_get(const oodseg_result *r, const char *name, oodseg_tensor *t, oodseg_status *st) {
    err e = {0};
    const tensor *x = r && name ? tl_get(&r->tl, name) : NULL;
    if (!x) {
        char names[512] = "";
        for (int i = 0; r && i < r->tl.n; i++) {
            strncat(names, i ? ", " : "", sizeof names - strlen(names) - 1);
            strncat(names, r->tl.t[i].name, sizeof names - strlen(names) - 1);
        }
        err_set(&e, OODSEG_E_ARG, "no output named '%s' (outputs: %s)", name ? name : "(null)", names);
        return api_status(&e, st);
    }
    view(x, t);
    return api_status(&e, st);
}

void oodseg_result_free(oodseg_result *r) {
    if (!r) return;
    tl_free(&r->tl);
    free(r);
}
