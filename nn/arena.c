// The activation arena (arena.h): this forward's requests and events, and the plan made from the
// previous forward. Requests are found by linear search (a forward makes a few dozen).
#include "arena.h"
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

// System blocks of at least this size are mappings of their own, returned to the system when
// released: the first forward's blocks then leave nothing resident behind when the plan's slab
// (a mapping too) takes over, whatever the host's malloc policy keeps in its heap.
#define ARENA_MAP_MIN ((size_t)1 << 20)

enum { EV_ALLOC, EV_RELEASE, EV_DETACH };

typedef struct event {
    int kind;
    size_t arg;          // EV_ALLOC: the rounded size; else the request's index
} event;

typedef struct request {
    size_t size;         // rounded
    int born, died;      // event indices; died = -1 while handed out
    int detached;
    int in_slab;
    int mapped;          // a mapping of its own (sys_block), else malloc memory
    void *p;
} request;

typedef struct plan {
    event *ev;           // the sequence it was made for
    int nev;
    size_t *off;         // per request: offset in the slab, or SIZE_MAX for a system block (detached)
    int nreq;
} plan;

struct nn_arena {
    nn_device device;
    request *r;          // this forward's requests, in order
    int nr, rcap;
    event *ev;           // this forward's events, in order
    int nev, evcap;
    int diverged;        // this forward left the plan
    int lost;            // an event or a request went unrecorded (no memory): no plan from this forward
    plan pl;
    int planned;
    size_t slab_want;    // an adopted plan's slab, mapped by the next arena_reset
    char *slab;
    size_t slab_size;
    int slab_mapped;
    size_t in_use, peak, reserved, peak_reserved;
    int64_t made;
};

int arena_create(nn_arena **out, nn_device device, err *e) {
    *out = err_calloc(e, 1, sizeof **out, "the activation arena");
    if (!*out) return e->code;
    (*out)->device = device;
    return OODSEG_OK;
}

static void sys_free(void *p, size_t bytes, int mapped) {
    if (mapped) munmap(p, bytes);
    else free(p);
}

// 1 while a request of this forward is handed out (neither released nor detached).
static int handed_out(const nn_arena *a) {
    for (int i = 0; i < a->nr; i++)
        if (a->r[i].died < 0) return 1;
    return 0;
}

// The plan of the next forwards: the sequence ev (nev events) and the slab offsets off (nreq
// requests), both the arena's from now on.
static void set_plan(nn_arena *a, event *ev, int nev, size_t *off, int nreq) {
    free(a->pl.ev), free(a->pl.off);
    a->pl = (plan){ev, nev, off, nreq};
    a->planned = 1;
}

static void drop_live(nn_arena *a) {
    for (int i = 0; i < a->nr; i++)
        if (a->r[i].died < 0 && !a->r[i].in_slab) sys_free(a->r[i].p, a->r[i].size, a->r[i].mapped);
}

void arena_free(nn_arena *a) {
    if (!a) return;
    drop_live(a);
    free(a->r);
    free(a->ev);
    free(a->pl.ev);
    free(a->pl.off);
    if (a->slab) sys_free(a->slab, a->slab_size, a->slab_mapped);
    free(a);
}

nn_device arena_device(const nn_arena *a) { return a->device; }

static void *sys_block(nn_arena *a, size_t bytes, int map, int *mapped, const char *what, err *e);

// A slab of `need` bytes for the plan (the old one replaced); 0 when the system has no memory.
static int map_slab(nn_arena *a, size_t need) {
    if (a->slab) sys_free(a->slab, a->slab_size, a->slab_mapped);
    a->reserved -= a->slab_size;
    a->slab = NULL, a->slab_size = 0;
    err ignore = {0};
    if (!(a->slab = sys_block(a, need, 1, &a->slab_mapped, "the activation arena's slab", &ignore))) return 0;
    a->slab_size = need;
    return 1;
}

void arena_reset(nn_arena *a) {
    if (a->planned && a->slab_want > a->slab_size && !map_slab(a, a->slab_want)) a->planned = 0;
    a->slab_want = 0;
    drop_live(a);
    a->nr = a->nev = 0;
    a->diverged = !a->planned;
    a->lost = 0;
    a->in_use = 0;
    a->reserved = a->slab_size;
}

