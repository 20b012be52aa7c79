// SegmentMeIfYouCan component-level metrics (see components.h).
#include "components.h"
#include "metrics.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void comp_params_default(comp_params *p, int obstacle_track) {
    p->threshold = NAN;   // NaN: the caller applies comp_default_threshold
    p->connectivity = 8;
    p->min_pred_size = obstacle_track ? 50 : 500;
    p->min_gt_size = obstacle_track ? 10 : 100;
}

double comp_default_threshold(const metrics_result *r) {
    // Best F1 holds for score >= t; SMIYC predicts score > thr, so take the float just below t.
    return (double)nextafterf((float)r->best_f1_thr, -INFINITY);
}

double comp_delta(int i) { return i == COMP_NDELTA - 1 ? 0.75 : 0.25 + i * (0.5 / 10); }

static int32_t uf_find(int32_t *par, int32_t x) {
    while (par[x] != x) { par[x] = par[par[x]]; x = par[x]; }
    return x;
}
static void uf_union(int32_t *par, int32_t a, int32_t b) {
    a = uf_find(par, a); b = uf_find(par, b);
    if (a < b) par[b] = a; else if (b < a) par[a] = b;
}

// Labels the components of mask (1..n, 0 = background) as scipy.ndimage.label does (up to the
// numbering, which is in raster order of first pixels here too). par: scratch of w*h/2+2.
static int32_t cc_label(const uint8_t *mask, int w, int h, int conn, int32_t *lab, int32_t *par) {
    int32_t next = 1;
    par[0] = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int64_t i = (int64_t)y * w + x;
            if (!mask[i]) { lab[i] = 0; continue; }
            int32_t nb[4], k = 0;
            if (x > 0 && lab[i - 1]) nb[k++] = lab[i - 1];
            if (y > 0) {
                if (lab[i - w]) nb[k++] = lab[i - w];
                if (conn == 8 && x > 0 && lab[i - w - 1]) nb[k++] = lab[i - w - 1];
                if (conn == 8 && x < w - 1 && lab[i - w + 1]) nb[k++] = lab[i - w + 1];
            }
            if (!k) { par[next] = next; lab[i] = next++; continue; }
            int32_t m = nb[0];
            for (int j = 1; j < k; j++) if (nb[j] < m) m = nb[j];
            lab[i] = m;
            for (int j = 0; j < k; j++) uf_union(par, m, nb[j]);
        }
    // Roots to consecutive ids in one ascending pass: a parent always has a smaller id than its
    // child, so par[par[l]] already holds the final id of l's root when l is reached.
    int32_t n = 0;
    for (int32_t l = 1; l < next; l++) par[l] = (par[l] == l) ? ++n : par[par[l]];
    int64_t np = (int64_t)w * h;
    for (int64_t i = 0; i < np; i++) if (lab[i]) lab[i] = par[lab[i]];
    return n;
}

// A small open-addressing map (gt id, pred id) -> pixel count.
typedef struct pairmap { uint64_t *key; int64_t *cnt; size_t cap, n; } pairmap;
static int pm_add(pairmap *m, uint64_t k) {
    if (2 * (m->n + 1) > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        uint64_t *nk = malloc(cap * sizeof *nk);
        int64_t *nc = calloc(cap, sizeof *nc);
        if (!nk || !nc) { free(nk); free(nc); return -1; }
        memset(nk, 0xff, cap * sizeof *nk);
        for (size_t i = 0; i < m->cap; i++)
            if (m->key[i] != UINT64_MAX) {
                size_t h = (m->key[i] * 0x9E3779B97F4A7C15ull) >> 20 & (cap - 1);
                while (nk[h] != UINT64_MAX) h = (h + 1) & (cap - 1);
                nk[h] = m->key[i]; nc[h] = m->cnt[i];
            }
        free(m->key); free(m->cnt);
        m->key = nk; m->cnt = nc; m->cap = cap;
    }
    size_t h = (k * 0x9E3779B97F4A7C15ull) >> 20 & (m->cap - 1);
    while (m->key[h] != UINT64_MAX && m->key[h] != k) h = (h + 1) & (m->cap - 1);
    if (m->key[h] == UINT64_MAX) { m->key[h] = k; m->n++; }
    m->cnt[h]++;
    return 0;
}

// One image's components and their overlaps: G and P label the GT and predicted components,
// (g, q) -> pixels of g covered by q inside the region of interest, proi and phit count each
// prediction's pixels in that region and on GT.
typedef struct comp_img {
    int64_t n;
    int32_t ng, npr, *G, *P;
    int64_t *gsz, *psz, *proi, *phit;
    pairmap pm;
} comp_img;

static void comp_img_free(comp_img *c) {
    free(c->G); free(c->P);
    free(c->gsz); free(c->psz); free(c->proi); free(c->phit);
    free(c->pm.key); free(c->pm.cnt);
}

// Labels the GT (label 1) and predicted (score > threshold, not void) components of one image.
static int comp_label(comp_img *c, const float *scores, const uint8_t *labels, int w, int h,
                      const comp_params *p, err *e) {
    size_t n = (size_t)c->n;   // w * h with w, h >= 1 (checked by the caller)
    uint8_t *mg = malloc(n), *mp = malloc(n);
    int32_t *par = malloc((n / 2 + 2) * 4);
    c->G = malloc(n * 4); c->P = malloc(n * 4);
    int rc = OODSEG_OK;
    if (!mg || !mp || !c->G || !c->P || !par) rc = err_set(e, OODSEG_E_NOMEM, "components: out of memory for a %dx%d image", w, h);
    else {
        for (size_t i = 0; i < n; i++) {
            mg[i] = labels[i] == 1;
            mp[i] = labels[i] != 255 && (double)scores[i] > p->threshold;
        }
        c->ng = cc_label(mg, w, h, p->connectivity, c->G, par);
        c->npr = cc_label(mp, w, h, p->connectivity, c->P, par);
    }
    free(mg); free(mp); free(par);
    return rc;
}

