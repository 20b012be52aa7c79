// Image I/O: PNG round trips; 16-bit, palette and low-depth gray PNGs (written here with libpng,
// expected values worked out from the PNG rules); JPEG decoded like PIL (compared with PIL at
// test time); WebP; label masks; and the error paths: truncated PNG/JPEG, not an image, empty
// file, missing file, RGB label, pixel limit. .npy reading and writing is tested here too.
#include "test.h"
#include "../io/image.h"
#include "../io/npy.h"
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static char *tmp(const char *name) {
    static char ring[8][512];
    static int k;
    char *p = ring[k++ & 7];
    snprintf(p, 512, "%s/%s", t_tmpdir(), name);
    return p;
}

// Writes a PNG of any colour type / depth from packed rows (big-endian 16-bit samples).
static int write_png(const char *path, int w, int h, int color_type, int depth, const uint8_t *data,
                     const png_color *pal, int npal) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) { png_destroy_write_struct(&png, &info); fclose(f); return 0; }
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, depth, color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (pal) png_set_PLTE(png, info, pal, npal);
    png_write_info(png, info);
    int ch = color_type == PNG_COLOR_TYPE_RGB ? 3 : color_type == PNG_COLOR_TYPE_RGB_ALPHA ? 4
           : color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
    size_t rowbytes = ((size_t)w * ch * depth + 7) / 8;
    for (int y = 0; y < h; y++) png_write_row(png, data + y * rowbytes);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return fclose(f) == 0;
}

static int write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(p, 1, n, f) == n;
    return (fclose(f) == 0) && ok;
}

static uint8_t *file_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

TEST(png_round_trip) {
    err e = {0};
    const int w = 37, h = 23;
    image a = {w, h, 3, malloc(w * h * 3)}, g = {w, h, 1, malloc(w * h)};
    for (int i = 0; i < w * h * 3; i++) a.px[i] = (uint8_t)(i * 7 + i / 5);
    for (int i = 0; i < w * h; i++) g.px[i] = (uint8_t)(i * 13);
    REQUIRE(image_save_png(tmp("rgb.png"), &a, &e) == 0, "%s", e.msg);
    REQUIRE(image_save_png(tmp("gray.png"), &g, &e) == 0, "%s", e.msg);
    image b, c, d;
    REQUIRE(image_load_rgb(tmp("rgb.png"), &b, &e) == 0, "%s", e.msg);
    CHECK(b.w == w && b.h == h && b.c == 3 && !memcmp(a.px, b.px, w * h * 3), "RGB round trip differs");
    REQUIRE(image_load_rgb(tmp("gray.png"), &c, &e) == 0, "%s", e.msg);
    int same = c.c == 3;
    for (int i = 0; same && i < w * h; i++)
        same = c.px[3 * i] == g.px[i] && c.px[3 * i + 1] == g.px[i] && c.px[3 * i + 2] == g.px[i];
    CHECK(same, "gray PNG is not replicated into RGB");
    REQUIRE(image_load_label(tmp("gray.png"), &d, &e) == 0, "%s", e.msg);
    CHECK(d.c == 1 && !memcmp(d.px, g.px, w * h), "gray label values changed");
    // no temporary file is left behind
    CHECK(t_sh("ls %s | grep -q tmp", t_tmpdir()) != 0, "a temporary file was left in %s", t_tmpdir());
    image_free(&a); image_free(&g); image_free(&b); image_free(&c); image_free(&d);
}

// The writer (io/png_write.c) against libpng's decoder, over sizes that exercise the vector Paeth
// loop's tails (1, 2, 3, 17, 64, 1283 pixels wide) and pictures-like content (runs, gradients,
// noise): RGB of more than 256 colours stays RGB (colour type 2); of 256 colours or fewer it is
// stored with a palette (type 3, Up-filtered indices) that decodes to the same RGB; gray stays gray.
static int png_colour_type(const char *path) {
    size_t n = 0;
    uint8_t *b = file_bytes(path, &n);
    int t = b && n > 25 ? b[25] : -1;   // IHDR: signature 8, length 4, type 4, width 4, height 4, depth 1
    free(b);
    return t;
}

