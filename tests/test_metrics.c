// Exact metrics: the golden scikit-learn values, randomised comparisons against Debian's sklearn,
// shard merging, per-image helper, errors, the SMIYC component metrics on hand-made masks, and
// the evaluator (pooled = one accumulator, raw labels, states, the component pass).
#include "test.h"
#include "../eval/metrics.h"
#include "../eval/mstate.h"
#include "../eval/components.h"
#include "../eval/evaluator.h"
#include "../eval/datasets.h"
#include "../eval/report.h"
#include "../io/npy.h"
#include "../io/image.h"
#include "../core/json.h"
#include <stdlib.h>
#include <string.h>

// uint8 .npy writer (io/npy.h writes float32 only).
static double jnum(const json *j, const char *k) {
    const json *v = json_get(j, k);
    return v && v->type == JSON_NUMBER ? v->num : NAN;
}

// ---- golden ----------------------------------------------------------------------------------
static void golden_case(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "golden/metrics/%s_scores.npy", name);
    ASSET_OR_SKIP(sp, rel);
    char spath[1024];
    snprintf(spath, sizeof spath, "%s", sp);
    snprintf(rel, sizeof rel, "golden/metrics/%s_labels.npy", name);
    ASSET_OR_SKIP(lp, rel);
    ASSET_OR_SKIP(jp, "golden/metrics/metrics.json");
    err e = {0};
    npy_array s = {0}, l = {0};
    REQUIRE(npy_read(spath, &s, &e) == 0, "%s", e.msg);
    REQUIRE(npy_read(lp, &l, &e) == 0, "%s", e.msg);
    REQUIRE(strcmp(s.dtype, "f4") == 0 && strcmp(l.dtype, "u1") == 0 && s.numel == l.numel, "%s %s", s.dtype, l.dtype);
    size_t jl;
    char *txt = t_slurp(jp, &jl);
    json *j = json_parse(txt, jl, "metrics.json", &e);
    REQUIRE(j, "%s", e.msg);
    const json *c = json_get(json_get(j, "cases"), name);
    REQUIRE(c, "case %s in metrics.json", name);
    metrics_result r;
    REQUIRE(metrics_compute(s.data, l.data, s.numel, FPR_FIRST_GE, 1, &r, &e) == 0, "%s", e.msg);
    CHECK(r.n_pos == (int64_t)jnum(c, "n_pos") && r.n_neg == (int64_t)jnum(c, "n_neg"), "%lld %lld", (long long)r.n_pos, (long long)r.n_neg);
    CHECK(r.n_distinct == (int64_t)jnum(c, "n_distinct_scores_valid"), "%lld", (long long)r.n_distinct);
    CHECK_NEAR(r.ap, jnum(c, "average_precision"), 1e-9);
    CHECK_NEAR(r.auroc, jnum(c, "auroc"), 1e-9);
    CHECK_NEAR(r.fpr95, jnum(c, "fpr_at_95_tpr"), 1e-9);
    CHECK_NEAR(r.fpr95_thr, jnum(c, "fpr95_threshold"), 1e-9);
    CHECK_NEAR(r.fpr95_tpr_all[FPR_FIRST_GE], jnum(c, "tpr_at_that_threshold"), 1e-9);
    CHECK(r.curve.n >= 2 && r.curve.n < 6000, "curve points %d", r.curve.n);
    const json *wr = json_get(c, "if_ignore_treated_as_inlier_WRONG");
    if (wr) {   // the same data with 255 read as in-distribution must give the documented wrong values
        uint8_t *l2 = malloc((size_t)l.numel);
        for (int64_t i = 0; i < l.numel; i++) l2[i] = ((uint8_t *)l.data)[i] == 255 ? 0 : ((uint8_t *)l.data)[i];
        metrics_result w;
        REQUIRE(metrics_compute(s.data, l2, s.numel, FPR_FIRST_GE, 0, &w, &e) == 0, "%s", e.msg);
        CHECK_NEAR(w.ap, jnum(wr, "average_precision"), 1e-9);
        CHECK_NEAR(w.auroc, jnum(wr, "auroc"), 1e-9);
        CHECK_NEAR(w.fpr95, jnum(wr, "fpr_at_95_tpr"), 1e-9);
        free(l2);
    }
    metrics_result_free(&r);
    json_free(j); free(txt); npy_free(&s); npy_free(&l);
}

TEST(golden_case1_tiny) { golden_case("case1_tiny"); }
TEST(golden_case2_ties) { golden_case("case2_ties"); }
TEST(golden_case3_ignore) { golden_case("case3_ignore"); }
TEST(golden_case4_realistic) { golden_case("case4_realistic"); }

TEST(hand_values_case1) {
    // Scores 0.9..0.0, positives at ranks 1, 2, 4, 7: AP = (1 + 1 + 3/4 + 4/7)/4.
    float s[10] = {0.9f, 0.8f, 0.7f, 0.6f, 0.5f, 0.4f, 0.3f, 0.2f, 0.1f, 0.0f};
    uint8_t l[10] = {1, 1, 0, 1, 0, 0, 1, 0, 0, 0};
    metrics_result r;
    err e = {0};
    REQUIRE(metrics_compute(s, l, 10, FPR_FIRST_GE, 0, &r, &e) == 0, "%s", e.msg);
    CHECK_NEAR(r.ap, (1 + 1 + 0.75 + 4.0 / 7) / 4, 1e-15);
    CHECK_NEAR(r.auroc, (6 + 6 + 5 + 3) / 24.0, 1e-15);
    CHECK_NEAR(r.fpr95, 3.0 / 6, 1e-15);
    CHECK_NEAR(r.fpr95_thr, 0.3f, 0);
}

// ---- a C brute force (qsort of pairs) for the larger randomised tests -------------------------
typedef struct { float s; uint8_t l; } sl;
static int cmp_desc(const void *a, const void *b) {
    float x = ((const sl *)a)->s, y = ((const sl *)b)->s;
    return (x < y) - (x > y);
}
static void brute(const float *s, const uint8_t *l, int64_t n, double *ap, double *auc) {
    sl *v = malloc((size_t)n * sizeof *v);
    int64_t m = 0, P = 0, N = 0;
    for (int64_t i = 0; i < n; i++) if (l[i] != 255) { v[m].s = s[i]; v[m].l = l[i]; P += l[i]; m++; }
    N = m - P;
    qsort(v, (size_t)m, sizeof *v, cmp_desc);
    double tp = 0, fp = 0, a = 0, u = 0;
    for (int64_t i = 0; i < m;) {
        int64_t j = i;
        double tp0 = tp, fp0 = fp;
        while (j < m && v[j].s == v[i].s) { if (v[j].l) tp++; else fp++; j++; }
        a += (tp - tp0) / P * (tp / (tp + fp));
        u += (fp - fp0) / N * (tp + tp0) / (2.0 * P);
        i = j;
    }
    *ap = a; *auc = u;
    free(v);
}

