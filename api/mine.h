// `oodseg mine`: find the frames a model does not understand in a long stream of footage (folders,
// file lists, videos). Each frame gets image-level anomaly scores from its pixel map (METHOD.md,
// "Image-level scores"); the K best are kept with their maps, pictures and the bounding boxes of
// their anomalous regions; DIR/ranking.csv and the gallery DIR/index.html close the run.
//
// Memory is bounded whatever the input's length: a few decoded frames (api/frames.h), one frame's
// maps, and the K best frames' scores; their files are on disk (DIR/top/), and a frame pushed out
// of the K best has its files removed. Every frame's scores are appended to a per-rank CSV as
// they come (DIR/frames.csv; DIR/frames-R-of-N.csv under MPI), flushed line by line: a killed run
// started again with resume = 1 continues after the last frame on disk, and the final ranking is
// the same as an uninterrupted run's. Ties are broken by input order, then frame index, so the
// ranking does not depend on the number of ranks either: rank 0 reads every rank's CSV and keeps
// the global K best.
#ifndef OODSEG_API_MINE_H
#define OODSEG_API_MINE_H

#include <stdint.h>
#include "pipeline.h"
#include "frames.h"
#include "distributed.h"

typedef enum { MINE_AREA = 0, MINE_REGION = 1, MINE_PERCENTILE = 2 } mine_rank_by;
#define MINE_MAX_BOXES 8

typedef struct mine_box { int x0, y0, x1, y1; int64_t pixels; } mine_box;   // inclusive corners

// A frame's image-level scores (api/mine_score.c), all from the first method's map.
typedef struct mine_scores {
    double area;             // share of the frame's pixels that are anomalous (0..1)
    double region;           // share of the largest 8-connected anomalous region (0..1)
    double percentile;       // the map's P-th percentile (score units)
    int n_boxes;             // the largest anomalous regions (at least min_region of the frame)
    mine_box boxes[MINE_MAX_BOXES];
} mine_scores;

typedef struct mine_pixel_rule {
    int has_threshold;       // 1: anomalous = score > threshold
    double threshold;
    int use_clusters;        // else 1: anomalous = in a cluster the method flagged OoD (kmeans)
    double percentile;       // P of mine_scores.percentile (e.g. 99)
    double min_region;       // share of the frame a box's region must reach (e.g. 0.001)
} mine_pixel_rule;

// The scores of method 0's map of o.
int mine_score_frame(const pipeline_out *o, const mine_pixel_rule *rule, mine_scores *s, err *e);
double mine_rank_value(const mine_scores *s, mine_rank_by by);
const char *mine_rank_name(mine_rank_by by);   // "area", "region", "percentile"

typedef struct mine_opts {
    const char *out_dir;     // DIR (created); every rank must see it
    int top;                 // K >= 1
    mine_rank_by by;
    mine_pixel_rule rule;
    frame_opts frames;       // --every, --start, --end (rank and size are set from the dist)
    int resume;
    const char *command_line;   // for the gallery, or NULL
    // Called for a frame that failed (it is skipped and counted) and after each frame.
    void (*on_fail)(void *ctx, const char *name, const err *e);
    void (*on_frame)(void *ctx, const char *name, long long done);
    void *ctx;
} mine_opts;

typedef struct mine_summary {
    long long frames;        // scored, over every rank (rank 0)
    long long failed;        // skipped (failed to decode or to score), over every rank
    long long resumed;       // found done on disk by this rank
    int n_top;               // frames in the ranking
    double seconds, seconds_decode, seconds_wait;   // this rank: wall, decoding thread, waiting for frames
    err first_failure;       // this rank's
} mine_summary;

// Every rank calls it with the same inputs and options.
int mine_run(const dist *d, pipeline *p, char *const *inputs, int n_inputs, const mine_opts *o, mine_summary *s,
             err *e);

#endif
