// ESPNetv2 segmentation (Mehta et al., CVPR 2019), sacmehta/EdgeNets at 2b232d3f
// (ESPNetv2Segmentation on the EESPNet backbone), from the original legacy .pth files.
//
// The width s (0.5, 1.0, 1.5, 2.0) is recognised from the backbone's channel counts; the decoder widths
// and the pyramid projection P are read from the keys. Step names (V1..V20) and the golden tensor
// names follow docs/espnet-espnetv2.md. Every conv directly followed by a BatchNorm (CBR,
// CB) has the BN folded in at create time; BR blocks on concatenations and sums run as batchnorm +
// PReLU. Concat producers write into their slice of the concat buffer. All BN eps = 1e-5.
#include "model.h"
#include "random_weights.h"
#include "br.h"
#include "../nn/prof.h"
#include "../nn/nn.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define V2_EPS 1e-5f

// ---- EESP (nn_layers/eesp.py) -----------------------------------------------------------------

typedef struct eesp {
    int n_in, n_out, n, stride;   // n = nOut / 4 (branch width)
    conv2d proj;                  // proj_1x1: [n, nIn/4, 1, 1] groups 4, BN folded; then PReLU
    const float *proj_act;        // [n]
    conv2d spp[4];                // spp_dw.i: [n, 1, 3, 3] depthwise, block stride, dilation d_i
    br br_after_cat;              // BR(nOut) before the expansion
    conv2d exp;                   // conv_1x1_exp: [nOut, nOut/4, 1, 1] groups 4, BN folded (CB)
    const float *module_act;      // [nOut] stride 1 only (the stride-2 EESP returns before it)
} eesp;

// Under the binder's prefix "<block>.".
static void ld_eesp(wbind *L, eesp *b, int n_in, int n_out, int stride, int r_lim) {
    b->n_in = n_in; b->n_out = n_out; b->stride = stride; b->n = n_out / 4;
    int n = b->n;
    wb_conv(L, &b->proj, n_in, n, 1, 1, 1, 4, "proj_1x1.conv");
    wb_conv_bn(L, &b->proj, V2_EPS, "proj_1x1.bn");
    b->proj_act = wb_prelu(L, n, "proj_1x1.act");
    // kernel 3 + 2i, replaced by 3 above r_lim, sorted; dilation (k-1)/2
    int ks[4];
    for (int i = 0; i < 4; i++) ks[i] = 3 + 2 * i > r_lim ? 3 : 3 + 2 * i;
    for (int i = 1; i < 4; i++)
        for (int j = i; j > 0 && ks[j] < ks[j - 1]; j--) { int t = ks[j]; ks[j] = ks[j - 1]; ks[j - 1] = t; }
    for (int i = 0; i < 4; i++) wb_conv(L, &b->spp[i], n, n, 3, stride, (ks[i] - 1) / 2, n, "spp_dw.%d.conv", i);
    br_bind(L, &b->br_after_cat, n_out, V2_EPS, "br_after_cat.bn", "br_after_cat.act");
    wb_conv(L, &b->exp, n_out, n_out, 1, 1, 1, 4, "conv_1x1_exp.conv");
    wb_conv_bn(L, &b->exp, V2_EPS, "conv_1x1_exp.bn");
    b->module_act = stride == 1 ? wb_prelu(L, n_out, "module_act") : NULL;
}

static void eesp_free(eesp *b) {
    conv2d_free(&b->proj);
    for (int i = 0; i < 4; i++) conv2d_free(&b->spp[i]);
    conv2d_free(&b->exp);
}

// x: (nIn, h, w) -> y: (nOut, ho, wo); y must not overlap x.
static int eesp_forward(const nn_ctx *ctx, nn_arena *A, const eesp *b, const float *x, int h, int w, float *y,
                        err *e) {
    int ho = b->stride == 2 ? (h + 1) / 2 : h, wo = b->stride == 2 ? (w + 1) / 2 : w;
    int64_t hw = (int64_t)ho * wo, n = b->n;
    float *p = arena_floats(A, n * h * w, "EESP projection", e);          // (n, h, w)
    float *cat = p ? arena_floats(A, b->n_out * hw, "EESP concat", e) : NULL;   // (nOut, ho, wo)
    if (!p || !cat) goto done;
    if (conv2d_forward_prelu(ctx, &b->proj, x, h, w, b->proj_act, p, e)) goto done;
    // HFF: o_0 = spp_0(P), o_i = spp_i(P) + o_{i-1}, written as concat[o_0..o_3]; the four
    // branches in one parallel region, then the running sum and br_after_cat in another
    const conv2d *spp[4] = {&b->spp[0], &b->spp[1], &b->spp[2], &b->spp[3]};
    float *const outs[4] = {cat, cat + n * hw, cat + 2 * n * hw, cat + 3 * n * hw};
    if (conv2d_forward_many(ctx, spp, 4, p, h, w, outs, e)) goto done;
    arena_release(A, p), p = NULL;
    br_apply_groupsum(ctx, &b->br_after_cat, 0, 4, (int)n, cat, NULL, hw);
    // stride 1: the residual and module_act in the expansion's epilogue
    if (b->stride == 1 ? conv2d_forward_residual_prelu(ctx, &b->exp, cat, ho, wo, x, b->module_act, y, e)
                       : conv2d_forward(ctx, &b->exp, cat, ho, wo, y, e))
        goto done;
done:
    arena_release(A, p);
    arena_release(A, cat);
    return e->code;
}

// ---- DownSampler (nn_layers/eesp.py) ----------------------------------------------------------

typedef struct downsampler {
    int nin, nout;
    eesp eesp;                // EESP(nin, nout - nin, stride 2)
    conv2d reinf0;            // inp_reinf.0: [3, 3, 3, 3], BN folded; then PReLU(3)
    const float *reinf0_act;  // [3]
    conv2d reinf1;            // inp_reinf.1: [nout, 3, 1, 1], BN folded (CB, no act)
    const float *act;         // [nout]
} downsampler;

