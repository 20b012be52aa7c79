// ESPNet (Mehta et al., ECCV 2018), sacmehta/ESPNet at afe71c38, from the original legacy .pth files.
//
//   full ESPNet (pretrained/decoder/*.pth): encoder E1-E11 + decoder D1-D9, logits at input size;
//   ESPNet-C (pretrained/encoder/*.pth): encoder E1-E11 only, keys without the "encoder." prefix,
//            logits at s8 resized bilinearly (align_corners=True) to the input size.
//
// Step names (E1.., D1..) and the golden tensor names follow docs/espnet-espnetv2.md.
// p and q (ESP blocks at s4 and s8) and the class count C are read from the keys; the decoder wiring
// of the last CBR is read from conv.conv.weight: [C, 16+C] = test/Model.py (Cityscapes, concat with
// encoder.level1's output) or [C, 19+C] = train/Model.py (CamVid, concat with encoder.b1's output).
//
// Every conv that is directly followed by a BatchNorm (the CBRs) has the BN folded in at create time.
// BR blocks (BN -> PReLU on a concatenation, or after a residual add) run as batchnorm + PReLU, since
// there a sum or a concat of several convs sits between conv and BN. Concat producers write straight
// into their slice of the concat buffer. All BN eps = 1e-3.
#include "model.h"
#include "random_weights.h"
#include "br.h"
#include "../nn/prof.h"
#include "../nn/nn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ESP_EPS 1e-3f

// ---- ESP block (DilatedParllelResidualBlockB) and strided ESP (DownSamplerB) ------------------

typedef struct esp {
    int n_in, n_out, n, n1;  // n = floor(nOut/5), n1 = nOut - 4n (d1 is wider)
    int down;                // 1: DownSamplerB (c1 3x3 stride 2, BR keys bn.* / act.*)
    int add;                 // residual before the BR (ESP with nIn == nOut)
    conv2d c1;               // [n, nIn, 1, 1] (ESP) or [n, nIn, 3, 3] stride 2 (DownSamplerB)
    conv2d d[5];             // d1 [n1, n, 3, 3]; d2, d4, d8, d16 [n, n, 3, 3], dilation 2^i
    br bn;                   // BR(nOut) after the concat (+ residual)
} esp;

// Under the binder's prefix "<block>.".
static void ld_esp(wbind *L, esp *b, int n_in, int n_out, int down, int add) {
    static const char *dn[5] = {"d1", "d2", "d4", "d8", "d16"};
    b->n_in = n_in; b->n_out = n_out; b->down = down; b->add = add;
    b->n = n_out / 5;
    b->n1 = n_out - 4 * b->n;
    wb_conv(L, &b->c1, n_in, b->n, down ? 3 : 1, down ? 2 : 1, 1, 1, "c1.conv");
    for (int i = 0; i < 5; i++) wb_conv(L, &b->d[i], b->n, i == 0 ? b->n1 : b->n, 3, 1, 1 << i, 1, "%s.conv", dn[i]);
    if (down) br_bind(L, &b->bn, n_out, ESP_EPS, "bn", "act");
    else br_bind(L, &b->bn, n_out, ESP_EPS, "bn.bn", "bn.act");
}

static void esp_free(esp *b) {
    conv2d_free(&b->c1);
    for (int i = 0; i < 5; i++) conv2d_free(&b->d[i]);
}

// x: (nIn, h, w) -> y: (nOut, ho, wo), ho = ceil(h/2) when down. y must not overlap x.
// The five branches write into their slice of y = concat[d1, add1, add2, add3, add4]; the
// hierarchical feature fusion then adds each slice to the next one in place.
static int esp_forward(const nn_ctx *ctx, nn_arena *A, const esp *b, const float *x, int h, int w, float *y,
                       err *e) {
    int ho = b->down ? (h + 1) / 2 : h, wo = b->down ? (w + 1) / 2 : w;
    int64_t hw = (int64_t)ho * wo;
    float *t = arena_floats(A, b->n * hw, "ESP c1 output", e);   // (n, ho, wo)
    if (!t) return e->code;
    if (conv2d_forward(ctx, &b->c1, x, h, w, t, e)) goto fail;
    // the five dilated convs of t in one parallel region: d1 into y, then add1 = d2, ..., add4
    float *add = y + b->n1 * hw;
    const conv2d *d[5] = {&b->d[0], &b->d[1], &b->d[2], &b->d[3], &b->d[4]};
    float *const outs[5] = {y, add, add + b->n * hw, add + 2 * b->n * hw, add + 3 * b->n * hw};
    if (conv2d_forward_many(ctx, d, 5, t, ho, wo, outs, e)) goto fail;
    arena_release(A, t);
    // add_i = add_{i-1} + d_{2^i}, the residual (ESP blocks that keep the size), then the BR: one pass
    br_apply_groupsum(ctx, &b->bn, b->n1, 4, b->n, y, b->add ? x : NULL, hw);
    return OODSEG_OK;
fail:
    arena_release(A, t);
    return e->code;
}

