// Dataset layouts: small replicas of each layout with real image files in a temporary folder
// (pairing, label mapping, every validation error), and the real CamVid-OOD copy.
#include "test.h"
#include "../eval/datasets.h"
#include "../io/image.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char root_buf[8][1024];
static int root_k;
// A fresh folder under the test's temporary directory.
static const char *fresh(const char *name) {
    char *p = root_buf[root_k++ & 7];
    snprintf(p, 1024, "%s/%s", t_tmpdir(), name);
    t_sh("rm -rf '%s' && mkdir -p '%s'", p, p);
    return p;
}

static void mk(const char *root, const char *sub) { t_sh("mkdir -p '%s/%s'", root, sub); }

// PNG with c channels, w x h, pixel values from vals (cycled) or a gradient when vals is NULL.
static int png(const char *root, const char *rel, int w, int h, int c, const uint8_t *vals, int nv) {
    image im = {w, h, c, malloc((size_t)w * h * c)};
    for (int i = 0; i < w * h * c; i++) im.px[i] = vals ? vals[(i / c) % nv] : (uint8_t)(i * 7);
    char p[2048];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    err e = {0};
    int rc = image_save_png(p, &im, &e);
    if (rc) fprintf(stderr, "  %s\n", e.msg);
    free(im.px);
    return rc;
}

// JPEG or WebP through Debian's PIL (the C side only reads these formats).
static int have_pil(void) { return t_python_has("PIL"); }
static int pil_image(const char *root, const char *rel, int w, int h) {
    return t_sh("/usr/bin/python3 -c \"from PIL import Image; Image.new('RGB', (%d, %d), (90, 120, 200)).save('%s/%s')\"",
                w, h, root, rel);
}

static void write_text(const char *root, const char *rel, const char *txt) {
    char p[2048];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    FILE *f = fopen(p, "w");
    if (f) { fputs(txt, f); fclose(f); }
}

static char spec_buf[2048];
static const char *spec(const char *name, const char *root) {
    snprintf(spec_buf, sizeof spec_buf, "%s:%s", name, root);
    return spec_buf;
}

