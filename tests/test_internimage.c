// InternImage + UperNet against the golden tensors (tiny-t, tiny-l), recognition of the four
// real-size key manifests (names and shapes only) with one clear error per way of breaking them,
// the image-file path, odd input sizes and thread invariance.
#include "test.h"
#include "../models/internimage.h"
#include "../core/json.h"
#include "../io/image.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The context every op and model of this program runs on (main sets its threads).
static nn_ctx T;

static model *open_model(const char *path, const model_options *opt, err *e) {
    ckpt *ck = NULL;
    model *m = NULL;
    if (ckpt_open(path, &ck, e)) return NULL;
    if (!internimage_upernet_detect(ck)) {
        err_set(e, OODSEG_E_MODEL, "%s: not detected as InternImage + UperNet", path);
        ckpt_close(ck);
        return NULL;
    }
    if (internimage_upernet_create(ck, opt, &m, e)) return NULL;
    m->ctx = T;   // what model_from_ckpt does after create
    return m;
}

// Runs the model from the golden `input` with want "*" and compares every golden tensor.
static void check_golden(const char *variant, const char *file, double tol, double tol_early) {
    char rel[128];
    snprintf(rel, sizeof rel, "golden/%s/%s", variant, file);
    ASSET_OR_SKIP(mpath, rel);
    char mp[1024];
    snprintf(mp, sizeof mp, "%s", mpath);
    snprintf(rel, sizeof rel, "golden/%s/io.safetensors", variant);
    ASSET_OR_SKIP(iopath, rel);
    err e = {0};
    // tiny-l carries L's flags: as a custom post-norm size it gets offset_scale 2 without being told.
    model *m = open_model(mp, NULL, &e);
    REQUIRE(m, "%s", e.msg);
    ckpt *io = NULL;
    if (ckpt_open(iopath, &io, &e)) { model_close(m); REQUIRE(0, "%s", e.msg); }
    const ckpt_entry *in = ckpt_find(io, "input");
    REQUIRE(in && in->ndim == 4 && in->f32, "golden input");
    int h = (int)in->shape[2], w = (int)in->shape[3];
    tensor_list out = {0};
    int rc = m->forward(m, in->f32, h, w, "*", &out, &e);
    CHECK(rc == OODSEG_OK, "%s", e.msg);
    int compared = 0;
    for (int k = 0; rc == OODSEG_OK && k < io->n; k++) {
        const ckpt_entry *g = &io->e[k];
        if (!strcmp(g->name, "image") || !strcmp(g->name, "input")) continue;
        tensor *t = tl_get(&out, g->name);
        CHECK(t != NULL, "%s: no output '%s'", file, g->name);
        if (!t) continue;
        int same = t->ndim == g->ndim;
        for (int d = 0; same && d < g->ndim; d++) same = t->shape[d] == g->shape[d];
        CHECK(same, "%s: '%s' shape differs", file, g->name);
        if (!same) continue;
        double lim = (!strcmp(g->name, "stem.out") || !strncmp(g->name, "l0.b0.", 6)) ? tol_early : tol;
        double d = t_max_abs_diff(t->data, g->f32, g->numel);
        fprintf(stderr, "    %-10s %-16s %-24s max |diff| %.2e (limit %.0e)\n", variant, file, g->name, d, lim);
        CHECK(d <= lim, "%s %s: '%s' max abs diff %.3g > %.3g", variant, file, g->name, d, lim);
        compared++;
    }
    CHECK(compared == io->n - 2, "compared %d of %d golden tensors", compared, io->n - 2);
    // The model keeps what was asked for only: with no taps, just the logits.
    tl_free(&out);
    rc = m->forward(m, in->f32, h, w, NULL, &out, &e);
    CHECK(rc == OODSEG_OK && out.n == 1 && tl_get(&out, "logits"), "forward without taps: %d tensors", out.n);
    tl_free(&out);
    ckpt_close(io);
    model_close(m);
}

