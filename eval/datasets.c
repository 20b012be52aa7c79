// Dataset layouts (see datasets.h): listing, pairing, validation and label mapping.
#include "datasets.h"
#include "../io/video.h"
#include "../core/json.h"
#include "../io/file.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef enum { K_ROADANOMALY, K_DIRS, K_CAMVID, K_GENERIC } layout_kind;

typedef struct layout {
    const char *name;
    layout_kind kind;
    const char *img_dirs[3];    // K_DIRS: first that exists
    const char *img_ext;        // accepted image extensions, '|'-separated
    const char *lab_dir;
    const char *lab_suffix[3];  // label = lab_dir/<stem><suffix>, first that exists
    const char *ood, *ignore, *id;   // label values; id NULL: every other value is ID
    const char *doc;
    int smiyc_track;
} layout;

static const layout layouts[] = {
    {"roadanomaly", K_ROADANOMALY, {"frames"}, "jpg", "frames", {".labels/labels_semantic.png"},
     "2", "255", "0", "0 ID, 2 OoD, 255 ignore", 0},
    {"smiyc-anomaly", K_DIRS, {"images"}, "jpg|jpeg|webp|png", "labels_masks", {"_labels_semantic.png"},
     "1", "255", "0", "0 ID, 1 OoD, 255 void", 1},
    {"smiyc-obstacle", K_DIRS, {"images"}, "jpg|jpeg|webp|png", "labels_masks", {"_labels_semantic.png"},
     "1", "255", "0", "0 ID, 1 OoD, 255 void", 2},
    {"fishyscapes-laf", K_DIRS, {"original", "images"}, "png|jpg|webp", "labels", {".png", "_labels.png"},
     "1", "255", "0", "0 ID, 1 OoD, 255 void", 0},
    {"fishyscapes-static", K_DIRS, {"original", "images"}, "png|jpg|webp", "labels", {".png", "_labels.png"},
     "1", "255", "0", "0 ID, 1 OoD, 255 void", 0},
    {"camvid-ood", K_CAMVID, {NULL}, NULL, NULL, {NULL},
     "12", "11", "0-10", "0..10 ID, 11 void, 12 OoD", 0},
    {"ade-ood", K_DIRS, {"images"}, "jpg|jpeg|png", "annotations", {"_mask.png"},
     "1", "255", "0", "0 ID, 1 OoD, 255 ignore", 0},
    {"generic", K_GENERIC, {NULL}, "jpg|jpeg|png|webp", NULL, {NULL}, NULL, NULL, NULL, "", 0},
};
#define N_LAYOUTS (int)(sizeof layouts / sizeof *layouts)

const char *dataset_help(void) {
    return "datasets (--dataset NAME:PATH):\n"
           "  roadanomaly:P         P/frame_list.json, P/frames/<stem>.jpg, P/frames/<stem>.labels/labels_semantic.png (0 ID, 2 OoD)\n"
           "  smiyc-anomaly:P       P/images/<stem>.{jpg,webp}, P/labels_masks/<stem>_labels_semantic.png (0 ID, 1 OoD, 255 void)\n"
           "  smiyc-obstacle:P      same layout as smiyc-anomaly (obstacle-track component sizes)\n"
           "  fishyscapes-laf:P     P/original/<stem>.png (or P/images/), P/labels/<stem>.png or <stem>_labels.png (0 ID, 1 OoD, 255 void)\n"
           "  fishyscapes-static:P  same layout as fishyscapes-laf\n"
           "  camvid-ood:P          P/test_ood.txt lines 'test_ood/<stem>.png testannot_ood/<stem>.png' (0..10 ID, 11 void, 12 OoD)\n"
           "  ade-ood:P             P/images/<stem>.jpg, P/annotations/<stem>_mask.png (0 ID, 1 OoD, 255 ignore)\n"
           "  generic               --images DIR --labels DIR [--label-suffix S] --ood V,.. [--ignore V,..] [--id V,..]\n"
           "                        (--images VIDEO: the frames with a label <video-stem>_f<index>S.png in --labels)\n";
}

// ---- small helpers ---------------------------------------------------------------------------
static int is_file(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISREG(st.st_mode); }
static int is_dir(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISDIR(st.st_mode); }

