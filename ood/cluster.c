// The paper's method (Nayal et al., arXiv 2510.02909) as we read it, every choice an option
// (METHOD.md explains them): per-image K-Means on backbone features, each cluster scored by the
// decoder's max logit.
//   1. feature taps -> one grid (ood_fuse_features, features.c), optional L2 normalisation;
//   2. K-Means over the grid's vectors of this one image;
//   3. cluster map -> logit grid: nearest (PyTorch 'nearest'), or bilinear on the one-hot maps
//      (align_corners=False; the label with the largest interpolated weight, ties to the lower id);
//   4. per cluster: the mean max-logit of its pixels, or the fraction of them below tau;
//   5. OoD cluster: mean < tau, or fraction > rho. tau: absolute, a percentile of this image's
//      max-logit (linear interpolation, as numpy.percentile), or calibrated on ID images;
//   6. S1 = -maxlogit + B [OoD cluster] (B = max-logit range + 1 unless given: every OoD-cluster
//      pixel ranks above every other pixel, max-logit orders pixels within each group), or
//      S2 = -(the cluster's mean max-logit), piecewise constant.
#include "method.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

// Source index and weight of bilinear interpolation, align_corners=False (PyTorch).
static void bil_coord(int o, int in, int out, int *i0, int *i1, float *l1) {
    float src = ((float)o + 0.5f) * (float)in / (float)out - 0.5f;
    if (src < 0) src = 0;
    int a = (int)src;
    if (a > in - 1) a = in - 1;
    *i0 = a;
    *i1 = a < in - 1 ? a + 1 : a;
    *l1 = src - (float)a;
}

// Cluster map (gh, gw) -> logit grid (h, w).
static void upsample_labels(const nn_ctx *ctx, const int32_t *lab, int gh, int gw, int32_t *out, int h, int w,
                            ood_upsample mode) {
    if (mode == UPS_NEAREST) {
        for (int y = 0; y < h; y++) {
            int sy = (int)((int64_t)y * gh / h);
            for (int x = 0; x < w; x++) out[(int64_t)y * w + x] = lab[(int64_t)sy * gw + (int)((int64_t)x * gw / w)];
        }
        return;
    }
    #pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (int y = 0; y < h; y++) {
        int a0, a1;
        float ly;
        bil_coord(y, gh, h, &a0, &a1, &ly);
        for (int x = 0; x < w; x++) {
            int b0, b1;
            float lx;
            bil_coord(x, gw, w, &b0, &b1, &lx);
            int32_t L[4] = {lab[a0 * gw + b0], lab[a0 * gw + b1], lab[a1 * gw + b0], lab[a1 * gw + b1]};
            float W[4] = {(1 - ly) * (1 - lx), (1 - ly) * lx, ly * (1 - lx), ly * lx};
            int32_t best = -1;
            float bw = -1;
            for (int i = 0; i < 4; i++) {
                float s = 0;
                for (int j = 0; j < 4; j++) if (L[j] == L[i]) s += W[j];
                if (s > bw || (s == bw && L[i] < best)) { bw = s; best = L[i]; }
            }
            out[(int64_t)y * w + x] = best;
        }
    }
}

typedef struct kmeans_state {
    double tau;          // TAU_CALIBRATED: the file's tau, read once
} kmeans_state;

static int kmeans_prepare(const ood_options *o, void **state, err *e) {
    *state = NULL;
    if (o->tau_mode == TAU_PERCENTILE && !(o->tau >= 0 && o->tau <= 100))
        return err_set(e, OODSEG_E_ARG, "--tau %g: with --tau-mode percentile, tau is a percentile in [0, 100]",
                       o->tau);
    if (o->tau_mode != TAU_CALIBRATED) return OODSEG_OK;
    if (!o->tau_file[0])
        return err_set(e, OODSEG_E_ARG, "--tau-mode calibrated needs --tau-file (written by `oodseg calibrate`)");
    kmeans_state *s = err_calloc(e, 1, sizeof *s, "kmeans method");
    if (!s) return OODSEG_E_NOMEM;
    int rc = ood_read_tau(o->tau_file, &s->tau, e);
    if (rc) { free(s); return rc; }
    *state = s;
    return OODSEG_OK;
}

static void kmeans_release(void *state) { free(state); }

