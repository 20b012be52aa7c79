// Video in and out through FFmpeg's libraries (see video.h).
#include "video.h"
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

int video_is_video_name(const char *path) {
    const char *d = strrchr(path, '.');
    if (!d || strchr(d, '/')) return 0;
    return !strcasecmp(d, ".mp4") || !strcasecmp(d, ".mkv") || !strcasecmp(d, ".avi") || !strcasecmp(d, ".mov");
}

static const char *av_msg(int r, char *buf, size_t n) {
    if (av_strerror(r, buf, n) < 0) snprintf(buf, n, "error %d", r);
    return buf;
}

struct video {
    char path[4096];
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame;
    struct SwsContext *sws;
    int si;                    // the video stream
    AVRational tb, rate;       // the stream's time base and frame rate
    int64_t start_pts;         // the stream's first timestamp
    int64_t n_frames;          // the container's count, or an estimate, or -1
    int count_known;           // 1: n_frames is the container's count (a shorter stream is damage)
    video_opts o;
    int64_t first, counter, last_seen;
    int draining, done, read_error;
    int skipped;
    int64_t first_skipped;
};

int64_t video_frame_count(const video *v) { return v->n_frames; }
double video_fps(const video *v) { return av_q2d(v->rate); }
int video_skipped(const video *v, int64_t *first_index) {
    if (first_index) *first_index = v->first_skipped;
    return v->skipped;
}

void video_close(video *v) {
    if (!v) return;
    sws_freeContext(v->sws);
    av_frame_free(&v->frame);
    av_packet_free(&v->pkt);
    avcodec_free_context(&v->dec);
    avformat_close_input(&v->fmt);
    free(v);
}

// The container, its best video stream and that stream's decoder (one thread: the decoder already
// runs on its own thread beside the network, and the network has the cores).
static int open_decoder(video *v, err *e) {
    char m[256];
    int r = avformat_open_input(&v->fmt, v->path, NULL, NULL);
    if (r < 0) return err_set(e, r == AVERROR(ENOENT) ? OODSEG_E_IO : OODSEG_E_FORMAT, "%s: cannot open the video (%s)", v->path, av_msg(r, m, sizeof m));
    if ((r = avformat_find_stream_info(v->fmt, NULL)) < 0)
        return err_set(e, OODSEG_E_FORMAT, "%s: cannot read the video's streams (%s); the file is damaged or not a video", v->path, av_msg(r, m, sizeof m));
    const AVCodec *codec = NULL;
    if ((v->si = av_find_best_stream(v->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0)) < 0 || !codec)
        return err_set(e, OODSEG_E_FORMAT, "%s: no video stream that this FFmpeg can decode", v->path);
    AVStream *st = v->fmt->streams[v->si];
    if (!(v->dec = avcodec_alloc_context3(codec))) return err_set(e, OODSEG_E_NOMEM, "%s: out of memory for the decoder", v->path);
    if ((r = avcodec_parameters_to_context(v->dec, st->codecpar)) < 0)
        return err_set(e, OODSEG_E_FORMAT, "%s: bad codec parameters (%s)", v->path, av_msg(r, m, sizeof m));
    v->dec->thread_count = 1;
    if ((r = avcodec_open2(v->dec, codec, NULL)) < 0)
        return err_set(e, OODSEG_E_FORMAT, "%s: cannot open the %s decoder (%s)", v->path, codec->name, av_msg(r, m, sizeof m));
    v->tb = st->time_base;
    v->rate = av_guess_frame_rate(v->fmt, st, NULL);
    if (v->rate.num <= 0 || v->rate.den <= 0)
        return err_set(e, OODSEG_E_FORMAT, "%s: the video stream has no frame rate; frame indices cannot be told", v->path);
    v->start_pts = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    v->count_known = st->nb_frames > 0;
    if (st->nb_frames > 0) v->n_frames = st->nb_frames;
    else if (st->duration != AV_NOPTS_VALUE) v->n_frames = llround(st->duration * av_q2d(st->time_base) * av_q2d(v->rate));
    else if (v->fmt->duration != AV_NOPTS_VALUE) v->n_frames = llround(v->fmt->duration / (double)AV_TIME_BASE * av_q2d(v->rate));
    else v->n_frames = -1;
    return OODSEG_OK;
}

