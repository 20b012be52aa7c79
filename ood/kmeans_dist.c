// The distance kernels of K-Means (kmeans.c): dot products of centred rows with the centres, in
// float with a proven error bound, and the exact (double) norms and distances. The rows are
// centred on the fly, x - mean in float: the values of sklearn's centred copy.
#include "kmeans_dist.h"
#include <string.h>

typedef float v16 __attribute__((vector_size(64)));

// (functions taking or returning v16 would change the ABI between the clones: memcpy instead)
#define LD16(v, p) memcpy(&(v), (p), sizeof(v16))

typedef int vi16 __attribute__((vector_size(64)));
typedef double v8d __attribute__((vector_size(64)));

// The 16 lane sums of a[0..15], as lanes 0..15 of a[0], by a fixed tree (lane i + lane i+8, then
// +4, +2, +1), two vectors at a time: 15 shuffle pairs instead of 16 scalar trees.
#define HSUM16(a) do {                                                                           \
    const vi16 l1 = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};                    \
    const vi16 l2 = {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27};                  \
    const vi16 l3 = {0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29};                  \
    const vi16 l4 = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};                 \
    for (int h = 0; h < 8; h++)                                                                  \
        (a)[h] = __builtin_shuffle((a)[2 * h], (a)[2 * h + 1], l1) +                             \
                 __builtin_shuffle((a)[2 * h], (a)[2 * h + 1], l1 + 8);                          \
    for (int h = 0; h < 4; h++)                                                                  \
        (a)[h] = __builtin_shuffle((a)[2 * h], (a)[2 * h + 1], l2) +                             \
                 __builtin_shuffle((a)[2 * h], (a)[2 * h + 1], l2 + 4);                          \
    for (int h = 0; h < 2; h++)                                                                  \
        (a)[h] = __builtin_shuffle((a)[2 * h], (a)[2 * h + 1], l3) +                             \
                 __builtin_shuffle((a)[2 * h], (a)[2 * h + 1], l3 + 2);                          \
    (a)[0] = __builtin_shuffle((a)[0], (a)[1], l4) + __builtin_shuffle((a)[0], (a)[1], l4 + 1);  \
} while (0)

#define KT_R 8      // rows per register block (8 rows x 2 centres: 16 zmm accumulators)
#define KT_DT 512   // columns per tile: the 8 centred rows of a tile (16 KB) stay in L1

