// Preprocessing recipes against the golden network inputs: ESPNet (Cityscapes, CamVid) and
// ESPNetv2 on the CamVid-OOD image at working and small sizes, and the mmseg recipe on the tiny
// InternImage image. Also the size rules (keep-ratio, size divisor, overrides, the ESPNet/ESPNetv2
// side constraint) and the mmseg two-step resize against OpenCV at test time.
//
// Max abs error reached (all bit-exact): espnet_city 0, espnet_camvid 0, espnetv2_city 0 (working
// and small inputs), tiny-t 0.
#include "test.h"
#include "../models/model.h"
#include "../io/npy.h"
#include <stdlib.h>
#include <string.h>

// The context every op and model of this program runs on (main sets its threads).
static nn_ctx T;

static const char *CAMVID_IMG = "data/camvid-ood/test_ood/0001TP_008550.png";

static preprocess espnet_recipe(int city) {
    preprocess p;
    memset(&p, 0, sizeof p);
    static const float cm[3] = {72.3923111f, 82.90893555f, 73.15840149f};
    static const float cs[3] = {45.3192215f, 46.15289307f, 44.91483307f};
    static const float vm[3] = {99.83741615005567f, 98.64219557204736f, 96.23319126529964f};
    static const float vs[3] = {71.7018239413646f, 71.20750881826864f, 68.89256989002318f};
    p.bgr = 1;
    memcpy(p.mean, city ? cm : vm, sizeof p.mean);
    memcpy(p.std, city ? cs : vs, sizeof p.std);
    p.scale_after = 1.0f / 255.0f;
    p.div_after = 255.0f;
    p.order = PRE_NORMALISE_THEN_RESIZE;
    p.interp = INTERP_CV_LINEAR_F32;
    p.size_rule = SIZE_FIXED;
    p.size_w = city ? 1024 : 480;
    p.size_h = city ? 512 : 360;
    p.h_mod = p.w_mod = 8;
    return p;
}

static preprocess espnetv2_recipe(void) {
    preprocess p;
    memset(&p, 0, sizeof p);
    const float m[3] = {0.485f, 0.456f, 0.406f}, s[3] = {0.229f, 0.224f, 0.225f};
    memcpy(p.mean, m, sizeof m);
    memcpy(p.std, s, sizeof s);
    p.unit_range = 1;
    p.scale_after = 1.0f;
    p.order = PRE_RESIZE_THEN_NORMALISE;
    p.interp = INTERP_PIL_BILINEAR;
    p.size_rule = SIZE_FIXED;
    p.size_w = 1024;
    p.size_h = 512;
    p.h_mod = p.w_mod = 16;
    return p;
}

static preprocess mmseg_recipe(int ade) {
    preprocess p;
    memset(&p, 0, sizeof p);
    const float m[3] = {123.675f, 116.28f, 103.53f}, s[3] = {58.395f, 57.12f, 57.375f};
    memcpy(p.mean, m, sizeof m);
    memcpy(p.std, s, sizeof s);
    p.scale_after = 1.0f;
    p.order = PRE_RESIZE_THEN_NORMALISE;
    p.interp = INTERP_CV_LINEAR_U8;
    p.size_rule = SIZE_KEEP_RATIO;
    p.size_w = 2048;
    p.size_h = ade ? 512 : 1024;
    p.size_divisor = ade ? 32 : 0;
    return p;
}

// Preprocesses `img_rel` with p and compares with the `input` tensor of `golden_rel`; the size is
// the golden tensor's (override "WxH") unless use_recipe_size.
static void against_golden(const preprocess *p, const char *img_rel, const char *golden_rel,
                           int use_recipe_size) {
    ASSET_OR_SKIP(img_path, img_rel);
    ASSET_OR_SKIP(gold_path, golden_rel);
    err e = {0};
    image img;
    REQUIRE(image_load_rgb(img_path, &img, &e) == 0, "%s", e.msg);
    ckpt *ck;
    if (ckpt_open(gold_path, &ck, &e)) { image_free(&img); REQUIRE(0, "%s", e.msg); }
    const ckpt_entry *in = ckpt_find(ck, "input");
    if (!in || in->ndim != 4 || in->shape[1] != 3 || !in->f32) {
        ckpt_close(ck); image_free(&img);
        REQUIRE(0, "%s: no 1x3xHxW float 'input'", gold_path);
    }
    int gh = (int)in->shape[2], gw = (int)in->shape[3], ow, oh;
    char size[32];
    snprintf(size, sizeof size, "%dx%d", gw, gh);
    int rc = preprocess_target_size(p, img.w, img.h, use_recipe_size ? NULL : size, &ow, &oh, &e);
    CHECK(rc == 0, "%s", e.msg);
    CHECK(ow == gw && oh == gh, "target %dx%d, golden %dx%d", ow, oh, gw, gh);
    if (rc == 0 && ow == gw && oh == gh) {
        float *x = malloc(sizeof(float) * 3 * (size_t)ow * oh);
        rc = preprocess_image(&T, p, &img, ow, oh, x, &e);
        CHECK(rc == 0, "%s", e.msg);
        double d = t_max_abs_diff(x, in->f32, 3 * (int64_t)ow * oh);
        CHECK(d <= 1e-6, "%s: max abs diff %g", golden_rel, d);
        fprintf(stderr, "  %s (%dx%d): max abs diff %g\n", golden_rel, ow, oh, d);
        free(x);
    }
    ckpt_close(ck);
    image_free(&img);
}

