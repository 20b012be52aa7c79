// Video input and output (io/video.c, api/frames.c) and what `oodseg score` and `oodseg mine` do
// with a video: an .mp4 is made here from CamVid-OOD frames with the FFmpeg libraries; its frames
// decode to the count, indices and pixels expected (also after a seek, and with --every, --start,
// --end); a truncated copy keeps every frame before the cut and names the file and the frame; and
// the maps of score and the scores of mine on the video equal those on its decoded frames.
#include "test.h"
#include "../io/video.h"
#include "../io/npy.h"
#include "../api/frames.h"
#include "../api/score_stream.h"
#include "../api/mine.h"
#include "../api/pipeline.h"
#include "../eval/datasets.h"
#include "../eval/evaluator.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NF 6
static char video_path[1024];
static image decoded[NF];   // the frames of the whole video, decoded once

static const char *demo[3] = {"assets/demo/test_ood/0001TP_008550.png", "assets/demo/test_ood/0001TP_008610.png",
                              "assets/demo/test_ood/0001TP_008670.png"};

static int same_image(const image *a, const image *b) {
    return a->w == b->w && a->h == b->h && a->c == b->c && !memcmp(a->px, b->px, (size_t)a->w * a->h * a->c);
}

// Decodes path with o; returns the count (at most cap), indices in idx, frames in out.
static int decode(const char *path, const video_opts *o, image *out, int64_t *idx, int cap, err *e) {
    video *v;
    if (video_open(path, o, &v, e)) return -1;
    int n = 0;
    for (;;) {
        image im;
        int64_t i;
        int eof;
        if (video_next(v, &im, &i, &eof, e)) break;
        if (eof) break;
        if (n < cap) { out[n] = im; idx[n] = i; n++; }
        else image_free(&im);
    }
    video_close(v);
    return n;
}

TEST(an_mp4_made_with_the_libraries_decodes_to_its_frames) {
    image src[3] = {{0}};
    err e = {0};
    for (int i = 0; i < 3; i++) REQUIRE(image_load_rgb(demo[i], &src[i], &e) == 0, "%s", e.msg);
    snprintf(video_path, sizeof video_path, "%s/clip.mp4", t_tmpdir());
    video_writer *vw;
    REQUIRE(video_writer_open(video_path, src[0].w, src[0].h, 5, &vw, &e) == 0, "%s", e.msg);
    for (int i = 0; i < NF; i++) REQUIRE(video_writer_add(vw, &src[i % 3], &e) == 0, "%s", e.msg);
    REQUIRE(video_writer_close(vw, 1, &e) == 0, "%s", e.msg);
    int64_t idx[NF + 2];
    err_clear(&e);
    int n = decode(video_path, NULL, decoded, idx, NF, &e);
    REQUIRE(n == NF && e.code == 0, "decoded %d frames: %s", n, e.msg);
    for (int i = 0; i < NF; i++) {
        CHECK(idx[i] == i, "frame %d has index %lld", i, (long long)idx[i]);
        CHECK(decoded[i].w == src[0].w && decoded[i].h == src[0].h);
        // lossy but close: the mean absolute difference to the source frame stays small
        double d = 0;
        for (int64_t p = 0; p < (int64_t)src[0].w * src[0].h * 3; p++) d += abs(decoded[i].px[p] - src[i % 3].px[p]);
        CHECK(d / ((double)src[0].w * src[0].h * 3) < 6, "frame %d: mean |diff| %.2f", i, d / ((double)src[0].w * src[0].h * 3));
    }
    for (int i = 0; i < 3; i++) image_free(&src[i]);
}

TEST(every_start_end_and_a_seek_keep_the_frames_asked_for) {
    REQUIRE(decoded[0].px, "no video");
    image f[NF];
    int64_t idx[NF];
    err e = {0};
    video_opts ev = {2, 0, 0, 0, -1};
    int n = decode(video_path, &ev, f, idx, NF, &e);
    CHECK(n == 3 && idx[0] == 0 && idx[1] == 2 && idx[2] == 4, "every 2: %d frames", n);
    for (int i = 0; i < n; i++) { CHECK(same_image(&f[i], &decoded[idx[i]])); image_free(&f[i]); }
    video_opts se = {1, 0.4, 1.0, 0, -1};   // 5 fps: t = 0.4, 0.6, 0.8
    n = decode(video_path, &se, f, idx, NF, &e);
    CHECK(n == 3 && idx[0] == 2 && idx[2] == 4, "start 0.4 end 1.0: %d frames from %lld", n, n ? (long long)idx[0] : -1LL);
    for (int i = 0; i < n; i++) image_free(&f[i]);
    video_opts sk = {1, 0, 0, 3, -1};       // a later rank's share: seek, then decode forward
    n = decode(video_path, &sk, f, idx, NF, &e);
    CHECK(n == 3 && idx[0] == 3, "first 3: %d frames", n);
    for (int i = 0; i < n; i++) { CHECK(same_image(&f[i], &decoded[idx[i]]), "frame %lld after a seek", (long long)idx[i]); image_free(&f[i]); }
    char name[FRAME_NAME];
    frame_name("some/dir/clip.mp4", 42, name, sizeof name);
    CHECK(!strcmp(name, "clip_f000042"), "%s", name);
}

