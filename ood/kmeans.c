// K-Means with scikit-learn 1.2.1 semantics (KMeans(algorithm='lloyd')), see kmeans.h.
//
// Same trajectory as sklearn: the data are centred first (sklearn subtracts the column means for
// accuracy), the assignment step takes argmin_j (|c_j|^2 - 2 x.c_j) from an sgemm over chunks of
// 256 rows (first minimum wins), the update step averages, empty clusters take the farthest points
// (labels untouched, as sklearn), strict convergence when no label changed, else tol on the summed
// squared centre shifts, and a final assignment step when the loop ended without strict
// convergence.
//
// Speed: Elkan bounds. Each point keeps an upper bound on the distance to its centre and a lower
// bound on the distance to every other one, moved by the centre shifts. A point is recomputed (all K
// distances, batched into an sgemm) only when the bounds cannot prove that its label stays. The
// proof asks for a margin on the squared distances that covers float32 rounding of the GEMM
// formula, so a skipped point is one whose label sklearn's float32 argmin would also keep. The
// centre sums are kept in double and updated incrementally from the label changes, in point order.
//
// Determinism: chunk boundaries never depend on the thread count, per-chunk results are reduced
// in chunk order, sums run in point order in double: results are bit-identical for any --threads.
#include "kmeans.h"
#include "../nn/nn.h"
#include <cblas.h>
#include <omp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define KM_CHUNK 256      // rows per GEMM chunk (sklearn's CHUNK_SIZE)
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