TEST(golden_tiny_t_safetensors) { check_golden("tiny-t", "model.safetensors", 1e-4, 1e-5); }
TEST(golden_tiny_t_pth) { check_golden("tiny-t", "model.pth", 1e-4, 1e-5); }
TEST(golden_tiny_t_legacy_pth) { check_golden("tiny-t", "model-legacy.pth", 1e-4, 1e-5); }
TEST(golden_tiny_l_safetensors) { check_golden("tiny-l", "model.safetensors", 5e-4, 1e-5); }
TEST(golden_tiny_l_pth) { check_golden("tiny-l", "model.pth", 5e-4, 1e-5); }
TEST(golden_tiny_l_legacy_pth) { check_golden("tiny-l", "model-legacy.pth", 5e-4, 1e-5); }

// image.png -> preprocess (native size) -> forward -> logits, against the golden logits.
static void check_image_path(const char *variant, double tol) {
    char rel[128];
    snprintf(rel, sizeof rel, "golden/%s/model.safetensors", variant);
    ASSET_OR_SKIP(mpath, rel);
    char mp[1024];
    snprintf(mp, sizeof mp, "%s", mpath);
    snprintf(rel, sizeof rel, "golden/%s/io.safetensors", variant);
    ASSET_OR_SKIP(iopath, rel);
    char iop[1024];
    snprintf(iop, sizeof iop, "%s", iopath);
    snprintf(rel, sizeof rel, "golden/%s/image.png", variant);
    ASSET_OR_SKIP(ipath, rel);
    err e = {0};
    model *m = open_model(mp, NULL, &e);
    REQUIRE(m, "%s", e.msg);
    image img = {0};
    ckpt *io = NULL;
    float *x = NULL;
    tensor_list out = {0};
    if (image_load_rgb(ipath, &img, &e) || ckpt_open(iop, &io, &e)) { CHECK(0, "%s", e.msg); goto done; }
    int ow, oh;
    if (preprocess_target_size(&m->desc.pre, img.w, img.h, "native", &ow, &oh, &e)) { CHECK(0, "%s", e.msg); goto done; }
    CHECK(ow == img.w && oh == img.h);
    x = malloc((size_t)3 * ow * oh * sizeof(float));
    if (!x || preprocess_image(&T, &m->desc.pre, &img, ow, oh, x, &e)) { CHECK(0, "%s", e.msg); goto done; }
    const ckpt_entry *gin = ckpt_find(io, "input"), *glog = ckpt_find(io, "logits");
    if (!gin || !glog || gin->numel != 3LL * ow * oh) { CHECK(0, "golden input/logits"); goto done; }
    double din = t_max_abs_diff(x, gin->f32, gin->numel);
    fprintf(stderr, "    %s image.png -> input max |diff| %.2e\n", variant, din);
    CHECK(din <= 1e-6, "input from image.png differs by %.3g", din);
    if (m->forward(m, x, oh, ow, NULL, &out, &e)) { CHECK(0, "%s", e.msg); goto done; }
    tensor *t = tl_get(&out, "logits");
    double d = t_max_abs_diff(t->data, glog->f32, glog->numel);
    int C = (int)glog->shape[1], n = ow * oh, differ = 0;
    for (int p = 0; p < n; p++) {
        int a = 0, b = 0;
        for (int c = 1; c < C; c++) {
            if (t->data[(size_t)c * n + p] > t->data[(size_t)a * n + p]) a = c;
            if (glog->f32[(size_t)c * n + p] > glog->f32[(size_t)b * n + p]) b = c;
        }
        differ += a != b;
    }
    fprintf(stderr, "    %s image.png -> logits max |diff| %.2e, argmax differs at %d of %d pixels\n",
            variant, d, differ, n);
    CHECK(d <= tol, "logits from image.png: max abs diff %.3g > %.3g", d, tol);
    CHECK(differ == 0, "argmax differs at %d pixels", differ);
done:
    tl_free(&out);
    free(x);
    image_free(&img);
    ckpt_close(io);
    model_close(m);
}

TEST(image_path_tiny_t) { check_image_path("tiny-t", 1e-4); }
TEST(image_path_tiny_l) { check_image_path("tiny-l", 5e-4); }

// ---- manifests -----------------------------------------------------------------------------

typedef struct manifest {
    json *j;
    const json *keys, *alt;
    int64_t num_parameters;
} manifest;

