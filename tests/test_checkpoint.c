// Checkpoint readers (safetensors, PyTorch zip, legacy PyTorch), the pickle machine's refusals,
// and the JSON reader.
#include "test.h"
#include "../core/json.h"
#include "../io/checkpoint.h"
#include "../models/weights.h"
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// ---------------------------------------------------------------- helpers

static int write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

static unsigned char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)sz + 1);
    if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) { free(b); b = NULL; }
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static const char *tmp_path(const char *name) {
    static char ring[8][512];
    static int k;
    char *p = ring[k++ & 7];
    snprintf(p, 512, "%s/%s", t_tmpdir(), name);
    return p;
}

// A safetensors file from a header (padded here) and a data block.
static int write_st(const char *path, const char *header, const void *data, size_t dn) {
    size_t hl = strlen(header), pl = (hl + 7) / 8 * 8;
    unsigned char *b = calloc(1, 8 + pl + dn);
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)pl >> (8 * k));
    memcpy(b + 8, header, hl);
    memset(b + 8 + hl, ' ', pl - hl);
    if (dn) memcpy(b + 8 + pl, data, dn);
    int rc = write_file(path, b, 8 + pl + dn);
    free(b);
    return rc;
}

// Both checkpoints hold the same names in the same order with bit-identical data.
static void check_same(const ckpt *a, const ckpt *b) {
    CHECK(a->n == b->n, "%s has %d entries, %s has %d", a->path, a->n, b->path, b->n);
    int bad = 0;
    for (int k = 0; k < a->n && bad < 5; k++) {
        const ckpt_entry *x = &a->e[k];
        const ckpt_entry *y = ckpt_find(b, x->name);
        if (!y) { CHECK(y, "'%s' missing from %s", x->name, b->path); bad++; continue; }
        int same = x->ndim == y->ndim && x->numel == y->numel;
        for (int d = 0; same && d < x->ndim; d++) same = x->shape[d] == y->shape[d];
        if (!same) { CHECK(same, "'%s' differs in shape", x->name); bad++; continue; }
        if (x->f32) {
            int eq = y->f32 && memcmp(x->f32, y->f32, (size_t)x->numel * 4) == 0;
            if (!eq) { CHECK(eq, "'%s' differs in value", x->name); bad++; }
        } else {
            size_t es = dtype_size(x->src_dtype);
            int eq = y->raw && x->raw && x->src_dtype == y->src_dtype
                     && memcmp(x->raw, y->raw, (size_t)x->numel * es) == 0;
            if (!eq) { CHECK(eq, "'%s' (integer) differs", x->name); bad++; }
        }
    }
}

// ---------------------------------------------------------------- JSON

TEST(json_basic) {
    err e = { 0 };
    const char *t = " {\"a\": [1, -2.5e1, true, false, null], \"b\": {\"c\": \"x\\\"y\\\\z\\/\\n\\t\"},"
                    " \"big\": 12345678901234, \"u\": \"\\u00e9\\ud83d\\ude00\xc3\xa9\"} ";
    json *j = json_parse(t, strlen(t), "test", &e);
    REQUIRE(j, "%s", e.msg);
    CHECK(j->type == JSON_OBJECT && j->n == 4);
    const json *a = json_get(j, "a");
    REQUIRE(a && a->type == JSON_ARRAY && a->n == 5);
    CHECK(a->items[0].type == JSON_NUMBER && a->items[0].i64 == 1);
    CHECK(a->items[1].num == -25.0);
    CHECK(a->items[2].type == JSON_BOOL && a->items[2].num == 1);
    CHECK(a->items[3].type == JSON_BOOL && a->items[3].num == 0);
    CHECK(a->items[4].type == JSON_NULL);
    const json *c = json_get(json_get(j, "b"), "c");
    REQUIRE(c && c->type == JSON_STRING);
    CHECK(strcmp(c->str, "x\"y\\z/\n\t") == 0, "got '%s'", c->str);
    CHECK(json_get(j, "big")->i64 == 12345678901234LL);
    CHECK(strcmp(json_get(j, "u")->str, "\xc3\xa9\xf0\x9f\x98\x80\xc3\xa9") == 0);
    CHECK(json_get(j, "zz") == NULL);
    CHECK(json_get(a, "a") == NULL);
    json_free(j);
}

TEST(json_nesting_and_empty) {
    err e = { 0 };
    char deep[1200];
    int d = 200;
    for (int k = 0; k < d; k++) deep[k] = '[';
    for (int k = 0; k < d; k++) deep[d + k] = ']';
    json *j = json_parse(deep, 2 * (size_t)d, "deep", &e);
    REQUIRE(j, "%s", e.msg);
    json_free(j);
    for (int k = 0; k < 600; k++) deep[k] = '[';
    for (int k = 0; k < 600; k++) deep[600 + k] = ']';
    j = json_parse(deep, 1200, "deeper", &e);
    CHECK(!j && e.code == OODSEG_E_FORMAT && strstr(e.msg, "too deep"), "%s", e.msg);
    j = json_parse("{}", 2, "t", &e);
    REQUIRE(j && j->type == JSON_OBJECT && j->n == 0);
    json_free(j);
    j = json_parse("[[],{},\"\"]", 10, "t", &e);
    REQUIRE(j && j->n == 3);
    json_free(j);
}

TEST(json_errors) {
    static const struct { const char *t; size_t off; } bad[] = {
        { "", 0 }, { "{", 1 }, { "{\"a\" 1}", 5 }, { "[1,]", 3 }, { "[1 2]", 3 }, { "\"abc", 0 },
        { "\"a\\qb\"", 2 }, { "01", 1 }, { "1.", 2 }, { "tru", 0 }, { "{\"a\":1}x", 7 },
        { "\"\\ud800\"", 7 }, { "\"a\x01\"", 2 }, { "\"\xff\"", 1 }, { "-", 1 }, { "{1:2}", 1 },
        { "\"\\u12g4\"", 3 },
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        err e = { 0 };
        json *j = json_parse(bad[k].t, strlen(bad[k].t), "cfg.json", &e);
        CHECK(!j, "'%s' parsed", bad[k].t);
        json_free(j);
        char want[64];
        snprintf(want, sizeof want, "at byte %zu", bad[k].off);
        CHECK(e.code == OODSEG_E_FORMAT && strstr(e.msg, "cfg.json") && strstr(e.msg, want),
              "'%s': %s (want %s)", bad[k].t, e.msg, want);
    }
}

// ---------------------------------------------------------------- safetensors

TEST(safetensors_tiny) {
    static const char *names[] = { "golden/tiny-t/model.safetensors", "golden/tiny-l/model.safetensors" };
    static const int want[] = { 217, 209 };
    for (int v = 0; v < 2; v++) {
        ASSET_OR_SKIP(p, names[v]);
        err e = { 0 };
        ckpt *ck;
        REQUIRE(ckpt_open(p, &ck, &e) == OODSEG_OK, "%s", e.msg);
        CHECK(ck->n == want[v], "%d keys", ck->n);
        CHECK(strcmp(ck->format, "safetensors") == 0);
        const ckpt_entry *c = ckpt_find(ck, "backbone.patch_embed.conv1.weight");
        REQUIRE(c && c->ndim == 4 && c->src_dtype == DT_F32 && c->f32);
        const ckpt_entry *nb = ckpt_find(ck, "decode_head.psp_modules.0.1.bn.num_batches_tracked");
        REQUIRE(nb && nb->ndim == 0 && nb->src_dtype == DT_I64 && nb->raw && !nb->f32);
        int64_t nbt;
        memcpy(&nbt, nb->raw, 8);
        CHECK(nbt == 160000, "%lld", (long long)nbt);
        int64_t shape[4] = { c->shape[0], c->shape[1], c->shape[2], c->shape[3] };
        CHECK(ckpt_get(ck, c->name, 4, shape, &e) == c->f32);
        CHECK(c->used);
        shape[0] = 19;
        CHECK(ckpt_get(ck, c->name, 4, shape, &e) == NULL);
        CHECK(e.code == OODSEG_E_MODEL && strstr(e.msg, "key 'backbone.patch_embed.conv1.weight' has shape [8, 3, 3, 3] but the architecture needs [19, 3, 3, 3]"),
              "%s", e.msg);
        CHECK(ckpt_get(ck, "nope.weight", 2, (int64_t[]){ 3, 4 }, &e) == NULL);
        CHECK(e.code == OODSEG_E_MODEL && strstr(e.msg, "missing key 'nope.weight'"), "%s", e.msg);
        CHECK(ckpt_get(ck, nb->name, 0, NULL, &e) == NULL && e.code == OODSEG_E_MODEL, "integer tensor as float");
        const char *ign[] = { "num_batches_tracked", "auxiliary_head." };
        const ckpt_entry *u = ckpt_first_unused(ck, ign, 2);
        CHECK(u && strcmp(u->name, c->name) != 0 && !strstr(u->name, "auxiliary_head."));
        CHECK(ckpt_num_float_params(ck) > 10000);
        ckpt_close(ck);
    }
}

