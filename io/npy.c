// NumPy .npy reader and float32 writer. The header is a Python dict literal; we parse the three
// keys we need ('descr', 'fortran_order', 'shape') with a small tokenizer rather than trusting
// a fixed layout, because numpy versions differ in spacing and key order.
#include "../core/outfile.h"
#include "npy.h"
#include "../core/memlimit.h"
#include "file.h"
#include "../core/text.h"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char NPY_MAGIC[6] = { '\x93', 'N', 'U', 'M', 'P', 'Y' };

typedef struct dtinfo { const char *code; int size; } dtinfo;
static const dtinfo DTYPES[] = {
    {"f4", 4}, {"f8", 8}, {"u1", 1}, {"i1", 1}, {"i2", 2}, {"u2", 2},
    {"i4", 4}, {"u4", 4}, {"i8", 8}, {"b1", 1},
};

static int dtype_size(const char *code) {
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (!strcmp(DTYPES[i].code, code)) return DTYPES[i].size;
    return 0;
}

// Finds 'key' in the header dict and returns a pointer just after the ':' (spaces skipped).
static const char *find_key(const char *hdr, const char *key) {
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(hdr, pat);
    if (!p) {
        snprintf(pat, sizeof pat, "\"%s\"", key);
        p = strstr(hdr, pat);
    }
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

static int parse_header(const char *path, const char *hdr, npy_array *out, err *e) {
    const char *d = find_key(hdr, "descr");
    if (!d || (*d != '\'' && *d != '"'))
        return err_set(e, OODSEG_E_FORMAT, "%s: .npy header has no 'descr' entry", path);
    char q = *d++;
    char descr[32];
    size_t n = 0;
    while (*d && *d != q && n + 1 < sizeof descr) descr[n++] = *d++;
    descr[n] = 0;
    if (*d != q) return err_set(e, OODSEG_E_FORMAT, "%s: .npy header 'descr' is not a string", path);
    // Byte order: '<' little, '|' not applicable (1-byte types), '=' native (little on our targets).
    const char *code = descr;
    if (*code == '<' || *code == '|' || *code == '=') code++;
    else if (*code == '>')
        return err_set(e, OODSEG_E_FORMAT,
                       "%s: big-endian data (dtype '%s') is not supported; save it little-endian "
                       "(numpy: a.astype(a.dtype.newbyteorder('<')))", path, descr);
    if (!dtype_size(code) || strlen(code) >= sizeof out->dtype)
        return err_set(e, OODSEG_E_FORMAT,
                       "%s: unsupported .npy dtype '%s' (supported: f4 f8 u1 i1 i2 u2 i4 u4 i8 b1)",
                       path, descr);
    memcpy(out->dtype, code, strlen(code) + 1);   // length checked above

    const char *f = find_key(hdr, "fortran_order");
    if (!f) return err_set(e, OODSEG_E_FORMAT, "%s: .npy header has no 'fortran_order' entry", path);
    if (!strncmp(f, "True", 4))
        return err_set(e, OODSEG_E_FORMAT,
                       "%s: Fortran-ordered array; save a C-ordered copy (numpy.ascontiguousarray)", path);
    if (strncmp(f, "False", 5))
        return err_set(e, OODSEG_E_FORMAT, "%s: .npy header 'fortran_order' is neither True nor False", path);

    const char *s = find_key(hdr, "shape");
    if (!s || *s != '(') return err_set(e, OODSEG_E_FORMAT, "%s: .npy header has no 'shape' tuple", path);
    s++;
    out->ndim = 0;
    out->numel = 1;
    for (;;) {
        while (*s == ' ' || *s == ',') s++;
        if (*s == ')') break;
        if (!isdigit((unsigned char)*s))
            return err_set(e, OODSEG_E_FORMAT, "%s: .npy 'shape' is not a tuple of integers", path);
        if (out->ndim >= 8)
            return err_set(e, OODSEG_E_FORMAT, "%s: arrays of more than 8 dimensions are not supported", path);
        errno = 0;
        char *end;
        long long v = strtoll(s, &end, 10);
        if (errno || v < 0 || v > ((int64_t)1 << 40))
            return err_set(e, OODSEG_E_FORMAT, "%s: .npy dimension %d is out of range", path, out->ndim);
        out->shape[out->ndim++] = v;
        if (v && out->numel > ((int64_t)1 << 40) / v)
            return err_set(e, OODSEG_E_FORMAT, "%s: .npy array is too large", path);
        out->numel *= v;
        s = end;
    }
    return OODSEG_OK;
}

// The preamble (magic, version, header length) and the header dict; leaves fp at the data.
static int read_header(const char *path, FILE *fp, npy_array *out, err *e) {
    unsigned char pre[10];
    size_t got = fread(pre, 1, 10, fp);
    if (got < 10 || memcmp(pre, NPY_MAGIC, 6))
        return err_set(e, OODSEG_E_FORMAT, "%s: not a .npy file (%s)", path,
                       got == 0 ? "empty file" : "bad magic bytes");
    int major = pre[6];
    size_t hlen;
    if (major == 1) hlen = pre[8] | (size_t)pre[9] << 8;
    else if (major == 2 || major == 3) {
        unsigned char b[2];
        if (fread(b, 1, 2, fp) != 2) return err_set(e, OODSEG_E_FORMAT, "%s: truncated .npy header", path);
        hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)b[0] << 16 | (size_t)b[1] << 24;
    } else {
        return err_set(e, OODSEG_E_FORMAT, "%s: unsupported .npy format version %d.%d", path, major, pre[7]);
    }
    if (hlen > (1u << 20))
        return err_set(e, OODSEG_E_FORMAT, "%s: .npy header length %zu is implausible: a corrupt file; save it again with numpy.save", path, hlen);
    char *hdr = err_malloc(e, hlen + 1, "the .npy header");
    if (!hdr) return OODSEG_E_NOMEM;
    if (fread(hdr, 1, hlen, fp) != hlen) {
        free(hdr);
        return err_set(e, OODSEG_E_FORMAT, "%s: truncated .npy header", path);
    }
    hdr[hlen] = 0;
    int rc = parse_header(path, hdr, out, e);
    free(hdr);
    return rc;
}