TEST(camvid_replica_and_errors) {
    const char *r = fresh("camvid");
    mk(r, "test_ood"); mk(r, "testannot_ood");
    uint8_t v[14] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 3};
    REQUIRE(png(r, "test_ood/f1.png", 7, 2, 3, NULL, 0) == 0);
    REQUIRE(png(r, "testannot_ood/f1.png", 7, 2, 1, v, 14) == 0);
    REQUIRE(png(r, "test_ood/f0.png", 7, 2, 3, NULL, 0) == 0);
    REQUIRE(png(r, "testannot_ood/f0.png", 7, 2, 1, v, 1) == 0);
    write_text(r, "test_ood.txt", "test_ood/f1.png testannot_ood/f1.png\ntest_ood/f0.png testannot_ood/f0.png\n\n");
    dataset ds;
    err e = {0};
    REQUIRE(dataset_open(spec("camvid-ood", r), NULL, &ds, &e) == 0, "%s", e.msg);
    REQUIRE(ds.n == 2);
    CHECK(strcmp(ds.items[0].stem, "f1") == 0 && strstr(ds.items[0].label, "testannot_ood/f1.png"));   // list order
    image im, lab;
    REQUIRE(image_load_rgb(ds.items[0].image, &im, &e) == 0, "%s", e.msg);
    REQUIRE(dataset_load_label(&ds, 0, im.w, im.h, &lab, &e) == 0, "%s", e.msg);
    for (int i = 0; i < 14; i++) {
        uint8_t want = v[i] <= 10 ? 0 : v[i] == 11 ? 255 : 1;
        CHECK(lab.px[i] == want, "value %u -> %u, want %u", v[i], lab.px[i], want);
    }
    image_free(&lab);
    // label of another size than its image
    CHECK(dataset_load_label(&ds, 0, im.w + 1, im.h, &lab, &e) == OODSEG_E_DATA);
    CHECK(strstr(e.msg, "testannot_ood/f1.png") && strstr(e.msg, "7x2") && strstr(e.msg, "test_ood/f1.png"), "%s", e.msg);
    image_free(&im);
    // an unknown value names the file, the value and the pixel
    uint8_t bad[3] = {0, 0, 13};
    REQUIRE(png(r, "testannot_ood/f0.png", 7, 2, 1, bad, 3) == 0);
    CHECK(dataset_load_label(&ds, 1, 0, 0, &lab, &e) == OODSEG_E_DATA);
    CHECK(strstr(e.msg, "f0.png") && strstr(e.msg, "value 13") && strstr(e.msg, "x 2, y 0"), "%s", e.msg);
    // shard and limit
    CHECK(dataset_select(&ds, 0, 1, 2, &e) == 0 && ds.n == 1 && strcmp(ds.items[0].stem, "f0") == 0);
    dataset_free(&ds);
    // a listed label that is missing
    write_text(r, "test_ood.txt", "test_ood/f1.png testannot_ood/nope.png\n");
    CHECK(dataset_open(spec("camvid-ood", r), NULL, &ds, &e) == OODSEG_E_DATA && strstr(e.msg, "nope.png"), "%s", e.msg);
    write_text(r, "test_ood.txt", "test_ood/f1.png\n");
    CHECK(dataset_open(spec("camvid-ood", r), NULL, &ds, &e) == OODSEG_E_DATA && strstr(e.msg, "line 1"), "%s", e.msg);
    // the list file itself missing
    t_sh("rm '%s/test_ood.txt'", r);
    CHECK(dataset_open(spec("camvid-ood", r), NULL, &ds, &e) == OODSEG_E_DATA && strstr(e.msg, "test_ood.txt") && strstr(e.msg, "missing list"), "%s", e.msg);
    CHECK(dataset_open("nosuch:/tmp", NULL, &ds, &e) == OODSEG_E_ARG && strstr(e.msg, "camvid-ood"), "%s", e.msg);
    CHECK(dataset_open(spec("camvid-ood", "/nonexistent/x"), NULL, &ds, &e) == OODSEG_E_DATA && strstr(e.msg, "/nonexistent/x"));
}

TEST(roadanomaly_replica) {
    if (!have_pil()) SKIP("/usr/bin/python3 has no PIL (python3-pil) to write the JPEG frames");
    const char *r = fresh("ra");
    mk(r, "frames/a.labels"); mk(r, "frames/b.labels");
    REQUIRE(pil_image(r, "frames/a.jpg", 8, 6) == 0 && pil_image(r, "frames/b.jpg", 8, 6) == 0);
    uint8_t v[3] = {0, 2, 255};
    REQUIRE(png(r, "frames/a.labels/labels_semantic.png", 8, 6, 1, v, 3) == 0);
    REQUIRE(png(r, "frames/b.labels/labels_semantic.png", 8, 6, 1, v, 2) == 0);
    write_text(r, "frame_list.json", "[\"b.jpg\", \"a.jpg\"]");
    dataset ds;
    err e = {0};
    REQUIRE(dataset_open(spec("roadanomaly", r), NULL, &ds, &e) == 0, "%s", e.msg);
    REQUIRE(ds.n == 2 && strcmp(ds.items[0].stem, "b") == 0 && strcmp(ds.items[1].stem, "a") == 0);
    image im, lab;
    REQUIRE(image_load_rgb(ds.items[1].image, &im, &e) == 0, "%s", e.msg);
    REQUIRE(dataset_load_label(&ds, 1, im.w, im.h, &lab, &e) == 0, "%s", e.msg);
    CHECK(lab.px[0] == 0 && lab.px[1] == 1 && lab.px[2] == 255);
    image_free(&lab); image_free(&im);
    uint8_t one[1] = {1};   // 1 is not a RoadAnomaly label
    REQUIRE(png(r, "frames/a.labels/labels_semantic.png", 8, 6, 1, one, 1) == 0);
    CHECK(dataset_load_label(&ds, 1, 8, 6, &lab, &e) == OODSEG_E_DATA && strstr(e.msg, "value 1") && strstr(e.msg, "a.labels"), "%s", e.msg);
    dataset_free(&ds);
    t_sh("rm '%s/frames/b.labels/labels_semantic.png'", r);
    CHECK(dataset_open(spec("roadanomaly", r), NULL, &ds, &e) == OODSEG_E_DATA && strstr(e.msg, "b.jpg") && strstr(e.msg, "unpaired"), "%s", e.msg);
    write_text(r, "frame_list.json", "{\"a\": 1}");
    CHECK(dataset_open(spec("roadanomaly", r), NULL, &ds, &e) == OODSEG_E_DATA && strstr(e.msg, "frame_list.json"), "%s", e.msg);
    t_sh("rm '%s/frame_list.json'", r);
    CHECK(dataset_open(spec("roadanomaly", r), NULL, &ds, &e) == OODSEG_E_DATA && strstr(e.msg, "frame_list.json"), "%s", e.msg);
}

