// A restricted pickle machine. It interprets the data opcodes of protocols 0-5 but calls nothing:
// torch tensor rebuilds, torch storage classes and OrderedDict are recognised by name and built
// here; any other global is an opaque value. Calling a dangerous global (os.system, eval, ...)
// refuses the file, naming the global, so a malicious checkpoint is reported rather than skipped.
#include "pickle.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// A pickle of real data needs far fewer objects; the cap bounds memory on hostile input
// (each value is ~260 bytes).
#define PK_MAX_VALUES (4 << 20)

typedef struct pk_run_state {
    pk_vm *vm;
    const unsigned char *b;
    size_t len, pos, op_at;
    const char *where;
    err *e;
    pk_value **st;
    int n, cap;
    int *marks;
    int n_marks, cap_marks;
    pk_value **memo;
    size_t n_memo, memo_count;   // slots allocated; entries set (MEMOIZE's next index)
    size_t start;
    int64_t n_values;
} rs;

const char *pk_kind_name(pk_kind k) {
    static const char *const n[] = { "None", "bool", "int", "int", "float", "str", "bytes", "tuple",
                                     "list", "dict", "set", "global", "storage", "tensor", "object" };
    return (unsigned)k < sizeof n / sizeof n[0] ? n[k] : "?";
}

void pk_init(pk_vm *vm, const char *file) {
    memset(vm, 0, sizeof *vm);
    vm->file = file;
}

void pk_release(pk_vm *vm) {
    pk_value *v = vm->all;
    while (v) {
        pk_value *nx = v->next_alloc;
        free(v->s);
        free(v->mod);
        free(v->name);
        free(v->items);
        free(v->keys);
        free(v);
        v = nx;
    }
    free(vm->storages);
    memset(vm, 0, sizeof *vm);
}

static int fail(rs *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(rs *r, const char *fmt, ...) {
    char m[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    return err_set(r->e, OODSEG_E_FORMAT, "%s: pickle %s: %s (opcode at byte %zu of the file, byte %zu of the pickle)",
                   r->vm->file, r->where, m, r->op_at, r->op_at - r->start);
}

static int oom(rs *r) {
    return err_set(r->e, OODSEG_E_NOMEM, "%s: out of memory reading pickle %s", r->vm->file, r->where);
}

static pk_value *newv(rs *r, pk_kind k) {
    if (++r->n_values > PK_MAX_VALUES) { fail(r, "more than %d objects: not a checkpoint pickle", PK_MAX_VALUES); return NULL; }
    pk_value *v = calloc(1, sizeof *v);
    if (!v) { oom(r); return NULL; }
    v->kind = k;
    v->next_alloc = r->vm->all;
    r->vm->all = v;
    return v;
}

static pk_value *new_bytes(rs *r, pk_kind k, const void *s, size_t n) {
    pk_value *v = newv(r, k);
    if (!v) return NULL;
    v->s = malloc(n + 1);
    if (!v->s) { oom(r); return NULL; }
    if (n) memcpy(v->s, s, n);
    v->s[n] = 0;
    v->slen = n;
    return v;
}

static int push(rs *r, pk_value *v) {
    if (!v) return r->e ? r->e->code : OODSEG_E_NOMEM;
    if (r->n >= 4 * PK_MAX_VALUES) return fail(r, "stack deeper than %d: not a checkpoint pickle", 4 * PK_MAX_VALUES);
    if (r->n == r->cap) {
        int nc = r->cap ? r->cap * 2 : 64;
        pk_value **ns = realloc(r->st, (size_t)nc * sizeof *ns);
        if (!ns) return oom(r);
        r->st = ns;
        r->cap = nc;
    }
    r->st[r->n++] = v;
    return 0;
}

static int add_item(rs *r, pk_value *c, pk_value *k, pk_value *v) {
    if (c->n == c->cap) {
        int nc = c->cap ? c->cap * 2 : 8;
        pk_value **ni = realloc(c->items, (size_t)nc * sizeof *ni);
        if (!ni) return oom(r);
        c->items = ni;
        if (c->kind == PK_DICT) {
            pk_value **nk = realloc(c->keys, (size_t)nc * sizeof *nk);
            if (!nk) return oom(r);
            c->keys = nk;
        }
        c->cap = nc;
    }
    if (c->kind == PK_DICT) c->keys[c->n] = k;
    c->items[c->n++] = v;
    return 0;
}

// Python dict semantics: setting an existing str/int key replaces its value. Picklers never
// write a key twice, so the quadratic search is limited to dicts of a sane size.
static int dict_set(rs *r, pk_value *d, pk_value *k, pk_value *v) {
    for (int i = 0; i < d->n && d->n < 65536; i++) {
        pk_value *o = d->keys[i];
        if (o == k || (o->kind == PK_STR && k->kind == PK_STR && o->slen == k->slen && memcmp(o->s, k->s, k->slen) == 0)
            || (o->kind == PK_INT && k->kind == PK_INT && o->i == k->i)) {
            d->items[i] = v;
            return 0;
        }
    }
    return add_item(r, d, k, v);
}

static int need(rs *r, size_t n) {
    if (r->len - r->pos < n) return fail(r, "truncated: the pickle ends inside an opcode's argument");
    return 0;
}

static uint64_t rd_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; k--) v = (v << 8) | p[k];
    return v;
}