// ---- the model -------------------------------------------------------------------------------

typedef struct espnet {
    ckpt *ck;
    int p, q, C;
    int encoder_only;        // ESPNet-C
    int n_skip;              // 16 (test/Model.py: encoder.level1 output) or 19 (train/Model.py: encoder.b1 output)
    // encoder (E1-E11)
    conv2d level1;           // [16, 3, 3, 3] stride 2, BN folded; then PReLU
    const float *level1_act; // [16]
    br b1;                   // BR(19) on [level1, avgpool(x)]
    esp level2_0;            // DownSamplerB(19, 64)
    esp *level2;             // p x ESP(64, 64)
    br b2;                   // BR(131) on [level2.{p-1}, level2_0, avgpool^2(x)]
    esp level3_0;            // DownSamplerB(131, 128)
    esp *level3;             // q x ESP(128, 128)
    br b3;                   // BR(256) on [level3_0, level3.{q-1}]
    conv2d enc_classifier;   // [C, 256, 1, 1]
    // decoder (D1-D9)
    const float *br_w, *br_b, *br_m, *br_v;  // br: BatchNorm2d(C) only, [C] each
    const float *up_l3;      // up_l3.0 ConvTranspose [C, C, 2, 2] (in, out, kh, kw)
    conv2d level3_C;         // [C, 131, 1, 1]
    br combine_br;           // combine_l2_l3.0: BR(2C) on [level3_C, up_l3]
    esp combine;             // combine_l2_l3.1: ESP(2C, C, add=False)
    const float *up_l2;      // up_l2.0 ConvTranspose [C, C, 2, 2]
    br up_l2_br;             // up_l2.1: BR(C)
    conv2d conv;             // [C, C + n_skip, 3, 3], BN folded; then PReLU
    const float *conv_act;   // [C]
    const float *classifier; // ConvTranspose [C, C, 2, 2] -> logits at s1
    const char *names[20];
    uint8_t palette[20][3];
} espnet;

// Runs ESP blocks blk[0..n) on x (c, h, w); the last writes into y. Intermediate results ping-pong.
static int esp_chain(const nn_ctx *ctx, nn_arena *A, const esp *blk, int n, const float *x, int h, int w, float *y,
                     err *e) {
    int64_t sz = (int64_t)blk[0].n_out * h * w;
    float *t[2] = {NULL, NULL};
    for (int i = 0; i < n; i++) {
        float *dst = y;
        if (i < n - 1) {
            if (!t[i & 1] && !(t[i & 1] = arena_floats(A, sz, "ESP block output", e))) break;
            dst = t[i & 1];
        }
        if (esp_forward(ctx, A, &blk[i], x, h, w, dst, e)) break;
        x = dst;
    }
    arena_release(A, t[0]);
    arena_release(A, t[1]);
    return e->code;
}

// One forward's activations, all arena blocks (or slices of one), NULL once dead. The steps are
// docs/espnet-espnetv2.md's E1..E11 and D1..D9.
typedef struct espnet_run {
    const espnet *n;
    const nn_ctx *ctx;
    nn_arena *A;
    const char *want;
    tensor_list *out;
    int h, w, H1, W1, H2, W2, H3, W3;
    int64_t hw1, hw2, hw3;
    int b1_in_skip;         // the train wiring: b1 is the tail of skip, not a block of its own
    float *skip;            // (C + n_skip, H1, W1): the D8 concat [comb_l2_l3, encoder skip]
    float *b1;              // (19, H1, W1) enc_l1_out_s2; inside skip for the train wiring
    float *b2;              // (131, H2, W2) enc_l2_out_s4 = [output1, output1_0, inp2]
    float *b3;              // (256, H3, W3) enc_l3_out_s8 = [output2_0, output2]
    float *cat2;            // (2C, H2, W2) [output1_C, output2_c]
    float *proj;            // (C, H3, W3) encoder.classifier output
    float *t;               // one decoder intermediate at a time
} espnet_run;

static void run_release(espnet_run *r) {
    float **all[] = {&r->skip, &r->b2, &r->b3, &r->cat2, &r->proj, &r->t};
    if (!r->b1_in_skip) arena_release(r->A, r->b1);
    r->b1 = NULL;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) arena_release(r->A, *all[i]), *all[i] = NULL;
}