static char *join(const char *a, const char *b, const char *c) {
    size_t n = strlen(a) + strlen(b) + (c ? strlen(c) : 0) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s%s", a, b, c ? c : "");
    return s;
}

static const char *ext_of(const char *name) {
    const char *d = strrchr(name, '.');
    return d && d != name ? d + 1 : "";
}

static int ext_ok(const char *name, const char *exts) {
    const char *x = ext_of(name);
    size_t lx = strlen(x);
    if (!lx) return 0;
    for (const char *p = exts; *p;) {
        const char *q = strchr(p, '|');
        size_t l = q ? (size_t)(q - p) : strlen(p);
        if (l == lx && strncasecmp(p, x, l) == 0) return 1;
        p += l + (q ? 1 : 0);
    }
    return 0;
}

static char *stem_of(const char *path) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    const char *d = strrchr(b, '.');
    size_t n = d && d != b ? (size_t)(d - b) : strlen(b);
    char *s = malloc(n + 1);
    if (s) { memcpy(s, b, n); s[n] = 0; }
    return s;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// A list file's path must stay inside the dataset folder: relative, and no component "..". (A
// symbolic link inside the folder is the dataset owner's choice and is followed.)
static int escapes_root(const char *rel) {
    if (rel[0] == '/') return 1;
    for (const char *p = rel; *p;) {
        size_t l = strcspn(p, "/");
        if (l == 2 && p[0] == '.' && p[1] == '.') return 1;
        p += l;
        while (*p == '/') p++;
    }
    return 0;
}

// A list's entries must name distinct items: outputs are named by stem, and an entry listed twice
// would count its pixels twice in the metrics. where[i] is item i's place in the list (a line or
// an entry number), for the message.
typedef struct stem_at { const char *stem; int where; } stem_at;
static int cmp_stem_at(const void *a, const void *b) {
    const stem_at *x = a, *y = b;
    int c = strcmp(x->stem, y->stem);
    return c ? c : (x->where > y->where) - (x->where < y->where);
}
static int check_unique(const dataset *ds, const int *where, const char *list, const char *unit, err *e) {
    if (ds->n < 2) return OODSEG_OK;
    stem_at *v = malloc((size_t)ds->n * sizeof *v);
    if (!v) return err_set(e, OODSEG_E_NOMEM, "%s: out of memory", list);
    for (int i = 0; i < ds->n; i++) v[i] = (stem_at){ ds->items[i].stem, where[i] };
    qsort(v, (size_t)ds->n, sizeof *v, cmp_stem_at);
    int rc = OODSEG_OK;
    for (int i = 1; i < ds->n && !rc; i++)
        if (!strcmp(v[i - 1].stem, v[i].stem))
            rc = err_set(e, OODSEG_E_DATA, "%s: %s %d and %s %d both name the image '%s'; an image must be listed "
                         "once (it would count twice in the metrics and its outputs would overwrite each other): "
                         "remove the duplicate", list, unit, v[i - 1].where, unit, v[i].where, v[i].stem);
    free(v);
    return rc;
}

// Reads a whole list file (a regular file, at most 64 MiB), NUL-terminated.
#define DS_MAX_LIST ((int64_t)64 << 20)
static char *read_list(const char *lp, const char *layout, size_t *n, err *e) {
    int64_t size = 0;
    FILE *f = io_fopen_regular(lp, "dataset list", &size, e);
    if (!f) {
        if (access(lp, F_OK) != 0)
            err_set(e, OODSEG_E_DATA, "%s: missing list file (%s)", lp, layout);
        return NULL;
    }
    if (size > DS_MAX_LIST) {
        fclose(f);
        err_set(e, OODSEG_E_DATA, "%s: a list file of %lld bytes, above the %lld-byte limit of a dataset list; "
                "is this the right file?", lp, (long long)size, (long long)DS_MAX_LIST);
        return NULL;
    }
    char *txt = malloc((size_t)size + 1);
    size_t got = txt ? fread(txt, 1, (size_t)size, f) : 0;
    fclose(f);
    if (!txt || got != (size_t)size) {
        free(txt);
        err_set(e, txt ? OODSEG_E_IO : OODSEG_E_NOMEM, "%s: cannot read the list file", lp);
        return NULL;
    }
    txt[size] = 0;
    *n = (size_t)size;
    return txt;
}