// Appends an event and checks it against the plan; 1 while this forward follows the plan.
static int follow(nn_arena *a, int kind, size_t arg, err *e) {
    if (a->nev == a->evcap) {
        int cap = a->evcap ? 2 * a->evcap : 128;
        event *v = realloc(a->ev, (size_t)cap * sizeof *v);
        if (!v) {
            a->lost = a->diverged = 1;
            err_set(e, OODSEG_E_NOMEM, "out of memory recording the forward in the activation arena");
            return -1;
        }
        a->ev = v, a->evcap = cap;
    }
    a->ev[a->nev] = (event){kind, arg};
    // A smaller request than the plan's at its place still fits its slot: a twin with fewer
    // threads than the model whose plan it adopted asks for less per-thread scratch.
    if (!a->diverged && (a->nev >= a->pl.nev || a->pl.ev[a->nev].kind != kind ||
                         (kind == EV_ALLOC ? arg > a->pl.ev[a->nev].arg : arg != a->pl.ev[a->nev].arg)))
        a->diverged = 1;
    a->nev++;
    return !a->diverged;
}

// map: a large block may be a mapping of its own (*mapped says whether it is); a block the caller
// will own (a detached output, freed with free()) is malloc memory.
static void *sys_block(nn_arena *a, size_t bytes, int map, int *mapped, const char *what, err *e) {
    void *p = NULL;
    *mapped = map && bytes >= ARENA_MAP_MIN;
    if (*mapped) {
        p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) p = NULL;
#ifdef MADV_HUGEPAGE
        // 2 MB pages where the kernel has them (transparent huge pages in "madvise" mode): a
        // 190 MB slab is then 95 page faults instead of 48000 on its first use, and the ops
        // walking the maps miss the TLB less. Only this mapping is concerned; failure is harmless.
        if (p && bytes >= ((size_t)2 << 20)) (void)madvise(p, bytes, MADV_HUGEPAGE);
#endif
    } else if (posix_memalign(&p, ARENA_ALIGN, bytes)) {
        p = NULL;
    }
    if (!p) {
        err_set(e, OODSEG_E_NOMEM, "out of memory allocating %zu bytes for %s", bytes, what);
        return NULL;
    }
    a->made++;
    a->reserved += bytes;
    if (a->reserved > a->peak_reserved) a->peak_reserved = a->reserved;
    return p;
}

