// The OoD methods: baselines against double formulas, the kmeans method on synthetic feature maps
// (a planted low-confidence cluster must be found and ranked first; none flagged without one),
// S2, bilinear upsampling, fused taps, determinism, errors, the centroid method, calibrated tau
// (files read once, when the method is opened), the method and option tables, and the pictures.
#include "test.h"
#include "../ood/method.h"
#include "../io/image.h"
#include "../io/pictures.h"
#include <stdlib.h>
#include <string.h>

static uint64_t rs = 1;
static double runi(void) {
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    return (double)(rs >> 11) * 0x1.0p-53;
}

// A synthetic image: logits (nout, H, W) and feature taps. The ID channels are 0..nid-1; the last
// channel (when nout > nid) plays the background and carries a huge logit that must be ignored.
typedef struct synth {
    int H, W, nout, nid;
    float *logits;
    int id[8];
    tensor taps[4];
    const tensor *tp[4];
    int strides[4], ntaps;
    ood_input in;
} synth;

static void synth_init(synth *s, int H, int W, int nid, int bg) {
    memset(s, 0, sizeof *s);
    s->H = H; s->W = W; s->nid = nid; s->nout = nid + (bg ? 1 : 0);
    s->logits = calloc((size_t)s->nout * H * W, sizeof(float));
    for (int i = 0; i < nid; i++) s->id[i] = i;
    if (bg) for (int64_t p = 0; p < (int64_t)H * W; p++) s->logits[(int64_t)nid * H * W + p] = 100.0f;
}

static float *synth_tap(synth *s, const char *name, int C, int stride) {
    tensor *t = &s->taps[s->ntaps];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = 4;
    t->shape[0] = 1; t->shape[1] = C;
    t->shape[2] = (s->H + stride - 1) / stride; t->shape[3] = (s->W + stride - 1) / stride;
    t->data = calloc((size_t)C * t->shape[2] * t->shape[3], sizeof(float));
    s->tp[s->ntaps] = t;
    s->strides[s->ntaps++] = stride;
    return t->data;
}

static const ood_input *synth_in(synth *s) {
    s->in = (ood_input){s->logits, s->nout, s->H, s->W, s->id, s->nid, s->tp, s->strides, s->ntaps, NULL, NULL};
    return &s->in;
}

static void synth_free(synth *s) {
    free(s->logits);
    for (int i = 0; i < s->ntaps; i++) free(s->taps[i].data);
}

static nn_ctx ctx2 = {.threads = 2, .device = NN_DEVICE_CPU, .conv_winograd = 1};   // two threads unless a test says otherwise

// Opens the method `name` with o, scores one input with ctx, closes it.
static int score_ctx(const nn_ctx *ctx, const char *name, const ood_input *in, const ood_options *o, float *sc,
                     ood_aux *aux, err *e) {
    ood_method *m;
    int rc = ood_method_open(name, o, &m, e);
    if (rc) return rc;
    rc = ood_method_score(m, ctx, in, sc, aux, e);
    ood_method_close(m);
    return rc;
}

static int score_with(const char *name, const ood_input *in, const ood_options *o, float *sc, ood_aux *aux, err *e) {
    return score_ctx(&ctx2, name, in, o, sc, aux, e);
}

// ---- baselines ------------------------------------------------------------------------------
TEST(baselines_match_double_formulas_and_skip_background) {
    synth s;
    synth_init(&s, 1, 4, 3, 1);
    const float z[3][4] = {{1, 0, 1000, -3}, {2, 0, 999, -3}, {-1, 0, 990, 5}};
    for (int j = 0; j < 3; j++) for (int p = 0; p < 4; p++) s.logits[j * 4 + p] = z[j][p];
    const ood_input *in = synth_in(&s);
    float sc[4];
    err e = {0};
    enum { MSP, MAXLOGIT, ENTROPY, ENERGY };
    const char *names[] = {"msp", "maxlogit", "entropy", "energy"};
    for (int m = MSP; m <= ENERGY; m++) {
        double T = m == ENERGY ? 2.0 : 1.0;
        ood_options o;
        ood_options_default(&o);
        o.energy_T = T;
        REQUIRE(score_with(names[m], in, &o, sc, NULL, &e) == OODSEG_OK, "%s", e.msg);
        for (int p = 0; p < 4; p++) {
            double mx = -1e300;
            for (int j = 0; j < 3; j++) if (z[j][p] > mx) mx = z[j][p];
            double S = 0, H = 0, ST = 0;
            for (int j = 0; j < 3; j++) S += exp(z[j][p] - mx);
            for (int j = 0; j < 3; j++) { double q = exp(z[j][p] - mx) / S; if (q > 0) H -= q * log(q); }
            for (int j = 0; j < 3; j++) ST += exp((z[j][p] - mx) / T);
            double want = m == MSP ? 1 - 1 / S : m == MAXLOGIT ? -mx : m == ENTROPY ? H
                        : -(mx + T * log(ST));
            CHECK_NEAR(sc[p], want, 1e-5 * (1 + fabs(want)));
        }
    }
    // by hand: pixel 1 has three equal logits: MSP 2/3, entropy ln 3, energy -(0 + ln 3), maxlogit 0
    ood_options o;
    ood_options_default(&o);
    REQUIRE(score_with("msp", in, &o, sc, NULL, &e) == 0);
    CHECK_NEAR(sc[1], 2.0 / 3.0, 1e-7);
    REQUIRE(score_with("entropy", in, &o, sc, NULL, &e) == 0);
    CHECK_NEAR(sc[1], log(3.0), 1e-6);
    REQUIRE(score_with("energy", in, &o, sc, NULL, &e) == 0);
    CHECK_NEAR(sc[1], -log(3.0), 1e-6);
    CHECK(isfinite(sc[2]), "energy overflowed on logits near 1000");
    REQUIRE(score_with("maxlogit", in, &o, sc, NULL, &e) == 0);
    CHECK(sc[0] == -2.0f && sc[3] == -5.0f, "%g %g (the background channel must be ignored)", sc[0], sc[3]);
    // NaN logits are an error naming the pixel
    s.logits[1 * 4 + 2] = NAN;
    CHECK(score_with("msp", in, &o, sc, NULL, &e) == OODSEG_E_ARG);
    CHECK(strstr(e.msg, "x 2") != NULL, "%s", e.msg);
    synth_free(&s);
}

