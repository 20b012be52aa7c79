// The evaluator: everything an OoD evaluation does after the scores exist. It pools the score maps
// of several methods over a dataset image by image, then gives each method's exact pixel metrics
// (AP, AUROC, FPR95 in all three conventions, best pixel F1, curves), the SegmentMeIfYouCan
// component metrics, a per-image table, the report files, and shard states that merge exactly.
// Library code: it never prints; errors come back as an `err`.
//
//   evaluator_opts o;   evaluator_opts_default(&o, smiyc_track);
//   evaluator *ev;      evaluator_new(&ev, n_methods, names, &o, &e);
//   for each image:     evaluator_add(ev, stem, maps, labels01, w, h, seconds, &e);
//                       (or evaluator_add_raw with the dataset's raw labels and its convention,
//                        dataset_convention in datasets.h)
//   evaluator_finish(ev, maps_again, ctx, &e);   // maps_again: only for evaluator_needs_maps()
//   evaluator_result(ev, m), evaluator_comp_result(ev, m), evaluator_rows(ev, &n), ...
//   evaluator_write_reports(ev, &info, dir, &e);  evaluator_save_state(ev, path, meta, &e);
//   evaluator_free(ev);
// Shards: each evaluates a slice and saves its state; evaluator_merge reads them all back into a
// finished evaluator whose metrics equal those of one pass (no per-image rows, no components).
//
// Memory: the pooled scores take 4 bytes per valid pixel and method (metrics.h). When component
// metrics wait for the pooled threshold, the images' 0/1/255 labels are kept too (1 byte a pixel)
// for the second pass.
#ifndef OODSEG_EVAL_EVALUATOR_H
#define OODSEG_EVAL_EVALUATOR_H

#include <stdint.h>
#include "metrics.h"
#include "components.h"
#include "report.h"
#include "evalmeta.h"

#define EVALUATOR_MAX_METHODS REPORT_MAX_METHODS   // 16
#define EVALUATOR_NAME 32                           // a method name is cut to 31 bytes

typedef struct evaluator evaluator;

typedef struct evaluator_opts {
    fpr_conv conv;        // the FPR95 convention of `fpr95` and the reports (all are computed)
    int components;       // SMIYC component metrics (on by default for the smiyc-* layouts)
    comp_params comp;     // threshold NaN: the SMIYC default, from each method's pooled curve,
                          // which takes a second pass over the score maps in evaluator_finish
} evaluator_opts;

// FPR_FIRST_GE; components on for smiyc_track 1 (anomaly) and 2 (obstacle) with that track's
// component sizes, threshold NaN, 8-connected.
void evaluator_opts_default(evaluator_opts *o, int smiyc_track);

// n_methods in 1..EVALUATOR_MAX_METHODS; names[m] names method m in results and reports.
int evaluator_new(evaluator **out, int n_methods, const char *const *names, const evaluator_opts *o, err *e);
void evaluator_free(evaluator *ev);

// One image: scores[m] is method m's w x h map (row-major, higher = more anomalous), labels the
// w x h map of 0 (in-distribution), 1 (OoD), 255 (ignore). seconds: the time it took to score
// (for the per-image table; 0 when unknown). A label outside 0/1/255 or a NaN score is
// OODSEG_E_DATA naming the image, the method and the pixel; the evaluator is then unusable.
int evaluator_add(evaluator *ev, const char *stem, const float *const *scores, const uint8_t *labels,
                  int w, int h, double seconds, err *e);
// The same with raw label values and a convention (the 256-entry table of dataset_convention:
// 0, 1, 255, or DS_BAD for a value the dataset does not define, which is OODSEG_E_DATA naming
// the value and the pixel).
int evaluator_add_raw(evaluator *ev, const char *stem, const float *const *scores, const uint8_t *raw,
                      const uint8_t convention[256], int w, int h, double seconds, err *e);
int evaluator_n_images(const evaluator *ev);

// Supplies method m's score map of image i (in the order added; stem as added) into dst, w x h.
typedef int (*evaluator_map_fn)(void *ctx, int image, const char *stem, int method, float *dst,
                                int w, int h, err *e);
// 1 when evaluator_finish will need the maps again (components at the pooled default threshold).
int evaluator_needs_maps(const evaluator *ev);
// Pooled metrics with curves; then, where component thresholds come from the pooled curve, sets
// them and runs the component pass through maps (which may be NULL when not needed). Once only.
int evaluator_finish(evaluator *ev, evaluator_map_fn maps, void *ctx, err *e);

// ---- results (after evaluator_finish or evaluator_merge) ----------------------------------------
int evaluator_n_methods(const evaluator *ev);
const char *evaluator_method(const evaluator *ev, int m);
const metrics_result *evaluator_result(const evaluator *ev, int m);     // NULL before finish
const comp_result *evaluator_comp_result(const evaluator *ev, int m);   // NULL when components are off
const comp_params *evaluator_comp_params(const evaluator *ev, int m);   // the threshold used, ...
// Per image, in the order added: valid and OoD pixel counts, each method's AP/AUROC/FPR95 (NaN
// where undefined), seconds. NULL (and *n = 0) for a merged evaluator.
const report_row *evaluator_rows(const evaluator *ev, int *n);

// ---- reports ------------------------------------------------------------------------------------
// A report of the results (pointers into ev and info; valid while both live). info NULL: a merged
// evaluator's own metadata, else empty strings; info->n_images 0: the images added.
void evaluator_report(const evaluator *ev, const eval_info *info, report *r);
// Writes metrics.json, metrics.md, metrics.csv, per_image.csv (when there are rows),
// pr_curve.svg and roc_curve.svg into dir (its parent must exist).
int evaluator_write_reports(const evaluator *ev, const eval_info *info, const char *dir, err *e);
// The Markdown table (Method | AP | FPR95 | AUROC, x100), for a terminal; caller frees. NULL when
// out of memory.
char *evaluator_table_md(const evaluator *ev);

// ---- shard states ---------------------------------------------------------------------------------
// Saves every method's pooled scores with metadata meta_json (eval_meta_json). Any time after
// the images are added.
int evaluator_save_state(evaluator *ev, const char *path, const char *meta_json, err *e);
// A finished evaluator from n_paths state files (same methods), its metrics exactly those of one
// pass over all their pixels; save_path (or NULL) receives the merged state.
int evaluator_merge(evaluator **out, const char *const *paths, int n_paths, fpr_conv conv,
                    const char *save_path, err *e);
// evaluator_merge with the merged state written with save_meta as its metadata (NULL: the first
// state's), e.g. the metadata one process's --save-state would write, so the file is the same.
int evaluator_merge_as(evaluator **out, const char *const *paths, int n_paths, fpr_conv conv,
                       const char *save_path, const char *save_meta, err *e);

// Component metrics for a merged evaluator, which keeps no images: method m's threshold is
// p->threshold, or (NaN) the SMIYC default from m's merged curve; then one pass over the n images
// in their original order, labels (0/1/255, malloc'd, w x h) from labels_fn and maps from maps_fn.
// Images, order and sums are those of evaluator_add + evaluator_finish in one process, so the
// results are bit-identical to it.
typedef int (*evaluator_labels_fn)(void *ctx, int image, const char *stem, uint8_t **labels, int *w, int *h,
                                   err *e);
int evaluator_merged_components(evaluator *ev, const comp_params *p, int n, const char *const *stems,
                                evaluator_labels_fn labels, evaluator_map_fn maps, void *ctx, err *e);
// A merged evaluator's metadata (dataset, labels, model of the first state, images summed, a note);
// NULL for others.
const eval_info *evaluator_info(const evaluator *ev);

#endif
