// Multi-head scaled dot-product attention, out_h = softmax(q_h k_h^T * scale) v_h, as a blocked
// kernel with an online softmax (docs/dinov2-segformer.md, "Attention"): the score matrix of a
// head is (n_q, n_kv) — 1,370 x 1,370 for ViT-L at 512x512, 7.5 MB per head — so it is never
// formed. Each work item is one head and ATT_BQ query rows; it walks the keys ATT_BK at a time,
// keeping per query row the running maximum m, the running denominator l and the unnormalised
// output acc (ATT_BQ, d); a new block with a larger maximum rescales l and acc by exp(m_old - m_new).
// Only one (ATT_BQ, ATT_BK) block of scores exists per thread, small enough for L2.
//
// Work items and their key blocks are fixed by (n_q, n_kv) alone and each item runs on one thread
// in a fixed order, so results are bit-identical for any thread count.
#include "nn.h"
#include "prof.h"
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ATT_BQ 64    // query rows per work item
#define ATT_BK 256   // keys per score block: (64, 256) floats = 64 KiB

// exp(x) for x <= 0 (the scores minus their running maximum), vectorisable: x = n ln2 + r with
// |r| <= ln2/2, exp(r) by the Cephes minimax polynomial (relative error ~1 ulp), times 2^n built in
// the exponent bits. x < -87 (including -inf) gives 0: such a weight is below 1e-38 of the row's
// largest, invisible in a float sum. libm's expf would be exact to the same ulp but does not
// vectorise without -ffast-math, and this exp runs n_q * n_kv * heads times per layer.
__attribute__((always_inline)) static inline float exp_nonpos(float x) {
    float xc = x < -87.0f ? -87.0f : x;
    // n = round-to-nearest(x / ln2) by the 1.5 * 2^23 trick (floorf blocks GCC's vectoriser)
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;   // 2^n in the exponent field (n >= -126 here)
    union { int32_t i; float f; } two_n = {.i = bits};
    return p * two_n.f * (float)(x >= -87.0f);   // branch-free, so the loop vectorises
}

// One (bq, bk) block of scores already multiplied by scale: updates m, l and acc (bq, d) of the
// item and overwrites the scores with their weights exp(s - m_new).
// no-trapping-math: lets GCC evaluate both sides of exp_nonpos's clamp for every lane and blend
// (the AVX2 build keeps a branch otherwise); no value changes.
NN_TARGET_CLONES __attribute__((optimize("no-trapping-math")))
static void online_softmax_block(float *s, int bq, int bk, float *m, float *l, float *acc, int d) {
    for (int i = 0; i < bq; i++) {
        float *si = s + (size_t)i * bk;
        float mx = m[i];
        #pragma omp simd reduction(max : mx)
        for (int j = 0; j < bk; j++) mx = si[j] > mx ? si[j] : mx;
        #pragma omp simd
        for (int j = 0; j < bk; j++) si[j] = exp_nonpos(si[j] - mx);
        float sum = 0.0f;
        #pragma omp simd reduction(+ : sum)
        for (int j = 0; j < bk; j++) sum += si[j];
        if (mx != m[i]) {   // the running maximum grew: earlier weights shrink by exp(m_old - m_new)
            float c = exp_nonpos(m[i] - mx);
            l[i] *= c;
            float *ai = acc + (size_t)i * d;
            #pragma omp simd
            for (int t = 0; t < d; t++) ai[t] *= c;
            m[i] = mx;
        }
        l[i] += sum;
    }
}

// One work item: head h, query rows q0 .. q0+bq. scratch: bq*ATT_BK + bq*d + 2*bq floats.
static void attention_item(const float *q, const float *k, const float *v, int n_kv, int heads, int d,
                           float scale, int h, int q0, int bq, float *out, float *scratch) {
    int ld = heads * d;
    float *s = scratch, *acc = s + (size_t)bq * ATT_BK, *m = acc + (size_t)bq * d, *l = m + bq;
    for (int i = 0; i < bq; i++) { m[i] = -INFINITY; l[i] = 0.0f; }
    memset(acc, 0, sizeof(float) * (size_t)bq * d);
    const float *qh = q + (size_t)q0 * ld + (size_t)h * d;
    for (int k0 = 0; k0 < n_kv; k0 += ATT_BK) {
        int bk = n_kv - k0 < ATT_BK ? n_kv - k0 : ATT_BK;
        // s (bq, bk) = scale * q_h[q0:q0+bq] k_h[k0:k0+bk]^T
        nn_sgemm(0, 1, bq, bk, d, scale, qh, ld, k + (size_t)k0 * ld + (size_t)h * d, ld, 0.0f, s, bk);
        online_softmax_block(s, bq, bk, m, l, acc, d);
        // acc (bq, d) += weights (bq, bk) v_h[k0:k0+bk] (bk, d)
        nn_sgemm(0, 0, bq, d, bk, 1.0f, s, bk, v + (size_t)k0 * ld + (size_t)h * d, ld, 1.0f, acc, d);
    }
    for (int i = 0; i < bq; i++) {
        float inv = 1.0f / l[i];
        float *o = out + (size_t)(q0 + i) * ld + (size_t)h * d;
        const float *ai = acc + (size_t)i * d;
        for (int t = 0; t < d; t++) o[t] = ai[t] * inv;
    }
}

int attention_forward(const nn_ctx *ctx, const float *q, const float *k, const float *v, int n_q, int n_kv,
                      int heads, int d, float scale, float *out, err *e) {
    if (n_q <= 0 || n_kv <= 0 || heads <= 0 || d <= 0)
        return err_set(e, OODSEG_E_ARG, "attention: n_q %d, n_kv %d, heads %d, d %d must all be positive",
                       n_q, n_kv, heads, d);
    PROF_FLOP(ctx, 4.0 * heads * n_q * n_kv * d);   // QK^T and PV (the softmax is not counted)
    int qblocks = (n_q + ATT_BQ - 1) / ATT_BQ, items = qblocks * heads;
    int threads = ctx->threads < items ? ctx->threads : items;
    size_t per = (size_t)ATT_BQ * ATT_BK + (size_t)ATT_BQ * d + 2 * ATT_BQ + 16;   // +16: 64-byte steps
    per = (per + 15) & ~(size_t)15;
    float *scratch = err_malloc(e, sizeof(float) * per * (size_t)threads, "attention scratch");
    if (!scratch) return e->code;
    #pragma omp parallel num_threads(threads)
    {
        int me = omp_get_thread_num();
        #pragma omp for schedule(dynamic, 1)
        for (int it = 0; it < items; it++) {
            int h = it / qblocks, q0 = (it % qblocks) * ATT_BQ;
            int bq = n_q - q0 < ATT_BQ ? n_q - q0 : ATT_BQ;
            attention_item(q, k, v, n_kv, heads, d, scale, h, q0, bq, out, scratch + per * (size_t)me);
        }
    }
    free(scratch);
    return OODSEG_OK;
}
