// safetensors: u64 header length, JSON header, raw little-endian data. Reading is zero-copy for
// aligned F32; writing goes through a temporary file so a failure never leaves a partial file.
#include "../core/outfile.h"
#include "pickle.h"
#include "../core/json.h"
#include "../core/text.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// Header lengths beyond this are corrupt, not big models: 100 MB of JSON is ~1M tensors.
#define ST_MAX_HEADER (100u << 20)

static int parse_dtype(const char *s, dtype *t) {
    static const struct { const char *n; dtype t; } m[] = {
        { "F32", DT_F32 }, { "F16", DT_F16 }, { "BF16", DT_BF16 }, { "F64", DT_F64 }, { "I64", DT_I64 },
        { "I32", DT_I32 }, { "I16", DT_I16 }, { "I8", DT_I8 }, { "U8", DT_U8 }, { "BOOL", DT_BOOL },
    };
    for (size_t k = 0; k < sizeof m / sizeof m[0]; k++)
        if (strcmp(s, m[k].n) == 0) { *t = m[k].t; return 1; }
    return 0;
}

// One tensor's header entry {"dtype", "shape", "data_offsets"}, checked against the data block
// of dlen bytes; its data are data[*beg, *end).
static int parse_entry(const ckpt *ck, const char *name, const json *v, uint64_t dlen, dtype *t,
                       int *ndim, int64_t *shape, uint64_t *beg, uint64_t *end, err *e) {
    const char *p = ck->path;
    const json *jt = json_get(v, "dtype"), *js = json_get(v, "shape"), *jo = json_get(v, "data_offsets");
    if (!jt || jt->type != JSON_STRING || !js || js->type != JSON_ARRAY || !jo || jo->type != JSON_ARRAY
        || jo->n != 2)
        return err_set(e, OODSEG_E_FORMAT, "%s: safetensors tensor '%s' needs \"dtype\", \"shape\" and a "
                       "2-element \"data_offsets\" in the header", p, name);
    if (!parse_dtype(jt->str, t))
        return err_set(e, OODSEG_E_FORMAT, "%s: safetensors tensor '%s' has unsupported dtype '%s' (supported: F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL); convert it before saving", p, name, jt->str);
    if (js->n > 8)
        return err_set(e, OODSEG_E_FORMAT, "%s: safetensors tensor '%s' has %d dimensions (at most 8)", p, name, js->n);
    uint64_t numel = 1;
    for (int d = 0; d < js->n; d++) {
        const json *x = &js->items[d];
        if (x->type != JSON_NUMBER || x->i64 < 0 || (double)x->i64 != x->num
            || (x->i64 && numel > (UINT64_MAX / 16) / (uint64_t)x->i64))
            return err_set(e, OODSEG_E_FORMAT, "%s: safetensors tensor '%s' has a bad shape entry %d (not a non-negative integer, or a size too large): a corrupt or crafted file; re-save it", p, name, d);
        shape[d] = x->i64;
        numel *= (uint64_t)x->i64;
    }
    *ndim = js->n;
    const json *b0 = &jo->items[0], *b1 = &jo->items[1];
    if (b0->type != JSON_NUMBER || b1->type != JSON_NUMBER || b0->i64 < 0 || b1->i64 < b0->i64
        || (double)b0->i64 != b0->num || (double)b1->i64 != b1->num)
        return err_set(e, OODSEG_E_FORMAT, "%s: safetensors tensor '%s' has bad data_offsets", p, name);
    *beg = (uint64_t)b0->i64;
    *end = (uint64_t)b1->i64;
    if (*end > dlen)
        return err_set(e, OODSEG_E_FORMAT,
                       "%s: safetensors tensor '%s' has data_offsets [%llu, %llu] past the end of the data "
                       "(%llu bytes after the header): truncated file?",
                       p, name, (unsigned long long)*beg, (unsigned long long)*end, (unsigned long long)dlen);
    if (*end - *beg != numel * dtype_size(*t))
        return err_set(e, OODSEG_E_FORMAT,
                       "%s: safetensors tensor '%s' has data_offsets [%llu, %llu] (%llu bytes) but %s x %llu "
                       "elements need %llu bytes", p, name, (unsigned long long)*beg, (unsigned long long)*end,
                       (unsigned long long)(*end - *beg), dtype_name(*t), (unsigned long long)numel,
                       (unsigned long long)(numel * dtype_size(*t)));
    return OODSEG_OK;
}

