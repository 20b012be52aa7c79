// The bad-input catalogue (issue 11): hostile and broken files, made at test time, each checked
// for its status code (the CLI's exit status is the same number, see `oodseg --help`) and its
// message: the file it names, what is wrong, and where the message has one, what to do.
// RELIABILITY.md lists every case. Truncation is tried at every byte of a small valid file of
// each checkpoint format, which covers every structural boundary.
#include "test.h"
#include "../io/checkpoint.h"
#include "../io/npy.h"
#include "../io/image.h"
#include "../eval/datasets.h"
#include "../eval/metrics.h"
#include "../eval/scoremap.h"
#include "../eval/mstate.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/stat.h>

static int n_cases;

static const char *tpath(const char *name) {
    static char ring[8][1024];
    static int k;
    char *p = ring[k++ & 7];
    snprintf(p, 1024, "%s/%s", t_tmpdir(), name);
    return p;
}

static const char *wfile(const char *name, const void *data, size_t n) {
    const char *p = tpath(name);
    FILE *f = fopen(p, "wb");
    if (f) { if (n) fwrite(data, 1, n, f); fclose(f); }
    return p;
}

// One case: the status and every expected piece of the message.
static void expect(const char *what, int rc, int want, const err *e, const char *s1, const char *s2, const char *s3) {
    n_cases++;
    const char *s[3] = { s1, s2, s3 };
    int ok = rc == want;
    for (int k = 0; k < 3; k++) if (s[k] && !strstr(e->msg, s[k])) ok = 0;
    CHECK(ok, "case '%s': status %d (want %d): %s", what, rc, want, rc ? e->msg : "(ok)");
    // OODSEG_CATALOGUE_VERBOSE=1 prints every case's message (RELIABILITY.md quotes them).
    if (getenv("OODSEG_CATALOGUE_VERBOSE")) printf("  [%s] %d: %s\n", what, rc, rc ? e->msg : "(ok)");
}

static int open_ck(const char *p, err *e) {
    ckpt *ck = NULL;
    int rc = ckpt_open(p, &ck, e);
    ckpt_close(ck);
    return rc;
}

// ---- checkpoints ------------------------------------------------------------------------------
static size_t st_file(unsigned char *b, const char *hdr, const void *data, size_t dn) {
    size_t hl = strlen(hdr), pl = (hl + 7) / 8 * 8;
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)pl >> (8 * k));
    memcpy(b + 8, hdr, hl);
    memset(b + 8 + hl, ' ', pl - hl);
    if (dn) memcpy(b + 8 + pl, data, dn);
    return 8 + pl + dn;
}

