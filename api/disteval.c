// Distributed, resumable evaluation (see disteval.h): chunks on disk, an exact merge on rank 0.
#include "disteval.h"
#include "../core/outfile.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void chunk_path(const char *dir, int a, int b, const char *ext, char *buf, size_t n) {
    snprintf(buf, n, "%s/chunk-%06d-%06d.%s", dir, a, b, ext);
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

// The chunks of rank r: its contiguous block of the n images, cut every `chunk` images. The
// boundaries depend only on n, the rank count and chunk, so rank 0 can name every chunk.
typedef struct chunk_it { int a, b, hi, chunk; } chunk_it;
static void chunks_begin(chunk_it *c, int n, int rank, int size, int chunk) {
    c->a = (int)((int64_t)n * rank / size);
    c->hi = (int)((int64_t)n * (rank + 1) / size);
    c->chunk = chunk;
    c->b = c->a;
}
static int chunks_next(chunk_it *c) {
    c->a = c->b;
    if (c->a >= c->hi) return 0;
    c->b = c->a + c->chunk < c->hi ? c->a + c->chunk : c->hi;
    return 1;
}

// One row as a line: exact values (hexadecimal floats), so a resumed or merged run reads back
// exactly what was computed.
static void write_row(FILE *f, const report_row *row, int n_methods) {
    fprintf(f, "ok\t%s\t%lld\t%lld\t%a", row->stem, (long long)row->n_valid, (long long)row->n_ood, row->seconds);
    for (int m = 0; m < n_methods; m++) fprintf(f, "\t%a\t%a\t%a", row->ap[m], row->auroc[m], row->fpr95[m]);
    fputc('\n', f);
}

static void write_failure(FILE *f, const char *stem, const err *e) {
    fprintf(f, "failed\t%s\t%d\t", stem, e->code);
    for (const char *s = e->msg; *s; s++) fputc(*s == '\n' || *s == '\t' ? ' ' : *s, f);
    fputc('\n', f);
}

// Images a..b-1 into a new evaluator; the rows, then the state, to disk. A failed image is
// reported, written as a failure line and skipped, unless the evaluator took part of it (then the
// chunk cannot be trusted: that is an error).
static int run_chunk(pipeline *p, const dataset *ds, int a, int b, const dist_eval_opts *o, dist_eval_result *r,
                     err *e) {
    const char *names[PIPE_MAX_METHODS];
    for (int k = 0; k < p->n_methods; k++) names[k] = pipeline_method_name(p, k);
    evaluator_opts eo;
    evaluator_opts_default(&eo, 0);
    eo.conv = o->conv;
    eo.components = 0;
    evaluator *ev;
    if (evaluator_new(&ev, p->n_methods, names, &eo, e)) return e->code;
    char rows_path[4400], state_path[4400];
    chunk_path(o->run_dir, a, b, "rows", rows_path, sizeof rows_path);
    chunk_path(o->run_dir, a, b, "state", state_path, sizeof state_path);
    outfile of;
    int rc = outfile_open(&of, rows_path, e);
    for (int i = a; i < b && !rc; i++) {
        err ei = {0};
        int before = evaluator_n_images(ev);
        if (pipeline_eval_item(p, ds, i, ev, o->save, &ei)) {
            if (evaluator_n_images(ev) != before) { *e = ei; rc = ei.code; break; }
            write_failure(of.f, ds->items[i].stem, &ei);
            if (!r->n_failed++) r->first_failure = ei;
            if (o->on_fail) o->on_fail(o->ctx, ds->items[i].stem, &ei);
        } else {
            int n;
            const report_row *rows = evaluator_rows(ev, &n);
            write_row(of.f, &rows[n - 1], p->n_methods);
        }
        if (o->on_image) o->on_image(o->ctx, i + 1, ds->n);
    }
    if (rc) outfile_abort(&of);
    else rc = outfile_commit(&of, 1, e);
    if (!rc) rc = evaluator_save_state(ev, state_path, "{}", e);
    evaluator_free(ev);
    return rc;
}

// Parses one line of a rows file into row (ok: 1) or counts a failure (ok: 0).
static int parse_row(char *line, int n_methods, report_row *row, int *ok, const char *path, err *e) {
    char *save = NULL, *t = strtok_r(line, "\t\n", &save);
    if (t && !strcmp(t, "failed")) { *ok = 0; return OODSEG_OK; }
    if (!t || strcmp(t, "ok")) return err_set(e, OODSEG_E_FORMAT, "%s: a line that is neither ok nor failed; delete the run folder and start again", path);
    *ok = 1;
    memset(row, 0, sizeof *row);
    char *f[3 + 3 * PIPE_MAX_METHODS + 1];
    int nf = 0;
    char *stem = strtok_r(NULL, "\t\n", &save);
    while (nf < 3 + 3 * n_methods + 1 && (f[nf] = strtok_r(NULL, "\t\n", &save))) nf++;
    if (!stem || nf != 3 + 3 * n_methods)
        return err_set(e, OODSEG_E_FORMAT, "%s: a row with %d fields for %d methods; was the run started with other methods? Start afresh without --resume", path, nf, n_methods);
    if (!(row->stem = strdup(stem))) return err_set(e, OODSEG_E_NOMEM, "out of memory reading %s", path);
    row->n_valid = strtoll(f[0], NULL, 10);
    row->n_ood = strtoll(f[1], NULL, 10);
    row->seconds = strtod(f[2], NULL);
    for (int m = 0; m < n_methods; m++) {
        row->ap[m] = strtod(f[3 + 3 * m], NULL);
        row->auroc[m] = strtod(f[4 + 3 * m], NULL);
        row->fpr95[m] = strtod(f[5 + 3 * m], NULL);
    }
    return OODSEG_OK;
}