TEST(smiyc_replica) {
    if (!have_pil()) SKIP("/usr/bin/python3 has no PIL (python3-pil) to write JPEG/WebP images");
    const char *r = fresh("smiyc");
    mk(r, "images"); mk(r, "labels_masks");
    REQUIRE(pil_image(r, "images/x.webp", 5, 4) == 0 && pil_image(r, "images/y.jpg", 5, 4) == 0);
    uint8_t v[3] = {0, 1, 255};
    REQUIRE(png(r, "labels_masks/x_labels_semantic.png", 5, 4, 1, v, 3) == 0);
    REQUIRE(png(r, "labels_masks/y_labels_semantic.png", 5, 4, 1, v, 3) == 0);
    REQUIRE(png(r, "labels_masks/y_labels_semantic_color.png", 5, 4, 3, NULL, 0) == 0);   // ignored
    dataset ds;
    err e = {0};
    REQUIRE(dataset_open(spec("smiyc-obstacle", r), NULL, &ds, &e) == 0, "%s", e.msg);
    CHECK(ds.n == 2 && ds.smiyc_track == 2 && strcmp(ds.items[0].stem, "x") == 0);
    image im, lab;
    REQUIRE(image_load_rgb(ds.items[0].image, &im, &e) == 0, "webp: %s", e.msg);
    REQUIRE(dataset_load_label(&ds, 0, im.w, im.h, &lab, &e) == 0, "%s", e.msg);
    CHECK(lab.px[0] == 0 && lab.px[1] == 1 && lab.px[2] == 255);
    image_free(&lab); image_free(&im);
    dataset_free(&ds);
    REQUIRE(png(r, "labels_masks/z_labels_semantic.png", 5, 4, 1, v, 3) == 0);   // no image z
    CHECK(dataset_open(spec("smiyc-anomaly", r), NULL, &ds, &e) == OODSEG_E_DATA && strstr(e.msg, "z_labels_semantic.png") && strstr(e.msg, "unpaired label"), "%s", e.msg);
    t_sh("rm '%s/labels_masks/z_labels_semantic.png' '%s/labels_masks/x_labels_semantic.png'", r, r);
    CHECK(dataset_open(spec("smiyc-anomaly", r), NULL, &ds, &e) == OODSEG_E_DATA && strstr(e.msg, "x.webp") && strstr(e.msg, "unpaired image"), "%s", e.msg);
    t_sh("rm -f '%s'/images/*", r);
    CHECK(dataset_open(spec("smiyc-anomaly", r), NULL, &ds, &e) == OODSEG_E_DATA && strstr(e.msg, "empty folder") && strstr(e.msg, "images"), "%s", e.msg);
}

