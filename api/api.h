// What the public API's files share: the objects behind the opaque handles of include/oodseg.h,
// and the conversion of an internal error into the caller's status.
#ifndef OODSEG_API_API_H
#define OODSEG_API_API_H

#include "../include/oodseg.h"
#include <stdatomic.h>
#include "../models/model.h"
#include "pipeline.h"

struct oodseg_model {
    model *m;
    char size[64];
    int has_size, want_all;
    atomic_int busy;           // 1 while a call runs the model (api_enter / api_leave)
};

struct oodseg_scorer {
    oodseg_model *om;
    pipeline p;                // borrows the model
    char options_json[2048];
    pipeline_save_opts save;   // what oodseg_maps_save writes (options "pictures", "npy")
};

// The evaluator object's core, and a public object around a finished (merged) core: accessors for
// api/python_support.c, which cannot see the struct of api/evaluate.c.
struct evaluator;
struct evaluator *api_evaluator_core(const oodseg_evaluator *x);
int api_evaluator_wrap(struct evaluator *ev, const char *convention, oodseg_evaluator **out, err *e);

// Copies e into st (when st is not NULL) and returns e->code.
int api_status(const err *e, oodseg_status *st);
// A model (its arena, its scratch) serves one call at a time: a second thread entering while a
// call runs gets OODSEG_E_ARG saying so, never a race. api_leave ends the call.
int api_enter(oodseg_model *om, err *e);
void api_leave(oodseg_model *om);

#endif