TEST(png_writer_round_trips) {
    static const int widths[] = {1, 2, 3, 17, 64, 1283};
    err e = {0};
    uint32_t r = 12345;
    for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++)
        for (int kind = 0; kind < 4; kind++) {   // 0 noise, 1 runs of 40 colours, 2 gradient, 3 gray noise
            const int w = widths[wi], h = kind == 3 ? 9 : 7, c = kind == 3 ? 1 : 3;
            image a = {w, h, c, malloc((size_t)w * h * c)};
            REQUIRE(a.px);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    for (int k = 0; k < c; k++) {
                        r = r * 1664525u + 1013904223u;
                        uint8_t v = kind == 1 ? (uint8_t)(((x / 5 + y / 3) % 40) * 6 + k)   // 40 colours
                                  : kind == 2 ? (uint8_t)(x * 3 + y * 11 + k * 50) : (uint8_t)(r >> 24);
                        a.px[((size_t)y * w + x) * c + k] = v;
                    }
            const char *path = tmp("writer.png");
            REQUIRE(image_save_png(path, &a, &e) == 0, "%s", e.msg);
            image b = {0}, g = {0};
            REQUIRE(image_load_rgb(path, &b, &e) == 0, "%s", e.msg);
            int same = b.w == w && b.h == h && b.c == 3;
            for (int64_t i = 0; same && i < (int64_t)w * h; i++)
                for (int k = 0; k < 3; k++) same &= b.px[i * 3 + k] == a.px[i * c + (c == 3 ? k : 0)];
            CHECK(same, "%d px wide, kind %d: the decoded pixels differ", w, kind);
            // colours: runs have 40, the gradient and images of 256 pixels or fewer (w * 7 <= 256)
            // at most 256; noise of more pixels more than 256
            const int colours_le_256 = kind == 1 || kind == 2 || (int64_t)w * h <= 256;
            const int want = c == 1 ? 0 : colours_le_256 ? 3 : 2;
            CHECK(png_colour_type(path) == want, "%d px wide, kind %d: colour type %d, expected %d", w, kind,
                  png_colour_type(path), want);
            if (c == 1) {
                REQUIRE(image_load_label(path, &g, &e) == 0, "%s", e.msg);
                CHECK(g.c == 1 && !memcmp(g.px, a.px, (size_t)w * h), "%d px wide: gray values changed", w);
            }
            image_free(&a), image_free(&b), image_free(&g);
        }
    // exactly 256 colours: a palette; one more: RGB
    for (int extra = 0; extra < 2; extra++) {
        const int w = 257, h = 2;
        image a = {w, h, 3, calloc((size_t)w * h * 3, 1)};
        REQUIRE(a.px);
        for (int x = 0; x < w; x++)   // 256 colours in both rows (the last pixel repeats the first)
            for (int y = 0; y < h; y++) {
                uint8_t *q = a.px + ((size_t)y * w + x) * 3;
                q[0] = (uint8_t)(x % 256), q[1] = (uint8_t)(255 - x % 256);
            }
        if (extra) a.px[(size_t)(w + 3) * 3 + 2] = 1;   // (3, 1): a 257th colour
        REQUIRE(image_save_png(tmp("edge.png"), &a, &e) == 0, "%s", e.msg);
        image b = {0};
        REQUIRE(image_load_rgb(tmp("edge.png"), &b, &e) == 0, "%s", e.msg);
        CHECK(!memcmp(a.px, b.px, (size_t)w * h * 3), "%d colours: the decoded pixels differ", 256 + extra);
        CHECK(png_colour_type(tmp("edge.png")) == (extra ? 2 : 3), "%d colours: colour type %d", 256 + extra,
              png_colour_type(tmp("edge.png")));
        image_free(&a), image_free(&b);
    }
    // an unwritable folder: a clear error, nothing left behind
    image a = {4, 4, 3, calloc(48, 1)};
    CHECK(image_save_png(tmp("no-such-dir/x.png"), &a, &e) != 0 && strstr(e.msg, "no-such-dir"), "%s", e.msg);
    image_free(&a);
}

