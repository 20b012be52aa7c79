// DINOv2 + BNHead against the goldens made with the official code (golden/dinov2-tiny-linear,
// dinov2-tiny-ms: every intermediate of a whole-image forward, within 2e-5, the interpolated
// position embedding within 1e-5; docs/dinov2-segformer.md says why 1e-4 would be too loose),
// from the official two-file layout (.pth head + .pth backbone) and from model.safetensors; the
// position-embedding interpolation's cases the goldens do not reach (upsampling, the skip branch);
// recognition of every released size/head/dataset from the manifests' names and shapes, with one
// clear error per way of breaking a pair; the slide and TTA goldens (skipped, with the reason, while
// the engine has no slide mode); and `oodseg score` / `eval` end to end on the tiny model.
#include "test.h"
#include "../models/vit.h"
#include "../models/dinov2.h"
#include "../models/tta.h"
#include "../api/pipeline.h"
#include "../core/json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static nn_ctx T;

static const char *const variants[2] = {"dinov2-tiny-linear", "dinov2-tiny-ms"};
static const char *const head_files[2] = {"dinov2_tiny14_ade20k_linear_head.pth", "dinov2_tiny14_ade20k_ms_head.pth"};

// golden name -> the model's output name
static const struct { const char *golden, *ours; } names[] = {
    {"whole.padded", "padded"}, {"whole.patch_embed", "backbone.patch_embed"},
    {"whole.pos_embed", "backbone.pos_embed"}, {"whole.tokens_in", "backbone.tokens_in"},
    {"whole.b0.norm1", "backbone.b0.norm1"}, {"whole.b0.attn", "backbone.b0.attn"},
    {"whole.b0.res1", "backbone.b0.res1"}, {"whole.b0.mlp", "backbone.b0.mlp"},
    {"whole.block0", "backbone.block0"}, {"whole.block1", "backbone.block1"},
    {"whole.block2", "backbone.block2"}, {"whole.block3", "backbone.block3"},
    {"whole.feat0", "backbone.feat0"}, {"whole.feat1", "backbone.feat1"},
    {"whole.feat2", "backbone.feat2"}, {"whole.feat3", "backbone.feat3"},
    {"whole.head.in", "head.in"}, {"whole.head.bn", "head.bn"}, {"whole.head.logits", "head.logits"},
    {"whole.logits_input_res", "logits"},
};

// Opens variant v from its two .pth files (two_files) or from model.safetensors; NULL + SKIP-able.
static model *open_variant(int v, int two_files, err *e) {
    char rel[160];
    model_options opt = {0};
    if (two_files) {
        snprintf(rel, sizeof rel, "golden/%s/dinov2_tiny14_pretrain.pth", variants[v]);
        const char *bb = t_asset(rel);
        if (!bb) return NULL;
        static char bbpath[1024];
        snprintf(bbpath, sizeof bbpath, "%s", bb);
        opt.backbone = bbpath;
        snprintf(rel, sizeof rel, "golden/%s/%s", variants[v], head_files[v]);
    } else {
        snprintf(rel, sizeof rel, "golden/%s/model.safetensors", variants[v]);
    }
    const char *path = t_asset(rel);
    if (!path) return NULL;
    model *m = NULL;
    if (model_open(path, &T, &opt, &m, e)) return NULL;
    return m;
}

