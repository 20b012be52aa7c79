// `oodseg metrics`: exact metrics of score maps saved by any tool (<stem>.npy, float32, label
// size), sharding with --shard/--save-state and exact merging with --merge. Also the report
// printing shared with `oodseg eval` (commands_eval.h).
#include "commands_eval.h"
#include "cli.h"
#include "../eval/scoremap.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_eval_report(const evaluator *ev, const eval_info *info, const char *out_dir, err *e) {
    if (out_dir && (cli_mkdir_p(out_dir, e) || evaluator_write_reports(ev, info, out_dir, e))) return e->code;
    report r;
    evaluator_report(ev, info, &r);
    char *t = evaluator_table_md(ev);
    if (t) {
        printf("%s (%d images), FPR95 convention %s\n\n%s", r.dataset, r.n_images, fpr_conv_name(r.conv), t);
        free(t);
    }
    if (out_dir) fprintf(stderr, "reports written to %s/ (metrics.json, metrics.md, metrics.csv%s, pr_curve.svg, roc_curve.svg)\n",
                         out_dir, r.rows ? ", per_image.csv" : "");
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
    evaluator *ev;
    int rc = evaluator_merge(&ev, (const char *const *)paths, n, conv, save, e);
    if (!rc) rc = cli_eval_report(ev, evaluator_info(ev), out_dir, e);
    evaluator_free(ev);
    return rc;
}

#define HELP_SENTINEL 99   // not a status code: --help was printed, exit 0

typedef struct metrics_args {
    const char *spec, *out_dir, *save;
    const char *sdir[EVALUATOR_MAX_METHODS], *sname[EVALUATOR_MAX_METHODS];
    char namebuf[EVALUATOR_MAX_METHODS][EVALUATOR_NAME];
    int ns, limit, shard_i, shard_n, comp, merge, n_merge, conn;
    char **merge_paths;   // argc entries
    fpr_conv conv;
    double comp_thr;
    ds_generic g;
} metrics_args;

// --scores [NAME=]DIR: the method is NAME, or the folder's last component (cut to 31 bytes).
static void add_scores(metrics_args *a, const char *v) {
    const char *eq = strchr(v, '=');
    char *nm = a->namebuf[a->ns];
    if (eq) { snprintf(nm, EVALUATOR_NAME, "%.*s", (int)(eq - v), v); a->sdir[a->ns] = eq + 1; }
    else {
        char tmp[1024];
        snprintf(tmp, sizeof tmp, "%s", v);
        size_t l = strlen(tmp);
        while (l > 1 && tmp[l - 1] == '/') tmp[--l] = 0;
        const char *b = strrchr(tmp, '/');
        snprintf(nm, EVALUATOR_NAME, "%.31s", b ? b + 1 : tmp);
        a->sdir[a->ns] = v;
    }
    a->sname[a->ns] = nm;
    a->ns++;
}

// One option with its value v; OODSEG_E_ARG for an unknown one.
static int parse_valued(metrics_args *a, const char *k, const char *v, err *e) {
    char *end;
    if (!strcmp(k, "--dataset")) a->spec = v;
    else if (!strcmp(k, "-o") || !strcmp(k, "--out")) a->out_dir = v;
    else if (!strcmp(k, "--save-state")) a->save = v;
    else if (!strcmp(k, "--shard")) return dataset_parse_shard(v, &a->shard_i, &a->shard_n, e);
    else if (!strcmp(k, "--limit")) { a->limit = (int)strtol(v, &end, 10); if (*end || a->limit < 0) return err_set(e, OODSEG_E_ARG, "--limit '%s': expected a count >= 0", v); }
    else if (!strcmp(k, "--fpr-convention")) return fpr_conv_parse(v, &a->conv, e);
    else if (!strcmp(k, "--comp-threshold")) { a->comp_thr = strtod(v, &end); if (*end || end == v) return err_set(e, OODSEG_E_ARG, "--comp-threshold '%s': expected a number", v); }
    else if (!strcmp(k, "--connectivity")) { a->conn = atoi(v); if (a->conn != 4 && a->conn != 8) return err_set(e, OODSEG_E_ARG, "--connectivity '%s': use 4 or 8", v); }
    else if (!strcmp(k, "--images")) a->g.images = v;
    else if (!strcmp(k, "--labels")) a->g.labels = v;
    else if (!strcmp(k, "--label-suffix")) a->g.label_suffix = v;
    else if (!strcmp(k, "--ood")) a->g.ood = v;
    else if (!strcmp(k, "--ignore")) a->g.ignore = v;
    else if (!strcmp(k, "--id")) a->g.id = v;
    else if (!strcmp(k, "--scores")) {
        if (a->ns == EVALUATOR_MAX_METHODS) return err_set(e, OODSEG_E_ARG, "at most %d --scores", EVALUATOR_MAX_METHODS);
        add_scores(a, v);
    } else return err_set(e, OODSEG_E_ARG, "metrics: unknown option %s\n%s", k, metrics_usage);
    return OODSEG_OK;
}

