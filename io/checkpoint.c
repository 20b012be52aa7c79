// The format-independent part of checkpoints: opening (mmap + format sniffing), the entry list,
// dtype conversion, and the lookups models use.
#include "pickle.h"
#include "../core/text.h"
#include "file.h"
#include "../core/memlimit.h"
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct ck_impl {
    void *map;
    size_t map_len;
    void **owned;
    int n_owned, cap_owned;
    int cap_e;
    // Where the last lookup succeeded: models ask for keys roughly in file order. Atomic because
    // lookups on a shared checkpoint may come from several threads.
    atomic_int hint;
} ck_impl;

static const char *const DT_NAMES[] = { "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL" };
static const size_t DT_SIZES[] = { 4, 2, 2, 8, 8, 4, 2, 1, 1, 1 };

const char *dtype_name(dtype t) {
    return (unsigned)t < sizeof DT_NAMES / sizeof DT_NAMES[0] ? DT_NAMES[t] : "?";
}

size_t dtype_size(dtype t) {
    return (unsigned)t < sizeof DT_SIZES / sizeof DT_SIZES[0] ? DT_SIZES[t] : 0;
}

static int is_float_dtype(dtype t) { return t == DT_F32 || t == DT_F16 || t == DT_BF16 || t == DT_F64; }

const char *ck_base(const ckpt *ck) {
    const char *s = strrchr(ck->path, '/');
    return s ? s + 1 : ck->path;
}

ckpt *ck_alloc(const char *path, const char *format, err *e) {
    ckpt *ck = err_calloc(e, 1, sizeof *ck, "checkpoint");
    if (!ck) return NULL;
    ck_impl *im = err_calloc(e, 1, sizeof *im, "checkpoint");
    if (!im) { free(ck); return NULL; }
    ck->impl = im;
    snprintf(ck->path, sizeof ck->path, "%s", path ? path : "");
    snprintf(ck->format, sizeof ck->format, "%s", format);
    return ck;
}

void ck_set_map(ckpt *ck, void *map, size_t len) {
    ck_impl *im = ck->impl;
    im->map = map;
    im->map_len = len;
}

