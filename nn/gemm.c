// The one BLAS entry of the ops. OpenBLAS's OpenMP build (Debian 0.3.21) picks its thread count per
// call: 1 inside an active parallel region, else omp_get_max_threads() of the calling task. Our ops
// call it from their own regions, where a one-thread team (ctx->threads == 1) is not "active", so
// the task's own nthreads ICV is set to 1 first. That ICV belongs to the region's implicit task and
// ends with it: the host's settings, and OpenBLAS's for the host's own calls, stay as they were
// (tests/test_ops.c checks that a 1-thread context runs BLAS on the calling thread only).
#include "nn.h"
#include <cblas.h>
#include <omp.h>

static void sgemm_here(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                       int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    omp_set_num_threads(1);
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void nn_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc) {
    if (omp_get_level() > 0) {
        sgemm_here(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    // Outside any region the ICV is the host thread's own: set it only inside a region of ours.
    #pragma omp parallel num_threads(1)
    sgemm_here(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