// E1-E4: level1 -> [output0 (16), inp1 (3)] -> BR(19) = b1; also inp2 into b2's last 3 channels.
static int encoder_level1(espnet_run *r, const float *input, err *e) {
    const espnet *n = r->n;
    const nn_ctx *ctx = r->ctx;
    const int C = n->C, full = !n->encoder_only;
    const int64_t hw1 = r->hw1, hw2 = r->hw2;
    if (full && !(r->skip = arena_floats(r->A, (C + n->n_skip) * hw1, "ESPNet decoder concat", e))) return e->code;
    if (r->b1_in_skip) r->b1 = r->skip + C * hw1;
    else if (!(r->b1 = arena_floats(r->A, 19 * hw1, "ESPNet enc_l1_out_s2", e))) return e->code;
    float *b1 = r->b1;
    float *output0 = full ? r->skip + C * hw1 : b1;   // the test wiring keeps output0 (before b1) for D8
    if (conv2d_forward_prelu(ctx, &n->level1, input, r->h, r->w, n->level1_act, output0, e)) return e->code;
    avgpool3x3s2_forward(ctx, input, 3, r->h, r->w, b1 + 16 * hw1);
    // inp2 = two poolings of x = one pooling of inp1; taken before b1's BR rewrites inp1
    if (!(r->b2 = arena_floats(r->A, 131 * hw2, "ESPNet enc_l2_out_s4", e))) return e->code;
    avgpool3x3s2_forward(ctx, b1 + 16 * hw1, 3, r->H1, r->W1, r->b2 + 128 * hw2);
    if (output0 != b1) {   // output0 stays for D8: b1's BR reads it, no copy first
        br_apply_into(ctx, &n->b1, 0, 16, output0, b1, hw1);
        br_apply_part(ctx, &n->b1, 16, 3, b1 + 16 * hw1, hw1);
    } else {
        br_apply(ctx, &n->b1, b1, hw1);
    }
    // in the train wiring b1 lives on inside the D8 concat, so it is copied; otherwise handed over later
    if (r->b1_in_skip) return model_emit(r->out, r->want, "enc_l1_out_s2", b1, 19, r->H1, r->W1, e);
    return OODSEG_OK;
}

// E5-E11 (and D3, level3_C on enc_l2_out, right away so that b2 dies early): b2, then b3 and proj.
static int encoder_levels23(espnet_run *r, err *e) {
    const espnet *n = r->n;
    const nn_ctx *ctx = r->ctx;
    nn_arena *A = r->A;
    const int C = n->C;
    const int64_t hw2 = r->hw2, hw3 = r->hw3;
    // E5-E7: level2_0 -> output1_0 (slice 64..127), level2.* -> output1 (slice 0..63), BR(131)
    if (esp_forward(ctx, A, &n->level2_0, r->b1, r->H1, r->W1, r->b2 + 64 * hw2, e)) return e->code;
    if (!r->b1_in_skip && model_give(A, r->out, r->want, "enc_l1_out_s2", &r->b1, 19, r->H1, r->W1, e))
        return e->code;
    if (esp_chain(ctx, A, n->level2, n->p, r->b2 + 64 * hw2, r->H2, r->W2, r->b2, e)) return e->code;
    br_apply(ctx, &n->b2, r->b2, hw2);
    // E8: level3_0 -> output2_0 (slice 0..127); D3
    if (!(r->b3 = arena_floats(A, 256 * hw3, "ESPNet enc_l3_out_s8", e))) return e->code;
    if (esp_forward(ctx, A, &n->level3_0, r->b2, r->H2, r->W2, r->b3, e)) return e->code;
    if (!n->encoder_only) {
        if (!(r->cat2 = arena_floats(A, 2 * C * hw2, "ESPNet combine concat", e))) return e->code;
        if (conv2d_forward(ctx, &n->level3_C, r->b2, r->H2, r->W2, r->cat2, e)) return e->code;
        if (model_emit(r->out, r->want, "dec_l2_proj_s4", r->cat2, C, r->H2, r->W2, e)) return e->code;
    }
    if (model_give(A, r->out, r->want, "enc_l2_out_s4", &r->b2, 131, r->H2, r->W2, e)) return e->code;
    // E9-E11
    if (esp_chain(ctx, A, n->level3, n->q, r->b3, r->H3, r->W3, r->b3 + 128 * hw3, e)) return e->code;
    br_apply(ctx, &n->b3, r->b3, hw3);
    if (!(r->proj = arena_floats(A, C * hw3, "ESPNet classifier output", e))) return e->code;
    if (conv2d_forward(ctx, &n->enc_classifier, r->b3, r->H3, r->W3, r->proj, e)) return e->code;
    if (model_give(A, r->out, r->want, "enc_l3_out_s8", &r->b3, 256, r->H3, r->W3, e)) return e->code;
    return model_emit(r->out, r->want, "dec_l3_proj_s8", r->proj, C, r->H3, r->W3, e);
}