static pk_value *pop(rs *r) {
    int base = r->n_marks ? r->marks[r->n_marks - 1] : 0;
    if (r->n <= base) { fail(r, "stack underflow (corrupt pickle)"); return NULL; }
    return r->st[--r->n];
}

static pk_value *top(rs *r) {
    int base = r->n_marks ? r->marks[r->n_marks - 1] : 0;
    if (r->n <= base) { fail(r, "stack underflow (corrupt pickle)"); return NULL; }
    return r->st[r->n - 1];
}

// The container under a just-popped mark (APPENDS, SETITEMS, ADDITEMS work on it).
static pk_value *below_mark(rs *r, int base) {
    int outer = r->n_marks ? r->marks[r->n_marks - 1] : 0;
    if (base <= outer) { fail(r, "no container below the MARK (corrupt pickle)"); return NULL; }
    return r->st[base - 1];
}

// Pops to the last MARK; the items are r->st[*base .. r->n) until the next push.
static int pop_mark(rs *r, int *base) {
    if (!r->n_marks) return fail(r, "no MARK on the stack (corrupt pickle)");
    *base = r->marks[--r->n_marks];
    return 0;
}

static pk_value *make_seq(rs *r, pk_kind k, pk_value **items, int n) {
    pk_value *v = newv(r, k);
    if (!v) return NULL;
    for (int i = 0; i < n; i++)
        if (add_item(r, v, NULL, items[i])) return NULL;
    return v;
}

static int memo_put(rs *r, uint64_t idx, pk_value *v) {
    // Every memo write costs at least one opcode byte, so a real index is below the pickle's length.
    if (idx > r->len - r->start + 16) return fail(r, "memo index %llu is larger than the pickle", (unsigned long long)idx);
    if (idx >= r->n_memo) {
        size_t nn = r->n_memo ? r->n_memo : 64;
        while (nn <= idx) nn *= 2;
        pk_value **nm = realloc(r->memo, nn * sizeof *nm);
        if (!nm) return oom(r);
        memset(nm + r->n_memo, 0, (nn - r->n_memo) * sizeof *nm);
        r->memo = nm;
        r->n_memo = nn;
    }
    if (!r->memo[idx]) r->memo_count++;
    r->memo[idx] = v;
    return 0;
}

static int memo_get(rs *r, uint64_t idx) {
    if (idx >= r->n_memo || !r->memo[idx]) {
        char b[32];
        snprintf(b, sizeof b, "%llu", (unsigned long long)idx);
        return fail(r, "memo entry %s read before it was written", b);
    }
    return push(r, r->memo[idx]);
}

static int is_global(const pk_value *v, const char *mod, const char *name) {
    return v && v->kind == PK_GLOBAL && strcmp(v->mod, mod) == 0 && strcmp(v->name, name) == 0;
}

static int storage_dtype(const pk_value *g, dtype *t) {
    static const struct { const char *n; dtype t; } m[] = {
        { "FloatStorage", DT_F32 }, { "HalfStorage", DT_F16 }, { "BFloat16Storage", DT_BF16 },
        { "DoubleStorage", DT_F64 }, { "LongStorage", DT_I64 }, { "IntStorage", DT_I32 },
        { "ShortStorage", DT_I16 }, { "CharStorage", DT_I8 }, { "ByteStorage", DT_U8 }, { "BoolStorage", DT_BOOL },
    };
    if (!g || g->kind != PK_GLOBAL || (strcmp(g->mod, "torch") != 0 && strcmp(g->mod, "torch.cuda") != 0)) return 0;
    for (size_t k = 0; k < sizeof m / sizeof m[0]; k++)
        if (strcmp(g->name, m[k].n) == 0) { *t = m[k].t; return 1; }
    return 0;
}

