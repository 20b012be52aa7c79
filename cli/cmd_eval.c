// `oodseg eval`: runs a model once per image of a benchmark for all the OoD methods asked for,
// and writes exact pooled metrics, per-image metrics and reports (eval/report.h).
#include "commands_eval.h"
#include "cli.h"
#include "../nn/gemm_bf16.h"
#include "../api/pipeline.h"
#include "../eval/scoremap.h"
#include "../api/disteval.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct eval_opts {
    cli_eval_flags f;          // shared with `oodseg metrics`
    const char *scale;
    int save_maps, save_scores, resume, chunk;
    char options_json[4096];   // every option given, for metrics.json
} eval_opts;

static int flag_value(int argc, char **argv, int i, err *e) {
    if (i + 1 >= argc) { err_set(e, OODSEG_E_ARG, "%s needs a value", argv[i]); return -1; }
    return 2;
}

// Options that cli_parse does not know; returns argv entries used (0: not ours, -1: error).
static int eval_extra(void *ctx, int argc, char **argv, int i, err *e) {
    eval_opts *o = ctx;
    const char *k = argv[i];
    if (!strcmp(k, "--save-maps")) { o->save_maps = 1; return 1; }
    if (!strcmp(k, "--save-scores")) { o->save_scores = 1; return 1; }
    if (cli_eval_switch(&o->f, k)) return 1;
    if (!strcmp(k, "--resume")) { o->resume = 1; return 1; }
    static const char *valued[] = {"--dataset", "--limit", "--shard", "--save-state", "--fpr-convention", "--scale",
                                   "--comp-threshold", "--connectivity", "--images", "--labels",
                                   "--label-suffix", "--ood", "--ignore", "--id", "--checkpoint-every"};
    int mine = 0;
    for (size_t j = 0; j < sizeof valued / sizeof *valued; j++) if (!strcmp(k, valued[j])) mine = 1;
    if (!mine) {
        // Record model and method options for the report, then let cli_parse handle them.
        if (k[0] == '-' && strcmp(k, "-o") && strcmp(k, "--out") && i + 1 < argc)   // dropped if it does not fit
            eval_json_member(o->options_json, sizeof o->options_json, k + (k[1] == '-' ? 2 : 1), argv[i + 1], NULL);
        return 0;
    }
    if (flag_value(argc, argv, i, e) < 0) return -1;
    const char *v = argv[i + 1];
    int rc = OODSEG_OK, taken = cli_eval_flag(&o->f, k, v, e);
    char *end;
    if (taken) return taken < 0 ? -1 : 2;
    if (!strcmp(k, "--scale")) o->scale = v;
    else if (!strcmp(k, "--checkpoint-every")) { o->chunk = (int)strtol(v, &end, 10); if (*end || end == v || o->chunk < 1) rc = err_set(e, OODSEG_E_ARG, "--checkpoint-every '%s': expected a count of images >= 1", v); }
    return rc ? -1 : 2;
}

static int check_args(const eval_opts *o, const cli_common *c, err *e) {
    if (!o->f.spec) return err_set(e, OODSEG_E_ARG, "eval: --dataset NAME:PATH is required (see oodseg eval --help)");
    if (!c->out_dir) return err_set(e, OODSEG_E_ARG, "eval: give an output folder with -o DIR (see oodseg eval --help)");
    if (c->n_pos) return err_set(e, OODSEG_E_ARG, "eval: unexpected argument '%s' (see oodseg eval --help)", c->pos[0]);
    return OODSEG_OK;
}

// OUT/scores/<method>/ for each method (sdirs[k] allocated, freed by the caller).
static int make_score_dirs(const char *out_dir, int n, const char *const *names, char **sdirs, err *e) {
    for (int k = 0; k < n; k++) {
        size_t l = strlen(out_dir) + strlen(names[k]) + 16;
        if (!(sdirs[k] = malloc(l))) return err_set(e, OODSEG_E_NOMEM, "out of memory");
        snprintf(sdirs[k], l, "%s/scores/%s", out_dir, names[k]);
        if (cli_mkdir_p(sdirs[k], e)) return e->code;
    }
    return OODSEG_OK;
}

static int open_evaluator(const eval_opts *o, const dataset *ds, int n_methods, const char *const *names,
                          evaluator **ev, err *e) {
    evaluator_opts eo;
    cli_eval_opts(&o->f, ds->smiyc_track, &eo);
    return evaluator_new(ev, n_methods, names, &eo, e);
}

