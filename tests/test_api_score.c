// The public API's whole job: scoring with every method (bit-identical to `oodseg score`), two
// scorers with different thread counts in two host threads, exact metrics, the evaluator with a
// dataset's label convention, and datasets. Only include/oodseg.h is used, except io/npy.h to read
// the CLI's score maps back.
#include "test.h"
#include "../include/oodseg.h"
#include "../io/npy.h"
#include "../io/image.h"
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_cli[4096];
#define DEMO_IMAGE "data/camvid-ood/test_ood/0001TP_008550.png"

static const char *default_model_or_null(void) {
    oodseg_status st;
    return oodseg_default_model(&st);
}

TEST(score_matches_cli_for_every_method) {
    const char *model = default_model_or_null();
    if (!model) SKIP("no default model (oodseg_default_model found none)");
    char mpath[4096];
    snprintf(mpath, sizeof mpath, "%s", model);
    ASSET_OR_SKIP(img, DEMO_IMAGE);
    ASSET_OR_SKIP(img2, "data/camvid-ood/test_ood/0001TP_008610.png");
    const char *dir = t_tmpdir();
    char cent[4200], out[4200];
    snprintf(cent, sizeof cent, "%s/centroids.txt", dir);
    snprintf(out, sizeof out, "%s/cli", dir);
    REQUIRE(t_sh("'%s' fit-centroids --model '%s' -o '%s' '%s' '%s' 2>/dev/null", g_cli, mpath, cent, img, img2) == 0);
    const char *methods = "msp,maxlogit,entropy,energy,kmeans,centroid";
    REQUIRE(t_sh("'%s' score --model '%s' --method %s --centroids '%s' --k 8 -o '%s' '%s' 2>/dev/null", g_cli,
                 mpath, methods, cent, out, img) == 0);
    oodseg_status st;
    oodseg_model *m;
    oodseg_scorer *s;
    oodseg_maps *maps;
    REQUIRE(oodseg_model_open(mpath, NULL, &m, &st) == OODSEG_OK, "%s", st.message);
    const char *opts[] = {"centroids", cent, "k", "8", NULL};
    REQUIRE(oodseg_scorer_open(m, methods, opts, &s, &st) == OODSEG_OK, "%s", st.message);
    REQUIRE(oodseg_score_image(s, img, &maps, &st) == OODSEG_OK, "%s", st.message);
    REQUIRE(maps->n_methods == 6 && maps->clusters && maps->num_clusters == 8 && maps->seg);
    for (int i = 0; i < maps->n_methods; i++) {
        char p[4400];
        snprintf(p, sizeof p, "%s/0001TP_008550_%s_score.npy", out, maps->method[i]);
        npy_array a;
        err e = {0};
        REQUIRE(npy_read(p, &a, &e) == 0, "%s", e.msg);
        CHECK(a.ndim == 2 && a.shape[0] == maps->height && a.shape[1] == maps->width);
        CHECK(memcmp(a.data, maps->score[i], (size_t)maps->width * maps->height * 4) == 0,
              "method %s: the API's map differs from oodseg score's", maps->method[i]);
        npy_free(&a);
    }
    // The same bits from RGB pixels with a padded row stride.
    image im = {0};
    err e = {0};
    REQUIRE(image_load_rgb(img, &im, &e) == 0, "%s", e.msg);
    int w = im.w, h = im.h, stride = 3 * w + 5;
    uint8_t *px = calloc((size_t)stride * h, 1);
    REQUIRE(px);
    for (int y = 0; y < h; y++) memcpy(px + (size_t)stride * y, im.px + (size_t)3 * w * y, (size_t)3 * w);
    oodseg_maps *again;
    REQUIRE(oodseg_score_rgb(s, px, w, h, stride, &again, &st) == OODSEG_OK, "%s", st.message);
    for (int i = 0; i < maps->n_methods; i++)
        CHECK(memcmp(again->score[i], maps->score[i], (size_t)w * h * 4) == 0, "rgb with stride: %s differs", maps->method[i]);
    CHECK(memcmp(again->seg, maps->seg, (size_t)w * h) == 0);
    CHECK(oodseg_score_rgb(s, px, w, h, 3 * w - 1, &again, &st) == OODSEG_E_ARG);
    oodseg_maps_free(again);
    free(px);
    image_free(&im);
    // options_json records the resolved options
    CHECK(strstr(oodseg_scorer_options_json(s), "\"k\": 8") != NULL, "%s", oodseg_scorer_options_json(s));
    oodseg_maps_free(maps);
    oodseg_scorer_close(s);
    oodseg_model_close(m);
}

