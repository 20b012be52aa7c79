/* oodseg: training-free out-of-distribution segmentation.
 *
 * The public C API: everything the `oodseg` tool does, as a library. Open a model from its
 * checkpoint file, run the network, score anomalies with one or more OoD methods, and evaluate
 * score maps against labels with exact metrics. The tool itself is a thin shell over these calls.
 *
 *   oodseg_status st;
 *   oodseg_model *m;
 *   oodseg_scorer *s;
 *   oodseg_maps *maps;
 *   if (oodseg_model_open(NULL, NULL, &m, &st) ||                    // NULL: the default model
 *       oodseg_scorer_open(m, "maxlogit,kmeans", NULL, &s, &st) ||   // NULL: default options
 *       oodseg_score_image(s, "frame.png", &maps, &st)) { fprintf(stderr, "%s\n", st.message); ... }
 *   // maps->score[i]: float32, maps->height x maps->width, higher = more anomalous
 *   oodseg_maps_free(maps);
 *   oodseg_scorer_close(s);
 *   oodseg_model_close(m);
 *
 * Errors: every function that can fail returns a status code (OODSEG_OK = 0) and, when `st` is not
 * NULL, fills it with the code and a message saying what was wrong, where (file, tensor, pixel)
 * and what to do. The library never prints, never exits and changes no process-wide setting (no
 * OpenMP or BLAS thread counts, no malloc policy): threads and device belong to each model.
 *
 * Threads: separate objects may run in separate threads at the same time, each with its own
 * thread count; results are bit-identical for any thread count. A model (and the scorers over it)
 * serves one call at a time: a call made while another thread's call runs on the same model
 * returns OODSEG_E_ARG saying so, never a race. An evaluator or a dataset must not be used from
 * two threads at once. Link with `pkg-config --cflags --libs oodseg`.
 */
#ifndef OODSEG_H
#define OODSEG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define OODSEG_API __attribute__((visibility("default")))
#else
#define OODSEG_API
#endif

#define OODSEG_VERSION "0.1.0"

/* Status codes. The CLI exits with the same numbers. */
enum {
    OODSEG_OK = 0,
    OODSEG_E_ARG = 2,        /* a bad argument or option value */
    OODSEG_E_IO = 3,         /* a file could not be read or written */
    OODSEG_E_FORMAT = 4,     /* a file is corrupt, truncated or of an unsupported format */
    OODSEG_E_MODEL = 5,      /* a checkpoint does not fit the architecture (key missing, unexpected, mis-shaped) */
    OODSEG_E_NOMEM = 6,      /* out of memory, or an input too large for the memory limit */
    OODSEG_E_DATA = 7,       /* a dataset problem: unpaired file, wrong label size, unknown label value */
    OODSEG_E_INTERNAL = 8,   /* a bug: please report it */
    OODSEG_E_INTERRUPTED = 9 /* stopped by its cancel flag (the CLI: SIGINT or SIGTERM, exit 130 or 143);
                                the finished part is saved and --resume continues it */
};

typedef struct oodseg_status {
    int code;
    char message[1024];
} oodseg_status;

typedef struct oodseg_model oodseg_model;
typedef struct oodseg_result oodseg_result;

/* A read-only view of one output tensor; valid until its result is freed. NCHW, float32. */
typedef struct oodseg_tensor {
    const char *name;
    int ndim;
    int64_t shape[4];
    const float *data;
} oodseg_tensor;

/* Options for opening a model. Zero-initialise, then set what you need. */
/* Where a model's tensors live and its ops run. The CPU is the only backend today; the field is
 * the seam a GPU backend plugs into. */
enum { OODSEG_DEVICE_CPU = 0 };

