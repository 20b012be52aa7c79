// `oodseg score` over images and videos (see score_stream.h).
#include "score_stream.h"
#include "../io/video.h"
#include <stdio.h>
#include <string.h>

// The open overlay video of one input.
typedef struct overlay_out { video_writer *vw; int input; } overlay_out;

static int overlay_add(overlay_out *ov, const pipeline *p, const frame_item *it, const pipeline_out *po,
                       const char *dir, err *e) {
    pictures_in in;
    char rule[160];
    image heat = {0}, over = {0};
    pipeline_pictures_in(p, &it->img, po, 0, &in, rule, sizeof rule);
    int rc = pictures_heat(&in, &heat, &over, e);
    if (!rc && ov->vw && ov->input != it->input) {
        rc = video_writer_close(ov->vw, 1, e);
        ov->vw = NULL;
    }
    if (!rc && !ov->vw) {
        char stem[FRAME_NAME], path[4400];
        frame_name(it->source, -1, stem, sizeof stem);
        snprintf(path, sizeof path, "%s/%s_overlay.mp4", dir, stem);
        rc = video_writer_open(path, over.w, over.h, it->fps, &ov->vw, e);
        ov->input = it->input;
    }
    if (!rc) rc = video_writer_add(ov->vw, &over, e);
    image_free(&heat);
    image_free(&over);
    return rc;
}

int score_stream(pipeline *p, char *const *paths, int n, const score_stream_opts *o, score_stream_summary *s, err *e) {
    memset(s, 0, sizeof *s);
    frame_source *src;
    frame_opts fo = o->frames;
    fo.max_memory = p->m->max_memory;
    if (frame_source_open(paths, n, &fo, &src, e)) return e->code;
    overlay_out ov = {NULL, -1};
    frame_item it;
    int rc = OODSEG_OK;
    while (!rc && !frame_source_next(src, &it)) {
        pipeline_out po = {0};
        int bad = it.failed ? it.e.code : OODSEG_OK;
        if (!bad && (bad = pipeline_run(p, &it.img, &po, &it.e))) err_prefix(&it.e, "%s: ", it.name);
        if (!bad) rc = pipeline_save(p, &it.img, &po, o->dir, it.name, e);
        if (!bad && !rc && o->video_out && it.index >= 0) rc = overlay_add(&ov, p, &it, &po, o->dir, e);
        pipeline_out_free(&po);
        if (bad) {
            if (!s->failed++) s->first_failure = it.e;
            if (!o->keep_going) { *e = it.e; rc = e->code; }
            else if (o->on_fail) o->on_fail(o->ctx, it.name, &it.e);
        } else if (!rc) s->done++;
        if (o->on_frame) o->on_frame(o->ctx, it.name, s->done + s->failed);
        frame_item_free(&it);
    }
    frame_source_times(src, &s->seconds_decode, &s->seconds_wait);
    frame_source_close(src);
    int rc2 = video_writer_close(ov.vw, rc == OODSEG_OK, rc ? NULL : e);
    return rc ? rc : rc2;
}
