// The journey of one image, shared by `oodseg score`, `oodseg eval`, the tools and the public API:
// image -> the model's preprocessing -> forward (logits + the taps the methods need) -> each OoD
// method at logit resolution -> bilinear resize (align_corners=False) of each score map to the
// image size. The network runs once per image for all methods. Library code: it never prints.
#ifndef OODSEG_API_PIPELINE_H
#define OODSEG_API_PIPELINE_H

#include "../models/model.h"
#include "../ood/method.h"
#include "../io/image.h"
#include "../eval/datasets.h"
#include "../eval/evaluator.h"
#include "../io/pictures.h"

#define PIPE_MAX_METHODS 8

typedef struct pipeline {
    model *m;
    int owns_model;                       // 1: opened by pipeline_open, closed by pipeline_close
    int n_methods;
    ood_method *methods[PIPE_MAX_METHODS];
    ood_options opt;
    char taps[256];                       // the feature taps the tap-reading methods use (resolved)
    char size[64];                        // "" : the model's own test resize; "native"; "WxH"
    pictures_scale scale;                 // the heat maps' colours; zero: each image's min..max
    int scale_logits_only;                // 1: scale applies to the methods scored in logit units
    char scale_note[192];                 // what the colour bar says of a set scale
    int tta;                              // 1: multi-scale + flip test-time augmentation (--tta)
    int no_class_maps;                    // 1: pipeline_score leaves the class and cluster maps at
                                          // image size out (pred, clusters: NULL), which only the
                                          // pictures show; the cluster flags (k, ood_flag) stay
} pipeline;

typedef struct pipeline_out {
    int w, h;                          // original image size
    float *scores[PIPE_MAX_METHODS];   // h*w each, same order as pipeline.methods
    uint8_t *pred;                     // h*w predicted class (argmax over the in-distribution channels)
    int32_t *clusters;                 // h*w cluster id at image size (a clustering method), else NULL
    int k;
    uint8_t ood_flag[256];             // per cluster
    double tau_used;
    double seconds_forward, seconds_methods;
} pipeline_out;

// ---- the job's configuration (api/config.c) -------------------------------------------------
typedef struct pipeline_config {
    char model[4096];        // "": the default model
    char backbone[4096];     // "": none; the backbone file of a two-file model (DINOv2)
    char size[64];           // "": the model's own test resize; "native"; "WxH"
    char id_channels[256];   // "": the model's default
    double offset_scale;     // 0: the recognised default
    char mode[16];           // "": the model's official test mode; "whole" or "slide"
    char crop[32], stride[32];   // "": the model's; "HxW" or "S": the slide window and step
    int threads;             // 0: every core
    nn_precision precision;  // of the model's GEMMs on weights: NN_FP32 (the default) or NN_BF16
    uint64_t max_memory;     // --max-memory in bytes; 0: the default (core/memlimit.h)
    int tta;                 // --tta: the methods score the mean softmax of multi-scale + flip runs
    char methods[256];       // comma list; "": kmeans (the paper's method)
    pictures_format pictures;   // --pictures none|png|jpg|webp; PICTURES_DEFAULT: the command's default
    int no_npy;              // --npy off (score's --no-npy): no score maps
    ood_options oo;          // every method option
} pipeline_config;

void pipeline_config_default(pipeline_config *c);
// One option by name, without dashes ("model", "backbone", "size", "id-channels", "offset-scale",
// "mode", "crop", "stride", "threads", "precision" (fp32 or bf16), "max-memory", "pictures",
// "npy" (on/off),
// "method"/"methods", and every method option). Returns 1 when the name is not an option (the
// caller reports it), OODSEG_E_ARG for a bad value, else OODSEG_OK.
int pipeline_config_set(pipeline_config *c, const char *key, const char *value, err *e);
// The model options of c (pointers into c).
void pipeline_config_model_options(const pipeline_config *c, model_options *mo);
// Opens path (NULL: c's --model, else the default model) with c's model options and a context
// of c's threads and precision (bf16 on a CPU without AVX512-BF16: OODSEG_E_ARG saying so).
int pipeline_config_open_model(const pipeline_config *c, const char *path, model **m, err *e);

// ---- running it (api/pipeline.c) -------------------------------------------------------------
// Opens c's model (the default model when c->model is "") with a context of c->threads, and the
// methods.
int pipeline_open(pipeline *p, const pipeline_config *c, err *e);
// The methods over a model the caller keeps open. size: NULL, "native" or "WxH"; methods NULL or
// "": kmeans; o NULL: defaults.
int pipeline_attach(pipeline *p, model *m, const char *size, const char *methods,
                    const ood_options *o, err *e);
// Test-time augmentation from now on (the 'ms' heads' multi-scale + flip, models/tta.h): the
// methods then see log(mean softmax) as their logits, so MSP and entropy are those of the averaged
// probabilities and max-logit is log MSP; methods that read feature taps are refused, since no
// single forward's features match the averaged map.
int pipeline_use_tta(pipeline *p, err *e);
int pipeline_run(pipeline *p, const image *img, pipeline_out *out, err *e);
// pipeline_run in its two halves, for callers that overlap one image's methods with the next
// image's forward (api/score_stream.c). pipeline_forward runs the network only (the model, its
// arena and context): tl gets the logits and taps (heap tensors that outlive the next forward),
// out its size and seconds_forward; on failure tl is empty. pipeline_score runs the methods on
// tl into out and frees tl: it reads the model's description and context but never the model's
// arena, so it may run while another pipeline_forward on the same model runs on another thread.
int pipeline_forward(pipeline *p, const image *img, tensor_list *tl, pipeline_out *out, err *e);
int pipeline_score(const pipeline *p, tensor_list *tl, pipeline_out *out, err *e);
// input: (1, 3, h, w) as the network sees it; the maps are at h x w.
int pipeline_run_tensor(pipeline *p, const float *input, int h, int w, pipeline_out *out, err *e);
// `oodseg score`'s files for one image into dir, one naming rule whatever the number of methods:
// <stem>_<method>_score.npy (float32 (h, w)) for each method, then the pictures.
int pipeline_save(const pipeline *p, const image *img, const pipeline_out *o, const char *dir,
                  const char *stem, err *e);
