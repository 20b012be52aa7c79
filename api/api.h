// What the public API's files share: the objects behind the opaque handles of include/oodseg.h,
// and the conversion of an internal error into the caller's status.
#ifndef OODSEG_API_API_H
#define OODSEG_API_API_H

#include "../include/oodseg.h"
#include "../models/model.h"
#include "pipeline.h"

struct oodseg_model {
    model *m;
    char size[64];
    int has_size, want_all;
};

struct oodseg_scorer {
    pipeline p;                // borrows the model
    char options_json[2048];
};

// Copies e into st (when st is not NULL) and returns e->code.
int api_status(const err *e, oodseg_status *st);

#endif