static int parse_args(int argc, char **argv, metrics_args *a, err *e) {
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) {
            printf("%s\n%s", metrics_usage, dataset_help());
            return HELP_SENTINEL;
        }
        if (!strcmp(k, "--merge")) { a->merge = 1; continue; }
        if (!strcmp(k, "--components")) { a->comp = 1; continue; }
        if (!strcmp(k, "--no-components")) { a->comp = 0; continue; }
        if (k[0] != '-') {
            if (a->merge) { a->merge_paths[a->n_merge++] = argv[i]; continue; }
            return err_set(e, OODSEG_E_ARG, "metrics: unexpected argument '%s'\n%s", k, metrics_usage);
        }
        if (!v) return err_set(e, OODSEG_E_ARG, "%s needs a value\n%s", k, metrics_usage);
        i++;
        if (parse_valued(a, k, v, e)) return e->code;
    }
    return OODSEG_OK;
}

// The score maps of ds through the evaluator, then the state (if asked) and the reports.
static int run_metrics(const metrics_args *a, dataset *ds, err *e) {
    evaluator_opts eo;
    evaluator_opts_default(&eo, ds->smiyc_track);
    eo.conv = a->conv;
    if (a->comp >= 0) eo.components = a->comp;
    eo.comp.connectivity = a->conn;
    eo.comp.threshold = a->comp_thr;
    evaluator *ev;
    int rc = evaluator_new(&ev, a->ns, a->sname, &eo, e);
    if (rc) return rc;
    double t0 = omp_get_wtime();
    for (int i = 0; i < ds->n && !rc; i++) {
        image lab;
        float *s[EVALUATOR_MAX_METHODS] = {0};
        if ((rc = dataset_load_label(ds, i, 0, 0, &lab, e))) break;
        for (int m = 0; m < a->ns && !rc; m++)
            rc = load_score_map(a->sdir[m], ds->items[i].stem, lab.w, lab.h, ds->items[i].label, &s[m], e);
        if (!rc) rc = evaluator_add(ev, ds->items[i].stem, (const float *const *)s, lab.px, lab.w, lab.h, 0, e);
        for (int m = 0; m < a->ns; m++) free(s[m]);
        image_free(&lab);
        cli_progress("metrics", i + 1, ds->n, t0);
    }
    score_dirs sd = {a->sdir, ds};
    if (!rc) rc = evaluator_finish(ev, score_dirs_map, &sd, e);
    eval_info info = {.dataset = a->spec, .layout = ds->name, .labels_doc = ds->labels_doc, .model = "score maps",
                      .n_images = ds->n};
    if (!rc && a->save) {
        char meta[8192];
        if (!(rc = eval_meta_json(&info, a->shard_i, a->shard_n, meta, sizeof meta, e)) &&
            !(rc = evaluator_save_state(ev, a->save, meta, e)))
            fprintf(stderr, "state saved to %s (merge shards with: oodseg metrics --merge STATE...)\n", a->save);
    }
    char note[96] = "", model[1200];
    if (a->shard_n > 1) snprintf(note, sizeof note, "shard %d/%d of the dataset only", a->shard_i, a->shard_n);
    snprintf(model, sizeof model, "score maps in %s", a->sdir[0]);
    info.model = model;
    info.note = note[0] ? note : NULL;
    if (!rc) rc = cli_eval_report(ev, &info, a->out_dir, e);
    evaluator_free(ev);
    return rc;
}

int cmd_metrics(int argc, char **argv) {
    err e = {0};
    metrics_args a = {.comp = -1, .conn = 8, .comp_thr = NAN, .conv = FPR_FIRST_GE};
    dataset ds = {0};
    if (!(a.merge_paths = calloc((size_t)argc + 1, sizeof(char *)))) return cli_fail(&(err){OODSEG_E_NOMEM, "out of memory"});
    int rc = parse_args(argc, argv, &a, &e);
    if (rc == HELP_SENTINEL) { free(a.merge_paths); return 0; }
    if (rc) goto done;
    if (a.merge) {
        if (!a.n_merge) { rc = err_set(&e, OODSEG_E_ARG, "metrics --merge: give the state files\n%s", metrics_usage); goto done; }
        rc = merge_states(a.merge_paths, a.n_merge, a.out_dir, a.save, a.conv, &e);
        goto done;
    }
    if (!a.spec) { rc = err_set(&e, OODSEG_E_ARG, "metrics: --dataset NAME:PATH is required\n%s", metrics_usage); goto done; }
    if (!a.ns) { rc = err_set(&e, OODSEG_E_ARG, "metrics: --scores DIR is required\n%s", metrics_usage); goto done; }
    if ((rc = dataset_open(a.spec, &a.g, &ds, &e))) goto done;
    if ((rc = dataset_select(&ds, a.limit, a.shard_i, a.shard_n, &e))) goto done;
    if (ds.n == 0) { rc = err_set(&e, OODSEG_E_ARG, "--shard %d/%d selects no image of the %s dataset", a.shard_i, a.shard_n, ds.name); goto done; }
    rc = run_metrics(&a, &ds, &e);
done:
    dataset_free(&ds);
    free(a.merge_paths);
    return rc ? cli_fail(&e) : 0;
}
