// The method table and the opened-method object. Each method's definition lives in its own file;
// a new method is one more extern line and one more row here.
#include "method.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern const ood_method_def ood_def_msp, ood_def_maxlogit, ood_def_entropy, ood_def_energy;   // baselines.c
extern const ood_method_def ood_def_kmeans;     // cluster.c
extern const ood_method_def ood_def_centroid;   // centroid.c

static const ood_method_def *const table[] = {
    &ood_def_msp, &ood_def_maxlogit, &ood_def_entropy, &ood_def_energy, &ood_def_kmeans, &ood_def_centroid,
};
enum { NUM_METHODS = (int)(sizeof table / sizeof table[0]) };

int ood_method_count(void) { return NUM_METHODS; }

const ood_method_def *ood_method_at(int i) { return i >= 0 && i < NUM_METHODS ? table[i] : NULL; }

const ood_method_def *ood_method_find(const char *name, err *e) {
    for (int i = 0; i < NUM_METHODS; i++)
        if (name && strcasecmp(name, table[i]->name) == 0) return table[i];
    char names[256] = "";
    for (int i = 0; i < NUM_METHODS; i++) {
        size_t l = strlen(names);
        snprintf(names + l, sizeof names - l, "%s%s", i ? ", " : "", table[i]->name);
    }
    err_set(e, OODSEG_E_ARG, "unknown method '%s'; methods: %s", name ? name : "(null)", names);
    return NULL;
}

struct ood_method {
    const ood_method_def *def;
    ood_options opt;
    void *state;
};

int ood_method_open(const char *name, const ood_options *o, ood_method **out, err *e) {
    *out = NULL;
    const ood_method_def *def = ood_method_find(name, e);
    if (!def) return e ? e->code : OODSEG_E_ARG;
    ood_method *m = err_calloc(e, 1, sizeof *m, "an OoD method");
    if (!m) return OODSEG_E_NOMEM;
    m->def = def;
    if (o) m->opt = *o;
    else ood_options_default(&m->opt);
    int rc = ood_options_check(&m->opt, def->options, e);
    if (!rc && def->prepare) rc = def->prepare(&m->opt, &m->state, e);
    if (rc) {
        err_prefix(e, "method %s: ", def->name);
        free(m);
        return rc;
    }
    *out = m;
    return OODSEG_OK;
}

int ood_method_score(const ood_method *m, const nn_ctx *ctx, const ood_input *in, float *score,
                     ood_aux *aux, err *e) {
    if (!m || !ctx || !score) return err_set(e, OODSEG_E_ARG, "OoD scoring: no method, context or score buffer");
    int rc = ood_check_input(in, (m->def->flags & OOD_NEEDS_TAPS) != 0, e);
    if (rc) return rc;
    return m->def->score(ctx, m->state, &m->opt, in, score, aux, e);
}

const ood_method_def *ood_method_def_of(const ood_method *m) { return m ? m->def : NULL; }
const ood_options *ood_method_options(const ood_method *m) { return m ? &m->opt : NULL; }

void ood_method_close(ood_method *m) {
    if (!m) return;
    if (m->def->release) m->def->release(m->state);
    free(m);
}

// --help, built once from the two tables: each method with its summary, then the options it reads
// that no method above it listed already.
static char help_text[8192];
static pthread_once_t help_once = PTHREAD_ONCE_INIT;

static void build_help(void) {
    char printed[64] = {0}, *h = help_text;
    size_t cap = sizeof help_text, l = 0;
    for (int i = 0; i < NUM_METHODS && l < cap; i++) {
        const ood_method_def *d = table[i];
        char also[256] = "";
        l += (size_t)snprintf(h + l, cap - l, "  %-20s %s\n", d->name, d->summary);
        for (const char *p = d->options; *p && l < cap;) {
            size_t n = strcspn(p, ",");
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name ? n : sizeof name - 1), p);
            p += n + (p[n] == ',');
            const ood_option_spec *s = ood_option_find(name);
            if (!s) continue;   // (ood_method_open reports it)
            int idx = (int)(s - ood_option_at(0));
            if (idx >= (int)sizeof printed || printed[idx]) {
                size_t a = strlen(also);
                snprintf(also + a, sizeof also - a, "%s--%s", a ? ", " : "", name);
                continue;
            }
            printed[idx] = 1;
            l += (size_t)snprintf(h + l, cap - l, "  ");
            if (l < cap) l += (size_t)ood_option_help_line(s, h + l, cap - l);
        }
        if (also[0] && l < cap) l += (size_t)snprintf(h + l, cap - l, "    also %s, as above\n", also);
    }
}

const char *ood_options_help(void) {
    pthread_once(&help_once, build_help);
    return help_text;
}

int ood_check_input(const ood_input *in, int need_feats, err *e) {
    if (!in || !in->logits || in->h < 1 || in->w < 1 || in->num_outputs < 1)
        return err_set(e, OODSEG_E_ARG, "OoD scoring: no logits");
    if (in->num_id < 1 || !in->id_channels)
        return err_set(e, OODSEG_E_ARG, "OoD scoring: no in-distribution channels");
    for (int i = 0; i < in->num_id; i++)
        if (in->id_channels[i] < 0 || in->id_channels[i] >= in->num_outputs)
            return err_set(e, OODSEG_E_ARG, "OoD scoring: in-distribution channel %d outside the %d logit channels",
                           in->id_channels[i], in->num_outputs);
    if (!need_feats) return OODSEG_OK;
    if (in->num_feats < 1 || !in->feats)
        return err_set(e, OODSEG_E_ARG, "OoD scoring: the method needs at least one feature tap, none given");
    for (int t = 0; t < in->num_feats; t++) {
        const tensor *f = in->feats[t];
        if (!f || !f->data || f->ndim != 4 || f->shape[0] != 1 || f->shape[1] < 1 || f->shape[2] < 1 ||
            f->shape[3] < 1)
            return err_set(e, OODSEG_E_ARG, "OoD scoring: feature tap %d ('%s') is not a (1, C, h, w) tensor",
                           t, f ? f->name : "(null)");
        if (!in->feat_strides || in->feat_strides[t] < 1)
            return err_set(e, OODSEG_E_ARG, "OoD scoring: feature tap %d ('%s') has no stride >= 1", t, f->name);
    }
    return OODSEG_OK;
}