typedef struct job { const char *model, *image; int threads, iters; float *out; int64_t n; int rc; char msg[1024]; } job;

static void *score_job(void *p) {
    job *j = p;
    oodseg_status st;
    oodseg_model *m = NULL;
    oodseg_scorer *s = NULL;
    oodseg_options o = {0};
    o.threads = j->threads;
    j->rc = oodseg_model_open(j->model, &o, &m, &st);
    if (!j->rc) j->rc = oodseg_scorer_open(m, "kmeans,energy", NULL, &s, &st);
    for (int it = 0; it < j->iters && !j->rc; it++) {
        oodseg_maps *maps;
        if ((j->rc = oodseg_score_image(s, j->image, &maps, &st))) break;
        int64_t n = (int64_t)maps->width * maps->height;
        if (!j->out) { j->n = n; j->out = malloc((size_t)n * 2 * sizeof(float)); }
        if (it == 0) {
            memcpy(j->out, maps->score[0], (size_t)n * 4);
            memcpy(j->out + n, maps->score[1], (size_t)n * 4);
        } else if (memcmp(j->out, maps->score[0], (size_t)n * 4) || memcmp(j->out + n, maps->score[1], (size_t)n * 4)) {
            j->rc = -1;
            snprintf(j->msg, sizeof j->msg, "iteration %d differs from the first", it);
        }
        oodseg_maps_free(maps);
    }
    if (j->rc > 0) snprintf(j->msg, sizeof j->msg, "%s", st.message);
    oodseg_scorer_close(s);
    oodseg_model_close(m);
    return NULL;
}

// `oodseg score` over a folder runs the frames' forwards on their own threads while the previous
// frame's methods run (api/score_stream.c; from 2 threads on, the default model on twins of one
// thread each): every frame's maps are still the bits of the API scoring that image alone, for 1
// to 3 threads, with a failing frame among them.
TEST(score_folder_overlap_matches_api) {
    const char *model = default_model_or_null();
    if (!model) SKIP("no default model (oodseg_default_model found none)");
    char mpath[4096];
    snprintf(mpath, sizeof mpath, "%s", model);
    static const char *const names[] = {"0001TP_008550", "0001TP_008610", "0001TP_008670"};
    const char *dir = t_tmpdir();
    char in[4200];
    snprintf(in, sizeof in, "%s/in", dir);
    REQUIRE(t_sh("mkdir -p '%s' && cp assets/demo/test_ood/*.png '%s/' && printf 'not a png' > '%s/0002_bad.png'",
                 in, in, in) == 0);
    oodseg_status st;
    oodseg_model *m;
    oodseg_scorer *s;
    REQUIRE(oodseg_model_open(mpath, NULL, &m, &st) == OODSEG_OK, "%s", st.message);
    REQUIRE(oodseg_scorer_open(m, "maxlogit,kmeans", NULL, &s, &st) == OODSEG_OK, "%s", st.message);
    for (int th = 1; th <= 3; th++) {
        char out[4300];
        snprintf(out, sizeof out, "%s/out%d", dir, th);
        // the bad frame fails (exit status 1 with --keep-going's report), the others are written
        t_sh("'%s' score --threads %d --method maxlogit,kmeans --keep-going --pictures none -o '%s' '%s' 2>'%s/log%d'",
             g_cli, th, out, in, dir, th);
        char want[64], log[4400];
        snprintf(want, sizeof want, "%d forward thread%s", th, th > 1 ? "s" : "");
        snprintf(log, sizeof log, "%s/log%d", dir, th);
        char *text = t_slurp(log, NULL);
        CHECK(text && strstr(text, want), "%d threads: '%s' not in: %s", th, want, text ? text : "(no log)");
        free(text);
        for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
            char img[4400];
            snprintf(img, sizeof img, "%s/%s.png", in, names[k]);
            oodseg_maps *maps;
            REQUIRE(oodseg_score_image(s, img, &maps, &st) == OODSEG_OK, "%s", st.message);
            for (int i = 0; i < maps->n_methods; i++) {
                char p[4600];
                snprintf(p, sizeof p, "%s/%s_%s_score.npy", out, names[k], maps->method[i]);
                npy_array a;
                err e = {0};
                if (npy_read(p, &a, &e)) { CHECK(0, "%d threads: %s", th, e.msg); continue; }
                CHECK(a.ndim == 2 && a.shape[0] == maps->height && a.shape[1] == maps->width &&
                          !memcmp(a.data, maps->score[i], (size_t)maps->width * maps->height * 4),
                      "%d threads, %s, %s: the folder run's map differs from the API's", th, names[k], maps->method[i]);
                npy_free(&a);
            }
            oodseg_maps_free(maps);
        }
    }
    oodseg_scorer_close(s);
    oodseg_model_close(m);
}

