// Checkpoint readers (safetensors, PyTorch zip, legacy PyTorch), the pickle machine's refusals,
// and the JSON reader.
#include "test.h"
#include "../core/json.h"
#include "../io/checkpoint.h"
#include <stdlib.h>
#include <string.h>

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
        CHECK(ckpt_getv(ck, &e, "nope.weight", 2, 3, 4) == NULL);
        CHECK(e.code == OODSEG_E_MODEL && strstr(e.msg, "missing key 'nope.weight'"), "%s", e.msg);
        CHECK(ckpt_getv(ck, &e, nb->name, 0) == NULL && e.code == OODSEG_E_MODEL, "integer tensor as float");
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
    CHECK(ckpt_getv(ck, &e, "h", 1, 5) != NULL, "%s", e.msg);
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
    // Missing file, garbage, empty file, header length past EOF.
    err e = { 0 };
    ckpt *ck = NULL;
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
            const ckpt_entry *nb = ckpt_find(z, "backbone.levels.0.downsample.norm.1.weight");
            CHECK(nb && nb->src_dtype == DT_F32);
            CHECK(ckpt_num_float_params(s) == ckpt_num_float_params(z));
        }
        ckpt_close(s);
        ckpt_close(z);
        ckpt_close(l);
    }
}

static const char *const ESPNET_FILES[] = {
    "models/espnet/pretrained/encoder/espnet_p_2_q_3.pth", "models/espnet/pretrained/encoder/espnet_p_2_q_5.pth",
    "models/espnet/pretrained/encoder/espnet_p_2_q_8.pth", "models/espnet/pretrained/decoder/espnet_p_2_q_3.pth",
    "models/espnet/pretrained/decoder/espnet_p_2_q_5.pth", "models/espnet/pretrained/decoder/espnet_p_2_q_8.pth",
    "models/espnet/pretrained/decoder/espnet_p_2_q_8_camvid.pth",
    "models/espnetv2/espnetv2_s_0.5_city_1024x512.pth", "models/espnetv2/espnetv2_s_1.0_city_1024x512.pth",
    "models/espnetv2/espnetv2_s_1.5_city_1024x512.pth", "models/espnetv2/espnetv2_s_2.0_city_1024x512.pth",
};

TEST(espnet_files_load) {
    for (size_t k = 0; k < sizeof ESPNET_FILES / sizeof ESPNET_FILES[0]; k++) {
        ASSET_OR_SKIP(p, ESPNET_FILES[k]);
        ckpt *ck = open_or_fail(p);
        CHECK(ck && ck->n > 90 && strcmp(ck->format, "torch-legacy") == 0, "%s", p);
        if (ck && strstr(p, "decoder/espnet_p_2_q_8.pth")) {
            CHECK(ck->n == 189 && ckpt_num_float_params(ck) == 368341, "%d, %lld", ck->n, (long long)ckpt_num_float_params(ck));
        }
        if (ck && strstr(p, "espnetv2_s_2.0")) {
            CHECK(ck->n == 526, "%d", ck->n);
            const ckpt_entry *nb = NULL;
            for (int i = 0; i < ck->n && !nb; i++) if (strstr(ck->e[i].name, "num_batches_tracked")) nb = &ck->e[i];
            CHECK(nb && nb->ndim == 0 && nb->src_dtype == DT_I64 && nb->raw);
        }
        ckpt_close(ck);
    }
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
    const float *p = ckpt_getv(ck, &e, "conv.weight", 2, 2, 3);
    CHECK(p && p != w && p[5] == 6);
    const float *b = ckpt_getv(ck, &e, "conv.bias", 1, 2);
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
    RUN(pth_tiny_same_as_safetensors);
    RUN(espnet_files_load);
    RUN(espnet_equals_golden);
    return t_finish(argv[0]);
}