TEST(a_truncated_copy_keeps_the_frames_before_the_cut_and_names_file_and_frame) {
    REQUIRE(decoded[0].px, "no video");
    size_t len;
    char *all = t_slurp(video_path, &len);
    REQUIRE(all);
    char cut[1100];
    snprintf(cut, sizeof cut, "%s/cut.mp4", t_tmpdir());
    FILE *f = fopen(cut, "wb");
    REQUIRE(f);
    fwrite(all, 1, len * 6 / 10, f);
    fclose(f);
    free(all);
    image fr[NF];
    int64_t idx[NF];
    err e = {0};
    int n = decode(cut, NULL, fr, idx, NF, &e);
    CHECK(n >= 1 && n < NF, "%d frames kept", n);
    CHECK(e.code == OODSEG_E_FORMAT, "code %d: %s", e.code, e.msg);
    char want[64];
    snprintf(want, sizeof want, "frame %d", n);
    CHECK(strstr(e.msg, cut) && strstr(e.msg, want), "the message names the file and %s: %s", want, e.msg);
    for (int i = 0; i < n; i++) { CHECK(same_image(&fr[i], &decoded[i]), "frame %d before the cut", i); image_free(&fr[i]); }
}

static int open_pipe(pipeline *p, err *e) {
    pipeline_config c;
    pipeline_config_default(&c);
    snprintf(c.size, sizeof c.size, "256x192");
    snprintf(c.methods, sizeof c.methods, "kmeans");
    c.threads = 1;
    return pipeline_open(p, &c, e);
}

TEST(score_on_the_video_equals_score_on_its_decoded_frames) {
    REQUIRE(decoded[0].px, "no video");
    pipeline p;
    err e = {0};
    if (open_pipe(&p, &e)) SKIP("no default model: %s", e.msg);
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/score", t_tmpdir());
    mkdir(dir, 0777);
    char *paths[1] = {video_path};
    score_stream_opts so = {.dir = dir, .video_out = 1, .keep_going = 1};
    score_stream_summary ss;
    REQUIRE(score_stream(&p, paths, 1, &so, &ss, &e) == 0, "%s", e.msg);
    CHECK(ss.done == NF && ss.failed == 0, "%d done, %d failed", ss.done, ss.failed);
    for (int i = 0; i < NF; i++) {
        pipeline_out o;
        REQUIRE(pipeline_run(&p, &decoded[i], &o, &e) == 0, "%s", e.msg);
        char path[1300];
        snprintf(path, sizeof path, "%s/clip_f%06d_kmeans_score.npy", dir, i);
        npy_array a;
        REQUIRE(npy_read(path, &a, &e) == 0, "%s", e.msg);
        CHECK(a.numel == (int64_t)o.w * o.h && !memcmp(a.data, o.scores[0], (size_t)a.numel * sizeof(float)), "frame %d's map differs", i);
        npy_free(&a);
        pipeline_out_free(&o);
    }
    char ov[1300];
    snprintf(ov, sizeof ov, "%s/clip_overlay.mp4", dir);
    video *v;
    REQUIRE(video_open(ov, NULL, &v, &e) == 0, "%s", e.msg);
    CHECK(video_frame_count(v) == NF, "the overlay video has %lld frames", (long long)video_frame_count(v));
    video_close(v);
    pipeline_close(&p);
}

