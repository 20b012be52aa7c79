/* oodseg: training-free out-of-distribution segmentation.
 *
 * The public C API. Small on purpose: open a model from its checkpoint file, run it on an image
 * file, on RGB pixels or on an already preprocessed float tensor, read the named outputs, close.
 *
 *   oodseg_status st;
 *   oodseg_model *m;
 *   if (oodseg_model_open("espnet_p_2_q_8_camvid.pth", NULL, &m, &st)) { fprintf(stderr, "%s\n", st.message); ... }
 *   oodseg_result *r;
 *   if (oodseg_run_image(m, "frame.png", &r, &st) == OODSEG_OK) {
 *       oodseg_tensor logits;
 *       oodseg_result_get(r, "logits", &logits, &st);   // NCHW float32, N = 1
 *       oodseg_result_free(r);
 *   }
 *   oodseg_model_close(m);
 *
 * Errors come back as a status code plus a message in `oodseg_status`; the library never prints
 * and never exits. A model instance is not thread-safe, but separate instances may run in
 * separate threads at the same time. Link with `pkg-config --libs oodseg`.
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
    OODSEG_E_INTERNAL = 8    /* a bug: please report it */
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
typedef struct oodseg_options {
    int threads;              /* OpenMP threads for this process; 0 keeps the current setting */
    const char *size;         /* NULL: the model's own test resize; "native"; or "WxH" */
    const char *id_channels;  /* NULL: the model's default; e.g. "0-18" or "0,1,2" */
    double offset_scale;      /* InternImage DCNv3 offset scale; 0: 1.0 for T/S/B, 2.0 for L/XL */
    int want_all;             /* 1: also return every intermediate tensor the model names */
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

OODSEG_API int oodseg_model_open(const char *checkpoint_path, const oodseg_options *opt,
                                 oodseg_model **out, oodseg_status *st);
OODSEG_API void oodseg_model_close(oodseg_model *m);
OODSEG_API void oodseg_model_get_info(const oodseg_model *m, oodseg_model_info *info);

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

#ifdef __cplusplus
}
#endif
#endif
