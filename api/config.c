// The configuration of a scoring job from name/value options: the model options, the thread
// count, the methods and every method option. One setter serves the CLI's flags, the public API's
// option lists and the tools, so an option means the same wherever it is given.
#include "pipeline.h"
#include "../core/paths.h"
#include "../nn/gemm_bf16.h"
#include "../core/memlimit.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pipeline_config_default(pipeline_config *c) {
    memset(c, 0, sizeof *c);
    ood_options_default(&c->oo);
}

static int copy_value(const char *key, const char *v, char *dst, size_t cap, err *e) {
    if (strlen(v) >= cap)
        return err_set(e, OODSEG_E_ARG, "--%s: the value is too long (at most %zu characters)", key, cap - 1);
    memcpy(dst, v, strlen(v) + 1);
    return OODSEG_OK;
}

static int parse_threads(const char *v, int *out, err *e) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < 0 || x > 1024)
        return err_set(e, OODSEG_E_ARG, "--threads '%s': expected an integer in [0, 1024] (0: every core)", v);
    *out = (int)x;
    return OODSEG_OK;
}

static int parse_offset_scale(const char *v, double *out, err *e) {
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x > 0 && x <= 16))
        return err_set(e, OODSEG_E_ARG, "--offset-scale '%s': expected a number in (0, 16]", v);
    *out = x;
    return OODSEG_OK;
}

int pipeline_config_set(pipeline_config *c, const char *key, const char *v, err *e) {
    if (!key) return 1;
    if (!v) return err_set(e, OODSEG_E_ARG, "--%s needs a value", key);
    if (!strcmp(key, "model") || !strcmp(key, "m")) return copy_value(key, v, c->model, sizeof c->model, e);
    if (!strcmp(key, "backbone")) return copy_value(key, v, c->backbone, sizeof c->backbone, e);
    if (!strcmp(key, "size")) return copy_value(key, v, c->size, sizeof c->size, e);
    if (!strcmp(key, "id-channels")) return copy_value(key, v, c->id_channels, sizeof c->id_channels, e);
    if (!strcmp(key, "mode")) {
        if (strcmp(v, "whole") && strcmp(v, "slide"))
            return err_set(e, OODSEG_E_ARG, "--mode '%s': expected whole or slide", v);
        return copy_value(key, v, c->mode, sizeof c->mode, e);
    }
    if (!strcmp(key, "crop")) return copy_value(key, v, c->crop, sizeof c->crop, e);
    if (!strcmp(key, "stride")) return copy_value(key, v, c->stride, sizeof c->stride, e);
    if (!strcmp(key, "offset-scale")) return parse_offset_scale(v, &c->offset_scale, e);
    if (!strcmp(key, "threads") || !strcmp(key, "j")) return parse_threads(v, &c->threads, e);
    if (!strcmp(key, "precision")) return nn_precision_parse(v, "--precision", &c->precision, e);
    if (!strcmp(key, "max-memory")) return memlimit_parse(v, key, &c->max_memory, e);
    if (!strcmp(key, "tta")) {
        if (strcmp(v, "1") && strcmp(v, "0") && strcmp(v, "on") && strcmp(v, "off"))
            return err_set(e, OODSEG_E_ARG, "--tta '%s': expected on or off (the CLI's --tta alone means on)", v);
        c->tta = !strcmp(v, "1") || !strcmp(v, "on");
        return OODSEG_OK;
    }
    if (!strcmp(key, "pictures")) return pictures_format_parse(v, &c->pictures, e);
    if (!strcmp(key, "npy")) {
        if (strcmp(v, "on") && strcmp(v, "off"))
            return err_set(e, OODSEG_E_ARG, "--npy '%s': expected on or off (score's --no-npy means off)", v);
        c->no_npy = !strcmp(v, "off");
        return OODSEG_OK;
    }
    if (!strcmp(key, "method") || !strcmp(key, "methods")) return copy_value(key, v, c->methods, sizeof c->methods, e);
    return ood_options_set(&c->oo, key, v, e);
}

void pipeline_config_model_options(const pipeline_config *c, model_options *mo) {
    memset(mo, 0, sizeof *mo);
    mo->size = c->size[0] ? c->size : NULL;
    mo->id_channels = c->id_channels[0] ? c->id_channels : NULL;
    mo->offset_scale = c->offset_scale;
    mo->mode = c->mode[0] ? c->mode : NULL;
    mo->crop = c->crop[0] ? c->crop : NULL;
    mo->stride = c->stride[0] ? c->stride : NULL;
    mo->backbone = c->backbone[0] ? c->backbone : NULL;
    mo->max_memory = c->max_memory;
}

int pipeline_config_open_model(const pipeline_config *c, const char *path, model **m, err *e) {
    char dflt[4096];
    if (!path) path = c->model[0] ? c->model : paths_default_model(dflt, sizeof dflt, e);
    if (!path) return e->code;
    model_options mo;
    pipeline_config_model_options(c, &mo);
    nn_ctx ctx;
    nn_ctx_init(&ctx, c->threads);
    ctx.precision = c->precision;
    return model_open(path, &ctx, &mo, m, e);
}
