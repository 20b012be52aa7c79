// The ops, one family per file: conv.c, linear.c, norm.c, activation.c, pool.c, resize.c, dcnv3.c,
// layout.c, attention.c, resize_bicubic.c, swiglu.c, pad.c, flip.c. Batch is always 1. Unless a function says channels-last, a feature map is NCHW:
// x[c*H*W + y*W + x].
//
// Threads: OpenMP at the op level. Every op that runs parallel work takes the context first and runs
// its regions with num_threads(ctx->threads); nothing reads or sets process-wide thread state. BLAS
// (OpenBLAS, OpenMP build) is always called single-threaded from inside our parallel regions
// (nn_sgemm), on work chunks whose boundaries do not depend on the thread count, so every op gives
// bit-identical results for any thread count. Functions that may allocate scratch memory take an
// `err` and return OODSEG_OK or OODSEG_E_NOMEM.
#ifndef OODSEG_NN_H
#define OODSEG_NN_H

#include <stdint.h>
#include "../core/err.h"
#include "tensor.h"
#include "ctx.h"
#include "simd.h"

// ---- gemm.c --------------------------------------------------------------------------------
// Row-major C = alpha * op(A) op(B) + beta * C (cblas_sgemm's arguments), on the calling thread
// only. Meant for the body of an op's own parallel region; called outside any region it opens a
// one-thread region itself, so it never runs BLAS threads and never changes process state.
void nn_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc);

// ---- conv.c --------------------------------------------------------------------------------
// Conv2d with PyTorch semantics: zero padding `pad` on all sides, dilation, groups.
// Output size floor((H + 2*pad - dilation*(k-1) - 1)/stride) + 1. General convs run as
// im2col + sgemm per group; 1x1 stride-1 convs as a plain GEMM; depthwise convs (groups == c_in
// == c_out) as a direct loop.
typedef struct conv2d {
    int c_in, c_out, k, stride, pad, dilation, groups;   // square kernels only
    float *weight;   // (c_out, c_in/groups, k, k)
    float *bias;     // (c_out) or NULL
    int owned;       // 1 when weight/bias were allocated here (BN folding), freed by conv2d_free
    float *winograd_u;   // (36, c_out, c_in) Winograd weights (conv2d_winograd_prepare) or NULL;
                         // owned, freed by conv2d_free and conv2d_fold_bn (which changes weight)
} conv2d;

int conv2d_out_size(int in, int k, int stride, int pad, int dilation);
// The nominal FLOPs of c on an ho x wo output (nn/prof.h): 2 per multiply-add of the direct conv.
double conv2d_flop(const conv2d *c, int ho, int wo);
// Depthwise 3x3 (stride 1 or 2) straight from the NCHW input with AVX-512 masked loads
// (nn/dwconv_nchw.c): conv2d_forward's path for such convs where the CPU has AVX-512, the bits of
// the direct kernel's. slope: PReLU per channel or NULL.
int dwconv3x3_nchw_available(void);
void dwconv3x3_nchw(const nn_ctx *ctx, const conv2d *c, const float *x, int h, int w, const float *slope,
                    float *y, int ho, int wo);
// n such convs of the same x (same output size, n <= DW_MANY_MAX) in one parallel region; slope:
// NULL, or conv k's PReLU (or NULL) at slope[k].
#define DW_MANY_MAX 8
void dwconv3x3_nchw_many(const nn_ctx *ctx, const conv2d *const *c, int n, const float *const *slope, const float *x,
                         int h, int w, float *const *y, int ho, int wo);
// y[k] = conv c[k] of the same x, for k < n (n <= DW_MANY_MAX): one parallel region when every c[k]
// takes the depthwise path from the input (ESPNetv2's EESP branches, all dilations of one map),
// else conv2d_forward one after another; bit-identical to the n calls either way.
int conv2d_forward_many(const nn_ctx *ctx, const conv2d *const *c, int n, const float *x, int h, int w,
                        float *const *y, err *e);
// Folds an inference BatchNorm that follows the conv: w' = w*g/sqrt(v+eps), b' = (b-m)*g/sqrt(v+eps)+beta.
// Makes owned copies; the checkpoint's arrays are never written.
int conv2d_fold_bn(conv2d *c, const float *gamma, const float *beta, const float *mean,
                   const float *var, float eps, err *e);
// y: (c_out, Ho, Wo). x and y must not overlap.
int conv2d_forward(const nn_ctx *ctx, const conv2d *c, const float *x, int h, int w, float *y, err *e);
// conv2d_forward then prelu_inplace(y, c_out, Ho*Wo, slope) with the PReLU (slope: (c_out)) applied
// while the output is still in registers or cache; bit-identical to the two calls.
int conv2d_forward_prelu(const nn_ctx *ctx, const conv2d *c, const float *x, int h, int w, const float *slope,
                         float *y, err *e);
