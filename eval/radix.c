// In-place radix sort of score keys (see radix.h).
#include "radix.h"
#include <stdlib.h>

// ---- sorting the keys: in place, O(n) -------------------------------------------------------
// One in-place American-flag pass splits by an 11-bit digit just below the bits all keys share
// (the scores of a method span a narrow range of exponents, so a fixed top byte would barely split
// them); each bucket is then LSD-radix sorted through a per-thread scratch of at most LSD_MAX
// keys, so memory stays one copy of the scores plus a few MB. Larger buckets (many ties, or a
// skewed distribution) are split again in place.
#define LSD_MAX ((size_t)1 << 18)

static void isort(uint32_t *a, size_t n) {
    for (size_t i = 1; i < n; i++) {
        uint32_t v = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1] > v) { a[j] = a[j - 1]; j--; }
        a[j] = v;
    }
}

// LSD radix sort of a[0..n) on its low `bits` bits (the keys agree above), through tmp[n].
static void lsd_sort(uint32_t *a, uint32_t *tmp, size_t n, int bits) {
    int passes = (bits + 10) / 11, w = passes ? (bits + passes - 1) / passes : 0;
    uint32_t *src = a, *dst = tmp, mask = (1u << w) - 1;
    size_t cnt[2048];
    for (int p = 0; p < passes; p++) {
        int sh = p * w;
        memset(cnt, 0, ((size_t)mask + 1) * sizeof *cnt);
        for (size_t i = 0; i < n; i++) cnt[(src[i] >> sh) & mask]++;
        if (cnt[(src[0] >> sh) & mask] == n) continue;   // one bucket: nothing to do
        size_t o = 0;
        for (uint32_t b = 0; b <= mask; b++) { size_t c = cnt[b]; cnt[b] = o; o += c; }
        for (size_t i = 0; i < n; i++) dst[cnt[(src[i] >> sh) & mask]++] = src[i];
        uint32_t *t = src; src = dst; dst = t;
    }
    if (src != a) memcpy(a, src, n * sizeof *a);
}

static void big_sort(uint32_t *a, size_t n, int bits, uint32_t *tmp);

static void bucket_sort(uint32_t *a, size_t n, int bits, uint32_t *tmp) {
    if (n <= 32) isort(a, n);
    else if (n <= LSD_MAX) lsd_sort(a, tmp, n, bits);
    else big_sort(a, n, bits, tmp);
}

// In-place split by the 11-bit digit below `bits`, then each bucket sorted. tmp: NULL at the top
// level (then buckets are sorted in parallel, each thread with its own scratch).
static void big_sort(uint32_t *a, size_t n, int bits, uint32_t *tmp) {
    enum { NB = 2048 };
    int shift = bits > 11 ? bits - 11 : 0;
    const uint32_t mask = NB - 1;
    size_t *cnt = calloc(NB, sizeof *cnt), *head = malloc(NB * sizeof *head), *tail = malloc(NB * sizeof *tail);
    if (!cnt || !head || !tail) {   // cannot fail in practice (48 KB); keep correct anyway
        free(cnt); free(head); free(tail);
        isort(a, n);
        return;
    }
    for (size_t i = 0; i < n; i++) cnt[(a[i] >> shift) & mask]++;
    size_t s = 0;
    for (int b = 0; b < NB; b++) { head[b] = s; s += cnt[b]; tail[b] = s; }
    // Each step swaps one key into the next free slot of its bucket. Unlike following one cycle,
    // consecutive steps are independent, so their cache misses overlap; every step settles one
    // key, and the keys swapped into a bucket's unsettled part are handled in the next round.
    for (int more = 1; more;) {
        more = 0;
        for (int b = 0; b < NB; b++) {
            size_t en = tail[b];
            for (size_t i = head[b]; i < en; i++) {
                uint32_t v = a[i];
                size_t o = head[(v >> shift) & mask]++;
                a[i] = a[o];
                a[o] = v;
            }
            if (head[b] < tail[b]) more = 1;
        }
    }
    if (shift > 0) {
        if (tmp) {
            for (int b = 0; b < NB; b++) bucket_sort(a + tail[b] - cnt[b], cnt[b], shift, tmp);
        } else {
            #pragma omp parallel
            {
                uint32_t *t = malloc(LSD_MAX * sizeof *t);
                #pragma omp for schedule(dynamic, 8)
                for (int b = 0; b < NB; b++) {
                    uint32_t *p = a + tail[b] - cnt[b];
                    if (t) bucket_sort(p, cnt[b], shift, t);
                    else if (cnt[b] > 32) big_sort(p, cnt[b], shift, NULL);   // no scratch: in place all the way
                    else isort(p, cnt[b]);
                }
                free(t);
            }
        }
    }
    free(cnt); free(head); free(tail);
}

void key_sort(uint32_t *a, size_t n) {
    if (n < 2) return;
    uint32_t lo = UINT32_MAX, hi = 0;
    #pragma omp parallel for reduction(min:lo) reduction(max:hi) if (n > ((size_t)1 << 20))
    for (size_t i = 0; i < n; i++) { if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i]; }
    if (lo == hi) return;
    int bits = 32 - __builtin_clz(lo ^ hi);   // the low bits that differ somewhere
    if (n <= LSD_MAX) {
        uint32_t *t = malloc(n * sizeof *t);
        if (t) { lsd_sort(a, t, n, bits); free(t); return; }
    }
    big_sort(a, n, bits, NULL);
}

