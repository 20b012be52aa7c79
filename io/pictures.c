// Pictures of one scored image (see pictures.h). The colormaps are tables: inferno (perceptually
// uniform, readable in grey) for scores, tab20 for clusters, both sampled from matplotlib 3.6.
#include "pictures.h"
#include "font.h"
#include "thumbnail.h"
#include "../nn/simd.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const uint8_t pictures_inferno[256][3] = {
    {0,0,4}, {1,0,5}, {1,1,6}, {1,1,8}, {2,1,10}, {2,2,12}, {2,2,14}, {3,2,16},
    {4,3,18}, {4,3,20}, {5,4,23}, {6,4,25}, {7,5,27}, {8,5,29}, {9,6,31}, {10,7,34},
    {11,7,36}, {12,8,38}, {13,8,41}, {14,9,43}, {16,9,45}, {17,10,48}, {18,10,50}, {20,11,52},
    {21,11,55}, {22,11,57}, {24,12,60}, {25,12,62}, {27,12,65}, {28,12,67}, {30,12,69}, {31,12,72},
    {33,12,74}, {35,12,76}, {36,12,79}, {38,12,81}, {40,11,83}, {41,11,85}, {43,11,87}, {45,11,89},
    {47,10,91}, {49,10,92}, {50,10,94}, {52,10,95}, {54,9,97}, {56,9,98}, {57,9,99}, {59,9,100},
    {61,9,101}, {62,9,102}, {64,10,103}, {66,10,104}, {68,10,104}, {69,10,105}, {71,11,106}, {73,11,106},
    {74,12,107}, {76,12,107}, {77,13,108}, {79,13,108}, {81,14,108}, {82,14,109}, {84,15,109}, {85,15,109},
    {87,16,110}, {89,16,110}, {90,17,110}, {92,18,110}, {93,18,110}, {95,19,110}, {97,19,110}, {98,20,110},
    {100,21,110}, {101,21,110}, {103,22,110}, {105,22,110}, {106,23,110}, {108,24,110}, {109,24,110}, {111,25,110},
    {113,25,110}, {114,26,110}, {116,26,110}, {117,27,110}, {119,28,109}, {120,28,109}, {122,29,109}, {124,29,109},
    {125,30,109}, {127,30,108}, {128,31,108}, {130,32,108}, {132,32,107}, {133,33,107}, {135,33,107}, {136,34,106},
    {138,34,106}, {140,35,105}, {141,35,105}, {143,36,105}, {144,37,104}, {146,37,104}, {147,38,103}, {149,38,103},
    {151,39,102}, {152,39,102}, {154,40,101}, {155,41,100}, {157,41,100}, {159,42,99}, {160,42,99}, {162,43,98},
    {163,44,97}, {165,44,96}, {166,45,96}, {168,46,95}, {169,46,94}, {171,47,94}, {173,48,93}, {174,48,92},
    {176,49,91}, {177,50,90}, {179,50,90}, {180,51,89}, {182,52,88}, {183,53,87}, {185,53,86}, {186,54,85},
    {188,55,84}, {189,56,83}, {191,57,82}, {192,58,81}, {193,58,80}, {195,59,79}, {196,60,78}, {198,61,77},
    {199,62,76}, {200,63,75}, {202,64,74}, {203,65,73}, {204,66,72}, {206,67,71}, {207,68,70}, {208,69,69},
    {210,70,68}, {211,71,67}, {212,72,66}, {213,74,65}, {215,75,63}, {216,76,62}, {217,77,61}, {218,78,60},
    {219,80,59}, {221,81,58}, {222,82,56}, {223,83,55}, {224,85,54}, {225,86,53}, {226,87,52}, {227,89,51},
    {228,90,49}, {229,92,48}, {230,93,47}, {231,94,46}, {232,96,45}, {233,97,43}, {234,99,42}, {235,100,41},
    {235,102,40}, {236,103,38}, {237,105,37}, {238,106,36}, {239,108,35}, {239,110,33}, {240,111,32}, {241,113,31},
    {241,115,29}, {242,116,28}, {243,118,27}, {243,120,25}, {244,121,24}, {245,123,23}, {245,125,21}, {246,126,20},
    {246,128,19}, {247,130,18}, {247,132,16}, {248,133,15}, {248,135,14}, {248,137,12}, {249,139,11}, {249,140,10},
    {249,142,9}, {250,144,8}, {250,146,7}, {250,148,7}, {251,150,6}, {251,151,6}, {251,153,6}, {251,155,6},
    {251,157,7}, {252,159,7}, {252,161,8}, {252,163,9}, {252,165,10}, {252,166,12}, {252,168,13}, {252,170,15},
    {252,172,17}, {252,174,18}, {252,176,20}, {252,178,22}, {252,180,24}, {251,182,26}, {251,184,29}, {251,186,31},
    {251,188,33}, {251,190,35}, {250,192,38}, {250,194,40}, {250,196,42}, {250,198,45}, {249,199,47}, {249,201,50},
    {249,203,53}, {248,205,55}, {248,207,58}, {247,209,61}, {247,211,64}, {246,213,67}, {246,215,70}, {245,217,73},
    {245,219,76}, {244,221,79}, {244,223,83}, {244,225,86}, {243,227,90}, {243,229,93}, {242,230,97}, {242,232,101},
    {242,234,105}, {241,236,109}, {241,237,113}, {241,239,117}, {241,241,121}, {242,242,125}, {242,244,130}, {243,245,134},
    {243,246,138}, {244,248,142}, {245,249,146}, {246,250,150}, {248,251,154}, {249,252,157}, {250,253,161}, {252,255,164},
};

