// Output files are written to a temporary name beside the target and renamed when complete, so a
// crash or a full disk never leaves a truncated file under the real name.
#ifndef OODSEG_CORE_OUTFILE_H
#define OODSEG_CORE_OUTFILE_H

#include <stdio.h>
#include "err.h"

typedef struct outfile {
    FILE *f;             // write here
    char tmp[4200];
    char path[4096];
    int slot;            // this temporary name's entry in core/interrupt.c's record, or -1
} outfile;

// Creates the temporary file (mode 0644). OODSEG_E_IO naming path on failure.
int outfile_open(outfile *o, const char *path, err *e);
// Closes the file; when ok and every write succeeded, renames it to the target, otherwise removes
// it and sets OODSEG_E_IO naming the target (and what failed). Returns e->code or OODSEG_OK.
int outfile_commit(outfile *o, int ok, err *e);
// Closes and removes the temporary file (an error elsewhere); keeps e as it is.
void outfile_abort(outfile *o);

#endif
