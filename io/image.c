// Image files in (PNG via libpng, JPEG via libjpeg-turbo, WebP via libwebp) and PNG out.
// The file is read into memory once and the format is taken from its magic bytes, never from the
// extension. libpng and libjpeg report fatal errors by longjmp; both handlers here copy the
// library's message into our err and jump back, so a corrupt or truncated file is an error
// naming the file, never an abort. The pixel limit is checked from the header, before the pixel
// buffer is allocated.
#include "../core/outfile.h"
#include "image.h"
#include "../core/memlimit.h"
#include "file.h"
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <png.h>
#include <jpeglib.h>
#include <jerror.h>
#include <webp/decode.h>
#include <webp/encode.h>
#include <zlib.h>

// What one load needs besides the file's bytes.
typedef struct load_req {
    const char *path;
    int label;            // 0: 8-bit RGB; 1: one raw 8-bit channel (palette indices, gray values)
    int64_t max_pixels;
    uint64_t max_memory;  // > 0: max_pixels was derived from it, and the message says so
} load_req;

void image_free(image *img) {
    if (!img) return;
    free(img->px);
    img->px = NULL;
    img->w = img->h = img->c = 0;
}

static int check_size(const load_req *q, const char *fmt, int64_t w, int64_t h, err *e) {
    if (w < 1 || h < 1)
        return err_set(e, OODSEG_E_FORMAT, "%s: %s header gives an empty image (%lldx%lld)", q->path,
                       fmt, (long long)w, (long long)h);
    if (w * h > q->max_pixels && q->max_memory) {
        char what[1200];
        snprintf(what, sizeof what, "%s: the %s image of %lldx%lld = %lld pixels (%d bytes per pixel decoded and "
                 "scored)", q->path, fmt, (long long)w, (long long)h, (long long)(w * h), MEMLIMIT_BYTES_PER_IMAGE_PIXEL);
        return memlimit_check((uint64_t)w * (uint64_t)h * MEMLIMIT_BYTES_PER_IMAGE_PIXEL, q->max_memory, what,
                              "downscale the image first or raise --max-memory", e);
    }
    if (w * h > q->max_pixels)
        return err_set(e, OODSEG_E_NOMEM,
                       "%s: the %s image is %lldx%lld = %lld pixels, above the limit of %lld pixels; "
                       "downscale it first", q->path, fmt, (long long)w, (long long)h,
                       (long long)(w * h), (long long)q->max_pixels);
    return OODSEG_OK;
}

static int read_file(const char *path, uint8_t **buf, size_t *n, err *e) {
    *buf = NULL;
    *n = 0;
    int64_t size = 0;
    FILE *f = io_fopen_regular(path, "image", &size, e);
    if (!f) return OODSEG_E_IO;
    if (size == 0) {
        fclose(f);
        return err_set(e, OODSEG_E_FORMAT, "%s is an empty file, not an image", path);
    }
    uint8_t *b = err_malloc(e, (size_t)size, "the image file");
    if (!b) { fclose(f); return OODSEG_E_NOMEM; }
    size_t got = fread(b, 1, (size_t)size, f);
    fclose(f);
    if (got != (size_t)size) {
        free(b);
        return err_set(e, OODSEG_E_IO, "reading %s failed (%zu of %lld bytes)", path, got, (long long)size);
    }
    *buf = b;
    *n = got;
    return OODSEG_OK;
}

// ---- PNG ----------------------------------------------------------------------------------------

typedef struct png_ctx {
    const uint8_t *data;
    size_t n, pos;
    char msg[256];
    jmp_buf jb;
} png_ctx;

static void png_err_fn(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    longjmp(c->jb, 1);
}