// What `oodseg score` writes of each image (NULL: the defaults, PNG pictures and score maps).
typedef struct pipeline_save_opts {
    pictures_format pictures;   // PICTURES_DEFAULT: PNG; PICTURES_NONE: no pictures
    int no_npy;                 // 1: no score maps
} pipeline_save_opts;
int pipeline_save_with(const pipeline *p, const image *img, const pipeline_out *o, const char *dir,
                       const char *stem, const pipeline_save_opts *so, err *e);
// 1 when every file pipeline_save_with(so) writes for stem is in dir (each method's score map,
// heat map, overlay and clusters picture, and the classes picture): `oodseg score --resume`.
int pipeline_outputs_complete(const pipeline *p, const pipeline_save_opts *so, const char *dir, const char *stem);
// The pictures alone (io/pictures.h): <stem>_<method>_heat.png and _overlay.png for each method,
// <stem>_<method>_clusters.png for a clustering method, <stem>_seg.png once.
int pipeline_save_pictures(const pipeline *p, const image *img, const pipeline_out *o,
                           const char *dir, const char *stem, err *e);
// The same in format f (PICTURES_DEFAULT: PNG; PICTURES_NONE: nothing).
int pipeline_save_pictures_as(const pipeline *p, const image *img, const pipeline_out *o,
                              const char *dir, const char *stem, pictures_format f, err *e);
// Method k's pictures_in as pipeline_save_pictures draws it (its score label, the scale, the
// clusters and their key): for pictures made in memory (`oodseg mine`, overlay videos). rule: a
// buffer of n bytes that in may point to.
void pipeline_pictures_in(const pipeline *p, const image *img, const pipeline_out *o, int k, pictures_in *in,
                          char *rule, size_t n);
// 1 when a file pipeline_save would write for stem exists in dir (its path in first), else 0.
int pipeline_outputs_exist(const pipeline *p, const char *dir, const char *stem, char *first, size_t n);
// 1 when a file name (no folder) is one this tool writes (score maps, pictures), whatever the
// stem: inputs named so are the tool's own outputs, never read back as images.
int pipeline_is_output_name(const char *name);
// The heat maps' colour scale from --scale (after the pipeline is open): "image" (each image's
// min..max, the default), "fixed:LO,HI", or "calibrated:FILE" (the max-logit percentiles of
// `oodseg calibrate`: -max logit from its 99th to its 0.5th percentile over the ID images, for
// the methods scored in logit units; the others keep their per-image scale).
int pipeline_set_scale(pipeline *p, const char *spec, err *e);
// The report's thumbnails of one benchmark image into dir (eval/html.h names them): the image,
// its 0/1/255 labels (w x h, or NULL), and each method's heat map and overlay, at most
// HTML_THUMB_W pixels wide, JPEG.
int pipeline_save_thumbs(const pipeline *p, const image *img, const uint8_t *labels,
                         const pipeline_out *o, const char *dir, const char *stem, err *e);
// `oodseg fit-centroids` / `calibrate`: one in-distribution image's forward pass with the taps
// the statistics need, added to st.
int pipeline_stats_add(pipeline *p, const image *img, ood_stats *st, err *e);
void pipeline_out_free(pipeline_out *o);
void pipeline_close(pipeline *p);

// ---- `oodseg forward` (api/forward.c) ---------------------------------------------------------
// img through m's preprocessing (size: NULL, "native" or "WxH") and forward pass; tl receives
// "input", then "logits" and the feature taps (all: every named intermediate), and the whole list
// is written to path as safetensors (NCHW float32), with image_name in its metadata.
int forward_save(model *m, const image *img, const char *image_name, const char *size, int all,
                 const char *path, tensor_list *tl, err *e);

// ---- a benchmark image into an evaluator (api/run_eval.c) -----------------------------------
typedef struct eval_save {
    const char *const *score_dirs;   // NULL, or one folder per method: <dir>/<stem>.npy
    const char *maps_dir;            // NULL, or the folder of the pictures
    const char *thumbs_dir;          // NULL, or the folder of the HTML report's thumbnails
    pictures_format pictures;        // the format of the pictures in maps_dir (PICTURES_DEFAULT: PNG)
} eval_save;
// Loads item i's image and label (checked to have the image's size), scores it with every method
// and adds the maps to ev (method order = the pipeline's); save may be NULL.
int pipeline_eval_item(pipeline *p, const dataset *ds, int i, evaluator *ev, const eval_save *save,
                       err *e);
const char *pipeline_method_name(const pipeline *p, int i);
// The OoD methods' view of one forward pass's outputs: the logits, the model's ID channels, and the
// taps of the comma list `taps` (may be empty) with their strides relative to the logits grid.
// feats and strides are caller arrays of 16; they must outlive `in`.
int pipeline_ood_input(const model *m, const tensor_list *tl, const char *taps, ood_input *in,
                       const tensor **feats, int *strides, err *e);

#endif