// Globals whose call could run code or touch the system. Anything else unknown is merely opaque.
static int is_dangerous(const pk_value *g) {
    static const char *const mods[] = {
        "os", "posix", "nt", "subprocess", "sys", "shutil", "socket", "pty", "runpy", "importlib", "ctypes",
        "webbrowser", "code", "codeop", "commands", "multiprocessing", "pickle", "_pickle", "marshal",
        "platform", "signal", "asyncio", "pathlib", "tempfile", "io", "_io", "shlex", "glob", "operator",
        "functools", "urllib", "http", "requests", "timeit", "pdb", "bdb", "trace", "threading", "_thread",
        "types", "inspect", "gc", "zipimport", "pkgutil", "ftplib", "smtplib", "telnetlib", "_posixsubprocess",
    };
    static const char *const builtin_names[] = {
        "eval", "exec", "execfile", "compile", "__import__", "getattr", "setattr", "delattr", "open", "input",
        "globals", "locals", "vars", "breakpoint", "apply", "exit", "quit", "help", "reload", "file",
    };
    if (!g || g->kind != PK_GLOBAL) return 0;
    for (size_t k = 0; k < sizeof mods / sizeof mods[0]; k++) {
        size_t l = strlen(mods[k]);
        if (strncmp(g->mod, mods[k], l) == 0 && (g->mod[l] == 0 || g->mod[l] == '.')) return 1;
    }
    if (strcmp(g->mod, "builtins") == 0 || strcmp(g->mod, "__builtin__") == 0 || strcmp(g->mod, "__main__") == 0) {
        for (size_t k = 0; k < sizeof builtin_names / sizeof builtin_names[0]; k++)
            if (strcmp(g->name, builtin_names[k]) == 0) return 1;
    }
    return 0;
}

static pk_value *opaque_from(rs *r, const pk_value *callee) {
    pk_value *v = newv(r, PK_OPAQUE);
    if (!v) return NULL;
    const char *m = "", *n = "";
    if (callee && (callee->kind == PK_GLOBAL || callee->kind == PK_OPAQUE) && callee->mod) { m = callee->mod; n = callee->name; }
    v->mod = strdup(m);
    v->name = strdup(n);
    if (!v->mod || !v->name) { oom(r); return NULL; }
    return v;
}

static int refuse(rs *r, const pk_value *g, const char *how) {
    char full[520];
    snprintf(full, sizeof full, "%s.%s", g->mod, g->name);
    return fail(r, "refusing to %s the global '%s': this checkpoint tries to run code, not load data", how, full);
}

static int get_int(const pk_value *v, int64_t *o) {
    if (!v || (v->kind != PK_INT && v->kind != PK_BOOL)) return 0;
    *o = v->i;
    return 1;
}

// torch._utils._rebuild_tensor(_v2)(storage, storage_offset, size, stride, ...)
static pk_value *rebuild_tensor(rs *r, const pk_value *g, const pk_value *args) {
    char full[520];
    snprintf(full, sizeof full, "%s.%s", g->mod, g->name);
    if (!args || args->kind != PK_TUPLE || args->n < 4) {
        fail(r, "%s called with the wrong arguments", full);
        return NULL;
    }
    const pk_value *s = args->items[0], *sz = args->items[2], *sd = args->items[3];
    if (s->kind != PK_STORAGE) {
        char what[520];
        if (s->kind == PK_OPAQUE) snprintf(what, sizeof what, "an opaque value made by '%s.%s'", s->mod, s->name);
        else snprintf(what, sizeof what, "a %s", pk_kind_name(s->kind));
        fail(r, "a tensor (%s) is built from %s instead of a torch storage", full, what);
        return NULL;
    }
    pk_value *t = newv(r, PK_TENSOR);
    if (!t) return NULL;
    t->storage = (pk_value *)s;
    if (!get_int(args->items[1], &t->offset) || t->offset < 0) { fail(r, "%s: bad storage offset", full); return NULL; }
    if (sz->kind != PK_TUPLE || sd->kind != PK_TUPLE || sz->n != sd->n) { fail(r, "%s: bad size/stride tuples", full); return NULL; }
    if (sz->n > 8) { fail(r, "%s: tensor with more than 8 dimensions", full); return NULL; }
    t->ndim = sz->n;
    for (int d = 0; d < sz->n; d++) {
        if (!get_int(sz->items[d], &t->size[d]) || !get_int(sd->items[d], &t->stride[d]) || t->size[d] < 0 || t->stride[d] < 0) {
            fail(r, "%s: bad size or stride entry", full);
            return NULL;
        }
    }
    return t;
}

