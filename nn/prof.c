// The layer-family profiler (prof.h): a small stack of open families, each charged the wall time
// while it is the innermost one.
#include "prof.h"
#include <omp.h>
#include <string.h>

void nn_prof_clear(nn_prof *p) { memset(p, 0, sizeof *p); }

// Charges the time since the last event to the innermost open family.
static double charge(nn_prof *p) {
    double now = omp_get_wtime();
    if (p->depth > 0 && p->depth <= PROF_STACK) p->seconds[p->stack[p->depth - 1]] += now - p->since;
    p->since = now;
    return now;
}

void nn_prof_begin(nn_prof *p, nn_prof_family f) {
    charge(p);
    if (p->depth < PROF_STACK) p->stack[p->depth] = f, p->calls[f]++;
    p->depth++;
}

void nn_prof_next(nn_prof *p, nn_prof_family f) {
    charge(p);
    if (p->depth > 0 && p->depth <= PROF_STACK) p->stack[p->depth - 1] = f, p->calls[f]++;
}

void nn_prof_end(nn_prof *p) {
    charge(p);
    if (p->depth > 0) p->depth--;
}

void nn_prof_flop(nn_prof *p, double flop) {
    if (p->depth <= 0) p->flop_outside += flop;
    else p->flop[p->stack[(p->depth <= PROF_STACK ? p->depth : PROF_STACK) - 1]] += flop;
}

const char *nn_prof_name(nn_prof_family f) {
    static const char *const names[PROF_FAMILIES] = {
        "stem", "dcn gather", "dcn dw conv", "projections", "attention", "mlp", "norms", "downsample",
        "conv blocks", "ppm", "fpn convs", "decoder", "head", "resize", "slide windows",
        "ood method"};
    return f >= 0 && f < PROF_FAMILIES ? names[f] : "?";
}
