// Exact pixel-level metrics: the FPR95 conventions, the accumulator and its computation (see metrics.h).
#include "metrics.h"
#include "radix.h"
#include "sweep.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

// ---- names -----------------------------------------------------------------------------------
static const char *conv_names[FPR_NUM_CONV] = {"first-ge", "nearest", "first-gt"};

const char *fpr_conv_name(fpr_conv c) { return (unsigned)c < FPR_NUM_CONV ? conv_names[c] : "?"; }

const char *fpr_conv_describe(fpr_conv c) {
    switch (c) {
    case FPR_FIRST_GE: return "FPR at the first ROC point (sklearn roc_curve, descending threshold) with TPR >= 0.95 (SMIYC)";
    case FPR_NEAREST: return "FPR at the ROC point (sklearn roc_curve) whose TPR is nearest to 0.95 (DOoD / ADE-OoD)";
    case FPR_FIRST_GT: return "FPR at the first ROC point (sklearn roc_curve) with TPR > 0.95 (RbA)";
    default: return "?";
    }
}

int fpr_conv_parse(const char *s, fpr_conv *c, err *e) {
    for (int i = 0; i < FPR_NUM_CONV; i++)
        if (s && strcmp(s, conv_names[i]) == 0) { *c = (fpr_conv)i; return OODSEG_OK; }
    return err_set(e, OODSEG_E_ARG, "unknown FPR95 convention '%s': use first-ge (default), nearest or first-gt",
                   s ? s : "(null)");
}

void metrics_result_free(metrics_result *r) {
    if (!r) return;
    free(r->curve.recall); free(r->curve.precision); free(r->curve.fpr); free(r->curve.tpr);
    memset(&r->curve, 0, sizeof r->curve);
}

// ---- the accumulator -------------------------------------------------------------------------
struct macc {
    uint32_t *key[2];      // [0] negatives, [1] positives
    int64_t n[2], cap[2];
    int sorted[2];
};

int macc_new(macc **out, err *e) {
    *out = err_calloc(e, 1, sizeof(macc), "metrics accumulator");
    return *out ? OODSEG_OK : e->code;
}

void macc_free(macc *a) {
    if (!a) return;
    free(a->key[0]); free(a->key[1]); free(a);
}

int64_t macc_count(const macc *a, int64_t *n_pos, int64_t *n_neg) {
    if (n_pos) *n_pos = a->n[1];
    if (n_neg) *n_neg = a->n[0];
    return a->n[0] + a->n[1];
}

static int reserve(macc *a, int c, int64_t extra, err *e) {
    if (a->n[c] + extra <= a->cap[c]) return OODSEG_OK;
    int64_t cap = a->cap[c] ? a->cap[c] : 1 << 16;
    while (cap < a->n[c] + extra) cap += cap / 2;
    // Large blocks are mmapped by glibc, so realloc grows them with mremap, without a copy.
    uint32_t *p = realloc(a->key[c], (size_t)cap * sizeof(uint32_t));
    if (!p) return err_set(e, OODSEG_E_NOMEM, "metrics: out of memory growing the score store to %lld values (%.1f GB); "
                           "evaluate in shards (--shard i/n, then metrics --merge)", (long long)cap, cap * 4e-9);
    a->key[c] = p;
    a->cap[c] = cap;
    return OODSEG_OK;
}

int macc_add(macc *a, const float *scores, const uint8_t *labels, int64_t n, err *e) {
    // Blocks small enough to stay in cache: count (and validate), reserve exactly, then copy.
    enum { BLK = 1 << 15 };
    for (int64_t b = 0; b < n; b += BLK) {
        int64_t end = b + BLK < n ? b + BLK : n, cnt[2] = {0, 0};
        for (int64_t i = b; i < end; i++) {
            uint8_t l = labels[i];
            if (l == 255) continue;
            if (l > 1) return err_set(e, OODSEG_E_DATA, "metrics: label value %u at pixel %lld; expected 0 (ID), 1 (OoD) or 255 (ignore)",
                                      l, (long long)i);
            if (scores[i] != scores[i]) return err_set(e, OODSEG_E_DATA, "metrics: score is NaN at pixel %lld; fix the score map", (long long)i);
            cnt[l]++;
        }
        for (int c = 0; c < 2; c++) if (reserve(a, c, cnt[c], e)) return e->code;
        uint32_t *d[2] = {a->key[0] + a->n[0], a->key[1] + a->n[1]};
        for (int64_t i = b; i < end; i++) {
            uint8_t l = labels[i];
            if (l != 255) *d[l]++ = score_to_key(scores[i]);
        }
        for (int c = 0; c < 2; c++) { a->n[c] += cnt[c]; if (cnt[c]) a->sorted[c] = 0; }
    }
    return OODSEG_OK;
}

static void acc_sort(macc *a) {
    for (int c = 0; c < 2; c++)
        if (!a->sorted[c]) { key_sort(a->key[c], (size_t)a->n[c]); a->sorted[c] = 1; }
}

void macc_iter_begin(macc *a, macc_iter *it) {
    acc_sort(a);
    it->a = a; it->i[0] = a->n[0]; it->i[1] = a->n[1];
}

// The keys sort ascending, so the runs are read from the end.
int macc_iter_next(macc_iter *it, uint32_t *key, uint64_t *np, uint64_t *nn) {
    int64_t i0 = it->i[0], i1 = it->i[1];
    if (i0 == 0 && i1 == 0) return 0;
    const uint32_t *k0 = it->a->key[0], *k1 = it->a->key[1];
    uint32_t k = 0;
    if (i0 > 0) k = k0[i0 - 1];
    if (i1 > 0 && (i0 == 0 || k1[i1 - 1] > k)) k = k1[i1 - 1];
    int64_t j0 = i0, j1 = i1;
    while (j0 > 0 && k0[j0 - 1] == k) j0--;
    while (j1 > 0 && k1[j1 - 1] == k) j1--;
    *key = k; *np = (uint64_t)(i1 - j1); *nn = (uint64_t)(i0 - j0);
    it->i[0] = j0; it->i[1] = j1;
    return 1;
}

int macc_compute(macc *a, fpr_conv conv, int want_curve, metrics_result *r, err *e) {
    if ((unsigned)conv >= FPR_NUM_CONV) return err_set(e, OODSEG_E_ARG, "metrics: bad FPR95 convention %d", (int)conv);
    macc_iter it;
    macc_iter_begin(a, &it);
    sweep s;
    sw_init(&s, (uint64_t)a->n[1], (uint64_t)a->n[0], want_curve && a->n[0] && a->n[1]);
    if (a->n[0] && a->n[1]) {
        uint32_t k; uint64_t np, nn;
        while (macc_iter_next(&it, &k, &np, &nn)) sw_push(&s, k, np, nn);
    }
    if (s.nomem) { sw_discard(&s); return err_set(e, OODSEG_E_NOMEM, "metrics: out of memory for the curve"); }
    sw_finish(&s, conv, r);
    if (!r->defined) {   // still count the distinct scores, for the reports
        uint32_t k; uint64_t np, nn;
        macc_iter_begin(a, &it);
        while (macc_iter_next(&it, &k, &np, &nn)) r->n_distinct++;
    }
    return OODSEG_OK;
}

int metrics_compute(const float *scores, const uint8_t *labels, int64_t n, fpr_conv conv,
                    int want_curve, metrics_result *r, err *e) {
    macc *a;
    if (macc_new(&a, e)) return e->code;
    int rc = macc_add(a, scores, labels, n, e);
    if (!rc) rc = macc_compute(a, conv, want_curve, r, e);
    macc_free(a);
    return rc;
}
