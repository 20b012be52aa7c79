// A restricted pickle machine. It interprets the data opcodes of protocols 0-5 but calls nothing:
// torch tensor rebuilds, torch storage classes and OrderedDict are recognised by name and built
// here; any other global is an opaque value. Calling a dangerous global (os.system, eval, ...)
// refuses the file, naming the global, so a malicious checkpoint is reported rather than skipped.
#include "pickle.h"
#include "../core/memlimit.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Depth caps for the stack and the MARKs (their memory also counts against the file's budget).
#define PK_MAX_VALUES (4 << 20)

// The opcodes of pickle protocols 0-5, with the names of CPython's Lib/pickle.py.
enum {
    // protocols 0 and 1
    OP_MARK = '(', OP_STOP = '.', OP_POP = '0', OP_POP_MARK = '1', OP_DUP = '2', OP_FLOAT = 'F',
    OP_INT = 'I', OP_BININT = 'J', OP_BININT1 = 'K', OP_LONG = 'L', OP_BININT2 = 'M', OP_NONE = 'N',
    OP_PERSID = 'P', OP_BINPERSID = 'Q', OP_REDUCE = 'R', OP_STRING = 'S', OP_BINSTRING = 'T',
    OP_SHORT_BINSTRING = 'U', OP_UNICODE = 'V', OP_BINUNICODE = 'X', OP_APPEND = 'a',
    OP_BUILD = 'b', OP_GLOBAL = 'c', OP_DICT = 'd', OP_EMPTY_DICT = '}', OP_APPENDS = 'e',
    OP_GET = 'g', OP_BINGET = 'h', OP_INST = 'i', OP_LONG_BINGET = 'j', OP_LIST = 'l',
    OP_EMPTY_LIST = ']', OP_OBJ = 'o', OP_PUT = 'p', OP_BINPUT = 'q', OP_LONG_BINPUT = 'r',
    OP_SETITEM = 's', OP_TUPLE = 't', OP_EMPTY_TUPLE = ')', OP_SETITEMS = 'u', OP_BINFLOAT = 'G',
    // protocol 2
    OP_PROTO = 0x80, OP_NEWOBJ = 0x81, OP_EXT1 = 0x82, OP_EXT2 = 0x83, OP_EXT4 = 0x84,
    OP_TUPLE1 = 0x85, OP_TUPLE2 = 0x86, OP_TUPLE3 = 0x87, OP_NEWTRUE = 0x88, OP_NEWFALSE = 0x89,
    OP_LONG1 = 0x8a, OP_LONG4 = 0x8b,
    // protocol 3
    OP_BINBYTES = 'B', OP_SHORT_BINBYTES = 'C',
    // protocol 4
    OP_SHORT_BINUNICODE = 0x8c, OP_BINUNICODE8 = 0x8d, OP_BINBYTES8 = 0x8e, OP_EMPTY_SET = 0x8f,
    OP_ADDITEMS = 0x90, OP_FROZENSET = 0x91, OP_NEWOBJ_EX = 0x92, OP_STACK_GLOBAL = 0x93,
    OP_MEMOIZE = 0x94, OP_FRAME = 0x95,
    // protocol 5
    OP_BYTEARRAY8 = 0x96, OP_NEXT_BUFFER = 0x97, OP_READONLY_BUFFER = 0x98,
};

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
    size_t transient;            // budget held by the stack, marks and memo, returned at the end
    pk_value *out;               // STOP's result
    int done;
} rs;

const char *pk_kind_name(pk_kind k) {
    static const char *const n[] = { "None", "bool", "int", "int", "float", "str", "bytes", "tuple",
                                     "list", "dict", "set", "global", "storage", "tensor", "object" };
    return (unsigned)k < sizeof n / sizeof n[0] ? n[k] : "?";
}

void pk_init(pk_vm *vm, const char *file, size_t file_len) { pk_init_limit(vm, file, file_len, 0); }

void pk_init_limit(pk_vm *vm, const char *file, size_t file_len, uint64_t room) {
    memset(vm, 0, sizeof *vm);
    vm->file = file;
    vm->budget = file_len > (SIZE_MAX - PK_BUDGET_BASE) / PK_BUDGET_PER_BYTE
                     ? SIZE_MAX : PK_BUDGET_BASE + PK_BUDGET_PER_BYTE * file_len;
    if (room && room < vm->budget) vm->budget = (size_t)room, vm->budget_is_limit = 1;
}