// ---- the kmeans method ----------------------------------------------------------------------
// 32x32 logits, a tap (8 channels, stride 4 -> 8x8 cells). Background pixels: features near e0 or
// e1 (two halves), max-logit ~10. Planted square (cells 2..3 x 5..6 -> pixels 8..15 x 20..27):
// features near e5, max-logit ~1.
static void make_planted(synth *s, int planted) {
    synth_init(s, 32, 32, 3, 1);
    float *f = synth_tap(s, "backbone.out3", 8, 4);
    rs = 12345;
    for (int cy = 0; cy < 8; cy++)
        for (int cx = 0; cx < 8; cx++) {
            int pl = planted && cy >= 2 && cy <= 3 && cx >= 5 && cx <= 6;
            int dir = pl ? 5 : (cx < 4 ? 0 : 1);
            for (int c = 0; c < 8; c++) f[c * 64 + cy * 8 + cx] = (float)((c == dir ? 1.0 : 0.0) + 0.05 * (runi() - 0.5));
        }
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) {
            int pl = planted && y >= 8 && y < 16 && x >= 20 && x < 28;
            float top = (float)((pl ? 1.0 : 10.0) + runi());
            int64_t p = y * 32 + x;
            s->logits[0 * 1024 + p] = top;
            s->logits[1 * 1024 + p] = top - 2;
            s->logits[2 * 1024 + p] = (float)(runi() - 3);
        }
}

static int in_square(int64_t p) { int y = (int)(p / 32), x = (int)(p % 32); return y >= 8 && y < 16 && x >= 20 && x < 28; }

TEST(kmeans_finds_planted_cluster_and_s1_ranks_it_first) {
    synth s;
    make_planted(&s, 1);
    ood_options o;
    ood_options_default(&o);
    o.km.k = 4;
    o.score = SCORE_S1;   // this test is about S1 (the default is S2)
    o.tau_mode = TAU_PERCENTILE;
    o.tau = 25;
    float sc[1024];
    int32_t cl[1024];
    ood_aux aux = {.clusters = cl};
    err e = {0};
    REQUIRE(score_with("kmeans", synth_in(&s), &o, sc, &aux, &e) == OODSEG_OK, "%s", e.msg);
    CHECK(aux.k == 4);
    int c0 = cl[10 * 32 + 22];
    CHECK(aux.ood_flag[c0], "the planted cluster is not flagged (tau %g)", aux.tau_used);
    int nflag = 0;
    for (int c = 0; c < 4; c++) nflag += aux.ood_flag[c];
    CHECK(nflag == 1, "%d clusters flagged", nflag);
    float minin = INFINITY, maxout = -INFINITY;
    for (int64_t p = 0; p < 1024; p++) {
        if (in_square(p)) { CHECK(cl[p] == c0, "pixel %lld not in the planted cluster", (long long)p); if (sc[p] < minin) minin = sc[p]; }
        else { CHECK(cl[p] != c0); if (sc[p] > maxout) maxout = sc[p]; }
    }
    CHECK(minin > maxout, "S1 does not rank the planted cluster first: %g <= %g", minin, maxout);
    // S1 within a group is -maxlogit (auto B shifts the OoD group only)
    CHECK_NEAR(sc[0], -s.logits[0], 1e-5);
    // S2: the cluster mean of -maxlogit, constant per cluster
    o.score = SCORE_S2;
    float s2[1024];
    REQUIRE(score_with("kmeans", synth_in(&s), &o, s2, &aux, &e) == OODSEG_OK, "%s", e.msg);
    double m = 0;
    int nm = 0;
    for (int64_t p = 0; p < 1024; p++) if (cl[p] == c0) { m -= s.logits[p]; nm++; }
    CHECK_NEAR(s2[10 * 32 + 22], m / nm, 1e-4);
    for (int64_t p = 0; p < 1024; p++) if (cl[p] == c0) CHECK(s2[p] == s2[10 * 32 + 22]);
    // absolute tau: mean < 5 only for the planted cluster
    o.score = SCORE_S1;
    o.tau_mode = TAU_ABSOLUTE;
    o.tau = 5;
    REQUIRE(score_with("kmeans", synth_in(&s), &o, sc, &aux, &e) == OODSEG_OK, "%s", e.msg);
    CHECK(aux.ood_flag[cl[10 * 32 + 22]] && aux.tau_used == 5);
    // fraction statistic
    o.stat = STAT_FRACTION;
    o.rho = 0.5;
    REQUIRE(score_with("kmeans", synth_in(&s), &o, sc, &aux, &e) == OODSEG_OK, "%s", e.msg);
    nflag = 0;
    for (int c = 0; c < 4; c++) nflag += aux.ood_flag[c];
    CHECK(aux.ood_flag[cl[10 * 32 + 22]] && nflag == 1, "fraction: %d flagged", nflag);
    synth_free(&s);
}

TEST(kmeans_flags_nothing_without_planted_cluster) {
    synth s;
    make_planted(&s, 0);
    ood_options o;
    ood_options_default(&o);
    o.km.k = 4;
    o.score = SCORE_S1;   // with nothing flagged, S1 is -maxlogit everywhere
    o.tau_mode = TAU_ABSOLUTE;
    o.tau = 5;
    float sc[1024];
    ood_aux aux = {0};
    err e = {0};
    REQUIRE(score_with("kmeans", synth_in(&s), &o, sc, &aux, &e) == OODSEG_OK, "%s", e.msg);
    for (int c = 0; c < 4; c++) CHECK(!aux.ood_flag[c], "cluster %d flagged", c);
    for (int64_t p = 0; p < 1024; p++) CHECK_NEAR(sc[p], -s.logits[p], 1e-5);
    synth_free(&s);
}

TEST(kmeans_bilinear_upsample_and_determinism) {
    synth s;
    make_planted(&s, 1);
    ood_options o;
    ood_options_default(&o);
    o.km.k = 4;
    o.upsample = UPS_BILINEAR;
    float a[1024], b[1024];
    int32_t cl[1024], cl2[1024];
    ood_aux aux = {.clusters = cl}, aux2 = {.clusters = cl2};
    err e = {0};
    REQUIRE(score_with("kmeans", synth_in(&s), &o, a, &aux, &e) == OODSEG_OK, "%s", e.msg);
    int c0 = cl[11 * 32 + 23];
    CHECK(aux.ood_flag[c0]);
    int inter = 0, uni = 0;
    for (int64_t p = 0; p < 1024; p++) { int f = cl[p] == c0, g = in_square(p); inter += f && g; uni += f || g; }
    CHECK(inter >= 0.6 * uni, "bilinear cluster map far from the square: IoU %d/%d", inter, uni);
    nn_ctx ctx1 = {.threads = 1, .device = NN_DEVICE_CPU, .conv_winograd = 1};
    REQUIRE(score_ctx(&ctx1, "kmeans", synth_in(&s), &o, b, &aux2, &e) == OODSEG_OK, "%s", e.msg);
    CHECK(memcmp(a, b, sizeof a) == 0 && memcmp(cl, cl2, sizeof cl) == 0, "not deterministic across threads");
    synth_free(&s);
}

