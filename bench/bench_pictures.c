// Time against size of the picture encoders `oodseg score` can use, on the real pictures of one
// image: the default model scores it (maxlogit), and its heat map and overlay (w x (h + colour
// bar)) are encoded in memory, so the disk is not timed. PNG: zlib levels 1..6 with libpng's
// adaptive filters, and the Z_RLE strategy and single filters for comparison; then JPEG and WebP
// at a few qualities; and oodseg's own writer (io/png_write.c: vector Paeth, a palette where the
// picture has at most 256 colours, as the class picture does), which writes a file (page cache).
// The class picture (seg) is the third column. Prints the median of R encodes of each, one thread.
//
//   build/bench/bench_pictures IMAGE [R]     (1280x720 JPEG: the case the score issue measured)
#include "../api/pipeline.h"
#include "../io/pictures.h"
#include <jpeglib.h>
#include <omp.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <webp/encode.h>
#include <zlib.h>
#include "common.h"

static void count_write(png_structp png, png_bytep d, png_size_t n) { (void)d; *(size_t *)png_get_io_ptr(png) += n; }
static void count_flush(png_structp png) { (void)png; }

static size_t png_bytes(const image *im, int level, int strategy, int filters) {
    size_t n = 0;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_set_write_fn(png, &n, count_write, count_flush);
    png_set_IHDR(png, info, (png_uint_32)im->w, (png_uint_32)im->h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, level);
    png_set_compression_strategy(png, strategy);
    png_set_filter(png, 0, filters);
    png_write_info(png, info);
    for (int y = 0; y < im->h; y++) png_write_row(png, im->px + (size_t)y * im->w * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return n;
}

static size_t jpeg_bytes(const image *im, int q) {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jm;
    unsigned char *buf = NULL;
    unsigned long n = 0;
    ci.err = jpeg_std_error(&jm);
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &buf, &n);
    ci.image_width = (JDIMENSION)im->w;
    ci.image_height = (JDIMENSION)im->h;
    ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, q, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = im->px + (size_t)ci.next_scanline * im->w * 3;
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    free(buf);
    return n;
}

// libwebp's advanced API: quality q with speed/effort `method` (0 fastest .. 6; the simple
// WebPEncodeRGB uses 4).
static size_t webp_bytes(const image *im, int q, int method) {
    WebPConfig cf;
    WebPPicture pic;
    WebPMemoryWriter wr;
    if (!WebPConfigInit(&cf) || !WebPPictureInit(&pic)) return 0;
    cf.quality = (float)q;
    cf.method = method;
    pic.width = im->w;
    pic.height = im->h;
    WebPMemoryWriterInit(&wr);
    pic.writer = WebPMemoryWrite;
    pic.custom_ptr = &wr;
    size_t n = WebPPictureImportRGB(&pic, im->px, im->w * 3) && WebPEncode(&cf, &pic) ? wr.size : 0;
    WebPPictureFree(&pic);
    WebPMemoryWriterClear(&wr);
    return n;
}

