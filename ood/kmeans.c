// K-Means with scikit-learn 1.2.1 semantics (KMeans(algorithm='lloyd')), see kmeans.h.
//
// k-means++ is sklearn's greedy variant; each candidate is drawn from the same D^2 distribution,
// by an exponential race (kmeans_race.c) instead of sklearn's searchsorted in the cumulative sums,
// so that features changed by bf16 or another device give the same draws, mostly.
//
// Same trajectory as sklearn: the data are centred on their column means first (sklearn does it
// for accuracy; here each row is centred on the fly, x - mean in float, the very values of
// sklearn's centred copy, so the caller's X is never copied), a label is the argmin of the squared
// distances to the centres (first minimum wins), centres are the means of their points, empty
// clusters take the farthest points (labels untouched, as sklearn), strict convergence when no
// label changed, else tol on the summed squared centre shifts, and a final assignment when the
// loop ended without strict convergence.
//
// Which argmin: that of the exact distances to the float centres. The distances come from a float
// kernel with a proven error bound E (kmeans_dots() in kmeans_dist.c); when another centre is
// within 2E of the best, the contenders are recomputed in double. sklearn's float32 GEMM picks the
// same centre except at ties within its own rounding.
//
// Speed: Hamerly and Elkan bounds. Each point keeps an upper bound on the distance to its centre,
// one lower bound for all other centres and one per centre (E folded in), moved by the centre
// shifts. A point's distances are computed only when the bounds cannot prove that its label
// stays. One parallel pass per iteration does everything for a row block: the bound test, the
// distances of the points that need them, labels, new bounds, and the change of the centre sums
// (double) caused by the label changes, so the data are read at most once per iteration.
//
// Determinism: row blocks depend on n only, never on the thread count; per-block sums are added in
// block order; each point's arithmetic is fixed. Results are bit-identical for any --threads.
#include "kmeans.h"
#include "kmeans_dist.h"
#include "kmeans_race.h"
#include <omp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KM_CHUNK 256      // rows per distance batch
#define KM_RACE_ROWS 16384   // rows per block of a k-means++ race: one block up to this n
// Lower bounds are stored as float: scaling by 1 - 2^-22 first makes the rounding go down.
#define KM_DOWN (1.0 - 0x1.0p-22)

void kmeans_params_default(kmeans_params *p) {
    memset(p, 0, sizeof *p);
    p->k = 8;
    p->n_init = 1;
    p->max_iter = 300;
    p->tol = 1e-4;
    p->seed = 0;
}

void kmeans_result_free(kmeans_result *r) {
    if (!r) return;
    free(r->centers);
    free(r->labels);
    r->centers = NULL;
    r->labels = NULL;
}

// ---- scratch ownership ------------------------------------------------------------------------
// Every scratch array of a fit (or of one k-means++ run) is taken from an owner that remembers
// it, so that one call frees them all, on success and on every error path alike.
enum { OWN_MALLOC, OWN_ZERO, OWN_ALIGN64 };   // OWN_ALIGN64: a cache-line boundary (the kernel's
                                               // scratch rows are whole lines)
typedef struct km_owner {
    void *blk[32];
    int n, failed;        // failed: an allocation failed (e is set); later ones return NULL
} km_owner;

static void *own(km_owner *ow, err *e, size_t bytes, int how, const char *what) {
    void *p = NULL;
    if (ow->failed) return NULL;
    if (ow->n == (int)(sizeof ow->blk / sizeof ow->blk[0])) {
        err_set(e, OODSEG_E_INTERNAL, "k-means: more scratch arrays than the owner holds (%s)", what);
    } else if (how == OWN_ALIGN64) {
        if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) p = NULL;
        if (!p) err_set(e, OODSEG_E_NOMEM, "out of memory: %s (%zu bytes)", what, bytes);
    } else {
        p = how == OWN_ZERO ? err_calloc(e, bytes ? bytes : 1, 1, what) : err_malloc(e, bytes ? bytes : 1, what);
    }
    if (!p) { ow->failed = 1; return NULL; }
    ow->blk[ow->n++] = p;
    return p;
}

static void own_free(km_owner *ow) {
    for (int i = 0; i < ow->n; i++) free(ow->blk[i]);
    ow->n = 0;
    ow->failed = 0;
}

// ---- RNG: xoshiro256** seeded by splitmix64 -------------------------------------------------
typedef struct { uint64_t s[4]; } km_rng;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static void rng_seed(km_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}
static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static uint64_t rng_next(km_rng *r) {
    uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45);
    return res;
}
static int64_t rng_below(km_rng *r, int64_t n) {   // unbiased, n >= 1
    uint64_t lim = UINT64_MAX - UINT64_MAX % (uint64_t)n, v;
    do v = rng_next(r); while (v >= lim);
    return (int64_t)(v % (uint64_t)n);
}

// ---- vectors for the bound tests ------------------------------------------------------------
typedef double v8d __attribute__((vector_size(64)));
typedef long long v8l __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));
#define IDX8 ((v8l){0, 1, 2, 3, 4, 5, 6, 7})
// (macros: functions taking or returning these would change the ABI between the clones)
#define VSEL(m, a, b) ((v8d)(((v8l)(a) & (m)) | ((v8l)(b) & ~(m))))   // m ? a : b
#define VMIN(a, b) VSEL((a) < (b), a, b)
#define HMIN8(v, out) do {                                                   \
    v8d h_ = (v);                                                            \
    h_ = VMIN(h_, __builtin_shuffle(h_, (v8l){4, 5, 6, 7, 0, 1, 2, 3}));     \
    h_ = VMIN(h_, __builtin_shuffle(h_, (v8l){2, 3, 0, 1, 6, 7, 4, 5}));     \
    h_ = VMIN(h_, __builtin_shuffle(h_, (v8l){1, 0, 3, 2, 5, 4, 7, 6}));     \
    (out) = h_[0];                                                           \
} while (0)