// AP and AUROC of metrics_compute() against brute() to 1e-10.
static void check_vs_brute(const float *s, const uint8_t *l, int64_t n, int want_curve) {
    double ap, auc;
    brute(s, l, n, &ap, &auc);
    metrics_result r;
    err e = {0};
    REQUIRE(metrics_compute(s, l, n, FPR_FIRST_GE, want_curve, &r, &e) == 0, "%s", e.msg);
    CHECK_NEAR(r.ap, ap, 1e-10);
    CHECK_NEAR(r.auroc, auc, 1e-10);
    metrics_result_free(&r);
}

static uint64_t rng = 88172645463325252ull;
static double urand(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return (rng >> 11) * (1.0 / 9007199254740992.0); }

// n pixels; `levels` > 0 quantises the scores to that many values (ties); some are ignore.
static void make_case(float *s, uint8_t *l, int64_t n, int levels, double pos_rate, double ign_rate) {
    for (int64_t i = 0; i < n; i++) {
        double u = urand();
        l[i] = u < ign_rate ? 255 : (urand() < pos_rate ? 1 : 0);
        double x = urand() + (l[i] == 1 ? 0.4 : 0) - 0.3;
        if (levels) x = floor(x * levels) / levels;
        s[i] = (float)(l[i] == 255 ? 5.0 : x);   // ignored pixels carry extreme scores on purpose
        if (i % 97 == 0) s[i] = -0.0f;
        if (i % 89 == 0) s[i] = 0.0f;
    }
}

TEST(random_vs_bruteforce_large) {
    int64_t n = t_sanitized() ? 60000 : 600000;
    float *s = malloc((size_t)n * 4);
    uint8_t *l = malloc((size_t)n);
    for (int levels = 0; levels <= 64; levels += 64) {
        make_case(s, l, n, levels, 0.05, 0.1);
        check_vs_brute(s, l, n, 0);
    }
    free(s); free(l);
}

// Skewed data: most keys in one narrow range (a bucket larger than the sort's scratch, split again
// in place), infinities, negative scores, denormals and exact ties.
TEST(skewed_scores_vs_bruteforce) {
    int64_t n = t_sanitized() ? 400000 : 3000000;
    float *s = malloc((size_t)n * 4);
    uint8_t *l = malloc((size_t)n);
    for (int64_t i = 0; i < n; i++) {
        double u = urand();
        l[i] = urand() < 0.03 ? 1 : (urand() < 0.05 ? 255 : 0);
        if (u < 0.7) s[i] = 0.5f + (float)(urand() * 1e-4);          // narrow: few exponent/mantissa bits differ
        else if (u < 0.8) s[i] = (float)(-urand() * 1e3);
        else if (u < 0.85) s[i] = (float)(urand() * 1e-40);          // denormals
        else if (u < 0.86) s[i] = (i & 1) ? INFINITY : -INFINITY;
        else s[i] = (float)(urand() * 10 - 5 + l[i]);
        if (l[i] == 1 && u < 0.7) s[i] += 1e-5f;
    }
    check_vs_brute(s, l, n, 1);
    free(s); free(l);
}

TEST(random_vs_sklearn) {
    if (!t_python_has("sklearn numpy")) SKIP("/usr/bin/python3 lacks sklearn/numpy (apt install python3-sklearn)");
    const char *tool = "tools/metrics_ref.py";
    FILE *tf = fopen(tool, "r");
    if (!tf) SKIP("%s not found (run from the repository root)", tool);
    fclose(tf);
    struct { int64_t n; int levels; double pos, ign; } cases[] = {
        {50, 3, 0.4, 0.2}, {1000, 5, 0.3, 0.1}, {1000, 0, 0.5, 0}, {20000, 17, 0.02, 0.3},
        {100000, 0, 0.03, 0.05}, {100000, 1000, 0.1, 0.1}, {7, 2, 0.5, 0}, {300, 1, 0.5, 0.1},
    };
    char sp[512], lp[512], jp[512];
    snprintf(sp, sizeof sp, "%s/r_s.npy", t_tmpdir());
    snprintf(lp, sizeof lp, "%s/r_l.npy", t_tmpdir());
    snprintf(jp, sizeof jp, "%s/r.json", t_tmpdir());
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int64_t n = cases[c].n;
        float *s = malloc((size_t)n * 4);
        uint8_t *l = malloc((size_t)n);
        make_case(s, l, n, cases[c].levels, cases[c].pos, cases[c].ign);
        l[0] = 1; l[1] = 0;   // both classes present
        err e = {0};
        int64_t shape[1] = {n};
        REQUIRE(npy_write_f32(sp, s, 1, shape, &e) == 0, "%s", e.msg);
        REQUIRE(npy_write(lp, "u1", l, 1, shape, &e) == 0, "%s", e.msg);
        REQUIRE(t_sh("/usr/bin/python3 %s %s %s %s", tool, sp, lp, jp) == 0, "metrics_ref.py failed");
        size_t jl;
        char *txt = t_slurp(jp, &jl);
        json *j = json_parse(txt, jl, jp, &e);
        REQUIRE(j, "%s", e.msg);
        metrics_result r;
        REQUIRE(metrics_compute(s, l, n, FPR_FIRST_GE, 0, &r, &e) == 0, "%s", e.msg);
        CHECK(r.n_pos == (int64_t)jnum(j, "n_pos") && r.n_neg == (int64_t)jnum(j, "n_neg"), "case %zu", c);
        CHECK_NEAR(r.ap, jnum(j, "AP"), 1e-9);
        CHECK_NEAR(r.auroc, jnum(j, "AUROC"), 1e-9);
        static const char *keys[3][2] = {{"fpr95_first_ge", "thr_first_ge"}, {"fpr95_nearest", "thr_nearest"},
                                         {"fpr95_first_gt", "thr_first_gt"}};
        for (int k = 0; k < FPR_NUM_CONV; k++) {
            CHECK_NEAR(r.fpr95_all[k], jnum(j, keys[k][0]), 1e-9);
            CHECK_NEAR(r.fpr95_thr_all[k], jnum(j, keys[k][1]), 1e-9);
        }
        json_free(j); free(txt); free(s); free(l);
    }
}

// ---- shards ----------------------------------------------------------------------------------
static int same_result(const metrics_result *a, const metrics_result *b) {
    int ok = a->n_pos == b->n_pos && a->n_neg == b->n_neg && a->n_distinct == b->n_distinct &&
             a->ap == b->ap && a->auroc == b->auroc && a->best_f1 == b->best_f1;
    for (int k = 0; k < FPR_NUM_CONV; k++)
        ok = ok && a->fpr95_all[k] == b->fpr95_all[k] && a->fpr95_thr_all[k] == b->fpr95_thr_all[k];
    return ok;
}