// Sorted regular-file names of dir (optionally filtered by extension list).
static int list_dir(const char *dir, const char *exts, char ***out, int *n, err *e) {
    DIR *d = opendir(dir);
    if (!d) return err_set(e, OODSEG_E_IO, "%s: cannot open folder (%s)", dir, strerror(errno));
    int cap = 0, k = 0;
    char **v = NULL;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        if (exts && !ext_ok(de->d_name, exts)) continue;
        char *full = join(dir, de->d_name, NULL);
        int f = full && is_file(full);
        free(full);
        if (!f) continue;
        if (k == cap) {
            cap = cap ? cap * 2 : 64;
            char **nv = realloc(v, (size_t)cap * sizeof *v);
            if (!nv) { closedir(d); for (int i = 0; i < k; i++) free(v[i]); free(v); return err_set(e, OODSEG_E_NOMEM, "listing %s", dir); }
            v = nv;
        }
        v[k++] = strdup(de->d_name);
    }
    closedir(d);
    if (k > 1) qsort(v, (size_t)k, sizeof *v, cmp_str);
    *out = v; *n = k;
    return OODSEG_OK;
}
static void free_list(char **v, int n) { for (int i = 0; i < n; i++) free(v[i]); free(v); }

static int add_item(dataset *ds, int *cap, char *stem, char *img, char *lab, err *e) {
    if (!stem || !img || !lab) { free(stem); free(img); free(lab); return err_set(e, OODSEG_E_NOMEM, "dataset: out of memory"); }
    if (ds->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        ds_item *ni = realloc(ds->items, (size_t)*cap * sizeof *ni);
        if (!ni) { free(stem); free(img); free(lab); return err_set(e, OODSEG_E_NOMEM, "dataset: out of memory"); }
        ds->items = ni;
    }
    ds->items[ds->n++] = (ds_item){stem, img, lab, -1};
    return OODSEG_OK;
}

// "1,2,250-255" -> set map[v] = val. Returns OODSEG_E_ARG naming the option.
static int parse_values(const char *list, uint8_t *map, uint8_t val, const char *opt, err *e) {
    if (!list) return OODSEG_OK;
    const char *p = list;
    while (*p) {
        char *end;
        long a = strtol(p, &end, 10), b = a;
        if (end == p) return err_set(e, OODSEG_E_ARG, "%s '%s': expected label values such as 1,2 or 250-255", opt, list);
        if (*end == '-') { p = end + 1; b = strtol(p, &end, 10); if (end == p) return err_set(e, OODSEG_E_ARG, "%s '%s': bad range", opt, list); }
        if (a < 0 || b > 255 || a > b) return err_set(e, OODSEG_E_ARG, "%s '%s': values must be 0..255", opt, list);
        for (long v = a; v <= b; v++) map[v] = val;
        p = end;
        if (*p == ',') p++;
        else if (*p) return err_set(e, OODSEG_E_ARG, "%s '%s': expected a comma-separated list", opt, list);
    }
    return OODSEG_OK;
}

// ---- layouts ---------------------------------------------------------------------------------
// The layout named by spec up to its ':' (or all of it), or NULL.
static const layout *find_layout(const char *spec) {
    const char *colon = strchr(spec, ':');
    size_t ln = colon ? (size_t)(colon - spec) : strlen(spec);
    for (int i = 0; i < N_LAYOUTS; i++)
        if (strlen(layouts[i].name) == ln && strncmp(layouts[i].name, spec, ln) == 0) return &layouts[i];
    return NULL;
}