static void check_whole(int v, int two_files) {
    char rel[160];
    snprintf(rel, sizeof rel, "golden/%s/io.safetensors", variants[v]);
    ASSET_OR_SKIP(io_path, rel);
    err e = {0};
    model *m = open_variant(v, two_files, &e);
    REQUIRE(m, "%s", e.code ? e.msg : "missing asset");
    ckpt *io = NULL;
    REQUIRE(ckpt_open(io_path, &io, &e) == OODSEG_OK, "%s", e.msg);
    const ckpt_entry *in = ckpt_find(io, "input");
    REQUIRE(in && in->f32, "no input");
    int h = (int)in->shape[2], w = (int)in->shape[3];
    tensor_list out = {0};
    REQUIRE(m->forward(m, in->f32, h, w, "*", &out, &e) == OODSEG_OK, "%s", e.msg);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const ckpt_entry *g = ckpt_find(io, names[i].golden);
        const tensor *t = tl_get(&out, names[i].ours);
        CHECK(g && t, "%s / %s missing", names[i].golden, names[i].ours);
        if (!g || !t) continue;
        CHECK(tensor_numel(t) == g->numel, "%s: %lld values, golden %lld", names[i].ours, (long long)tensor_numel(t),
              (long long)g->numel);
        if (tensor_numel(t) != g->numel) continue;
        double tol = strstr(names[i].golden, "pos_embed") ? 1e-5 : 2e-5;
        double d = t_max_abs_diff(t->data, g->f32, g->numel);
        CHECK(d <= tol, "%s: max |diff| %.3g > %.0e", names[i].golden, d, tol);
    }
    // The pipeline's last step (A.7 'whole'): the logits bilinearly to the original image size.
    const ckpt_entry *gl = ckpt_find(io, "whole.logits");
    const tensor *lg = tl_get(&out, "logits");
    if (gl && lg) {
        int oh = (int)gl->shape[2], ow = (int)gl->shape[3], nc = (int)gl->shape[1];
        float *r = malloc(sizeof(float) * (size_t)gl->numel);
        resize_bilinear(&T, lg->data, nc, h, w, r, oh, ow, 0);
        double d = t_max_abs_diff(r, gl->f32, gl->numel);
        CHECK(d <= 2e-5, "whole.logits: max |diff| %.3g", d);
        free(r);
    }
    // A second forward runs from the arena's plan and gives the same bits.
    tensor_list again = {0};
    REQUIRE(m->forward(m, in->f32, h, w, "logits", &again, &e) == OODSEG_OK, "%s", e.msg);
    CHECK(memcmp(tl_get(&again, "logits")->data, lg->data, sizeof(float) * (size_t)tensor_numel(lg)) == 0,
          "second forward differs");
    tl_free(&again);
    tl_free(&out);
    ckpt_close(io);
    model_close(m);
}

TEST(linear_whole_from_pth_pair) { check_whole(0, 1); }
TEST(linear_whole_from_safetensors) { check_whole(0, 0); }
TEST(ms_whole_from_pth_pair) { check_whole(1, 1); }
TEST(ms_whole_from_safetensors) { check_whole(1, 0); }

// The forward gives the same bits on 1 and 3 threads (every op is thread-count invariant), on an
// input whose grid is not the stored 37 x 37 (the interpolation runs) and crosses attention blocks.
TEST(threads_bit_identical) {
    err e = {0};
    model *m = open_variant(1, 0, &e);
    if (!m && !e.code) SKIP("missing asset golden/%s/model.safetensors", variants[1]);
    REQUIRE(m, "%s", e.msg);
    int h = 150, w = 200;   // 11 x 15 patches: 166 tokens, three 64-row query blocks
    float *x = malloc(sizeof(float) * 3 * h * w);
    for (int i = 0; i < 3 * h * w; i++) x[i] = (float)sin(0.013 * i) * 2.0f;
    tensor_list a = {0}, b = {0};
    nn_ctx_init(&m->ctx, 1);
    REQUIRE(m->forward(m, x, h, w, "logits,backbone.feat3", &a, &e) == OODSEG_OK, "%s", e.msg);
    nn_ctx_init(&m->ctx, 3);
    REQUIRE(m->forward(m, x, h, w, "logits,backbone.feat3", &b, &e) == OODSEG_OK, "%s", e.msg);
    for (int i = 0; i < 2; i++)
        CHECK(a.t[i].data && tensor_numel(&a.t[i]) == tensor_numel(&b.t[i]) &&
              !memcmp(a.t[i].data, b.t[i].data, sizeof(float) * (size_t)tensor_numel(&a.t[i])), "%s differs", a.t[i].name);
    CHECK(tl_get(&a, "logits")->shape[2] == h && tl_get(&a, "backbone.feat3")->shape[3] == 15, "shapes");
    tl_free(&a);
    tl_free(&b);
    free(x);
    model_close(m);
}