// D1-D8: from proj and cat2's first half to r->t = dec_l1_conv_s2 (C, H1, W1).
static int decoder(espnet_run *r, err *e) {
    const espnet *n = r->n;
    const nn_ctx *ctx = r->ctx;
    nn_arena *A = r->A;
    const int C = n->C, H1 = r->H1, W1 = r->W1, H2 = r->H2, W2 = r->W2;
    const int64_t hw1 = r->hw1, hw2 = r->hw2;
    // D1-D2: br (BN only) -> up_l3 into the second half of the combine concat
    batchnorm_inplace(ctx, r->proj, C, r->hw3, n->br_w, n->br_b, n->br_m, n->br_v, ESP_EPS);
    if (conv_transpose2x2_forward(ctx, n->up_l3, C, C, r->proj, r->H3, r->W3, r->cat2 + C * hw2, e)) return e->code;
    arena_release(A, r->proj), r->proj = NULL;
    if (model_emit(r->out, r->want, "dec_l3_up_s4", r->cat2 + C * hw2, C, H2, W2, e)) return e->code;
    // D4-D5: BR(2C) -> ESP(2C, C, add=False)
    br_apply(ctx, &n->combine_br, r->cat2, hw2);
    if (!(r->t = arena_floats(A, C * hw2, "ESPNet comb_l2_l3", e))) return e->code;
    if (esp_forward(ctx, A, &n->combine, r->cat2, H2, W2, r->t, e)) return e->code;
    arena_release(A, r->cat2), r->cat2 = NULL;
    if (model_emit(r->out, r->want, "dec_l2_combine_s4", r->t, C, H2, W2, e)) return e->code;
    // D6-D7: up_l2 = ConvTranspose -> BR(C), into the first C channels of the D8 concat
    if (conv_transpose2x2_forward(ctx, n->up_l2, C, C, r->t, H2, W2, r->skip, e)) return e->code;
    arena_release(A, r->t), r->t = NULL;
    br_apply(ctx, &n->up_l2_br, r->skip, hw1);
    if (model_emit(r->out, r->want, "dec_l2_up_s2", r->skip, C, H1, W1, e)) return e->code;
    // D8: CBR(C + n_skip -> C, 3x3)
    if (!(r->t = arena_floats(A, C * hw1, "ESPNet dec_l1_conv_s2", e))) return e->code;
    if (conv2d_forward(ctx, &n->conv, r->skip, H1, W1, r->t, e)) return e->code;
    prelu_inplace(ctx, r->t, C, hw1, n->conv_act);
    arena_release(A, r->skip), r->skip = NULL;
    if (r->b1_in_skip) r->b1 = NULL;
    return model_emit(r->out, r->want, "dec_l1_conv_s2", r->t, C, H1, W1, e);
}

// The logits (C, h, w), written straight into the output list's own memory. ESPNet-C: the s8
// class map up-sampled as VisualizeResults.py's nn.Upsample(8, bilinear) did under the PyTorch 0.3
// the repository was written for (corner-aligned). Full ESPNet, D9: the classifier ConvTranspose
// -> (C, 2*H1, 2*W1); one row/column more than the input when a side is 7 mod 8, cropped so that
// the logits are always at input size.
static int logits_out(espnet_run *r, err *e) {
    const int C = r->n->C, h = r->h, w = r->w;
    tensor *lg = tl_add_uninit(r->out, "logits", 4, (int64_t[]){1, C, h, w}, e);
    if (!lg) return e->code;
    if (r->n->encoder_only) {
        resize_bilinear(r->ctx, r->proj, C, r->H3, r->W3, lg->data, h, w, 1);
        return OODSEG_OK;
    }
    if (2 * r->H1 == h && 2 * r->W1 == w)
        return conv_transpose2x2_forward(r->ctx, r->n->classifier, C, C, r->t, r->H1, r->W1, lg->data, e);
    float *big = arena_floats(r->A, C * 4 * r->hw1, "ESPNet logits before crop", e);
    if (!big) return e->code;
    if (!conv_transpose2x2_forward(r->ctx, r->n->classifier, C, C, r->t, r->H1, r->W1, big, e))
        crop_topleft(r->ctx, big, C, 2 * r->H1, 2 * r->W1, lg->data, h, w);
    arena_release(r->A, big);
    return e->code;
}