TEST(safetensors_cases) {
    unsigned char b[4096], z[64] = {0};
    err e = {0};
    static const struct { const char *name, *hdr; size_t dn; const char *m1, *m2; } c[] = {
        { "overlapping offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "'a'", "'b'" },
        { "offsets beyond the file", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "'a'", NULL },
        { "duplicate key", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "'a'", NULL },
        { "negative shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "'a'", NULL },
        { "zero shape with data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,4]}}", 4, "'a'", NULL },
        { "huge shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,4]}}", 4, "'a'", NULL },
        { "unknown dtype", "{\"a\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'a'", NULL },
        { "header not JSON", "{\"a\":", 0, NULL, NULL },
    };
    for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
        const char *p = wfile("bad.safetensors", b, st_file(b, c[k].hdr, z, c[k].dn));
        expect(c[k].name, open_ck(p, &e), OODSEG_E_FORMAT, &e, "bad.safetensors", c[k].m1, c[k].m2);
    }
    // a header length far beyond the file
    memset(b, 0xFF, 8);
    memcpy(b + 8, "{}", 2);
    expect("header length beyond the file", open_ck(wfile("len.safetensors", b, 10), &e), OODSEG_E_FORMAT, &e, "len.safetensors", NULL, NULL);
}

// Every prefix of a valid file is refused with a format error naming the file (none crashes, none
// loads). The file: safetensors, zip or legacy, as written by fuzz/make-seeds.py's generator (a
// small python script run here) or by hand.
static void every_truncation(const char *what, const char *name, const unsigned char *b, size_t n) {
    err e = {0};
    REQUIRE(open_ck(wfile(name, b, n), &e) == OODSEG_OK, "%s: the whole file does not load: %s", what, e.msg);
    int bad = 0;
    for (size_t cut = 0; cut < n && bad < 3; cut++) {
        int rc = open_ck(wfile(name, b, cut), &e);
        int ok = (rc == OODSEG_E_FORMAT && strstr(e.msg, name)) || (cut == 0 && rc);
        if (!ok) { bad++; CHECK(0, "%s cut at %zu of %zu bytes: status %d: %s", what, cut, n, rc, rc ? e.msg : "(loaded)"); }
    }
    n_cases++;
}

TEST(truncation_at_every_byte) {
    unsigned char b[4096];
    float data[6] = { 1, 2, 3, 4, 5, 6 };
    size_t n = st_file(b, "{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", data, 24);
    every_truncation("safetensors", "cut.safetensors", b, n);
    if (!t_python_has("numpy")) SKIP("/usr/bin/python3 has no numpy (fuzz/make-seeds.py writes the .pth files)");
    REQUIRE(t_sh("/usr/bin/python3 fuzz/make-seeds.py '%s/seeds' >/dev/null", t_tmpdir()) == 0);
    const char *files[2][2] = { { "zip/crafted.pth", "cut-zip.pth" }, { "pth_legacy/crafted.pth", "cut-legacy.pth" } };
    for (int k = 0; k < 2; k++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/seeds/%s", t_tmpdir(), files[k][0]);
        size_t len = 0;
        unsigned char *f = (unsigned char *)t_slurp(p, &len);
        REQUIRE(f, "%s", p);
        every_truncation(files[k][0], files[k][1], f, len);
        free(f);
    }
}

// A legacy file whose object pickle is `obj` (the three header pickles first).
static const char *legacy_with(const char *name, const char *obj, size_t on) {
    static const char head[] = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19." "\x80\x02M\xe9\x03."
                               "\x80\x02}q\x00(X\x0d\x00\x00\x00little_endianq\x01\x88u.";
    static unsigned char b[1 << 18];
    size_t hn = sizeof head - 1;
    memcpy(b, head, hn);
    memcpy(b + hn, obj, on);
    return wfile(name, b, hn + on);
}

TEST(pickle_cases) {
    err e = {0};
    // Each pickle is followed by an empty storage-key list, so that only the call can refuse it.
#define PK(s) s "\x80\x02].", sizeof s + 4 - 1
    static const struct { const char *name, *pk; size_t n; const char *global; } c[] = {
        { "os.system", PK("\x80\x02" "cos\nsystem\n" "X\x02\x00\x00\x00id\x85R."), "os.system" },
        { "builtins.eval", PK("\x80\x02" "cbuiltins\neval\n" "X\x01\x00\x00\x00" "1\x85R."), "builtins.eval" },
        { "subprocess.Popen", PK("\x80\x02" "csubprocess\nPopen\n" "X\x02\x00\x00\x00id\x85R."), "subprocess.Popen" },
        { "posix.system via STACK_GLOBAL", PK("\x80\x04\x8c\x05posix\x8c\x06system\x93X\x02\x00\x00\x00id\x85R."), "posix.system" },
    };
    for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
        const char *p = legacy_with("evil.pth", c[k].pk, c[k].n);
        expect(c[k].name, open_ck(p, &e), OODSEG_E_FORMAT, &e, "evil.pth", c[k].global, "run code");
    }
    // 100,000 nested MARKs and 100,000 nested lists: no stack exhaustion, a clear refusal
    static char deep[200010];
    size_t n = 0;
    deep[n++] = '\x80'; deep[n++] = 2;
    for (int i = 0; i < 100000; i++) deep[n++] = '(';
    deep[n++] = '.';
    expect("100,000 nested MARKs", open_ck(legacy_with("deep.pth", deep, n), &e), OODSEG_E_FORMAT, &e, "deep.pth", NULL, NULL);
    n = 2;
    for (int i = 0; i < 100000; i++) { deep[n++] = ']'; }
    for (int i = 0; i < 99999; i++) { deep[n++] = 'a'; }
    memcpy(deep + n, ".\x80\x02].", 5);
    n += 5;
    int rc = open_ck(legacy_with("deep-lists.pth", deep, n), &e);
    expect("100,000 nested lists", rc, OODSEG_E_FORMAT, &e, "deep-lists.pth", "not a dict of tensors", NULL);
    // the pickle of a whole model object, not a state dict
    static const char model[] = "\x80\x02" "cmymodels\nNet\n" ")\x81}b." "\x80\x02].";
    expect("a pickled model object", open_ck(legacy_with("model-obj.pth", model, sizeof model - 1), &e),
           OODSEG_E_FORMAT, &e, "model-obj.pth", "state_dict", NULL);
}

