// `oodseg score` over a stream of images and video frames (api/frames.h): each frame scored and
// saved under its name (<video-stem>_f<index> for a video's frames), and for videos, when asked,
// <video-stem>_overlay.mp4: the first method's overlay (heat map over the footage, with its colour
// bar) as a video at the source's frame rate.
#ifndef OODSEG_API_SCORE_STREAM_H
#define OODSEG_API_SCORE_STREAM_H

#include "pipeline.h"
#include "frames.h"
#include <signal.h>

typedef struct score_stream_opts {
    const char *dir;            // the output folder (exists)
    frame_opts frames;          // --every, --start, --end
    int video_out;              // 1: <video-stem>_overlay.mp4 for each video
    int keep_going;             // 1: report a failed frame and go on; 0: stop at the first
    void (*on_fail)(void *ctx, const char *name, const err *e);
    void (*on_frame)(void *ctx, const char *name, int done);
    void *ctx;
    pipeline_save_opts save;    // the picture format, --no-npy
    int queue;                  // scored images waiting for the writer thread (0: 2)
    // NULL: never. Polled before each frame: once nonzero, no new frame is taken, what is queued
    // is written, and score_stream returns OODSEG_E_INTERRUPTED (s->interrupted = 1).
    const volatile sig_atomic_t *cancel;
    // May be NULL. skip: 1 when the frame's outputs are already there (--resume): it is neither
    // scored nor written, only counted (s->skipped). on_saved: a frame's every output is written.
    int (*skip)(void *ctx, const char *name);
    void (*on_saved)(void *ctx, const char *name);
} score_stream_opts;

typedef struct score_stream_summary {
    int done, failed, skipped;
    int interrupted;            // 1: stopped by *cancel
    err first_failure;
    double seconds_decode, seconds_wait;   // the decoding thread's time; the time spent waiting for it
    double seconds_network;                // the forward passes and the methods (they overlap:
                                           // the sum can exceed the wall time)
    double seconds_forward_wait;           // the calling thread waiting for the forward threads
    int forward_threads;                   // host threads running forwards (api/score_stream.c)
    int twins_from_plan;                   // twins whose first forward ran from the model's plan
                                           // (after the lead frame on the model; 0 without twins)
    double seconds_write, seconds_write_wait;   // the writer thread's time; the time waiting for it
} score_stream_summary;

// Each frame's network runs on a forward thread (with the model's threads; or, for a small model
// whose weights can be shared, on one of several forward threads, each on a twin of the model
// with its share of the threads), ahead of its methods on the calling thread, while a writer
// thread encodes and writes the previous frames' outputs; the maps are the bits of pipeline_run.
// The callbacks are called on the calling thread, in input order. Returns an error that stops the
// run (a failed frame without keep_going, an output that cannot be written,
// OODSEG_E_INTERRUPTED); failed frames with keep_going are only counted in s.
int score_stream(pipeline *p, char *const *paths, int n, const score_stream_opts *o, score_stream_summary *s, err *e);

#endif