int video_open(const char *path, const video_opts *o, video **out, err *e) {
    *out = NULL;
    video *v = err_calloc(e, 1, sizeof *v, "a video reader");
    if (!v) return e->code;
    snprintf(v->path, sizeof v->path, "%s", path);
    if (o) v->o = *o; else v->o.last = -1;
    if (v->o.every < 1) v->o.every = 1;
    v->last_seen = -1;
    v->first_skipped = -1;
    av_log_set_level(AV_LOG_QUIET);   // the library never prints: errors come back in e
    int rc = open_decoder(v, e);
    if (!rc && (!(v->pkt = av_packet_alloc()) || !(v->frame = av_frame_alloc())))
        rc = err_set(e, OODSEG_E_NOMEM, "%s: out of memory for the decoder", path);
    // The first frame wanted (by index and by time): a reader of a later share seeks to the
    // keyframe before it and decodes forward, so its frames equal those of a reader from the start.
    int64_t first = v->o.first > 0 ? v->o.first : 0;
    if (v->o.start > 0) {
        int64_t f = (int64_t)ceil(v->o.start * av_q2d(v->rate) - 1e-9);
        if (f > first) first = f;
    }
    v->first = first;
    v->counter = 0;
    if (!rc && first > 0) {
        int64_t ts = v->start_pts + av_rescale_q(first, av_inv_q(v->rate), v->tb);
        if (av_seek_frame(v->fmt, v->si, ts, AVSEEK_FLAG_BACKWARD) >= 0) avcodec_flush_buffers(v->dec);
    }
    if (rc) { video_close(v); return rc; }
    *out = v;
    return OODSEG_OK;
}

// The frame's index from its timestamp (a decode counter when the stream has none).
static int64_t frame_index(video *v) {
    int64_t ts = v->frame->best_effort_timestamp;
    int64_t i = ts == AV_NOPTS_VALUE ? v->counter : llround((double)(ts - v->start_pts) * av_q2d(v->tb) * av_q2d(v->rate));
    v->counter = i + 1;
    return i;
}

static int to_rgb(video *v, image *out, err *e) {
    AVFrame *f = v->frame;
    v->sws = sws_getCachedContext(v->sws, f->width, f->height, f->format, f->width, f->height, AV_PIX_FMT_RGB24,
                                  SWS_BILINEAR | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL, NULL, NULL);
    if (!v->sws) return err_set(e, OODSEG_E_FORMAT, "%s: cannot convert pixel format %d to RGB", v->path, f->format);
    out->w = f->width; out->h = f->height; out->c = 3;
    if (!(out->px = err_malloc(e, (size_t)f->width * f->height * 3, "a video frame"))) return e->code;
    uint8_t *dst[4] = {out->px, NULL, NULL, NULL};
    int stride[4] = {f->width * 3, 0, 0, 0};
    sws_scale(v->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, stride);
    return OODSEG_OK;
}

// Whether frame i is kept; sets v->done past the last wanted frame.
static int wanted(video *v, int64_t i) {
    double t = (double)i / av_q2d(v->rate);
    if ((v->o.last >= 0 && i >= v->o.last) || (v->o.end > 0 && t >= v->o.end)) { v->done = 1; return 0; }
    return i >= v->first && i % v->o.every == 0;
}

// At the end of the stream: fewer frames than the container promised, or a read that failed, is
// damage; every frame before it was returned.
static int check_end(video *v, err *e) {
    int64_t next = v->last_seen + 1;
    if (v->read_error)
        return err_set(e, OODSEG_E_FORMAT, "%s: damaged or truncated at frame %lld: the file could not be read past it "
                       "(the %lld frames before it were kept)", v->path, (long long)next, (long long)next);
    if (v->count_known && next < v->n_frames && !v->done)
        return err_set(e, OODSEG_E_FORMAT, "%s: truncated at frame %lld of %lld: the rest of the file is missing "
                       "(the %lld frames before it were kept)", v->path, (long long)next, (long long)v->n_frames, (long long)next);
    return OODSEG_OK;
}