// The first slide window (rows 0..31, columns 0..31 of the input) is a whole forward of that crop:
// padded to 42 x 42 (3 x 3 patches, the position embedding interpolated 37 -> 3), its taps, head and
// logits at crop size. Needs no slide mode.
static void check_first_window(int v) {
    char rel[160];
    snprintf(rel, sizeof rel, "golden/%s/io.safetensors", variants[v]);
    ASSET_OR_SKIP(io_path, rel);
    err e = {0};
    model *m = open_variant(v, 1, &e);
    REQUIRE(m, "%s", e.code ? e.msg : "missing asset");
    ckpt *io = NULL;
    REQUIRE(ckpt_open(io_path, &io, &e) == OODSEG_OK, "%s", e.msg);
    const ckpt_entry *in = ckpt_find(io, "input"), *win = ckpt_find(io, "slide.windows");
    REQUIRE(in && in->f32 && win && win->raw, "no input or window list");
    const int64_t *w0 = win->raw;   // y1, y2, x1, x2
    int h = (int)in->shape[2], w = (int)in->shape[3], ch = (int)(w0[1] - w0[0]), cw = (int)(w0[3] - w0[2]);
    REQUIRE(w0[0] == 0 && w0[2] == 0, "the first window starts at the origin");
    float *crop = malloc(sizeof(float) * 3 * ch * cw);
    crop_topleft(&T, in->f32, 3, h, w, crop, ch, cw);
    tensor_list out = {0};
    REQUIRE(m->forward(m, crop, ch, cw, "padded,backbone.feat3,head.logits,logits", &out, &e) == OODSEG_OK, "%s", e.msg);
    static const struct { const char *golden, *ours; } wn[] = {
        {"slide.w0.padded", "padded"}, {"slide.w0.feat3", "backbone.feat3"},
        {"slide.w0.head.logits", "head.logits"}, {"slide.w0.logits_crop", "logits"},
    };
    for (int i = 0; i < 4; i++) {
        const ckpt_entry *g = ckpt_find(io, wn[i].golden);
        const tensor *t = tl_get(&out, wn[i].ours);
        CHECK(g && t && tensor_numel(t) == g->numel, "%s: missing or another size", wn[i].golden);
        if (g && t && tensor_numel(t) == g->numel) {
            double d = t_max_abs_diff(t->data, g->f32, g->numel);
            CHECK(d <= 2e-5, "%s: max |diff| %.3g", wn[i].golden, d);
        }
    }
    free(crop);
    tl_free(&out);
    ckpt_close(io);
    model_close(m);
}

TEST(linear_first_slide_window) { check_first_window(0); }
TEST(ms_first_slide_window) { check_first_window(1); }

// The stitched slide forward (crop 32, stride 21: 2 x 3 windows) needs the engine's sliding-window
// mode (models/slide.h, from the SegFormer branch); compiled in when it is there.
#if __has_include("../models/slide.h")
#include "../models/slide.h"
static void check_slide(int v, int two_files) {
    char rel[160];
    snprintf(rel, sizeof rel, "golden/%s/io.safetensors", variants[v]);
    ASSET_OR_SKIP(io_path, rel);
    err e = {0};
    model *m = open_variant(v, two_files, &e);
    REQUIRE(m, "%s", e.code ? e.msg : "missing asset");
    ckpt *io = NULL;
    REQUIRE(ckpt_open(io_path, &io, &e) == OODSEG_OK, "%s", e.msg);
    const ckpt_entry *in = ckpt_find(io, "input"), *gl = ckpt_find(io, "slide.logits");
    REQUIRE(in && in->f32 && gl, "no input or slide.logits");
    int h = (int)in->shape[2], w = (int)in->shape[3];
    m->desc.infer = (infer_cfg){INFER_SLIDE, 32, 32, 21, 21};
    tensor_list out = {0};
    REQUIRE(slide_forward(m, in->f32, h, w, "logits,slide.count", &out, &e) == OODSEG_OK, "%s", e.msg);
    static const struct { const char *golden, *ours; } sn[] = {
        {"slide.count", "slide.count"}, {"slide.logits_input_res", "logits"},
    };
    for (int i = 0; i < 2; i++) {
        const ckpt_entry *g = ckpt_find(io, sn[i].golden);
        const tensor *t = tl_get(&out, sn[i].ours);
        CHECK(g && t && tensor_numel(t) == g->numel, "%s: missing or another size", sn[i].golden);
        if (g && t && tensor_numel(t) == g->numel) {
            double d = t_max_abs_diff(t->data, g->f32, g->numel);
            CHECK(d <= 2e-5, "%s: max |diff| %.3g", sn[i].golden, d);
        }
    }
    const tensor *lg = tl_get(&out, "logits");
    if (lg) {
        float *r = malloc(sizeof(float) * (size_t)gl->numel);
        resize_bilinear(&T, lg->data, (int)gl->shape[1], h, w, r, (int)gl->shape[2], (int)gl->shape[3], 0);
        double d = t_max_abs_diff(r, gl->f32, gl->numel);
        CHECK(d <= 2e-5, "slide.logits: max |diff| %.3g", d);
        free(r);
    }
    tl_free(&out);
    ckpt_close(io);
    model_close(m);
}
TEST(linear_slide_from_pth_pair) { check_slide(0, 1); }
TEST(linear_slide_from_safetensors) { check_slide(0, 0); }
TEST(ms_slide_from_pth_pair) { check_slide(1, 1); }
TEST(ms_slide_from_safetensors) { check_slide(1, 0); }
#else
TEST(linear_slide_from_pth_pair) { SKIP("this build has no slide mode (models/slide.h, the SegFormer branch)"); }
TEST(linear_slide_from_safetensors) { SKIP("this build has no slide mode (models/slide.h, the SegFormer branch)"); }
TEST(ms_slide_from_pth_pair) { SKIP("this build has no slide mode (models/slide.h, the SegFormer branch)"); }
TEST(ms_slide_from_safetensors) { SKIP("this build has no slide mode (models/slide.h, the SegFormer branch)"); }
#endif

