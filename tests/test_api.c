// The public API (include/oodseg.h) only: open, run on a tensor / RGB / file, read outputs, errors
// as status codes, and two model instances running in two threads at once.
#include "test.h"
#include "../include/oodseg.h"
#include "../io/checkpoint.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

TEST(run_tensor_matches_golden_logits) {
    ASSET_OR_SKIP(model, "golden/tiny-t/model.safetensors");
    ASSET_OR_SKIP(io, "golden/tiny-t/io.safetensors");
    ckpt *g = NULL;
    err e = {0};
    REQUIRE(ckpt_open(io, &g, &e) == 0, "%s", e.msg);
    const ckpt_entry *in = ckpt_find(g, "input"), *lg = ckpt_find(g, "logits");
    REQUIRE(in && lg);
    oodseg_status st;
    oodseg_model *m;
    oodseg_options opt = {0};
    opt.want_all = 1;
    REQUIRE(oodseg_model_open(model, &opt, &m, &st) == OODSEG_OK, "%s", st.message);
    oodseg_model_info info;
    oodseg_model_get_info(m, &info);
    CHECK(info.num_outputs == 19 && info.num_id_classes == 19 && !strcmp(info.source_format, "safetensors"));
    oodseg_result *r;
    REQUIRE(oodseg_run_tensor(m, in->f32, (int)in->shape[2], (int)in->shape[3], &r, &st) == OODSEG_OK, "%s", st.message);
    oodseg_tensor t;
    REQUIRE(oodseg_result_get(r, "logits", &t, &st) == OODSEG_OK, "%s", st.message);
    CHECK(t.ndim == 4 && t.shape[1] == 19 && t.shape[2] == 96 && t.shape[3] == 160);
    double d = t_max_abs_diff(t.data, lg->f32, lg->numel);
    CHECK(d <= 1e-4, "logits max abs err %g", d);
    CHECK(oodseg_result_count(r) > 10, "want_all returns the intermediates (%d outputs)", oodseg_result_count(r));
    CHECK(oodseg_result_get(r, "no.such.tensor", &t, &st) == OODSEG_E_ARG && strstr(st.message, "no.such.tensor"));
    CHECK(oodseg_result_at(r, 9999, &t) == OODSEG_E_ARG);
    oodseg_result_free(r);
    oodseg_model_close(m);
    ckpt_close(g);
}

TEST(errors_are_status_codes) {
    oodseg_status st;
    oodseg_model *m = (oodseg_model *)1;
    CHECK(oodseg_model_open("/nonexistent/model.pth", NULL, &m, &st) == OODSEG_E_IO && m == NULL);
    CHECK(strstr(st.message, "/nonexistent/model.pth") != NULL, "%s", st.message);
    CHECK(oodseg_model_open("model.pth", NULL, NULL, &st) == OODSEG_E_ARG);   // no out
    oodseg_options gpu = {0};
    gpu.device = 1;
    CHECK(oodseg_model_open(NULL, &gpu, &m, &st) == OODSEG_E_ARG && m == NULL && strstr(st.message, "CPU"), "%s", st.message);
    ASSET_OR_SKIP(model, "models/espnet/pretrained/decoder/espnet_p_2_q_8_camvid.pth");
    REQUIRE(oodseg_model_open(model, NULL, &m, &st) == OODSEG_OK, "%s", st.message);
    oodseg_result *r = NULL;
    CHECK(oodseg_run_image(m, "/nonexistent.png", &r, &st) == OODSEG_E_IO && r == NULL);
    uint8_t px[3 * 16 * 20] = {0};
    // 20 wide is fine for ESPNet only through its fixed 480x360 resize; run it
    CHECK(oodseg_run_rgb(m, px, 20, 16, &r, &st) == OODSEG_OK, "%s", st.message);
    oodseg_result_free(r);
    oodseg_model_close(m);
    oodseg_options bad = {0};
    bad.size = "481x360";
    CHECK(oodseg_model_open(model, &bad, &m, &st) == OODSEG_OK);
    CHECK(oodseg_run_rgb(m, px, 20, 16, &r, &st) == OODSEG_E_ARG && strstr(st.message, "481"), "%s", st.message);
    oodseg_model_close(m);
}

typedef struct job { const char *model, *image; float *out; int64_t n; int rc; } job;

static void *run_job(void *p) {
    job *j = p;
    oodseg_status st;
    oodseg_model *m;
    if ((j->rc = oodseg_model_open(j->model, NULL, &m, &st))) return NULL;
    oodseg_result *r;
    if (!(j->rc = oodseg_run_image(m, j->image, &r, &st))) {
        oodseg_tensor t;
        oodseg_result_get(r, "logits", &t, &st);
        j->n = t.shape[1] * t.shape[2] * t.shape[3];
        j->out = malloc((size_t)j->n * sizeof(float));
        memcpy(j->out, t.data, (size_t)j->n * sizeof(float));
        oodseg_result_free(r);
    }
    oodseg_model_close(m);
    return NULL;
}

TEST(two_instances_in_two_threads) {
    ASSET_OR_SKIP(model, "models/espnet/pretrained/decoder/espnet_p_2_q_8_camvid.pth");
    ASSET_OR_SKIP(img, "data/camvid-ood/test_ood/0001TP_008550.png");
    job a = {model, img, NULL, 0, -1}, b = {model, img, NULL, 0, -1}, c = {model, img, NULL, 0, -1};
    run_job(&c);   // alone, for reference
    pthread_t ta, tb;
    pthread_create(&ta, NULL, run_job, &a);
    pthread_create(&tb, NULL, run_job, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    REQUIRE(a.rc == 0 && b.rc == 0 && c.rc == 0);
    CHECK(a.n == c.n && b.n == c.n);
    CHECK(memcmp(a.out, c.out, (size_t)c.n * 4) == 0 && memcmp(b.out, c.out, (size_t)c.n * 4) == 0,
          "concurrent instances changed the result");
    free(a.out); free(b.out); free(c.out);
}

int main(int argc, char **argv) {
    (void)argc;
    RUN(run_tensor_matches_golden_logits);
    RUN(errors_are_status_codes);
    RUN(two_instances_in_two_threads);
    return t_finish(argv[0]);
}