// oodseg's own PNG writer (io/png_write.c), into a file in TMPDIR (the page cache, as `oodseg score`).
static size_t oodseg_png_bytes(const image *im) {
    char path[512];
    snprintf(path, sizeof path, "%s/bench_pictures_%d.png", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    err e = {0};
    struct stat st;
    size_t n = image_save_png(path, im, &e) == OODSEG_OK && stat(path, &st) == 0 ? (size_t)st.st_size : 0;
    remove(path);
    return n;
}

typedef struct enc { const char *name; int kind, a, b, c; } enc;   // kind 0 png(level, strategy, filters), 1 jpeg(q), 2 webp(q, method), 3 image_save_png

static size_t run(const enc *x, const image *im) {
    return x->kind == 0 ? png_bytes(im, x->a, x->b, x->c) : x->kind == 1 ? jpeg_bytes(im, x->a)
         : x->kind == 2 ? webp_bytes(im, x->a, x->b) : oodseg_png_bytes(im);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s IMAGE [REPEATS]\n", argv[0]); return 2; }
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (reps < 1 || reps > 99) reps = 5;
    err e = {0};
    pipeline_config cfg;
    pipeline_config_default(&cfg);
    cfg.threads = 1;
    snprintf(cfg.methods, sizeof cfg.methods, "maxlogit");
    pipeline p = {0};
    image img = {0}, pics[3] = {{0}};
    pipeline_out po = {0};
    if (pipeline_open(&p, &cfg, &e) || image_load_rgb(argv[1], &img, &e) || pipeline_run(&p, &img, &po, &e)) {
        fprintf(stderr, "bench_pictures: %s\n", e.msg);
        return 1;
    }
    pictures_in in;
    char rule[160];
    pipeline_pictures_in(&p, &img, &po, 0, &in, rule, sizeof rule);
    if (pictures_heat(&in, &pics[0], &pics[1], &e) || pictures_seg(&in, &pics[2], &e)) {
        fprintf(stderr, "bench_pictures: %s\n", e.msg);
        return 1;
    }
    const enc encs[] = {
        {"png level 1", 0, 1, Z_DEFAULT_STRATEGY, PNG_ALL_FILTERS}, {"png level 2", 0, 2, Z_DEFAULT_STRATEGY, PNG_ALL_FILTERS},
        {"png level 3", 0, 3, Z_DEFAULT_STRATEGY, PNG_ALL_FILTERS}, {"png level 4", 0, 4, Z_DEFAULT_STRATEGY, PNG_ALL_FILTERS},
        {"png level 5", 0, 5, Z_DEFAULT_STRATEGY, PNG_ALL_FILTERS}, {"png level 6", 0, 6, Z_DEFAULT_STRATEGY, PNG_ALL_FILTERS},
        {"png level 1 Z_RLE", 0, 1, Z_RLE, PNG_ALL_FILTERS}, {"png level 1 filter up", 0, 1, Z_DEFAULT_STRATEGY, PNG_FILTER_UP},
        {"png level 1 filter sub", 0, 1, Z_DEFAULT_STRATEGY, PNG_FILTER_SUB},
        {"png level 1 no filter", 0, 1, Z_DEFAULT_STRATEGY, PNG_FILTER_NONE},
        {"png level 3 filter up", 0, 3, Z_DEFAULT_STRATEGY, PNG_FILTER_UP},
        {"png level 1 Z_RLE up", 0, 1, Z_RLE, PNG_FILTER_UP}, {"png level 1 Z_RLE paeth", 0, 1, Z_RLE, PNG_FILTER_PAETH},
        {"png level 6 Z_RLE", 0, 6, Z_RLE, PNG_ALL_FILTERS}, {"oodseg image_save_png", 3, 0, 0, 0},
        {"jpeg q 90", 1, 90, 0, 0}, {"webp q 80 method 4", 2, 80, 4, 0}, {"webp q 90 method 4", 2, 90, 4, 0},
        {"webp q 80 method 0", 2, 80, 0, 0}, {"webp q 80 method 2", 2, 80, 2, 0}, {"webp q 90 method 0", 2, 90, 0, 0},
    };
    printf("%dx%d pictures of %s, median of %d encodes, one thread\n", pics[0].w, pics[0].h, argv[1], reps);
    printf("%-24s %10s %9s %11s %9s %9s %9s\n", "encoder", "heat ms", "heat KB", "overlay ms", "overlay KB", "seg ms", "seg KB");
    for (size_t k = 0; k < sizeof encs / sizeof *encs; k++) {
        double ms[3];
        size_t bytes[3];
        for (int q = 0; q < 3; q++) {
            double t[99];
            for (int r = 0; r < reps; r++) {
                double t0 = omp_get_wtime();
                bytes[q] = run(&encs[k], &pics[q]);
                t[r] = omp_get_wtime() - t0;
            }
            qsort(t, (size_t)reps, sizeof *t, bench_cmp_d);
            ms[q] = 1e3 * t[reps / 2];
        }
        printf("%-24s %10.1f %9.0f %11.1f %9.0f %9.1f %9.0f\n", encs[k].name, ms[0], bytes[0] / 1024.0, ms[1],
               bytes[1] / 1024.0, ms[2], bytes[2] / 1024.0);
    }
    for (int q = 0; q < 3; q++) image_free(&pics[q]);
    image_free(&img);
    pipeline_out_free(&po);
    pipeline_close(&p);
    return 0;
}
