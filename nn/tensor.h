// Tensors: float32, at most 4 dimensions, batch 1. NCHW is the interchange layout (files, the API,
// tests); a model may keep channels-last (1, H, W, C) inside a block and says so where it does.
// Ops in nn/ work on raw float pointers with explicit sizes (llama2.c style); `tensor` and
// `tensor_list` carry named results between stages.
#ifndef OODSEG_NN_TENSOR_H
#define OODSEG_NN_TENSOR_H

#include <stdint.h>
#include "../core/err.h"
#include "ctx.h"

typedef struct tensor {
    char name[64];
    int ndim;            // 1..4
    int64_t shape[4];
    float *data;         // numel floats
    nn_device device;    // where data lives; lists handed to callers hold CPU tensors only
    int owned;           // 1: freed with the list
} tensor;

typedef struct tensor_list {
    int n, cap;
    tensor *t;
} tensor_list;

int64_t tensor_numel(const tensor *t);
// Appends a zero-filled owned tensor; returns NULL and sets e on failure (OODSEG_E_NOMEM).
tensor *tl_add(tensor_list *l, const char *name, int ndim, const int64_t *shape, err *e);
// Appends an owned tensor that is not zeroed: for an op's output that writes every value (a
// model's logits), where zeroing would be a wasted pass over memory that is overwritten anyway.
tensor *tl_add_uninit(tensor_list *l, const char *name, int ndim, const int64_t *shape, err *e);
// Appends an owned copy of data.
tensor *tl_add_copy(tensor_list *l, const char *name, int ndim, const int64_t *shape,
                    const float *data, err *e);
// Appends a tensor that takes ownership of data (allocated with malloc).
tensor *tl_add_take(tensor_list *l, const char *name, int ndim, const int64_t *shape,
                    float *data, err *e);
tensor *tl_get(const tensor_list *l, const char *name);   // NULL when absent
void tl_remove(tensor_list *l, const char *name);          // frees it; no-op when absent
void tl_free(tensor_list *l);                              // frees all and resets to empty

#endif