static int espnet_run_all(model *m, const float *input, int h, int w, const char *want,
                          tensor_list *out, err *e) {
    const espnet *n = m->impl;
    err_clear(e);
    if (h < 1 || w < 1 ||
        (!n->encoder_only && (h % 8 != 0 && h % 8 != 7)) || (!n->encoder_only && (w % 8 != 0 && w % 8 != 7)))
        return err_set(e, OODSEG_E_ARG,
                       "ESPNet input %dx%d (WxH): width and height must be multiples of 8 (or 7 mod 8), "
                       "since the decoder concatenates up-sampled s8 and s4 maps with s4 and s2 maps; "
                       "e.g. %dx%d", w, h, (w + 7) / 8 * 8, (h + 7) / 8 * 8);
    espnet_run r = {.n = n, .ctx = &m->ctx, .A = m->arena, .want = want, .out = out, .h = h, .w = w};
    r.H1 = (h + 1) / 2, r.W1 = (w + 1) / 2, r.H2 = (r.H1 + 1) / 2, r.W2 = (r.W1 + 1) / 2;
    r.H3 = (r.H2 + 1) / 2, r.W3 = (r.W2 + 1) / 2;
    r.hw1 = (int64_t)r.H1 * r.W1, r.hw2 = (int64_t)r.H2 * r.W2, r.hw3 = (int64_t)r.H3 * r.W3;
    r.b1_in_skip = !n->encoder_only && n->n_skip == 19;
    arena_reset(m->arena);
    const nn_ctx *ctx = &m->ctx;
    PROF_BEGIN(ctx, PROF_STEM);
    int rc = encoder_level1(&r, input, e);
    PROF_NEXT(ctx, PROF_CONV_BLOCK);
    rc = rc || encoder_levels23(&r, e);
    PROF_NEXT(ctx, PROF_DECODER);
    rc = rc || (!n->encoder_only && decoder(&r, e));
    PROF_NEXT(ctx, n->encoder_only ? PROF_RESIZE : PROF_HEAD);   // the s8 resize, or the classifier
    if (!rc) logits_out(&r, e);
    PROF_END(ctx);
    run_release(&r);
    arena_end(m->arena);
    return e->code;
}

// Denormal weights (dead channels) and activations would take x86's slow path; see nn/fpenv.c.
static int espnet_forward(model *m, const float *input, int h, int w, const char *want,
                          tensor_list *out, err *e) {
    nn_fpenv env;
    nn_denormals_off(&m->ctx, &env);
    int rc = espnet_run_all(m, input, h, w, want, out, e);
    nn_fpenv_restore(&env);
    return rc;
}

static void espnet_destroy(model *m) {
    if (!m) return;
    espnet *n = m->impl;
    if (n) {
        conv2d_free(&n->level1);
        esp_free(&n->level2_0);
        esp_free(&n->level3_0);
        for (int i = 0; n->level2 && i < n->p; i++) esp_free(&n->level2[i]);
        for (int i = 0; n->level3 && i < n->q; i++) esp_free(&n->level3[i]);
        free(n->level2);
        free(n->level3);
        conv2d_free(&n->enc_classifier);
        conv2d_free(&n->level3_C);
        esp_free(&n->combine);
        conv2d_free(&n->conv);
        ckpt_close(n->ck);
        free(n);
    }
    arena_free(m->arena);
    free(m);
}

// ---- recognition and creation -----------------------------------------------------------------

static int has(const ckpt *ck, const char *pre, const char *name) {
    int64_t s[8];
    return wb_shape(ck, s, "%s%s", pre, name) != 0;
}

int espnet_detect(const ckpt *ck) {
    // ESPNet's encoder keys, with "encoder." (full model) or without it (ESPNet-C)
    for (int i = 0; i < 2; i++) {
        const char *pre = i ? "" : "encoder.";
        if (has(ck, pre, "level1.conv.weight") && has(ck, pre, "b1.bn.weight") &&
            has(ck, pre, "level2_0.c1.conv.weight") && has(ck, pre, "level3_0.d16.conv.weight") &&
            has(ck, pre, "classifier.conv.weight"))
            return 1;
    }
    return 0;
}

static int count_blocks(const ckpt *ck, const char *pre, const char *level) {
    int k = 0;
    int64_t s[8];
    while (wb_shape(ck, s, "%s%s.%d.c1.conv.weight", pre, level, k)) k++;
    return k;
}

