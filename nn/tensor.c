#include "tensor.h"
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

int64_t tensor_numel(const tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

static tensor *push(tensor_list *l, const char *name, int ndim, const int64_t *shape, err *e) {
    if (ndim < 1 || ndim > 4) { err_set(e, OODSEG_E_INTERNAL, "tensor '%s': %d dimensions (1..4 allowed)", name, ndim); return NULL; }
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        tensor *t = realloc(l->t, (size_t)cap * sizeof *t);
        if (!t) { err_set(e, OODSEG_E_NOMEM, "out of memory growing the tensor list"); return NULL; }
        l->t = t; l->cap = cap;
    }
    tensor *t = &l->t[l->n];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    return t;
}

tensor *tl_add(tensor_list *l, const char *name, int ndim, const int64_t *shape, err *e) {
    tensor *t = push(l, name, ndim, shape, e);
    if (!t) return NULL;
    t->data = err_calloc(e, (size_t)tensor_numel(t), sizeof(float), name);
    if (!t->data) return NULL;
    t->owned = 1;
    l->n++;
    return t;
}

tensor *tl_add_uninit(tensor_list *l, const char *name, int ndim, const int64_t *shape, err *e) {
    tensor *t = push(l, name, ndim, shape, e);
    if (!t) return NULL;
    t->data = err_malloc(e, (size_t)tensor_numel(t) * sizeof(float), name);
    if (!t->data) return NULL;
    t->owned = 1;
    l->n++;
    return t;
}

tensor *tl_add_copy(tensor_list *l, const char *name, int ndim, const int64_t *shape, const float *data, err *e) {
    tensor *t = push(l, name, ndim, shape, e);
    if (!t) return NULL;
    size_t bytes = (size_t)tensor_numel(t) * sizeof(float);
    t->data = err_malloc(e, bytes, name);
    if (!t->data) return NULL;
    memcpy(t->data, data, bytes);
    t->owned = 1;
    l->n++;
    return t;
}

tensor *tl_add_take(tensor_list *l, const char *name, int ndim, const int64_t *shape, float *data, err *e) {
    tensor *t = push(l, name, ndim, shape, e);
    if (!t) { free(data); return NULL; }
    t->data = data;
    t->owned = 1;
    l->n++;
    return t;
}

tensor *tl_get(const tensor_list *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->t[i].name, name) == 0) return &l->t[i];
    return NULL;
}

void tl_remove(tensor_list *l, const char *name) {
    for (int i = 0; i < l->n; i++) {
        if (strcmp(l->t[i].name, name) != 0) continue;
        if (l->t[i].owned) free(l->t[i].data);
        memmove(&l->t[i], &l->t[i + 1], (size_t)(l->n - i - 1) * sizeof(tensor));
        l->n--;
        return;
    }
}

void tl_free(tensor_list *l) {
    for (int i = 0; i < l->n; i++)
        if (l->t[i].owned) free(l->t[i].data);
    free(l->t);
    l->t = NULL;
    l->n = l->cap = 0;
}