TEST(safetensors_roundtrip_and_metadata) {
    float a[6] = { 1, -2, 3.5f, 1e-30f, -0.0f, 7 }, b[1] = { 42 };
    int64_t sa[2] = { 2, 3 };
    st_tensor t[3] = { { "layer.\"odd\\name", 2, sa, a }, { "scalar", 0, NULL, b }, { "empty", 1, (int64_t[]){ 0 }, NULL } };
    const char *meta[] = { "format", "pt", "note", "with \"quotes\"\n" };
    err e = { 0 };
    const char *p = tmp_path("rt.safetensors");
    REQUIRE(safetensors_write(p, t, 3, meta, 2, &e) == OODSEG_OK, "%s", e.msg);
    size_t n;
    unsigned char *raw = read_file(p, &n);
    REQUIRE(raw);
    uint64_t hl;
    memcpy(&hl, raw, 8);
    CHECK(hl % 8 == 0 && (raw[8 + hl - 1] == ' ' || raw[8 + hl - 1] == '}'), "header padding");
    CHECK(n == 8 + hl + 28, "size %zu", n);
    json *h = json_parse((const char *)raw + 8, hl, "written header", &e);
    REQUIRE(h, "%s", e.msg);
    const json *m = json_get(h, "__metadata__");
    CHECK(m && m->n == 2 && strcmp(json_get(m, "note")->str, "with \"quotes\"\n") == 0
          && strcmp(json_get(m, "format")->str, "pt") == 0);
    json_free(h);
    free(raw);
    ckpt *ck;
    REQUIRE(ckpt_open(p, &ck, &e) == OODSEG_OK, "%s", e.msg);
    REQUIRE(ck->n == 3);
    CHECK(strcmp(ck->e[0].name, "layer.\"odd\\name") == 0);
    CHECK(memcmp(ck->e[0].f32, a, sizeof a) == 0);
    CHECK(ck->e[1].ndim == 0 && ck->e[1].numel == 1 && ck->e[1].f32[0] == 42);
    CHECK(ck->e[2].numel == 0);
    ckpt_close(ck);
    // Writing into a missing folder fails cleanly.
    CHECK(safetensors_write("/nonexistent-dir/x.safetensors", t, 1, NULL, 0, &e) == OODSEG_E_IO, "%s", e.msg);
}

TEST(safetensors_dtypes) {
    // F16: 1.0, -2.0, 65504 (max), 2^-24 (smallest subnormal), inf; BF16: 1.0, -3.0; F64: pi, -1e-3.
    uint16_t h[5] = { 0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00 };
    uint16_t bf[2] = { 0x3F80, 0xC040 };
    double d[2] = { 3.14159265358979, -1e-3 };
    int32_t i32[2] = { -7, 9 };
    uint8_t u8[3] = { 0, 200, 255 };
    unsigned char data[64];
    size_t o = 0;
    memcpy(data + o, d, 16); o += 16;
    memcpy(data + o, h, 10); o += 10;
    memcpy(data + o, bf, 4); o += 4;
    memcpy(data + o, i32, 8); o += 8;
    memcpy(data + o, u8, 3); o += 3;
    const char *hdr = "{\"__metadata__\":{\"a\":\"b\"},"
                      "\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]},"
                      "\"h\":{\"dtype\":\"F16\",\"shape\":[5],\"data_offsets\":[16,26]},"
                      "\"bf\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[26,30]},"
                      "\"i\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[30,38]},"
                      "\"u\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[38,41]}}";
    const char *p = tmp_path("dtypes.safetensors");
    REQUIRE(write_st(p, hdr, data, o) == 0);
    err e = { 0 };
    ckpt *ck;
    REQUIRE(ckpt_open(p, &ck, &e) == OODSEG_OK, "%s", e.msg);
    REQUIRE(ck->n == 5);
    const ckpt_entry *x = ckpt_find(ck, "d");
    CHECK(x->src_dtype == DT_F64 && x->f32[0] == (float)d[0] && x->f32[1] == (float)d[1]);
    x = ckpt_find(ck, "h");
    CHECK(x->src_dtype == DT_F16 && x->f32[0] == 1.0f && x->f32[1] == -2.0f && x->f32[2] == 65504.0f
          && x->f32[3] == ldexpf(1, -24) && isinf(x->f32[4]));
    x = ckpt_find(ck, "bf");
    CHECK(x->src_dtype == DT_BF16 && x->f32[0] == 1.0f && x->f32[1] == -3.0f);
    x = ckpt_find(ck, "i");
    REQUIRE(x->raw && !x->f32);
    int32_t iv[2];
    memcpy(iv, x->raw, 8);
    CHECK(iv[0] == -7 && iv[1] == 9);
    x = ckpt_find(ck, "u");
    CHECK(x->raw && ((const uint8_t *)x->raw)[1] == 200);
    CHECK(ckpt_num_float_params(ck) == 9);
    CHECK(ckpt_get(ck, "h", 1, (int64_t[]){ 5 }, &e) != NULL, "%s", e.msg);
    ckpt_close(ck);
}