TEST(two_scorers_two_thread_counts_two_host_threads) {
    const char *model = default_model_or_null();
    if (!model) SKIP("no default model (oodseg_default_model found none)");
    char mpath[4096];
    snprintf(mpath, sizeof mpath, "%s", model);
    ASSET_OR_SKIP(img, DEMO_IMAGE);
    int iters = t_sanitized() ? 1 : 3;
    job alone = {mpath, img, 1, 1, NULL, 0, 0, ""};
    score_job(&alone);
    REQUIRE(alone.rc == 0, "%s", alone.msg);
    job a = {mpath, img, 1, iters, NULL, 0, 0, ""}, b = {mpath, img, 2, iters, NULL, 0, 0, ""};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, score_job, &a);
    pthread_create(&tb, NULL, score_job, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    REQUIRE(a.rc == 0 && b.rc == 0, "%s / %s", a.msg, b.msg);
    CHECK(a.n == alone.n && b.n == alone.n);
    CHECK(memcmp(a.out, alone.out, (size_t)alone.n * 8) == 0, "1 thread beside another model changed the maps");
    CHECK(memcmp(b.out, alone.out, (size_t)alone.n * 8) == 0, "2 threads beside another model changed the maps");
    free(a.out); free(b.out); free(alone.out);
}

typedef struct shared_job { oodseg_scorer *s; const char *image; int ok, busy, other; float *ref; int64_t n; } shared_job;

static void *shared_score(void *p) {
    shared_job *j = p;
    // Until 6 calls succeeded (a busy answer is retried): how often the two collide depends on the
    // machine's load and the build (sanitizers), how many succeed in the end must not.
    for (int it = 0; it < 2000 && j->ok < 6; it++) {
        if (it) sched_yield();
        oodseg_status st;
        oodseg_maps *maps;
        int rc = oodseg_score_image(j->s, j->image, &maps, &st);
        if (rc == OODSEG_OK) {
            j->ok++;
            if (memcmp(maps->score[0], j->ref, (size_t)j->n * 4)) j->other++;
            oodseg_maps_free(maps);
        } else if (rc == OODSEG_E_ARG && strstr(st.message, "in use by another thread")) j->busy++;
        else j->other++;
    }
    return NULL;
}