static int read_rows(const char *path, int n_methods, dist_eval_result *r, int cap, err *e) {
    FILE *f = fopen(path, "r");
    if (!f) return err_set(e, OODSEG_E_IO, "%s: cannot read a chunk's rows (%s); does every rank see the output folder?", path, strerror(errno));
    char line[8192];
    int rc = OODSEG_OK;
    while (!rc && fgets(line, sizeof line, f)) {
        int ok;
        if (r->n_rows == cap) { rc = err_set(e, OODSEG_E_FORMAT, "%s: more rows than images", path); break; }
        if ((rc = parse_row(line, n_methods, &r->rows[r->n_rows], &ok, path, e))) break;
        if (ok) r->n_rows++;
        else r->n_failed++;
    }
    fclose(f);
    return rc;
}

// Rank 0: every chunk of every rank, in dataset order; the states merged exactly, the rows read.
static int merge_all(const dist *d, const dataset *ds, int n_methods, const dist_eval_opts *o, dist_eval_result *r,
                     err *e) {
    int chunk = o->chunk > 0 ? o->chunk : 8, n = 0, cap = ds->n + d->size;
    char **paths = calloc((size_t)cap, sizeof *paths);
    r->rows = calloc((size_t)ds->n + 1, sizeof *r->rows);
    int rc = paths && r->rows ? OODSEG_OK : err_set(e, OODSEG_E_NOMEM, "out of memory merging the chunks");
    r->n_failed = 0;
    for (int q = 0; q < d->size && !rc; q++) {
        chunk_it c;
        chunks_begin(&c, ds->n, q, d->size, chunk);
        while (!rc && chunks_next(&c)) {
            char rp[4400], sp[4400];
            chunk_path(o->run_dir, c.a, c.b, "rows", rp, sizeof rp);
            chunk_path(o->run_dir, c.a, c.b, "state", sp, sizeof sp);
            if (!(paths[n] = strdup(sp))) { rc = err_set(e, OODSEG_E_NOMEM, "out of memory"); break; }
            n++;
            rc = read_rows(rp, n_methods, r, ds->n, e);
        }
    }
    if (!rc) rc = evaluator_merge(&r->merged, (const char *const *)paths, n, o->conv, NULL, e);
    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
    return rc;
}

// This rank's chunks: those on disk are skipped (resume), the others run.
static int run_share(const dist *d, pipeline *p, const dataset *ds, const dist_eval_opts *o, dist_eval_result *r,
                     err *e) {
    chunk_it c;
    chunks_begin(&c, ds->n, d->rank, d->size, o->chunk > 0 ? o->chunk : 8);
    int rc = OODSEG_OK;
    while (!rc && chunks_next(&c)) {
        char sp[4400], rp[4400];
        chunk_path(o->run_dir, c.a, c.b, "state", sp, sizeof sp);
        chunk_path(o->run_dir, c.a, c.b, "rows", rp, sizeof rp);
        if (o->resume && exists(sp) && exists(rp)) {
            r->n_resumed += c.b - c.a;
            if (o->on_image) o->on_image(o->ctx, c.b, ds->n);
            continue;
        }
        rc = run_chunk(p, ds, c.a, c.b, o, r, e);
    }
    return rc;
}

int dist_eval_run(const dist *d, pipeline *p, const dataset *ds, const dist_eval_opts *o, dist_eval_result *r,
                  err *e) {
    memset(r, 0, sizeof *r);
    int rc = mkdir(o->run_dir, 0777) != 0 && errno != EEXIST
                 ? err_set(e, OODSEG_E_IO, "cannot create %s: %s", o->run_dir, strerror(errno)) : OODSEG_OK;
    if (!rc) rc = run_share(d, p, ds, o, r, e);
    int who, all = dist_agree(d, rc, &who);
    if (all && !rc) return err_set(e, all, "rank %d of %d failed (its message is above); nothing was merged", who, d->size);
    if (all) return rc;
    int failed_here = r->n_failed;
    if (d->rank == 0) rc = merge_all(d, ds, p->n_methods, o, r, e);
    all = dist_agree(d, rc, &who);
    if (all && !rc) return err_set(e, all, "rank %d failed while merging", who);
    if (d->rank != 0) r->n_failed = failed_here;
    return rc;
}

void dist_eval_result_free(dist_eval_result *r) {
    evaluator_free(r->merged);
    report_rows_free(r->rows, r->n_rows);
    memset(r, 0, sizeof *r);
}

void dist_eval_report(const dist_eval_result *r, const eval_info *info, report *rep) {
    evaluator_report(r->merged, info, rep);
    rep->rows = r->rows;
    rep->n_rows = r->n_rows;
    rep->has_comp = 0;
}