TEST(safetensors_bad) {
    float z[4] = { 0 };
    static const struct { const char *hdr; size_t dn; const char *msg; } bad[] = {
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,20]}}", 16, "past the end" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,12]}}", 16, "need 16 bytes" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,4]}}", 16, "bad data_offsets" },
        { "{\"a\":{\"dtype\":\"Q7\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, "unsupported dtype 'Q7'" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", 16, "bad shape" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[4]}}", 16, "data_offsets" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]", 16, "bad JSON at byte" },
        { "[1,2]", 0, "not a JSON object" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
          "\"data_offsets\":[8,16]}}", 16, "tensors 'a' (data_offsets [0, 16]) and 'b' ([8, 16]) overlap" },
        { "{\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[2,6]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
          "\"data_offsets\":[0,4]}}", 16, "tensors 'a' (data_offsets [0, 4]) and 'b' ([2, 6]) overlap" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
          "\"data_offsets\":[0,8]}}", 16, "'a' (data_offsets [0, 8]) and 'b' ([0, 8]) overlap" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
          "\"data_offsets\":[8,16]}}", 16, "names 'a' twice" },
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        const char *p = tmp_path("bad.safetensors");
        REQUIRE(write_st(p, bad[k].hdr, z, bad[k].dn) == 0);
        err e = { 0 };
        ckpt *ck = NULL;
        int rc = ckpt_open(p, &ck, &e);
        CHECK(rc == OODSEG_E_FORMAT && !ck && strstr(e.msg, "bad.safetensors") && strstr(e.msg, bad[k].msg),
              "case %zu: rc %d: %s", k, rc, e.msg);
        ckpt_close(ck);
    }
    // Adjacent tensors, and empty ones anywhere, share no byte: accepted.
    err e = { 0 };
    ckpt *ck = NULL;
    const char *ok = tmp_path("ok.safetensors");
    REQUIRE(write_st(ok, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"e\":{\"dtype\":\"F32\","
                     "\"shape\":[0],\"data_offsets\":[4,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                     z, 16) == 0);
    CHECK(ckpt_open(ok, &ck, &e) == OODSEG_OK && ck->n == 3, "%s", e.msg);
    ckpt_close(ck);
    ck = NULL;
    // Missing file, garbage, empty file, header length past EOF.
    CHECK(ckpt_open(tmp_path("does-not-exist.pth"), &ck, &e) == OODSEG_E_IO && strstr(e.msg, "does-not-exist.pth"), "%s", e.msg);
    const char *g = tmp_path("garbage.bin");
    write_file(g, "hello world, not a model at all", 31);
    CHECK(ckpt_open(g, &ck, &e) == OODSEG_E_FORMAT && strstr(e.msg, "garbage.bin") && strstr(e.msg, "magic"), "%s", e.msg);
    write_file(g, "", 0);
    CHECK(ckpt_open(g, &ck, &e) == OODSEG_E_FORMAT && strstr(e.msg, "empty"), "%s", e.msg);
    unsigned char hl[12] = { 0x40, 0, 0, 0, 0, 0, 0, 0, '{', '"', 'a', '"' };
    write_file(g, hl, sizeof hl);
    CHECK(ckpt_open(g, &ck, &e) == OODSEG_E_FORMAT && strstr(e.msg, "truncated"), "%s", e.msg);
    CHECK(ck == NULL);
}


// ---------------------------------------------------------------- PyTorch files

static ckpt *open_or_fail(const char *p) {
    err e = { 0 };
    ckpt *ck = NULL;
    if (ckpt_open(p, &ck, &e) != OODSEG_OK) fprintf(stderr, "  open %s: %s\n", p, e.msg);
    return ck;
}

TEST(pth_tiny_same_as_safetensors) {
    static const char *v[] = { "tiny-t", "tiny-l" };
    static const int want[] = { 217, 209 };
    for (int k = 0; k < 2; k++) {
        char rel[3][128];
        snprintf(rel[0], 128, "golden/%s/model.safetensors", v[k]);
        snprintf(rel[1], 128, "golden/%s/model.pth", v[k]);
        snprintf(rel[2], 128, "golden/%s/model-legacy.pth", v[k]);
        ASSET_OR_SKIP(ps, rel[0]);
        ASSET_OR_SKIP(pz, rel[1]);
        ASSET_OR_SKIP(pl, rel[2]);
        ckpt *s = open_or_fail(ps), *z = open_or_fail(pz), *l = open_or_fail(pl);
        CHECK(s && z && l);
        if (s && z && l) {
            CHECK(strcmp(z->format, "torch-zip") == 0 && strcmp(l->format, "torch-legacy") == 0);
            CHECK(s->n == want[k] && z->n == want[k] && l->n == want[k], "%d %d %d", s->n, z->n, l->n);
            check_same(s, z);
            check_same(s, l);
            check_same(z, s);
            // Same order as the state dict.
            for (int i = 0; i < s->n; i++) {
                if (strcmp(s->e[i].name, z->e[i].name) != 0 || strcmp(s->e[i].name, l->e[i].name) != 0) {
                    CHECK(0, "entry %d: %s / %s / %s", i, s->e[i].name, z->e[i].name, l->e[i].name);
                    break;
                }
            }
            // safetensors and torch zip F32 data are aligned, so every F32 tensor is used in place.
            // (An I64 scalar after an odd number of floats in safetensors is not 8-aligned: copied.)
            int unmapped = 0;
            for (int i = 0; i < s->n; i++) {
                if (s->e[i].f32) unmapped += !ckpt_entry_is_mapped(s, &s->e[i]);
                unmapped += !ckpt_entry_is_mapped(z, &z->e[i]);
            }
            CHECK(unmapped == 0, "%d tensors copied", unmapped);
            const ckpt_entry *nb = ckpt_find(z, "backbone.levels.0.downsample.norm.1.weight");
            CHECK(nb && nb->src_dtype == DT_F32);
            CHECK(ckpt_num_float_params(s) == ckpt_num_float_params(z));
        }
        ckpt_close(s);
        ckpt_close(z);
        ckpt_close(l);
    }
}

// Every .pth under models/ (the ESPNet and ESPNetv2 releases), found by walking the folder so a
// file added later is tested too.
static char found[64][1024];
static int n_found;

static int collect_pth(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)ftw;
    size_t l = strlen(path);
    if (flag == FTW_F && l > 4 && strcmp(path + l - 4, ".pth") == 0 && n_found < 64)
        snprintf(found[n_found++], sizeof found[0], "%s", path);
    return 0;
}

TEST(model_zoo_files_load) {
    ASSET_OR_SKIP(dir, "models");
    n_found = 0;
    REQUIRE(nftw(dir, collect_pth, 16, FTW_PHYS) == 0);
    CHECK(n_found >= 11, "only %d .pth files under %s", n_found, dir);
    int saw_q8 = 0, saw_v2 = 0;
    for (int k = 0; k < n_found; k++) {
        const char *p = found[k];
        ckpt *ck = open_or_fail(p);
        CHECK(ck && ck->n > 90 && strncmp(ck->format, "torch-", 6) == 0, "%s", p);
        if (ck && strstr(p, "decoder/espnet_p_2_q_8.pth")) {
            saw_q8 = 1;
            CHECK(ck->n == 189 && ckpt_num_float_params(ck) == 368341, "%d, %lld", ck->n, (long long)ckpt_num_float_params(ck));
        }
        if (ck && strstr(p, "espnetv2_s_2.0")) {
            saw_v2 = 1;
            CHECK(ck->n == 526, "%d", ck->n);
            const ckpt_entry *nb = NULL;
            for (int i = 0; i < ck->n && !nb; i++) if (strstr(ck->e[i].name, "num_batches_tracked")) nb = &ck->e[i];
            CHECK(nb && nb->ndim == 0 && nb->src_dtype == DT_I64 && nb->raw);
        }
        ckpt_close(ck);
    }
    CHECK(saw_q8 && saw_v2);
}

TEST(espnet_equals_golden) {
    static const char *const pairs[][2] = {
        { "models/espnet/pretrained/decoder/espnet_p_2_q_8.pth", "golden/espnet/espnet_city/model.safetensors" },
        { "models/espnet/pretrained/decoder/espnet_p_2_q_8_camvid.pth", "golden/espnet/espnet_camvid/model.safetensors" },
        { "models/espnetv2/espnetv2_s_2.0_city_1024x512.pth", "golden/espnet/espnetv2_city/model.safetensors" },
    };
    for (int k = 0; k < 3; k++) {
        ASSET_OR_SKIP(a, pairs[k][0]);
        ASSET_OR_SKIP(b, pairs[k][1]);
        ckpt *x = open_or_fail(a), *y = open_or_fail(b);
        CHECK(x && y);
        if (x && y) { check_same(x, y); check_same(y, x); }
        ckpt_close(x);
        ckpt_close(y);
    }
}


// ---------------------------------------------------------------- crafted PyTorch files

// Made offline with Python's pickle and stand-in torch classes (no torch needed): a mmseg-style
// {'meta': {'hook_msgs': {'best': np.float64(0.75)}, 'iter': 5}, 'state_dict': OrderedDict,
//  'optimizer': {'state': {0: {'m': tensor}}}} with state_dict entries
//   module.a: FloatStorage '0', offset 2, size (2, 3), stride (1, 2)  (a transposed view)
//   module.b: FloatStorage '0', offset 0, size (2,)                    (shares the storage)
//   module.h: HalfStorage '1', offset 1, size (3,)
//   module.s: LongStorage '2', size ()                                 (a scalar)
//   module.e: FloatStorage '0', size (0, 4)                            (empty)
//   module.note: 'not a tensor'
// pickled with protocols 2, 4 (FRAME, MEMOIZE, STACK_GLOBAL) and 5.
static const char PKL_P2[] =
    "\x80\x02}q\x00(X\x04\x00\x00\x00metaq\x01}q\x02(X\x09\x00\x00\x00hook_msgsq\x03}q\x04X\x04\x00\x00"
    "\x00" "bestq\x05" "cnumpy.core.multiarray\nscalar\nq\x06" "cnumpy\ndtype\nq\x07X\x02\x00\x00\x00"
    "f8q\x08\x89\x88\x87q\x09Rq\n(K\x03X\x01\x00\x00\x00<q\x0bNNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00"
    "tq\x0c" "bc_codecs\nencode\nq\x0dX\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00\xc3\xa8\?q\x0eX\x06\x00"
    "\x00\x00latin1q\x0f\x86q\x10Rq\x11\x86q\x12Rq\x13sX\x04\x00\x00\x00iterq\x14K\x05uX\n\x00\x00\x00"
    "state_dictq\x15" "ccollections\nOrderedDict\nq\x16)Rq\x17(X\x08\x00\x00\x00module.aq\x18" "ctorc"
    "h._utils\n_rebuild_tensor_v2\nq\x19((X\x07\x00\x00\x00storageq\x1a" "ctorch\nFloatStorage\nq\x1b"
    "X\x01\x00\x00\x00" "0q\x1cX\x03\x00\x00\x00" "cpuq\x1dK\x08tq\x1eQK\x02K\x02K\x03\x86q\x1fK\x01K"
    "\x02\x86q \x89h\x16)Rq!tq\"Rq#X\x08\x00\x00\x00module.bq$h\x19((h\x1ah\x1bh\x1ch\x1dK\x08tq%QK\x00"
    "K\x02\x85q&K\x01\x85q'\x89h\x16)Rq(tq)Rq*X\x08\x00\x00\x00module.hq+h\x19((h\x1a" "ctorch\nHalfS"
    "torage\nq,X\x01\x00\x00\x00" "1q-h\x1dK\x04tq.QK\x01K\x03\x85q/h'\x89h\x16)Rq0tq1Rq2X\x08\x00\x00"
    "\x00module.sq3h\x19((h\x1a" "ctorch\nLongStorage\nq4X\x01\x00\x00\x00" "2q5h\x1dK\x01tq6QK\x00))"
    "\x89h\x16)Rq7tq8Rq9X\x08\x00\x00\x00module.eq:h\x19((h\x1ah\x1bh\x1ch\x1dK\x08tq;QK\x00K\x00K\x04"
    "\x86q<K\x04K\x01\x86q=\x89h\x16)Rq>tq\?Rq@X\x0b\x00\x00\x00module.noteqAX\x0c\x00\x00\x00not a t"
    "ensorqBuX\x09\x00\x00\x00optimizerqC}qDX\x05\x00\x00\x00stateqE}qFK\x00}qGX\x01\x00\x00\x00mqHh\x19"
    "((h\x1ah\x1bh\x1ch\x1dK\x08tqIQK\x00K\x08\x85qJh'\x89h\x16)RqKtqLRqMsssu."
    ;
