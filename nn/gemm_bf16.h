// bf16 GEMM (`--precision bf16`): C (M, N) (+)= A (M, K) B (K, N) with bf16 operands and fp32
// accumulation and output, on AVX512-BF16 (vdpbf16ps), single-threaded like nn_sgemm: called from
// the work items of an op's own parallel region.
//
// Operand layouts. vdpbf16ps multiplies bf16 pairs: each 32-bit lane holds (k, k+1), k even, the
// element k in the low half. So K is always padded to even (a zero), and
//   packed rows   (M, KP), KP = ceil(K/2): row i, pair p = (A[i][2p], A[i][2p+1]); a plain
//                 row-major bf16 matrix with K padded to even. The broadcast operand.
//   packed panels (ceil(N/32), KP, 32): panel q, pair p, lane j = (B[2p][32q+j], B[2p+1][32q+j]),
//                 columns past N zero. The vector operand, two zmm per pair.
// Weights are packed once (nn_bf16_weights, below): a conv's (c_out, K) weight as rows (the
// activations, NCHW columns, are packed into panels per call), a linear layer's (c_out, c_in)
// weight as panels of W^T (its channels-last activations are the rows, converted per call).
//
// Rounding: fp32 -> bf16 round to nearest even with denormals to zero (VCVTNE2PS2BF16); each pair
// is two fused multiply-adds into the fp32 sum, k+1 first, denormal results flushed (VDPBF16PS).
// The scalar reference path does the same operations in the same order, so it gives the same bits;
// it runs where the CPU has no AVX512-BF16 (tests only: a model refuses bf16 there, see
// nn_precision_check) and where ctx->bf16_reference asks for it.
#ifndef OODSEG_NN_GEMM_BF16_H
#define OODSEG_NN_GEMM_BF16_H

#include <stddef.h>
#include <stdint.h>
#include "ctx.h"
#include "../core/err.h"

#define NN_BF16_NR 32   // columns per packed panel (two zmm)

// fp32 -> bf16 bits as VCVTNEPS2BF16 rounds (RNE, denormal inputs to signed zero, NaN quieted).
uint16_t nn_bf16_round(float x);
float nn_bf16_to_float(uint16_t h);

// Which layers run bf16 under a bf16 context: those with more than NN_BF16_MIN_OUT outputs. The
// narrow ones are the classifiers that make the logits (ESPNet's and ESPNetv2's 12/20-class
// convs, UperNet's Cityscapes conv_seg) and ESPNet's narrow encoder convs: a negligible share of
// the FLOPs, but the logits are what every OoD method thresholds. Measured on CamVid-OOD with the
// real ESPNet weights (233 images): with the 12-channel convs in bf16, FPR95 moved by up to 0.12
// points against fp32; with them in fp32, every logit method stayed within 0.05. So ESPNet, whose
// convs all have <= 28 outputs (and run mostly on the fp32 direct kernel anyway), runs as in fp32.
// ESPNetv2 keeps its whole decoder in fp32 for the same reason (models/espnetv2.c).
#define NN_BF16_MIN_OUT 32
static inline int nn_bf16_layer(const nn_ctx *ctx, int c_out) {
    return ctx->precision == NN_BF16 && c_out > NN_BF16_MIN_OUT;
}

// 1 when this CPU and OS run AVX512-BF16 (and AVX512-F/BW/VL).
int nn_bf16_cpu(void);
// OODSEG_OK for an fp32 context, or a bf16 one on a CPU with AVX512-BF16; else OODSEG_E_ARG with
// the message a user acts on. ctx->bf16_reference == NN_BF16_REF_NO_CPU simulates a CPU without it.
int nn_precision_check(const nn_ctx *ctx, err *e);
// "fp32" / "bf16"; and the parser of those names (OODSEG_E_ARG naming `what` otherwise).
const char *nn_precision_name(nn_precision p);
int nn_precision_parse(const char *s, const char *what, nn_precision *out, err *e);

// Sizes in uint32 (pairs) of the packed forms, and the packers (fp32 source with row stride ld).
size_t nn_bf16_rows_size(int m, int k);
void nn_bf16_pack_rows(const float *a, int64_t lda, int m, int k, uint32_t *out);
size_t nn_bf16_panels_size(int k, int n);
// Panels of B = W^T from W (n, k) rows (a linear layer's weight).
void nn_bf16_pack_panels_t(const float *w, int64_t ldw, int n, int k, uint32_t *out);

// Weights as rows: C (m, n) (+)= A B; a: packed rows with lda pairs per row, starting at pair
// k0/2 of the layer's rows (k0 even); b: fp32 (k, n), rows ldb apart. accumulate 0: C = A B.
void nn_gemm_bf16_a(const nn_ctx *ctx, int m, int n, int k, const uint32_t *a, int64_t lda,
                    const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate);
// Weights as panels: C (m, n) (+)= A B; a: fp32 (m, k), rows lda apart, converted per K block into
// scratch (nn_gemm_bf16_b_scratch(m) uint32s); b: panels of (k, n) (nn_bf16_pack_panels_t).
// bias (n) or NULL: with accumulate 0, C = bias + A B, each sum starting from its column's bias in
// the accumulator (the bits of C filled with the bias and accumulate 1, without that pass over C).
size_t nn_gemm_bf16_b_scratch(int m);
void nn_gemm_bf16_b(const nn_ctx *ctx, int m, int n, int k, const float *a, int64_t lda,
                    const uint32_t *b, uint32_t *scratch, float *c, int64_t ldc, int accumulate,
                    const float *bias);

// ---- packed weights, once per model (nn/bf16_weights.c) --------------------------------------
// A model's store of packed weights, keyed by the fp32 weight's address and shape: each weight is
// packed on its first bf16 use and kept until the store is freed (the model's close). A model's
// weights never change while it is open, so the key stays valid. Safe to call from several
// threads (a mutex guards the table). ctx->bf16_weights points to it; NULL there (ops called
// outside a model: tests, benches) packs per call.
typedef struct nn_bf16_weights nn_bf16_weights;
typedef enum { NN_BF16_ROWS = 0, NN_BF16_PANELS_T = 1 } nn_bf16_layout;
int nn_bf16_weights_new(nn_bf16_weights **out, err *e);
void nn_bf16_weights_free(nn_bf16_weights *s);
// The packed form of w (rows x cols, row-major) in layout, from the store (packed on first use);
// NULL with e set when memory runs out.
const uint32_t *nn_bf16_weights_get(nn_bf16_weights *s, const float *w, int rows, int cols,
                                    nn_bf16_layout layout, err *e);
// How many weights the store holds (tests: which layers ran in bf16).
size_t nn_bf16_weights_count(nn_bf16_weights *s);
// For an op: the packed w from ctx's store, or, without a store, a fresh packing in *tmp that
// the caller frees. NULL with e set when memory runs out.
const uint32_t *nn_bf16_weights_for(const nn_ctx *ctx, const float *w, int rows, int cols,
                                    nn_bf16_layout layout, uint32_t **tmp, err *e);

#endif