TEST(shard_merge_is_exact) {
    int64_t n = 300000;
    float *s = malloc((size_t)n * 4), *s2 = malloc((size_t)n * 4);
    uint8_t *l = malloc((size_t)n);
    make_case(s, l, n, 200, 0.05, 0.1);
    for (int64_t i = 0; i < n; i++) s2[i] = -s[i] * 0.5f;   // a second method
    err e = {0};
    macc *all[2], *sh[3][2];
    REQUIRE(macc_new(&all[0], &e) == 0 && macc_new(&all[1], &e) == 0);
    const char *names[2] = {"msp", "energy"};
    char paths[3][512];
    const char *pp[3];
    // uneven shards, each added in two chunks
    int64_t cut[4] = {0, 1000, 170001, n};
    for (int k = 0; k < 3; k++) {
        REQUIRE(macc_new(&sh[k][0], &e) == 0 && macc_new(&sh[k][1], &e) == 0);
        int64_t a = cut[k], b = cut[k + 1], mid = (a + b) / 2;
        REQUIRE(macc_add(sh[k][0], s + a, l + a, mid - a, &e) == 0 && macc_add(sh[k][0], s + mid, l + mid, b - mid, &e) == 0);
        REQUIRE(macc_add(sh[k][1], s2 + a, l + a, b - a, &e) == 0);
        snprintf(paths[k], sizeof paths[k], "%s/shard%d.state", t_tmpdir(), k);
        pp[k] = paths[k];
        REQUIRE(mstate_save(paths[k], "{\"dataset\":\"x\"}", 2, names, sh[k], &e) == 0, "%s", e.msg);
    }
    REQUIRE(macc_add(all[0], s, l, n, &e) == 0 && macc_add(all[1], s2, l, n, &e) == 0);
    metrics_result ref[2], got[MSTATE_MAX_SECTIONS], again[MSTATE_MAX_SECTIONS];
    for (int m = 0; m < 2; m++) REQUIRE(macc_compute(all[m], FPR_NEAREST, 0, &ref[m], &e) == 0);
    char merged[512], meta[256], nm[MSTATE_MAX_SECTIONS][MSTATE_NAME];
    snprintf(merged, sizeof merged, "%s/merged.state", t_tmpdir());
    int ns = 0;
    REQUIRE(mstate_merge(pp, 3, FPR_NEAREST, 1, merged, &ns, nm, got, meta, sizeof meta, &e) == 0, "%s", e.msg);
    CHECK(ns == 2 && strcmp(nm[0], "msp") == 0 && strcmp(nm[1], "energy") == 0);
    CHECK(strcmp(meta, "{\"dataset\":\"x\"}") == 0, "%s", meta);
    for (int m = 0; m < 2; m++) CHECK(same_result(&ref[m], &got[m]), "method %d: AP %.17g vs %.17g", m, got[m].ap, ref[m].ap);
    // the merged state merges again to the same values; a single state merges to itself
    const char *mp[1] = {merged};
    REQUIRE(mstate_merge(mp, 1, FPR_NEAREST, 0, NULL, &ns, nm, again, NULL, 0, &e) == 0, "%s", e.msg);
    for (int m = 0; m < 2; m++) CHECK(same_result(&ref[m], &again[m]));
    // a truncated state file is refused, naming it
    char trunc[512];
    snprintf(trunc, sizeof trunc, "%s/trunc.state", t_tmpdir());
    t_sh("head -c 500 %s > %s", paths[1], trunc);
    const char *tp[2] = {paths[0], trunc};
    CHECK(mstate_merge(tp, 2, FPR_FIRST_GE, 0, NULL, &ns, nm, again, NULL, 0, &e) == OODSEG_E_FORMAT);
    CHECK(strstr(e.msg, "trunc.state") != NULL, "%s", e.msg);
    for (int m = 0; m < 2; m++) { metrics_result_free(&got[m]); macc_free(all[m]); for (int k = 0; k < 3; k++) macc_free(sh[k][m]); }
    free(s); free(s2); free(l);
}

TEST(errors_and_edge_cases) {
    err e = {0};
    float s[4] = {0.1f, 0.2f, NAN, 0.4f};
    uint8_t l[4] = {0, 1, 255, 7};
    metrics_result r;
    CHECK(metrics_compute(s, l, 4, FPR_FIRST_GE, 0, &r, &e) == OODSEG_E_DATA);
    CHECK(strstr(e.msg, "pixel 3") != NULL, "%s", e.msg);
    l[3] = 0; l[2] = 1;
    CHECK(metrics_compute(s, l, 4, FPR_FIRST_GE, 0, &r, &e) == OODSEG_E_DATA && strstr(e.msg, "NaN"));
    // one class only: undefined, not a crash
    uint8_t z[4] = {0, 0, 255, 0};
    REQUIRE(metrics_compute(s, z, 4, FPR_FIRST_GE, 1, &r, &e) == 0);
    CHECK(!r.defined && isnan(r.ap) && r.n_neg == 3 && r.n_distinct == 3);
    fpr_conv c;
    CHECK(fpr_conv_parse("nearest", &c, &e) == 0 && c == FPR_NEAREST);
    CHECK(fpr_conv_parse("median", &c, &e) == OODSEG_E_ARG);
    // all scores tied: AP = positive rate, AUROC = 0.5, FPR95 = 1
    float t[6] = {1, 1, 1, 1, 1, 1};
    uint8_t tl[6] = {1, 0, 0, 1, 0, 0};
    REQUIRE(metrics_compute(t, tl, 6, FPR_FIRST_GE, 0, &r, &e) == 0);
    CHECK_NEAR(r.ap, 2.0 / 6, 1e-15);
    CHECK_NEAR(r.auroc, 0.5, 1e-15);
    CHECK_NEAR(r.fpr95, 1.0, 0);
}

// ---- components ------------------------------------------------------------------------------
static comp_params zero_sizes(double thr, int conn) {
    comp_params p;
    comp_params_default(&p, 0);
    p.threshold = thr; p.connectivity = conn; p.min_pred_size = 0; p.min_gt_size = 0;
    return p;
}

TEST(components_hand_made) {
    enum { W = 10, H = 10 };
    float s[W * H] = {0};
    uint8_t l[W * H] = {0};
    for (int y = 1; y <= 3; y++) for (int x = 1; x <= 3; x++) l[y * W + x] = 1;   // GT A, 9 px
    for (int y = 7; y <= 8; y++) for (int x = 7; x <= 8; x++) l[y * W + x] = 1;   // GT B, 4 px
    for (int y = 2; y <= 4; y++) for (int x = 2; x <= 4; x++) s[y * W + x] = 1;   // pred 1: 4 px on A
    s[9 * W + 0] = 1;                                                             // pred 2: a false alarm
    comp_acc a = {0};
    comp_params p = zero_sizes(0.5, 8);
    err e = {0};
    REQUIRE(comp_add(&a, s, l, W, H, &p, &e) == 0, "%s", e.msg);
    comp_result r;
    comp_finish(&a, &r);
    CHECK(r.n_gt == 2 && r.n_pred == 2);
    CHECK_NEAR(r.siou_gt, (4.0 / 14) / 2, 1e-15);   // A: 4 / (9 + 9 - 4); B: 0
    CHECK_NEAR(r.ppv, (4.0 / 9) / 2, 1e-15);
    CHECK_NEAR(r.f1[0], 0.5, 1e-15);                // delta 0.25: TP 1, FN 1, FP 1
    for (int d = 1; d < COMP_NDELTA; d++) CHECK_NEAR(r.f1[d], 0, 0);
    CHECK_NEAR(r.f1_mean, 0.5 / 11, 1e-15);
    CHECK(a.fp[0] == 1 && a.fp[4] == 2 && a.fp[3] == 1, "fp %lld %lld %lld", (long long)a.fp[0], (long long)a.fp[3], (long long)a.fp[4]);
    CHECK_NEAR(comp_delta(1), 0.3, 1e-15);
    CHECK(comp_delta(10) == 0.75);
}

