// The development set end to end: `oodseg eval` with the real ESPNet CamVid model on all 233
// CamVid-OOD images must reproduce what the reference pipeline (official PyTorch model +
// scikit-learn, scores bilinearly resized to label size, void ignored, ID channels only) measured,
// within 0.1 (x100); the K-Means method with its frozen defaults (METHOD.md) must beat MaxLogit of
// the same model by >= 3 AP and >= 10 FPR95 points; and every report file must be there and valid.
// Under sanitizers the run uses 12 images and checks only the files.
#include "test.h"
#include "../core/json.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char bin[1024];

static double metric(const json *j, const char *method, const char *key) {
    const json *m = json_get(json_get(j, "methods"), method);
    const json *v = json_get(m, key);
    return v && v->type == JSON_NUMBER ? v->num : NAN;
}

TEST(camvid_ood_reference_values_and_reports) {
    ASSET_OR_SKIP(model, "models/espnet/pretrained/decoder/espnet_p_2_q_8_camvid.pth");
    ASSET_OR_SKIP(data, "data/camvid-ood/test_ood.txt");
    char root[1024], out[600];
    snprintf(root, sizeof root, "%s", data);
    *strrchr(root, '/') = 0;
    snprintf(out, sizeof out, "%s/eval", t_tmpdir());
    int quick = t_sanitized();
    REQUIRE(t_sh("%s eval --model %s --dataset camvid-ood:%s --methods msp,maxlogit,entropy,energy,kmeans "
                 "%s -o %s 2>%s/eval.log", bin, model, root, quick ? "--limit 12" : "", out, t_tmpdir()) == 0,
            "oodseg eval failed (see %s/eval.log)", t_tmpdir());
    const char *files[] = {"metrics.json", "metrics.md", "metrics.csv", "per_image.csv", "pr_curve.svg", "roc_curve.svg"};
    for (int i = 0; i < 6; i++) {
        char p[700];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", out, files[i]);
        CHECK(stat(p, &st) == 0 && st.st_size > 0, "missing report file %s", p);
    }
    // The SVGs are well-formed XML and the Markdown table has a header, a rule and one row a method.
    if (t_python_has("xml")) {
        CHECK(t_sh("/usr/bin/python3 -c 'import sys, xml.dom.minidom as m; [m.parse(f) for f in sys.argv[1:]]' "
                   "%s/pr_curve.svg %s/roc_curve.svg", out, out) == 0, "an SVG is not valid XML");
    }
    size_t n;
    char p[700];
    snprintf(p, sizeof p, "%s/metrics.md", out);
    char *md = t_slurp(p, &n);
    REQUIRE(md);
    CHECK(strstr(md, "| Method | AP | FPR95 | AUROC |") && strstr(md, "|:---|---:|---:|---:|") &&
          strstr(md, "\n| kmeans |") && strstr(md, "\n| maxlogit |"), "%s", md);
    free(md);
    snprintf(p, sizeof p, "%s/metrics.json", out);
    char *js = t_slurp(p, &n);
    REQUIRE(js);
    err e = {0};
    json *j = json_parse(js, n, p, &e);
    free(js);
    REQUIRE(j, "%s", e.msg);
    const json *conv = json_get(j, "fpr95_convention");
    CHECK(conv && conv->type == JSON_STRING && !strcmp(conv->str, "first-ge"));
    // the resolved method options, defaults included (the frozen ones of METHOD.md)
    const json *res = json_get(json_get(j, "options"), "resolved");
    const json *k = json_get(res, "k"), *score = json_get(res, "score");
    CHECK(k && k->type == JSON_NUMBER && k->num == 16 && score && score->type == JSON_STRING &&
          !strcmp(score->str, "s2"), "metrics.json lacks the resolved kmeans options");
    if (quick) { json_free(j); fprintf(stderr, "  (sanitizer build: 12 images, files only)\n"); return; }
    // The reference pipeline's values, x100: AP / FPR95 / AUROC.
    static const struct { const char *m; double ap, fpr, auroc; } ref[] = {
        {"msp", 14.06, 61.92, 78.48}, {"maxlogit", 17.68, 67.37, 82.25},
        {"entropy", 16.47, 62.14, 79.84}, {"energy", 17.49, 67.23, 82.52}};
    for (int i = 0; i < 4; i++) {
        double ap = 100 * metric(j, ref[i].m, "AP"), fpr = 100 * metric(j, ref[i].m, "FPR95"),
               au = 100 * metric(j, ref[i].m, "AUROC");
        fprintf(stderr, "  %-9s AP %.2f  FPR95 %.2f  AUROC %.2f\n", ref[i].m, ap, fpr, au);
        CHECK_NEAR(ap, ref[i].ap, 0.1);
        CHECK_NEAR(fpr, ref[i].fpr, 0.1);
        CHECK_NEAR(au, ref[i].auroc, 0.1);
    }
    double ap = 100 * metric(j, "kmeans", "AP"), fpr = 100 * metric(j, "kmeans", "FPR95");
    double ap0 = 100 * metric(j, "maxlogit", "AP"), fpr0 = 100 * metric(j, "maxlogit", "FPR95");
    fprintf(stderr, "  kmeans    AP %.2f  FPR95 %.2f  AUROC %.2f (defaults)\n", ap, fpr, 100 * metric(j, "kmeans", "AUROC"));
    CHECK(ap >= ap0 + 3, "kmeans AP %.2f does not beat MaxLogit %.2f by 3 points", ap, ap0);
    CHECK(fpr <= fpr0 - 10, "kmeans FPR95 %.2f does not beat MaxLogit %.2f by 10 points", fpr, fpr0);
    json_free(j);
}

int main(int argc, char **argv) {
    (void)argc;
    snprintf(bin, sizeof bin, "%s", t_cli_path(argv[0]));
    RUN(camvid_ood_reference_values_and_reports);
    return t_finish(argv[0]);
}
