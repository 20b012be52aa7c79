#include "text.h"
#include <string.h>

char *fmt_shape(char *o, size_t n, int ndim, const int64_t *shape) {
    if (!n) return o;
    size_t w = (size_t)snprintf(o, n, "[");
    for (int d = 0; d < ndim && w < n; d++)
        w += (size_t)snprintf(o + w, n - w, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (w < n) snprintf(o + w, n - w, "]");
    return o;
}

// The escape of one byte into e (at most 7 bytes with the NUL); returns its length.
static size_t escape_byte(unsigned char c, char *e) {
    if (c == '"' || c == '\\') { e[0] = '\\'; e[1] = (char)c; e[2] = 0; return 2; }
    if (c == '\n') { memcpy(e, "\\n", 3); return 2; }
    if (c == '\t') { memcpy(e, "\\t", 3); return 2; }
    if (c < 0x20) return (size_t)snprintf(e, 7, "\\u%04x", c);
    e[0] = (char)c; e[1] = 0;
    return 1;
}

int json_append_str(char *buf, size_t cap, const char *s) {
    size_t n0 = strlen(buf), n = n0;
    char esc[8];
    if (n + 2 >= cap) return -1;
    buf[n++] = '"';
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        size_t l = escape_byte(*p, esc);
        if (n + l + 2 > cap) { buf[n0] = 0; return -1; }
        memcpy(buf + n, esc, l);
        n += l;
    }
    buf[n++] = '"';
    buf[n] = 0;
    return 0;
}

void json_write_str(FILE *f, const char *s) {
    char esc[8];
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        escape_byte(*p, esc);
        fputs(esc, f);
    }
    fputc('"', f);
}
