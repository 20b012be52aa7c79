// The paper's method (Nayal et al., arXiv 2510.02909) as we read it, every choice an option
// (METHOD.md explains them): per-image K-Means on backbone features, each cluster scored by the
// decoder's max logit.
//   1. feature taps -> one grid (ood_fuse_features), optional L2 normalisation;
//   2. K-Means over the grid's vectors of this one image;
//   3. cluster map -> logit grid: nearest (PyTorch 'nearest'), or bilinear on the one-hot maps
//      (align_corners=False; the label with the largest interpolated weight, ties to the lower id);
//   4. per cluster: the mean max-logit of its pixels, or the fraction of them below tau;
//   5. OoD cluster: mean < tau, or fraction > rho. tau: absolute, a percentile of this image's
//      max-logit (linear interpolation, as numpy.percentile), or calibrated on ID images;
//   6. S1 = -maxlogit + B [OoD cluster] (B = max-logit range + 1 unless given: every OoD-cluster
//      pixel ranks above every other pixel, max-logit orders pixels within each group), or
//      S2 = -(the cluster's mean max-logit), piecewise constant.
#include "ood.h"
#include "../nn/nn.h"
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

static void l2rows(const nn_ctx *ctx, float *X, int64_t n, int d, int ld) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if (n * d > (1 << 16))
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int c = 0; c < d; c++) s += (double)X[i * ld + c] * X[i * ld + c];
        double inv = 1.0 / fmax(sqrt(s), 1e-12);   // F.normalize's eps
        for (int c = 0; c < d; c++) X[i * ld + c] = (float)(X[i * ld + c] * inv);
    }
}

int ood_fuse_features(const ood_input *in, const ood_options *o, float **Xout, int *gh_out,
                      int *gw_out, int *dim_out, int *stride_out, err *e) {
    *Xout = NULL;
    int fs = o->fuse_stride, D = 0;
    if (fs <= 0)
        for (int t = 0; t < in->num_feats; t++) if (in->feat_strides[t] > fs) fs = in->feat_strides[t];
    int gh = (in->h + fs - 1) / fs, gw = (in->w + fs - 1) / fs;
    for (int t = 0; t < in->num_feats; t++) {
        if (in->feat_strides[t] == fs) { gh = (int)in->feats[t]->shape[2]; gw = (int)in->feats[t]->shape[3]; break; }
    }
    for (int t = 0; t < in->num_feats; t++) D += (int)in->feats[t]->shape[1];
    const int64_t n = (int64_t)gh * gw;
    float *X = err_malloc(e, sizeof(float) * n * D, "fused features");
    if (!X) return e ? e->code : OODSEG_E_NOMEM;
    int off = 0;
    for (int t = 0; t < in->num_feats; t++) {
        const tensor *f = in->feats[t];
        const int c = (int)f->shape[1], h = (int)f->shape[2], w = (int)f->shape[3];
        const int64_t hw = (int64_t)h * w;
        for (int64_t q = 0; q < c * hw; q++)
            if (!isfinite(f->data[q])) {
                free(X);
                return err_set(e, OODSEG_E_ARG, "feature tap '%s' has a non-finite value (%s) at channel %lld, "
                               "(x %lld, y %lld)", f->name, isnan(f->data[q]) ? "NaN" : "Inf",
                               (long long)(q / hw), (long long)(q % hw % w), (long long)(q % hw / w));
            }
        const float *src = f->data;
        float *tmp = NULL, *tmp2 = NULL;
        if (o->l2norm == 1) {   // per-pixel L2 over this tap's channels, on its own grid
            tmp = err_malloc(e, sizeof(float) * c * hw, "feature normalisation");
            if (!tmp) { free(X); return e ? e->code : OODSEG_E_NOMEM; }
            // blocks of pixels, channels in order inside (contiguous reads, deterministic sums)
            #pragma omp parallel for schedule(static) num_threads(in->ctx->threads) if (c * hw > (1 << 16))
            for (int64_t p0 = 0; p0 < hw; p0 += 256) {
                double s[256] = {0};
                int np = (int)(hw - p0 < 256 ? hw - p0 : 256);
                for (int ch = 0; ch < c; ch++)
                    for (int q = 0; q < np; q++) { double v = src[ch * hw + p0 + q]; s[q] += v * v; }
                for (int q = 0; q < np; q++) s[q] = 1.0 / fmax(sqrt(s[q]), 1e-12);
                for (int ch = 0; ch < c; ch++)
                    for (int q = 0; q < np; q++) tmp[ch * hw + p0 + q] = (float)(src[ch * hw + p0 + q] * s[q]);
            }
            src = tmp;
        }
        if (h != gh || w != gw) {
            tmp2 = err_malloc(e, sizeof(float) * c * n, "feature resize");
            if (!tmp2) { free(tmp); free(X); return e ? e->code : OODSEG_E_NOMEM; }
            // coarser grid: average the cells (adaptive pooling bins); finer: interpolate
            if (h >= gh && w >= gw) adaptive_avgpool_forward(in->ctx, src, c, h, w, tmp2, gh, gw);
            else resize_bilinear(in->ctx, src, c, h, w, tmp2, gh, gw, 0);
            src = tmp2;
        }
        // (c, n) -> rows of X: blocks of 64 rows, so that the rows being filled stay in cache
        #pragma omp parallel for schedule(static) num_threads(in->ctx->threads) if (c * n > (1 << 16))
        for (int64_t p0 = 0; p0 < n; p0 += 64) {
            int64_t p1 = p0 + 64 < n ? p0 + 64 : n;
            for (int ch = 0; ch < c; ch++)
                for (int64_t p = p0; p < p1; p++) X[p * D + off + ch] = src[ch * n + p];
        }
        free(tmp);
        free(tmp2);
        off += c;
    }
    if (o->l2norm == 2) l2rows(in->ctx, X, n, D, D);
    *Xout = X;
    *gh_out = gh;
    *gw_out = gw;
    *dim_out = D;
    *stride_out = fs;
    return OODSEG_OK;
}