typedef struct oodseg_options {
    int threads;              /* threads of this model's work (network and methods); 0: every core */
    int device;               /* OODSEG_DEVICE_CPU */
    const char *size;         /* NULL: the model's own test resize; "native"; or "WxH" */
    const char *id_channels;  /* NULL: the model's default; e.g. "0-18" or "0,1,2" */
    double offset_scale;      /* InternImage DCNv3 offset scale; 0: 1.0 for T/S/B, 2.0 for L/XL
                                 (custom sizes: 1.0 pre-norm, 2.0 post-norm) */
    int want_all;             /* 1: also return every intermediate tensor the model names */
    /* How the network covers its input (README "Sliding-window inference"). NULL: the model's
     * official test mode (slide for SegFormer on Cityscapes, whole for the others). */
    const char *mode;         /* NULL, "whole", or "slide": overlapping windows, summed and divided
                                 by the number of windows covering each pixel (mmseg's slide_inference) */
    const char *crop;         /* NULL: the model's; "HxW" (height x width) or "S": the slide window */
    const char *stride;       /* NULL: the model's; "HxW" or "S": the step between windows, <= crop */
    const char *backbone;     /* NULL, or the backbone file of a two-file model: DINOv2's head file is
                                 the model path, dinov2_<arch>_pretrain.pth the backbone */
    const char *precision;    /* NULL or "fp32": float32 throughout; "bf16": the convolutions' and
                                 linear layers' GEMMs in bf16 with fp32 accumulation (weights
                                 converted once, ~2x the GEMM rate), on CPUs with AVX512-BF16 only
                                 (OODSEG_E_ARG elsewhere); the other ops stay float32 */
    uint64_t max_memory;      /* bytes this model's calls may allocate (the checkpoint, each image, each
                                 forward pass, checked before allocating: OODSEG_E_NOMEM saying what
                                 is needed); 0: the machine's available memory less 10% or 256 MiB,
                                 whichever is more, taken when the model is opened */
} oodseg_options;

/* What was recognised from the checkpoint. Strings live as long as the model. */
typedef struct oodseg_model_info {
    const char *arch;          /* e.g. "internimage-t+upernet", "espnet-p2-q8", "espnetv2-s2.0" */
    const char *dataset;       /* "cityscapes", "ade20k", "camvid" */
    const char *source_format; /* "safetensors", "torch-zip", "torch-legacy" */
    const char *source_dtype;  /* "F32", "F16", ... (of the weights in the file) */
    int64_t num_parameters;
    int num_outputs;           /* logit channels */
    int num_id_classes;        /* in-distribution channels used by every OoD score */
} oodseg_model_info;

OODSEG_API const char *oodseg_version(void);

/* Opens a checkpoint (.pth zip or legacy pickle, .safetensors) and recognises the architecture
 * from its keys and shapes. checkpoint_path NULL: the default model (ESPNetv2 s=2.0 Cityscapes),
 * found through $OODSEG_ASSETS or installed beside the library. opt NULL: defaults. */
OODSEG_API int oodseg_model_open(const char *checkpoint_path, const oodseg_options *opt,
                                 oodseg_model **out, oodseg_status *st);
OODSEG_API void oodseg_model_close(oodseg_model *m);                       /* NULL is a no-op */
OODSEG_API void oodseg_model_get_info(const oodseg_model *m, oodseg_model_info *info);
/* The path of the default model (what oodseg_model_open(NULL, ...) opens), or NULL with the list of
 * places searched in st. The string is valid until the next call. */
OODSEG_API const char *oodseg_default_model(oodseg_status *st);

/* Runs preprocessing and the network. Outputs: "logits" (the model's output logits, all channels)
 * and the model's named feature taps. */
OODSEG_API int oodseg_run_image(oodseg_model *m, const char *image_path, oodseg_result **out,
                                oodseg_status *st);
/* rgb: h*w*3 bytes, interleaved R,G,B, row-major. */
OODSEG_API int oodseg_run_rgb(oodseg_model *m, const uint8_t *rgb, int width, int height,
                              oodseg_result **out, oodseg_status *st);
/* input: a preprocessed 1x3xHxW float32 tensor (NCHW), as the network sees it. */
OODSEG_API int oodseg_run_tensor(oodseg_model *m, const float *input, int height, int width,
                                 oodseg_result **out, oodseg_status *st);

OODSEG_API int oodseg_result_count(const oodseg_result *r);
OODSEG_API int oodseg_result_at(const oodseg_result *r, int index, oodseg_tensor *t);
OODSEG_API int oodseg_result_get(const oodseg_result *r, const char *name, oodseg_tensor *t,
                                 oodseg_status *st);
OODSEG_API void oodseg_result_free(oodseg_result *r);

/* ---- scoring: the OoD methods over a model's outputs -------------------------------------- */

#define OODSEG_MAX_METHODS 8

/* The methods, by index: "msp", "maxlogit", "entropy", "energy", "kmeans" (the paper's),
 * "centroid"; NULL past the last. */
OODSEG_API const char *oodseg_method_name(int index);
/* Every method option with its default, range and help, as `oodseg --help` prints it. */
OODSEG_API const char *oodseg_method_options_help(void);

typedef struct oodseg_scorer oodseg_scorer;