void *ck_own(ckpt *ck, size_t nbytes, err *e) {
    ck_impl *im = ck->impl;
    if (ck->max_bytes && (nbytes > ck->max_bytes || ck->bytes > ck->max_bytes - nbytes)) {
        char what[1200];
        snprintf(what, sizeof what, "%s: the float32 copy of the checkpoint's tensors", ck->path);
        return memlimit_check((uint64_t)ck->bytes + nbytes, ck->max_bytes, what,
                              "raise --max-memory, or save the weights as float32 safetensors", e), NULL;
    }
    if (im->n_owned == im->cap_owned) {
        int nc = im->cap_owned ? im->cap_owned * 2 : 64;
        void **no = realloc(im->owned, (size_t)nc * sizeof *no);
        if (!no) { err_set(e, OODSEG_E_NOMEM, "%s: out of memory", ck->path); return NULL; }
        im->owned = no;
        im->cap_owned = nc;
    }
    void *p = err_malloc(e, nbytes, "checkpoint tensor data");
    if (p) im->owned[im->n_owned++] = p, ck->bytes += nbytes;
    return p;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, ex = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (ex == 0x1F) bits = sign | 0x7F800000u | (man << 13);
    else if (ex) bits = sign | ((ex + 112) << 23) | (man << 13);
    else if (!man) bits = sign;
    else {
        // Subnormal half: normalise the mantissa into a float exponent.
        ex = 113;
        while (!(man & 0x400)) { man <<= 1; ex--; }
        bits = sign | (ex << 23) | ((man & 0x3FF) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

// Appends an entry with name and shape set and no data yet.
static int new_entry(ckpt *ck, const char *name, dtype t, int ndim, const int64_t *shape,
                     ckpt_entry **out, err *e) {
    ck_impl *im = ck->impl;
    if (ndim < 0 || ndim > 8)
        return err_set(e, OODSEG_E_FORMAT, "%s: tensor '%s' has %d dimensions (at most 8 supported)",
                       ck->path, name, ndim);
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || (shape[d] && numel > INT64_MAX / 8 / shape[d]))
            return err_set(e, OODSEG_E_FORMAT, "%s: tensor '%s' has an invalid size %lld in dimension %d",
                           ck->path, name, (long long)shape[d], d);
        numel *= shape[d];
    }
    if (ck->n == im->cap_e) {
        int nc = im->cap_e ? im->cap_e * 2 : 256;
        ckpt_entry *ne = realloc(ck->e, (size_t)nc * sizeof *ne);
        if (!ne) return err_set(e, OODSEG_E_NOMEM, "%s: out of memory for the tensor list", ck->path);
        ck->e = ne;
        im->cap_e = nc;
    }
    ckpt_entry *en = &ck->e[ck->n];
    memset(en, 0, sizeof *en);
    if (strncmp(name, "module.", 7) == 0) name += 7;
    en->name = strdup(name);
    if (!en->name) return err_set(e, OODSEG_E_NOMEM, "%s: out of memory", ck->path);
    en->src_dtype = t;
    en->ndim = ndim;
    for (int d = 0; d < ndim; d++) en->shape[d] = shape[d];
    en->numel = numel;
    *out = en;
    return OODSEG_OK;
}

int ck_push(ckpt *ck, const char *name, dtype t, int ndim, const int64_t *shape,
            const void *data, err *e) {
    ckpt_entry *en;
    int rc = new_entry(ck, name, t, ndim, shape, &en, e);
    if (rc) return rc;
    int64_t numel = en->numel;
    size_t es = dtype_size(t), nb = (size_t)numel * es;
    const unsigned char *src = data;
    if (numel && !src) { free(en->name); return err_set(e, OODSEG_E_INTERNAL, "%s: tensor '%s' has no data", ck->path, name); }
    if (t == DT_F32) {
        if (((uintptr_t)src & 3) == 0 && src) en->f32 = (const float *)src;
        else {
            float *o = ck_own(ck, nb, e);
            if (!o) { free(en->name); return OODSEG_E_NOMEM; }
            if (nb) memcpy(o, src, nb);
            en->f32 = o;
        }
    } else if (is_float_dtype(t)) {
        float *o = ck_own(ck, (size_t)numel * 4, e);
        if (!o) { free(en->name); return OODSEG_E_NOMEM; }
        for (int64_t k = 0; k < numel; k++) {
            if (t == DT_F16) {
                uint16_t h; memcpy(&h, src + 2 * k, 2); o[k] = half_to_float(h);
            } else if (t == DT_BF16) {
                uint16_t h; memcpy(&h, src + 2 * k, 2);
                uint32_t b = (uint32_t)h << 16; memcpy(&o[k], &b, 4);
            } else {
                double d; memcpy(&d, src + 8 * k, 8); o[k] = (float)d;
            }
        }
        en->f32 = o;
    } else {
        if (src && ((uintptr_t)src % es) == 0) en->raw = src;
        else {
            void *o = ck_own(ck, nb, e);
            if (!o) { free(en->name); return OODSEG_E_NOMEM; }
            if (nb) memcpy(o, src, nb);
            en->raw = o;
        }
    }
    ck->n++;
    return OODSEG_OK;
}

int ckpt_open(const char *path, ckpt **out, err *e) { return ckpt_open_limit(path, 0, out, e); }

int ckpt_open_limit(const char *path, uint64_t max_bytes, ckpt **out, err *e) {
    *out = NULL;
    int64_t size = 0;
    int fd = io_open_regular(path, "checkpoint", &size, e);
    if (fd < 0) return OODSEG_E_IO;
    size_t len = (size_t)size;
    if (len == 0) { close(fd); return err_set(e, OODSEG_E_FORMAT, "checkpoint '%s' is empty", path); }
    char what[1100];
    snprintf(what, sizeof what, "checkpoint '%s' (its tensors are read in place)", path);
    if (memlimit_check(len, max_bytes, what, "raise --max-memory", e)) { close(fd); return e->code; }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int mmap_errno = errno;
    close(fd);
    if (map == MAP_FAILED)
        return err_set(e, OODSEG_E_IO, "cannot map checkpoint '%s': %s", path, strerror(mmap_errno));
    const unsigned char *b = map;
    const char *fmt = NULL;
    int (*load)(ckpt *, const unsigned char *, size_t, err *) = NULL;
    if (len >= 4 && b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4) { fmt = "torch-zip"; load = pth_zip_load; }
    // safetensors before the legacy pickle's 0x80: a header length of 128 + 256k starts with 0x80 too
    // (a legacy file's byte 8 is inside the magic number 0x1950a86a20f9469cfc6c, never '{').
    else if (len >= 9 && b[8] == '{') { fmt = "safetensors"; load = safetensors_load; }
    else if (len >= 2 && b[0] == 0x80) { fmt = "torch-legacy"; load = pth_legacy_load; }
    else if (len >= 8 && b[6] == 0 && b[7] == 0) { fmt = "safetensors"; load = safetensors_load; }
    if (!load && len < 9) {
        munmap(map, len);
        return err_set(e, OODSEG_E_FORMAT, "checkpoint '%s' is only %zu bytes long: truncated or not a checkpoint",
                       path, len);
    }
    if (!load) {
        char hex[64] = "";
        for (size_t k = 0; k < len && k < 8; k++) snprintf(hex + 3 * k, sizeof hex - 3 * k, "%02x ", b[k]);
        munmap(map, len);
        return err_set(e, OODSEG_E_FORMAT,
                       "'%s' is not a safetensors, PyTorch zip or legacy PyTorch checkpoint (bad magic: first bytes %s)",
                       path, hex);
    }
    ckpt *ck = ck_alloc(path, fmt, e);
    if (!ck) { munmap(map, len); return OODSEG_E_NOMEM; }
    ck_set_map(ck, map, len);
    ck->max_bytes = max_bytes;
    ck->bytes = len;
    int rc = load(ck, b, len, e);
    if (rc) { ckpt_close(ck); return rc; }
    *out = ck;
    return OODSEG_OK;
}

void ckpt_close(ckpt *ck) {
    if (!ck) return;
    ck_impl *im = ck->impl;
    for (int k = 0; k < ck->n; k++) free(ck->e[k].name);
    free(ck->e);
    if (im) {
        for (int k = 0; k < im->n_owned; k++) free(im->owned[k]);
        free(im->owned);
        if (im->map) munmap(im->map, im->map_len);
        free(im);
    }
    free(ck);
}

ckpt *ckpt_new_memory(err *e) { return ck_alloc("(memory)", "memory", e); }

int ckpt_add(ckpt *ck, const char *name, dtype t, int ndim, const int64_t *shape,
             const float *f32_data_or_null, err *e) {
    if (!ck || !name || ndim < 0 || ndim > 8 || (ndim && !shape))
        return err_set(e, OODSEG_E_ARG, "ckpt_add: bad arguments for '%s'", name ? name : "(null)");
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= shape[d] > 0 ? shape[d] : 0;
    if (!f32_data_or_null) {
        // Names and shapes only: data appears (as zeros) the first time ckpt_get asks for it.
        ckpt_entry *en;
        int rc = new_entry(ck, name, t, ndim, shape, &en, e);
        if (!rc) ck->n++;
        return rc;
    }
    size_t es = dtype_size(t);
    void *buf = ck_own(ck, (size_t)numel * (is_float_dtype(t) ? 4 : es), e);
    if (!buf) return OODSEG_E_NOMEM;
    if (is_float_dtype(t)) {
        memcpy(buf, f32_data_or_null, (size_t)numel * 4);
        int rc = ck_push(ck, name, DT_F32, ndim, shape, buf, e);
        if (!rc) ck->e[ck->n - 1].src_dtype = t;
        return rc;
    }
    for (int64_t k = 0; k < numel; k++) {
        double v = f32_data_or_null[k];
        unsigned char *o = (unsigned char *)buf + (size_t)k * es;
        switch (t) {
        case DT_I64: { int64_t x = (int64_t)v; memcpy(o, &x, 8); break; }
        case DT_I32: { int32_t x = (int32_t)v; memcpy(o, &x, 4); break; }
        case DT_I16: { int16_t x = (int16_t)v; memcpy(o, &x, 2); break; }
        case DT_I8: { int8_t x = (int8_t)v; memcpy(o, &x, 1); break; }
        default: { uint8_t x = (uint8_t)v; memcpy(o, &x, 1); break; }
        }
    }
    return ck_push(ck, name, t, ndim, shape, buf, e);
}

const ckpt_entry *ckpt_find(const ckpt *ck, const char *name) {
    if (!ck || !name || ck->n == 0) return NULL;
    ck_impl *im = ck->impl;
    int start = atomic_load_explicit(&im->hint, memory_order_relaxed);
    if (start < 0 || start >= ck->n) start = 0;
    for (int k = 0; k < ck->n; k++) {
        int i = (start + k) % ck->n;
        if (strcmp(ck->e[i].name, name) == 0) {
            atomic_store_explicit(&im->hint, i + 1, memory_order_relaxed);
            return &ck->e[i];
        }
    }
    return NULL;
}

void ckpt_release(ckpt *ck, const float *data) {
    if (!ck || !data) return;
    ck_impl *im = ck->impl;
    ckpt_entry *en = NULL;
    for (int k = 0; k < ck->n && !en; k++)
        if (ck->e[k].f32 == data && !ck->e[k].released) en = &ck->e[k];
    if (!en) return;
    size_t nbytes = (size_t)en->numel * 4;
    for (int k = 0; k < im->n_owned; k++)
        if (im->owned[k] == (void *)data) {
            free(im->owned[k]);
            im->owned[k] = im->owned[--im->n_owned];
            ck->bytes -= nbytes < ck->bytes ? nbytes : ck->bytes;
            en->f32 = NULL;
            en->released = 1;
            return;
        }
    if (ckpt_entry_is_mapped(ck, en)) {
        // Only the pages inside the tensor: its neighbours may share the first and the last.
        uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)data, b = a + nbytes;
        uintptr_t a1 = (a + pg - 1) / pg * pg, b1 = b / pg * pg;
        if (b1 > a1) madvise((void *)a1, b1 - a1, MADV_DONTNEED);
        en->f32 = NULL;
        en->released = 1;
    }
}

