// The end of `oodseg mine` on rank 0: the global K best from every rank's per-frame log (the same
// frames whatever the number of ranks), DIR/top/ pruned to them, DIR/ranking.csv, and the gallery
// DIR/index.html in the style of the evaluation report (eval/html.c).
#include "mine_internal.h"
#include "../core/outfile.h"
#include "../eval/report.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int read_logs(const dist *d, const mine_opts *o, mine_top *t, mine_summary *s, err *e) {
    s->frames = s->failed = 0;
    for (int r = 0; r < d->size; r++) {
        char path[4400], line[16384];
        mine_log_path(o->out_dir, r, d->size, path, sizeof path);
        FILE *f = fopen(path, "r");
        if (!f) return err_set(e, OODSEG_E_IO, "%s: %s; does every rank see the output folder?", path, strerror(errno));
        int rc = OODSEG_OK;
        long long ln = 0;
        while (!rc && fgets(line, sizeof line, f)) {
            if (ln++ == 0 || line[0] == '#') continue;
            mine_entry x;
            int ok;
            if (mine_parse_line(line, o->by, &x, &ok)) rc = err_set(e, OODSEG_E_FORMAT, "%s: line %lld is damaged", path, ln);
            else if (ok) { s->frames++; mine_top_offer(t, &x, NULL); }
            else s->failed++;
        }
        fclose(f);
        if (rc) return rc;
    }
    return OODSEG_OK;
}

// Files in DIR/top/ of frames that are not in the ranking (pushed out on another rank, or left by
// a killed run) are removed.
static void prune(const mine_opts *o, const char *method, const mine_top *t) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/top", o->out_dir);
    DIR *dp = opendir(dir);
    if (!dp) return;
    for (struct dirent *de; (de = readdir(dp));) {
        if (de->d_name[0] == '.') continue;
        int keep = 0;
        for (int i = 0; i < t->n && !keep; i++) {
            char a[1200], b[1200], c[1200];
            snprintf(a, sizeof a, "%s_%s_score.npy", t->e[i].name, method);
            snprintf(b, sizeof b, "%s_%s_overlay.png", t->e[i].name, method);
            snprintf(c, sizeof c, "%s.jpg", t->e[i].name);
            keep = !strcmp(de->d_name, a) || !strcmp(de->d_name, b) || !strcmp(de->d_name, c);
        }
        if (keep) continue;
        char p[4600];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    closedir(dp);
}

static void csv_field(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) { if (*s == '"') fputc('"', f); fputc(*s, f); }
    fputc('"', f);
}

static int write_ranking(const mine_opts *o, char *const *inputs, const mine_top *t, err *e) {
    char path[4400];
    snprintf(path, sizeof path, "%s/ranking.csv", o->out_dir);
    outfile of;
    if (outfile_open(&of, path, e)) return e->code;
    FILE *f = of.f;
    fprintf(f, "rank,frame,source,frame_index,score,area,largest_region,percentile,boxes\n");
    for (int i = 0; i < t->n; i++) {
        const mine_entry *x = &t->e[i];
        fprintf(f, "%d,", i + 1);
        csv_field(f, x->name);
        fputc(',', f);
        csv_field(f, inputs[x->input]);
        if (x->index >= 0) fprintf(f, ",%lld", (long long)x->index);
        else fputc(',', f);
        fprintf(f, ",%.9g,%.9g,%.9g,%.9g,\"", x->v, x->s.area, x->s.region, x->s.percentile);
        for (int b = 0; b < x->s.n_boxes; b++)
            fprintf(f, "%s%d %d %d %d", b ? ";" : "", x->s.boxes[b].x0, x->s.boxes[b].y0, x->s.boxes[b].x1, x->s.boxes[b].y1);
        fprintf(f, "\"\n");
    }
    return outfile_commit(&of, 1, e);
}

static const char *style =
    "body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:20px;color:#222}"
    "h1{font-size:22px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 7px;vertical-align:top}"
    "th{background:#f2f2f2}table.meta th{text-align:left}code{font-size:12px;word-break:break-all}"
    ".hard{display:flex;flex-wrap:wrap;gap:14px}figure{margin:0}"
    "figure img{width:400px;max-width:45vw;margin-right:4px;vertical-align:top}figcaption{font-size:13px}"
    ".note{color:#555;font-size:13px}";

