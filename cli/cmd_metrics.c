// `oodseg metrics`: exact metrics of score maps saved by any tool (<stem>.npy, float32, label
// size), sharding with --shard/--save-state and exact merging with --merge. Also the evaluation
// helpers shared with `oodseg eval` (commands_eval.h).
#include "commands_eval.h"
#include "cli.h"
#include "../io/npy.h"
#include "../core/json.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

// ---- shared helpers --------------------------------------------------------------------------
int evacc_init(eval_acc *a, int n_methods, const char *const *names, fpr_conv conv, int comp_on,
               const comp_params *cp, err *e) {
    memset(a, 0, sizeof *a);
    if (n_methods < 1 || n_methods > REPORT_MAX_METHODS)
        return err_set(e, OODSEG_E_ARG, "%d methods; 1..%d allowed", n_methods, REPORT_MAX_METHODS);
    a->n_methods = n_methods;
    a->conv = conv;
    a->comp_on = comp_on;
    for (int m = 0; m < n_methods; m++) {
        snprintf(a->names[m], MSTATE_NAME, "%s", names[m]);
        if (cp) a->cp[m] = *cp; else comp_params_default(&a->cp[m], 0);
        if (macc_new(&a->acc[m], e)) return e->code;
    }
    return OODSEG_OK;
}

void evacc_free(eval_acc *a) {
    for (int m = 0; m < a->n_methods; m++) { macc_free(a->acc[m]); metrics_result_free(&a->res[m]); }
    report_rows_free(a->rows, a->n_rows);
    memset(a, 0, sizeof *a);
}

int evacc_add(eval_acc *a, const char *stem, const float *const *scores, const uint8_t *labels,
              int w, int h, double seconds, err *e) {
    int64_t n = (int64_t)w * h;
    if (a->n_rows == a->cap_rows) {
        int cap = a->cap_rows ? a->cap_rows * 2 : 256;
        report_row *r = realloc(a->rows, (size_t)cap * sizeof *r);
        if (!r) return err_set(e, OODSEG_E_NOMEM, "out of memory for the per-image table");
        a->rows = r; a->cap_rows = cap;
    }
    report_row *row = &a->rows[a->n_rows];
    memset(row, 0, sizeof *row);
    if (!(row->stem = strdup(stem))) return err_set(e, OODSEG_E_NOMEM, "out of memory");
    a->n_rows++;
    row->seconds = seconds;
    for (int m = 0; m < a->n_methods; m++) {
        if (macc_add(a->acc[m], scores[m], labels, n, e)) return err_prefix(e, "%s (%s): ", stem, a->names[m]);
        metrics_result r;
        if (metrics_compute(scores[m], labels, n, a->conv, 0, &r, e)) return err_prefix(e, "%s: ", stem);
        row->n_valid = r.n_pos + r.n_neg;
        row->n_ood = r.n_pos;
        row->ap[m] = r.ap; row->auroc[m] = r.auroc; row->fpr95[m] = r.fpr95;
        if (a->comp_on && a->cp[m].threshold == a->cp[m].threshold &&
            comp_add(&a->comp[m], scores[m], labels, w, h, &a->cp[m], e))
            return err_prefix(e, "%s: ", stem);
    }
    return OODSEG_OK;
}

int evacc_compute(eval_acc *a, err *e) {
    for (int m = 0; m < a->n_methods; m++) {
        if (macc_compute(a->acc[m], a->conv, 1, &a->res[m], e)) return err_prefix(e, "%s: ", a->names[m]);
        if (a->comp_on && a->cp[m].threshold != a->cp[m].threshold && a->res[m].defined)
            a->cp[m].threshold = comp_default_threshold(&a->res[m]);
    }
    a->computed = 1;
    return OODSEG_OK;
}

int load_score_map(const char *dir, const char *stem, int w, int h, const char *label_path,
                   float **out, err *e) {
    char p[4200];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s.npy", dir, stem);
    if (stat(p, &st) != 0) {
        char q[4200];
        snprintf(q, sizeof q, "%s/%s_score.npy", dir, stem);
        if (stat(q, &st) != 0)
            return err_set(e, OODSEG_E_DATA, "%s: missing score map for image '%s' (expected <stem>.npy, float32, %dx%d as (%d, %d))",
                           p, stem, w, h, h, w);
        snprintf(p, sizeof p, "%s", q);
    }
    npy_array a;
    if (npy_read(p, &a, e)) return e->code;
    int ok = (a.ndim == 2 && a.shape[0] == h && a.shape[1] == w) ||
             (a.ndim == 3 && a.shape[0] == 1 && a.shape[1] == h && a.shape[2] == w);
    if (!ok) {
        char sh[128] = "";
        for (int i = 0; i < a.ndim && i < 4; i++) {
            size_t l = strlen(sh);
            snprintf(sh + l, sizeof sh - l, "%s%lld", i ? ", " : "", (long long)a.shape[i]);
        }
        npy_free(&a);
        return err_set(e, OODSEG_E_DATA, "%s: score map of shape (%s) but the label %s is %dx%d; save maps at label size, shape (%d, %d)",
                       p, sh, label_path, w, h, h, w);
    }
    if (!strcmp(a.dtype, "f4")) { *out = a.data; a.data = NULL; }
    else if (!(*out = npy_to_f32(&a, e))) { npy_free(&a); return err_prefix(e, "%s: ", p); }
    npy_free(&a);
    return OODSEG_OK;
}

