// End to end through the command-line tool: forward on the tiny golden InternImage, score on real
// CamVid-OOD images with the real ESPNet CamVid model, thread invariance, and the error paths a
// user hits (each with its own exit status and a message naming what was wrong).
#include "test.h"
#include "../io/checkpoint.h"
#include "../io/npy.h"
#include "../io/image.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

static char bin[1024];

static int exists(const char *p) { struct stat st; return stat(p, &st) == 0; }

// Runs the tool with stderr captured to tmp/err.txt; returns the exit status.
static int tool(const char *fmt, const char *a, const char *b, const char *c) {
    char args[6000];
    snprintf(args, sizeof args, fmt, a, b, c);
    return t_sh("%s %s 2>%s/err.txt >%s/out.txt", bin, args, t_tmpdir(), t_tmpdir());
}

static int err_has(const char *needle) {
    char p[512], buf[8192] = "";
    snprintf(p, sizeof p, "%s/err.txt", t_tmpdir());
    FILE *f = fopen(p, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    if (!strstr(buf, needle)) { fprintf(stderr, "  stderr was: %s\n", buf); return 0; }
    return 1;
}

TEST(forward_tiny_t_matches_golden) {
    ASSET_OR_SKIP(model, "golden/tiny-t/model.pth");
    ASSET_OR_SKIP(img, "golden/tiny-t/image.png");
    ASSET_OR_SKIP(io, "golden/tiny-t/io.safetensors");
    char out[512];
    snprintf(out, sizeof out, "%s/tiny.safetensors", t_tmpdir());
    REQUIRE(tool("forward --model %s --size native --save %s %s", model, out, img) == 0);
    ckpt *a = NULL, *g = NULL;
    err e = {0};
    REQUIRE(ckpt_open(out, &a, &e) == 0, "%s", e.msg);
    REQUIRE(ckpt_open(io, &g, &e) == 0, "%s", e.msg);
    const char *names[] = {"input", "backbone.out0", "backbone.out1", "backbone.out2", "backbone.out3", "decode.logits", "logits"};
    for (int i = 0; i < 7; i++) {
        const ckpt_entry *x = ckpt_find(a, names[i]), *y = ckpt_find(g, names[i]);
        CHECK(x && y, "tensor %s missing", names[i]);
        if (!x || !y) continue;
        CHECK(x->numel == y->numel, "%s: %lld vs %lld values", names[i], (long long)x->numel, (long long)y->numel);
        if (x->numel != y->numel) continue;
        double d = t_max_abs_diff(x->f32, y->f32, x->numel);
        fprintf(stderr, "  %-16s max abs err %.2e\n", names[i], d);
        CHECK(d <= 1e-4, "%s: max abs err %g > 1e-4", names[i], d);
    }
    ckpt_close(a);
    ckpt_close(g);
}

static int read_npy(const char *path, npy_array *a) {
    err e = {0};
    int rc = npy_read(path, a, &e);
    if (rc) fprintf(stderr, "  %s\n", e.msg);
    return rc;
}

TEST(score_camvid_outputs_threads_determinism) {
    ASSET_OR_SKIP(model, "models/espnet/pretrained/decoder/espnet_p_2_q_8_camvid.pth");
    ASSET_OR_SKIP(img, "data/camvid-ood/test_ood/0001TP_008550.png");
    char d1[512], d2[512];
    snprintf(d1, sizeof d1, "%s/s1", t_tmpdir());
    snprintf(d2, sizeof d2, "%s/s2", t_tmpdir());
    REQUIRE(tool("score --model %s --method maxlogit,kmeans --threads 1 -o %s %s", model, d1, img) == 0);
    REQUIRE(tool("score --model %s --method maxlogit,kmeans --threads 2 -o %s %s", model, d2, img) == 0);
    const char *files[] = {"_maxlogit_score.npy", "_kmeans_score.npy", "_maxlogit_heat.png", "_maxlogit_overlay.png",
                           "_seg.png", "_kmeans_clusters.png", "_kmeans_heat.png"};
    for (int i = 0; i < 7; i++) {
        char p[700];
        snprintf(p, sizeof p, "%s/0001TP_008550%s", d1, files[i]);
        CHECK(exists(p), "missing output %s", p);
        if (strstr(p, ".png") && exists(p)) {
            image im = {0};
            err e = {0};
            CHECK(image_load_rgb(p, &im, &e) == 0 && im.w == 480 && im.h > 360, "%s: %s", p, e.msg);   // + its strip
            image_free(&im);
        }
    }
    for (int k = 0; k < 2; k++) {
        char p1[700], p2[700];
        snprintf(p1, sizeof p1, "%s/0001TP_008550%s", d1, files[k]);
        snprintf(p2, sizeof p2, "%s/0001TP_008550%s", d2, files[k]);
        npy_array a = {0}, b = {0};
        if (read_npy(p1, &a) || read_npy(p2, &b)) { CHECK(0, "unreadable score maps"); npy_free(&a); npy_free(&b); continue; }
        CHECK(a.ndim == 2 && a.shape[0] == 360 && a.shape[1] == 480, "score shape");
        CHECK(!strcmp(a.dtype, "f4"));
        int finite = 1;
        for (int64_t i = 0; i < a.numel; i++) finite &= isfinite(((float *)a.data)[i]);
        CHECK(finite, "non-finite scores");
        CHECK(a.numel == b.numel && memcmp(a.data, b.data, (size_t)a.numel * 4) == 0,
              "%s differs between --threads 1 and 2", files[k]);
        npy_free(&a);
        npy_free(&b);
    }
}

TEST(user_errors_have_their_own_exit_codes) {
    ASSET_OR_SKIP(model, "models/espnet/pretrained/decoder/espnet_p_2_q_8_camvid.pth");
    ASSET_OR_SKIP(img, "data/camvid-ood/test_ood/0001TP_008550.png");
    char out[512], bad[512], trunc[512];
    snprintf(out, sizeof out, "%s/errs", t_tmpdir());
    CHECK(tool("score --model %s --method nosuch -o %s %s", model, out, img) == 2 && err_has("nosuch"));
    CHECK(tool("score --model %s --method kmeans --k 0 -o %s %s", model, out, img) == 2 && err_has("k"));
    CHECK(tool("score --model %s --frobnicate 3 -o %s %s", model, out, img) == 2 && err_has("--frobnicate"));
    CHECK(tool("score --model %s/none.pth -o %s %s", t_tmpdir(), out, img) == 3 && err_has("none.pth"));
    snprintf(bad, sizeof bad, "%s/garbage.pth", t_tmpdir());
    FILE *f = fopen(bad, "wb");
    REQUIRE(f);
    fputs("this is not a checkpoint at all, just some text", f);
    fclose(f);
    CHECK(tool("info %s%s%s", bad, "", "") == 4 && err_has("garbage.pth"));
    // a PNG cut in the middle
    snprintf(trunc, sizeof trunc, "%s/cut.png", t_tmpdir());
    REQUIRE(t_sh("head -c 20000 '%s' > '%s'", img, trunc) == 0);
    CHECK(tool("score --model %s -o %s %s", model, out, trunc) == 4 && err_has("cut.png"));
    // ESPNet needs H, W % 8 in {0, 7}
    CHECK(tool("score --model %s --size 483x360 -o %s %s", model, out, img) == 2 && err_has("483"));
    // no --model, no default model under $OODSEG_ASSETS and none beside the program (a copy of it
    // in a bare folder): where to get it, with its checksum
    REQUIRE(t_sh("mkdir -p '%s/bare/bin' && cp '%s' '%s/bare/bin/oodseg'", t_tmpdir(), bin, t_tmpdir()) == 0);
    CHECK(t_sh("OODSEG_ASSETS=%s/no-assets %s/bare/bin/oodseg score -o %s %s 2>%s/err.txt", t_tmpdir(), t_tmpdir(), out, img, t_tmpdir()) == 3 &&
          err_has("EdgeNets") && err_has("a72d59699801c7ce8e8b89a53af9097eaaa60dc12180ecde86fd700ba1222fe8"));
    // an empty folder
    char empty[512];
    snprintf(empty, sizeof empty, "%s/empty", t_tmpdir());
    REQUIRE(t_sh("mkdir -p '%s'", empty) == 0);
    CHECK(tool("score --model %s -o %s %s", model, out, empty) == 3 && err_has("empty"));
}

TEST(info_names_architecture) {
    ASSET_OR_SKIP(model, "models/espnetv2/espnetv2_s_2.0_city_1024x512.pth");
    REQUIRE(tool("info %s%s%s", model, "", "") == 0);
    char p[512], buf[8192] = "";
    snprintf(p, sizeof p, "%s/out.txt", t_tmpdir());
    FILE *f = fopen(p, "rb");
    REQUIRE(f);
    buf[fread(buf, 1, sizeof buf - 1, f)] = 0;
    fclose(f);
    CHECK(strstr(buf, "espnetv2") && strstr(buf, "cityscapes") && strstr(buf, "torch-legacy"), "%s", buf);
}

// The whole score path on the tiny golden InternImage (stride-32 taps, 19 Cityscapes classes):
// every output readable, at the image size, finite, and the same on a second run.
TEST(score_tiny_internimage_end_to_end) {
    ASSET_OR_SKIP(model, "golden/tiny-t/model.safetensors");
    ASSET_OR_SKIP(img, "golden/tiny-t/image.png");
    char d1[512], d2[512];
    snprintf(d1, sizeof d1, "%s/ti1", t_tmpdir());
    snprintf(d2, sizeof d2, "%s/ti2", t_tmpdir());
    for (int r = 0; r < 2; r++)
        REQUIRE(tool("score --model %s --size native --method maxlogit,msp,entropy,energy,kmeans --k 4 -o %s %s",
                     model, r ? d2 : d1, img) == 0);
    const char *m[] = {"maxlogit", "msp", "entropy", "energy", "kmeans"};
    for (int k = 0; k < 5; k++) {
        char p1[700], p2[700];
        snprintf(p1, sizeof p1, "%s/image_%s_score.npy", d1, m[k]);
        snprintf(p2, sizeof p2, "%s/image_%s_score.npy", d2, m[k]);
        npy_array a = {0}, b = {0};
        if (read_npy(p1, &a) || read_npy(p2, &b)) { CHECK(0, "%s unreadable", p1); npy_free(&a); npy_free(&b); continue; }
        CHECK(a.ndim == 2 && a.shape[0] == 96 && a.shape[1] == 160, "%s: shape", m[k]);
        float lo = INFINITY, hi = -INFINITY;
        for (int64_t i = 0; i < a.numel; i++) { float v = ((float *)a.data)[i]; lo = fminf(lo, v); hi = fmaxf(hi, v); }
        CHECK(isfinite(lo) && isfinite(hi) && hi > lo, "%s: range [%g, %g]", m[k], lo, hi);
        if (!strcmp(m[k], "msp")) CHECK(lo >= 0 && hi <= 1, "MSP outside [0, 1]");
        if (!strcmp(m[k], "entropy")) CHECK(lo >= 0 && hi <= logf(19) + 1e-5f, "entropy outside [0, ln 19]");
        CHECK(a.numel == b.numel && memcmp(a.data, b.data, (size_t)a.numel * 4) == 0, "%s: not deterministic", m[k]);
        npy_free(&a);
        npy_free(&b);
        const char *pics[] = {"heat", "overlay"};
        for (int q = 0; q < 2; q++) {
            char p[700];
            snprintf(p, sizeof p, "%s/image_%s_%s.png", d1, m[k], pics[q]);
            image im = {0};
            err e = {0};
            CHECK(image_load_rgb(p, &im, &e) == 0 && im.w == 160 && im.h > 96, "%s: %s", p, e.msg);   // + its colour bar
            image_free(&im);
        }
    }
    char p[700];
    snprintf(p, sizeof p, "%s/image_seg.png", d1);
    CHECK(exists(p), "%s", p);
    snprintf(p, sizeof p, "%s/image_kmeans_clusters.png", d1);
    CHECK(exists(p), "%s", p);
}

// --pictures and --no-npy choose what score writes; the pictures read back at the image's size.
TEST(score_picture_formats_and_no_npy) {
    ASSET_OR_SKIP(model, "models/espnet/pretrained/decoder/espnet_p_2_q_8_camvid.pth");
    ASSET_OR_SKIP(img, "data/camvid-ood/test_ood/0001TP_008550.png");
    const char *fmts[] = {"jpg", "webp", "png"};
    for (int f = 0; f < 3; f++) {
        char d[512], args[3000], p[700];
        snprintf(d, sizeof d, "%s/pic_%s", t_tmpdir(), fmts[f]);
        snprintf(args, sizeof args, "score --model %s --method maxlogit --pictures %s --no-npy -o %s", model, fmts[f], d);
        REQUIRE(tool("%s %s%s", args, img, "") == 0);
        const char *kinds[] = {"maxlogit_heat", "maxlogit_overlay", "seg"};
        for (int k = 0; k < 3; k++) {
            snprintf(p, sizeof p, "%s/0001TP_008550_%s.%s", d, kinds[k], fmts[f]);
            image im = {0};
            err e = {0};
            CHECK(image_load_rgb(p, &im, &e) == 0 && im.w == 480 && im.h > 360, "%s: %s", p, e.msg);
            image_free(&im);
        }
        snprintf(p, sizeof p, "%s/0001TP_008550_maxlogit_score.npy", d);
        CHECK(!exists(p), "--no-npy wrote %s", p);
    }
    char d[512], p[700];
    snprintf(d, sizeof d, "%s/pic_none", t_tmpdir());
    REQUIRE(tool("score --model %s --method maxlogit --pictures none -o %s %s", model, d, img) == 0);
    snprintf(p, sizeof p, "%s/0001TP_008550_maxlogit_score.npy", d);
    CHECK(exists(p), "%s", p);
    snprintf(p, sizeof p, "%s/0001TP_008550_maxlogit_heat.png", d);
    CHECK(!exists(p), "--pictures none wrote %s", p);
    CHECK(tool("score --model %s --pictures bmp -o %s %s", model, d, img) == 2 && err_has("--pictures 'bmp'"));
}

// A file the writer thread cannot write stops the run with its name, after the images before it
// are written and before any after it.
TEST(score_write_error_names_the_file_and_stops) {
    ASSET_OR_SKIP(model, "models/espnet/pretrained/decoder/espnet_p_2_q_8_camvid.pth");
    ASSET_OR_SKIP(img, "data/camvid-ood/test_ood/0001TP_008550.png");
    char in[512], out[512], p[700];
    snprintf(in, sizeof in, "%s/we_in", t_tmpdir());
    snprintf(out, sizeof out, "%s/we_out", t_tmpdir());
    REQUIRE(t_sh("mkdir -p %s %s/b_maxlogit_heat.png && for x in a b c d; do cp %s %s/$x.png; done", in, out, img, in) == 0);
    CHECK(tool("score --model %s --method maxlogit --fail-fast -o %s %s", model, out, in) == 3 && err_has("b_maxlogit_heat.png"));
    snprintf(p, sizeof p, "%s/a_maxlogit_overlay.png", out);
    CHECK(exists(p), "the image before the failure was not written");
    snprintf(p, sizeof p, "%s/c_maxlogit_score.npy", out);
    CHECK(!exists(p), "an image after the failure was written");
    CHECK(t_sh("ls %s | grep -q tmp", out) != 0, "temporary files left");
}

// eval writes no pictures unless asked; --pictures FMT asks for them in FMT, as score's flag.
TEST(eval_pictures_only_when_asked) {
    ASSET_OR_SKIP(data, "data/camvid-ood/test_ood.txt");
    char root[600], d1[600], d2[600], p[800];
    snprintf(root, sizeof root, "%s", data);
    *strrchr(root, '/') = 0;
    snprintf(d1, sizeof d1, "%s/ev_plain", t_tmpdir());
    snprintf(d2, sizeof d2, "%s/ev_webp", t_tmpdir());
    REQUIRE(tool("eval --size 256x192 --methods maxlogit --limit 1 --no-html --dataset camvid-ood:%s -o %s%s", root, d1, "") == 0);
    snprintf(p, sizeof p, "%s/maps", d1);
    CHECK(!exists(p), "eval wrote pictures unasked: %s", p);
    REQUIRE(tool("eval --size 256x192 --methods maxlogit --limit 1 --no-html --pictures webp --dataset camvid-ood:%s -o %s%s", root, d2, "") == 0);
    snprintf(p, sizeof p, "%s/maps/0001TP_008550_maxlogit_overlay.webp", d2);
    CHECK(exists(p), "%s", p);
}

int main(int argc, char **argv) {
    (void)argc;
    snprintf(bin, sizeof bin, "%s", t_cli_path(argv[0]));
    if (!exists(bin)) { fprintf(stderr, "the CLI %s is not built\n", bin); return 1; }
    RUN(forward_tiny_t_matches_golden);
    RUN(score_camvid_outputs_threads_determinism);
    RUN(user_errors_have_their_own_exit_codes);
    RUN(info_names_architecture);
    RUN(score_tiny_internimage_end_to_end);
    RUN(score_picture_formats_and_no_npy);
    RUN(score_write_error_names_the_file_and_stops);
    RUN(eval_pictures_only_when_asked);
    return t_finish(argv[0]);
}
