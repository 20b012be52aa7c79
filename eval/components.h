// SegmentMeIfYouCan component-level metrics: sIoU of the ground-truth components, PPV of the
// predicted ones, and the component F1 over eleven overlap thresholds (see
// docs/ood-benchmarks-and-metrics.md).
#ifndef OODSEG_EVAL_COMPONENTS_H
#define OODSEG_EVAL_COMPONENTS_H

#include <stdint.h>
#include "metrics.h"

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