// A write that fails in the middle of a PNG (a full disk, a quota): here a file-size limit of 64 KB
// (RLIMIT_FSIZE, in a child process, SIGXFSZ ignored so that write() returns EFBIG) against a
// noise picture of about 3 MB. The save must fail with an I/O error naming the file, and leave
// neither the picture nor its temporary file behind.
TEST(png_write_error_midway_leaves_nothing) {
    const int w = 1280, h = 800;
    image a = {w, h, 3, malloc((size_t)w * h * 3)};
    REQUIRE(a.px);
    uint32_t r = 99;
    for (size_t i = 0; i < (size_t)w * h * 3; i++) a.px[i] = (uint8_t)((r = r * 1664525u + 1013904223u) >> 24);
    const char *path = tmp("full-disk.png");
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0, "fork failed");
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit lim = {64 << 10, 64 << 10};
        if (setrlimit(RLIMIT_FSIZE, &lim)) _exit(3);
        err ce = {0};
        int rc = image_save_png(path, &a, &ce);
        // 0: the error the test wants; 1: it succeeded; 2: another error
        _exit(rc == 0 ? 1 : rc == OODSEG_E_IO && strstr(ce.msg, "full-disk.png") ? 0 : 2);
    }
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "a PNG write past the file-size limit: exit %d (1: it reported success, 2: not an I/O error naming "
          "the file, 3: setrlimit failed)", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    struct stat sb;
    CHECK(stat(path, &sb) != 0, "%s exists after a failed write", path);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = 0;
    DIR *d = opendir(dir);
    REQUIRE(d, "cannot list %s", dir);
    int left = 0;
    for (struct dirent *de; (de = readdir(d));) left += !strncmp(de->d_name, "full-disk.png.tmp", 17);
    closedir(d);
    CHECK(!left, "a temporary file of %s is left in %s", path, dir);
    image_free(&a);
}

TEST(png_16bit) {
    err e = {0};
    const int w = 5, h = 3;
    uint8_t rgb16[5 * 3 * 6], g16[5 * 3 * 2];
    for (int i = 0; i < w * h * 3; i++) { rgb16[2 * i] = (uint8_t)(i * 17); rgb16[2 * i + 1] = (uint8_t)(255 - i); }
    for (int i = 0; i < w * h; i++) { g16[2 * i] = 0; g16[2 * i + 1] = (uint8_t)(i * 11); }
    REQUIRE(write_png(tmp("rgb16.png"), w, h, PNG_COLOR_TYPE_RGB, 16, rgb16, NULL, 0), "write");
    REQUIRE(write_png(tmp("g16.png"), w, h, PNG_COLOR_TYPE_GRAY, 16, g16, NULL, 0), "write");
    image a, b;
    REQUIRE(image_load_rgb(tmp("rgb16.png"), &a, &e) == 0, "%s", e.msg);
    int ok = a.c == 3 && a.w == w && a.h == h;
    for (int i = 0; ok && i < w * h * 3; i++) ok = a.px[i] == rgb16[2 * i];   // the high byte
    CHECK(ok, "16-bit RGB is not reduced to its high byte");
    // A 16-bit gray label with small values keeps them.
    REQUIRE(image_load_label(tmp("g16.png"), &b, &e) == 0, "%s", e.msg);
    ok = b.c == 1;
    for (int i = 0; ok && i < w * h; i++) ok = b.px[i] == g16[2 * i + 1];
    CHECK(ok, "16-bit gray label values changed");
    image_free(&a); image_free(&b);
    g16[4] = 1;   // pixel 2 (big-endian high byte) becomes 256 + 22: no longer an 8-bit class index
    REQUIRE(write_png(tmp("g16big.png"), w, h, PNG_COLOR_TYPE_GRAY, 16, g16, NULL, 0), "write");
    CHECK(image_load_label(tmp("g16big.png"), &b, &e) == OODSEG_E_DATA, "accepted 16-bit value 278");
    CHECK(strstr(e.msg, "g16big.png") && strstr(e.msg, "x=2"), "message: %s", e.msg);
}