// base: "encoder." (full ESPNet) or "" (ESPNet-C)
static void ld_encoder(wbind *L, espnet *n, const char *base) {
    wb_push(L, "%s", base);
    wb_conv(L, &n->level1, 3, 16, 3, 2, 1, 1, "level1.conv");
    wb_conv_bn(L, &n->level1, ESP_EPS, "level1.bn");
    n->level1_act = wb_prelu(L, 16, "level1.act");
    br_bind(L, &n->b1, 19, ESP_EPS, "b1.bn", "b1.act");
    wb_push(L, "level2_0.");
    ld_esp(L, &n->level2_0, 19, 64, 1, 0);
    wb_pop(L);
    for (int i = 0; i < n->p; i++) {
        wb_push(L, "level2.%d.", i);
        ld_esp(L, &n->level2[i], 64, 64, 0, 1);
        wb_pop(L);
    }
    wb_push(L, "level3_0.");
    ld_esp(L, &n->level3_0, 131, 128, 1, 0);
    wb_pop(L);
    for (int i = 0; i < n->q; i++) {
        wb_push(L, "level3.%d.", i);
        ld_esp(L, &n->level3[i], 128, 128, 0, 1);
        wb_pop(L);
    }
    br_bind(L, &n->b2, 131, ESP_EPS, "b2.bn", "b2.act");
    br_bind(L, &n->b3, 256, ESP_EPS, "b3.bn", "b3.act");
    wb_conv(L, &n->enc_classifier, 256, n->C, 1, 1, 1, 1, "classifier.conv");
    wb_pop(L);
}

static void ld_decoder(wbind *L, espnet *n) {
    int C = n->C;
    bn_params br;
    wb_bn(L, &br, C, "br");
    n->br_w = br.gamma, n->br_b = br.beta, n->br_m = br.mean, n->br_v = br.var;
    n->up_l3 = wb_get(L, SHAPE(C, C, 2, 2), "up_l3.0.weight");
    wb_conv(L, &n->level3_C, 131, C, 1, 1, 1, 1, "level3_C.conv");
    br_bind(L, &n->combine_br, 2 * C, ESP_EPS, "combine_l2_l3.0.bn", "combine_l2_l3.0.act");
    wb_push(L, "combine_l2_l3.1.");
    ld_esp(L, &n->combine, 2 * C, C, 0, 0);
    wb_pop(L);
    n->up_l2 = wb_get(L, SHAPE(C, C, 2, 2), "up_l2.0.weight");
    br_bind(L, &n->up_l2_br, C, ESP_EPS, "up_l2.1.bn", "up_l2.1.act");
    wb_conv(L, &n->conv, C + n->n_skip, C, 3, 1, 1, 1, "conv.conv");
    wb_conv_bn(L, &n->conv, ESP_EPS, "conv.bn");
    n->conv_act = wb_prelu(L, C, "conv.act");
    n->classifier = wb_get(L, SHAPE(C, C, 2, 2), "classifier.weight");
}

static int fill_desc(model_desc *d, espnet *n, const ckpt *ck, err *e) {
    int C = n->C;
    if (C == 20) {
        snprintf(d->dataset, sizeof d->dataset, "cityscapes");
        for (int i = 0; i < 19; i++) {
            n->names[i] = cityscapes_classes[i];
            memcpy(n->palette[i], cityscapes_palette[i], 3);
        }
        n->names[19] = "background";   // the ignore label trained as a class; never in-distribution
    } else if (C == 12) {
        snprintf(d->dataset, sizeof d->dataset, "camvid");
        for (int i = 0; i < 11; i++) {
            n->names[i] = camvid_classes[i];
            memcpy(n->palette[i], camvid_palette[i], 3);
        }
        n->names[11] = "void";
    } else {
        return err_set(e, OODSEG_E_MODEL,
                       "%s: ESPNet with %d output channels; oodseg knows the Cityscapes (20) and CamVid (12) "
                       "checkpoints", ck->path, C);
    }
    memset(n->palette[C - 1], 0, 3);
    d->num_outputs = C;
    d->num_id = C - 1;
    for (int i = 0; i < C - 1; i++) d->id_channels[i] = i;
    d->class_names = n->names;
    d->palette = (const uint8_t (*)[3])n->palette;
    const char *ds = C == 20 ? "Cityscapes" : "CamVid";
    if (n->encoder_only) {
        snprintf(d->arch, sizeof d->arch, "espnet-c-p%d-q%d", n->p, n->q);
        snprintf(d->title, sizeof d->title, "ESPNet-C encoder (p=%d, q=%d), %s", n->p, n->q, ds);
    } else {
        snprintf(d->arch, sizeof d->arch, "espnet-p%d-q%d", n->p, n->q);
        snprintf(d->title, sizeof d->title, "ESPNet (p=%d, q=%d), %s", n->p, n->q, ds);
    }
    snprintf(d->source_format, sizeof d->source_format, "%s", ck->format);
    snprintf(d->source_dtype, sizeof d->source_dtype, "F32");
    d->num_params = ckpt_num_float_params(ck);

    // test/VisualizeResults.py: BGR float, (x - mean) / std, cv2.resize on the float image, / 255.
    preprocess *p = &d->pre;
    static const float city_mean[3] = {72.3923111f, 82.90893555f, 73.15840149f};
    static const float city_std[3] = {45.3192215f, 46.15289307f, 44.91483307f};
    // CamVid: never published; the golden README's proxy (train/loadData.py's formula applied to
    // the 233 CamVid-OOD images), part of the golden definition.
    static const float camvid_mean[3] = {99.83741615005567f, 98.64219557204736f, 96.23319126529964f};
    static const float camvid_std[3] = {71.7018239413646f, 71.20750881826864f, 68.89256989002318f};
    p->bgr = 1;
    memcpy(p->mean, C == 20 ? city_mean : camvid_mean, sizeof p->mean);
    memcpy(p->std, C == 20 ? city_std : camvid_std, sizeof p->std);
    p->scale_after = 1.0f / 255.0f;
    p->div_after = 255.0f;   // VisualizeResults.py divides (img /= 255): bit-exact, not * (1/255)
    p->order = PRE_NORMALISE_THEN_RESIZE;
    p->interp = INTERP_CV_LINEAR_F32;
    p->size_rule = SIZE_FIXED;
    p->size_w = C == 20 ? 1024 : 480;
    p->size_h = C == 20 ? 512 : 360;
    // ESPNet-C has no decoder concats, so any size runs
    p->h_mod = p->w_mod = n->encoder_only ? 0 : 8;
    p->mod_need_zero = 0;

    static const tap_info taps[3] = {
        {"enc_l1_out_s2", 2, 19}, {"enc_l2_out_s4", 4, 131}, {"enc_l3_out_s8", 8, 256}};
    d->num_taps = 3;
    memcpy(d->taps, taps, sizeof taps);
    // the three encoder levels (BR outputs after each concat), which the reference K-Means pipeline fused
    snprintf(d->default_taps, sizeof d->default_taps, "enc_l1_out_s2,enc_l2_out_s4,enc_l3_out_s8");
    d->logits_stride = 1;
    return OODSEG_OK;
}

