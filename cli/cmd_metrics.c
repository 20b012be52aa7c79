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

int cli_eval_report(const evaluator *ev, const eval_info *info, const char *out_dir, const html_opts *html, err *e) {
    if (out_dir && (cli_mkdir_p(out_dir, e) || evaluator_write_reports(ev, info, out_dir, e))) return e->code;
    report r;
    evaluator_report(ev, info, &r);
    if (out_dir && html && report_write_html(&r, html, out_dir, e)) return e->code;
    char *t = evaluator_table_md(ev);
    if (t) {
        printf("%s (%d images), FPR95 convention %s\n\n%s", r.info.dataset, r.info.n_images, fpr_conv_name(r.conv), t);
        free(t);
    }
    if (out_dir) fprintf(stderr, "reports written to %s/ (%smetrics.json, metrics.md, metrics.csv%s, pr_curve.svg, roc_curve.svg)\n",
                         out_dir, out_dir && html ? "index.html, " : "", r.rows ? ", per_image.csv" : "");
    return OODSEG_OK;
}

// ---- the command -----------------------------------------------------------------------------
static int merge_states(char **paths, int n, const char *out_dir, const char *save, fpr_conv conv,
                        const html_opts *html, err *e) {
    evaluator *ev;
    int rc = evaluator_merge(&ev, (const char *const *)paths, n, conv, save, e);
    if (!rc) rc = cli_eval_report(ev, evaluator_info(ev), out_dir, html, e);
    evaluator_free(ev);
    return rc;
}

typedef struct metrics_args {
    cli_eval_flags f;          // shared with `oodseg eval`
    const char *out_dir, *method;
    const char *sdir[EVALUATOR_MAX_METHODS], *sname[EVALUATOR_MAX_METHODS];
    const char *smethod[EVALUATOR_MAX_METHODS];   // NAME of <stem>_NAME_score.npy, or NULL
    char namebuf[EVALUATOR_MAX_METHODS][EVALUATOR_NAME];
    int ns, merge, n_merge, partial;
    char **merge_paths;   // argc entries
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
    int taken = cli_eval_flag(&a->f, k, v, e);
    if (taken) return taken < 0 ? e->code : OODSEG_OK;
    if (!strcmp(k, "-o") || !strcmp(k, "--out")) a->out_dir = v;
    else if (!strcmp(k, "--method") || !strcmp(k, "--methods")) a->method = v;
    else if (!strcmp(k, "--scores")) {
        if (a->ns == EVALUATOR_MAX_METHODS) return err_set(e, OODSEG_E_ARG, "at most %d --scores", EVALUATOR_MAX_METHODS);
        add_scores(a, v);
    } else return err_set(e, OODSEG_E_ARG, "metrics: unknown option %s (see oodseg metrics --help)", k);
    return OODSEG_OK;
}

static int parse_args(int argc, char **argv, metrics_args *a, err *e) {
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) { cli_help("metrics"); return err_set(e, CLI_HELP, "help"); }
        if (!strcmp(k, "--merge")) { a->merge = 1; continue; }
        if (!strcmp(k, "--partial")) { a->partial = 1; continue; }
        if (cli_eval_switch(&a->f, k)) continue;
        if (k[0] != '-') {
            if (a->merge) { a->merge_paths[a->n_merge++] = argv[i]; continue; }
            return err_set(e, OODSEG_E_ARG, "metrics: unexpected argument '%s' (see oodseg metrics --help)", k);
        }
        if (!v) return err_set(e, OODSEG_E_ARG, "%s needs a value (see oodseg metrics --help)", k);
        i++;
        if (parse_valued(a, k, v, e)) return e->code;
    }
    return OODSEG_OK;
}

// Expands the --scores folders into one entry per method: with --method LIST, each folder's
// <stem>_<m>_score.npy for every m; without it, a folder with <stem>.npy (or <stem>_score.npy) for
// the first image is one method named after the folder, else every method whose
// <stem>_<m>_score.npy is there for the first image (the naming rule of `oodseg score`).
static int resolve_methods(metrics_args *a, const char *stem0, char *mbuf, size_t mcap, err *e) {
    const char *dir[EVALUATOR_MAX_METHODS], *name[EVALUATOR_MAX_METHODS];
    int given = a->ns, n = 0;
    memcpy(dir, a->sdir, sizeof dir);
    memcpy(name, a->sname, sizeof name);
    snprintf(mbuf, mcap, "%s", a->method ? a->method : "");
    const char *listed[EVALUATOR_MAX_METHODS];
    int nl = 0;
    for (char *sv = NULL, *t = strtok_r(mbuf, ",", &sv); t && nl < EVALUATOR_MAX_METHODS; t = strtok_r(NULL, ",", &sv)) listed[nl++] = t;
    for (int d = 0; d < given; d++) {
        char path[4400];
        int found = 0;
        if (!nl && score_map_find(dir[d], stem0, NULL, path, sizeof path)) {
            a->sdir[n] = dir[d]; a->sname[n] = name[d]; a->smethod[n++] = NULL;
            continue;
        }
        for (int i = 0; i < (nl ? nl : ood_method_count()); i++) {
            const char *m = nl ? listed[i] : ood_method_at(i)->name;
            if (!nl && !score_map_find(dir[d], stem0, m, path, sizeof path)) continue;
            if (n == EVALUATOR_MAX_METHODS) return err_set(e, OODSEG_E_ARG, "metrics: at most %d methods at once", EVALUATOR_MAX_METHODS);
            a->sdir[n] = dir[d]; a->sname[n] = m; a->smethod[n++] = m;
            found++;
        }
        if (!found)
            return err_set(e, OODSEG_E_DATA, "%s: no score map for the first image '%s' (looked for %s.npy, %s_score.npy and "
                           "%s_<method>_score.npy); give the folder oodseg score or eval --save-scores wrote", dir[d], stem0,
                           stem0, stem0, stem0);
    }
    a->ns = n;
    return OODSEG_OK;
}

