// `oodseg score`: anomaly maps and pictures for images or folders; `oodseg fit-centroids` and
// `oodseg calibrate`: statistics of in-distribution images for the centroid method and for a
// calibrated tau. The work is the library's pipeline (api/pipeline.h).
#include "cli.h"
#include "../api/score_stream.h"
#include "../io/video.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct score_flags {
    int keep_going;        // -1: the default (on when a folder is given)
    int no_clobber;
    const char *scale;
    int video_out;
    frame_opts frames;
} score_flags;

static int score_extra(void *ctx, int argc, char **argv, int i, err *e) {
    score_flags *f = ctx;
    const char *k = argv[i];
    if (!strcmp(k, "--keep-going")) { f->keep_going = 1; return 1; }
    if (!strcmp(k, "--fail-fast")) { f->keep_going = 0; return 1; }
    if (!strcmp(k, "--no-clobber")) { f->no_clobber = 1; return 1; }
    if (!strcmp(k, "--video-out")) { f->video_out = 1; return 1; }
    if (!strcmp(k, "--every") || !strcmp(k, "--start") || !strcmp(k, "--end")) {
        char *end;
        double v = i + 1 < argc ? strtod(argv[i + 1], &end) : NAN;
        if (i + 1 >= argc || *end || end == argv[i + 1] || !isfinite(v) || v < (k[2] == 'e' && k[3] == 'v' ? 1 : 0)) {
            err_set(e, OODSEG_E_ARG, "%s needs a number (--every N >= 1 frames; --start/--end in seconds >= 0)", k);
            return -1;
        }
        if (!strcmp(k, "--every")) f->frames.every = (int)v;
        else if (!strcmp(k, "--start")) f->frames.start = v;
        else f->frames.end = v;
        return 2;
    }
    if (!strcmp(k, "--scale")) {
        if (i + 1 >= argc) { err_set(e, OODSEG_E_ARG, "--scale needs a value: image, fixed:LO,HI or calibrated:FILE"); return -1; }
        f->scale = argv[i + 1];
        return 2;
    }
    return 0;
}

// Before anything is written: no two inputs with one stem, and with --no-clobber no output there.
static int check_outputs(const pipeline *p, char **paths, int n, const char *dir, int no_clobber, err *e) {
    if (cli_check_stems(paths, n, e)) return e->code;
    for (int i = 0; no_clobber && i < n; i++) {
        char stem[512], first[4400];
        cli_stem(paths[i], stem, sizeof stem);
        if (pipeline_outputs_exist(p, dir, stem, first, sizeof first))
            return err_set(e, OODSEG_E_IO, "--no-clobber: %s exists (output of %s); nothing was written", first, paths[i]);
    }
    return OODSEG_OK;
}

typedef struct score_progress { int total, videos; double t0; } score_progress;

static void on_fail(void *ctx, const char *name, const err *e) {
    (void)ctx;
    fprintf(stderr, "oodseg: %s (skipped; going on)\n", e->msg[0] ? e->msg : name);
}

// Images: the bar of cli_progress; videos (no count known ahead): a line every 25 frames.
static void on_frame(void *ctx, const char *name, int done) {
    const score_progress *sp = ctx;
    if (!sp->videos) cli_progress("score", done, sp->total, sp->t0);
    else if (done % 25 == 0) fprintf(stderr, "score: %d frames, %.1f s (%s)\n", done, omp_get_wtime() - sp->t0, name);
}

