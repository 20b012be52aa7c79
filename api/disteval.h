// `oodseg eval` over the ranks of an MPI launch, and resumable: the dataset's images are cut into
// chunks of `chunk` consecutive images; rank r of n takes the chunks of its contiguous block of
// images. Each chunk, once done, is on disk in run_dir: its exact metric state (mstate.h: every
// distinct score with its OoD and ID counts, never binned) and its per-image rows, each written to
// a temporary name and renamed, the state last, so a chunk whose state exists is complete. A
// killed run started again with resume = 1 skips the chunks on disk.
//
// Rank 0 then merges every chunk's state (an exact merge over distinct score values: the counts of
// each distinct score are summed) and reads the rows in dataset order, so the metrics and reports
// are bit-identical to one process's `oodseg eval`, for any number of ranks and chunks.
// Component metrics (SMIYC) are not supported here (they need the pooled curve first).
#ifndef OODSEG_API_DISTEVAL_H
#define OODSEG_API_DISTEVAL_H

#include "pipeline.h"
#include "distributed.h"

typedef struct dist_eval_opts {
    const char *run_dir;        // the chunks' folder (created)
    int chunk;                  // images per chunk (0: 8)
    int resume;                 // 1: keep the chunks on disk; 0: start afresh
    fpr_conv conv;
    const eval_save *save;      // pictures, thumbnails, score maps (may be NULL)
    // Called for each image that failed (it is skipped and counted), and after each image.
    void (*on_fail)(void *ctx, const char *stem, const err *e);
    void (*on_image)(void *ctx, int done, int total);
    void *ctx;
} dist_eval_opts;

typedef struct dist_eval_result {
    evaluator *merged;          // rank 0: the merged evaluator (results), else NULL
    report_row *rows;           // rank 0: every evaluated image's row, in dataset order
    int n_rows;
    int n_failed;               // images skipped, over every rank
    int n_resumed;              // images this rank found done on disk
    err first_failure;          // this rank's first
} dist_eval_result;

// Every rank calls it with the same dataset and options. On rank 0, r receives the merged results;
// free with dist_eval_result_free. A rank's error (not an image's) fails every rank.
int dist_eval_run(const dist *d, pipeline *p, const dataset *ds, const dist_eval_opts *o, dist_eval_result *r,
                  err *e);
void dist_eval_result_free(dist_eval_result *r);
// The report of r as `oodseg eval` writes it (pointers into r and info).
void dist_eval_report(const dist_eval_result *r, const eval_info *info, report *rep);

#endif