// One model from two threads is a documented error for the second caller, never a race.
TEST(one_model_two_threads_is_an_error) {
    const char *model = default_model_or_null();
    if (!model) SKIP("no default model (oodseg_default_model found none)");
    char mpath[4096];
    snprintf(mpath, sizeof mpath, "%s", model);
    ASSET_OR_SKIP(img, DEMO_IMAGE);
    oodseg_status st;
    oodseg_model *m;
    oodseg_scorer *s;
    oodseg_maps *ref;
    oodseg_options o = {0};
    o.threads = 1;
    o.size = "480x352";
    REQUIRE(oodseg_model_open(mpath, &o, &m, &st) == OODSEG_OK, "%s", st.message);
    REQUIRE(oodseg_scorer_open(m, "maxlogit", NULL, &s, &st) == OODSEG_OK, "%s", st.message);
    REQUIRE(oodseg_score_image(s, img, &ref, &st) == OODSEG_OK, "%s", st.message);
    shared_job a = {s, img, 0, 0, 0, (float *)ref->score[0], (int64_t)ref->width * ref->height};
    shared_job b = a;
    pthread_t ta, tb;
    pthread_create(&ta, NULL, shared_score, &a);
    pthread_create(&tb, NULL, shared_score, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(a.other == 0 && b.other == 0, "wrong maps or unexpected errors: %d, %d", a.other, b.other);
    CHECK(a.ok + b.ok >= 12, "%d calls succeeded", a.ok + b.ok);
    CHECK(a.busy + b.busy > 0, "no call met another (%d + %d succeeded)", a.ok, b.ok);
    oodseg_maps_free(ref);
    oodseg_scorer_close(s);
    oodseg_model_close(m);
}

// Scores with ties, labels 0 ID / 1 OoD / 255 ignore, deterministic.
static void make_data(float *s, uint8_t *l, int64_t n, unsigned seed) {
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        s[i] = (float)((seed >> 16) % 200) / 50.0f;
        unsigned r = (seed >> 8) % 10;
        l[i] = r == 0 ? 255 : (r < 3 ? 1 : 0);
        if (l[i] == 1) s[i] += 0.7f;
    }
}

TEST(metrics_and_evaluator) {
    enum { N = 3000 };
    float s[N];
    uint8_t l[N], raw[N];
    make_data(s, l, N, 7);
    oodseg_status st;
    oodseg_metrics whole, part;
    REQUIRE(oodseg_metrics_compute(s, l, N, 1, 255, NULL, &whole, &st) == OODSEG_OK, "%s", st.message);
    CHECK(whole.defined && whole.ap > 0.3 && whole.ap < 1 && whole.curve_points > 2);
    // the same data in the camvid-ood convention (12 OoD, 11 void) through an evaluator in 3 images
    for (int i = 0; i < N; i++) raw[i] = l[i] == 1 ? 12 : l[i] == 255 ? 11 : (uint8_t)(i % 11);
    const char *names[] = {"a"};
    oodseg_eval_options eo = {0};
    eo.convention = "camvid-ood";
    oodseg_evaluator *ev;
    REQUIRE(oodseg_evaluator_open(names, 1, &eo, &ev, &st) == OODSEG_OK, "%s", st.message);
    for (int k = 0; k < 3; k++) {
        const float *sc[1] = {s + k * 1000};
        REQUIRE(oodseg_evaluator_add(ev, "img", sc, raw + k * 1000, 50, 20, &st) == OODSEG_OK, "%s", st.message);
    }
    REQUIRE(oodseg_evaluator_finish(ev, &st) == OODSEG_OK, "%s", st.message);
    REQUIRE(oodseg_evaluator_result(ev, 0, &part, &st) == OODSEG_OK, "%s", st.message);
    CHECK(part.ap == whole.ap && part.auroc == whole.auroc && part.fpr95 == whole.fpr95,
          "pooled %.17g %.17g %.17g vs one call %.17g %.17g %.17g", part.ap, part.auroc, part.fpr95, whole.ap,
          whole.auroc, whole.fpr95);
    CHECK(part.n_pos == whole.n_pos && part.n_neg == whole.n_neg);
    char rep[4200];
    snprintf(rep, sizeof rep, "%s/report", t_tmpdir());
    CHECK(oodseg_evaluator_write_reports(ev, rep, "synthetic", &st) == OODSEG_OK, "%s", st.message);
    snprintf(rep + strlen(rep), sizeof rep - strlen(rep), "/metrics.json");
    size_t len;
    char *js = t_slurp(rep, &len);
    CHECK(js && strstr(js, "\"AP\""), "metrics.json written");
    free(js);
    oodseg_evaluator_close(ev);
    oodseg_metrics_release(&whole);
    // a value the convention does not define is refused, naming it
    REQUIRE(oodseg_evaluator_open(names, 1, &eo, &ev, &st) == OODSEG_OK);
    raw[17] = 200;
    const float *sc[1] = {s};
    CHECK(oodseg_evaluator_add(ev, "bad", sc, raw, 50, 20, &st) == OODSEG_E_DATA && strstr(st.message, "200"), "%s", st.message);
    oodseg_evaluator_close(ev);
    s[3] = NAN;
    CHECK(oodseg_metrics_compute(s, l, N, 1, 255, NULL, &whole, &st) != OODSEG_OK && strstr(st.message, "NaN"), "%s", st.message);
}

