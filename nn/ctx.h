// The execution context: how many threads and which device every op, model forward and OoD
// method of one caller uses. It is passed explicitly, never read from process-wide state, so two
// models with different contexts can run in two host threads at the same time and nothing in the
// library changes a setting of the host process (OpenMP ICVs, BLAS threads, malloc policy).
#ifndef OODSEG_NN_CTX_H
#define OODSEG_NN_CTX_H

typedef enum { NN_DEVICE_CPU = 0 } nn_device;
struct nn_prof;

// The arithmetic of the GEMMs on weights (convs' 1x1 and im2col paths, linear layers): fp32, or
// bf16 operands with fp32 accumulation (nn/gemm_bf16.h). The other ops are fp32 either way.
typedef enum { NN_FP32 = 0, NN_BF16 = 1 } nn_precision;

// Tests: how bf16 GEMMs run. AUTO: vdpbf16ps; SCALAR: the scalar reference (same bits);
// NO_CPU: as if the CPU had no AVX512-BF16 (the scalar reference, and nn_precision_check refuses).
enum { NN_BF16_AUTO = 0, NN_BF16_REF_SCALAR = 1, NN_BF16_REF_NO_CPU = 2 };

struct nn_bf16_weights;

typedef struct nn_ctx {
    int threads;         // >= 1: the team size of every parallel region run for this context
    nn_device device;    // where tensors live and ops run; the CPU is the only backend today
    int conv_im2col;     // tests and benches: 1 runs every non-depthwise conv as im2col + sgemm
                         // (0, the default: the direct kernel where it wins)
    int conv_winograd;   // 3x3 stride-1 convs by Winograd F(4,3): 1 (default) where it wins (wide
                         // convs), 0 never, 2 every such conv (tests); conv_im2col 1 overrides it
    int conv_dw_pack;    // tests: 1 runs depthwise 3x3 convs on the direct kernel's row pack
                         // instead of straight from the input (nn/dwconv_nchw.c), the same bits
    struct nn_prof *prof;   // NULL (the default), or where the models' brackets add up time per
                            // layer family (nn/prof.h; `oodseg bench`)
    nn_precision precision;               // NN_FP32 (the default) or NN_BF16
    int bf16_reference;                   // tests: NN_BF16_AUTO (0) or a reference switch above
    struct nn_bf16_weights *bf16_weights; // a model's packed bf16 weights (model_open makes it for
                                          // a bf16 context, model_close frees it); NULL: per call
} nn_ctx;

// threads <= 0: every core the process may use (omp_get_num_procs()). fp32.
void nn_ctx_init(nn_ctx *c, int threads);

#endif