uint64_t ck_pickle_room(const ckpt *ck) {
    if (!ck->max_bytes) return 0;
    return ck->max_bytes > ck->bytes + 1 ? ck->max_bytes - ck->bytes : 1;
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

// Counts n more bytes against the file's budget, before they are allocated.
static int charge(rs *r, size_t n) {
    pk_vm *vm = r->vm;
    if (n > vm->budget - vm->used && vm->budget_is_limit)
    {
        char b[32];
        return err_set(r->e, OODSEG_E_NOMEM, "%s: pickle %s: reading the file's pickles needs more than %s "
                       "(%lld objects so far), what the memory limit (--max-memory) leaves beside the mapped "
                       "file; raise --max-memory, or save the weights as safetensors", vm->file, r->where,
                       memlimit_str(vm->budget, b, sizeof b), (long long)vm->n_values);
    }
    if (n > vm->budget - vm->used)
        return fail(r, "the file's pickles need more than %zu MiB (%lld objects so far), over the budget of a "
                    "%zu-byte checkpoint (%zu MiB + %d bytes per byte of file): a crafted file, not a checkpoint",
                    vm->budget >> 20, (long long)vm->n_values, (vm->budget - PK_BUDGET_BASE) / PK_BUDGET_PER_BYTE,
                    PK_BUDGET_BASE >> 20, PK_BUDGET_PER_BYTE);
    vm->used += n;
    return 0;
}

// The same for the run's own arrays, which are freed when the run ends.
static int charge_transient(rs *r, size_t n) {
    int rc = charge(r, n);
    if (!rc) r->transient += n;
    return rc;
}

static pk_value *newv(rs *r, pk_kind k) {
    if (charge(r, sizeof(pk_value))) return NULL;
    r->vm->n_values++;
    pk_value *v = calloc(1, sizeof *v);
    if (!v) { oom(r); return NULL; }
    v->kind = k;
    v->next_alloc = r->vm->all;
    r->vm->all = v;
    return v;
}

static pk_value *new_bytes(rs *r, pk_kind k, const void *s, size_t n) {
    pk_value *v = newv(r, k);
    if (!v || charge(r, n + 1)) return NULL;
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
        int nc = r->cap ? r->cap * 2 : 64, rc = charge_transient(r, (size_t)(nc - r->cap) * sizeof *r->st);
        if (rc) return rc;
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
        int rc = charge(r, (size_t)(nc - c->cap) * sizeof *c->items * (c->kind == PK_DICT ? 2 : 1));
        if (rc) return rc;
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

// A new sequence of the n stack items from index `from`. Indices, not a pointer into the stack:
// the stack is still NULL when a MARK was the first opcode, and NULL + 0 is undefined.
static pk_value *make_seq(rs *r, pk_kind k, int from, int n) {
    pk_value *v = newv(r, k);
    if (!v) return NULL;
    for (int i = 0; i < n; i++)
        if (add_item(r, v, NULL, r->st[from + i])) return NULL;
    return v;
}

static int memo_put(rs *r, uint64_t idx, pk_value *v) {
    // Every memo write costs at least one opcode byte, so a real index is below the pickle's length.
    if (idx > r->len - r->start + 16) return fail(r, "memo index %llu is larger than the pickle", (unsigned long long)idx);
    if (idx >= r->n_memo) {
        size_t nn = r->n_memo ? r->n_memo : 64;
        while (nn <= idx) nn *= 2;
        int rc = charge_transient(r, (nn - r->n_memo) * sizeof *r->memo);
        if (rc) return rc;
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
    if (charge(r, strlen(m) + strlen(n) + 2)) return NULL;
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
        if (charge(r, (size_t)(nc - vm->cap_storages) * sizeof *vm->storages)) return NULL;
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

// The allow-list: the globals a checkpoint of tensors names (docs/pytorch-checkpoints.md, "Globals"),
// those of PyTorch's own weights_only unpickler that state dicts use, and the NumPy scalars and
// arrays of mmcv's `meta`. A global off the list is refused where the pickle names it, before
// anything could use it; the dangerous ones (is_dangerous) are refused where they would be called,
// with the message that says the file tries to run code. Nothing on the list is executed either:
// the tensor rebuilders and storages are interpreted, the rest become opaque values.
static int allowed_global(const pk_value *g) {
    static const char *const names[] = {
        "collections.OrderedDict", "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state", "torch.Size",
        "torch.device", "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype",
        "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct", "numpy.ndarray",
        "_codecs.encode", "builtins.set", "builtins.frozenset", "builtins.slice", "builtins.bytearray",
        "builtins.complex", "__builtin__.set", "__builtin__.frozenset", "__builtin__.slice",
    };
    // Every torch storage type passes here, so that an unsupported one (say ComplexFloatStorage) is
    // named as such where the tensor is rebuilt.
    size_t nl = strlen(g->name);
    if ((!strcmp(g->mod, "torch") || !strcmp(g->mod, "torch.cuda")) && nl > 7 && !strcmp(g->name + nl - 7, "Storage"))
        return 1;
    char full[520];
    snprintf(full, sizeof full, "%s.%s", g->mod, g->name);
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (!strcmp(full, names[k])) return 1;
    return 0;
}

static pk_value *new_global(rs *r, const char *m, size_t ml, const char *n, size_t nl) {
    pk_value *v = newv(r, PK_GLOBAL);
    if (!v) return NULL;
    if (charge(r, ml + nl + 2)) return NULL;
    v->mod = strndup(m, ml);
    v->name = strndup(n, nl);
    if (!v->mod || !v->name) { oom(r); return NULL; }
    // Text lines may end in \r when written on Windows.
    // (strndup stops at a NUL, so measure what it kept.)
    ml = strlen(v->mod);
    nl = strlen(v->name);
    if (ml && v->mod[ml - 1] == '\r') v->mod[ml - 1] = 0;
    if (nl && v->name[nl - 1] == '\r') v->name[nl - 1] = 0;
    if (!is_dangerous(v) && !allowed_global(v)) {
        fail(r, "refusing the global '%s.%s': a checkpoint may name only the globals of tensor data (an "
             "OrderedDict state_dict of torch tensors; the list is in docs/pytorch-checkpoints.md). Load the file "
             "in Python you trust and save its state_dict alone (torch.save(sd, path)) or as safetensors",
             v->mod, v->name);
        return NULL;
    }
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

// ---- the opcode handlers, one per family; OPS[] below maps every opcode to its family ----

static int unknown_op(rs *r, unsigned op) { return fail(r, "unknown opcode 0x%02x", op); }

// A little-endian unsigned argument of w bytes.
static int arg_le(rs *r, int w, uint64_t *v) {
    int rc = need(r, (size_t)w);
    if (rc) return rc;
    *v = rd_le(r->b + r->pos, w);
    r->pos += (size_t)w;
    return 0;
}

// The n bytes of an argument whose length came before it.
static int arg_bytes(rs *r, uint64_t n, const unsigned char **p) {
    int rc = need(r, n);
    if (rc) return rc;
    *p = r->b + r->pos;
    r->pos += n;
    return 0;
}

// PROTO, FRAME (frames only group opcodes for buffered reading), STOP, READONLY_BUFFER.
static int op_control(rs *r, unsigned op) {
    uint64_t skip;
    switch (op) {
    case OP_PROTO: return arg_le(r, 1, &skip);
    case OP_FRAME: return arg_le(r, 8, &skip);
    case OP_READONLY_BUFFER: return 0;
    case OP_STOP:
        if (!(r->out = pop(r))) return OODSEG_E_FORMAT;
        r->done = 1;
        return 0;
    default: return unknown_op(r, op);
    }
}

static int op_stack(rs *r, unsigned op) {
    int base = 0, rc;
    pk_value *v;
    switch (op) {
    case OP_MARK:
        if (r->n_marks >= PK_MAX_VALUES) return fail(r, "more than %d nested MARKs", PK_MAX_VALUES);
        if (r->n_marks == r->cap_marks) {
            int nc = r->cap_marks ? r->cap_marks * 2 : 16;
            if ((rc = charge_transient(r, (size_t)(nc - r->cap_marks) * sizeof *r->marks))) return rc;
            int *nm = realloc(r->marks, (size_t)nc * sizeof *nm);
            if (!nm) return oom(r);
            r->marks = nm;
            r->cap_marks = nc;
        }
        r->marks[r->n_marks++] = r->n;
        return 0;
    case OP_POP:
        // POP right after MARK drops the mark, as CPython's unpickler does.
        if (r->n_marks && r->n == r->marks[r->n_marks - 1]) { r->n_marks--; return 0; }
        return pop(r) ? 0 : OODSEG_E_FORMAT;
    case OP_POP_MARK:
        if (!(rc = pop_mark(r, &base))) r->n = base;
        return rc;
    case OP_DUP: return (v = top(r)) ? push(r, v) : OODSEG_E_FORMAT;
    default: return unknown_op(r, op);
    }
}

// None, booleans and the binary numbers.
static int op_number(rs *r, unsigned op) {
    pk_value *v;
    uint64_t n;
    const unsigned char *p;
    int rc;
    switch (op) {
    case OP_NONE: return push(r, newv(r, PK_NONE));
    case OP_NEWTRUE: case OP_NEWFALSE:
        if ((v = newv(r, PK_BOOL))) v->i = op == OP_NEWTRUE;
        return push(r, v);
    case OP_BININT1: return (rc = arg_le(r, 1, &n)) ? rc : push(r, new_int(r, (int64_t)n));
    case OP_BININT2: return (rc = arg_le(r, 2, &n)) ? rc : push(r, new_int(r, (int64_t)n));
    case OP_BININT: return (rc = arg_le(r, 4, &n)) ? rc : push(r, new_int(r, (int32_t)(uint32_t)n));
    case OP_LONG1: case OP_LONG4:
        if ((rc = arg_le(r, op == OP_LONG1 ? 1 : 4, &n))) return rc;
        if (op == OP_LONG4 && (n & 0x80000000u)) return fail(r, "negative LONG4 length");
        if ((rc = arg_bytes(r, n, &p))) return rc;
        return push(r, new_long(r, p, n));
    case OP_BINFLOAT:   // big-endian, unlike every other argument
        if ((rc = arg_bytes(r, 8, &p))) return rc;
        n = 0;
        for (int k = 0; k < 8; k++) n = (n << 8) | p[k];
        if ((v = newv(r, PK_FLOAT))) memcpy(&v->f, &n, 8);
        return push(r, v);
    default: return unknown_op(r, op);
    }
}

// INT, LONG and FLOAT: decimal text lines (protocol 0). "I00"/"I01" are protocol 0's booleans.
static int op_text_number(rs *r, unsigned op) {
    const char *ls;
    size_t ln;
    char t[64], *ep;
    pk_value *v;
    int rc = read_line(r, &ls, &ln);
    if (rc) return rc;
    if (op == OP_FLOAT) {
        if (ln >= sizeof t) return fail(r, "float literal too long");
        memcpy(t, ls, ln);
        t[ln] = 0;
        if ((v = newv(r, PK_FLOAT))) v->f = strtod(t, NULL);
        return push(r, v);
    }
    if (ln >= 32) return fail(r, "integer literal too long");
    memcpy(t, ls, ln);
    t[ln] = 0;
    if (op == OP_INT && (strcmp(t, "00") == 0 || strcmp(t, "01") == 0)) {
        if ((v = newv(r, PK_BOOL))) v->i = t[1] == '1';
        return push(r, v);
    }
    long long x = strtoll(t, &ep, 10);
    if (ep == t || (*ep && *ep != 'L')) return fail(r, "bad integer literal '%s'", t);
    return push(r, new_int(r, x));
}

// Text (str) and binary (bytes) strings: length-prefixed, or a text line for STRING/UNICODE.
static int op_string(rs *r, unsigned op) {
    const char *ls;
    size_t ln;
    uint64_t n;
    const unsigned char *p;
    int rc;
    if (op == OP_STRING || op == OP_UNICODE) {
        if ((rc = read_line(r, &ls, &ln))) return rc;
        return push(r, text_string(r, ls, ln, op == OP_STRING));
    }
    int w = (op == OP_SHORT_BINUNICODE || op == OP_SHORT_BINSTRING || op == OP_SHORT_BINBYTES) ? 1
            : (op == OP_BINUNICODE8 || op == OP_BINBYTES8 || op == OP_BYTEARRAY8) ? 8 : 4;
    if ((rc = arg_le(r, w, &n))) return rc;
    if (op == OP_BINSTRING && (n & 0x80000000u)) return fail(r, "negative BINSTRING length");
    if ((rc = arg_bytes(r, n, &p))) return rc;
    int is_str = op == OP_BINUNICODE || op == OP_SHORT_BINUNICODE || op == OP_BINUNICODE8
                 || op == OP_BINSTRING || op == OP_SHORT_BINSTRING;
    return push(r, new_bytes(r, is_str ? PK_STR : PK_BYTES, p, n));
}

// Containers made new: empty ones, and those built from the items on the stack.
static int op_make(rs *r, unsigned op) {
    int base = 0, rc = 0;
    pk_value *v;
    switch (op) {
    case OP_EMPTY_TUPLE: return push(r, newv(r, PK_TUPLE));
    case OP_EMPTY_LIST: return push(r, newv(r, PK_LIST));
    case OP_EMPTY_DICT: return push(r, newv(r, PK_DICT));
    case OP_EMPTY_SET: return push(r, newv(r, PK_SET));
    case OP_TUPLE1: case OP_TUPLE2: case OP_TUPLE3: {
        int k = (int)(op - OP_TUPLE1) + 1;
        base = r->n_marks ? r->marks[r->n_marks - 1] : 0;
        if (r->n - base < k) return fail(r, "stack underflow (corrupt pickle)");
        v = make_seq(r, PK_TUPLE, r->n - k, k);
        r->n -= k;
        return push(r, v);
    }
    case OP_TUPLE: case OP_LIST: case OP_FROZENSET:
        if ((rc = pop_mark(r, &base))) return rc;
        v = make_seq(r, op == OP_TUPLE ? PK_TUPLE : op == OP_LIST ? PK_LIST : PK_SET, base, r->n - base);
        r->n = base;
        return push(r, v);
    case OP_DICT:
        if ((rc = pop_mark(r, &base))) return rc;
        if ((r->n - base) % 2) return fail(r, "odd number of items for DICT");
        if (!(v = newv(r, PK_DICT))) return OODSEG_E_NOMEM;
        for (int k = base; k < r->n && !rc; k += 2) rc = dict_set(r, v, r->st[k], r->st[k + 1]);
        r->n = base;
        return rc ? rc : push(r, v);
    default: return unknown_op(r, op);
    }
}

// Items added to a container already on the stack. Additions to an opaque object are dropped.
static int op_fill(rs *r, unsigned op) {
    int base = 0, rc = 0;
    pk_value *a, *b, *c;
    switch (op) {
    case OP_APPEND:
        if (!(a = pop(r)) || !(c = top(r))) return OODSEG_E_FORMAT;
        if (c->kind == PK_LIST) return add_item(r, c, NULL, a);
        return c->kind == PK_OPAQUE ? 0 : fail(r, "APPEND to a %s", pk_kind_name(c->kind));
    case OP_APPENDS: case OP_ADDITEMS:
        if ((rc = pop_mark(r, &base))) return rc;
        if (!(c = below_mark(r, base))) return OODSEG_E_FORMAT;
        if (c->kind == (op == OP_APPENDS ? PK_LIST : PK_SET))
            for (int k = base; k < r->n && !rc; k++) rc = add_item(r, c, NULL, r->st[k]);
        else if (c->kind != PK_OPAQUE)
            rc = fail(r, "%s to a %s", op == OP_APPENDS ? "APPENDS" : "ADDITEMS", pk_kind_name(c->kind));
        r->n = base;
        return rc;
    case OP_SETITEM:
        if (!(b = pop(r)) || !(a = pop(r)) || !(c = top(r))) return OODSEG_E_FORMAT;
        if (c->kind == PK_DICT) return dict_set(r, c, a, b);
        return c->kind == PK_OPAQUE ? 0 : fail(r, "SETITEM on a %s", pk_kind_name(c->kind));
    case OP_SETITEMS:
        if ((rc = pop_mark(r, &base))) return rc;
        if ((r->n - base) % 2) return fail(r, "odd number of items for SETITEMS");
        if (!(c = below_mark(r, base))) return OODSEG_E_FORMAT;
        if (c->kind == PK_DICT)
            for (int k = base; k < r->n && !rc; k += 2) rc = dict_set(r, c, r->st[k], r->st[k + 1]);
        else if (c->kind != PK_OPAQUE) rc = fail(r, "SETITEMS on a %s", pk_kind_name(c->kind));
        r->n = base;
        return rc;
    default: return unknown_op(r, op);
    }
}

// GLOBAL (module and name on text lines) and STACK_GLOBAL (two strings from the stack).
static int op_global(rs *r, unsigned op) {
    const char *m, *n;
    size_t ml, nl;
    pk_value *a, *b;
    int rc;
    if (op == OP_GLOBAL) {
        if ((rc = read_line(r, &m, &ml)) || (rc = read_line(r, &n, &nl))) return rc;
        return push(r, new_global(r, m, ml, n, nl));
    }
    if (!(b = pop(r)) || !(a = pop(r))) return OODSEG_E_FORMAT;
    if (a->kind != PK_STR || b->kind != PK_STR) return fail(r, "STACK_GLOBAL needs two strings");
    return push(r, new_global(r, a->s, a->slen, b->s, b->slen));
}

static int push_call(rs *r, pk_value *callee, pk_value *args) {
    pk_value *v = call(r, callee, args);
    return v ? push(r, v) : (r->e ? r->e->code : OODSEG_E_FORMAT);
}

// The opcodes that would call something: each goes through call(), which builds data or refuses.
static int op_call(rs *r, unsigned op) {
    int base = 0, rc;
    pk_value *a, *c;
    const char *m, *n;
    size_t ml, nl;
    switch (op) {
    case OP_REDUCE: case OP_NEWOBJ:   // callee, args
        if (!(a = pop(r)) || !(c = pop(r))) return OODSEG_E_FORMAT;
        return push_call(r, c, a);
    case OP_NEWOBJ_EX:                // cls, args, kwargs
        if (!pop(r) || !(a = pop(r)) || !(c = pop(r))) return OODSEG_E_FORMAT;
        return push_call(r, c, a);
    case OP_INST:                     // class from text lines, args from the mark
        if ((rc = read_line(r, &m, &ml)) || (rc = read_line(r, &n, &nl)) || (rc = pop_mark(r, &base))) return rc;
        a = make_seq(r, PK_TUPLE, base, r->n - base);
        r->n = base;
        c = a ? new_global(r, m, ml, n, nl) : NULL;
        if (!a || !c) return r->e && r->e->code ? r->e->code : OODSEG_E_NOMEM;
        return push_call(r, c, a);
    case OP_OBJ:                      // mark, class, args...
        if ((rc = pop_mark(r, &base))) return rc;
        if (r->n - base < 1) return fail(r, "OBJ without a class");
        c = r->st[base];
        a = make_seq(r, PK_TUPLE, base + 1, r->n - base - 1);
        r->n = base;
        if (!a) return OODSEG_E_NOMEM;
        return push_call(r, c, a);
    case OP_BUILD:                    // obj.__setstate__(state): only ever ignored, never executed
        if (!(a = pop(r)) || !(c = top(r))) return OODSEG_E_FORMAT;
        if (c->kind == PK_GLOBAL && is_dangerous(c)) return refuse(r, c, "BUILD");
        if (a->kind == PK_GLOBAL && is_dangerous(a)) return refuse(r, a, "BUILD with");
        return 0;
    case OP_BINPERSID:
        if (!(a = pop(r))) return OODSEG_E_FORMAT;
        c = persistent_load(r, a);
        return c ? push(r, c) : (r->e ? r->e->code : OODSEG_E_FORMAT);
    default: return unknown_op(r, op);
    }
}

// The memo: PUT/GET with a decimal text index, BINPUT/BINGET with 1 byte, LONG_* with 4, and
// MEMOIZE with the next free index.
static int op_memo(rs *r, unsigned op) {
    pk_value *v;
    uint64_t idx = 0;
    const char *ls;
    size_t ln;
    char t[32], *ep;
    int rc;
    if (op == OP_MEMOIZE) return (v = top(r)) ? memo_put(r, r->memo_count, v) : OODSEG_E_FORMAT;
    if (op == OP_PUT || op == OP_GET) {
        if ((rc = read_line(r, &ls, &ln))) return rc;
        if (ln >= sizeof t) return fail(r, "memo index too long");
        memcpy(t, ls, ln);
        t[ln] = 0;
        idx = strtoull(t, &ep, 10);
        if (ep == t) return fail(r, "bad memo index '%s'", t);
    } else if ((rc = arg_le(r, op == OP_BINPUT || op == OP_BINGET ? 1 : 4, &idx))) {
        return rc;
    }
    if (op == OP_GET || op == OP_BINGET || op == OP_LONG_BINGET) return memo_get(r, idx);
    return (v = top(r)) ? memo_put(r, idx, v) : OODSEG_E_FORMAT;
}

static int op_unsupported(rs *r, unsigned op) {
    if (op == OP_PERSID) return fail(r, "text persistent ids (PERSID) are not torch storages");
    if (op == OP_NEXT_BUFFER) return fail(r, "out-of-band buffers (NEXT_BUFFER) are not supported");
    return fail(r, "extension registry opcodes (EXT1/2/4) are not supported");
}

typedef int (*op_fn)(rs *r, unsigned op);

// Every opcode of protocols 0-5; a byte missing here is an unknown opcode.
static const op_fn OPS[256] = {
    [OP_PROTO] = op_control, [OP_FRAME] = op_control, [OP_STOP] = op_control,
    [OP_READONLY_BUFFER] = op_control,
    [OP_MARK] = op_stack, [OP_POP] = op_stack, [OP_POP_MARK] = op_stack, [OP_DUP] = op_stack,
    [OP_NONE] = op_number, [OP_NEWTRUE] = op_number, [OP_NEWFALSE] = op_number,
    [OP_BININT1] = op_number, [OP_BININT2] = op_number, [OP_BININT] = op_number,
    [OP_LONG1] = op_number, [OP_LONG4] = op_number, [OP_BINFLOAT] = op_number,
    [OP_INT] = op_text_number, [OP_LONG] = op_text_number, [OP_FLOAT] = op_text_number,
    [OP_STRING] = op_string, [OP_UNICODE] = op_string, [OP_BINSTRING] = op_string,
    [OP_SHORT_BINSTRING] = op_string, [OP_BINUNICODE] = op_string,
    [OP_SHORT_BINUNICODE] = op_string, [OP_BINUNICODE8] = op_string, [OP_BINBYTES] = op_string,
    [OP_SHORT_BINBYTES] = op_string, [OP_BINBYTES8] = op_string, [OP_BYTEARRAY8] = op_string,
    [OP_EMPTY_TUPLE] = op_make, [OP_EMPTY_LIST] = op_make, [OP_EMPTY_DICT] = op_make,
    [OP_EMPTY_SET] = op_make, [OP_TUPLE1] = op_make, [OP_TUPLE2] = op_make, [OP_TUPLE3] = op_make,
    [OP_TUPLE] = op_make, [OP_LIST] = op_make, [OP_FROZENSET] = op_make, [OP_DICT] = op_make,
    [OP_APPEND] = op_fill, [OP_APPENDS] = op_fill, [OP_ADDITEMS] = op_fill,
    [OP_SETITEM] = op_fill, [OP_SETITEMS] = op_fill,
    [OP_GLOBAL] = op_global, [OP_STACK_GLOBAL] = op_global,
    [OP_REDUCE] = op_call, [OP_NEWOBJ] = op_call, [OP_NEWOBJ_EX] = op_call, [OP_INST] = op_call,
    [OP_OBJ] = op_call, [OP_BUILD] = op_call, [OP_BINPERSID] = op_call,
    [OP_PUT] = op_memo, [OP_GET] = op_memo, [OP_BINPUT] = op_memo, [OP_BINGET] = op_memo,
    [OP_LONG_BINPUT] = op_memo, [OP_LONG_BINGET] = op_memo, [OP_MEMOIZE] = op_memo,
    [OP_PERSID] = op_unsupported, [OP_EXT1] = op_unsupported, [OP_EXT2] = op_unsupported,
    [OP_EXT4] = op_unsupported, [OP_NEXT_BUFFER] = op_unsupported,
};

int pk_run(pk_vm *vm, const unsigned char *buf, size_t len, size_t start, const char *where,
           pk_value **out, size_t *end, err *e) {
    rs R;
    memset(&R, 0, sizeof R);
    rs *r = &R;
    r->vm = vm; r->b = buf; r->len = len; r->pos = start; r->start = start; r->where = where; r->e = e;
    int rc = 0;
    *out = NULL;
    while (!rc && !r->done) {
        r->op_at = r->pos;
        if (r->pos >= len) { rc = fail(r, "truncated: the pickle ends before its STOP opcode"); break; }
        unsigned op = buf[r->pos++];
        rc = OPS[op] ? OPS[op](r, op) : unknown_op(r, op);
    }
    if (!rc) {
        *out = r->out;
        *end = r->pos;
    }
    free(r->st);
    free(r->marks);
    free(r->memo);
    vm->used -= r->transient;
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
