// Exact pixel-level metrics, shard states and SMIYC component metrics (see metrics.h).
#include "../core/outfile.h"
#include "metrics.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

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

// ---- keys: float32 <-> order-preserving uint32 ------------------------------------------------
static inline uint32_t f2key(float f) {
    uint32_t u;
    if (f == 0.0f) f = 0.0f;   // -0.0 ties with 0.0, as in sklearn
    memcpy(&u, &f, 4);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
static inline float key2f(uint32_t k) {
    uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// ---- sorting the keys: in place, O(n) -------------------------------------------------------
// One in-place American-flag pass splits by an 11-bit digit just below the bits all keys share
// (the scores of a method span a narrow range of exponents, so a fixed top byte would barely split
// them); each bucket is then LSD-radix sorted through a per-thread scratch of at most LSD_MAX
// keys, so memory stays one copy of the scores plus a few MB. Larger buckets (many ties, or a
// skewed distribution) are split again in place.
#define LSD_MAX ((size_t)1 << 18)

static void isort(uint32_t *a, size_t n) {
    for (size_t i = 1; i < n; i++) {
        uint32_t v = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1] > v) { a[j] = a[j - 1]; j--; }
        a[j] = v;
    }
}

// LSD radix sort of a[0..n) on its low `bits` bits (the keys agree above), through tmp[n].
static void lsd_sort(uint32_t *a, uint32_t *tmp, size_t n, int bits) {
    int passes = (bits + 10) / 11, w = passes ? (bits + passes - 1) / passes : 0;
    uint32_t *src = a, *dst = tmp, mask = (1u << w) - 1;
    size_t cnt[2048];
    for (int p = 0; p < passes; p++) {
        int sh = p * w;
        memset(cnt, 0, ((size_t)mask + 1) * sizeof *cnt);
        for (size_t i = 0; i < n; i++) cnt[(src[i] >> sh) & mask]++;
        if (cnt[(src[0] >> sh) & mask] == n) continue;   // one bucket: nothing to do
        size_t o = 0;
        for (uint32_t b = 0; b <= mask; b++) { size_t c = cnt[b]; cnt[b] = o; o += c; }
        for (size_t i = 0; i < n; i++) dst[cnt[(src[i] >> sh) & mask]++] = src[i];
        uint32_t *t = src; src = dst; dst = t;
    }
    if (src != a) memcpy(a, src, n * sizeof *a);
}

static void big_sort(uint32_t *a, size_t n, int bits, uint32_t *tmp);

static void bucket_sort(uint32_t *a, size_t n, int bits, uint32_t *tmp) {
    if (n <= 32) isort(a, n);
    else if (n <= LSD_MAX) lsd_sort(a, tmp, n, bits);
    else big_sort(a, n, bits, tmp);
}

// In-place split by the 11-bit digit below `bits`, then each bucket sorted. tmp: NULL at the top
// level (then buckets are sorted in parallel, each thread with its own scratch).
static void big_sort(uint32_t *a, size_t n, int bits, uint32_t *tmp) {
    enum { NB = 2048 };
    int shift = bits > 11 ? bits - 11 : 0;
    const uint32_t mask = NB - 1;
    size_t *cnt = calloc(NB, sizeof *cnt), *head = malloc(NB * sizeof *head), *tail = malloc(NB * sizeof *tail);
    if (!cnt || !head || !tail) {   // cannot fail in practice (48 KB); keep correct anyway
        free(cnt); free(head); free(tail);
        isort(a, n);
        return;
    }
    for (size_t i = 0; i < n; i++) cnt[(a[i] >> shift) & mask]++;
    size_t s = 0;
    for (int b = 0; b < NB; b++) { head[b] = s; s += cnt[b]; tail[b] = s; }
    // Each step swaps one key into the next free slot of its bucket. Unlike following one cycle,
    // consecutive steps are independent, so their cache misses overlap; every step settles one
    // key, and the keys swapped into a bucket's unsettled part are handled in the next round.
    for (int more = 1; more;) {
        more = 0;
        for (int b = 0; b < NB; b++) {
            size_t en = tail[b];
            for (size_t i = head[b]; i < en; i++) {
                uint32_t v = a[i];
                size_t o = head[(v >> shift) & mask]++;
                a[i] = a[o];
                a[o] = v;
            }
            if (head[b] < tail[b]) more = 1;
        }
    }
    if (shift > 0) {
        if (tmp) {
            for (int b = 0; b < NB; b++) bucket_sort(a + tail[b] - cnt[b], cnt[b], shift, tmp);
        } else {
            #pragma omp parallel
            {
                uint32_t *t = malloc(LSD_MAX * sizeof *t);
                #pragma omp for schedule(dynamic, 8)
                for (int b = 0; b < NB; b++) {
                    uint32_t *p = a + tail[b] - cnt[b];
                    if (t) bucket_sort(p, cnt[b], shift, t);
                    else if (cnt[b] > 32) big_sort(p, cnt[b], shift, NULL);   // no scratch: in place all the way
                    else isort(p, cnt[b]);
                }
                free(t);
            }
        }
    }
    free(cnt); free(head); free(tail);
}