// Under the binder's prefix "base_net.".
static void ld_down(wbind *L, downsampler *d, const char *name, int nin, int nout, int r_lim) {
    d->nin = nin; d->nout = nout;
    wb_push(L, "%s.", name);
    wb_push(L, "eesp.");
    ld_eesp(L, &d->eesp, nin, nout - nin, 2, r_lim);
    wb_pop(L);
    wb_conv(L, &d->reinf0, 3, 3, 3, 1, 1, 1, "inp_reinf.0.conv");
    wb_conv_bn(L, &d->reinf0, V2_EPS, "inp_reinf.0.bn");
    d->reinf0_act = wb_prelu(L, 3, "inp_reinf.0.act");
    wb_conv(L, &d->reinf1, 3, nout, 1, 1, 1, 1, "inp_reinf.1.conv");
    wb_conv_bn(L, &d->reinf1, V2_EPS, "inp_reinf.1.bn");
    d->act = wb_prelu(L, nout, "act");
    wb_pop(L);
}

// x: (nin, h, w), img: the input image pooled down to (3, ho, wo) -> y: (nout, ho, wo)
// y = PReLU(concat[avgpool(x), EESP(x)] + CB(CBR(img)))
static int down_forward(const nn_ctx *ctx, nn_arena *A, const downsampler *d, const float *x, int h, int w,
                        const float *img, float *y, err *e) {
    int ho = (h + 1) / 2, wo = (w + 1) / 2;
    int64_t hw = (int64_t)ho * wo;
    avgpool3x3s2_forward(ctx, x, d->nin, h, w, y);
    if (eesp_forward(ctx, A, &d->eesp, x, h, w, y + d->nin * hw, e)) return e->code;
    float *r = arena_floats(A, 3 * hw, "input reinforcement", e);   // (3, ho, wo)
    if (!r) return e->code;
    if (conv2d_forward_prelu(ctx, &d->reinf0, img, ho, wo, d->reinf0_act, r, e)) { arena_release(A, r); return e->code; }
    // inp_reinf.1 (a 1x1 conv from 3 channels) added straight into y, no nout-channel temporary,
    // then the PReLU on each channel while it is in cache
    conv2d_1x1_accumulate(ctx, &d->reinf1, r, hw, d->act, y);
    arena_release(A, r);
    return OODSEG_OK;
}

// ---- EfficientPyrPool and EfficientPWConv (nn_layers/) ----------------------------------------

static const double pyr_scales[5] = {2.0, 1.5, 1.0, 0.5, 0.1};

typedef struct pyrpool {
    int in, P, out;
    conv2d proj;              // projection_layer.cbr.0: [P, in, 1, 1], BN folded; then PReLU
    const float *proj_act;    // [P]
    conv2d stages[5];         // stages.i: [P, 1, 3, 3] depthwise
    br merge_br;              // merge_layer.0: BR(5P), before the shuffle
    conv2d merge_conv;        // merge_layer.2.cbr.0: [P, 5, 3, 3] groups P, BN folded; then PReLU
    const float *merge_act;   // [P]
    conv2d last;              // merge_layer.3: [out, P, 1, 1]; + bias (bu_dec_l4) or BN folded (br.br.0)
    const float *br_act;      // br.br.1.weight [out], NULL for bu_dec_l4
} pyrpool;

static void ld_pyr(wbind *L, pyrpool *p, const char *name, int in, int P, int out, int last_br) {
    wb_push(L, "%s.", name);
    p->in = in; p->P = P; p->out = out;
    wb_conv(L, &p->proj, in, P, 1, 1, 1, 1, "projection_layer.cbr.0");
    wb_conv_bn(L, &p->proj, V2_EPS, "projection_layer.cbr.1");
    p->proj_act = wb_prelu(L, P, "projection_layer.cbr.2");
    for (int i = 0; i < 5; i++) wb_conv(L, &p->stages[i], P, P, 3, 1, 1, P, "stages.%d", i);
    br_bind(L, &p->merge_br, 5 * P, V2_EPS, "merge_layer.0.br.0", "merge_layer.0.br.1");
    wb_conv(L, &p->merge_conv, 5 * P, P, 3, 1, 1, P, "merge_layer.2.cbr.0");
    wb_conv_bn(L, &p->merge_conv, V2_EPS, "merge_layer.2.cbr.1");
    p->merge_act = wb_prelu(L, P, "merge_layer.2.cbr.2");
    wb_conv(L, &p->last, P, out, 1, 1, 1, 1, "merge_layer.3");
    if (last_br) {
        wb_conv_bn(L, &p->last, V2_EPS, "br.br.0");
        p->br_act = wb_prelu(L, out, "br.br.1");
    } else {
        wb_conv_bias(L, &p->last, "merge_layer.3");
    }
    wb_pop(L);
}

static void pyr_free(pyrpool *p) {
    conv2d_free(&p->proj);
    for (int i = 0; i < 5; i++) conv2d_free(&p->stages[i]);
    conv2d_free(&p->merge_conv);
    conv2d_free(&p->last);
}

