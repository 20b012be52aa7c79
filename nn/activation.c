// Elementwise activations and the row softmax. Elementwise loops are split statically; each element
// is computed the same way whatever thread does it, so results do not depend on the thread count.
#include "nn.h"
#include <float.h>
#include <math.h>

#define ELEM_MIN_PARALLEL 16384   // below this a parallel region costs more than it saves

void relu_inplace(const nn_ctx *ctx, float *x, int64_t n) {
    #pragma omp parallel for simd schedule(static) num_threads(ctx->threads) if (n >= ELEM_MIN_PARALLEL)
    for (int64_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

// Vector erf in double from glibc's libmvec (pulled in by -lm's linker script; GCC calls the
// _ZGV*_erf variants for this declaration). In double it is accurate far beyond float, so the
// result is the exactly rounded GELU in practice (within 5e-8 of exact in the tests), at ~1.5 ns
// per element instead of ~10 ns for scalar erff. (A rational erf in double, below, is 2x faster,
// but its 2e-9 absolute error near erf = -1 is up to 7 ulp of a float GELU for x < -1.)
double erf(double) __attribute__((simd("notinbranch")));

#define GELU_BLOCK NN_GELU_BLOCK   // fixed blocks (nn.h)

NN_TARGET_CLONES
static void gelu_block(float *x, int64_t n) {
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        x[i] = (float)(0.5 * v * (1.0 + erf(v * M_SQRT1_2)));
    }
}

// erf(z) = z P(z^2) / Q(z^2) on |z| <= 4, clamped beyond (erf(4) rounds to 1 in float): a rational
// least-squares fit to erf on [0, 4], relative error below 2.3e-9 in exact arithmetic.
#define ERF_P(H, t) H(H(H(H(H(H(-1.3300074593081869e-08, t, 4.703991749110108e-06), t, 0.00038037845539866947), \
    t, 0.003852848450592316), t, 0.05433676340063465), t, 0.18522461913807858), t, 1.1283791684780748)
#define ERF_Q(H, t) H(H(H(H(H(6.329621437969485e-05, t, 0.0013092917205144675), t, 0.015471018600241295), \
    t, 0.11398235129619558), t, 0.497484449506975), t, 1.0)
#define HORNER_F(p, t, c) ((float)(p) * (t) + (float)(c))

// After a bf16 GEMM: that rational in float, 4x faster than the double erf above and within
// 1e-6 (1 + |GELU|) of the exact GELU (tests/test_bf16.c; the worst where 1 + erf cancels for
// x < -4, as in PyTorch's float GELU), far below the bf16 rounding of the GEMM whose output it takes.
// (no-trapping-math: GCC then makes the clamp a select instead of a branch, in the AVX2 build too.)
NN_TARGET_CLONES __attribute__((optimize("fp-contract=fast", "no-trapping-math")))
static void gelu_block_bf16(float *x, int64_t n) {
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float v = x[i], z = v * (float)M_SQRT1_2;
        z = z > 4.0f ? 4.0f : z;   // a NaN stays NaN (and so does v)
        z = z < -4.0f ? -4.0f : z;
        float t = z * z;
        x[i] = 0.5f * v * (1.0f + z * ERF_P(HORNER_F, t) / ERF_Q(HORNER_F, t));
    }
}

void gelu_span(float *x, int64_t n) {
    for (int64_t i0 = 0; i0 < n; i0 += GELU_BLOCK) gelu_block(x + i0, n - i0 < GELU_BLOCK ? n - i0 : GELU_BLOCK);
}

void gelu_span_bf16(float *x, int64_t n) {
    for (int64_t i0 = 0; i0 < n; i0 += GELU_BLOCK) gelu_block_bf16(x + i0, n - i0 < GELU_BLOCK ? n - i0 : GELU_BLOCK);
}

void gelu_inplace(const nn_ctx *ctx, float *x, int64_t n) {
    int64_t nb = (n + GELU_BLOCK - 1) / GELU_BLOCK;
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if (n >= ELEM_MIN_PARALLEL)
    for (int64_t b = 0; b < nb; b++) {
        int64_t i0 = b * GELU_BLOCK;
        gelu_block(x + i0, n - i0 < GELU_BLOCK ? n - i0 : GELU_BLOCK);
    }
}

void log_floor_inplace(const nn_ctx *ctx, float *x, int64_t n) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if (n >= ELEM_MIN_PARALLEL)
    for (int64_t i = 0; i < n; i++) x[i] = logf(x[i] > FLT_MIN ? x[i] : FLT_MIN);
}

void sigmoid_inplace(const nn_ctx *ctx, float *x, int64_t n) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if (n >= ELEM_MIN_PARALLEL)
    for (int64_t i = 0; i < n; i++) x[i] = 1.0f / (1.0f + expf(-x[i]));
}

// no-trapping-math: under the default -ftrapping-math GCC will not execute a * v for v >= 0, so the
// select stays a branch (scalar, mispredicted on random signs); as a blend it vectorises.
__attribute__((optimize("no-trapping-math")))
void prelu_span(float *x, int64_t n, float a) {
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = v >= 0.0f ? v : a * v;
    }
}

void prelu_inplace(const nn_ctx *ctx, float *x, int c, int64_t hw, const float *slope) {
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((int64_t)c * hw >= ELEM_MIN_PARALLEL)
    for (int ch = 0; ch < c; ch++) prelu_span(x + (size_t)ch * hw, hw, slope[ch]);
}

double exp(double) __attribute__((simd("notinbranch")));

#define SOFTMAX_BLOCK 1024   // values per vectorised exp pass (rows are often only 9 long)

// rows x group values at v: shift each row by its max, exponentiate the whole block in one vector
// loop (libmvec exp in double: correctly rounded to float in practice), then normalise.
NN_TARGET_CLONES
static void softmax_block(float *v, int64_t rows, int group) {
    for (int64_t r = 0; r < rows; r++) {
        float *p = v + r * group, m = p[0];
        for (int j = 1; j < group; j++) m = p[j] > m ? p[j] : m;
        for (int j = 0; j < group; j++) p[j] -= m;
    }
    int64_t n = rows * group;
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) v[i] = (float)exp((double)v[i]);
    for (int64_t r = 0; r < rows; r++) {
        float *p = v + r * group, s = 0.0f;
        for (int j = 0; j < group; j++) s += p[j];
        float inv = 1.0f / s;
        for (int j = 0; j < group; j++) p[j] *= inv;
    }
}

void softmax_rows_inplace(const nn_ctx *ctx, float *x, int64_t rows, int group) {
    int64_t br = SOFTMAX_BLOCK / group > 0 ? SOFTMAX_BLOCK / group : 1;   // rows per block
    int64_t nb = (rows + br - 1) / br;
    #pragma omp parallel for schedule(static) num_threads(ctx->threads) if (rows * group >= ELEM_MIN_PARALLEL)
    for (int64_t b = 0; b < nb; b++) {
        int64_t r0 = b * br;
        softmax_block(x + r0 * group, rows - r0 < br ? rows - r0 : br, group);
    }
}