void *arena_alloc(nn_arena *a, size_t bytes, const char *what, err *e) {
    bytes = bytes < ARENA_ALIGN ? ARENA_ALIGN : (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    if (a->nr == a->rcap) {
        int cap = a->rcap ? 2 * a->rcap : 64;
        request *r = realloc(a->r, (size_t)cap * sizeof *r);
        if (!r) { err_set(e, OODSEG_E_NOMEM, "out of memory growing the activation arena for %s", what); return NULL; }
        a->r = r, a->rcap = cap;
    }
    int on_plan = follow(a, EV_ALLOC, bytes, e);
    if (on_plan < 0) return NULL;
    request *q = &a->r[a->nr];
    *q = (request){.size = bytes, .born = a->nev - 1, .died = -1};
    size_t off = on_plan && a->nr < a->pl.nreq ? a->pl.off[a->nr] : SIZE_MAX;
    if (off != SIZE_MAX) {
        q->p = a->slab + off;
        q->in_slab = 1;
    } else if (!(q->p = sys_block(a, bytes, !on_plan, &q->mapped, what, e))) {   // on the plan: detached last time
        a->lost = 1;   // the event is recorded but the request is not: no plan from this forward
        return NULL;
    }
    a->nr++;
    a->in_use += bytes;
    if (a->in_use > a->peak) a->peak = a->in_use;
    return q->p;
}

float *arena_floats(nn_arena *a, int64_t n, const char *what, err *e) {
    return arena_alloc(a, (size_t)n * sizeof(float), what, e);
}

static int find(const nn_arena *a, const void *p) {
    for (int i = a->nr - 1; i >= 0; i--)
        if (a->r[i].p == p && a->r[i].died < 0) return i;
    return -1;
}

// Marks request i dead at a new event of `kind`; its system block, if any, is the caller's.
static void retire(nn_arena *a, int i, int kind) {
    err ignore = {0};
    follow(a, kind, (size_t)i, &ignore);   // unrecorded (no memory): `lost` keeps it out of any plan
    request *q = &a->r[i];
    q->died = a->nev;
    a->in_use -= q->size;
    if (!q->in_slab) a->reserved -= q->size;
}

void arena_release(nn_arena *a, void *p) {
    int i = p ? find(a, p) : -1;
    if (i < 0) return;
    retire(a, i, EV_RELEASE);
    if (!a->r[i].in_slab) sys_free(p, a->r[i].size, a->r[i].mapped);
}

void *arena_detach(nn_arena *a, void *p, err *e) {
    int i = p ? find(a, p) : -1;
    if (i < 0) return NULL;
    request *q = &a->r[i];
    q->detached = 1;
    retire(a, i, EV_DETACH);
    if (!q->in_slab && !q->mapped) return p;
    // Only off the plan (the plan gives detached requests malloc blocks outside the slab): a copy
    // into memory the caller frees with free().
    void *c = malloc(q->size);
    if (c) memcpy(c, p, q->size);
    else err_set(e, OODSEG_E_NOMEM, "out of memory copying a %zu-byte output out of the activation arena", q->size);
    if (q->mapped) sys_free(p, q->size, 1);   // (also when the copy failed: p is released)
    return c;
}

// Greedy by size: the largest request first, each at the lowest offset where it overlaps (in
// bytes) no placed request alive at the same time. Returns the slab size; off[i] = SIZE_MAX for
// detached requests.
static size_t place(const request *r, int n, size_t *off, int *order) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        off[i] = SIZE_MAX;
        if (!r[i].detached) order[m++] = i;
    }
    for (int i = 1; i < m; i++)   // insertion sort: largest first, then the earlier request
        for (int j = i; j > 0; j--) {
            const request *x = &r[order[j]], *y = &r[order[j - 1]];
            if (x->size < y->size || (x->size == y->size && order[j] > order[j - 1])) break;
            int t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
        }
    size_t total = 0;
    for (int k = 0; k < m; k++) {
        const request *q = &r[order[k]];
        size_t at = 0;
        for (int moved = 1; moved;) {   // slide past every placed overlap until none is left
            moved = 0;
            for (int j = 0; j < k; j++) {
                const request *o = &r[order[j]];
                size_t oo = off[order[j]];
                if (o->born < q->died && q->born < o->died && oo < at + q->size && at < oo + o->size)
                    at = oo + o->size, moved = 1;
            }
        }
        off[order[k]] = at;
        if (at + q->size > total) total = at + q->size;
    }
    return total;
}

void arena_end(nn_arena *a) {
    if (!a->diverged) return;   // the plan held (or the forward stopped early on it): kept
    a->planned = 0;
    if (a->lost || handed_out(a)) return;   // (something still handed out: no plan)
    size_t *off = malloc((size_t)(a->nr ? a->nr : 1) * sizeof *off);
    int *order = malloc((size_t)(a->nr ? a->nr : 1) * sizeof *order);
    event *ev = malloc((size_t)(a->nev ? a->nev : 1) * sizeof *ev);
    if (!off || !order || !ev) {
        free(off), free(order), free(ev);
        return;
    }
    size_t need = place(a->r, a->nr, off, order);
    free(order);
    if (need > a->slab_size && !map_slab(a, need)) {
        free(off), free(ev);
        return;
    }
    memcpy(ev, a->ev, (size_t)a->nev * sizeof *ev);
    set_plan(a, ev, a->nev, off, a->nr);
}

int arena_adopt_plan(nn_arena *a, const nn_arena *from) {
    if (handed_out(a) || !from->planned) return 0;
    event *ev = malloc((size_t)(from->pl.nev ? from->pl.nev : 1) * sizeof *ev);
    size_t *off = malloc((size_t)(from->pl.nreq ? from->pl.nreq : 1) * sizeof *off);
    if (!ev || !off) {
        free(ev), free(off);
        return 0;
    }
    memcpy(ev, from->pl.ev, (size_t)from->pl.nev * sizeof *ev);
    memcpy(off, from->pl.off, (size_t)from->pl.nreq * sizeof *off);
    set_plan(a, ev, from->pl.nev, off, from->pl.nreq);
    a->slab_want = from->slab_size;
    return 1;
}

void arena_stats(const nn_arena *a, nn_arena_stats *s) {
    s->in_use = a->in_use;
    s->peak = a->peak;
    s->reserved = a->reserved;
    s->peak_reserved = a->peak_reserved;
    s->slab = a->slab_size;
    s->planned = a->planned;
    s->blocks_made = a->made;
}
