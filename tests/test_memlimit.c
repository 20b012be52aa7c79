// Memory limits (--max-memory, core/memlimit.h): every architecture's activation estimate against
// the arena's measured live peak (within [1x, 1.5x], several input sizes, the tiny golden
// checkpoints and real configurations from the manifests with zero weights); the default limit;
// size parsing; and the refusals before anything is allocated: an image header, a forward at a
// huge size (nothing reaches the arena), a checkpoint whose file, conversion or pickles need more
// than the limit, a .npy array.
#include "test.h"
#include "../core/memlimit.h"
#include "../core/json.h"
#include "../models/model.h"
#include "../io/image.h"
#include "../io/npy.h"
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const char *tpath(const char *name) {
    static char ring[4][1024];
    static int k;
    char *p = ring[k++ & 3];
    snprintf(p, 1024, "%s/%s", t_tmpdir(), name);
    return p;
}

// ---- estimates against the arena ----------------------------------------------------------------

static float *input(int h, int w) {
    float *x = malloc(sizeof(float) * 3 * (size_t)h * w);
    for (int64_t i = 0; i < 3 * (int64_t)h * w; i++) x[i] = (float)(((uint64_t)i * 2654435761u) % 1021u) / 510.0f - 1.0f;
    return x;
}

// One forward of m at h x w on one thread; the estimate must cover the measured live peak and
// stay within 1.5 times it.
static void check_estimate(model *m, const char *name, int h, int w) {
    REQUIRE(m->estimate, "%s: no estimate function", name);
    uint64_t est = m->estimate(m, h, w);
    float *x = input(h, w);
    tensor_list out = {0};
    err e = {0};
    arena_free(m->arena);   // a fresh arena: its peak is this forward's alone
    m->arena = NULL;
    REQUIRE(arena_create(&m->arena, NN_DEVICE_CPU, &e) == OODSEG_OK);
    int rc = m->forward(m, x, h, w, NULL, &out, &e);
    nn_arena_stats s;
    arena_stats(m->arena, &s);
    CHECK(rc == OODSEG_OK, "%s %dx%d: %s", name, w, h, e.msg);
    if (!rc) {
        double ratio = (double)est / (double)s.peak;
        CHECK(est >= s.peak && ratio <= 1.5, "%s at %dx%d (WxH): estimate %llu bytes, measured live peak %zu (x%.3f)",
              name, w, h, (unsigned long long)est, s.peak, ratio);
        if (getenv("OODSEG_MEMLIMIT_VERBOSE"))
            printf("  %-36s %4dx%-4d peak %10zu estimate %10llu x%.3f\n", m->desc.arch, w, h, s.peak,
                   (unsigned long long)est, ratio);
    }
    tl_free(&out);
    free(x);
}

static model *open_model(const char *path, const char *backbone) {
    nn_ctx c;
    nn_ctx_init(&c, 1);
    model_options mo = {0};
    mo.backbone = backbone;
    model *m = NULL;
    err e = {0};
    if (model_open(path, &c, &mo, &m, &e)) fprintf(stderr, "  %s: %s\n", path, e.msg);
    return m;
}

// Sizes that every architecture accepts: multiples of 16 and sides of 15 mod 16 (ESPNet's 7 mod 8).
static const int sizes[][2] = { {64, 96}, {128, 256}, {175, 255}, {240, 160} };

static void estimate_file(const char *rel, const char *backbone_rel) {
    ASSET_OR_SKIP(path, rel);
    const char *bb = NULL;
    if (backbone_rel) { ASSET_OR_SKIP(b, backbone_rel); bb = b; }
    model *m = open_model(path, bb);
    REQUIRE(m, "%s", rel);
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) check_estimate(m, rel, sizes[k][0], sizes[k][1]);
    model_close(m);
}

TEST(estimate_espnet) {
    estimate_file("models/espnet/pretrained/decoder/espnet_p_2_q_8.pth", NULL);
    estimate_file("models/espnet/pretrained/decoder/espnet_p_2_q_3.pth", NULL);
    estimate_file("models/espnet/pretrained/decoder/espnet_p_2_q_8_camvid.pth", NULL);
    estimate_file("models/espnet/pretrained/encoder/espnet_p_2_q_5.pth", NULL);
}

