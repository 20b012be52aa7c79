// A stream of frames from image files and videos, decoded on its own thread ahead of the network
// through a bounded queue (so decoding hides behind scoring, and memory stays at a few frames
// whatever the input's length). Shared by `oodseg score`, `oodseg mine` and the library.
//
// Names: an image is its file's stem; a video's frame i is <video-stem>_f<i> (six digits at
// least: clip_f000042), in every output. Each frame has a key (input, index) that orders it in the
// whole input: input is its position in the list, index the frame's index in its video (-1 for an
// image). A rank r of n takes a share: the images of its contiguous block of the image list, and
// the frames of its contiguous block of each video's frame indices.
#ifndef OODSEG_API_FRAMES_H
#define OODSEG_API_FRAMES_H

#include <stdint.h>
#include "../core/err.h"
#include "../io/image.h"

#define FRAME_NAME 512

typedef struct frame_item {
    char name[FRAME_NAME];
    const char *source;      // the input path (owned by the source)
    int input;               // position in the input list
    int64_t index;           // frame index in its video, -1 for an image
    image img;               // RGB; empty when failed
    int failed;              // 1: e says why (a file that does not decode, a damaged video)
    int end_of_input;        // 1: an error reported after a video's last good frame (no image)
    err e;
    double fps;              // a video's frame rate (0 for an image)
} frame_item;

typedef struct frame_opts {
    int every;               // videos: every Nth frame (by index; 0 or 1: all)
    double start, end;       // videos: times in seconds, [start, end); end <= 0: to the end
    int rank, size;          // this rank's share (size 0 or 1: everything)
    int queue;               // frames decoded ahead (0: 4)
    uint64_t max_memory;     // the run's memory limit, for the image decoder's pixel cap (0: the default)
} frame_opts;

typedef struct frame_source frame_source;

// Starts the decoding thread over paths (images and videos; the caller keeps paths alive).
int frame_source_open(char *const *paths, int n, const frame_opts *o, frame_source **out, err *e);
// The next frame in input order; returns 1 when there is none left, else 0 (the item may be a
// failure: it->failed). Free the item with frame_item_free.
int frame_source_next(frame_source *s, frame_item *it);
void frame_item_free(frame_item *it);
// Seconds the decoding thread spent decoding (not waiting for room in the queue), and seconds
// the consumer waited for a frame (decoding that did not hide behind its work).
void frame_source_times(const frame_source *s, double *decoding, double *waiting);
// Stops the thread (it may be mid-way) and frees everything. NULL is a no-op.
void frame_source_close(frame_source *s);

// The name of frame index of a video (or of an image when index < 0) into buf.
void frame_name(const char *path, int64_t index, char *buf, size_t n);

#endif
