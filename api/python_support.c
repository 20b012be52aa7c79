// What a binding (the Python package, python/oodseg/) needs beyond the core API, kept general so
// that C callers can use it too: the exact full ROC curve (every distinct score, or sklearn's
// drop_intermediate points) over float32 or float64 scores, and the exact merge of evaluator states.
#include "api.h"
#include "../eval/metrics.h"
#include "../eval/radix.h"
#include "../eval/evaluator.h"
#include <stdlib.h>
#include <string.h>

// ---- the curve: points pushed highest score first, sklearn's drop rule applied on the way ------
typedef struct curve_builder {
    oodseg_curve *c;
    int64_t cap;
    int drop;
    double tp, fp;            // running counts
    double win[2][3];         // the last two points not yet decided on: (thr, tp, fp)
    int nwin, nomem;
} curve_builder;

static void cb_emit(curve_builder *b, const double *p) {
    oodseg_curve *c = b->c;
    if (c->n == b->cap) {
        int64_t cap = b->cap ? b->cap * 2 : 4096;
        double *t = realloc(c->threshold, (size_t)cap * sizeof(double));
        if (t) c->threshold = t;
        double *tp = realloc(c->tp, (size_t)cap * sizeof(double));
        if (tp) c->tp = tp;
        double *fp = realloc(c->fp, (size_t)cap * sizeof(double));
        if (fp) c->fp = fp;
        if (!t || !tp || !fp) { b->nomem = 1; return; }
        b->cap = cap;
    }
    c->threshold[c->n] = p[0]; c->tp[c->n] = p[1]; c->fp[c->n] = p[2];
    c->n++;
}

// sklearn's roc_curve(drop_intermediate=True) keeps the first and last points and every point
// where the curve bends: a nonzero second difference of fps or of tps, on the undropped points.
static void cb_push(curve_builder *b, double thr, uint64_t dp, uint64_t dn) {
    b->tp += (double)dp; b->fp += (double)dn;
    double p[3] = {thr, b->tp, b->fp};
    if (!b->drop) { cb_emit(b, p); return; }
    if (b->nwin == 0) { cb_emit(b, p); memcpy(b->win[0], p, sizeof p); b->nwin = 1; return; }
    if (b->nwin == 2) {   // decide on win[1], between win[0] and p
        const double *a = b->win[0], *m = b->win[1];
        if (a[2] - 2 * m[2] + p[2] != 0 || a[1] - 2 * m[1] + p[1] != 0) cb_emit(b, m);
        memcpy(b->win[0], b->win[1], sizeof p);
    }
    memcpy(b->win[1], p, sizeof p);
    b->nwin = 2;
}

static void cb_finish(curve_builder *b) {
    if (b->drop && b->nwin == 2) cb_emit(b, b->win[1]);
}

// ---- float64 scores: an LSD radix sort of their order-preserving 64-bit keys (eval/radix.h) ---
static int dkey_sort(uint64_t *a, int64_t n, err *e) {
    if (n < 2) return OODSEG_OK;
    uint64_t *tmp = err_malloc(e, (size_t)n * sizeof *tmp, "the sort buffer of the float64 scores");
    size_t *cnt = tmp ? err_malloc(e, 65536 * sizeof *cnt, "the sort histogram") : NULL;
    if (!cnt) { free(tmp); return e->code; }
    uint64_t *src = a, *dst = tmp;
    for (int shift = 0; shift < 64; shift += 16) {
        memset(cnt, 0, 65536 * sizeof *cnt);
        for (int64_t i = 0; i < n; i++) cnt[(src[i] >> shift) & 0xffff]++;
        if (cnt[(src[0] >> shift) & 0xffff] == (size_t)n) continue;
        size_t sum = 0;
        for (int d = 0; d < 65536; d++) { size_t c = cnt[d]; cnt[d] = sum; sum += c; }
        for (int64_t i = 0; i < n; i++) dst[cnt[(src[i] >> shift) & 0xffff]++] = src[i];
        uint64_t *t = src; src = dst; dst = t;
    }
    if (src != a) memcpy(a, src, (size_t)n * sizeof *a);
    free(cnt); free(tmp);
    return OODSEG_OK;
}

static int curve_f64(const double *s, const uint8_t *labels, int64_t n, int ood, int ignore,
                     curve_builder *b, err *e) {
    int64_t cnt[2] = {0, 0};
    for (int64_t i = 0; i < n; i++) {
        if (labels[i] == ignore) continue;
        if (s[i] != s[i]) return err_set(e, OODSEG_E_DATA, "curve: score is NaN at pixel %lld; fix the scores", (long long)i);
        cnt[labels[i] == ood]++;
    }
    uint64_t *k[2];
    k[0] = err_malloc(e, (size_t)(cnt[0] + 1) * 8, "the in-distribution score keys");
    k[1] = k[0] ? err_malloc(e, (size_t)(cnt[1] + 1) * 8, "the OoD score keys") : NULL;
    if (!k[1]) { free(k[0]); return e->code; }
    int64_t j[2] = {0, 0};
    for (int64_t i = 0; i < n; i++)
        if (labels[i] != ignore) { int c = labels[i] == ood; k[c][j[c]++] = score64_to_key(s[i]); }
    int rc = dkey_sort(k[0], cnt[0], e);
    if (!rc) rc = dkey_sort(k[1], cnt[1], e);
    // the runs of equal keys, highest first, from the ends of the two sorted arrays
    int64_t i0 = cnt[0], i1 = cnt[1];
    while (!rc && (i0 > 0 || i1 > 0)) {
        uint64_t key = i0 > 0 ? k[0][i0 - 1] : 0;
        if (i1 > 0 && (i0 == 0 || k[1][i1 - 1] > key)) key = k[1][i1 - 1];
        int64_t j0 = i0, j1 = i1;
        while (j0 > 0 && k[0][j0 - 1] == key) j0--;
        while (j1 > 0 && k[1][j1 - 1] == key) j1--;
        cb_push(b, key_to_score64(key), (uint64_t)(i1 - j1), (uint64_t)(i0 - j0));
        i0 = j0; i1 = j1;
    }
    b->c->n_pos = cnt[1]; b->c->n_neg = cnt[0];
    free(k[0]); free(k[1]);
    return rc;
}

