// Method options: the one place the defaults live, the command-line parser with range checks, the
// method names, and the ood_score dispatch.
#include "ood.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

// The defaults. The kmeans ones are placeholders until the sweep on the development set fixes
// them (METHOD.md); change them here and nowhere else.
void ood_options_default(ood_options *o) {
    memset(o, 0, sizeof *o);
    o->energy_T = 1.0;
    o->taps[0] = '\0';
    o->fuse_stride = 0;
    o->l2norm = 1;
    // The frozen defaults of the kmeans method: chosen on CamVid-OOD, see METHOD.md for the sweep.
    kmeans_params_default(&o->km);
    o->km.k = 16;
    o->km.n_init = 3;
    o->km.max_iter = 300;
    o->km.tol = 1e-4;
    o->km.seed = 0;
    o->upsample = UPS_NEAREST;
    o->stat = STAT_MEAN;
    o->rho = 0.5;
    o->tau_mode = TAU_PERCENTILE;
    o->tau = 25.0;
    o->tau_file[0] = '\0';
    o->score = SCORE_S2;
    o->big_b = 0.0;
    o->centroids_file[0] = '\0';
    o->centroid_conf = 0.5;
    o->centroid_factor = 1.1;
}

static const char *const method_names[OOD_NUM_METHODS] = {
    "msp", "maxlogit", "entropy", "energy", "kmeans", "centroid"};

const char *ood_method_name(ood_method m) {
    return (m >= 0 && m < OOD_NUM_METHODS) ? method_names[m] : "unknown";
}

int ood_method_parse(const char *name, ood_method *m, err *e) {
    for (int i = 0; i < OOD_NUM_METHODS; i++)
        if (name && strcasecmp(name, method_names[i]) == 0) { *m = (ood_method)i; return OODSEG_OK; }
    return err_set(e, OODSEG_E_ARG, "unknown method '%s'; methods: msp, maxlogit, entropy, energy, "
                   "kmeans, centroid", name ? name : "(null)");
}

const char *ood_options_help(void) {
    return
        "Method options (kmeans: the paper's per-image clustering; see METHOD.md):\n"
        "  --k N              clusters per image, 1..256 (default 16)\n"
        "  --taps LIST        comma list of feature taps to cluster (default: the model's)\n"
        "  --fuse-stride S    stride the taps are pooled/resized to, 0 = the coarsest tap's (default 0)\n"
        "  --l2norm M         0 none, 1 L2-normalise each tap before fusing, 2 only the fused vector (default 1)\n"
        "  --n-init N         k-means restarts, best inertia kept, 1..1000 (default 3)\n"
        "  --max-iter N       k-means iterations, 1..100000 (default 300)\n"
        "  --tol X            k-means tolerance relative to the mean feature variance, 0..1 (default 1e-4)\n"
        "  --seed N           k-means++ seed (default 0)\n"
        "  --upsample M       cluster map to the logit grid: nearest | bilinear (default nearest)\n"
        "  --stat M           cluster confidence: mean (mean max-logit < tau) | fraction\n"
        "                     (fraction of pixels with max-logit < tau > rho) (default mean)\n"
        "  --rho X            fraction threshold for --stat fraction, 0..1 (default 0.5)\n"
        "  --tau-mode M       absolute | percentile (of this image's max-logit) | calibrated (default percentile)\n"
        "  --tau X            max-logit threshold, or the percentile 0..100 (default 25; s1 and the OoD flags of the cluster picture)\n"
        "  --tau-file F       calibrated tau from `oodseg calibrate` (implies --tau-mode calibrated)\n"
        "  --score M          s1 (-maxlogit + B in OoD clusters) | s2 (cluster mean -maxlogit, no tau) (default s2)\n"
        "  --big-b X          S1 offset B >= 0, 0 = automatic: max-logit range + 1 (default 0)\n"
        "  --T X              energy temperature, > 0 (default 1)\n"
        "  --centroids F      centroid file from `oodseg fit-centroids` (method centroid)\n"
        "  --centroid-conf X  softmax confidence below which a pixel is examined, 0..1 (default 0.5)\n"
        "  --centroid-factor X  OoD when the distance exceeds X times the class mean, > 0 (default 1.1)\n";
}

static int bad(err *e, const char *key, const char *value, const char *range) {
    return err_set(e, OODSEG_E_ARG, "--%s %s: %s", key, value ? value : "(missing)", range);
}