// A tensor's bytes in the data block, for the layout check.
typedef struct span { uint64_t beg, end; const char *name; } span;

static int by_offset(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->beg != y->beg ? (x->beg < y->beg ? -1 : 1) : x->end != y->end ? (x->end < y->end ? -1 : 1) : 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// No name twice and no two tensors sharing a byte: either means a crafted or corrupt file (the
// format's own reader refuses both), and loading it would alias or silently drop a tensor.
// Sorting makes both checks one pass: overlapping spans sorted by offset overlap a neighbour.
static int check_layout(const ckpt *ck, char **names, int n_names, span *sp, int n_sp, err *e) {
    const char *p = ck->path;
    qsort(names, (size_t)n_names, sizeof *names, by_name);
    for (int k = 1; k < n_names; k++)
        if (strcmp(names[k - 1], names[k]) == 0)
            return err_set(e, OODSEG_E_FORMAT, "%s: the safetensors header names '%s' twice: a corrupt or crafted "
                           "file; re-save it with one entry per tensor", p, names[k]);
    qsort(sp, (size_t)n_sp, sizeof *sp, by_offset);
    for (int k = 1; k < n_sp; k++)
        if (sp[k - 1].end > sp[k].beg)
            return err_set(e, OODSEG_E_FORMAT, "%s: safetensors tensors '%s' (data_offsets [%llu, %llu]) and '%s' "
                           "([%llu, %llu]) overlap: a corrupt or crafted file; re-save it", p, sp[k - 1].name,
                           (unsigned long long)sp[k - 1].beg, (unsigned long long)sp[k - 1].end, sp[k].name,
                           (unsigned long long)sp[k].beg, (unsigned long long)sp[k].end);
    return OODSEG_OK;
}

// One parsed header entry.
typedef struct st_ent { const char *name; dtype t; int ndim; int64_t shape[8]; uint64_t beg, end; } st_ent;

// Every entry is parsed and the layout checked before the first tensor is added.
static int load_entries(ckpt *ck, const json *h, const unsigned char *data, uint64_t dlen, err *e) {
    st_ent *ent = calloc((size_t)h->n + 1, sizeof *ent);
    span *sp = calloc((size_t)h->n + 1, sizeof *sp);
    char **names = calloc((size_t)h->n + 1, sizeof *names);
    int n_ent = 0, n_sp = 0, rc = OODSEG_OK;
    if (!ent || !sp || !names) rc = err_set(e, OODSEG_E_NOMEM, "%s: out of memory for the safetensors header", ck->path);
    for (int k = 0; k < h->n && !rc; k++) {
        names[k] = h->keys[k];
        if (strcmp(h->keys[k], "__metadata__") == 0) continue;
        st_ent *t = &ent[n_ent++];
        t->name = h->keys[k];
        rc = parse_entry(ck, t->name, &h->items[k], dlen, &t->t, &t->ndim, t->shape, &t->beg, &t->end, e);
        if (!rc && t->end > t->beg) sp[n_sp++] = (span){ t->beg, t->end, t->name };
    }
    if (!rc) rc = check_layout(ck, names, h->n, sp, n_sp, e);
    for (int k = 0; k < n_ent && !rc; k++) {
        const st_ent *t = &ent[k];
        rc = ck_push(ck, t->name, t->t, t->ndim, t->shape, t->end > t->beg ? data + t->beg : NULL, e);
    }
    free(ent);
    free(sp);
    free(names);
    return rc;
}

int safetensors_load(ckpt *ck, const unsigned char *buf, size_t len, err *e) {
    const char *p = ck->path;
    if (len < 8) return err_set(e, OODSEG_E_FORMAT, "%s: truncated safetensors file (%zu bytes, no header length)", p, len);
    uint64_t hl = 0;
    for (int k = 7; k >= 0; k--) hl = (hl << 8) | buf[k];
    if (hl > ST_MAX_HEADER)
        return err_set(e, OODSEG_E_FORMAT, "%s: safetensors header length %llu is implausible (bad magic or corrupt file)",
                       p, (unsigned long long)hl);
    if (hl > len - 8)
        return err_set(e, OODSEG_E_FORMAT,
                       "%s: truncated safetensors file: the header needs bytes 8..%llu but the file has %zu bytes",
                       p, (unsigned long long)(8 + hl), len);
    char what[1100];
    snprintf(what, sizeof what, "%s: safetensors header", p);
    json *h = json_parse((const char *)buf + 8, (size_t)hl, what, e);
    if (!h) return e ? e->code : OODSEG_E_FORMAT;
    int rc = OODSEG_OK;
    const unsigned char *data = buf + 8 + hl;
    uint64_t dlen = len - 8 - hl;
    if (h->type != JSON_OBJECT) rc = err_set(e, OODSEG_E_FORMAT, "%s: safetensors header is not a JSON object", p);
    else rc = load_entries(ck, h, data, dlen, e);
    json_free(h);
    return rc;
}

// The growing header text, always NUL-terminated once anything is in it.
typedef struct sbuf { char *p; size_t n, cap; int oom; } sbuf;

// Makes room for n more bytes and the NUL.
static int sb_reserve(sbuf *b, size_t n) {
    if (b->oom) return 0;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 4096;
        while (nc < b->n + n + 1) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) { b->oom = 1; return 0; }
        b->p = np;
        b->cap = nc;
    }
    return 1;
}