static int manifest_load(const char *path, manifest *mf, err *e) {
    memset(mf, 0, sizeof *mf);
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(e, OODSEG_E_IO, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n);
    size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    if (got != (size_t)n) { free(buf); return err_set(e, OODSEG_E_IO, "cannot read %s", path); }
    mf->j = json_parse(buf, (size_t)n, path, e);
    free(buf);
    if (!mf->j) return e->code;
    mf->keys = json_get(mf->j, "keys");
    mf->alt = json_get(mf->j, "alternative_shapes_if_num_classes_150");
    const json *np = json_get(mf->j, "num_parameters");
    if (!mf->keys || mf->keys->type != JSON_ARRAY || !np) return err_set(e, OODSEG_E_FORMAT, "%s: no keys", path);
    mf->num_parameters = np->i64;
    return OODSEG_OK;
}

// The manifest as a names-and-shapes checkpoint. skip: a key to leave out; reshape: a key whose
// first dimension grows by one; extra: a key to add; alt150: use the 150-class conv_seg shapes.
static ckpt *manifest_ckpt(const manifest *mf, const char *skip, const char *reshape, const char *extra,
                           int alt150, err *e) {
    ckpt *ck = ckpt_new_memory(e);
    if (!ck) return NULL;
    for (int k = 0; k < mf->keys->n; k++) {
        const json *it = &mf->keys->items[k];
        const char *name = json_get(it, "name")->str;
        const json *sh = json_get(it, "shape");
        const char *dt = json_get(it, "dtype")->str;
        if (skip && !strcmp(name, skip)) continue;
        int64_t shape[8];
        int nd = sh->n;
        for (int d = 0; d < nd; d++) shape[d] = sh->items[d].i64;
        const json *a = alt150 ? json_get(mf->alt, name) : NULL;
        if (a) for (int d = 0; d < a->n; d++) shape[d] = a->items[d].i64;
        if (reshape && !strcmp(name, reshape)) shape[0]++;
        if (ckpt_add(ck, name, !strcmp(dt, "I64") ? DT_I64 : DT_F32, nd, shape, NULL, e)) { ckpt_close(ck); return NULL; }
    }
    if (extra && ckpt_add(ck, extra, DT_F32, 1, (int64_t[]){7}, NULL, e)) { ckpt_close(ck); return NULL; }
    return ck;
}