// The five scale branches of a pyramid (stages.i) into cat (5P, h, w). Each channel's chain (up:
// resize, depthwise conv, pool back; down: pool, conv, resize back) reads only that channel, so
// every (branch, channel) pair is one work item of a single parallel region, run by the same ops
// on that one channel with a 1-thread context: the bits of the branch-by-branch version, in one
// region instead of thirteen (each a wake-up of the other threads, about 40 us on a 2-core VM).
static int pyr_branches(const nn_ctx *ctx, nn_arena *A, const pyrpool *p, const float *Y, int h, int w,
                        const int *hs, const int *ws, float *cat, err *e) {
    const int P = p->P, nth = ctx->threads;
    const int64_t hw = (int64_t)h * w;
    int64_t most = 1;
    for (int i = 0; i < 5; i++) if ((int64_t)hs[i] * ws[i] > most) most = (int64_t)hs[i] * ws[i];
    float *scr = arena_floats(A, 2 * most * nth, "pyramid branch scratch", e);   // (threads, 2, most)
    if (!scr) return e->code;
    nn_ctx one = *ctx;
    one.threads = 1;
    one.prof = NULL;   // the workers share no profile: the branches' convs are counted here
    for (int i = 0; i < 5; i++) PROF_FLOP(ctx, conv2d_flop(&p->stages[i], i == 2 ? h : hs[i], i == 2 ? w : ws[i]));
    int bad = 0;
    #pragma omp parallel for schedule(dynamic, 1) num_threads(nth) reduction(|:bad)
    for (int it = 0; it < 5 * P; it++) {
        const int i = it / P, ch = it % P;
        float *a = scr + (size_t)omp_get_thread_num() * 2 * most, *b = a + most;
        const float *yc = Y + (size_t)ch * hw;
        float *out = cat + ((size_t)i * P + ch) * hw;
        conv2d c1 = p->stages[i];   // its channel ch: a 1-channel depthwise conv
        c1.c_in = c1.c_out = c1.groups = 1;
        c1.weight += (size_t)ch * 9;
        if (c1.bias) c1.bias += ch;
        c1.owned = 0;
        c1.winograd_u = NULL;
        err e1 = {0};
        if (i == 2) {
            bad |= conv2d_forward(&one, &c1, yc, h, w, out, &e1) != OODSEG_OK;
        } else if (i < 2) {   // up: resize -> conv -> adaptive pool back
            resize_bilinear(&one, yc, 1, h, w, a, hs[i], ws[i], 1);
            bad |= conv2d_forward(&one, &c1, a, hs[i], ws[i], b, &e1) != OODSEG_OK;
            adaptive_avgpool_forward(&one, b, 1, hs[i], ws[i], out, h, w);
        } else {              // down: adaptive pool -> conv -> resize back
            adaptive_avgpool_forward(&one, yc, 1, h, w, a, hs[i], ws[i]);
            bad |= conv2d_forward(&one, &c1, a, hs[i], ws[i], b, &e1) != OODSEG_OK;
            resize_bilinear(&one, b, 1, hs[i], ws[i], out, h, w, 1);
        }
    }
    arena_release(A, scr);
    return bad ? err_set(e, OODSEG_E_NOMEM, "out of memory in a pyramid branch's conv (its row pack)") : OODSEG_OK;
}

// x: (in, h, w) -> y: (out, h, w)
static int pyr_forward(const nn_ctx *ctx, nn_arena *A, const pyrpool *p, const float *x, int h, int w, float *y,
                       err *e) {
    int P = p->P, hs[5], ws[5];
    int64_t hw = (int64_t)h * w;
    for (int i = 0; i < 5; i++) {
        hs[i] = (int)ceil(h * pyr_scales[i]);
        ws[i] = (int)ceil(w * pyr_scales[i]);
        if (hs[i] < 5) hs[i] = 5;
        if (ws[i] < 5) ws[i] = 5;
    }
    float *Y = arena_floats(A, P * hw, "pyramid projection", e);   // (P, h, w)
    float *cat = Y ? arena_floats(A, 5 * P * hw, "pyramid concat", e) : NULL;   // (5P, h, w)
    float *a = cat ? arena_floats(A, 5 * P * hw, "pyramid shuffle", e) : NULL;  // (5P, h, w)
    if (!a) goto done;
    if (conv2d_forward_prelu(ctx, &p->proj, x, h, w, p->proj_act, Y, e)) goto done;
    if (pyr_branches(ctx, A, p, Y, h, w, hs, ws, cat, e)) goto done;
    // merge_layer.0's BR, then merge_layer.1's channel shuffle(5), so that the grouped 3x3 conv
    // sees the 5 scales of each channel: one pass, into a
    batchnorm_prelu_shuffle(ctx, cat, 5 * P, hw, 5, p->merge_br.bn.gamma, p->merge_br.bn.beta, p->merge_br.bn.mean,
                            p->merge_br.bn.var, p->merge_br.eps, p->merge_br.slope, a);
    if (conv2d_forward_prelu(ctx, &p->merge_conv, a, h, w, p->merge_act, Y, e)) goto done;
    if (conv2d_forward_prelu(ctx, &p->last, Y, h, w, p->br_act, y, e)) goto done;   // (no PReLU: NULL)
done:
    arena_release(A, Y), arena_release(A, cat), arena_release(A, a);
    return e->code;
}

typedef struct pwconv {
    int nin, nout;
    conv2d wt;                // wt_layer.1: [nout, nin, 1, 1] on the global mean of the input
    conv2d expn;              // expansion_layer.cbr.0: [nout, nin/g, 3, 3] groups g, BN folded
    const float *expn_act;    // [nout]
} pwconv;

static int gcd(int a, int b) { while (b) { int t = a % b; a = b; b = t; } return a; }

static void ld_pw(wbind *L, pwconv *p, const char *name, int nin, int nout) {
    wb_push(L, "%s.", name);
    p->nin = nin; p->nout = nout;
    wb_conv(L, &p->wt, nin, nout, 1, 1, 1, 1, "wt_layer.1");
    wb_conv(L, &p->expn, nin, nout, 3, 1, 1, gcd(nin, nout), "expansion_layer.cbr.0");
    wb_conv_bn(L, &p->expn, V2_EPS, "expansion_layer.cbr.1");
    p->expn_act = wb_prelu(L, nout, "expansion_layer.cbr.2");
    wb_pop(L);
}