const uint8_t pictures_tab20[20][3] = {
    {31,119,180}, {174,199,232}, {255,127,14}, {255,187,120}, {44,160,44}, {152,223,138}, {214,39,40}, {255,152,150}, {148,103,189}, {197,176,213},
    {140,86,75}, {196,156,148}, {227,119,194}, {247,182,210}, {127,127,127}, {199,199,199}, {188,189,34}, {219,219,141}, {23,190,207}, {158,218,229},
};

// ---- the strip below a picture ---------------------------------------------------------------
static const uint8_t ink[3] = {0, 0, 0}, paper = 255;

// The font scale for a picture w pixels wide: text stays readable on large frames.
static int text_scale(int w) { return w >= 1000 ? 2 + (w >= 2000) : 1; }

// A picture w x (h + strip) with src's pixels on top (src: 3 channels, w x h) and white below.
static int with_strip(const uint8_t *src, int w, int h, int strip, image *out, err *e) {
    out->w = w; out->h = h + strip; out->c = 3;
    if (!(out->px = err_malloc(e, (size_t)w * out->h * 3, "a picture"))) return e->code;
    memcpy(out->px, src, (size_t)w * h * 3);
    memset(out->px + (size_t)w * h * 3, paper, (size_t)w * strip * 3);
    return OODSEG_OK;
}

static void fill_rect(image *im, int x0, int y0, int w, int h, const uint8_t rgb[3]) {
    for (int y = y0 < 0 ? 0 : y0; y < y0 + h && y < im->h; y++)
        for (int x = x0 < 0 ? 0 : x0; x < x0 + w && x < im->w; x++) memcpy(im->px + ((int64_t)y * im->w + x) * 3, rgb, 3);
}

// Text cut to fit max_w pixels (an ellipsis marks the cut).
static void draw_fit(image *im, int x, int y, const char *s, int sc, int max_w) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    int room = max_w / (FONT_CELL_W * sc);
    if (room < 4) return;
    if ((int)strlen(buf) > room) { buf[room - 3] = 0; strcat(buf, "..."); }
    font_draw(im, x, y, buf, sc, ink);
}

static const char *or_default(const char *s, const char *dflt) { return s && *s ? s : dflt; }

// The colour bar strip: the score's name, the bar, the range at its ends and middle, the scale.
static int bar_height(int sc) { return sc * (4 + FONT_CELL_H + 3 + 10 + 3 + FONT_CELL_H + 2); }

static void draw_bar(image *im, int y0, const pictures_in *in, double lo, double hi) {
    const int w = im->w, sc = text_scale(w), m = 4 * sc;
    const char *note = in->scale.note ? in->scale.note : in->scale.fixed ? "fixed scale" : "per-image min..max";
    char line[512];
    snprintf(line, sizeof line, "%s; %s", or_default(in->score_label, "score"), note);
    draw_fit(im, m, y0 + m, line, sc, w - 2 * m);
    int by = y0 + m + (FONT_CELL_H + 3) * sc, bw = w - 2 * m, bh = 10 * sc;
    for (int x = 0; x < bw; x++) {
        int i = bw > 1 ? (int)lround(255.0 * x / (bw - 1)) : 0;
        fill_rect(im, m + x, by, 1, bh, pictures_inferno[i]);
    }
    char t[3][32];
    snprintf(t[0], 32, "%.4g", lo);
    snprintf(t[1], 32, "%.4g", (lo + hi) / 2);
    snprintf(t[2], 32, "%.4g", hi);
    int ty = by + bh + 3 * sc;
    for (int k = 0; k < 3; k++) {
        int cx = m + (bw - 1) * k / 2, tw = font_width(t[k], sc) - sc;
        fill_rect(im, cx - (sc > 1) , by + bh, sc, 2 * sc, ink);   // tick
        int tx = k == 0 ? m : k == 2 ? m + bw - tw : cx - tw / 2;
        font_draw(im, tx, ty, t[k], sc, ink);
    }
}

