// The execution context: how many threads and which device every op, model forward and OoD
// method of one caller uses. It is passed explicitly, never read from process-wide state, so two
// models with different contexts can run in two host threads at the same time and nothing in the
// library changes a setting of the host process (OpenMP ICVs, BLAS threads, malloc policy).
#ifndef OODSEG_NN_CTX_H
#define OODSEG_NN_CTX_H

typedef enum { NN_DEVICE_CPU = 0 } nn_device;

typedef struct nn_ctx {
    int threads;         // >= 1: the team size of every parallel region run for this context
    nn_device device;    // where tensors live and ops run; the CPU is the only backend today
    int conv_im2col;     // tests and benches: 1 runs every non-depthwise conv as im2col + sgemm
                         // (0, the default: the direct kernel where it wins)
    int conv_winograd;   // 3x3 stride-1 convs by Winograd F(4,3): 1 (default) where it wins (wide
                         // convs), 0 never, 2 every such conv (tests); conv_im2col 1 overrides it
} nn_ctx;

// threads <= 0: every core the process may use (omp_get_num_procs()).
void nn_ctx_init(nn_ctx *c, int threads);

#endif