static int get_int(const char *key, const char *v, long lo, long hi, int *out, err *e) {
    char range[96];
    snprintf(range, sizeof range, "expected an integer in [%ld, %ld]", lo, hi);
    if (!v || !*v) return bad(e, key, v, range);
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || x < lo || x > hi) return bad(e, key, v, range);
    *out = (int)x;
    return OODSEG_OK;
}

// lo_open/hi_open: the bound itself is excluded.
static int get_dbl(const char *key, const char *v, double lo, int lo_open, double hi, int hi_open,
                   double *out, err *e) {
    char range[128];
    snprintf(range, sizeof range, "expected a number in %c%g, %g%c", lo_open ? '(' : '[', lo, hi,
             hi_open ? ')' : ']');
    if (!v || !*v) return bad(e, key, v, range);
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || *end || !isfinite(x) || x < lo || x > hi || (lo_open && x == lo) ||
        (hi_open && x == hi))
        return bad(e, key, v, range);
    *out = x;
    return OODSEG_OK;
}

static int get_str(const char *key, const char *v, char *dst, size_t cap, err *e) {
    if (!v) return bad(e, key, v, "expected a value");
    if (strlen(v) >= cap) {
        char range[64];
        snprintf(range, sizeof range, "too long (at most %zu characters)", cap - 1);
        return bad(e, key, v, range);
    }
    memcpy(dst, v, strlen(v) + 1);
    return OODSEG_OK;
}

int ood_options_set(ood_options *o, const char *key, const char *v, err *e) {
    if (!key) return 1;
    if (!strcmp(key, "k")) return get_int(key, v, 1, 256, &o->km.k, e);
    if (!strcmp(key, "n-init")) return get_int(key, v, 1, 1000, &o->km.n_init, e);
    if (!strcmp(key, "max-iter")) return get_int(key, v, 1, 100000, &o->km.max_iter, e);
    if (!strcmp(key, "tol")) return get_dbl(key, v, 0, 0, 1, 0, &o->km.tol, e);
    if (!strcmp(key, "seed")) {
        char *end;
        errno = 0;
        if (!v || !*v || *v == '-') return bad(e, key, v, "expected an integer in [0, 2^64 - 1]");
        unsigned long long s = strtoull(v, &end, 10);
        if (errno || *end) return bad(e, key, v, "expected an integer in [0, 2^64 - 1]");
        o->km.seed = (uint64_t)s;
        return OODSEG_OK;
    }
    if (!strcmp(key, "taps")) return get_str(key, v, o->taps, sizeof o->taps, e);
    if (!strcmp(key, "fuse-stride")) return get_int(key, v, 0, 1024, &o->fuse_stride, e);
    if (!strcmp(key, "l2norm")) return get_int(key, v, 0, 2, &o->l2norm, e);
    if (!strcmp(key, "upsample")) {
        if (v && !strcasecmp(v, "nearest")) { o->upsample = UPS_NEAREST; return OODSEG_OK; }
        if (v && !strcasecmp(v, "bilinear")) { o->upsample = UPS_BILINEAR; return OODSEG_OK; }
        return bad(e, key, v, "expected nearest or bilinear");
    }
    if (!strcmp(key, "stat")) {
        if (v && !strcasecmp(v, "mean")) { o->stat = STAT_MEAN; return OODSEG_OK; }
        if (v && !strcasecmp(v, "fraction")) { o->stat = STAT_FRACTION; return OODSEG_OK; }
        return bad(e, key, v, "expected mean or fraction");
    }
    if (!strcmp(key, "rho")) return get_dbl(key, v, 0, 0, 1, 0, &o->rho, e);
    if (!strcmp(key, "tau-mode")) {
        if (v && !strcasecmp(v, "absolute")) { o->tau_mode = TAU_ABSOLUTE; return OODSEG_OK; }
        if (v && !strcasecmp(v, "percentile")) { o->tau_mode = TAU_PERCENTILE; return OODSEG_OK; }
        if (v && !strcasecmp(v, "calibrated")) { o->tau_mode = TAU_CALIBRATED; return OODSEG_OK; }
        return bad(e, key, v, "expected absolute, percentile or calibrated");
    }
    if (!strcmp(key, "tau")) return get_dbl(key, v, -1e30, 0, 1e30, 0, &o->tau, e);
    if (!strcmp(key, "tau-file")) {
        int rc = get_str(key, v, o->tau_file, sizeof o->tau_file, e);
        if (!rc) o->tau_mode = TAU_CALIBRATED;
        return rc;
    }
    if (!strcmp(key, "score")) {
        if (v && !strcasecmp(v, "s1")) { o->score = SCORE_S1; return OODSEG_OK; }
        if (v && !strcasecmp(v, "s2")) { o->score = SCORE_S2; return OODSEG_OK; }
        return bad(e, key, v, "expected s1 or s2");
    }
    if (!strcmp(key, "big-b")) return get_dbl(key, v, 0, 0, 1e30, 0, &o->big_b, e);
    if (!strcmp(key, "T")) return get_dbl(key, v, 0, 1, 1e6, 0, &o->energy_T, e);
    if (!strcmp(key, "centroids")) return get_str(key, v, o->centroids_file, sizeof o->centroids_file, e);
    if (!strcmp(key, "centroid-conf")) return get_dbl(key, v, 0, 0, 1, 0, &o->centroid_conf, e);
    if (!strcmp(key, "centroid-factor")) return get_dbl(key, v, 0, 1, 1e6, 0, &o->centroid_factor, e);
    return 1;
}

