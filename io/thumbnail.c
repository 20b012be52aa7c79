// Thumbnails (see thumbnail.h).
#include "thumbnail.h"
#include "../core/outfile.h"
#include <jpeglib.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void thumb_size(int w, int h, int max_w, int *tw, int *th) {
    if (w <= max_w) { *tw = w; *th = h; return; }
    *tw = max_w;
    *th = (int)((int64_t)h * max_w / w);
    if (*th < 1) *th = 1;
}

// The source range [*a, *b) of output index o of n over a source of length len.
static void box(int o, int n, int len, int *a, int *b) {
    *a = (int)((int64_t)o * len / n);
    *b = (int)((int64_t)(o + 1) * len / n);
    if (*b <= *a) *b = *a + 1;
}

int image_downscale(const image *src, int tw, int th, image *out, err *e) {
    const int c = src->c;
    memset(out, 0, sizeof *out);
    if (!(out->px = err_malloc(e, (size_t)tw * th * c, "a thumbnail"))) return e->code;
    out->w = tw; out->h = th; out->c = c;
    for (int y = 0; y < th; y++) {
        int y0, y1;
        box(y, th, src->h, &y0, &y1);
        for (int x = 0; x < tw; x++) {
            int x0, x1;
            box(x, tw, src->w, &x0, &x1);
            for (int ch = 0; ch < c; ch++) {
                uint64_t sum = 0;
                for (int yy = y0; yy < y1; yy++)
                    for (int xx = x0; xx < x1; xx++) sum += src->px[((int64_t)yy * src->w + xx) * c + ch];
                uint64_t n = (uint64_t)(y1 - y0) * (x1 - x0);
                out->px[((int64_t)y * tw + x) * c + ch] = (uint8_t)((sum + n / 2) / n);
            }
        }
    }
    return OODSEG_OK;
}

int score_downscale(const float *src, int w, int h, int tw, int th, float **out, err *e) {
    float *o = err_malloc(e, (size_t)tw * th * sizeof(float), "a thumbnail score map");
    if (!o) return e->code;
    for (int y = 0; y < th; y++) {
        int y0, y1;
        box(y, th, h, &y0, &y1);
        for (int x = 0; x < tw; x++) {
            int x0, x1;
            box(x, tw, w, &x0, &x1);
            double sum = 0;
            int64_t n = 0;
            for (int yy = y0; yy < y1; yy++)
                for (int xx = x0; xx < x1; xx++) {
                    float v = src[(int64_t)yy * w + xx];
                    if (isfinite(v)) { sum += v; n++; }
                }
            o[(int64_t)y * tw + x] = n ? (float)(sum / (double)n) : NAN;
        }
    }
    *out = o;
    return OODSEG_OK;
}

typedef struct jerr {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jerr;

static void jerr_exit(j_common_ptr cinfo) {
    jerr *j = (jerr *)cinfo->err;
    cinfo->err->format_message(cinfo, j->msg);
    longjmp(j->jb, 1);
}

int image_save_jpeg(const char *path, const image *img, int quality, err *e) {
    if (!img || !img->px || (img->c != 1 && img->c != 3) || img->w < 1 || img->h < 1)
        return err_set(e, OODSEG_E_ARG, "image_save_jpeg %s: need a 1- or 3-channel image", path);
    outfile of;          // set before setjmp and not changed after it, so it survives the longjmp
    struct jpeg_compress_struct ci;
    jerr je;
    if (outfile_open(&of, path, e)) return e->code;
    ci.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jerr_exit;
    if (setjmp(je.jb)) {
        jpeg_destroy_compress(&ci);
        outfile_abort(&of);
        return err_set(e, OODSEG_E_IO, "writing %s failed (libjpeg: %s)", path, je.msg);
    }
    jpeg_create_compress(&ci);
    jpeg_stdio_dest(&ci, of.f);
    ci.image_width = (JDIMENSION)img->w;
    ci.image_height = (JDIMENSION)img->h;
    ci.input_components = img->c;
    ci.in_color_space = img->c == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, quality < 1 ? 1 : quality > 100 ? 100 : quality, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = img->px + (size_t)ci.next_scanline * img->w * img->c;
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    return outfile_commit(&of, 1, e);
}