// Sends the next packet of the video stream to the decoder (or starts draining at the end).
static void feed(video *v) {
    for (;;) {
        int r = av_read_frame(v->fmt, v->pkt);
        if (r < 0) {
            if (r != AVERROR_EOF) v->read_error = 1;
            avcodec_send_packet(v->dec, NULL);
            v->draining = 1;
            return;
        }
        if (v->pkt->stream_index != v->si) { av_packet_unref(v->pkt); continue; }
        r = avcodec_send_packet(v->dec, v->pkt);
        if (r < 0 && r != AVERROR(EAGAIN)) {   // a packet the decoder refuses: skipped, counted
            if (!v->skipped++) v->first_skipped = v->last_seen + 1;
        }
        av_packet_unref(v->pkt);
        return;
    }
}

int video_next(video *v, image *out, int64_t *index, int *eof, err *e) {
    memset(out, 0, sizeof *out);
    *eof = 0;
    while (!v->done) {
        int r = avcodec_receive_frame(v->dec, v->frame);
        if (r == AVERROR(EAGAIN)) {
            if (v->draining) break;
            feed(v);
            continue;
        }
        if (r == AVERROR_EOF) break;
        if (r < 0) { if (!v->skipped++) v->first_skipped = v->last_seen + 1; continue; }
        int64_t i = frame_index(v);
        if (i > v->last_seen) v->last_seen = i;
        int keep = wanted(v, i);
        if (keep) {
            int rc = to_rgb(v, out, e);
            av_frame_unref(v->frame);
            if (rc) return rc;
            *index = i;
            return OODSEG_OK;
        }
        av_frame_unref(v->frame);
    }
    *eof = 1;
    return check_end(v, e);
}

// ---- writing ---------------------------------------------------------------------------------
struct video_writer {
    char path[4096], tmp[4200];
    AVFormatContext *oc;
    AVCodecContext *enc;
    AVStream *st;
    AVFrame *frame;
    AVPacket *pkt;
    struct SwsContext *sws;
    int w, h;
    int64_t next_pts;
};

static int write_packets(video_writer *vw, err *e) {
    char m[256];
    for (;;) {
        int r = avcodec_receive_packet(vw->enc, vw->pkt);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return OODSEG_OK;
        if (r < 0) return err_set(e, OODSEG_E_IO, "%s: encoding failed (%s)", vw->path, av_msg(r, m, sizeof m));
        // One frame long (the encoder's time base is one frame): without a duration the muxer's
        // edit list would end at the last frame's start and cut that frame off.
        if (vw->pkt->duration <= 0) vw->pkt->duration = 1;
        av_packet_rescale_ts(vw->pkt, vw->enc->time_base, vw->st->time_base);
        vw->pkt->stream_index = vw->st->index;
        r = av_interleaved_write_frame(vw->oc, vw->pkt);
        if (r < 0) return err_set(e, OODSEG_E_IO, "%s: writing failed (%s)", vw->path, av_msg(r, m, sizeof m));
    }
}