/* A scorer runs the model once per image and every method asked for on its outputs.
 *   methods: comma list, e.g. "maxlogit,kmeans" (at most OODSEG_MAX_METHODS); NULL: "kmeans", the paper's.
 *   options: NULL, or a NULL-terminated list of name, value pairs: the method options of
 *            `oodseg --help` without their dashes, e.g. {"k", "8", "tau", "30", NULL}, and
 *            {"tta", "on"}: multi-scale + flip test-time augmentation (`--tta`; the methods then
 *            score log(mean softmax); keep-ratio models, methods without feature taps).
 *            {"pictures", "png"|"jpg"|"webp"|"none"} and {"npy", "on"|"off"}: what
 *            oodseg_maps_save writes (default png and on), as `oodseg score --pictures`, `--no-npy`.
 * Options are checked here, and files they name (centroids, calibrated tau) are read once, here.
 * The model must outlive the scorer; the scorer uses the model's threads and device. */
OODSEG_API int oodseg_scorer_open(oodseg_model *m, const char *methods, const char *const *options,
                                  oodseg_scorer **out, oodseg_status *st);
OODSEG_API void oodseg_scorer_close(oodseg_scorer *s);              /* NULL is a no-op */
/* The options as resolved (defaults included), as a JSON object: what a report should record.
 * Valid until the scorer is closed. */
OODSEG_API const char *oodseg_scorer_options_json(const oodseg_scorer *s);

/* One image's maps, all at the image's size (height x width, row-major). The pointers belong to
 * the maps and live until oodseg_maps_free. */
typedef struct oodseg_maps {
    int width, height;
    int n_methods;
    const char *method[OODSEG_MAX_METHODS];   /* in the order asked for */
    const float *score[OODSEG_MAX_METHODS];   /* float32 anomaly scores, higher = more anomalous */
    const uint8_t *seg;          /* predicted class: argmax over the in-distribution channels,
                                    as an output channel index (255 and above saturate) */
    const int32_t *clusters;     /* the kmeans method's cluster of each pixel, or NULL */
    int num_clusters;            /* k of that clustering, else 0 */
    const uint8_t *cluster_ood;  /* num_clusters flags: 1 where the cluster was marked OoD */
    double tau;                  /* the max-logit threshold those flags used */
    double seconds_forward;      /* preprocessing + network */
    double seconds_methods;      /* every method + the resizes to image size */
} oodseg_maps;

/* Scores an image file (PNG, JPEG, WebP). */
OODSEG_API int oodseg_score_image(oodseg_scorer *s, const char *image_path, oodseg_maps **out,
                                  oodseg_status *st);
/* rgb: height rows of width*3 bytes (R, G, B), row_stride bytes apart (0: width*3). */
OODSEG_API int oodseg_score_rgb(oodseg_scorer *s, const uint8_t *rgb, int width, int height,
                                int row_stride, oodseg_maps **out, oodseg_status *st);
/* input: a preprocessed 1x3xHxW float32 tensor (NCHW) as the network sees it; the maps are at
 * H x W. */
OODSEG_API int oodseg_score_tensor(oodseg_scorer *s, const float *input, int height, int width,
                                   oodseg_maps **out, oodseg_status *st);
/* Writes what `oodseg score` writes for one image into dir (which must exist): for each method
 * <stem>_<method>_score.npy and the pictures (_heat.png, _overlay.png, _clusters.png; <stem>_seg.png
 * once; .jpg or .webp, or none, and no .npy, as the scorer's options "pictures" and "npy" say). rgb: the image the maps belong to (width*3 bytes a row), as for oodseg_score_rgb. Every
 * file is written to a temporary name and renamed. */
OODSEG_API int oodseg_maps_save(const oodseg_scorer *s, const oodseg_maps *maps, const uint8_t *rgb,
                                const char *dir, const char *stem, oodseg_status *st);
OODSEG_API void oodseg_maps_free(oodseg_maps *maps);                 /* NULL is a no-op */

/* ---- exact metrics -------------------------------------------------------------------------- */

/* Pixel-level OoD metrics, equal to scikit-learn's (average_precision_score, roc_auc_score,
 * roc_curve) on the valid pixels, with OoD as the positive class. Curve pointers belong to the
 * object that filled the struct (see each function). */
