// Small AVX-512 pieces shared by the kernels that take 16 outputs or 32 inputs at a time
// (nn/pool.c, nn/resize.c, nn/dwconv_nchw.c, nn/gemm_bf16.c). nn_load32 inlines only into
// functions compiled for AVX-512 (target("avx512f") or more).
#ifndef OODSEG_NN_AVX512_H
#define OODSEG_NN_AVX512_H

#include <immintrin.h>

// 1 when this CPU runs AVX-512F.
static inline int nn_cpu_avx512f(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}

// Lanes 0 .. n-1 (n clipped to 0 .. 16).
static inline __mmask16 nn_lanes(int n) {
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

// p[0 .. 32) as two vectors, of which only the first `avail` floats are read (the rest of a row
// that ends sooner): zeros in the lanes past it.
__attribute__((target("avx512f"), always_inline))
static inline void nn_load32(const float *p, int avail, __m512 *lo, __m512 *hi) {
    *lo = _mm512_maskz_loadu_ps(nn_lanes(avail), p);
    *hi = _mm512_maskz_loadu_ps(nn_lanes(avail - 16), p + 16);
}

#endif