// The centred copy of the data: on 2 MB boundaries with transparent huge pages asked for, as
// NumPy does for its large arrays; first touching it otherwise costs one page fault per 4 KB
// (about 12 % of a whole fit at N = 32768, D = 1280).
static float *alloc_data(err *e, size_t bytes) {
    if (bytes < ((size_t)4 << 20)) return err_malloc(e, bytes, "k-means centred data");
    void *p = NULL;
    if (posix_memalign(&p, (size_t)2 << 20, bytes) != 0 || !p) {
        err_set(e, OODSEG_E_NOMEM, "out of memory: k-means centred data (%zu bytes)", bytes);
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE);   // advice only: failure changes nothing
#endif
    return p;
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
static double rng_uniform(km_rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }
static int64_t rng_below(km_rng *r, int64_t n) {   // unbiased, n >= 1
    uint64_t lim = UINT64_MAX - UINT64_MAX % (uint64_t)n, v;
    do v = rng_next(r); while (v >= lim);
    return (int64_t)(v % (uint64_t)n);
}

// ---- workspace ------------------------------------------------------------------------------
typedef struct km {
    const float *X;       // (n, d) centred data
    int64_t n;
    int d, k, nthr, exact;
    const float *xn;      // (n) |x|^2
    double xnsum;         // sum of |x|^2 in double
    float *C, *Cn;        // (k, d) current / next centres
    float *cn;            // (k) |c|^2
    double *S, *cnt;      // (k, d) centre sums, (k) counts, in double
    int32_t *labels;      // (n)
    // Bounds, stored against the centres' cumulative shifts so that only recomputed points are
    // written: with cum[j] the path length centre j has moved so far and cummax the sum of the
    // per-iteration largest shifts,
    //   distance to own centre a    <= ub[i] + cum[a]
    //   distance to centre j        >= lb[i, j] - cum[j]       (Elkan)
    //   distance to any other centre >= lm[i] - cummax         (Hamerly)
    double *ub, *lm;      // (n)
    float *lb;            // (n, k), rounded down
    double *cum, cummax;  // (k)
    double *cc;           // (k, k) half the centre-centre distances; hs (k): min over j != a of cc[a, j]
    double *hs;
    uint8_t *need;        // (n) 1: recompute this point (on return from assign: recomputed)
    int32_t *oldlab;      // (n) label before the last recompute
    float *tbuf;          // per thread: (KM_CHUNK, d) gathered rows + (KM_CHUNK, max(k, T)) distances
    size_t tstride;       // floats per thread in tbuf
    int64_t big, nbig;    // row blocks of the reductions (a multiple of KM_CHUNK, at most 64 blocks)
    double *part;         // (nbig, k, d) partial centre sums; (nbig, k) partial counts after them
    double eps_rel;       // rounding allowance of the GEMM distance, relative to |x|^2 + max|c|^2
    double cmax2;
} km;

static float *thread_rows(km *w, int t) { return w->tbuf + (size_t)t * w->tstride; }

// Reduces the per-block partial sums into S and cnt, in block order.
static void sums_reduce(km *w) {
    const int d = w->d, k = w->k;
    const double *pc = w->part + (size_t)w->nbig * k * d;   // (nbig, k)
    memcpy(w->S, w->part, sizeof(double) * k * d);
    memcpy(w->cnt, pc, sizeof(double) * k);
    for (int64_t b = 1; b < w->nbig; b++) {
        const double *Pb = w->part + (size_t)b * k * d, *cb = pc + (size_t)b * k;
        for (size_t q = 0; q < (size_t)k * d; q++) w->S[q] += Pb[q];
        for (int j = 0; j < k; j++) w->cnt[j] += cb[j];
    }
}

// Assignment step. all: every point (acc: and the centre sums are rebuilt on the way: S, cnt
// fresh); else the m points with need[p] (a chunk of 256 rows that is at least half needed is computed
// whole, without gathering). Writes labels, oldlab and fresh bounds of the recomputed points and
// leaves need[p] = 1 exactly for them.
static void assign(km *w, int all, int acc, int64_t m_need) {
    const int d = w->d, k = w->k;
    const int64_t n = w->n;
    // small jobs stay on one thread (a parallel region costs more than it saves there)
    #pragma omp parallel for schedule(dynamic, 1) num_threads(w->nthr) \
        if (w->nbig > 1 && (all ? n : m_need) * d * k > (1 << 18))
    for (int64_t bl = 0; bl < w->nbig; bl++) {
        float *rows = thread_rows(w, omp_get_thread_num());
        float *D = rows + (size_t)KM_CHUNK * d;    // (rows, k)
        double *Pb = w->part + (size_t)bl * k * d, *cb = w->part + (size_t)w->nbig * k * d + (size_t)bl * k;
        if (acc) { memset(Pb, 0, sizeof(double) * k * d); memset(cb, 0, sizeof(double) * k); }
        int64_t b0 = bl * w->big, b1 = b0 + w->big < n ? b0 + w->big : n;
        for (int64_t s = b0; s < b1; s += KM_CHUNK) {
            int r = (int)(s + KM_CHUNK < b1 ? KM_CHUNK : b1 - s), cntn = r;
            int32_t ids[KM_CHUNK];   // offsets from s of the rows computed
            if (!all) {
                cntn = 0;
                for (int i = 0; i < r; i++) if (w->need[s + i]) ids[cntn++] = i;
                if (cntn == 0) continue;
            }
            const float *A;
            int m;
            if (all || 2 * cntn >= r) {
                A = w->X + s * d;
                m = r;
                for (int i = 0; i < r; i++) { ids[i] = i; w->need[s + i] = 1; }
            } else {
                for (int i = 0; i < cntn; i++)
                    memcpy(rows + (size_t)i * d, w->X + (s + ids[i]) * d, sizeof(float) * d);
                A = rows;
                m = cntn;
            }
            // D = -2 x.c, then + |c|^2 below: the same float rounding as sklearn's GEMM into a
            // buffer pre-filled with |c|^2 (scaling by -2 is exact)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, k, d, -2.0f, A, d, w->C, d, 0.0f,
                        D, k);
            for (int i = 0; i < m; i++) {
                int64_t p = s + ids[i];
                float *Di = D + (size_t)i * k;
                for (int j = 0; j < k; j++) Di[j] += w->cn[j];
                float best = Di[0];
                int lab = 0;
                for (int j = 1; j < k; j++)
                    if (Di[j] < best) { best = Di[j]; lab = j; }
                w->oldlab[p] = w->labels[p];
                w->labels[p] = lab;
                double bb = (double)w->xn[p] + best, lmin = INFINITY;
                w->ub[p] = sqrt(bb > 0 ? bb : 0) - w->cum[lab];
                float *lp = w->lb + p * k;
                for (int j = 0; j < k; j++) {
                    double q = (double)w->xn[p] + Di[j];
                    q = sqrt(q > 0 ? q : 0);
                    if (j != lab && q < lmin) lmin = q;
                    lp[j] = (float)((q + w->cum[j]) * KM_DOWN);
                }
                w->lm[p] = lmin + w->cummax;
                if (acc) {
                    double *Sj = Pb + (size_t)lab * d;
                    const float *x = w->X + p * d;
                    #pragma omp simd
                    for (int c = 0; c < d; c++) Sj[c] += x[c];
                    cb[lab] += 1;
                }
            }
        }
    }
    if (acc) sums_reduce(w);
}