// out[r * ldo + j] = sum_c (xr[r][c] - mean[c]) * Cp[j * ldc + c] for r < nr, j < m. Cp is
// zero-padded to ldc >= d rounded up to 16. Per block of 8 rows and per column tile, the centred
// rows are written once to an L1 scratch (x - mean in float: the values of sklearn's centred
// copy), then every pair of centres runs over them: each centre load feeds 8 FMAs, each row load
// 2, and the centres stream from L2 once per 8 rows. Accumulators of unfinished tiles wait in the
// scratch (exact). Each lane sums its columns in order, then the 16 lanes add in a fixed tree: per
// dot at most ceil(d/16) + 4 roundings in a chain, so the error is at most
// gamma_{ceil(d/16)+4} sum |v c| <= that times (|v|^2 + |c|^2) / 2 (E of the assignment: twice).
// (About 80 lines as one function for the same reason as dots_bc_body below: register-resident
// accumulators across the tile loop.)
NN_TARGET_CLONES __attribute__((optimize("fp-contract=fast")))
static void dots_pair(const float *const *xr, int nr, const float *mean, const float *Cp, int ldc, int m,
                      int d, float *scratch, float *out, int ldo, double *norms) {
    const int mp = (m + 1) & ~1;
    float *vt = scratch;                            // (KT_R, KT_DT) centred tile
    float *accs = scratch + KT_R * KT_DT;           // (mp / 2, 16, 16) accumulators between tiles
    for (int r0 = 0; r0 < nr; r0 += KT_R) {
        const float *x[KT_R];
        for (int i = 0; i < KT_R; i++) x[i] = xr[r0 + i < nr ? r0 + i : nr - 1];
        double nrm[KT_R] = {0};
        for (int t0 = 0; t0 < d; t0 += KT_DT) {
            const int tl = d - t0 < KT_DT ? d - t0 : KT_DT, tlv = (tl + 15) & ~15;
            const int first = t0 == 0, last = t0 + KT_DT >= d;
            // The next tile (of these rows, or the first of the next rows) is prefetched while
            // this one is computed: the loads from memory then overlap the FMAs. Line L of it is
            // row L % 8, line L / 8, spread evenly over the inner steps of all centre pairs.
            const char *pf[KT_R];
            int pfl = 0;   // lines per row of the next tile
            if (!last || r0 + KT_R < nr) {
                int nt0 = last ? 0 : t0 + KT_DT, ntl = d - nt0 < KT_DT ? d - nt0 : KT_DT;
                for (int i = 0; i < KT_R; i++)
                    pf[i] = (const char *)((last ? xr[r0 + KT_R + i < nr ? r0 + KT_R + i : nr - 1] : x[i]) + nt0);
                pfl = (ntl + 15) / 16;
            }
            const int steps = tlv / 16, pf_tot = KT_R * pfl, pf_pair = (pf_tot + mp / 2 - 1) / (mp / 2),
                      pf_step = (pf_pair + steps - 1) / steps;
            for (int i = 0; i < KT_R; i++) {
                float *vi = vt + i * KT_DT;
                const float *xi = x[i] + t0, *mi = mean + t0;
                #pragma omp simd
                for (int q = 0; q < tl; q++) vi[q] = xi[q] - mi[q];
                for (int q = tl; q < tlv; q++) vi[q] = 0;
                if (norms) {
                    double sn = 0;
                    #pragma omp simd reduction(+:sn)
                    for (int q = 0; q < tl; q++) sn += (double)vi[q] * vi[q];
                    nrm[i] += sn;
                }
            }
            for (int j0 = 0; j0 < mp; j0 += 2) {
                const float *c0 = Cp + (size_t)j0 * ldc + t0, *c1 = j0 + 1 < m ? c0 + ldc : c0;
                float *as = accs + (size_t)j0 * KT_R * 16;
                v16 a[16];   // a[2 i + jj]: row i, centre j0 + jj
                if (first) {
                    _Pragma("GCC unroll 16") for (int f = 0; f < 16; f++) a[f] = (v16){0};
                } else {
                    _Pragma("GCC unroll 16") for (int f = 0; f < 16; f++) LD16(a[f], as + 16 * f);
                }
                const int L0 = j0 / 2 * pf_pair, L1 = L0 + pf_pair < pf_tot ? L0 + pf_pair : pf_tot;
                for (int q = 0, L = L0; q < tlv; q += 16) {
                    for (int u = 0; u < pf_step && L < L1; u++, L++)
                        __builtin_prefetch(pf[L & (KT_R - 1)] + (size_t)(L / KT_R) * 64);
                    v16 cv0, cv1;
                    LD16(cv0, c0 + q);
                    LD16(cv1, c1 + q);
                    _Pragma("GCC unroll 8") for (int i = 0; i < KT_R; i++) {
                        v16 v;
                        LD16(v, vt + i * KT_DT + q);
                        a[2 * i] += v * cv0;
                        a[2 * i + 1] += v * cv1;
                    }
                }
                if (!last) {
                    _Pragma("GCC unroll 16") for (int f = 0; f < 16; f++) memcpy(as + 16 * f, &a[f], sizeof(v16));
                    continue;
                }
                HSUM16(a);
                float sum[16];
                memcpy(sum, &a[0], sizeof sum);
                for (int i = 0; i < KT_R && r0 + i < nr; i++) {
                    out[(size_t)(r0 + i) * ldo + j0] = sum[2 * i];
                    if (j0 + 1 < m) out[(size_t)(r0 + i) * ldo + j0 + 1] = sum[2 * i + 1];
                }
            }
        }
        if (norms)
            for (int i = 0; i < KT_R && r0 + i < nr; i++) norms[r0 + i] = nrm[i];
    }
}

