// PyTorch checkpoints: the zip container (torch >= 1.6) and the legacy stream (torch < 1.6).
// Both are a pickle (see pickle.c) whose tensors refer to storages by key; the containers differ
// only in where a key's bytes are. Everything is checked against the file size before use.
#include "pickle.h"
#include "../core/text.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct stor { const unsigned char *p; uint64_t nbytes; char where[600]; } stor;

static uint64_t le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; k--) v = (v << 8) | p[k];
    return v;
}

typedef int (*resolve_fn)(void *ctx, const pk_value *storage, stor *out, err *e);

// Adds one tensor view: bounds-checked against its storage, used in place when contiguous.
static int emit_tensor(ckpt *ck, const char *name, const pk_value *t, const stor *s, err *e) {
    dtype dt = t->storage->dt;
    size_t es = dtype_size(dt);
    uint64_t cap = s->nbytes / es;
    int64_t numel = 1, last = t->offset;
    for (int d = 0; d < t->ndim; d++) {
        if (t->size[d] && numel > INT64_MAX / 16 / t->size[d]) numel = -1;
        if (numel < 0) break;
        numel *= t->size[d];
    }
    int overflow = numel < 0;
    for (int d = 0; !overflow && numel > 0 && d < t->ndim; d++) {
        if (t->stride[d] && (t->size[d] - 1) > (INT64_MAX / 16 - last) / t->stride[d]) overflow = 1;
        else last += (t->size[d] - 1) * t->stride[d];
    }
    if (overflow || (numel > 0 && (uint64_t)last >= cap)) {
        char sz[200], sd[200];
        fmt_shape(sz, sizeof sz, t->ndim, t->size);
        fmt_shape(sd, sizeof sd, t->ndim, t->stride);
        return err_set(e, OODSEG_E_FORMAT,
                       "%s: tensor '%s' (size %s, stride %s, storage offset %lld) needs storage elements up to "
                       "%lld but storage '%s' (%s) holds only %llu %s elements: truncated or corrupt file",
                       ck->path, name, sz, sd, (long long)t->offset, overflow ? -1LL : (long long)last,
                       t->storage->s, s->where, (unsigned long long)cap, dtype_name(dt));
    }
    if (numel == 0) return ck_push(ck, name, dt, t->ndim, t->size, NULL, e);
    int contig = 1;
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->size[d] != 1 && t->stride[d] != expect) contig = 0;
        expect *= t->size[d];
    }
    const unsigned char *src = s->p + (size_t)t->offset * es;
    if (contig) return ck_push(ck, name, dt, t->ndim, t->size, src, e);
    // Stride-0 views can describe far more elements than the file holds; copying those is a
    // memory bomb, not a checkpoint.
    if ((uint64_t)numel > 8 * cap + (16u << 20))
        return err_set(e, OODSEG_E_FORMAT, "%s: tensor '%s' is a view of %lld elements over a storage of %llu: refusing "
                       "to expand it", ck->path, name, (long long)numel, (unsigned long long)cap);
    unsigned char *o = ck_own(ck, (size_t)numel * es, e);
    if (!o) return OODSEG_E_NOMEM;
    int64_t idx[8] = { 0 };
    for (int64_t k = 0; k < numel; k++) {
        int64_t off = 0;
        for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
        memcpy(o + (size_t)k * es, src + (size_t)off * es, es);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->size[d]) break;
            idx[d] = 0;
        }
    }
    return ck_push(ck, name, dt, t->ndim, t->size, o, e);
}