void pictures_range(const pictures_in *in, int64_t n, double *lo, double *hi) {
    if (in->scale.fixed) { *lo = in->scale.lo; *hi = in->scale.hi; return; }
    float a = INFINITY, b = -INFINITY;
    for (int64_t p = 0; p < n; p++)
        if (isfinite(in->score[p])) { if (in->score[p] < a) a = in->score[p]; if (in->score[p] > b) b = in->score[p]; }
    if (!(a <= b)) a = b = 0;
    *lo = a; *hi = b;
}

static int check_in(const pictures_in *in, err *e) {
    const image *img = in->img;
    if (!img || !img->px || img->w < 1 || img->h < 1 || (img->c != 3 && img->c != 1))
        return err_set(e, OODSEG_E_ARG, "pictures: no image");
    return OODSEG_OK;
}

#define HEAT_BLOCK 4096

// The colour index of each score: (s - lo) * scale clamped to 0..255 and rounded half away from
// zero, as lround would (the fraction of a value in 0..255 is exact: v - (int)v), 0 for NaN/Inf.
NN_TARGET_CLONES
static void heat_indices(const float *score, int n, double lo, double scale, uint8_t *ix) {
    NN_SIMD_INT
    for (int q = 0; q < n; q++) {
        double v = ((double)score[q] - lo) * scale;
        v = isfinite(score[q]) ? v : 0;
        v = v < 0 ? 0 : v > 255 ? 255 : v;
        const int i = (int)v;
        ix[q] = (uint8_t)(i + (v - i >= 0.5));
    }
}

// The overlay: 55 % heat over the image, rounded; buf (hw, 3) holds the heat colours.
NN_TARGET_CLONES
static void overlay_blend(const image *img, int64_t hw, uint8_t *buf) {
    const uint8_t *px = img->px;
    if (img->c == 3) {
        NN_SIMD_INT
        for (int64_t i = 0; i < 3 * hw; i++) buf[i] = (uint8_t)((45 * px[i] + 55 * buf[i] + 50) / 100);
        return;
    }
    for (int64_t p = 0; p < hw; p++)
        for (int c = 0; c < 3; c++) buf[p * 3 + c] = (uint8_t)((45 * px[p] + 55 * buf[p * 3 + c] + 50) / 100);
}

int pictures_heat(const pictures_in *in, image *heat, image *overlay, err *e) {
    memset(heat, 0, sizeof *heat);
    memset(overlay, 0, sizeof *overlay);
    if (check_in(in, e)) return e->code;
    const image *img = in->img;
    const int w = img->w, h = img->h, sc = text_scale(w);
    const int64_t hw = (int64_t)w * h;
    double lo, hi;
    pictures_range(in, hw, &lo, &hi);
    double scale = hi > lo ? 255.0 / (hi - lo) : 0;
    uint8_t *buf = err_malloc(e, (size_t)hw * 3, "a picture");   // (h, w, 3)
    if (!buf) return e->code;
    for (int64_t p0 = 0; p0 < hw; p0 += HEAT_BLOCK) {
        uint8_t ix[HEAT_BLOCK];
        const int n = (int)(hw - p0 < HEAT_BLOCK ? hw - p0 : HEAT_BLOCK);
        heat_indices(in->score + p0, n, lo, scale, ix);
        for (int q = 0; q < n; q++) memcpy(buf + (p0 + q) * 3, pictures_inferno[ix[q]], 3);
    }
    int rc = with_strip(buf, w, h, bar_height(sc), heat, e);
    if (!rc) draw_bar(heat, h, in, lo, hi);
    overlay_blend(img, hw, buf);
    if (!rc && !(rc = with_strip(buf, w, h, bar_height(sc), overlay, e))) draw_bar(overlay, h, in, lo, hi);
    free(buf);
    if (rc) { image_free(heat); image_free(overlay); }
    return rc;
}

// ---- classes ---------------------------------------------------------------------------------
// The legend: a swatch and a name per class present, largest first, in rows that fill the width.
typedef struct legend_entry { int cls; int64_t count; } legend_entry;