static const char PKL_P4[] =
    "\x80\x04\x95\x87\x02\x00\x00\x00\x00\x00\x00}\x94(\x8c\x04meta\x94}\x94(\x8c\x09hook_msgs\x94}\x94"
    "\x8c\x04" "best\x94\x8c\x15numpy.core.multiarray\x94\x8c\x06scalar\x94\x93\x94\x8c\x05numpy\x94\x8c"
    "\x05" "dtype\x94\x93\x94\x8c\x02" "f8\x94\x89\x88\x87\x94R\x94(K\x03\x8c\x01<\x94NNNJ\xff\xff\xff"
    "\xffJ\xff\xff\xff\xffK\x00t\x94" "bC\x08\x00\x00\x00\x00\x00\x00\xe8\?\x94\x86\x94R\x94s\x8c\x04"
    "iter\x94K\x05u\x8c\nstate_dict\x94\x8c\x0b" "collections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94"
    "(\x8c\x08module.a\x94\x8c\x0ctorch._utils\x94\x8c\x12_rebuild_tensor_v2\x94\x93\x94((\x8c\x07sto"
    "rage\x94\x8c\x05torch\x94\x8c\x0c" "FloatStorage\x94\x93\x94\x8c\x01" "0\x94\x8c\x03" "cpu\x94K\x08"
    "t\x94QK\x02K\x02K\x03\x86\x94K\x01K\x02\x86\x94\x89h\x18)R\x94t\x94R\x94\x8c\x08module.b\x94h\x1d"
    "((h\x1eh!h\"h#K\x08t\x94QK\x00K\x02\x85\x94K\x01\x85\x94\x89h\x18)R\x94t\x94R\x94\x8c\x08module."
    "h\x94h\x1d((h\x1eh\x1f\x8c\x0bHalfStorage\x94\x93\x94\x8c\x01" "1\x94h#K\x04t\x94QK\x01K\x03\x85"
    "\x94h-\x89h\x18)R\x94t\x94R\x94\x8c\x08module.s\x94h\x1d((h\x1eh\x1f\x8c\x0bLongStorage\x94\x93\x94"
    "\x8c\x01" "2\x94h#K\x01t\x94QK\x00))\x89h\x18)R\x94t\x94R\x94\x8c\x08module.e\x94h\x1d((h\x1eh!h"
    "\"h#K\x08t\x94QK\x00K\x00K\x04\x86\x94K\x04K\x01\x86\x94\x89h\x18)R\x94t\x94R\x94\x8c\x0bmodule."
    "note\x94\x8c\x0cnot a tensor\x94u\x8c\x09optimizer\x94}\x94\x8c\x05state\x94}\x94K\x00}\x94\x8c\x01"
    "m\x94h\x1d((h\x1eh!h\"h#K\x08t\x94QK\x00K\x08\x85\x94h-\x89h\x18)R\x94t\x94R\x94sssu."
    ;
// Protocol 5 writes the same bytes as 4 for this data, apart from the PROTO argument.

