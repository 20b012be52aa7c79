// The fuzz targets (see targets.h). Parsers that take a buffer are called on the input itself,
// so that AddressSanitizer sees any read past its end; those that take a path get the input
// written to a file in a private temporary folder, and go through the same opening code as a
// user's file. Every target keeps its own limits small (the image pixel cap) so that one input
// stays fast; the limits are parameters of the parsers, so nothing is skipped.
#include "targets.h"
#include "../io/pickle.h"
#include "../io/npy.h"
#include "../io/image.h"
#include "../core/json.h"
#include "../eval/datasets.h"
#include "../eval/mstate.h"
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// ---- a private temporary folder, removed at exit ----------------------------------------------
static char tmp_root[256];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)flag; (void)ftw;
    return remove(p) == 0 ? 0 : 0;
}
static void rm_tree(const char *dir) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }
static void tmp_cleanup(void) { if (tmp_root[0]) rm_tree(tmp_root); }

// The folder, made once per process (tmpfs when there is one: the file targets write per input).
static const char *tmp_dir(void) {
    if (tmp_root[0]) return tmp_root;
    const char *base = getenv("TMPDIR");
    struct stat st;
    if (!base || !*base) base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
    snprintf(tmp_root, sizeof tmp_root, "%s/oodseg-fuzz-XXXXXX", base);
    if (!mkdtemp(tmp_root)) { perror("fuzz: mkdtemp"); abort(); }
    atexit(tmp_cleanup);
    return tmp_root;
}

static const char *tmp_file(const char *name, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s", tmp_dir(), name);
    return buf;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); abort(); }
    if (n && fwrite(data, 1, n, f) != n) { perror(path); abort(); }
    fclose(f);
}

static void make_dir(const char *path) {
    if (mkdir(path, 0700) != 0 && errno != EEXIST) { perror(path); abort(); }
}

// Reads every element, so that a tensor pointing outside the input shows up under ASan.
static volatile float sink;
static void touch_ckpt(const ckpt *ck) {
    float s = 0;
    for (int k = 0; k < ck->n; k++) {
        const ckpt_entry *en = &ck->e[k];
        if (en->f32) for (int64_t i = 0; i < en->numel; i++) s += en->f32[i];
        else if (en->raw && en->numel) {
            const unsigned char *r = en->raw;
            s += r[0] + r[en->numel * (int64_t)dtype_size(en->src_dtype) - 1];
        }
    }
    sink = s;
}

// ---- checkpoints and the pickle machine -------------------------------------------------------
typedef int (*ck_loader)(ckpt *ck, const unsigned char *buf, size_t len, err *e);

static int run_ckpt(ck_loader load, const char *name, const uint8_t *d, size_t n) {
    err e = {0};
    ckpt *ck = ck_alloc(name, "fuzz", &e);
    if (!ck) return e.code;
    int rc = load(ck, d, n, &e);
    if (!rc) touch_ckpt(ck);
    ckpt_close(ck);
    return rc;
}

static int t_safetensors(const uint8_t *d, size_t n) { return run_ckpt(safetensors_load, "fuzz.safetensors", d, n); }
static int t_zip(const uint8_t *d, size_t n) { return run_ckpt(pth_zip_load, "fuzz-zip.pth", d, n); }
static int t_pth_legacy(const uint8_t *d, size_t n) { return run_ckpt(pth_legacy_load, "fuzz-legacy.pth", d, n); }

// The pickles of a stream one after the other (a legacy file holds five), in one machine.
static int t_pickle(const uint8_t *d, size_t n) {
    pk_vm vm;
    pk_init(&vm, "fuzz.pkl", n);
    err e = {0};
    size_t pos = 0;
    int rc = OODSEG_OK;
    for (int k = 0; k < 5 && pos < n && !rc; k++) {
        pk_value *top = NULL;
        size_t end = 0;
        rc = pk_run(&vm, d, n, pos, "pickle", &top, &end, &e);
        if (!rc) {
            const pk_value *sd = pk_find_state_dict(top);
            if (sd) sink = (float)sd->n;
            if (end <= pos) abort();   // the machine must move forward
            pos = end;
        }
    }
    pk_release(&vm);
    return rc;
}

// ---- .npy, JSON, images -----------------------------------------------------------------------
static int t_npy(const uint8_t *d, size_t n) {
    char p[320];
    write_bytes(tmp_file("fuzz.npy", p, sizeof p), d, n);
    err e = {0};
    npy_array a;
    memset(&a, 0, sizeof a);
    int rc = npy_read(p, &a, &e);
    if (!rc) {
        float *f = npy_to_f32(&a, &e);
        if (f && a.numel) sink = f[0] + f[a.numel - 1];
        free(f);
        uint8_t *u = npy_to_u8(&a, &e);
        if (u && a.numel) sink = u[0] + u[a.numel - 1];
        free(u);
        npy_free(&a);
    }
    return rc;
}

