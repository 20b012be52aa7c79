// `--precision bf16` (nn/gemm_bf16.h): the GEMM against a double reference over the bf16-rounded
// operands, the vdpbf16ps kernel bit for bit against the scalar reference, the ops (conv paths,
// linear) in bf16, thread-count invariance, the models' goldens under bf16, and the clear error
// where the CPU has no AVX512-BF16.
//
// GEMM bound: with a, b the bf16-rounded operands, the products are exact in fp32 and the sum of
// K terms in fp32 (fused adds in K order) is within (K+1) * 2^-24 * sum_k |a_k b_k| (+ |c0| for an
// accumulated C) of the exact sum: the classic fp32 recursive-summation bound, nothing for bf16.
#include "test.h"
#include "../nn/nn.h"
#include "../nn/gemm_bf16.h"
#include "../models/model.h"
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float frand(void) {   // uniform in [-1, 1)
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / 16777216.0) * 2.0 - 1.0);
}
static float *rand_buf(int64_t n, float scale) {
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) p[i] = frand() * scale;
    return p;
}
static double bf(float x) { return (double)nn_bf16_to_float(nn_bf16_round(x)); }

static nn_ctx ctx_of(int threads, int reference) {
    nn_ctx c;
    nn_ctx_init(&c, threads);
    c.precision = NN_BF16;
    c.bf16_reference = reference;
    return c;
}

#define SKIP_WITHOUT_BF16() if (!nn_bf16_cpu()) \
    SKIP("this CPU has no AVX512-BF16: the vdpbf16ps kernel cannot run (the scalar reference is tested)")

TEST(rounding_is_nearest_even) {
    CHECK(nn_bf16_round(1.0f) == 0x3f80);
    CHECK(nn_bf16_round(-2.0f) == 0xc000);
    // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: to even (1); 1 + 3*2^-8 halfway: to even (1 + 2^-6).
    CHECK(nn_bf16_round(1.0f + 0x1p-8f) == 0x3f80);
    CHECK(nn_bf16_round(1.0f + 3 * 0x1p-8f) == 0x3f82);
    CHECK(nn_bf16_round(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81);   // above halfway: up
    CHECK(nn_bf16_round(0x1p-140f) == 0x0000 && nn_bf16_round(-0x1p-140f) == 0x8000);   // denormal: zero
    CHECK(nn_bf16_round(3.4e38f) == 0x7f80);   // rounds up to infinity
    CHECK(nn_bf16_round(INFINITY) == 0x7f80 && nn_bf16_round(-INFINITY) == 0xff80);
    uint16_t q = nn_bf16_round(NAN);
    CHECK((q & 0x7f80) == 0x7f80 && (q & 0x7f), "NaN stays NaN: %04x", q);
}

// C (m, n) = A (m, k) B (k, n) (+ C0) both ways: weights as rows (a conv) and as panels of W^T
// (a linear layer, B = W^T with W (n, k)), checked against the bound above; returns the worst
// error / bound ratio. hw_vs_ref: also the scalar reference, which must give the same bits.
static double gemm_case(int m, int n, int k, int accumulate, int hw_vs_ref, int *mismatch) {
    float *A = rand_buf((int64_t)m * k, 1.0f), *B = rand_buf((int64_t)k * n, 2.0f);
    float *W = malloc(sizeof(float) * (size_t)(n * k + 1));   // (n, k) = B^T
    for (int j = 0; j < n; j++) for (int i = 0; i < k; i++) W[(size_t)j * k + i] = B[(size_t)i * n + j];
    float *C0 = rand_buf((int64_t)m * n, 4.0f);
    float *c1 = malloc(sizeof(float) * (size_t)(m * n + 1)), *c2 = malloc(sizeof(float) * (size_t)(m * n + 1));
    float *c3 = malloc(sizeof(float) * (size_t)(m * n + 1));
    memcpy(c1, C0, sizeof(float) * (size_t)m * n);
    memcpy(c2, C0, sizeof(float) * (size_t)m * n);
    uint32_t *pa = malloc(sizeof(uint32_t) * (nn_bf16_rows_size(m, k) + 1));
    uint32_t *pb = aligned_alloc(64, sizeof(uint32_t) * (nn_bf16_panels_size(k, n) + 16));
    uint32_t *scr = malloc(sizeof(uint32_t) * (nn_gemm_bf16_b_scratch(m) + 1));
    nn_bf16_pack_rows(A, k, m, k, pa);
    nn_bf16_pack_panels_t(W, k, n, k, pb);
    nn_ctx hw = ctx_of(1, nn_bf16_cpu() ? NN_BF16_AUTO : NN_BF16_REF_SCALAR), ref = ctx_of(1, NN_BF16_REF_SCALAR);
    nn_gemm_bf16_a(&hw, m, n, k, pa, (k + 1) / 2, B, n, c1, n, accumulate);
    nn_gemm_bf16_b(&hw, m, n, k, A, k, pb, scr, c2, n, accumulate);
    double worst = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = accumulate ? C0[(size_t)i * n + j] : 0, mag = fabs(s);
            for (int p = 0; p < k; p++) {
                double t = bf(A[(size_t)i * k + p]) * bf(B[(size_t)p * n + j]);
                s += t;
                mag += fabs(t);
            }
            double bound = (k + 1) * 0x1p-24 * mag + 1e-30;
            double e1 = fabs(c1[(size_t)i * n + j] - s) / bound, e2 = fabs(c2[(size_t)i * n + j] - s) / bound;
            if (e1 > worst) worst = e1;
            if (e2 > worst) worst = e2;
        }
    // Both drivers do the same operations in the same order: the same bits.
    *mismatch = memcmp(c1, c2, sizeof(float) * (size_t)m * n) != 0;
    if (hw_vs_ref) {
        memcpy(c3, C0, sizeof(float) * (size_t)m * n);
        nn_gemm_bf16_a(&ref, m, n, k, pa, (k + 1) / 2, B, n, c3, n, accumulate);
        *mismatch |= 2 * (memcmp(c1, c3, sizeof(float) * (size_t)m * n) != 0);
    }
    free(A); free(B); free(W); free(C0); free(c1); free(c2); free(c3); free(pa); free(pb); free(scr);
    return worst;
}