// y = PReLU(BN(gconv3x3(x))) * sigmoid(conv1x1(mean_hw(x)))
static int pw_forward(const nn_ctx *ctx, nn_arena *A, const pwconv *p, const float *x, int h, int w, float *y,
                      err *e) {
    int64_t hw = (int64_t)h * w;
    float *g = arena_floats(A, p->nin + p->nout, "EfficientPWConv weights", e);   // [mean (nin), weights (nout)]
    if (!g) return e->code;
    global_avgpool(ctx, x, p->nin, hw, g);
    if (conv2d_forward(ctx, &p->wt, g, 1, 1, g + p->nin, e)) { arena_release(A, g); return e->code; }
    sigmoid_inplace(ctx, g + p->nin, p->nout);
    if (conv2d_forward_prelu(ctx, &p->expn, x, h, w, p->expn_act, y, e)) { arena_release(A, g); return e->code; }
    scale_channels_inplace(ctx, y, p->nout, hw, g + p->nin);
    arena_release(A, g);
    return OODSEG_OK;
}

// ---- the model -------------------------------------------------------------------------------

typedef struct espnetv2 {
    ckpt *ck;
    double s;
    int ch[4];                // backbone widths at s2, s4, s8, s16 (config[0..3])
    int dec[4];               // decoder widths: 64, 48, 32, C
    int P;                    // pyramid projection width (10)
    int C;
    conv2d level1;            // base_net.level1: [ch0, 3, 3, 3] stride 2, BN folded; then PReLU
    const float *level1_act;  // [ch0]
    downsampler level2_0, level3_0, level4_0;
    eesp level3[3];           // EESP(ch2, ch2), r_lim 9
    eesp level4[7];           // EESP(ch3, ch3), r_lim 7
    pyrpool bu_dec[4];        // bu_dec_l1..l4
    pwconv merge[3];          // merge_enc_dec_l2..l4
    br bu_br[3];              // bu_br_l2..l4
    const char *names[20];
    uint8_t palette[20][3];
} espnetv2;

// n stride-1 EESP blocks on x (c, h, w), the last writing into y; intermediates ping-pong.
static int eesp_chain(const nn_ctx *ctx, nn_arena *A, const eesp *blk, int n, const float *x, int h, int w, float *y,
                      err *e) {
    int64_t sz = (int64_t)blk[0].n_out * h * w;
    float *t[2] = {NULL, NULL};
    for (int i = 0; i < n; i++) {
        float *dst = y;
        if (i < n - 1) {
            if (!t[i & 1] && !(t[i & 1] = arena_floats(A, sz, "EESP block output", e))) break;
            dst = t[i & 1];
        }
        if (eesp_forward(ctx, A, &blk[i], x, h, w, dst, e)) break;
        x = dst;
    }
    arena_release(A, t[0]);
    arena_release(A, t[1]);
    return e->code;
}

// One forward's activations, all arena blocks, NULL once dead. The steps are
// docs/espnet-espnetv2.md's V1..V20; level k is at stride 2^k, (H[k], W[k]).
typedef struct v2_run {
    const espnetv2 *n;
    const nn_ctx *ctx;
    nn_arena *A;
    const char *want;
    tensor_list *out;
    int H[5], W[5];
    int64_t hw[5];
    float *img[5];          // img[k]: the input pooled k times (3, H[k], W[k]); img[0] unused
    float *l[5];            // l[k]: the encoder's output at level k (ch[k-1], H[k], W[k]), k = 1..4
    float *d;               // the decoder's current map
} v2_run;

static void v2_release(v2_run *r) {
    for (int k = 0; k < 5; k++) {
        arena_release(r->A, r->img[k]), r->img[k] = NULL;
        arena_release(r->A, r->l[k]), r->l[k] = NULL;
    }
    arena_release(r->A, r->d), r->d = NULL;
}

// V1-V6: the backbone, l[1..4], with the pooled inputs its down-samplers reinforce from.
static int v2_backbone(v2_run *r, const float *input, err *e) {
    const espnetv2 *n = r->n;
    const nn_ctx *ctx = r->ctx;
    nn_arena *A = r->A;
    const int *ch = n->ch, *H = r->H, *W = r->W;
    const int64_t *hw = r->hw;
    PROF_BEGIN(ctx, PROF_STEM);   // the pooled inputs and level1; PROF_CONV_BLOCK from level2 on
    for (int k = 1; k < 5; k++) {
        if (!(r->img[k] = arena_floats(A, 3 * hw[k], "pooled input", e))) return e->code;
        avgpool3x3s2_forward(ctx, k == 1 ? input : r->img[k - 1], 3, H[k - 1], W[k - 1], r->img[k]);
    }
    if (!(r->l[1] = arena_floats(A, ch[0] * hw[1], "enc_l1_s2", e))) return e->code;
    if (conv2d_forward_prelu(ctx, &n->level1, input, H[0], W[0], n->level1_act, r->l[1], e)) return e->code;
    PROF_NEXT(ctx, PROF_CONV_BLOCK);
    if (!(r->l[2] = arena_floats(A, ch[1] * hw[2], "enc_l2_s4", e))) return e->code;
    if (down_forward(ctx, A, &n->level2_0, r->l[1], H[1], W[1], r->img[2], r->l[2], e)) return e->code;
    // levels 3 and 4: a down-sampler into t, then the EESP chain from t into l[k]
    const downsampler *down[2] = {&n->level3_0, &n->level4_0};
    const eesp *chain[2] = {n->level3, n->level4};
    static const int depth[2] = {3, 7};
    static const char *names[2][2] = {{"level3_0 output", "enc_l3_out_s8"}, {"level4_0 output", "enc_l4_out_s16"}};
    for (int j = 0; j < 2; j++) {
        int k = 3 + j;
        float *t = arena_floats(A, ch[k - 1] * hw[k], names[j][0], e);
        if (!t) return e->code;
        if (down_forward(ctx, A, down[j], r->l[k - 1], H[k - 1], W[k - 1], r->img[k], t, e) ||
            !(r->l[k] = arena_floats(A, ch[k - 1] * hw[k], names[j][1], e)) ||
            eesp_chain(ctx, A, chain[j], depth[j], t, H[k], W[k], r->l[k], e)) {
            arena_release(A, t);
            return e->code;
        }
        arena_release(A, t);
    }
    for (int k = 1; k < 5; k++) arena_release(A, r->img[k]), r->img[k] = NULL;
    PROF_END(ctx);
    return OODSEG_OK;
}

