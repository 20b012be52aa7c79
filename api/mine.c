// `oodseg mine` (see mine.h): the stream of frames through the pipeline, the K best on disk, the
// per-frame log that makes a run resumable, and rank 0's global ranking.
#include "mine.h"
#include "mine_internal.h"
#include "../io/npy.h"
#include "../io/thumbnail.h"
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

// ---- the K best: a heap whose root is the worst kept frame ----------------------------------
int mine_better(const mine_entry *a, const mine_entry *b) {
    if (a->v != b->v) return a->v > b->v;
    if (a->input != b->input) return a->input < b->input;
    return a->index < b->index;
}

static void sift_down(mine_top *t, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < t->n && mine_better(&t->e[w], &t->e[l])) w = l;
        if (r < t->n && mine_better(&t->e[w], &t->e[r])) w = r;
        if (w == i) return;
        mine_entry x = t->e[i]; t->e[i] = t->e[w]; t->e[w] = x;
        i = w;
    }
}

// Offers x; returns 1 when it is kept, with *evicted (when not NULL) the entry it pushed out
// (evicted->name[0] == 0: none).
int mine_top_offer(mine_top *t, const mine_entry *x, mine_entry *evicted) {
    if (evicted) evicted->name[0] = 0;
    if (t->n < t->k) {
        int i = t->n++;
        t->e[i] = *x;
        while (i > 0 && mine_better(&t->e[(i - 1) / 2], &t->e[i])) {
            mine_entry y = t->e[i]; t->e[i] = t->e[(i - 1) / 2]; t->e[(i - 1) / 2] = y;
            i = (i - 1) / 2;
        }
        return 1;
    }
    if (!mine_better(x, &t->e[0])) return 0;
    if (evicted) *evicted = t->e[0];
    t->e[0] = *x;
    sift_down(t, 0);
    return 1;
}

static int cmp_best_first(const void *a, const void *b) {
    return mine_better(a, b) ? -1 : mine_better(b, a) ? 1 : 0;
}
void mine_top_sort(mine_top *t) { qsort(t->e, (size_t)t->n, sizeof *t->e, cmp_best_first); }

// ---- files of a kept frame -------------------------------------------------------------------
static void top_file(const char *dir, const char *name, const char *method, const char *kind, char *buf, size_t n) {
    if (!strcmp(kind, "frame")) snprintf(buf, n, "%s/top/%s.jpg", dir, name);
    else snprintf(buf, n, "%s/top/%s_%s_%s", dir, name, method, kind);
}

static void draw_boxes(image *im, const mine_scores *s) {
    static const uint8_t c[3] = {0, 255, 255};
    for (int b = 0; b < s->n_boxes; b++) {
        const mine_box *x = &s->boxes[b];
        for (int y = x->y0; y <= x->y1; y++)
            for (int xx = x->x0; xx <= x->x1; xx++) {
                int edge = y - x->y0 < 2 || x->y1 - y < 2 || xx - x->x0 < 2 || x->x1 - xx < 2;
                if (edge) memcpy(im->px + ((int64_t)y * im->w + xx) * 3, c, 3);
            }
    }
}

// The score map, the overlay with the boxes, and the frame itself.
static int save_top(const char *dir, const pipeline *p, const image *img, const pipeline_out *o,
                    const mine_scores *s, const char *name, err *e) {
    const char *method = pipeline_method_name(p, 0);
    char path[4400];
    top_file(dir, name, method, "score.npy", path, sizeof path);
    int64_t shape[2] = {o->h, o->w};
    if (npy_write_f32(path, o->scores[0], 2, shape, e)) return e->code;
    pictures_in in;
    char rule[160];
    pipeline_pictures_in(p, img, o, 0, &in, rule, sizeof rule);
    image heat = {0}, over = {0};
    int rc = pictures_heat(&in, &heat, &over, e);
    if (!rc) {
        draw_boxes(&over, s);
        top_file(dir, name, method, "overlay.png", path, sizeof path);
        rc = image_save_png(path, &over, e);
    }
    image_free(&heat);
    image_free(&over);
    top_file(dir, name, method, "frame", path, sizeof path);
    if (!rc) rc = image_save_jpeg(path, img, 90, e);
    return rc;
}

void mine_remove_top(const char *dir, const char *method, const char *name) {
    static const char *kinds[] = {"score.npy", "overlay.png", "frame"};
    for (int k = 0; k < 3; k++) {
        char path[4400];
        top_file(dir, name, method, kinds[k], path, sizeof path);
        unlink(path);
    }
}

// ---- the per-frame log -----------------------------------------------------------------------
void mine_log_path(const char *dir, int rank, int size, char *buf, size_t n) {
    if (size > 1) snprintf(buf, n, "%s/frames-%d-of-%d.tsv", dir, rank, size);
    else snprintf(buf, n, "%s/frames.tsv", dir);
}