// ---- workspace ------------------------------------------------------------------------------
typedef struct km {
    const float *X;       // (n, d) the caller's data, centred on the fly
    const float *mean;    // (d) float column means
    int64_t n;
    int d, k, exact;
    int nthr;             // the context's thread count: the team size and per-thread buffers
    double *xn;           // (n) |x - mean|^2, filled by the first pass over the data (have_xn)
    double xnsum;         // sum of xn
    int have_xn;
    double ecoef;         // E = ecoef * (|x|^2 + max |c|^2): error bound of a kernel distance
    float *C, *Cn;        // (k, d) current / next centres (centred)
    float *Cp;            // (kmeans_pack_floats(k, d)) C packed for kmeans_dots()
    float *Ct;            // (d, kp rounded up to 16) C transposed, zero-padded (centres_changed())
    double *gq;           // (kp rounded up to 16) centres_changed()'s sums
    double *cn;           // (kp) |c|^2 rounded to float (E covers that rounding), zero-padded
    double cmax2;         // max |c|^2
    double *S, *cnt;      // (k, d) centre sums, (k) counts, in double; they follow the labels
    int32_t *labels;      // (n), -1 before the first pass
    // Bounds, stored against the centres' cumulative shifts so that only recomputed points are
    // written: with cum[j] the path length centre j has moved so far and cummax the sum of the
    // per-iteration largest shifts,
    //   distance to own centre a    <= ub[i] + cum[a]
    //   distance to centre j        >= lb[i, j] - cum[j]       (Elkan)
    //   distance to any other centre >= lm[i] - cummax         (Hamerly)
    double *ub, *lm;      // (n)
    float *lb;            // (n, kp), rounded down; the padding lanes hold +inf
    int kp;               // k rounded up to 8: the bound tests run on 8 doubles at a time
    double *cum, cummax;  // (kp), zero-padded
    double *cc;           // (k, kp) half the centre-centre distances, rounded down; cc[a, a] =
                          // +inf (centre a never competes with itself), padding 0
    double *hs;           // (k) min over j != a of cc[a, j]
    float *tbuf;          // per thread: (KM_CHUNK, max(kp, T)) distances, then kmeans_dots() scratch
    size_t tstride, toff; // floats per thread in tbuf; offset of the scratch
    double *ddbuf;        // per thread: (kp) squared distances of one point
    int64_t big, nbig;    // row blocks (a multiple of KM_CHUNK rows, at most 64 blocks)
    int chunk;            // rows per distance batch: at most KM_CHUNK, and about 256 KB of rows,
                          // so that a batch is still in L2 when it is labelled and summed
    double *part;         // (nbig, k, d) per-block sum changes, then (nbig, k) count changes
    uint8_t *touched;     // (nbig, k) 1: that block changed that cluster's sum
    float *meanf;         // (d) the column means, written once (mean is the same array)
    double *shift;        // (k) the centre shifts of one iteration
    double *ipart;        // (chunks) inertia partial sums
    km_owner own;         // owns every array above except X (the caller's)
} km;

// Where the kernel is to write the norms of the r rows from s on, which it computes (all, in
// order) on the first pass over the data: xn + s then, NULL after xn_done(). Should a first pass
// ever leave rows out, their norms are computed here.
static double *first_norms(km *w, int64_t s, int r, int nr) {
    if (w->have_xn) return NULL;
    if (nr == r) return w->xn + s;
    for (int i = 0; i < r; i++) w->xn[s + i] = kmeans_row_norm2(w->X + (s + i) * w->d, w->mean, w->d);
    return NULL;
}

static void xn_done(km *w) {
    if (w->have_xn) return;
    w->xnsum = 0;
    for (int64_t i = 0; i < w->n; i++) w->xnsum += w->xn[i];
    w->have_xn = 1;
}

static float *thread_buf(km *w, int t) { return w->tbuf + (size_t)t * w->tstride; }
static float *thread_scratch(km *w, int t) { return thread_buf(w, t) + w->toff; }

static inline void row_add(double *S, const float *x, const float *mean, int d) {
    #pragma omp simd
    for (int c = 0; c < d; c++) S[c] += (double)(x[c] - mean[c]);
}

// A point moves from cluster sums From to To.
static inline void row_move(double *From, double *To, const float *x, const float *mean, int d) {
    #pragma omp simd
    for (int c = 0; c < d; c++) {
        double v = (double)(x[c] - mean[c]);
        From[c] -= v;
        To[c] += v;
    }
}

// Hamerly's test for the points s..s+r-1, vectorised across points: keep[i] = 1 when one
// lower bound for all other centres (or half the distance to the nearest other centre) proves
// that point s + i keeps its label. Points without a label (-1) fail.
static inline __attribute__((always_inline)) void hamerly(km *w, int64_t s, int r, uint8_t *keep) {
    const int32_t *lab = w->labels + s;
    const double *ub = w->ub + s, *lm = w->lm + s, *cum = w->cum, *hs = w->hs, cummax = w->cummax;
    #pragma omp simd
    for (int i = 0; i < r; i++) {
        int a = lab[i] < 0 ? 0 : lab[i];
        double u = ub[i] + cum[a], L = lm[i] - cummax, h = hs[a];
        L = L < h ? h : L;
        keep[i] = lab[i] >= 0 && L > u;
    }
}

// Elkan's test for point p with label a, after Hamerly's failed: j cannot win when
// u < max(l_j, |c_a - c_j| / 2). When it passes, the Hamerly bound is tightened for the next
// iteration.
static inline __attribute__((always_inline)) int keeps_label(km *w, int64_t p, int a) {
    const double u = w->ub[p] + w->cum[a];
    const float *lp = w->lb + p * w->kp;
    const double *cca = w->cc + (size_t)a * w->kp, *cum = w->cum;
    const v8d uv = (v8d){0} + u, inf = (v8d){0} + INFINITY;
    v8l fail = {0};
    v8d lmin = inf;
    for (int j0 = 0; j0 < w->kp; j0 += 8) {
        v8f lf;
        v8d cv, ccv;
        memcpy(&lf, lp + j0, sizeof lf);
        memcpy(&cv, cum + j0, sizeof cv);
        memcpy(&ccv, cca + j0, sizeof ccv);
        v8d l = __builtin_convertvector(lf, v8d) - cv;
        fail |= ~(VSEL(l > ccv, l, ccv) > uv);   // max(l_j, cc_aj) > u, else j may win
        lmin = VMIN(lmin, VSEL(j0 + IDX8 == a, inf, l));
    }
    double anyfail, lmn;
    HMIN8(VSEL(fail, (v8d){0} - 1.0, (v8d){0}), anyfail);
    if (anyfail < 0) return 0;
    HMIN8(lmin, lmn);
    double nl = (lmn + w->cummax) * KM_DOWN;
    if (nl > w->lm[p]) w->lm[p] = nl;
    return 1;
}

