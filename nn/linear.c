// Channels-last linear layer as row-chunked GEMMs: sgemm, or under a bf16 context the bf16 GEMM
// (nn/gemm_bf16.h) with the weight packed once as panels of W^T and the rows converted per call.
// Chunk bounds depend only on n, so the result is the same for any thread count.
#include "nn.h"
#include "gemm_bf16.h"
#include "prof.h"
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define LINEAR_ROWS 512   // rows per work item at most: big enough for an efficient GEMM, small for balance

// Rows per work item for n rows: at most LINEAR_ROWS, a multiple of 16, and, past one item, a count
// of items that is a multiple of 4, so that 2 or 4 threads get equal shares. DINOv2's 1,370 tokens
// made items of 512, 512 and 346 rows: 2 threads took 0.65 of 1 thread's time in its linears (the
// last item ran alone); 4 items of 352 rows share evenly. Depends on n only (the bits do not depend
// on the thread count).
static int64_t linear_rows(int64_t n) {
    int64_t items = (n + LINEAR_ROWS - 1) / LINEAR_ROWS;
    if (items <= 1) return n > 0 ? n : 1;
    items = (items + 3) / 4 * 4;
    return ((n + items - 1) / items + 15) / 16 * 16;
}

// beta = 1 on a bias-filled C adds the bias inside the GEMM, in one pass over y.
static void fill_bias(float *yr, int64_t nr, const float *b, int c_out) {
    for (int64_t r = 0; r < nr; r++) memcpy(yr + (size_t)r * c_out, b, sizeof(float) * (size_t)c_out);
}

// The rows in chunks of linear_rows(n), one GEMM each: sgemm on W, or (pw not NULL) the bf16 GEMM on
// its packed panels with the chunk's rows converted into this thread's part of `scratch`.
static void linear_items(const nn_ctx *ctx, const float *x, int64_t n, int c_in, const float *W, const float *b,
                         int c_out, int gelu, float *y, const uint32_t *pw, uint32_t *scratch, size_t per) {
    const int64_t rows = linear_rows(n), items = (n + rows - 1) / rows;
    #pragma omp parallel for schedule(dynamic, 1) num_threads(ctx->threads)
    for (int64_t it = 0; it < items; it++) {
        int64_t r0 = it * rows, nr = n - r0 < rows ? n - r0 : rows;
        float *yr = y + (size_t)r0 * c_out;
        if (pw) {   // the bias is where the sums start: no pass over yr to fill it
            nn_gemm_bf16_b(ctx, (int)nr, c_out, c_in, x + (size_t)r0 * c_in, c_in, pw,
                           scratch + per * (size_t)omp_get_thread_num(), yr, c_out, 0, b);
        } else {
            if (b) fill_bias(yr, nr, b, c_out);
            nn_sgemm(0, 1, (int)nr, c_out, c_in, 1.0f, x + (size_t)r0 * c_in, c_in, W, c_in,
                     b ? 1.0f : 0.0f, yr, c_out);
        }
        if (gelu && pw) gelu_span_bf16(yr, nr * c_out);
        else if (gelu) gelu_span(yr, nr * c_out);
    }
}

// Output columns per work item when the rows make one item (n <= LINEAR_ROWS: InternImage's last
// stage at 1024x512 has 512 tokens, SegFormer's 256): 4, else 3, else 2 blocks, so 2 threads share
// the layer; c_out (one item) when no split passes. Depends on the shapes only.
// - fp32 (sgemm on W): blocks of a multiple of 16 columns. sgemm sums each output's products in
//   the same order whatever columns surround it, as long as every call takes its packed path:
//   OpenBLAS (0.3.21, AVX-512) runs m * n * k <= 100^3 on its small-matrix kernel, whose
//   transposed-B form sums in another order (tests/test_ops.c: 0 differing values with blocks above
//   that size, thousands below), hence every block's GEMM at least 2 * 10^6 multiply-adds.
// - bf16 (the bf16 GEMM on W's panels of NN_BF16_NR columns): blocks of whole panels, at least 64
//   columns each, so that converting the rows again per block (n x c_in) stays small against the
//   block's products. That GEMM sums each output over K in K order, from its bias, whatever the
//   blocks (gemm_bf16.c), so the bits do not depend on them.
static int linear_cols(int64_t n, int c_in, int c_out, int bf16) {
    const int align = bf16 ? NN_BF16_NR : 16;
    for (int parts = 4; parts >= 2; parts--) {
        const int cols = ((c_out + parts - 1) / parts + align - 1) / align * align, last = c_out - (parts - 1) * cols;
        const int least = last < cols ? last : cols;
        if (last > 0 && (bf16 ? least >= 64 : (double)n * least * c_in >= 2e6)) return cols;
    }
    return c_out;
}