static void key_sort(uint32_t *a, size_t n) {
    if (n < 2) return;
    uint32_t lo = UINT32_MAX, hi = 0;
    #pragma omp parallel for reduction(min:lo) reduction(max:hi) if (n > ((size_t)1 << 20))
    for (size_t i = 0; i < n; i++) { if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i]; }
    if (lo == hi) return;
    int bits = 32 - __builtin_clz(lo ^ hi);   // the low bits that differ somewhere
    if (n <= LSD_MAX) {
        uint32_t *t = malloc(n * sizeof *t);
        if (t) { lsd_sort(a, t, n, bits); free(t); return; }
    }
    big_sort(a, n, bits, NULL);
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
            if (l != 255) *d[l]++ = f2key(scores[i]);
        }
        for (int c = 0; c < 2; c++) { a->n[c] += cnt[c]; if (cnt[c]) a->sorted[c] = 0; }
    }
    return OODSEG_OK;
}

static void acc_sort(macc *a) {
    for (int c = 0; c < 2; c++)
        if (!a->sorted[c]) { key_sort(a->key[c], (size_t)a->n[c]); a->sorted[c] = 1; }
}

// Runs (distinct key, n_pos, n_neg) of a sorted accumulator, descending.
typedef struct acc_iter { const macc *a; int64_t i[2]; } acc_iter;