// V8-V19, step j = 0..2 (to s8, s4, s2): x2 up-sample d, add the EfficientPWConv of the encoder
// map, BR, pyramid into a new d. The encoder map dies here and goes to the output list.
static int v2_decoder_step(v2_run *r, int j, err *e) {
    static const char *br_names[3] = {"dec_l2_br_s8", "dec_l3_br_s4", "dec_l4_br_s2"};
    static const char *enc_names[3] = {"enc_l3_out_s8", "enc_l2_s4", "enc_l1_s2"};
    static const char *pyr_names[3] = {"dec_l2_pyr_s8", "dec_l3_pyr_s4", "dec_l4_pyr_s2_prelogits"};
    const espnetv2 *n = r->n;
    const nn_ctx *ctx = r->ctx;
    nn_arena *A = r->A;
    const int lv = 3 - j, c = n->dec[j], H = r->H[lv], W = r->W[lv];   // target level: s8, s4, s2
    const int64_t hw = r->hw[lv];
    float *up = NULL, *t = NULL;
    if (!(up = arena_floats(A, c * hw, "decoder up-sample", e))) goto done;
    PROF_BEGIN(ctx, PROF_RESIZE);
    resize_bilinear(ctx, r->d, c, r->H[lv + 1], r->W[lv + 1], up, H, W, 1);
    PROF_END(ctx);
    arena_release(A, r->d), r->d = NULL;
    if (!(t = arena_floats(A, c * hw, "decoder skip", e))) goto done;
    if (pw_forward(ctx, A, &n->merge[j], r->l[lv], H, W, t, e)) goto done;
    if (model_give(A, r->out, r->want, enc_names[j], &r->l[lv], n->ch[lv - 1], H, W, e)) goto done;
    add_inplace(ctx, t, up, c * hw);
    arena_release(A, up), up = NULL;
    br_apply(ctx, &n->bu_br[j], t, hw);
    if (model_emit(r->out, r->want, br_names[j], t, c, H, W, e)) goto done;
    if (!(r->d = arena_floats(A, n->dec[j + 1] * hw, "decoder pyramid", e))) goto done;
    PROF_BEGIN(ctx, PROF_PPM);
    int rc = pyr_forward(ctx, A, &n->bu_dec[j + 1], t, H, W, r->d, e);
    PROF_END(ctx);
    if (rc) goto done;
    arena_release(A, t), t = NULL;
    model_emit(r->out, r->want, pyr_names[j], r->d, n->dec[j + 1], H, W, e);
done:
    arena_release(A, up);
    arena_release(A, t);
    return e->code;
}

static int v2_decoder(v2_run *r, err *e) {
    const espnetv2 *n = r->n;
    // V7: bu_dec_l1 at s16
    if (!(r->d = arena_floats(r->A, n->dec[0] * r->hw[4], "dec_l1_pyr_s16", e))) return e->code;
    PROF_BEGIN(r->ctx, PROF_PPM);
    int rc = pyr_forward(r->ctx, r->A, &n->bu_dec[0], r->l[4], r->H[4], r->W[4], r->d, e);
    PROF_END(r->ctx);
    if (rc) return e->code;
    // the encoder maps are read-only once made: each goes to the output list (no copy) when it dies
    if (model_give(r->A, r->out, r->want, "enc_l4_out_s16", &r->l[4], n->ch[3], r->H[4], r->W[4], e)) return e->code;
    if (model_emit(r->out, r->want, "dec_l1_pyr_s16", r->d, n->dec[0], r->H[4], r->W[4], e)) return e->code;
    for (int j = 0; j < 3; j++)
        if (v2_decoder_step(r, j, e)) return e->code;
    // V20: bilinear (align_corners=True) from s2 to the input size, into the output list's memory
    tensor *lg = tl_add_uninit(r->out, "logits", 4, (int64_t[]){1, n->C, r->H[0], r->W[0]}, e);
    if (!lg) return e->code;
    PROF_BEGIN(r->ctx, PROF_RESIZE);
    resize_bilinear(r->ctx, r->d, n->C, r->H[1], r->W[1], lg->data, r->H[0], r->W[0], 1);
    PROF_END(r->ctx);
    return OODSEG_OK;
}

static int espnetv2_run(model *m, const float *input, int h, int w, const char *want,
                        tensor_list *out, err *e) {
    err_clear(e);
    if (h < 1 || w < 1 || (h % 16 != 0 && h % 16 != 15) || (w % 16 != 0 && w % 16 != 15))
        return err_set(e, OODSEG_E_ARG,
                       "ESPNetv2 input %dx%d (WxH): width and height must be multiples of 16 (or 15 mod 16), "
                       "since the decoder adds x2 up-sampled maps to the encoder's s8, s4 and s2 maps; e.g. %dx%d",
                       w, h, (w + 15) / 16 * 16, (h + 15) / 16 * 16);
    v2_run r = {.n = m->impl, .ctx = &m->ctx, .A = m->arena, .want = want, .out = out, .H = {h}, .W = {w}};
    for (int i = 1; i < 5; i++) { r.H[i] = (r.H[i - 1] + 1) / 2; r.W[i] = (r.W[i - 1] + 1) / 2; }
    for (int i = 0; i < 5; i++) r.hw[i] = (int64_t)r.H[i] * r.W[i];
    arena_reset(m->arena);
    if (!v2_backbone(&r, input, e)) {
        // Under bf16 only the backbone runs in bf16. The decoder makes the logits that every logit
        // method thresholds, and it has only four convs wide enough for bf16 (48 and 64 outputs, at
        // s16 and s8). Measured on the 233 CamVid-OOD images (tools/check-bf16-accuracy.sh): with
        // them in bf16, AP moved by up to 0.11 points against fp32 (maxlogit, entropy); in fp32, by
        // 0.09 at most.
        nn_ctx fp32 = m->ctx;
        fp32.precision = NN_FP32;
        r.ctx = &fp32;
        PROF_BEGIN(&m->ctx, PROF_DECODER);   // the merges and BRs; the pyramids and resizes nest
        v2_decoder(&r, e);
        PROF_END(&m->ctx);
    }
    v2_release(&r);
    arena_end(m->arena);
    return e->code;
}