void mine_log_header(const pipeline *p, const mine_opts *o, int n_inputs, char *buf, size_t n) {
    snprintf(buf, n, "# oodseg mine 1: method %s, by %s, threshold %s%.17g, percentile %.17g, min-region %.17g, "
             "every %d, start %.17g, end %.17g, inputs %d\n", pipeline_method_name(p, 0), mine_rank_name(o->by),
             o->rule.has_threshold ? "" : o->rule.use_clusters ? "clusters " : "none ",
             o->rule.has_threshold ? o->rule.threshold : 0.0, o->rule.percentile, o->rule.min_region,
             o->frames.every, o->frames.start, o->frames.end, n_inputs);
}

static void log_frame(FILE *f, const mine_entry *x) {
    fprintf(f, "ok\t%d\t%lld\t%s\t%.17g\t%.17g\t%.17g\t%d", x->input, (long long)x->index, x->name, x->s.area,
            x->s.region, x->s.percentile, x->s.n_boxes);
    for (int b = 0; b < x->s.n_boxes; b++)
        fprintf(f, "\t%d %d %d %d %lld", x->s.boxes[b].x0, x->s.boxes[b].y0, x->s.boxes[b].x1, x->s.boxes[b].y1,
                (long long)x->s.boxes[b].pixels);
    fputc('\n', f);
    fflush(f);
}

static void log_failure(FILE *f, const frame_item *it) {
    fprintf(f, "failed\t%d\t%lld\t%s\t%d\t", it->input, (long long)it->index, it->name, it->e.code);
    for (const char *s = it->e.msg; *s; s++) fputc(*s == '\n' || *s == '\t' ? ' ' : *s, f);
    fputc('\n', f);
    fflush(f);
}

// One line of a log: *ok 1 with x filled, 0 for a failure line.
int mine_parse_line(char *line, mine_rank_by by, mine_entry *x, int *ok) {
    char *f[4 + 4 + MINE_MAX_BOXES];
    int nf = 0;
    for (char *save = NULL, *t = strtok_r(line, "\t\n", &save); t && nf < (int)(sizeof f / sizeof *f); t = strtok_r(NULL, "\t\n", &save))
        f[nf++] = t;
    if (nf >= 1 && !strcmp(f[0], "failed")) { *ok = 0; return 0; }
    if (nf < 8 || strcmp(f[0], "ok")) return -1;
    memset(x, 0, sizeof *x);
    *ok = 1;
    x->input = atoi(f[1]);
    x->index = strtoll(f[2], NULL, 10);
    snprintf(x->name, sizeof x->name, "%s", f[3]);
    x->s.area = strtod(f[4], NULL);
    x->s.region = strtod(f[5], NULL);
    x->s.percentile = strtod(f[6], NULL);
    x->s.n_boxes = atoi(f[7]);
    if (x->s.n_boxes < 0 || x->s.n_boxes > MINE_MAX_BOXES || nf != 8 + x->s.n_boxes) return -1;
    for (int b = 0; b < x->s.n_boxes; b++) {
        mine_box *m = &x->s.boxes[b];
        long long px;
        if (sscanf(f[8 + b], "%d %d %d %d %lld", &m->x0, &m->y0, &m->x1, &m->y1, &px) != 5) return -1;
        m->pixels = px;
    }
    x->v = mine_rank_value(&x->s, by);
    return 0;
}

// Resume: reads this rank's log (the header must match), rebuilds its K best, counts its lines,
// and cuts a last line the kill left half-written. Returns the lines done.
static int read_log(const char *path, const char *header, mine_rank_by by, mine_top *t, long long *done,
                    long long *failed, err *e) {
    *done = *failed = 0;
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? OODSEG_OK : err_set(e, OODSEG_E_IO, "%s: %s", path, strerror(errno));
    char line[16384];
    long good_end = 0;
    int rc = OODSEG_OK;
    if (!fgets(line, sizeof line, f) || strcmp(line, header)) {
        fclose(f);
        return err_set(e, OODSEG_E_ARG, "%s was written by a run with other options or inputs; run without --resume "
                       "to start afresh, or give the same options", path);
    }
    good_end = ftell(f);
    while (fgets(line, sizeof line, f)) {
        size_t l = strlen(line);
        if (!l || line[l - 1] != '\n') break;   // half a line: the kill came mid-write
        mine_entry x;
        int ok;
        if (mine_parse_line(line, by, &x, &ok)) { rc = err_set(e, OODSEG_E_FORMAT, "%s: line %lld is damaged; start afresh without --resume", path, *done + 2); break; }
        if (ok) mine_top_offer(t, &x, NULL);
        else (*failed)++;
        (*done)++;
        good_end = ftell(f);
    }
    fclose(f);
    if (!rc && truncate(path, good_end) != 0) rc = err_set(e, OODSEG_E_IO, "%s: %s", path, strerror(errno));
    return rc;
}

// ---- this rank's share -----------------------------------------------------------------------
typedef struct share_state {
    const pipeline *p;
    const mine_opts *o;
    mine_top top;
    FILE *log;
    mine_summary *s;
} share_state;

