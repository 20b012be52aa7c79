// `oodseg eval`: runs a model once per image of a benchmark for all the OoD methods asked for,
// and writes exact pooled metrics, per-image metrics and reports (eval/report.h).
#include "commands_eval.h"
#include "cli.h"
#include "../api/pipeline.h"
#include "../eval/scoremap.h"
#include "../api/disteval.h"
#include "../core/interrupt.h"
#include <signal.h>
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

static void dist_fail(void *ctx, const char *stem, const err *e) {
    (void)ctx;
    fprintf(stderr, "oodseg: %s (image %s skipped; going on)\n", e->msg, stem);
}

// Progress on rank 0; and, for the interrupt tests only, OODSEG_TEST_INTERRUPT_AFTER=N raises the
// cancel flag as a first SIGINT would once image N is done, so the stop point is deterministic.
typedef struct progress { double t0; int interrupt_after; } progress;
static void dist_image(void *ctx, int done, int total) {
    const progress *pg = ctx;
    cli_progress("eval", done, total, pg->t0);
    if (pg->interrupt_after > 0 && done >= pg->interrupt_after) interrupt_raise_for_test(SIGINT);
}

// What an interrupted run prints: where the finished images are and the command that resumes.
static int interrupted(const dist_eval_result *r, const char *run_dir, const char *cmdline, int resume) {
    int sig = *interrupt_flag() ? *interrupt_flag() : SIGINT;
    fprintf(stderr, "eval: interrupted; %d of this rank's %d images are saved in %s/ (no report written).\n"
                    "Resume with the same command and --resume:\n  %s%s\n",
            r->n_done, r->n_share, run_dir, cmdline, resume ? "" : " --resume");
    return 128 + sig;
}

// Rank 0's reports of the merged run.
static int write_reports(const dist_eval_result *r, const eval_info *info, const char *out_dir, const html_opts *html,
                         err *e) {
    report rep;
    dist_eval_report(r, info, &rep);
    int rc = report_write_all(&rep, out_dir, e);
    if (!rc && html) rc = report_write_html(&rep, html, out_dir, e);
    char *t = rc ? NULL : report_table_md(&rep);
    if (t) { printf("%s (%d images), FPR95 convention %s\n\n%s", rep.info.dataset, rep.info.n_images, fpr_conv_name(rep.conv), t); free(t); }
    if (!rc) fprintf(stderr, "reports written to %s/\n", out_dir);
    return rc;
}