typedef struct oodseg_metrics {
    int64_t n_pos, n_neg;        /* OoD and in-distribution pixels counted */
    int defined;                 /* 0 when either count is 0: then the values are NaN */
    double ap, auroc;
    double fpr95;                /* FPR at 95 % TPR in the chosen convention */
    double fpr95_threshold;
    double best_f1, best_f1_threshold;   /* best pixel F1 over the thresholds (score >= thr) */
    int curve_points;            /* decimated curves (at most about 1000 points), descending threshold */
    const float *recall, *precision, *fpr, *tpr;
    int has_components;          /* SegmentMeIfYouCan component metrics below are set */
    double comp_threshold;       /* predicted = score > comp_threshold */
    double siou, ppv, f1_mean;   /* mean sIoU over GT components, mean PPV, mean F1 over 11 deltas */
} oodseg_metrics;

/* One call over in-memory arrays: scores and labels of n pixels; a label equal to ood_value is
 * OoD, ignore_value is left out, any other value is in-distribution. fpr_convention: NULL or
 * "first-ge" (the first ROC point with TPR >= 0.95, SMIYC), "nearest" (ADE-OoD), "first-gt" (RbA).
 * Call oodseg_metrics_release to free the curves. NaN scores are an error naming the pixel. */
OODSEG_API int oodseg_metrics_compute(const float *scores, const uint8_t *labels, int64_t n,
                                      int ood_value, int ignore_value, const char *fpr_convention,
                                      oodseg_metrics *out, oodseg_status *st);
OODSEG_API void oodseg_metrics_release(oodseg_metrics *m);

/* An evaluator pools every image's pixels per method, exactly (no binning), and keeps per-image
 * rows, like `oodseg eval`. */
typedef struct oodseg_evaluator oodseg_evaluator;
typedef struct oodseg_eval_options {
    const char *convention;      /* the label convention: a dataset layout of `oodseg eval --help`
                                    ("roadanomaly", "smiyc-anomaly", "smiyc-obstacle",
                                    "fishyscapes-laf", "fishyscapes-static", "camvid-ood",
                                    "ade-ood"), or NULL / "binary": 0 ID, 1 OoD, 255 ignore */
    const char *fpr_convention;  /* NULL: "first-ge" */
    int components;              /* SMIYC component metrics: 0 the convention's default (on for
                                    smiyc-*), 1 on, -1 off */
    int comp_threshold_set;      /* 1: use comp_threshold; 0: the best-F1 threshold of the pooled
                                    curve, which needs every map again: the evaluator then keeps a
                                    copy of each score map until it is closed */
    double comp_threshold;
} oodseg_eval_options;

OODSEG_API int oodseg_evaluator_open(const char *const *methods, int n_methods,
                                     const oodseg_eval_options *opt, oodseg_evaluator **out,
                                     oodseg_status *st);
/* One image: scores[i] is method i's height x width map; labels are raw values of the
 * convention (e.g. 12 = OoD for camvid-ood); a value the convention does not define is an error
 * naming the image, the value and the pixel. */
OODSEG_API int oodseg_evaluator_add(oodseg_evaluator *ev, const char *image_name,
                                    const float *const *scores, const uint8_t *labels, int width,
                                    int height, oodseg_status *st);
/* Computes the pooled metrics; more images may not be added afterwards. */
OODSEG_API int oodseg_evaluator_finish(oodseg_evaluator *ev, oodseg_status *st);
/* Method i's pooled metrics (after finish); curves valid until the evaluator is closed. */
OODSEG_API int oodseg_evaluator_result(const oodseg_evaluator *ev, int method, oodseg_metrics *out,
                                       oodseg_status *st);
/* metrics.json, metrics.md, metrics.csv, per_image.csv, pr_curve.svg, roc_curve.svg into dir
 * (created if missing). title: what was evaluated, for the reports (e.g. the model), may be NULL. */
OODSEG_API int oodseg_evaluator_write_reports(oodseg_evaluator *ev, const char *dir,
                                              const char *title, oodseg_status *st);
/* The pooled state, to merge shards exactly with `oodseg metrics --merge`. */
OODSEG_API int oodseg_evaluator_save_state(oodseg_evaluator *ev, const char *path, oodseg_status *st);
OODSEG_API void oodseg_evaluator_close(oodseg_evaluator *ev);         /* NULL is a no-op */

/* ---- datasets ------------------------------------------------------------------------------- */

/* A benchmark's images and labels, listed and paired as `oodseg eval --dataset` does.
 *   spec: "LAYOUT:PATH" (e.g. "roadanomaly:RoadAnomaly", "camvid-ood:data/camvid-ood"), or
 *         "generic" with options {"images", DIR, "labels", DIR, "ood", "2", "ignore", "255", NULL}
 *         (also "label-suffix" and "id"; see `oodseg eval --help`).
 * Errors name the file: a missing list, an empty folder, an image without a label. */
