// OoD scoring: what every method sees (ood_input), its options (ood_options, one spec table in
// options.c), the building blocks several methods share (features.c) and the ID statistics of
// `oodseg fit-centroids` / `oodseg calibrate` (stats.c). The methods themselves are opened and
// run through the method table, ood/method.h.
//
// A method sees only logits, feature taps and which channels are in-distribution; it never knows
// the architecture. Scores: higher = more anomalous, one value per logit pixel (the logits'
// resolution). The caller resizes the map to the image size.
#ifndef OODSEG_OOD_OOD_H
#define OODSEG_OOD_OOD_H

#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include "../core/err.h"
#include "../nn/ctx.h"
#include "../nn/tensor.h"
#include "kmeans.h"

typedef struct ood_input {
    const float *logits;        // (num_outputs, h, w)
    int num_outputs, h, w;
    const int *id_channels;     // the in-distribution channels; all others are ignored
    int num_id;
    const tensor *const *feats; // feature taps, each (1, C, h', w') NCHW, in the order asked for
    const int *feat_strides;    // stride of each tap relative to the logits grid (>= 1)
    int num_feats;
    // The max logit over the in-distribution channels and the index reaching it (ood_max_logit's
    // ml and pred, h*w each) when the caller computed them once for all its methods; NULL: every
    // method that needs them computes them. The caller vouches that the logits are finite.
    const float *max_logit;
    const int32_t *argmax;
} ood_input;

// Extra outputs of a method that makes a cluster map (OOD_MAKES_CLUSTERS), for pictures: the
// cluster id of each logit pixel and which clusters were marked OoD. May be NULL.
typedef struct ood_aux {
    int32_t *clusters;          // (h, w) of the logits grid, caller-allocated or NULL
    int k;
    uint8_t ood_flag[256];
    double tau_used;
} ood_aux;

// ---- options ----------------------------------------------------------------------------------
// Each enum option is stored as its choice's index in the option table (options.c).
typedef enum { UPS_NEAREST, UPS_BILINEAR } ood_upsample;
typedef enum { STAT_MEAN, STAT_FRACTION } ood_stat;
typedef enum { TAU_ABSOLUTE, TAU_PERCENTILE, TAU_CALIBRATED } ood_tau_mode;
typedef enum { SCORE_S1, SCORE_S2 } ood_score_kind;

// Every method's options in one struct; a method reads the ones its table entry lists. The
// defaults, ranges and help text are in the option table in options.c, and nowhere else.
typedef struct ood_options {
    double energy_T;            // Energy temperature
    // kmeans (the paper's method); defaults frozen in METHOD.md
    char taps[256];             // comma list of tap names; "" = the model's default taps
    int fuse_stride;            // stride (vs the logits grid) the fused taps are pooled to; 0 = coarsest tap's
    int l2norm;                 // 0 none, 1 L2-normalise each tap before fusing, 2 the fused vector
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
    double centroid_conf;       // softmax confidence below which a pixel is examined
    double centroid_factor;     // distance factor over the class mean distance
} ood_options;

// The frozen defaults (METHOD.md), from the option table.
void ood_options_default(ood_options *o);
// Sets one method option from the command line: key is the flag without "--" ("k", "tau",
// "tau-mode", ...; ood_options_help lists them). Returns 1 when key is not a method option (the
// caller reports it), OODSEG_E_ARG for a bad or out-of-range value (the message names the option,
// the value and the allowed range), else OODSEG_OK.
int ood_options_set(ood_options *o, const char *key, const char *value, err *e);
// Checks the options named in the comma list `names` (NULL: every option) against the table's
// ranges, also for options filled by hand; the message names the option, its value and range.
// The same bounds as ood_options_set.
int ood_options_check(const ood_options *o, const char *names, err *e);
// The method options grouped by the methods that read them, one line each with its range and
// default, for --help (no heading line: the caller prints its own).
const char *ood_options_help(void);
// Every method option as resolved (defaults included) as a JSON object, for reports, under the
// table's json keys; file paths are left out, an empty --taps reads "(model default)". Returns
// what snprintf returns.
int ood_options_json(const ood_options *o, char *buf, size_t n);