static int cmp_entry(const void *a, const void *b) {
    const legend_entry *x = a, *y = b;
    return x->count != y->count ? (x->count < y->count ? 1 : -1) : x->cls - y->cls;
}

static void entry_name(const pictures_in *in, int cls, char *buf, size_t n) {
    if (cls >= in->n_classes) snprintf(buf, n, "other");
    else if (in->class_names && in->class_names[cls]) snprintf(buf, n, "%s", in->class_names[cls]);
    else snprintf(buf, n, "class %d", cls);
}

// Lays the entries out from y0 (draw 0: only measures); returns the strip height.
static int legend_layout(image *im, const pictures_in *in, const legend_entry *ent, int n, int y0, int draw) {
    const int w = in->img->w, sc = text_scale(w), m = 4 * sc, row_h = (FONT_CELL_H + 4) * sc;
    int x = m, y = y0 + m;
    if (draw) font_draw(im, x, y + 2 * sc, "classes:", sc, ink);
    x += font_width("classes: ", sc);
    for (int i = 0; i < n; i++) {
        char name[64];
        entry_name(in, ent[i].cls, name, sizeof name);
        int ew = 9 * sc + 3 * sc + font_width(name, sc) + 6 * sc;
        if (x + ew > w - m && x > m) { x = m; y += row_h; }
        if (draw) {
            static const uint8_t black[3] = {0, 0, 0};
            const uint8_t *col = ent[i].cls < in->n_classes ? in->palette[ent[i].cls] : black;
            fill_rect(im, x, y + sc, 9 * sc, 9 * sc, ink);
            fill_rect(im, x + sc, y + 2 * sc, 7 * sc, 7 * sc, col);
            font_draw(im, x + 12 * sc, y + 2 * sc, name, sc, ink);
        }
        x += ew;
    }
    return y + row_h + m - y0;
}

int pictures_seg(const pictures_in *in, image *out, err *e) {
    memset(out, 0, sizeof *out);
    if (check_in(in, e)) return e->code;
    const int w = in->img->w, h = in->img->h;
    const int64_t hw = (int64_t)w * h;
    uint8_t *buf = err_malloc(e, (size_t)hw * 3, "a picture");
    legend_entry *ent = err_malloc(e, 256 * sizeof *ent, "the legend");
    int rc = buf && ent ? OODSEG_OK : e->code, n = 0;
    if (!rc) {
        int64_t count[256] = {0};
        for (int64_t p = 0; p < hw; p++) {
            int c = in->pred[p];
            count[c]++;
            if (c < in->n_classes) memcpy(buf + p * 3, in->palette[c], 3);
            else memset(buf + p * 3, 0, 3);
        }
        int64_t other = 0;
        for (int c = 0; c < 256; c++) {
            if (c >= in->n_classes) other += count[c];
            else if (count[c]) ent[n++] = (legend_entry){c, count[c]};
        }
        if (other) ent[n++] = (legend_entry){in->n_classes, other};
        qsort(ent, (size_t)n, sizeof *ent, cmp_entry);
        int strip = legend_layout(NULL, in, ent, n, 0, 0);
        if (!(rc = with_strip(buf, w, h, strip, out, e))) legend_layout(out, in, ent, n, h, 1);
    }
    free(buf);
    free(ent);
    return rc;
}

// ---- clusters --------------------------------------------------------------------------------
static const uint8_t magenta[3] = {255, 0, 255}, white[3] = {255, 255, 255}, dark[3] = {40, 40, 40};

// Each cluster a tab20 colour; borders dark, OoD clusters hatched in white, outlined in magenta.
static void paint_clusters(const pictures_in *in, uint8_t *buf) {
    const int w = in->img->w, h = in->img->h, k = in->k;
    const int32_t *cl = in->clusters;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int64_t p = (int64_t)y * w + x;
            int c = cl[p];
            uint8_t *o = buf + p * 3;
            memcpy(o, pictures_tab20[(c < 0 ? 0 : c) % 20], 3);
            int ood = in->ood_flag && c >= 0 && c < k && in->ood_flag[c];
            // a border pixel: a 4-neighbour (within 2 px for OoD outlines) in another cluster
            int r = ood ? 2 : 1, border = 0;
            for (int d = 1; d <= r && !border; d++)
                border = (x >= d && cl[p - d] != c) || (x + d < w && cl[p + d] != c) ||
                         (y >= d && cl[p - (int64_t)d * w] != c) || (y + d < h && cl[p + (int64_t)d * w] != c);
            if (border) memcpy(o, ood ? magenta : dark, 3);
            else if (ood && ((x + y) % 10) < 2) memcpy(o, white, 3);
        }
}

