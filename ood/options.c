// Method options: one table, each option once (name, type, default, range, help), which drives the
// defaults, the command-line parser, the whole-set check, the help lines and the report JSON. The
// defaults are the frozen ones of METHOD.md; change them here and nowhere else.
#include "ood.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "../core/text.h"

#define OFF(field) offsetof(ood_options, field), sizeof(((ood_options *)0)->field)
#define BIG 1e30   // "any finite number" bounds, as numbers so that set and check share them

// Order: the JSON order of earlier reports (k first), options outside the JSON where they belong.
static const ood_option_spec specs[] = {
    {"k", "k", OOD_OPT_INT, OFF(km.k), 16, 1, 256, 0, 0, NULL, NULL, "N", "clusters per image"},
    {"n-init", "n_init", OOD_OPT_INT, OFF(km.n_init), 3, 1, 1000, 0, 0, NULL, NULL, "N",
     "k-means restarts, the best inertia kept"},
    {"max-iter", "max_iter", OOD_OPT_INT, OFF(km.max_iter), 300, 1, 100000, 0, 0, NULL, NULL, "N",
     "k-means iterations at most"},
    {"tol", "tol", OOD_OPT_DOUBLE, OFF(km.tol), 1e-4, 0, 1, 0, 0, NULL, NULL, "X",
     "k-means tolerance relative to the mean feature variance"},
    {"seed", "seed", OOD_OPT_U64, OFF(km.seed), 0, 0, 0, 0, 0, NULL, NULL, "N", "k-means++ seed"},
    {"taps", "taps", OOD_OPT_STRING, OFF(taps), 0, 0, 0, 0, 0, NULL, NULL, "LIST",
     "comma list of the feature taps to cluster, empty: the model's (METHOD.md)"},
    {"fuse-stride", "fuse_stride", OOD_OPT_INT, OFF(fuse_stride), 0, 0, 1024, 0, 0, NULL, NULL, "S",
     "stride the taps are pooled or resized to, 0: the coarsest tap's"},
    {"l2norm", "l2norm", OOD_OPT_INT, OFF(l2norm), 1, 0, 2, 0, 0, NULL, NULL, "M",
     "0 none, 1 L2-normalise each tap before fusing, 2 only the fused vector"},
    {"upsample", "upsample", OOD_OPT_ENUM, OFF(upsample), UPS_NEAREST, 0, 0, 0, 0, "nearest,bilinear", NULL,
     "M", "cluster map to the logit grid"},
    {"stat", "stat", OOD_OPT_ENUM, OFF(stat), STAT_MEAN, 0, 0, 0, 0, "mean,fraction", NULL, "M",
     "cluster confidence: mean (mean max-logit < tau) or fraction (of its pixels below tau > rho)"},
    {"rho", "rho", OOD_OPT_DOUBLE, OFF(rho), 0.5, 0, 1, 0, 0, NULL, NULL, "X", "fraction threshold of --stat fraction"},
    {"tau-mode", "tau_mode", OOD_OPT_ENUM, OFF(tau_mode), TAU_PERCENTILE, 0, 0, 0, 0,
     "absolute,percentile,calibrated", NULL, "M",
     "tau is a max-logit value, a percentile of this image's max-logit, or from --tau-file"},
    {"tau", "tau", OOD_OPT_DOUBLE, OFF(tau), 25, -BIG, BIG, 0, 0, NULL, NULL, "X",
     "max-logit threshold, or the percentile in [0, 100]; used by s1 and the cluster picture's OoD flags"},
    {"tau-file", NULL, OOD_OPT_STRING, OFF(tau_file), 0, 0, 0, 0, 0, NULL, "tau-mode=calibrated", "F",
     "calibrated tau from `oodseg calibrate`"},
    {"score", "score", OOD_OPT_ENUM, OFF(score), SCORE_S2, 0, 0, 0, 0, "s1,s2", NULL, "M",
     "s1: -maxlogit + B in OoD clusters; s2: the cluster's mean -maxlogit, no tau"},
    {"big-b", "big_b", OOD_OPT_DOUBLE, OFF(big_b), 0, 0, BIG, 0, 0, NULL, NULL, "X",
     "S1 offset B, 0: automatic (the max-logit range + 1)"},
    {"T", "energy_T", OOD_OPT_DOUBLE, OFF(energy_T), 1, 0, 1e6, 1, 0, NULL, NULL, "X", "energy temperature"},
    {"centroids", NULL, OOD_OPT_STRING, OFF(centroids_file), 0, 0, 0, 0, 0, NULL, NULL, "F",
     "centroid file from `oodseg fit-centroids` (required)"},
    {"centroid-conf", "centroid_conf", OOD_OPT_DOUBLE, OFF(centroid_conf), 0.5, 0, 1, 1, 0, NULL, NULL, "X",
     "softmax confidence below which a pixel is examined"},
    {"centroid-factor", "centroid_factor", OOD_OPT_DOUBLE, OFF(centroid_factor), 1.1, 0, 1e6, 1, 0, NULL, NULL,
     "X", "OoD when the distance exceeds this times the class mean distance"},
};
enum { NUM_SPECS = (int)(sizeof specs / sizeof specs[0]) };