// y = PReLU(conv(x) + res) (slope NULL: no PReLU), res of y's shape: ESPNetv2's EESP expansion and
// its residual. The 1x1 GEMM path adds res in its epilogue, on each tile while it is in cache; the
// other paths add it after (add_prelu_inplace). Bit-identical to conv2d_forward then
// add_prelu_inplace.
int conv2d_forward_residual_prelu(const nn_ctx *ctx, const conv2d *c, const float *x, int h, int w,
                                  const float *res, const float *slope, float *y, err *e);
void conv2d_free(conv2d *c);
// ctx->conv_im2col (tests and benches) runs every non-depthwise conv as im2col + sgemm instead of
// the direct kernel.

// ---- dwconv_cl.c ---------------------------------------------------------------------------
// Depthwise 3x3 conv, stride 1, pad 1 (zeros), on a channels-last map: y (h, w, c) = bias +
// sum over the window of wt * x. wt: (3, 3, c), from PyTorch's (c, 1, 3, 3) by
// dwconv3x3_cl_weights; bias: (c) or NULL. Bit-identical to conv2d_forward (its direct kernel:
// taps, then the bias) on the NCHW transpose, for any thread count. x and y must not overlap.
void dwconv3x3_cl(const nn_ctx *ctx, const float *x, int h, int w, int c, const float *wt, const float *bias,
                  float *y);
void dwconv3x3_cl_weights(const float *w, int c, float *wt);   // w: (c, 1, 3, 3) -> wt: (3, 3, c)

// ---- winograd.c ----------------------------------------------------------------------------
// Winograd F(4x4, 3x3) for 3x3, stride 1, dilation 1, groups 1 convs (any pad): conv2d_forward
// takes it for wide ones whose Winograd weights are prepared (see conv.c), or for every such conv
// with ctx->conv_winograd 2, and never with 0. Error: a few 1e-6 of
// sum|w||x| per output (tests/test_winograd.c), about 10x the im2col path's.
int conv2d_winograd_shape(const conv2d *c);
// Caches U = G g G^T in c->winograd_u (replacing an older one); for a conv without that shape, or
// without weights, does nothing. Call it once the weights are final (after conv2d_fold_bn). A conv
// without it runs Winograd only when forced (conv_winograd 2), transforming its weights per call.
int conv2d_winograd_prepare(conv2d *c, err *e);
// y (c_out, ho, wo) from x (c_in, h, w), plus bias, then the PReLU slope (c_out) when not NULL.
int conv2d_winograd_forward(const nn_ctx *ctx, const conv2d *c, const float *x, int h, int w,
                            const float *slope, float *y, int ho, int wo, err *e);
// The same conv on the channel concatenation of n (<= 8) parts, each (c, h, w) at the input size
// (h, w) or smaller and then read through resize_bilinear (align_corners 0): y equals
// conv2d_winograd_forward on the stored concatenation of the upsampled parts, bit for bit, without
// that concatenation in memory (UperNet's fpn_bottleneck: 4x its output). No PReLU.
typedef struct conv_cat_part { const float *x; int c, h, w; } conv_cat_part;
int conv2d_winograd_forward_cat(const nn_ctx *ctx, const conv2d *c, const conv_cat_part *in, int n,
                                int h, int w, float *y, err *e);
// 1 when conv2d_forward runs c by Winograd under ctx (conv2d_winograd_forward_cat is for those).
int conv2d_takes_winograd(const nn_ctx *ctx, const conv2d *c);

// y += conv(x) for a 1x1 stride-1 conv with groups 1 (bias required): per output channel o,
// y[o, p] += ((w[o,0]*x[0,p] + w[o,1]*x[1,p]) + ...) + b[o], the inputs summed in order, then the
// bias. For convs from very few channels (ESPNetv2's input reinforcement from the 3-channel image)
// added to an existing map without a c_out-channel temporary. slope: NULL, or a PReLU per output
// channel applied to the sum.
void conv2d_1x1_accumulate(const nn_ctx *ctx, const conv2d *c, const float *x, int64_t hw, const float *slope,
                           float *y);

// ConvTranspose2d kernel 2, stride 2, pad 0, no bias. weight: (c_in, c_out, 2, 2) (PyTorch layout).
// y[co, 2i+a, 2j+b] = sum_ci x[ci, i, j] * w[ci, co, a, b]; y: (c_out, 2h, 2w).
int conv_transpose2x2_forward(const nn_ctx *ctx, const float *weight, int c_in, int c_out, const float *x, int h,
                              int w, float *y, err *e);