// Sums and counts from scratch: partial sums per row block, added in block order (deterministic).
static void sums_fresh(km *w) {
    const int d = w->d, k = w->k;
    double *pc = w->part + (size_t)w->nbig * k * d;   // (nbig, k)
    #pragma omp parallel for schedule(dynamic, 1) num_threads(w->nthr) if (w->nbig > 1)
    for (int64_t b = 0; b < w->nbig; b++) {
        double *Pb = w->part + (size_t)b * k * d, *cb = pc + (size_t)b * k;
        memset(Pb, 0, sizeof(double) * k * d);
        memset(cb, 0, sizeof(double) * k);
        int64_t s0 = b * w->big, s1 = s0 + w->big < w->n ? s0 + w->big : w->n;
        for (int64_t i = s0; i < s1; i++) {
            double *Sj = Pb + (size_t)w->labels[i] * d;
            const float *x = w->X + i * d;
            #pragma omp simd
            for (int c = 0; c < d; c++) Sj[c] += x[c];
            cb[w->labels[i]] += 1;
        }
    }
    sums_reduce(w);
}

// After an assignment: the number of changed labels; S and cnt follow the labels (incrementally,
// in point order, or rebuilt when many changed or S is stale). fresh: S was rebuilt by assign.
static int64_t sums_update(km *w, int fresh, int *dirty) {
    const int d = w->d;
    int64_t changed = 0;
    for (int64_t p = 0; p < w->n; p++) changed += w->need[p] && w->oldlab[p] != w->labels[p];
    if (fresh) { *dirty = 0; return changed; }
    if (*dirty || changed * 4 > w->n) {
        sums_fresh(w);
        *dirty = 0;
    } else if (changed) {
        for (int64_t p = 0; p < w->n; p++) {
            if (!w->need[p]) continue;
            int o = w->oldlab[p], nl = w->labels[p];
            if (o == nl) continue;
            const float *x = w->X + p * d;
            double *So = w->S + (size_t)o * d, *Sn = w->S + (size_t)nl * d;
            #pragma omp simd
            for (int c = 0; c < d; c++) { So[c] -= x[c]; Sn[c] += x[c]; }
            w->cnt[o] -= 1;
            w->cnt[nl] += 1;
        }
    }
    return changed;
}

static void centre_norms(km *w) {
    w->cmax2 = 0;
    for (int j = 0; j < w->k; j++) {
        double s = 0;
        for (int c = 0; c < w->d; c++) s += (double)w->C[(size_t)j * w->d + c] * w->C[(size_t)j * w->d + c];
        w->cn[j] = (float)s;
        if (s > w->cmax2) w->cmax2 = s;
    }
}

// sklearn's _relocate_empty_clusters_dense: each empty cluster takes one of the points farthest
// from their (old) centres, farthest first; the labels are not changed.
static int relocate_empty(km *w, err *e) {
    const int d = w->d, k = w->k;
    int n_empty = 0;
    for (int j = 0; j < k; j++) n_empty += w->cnt[j] == 0;
    if (!n_empty) return 0;
    double *dist = err_malloc(e, sizeof(double) * w->n, "k-means relocation distances");
    int64_t *far = err_malloc(e, sizeof(int64_t) * n_empty, "k-means relocation indices");
    if (!dist || !far) { free(dist); free(far); return -1; }
    #pragma omp parallel for schedule(static) num_threads(w->nthr)
    for (int64_t i = 0; i < w->n; i++) {
        const float *x = w->X + i * d, *c = w->C + (size_t)w->labels[i] * d;
        double s = 0;
        #pragma omp simd reduction(+:s)
        for (int q = 0; q < d; q++) { double t = (double)x[q] - c[q]; s += t * t; }
        dist[i] = s;
    }
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
            w->S[(size_t)old * d + q] -= x[q];
            w->S[(size_t)j * d + q] = x[q];
        }
        w->cnt[j] = 1;
        w->cnt[old] -= 1;
    }
    free(dist);
    free(far);
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
        for (int64_t i = s; i < e; i++) {
            const float *x = w->X + i * d, *c = w->C + (size_t)w->labels[i] * d;
            double q = 0;
            #pragma omp simd reduction(+:q)
            for (int t = 0; t < d; t++) { double v = (double)x[t] - c[t]; q += v * v; }
            acc += q;
        }
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