// Enum options are stored through an int.
_Static_assert(sizeof(ood_upsample) == sizeof(int) && sizeof(ood_stat) == sizeof(int) &&
               sizeof(ood_tau_mode) == sizeof(int) && sizeof(ood_score_kind) == sizeof(int),
               "enum options are stored as int");

int ood_option_count(void) { return NUM_SPECS; }
const ood_option_spec *ood_option_at(int i) { return i >= 0 && i < NUM_SPECS ? &specs[i] : NULL; }

const ood_option_spec *ood_option_find(const char *name) {
    for (int i = 0; name && i < NUM_SPECS; i++)
        if (!strcmp(specs[i].name, name)) return &specs[i];
    return NULL;
}

static void *field(ood_options *o, const ood_option_spec *s) { return (char *)o + s->offset; }
static const void *cfield(const ood_options *o, const ood_option_spec *s) { return (const char *)o + s->offset; }

// Choice number i of a comma list, into buf; returns 0 when there is none.
static int choice(const char *list, int i, char *buf, size_t n) {
    for (const char *p = list; p; i--) {
        const char *q = strchr(p, ',');
        size_t l = q ? (size_t)(q - p) : strlen(p);
        if (i == 0) {
            snprintf(buf, n, "%.*s", (int)(l < n ? l : n - 1), p);
            return 1;
        }
        p = q ? q + 1 : NULL;
    }
    return 0;
}

static int num_choices(const char *list) {
    int n = 1;
    for (const char *p = list; *p; p++) n += *p == ',';
    return n;
}

// What a value must be, for messages and help: "an integer in [1, 256]", "nearest or bilinear".
static void range_text(const ood_option_spec *s, char *buf, size_t n) {
    switch (s->type) {
    case OOD_OPT_INT:
        snprintf(buf, n, "an integer in [%.0f, %.0f]", s->lo, s->hi);
        break;
    case OOD_OPT_U64:
        snprintf(buf, n, "an integer in [0, 2^64 - 1]");
        break;
    case OOD_OPT_DOUBLE:
        snprintf(buf, n, "a number in %c%g, %g%c", s->lo_open ? '(' : '[', s->lo, s->hi, s->hi_open ? ')' : ']');
        break;
    case OOD_OPT_ENUM: {
        int k = num_choices(s->choices);
        size_t l = 0;
        buf[0] = '\0';
        for (int i = 0; i < k && l < n; i++) {
            char c[32];
            choice(s->choices, i, c, sizeof c);
            l += (size_t)snprintf(buf + l, n - l, "%s%s", i == 0 ? "" : i == k - 1 ? " or " : ", ", c);
        }
        break;
    }
    default:
        snprintf(buf, n, "a text of at most %zu characters", s->size - 1);
    }
}

static int in_range(const ood_option_spec *s, double x) {
    return isfinite(x) && (s->lo_open ? x > s->lo : x >= s->lo) && (s->hi_open ? x < s->hi : x <= s->hi);
}

static int bad(const ood_option_spec *s, const char *value, err *e) {
    char r[160];
    range_text(s, r, sizeof r);
    return err_set(e, OODSEG_E_ARG, "--%s %s: expected %s", s->name, value ? value : "(missing)", r);
}

void ood_options_default(ood_options *o) {
    memset(o, 0, sizeof *o);
    kmeans_params_default(&o->km);   // the fields the table does not cover (exact_lloyd)
    for (int i = 0; i < NUM_SPECS; i++) {
        const ood_option_spec *s = &specs[i];
        void *f = field(o, s);
        switch (s->type) {
        case OOD_OPT_INT: case OOD_OPT_ENUM: *(int *)f = (int)s->def; break;
        case OOD_OPT_U64: *(uint64_t *)f = (uint64_t)s->def; break;
        case OOD_OPT_DOUBLE: *(double *)f = s->def; break;
        default: ((char *)f)[0] = '\0';
        }
    }
}

static int parse_value(ood_options *o, const ood_option_spec *s, const char *v, err *e) {
    void *f = field(o, s);
    char *end;
    if (!v || (s->type != OOD_OPT_STRING && !*v)) return bad(s, v, e);
    switch (s->type) {
    case OOD_OPT_INT: {
        errno = 0;
        long x = strtol(v, &end, 10);
        if (errno || *end || !in_range(s, (double)x)) return bad(s, v, e);
        *(int *)f = (int)x;
        return OODSEG_OK;
    }
    case OOD_OPT_U64: {
        errno = 0;
        unsigned long long x = strtoull(v, &end, 10);
        if (*v == '-' || errno || *end) return bad(s, v, e);
        *(uint64_t *)f = (uint64_t)x;
        return OODSEG_OK;
    }
    case OOD_OPT_DOUBLE: {
        // (no errno test: an underflow to a subnormal is a valid value, an overflow is infinite)
        double x = strtod(v, &end);
        if (*end || !in_range(s, x)) return bad(s, v, e);
        *(double *)f = x;
        return OODSEG_OK;
    }
    case OOD_OPT_ENUM:
        for (int i = 0, k = num_choices(s->choices); i < k; i++) {
            char c[32];
            choice(s->choices, i, c, sizeof c);
            if (!strcasecmp(v, c)) { *(int *)f = i; return OODSEG_OK; }
        }
        return bad(s, v, e);
    default:
        if (strlen(v) >= s->size) return bad(s, v, e);
        memcpy(f, v, strlen(v) + 1);
        return OODSEG_OK;
    }
}