// Checks a whole option set before a method runs (options may also be filled by hand, not only
// through ood_options_set): the message names the option and its range.
int ood_options_check(const ood_options *o, ood_method m, err *e) {
    if (m == OOD_ENERGY && !(o->energy_T > 0 && isfinite(o->energy_T)))
        return err_set(e, OODSEG_E_ARG, "--T %g: the energy temperature must be > 0", o->energy_T);
    if (m == OOD_KMEANS || m == OOD_CENTROID) {
        if (o->fuse_stride < 0)
            return err_set(e, OODSEG_E_ARG, "--fuse-stride %d: expected an integer >= 0", o->fuse_stride);
        if (o->l2norm < 0 || o->l2norm > 2)
            return err_set(e, OODSEG_E_ARG, "--l2norm %d: expected 0, 1 or 2", o->l2norm);
    }
    if (m == OOD_KMEANS) {
        if (o->km.k < 1 || o->km.k > 256)
            return err_set(e, OODSEG_E_ARG, "--k %d: expected an integer in [1, 256]", o->km.k);
        if (o->km.n_init < 1)
            return err_set(e, OODSEG_E_ARG, "--n-init %d: expected an integer >= 1", o->km.n_init);
        if (o->km.max_iter < 1)
            return err_set(e, OODSEG_E_ARG, "--max-iter %d: expected an integer >= 1", o->km.max_iter);
        if (!(o->km.tol >= 0 && o->km.tol <= 1))
            return err_set(e, OODSEG_E_ARG, "--tol %g: expected a number in [0, 1]", o->km.tol);
        if (o->stat == STAT_FRACTION && !(o->rho >= 0 && o->rho <= 1))
            return err_set(e, OODSEG_E_ARG, "--rho %g: expected a number in [0, 1]", o->rho);
        if (o->tau_mode == TAU_PERCENTILE && !(o->tau >= 0 && o->tau <= 100))
            return err_set(e, OODSEG_E_ARG, "--tau %g: with --tau-mode percentile, tau is a percentile in [0, 100]",
                           o->tau);
        if (o->tau_mode == TAU_ABSOLUTE && !isfinite(o->tau))
            return err_set(e, OODSEG_E_ARG, "--tau %g: expected a finite number", o->tau);
        if (o->tau_mode == TAU_CALIBRATED && !o->tau_file[0])
            return err_set(e, OODSEG_E_ARG, "--tau-mode calibrated needs --tau-file (written by `oodseg calibrate`)");
        if (!(o->big_b >= 0 && isfinite(o->big_b)))
            return err_set(e, OODSEG_E_ARG, "--big-b %g: expected a number >= 0 (0 = automatic)", o->big_b);
    }
    if (m == OOD_CENTROID) {
        if (!o->centroids_file[0])
            return err_set(e, OODSEG_E_ARG, "method centroid needs --centroids FILE (written by `oodseg fit-centroids`)");
        if (!(o->centroid_conf > 0 && o->centroid_conf <= 1))
            return err_set(e, OODSEG_E_ARG, "--centroid-conf %g: expected a number in (0, 1]", o->centroid_conf);
        if (!(o->centroid_factor > 0 && isfinite(o->centroid_factor)))
            return err_set(e, OODSEG_E_ARG, "--centroid-factor %g: expected a number > 0", o->centroid_factor);
    }
    return OODSEG_OK;
}