// A stored zip entry (local header + data) and its central record, for the zip cases.
static size_t zip_one(unsigned char *b, const char *name, const void *data, uint32_t n, uint32_t declared, uint32_t local_at) {
    size_t w = 0, nl = strlen(name);
    unsigned char *lh = b;
    memset(lh, 0, 30); memcpy(lh, "PK\x03\x04", 4);
    for (int k = 0; k < 4; k++) { lh[18 + k] = (unsigned char)(declared >> 8 * k); lh[22 + k] = (unsigned char)(declared >> 8 * k); }
    lh[26] = (unsigned char)nl;
    memcpy(lh + 30, name, nl);
    w = 30 + nl;
    memcpy(b + w, data, n); w += n;
    size_t cd = w;
    unsigned char *c = b + w;
    memset(c, 0, 46); memcpy(c, "PK\x01\x02", 4);
    for (int k = 0; k < 4; k++) { c[20 + k] = (unsigned char)(declared >> 8 * k); c[24 + k] = (unsigned char)(declared >> 8 * k); c[42 + k] = (unsigned char)(local_at >> 8 * k); }
    c[28] = (unsigned char)nl;
    memcpy(c + 46, name, nl);
    w += 46 + nl;
    unsigned char *eo = b + w;
    memset(eo, 0, 22); memcpy(eo, "PK\x05\x06", 4);
    eo[8] = eo[10] = 1;
    uint32_t cds = (uint32_t)(w - cd);
    for (int k = 0; k < 4; k++) { eo[12 + k] = (unsigned char)(cds >> 8 * k); eo[16 + k] = (unsigned char)(cd >> 8 * k); }
    return w + 22;
}

TEST(zip_cases) {
    unsigned char b[1024];
    err e = {0};
    static const char pk[] = "\x80\x02}.";
    size_t n = zip_one(b, "archive/data.pkl", pk, 4, 1u << 31, 0);
    expect("huge declared size", open_ck(wfile("huge.pth", b, n), &e), OODSEG_E_FORMAT, &e, "huge.pth", NULL, NULL);
    n = zip_one(b, "archive/data.pkl", pk, 4, 4, 5000);
    expect("entry past the end", open_ck(wfile("past.pth", b, n), &e), OODSEG_E_FORMAT, &e, "past.pth", NULL, NULL);
    n = zip_one(b, "archive/data.pkl", pk, 4, 4, 0);
    b[n - 22 + 16] = 0xF0;   // central directory offset past the end
    expect("central directory past the end", open_ck(wfile("cd.pth", b, n), &e), OODSEG_E_FORMAT, &e, "cd.pth", NULL, NULL);
    // zip64: a locator pointing nowhere, and files shorter than the zip64 end record
    unsigned char t[64] = { 'P', 'K', 3, 4 };
    memcpy(t + 8, "PK\x06\x07", 4);
    t[16] = 0xFF; t[17] = 0xFF; t[20] = 0x7F;
    memcpy(t + 28, "PK\x05\x06", 4);
    memset(t + 36, 0xFF, 12);
    expect("zip64 tiny file", open_ck(wfile("z64.pth", t, 50), &e), OODSEG_E_FORMAT, &e, "z64.pth", "zip64", NULL);
    // not a zip, not a pickle, not safetensors
    expect("a text file as a checkpoint", open_ck(wfile("notes.pth", "hello, not a model", 18), &e), OODSEG_E_FORMAT, &e, "notes.pth", NULL, NULL);
    expect("an empty checkpoint", open_ck(wfile("empty.pth", "", 0), &e), OODSEG_E_FORMAT, &e, "empty.pth", NULL, NULL);
    t_sh("rm -f '%s' && mkfifo '%s'", tpath("fifo.pth"), tpath("fifo.pth"));
    expect("a named pipe as a checkpoint", open_ck(tpath("fifo.pth"), &e), OODSEG_E_IO, &e, "fifo.pth", "named pipe", "regular file");
    expect("a folder as a checkpoint", open_ck(t_tmpdir(), &e), OODSEG_E_IO, &e, "directory", NULL, NULL);
}

// ---- .npy, images, labels, score maps ---------------------------------------------------------
TEST(npy_cases) {
    err e = {0};
    npy_array a;
    static const char hdr[] = "\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, 'shape': (200000, 200000), }";
    char b[256];
    memset(b, ' ', sizeof b);
    memcpy(b, hdr, sizeof hdr - 1);
    b[127] = '\n';
    expect("npy declaring 160 GB", npy_read(wfile("huge.npy", b, 128), &a, &e), OODSEG_E_FORMAT, &e, "huge.npy", "200000", NULL);
    // 4 x 4 float32 declared, 8 bytes of data
    memset(b, ' ', sizeof b);
    static const char h2[] = "\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4), }";
    memcpy(b, h2, sizeof h2 - 1);
    b[127] = '\n';
    expect("npy data truncated", npy_read(wfile("short.npy", b, 128 + 8), &a, &e), OODSEG_E_FORMAT, &e, "short.npy", "[4, 4]", "136 bytes");
    expect("npy bad magic", npy_read(wfile("magic.npy", "NUMPY\x01\x00", 8), &a, &e), OODSEG_E_FORMAT, &e, "magic.npy", NULL, NULL);
}