TEST(png_palette_and_low_depth) {
    err e = {0};
    const int w = 6, h = 2;
    png_color pal[4] = {{10, 20, 30}, {200, 100, 0}, {0, 255, 0}, {1, 2, 3}};
    uint8_t idx8[12] = {0, 1, 2, 3, 0, 1, 3, 3, 2, 1, 0, 2};
    REQUIRE(write_png(tmp("pal8.png"), w, h, PNG_COLOR_TYPE_PALETTE, 8, idx8, pal, 4), "write");
    // the same indices at 2 bits per pixel: 6 pixels -> 2 bytes per row
    uint8_t idx2[4];
    for (int y = 0; y < h; y++) {
        uint8_t *r = idx2 + 2 * y;
        r[0] = r[1] = 0;
        for (int x = 0; x < w; x++) r[x / 4] |= (uint8_t)(idx8[y * w + x] << (6 - 2 * (x % 4)));
    }
    REQUIRE(write_png(tmp("pal2.png"), w, h, PNG_COLOR_TYPE_PALETTE, 2, idx2, pal, 4), "write");
    for (int k = 0; k < 2; k++) {
        const char *f = tmp(k ? "pal2.png" : "pal8.png");
        image a, b;
        REQUIRE(image_load_rgb(f, &a, &e) == 0, "%s", e.msg);
        int ok = a.c == 3;
        for (int i = 0; ok && i < w * h; i++)
            ok = a.px[3 * i] == pal[idx8[i]].red && a.px[3 * i + 1] == pal[idx8[i]].green &&
                 a.px[3 * i + 2] == pal[idx8[i]].blue;
        CHECK(ok, "%s: palette not expanded to its colours", f);
        REQUIRE(image_load_label(f, &b, &e) == 0, "%s", e.msg);
        CHECK(b.c == 1 && !memcmp(b.px, idx8, 12), "%s: palette indices not kept raw", f);
        image_free(&a); image_free(&b);
    }
    // 1-bit gray: as an image 0/255, as a label the raw 0/1
    uint8_t bits[2] = {0xA4, 0x5C};   // rows 101001.. and 010111..
    REQUIRE(write_png(tmp("g1.png"), w, h, PNG_COLOR_TYPE_GRAY, 1, bits, NULL, 0), "write");
    image a, b;
    REQUIRE(image_load_rgb(tmp("g1.png"), &a, &e) == 0, "%s", e.msg);
    REQUIRE(image_load_label(tmp("g1.png"), &b, &e) == 0, "%s", e.msg);
    int ok = 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int bit = (bits[y] >> (7 - x)) & 1;
            ok = ok && a.px[3 * (y * w + x)] == (bit ? 255 : 0) && b.px[y * w + x] == bit;
        }
    CHECK(ok, "1-bit gray decoded wrongly");
    image_free(&a); image_free(&b);
    // gray + alpha: the alpha is dropped
    uint8_t ga[12 * 2];
    for (int i = 0; i < 12; i++) { ga[2 * i] = (uint8_t)(i * 20); ga[2 * i + 1] = (uint8_t)(i * 3); }
    REQUIRE(write_png(tmp("ga.png"), w, h, PNG_COLOR_TYPE_GRAY_ALPHA, 8, ga, NULL, 0), "write");
    REQUIRE(image_load_label(tmp("ga.png"), &b, &e) == 0, "%s", e.msg);
    ok = b.c == 1;
    for (int i = 0; ok && i < 12; i++) ok = b.px[i] == ga[2 * i];
    CHECK(ok, "gray+alpha label");
    image_free(&b);
}

TEST(rgb_label_is_an_error) {
    err e = {0};
    image a = {4, 4, 3, calloc(48, 1)}, b;
    // (libpng, colour type RGB: image_save_png would store these few colours with a palette)
    REQUIRE(write_png(tmp("lab_rgb.png"), 4, 4, PNG_COLOR_TYPE_RGB, 8, a.px, NULL, 0), "write");
    CHECK(image_load_label(tmp("lab_rgb.png"), &b, &e) == OODSEG_E_DATA, "an RGB label was accepted");
    CHECK(strstr(e.msg, "lab_rgb.png") && strstr(e.msg, "RGB"), "message: %s", e.msg);
    image_free(&a);
}