// The max logit goes over blocks of pixels channel by channel (ood_block_max), and a caller may
// compute it once for all methods (ood_input.max_logit/argmax): against a per-pixel loop, ties
// (the first channel wins) and a last block shorter than OOD_BLOCK included, and every method's
// scores the same bits with and without the shared map, for 1 and 3 threads.
TEST(shared_max_logit_matches_per_pixel_and_gives_same_scores) {
    synth s;
    const int H = 23, W = 45, nid = 5;   // 1035 pixels: four whole blocks and a short one
    const int64_t hw = (int64_t)H * W;
    synth_init(&s, H, W, nid, 1);
    rs = 777;
    for (int j = 0; j < nid; j++)
        for (int64_t p = 0; p < hw; p++) s.logits[j * hw + p] = (float)floor(4 * runi());   // many ties
    float *f = synth_tap(&s, "feat", 6, 4);
    for (int64_t q = 0; q < 6 * s.taps[0].shape[2] * s.taps[0].shape[3]; q++) f[q] = (float)runi();
    const ood_input *in = synth_in(&s);
    float *ml = malloc(sizeof(float) * hw), *conf = malloc(sizeof(float) * hw), *conf2 = malloc(sizeof(float) * hw);
    int32_t *arg = malloc(sizeof(int32_t) * hw);
    err e = {0};
    REQUIRE(ood_max_logit(&ctx2, in, ml, arg, conf, &e) == OODSEG_OK, "%s", e.msg);
    int bad = 0;
    for (int64_t p = 0; p < hw; p++) {
        float m = -INFINITY;
        int a = 0;
        double sum = 0;
        for (int j = 0; j < nid; j++) if (s.logits[j * hw + p] > m) { m = s.logits[j * hw + p]; a = j; }
        for (int j = 0; j < nid; j++) sum += exp((double)s.logits[j * hw + p] - m);
        bad += ml[p] != m || arg[p] != a || conf[p] != (float)(1.0 / sum);
    }
    CHECK(bad == 0, "%d of %lld pixels differ from the per-pixel loop", bad, (long long)hw);
    ood_input shared = *in;
    shared.max_logit = ml;
    shared.argmax = arg;
    float *ml2 = malloc(sizeof(float) * hw);
    int32_t *arg2 = malloc(sizeof(int32_t) * hw);
    REQUIRE(ood_max_logit(&ctx2, &shared, ml2, arg2, conf2, &e) == OODSEG_OK, "%s", e.msg);
    CHECK(memcmp(conf, conf2, sizeof(float) * hw) == 0 && memcmp(ml, ml2, sizeof(float) * hw) == 0 &&
          memcmp(arg, arg2, sizeof(int32_t) * hw) == 0, "other outputs with the shared max logit");
    free(ml2); free(arg2);
    nn_ctx ctx3 = {.threads = 3, .device = NN_DEVICE_CPU, .conv_winograd = 1};
    const char *names[] = {"msp", "maxlogit", "entropy", "energy", "kmeans"};
    float *a = malloc(sizeof(float) * hw), *b = malloc(sizeof(float) * hw), *c = malloc(sizeof(float) * hw);
    for (int m = 0; m < 5; m++) {
        ood_options o;
        ood_options_default(&o);
        o.km.k = 3;
        REQUIRE(score_with(names[m], in, &o, a, NULL, &e) == OODSEG_OK, "%s: %s", names[m], e.msg);
        REQUIRE(score_with(names[m], &shared, &o, b, NULL, &e) == OODSEG_OK, "%s: %s", names[m], e.msg);
        REQUIRE(score_ctx(&ctx3, names[m], &shared, &o, c, NULL, &e) == OODSEG_OK, "%s: %s", names[m], e.msg);
        CHECK(memcmp(a, b, sizeof(float) * hw) == 0, "%s: other scores with the shared max logit", names[m]);
        CHECK(memcmp(a, c, sizeof(float) * hw) == 0, "%s: other scores with 3 threads", names[m]);
    }
    // a NaN in the short last block is found and named
    s.logits[2 * hw + hw - 3] = NAN;
    CHECK(ood_max_logit(&ctx2, in, ml, arg, NULL, &e) == OODSEG_E_ARG && strstr(e.msg, "x 42, y 22"), "%s", e.msg);
    free(ml); free(conf); free(conf2); free(arg); free(a); free(b); free(c);
    synth_free(&s);
}

TEST(fused_taps_of_different_strides) {
    synth s;
    make_planted(&s, 1);
    // a second tap at stride 8 (4x4 cells), 3 channels, constant per cell
    float *g = synth_tap(&s, "backbone.out4", 3, 8);
    for (int c = 0; c < 3; c++) for (int q = 0; q < 16; q++) g[c * 16 + q] = (float)(c + q);
    ood_options o;
    ood_options_default(&o);
    o.l2norm = 0;
    float *X;
    int gh, gw, D, fs;
    err e = {0};
    REQUIRE(ood_fuse_features(&ctx2, synth_in(&s), &o, &X, &gh, &gw, &D, &fs, &e) == 0, "%s", e.msg);
    CHECK(gh == 4 && gw == 4 && D == 11 && fs == 8, "%d x %d x %d stride %d", gh, gw, D, fs);
    // the stride-4 tap average-pooled 2x2
    const float *f = s.taps[0].data;
    double want = (f[0 * 64 + 0] + f[1] + f[8] + f[9]) / 4.0;
    CHECK_NEAR(X[0], want, 1e-6);
    CHECK_NEAR(X[5 * D + 8 + 2], 2 + 5, 1e-6);
    free(X);
    o.fuse_stride = 4;   // finer: the stride-8 tap bilinearly upsampled
    REQUIRE(ood_fuse_features(&ctx2, synth_in(&s), &o, &X, &gh, &gw, &D, &fs, &e) == 0, "%s", e.msg);
    CHECK(gh == 8 && gw == 8 && fs == 4);
    CHECK_NEAR(X[0 * D + 8], 0, 1e-6);          // corner: value of cell 0
    CHECK_NEAR(X[(0 * 8 + 1) * D + 8], 0.25, 1e-6); // src x = 0.25
    free(X);
    // per-tap L2: each tap's part has unit norm (on the coarsest grid no tap is interpolated)
    o.l2norm = 1;
    o.fuse_stride = 0;
    REQUIRE(ood_fuse_features(&ctx2, synth_in(&s), &o, &X, &gh, &gw, &D, &fs, &e) == 0, "%s", e.msg);
    double n2 = 0;
    for (int c = 8; c < 11; c++) n2 += X[3 * D + c] * X[3 * D + c];
    CHECK_NEAR(n2, 1.0, 1e-5);
    free(X);
    // the method still finds the planted cluster on the fused features
    o.km.k = 4;
    float sc[1024];
    int32_t cl[1024];
    ood_aux aux = {.clusters = cl};
    REQUIRE(score_with("kmeans", synth_in(&s), &o, sc, &aux, &e) == OODSEG_OK, "%s", e.msg);
    CHECK(aux.ood_flag[cl[10 * 32 + 22]], "planted cluster not found with fused taps");
    synth_free(&s);
}