static void sb_str(sbuf *b, const char *s) {
    size_t n = strlen(s);
    if (!sb_reserve(b, n)) return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

// s as a JSON string literal, through the project's one JSON string writer.
static void sb_jstr(sbuf *b, const char *s) {
    if (!sb_reserve(b, 6 * strlen(s) + 2)) return;   // an escape is at most 6 bytes
    b->p[b->n] = 0;
    if (json_append_str(b->p + b->n, b->cap - b->n, s) != 0) { b->oom = 1; return; }
    b->n += strlen(b->p + b->n);
}

int safetensors_write(const char *path, const st_tensor *t, int n, const char *const *meta_kv,
                      int n_meta, err *e) {
    if (!path || n < 0 || (n && !t) || n_meta < 0 || (n_meta && !meta_kv))
        return err_set(e, OODSEG_E_ARG, "safetensors_write: bad arguments");
    sbuf h = { 0 };
    char num[64];
    uint64_t off = 0;
    sb_str(&h, "{");
    if (n_meta) {
        sb_str(&h, "\"__metadata__\":{");
        for (int k = 0; k < n_meta; k++) {
            if (k) sb_str(&h, ",");
            sb_jstr(&h, meta_kv[2 * k] ? meta_kv[2 * k] : "");
            sb_str(&h, ":");
            sb_jstr(&h, meta_kv[2 * k + 1] ? meta_kv[2 * k + 1] : "");
        }
        sb_str(&h, "}");
    }
    for (int k = 0; k < n; k++) {
        if (!t[k].name || t[k].ndim < 0 || t[k].ndim > 8 || (t[k].ndim && !t[k].shape)) {
            free(h.p);
            return err_set(e, OODSEG_E_ARG, "safetensors_write %s: tensor %d has a bad name or shape", path, k);
        }
        uint64_t numel = 1;
        for (int d = 0; d < t[k].ndim; d++) numel *= t[k].shape[d] > 0 ? (uint64_t)t[k].shape[d] : 0;
        if (numel && !t[k].data) {
            free(h.p);
            return err_set(e, OODSEG_E_ARG, "safetensors_write %s: tensor '%s' has no data", path, t[k].name);
        }
        if (n_meta || k) sb_str(&h, ",");
        sb_jstr(&h, t[k].name);
        sb_str(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t[k].ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)t[k].shape[d]);
            sb_str(&h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + numel * 4));
        sb_str(&h, num);
        off += numel * 4;
    }
    sb_str(&h, "}");
    while (!h.oom && h.n % 8) sb_str(&h, " ");
    if (h.oom) { free(h.p); return err_set(e, OODSEG_E_NOMEM, "safetensors_write %s: out of memory for the header", path); }

    outfile of;
    if (outfile_open(&of, path, e)) { free(h.p); return e->code; }
    FILE *f = of.f;
    int ok = 1;
    unsigned char lenb[8];
    for (int k = 0; k < 8; k++) lenb[k] = (unsigned char)((uint64_t)h.n >> (8 * k));
    if (ok) ok = fwrite(lenb, 1, 8, f) == 8 && fwrite(h.p, 1, h.n, f) == h.n;
    for (int k = 0; ok && k < n; k++) {
        size_t numel = 1;
        for (int d = 0; d < t[k].ndim; d++) numel *= t[k].shape[d] > 0 ? (size_t)t[k].shape[d] : 0;
        if (numel) ok = fwrite(t[k].data, 4, numel, f) == numel;
    }
    free(h.p);
    if (outfile_commit(&of, ok, e)) return e->code;
    return OODSEG_OK;
}