int evacc_comp_pass(eval_acc *a, const dataset *ds, const char *const *dirs, err *e) {
    if (!a->comp_on) return OODSEG_OK;
    for (int i = 0; i < ds->n; i++) {
        image lab;
        if (dataset_load_label(ds, i, 0, 0, &lab, e)) return e->code;
        for (int m = 0; m < a->n_methods; m++) {
            float *s = NULL;
            if (!a->res[m].defined) continue;
            int rc = load_score_map(dirs[m], ds->items[i].stem, lab.w, lab.h, ds->items[i].label, &s, e);
            if (!rc) rc = comp_add(&a->comp[m], s, lab.px, lab.w, lab.h, &a->cp[m], e);
            free(s);
            if (rc) { image_free(&lab); return rc; }
        }
        image_free(&lab);
    }
    return OODSEG_OK;
}

int eval_finish_report(eval_acc *a, report *r, const char *out_dir, err *e) {
    r->conv = a->conv;
    r->n_methods = a->n_methods;
    for (int m = 0; m < a->n_methods; m++) {
        r->methods[m] = a->names[m];
        r->res[m] = &a->res[m];
        if (a->comp_on) { comp_finish(&a->comp[m], &a->comp_res[m]); r->comp[m] = a->comp_res[m]; r->comp_p[m] = a->cp[m]; }
    }
    r->has_comp = a->comp_on;
    if (!r->rows) { r->rows = a->rows; r->n_rows = a->n_rows; }
    if (out_dir) {
        if (cli_mkdir_p(out_dir, e) || report_write_all(r, out_dir, e)) return e->code;
    }
    char *t = report_table_md(r);
    if (t) {
        printf("%s (%d images), FPR95 convention %s\n\n%s", r->dataset, r->n_images, fpr_conv_name(r->conv), t);
        free(t);
    }
    if (out_dir) fprintf(stderr, "reports written to %s/ (metrics.json, metrics.md, metrics.csv%s, pr_curve.svg, roc_curve.svg)\n",
                         out_dir, r->rows ? ", per_image.csv" : "");
    return OODSEG_OK;
}

// ---- the command -----------------------------------------------------------------------------
static const char *metrics_usage =
    "usage: oodseg metrics --dataset NAME:PATH --scores [NAME=]DIR [--scores ...] [-o DIR]\n"
    "                      [--shard I/N] [--limit N] [--save-state FILE] [--fpr-convention first-ge|nearest|first-gt]\n"
    "                      [--components | --no-components] [--comp-threshold T] [--connectivity 4|8]\n"
    "       oodseg metrics --merge STATE... [-o DIR] [--save-state FILE] [--fpr-convention C]\n"
    "Score maps: DIR/<stem>.npy (or <stem>_score.npy), float32, at label size, higher = more anomalous.\n"
    "Component metrics (SegmentMeIfYouCan) are on by default for smiyc-* datasets.\n";

