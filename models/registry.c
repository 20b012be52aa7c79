// Architecture recognition in one place: open a checkpoint, ask each architecture whether the key
// layout is its own, and build the model. Also the small helpers every architecture shares.
#include "model.h"
#include "slide.h"
#include "../nn/nn.h"
#include "../nn/gemm_bf16.h"
#include "../core/memlimit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int create(ckpt *ck, const model_options *opt, model **out, err *e) {
    if (opt->backbone && !dinov2_detect(ck)) {
        err_set(e, OODSEG_E_ARG, "--backbone %s: only DINOv2 models come as two files, and %s is no DINOv2 head",
                opt->backbone, ck->path);
        ckpt_close(ck);
        return e->code;
    }
    // Each architecture with its activation estimate (the dispatch of model.estimate).
    static const struct {
        int (*detect)(const ckpt *);
        int (*create)(ckpt *, const model_options *, model **, err *);
        uint64_t (*estimate)(const model *, int, int);
    } archs[] = {
        { internimage_upernet_detect, internimage_upernet_create, internimage_upernet_estimate },
        { segformer_detect, segformer_create, segformer_estimate },
        { espnetv2_detect, espnetv2_create, espnetv2_estimate },
        { espnet_detect, espnet_create, espnet_estimate },
        { dinov2_detect, dinov2_create, dinov2_estimate },
    };
    for (size_t k = 0; k < sizeof archs / sizeof archs[0]; k++) {
        if (!archs[k].detect(ck)) continue;
        if (archs[k].create(ck, opt, out, e)) return e->code;
        (*out)->estimate = archs[k].estimate;
        return OODSEG_OK;
    }
    const char *first = ck->n ? ck->e[0].name : "(no tensors)";
    err_set(e, OODSEG_E_MODEL,
            "%s: not a known architecture (first key '%s', %d tensors); oodseg reads InternImage+UperNet "
            "(mmseg), SegFormer (mmseg), ESPNet, ESPNetv2 and DINOv2 (backbone + BNHead) checkpoints", ck->path, first, ck->n);
    ckpt_close(ck);
    return e->code;
}

int model_from_ckpt(ckpt *ck, const nn_ctx *ctx, const model_options *opt, model **out, err *e) {
    model_options none = {0};
    if (!opt) opt = &none;
    *out = NULL;
    if (ctx && nn_precision_check(ctx, e)) { ckpt_close(ck); return e->code; }
    if (create(ck, opt, out, e)) return e->code;
    if (ctx) (*out)->ctx = *ctx;
    else nn_ctx_init(&(*out)->ctx, 0);
    // bf16: the model's own store of packed weights (each packed on first use, freed at close).
    (*out)->ctx.bf16_weights = NULL;
    if ((*out)->ctx.precision == NN_BF16 && nn_bf16_weights_new(&(*out)->ctx.bf16_weights, e)) {
        model_close(*out);
        *out = NULL;
        return e->code;
    }
    (*out)->max_memory = memlimit_resolve(opt->max_memory);
    if (slide_configure(&(*out)->desc.infer, opt, (*out)->desc.arch, e)) {
        model_close(*out);
        *out = NULL;
        return e->code;
    }
    if (arena_device((*out)->arena) != (*out)->ctx.device) {
        model_close(*out);
        *out = NULL;
        return err_set(e, OODSEG_E_ARG, "device %d: the activation arena exists for the CPU only",
                       (int)ctx->device);
    }
    return OODSEG_OK;
}

int model_open(const char *path, const nn_ctx *ctx, const model_options *opt, model **out, err *e) {
    ckpt *ck = NULL;
    *out = NULL;
    if (ckpt_open_limit(path, memlimit_resolve(opt ? opt->max_memory : 0), &ck, e)) return e->code;
    if (model_from_ckpt(ck, ctx, opt, out, e)) {
        if (!strstr(e->msg, path)) err_prefix(e, "%s: ", path);
        return e->code;
    }
    return OODSEG_OK;
}

void model_close(model *m) {
    if (!m) return;
    nn_bf16_weights *w = m->twin_of ? NULL : m->ctx.bf16_weights;   // (a twin's are its model's)
    if (m->destroy) m->destroy(m);
    nn_bf16_weights_free(w);
}

static void twin_destroy(model *m) {
    arena_free(m->arena);
    free(m);
}

int model_twin(const model *m, int threads, model **out, err *e) {
    *out = NULL;
    if (!m->shareable || m->twin_of)
        return err_set(e, OODSEG_E_ARG, "%s: this model cannot run forwards from two threads at once", m->desc.arch);
    if (m->ctx.precision != NN_FP32)
        return err_set(e, OODSEG_E_ARG, "%s: a bf16 model packs its weights on first use, so it cannot run "
                       "forwards from two threads at once", m->desc.arch);
    model *t = err_malloc(e, sizeof *t, "a model twin");
    if (!t) return e->code;
    *t = *m;
    t->ctx.threads = threads < 1 ? 1 : threads;
    t->ctx.prof = NULL;   // a profile's counters are not shared between threads
    t->arena = NULL;
    t->destroy = twin_destroy;
    t->twin_of = m;
    if (model_arena_open(t, e)) { free(t); return e->code; }
    model_twin_adopt_plan(t);
    *out = t;
    return OODSEG_OK;
}

int model_twin_adopt_plan(model *t) {
    // the model's plan, when it has run a forward: the twin's first forward of the same size then
    // runs from a slab instead of mapping and zeroing a block per request (ESPNetv2: 290 MB)
    return t && t->twin_of && arena_adopt_plan(t->arena, t->twin_of->arena);
}

