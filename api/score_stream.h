// `oodseg score` over a stream of images and video frames (api/frames.h): each frame scored and
// saved under its name (<video-stem>_f<index> for a video's frames), and for videos, when asked,
// <video-stem>_overlay.mp4: the first method's overlay (heat map over the footage, with its colour
// bar) as a video at the source's frame rate.
#ifndef OODSEG_API_SCORE_STREAM_H
#define OODSEG_API_SCORE_STREAM_H

#include "pipeline.h"
#include "frames.h"

typedef struct score_stream_opts {
    const char *dir;            // the output folder (exists)
    frame_opts frames;          // --every, --start, --end
    int video_out;              // 1: <video-stem>_overlay.mp4 for each video
    int keep_going;             // 1: report a failed frame and go on; 0: stop at the first
    void (*on_fail)(void *ctx, const char *name, const err *e);
    void (*on_frame)(void *ctx, const char *name, int done);
    void *ctx;
} score_stream_opts;

typedef struct score_stream_summary {
    int done, failed;
    err first_failure;
    double seconds_decode, seconds_wait;   // the decoding thread's time; the time spent waiting for it
} score_stream_summary;

// Returns an error that stops the run (a failed frame without keep_going, an output that cannot
// be written); failed frames with keep_going are only counted in s.
int score_stream(pipeline *p, char *const *paths, int n, const score_stream_opts *o, score_stream_summary *s, err *e);

#endif
