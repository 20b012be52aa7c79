// The sweep over distinct thresholds (see sweep.h). Exact where it can be: counts in 64 bits, the
// AUROC trapezoid sum in 128 bits, the AP sum compensated.
#include "sweep.h"
#include "radix.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void sw_init(sweep *s, uint64_t P, uint64_t N, int want_curve) {
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
void sw_push(sweep *s, uint32_t key, uint64_t dp, uint64_t dn) {
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
        if (f1 > s->best_f1) { s->best_f1 = f1; s->best_f1_thr = key_to_score(key); }
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
        double thr = key_to_score(key);
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

void sw_finish(sweep *s, fpr_conv conv, metrics_result *r) {
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

void sw_discard(sweep *s) { metrics_result_free(&(metrics_result){.curve = s->cv}); }