#define KB_R 4   // rows per register block of dots_bc()
#define KB_H 4   // interleaved accumulator chains per row (KB_R * KB_H = 16 zmm accumulators)
_Static_assert(KB_R == 4 && KB_H == 4, "the interleaving shuffles of dots_bc() are for 4 x 4");

typedef long long vl8 __attribute__((vector_size(64)));

// Columns per FMA lane group: the 16 lanes hold 16 / G centres x G consecutive columns, so that
// 8 centres do not leave half the lanes idle.
static int bc_cols(int m) { return m <= 8 ? 2 : 1; }

// Columns of one step: KB_H chains of G columns.
static int bc_dp(int d, int G) { return (d + KB_H * G - 1) / (KB_H * G) * (KB_H * G); }

#define KB_T 256   // columns per tile: a tile's centre vectors (16 KB at G = 1) stay in L1
#define KB_SB 64   // rows per super-block, whose accumulators wait in the scratch between tiles
#define KB_PF 2    // the rows of the block this many blocks ahead are prefetched (into L2)

// The lanes are centres (times G columns) and each row value is broadcast: no horizontal sums
// over the columns. Per block of KB_R rows and tile of KB_T columns the centred rows (x - mean in
// float) go to an L1 scratch, interleaved so that the KB_R x KB_H x G values of one step share
// 64 G bytes at fixed offsets. Each step loads KB_H centre vectors and runs KB_R x KB_H FMAs whose
// row operand is a broadcast load of G floats; each row keeps KB_H chains, so that 16 FMAs are in
// flight. Per dot at most dp / (KB_H G) + 2 + log2 G roundings in a chain: the chain (continued
// exactly across tiles through the scratch), the 4 chains, the G lanes. The rows of a block
// ahead are prefetched, G lines per step: at D = 1280 the kernel waits on memory otherwise.
// One body of ~120 lines on purpose: the 16 accumulator chains and the interleaving shuffles live
// in registers across the tile loop, and a call boundary inside it would send them through memory;
// the steps are commented where they happen.
static inline __attribute__((always_inline))
void dots_bc_body(const float *const *xr, int nr, const float *mean, const float *P, int m, int d,
                  float *scratch, float *out, int ldo, double *norms, const int G) {
    const int M = 16 / G, S = KB_H * G, dp = bc_dp(d, G), groups = (m + M - 1) / M;
    const size_t gsz = (size_t)dp * 16 / G;   // floats of one lane group in P
    float *vt = scratch;                      // (KB_T / S, KB_R, S) a block's tile, interleaved
    float *accs = scratch + KB_R * KB_T;      // (KB_SB / KB_R, groups, KB_R * KB_H, 16)
    // G = 1: lanes of 4 blocks of 4: (a b) and (c d) give blocks (a0 a1 b0 b1), (a2 a3 b2 b3);
    // then those give (a0 b0 c0 d0) ...; G = 2: (a b) give (a0..7 b0..7)
    const vi16 lo = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}, hi = lo + 8,
               ev = {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27}, od = ev + 4;
    for (int b0 = 0; b0 < nr; b0 += KB_SB) {
        const int b1 = b0 + KB_SB < nr ? b0 + KB_SB : nr;
        if (norms) for (int i = b0; i < b1; i++) norms[i] = 0;
        for (int t0 = 0; t0 < dp; t0 += KB_T) {
            const int tl = dp - t0 < KB_T ? dp - t0 : KB_T, first = t0 == 0, last = t0 + KB_T >= dp;
            const int tend = t0 + tl < d ? t0 + tl : d;   // the tile's columns that hold data
            for (int r0 = b0; r0 < b1; r0 += KB_R) {
                const float *x[KB_R];
                for (int i = 0; i < KB_R; i++) x[i] = xr[r0 + i < b1 ? r0 + i : b1 - 1];
                v8d nacc[KB_R][2];   // squares of the centred rows, when norms are wanted
                _Pragma("GCC unroll 4") for (int i = 0; i < KB_R; i++) nacc[i][0] = nacc[i][1] = (v8d){0};
                for (int q0 = t0; q0 < tend; q0 += 16) {
                    v16 r[KB_R], mv;
                    if (q0 + 16 <= d) {
                        LD16(mv, mean + q0);
                        _Pragma("GCC unroll 4") for (int i = 0; i < KB_R; i++) { LD16(r[i], x[i] + q0); r[i] -= mv; }
                    } else {   // the tail, zero-padded
                        float t[16] = {0};
                        for (int i = 0; i < KB_R; i++) {
                            for (int q = q0; q < d; q++) t[q - q0] = x[i][q] - mean[q];
                            LD16(r[i], t);
                        }
                    }
                    if (norms)
                        _Pragma("GCC unroll 4") for (int i = 0; i < KB_R; i++) {
                            v8d a = __builtin_convertvector(__builtin_shufflevector(r[i], r[i], 0, 1, 2, 3, 4, 5, 6, 7), v8d),
                                b = __builtin_convertvector(__builtin_shufflevector(r[i], r[i], 8, 9, 10, 11, 12, 13, 14, 15), v8d);
                            nacc[i][0] += a * a;
                            nacc[i][1] += b * b;
                        }
                    v16 o[4];
                    v16 t0v = __builtin_shuffle(r[0], r[1], lo), t1v = __builtin_shuffle(r[2], r[3], lo),
                        t2v = __builtin_shuffle(r[0], r[1], hi), t3v = __builtin_shuffle(r[2], r[3], hi);
                    if (G == 2) {
                        o[0] = t0v; o[1] = t1v; o[2] = t2v; o[3] = t3v;
                    } else {
                        o[0] = __builtin_shuffle(t0v, t1v, ev); o[1] = __builtin_shuffle(t0v, t1v, od);
                        o[2] = __builtin_shuffle(t2v, t3v, ev); o[3] = __builtin_shuffle(t2v, t3v, od);
                    }
                    memcpy(vt + (size_t)(q0 - t0) * KB_R, o, sizeof o);
                }
                if (norms)
                    for (int i = 0; i < KB_R && r0 + i < b1; i++) {
                        v8d a = nacc[i][0] + nacc[i][1];
                        norms[r0 + i] += ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
                    }
                // KB_PF blocks ahead in this tile, else the first block of the next tile or
                // super-block; into L2, where they do not evict the tile's centre vectors
                const char *pf[KB_R];
                unsigned npf = 0;
                int nb0 = r0 + KB_PF * KB_R, nt0 = t0;
                if (nb0 >= b1) { nb0 = b0; nt0 = t0 + KB_T; }
                if (nt0 >= dp) { nb0 = b1; nt0 = 0; }
                if (nb0 < nr && nt0 < d) {
                    const int ne = nb0 < b1 ? b1 : (nb0 + KB_SB < nr ? nb0 + KB_SB : nr);
                    for (int i = 0; i < KB_R; i++)
                        pf[i] = (const char *)(xr[nb0 + i < ne ? nb0 + i : ne - 1] + nt0);
                    const int nl = (d - nt0 < KB_T ? d - nt0 : KB_T);
                    npf = KB_R * (unsigned)((nl + 15) / 16);
                }
                for (int g = 0; g < groups; g++) {
                    const float *pg = P + g * gsz + (size_t)(t0 / S) * KB_H * 16, *v = vt;
                    float *ac = accs + ((size_t)(r0 - b0) / KB_R * groups + g) * KB_R * KB_H * 16;
                    v16 a[KB_R][KB_H];
                    if (first) {
                        _Pragma("GCC unroll 4") for (int i = 0; i < KB_R; i++)
                            _Pragma("GCC unroll 4") for (int h = 0; h < KB_H; h++) a[i][h] = (v16){0};
                    } else {
                        _Pragma("GCC unroll 4") for (int i = 0; i < KB_R; i++)
                            _Pragma("GCC unroll 4") for (int h = 0; h < KB_H; h++) LD16(a[i][h], ac + 16 * (i * KB_H + h));
                    }
                    unsigned L = g == 0 ? 0 : npf;   // the prefetches ride on the first group's steps
                    for (int c = 0; c < tl; c += S, pg += 16 * KB_H, v += KB_R * S) {
                        for (unsigned u = 0; u < (unsigned)G && L < npf; u++, L++)
                            __builtin_prefetch(pf[L % KB_R] + (size_t)(L / KB_R) * 64, 0, 2);
                        v16 cv[KB_H];
                        _Pragma("GCC unroll 4") for (int h = 0; h < KB_H; h++) LD16(cv[h], pg + 16 * h);
                        _Pragma("GCC unroll 4") for (int i = 0; i < KB_R; i++)
                            _Pragma("GCC unroll 4") for (int h = 0; h < KB_H; h++) {
                                const float *vp = v + i * S + h * G;
                                if (G == 1) {
                                    a[i][h] += *vp * cv[h];
                                } else {   // the two floats as one 64-bit broadcast
                                    long long t;
                                    memcpy(&t, vp, sizeof t);
                                    vl8 b = {t, t, t, t, t, t, t, t};
                                    a[i][h] += (v16)b * cv[h];
                                }
                            }
                    }
                    for (; L < npf; L++) __builtin_prefetch(pf[L % KB_R] + (size_t)(L / KB_R) * 64, 0, 2);
                    if (!last) {
                        _Pragma("GCC unroll 4") for (int i = 0; i < KB_R; i++)
                            _Pragma("GCC unroll 4") for (int h = 0; h < KB_H; h++) memcpy(ac + 16 * (i * KB_H + h), &a[i][h], sizeof(v16));
                        continue;
                    }
                    const int nc = m - M * g < M ? m - M * g : M;
                    for (int i = 0; i < KB_R && r0 + i < b1; i++) {
                        v16 s = (a[i][0] + a[i][1]) + (a[i][2] + a[i][3]);
                        if (G == 2) s += __builtin_shuffle(s, (vi16){1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14});
                        float *o = out + (size_t)(r0 + i) * ldo + M * g;
                        if (G == 1 && nc == 16) memcpy(o, &s, sizeof s);
                        else for (int j = 0; j < nc; j++) o[j] = s[j * G];
                    }
                }
            }
        }
    }
}