// Label and fresh bounds of point p from its kernel dot products Dp (kp; lanes from k on are
// ignored); dd: (kp) scratch. The label is the first minimum, as in sklearn.
static inline __attribute__((always_inline)) int label_point(km *w, int64_t p, const float *Dp, double *dd) {
    const int k = w->k, kp = w->kp;
    const double xnp = w->xn[p], E = w->ecoef * (xnp + w->cmax2), *cum = w->cum;
    const v8d inf = (v8d){0} + INFINITY;
    v8d mn = inf;
    for (int j0 = 0; j0 < kp; j0 += 8) {
        v8f df;
        v8d cv;
        memcpy(&df, Dp + j0, sizeof df);
        memcpy(&cv, w->cn + j0, sizeof cv);
        v8d v = xnp + cv - 2.0 * __builtin_convertvector(df, v8d);
        v = VSEL(j0 + IDX8 < k, v, inf);
        memcpy(dd + j0, &v, sizeof v);
        mn = VMIN(mn, v);
    }
    // The first and the last lane holding the minimum, and the least value above it: the nearest
    // other centre is the minimum again when those lanes differ. (Three independent reductions,
    // not a chain.)
    double bv, first, mlast, above;
    HMIN8(mn, bv);
    v8d fv = inf, lv = inf, av = inf;
    for (int j0 = 0; j0 < kp; j0 += 8) {
        v8d v, jv = __builtin_convertvector(j0 + IDX8, v8d);
        memcpy(&v, dd + j0, sizeof v);
        v8l eq = v == bv;
        fv = VMIN(fv, VSEL(eq, jv, inf));
        lv = VMIN(lv, VSEL(eq, -jv, inf));
        av = VMIN(av, VSEL(eq, inf, v));
    }
    HMIN8(fv, first);
    HMIN8(lv, mlast);
    HMIN8(av, above);
    int best = (int)first;
    double sec = first != -mlast ? bv : above;
    const double lim = bv + 2 * E;
    double dbest = bv;
    if (sec <= lim) {   // contenders within the kernel's error: decide in double
        const float *x = w->X + p * w->d;
        double be = INFINITY;
        for (int j = 0; j < k; j++) {
            if (dd[j] > lim) continue;
            double ex = kmeans_dist2(x, w->mean, w->C + (size_t)j * w->d, w->d);
            if (ex < be) { be = ex; best = j; }
        }
        sec = INFINITY;   // the referee may have moved best
        for (int j = 0; j < k; j++) if (j != best && dd[j] < sec) sec = dd[j];
        dbest = dd[best];
    }
    w->ub[p] = sqrt(dbest + E) - cum[best];
    float *lp = w->lb + p * kp;
    #pragma omp simd
    for (int j = 0; j < k; j++) {   // (the padding lanes keep their +inf)
        double q = dd[j] - E;
        q = sqrt(q > 0 ? q : 0);
        lp[j] = (float)((q + cum[j]) * KM_DOWN);
    }
    sec -= E;   // as a lower bound (sqrt is monotone: the min over j != best of the q above)
    w->lm[p] = (sqrt(sec > 0 ? sec : 0) + w->cummax) * KM_DOWN;
    return best;
}

enum { PASS_NONE = -1, PASS_BOUNDED = 0, PASS_ALL = 1 };

// The points of chunk s..s+r-1 whose bounds fail (all for PASS_ALL): their offsets in ids, their
// rows in xr. Returns their number.
static inline __attribute__((always_inline)) int chunk_list(km *w, int64_t s, int r, int which,
                                                             int32_t *ids, const float **xr) {
    if (which == PASS_NONE) return 0;
    uint8_t keep[KM_CHUNK];
    if (which == PASS_BOUNDED) hamerly(w, s, r, keep);
    else memset(keep, 0, sizeof keep);
    int nr = 0;
    for (int i = 0; i < r; i++) {
        if (keep[i]) continue;
        int a = w->labels[s + i];
        if (which == PASS_ALL || a < 0 || !keeps_label(w, s + i, a)) {
            ids[nr] = i;
            xr[nr++] = w->X + (s + i) * w->d;
        }
    }
    return nr;
}

// assign() for one row block, chunk by chunk: bound tests, distances of the points that need
// them, labels, bounds, and the block's change of the centre sums. Returns the number of changed
// labels.
NN_TARGET_CLONES
static int64_t assign_block(km *w, int64_t bl, int which, int fresh) {
    const int d = w->d, k = w->k, t = omp_get_thread_num();
    float *D = thread_buf(w, t);                  // (KM_CHUNK, kp)
    double *dd = w->ddbuf + (size_t)t * w->kp;
    double *P = w->part + (size_t)bl * k * d, *pc = w->part + (size_t)w->nbig * k * d + (size_t)bl * k;
    uint8_t *tch = w->touched + (size_t)bl * k;
    int64_t changed = 0, b0 = bl * w->big, b1 = b0 + w->big < w->n ? b0 + w->big : w->n;
    int32_t ids[KM_CHUNK];
    const float *xr[KM_CHUNK];
    const int ch = w->chunk;
    for (int64_t s = b0; s < b1; s += ch) {
        const int r = (int)(s + ch < b1 ? ch : b1 - s);
        const int nr = chunk_list(w, s, r, which, ids, xr);
        double *nrm = first_norms(w, s, r, nr);
        if (nr) kmeans_dots(xr, nr, w->mean, w->Cp, k, d, thread_scratch(w, t), D, w->kp, nrm);
        const int fresh_here = fresh && nr == r;   // every row is in the list: summed while hot
        for (int q = 0; q < nr; q++) {
            int64_t p = s + ids[q];
            int old = w->labels[p], lab = label_point(w, p, D + (size_t)q * w->kp, dd);
            if (fresh_here) { row_add(P + (size_t)lab * d, xr[q], w->mean, d); pc[lab] += 1; tch[lab] = 1; }
            if (lab == old) continue;
            w->labels[p] = lab;
            changed++;
            if (fresh) continue;
            if (old >= 0) { row_move(P + (size_t)old * d, P + (size_t)lab * d, xr[q], w->mean, d); pc[old] -= 1; tch[old] = 1; }
            else row_add(P + (size_t)lab * d, xr[q], w->mean, d);
            pc[lab] += 1;
            tch[lab] = 1;
        }
        if (fresh && !fresh_here)
            for (int i = 0; i < r; i++) {
                int lab = w->labels[s + i];
                row_add(P + (size_t)lab * d, w->X + (s + i) * d, w->mean, d);
                pc[lab] += 1;
                tch[lab] = 1;
            }
    }
    return changed;
}