static int acc_next(acc_iter *it, uint32_t *key, uint64_t *np, uint64_t *nn) {
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

// ---- the sweep over distinct thresholds, descending -------------------------------------------
typedef struct sweep {
    uint64_t P, N, tp, fp, m;   // m: distinct thresholds seen
    double ap, ap_c, rprev;     // Neumaier-compensated AP sum
    unsigned __int128 auc2;     // exact sum of dfp * (tp_i + tp_{i-1})
    // the last two points, for sklearn's drop_intermediate rule
    uint64_t ptp[2], pfp[2];
    double pthr[2];
    int npend;
    int found[FPR_NUM_CONV];
    double fpr[FPR_NUM_CONV], thr[FPR_NUM_CONV], tpr[FPR_NUM_CONV], near_d;
    double best_f1, best_f1_thr;
    int want_curve, ccap, roc_done;
    uint64_t ctp, cfp, cstep_p, cstep_n;   // curve decimation: the last point kept, the steps
    double cprec;
    metrics_curve cv;
    int nomem;
} sweep;

static void sw_init(sweep *s, uint64_t P, uint64_t N, int want_curve) {
    memset(s, 0, sizeof *s);
    s->P = P; s->N = N; s->want_curve = want_curve;
    s->best_f1 = -1;
    s->cstep_p = P / 500 ? P / 500 : 1;
    s->cstep_n = N / 500 ? N / 500 : 1;
    // sklearn prepends (0, 0) with threshold max+1; it is the nearest-to-0.95 point until beaten.
    s->near_d = 0.95; s->fpr[FPR_NEAREST] = 0; s->thr[FPR_NEAREST] = INFINITY; s->tpr[FPR_NEAREST] = 0;
}

static void kahan(double *sum, double *c, double v) {
    double t = *sum + v;
    if (fabs(*sum) >= fabs(v)) *c += (*sum - t) + v; else *c += (v - t) + *sum;
    *sum = t;
}

// A point that sklearn's roc_curve keeps.
static void sw_roc_point(sweep *s, uint64_t tp, uint64_t fp, double thr) {
    if (s->roc_done) return;
    double tpr = (double)tp / (double)s->P, fpr = (double)fp / (double)s->N;
    if (!s->found[FPR_FIRST_GE] && tpr >= 0.95) {
        s->found[FPR_FIRST_GE] = 1; s->fpr[FPR_FIRST_GE] = fpr; s->thr[FPR_FIRST_GE] = thr; s->tpr[FPR_FIRST_GE] = tpr;
    }
    if (!s->found[FPR_FIRST_GT] && tpr > 0.95) {
        s->found[FPR_FIRST_GT] = 1; s->fpr[FPR_FIRST_GT] = fpr; s->thr[FPR_FIRST_GT] = thr; s->tpr[FPR_FIRST_GT] = tpr;
    }
    double d = fabs(tpr - 0.95);
    if (d < s->near_d) { s->near_d = d; s->fpr[FPR_NEAREST] = fpr; s->thr[FPR_NEAREST] = thr; s->tpr[FPR_NEAREST] = tpr; }
    // TPR never decreases: past 0.95 with both "first" points found, no later point can change
    // any convention's answer.
    if (s->found[FPR_FIRST_GE] && s->found[FPR_FIRST_GT] && tpr > 0.95) s->roc_done = 1;
}

static void curve_add(sweep *s, double rec, double prec, double fpr, double tpr) {
    metrics_curve *c = &s->cv;
    if (c->n == s->ccap) {
        int cap = s->ccap ? s->ccap * 2 : 1024;
        float *p[4] = {realloc(c->recall, cap * sizeof(float)), NULL, NULL, NULL};
        if (p[0]) c->recall = p[0];
        p[1] = realloc(c->precision, cap * sizeof(float)); if (p[1]) c->precision = p[1];
        p[2] = realloc(c->fpr, cap * sizeof(float)); if (p[2]) c->fpr = p[2];
        p[3] = realloc(c->tpr, cap * sizeof(float)); if (p[3]) c->tpr = p[3];
        if (!p[0] || !p[1] || !p[2] || !p[3]) { s->nomem = 1; s->want_curve = 0; return; }
        s->ccap = cap;
    }
    c->recall[c->n] = (float)rec; c->precision[c->n] = (float)prec;
    c->fpr[c->n] = (float)fpr; c->tpr[c->n] = (float)tpr;
    c->n++;
}

// Most distinct scores hold negatives only (OoD pixels are few): then TP is unchanged, so the AP
// term is 0 and F1 cannot rise; only the AUROC sum, the curve and the FPR95 search need them.
static void sw_push(sweep *s, uint32_t key, uint64_t dp, uint64_t dn) {
    uint64_t tp0 = s->tp;
    s->tp += dp; s->fp += dn;
    s->auc2 += (unsigned __int128)dn * (unsigned __int128)(tp0 + s->tp);
    double prec = 0;
    if (dp) {
        double r = (double)s->tp / (double)s->P;
        prec = (double)s->tp / (double)(s->tp + s->fp);
        kahan(&s->ap, &s->ap_c, (r - s->rprev) * prec);
        s->rprev = r;
        double f1 = 2.0 * (double)s->tp / (double)(2 * s->tp + s->fp + (s->P - s->tp));
        if (f1 > s->best_f1) { s->best_f1 = f1; s->best_f1_thr = key2f(key); }
    }
    if (s->want_curve) {
        if (s->m == 0) {
            prec = (double)s->tp / (double)(s->tp + s->fp);
            curve_add(s, 0, prec, 0, 0);
            s->cprec = prec;
        }
        if (s->tp - s->ctp >= s->cstep_p || s->fp - s->cfp >= s->cstep_n || (dp && fabs(prec - s->cprec) >= 5e-3)) {
            if (!dp) prec = (double)s->tp / (double)(s->tp + s->fp);
            double r = (double)s->tp / (double)s->P;
            curve_add(s, r, prec, (double)s->fp / (double)s->N, r);
            s->ctp = s->tp; s->cfp = s->fp; s->cprec = prec;
        }
    }
    if (!s->roc_done) {
        double thr = key2f(key);
        // drop_intermediate: point m-1 is kept unless both second differences vanish around it.
        if (s->npend == 2) {
            int64_t d2f = (int64_t)(s->fp - 2 * s->pfp[1] + s->pfp[0]);
            int64_t d2t = (int64_t)(s->tp - 2 * s->ptp[1] + s->ptp[0]);
            if (d2f != 0 || d2t != 0) sw_roc_point(s, s->ptp[1], s->pfp[1], s->pthr[1]);
            s->ptp[0] = s->ptp[1]; s->pfp[0] = s->pfp[1]; s->pthr[0] = s->pthr[1];
            s->ptp[1] = s->tp; s->pfp[1] = s->fp; s->pthr[1] = thr;
        } else {
            if (s->npend == 0) sw_roc_point(s, s->tp, s->fp, thr);   // the first point is always kept
            s->ptp[s->npend] = s->tp; s->pfp[s->npend] = s->fp; s->pthr[s->npend] = thr;
            s->npend++;
        }
    }
    s->m++;
}

static void sw_finish(sweep *s, fpr_conv conv, metrics_result *r) {
    memset(r, 0, sizeof *r);
    r->n_pos = (int64_t)s->P; r->n_neg = (int64_t)s->N; r->n_distinct = (int64_t)s->m;
    r->conv = conv;
    r->defined = s->P > 0 && s->N > 0;
    if (!r->defined) {
        r->ap = r->auroc = r->fpr95 = r->fpr95_thr = r->best_f1 = r->best_f1_thr = NAN;
        for (int c = 0; c < FPR_NUM_CONV; c++) r->fpr95_all[c] = r->fpr95_thr_all[c] = r->fpr95_tpr_all[c] = NAN;
        metrics_result_free(&(metrics_result){.curve = s->cv});
        return;
    }
    if (s->npend == 2) sw_roc_point(s, s->ptp[1], s->pfp[1], s->pthr[1]);   // the last point is kept
    if (s->want_curve && (s->ctp != s->tp || s->cfp != s->fp))
        curve_add(s, 1.0, (double)s->tp / (double)(s->tp + s->fp), 1.0, 1.0);
    r->ap = s->ap + s->ap_c;
    r->auroc = (double)s->auc2 / (2.0 * (double)s->P * (double)s->N);
    for (int c = 0; c < FPR_NUM_CONV; c++) {
        r->fpr95_all[c] = s->fpr[c]; r->fpr95_thr_all[c] = s->thr[c]; r->fpr95_tpr_all[c] = s->tpr[c];
    }
    r->fpr95 = r->fpr95_all[conv]; r->fpr95_thr = r->fpr95_thr_all[conv];
    r->best_f1 = s->best_f1; r->best_f1_thr = s->best_f1_thr;
    r->curve = s->cv;
}

int macc_compute(macc *a, fpr_conv conv, int want_curve, metrics_result *r, err *e) {
    if ((unsigned)conv >= FPR_NUM_CONV) return err_set(e, OODSEG_E_ARG, "metrics: bad FPR95 convention %d", (int)conv);
    acc_sort(a);
    sweep s;
    sw_init(&s, (uint64_t)a->n[1], (uint64_t)a->n[0], want_curve && a->n[0] && a->n[1]);
    if (a->n[0] && a->n[1]) {
        acc_iter it = {a, {a->n[0], a->n[1]}};
        uint32_t k; uint64_t np, nn;
        while (acc_next(&it, &k, &np, &nn)) sw_push(&s, k, np, nn);
    }
    if (s.nomem) { metrics_result_free(&(metrics_result){.curve = s.cv}); return err_set(e, OODSEG_E_NOMEM, "metrics: out of memory for the curve"); }
    sw_finish(&s, conv, r);
    if (!r->defined) {   // still count the distinct scores, for the reports
        acc_iter it = {a, {a->n[0], a->n[1]}};
        uint32_t k; uint64_t np, nn;
        while (acc_next(&it, &k, &np, &nn)) r->n_distinct++;
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

// ---- shard states ----------------------------------------------------------------------------
#define MSTATE_MAGIC "OODSEGMS"
#define MSTATE_VERSION 2u
#define MSTATE_END 0x444E4553u   // "SEND" closes each section

typedef struct wbuf { FILE *f; int bad; uint64_t prev; } wbuf;   // prev: last key + 1 of the section
static void w_bytes(wbuf *w, const void *p, size_t n) { if (!w->bad && fwrite(p, 1, n, w->f) != n) w->bad = 1; }
static void w_u32(wbuf *w, uint32_t v) { uint8_t b[4] = {v, v >> 8, v >> 16, v >> 24}; w_bytes(w, b, 4); }
static void w_u64(wbuf *w, uint64_t v) { w_u32(w, (uint32_t)v); w_u32(w, (uint32_t)(v >> 32)); }
static void w_leb(wbuf *w, uint64_t v) {
    uint8_t b[10]; int n = 0;
    do { b[n] = v & 127; v >>= 7; if (v) b[n] |= 128; n++; } while (v);
    w_bytes(w, b, n);
}
// A run: the distance of its key below the previous run's (keys are the order-preserving integers
// of the float32 scores, so neighbouring scores differ by little), then the two counts; mostly
// 3 to 5 bytes.
static void w_run(wbuf *w, uint32_t key, uint64_t np, uint64_t nn) {
    w_leb(w, w->prev - key);
    w->prev = key;
    w_leb(w, np); w_leb(w, nn);
}

typedef struct rbuf { FILE *f; const char *path; int eof; } rbuf;
static int r_bytes(rbuf *r, void *p, size_t n, err *e) {
    if (fread(p, 1, n, r->f) != n)
        return err_set(e, OODSEG_E_FORMAT, "%s: state file truncated; it was not written completely, so re-run that shard", r->path);
    return OODSEG_OK;
}
static int r_u32(rbuf *r, uint32_t *v, err *e) {
    uint8_t b[4];
    if (r_bytes(r, b, 4, e)) return e->code;
    *v = b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return OODSEG_OK;
}
static int r_u64(rbuf *r, uint64_t *v, err *e) {
    uint32_t lo, hi;
    if (r_u32(r, &lo, e) || r_u32(r, &hi, e)) return e->code;
    *v = lo | (uint64_t)hi << 32;
    return OODSEG_OK;
}
static int r_leb(rbuf *r, uint64_t *v, err *e) {
    uint64_t x = 0;
    for (int s = 0; s < 64; s += 7) {
        int c = getc_unlocked(r->f);
        if (c == EOF) return err_set(e, OODSEG_E_FORMAT, "%s: state file truncated inside a run; re-run that shard", r->path);
        x |= (uint64_t)(c & 127) << s;
        if (!(c & 128)) { *v = x; return OODSEG_OK; }
    }
    return err_set(e, OODSEG_E_FORMAT, "%s: corrupt count in the state file", r->path);
}

// Writes one section header + runs; n_runs is patched after the runs (the merge streams them).
static int write_section(wbuf *w, const char *name, uint64_t P, uint64_t N, long *runs_at) {
    char nm[MSTATE_NAME] = {0};
    snprintf(nm, sizeof nm, "%s", name);
    w_bytes(w, nm, sizeof nm);
    w_u64(w, P); w_u64(w, N);
    *runs_at = ftell(w->f);
    w_u64(w, 0);
    w->prev = (uint64_t)1 << 32;
    return w->bad;
}
static void patch_runs(wbuf *w, long at, uint64_t n_runs) {
    long here = ftell(w->f);
    if (fseek(w->f, at, SEEK_SET)) { w->bad = 1; return; }
    w_u64(w, n_runs);
    if (fseek(w->f, here, SEEK_SET)) w->bad = 1;
    w_u32(w, MSTATE_END);
}

static FILE *open_tmp(outfile *o, const char *path, err *e) {
    if (outfile_open(o, path, e)) return NULL;
    setvbuf(o->f, NULL, _IOFBF, 1 << 20);
    return o->f;
}
static int close_tmp(outfile *o, int bad, err *e) { return outfile_commit(o, !bad, e); }
static void w_header(wbuf *w, const char *meta, int n_sections) {
    size_t ml = meta ? strlen(meta) : 0;
    w_bytes(w, MSTATE_MAGIC, 8);
    w_u32(w, MSTATE_VERSION); w_u32(w, (uint32_t)n_sections); w_u32(w, (uint32_t)ml);
    if (ml) w_bytes(w, meta, ml);
}

int mstate_save(const char *path, const char *meta_json, int n_sections,
                const char *const *names, macc *const *accs, err *e) {
    if (n_sections < 1 || n_sections > MSTATE_MAX_SECTIONS)
        return err_set(e, OODSEG_E_ARG, "state: %d sections (1..%d allowed)", n_sections, MSTATE_MAX_SECTIONS);
    outfile of;
    FILE *f = open_tmp(&of, path, e);
    if (!f) return e->code;
    wbuf w = {f, 0, 0};
    w_header(&w, meta_json, n_sections);
    for (int s = 0; s < n_sections; s++) {
        macc *a = accs[s];
        acc_sort(a);
        long at;
        write_section(&w, names[s], (uint64_t)a->n[1], (uint64_t)a->n[0], &at);
        acc_iter it = {a, {a->n[0], a->n[1]}};
        uint32_t k; uint64_t np, nn, runs = 0;
        while (acc_next(&it, &k, &np, &nn)) { w_run(&w, k, np, nn); runs++; }
        patch_runs(&w, at, runs);
    }
    return close_tmp(&of, w.bad, e);
}

typedef struct src {
    rbuf r;
    uint64_t P, N, left, sum_p, sum_n, prev;
    uint32_t key; uint64_t np, nn;   // current run
    int has;
} src;

static int src_next(src *s, err *e) {
    if (s->left == 0) { s->has = 0; return OODSEG_OK; }
    uint64_t d;
    if (r_leb(&s->r, &d, e) || r_leb(&s->r, &s->np, e) || r_leb(&s->r, &s->nn, e)) return e->code;
    if (d == 0 || d > s->prev || (s->np == 0 && s->nn == 0))
        return err_set(e, OODSEG_E_FORMAT, "%s: a run out of order or empty; the state file is corrupt", s->r.path);
    s->prev -= d;
    uint32_t k = (uint32_t)s->prev;
    if (key2f(k) != key2f(k)) return err_set(e, OODSEG_E_FORMAT, "%s: NaN score in the state file; it is corrupt", s->r.path);
    s->key = k; s->has = 1; s->left--;
    s->sum_p += s->np; s->sum_n += s->nn;
    return OODSEG_OK;
}

static int read_header(src *s, int *n_sections, char *meta, size_t meta_cap, err *e) {
    char mg[8];
    uint32_t ver, ns, ml;
    if (r_bytes(&s->r, mg, 8, e)) return e->code;
    if (memcmp(mg, MSTATE_MAGIC, 8))
        return err_set(e, OODSEG_E_FORMAT, "%s: not an oodseg metrics state file (write one with --save-state)", s->r.path);
    if (r_u32(&s->r, &ver, e) || r_u32(&s->r, &ns, e) || r_u32(&s->r, &ml, e)) return e->code;
    if (ver != MSTATE_VERSION)
        return err_set(e, OODSEG_E_FORMAT, "%s: state version %u; this oodseg reads version %u", s->r.path, ver, MSTATE_VERSION);
    if (ns < 1 || ns > MSTATE_MAX_SECTIONS || ml > (1u << 20))
        return err_set(e, OODSEG_E_FORMAT, "%s: corrupt state header", s->r.path);
    char *m = malloc(ml + 1);
    if (!m) return err_set(e, OODSEG_E_NOMEM, "state: out of memory");
    int rc = r_bytes(&s->r, m, ml, e);
    m[ml] = 0;
    if (!rc && meta && meta_cap) snprintf(meta, meta_cap, "%s", m);
    free(m);
    *n_sections = (int)ns;
    return rc;
}

int mstate_read_meta(const char *path, char *meta, size_t meta_cap, err *e) {
    src s = {0};
    s.r.path = path;
    s.r.f = fopen(path, "rb");
    if (!s.r.f) return err_set(e, OODSEG_E_IO, "%s: cannot open state file (%s)", path, strerror(errno));
    int ns = 0, rc = read_header(&s, &ns, meta, meta_cap, e);
    fclose(s.r.f);
    return rc;
}

int mstate_merge(const char *const *paths, int n_paths, fpr_conv conv, int want_curve,
                 const char *save_path, int *n_sections, char names[][MSTATE_NAME],
                 metrics_result *results, char *meta, size_t meta_cap, err *e) {
    if (n_paths < 1) return err_set(e, OODSEG_E_ARG, "merge: no state files given");
    src *S = err_calloc(e, (size_t)n_paths, sizeof(src), "merge sources");
    if (!S) return e->code;
    int rc = OODSEG_OK, ns0 = 0, done = 0;
    FILE *wf = NULL;
    outfile of;
    wbuf w = {0};
    for (int i = 0; i < n_paths && !rc; i++) {
        S[i].r.path = paths[i];
        S[i].r.f = fopen(paths[i], "rb");
        if (!S[i].r.f) { rc = err_set(e, OODSEG_E_IO, "%s: cannot open state file (%s)", paths[i], strerror(errno)); break; }
        setvbuf(S[i].r.f, NULL, _IOFBF, n_paths > 16 ? 1 << 16 : 1 << 20);   // many shards: smaller buffers
        int ns = 0;
        rc = read_header(&S[i], &ns, i == 0 ? meta : NULL, meta_cap, e);
        if (!rc && i == 0) ns0 = ns;
        if (!rc && ns != ns0)
            rc = err_set(e, OODSEG_E_DATA, "%s: %d sections, but %s has %d; merge states of the same methods", paths[i], ns, paths[0], ns0);
    }
    if (!rc && save_path) {
        wf = open_tmp(&of, save_path, e);
        if (!wf) rc = e->code;
        else { w.f = wf; w_header(&w, meta, ns0); }
    }
    for (int sec = 0; sec < ns0 && !rc; sec++) {
        uint64_t P = 0, N = 0;
        for (int i = 0; i < n_paths && !rc; i++) {
            char nm[MSTATE_NAME];
            if ((rc = r_bytes(&S[i].r, nm, MSTATE_NAME, e))) break;
            nm[MSTATE_NAME - 1] = 0;
            if (i == 0) memcpy(names[sec], nm, MSTATE_NAME);
            else if (strcmp(nm, names[sec]))
                { rc = err_set(e, OODSEG_E_DATA, "%s: section %d is '%s' but %s has '%s'", paths[i], sec, nm, paths[0], names[sec]); break; }
            if ((rc = r_u64(&S[i].r, &S[i].P, e)) || (rc = r_u64(&S[i].r, &S[i].N, e)) || (rc = r_u64(&S[i].r, &S[i].left, e))) break;
            S[i].has = 0; S[i].sum_p = S[i].sum_n = 0; S[i].prev = (uint64_t)1 << 32;
            P += S[i].P; N += S[i].N;
            rc = src_next(&S[i], e);
        }
        if (rc) break;
        long at = 0;
        if (wf) write_section(&w, names[sec], P, N, &at);
        sweep sw;
        int ok = P > 0 && N > 0;
        sw_init(&sw, P, N, want_curve && ok);
        uint64_t runs = 0;
        // k-way merge by the largest current key; k (shards) is small, so a linear scan suffices.
        for (;;) {
            int best = -1;
            for (int i = 0; i < n_paths; i++)
                if (S[i].has && (best < 0 || S[i].key > S[best].key)) best = i;
            if (best < 0) break;
            uint32_t k = S[best].key;
            uint64_t np = 0, nn = 0;
            for (int i = 0; i < n_paths && !rc; i++)
                if (S[i].has && S[i].key == k) { np += S[i].np; nn += S[i].nn; rc = src_next(&S[i], e); }
            if (rc) break;
            if (ok) sw_push(&sw, k, np, nn);
            if (wf) w_run(&w, k, np, nn);
            runs++;
        }
        for (int i = 0; i < n_paths && !rc; i++) {
            uint32_t end;
            if ((rc = r_u32(&S[i].r, &end, e))) break;
            if (end != MSTATE_END || S[i].sum_p != S[i].P || S[i].sum_n != S[i].N)
                rc = err_set(e, OODSEG_E_FORMAT, "%s: section '%s' is corrupt (counts do not add up)", paths[i], names[sec]);
        }
        if (wf) patch_runs(&w, at, runs);
        if (rc || sw.nomem) {
            metrics_result_free(&(metrics_result){.curve = sw.cv});
            if (!rc) rc = err_set(e, OODSEG_E_NOMEM, "merge: out of memory for the curve");
            break;
        }
        sw_finish(&sw, conv, &results[sec]);
        results[sec].n_distinct = (int64_t)runs;
        done = sec + 1;
    }
    for (int i = 0; i < n_paths; i++) if (S[i].r.f) fclose(S[i].r.f);
    free(S);
    if (wf) {
        if (rc) outfile_abort(&of);
        else rc = close_tmp(&of, w.bad, e);
    }
    if (rc) for (int i = 0; i < done; i++) metrics_result_free(&results[i]);
    *n_sections = rc ? 0 : ns0;
    return rc;
}

// ---- SMIYC component-level metrics -----------------------------------------------------------
void comp_params_default(comp_params *p, int obstacle_track) {
    p->threshold = NAN;   // NaN: the caller applies comp_default_threshold
    p->connectivity = 8;
    p->min_pred_size = obstacle_track ? 50 : 500;
    p->min_gt_size = obstacle_track ? 10 : 100;
}

double comp_default_threshold(const metrics_result *r) {
    // Best F1 holds for score >= t; SMIYC predicts score > thr, so take the float just below t.
    return (double)nextafterf((float)r->best_f1_thr, -INFINITY);
}

double comp_delta(int i) { return i == COMP_NDELTA - 1 ? 0.75 : 0.25 + i * (0.5 / 10); }

static int32_t uf_find(int32_t *par, int32_t x) {
    while (par[x] != x) { par[x] = par[par[x]]; x = par[x]; }
    return x;
}
static void uf_union(int32_t *par, int32_t a, int32_t b) {
    a = uf_find(par, a); b = uf_find(par, b);
    if (a < b) par[b] = a; else if (b < a) par[a] = b;
}

// Labels the components of mask (1..n, 0 = background) as scipy.ndimage.label does (up to the
// numbering, which is in raster order of first pixels here too). par: scratch of w*h/2+2.
static int32_t cc_label(const uint8_t *mask, int w, int h, int conn, int32_t *lab, int32_t *par) {
    int32_t next = 1;
    par[0] = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int64_t i = (int64_t)y * w + x;
            if (!mask[i]) { lab[i] = 0; continue; }
            int32_t nb[4], k = 0;
            if (x > 0 && lab[i - 1]) nb[k++] = lab[i - 1];
            if (y > 0) {
                if (lab[i - w]) nb[k++] = lab[i - w];
                if (conn == 8 && x > 0 && lab[i - w - 1]) nb[k++] = lab[i - w - 1];
                if (conn == 8 && x < w - 1 && lab[i - w + 1]) nb[k++] = lab[i - w + 1];
            }
            if (!k) { par[next] = next; lab[i] = next++; continue; }
            int32_t m = nb[0];
            for (int j = 1; j < k; j++) if (nb[j] < m) m = nb[j];
            lab[i] = m;
            for (int j = 0; j < k; j++) uf_union(par, m, nb[j]);
        }
    // Roots to consecutive ids in one ascending pass: a parent always has a smaller id than its
    // child, so par[par[l]] already holds the final id of l's root when l is reached.
    int32_t n = 0;
    for (int32_t l = 1; l < next; l++) par[l] = (par[l] == l) ? ++n : par[par[l]];
    int64_t np = (int64_t)w * h;
    for (int64_t i = 0; i < np; i++) if (lab[i]) lab[i] = par[lab[i]];
    return n;
}

// A small open-addressing map (gt id, pred id) -> pixel count.
typedef struct pairmap { uint64_t *key; int64_t *cnt; size_t cap, n; } pairmap;
static int pm_add(pairmap *m, uint64_t k) {
    if (2 * (m->n + 1) > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        uint64_t *nk = malloc(cap * sizeof *nk);
        int64_t *nc = calloc(cap, sizeof *nc);
        if (!nk || !nc) { free(nk); free(nc); return -1; }
        memset(nk, 0xff, cap * sizeof *nk);
        for (size_t i = 0; i < m->cap; i++)
            if (m->key[i] != UINT64_MAX) {
                size_t h = (m->key[i] * 0x9E3779B97F4A7C15ull) >> 20 & (cap - 1);
                while (nk[h] != UINT64_MAX) h = (h + 1) & (cap - 1);
                nk[h] = m->key[i]; nc[h] = m->cnt[i];
            }
        free(m->key); free(m->cnt);
        m->key = nk; m->cnt = nc; m->cap = cap;
    }
    size_t h = (k * 0x9E3779B97F4A7C15ull) >> 20 & (m->cap - 1);
    while (m->key[h] != UINT64_MAX && m->key[h] != k) h = (h + 1) & (m->cap - 1);
    if (m->key[h] == UINT64_MAX) { m->key[h] = k; m->n++; }
    m->cnt[h]++;
    return 0;
}

int comp_add(comp_acc *a, const float *scores, const uint8_t *labels, int w, int h,
             const comp_params *p, err *e) {
    if (p->connectivity != 4 && p->connectivity != 8)
        return err_set(e, OODSEG_E_ARG, "components: connectivity %d; use 4 or 8", p->connectivity);
    if (p->threshold != p->threshold)
        return err_set(e, OODSEG_E_ARG, "components: no threshold set (use comp_default_threshold)");
    int64_t n = (int64_t)w * h;
    for (int64_t i = 0; i < n; i++)
        if (labels[i] > 1 && labels[i] != 255)
            return err_set(e, OODSEG_E_DATA, "components: label value %u at pixel (%lld, %lld); expected 0, 1 or 255",
                           labels[i], (long long)(i % w), (long long)(i / w));
    uint8_t *mg = malloc((size_t)n), *mp = malloc((size_t)n);
    int32_t *G = malloc((size_t)n * 4), *P = malloc((size_t)n * 4), *par = malloc(((size_t)n / 2 + 2) * 4);
    int64_t *gsz = NULL, *psz = NULL, *proi = NULL, *phit = NULL, *ginter = NULL, *gextra = NULL;
    pairmap pm = {0};
    int rc = OODSEG_OK;
    if (!mg || !mp || !G || !P || !par) { rc = err_set(e, OODSEG_E_NOMEM, "components: out of memory for a %dx%d image", w, h); goto done; }
    for (int64_t i = 0; i < n; i++) {
        mg[i] = labels[i] == 1;
        mp[i] = labels[i] != 255 && (double)scores[i] > p->threshold;
    }
    int32_t ng = cc_label(mg, w, h, p->connectivity, G, par);
    int32_t npr = cc_label(mp, w, h, p->connectivity, P, par);
    gsz = calloc((size_t)ng + 1, 8); psz = calloc((size_t)npr + 1, 8);
    proi = calloc((size_t)npr + 1, 8); phit = calloc((size_t)npr + 1, 8);
    ginter = calloc((size_t)ng + 1, 8); gextra = calloc((size_t)ng + 1, 8);
    if (!gsz || !psz || !proi || !phit || !ginter || !gextra) { rc = err_set(e, OODSEG_E_NOMEM, "components: out of memory"); goto done; }
    for (int64_t i = 0; i < n; i++) { gsz[G[i]]++; psz[P[i]]++; }
    for (int64_t i = 0; i < n; i++) {
        int32_t g = G[i], q = P[i];
        if (labels[i] == 255 || (g && gsz[g] < p->min_gt_size)) continue;   // outside the region of interest
        if (q && psz[q] < p->min_pred_size) q = 0;                            // too small a prediction
        if (!q) continue;
        proi[q]++;
        if (g) {
            phit[q]++;
            if (pm_add(&pm, (uint64_t)g << 32 | (uint32_t)q)) { rc = err_set(e, OODSEG_E_NOMEM, "components: out of memory"); goto done; }
        }
    }
    for (size_t i = 0; i < pm.cap; i++) {
        if (pm.key[i] == UINT64_MAX) continue;
        int32_t g = (int32_t)(pm.key[i] >> 32), q = (int32_t)(pm.key[i] & 0xffffffffu);
        ginter[g] += pm.cnt[i];
        gextra[g] += proi[q] - phit[q];
    }
    for (int32_t g = 1; g <= ng; g++) {
        if (gsz[g] < p->min_gt_size) continue;
        double siou = (double)ginter[g] / (double)(gextra[g] + gsz[g]);
        a->siou_sum += siou; a->n_gt++;
        for (int d = 0; d < COMP_NDELTA; d++) { if (siou >= comp_delta(d)) a->tp[d]++; else a->fn[d]++; }
    }
    for (int32_t q = 1; q <= npr; q++) {
        if (psz[q] < p->min_pred_size || proi[q] == 0) continue;
        double ppv = (double)phit[q] / (double)proi[q];
        a->ppv_sum += ppv; a->n_pred++;
        for (int d = 0; d < COMP_NDELTA; d++) if (ppv < comp_delta(d)) a->fp[d]++;
    }
done:
    free(mg); free(mp); free(G); free(P); free(par);
    free(gsz); free(psz); free(proi); free(phit); free(ginter); free(gextra);
    free(pm.key); free(pm.cnt);
    return rc;
}

void comp_finish(const comp_acc *a, comp_result *r) {
    memset(r, 0, sizeof *r);
    r->n_gt = a->n_gt; r->n_pred = a->n_pred;
    r->siou_gt = a->n_gt ? a->siou_sum / a->n_gt : NAN;
    r->ppv = a->n_pred ? a->ppv_sum / a->n_pred : NAN;
    for (int d = 0; d < COMP_NDELTA; d++) {
        int64_t den = 2 * a->tp[d] + a->fn[d] + a->fp[d];
        r->f1[d] = den ? 2.0 * a->tp[d] / den : NAN;
        r->f1_mean += r->f1[d];
    }
    r->f1_mean /= COMP_NDELTA;
}