int ood_check_input(const ood_input *in, int need_feats, err *e) {
    if (!in || !in->logits || in->h < 1 || in->w < 1 || in->num_outputs < 1)
        return err_set(e, OODSEG_E_ARG, "OoD scoring: no logits");
    if (in->num_id < 1 || !in->id_channels)
        return err_set(e, OODSEG_E_ARG, "OoD scoring: no in-distribution channels");
    for (int i = 0; i < in->num_id; i++)
        if (in->id_channels[i] < 0 || in->id_channels[i] >= in->num_outputs)
            return err_set(e, OODSEG_E_ARG, "OoD scoring: in-distribution channel %d outside the %d logit channels",
                           in->id_channels[i], in->num_outputs);
    if (need_feats) {
        if (in->num_feats < 1 || !in->feats)
            return err_set(e, OODSEG_E_ARG, "OoD scoring: the method needs at least one feature tap, none given");
        for (int t = 0; t < in->num_feats; t++) {
            const tensor *f = in->feats[t];
            if (!f || !f->data || f->ndim != 4 || f->shape[0] != 1 || f->shape[1] < 1 ||
                f->shape[2] < 1 || f->shape[3] < 1)
                return err_set(e, OODSEG_E_ARG, "OoD scoring: feature tap %d ('%s') is not a (1, C, h, w) tensor",
                               t, f ? f->name : "(null)");
            if (!in->feat_strides || in->feat_strides[t] < 1)
                return err_set(e, OODSEG_E_ARG, "OoD scoring: feature tap %d ('%s') has no stride >= 1",
                               t, f->name);
        }
    }
    return OODSEG_OK;
}

int ood_score(ood_method m, const ood_input *in, const ood_options *o, float *score,
              ood_aux *aux, err *e) {
    ood_options def;
    if (!o) { ood_options_default(&def); o = &def; }
    if (m < 0 || m >= OOD_NUM_METHODS)
        return err_set(e, OODSEG_E_ARG, "unknown OoD method number %d", (int)m);
    int rc = ood_options_check(o, m, e);
    if (rc) return rc;
    rc = ood_check_input(in, m == OOD_KMEANS || m == OOD_CENTROID, e);
    if (rc) return rc;
    switch (m) {
    case OOD_MSP: case OOD_MAXLOGIT: case OOD_ENTROPY: case OOD_ENERGY:
        return ood_baseline(m, in, o->energy_T, score, e);
    case OOD_KMEANS:
        return ood_cluster_score(in, o, score, aux, e);
    case OOD_CENTROID:
        return ood_centroid_score(in, o, score, e);
    default:
        return err_set(e, OODSEG_E_ARG, "unknown OoD method number %d", (int)m);
    }
}

int ood_options_json(const ood_options *o, char *buf, size_t n) {
    static const char *const ups[] = {"nearest", "bilinear"}, *const stats[] = {"mean", "fraction"},
                             *const taus[] = {"absolute", "percentile", "calibrated"}, *const sc[] = {"s1", "s2"};
    return snprintf(buf, n,
                    "{\"k\": %d, \"n_init\": %d, \"max_iter\": %d, \"tol\": %g, \"seed\": %llu, "
                    "\"taps\": \"%s\", \"fuse_stride\": %d, \"l2norm\": %d, \"upsample\": \"%s\", "
                    "\"stat\": \"%s\", \"rho\": %g, \"tau_mode\": \"%s\", \"tau\": %g, \"score\": \"%s\", "
                    "\"big_b\": %g, \"energy_T\": %g, \"centroid_conf\": %g, \"centroid_factor\": %g}",
                    o->km.k, o->km.n_init, o->km.max_iter, o->km.tol, (unsigned long long)o->km.seed,
                    o->taps[0] ? o->taps : "(model default)", o->fuse_stride, o->l2norm, ups[o->upsample & 1],
                    stats[o->stat & 1], o->rho, taus[o->tau_mode % 3], o->tau, sc[o->score & 1], o->big_b,
                    o->energy_T, o->centroid_conf, o->centroid_factor);
}