static int emit_state_dict(ckpt *ck, pk_vm *vm, const pk_value *top, resolve_fn resolve, void *ctx, err *e) {
    const pk_value *sd = pk_find_state_dict(top);
    if (!sd) {
        if (top && top->kind == PK_OPAQUE)
            return err_set(e, OODSEG_E_FORMAT, "%s: the saved object is an object made by '%s.%s', not a dict of tensors: "
                           "a whole pickled model? Save model.state_dict() instead", ck->path, top->mod, top->name);
        return err_set(e, OODSEG_E_FORMAT, "%s: the saved object is a %s, not a dict of tensors (state dict)",
                       ck->path, pk_kind_name(top ? top->kind : PK_NONE));
    }
    stor *cache = calloc((size_t)(vm->n_storages ? vm->n_storages : 1), sizeof *cache);
    char *done = calloc((size_t)(vm->n_storages ? vm->n_storages : 1), 1);
    if (!cache || !done) { free(cache); free(done); return err_set(e, OODSEG_E_NOMEM, "%s: out of memory", ck->path); }
    int rc = OODSEG_OK;
    for (int k = 0; k < sd->n && !rc; k++) {
        const pk_value *key = sd->keys[k], *t = sd->items[k];
        if (key->kind != PK_STR || t->kind != PK_TENSOR) continue;
        int si = (int)t->storage->i;
        if (si < 0 || si >= vm->n_storages) { rc = err_set(e, OODSEG_E_INTERNAL, "%s: bad storage index", ck->path); break; }
        if (!done[si]) {
            rc = resolve(ctx, t->storage, &cache[si], e);
            if (rc) break;
            done[si] = 1;
        }
        rc = emit_tensor(ck, key->s, t, &cache[si], e);
    }
    free(cache);
    free(done);
    if (!rc && ck->n == 0)
        rc = err_set(e, OODSEG_E_FORMAT, "%s: no tensors found (the saved object is a %s with %d entries, none a tensor)",
                     ck->path, pk_kind_name(sd->kind), sd->n);
    return rc;
}

// ---------------------------------------------------------------- zip

typedef struct zent { const char *name; size_t nlen; uint64_t data, size; unsigned method; } zent;
typedef struct zip { ckpt *ck; const unsigned char *b; size_t len; zent *ent; int n; char root[256]; size_t rootlen; } zip;

static const zent *zip_find(const zip *z, const char *rel) {
    size_t rl = strlen(rel);
    for (int k = 0; k < z->n; k++) {
        const zent *t = &z->ent[k];
        if (t->nlen == z->rootlen + rl && memcmp(t->name, z->root, z->rootlen) == 0
            && memcmp(t->name + z->rootlen, rel, rl) == 0)
            return t;
    }
    return NULL;
}

static int zip_resolve(void *ctx, const pk_value *s, stor *out, err *e) {
    zip *z = ctx;
    char rel[300];
    snprintf(rel, sizeof rel, "data/%s", s->s);
    const zent *t = zip_find(z, rel);
    snprintf(out->where, sizeof out->where, "zip entry '%s%s'", z->root, rel);
    if (!t)
        return err_set(e, OODSEG_E_FORMAT, "%s: storage '%s' has no zip entry '%s%s'", z->ck->path, s->s, z->root, rel);
    if (t->method != 0)
        return err_set(e, OODSEG_E_FORMAT, "%s: zip entry '%s%s' is compressed (method %u); PyTorch stores entries "
                       "uncompressed: re-save it with torch.save", z->ck->path, z->root, rel, t->method);
    out->p = z->b + t->data;
    out->nbytes = t->size;
    return 0;
}

// The central directory's place and entry count, from the end record (zip64 when saturated).
static int zip_end_record(zip *z, uint64_t *count, uint64_t *cdoff, uint64_t *cdsize, err *e) {
    const unsigned char *b = z->b;
    size_t len = z->len;
    const char *p = z->ck->path;
    if (len < 22) return err_set(e, OODSEG_E_FORMAT, "%s: truncated zip file (%zu bytes)", p, len);
    size_t eocd = (size_t)-1, lo = len > 22 + 65535 ? len - 22 - 65535 : 0;
    for (size_t k = len - 22 + 1; k-- > lo;)
        if (b[k] == 'P' && b[k + 1] == 'K' && b[k + 2] == 5 && b[k + 3] == 6) { eocd = k; break; }
    if (eocd == (size_t)-1)
        return err_set(e, OODSEG_E_FORMAT, "%s: no zip end-of-central-directory record: the file is truncated or not a zip", p);
    *count = le(b + eocd + 10, 2);
    *cdsize = le(b + eocd + 12, 4);
    *cdoff = le(b + eocd + 16, 4);
    if (*count == 0xFFFF || *cdsize == 0xFFFFFFFFu || *cdoff == 0xFFFFFFFFu) {
        // zip64: a locator just before the record points at the 64-bit record.
        if (eocd < 20 || memcmp(b + eocd - 20, "PK\x06\x07", 4) != 0)
            return err_set(e, OODSEG_E_FORMAT, "%s: zip64 locator missing before byte %zu", p, eocd);
        uint64_t z64 = le(b + eocd - 20 + 8, 8);
        // The 64-bit record is 56 bytes; a file shorter than that cannot hold it (and `len - 56`
        // would wrap around).
        if (len < 56 || z64 > len - 56 || memcmp(b + z64, "PK\x06\x06", 4) != 0)
            return err_set(e, OODSEG_E_FORMAT, "%s: zip64 end record at byte %llu is missing or past the end: a truncated or corrupt checkpoint; download it again", p, (unsigned long long)z64);
        *count = le(b + z64 + 32, 8);
        *cdsize = le(b + z64 + 40, 8);
        *cdoff = le(b + z64 + 48, 8);
    }
    if (*cdoff > len || *cdsize > len - *cdoff)
        return err_set(e, OODSEG_E_FORMAT, "%s: zip central directory (byte %llu, %llu bytes) lies past the end of the "
                       "file (%zu bytes): truncated?", p, (unsigned long long)*cdoff, (unsigned long long)*cdsize, len);
    if (*count > *cdsize / 46) return err_set(e, OODSEG_E_FORMAT, "%s: zip claims %llu entries in a %llu-byte directory", p,
                                              (unsigned long long)*count, (unsigned long long)*cdsize);
    return 0;
}