TEST(estimate_espnetv2) {
    estimate_file("models/espnetv2/espnetv2_s_0.5_city_1024x512.pth", NULL);
    estimate_file("models/espnetv2/espnetv2_s_2.0_city_1024x512.pth", NULL);
}

TEST(estimate_internimage_upernet) {
    estimate_file("golden/tiny-t/model.safetensors", NULL);
    estimate_file("golden/tiny-l/model.safetensors", NULL);
}

TEST(estimate_segformer) { estimate_file("golden/segformer-tiny-b0/model.safetensors", NULL); }

TEST(estimate_dinov2) {
    estimate_file("golden/dinov2-tiny-linear/dinov2_tiny14_ade20k_linear_head.pth",
                  "golden/dinov2-tiny-linear/dinov2_tiny14_pretrain.pth");
    estimate_file("golden/dinov2-tiny-ms/dinov2_tiny14_ade20k_ms_head.pth", "golden/dinov2-tiny-ms/dinov2_tiny14_pretrain.pth");
}

// A released configuration from its manifest (names and shapes; the weights read as zeros): the
// widths where the peak may sit elsewhere than in the tiny models.
static void estimate_manifest(const char *rel, int h, int w) {
    ASSET_OR_SKIP(path, rel);
    size_t n;
    char *buf = t_slurp(path, &n);
    REQUIRE(buf, "%s", path);
    err e = {0};
    json *j = json_parse(buf, n, path, &e);
    free(buf);
    REQUIRE(j, "%s", e.msg);
    const json *keys = json_get(j, "keys");
    int64_t most = 1;   // one zero buffer as large as the largest tensor serves every key
    for (int k = 0; keys && k < keys->n; k++) {
        const json *sh = json_get(&keys->items[k], "shape");
        int64_t numel = 1;
        for (int d = 0; d < sh->n; d++) numel *= sh->items[d].i64;
        if (numel > most) most = numel;
    }
    float *zero = calloc((size_t)most, sizeof(float));
    ckpt *ck = keys && zero ? ckpt_new_memory(&e) : NULL;
    for (int k = 0; ck && k < keys->n; k++) {
        const json *it = &keys->items[k], *sh = json_get(it, "shape");
        int64_t shape[8];
        for (int d = 0; d < sh->n && d < 8; d++) shape[d] = sh->items[d].i64;
        if (ckpt_add(ck, json_get(it, "name")->str, !strcmp(json_get(it, "dtype")->str, "I64") ? DT_I64 : DT_F32, sh->n,
                     shape, zero, &e)) { ckpt_close(ck); ck = NULL; }
    }
    free(zero);
    json_free(j);
    REQUIRE(ck, "%s: %s", rel, e.msg);
    nn_ctx c;
    nn_ctx_init(&c, 1);
    model *m = NULL;
    REQUIRE(model_from_ckpt(ck, &c, NULL, &m, &e) == OODSEG_OK, "%s: %s", rel, e.msg);
    check_estimate(m, rel, h, w);
    model_close(m);
}

TEST(estimate_released_configs) {
    if (t_sanitized()) SKIP("the released widths are slow under the sanitizers; the tiny models cover the code");
    estimate_manifest("golden/manifest-internimage-t-upernet-cityscapes.json", 64, 128);
    estimate_manifest("golden/manifest-segformer-mit-b0-ade20k.json", 64, 128);
    estimate_manifest("golden/manifest-segformer-mit-b2-cityscapes.json", 96, 64);
}

// ---- the limit itself ----------------------------------------------------------------------------

