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
//
// Interrupts: each rank polls `cancel` between images. When it is set, the images of the current
// chunk that are finished are saved as a partial chunk (chunk-A-C for the images A..C-1 of the
// chunk A..B), rows then state as for a whole one, and the run returns OODSEG_E_INTERRUPTED; so an
// interrupt loses nothing (the image being scored when the signal came is finished first); a
// SIGKILL loses the images of the chunk in progress (at most `chunk`).
// A resumed run covers each chunk A..B with the pieces on disk (chunk-A-C, then chunk-C-D, ...,
// the longest piece first) and runs only what is left, as one more piece. A run started afresh
// (resume 0) first removes every chunk file, so stale pieces of another run are never merged.
//
// Component metrics (SMIYC sIoU, PPV, F1): rank 0, after the merge, makes one more pass over the
// images in dataset order, reading each image's labels from the dataset and its score maps from
// score_dirs (so every rank must save them there), at the fixed threshold or at the default one
// taken from the merged curve. One pass for both cases, in the order one process adds the images,
// so the floating-point sums are bit-identical to it (summing per-chunk sIoU sums would not be);
// the price is the maps on disk (4 bytes a pixel and method), which the default threshold needs
// in any case, even in one pass over the images.
#ifndef OODSEG_API_DISTEVAL_H
#define OODSEG_API_DISTEVAL_H

#include "pipeline.h"
#include "distributed.h"
#include <signal.h>

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
    const volatile sig_atomic_t *cancel;   // polled between images (NULL: never)
    int components;                        // rank 0's component pass (comp: its parameters)
    comp_params comp;
    // --save-state: rank 0 writes the merged state to state_path with the metadata one process
    // would write (eval_meta_json of state_info with the rows' image count, shard_i/shard_n).
    const char *state_path;
    const eval_info *state_info;
    int shard_i, shard_n;
} dist_eval_opts;

typedef struct dist_eval_result {
    evaluator *merged;          // rank 0: the merged evaluator (results), else NULL
    report_row *rows;           // rank 0: every evaluated image's row, in dataset order
    int n_rows;
    int n_failed;               // images skipped, over every rank
    int n_resumed;              // images this rank found done on disk
    int n_done;                 // images of this rank on disk now (done before or in this run)
    int n_share;                // images of this rank's share
    err first_failure;          // this rank's first
} dist_eval_result;

// Every rank calls it with the same dataset and options. On rank 0, r receives the merged results;
// free with dist_eval_result_free. A rank's error (not an image's) fails every rank.
int dist_eval_run(const dist *d, pipeline *p, const dataset *ds, const dist_eval_opts *o, dist_eval_result *r,
                  err *e);
void dist_eval_result_free(dist_eval_result *r);
// Rank 0, once the reports are written: removes the chunk files and run_dir (they exist only for
// resuming). Quiet: a file that cannot be removed is left.
void dist_eval_remove_chunks(const char *run_dir);
// The report of r as `oodseg eval` writes it (pointers into r and info).
void dist_eval_report(const dist_eval_result *r, const eval_info *info, report *rep);

#endif