TEST(error_paths) {
    err e = {0};
    image a;
    CHECK(image_load_rgb(tmp("does-not-exist.png"), &a, &e) == OODSEG_E_IO, "missing file");
    CHECK(strstr(e.msg, "does-not-exist.png") != NULL, "message: %s", e.msg);
    REQUIRE(write_bytes(tmp("empty.png"), "", 0), "write");
    CHECK(image_load_rgb(tmp("empty.png"), &a, &e) == OODSEG_E_FORMAT, "empty file");
    CHECK(strstr(e.msg, "empty.png") && strstr(e.msg, "empty"), "message: %s", e.msg);
    REQUIRE(write_bytes(tmp("text.png"), "hello, not a picture\n", 21), "write");
    CHECK(image_load_rgb(tmp("text.png"), &a, &e) == OODSEG_E_FORMAT, "text file");
    CHECK(strstr(e.msg, "text.png") && strstr(e.msg, "not a PNG"), "message: %s", e.msg);

    // Truncated PNGs at several lengths, from inside the signature to just before IEND.
    image big = {64, 48, 3, malloc(64 * 48 * 3)};
    for (int i = 0; i < 64 * 48 * 3; i++) big.px[i] = (uint8_t)((i * 2654435761u) >> 24);
    REQUIRE(image_save_png(tmp("full.png"), &big, &e) == 0, "%s", e.msg);
    size_t n;
    uint8_t *b = file_bytes(tmp("full.png"), &n);
    REQUIRE(b && n > 100, "read back");
    size_t cuts[] = {5, 8, 20, 40, n / 2, n - 13, n - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        REQUIRE(write_bytes(tmp("cut.png"), b, cuts[k]), "write");
        int rc = image_load_rgb(tmp("cut.png"), &a, &e);
        // n-1 only cuts into IEND's CRC after all pixels: accepted or rejected, but never a crash
        if (cuts[k] == n - 1) { if (!rc) image_free(&a); continue; }
        CHECK(rc == OODSEG_E_FORMAT, "PNG cut at %zu of %zu bytes: rc %d", cuts[k], n, rc);
        CHECK(strstr(e.msg, "cut.png") != NULL, "message: %s", e.msg);
    }
    free(b);

    // Pixel limit: refused from the header, before decoding.
    CHECK(image_load_rgb_max(tmp("full.png"), 1000, &a, &e) == OODSEG_E_NOMEM, "64x48 accepted under a 1000-pixel limit");
    CHECK(strstr(e.msg, "full.png") && strstr(e.msg, "64x48") && strstr(e.msg, "limit of 1000 pixels"), "message: %s", e.msg);
    CHECK(image_load_label_max(tmp("full.png"), 3071, &a, &e) == OODSEG_E_NOMEM, "64x48 label accepted under a 3071-pixel limit");
    CHECK(image_load_rgb_max(tmp("full.png"), 3072, &a, &e) == 0, "64x48 refused under a 3072-pixel limit: %s", e.msg);
    image_free(&a);
    CHECK(image_load_rgb(tmp("full.png"), &a, &e) == 0, "default limit: %s", e.msg);
    image_free(&a);
    image_free(&big);
}