// Sizes, then the overlaps inside the region of interest (not void, not a GT component too small
// to count) of the predictions that are large enough.
static int comp_overlaps(comp_img *c, const uint8_t *labels, const comp_params *p, err *e) {
    size_t ng1 = (size_t)(uint32_t)c->ng + 1, np1 = (size_t)(uint32_t)c->npr + 1;   // labels count from 1
    c->gsz = calloc(ng1, 8); c->psz = calloc(np1, 8);
    c->proi = calloc(np1, 8); c->phit = calloc(np1, 8);
    if (!c->gsz || !c->psz || !c->proi || !c->phit) return err_set(e, OODSEG_E_NOMEM, "components: out of memory");
    for (int64_t i = 0; i < c->n; i++) { c->gsz[c->G[i]]++; c->psz[c->P[i]]++; }
    for (int64_t i = 0; i < c->n; i++) {
        int32_t g = c->G[i], q = c->P[i];
        if (labels[i] == 255 || (g && c->gsz[g] < p->min_gt_size)) continue;   // outside the region of interest
        if (q && c->psz[q] < p->min_pred_size) q = 0;                           // too small a prediction
        if (!q) continue;
        c->proi[q]++;
        if (g) {
            c->phit[q]++;
            if (pm_add(&c->pm, (uint64_t)g << 32 | (uint32_t)q)) return err_set(e, OODSEG_E_NOMEM, "components: out of memory");
        }
    }
    return OODSEG_OK;
}

// sIoU of each GT component, PPV of each prediction, counted at every delta.
static int comp_score(comp_acc *a, const comp_img *c, const comp_params *p, err *e) {
    size_t ng1 = (size_t)(uint32_t)c->ng + 1;
    int64_t *ginter = calloc(ng1, 8), *gextra = calloc(ng1, 8);
    if (!ginter || !gextra) { free(ginter); free(gextra); return err_set(e, OODSEG_E_NOMEM, "components: out of memory"); }
    for (size_t i = 0; i < c->pm.cap; i++) {
        if (c->pm.key[i] == UINT64_MAX) continue;
        int32_t g = (int32_t)(c->pm.key[i] >> 32), q = (int32_t)(c->pm.key[i] & 0xffffffffu);
        ginter[g] += c->pm.cnt[i];
        gextra[g] += c->proi[q] - c->phit[q];
    }
    for (int32_t g = 1; g <= c->ng; g++) {
        if (c->gsz[g] < p->min_gt_size) continue;
        double siou = (double)ginter[g] / (double)(gextra[g] + c->gsz[g]);
        a->siou_sum += siou; a->n_gt++;
        for (int d = 0; d < COMP_NDELTA; d++) { if (siou >= comp_delta(d)) a->tp[d]++; else a->fn[d]++; }
    }
    for (int32_t q = 1; q <= c->npr; q++) {
        if (c->psz[q] < p->min_pred_size || c->proi[q] == 0) continue;
        double ppv = (double)c->phit[q] / (double)c->proi[q];
        a->ppv_sum += ppv; a->n_pred++;
        for (int d = 0; d < COMP_NDELTA; d++) if (ppv < comp_delta(d)) a->fp[d]++;
    }
    free(ginter); free(gextra);
    return OODSEG_OK;
}

int comp_add(comp_acc *a, const float *scores, const uint8_t *labels, int w, int h,
             const comp_params *p, err *e) {
    if (p->connectivity != 4 && p->connectivity != 8)
        return err_set(e, OODSEG_E_ARG, "components: connectivity %d; use 4 or 8", p->connectivity);
    if (p->threshold != p->threshold)
        return err_set(e, OODSEG_E_ARG, "components: no threshold set (use comp_default_threshold)");
    if (w < 1 || h < 1) return OODSEG_OK;   // an empty image has no components
    int64_t n = (int64_t)w * h;
    for (int64_t i = 0; i < n; i++)
        if (labels[i] > 1 && labels[i] != 255)
            return err_set(e, OODSEG_E_DATA, "components: label value %u at pixel (%lld, %lld); expected 0, 1 or 255",
                           labels[i], (long long)(i % w), (long long)(i / w));
    comp_img c = {.n = n};
    int rc = comp_label(&c, scores, labels, w, h, p, e);
    if (!rc) rc = comp_overlaps(&c, labels, p, e);
    if (!rc) rc = comp_score(a, &c, p, e);
    comp_img_free(&c);
    return rc;
}

void comp_finish(const comp_acc *a, comp_result *r) {
    memset(r, 0, sizeof *r);
    r->n_gt = a->n_gt; r->n_pred = a->n_pred;
    r->siou_gt = a->n_gt ? a->siou_sum / a->n_gt : NAN;
    r->ppv = a->n_pred ? a->ppv_sum / a->n_pred : NAN;
    for (int d = 0; d < COMP_NDELTA; d++) {
        int64_t den = 2 * a->tp[d] + a->fn[d] + a->fp[d];
        r->f1[d] = den ? 2.0 * a->tp[d] / den : NAN;
        r->f1_mean += r->f1[d];
    }
    r->f1_mean /= COMP_NDELTA;
}