static void check_manifest(const char *file, const char *size, int channels, int depth2, int post_norm,
                           double offset_scale, const char *dataset, int classes) {
    char rel[128];
    snprintf(rel, sizeof rel, "golden/%s", file);
    ASSET_OR_SKIP(path, rel);
    err e = {0};
    manifest mf;
    REQUIRE(manifest_load(path, &mf, &e) == OODSEG_OK, "%s", e.msg);
    model_desc d;
    internimage_arch a;
    ckpt *ck = manifest_ckpt(&mf, NULL, NULL, NULL, 0, &e);
    if (!ck) { json_free(mf.j); REQUIRE(0, "%s", e.msg); }
    CHECK(internimage_upernet_detect(ck));
    int rc = internimage_upernet_describe(ck, NULL, &d, &a, &e);
    CHECK(rc == OODSEG_OK, "%s: %s", file, e.msg);
    if (rc == OODSEG_OK) {
        char arch[48];
        snprintf(arch, sizeof arch, "internimage-%s+upernet", size);
        CHECK(!strcmp(d.arch, arch), "arch %s", d.arch);
        CHECK(a.channels == channels && a.depths[2] == depth2 && a.post_norm == post_norm, "C %d", a.channels);
        CHECK(a.groups[0] == channels / 16 && a.groups[3] == channels / 2, "groups %d", a.groups[0]);
        CHECK(a.offset_scale == (float)offset_scale && a.layer_scale == 1);
        CHECK(!strcmp(d.dataset, dataset), "dataset %s", d.dataset);
        CHECK(d.num_outputs == classes && d.num_id == classes && d.id_channels[classes - 1] == classes - 1);
        // Learnable parameters: the manifest's count (running statistics are buffers, not parameters).
        CHECK(d.num_params == mf.num_parameters, "num_params %lld vs manifest %lld",
              (long long)d.num_params, (long long)mf.num_parameters);
        CHECK(d.pre.size_rule == SIZE_KEEP_RATIO && d.pre.interp == INTERP_CV_LINEAR_U8);
        if (!strcmp(dataset, "cityscapes")) CHECK(d.pre.size_w == 2048 && d.pre.size_h == 1024 && d.pre.size_divisor == 0);
        else CHECK(d.pre.size_w == (a.offset_scale == 2.0f ? 2560 : 2048) && d.pre.size_divisor == 32);
        CHECK(d.num_taps == 4 && d.taps[3].channels == 8 * channels && d.taps[3].stride == 32);
        fprintf(stderr, "    %s: %s, %s, %lld parameters\n", file, d.arch, d.title, (long long)d.num_params);
    }
    ckpt_close(ck);

    // Each way of breaking it gives its own error naming the key (and both shapes).
    const char *miss = "backbone.levels.2.blocks.3.dcn.mask.bias";
    ck = manifest_ckpt(&mf, miss, NULL, NULL, 0, &e);
    rc = ck ? internimage_upernet_describe(ck, NULL, &d, NULL, &e) : -1;
    CHECK(rc == OODSEG_E_MODEL && strstr(e.msg, miss) && strstr(e.msg, "missing"), "missing: %s", e.msg);
    fprintf(stderr, "    missing key -> %s\n", e.msg);
    ckpt_close(ck);
    ck = manifest_ckpt(&mf, NULL, NULL, "decode_head.extra_conv.weight", 0, &e);
    rc = ck ? internimage_upernet_describe(ck, NULL, &d, NULL, &e) : -1;
    CHECK(rc == OODSEG_E_MODEL && strstr(e.msg, "decode_head.extra_conv.weight") && strstr(e.msg, "unexpected"),
          "extra: %s", e.msg);
    fprintf(stderr, "    extra key   -> %s\n", e.msg);
    ckpt_close(ck);
    const char *bad = "decode_head.fpn_convs.1.conv.weight";
    ck = manifest_ckpt(&mf, NULL, bad, NULL, 0, &e);
    rc = ck ? internimage_upernet_describe(ck, NULL, &d, NULL, &e) : -1;
    CHECK(rc == OODSEG_E_MODEL && strstr(e.msg, bad) && strstr(e.msg, "[513, 512, 3, 3]") &&
          strstr(e.msg, "[512, 512, 3, 3]"), "shape: %s", e.msg);
    fprintf(stderr, "    wrong shape -> %s\n", e.msg);
    ckpt_close(ck);
    // The same for a backbone key: mlp.fc2 of stage 2 is (4C, 16C).
    const char *bad2 = "backbone.levels.2.blocks.3.mlp.fc2.weight";
    char have[48], need[48];
    snprintf(have, sizeof have, "[%d, %d]", 4 * channels + 1, 16 * channels);
    snprintf(need, sizeof need, "[%d, %d]", 4 * channels, 16 * channels);
    ck = manifest_ckpt(&mf, NULL, bad2, NULL, 0, &e);
    rc = ck ? internimage_upernet_describe(ck, NULL, &d, NULL, &e) : -1;
    CHECK(rc == OODSEG_E_MODEL && strstr(e.msg, bad2) && strstr(e.msg, have) && strstr(e.msg, need), "shape: %s", e.msg);
    fprintf(stderr, "    wrong shape -> %s\n", e.msg);
    ckpt_close(ck);

    // The 150-class head of the repository's Cityscapes configs: ADE20K unless told otherwise.
    if (mf.alt && !strcmp(dataset, "cityscapes")) {
        ck = manifest_ckpt(&mf, NULL, NULL, NULL, 1, &e);
        rc = ck ? internimage_upernet_describe(ck, NULL, &d, NULL, &e) : -1;
        CHECK(rc == OODSEG_OK && !strcmp(d.dataset, "ade20k") && d.num_outputs == 150, "%s", e.msg);
        model_options opt = {.id_channels = "0-18"};
        rc = ck ? internimage_upernet_describe(ck, &opt, &d, NULL, &e) : -1;
        CHECK(rc == OODSEG_OK && !strcmp(d.dataset, "cityscapes") && d.num_outputs == 150 && d.num_id == 19 &&
              d.pre.size_h == 1024 && d.pre.size_divisor == 0 && !strcmp(d.class_names[18], "bicycle"),
              "150-channel Cityscapes: %s %s", d.dataset, e.msg);
        fprintf(stderr, "    150 classes + --id-channels 0-18 -> %s\n", d.title);
        ckpt_close(ck);
    }
    json_free(mf.j);
}