TEST(espnet_city_working) {
    preprocess p = espnet_recipe(1);
    against_golden(&p, CAMVID_IMG, "golden/espnet/espnet_city/io-0001TP_008550.safetensors", 1);
}
TEST(espnet_city_small) {
    preprocess p = espnet_recipe(1);
    against_golden(&p, CAMVID_IMG, "golden/espnet/espnet_city/io-small-0001TP_008550.safetensors", 0);
}
TEST(espnet_camvid_working) {
    preprocess p = espnet_recipe(0);
    against_golden(&p, CAMVID_IMG, "golden/espnet/espnet_camvid/io-0001TP_008550.safetensors", 1);
}
TEST(espnet_camvid_small) {
    preprocess p = espnet_recipe(0);
    against_golden(&p, CAMVID_IMG, "golden/espnet/espnet_camvid/io-small-0001TP_008550.safetensors", 0);
}
TEST(espnetv2_city_working) {
    preprocess p = espnetv2_recipe();
    against_golden(&p, CAMVID_IMG, "golden/espnet/espnetv2_city/io-0001TP_008550.safetensors", 1);
}
TEST(espnetv2_city_small) {
    preprocess p = espnetv2_recipe();
    against_golden(&p, CAMVID_IMG, "golden/espnet/espnetv2_city/io-small-0001TP_008550.safetensors", 0);
}
TEST(mmseg_tiny_t_native) {
    preprocess p = mmseg_recipe(0);
    against_golden(&p, "golden/tiny-t/image.png", "golden/tiny-t/io.safetensors", 0);
    // "native" gives the same size
    int w, h;
    err e = {0};
    CHECK(preprocess_target_size(&p, 160, 96, "native", &w, &h, &e) == 0 && w == 160 && h == 96,
          "native: %dx%d %s", w, h, e.msg);
}

TEST(size_rules) {
    err e = {0};
    int w, h;
    preprocess city = mmseg_recipe(0), ade = mmseg_recipe(1);
    REQUIRE(preprocess_target_size(&city, 1280, 720, NULL, &w, &h, &e) == 0, "%s", e.msg);
    CHECK(w == 1820 && h == 1024, "RoadAnomaly 1280x720 -> %dx%d, want 1820x1024", w, h);
    REQUIRE(preprocess_target_size(&city, 2048, 1024, NULL, &w, &h, &e) == 0, "%s", e.msg);
    CHECK(w == 2048 && h == 1024, "2048x1024 -> %dx%d", w, h);
    REQUIRE(preprocess_target_size(&ade, 640, 480, NULL, &w, &h, &e) == 0, "%s", e.msg);
    // f = min(2048/640, 512/480) -> 683x512 -> multiples of 32: 704x512
    CHECK(w == 704 && h == 512, "ADE 640x480 -> %dx%d, want 704x512", w, h);
    preprocess es = espnet_recipe(1);
    REQUIRE(preprocess_target_size(&es, 480, 360, NULL, &w, &h, &e) == 0, "%s", e.msg);
    CHECK(w == 1024 && h == 512, "ESPNet -> %dx%d", w, h);
    CHECK(preprocess_target_size(&es, 480, 360, "native", &w, &h, &e) == 0 && w == 480 && h == 360,
          "native %s", e.msg);
    CHECK(preprocess_target_size(&es, 480, 360, "479x359", &w, &h, &e) == 0, "7 mod 8 is allowed: %s", e.msg);
    // 481x361: both sides wrong; the message names the size and nearby valid sizes
    CHECK(preprocess_target_size(&es, 481, 361, "native", &w, &h, &e) == OODSEG_E_ARG, "481x361 accepted");
    CHECK(strstr(e.msg, "481x361") && strstr(e.msg, "480") && strstr(e.msg, "360") && strstr(e.msg, "--size"),
          "message: %s", e.msg);
    preprocess v2 = espnetv2_recipe();
    CHECK(preprocess_target_size(&v2, 480, 360, "1000x500", &w, &h, &e) == OODSEG_E_ARG, "1000x500 accepted for mod 16");
    CHECK(strstr(e.msg, "1008") || strstr(e.msg, "1007"), "nearby sizes: %s", e.msg);
    static const char *bad[] = {"x", "12", "0x5", "5x", "-3x4", "100000x10", "10x10x", "abc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear(&e);
        CHECK(preprocess_target_size(&city, 100, 100, bad[i], &w, &h, &e) == OODSEG_E_ARG,
              "'%s' accepted", bad[i]);
    }
}

