// Image-level anomaly scores of one frame's pixel map (METHOD.md, "Image-level scores"): the
// anomalous area, the largest connected anomalous region with the bounding boxes of the largest
// regions, and a high percentile of the map.
#include "mine.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *mine_rank_name(mine_rank_by by) {
    return by == MINE_AREA ? "area" : by == MINE_REGION ? "region" : "percentile";
}

double mine_rank_value(const mine_scores *s, mine_rank_by by) {
    return by == MINE_AREA ? s->area : by == MINE_REGION ? s->region : s->percentile;
}

// The k-th smallest of a (n values, reordered): Hoare's selection, deterministic pivots.
static float select_kth(float *a, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float pv = a[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pv) i++;
            while (a[j] > pv) j--;
            if (i <= j) { float t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return a[k];
    }
    return a[k];
}

static int32_t uf_find(int32_t *par, int32_t x) {
    while (par[x] != x) { par[x] = par[par[x]]; x = par[x]; }
    return x;
}

// 8-connected regions of mask by union-find over one raster pass; per root: pixels and box.
static int regions(const uint8_t *mask, int w, int h, mine_scores *s, int64_t min_pixels, err *e) {
    int64_t n = (int64_t)w * h;
    int32_t *par = err_malloc(e, (size_t)n * sizeof *par, "the region labels");
    if (!par) return e->code;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int64_t p = (int64_t)y * w + x;
            par[p] = (int32_t)p;
            if (!mask[p]) continue;
            static const int dx[4] = {-1, -1, 0, 1}, dy[4] = {0, -1, -1, -1};   // the neighbours seen before
            for (int q = 0; q < 4; q++) {
                int xx = x + dx[q], yy = y + dy[q];
                if (xx < 0 || xx >= w || yy < 0 || !mask[(int64_t)yy * w + xx]) continue;
                int32_t a = uf_find(par, (int32_t)p), b = uf_find(par, (int32_t)((int64_t)yy * w + xx));
                if (a != b) par[a > b ? a : b] = a < b ? a : b;
            }
        }
    // Roots are the smallest index of their region, so regions come in raster order of their
    // first pixel: the box list below is deterministic.
    mine_box *bx = NULL;
    int64_t nb = 0, cap = 0, largest = 0;
    int rc = OODSEG_OK;
    int64_t *idx = err_malloc(e, (size_t)n * sizeof *idx, "the region table");
    if (!idx) { free(par); return e->code; }
    for (int64_t p = 0; p < n; p++) idx[p] = -1;
    for (int64_t p = 0; p < n && !rc; p++) {
        if (!mask[p]) continue;
        int32_t r = uf_find(par, (int32_t)p);
        if (idx[r] < 0) {
            if (nb == cap) {
                cap = cap ? cap * 2 : 64;
                mine_box *nbx = realloc(bx, (size_t)cap * sizeof *bx);
                if (!nbx) { rc = err_set(e, OODSEG_E_NOMEM, "out of memory for the regions"); break; }
                bx = nbx;
            }
            idx[r] = nb;
            bx[nb++] = (mine_box){(int)(p % w), (int)(p / w), (int)(p % w), (int)(p / w), 0};
        }
        mine_box *b = &bx[idx[r]];
        int x = (int)(p % w), y = (int)(p / w);
        if (x < b->x0) b->x0 = x;
        if (x > b->x1) b->x1 = x;
        if (y < b->y0) b->y0 = y;
        if (y > b->y1) b->y1 = y;
        b->pixels++;
    }
    for (int64_t i = 0; i < nb; i++) if (bx[i].pixels > largest) largest = bx[i].pixels;
    s->region = (double)largest / (double)n;
    // The largest regions above the floor, largest first (ties: raster order).
    s->n_boxes = 0;
    for (int k = 0; k < MINE_MAX_BOXES && !rc; k++) {
        int64_t best = -1;
        for (int64_t i = 0; i < nb; i++)
            if (bx[i].pixels >= min_pixels && bx[i].pixels > 0 && (best < 0 || bx[i].pixels > bx[best].pixels)) best = i;
        if (best < 0) break;
        s->boxes[s->n_boxes++] = bx[best];
        bx[best].pixels = -bx[best].pixels;   // taken
    }
    free(idx);
    free(bx);
    free(par);
    return rc;
}

int mine_score_frame(const pipeline_out *o, const mine_pixel_rule *rule, mine_scores *s, err *e) {
    memset(s, 0, sizeof *s);
    int64_t n = (int64_t)o->w * o->h;
    const float *sc = o->scores[0];
    float *tmp = err_malloc(e, (size_t)n * sizeof *tmp, "a copy of the score map");
    uint8_t *mask = tmp ? err_malloc(e, (size_t)n, "the anomalous pixels") : NULL;
    if (!mask) { free(tmp); return e->code; }
    memcpy(tmp, sc, (size_t)n * sizeof *tmp);
    // nearest rank below: the value at floor(P/100 (n-1)) of the sorted map
    int64_t k = (int64_t)floor(rule->percentile / 100.0 * (double)(n - 1));
    s->percentile = select_kth(tmp, n, k < 0 ? 0 : k >= n ? n - 1 : k);
    int64_t anomalous = 0;
    for (int64_t p = 0; p < n; p++) {
        int a = rule->has_threshold ? sc[p] > rule->threshold
              : rule->use_clusters && o->clusters ? o->ood_flag[o->clusters[p] & 255] != 0 : 0;
        mask[p] = (uint8_t)a;
        anomalous += a;
    }
    s->area = (double)anomalous / (double)n;
    int rc = regions(mask, o->w, o->h, s, (int64_t)ceil(rule->min_region * (double)n), e);
    free(tmp);
    free(mask);
    return rc;
}