static int merge_states(char **paths, int n, const char *out_dir, const char *save, fpr_conv conv, err *e) {
    int ns = 0, images = 0, rc;
    char names[MSTATE_MAX_SECTIONS][MSTATE_NAME], meta[8192];
    metrics_result res[MSTATE_MAX_SECTIONS];
    for (int i = 0; i < n; i++) {   // add up the shards' image counts
        char m[8192];
        if ((rc = mstate_read_meta(paths[i], m, sizeof m, e))) return rc;
        json *j = json_parse(m, strlen(m), paths[i], e);
        const json *im = j ? json_get(j, "images") : NULL;
        if (im && im->type == JSON_NUMBER) images += (int)im->i64;
        json_free(j);
    }
    if ((rc = mstate_merge((const char *const *)paths, n, conv, 1, save, &ns, names, res, meta, sizeof meta, e))) return rc;
    json *j = json_parse(meta, strlen(meta), "state metadata", e);
    const json *v;
    report r = {0};
    char note[128];
    snprintf(note, sizeof note, "merged from %d shard state%s", n, n == 1 ? "" : "s");
    r.dataset = j && (v = json_get(j, "dataset")) && v->type == JSON_STRING ? v->str : "?";
    r.layout = j && (v = json_get(j, "layout")) && v->type == JSON_STRING ? v->str : "?";
    r.labels_doc = j && (v = json_get(j, "labels")) && v->type == JSON_STRING ? v->str : "?";
    r.model = j && (v = json_get(j, "model")) && v->type == JSON_STRING ? v->str : "?";
    r.model_arch = j && (v = json_get(j, "model_arch")) && v->type == JSON_STRING ? v->str : NULL;
    r.note = note;
    r.n_images = images;
    eval_acc a = {0};
    a.n_methods = ns;
    a.conv = conv;
    for (int m = 0; m < ns; m++) { memcpy(a.names[m], names[m], MSTATE_NAME); a.res[m] = res[m]; }
    rc = eval_finish_report(&a, &r, out_dir, e);
    for (int m = 0; m < ns; m++) metrics_result_free(&a.res[m]);
    json_free(j);
    return rc;
}