// ---- linear.c ------------------------------------------------------------------------------
// Channels-last linear layer: y[n, c_out] = x[n, c_in] @ W^T + b. W: (c_out, c_in) (PyTorch layout),
// b: (c_out) or NULL. Chunked over rows for threads.
void linear_forward(const nn_ctx *ctx, const float *x, int64_t n, int c_in, const float *W, const float *b,
                    int c_out, float *y);
// linear_forward then GELU (the MLPs' fc1), with GELU applied to each chunk of rows while it is still
// in cache: the hidden layer (4x the width) is written and read once instead of three times. The
// same bits as the two calls when c_out is a multiple of 8 (the chunks then start on GELU's blocks).
// A bf16 layer (nn_bf16_layer) takes gelu_span_bf16's GELU instead.
void linear_gelu_forward(const nn_ctx *ctx, const float *x, int64_t n, int c_in, const float *W, const float *b,
                         int c_out, float *y);

// ---- norm.c --------------------------------------------------------------------------------
// LayerNorm over the channel axis of a channels-last map (n pixels x c), biased variance, in place
// allowed (y == x). eps is 1e-6 in InternImage.
void layernorm_cl(const nn_ctx *ctx, const float *x, int64_t n, int c, const float *gamma, const float *beta,
                  float eps, float *y);
// Inference BatchNorm on NCHW data in place, as scale/shift from the running statistics.
void batchnorm_inplace(const nn_ctx *ctx, float *x, int c, int64_t hw, const float *gamma, const float *beta,
                       const float *mean, const float *var, float eps);
// batchnorm_inplace then prelu_inplace (slope: (c)) in one pass; bit-identical to the two calls.
void batchnorm_prelu_inplace(const nn_ctx *ctx, float *x, int c, int64_t hw, const float *gamma, const float *beta,
                             const float *mean, const float *var, float eps, const float *slope);
// y = channel_shuffle(batchnorm_prelu(x)) (c channels, `groups` groups; x is left as it was):
// batchnorm_prelu_inplace then channel_shuffle in one pass, the same bits.
void batchnorm_prelu_shuffle(const nn_ctx *ctx, const float *x, int c, int64_t hw, int groups, const float *gamma,
                             const float *beta, const float *mean, const float *var, float eps, const float *slope,
                             float *y);
// x: (C, hw) whose channels off .. off + groups*c - 1 are `groups` groups of c. Group g += group
// g - 1 for g = 1 .. groups-1 in turn (a running sum, as ESPNet's and ESPNetv2's hierarchical
// feature fusion adds their branches), then x += res over all C channels when res (C, hw) is not
// NULL (a residual), then batchnorm_prelu_inplace on the C channels: one pass per channel, or per
// channel of a group across the groups, bit-identical to the add_inplace calls followed by
// batchnorm_prelu_inplace.
void groupsum_batchnorm_prelu_inplace(const nn_ctx *ctx, float *x, int C, int off, int groups, int c, int64_t hw,
                                      const float *res, const float *gamma, const float *beta, const float *mean,
                                      const float *var, float eps, const float *slope);

// ---- activation.c ---------------------------------------------------------------------------
void relu_inplace(const nn_ctx *ctx, float *x, int64_t n);
void gelu_inplace(const nn_ctx *ctx, float *x, int64_t n);   // exact erf form
// The same on one thread, in blocks of NN_GELU_BLOCK from x: a span starting at a multiple of
// NN_GELU_BLOCK elements of an array gives the bits gelu_inplace gives there (the vector/scalar
// split of a block never depends on the thread count).
#define NN_GELU_BLOCK 4096
void gelu_span(float *x, int64_t n);
// For the output of a bf16 GEMM (the fused fc1 + GELU of a bf16 layer): a float rational erf,
// within 1e-6 (1 + |GELU|) of the exact GELU, 4x faster (activation.c).
void gelu_span_bf16(float *x, int64_t n);
void sigmoid_inplace(const nn_ctx *ctx, float *x, int64_t n);
// x = log(max(x, FLT_MIN)): probabilities to log-probabilities that stay finite where a
// probability underflowed to 0 (the logits of test-time augmentation, api/pipeline.c).
void log_floor_inplace(const nn_ctx *ctx, float *x, int64_t n);
// PReLU on NCHW: slope per channel (c values).
void prelu_inplace(const nn_ctx *ctx, float *x, int c, int64_t hw, const float *slope);
// PReLU with one slope on n values (one channel; also conv2d's fused epilogue).
void prelu_span(float *x, int64_t n, float a);
// Softmax in place over consecutive groups of `group` values (rows x group).
void softmax_rows_inplace(const nn_ctx *ctx, float *x, int64_t rows, int group);