// REDUCE / NEWOBJ / INST / OBJ: callee(args). Only data constructors are understood.
static pk_value *call(rs *r, pk_value *callee, pk_value *args) {
    if (callee->kind == PK_GLOBAL) {
        if (is_dangerous(callee)) { refuse(r, callee, "call"); return NULL; }
        if (strcmp(callee->mod, "torch._utils") == 0
            && (strcmp(callee->name, "_rebuild_tensor_v2") == 0 || strcmp(callee->name, "_rebuild_tensor") == 0))
            return rebuild_tensor(r, callee, args);
        if (is_global(callee, "torch._utils", "_rebuild_parameter") || is_global(callee, "torch._utils", "_rebuild_parameter_with_state")) {
            if (args && args->kind == PK_TUPLE && args->n >= 1 && args->items[0]->kind == PK_TENSOR) return args->items[0];
            fail(r, "torch._utils._rebuild_parameter without a tensor");
            return NULL;
        }
        if (is_global(callee, "collections", "OrderedDict") || is_global(callee, "builtins", "dict")
            || is_global(callee, "__builtin__", "dict")) {
            pk_value *d = newv(r, PK_DICT);
            if (!d) return NULL;
            // OrderedDict([(k, v), ...]) appears in older pickles; () in newer ones.
            if (args && args->kind == PK_TUPLE && args->n == 1
                && (args->items[0]->kind == PK_LIST || args->items[0]->kind == PK_TUPLE)) {
                const pk_value *l = args->items[0];
                for (int i = 0; i < l->n; i++) {
                    const pk_value *p = l->items[i];
                    if ((p->kind == PK_TUPLE || p->kind == PK_LIST) && p->n == 2)
                        if (dict_set(r, d, p->items[0], p->items[1])) return NULL;
                }
            }
            return d;
        }
    }
    return opaque_from(r, callee);
}

// BINPERSID: ('storage', <storage class>, key, location, numel[, view metadata])
static pk_value *persistent_load(rs *r, const pk_value *pid) {
    if (!pid || pid->kind != PK_TUPLE || pid->n < 5 || pid->items[0]->kind != PK_STR
        || strcmp(pid->items[0]->s, "storage") != 0) {
        fail(r, "unsupported persistent id (not a torch storage reference)");
        return NULL;
    }
    dtype t;
    const pk_value *cls = pid->items[1], *key = pid->items[2];
    if (!storage_dtype(cls, &t)) {
        char full[520];
        if (cls->kind == PK_GLOBAL) snprintf(full, sizeof full, "%s.%s", cls->mod, cls->name);
        else snprintf(full, sizeof full, "a %s", pk_kind_name(cls->kind));
        fail(r, "unsupported storage type '%s'", full);
        return NULL;
    }
    if (key->kind != PK_STR) { fail(r, "storage key is not a string"); return NULL; }
    if (pid->n >= 6 && pid->items[5]->kind != PK_NONE) {
        fail(r, "storage '%s' is a view of another storage (legacy view metadata), which is not supported", key->s);
        return NULL;
    }
    int64_t numel = -1;
    get_int(pid->items[4], &numel);
    pk_vm *vm = r->vm;
    for (int k = 0; k < vm->n_storages; k++) {
        pk_value *s = vm->storages[k];
        if (strcmp(s->s, key->s) == 0) {
            if (s->dt != t) { fail(r, "storage '%s' is used with two element types", key->s); return NULL; }
            return s;
        }
    }
    pk_value *s = new_bytes(r, PK_STORAGE, key->s, key->slen);
    if (!s) return NULL;
    s->dt = t;
    s->numel = numel;
    s->i = vm->n_storages;   // its index in vm->storages, so readers can keep per-storage data
    if (vm->n_storages == vm->cap_storages) {
        int nc = vm->cap_storages ? vm->cap_storages * 2 : 64;
        pk_value **ns = realloc(vm->storages, (size_t)nc * sizeof *ns);
        if (!ns) { oom(r); return NULL; }
        vm->storages = ns;
        vm->cap_storages = nc;
    }
    vm->storages[vm->n_storages++] = s;
    return s;
}


// A text argument: the bytes up to the next newline (exclusive).
static int read_line(rs *r, const char **s, size_t *n) {
    const unsigned char *nl = memchr(r->b + r->pos, '\n', r->len - r->pos);
    if (!nl) return fail(r, "truncated: no newline after a text argument");
    *s = (const char *)r->b + r->pos;
    *n = (size_t)(nl - (r->b + r->pos));
    r->pos += *n + 1;
    return 0;
}

