// bf16 GEMM on AVX512-BF16 (layouts and rounding: gemm_bf16.h).
//
// Blocking (GotoBLAS order, single-threaded): K in blocks of KC pairs; per K block, N in panels
// of 32 columns (KC x 32 pairs = 24 KiB, kept in L1 while every row strip reads it); M in strips
// of MR = 14 rows, the micro-kernel's 14 x 2 zmm accumulators (28 of the 32 registers; two more
// hold the panel's pair of vectors, the A pairs come as embedded broadcasts). The A block
// (M x KC pairs, 384 KiB for M = 512) stays in L2 across the panels. The sum of one output over
// K runs in K order whatever the blocking (the accumulators go through C between K blocks, which
// is exact), so results depend on the shapes only, never on threads.
#include "gemm_bf16.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "avx512.h"

#define KC 192   // pairs per K block
#define MR 14    // rows per micro-kernel strip

// ---- scalar conversions and the reference arithmetic ---------------------------------------------

uint16_t nn_bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) return (uint16_t)((u >> 16) | 0x40u);  // NaN
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);   // zero, denormal: signed zero
    u += 0x7fffu + ((u >> 16) & 1u);   // round to nearest even (overflow rounds to infinity)
    return (uint16_t)(u >> 16);
}

float nn_bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

static uint32_t pair_of(float lo, float hi) {
    return (uint32_t)nn_bf16_round(lo) | (uint32_t)nn_bf16_round(hi) << 16;
}

// One fused multiply-add of vdpbf16ps: denormal inputs are zero, a denormal result is flushed.
static float daz(float x) { return fabsf(x) < FLT_MIN ? copysignf(0.0f, x) : x; }
static float fma_ftz(float a, float b, float c) { return daz(fmaf(daz(a), daz(b), daz(c))); }

// ---- the CPU and the precision option ------------------------------------------------------------

int nn_bf16_cpu(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

static int use_hw(const nn_ctx *ctx) { return ctx->bf16_reference == NN_BF16_AUTO && nn_bf16_cpu(); }

int nn_precision_check(const nn_ctx *ctx, err *e) {
    if (ctx->precision != NN_BF16) return OODSEG_OK;
    if (ctx->bf16_reference == NN_BF16_REF_NO_CPU || !nn_bf16_cpu())
        return err_set(e, OODSEG_E_ARG, "--precision bf16 needs a CPU with AVX512-BF16 (this CPU has none); "
                       "use --precision fp32");
    return OODSEG_OK;
}

const char *nn_precision_name(nn_precision p) { return p == NN_BF16 ? "bf16" : "fp32"; }

int nn_precision_parse(const char *s, const char *what, nn_precision *out, err *e) {
    if (s && !strcmp(s, "fp32")) { *out = NN_FP32; return OODSEG_OK; }
    if (s && !strcmp(s, "bf16")) { *out = NN_BF16; return OODSEG_OK; }
    return err_set(e, OODSEG_E_ARG, "%s '%s': expected fp32 or bf16", what, s ? s : "(null)");
}

// ---- packing ---------------------------------------------------------------------------------------

size_t nn_bf16_rows_size(int m, int k) { return (size_t)m * (size_t)((k + 1) / 2); }

void nn_bf16_pack_rows(const float *a, int64_t lda, int m, int k, uint32_t *out) {
    int kp = (k + 1) / 2;
    for (int i = 0; i < m; i++) {
        const float *r = a + (size_t)i * lda;
        uint32_t *o = out + (size_t)i * kp;
        for (int p = 0; p < kp; p++) o[p] = pair_of(r[2 * p], 2 * p + 1 < k ? r[2 * p + 1] : 0.0f);
    }
}

size_t nn_bf16_panels_size(int k, int n) {
    return (size_t)((n + NN_BF16_NR - 1) / NN_BF16_NR) * (size_t)((k + 1) / 2) * NN_BF16_NR;
}

void nn_bf16_pack_panels_t(const float *w, int64_t ldw, int n, int k, uint32_t *out) {
    int kp = (k + 1) / 2, nq = (n + NN_BF16_NR - 1) / NN_BF16_NR;
    for (int q = 0; q < nq; q++)
        for (int p = 0; p < kp; p++) {
            uint32_t *o = out + ((size_t)q * kp + p) * NN_BF16_NR;
            for (int j = 0; j < NN_BF16_NR; j++) {
                int col = q * NN_BF16_NR + j;
                const float *r = w + (size_t)col * ldw;
                o[j] = col < n ? pair_of(r[2 * p], 2 * p + 1 < k ? r[2 * p + 1] : 0.0f) : 0;
            }
        }
}

#define HW __attribute__((target("avx512f,avx512bf16,avx512bw,avx512vl")))

// One panel of a per-call B: pairs [0, kc) of the fp32 rows b (krows valid rows, ldb apart;
// rows past krows are zero), nr <= 32 valid columns.
HW static void panel_hw(const float *b, int64_t ldb, int krows, int nr, int kc, uint32_t *panel) {
    const __m512i ileave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                            23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    __mmask16 m[2] = {nn_lanes(nr), nn_lanes(nr - 16)};
    for (int p = 0; p < kc; p++) {
        const float *r0 = b + (size_t)(2 * p) * ldb, *r1 = r0 + ldb;
        int has0 = 2 * p < krows, has1 = 2 * p + 1 < krows;
        for (int h = 0; h < 2; h++) {
            __m512 x0 = has0 ? _mm512_maskz_loadu_ps(m[h], r0 + 16 * h) : _mm512_setzero_ps();
            __m512 x1 = has1 ? _mm512_maskz_loadu_ps(m[h], r1 + 16 * h) : _mm512_setzero_ps();
            __m512i bf = (__m512i)_mm512_cvtne2ps_pbh(x1, x0);   // x0 in lanes 0..15, x1 in 16..31
            _mm512_storeu_si512(panel + 32 * p + 16 * h, _mm512_permutexvar_epi16(ileave, bf));
        }
    }
}

static void panel_ref(const float *b, int64_t ldb, int krows, int nr, int kc, uint32_t *panel) {
    for (int p = 0; p < kc; p++)
        for (int j = 0; j < NN_BF16_NR; j++) {
            float x0 = j < nr && 2 * p < krows ? b[(size_t)(2 * p) * ldb + j] : 0.0f;
            float x1 = j < nr && 2 * p + 1 < krows ? b[(size_t)(2 * p + 1) * ldb + j] : 0.0f;
            panel[32 * p + j] = pair_of(x0, x1);
        }
}

// Rows of a per-call A into packed rows: m rows of kcols valid columns (lda apart), as kc pairs each.
HW static void rows_hw(const float *a, int64_t lda, int m, int kcols, int kc, uint32_t *out) {
    for (int i = 0; i < m; i++) {
        const float *r = a + (size_t)i * lda;
        uint32_t *o = out + (size_t)i * kc;
        for (int p = 0; p < kc; p += 16) {
            int c0 = 2 * p;   // 32 columns c0 .. c0+31 make 16 pairs
            __m512 lo, hi;
            nn_load32(r + c0, kcols - c0, &lo, &hi);
            __m512i bf = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);   // in column order: 16 pairs
            _mm512_mask_storeu_epi32(o + p, nn_lanes(kc - p), bf);
        }
    }
}