// Denormal weights (dead channels) and activations would take x86's slow path; see nn/fpenv.c.
static int espnetv2_forward(model *m, const float *input, int h, int w, const char *want,
                            tensor_list *out, err *e) {
    nn_fpenv env;
    nn_denormals_off(&m->ctx, &env);
    int rc = espnetv2_run(m, input, h, w, want, out, e);
    nn_fpenv_restore(&env);
    return rc;
}

static void espnetv2_destroy(model *m) {
    if (!m) return;
    espnetv2 *n = m->impl;
    if (n) {
        conv2d_free(&n->level1);
        downsampler *ds[3] = {&n->level2_0, &n->level3_0, &n->level4_0};
        for (int i = 0; i < 3; i++) {
            eesp_free(&ds[i]->eesp);
            conv2d_free(&ds[i]->reinf0);
            conv2d_free(&ds[i]->reinf1);
        }
        for (int i = 0; i < 3; i++) eesp_free(&n->level3[i]);
        for (int i = 0; i < 7; i++) eesp_free(&n->level4[i]);
        for (int i = 0; i < 4; i++) pyr_free(&n->bu_dec[i]);
        for (int i = 0; i < 3; i++) { conv2d_free(&n->merge[i].wt); conv2d_free(&n->merge[i].expn); }
        ckpt_close(n->ck);
        free(n);
    }
    arena_free(m->arena);
    free(m);
}

// ---- recognition and creation -----------------------------------------------------------------

int espnetv2_detect(const ckpt *ck) {
    return ckpt_find(ck, "base_net.level1.conv.weight") && ckpt_find(ck, "base_net.level2_0.eesp.proj_1x1.conv.weight") &&
           ckpt_find(ck, "bu_dec_l1.projection_layer.cbr.0.weight");
}

// shape[dim] of a 4-d key, or -1
static int64_t dim_of(const ckpt *ck, const char *name, int dim) {
    int64_t s[8];
    return wb_shape(ck, s, "%s", name) == 4 ? s[dim] : -1;
}

// model/classification/espnetv2_config.py sc_ch_dict
static const struct { double s; int ch[4]; } widths[4] = {
    {0.5, {16, 32, 64, 128}}, {1.0, {32, 64, 128, 256}}, {1.5, {32, 96, 192, 384}}, {2.0, {32, 128, 256, 512}}};

// The width s from the backbone's channel counts; the decoder widths and P from the keys.
static int recognise(const ckpt *ck, espnetv2 *n, err *e) {
    int64_t got[4] = {dim_of(ck, "base_net.level1.conv.weight", 0),
                      dim_of(ck, "base_net.level2_0.inp_reinf.1.conv.weight", 0),
                      dim_of(ck, "base_net.level3_0.inp_reinf.1.conv.weight", 0),
                      dim_of(ck, "base_net.level4_0.inp_reinf.1.conv.weight", 0)};
    for (int i = 0; i < 4 && !n->s; i++)
        if (got[0] == widths[i].ch[0] && got[1] == widths[i].ch[1] && got[2] == widths[i].ch[2] &&
            got[3] == widths[i].ch[3]) {
            n->s = widths[i].s;
            memcpy(n->ch, widths[i].ch, sizeof n->ch);
        }
    if (!n->s)
        return err_set(e, OODSEG_E_MODEL, "%s: ESPNetv2 backbone widths [%lld, %lld, %lld, %lld] (base_net.level1.conv.weight, "
                       "base_net.level{2,3,4}_0.inp_reinf.1.conv.weight) match no released width s = 0.5, 1.0, 1.5, 2.0",
                       ck->path, (long long)got[0], (long long)got[1], (long long)got[2], (long long)got[3]);
    n->P = (int)dim_of(ck, "bu_dec_l1.projection_layer.cbr.0.weight", 0);
    n->dec[0] = (int)dim_of(ck, "bu_dec_l1.merge_layer.3.weight", 0);
    n->dec[1] = (int)dim_of(ck, "bu_dec_l2.merge_layer.3.weight", 0);
    n->dec[2] = (int)dim_of(ck, "bu_dec_l3.merge_layer.3.weight", 0);
    n->dec[3] = n->C = (int)dim_of(ck, "bu_dec_l4.merge_layer.3.weight", 0);
    if (n->P < 1 || n->dec[0] < 1 || n->dec[1] < 1 || n->dec[2] < 1 || n->C != 20)
        return err_set(e, OODSEG_E_MODEL, "%s: ESPNetv2 decoder keys bu_dec_l{1..4}.projection_layer.cbr.0.weight / "
                       "merge_layer.3.weight are missing or give %d classes; oodseg knows the 20-class Cityscapes "
                       "checkpoints", ck->path, n->C);
    return OODSEG_OK;
}

static void ld_backbone(wbind *L, espnetv2 *n) {
    const int *ch = n->ch;
    wb_push(L, "base_net.");
    wb_conv(L, &n->level1, 3, ch[0], 3, 2, 1, 1, "level1.conv");
    wb_conv_bn(L, &n->level1, V2_EPS, "level1.bn");
    n->level1_act = wb_prelu(L, ch[0], "level1.act");
    // recept_limit [13, 11, 9, 7, 5]: level2_0 13, level3_0 11, level3.* 9, level4_0 9, level4.* 7
    ld_down(L, &n->level2_0, "level2_0", ch[0], ch[1], 13);
    ld_down(L, &n->level3_0, "level3_0", ch[1], ch[2], 11);
    for (int i = 0; i < 3; i++) {
        wb_push(L, "level3.%d.", i);
        ld_eesp(L, &n->level3[i], ch[2], ch[2], 1, 9);
        wb_pop(L);
    }
    ld_down(L, &n->level4_0, "level4_0", ch[2], ch[3], 9);
    for (int i = 0; i < 7; i++) {
        wb_push(L, "level4.%d.", i);
        ld_eesp(L, &n->level4[i], ch[3], ch[3], 1, 7);
        wb_pop(L);
    }
    wb_pop(L);
}