// The bindings' calls: the exact curve gives the one-call AUROC by trapezoids, float64 scores
// that are float32 values give the same curve, and merged states equal one pass.
TEST(curves_and_merged_states) {
    enum { N = 2000 };
    float s[N];
    double d[N];
    uint8_t l[N];
    make_data(s, l, N, 11);
    for (int i = 0; i < N; i++) d[i] = s[i];
    oodseg_status st;
    oodseg_curve c32, c64, all;
    REQUIRE(oodseg_curve_compute(s, OODSEG_FLOAT32, l, N, 1, 255, 1, &c32, &st) == OODSEG_OK, "%s", st.message);
    REQUIRE(oodseg_curve_compute(d, OODSEG_FLOAT64, l, N, 1, 255, 1, &c64, &st) == OODSEG_OK, "%s", st.message);
    REQUIRE(oodseg_curve_compute(s, OODSEG_FLOAT32, l, N, 1, 255, 0, &all, &st) == OODSEG_OK, "%s", st.message);
    CHECK(c32.n == c64.n && c32.n >= 2 && all.n >= c32.n);
    int same = c32.n == c64.n;
    for (int64_t i = 0; same && i < c32.n; i++)
        same = c32.threshold[i] == c64.threshold[i] && c32.tp[i] == c64.tp[i] && c32.fp[i] == c64.fp[i];
    CHECK(same, "float32 and float64 curves differ");
    oodseg_metrics m;
    REQUIRE(oodseg_metrics_compute(s, l, N, 1, 255, NULL, &m, &st) == OODSEG_OK, "%s", st.message);
    double auc = 0, px = 0, py = 0;   // trapezoids over the points, from (0, 0)
    for (int64_t i = 0; i < all.n; i++) {
        double x = all.fp[i] / all.n_neg, y = all.tp[i] / all.n_pos;
        auc += (x - px) * (y + py) / 2;
        px = x; py = y;
    }
    CHECK_NEAR(auc, m.auroc, 1e-12);
    CHECK(all.n_pos == m.n_pos && all.n_neg == m.n_neg);
    oodseg_metrics_release(&m);
    oodseg_curve_release(&c32); oodseg_curve_release(&c64); oodseg_curve_release(&all);
    d[5] = NAN;
    CHECK(oodseg_curve_compute(d, OODSEG_FLOAT64, l, N, 1, 255, 1, &c64, &st) != OODSEG_OK && strstr(st.message, "5"), "%s", st.message);
    // two shards saved and merged equal one evaluator over both
    const char *names[] = {"a"};
    char p0[4200], p1[4200];
    snprintf(p0, sizeof p0, "%s/s0.state", t_tmpdir());
    snprintf(p1, sizeof p1, "%s/s1.state", t_tmpdir());
    oodseg_evaluator *one, *e0, *e1, *merged;
    REQUIRE(oodseg_evaluator_open(names, 1, NULL, &one, &st) == OODSEG_OK, "%s", st.message);
    REQUIRE(oodseg_evaluator_open(names, 1, NULL, &e0, &st) == OODSEG_OK && oodseg_evaluator_open(names, 1, NULL, &e1, &st) == OODSEG_OK);
    const float *a[1] = {s}, *b[1] = {s + 1000};
    CHECK(oodseg_evaluator_add(one, "x", a, l, 50, 20, &st) == OODSEG_OK && oodseg_evaluator_add(one, "y", b, l + 1000, 50, 20, &st) == OODSEG_OK);
    CHECK(oodseg_evaluator_add(e0, "x", a, l, 50, 20, &st) == OODSEG_OK && oodseg_evaluator_add(e1, "y", b, l + 1000, 50, 20, &st) == OODSEG_OK);
    CHECK(oodseg_evaluator_save_state(e0, p0, &st) == OODSEG_OK && oodseg_evaluator_save_state(e1, p1, &st) == OODSEG_OK, "%s", st.message);
    const char *paths[] = {p0, p1};
    REQUIRE(oodseg_evaluator_merge(paths, 2, NULL, NULL, &merged, &st) == OODSEG_OK, "%s", st.message);
    oodseg_metrics r1, r2;
    REQUIRE(oodseg_evaluator_finish(one, &st) == OODSEG_OK);
    REQUIRE(oodseg_evaluator_result(one, 0, &r1, &st) == OODSEG_OK && oodseg_evaluator_result(merged, 0, &r2, &st) == OODSEG_OK, "%s", st.message);
    CHECK(r1.ap == r2.ap && r1.auroc == r2.auroc && r1.fpr95 == r2.fpr95);
    CHECK(oodseg_evaluator_method_count(merged) == 1 && !strcmp(oodseg_evaluator_method(merged, 0), "a"));
    CHECK(oodseg_evaluator_image_count(merged) == 2, "%d images", oodseg_evaluator_image_count(merged));
    oodseg_evaluator_close(one); oodseg_evaluator_close(e0); oodseg_evaluator_close(e1); oodseg_evaluator_close(merged);
}