static pk_value *new_global(rs *r, const char *m, size_t ml, const char *n, size_t nl) {
    pk_value *v = newv(r, PK_GLOBAL);
    if (!v) return NULL;
    v->mod = strndup(m, ml);
    v->name = strndup(n, nl);
    if (!v->mod || !v->name) { oom(r); return NULL; }
    // Text lines may end in \r when written on Windows.
    // (strndup stops at a NUL, so measure what it kept.)
    ml = strlen(v->mod);
    nl = strlen(v->name);
    if (ml && v->mod[ml - 1] == '\r') v->mod[ml - 1] = 0;
    if (nl && v->name[nl - 1] == '\r') v->name[nl - 1] = 0;
    return v;
}

static pk_value *new_int(rs *r, int64_t i) {
    pk_value *v = newv(r, PK_INT);
    if (v) v->i = i;
    return v;
}

// Little-endian two's complement of n bytes; wider than 8 bytes stays as bytes (PK_BIGINT).
static pk_value *new_long(rs *r, const unsigned char *p, size_t n) {
    if (n > 8) return new_bytes(r, PK_BIGINT, p, n);
    uint64_t u = n ? rd_le(p, (int)n) : 0;
    if (n && n < 8 && (p[n - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * n);
    return new_int(r, (int64_t)u);
}

// STRING / UNICODE text forms: quotes stripped, the common backslash escapes decoded.
static pk_value *text_string(rs *r, const char *s, size_t n, int quoted) {
    if (quoted) {
        if (n < 2 || (s[0] != '\'' && s[0] != '"') || s[n - 1] != s[0]) { fail(r, "bad STRING argument"); return NULL; }
        s++;
        n -= 2;
    }
    pk_value *v = new_bytes(r, PK_STR, s, n);
    if (!v) return NULL;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n) {
            char x = s[++i];
            if (x == 'n') c = '\n';
            else if (x == 't') c = '\t';
            else if (x == 'r') c = '\r';
            else if (x == 'x' && i + 2 < n) { char h[3] = { s[i + 1], s[i + 2], 0 }; c = (char)strtol(h, NULL, 16); i += 2; }
            else c = x;
        }
        v->s[w++] = c;
    }
    v->s[w] = 0;
    v->slen = w;
    return v;
}

