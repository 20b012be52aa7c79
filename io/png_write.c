// The PNG writer (image_save_png in image.h): the container written here, the scanlines
// filtered here and compressed by libdeflate.
//
// Why not libpng: its filters run one byte at a time, and it compresses with zlib. The Paeth
// predictor of a byte reads the raw bytes left, above and upper-left, never a filtered one, so a
// whole row filters as one vector loop. The class and cluster pictures have a few dozen colours:
// stored as palette indices (colour type 3) they are a third of the bytes, and decoders give back
// the same RGB pixels. And libdeflate at level 1 compresses the filtered rows of a heat map or an
// overlay twice as fast as zlib's fastest setting (level 1, Z_RLE), for files 2 % (heat map) to
// 18 % (overlay) larger (bench/bench_pictures.c; BENCHMARKS.md).
//
// Settings: RGB and gray rows Paeth-filtered, palette rows Up-filtered (a picture's rows mostly
// repeat the one above, and Up makes them zeros), the whole filtered image compressed in one call
// (libdeflate has no streaming interface), IDAT chunks of 1 MB.
#include "image.h"
#include "../core/outfile.h"
#include "../nn/simd.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <libdeflate.h>
#include <zlib.h>   // (crc32 only)

#define PNG_IDAT_MAX (1 << 20)   // bytes of compressed data per IDAT chunk
#define PALETTE_SLOTS 1024       // open addressing for at most 256 colours

enum { FILTER_UP = 2, FILTER_PAETH = 4 };

typedef struct png_out {
    FILE *f;
    int failed;          // a write failed (errno kept in err_no)
    int err_no;
} png_out;

static void put_bytes(png_out *o, const void *p, size_t n) {
    if (!o->failed && fwrite(p, 1, n, o->f) != n) o->failed = 1, o->err_no = errno;
}

static void put_u32(png_out *o, uint32_t v) {
    const uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put_bytes(o, b, 4);
}

// One chunk: length, type, data, CRC-32 of type and data.
static void put_chunk(png_out *o, const char type[4], const uint8_t *data, uint32_t n) {
    put_u32(o, n);
    put_bytes(o, type, 4);
    if (n) put_bytes(o, data, n);
    uLong crc = crc32(0L, (const Bytef *)type, 4);
    if (n) crc = crc32(crc, data, n);
    put_u32(o, (uint32_t)crc);
}

// out[i] = row[i] - Paeth(left, up, upper-left) for a row of n bytes with bpp bytes per pixel;
// left and upper-left are 0 on the first pixel, prev is a row of zeros above the first row.
NN_TARGET_CLONES
static void paeth_row(const uint8_t *row, const uint8_t *prev, int n, int bpp, uint8_t *out) {
    for (int i = 0; i < bpp && i < n; i++) out[i] = (uint8_t)(row[i] - prev[i]);   // Paeth(0, b, 0) = b
    NN_SIMD_INT
    for (int i = bpp; i < n; i++) {
        const int a = row[i - bpp], b = prev[i], c = prev[i - bpp];
        const int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
        const int pr = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
        out[i] = (uint8_t)(row[i] - pr);
    }
}

NN_TARGET_CLONES
static void up_row(const uint8_t *row, const uint8_t *prev, int n, uint8_t *out) {
    NN_SIMD_INT
    for (int i = 0; i < n; i++) out[i] = (uint8_t)(row[i] - prev[i]);
}

// The palette of an RGB image when it has at most 256 colours: *np entries in pal (r, g, b) and
// the index of every pixel in idx (w * h); 0 as soon as a 257th colour appears.
static int palette_of(const image *img, uint8_t pal[256][3], int *np, uint8_t *idx) {
    int32_t slot[PALETTE_SLOTS];   // colour + 1, or 0 when free
    uint8_t slot_ix[PALETTE_SLOTS];
    memset(slot, 0, sizeof slot);
    int n = 0;
    uint32_t last = UINT32_MAX;
    uint8_t last_ix = 0;
    const int64_t np_px = (int64_t)img->w * img->h;
    for (int64_t p = 0; p < np_px; p++) {
        const uint8_t *q = img->px + p * 3;
        const uint32_t c = (uint32_t)q[0] << 16 | (uint32_t)q[1] << 8 | q[2];
        if (c != last) {   // (pictures are runs: most pixels repeat the one before)
            uint32_t h = (c * 2654435761u) >> 22;   // 10 bits
            while (slot[h] && (uint32_t)slot[h] != c + 1) h = (h + 1) & (PALETTE_SLOTS - 1);
            if (!slot[h]) {
                if (n == 256) return 0;
                slot[h] = (int32_t)(c + 1);
                slot_ix[h] = (uint8_t)n;
                memcpy(pal[n++], q, 3);
            }
            last = c, last_ix = slot_ix[h];
        }
        idx[p] = last_ix;
    }
    *np = n;
    return 1;
}