TEST(manifest_t_cityscapes) { check_manifest("manifest-internimage-t-upernet-cityscapes.json", "t", 64, 18, 0, 1.0, "cityscapes", 19); }
TEST(manifest_t_ade20k) { check_manifest("manifest-internimage-t-upernet-ade20k.json", "t", 64, 18, 0, 1.0, "ade20k", 150); }
TEST(manifest_l_cityscapes) { check_manifest("manifest-internimage-l-upernet-cityscapes.json", "l", 160, 22, 1, 2.0, "cityscapes", 19); }
TEST(manifest_l_ade20k) { check_manifest("manifest-internimage-l-upernet-ade20k.json", "l", 160, 22, 1, 2.0, "ade20k", 150); }

// ---- tiny model: recognition flags, odd sizes, threads --------------------------------------

TEST(tiny_recognition) {
    ASSET_OR_SKIP(tpath, "golden/tiny-t/model.safetensors");
    err e = {0};
    ckpt *ck = NULL;
    REQUIRE(ckpt_open(tpath, &ck, &e) == OODSEG_OK, "%s", e.msg);
    model_desc d;
    internimage_arch a;
    int rc = internimage_upernet_describe(ck, NULL, &d, &a, &e);
    CHECK(rc == OODSEG_OK, "%s", e.msg);
    CHECK(a.channels == 16 && a.depths[0] == 1 && a.depths[2] == 2 && a.groups[3] == 8 && !a.post_norm);
    CHECK(!strcmp(d.arch, "internimage-custom(c16)+upernet") && !strcmp(d.dataset, "cityscapes"), "%s", d.arch);
    CHECK(d.num_id == 19 && !strcmp(d.class_names[0], "road"));
    fprintf(stderr, "    tiny-t: %s, %s\n", d.arch, d.title);
    ckpt_close(ck);
    ASSET_OR_SKIP(lpath, "golden/tiny-l/model.safetensors");
    REQUIRE(ckpt_open(lpath, &ck, &e) == OODSEG_OK, "%s", e.msg);
    // tiny-l: a custom post-norm size runs as L (offset_scale 2), and info says why
    rc = internimage_upernet_describe(ck, NULL, &d, &a, &e);
    CHECK(rc == OODSEG_OK && a.post_norm && !a.size && a.offset_scale == 2.0f && !strcmp(a.nearest, "l"), "%s", e.msg);
    CHECK(strstr(d.title, "L-like flags") && strstr(d.title, "offset_scale 2 (as L/XL: custom post-norm size"),
          "%s", d.title);
    fprintf(stderr, "    tiny-l: %s\n", d.title);
    // an explicit --offset-scale still wins
    model_options opt = {.offset_scale = 1.0};
    rc = internimage_upernet_describe(ck, &opt, &d, &a, &e);
    CHECK(rc == OODSEG_OK && a.offset_scale == 1.0f && strstr(d.title, "offset_scale 1 (--offset-scale)"), "%s", d.title);
    ckpt_close(ck);
}

// Strided convs round up, so any size runs; the outputs have the sizes PyTorch gives.
TEST(odd_input_size) {
    ASSET_OR_SKIP(path, "golden/tiny-t/model.safetensors");
    err e = {0};
    model *m = open_model(path, NULL, &e);
    REQUIRE(m, "%s", e.msg);
    int h = 37, w = 70;
    float *x = malloc((size_t)3 * h * w * sizeof(float));
    REQUIRE(x);
    for (int i = 0; i < 3 * h * w; i++) x[i] = (float)((i * 7919) % 255) / 64.0f - 2.0f;
    tensor_list out = {0};
    int rc = m->forward(m, x, h, w, "backbone.out0,backbone.out3,aux.logits", &out, &e);
    CHECK(rc == OODSEG_OK, "%s", e.msg);
    if (rc == OODSEG_OK) {
        tensor *l = tl_get(&out, "logits"), *o0 = tl_get(&out, "backbone.out0"), *o3 = tl_get(&out, "backbone.out3");
        CHECK(out.n == 4 && l && o0 && o3 && tl_get(&out, "aux.logits"));
        CHECK(l && l->shape[1] == 19 && l->shape[2] == h && l->shape[3] == w);
        CHECK(o0 && o0->shape[2] == 10 && o0->shape[3] == 18, "out0 %lldx%lld", (long long)o0->shape[2], (long long)o0->shape[3]);
        CHECK(o3 && o3->shape[2] == 2 && o3->shape[3] == 3);
        int finite = 1;
        for (int64_t i = 0; l && i < tensor_numel(l); i++) finite &= isfinite(l->data[i]);
        CHECK(finite);
    }
    tl_free(&out);
    // A 1x1 input shrinks every stage to 1x1.
    rc = m->forward(m, x, 1, 1, NULL, &out, &e);
    CHECK(rc == OODSEG_OK && tl_get(&out, "logits"), "%s", e.msg);
    tl_free(&out);
    free(x);
    model_close(m);
}

