// The activation arena (arena.h): a list of blocks, each free or handed out, searched linearly (a
// forward holds a few dozen at most), plus the previous forward's placement, request by request.
#include "arena.h"
#include <stdlib.h>

typedef struct block {
    void *p;        // NULL: an empty slot (its block was detached)
    size_t size;
    size_t asked;   // the request it serves now (rounded), counted in in_use
    int used;
} block;

struct nn_arena {
    nn_device device;
    block *b;
    int n, cap;
    int *plan;      // plan[i]: the slot request i of the previous (and current) forward got; -1 none
    int nplan, plan_cap;
    int seq;        // requests so far in this forward
    size_t in_use, peak, reserved, peak_reserved;
    int64_t made;
};

int arena_create(nn_arena **out, nn_device device, err *e) {
    *out = err_calloc(e, 1, sizeof **out, "the activation arena");
    if (!*out) return e->code;
    (*out)->device = device;
    return OODSEG_OK;
}

void arena_free(nn_arena *a) {
    if (!a) return;
    for (int i = 0; i < a->n; i++) free(a->b[i].p);
    free(a->b);
    free(a->plan);
    free(a);
}

nn_device arena_device(const nn_arena *a) { return a->device; }

void arena_reset(nn_arena *a) {
    for (int i = 0; i < a->n; i++) a->b[i].used = 0, a->b[i].asked = 0;
    a->in_use = 0;
    a->seq = 0;
}

static int fits(const block *k, size_t bytes) {
    return k->p && !k->used && k->size >= bytes && k->size / 2 <= bytes;
}

// Policy steps 2-4 of arena.h: the slot to serve `bytes` from, -1 when it needs a new slot, and
// *grow when the chosen free block is too small and must be allocated again.
static int choose(const nn_arena *a, size_t bytes, int *grow) {
    int best = -1, smaller = -1;
    *grow = 0;
    for (int i = 0; i < a->n; i++) {
        const block *k = &a->b[i];
        if (fits(k, bytes) && (best < 0 || k->size < a->b[best].size)) best = i;
        if (k->p && !k->used && k->size < bytes && (smaller < 0 || k->size > a->b[smaller].size)) smaller = i;
    }
    if (best >= 0) return best;
    if (smaller >= 0) { *grow = 1; return smaller; }
    for (int i = 0; i < a->n; i++)
        if (!a->b[i].p) return i;
    return -1;
}

static int remember(nn_arena *a, int slot, err *e) {
    if (a->seq == a->plan_cap) {
        int cap = a->plan_cap ? 2 * a->plan_cap : 64;
        int *p = realloc(a->plan, (size_t)cap * sizeof *p);
        if (!p) return err_set(e, OODSEG_E_NOMEM, "out of memory growing the activation arena's plan");
        a->plan = p, a->plan_cap = cap;
    }
    a->plan[a->seq++] = slot;
    if (a->seq > a->nplan) a->nplan = a->seq;
    return OODSEG_OK;
}

// A fresh block of `bytes` in slot i (a new slot when i < 0); the old block of slot i is freed.
static int make(nn_arena *a, int i, size_t bytes, const char *what, err *e) {
    void *p = NULL;
    if (posix_memalign(&p, ARENA_ALIGN, bytes)) {
        err_set(e, OODSEG_E_NOMEM, "out of memory allocating %zu bytes for %s", bytes, what);
        return -1;
    }
    if (i < 0) {
        if (a->n == a->cap) {
            int cap = a->cap ? 2 * a->cap : 16;
            block *b = realloc(a->b, (size_t)cap * sizeof *b);
            if (!b) {
                free(p);
                err_set(e, OODSEG_E_NOMEM, "out of memory growing the activation arena for %s", what);
                return -1;
            }
            a->b = b, a->cap = cap;
        }
        i = a->n++;
        a->b[i] = (block){0};
    }
    a->reserved -= a->b[i].size;
    free(a->b[i].p);
    a->b[i].p = p;
    a->b[i].size = bytes;
    a->reserved += bytes;
    if (a->reserved > a->peak_reserved) a->peak_reserved = a->reserved;
    a->made++;
    return i;
}

void *arena_alloc(nn_arena *a, size_t bytes, const char *what, err *e) {
    bytes = bytes < ARENA_ALIGN ? ARENA_ALIGN : (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    // The previous forward's slot for this request: free and large enough whenever this forward
    // has so far placed every request as that one did (the same blocks are handed out, and a
    // slot's size only grows), even where the 2x rule would now refuse it.
    int i = a->seq < a->nplan ? a->plan[a->seq] : -1, grow = 0;
    if (i < 0 || i >= a->n || !a->b[i].p || a->b[i].used || a->b[i].size < bytes) i = choose(a, bytes, &grow);
    if (i < 0 || grow || !a->b[i].p) i = make(a, i, bytes, what, e);
    if (i < 0) return NULL;
    if (remember(a, i, e)) return NULL;
    a->b[i].used = 1;
    a->b[i].asked = bytes;
    a->in_use += bytes;
    if (a->in_use > a->peak) a->peak = a->in_use;
    return a->b[i].p;
}

float *arena_floats(nn_arena *a, int64_t n, const char *what, err *e) {
    return arena_alloc(a, (size_t)n * sizeof(float), what, e);
}

static block *find(nn_arena *a, const void *p) {
    for (int i = 0; i < a->n; i++)
        if (a->b[i].p == p && a->b[i].used) return &a->b[i];
    return NULL;
}

void arena_release(nn_arena *a, void *p) {
    block *k = p ? find(a, p) : NULL;
    if (!k) return;
    k->used = 0;
    a->in_use -= k->asked;
    k->asked = 0;
}

void *arena_detach(nn_arena *a, void *p) {
    block *k = p ? find(a, p) : NULL;
    if (!k) return NULL;
    a->in_use -= k->asked;
    a->reserved -= k->size;
    *k = (block){0};
    return p;
}

void arena_stats(const nn_arena *a, nn_arena_stats *s) {
    s->in_use = a->in_use;
    s->peak = a->peak;
    s->reserved = a->reserved;
    s->peak_reserved = a->peak_reserved;
    s->blocks = 0;
    for (int i = 0; i < a->n; i++) s->blocks += a->b[i].p != NULL;
    s->blocks_made = a->made;
}