int npy_read(const char *path, npy_array *out, err *e) { return npy_read_limit(path, 0, out, e); }

int npy_read_limit(const char *path, uint64_t max_bytes, npy_array *out, err *e) {
    memset(out, 0, sizeof *out);
    int64_t fsize = 0;
    FILE *fp = io_fopen_regular(path, ".npy file", &fsize, e);
    if (!fp) return OODSEG_E_IO;
    int rc = read_header(path, fp, out, e);
    if (rc) { fclose(fp); return rc; }
    // The declared size is checked against the file before anything that size is allocated: a
    // 100-byte header may declare terabytes.
    size_t esz = (size_t)dtype_size(out->dtype), bytes = esz * (size_t)out->numel;
    long at = ftell(fp);
    if (at < 0 || (uint64_t)fsize < (uint64_t)at || bytes > (uint64_t)fsize - (uint64_t)at) {
        char shp[200];
        fclose(fp);
        return err_set(e, OODSEG_E_FORMAT,
                       "%s: truncated .npy data: the header declares shape %s of '%s' (%zu bytes from byte "
                       "%ld) but the file has only %lld bytes", path,
                       fmt_shape(shp, sizeof shp, out->ndim, out->shape), out->dtype, bytes, at,
                       (long long)fsize);
    }
    char what[1300], shp[200];
    snprintf(what, sizeof what, "%s: the .npy array of shape %s of '%s' (with its float32 copy)", path,
             fmt_shape(shp, sizeof shp, out->ndim, out->shape), out->dtype);
    if (memlimit_check((uint64_t)bytes + 4 * (uint64_t)out->numel, max_bytes, what,
                       "raise --max-memory", e)) { fclose(fp); return e->code; }
    out->data = err_malloc(e, bytes, "the .npy data");
    if (!out->data) { fclose(fp); return OODSEG_E_NOMEM; }
    if (fread(out->data, 1, bytes, fp) != bytes) {
        fclose(fp);
        npy_free(out);
        return err_set(e, OODSEG_E_FORMAT, "%s: truncated .npy data (expected %zu bytes)", path, bytes);
    }
    fclose(fp);
    return OODSEG_OK;
}