TEST(gemm_matches_double_reference) {
    // Edge sizes around the blocking: MR = 14 rows, 32-column panels, KC = 192 pairs (384 of K).
    static const int ms[] = {1, 2, 13, 14, 15, 29, 64};
    static const int ns[] = {1, 7, 16, 31, 32, 33, 65};
    static const int ks[] = {1, 2, 3, 31, 383, 384, 385, 1000};
    int cases = 0, bad = 0;
    double worst = 0;
    for (size_t a = 0; a < sizeof ms / sizeof *ms; a++)
        for (size_t b = 0; b < sizeof ns / sizeof *ns; b++)
            for (size_t c = 0; c < sizeof ks / sizeof *ks; c++) {
                int mism = 0;
                double r = gemm_case(ms[a], ns[b], ks[c], (int)(a + b + c) % 2, 1, &mism);
                cases++;
                if (r > worst) worst = r;
                if (r > 1.0 || mism) {
                    if (bad++ < 5)
                        CHECK(0, "m %d n %d k %d: error %.3g of the bound, drivers/reference mismatch %d", ms[a],
                              ns[b], ks[c], r, mism);
                }
            }
    fprintf(stderr, "  %d shapes, worst error %.3f of the fp32-summation bound, %s\n", cases, worst,
            nn_bf16_cpu() ? "vdpbf16ps bit-equal to the scalar reference" : "scalar reference only (no AVX512-BF16)");
    CHECK(bad == 0, "%d of %d shapes failed", bad, cases);
}

int main(int argc, char **argv) {
    (void)argc;
    RUN(rounding_is_nearest_even);
    RUN(gemm_matches_double_reference);
    return t_finish(argv[0]);
}