TEST(fishyscapes_and_ade_replicas) {
    const char *r = fresh("fs");
    mk(r, "original"); mk(r, "labels");
    uint8_t v[3] = {0, 1, 255};
    REQUIRE(png(r, "original/0.png", 6, 3, 3, NULL, 0) == 0 && png(r, "labels/0.png", 6, 3, 1, v, 3) == 0);
    REQUIRE(png(r, "original/1.png", 6, 3, 3, NULL, 0) == 0 && png(r, "labels/1_labels.png", 6, 3, 1, v, 3) == 0);
    dataset ds;
    err e = {0};
    REQUIRE(dataset_open(spec("fishyscapes-laf", r), NULL, &ds, &e) == 0, "%s", e.msg);
    CHECK(ds.n == 2 && strstr(ds.items[1].label, "1_labels.png"));
    image lab;
    REQUIRE(dataset_load_label(&ds, 1, 6, 3, &lab, &e) == 0, "%s", e.msg);
    CHECK(lab.px[1] == 1 && lab.px[2] == 255);
    image_free(&lab);
    CHECK(dataset_load_label(&ds, 0, 6, 4, &lab, &e) == OODSEG_E_DATA && strstr(e.msg, "6x3"), "%s", e.msg);
    dataset_free(&ds);
    // ADE-OoD: images/*.jpg and annotations/<stem>_mask.png
    if (!have_pil()) SKIP("/usr/bin/python3 has no PIL (python3-pil) to write the JPEG images");
    const char *a = fresh("ade");
    mk(a, "images"); mk(a, "annotations");
    REQUIRE(pil_image(a, "images/ADE_1.jpg", 4, 4) == 0);
    uint8_t av[4] = {0, 1, 255, 3};
    REQUIRE(png(a, "annotations/ADE_1_mask.png", 4, 4, 1, av, 3) == 0);
    REQUIRE(dataset_open(spec("ade-ood", a), NULL, &ds, &e) == 0, "%s", e.msg);
    CHECK(ds.n == 1 && strcmp(ds.items[0].stem, "ADE_1") == 0);
    REQUIRE(dataset_load_label(&ds, 0, 4, 4, &lab, &e) == 0, "%s", e.msg);
    image_free(&lab);
    REQUIRE(png(a, "annotations/ADE_1_mask.png", 4, 4, 1, av, 4) == 0);
    CHECK(dataset_load_label(&ds, 0, 4, 4, &lab, &e) == OODSEG_E_DATA && strstr(e.msg, "value 3"), "%s", e.msg);
    dataset_free(&ds);
}

TEST(generic_layout) {
    const char *r = fresh("gen");
    mk(r, "img"); mk(r, "gt");
    uint8_t v[4] = {5, 9, 0, 7};
    REQUIRE(png(r, "img/p.png", 4, 1, 3, NULL, 0) == 0 && png(r, "gt/p_gt.png", 4, 1, 1, v, 4) == 0);
    char ip[1100], lp[1100];
    snprintf(ip, sizeof ip, "%s/img", r);
    snprintf(lp, sizeof lp, "%s/gt", r);
    ds_generic g = {ip, lp, "_gt", "5", "9", NULL};
    dataset ds;
    err e = {0};
    REQUIRE(dataset_open("generic", &g, &ds, &e) == 0, "%s", e.msg);
    REQUIRE(ds.n == 1);
    image lab;
    REQUIRE(dataset_load_label(&ds, 0, 4, 1, &lab, &e) == 0, "%s", e.msg);
    CHECK(lab.px[0] == 1 && lab.px[1] == 255 && lab.px[2] == 0 && lab.px[3] == 0);
    image_free(&lab);
    dataset_free(&ds);
    g.id = "0";   // with --id, 7 is unknown
    REQUIRE(dataset_open("generic", &g, &ds, &e) == 0, "%s", e.msg);
    CHECK(dataset_load_label(&ds, 0, 4, 1, &lab, &e) == OODSEG_E_DATA && strstr(e.msg, "value 7"), "%s", e.msg);
    dataset_free(&ds);
    g.ood = "x";
    CHECK(dataset_open("generic", &g, &ds, &e) == OODSEG_E_ARG && strstr(e.msg, "--ood"), "%s", e.msg);
    g.ood = NULL;
    CHECK(dataset_open("generic", &g, &ds, &e) == OODSEG_E_ARG, "%s", e.msg);
    int i, n;
    CHECK(dataset_parse_shard("2/5", &i, &n, &e) == 0 && i == 2 && n == 5);
    CHECK(dataset_parse_shard("5/5", &i, &n, &e) == OODSEG_E_ARG);
    CHECK(dataset_parse_shard("1", &i, &n, &e) == OODSEG_E_ARG);
}