// One assignment pass. which: PASS_ALL computes every point's distances, PASS_BOUNDED those
// whose bounds fail, PASS_NONE none (labels kept). fresh: the sums are rebuilt from all labels
// (first pass, after a relocation); else they change by the label changes. Returns the number of
// changed labels.
static int64_t assign(km *w, int which, int fresh) {
    const int d = w->d, k = w->k;
    double *pcnt = w->part + (size_t)w->nbig * k * d;   // (nbig, k)
    int64_t changed = 0;
    #pragma omp parallel for schedule(dynamic, 1) num_threads(w->nthr) reduction(+:changed) \
        if (w->nbig > 1 && w->n * (int64_t)d * k > (1 << 18))
    for (int64_t bl = 0; bl < w->nbig; bl++) changed += assign_block(w, bl, which, fresh);
    // S (and cnt) += the block changes in block order, or = their sum when fresh; the touched
    // parts are zeroed again for the next pass
    #pragma omp parallel for schedule(static) num_threads(w->nthr) if (w->nbig * (int64_t)k * d > (1 << 16))
    for (int j = 0; j < k; j++) {
        double *Sj = w->S + (size_t)j * d;
        if (fresh) { memset(Sj, 0, sizeof(double) * d); w->cnt[j] = 0; }
        for (int64_t bl = 0; bl < w->nbig; bl++) {
            uint8_t *t = w->touched + (size_t)bl * k + j;
            if (!*t) continue;
            double *Pj = w->part + ((size_t)bl * k + j) * d, *pc = pcnt + (size_t)bl * k + j;
            for (int c = 0; c < d; c++) Sj[c] += Pj[c];
            w->cnt[j] += *pc;
            memset(Pj, 0, sizeof(double) * d);
            *pc = 0;
            *t = 0;
        }
    }
    return changed;
}

// After the centres changed: their packed copy, |c|^2 (cn, cmax2), half the centre-centre
// distances rounded down (cc) and per centre the smallest of them (hs). Each sum runs over the
// columns in order, as one scalar loop per centre and per pair would, but across the centres at
// once from the transposed copy Ct (d, kp): k^2 / 2 chains of d dependent adds were a tenth of a
// fit at D = 896.
NN_TARGET_CLONES
static void centres_changed(km *w) {
    const int k = w->k, d = w->d, kp = w->kp, ldt = (kp + 15) & ~15;
    const float *C = w->C;
    float *Ct = w->Ct;
    double *q = w->gq;
    kmeans_pack(C, d, k, d, w->Cp);
    for (int j = 0; j < k; j++)
        for (int c = 0; c < d; c++) Ct[(size_t)c * ldt + j] = C[(size_t)j * d + c];   // padding lanes stay 0
    for (int j = 0; j < kp; j++) q[j] = 0;
    for (int c = 0; c < d; c++) {
        const float *r = Ct + (size_t)c * ldt;
        #pragma omp simd
        for (int j = 0; j < kp; j++) q[j] += (double)r[j] * r[j];
    }
    w->cmax2 = 0;
    for (int j = 0; j < k; j++) {
        w->cn[j] = (float)q[j];
        if (q[j] > w->cmax2) w->cmax2 = q[j];
    }
    for (int a = 0; a < k; a++) {
        // 16 pairs at a time in registers (through memory, each add would wait on a store)
        for (int j0 = (a + 1) & ~15; j0 < kp; j0 += 16) {
            v8d acc0 = {0}, acc1 = {0};
            for (int c = 0; c < d; c++) {
                const float *r = Ct + (size_t)c * ldt + j0;
                const v8d ca = (v8d){0} + (double)Ct[(size_t)c * ldt + a];
                v8f f0, f1;
                memcpy(&f0, r, sizeof f0);
                memcpy(&f1, r + 8, sizeof f1);
                v8d v0 = ca - __builtin_convertvector(f0, v8d), v1 = ca - __builtin_convertvector(f1, v8d);
                acc0 += v0 * v0;
                acc1 += v1 * v1;
            }
            memcpy(q + j0, &acc0, sizeof acc0);
            memcpy(q + j0 + 8, &acc1, sizeof acc1);
        }
        w->cc[(size_t)a * kp + a] = INFINITY;
        for (int b = a + 1; b < k; b++)
            w->cc[(size_t)a * kp + b] = w->cc[(size_t)b * kp + a] = 0.5 * sqrt(q[b]) * KM_DOWN;
    }
    for (int a = 0; a < k; a++) {
        w->hs[a] = INFINITY;
        for (int j = 0; j < k; j++) if (j != a && w->cc[(size_t)a * kp + j] < w->hs[a]) w->hs[a] = w->cc[(size_t)a * kp + j];
    }
}

// sklearn's _relocate_empty_clusters_dense: each empty cluster takes one of the points farthest
// from their (old) centres, farthest first; the labels are not changed.
static int relocate_empty(km *w, err *e) {
    const int d = w->d, k = w->k;
    int n_empty = 0;
    for (int j = 0; j < k; j++) n_empty += w->cnt[j] == 0;
    if (!n_empty) return 0;
    km_owner ow = {0};
    double *dist = own(&ow, e, sizeof(double) * w->n, OWN_MALLOC, "k-means relocation distances");
    int64_t *far = own(&ow, e, sizeof(int64_t) * n_empty, OWN_MALLOC, "k-means relocation indices");
    if (ow.failed) { own_free(&ow); return -1; }
    #pragma omp parallel for schedule(static) num_threads(w->nthr)
    for (int64_t i = 0; i < w->n; i++)
        dist[i] = kmeans_dist2(w->X + i * d, w->mean, w->C + (size_t)w->labels[i] * d, d);
    // n_empty largest, descending, ties to the lower index (n_empty <= k: selection by rescans)
    for (int t = 0; t < n_empty; t++) {
        int64_t bi = -1;
        for (int64_t i = 0; i < w->n; i++) {
            if (dist[i] < 0) continue;
            if (bi < 0 || dist[i] > dist[bi]) bi = i;
        }
        far[t] = bi;
        dist[bi] = -1;
    }
    int t = 0;
    for (int j = 0; j < k; j++) {
        if (w->cnt[j] != 0) continue;
        int64_t p = far[t++];
        int old = w->labels[p];
        const float *x = w->X + p * d;
        for (int q = 0; q < d; q++) {
            double v = (double)(x[q] - w->mean[q]);
            w->S[(size_t)old * d + q] -= v;
            w->S[(size_t)j * d + q] = v;
        }
        w->cnt[j] = 1;
        w->cnt[old] -= 1;
    }
    own_free(&ow);
    return 1;
}

