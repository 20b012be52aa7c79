// Analytic FLOPs of a forward pass per layer group (one multiply-add = 2 FLOPs), from the
// architecture's shapes alone, for InternImage + UperNet (other architectures report none): the
// per-group rows of bench/bench_internimage, and the count that tests/test_bench_cmd.c holds the
// ops' own counts to (nn/prof.h; `oodseg bench` reports those, for every model).
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