// JPEG (colour and gray) and lossless WebP written by PIL; our decode must equal PIL's exactly.
TEST(jpeg_and_webp_match_pil) {
    if (!t_python_has("numpy PIL")) SKIP("/usr/bin/python3 with numpy and PIL is not available");
    const char *td = t_tmpdir();
    char py[512];
    snprintf(py, sizeof py, "%s/img_ref.py", td);
    FILE *f = fopen(py, "w");
    REQUIRE(f, "cannot write %s", py);
    fputs("import sys, numpy as np\n"
          "from PIL import Image, features\n"
          "d = sys.argv[1]\n"
          "y, x = np.mgrid[0:61, 0:83]\n"
          "a = np.stack([(x * 3) % 256, (y * 5 + x) % 256, ((x * y) // 7) % 256], -1).astype(np.uint8)\n"
          "a[10:30, 20:50] = np.random.RandomState(1).randint(0, 256, (20, 30, 3))\n"
          "Image.fromarray(a).save(d + '/c.jpg', quality=90)\n"
          "Image.fromarray(a).save(d + '/c420.jpg', quality=75, subsampling=2)\n"
          "Image.fromarray(a[:, :, 1]).save(d + '/g.jpg', quality=85)\n"
          "for n in ['c', 'c420']:\n"
          "    np.save(d + '/' + n + '_jpg.npy', np.asarray(Image.open(d + '/' + n + '.jpg').convert('RGB')))\n"
          "np.save(d + '/g_jpg.npy', np.asarray(Image.open(d + '/g.jpg').convert('RGB')))\n"
          "np.save(d + '/g_label.npy', np.asarray(Image.open(d + '/g.jpg')))\n"
          "if features.check('webp'):\n"
          "    Image.fromarray(a).save(d + '/c.webp', lossless=True)\n"
          "    np.save(d + '/c_webp.npy', a)\n", f);
    fclose(f);
    REQUIRE(t_sh("/usr/bin/python3 %s %s", py, td) == 0, "python reference failed");
    static const char *names[][2] = {{"c.jpg", "c_jpg.npy"}, {"c420.jpg", "c420_jpg.npy"},
                                     {"g.jpg", "g_jpg.npy"}, {"c.webp", "c_webp.npy"}};
    err e = {0};
    for (int k = 0; k < 4; k++) {
        char img_path[600], ref_path[600];
        snprintf(img_path, sizeof img_path, "%s/%s", td, names[k][0]);
        snprintf(ref_path, sizeof ref_path, "%s/%s", td, names[k][1]);
        FILE *probe = fopen(img_path, "rb");
        if (!probe) { fprintf(stderr, "  (PIL has no WebP writer: %s not tested)\n", names[k][0]); continue; }
        fclose(probe);
        image a;
        npy_array r;
        REQUIRE(image_load_rgb(img_path, &a, &e) == 0, "%s", e.msg);
        if (npy_read(ref_path, &r, &e)) { image_free(&a); REQUIRE(0, "%s", e.msg); }
        CHECK(r.numel == (int64_t)a.w * a.h * 3 && !memcmp(r.data, a.px, (size_t)r.numel),
              "%s: our decode differs from PIL's", names[k][0]);
        npy_free(&r);
        image_free(&a);
    }
    // gray JPEG as a label: one channel, PIL's values
    char gp[600], lp[600];
    snprintf(gp, sizeof gp, "%s/g.jpg", td);
    snprintf(lp, sizeof lp, "%s/g_label.npy", td);
    image a;
    npy_array r;
    REQUIRE(image_load_label(gp, &a, &e) == 0, "%s", e.msg);
    REQUIRE(npy_read(lp, &r, &e) == 0, "%s", e.msg);
    CHECK(a.c == 1 && r.numel == (int64_t)a.w * a.h && !memcmp(r.data, a.px, (size_t)r.numel),
          "gray JPEG label differs from PIL");
    npy_free(&r);
    image_free(&a);
    // a colour JPEG is not a label
    snprintf(gp, sizeof gp, "%s/c.jpg", td);
    CHECK(image_load_label(gp, &a, &e) == OODSEG_E_DATA, "colour JPEG accepted as a label");

    // truncated JPEG: cut in the entropy-coded data and in the header
    size_t n;
    uint8_t *b = file_bytes(gp, &n);
    REQUIRE(b && n > 400, "read back");
    size_t cuts[] = {3, 100, n / 2, n - 10};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        REQUIRE(write_bytes(tmp("cut.jpg"), b, cuts[k]), "write");
        int rc = image_load_rgb(tmp("cut.jpg"), &a, &e);
        CHECK(rc == OODSEG_E_FORMAT, "JPEG cut at %zu of %zu bytes: rc %d", cuts[k], n, rc);
        CHECK(strstr(e.msg, "cut.jpg") != NULL, "message: %s", e.msg);
        if (!rc) image_free(&a);
    }
    free(b);
}

// ---- npy ------------------------------------------------------------------------------------------

TEST(npy_golden_metrics) {
    ASSET_OR_SKIP(sp, "golden/metrics/case1_tiny_scores.npy");
    ASSET_OR_SKIP(lp, "golden/metrics/case1_tiny_labels.npy");
    err e = {0};
    npy_array s, l;
    REQUIRE(npy_read(sp, &s, &e) == 0, "%s", e.msg);
    REQUIRE(npy_read(lp, &l, &e) == 0, "%s", e.msg);
    CHECK(!strcmp(s.dtype, "f4") && s.ndim == 3 && s.shape[0] == 1 && s.shape[1] == 2 && s.shape[2] == 5,
          "scores: %s ndim %d", s.dtype, s.ndim);
    CHECK(!strcmp(l.dtype, "u1") && l.numel == 10, "labels: %s %lld", l.dtype, (long long)l.numel);
    uint8_t *u = npy_to_u8(&l, &e);
    CHECK(u != NULL, "%s", e.msg);
    int pos = 0;
    for (int i = 0; u && i < 10; i++) pos += u[i] == 1;
    CHECK(pos == 4, "case1 has 4 positives, got %d", pos);
    free(u);
    npy_free(&s); npy_free(&l);
    ASSET_OR_SKIP(bigp, "golden/metrics/case4_realistic_labels.npy");
    REQUIRE(npy_read(bigp, &l, &e) == 0, "%s", e.msg);
    CHECK(l.ndim == 3 && l.shape[0] == 2 && l.shape[1] == 720 && l.shape[2] == 1280, "case4 shape");
    int64_t ign = 0;
    for (int64_t i = 0; i < l.numel; i++) ign += ((uint8_t *)l.data)[i] == 255;
    CHECK(ign == 173610, "case4 has 173,610 ignored pixels, got %lld", (long long)ign);
    npy_free(&l);
}

