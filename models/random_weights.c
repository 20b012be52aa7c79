// Random-weight models by architecture name (random_weights.h). Each architecture's key list
// comes from its binder given the released config (weights.h make_keys), never from a copy of the
// key names; this file only knows the configs' names and the value scales.
#include "random_weights.h"
#include "internimage.h"
#include "vit.h"
#include "dinov2.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char random_model_names[] =
    "internimage-{t,s,b,l,xl}-{cityscapes,ade20k}, espnet-{cityscapes,camvid}, "
    "espnetv2[-s{0.5,1.0,1.5,2.0}]-cityscapes, segformer-b{0,1,2,3,4,5}-{cityscapes,ade20k}, "
    "dinov2-vit{s,b,l,g}14-{ade20k,voc2012}[-ms]";

// ---- the values ----------------------------------------------------------------------------

// Uniform in [-0.5, 0.5) from a 32-bit LCG whose state the caller holds.
static float urand(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / 16777216.0f - 0.5f;
}

static int ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && !strcmp(s + n - m, tail);
}

// value = base + scale * U(-0.5, 0.5), by the kind of tensor the key names.
static void fill(const ckpt_entry *en, uint32_t *rng, float *buf) {
    int64_t fan_in = 1;
    for (int d = 1; d < en->ndim; d++) fan_in *= en->shape[d];
    float base = 0, scale = 2.0f * sqrtf(3.0f / (float)fan_in);       // conv / linear weights
    if (strstr(en->name, "running_var")) base = 1, scale = 0.2f;
    else if (strstr(en->name, "running_mean")) scale = 0.1f;
    else if (strstr(en->name, "gamma")) base = 0.5f, scale = 0.2f;                   // layer scale
    else if (en->ndim == 1 && ends_with(en->name, ".weight")) base = 1, scale = 0.2f;   // LN, BN, PReLU
    else if (en->ndim == 1) scale = 0.05f;                                               // biases
    else if (en->ndim == 3) scale = 0.2f;                             // ViT cls_token, pos_embed
    for (int64_t i = 0; i < en->numel; i++) buf[i] = base + scale * urand(rng);
}

ckpt *random_weights_fill(const ckpt *names, err *e) {
    ckpt *ck = ckpt_new_memory(e);
    uint32_t rng = 12345;
    float *buf = NULL;
    int64_t cap = 0;
    for (int k = 0; ck && k < names->n; k++) {
        const ckpt_entry *en = &names->e[k];
        int is_int = en->src_dtype > DT_F64;   // num_batches_tracked and other integer buffers
        if (en->numel > cap) {
            free(buf);
            cap = en->numel;
            if (!(buf = err_malloc(e, sizeof(float) * (size_t)cap, "random weights"))) break;
        }
        if (is_int) for (int64_t i = 0; i < en->numel; i++) buf[i] = 160000;
        else fill(en, &rng, buf);
        if (ckpt_add(ck, en->name, is_int ? en->src_dtype : DT_F32, en->ndim, en->shape, buf, e)) break;
    }
    free(buf);
    if (ck && e->code) { ckpt_close(ck); ck = NULL; }
    return ck;
}

// ---- the key lists of the architectures whose binders are public ---------------------------

// InternImage + UperNet with the auxiliary FCN head, as released. UperNet reads its width and
// class count from conv_seg's shape, so those two keys (and the auxiliary head's) are named first.
static int internimage_keys(ckpt *ck, const char *size, int num_classes, err *e) {
    internimage_arch a;
    if (internimage_arch_of(size, &a, e)) return e->code;
    const int64_t seg[4] = {num_classes, 512, 1, 1}, aux[4] = {256, 4 * a.channels, 3, 3},
                  aux_seg[4] = {num_classes, 256, 1, 1};
    if (ckpt_add(ck, "decode_head.conv_seg.weight", DT_F32, 4, seg, NULL, e) ||
        ckpt_add(ck, "auxiliary_head.convs.0.conv.weight", DT_F32, 4, aux, NULL, e) ||
        ckpt_add(ck, "auxiliary_head.conv_seg.weight", DT_F32, 4, aux_seg, NULL, e))
        return e->code;
    internimage net;
    upernet head;
    memset(&head, 0, sizeof head);
    wbind w;
    wb_init(&w, ck, e);
    w.make_keys = 1;
    int in_ch[4] = {a.channels, 2 * a.channels, 4 * a.channels, 8 * a.channels};
    if (!internimage_bind(&net, &w, &a)) upernet_bind(&head, &w, in_ch);
    internimage_free(&net);
    upernet_free(&head);
    return e->code;
}