// The 'ms' heads' test-time augmentation: mean softmax over (ratio 1.0, 1.32) x (no flip, flip) of
// slide forwards (crop 32, stride 21), at the original 60 x 80; the golden's keep-ratio scale is
// (99999999, 48), standing for 512.
#if __has_include("../models/slide.h")
TEST(ms_tta_golden) {
    ASSET_OR_SKIP(io_path, "golden/dinov2-tiny-ms/io.safetensors");
    err e = {0};
    model *m = open_variant(1, 1, &e);
    REQUIRE(m, "%s", e.code ? e.msg : "missing asset");
    ckpt *io = NULL;
    REQUIRE(ckpt_open(io_path, &io, &e) == OODSEG_OK, "%s", e.msg);
    const ckpt_entry *im = ckpt_find(io, "image"), *gp = ckpt_find(io, "tta.probs");
    REQUIRE(im && im->raw && gp, "no image or tta.probs");
    int H = (int)im->shape[2], W = (int)im->shape[3];
    image img = {W, H, 3, malloc((size_t)3 * H * W)};
    const uint8_t *px = im->raw;   // (1, 3, H, W) planes -> interleaved RGB
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < H * W; i++) img.px[i * 3 + c] = px[(size_t)c * H * W + i];
    m->desc.pre.size_h = 48;
    m->desc.infer = (infer_cfg){INFER_SLIDE, 32, 32, 21, 21};
    const float ratios[2] = {1.0f, 1.32f};
    float *probs = NULL;
    REQUIRE(model_tta_probs(m, &img, ratios, 2, 1, slide_forward, &probs, &e) == OODSEG_OK, "%s", e.msg);
    double d = t_max_abs_diff(probs, gp->f32, gp->numel);
    CHECK(d <= 2e-5, "tta.probs: max |diff| %.3g", d);
    free(probs);
    // The pipeline's --tta: the methods see log(mean softmax) over the configs' five ratios with
    // flips, so MSP is 1 - the largest mean probability; methods reading taps are refused.
    const float five[5] = {1.0f, 1.32f, 1.73f, 2.28f, 3.0f};
    REQUIRE(model_tta_probs(m, &img, five, 5, 1, model_forward, &probs, &e) == OODSEG_OK, "%s", e.msg);
    pipeline p;
    pipeline_out po;
    REQUIRE(pipeline_attach(&p, m, NULL, "msp", NULL, &e) == OODSEG_OK, "%s", e.msg);
    REQUIRE(pipeline_use_tta(&p, &e) == OODSEG_OK, "%s", e.msg);
    REQUIRE(pipeline_run(&p, &img, &po, &e) == OODSEG_OK, "%s", e.msg);
    double worst = 0;
    int C = m->desc.num_outputs;
    for (int i = 0; i < H * W; i++) {
        double mx = 0;
        for (int c = 0; c < C; c++) mx = fmax(mx, probs[(size_t)c * H * W + i]);
        worst = fmax(worst, fabs(po.scores[0][i] - (1 - mx)));
    }
    CHECK(worst <= 1e-5, "--tta msp vs 1 - max mean probability: max |diff| %.3g", worst);
    pipeline_out_free(&po);
    pipeline_close(&p);
    REQUIRE(pipeline_attach(&p, m, NULL, "kmeans", NULL, &e) == OODSEG_OK, "%s", e.msg);
    CHECK(pipeline_use_tta(&p, &e) == OODSEG_E_ARG && strstr(e.msg, "kmeans"), "%s", e.msg);
    pipeline_close(&p);
    free(probs);
    free(img.px);
    ckpt_close(io);
    model_close(m);
}
#else
TEST(ms_tta_golden) { SKIP("this build has no slide mode (models/slide.h): the TTA golden runs slide forwards"); }
#endif