// dataset_convention gives, without a folder, the convention dataset_open gives with one.
TEST(convention_without_a_folder) {
    const char *r = fresh("conv");
    mk(r, "images"); mk(r, "labels_masks");
    uint8_t v[2] = {1, 255};
    REQUIRE(png(r, "images/a.png", 2, 1, 3, NULL, 0) == 0 && png(r, "labels_masks/a_labels_semantic.png", 2, 1, 1, v, 2) == 0);
    static const char *names[] = {"smiyc-anomaly", "smiyc-obstacle"};
    err e = {0};
    for (int k = 0; k < 2; k++) {
        char sp[1200];
        snprintf(sp, sizeof sp, "%s:%s", names[k], r);
        dataset ds;
        REQUIRE(dataset_open(sp, NULL, &ds, &e) == 0, "%s", e.msg);
        uint8_t map[256];
        char doc[128];
        int track = -1;
        REQUIRE(dataset_convention(names[k], NULL, map, doc, sizeof doc, &track, &e) == 0, "%s", e.msg);
        CHECK(!memcmp(map, ds.map, 256) && !strcmp(doc, ds.labels_doc) && track == ds.smiyc_track && track == k + 1);
        dataset_free(&ds);
    }
    ds_generic g = {.ood = "5", .ignore = "9", .id = "0-4"};
    uint8_t map[256];
    char doc[128];
    REQUIRE(dataset_convention("generic", &g, map, doc, sizeof doc, NULL, &e) == 0, "%s", e.msg);
    CHECK(map[5] == 1 && map[9] == 255 && map[3] == 0 && map[7] == DS_BAD && strstr(doc, "OoD 5"), "%s", doc);
    CHECK(dataset_convention("nope", NULL, map, doc, sizeof doc, NULL, &e) == OODSEG_E_ARG && strstr(e.msg, "'nope'"), "%s", e.msg);
}

TEST(real_camvid_ood) {
    ASSET_OR_SKIP(root, "data/camvid-ood/test_ood.txt");
    char r[1024];
    snprintf(r, sizeof r, "%s", root);
    *strrchr(r, '/') = 0;
    dataset ds;
    err e = {0};
    REQUIRE(dataset_open(spec("camvid-ood", r), NULL, &ds, &e) == 0, "%s", e.msg);
    CHECK(ds.n == 233, "%d items", ds.n);
    int64_t cnt[256] = {0};
    for (int i = 0; i < ds.n; i += 29) {
        image im, lab;
        REQUIRE(image_load_rgb(ds.items[i].image, &im, &e) == 0, "%s", e.msg);
        REQUIRE(dataset_load_label(&ds, i, im.w, im.h, &lab, &e) == 0, "%s", e.msg);
        CHECK(im.w == 480 && im.h == 360);
        for (int k = 0; k < lab.w * lab.h; k++) cnt[lab.px[k]]++;
        image_free(&im); image_free(&lab);
    }
    CHECK(cnt[0] > 0 && cnt[1] > 0 && cnt[0] + cnt[1] + cnt[255] == 9LL * 480 * 360, "%lld %lld %lld",
          (long long)cnt[0], (long long)cnt[1], (long long)cnt[255]);
    CHECK(dataset_select(&ds, 10, 0, 0, &e) == 0 && ds.n == 10);
    dataset_free(&ds);
}