TEST(datasets_and_errors) {
    oodseg_status st;
    oodseg_dataset *ds;
    CHECK(oodseg_dataset_open("camvid-ood:/nonexistent", NULL, &ds, &st) != OODSEG_OK && strstr(st.message, "/nonexistent"), "%s", st.message);
    const char *odd[] = {"images", NULL};
    CHECK(oodseg_dataset_open("generic", odd, &ds, &st) == OODSEG_E_ARG);
    const char *model = default_model_or_null();
    if (model) {
        char mpath[4096];
        snprintf(mpath, sizeof mpath, "%s", model);
        oodseg_model *m;
        oodseg_scorer *s = (oodseg_scorer *)1;
        REQUIRE(oodseg_model_open(mpath, NULL, &m, &st) == OODSEG_OK, "%s", st.message);
        CHECK(oodseg_scorer_open(m, "maxlogit,nosuch", NULL, &s, &st) == OODSEG_E_ARG && s == NULL &&
              strstr(st.message, "nosuch") && strstr(st.message, "kmeans"), "%s", st.message);
        const char *bad[] = {"k", "0", NULL};
        CHECK(oodseg_scorer_open(m, "kmeans", bad, &s, &st) == OODSEG_E_ARG && strstr(st.message, "k"), "%s", st.message);
        const char *unknown[] = {"nosuch-option", "1", NULL};
        CHECK(oodseg_scorer_open(m, "kmeans", unknown, &s, &st) == OODSEG_E_ARG && strstr(st.message, "nosuch-option"), "%s", st.message);
        const char *cent[] = {"centroids", "/nonexistent/c.txt", NULL};
        CHECK(oodseg_scorer_open(m, "centroid", cent, &s, &st) == OODSEG_E_IO && strstr(st.message, "/nonexistent/c.txt"), "%s", st.message);
        // a named pipe as the centroid or tau file is refused at once, never waited on
        char fifo[4200];
        snprintf(fifo, sizeof fifo, "%s/stats.fifo", t_tmpdir());
        REQUIRE(mkfifo(fifo, 0600) == 0);
        alarm(30);   // a hang would end the test binary, counted as a failure
        const char *cf[] = {"centroids", fifo, NULL}, *tf[] = {"tau-file", fifo, NULL};
        CHECK(oodseg_scorer_open(m, "centroid", cf, &s, &st) == OODSEG_E_IO && strstr(st.message, "fit-centroids"), "%s", st.message);
        CHECK(oodseg_scorer_open(m, "kmeans", tf, &s, &st) == OODSEG_E_IO && strstr(st.message, "calibrate"), "%s", st.message);
        alarm(0);
        oodseg_model_close(m);
    }
    for (int i = 0; oodseg_method_name(i); i++) CHECK(strlen(oodseg_method_name(i)) > 1);
    CHECK(oodseg_method_name(4) && !strcmp(oodseg_method_name(4), "kmeans"));
    ASSET_OR_SKIP(root, "data/camvid-ood/test_ood.txt");
    char spec[4200];
    snprintf(spec, sizeof spec, "camvid-ood:%s/data/camvid-ood", t_assets());
    REQUIRE(oodseg_dataset_open(spec, NULL, &ds, &st) == OODSEG_OK, "%s", st.message);
    CHECK(oodseg_dataset_count(ds) == 233);
    uint8_t *lab;
    int w, h;
    REQUIRE(oodseg_dataset_label(ds, 0, 0, 0, &lab, &w, &h, &st) == OODSEG_OK, "%s", st.message);
    CHECK(w == 480 && h == 360);
    int ok = 1;
    for (int i = 0; i < w * h; i++) ok &= lab[i] == 0 || lab[i] == 1 || lab[i] == 255;
    CHECK(ok, "labels mapped to 0/1/255");
    oodseg_free(lab);
    oodseg_dataset_close(ds);
}

