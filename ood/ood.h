// OoD scoring methods. A method sees only logits, feature taps and which channels are
// in-distribution; it never knows the architecture. Scores: higher = more anomalous, one value per
// logit pixel (the logits' resolution). The caller resizes the map to the image size.
#ifndef OODSEG_OOD_OOD_H
#define OODSEG_OOD_OOD_H

#include <stdint.h>
#include "../core/err.h"
#include "../nn/tensor.h"
#include "../nn/ctx.h"
#include "kmeans.h"

typedef struct ood_input {
    const nn_ctx *ctx;          // threads (and device) the method runs with
    const float *logits;        // (num_outputs, h, w)
    int num_outputs, h, w;
    const int *id_channels;     // the in-distribution channels; all others are ignored
    int num_id;
    const tensor *const *feats; // feature taps, each (1, C, h', w') NCHW, in the order asked for
    const int *feat_strides;    // stride of each tap relative to the logits grid (>= 1)
    int num_feats;
} ood_input;

typedef enum { OOD_MSP, OOD_MAXLOGIT, OOD_ENTROPY, OOD_ENERGY, OOD_KMEANS, OOD_CENTROID,
               OOD_NUM_METHODS } ood_method;
typedef enum { UPS_NEAREST, UPS_BILINEAR } ood_upsample;
typedef enum { STAT_MEAN, STAT_FRACTION } ood_stat;
typedef enum { TAU_ABSOLUTE, TAU_PERCENTILE, TAU_CALIBRATED } ood_tau_mode;
typedef enum { SCORE_S1, SCORE_S2 } ood_score_kind;

typedef struct ood_options {
    double energy_T;            // Energy temperature (default 1)
    // kmeans (the paper's method); defaults frozen in METHOD.md
    char taps[256];             // comma list of tap names; "" = the model's default taps
    int fuse_stride;            // stride (vs the logits grid) the fused taps are pooled to; 0 = coarsest tap's
    int l2norm;                 // L2-normalise each tap's vectors before fusing (default 1)
    kmeans_params km;
    ood_upsample upsample;
    ood_stat stat;
    double rho;                 // STAT_FRACTION: a cluster is OoD when its fraction below tau > rho
    ood_tau_mode tau_mode;
    double tau;                 // absolute max-logit value, or a percentile in [0, 100]
    char tau_file[1024];        // TAU_CALIBRATED: file written by `oodseg calibrate`
    ood_score_kind score;
    double big_b;               // S1 offset; 0 = automatic (max-logit range + 1)
    // centroid (ID-centroid distance)
    char centroids_file[1024];
    double centroid_conf;       // softmax confidence below which a pixel is examined (0.5)
    double centroid_factor;     // distance factor over the class mean distance (1.1)
} ood_options;

void ood_options_default(ood_options *o);
// Sets one method option from the command line: key is the flag without "--" ("k", "tau",
// "tau-mode", "score", "taps", "fuse-stride", "l2norm", "n-init", "max-iter", "tol", "seed",
// "upsample", "stat", "rho", "T", "big-b", "centroids", "tau-file"). Returns 1 when key is not a
// method option (the caller reports it), OODSEG_E_ARG for a bad or out-of-range value (the message
// names the option, the value and the allowed range), else OODSEG_OK.
int ood_options_set(ood_options *o, const char *key, const char *value, err *e);
// One line per option with its default, for --help.
const char *ood_options_help(void);
// Every method option as resolved (defaults included), as a JSON object, for reports. Returns
// what snprintf returns.
int ood_options_json(const ood_options *o, char *buf, size_t n);
int ood_method_parse(const char *name, ood_method *m, err *e);   // "msp", "maxlogit", ...
const char *ood_method_name(ood_method m);

// Extra outputs of the cluster method, for pictures: the cluster id of each logit pixel and which
// clusters were marked OoD. May be NULL.
typedef struct ood_aux {
    int32_t *clusters;          // (h, w) of the logits grid, caller-allocated or NULL
    int k;
    uint8_t ood_flag[256];
    double tau_used;
} ood_aux;

// score: h*w floats. Errors: bad options (names the option and its range), NaN in features or
// logits, K larger than the number of feature vectors.
int ood_score(ood_method m, const ood_input *in, const ood_options *o, float *score,
              ood_aux *aux, err *e);

// ID statistics for the centroid method and for calibrated tau: `oodseg fit-centroids` and
// `oodseg calibrate` accumulate over in-distribution images, then save a small text file.
typedef struct ood_stats ood_stats;
int ood_stats_new(ood_stats **s, int num_id, int k_per_class, err *e);
int ood_stats_add(ood_stats *s, const ood_input *in, const ood_options *o, err *e);
int ood_stats_save(ood_stats *s, const char *path, err *e);
void ood_stats_free(ood_stats *s);

// ---- building blocks (ood/options.c, baselines.c, cluster.c, centroid.c) --------------------
// Whole-option-set check for method m (also for options filled by hand); the message names the
// option and its range.
int ood_options_check(const ood_options *o, ood_method m, err *e);
// Shape and channel checks of an input; need_feats: at least one (1, C, h, w) tap with a stride.
int ood_check_input(const ood_input *in, int need_feats, err *e);
// MSP, MaxLogit, Entropy, Energy over the in-distribution channels, in double per pixel.
int ood_baseline(ood_method m, const ood_input *in, double T, float *score, err *e);
// Per-pixel max logit over the in-distribution channels: ml (h*w); pred (h*w, may be NULL): the
// in-distribution channel index (0..num_id-1 order of id_channels) reaching it; conf (h*w, may be
// NULL): its softmax probability among the in-distribution channels. Errors on NaN/Inf logits.
int ood_max_logit(const ood_input *in, float *ml, int32_t *pred, float *conf, err *e);
// The feature vectors the cluster and centroid methods use: the taps of `in` brought to one grid
// (stride o->fuse_stride, 0 = the coarsest tap's; average pooling when coarser, bilinear when
// finer), L2-normalised per o->l2norm (1: each tap, 2: the fused vector), concatenated.
// *X: malloc'd (gh*gw, dim) row-major; *stride: the grid's stride vs the logits.
int ood_fuse_features(const ood_input *in, const ood_options *o, float **X, int *gh, int *gw,
                      int *dim, int *stride, err *e);
// numpy.percentile (linear interpolation) of v[0..n), pct in [0, 100].
int ood_percentile(const float *v, int64_t n, double pct, double *out, err *e);
// The calibrated tau of a file written by ood_stats_save (its "tau" line).
int ood_read_tau(const char *path, double *tau, err *e);
// The kmeans method (cluster.c) and the centroid method (centroid.c).
int ood_cluster_score(const ood_input *in, const ood_options *o, float *score, ood_aux *aux, err *e);
int ood_centroid_score(const ood_input *in, const ood_options *o, float *score, err *e);

// Softmax confidence above which a pixel's feature is used to fit the class centroids.
#define OOD_FIT_CONF 0.9

#endif