TEST(components_adjustment_void_connectivity) {
    enum { W = 9, H = 5 };
    float s[W * H] = {0};
    uint8_t l[W * H] = {0};
    l[2 * W + 1] = l[2 * W + 2] = 1;   // GT C1
    l[2 * W + 5] = l[2 * W + 6] = 1;   // GT C2
    for (int x = 1; x <= 6; x++) s[2 * W + x] = 0.9f;   // one prediction spanning both
    comp_params p = zero_sizes(0.5, 8);
    err e = {0};
    comp_acc a = {0};
    comp_result r;
    REQUIRE(comp_add(&a, s, l, W, H, &p, &e) == 0);
    comp_finish(&a, &r);
    // each GT: intersection 2, union 6 + 2 - 2 - 2 (the other GT's pixels are not counted) = 4
    CHECK(r.n_gt == 2 && r.n_pred == 1);
    CHECK_NEAR(r.siou_gt, 0.5, 1e-15);
    CHECK_NEAR(r.ppv, 4.0 / 6, 1e-15);
    // void in the middle cuts the prediction in two: C1 sIoU 1, C2 sIoU 2/3
    l[2 * W + 3] = 255;
    comp_acc b = {0};
    REQUIRE(comp_add(&b, s, l, W, H, &p, &e) == 0);
    comp_finish(&b, &r);
    CHECK(r.n_pred == 2);
    CHECK_NEAR(r.siou_gt, (1 + 2.0 / 3) / 2, 1e-15);
    CHECK_NEAR(r.ppv, (1 + 2.0 / 3) / 2, 1e-15);
    // diagonal neighbours: one component with 8-connectivity, two with 4
    float d[W * H] = {0};
    uint8_t z[W * H] = {0};
    d[0] = d[W + 1] = 1;
    comp_acc c8 = {0}, c4 = {0};
    REQUIRE(comp_add(&c8, d, z, W, H, &p, &e) == 0);
    comp_params p4 = zero_sizes(0.5, 4);
    REQUIRE(comp_add(&c4, d, z, W, H, &p4, &e) == 0);
    CHECK(c8.n_pred == 1 && c4.n_pred == 2, "%lld %lld", (long long)c8.n_pred, (long long)c4.n_pred);
    // size limits: a 1-pixel GT becomes void and a 2-pixel prediction is dropped
    uint8_t g[W * H] = {0};
    g[4 * W + 8] = 1;
    float q[W * H] = {0};
    q[4 * W + 8] = 1; q[0] = q[1] = 1;
    comp_params ps = zero_sizes(0.5, 8);
    ps.min_gt_size = 2; ps.min_pred_size = 3;
    comp_acc cs = {0};
    REQUIRE(comp_add(&cs, q, g, W, H, &ps, &e) == 0);
    CHECK(cs.n_gt == 0 && cs.n_pred == 0, "%lld %lld", (long long)cs.n_gt, (long long)cs.n_pred);
    // score == threshold is not predicted (SMIYC: score > thr)
    float eq[W * H] = {0};
    eq[0] = 0.5f;
    comp_acc ce = {0};
    REQUIRE(comp_add(&ce, eq, z, W, H, &p, &e) == 0);
    CHECK(ce.n_pred == 0);
    metrics_result mr = {0};
    mr.best_f1_thr = 0.5;
    CHECK(comp_default_threshold(&mr) < 0.5 && (float)comp_default_threshold(&mr) == nextafterf(0.5f, 0));
}

// ---- reports ---------------------------------------------------------------------------------
TEST(report_files) {
    int64_t n = 20000;
    float *s = malloc((size_t)n * 4), *s2 = malloc((size_t)n * 4);
    uint8_t *l = malloc((size_t)n);
    make_case(s, l, n, 0, 0.1, 0.05);
    for (int64_t i = 0; i < n; i++) s2[i] = s[i] * 0.5f + (float)urand();
    metrics_result r[2];
    err e = {0};
    REQUIRE(metrics_compute(s, l, n, FPR_NEAREST, 1, &r[0], &e) == 0 && metrics_compute(s2, l, n, FPR_NEAREST, 1, &r[1], &e) == 0);
    report_row rows[2] = {{.stem = "a,b\"quoted\"", .n_valid = 10, .n_ood = 2}, {.stem = "img2", .n_valid = 5}};
    for (int m = 0; m < 2; m++) { rows[0].ap[m] = 0.5; rows[0].auroc[m] = 0.75; rows[0].fpr95[m] = 0.25; rows[1].ap[m] = rows[1].auroc[m] = rows[1].fpr95[m] = NAN; }
    report rp = {.info = {.dataset = "camvid-ood:/x", .layout = "camvid-ood", .labels_doc = "0..10 ID, 11 void, 12 OoD",
                          .model = "m.pth", .model_arch = "espnet-p2-q8", .options_json = "{\"k\": \"8\"}", .n_images = 2},
                 .conv = FPR_NEAREST, .n_methods = 2, .methods = {"maxlogit", "a<b&c"}, .res = {&r[0], &r[1]},
                 .has_comp = 1, .n_rows = 2, .rows = rows};
    comp_params_default(&rp.comp_p[0], 0);
    rp.comp_p[0].threshold = rp.comp_p[1].threshold = 0.5;
    rp.comp[0].f1_mean = 0.4; rp.comp[1].siou_gt = NAN;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/report", t_tmpdir());
    REQUIRE(report_write_all(&rp, dir, &e) == 0, "%s", e.msg);
    char p[600];
    snprintf(p, sizeof p, "%s/metrics.json", dir);
    size_t len;
    char *txt = t_slurp(p, &len);
    REQUIRE(txt);
    json *j = json_parse(txt, len, p, &e);
    REQUIRE(j, "%s", e.msg);
    const json *ms = json_get(j, "methods");
    REQUIRE(ms && ms->n == 2);
    CHECK_NEAR(jnum(json_get(ms, "maxlogit"), "AP"), r[0].ap, 1e-15);
    CHECK_NEAR(jnum(json_get(ms, "maxlogit"), "AUROC"), r[0].auroc, 1e-15);
    CHECK_NEAR(jnum(json_get(ms, "a<b&c"), "FPR95"), r[1].fpr95_all[FPR_NEAREST], 1e-15);
    CHECK_NEAR(jnum(json_get(ms, "maxlogit"), "FPR95_first_ge"), r[0].fpr95_all[FPR_FIRST_GE], 1e-15);
    const json *cv = json_get(j, "fpr95_convention");
    CHECK(cv && cv->type == JSON_STRING && strcmp(cv->str, "nearest") == 0);
    const json *ver = json_get(j, "version");
    CHECK(ver && strcmp(ver->str, OODSEG_VERSION) == 0);
    CHECK(json_get(json_get(j, "options"), "k") != NULL);
    json_free(j); free(txt);
    snprintf(p, sizeof p, "%s/metrics.md", dir);
    txt = t_slurp(p, NULL);
    REQUIRE(txt);
    char want[200];
    snprintf(want, sizeof want, "| maxlogit | %.2f | %.2f | %.2f |", 100 * r[0].ap, 100 * r[0].fpr95, 100 * r[0].auroc);
    CHECK(strstr(txt, "| Method | AP | FPR95 | AUROC |\n|:---|---:|---:|---:|\n") && strstr(txt, want), "%s", txt);
    CHECK(strstr(txt, "nearest"));
    free(txt);
    snprintf(p, sizeof p, "%s/per_image.csv", dir);
    txt = t_slurp(p, NULL);
    REQUIRE(txt);
    CHECK(strstr(txt, "\"a,b\"\"quoted\"\"\",10,2,50.00,25.00,75.00") && strstr(txt, "img2,5,0,,,,,,,"), "%s", txt);
    free(txt);
    snprintf(p, sizeof p, "%s/metrics.csv", dir);
    txt = t_slurp(p, NULL);
    REQUIRE(txt);
    CHECK(strncmp(txt, "method,AP,FPR95,AUROC", 21) == 0 && strstr(txt, "\nmaxlogit,"));
    free(txt);
    CHECK(t_sh("ls '%s' | grep -q tmp", dir) != 0, "temporary files left in %s", dir);
    // the SVGs are well-formed XML with both curves and labelled axes
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/%s", dir, k ? "roc_curve.svg" : "pr_curve.svg");
        txt = t_slurp(p, NULL);
        REQUIRE(txt);
        CHECK(strstr(txt, k ? "False positive rate" : "Recall") && strstr(txt, "a&lt;b&amp;c"));
        int lines = 0;
        for (char *q = txt; (q = strstr(q, "<polyline")); q++) lines++;
        CHECK(lines == 2, "%d curves", lines);
        free(txt);
        if (t_python_has("xml"))
            CHECK(t_sh("/usr/bin/python3 -c 'import xml.etree.ElementTree as E; E.parse(\"%s\")'", p) == 0, "%s is not valid XML", p);
    }
    metrics_result_free(&r[0]); metrics_result_free(&r[1]);
    free(s); free(s2); free(l);
}