// ---- pool.c --------------------------------------------------------------------------------
// AvgPool2d(3, stride 2, pad 1), floor mode, count_include_pad = True (always divides by 9).
// y: (c, ceil(h/2), ceil(w/2)).
void avgpool3x3s2_forward(const nn_ctx *ctx, const float *x, int c, int h, int w, float *y);
// adaptive_avg_pool2d with PyTorch bins: start = floor(i*H/oh), end = ceil((i+1)*H/oh).
void adaptive_avgpool_forward(const nn_ctx *ctx, const float *x, int c, int h, int w, float *y, int oh, int ow);

// ---- resize.c ------------------------------------------------------------------------------
// Bilinear resize of an NCHW map, PyTorch F.interpolate semantics, no antialiasing.
// align_corners = 0: src = max((o+0.5)*in/out - 0.5, 0); 1: src = o*(in-1)/(out-1) (0 when out == 1).
void resize_bilinear(const nn_ctx *ctx, const float *x, int c, int h, int w, float *y, int oh, int ow,
                     int align_corners);
// resize_bilinear one row at a time, for ops that read an upsampled map without storing it
// (conv2d_winograd_forward_cat), bit-identical to the rows resize_bilinear stores: the tables of
// one axis (source indices idx (2*out), weights lam (2*out)); a source row p interpolated along x
// into t (ow); and output row oy as vmix(hrow(row yi[2oy]), hrow(row yi[2oy+1]), yl[2oy], yl[2oy+1]).
void resize_bilinear_table(int in, int out, int align_corners, int *idx, float *lam);
void resize_bilinear_hrow(const float *p, const int *xi, const float *xl, int ow, float *t);
void resize_bilinear_vmix(const float *t0, const float *t1, float a0, float a1, int ow, float *out);
// Nearest resize of an int label map (cluster maps): src = floor(o*in/out) (PyTorch 'nearest').
void resize_nearest_i32(const nn_ctx *ctx, const int32_t *x, int h, int w, int32_t *y, int oh, int ow);

// Image resizes, interleaved channels (h, w, c), exactly as the reference libraries do them:
// cv2.resize(..., INTER_LINEAR) on float32 data,
void resize_cv_linear_f32(const nn_ctx *ctx, const float *src, int h, int w, int c, float *dst, int oh, int ow);
// cv2.resize(..., INTER_LINEAR) on uint8 data (OpenCV's 11-bit fixed-point path, rounded),
int resize_cv_linear_u8(const nn_ctx *ctx, const uint8_t *src, int h, int w, int c, uint8_t *dst, int oh, int ow,
                        err *e);
// and PIL Image.resize(..., BILINEAR) on 8-bit images: separable, antialiased when shrinking
// (the filter support widens by the scale), PIL's fixed-point rounding, horizontal pass first.
int resize_pil_bilinear_u8(const nn_ctx *ctx, const uint8_t *src, int h, int w, int c, uint8_t *dst, int oh, int ow,
                           err *e);

// ---- dcnv3.c -------------------------------------------------------------------------------
// The DCNv3 core (kernel 3x3, stride 1, pad 1, dilation 1), channels-last, exactly as the CUDA
// kernel dcnv3_im2col_gpu_kernel: for output pixel (h, w), group g and kernel point p = i*3 + j
// (i: x/column, j: y/row), loc_x = w + (i-1)*s + dx*s, loc_y = h + (j-1)*s + dy*s with
// s = offset_scale; bilinear sample of value[., ., g*D:(g+1)*D] where corners outside the map count
// as zero and the point is skipped unless -1 < loc_y < H and -1 < loc_x < W.
//   value:  (H, W, G*D)      the input_proj output
//   offset: (H, W, G*9*2)    raw offsets, index (g*9 + p)*2 + {0: dx, 1: dy}
//   mask:   (H, W, G*9)      already softmaxed over the 9 points of each group
//   out:    (H, W, G*D)
void dcnv3_core(const nn_ctx *ctx, const float *value, const float *offset, const float *mask, int H, int W, int G,
                int D, float offset_scale, float *out);