TEST(errors_are_clear) {
    synth s;
    make_planted(&s, 1);
    ood_options o;
    ood_options_default(&o);
    float sc[1024];
    err e = {0};
    o.km.k = 100;   // 64 feature vectors
    CHECK(score_with("kmeans", synth_in(&s), &o, sc, NULL, &e) == OODSEG_E_ARG);
    CHECK(strstr(e.msg, "--k 100") && strstr(e.msg, "64"), "%s", e.msg);
    o.km.k = 4;
    // a non-finite feature is named with its channel and pixel, found by the L2 norms (default)
    // and without them (77 = channel 1, x 5, y 1 of the 8 x 8 grid)
    for (int l2 = 1; l2 >= 0; l2--)
        for (int inf = 0; inf < 2; inf++) {
            s.taps[0].data[77] = inf ? -INFINITY : NAN;
            o.l2norm = l2;
            CHECK(score_with("kmeans", synth_in(&s), &o, sc, NULL, &e) == OODSEG_E_ARG);
            CHECK(strstr(e.msg, "backbone.out3") && strstr(e.msg, inf ? "Inf" : "NaN") &&
                  strstr(e.msg, "channel 1, (x 5, y 1)"), "l2norm %d: %s", l2, e.msg);
        }
    o.l2norm = 1;
    s.taps[0].data[77] = 0.5f;
    // in a later block of the scan (4096 values), in a second tap
    float *g = synth_tap(&s, "backbone.wide", 80, 4);   // 80 x 64 values
    for (int l2 = 1; l2 >= 0; l2--) {
        o.l2norm = l2;
        g[4500] = NAN;   // channel 70, pixel 20
        CHECK(score_with("kmeans", synth_in(&s), &o, sc, NULL, &e) == OODSEG_E_ARG);
        CHECK(strstr(e.msg, "backbone.wide") && strstr(e.msg, "channel 70, (x 4, y 2)"), "l2norm %d: %s", l2, e.msg);
        g[4500] = 0;
        CHECK(score_with("kmeans", synth_in(&s), &o, sc, NULL, &e) == OODSEG_OK, "l2norm %d: %s", l2, e.msg);
    }
    free(s.taps[--s.ntaps].data);
    o.l2norm = 1;
    const ood_method_def *d = ood_method_find("kmeans", &e);
    CHECK(d && !strcmp(d->name, "kmeans"));
    CHECK((d = ood_method_find("MaxLogit", &e)) && !strcmp(d->name, "maxlogit"));
    CHECK(!ood_method_find("foo", &e) && e.code == OODSEG_E_ARG && strstr(e.msg, "foo"), "%s", e.msg);
    for (int i = 0; i < ood_method_count(); i++)   // the error lists every method
        CHECK(strstr(e.msg, ood_method_at(i)->name), "%s missing from: %s", ood_method_at(i)->name, e.msg);
    ood_method *om;
    CHECK(ood_method_open("foo", NULL, &om, &e) == OODSEG_E_ARG && !om);
    CHECK(ood_options_set(&o, "k", "0", &e) == OODSEG_E_ARG);
    CHECK(strstr(e.msg, "--k 0") && strstr(e.msg, "[1, 256]"), "%s", e.msg);
    CHECK(ood_options_set(&o, "k", "12x", &e) == OODSEG_E_ARG);
    CHECK(ood_options_set(&o, "k", "12", &e) == 0 && o.km.k == 12);
    CHECK(ood_options_set(&o, "rho", "1.5", &e) == OODSEG_E_ARG && strstr(e.msg, "rho"), "%s", e.msg);
    CHECK(ood_options_set(&o, "T", "0", &e) == OODSEG_E_ARG);
    CHECK(ood_options_set(&o, "tau-mode", "sometimes", &e) == OODSEG_E_ARG && strstr(e.msg, "absolute"), "%s", e.msg);
    CHECK(ood_options_set(&o, "score", "s1", &e) == 0 && o.score == SCORE_S1);
    CHECK(ood_options_set(&o, "upsample", "bilinear", &e) == 0 && o.upsample == UPS_BILINEAR);
    CHECK(ood_options_set(&o, "seed", "18446744073709551615", &e) == 0 && o.km.seed == UINT64_MAX);
    CHECK(ood_options_set(&o, "no-such-option", "1", &e) == 1);
    CHECK(strstr(ood_options_help(), "--tau-mode") != NULL);
    ood_options_default(&o);
    o.tau = 150;   // percentile mode
    CHECK(score_with("kmeans", synth_in(&s), &o, sc, NULL, &e) == OODSEG_E_ARG);
    CHECK(strstr(e.msg, "--tau 150") && strstr(e.msg, "[0, 100]"), "%s", e.msg);
    ood_options_default(&o);
    o.tau_mode = TAU_CALIBRATED;
    CHECK(score_with("kmeans", synth_in(&s), &o, sc, NULL, &e) == OODSEG_E_ARG && strstr(e.msg, "--tau-file"), "%s", e.msg);
    ood_options_default(&o);
    CHECK(score_with("centroid", synth_in(&s), &o, sc, NULL, &e) == OODSEG_E_ARG && strstr(e.msg, "--centroids"), "%s", e.msg);
    s.ntaps = 0;
    CHECK(score_with("kmeans", synth_in(&s), &o, sc, NULL, &e) == OODSEG_E_ARG);
    s.ntaps = 1;
    synth_free(&s);
}