// H.264 when this FFmpeg has it (Debian's does, through libx264), else MPEG-4 Part 2.
static int open_encoder(video_writer *vw, double fps, err *e) {
    char m[256];
    const AVCodec *c = avcodec_find_encoder_by_name("libx264");
    if (!c) c = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
    if (!c) return err_set(e, OODSEG_E_FORMAT, "%s: this FFmpeg has neither an H.264 nor an MPEG-4 encoder", vw->path);
    if (!(vw->st = avformat_new_stream(vw->oc, NULL)) || !(vw->enc = avcodec_alloc_context3(c)))
        return err_set(e, OODSEG_E_NOMEM, "%s: out of memory for the encoder", vw->path);
    AVRational rate = av_d2q(fps > 0 ? fps : 25, 100000);
    vw->enc->width = vw->w; vw->enc->height = vw->h;
    vw->enc->pix_fmt = AV_PIX_FMT_YUV420P;
    vw->enc->time_base = av_inv_q(rate);
    vw->enc->framerate = rate;
    vw->enc->thread_count = 1;
    // No B-frames: every frame's timestamp follows the one before, so the mp4 needs no edit list
    // (with one, some readers lose the last frame) and a cut copy keeps every frame before the cut.
    vw->enc->max_b_frames = 0;
    if (c->id == AV_CODEC_ID_MPEG4) vw->enc->bit_rate = 4000000;
    else { av_opt_set(vw->enc->priv_data, "preset", "veryfast", 0); av_opt_set(vw->enc->priv_data, "crf", "20", 0); }
    if (vw->oc->oformat->flags & AVFMT_GLOBALHEADER) vw->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int r = avcodec_open2(vw->enc, c, NULL);
    if (r < 0) return err_set(e, OODSEG_E_FORMAT, "%s: cannot open the %s encoder (%s)", vw->path, c->name, av_msg(r, m, sizeof m));
    if ((r = avcodec_parameters_from_context(vw->st->codecpar, vw->enc)) < 0)
        return err_set(e, OODSEG_E_FORMAT, "%s: encoder parameters (%s)", vw->path, av_msg(r, m, sizeof m));
    vw->st->time_base = vw->enc->time_base;
    return OODSEG_OK;
}

static void writer_free(video_writer *vw) {
    sws_freeContext(vw->sws);
    av_frame_free(&vw->frame);
    av_packet_free(&vw->pkt);
    avcodec_free_context(&vw->enc);
    if (vw->oc) {
        if (vw->oc->pb) avio_closep(&vw->oc->pb);
        avformat_free_context(vw->oc);
    }
    free(vw);
}

int video_writer_open(const char *path, int w, int h, double fps, video_writer **out, err *e) {
    char m[256];
    *out = NULL;
    video_writer *vw = err_calloc(e, 1, sizeof *vw, "a video writer");
    if (!vw) return e->code;
    snprintf(vw->path, sizeof vw->path, "%s", path);
    snprintf(vw->tmp, sizeof vw->tmp, "%s.tmp.XXXXXX", path);
    vw->w = w + (w & 1); vw->h = h + (h & 1);   // 4:2:0 needs even sizes
    av_log_set_level(AV_LOG_QUIET);
    int fd = mkstemp(vw->tmp), rc = OODSEG_OK, r;
    if (fd < 0) { rc = err_set(e, OODSEG_E_IO, "cannot write %s: %s", path, strerror(errno)); vw->tmp[0] = 0; goto fail; }
    (void)fchmod(fd, 0644);   // mkstemp makes it 0600; an output is readable like any other file
    close(fd);
    if ((r = avformat_alloc_output_context2(&vw->oc, NULL, "mp4", vw->tmp)) < 0 || !vw->oc)
        { rc = err_set(e, OODSEG_E_FORMAT, "%s: cannot make an mp4 (%s)", path, av_msg(r, m, sizeof m)); goto fail; }
    if ((rc = open_encoder(vw, fps, e))) goto fail;
    if ((r = avio_open(&vw->oc->pb, vw->tmp, AVIO_FLAG_WRITE)) < 0)
        { rc = err_set(e, OODSEG_E_IO, "cannot write %s (%s)", path, av_msg(r, m, sizeof m)); goto fail; }
    AVDictionary *opt = NULL;
    av_dict_set(&opt, "movflags", "+faststart", 0);   // the index first: a cut copy still plays up to the cut
    r = avformat_write_header(vw->oc, &opt);
    av_dict_free(&opt);
    if (r < 0) { rc = err_set(e, OODSEG_E_IO, "%s: writing the header failed (%s)", path, av_msg(r, m, sizeof m)); goto fail; }
    if (!(vw->frame = av_frame_alloc()) || !(vw->pkt = av_packet_alloc()))
        { rc = err_set(e, OODSEG_E_NOMEM, "%s: out of memory", path); goto fail; }
    vw->frame->format = AV_PIX_FMT_YUV420P;
    vw->frame->width = vw->w; vw->frame->height = vw->h;
    if (av_frame_get_buffer(vw->frame, 0) < 0) { rc = err_set(e, OODSEG_E_NOMEM, "%s: out of memory", path); goto fail; }
    *out = vw;
    return OODSEG_OK;
fail:
    if (vw->tmp[0]) unlink(vw->tmp);
    writer_free(vw);
    return rc;
}