TEST(npy_round_trip_and_errors) {
    err e = {0};
    float x[2 * 3 * 4];
    for (int i = 0; i < 24; i++) x[i] = (float)i * 0.5f - 3.0f;
    int64_t shp[3] = {2, 3, 4}, one[1] = {24};
    REQUIRE(npy_write_f32(tmp("x.npy"), x, 3, shp, &e) == 0, "%s", e.msg);
    REQUIRE(npy_write_f32(tmp("x1.npy"), x, 1, one, &e) == 0, "%s", e.msg);
    npy_array a;
    REQUIRE(npy_read(tmp("x.npy"), &a, &e) == 0, "%s", e.msg);
    CHECK(a.ndim == 3 && a.shape[2] == 4 && !memcmp(a.data, x, sizeof x), "round trip");
    float *f = npy_to_f32(&a, &e);
    CHECK(f && !memcmp(f, x, sizeof x), "to_f32");
    free(f);
    npy_free(&a);
    uint8_t *u = NULL;
    REQUIRE(npy_read(tmp("x1.npy"), &a, &e) == 0, "%s", e.msg);
    CHECK(a.ndim == 1 && a.shape[0] == 24, "1-d shape");
    CHECK((u = npy_to_u8(&a, &e)) == NULL && e.code == OODSEG_E_DATA, "negative/fractional values accepted as uint8");
    free(u);
    npy_free(&a);
    if (t_python_has("numpy")) {
        CHECK(t_sh("/usr/bin/python3 -c \"import numpy as np; a = np.load('%s'); "
                   "assert a.dtype == np.float32 and a.shape == (2, 3, 4); "
                   "assert (a.ravel() == np.arange(24, dtype=np.float32) * 0.5 - 3).all(); "
                   "b = np.load('%s'); assert b.shape == (24,)\"", tmp("x.npy"), tmp("x1.npy")) == 0,
              "numpy cannot read our .npy files");
        // numpy writes: v2 header (long dict), f8, i8, bool; Fortran order and big-endian refused
        CHECK(t_sh("/usr/bin/python3 -c \"import numpy as np; d = '%s'; "
                   "np.save(d + '/f8.npy', np.arange(6.0).reshape(2, 3)); "
                   "np.save(d + '/i8.npy', np.arange(5, dtype=np.int64)); "
                   "np.save(d + '/b1.npy', np.array([True, False, True])); "
                   "np.save(d + '/i2.npy', np.array([-3, 7], np.int16)); "
                   "np.save(d + '/fo.npy', np.asfortranarray(np.ones((3, 2), np.float32))); "
                   "np.save(d + '/be.npy', np.ones(3, '>f4')); "
                   "np.lib.format.write_array(open(d + '/v2.npy', 'wb'), np.ones((2, 2), np.float32), version=(2, 0))\"",
                   t_tmpdir()) == 0, "python");
        static const struct { const char *f; const char *dt; float last; } ok[] = {
            {"f8.npy", "f8", 5}, {"i8.npy", "i8", 4}, {"b1.npy", "b1", 1}, {"i2.npy", "i2", 7}, {"v2.npy", "f4", 1}};
        for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
            if (npy_read(tmp(ok[k].f), &a, &e)) { CHECK(0, "%s: %s", ok[k].f, e.msg); continue; }
            f = npy_to_f32(&a, &e);
            CHECK(!strcmp(a.dtype, ok[k].dt) && f && f[a.numel - 1] == ok[k].last, "%s: dtype %s", ok[k].f, a.dtype);
            free(f);
            npy_free(&a);
        }
        CHECK(npy_read(tmp("fo.npy"), &a, &e) == OODSEG_E_FORMAT && strstr(e.msg, "Fortran"), "fortran: %s", e.msg);
        CHECK(npy_read(tmp("be.npy"), &a, &e) == OODSEG_E_FORMAT && strstr(e.msg, "big-endian"), "big-endian: %s", e.msg);
    }
    // truncated data, not a .npy, missing file
    size_t n;
    uint8_t *b = file_bytes(tmp("x.npy"), &n);
    REQUIRE(b, "read back");
    REQUIRE(write_bytes(tmp("cut.npy"), b, n - 4), "write");
    free(b);
    CHECK(npy_read(tmp("cut.npy"), &a, &e) == OODSEG_E_FORMAT && strstr(e.msg, "truncated"), "cut: %s", e.msg);
    // A header declaring 160 GB over a few bytes of data: refused from the file's size, before
    // anything is allocated, naming the file, the declared shape and the file's size.
    static const char huge[] = "\x93NUMPY\x01\x00\x46\x00{'descr': '<f4', 'fortran_order': False, "
                               "'shape': (200000, 200000), }\n" "abcd";
    REQUIRE(write_bytes(tmp("huge.npy"), huge, sizeof huge - 1), "write");
    CHECK(npy_read(tmp("huge.npy"), &a, &e) == OODSEG_E_FORMAT && strstr(e.msg, "huge.npy")
          && strstr(e.msg, "[200000, 200000]") && strstr(e.msg, "has only 84 bytes"), "huge: %s", e.msg);
    CHECK(npy_read(tmp("text.png"), &a, &e) == OODSEG_E_FORMAT, "text file read as npy");
    CHECK(npy_read(tmp("none.npy"), &a, &e) == OODSEG_E_IO && strstr(e.msg, "none.npy"), "missing: %s", e.msg);
}

