// Checkpoints: safetensors, PyTorch zip (torch >= 1.6) and legacy PyTorch (torch < 1.6) files,
// opened into one flat list of named tensors. Loading is zero-copy (mmap) where the format allows:
// a contiguous, aligned little-endian F32 tensor points straight into the mapping. F16, BF16 and
// F64 are converted to F32 at load. The pickle reader executes nothing: it rebuilds tensors and
// plain containers only, and any other global is an opaque value that loading skips.
//
// Names: an mmseg checkpoint {'meta', 'state_dict', 'optimizer'} yields the state_dict entries;
// a bare state_dict yields itself; a leading "module." is stripped.
#ifndef OODSEG_IO_CHECKPOINT_H
#define OODSEG_IO_CHECKPOINT_H

#include <stdint.h>
#include <stddef.h>
#include "../core/err.h"

typedef enum dtype {
    DT_F32, DT_F16, DT_BF16, DT_F64, DT_I64, DT_I32, DT_I16, DT_I8, DT_U8, DT_BOOL
} dtype;

const char *dtype_name(dtype t);      // "F32", "F16", ...
size_t dtype_size(dtype t);

typedef struct ckpt_entry {
    char *name;
    dtype src_dtype;      // element type in the file
    int ndim;             // 0 for a scalar
    int64_t shape[8];
    int64_t numel;
    const float *f32;     // float tensors: F32 data (into the mapping or owned); NULL for integer tensors
    const void *raw;      // integer tensors: the contiguous little-endian data; NULL for float tensors
    int used;             // set by ckpt_get, so a model can report keys it did not use
    int released;         // ckpt_release: the model keeps its own copy; the data is gone
} ckpt_entry;

typedef struct ckpt {
    char path[1024];
    char format[16];      // "safetensors", "torch-zip", "torch-legacy", "memory"
    int n;
    ckpt_entry *e;        // in file order
    void *impl;           // mapping and owned buffers
    // The memory limit of the run (--max-memory; 0: none) and what the checkpoint holds against
    // it: the file's mapping (every weight becomes resident during a forward) plus the buffers of
    // converted or copied tensors, each checked before it is allocated.
    uint64_t max_bytes, bytes;
} ckpt;

int ckpt_open(const char *path, ckpt **out, err *e);
// The same under a memory limit (0: none): a file larger than the limit, a conversion (F16, BF16,
// F64 to F32) or a pickle reading past what the limit leaves is refused with OODSEG_E_NOMEM saying
// how much is needed and the limit, before anything is allocated.
int ckpt_open_limit(const char *path, uint64_t max_bytes, ckpt **out, err *e);
void ckpt_close(ckpt *ck);

// An empty in-memory checkpoint (format "memory") to which tests add entries; data may be NULL
// when only names and shapes matter (architecture recognition).
ckpt *ckpt_new_memory(err *e);
int ckpt_add(ckpt *ck, const char *name, dtype t, int ndim, const int64_t *shape,
             const float *f32_data_or_null, err *e);

const ckpt_entry *ckpt_find(const ckpt *ck, const char *name);
// 1 when the entry's data points into the file mapping (loaded zero-copy), else 0.
int ckpt_entry_is_mapped(const ckpt *ck, const ckpt_entry *en);
// The F32 data of `name` with exactly this shape, marked used. Otherwise NULL and OODSEG_E_MODEL
// with a message naming the key and both shapes ("key 'x' has shape [3, 4] but the architecture
// needs [3, 5]") or saying it is missing. Models bind through models/weights.h, which builds on it.
const float *ckpt_get(ckpt *ck, const char *name, int ndim, const int64_t *shape, err *e);
// Gives back the memory of the float tensor whose data is `data` (as ckpt_get returned it) once
// the model holds a copy of its own (a BN-folded conv): an owned buffer is freed, the pages of a
// mapped one are dropped (MADV_DONTNEED on the pages it alone covers; the file stays as it is).
// The entry is marked released, and a later ckpt_get of it fails with OODSEG_E_MODEL. Nothing
// happens for NULL or for data not in ck.
void ckpt_release(ckpt *ck, const float *data);
// The first entry not marked used whose name matches none of `ignore` (suffix patterns such as
// "num_batches_tracked" or prefixes ending in '.' such as "auxiliary_head."), or NULL.
const ckpt_entry *ckpt_first_unused(const ckpt *ck, const char *const *ignore, int n_ignore);
int64_t ckpt_num_float_params(const ckpt *ck);
// Learnable parameters as the model zoos and manifests count them: every float tensor except the
// BatchNorm running statistics (buffers).
int64_t ckpt_num_learnable_params(const ckpt *ck);

// safetensors writer: F32 tensors (NCHW as given), optional string metadata pairs (may be NULL).
// Writes to a temporary name and renames, so a failure never leaves a partial file.
typedef struct st_tensor { const char *name; int ndim; const int64_t *shape; const float *data; } st_tensor;
int safetensors_write(const char *path, const st_tensor *t, int n, const char *const *meta_kv,
                      int n_meta, err *e);

#endif
