// ID statistics of in-distribution images, and their file: what `oodseg fit-centroids` and
// `oodseg calibrate` write, what the centroid method and the calibrated tau of the kmeans method
// read (once, when the method is opened).
//
// Fitting (`oodseg fit-centroids`, `oodseg calibrate`): over in-distribution images,
//  - every logit pixel's max-logit (over the ID channels) goes into a reservoir sample of 2^20
//    values; the saved tau is its percentile o->tau (TAU_PERCENTILE / TAU_CALIBRATED options; 5
//    when o->tau is not a percentile), with a table of other percentiles for reference;
//  - with k_per_class > 0, the fused features (ood_fuse_features: the same taps, stride and
//    normalisation as the kmeans method) of each feature cell whose centre pixel is predicted as
//    class c with softmax confidence >= OOD_FIT_CONF go into class c's reservoir (at most ~256 MB
//    in all). At save, K-Means (k_per_class centres, k-means++, 3 restarts, seed 0) per class, and
//    the class's mean Euclidean distance of its samples to their nearest centre. A class with
//    fewer samples than k_per_class gets no centres.
//
// The file (text, one record per line):
//   oodseg-stats 1
//   num_id <N> k_per_class <K> dim <D>
//   fuse taps <list or -> fuse_stride <S> l2norm <M>
//   tau <value> percentile <p> pixels <count of max-logit values seen>
//   pct <p1> <v1> <p2> <v2> ...          (percentiles of the ID max-logit)
//   class <c> k <kc> samples <n> mean_dist <m>     (c = index into the ID channels)
//   <D floats>                            (kc lines: the centres)
//   end
// `oodseg calibrate` writes it with k_per_class 0 (no class records); --tau-file reads the tau line.
#include "../core/outfile.h"
#include "ood.h"
#include "../io/file.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ML_CAP (1 << 20)
#define FEAT_BYTES ((int64_t)256 << 20)

struct ood_stats {
    int num_id, kpc, dim;            // dim: 0 until the first image with centroids
    char taps[256];
    int fuse_stride, l2norm;
    double tau_pct;
    int64_t cap;                     // feature vectors kept per class
    float **vec;                     // num_id buffers (cap, dim), allocated on first use
    int64_t *seen, *kept;
    float *mlv;                      // (ML_CAP) max-logit reservoir
    int64_t ml_seen, ml_kept;
    uint64_t rng;
};