// Component counts on random masks against a plain flood fill (union-find relabelling is easy to
// get wrong on shapes that merge late, such as combs and spirals).
static int flood_count(const uint8_t *m, int w, int h, int conn) {
    uint8_t *seen = calloc((size_t)w * h, 1);
    int *st = malloc((size_t)w * h * sizeof *st), n = 0;
    for (int i = 0; i < w * h; i++) {
        if (!m[i] || seen[i]) continue;
        n++;
        int sp = 0;
        st[sp++] = i; seen[i] = 1;
        while (sp) {
            int p = st[--sp], x = p % w, y = p / w;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    if ((!dx && !dy) || (conn == 4 && dx && dy)) continue;
                    int X = x + dx, Y = y + dy;
                    if (X < 0 || Y < 0 || X >= w || Y >= h) continue;
                    int q = Y * w + X;
                    if (m[q] && !seen[q]) { seen[q] = 1; st[sp++] = q; }
                }
        }
    }
    free(seen); free(st);
    return n;
}

TEST(components_vs_flood_fill) {
    enum { W = 41, H = 29 };
    float s[W * H];
    uint8_t m[W * H], z[W * H] = {0};
    err e = {0};
    for (int t = 0; t < 200; t++) {
        double dens = 0.3 + 0.4 * urand();
        for (int i = 0; i < W * H; i++) { m[i] = urand() < dens; s[i] = m[i] ? 1.0f : 0.0f; }
        for (int conn = 4; conn <= 8; conn += 4) {
            comp_params p = zero_sizes(0.5, conn);
            comp_acc a = {0};
            REQUIRE(comp_add(&a, s, z, W, H, &p, &e) == 0, "%s", e.msg);
            int want = flood_count(m, W, H, conn);
            CHECK(a.n_pred == want, "trial %d, %d-connected: %lld components, flood fill %d", t, conn, (long long)a.n_pred, want);
            // as ground truth, every component has sIoU 0 and is a false negative
            comp_acc g = {0};
            float zero[W * H] = {0};
            REQUIRE(comp_add(&g, zero, m, W, H, &p, &e) == 0, "%s", e.msg);
            CHECK(g.n_gt == want && g.fn[0] == want);
        }
    }
}

// ---- the `oodseg metrics` command: shards merge to the single-pass values ----------------------
static char cli_bin[1024];

static double json_file_num(const char *path, const char *method, const char *key) {
    size_t len;
    char *txt = t_slurp(path, &len);
    if (!txt) return NAN;
    err e = {0};
    json *j = json_parse(txt, len, path, &e);
    double v = j ? jnum(json_get(json_get(j, "methods"), method), key) : NAN;
    json_free(j); free(txt);
    return v;
}

// ---- the evaluator -----------------------------------------------------------------------------
// A small synthetic dataset: image i is W_i x H_i with an OoD rectangle (label 1), a void band
// (255), and two methods' scores (the second a noisier, rescaled copy), quantised so that ties occur.
enum { EV_N = 9, EV_M = 2 };
typedef struct ev_data {
    int w[EV_N], h[EV_N];
    float *s[EV_N][EV_M];
    uint8_t *l[EV_N];
    char stem[EV_N][16];
} ev_data;

static void ev_data_make(ev_data *d) {
    for (int i = 0; i < EV_N; i++) {
        int w = d->w[i] = 40 + (int)(urand() * 30), h = d->h[i] = 30 + (int)(urand() * 20);
        snprintf(d->stem[i], sizeof d->stem[i], "img%d", i);
        d->l[i] = malloc((size_t)w * h);
        for (int m = 0; m < EV_M; m++) d->s[i][m] = malloc((size_t)w * h * sizeof(float));
        int x0 = (int)(urand() * w / 2), y0 = (int)(urand() * h / 2), bw = 4 + (int)(urand() * w / 3), bh = 4 + (int)(urand() * h / 3);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int k = y * w + x, in = x >= x0 && x < x0 + bw && y >= y0 && y < y0 + bh;
                d->l[i][k] = y >= h - 3 ? 255 : (uint8_t)in;
                double v = urand() + (in ? 0.6 : 0);
                d->s[i][0][k] = (float)(floor(v * 64) / 64);
                d->s[i][1][k] = (float)(-2.0 * v + 0.5 * urand());
            }
    }
}

static void ev_data_free(ev_data *d) {
    for (int i = 0; i < EV_N; i++) { free(d->l[i]); for (int m = 0; m < EV_M; m++) free(d->s[i][m]); }
}

// Images a..b of d into ev.
static int ev_add_range(evaluator *ev, const ev_data *d, int a, int b, err *e) {
    for (int i = a; i < b; i++) {
        const float *sc[EV_M] = {d->s[i][0], d->s[i][1]};
        if (evaluator_add(ev, d->stem[i], sc, d->l[i], d->w[i], d->h[i], 0.5 * i, e)) return e->code;
    }
    return OODSEG_OK;
}

static const char *ev_names[EV_M] = {"maxlogit", "energy"};