// Inertia in double, point by point; per-chunk partial sums added in chunk order.
static double inertia_direct(const km *w, double *part) {
    const int d = w->d;
    const int64_t nch = (w->n + KM_CHUNK - 1) / KM_CHUNK;
    #pragma omp parallel for schedule(static) num_threads(w->nthr)
    for (int64_t ch = 0; ch < nch; ch++) {
        int64_t s = ch * KM_CHUNK, e = s + KM_CHUNK < w->n ? s + KM_CHUNK : w->n;
        double acc = 0;
        for (int64_t i = s; i < e; i++)
            acc += kmeans_dist2(w->X + i * d, w->mean, w->C + (size_t)w->labels[i] * d, d);
        part[ch] = acc;
    }
    double tot = 0;
    for (int64_t ch = 0; ch < nch; ch++) tot += part[ch];
    return tot;
}

// Inertia from the sums (S, cnt follow the labels): sum |x|^2 - 2 sum_j c_j.S_j + sum_j n_j |c_j|^2,
// all in double; a pass over the data only when the clusters are so tight against the spread
// that the difference would lose digits.
static double inertia(const km *w, double *part) {
    const int d = w->d;
    double t = w->xnsum;
    for (int j = 0; j < w->k; j++) {
        double cs = 0, cc = 0;
        for (int c = 0; c < d; c++) {
            double cv = w->C[(size_t)j * d + c];
            cs += cv * w->S[(size_t)j * d + c];
            cc += cv * cv;
        }
        t += -2.0 * cs + w->cnt[j] * cc;
    }
    if (t < 1e-7 * w->xnsum) return inertia_direct(w, part);
    return t;
}

// One Lloyd run from the centres in w->C. Returns the iteration count, or -1 (e set).
static int lloyd(km *w, int max_iter, double tol, double *shift, err *e) {
    const int d = w->d, k = w->k;
    int strict = 0, it = 0, dirty = 1;
    for (int j = 0; j < k; j++) shift[j] = w->cum[j] = 0;
    w->cummax = 0;
    centres_changed(w);
    for (int64_t i = 0; i < w->n; i++) w->labels[i] = -1;
    for (it = 0; it < max_iter; it++) {
        int64_t changed = assign(w, it == 0 || w->exact ? PASS_ALL : PASS_BOUNDED, dirty);
        xn_done(w);
        dirty = 0;
        int rel = relocate_empty(w, e);
        if (rel < 0) return -1;
        if (rel) dirty = 1;   // S no longer follows the labels (sklearn keeps them)
        double tot = 0;
        for (int j = 0; j < k; j++) {
            double inv = w->cnt[j] > 0 ? 1.0 / w->cnt[j] : 1.0, q = 0;
            for (int c = 0; c < d; c++) {
                float v = (float)(w->S[(size_t)j * d + c] * inv);
                double t = (double)v - w->C[(size_t)j * d + c];
                q += t * t;
                w->Cn[(size_t)j * d + c] = v;
            }
            shift[j] = sqrt(q);
            tot += q;
        }
        double pmax = 0;
        for (int j = 0; j < k; j++) {
            w->cum[j] += shift[j] / KM_DOWN;   // rounded up: the bounds stay bounds
            if (shift[j] > pmax) pmax = shift[j];
        }
        w->cummax += pmax / KM_DOWN;
        float *t = w->C; w->C = w->Cn; w->Cn = t;
        centres_changed(w);
        if (it > 0 && changed == 0) { strict = 1; break; }
        if (tot <= tol) break;
    }
    if (it == max_iter) it--;
    if (!strict) assign(w, w->exact ? PASS_ALL : PASS_BOUNDED, dirty);   // labels match the centres
    else if (dirty) assign(w, PASS_NONE, 1);   // only the sums, for the inertia
    return it + 1;
}

// k-means++ candidates per step: sklearn's 2 + floor(ln k), at most 23 for an int k.
#define KM_TRIALS_MAX 24
static int pp_trials(int k) { return 2 + (int)floor(log((double)k)); }

// Runs whose k-means++ share passes over the data: their candidates fill one kernel call.
static int pp_batch(int k, int n_init) {
    if (pp_trials(k) > KMEANS_PAIR_MAX) return 1;   // their kernel depends on the other candidates
    int b = KMEANS_PAIR_MAX;
    return n_init < b ? (n_init < 1 ? 1 : n_init) : b;
}

// The generator as one k-means++ run leaves it: the number of draws does not depend on the data.
static void pp_skip(km_rng *r, int64_t n, int k, int T) {
    (void)rng_below(r, n);
    for (int64_t i = 0; i < (int64_t)(k - 1) * T; i++) (void)rng_next(r);
}

// The next T candidates: D^2 sampling on closest (n), one exponential race (kmeans_race.c) per
// candidate, a draw of the generator each. Row blocks race on their own and merge in block order
// (the least key, the earlier block on a tie): the same winner for any thread count. No weight
// above zero (every point on a centre): row 0, as a searchsorted of 0 would give.
static void pp_sample(const km *w, const double *closest, double pot, int T, km_rng *rng, float *bkey,
                      int64_t *bat, int64_t *cid) {
    const int64_t n = w->n, nb = (n + KM_RACE_ROWS - 1) / KM_RACE_ROWS;
    uint64_t r[KM_TRIALS_MAX];
    for (int t = 0; t < T; t++) r[t] = rng_next(rng);
    #pragma omp parallel for schedule(static) num_threads(w->nthr) if (nb > 1)
    for (int64_t b = 0; b < nb; b++) {
        int64_t s = b * KM_RACE_ROWS, e = s + KM_RACE_ROWS < n ? s + KM_RACE_ROWS : n;
        for (int t = 0; t < T; t++) bat[b * T + t] = kmeans_race(closest, s, e, 1 / pot, r[t], bkey + b * T + t);
    }
    for (int t = 0; t < T; t++) {
        float best = INFINITY;
        int64_t at = -1;
        for (int64_t b = 0; b < nb; b++)
            if (bat[b * T + t] >= 0 && bkey[b * T + t] < best) { best = bkey[b * T + t]; at = bat[b * T + t]; }
        cid[t] = at >= 0 ? at : 0;
    }
}

