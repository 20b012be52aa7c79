// Errors: one status code plus one message per context. Library code never prints and never exits;
// it fills an `err` and returns the code. The CLI maps codes to exit statuses (see cli/main.c --help).
#ifndef OODSEG_CORE_ERR_H
#define OODSEG_CORE_ERR_H

#include <stddef.h>
#include "../include/oodseg.h"   // the public status codes OODSEG_OK, OODSEG_E_*

typedef struct err {
    int code;          // OODSEG_OK or an OODSEG_E_* code
    char msg[1024];    // what was wrong, where (file, tensor, pixel), and what to do
} err;

// Sets code and a printf-style message; returns code so callers can write `return err_set(e, ...)`.
// e may be NULL (then only the code is returned).
int err_set(err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
// Prefixes the existing message with more context ("loading model.pth: " + old message); returns e->code.
int err_prefix(err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_clear(err *e);
// Short stable name of a code, e.g. "format error".
const char *err_code_name(int code);

// Allocation that reports into err instead of aborting. Returns NULL and sets OODSEG_E_NOMEM
// naming `what` and the size asked for.
void *err_malloc(err *e, size_t n, const char *what);
void *err_calloc(err *e, size_t count, size_t size, const char *what);

#endif