int pk_run(pk_vm *vm, const unsigned char *buf, size_t len, size_t start, const char *where,
           pk_value **out, size_t *end, err *e) {
    rs R;
    memset(&R, 0, sizeof R);
    rs *r = &R;
    r->vm = vm; r->b = buf; r->len = len; r->pos = start; r->start = start; r->where = where; r->e = e;
    int rc = 0, done = 0, base = 0;
    pk_value *v, *a, *b, *c;
    const char *ls = NULL, *ls2 = NULL;
    size_t ln = 0, ln2 = 0;
    uint64_t n;
    *out = NULL;
    while (!rc && !done) {
        r->op_at = r->pos;
        if (r->pos >= len) { rc = fail(r, "truncated: the pickle ends before its STOP opcode"); break; }
        unsigned op = buf[r->pos++];
        switch (op) {
        case 0x80: /* PROTO */ if (!(rc = need(r, 1))) r->pos++; break;
        case 0x95: /* FRAME */ if (!(rc = need(r, 8))) r->pos += 8; break;
        case '.': /* STOP */
            if (!(v = pop(r))) { rc = OODSEG_E_FORMAT; break; }
            *out = v; done = 1; break;
        case '(': /* MARK */
            if (r->n_marks >= PK_MAX_VALUES) { rc = fail(r, "more than %d nested MARKs", PK_MAX_VALUES); break; }
            if (r->n_marks == r->cap_marks) {
                int nc = r->cap_marks ? r->cap_marks * 2 : 16;
                int *nm = realloc(r->marks, (size_t)nc * sizeof *nm);
                if (!nm) { rc = oom(r); break; }
                r->marks = nm; r->cap_marks = nc;
            }
            r->marks[r->n_marks++] = r->n; break;
        case '0': /* POP */
            if (r->n_marks && r->n == r->marks[r->n_marks - 1]) r->n_marks--;
            else if (!pop(r)) rc = OODSEG_E_FORMAT;
            break;
        case '1': /* POP_MARK */ if (!(rc = pop_mark(r, &base))) r->n = base; break;
        case '2': /* DUP */ rc = (v = top(r)) ? push(r, v) : OODSEG_E_FORMAT; break;
        case 'N': rc = push(r, newv(r, PK_NONE)); break;
        case 0x88: case 0x89: /* NEWTRUE, NEWFALSE */
            if ((v = newv(r, PK_BOOL))) v->i = op == 0x88;
            rc = push(r, v); break;
        case 'K': if (!(rc = need(r, 1))) { rc = push(r, new_int(r, buf[r->pos])); r->pos += 1; } break;
        case 'M': if (!(rc = need(r, 2))) { rc = push(r, new_int(r, (int64_t)rd_le(buf + r->pos, 2))); r->pos += 2; } break;
        case 'J': if (!(rc = need(r, 4))) { rc = push(r, new_int(r, (int32_t)(uint32_t)rd_le(buf + r->pos, 4))); r->pos += 4; } break;
        case 0x8a: case 0x8b: /* LONG1, LONG4 */ {
            int w = op == 0x8a ? 1 : 4;
            if ((rc = need(r, (size_t)w))) break;
            n = rd_le(buf + r->pos, w);
            if (w == 4 && (n & 0x80000000u)) { rc = fail(r, "negative LONG4 length"); break; }
            r->pos += (size_t)w;
            if ((rc = need(r, n))) break;
            rc = push(r, new_long(r, buf + r->pos, n));
            r->pos += n;
            break;
        }
        case 'I': case 'L': /* INT, LONG (text) */ {
            if ((rc = read_line(r, &ls, &ln))) break;
            char t[32];
            if (ln >= sizeof t) { rc = fail(r, "integer literal too long"); break; }
            memcpy(t, ls, ln); t[ln] = 0;
            if (op == 'I' && (strcmp(t, "00") == 0 || strcmp(t, "01") == 0)) {
                if ((v = newv(r, PK_BOOL))) v->i = t[1] == '1';
                rc = push(r, v); break;
            }
            char *ep;
            long long x = strtoll(t, &ep, 10);
            if (ep == t || (*ep && *ep != 'L')) { rc = fail(r, "bad integer literal '%s'", t); break; }
            rc = push(r, new_int(r, x));
            break;
        }
        case 'F': {
            if ((rc = read_line(r, &ls, &ln))) break;
            char t[64];
            if (ln >= sizeof t) { rc = fail(r, "float literal too long"); break; }
            memcpy(t, ls, ln); t[ln] = 0;
            if ((v = newv(r, PK_FLOAT))) v->f = strtod(t, NULL);
            rc = push(r, v); break;
        }
        case 'G': /* BINFLOAT, big-endian */
            if ((rc = need(r, 8))) break;
            n = 0;
            for (int k = 0; k < 8; k++) n = (n << 8) | buf[r->pos + k];
            r->pos += 8;
            if ((v = newv(r, PK_FLOAT))) memcpy(&v->f, &n, 8);
            rc = push(r, v); break;
        case 'X': case 0x8c: case 0x8d: /* BINUNICODE, SHORT_BINUNICODE, BINUNICODE8 */
        case 'T': case 'U': /* BINSTRING, SHORT_BINSTRING */
        case 'B': case 'C': case 0x8e: case 0x96: /* BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8 */ {
            int w = (op == 0x8c || op == 'U' || op == 'C') ? 1 : (op == 0x8d || op == 0x8e || op == 0x96) ? 8 : 4;
            if ((rc = need(r, (size_t)w))) break;
            n = rd_le(buf + r->pos, w);
            if (op == 'T' && (n & 0x80000000u)) { rc = fail(r, "negative BINSTRING length"); break; }
            r->pos += (size_t)w;
            if ((rc = need(r, n))) break;
            int is_str = op == 'X' || op == 0x8c || op == 0x8d || op == 'T' || op == 'U';
            rc = push(r, new_bytes(r, is_str ? PK_STR : PK_BYTES, buf + r->pos, n));
            r->pos += n;
            break;
        }
        case 'S': case 'V': /* STRING, UNICODE (text) */
            if ((rc = read_line(r, &ls, &ln))) break;
            rc = push(r, text_string(r, ls, ln, op == 'S'));
            break;
        case ')': rc = push(r, newv(r, PK_TUPLE)); break;
        case ']': rc = push(r, newv(r, PK_LIST)); break;
        case '}': rc = push(r, newv(r, PK_DICT)); break;
        case 0x8f: rc = push(r, newv(r, PK_SET)); break;
        case 0x85: case 0x86: case 0x87: /* TUPLE1..3 */ {
            int k = (int)op - 0x84;
            base = r->n_marks ? r->marks[r->n_marks - 1] : 0;
            if (r->n - base < k) { rc = fail(r, "stack underflow (corrupt pickle)"); break; }
            v = make_seq(r, PK_TUPLE, r->st + r->n - k, k);
            r->n -= k;
            rc = push(r, v); break;
        }
        case 't': case 'l': case 0x91: /* TUPLE, LIST, FROZENSET */
            if ((rc = pop_mark(r, &base))) break;
            v = make_seq(r, op == 't' ? PK_TUPLE : op == 'l' ? PK_LIST : PK_SET, r->st + base, r->n - base);
            r->n = base;
            rc = push(r, v); break;
        case 'd': /* DICT */
            if ((rc = pop_mark(r, &base))) break;
            if ((r->n - base) % 2) { rc = fail(r, "odd number of items for DICT"); break; }
            if (!(v = newv(r, PK_DICT))) { rc = OODSEG_E_NOMEM; break; }
            for (int k = base; k < r->n && !rc; k += 2) rc = dict_set(r, v, r->st[k], r->st[k + 1]);
            r->n = base;
            if (!rc) rc = push(r, v);
            break;
        case 'a': /* APPEND */
            if (!(a = pop(r)) || !(c = top(r))) { rc = OODSEG_E_FORMAT; break; }
            if (c->kind == PK_LIST) rc = add_item(r, c, NULL, a);
            else if (c->kind != PK_OPAQUE) rc = fail(r, "APPEND to a %s", pk_kind_name(c->kind));
            break;
        case 'e': case 0x90: /* APPENDS, ADDITEMS */
            if ((rc = pop_mark(r, &base))) break;
            if (!(c = below_mark(r, base))) { rc = OODSEG_E_FORMAT; break; }
            if (c->kind == (op == 'e' ? PK_LIST : PK_SET))
                for (int k = base; k < r->n && !rc; k++) rc = add_item(r, c, NULL, r->st[k]);
            else if (c->kind != PK_OPAQUE) rc = fail(r, "%s to a %s", op == 'e' ? "APPENDS" : "ADDITEMS", pk_kind_name(c->kind));
            r->n = base;
            break;
        case 's': /* SETITEM */
            if (!(b = pop(r)) || !(a = pop(r)) || !(c = top(r))) { rc = OODSEG_E_FORMAT; break; }
            if (c->kind == PK_DICT) rc = dict_set(r, c, a, b);
            else if (c->kind != PK_OPAQUE) rc = fail(r, "SETITEM on a %s", pk_kind_name(c->kind));
            break;
        case 'u': /* SETITEMS */
            if ((rc = pop_mark(r, &base))) break;
            if ((r->n - base) % 2) { rc = fail(r, "odd number of items for SETITEMS"); break; }
            if (!(c = below_mark(r, base))) { rc = OODSEG_E_FORMAT; break; }
            if (c->kind == PK_DICT)
                for (int k = base; k < r->n && !rc; k += 2) rc = dict_set(r, c, r->st[k], r->st[k + 1]);
            else if (c->kind != PK_OPAQUE) rc = fail(r, "SETITEMS on a %s", pk_kind_name(c->kind));
            r->n = base;
            break;
        case 'c': /* GLOBAL */
            if ((rc = read_line(r, &ls, &ln)) || (rc = read_line(r, &ls2, &ln2))) break;
            rc = push(r, new_global(r, ls, ln, ls2, ln2));
            break;
        case 0x93: /* STACK_GLOBAL */
            if (!(b = pop(r)) || !(a = pop(r))) { rc = OODSEG_E_FORMAT; break; }
            if (a->kind != PK_STR || b->kind != PK_STR) { rc = fail(r, "STACK_GLOBAL needs two strings"); break; }
            rc = push(r, new_global(r, a->s, a->slen, b->s, b->slen));
            break;
        case 'R': case 0x81: /* REDUCE, NEWOBJ: callee, args */
            if (!(a = pop(r)) || !(c = pop(r))) { rc = OODSEG_E_FORMAT; break; }
            v = call(r, c, a);
            rc = v ? push(r, v) : (e ? e->code : OODSEG_E_FORMAT);
            break;
        case 0x92: /* NEWOBJ_EX: cls, args, kwargs */
            if (!pop(r) || !(a = pop(r)) || !(c = pop(r))) { rc = OODSEG_E_FORMAT; break; }
            v = call(r, c, a);
            rc = v ? push(r, v) : (e ? e->code : OODSEG_E_FORMAT);
            break;
        case 'i': /* INST: class from text lines, args from the mark */
            if ((rc = read_line(r, &ls, &ln)) || (rc = read_line(r, &ls2, &ln2)) || (rc = pop_mark(r, &base))) break;
            a = make_seq(r, PK_TUPLE, r->st + base, r->n - base);
            r->n = base;
            c = new_global(r, ls, ln, ls2, ln2);
            if (!a || !c) { rc = OODSEG_E_NOMEM; break; }
            v = call(r, c, a);
            rc = v ? push(r, v) : (e ? e->code : OODSEG_E_FORMAT);
            break;
        case 'o': /* OBJ: mark, class, args... */
            if ((rc = pop_mark(r, &base))) break;
            if (r->n - base < 1) { rc = fail(r, "OBJ without a class"); break; }
            c = r->st[base];
            a = make_seq(r, PK_TUPLE, r->st + base + 1, r->n - base - 1);
            r->n = base;
            if (!a) { rc = OODSEG_E_NOMEM; break; }
            v = call(r, c, a);
            rc = v ? push(r, v) : (e ? e->code : OODSEG_E_FORMAT);
            break;
        case 'b': /* BUILD: obj.__setstate__(state); only ever ignored, never executed */
            if (!(a = pop(r)) || !(c = top(r))) { rc = OODSEG_E_FORMAT; break; }
            if (c->kind == PK_GLOBAL && is_dangerous(c)) rc = refuse(r, c, "BUILD");
            else if (a->kind == PK_GLOBAL && is_dangerous(a)) rc = refuse(r, a, "BUILD with");
            break;
        case 'Q': /* BINPERSID */
            if (!(a = pop(r))) { rc = OODSEG_E_FORMAT; break; }
            v = persistent_load(r, a);
            rc = v ? push(r, v) : (e ? e->code : OODSEG_E_FORMAT);
            break;
        case 'P': rc = fail(r, "text persistent ids (PERSID) are not torch storages"); break;
        case 'p': case 'g': { /* PUT, GET (text) */
            if ((rc = read_line(r, &ls, &ln))) break;
            char t[32], *ep;
            if (ln >= sizeof t) { rc = fail(r, "memo index too long"); break; }
            memcpy(t, ls, ln); t[ln] = 0;
            unsigned long long idx = strtoull(t, &ep, 10);
            if (ep == t) { rc = fail(r, "bad memo index '%s'", t); break; }
            if (op == 'g') rc = memo_get(r, idx);
            else rc = (v = top(r)) ? memo_put(r, idx, v) : OODSEG_E_FORMAT;
            break;
        }
        case 'q': case 'r': case 'h': case 'j': { /* BINPUT, LONG_BINPUT, BINGET, LONG_BINGET */
            int w = (op == 'q' || op == 'h') ? 1 : 4;
            if ((rc = need(r, (size_t)w))) break;
            n = rd_le(buf + r->pos, w);
            r->pos += (size_t)w;
            if (op == 'h' || op == 'j') rc = memo_get(r, n);
            else rc = (v = top(r)) ? memo_put(r, n, v) : OODSEG_E_FORMAT;
            break;
        }
        case 0x94: /* MEMOIZE */ rc = (v = top(r)) ? memo_put(r, r->memo_count, v) : OODSEG_E_FORMAT; break;
        case 0x82: case 0x83: case 0x84: rc = fail(r, "extension registry opcodes (EXT1/2/4) are not supported"); break;
        case 0x97: rc = fail(r, "out-of-band buffers (NEXT_BUFFER) are not supported"); break;
        case 0x98: /* READONLY_BUFFER */ break;
        default: rc = fail(r, "unknown opcode 0x%02x", op); break;
        }
    }
    if (!rc) *end = r->pos;
    free(r->st);
    free(r->marks);
    free(r->memo);
    return rc;
}

static int str_is(const pk_value *v, const char *s) { return v && v->kind == PK_STR && strcmp(v->s, s) == 0; }

static const pk_value *dict_lookup(const pk_value *d, const char *key) {
    for (int k = 0; d && d->kind == PK_DICT && k < d->n; k++)
        if (str_is(d->keys[k], key)) return d->items[k];
    return NULL;
}

const pk_value *pk_find_state_dict(const pk_value *top) {
    if (!top || top->kind != PK_DICT) return NULL;
    const pk_value *sd = dict_lookup(top, "state_dict");
    if (sd && sd->kind == PK_DICT) return sd;
    // Some training scripts save {'model': state_dict, ...}; accept that only when `top` itself
    // holds no tensors, so a bare state dict with a 'model' entry is not mistaken for one.
    const pk_value *m = dict_lookup(top, "model");
    if (m && m->kind == PK_DICT) {
        int has_tensor = 0;
        for (int k = 0; k < top->n; k++) has_tensor |= top->items[k]->kind == PK_TENSOR;
        if (!has_tensor) return m;
    }
    return top;
}
