// Opening an input file: only a regular file is read. A named pipe, a device, a socket or a
// directory given where a file belongs is refused with a message naming it, and opening never
// blocks (a FIFO opened for reading would wait for a writer forever).
#ifndef OODSEG_IO_FILE_H
#define OODSEG_IO_FILE_H

#include <stdint.h>
#include <stdio.h>
#include "../core/err.h"

// A read-only descriptor of the regular file `path`, and its size in *size (may be NULL);
// `what` names the file's role in messages ("checkpoint", "image", ".npy file"). On error -1
// with OODSEG_E_IO.
int io_open_regular(const char *path, const char *what, int64_t *size, err *e);
// The same as a stdio stream ("rb"), or NULL.
FILE *io_fopen_regular(const char *path, const char *what, int64_t *size, err *e);

#endif
