// Scores as sortable integers, and the in-place radix sort of them that the exact metrics rest on.
//
// A float32 score maps to an order-preserving 32-bit key (negative floats flipped, positive ones
// with the sign bit set), so sorting the keys as unsigned integers sorts the scores; -0.0 maps to
// the key of 0.0 (ties with it, as in scikit-learn). NaN is refused before keys are made.
#ifndef OODSEG_EVAL_RADIX_H
#define OODSEG_EVAL_RADIX_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t score_to_key(float f) {
    uint32_t u;
    if (f == 0.0f) f = 0.0f;   // -0.0 ties with 0.0, as in sklearn
    memcpy(&u, &f, 4);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static inline float key_to_score(uint32_t k) {
    uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// The same for float64 scores (the Python bindings' curves), 64-bit keys.
static inline uint64_t score64_to_key(double d) {
    uint64_t u;
    if (d == 0.0) d = 0.0;   // -0.0 ties with 0.0, as in sklearn
    memcpy(&u, &d, 8);
    return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}

static inline double key_to_score64(uint64_t k) {
    uint64_t u = (k & 0x8000000000000000ull) ? (k & 0x7fffffffffffffffull) : ~k;
    double d;
    memcpy(&d, &u, 8);
    return d;
}

// Sorts a[0..n) ascending, in place: memory is one copy of the keys plus a few MB of per-thread
// scratch. Parallel (OpenMP) for large n; the result does not depend on the thread count.
void key_sort(uint32_t *a, size_t n);

#endif
