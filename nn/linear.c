// Channels-last linear layer as row-chunked sgemm. Chunk bounds depend only on n, so the result is
// the same for any thread count.
#include "nn.h"

#define LINEAR_ROWS 512   // rows per work item: big enough for an efficient sgemm, small for balance

void linear_forward(const nn_ctx *ctx, const float *x, int64_t n, int c_in, const float *W, const float *b,
                    int c_out, float *y) {
    int64_t items = (n + LINEAR_ROWS - 1) / LINEAR_ROWS;
    #pragma omp parallel for schedule(dynamic, 1) num_threads(ctx->threads)
    for (int64_t it = 0; it < items; it++) {
        int64_t r0 = it * LINEAR_ROWS, nr = n - r0 < LINEAR_ROWS ? n - r0 : LINEAR_ROWS;
        float *yr = y + (size_t)r0 * c_out;
        if (b) {
            // beta = 1 on a bias-filled C adds the bias inside the GEMM, in one pass over y.
            for (int64_t r = 0; r < nr; r++)
                for (int o = 0; o < c_out; o++) yr[(size_t)r * c_out + o] = b[o];
        }
        nn_sgemm(0, 1, (int)nr, c_out, c_in, 1.0f, x + (size_t)r0 * c_in, c_in, W, c_in,
                 b ? 1.0f : 0.0f, yr, c_out);
    }
}
