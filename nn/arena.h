// The activation arena: where every activation and scratch buffer of a model's forward comes
// from. The model owns one (created with the model, freed with it); each forward resets it first,
// then takes a block per activation with arena_alloc and gives it back with arena_release right
// after the activation's last use (where the model code used to free it), so blocks are reused
// within the forward by liveness and across forwards without returning their pages to the system.
// This is the seam for another device: a GPU backend implements this interface on device memory
// (and the nn/ ops on it); the model code does not change.
//
// Policy, in order:
//   1. the block the same request (by its position in the forward) got in the previous forward,
//      when it is free and large enough: a forward with the same requests and releases as the
//      previous one (same input size, same outputs) replays its placement exactly and allocates
//      nothing, even where best fit alone would now choose differently;
//   2. else the smallest free block that fits and is at most twice the request (best fit; a small
//      activation never pins a large block that a later large one would then have to duplicate);
//   3. else the largest free block smaller than the request is grown (freed and allocated again
//      at the new size), so the number of blocks stays that of the most activations live at once;
//   4. else a new block.
// Every block is 64-byte aligned and at least 64 bytes; sizes are rounded up to 64.
#ifndef OODSEG_NN_ARENA_H
#define OODSEG_NN_ARENA_H

#include <stddef.h>
#include <stdint.h>
#include "../core/err.h"
#include "ctx.h"

#define ARENA_ALIGN 64

typedef struct nn_arena nn_arena;

typedef struct nn_arena_stats {
    size_t in_use;         // bytes of the blocks handed out now (requests rounded up to 64)
    size_t peak;           // the most `in_use` has been since the arena was created
    size_t reserved;       // bytes of every block the arena holds, free or handed out
    size_t peak_reserved;  // the most `reserved` has been
    int blocks;            // blocks held now
    int64_t blocks_made;   // blocks allocated from the system (new or grown) since creation
} nn_arena_stats;

// An empty arena on `device` (only NN_DEVICE_CPU today). *out is NULL on failure.
int arena_create(nn_arena **out, nn_device device, err *e);
// Frees every block, including blocks still handed out. NULL is a no-op.
void arena_free(nn_arena *a);
nn_device arena_device(const nn_arena *a);
// The start of a forward: every block becomes free (a forward that stopped on an error may have
// left some handed out) and the request count restarts, so that request i of this forward is
// offered the block request i got in the previous one. Blocks keep their memory.
void arena_reset(nn_arena *a);
// A block of at least `bytes` (64-byte aligned, contents undefined). NULL with OODSEG_E_NOMEM
// naming `what` when the system has no memory.
void *arena_alloc(nn_arena *a, size_t bytes, const char *what, err *e);
// `n` floats.
float *arena_floats(nn_arena *a, int64_t n, const char *what, err *e);
// Gives p (from arena_alloc, or NULL) back for reuse. p must not be used afterwards.
void arena_release(nn_arena *a, void *p);
// Takes p (from arena_alloc) out of the arena: the caller owns it and frees it with free(). For
// an activation handed to the caller once it is dead in the forward (no copy).
void *arena_detach(nn_arena *a, void *p);
void arena_stats(const nn_arena *a, nn_arena_stats *s);

#endif
