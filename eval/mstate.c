// Shard states (see mstate.h): the file format, saving, and the exact k-way merge.
#include "mstate.h"
#include "radix.h"
#include "sweep.h"
#include "../core/outfile.h"
#include "../io/file.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSTATE_MAGIC "OODSEGMS"
#define MSTATE_VERSION 2u
#define MSTATE_END 0x444E4553u   // "SEND" closes each section

typedef struct wbuf { FILE *f; int bad; uint64_t prev; } wbuf;   // prev: last key + 1 of the section
static void w_bytes(wbuf *w, const void *p, size_t n) { if (!w->bad && fwrite(p, 1, n, w->f) != n) w->bad = 1; }
static void w_u32(wbuf *w, uint32_t v) { uint8_t b[4] = {v, v >> 8, v >> 16, v >> 24}; w_bytes(w, b, 4); }
static void w_u64(wbuf *w, uint64_t v) { w_u32(w, (uint32_t)v); w_u32(w, (uint32_t)(v >> 32)); }
static void w_leb(wbuf *w, uint64_t v) {
    uint8_t b[10]; int n = 0;
    do { b[n] = v & 127; v >>= 7; if (v) b[n] |= 128; n++; } while (v);
    w_bytes(w, b, n);
}
// A run: the distance of its key below the previous run's (keys are the order-preserving integers
// of the float32 scores, so neighbouring scores differ by little), then the two counts; mostly
// 3 to 5 bytes.
static void w_run(wbuf *w, uint32_t key, uint64_t np, uint64_t nn) {
    w_leb(w, w->prev - key);
    w->prev = key;
    w_leb(w, np); w_leb(w, nn);
}

typedef struct rbuf { FILE *f; const char *path; int eof; } rbuf;
static int r_bytes(rbuf *r, void *p, size_t n, err *e) {
    if (fread(p, 1, n, r->f) != n)
        return err_set(e, OODSEG_E_FORMAT, "%s: state file truncated; it was not written completely, so re-run that shard", r->path);
    return OODSEG_OK;
}
static int r_u32(rbuf *r, uint32_t *v, err *e) {
    uint8_t b[4];
    if (r_bytes(r, b, 4, e)) return e->code;
    *v = b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return OODSEG_OK;
}
static int r_u64(rbuf *r, uint64_t *v, err *e) {
    uint32_t lo, hi;
    if (r_u32(r, &lo, e) || r_u32(r, &hi, e)) return e->code;
    *v = lo | (uint64_t)hi << 32;
    return OODSEG_OK;
}
static int r_leb(rbuf *r, uint64_t *v, err *e) {
    uint64_t x = 0;
    for (int s = 0; s < 64; s += 7) {
        int c = getc_unlocked(r->f);
        if (c == EOF) return err_set(e, OODSEG_E_FORMAT, "%s: state file truncated inside a run; re-run that shard", r->path);
        x |= (uint64_t)(c & 127) << s;
        if (!(c & 128)) { *v = x; return OODSEG_OK; }
    }
    return err_set(e, OODSEG_E_FORMAT, "%s: corrupt count in the state file", r->path);
}

// Writes one section header + runs; n_runs is patched after the runs (the merge streams them).
static int write_section(wbuf *w, const char *name, uint64_t P, uint64_t N, long *runs_at) {
    char nm[MSTATE_NAME] = {0};
    snprintf(nm, sizeof nm, "%s", name);
    w_bytes(w, nm, sizeof nm);
    w_u64(w, P); w_u64(w, N);
    *runs_at = ftell(w->f);
    w_u64(w, 0);
    w->prev = (uint64_t)1 << 32;
    return w->bad;
}
static void patch_runs(wbuf *w, long at, uint64_t n_runs) {
    long here = ftell(w->f);
    if (fseek(w->f, at, SEEK_SET)) { w->bad = 1; return; }
    w_u64(w, n_runs);
    if (fseek(w->f, here, SEEK_SET)) w->bad = 1;
    w_u32(w, MSTATE_END);
}

static FILE *open_tmp(outfile *o, const char *path, err *e) {
    if (outfile_open(o, path, e)) return NULL;
    setvbuf(o->f, NULL, _IOFBF, 1 << 20);
    return o->f;
}
static int close_tmp(outfile *o, int bad, err *e) { return outfile_commit(o, !bad, e); }
static void w_header(wbuf *w, const char *meta, int n_sections) {
    size_t ml = meta ? strlen(meta) : 0;
    w_bytes(w, MSTATE_MAGIC, 8);
    w_u32(w, MSTATE_VERSION); w_u32(w, (uint32_t)n_sections); w_u32(w, (uint32_t)ml);
    if (ml) w_bytes(w, meta, ml);
}