int pictures_clusters(const pictures_in *in, image *out, err *e) {
    memset(out, 0, sizeof *out);
    if (check_in(in, e)) return e->code;
    const int w = in->img->w, h = in->img->h, sc = text_scale(w), m = 4 * sc;
    uint8_t *buf = err_malloc(e, (size_t)w * h * 3, "a picture");
    if (!buf) return e->code;
    paint_clusters(in, buf);
    int flagged = 0;
    for (int c = 0; c < in->k && in->ood_flag; c++) flagged += in->ood_flag[c] != 0;
    const int line = (FONT_CELL_H + 4) * sc;
    int rc = with_strip(buf, w, h, 2 * m + 2 * line, out, e);
    free(buf);
    if (rc) return rc;
    // the swatch: a hatched patch outlined in magenta, as OoD clusters are drawn
    int sx = m, sy = h + m, s = 11 * sc;
    fill_rect(out, sx, sy, s, s, magenta);
    fill_rect(out, sx + 2 * sc, sy + 2 * sc, s - 4 * sc, s - 4 * sc, pictures_tab20[0]);
    for (int yy = 2 * sc; yy < s - 2 * sc; yy++)
        for (int xx = 2 * sc; xx < s - 2 * sc; xx++)
            if (((xx + yy) % (5 * sc)) < sc) fill_rect(out, sx + xx, sy + yy, 1, 1, white);
    char t[256];
    snprintf(t, sizeof t, "OoD-flagged: hatched, magenta outline (%d of k = %d); borders dark", flagged, in->k);
    draw_fit(out, sx + s + 4 * sc, sy + 2 * sc, t, sc, w - sx - s - 5 * sc - m);
    snprintf(t, sizeof t, "%s", or_default(in->cluster_rule, "OoD threshold not given"));
    draw_fit(out, sx, sy + line + 2 * sc, t, sc, w - 2 * m);
    return OODSEG_OK;
}

// ---- files -----------------------------------------------------------------------------------
int pictures_format_parse(const char *s, pictures_format *f, err *e) {
    if (!strcmp(s, "none")) *f = PICTURES_NONE;
    else if (!strcmp(s, "png")) *f = PICTURES_PNG;
    else if (!strcmp(s, "jpg") || !strcmp(s, "jpeg")) *f = PICTURES_JPG;
    else if (!strcmp(s, "webp")) *f = PICTURES_WEBP;
    else return err_set(e, OODSEG_E_ARG, "--pictures '%s': expected none, png, jpg or webp", s);
    return OODSEG_OK;
}

const char *pictures_format_ext(pictures_format f) {
    return f == PICTURES_NONE ? NULL : f == PICTURES_JPG ? "jpg" : f == PICTURES_WEBP ? "webp" : "png";
}

static int save(const char *dir, const char *stem, const char *method, const char *what, pictures_format f,
                image *im, err *e) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s%s%s_%s.%s", dir, stem, method ? "_" : "", method ? method : "", what,
             pictures_format_ext(f));
    int rc = f == PICTURES_JPG ? image_save_jpeg(path, im, PICTURES_JPG_QUALITY, e)
           : f == PICTURES_WEBP ? image_save_webp(path, im, PICTURES_WEBP_QUALITY, e)
           : image_save_png(path, im, e);
    if (rc) err_prefix(e, "writing %s: ", path);
    image_free(im);
    return rc;
}

int pictures_save_as(const char *dir, const char *stem, const char *method, const pictures_in *in,
                     int with_seg, pictures_format f, err *e) {
    image a = {0}, b = {0};
    int rc = OODSEG_OK;
    if (f == PICTURES_NONE) return OODSEG_OK;
    if (in->score) {
        rc = pictures_heat(in, &a, &b, e);
        if (!rc) rc = save(dir, stem, method, "heat", f, &a, e);
        if (!rc) rc = save(dir, stem, method, "overlay", f, &b, e);
        image_free(&a);
        image_free(&b);
    }
    if (!rc && with_seg && in->pred && in->palette && in->n_classes > 0 && !(rc = pictures_seg(in, &a, e)))
        rc = save(dir, stem, NULL, "seg", f, &a, e);
    if (!rc && in->clusters && in->k > 0 && !(rc = pictures_clusters(in, &a, e)))
        rc = save(dir, stem, method, "clusters", f, &a, e);
    image_free(&a);
    return rc;
}

int pictures_save(const char *dir, const char *stem, const char *method, const pictures_in *in,
                  int with_seg, err *e) {
    return pictures_save_as(dir, stem, method, in, with_seg, PICTURES_PNG, e);
}