// One item of rows, in blocks of `cols` output columns: sgemm on W, or (pw not NULL) the bf16 GEMM
// on the block's panels with the rows converted into this thread's part of `scratch`. The GELU then
// runs on the whole output in spans from its start, as linear_items runs it on its one item.
static void linear_col_items(const nn_ctx *ctx, const float *x, int64_t n, int c_in, const float *W,
                             const float *b, int c_out, int cols, int gelu, float *y, const uint32_t *pw,
                             uint32_t *scratch, size_t per) {
    const int items = (c_out + cols - 1) / cols;
    const int64_t total = n * c_out, spans = (total + NN_GELU_BLOCK - 1) / NN_GELU_BLOCK;
    const size_t panel = (size_t)((c_in + 1) / 2) * NN_BF16_NR;   // uint32s per panel of W^T
    #pragma omp parallel num_threads(ctx->threads)
    {
        #pragma omp for schedule(dynamic, 1)
        for (int it = 0; it < items; it++) {
            const int j0 = it * cols, nc = c_out - j0 < cols ? c_out - j0 : cols;
            if (pw) {
                nn_gemm_bf16_b(ctx, (int)n, nc, c_in, x, c_in, pw + (size_t)(j0 / NN_BF16_NR) * panel,
                               scratch + per * (size_t)omp_get_thread_num(), y + j0, c_out, 0, b ? b + j0 : NULL);
                continue;
            }
            if (b)
                for (int64_t r = 0; r < n; r++) memcpy(y + (size_t)r * c_out + j0, b + j0, sizeof(float) * (size_t)nc);
            nn_sgemm(0, 1, (int)n, nc, c_in, 1.0f, x, c_in, W + (size_t)j0 * c_in, c_in, b ? 1.0f : 0.0f, y + j0,
                     c_out);
        }
        if (gelu) {
            #pragma omp for schedule(static)
            for (int64_t q = 0; q < spans; q++) {
                const int64_t i0 = q * NN_GELU_BLOCK, len = total - i0 < NN_GELU_BLOCK ? total - i0 : NN_GELU_BLOCK;
                if (pw) gelu_span_bf16(y + i0, len);
                else gelu_span(y + i0, len);
            }
        }
    }
}

static void linear_run(const nn_ctx *ctx, const float *x, int64_t n, int c_in, const float *W, const float *b,
                       int c_out, int gelu, float *y) {
    PROF_FLOP(ctx, 2.0 * n * c_in * c_out);
    if (nn_bf16_layer(ctx, c_out)) {
        err e = {0};
        uint32_t *tmp = NULL;
        const uint32_t *pw = nn_bf16_weights_for(ctx, W, c_out, c_in, NN_BF16_PANELS_T, &tmp, &e);
        size_t per = nn_gemm_bf16_b_scratch(LINEAR_ROWS);
        uint32_t *scratch = pw ? malloc(sizeof(uint32_t) * per * (size_t)ctx->threads) : NULL;
        int done = scratch != NULL;
        const int cols = n <= LINEAR_ROWS ? linear_cols(n, c_in, c_out, 1) : c_out;
        if (done && cols < c_out) linear_col_items(ctx, x, n, c_in, W, b, c_out, cols, gelu, y, pw, scratch, per);
        else if (done) linear_items(ctx, x, n, c_in, W, b, c_out, gelu, y, pw, scratch, per);
        free(scratch);
        free(tmp);
        if (done) return;
        // Out of memory for the bf16 form: the fp32 GEMM gives the layer's result all the same.
    }
    const int cols = n <= LINEAR_ROWS ? linear_cols(n, c_in, c_out, 0) : c_out;
    if (cols < c_out) linear_col_items(ctx, x, n, c_in, W, b, c_out, cols, gelu, y, NULL, NULL, 0);
    else linear_items(ctx, x, n, c_in, W, b, c_out, gelu, y, NULL, NULL, 0);
}

void linear_forward(const nn_ctx *ctx, const float *x, int64_t n, int c_in, const float *W, const float *b,
                    int c_out, float *y) {
    linear_run(ctx, x, n, c_in, W, b, c_out, 0, y);
}

void linear_gelu_forward(const nn_ctx *ctx, const float *x, int64_t n, int c_in, const float *W, const float *b,
                         int c_out, float *y) {
    linear_run(ctx, x, n, c_in, W, b, c_out, 1, y);
}