int mstate_save(const char *path, const char *meta_json, int n_sections,
                const char *const *names, macc *const *accs, err *e) {
    if (n_sections < 1 || n_sections > MSTATE_MAX_SECTIONS)
        return err_set(e, OODSEG_E_ARG, "state: %d sections (1..%d allowed)", n_sections, MSTATE_MAX_SECTIONS);
    outfile of;
    FILE *f = open_tmp(&of, path, e);
    if (!f) return e->code;
    wbuf w = {f, 0, 0};
    w_header(&w, meta_json, n_sections);
    for (int s = 0; s < n_sections; s++) {
        macc *a = accs[s];
        macc_iter it;
        macc_iter_begin(a, &it);
        long at;
        int64_t P, N;
        macc_count(a, &P, &N);
        write_section(&w, names[s], (uint64_t)P, (uint64_t)N, &at);
        uint32_t k; uint64_t np, nn, runs = 0;
        while (macc_iter_next(&it, &k, &np, &nn)) { w_run(&w, k, np, nn); runs++; }
        patch_runs(&w, at, runs);
    }
    return close_tmp(&of, w.bad, e);
}

typedef struct src {
    rbuf r;
    uint64_t P, N, left, sum_p, sum_n, prev;
    uint32_t key; uint64_t np, nn;   // current run
    int has;
} src;

static int src_next(src *s, err *e) {
    if (s->left == 0) { s->has = 0; return OODSEG_OK; }
    uint64_t d;
    if (r_leb(&s->r, &d, e) || r_leb(&s->r, &s->np, e) || r_leb(&s->r, &s->nn, e)) return e->code;
    if (d == 0 || d > s->prev || (s->np == 0 && s->nn == 0))
        return err_set(e, OODSEG_E_FORMAT, "%s: a run out of order or empty; the state file is corrupt", s->r.path);
    s->prev -= d;
    uint32_t k = (uint32_t)s->prev;
    if (key_to_score(k) != key_to_score(k)) return err_set(e, OODSEG_E_FORMAT, "%s: NaN score in the state file; it is corrupt", s->r.path);
    s->key = k; s->has = 1; s->left--;
    s->sum_p += s->np; s->sum_n += s->nn;
    return OODSEG_OK;
}

static int read_header(src *s, int *n_sections, char *meta, size_t meta_cap, err *e) {
    char mg[8];
    uint32_t ver, ns, ml;
    if (fread(mg, 1, 8, s->r.f) != 8 || memcmp(mg, MSTATE_MAGIC, 8))
        return err_set(e, OODSEG_E_FORMAT, "%s: not an oodseg metrics state file (write one with --save-state)", s->r.path);
    if (r_u32(&s->r, &ver, e) || r_u32(&s->r, &ns, e) || r_u32(&s->r, &ml, e)) return e->code;
    if (ver != MSTATE_VERSION)
        return err_set(e, OODSEG_E_FORMAT, "%s: state version %u; this oodseg reads version %u", s->r.path, ver, MSTATE_VERSION);
    if (ns < 1 || ns > MSTATE_MAX_SECTIONS || ml > (1u << 20))
        return err_set(e, OODSEG_E_FORMAT, "%s: corrupt state header", s->r.path);
    char *m = malloc(ml + 1);
    if (!m) return err_set(e, OODSEG_E_NOMEM, "state: out of memory");
    int rc = r_bytes(&s->r, m, ml, e);
    m[ml] = 0;
    if (!rc && meta && meta_cap) snprintf(meta, meta_cap, "%s", m);
    free(m);
    *n_sections = (int)ns;
    return rc;
}

int mstate_read_meta(const char *path, char *meta, size_t meta_cap, err *e) {
    src s = {0};
    s.r.path = path;
    s.r.f = io_fopen_regular(path, "metrics state", NULL, e);
    if (!s.r.f) return e->code;
    int ns = 0, rc = read_header(&s, &ns, meta, meta_cap, e);
    fclose(s.r.f);
    return rc;
}

// Opens every state and reads its header; the section counts must agree. meta: the first's.
static int open_sources(src *S, const char *const *paths, int n_paths, int *ns0, char *meta, size_t meta_cap, err *e) {
    for (int i = 0; i < n_paths; i++) {
        S[i].r.path = paths[i];
        S[i].r.f = io_fopen_regular(paths[i], "metrics state", NULL, e);
        if (!S[i].r.f) return e->code;
        setvbuf(S[i].r.f, NULL, _IOFBF, n_paths > 16 ? 1 << 16 : 1 << 20);   // many shards: smaller buffers
        int ns = 0;
        if (read_header(&S[i], &ns, i == 0 ? meta : NULL, meta_cap, e)) return e->code;
        if (i == 0) *ns0 = ns;
        if (ns != *ns0)
            return err_set(e, OODSEG_E_DATA, "%s: %d sections, but %s has %d; merge states of the same methods", paths[i], ns, paths[0], *ns0);
    }
    return OODSEG_OK;
}

