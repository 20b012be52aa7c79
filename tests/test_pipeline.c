// The pipeline's switches (api/pipeline.h) that change what a frame computes, not what its scores
// are: no_class_maps (set by `oodseg score --pictures none`) leaves the class and cluster maps at
// image size out, and every score map, the cluster count and the clusters' OoD flags stay the
// bits of the full run.
#include "test.h"
#include "../api/pipeline.h"
#include "../io/image.h"
#include <stdlib.h>
#include <string.h>

#define DEMO_IMAGE "assets/demo/test_ood/0001TP_008550.png"

TEST(no_class_maps_keeps_the_scores) {
    pipeline_config c;
    pipeline_config_default(&c);
    c.threads = 2;
    snprintf(c.methods, sizeof c.methods, "maxlogit,kmeans,energy");
    pipeline p = {0};
    err e = {0};
    if (pipeline_open(&p, &c, &e)) SKIP("default model: %s", e.msg);
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

int main(int argc, char **argv) {
    (void)argc;
    RUN(no_class_maps_keeps_the_scores);
    return t_finish(argv[0]);
}