int ood_options_set(ood_options *o, const char *key, const char *value, err *e) {
    const ood_option_spec *s = ood_option_find(key);
    if (!s) return 1;
    int rc = parse_value(o, s, value, e);
    if (rc || !s->implies) return rc;
    char k[64];
    const char *eq = strchr(s->implies, '=');
    snprintf(k, sizeof k, "%.*s", (int)(eq - s->implies), s->implies);
    return ood_options_set(o, k, eq + 1, e);
}

// The stored value as the text ood_options_set reads back.
static void value_text(const ood_options *o, const ood_option_spec *s, char *buf, size_t n) {
    const void *f = cfield(o, s);
    switch (s->type) {
    case OOD_OPT_INT: snprintf(buf, n, "%d", *(const int *)f); break;
    case OOD_OPT_U64: snprintf(buf, n, "%llu", (unsigned long long)*(const uint64_t *)f); break;
    case OOD_OPT_DOUBLE: snprintf(buf, n, "%g", *(const double *)f); break;
    case OOD_OPT_ENUM:
        if (!choice(s->choices, *(const int *)f, buf, n)) snprintf(buf, n, "%d", *(const int *)f);
        break;
    default: snprintf(buf, n, "%.*s", (int)strnlen((const char *)f, s->size), (const char *)f);
    }
}

static int check_one(const ood_options *o, const ood_option_spec *s, err *e) {
    const void *f = cfield(o, s);
    int ok = 1;
    switch (s->type) {
    case OOD_OPT_INT: ok = in_range(s, *(const int *)f); break;
    case OOD_OPT_U64: break;
    case OOD_OPT_DOUBLE: ok = in_range(s, *(const double *)f); break;
    case OOD_OPT_ENUM: ok = *(const int *)f >= 0 && *(const int *)f < num_choices(s->choices); break;
    default: ok = memchr(f, '\0', s->size) != NULL;
    }
    if (ok) return OODSEG_OK;
    char v[64];
    value_text(o, s, v, sizeof v);
    return bad(s, v, e);
}

int ood_options_check(const ood_options *o, const char *names, err *e) {
    if (!names) {
        for (int i = 0; i < NUM_SPECS; i++)
            if (check_one(o, &specs[i], e)) return e ? e->code : OODSEG_E_ARG;
        return OODSEG_OK;
    }
    for (const char *p = names; *p;) {
        size_t l = strcspn(p, ",");
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(l < sizeof name ? l : sizeof name - 1), p);
        const ood_option_spec *s = ood_option_find(name);
        if (!s) return err_set(e, OODSEG_E_INTERNAL, "method option list names '%s', which is not an option", name);
        if (check_one(o, s, e)) return e ? e->code : OODSEG_E_ARG;
        p += l + (p[l] == ',');
    }
    return OODSEG_OK;
}

int ood_options_json(const ood_options *o, char *buf, size_t n) {
    // Built in a local buffer so that the return value is what snprintf of the whole would give.
    char out[4096] = "{";
    for (int i = 0; i < NUM_SPECS; i++) {
        const ood_option_spec *s = &specs[i];
        if (!s->json) continue;
        char v[1100];
        size_t l = strlen(out);
        value_text(o, s, v, sizeof v);
        snprintf(out + l, sizeof out - l, "%s\"%s\": ", l > 1 ? ", " : "", s->json);
        if (s->type == OOD_OPT_STRING || s->type == OOD_OPT_ENUM)
            json_append_str(out, sizeof out, s->type == OOD_OPT_STRING && !v[0] ? "(model default)" : v);
        else
            snprintf(out + strlen(out), sizeof out - strlen(out), "%s", v);
    }
    return snprintf(buf, n, "%s}", out);
}

// One --help line: "  --k N   clusters per image (an integer in [1, 256], default 16)". A text
// option's line says only what it is for: its help says what empty means.
int ood_option_help_line(const ood_option_spec *s, char *buf, size_t n) {
    ood_options d;
    ood_options_default(&d);
    char flag[48], r[160] = "", v[64], imp[96] = "";
    snprintf(flag, sizeof flag, "--%s %s", s->name, s->arg);
    if (s->implies) {
        const char *eq = strchr(s->implies, '=');
        snprintf(imp, sizeof imp, " (implies --%.*s %s)", (int)(eq - s->implies), s->implies, eq + 1);
    }
    if (s->type == OOD_OPT_STRING) return snprintf(buf, n, "  %-20s %s%s\n", flag, s->help, imp);
    range_text(s, r, sizeof r);
    value_text(&d, s, v, sizeof v);
    return snprintf(buf, n, "  %-20s %s (%s, default %s)%s\n", flag, s->help, r, v, imp);
}