static uint64_t next_rng(uint64_t *s) {   // splitmix64
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int ood_stats_new(ood_stats **out, int num_id, int k_per_class, err *e) {
    *out = NULL;
    if (num_id < 1 || num_id > 256)
        return err_set(e, OODSEG_E_ARG, "ID statistics: %d in-distribution classes, expected 1..256", num_id);
    if (k_per_class < 0 || k_per_class > 256)
        return err_set(e, OODSEG_E_ARG, "--k-per-class %d: expected an integer in [0, 256]", k_per_class);
    ood_stats *s = err_calloc(e, 1, sizeof *s, "ID statistics");
    if (!s) return OODSEG_E_NOMEM;
    s->num_id = num_id;
    s->kpc = k_per_class;
    s->tau_pct = 5;
    s->rng = 0x5EED;
    s->vec = err_calloc(e, num_id, sizeof(float *), "ID statistics");
    s->seen = err_calloc(e, num_id, sizeof(int64_t), "ID statistics");
    s->kept = err_calloc(e, num_id, sizeof(int64_t), "ID statistics");
    s->mlv = err_malloc(e, sizeof(float) * ML_CAP, "max-logit sample");
    if (!s->vec || !s->seen || !s->kept || !s->mlv) { ood_stats_free(s); return OODSEG_E_NOMEM; }
    *out = s;
    return OODSEG_OK;
}

void ood_stats_free(ood_stats *s) {
    if (!s) return;
    if (s->vec) for (int c = 0; c < s->num_id; c++) free(s->vec[c]);
    free(s->vec); free(s->seen); free(s->kept); free(s->mlv);
    free(s);
}

// Reservoir sampling (Algorithm R): slot for the item number `seen` (0-based), or -1 to drop it.
static int64_t reservoir_slot(uint64_t *rng, int64_t seen, int64_t cap) {
    if (seen < cap) return seen;
    int64_t j = (int64_t)(next_rng(rng) % (uint64_t)(seen + 1));
    return j < cap ? j : -1;
}

int ood_stats_add(ood_stats *s, const nn_ctx *ctx, const ood_input *in, const ood_options *o, err *e) {
    ood_options def;
    if (!o) { ood_options_default(&def); o = &def; }
    int rc = ood_check_input(in, s->kpc > 0, e);
    if (rc) return rc;
    if (in->num_id != s->num_id)
        return err_set(e, OODSEG_E_ARG, "ID statistics: the input has %d in-distribution channels, the statistics %d",
                       in->num_id, s->num_id);
    const int h = in->h, w = in->w;
    const int64_t hw = (int64_t)h * w;
    float *ml = err_malloc(e, sizeof(float) * hw, "max-logit map");
    float *conf = err_malloc(e, sizeof(float) * hw, "confidence map");
    int32_t *pred = err_malloc(e, sizeof(int32_t) * hw, "prediction map");
    float *X = NULL;
    rc = OODSEG_E_NOMEM;
    if (!ml || !conf || !pred) goto done;
    if ((rc = ood_max_logit(ctx, in, ml, pred, conf, e))) goto done;
    if (o->tau_mode != TAU_ABSOLUTE && o->tau >= 0 && o->tau <= 100) s->tau_pct = o->tau;
    for (int64_t p = 0; p < hw; p++) {
        int64_t j = reservoir_slot(&s->rng, s->ml_seen++, ML_CAP);
        if (j >= 0) s->mlv[j] = ml[p];
    }
    s->ml_kept = s->ml_seen < ML_CAP ? s->ml_seen : ML_CAP;
    if (s->kpc > 0) {
        int gh, gw, D, fs;
        if ((rc = ood_fuse_features(ctx, in, o, &X, &gh, &gw, &D, &fs, e))) goto done;
        if (s->dim == 0) {
            s->dim = D;
            s->taps[0] = '\0';   // the taps actually given, as a comma list
            for (int t = 0; t < in->num_feats; t++) {
                size_t l = strlen(s->taps);
                snprintf(s->taps + l, sizeof s->taps - l, "%s%s", t ? "," : "", in->feats[t]->name);
            }
            if (!s->taps[0]) snprintf(s->taps, sizeof s->taps, "-");
            s->fuse_stride = o->fuse_stride;
            s->l2norm = o->l2norm;
            s->cap = FEAT_BYTES / ((int64_t)s->num_id * D * (int64_t)sizeof(float));
            if (s->cap < 256) s->cap = 256;
            if (s->cap > 8192) s->cap = 8192;
        } else if (s->dim != D) {
            rc = err_set(e, OODSEG_E_ARG, "ID statistics: feature dimension %d differs from the first image's %d",
                         D, s->dim);
            goto done;
        }
        for (int gy = 0; gy < gh; gy++)
            for (int gx = 0; gx < gw; gx++) {
                int y = (int)(((double)gy + 0.5) * h / gh), x = (int)(((double)gx + 0.5) * w / gw);
                if (y > h - 1) y = h - 1;
                if (x > w - 1) x = w - 1;
                int64_t p = (int64_t)y * w + x;
                if (conf[p] < OOD_FIT_CONF) continue;
                int c = pred[p];
                if (!s->vec[c]) {
                    s->vec[c] = err_malloc(e, sizeof(float) * s->cap * D, "class feature sample");
                    if (!s->vec[c]) { rc = OODSEG_E_NOMEM; goto done; }
                }
                int64_t j = reservoir_slot(&s->rng, s->seen[c]++, s->cap);
                if (j >= 0) memcpy(s->vec[c] + j * D, X + ((int64_t)gy * gw + gx) * D, sizeof(float) * D);
                if (s->kept[c] < s->cap) s->kept[c]++;
            }
    }
    rc = OODSEG_OK;
done:
    free(ml); free(conf); free(pred); free(X);
    return rc;
}

int ood_stats_save(ood_stats *s, const nn_ctx *ctx, const char *path, err *e) {
    if (s->ml_kept == 0) return err_set(e, OODSEG_E_ARG, "ID statistics: no image was added");
    outfile of;
    if (outfile_open(&of, path, e)) return e->code;
    FILE *f = of.f;
    double tau;
    int rc = ood_percentile(s->mlv, s->ml_kept, s->tau_pct, &tau, e);
    if (rc) { outfile_abort(&of); return rc; }
    fprintf(f, "oodseg-stats 1\nnum_id %d k_per_class %d dim %d\n", s->num_id, s->kpc, s->dim);
    fprintf(f, "fuse taps %s fuse_stride %d l2norm %d\n", s->taps[0] ? s->taps : "-", s->fuse_stride, s->l2norm);
    fprintf(f, "tau %.9g percentile %g pixels %lld\npct", tau, s->tau_pct, (long long)s->ml_seen);
    static const double pcts[] = {0.5, 1, 2, 5, 10, 15, 20, 25, 30, 40, 50, 75, 90, 95, 99};
    for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++) {
        double v;
        if ((rc = ood_percentile(s->mlv, s->ml_kept, pcts[i], &v, e))) { outfile_abort(&of); return rc; }
        fprintf(f, " %g %.9g", pcts[i], v);
    }
    fprintf(f, "\n");
    for (int c = 0; c < s->num_id && s->kpc > 0; c++) {
        if (s->kept[c] < s->kpc) {
            fprintf(f, "class %d k 0 samples %lld mean_dist 0\n", c, (long long)s->kept[c]);
            continue;
        }
        kmeans_params p;
        kmeans_params_default(&p);
        p.k = s->kpc;
        p.n_init = 3;
        kmeans_result r;
        if ((rc = kmeans_fit(ctx, s->vec[c], s->kept[c], s->dim, &p, NULL, &r, e))) {
            err_prefix(e, "centroids of class %d: ", c);
            outfile_abort(&of);
            return rc;
        }
        double md = 0;
        for (int64_t i = 0; i < s->kept[c]; i++) {
            const float *x = s->vec[c] + i * s->dim, *ce = r.centers + (int64_t)r.labels[i] * s->dim;
            double q = 0;
            for (int t = 0; t < s->dim; t++) { double v = (double)x[t] - ce[t]; q += v * v; }
            md += sqrt(q);
        }
        md /= (double)s->kept[c];
        fprintf(f, "class %d k %d samples %lld mean_dist %.9g\n", c, s->kpc, (long long)s->kept[c], md);
        for (int j = 0; j < s->kpc; j++) {
            for (int t = 0; t < s->dim; t++) fprintf(f, t ? " %.9g" : "%.9g", r.centers[(int64_t)j * s->dim + t]);
            fprintf(f, "\n");
        }
        kmeans_result_free(&r);
    }
    fprintf(f, "end\n");
    return outfile_commit(&of, 1, e);
}