// Steps 4-6 from the cluster map cl and the max-logit ml (hw each): the OoD flags (k) and scores.
static void score_clusters(const ood_options *o, const float *ml, const int32_t *cl, int64_t hw, int k,
                           double tau, float *score, uint8_t *flag) {
    double sum[256] = {0}, below[256] = {0}, cnt[256] = {0}, mean[256];
    float mlmin = INFINITY, mlmax = -INFINITY;
    for (int64_t p = 0; p < hw; p++) {
        int c = cl[p];
        cnt[c] += 1;
        sum[c] += ml[p];
        below[c] += ml[p] < tau;
        if (ml[p] < mlmin) mlmin = ml[p];
        if (ml[p] > mlmax) mlmax = ml[p];
    }
    for (int c = 0; c < k; c++) {
        mean[c] = cnt[c] > 0 ? sum[c] / cnt[c] : 0;
        if (cnt[c] <= 0) continue;
        flag[c] = o->stat == STAT_MEAN ? mean[c] < tau : below[c] / cnt[c] > o->rho;
    }
    if (o->score == SCORE_S1) {
        double B = o->big_b > 0 ? o->big_b : (double)mlmax - mlmin + 1.0;
        for (int64_t p = 0; p < hw; p++) score[p] = (float)(-(double)ml[p] + (flag[cl[p]] ? B : 0));
    } else {
        for (int64_t p = 0; p < hw; p++) score[p] = (float)(-mean[cl[p]]);
    }
}

static int kmeans_score(const nn_ctx *ctx, const void *state, const ood_options *o, const ood_input *in,
                        float *score, ood_aux *aux, err *e) {
    const kmeans_state *st = state;
    const int h = in->h, w = in->w, k = o->km.k;
    const int64_t hw = (int64_t)h * w;
    // The caller's shared max-logit map when there is one, else this method's own.
    float *own_ml = in->max_logit ? NULL : err_malloc(e, sizeof(float) * hw, "max-logit map");
    const float *ml = in->max_logit ? in->max_logit : own_ml;
    int32_t *cl = aux && aux->clusters ? aux->clusters : err_malloc(e, sizeof(int32_t) * hw, "cluster map");
    float *X = NULL;
    kmeans_result km = {0};
    int rc = OODSEG_E_NOMEM, gh, gw, D, fs;
    if (!ml || !cl) goto done;
    if (own_ml && (rc = ood_max_logit(ctx, in, own_ml, NULL, NULL, e))) goto done;
    if ((rc = ood_fuse_features(ctx, in, o, &X, &gh, &gw, &D, &fs, e))) goto done;
    if ((int64_t)k > (int64_t)gh * gw) {
        rc = err_set(e, OODSEG_E_ARG, "--k %d is larger than the number of feature vectors of this image: %d "
                     "(%d x %d grid at stride %d); use a smaller --k or a finer --fuse-stride", k, gh * gw,
                     gw, gh, fs);
        goto done;
    }
    if ((rc = kmeans_fit(ctx, X, (int64_t)gh * gw, D, &o->km, NULL, &km, e))) {
        err_prefix(e, "kmeans method: ");
        goto done;
    }
    upsample_labels(ctx, km.labels, gh, gw, cl, h, w, o->upsample);
    double tau = o->tau;
    if (o->tau_mode == TAU_PERCENTILE && (rc = ood_percentile(ml, hw, o->tau, &tau, e))) goto done;
    if (o->tau_mode == TAU_CALIBRATED) tau = st->tau;
    uint8_t flag[256] = {0};
    score_clusters(o, ml, cl, hw, k, tau, score, flag);
    if (aux) {
        aux->k = k;
        memset(aux->ood_flag, 0, sizeof aux->ood_flag);
        memcpy(aux->ood_flag, flag, (size_t)k);
        aux->tau_used = tau;
    }
    rc = OODSEG_OK;
done:
    kmeans_result_free(&km);
    free(X);
    free(own_ml);
    if (!(aux && aux->clusters)) free(cl);
    return rc;
}

const ood_method_def ood_def_kmeans = {
    "kmeans", "the paper's: per-image K-Means on the feature taps, clusters scored by max-logit (METHOD.md)",
    OOD_NEEDS_TAPS | OOD_MAKES_CLUSTERS,
    "taps,fuse-stride,l2norm,k,n-init,max-iter,tol,seed,upsample,stat,rho,tau-mode,tau,tau-file,score,big-b",
    kmeans_prepare, kmeans_score, kmeans_release,
};