// Images and .npy files that only PIL/numpy write conveniently, made in one python run.
static const char *MAKE_IMAGES =
    "import sys, numpy as np; from PIL import Image; d = sys.argv[1]\n"
    "g = (np.arange(48 * 32) %% 256).astype(np.uint8).reshape(32, 48); rgb = np.stack([g, g[::-1], g.T[:32, :48] if False else g], -1)\n"
    "Image.fromarray(rgb).save(d + '/one.png'); Image.fromarray(rgb[:1, :1]).save(d + '/px1.png')\n"
    "Image.fromarray((g.astype(np.uint16) * 257)).save(d + '/g16.png')\n"
    "Image.fromarray(rgb).convert('P').save(d + '/pal.png'); Image.fromarray(rgb).convert('LA').save(d + '/la.png')\n"
    "Image.fromarray(rgb).convert('CMYK').save(d + '/cmyk.jpg'); Image.fromarray(rgb).save(d + '/prog.jpg', progressive=True)\n"
    "Image.fromarray(rgb).save(d + '/one.jpg'); Image.fromarray(rgb).save(d + '/one.webp')\n"
    "s = np.ones((32, 48), np.float32); s[3, 4] = np.nan; np.save(d + '/nan.npy', s); s[3, 4] = np.inf; np.save(d + '/inf.npy', s)\n"
    "np.save(d + '/c8.npy', np.ones((32, 48), np.complex64)); np.save(d + '/f.npy', np.asfortranarray(np.ones((32, 48), np.float32)))\n"
    "import zlib, struct\n"
    "def png(w, h):\n"
    "    ch = lambda t, x: struct.pack('>I', len(x)) + t + x + struct.pack('>I', zlib.crc32(t + x))\n"
    "    return b'\\x89PNG\\r\\n\\x1a\\n' + ch(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) + ch(b'IDAT', zlib.compress(b'')) + ch(b'IEND', b'')\n"
    "open(d + '/zero.png', 'wb').write(png(0, 0)); open(d + '/bomb.png', 'wb').write(png(100000, 100000))\n"
    "Image.fromarray(np.stack([g, g, g], -1)).save(d + '/rgblab.png'); Image.fromarray(g).save(d + '/lab.png')\n"
    "Image.fromarray(g[:16]).save(d + '/small.png')\n"
    "np.save(d + '/big.npy', np.ones((33, 48), np.float32)); np.save(d + '/be.npy', np.ones((32, 48), '>f4'))\n";

static int load_rgb(const char *name, image *im, err *e) { return image_load_rgb(tpath(name), im, e); }

TEST(image_cases) {
    if (!t_python_has("numpy PIL")) SKIP("/usr/bin/python3 has no numpy/PIL (python3-numpy, python3-pil) to write the images");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, MAKE_IMAGES);
    FILE *f = fopen(tpath("mk.py"), "w");
    REQUIRE(f);
    fputs(cmd, f);
    fclose(f);
    REQUIRE(t_sh("/usr/bin/python3 '%s' '%s'", tpath("mk.py"), t_tmpdir()) == 0);
    err e = {0};
    image im;
    // accepted kinds: each loads as 8-bit RGB of its size
    static const struct { const char *file; int w, h; } ok[] = {
        { "px1.png", 1, 1 }, { "g16.png", 48, 32 }, { "pal.png", 48, 32 }, { "la.png", 48, 32 }, { "prog.jpg", 48, 32 },
        { "one.webp", 48, 32 },
    };
    for (size_t k = 0; k < sizeof ok / sizeof *ok; k++) {
        int rc = load_rgb(ok[k].file, &im, &e);
        n_cases++;
        CHECK(rc == 0 && im.w == ok[k].w && im.h == ok[k].h && im.c == 3, "%s: %d %s", ok[k].file, rc, rc ? e.msg : "");
        if (!rc) image_free(&im);
    }
    int rc = load_rgb("cmyk.jpg", &im, &e);
    expect("CMYK JPEG", rc, OODSEG_E_FORMAT, &e, "cmyk.jpg", "CMYK", NULL);
    if (!rc) image_free(&im);
    // truncated files of each format
    static const char *const full[] = { "one.png", "one.jpg", "one.webp" };
    for (int k = 0; k < 3; k++) {
        size_t n = 0;
        char *b = t_slurp(tpath(full[k]), &n);
        REQUIRE(b);
        char name[64];
        snprintf(name, sizeof name, "cut-%s", full[k]);
        wfile(name, b, n / 2);
        free(b);
        rc = load_rgb(name, &im, &e);
        expect("truncated image", rc, OODSEG_E_FORMAT, &e, name, NULL, NULL);
        if (!rc) image_free(&im);
    }
    // headers (valid CRCs): 0x0, and 100,000 x 100,000, refused before any pixel buffer
    expect("a 0x0 PNG", load_rgb("zero.png", &im, &e), OODSEG_E_FORMAT, &e, "zero.png", NULL, NULL);
    rc = load_rgb("bomb.png", &im, &e);
    expect("a 100,000 x 100,000 PNG header", rc, OODSEG_E_NOMEM, &e, "bomb.png", "memory limit", "downscale");
    if (!rc) image_free(&im);
    expect("not an image", load_rgb(wfile("text.png", "just text", 9) + strlen(t_tmpdir()) + 1, &im, &e), OODSEG_E_FORMAT, &e, "text.png", NULL, NULL);
}