static void png_warn_fn(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static void png_read_fn(png_structp png, png_bytep out, png_size_t len) {
    png_ctx *c = png_get_io_ptr(png);
    if (len > c->n - c->pos) png_error(png, "unexpected end of file (truncated PNG)");
    memcpy(out, c->data + c->pos, len);
    c->pos += len;
}

// The decoder's output: one raw channel for labels, else 8-bit RGB.
static int png_choose_output(const load_req *q, png_structp png, int ct, int depth, err *e) {
    if (q->label) {
        if (ct == PNG_COLOR_TYPE_RGB || ct == PNG_COLOR_TYPE_RGB_ALPHA)
            return err_set(e, OODSEG_E_DATA,
                           "%s: a label mask must have one channel (gray or palette PNG), but this "
                           "is an %s PNG; save the class indices as an 8-bit gray or palette image",
                           q->path, ct == PNG_COLOR_TYPE_RGB ? "RGB" : "RGBA");
        // Palette indices and gray values stay raw: no palette expansion, no gray rescaling.
        if (depth < 8) png_set_packing(png);
        if (ct == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_strip_alpha(png);
        if (depth == 16) png_set_swap(png);   // little-endian 16-bit words, narrowed afterwards
        return OODSEG_OK;
    }
    // As cv2.imread / PIL convert('RGB'): palette and low-depth gray expanded, transparency
    // dropped, 16-bit reduced to the high byte (png_set_strip_16, what OpenCV does).
    png_set_expand(png);
    png_set_strip_16(png);
    png_set_strip_alpha(png);
    if (ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    return OODSEG_OK;
}

// 16-bit label values (little-endian words in px) to 8 bits in place: they must fit, to be class
// indices.
static int narrow_16bit_labels(const char *path, uint8_t *px, size_t w, size_t h, err *e) {
    for (size_t i = 0; i < w * h; i++) {
        unsigned v = px[2 * i] | (unsigned)px[2 * i + 1] << 8;
        if (v > 255)
            return err_set(e, OODSEG_E_DATA,
                           "%s: 16-bit label value %u at pixel (x=%zu, y=%zu) does not fit in "
                           "8 bits", path, v, i % w, i / w);
        px[i] = (uint8_t)v;
    }
    return OODSEG_OK;
}

static int load_png(const load_req *q, const uint8_t *data, size_t n, image *out, err *e) {
    const char *path = q->path;
    png_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.data = data;
    ctx.n = n;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_err_fn, png_warn_fn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        return err_set(e, OODSEG_E_NOMEM, "%s: out of memory starting the PNG decoder", path);
    }
    uint8_t *volatile px = NULL;
    png_bytep *volatile rows = NULL;
    volatile int rc = OODSEG_OK;
    if (setjmp(ctx.jb)) {
        free(px);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        if (rc) return rc;   // our own error, already set
        return err_set(e, OODSEG_E_FORMAT, "%s: corrupt or truncated PNG (libpng: %s); re-download or re-save the image", path, ctx.msg);
    }
    png_set_read_fn(png, &ctx, png_read_fn);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int ct = png_get_color_type(png, info), depth = png_get_bit_depth(png, info), c = q->label ? 1 : 3;
    if ((rc = check_size(q, "PNG", w, h, e))) longjmp(ctx.jb, 1);
    if ((rc = png_choose_output(q, png, ct, depth, e))) longjmp(ctx.jb, 1);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    int wide = q->label && depth == 16;
    if (rowbytes != (size_t)w * c * (wide ? 2 : 1)) {
        rc = err_set(e, OODSEG_E_FORMAT, "%s: unsupported PNG layout (colour type %d, depth %d)",
                     path, ct, depth);
        longjmp(ctx.jb, 1);
    }
    px = malloc(rowbytes * h);
    rows = malloc(sizeof(png_bytep) * h);
    if (!px || !rows) {
        rc = err_set(e, OODSEG_E_NOMEM, "%s: out of memory for a %ux%u PNG", path, (unsigned)w, (unsigned)h);
        longjmp(ctx.jb, 1);
    }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = px + y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    if (wide && (rc = narrow_16bit_labels(path, px, w, h, e))) longjmp(ctx.jb, 1);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    out->w = (int)w;
    out->h = (int)h;
    out->c = c;
    out->px = px;
    return OODSEG_OK;
}

// ---- JPEG ---------------------------------------------------------------------------------------

typedef struct jpg_err {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jpg_err;

static void jpg_error_exit(j_common_ptr cinfo) {
    jpg_err *je = (jpg_err *)cinfo->err;
    cinfo->err->format_message(cinfo, je->msg);
    longjmp(je->jb, 1);
}

// libjpeg only warns on a premature end of data and pads the image with grey; for us that is a
// truncated file. Other warnings (extraneous bytes, ...) are tolerated, as PIL and OpenCV do.
static void jpg_emit(j_common_ptr cinfo, int level) {
    if (level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpg_error_exit(cinfo);
}

static int load_jpeg(const load_req *q, const uint8_t *data, size_t n, image *out, err *e) {
    const char *path = q->path;
    int label = q->label;
    struct jpeg_decompress_struct cinfo;
    jpg_err je;
    cinfo.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jpg_error_exit;
    je.pub.emit_message = jpg_emit;
    je.msg[0] = 0;
    uint8_t *volatile px = NULL;
    volatile int rc = OODSEG_OK;
    if (setjmp(je.jb)) {
        jpeg_destroy_decompress(&cinfo);
        free(px);
        if (rc) return rc;
        return err_set(e, OODSEG_E_FORMAT, "%s: corrupt or truncated JPEG (libjpeg: %s); re-download or re-save the image", path, je.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)n);
    jpeg_read_header(&cinfo, TRUE);
    if ((rc = check_size(q, "JPEG", cinfo.image_width, cinfo.image_height, e))) longjmp(je.jb, 1);
    if (label && cinfo.num_components != 1) {
        rc = err_set(e, OODSEG_E_DATA,
                     "%s: a label mask must have one channel, but this is a colour JPEG (and JPEG's "
                     "lossy compression changes class values); use an 8-bit gray or palette PNG", path);
        longjmp(je.jb, 1);
    }
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        rc = err_set(e, OODSEG_E_FORMAT, "%s: CMYK JPEG images are not supported; convert to RGB", path);
        longjmp(je.jb, 1);
    }
    int c = label ? 1 : 3;
    cinfo.out_color_space = label ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    size_t stride = (size_t)cinfo.output_width * c;
    px = malloc(stride * cinfo.output_height);
    if (!px) {
        rc = err_set(e, OODSEG_E_NOMEM, "%s: out of memory for a %ux%u JPEG", path,
                     cinfo.output_width, cinfo.output_height);
        longjmp(je.jb, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = px + stride * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    out->w = (int)cinfo.output_width;
    out->h = (int)cinfo.output_height;
    out->c = c;
    out->px = px;
    jpeg_destroy_decompress(&cinfo);
    return OODSEG_OK;
}

// ---- WebP ---------------------------------------------------------------------------------------

static int load_webp(const load_req *q, const uint8_t *data, size_t n, image *out, err *e) {
    const char *path = q->path;
    int w, h;
    if (!WebPGetInfo(data, n, &w, &h))
        return err_set(e, OODSEG_E_FORMAT, "%s: corrupt or truncated WebP header; re-download or re-save the image", path);
    int rc = check_size(q, "WebP", w, h, e);
    if (rc) return rc;
    if (q->label)
        return err_set(e, OODSEG_E_DATA,
                       "%s: WebP label masks are not supported (WebP decodes to colour); use an "
                       "8-bit gray or palette PNG", path);
    uint8_t *px = err_malloc(e, (size_t)w * h * 3, "the WebP pixels");
    if (!px) return e->code;
    if (!WebPDecodeRGBInto(data, n, px, (size_t)w * h * 3, w * 3)) {
        free(px);
        return err_set(e, OODSEG_E_FORMAT, "%s: corrupt or truncated WebP image; re-download or re-save the image", path);
    }
    out->w = w;
    out->h = h;
    out->c = 3;
    out->px = px;
    return OODSEG_OK;
}

// ---- dispatch -----------------------------------------------------------------------------------

static int load_any(const load_req *q, image *out, err *e) {
    memset(out, 0, sizeof *out);
    uint8_t *data;
    size_t n;
    int rc = read_file(q->path, &data, &n, e);
    if (rc) return rc;
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= 8 && !memcmp(data, png_sig, 8)) rc = load_png(q, data, n, out, e);
    else if (n >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        rc = load_jpeg(q, data, n, out, e);
    else if (n >= 12 && !memcmp(data, "RIFF", 4) && !memcmp(data + 8, "WEBP", 4))
        rc = load_webp(q, data, n, out, e);
    else
        rc = err_set(e, OODSEG_E_FORMAT,
                     "%s is not a PNG, JPEG or WebP image (unrecognised first bytes)", q->path);
    free(data);
    return rc;
}

int image_load_rgb_max(const char *path, int64_t max_pixels, image *out, err *e) {
    load_req q = { path, 0, max_pixels > 0 ? max_pixels : INT64_MAX, 0 };
    return load_any(&q, out, e);
}

int image_load_label_max(const char *path, int64_t max_pixels, image *out, err *e) {
    load_req q = { path, 1, max_pixels > 0 ? max_pixels : INT64_MAX, 0 };
    return load_any(&q, out, e);
}

int image_load_rgb_mem(const char *path, uint64_t max_memory, image *out, err *e) {
    max_memory = memlimit_resolve(max_memory);
    load_req q = { path, 0, memlimit_image_pixels(max_memory), max_memory };
    return load_any(&q, out, e);
}

int image_load_label_mem(const char *path, uint64_t max_memory, image *out, err *e) {
    max_memory = memlimit_resolve(max_memory);
    load_req q = { path, 1, memlimit_image_pixels(max_memory), max_memory };
    return load_any(&q, out, e);
}

int image_load_rgb(const char *path, image *out, err *e) { return image_load_rgb_mem(path, 0, out, e); }
int image_load_label(const char *path, image *out, err *e) { return image_load_label_mem(path, 0, out, e); }

// ---- WebP writer --------------------------------------------------------------------------------

static int webp_write(const uint8_t *data, size_t n, const WebPPicture *pic) {
    return fwrite(data, 1, n, (FILE *)pic->custom_ptr) == n;
}

int image_save_webp(const char *path, const image *img, int quality, err *e) {
    if (!img || !img->px || (img->c != 1 && img->c != 3) || img->w < 1 || img->h < 1)
        return err_set(e, OODSEG_E_ARG, "image_save_webp %s: need a 1- or 3-channel image", path);
    if (img->w > WEBP_MAX_DIMENSION || img->h > WEBP_MAX_DIMENSION)
        return err_set(e, OODSEG_E_ARG, "%s: %dx%d is larger than WebP allows (%d pixels a side); use PNG or JPEG",
                       path, img->w, img->h, WEBP_MAX_DIMENSION);
    WebPConfig cf;
    WebPPicture pic;
    if (!WebPConfigInit(&cf) || !WebPPictureInit(&pic))
        return err_set(e, OODSEG_E_INTERNAL, "%s: libwebp's version does not match its headers", path);
    cf.quality = (float)(quality < 0 ? 0 : quality > 100 ? 100 : quality);
    cf.method = 0;   // the fastest: 4-5x faster than libwebp's default 4, files ~25 % larger
    pic.width = img->w;
    pic.height = img->h;
    uint8_t *rgb = img->px;
    if (img->c == 1) {   // WebP has no gray: replicate it
        if (!(rgb = err_malloc(e, (size_t)img->w * img->h * 3, "a WebP picture"))) return e->code;
        for (int64_t q = 0; q < (int64_t)img->w * img->h; q++) memset(rgb + q * 3, img->px[q], 3);
    }
    outfile of;
    int rc = outfile_open(&of, path, e);
    if (!rc) {
        pic.writer = webp_write;
        pic.custom_ptr = of.f;
        int ok = WebPPictureImportRGB(&pic, rgb, img->w * 3) && WebPEncode(&cf, &pic);
        if (!ok) {
            outfile_abort(&of);
            rc = err_set(e, pic.error_code == VP8_ENC_ERROR_OUT_OF_MEMORY ? OODSEG_E_NOMEM : OODSEG_E_IO,
                         "writing %s failed (libwebp error %d)", path, (int)pic.error_code);
        } else {
            rc = outfile_commit(&of, 1, e);
        }
    }
    WebPPictureFree(&pic);
    if (rgb != img->px) free(rgb);
    return rc;
}