// Central directory entry k at byte *pos (the directory ends at cdend): checked against the file
// and appended to z->ent; *pos moves to the next entry.
static int zip_entry(zip *z, uint64_t k, uint64_t *pos, uint64_t cdend, err *e) {
    const unsigned char *b = z->b;
    size_t len = z->len;
    const char *p = z->ck->path;
    if (cdend - *pos < 46 || memcmp(b + *pos, "PK\x01\x02", 4) != 0)
        return err_set(e, OODSEG_E_FORMAT, "%s: bad zip central directory entry %llu at byte %llu", p,
                       (unsigned long long)k, (unsigned long long)*pos);
    const unsigned char *c = b + *pos;
    unsigned method = (unsigned)le(c + 10, 2), flags = (unsigned)le(c + 8, 2);
    uint64_t csize = le(c + 20, 4), usize = le(c + 24, 4), nlen = le(c + 28, 2), xlen = le(c + 30, 2),
             clen = le(c + 32, 2), lho = le(c + 42, 4);
    if (cdend - *pos - 46 < nlen + xlen + clen)
        return err_set(e, OODSEG_E_FORMAT, "%s: zip central directory entry %llu at byte %llu runs past the directory", p,
                       (unsigned long long)k, (unsigned long long)*pos);
    const char *name = (const char *)c + 46;
    // zip64 extra field: the 64-bit values of whichever fields are saturated, in this order.
    for (uint64_t x = 0; x + 4 <= xlen;) {
        const unsigned char *f = c + 46 + nlen + x;
        uint64_t id = le(f, 2), fl = le(f + 2, 2), q = 4;
        if (x + 4 + fl > xlen) break;
        if (id == 1) {
            if (usize == 0xFFFFFFFFu && q + 8 <= 4 + fl) { usize = le(f + q, 8); q += 8; }
            if (csize == 0xFFFFFFFFu && q + 8 <= 4 + fl) { csize = le(f + q, 8); q += 8; }
            if (lho == 0xFFFFFFFFu && q + 8 <= 4 + fl) { lho = le(f + q, 8); q += 8; }
        }
        x += 4 + fl;
    }
    int nl = nlen > 1000 ? 1000 : (int)nlen;
    if (lho > len || len - lho < 30 || memcmp(b + lho, "PK\x03\x04", 4) != 0)
        return err_set(e, OODSEG_E_FORMAT, "%s: zip entry '%.*s' has its local header at byte %llu, %s", p, nl, name,
                       (unsigned long long)lho, lho > len || len - lho < 30 ? "past the end of the file" : "but no header is there");
    if (flags & 1)
        return err_set(e, OODSEG_E_FORMAT, "%s: zip entry '%.*s' is encrypted", p, nl, name);
    uint64_t data = lho + 30 + le(b + lho + 26, 2) + le(b + lho + 28, 2);
    if (method == 0 && csize != usize)
        return err_set(e, OODSEG_E_FORMAT, "%s: stored zip entry '%.*s' has different sizes (%llu, %llu)", p, nl, name,
                       (unsigned long long)csize, (unsigned long long)usize);
    if (data > len || csize > len - data)
        return err_set(e, OODSEG_E_FORMAT, "%s: zip entry '%.*s' (data at byte %llu, %llu bytes) extends past the end of "
                       "the file (%zu bytes): truncated?", p, nl, name, (unsigned long long)data,
                       (unsigned long long)csize, len);
    z->ent[z->n++] = (zent){ name, (size_t)nlen, data, method == 0 ? usize : csize, method };
    *pos += 46 + nlen + xlen + clen;
    return 0;
}

