// Distributed, resumable evaluation (see disteval.h): chunks on disk, an exact merge on rank 0.
#include "disteval.h"
#include "../core/outfile.h"
#include "../eval/scoremap.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

static void chunk_path(const char *dir, int a, int b, const char *ext, char *buf, size_t n) {
    snprintf(buf, n, "%s/chunk-%06d-%06d.%s", dir, a, b, ext);
}

// Every chunk-* file of dir (a fresh run, or a finished one).
static void remove_chunk_files(const char *dir) {
    DIR *dd = opendir(dir);
    if (!dd) return;
    struct dirent *de;
    char p[4400];
    while ((de = readdir(dd)))
        if (!strncmp(de->d_name, "chunk-", 6)) {
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            unlink(p);
        }
    closedir(dd);
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

// Writes the rows gathered in memory to chunk-a-c.rows, then the state to chunk-a-c.state (the
// state last: a piece whose state exists is complete).
static int save_piece(evaluator *ev, const char *rows, size_t len, const char *dir, int a, int c, err *e) {
    char rows_path[4400], state_path[4400];
    chunk_path(dir, a, c, "rows", rows_path, sizeof rows_path);
    chunk_path(dir, a, c, "state", state_path, sizeof state_path);
    outfile of;
    if (outfile_open(&of, rows_path, e)) return e->code;
    int ok = fwrite(rows, 1, len, of.f) == len;
    if (outfile_commit(&of, ok, e)) return e->code;
    return evaluator_save_state(ev, state_path, "{}", e);
}

// One image of a chunk into ev and its line into rows. A failed image is reported, written as a
// failure line and skipped, unless the evaluator took part of it (then the chunk cannot be
// trusted: that is an error).
static int chunk_image(pipeline *p, const dataset *ds, int i, evaluator *ev, FILE *rows, const dist_eval_opts *o,
                       dist_eval_result *r, err *e) {
    err ei = {0};
    int before = evaluator_n_images(ev);
    if (pipeline_eval_item(p, ds, i, ev, o->save, &ei)) {
        if (evaluator_n_images(ev) != before) { *e = ei; return ei.code; }
        write_failure(rows, ds->items[i].stem, &ei);
        if (!r->n_failed++) r->first_failure = ei;
        if (o->on_fail) o->on_fail(o->ctx, ds->items[i].stem, &ei);
    } else {
        int n;
        const report_row *row = evaluator_rows(ev, &n);
        write_row(rows, &row[n - 1], p->n_methods);
    }
    return OODSEG_OK;
}

// Images a..b-1 into a new evaluator, then the piece to disk. When cancel is set between two
// images, the images done so far are saved as the piece a..c (none done: nothing is written) and
// the result is OODSEG_E_INTERRUPTED. The rows stay in memory until then (a line an image).
static int run_chunk(pipeline *p, const dataset *ds, int a, int b, const dist_eval_opts *o, dist_eval_result *r,
                     err *e) {
    const char *names[PIPE_MAX_METHODS];
    for (int k = 0; k < p->n_methods; k++) names[k] = pipeline_method_name(p, k);
    evaluator_opts eo;
    evaluator_opts_default(&eo, 0);
    eo.conv = o->conv;
    eo.components = 0;   // rank 0's pass after the merge (see disteval.h)
    evaluator *ev;
    if (evaluator_new(&ev, p->n_methods, names, &eo, e)) return e->code;
    char *buf = NULL;
    size_t len = 0;
    FILE *rows = open_memstream(&buf, &len);
    int rc = rows ? OODSEG_OK : err_set(e, OODSEG_E_NOMEM, "out of memory for a chunk's rows");
    int c = a;
    for (; c < b && !rc; c++) {
        if (o->cancel && *o->cancel) break;
        rc = chunk_image(p, ds, c, ev, rows, o, r, e);
        if (!rc) r->n_done++;
        if (!rc && o->on_image) o->on_image(o->ctx, c + 1, ds->n);
    }
    if (rows && fclose(rows) && !rc) rc = err_set(e, OODSEG_E_NOMEM, "out of memory for a chunk's rows");
    if (!rc && c > a) rc = save_piece(ev, buf, len, o->run_dir, a, c, e);
    if (!rc && c < b) rc = err_set(e, OODSEG_E_INTERRUPTED, "interrupted after image %d of %d", c, ds->n);
    free(buf);
    evaluator_free(ev);
    return rc;
}

// The end of the longest piece on disk that starts at x and ends by b (x when there is none).
static int piece_end(const char *dir, int x, int b) {
    for (int y = b; y > x; y--) {
        char sp[4400], rp[4400];
        chunk_path(dir, x, y, "state", sp, sizeof sp);
        chunk_path(dir, x, y, "rows", rp, sizeof rp);
        if (exists(sp) && exists(rp)) return y;
    }
    return x;
}

// The first image of a..b-1 that the pieces on disk do not cover, the longest piece first: a
// whole chunk is one piece; an interrupted one left a prefix piece and its resume the rest.
// Resume and merge walk the pieces the same way.
static int covered_to(const char *dir, int a, int b) {
    int x = a, y;
    while (x < b && (y = piece_end(dir, x, b)) > x) x = y;
    return x;
}

// Parses one line of a rows file into row (ok: 1) or counts a failure (ok: 0). want: the stem of
// the dataset's image at this line, so a piece of another dataset, --limit or --shard is refused.
static int parse_row(char *line, int n_methods, const char *want, report_row *row, int *ok, const char *path,
                     err *e) {
    char *save = NULL, *t = strtok_r(line, "\t\n", &save);
    if (!t || (strcmp(t, "ok") && strcmp(t, "failed")))
        return err_set(e, OODSEG_E_FORMAT, "%s: a line that is neither ok nor failed; delete the run folder and start again", path);
    char *stem = strtok_r(NULL, "\t\n", &save);
    if (!stem || strcmp(stem, want))
        return err_set(e, OODSEG_E_FORMAT, "%s: a row for image '%s' where the dataset has '%s': the chunks on disk come from "
                       "another dataset, --limit or --shard; start afresh without --resume", path, stem ? stem : "", want);
    *ok = !strcmp(t, "ok");
    if (!*ok) return OODSEG_OK;
    memset(row, 0, sizeof *row);
    char *f[3 + 3 * PIPE_MAX_METHODS + 1];
    int nf = 0;
    while (nf < 3 + 3 * n_methods + 1 && (f[nf] = strtok_r(NULL, "\t\n", &save))) nf++;
    if (nf != 3 + 3 * n_methods)
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

// The rows of the piece x..y-1: one line an image, in order.
static int read_rows(const char *path, int n_methods, const dataset *ds, int x, int y, dist_eval_result *r, err *e) {
    FILE *f = fopen(path, "r");
    if (!f) return err_set(e, OODSEG_E_IO, "%s: cannot read a chunk's rows (%s); does every rank see the output folder?", path, strerror(errno));
    char line[8192];
    int rc = OODSEG_OK, k = x;
    while (!rc && fgets(line, sizeof line, f)) {
        int ok = 0;
        if (k == y) { rc = err_set(e, OODSEG_E_FORMAT, "%s: more rows than its %d images; start afresh without --resume", path, y - x); break; }
        if ((rc = parse_row(line, n_methods, ds->items[k++].stem, &r->rows[r->n_rows], &ok, path, e))) break;
        if (ok) r->n_rows++;
        else r->n_failed++;
    }
    fclose(f);
    if (!rc && k != y) rc = err_set(e, OODSEG_E_FORMAT, "%s: %d rows for its %d images; start afresh without --resume", path, k - x, y - x);
    return rc;
}

// The pieces of chunk a..b in order into paths (the states) and r (the rows).
static int read_pieces(const char *dir, const dataset *ds, int a, int b, int n_methods, char **paths, int *n,
                       dist_eval_result *r, err *e) {
    if (covered_to(dir, a, b) != b) {
        char sp[4400];
        chunk_path(dir, a, b, "state", sp, sizeof sp);
        return err_set(e, OODSEG_E_IO, "%s: missing (images %d..%d not done); does every rank see the output folder?", sp, a, b - 1);
    }
    int rc = OODSEG_OK;
    for (int x = a, y; x < b && !rc; x = y) {
        y = piece_end(dir, x, b);
        char sp[4400], rp[4400];
        chunk_path(dir, x, y, "state", sp, sizeof sp);
        chunk_path(dir, x, y, "rows", rp, sizeof rp);
        if (!(paths[*n] = strdup(sp))) return err_set(e, OODSEG_E_NOMEM, "out of memory");
        (*n)++;
        rc = read_rows(rp, n_methods, ds, x, y, r, e);
    }
    return rc;
}

// Component metrics over the merged evaluator (see disteval.h): the rows' images, found in the
// dataset by stem (rows are in dataset order), their labels and saved score maps.
typedef struct comp_src { const dataset *ds; const int *idx; score_dirs sd; const volatile sig_atomic_t *cancel; } comp_src;
static int comp_labels(void *ctx, int i, const char *stem, uint8_t **labels, int *w, int *h, err *e) {
    const comp_src *s = ctx;
    image lab = {0};
    (void)stem;
    if (s->cancel && *s->cancel)   // the pass is redone by --resume (the chunks are all on disk)
        return err_set(e, OODSEG_E_INTERRUPTED, "interrupted during the component pass");
    if (dataset_load_label(s->ds, s->idx[i], 0, 0, &lab, e)) return e->code;
    *labels = lab.px; *w = lab.w; *h = lab.h;
    return OODSEG_OK;
}
static int comp_map(void *ctx, int image, const char *stem, int method, float *dst, int w, int h, err *e) {
    comp_src *s = ctx;
    if (score_dirs_map(&s->sd, s->idx[image], stem, method, dst, w, h, e))   // e.g. a run resumed with --components
        return err_prefix(e, "component metrics read every image's score map again (was the run started without "
                          "--components? then start afresh): ");
    return OODSEG_OK;
}

static int merged_components(const dataset *ds, const dist_eval_opts *o, dist_eval_result *r, err *e) {
    if (!o->save || !o->save->score_dirs)
        return err_set(e, OODSEG_E_INTERNAL, "component metrics need the score maps saved (eval_save.score_dirs)");
    int *idx = malloc(((size_t)r->n_rows + 1) * sizeof *idx);
    const char **stems = malloc(((size_t)r->n_rows + 1) * sizeof *stems);
    int rc = idx && stems ? OODSEG_OK : err_set(e, OODSEG_E_NOMEM, "out of memory");
    for (int k = 0, j = 0; k < r->n_rows && !rc; k++, j++) {
        while (j < ds->n && strcmp(ds->items[j].stem, r->rows[k].stem)) j++;
        if (j == ds->n) rc = err_set(e, OODSEG_E_FORMAT, "chunk rows: image %s is not in the dataset, or out of order; start afresh without --resume", r->rows[k].stem);
        idx[k] = j;
        stems[k] = r->rows[k].stem;
    }
    comp_src src = {ds, idx, {o->save ? o->save->score_dirs : NULL, ds, NULL}, o->cancel};
    if (!rc) rc = evaluator_merged_components(r->merged, &o->comp, r->n_rows, stems, comp_labels, comp_map, &src, e);
    free(idx);
    free(stems);
    return rc;
}

// Rank 0: every chunk of every rank, in dataset order; the states merged exactly (and saved as
// the run's state when asked), the rows read, the component pass.
static int merge_all(const dist *d, const dataset *ds, int n_methods, const dist_eval_opts *o, dist_eval_result *r,
                     err *e) {
    int chunk = o->chunk > 0 ? o->chunk : 8, n = 0;
    char **paths = calloc((size_t)ds->n + 1, sizeof *paths);   // pieces are disjoint and not empty
    r->rows = calloc((size_t)ds->n + 1, sizeof *r->rows);
    int rc = paths && r->rows ? OODSEG_OK : err_set(e, OODSEG_E_NOMEM, "out of memory merging the chunks");
    r->n_failed = 0;
    for (int q = 0; q < d->size && !rc; q++) {
        chunk_it c;
        chunks_begin(&c, ds->n, q, d->size, chunk);
        while (!rc && chunks_next(&c)) rc = read_pieces(o->run_dir, ds, c.a, c.b, n_methods, paths, &n, r, e);
    }
    char meta[8192];
    const char *save_meta = NULL;
    if (!rc && o->state_path && o->state_info) {
        eval_info info = *o->state_info;
        info.n_images = r->n_rows;
        if (!(rc = eval_meta_json(&info, o->shard_i, o->shard_n, meta, sizeof meta, e))) save_meta = meta;
    }
    if (!rc && o->cancel && *o->cancel) rc = err_set(e, OODSEG_E_INTERRUPTED, "interrupted before the merge");
    if (!rc) rc = evaluator_merge_as(&r->merged, (const char *const *)paths, n, o->conv, o->state_path, save_meta, e);
    if (!rc && o->components) rc = merged_components(ds, o, r, e);
    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
    return rc;
}

// This rank's chunks: what the pieces on disk cover is skipped (resume), the rest runs.
static int run_share(const dist *d, pipeline *p, const dataset *ds, const dist_eval_opts *o, dist_eval_result *r,
                     err *e) {
    chunk_it c;
    chunks_begin(&c, ds->n, d->rank, d->size, o->chunk > 0 ? o->chunk : 8);
    r->n_share = c.hi - c.a;
    int rc = OODSEG_OK;
    while (!rc && chunks_next(&c)) {
        int x = o->resume ? covered_to(o->run_dir, c.a, c.b) : c.a;
        r->n_resumed += x - c.a;
        r->n_done += x - c.a;
        if (x > c.a && o->on_image) o->on_image(o->ctx, x, ds->n);
        if (x < c.b) rc = run_chunk(p, ds, x, c.b, o, r, e);
    }
    return rc;
}

int dist_eval_run(const dist *d, pipeline *p, const dataset *ds, const dist_eval_opts *o, dist_eval_result *r,
                  err *e) {
    memset(r, 0, sizeof *r);
    int who, all, rc = mkdir(o->run_dir, 0777) != 0 && errno != EEXIST
                 ? err_set(e, OODSEG_E_IO, "cannot create %s: %s", o->run_dir, strerror(errno)) : OODSEG_OK;
    if (!o->resume) {   // afresh: no piece of an earlier run may be merged; the others wait for it
        if (!rc && d->rank == 0) remove_chunk_files(o->run_dir);
        if ((all = dist_agree(d, rc, &who))) return rc ? rc : err_set(e, all, "rank %d could not create %s", who, o->run_dir);
    }
    if (!rc) rc = run_share(d, p, ds, o, r, e);
    all = dist_agree(d, rc, &who);
    if (all && !rc) return err_set(e, all, "rank %d of %d failed (its message is above); nothing was merged", who, d->size);
    if (all) return rc;
    int failed_here = r->n_failed;
    if (d->rank == 0) rc = merge_all(d, ds, p->n_methods, o, r, e);
    all = dist_agree(d, rc, &who);
    if (all && !rc) return err_set(e, all, "rank %d failed while merging", who);
    if (d->rank != 0) r->n_failed = failed_here;
    return rc;
}

void dist_eval_remove_chunks(const char *run_dir) {
    remove_chunk_files(run_dir);
    rmdir(run_dir);
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
}