TEST(evaluator_pooled_equals_one_accumulator) {
    ev_data d;
    ev_data_make(&d);
    err e = {0};
    evaluator_opts o;
    evaluator_opts_default(&o, 0);
    o.conv = FPR_NEAREST;
    evaluator *ev;
    REQUIRE(evaluator_new(&ev, EV_M, ev_names, &o, &e) == 0, "%s", e.msg);
    CHECK(!evaluator_needs_maps(ev) && evaluator_result(ev, 0) == NULL);
    REQUIRE(ev_add_range(ev, &d, 0, EV_N, &e) == 0, "%s", e.msg);
    REQUIRE(evaluator_finish(ev, NULL, NULL, &e) == 0, "%s", e.msg);
    CHECK(evaluator_finish(ev, NULL, NULL, &e) == OODSEG_E_ARG);   // once only
    CHECK(evaluator_n_images(ev) == EV_N && evaluator_n_methods(ev) == EV_M && !strcmp(evaluator_method(ev, 1), "energy"));
    for (int m = 0; m < EV_M; m++) {
        macc *a;
        REQUIRE(macc_new(&a, &e) == 0);
        for (int i = 0; i < EV_N; i++) REQUIRE(macc_add(a, d.s[i][m], d.l[i], (int64_t)d.w[i] * d.h[i], &e) == 0);
        metrics_result ref;
        REQUIRE(macc_compute(a, FPR_NEAREST, 1, &ref, &e) == 0);
        const metrics_result *got = evaluator_result(ev, m);
        REQUIRE(got);
        CHECK(same_result(&ref, got) && got->conv == FPR_NEAREST && got->curve.n == ref.curve.n, "method %d: AP %.17g vs %.17g", m, got->ap, ref.ap);
        CHECK(evaluator_comp_result(ev, m) == NULL);
        metrics_result_free(&ref);
        macc_free(a);
    }
    // per-image rows: each image's own metrics
    int n;
    const report_row *rows = evaluator_rows(ev, &n);
    REQUIRE(rows && n == EV_N);
    for (int i = 0; i < EV_N; i++) {
        metrics_result r;
        REQUIRE(metrics_compute(d.s[i][1], d.l[i], (int64_t)d.w[i] * d.h[i], FPR_NEAREST, 0, &r, &e) == 0);
        CHECK(!strcmp(rows[i].stem, d.stem[i]) && rows[i].ap[1] == r.ap && rows[i].fpr95[1] == r.fpr95 &&
              rows[i].n_valid == r.n_pos + r.n_neg && rows[i].n_ood == r.n_pos && rows[i].seconds == 0.5 * i, "row %d", i);
    }
    // reports from the evaluator: metrics.json holds the pooled values, per_image.csv a row an image
    char dir[512], p[600];
    snprintf(dir, sizeof dir, "%s/ev_report", t_tmpdir());
    eval_info info = {.dataset = "generic", .layout = "generic", .labels_doc = "0 ID, 1 OoD", .model = "synthetic"};
    REQUIRE(evaluator_write_reports(ev, &info, dir, &e) == 0, "%s", e.msg);
    snprintf(p, sizeof p, "%s/metrics.json", dir);
    CHECK(json_file_num(p, "energy", "AP") == evaluator_result(ev, 1)->ap);
    snprintf(p, sizeof p, "%s/per_image.csv", dir);
    CHECK(t_sh("test $(wc -l < %s) -eq %d", p, EV_N + 1) == 0);
    char *t = evaluator_table_md(ev);
    CHECK(t && strstr(t, "| maxlogit | ") && strstr(t, "| energy | "), "%s", t ? t : "(null)");
    free(t);
    // errors: a bad label names the image, the method and the pixel; the evaluator then refuses more
    evaluator *bad;
    REQUIRE(evaluator_new(&bad, EV_M, ev_names, NULL, &e) == 0);
    uint8_t keep = d.l[2][5];
    d.l[2][5] = 7;
    CHECK(ev_add_range(bad, &d, 0, 3, &e) == OODSEG_E_DATA && strstr(e.msg, "img2 (maxlogit)") && strstr(e.msg, "pixel 5"), "%s", e.msg);
    d.l[2][5] = keep;
    CHECK(ev_add_range(bad, &d, 3, 4, &e) == OODSEG_E_ARG);
    evaluator_free(bad);
    CHECK(evaluator_new(&bad, 0, ev_names, NULL, &e) == OODSEG_E_ARG && bad == NULL);
    evaluator_free(ev);
    ev_data_free(&d);
}

TEST(evaluator_raw_labels_through_a_convention) {
    err e = {0};
    uint8_t map[256];
    char doc[128];
    int track = -1;
    REQUIRE(dataset_convention("camvid-ood", NULL, map, doc, sizeof doc, &track, &e) == 0, "%s", e.msg);
    CHECK(map[0] == 0 && map[10] == 0 && map[11] == 255 && map[12] == 1 && map[13] == DS_BAD && track == 0 && strstr(doc, "12 OoD"));
    enum { W = 31, H = 23 };
    float s[W * H];
    uint8_t raw[W * H], mapped[W * H];
    for (int i = 0; i < W * H; i++) {
        raw[i] = (uint8_t)(urand() < 0.15 ? 12 : urand() < 0.1 ? 11 : (int)(urand() * 11));
        mapped[i] = map[raw[i]];
        s[i] = (float)(urand() + (raw[i] == 12 ? 0.5 : 0));
    }
    const float *sc[1] = {s};
    const char *nm[1] = {"m"};
    evaluator *a, *b;
    REQUIRE(evaluator_new(&a, 1, nm, NULL, &e) == 0 && evaluator_new(&b, 1, nm, NULL, &e) == 0);
    REQUIRE(evaluator_add_raw(a, "x", sc, raw, map, W, H, 0, &e) == 0, "%s", e.msg);
    REQUIRE(evaluator_add(b, "x", sc, mapped, W, H, 0, &e) == 0, "%s", e.msg);
    REQUIRE(evaluator_finish(a, NULL, NULL, &e) == 0 && evaluator_finish(b, NULL, NULL, &e) == 0);
    CHECK(same_result(evaluator_result(a, 0), evaluator_result(b, 0)) && evaluator_result(a, 0)->n_pos > 0);
    evaluator_free(a); evaluator_free(b);
    // a value the convention does not define names the value and the pixel
    REQUIRE(evaluator_new(&a, 1, nm, NULL, &e) == 0);
    raw[2 * W + 3] = 40;
    CHECK(evaluator_add_raw(a, "x", sc, raw, map, W, H, 0, &e) == OODSEG_E_DATA && strstr(e.msg, "value 40") &&
          strstr(e.msg, "(x 3, y 2)"), "%s", e.msg);
    evaluator_free(a);
    // generic: the value lists; SMIYC obstacle: track 2; an unknown layout is an argument error
    ds_generic g = {.ood = "3", .ignore = "9,250-255"};
    REQUIRE(dataset_convention("generic", &g, map, doc, sizeof doc, &track, &e) == 0, "%s", e.msg);
    CHECK(map[3] == 1 && map[9] == 255 && map[252] == 255 && map[0] == 0 && map[100] == 0);
    REQUIRE(dataset_convention("smiyc-obstacle:/nowhere", NULL, map, NULL, 0, &track, &e) == 0, "%s", e.msg);
    CHECK(track == 2 && map[1] == 1 && map[2] == DS_BAD);
    CHECK(dataset_convention("cityscapes", NULL, map, doc, sizeof doc, &track, &e) == OODSEG_E_ARG && strstr(e.msg, "cityscapes"));
    CHECK(dataset_convention("generic", NULL, map, doc, sizeof doc, &track, &e) == OODSEG_E_ARG && strstr(e.msg, "--ood"));
}

