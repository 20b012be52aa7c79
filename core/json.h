// A small JSON reader (RFC 8259) for safetensors headers, dataset lists and config files.
#ifndef OODSEG_CORE_JSON_H
#define OODSEG_CORE_JSON_H

#include <stdint.h>
#include <stddef.h>
#include "err.h"

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json {
    json_type type;
    double num;            // JSON_NUMBER (and JSON_BOOL as 0/1)
    int64_t i64;           // JSON_NUMBER when it is an integer that fits
    char *str;             // JSON_STRING (unescaped, NUL-terminated, UTF-8)
    int n;                 // JSON_ARRAY / JSON_OBJECT element count
    struct json *items;    // elements (arrays) or values (objects)
    char **keys;           // JSON_OBJECT keys, parallel to items
} json;

// Parses text[0..len). On error returns NULL with OODSEG_E_FORMAT naming `what` and the byte offset.
json *json_parse(const char *text, size_t len, const char *what, err *e);
void json_free(json *j);
const json *json_get(const json *obj, const char *key);   // NULL when absent or not an object

#endif
