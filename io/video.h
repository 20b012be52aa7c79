// Video files in and out through FFmpeg's libraries (libavformat, libavcodec, libswscale):
// frames come out as RGB uint8 images, named <video-stem>_f<frame-index> by their callers; the
// overlay video of `oodseg score --video-out` goes back in as RGB and is encoded as H.264 (MPEG-4
// Part 2 where the library has no H.264 encoder) in an .mp4.
//
// Frame indices come from the frames' timestamps (index = (pts - stream start) x frame rate,
// rounded), not from a decode counter, so that a reader that seeks into the middle of a video
// (one rank's share of it) numbers its frames exactly as a reader from the start does.
#ifndef OODSEG_IO_VIDEO_H
#define OODSEG_IO_VIDEO_H

#include <stdint.h>
#include "../core/err.h"
#include "image.h"

// 1 when the name ends in .mp4, .mkv, .avi or .mov (any case).
int video_is_video_name(const char *path);

typedef struct video_opts {
    int every;             // keep frames whose index is a multiple of every (0 or 1: all)
    double start, end;     // keep frames whose time index/fps is in [start, end); end <= 0: to the end
    int64_t first, last;   // and whose index is in [first, last) (last < 0: no limit): a rank's share
} video_opts;

typedef struct video video;

int video_open(const char *path, const video_opts *o, video **out, err *e);
// The stream's frame count (the container's, else duration x frame rate; -1 when unknown) and rate.
int64_t video_frame_count(const video *v);
double video_fps(const video *v);
// The next kept frame as RGB (free with image_free) and its index; *eof = 1 (and no frame) at the
// end. Packets that fail to decode are skipped and counted (video_skipped). At the end, a stream
// that stops before the frame count its container promised (a truncated or damaged file) is
// OODSEG_E_FORMAT naming the file and the first frame missing; every frame before it has been
// returned.
int video_next(video *v, image *out, int64_t *index, int *eof, err *e);
// Packets that failed to decode so far, and the first one's frame index (-1: none).
int video_skipped(const video *v, int64_t *first_index);
void video_close(video *v);
// Frame `index` of the video at path alone (a labelled frame of an evaluation): opened, sought,
// decoded, closed. OODSEG_E_DATA naming the file when the video has no such frame.
int video_read_frame(const char *path, int64_t index, image *out, err *e);

// ---- writing ---------------------------------------------------------------------------------
typedef struct video_writer video_writer;
// An .mp4 of w x h frames (odd sizes are padded by one black row or column) at fps, written to a
// temporary name and renamed by video_writer_close.
int video_writer_open(const char *path, int w, int h, double fps, video_writer **out, err *e);
int video_writer_add(video_writer *vw, const image *rgb, err *e);
// Flushes and renames when ok; otherwise removes the temporary file. NULL is a no-op.
int video_writer_close(video_writer *vw, int ok, err *e);

#endif
