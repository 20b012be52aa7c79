// The per-image quantities several methods share: the max logit over the in-distribution
// channels, the fused feature vectors (the taps brought to one grid), and percentiles. The
// kmeans method, the centroid method and the ID statistics all read them from here.
#include "ood.h"
#include "../nn/nn.h"
#include "../nn/simd.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

// The block [p0, p0 + n): the first pixel with a NaN or Inf logit, or -1.
NN_TARGET_CLONES
static int64_t block_max(const ood_input *in, int64_t p0, int n, float *m, int32_t *arg) {
    if (in->max_logit) {   // computed once by the caller, logits vouched finite
        memcpy(m, in->max_logit + p0, sizeof(float) * n);
        memcpy(arg, in->argmax + p0, sizeof(int32_t) * n);
        return -1;
    }
    const int64_t hw = (int64_t)in->h * in->w;
    uint8_t bad[OOD_BLOCK];
    for (int q = 0; q < n; q++) { m[q] = -INFINITY; arg[q] = 0; bad[q] = 0; }
    for (int j = 0; j < in->num_id; j++) {
        const float *z = in->logits + (int64_t)in->id_channels[j] * hw + p0;
        #pragma omp simd
        for (int q = 0; q < n; q++) {
            float v = z[q];
            int gt = v > m[q];   // false for NaN, as in the per-pixel loop
            bad[q] |= !(fabsf(v) <= FLT_MAX);
            m[q] = gt ? v : m[q];
            arg[q] = gt ? j : arg[q];
        }
    }
    for (int q = 0; q < n; q++)
        if (bad[q]) return p0 + q;
    return -1;
}

int ood_block_max(const ood_input *in, int64_t b, float *m, int32_t *arg, int64_t *badpix) {
    const int64_t hw = (int64_t)in->h * in->w, p0 = b * OOD_BLOCK;
    const int n = (int)(hw - p0 < OOD_BLOCK ? hw - p0 : OOD_BLOCK);
    int64_t bad = block_max(in, p0, n, m, arg);
    if (bad >= 0) {
        #pragma omp critical(ood_badpix)
        if (*badpix < 0 || bad < *badpix) *badpix = bad;
    }
    return n;
}

// Blocks of OOD_BLOCK pixels; conf sums exp(z_j - m) per pixel over j in order, in double.
int ood_max_logit(const nn_ctx *ctx, const ood_input *in, float *ml, int32_t *pred, float *conf, err *e) {
    const int64_t hw = (int64_t)in->h * in->w, nb = (hw + OOD_BLOCK - 1) / OOD_BLOCK;
    const int nid = in->num_id;
    int64_t badpix = -1;
    #pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (int64_t b = 0; b < nb; b++) {
        float m[OOD_BLOCK];
        int32_t a[OOD_BLOCK];
        const int n = ood_block_max(in, b, m, a, &badpix);
        const int64_t p0 = b * OOD_BLOCK;
        memcpy(ml + p0, m, sizeof(float) * n);
        if (pred) memcpy(pred + p0, a, sizeof(int32_t) * n);
        if (!conf) continue;
        double s[OOD_BLOCK] = {0};
        for (int j = 0; j < nid; j++) {
            const float *z = in->logits + (int64_t)in->id_channels[j] * hw + p0;
            for (int q = 0; q < n; q++) s[q] += exp((double)z[q] - (double)m[q]);
        }
        for (int q = 0; q < n; q++) conf[p0 + q] = (float)(1.0 / s[q]);
    }
    return badpix >= 0 ? ood_bad_logits(in, badpix, e) : OODSEG_OK;
}

int ood_bad_logits(const ood_input *in, int64_t pixel, err *e) {
    return err_set(e, OODSEG_E_ARG, "logits at pixel (x %lld, y %lld) are not finite (NaN or Inf)",
                   (long long)(pixel % in->w), (long long)(pixel / in->w));
}

// ---- fused features ----------------------------------------------------------------------------
static void l2rows(const nn_ctx *ctx, float *X, int64_t n, int d, int ld) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if (n * d > (1 << 16))
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int c = 0; c < d; c++) s += (double)X[i * ld + c] * X[i * ld + c];
        double inv = 1.0 / fmax(sqrt(s), 1e-12);   // F.normalize's eps
        for (int c = 0; c < d; c++) X[i * ld + c] = (float)(X[i * ld + c] * inv);
    }
}

// The first non-finite value of x[0..n), or -1: a flag per block of 4096 (vectorised), then the
// scan of the block that has one.
NN_TARGET_CLONES
static int64_t first_nonfinite(const float *x, int64_t n) {
    for (int64_t b = 0; b < n; b += 4096) {
        const int m = (int)(n - b < 4096 ? n - b : 4096);
        int bad = 0;
        #pragma omp simd reduction(|:bad)
        for (int q = 0; q < m; q++) bad |= !(fabsf(x[b + q]) <= FLT_MAX);
        if (bad)
            for (int q = 0; q < m; q++) if (!isfinite(x[b + q])) return b + q;
    }
    return -1;
}

static int tap_finite(const tensor *f, err *e) {
    const int64_t c = f->shape[1], w = f->shape[3], hw = f->shape[2] * w, q = first_nonfinite(f->data, c * hw);
    if (q >= 0)
        return err_set(e, OODSEG_E_ARG, "feature tap '%s' has a non-finite value (%s) at channel %lld, "
                       "(x %lld, y %lld)", f->name, isnan(f->data[q]) ? "NaN" : "Inf",
                       (long long)(q / hw), (long long)(q % hw % w), (long long)(q % hw / w));
    return OODSEG_OK;
}

