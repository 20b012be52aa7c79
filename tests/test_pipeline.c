// The pipeline's switches (api/pipeline.h) that change what a frame computes, not what its scores
// are: no_class_maps (set by `oodseg score --pictures none`) leaves the class and cluster maps at
// image size out, and every score map, the cluster count and the clusters' OoD flags stay the
// bits of the full run. And score_stream's lead: on twins, the first frame runs on the model and
// the twins start from its arena plan, with the maps of the pipeline run frame by frame.
#include "test.h"
#include "../api/pipeline.h"
#include "../api/score_stream.h"
#include "../io/npy.h"
#include "../io/image.h"
#include <stdlib.h>
#include <string.h>

#define DEMO_IMAGE "assets/demo/test_ood/0001TP_008550.png"

// The default model on 2 threads with the given methods.
static int open_default(pipeline *p, const char *methods, err *e) {
    pipeline_config c;
    pipeline_config_default(&c);
    c.threads = 2;
    snprintf(c.methods, sizeof c.methods, "%s", methods);
    memset(p, 0, sizeof *p);
    return pipeline_open(p, &c, e);
}

TEST(no_class_maps_keeps_the_scores) {
    pipeline p;
    err e = {0};
    if (open_default(&p, "maxlogit,kmeans,energy", &e)) SKIP("default model: %s", e.msg);
    image img = {0};
    REQUIRE(image_load_rgb(DEMO_IMAGE, &img, &e) == 0, "%s", e.msg);
    pipeline_out full, lean;
    REQUIRE(pipeline_run(&p, &img, &full, &e) == 0, "%s", e.msg);
    p.no_class_maps = 1;
    REQUIRE(pipeline_run(&p, &img, &lean, &e) == 0, "%s", e.msg);
    CHECK(full.pred && full.clusters && !lean.pred && !lean.clusters, "class maps: full %p %p, lean %p %p",
          (void *)full.pred, (void *)full.clusters, (void *)lean.pred, (void *)lean.clusters);
    CHECK(lean.w == full.w && lean.h == full.h && lean.k == full.k && lean.k > 0 &&
          !memcmp(lean.ood_flag, full.ood_flag, sizeof full.ood_flag) && lean.tau_used == full.tau_used,
          "k %d against %d", lean.k, full.k);
    for (int i = 0; i < p.n_methods; i++)
        CHECK(lean.scores[i] && !memcmp(lean.scores[i], full.scores[i], sizeof(float) * full.w * full.h),
              "%s: the score map changed", pipeline_method_name(&p, i));
    pipeline_out_free(&full);
    pipeline_out_free(&lean);
    image_free(&img);
    pipeline_close(&p);
}

TEST(score_stream_lead_and_twins_from_its_plan) {
    pipeline p;
    err e = {0};
    if (open_default(&p, "maxlogit,kmeans", &e)) SKIP("default model: %s", e.msg);
    static const char *const names[3] = {"0001TP_008550", "0001TP_008610", "0001TP_008670"};
    char paths_buf[3][256], *paths[3], out[600];
    for (int k = 0; k < 3; k++)
        snprintf(paths_buf[k], sizeof paths_buf[k], "assets/demo/test_ood/%s.png", names[k]), paths[k] = paths_buf[k];
    snprintf(out, sizeof out, "%s/lead", t_tmpdir());
    REQUIRE(t_sh("mkdir -p '%s'", out) == 0);
    score_stream_opts so = {0};
    so.dir = out, so.save = (pipeline_save_opts){PICTURES_NONE, 0};
    score_stream_summary ss;
    REQUIRE(score_stream(&p, paths, 3, &so, &ss, &e) == OODSEG_OK, "%s", e.msg);
    CHECK(ss.done == 3 && ss.forward_threads == 2 && ss.twins_from_plan >= 1,
          "done %d, %d forward threads, %d twins from the model's plan", ss.done, ss.forward_threads, ss.twins_from_plan);
    for (int k = 0; k < 3; k++) {   // every frame, the lead's and the twins', as the pipeline alone gives it
        image img = {0};
        pipeline_out po;
        REQUIRE(image_load_rgb(paths[k], &img, &e) == 0 && pipeline_run(&p, &img, &po, &e) == 0, "%s", e.msg);
        for (int i = 0; i < p.n_methods; i++) {
            char f[900];
            snprintf(f, sizeof f, "%s/%s_%s_score.npy", out, names[k], pipeline_method_name(&p, i));
            npy_array a;
            REQUIRE(npy_read(f, &a, &e) == 0, "%s", e.msg);
            CHECK(a.numel == (int64_t)po.w * po.h && !memcmp(a.data, po.scores[i], sizeof(float) * a.numel),
                  "%s %s: the streamed map differs", names[k], pipeline_method_name(&p, i));
            npy_free(&a);
        }
        pipeline_out_free(&po);
        image_free(&img);
    }
    pipeline_close(&p);
}

int main(int argc, char **argv) {
    (void)argc;
    RUN(no_class_maps_keeps_the_scores);
    RUN(score_stream_lead_and_twins_from_its_plan);
    return t_finish(argv[0]);
}