// mmseg ADE20K: keep-ratio cv2 resize, then a second cv2 resize to the multiple of 32; and the
// Cityscapes keep-ratio resize, against OpenCV at test time (uint8 throughout, then normalised).
TEST(mmseg_resizes_match_opencv) {
    if (!t_python_has("numpy cv2")) SKIP("/usr/bin/python3 with numpy and cv2 is not available");
    ASSET_OR_SKIP(img_path, CAMVID_IMG);
    err e = {0};
    image img;
    REQUIRE(image_load_rgb(img_path, &img, &e) == 0, "%s", e.msg);
    const char *td = t_tmpdir();
    char src[512], py[512];
    snprintf(src, sizeof src, "%s/pre_src.npy", td);
    snprintf(py, sizeof py, "%s/pre_ref.py", td);
    int64_t shp[3] = {img.h, img.w, 3};
    REQUIRE(npy_write(src, "u1", img.px, 3, shp, &e) == 0, "%s", e.msg);
    FILE *f = fopen(py, "w");
    REQUIRE(f, "cannot write %s", py);
    fputs("import sys, numpy as np, cv2\n"
          "a = np.load(sys.argv[1])\n"
          "mean = np.array([123.675, 116.28, 103.53], np.float32)\n"
          "std = np.array([58.395, 57.12, 57.375], np.float32)\n"
          "for name, (kw, kh), (fw, fh) in [('city', (1365, 1024), (1365, 1024)), ('ade', (683, 512), (704, 512))]:\n"
          "    r = cv2.resize(a, (kw, kh), interpolation=cv2.INTER_LINEAR)\n"
          "    if (fw, fh) != (kw, kh): r = cv2.resize(r, (fw, fh), interpolation=cv2.INTER_LINEAR)\n"
          "    x = ((r.astype(np.float32) - mean) / std).transpose(2, 0, 1)\n"
          "    np.save(sys.argv[2] + '_' + name + '.npy', np.ascontiguousarray(x))\n", f);
    fclose(f);
    char dst[512];
    snprintf(dst, sizeof dst, "%s/pre_out", td);
    if (t_sh("/usr/bin/python3 %s %s %s", py, src, dst)) { image_free(&img); REQUIRE(0, "python reference failed"); }
    for (int ade = 0; ade < 2; ade++) {
        preprocess p = mmseg_recipe(ade);
        int w, h;
        CHECK(preprocess_target_size(&p, img.w, img.h, NULL, &w, &h, &e) == 0, "%s", e.msg);
        char out[600];
        snprintf(out, sizeof out, "%s_%s.npy", dst, ade ? "ade" : "city");
        npy_array r;
        if (npy_read(out, &r, &e)) { CHECK(0, "%s", e.msg); continue; }
        CHECK(r.numel == 3 * (int64_t)w * h, "%s: %lld values for %dx%d", out, (long long)r.numel, w, h);
        if (r.numel == 3 * (int64_t)w * h) {
            float *x = malloc(sizeof(float) * 3 * (size_t)w * h);
            CHECK(preprocess_image(&T, &p, &img, w, h, x, &e) == 0, "%s", e.msg);
            double d = t_max_abs_diff(x, r.data, r.numel);
            CHECK(d == 0, "%s %dx%d: max abs diff %g", ade ? "ADE20K" : "Cityscapes", w, h, d);
            free(x);
        }
        npy_free(&r);
    }
    image_free(&img);
}

int main(int argc, char **argv) {
    nn_ctx_init(&T, 0);   // every core
    (void)argc;
    RUN(espnet_city_working);
    RUN(espnet_city_small);
    RUN(espnet_camvid_working);
    RUN(espnet_camvid_small);
    RUN(espnetv2_city_working);
    RUN(espnetv2_city_small);
    RUN(mmseg_tiny_t_native);
    RUN(size_rules);
    RUN(mmseg_resizes_match_opencv);
    return t_finish(argv[0]);
}