int cmd_metrics(int argc, char **argv) {
    err e = {0};
    const char *spec = NULL, *out_dir = NULL, *save = NULL;
    const char *sdir[REPORT_MAX_METHODS], *sname[REPORT_MAX_METHODS];
    char namebuf[REPORT_MAX_METHODS][MSTATE_NAME];
    int ns = 0, limit = 0, shard_i = 0, shard_n = 0, comp = -1, merge = 0, rc = 0;
    char **merge_paths = calloc((size_t)argc + 1, sizeof(char *));
    int n_merge = 0;
    fpr_conv conv = FPR_FIRST_GE;
    comp_params cp;
    comp_params_default(&cp, 0);
    int cp_conn = 8;
    double cp_thr = NAN;
    ds_generic g = {0};
    dataset ds = {0};
    eval_acc a = {0};
    if (!merge_paths) return cli_fail(&(err){OODSEG_E_NOMEM, "out of memory"});
    for (int i = 2; i < argc && !rc; i++) {
        const char *k = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) { printf("%s\n%s", metrics_usage, dataset_help()); free(merge_paths); return 0; }
        if (!strcmp(k, "--merge")) { merge = 1; continue; }
        if (!strcmp(k, "--components")) { comp = 1; continue; }
        if (!strcmp(k, "--no-components")) { comp = 0; continue; }
        if (k[0] != '-') {
            if (merge) { merge_paths[n_merge++] = argv[i]; continue; }
            rc = err_set(&e, OODSEG_E_ARG, "metrics: unexpected argument '%s'\n%s", k, metrics_usage);
            break;
        }
        if (!v) { rc = err_set(&e, OODSEG_E_ARG, "%s needs a value\n%s", k, metrics_usage); break; }
        i++;
        if (!strcmp(k, "--dataset")) spec = v;
        else if (!strcmp(k, "-o") || !strcmp(k, "--out")) out_dir = v;
        else if (!strcmp(k, "--save-state")) save = v;
        else if (!strcmp(k, "--shard")) rc = dataset_parse_shard(v, &shard_i, &shard_n, &e);
        else if (!strcmp(k, "--limit")) { char *end; limit = (int)strtol(v, &end, 10); if (*end || limit < 0) rc = err_set(&e, OODSEG_E_ARG, "--limit '%s': expected a count >= 0", v); }
        else if (!strcmp(k, "--fpr-convention")) rc = fpr_conv_parse(v, &conv, &e);
        else if (!strcmp(k, "--comp-threshold")) { char *end; cp_thr = strtod(v, &end); if (*end || end == v) rc = err_set(&e, OODSEG_E_ARG, "--comp-threshold '%s': expected a number", v); }
        else if (!strcmp(k, "--connectivity")) { cp_conn = atoi(v); if (cp_conn != 4 && cp_conn != 8) rc = err_set(&e, OODSEG_E_ARG, "--connectivity '%s': use 4 or 8", v); }
        else if (!strcmp(k, "--images")) g.images = v;
        else if (!strcmp(k, "--labels")) g.labels = v;
        else if (!strcmp(k, "--label-suffix")) g.label_suffix = v;
        else if (!strcmp(k, "--ood")) g.ood = v;
        else if (!strcmp(k, "--ignore")) g.ignore = v;
        else if (!strcmp(k, "--id")) g.id = v;
        else if (!strcmp(k, "--scores")) {
            if (ns == REPORT_MAX_METHODS) { rc = err_set(&e, OODSEG_E_ARG, "at most %d --scores", REPORT_MAX_METHODS); break; }
            const char *eq = strchr(v, '=');
            if (eq) { snprintf(namebuf[ns], MSTATE_NAME, "%.*s", (int)(eq - v), v); sdir[ns] = eq + 1; }
            else {
                char tmp[1024];
                snprintf(tmp, sizeof tmp, "%s", v);
                size_t l = strlen(tmp);
                while (l > 1 && tmp[l - 1] == '/') tmp[--l] = 0;
                const char *b = strrchr(tmp, '/');
                snprintf(namebuf[ns], MSTATE_NAME, "%.31s", b ? b + 1 : tmp);   // a method name, truncated
                sdir[ns] = v;
            }
            sname[ns] = namebuf[ns];
            ns++;
        } else rc = err_set(&e, OODSEG_E_ARG, "metrics: unknown option %s\n%s", k, metrics_usage);
    }
    if (rc) goto done;
    if (merge) {
        if (!n_merge) { rc = err_set(&e, OODSEG_E_ARG, "metrics --merge: give the state files\n%s", metrics_usage); goto done; }
        rc = merge_states(merge_paths, n_merge, out_dir, save, conv, &e);
        goto done;
    }
    if (!spec) { rc = err_set(&e, OODSEG_E_ARG, "metrics: --dataset NAME:PATH is required\n%s", metrics_usage); goto done; }
    if (!ns) { rc = err_set(&e, OODSEG_E_ARG, "metrics: --scores DIR is required\n%s", metrics_usage); goto done; }
    if ((rc = dataset_open(spec, &g, &ds, &e))) goto done;
    if ((rc = dataset_select(&ds, limit, shard_i, shard_n, &e))) goto done;
    if (ds.n == 0) { rc = err_set(&e, OODSEG_E_ARG, "--shard %d/%d selects no image of the %s dataset", shard_i, shard_n, ds.name); goto done; }
    if (comp < 0) comp = ds.smiyc_track != 0;
    comp_params_default(&cp, ds.smiyc_track == 2);
    cp.connectivity = cp_conn;
    cp.threshold = cp_thr;
    if ((rc = evacc_init(&a, ns, sname, conv, comp, &cp, &e))) goto done;
    double t0 = omp_get_wtime();
    for (int i = 0; i < ds.n && !rc; i++) {
        image lab;
        float *s[REPORT_MAX_METHODS] = {0};
        if ((rc = dataset_load_label(&ds, i, 0, 0, &lab, &e))) break;
        for (int m = 0; m < ns && !rc; m++)
            rc = load_score_map(sdir[m], ds.items[i].stem, lab.w, lab.h, ds.items[i].label, &s[m], &e);
        if (!rc) rc = evacc_add(&a, ds.items[i].stem, (const float *const *)s, lab.px, lab.w, lab.h, 0, &e);
        for (int m = 0; m < ns; m++) free(s[m]);
        image_free(&lab);
        cli_progress("metrics", i + 1, ds.n, t0);
    }
    if (rc || (rc = evacc_compute(&a, &e))) goto done;
    if (comp && cp_thr != cp_thr && (rc = evacc_comp_pass(&a, &ds, sdir, &e))) goto done;
    char meta[8192] = "{\"dataset\": ", note[96] = "";
    size_t ml;
    json_append_str(meta, sizeof meta, spec);
    strcat(meta, ", \"layout\": "); json_append_str(meta, sizeof meta, ds.name);
    strcat(meta, ", \"labels\": "); json_append_str(meta, sizeof meta, ds.labels_doc);
    strcat(meta, ", \"model\": "); json_append_str(meta, sizeof meta, "score maps");
    ml = strlen(meta);
    snprintf(meta + ml, sizeof meta - ml, ", \"images\": %d, \"shard\": \"%d/%d\"}", ds.n, shard_i, shard_n ? shard_n : 1);
    if (save) {
        macc *accs[REPORT_MAX_METHODS];
        for (int m = 0; m < ns; m++) accs[m] = a.acc[m];
        if ((rc = mstate_save(save, meta, ns, sname, accs, &e))) goto done;
        fprintf(stderr, "state saved to %s (merge shards with: oodseg metrics --merge STATE...)\n", save);
    }
    if (shard_n > 1) snprintf(note, sizeof note, "shard %d/%d of the dataset only", shard_i, shard_n);
    char model[1200];
    snprintf(model, sizeof model, "score maps in %s", sdir[0]);
    report r = {.dataset = spec, .layout = ds.name, .labels_doc = ds.labels_doc, .model = model,
                .note = note[0] ? note : NULL, .n_images = ds.n};
    rc = eval_finish_report(&a, &r, out_dir, &e);
done:
    evacc_free(&a);
    dataset_free(&ds);
    free(merge_paths);
    return rc ? cli_fail(&e) : 0;
}