// oodseg_maps_save writes what `oodseg score` writes, in the format of the scorer's "pictures"
// option and without maps when "npy" is off; a bad value is refused at open.
TEST(maps_save_follows_the_picture_options) {
    const char *model = default_model_or_null();
    if (!model) SKIP("no default model (oodseg_default_model found none)");
    char mpath[4096];
    snprintf(mpath, sizeof mpath, "%s", model);
    ASSET_OR_SKIP(img, DEMO_IMAGE);
    oodseg_status st;
    oodseg_model *m;
    oodseg_scorer *s = NULL;
    oodseg_maps *maps;
    REQUIRE(oodseg_model_open(mpath, NULL, &m, &st) == OODSEG_OK, "%s", st.message);
    const char *bad[] = {"pictures", "gif", NULL};
    CHECK(oodseg_scorer_open(m, "maxlogit", bad, &s, &st) == OODSEG_E_ARG && strstr(st.message, "gif"), "%s", st.message);
    const char *opts[] = {"pictures", "webp", "npy", "off", NULL};
    REQUIRE(oodseg_scorer_open(m, "maxlogit", opts, &s, &st) == OODSEG_OK, "%s", st.message);
    REQUIRE(oodseg_score_image(s, img, &maps, &st) == OODSEG_OK, "%s", st.message);
    image im = {0};
    err e = {0};
    REQUIRE(image_load_rgb(img, &im, &e) == 0, "%s", e.msg);
    char dir[4200], p[4400];
    snprintf(dir, sizeof dir, "%s/maps_save", t_tmpdir());
    mkdir(dir, 0755);
    CHECK(oodseg_maps_save(s, maps, im.px, dir, "x", &st) == OODSEG_OK, "%s", st.message);
    struct stat sb;
    snprintf(p, sizeof p, "%s/x_maxlogit_overlay.webp", dir);
    CHECK(stat(p, &sb) == 0, "%s missing", p);
    snprintf(p, sizeof p, "%s/x_maxlogit_score.npy", dir);
    CHECK(stat(p, &sb) != 0, "npy off wrote %s", p);
    image_free(&im);
    oodseg_maps_free(maps);
    oodseg_scorer_close(s);
    oodseg_model_close(m);
}

int main(int argc, char **argv) {
    (void)argc;
    snprintf(g_cli, sizeof g_cli, "%s", t_cli_path(argv[0]));
    RUN(score_matches_cli_for_every_method);
    RUN(maps_save_follows_the_picture_options);
    RUN(score_folder_overlap_matches_api);
    RUN(two_scorers_two_thread_counts_two_host_threads);
    RUN(one_model_two_threads_is_an_error);
    RUN(metrics_and_evaluator);
    RUN(curves_and_merged_states);
    RUN(datasets_and_errors);
    return t_finish(argv[0]);
}