// ---- position embedding -------------------------------------------------------------------------

// The interpolation of A.3 in double, written from the spec: src = (o + 0.5) * M/(n + 0.1) - 0.5.
static void ref_taps(int o, int n, int M, int idx[4], double wt[4]) {
    double src = (o + 0.5) * M / (n + 0.1) - 0.5, f = floor(src), t = src - f, A = -0.75;
    double x[4] = {t + 1, t, 1 - t, 2 - t};
    for (int k = 0; k < 4; k++) {
        double a = fabs(x[k]);
        wt[k] = a <= 1 ? ((A + 2) * a - (A + 3)) * a * a + 1 : ((A * a - 5 * A) * a + 8 * A) * a - 4 * A;
        int i = (int)f - 1 + k;
        idx[k] = i < 0 ? 0 : i >= M ? M - 1 : i;
    }
}

TEST(pos_embed_up_and_down_and_skip) {
    int M = 5, D = 3;
    float *pos = malloc(sizeof(float) * (1 + M * M) * D);
    for (int i = 0; i < (1 + M * M) * D; i++) pos[i] = (float)sin(0.37 * i) * 2.0f;
    vit v;
    memset(&v, 0, sizeof v);
    v.a.dim = D, v.a.grid = M;
    v.pos_embed = pos;
    static const int sizes[][2] = {{5, 5}, {3, 4}, {8, 11}, {5, 7}, {1, 1}, {12, 12}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int h = sizes[s][0], w = sizes[s][1];
        float *pe = malloc(sizeof(float) * (1 + h * w) * D);
        vit_pos_embed(&T, &v, h, w, pe);
        double worst = 0.0;
        for (int c = 0; c < D; c++) worst = fmax(worst, fabs(pe[c] - pos[c]));   // the cls row
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int iy[4], ix[4];
                double wy[4], wx[4];
                ref_taps(y, h, M, iy, wy);
                ref_taps(x, w, M, ix, wx);
                for (int c = 0; c < D; c++) {
                    double r = 0.0;
                    if (h == M && w == M) r = pos[(1 + y * M + x) * D + c];   // skip branch: stored as is
                    else
                        for (int a = 0; a < 4; a++)
                            for (int b = 0; b < 4; b++) r += wy[a] * wx[b] * pos[(1 + iy[a] * M + ix[b]) * D + c];
                    worst = fmax(worst, fabs(pe[(1 + y * w + x) * D + c] - r));
                }
            }
        CHECK(worst <= 1e-5, "%dx%d from %dx%d: max |diff| %.3g", h, w, M, M, worst);
        free(pe);
    }
    free(pos);
}

// ---- recognition from the manifests --------------------------------------------------------------

typedef struct manifest { json *j; const json *keys, *heads; } manifest;

static int manifest_load(const char *path, manifest *mf, err *e) {
    memset(mf, 0, sizeof *mf);
    size_t n;
    char *buf = t_slurp(path, &n);
    if (!buf) return err_set(e, OODSEG_E_IO, "cannot read %s", path);
    mf->j = json_parse(buf, n, path, e);
    free(buf);
    if (!mf->j) return e->code;
    mf->keys = json_get(mf->j, "keys");
    mf->heads = json_get(mf->j, "heads");
    if (!mf->keys || !mf->heads) return err_set(e, OODSEG_E_FORMAT, "%s: no keys or heads", path);
    return OODSEG_OK;
}

