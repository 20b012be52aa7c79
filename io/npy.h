// NumPy .npy files (format 1.0/2.0, little-endian, C order).
#ifndef OODSEG_IO_NPY_H
#define OODSEG_IO_NPY_H

#include <stdint.h>
#include "../core/err.h"

typedef struct npy_array {
    char dtype[8];        // "f4", "f8", "u1", "i8", "i4", "b1" ...
    int ndim;
    int64_t shape[8];
    int64_t numel;
    void *data;           // owned, numel elements of dtype
} npy_array;

int npy_read(const char *path, npy_array *out, err *e);
// The same under a memory limit (0: none): the data and the float32 copy that reading it for
// scores makes must fit in max_bytes, checked from the header before anything is allocated
// (OODSEG_E_NOMEM with the shape, the bytes needed and the limit).
int npy_read_limit(const char *path, uint64_t max_bytes, npy_array *out, err *e);
void npy_free(npy_array *a);
// Converts any numeric npy to float32 (new buffer, caller frees) / to uint8 (labels; values must fit).
float *npy_to_f32(const npy_array *a, err *e);
// float32 writer; temporary name + rename.
int npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape, err *e);
// Integer-valued arrays to uint8 (new buffer): every value must be a whole number in 0..255,
// otherwise OODSEG_E_DATA naming the first offending index.
uint8_t *npy_to_u8(const npy_array *a, err *e);
// Writer for any supported little-endian dtype code ("f4", "u1", "i8", ...); temp + rename.
int npy_write(const char *path, const char *dtype, const void *data, int ndim,
              const int64_t *shape, err *e);

#endif