#define DOTS_BC(G)                                                                                 \
    NN_TARGET_CLONES __attribute__((optimize("fp-contract=fast")))             \
    static void dots_bc##G(const float *const *xr, int nr, const float *mean, const float *P,     \
                           int m, int d, float *scratch, float *out, int ldo, double *norms) {     \
        dots_bc_body(xr, nr, mean, P, m, d, scratch, out, ldo, norms, G);                          \
    }
DOTS_BC(1)
DOTS_BC(2)

// Up to 4 centres the pair kernel does fewer FMAs than 16 lanes of which 12 would idle (a lane
// group of 4 columns would need a 128-bit broadcast, which GCC's vector extensions do not emit).
static int use_bc(int m) { return m > KMEANS_PAIR_MAX; }

size_t kmeans_pack_pairs_floats(int m, int d) { return (size_t)m * ((d + 15) & ~15); }

void kmeans_pack_pairs(const float *C, size_t ldC, int m, int d, float *P) {
    memset(P, 0, sizeof(float) * kmeans_pack_pairs_floats(m, d));
    for (int j = 0; j < m; j++) memcpy(P + (size_t)j * ((d + 15) & ~15), C + (size_t)j * ldC, sizeof(float) * d);
}

size_t kmeans_dots_pairs_scratch(int m) { return (size_t)KT_R * KT_DT + (size_t)((m + 1) & ~1) * KT_R * 16; }

