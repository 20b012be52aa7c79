#include "err.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int err_set(err *e, int code, const char *fmt, ...) {
    if (!e) return code;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

int err_prefix(err *e, const char *fmt, ...) {
    if (!e) return OODSEG_E_INTERNAL;
    char pre[512], old[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    size_t lp = strlen(pre);
    if (lp >= sizeof e->msg) lp = sizeof e->msg - 1;
    memcpy(e->msg, pre, lp);
    size_t lo = strnlen(old, sizeof old - 1);
    if (lo > sizeof e->msg - 1 - lp) lo = sizeof e->msg - 1 - lp;
    memcpy(e->msg + lp, old, lo);
    e->msg[lp + lo] = 0;
    return e->code;
}

void err_clear(err *e) {
    if (e) { e->code = OODSEG_OK; e->msg[0] = 0; }
}

const char *err_code_name(int code) {
    switch (code) {
    case OODSEG_OK: return "ok";
    case OODSEG_E_ARG: return "bad argument";
    case OODSEG_E_IO: return "i/o error";
    case OODSEG_E_FORMAT: return "format error";
    case OODSEG_E_MODEL: return "model mismatch";
    case OODSEG_E_NOMEM: return "out of memory";
    case OODSEG_E_DATA: return "dataset error";
    default: return "internal error";
    }
}

void *err_malloc(err *e, size_t n, const char *what) {
    void *p = malloc(n ? n : 1);
    if (!p) err_set(e, OODSEG_E_NOMEM, "out of memory allocating %zu bytes for %s", n, what);
    return p;
}

void *err_calloc(err *e, size_t count, size_t size, const char *what) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) err_set(e, OODSEG_E_NOMEM, "out of memory allocating %zu x %zu bytes for %s", count, size, what);
    return p;
}