int ckpt_entry_is_mapped(const ckpt *ck, const ckpt_entry *en) {
    const ck_impl *im = ck ? ck->impl : NULL;
    if (!im || !im->map || !en) return 0;
    const char *p = en->f32 ? (const char *)en->f32 : (const char *)en->raw, *m = im->map;
    return p && p >= m && p < m + im->map_len;
}

const float *ckpt_get(ckpt *ck, const char *name, int ndim, const int64_t *shape, err *e) {
    char want[160], have[160];
    if (ndim < 0 || ndim > 8) { err_set(e, OODSEG_E_ARG, "ckpt_get('%s'): bad ndim %d", name, ndim); return NULL; }
    fmt_shape(want, sizeof want, ndim, shape);
    const ckpt_entry *c = ckpt_find(ck, name);
    if (!c) {
        err_set(e, OODSEG_E_MODEL, "missing key '%s' (the architecture needs shape %s) in checkpoint '%s'",
                name, want, ck->path);
        return NULL;
    }
    ckpt_entry *en = (ckpt_entry *)c;
    if (en->released) {
        err_set(e, OODSEG_E_MODEL, "key '%s' of checkpoint '%s' was bound again after its memory was "
                "given back (ckpt_release): a model must bind each key once", name, ck->path);
        return NULL;
    }
    int same = en->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = en->shape[d] == shape[d];
    if (!same) {
        fmt_shape(have, sizeof have, en->ndim, en->shape);
        err_set(e, OODSEG_E_MODEL, "key '%s' has shape %s but the architecture needs %s (checkpoint '%s')",
                name, have, want, ck->path);
        return NULL;
    }
    if (!is_float_dtype(en->src_dtype)) {
        err_set(e, OODSEG_E_MODEL, "key '%s' is an integer tensor (%s) but the architecture needs floats (checkpoint '%s')",
                name, dtype_name(en->src_dtype), ck->path);
        return NULL;
    }
    if (!en->f32) {
        // A shapes-only memory checkpoint: hand out zeros so models can be built for tests.
        float *z = ck_own(ck, (size_t)(en->numel ? en->numel : 1) * 4, e);
        if (!z) return NULL;
        memset(z, 0, (size_t)(en->numel ? en->numel : 1) * 4);
        en->f32 = z;
    }
    en->used = 1;
    return en->f32;
}