static int zip_dir(zip *z, err *e) {
    const char *p = z->ck->path;
    uint64_t count = 0, cdoff = 0, cdsize = 0;
    int rc = zip_end_record(z, &count, &cdoff, &cdsize, e);
    if (rc) return rc;
    z->ent = calloc((size_t)(count ? count : 1), sizeof *z->ent);
    if (!z->ent) return err_set(e, OODSEG_E_NOMEM, "%s: out of memory for the zip directory", p);
    uint64_t pos = cdoff;
    for (uint64_t k = 0; k < count; k++)
        if ((rc = zip_entry(z, k, &pos, cdoff + cdsize, e))) return rc;
    if (z->n == 0) return err_set(e, OODSEG_E_FORMAT, "%s: the zip file has no entries", p);
    const char *slash = memchr(z->ent[0].name, '/', z->ent[0].nlen);
    if (!slash || (size_t)(slash - z->ent[0].name) + 1 >= sizeof z->root)
        return err_set(e, OODSEG_E_FORMAT, "%s: the first zip entry '%.*s' is not inside a folder, so this is not a "
                       "PyTorch zip checkpoint", p, (int)(z->ent[0].nlen > 200 ? 200 : z->ent[0].nlen), z->ent[0].name);
    z->rootlen = (size_t)(slash - z->ent[0].name) + 1;
    memcpy(z->root, z->ent[0].name, z->rootlen);
    z->root[z->rootlen] = 0;
    return 0;
}

int pth_zip_load(ckpt *ck, const unsigned char *buf, size_t len, err *e) {
    zip z = { ck, buf, len, NULL, 0, "", 0 };
    pk_vm vm;
    pk_init_limit(&vm, ck->path, len, ck_pickle_room(ck));
    int rc = zip_dir(&z, e);
    const zent *pk = NULL;
    if (!rc && !(pk = zip_find(&z, "data.pkl")))
        rc = err_set(e, OODSEG_E_FORMAT, "%s: no '%sdata.pkl' entry: not a PyTorch zip checkpoint", ck->path, z.root);
    if (!rc && pk->method != 0)
        rc = err_set(e, OODSEG_E_FORMAT, "%s: zip entry '%sdata.pkl' is compressed (method %u); PyTorch stores "
                     "entries uncompressed", ck->path, z.root, pk->method);
    const zent *bo = rc ? NULL : zip_find(&z, "byteorder");
    if (bo && !(bo->size == 6 && memcmp(buf + bo->data, "little", 6) == 0))
        rc = err_set(e, OODSEG_E_FORMAT, "%s: big-endian checkpoints (entry '%sbyteorder') are not supported", ck->path, z.root);
    if (!rc) {
        char where[300];
        snprintf(where, sizeof where, "in zip entry '%sdata.pkl'", z.root);
        pk_value *top;
        size_t end;
        // The pickle may not run past its entry, so give it the entry's end as the buffer length.
        rc = pk_run(&vm, buf, (size_t)(pk->data + pk->size), (size_t)pk->data, where, &top, &end, e);
        if (!rc) rc = emit_state_dict(ck, &vm, top, zip_resolve, &z, e);
    }
    pk_release(&vm);
    free(z.ent);
    return rc;
}

// ---------------------------------------------------------------- legacy

typedef struct legacy { ckpt *ck; stor *s; } legacy;

static int legacy_resolve(void *ctx, const pk_value *s, stor *out, err *e) {
    legacy *l = ctx;
    if (!l->s[s->i].p && l->s[s->i].nbytes == 0 && !l->s[s->i].where[0])
        return err_set(e, OODSEG_E_FORMAT, "%s: storage '%s' is not in the file's storage list", l->ck->path, s->s);
    *out = l->s[s->i];
    return 0;
}

