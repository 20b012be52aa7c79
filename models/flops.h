// Analytic FLOPs of a forward pass per layer group (one multiply-add = 2 FLOPs), for GFLOP/s in
// `oodseg bench` and bench/bench_internimage. Counted for InternImage + UperNet, where the shapes of
// every group are known from the architecture alone; other architectures report none.
#ifndef OODSEG_MODELS_FLOPS_H
#define OODSEG_MODELS_FLOPS_H

#include "model.h"
#include "../nn/prof.h"

typedef struct flop_row {
    char name[48];          // "stage 2: MLP"
    nn_prof_family family;  // the profiler family whose time the row's work falls in
    double gflop;
} flop_row;

#define FLOP_ROWS_MAX 40

// The rows of m's forward on an h x w input into rows (FLOP_ROWS_MAX); returns how many (0 when
// the architecture is not counted).
int model_flops(const model *m, int h, int w, flop_row *rows);

#endif