// ---- labels and score maps --------------------------------------------------------------------
// A generic dataset of one image whose label is `label`; values 0 ID, 1 OoD, 255 ignore only.
static int one_item(const char *label, dataset *ds, err *e) {
    char gi[1024], gl[1024];
    snprintf(gi, sizeof gi, "%s", tpath("gi"));
    snprintf(gl, sizeof gl, "%s", tpath("gl"));
    t_sh("rm -rf '%s' '%s' && mkdir -p '%s' '%s' && cp '%s' '%s/a.png' && cp '%s' '%s/a.png'", gi, gl, gi, gl,
         tpath("one.png"), gi, tpath(label), gl);
    ds_generic g = { gi, gl, NULL, "1", "255", "0" };
    return dataset_open("generic", &g, ds, e);
}

TEST(label_and_score_map_cases) {
    if (!t_python_has("numpy PIL")) SKIP("/usr/bin/python3 has no numpy/PIL");
    err e = {0};
    dataset ds;
    image lab;
    REQUIRE(one_item("small.png", &ds, &e) == 0, "%s", e.msg);
    expect("label of the wrong size", dataset_load_label(&ds, 0, 48, 32, &lab, &e), OODSEG_E_DATA, &e, "a.png", "48x32", "must have its image's size");
    dataset_free(&ds);
    REQUIRE(one_item("lab.png", &ds, &e) == 0, "%s", e.msg);
    expect("label with undefined values", dataset_load_label(&ds, 0, 48, 32, &lab, &e), OODSEG_E_DATA, &e, "a.png", "unknown label value 2", "right --dataset layout");
    dataset_free(&ds);
    REQUIRE(one_item("rgblab.png", &ds, &e) == 0, "%s", e.msg);
    expect("an RGB label", dataset_load_label(&ds, 0, 48, 32, &lab, &e), OODSEG_E_DATA, &e, "a.png", "one channel", "gray or palette");
    dataset_free(&ds);
    // score maps: wrong shape, complex dtype, big-endian, Fortran order; NaN and inf
    float *s = NULL;
    static const struct { const char *stem, *m1, *m2; int code; } c[] = {
        { "big", "big.npy", "33", OODSEG_E_DATA },
        { "c8", "c8.npy", "c8", OODSEG_E_FORMAT },
        { "be", "be.npy", "byteorder", OODSEG_E_FORMAT },
        { "f", "f.npy", "Fortran", OODSEG_E_FORMAT },
    };
    for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
        int rc = load_score_map(t_tmpdir(), c[k].stem, NULL, 48, 32, "lab.png", &s, &e);
        expect(c[k].stem, rc, c[k].code, &e, c[k].m1, c[k].m2, NULL);
        if (!rc) free(s);
        s = NULL;
    }
    uint8_t *labels = calloc(48 * 32, 1);
    labels[0] = 1;
    static const char *const nonfinite[] = { "nan", "inf" };
    for (int k = 0; k < 2; k++) {
        int rc = load_score_map(t_tmpdir(), nonfinite[k], NULL, 48, 32, "lab.png", &s, &e);
        metrics_result r;
        memset(&r, 0, sizeof r);
        if (!rc) rc = metrics_compute(s, labels, 48 * 32, FPR_FIRST_GE, 0, &r, &e);
        if (!rc) metrics_result_free(&r);
        free(s);
        s = NULL;
        // NaN is refused naming the pixel; +inf is a valid (maximal) score
        if (k == 0) expect("score map with NaN", rc, OODSEG_E_DATA, &e, "NaN", "pixel", "nan");   // the file named
        else expect("score map with inf", rc, OODSEG_OK, &e, NULL, NULL, NULL);
    }
    free(labels);
}