// One entry of the option table, for tests and tools that walk every option.
typedef enum { OOD_OPT_INT, OOD_OPT_U64, OOD_OPT_DOUBLE, OOD_OPT_ENUM, OOD_OPT_STRING } ood_opt_type;
typedef struct ood_option_spec {
    const char *name;           // the flag without "--"
    const char *json;           // key in ood_options_json, NULL: not reported (file paths)
    ood_opt_type type;
    size_t offset, size;        // where in ood_options; size: bytes (the capacity of a string)
    double def;                 // default: the number, or the enum choice's index; strings ""
    double lo, hi;              // OOD_OPT_INT / OOD_OPT_DOUBLE range
    int lo_open, hi_open;       // 1: that bound itself is excluded
    const char *choices;        // OOD_OPT_ENUM: "nearest,bilinear" (stored as the index)
    const char *implies;        // "key=value" also set when this option is set, or NULL
    const char *arg, *help;     // --help: the value's placeholder and what the option does
} ood_option_spec;
int ood_option_count(void);
const ood_option_spec *ood_option_at(int i);
const ood_option_spec *ood_option_find(const char *name);   // NULL when not an option
// The option's --help line (range, default), as snprintf.
int ood_option_help_line(const ood_option_spec *s, char *buf, size_t n);

// The max over the in-distribution logits of block b, the pixels [b * OOD_BLOCK, +OOD_BLOCK) (the
// last one shorter), into m, and the index in id_channels reaching it (the first one on ties) into
// arg; returns the block's pixel count. Channel by channel over contiguous pixels, so it
// vectorises; per pixel the comparisons are those of a loop over the channels, so the result does
// not depend on the blocking. A NaN or Inf logit lowers *badpix (-1: none yet; shared by the
// threads of a loop over blocks, updated in a critical section) to the block's first such pixel.
// With in->max_logit set, a copy of the shared maps. The first step of every max-logit score.
#define OOD_BLOCK 256
int ood_block_max(const ood_input *in, int64_t b, float *m, int32_t *arg, int64_t *badpix);
// The error for the first pixel whose logits are not finite.
int ood_bad_logits(const ood_input *in, int64_t pixel, err *e);


// ---- building blocks (features.c, methods.c) ------------------------------------------------
// Shape and channel checks of an input; need_feats: at least one (1, C, h, w) tap with a stride.
int ood_check_input(const ood_input *in, int need_feats, err *e);
// Per-pixel max logit over the in-distribution channels: ml (h*w); pred (h*w, may be NULL): the
// in-distribution channel index (0..num_id-1 order of id_channels) reaching it; conf (h*w, may be
// NULL): its softmax probability among the in-distribution channels. Errors on NaN/Inf logits.
int ood_max_logit(const nn_ctx *ctx, const ood_input *in, float *ml, int32_t *pred, float *conf, err *e);
// The feature vectors the cluster and centroid methods use: the taps of `in` brought to one grid
// (stride o->fuse_stride, 0 = the coarsest tap's; average pooling when coarser, bilinear when
// finer), L2-normalised per o->l2norm (1: each tap, 2: the fused vector), concatenated.
// *X: malloc'd (gh*gw, dim) row-major; *stride: the grid's stride vs the logits.
int ood_fuse_features(const nn_ctx *ctx, const ood_input *in, const ood_options *o, float **X,
                      int *gh, int *gw, int *dim, int *stride, err *e);
// numpy.percentile (linear interpolation) of v[0..n), pct in [0, 100].
int ood_percentile(const float *v, int64_t n, double pct, double *out, err *e);

// ---- ID statistics (stats.c) -------------------------------------------------------------------
// `oodseg fit-centroids` and `oodseg calibrate` accumulate over in-distribution images, then save
// a small text file; the centroid method and --tau-file read it back.
typedef struct ood_stats ood_stats;
int ood_stats_new(ood_stats **s, int num_id, int k_per_class, err *e);
int ood_stats_add(ood_stats *s, const nn_ctx *ctx, const ood_input *in, const ood_options *o, err *e);
int ood_stats_save(ood_stats *s, const nn_ctx *ctx, const char *path, err *e);
void ood_stats_free(ood_stats *s);
// The calibrated tau of a statistics file (its "tau" line).
int ood_read_tau(const char *path, double *tau, err *e);
// The per-class centres of a statistics file written with k_per_class >= 1.
typedef struct ood_centroids {
    int num_id, dim, total;
    int *k, *first;             // per class: centre count and index of its first centre
    double *mean_dist;          // per class
    float *C;                   // (total, dim)
} ood_centroids;
int ood_centroids_load(const char *path, ood_centroids *c, err *e);
void ood_centroids_free(ood_centroids *c);

// Softmax confidence above which a pixel's feature is used to fit the class centroids.
#define OOD_FIT_CONF 0.9

#endif