static const float S0[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
static const uint16_t S1[4] = { 0x3C00, 0x4000, 0x4200, 0xC400 };   // 1, 2, 3, -4 in F16
static const int64_t S2[1] = { 160000 };

typedef struct zfile { const char *name; const void *data; size_t n; int method; } zfile;

// A zip the way torch.save writes one: stored entries, data padded to 64 bytes with an extra field.
static int write_zip(const char *path, const zfile *f, int n) {
    size_t cap = 4096;
    for (int k = 0; k < n; k++) cap += f[k].n + 256;
    unsigned char *b = calloc(1, cap), *cd = calloc(1, 4096);
    size_t w = 0, cw = 0;
    for (int k = 0; k < n; k++) {
        size_t nl = strlen(f[k].name), lho = w;
        size_t x = (64 - (w + 30 + nl + 4) % 64) % 64 + 4;
        unsigned char *h = b + w;
        memcpy(h, "PK\x03\x04", 4);
        h[8] = (unsigned char)f[k].method;
        for (int i = 0; i < 4; i++) h[18 + i] = h[22 + i] = (unsigned char)(f[k].n >> (8 * i));
        h[26] = (unsigned char)nl; h[28] = (unsigned char)x;
        memcpy(h + 30, f[k].name, nl);
        h[30 + nl] = 'F'; h[31 + nl] = 'B'; h[32 + nl] = (unsigned char)(x - 4);
        w += 30 + nl + x;
        memcpy(b + w, f[k].data, f[k].n);
        w += f[k].n;
        unsigned char *c = cd + cw;
        memcpy(c, "PK\x01\x02", 4);
        c[10] = (unsigned char)f[k].method;
        for (int i = 0; i < 4; i++) {
            c[20 + i] = c[24 + i] = (unsigned char)(f[k].n >> (8 * i));
            c[42 + i] = (unsigned char)(lho >> (8 * i));
        }
        c[28] = (unsigned char)nl;
        memcpy(c + 46, f[k].name, nl);
        cw += 46 + nl;
    }
    size_t cdoff = w;
    memcpy(b + w, cd, cw);
    w += cw;
    unsigned char *eo = b + w;
    memcpy(eo, "PK\x05\x06", 4);
    eo[8] = eo[10] = (unsigned char)n;
    for (int i = 0; i < 4; i++) { eo[12 + i] = (unsigned char)(cw >> (8 * i)); eo[16 + i] = (unsigned char)(cdoff >> (8 * i)); }
    w += 22;
    int rc = write_file(path, b, w);
    free(b);
    free(cd);
    return rc;
}

// The first three pickles of a legacy file: magic number, protocol 1001, system info.
static const char LEGACY_HEAD[] =
    "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."
    "\x80\x02M\xe9\x03."
    "\x80\x02}q\x00(X\x0d\x00\x00\x00little_endianq\x01\x88u.";
#define LEGACY_HEAD_LEN (sizeof LEGACY_HEAD - 1)

// A legacy file: header, `obj` pickle, then the key list and storages (1), an empty key list (2)
// or nothing (0).
static int write_legacy(const char *path, const void *obj, size_t on, int with_storages) {
    static const char keys[] = "\x80\x02]q\x00(X\x01\x00\x00\x00" "0X\x01\x00\x00\x00" "1X\x01\x00\x00\x00" "2e.";
    unsigned char b[16384];
    size_t w = 0;
    memcpy(b, LEGACY_HEAD, LEGACY_HEAD_LEN); w += LEGACY_HEAD_LEN;
    memcpy(b + w, obj, on); w += on;
    if (with_storages == 2) { memcpy(b + w, "\x80\x02].", 4); w += 4; }
    if (with_storages == 1) {
        memcpy(b + w, keys, sizeof keys - 1); w += sizeof keys - 1;
        int64_t c;
        c = 8; memcpy(b + w, &c, 8); w += 8; memcpy(b + w, S0, sizeof S0); w += sizeof S0;
        c = 4; memcpy(b + w, &c, 8); w += 8; memcpy(b + w, S1, sizeof S1); w += sizeof S1;
        c = 1; memcpy(b + w, &c, 8); w += 8; memcpy(b + w, S2, sizeof S2); w += sizeof S2;
    }
    return write_file(path, b, w);
}

static void check_crafted(const ckpt *ck) {
    REQUIRE(ck->n == 5, "%d entries", ck->n);
    static const char *names[] = { "a", "b", "h", "s", "e" };
    for (int k = 0; k < 5; k++) CHECK(strcmp(ck->e[k].name, names[k]) == 0, "entry %d is '%s'", k, ck->e[k].name);
    const ckpt_entry *a = &ck->e[0], *b = &ck->e[1], *h = &ck->e[2], *s = &ck->e[3], *e = &ck->e[4];
    static const float wa[6] = { 2, 4, 6, 3, 5, 7 };
    CHECK(a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 3 && memcmp(a->f32, wa, sizeof wa) == 0,
          "a = %g %g %g %g %g %g", a->f32[0], a->f32[1], a->f32[2], a->f32[3], a->f32[4], a->f32[5]);
    CHECK(b->numel == 2 && b->f32[0] == 0 && b->f32[1] == 1);
    CHECK(h->src_dtype == DT_F16 && h->numel == 3 && h->f32[0] == 2 && h->f32[1] == 3 && h->f32[2] == -4);
    int64_t sv = 0;
    REQUIRE(s->raw);
    memcpy(&sv, s->raw, 8);
    CHECK(s->ndim == 0 && s->numel == 1 && s->src_dtype == DT_I64 && sv == 160000);
    CHECK(e->ndim == 2 && e->numel == 0 && e->shape[1] == 4);
}

TEST(crafted_zip_and_legacy) {
    static char p5[sizeof PKL_P4];
    memcpy(p5, PKL_P4, sizeof p5);
    p5[1] = 5;
    const struct { const char *p; size_t n; } pk[] = {
        { PKL_P2, sizeof PKL_P2 - 1 }, { PKL_P4, sizeof PKL_P4 - 1 }, { p5, sizeof PKL_P4 - 1 },
    };
    for (int k = 0; k < 3; k++) {
        zfile f[] = {
            { "archive/data.pkl", pk[k].p, pk[k].n, 0 }, { "archive/byteorder", "little", 6, 0 },
            { "archive/data/0", S0, sizeof S0, 0 }, { "archive/data/1", S1, sizeof S1, 0 },
            { "archive/data/2", S2, sizeof S2, 0 }, { "archive/version", "3\n", 2, 0 },
        };
        const char *p = tmp_path("crafted.pth");
        REQUIRE(write_zip(p, f, 6) == 0);
        err e = { 0 };
        ckpt *ck = NULL;
        REQUIRE(ckpt_open(p, &ck, &e) == OODSEG_OK, "protocol %d: %s", k == 0 ? 2 : k + 3, e.msg);
        CHECK(strcmp(ck->format, "torch-zip") == 0);
        check_crafted(ck);
        ckpt_close(ck);
    }
    const char *p = tmp_path("crafted-legacy.pth");
    REQUIRE(write_legacy(p, PKL_P2, sizeof PKL_P2 - 1, 1) == 0);
    err e = { 0 };
    ckpt *ck = NULL;
    REQUIRE(ckpt_open(p, &ck, &e) == OODSEG_OK, "%s", e.msg);
    CHECK(strcmp(ck->format, "torch-legacy") == 0);
    check_crafted(ck);
    ckpt_close(ck);
}

TEST(crafted_zip_errors) {
    float small[6] = { 0 };
    static const struct { int which, method; size_t n; const char *msg; } cases[] = {
        { 0, 0, sizeof small, "needs storage elements up to 7 but storage '0'" },
        { 1, 8, sizeof S1, "'archive/data/1' is compressed" },
        { 2, 0, 0, "no zip entry 'archive/data/2'" },
        { 3, 8, 0, "'archive/data.pkl' is compressed" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        zfile f[5] = {
            { "archive/data.pkl", PKL_P2, sizeof PKL_P2 - 1, cases[c].which == 3 ? 8 : 0 },
            { "archive/data/0", cases[c].which == 0 ? (const void *)small : S0, cases[c].which == 0 ? sizeof small : sizeof S0, 0 },
            { "archive/data/1", S1, sizeof S1, cases[c].which == 1 ? 8 : 0 },
            { "archive/data/2", S2, sizeof S2, 0 },
        };
        int n = cases[c].which == 2 ? 3 : 4;
        const char *p = tmp_path("bad-zip.pth");
        REQUIRE(write_zip(p, f, n) == 0);
        err e = { 0 };
        ckpt *ck = NULL;
        int rc = ckpt_open(p, &ck, &e);
        CHECK(rc == OODSEG_E_FORMAT && !ck && strstr(e.msg, "bad-zip.pth") && strstr(e.msg, cases[c].msg),
              "case %zu: %s", c, e.msg);
    }
}

// Real tiny-t model.pth with one central-directory record edited.
TEST(zip_entry_past_eof) {
    ASSET_OR_SKIP(src, "golden/tiny-t/model.pth");
    size_t n;
    unsigned char *b = read_file(src, &n);
    REQUIRE(b);
    for (int variant = 0; variant < 3; variant++) {
        unsigned char *c = NULL;
        for (size_t k = 0; k + 46 + 12 < n; k++)
            if (memcmp(b + k, "PK\x01\x02", 4) == 0 && b[k + 28] == 12 && memcmp(b + k + 46, "model/data/0", 12) == 0) { c = b + k; break; }
        REQUIRE(c, "no central record for model/data/0");
        unsigned char save[46];
        memcpy(save, c, 46);
        const char *want;
        if (variant == 0) { memset(c + 20, 0xF0, 3); memset(c + 24, 0xF0, 3); want = "extends past the end of the file"; }
        else if (variant == 1) { c[42] = 0xF0; c[43] = 0xFF; c[44] = 0xFF; c[45] = 0x7F; want = "past the end of the file"; }
        else { c[42] ^= 0x5; want = "but no header is there"; }
        const char *p = tmp_path("eof.pth");
        REQUIRE(write_file(p, b, n) == 0);
        memcpy(c, save, 46);
        err e = { 0 };
        ckpt *ck = NULL;
        int rc = ckpt_open(p, &ck, &e);
        CHECK(rc == OODSEG_E_FORMAT && strstr(e.msg, "eof.pth") && strstr(e.msg, "model/data/0") && strstr(e.msg, want),
              "variant %d: %s", variant, e.msg);
        ckpt_close(ck);
    }
    free(b);
}

// torch writes zip64 records too; a file over 4 GB saturates the classic end record, so force
// that path on the real file by saturating its fields.
TEST(zip64_end_record) {
    ASSET_OR_SKIP(src, "golden/tiny-t/model.pth");
    size_t n;
    unsigned char *b = read_file(src, &n);
    REQUIRE(b && n > 22 && memcmp(b + n - 22, "PK\x05\x06", 4) == 0);
    memset(b + n - 22 + 8, 0xFF, 12);
    const char *p = tmp_path("zip64.pth");
    REQUIRE(write_file(p, b, n) == 0);
    ckpt *z = open_or_fail(p), *o = open_or_fail(src);
    CHECK(z && o && z->n == 217);
    if (z && o) check_same(o, z);
    ckpt_close(z);
    ckpt_close(o);
    // A broken locator is reported.
    memset(b + n - 42, 0, 4);
    REQUIRE(write_file(p, b, n) == 0);
    err e = { 0 };
    ckpt *ck = NULL;
    CHECK(ckpt_open(p, &ck, &e) == OODSEG_E_FORMAT && strstr(e.msg, "zip64 locator missing"), "%s", e.msg);
    free(b);
}

// A zip64 file of 46-55 bytes: local-header magic, zero padding, a zip64 locator and a saturated
// end record. The locator points at byte z64; a zip64 end record needs 56 bytes, more than the
// file has, so every variant is refused (once a crash: `len - 56` wrapped around).
TEST(zip64_tiny_files) {
    static const uint64_t targets[] = { (uint64_t)1 << 40, 4, 20, 0 };
    for (size_t len = 46; len <= 55; len++) {
        for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
            unsigned char b[64] = { 'P', 'K', 3, 4 };
            if (len >= 50) memcpy(b + 4, "PK\x06\x06", 4);   // a record magic the locator may point at
            unsigned char *loc = b + len - 42, *eo = b + len - 22;
            memcpy(loc, "PK\x06\x07", 4);
            for (int i = 0; i < 8; i++) loc[8 + i] = (unsigned char)(targets[t] >> (8 * i));
            memcpy(eo, "PK\x05\x06", 4);
            memset(eo + 8, 0xFF, 12);
            const char *p = tmp_path("tiny64.pth");
            REQUIRE(write_file(p, b, len) == 0);
            err e = { 0 };
            ckpt *ck = NULL;
            int rc = ckpt_open(p, &ck, &e);
            CHECK(rc == OODSEG_E_FORMAT && !ck && strstr(e.msg, "tiny64.pth") && strstr(e.msg, "zip64 end record"),
                  "%zu bytes, record at %llu: rc %d: %s", len, (unsigned long long)targets[t], rc, e.msg);
            ckpt_close(ck);
        }
    }
}

// A string literal and its length (pickles contain NUL bytes).
#define PKS(lit) lit, sizeof(lit) - 1

TEST(forbidden_globals) {
    static const struct { const char *pk; size_t n; const char *msg; } cases[] = {
        // posix.system('ls') via GLOBAL + REDUCE
        { PKS("\x80\x02" "cposix\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03."), "refusing to call the global 'posix.system'" },
        // builtins.eval('1+1') via protocol-4 STACK_GLOBAL
        { PKS("\x80\x04\x8c\x08" "builtins\x94\x8c\x04" "eval\x94\x93\x94\x8c\x03" "1+1\x94\x85\x94R\x94."), "'builtins.eval'" },
        // BUILD on os.system
        { PKS("\x80\x02" "cos\nsystem\n}b."), "refusing to BUILD the global 'os.system'" },
        // subprocess.Popen via NEWOBJ
        { PKS("\x80\x02" "csubprocess\nPopen\n)\x81."), "'subprocess.Popen'" },
        // a tensor whose storage would be made by a global off the allow-list
        { PKS("\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n(cfoo\nbar\n)RK\x00)))\x89tR."),
          "refusing the global 'foo.bar'" },
        // a global off the allow-list, never called: refused where it is named
        { PKS("\x80\x02" "cmmcv.utils\nConfigDict\n."), "refusing the global 'mmcv.utils.ConfigDict'" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int legacy = 0; legacy < 2; legacy++) {
            const char *p = tmp_path("evil.pth");
            if (legacy) REQUIRE(write_legacy(p, cases[c].pk, cases[c].n, 0) == 0);
            else REQUIRE(write_file(p, cases[c].pk, cases[c].n) == 0);
            err e = { 0 };
            ckpt *ck = NULL;
            int rc = ckpt_open(p, &ck, &e);
            CHECK(rc == OODSEG_E_FORMAT && !ck && strstr(e.msg, "evil.pth") && strstr(e.msg, cases[c].msg),
                  "case %zu%s: %s", c, legacy ? " (legacy)" : "", e.msg);
        }
        // The same pickle as data.pkl of a zip.
        zfile f[] = { { "archive/data.pkl", cases[c].pk, cases[c].n, 0 } };
        const char *p = tmp_path("evil-zip.pth");
        REQUIRE(write_zip(p, f, 1) == 0);
        err e = { 0 };
        ckpt *ck = NULL;
        CHECK(ckpt_open(p, &ck, &e) == OODSEG_E_FORMAT && strstr(e.msg, cases[c].msg), "case %zu (zip): %s", c, e.msg);
    }
}

TEST(unknown_opcode_and_bad_pickles) {
    static const struct { const char *pk; size_t n; const char *msg; } cases[] = {
        { PKS("\x80\x02}q\x00\xff."), "unknown opcode 0xff (opcode at byte %zu of the file, byte 5 of the pickle)" },
        { PKS("\x80\x02}q\x00(X\x05\x00\x00\x00"), "truncated" },
        { PKS("\x80\x02}q\x00h\x07."), "memo entry 7 read before it was written" },
        { PKS("\x80\x02u."), "no MARK" },
        { PKS("\x80\x02]q\x00s."), "stack underflow" },
        { PKS("\x80\x02" "N\x82\x01."), "extension registry" },
        { PKS("\x80\x02X\xff\xff\xff\x7f" "abc."), "truncated" },
        { PKS("\x80\x02K\x01Q."), "persistent id" },
        { PKS("\x80\x02(X\x07\x00\x00\x00storagectorch\nFooStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x01tQ."),
          "unsupported storage type 'torch.FooStorage'" },
        { PKS("\x80\x02K\x05."), "not a dict of tensors" },
        { PKS("\x80\x02" "ctorch.nn\nLinear\n)\x81}b."), "refusing the global 'torch.nn.Linear'" },
        { PKS("\x80\x02}X\x01\x00\x00\x00" "aK\x01s."), "no tensors found" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *p = tmp_path("bad-pickle.pth");
        REQUIRE(write_legacy(p, cases[c].pk, cases[c].n, c >= 9 ? 2 : 0) == 0);  // the last 3 parse fully
        err e = { 0 };
        ckpt *ck = NULL;
        int rc = ckpt_open(p, &ck, &e);
        char want[200];
        snprintf(want, sizeof want, cases[c].msg, LEGACY_HEAD_LEN + 5);
        CHECK(rc == OODSEG_E_FORMAT && !ck && strstr(e.msg, "bad-pickle.pth") && strstr(e.msg, want),
              "case %zu: %s (want %s)", c, e.msg, want);
    }
    // A legacy header whose magic number is wrong.
    const char *p = tmp_path("bad-magic.pth");
    char b[LEGACY_HEAD_LEN + 8];
    memcpy(b, LEGACY_HEAD, LEGACY_HEAD_LEN);
    b[6] ^= 1;
    memcpy(b + LEGACY_HEAD_LEN, "\x80\x02}.", 4);
    write_file(p, b, LEGACY_HEAD_LEN + 4);
    err e = { 0 };
    ckpt *ck = NULL;
    CHECK(ckpt_open(p, &ck, &e) == OODSEG_E_FORMAT && strstr(e.msg, "bad magic number"), "%s", e.msg);
}

// MARK and then an opcode that collects the items above it, with nothing on the stack: an empty
// container, never arithmetic on the stack's NULL pointer (UBSan once flagged `NULL + 0`).
TEST(empty_stack_after_mark) {
    static const struct { const char *pk; size_t n; const char *msg; } cases[] = {
        { PKS("\x80\x02(t."), "the saved object is a tuple" },
        { PKS("\x80\x02(l."), "the saved object is a list" },
        { PKS("\x80\x02(\x91."), "the saved object is a set" },
        { PKS("(ifoo\nBar\n."), "refusing the global 'foo.Bar'" },
        { PKS("\x80\x02(cfoo\nBar\no."), "refusing the global 'foo.Bar'" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *p = tmp_path("empty-mark.pth");
        REQUIRE(write_legacy(p, cases[c].pk, cases[c].n, 2) == 0);
        err e = { 0 };
        ckpt *ck = NULL;
        int rc = ckpt_open(p, &ck, &e);
        CHECK(rc == OODSEG_E_FORMAT && !ck && strstr(e.msg, "empty-mark.pth") && strstr(e.msg, cases[c].msg),
              "case %zu: %s", c, e.msg);
    }
}

// Appends a pickle of a list of n Nones (one opcode byte and one ~250-byte object each) to b.
static size_t list_of_nones(unsigned char *b, size_t n) {
    memcpy(b, "\x80\x02](", 4);
    memset(b + 4, 'N', n);
    memcpy(b + 4 + n, "e.", 2);
    return n + 6;
}

// Pickles of many small objects are refused once the objects of ALL of a file's pickles pass
// a budget proportional to the file's size (64 MiB + 16 bytes per byte). Without it a 4 MB file
// cost 1.15 GB, and a per-pickle cap let each of a legacy file's five pickles start afresh.
TEST(pickle_memory_budget) {
    const size_t big = 1 << 20, half = 200000;
    unsigned char *b = malloc(LEGACY_HEAD_LEN + 2 * (big + 6) + 16);
    REQUIRE(b);
    // One pickle of 1M objects in a 1 MB file: ~270 MB of objects against an 80 MB budget.
    memcpy(b, LEGACY_HEAD, LEGACY_HEAD_LEN);
    size_t w = LEGACY_HEAD_LEN;
    w += list_of_nones(b + w, big);
    const char *p = tmp_path("many-objects.pth");
    REQUIRE(write_file(p, b, w) == 0);
    err e = { 0 };
    ckpt *ck = NULL;
    CHECK(ckpt_open(p, &ck, &e) == OODSEG_E_FORMAT && !ck && strstr(e.msg, "many-objects.pth")
          && strstr(e.msg, "pickle 4 (the saved object)") && strstr(e.msg, "over the budget"), "%s", e.msg);
    // Two pickles of 200,000 objects each (~55 MB each, so each alone fits a ~71 MB budget): the
    // second one passes the budget, because the budget is the file's, not the pickle's.
    w = LEGACY_HEAD_LEN;
    w += list_of_nones(b + w, half);
    w += list_of_nones(b + w, half);
    p = tmp_path("split-objects.pth");
    REQUIRE(write_file(p, b, w) == 0);
    CHECK(ckpt_open(p, &ck, &e) == OODSEG_E_FORMAT && !ck && strstr(e.msg, "pickle 5 (storage keys)")
          && strstr(e.msg, "over the budget"), "%s", e.msg);
    // The same objects in one pickle and a small key list: within the budget, so the file gets as
    // far as its (missing) tensors.
    w = LEGACY_HEAD_LEN;
    w += list_of_nones(b + w, half);
    memcpy(b + w, "\x80\x02].", 4);
    w += 4;
    p = tmp_path("fits.pth");
    REQUIRE(write_file(p, b, w) == 0);
    CHECK(ckpt_open(p, &ck, &e) == OODSEG_E_FORMAT && !ck && strstr(e.msg, "not a dict of tensors"), "%s", e.msg);
    free(b);
}

// Cutting a real file anywhere must give a format error naming it, never a crash or success.
static void truncate_at_many_points(const char *rel) {
    ASSET_OR_SKIP(src, rel);
    size_t n;
    unsigned char *b = read_file(src, &n);
    REQUIRE(b);
    size_t cuts[96];
    int nc = 0;
    static const size_t small[] = { 1, 2, 3, 5, 8, 9, 12, 15, 16, 17, 22, 30, 31, 40, 64, 100, 135, 200, 333, 500, 1000, 4096, 20000 };
    for (size_t k = 0; k < sizeof small / sizeof small[0]; k++) if (small[k] < n) cuts[nc++] = small[k];
    static const size_t tail[] = { 1, 2, 8, 21, 22, 23, 100, 1000, 5000 };
    for (size_t k = 0; k < sizeof tail / sizeof tail[0]; k++) if (tail[k] < n) cuts[nc++] = n - tail[k];
    uint64_t s = 12345;
    while (nc < 60) { s = s * 6364136223846793005ULL + 1442695040888963407ULL; cuts[nc++] = 1 + (size_t)((s >> 33) % (n - 1)); }
    const char *p = tmp_path("cut.bin");
    int bad = 0;
    for (int k = 0; k < nc && bad < 3; k++) {
        REQUIRE(write_file(p, b, cuts[k]) == 0);
        err e = { 0 };
        ckpt *ck = NULL;
        int rc = ckpt_open(p, &ck, &e);
        int ok = rc == OODSEG_E_FORMAT && !ck && strstr(e.msg, "cut.bin");
        if (!ok) { CHECK(ok, "%s cut at %zu of %zu: rc %d: %s", rel, cuts[k], n, rc, e.msg); bad++; }
        ckpt_close(ck);
    }
    free(b);
}

TEST(truncated_files) {
    truncate_at_many_points("golden/tiny-t/model.safetensors");
    truncate_at_many_points("golden/tiny-t/model.pth");
    truncate_at_many_points("golden/tiny-t/model-legacy.pth");
    truncate_at_many_points("models/espnet/pretrained/decoder/espnet_p_2_q_8.pth");
    truncate_at_many_points("models/espnetv2/espnetv2_s_0.5_city_1024x512.pth");
}

// Random byte changes in the pickle part of real files: any outcome but a crash or a silent
// error-free failure is fine.
TEST(mutated_pickles) {
    static const char *files[] = { "models/espnet/pretrained/decoder/espnet_p_2_q_3.pth", "golden/tiny-l/model.pth" };
    for (int f = 0; f < 2; f++) {
        ASSET_OR_SKIP(src, files[f]);
        size_t n;
        unsigned char *b = read_file(src, &n);
        REQUIRE(b);
        // The pickle of the zip starts after its 64-byte aligned local header; legacy at 0.
        size_t lo = f == 1 ? 64 : 0, span = 12000 < n ? 12000 : n;
        uint64_t s = 99 + (uint64_t)f;
        int n_ok = 0, n_err = 0, iters = t_sanitized() ? 120 : 300;
        const char *p = tmp_path("mut.pth");
        for (int it = 0; it < iters; it++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t at = lo + (size_t)((s >> 33) % (span - lo));
            unsigned char old = b[at];
            b[at] = (unsigned char)(s >> 13);
            REQUIRE(write_file(p, b, n) == 0);
            b[at] = old;
            err e = { 0 };
            ckpt *ck = NULL;
            int rc = ckpt_open(p, &ck, &e);
            if (rc == OODSEG_OK) { n_ok++; CHECK(ck && ck->n > 0); }
            else { n_err++; CHECK(e.msg[0] && !ck && rc != OODSEG_E_INTERNAL, "rc %d: %s", rc, e.msg); }
            ckpt_close(ck);
        }
        CHECK(n_err > 0);
        fprintf(stderr, "  %s: %d loaded, %d refused\n", files[f], n_ok, n_err);
        free(b);
    }
}

// A named pipe, a device or a directory given as a checkpoint: refused at once, naming the path
// and what it is (a FIFO used to block in open; the alarm turns a hang into a failure).
TEST(special_files_refused) {
    const char *fifo = tmp_path("pipe.pth"), *dir = tmp_path("dir.safetensors");
    REQUIRE(mkfifo(fifo, 0600) == 0 && mkdir(dir, 0700) == 0);
    static const char *kinds[] = { "named pipe", "character device", "directory" };
    const char *paths[] = { fifo, "/dev/zero", dir };
    alarm(30);
    for (int k = 0; k < 3; k++) {
        err e = { 0 };
        ckpt *ck = NULL;
        CHECK(ckpt_open(paths[k], &ck, &e) == OODSEG_E_IO && !ck && strstr(e.msg, paths[k]) && strstr(e.msg, kinds[k]),
              "%s: %s", kinds[k], e.msg);
    }
    alarm(0);
}

// ---------------------------------------------------------------- memory checkpoints

TEST(memory_checkpoint) {
    err e = { 0 };
    ckpt *ck = ckpt_new_memory(&e);
    REQUIRE(ck);
    float w[6] = { 1, 2, 3, 4, 5, 6 };
    REQUIRE(ckpt_add(ck, "module.conv.weight", DT_F32, 2, (int64_t[]){ 2, 3 }, w, &e) == 0, "%s", e.msg);
    REQUIRE(ckpt_add(ck, "conv.bias", DT_F32, 1, (int64_t[]){ 2 }, NULL, &e) == 0, "%s", e.msg);
    REQUIRE(ckpt_add(ck, "bn.num_batches_tracked", DT_I64, 0, NULL, (float[]){ 5 }, &e) == 0, "%s", e.msg);
    CHECK(strcmp(ck->format, "memory") == 0);
    CHECK(ckpt_find(ck, "conv.weight") != NULL, "module. prefix stripped");
    const float *p = ckpt_get(ck, "conv.weight", 2, (int64_t[]){ 2, 3 }, &e);
    CHECK(p && p != w && p[5] == 6);
    const float *b = ckpt_get(ck, "conv.bias", 1, (int64_t[]){ 2 }, &e);
    CHECK(b && b[0] == 0 && b[1] == 0, "shapes-only entry gives zeros");
    const ckpt_entry *nb = ckpt_find(ck, "bn.num_batches_tracked");
    int64_t v;
    REQUIRE(nb && nb->raw);
    memcpy(&v, nb->raw, 8);
    CHECK(v == 5);
    CHECK(ckpt_num_float_params(ck) == 8);
    CHECK(ckpt_first_unused(ck, NULL, 0) == nb);
    const char *ign[] = { "num_batches_tracked" };
    CHECK(ckpt_first_unused(ck, ign, 1) == NULL);
    ckpt_close(ck);
}

// ckpt_release, as a BN fold uses it: an owned tensor's buffer is freed and counted off, a mapped
// one's pages are dropped while the file stays as it was; binding a released key again is an error
// that names it; unknown pointers and NULL are ignored.
TEST(release_after_fold) {
    err e = { 0 };
    ckpt *ck = ckpt_new_memory(&e);
    REQUIRE(ck);
    float w[6] = { 1, 2, 3, 4, 5, 6 };
    REQUIRE(ckpt_add(ck, "conv.weight", DT_F32, 2, (int64_t[]){ 2, 3 }, w, &e) == 0, "%s", e.msg);
    REQUIRE(ckpt_add(ck, "other", DT_F32, 1, (int64_t[]){ 2 }, w, &e) == 0, "%s", e.msg);
    uint64_t before = ck->bytes;
    const float *p = ckpt_get(ck, "conv.weight", 2, (int64_t[]){ 2, 3 }, &e);
    REQUIRE(p);
    ckpt_release(ck, NULL);
    ckpt_release(ck, w);   // not the checkpoint's
    CHECK(ck->bytes == before);
    ckpt_release(ck, p);
    CHECK(ck->bytes == before - 24, "bytes %llu", (unsigned long long)ck->bytes);
    CHECK(ck->e[0].released && !ck->e[0].f32 && ck->e[0].used);
    e = (err){ 0 };
    CHECK(!ckpt_get(ck, "conv.weight", 2, (int64_t[]){ 2, 3 }, &e) && e.code == OODSEG_E_MODEL &&
          strstr(e.msg, "'conv.weight'") && strstr(e.msg, "bound again"), "%s", e.msg);
    e = (err){ 0 };
    const float *o = ckpt_get(ck, "other", 1, (int64_t[]){ 2 }, &e);
    CHECK(o && o[1] == 2, "the other tensor is untouched");
    ckpt_close(ck);

    // Mapped: a tensor of 3 pages and a small neighbour on each side, which keep their values.
    int64_t big = 3 * 4096;
    float *data = malloc(sizeof(float) * (size_t)big);
    for (int64_t i = 0; i < big; i++) data[i] = (float)i;
    float edge[3] = { -1, -2, -3 };
    st_tensor t[3] = { { "a", 1, (int64_t[]){ 3 }, edge }, { "big", 1, &big, data }, { "z", 1, (int64_t[]){ 3 }, edge } };
    const char *path = tmp_path("release.safetensors");
    REQUIRE(safetensors_write(path, t, 3, NULL, 0, &e) == OODSEG_OK, "%s", e.msg);
    REQUIRE(ckpt_open(path, &ck, &e) == OODSEG_OK, "%s", e.msg);
    const ckpt_entry *en = ckpt_find(ck, "big");
    REQUIRE(en && ckpt_entry_is_mapped(ck, en), "the test needs a zero-copy tensor");
    const float *pb = ckpt_get(ck, "big", 1, &big, &e);
    REQUIRE(pb && pb[big - 1] == (float)(big - 1));
    ckpt_release(ck, pb);
    CHECK(en->released);
    const float *pa = ckpt_get(ck, "a", 1, (int64_t[]){ 3 }, &e), *pz = ckpt_get(ck, "z", 1, (int64_t[]){ 3 }, &e);
    CHECK(pa && pz && pa[2] == -3 && pz[0] == -1, "neighbours of a released tensor changed");
    ckpt_close(ck);
    REQUIRE(ckpt_open(path, &ck, &e) == OODSEG_OK, "%s", e.msg);
    pb = ckpt_get(ck, "big", 1, &big, &e);
    CHECK(pb && !memcmp(pb, data, sizeof(float) * (size_t)big), "the file changed");
    ckpt_close(ck);
    free(data);
}

// The weight binder (models/weights.h): prefixes nest and unwind, a conv with its BN folds, a
// names-only key binds to NULL and is counted, and the first error sticks.
TEST(weight_binder) {
    err e = { 0 };
    ckpt *ck = ckpt_new_memory(&e);
    REQUIRE(ck);
    float w[2 * 3 * 3 * 3], one[2] = { 1, 1 }, zero[2] = { 0, 0 }, four[2] = { 4, 4 };
    for (int i = 0; i < 54; i++) w[i] = (float)i;
    REQUIRE(ckpt_add(ck, "enc.l1.conv.weight", DT_F32, 4, (int64_t[]){ 2, 3, 3, 3 }, w, &e) == 0, "%s", e.msg);
    REQUIRE(ckpt_add(ck, "enc.l1.bn.weight", DT_F32, 1, (int64_t[]){ 2 }, one, &e) == 0, "%s", e.msg);
    REQUIRE(ckpt_add(ck, "enc.l1.bn.bias", DT_F32, 1, (int64_t[]){ 2 }, one, &e) == 0, "%s", e.msg);
    REQUIRE(ckpt_add(ck, "enc.l1.bn.running_mean", DT_F32, 1, (int64_t[]){ 2 }, zero, &e) == 0, "%s", e.msg);
    REQUIRE(ckpt_add(ck, "enc.l1.bn.running_var", DT_F32, 1, (int64_t[]){ 2 }, four, &e) == 0, "%s", e.msg);
    REQUIRE(ckpt_add(ck, "enc.l2.act.weight", DT_F32, 1, (int64_t[]){ 2 }, NULL, &e) == 0, "%s", e.msg);
    REQUIRE(ckpt_add(ck, "head.fc.weight", DT_F32, 2, (int64_t[]){ 5, 2 }, NULL, &e) == 0, "%s", e.msg);
    wbind b;
    wb_init(&b, ck, &e);
    conv2d cv;
    wb_push(&b, "enc.");
    wb_push(&b, "l%d.", 1);
    wb_conv(&b, &cv, 3, 2, 3, 2, 1, 1, "conv");
    CHECK(cv.pad == 1 && cv.stride == 2 && cv.weight && cv.weight[53] == 53.0f);
    wb_conv_bn(&b, &cv, 0.0f, "bn");   // scale 1/sqrt(4) = 0.5, shift 1
    CHECK(!e.code && cv.owned && cv.weight[53] == 26.5f && cv.bias && cv.bias[1] == 1.0f, "%s", e.msg);
    wb_pop(&b);
    CHECK(wb_prelu(&b, 2, "l2.act") == NULL && b.no_data == 1 && !e.code, "names-only: %s", e.msg);
    wb_pop(&b);
    CHECK(strcmp(b.prefix, "") == 0, "prefix '%s'", b.prefix);
    const float *fw, *fb;
    wb_linear(&b, &fw, &fb, 2, 4, "head.fc");
    CHECK(e.code == OODSEG_E_MODEL && strstr(e.msg, "key 'head.fc.weight' has shape [5, 2] but the architecture needs [4, 2]"),
          "%s", e.msg);
    char first[sizeof e.msg];
    snprintf(first, sizeof first, "%s", e.msg);
    CHECK(wb_get(&b, SHAPE(7), "nope") == NULL && strcmp(e.msg, first) == 0, "the first error sticks: %s", e.msg);
    int64_t s[8];
    CHECK(wb_shape(ck, s, "head.%s.weight", "fc") == 2 && s[0] == 5 && wb_shape(ck, s, "nope") == 0);
    conv2d_free(&cv);
    ckpt_close(ck);
}

int main(int argc, char **argv) {
    (void)argc;
    RUN(json_basic);
    RUN(json_nesting_and_empty);
    RUN(json_errors);
    RUN(safetensors_tiny);
    RUN(safetensors_roundtrip_and_metadata);
    RUN(safetensors_dtypes);
    RUN(safetensors_bad);
    RUN(memory_checkpoint);
    RUN(release_after_fold);
    RUN(weight_binder);
    RUN(pth_tiny_same_as_safetensors);
    RUN(model_zoo_files_load);
    RUN(espnet_equals_golden);
    RUN(crafted_zip_and_legacy);
    RUN(crafted_zip_errors);
    RUN(zip_entry_past_eof);
    RUN(zip64_end_record);
    RUN(zip64_tiny_files);
    RUN(forbidden_globals);
    RUN(unknown_opcode_and_bad_pickles);
    RUN(empty_stack_after_mark);
    RUN(pickle_memory_budget);
    RUN(truncated_files);
    RUN(mutated_pickles);
    RUN(special_files_refused);
    return t_finish(argv[0]);
}