// Flags the points whose label the bounds cannot prove; returns how many. First Hamerly's test
// (one lower bound for all other centres, or half the distance to the nearest other centre),
// then Elkan's per centre: centre j cannot win over a when u <= max(l_j, |c_a - c_j| / 2). Both
// ask for a margin on the squared distances that covers the float32 rounding of the GEMM formula.
static int64_t candidates(km *w) {
    const int k = w->k, d = w->d;
    if (w->exact) {
        memset(w->need, 1, (size_t)w->n);
        return w->n;
    }
    for (int a = 0; a < k; a++) {
        w->cc[(size_t)a * k + a] = 0;
        for (int b = a + 1; b < k; b++) {
            double q = 0;
            for (int c = 0; c < d; c++) {
                double v = (double)w->C[(size_t)a * d + c] - w->C[(size_t)b * d + c];
                q += v * v;
            }
            q = 0.5 * sqrt(q) * KM_DOWN;
            w->cc[(size_t)a * k + b] = w->cc[(size_t)b * k + a] = q;
        }
    }
    for (int a = 0; a < k; a++) {
        w->hs[a] = INFINITY;
        for (int j = 0; j < k; j++) if (j != a && w->cc[(size_t)a * k + j] < w->hs[a]) w->hs[a] = w->cc[(size_t)a * k + j];
    }
    int64_t m = 0;
    #pragma omp parallel for schedule(static) num_threads(w->nthr) reduction(+:m) if (w->n * k > (1 << 20))
    for (int64_t i = 0; i < w->n; i++) {
        int a = w->labels[i];
        double u = w->ub[i] + w->cum[a], u2 = u * u;
        double eps3 = 3 * w->eps_rel * ((double)w->xn[i] + w->cmax2);
        double L = w->lm[i] - w->cummax;
        if (L < w->hs[a]) L = w->hs[a];
        int nd = 0;
        if (!(L > u && L * L - u2 > eps3)) {
            const double *cca = w->cc + (size_t)a * k;
            const float *lp = w->lb + i * k;
            for (int j = 0; j < k && !nd; j++) {
                if (j == a) continue;
                double l = (double)lp[j] - w->cum[j];
                double Lj = l > cca[j] ? l : cca[j];
                nd = !(Lj > u && Lj * Lj - u2 > eps3);
            }
        }
        w->need[i] = (uint8_t)nd;
        m += nd;
    }
    return m;
}

// One Lloyd run from the centres in w->C. Returns the iteration count, or -1 (e set).
static int lloyd(km *w, int max_iter, double tol, double *shift, err *e) {
    const int d = w->d, k = w->k;
    int strict = 0, it = 0, dirty = 1;
    for (int j = 0; j < k; j++) shift[j] = w->cum[j] = 0;
    w->cummax = 0;
    centre_norms(w);
    for (int64_t i = 0; i < w->n; i++) w->labels[i] = -1;
    int64_t changed = w->n;
    for (it = 0; it < max_iter; it++) {
        int64_t m = it == 0 ? w->n : candidates(w);
        int all = it == 0 || w->exact || 2 * m > w->n;
        // rebuild the sums on the way when many labels are expected to change, else update them
        int acc = all && (dirty || changed * 8 > w->n);
        assign(w, all, acc, m);
        changed = sums_update(w, acc, &dirty);
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
        centre_norms(w);
        if (it > 0 && changed == 0) { strict = 1; break; }
        if (tot <= tol) break;
    }
    if (it == max_iter) it--;
    if (!strict) {   // final assignment so that the labels match the centres
        int64_t m = candidates(w);
        int all = w->exact || 2 * m > w->n, acc = all && (dirty || changed * 8 > w->n);
        assign(w, all, acc, m);
        sums_update(w, acc, &dirty);
    }
    if (dirty) sums_fresh(w);
    return it + 1;
}