// The variant (full or encoder-only), p, q, C and the decoder wiring, from the key names and shapes.
static int recognise(const ckpt *ck, espnet *n, err *e) {
    n->encoder_only = !ckpt_find(ck, "encoder.level1.conv.weight");
    const char *pre = n->encoder_only ? "" : "encoder.";
    n->p = count_blocks(ck, pre, "level2");
    n->q = count_blocks(ck, pre, "level3");
    char cls[64];
    snprintf(cls, sizeof cls, "%sclassifier.conv.weight", pre);
    const ckpt_entry *ce = ckpt_find(ck, cls);
    if (n->p < 1 || n->q < 1 || !ce || ce->ndim != 4 || ce->shape[0] < 2 || ce->shape[0] > 20)
        return err_set(e, OODSEG_E_MODEL, "%s: ESPNet keys found but p=%d, q=%d or '%s' is not [C, 256, 1, 1] "
                       "with 2 <= C <= 20", ck->path, n->p, n->q, cls);
    n->C = (int)ce->shape[0];
    if (!n->encoder_only) {
        const ckpt_entry *cv = ckpt_find(ck, "conv.conv.weight");
        if (!cv || cv->ndim != 4)
            return err_set(e, OODSEG_E_MODEL, "%s: ESPNet decoder key 'conv.conv.weight' is missing", ck->path);
        int64_t extra = cv->shape[1] - n->C;
        if (extra != 16 && extra != 19)
            return err_set(e, OODSEG_E_MODEL, "%s: key 'conv.conv.weight' has %lld input channels; ESPNet's "
                           "decoder needs C+16 = %d (test/Model.py) or C+19 = %d (train/Model.py)",
                           ck->path, (long long)cv->shape[1], n->C + 16, n->C + 19);
        n->n_skip = (int)extra;
    }
    return OODSEG_OK;
}

int espnet_keys(ckpt *ck, int p, int q, int classes, err *e) {
    espnet n = {.p = p, .q = q, .C = classes, .n_skip = 16};   // test/Model.py's wiring
    n.level2 = err_calloc(e, p, sizeof(esp), "ESPNet key list");
    n.level3 = n.level2 ? err_calloc(e, q, sizeof(esp), "ESPNet key list") : NULL;
    if (n.level3) {
        wbind L;
        wb_init(&L, ck, e);
        L.make_keys = 1;
        ld_encoder(&L, &n, "encoder.");
        ld_decoder(&L, &n);
    }
    free(n.level2);
    free(n.level3);
    return e->code;
}