// Same logits, bit for bit, with 1 and 2 threads (every op splits work independently of the count).
TEST(thread_invariance) {
    ASSET_OR_SKIP(path, "golden/tiny-t/model.safetensors");
    ASSET_OR_SKIP(iopath, "golden/tiny-t/io.safetensors");
    err e = {0};
    char mp[1024];
    snprintf(mp, sizeof mp, "%s", path);
    ckpt *io = NULL;
    REQUIRE(ckpt_open(iopath, &io, &e) == OODSEG_OK, "%s", e.msg);
    model *m = open_model(mp, NULL, &e);
    if (!m) { ckpt_close(io); REQUIRE(0, "%s", e.msg); }
    const ckpt_entry *in = ckpt_find(io, "input");
    tensor_list a = {0}, b = {0};
    m->ctx.threads = 1;
    int rc = m->forward(m, in->f32, (int)in->shape[2], (int)in->shape[3], NULL, &a, &e);
    m->ctx.threads = 2;
    rc |= m->forward(m, in->f32, (int)in->shape[2], (int)in->shape[3], NULL, &b, &e);
    CHECK(rc == OODSEG_OK, "%s", e.msg);
    if (rc == OODSEG_OK) {
        tensor *x = tl_get(&a, "logits"), *y = tl_get(&b, "logits");
        CHECK(memcmp(x->data, y->data, (size_t)tensor_numel(x) * sizeof(float)) == 0,
              "1 vs 2 threads: max |diff| %.3g", t_max_abs_diff(x->data, y->data, tensor_numel(x)));
    }
    tl_free(&a);
    tl_free(&b);
    model_close(m);
    ckpt_close(io);
}

// A names-and-shapes checkpoint is recognised but cannot be run.
TEST(shapes_only_cannot_run) {
    ASSET_OR_SKIP(path, "golden/tiny-t/model.safetensors");
    err e = {0};
    ckpt *src = NULL;
    REQUIRE(ckpt_open(path, &src, &e) == OODSEG_OK, "%s", e.msg);
    ckpt *ck = ckpt_new_memory(&e);
    for (int k = 0; ck && k < src->n; k++)
        ckpt_add(ck, src->e[k].name, src->e[k].src_dtype, src->e[k].ndim, src->e[k].shape, NULL, &e);
    ckpt_close(src);
    REQUIRE(ck);
    model *m = NULL;
    int rc = internimage_upernet_create(ck, NULL, &m, &e);   // takes ck, also on failure
    CHECK(rc == OODSEG_E_MODEL && !m && strstr(e.msg, "no weights"), "%s", e.msg);
}