// A layout's raw value -> 0/1/255/DS_BAD table and its description; generic takes the value
// lists of g (without an ID list every other value is in-distribution).
static int convention_of(const layout *L, const ds_generic *g, uint8_t map[256], char *doc, size_t n, err *e) {
    int rc;
    if (L->kind == K_GENERIC) {
        if (!g || !g->ood) return err_set(e, OODSEG_E_ARG, "--dataset generic needs --ood V,.. (the label values of OoD pixels)");
        memset(map, g->id ? DS_BAD : 0, 256);
        if ((rc = parse_values(g->id, map, 0, "--id", e)) || (rc = parse_values(g->ignore, map, 255, "--ignore", e)) ||
            (rc = parse_values(g->ood, map, 1, "--ood", e))) return rc;
        snprintf(doc, n, "OoD %.30s; ignore %.30s; ID %.20s", g->ood, g->ignore ? g->ignore : "none", g->id ? g->id : "the rest");
        return OODSEG_OK;
    }
    memset(map, DS_BAD, 256);
    if ((rc = parse_values(L->id, map, 0, "id", e)) || (rc = parse_values(L->ignore, map, 255, "ignore", e)) ||
        (rc = parse_values(L->ood, map, 1, "ood", e))) return rc;
    snprintf(doc, n, "%s", L->doc);
    return OODSEG_OK;
}

int dataset_convention(const char *layout_name, const ds_generic *g, uint8_t map[256], char *labels_doc, size_t n,
                       int *smiyc_track, err *e) {
    const layout *L = layout_name ? find_layout(layout_name) : NULL;
    if (!L) return err_set(e, OODSEG_E_ARG, "unknown dataset layout '%s'\n%s", layout_name ? layout_name : "(null)", dataset_help());
    char doc[128];
    int rc = convention_of(L, g, map, doc, sizeof doc, e);
    if (rc) return rc;
    if (labels_doc && n) snprintf(labels_doc, n, "%s", doc);
    if (smiyc_track) *smiyc_track = L->smiyc_track;
    return OODSEG_OK;
}

static int open_roadanomaly(dataset *ds, const layout *L, err *e) {
    char *lp = join(ds->root, "frame_list.json", NULL);
    if (!lp) return err_set(e, OODSEG_E_NOMEM, "dataset: out of memory");
    size_t n = 0;
    char *txt = read_list(lp, "roadanomaly expects frame_list.json beside frames/", &n, e);
    json *j = txt ? json_parse(txt, n, lp, e) : NULL;
    free(txt);
    int rc = OODSEG_OK, cap = 0;
    int *where = NULL;
    if (!j) rc = e->code;
    else if (j->type != JSON_ARRAY) rc = err_set(e, OODSEG_E_DATA, "%s: expected a JSON array of image file names", lp);
    else if (j->n == 0) rc = err_set(e, OODSEG_E_DATA, "%s: the list is empty", lp);
    else if (!(where = malloc((size_t)j->n * sizeof *where))) rc = err_set(e, OODSEG_E_NOMEM, "%s: out of memory", lp);
    for (int i = 0; !rc && j && i < j->n; i++) {
        const json *it = &j->items[i];
        if (it->type != JSON_STRING || !*it->str) { rc = err_set(e, OODSEG_E_DATA, "%s: entry %d is not a file name", lp, i); break; }
        if (escapes_root(it->str)) {
            rc = err_set(e, OODSEG_E_DATA, "%s: entry %d '%s' points outside the dataset folder; entries are file names "
                         "inside %s/%s", lp, i, it->str, ds->root, L->img_dirs[0]);
            break;
        }
        char *img = join(ds->root, L->img_dirs[0], NULL);
        char *img2 = img ? join(img, it->str, NULL) : NULL;
        free(img);
        char *stem = stem_of(it->str);
        char *fr = join(ds->root, L->lab_dir, NULL);
        char *lab = (fr && stem) ? join(fr, stem, L->lab_suffix[0]) : NULL;
        free(fr);
        if (img2 && !is_file(img2)) { rc = err_set(e, OODSEG_E_DATA, "%s: listed in %s but missing", img2, lp); free(img2); free(stem); free(lab); break; }
        if (lab && !is_file(lab)) { rc = err_set(e, OODSEG_E_DATA, "%s: unpaired image, its label %s is missing", img2, lab); free(img2); free(stem); free(lab); break; }
        where[ds->n] = i;
        rc = add_item(ds, &cap, stem, img2, lab, e);
    }
    if (!rc) rc = check_unique(ds, where, lp, "entry", e);
    free(where);
    json_free(j);
    free(lp);
    return rc;
}