TEST(default_limit_is_sane) {
    uint64_t avail = memlimit_available(), dflt = memlimit_default();
    FILE *f = fopen("/proc/meminfo", "r");
    unsigned long long total_kb = 0;
    char line[256];
    while (f && fgets(line, sizeof line, f)) if (sscanf(line, "MemTotal: %llu kB", &total_kb) == 1) break;
    if (f) fclose(f);
    CHECK(avail > 0, "no available memory found");
    if (total_kb) CHECK(avail <= total_kb * 1024, "available %llu above MemTotal %llu kB", (unsigned long long)avail, total_kb);
    uint64_t margin = avail / 10 > MEMLIMIT_MARGIN_MIN ? avail / 10 : MEMLIMIT_MARGIN_MIN;
    if (avail > margin + MEMLIMIT_FLOOR) CHECK(dflt == avail - margin, "default %llu, available %llu",
                                               (unsigned long long)dflt, (unsigned long long)avail);
    else CHECK(dflt == MEMLIMIT_FLOOR);
    CHECK(memlimit_resolve(0) >= MEMLIMIT_FLOOR && memlimit_resolve(12345678) == 12345678);
    // the image pixel cap follows the limit
    CHECK(memlimit_image_pixels((uint64_t)1 << 30) == ((int64_t)1 << 30) / MEMLIMIT_BYTES_PER_IMAGE_PIXEL);
}

TEST(sizes_parse) {
    static const struct { const char *s; uint64_t v; } ok[] = {
        { "8G", (uint64_t)8 << 30 }, { "512M", (uint64_t)512 << 20 }, { "1.5G", (uint64_t)3 << 29 },
        { "2048K", (uint64_t)2 << 20 }, { "1GiB", (uint64_t)1 << 30 }, { "1048576", 1048576 }, { "1t", (uint64_t)1 << 40 },
    };
    err e = {0};
    for (size_t k = 0; k < sizeof ok / sizeof *ok; k++) {
        uint64_t v = 0;
        CHECK(memlimit_parse(ok[k].s, "max-memory", &v, &e) == OODSEG_OK && v == ok[k].v, "'%s': %llu (%s)", ok[k].s,
              (unsigned long long)v, e.msg);
    }
    static const char *bad[] = { "", "abc", "8X", "-1G", "0", "100", "1e400", "8 G", "nanG" };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        uint64_t v = 7;
        int rc = memlimit_parse(bad[k], "max-memory", &v, &e);
        CHECK(rc == OODSEG_E_ARG && v == 7 && strstr(e.msg, "--max-memory"), "'%s' accepted (%llu)", bad[k], (unsigned long long)v);
    }
    char b[32];
    CHECK(!strcmp(memlimit_str((uint64_t)3 << 29, b, sizeof b), "1.50 GiB"), "%s", b);
    CHECK(!strcmp(memlimit_str(100, b, sizeof b), "100 B"), "%s", b);
}

// ---- refusals ------------------------------------------------------------------------------------

static void chunk(FILE *f, const char *type, const unsigned char *d, uint32_t n) {
    unsigned char be[4] = { n >> 24, n >> 16, n >> 8, n };
    fwrite(be, 1, 4, f);
    uLong crc = crc32(crc32(0, (const Bytef *)type, 4), d, n);
    fwrite(type, 1, 4, f);
    if (n) fwrite(d, 1, n, f);
    unsigned char c[4] = { crc >> 24, crc >> 16, crc >> 8, crc };
    fwrite(c, 1, 4, f);
}

// A PNG whose header says w x h RGB and whose data is one compressed empty row: a few dozen bytes.

static const char *png_header(const char *name, uint32_t w, uint32_t h) {
    const char *p = tpath(name);
    FILE *f = fopen(p, "wb");
    if (!f) return p;
    fwrite("\x89PNG\r\n\x1a\n", 1, 8, f);
    unsigned char ihdr[13] = { w >> 24, w >> 16, w >> 8, w, h >> 24, h >> 16, h >> 8, h, 8, 2, 0, 0, 0 };
    chunk(f, "IHDR", ihdr, 13);
    unsigned char raw[1] = {0}, z[64];
    uLongf zn = sizeof z;
    compress(z, &zn, raw, 1);
    chunk(f, "IDAT", z, (uint32_t)zn);
    chunk(f, "IEND", NULL, 0);
    fclose(f);
    return p;
}