static int ignored(const char *name, const char *const *ignore, int n_ignore) {
    size_t ln = strlen(name);
    for (int k = 0; k < n_ignore; k++) {
        const char *p = ignore[k];
        size_t lp = strlen(p);
        if (!lp) continue;
        if (p[lp - 1] == '.') { if (strncmp(name, p, lp) == 0) return 1; }
        else if (ln >= lp && strcmp(name + ln - lp, p) == 0) return 1;
    }
    return 0;
}

const ckpt_entry *ckpt_first_unused(const ckpt *ck, const char *const *ignore, int n_ignore) {
    for (int k = 0; ck && k < ck->n; k++)
        if (!ck->e[k].used && !ignored(ck->e[k].name, ignore, n_ignore)) return &ck->e[k];
    return NULL;
}

int64_t ckpt_num_float_params(const ckpt *ck) {
    int64_t s = 0;
    for (int k = 0; ck && k < ck->n; k++)
        if (is_float_dtype(ck->e[k].src_dtype)) s += ck->e[k].numel;
    return s;
}

int64_t ckpt_num_learnable_params(const ckpt *ck) {
    int64_t n = 0;
    for (int k = 0; ck && k < ck->n; k++) {
        const ckpt_entry *en = &ck->e[k];
        size_t ln = strlen(en->name);
        int stat = (ln > 13 && !strcmp(en->name + ln - 13, ".running_mean")) ||
                   (ln > 12 && !strcmp(en->name + ln - 12, ".running_var"));
        if (is_float_dtype(en->src_dtype) && !stat) n += en->numel;
    }
    return n;
}
