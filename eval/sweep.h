// The sweep over the distinct scores of a pool, descending: AP, AUROC, the three FPR95
// conventions, best pixel F1 and a decimated curve, in one pass over (score, n_pos, n_neg) runs.
// Library-internal: the accumulator (metrics.c) and the state merge (mstate.c) feed it.
// Conventions: see eval/metrics.h.
#ifndef OODSEG_EVAL_SWEEP_H
#define OODSEG_EVAL_SWEEP_H

#include "metrics.h"

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

// P, N: the pool's positives and negatives (the runs pushed must add up to them).
void sw_init(sweep *s, uint64_t P, uint64_t N, int want_curve);
// One distinct score (its key, see radix.h) with dp positives and dn negatives; keys descending.
void sw_push(sweep *s, uint32_t key, uint64_t dp, uint64_t dn);
// The result; it takes over the curve. Check s->nomem first (then call sw_discard instead).
void sw_finish(sweep *s, fpr_conv conv, metrics_result *r);
// Frees what a sweep holds when it is not finished (out of memory, or an error in the runs).
void sw_discard(sweep *s);

#endif