// sklearn's _kmeans_plusplus (greedy, pp_trials(k) candidates) on the centred data; D^2 from
// the dot products, potentials in double summed in chunk order. B runs side by side: run b draws
// where run b - 1 would have left the generator, and each pass over the data serves the
// candidates of all B runs (the pass was bound by reading the data, not by the arithmetic).
// Every run's numbers are those of the run alone: the pair kernel's dot product of a row and a
// candidate does not depend on the other candidates. centres: (B, k, d); *rng is left where B
// runs one after another leave it.
static int kmeanspp(km *w, km_rng *rng, int B, float *centres, err *e) {
    const int d = w->d, k = w->k;
    const int64_t n = w->n, nch = (n + KM_CHUNK - 1) / KM_CHUNK;
    const int T = pp_trials(k), TB = T * B, pairs = T <= KMEANS_PAIR_MAX;
    km_owner ow = {0};
    double *closest = own(&ow, e, sizeof(double) * n * B, OWN_MALLOC, "k-means++ distances");   // (B, n)
    const int64_t nrb = (n + KM_RACE_ROWS - 1) / KM_RACE_ROWS;
    float *bkey = own(&ow, e, sizeof(float) * nrb * T, OWN_MALLOC, "k-means++ race keys");     // (nrb, T)
    int64_t *bat = own(&ow, e, sizeof(int64_t) * nrb * T, OWN_MALLOC, "k-means++ race winners"); // (nrb, T)
    double *cd = own(&ow, e, sizeof(double) * n * TB, OWN_MALLOC, "k-means++ candidate distances"); // (B, T, n)
    float *cand = own(&ow, e, sizeof(float) * TB * d, OWN_MALLOC, "k-means++ candidates"); // (B nc, d)
    float *candp = own(&ow, e, sizeof(float) * (pairs ? kmeans_pack_pairs_floats(TB, d) : kmeans_pack_floats(T, d)),
                       OWN_ALIGN64, "k-means++ candidates");
    double *candn = own(&ow, e, sizeof(double) * TB, OWN_MALLOC, "k-means++ candidate norms");
    double *ppart = own(&ow, e, sizeof(double) * nch * TB, OWN_MALLOC, "k-means++ partial sums"); // (nch, B, T)
    int64_t *cid = own(&ow, e, sizeof(int64_t) * TB, OWN_MALLOC, "k-means++ candidate ids");     // (B, T)
    km_rng rngs[KMEANS_PAIR_MAX];
    int rc = -1;
    if (ow.failed) goto done;
    for (int b = 0; b < B; b++) {
        rngs[b] = b == 0 ? *rng : rngs[b - 1];
        if (b > 0) pp_skip(&rngs[b], n, k, T);
    }
    for (int b = 0; b < B; b++) cid[b * T] = rng_below(&rngs[b], n);
    int nc = 1;   // candidates per run in this step; run b's are rows b nc .. b nc + nc - 1 of cand
    for (int c = 0; c < k; c++) {
        const int m = B * nc;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < nc; t++) {
                const float *x = w->X + cid[b * T + t] * d;
                float *cv = cand + (size_t)(b * nc + t) * d;
                for (int q = 0; q < d; q++) cv[q] = x[q] - w->mean[q];
                candn[b * nc + t] = c == 0 ? kmeans_row_norm2(x, w->mean, d) : w->xn[cid[b * T + t]];
            }
        if (pairs) kmeans_pack_pairs(cand, d, m, d, candp);
        else kmeans_pack(cand, d, m, d, candp);
        #pragma omp parallel for schedule(static) num_threads(w->nthr) if (nch > 1)
        for (int64_t ch = 0; ch < nch; ch++) {
            float *D = thread_buf(w, omp_get_thread_num());   // (rows, m): tstride >= KM_CHUNK * TB
            int64_t s = ch * KM_CHUNK, e2 = s + KM_CHUNK < n ? s + KM_CHUNK : n;
            int r = (int)(e2 - s);
            const float *xr[KM_CHUNK];
            for (int i = 0; i < r; i++) xr[i] = w->X + (s + i) * d;
            float *scr = thread_scratch(w, omp_get_thread_num());
            if (pairs) kmeans_dots_pairs(xr, r, w->mean, candp, m, d, scr, D, m, first_norms(w, s, r, r));
            else kmeans_dots(xr, r, w->mean, candp, m, d, scr, D, m, first_norms(w, s, r, r));
            double acc[KM_TRIALS_MAX] = {0};   // (B, nc): B > 1 only when T <= KMEANS_PAIR_MAX, so TB <= 23
            for (int b = 0; b < B; b++) {
                const double *cl = closest + (size_t)b * n;
                for (int i = 0; i < r; i++)
                    for (int t = 0; t < nc; t++) {
                        double v = w->xn[s + i] + candn[b * nc + t] - 2.0 * D[(size_t)i * m + b * nc + t];
                        if (v < 0) v = 0;
                        if (c > 0 && cl[s + i] < v) v = cl[s + i];
                        cd[(size_t)(b * T + t) * n + s + i] = v;
                        acc[b * nc + t] += v;
                    }
            }
            for (int j = 0; j < m; j++) ppart[ch * TB + j] = acc[j];
        }
        xn_done(w);
        for (int b = 0; b < B; b++) {
            int best = 0;
            double bestpot = INFINITY;
            for (int t = 0; t < nc; t++) {
                double pot = 0;
                for (int64_t ch = 0; ch < nch; ch++) pot += ppart[ch * TB + b * nc + t];
                if (pot < bestpot) { bestpot = pot; best = t; }
            }
            double *cl = closest + (size_t)b * n;
            memcpy(centres + ((size_t)b * k + c) * d, cand + (size_t)(b * nc + best) * d, sizeof(float) * d);
            memcpy(cl, cd + (size_t)(b * T + best) * n, sizeof(double) * n);
            if (c + 1 < k) pp_sample(w, cl, bestpot, T, &rngs[b], bkey, bat, cid + b * T);
        }
        nc = T;
    }
    *rng = rngs[B - 1];   // after the last run's own draws (one run at a time: no skipping at all)
    rc = 0;
done:
    own_free(&ow);
    return rc;
}

// sklearn's _is_same_clustering: labels1 maps onto labels2 one-to-one.
static int same_clustering(const int32_t *a, const int32_t *b, int64_t n, int k) {
    int32_t map[256 + 1], *mp = k <= 256 ? map : malloc(sizeof(int32_t) * k);
    if (!mp) return 0;
    for (int j = 0; j < k; j++) mp[j] = -1;
    int same = 1;
    for (int64_t i = 0; i < n && same; i++) {
        if (mp[a[i]] == -1) mp[a[i]] = b[i];
        else if (mp[a[i]] != b[i]) same = 0;
    }
    if (mp != map) free(mp);
    return same;
}