int cmd_score(int argc, char **argv) {
    cli_common c;
    err e = {0};
    pipeline p = {0};
    score_flags fl = {-1, 0, NULL, 0, {0}};
    char **paths = NULL;
    int n_paths = 0, rc, any_folder = 0, failed = 0;
    err first = {0};
    if ((rc = cli_parse(argc, argv, 2, "score", &c, score_extra, &fl, &e))) goto done;
    if (!c.out_dir) { rc = err_set(&e, OODSEG_E_ARG, "score: give an output folder with -o DIR (see oodseg score --help)"); goto done; }
    if (!c.cfg.methods[0]) snprintf(c.cfg.methods, sizeof c.cfg.methods, "kmeans");   // the paper's method
    if ((rc = cli_collect_inputs(c.pos, c.n_pos, 0, &paths, &n_paths, &any_folder, &e))) goto done;
    if ((rc = pipeline_open(&p, &c.cfg, &e))) goto done;
    if ((rc = pipeline_set_scale(&p, fl.scale, &e))) goto done;
    if ((rc = check_outputs(&p, paths, n_paths, c.out_dir, fl.no_clobber, &e))) goto done;
    if ((rc = cli_mkdir_p(c.out_dir, &e))) goto done;
    score_progress sp = {n_paths, 0, omp_get_wtime()};
    for (int i = 0; i < n_paths; i++) sp.videos += video_is_video_name(paths[i]);
    double t0 = sp.t0;
    score_stream_opts so = {c.out_dir, fl.frames, fl.video_out, fl.keep_going >= 0 ? fl.keep_going : any_folder || sp.videos,
                            on_fail, on_frame, &sp};
    score_stream_summary ss;
    rc = score_stream(&p, paths, n_paths, &so, &ss, &e);
    failed = ss.failed;
    first = ss.first_failure;
    if (rc) goto done;
    fprintf(stderr, "scored %d of %d %s%s with %s (%s) into %s (%.2f s; decoding %.2f s on its own thread)", ss.done,
            ss.done + failed, sp.videos ? "frame" : "image", ss.done + failed == 1 ? "" : "s", p.m->desc.arch,
            c.cfg.methods, c.out_dir, omp_get_wtime() - t0, ss.seconds_decode);
    if (failed) fprintf(stderr, "; %d FAILED (first: %s)\n", failed, first.msg);
    else fprintf(stderr, "\n");
done:
    pipeline_close(&p);
    cli_free_list(paths, n_paths);
    cli_free(&c);
    if (rc) return cli_fail(&e);
    return failed ? (first.code ? first.code : OODSEG_E_INTERNAL) : 0;   // some inputs failed (--keep-going)
}

// fit-centroids and calibrate run the network over in-distribution images and accumulate
// statistics in an ood_stats, then save it.
static int run_stats(int argc, char **argv, const char *what) {
    cli_common c;
    err e = {0};
    char **paths = NULL;
    int n_paths = 0, rc;
    pipeline p = {0};
    ood_stats *st = NULL;
    if ((rc = cli_parse(argc, argv, 2, what, &c, NULL, NULL, &e))) goto done;
    if (!c.out_dir) { rc = err_set(&e, OODSEG_E_ARG, "%s: give the output file with -o FILE (see oodseg %s --help)", what, what); goto done; }
    if ((rc = cli_collect_images(c.pos, c.n_pos, &paths, &n_paths, NULL, &e))) goto done;
    // The statistics need the taps and the logits, not a method: the plainest one is opened.
    snprintf(c.cfg.methods, sizeof c.cfg.methods, "maxlogit");
    if ((rc = pipeline_open(&p, &c.cfg, &e))) goto done;
    if ((rc = ood_stats_new(&st, p.m->desc.num_id, c.cfg.oo.km.k, &e))) goto done;
    double t0 = omp_get_wtime();
    for (int i = 0; i < n_paths && !rc; i++) {
        image img = {0};
        if ((rc = image_load_rgb_mem(paths[i], p.m->max_memory, &img, &e))) break;
        if ((rc = pipeline_stats_add(&p, &img, st, &e))) err_prefix(&e, "%s: ", paths[i]);
        image_free(&img);
        cli_progress(what, i + 1, n_paths, t0);
    }
    if (!rc) rc = ood_stats_save(st, &p.m->ctx, c.out_dir, &e);
    if (!rc) fprintf(stderr, "%s: %d images -> %s\n", what, n_paths, c.out_dir);
done:
    pipeline_close(&p);
    ood_stats_free(st);
    cli_free_list(paths, n_paths);
    cli_free(&c);
    return rc ? cli_fail(&e) : 0;
}

int cmd_fit_centroids(int argc, char **argv) { return run_stats(argc, argv, "fit-centroids"); }
int cmd_calibrate(int argc, char **argv) { return run_stats(argc, argv, "calibrate"); }
