// The resumable state of `oodseg score` (see score_state.h). The options are one "key=value;..."
// text so that a difference can be named key by key.
#include "score_state.h"
#include "../core/json.h"
#include "../core/outfile.h"
#include "../core/text.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void score_state_init(score_state *st, const char *dir, const char *options, char *const *inputs, int n_inputs) {
    memset(st, 0, sizeof *st);
    snprintf(st->path, sizeof st->path, "%s/%s", dir, SCORE_STATE_FILE);
    st->options = options;
    st->inputs = inputs;
    st->n_inputs = n_inputs;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int score_state_was_done(const score_state *st, const char *name) {
    return st->n_loaded && bsearch(&name, st->done, (size_t)st->n_loaded, sizeof *st->done, cmp_str) != NULL;
}

static int push(score_state *st, const char *name) {
    if (st->n_done == st->cap) {
        int cap = st->cap ? 2 * st->cap : 256;
        char **d = realloc(st->done, (size_t)cap * sizeof *d);
        if (!d) return OODSEG_E_NOMEM;
        st->done = d;
        st->cap = cap;
    }
    if (!(st->done[st->n_done] = strdup(name))) return OODSEG_E_NOMEM;
    st->n_done++;
    return OODSEG_OK;
}

int score_state_add(score_state *st, const char *name) {
    return score_state_was_done(st, name) ? OODSEG_OK : push(st, name);
}

// The first key whose value differs between two "key=value;..." texts, as a message.
static void options_diff(const char *was, const char *now, char *msg, size_t n) {
    snprintf(msg, n, "the options differ");
    const char *a = was, *b = now;
    while (*a || *b) {
        size_t la = strcspn(a, ";"), lb = strcspn(b, ";");
        if (la != lb || memcmp(a, b, la)) {
            snprintf(msg, n, "the interrupted run had %.*s, this one has %.*s", (int)la, a, (int)lb, b);
            return;
        }
        a += la + (a[la] == ';');
        b += lb + (b[lb] == ';');
    }
}

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (len >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)len + 1))) {
        *n = fread(buf, 1, (size_t)len, f);
        buf[*n] = 0;
    }
    fclose(f);
    return buf;
}

// The interrupted run's inputs against this one's: OODSEG_E_ARG naming the first difference.
static int check_inputs(const score_state *st, const json *in, err *e) {
    if (!in || in->type != JSON_ARRAY)
        return err_set(e, OODSEG_E_FORMAT, "--resume: %s has no input list; delete it and run again without --resume", st->path);
    for (int i = 0; i < in->n || i < st->n_inputs; i++) {
        const char *was = i < in->n && in->items[i].type == JSON_STRING ? in->items[i].str : NULL;
        const char *now = i < st->n_inputs ? st->inputs[i] : NULL;
        if (!was || !now || strcmp(was, now))
            return err_set(e, OODSEG_E_ARG, "--resume: the inputs differ from the interrupted run's (%d then, %d now; "
                           "input %d was %s, is %s); give the same inputs, or run without --resume into a new folder",
                           in->n, st->n_inputs, i + 1, was ? was : "(none)", now ? now : "(none)");
    }
    return OODSEG_OK;
}

int score_state_load(score_state *st, err *e) {
    size_t n = 0;
    char *text = read_all(st->path, &n);
    if (!text)
        return err_set(e, OODSEG_E_ARG, "--resume: no %s, so nothing to resume (the run finished, or was never "
                       "interrupted here); run without --resume", st->path);
    json *j = json_parse(text, n, st->path, e);
    free(text);
    if (!j) return e->code;
    const json *opt = json_get(j, "options"), *done = json_get(j, "done");
    int rc = OODSEG_OK;
    char msg[1024];
    if (!opt || opt->type != JSON_STRING || !done || done->type != JSON_ARRAY)
        rc = err_set(e, OODSEG_E_FORMAT, "--resume: %s is not a score state (no options or done list); delete it and run without --resume", st->path);
    else if (strcmp(opt->str, st->options)) {
        options_diff(opt->str, st->options, msg, sizeof msg);
        rc = err_set(e, OODSEG_E_ARG, "--resume: %s; resume with the interrupted run's options, or run without --resume into a new folder", msg);
    } else rc = check_inputs(st, json_get(j, "inputs"), e);
    for (int i = 0; !rc && i < done->n; i++)
        if (done->items[i].type == JSON_STRING && push(st, done->items[i].str))
            rc = err_set(e, OODSEG_E_NOMEM, "out of memory reading %s", st->path);
    json_free(j);
    if (rc) return rc;
    qsort(st->done, (size_t)st->n_done, sizeof *st->done, cmp_str);
    st->n_loaded = st->n_done;
    return OODSEG_OK;
}

int score_state_save(const score_state *st, err *e) {
    outfile of;
    if (outfile_open(&of, st->path, e)) return e->code;
    FILE *f = of.f;
    fprintf(f, "{\n  \"version\": 1,\n  \"options\": ");
    json_write_str(f, st->options);
    fprintf(f, ",\n  \"inputs\": [");
    for (int i = 0; i < st->n_inputs; i++) {
        fprintf(f, "%s\n    ", i ? "," : "");
        json_write_str(f, st->inputs[i]);
    }
    fprintf(f, "\n  ],\n  \"done\": [");
    for (int i = 0; i < st->n_done; i++) {
        fprintf(f, "%s\n    ", i ? "," : "");
        json_write_str(f, st->done[i]);
    }
    fprintf(f, "\n  ]\n}\n");
    return outfile_commit(&of, 1, e);
}

void score_state_remove(const score_state *st) { unlink(st->path); }

void score_state_free(score_state *st) {
    for (int i = 0; i < st->n_done; i++) free(st->done[i]);
    free(st->done);
    st->done = NULL;
    st->n_done = st->n_loaded = st->cap = 0;
}