// A DINOv2 backbone and its BNHead in one checkpoint: ms heads read the last DINO_TAPS blocks.
static int dinov2_keys(ckpt *ck, char size, int num_classes, int ms, err *e) {
    static const struct { char size; int dim, depth, swiglu; } sizes[] = {
        {'s', 384, 12, 0}, {'b', 768, 12, 0}, {'l', 1024, 24, 0}, {'g', 1536, 40, 1}};
    vit_arch a = {0};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        if (sizes[k].size == size) a.dim = sizes[k].dim, a.depth = sizes[k].depth, a.swiglu = sizes[k].swiglu;
    if (!a.dim) return err_set(e, OODSEG_E_ARG, "DINOv2 size '%c': the released sizes are s, b, l, g", size);
    a.heads = a.dim / 64;
    a.hidden = a.swiglu ? ((4 * a.dim * 2 / 3) + 7) / 8 * 8 : 4 * a.dim;   // SwiGLU: (int(4D*2/3)+7)//8*8
    a.grid = 37;                                                            // img_size 518 / 14
    vit v;
    wbind w;
    wb_init(&w, ck, e);
    w.make_keys = 1;
    if (!vit_bind(&v, &w, &a)) {
        int C = ms ? DINO_TAPS * a.dim : a.dim;
        bn_params bn;
        conv2d seg;
        wb_bn(&w, &bn, C, "decode_head.bn");
        wb_conv(&w, &seg, C, num_classes, 1, 1, 1, 1, "decode_head.conv_seg");
        wb_conv_bias(&w, &seg, "decode_head.conv_seg");
    }
    vit_free(&v);
    return e->code;
}

// ---- names -----------------------------------------------------------------------------------

static int classes_of(const char *dataset) {
    return !strcmp(dataset, "cityscapes") ? 19 : !strcmp(dataset, "ade20k") ? 150 : !strcmp(dataset, "voc2012") ? 21
         : !strcmp(dataset, "camvid") ? 12 : 0;
}

// The key list of `arch` into ck; 1 (nothing added) when the name is none of random_model_names.
static int make_keys(const char *arch, ckpt *ck, err *e) {
    char size[8], ds[16], ms[4] = "";
    int n;
    if (sscanf(arch, "internimage-%2[a-z]-%15[a-z0-9]%n", size, ds, &n) == 2 && !arch[n] &&
        classes_of(ds) && classes_of(ds) != 12 && classes_of(ds) != 21 && strcmp(size, "x"))
        return internimage_keys(ck, size, classes_of(ds), e);
    if (!strcmp(arch, "espnet-cityscapes") || !strcmp(arch, "espnet-camvid"))
        return espnet_keys(ck, 2, 8, strcmp(arch, "espnet-camvid") ? 20 : 12, e);   // p = 2, q = 8 as released
    if (!strcmp(arch, "espnetv2-cityscapes")) return espnetv2_keys(ck, 2.0, e);
    double s;
    if (sscanf(arch, "espnetv2-s%lf-cityscapes%n", &s, &n) == 1 && !arch[n] &&
        (s == 0.5 || s == 1.0 || s == 1.5 || s == 2.0) && strlen(arch) == strlen("espnetv2-s0.5-cityscapes"))
        return espnetv2_keys(ck, s, e);
    if (sscanf(arch, "segformer-b%1[0-5]-%15[a-z0-9]%n", size + 1, ds, &n) == 2 && !arch[n] &&
        (classes_of(ds) == 19 || classes_of(ds) == 150)) {
        size[0] = 'b';
        return segformer_keys(ck, size, classes_of(ds), e);
    }
    if (sscanf(arch, "dinov2-vit%1[sblg]14-%15[a-z0-9]%n", size, ds, &n) == 2 &&
        (!arch[n] || (!strcmp(arch + n, "-ms") && (ms[0] = 1))) &&
        (classes_of(ds) == 150 || classes_of(ds) == 21))
        return dinov2_keys(ck, size[0], classes_of(ds), ms[0], e);
    return 1;
}

int random_model_known(const char *arch) {
    err e = {0};
    ckpt *ck = ckpt_new_memory(&e);
    int rc = ck ? make_keys(arch, ck, &e) : 1;
    ckpt_close(ck);
    return rc == 0;
}

ckpt *random_ckpt(const char *arch, err *e) {
    ckpt *names = ckpt_new_memory(e);
    if (!names) return NULL;
    int rc = make_keys(arch, names, e);
    if (rc == 1)
        err_set(e, OODSEG_E_ARG, "'%s' is no architecture oodseg knows; random-weight architectures: %s", arch,
                random_model_names);
    ckpt *ck = rc ? NULL : random_weights_fill(names, e);
    ckpt_close(names);
    if (ck) snprintf(ck->path, sizeof ck->path, "%s (random weights)", arch);
    return ck;
}

int random_model_open(const char *arch, const nn_ctx *ctx, const model_options *opt, model **out, err *e) {
    *out = NULL;
    ckpt *ck = random_ckpt(arch, e);
    return ck ? model_from_ckpt(ck, ctx, opt, out, e) : e->code;
}
