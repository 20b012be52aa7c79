// Concurrent use, written for ThreadSanitizer (`make test-tsan`, RELIABILITY.md "Concurrent use"),
// and run by `make test` as an ordinary test too. Through the public API only:
//  - two models (two architectures when the golden InternImage is there) in two host threads, each
//    scoring OODSEG_TSAN_ITERS times (default 12) with K-Means and energy: every iteration gives
//    the bits of the same model run alone;
//  - one model from several host threads at once: every call either scores (the same bits) or gets
//    the documented OODSEG_E_ARG "in use by another thread", never a race.
// Each model runs with OODSEG_TSAN_THREADS OpenMP threads (default 1): libgomp is not built with
// ThreadSanitizer, so its barriers are invisible to it and a parallel region of two or more threads
// reports races that are not there; with one thread per model no OpenMP worker exists and every
// report is a real race between the host threads.
#include "test.h"
#include "../include/oodseg.h"
#include "../api/score_stream.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define DEMO_IMAGE "data/camvid-ood/test_ood/0001TP_008550.png"

static int env_int(const char *name, int dflt, int lo, int hi) {
    const char *v = getenv(name);
    int x = v && *v ? atoi(v) : dflt;
    return x < lo ? lo : x > hi ? hi : x;
}

typedef struct job {
    const char *model, *image, *size;
    int threads, iters;
    float *ref;          // the first iteration's maps (2 methods), or the run alone's to compare with
    int64_t n;
    int rc, mismatches;
    char msg[1024];
} job;

// Opens its own model and scorer, scores `iters` times; iteration 0 fills ref when it is NULL,
// every other iteration (and every one when ref was given) must equal ref.
static void *score_job(void *p) {
    job *j = p;
    oodseg_status st = {0};
    oodseg_model *m = NULL;
    oodseg_scorer *s = NULL;
    oodseg_options o = {0};
    o.threads = j->threads;
    o.size = j->size;
    j->rc = oodseg_model_open(j->model, &o, &m, &st);
    if (!j->rc) j->rc = oodseg_scorer_open(m, "kmeans,energy", NULL, &s, &st);
    for (int it = 0; it < j->iters && !j->rc; it++) {
        oodseg_maps *maps;
        if ((j->rc = oodseg_score_image(s, j->image, &maps, &st))) break;
        int64_t n = (int64_t)maps->width * maps->height;
        if (!j->ref) {
            j->n = n;
            j->ref = malloc((size_t)n * 2 * sizeof(float));
            memcpy(j->ref, maps->score[0], (size_t)n * 4);
            memcpy(j->ref + n, maps->score[1], (size_t)n * 4);
        } else if (n != j->n || memcmp(j->ref, maps->score[0], (size_t)n * 4) || memcmp(j->ref + n, maps->score[1], (size_t)n * 4))
            j->mismatches++;
        oodseg_maps_free(maps);
    }
    if (j->rc) snprintf(j->msg, sizeof j->msg, "%s", st.message);
    oodseg_scorer_close(s);
    oodseg_model_close(m);
    return NULL;
}

TEST(two_models_two_host_threads) {
    oodseg_status st;
    const char *dflt = oodseg_default_model(&st);
    if (!dflt) SKIP("no default model: %s", st.message);
    char m1[4096];
    snprintf(m1, sizeof m1, "%s", dflt);
    ASSET_OR_SKIP(img, DEMO_IMAGE);
    const char *tiny = t_asset("golden/tiny-t/model.safetensors");
    int iters = env_int("OODSEG_TSAN_ITERS", 12, 1, 100000), threads = env_int("OODSEG_TSAN_THREADS", 1, 1, 64);
    // each model alone first: the reference bits
    job alone[2] = { { m1, img, "256x128", threads, 1, NULL, 0, 0, 0, "" },
                     { tiny ? tiny : m1, img, tiny ? "256x192" : "128x64", threads, 1, NULL, 0, 0, 0, "" } };
    for (int k = 0; k < 2; k++) {
        score_job(&alone[k]);
        REQUIRE(alone[k].rc == 0, "%s", alone[k].msg);
    }
    job both[2];
    pthread_t t[2];
    for (int k = 0; k < 2; k++) {
        both[k] = alone[k];
        both[k].iters = iters;
        REQUIRE(pthread_create(&t[k], NULL, score_job, &both[k]) == 0);
    }
    for (int k = 0; k < 2; k++) pthread_join(t[k], NULL);
    for (int k = 0; k < 2; k++) {
        CHECK(both[k].rc == 0, "model %d: %s", k, both[k].msg);
        CHECK(both[k].mismatches == 0, "model %d: %d of %d iterations beside the other model differ from the run alone",
              k, both[k].mismatches, iters);
        free(alone[k].ref);
    }
}

typedef struct shared_job { oodseg_scorer *s; const char *image; int iters, ok, busy, other; const float *ref; int64_t n; } shared_job;

static void *shared_score(void *p) {
    shared_job *j = p;
    for (int it = 0; it < j->iters; it++) {
        oodseg_status st;
        oodseg_maps *maps;
        int rc = oodseg_score_image(j->s, j->image, &maps, &st);
        if (rc == OODSEG_OK) {
            j->ok++;
            if ((int64_t)maps->width * maps->height != j->n || memcmp(maps->score[0], j->ref, (size_t)j->n * 4)) j->other++;
            oodseg_maps_free(maps);
        } else if (rc == OODSEG_E_ARG && strstr(st.message, "in use by another thread")) j->busy++;
        else j->other++;
    }
    return NULL;
}