TEST(evaluator_states_merge_to_one_pass) {
    ev_data d;
    ev_data_make(&d);
    err e = {0};
    evaluator *all, *sh;
    REQUIRE(evaluator_new(&all, EV_M, ev_names, NULL, &e) == 0);
    REQUIRE(ev_add_range(all, &d, 0, EV_N, &e) == 0 && evaluator_finish(all, NULL, NULL, &e) == 0, "%s", e.msg);
    int cut[4] = {0, 2, 7, EV_N};
    char paths[3][512];
    const char *pp[3];
    for (int k = 0; k < 3; k++) {
        REQUIRE(evaluator_new(&sh, EV_M, ev_names, NULL, &e) == 0);
        REQUIRE(ev_add_range(sh, &d, cut[k], cut[k + 1], &e) == 0, "%s", e.msg);
        eval_info info = {.dataset = "generic:/data/x", .layout = "generic", .labels_doc = "0 ID, 1 OoD",
                          .model = "m \"quoted\".pth", .model_arch = "espnet-p2-q8", .options_json = "{\"k\": \"8\"}",
                          .n_images = cut[k + 1] - cut[k]};
        char meta[1024];
        REQUIRE(eval_meta_json(&info, k, 3, meta, sizeof meta, &e) == 0, "%s", e.msg);
        json *j = json_parse(meta, strlen(meta), "meta", &e);
        REQUIRE(j, "%s: %s", meta, e.msg);
        const json *sv = json_get(j, "shard"), *mv = json_get(j, "model");
        CHECK(sv && !strcmp(sv->str, k == 0 ? "0/3" : k == 1 ? "1/3" : "2/3") && mv && !strcmp(mv->str, "m \"quoted\".pth") &&
              jnum(j, "images") == info.n_images && json_get(json_get(j, "options"), "k"), "%s", meta);
        json_free(j);
        char tiny[40];
        CHECK(eval_meta_json(&info, k, 3, tiny, sizeof tiny, &e) == OODSEG_E_ARG && tiny[0] == 0);
        snprintf(paths[k], sizeof paths[k], "%s/ev_shard%d.state", t_tmpdir(), k);
        pp[k] = paths[k];
        REQUIRE(evaluator_save_state(sh, paths[k], meta, &e) == 0, "%s", e.msg);
        evaluator_free(sh);
    }
    evaluator *mg;
    char merged[512];
    snprintf(merged, sizeof merged, "%s/ev_merged.state", t_tmpdir());
    REQUIRE(evaluator_merge(&mg, pp, 3, FPR_FIRST_GE, merged, &e) == 0, "%s", e.msg);
    CHECK(evaluator_n_methods(mg) == EV_M && !strcmp(evaluator_method(mg, 0), "maxlogit"));
    for (int m = 0; m < EV_M; m++) CHECK(same_result(evaluator_result(all, m), evaluator_result(mg, m)), "method %d", m);
    const eval_info *mi = evaluator_info(mg);
    REQUIRE(mi);
    CHECK(mi->n_images == EV_N && !strcmp(mi->dataset, "generic:/data/x") && !strcmp(mi->model_arch, "espnet-p2-q8") &&
          strstr(mi->note, "3 shard states") && evaluator_n_images(mg) == EV_N);
    int n = -1;
    CHECK(evaluator_rows(mg, &n) == NULL && n == 0 && evaluator_info(all) == NULL);
    evaluator_free(mg);
    // the merged state keeps the metadata and merges to the same values again
    const char *one[1] = {merged};
    REQUIRE(evaluator_merge(&mg, one, 1, FPR_FIRST_GE, NULL, &e) == 0, "%s", e.msg);
    for (int m = 0; m < EV_M; m++) CHECK(same_result(evaluator_result(all, m), evaluator_result(mg, m)));
    CHECK(!strcmp(evaluator_info(mg)->layout, "generic"));
    evaluator_free(mg);
    evaluator_free(all);
    ev_data_free(&d);
}

// The component pass gets the maps from memory here (from .npy folders in the CLI test).
typedef struct map_src { const ev_data *d; int calls; int bad_order; } map_src;
static int maps_from_memory(void *ctx, int image, const char *stem, int method, float *dst, int w, int h, err *e) {
    map_src *m = ctx;
    if (strcmp(stem, m->d->stem[image]) || w != m->d->w[image] || h != m->d->h[image]) m->bad_order = 1;
    memcpy(dst, m->d->s[image][method], (size_t)w * h * sizeof *dst);
    m->calls++;
    (void)e;
    return OODSEG_OK;
}

TEST(evaluator_component_pass) {
    ev_data d;
    ev_data_make(&d);
    err e = {0};
    evaluator_opts o;
    evaluator_opts_default(&o, 1);
    CHECK(o.components && o.comp.min_pred_size == 500 && isnan(o.comp.threshold));
    o.comp.min_pred_size = 8; o.comp.min_gt_size = 4;   // the synthetic images are small
    evaluator *ev;
    REQUIRE(evaluator_new(&ev, EV_M, ev_names, &o, &e) == 0);
    REQUIRE(ev_add_range(ev, &d, 0, EV_N, &e) == 0, "%s", e.msg);
    CHECK(evaluator_needs_maps(ev));
    CHECK(evaluator_finish(ev, NULL, NULL, &e) == OODSEG_E_ARG && strstr(e.msg, "callback"), "%s", e.msg);
    map_src src = {&d, 0, 0};
    REQUIRE(evaluator_finish(ev, maps_from_memory, &src, &e) == 0, "%s", e.msg);
    CHECK(src.calls == EV_N * EV_M && !src.bad_order, "%d calls", src.calls);
    for (int m = 0; m < EV_M; m++) {
        comp_params p = o.comp;
        p.threshold = comp_default_threshold(evaluator_result(ev, m));
        comp_acc a = {0};
        for (int i = 0; i < EV_N; i++) REQUIRE(comp_add(&a, d.s[i][m], d.l[i], d.w[i], d.h[i], &p, &e) == 0);
        comp_result want;
        comp_finish(&a, &want);
        const comp_result *got = evaluator_comp_result(ev, m);
        REQUIRE(got);
        CHECK(evaluator_comp_params(ev, m)->threshold == p.threshold && got->n_gt == want.n_gt && got->n_pred == want.n_pred &&
              got->f1_mean == want.f1_mean && got->siou_gt == want.siou_gt && want.n_gt >= EV_N, "method %d", m);
    }
    evaluator_free(ev);
    // a threshold given: no second pass, the components are counted as the images come
    o.comp.threshold = 0.75;
    REQUIRE(evaluator_new(&ev, EV_M, ev_names, &o, &e) == 0);
    REQUIRE(ev_add_range(ev, &d, 0, EV_N, &e) == 0, "%s", e.msg);
    CHECK(!evaluator_needs_maps(ev));
    REQUIRE(evaluator_finish(ev, NULL, NULL, &e) == 0, "%s", e.msg);
    comp_acc a = {0};
    for (int i = 0; i < EV_N; i++) REQUIRE(comp_add(&a, d.s[i][0], d.l[i], d.w[i], d.h[i], &o.comp, &e) == 0);
    comp_result want;
    comp_finish(&a, &want);
    CHECK(evaluator_comp_result(ev, 0)->f1_mean == want.f1_mean && evaluator_comp_result(ev, 0)->n_pred == want.n_pred);
    evaluator_free(ev);
    ev_data_free(&d);
}