void kmeans_dots_pairs(const float *const *xr, int nr, const float *mean, const float *P, int m, int d,
                       float *scratch, float *out, int ldo, double *norms) {
    dots_pair(xr, nr, mean, P, (d + 15) & ~15, m, d, scratch, out, ldo, norms);
}

size_t kmeans_pack_floats(int m, int d) {
    if (!use_bc(m)) return kmeans_pack_pairs_floats(m, d);
    const int G = bc_cols(m), M = 16 / G;
    return (size_t)((m + M - 1) / M) * bc_dp(d, G) * 16 / G;
}

// Pair kernel: (m, d rounded up to 16), zero-padded rows. Broadcast kernel, G columns per lane
// group and M = 16 / G centres per group: P[g][step][h][j G + q] = C[g M + j][step 4G + h G + q],
// zero-padded.
void kmeans_pack(const float *C, size_t ldC, int m, int d, float *P) {
    if (!use_bc(m)) {
        kmeans_pack_pairs(C, ldC, m, d, P);
        return;
    }
    memset(P, 0, sizeof(float) * kmeans_pack_floats(m, d));
    const int G = bc_cols(m), M = 16 / G;
    const size_t gsz = (size_t)bc_dp(d, G) * 16 / G;
    for (int j = 0; j < m; j++) {   // column c = (st KB_H + h) G + q goes to step st, chain h, lane (j % M) G + q
        const float *cj = C + (size_t)j * ldC;
        float *pj = P + (size_t)(j / M) * gsz + (size_t)(j % M) * G;
        for (int c0 = 0, sh = 0; c0 < d; c0 += G, sh++)
            for (int q = 0; q < G && c0 + q < d; q++) pj[(size_t)sh * 16 + q] = cj[c0 + q];
    }
}