int pth_legacy_load(ckpt *ck, const unsigned char *buf, size_t len, err *e) {
    static const unsigned char magic[10] = { 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19 };
    const char *p = ck->path;
    pk_vm vm;
    pk_init_limit(&vm, p, len, ck_pickle_room(ck));
    pk_value *v[5] = { 0 };
    static const char *const what[5] = { "1 (magic number)", "2 (protocol version)", "3 (system info)",
                                         "4 (the saved object)", "5 (storage keys)" };
    size_t pos = 0;
    int rc = 0;
    stor *st = NULL;
    for (int k = 0; k < 5 && !rc; k++) {
        rc = pk_run(&vm, buf, len, pos, what[k], &v[k], &pos, e);
        if (rc) break;
        if (k == 0 && !(v[0]->kind == PK_BIGINT && v[0]->slen == 10 && memcmp(v[0]->s, magic, 10) == 0))
            rc = err_set(e, OODSEG_E_FORMAT, "%s: bad magic number: a pickle, but not a legacy PyTorch checkpoint", p);
        if (k == 1 && !(v[1]->kind == PK_INT && v[1]->i == 1001))
            rc = err_set(e, OODSEG_E_FORMAT, "%s: unsupported legacy protocol version %lld (expected 1001)", p,
                         v[1]->kind == PK_INT ? (long long)v[1]->i : -1LL);
        if (k == 2) {
            const pk_value *si = v[2];
            for (int i = 0; si->kind == PK_DICT && i < si->n; i++)
                if (si->keys[i]->kind == PK_STR && strcmp(si->keys[i]->s, "little_endian") == 0
                    && si->items[i]->kind == PK_BOOL && si->items[i]->i == 0)
                    rc = err_set(e, OODSEG_E_FORMAT, "%s: big-endian checkpoints are not supported", p);
        }
        if (k == 4 && v[4]->kind != PK_LIST)
            rc = err_set(e, OODSEG_E_FORMAT, "%s: the storage key list is a %s, not a list", p, pk_kind_name(v[4]->kind));
    }
    if (!rc) {
        st = calloc((size_t)(vm.n_storages ? vm.n_storages : 1), sizeof *st);
        if (!st) rc = err_set(e, OODSEG_E_NOMEM, "%s: out of memory", p);
    }
    // Raw storages follow the pickles in key-list order: int64 element count, then the elements.
    for (int k = 0; !rc && k < v[4]->n; k++) {
        const pk_value *key = v[4]->items[k];
        if (key->kind != PK_STR) { rc = err_set(e, OODSEG_E_FORMAT, "%s: storage key %d is not a string", p, k); break; }
        pk_value *s = NULL;
        for (int i = 0; i < vm.n_storages && !s; i++)
            if (strcmp(vm.storages[i]->s, key->s) == 0) s = vm.storages[i];
        if (!s) { rc = err_set(e, OODSEG_E_FORMAT, "%s: storage '%s' is listed but no tensor uses it, so its element size is unknown", p, key->s); break; }
        if (len - pos < 8) {
            rc = err_set(e, OODSEG_E_FORMAT, "%s: truncated file: the size of storage '%s' (%d of %d) should be at byte %zu "
                         "but the file has %zu bytes", p, key->s, k + 1, v[4]->n, pos, len);
            break;
        }
        uint64_t cnt = le(buf + pos, 8), es = dtype_size(s->dt);
        pos += 8;
        if (cnt > (len - pos) / es) {
            rc = err_set(e, OODSEG_E_FORMAT, "%s: truncated file: storage '%s' (%d of %d) needs %llu x %llu bytes from byte %zu "
                         "but the file has %zu bytes", p, key->s, k + 1, v[4]->n, (unsigned long long)cnt,
                         (unsigned long long)es, pos, len);
            break;
        }
        stor *o = &st[s->i];
        o->p = buf + pos;
        o->nbytes = cnt * es;
        snprintf(o->where, sizeof o->where, "data at byte %zu", pos);
        pos += (size_t)(cnt * es);
    }
    if (!rc) {
        legacy l = { ck, st };
        rc = emit_state_dict(ck, &vm, v[3], legacy_resolve, &l, e);
    }
    free(st);
    pk_release(&vm);
    return rc;
}