// A list line may not leave the dataset folder (absolute paths, '..'), an image may not be listed
// twice (it would count twice in the metrics), and a list file that is a named pipe is refused at
// once (it hung before).
TEST(list_containment_duplicates_and_fifo) {
    const char *r = fresh("contain");
    mk(r, "test_ood"); mk(r, "testannot_ood"); mk(r, "frames/a.labels");
    uint8_t v[1] = {0};
    REQUIRE(png(r, "test_ood/f1.png", 2, 2, 3, NULL, 0) == 0 && png(r, "testannot_ood/f1.png", 2, 2, 1, v, 1) == 0);
    REQUIRE(png(r, "frames/a.jpg", 2, 2, 3, NULL, 0) == 0 && png(r, "frames/a.labels/labels_semantic.png", 2, 2, 1, v, 1) == 0);
    // a file outside the folder that exists, so that only containment can refuse it
    char outside[1200];
    snprintf(outside, sizeof outside, "%s/outside.png", t_tmpdir());
    REQUIRE(png(t_tmpdir(), "outside.png", 2, 2, 3, NULL, 0) == 0);
    dataset ds;
    err e = {0};
    const char *escapes[] = { "../outside.png testannot_ood/f1.png\n", "test_ood/f1.png test_ood/../../outside.png\n",
                              NULL };
    for (int k = 0; escapes[k]; k++) {
        write_text(r, "test_ood.txt", escapes[k]);
        CHECK(dataset_open(spec("camvid-ood", r), NULL, &ds, &e) == OODSEG_E_DATA && strstr(e.msg, "test_ood.txt line 1")
              && strstr(e.msg, "outside the dataset folder") && strstr(e.msg, ".."), "%s", e.msg);
    }
    char abs_line[2600];
    snprintf(abs_line, sizeof abs_line, "%s testannot_ood/f1.png\n", outside);
    write_text(r, "test_ood.txt", abs_line);
    CHECK(dataset_open(spec("camvid-ood", r), NULL, &ds, &e) == OODSEG_E_DATA && strstr(e.msg, "outside the dataset folder")
          && strstr(e.msg, outside), "%s", e.msg);
    write_text(r, "frame_list.json", "[\"../../outside.png\"]");
    CHECK(dataset_open(spec("roadanomaly", r), NULL, &ds, &e) == OODSEG_E_DATA && strstr(e.msg, "entry 0")
          && strstr(e.msg, "outside the dataset folder"), "%s", e.msg);
    // duplicates: both places are named
    write_text(r, "test_ood.txt", "test_ood/f1.png testannot_ood/f1.png\n\ntest_ood/f1.png testannot_ood/f1.png\n");
    CHECK(dataset_open(spec("camvid-ood", r), NULL, &ds, &e) == OODSEG_E_DATA && strstr(e.msg, "line 1 and line 3")
          && strstr(e.msg, "'f1'") && strstr(e.msg, "remove the duplicate"), "%s", e.msg);
    write_text(r, "frame_list.json", "[\"a.jpg\", \"./a.jpg\"]");
    CHECK(dataset_open(spec("roadanomaly", r), NULL, &ds, &e) == OODSEG_E_DATA && strstr(e.msg, "entry 0 and entry 1"),
          "%s", e.msg);
    // still fine once each is listed once ("./" stays inside)
    write_text(r, "frame_list.json", "[\"./a.jpg\"]");
    CHECK(dataset_open(spec("roadanomaly", r), NULL, &ds, &e) == OODSEG_OK && ds.n == 1, "%s", e.msg);
    dataset_free(&ds);
    // a FIFO as the list file: refused at once, never waited on
    t_sh("rm -f '%s/frame_list.json' && mkfifo '%s/frame_list.json'", r, r);
    CHECK(dataset_open(spec("roadanomaly", r), NULL, &ds, &e) == OODSEG_E_IO && strstr(e.msg, "named pipe")
          && strstr(e.msg, "frame_list.json"), "%s", e.msg);
    t_sh("rm -f '%s/test_ood.txt' && mkfifo '%s/test_ood.txt'", r, r);
    CHECK(dataset_open(spec("camvid-ood", r), NULL, &ds, &e) == OODSEG_E_IO && strstr(e.msg, "named pipe"), "%s", e.msg);
    // a directory where the list file belongs
    t_sh("rm -f '%s/test_ood.txt' && mkdir '%s/test_ood.txt'", r, r);
    CHECK(dataset_open(spec("camvid-ood", r), NULL, &ds, &e) == OODSEG_E_IO && strstr(e.msg, "a directory"), "%s", e.msg);
}

int main(int argc, char **argv) {
    (void)argc;
    RUN(camvid_replica_and_errors);
    RUN(roadanomaly_replica);
    RUN(smiyc_replica);
    RUN(fishyscapes_and_ade_replicas);
    RUN(generic_layout);
    RUN(convention_without_a_folder);
    RUN(real_camvid_ood);
    RUN(list_containment_duplicates_and_fifo);
    return t_finish(argv[0]);
}