// Pixels p0..p0+np-1 (np <= 256) of l2_pixels(), vectorised across the pixels; 0 when a pixel's
// sum of squares is not finite (then the tap holds a NaN or an Inf: squares of floats cannot
// overflow a double).
NN_TARGET_CLONES
static int l2_block(const float *src, int c, int64_t hw, int64_t p0, int np, float *dst) {
    double s[256];
    for (int q = 0; q < np; q++) s[q] = 0;
    for (int ch = 0; ch < c; ch++) {
        const float *x = src + ch * hw + p0;
        #pragma omp simd
        for (int q = 0; q < np; q++) s[q] += (double)x[q] * x[q];
    }
    int bad = 0;
    #pragma omp simd reduction(|:bad)
    for (int q = 0; q < np; q++) {
        bad |= !(s[q] <= DBL_MAX);
        s[q] = 1.0 / fmax(sqrt(s[q]), 1e-12);   // F.normalize's eps
    }
    for (int ch = 0; ch < c; ch++) {
        const float *x = src + ch * hw + p0;
        float *y = dst + ch * hw + p0;
        #pragma omp simd
        for (int q = 0; q < np; q++) y[q] = (float)(x[q] * s[q]);
    }
    return !bad;
}

// Per-pixel L2 over the c channels of src (c, hw) into dst: blocks of pixels, channels in order
// inside (contiguous reads, deterministic sums). 0 when src holds a non-finite value.
static int l2_pixels(const nn_ctx *ctx, const float *src, int c, int64_t hw, float *dst) {
    int ok = 1;
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if (c * hw > (1 << 16)) reduction(&:ok)
    for (int64_t p0 = 0; p0 < hw; p0 += 256)
        ok &= l2_block(src, c, hw, p0, (int)(hw - p0 < 256 ? hw - p0 : 256), dst);
    return ok;
}

// A tap (c, h, w) brought to the grid (c, gh, gw): the cells averaged (adaptive pooling bins) on
// a coarser grid, interpolated on a finer one. The only nn/ ops the methods call.
static void resample(const nn_ctx *ctx, const float *src, int c, int h, int w, float *dst, int gh, int gw) {
    if (h >= gh && w >= gw) adaptive_avgpool_forward(ctx, src, c, h, w, dst, gh, gw);
    else resize_bilinear(ctx, src, c, h, w, dst, gh, gw, 0);
}

// (c, n) -> columns off..off+c-1 of the rows of X (n, D): blocks of 64 rows, so that the rows
// being filled stay in cache.
static void to_rows(const nn_ctx *ctx, const float *src, int c, int64_t n, float *X, int D, int off) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if (c * n > (1 << 16))
    for (int64_t p0 = 0; p0 < n; p0 += 64) {
        int64_t p1 = p0 + 64 < n ? p0 + 64 : n;
        for (int ch = 0; ch < c; ch++)
            for (int64_t p = p0; p < p1; p++) X[p * D + off + ch] = src[ch * n + p];
    }
}

// One tap into its columns of X (n = gh * gw rows of D).
static int fuse_tap(const nn_ctx *ctx, const tensor *f, int l2, float *X, int gh, int gw, int D, int off, err *e) {
    const int c = (int)f->shape[1], h = (int)f->shape[2], w = (int)f->shape[3];
    const int64_t hw = (int64_t)h * w, n = (int64_t)gh * gw;
    int rc = l2 ? OODSEG_OK : tap_finite(f, e);   // (with l2, the norms find a non-finite value)
    if (rc) return rc;
    const float *src = f->data;
    float *tmp = NULL, *tmp2 = NULL;
    if (l2) {   // on the tap's own grid
        if (!(tmp = err_malloc(e, sizeof(float) * c * hw, "feature normalisation"))) return OODSEG_E_NOMEM;
        if (!l2_pixels(ctx, src, c, hw, tmp)) {
            free(tmp);
            rc = tap_finite(f, e);
            return rc ? rc : err_set(e, OODSEG_E_INTERNAL, "feature tap '%s': a non-finite L2 norm", f->name);
        }
        src = tmp;
    }
    if (h != gh || w != gw) {
        if (!(tmp2 = err_malloc(e, sizeof(float) * c * n, "feature resize"))) { free(tmp); return OODSEG_E_NOMEM; }
        resample(ctx, src, c, h, w, tmp2, gh, gw);
        src = tmp2;
    }
    to_rows(ctx, src, c, n, X, D, off);
    free(tmp);
    free(tmp2);
    return OODSEG_OK;
}

int ood_fuse_features(const nn_ctx *ctx, const ood_input *in, const ood_options *o, float **Xout,
                      int *gh_out, int *gw_out, int *dim_out, int *stride_out, err *e) {
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
    if (!X) return OODSEG_E_NOMEM;
    for (int t = 0, off = 0; t < in->num_feats; off += (int)in->feats[t]->shape[1], t++) {
        int rc = fuse_tap(ctx, in->feats[t], o->l2norm == 1, X, gh, gw, D, off, e);
        if (rc) { free(X); return rc; }
    }
    if (o->l2norm == 2) l2rows(ctx, X, n, D, D);
    *Xout = X;
    *gh_out = gh;
    *gw_out = gw;
    *dim_out = D;
    *stride_out = fs;
    return OODSEG_OK;
}

// ---- percentiles -------------------------------------------------------------------------------
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

int ood_percentile(const float *v, int64_t n, double pct, double *out, err *e) {
    float *a = err_malloc(e, sizeof(float) * n, "percentile");
    if (!a) return OODSEG_E_NOMEM;
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