// A names-and-shapes checkpoint from a manifest key list, leaving out `skip`, growing the first
// dimension of `reshape` by one, adding `extra`.
static ckpt *keys_ckpt(const json *keys, const char *skip, const char *reshape, const char *extra, err *e) {
    ckpt *ck = ckpt_new_memory(e);
    if (!ck) return NULL;
    for (int k = 0; k < keys->n; k++) {
        const json *it = &keys->items[k];
        const char *name = json_get(it, "name")->str;
        const json *sh = json_get(it, "shape");
        if (skip && !strcmp(name, skip)) continue;
        int64_t shape[8];
        for (int d = 0; d < sh->n; d++) shape[d] = sh->items[d].i64;
        if (reshape && !strcmp(name, reshape)) shape[0]++;
        dtype t = !strcmp(json_get(it, "dtype")->str, "I64") ? DT_I64 : DT_F32;
        if (ckpt_add(ck, name, t, sh->n, shape, NULL, e)) { ckpt_close(ck); return NULL; }
    }
    if (extra && ckpt_add(ck, extra, DT_F32, 1, (int64_t[]){7}, NULL, e)) { ckpt_close(ck); return NULL; }
    return ck;
}

static int describe(const manifest *bb, const json *head_keys, const char *bb_skip, const char *head_reshape,
                    model_desc *d, err *e) {
    ckpt *b = keys_ckpt(bb->keys, bb_skip, NULL, NULL, e), *h = b ? keys_ckpt(head_keys, NULL, head_reshape, NULL, e) : NULL;
    int rc = h ? dinov2_describe(h, b, NULL, d, e) : e->code;
    ckpt_close(b);
    ckpt_close(h);
    return rc;
}

static const char *const sizes[4] = {"s", "b", "l", "g"};

TEST(manifests_recognised) {
    for (int s = 0; s < 4; s++) {
        char rel[96];
        snprintf(rel, sizeof rel, "golden/manifest-dinov2-vit%s14.json", sizes[s]);
        ASSET_OR_SKIP(path, rel);
        manifest mf;
        err e = {0};
        REQUIRE(manifest_load(path, &mf, &e) == OODSEG_OK, "%s", e.msg);
        int64_t bb_params = json_get(mf.j, "num_parameters")->i64;
        for (int hI = 0; hI < mf.heads->n; hI++) {
            const json *hd = &mf.heads->items[hI];
            const char *kind = mf.heads->keys[hI];   // "ade20k_linear", ...
            model_desc d;
            int rc = describe(&mf, json_get(hd, "keys"), NULL, NULL, &d, &e);
            CHECK(rc == OODSEG_OK, "vit%s14 %s: %s", sizes[s], kind, e.msg);
            if (rc) continue;
            char arch[48];
            int ms = strstr(kind, "_ms") != NULL, ade = strstr(kind, "ade20k") != NULL;
            snprintf(arch, sizeof arch, "dinov2-vit%s14+%s", sizes[s], ms ? "ms" : "linear");
            CHECK(!strcmp(d.arch, arch), "%s %s: arch %s, expected %s", path, kind, d.arch, arch);
            CHECK(!strcmp(d.dataset, ade ? "ade20k" : "voc2012"), "%s: dataset %s", kind, d.dataset);
            int nc = (int)json_get(hd, "num_classes")->i64;
            CHECK(d.num_outputs == nc && d.num_id == nc, "%s: %d outputs", kind, d.num_outputs);
            // The backbone's learnable parameters (mask_token included, as the manifest counts them),
            // plus the head's weight, bias and conv_seg.
            int64_t C = json_get(hd, "channels")->i64;
            CHECK(d.num_params == bb_params + 2 * C + (int64_t)nc * C + nc, "%s %s: %lld parameters", sizes[s], kind,
                  (long long)d.num_params);
            CHECK(!strcmp(d.default_taps, "backbone.feat3") && d.taps[3].channels == json_get(json_get(mf.j, "config"), "embed_dim")->i64,
                  "%s: taps %s", kind, d.default_taps);
        }
        json_free(mf.j);
    }
}