static void rows_ref(const float *a, int64_t lda, int m, int kcols, int kc, uint32_t *out) {
    for (int i = 0; i < m; i++)
        for (int p = 0; p < kc; p++) {
            const float *r = a + (size_t)i * lda;
            out[(size_t)i * kc + p] = pair_of(2 * p < kcols ? r[2 * p] : 0.0f, 2 * p + 1 < kcols ? r[2 * p + 1] : 0.0f);
        }
}

// ---- micro-kernels ---------------------------------------------------------------------------------

// C (mr, nr) (+)= a (mr rows lda apart, kc pairs) x panel (kc, 32). load: start from C, else 0.
// mr is a constant at each call (the switch below), so acc[][] lives in registers.
HW static inline __attribute__((always_inline)) void kern_hw(const int mr, int kc, const uint32_t *a, int64_t lda,
                                                             const uint32_t *bp, float *c, int64_t ldc, int nr,
                                                             int load, const float *bias) {
    __mmask16 m0 = nn_lanes(nr), m1 = nn_lanes(nr - 16);
    __m512 acc[MR][2];
    __m512 b0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    __m512 b1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
    _Pragma("GCC unroll 14") for (int r = 0; r < mr; r++) {
        acc[r][0] = load ? _mm512_maskz_loadu_ps(m0, c + (size_t)r * ldc) : b0;
        acc[r][1] = load ? _mm512_maskz_loadu_ps(m1, c + (size_t)r * ldc + 16) : b1;
    }
    for (int p = 0; p < kc; p++) {
        __m512bh p0 = (__m512bh)_mm512_loadu_si512(bp + 32 * p);
        __m512bh p1 = (__m512bh)_mm512_loadu_si512(bp + 32 * p + 16);
        _Pragma("GCC unroll 14") for (int r = 0; r < mr; r++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[(size_t)r * lda + p]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], p0, av);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], p1, av);
        }
    }
    _Pragma("GCC unroll 14") for (int r = 0; r < mr; r++) {
        _mm512_mask_storeu_ps(c + (size_t)r * ldc, m0, acc[r][0]);
        _mm512_mask_storeu_ps(c + (size_t)r * ldc + 16, m1, acc[r][1]);
    }
}

HW static void strip_hw(int mr, int kc, const uint32_t *a, int64_t lda, const uint32_t *bp, float *c,
                        int64_t ldc, int nr, int load, const float *bias) {
    switch (mr) {
#define K_(R) case R: kern_hw(R, kc, a, lda, bp, c, ldc, nr, load, bias); break;
    K_(14) K_(13) K_(12) K_(11) K_(10) K_(9) K_(8) K_(7) K_(6) K_(5) K_(4) K_(3) K_(2) K_(1)
#undef K_
    default: break;
    }
}