// After the last image: the pooled metrics (and the component pass over the saved score maps),
// the shard state if asked for, and the reports.
static int finish_eval(evaluator *ev, const eval_opts *o, const cli_common *c, const dataset *ds, const char *arch,
                       const char *const *sdirs, const html_opts *html, double t0, err *e) {
    const char *model = c->cfg.model[0] ? c->cfg.model : NULL;
    score_dirs sd = {sdirs, ds, NULL};
    if (evaluator_finish(ev, score_dirs_map, &sd, e)) return e->code;
    eval_info info = {.dataset = o->f.spec, .layout = ds->name, .labels_doc = ds->labels_doc,
                      .model = model ? model : "(default)", .model_arch = arch,
                      .options_json = o->options_json, .n_images = ds->n};
    if (o->f.save_state) {
        char meta[8192];
        if (eval_meta_json(&info, o->f.shard_i, o->f.shard_n, meta, sizeof meta, e) ||
            evaluator_save_state(ev, o->f.save_state, meta, e)) return e->code;
        fprintf(stderr, "state saved to %s (merge shards with: oodseg metrics --merge STATE...)\n", o->f.save_state);
    }
    char note[96] = "";
    if (o->f.shard_n > 1) snprintf(note, sizeof note, "shard %d/%d of the dataset only", o->f.shard_i, o->f.shard_n);
    fprintf(stderr, "evaluated %d image%s with %s in %.1f s\n", ds->n, ds->n == 1 ? "" : "s", arch, omp_get_wtime() - t0);
    info.model = model ? model : "(default model)";
    info.note = note[0] ? note : NULL;
    return cli_eval_report(ev, &info, c->out_dir, html, e);
}

static void dist_fail(void *ctx, const char *stem, const err *e) {
    (void)ctx;
    fprintf(stderr, "oodseg: %s (image %s skipped; going on)\n", e->msg, stem);
}

static void dist_image(void *ctx, int done, int total) {
    const double *t0 = ctx;
    cli_progress("eval", done, total, *t0);
}

// Under mpirun (or with --resume): every rank its share of the images in chunks kept on disk
// (api/disteval.h), then rank 0 merges them exactly and writes the same reports as one process.
static int eval_distributed(pipeline *p, const dataset *ds, const eval_opts *o, const cli_common *c,
                            const eval_save *save, const html_opts *html, err *e) {
    const dist *d = cli_dist();
    if (o->f.comp == 1 || (o->f.comp < 0 && ds->smiyc_track) || o->f.save_state)
        return err_set(e, OODSEG_E_ARG, "eval: component metrics and --save-state are not available with several ranks or "
                       "--resume yet; use --no-components, or --shard and oodseg metrics --merge");
    double t0 = omp_get_wtime();
    char run_dir[4200];
    snprintf(run_dir, sizeof run_dir, "%s/chunks", c->out_dir);
    dist_eval_opts dopts = {run_dir, o->chunk, o->resume, o->f.conv, save, dist_fail, d->rank == 0 ? dist_image : NULL, &t0};
    dist_eval_result r;
    if (dist_eval_run(d, p, ds, &dopts, &r, e)) return e->code;
    int rc = OODSEG_OK;
    if (d->rank == 0) {
        const char *model = c->cfg.model[0] ? c->cfg.model : NULL;
        char note[96] = "";
        if (o->f.shard_n > 1) snprintf(note, sizeof note, "shard %d/%d of the dataset only", o->f.shard_i, o->f.shard_n);
        eval_info info = {.dataset = o->f.spec, .layout = ds->name, .labels_doc = ds->labels_doc,
                          .model = model ? model : "(default model)", .model_arch = p->m->desc.arch,
                          .options_json = o->options_json, .note = note[0] ? note : NULL, .n_images = r.n_rows};
        report rep;
        dist_eval_report(&r, &info, &rep);
        fprintf(stderr, "evaluated %d image%s with %s on %d rank%s in %.1f s%s\n", r.n_rows, r.n_rows == 1 ? "" : "s",
                p->m->desc.arch, d->size, d->size == 1 ? "" : "s", omp_get_wtime() - t0, r.n_failed ? "" : "");
        if (r.n_failed) fprintf(stderr, "eval: %d image%s FAILED and were skipped (see above)\n", r.n_failed, r.n_failed == 1 ? "" : "s");
        if (!(rc = report_write_all(&rep, c->out_dir, e)) && html) rc = report_write_html(&rep, html, c->out_dir, e);
        char *t = rc ? NULL : report_table_md(&rep);
        if (t) { printf("%s (%d images), FPR95 convention %s\n\n%s", rep.info.dataset, rep.info.n_images, fpr_conv_name(rep.conv), t); free(t); }
        if (!rc) fprintf(stderr, "reports written to %s/\n", c->out_dir);
    }
    if (r.n_resumed) fprintf(stderr, "eval: rank %d resumed %d images done before\n", d->rank, r.n_resumed);
    if (!rc && r.n_failed) { *e = r.first_failure; rc = e->code ? e->code : OODSEG_E_DATA; }
    dist_eval_result_free(&r);
    return rc;
}