TEST(one_model_several_threads_is_an_error) {
    oodseg_status st;
    const char *dflt = oodseg_default_model(&st);
    if (!dflt) SKIP("no default model: %s", st.message);
    char mpath[4096];
    snprintf(mpath, sizeof mpath, "%s", dflt);
    ASSET_OR_SKIP(img, DEMO_IMAGE);
    enum { T = 4 };
    int iters = env_int("OODSEG_TSAN_ITERS", 12, 1, 100000);
    oodseg_model *m;
    oodseg_scorer *s;
    oodseg_maps *ref;
    oodseg_options o = {0};
    o.threads = env_int("OODSEG_TSAN_THREADS", 1, 1, 64);
    o.size = "256x128";
    REQUIRE(oodseg_model_open(mpath, &o, &m, &st) == OODSEG_OK, "%s", st.message);
    REQUIRE(oodseg_scorer_open(m, "maxlogit", NULL, &s, &st) == OODSEG_OK, "%s", st.message);
    REQUIRE(oodseg_score_image(s, img, &ref, &st) == OODSEG_OK, "%s", st.message);
    shared_job j[T];
    pthread_t t[T];
    for (int k = 0; k < T; k++) {
        j[k] = (shared_job){ s, img, iters, 0, 0, 0, ref->score[0], (int64_t)ref->width * ref->height };
        REQUIRE(pthread_create(&t[k], NULL, shared_score, &j[k]) == 0);
    }
    int ok = 0, busy = 0, other = 0;
    for (int k = 0; k < T; k++) {
        pthread_join(t[k], NULL);
        ok += j[k].ok, busy += j[k].busy, other += j[k].other;
    }
    CHECK(other == 0, "%d calls gave other maps or another error", other);
    CHECK(ok + busy == T * iters && ok > 0, "%d scored, %d refused of %d", ok, busy, T * iters);
    CHECK(busy > 0, "no call met another (%d scored)", ok);
    oodseg_maps_free(ref);
    oodseg_scorer_close(s);
    oodseg_model_close(m);
}

// `oodseg score`'s stages on their own threads (api/score_stream.c): frame decoding, the forward
// threads ahead of the methods on the calling thread, and the writer, over the demo frames and a
// file that fails to decode; every frame's maps are written. With 2 threads the small default
// model runs on twins of one thread each (two forward threads sharing the weights, the methods on
// a third twin), so no OpenMP worker hides anything from ThreadSanitizer there either.
static int n_saved;
static void count_saved(void *ctx, const char *name) { (void)ctx, (void)name; n_saved++; }
TEST(score_stream_stages) {
    oodseg_status st;
    const char *dflt = oodseg_default_model(&st);
    if (!dflt) SKIP("no default model");
    const char *dir = t_tmpdir();
    char in[4200], out[4200];
    snprintf(in, sizeof in, "%s/in", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    REQUIRE(t_sh("mkdir -p '%s' '%s' && cp assets/demo/test_ood/*.png '%s/' && printf x > '%s/0002_bad.png'",
                 in, out, in, in) == 0);
    pipeline_config c;
    pipeline_config_default(&c);
    snprintf(c.model, sizeof c.model, "%s", dflt);
    snprintf(c.methods, sizeof c.methods, "maxlogit,kmeans");
    c.pictures = PICTURES_PNG;
    const int thread_counts[2] = {env_int("OODSEG_TSAN_THREADS", 1, 1, 64), 2};
    for (int r = 0; r < 2; r++) {
        c.threads = thread_counts[r];
        pipeline p = {0};
        err e = {0};
        REQUIRE(pipeline_open(&p, &c, &e) == OODSEG_OK, "%s", e.msg);
        char paths_buf[4][4300], *paths[4];
        static const char *const names[4] = {"0001TP_008550", "0001TP_008610", "0001TP_008670", "0002_bad"};
        for (int k = 0; k < 4; k++) snprintf(paths_buf[k], sizeof paths_buf[k], "%s/%s.png", in, names[k]), paths[k] = paths_buf[k];
        score_stream_opts so = {0};
        so.dir = out, so.keep_going = 1, so.on_saved = count_saved, so.save = (pipeline_save_opts){PICTURES_PNG, 0};
        score_stream_summary ss;
        n_saved = 0;
        CHECK(score_stream(&p, paths, 4, &so, &ss, &e) == OODSEG_OK, "%s", e.msg);
        CHECK(ss.done == 3 && ss.failed == 1 && n_saved == 3, "%d threads: done %d, failed %d (first: %s), saved %d",
              c.threads, ss.done, ss.failed, ss.first_failure.msg, n_saved);
        CHECK(c.threads != 2 || ss.forward_threads == 2, "2 threads: %d forward threads", ss.forward_threads);
        pipeline_close(&p);
    }
}

int main(int argc, char **argv) {
    (void)argc;
    RUN(two_models_two_host_threads);
    RUN(one_model_several_threads_is_an_error);
    RUN(score_stream_stages);
    return t_finish(argv[0]);
}