// Each way of breaking a pair has its own message.
TEST(manifest_errors_are_clear) {
    ASSET_OR_SKIP(ps, "golden/manifest-dinov2-vits14.json");
    ASSET_OR_SKIP(pl, "golden/manifest-dinov2-vitl14.json");
    manifest s, l;
    err e = {0};
    REQUIRE(manifest_load(ps, &s, &e) == OODSEG_OK && manifest_load(pl, &l, &e) == OODSEG_OK, "%s", e.msg);
    const json *s_lin = json_get(json_get(s.heads, "ade20k_linear"), "keys");
    const json *l_ms = json_get(json_get(l.heads, "voc2012_ms"), "keys");
    model_desc d;
    // a missing key
    CHECK(describe(&s, s_lin, "blocks.7.attn.proj.bias", NULL, &d, &e) == OODSEG_E_MODEL);
    CHECK(strstr(e.msg, "blocks.7.attn.proj.bias") && strstr(e.msg, "missing"), "missing key: %s", e.msg);
    // a wrong shape in the head
    CHECK(describe(&s, s_lin, NULL, "decode_head.bn.running_var", &d, &e) == OODSEG_E_MODEL);
    CHECK(strstr(e.msg, "decode_head.bn.running_var") && strstr(e.msg, "[385]"), "wrong shape: %s", e.msg);
    // a ViT-L head on a ViT-S backbone
    CHECK(describe(&s, l_ms, NULL, NULL, &d, &e) == OODSEG_E_MODEL);
    CHECK(strstr(e.msg, "mismatched DINOv2 pair") && strstr(e.msg, "4096"), "mismatch: %s", e.msg);
    // an unknown extra key in the backbone
    ckpt *b = keys_ckpt(s.keys, NULL, NULL, "blocks.0.attn.rel_pos", &e), *h = keys_ckpt(s_lin, NULL, NULL, NULL, &e);
    CHECK(dinov2_describe(h, b, NULL, &d, &e) == OODSEG_E_MODEL && strstr(e.msg, "blocks.0.attn.rel_pos"), "%s", e.msg);
    ckpt_close(h);
    // the backbone alone, given as the model
    err e2 = {0};
    model *m = NULL;
    CHECK(model_from_ckpt(b, &T, NULL, &m, &e2) == OODSEG_E_MODEL && strstr(e2.msg, "--backbone"), "%s", e2.msg);
    // a head without --backbone
    h = keys_ckpt(s_lin, NULL, NULL, NULL, &e);
    CHECK(model_from_ckpt(h, &T, NULL, &m, &e2) == OODSEG_E_ARG && strstr(e2.msg, "--backbone"), "%s", e2.msg);
    // a names-and-shapes pair describes but does not run
    b = keys_ckpt(s.keys, NULL, NULL, NULL, &e);
    h = keys_ckpt(s_lin, NULL, NULL, NULL, &e);
    CHECK(dinov2_create_pair(h, b, NULL, &m, &e2) == OODSEG_E_MODEL && strstr(e2.msg, "no weights"), "%s", e2.msg);
    json_free(s.j);
    json_free(l.j);
}

// ---- the CLI end to end ----------------------------------------------------------------------

static const char *cli;

// Removes the last comma-separated field of every line, in place.
static void drop_last_column(char *s) {
    char *w = s;
    for (char *line = s; *line;) {
        char *nl = strchr(line, '\n'), *end = nl ? nl : line + strlen(line), *c = end;
        while (c > line && *c != ',') c--;
        size_t n = (size_t)((c > line ? c : end) - line);
        memmove(w, line, n);
        w += n;
        *w++ = '\n';
        line = nl ? nl + 1 : end;
    }
    *w = 0;
}

static int run_score(const char *dir, const char *head, const char *bb, const char *img) {
    return t_sh("%s score --model %s --backbone %s --methods maxlogit,kmeans --threads 2 --out %s %s >/dev/null 2>%s/err.txt",
                cli, head, bb, dir, img, dir);
}