TEST(png_header_over_the_limit) {
    const char *p = png_header("big.png", 16000, 16000);
    err e = {0};
    image im = {0};
    int rc = image_load_rgb_mem(p, (uint64_t)256 << 20, &im, &e);
    CHECK(rc == OODSEG_E_NOMEM && strstr(e.msg, "big.png") && strstr(e.msg, "16000x16000") &&
          strstr(e.msg, "memory limit of 256 MiB") && strstr(e.msg, "7.63 GiB") && strstr(e.msg, "--max-memory"),
          "%d: %s", rc, e.msg);
    CHECK(im.px == NULL);
    // under a limit that allows it the same header gets past the size check to the decoder, which
    // finds the data short (nothing of 16000x16000 is decoded: the row is missing)
    rc = image_load_rgb_mem(p, (uint64_t)16 << 30, &im, &e);
    CHECK(rc == OODSEG_E_FORMAT, "%d: %s", rc, e.msg);
    if (!rc) image_free(&im);
}

TEST(forward_at_a_huge_size_refused_before_it_starts) {
    ASSET_OR_SKIP(path, "models/espnetv2/espnetv2_s_2.0_city_1024x512.pth");
    nn_ctx c;
    nn_ctx_init(&c, 1);
    model_options mo = {0};
    mo.max_memory = (uint64_t)1 << 30;
    model *m = NULL;
    err e = {0};
    REQUIRE(model_open(path, &c, &mo, &m, &e) == OODSEG_OK, "%s", e.msg);
    CHECK(m->max_memory == (uint64_t)1 << 30);
    uint8_t px[3 * 16 * 16] = {0};
    image img = { 16, 16, 3, px };
    tensor_list out = {0};
    int rc = model_forward_image(m, &img, "16000x16000", NULL, &out, &e);
    nn_arena_stats s;
    arena_stats(m->arena, &s);
    uint64_t act = 0, need = model_memory_needed(m, 16000, 16000, &act);
    char a[32];
    memlimit_str(act, a, sizeof a);
    CHECK(rc == OODSEG_E_NOMEM && strstr(e.msg, "16000x16000") && strstr(e.msg, a) && strstr(e.msg, "memory limit of 1.00 GiB") &&
          strstr(e.msg, "--size") && strstr(e.msg, "--max-memory"), "%d: %s", rc, e.msg);
    CHECK(s.peak == 0 && out.n == 0, "the forward started (arena peak %zu)", s.peak);
    CHECK(need > act && act > (uint64_t)40 << 30, "needed %llu, activations %llu", (unsigned long long)need, (unsigned long long)act);
    // the same model at its own size runs
    rc = model_forward_image(m, &img, "256x128", NULL, &out, &e);
    CHECK(rc == OODSEG_OK, "%s", e.msg);
    tl_free(&out);
    model_close(m);
}

// A safetensors file of one tensor of n elements of dtype dt (2 or 4 bytes each).
static const char *st_one(const char *name, const char *dt, int esz, int64_t n) {
    char hdr[200];
    int hl = snprintf(hdr, sizeof hdr, "{\"w\":{\"dtype\":\"%s\",\"shape\":[%lld],\"data_offsets\":[0,%lld]}}", dt,
                      (long long)n, (long long)(n * esz));
    int pl = (hl + 7) / 8 * 8;
    const char *p = tpath(name);
    FILE *f = fopen(p, "wb");
    if (!f) return p;
    unsigned char len[8] = { (unsigned char)pl };
    fwrite(len, 1, 8, f);
    fwrite(hdr, 1, (size_t)hl, f);
    for (int k = hl; k < pl; k++) fputc(' ', f);
    for (int64_t k = 0; k < n * esz; k++) fputc(0, f);
    fclose(f);
    return p;
}