// ---- centroids and calibrated tau ------------------------------------------------------------
// ID images: the left half is class 0 (features near e0), the right half class 1 (near e1), all
// confident. Test image: the same, plus a low-confidence square with features near e5.
static void make_id(synth *s, int with_ood, uint64_t seed) {
    synth_init(s, 32, 32, 2, 0);
    float *f = synth_tap(s, "feat", 8, 4);
    rs = seed;
    for (int cy = 0; cy < 8; cy++)
        for (int cx = 0; cx < 8; cx++) {
            int pl = with_ood && cy >= 2 && cy <= 3 && cx >= 5 && cx <= 6;
            int dir = pl ? 5 : (cx < 4 ? 0 : 1);
            for (int c = 0; c < 8; c++) f[c * 64 + cy * 8 + cx] = (float)((c == dir) + 0.1 * (runi() - 0.5));
        }
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) {
            int64_t p = y * 32 + x;
            int pl = with_ood && y >= 8 && y < 16 && x >= 20 && x < 28;
            int cls = x < 16 ? 0 : 1;
            float margin = pl ? 0.1f : (float)(5 + runi());
            s->logits[cls * 1024 + p] = 3 + margin;
            s->logits[(1 - cls) * 1024 + p] = 3;
        }
}

TEST(centroid_method_and_calibrated_tau) {
    ood_stats *st;
    err e = {0};
    REQUIRE(ood_stats_new(&st, 2, 2, &e) == 0, "%s", e.msg);
    ood_options o;
    ood_options_default(&o);
    o.tau = 5;
    for (int i = 0; i < 4; i++) {
        synth s;
        make_id(&s, 0, 100 + i);
        REQUIRE(ood_stats_add(st, &ctx2, synth_in(&s), &o, &e) == 0, "%s", e.msg);
        synth_free(&s);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/centroids.txt", t_tmpdir());
    REQUIRE(ood_stats_save(st, &ctx2, path, &e) == 0, "%s", e.msg);
    ood_stats_free(st);
    synth s;
    make_id(&s, 1, 7);
    snprintf(o.centroids_file, sizeof o.centroids_file, "%s", path);
    o.centroid_conf = 0.6;   // the planted pixels have softmax confidence 0.525
    float sc[1024], csc[1024];
    REQUIRE(score_with("centroid", synth_in(&s), &o, sc, NULL, &e) == 0, "%s", e.msg);
    memcpy(csc, sc, sizeof sc);
    float minin = INFINITY, maxout = -INFINITY;
    for (int64_t p = 0; p < 1024; p++) {
        if (in_square(p)) { if (sc[p] < minin) minin = sc[p]; }
        else if (sc[p] > maxout) maxout = sc[p];
    }
    CHECK(minin > o.centroid_factor, "planted pixels not OoD: min ratio %g", minin);
    CHECK(maxout < 0, "confident ID pixels must score below the examined ones: %g", maxout);
    CHECK(minin > maxout);
    // a wrong feature size is an error that says so
    s.taps[0].shape[1] = 4;
    CHECK(score_with("centroid", synth_in(&s), &o, sc, NULL, &e) == OODSEG_E_ARG && strstr(e.msg, "dimensional"), "%s", e.msg);
    s.taps[0].shape[1] = 8;
    // calibrated tau: the 5th percentile of the ID max-logit (values 8..9 on the ID images)
    double tau;
    REQUIRE(ood_read_tau(path, &tau, &e) == 0, "%s", e.msg);
    CHECK(tau > 7.9 && tau < 9.1, "tau %g", tau);
    o.tau_mode = TAU_CALIBRATED;
    snprintf(o.tau_file, sizeof o.tau_file, "%s", path);
    o.km.k = 4;
    int32_t cl[1024];
    ood_aux aux = {.clusters = cl};
    REQUIRE(score_with("kmeans", synth_in(&s), &o, sc, &aux, &e) == 0, "%s", e.msg);
    CHECK(aux.tau_used == tau);
    CHECK(aux.ood_flag[cl[10 * 32 + 22]]);
    // the files are read when a method is opened, never per image: gone afterwards, same scores
    ood_method *mc, *mk;
    REQUIRE(ood_method_open("centroid", &o, &mc, &e) == 0, "%s", e.msg);
    REQUIRE(ood_method_open("kmeans", &o, &mk, &e) == 0, "%s", e.msg);
    REQUIRE(remove(path) == 0);
    for (int rep = 0; rep < 2; rep++) {
        REQUIRE(ood_method_score(mc, &ctx2, synth_in(&s), sc, NULL, &e) == 0, "%s", e.msg);
        CHECK(memcmp(sc, csc, sizeof sc) == 0, "centroid scores changed after its file was removed");
        aux.tau_used = 0;
        REQUIRE(ood_method_score(mk, &ctx2, synth_in(&s), sc, &aux, &e) == 0, "%s", e.msg);
        CHECK(aux.tau_used == tau);
    }
    ood_method_close(mc);
    ood_method_close(mk);
    CHECK(ood_method_open("centroid", &o, &mc, &e) == OODSEG_E_IO && strstr(e.msg, "centroids.txt"), "%s", e.msg);
    snprintf(o.tau_file, sizeof o.tau_file, "%s/missing.txt", t_tmpdir());
    CHECK(score_with("kmeans", synth_in(&s), &o, sc, &aux, &e) == OODSEG_E_IO);
    synth_free(&s);
}

TEST(percentile_like_numpy_and_calibration_only_stats) {
    float v[10] = {7, 1, 10, 3, 2, 9, 4, 8, 6, 5};
    double q;
    err e = {0};
    REQUIRE(ood_percentile(v, 10, 25, &q, &e) == 0);
    CHECK_NEAR(q, 3.25, 1e-12);   // numpy.percentile(range(1, 11), 25)
    REQUIRE(ood_percentile(v, 10, 0, &q, &e) == 0);
    CHECK_NEAR(q, 1, 0);
    REQUIRE(ood_percentile(v, 10, 100, &q, &e) == 0);
    CHECK_NEAR(q, 10, 0);
    REQUIRE(ood_percentile(v, 10, 50, &q, &e) == 0);
    CHECK_NEAR(q, 5.5, 1e-12);
    CHECK(v[0] == 7 && v[9] == 5, "the input must not be reordered");
    // k_per_class 0: max-logit statistics only (`oodseg calibrate`); no features needed
    ood_stats *st;
    REQUIRE(ood_stats_new(&st, 2, 0, &e) == 0, "%s", e.msg);
    synth s;
    make_id(&s, 0, 3);
    s.ntaps = 0;
    ood_options o;
    ood_options_default(&o);
    o.tau = 50;
    REQUIRE(ood_stats_add(st, &ctx2, synth_in(&s), &o, &e) == 0, "%s", e.msg);
    char path[512];
    snprintf(path, sizeof path, "%s/tau.txt", t_tmpdir());
    REQUIRE(ood_stats_save(st, &ctx2, path, &e) == 0, "%s", e.msg);
    ood_stats_free(st);
    double tau;
    REQUIRE(ood_read_tau(path, &tau, &e) == 0, "%s", e.msg);
    float ml[1024];
    for (int p = 0; p < 1024; p++) ml[p] = s.logits[p] > s.logits[1024 + p] ? s.logits[p] : s.logits[1024 + p];
    double want;
    ood_percentile(ml, 1024, 50, &want, &e);
    CHECK_NEAR(tau, want, 1e-6);
    // a calibration-only file is not a centroid file
    s.ntaps = 1;
    snprintf(o.centroids_file, sizeof o.centroids_file, "%s", path);
    float sc[1024];
    CHECK(score_with("centroid", synth_in(&s), &o, sc, NULL, &e) == OODSEG_E_FORMAT, "%s", e.msg);
    CHECK(ood_stats_new(&st, 2, -1, &e) == OODSEG_E_ARG);
    synth_free(&s);
}

// ---- the method and option tables --------------------------------------------------------------
TEST(method_table_entries) {
    err e = {0};
    ood_options d;
    ood_options_default(&d);
    const char *help = ood_options_help();
    REQUIRE(ood_method_count() >= 6);
    for (int i = 0; i < ood_method_count(); i++) {
        const ood_method_def *m = ood_method_at(i);
        CHECK(m->name && m->summary && m->summary[0] && m->options && m->score, "method %d incomplete", i);
        CHECK(ood_method_find(m->name, &e) == m);
        CHECK(strstr(help, m->name), "--help lacks method %s", m->name);
        // every option it lists is in the option table (the check says so otherwise)
        CHECK(ood_options_check(&d, m->options, &e) == 0, "%s: %s", m->name, e.msg);
    }
    CHECK(!ood_method_at(ood_method_count()) && !ood_method_at(-1));
    CHECK(ood_method_find("kmeans", &e)->flags == (OOD_NEEDS_TAPS | OOD_MAKES_CLUSTERS));
    CHECK(ood_method_find("centroid", &e)->flags == OOD_NEEDS_TAPS);
    CHECK(ood_method_find("energy", &e)->flags == 0 && !strcmp(ood_method_find("energy", &e)->options, "T"));
    CHECK(ood_options_check(&d, "k,no-such", &e) == OODSEG_E_INTERNAL && strstr(e.msg, "no-such"), "%s", e.msg);
    // an opened method keeps its own copy of the options, checked against its list only
    ood_options o = d;
    o.km.k = 5;
    o.energy_T = -1;   // not read by kmeans
    ood_method *m;
    REQUIRE(ood_method_open("KMeans", &o, &m, &e) == 0, "%s", e.msg);
    o.km.k = 7;
    CHECK(ood_method_options(m)->km.k == 5 && ood_method_def_of(m) == ood_method_find("kmeans", &e));
    float sc[4];
    CHECK(ood_method_score(m, NULL, NULL, sc, NULL, &e) == OODSEG_E_ARG);
    ood_method_close(m);
    ood_method_close(NULL);
    CHECK(ood_method_open("energy", &o, &m, &e) == OODSEG_E_ARG && strstr(e.msg, "--T -1"), "%s", e.msg);
    REQUIRE(ood_method_open("maxlogit", NULL, &m, &e) == 0, "%s", e.msg);
    CHECK(ood_method_options(m)->km.k == 16);
    ood_method_close(m);
}

// The field of spec s in o, as bytes.
static void *fieldp(ood_options *o, const ood_option_spec *s) { return (char *)o + s->offset; }

// The value of key in the JSON text (quotes removed), or NULL.
static const char *json_value(const char *json, const char *key, char *out, size_t n) {
    char k[80];
    snprintf(k, sizeof k, "\"%s\": ", key);
    const char *at = strstr(json, k);
    if (!at) return NULL;
    at += strlen(k);
    size_t l = *at == '"' ? strcspn(at + 1, "\"") : strcspn(at, ",}");
    snprintf(out, n, "%.*s", (int)l, *at == '"' ? at + 1 : at);
    return out;
}

TEST(option_table_defaults_round_trip) {
    err e = {0};
    ood_options d;
    ood_options_default(&d);
    // the frozen defaults (METHOD.md), unchanged by the table
    CHECK(d.km.k == 16 && d.km.n_init == 3 && d.km.max_iter == 300 && d.km.tol == 1e-4 && d.km.seed == 0);
    CHECK(d.upsample == UPS_NEAREST && d.stat == STAT_MEAN && d.rho == 0.5 && d.tau_mode == TAU_PERCENTILE);
    CHECK(d.tau == 25 && d.score == SCORE_S2 && d.big_b == 0 && d.energy_T == 1 && d.centroid_conf == 0.5);
    CHECK(d.centroid_factor == 1.1 && d.l2norm == 1 && d.fuse_stride == 0 && d.km.exact_lloyd == 0);
    CHECK(!d.taps[0] && !d.tau_file[0] && !d.centroids_file[0]);
    CHECK(ood_options_check(&d, NULL, &e) == 0, "%s", e.msg);
    char json[4096];
    REQUIRE(ood_options_json(&d, json, sizeof json) < (int)sizeof json);
    CHECK(!strncmp(json, "{\"k\": 16, \"n_init\": 3, \"max_iter\": 300, \"tol\": 0.0001", 50), "%s", json);
    const char *help = ood_options_help();
    for (int i = 0; i < ood_option_count(); i++) {
        const ood_option_spec *s = ood_option_at(i);
        char flag[64], val[1100] = "";
        snprintf(flag, sizeof flag, "--%s ", s->name);
        CHECK(strstr(help, flag), "--help lacks %s", flag);
        CHECK(ood_option_find(s->name) == s);
        if (s->json) {
            REQUIRE(json_value(json, s->json, val, sizeof val), "%s not in %s", s->json, json);
            if (s->type == OOD_OPT_STRING && !strcmp(val, "(model default)")) val[0] = '\0';
        } else {
            CHECK(s->type == OOD_OPT_STRING, "%s: only file paths stay out of the JSON", s->name);
        }
        ood_options o = d;
        memset(fieldp(&o, s), 0x5a, s->size);   // set must write every byte that matters
        REQUIRE(ood_options_set(&o, s->name, val, &e) == 0, "--%s %s: %s", s->name, val, e.msg);
        if (s->type == OOD_OPT_STRING) CHECK(!strcmp(fieldp(&o, s), fieldp(&d, s)), "%s", s->name);
        else CHECK(!memcmp(fieldp(&o, s), fieldp(&d, s), s->size), "%s: %s does not give the default", s->name, val);
        CHECK(ood_options_check(&o, s->name, &e) == 0, "%s: %s", s->name, e.msg);
    }
    CHECK(ood_option_find("no-such") == NULL && ood_options_set(&d, "no-such", "1", &e) == 1);
    ood_options o = d;   // an implied option
    CHECK(ood_options_set(&o, "tau-file", "t.txt", &e) == 0 && o.tau_mode == TAU_CALIBRATED && !strcmp(o.tau_file, "t.txt"));
}

// Stores x into the numeric field of s.
static void store(ood_options *o, const ood_option_spec *s, double x) {
    if (s->type == OOD_OPT_INT) *(int *)fieldp(o, s) = (int)x;
    else *(double *)fieldp(o, s) = x;
}

TEST(option_set_and_check_agree_on_every_bound) {
    err e = {0};
    ood_options d;
    ood_options_default(&d);
    int tried = 0;
    for (int i = 0; i < ood_option_count(); i++) {
        const ood_option_spec *s = ood_option_at(i);
        if (s->type == OOD_OPT_INT || s->type == OOD_OPT_DOUBLE) {
            for (int b = 0; b < 2; b++) {
                double bound = b ? s->hi : s->lo, out = b ? 1 : -1;   // out: the outward direction
                int open = b ? s->hi_open : s->lo_open;
                double v[3] = {bound, s->type == OOD_OPT_INT ? bound - out : nextafter(bound, -out * INFINITY),
                               s->type == OOD_OPT_INT ? bound + out : nextafter(bound, out * INFINITY)};
                int want[3] = {!open, 1, 0};
                for (int q = 0; q < 3; q++, tried++) {
                    char txt[64];
                    snprintf(txt, sizeof txt, s->type == OOD_OPT_INT ? "%.0f" : "%.17g", v[q]);
                    ood_options a = d, c = d;
                    int rs = ood_options_set(&a, s->name, txt, &e);
                    CHECK((rs == 0) == want[q], "set --%s %s: %d, expected %s", s->name, txt, rs, want[q] ? "ok" : "an error");
                    if (rs) CHECK(strstr(e.msg, s->name) && strstr(e.msg, txt), "%s", e.msg);
                    store(&c, s, v[q]);
                    int rc = ood_options_check(&c, s->name, &e);
                    CHECK((rc == 0) == want[q], "check --%s %s: %d, expected %s", s->name, txt, rc, want[q] ? "ok" : "an error");
                    if (!rs) CHECK(!memcmp(fieldp(&a, s), fieldp(&c, s), s->size), "--%s %s stored otherwise", s->name, txt);
                }
            }
            ood_options c = d;
            if (s->type == OOD_OPT_DOUBLE) {
                store(&c, s, NAN);
                CHECK(ood_options_check(&c, s->name, &e) == OODSEG_E_ARG, "%s NaN", s->name);
            }
            CHECK(ood_options_set(&c, s->name, "nan", &e) == OODSEG_E_ARG && ood_options_set(&c, s->name, "", &e) == OODSEG_E_ARG);
        } else if (s->type == OOD_OPT_ENUM) {
            ood_options c = d;
            *(int *)fieldp(&c, s) = -1;
            CHECK(ood_options_check(&c, s->name, &e) == OODSEG_E_ARG, "%s", s->name);
            int n = 0;
            for (const char *p = s->choices; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL, n++) {
                char ch[32];
                snprintf(ch, sizeof ch, "%.*s", (int)strcspn(p, ","), p);
                ood_options a = d;
                CHECK(ood_options_set(&a, s->name, ch, &e) == 0 && *(int *)fieldp(&a, s) == n, "--%s %s", s->name, ch);
                CHECK(ood_options_check(&a, s->name, &e) == 0);
            }
            *(int *)fieldp(&c, s) = n;
            CHECK(ood_options_check(&c, s->name, &e) == OODSEG_E_ARG, "%s %d", s->name, n);
            CHECK(ood_options_set(&c, s->name, "neither", &e) == OODSEG_E_ARG && strstr(e.msg, "neither"));
        } else if (s->type == OOD_OPT_STRING) {
            ood_options c = d;
            char *big = malloc(s->size + 1);
            memset(big, 'a', s->size);
            big[s->size] = '\0';
            CHECK(ood_options_set(&c, s->name, big, &e) == OODSEG_E_ARG, "%s", s->name);
            big[s->size - 1] = '\0';
            CHECK(ood_options_set(&c, s->name, big, &e) == 0 && ood_options_check(&c, s->name, &e) == 0);
            memset(fieldp(&c, s), 'a', s->size);
            CHECK(ood_options_check(&c, s->name, &e) == OODSEG_E_ARG, "%s", s->name);
            free(big);
        } else {   // OOD_OPT_U64
            ood_options c = d;
            CHECK(ood_options_set(&c, s->name, "-1", &e) == OODSEG_E_ARG);
            CHECK(ood_options_set(&c, s->name, "18446744073709551616", &e) == OODSEG_E_ARG);
            CHECK(ood_options_set(&c, s->name, "18446744073709551615", &e) == 0 && ood_options_check(&c, s->name, &e) == 0);
        }
    }
    CHECK(tried >= 6 * 11, "only %d bound values tried", tried);
    // the two upper limits that set and check once disagreed on
    ood_options c = d;
    c.km.n_init = 1001;
    CHECK(ood_options_check(&c, "n-init", &e) == OODSEG_E_ARG);
    c = d;
    c.km.max_iter = 100001;
    CHECK(ood_options_check(&c, "max-iter", &e) == OODSEG_E_ARG);
}

// ---- pictures -------------------------------------------------------------------------------
TEST(pictures_written_and_readable) {
    const int w = 40, h = 30;
    uint8_t *px = malloc((size_t)w * h * 3);
    float *score = malloc(sizeof(float) * w * h);
    uint8_t *pred = malloc((size_t)w * h);
    int32_t *cl = malloc(sizeof(int32_t) * w * h);
    for (int i = 0; i < w * h; i++) {
        px[3 * i] = (uint8_t)i; px[3 * i + 1] = 100; px[3 * i + 2] = 200;
        score[i] = (float)(i % w) / 10.0f - 1;
        pred[i] = (uint8_t)(i % 3);
        cl[i] = (i % w) < 20 ? 0 : 1;
    }
    static const uint8_t pal[3][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    static const char *names3[3] = {"road", "sky", "car"};
    uint8_t flag[2] = {0, 1};
    image img = {w, h, 3, px};
    err e = {0};
    const char *dir = t_tmpdir();
    pictures_in in = {.img = &img, .score = score, .score_label = "test score (units)", .pred = pred, .palette = pal,
                      .class_names = names3, .n_classes = 3, .clusters = cl, .k = 2, .ood_flag = flag,
                      .cluster_rule = "OoD: tau = 1"};
    REQUIRE(pictures_save(dir, "img", "kmeans", &in, 1, &e) == 0, "%s", e.msg);
    const char *names[] = {"img_kmeans_heat.png", "img_kmeans_overlay.png", "img_seg.png", "img_kmeans_clusters.png"};
    for (int i = 0; i < 4; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        image im = {0};
        REQUIRE(image_load_rgb(path, &im, &e) == 0, "%s: %s", names[i], e.msg);
        // the picture keeps the image's size on top; its strip (bar, legend, key) is below
        CHECK(im.w == w && im.h > h && im.c == 3, "%s: %dx%dx%d", names[i], im.w, im.h, im.c);
        if (i == 0) {   // max score at x = 39: the top of inferno; min at x = 0: its bottom
            CHECK(memcmp(im.px + 3 * 39, pictures_inferno[255], 3) == 0);
            CHECK(memcmp(im.px, pictures_inferno[0], 3) == 0);
            // the colour bar runs from the bottom of inferno to its top somewhere in the strip
            int found = 0;
            for (int y = h; y < im.h && !found; y++)
                found = memcmp(im.px + ((size_t)y * w + 4) * 3, pictures_inferno[0], 3) == 0 &&
                        memcmp(im.px + ((size_t)y * w + w - 5) * 3, pictures_inferno[255], 3) == 0;
            CHECK(found, "no colour bar below the heat map");
        }
        if (i == 2) CHECK(im.px[0] == 255 && im.px[3 + 1] == 255 && im.px[6 + 2] == 255);
        if (i == 3) CHECK(memcmp(im.px + 3 * (5 * w + 5), pictures_tab20[0], 3) == 0);
        image_free(&im);
    }
    // a fixed scale: colours follow lo..hi, not the image's own range
    in.scale = (pictures_scale){1, -1, 3.9, NULL};
    image heat, over;
    REQUIRE(pictures_heat(&in, &heat, &over, &e) == 0, "%s", e.msg);
    CHECK(memcmp(heat.px + 3 * 39, pictures_inferno[203], 3) == 0, "score 2.9 on -1..3.9 is index 203");
    CHECK(memcmp(heat.px, pictures_inferno[0], 3) == 0);
    image_free(&heat);
    image_free(&over);
    free(px); free(score); free(pred); free(cl);
}

// The heat colour of a score is inferno[lround(clamp((s - lo) * 255 / (hi - lo), 0, 255))], 0 for
// NaN and Inf, also at the ties and next to them, where a vector rounding could go the other way.
TEST(heat_colours_round_like_lround) {
    const int w = 64, h = 16;
    float *score = malloc(sizeof(float) * w * h);
    uint8_t *px = malloc((size_t)w * h * 3);
    REQUIRE(score && px);
    for (int i = 0; i < w * h * 3; i++) px[i] = (uint8_t)(i * 37 + i / 7);
    for (int i = 0; i < w * h; i++) {
        const float k = (float)(i % 256);
        switch (i / 256) {
            case 0: score[i] = k + 0.5f; break;                      // ties: away from zero
            case 1: score[i] = nextafterf(k + 0.5f, 0.0f); break;    // just below a tie
            case 2: score[i] = nextafterf(k + 0.5f, 1e9f); break;    // just above
            default: score[i] = (float)(i % 7 == 0 ? NAN : i % 7 == 1 ? INFINITY : i % 7 == 2 ? -INFINITY
                                        : i % 7 == 3 ? -3.0f : i % 7 == 4 ? 300.0f : k * 0.37f);
        }
    }
    image img = {w, h, 3, px};
    pictures_in in = {.img = &img, .score = score, .score_label = "s", .scale = {1, 0.0, 255.0, NULL}};
    image heat, over;
    err e = {0};
    REQUIRE(pictures_heat(&in, &heat, &over, &e) == 0, "%s", e.msg);
    int bad = 0;
    for (int i = 0; i < w * h && bad < 5; i++) {
        double v = isfinite(score[i]) ? (double)score[i] : 0;
        v = v < 0 ? 0 : v > 255 ? 255 : v;
        const long want = lround(v);
        if (memcmp(heat.px + 3 * i, pictures_inferno[want], 3)) {
            bad++;
            CHECK(0, "score %.9g: not inferno[%ld]", score[i], want);
        }
        for (int c = 0; c < 3; c++)   // the overlay: 55 % of that colour over the image, rounded
            if (over.px[3 * i + c] != (45 * px[3 * i + c] + 55 * pictures_inferno[want][c] + 50) / 100) {
                bad++;
                CHECK(0, "pixel %d channel %d: overlay %d", i, c, over.px[3 * i + c]);
            }
    }
    image_free(&heat), image_free(&over);
    free(score), free(px);
}

int main(int argc, char **argv) {
    (void)argc;
    RUN(baselines_match_double_formulas_and_skip_background);
    RUN(kmeans_finds_planted_cluster_and_s1_ranks_it_first);
    RUN(kmeans_flags_nothing_without_planted_cluster);
    RUN(kmeans_bilinear_upsample_and_determinism);
    RUN(shared_max_logit_matches_per_pixel_and_gives_same_scores);
    RUN(fused_taps_of_different_strides);
    RUN(errors_are_clear);
    RUN(centroid_method_and_calibrated_tau);
    RUN(percentile_like_numpy_and_calibration_only_stats);
    RUN(method_table_entries);
    RUN(option_table_defaults_round_trip);
    RUN(option_set_and_check_agree_on_every_bound);
    RUN(pictures_written_and_readable);
    RUN(heat_colours_round_like_lround);
    return t_finish(argv[0]);
}