size_t kmeans_dots_scratch(int m) {
    if (use_bc(m)) {
        const int M = 16 / bc_cols(m);
        return (size_t)KB_R * KB_T + (size_t)(KB_SB / KB_R) * ((m + M - 1) / M) * KB_R * KB_H * 16;
    }
    return kmeans_dots_pairs_scratch(m);
}

// The longest chain of roundings behind one dot product (see the kernels), for the error bound
// gamma_depth * sum |v c|. Without a fused multiply-add every step rounds twice.
int kmeans_dots_depth(int m, int d) {
#ifdef __FP_FAST_FMAF
    const int per_step = 1;
#else
    const int per_step = 2;
#endif
    if (use_bc(m)) {
        const int G = bc_cols(m);
        return per_step * bc_dp(d, G) / (KB_H * G) + 2 + (G == 2);
    }
    return per_step * ((d + 15) / 16) + 4;
}

void kmeans_dots(const float *const *xr, int nr, const float *mean, const float *P, int m, int d,
                 float *scratch, float *out, int ldo, double *norms) {
    if (!use_bc(m)) kmeans_dots_pairs(xr, nr, mean, P, m, d, scratch, out, ldo, norms);
    else if (bc_cols(m) == 1) dots_bc1(xr, nr, mean, P, m, d, scratch, out, ldo, norms);
    else dots_bc2(xr, nr, mean, P, m, d, scratch, out, ldo, norms);
}

// |x - mean|^2 in double.
NN_TARGET_CLONES
double kmeans_row_norm2(const float *x, const float *mean, int d) {
    double s = 0;
    #pragma omp simd reduction(+:s)
    for (int q = 0; q < d; q++) {
        float v = x[q] - mean[q];
        s += (double)v * v;
    }
    return s;
}

// |(x - mean) - c|^2 in double: the referee for near ties.
NN_TARGET_CLONES
double kmeans_dist2(const float *x, const float *mean, const float *c, int d) {
    double s = 0;
    #pragma omp simd reduction(+:s)
    for (int q = 0; q < d; q++) {
        float v = x[q] - mean[q];
        double t = (double)v - c[q];
        s += t * t;
    }
    return s;
}
