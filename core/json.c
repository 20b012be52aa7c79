// Recursive-descent JSON reader. Inputs come from files we do not control (safetensors headers),
// so every path is bounded: nesting depth, string and number syntax, and the end of the buffer.
#include "json.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 256

typedef struct jp {
    const char *s;
    size_t n, i;
    const char *what;
    err *e;
} jp;

static int jfail(jp *p, const char *msg) {
    return err_set(p->e, OODSEG_E_FORMAT, "%s: bad JSON at byte %zu: %s", p->what, p->i, msg);
}

static void skip_ws(jp *p) {
    while (p->i < p->n) {
        char c = p->s[p->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->i++;
    }
}

static void json_clear(json *j) {
    if (!j) return;
    free(j->str);
    for (int k = 0; k < j->n; k++) {
        json_clear(&j->items[k]);
        if (j->keys) free(j->keys[k]);
    }
    free(j->items);
    free(j->keys);
    memset(j, 0, sizeof *j);
}

void json_free(json *j) {
    if (!j) return;
    json_clear(j);
    free(j);
}

static int hex4(jp *p, unsigned *out) {
    if (p->n - p->i < 4) return jfail(p, "truncated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p->s[p->i + k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return jfail(p, "bad hex digit in \\u escape");
    }
    p->i += 4;
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

// Length of a valid UTF-8 sequence starting at s[0] (at most `left` bytes), or 0 when invalid.
static size_t utf8_len(const unsigned char *s, size_t left) {
    unsigned c = s[0];
    size_t len;
    unsigned cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
    else return 0;
    if (left < len) return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    return len;
}

// Parses a string at p->i (which is on the opening quote) into a fresh NUL-terminated buffer.
static int parse_string(jp *p, char **out) {
    size_t start = ++p->i;
    // The unescaped string is never longer than the escaped one, so one pass to find the end
    // bounds the buffer.
    size_t end = start;
    while (end < p->n && p->s[end] != '"') end += (p->s[end] == '\\') ? 2 : 1;
    if (end >= p->n) { p->i = start - 1; return jfail(p, "unterminated string"); }
    char *o = err_malloc(p->e, end - start + 1, "JSON string");
    if (!o) return p->e ? p->e->code : OODSEG_E_NOMEM;
    size_t w = 0;
    while (p->s[p->i] != '"') {
        unsigned char c = (unsigned char)p->s[p->i];
        if (c < 0x20) { free(o); return jfail(p, "control character in string"); }
        if (c != '\\') {
            size_t len = utf8_len((const unsigned char *)p->s + p->i, p->n - p->i);
            if (!len) { free(o); return jfail(p, "invalid UTF-8 in string"); }
            memcpy(o + w, p->s + p->i, len);
            w += len;
            p->i += len;
            continue;
        }
        p->i++;
        char x = p->s[p->i++];
        switch (x) {
        case '"': o[w++] = '"'; break;
        case '\\': o[w++] = '\\'; break;
        case '/': o[w++] = '/'; break;
        case 'b': o[w++] = '\b'; break;
        case 'f': o[w++] = '\f'; break;
        case 'n': o[w++] = '\n'; break;
        case 'r': o[w++] = '\r'; break;
        case 't': o[w++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (hex4(p, &cp)) { free(o); return p->e ? p->e->code : OODSEG_E_FORMAT; }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (p->n - p->i < 2 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u') {
                    free(o); return jfail(p, "high surrogate without a low surrogate");
                }
                p->i += 2;
                if (hex4(p, &lo)) { free(o); return p->e ? p->e->code : OODSEG_E_FORMAT; }
                if (lo < 0xDC00 || lo > 0xDFFF) { free(o); return jfail(p, "bad low surrogate"); }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                free(o); return jfail(p, "lone low surrogate");
            }
            // 6 escaped bytes always cover the <= 4 bytes written (12 for a surrogate pair).
            w += put_utf8(o + w, cp);
            break;
        }
        default:
            p->i -= 2;
            free(o);
            return jfail(p, "bad escape");
        }
        if (p->i > end) { free(o); return jfail(p, "unterminated string"); }
    }
    p->i++;
    o[w] = 0;
    *out = o;
    return 0;
}

// Out-of-range float-to-int conversion is undefined behaviour, so saturate first.
static int64_t to_i64(double d) {
    if (!(d == d)) return 0;
    if (d >= 9.2e18) return INT64_MAX;
    if (d <= -9.2e18) return INT64_MIN;
    return (int64_t)d;
}

static int parse_number(jp *p, json *j) {
    size_t st = p->i;
    int is_int = 1;
    if (p->i < p->n && p->s[p->i] == '-') p->i++;
    if (p->i >= p->n) return jfail(p, "truncated number");
    if (p->s[p->i] == '0') p->i++;
    else if (p->s[p->i] >= '1' && p->s[p->i] <= '9') {
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    } else return jfail(p, "bad number");
    if (p->i < p->n && p->s[p->i] == '.') {
        is_int = 0;
        p->i++;
        if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') return jfail(p, "digit expected after '.'");
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        is_int = 0;
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
        if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') return jfail(p, "digit expected in exponent");
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    }
    // strtod needs a terminated copy: the buffer may end right after the number.
    char buf[128];
    size_t len = p->i - st;
    j->type = JSON_NUMBER;
    if (len < sizeof buf) {
        memcpy(buf, p->s + st, len);
        buf[len] = 0;
        j->num = strtod(buf, NULL);
        if (is_int) {
            errno = 0;
            long long v = strtoll(buf, NULL, 10);
            j->i64 = errno ? to_i64(j->num) : (int64_t)v;
        } else {
            j->i64 = to_i64(j->num);
        }
    } else {
        // Absurdly long literals are still valid JSON; approximate them.
        char *tmp = err_malloc(p->e, len + 1, "JSON number");
        if (!tmp) return p->e ? p->e->code : OODSEG_E_NOMEM;
        memcpy(tmp, p->s + st, len);
        tmp[len] = 0;
        j->num = strtod(tmp, NULL);
        j->i64 = to_i64(j->num);
        free(tmp);
    }
    return 0;
}

static int match_word(jp *p, const char *w) {
    size_t l = strlen(w);
    if (p->n - p->i < l || memcmp(p->s + p->i, w, l) != 0) return 0;
    p->i += l;
    return 1;
}

static int parse_value(jp *p, json *j, int depth);

static int grow(jp *p, json *j, int *cap, int with_keys) {
    if (j->n < *cap) return 0;
    int nc = *cap ? *cap * 2 : 8;
    json *ni = realloc(j->items, (size_t)nc * sizeof *ni);
    if (!ni) return err_set(p->e, OODSEG_E_NOMEM, "%s: out of memory parsing JSON", p->what);
    j->items = ni;
    if (with_keys) {
        char **nk = realloc(j->keys, (size_t)nc * sizeof *nk);
        if (!nk) return err_set(p->e, OODSEG_E_NOMEM, "%s: out of memory parsing JSON", p->what);
        j->keys = nk;
    }
    *cap = nc;
    return 0;
}

static int parse_container(jp *p, json *j, int depth, int is_obj) {
    char close = is_obj ? '}' : ']';
    j->type = is_obj ? JSON_OBJECT : JSON_ARRAY;
    int cap = 0;
    p->i++;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == close) { p->i++; return 0; }
    for (;;) {
        skip_ws(p);
        if (grow(p, j, &cap, is_obj)) return p->e ? p->e->code : OODSEG_E_NOMEM;
        json *v = &j->items[j->n];
        memset(v, 0, sizeof *v);
        if (is_obj) {
            if (p->i >= p->n || p->s[p->i] != '"') return jfail(p, "object key (a string) expected");
            char *k;
            if (parse_string(p, &k)) return p->e ? p->e->code : OODSEG_E_FORMAT;
            j->keys[j->n] = k;
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') {
                j->n++;   // so json_clear frees the key
                return jfail(p, "':' expected after object key");
            }
            p->i++;
        }
        j->n++;
        if (parse_value(p, v, depth + 1)) return p->e ? p->e->code : OODSEG_E_FORMAT;
        skip_ws(p);
        if (p->i >= p->n) return jfail(p, is_obj ? "unterminated object" : "unterminated array");
        if (p->s[p->i] == ',') { p->i++; continue; }
        if (p->s[p->i] == close) { p->i++; return 0; }
        return jfail(p, is_obj ? "',' or '}' expected" : "',' or ']' expected");
    }
}