// ---- dataset folders --------------------------------------------------------------------------
TEST(dataset_folder_cases) {
    err e = {0};
    dataset ds;
    char r[1024];
    snprintf(r, sizeof r, "%s", tpath("dsf"));
    t_sh("rm -rf '%s' && mkdir -p '%s/images' '%s/labels_masks'", r, r, r);
    char spec[1200];
    snprintf(spec, sizeof spec, "smiyc-anomaly:%s", r);
    expect("an empty image folder", dataset_open(spec, NULL, &ds, &e), OODSEG_E_DATA, &e, "images", "empty folder", NULL);
    t_sh("touch '%s/images/a.jpg'", r);
    expect("an unpaired image", dataset_open(spec, NULL, &ds, &e), OODSEG_E_DATA, &e, "a.jpg", "unpaired image", "a_labels_semantic.png");
    t_sh("touch '%s/labels_masks/a_labels_semantic.png' '%s/labels_masks/b_labels_semantic.png'", r, r);
    expect("an unpaired label", dataset_open(spec, NULL, &ds, &e), OODSEG_E_DATA, &e, "b_labels_semantic.png", "unpaired label", NULL);
    t_sh("rm '%s/labels_masks/b_labels_semantic.png' && ln -s loop2.jpg '%s/images/loop1.jpg' && ln -s loop1.jpg '%s/images/loop2.jpg'", r, r, r);
    int rc = dataset_open(spec, NULL, &ds, &e);
    expect("a symlink loop among the images (skipped, not followed)", rc, OODSEG_OK, &e, NULL, NULL, NULL);
    if (!rc) { CHECK(ds.n == 1, "%d items", ds.n); dataset_free(&ds); }
    image im;
    expect("a symlink loop as an image", image_load_rgb(tpath("dsf/images/loop1.jpg"), &im, &e), OODSEG_E_IO, &e, "loop1.jpg", NULL, NULL);
    t_sh("rm -rf '%s/labels_masks' && touch '%s/labels_masks'", r, r);
    expect("a file where the label folder belongs", dataset_open(spec, NULL, &ds, &e), OODSEG_E_DATA, &e, "labels_masks", "label folder missing", NULL);
    expect("a folder where an image belongs", image_load_rgb(r, &im, &e), OODSEG_E_IO, &e, "dsf", "a directory", NULL);
}

// ---- metric shard states ----------------------------------------------------------------------
static int merge_one(const char *p, err *e) {
    const char *paths[1] = { p };
    int ns = 0;
    char names[MSTATE_MAX_SECTIONS][MSTATE_NAME], meta[64];
    metrics_result r[MSTATE_MAX_SECTIONS];
    int rc = mstate_merge(paths, 1, FPR_FIRST_GE, 0, NULL, &ns, names, r, meta, sizeof meta, e);
    for (int s = 0; !rc && s < ns; s++) metrics_result_free(&r[s]);
    return rc;
}

TEST(state_cases) {
    err e = {0};
    expect("not a state file", merge_one(wfile("notes.state", "hello", 5), &e), OODSEG_E_FORMAT, &e, "notes.state", "--save-state", NULL);
    // a header, one section of 2 runs declared, cut inside the first run
    unsigned char b[128] = "OODSEGMS\x02\0\0\0\x01\0\0\0\0\0\0\0a";
    size_t n = 20 + 32;
    b[n] = 1; b[n + 8] = 1; b[n + 16] = 2;
    n += 24;
    b[n++] = 5;
    expect("a state cut inside a run", merge_one(wfile("cut.state", b, n), &e), OODSEG_E_FORMAT, &e, "cut.state", "truncated", "re-run that shard");
    t_sh("rm -f '%s' && mkfifo '%s'", tpath("fifo.state"), tpath("fifo.state"));
    expect("a named pipe as a state", merge_one(tpath("fifo.state"), &e), OODSEG_E_IO, &e, "fifo.state", "named pipe", NULL);
}

// ---- the memory limit (--max-memory), through the CLI -----------------------------------------
static char g_cli[1024];