// The auxiliary head is training-only: without it the model loads and runs the same, and "*" then
// simply has no aux.logits.
TEST(without_auxiliary_head) {
    ASSET_OR_SKIP(path, "golden/tiny-t/model.safetensors");
    ASSET_OR_SKIP(iopath, "golden/tiny-t/io.safetensors");
    err e = {0};
    ckpt *src = NULL, *io = NULL;
    REQUIRE(ckpt_open(path, &src, &e) == OODSEG_OK, "%s", e.msg);
    if (ckpt_open(iopath, &io, &e)) { ckpt_close(src); REQUIRE(0, "%s", e.msg); }
    ckpt *ck = ckpt_new_memory(&e);
    for (int k = 0; ck && k < src->n; k++) {
        const ckpt_entry *en = &src->e[k];
        if (!strncmp(en->name, "auxiliary_head.", 15) || !en->f32) continue;
        if (ckpt_add(ck, en->name, DT_F32, en->ndim, en->shape, en->f32, &e)) { ckpt_close(ck); ck = NULL; }
    }
    ckpt_close(src);
    model *m = NULL;
    const ckpt_entry *in = ckpt_find(io, "input"), *gl = ckpt_find(io, "logits");
    if (!ck || internimage_upernet_create(ck, NULL, &m, &e)) { ckpt_close(io); REQUIRE(0, "%s", e.msg); }
    m->ctx = T;
    tensor_list out = {0};
    int rc = m->forward(m, in->f32, (int)in->shape[2], (int)in->shape[3], "*", &out, &e);
    CHECK(rc == OODSEG_OK && !tl_get(&out, "aux.logits") && tl_get(&out, "logits"), "%s", e.msg);
    if (rc == OODSEG_OK) CHECK(t_max_abs_diff(tl_get(&out, "logits")->data, gl->f32, gl->numel) <= 1e-4);
    tl_free(&out);
    rc = m->forward(m, in->f32, (int)in->shape[2], (int)in->shape[3], "aux.logits", &out, &e);
    CHECK(rc == OODSEG_E_ARG && strstr(e.msg, "auxiliary"), "%s", e.msg);
    tl_free(&out);
    model_close(m);
    ckpt_close(io);
}

// The registry finds the architecture by its keys; the desc says what was recognised.
TEST(registry_opens_tiny) {
    ASSET_OR_SKIP(path, "golden/tiny-t/model-legacy.pth");
    err e = {0};
    model *m = NULL;
    model_options opt = {.id_channels = "0,1,13"};
    REQUIRE(model_open(path, &T, &opt, &m, &e) == OODSEG_OK, "%s", e.msg);
    const model_desc *d = &m->desc;
    CHECK(!strcmp(d->arch, "internimage-custom(c16)+upernet") && d->num_outputs == 19, "%s", d->arch);
    CHECK(d->num_id == 3 && d->id_channels[2] == 13);
    CHECK(!strcmp(d->source_format, "torch-legacy"), "%s", d->source_format);
    CHECK(d->palette[13][2] == 142 && !strcmp(d->class_names[13], "car"));
    CHECK(d->pre.size_w == 2048 && d->pre.size_h == 1024 && d->pre.mean[0] == 123.675f && !d->pre.bgr);
    CHECK(!strcmp(d->default_taps, "backbone.out3") && d->logits_stride == 1);
    model_close(m);
}

// An input too large to allocate fails cleanly with OODSEG_E_NOMEM (the input itself is never
// read: the first stem buffer already cannot be had). Not under ASan, which aborts on such sizes.
TEST(allocation_failure_is_an_error) {
    if (t_sanitized()) SKIP("ASan refuses huge allocations by aborting");
    ASSET_OR_SKIP(path, "golden/tiny-t/model.safetensors");
    err e = {0};
    model *m = open_model(path, NULL, &e);
    REQUIRE(m, "%s", e.msg);
    float x[3] = {0};
    tensor_list out = {0};
    int rc = m->forward(m, x, 400000, 400000, "*", &out, &e);
    CHECK(rc == OODSEG_E_NOMEM && out.n == 0, "rc %d: %s", rc, e.msg);
    fprintf(stderr, "    %s\n", e.msg);
    tl_free(&out);
    model_close(m);
}

int main(int argc, char **argv) {
    nn_ctx_init(&T, 0);   // every core
    (void)argc;
    RUN(golden_tiny_t_safetensors);
    RUN(golden_tiny_t_pth);
    RUN(golden_tiny_t_legacy_pth);
    RUN(golden_tiny_l_safetensors);
    RUN(golden_tiny_l_pth);
    RUN(golden_tiny_l_legacy_pth);
    RUN(image_path_tiny_t);
    RUN(image_path_tiny_l);
    RUN(manifest_t_cityscapes);
    RUN(manifest_t_ade20k);
    RUN(manifest_l_cityscapes);
    RUN(manifest_l_ade20k);
    RUN(tiny_recognition);
    RUN(odd_input_size);
    RUN(thread_invariance);
    RUN(shapes_only_cannot_run);
    RUN(without_auxiliary_head);
    RUN(registry_opens_tiny);
    RUN(allocation_failure_is_an_error);
    return t_finish(argv[0]);
}
