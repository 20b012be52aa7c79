// The journey of one image, shared by `oodseg score`, `oodseg eval` and the API:
// image -> model preprocessing -> forward (logits + the taps the methods need) -> each OoD method
// at logit resolution -> bilinear resize (align_corners=False) of each score map to the original
// image size. The network runs once per image for all methods.
#ifndef OODSEG_API_PIPELINE_H
#define OODSEG_API_PIPELINE_H

#include "../models/model.h"
#include "../ood/method.h"
#include "../io/image.h"

#define PIPE_MAX_METHODS 8

typedef struct pipeline {
    model *m;
    int n_methods;
    ood_method *methods[PIPE_MAX_METHODS];   // opened with the options, closed by pipeline_close
    ood_options opt;
    nn_ctx ctx;              // what the methods run with
    char taps[256];          // the feature taps the kmeans/centroid methods cluster (resolved)
    const char *size_override; // NULL, "native" or "WxH" (the --size option)
} pipeline;

typedef struct pipeline_out {
    int w, h;                          // original image size
    float *scores[PIPE_MAX_METHODS];   // h*w each, same order as pipeline.methods
    uint8_t *pred;                     // h*w predicted class (argmax over the in-distribution channels)
    int32_t *clusters;                 // h*w cluster id at image size (kmeans only), else NULL
    int k;
    uint8_t ood_flag[256];             // per cluster (kmeans only)
    double tau_used;
    double seconds_forward, seconds_methods;
} pipeline_out;

// methods_csv: "maxlogit,kmeans". opt: NULL for defaults. model_path NULL: the default model
// (pipeline_default_model, with a clear error saying where to get it when missing).
// The model runs on a copy of *ctx, the methods on the model's.
int pipeline_open(pipeline *p, const nn_ctx *ctx, const char *model_path, const model_options *mo,
                  const char *methods_csv, const ood_options *opt, err *e);
int pipeline_run(pipeline *p, const image *img, pipeline_out *out, err *e);
void pipeline_out_free(pipeline_out *o);
// The OoD methods' view of one forward pass's outputs: the logits, the model's ID channels, and the
// taps of the comma list `taps` (may be empty) with their strides relative to the logits grid.
// feats and strides are caller arrays of 16; they must outlive `in`, and so must ctx.
int pipeline_ood_input(const nn_ctx *ctx, const model_desc *d, const tensor_list *tl, const char *taps, ood_input *in,
                       const tensor **feats, int *strides, err *e);
void pipeline_close(pipeline *p);
// The best real Cityscapes model found under $OODSEG_ASSETS (ESPNetv2 s=2.0), or NULL with an
// error that gives the upstream URL and SHA-256.
const char *pipeline_default_model(err *e);

#endif

// ---- the job's configuration (api/config.c) -------------------------------------------------
typedef struct pipeline_config {
    char model[4096];        // "": the default model
    char size[64];           // "": the model's own test resize; "native"; "WxH"
    char id_channels[256];   // "": the model's default
    double offset_scale;     // 0: the recognised default
    int threads;             // 0: every core
    char methods[256];       // comma list; "": maxlogit
    ood_options oo;          // every method option
} pipeline_config;

void pipeline_config_default(pipeline_config *c);
// One option by name, without dashes ("model", "size", "id-channels", "offset-scale", "threads",
// "method"/"methods", and every method option). Returns 1 when the name is not an option (the
// caller reports it), OODSEG_E_ARG for a bad value, else OODSEG_OK.
int pipeline_config_set(pipeline_config *c, const char *key, const char *value, err *e);
// The model options of c (pointers into c).
void pipeline_config_model_options(const pipeline_config *c, model_options *mo);