// A statistics file opened for reading: a regular file only (a FIFO never blocks), the message
// saying which command writes it.
static FILE *open_stats(const char *path, const char *what, const char *command, err *e) {
    FILE *f = io_fopen_regular(path, what, NULL, e);
    if (!f) {
        size_t l = strlen(e->msg);
        snprintf(e->msg + l, sizeof e->msg - l, " (write it with `oodseg %s`)", command);
    }
    return f;
}

int ood_read_tau(const char *path, double *tau, err *e) {
    FILE *f = open_stats(path, "tau file", "calibrate", e);
    if (!f) return e->code;
    char line[512];
    int ok = 0;
    if (!fgets(line, sizeof line, f) || strncmp(line, "oodseg-stats 1", 14) != 0) {
        fclose(f);
        return err_set(e, OODSEG_E_FORMAT, "%s is not an oodseg statistics file (no 'oodseg-stats 1' header)", path);
    }
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "tau %lf", tau) == 1) { ok = isfinite(*tau); break; }
    fclose(f);
    if (!ok) return err_set(e, OODSEG_E_FORMAT, "%s: no valid 'tau' line", path);
    return OODSEG_OK;
}

void ood_centroids_free(ood_centroids *c) {
    if (!c) return;
    free(c->k); free(c->first); free(c->mean_dist); free(c->C);
    memset(c, 0, sizeof *c);
}

int ood_centroids_load(const char *path, ood_centroids *c, err *e) {
    memset(c, 0, sizeof *c);
    FILE *f = open_stats(path, "centroid file", "fit-centroids", e);
    if (!f) return e->code;
    int ver = 0, kpc = 0, rc = OODSEG_E_FORMAT;
    if (fscanf(f, "oodseg-stats %d num_id %d k_per_class %d dim %d", &ver, &c->num_id, &kpc, &c->dim) != 4 ||
        ver != 1 || c->num_id < 1 || c->num_id > 256 || kpc < 1 || c->dim < 1) {
        fclose(f);
        return err_set(e, OODSEG_E_FORMAT, "%s: not a centroid file (needs the header of `oodseg fit-centroids` with "
                       "k_per_class >= 1)", path);
    }
    c->k = calloc(c->num_id, sizeof(int));
    c->first = calloc(c->num_id, sizeof(int));
    c->mean_dist = calloc(c->num_id, sizeof(double));
    c->C = malloc(sizeof(float) * (size_t)c->num_id * kpc * c->dim);
    if (!c->k || !c->first || !c->mean_dist || !c->C) { rc = err_set(e, OODSEG_E_NOMEM, "centroid file %s: out of memory", path); goto fail; }
    char word[64];
    while (fscanf(f, "%63s", word) == 1) {
        if (!strcmp(word, "end")) { fclose(f); return OODSEG_OK; }
        if (strcmp(word, "class")) continue;   // other records: skip word by word
        int cls, kc;
        long long ns;
        double md;
        if (fscanf(f, "%d k %d samples %lld mean_dist %lf", &cls, &kc, &ns, &md) != 4 || cls < 0 ||
            cls >= c->num_id || kc < 0 || kc > kpc || !(md >= 0)) {
            rc = err_set(e, OODSEG_E_FORMAT, "%s: bad class record", path);
            goto fail;
        }
        c->k[cls] = kc;
        c->first[cls] = c->total;
        c->mean_dist[cls] = md;
        for (int64_t q = 0; q < (int64_t)kc * c->dim; q++) {
            if (fscanf(f, "%f", &c->C[(int64_t)c->total * c->dim + q]) != 1) {
                rc = err_set(e, OODSEG_E_FORMAT, "%s: class %d: truncated centre values", path, cls);
                goto fail;
            }
        }
        c->total += kc;
    }
    rc = err_set(e, OODSEG_E_FORMAT, "%s: truncated (no 'end' line)", path);
fail:
    fclose(f);
    ood_centroids_free(c);
    return rc;
}