// sklearn's _kmeans_plusplus (greedy, 2 + floor(ln k) candidates) on the centred data; D^2 from
// the GEMM formula, potentials in double summed in chunk order.
static int kmeanspp(km *w, km_rng *rng, float *centres, err *e) {
    const int d = w->d, k = w->k;
    const int64_t n = w->n, nch = (n + KM_CHUNK - 1) / KM_CHUNK;
    const int T = 2 + (int)floor(log((double)k));
    double *closest = err_malloc(e, sizeof(double) * n, "k-means++ distances");
    double *cum = err_malloc(e, sizeof(double) * n, "k-means++ cumulative sums");
    double *cd = err_malloc(e, sizeof(double) * n * T, "k-means++ candidate distances"); // (T, n)
    float *cand = err_malloc(e, sizeof(float) * (size_t)T * d, "k-means++ candidates");
    float *candn = err_malloc(e, sizeof(float) * T, "k-means++ candidate norms");
    double *ppart = err_malloc(e, sizeof(double) * nch * T, "k-means++ partial sums");
    int64_t *cid = err_malloc(e, sizeof(int64_t) * T, "k-means++ candidate ids");
    int rc = -1;
    if (!closest || !cum || !cd || !cand || !candn || !ppart || !cid) goto done;

    int64_t first = rng_below(rng, n);
    memcpy(centres, w->X + first * d, sizeof(float) * d);
    int nc = 1;
    cid[0] = first;
    for (int c = 0; c < k; c++) {
        // distances of every point to the nc candidates in cid[]
        for (int t = 0; t < nc; t++) {
            memcpy(cand + (size_t)t * d, w->X + cid[t] * d, sizeof(float) * d);
            candn[t] = w->xn[cid[t]];
        }
        #pragma omp parallel for schedule(static) num_threads(w->nthr) if (nch > 1)
        for (int64_t ch = 0; ch < nch; ch++) {
            float *D = thread_rows(w, omp_get_thread_num());   // (rows, nc): tstride >= KM_CHUNK * T
            int64_t s = ch * KM_CHUNK, e2 = s + KM_CHUNK < n ? s + KM_CHUNK : n;
            int r = (int)(e2 - s);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r, nc, d, 1.0f, w->X + s * d, d,
                        cand, d, 0.0f, D, nc);
            double acc[16] = {0};
            for (int i = 0; i < r; i++)
                for (int t = 0; t < nc; t++) {
                    double v = (double)w->xn[s + i] + candn[t] - 2.0 * D[(size_t)i * nc + t];
                    if (v < 0) v = 0;
                    if (c > 0 && closest[s + i] < v) v = closest[s + i];
                    cd[(size_t)t * n + s + i] = v;
                    acc[t] += v;
                }
            for (int t = 0; t < nc; t++) ppart[ch * T + t] = acc[t];
        }
        int best = 0;
        double bestpot = INFINITY;
        for (int t = 0; t < nc; t++) {
            double pot = 0;
            for (int64_t ch = 0; ch < nch; ch++) pot += ppart[ch * T + t];
            if (pot < bestpot) { bestpot = pot; best = t; }
        }
        if (c > 0) memcpy(centres + (size_t)c * d, w->X + cid[best] * d, sizeof(float) * d);
        memcpy(closest, cd + (size_t)best * n, sizeof(double) * n);
        if (c + 1 == k) break;
        // next candidates: D^2 sampling by cumulative sums and a left searchsorted
        double acc = 0;
        for (int64_t i = 0; i < n; i++) { acc += closest[i]; cum[i] = acc; }
        for (int t = 0; t < T; t++) {
            double r = rng_uniform(rng) * bestpot;
            int64_t lo = 0, hi = n;   // first i with cum[i] >= r
            while (lo < hi) { int64_t mid = lo + (hi - lo) / 2; if (cum[mid] < r) lo = mid + 1; else hi = mid; }
            cid[t] = lo < n ? lo : n - 1;
        }
        nc = T;
    }
    rc = 0;
done:
    free(closest); free(cum); free(cd); free(cand); free(candn); free(ppart); free(cid);
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