int model_forward_image(model *m, const image *img, const char *size, const char *want,
                        tensor_list *out, err *e) {
    int iw, ih;
    if (preprocess_target_size(&m->desc.pre, img->w, img->h, size, &iw, &ih, e)) return e->code;
    if (model_check_memory(m, ih, iw, e)) return e->code;   // before the input is allocated
    float *input = err_malloc(e, (size_t)3 * iw * ih * sizeof(float), "the network input");   // (1, 3, ih, iw)
    if (!input) return e->code;
    int rc = preprocess_image(&m->ctx, &m->desc.pre, img, iw, ih, input, e);
    if (!rc) rc = model_forward(m, input, ih, iw, want, out, e);
    free(input);
    return rc;
}

uint64_t model_memory_needed(const model *m, int h, int w, uint64_t *activations) {
    const infer_cfg *c = &m->desc.infer;
    int slide = c->mode == INFER_SLIDE, wh = slide && c->crop_h < h ? c->crop_h : h, ww = slide && c->crop_w < w ? c->crop_w : w;
    uint64_t act = m->estimate ? m->estimate(m, wh, ww) : 0;
    uint64_t hw = (uint64_t)h * (uint64_t)w, whw = (uint64_t)wh * (uint64_t)ww;
    // the input and the logits at input size; in slide mode also a window's crop and logits, the
    // summed map and the count map (models/slide.c)
    uint64_t io = EST_F(3 * hw) + EST_F((uint64_t)m->desc.num_outputs * hw);
    if (slide) io += EST_F(3 * whw) + EST_F((uint64_t)m->desc.num_outputs * whw) + EST_F(hw);
    if (activations) *activations = act;
    return act + io + EST_F((uint64_t)(m->desc.num_params > 0 ? m->desc.num_params : 0));
}

int model_check_memory(const model *m, int h, int w, err *e) {
    uint64_t act = 0, need = model_memory_needed(m, h, w, &act);
    if (!m->max_memory || need <= m->max_memory) return OODSEG_OK;   // 0: a model made without model_from_ckpt
    char what[512], a[32];
    snprintf(what, sizeof what, "the forward pass of %s on a %dx%d (WxH) input (%s of activations, the rest "
             "weights, input and logits)", m->desc.arch, w, h, memlimit_str(act, a, sizeof a));
    return memlimit_check(need, m->max_memory, what, "use a smaller --size (e.g. half the width and height "
                          "needs about a quarter of the activations) or raise --max-memory", e);
}

int model_forward(model *m, const float *input, int h, int w, const char *want, tensor_list *out, err *e) {
    if (model_check_memory(m, h, w, e)) return e->code;
    if (m->desc.infer.mode == INFER_SLIDE) return slide_forward(m, input, h, w, want, out, e);
    return m->forward(m, input, h, w, want, out, e);
}

int model_set_id_channels(model_desc *d, const char *spec, err *e) {
    if (!spec || !*spec) return OODSEG_OK;
    int ids[256], n = 0;
    const char *p = spec;
    while (*p) {
        char *end;
        long a = strtol(p, &end, 10), b;
        if (end == p) goto bad;
        b = a;
        if (*end == '-') {
            const char *q = end + 1;
            b = strtol(q, &end, 10);
            if (end == q) goto bad;
        }
        if (a < 0 || b < a || b >= d->num_outputs)
            return err_set(e, OODSEG_E_ARG,
                           "--id-channels '%s': range %ld-%ld is outside the model's %d output channels (0..%d)",
                           spec, a, b, d->num_outputs, d->num_outputs - 1);
        for (long c = a; c <= b; c++) {
            if (n == 256) return err_set(e, OODSEG_E_ARG, "--id-channels '%s': more than 256 channels", spec);
            for (int i = 0; i < n; i++)
                if (ids[i] == c) return err_set(e, OODSEG_E_ARG, "--id-channels '%s': channel %ld given twice", spec, c);
            ids[n++] = (int)c;
        }
        if (*end == ',') end++;
        else if (*end) goto bad;
        p = end;
    }
    if (n == 0) goto bad;
    memcpy(d->id_channels, ids, (size_t)n * sizeof(int));
    d->num_id = n;
    return OODSEG_OK;
bad:
    return err_set(e, OODSEG_E_ARG, "--id-channels '%s': expected a list such as '0-18' or '0,1,5'", spec);
}

int model_wants(const char *want, const char *name) {
    if (!want || !*want) return 0;
    if (strcmp(want, "*") == 0) return 1;
    size_t n = strlen(name);
    for (const char *p = want; *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0) return 1;
        if (!c) break;
        p = c + 1;
    }
    return 0;
}

int model_emit(tensor_list *out, const char *want, const char *name, const float *x, int c, int h,
               int w, err *e) {
    if (!model_wants(want, name)) return OODSEG_OK;
    int64_t s[4] = {1, c, h, w};
    return tl_add_copy(out, name, 4, s, x, e) ? OODSEG_OK : e->code;
}

// Detach rather than copy: the caller's tensor needs fresh memory of its own either way (it
// outlives the next forward), so a copy would add a full read and write of the map to that same
// allocation. The arena's plan serves requests that were detached last time from system blocks of
// their own (arena.h), so handing one over costs nothing more than the allocation.
int model_give(nn_arena *a, tensor_list *out, const char *want, const char *name, float **buf, int c,
               int h, int w, err *e) {
    float *p = *buf;
    *buf = NULL;
    if (!model_wants(want, name)) { arena_release(a, p); return OODSEG_OK; }
    int64_t s[4] = {1, c, h, w};
    float *mine = arena_detach(a, p, e);
    if (!mine) return e->code;
    return tl_add_take(out, name, 4, s, mine, e) ? OODSEG_OK : e->code;   // frees it on failure
}

int model_arena_open(model *m, err *e) {
    return arena_create(&m->arena, m->ctx.device, e);
}