// Runs `oodseg ARGS` (no shell quoting needed in ARGS), its stderr into e->msg; returns the exit status.
static int cli(err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cli(err *e, const char *fmt, ...) {
    char args[3000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    const char *log = tpath("cli.log");
    int rc = t_sh("'%s' %s >/dev/null 2>'%s'", g_cli, args, log);
    size_t n = 0;
    char *m = t_slurp(log, &n);
    snprintf(e->msg, sizeof e->msg, "%s", m ? m : "");
    free(m);
    e->code = rc;
    return rc;
}

// One tensor of n elements of dtype dt (esz bytes each), zeros.
static const char *st_one(const char *name, const char *dt, int esz, int64_t n) {
    char hdr[200];
    int hl = snprintf(hdr, sizeof hdr, "{\"w\":{\"dtype\":\"%s\",\"shape\":[%lld],\"data_offsets\":[0,%lld]}}", dt,
                      (long long)n, (long long)(n * esz));
    size_t total = 8 + (size_t)(hl + 7) / 8 * 8 + (size_t)(n * esz);
    unsigned char *b = calloc(1, total);
    if (!b) return tpath(name);
    size_t len = st_file(b, hdr, NULL, 0);
    const char *p = wfile(name, b, len + (size_t)(n * esz));
    free(b);
    return p;
}

TEST(memory_limit_cases) {
    if (access(g_cli, X_OK)) SKIP("no CLI at %s (make cli)", g_cli);
    ASSET_OR_SKIP(img, "data/camvid-ood/test_ood/0001TP_008550.png");
    err e = {0};
    // a 16000 x 16000 PNG header (a few dozen bytes; 7.6 GiB at 32 bytes a pixel) under 256 MiB
    REQUIRE(t_sh("/usr/bin/python3 -c \"import struct, zlib, sys\n"
                 "def ch(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))\n"
                 "open(sys.argv[1], 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + ch(b'IHDR', struct.pack('>IIBBBBB', 16000, 16000, 8, 2, 0, 0, 0)) "
                 "+ ch(b'IDAT', zlib.compress(b'')) + ch(b'IEND', b''))\" '%s'", tpath("huge16k.png")) == 0);
    int rc = cli(&e, "score --max-memory 256M -o '%s' '%s'", tpath("out16k"), tpath("huge16k.png"));
    expect("a 16000 x 16000 PNG header under --max-memory 256M", rc, OODSEG_E_NOMEM, &e, "16000x16000",
           "memory limit of 256 MiB", "--max-memory");
    // the default model at --size 16000x16000 under 1G: refused before the forward, with its estimate
    rc = cli(&e, "forward --max-memory 1G --size 16000x16000 --save '%s' '%s'", tpath("f.safetensors"), img);
    expect("a forward at --size 16000x16000 under --max-memory 1G", rc, OODSEG_E_NOMEM, &e, "GiB of activations",
           "memory limit of 1.00 GiB", "smaller --size");
    CHECK(access(tpath("f.safetensors"), F_OK) != 0, "a refused forward left its output");
    // checkpoints: float32 conversion over the limit; the file itself over it; the pickles' budget
    rc = cli(&e, "info --max-memory 5M '%s'", st_one("f16.safetensors", "F16", 2, 1 << 20));
    expect("an F16 checkpoint whose float32 copy exceeds --max-memory", rc, OODSEG_E_NOMEM, &e, "f16.safetensors",
           "float32 copy", "--max-memory");
    rc = cli(&e, "info --max-memory 3M '%s'", st_one("f32.safetensors", "F32", 4, 1 << 20));
    expect("a 4 MiB checkpoint under --max-memory 3M", rc, OODSEG_E_NOMEM, &e, "f32.safetensors", "needs 4.00 MiB",
           "memory limit of 3.00 MiB");
    const char *legacy = t_asset("golden/tiny-t/model-legacy.pth");
    if (legacy) {
        rc = cli(&e, "info --max-memory 3M '%s'", legacy);
        expect("a legacy checkpoint's pickles beyond what --max-memory leaves", rc, OODSEG_E_NOMEM, &e, "model-legacy.pth",
               "pickle", "raise --max-memory");
    }
    // a .npy array and its float32 copy over the limit (the library's reader)
    float *z = calloc(512 * 1024, sizeof(float));
    REQUIRE(z);
    npy_write_f32(tpath("big.npy"), z, 2, (int64_t[]){512, 1024}, &e);
    free(z);
    npy_array a;
    rc = npy_read_limit(tpath("big.npy"), (uint64_t)3 << 20, &a, &e);
    expect("a .npy array over the limit", rc, OODSEG_E_NOMEM, &e, "big.npy", "[512, 1024]", "memory limit of 3.00 MiB");
    if (!rc) npy_free(&a);
    // bad sizes
    rc = cli(&e, "info --max-memory 8X '%s'", legacy ? legacy : img);
    expect("--max-memory 8X", rc, OODSEG_E_ARG, &e, "--max-memory '8X'", "8G, 512M", NULL);
    rc = cli(&e, "info --max-memory 100 '%s'", legacy ? legacy : img);
    expect("--max-memory 100 (bytes)", rc, OODSEG_E_ARG, &e, "--max-memory '100'", "at least 1M", NULL);
}

// Counts the entries of a folder (not . and ..) and those with ".tmp." in their names.
static int folder_entries(const char *dir, int *tmp) {
    DIR *d = opendir(dir);
    int n = 0;
    *tmp = 0;
    if (!d) return -1;
    for (struct dirent *de; (de = readdir(d));) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        n++;
        if (strstr(de->d_name, ".tmp.")) (*tmp)++;
    }
    closedir(d);
    return n;
}

// Output folders that cannot take the outputs: a full disk (writes failing part way, injected with
// a file-size limit: EFBIG where a full disk gives ENOSPC, through the same write path), an output
// "folder" that is a file, and a folder without write permission. Each is a clear error naming the
// file, and no truncated or temporary file is left behind.
TEST(output_folder_cases) {
    if (access(g_cli, X_OK)) SKIP("no CLI at %s (make cli)", g_cli);
    ASSET_OR_SKIP(img, "data/camvid-ood/test_ood/0001TP_008550.png");
    err e = {0};
    const char *out = tpath("full-disk");
    const char *log = tpath("cli.log");
    // SIGXFSZ ignored (as a full disk raises no signal), 100 KB per file: the 2.7 MB score map fails.
    int rc = t_sh("sh -c \"trap '' XFSZ; ulimit -f 200; exec '%s' score --method maxlogit -o '%s' '%s'\" "
                  ">/dev/null 2>'%s'", g_cli, out, img, log);
    char *m = t_slurp(log, &(size_t){0});
    snprintf(e.msg, sizeof e.msg, "%s", m ? m : "");
    free(m);
    expect("a full disk while writing the score map", rc, OODSEG_E_IO, &e, "0001TP_008550_maxlogit_score.npy",
           "failed", "free space");
    int tmp, n = folder_entries(out, &tmp);
    CHECK(n == 0 && tmp == 0, "the full disk left %d files (%d temporary) in %s", n, tmp, out);
    // -o names a file
    const char *afile = wfile("not-a-folder", (const unsigned char *)"x", 1);
    rc = cli(&e, "score --method maxlogit -o '%s' '%s'", afile, img);
    expect("-o naming a file", rc, OODSEG_E_IO, &e, "not-a-folder", "Not a directory", NULL);
    // a folder without write permission (root writes anyway: then there is nothing to check)
    const char *ro = tpath("read-only");
    REQUIRE(mkdir(ro, 0555) == 0 || access(ro, F_OK) == 0);
    if (geteuid() != 0) {
        rc = cli(&e, "score --method maxlogit -o '%s' '%s'", ro, img);
        expect("a read-only output folder", rc, OODSEG_E_IO, &e, "read-only", "Permission denied", NULL);
        n = folder_entries(ro, &tmp);
        CHECK(n == 0, "the read-only folder got %d files", n);
    } else {
        fprintf(stderr, "  (root: the read-only folder case needs an unprivileged user; not run)\n");
    }
    chmod(ro, 0755);
    // a named pipe as a calibration file (--scale calibrated:FILE): refused at once, never blocking
    t_sh("rm -f '%s' && mkfifo '%s'", tpath("fifo.cal"), tpath("fifo.cal"));
    rc = cli(&e, "score --method maxlogit --scale calibrated:'%s' -o '%s' '%s'", tpath("fifo.cal"), tpath("o-cal"), img);
    expect("a named pipe as --scale calibrated:FILE", rc, OODSEG_E_IO, &e, "fifo.cal", "named pipe", "regular file");
}

int main(int argc, char **argv) {
    (void)argc;
    snprintf(g_cli, sizeof g_cli, "%s", t_cli_path(argv[0]));
    RUN(safetensors_cases);
    RUN(truncation_at_every_byte);
    RUN(pickle_cases);
    RUN(zip_cases);
    RUN(npy_cases);
    RUN(image_cases);
    RUN(label_and_score_map_cases);
    RUN(dataset_folder_cases);
    RUN(state_cases);
    RUN(memory_limit_cases);
    RUN(output_folder_cases);
    printf("  %d catalogue cases\n", n_cases);
    return t_finish(argv[0]);
}