// mine's per-frame scores (the columns after the name) of a frames.tsv, one line a frame.
static char *score_columns(const char *tsv) {
    size_t len;
    char *s = t_slurp(tsv, &len), *out = calloc(len + 1, 1);
    if (!s || !out) { free(s); free(out); return NULL; }
    char *save = NULL, *o = out;
    for (char *l = strtok_r(s, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (l[0] == '#') continue;
        char *c = l;
        for (int k = 0; k < 4 && c; k++) { c = strchr(c, '\t'); if (c) c++; }   // ok, input, index, name
        if (c) o += sprintf(o, "%s\n", c);
    }
    free(s);
    return out;
}

TEST(mine_on_the_video_scores_its_frames_as_on_the_decoded_frames) {
    REQUIRE(decoded[0].px, "no video");
    pipeline p;
    err e = {0};
    if (open_pipe(&p, &e)) SKIP("no default model: %s", e.msg);
    char *pngs[NF];
    for (int i = 0; i < NF; i++) {
        pngs[i] = malloc(1200);
        snprintf(pngs[i], 1200, "%s/dec_%d.png", t_tmpdir(), i);
        REQUIRE(image_save_png(pngs[i], &decoded[i], &e) == 0, "%s", e.msg);
    }
    dist d = {0, 1, 0};
    mine_opts o = {.top = 3, .by = MINE_AREA, .rule = {.use_clusters = 1, .percentile = 99, .min_region = 0.001}};
    char a[1100], b[1100], ta[1200], tb[1200];
    snprintf(a, sizeof a, "%s/mine_video", t_tmpdir());
    snprintf(b, sizeof b, "%s/mine_frames", t_tmpdir());
    mine_summary s;
    char *paths[1] = {video_path};
    o.out_dir = a;
    REQUIRE(mine_run(&d, &p, paths, 1, &o, &s, &e) == 0, "%s", e.msg);
    CHECK(s.frames == NF && s.n_top == 3, "%lld frames, %d kept", s.frames, s.n_top);
    o.out_dir = b;
    REQUIRE(mine_run(&d, &p, pngs, NF, &o, &s, &e) == 0, "%s", e.msg);
    snprintf(ta, sizeof ta, "%s/frames.tsv", a);
    snprintf(tb, sizeof tb, "%s/frames.tsv", b);
    char *ca = score_columns(ta), *cb = score_columns(tb);
    REQUIRE(ca && cb);
    CHECK(!strcmp(ca, cb), "scores differ:\n%s---\n%s", ca, cb);
    free(ca); free(cb);
    for (int i = 0; i < NF; i++) free(pngs[i]);
    pipeline_close(&p);
}

// eval's generic layout with --images VIDEO: the frames that have labels clip_f<index>.png are
// evaluated, each decoded from the video, with the same metrics as the same frames saved as PNGs.
static int eval_generic(pipeline *p, const char *images, const char *labels, double *ap, int *n, err *e) {
    ds_generic g = {.images = images, .labels = labels, .ood = "12", .ignore = "11"};
    dataset ds = {0};
    evaluator *ev = NULL;
    evaluator_opts eo;
    evaluator_opts_default(&eo, 0);
    const char *names[1] = {"kmeans"};
    int rc = dataset_open("generic", &g, &ds, e);
    if (!rc) rc = evaluator_new(&ev, 1, names, &eo, e);
    for (int i = 0; !rc && i < ds.n; i++) rc = pipeline_eval_item(p, &ds, i, ev, NULL, e);
    if (!rc) rc = evaluator_finish(ev, NULL, NULL, e);
    if (!rc) { *ap = evaluator_result(ev, 0)->ap; *n = ds.n; }
    evaluator_free(ev);
    dataset_free(&ds);
    return rc;
}

TEST(eval_generic_on_the_video_equals_eval_on_its_decoded_frames) {
    REQUIRE(decoded[0].px, "no video");
    pipeline p;
    err e = {0};
    if (open_pipe(&p, &e)) SKIP("no default model: %s", e.msg);
    const char *annot[3] = {"assets/demo/testannot_ood/0001TP_008550.png", "assets/demo/testannot_ood/0001TP_008610.png",
                            "assets/demo/testannot_ood/0001TP_008670.png"};
    char labs[1100], pngs[1100], path[1300];
    snprintf(labs, sizeof labs, "%s/vlabels", t_tmpdir());
    snprintf(pngs, sizeof pngs, "%s/vframes", t_tmpdir());
    mkdir(labs, 0777);
    mkdir(pngs, 0777);
    const int keep[3] = {1, 3, 4};   // a sparse few frames are annotated
    for (int k = 0; k < 3; k++) {
        REQUIRE(t_sh("cp '%s' '%s/clip_f%06d.png'", annot[keep[k] % 3], labs, keep[k]) == 0);
        snprintf(path, sizeof path, "%s/clip_f%06d.png", pngs, keep[k]);
        REQUIRE(image_save_png(path, &decoded[keep[k]], &e) == 0, "%s", e.msg);
    }
    double ap_video = -1, ap_png = -2;
    int nv = 0, np = 0;
    REQUIRE(eval_generic(&p, video_path, labs, &ap_video, &nv, &e) == 0, "%s", e.msg);
    REQUIRE(eval_generic(&p, pngs, labs, &ap_png, &np, &e) == 0, "%s", e.msg);
    CHECK(nv == 3 && np == 3, "%d video frames, %d images", nv, np);
    CHECK(ap_video == ap_png, "AP %.17g on the video, %.17g on its frames", ap_video, ap_png);
    // a label naming a frame the video does not have is an error naming the file and the frame
    REQUIRE(t_sh("cp '%s' '%s/clip_f000099.png'", annot[0], labs) == 0);
    CHECK(eval_generic(&p, video_path, labs, &ap_video, &nv, &e) == OODSEG_E_DATA && strstr(e.msg, "99") &&
          strstr(e.msg, "clip"), "%s", e.msg);
    pipeline_close(&p);
}

int main(void) {
    RUN(an_mp4_made_with_the_libraries_decodes_to_its_frames);
    RUN(every_start_end_and_a_seek_keep_the_frames_asked_for);
    RUN(a_truncated_copy_keeps_the_frames_before_the_cut_and_names_file_and_frame);
    RUN(score_on_the_video_equals_score_on_its_decoded_frames);
    RUN(mine_on_the_video_scores_its_frames_as_on_the_decoded_frames);
    RUN(eval_generic_on_the_video_equals_eval_on_its_decoded_frames);
    for (int i = 0; i < NF; i++) image_free(&decoded[i]);
    return t_finish("test_video");
}