static void url(FILE *f, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~", c)) fputc(c, f);
        else fprintf(f, "%%%02X", c);
    }
}

static void meta_row(FILE *f, const char *k, const char *v) {
    fprintf(f, "<tr><th>%s</th><td>", k);
    report_xml_text(f, v);
    fprintf(f, "</td></tr>\n");
}

static int write_gallery(const pipeline *p, const mine_opts *o, char *const *inputs, const mine_top *t,
                         const mine_summary *s, err *e) {
    char path[4400], buf[1200], date[64];
    snprintf(path, sizeof path, "%s/index.html", o->out_dir);
    outfile of;
    if (outfile_open(&of, path, e)) return e->code;
    FILE *f = of.f;
    const char *method = pipeline_method_name(p, 0);
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M", localtime(&now));
    fprintf(f, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>oodseg mine: the %d most anomalous frames</title>"
            "<style>%s</style></head><body>\n<h1>The %d most anomalous frames</h1>\n<table class=\"meta\">\n", t->n, style, t->n);
    meta_row(f, "model", p->m->desc.arch);
    meta_row(f, "method", method);
    snprintf(buf, sizeof buf, "%s (%s)", mine_rank_name(o->by),
             o->by == MINE_AREA ? "share of the frame's pixels that are anomalous"
             : o->by == MINE_REGION ? "share of the frame in its largest connected anomalous region"
             : "a high percentile of the score map");
    meta_row(f, "ranked by", buf);
    if (o->rule.has_threshold) snprintf(buf, sizeof buf, "score > %.6g", o->rule.threshold);
    else snprintf(buf, sizeof buf, "%s", o->rule.use_clusters ? "in a cluster the method flagged OoD" : "none (boxes need a threshold)");
    meta_row(f, "anomalous pixels", buf);
    snprintf(buf, sizeof buf, "%lld scored, %lld skipped (failed to decode or to score)", s->frames, s->failed);
    meta_row(f, "frames", buf);
    meta_row(f, "date", date);
    if (o->command_line) meta_row(f, "command", o->command_line);
    fprintf(f, "</table>\n<p class=\"note\">Cyan boxes: the largest anomalous regions. Each picture opens the frame "
            "itself; <code>ranking.csv</code> has every value, <code>top/</code> the score maps (.npy).</p>\n<div class=\"hard\">\n");
    for (int i = 0; i < t->n; i++) {
        const mine_entry *x = &t->e[i];
        fprintf(f, "<figure><a href=\"top/");
        url(f, x->name);
        fprintf(f, ".jpg\"><img loading=\"lazy\" decoding=\"async\" alt=\"");
        report_xml_text(f, x->name);
        fprintf(f, "\" src=\"top/");
        snprintf(buf, sizeof buf, "%s_%s_overlay.png", x->name, method);
        url(f, buf);
        fprintf(f, "\"></a><figcaption>#%d <b>", i + 1);
        report_xml_text(f, x->name);
        fprintf(f, "</b> %s %.4g &middot; area %.2f%% &middot; largest region %.2f%% &middot; p %.4g<br><span class=\"note\">",
                mine_rank_name(o->by), x->v, 100 * x->s.area, 100 * x->s.region, x->s.percentile);
        report_xml_text(f, inputs[x->input]);
        fprintf(f, "</span></figcaption></figure>\n");
    }
    fprintf(f, "</div>\n</body></html>\n");
    return outfile_commit(&of, 1, e);
}

int mine_finish(const dist *d, const pipeline *p, char *const *inputs, int n_inputs, const mine_opts *o,
                mine_summary *s, err *e) {
    (void)n_inputs;
    mine_top t = {0};
    t.k = o->top;
    if (!(t.e = err_calloc(e, (size_t)o->top, sizeof *t.e, "the K best frames"))) return e->code;
    int rc = read_logs(d, o, &t, s, e);
    if (!rc) {
        mine_top_sort(&t);
        prune(o, pipeline_method_name(p, 0), &t);
        s->n_top = t.n;
        rc = write_ranking(o, inputs, &t, e);
    }
    if (!rc) rc = write_gallery(p, o, inputs, &t, s, e);
    free(t.e);
    return rc;
}