// One line of test_ood.txt: two paths relative to the dataset folder.
static int camvid_line(dataset *ds, const char *lp, int ln, const char *line, int *cap, err *e) {
    char a[2048], b[2048], extra[8];
    if (strlen(line) > 4000) return err_set(e, OODSEG_E_DATA, "%s line %d: a line of %zu characters; is this the list file?", lp, ln, strlen(line));
    int k = sscanf(line, "%2047s %2047s %7s", a, b, extra);
    if (k <= 0) return OODSEG_OK;   // blank line
    if (k != 2) return err_set(e, OODSEG_E_DATA, "%s line %d: expected 'test_ood/<stem>.png testannot_ood/<stem>.png'", lp, ln);
    for (int c = 0; c < 2; c++)
        if (escapes_root(c ? b : a))
            return err_set(e, OODSEG_E_DATA, "%s line %d: '%s' points outside the dataset folder %s; list paths must be "
                           "relative to it, without '..'", lp, ln, c ? b : a, ds->root);
    char *img = join(ds->root, a, NULL), *lab = join(ds->root, b, NULL);
    int rc = OODSEG_OK;
    if (img && !is_file(img)) rc = err_set(e, OODSEG_E_DATA, "%s: listed in %s line %d but missing", img, lp, ln);
    else if (lab && !is_file(lab)) rc = err_set(e, OODSEG_E_DATA, "%s: unpaired image, its label %s (line %d) is missing", img, lab, ln);
    if (rc) { free(img); free(lab); return rc; }
    return add_item(ds, cap, stem_of(a), img, lab, e);
}

static int open_camvid(dataset *ds, err *e) {
    char *lp = join(ds->root, "test_ood.txt", NULL);
    if (!lp) return err_set(e, OODSEG_E_NOMEM, "dataset: out of memory");
    size_t n = 0;
    char *txt = read_list(lp, "camvid-ood expects test_ood.txt", &n, e);
    if (!txt) { free(lp); return e->code; }
    int rc = OODSEG_OK, cap = 0, ln = 0, cap_where = 0;
    int *where = NULL;
    for (char *line = txt; !rc && line < txt + n;) {
        char *nl = memchr(line, '\n', (size_t)(txt + n - line));
        char *next = nl ? nl + 1 : txt + n;
        if (nl) *nl = 0;
        ln++;
        if (memchr(line, 0, (size_t)(next - line) - (nl ? 1 : 0))) {
            rc = err_set(e, OODSEG_E_DATA, "%s line %d: a NUL byte; is this a text file?", lp, ln);
            break;
        }
        if (ds->n == cap_where) {
            cap_where = cap_where ? 2 * cap_where : 64;
            int *nw = realloc(where, (size_t)cap_where * sizeof *nw);
            if (!nw) { rc = err_set(e, OODSEG_E_NOMEM, "%s: out of memory", lp); break; }
            where = nw;
        }
        where[ds->n] = ln;
        rc = camvid_line(ds, lp, ln, line, &cap, e);
        line = next;
    }
    free(txt);
    if (!rc && ds->n == 0) rc = err_set(e, OODSEG_E_DATA, "%s: the list is empty", lp);
    if (!rc) rc = check_unique(ds, where, lp, "line", e);
    free(where);
    free(lp);
    return rc;
}

// Images in img_dir paired by stem with lab_dir/<stem><suffix>; labels without an image are an error.
static int cmp_frame(const void *a, const void *b) {
    int64_t x = ((const ds_item *)a)->frame, y = ((const ds_item *)b)->frame;
    return (x > y) - (x < y);
}