// One decoded frame: scored, logged, and kept on disk when it enters the K best.
static int take_frame(share_state *st, pipeline *p, frame_item *it, long long done) {
    const mine_opts *o = st->o;
    pipeline_out po = {0};
    mine_entry x = {0};
    int rc = it->failed ? it->e.code : pipeline_run(p, &it->img, &po, &it->e);
    if (!rc) rc = mine_score_frame(&po, &o->rule, &x.s, &it->e);
    if (!rc) {
        x.input = it->input; x.index = it->index;
        snprintf(x.name, sizeof x.name, "%s", it->name);
        x.v = mine_rank_value(&x.s, o->by);
        mine_entry ev;
        if (mine_top_offer(&st->top, &x, &ev)) {
            rc = save_top(o->out_dir, p, &it->img, &po, &x.s, x.name, &it->e);
            if (ev.name[0]) mine_remove_top(o->out_dir, pipeline_method_name(p, 0), ev.name);
        }
    }
    pipeline_out_free(&po);
    if (rc) {   // reported, logged and skipped: never fatal
        if (!it->failed) err_prefix(&it->e, "%s: ", it->name);
        if (!st->s->failed++) st->s->first_failure = it->e;
        log_failure(st->log, it);
        if (o->on_fail) o->on_fail(o->ctx, it->name, &it->e);
    } else {
        st->s->frames++;
        log_frame(st->log, &x);
    }
    if (o->on_frame) o->on_frame(o->ctx, it->name, done);
    return ferror(st->log) ? err_set(&it->e, OODSEG_E_IO, "writing the per-frame log failed") : OODSEG_OK;
}


// The per-frame log, appended to on --resume. Opened without following a symbolic link (O_NOFOLLOW):
// whatever the output folder holds, nothing is written outside it.
static FILE *open_log(const char *path, int append) {
    int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | (append ? O_APPEND : O_TRUNC), 0644);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, append ? "a" : "w");
    if (!f) close(fd);
    return f;
}

static int run_share(const dist *d, pipeline *p, char *const *inputs, int n_inputs, const mine_opts *o,
                     mine_summary *s, err *e) {
    share_state st = {p, o, {0}, NULL, s};
    char path[4400], header[1024];
    mine_log_path(o->out_dir, d->rank, d->size, path, sizeof path);
    mine_log_header(p, o, n_inputs, header, sizeof header);
    st.top.k = o->top;
    if (!(st.top.e = err_calloc(e, (size_t)o->top, sizeof *st.top.e, "the K best frames"))) return e->code;
    long long skip = 0, failed_before = 0;
    int rc = o->resume ? read_log(path, header, o->by, &st.top, &skip, &failed_before, e) : OODSEG_OK;
    if (!rc && !(st.log = open_log(path, skip)))
        rc = err_set(e, OODSEG_E_IO, "cannot write %s: %s", path, strerror(errno));
    if (!rc && !skip) { fputs(header, st.log); fflush(st.log); }
    s->resumed = skip;
    frame_source *src = NULL;
    frame_opts fo = o->frames;
    fo.rank = d->rank; fo.size = d->size;
    fo.max_memory = p->m->max_memory;
    if (!rc) rc = frame_source_open(inputs, n_inputs, &fo, &src, e);
    long long done = 0;
    frame_item it;
    while (!rc && !frame_source_next(src, &it)) {
        if (done++ < skip) { frame_item_free(&it); continue; }   // done by the killed run
        rc = take_frame(&st, p, &it, done);
        if (rc) *e = it.e;
        frame_item_free(&it);
    }
    if (src) frame_source_times(src, &s->seconds_decode, &s->seconds_wait);
    frame_source_close(src);
    if (st.log && fclose(st.log) && !rc) rc = err_set(e, OODSEG_E_IO, "writing %s failed", path);
    free(st.top.e);
    s->failed += failed_before;
    return rc;
}

int mine_run(const dist *d, pipeline *p, char *const *inputs, int n_inputs, const mine_opts *o, mine_summary *s,
             err *e) {
    memset(s, 0, sizeof *s);
    if (o->top < 1) return err_set(e, OODSEG_E_ARG, "--top %d: keep at least one frame", o->top);
    double t0 = omp_get_wtime();
    char top[4200];
    snprintf(top, sizeof top, "%s/top", o->out_dir);
    int rc = (mkdir(o->out_dir, 0777) && errno != EEXIST) || (mkdir(top, 0777) && errno != EEXIST)
                 ? err_set(e, OODSEG_E_IO, "cannot create %s: %s", top, strerror(errno)) : OODSEG_OK;
    if (!rc) rc = run_share(d, p, inputs, n_inputs, o, s, e);
    int who, all = dist_agree(d, rc, &who);
    if (all && !rc) return err_set(e, all, "rank %d of %d failed (its message is above); no ranking was written", who, d->size);
    if (all) return rc;
    s->seconds = omp_get_wtime() - t0;
    if (d->rank == 0) rc = mine_finish(d, p, inputs, n_inputs, o, s, e);
    all = dist_agree(d, rc, &who);
    if (all && !rc) return err_set(e, all, "rank %d failed while ranking", who);
    return rc;
}