static void strip_ref(int mr, int kc, const uint32_t *a, int64_t lda, const uint32_t *bp, float *c, int64_t ldc,
                      int nr, int load, const float *bias) {
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) {
            float s = load ? daz(c[(size_t)r * ldc + j]) : bias ? daz(bias[j]) : 0.0f;
            for (int p = 0; p < kc; p++) {
                uint32_t av = a[(size_t)r * lda + p], bv = bp[32 * p + j];
                s = fma_ftz(nn_bf16_to_float((uint16_t)(av >> 16)), nn_bf16_to_float((uint16_t)(bv >> 16)), s);
                s = fma_ftz(nn_bf16_to_float((uint16_t)av), nn_bf16_to_float((uint16_t)bv), s);
            }
            c[(size_t)r * ldc + j] = s;
        }
}

// Every MR-row strip of C's columns [j0, j0+nr) against one panel. The sums start from C (load),
// else from bias (the panel's nr columns) when there is one, else from zero.
static void strips(int hw, int m, int kc, const uint32_t *a, int64_t lda, const uint32_t *bp, float *c,
                   int64_t ldc, int nr, int load, const float *bias) {
    for (int i0 = 0; i0 < m; i0 += MR) {
        int mr = m - i0 < MR ? m - i0 : MR;
        if (hw) strip_hw(mr, kc, a + (size_t)i0 * lda, lda, bp, c + (size_t)i0 * ldc, ldc, nr, load, bias);
        else strip_ref(mr, kc, a + (size_t)i0 * lda, lda, bp, c + (size_t)i0 * ldc, ldc, nr, load, bias);
    }
}

static void zero_c(int m, int n, float *c, int64_t ldc) {
    for (int i = 0; i < m; i++) memset(c + (size_t)i * ldc, 0, sizeof(float) * (size_t)n);
}

// ---- drivers -----------------------------------------------------------------------------------------

void nn_gemm_bf16_a(const nn_ctx *ctx, int m, int n, int k, const uint32_t *a, int64_t lda, const float *b,
                    int64_t ldb, float *c, int64_t ldc, int accumulate) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) { if (!accumulate) zero_c(m, n, c, ldc); return; }
    int hw = use_hw(ctx), kp = (k + 1) / 2;
    _Alignas(64) uint32_t panel[KC * NN_BF16_NR];   // (kc, 32)
    for (int kb = 0; kb < kp; kb += KC) {
        int kc = kp - kb < KC ? kp - kb : KC, krows = k - 2 * kb < 2 * kc ? k - 2 * kb : 2 * kc;
        for (int j0 = 0; j0 < n; j0 += NN_BF16_NR) {
            int nr = n - j0 < NN_BF16_NR ? n - j0 : NN_BF16_NR;
            const float *bs = b + (size_t)(2 * kb) * ldb + j0;
            if (hw) panel_hw(bs, ldb, krows, nr, kc, panel);
            else panel_ref(bs, ldb, krows, nr, kc, panel);
            strips(hw, m, kc, a + kb, lda, panel, c + j0, ldc, nr, accumulate || kb > 0, NULL);
        }
    }
}

size_t nn_gemm_bf16_b_scratch(int m) { return (size_t)(m > 0 ? m : 0) * KC; }

void nn_gemm_bf16_b(const nn_ctx *ctx, int m, int n, int k, const float *a, int64_t lda, const uint32_t *b,
                    uint32_t *scratch, float *c, int64_t ldc, int accumulate, const float *bias) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {   // C = bias, or 0
        if (!accumulate && bias)
            for (int i = 0; i < m; i++) memcpy(c + (size_t)i * ldc, bias, sizeof(float) * (size_t)n);
        else if (!accumulate) zero_c(m, n, c, ldc);
        return;
    }
    int hw = use_hw(ctx), kp = (k + 1) / 2;
    for (int kb = 0; kb < kp; kb += KC) {
        int kc = kp - kb < KC ? kp - kb : KC, kcols = k - 2 * kb < 2 * kc ? k - 2 * kb : 2 * kc;
        if (hw) rows_hw(a + 2 * kb, lda, m, kcols, kc, scratch);   // (m, kc)
        else rows_ref(a + 2 * kb, lda, m, kcols, kc, scratch);
        for (int j0 = 0, q = 0; j0 < n; j0 += NN_BF16_NR, q++) {
            int nr = n - j0 < NN_BF16_NR ? n - j0 : NN_BF16_NR;
            strips(hw, m, kc, scratch, kc, b + ((size_t)q * kp + kb) * NN_BF16_NR, c + j0, ldc, nr,
                   accumulate || kb > 0, bias ? bias + j0 : NULL);
        }
    }
}