// Reads section sec's head from every source (the names must agree) and each one's first run;
// name receives the section's name, P and N its summed counts.
static int read_heads(src *S, const char *const *paths, int n_paths, int sec, char *name, uint64_t *P, uint64_t *N, err *e) {
    *P = *N = 0;
    for (int i = 0; i < n_paths; i++) {
        char nm[MSTATE_NAME];
        if (r_bytes(&S[i].r, nm, MSTATE_NAME, e)) return e->code;
        nm[MSTATE_NAME - 1] = 0;
        if (i == 0) memcpy(name, nm, MSTATE_NAME);
        else if (strcmp(nm, name))
            return err_set(e, OODSEG_E_DATA, "%s: section %d is '%s' but %s has '%s'", paths[i], sec, nm, paths[0], name);
        if (r_u64(&S[i].r, &S[i].P, e) || r_u64(&S[i].r, &S[i].N, e) || r_u64(&S[i].r, &S[i].left, e)) return e->code;
        S[i].has = 0; S[i].sum_p = S[i].sum_n = 0; S[i].prev = (uint64_t)1 << 32;
        *P += S[i].P; *N += S[i].N;
        if (src_next(&S[i], e)) return e->code;
    }
    return OODSEG_OK;
}

// The k-way merge of one section's runs by the largest current key (k, the shards, is small, so a
// linear scan suffices), into the sweep (when sweep_on) and the merged file (when w->f).
static int merge_runs(src *S, int n_paths, sweep *sw, int sweep_on, wbuf *w, uint64_t *runs, err *e) {
    *runs = 0;
    for (;;) {
        int best = -1;
        for (int i = 0; i < n_paths; i++)
            if (S[i].has && (best < 0 || S[i].key > S[best].key)) best = i;
        if (best < 0) return OODSEG_OK;
        uint32_t k = S[best].key;
        uint64_t np = 0, nn = 0;
        for (int i = 0; i < n_paths; i++)
            if (S[i].has && S[i].key == k) { np += S[i].np; nn += S[i].nn; if (src_next(&S[i], e)) return e->code; }
        if (sweep_on) sw_push(sw, k, np, nn);
        if (w->f) w_run(w, k, np, nn);
        (*runs)++;
    }
}

// Every source must close the section where its runs add up to its counts.
static int check_ends(src *S, const char *const *paths, int n_paths, const char *name, err *e) {
    for (int i = 0; i < n_paths; i++) {
        uint32_t end;
        if (r_u32(&S[i].r, &end, e)) return e->code;
        if (end != MSTATE_END || S[i].sum_p != S[i].P || S[i].sum_n != S[i].N)
            return err_set(e, OODSEG_E_FORMAT, "%s: section '%s' is corrupt (counts do not add up)", paths[i], name);
    }
    return OODSEG_OK;
}

int mstate_merge(const char *const *paths, int n_paths, fpr_conv conv, int want_curve,
                 const char *save_path, int *n_sections, char names[][MSTATE_NAME],
                 metrics_result *results, char *meta, size_t meta_cap, err *e) {
    return mstate_merge_as(paths, n_paths, conv, want_curve, save_path, NULL, n_sections, names, results, meta,
                           meta_cap, e);
}

int mstate_merge_as(const char *const *paths, int n_paths, fpr_conv conv, int want_curve,
                    const char *save_path, const char *save_meta, int *n_sections, char names[][MSTATE_NAME],
                    metrics_result *results, char *meta, size_t meta_cap, err *e) {
    if (n_paths < 1) return err_set(e, OODSEG_E_ARG, "merge: no state files given");
    src *S = err_calloc(e, (size_t)n_paths, sizeof(src), "merge sources");
    if (!S) return e->code;
    int ns0 = 0, done = 0;
    outfile of;
    wbuf w = {0};
    int rc = open_sources(S, paths, n_paths, &ns0, meta, meta_cap, e);
    if (!rc && save_path) {
        if (!(w.f = open_tmp(&of, save_path, e))) rc = e->code;
        else w_header(&w, save_meta ? save_meta : meta, ns0);
    }
    for (int sec = 0; sec < ns0 && !rc; sec++) {
        uint64_t P, N, runs = 0;
        if ((rc = read_heads(S, paths, n_paths, sec, names[sec], &P, &N, e))) break;
        long at = 0;
        if (w.f) write_section(&w, names[sec], P, N, &at);
        sweep sw;
        int ok = P > 0 && N > 0;
        sw_init(&sw, P, N, want_curve && ok);
        rc = merge_runs(S, n_paths, &sw, ok, &w, &runs, e);
        if (!rc) rc = check_ends(S, paths, n_paths, names[sec], e);
        if (w.f) patch_runs(&w, at, runs);
        if (rc || sw.nomem) {
            sw_discard(&sw);
            if (!rc) rc = err_set(e, OODSEG_E_NOMEM, "merge: out of memory for the curve");
            break;
        }
        sw_finish(&sw, conv, &results[sec]);
        results[sec].n_distinct = (int64_t)runs;
        done = sec + 1;
    }
    for (int i = 0; i < n_paths; i++) if (S[i].r.f) fclose(S[i].r.f);
    free(S);
    if (w.f) {
        if (rc) outfile_abort(&of);
        else rc = close_tmp(&of, w.bad, e);
    }
    if (rc) for (int i = 0; i < done; i++) metrics_result_free(&results[i]);
    *n_sections = rc ? 0 : ns0;
    return rc;
}