// float32 scores go through the metrics accumulator (the parallel radix sort of eval/radix.c).
static int curve_f32(const float *s, const uint8_t *labels, int64_t n, int ood, int ignore,
                     curve_builder *b, err *e) {
    enum { BLK = 1 << 16 };
    uint8_t mapped[BLK];
    macc *a;
    if (macc_new(&a, e)) return e->code;
    int rc = OODSEG_OK;
    for (int64_t o = 0; o < n && !rc; o += BLK) {
        int64_t m = n - o < BLK ? n - o : BLK;
        for (int64_t i = 0; i < m; i++)
            mapped[i] = labels[o + i] == ignore ? 255 : labels[o + i] == ood;
        if ((rc = macc_add(a, s + o, mapped, m, e)) && e->code == OODSEG_E_DATA)
            err_prefix(e, "(block at pixel %lld) ", (long long)o);
    }
    if (!rc) {
        macc_iter it;
        uint32_t key; uint64_t dp, dn;
        macc_iter_begin(a, &it);
        while (macc_iter_next(&it, &key, &dp, &dn)) cb_push(b, (double)key_to_score(key), dp, dn);
        macc_count(a, &b->c->n_pos, &b->c->n_neg);
    }
    macc_free(a);
    return rc;
}

int oodseg_curve_compute(const void *scores, int dtype, const uint8_t *labels, int64_t n,
                         int ood_value, int ignore_value, int drop_intermediate, oodseg_curve *out,
                         oodseg_status *st) {
    err e = {0};
    if (!scores || !labels || !out || n < 0 || (dtype != OODSEG_FLOAT32 && dtype != OODSEG_FLOAT64) ||
        ood_value < 0 || ood_value > 255 || ignore_value < -1 || ignore_value > 255 || ood_value == ignore_value) {
        err_set(&e, OODSEG_E_ARG, "oodseg_curve_compute: bad arguments (scores, labels and out must be set, n >= 0, "
                "dtype OODSEG_FLOAT32 or OODSEG_FLOAT64 (got %d), ood_value %d in 0..255 and ignore_value %d in -1..255, "
                "distinct)", dtype, ood_value, ignore_value);
        return api_status(&e, st);
    }
    memset(out, 0, sizeof *out);
    curve_builder b = {.c = out, .drop = drop_intermediate != 0};
    int rc = dtype == OODSEG_FLOAT32 ? curve_f32(scores, labels, n, ood_value, ignore_value, &b, &e)
                                     : curve_f64(scores, labels, n, ood_value, ignore_value, &b, &e);
    if (!rc) cb_finish(&b);
    if (!rc && b.nomem) err_set(&e, OODSEG_E_NOMEM, "oodseg_curve_compute: out of memory for %lld curve points", (long long)out->n);
    if (e.code) oodseg_curve_release(out);
    return api_status(&e, st);
}

void oodseg_curve_release(oodseg_curve *c) {
    if (!c) return;
    free(c->threshold); free(c->tp); free(c->fp);
    memset(c, 0, sizeof *c);
}

// ---- evaluator states and names ---------------------------------------------------------------
int oodseg_evaluator_merge(const char *const *paths, int n_paths, const char *fpr_convention,
                           const char *save_path, oodseg_evaluator **out, oodseg_status *st) {
    err e = {0};
    fpr_conv conv = FPR_FIRST_GE;
    if (!paths || !out || n_paths < 1) {
        err_set(&e, OODSEG_E_ARG, "oodseg_evaluator_merge: give one or more state files (got %d) and out", n_paths);
        return api_status(&e, st);
    }
    *out = NULL;
    for (int i = 0; i < n_paths; i++)
        if (!paths[i]) { err_set(&e, OODSEG_E_ARG, "oodseg_evaluator_merge: state path %d is NULL", i); return api_status(&e, st); }
    if (fpr_convention && fpr_conv_parse(fpr_convention, &conv, &e)) return api_status(&e, st);
    evaluator *ev;
    if (evaluator_merge(&ev, paths, n_paths, conv, save_path, &e)) return api_status(&e, st);
    const eval_info *info = evaluator_info(ev);
    if (api_evaluator_wrap(ev, info && info->layout ? info->layout : "merged", out, &e)) evaluator_free(ev);
    return api_status(&e, st);
}

int oodseg_evaluator_method_count(const oodseg_evaluator *x) {
    const evaluator *ev = api_evaluator_core(x);
    return ev ? evaluator_n_methods(ev) : 0;
}

const char *oodseg_evaluator_method(const oodseg_evaluator *x, int m) {
    const evaluator *ev = api_evaluator_core(x);
    return ev && m >= 0 && m < evaluator_n_methods(ev) ? evaluator_method(ev, m) : NULL;
}

int oodseg_evaluator_image_count(const oodseg_evaluator *x) {
    const evaluator *ev = api_evaluator_core(x);
    if (!ev) return 0;
    const eval_info *info = evaluator_info(ev);
    return info ? info->n_images : evaluator_n_images(ev);
}