static int parse_value(jp *p, json *j, int depth) {
    if (depth > JSON_MAX_DEPTH) return jfail(p, "nesting too deep");
    skip_ws(p);
    if (p->i >= p->n) return jfail(p, "value expected, found end of text");
    char c = p->s[p->i];
    switch (c) {
    case '{': return parse_container(p, j, depth, 1);
    case '[': return parse_container(p, j, depth, 0);
    case '"': j->type = JSON_STRING; return parse_string(p, &j->str);
    case 't': if (match_word(p, "true")) { j->type = JSON_BOOL; j->num = 1; j->i64 = 1; return 0; } break;
    case 'f': if (match_word(p, "false")) { j->type = JSON_BOOL; return 0; } break;
    case 'n': if (match_word(p, "null")) { j->type = JSON_NULL; return 0; } break;
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, j);
    }
    return jfail(p, "unexpected character");
}

json *json_parse(const char *text, size_t len, const char *what, err *e) {
    jp p = { text, len, 0, what ? what : "JSON", e };
    json *j = err_calloc(e, 1, sizeof *j, "JSON root");
    if (!j) return NULL;
    if (parse_value(&p, j, 0)) { json_free(j); return NULL; }
    skip_ws(&p);
    if (p.i != p.n) { jfail(&p, "unexpected text after the value"); json_free(j); return NULL; }
    return j;
}

const json *json_get(const json *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT || !key) return NULL;
    for (int k = 0; k < obj->n; k++)
        if (strcmp(obj->keys[k], key) == 0) return &obj->items[k];
    return NULL;
}