// --images VIDEO: the frames that have a label <video-stem>_f<index><suffix> in lab_dir (a
// video's annotated frames are a sparse few), in frame order; their stems are <video-stem>_f%06d,
// the frame names of every output.
static int open_video_frames(dataset *ds, const char *video, const char *lab_dir, const char *suffix, err *e) {
    if (!is_dir(lab_dir)) return err_set(e, OODSEG_E_DATA, "%s: label folder missing (layout %s)", lab_dir, ds->name);
    char *vstem = stem_of(video), **labs;
    int nl, cap = 0, rc;
    if (!vstem) return err_set(e, OODSEG_E_NOMEM, "dataset: out of memory");
    if ((rc = list_dir(lab_dir, NULL, &labs, &nl, e))) { free(vstem); return rc; }
    size_t vl = strlen(vstem), sl = strlen(suffix);
    for (int k = 0; !rc && k < nl; k++) {
        const char *f = labs[k];
        size_t fl = strlen(f);
        if (fl <= vl + 2 + sl || strncmp(f, vstem, vl) || strncmp(f + vl, "_f", 2) || strcmp(f + fl - sl, suffix)) continue;
        char *end;
        long long idx = strtoll(f + vl + 2, &end, 10);
        if (end != f + fl - sl || idx < 0 || end == f + vl + 2) continue;
        char stem[600];
        snprintf(stem, sizeof stem, "%.480s_f%06lld", vstem, idx);
        if ((rc = add_item(ds, &cap, strdup(stem), strdup(video), join(lab_dir, f, NULL), e))) break;
        ds->items[ds->n - 1].frame = idx;
    }
    free_list(labs, nl);
    if (!rc && ds->n == 0)
        rc = err_set(e, OODSEG_E_DATA, "%s: no label of its frames in %s (expected %s_f<frame index>%s, e.g. %s_f000042%s)",
                     video, lab_dir, vstem, suffix, vstem, suffix);
    free(vstem);
    if (!rc) qsort(ds->items, (size_t)ds->n, sizeof *ds->items, cmp_frame);
    for (int i = 1; !rc && i < ds->n; i++)
        if (ds->items[i].frame == ds->items[i - 1].frame)
            rc = err_set(e, OODSEG_E_DATA, "%s and %s: two labels of frame %lld of %s; keep one", ds->items[i - 1].label,
                         ds->items[i].label, (long long)ds->items[i].frame, video);
    return rc;
}

static int open_dirs(dataset *ds, const char *img_dir, const char *exts, const char *lab_dir,
                     const char *const *suffixes, int n_suffix, err *e) {
    if (!is_dir(img_dir)) return err_set(e, OODSEG_E_DATA, "%s: image folder missing (layout %s); check the dataset PATH and the layout name", img_dir, ds->name);
    if (!is_dir(lab_dir)) return err_set(e, OODSEG_E_DATA, "%s: label folder missing (layout %s); check the dataset PATH and the layout name", lab_dir, ds->name);
    char **imgs, **labs;
    int ni, nl, rc, cap = 0;
    if ((rc = list_dir(img_dir, exts, &imgs, &ni, e))) return rc;
    if (ni == 0) { free_list(imgs, ni); return err_set(e, OODSEG_E_DATA, "%s: empty folder, no images (.%s); put the images there or check the dataset PATH", img_dir, exts); }
    if ((rc = list_dir(lab_dir, NULL, &labs, &nl, e))) { free_list(imgs, ni); return rc; }
    uint8_t *used = calloc((size_t)nl + 1, 1);
    for (int i = 0; !rc && i < ni; i++) {
        char *stem = stem_of(imgs[i]);
        if (i > 0) {
            char *prev = stem_of(imgs[i - 1]);
            int dup = prev && stem && strcmp(prev, stem) == 0;
            free(prev);
            if (dup) { rc = err_set(e, OODSEG_E_DATA, "%s/%s: two images share the stem '%s'; keep one", img_dir, imgs[i], stem); free(stem); break; }
        }
        char *lab = NULL;
        for (int s = 0; s < n_suffix && !lab; s++) {
            char *c = join(lab_dir, stem, suffixes[s]);
            if (c && is_file(c)) lab = c; else free(c);
        }
        if (!lab) {
            rc = err_set(e, OODSEG_E_DATA, "%s/%s: unpaired image, no label %s/%s%s", img_dir, imgs[i], lab_dir, stem, suffixes[0]);
            free(stem);
            break;
        }
        const char *base = lab + strlen(lab_dir) + 1;
        char **hit = nl ? bsearch(&base, labs, (size_t)nl, sizeof *labs, cmp_str) : NULL;
        if (hit) used[hit - labs] = 1;
        rc = add_item(ds, &cap, stem, join(img_dir, imgs[i], NULL), lab, e);
    }
    // A label file that looks like a label of this layout but has no image is an unpaired file.
    for (int k = 0; !rc && k < nl; k++) {
        if (used[k]) continue;
        for (int s = 0; s < n_suffix; s++) {
            size_t ls = strlen(labs[k]), lsu = strlen(suffixes[s]);
            int looks = *suffixes[s] ? (ls > lsu && strcmp(labs[k] + ls - lsu, suffixes[s]) == 0)
                                     : ext_ok(labs[k], "png");
            if (looks) { rc = err_set(e, OODSEG_E_DATA, "%s/%s: unpaired label, no image with its stem in %s", lab_dir, labs[k], img_dir); break; }
        }
    }
    free(used);
    free_list(imgs, ni);
    free_list(labs, nl);
    return rc;
}