typedef struct oodseg_dataset oodseg_dataset;
OODSEG_API int oodseg_dataset_open(const char *spec, const char *const *options,
                                   oodseg_dataset **out, oodseg_status *st);
OODSEG_API int oodseg_dataset_count(const oodseg_dataset *ds);
OODSEG_API const char *oodseg_dataset_image(const oodseg_dataset *ds, int index);  /* its path (a
                                                               video's for its frames) */
/* Item index's pixels, RGB (width*3 bytes a row), from its image file or its video frame ("generic"
 * with "images" a video: the frames that have labels). Free *rgb with oodseg_free. */
OODSEG_API int oodseg_dataset_rgb(const oodseg_dataset *ds, int index, uint8_t **rgb, int *width,
                                  int *height, oodseg_status *st);
OODSEG_API const char *oodseg_dataset_name(const oodseg_dataset *ds, int index);   /* its stem */
/* Item index's label map mapped to 0 ID, 1 OoD, 255 ignore (so an evaluator takes it with the
 * "binary" convention). width, height > 0: the label must have that size. Free *labels with
 * oodseg_free. */
OODSEG_API int oodseg_dataset_label(const oodseg_dataset *ds, int index, int width, int height,
                                    uint8_t **labels, int *label_width, int *label_height,
                                    oodseg_status *st);
OODSEG_API void oodseg_dataset_close(oodseg_dataset *ds);            /* NULL is a no-op */
/* Frees memory the library handed over (labels). */
OODSEG_API void oodseg_free(void *p);

/* ---- for bindings: full curves, merged states, evaluator names (api/python_support.c) -------- */

/* What the Python package (python/oodseg/) needs beyond the calls above; general enough for any
 * caller that wants scikit-learn's exact curves or merges shard states in-process. */

/* The dtype of a scores array. */
enum { OODSEG_FLOAT32 = 1, OODSEG_FLOAT64 = 2 };

/* An exact ROC curve: one point per distinct score, highest first. tp[i] and fp[i] count the
 * positives and negatives with score >= threshold[i] (whole numbers, exact in double); they are
 * scikit-learn's _binary_clf_curve (tps, fps, thresholds). The arrays belong to the struct. */
typedef struct oodseg_curve {
    int64_t n;                  /* points */
    int64_t n_pos, n_neg;       /* OoD and in-distribution samples counted */
    double *threshold, *tp, *fp;
} oodseg_curve;

/* The curve of n scores (dtype OODSEG_FLOAT32: const float *, OODSEG_FLOAT64: const double *)
 * against labels: a label equal to ood_value is positive, ignore_value (-1: none) is left out,
 * any other value is negative. drop_intermediate 1 keeps the points scikit-learn's
 * roc_curve(drop_intermediate=True) keeps (the first, the last, and where the curve bends);
 * 0 keeps every distinct score (precision_recall_curve, average_precision_score). Tied scores are
 * one point; -0.0 is 0.0; a NaN score is an error naming the sample. Free with
 * oodseg_curve_release. */
OODSEG_API int oodseg_curve_compute(const void *scores, int dtype, const uint8_t *labels, int64_t n,
                                    int ood_value, int ignore_value, int drop_intermediate,
                                    oodseg_curve *out, oodseg_status *st);
OODSEG_API void oodseg_curve_release(oodseg_curve *c);               /* NULL is a no-op */

/* Merges state files written by oodseg_evaluator_save_state (or `oodseg eval --save-state`) into a
 * finished evaluator, exactly like `oodseg metrics --merge`: its metrics equal those of one pass
 * over every state's pixels (no per-image rows, no component metrics). The states must hold the
 * same methods. fpr_convention: NULL or "first-ge", "nearest", "first-gt". save_path (or NULL)
 * receives the merged state, to merge again later. */
OODSEG_API int oodseg_evaluator_merge(const char *const *paths, int n_paths, const char *fpr_convention,
                                      const char *save_path, oodseg_evaluator **out, oodseg_status *st);
/* The evaluator's methods (as opened, or as read from merged states); NULL past the last. */
OODSEG_API int oodseg_evaluator_method_count(const oodseg_evaluator *ev);
OODSEG_API const char *oodseg_evaluator_method(const oodseg_evaluator *ev, int method);
/* The images added (for a merged evaluator: summed over its states). */
OODSEG_API int oodseg_evaluator_image_count(const oodseg_evaluator *ev);

#ifdef __cplusplus
}
#endif
#endif
