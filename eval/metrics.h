// Exact pixel-level OoD metrics (AP, AUROC, FPR95 in three conventions) pooled over a dataset.
// Shard states are in mstate.h, the SegmentMeIfYouCan component metrics in components.h, the
// whole evaluation (methods, images, reports) in evaluator.h.
//
// Conventions (see docs/ood-benchmarks-and-metrics.md): positives are OoD pixels
// (label 1), 0 is in-distribution, 255 is ignored and removed before anything else; a higher score
// means more anomalous. Values equal scikit-learn 1.2:
//   AP     average_precision_score: sum over distinct scores (descending) of (R_n - R_{n-1}) P_n;
//   AUROC  roc_auc_score: trapezoids over the ROC points of the distinct scores;
//   FPR95  on the points of roc_curve(drop_intermediate=True):
//          first-ge  the first point with TPR >= 0.95 (default; SMIYC, and the golden data),
//          nearest   the point whose TPR is nearest to 0.95 (DOoD / ADE-OoD; first on ties),
//          first-gt  the first point with TPR > 0.95 (RbA).
// Tied scores are one threshold. -0.0 counts as 0.0. NaN scores are refused.
//
// Scale: scores are kept once, as order-preserving 32-bit keys of their float32 value, positives
// and negatives apart (4 bytes a valid pixel); computing sorts them in place (radix.h, no second
// copy) and sweeps the distinct scores once (sweep.h), accumulating in double / 128-bit integers.
#ifndef OODSEG_EVAL_METRICS_H
#define OODSEG_EVAL_METRICS_H

#include <stdint.h>
#include "../core/err.h"

typedef enum { FPR_FIRST_GE = 0, FPR_NEAREST = 1, FPR_FIRST_GT = 2, FPR_NUM_CONV = 3 } fpr_conv;
const char *fpr_conv_name(fpr_conv c);             // "first-ge", "nearest", "first-gt"
const char *fpr_conv_describe(fpr_conv c);         // one sentence for reports
int fpr_conv_parse(const char *s, fpr_conv *c, err *e);

// A decimated curve for plots: at most about 1000 points, always the first and the last.
typedef struct metrics_curve {
    int n;
    float *recall, *precision;   // PR points (descending threshold)
    float *fpr, *tpr;            // ROC points
} metrics_curve;

typedef struct metrics_result {
    int64_t n_pos, n_neg, n_distinct;
    int defined;                 // 0 when there are no positives or no negatives (then values are NaN)
    double ap, auroc;
    fpr_conv conv;               // which convention `fpr95` uses
    double fpr95, fpr95_thr;     // = fpr95_all[conv], fpr95_thr_all[conv]
    double fpr95_all[FPR_NUM_CONV], fpr95_thr_all[FPR_NUM_CONV], fpr95_tpr_all[FPR_NUM_CONV];
    double best_f1, best_f1_thr; // best pixel F1 over the thresholds (score >= thr is positive)
    metrics_curve curve;         // filled only when asked for
} metrics_result;

void metrics_result_free(metrics_result *r);

// ---- the accumulator -------------------------------------------------------------------------
typedef struct macc macc;
int macc_new(macc **out, err *e);
void macc_free(macc *a);
// labels: 0 ID, 1 OoD, 255 ignore; any other value, or a NaN score, is an error naming the pixel
// index (the pixels of that call before it may have been added: discard the accumulator).
int macc_add(macc *a, const float *scores, const uint8_t *labels, int64_t n, err *e);
int64_t macc_count(const macc *a, int64_t *n_pos, int64_t *n_neg);
// Sorts in place (the accumulator stays usable: more may be added later) and computes.
int macc_compute(macc *a, fpr_conv conv, int want_curve, metrics_result *r, err *e);
// One-shot helper: the metrics of one array (per image). Uses a temporary accumulator.
int metrics_compute(const float *scores, const uint8_t *labels, int64_t n, fpr_conv conv,
                    int want_curve, metrics_result *r, err *e);

// The runs (distinct key, n_pos, n_neg) of an accumulator, highest score first; keys as in
// radix.h. Begin sorts the accumulator; nothing may be added until the iteration ends.
typedef struct macc_iter { const macc *a; int64_t i[2]; } macc_iter;
void macc_iter_begin(macc *a, macc_iter *it);
int macc_iter_next(macc_iter *it, uint32_t *key, uint64_t *np, uint64_t *nn);

#endif