TEST(cli_score_and_eval) {
    ASSET_OR_SKIP(head, "golden/dinov2-tiny-linear/dinov2_tiny14_ade20k_linear_head.pth");
    char hb[1024];
    snprintf(hb, sizeof hb, "%s", head);
    ASSET_OR_SKIP(bb, "golden/dinov2-tiny-linear/dinov2_tiny14_pretrain.pth");
    char bbb[1024];
    snprintf(bbb, sizeof bbb, "%s", bb);
    ASSET_OR_SKIP(img, "golden/dinov2-tiny-linear/image.png");
    const char *tmp = t_tmpdir();
    char d1[512], d2[512];
    snprintf(d1, sizeof d1, "%s/dino1", tmp);
    snprintf(d2, sizeof d2, "%s/dino2", tmp);
    mkdir(d1, 0755);
    mkdir(d2, 0755);
    REQUIRE(run_score(d1, hb, bbb, img) == 0, "oodseg score failed (see %s/err.txt)", d1);
    REQUIRE(run_score(d2, hb, bbb, img) == 0, "oodseg score failed");
    static const char *const files[] = {"image_maxlogit_score.npy", "image_kmeans_score.npy"};
    for (int i = 0; i < 2; i++) {
        char a[600], b[600];
        snprintf(a, sizeof a, "%s/%s", d1, files[i]);
        snprintf(b, sizeof b, "%s/%s", d2, files[i]);
        size_t na, nb;
        char *x = t_slurp(a, &na), *y = t_slurp(b, &nb);
        CHECK(x && y, "%s missing", files[i]);
        // float32 (60, 80) after the .npy header: the image size
        if (x) CHECK(na > 16 && memmem(x, na < 128 ? na : 128, "(60, 80)", 8) != NULL, "%s: not a (60, 80) map", files[i]);
        if (x && y) CHECK(na == nb && memcmp(x, y, na) == 0, "%s: two runs differ", files[i]);
        free(x);
        free(y);
    }
    CHECK(t_sh("%s info %s --backbone %s | grep -q 'dinov2-custom(d48)+linear'", cli, hb, bbb) == 0, "info");
    // eval over the repository's demo frames (CamVid-OoD layout), twice: the same per-image metrics.
    char demo[1200];
    snprintf(demo, sizeof demo, "%s", cli);
    char *slash = strrchr(demo, '/');
    REQUIRE(slash, "CLI path %s", cli);
    strcpy(slash, "/../assets/demo");
    for (int r = 0; r < 2; r++)
        REQUIRE(t_sh("%s eval --model %s --backbone %s --size 224x168 --dataset camvid-ood:%s --methods maxlogit,kmeans "
                     "--threads 2 --no-html -o %s/ev%d >/dev/null 2>%s/err.txt", cli, hb, bbb, demo, tmp, r, d1) == 0,
                "oodseg eval failed (see %s/err.txt)", d1);
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/ev0/per_image.csv", tmp);
    snprintf(b, sizeof b, "%s/ev1/per_image.csv", tmp);
    size_t na, nb;
    char *x = t_slurp(a, &na), *y = t_slurp(b, &nb);
    CHECK(x && y && strstr(x, "kmeans") && strstr(x, "maxlogit"), "per_image.csv without both methods");
    if (x && y) {   // every column but the last, the seconds each image took
        drop_last_column(x);
        drop_last_column(y);
        CHECK(!strcmp(x, y), "two eval runs differ:\n%s\n%s", x, y);
    }
    free(x);
    free(y);
}

int main(int argc, char **argv) {
    nn_ctx_init(&T, 2);
    cli = t_cli_path(argv[0]);
    (void)argc;
    RUN(linear_whole_from_pth_pair);
    RUN(linear_whole_from_safetensors);
    RUN(ms_whole_from_pth_pair);
    RUN(ms_whole_from_safetensors);
    RUN(threads_bit_identical);
    RUN(linear_first_slide_window);
    RUN(ms_first_slide_window);
    RUN(linear_slide_from_pth_pair);
    RUN(linear_slide_from_safetensors);
    RUN(ms_slide_from_pth_pair);
    RUN(ms_slide_from_safetensors);
    RUN(ms_tta_golden);
    RUN(pos_embed_up_and_down_and_skip);
    RUN(manifests_recognised);
    RUN(manifest_errors_are_clear);
    RUN(cli_score_and_eval);
    return t_finish(argv[0]);
}