// Every eval runs in chunks kept on disk in DIR/chunks/ (api/disteval.h): under mpirun each rank
// its share, and rank 0 merges them exactly and writes the same reports as one process. A plain
// run keeps them too, so that any interrupted or killed run can go on with --resume; they are
// removed once the reports are written. Their cost is each chunk's exact state (a few bytes a
// distinct score) and rows: see the README's "Interrupt and resume".
static int eval_chunked(pipeline *p, const dataset *ds, const eval_opts *o, const cli_common *c, const eval_save *save,
                        const html_opts *html, const char *cmdline, err *e) {
    const dist *d = cli_dist();
    const char *te = getenv("OODSEG_TEST_INTERRUPT_AFTER");
    progress pg = {omp_get_wtime(), te ? atoi(te) : 0};
    char run_dir[4200];
    snprintf(run_dir, sizeof run_dir, "%s/chunks", c->out_dir);
    const char *model = c->cfg.model[0] ? c->cfg.model : NULL;
    char note[96] = "";
    if (o->f.shard_n > 1) snprintf(note, sizeof note, "shard %d/%d of the dataset only", o->f.shard_i, o->f.shard_n);
    // the state's metadata as one process's --save-state writes it
    eval_info sinfo = {.dataset = o->f.spec, .layout = ds->name, .labels_doc = ds->labels_doc,
                       .model = model ? model : "(default)", .model_arch = p->m->desc.arch,
                       .options_json = o->options_json, .n_images = ds->n};
    evaluator_opts eo;
    cli_eval_opts(&o->f, ds->smiyc_track, &eo);
    dist_eval_opts dopts = {run_dir, o->chunk, o->resume, o->f.conv, save, dist_fail, d->rank == 0 ? dist_image : NULL, &pg,
                            interrupt_flag(), eo.components, eo.comp, o->f.save_state, &sinfo, o->f.shard_i, o->f.shard_n};
    dist_eval_result r;
    int rc = dist_eval_run(d, p, ds, &dopts, &r, e);
    if (rc) {   // r holds what was read before the error (rank 0)
        if (rc == OODSEG_E_INTERRUPTED) rc = interrupted(&r, run_dir, cmdline, o->resume);
        dist_eval_result_free(&r);
        return rc;
    }
    if (d->rank == 0) {
        eval_info info = sinfo;
        info.model = model ? model : "(default model)";
        info.note = note[0] ? note : NULL;
        info.n_images = r.n_rows;
        if (o->f.save_state) fprintf(stderr, "state saved to %s (merge shards with: oodseg metrics --merge STATE...)\n", o->f.save_state);
        char ranks[48] = "";
        if (d->size > 1) snprintf(ranks, sizeof ranks, " on %d ranks", d->size);
        fprintf(stderr, "evaluated %d image%s with %s%s in %.1f s\n", r.n_rows, r.n_rows == 1 ? "" : "s", p->m->desc.arch,
                ranks, omp_get_wtime() - pg.t0);
        if (r.n_failed) fprintf(stderr, "eval: %d image%s FAILED and were skipped (see above)\n", r.n_failed, r.n_failed == 1 ? "" : "s");
        rc = write_reports(&r, &info, c->out_dir, html, e);
        if (!rc) dist_eval_remove_chunks(run_dir);
    }
    if (r.n_resumed) fprintf(stderr, "eval: rank %d resumed %d images done before\n", d->rank, r.n_resumed);
    if (!rc && r.n_failed) { *e = r.first_failure; rc = e->code ? e->code : OODSEG_E_DATA; }
    dist_eval_result_free(&r);
    return rc;
}

// Parses, opens the dataset and the pipeline, then the chunked run.
int cmd_eval(int argc, char **argv) {
    cli_common c = {0};
    err e = {0};
    pipeline p = {0};
    dataset ds = {0};
    eval_opts o = {0};
    cli_eval_flags_init(&o.f);
    char *sdirs[PIPE_MAX_METHODS] = {0}, maps[4200], thumbs[4200], cmdline[8192];
    int rc;
    interrupt_install();   // idempotent; the job polls interrupt_flag() between images
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
        eval_json_member(o.options_json, sizeof o.options_json, "resolved", NULL, res);
    }
    const char *names[PIPE_MAX_METHODS];
    for (int k = 0; k < p.n_methods; k++) names[k] = pipeline_method_name(&p, k);
    // Components are computed by rank 0 in a pass after the merge, over the saved score maps.
    if ((o.f.comp == 1 || (o.f.comp < 0 && ds.smiyc_track)) && !o.save_scores) {
        o.save_scores = 1;
        if (cli_dist()->rank == 0)
            fprintf(stderr, "eval: component metrics take a second pass over the score maps; saving them in %s/scores/\n", c.out_dir);
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
    rc = eval_chunked(&p, &ds, &o, &c, &save, o.f.no_html ? NULL : &html, cmdline, &e);
done:
    for (int k = 0; k < PIPE_MAX_METHODS; k++) free(sdirs[k]);
    pipeline_close(&p);
    dataset_free(&ds);
    cli_free(&c);
    if (rc > 128) return rc;   // interrupted, and said so: 128 + the signal, as a shell reports it
    if (rc && cli_dist()->size > 1 && e.code) fprintf(stderr, "oodseg: rank %d: ", cli_dist()->rank);
    return rc ? cli_fail(&e) : 0;
}