int video_writer_add(video_writer *vw, const image *rgb, err *e) {
    if (rgb->c != 3 || rgb->w > vw->w || rgb->h > vw->h || rgb->w < vw->w - 1 || rgb->h < vw->h - 1)
        return err_set(e, OODSEG_E_ARG, "%s: a %dx%d frame in a %dx%d video", vw->path, rgb->w, rgb->h, vw->w, vw->h);
    if (av_frame_make_writable(vw->frame) < 0) return err_set(e, OODSEG_E_NOMEM, "%s: out of memory", vw->path);
    // Odd sizes: the frame is converted into the top-left corner of a black (Y 16, UV 128) picture.
    memset(vw->frame->data[0], 16, (size_t)vw->frame->linesize[0] * vw->h);
    memset(vw->frame->data[1], 128, (size_t)vw->frame->linesize[1] * (vw->h / 2));
    memset(vw->frame->data[2], 128, (size_t)vw->frame->linesize[2] * (vw->h / 2));
    vw->sws = sws_getCachedContext(vw->sws, rgb->w, rgb->h, AV_PIX_FMT_RGB24, rgb->w, rgb->h, AV_PIX_FMT_YUV420P,
                                   SWS_BILINEAR, NULL, NULL, NULL);
    if (!vw->sws) return err_set(e, OODSEG_E_FORMAT, "%s: cannot convert RGB to YUV", vw->path);
    const uint8_t *src[4] = {rgb->px, NULL, NULL, NULL};
    int stride[4] = {rgb->w * 3, 0, 0, 0};
    sws_scale(vw->sws, src, stride, 0, rgb->h, vw->frame->data, vw->frame->linesize);
    vw->frame->pts = vw->next_pts++;
    char m[256];
    int r = avcodec_send_frame(vw->enc, vw->frame);
    if (r < 0) return err_set(e, OODSEG_E_IO, "%s: encoding failed (%s)", vw->path, av_msg(r, m, sizeof m));
    return write_packets(vw, e);
}

int video_writer_close(video_writer *vw, int ok, err *e) {
    if (!vw) return OODSEG_OK;
    int rc = OODSEG_OK;
    if (ok) {
        avcodec_send_frame(vw->enc, NULL);
        rc = write_packets(vw, e);
        if (!rc && av_write_trailer(vw->oc) < 0) rc = err_set(e, OODSEG_E_IO, "%s: writing the index failed", vw->path);
    }
    if (vw->oc->pb) avio_closep(&vw->oc->pb);
    if (ok && !rc && rename(vw->tmp, vw->path) != 0) rc = err_set(e, OODSEG_E_IO, "cannot write %s: %s", vw->path, strerror(errno));
    if (!ok || rc) unlink(vw->tmp);
    writer_free(vw);
    return rc;
}

int video_read_frame(const char *path, int64_t index, image *out, err *e) {
    video_opts o = {.first = index, .last = index + 1};
    video *v;
    int64_t got = -1;
    int eof = 0;
    if (video_open(path, &o, &v, e)) return e->code;
    int rc = video_next(v, out, &got, &eof, e);
    video_close(v);
    if (rc) return rc;
    if (eof || got != index) {
        if (!eof) image_free(out);
        return err_set(e, OODSEG_E_DATA, "%s: the video has no frame %lld (its label names it); check the label's "
                       "frame index", path, (long long)index);
    }
    return OODSEG_OK;
}