static void ld_decoder(wbind *L, espnetv2 *n);

int espnetv2_keys(ckpt *ck, double s, err *e) {
    espnetv2 *n = err_calloc(e, 1, sizeof *n, "ESPNetv2 key list");
    if (!n) return e->code;
    for (int i = 0; i < 4; i++)
        if (widths[i].s == s) n->s = s, memcpy(n->ch, widths[i].ch, sizeof n->ch);
    // EdgeNets' Cityscapes decoder: dec_feat_dict['city'] = 16, so planes 64, 48, 32 and the 20
    // classes; P = min(classes // 2, 16) = 10
    static const int dec[4] = {64, 48, 32, 20};
    memcpy(n->dec, dec, sizeof n->dec);
    n->P = 10, n->C = 20;
    if (!n->s) err_set(e, OODSEG_E_ARG, "ESPNetv2 width s = %g: the released widths are 0.5, 1.0, 1.5, 2.0", s);
    else {
        wbind L;
        wb_init(&L, ck, e);
        L.make_keys = 1;
        ld_backbone(&L, n);
        ld_decoder(&L, n);
    }
    free(n);
    return e->code;
}

static void ld_decoder(wbind *L, espnetv2 *n) {
    const int *ch = n->ch, *dec = n->dec;
    ld_pyr(L, &n->bu_dec[0], "bu_dec_l1", ch[3], n->P, dec[0], 1);
    ld_pyr(L, &n->bu_dec[1], "bu_dec_l2", dec[0], n->P, dec[1], 1);
    ld_pyr(L, &n->bu_dec[2], "bu_dec_l3", dec[1], n->P, dec[2], 1);
    ld_pyr(L, &n->bu_dec[3], "bu_dec_l4", dec[2], n->P, dec[3], 0);
    // merge_enc_dec_l2 on the s8 map, _l3 on s4, _l4 on s2
    ld_pw(L, &n->merge[0], "merge_enc_dec_l2", ch[2], dec[0]);
    ld_pw(L, &n->merge[1], "merge_enc_dec_l3", ch[1], dec[1]);
    ld_pw(L, &n->merge[2], "merge_enc_dec_l4", ch[0], dec[2]);
    for (int j = 0; j < 3; j++) {
        wb_push(L, "bu_br_l%d.", j + 2);
        br_bind(L, &n->bu_br[j], dec[j], V2_EPS, "0", "1");
        wb_pop(L);
    }
}

// Binds every key and checks that none is left over.
static int bind(ckpt *ck, espnetv2 *n, err *e) {
    wbind L;
    wb_init(&L, ck, e);
    ld_backbone(&L, n);
    ld_decoder(&L, n);
    if (e->code) return e->code;
    if (L.no_data)
        return err_set(e, OODSEG_E_MODEL, "checkpoint '%s' has key names and shapes but no weights", ck->path);
    // The stride-2 EESPs return before their activation: their module_act is in the file but unused.
    static const char *const ignore[] = {"num_batches_tracked", "base_net.level2_0.eesp.module_act.weight",
                                         "base_net.level3_0.eesp.module_act.weight",
                                         "base_net.level4_0.eesp.module_act.weight"};
    const ckpt_entry *u = ckpt_first_unused(ck, ignore, 4);
    if (u) return err_set(e, OODSEG_E_MODEL, "%s: unexpected key '%s' for ESPNetv2 (s=%.1f)", ck->path, u->name, n->s);
    return OODSEG_OK;
}

// Names, classes, the test pipeline of test_segmentation.py and the feature taps.
static void fill_desc(model_desc *d, espnetv2 *n, const ckpt *ck) {
    const int *ch = n->ch;
    snprintf(d->arch, sizeof d->arch, "espnetv2-s%.1f", n->s);
    snprintf(d->dataset, sizeof d->dataset, "cityscapes");
    snprintf(d->title, sizeof d->title, "ESPNetv2 (s=%.1f), Cityscapes", n->s);
    snprintf(d->source_format, sizeof d->source_format, "%s", ck->format);
    snprintf(d->source_dtype, sizeof d->source_dtype, "F32");
    d->num_params = ckpt_num_float_params(ck);
    for (int i = 0; i < 19; i++) {
        n->names[i] = cityscapes_classes[i];
        memcpy(n->palette[i], cityscapes_palette[i], 3);
    }
    n->names[19] = "background";   // the trained ignore class; never in-distribution
    d->num_outputs = 20;
    d->num_id = 19;
    for (int i = 0; i < 19; i++) d->id_channels[i] = i;
    d->class_names = n->names;
    d->palette = (const uint8_t (*)[3])n->palette;
    // test_segmentation.py: PIL RGB, resize((1024, 512), BILINEAR), to_tensor (/255), ImageNet mean/std
    preprocess *p = &d->pre;
    p->bgr = 0;
    // to_tensor divides by 255 first, then normalize works on 0..1 (unit_range keeps that order,
    // bit-exact; the mean/std stay on the 0..1 scale)
    static const float mean[3] = {0.485f, 0.456f, 0.406f};
    static const float stdv[3] = {0.229f, 0.224f, 0.225f};
    p->unit_range = 1;
    memcpy(p->mean, mean, sizeof mean);
    memcpy(p->std, stdv, sizeof stdv);
    p->scale_after = 1.0f;
    p->order = PRE_RESIZE_THEN_NORMALISE;
    p->interp = INTERP_PIL_BILINEAR;
    p->size_rule = SIZE_FIXED;
    p->size_w = 1024;
    p->size_h = 512;
    p->h_mod = p->w_mod = 16;
    tap_info taps[4] = {{"enc_l1_s2", 2, ch[0]}, {"enc_l2_s4", 4, ch[1]}, {"enc_l3_out_s8", 8, ch[2]},
                        {"enc_l4_out_s16", 16, ch[3]}};
    d->num_taps = 4;
    memcpy(d->taps, taps, sizeof taps);
    // As for ESPNet, the three deepest encoder levels: the outputs of the three EESP stages (s4, s8,
    // s16). level1 (s2) is a single 3x3 conv, too close to the pixels to separate objects, and at s2
    // it would give K-Means 4x the points of s4.
    snprintf(d->default_taps, sizeof d->default_taps, "enc_l2_s4,enc_l3_out_s8,enc_l4_out_s16");
    d->logits_stride = 1;
}

