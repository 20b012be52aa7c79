// The OoD method table. Each method is one entry: its name, whether it needs feature taps and
// whether it makes a cluster map, the options it reads, and prepare / score / release. Adding a
// method is one new file defining its ood_method_def plus one row in methods.c.
//
// Life of a method: ood_method_open checks the options the method lists against the option table
// (options.c), then calls prepare once, which checks what depends on several options and loads
// files (centroids, a calibrated tau); score then runs per image and reads no file; close calls
// release. An opened method is read-only while scoring: one may score from several host threads.
#ifndef OODSEG_OOD_METHOD_H
#define OODSEG_OOD_METHOD_H

#include "../nn/ctx.h"
#include "ood.h"

enum { OOD_NEEDS_TAPS = 1u, OOD_MAKES_CLUSTERS = 2u };

typedef struct ood_method_def {
    const char *name;        // "kmeans"
    const char *summary;     // one line for --help and the README
    unsigned flags;          // OOD_NEEDS_TAPS | OOD_MAKES_CLUSTERS
    const char *options;     // comma list of the option names it reads, e.g. "k,n-init,max-iter,..."
    // Checks options beyond the table's ranges and loads files once; *state: what score needs
    // (NULL allowed). NULL prepare: nothing to check or load.
    int (*prepare)(const ood_options *o, void **state, err *e);
    // score: in->h * in->w floats. aux: filled by OOD_MAKES_CLUSTERS methods when not NULL.
    int (*score)(const nn_ctx *ctx, const void *state, const ood_options *o, const ood_input *in,
                 float *score, ood_aux *aux, err *e);
    void (*release)(void *state);   // NULL: state needs no release
} ood_method_def;

int ood_method_count(void);
const ood_method_def *ood_method_at(int i);
// Case-insensitive; the error lists every name.
const ood_method_def *ood_method_find(const char *name, err *e);

typedef struct ood_method ood_method;   // an opened method: def + copy of the options + state
// o NULL: defaults. Errors: unknown name, an option out of range, a file that cannot be loaded.
int ood_method_open(const char *name, const ood_options *o, ood_method **out, err *e);
// Checks the input (taps present when the method needs them), then scores. score: in->h * in->w
// floats; aux may be NULL.
int ood_method_score(const ood_method *m, const nn_ctx *ctx, const ood_input *in, float *score,
                     ood_aux *aux, err *e);
const ood_method_def *ood_method_def_of(const ood_method *m);
const ood_options *ood_method_options(const ood_method *m);
void ood_method_close(ood_method *m);   // NULL is fine

#endif