TEST(eval_json_member_keeps_an_object) {
    char o[48] = "{}";
    CHECK(eval_json_member(o, sizeof o, "k", "v\"1", NULL) == 0 && !strcmp(o, "{\"k\": \"v\\\"1\"}"), "%s", o);
    CHECK(eval_json_member(o, sizeof o, "r", NULL, "{\"a\": 1}") == 0 && !strcmp(o, "{\"k\": \"v\\\"1\", \"r\": {\"a\": 1}}"), "%s", o);
    char before[48];
    strcpy(before, o);
    CHECK(eval_json_member(o, sizeof o, "long", "a value that does not fit", NULL) == -1 && !strcmp(o, before), "%s", o);
}

TEST(cli_metrics_shards_and_errors) {
    FILE *f = fopen(cli_bin, "rb");
    if (!f) SKIP("%s not built (make cli)", cli_bin);
    fclose(f);
    const char *T = t_tmpdir();
    t_sh("mkdir -p %s/g/img %s/g/lab %s/g/sc", T, T, T);
    enum { W = 23, H = 17, N = 7 };
    float s[W * H];
    uint8_t l[W * H];
    err e = {0};
    for (int k = 0; k < N; k++) {
        char p[600];
        for (int i = 0; i < W * H; i++) {
            l[i] = urand() < 0.2 ? 3 : (urand() < 0.1 ? 9 : 0);   // generic: --ood 3 --ignore 9
            s[i] = (float)floor((urand() + (l[i] == 3 ? 0.5 : 0)) * 50) / 50;
        }
        snprintf(p, sizeof p, "%s/g/lab/f%d.png", T, k);
        image lab = {W, H, 1, l};
        REQUIRE(image_save_png(p, &lab, &e) == 0, "%s", e.msg);
        snprintf(p, sizeof p, "%s/g/img/f%d.png", T, k);
        REQUIRE(image_save_png(p, &lab, &e) == 0, "%s", e.msg);
        snprintf(p, sizeof p, "%s/g/sc/f%d.npy", T, k);
        int64_t shape[2] = {H, W};
        REQUIRE(npy_write_f32(p, s, 2, shape, &e) == 0, "%s", e.msg);
    }
    char ds[1400];
    snprintf(ds, sizeof ds, "--dataset generic --images %s/g/img --labels %s/g/lab --ood 3 --ignore 9 --scores m=%s/g/sc", T, T, T);
    REQUIRE(t_sh("%s metrics %s -o %s/g/full >/dev/null 2>&1", cli_bin, ds, T) == 0);
    for (int i = 0; i < 3; i++)
        REQUIRE(t_sh("%s metrics %s --shard %d/3 --save-state %s/g/s%d.state >/dev/null 2>&1", cli_bin, ds, i, T, i) == 0);
    REQUIRE(t_sh("%s metrics --merge %s/g/s0.state %s/g/s1.state %s/g/s2.state -o %s/g/merged >/dev/null 2>&1", cli_bin, T, T, T, T) == 0);
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/g/full/metrics.json", T);
    snprintf(b, sizeof b, "%s/g/merged/metrics.json", T);
    static const char *keys[] = {"AP", "AUROC", "FPR95", "FPR95_nearest", "FPR95_first_gt", "n_pos", "n_neg"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        double x = json_file_num(a, "m", keys[k]), y = json_file_num(b, "m", keys[k]);
        CHECK(x == y && x == x, "%s: single pass %.17g, merged shards %.17g", keys[k], x, y);
    }
    // components at the pooled threshold: the second pass reads the maps back from the folder
    REQUIRE(t_sh("%s metrics %s --components -o %s/g/comp >/dev/null 2>&1", cli_bin, ds, T) == 0);
    snprintf(a, sizeof a, "%s/g/comp/metrics.json", T);
    char *txt = t_slurp(a, NULL);
    REQUIRE(txt);
    json *j = json_parse(txt, strlen(txt), a, &e);
    const json *cj = json_get(json_get(json_get(j, "methods"), "m"), "components");
    CHECK(cj && isfinite(jnum(cj, "threshold")) && jnum(cj, "n_gt_components") >= 0, "%s", txt);
    json_free(j); free(txt);
    // a wrong-shaped map and a missing map: exit status 7 (dataset error)
    t_sh("rm %s/g/sc/f3.npy", T);
    CHECK(t_sh("%s metrics %s >/dev/null 2>&1", cli_bin, ds) == OODSEG_E_DATA);
    int64_t shape[2] = {H, W + 1};
    char p[600];
    snprintf(p, sizeof p, "%s/g/sc/f3.npy", T);
    float *big = calloc((size_t)H * (W + 1), sizeof *big);
    REQUIRE(npy_write_f32(p, big, 2, shape, &e) == 0);
    free(big);
    CHECK(t_sh("%s metrics %s 2>&1 | grep -q 'f3.npy: score map of shape (17, 24)'", cli_bin, ds) == 0);
    CHECK(t_sh("%s metrics --merge %s >/dev/null 2>&1", cli_bin, a) == OODSEG_E_FORMAT);
}

int main(int argc, char **argv) {
    (void)argc;
    RUN(golden_case1_tiny);
    RUN(golden_case2_ties);
    RUN(golden_case3_ignore);
    RUN(golden_case4_realistic);
    RUN(hand_values_case1);
    RUN(random_vs_bruteforce_large);
    RUN(skewed_scores_vs_bruteforce);
    RUN(random_vs_sklearn);
    RUN(shard_merge_is_exact);
    RUN(errors_and_edge_cases);
    RUN(components_hand_made);
    RUN(components_adjustment_void_connectivity);
    RUN(components_vs_flood_fill);
    RUN(report_files);
    RUN(evaluator_pooled_equals_one_accumulator);
    RUN(evaluator_raw_labels_through_a_convention);
    RUN(evaluator_states_merge_to_one_pass);
    RUN(evaluator_component_pass);
    RUN(eval_json_member_keeps_an_object);
    // the CLI next to this build's tests: <build>/tests/test_metrics -> <build>/oodseg
    snprintf(cli_bin, sizeof cli_bin, "%s", argv[0]);
    char *slash = strrchr(cli_bin, '/');
    if (slash) { *slash = 0; slash = strrchr(cli_bin, '/'); }
    if (slash) strcpy(slash + 1, "oodseg"); else snprintf(cli_bin, sizeof cli_bin, "../oodseg");
    RUN(cli_metrics_shards_and_errors);
    return t_finish(argv[0]);
}