int espnetv2_create(ckpt *ck, const model_options *opt, model **out, err *e) {
    *out = NULL;
    err_clear(e);
    model *m = err_calloc(e, 1, sizeof *m, "ESPNetv2 model");
    espnetv2 *n = err_calloc(e, 1, sizeof *n, "ESPNetv2 model");
    if (!m || !n) { free(m); free(n); ckpt_close(ck); return e->code; }
    m->impl = n;
    m->forward = espnetv2_forward;
    m->destroy = espnetv2_destroy;
    m->shareable = 1;   // the forward reads the weights only
    n->ck = ck;
    if (model_arena_open(m, e) || recognise(ck, n, e) || bind(ck, n, e)) goto fail;
    fill_desc(&m->desc, n, ck);
    if (opt && opt->id_channels && model_set_id_channels(&m->desc, opt->id_channels, e)) goto fail;
    *out = m;
    return OODSEG_OK;
fail:
    espnetv2_destroy(m);
    return e->code;
}

// ---- activation estimate (model.estimate) -----------------------------------------------------

// One EESP on an (h, w) input: its projection (n, h, w) and concat (nOut, ho, wo).
static uint64_t eesp_bytes(const eesp *b, int h, int w) {
    int ho = b->stride == 2 ? (h + 1) / 2 : h, wo = b->stride == 2 ? (w + 1) / 2 : w;
    return EST_F((int64_t)b->n * h * w + (int64_t)b->n_out * ho * wo);
}

// One pyramid pooling on (h, w): its projection, concat and two branch buffers, as pyr_forward sizes them.
static uint64_t pyr_bytes(const pyrpool *p, int h, int w, int threads) {
    int64_t hw = (int64_t)h * w, most = 1;   // Y, cat, the shuffle, and two branch maps per thread
    for (int i = 0; i < 5; i++) {
        int hs = (int)ceil(h * pyr_scales[i]), ws = (int)ceil(w * pyr_scales[i]);
        hs = hs < 5 ? 5 : hs, ws = ws < 5 ? 5 : ws;
        if ((int64_t)hs * ws > most) most = (int64_t)hs * ws;
    }
    return EST_F(11 * (int64_t)p->P * hw + 2 * most * (threads > 0 ? threads : 1));
}

// The live peak of espnetv2_run: the largest of the sets of blocks alive together at each step of
// the backbone (V1-V6) and the decoder (V7-V19), with the block sizes of the forward itself.
uint64_t espnetv2_estimate(const model *m, int h, int w) {
    const espnetv2 *n = m->impl;
    int H[5] = {h}, W[5] = {w};
    uint64_t hw[5], l[5] = {0}, img = 0, peak = 0;
    for (int i = 1; i < 5; i++) H[i] = (H[i - 1] + 1) / 2, W[i] = (W[i - 1] + 1) / 2;
    for (int i = 0; i < 5; i++) hw[i] = (uint64_t)H[i] * W[i];
    for (int k = 1; k < 5; k++) img += EST_F(3 * hw[k]), l[k] = EST_F(n->ch[k - 1] * hw[k]);
    // V1-V6: the pooled inputs and the levels made so far, with each down-sampler and EESP chain's scratch
    const downsampler *down[3] = {&n->level2_0, &n->level3_0, &n->level4_0};
    uint64_t enc = img + l[1];
    peak = enc;
    for (int k = 2; k < 5; k++) {
        uint64_t d = eesp_bytes(&down[k - 2]->eesp, H[k - 1], W[k - 1]) + EST_F(3 * hw[k]);
        if (k == 2) peak = max_u64(peak, enc + l[2] + d);
        else {
            const eesp *chain = k == 3 ? n->level3 : n->level4;
            peak = max_u64(peak, enc + l[k] + d);                                            // t, down-sampler
            peak = max_u64(peak, enc + 4 * l[k] + eesp_bytes(&chain[0], H[k], W[k]));      // t, l[k], ping-pong
        }
        enc += l[k];
    }
    // V7: bu_dec_l1 at s16 beside every encoder map
    uint64_t maps = l[1] + l[2] + l[3] + l[4];
    peak = max_u64(peak, maps + EST_F(n->dec[0] * hw[4]) + pyr_bytes(&n->bu_dec[0], H[4], W[4], m->ctx.threads));
    // V8-V19: per step, the up-sampled and skip maps, then the pyramid into the next d
    for (int j = 0; j < 3; j++) {
        int lv = 3 - j;
        uint64_t c = EST_F(n->dec[j] * hw[lv]), below = 0;
        for (int k = 1; k < lv; k++) below += l[k];
        peak = max_u64(peak, below + l[lv] + c + max_u64(c, EST_F(n->dec[j] * hw[lv + 1])));   // up beside d, then t
        peak = max_u64(peak, below + c + EST_F(n->dec[j + 1] * hw[lv]) + pyr_bytes(&n->bu_dec[j + 1], H[lv], W[lv], m->ctx.threads));
    }
    return peak + EST_SLACK;
}