static int json_walk(const json *j, int depth) {
    int c = 1;
    if (j->type == JSON_STRING) sink = (float)strlen(j->str);
    if (j->type == JSON_ARRAY || j->type == JSON_OBJECT)
        for (int i = 0; i < j->n; i++) c += json_walk(&j->items[i], depth + 1);
    if (j->type == JSON_OBJECT && j->n) sink = (float)strlen(j->keys[j->n - 1]) + (json_get(j, "dtype") != NULL);
    return c;
}

static int t_json(const uint8_t *d, size_t n) {
    err e = {0};
    json *j = json_parse((const char *)d, n, "fuzz.json", &e);
    if (!j) return e.code;
    sink = (float)json_walk(j, 0);
    json_free(j);
    return OODSEG_OK;
}

// One small pixel cap: a header claiming more is refused before decoding (that path is the one
// under test), and an input stays fast.
#define FUZZ_MAX_PIXELS ((int64_t)1 << 20)

static int t_image(const uint8_t *d, size_t n) {
    char p[320];
    write_bytes(tmp_file("fuzz-image", p, sizeof p), d, n);
    err e = {0};
    image im = {0};
    int rc = image_load_rgb_max(p, FUZZ_MAX_PIXELS, &im, &e);
    if (!rc) { sink = im.px[(size_t)im.w * im.h * im.c - 1]; image_free(&im); }
    err e2 = {0};
    int rc2 = image_load_label_max(p, FUZZ_MAX_PIXELS, &im, &e2);
    if (!rc2) { sink = im.px[(size_t)im.w * im.h * im.c - 1]; image_free(&im); }
    return rc ? rc : rc2;
}

// ---- dataset lists ----------------------------------------------------------------------------
// A dataset folder made once: a roadanomaly frame with its label and one without, and the same
// for camvid-ood, so that a list naming them gets past the existence checks to the pairing.
static char ds_root[320];

static void ds_setup(void) {
    if (ds_root[0]) return;
    tmp_file("ds", ds_root, sizeof ds_root);
    const char *dirs[] = { "", "/frames", "/frames/a.labels", "/test_ood", "/testannot_ood" };
    char p[512];
    for (size_t k = 0; k < sizeof dirs / sizeof *dirs; k++) {
        snprintf(p, sizeof p, "%s%s", ds_root, dirs[k]);
        make_dir(p);
    }
    uint8_t px[4] = { 0, 2, 255, 0 };
    image lab = { 2, 2, 1, px };
    err e = {0};
    const char *labels[] = { "/frames/a.labels/labels_semantic.png", "/testannot_ood/a.png" };
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s%s", ds_root, labels[k]);
        if (image_save_png(p, &lab, &e)) { fprintf(stderr, "%s\n", e.msg); abort(); }
    }
    const char *files[] = { "/frames/a.jpg", "/frames/b.jpg", "/test_ood/a.png", "/test_ood/b.png" };
    for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
        snprintf(p, sizeof p, "%s%s", ds_root, files[k]);
        write_bytes(p, "x", 1);
    }
}

// After opening: selection, and each item's label (a load error is fine, a crash is not).
static int ds_use(dataset *ds, const uint8_t *d, size_t n) {
    err e = {0};
    int limit = n > 1 ? d[1] % 4 : 0, sn = n > 2 ? d[2] % 3 : 0, si = sn ? (n > 3 ? d[3] % sn : 0) : 0;
    int rc = dataset_select(ds, limit, si, sn, &e);
    for (int i = 0; !rc && i < ds->n && i < 4; i++) {
        image im;
        if (dataset_load_label(ds, i, 0, 0, &im, &e) == OODSEG_OK) image_free(&im);
    }
    dataset_free(ds);
    return rc;
}