// Column sums and sums of squares of rows s0..s1-1, added to P and Q (d), four rows per pass over
// P and Q: the loop then waits on the data, not on its own loads and stores.
NN_TARGET_CLONES
static void col_sums(const float *X, int64_t s0, int64_t s1, int d, double *P, double *Q) {
    int64_t i = s0;
    for (; i + 4 <= s1; i += 4) {
        const float *x = X + i * d;
        #pragma omp simd
        for (int c = 0; c < d; c++) {
            double a = x[c], b = x[d + c], e = x[2 * d + c], f = x[3 * d + c];
            P[c] += (a + b) + (e + f);
            Q[c] += (a * a + b * b) + (e * e + f * f);
        }
    }
    for (; i < s1; i++) {
        const float *x = X + i * d;
        #pragma omp simd
        for (int c = 0; c < d; c++) { P[c] += x[c]; Q[c] += (double)x[c] * x[c]; }
    }
}

static int check_args(const nn_ctx *ctx, int64_t n, int d, const kmeans_params *p, const float *init, err *e) {
    if (!ctx || ctx->threads < 1) return err_set(e, OODSEG_E_ARG, "k-means: no execution context (threads >= 1)");
    if (!p) return err_set(e, OODSEG_E_ARG, "k-means: no parameters");
    const int k = p->k;
    if (d < 1) return err_set(e, OODSEG_E_ARG, "k-means: feature dimension d = %d, must be >= 1", d);
    if (n < 1) return err_set(e, OODSEG_E_ARG, "k-means: no samples (n = %lld)", (long long)n);
    if (k < 1 || k > n)
        return err_set(e, OODSEG_E_ARG, "k-means: k = %d clusters for n = %lld samples; k must be in [1, n]",
                       k, (long long)n);
    if (p->max_iter < 1) return err_set(e, OODSEG_E_ARG, "k-means: max_iter = %d, must be >= 1", p->max_iter);
    if (!(p->tol >= 0)) return err_set(e, OODSEG_E_ARG, "k-means: tol = %g, must be >= 0", p->tol);
    if (init)
        for (int64_t i = 0; i < (int64_t)k * d; i++)
            if (!isfinite(init[i]))
                return err_set(e, OODSEG_E_ARG, "k-means: initial centre %lld, feature %lld is not finite",
                               (long long)(i / d), (long long)(i % d));
    return OODSEG_OK;
}

// The workspace of a fit: the sizes that depend on n, d, k (never on the thread count, except the
// per-thread buffers) and every array, from w->own.
static int km_init(km *w, const nn_ctx *ctx, const float *X, int64_t n, int d, const kmeans_params *p, err *e) {
    const int k = p->k;
    memset(w, 0, sizeof *w);
    w->X = X; w->n = n; w->d = d; w->k = k; w->exact = p->exact_lloyd;
    w->nthr = ctx->threads;
    // twice the kernel's bound (kmeans_dots_depth() roundings in a chain; this also covers the
    // rounding of |c|^2 to float)
    w->ecoef = (double)kmeans_dots_depth(k, d) * 0x1.0p-23;
    w->big = (n + 63) / 64;
    w->big = (w->big + KM_CHUNK - 1) / KM_CHUNK * KM_CHUNK;
    if (w->big < 512) w->big = 512;
    w->nbig = (n + w->big - 1) / w->big;
    w->chunk = (int)((256 << 10) / ((size_t)d * sizeof(float))) & ~7;
    if (w->chunk < 8) w->chunk = 8;
    if (w->chunk > KM_CHUNK) w->chunk = KM_CHUNK;
    const int64_t nch = (n + KM_CHUNK - 1) / KM_CHUNK;
    // k-means++: up to TB candidates per kernel call
    const int T = pp_trials(k), TB = T * (p->pp_one_by_one ? 1 : pp_batch(k, p->n_init));
    w->kp = (k + 7) & ~7;
    w->toff = ((size_t)KM_CHUNK * (w->kp > TB ? w->kp : TB) + 15) & ~(size_t)15;
    size_t scr = kmeans_dots_scratch(k), scr_pp = T <= KMEANS_PAIR_MAX ? kmeans_dots_pairs_scratch(TB) : kmeans_dots_scratch(T);
    w->tstride = w->toff + (((scr > scr_pp ? scr : scr_pp) + 15) & ~(size_t)15);
    km_owner *o = &w->own;
    w->xn = own(o, e, sizeof(double) * n, OWN_MALLOC, "k-means norms");
    w->meanf = own(o, e, sizeof(float) * d, OWN_MALLOC, "k-means means");
    w->C = own(o, e, sizeof(float) * k * d, OWN_MALLOC, "k-means centres");
    w->Cn = own(o, e, sizeof(float) * k * d, OWN_MALLOC, "k-means centres");
    w->cn = own(o, e, sizeof(double) * w->kp, OWN_ZERO, "k-means centre norms");
    w->S = own(o, e, sizeof(double) * k * d, OWN_MALLOC, "k-means sums");
    w->cnt = own(o, e, sizeof(double) * k, OWN_MALLOC, "k-means counts");
    w->labels = own(o, e, sizeof(int32_t) * n, OWN_MALLOC, "k-means labels");
    w->ub = own(o, e, sizeof(double) * n, OWN_MALLOC, "k-means bounds");
    w->lb = own(o, e, sizeof(float) * n * w->kp, OWN_MALLOC, "k-means bounds");
    w->lm = own(o, e, sizeof(double) * n, OWN_MALLOC, "k-means bounds");
    w->cum = own(o, e, sizeof(double) * w->kp, OWN_ZERO, "k-means shifts");
    w->hs = own(o, e, sizeof(double) * k, OWN_MALLOC, "k-means centre distances");
    w->cc = own(o, e, sizeof(double) * k * w->kp, OWN_ZERO, "k-means centre distances");
    w->touched = own(o, e, (size_t)w->nbig * k, OWN_ZERO, "k-means flags");
    w->ddbuf = own(o, e, sizeof(double) * w->kp * w->nthr, OWN_ALIGN64, "k-means thread buffers");
    w->tbuf = own(o, e, sizeof(float) * w->tstride * w->nthr, OWN_ALIGN64, "k-means thread buffers");
    w->Cp = own(o, e, sizeof(float) * kmeans_pack_floats(k, d), OWN_ALIGN64, "k-means centres");
    w->Ct = own(o, e, sizeof(float) * d * ((w->kp + 15) & ~15), OWN_ZERO, "k-means centres");
    w->gq = own(o, e, sizeof(double) * ((w->kp + 15) & ~15), OWN_MALLOC, "k-means centre sums");
    w->ipart = own(o, e, sizeof(double) * nch, OWN_MALLOC, "k-means partial sums");
    w->part = own(o, e, sizeof(double) * w->nbig * k * (d + 1), OWN_ZERO, "k-means partial sums");
    w->shift = own(o, e, sizeof(double) * k, OWN_MALLOC, "k-means shifts");
    if (o->failed) return e ? e->code : OODSEG_E_NOMEM;
    for (size_t i = 0; i < (size_t)n * w->kp; i++) w->lb[i] = INFINITY;
    w->mean = w->meanf;
    return OODSEG_OK;
}