void dataset_free(dataset *ds) {
    if (!ds) return;
    for (int i = 0; i < ds->n; i++) { free(ds->items[i].stem); free(ds->items[i].image); free(ds->items[i].label); }
    free(ds->items);
    memset(ds, 0, sizeof *ds);
}

int dataset_open(const char *spec, const ds_generic *g, dataset *ds, err *e) {
    memset(ds, 0, sizeof *ds);
    if (!spec || !*spec) return err_set(e, OODSEG_E_ARG, "--dataset: expected NAME:PATH\n%s", dataset_help());
    const char *colon = strchr(spec, ':');
    size_t ln = colon ? (size_t)(colon - spec) : strlen(spec);
    const layout *L = find_layout(spec);
    if (!L) return err_set(e, OODSEG_E_ARG, "--dataset '%s': unknown dataset layout '%.*s'\n%s", spec, (int)ln, spec, dataset_help());
    snprintf(ds->name, sizeof ds->name, "%s", L->name);
    snprintf(ds->root, sizeof ds->root, "%s", colon ? colon + 1 : "");
    size_t rl = strlen(ds->root);
    while (rl > 1 && ds->root[rl - 1] == '/') ds->root[--rl] = 0;
    if (L->kind != K_GENERIC) {
        if (!colon || !ds->root[0]) return err_set(e, OODSEG_E_ARG, "--dataset %s: expected %s:PATH", spec, L->name);
        if (!is_dir(ds->root)) return err_set(e, OODSEG_E_DATA, "%s: dataset folder not found", ds->root);
    }
    ds->smiyc_track = L->smiyc_track;
    int rc;
    if (L->kind == K_GENERIC) {
        if (!g || !g->images || !g->labels) return err_set(e, OODSEG_E_ARG, "--dataset generic needs --images DIR and --labels DIR");
        if ((rc = convention_of(L, g, ds->map, ds->labels_doc, sizeof ds->labels_doc, e))) return rc;
        const char *suf[1] = {g->label_suffix ? g->label_suffix : ""};
        char sufpng[256];
        snprintf(sufpng, sizeof sufpng, "%s.png", suf[0]);
        const char *sp[1] = {sufpng};
        if (!ds->root[0]) snprintf(ds->root, sizeof ds->root, "%s", g->images);
        if (video_is_video_name(g->images) && is_file(g->images)) rc = open_video_frames(ds, g->images, g->labels, sufpng, e);
        else rc = open_dirs(ds, g->images, L->img_ext, g->labels, sp, 1, e);
    } else {
        if ((rc = convention_of(L, g, ds->map, ds->labels_doc, sizeof ds->labels_doc, e))) return rc;
        if (L->kind == K_ROADANOMALY) rc = open_roadanomaly(ds, L, e);
        else if (L->kind == K_CAMVID) rc = open_camvid(ds, e);
        else {
            const char *idir = L->img_dirs[0];
            for (int i = 0; i < 3 && L->img_dirs[i]; i++) {
                char *c = join(ds->root, L->img_dirs[i], NULL);
                int d = c && is_dir(c);
                free(c);
                if (d) { idir = L->img_dirs[i]; break; }
            }
            char *ip = join(ds->root, idir, NULL), *lp = join(ds->root, L->lab_dir, NULL);
            int ns = 0;
            while (ns < 3 && L->lab_suffix[ns]) ns++;
            rc = (ip && lp) ? open_dirs(ds, ip, L->img_ext, lp, L->lab_suffix, ns, e) : err_set(e, OODSEG_E_NOMEM, "dataset");
            free(ip); free(lp);
        }
    }
    if (rc) { dataset_free(ds); return rc; }
    return OODSEG_OK;
}

