// Internal to io/: the restricted pickle machine and the helpers the checkpoint readers share.
// Not part of the library's interface.
#ifndef OODSEG_IO_PICKLE_H
#define OODSEG_IO_PICKLE_H

#include <stdint.h>
#include <stddef.h>
#include "checkpoint.h"

// ---- shared checkpoint building (io/checkpoint.c) ----

// A checkpoint with no entries yet; `path` names it in messages.
ckpt *ck_alloc(const char *path, const char *format, err *e);
// Hands a read-only mapping (munmap at close) to ck.
void ck_set_map(ckpt *ck, void *map, size_t len);
// An owned buffer freed at ckpt_close.
void *ck_own(ckpt *ck, size_t nbytes, err *e);
// Adds a tensor whose data is `numel` contiguous little-endian elements of type t at `data`,
// valid for the checkpoint's lifetime (the mapping or an ck_own buffer). Aligned F32 and integer
// data are used in place; F16/BF16/F64 are converted to owned F32; misaligned data is copied.
// A leading "module." is stripped from the name. data may be NULL only when numel is 0.
int ck_push(ckpt *ck, const char *name, dtype t, int ndim, const int64_t *shape,
            const void *data, err *e);
// The file name part of ck->path, for short messages.
const char *ck_base(const ckpt *ck);

// Format readers (buf is the whole mapped file).
int safetensors_load(ckpt *ck, const unsigned char *buf, size_t len, err *e);
int pth_zip_load(ckpt *ck, const unsigned char *buf, size_t len, err *e);
int pth_legacy_load(ckpt *ck, const unsigned char *buf, size_t len, err *e);

// ---- the pickle machine (io/pickle.c) ----

typedef enum pk_kind {
    PK_NONE, PK_BOOL, PK_INT, PK_BIGINT, PK_FLOAT, PK_STR, PK_BYTES, PK_TUPLE, PK_LIST,
    PK_DICT, PK_SET, PK_GLOBAL, PK_STORAGE, PK_TENSOR, PK_OPAQUE
} pk_kind;

typedef struct pk_value pk_value;
struct pk_value {
    pk_kind kind;
    int64_t i;             // BOOL, INT
    double f;              // FLOAT
    char *s;               // STR, BYTES, BIGINT (little-endian two's complement bytes): NUL-terminated copy
    size_t slen;
    char *mod, *name;      // GLOBAL; OPAQUE: the global it was made from ("" when none)
    int n, cap;            // TUPLE, LIST, SET: items; DICT: keys[k] -> items[k]
    pk_value **items, **keys;
    // STORAGE: element type, key (in s), declared element count
    dtype dt;
    int64_t numel;
    // TENSOR
    pk_value *storage;
    int64_t offset;
    int ndim;
    int64_t size[8], stride[8];
    pk_value *next_alloc;  // the machine frees every value at once
};

typedef struct pk_vm {
    const char *file;      // for messages
    pk_value *all;
    pk_value **storages;   // every distinct storage a persistent id named, in first-use order
    int n_storages, cap_storages;
    // The memory budget of all the file's pickles together (see pk_init), what they hold now,
    // and how many objects they made.
    size_t budget, used;
    int64_t n_values;
    int budget_is_limit;   // 1: the budget is what the run's memory limit leaves (smaller than the file's)
} pk_vm;

// A machine for the pickles of one file of file_len bytes. All its pickles share one memory
// budget, PK_BUDGET_BASE + PK_BUDGET_PER_BYTE x file_len: real checkpoints need a small part of
// that, while a pickle of many small objects (each a ~250-byte pk_value from one opcode byte)
// would otherwise amplify a file 250-fold.
#define PK_BUDGET_BASE ((size_t)64 << 20)
#define PK_BUDGET_PER_BYTE 16
void pk_init(pk_vm *vm, const char *file, size_t file_len);
// The same under a memory limit: the budget is at most `room` bytes (what --max-memory leaves
// beside the mapped file; 0: no limit), for all the file's pickles together.
void pk_init_limit(pk_vm *vm, const char *file, size_t file_len, uint64_t room);
// What the run's memory limit leaves to a checkpoint's pickles (0: no limit; 1 when nothing is left).
uint64_t ck_pickle_room(const ckpt *ck);
void pk_release(pk_vm *vm);
// Runs one pickle starting at buf[start] (buf holds len bytes; offsets in messages are into buf,
// so pass the whole file). `where` says which pickle it is ("entry 'model/data.pkl'").
// On success *out is the result and *end the offset just past STOP.
int pk_run(pk_vm *vm, const unsigned char *buf, size_t len, size_t start, const char *where,
           pk_value **out, size_t *end, err *e);
// The state dict inside an unpickled object (see checkpoint.h), or NULL.
const pk_value *pk_find_state_dict(const pk_value *top);
const char *pk_kind_name(pk_kind k);

#endif
