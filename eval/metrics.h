// Exact pixel-level OoD metrics (AP, AUROC, FPR95 in three conventions) pooled over a dataset,
// shard states that merge exactly, and the SegmentMeIfYouCan component-level metrics.
//
// Conventions (see ../shared/specs/ood-benchmarks-and-metrics.md): positives are OoD pixels
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
// and negatives apart (4 bytes a valid pixel); computing sorts them in place (in-place MSD radix,
// no second copy) and sweeps the distinct scores once, accumulating in double / 128-bit integers.
#ifndef OODSEG_EVAL_METRICS_H
#define OODSEG_EVAL_METRICS_H

#include <stdint.h>
#include <stdio.h>
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

// ---- shard states ----------------------------------------------------------------------------
// A state file holds one section per method: its name and the sorted runs (distinct score, n_pos,
// n_neg), descending, compactly (LEB128 key step + two LEB128 counts a run), after a header with a magic,
// a version and a free-form JSON metadata string. Merging states sums the counts per distinct
// score, so the merged metrics are exactly those of a single pass over all pixels.
#define MSTATE_MAX_SECTIONS 16
#define MSTATE_NAME 32
int mstate_save(const char *path, const char *meta_json, int n_sections,
                const char *const *names, macc *const *accs, err *e);
// Merges n_paths state files (same section names, same order) and computes each section's
// metrics; save_path (or NULL) receives the merged state. meta receives the first file's metadata.
int mstate_merge(const char *const *paths, int n_paths, fpr_conv conv, int want_curve,
                 const char *save_path, int *n_sections, char names[][MSTATE_NAME],
                 metrics_result *results, char *meta, size_t meta_cap, err *e);

// Reads only the metadata string of a state file (e.g. to add up the shards' image counts).
int mstate_read_meta(const char *path, char *meta, size_t meta_cap, err *e);

// ---- SMIYC component-level metrics -----------------------------------------------------------
// The rules of SegmentMeIfYouCan's evaluator (road_anomaly_benchmark/metrics/instance_segmentation.py):
// predicted = score > threshold, and void pixels are never predicted; components are 8-connected
// (scipy.ndimage.label with a 3x3 structure); predicted components under min_pred_size pixels are
// dropped (500 anomaly track, 50 obstacle track); GT components under min_gt_size pixels become
// void (100 / 10). Per GT component K: sIoU = |K & P| / |(K | P) \ A| with P the predicted
// components touching K and A the other GT components; per predicted component: PPV = share of
// its pixels on GT. At each delta of {0.25, 0.30, ..., 0.75}: TP = #(sIoU >= delta),
// FN = #(sIoU < delta), FP = #(PPV < delta); F1 = 2TP / (2TP + FN + FP) from counts summed over
// the images; mean F1 averages the 11 values. Their default threshold is the one of the best
// pixel F1 on the pooled PR curve; comp_default_threshold gives it from metrics_result.
#define COMP_NDELTA 11
typedef struct comp_params {
    double threshold;
    int connectivity;      // 8 (SMIYC) or 4
    int min_pred_size;
    int min_gt_size;
} comp_params;
void comp_params_default(comp_params *p, int obstacle_track);
// The SMIYC threshold in the `score > thr` form: just below the best-F1 distinct score.
double comp_default_threshold(const metrics_result *r);

typedef struct comp_acc {
    int64_t tp[COMP_NDELTA], fn[COMP_NDELTA], fp[COMP_NDELTA];
    double siou_sum, ppv_sum;
    int64_t n_gt, n_pred;
} comp_acc;
typedef struct comp_result {
    double siou_gt, ppv, f1[COMP_NDELTA], f1_mean;
    int64_t n_gt, n_pred;
} comp_result;
double comp_delta(int i);   // 0.25 + 0.05 i (as numpy.linspace)
// labels 0/1/255 as for macc_add; adds one image (w x h).
int comp_add(comp_acc *a, const float *scores, const uint8_t *labels, int w, int h,
             const comp_params *p, err *e);
void comp_finish(const comp_acc *a, comp_result *r);

#endif