TEST(checkpoint_over_the_limit) {
    err e = {0};
    ckpt *ck = NULL;
    // F16, 1M elements: the file (2 MiB) fits 5 MiB, its float32 conversion (4 MiB more) does not
    const char *p = st_one("f16.safetensors", "F16", 2, 1 << 20);
    int rc = ckpt_open_limit(p, (uint64_t)5 << 20, &ck, &e);
    CHECK(rc == OODSEG_E_NOMEM && strstr(e.msg, "f16.safetensors") && strstr(e.msg, "float32 copy") &&
          strstr(e.msg, "memory limit of 5.00 MiB") && strstr(e.msg, "--max-memory"), "%d: %s", rc, e.msg);
    ckpt_close(ck), ck = NULL;
    CHECK(ckpt_open_limit(p, (uint64_t)7 << 20, &ck, &e) == OODSEG_OK, "%s", e.msg);
    CHECK(ck && ck->bytes >= (uint64_t)6 << 20, "%llu bytes counted", ck ? (unsigned long long)ck->bytes : 0ULL);
    ckpt_close(ck), ck = NULL;
    // F32, 1M elements: the file alone (4 MiB) is over 3 MiB
    p = st_one("f32.safetensors", "F32", 4, 1 << 20);
    rc = ckpt_open_limit(p, (uint64_t)3 << 20, &ck, &e);
    CHECK(rc == OODSEG_E_NOMEM && strstr(e.msg, "f32.safetensors") && strstr(e.msg, "4.00 MiB") &&
          strstr(e.msg, "memory limit of 3.00 MiB"), "%d: %s", rc, e.msg);
    ckpt_close(ck), ck = NULL;
}

static uint64_t file_len(const char *p) {
    FILE *f = fopen(p, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    uint64_t n = (uint64_t)ftell(f);
    fclose(f);
    return n;
}

// The legacy format's five pickles share one budget, and the limit caps it: what the limit leaves
// beside the mapping is all they may use, counted over the whole file.
TEST(pickle_budget_from_the_limit) {
    ASSET_OR_SKIP(p, "golden/tiny-t/model-legacy.pth");
    ASSET_OR_SKIP(z, "golden/tiny-t/model.pth");
    err e = {0};
    ckpt *ck = NULL;
    uint64_t len = file_len(p), zlen = file_len(z);
    int rc = ckpt_open_limit(p, len + 4096, &ck, &e);
    CHECK(rc == OODSEG_E_NOMEM && strstr(e.msg, "model-legacy.pth") && strstr(e.msg, "pickle") &&
          strstr(e.msg, "--max-memory"), "%d: %s", rc, e.msg);
    ckpt_close(ck), ck = NULL;
    rc = ckpt_open_limit(z, zlen + 4096, &ck, &e);
    CHECK(rc == OODSEG_E_NOMEM && strstr(e.msg, "model.pth") && strstr(e.msg, "pickle"), "%d: %s", rc, e.msg);
    ckpt_close(ck), ck = NULL;
    CHECK(ckpt_open_limit(p, len + ((uint64_t)64 << 20), &ck, &e) == OODSEG_OK, "%s", e.msg);
    ckpt_close(ck);
}

TEST(npy_over_the_limit) {
    float *z = calloc(512 * 1024, sizeof(float));
    REQUIRE(z);
    err e = {0};
    const char *p = tpath("big.npy");
    REQUIRE(npy_write_f32(p, z, 2, (int64_t[]){512, 1024}, &e) == OODSEG_OK, "%s", e.msg);
    free(z);
    npy_array a;
    int rc = npy_read_limit(p, (uint64_t)3 << 20, &a, &e);   // 2 MiB of data + its 2 MiB float32 copy
    CHECK(rc == OODSEG_E_NOMEM && strstr(e.msg, "big.npy") && strstr(e.msg, "[512, 1024]") && strstr(e.msg, "4.00 MiB"),
          "%d: %s", rc, e.msg);
    CHECK(a.data == NULL);
    rc = npy_read_limit(p, (uint64_t)5 << 20, &a, &e);
    CHECK(rc == OODSEG_OK, "%s", e.msg);
    if (!rc) npy_free(&a);
}

int main(int argc, char **argv) {
    (void)argc;
    RUN(estimate_espnet);
    RUN(estimate_espnetv2);
    RUN(estimate_internimage_upernet);
    RUN(estimate_segformer);
    RUN(estimate_dinov2);
    RUN(estimate_released_configs);
    RUN(default_limit_is_sane);
    RUN(sizes_parse);
    RUN(png_header_over_the_limit);
    RUN(forward_at_a_huge_size_refused_before_it_starts);
    RUN(checkpoint_over_the_limit);
    RUN(pickle_budget_from_the_limit);
    RUN(npy_over_the_limit);
    return t_finish(argv[0]);
}
