// `oodseg score`: anomaly maps and pictures for images or folders; `oodseg fit-centroids` and
// `oodseg calibrate`: statistics of in-distribution images for the centroid method and for a
// calibrated tau. The work is the library's pipeline (api/pipeline.h).
#include "cli.h"
#include "../api/score_stream.h"
#include "../core/interrupt.h"
#include "score_state.h"
#include "../io/video.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

typedef struct score_flags {
    int keep_going;        // -1: the default (on when a folder is given)
    int no_clobber;
    const char *scale;
    int video_out;
    int no_npy;
    int resume;
    frame_opts frames;
} score_flags;

static int score_extra(void *ctx, int argc, char **argv, int i, err *e) {
    score_flags *f = ctx;
    const char *k = argv[i];
    if (!strcmp(k, "--keep-going")) { f->keep_going = 1; return 1; }
    if (!strcmp(k, "--fail-fast")) { f->keep_going = 0; return 1; }
    if (!strcmp(k, "--no-clobber")) { f->no_clobber = 1; return 1; }
    if (!strcmp(k, "--video-out")) { f->video_out = 1; return 1; }
    if (!strcmp(k, "--no-npy")) { f->no_npy = 1; return 1; }
    if (!strcmp(k, "--resume")) { f->resume = 1; return 1; }
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

// Before anything is written: no two inputs with one stem, and with --no-clobber no output there
// (but those of the images a resumed run skips).
static int check_outputs(const pipeline *p, char **paths, int n, const char *dir, int no_clobber,
                         const score_state *st, err *e) {
    if (cli_check_stems(paths, n, e)) return e->code;
    for (int i = 0; no_clobber && i < n; i++) {
        char stem[512], first[4400];
        cli_stem(paths[i], stem, sizeof stem);
        if (score_state_was_done(st, stem)) continue;
        if (pipeline_outputs_exist(p, dir, stem, first, sizeof first))
            return err_set(e, OODSEG_E_IO, "--no-clobber: %s exists (output of %s); nothing was written", first, paths[i]);
    }
    return OODSEG_OK;
}

// What decides the outputs, for the state file: a resumed run must have all of it unchanged (the
// files the method options name too, which ood_options_json leaves out). The thread count and
// --keep-going are left out (the files are the same with any).
static void options_text(const cli_common *c, const pipeline *p, const score_flags *fl, char *buf, size_t n) {
    const pipeline_config *g = &c->cfg;
    char oo[4096];
    ood_options_json(&p->opt, oo, sizeof oo);
    snprintf(buf, n, "model=%s;backbone=%s;size=%s;id-channels=%s;offset-scale=%g;mode=%s;crop=%s;stride=%s;tta=%d;"
             "methods=%s;scale=%s;pictures=%s;npy=%s;every=%d;start=%g;end=%g;centroids=%s;tau-file=%s;method-options=%s",
             g->model, g->backbone, g->size, g->id_channels, g->offset_scale, g->mode, g->crop, g->stride, g->tta,
             g->methods, fl->scale ? fl->scale : "image", g->pictures == PICTURES_NONE ? "none" : pictures_format_ext(g->pictures),
             g->no_npy ? "off" : "on", fl->frames.every, fl->frames.start, fl->frames.end, g->oo.centroids_file,
             g->oo.tau_file, oo);
}

typedef struct score_progress {
    int total, videos;
    double t0;
    const pipeline *p;
    const char *dir;
    const pipeline_save_opts *save;
    score_state *st;
    int resume, nomem;
    int test_raise, test_signal, test_pause, test_hold;   // OODSEG_TEST_INTERRUPT_AFTER, OODSEG_TEST_PAUSE_AFTER
} score_progress;

static void on_fail(void *ctx, const char *name, const err *e) {
    (void)ctx;
    fprintf(stderr, "oodseg: %s (skipped; going on)\n", e->msg[0] ? e->msg : name);
}

// The tests' hooks, read from the environment by the CLI alone (the library has no such thing):
// OODSEG_TEST_INTERRUPT_AFTER=K[:TERM] raises the cancel flag as SIGINT (SIGTERM) would once K
// images are reported; OODSEG_TEST_PAUSE_AFTER=K[:hold] waits there (up to 60 s) for a real
// signal, so a test can send one while the run is surely in progress (:hold: and then 60 s more,
// for a second signal).
static void test_hooks(score_progress *sp) {
    const char *a = getenv("OODSEG_TEST_INTERRUPT_AFTER"), *b = getenv("OODSEG_TEST_PAUSE_AFTER");
    if (a && *a) {
        sp->test_raise = atoi(a);
        sp->test_signal = strstr(a, ":TERM") ? SIGTERM : SIGINT;
    }
    if (b && *b) {
        sp->test_pause = atoi(b);
        sp->test_hold = strstr(b, ":hold") != NULL;
    }
}

static void test_at(const score_progress *sp, int done) {
    if (sp->test_raise > 0 && done == sp->test_raise) interrupt_raise_for_test(sp->test_signal);
    if (sp->test_pause > 0 && done == sp->test_pause) {
        for (int i = 0; i < 6000 && !*interrupt_flag(); i++) usleep(10000);
        for (int i = 0; i < 6000 && sp->test_hold; i++) usleep(10000);   // a long image: for a second signal
    }
}

// Images: the bar of cli_progress; videos (no count known ahead): a line every 25 frames.
static void on_frame(void *ctx, const char *name, int done) {
    const score_progress *sp = ctx;
    if (!sp->videos) cli_progress("score", done, sp->total, sp->t0);
    else if (done % 25 == 0) fprintf(stderr, "score: %d frames, %.1f s (%s)\n", done, omp_get_wtime() - sp->t0, name);
    test_at(sp, done);
}

static void on_saved(void *ctx, const char *name) {
    score_progress *sp = ctx;
    if (score_state_add(sp->st, name)) sp->nomem = 1;
}

// --resume: an image the interrupted run finished, whose files are all still there.
static int skip_done(void *ctx, const char *name) {
    const score_progress *sp = ctx;
    return sp->resume && score_state_was_done(sp->st, name) && pipeline_outputs_complete(sp->p, sp->save, sp->dir, name);
}

// After an interrupted run (or a resumed one that stopped): the state, and how to go on.
static int save_state(const score_state *st, const score_stream_summary *ss, int interrupted, err *e) {
    err e2 = {0};
    if (score_state_save(st, &e2)) {
        fprintf(stderr, "oodseg: %s; --resume cannot continue this run\n", e2.msg);
        return interrupted ? 0 : e->code;
    }
    if (interrupted)
        fprintf(stderr, "score: interrupted: %d image%s finished and written (%d in all with earlier runs); "
                "no partial file left. Run the same command with --resume to continue.\n",
                ss->done, ss->done == 1 ? "" : "s", st->n_done);
    return 0;
}

static void summary_line(const score_stream_summary *ss, const score_progress *sp, const pipeline *p, const cli_common *c) {
    int n = ss->done + ss->failed + ss->skipped;
    fprintf(stderr, "scored %d of %d %s%s with %s (%s) into %s (%.2f s; network %.2f s on %d forward thread%s; "
            "writing %.2f s and decoding %.2f s on their own threads)", ss->done, n, sp->videos ? "frame" : "image",
            n == 1 ? "" : "s", p->m->desc.arch, c->cfg.methods, c->out_dir, omp_get_wtime() - sp->t0,
            ss->seconds_network, ss->forward_threads, ss->forward_threads == 1 ? "" : "s", ss->seconds_write,
            ss->seconds_decode);
    if (ss->skipped) fprintf(stderr, "; %d done before (--resume)", ss->skipped);
    if (ss->failed) fprintf(stderr, "; %d FAILED (first: %s)\n", ss->failed, ss->first_failure.msg);
    else fprintf(stderr, "\n");
}

static int run_score(cli_common *c, score_flags *fl, char **paths, int n_paths, int any_folder, err *e) {
    pipeline p = {0};
    score_state st;
    char opts[20480];   // options_text: the paths and the method options at their longest
    int rc;
    score_state_init(&st, c->out_dir, opts, paths, n_paths);
    if ((rc = pipeline_open(&p, &c->cfg, e))) goto done;
    if ((rc = pipeline_set_scale(&p, fl->scale, e))) goto done;
    options_text(c, &p, fl, opts, sizeof opts);
    if (fl->resume && fl->video_out) {
        rc = err_set(e, OODSEG_E_ARG, "--resume cannot continue an overlay video (--video-out): run again without --resume");
        goto done;
    }
    if (fl->resume && (rc = score_state_load(&st, e))) goto done;
    if ((rc = check_outputs(&p, paths, n_paths, c->out_dir, fl->no_clobber, &st, e))) goto done;
    if ((rc = cli_mkdir_p(c->out_dir, e))) goto done;
    pipeline_save_opts save = {c->cfg.pictures, c->cfg.no_npy};
    score_progress sp = {n_paths, 0, omp_get_wtime(), &p, c->out_dir, &save, &st, fl->resume, 0, 0, 0, 0, 0};
    test_hooks(&sp);
    for (int i = 0; i < n_paths; i++) sp.videos += video_is_video_name(paths[i]);
    score_stream_opts so = {c->out_dir, fl->frames, fl->video_out, fl->keep_going >= 0 ? fl->keep_going : any_folder || sp.videos,
                            on_fail, on_frame, &sp, save, 0, interrupt_flag(), skip_done, on_saved};
    score_stream_summary ss;
    rc = score_stream(&p, paths, n_paths, &so, &ss, e);
    if (sp.nomem) fprintf(stderr, "oodseg: out of memory recording the finished images; --resume will redo some\n");
    if (rc == OODSEG_E_INTERRUPTED) {
        save_state(&st, &ss, 1, e);
        int sig = *interrupt_flag();
        rc = 128 + (sig ? sig : SIGINT);
        goto done;
    }
    if (rc && fl->resume) save_state(&st, &ss, 0, e);   // keep what this run added for the next --resume
    if (rc) goto done;
    if (fl->resume) score_state_remove(&st);
    summary_line(&ss, &sp, &p, c);
    if (ss.failed) {   // some inputs failed (--keep-going)
        *e = ss.first_failure;
        rc = -(ss.first_failure.code ? ss.first_failure.code : OODSEG_E_INTERNAL);
    }
done:
    pipeline_close(&p);
    score_state_free(&st);
    return rc;
}

int cmd_score(int argc, char **argv) {
    cli_common c;
    err e = {0};
    score_flags fl = {-1, 0, NULL, 0, 0, 0, {0}};
    char **paths = NULL;
    int n_paths = 0, rc, any_folder = 0;
    if ((rc = cli_parse(argc, argv, 2, "score", &c, score_extra, &fl, &e))) goto done;
    if (!c.out_dir) { rc = err_set(&e, OODSEG_E_ARG, "score: give an output folder with -o DIR (see oodseg score --help)"); goto done; }
    if (!c.cfg.methods[0]) snprintf(c.cfg.methods, sizeof c.cfg.methods, "kmeans");   // the paper's method
    if (fl.no_npy) c.cfg.no_npy = 1;
    if ((rc = cli_collect_inputs(c.pos, c.n_pos, 0, &paths, &n_paths, &any_folder, &e))) goto done;
    rc = run_score(&c, &fl, paths, n_paths, any_folder, &e);
done:
    cli_free_list(paths, n_paths);
    cli_free(&c);
    if (rc > 128) return rc;    // interrupted: 128 + the signal's number, the state is saved
    if (rc < 0) return -rc;     // some inputs failed with --keep-going: their summary is printed
    return rc ? cli_fail(&e) : 0;
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