// ---- helpers ---------------------------------------------------------------------------------
static float kth(float *a, int64_t n, int64_t k) {   // quickselect, a is reordered
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float piv = a[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < piv) i++;
            while (a[j] > piv) j--;
            if (i <= j) { float t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else break;
    }
    return a[k];
}

// numpy.percentile (linear interpolation) of v[0..n)
int ood_percentile(const float *v, int64_t n, double pct, double *out, err *e) {
    float *a = err_malloc(e, sizeof(float) * n, "percentile");
    if (!a) return e ? e->code : OODSEG_E_NOMEM;
    memcpy(a, v, sizeof(float) * n);
    double pos = pct / 100.0 * (double)(n - 1);
    int64_t lo = (int64_t)floor(pos);
    if (lo > n - 1) lo = n - 1;
    double vlo = kth(a, n, lo), vhi = vlo;
    if (lo + 1 < n) {
        // the next order statistic is the minimum of the part above lo
        vhi = INFINITY;
        for (int64_t i = lo + 1; i < n; i++) if (a[i] < vhi) vhi = a[i];
    }
    double fr = pos - (double)lo;
    *out = fr > 0 ? vlo + (vhi - vlo) * fr : vlo;
    free(a);
    return OODSEG_OK;
}

// Cluster map (gh, gw) -> logit grid (h, w).
static void upsample_labels(const nn_ctx *ctx, const int32_t *lab, int gh, int gw, int32_t *out, int h, int w,
                            ood_upsample mode, int k) {
    if (mode == UPS_NEAREST) {
        for (int y = 0; y < h; y++) {
            int sy = (int)((int64_t)y * gh / h);
            for (int x = 0; x < w; x++) out[(int64_t)y * w + x] = lab[(int64_t)sy * gw + (int)((int64_t)x * gw / w)];
        }
        return;
    }
    (void)k;
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

int ood_cluster_score(const ood_input *in, const ood_options *o, float *score, ood_aux *aux, err *e) {
    const int h = in->h, w = in->w, k = o->km.k;
    const int64_t hw = (int64_t)h * w;
    float *ml = err_malloc(e, sizeof(float) * hw, "max-logit map");
    int32_t *cl = aux && aux->clusters ? aux->clusters : err_malloc(e, sizeof(int32_t) * hw, "cluster map");
    float *X = NULL;
    kmeans_result km = {0};
    int rc = OODSEG_E_NOMEM;
    if (!ml || !cl) goto done;
    if ((rc = ood_max_logit(in, ml, NULL, NULL, e))) goto done;
    int gh, gw, D, fs;
    if ((rc = ood_fuse_features(in, o, &X, &gh, &gw, &D, &fs, e))) goto done;
    if ((int64_t)k > (int64_t)gh * gw) {
        rc = err_set(e, OODSEG_E_ARG, "--k %d is larger than the number of feature vectors of this image: %d "
                     "(%d x %d grid at stride %d); use a smaller --k or a finer --fuse-stride", k, gh * gw,
                     gw, gh, fs);
        goto done;
    }
    if ((rc = kmeans_fit(in->ctx, X, (int64_t)gh * gw, D, &o->km, NULL, &km, e))) {
        err_prefix(e, "kmeans method: ");
        goto done;
    }
    upsample_labels(in->ctx, km.labels, gh, gw, cl, h, w, o->upsample, k);

    // tau
    double tau = o->tau;
    if (o->tau_mode == TAU_PERCENTILE) {
        if ((rc = ood_percentile(ml, hw, o->tau, &tau, e))) goto done;
    } else if (o->tau_mode == TAU_CALIBRATED) {
        if ((rc = ood_read_tau(o->tau_file, &tau, e))) goto done;
    }
    // per cluster: count, mean max-logit, fraction below tau
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
    uint8_t flag[256] = {0};
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
    free(ml);
    if (!(aux && aux->clusters)) free(cl);
    return rc;
}