// The IDAT chunks of the image's rows (h rows of n bytes, bpp bytes per pixel), each filtered
// with `filter` into one buffer and compressed in one call. 0, or OODSEG_E_NOMEM.
static int put_image_data(png_out *o, const uint8_t *px, int h, int n, int bpp, int filter) {
    const size_t raw = (size_t)h * ((size_t)n + 1);
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(1);
    uint8_t *f = malloc(raw), *zero = calloc((size_t)n, 1);
    const size_t cap = c ? libdeflate_zlib_compress_bound(c, raw) : 0;
    uint8_t *z = c ? malloc(cap) : NULL;
    int rc = c && f && zero && z ? OODSEG_OK : OODSEG_E_NOMEM;
    for (int y = 0; y < h && !rc; y++) {
        const uint8_t *row = px + (size_t)y * n, *prev = y ? row - n : zero;
        uint8_t *line = f + (size_t)y * ((size_t)n + 1);
        line[0] = (uint8_t)filter;
        if (filter == FILTER_PAETH) paeth_row(row, prev, n, bpp, line + 1);
        else up_row(row, prev, n, line + 1);
    }
    const size_t got = rc ? 0 : libdeflate_zlib_compress(c, f, raw, z, cap);
    if (!rc && !got) rc = OODSEG_E_INTERNAL;   // (cannot happen: cap is libdeflate's own bound)
    for (size_t at = 0; at < got; at += PNG_IDAT_MAX)
        put_chunk(o, "IDAT", z + at, (uint32_t)(got - at < PNG_IDAT_MAX ? got - at : PNG_IDAT_MAX));
    libdeflate_free_compressor(c);
    free(f), free(zero), free(z);
    return rc;
}

int image_save_png(const char *path, const image *img, err *e) {
    if (!img || !img->px || (img->c != 1 && img->c != 3) || img->w < 1 || img->h < 1)
        return err_set(e, OODSEG_E_ARG, "image_save_png %s: need a 1- or 3-channel image", path);
    const int w = img->w, h = img->h;
    uint8_t pal[256][3];
    int npal = 0;
    uint8_t *idx = img->c == 3 ? malloc((size_t)w * h) : NULL;
    const int indexed = idx && palette_of(img, pal, &npal, idx);
    const int bpp = indexed ? 1 : img->c, n = w * bpp;
    if (img->c == 3 && !idx)
        return err_set(e, OODSEG_E_NOMEM, "%s: out of memory encoding a %dx%d PNG", path, w, h);
    outfile of;
    if (outfile_open(&of, path, e)) {
        free(idx);
        return e->code;
    }
    png_out o = {of.f, 0, 0};
    static const uint8_t signature[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    put_bytes(&o, signature, 8);
    const uint8_t ihdr[13] = {(uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w,
                              (uint8_t)(h >> 24), (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h,
                              8, (uint8_t)(indexed ? 3 : img->c == 3 ? 2 : 0), 0, 0, 0};
    put_chunk(&o, "IHDR", ihdr, 13);
    if (indexed) put_chunk(&o, "PLTE", &pal[0][0], (uint32_t)npal * 3);
    int rc = put_image_data(&o, indexed ? idx : img->px, h, n, bpp, indexed ? FILTER_UP : FILTER_PAETH);
    put_chunk(&o, "IEND", NULL, 0);
    free(idx);
    if (rc) {
        outfile_abort(&of);
        return err_set(e, rc, rc == OODSEG_E_NOMEM ? "%s: out of memory compressing a %dx%d PNG"
                                                   : "%s: libdeflate failed compressing a %dx%d PNG", path, w, h);
    }
    if (o.failed) {
        outfile_abort(&of);
        return err_set(e, OODSEG_E_IO, "writing %s failed: %s (is the disk full?)", path, strerror(o.err_no));
    }
    return outfile_commit(&of, 1, e);
}