void npy_free(npy_array *a) {
    if (!a) return;
    free(a->data);
    a->data = NULL;
    a->numel = 0;
    a->ndim = 0;
}

float *npy_to_f32(const npy_array *a, err *e) {
    float *f = err_malloc(e, sizeof(float) * (size_t)(a->numel ? a->numel : 1), "a float32 copy");
    if (!f) return NULL;
    const char *t = a->dtype;
    for (int64_t i = 0; i < a->numel; i++) {
        float v;
        if (!strcmp(t, "f4")) v = ((const float *)a->data)[i];
        else if (!strcmp(t, "f8")) v = (float)((const double *)a->data)[i];
        else if (!strcmp(t, "u1") || !strcmp(t, "b1")) v = ((const uint8_t *)a->data)[i];
        else if (!strcmp(t, "i1")) v = ((const int8_t *)a->data)[i];
        else if (!strcmp(t, "i2")) v = ((const int16_t *)a->data)[i];
        else if (!strcmp(t, "u2")) v = ((const uint16_t *)a->data)[i];
        else if (!strcmp(t, "i4")) v = (float)((const int32_t *)a->data)[i];
        else if (!strcmp(t, "u4")) v = (float)((const uint32_t *)a->data)[i];
        else if (!strcmp(t, "i8")) v = (float)((const int64_t *)a->data)[i];
        else {
            free(f);
            err_set(e, OODSEG_E_FORMAT, "cannot convert .npy dtype '%s' to float32", t);
            return NULL;
        }
        f[i] = v;
    }
    return f;
}

int npy_write(const char *path, const char *dtype, const void *data, int ndim,
              const int64_t *shape, err *e) {
    int esz = dtype_size(dtype);
    if (!esz) return err_set(e, OODSEG_E_ARG, "npy_write %s: unsupported dtype '%s'", path, dtype);
    if (ndim < 0 || ndim > 8) return err_set(e, OODSEG_E_ARG, "npy_write %s: %d dimensions", path, ndim);
    char dict[512];
    int len = snprintf(dict, sizeof dict, "{'descr': '%c%s', 'fortran_order': False, 'shape': (",
                       esz == 1 ? '|' : '<', dtype);
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        len += snprintf(dict + len, sizeof dict - len, "%lld%s", (long long)shape[i],
                        ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
        numel *= shape[i];
    }
    len += snprintf(dict + len, sizeof dict - len, "), }");
    // Pad with spaces so the data starts on a 64-byte boundary, newline last (format 1.0).
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    int hlen = len + pad + 1;
    outfile of;
    if (outfile_open(&of, path, e)) return e->code;
    FILE *fp = of.f;
    unsigned char pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                              (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8) };
    int ok = fwrite(pre, 1, 10, fp) == 10 && fwrite(dict, 1, len, fp) == (size_t)len;
    for (int i = 0; ok && i < pad; i++) ok = fputc(' ', fp) != EOF;
    ok = ok && fputc('\n', fp) != EOF;
    ok = ok && fwrite(data, (size_t)esz, (size_t)numel, fp) == (size_t)numel;
    return outfile_commit(&of, ok, e);
}

int npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape, err *e) {
    return npy_write(path, "f4", data, ndim, shape, e);
}

uint8_t *npy_to_u8(const npy_array *a, err *e) {
    float *f = npy_to_f32(a, e);
    if (!f) return NULL;
    uint8_t *u = err_malloc(e, (size_t)(a->numel ? a->numel : 1), "a uint8 copy");
    if (!u) { free(f); return NULL; }
    for (int64_t i = 0; i < a->numel; i++) {
        // i8 values above 2^24 lose precision in float but are out of range anyway.
        if (!(f[i] >= 0 && f[i] <= 255 && f[i] == (float)(int)f[i])) {
            err_set(e, OODSEG_E_DATA, "value %g at flat index %lld does not fit in uint8 (0..255)",
                    (double)f[i], (long long)i);
            free(f); free(u);
            return NULL;
        }
        u[i] = (uint8_t)f[i];
    }
    free(f);
    return u;
}