// ---- layout.c ------------------------------------------------------------------------------
void nchw_to_nhwc(const nn_ctx *ctx, const float *x, int c, int h, int w, float *y);   // y: (h, w, c)
void nhwc_to_nchw(const nn_ctx *ctx, const float *x, int h, int w, int c, float *y);   // y: (c, h, w)
// Channel shuffle (ShuffleNet): view (groups, c/groups), transpose, flatten. y[j*groups + i] = x[i*(c/groups) + j].
void channel_shuffle(const nn_ctx *ctx, const float *x, int c, int64_t hw, int groups, float *y);
void add_inplace(const nn_ctx *ctx, float *y, const float *x, int64_t n);   // y += x
// y = PReLU(y + x) on (c, hw) maps, slope per channel: add_inplace then prelu_inplace in one pass.
void add_prelu_inplace(const nn_ctx *ctx, float *y, const float *x, int c, int64_t hw, const float *slope);
// Channels-last layer scale: x[i, k] += gamma[k] * y[i, k] for n rows of c (gamma NULL: x += y).
void add_scaled_cl(const nn_ctx *ctx, float *x, const float *y, const float *gamma, int64_t n, int c);
void copy_f32(const nn_ctx *ctx, float *y, const float *x, int64_t n);       // y = x
// The top-left (oh, ow) window of each channel of x (c, h, w): y (c, oh, ow), oh <= h, ow <= w.
void crop_topleft(const nn_ctx *ctx, const float *x, int c, int h, int w, float *y, int oh, int ow);
// y[c, :] *= s[c]
void scale_channels_inplace(const nn_ctx *ctx, float *y, int c, int64_t hw, const float *s);
// mean over H*W per channel: out (c)
void global_avgpool(const nn_ctx *ctx, const float *x, int c, int64_t hw, float *out);

// ---- attention.c ---------------------------------------------------------------------------
// Multi-head scaled dot-product attention, token-major (channels-last): q (n_q, heads*d), k and v
// (n_kv, heads*d), out (n_q, heads*d), head h in columns h*d .. h*d+d-1 of each row;
// out_h = softmax(q_h k_h^T * scale) v_h. Blocked with an online softmax: at most one
// (64, 256) block of scores per thread exists at a time. out must not overlap q, k or v.
// OODSEG_E_ARG for a non-positive size, OODSEG_E_NOMEM when the scratch cannot be allocated.
int attention_forward(const nn_ctx *ctx, const float *q, const float *k, const float *v, int n_q, int n_kv,
                      int heads, int d, float scale, float *out, err *e);

// ---- resize_bicubic.c ----------------------------------------------------------------------
// Bicubic resize of a channels-last map x (h, w, c) to y (oh, ow, c) as PyTorch's
// F.interpolate(mode='bicubic', align_corners=False) called with scale_factor=(scale_h, scale_w):
// src = (o + 0.5)/scale - 0.5 (the given factor, not in/out), cubic convolution with A = -0.75,
// taps clamped to the border. oh, ow are the caller's floor(in * scale).
void resize_bicubic_cl(const nn_ctx *ctx, const float *x, int h, int w, int c, float *y, int oh, int ow,
                       double scale_h, double scale_w);

// ---- swiglu.c ------------------------------------------------------------------------------
// x1[i] = SiLU(x1[i]) * x2[i] (SwiGLU's gate), n values.
void silu_mul_inplace(const nn_ctx *ctx, float *x1, const float *x2, int64_t n);

// ---- pad.c ---------------------------------------------------------------------------------
// y (c, oh, ow) = x (c, h, w) placed at (top, left) in zeros; top + h <= oh, left + w <= ow.
void pad_zero(const nn_ctx *ctx, const float *x, int c, int h, int w, float *y, int top, int left, int oh,
              int ow);

// ---- flip.c --------------------------------------------------------------------------------
// Channels-last (h, w, c): acc[y, q, :] += x[y, w-1-q, :] when flip, else x[y, q, :].
void add_flipped_w_cl(const nn_ctx *ctx, float *acc, const float *x, int h, int w, int c, int flip);

// ---- fpenv.c -------------------------------------------------------------------------------
// Flush-to-zero and denormals-are-zero on the calling thread and the OpenMP threads that ctx's
// regions run on (x86; a no-op elsewhere), saving the previous state; nn_fpenv_restore puts it back. Denormal
// operands are ~100x slower on x86; flushing them changes results by < 1e-37.
#define NN_FPENV_MAX_THREADS 256
typedef struct nn_fpenv { int n; unsigned csr[NN_FPENV_MAX_THREADS]; } nn_fpenv;
void nn_denormals_off(const nn_ctx *ctx, nn_fpenv *saved);
void nn_fpenv_restore(const nn_fpenv *saved);

#endif