int kmeans_fit(const float *X, int64_t n, int d, const kmeans_params *p, const float *init,
               kmeans_result *out, err *e) {
    memset(out, 0, sizeof *out);
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

    km w = {0};
    w.n = n; w.d = d; w.k = k; w.exact = p->exact_lloyd;
    w.nthr = nn_get_threads();    // also pins BLAS to one thread
    w.eps_rel = 1e-6 * (4.0 + sqrt((double)d));
    w.big = (n + 63) / 64;
    w.big = (w.big + KM_CHUNK - 1) / KM_CHUNK * KM_CHUNK;
    if (w.big < 512) w.big = 512;
    w.nbig = (n + w.big - 1) / w.big;
    const int64_t nch = (n + KM_CHUNK - 1) / KM_CHUNK;
    int T = 2 + (int)floor(log((double)k));
    size_t tsz = (size_t)KM_CHUNK * (d + (k > T ? k : T));
    float *Xc = alloc_data(e, sizeof(float) * n * d);
    float *xn = err_malloc(e, sizeof(float) * n, "k-means norms");
    double *mean = err_calloc(e, d, sizeof(double), "k-means means");
    float *meanf = err_malloc(e, sizeof(float) * d, "k-means means");
    w.C = err_malloc(e, sizeof(float) * k * d, "k-means centres");
    w.Cn = err_malloc(e, sizeof(float) * k * d, "k-means centres");
    float *best_c = err_malloc(e, sizeof(float) * k * d, "k-means centres");
    w.cn = err_malloc(e, sizeof(float) * k, "k-means centre norms");
    w.S = err_malloc(e, sizeof(double) * k * d, "k-means sums");
    w.cnt = err_malloc(e, sizeof(double) * k, "k-means counts");
    w.labels = err_malloc(e, sizeof(int32_t) * n, "k-means labels");
    int32_t *best_l = err_malloc(e, sizeof(int32_t) * n, "k-means labels");
    w.ub = err_malloc(e, sizeof(double) * n, "k-means bounds");
    w.lb = err_malloc(e, sizeof(float) * n * k, "k-means bounds");
    w.lm = err_malloc(e, sizeof(double) * n, "k-means bounds");
    w.cum = err_malloc(e, sizeof(double) * k, "k-means shifts");
    w.hs = err_malloc(e, sizeof(double) * k, "k-means centre distances");
    w.cc = err_malloc(e, sizeof(double) * k * k, "k-means centre distances");
    w.need = err_malloc(e, (size_t)n, "k-means flags");
    w.oldlab = err_malloc(e, sizeof(int32_t) * n, "k-means labels");
    w.tstride = tsz;
    w.tbuf = err_malloc(e, sizeof(float) * tsz * w.nthr, "k-means thread buffers");
    double *part = err_malloc(e, sizeof(double) * nch, "k-means partial sums");
    w.part = err_malloc(e, sizeof(double) * w.nbig * k * (d + 1), "k-means partial sums");
    double *shift = err_malloc(e, sizeof(double) * k, "k-means shifts");
    int rc = OODSEG_E_NOMEM;
    if (!Xc || !xn || !mean || !meanf || !w.C || !w.Cn || !best_c || !w.cn || !w.S || !w.cnt ||
        !w.labels || !best_l || !w.ub || !w.lb || !w.cc || !w.lm || !w.cum || !w.hs || !w.need || !w.oldlab || !w.tbuf || !part || !shift || !w.part)
        goto done;

    // Column means and variances in double: partial sums over big row blocks (fixed by n, not by
    // the thread count) added in block order. The first pass also finds the first non-finite value.
    double varsum = 0;
    {
        double *P = err_calloc(e, (size_t)w.nbig * d, sizeof(double), "k-means column sums");
        double *Q = err_calloc(e, (size_t)w.nbig * d, sizeof(double), "k-means column sums");
        int64_t *bad = err_malloc(e, sizeof(int64_t) * w.nbig, "k-means checks");
        if (!P || !Q || !bad) { free(P); free(Q); free(bad); goto done; }
        #pragma omp parallel for schedule(dynamic, 1) num_threads(w.nthr)
        for (int64_t b = 0; b < w.nbig; b++) {
            int64_t s0 = b * w.big, s1 = s0 + w.big < n ? s0 + w.big : n;
            double *Pb = P + (size_t)b * d;
            bad[b] = -1;
            for (int64_t i = s0; i < s1; i++) {
                const float *x = X + i * d;
                #pragma omp simd
                for (int c = 0; c < d; c++) Pb[c] += x[c];
            }
            double tot = 0;
            for (int c = 0; c < d; c++) tot += Pb[c];
            if (!isfinite(tot))
                for (int64_t i = s0; i < s1 && bad[b] < 0; i++)
                    for (int c = 0; c < d; c++)
                        if (!isfinite(X[i * d + c])) { bad[b] = i * d + c; break; }
        }
        for (int64_t b = 0; b < w.nbig; b++)
            if (bad[b] >= 0) {
                int64_t i = bad[b] / d, c = bad[b] % d;
                float v = X[bad[b]];
                free(P); free(Q); free(bad);
                rc = err_set(e, OODSEG_E_ARG, "k-means: sample %lld, feature %lld is %s; inputs must be finite",
                             (long long)i, (long long)c, isnan(v) ? "NaN" : "infinite");
                goto done;
            }
        for (int c = 0; c < d; c++) {
            double m = 0;
            for (int64_t b = 0; b < w.nbig; b++) m += P[(size_t)b * d + c];
            mean[c] = m / (double)n;
            meanf[c] = (float)mean[c];
        }
        memset(P, 0, sizeof(double) * w.nbig * d);
        #pragma omp parallel for schedule(dynamic, 1) num_threads(w.nthr)
        for (int64_t b = 0; b < w.nbig; b++) {
            int64_t s0 = b * w.big, s1 = s0 + w.big < n ? s0 + w.big : n;
            double *Pb = P + (size_t)b * d, *Qb = Q + (size_t)b * d;
            for (int64_t i = s0; i < s1; i++) {
                double s2 = 0;
                #pragma omp simd reduction(+:s2)
                for (int c = 0; c < d; c++) {
                    float v = X[i * d + c] - meanf[c];
                    Xc[i * d + c] = v;
                    s2 += (double)v * v;
                    Pb[c] += v;
                    Qb[c] += (double)v * v;
                }
                xn[i] = (float)s2;
            }
        }
        for (int c = 0; c < d; c++) {
            double m1 = 0, m2 = 0;
            for (int64_t b = 0; b < w.nbig; b++) { m1 += P[(size_t)b * d + c]; m2 += Q[(size_t)b * d + c]; }
            w.xnsum += m2;
            m1 /= (double)n;
            varsum += m2 / (double)n - m1 * m1;
        }
        free(P); free(Q); free(bad);
    }
    const double tol = p->tol * varsum / d;
    w.X = Xc;
    w.xn = xn;

    km_rng rng;
    rng_seed(&rng, p->seed);
    int n_init = init ? 1 : (p->n_init < 1 ? 1 : p->n_init);
    double best_in = 0;
    int best_it = 0, have = 0;
    for (int run = 0; run < n_init; run++) {
        if (init) {
            for (int64_t i = 0; i < (int64_t)k * d; i++) w.C[i] = init[i] - meanf[i % d];
        } else if (kmeanspp(&w, &rng, w.C, e)) goto done;
        int it = lloyd(&w, p->max_iter, tol, shift, e);
        if (it < 0) goto done;
        double in = inertia(&w, part);
        if (!have || (in < best_in && !same_clustering(w.labels, best_l, n, k))) {
            have = 1;
            best_in = in;
            best_it = it;
            memcpy(best_c, w.C, sizeof(float) * k * d);
            memcpy(best_l, w.labels, sizeof(int32_t) * n);
        }
    }
    for (int64_t i = 0; i < (int64_t)k * d; i++) best_c[i] += meanf[i % d];
    out->k = k;
    out->d = d;
    out->centers = best_c;
    out->labels = best_l;
    out->inertia = best_in;
    out->n_iter = best_it;
    best_c = NULL;
    best_l = NULL;
    rc = OODSEG_OK;
done:
    free(Xc); free(xn); free(mean); free(meanf); free(w.C); free(w.Cn); free(best_c); free(w.cn);
    free(w.S); free(w.cnt); free(w.labels); free(best_l); free(w.ub); free(w.lb); free(w.cc); free(w.lm); free(w.cum); free(w.hs); free(w.need);
    free(w.oldlab); free(w.tbuf); free(part); free(shift); free(w.part);
    return rc;
}