// A named pipe, a device, a directory or a socket where an image or .npy file belongs: refused at
// once with a message naming the path and what it is. (Opening a FIFO used to wait forever for a
// writer; the alarm turns such a hang into a failure.)
TEST(special_files_refused) {
    const char *fifo = tmp("pipe.png"), *dir = tmp("dir.png"), *sock = tmp("sock.png");
    REQUIRE(mkfifo(fifo, 0600) == 0, "mkfifo");
    REQUIRE(mkdir(dir, 0700) == 0, "mkdir");
    int sfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
    REQUIRE(sfd >= 0 && bind(sfd, (struct sockaddr *)&sa, sizeof sa) == 0, "socket");
    static const char *kinds[] = { "named pipe", "character device", "directory", "socket" };
    const char *paths[] = { fifo, "/dev/null", dir, sock };
    alarm(30);
    for (int k = 0; k < 4; k++) {
        err e = {0};
        image a;
        npy_array n;
        CHECK(image_load_rgb(paths[k], &a, &e) == OODSEG_E_IO && strstr(e.msg, paths[k]) && strstr(e.msg, kinds[k]),
              "image from %s: %s", kinds[k], e.msg);
        CHECK(image_load_label(paths[k], &a, &e) == OODSEG_E_IO && strstr(e.msg, kinds[k]), "label from %s: %s", kinds[k], e.msg);
        CHECK(npy_read(paths[k], &n, &e) == OODSEG_E_IO && strstr(e.msg, paths[k]) && strstr(e.msg, kinds[k]),
              ".npy from %s: %s", kinds[k], e.msg);
    }
    alarm(0);
    close(sfd);
}

int main(int argc, char **argv) {
    (void)argc;
    RUN(png_round_trip);
    RUN(png_writer_round_trips);
    RUN(png_write_error_midway_leaves_nothing);
    RUN(png_16bit);
    RUN(png_palette_and_low_depth);
    RUN(rgb_label_is_an_error);
    RUN(error_paths);
    RUN(jpeg_and_webp_match_pil);
    RUN(npy_golden_metrics);
    RUN(npy_round_trip_and_errors);
    RUN(special_files_refused);
    return t_finish(argv[0]);
}
