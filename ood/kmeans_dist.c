// The distance kernels of K-Means (kmeans.c): dot products of centred rows with the centres, in
// float with a proven error bound, and the exact (double) norms and distances. The rows are
// centred on the fly, x - mean in float: the values of sklearn's centred copy.
#include "kmeans_dist.h"
#include <string.h>

typedef float v16 __attribute__((vector_size(64)));

// (functions taking or returning v16 would change the ABI between the clones: memcpy instead)
#define LD16(v, p) memcpy(&(v), (p), sizeof(v16))

typedef int vi16 __attribute__((vector_size(64)));

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

// Floats of scratch kmeans_dots() needs for m centres.
size_t kmeans_dots_scratch(int m) { return (size_t)KT_R * KT_DT + (size_t)((m + 1) & ~1) * KT_R * 16; }

// out[r * ldo + j] = sum_c (xr[r][c] - mean[c]) * Cp[j * ldc + c] for r < nr, j < m. Cp is
// zero-padded to ldc >= d rounded up to 16. Per block of 8 rows and per column tile, the centred
// rows are written once to an L1 scratch (x - mean in float: the values of sklearn's centred
// copy), then every pair of centres runs over them: each centre load feeds 8 FMAs, each row load
// 2, and the centres stream from L2 once per 8 rows. Accumulators of unfinished tiles wait in the
// scratch (exact). Each lane sums its columns in order, then the 16 lanes add in a fixed tree: per
// dot at most ceil(d/16) + 4 roundings in a chain, so the error is at most
// gamma_{ceil(d/16)+4} sum |v c| <= that times (|v|^2 + |c|^2) / 2 (E of the assignment: twice).
__attribute__((target_clones("avx512f", "default"), optimize("fp-contract=fast")))
void kmeans_dots(const float *const *xr, int nr, const float *mean, const float *Cp, int ldc, int m,
                 int d, float *scratch, float *out, int ldo) {
    const int mp = (m + 1) & ~1;
    float *vt = scratch;                            // (KT_R, KT_DT) centred tile
    float *accs = scratch + KT_R * KT_DT;           // (mp / 2, 16, 16) accumulators between tiles
    for (int r0 = 0; r0 < nr; r0 += KT_R) {
        const float *x[KT_R];
        for (int i = 0; i < KT_R; i++) x[i] = xr[r0 + i < nr ? r0 + i : nr - 1];
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
    }
}

// |x - mean|^2 in double.
__attribute__((target_clones("avx512f", "default")))
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
__attribute__((target_clones("avx512f", "default")))
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