// Column means (w->meanf) and the summed column variances, in double and in one pass: partial
// sums over big row blocks (fixed by n, not by the thread count) added in block order; also finds
// the first non-finite value. (The variance as E[x^2] - E[x]^2 only sets tol; it loses digits
// only when a column's mean is ~1e6 times its spread.)
static int column_stats(km *w, double *varsum, err *e) {
    const float *X = w->X;
    const int64_t n = w->n;
    const int d = w->d;
    km_owner ow = {0};
    double *P = own(&ow, e, sizeof(double) * w->nbig * d, OWN_ZERO, "k-means column sums");
    double *Q = own(&ow, e, sizeof(double) * w->nbig * d, OWN_ZERO, "k-means column sums");
    int64_t *bad = own(&ow, e, sizeof(int64_t) * w->nbig, OWN_MALLOC, "k-means checks");
    if (ow.failed) { own_free(&ow); return e ? e->code : OODSEG_E_NOMEM; }
    #pragma omp parallel for schedule(dynamic, 1) num_threads(w->nthr)
    for (int64_t b = 0; b < w->nbig; b++) {
        int64_t s0 = b * w->big, s1 = s0 + w->big < n ? s0 + w->big : n;
        double *Pb = P + (size_t)b * d, *Qb = Q + (size_t)b * d;
        bad[b] = -1;
        col_sums(X, s0, s1, d, Pb, Qb);
        double tot = 0;
        for (int c = 0; c < d; c++) tot += Qb[c];
        if (!isfinite(tot))
            for (int64_t i = s0; i < s1 && bad[b] < 0; i++)
                for (int c = 0; c < d; c++)
                    if (!isfinite(X[i * d + c])) { bad[b] = i * d + c; break; }
    }
    int rc = OODSEG_OK;
    for (int64_t b = 0; b < w->nbig && !rc; b++)
        if (bad[b] >= 0) {
            float v = X[bad[b]];
            rc = err_set(e, OODSEG_E_ARG, "k-means: sample %lld, feature %lld is %s; inputs must be finite",
                         (long long)(bad[b] / d), (long long)(bad[b] % d), isnan(v) ? "NaN" : "infinite");
        }
    *varsum = 0;
    for (int c = 0; c < d && !rc; c++) {
        double m1 = 0, m2 = 0;
        for (int64_t b = 0; b < w->nbig; b++) { m1 += P[(size_t)b * d + c]; m2 += Q[(size_t)b * d + c]; }
        double mean = m1 / (double)n;
        w->meanf[c] = (float)mean;
        double v = m2 / (double)n - mean * mean;
        *varsum += v > 0 ? v : 0;
    }
    own_free(&ow);
    return rc;
}

// n_init runs (one from init when given), the best by inertia kept in out; sklearn keeps a later
// run only when it is better and not the same clustering.
static int best_of_runs(km *w, const kmeans_params *p, const float *init, double tol, kmeans_result *out, err *e) {
    const int k = w->k, d = w->d;
    const int64_t n = w->n;
    float *best_c = err_malloc(e, sizeof(float) * k * d, "k-means centres");
    int32_t *best_l = err_malloc(e, sizeof(int32_t) * n, "k-means labels");
    if (!best_c || !best_l) { free(best_c); free(best_l); return OODSEG_E_NOMEM; }
    km_rng rng;
    rng_seed(&rng, p->seed);
    int n_init = init ? 1 : (p->n_init < 1 ? 1 : p->n_init), ppb = p->pp_one_by_one ? 1 : pp_batch(k, n_init);
    float *ppc = init ? NULL : err_malloc(e, sizeof(float) * ppb * k * d, "k-means++ centres");   // (ppb, k, d)
    if (!init && !ppc) { free(best_c); free(best_l); return OODSEG_E_NOMEM; }
    double best_in = 0;
    int best_it = 0, have = 0;
    for (int run = 0; run < n_init; run++) {
        if (init) {
            for (int64_t i = 0; i < (int64_t)k * d; i++) w->C[i] = init[i] - w->meanf[i % d];
        } else {
            if (run % ppb == 0) {
                const int nb = n_init - run < ppb ? n_init - run : ppb;
                if (kmeanspp(w, &rng, nb, ppc, e)) goto fail;
            }
            memcpy(w->C, ppc + (size_t)(run % ppb) * k * d, sizeof(float) * k * d);
        }
        int it = lloyd(w, p->max_iter, tol, w->shift, e);
        if (it < 0) goto fail;
        double in = inertia(w, w->ipart);
        if (!have || (in < best_in && !same_clustering(w->labels, best_l, n, k))) {
            have = 1;
            best_in = in;
            best_it = it;
            memcpy(best_c, w->C, sizeof(float) * k * d);
            memcpy(best_l, w->labels, sizeof(int32_t) * n);
        }
    }
    for (int64_t i = 0; i < (int64_t)k * d; i++) best_c[i] += w->meanf[i % d];
    *out = (kmeans_result){.k = k, .d = d, .centers = best_c, .labels = best_l, .inertia = best_in, .n_iter = best_it};
    free(ppc);
    return OODSEG_OK;
fail:
    free(ppc);
    free(best_c);
    free(best_l);
    return e ? e->code : OODSEG_E_NOMEM;
}

int kmeans_fit(const nn_ctx *ctx, const float *X, int64_t n, int d, const kmeans_params *p, const float *init,
               kmeans_result *out, err *e) {
    memset(out, 0, sizeof *out);
    int rc = check_args(ctx, n, d, p, init, e);
    if (rc) return rc;
    km w;
    double varsum = 0;
    if (!(rc = km_init(&w, ctx, X, n, d, p, e)) && !(rc = column_stats(&w, &varsum, e)))
        rc = best_of_runs(&w, p, init, p->tol * varsum / d, out, e);
    own_free(&w.own);
    return rc;
}