int dataset_load_image(const dataset *ds, int i, image *out, err *e) { return dataset_load_image_mem(ds, i, 0, out, e); }

int dataset_load_image_mem(const dataset *ds, int i, uint64_t max_memory, image *out, err *e) {
    const ds_item *it = &ds->items[i];
    return it->frame >= 0 ? video_read_frame(it->image, it->frame, out, e) : image_load_rgb_mem(it->image, max_memory, out, e);
}

int dataset_parse_shard(const char *s, int *i, int *n, err *e) {
    char *end;
    long a = strtol(s, &end, 10);
    if (end == s || *end != '/') return err_set(e, OODSEG_E_ARG, "--shard '%s': expected I/N, e.g. 0/4", s);
    const char *p = end + 1;
    long b = strtol(p, &end, 10);
    if (end == p || *end || b < 1 || a < 0 || a >= b || b > 1000000)
        return err_set(e, OODSEG_E_ARG, "--shard '%s': expected I/N with 0 <= I < N", s);
    *i = (int)a; *n = (int)b;
    return OODSEG_OK;
}

int dataset_select(dataset *ds, int limit, int shard_i, int shard_n, err *e) {
    if (limit < 0) return err_set(e, OODSEG_E_ARG, "--limit %d: must be >= 0", limit);
    int keep = (limit > 0 && limit < ds->n) ? limit : ds->n;
    int a = 0, b = keep;
    if (shard_n > 1) {
        if (shard_i < 0 || shard_i >= shard_n) return err_set(e, OODSEG_E_ARG, "--shard %d/%d: I must be in 0..N-1", shard_i, shard_n);
        a = (int)((int64_t)keep * shard_i / shard_n);
        b = (int)((int64_t)keep * (shard_i + 1) / shard_n);
    }
    for (int i = 0; i < ds->n; i++)
        if (i < a || i >= b) { free(ds->items[i].stem); free(ds->items[i].image); free(ds->items[i].label); }
    memmove(ds->items, ds->items + a, (size_t)(b - a) * sizeof *ds->items);
    ds->n = b - a;
    return OODSEG_OK;
}

int dataset_load_label(const dataset *ds, int i, int img_w, int img_h, image *out, err *e) {
    memset(out, 0, sizeof *out);
    if (i < 0 || i >= ds->n) return err_set(e, OODSEG_E_INTERNAL, "dataset item %d of %d", i, ds->n);
    const ds_item *it = &ds->items[i];
    if (image_load_label(it->label, out, e)) return err_prefix(e, "label of %s: ", it->image);
    if (out->c != 1) { image_free(out); return err_set(e, OODSEG_E_DATA, "%s: a label must have one channel", it->label); }
    if (img_w > 0 && (out->w != img_w || out->h != img_h)) {
        err_set(e, OODSEG_E_DATA, "%s: label is %dx%d but its image %s is %dx%d; a label must have its image's size",
                it->label, out->w, out->h, it->image, img_w, img_h);
        image_free(out);
        return e->code;
    }
    int64_t n = (int64_t)out->w * out->h;
    for (int64_t k = 0; k < n; k++) {
        uint8_t v = ds->map[out->px[k]];
        if (v == DS_BAD) {
            err_set(e, OODSEG_E_DATA, "%s: unknown label value %u at pixel (x %lld, y %lld); %s labels are %s "
                    "(is this the right --dataset layout?)", it->label, out->px[k], (long long)(k % out->w),
                    (long long)(k / out->w), ds->name, ds->labels_doc);
            image_free(out);
            return e->code;
        }
        out->px[k] = v;
    }
    return OODSEG_OK;
}