// Parses, opens the dataset, the pipeline and the evaluator, then one library call per image.
int cmd_eval(int argc, char **argv) {
    cli_common c = {0};
    err e = {0};
    pipeline p = {0};
    dataset ds = {0};
    evaluator *ev = NULL;
    eval_opts o = {0};
    cli_eval_flags_init(&o.f);
    char *sdirs[PIPE_MAX_METHODS] = {0}, maps[4200], thumbs[4200], cmdline[8192];
    int rc;
    strcpy(o.options_json, "{}");
    if ((rc = cli_parse(argc, argv, 2, "eval", &c, eval_extra, &o, &e))) goto done;
    if (!c.cfg.methods[0]) snprintf(c.cfg.methods, sizeof c.cfg.methods, "maxlogit,msp,entropy,energy,kmeans");
    if ((rc = check_args(&o, &c, &e))) goto done;
    if ((rc = cli_open_dataset(&o.f, &ds, &e))) goto done;
    if ((rc = cli_mkdir_p(c.out_dir, &e))) goto done;
    cli_rank_threads(&c.cfg);
    if ((rc = pipeline_open(&p, &c.cfg, &e))) goto done;
    if ((rc = pipeline_set_scale(&p, o.scale, &e))) goto done;
    {   // the resolved method options, defaults included, so a report says exactly what ran
        char res[1024];
        ood_options_json(&p.opt, res, sizeof res);
        eval_json_member(res, sizeof res, "precision", nn_precision_name(c.cfg.precision), NULL);
        eval_json_member(o.options_json, sizeof o.options_json, "resolved", NULL, res);
    }
    const char *names[PIPE_MAX_METHODS];
    for (int k = 0; k < p.n_methods; k++) names[k] = pipeline_method_name(&p, k);
    int distributed = cli_dist()->size > 1 || o.resume;
    if (!distributed && (rc = open_evaluator(&o, &ds, p.n_methods, names, &ev, &e))) goto done;
    // The default component threshold comes from the pooled curve, so a second pass reads the maps.
    if (!distributed && evaluator_needs_maps(ev) && !o.save_scores) {
        o.save_scores = 1;
        fprintf(stderr, "eval: component metrics need a second pass over the score maps; saving them in %s/scores/\n", c.out_dir);
    }
    if (o.save_scores && (rc = make_score_dirs(c.out_dir, p.n_methods, names, sdirs, &e))) goto done;
    snprintf(maps, sizeof maps, "%s/maps", c.out_dir);
    if (o.save_maps && (rc = cli_mkdir_p(maps, &e))) goto done;
    snprintf(thumbs, sizeof thumbs, "%s/" HTML_THUMBS, c.out_dir);
    if (!o.f.no_html && (rc = cli_mkdir_p(thumbs, &e))) goto done;
    eval_save save = {o.save_scores ? (const char *const *)sdirs : NULL, o.save_maps ? maps : NULL,
                      o.f.no_html ? NULL : thumbs};
    cli_command_line(argc, argv, cmdline, sizeof cmdline);
    html_opts html = {.command_line = cmdline, .thumbs = 1};
    if (distributed) { rc = eval_distributed(&p, &ds, &o, &c, &save, o.f.no_html ? NULL : &html, &e); goto done; }
    double t0 = omp_get_wtime();
    for (int i = 0; i < ds.n && !rc; i++) {
        rc = pipeline_eval_item(&p, &ds, i, ev, &save, &e);
        cli_progress("eval", i + 1, ds.n, t0);
    }
    if (!rc) rc = finish_eval(ev, &o, &c, &ds, p.m->desc.arch, (const char *const *)sdirs, o.f.no_html ? NULL : &html, t0, &e);
done:
    for (int k = 0; k < PIPE_MAX_METHODS; k++) free(sdirs[k]);
    evaluator_free(ev);
    pipeline_close(&p);
    dataset_free(&ds);
    cli_free(&c);
    if (rc && cli_dist()->size > 1 && e.code) fprintf(stderr, "oodseg: rank %d: ", cli_dist()->rank);
    return rc ? cli_fail(&e) : 0;
}