// Files named by the input's lines, made empty in a fresh image and label folder: a line starting
// with '#' names a label, any other an image ('/' and NUL dropped, "." and ".." skipped).
static void ds_make_files(const char *root, const char *img_dir, const char *lab_dir, const uint8_t *d, size_t n) {
    rm_tree(root);
    make_dir(root);
    char p[600], name[96];
    snprintf(p, sizeof p, "%s/%s", root, img_dir); make_dir(p);
    snprintf(p, sizeof p, "%s/%s", root, lab_dir); make_dir(p);
    size_t i = 0;
    for (int files = 0; i < n && files < 32; files++) {
        int lab = d[i] == '#';
        if (lab) i++;
        size_t k = 0;
        for (; i < n && d[i] != '\n'; i++)
            if (d[i] != '/' && d[i] != 0 && k < sizeof name - 1) name[k++] = (char)d[i];
        i++;
        name[k] = 0;
        if (!k || !strcmp(name, ".") || !strcmp(name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s/%s", root, lab ? lab_dir : img_dir, name);
        write_bytes(p, "", 0);
    }
}

// The first byte picks what the rest is: 0 a frame_list.json, 1 a test_ood.txt, 2 and 3 the file
// names of a folder layout (smiyc, fishyscapes), 4 the same for the generic layout, 5 the generic
// layout's value lists "ood\nignore\nid".
static int t_datasets(const uint8_t *d, size_t n) {
    if (n < 1) return OODSEG_OK;
    ds_setup();
    int mode = d[0] % 6;
    const uint8_t *r = d + 1;
    size_t rn = n - 1;
    char p[600], spec[700];
    err e = {0};
    dataset ds;
    int rc;
    if (mode <= 1) {
        snprintf(p, sizeof p, "%s/%s", ds_root, mode == 0 ? "frame_list.json" : "test_ood.txt");
        write_bytes(p, r, rn);
        snprintf(spec, sizeof spec, "%s:%s", mode == 0 ? "roadanomaly" : "camvid-ood", ds_root);
        rc = dataset_open(spec, NULL, &ds, &e);
        remove(p);
        return rc ? rc : ds_use(&ds, d, n);
    }
    if (mode <= 4) {
        char root[400];
        tmp_file("dsdirs", root, sizeof root);
        const char *idir = mode == 2 ? "images" : mode == 3 ? "original" : "img";
        const char *ldir = mode == 2 ? "labels_masks" : mode == 3 ? "labels" : "lab";
        ds_make_files(root, idir, ldir, r, rn);
        char gi[600], gl[600];
        snprintf(gi, sizeof gi, "%s/%s", root, idir);
        snprintf(gl, sizeof gl, "%s/%s", root, ldir);
        ds_generic g = { gi, gl, "_l", "1", "255", NULL };
        snprintf(spec, sizeof spec, "%s:%s", mode == 2 ? "smiyc-anomaly" : "fishyscapes-laf", root);
        rc = dataset_open(mode == 4 ? "generic" : spec, mode == 4 ? &g : NULL, &ds, &e);
        return rc ? rc : ds_use(&ds, d, n);
    }
    char lists[3][128] = { "", "", "" };
    for (size_t i = 0, l = 0, k = 0; i < rn && l < 3; i++) {
        if (r[i] == '\n') { l++; k = 0; continue; }
        if (k < sizeof lists[0] - 1) { lists[l][k++] = r[i] ? (char)r[i] : ','; lists[l][k] = 0; }
    }
    ds_generic g = { "i", "l", NULL, lists[0], lists[1][0] ? lists[1] : NULL, lists[2][0] ? lists[2] : NULL };
    uint8_t map[256];
    char doc[128];
    return dataset_convention("generic", &g, map, doc, sizeof doc, NULL, &e);
}

// ---- metric shard states ----------------------------------------------------------------------
// The input as one state; when it is a valid one, also merged with itself (the k-way merge of two
// sources) with the merged state written (the writer's path). Then its metadata alone.
static int t_mstate(const uint8_t *d, size_t n) {
    char p[320], q[320];
    write_bytes(tmp_file("fuzz.state", p, sizeof p), d, n);
    tmp_file("merged.state", q, sizeof q);
    err e = {0};
    int ns = 0;
    char names[MSTATE_MAX_SECTIONS][MSTATE_NAME], meta[256];
    metrics_result res[MSTATE_MAX_SECTIONS];
    const char *paths[2] = { p, p };
    int rc = OODSEG_OK;
    for (int k = 1; k <= 2 && !rc; k++) {
        int r = mstate_merge(paths, k, (fpr_conv)(n % 3), 1, k == 2 ? q : NULL, &ns, names, res, meta, sizeof meta, &e);
        if (!r) for (int s = 0; s < ns; s++) metrics_result_free(&res[s]);
        if (k == 1) rc = r;
    }
    remove(q);
    mstate_read_meta(p, meta, sizeof meta, &e);
    return rc;
}

const fuzz_target fuzz_targets[] = {
    { "pickle", t_pickle },
    { "pth_legacy", t_pth_legacy },
    { "zip", t_zip },
    { "safetensors", t_safetensors },
    { "npy", t_npy },
    { "json", t_json },
    { "image", t_image },
    { "datasets", t_datasets },
    { "mstate", t_mstate },
};
const int fuzz_n_targets = (int)(sizeof fuzz_targets / sizeof *fuzz_targets);

const fuzz_target *fuzz_find(const char *name) {
    for (int k = 0; k < fuzz_n_targets; k++)
        if (!strcmp(fuzz_targets[k].name, name)) return &fuzz_targets[k];
    return NULL;
}
