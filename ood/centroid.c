// The ID-centroid distance method (the variant of the public InternImage-OOD pipeline). Its
// centres come from a statistics file of `oodseg fit-centroids` (stats.c), loaded once by prepare.
//
// For a logit pixel predicted as class c with softmax confidence conf (among the ID channels) and
// nearest feature cell f (PyTorch 'nearest' mapping), let ratio = min over c's centres
// |f - centre| / mean_dist(c) (1 for a class without centres). The pixel is OoD when
// conf < centroid_conf and ratio > centroid_factor. The score is continuous so that AP and FPR95
// are defined: ratio for low-confidence pixels (>= 0; OoD exactly when the score exceeds
// centroid_factor), and -conf (in [-1, -centroid_conf]) for confident pixels, which therefore
// rank below every examined pixel, ordered by their softmax confidence.
#include "method.h"
#include "../nn/nn.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct centroid_state {
    ood_centroids c;
    float *cn;           // (max(total, 1)) |centre|^2, rounded to float
} centroid_state;

static void centroid_release(void *state) {
    centroid_state *s = state;
    if (!s) return;
    ood_centroids_free(&s->c);
    free(s->cn);
    free(s);
}

static int centroid_prepare(const ood_options *o, void **state, err *e) {
    *state = NULL;
    if (!o->centroids_file[0])
        return err_set(e, OODSEG_E_ARG, "needs --centroids FILE (written by `oodseg fit-centroids`)");
    centroid_state *s = err_calloc(e, 1, sizeof *s, "centroid method");
    if (!s) return OODSEG_E_NOMEM;
    int rc = ood_centroids_load(o->centroids_file, &s->c, e);
    if (rc) { free(s); return rc; }
    const ood_centroids *c = &s->c;
    if (!(s->cn = err_malloc(e, sizeof(float) * (c->total > 0 ? c->total : 1), "centre norms"))) {
        centroid_release(s);
        return OODSEG_E_NOMEM;
    }
    for (int j = 0; j < c->total; j++) {
        double q = 0;
        for (int t = 0; t < c->dim; t++) q += (double)c->C[(int64_t)j * c->dim + t] * c->C[(int64_t)j * c->dim + t];
        s->cn[j] = (float)q;
    }
    *state = s;
    return OODSEG_OK;
}

// dist (n, num_id): per feature vector of X (n, D) and class, the distance ratio to the class's
// nearest centre; G (n, max(total, 1)) scratch.
static void ratios(const nn_ctx *ctx, const centroid_state *s, const float *X, int64_t n, float *G, float *dist) {
    const ood_centroids *c = &s->c;
    const int D = c->dim, T = c->total > 0 ? c->total : 1;
    if (c->total > 0)
        nn_sgemm(0, 1, (int)n, c->total, D, 1.0f, X, D, c->C, D, 0.0f, G, T);
    #pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (int64_t i = 0; i < n; i++) {
        double xn = 0;
        for (int t = 0; t < D; t++) xn += (double)X[i * D + t] * X[i * D + t];
        for (int cl = 0; cl < c->num_id; cl++) {
            double best = INFINITY;
            for (int j = c->first[cl]; j < c->first[cl] + c->k[cl]; j++) {
                double d2 = xn + s->cn[j] - 2.0 * G[i * T + j];
                if (d2 < best) best = d2;
            }
            double ratio = 1.0;
            if (c->k[cl] > 0) ratio = sqrt(best > 0 ? best : 0) / fmax(c->mean_dist[cl], 1e-12);
            dist[i * c->num_id + cl] = (float)ratio;
        }
    }
}

static int centroid_score(const nn_ctx *ctx, const void *state, const ood_options *o, const ood_input *in,
                          float *score, ood_aux *aux, err *e) {
    (void)aux;
    const centroid_state *s = state;
    const ood_centroids *c = &s->c;
    const int h = in->h, w = in->w;
    const int64_t hw = (int64_t)h * w;
    if (c->num_id != in->num_id)
        return err_set(e, OODSEG_E_ARG, "centroid file %s has %d classes, the model %d in-distribution channels",
                       o->centroids_file, c->num_id, in->num_id);
    float *ml = err_malloc(e, sizeof(float) * hw, "max-logit map");
    float *conf = err_malloc(e, sizeof(float) * hw, "confidence map");
    int32_t *pred = err_malloc(e, sizeof(int32_t) * hw, "prediction map");
    float *X = NULL, *G = NULL, *dist = NULL;
    int rc = OODSEG_E_NOMEM, gh, gw, D, fs;
    if (!ml || !conf || !pred) goto done;
    if ((rc = ood_max_logit(ctx, in, ml, pred, conf, e))) goto done;
    if ((rc = ood_fuse_features(ctx, in, o, &X, &gh, &gw, &D, &fs, e))) goto done;
    if (D != c->dim) {
        rc = err_set(e, OODSEG_E_ARG, "centroid file %s has %d-dimensional centres, the fused features are %d-"
                     "dimensional: use the same --taps/--fuse-stride as `oodseg fit-centroids`", o->centroids_file,
                     c->dim, D);
        goto done;
    }
    const int64_t n = (int64_t)gh * gw;
    G = err_malloc(e, sizeof(float) * n * (c->total > 0 ? c->total : 1), "centroid distances");   // (n, total)
    dist = err_malloc(e, sizeof(float) * n * c->num_id, "centroid distances");                  // (n, num_id)
    if (!G || !dist) { rc = OODSEG_E_NOMEM; goto done; }
    ratios(ctx, s, X, n, G, dist);
    for (int y = 0; y < h; y++) {
        int64_t gy = (int64_t)y * gh / h;
        for (int x = 0; x < w; x++) {
            int64_t p = (int64_t)y * w + x, cell = gy * gw + (int64_t)x * gw / w;
            score[p] = conf[p] < o->centroid_conf ? dist[cell * c->num_id + pred[p]] : -conf[p];
        }
    }
    rc = OODSEG_OK;
done:
    free(ml); free(conf); free(pred); free(X); free(G); free(dist);
    return rc;
}

const ood_method_def ood_def_centroid = {
    "centroid", "distance to the in-distribution class centroids of `oodseg fit-centroids`", OOD_NEEDS_TAPS,
    "taps,fuse-stride,l2norm,centroids,centroid-conf,centroid-factor",
    centroid_prepare, centroid_score, centroid_release,
};
