// The floating-point environment of the threads the ops run on. Denormal floats (below 1.2e-38) take
// a microcode assist on x86 that costs ~100 cycles per operation; the released ESPNet weights hold
// ~18,000 of them (dead channels, denormal running_var) and its tiny input scale (+-0.016) makes more
// in the activations, which made an ESPNet forward 2.5x slower. Flush-to-zero + denormals-are-zero
// changes any result by less than 1e-37.
#include "nn.h"
#include <omp.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#define CSR_FTZ_DAZ 0x8040u
#endif

void nn_denormals_off(const nn_ctx *ctx, nn_fpenv *saved) {
    int n = ctx->threads;
    if (n > NN_FPENV_MAX_THREADS) n = NN_FPENV_MAX_THREADS;
    saved->n = n;
#if defined(__SSE__)
    // One region with the ops' team size: libgomp keeps the same pool threads for later regions.
    #pragma omp parallel num_threads(n)
    {
        int t = omp_get_thread_num();
        unsigned csr = _mm_getcsr();
        if (t < NN_FPENV_MAX_THREADS) saved->csr[t] = csr;
        _mm_setcsr(csr | CSR_FTZ_DAZ);
    }
#endif
}

void nn_fpenv_restore(const nn_fpenv *saved) {
#if defined(__SSE__)
    #pragma omp parallel num_threads(saved->n)
    {
        int t = omp_get_thread_num();
        if (t < saved->n) _mm_setcsr(saved->csr[t]);
    }
#else
    (void)saved;
#endif
}
