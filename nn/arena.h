// The activation arena: where every activation and scratch buffer of a model's forward comes
// from. The model owns one (created with the model, freed with it). Each forward calls
// arena_reset first and arena_end last; in between it takes a block per activation with
// arena_alloc and gives it back with arena_release right after the activation's last use (where
// the model code used to free it), so the arena knows every activation's lifetime.
//
// Liveness-based reuse: a forward is a sequence of requests and releases. The first forward (and
// any forward whose sequence differs from the previous one: another input size or other outputs)
// is served by one system allocation per request, freed on release: the memory high-water mark
// is that of plain malloc. arena_end then plans the next forward from this one: every request gets
// an offset in one slab such that requests alive at the same time never overlap (greedy by size,
// largest first at the lowest free offset), which makes the slab as small as the most bytes alive
// at once in the forwards measured (ESPNet, ESPNetv2). A following forward with the same sequence
// is served from the slab: no system allocation, no page faults, no malloc policy needed. The
// sequence is checked event by event (a request no larger than the plan's at its place matches);
// at the first difference the rest of the forward falls back to system allocations (the slab
// slices already handed out stay valid), and arena_end replans.
//
// This is the seam for another device: a GPU backend implements this interface on device memory
// (one slab = one device allocation) and the nn/ ops on it; the model code does not change.
// Every block is 64-byte aligned; sizes are rounded up to 64.
#ifndef OODSEG_NN_ARENA_H
#define OODSEG_NN_ARENA_H

#include <stddef.h>
#include <stdint.h>
#include "../core/err.h"
#include "ctx.h"

#define ARENA_ALIGN 64

typedef struct nn_arena nn_arena;

typedef struct nn_arena_stats {
    size_t in_use;         // bytes handed out now (requests rounded up to 64)
    size_t peak;           // the most `in_use` has been since the arena was created
    size_t reserved;       // bytes the arena holds: the slab plus the system blocks handed out now
    size_t peak_reserved;  // the most `reserved` has been
    size_t slab;           // the slab's size (0 before the first plan)
    int planned;           // 1 when the next forward that repeats the last one runs from the slab
    int64_t blocks_made;   // system allocations (blocks and slabs) since creation
} nn_arena_stats;

// An empty arena on `device` (only NN_DEVICE_CPU today). *out is NULL on failure.
int arena_create(nn_arena **out, nn_device device, err *e);
// Frees the slab and every block still handed out. NULL is a no-op.
void arena_free(nn_arena *a);
nn_device arena_device(const nn_arena *a);
// The start of a forward. Blocks a forward that stopped on an error left handed out are freed.
void arena_reset(nn_arena *a);
// The end of a forward (also one that failed, after its releases): when everything was released,
// plans the next forward from this one (and grows the slab when the plan needs more). Without
// memory for the plan or the slab the next forward simply runs unplanned, so nothing can fail.
void arena_end(nn_arena *a);
// A block of at least `bytes` (64-byte aligned, contents undefined). NULL with OODSEG_E_NOMEM
// naming `what` when the system has no memory.
void *arena_alloc(nn_arena *a, size_t bytes, const char *what, err *e);
// `n` floats.
float *arena_floats(nn_arena *a, int64_t n, const char *what, err *e);
// Gives p (from arena_alloc, or NULL) back. p must not be used afterwards.
void arena_release(nn_arena *a, void *p);
// Takes p (from arena_alloc) out of the arena for the caller, who frees the result with free():
// an activation handed to the caller once it is dead in the forward. A system block is handed
// over as it is; the plan gives requests that were detached last time system blocks, so only a
// forward that left its plan copies (NULL with OODSEG_E_NOMEM then, p released).
void *arena_detach(nn_arena *a, void *p, err *e);
// Takes `from`'s plan for the next forwards of a, as if a had run from's last forward itself: an
// arena of a model twin (models/model.h) then runs its first forward from a slab too, instead of
// mapping and zeroing a system block per request. The slab is mapped by the next arena_reset (and
// never, if a runs no forward). 1 when adopted; 0 when from has no plan, a has blocks handed out,
// or there is no memory for the copy (then a plans for itself, as before).
int arena_adopt_plan(nn_arena *a, const nn_arena *from);
void arena_stats(const nn_arena *a, nn_arena_stats *s);

#endif
