// Exact pooled metrics on a RoadAnomaly-sized set (60 x 1280 x 720 = 55.3 M pixels) against
// scikit-learn's average_precision_score + roc_auc_score on the same data in the same run
// (Debian's /usr/bin/python3 via tools/metrics_ref.py, which times the two sklearn calls alone).
// Prints a Markdown table. Usage: bench_metrics [n_images] (default 60); run from the repo root.
#include "../eval/metrics.h"
#include "../io/npy.h"
#include "../core/json.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static inline double urand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (rng >> 11) * (1.0 / 9007199254740992.0);
}

// Scores like a real max-logit map: a smooth field per image, an OoD blob shifted up, pixel noise,
// rounded to float32 (so there are some exact ties, as in real maps).
static void make_image(float *s, uint8_t *l, int w, int h, int with_ignore) {
    double cx = urand() * w, cy = urand() * h, r = 40 + urand() * 120;
    double a = urand() * 2, b = urand() * 2;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int64_t i = (int64_t)y * w + x;
            double dx = x - cx, dy = y - cy;
            int ood = dx * dx + dy * dy < r * r;
            double v = sin(x * 0.01 * a) + cos(y * 0.013 * b) + (ood ? 2.0 : 0) + 1.2 * (urand() - 0.5) * 2;
            s[i] = (float)(1.0 / (1.0 + exp(-v)));
            l[i] = (uint8_t)ood;
            if (with_ignore && y > h - h / 8) l[i] = 255;   // an ego-vehicle band
        }
}

int main(int argc, char **argv) {
    int n_img = argc > 1 ? atoi(argv[1]) : 60, W = 1280, H = 720;
    int64_t np = (int64_t)W * H, n = np * n_img;
    float *s = malloc((size_t)n * 4);
    uint8_t *l = malloc((size_t)n);
    if (!s || !l) { fprintf(stderr, "out of memory for %lld pixels\n", (long long)n); return 1; }
    for (int i = 0; i < n_img; i++) make_image(s + i * np, l + i * np, W, H, i % 3 == 0);
    err e = {0};
    // oodseg: accumulate image by image (as eval does), then sort + sweep
    double t0 = omp_get_wtime();
    macc *a;
    if (macc_new(&a, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
    for (int i = 0; i < n_img; i++)
        if (macc_add(a, s + i * np, l + i * np, np, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
    double t1 = omp_get_wtime();
    metrics_result r;
    if (macc_compute(a, FPR_FIRST_GE, 1, &r, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
    double t2 = omp_get_wtime();
    macc_free(a);
    // sklearn on the same data
    char dir[] = "/tmp/oodseg-bench-XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    char sp[256], lp[256], jp[256], cmd[1024];
    snprintf(sp, sizeof sp, "%s/s.npy", dir);
    snprintf(lp, sizeof lp, "%s/l.npy", dir);
    snprintf(jp, sizeof jp, "%s/r.json", dir);
    int64_t shape[1] = {n};
    if (npy_write_f32(sp, s, 1, shape, &e) || npy_write(lp, "u1", l, 1, shape, &e)) { fprintf(stderr, "writing %s: %s\n", dir, e.msg); return 1; }
    free(s); free(l);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tools/metrics_ref.py %s %s %s", sp, lp, jp);
    double t3 = omp_get_wtime();
    int py = system(cmd);
    double t4 = omp_get_wtime();
    json *j = NULL;
    char *txt = NULL;
    if (py == 0) {
        FILE *f = fopen(jp, "rb");
        if (f) {
            txt = calloc(1, 1 << 16);
            size_t k = fread(txt, 1, (1 << 16) - 1, f);
            fclose(f);
            j = json_parse(txt, k, jp, &e);
        }
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    printf("## bench_metrics: %d images of %dx%d = %.1f M pixels (%lld valid, %lld OoD, %lld distinct scores), %d threads\n\n",
           n_img, W, H, n / 1e6, (long long)(r.n_pos + r.n_neg), (long long)r.n_pos, (long long)r.n_distinct, omp_get_max_threads());
    printf("| | AP | AUROC | FPR95 | seconds |\n|:---|---:|---:|---:|---:|\n");
    printf("| oodseg (add %.2f s + sort/sweep %.2f s) | %.12f | %.12f | %.12f | %.3f |\n", t1 - t0, t2 - t1, r.ap, r.auroc, r.fpr95, t2 - t0);
    if (!j) {
        printf("| scikit-learn | (not run: /usr/bin/python3 with sklearn missing, or not in the repo root) | | | |\n");
        return 0;
    }
    const json *v;
    double ap = (v = json_get(j, "AP")) ? v->num : NAN, au = (v = json_get(j, "AUROC")) ? v->num : NAN;
    double fp = (v = json_get(j, "fpr95_first_ge")) ? v->num : NAN, ts = (v = json_get(j, "seconds_sklearn")) ? v->num : NAN;
    printf("| scikit-learn 1.2 average_precision_score + roc_auc_score | %.12f | %.12f | %.12f | %.3f |\n", ap, au, fp, ts);
    printf("\n|diff| AP %.2g, AUROC %.2g, FPR95 %.2g; speedup %.1fx (sklearn calls only; the python process took %.1f s in all)\n",
           fabs(ap - r.ap), fabs(au - r.auroc), fabs(fp - r.fpr95), ts / (t2 - t0), t4 - t3);
    int ok = fabs(ap - r.ap) <= 1e-9 && fabs(au - r.auroc) <= 1e-9 && fabs(fp - r.fpr95) <= 1e-9;
    printf("%s\n", ok ? "values equal to 1e-9" : "VALUES DIFFER");
    json_free(j); free(txt);
    metrics_result_free(&r);
    return ok ? 0 : 1;
}