// 1 when every method of a has image stem's score map.
static int has_all_maps(const metrics_args *a, const char *stem) {
    char path[4400];
    for (int m = 0; m < a->ns; m++)
        if (!score_map_find(a->sdir[m], stem, a->smethod[m], path, sizeof path)) return 0;
    return 1;
}

// The score maps of ds through the evaluator (images without maps skipped with --partial), then
// the state (if asked) and the reports.
static int run_metrics(const metrics_args *a, dataset *ds, const html_opts *html, err *e) {
    evaluator_opts eo;
    cli_eval_opts(&a->f, ds->smiyc_track, &eo);
    evaluator *ev;
    int rc = evaluator_new(&ev, a->ns, a->sname, &eo, e), skipped = 0;
    if (rc) return rc;
    double t0 = omp_get_wtime();
    for (int i = 0; i < ds->n && !rc; i++) {
        image lab;
        float *s[EVALUATOR_MAX_METHODS] = {0};
        if (a->partial && !has_all_maps(a, ds->items[i].stem)) { skipped++; continue; }
        if ((rc = dataset_load_label(ds, i, 0, 0, &lab, e))) break;
        for (int m = 0; m < a->ns && !rc; m++)
            rc = load_score_map(a->sdir[m], ds->items[i].stem, a->smethod[m], lab.w, lab.h, ds->items[i].label, &s[m], e);
        if (!rc) rc = evaluator_add(ev, ds->items[i].stem, (const float *const *)s, lab.px, lab.w, lab.h, 0, e);
        for (int m = 0; m < a->ns; m++) free(s[m]);
        image_free(&lab);
        cli_progress("metrics", i + 1, ds->n, t0);
    }
    if (!rc && skipped == ds->n) rc = err_set(e, OODSEG_E_DATA, "metrics --partial: no image of the %s dataset has score maps", ds->name);
    if (!rc && skipped) fprintf(stderr, "metrics: --partial: evaluated %d images, skipped %d without score maps\n", ds->n - skipped, skipped);
    // the component pass names each map's label only when the images are the dataset's, in order
    score_dirs sd = {a->sdir, skipped ? NULL : ds, a->smethod};
    if (!rc) rc = evaluator_finish(ev, score_dirs_map, &sd, e);
    eval_info info = {.dataset = a->f.spec, .layout = ds->name, .labels_doc = ds->labels_doc, .model = "score maps",
                      .n_images = ds->n - skipped};
    if (!rc && a->f.save_state) {
        char meta[8192];
        if (!(rc = eval_meta_json(&info, a->f.shard_i, a->f.shard_n, meta, sizeof meta, e)) &&
            !(rc = evaluator_save_state(ev, a->f.save_state, meta, e)))
            fprintf(stderr, "state saved to %s (merge shards with: oodseg metrics --merge STATE...)\n", a->f.save_state);
    }
    char note[160] = "", model[1200];
    if (a->f.shard_n > 1) snprintf(note, sizeof note, "shard %d/%d of the dataset only", a->f.shard_i, a->f.shard_n);
    if (skipped) snprintf(note + strlen(note), sizeof note - strlen(note), "%s%d of %d images without score maps skipped (--partial)",
                          note[0] ? "; " : "", skipped, ds->n);
    snprintf(model, sizeof model, "score maps in %s", a->sdir[0]);
    info.model = model;
    info.note = note[0] ? note : NULL;
    if (!rc) rc = cli_eval_report(ev, &info, a->out_dir, html, e);
    evaluator_free(ev);
    return rc;
}

int cmd_metrics(int argc, char **argv) {
    err e = {0};
    metrics_args a = {0};
    cli_eval_flags_init(&a.f);
    dataset ds = {0};
    char mbuf[512], cmdline[8192];
    if (!(a.merge_paths = calloc((size_t)argc + 1, sizeof(char *)))) return cli_fail(&(err){OODSEG_E_NOMEM, "out of memory"});
    int rc = parse_args(argc, argv, &a, &e);
    if (rc) goto done;
    cli_command_line(argc, argv, cmdline, sizeof cmdline);
    html_opts html = {.command_line = cmdline, .thumbs = 0};
    const html_opts *hp = a.f.no_html ? NULL : &html;
    if (a.merge) {
        if (!a.n_merge) { rc = err_set(&e, OODSEG_E_ARG, "metrics --merge: give the state files (see oodseg metrics --help)"); goto done; }
        rc = merge_states(a.merge_paths, a.n_merge, a.out_dir, a.f.save_state, a.f.conv, hp, &e);
        goto done;
    }
    if (!a.f.spec) { rc = err_set(&e, OODSEG_E_ARG, "metrics: --dataset NAME:PATH is required (see oodseg metrics --help)"); goto done; }
    if (!a.ns) { rc = err_set(&e, OODSEG_E_ARG, "metrics: --scores DIR is required (see oodseg metrics --help)"); goto done; }
    if ((rc = cli_open_dataset(&a.f, &ds, &e))) goto done;
    if ((rc = resolve_methods(&a, ds.items[0].stem, mbuf, sizeof mbuf, &e))) goto done;
    rc = run_metrics(&a, &ds, hp, &e);
done:
    dataset_free(&ds);
    free(a.merge_paths);
    return rc ? cli_fail(&e) : 0;
}