int espnet_create(ckpt *ck, const model_options *opt, model **out, err *e) {
    *out = NULL;
    err_clear(e);
    model *m = err_calloc(e, 1, sizeof *m, "ESPNet model");
    espnet *n = err_calloc(e, 1, sizeof *n, "ESPNet model");
    if (!m || !n) { free(m); free(n); ckpt_close(ck); return e->code; }
    m->impl = n;
    m->forward = espnet_forward;
    m->destroy = espnet_destroy;
    m->shareable = 1;   // the forward reads the weights only
    n->ck = ck;
    if (model_arena_open(m, e)) goto fail;
    if (recognise(ck, n, e)) goto fail;
    const char *pre = n->encoder_only ? "" : "encoder.";
    n->level2 = err_calloc(e, n->p, sizeof(esp), "ESPNet level2");
    n->level3 = err_calloc(e, n->q, sizeof(esp), "ESPNet level3");
    if (!n->level2 || !n->level3) goto fail;
    wbind L;
    wb_init(&L, ck, e);
    ld_encoder(&L, n, pre);
    if (!n->encoder_only) ld_decoder(&L, n);
    if (e->code) goto fail;
    if (L.no_data) {
        err_set(e, OODSEG_E_MODEL, "checkpoint '%s' has key names and shapes but no weights", ck->path);
        goto fail;
    }
    static const char *const ignore[] = {"num_batches_tracked"};
    const ckpt_entry *u = ckpt_first_unused(ck, ignore, 1);
    if (u) {
        err_set(e, OODSEG_E_MODEL, "%s: unexpected key '%s' for %s ESPNet (p=%d, q=%d, C=%d)", ck->path,
                u->name, n->encoder_only ? "encoder-only" : "full", n->p, n->q, n->C);
        goto fail;
    }
    if (fill_desc(&m->desc, n, ck, e)) goto fail;
    if (opt && opt->id_channels && model_set_id_channels(&m->desc, opt->id_channels, e)) goto fail;
    *out = m;
    return OODSEG_OK;
fail:
    espnet_destroy(m);
    return e->code;
}

// ---- activation estimate (model.estimate) -----------------------------------------------------

// The live peak of espnet_run_all: the largest of the sets of blocks alive together at each step
// (E1-E11, D1-D9), with the block sizes of the forward itself.
uint64_t espnet_estimate(const model *m, int h, int w) {
    const espnet *n = m->impl;
    const int C = n->C, full = !n->encoder_only, in_skip = full && n->n_skip == 19;
    int H1 = (h + 1) / 2, W1 = (w + 1) / 2, H2 = (H1 + 1) / 2, W2 = (W1 + 1) / 2, H3 = (H2 + 1) / 2, W3 = (W2 + 1) / 2;
    uint64_t hw1 = (uint64_t)H1 * W1, hw2 = (uint64_t)H2 * W2, hw3 = (uint64_t)H3 * W3;
    uint64_t skip = full ? EST_F((C + n->n_skip) * hw1) : 0, b1 = in_skip ? 0 : EST_F(19 * hw1);
    uint64_t b2 = EST_F(131 * hw2), b3 = EST_F(256 * hw3), cat2 = full ? EST_F(2 * C * hw2) : 0;
    uint64_t proj = EST_F(C * hw3), peak;
    // E1-E5: level1, b2, then level2_0 (its c1 output) while b1 lives
    peak = skip + b1 + b2 + EST_F(n->level2_0.n * hw2);
    // E6: the level2 chain (b1 handed over): up to two ping-pong outputs and an ESP's c1 output
    uint64_t ping2 = EST_F((n->p > 2 ? 2 : n->p - 1) * 64 * hw2);
    peak = max_u64(peak, skip + b2 + ping2 + EST_F(n->level2[0].n * hw2));
    // E8 and D3: b3 and level3_0, then the combine concat beside b2
    peak = max_u64(peak, skip + b2 + b3 + max_u64(EST_F(n->level3_0.n * hw3), cat2));
    // E9-E11: the level3 chain, then the classifier output
    uint64_t ping3 = EST_F((n->q > 2 ? 2 : n->q - 1) * 128 * hw3);
    peak = max_u64(peak, skip + b3 + cat2 + max_u64(ping3 + EST_F(n->level3[0].n * hw3), proj));
    if (full) {
        // D4-D5: the combine ESP (2C -> C) beside the concat; D8: the 3x3 conv's output; D9's crop
        peak = max_u64(peak, skip + cat2 + EST_F(C * hw2) + EST_F(n->combine.n * hw2));
        peak = max_u64(peak, skip + EST_F(C * hw1));
        if (2 * H1 != h || 2 * W1 != w) peak = max_u64(peak, EST_F(5 * C * hw1));
    }
    return peak + EST_SLACK;
}
