#include "ctx.h"
#include <omp.h>
#include <stddef.h>

void nn_ctx_init(nn_ctx *c, int threads) {
    if (threads <= 0) threads = omp_get_num_procs();
    c->threads = threads < 1 ? 1 : threads;
    c->device = NN_DEVICE_CPU;
    c->conv_im2col = 0;
    c->conv_winograd = 1;
    c->conv_dw_pack = 0;
    c->prof = NULL;
    c->precision = NN_FP32;
    c->bf16_reference = NN_BF16_AUTO;
    c->bf16_weights = NULL;
}
