// Small text writers shared by every stage: a tensor shape as "[1, 3, 512, 1024]", and a JSON
// string literal with its escapes. One of each, so that messages and reports agree.
#ifndef OODSEG_CORE_TEXT_H
#define OODSEG_CORE_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

// "[d0, d1, ...]" into o (always NUL-terminated, truncated to n). Returns o, so that it can stand
// inside a printf argument list.
char *fmt_shape(char *o, size_t n, int ndim, const int64_t *shape);

// Appends s as a JSON string literal (quotes, backslash escapes, \uXXXX for control bytes) to the
// NUL-terminated text in buf of capacity cap. Returns 0, or -1 when it did not fit (buf is then
// left as it was, never half an escape).
int json_append_str(char *buf, size_t cap, const char *s);
// The same literal written to a stream.
void json_write_str(FILE *f, const char *s);

#endif
