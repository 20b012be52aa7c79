// The HTML report (see html.h). Everything the page needs is in the file or in thumbs/ beside it.
#include "html.h"
#include "../core/outfile.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void html_thumb_name(char *buf, size_t n, const char *stem, const char *method, const char *kind) {
    if (method) snprintf(buf, n, "%s_%s_%s.jpg", stem, method, kind);
    else snprintf(buf, n, "%s_%s.jpg", stem, kind);
}

static const char *style =
    "body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:20px;color:#222}"
    "h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ccc}h3{font-size:15px}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 7px;vertical-align:top}"
    "th{background:#f2f2f2}table.meta th{text-align:left}code{font-size:12px;word-break:break-all}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}td.best{font-weight:bold;background:#d9f2d9}"
    "th[data-k]{cursor:pointer}th[data-d=a]::after{content:' \\25B2'}th[data-d=d]::after{content:' \\25BC'}"
    ".curves svg{margin:0 12px 12px 0;border:1px solid #ddd}.wide{overflow-x:auto}"
    "img.t{width:160px;display:block;margin:2px 0}.hard{display:flex;flex-wrap:wrap;gap:14px}"
    "figure{margin:0}figure img{width:400px;max-width:45vw;margin-right:4px;vertical-align:top}figcaption{font-size:13px}"
    ".note{color:#555;font-size:13px}";

// Sorts the table of a clicked header by its column's data-v (numbers; NaN last), toggling the order.
static const char *script =
    "document.querySelectorAll('th[data-k]').forEach(function(th){th.addEventListener('click',function(){\n"
    " var t=th.closest('table'),b=t.tBodies[0],i=th.cellIndex,d=th.dataset.d==='a'?'d':'a';\n"
    " t.querySelectorAll('th').forEach(function(h){h.removeAttribute('data-d');});th.dataset.d=d;\n"
    " var r=Array.prototype.slice.call(b.rows);\n"
    " r.sort(function(x,y){var p=parseFloat(x.cells[i].dataset.v),q=parseFloat(y.cells[i].dataset.v);\n"
    "  if(isNaN(p))return isNaN(q)?0:1;if(isNaN(q))return -1;return d==='a'?p-q:q-p;});\n"
    " r.forEach(function(x){b.appendChild(x);});});});\n";

#define esc report_xml_text

// A file name in a URL: every byte outside the unreserved set percent-encoded.
static void url_part(FILE *f, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~", c)) fputc(c, f);
        else fprintf(f, "%%%02X", c);
    }
}

static int thumb_exists(const char *dir, const char *name) {
    char p[4400];
    struct stat st;
    snprintf(p, sizeof p, "%s/" HTML_THUMBS "/%s", dir, name);
    return stat(p, &st) == 0;
}

// <img> of a thumbnail when its file exists; else nothing (a page never shows a broken picture).
static void thumb(FILE *f, const char *dir, const char *stem, const char *method, const char *kind, const char *cls) {
    char name[1200];
    html_thumb_name(name, sizeof name, stem, method, kind);
    if (!thumb_exists(dir, name)) return;
    fprintf(f, "<img%s%s%s loading=\"lazy\" decoding=\"async\" alt=\"", cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
    esc(f, stem);
    fprintf(f, " %s%s%s\" src=\"" HTML_THUMBS "/", method ? method : "", method ? " " : "", kind);
    url_part(f, name);
    fputs("\">", f);
}

static void num_cell(FILE *f, double v, int best) {
    if (isfinite(v)) fprintf(f, "<td class=\"num%s\" data-v=\"%.6g\">%.2f</td>", best ? " best" : "", v, 100 * v);
    else fputs("<td class=\"num\" data-v=\"NaN\">&ndash;</td>", f);
}

static void header(FILE *f, const report *r, const html_opts *o) {
    char date[64];
    if (o->date) snprintf(date, sizeof date, "%s", o->date);
    else {
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %z", &tm);
    }
    fputs("<table class=\"meta\">\n<tr><th>model</th><td>", f);
    if (r->info.model_arch) { esc(f, r->info.model_arch); fputs(" &mdash; ", f); }
    esc(f, r->info.model ? r->info.model : "");
    fputs("</td></tr>\n<tr><th>dataset</th><td>", f);
    esc(f, r->info.dataset ? r->info.dataset : "");
    fprintf(f, " (%d images; labels: ", r->info.n_images);
    esc(f, r->info.labels_doc ? r->info.labels_doc : "");
    fputs(")</td></tr>\n<tr><th>methods</th><td>", f);
    for (int m = 0; m < r->n_methods; m++) { if (m) fputs(", ", f); esc(f, r->methods[m]); }
    fputs("</td></tr>\n<tr><th>options</th><td><code>", f);
    esc(f, r->info.options_json && *r->info.options_json ? r->info.options_json : "{}");
    fputs("</code></td></tr>\n<tr><th>FPR95 convention</th><td>", f);
    esc(f, fpr_conv_name(r->conv));
    fputs(": ", f);
    esc(f, fpr_conv_describe(r->conv));
    fputs("</td></tr>\n", f);
    if (r->info.note) { fputs("<tr><th>note</th><td>", f); esc(f, r->info.note); fputs("</td></tr>\n", f); }
    fputs("<tr><th>date</th><td>", f);
    esc(f, date);
    fputs("</td></tr>\n<tr><th>command</th><td><code>", f);
    esc(f, o->command_line ? o->command_line : "(not recorded)");
    fputs("</code></td></tr>\n<tr><th>oodseg</th><td>" OODSEG_VERSION "</td></tr>\n</table>\n", f);
}

// Best per column: the highest AP, AUROC, sIoU, PPV, F1; the lowest FPR95.
static int is_best(const report *r, int m, int col) {
    double v[REPORT_MAX_METHODS] = {0};
    for (int k = 0; k < r->n_methods; k++) {
        const metrics_result *x = r->res[k];
        const comp_result *c = &r->comp[k];
        v[k] = col == 0 ? x->ap : col == 1 ? -x->fpr95 : col == 2 ? x->auroc : col == 3 ? c->siou_gt : col == 4 ? c->ppv : c->f1_mean;
    }
    if (!isfinite(v[m])) return 0;
    for (int k = 0; k < r->n_methods; k++) if (isfinite(v[k]) && v[k] > v[m]) return 0;
    return r->n_methods > 1;
}

static void metrics_table(FILE *f, const report *r) {
    fputs("<h2>Metrics</h2>\n<table class=\"metrics\"><thead><tr><th>method</th><th>AP &uarr;</th><th>FPR95 &darr;</th>"
          "<th>AUROC &uarr;</th>", f);
    if (r->has_comp) fputs("<th>sIoU gt &uarr;</th><th>PPV &uarr;</th><th>mean F1 &uarr;</th>", f);
    fputs("</tr></thead><tbody>\n", f);
    for (int m = 0; m < r->n_methods; m++) {
        fputs("<tr><td>", f);
        esc(f, r->methods[m]);
        fputs("</td>", f);
        num_cell(f, r->res[m]->ap, is_best(r, m, 0));
        num_cell(f, r->res[m]->fpr95, is_best(r, m, 1));
        num_cell(f, r->res[m]->auroc, is_best(r, m, 2));
        if (r->has_comp) {
            num_cell(f, r->comp[m].siou_gt, is_best(r, m, 3));
            num_cell(f, r->comp[m].ppv, is_best(r, m, 4));
            num_cell(f, r->comp[m].f1_mean, is_best(r, m, 5));
        }
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table>\n<p class=\"note\">Pixel level, pooled over every valid pixel of the dataset, exact (no "
          "binning), x100. The best value of each column is marked green.</p>\n", f);
}

// The rows of method m with a defined AP, lowest first (at most HTML_HARDEST); returns how many.
static int hardest(const report *r, int m, int *idx) {
    int n = 0;
    for (int i = 0; i < r->n_rows; i++) {
        if (!isfinite(r->rows[i].ap[m])) continue;
        int j = n < HTML_HARDEST ? n++ : HTML_HARDEST;
        if (j == HTML_HARDEST && r->rows[i].ap[m] >= r->rows[idx[HTML_HARDEST - 1]].ap[m]) continue;
        if (j == HTML_HARDEST) j = HTML_HARDEST - 1;
        while (j > 0 && r->rows[idx[j - 1]].ap[m] > r->rows[i].ap[m]) { idx[j] = idx[j - 1]; j--; }
        idx[j] = i;
    }
    return n;
}

static void hardest_frames(FILE *f, const report *r, const html_opts *o, const char *dir) {
    fprintf(f, "<h2>Hardest frames</h2>\n<p class=\"note\">Per method, the %d images with the lowest per-image AP "
               "(images without OoD pixels have none and are left out)%s.</p>\n", HTML_HARDEST,
            o->thumbs ? ": the label (red OoD, dark blue ignored, the image dimmed elsewhere) beside the method's heat map" : "");
    for (int m = 0; m < r->n_methods; m++) {
        int idx[HTML_HARDEST], n = hardest(r, m, idx);
        fputs("<h3>", f);
        esc(f, r->methods[m]);
        fputs("</h3>\n<div class=\"hard\">\n", f);
        for (int j = 0; j < n; j++) {
            const report_row *w = &r->rows[idx[j]];
            fputs("<figure>", f);
            if (o->thumbs) {
                thumb(f, dir, w->stem, NULL, "label", NULL);
                thumb(f, dir, w->stem, r->methods[m], "heat", NULL);
            }
            fputs("<figcaption>", f);
            esc(f, w->stem);
            fprintf(f, ": AP %.2f, FPR95 %.2f</figcaption></figure>\n", 100 * w->ap[m], 100 * w->fpr95[m]);
        }
        if (!n) fputs("<p>no image with OoD pixels</p>\n", f);
        fputs("</div>\n", f);
    }
}

static void per_image(FILE *f, const report *r, const html_opts *o, const char *dir) {
    fputs("<h2>Per image</h2>\n<p class=\"note\">Click a column header to sort by it.</p>\n<div class=\"wide\">"
          "<table id=\"per-image\" class=\"sortable\"><thead><tr><th data-k=\"n\">#</th><th>image</th>", f);
    if (o->thumbs) fputs("<th>image / label</th>", f);
    for (int m = 0; m < r->n_methods; m++) {
        fputs("<th data-k=\"n\">", f); esc(f, r->methods[m]); fputs(" AP</th>", f);
        fputs("<th data-k=\"n\">", f); esc(f, r->methods[m]); fputs(" FPR95</th>", f);
        if (o->thumbs) { fputs("<th>", f); esc(f, r->methods[m]); fputs(" heat / overlay</th>", f); }
    }
    fputs("</tr></thead><tbody>\n", f);
    for (int i = 0; i < r->n_rows; i++) {
        const report_row *w = &r->rows[i];
        fprintf(f, "<tr><td class=\"num\" data-v=\"%d\">%d</td><td>", i + 1, i + 1);
        esc(f, w->stem);
        fprintf(f, "<br><span class=\"note\">%.2f %% OoD</span></td>", w->n_valid ? 100.0 * (double)w->n_ood / (double)w->n_valid : 0.0);
        if (o->thumbs) {
            fputs("<td>", f);
            thumb(f, dir, w->stem, NULL, "image", "t");
            thumb(f, dir, w->stem, NULL, "label", "t");
            fputs("</td>", f);
        }
        for (int m = 0; m < r->n_methods; m++) {
            num_cell(f, w->ap[m], 0);
            num_cell(f, w->fpr95[m], 0);
            if (o->thumbs) {
                fputs("<td>", f);
                thumb(f, dir, w->stem, r->methods[m], "heat", "t");
                thumb(f, dir, w->stem, r->methods[m], "overlay", "t");
                fputs("</td>", f);
            }
        }
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table></div>\n", f);
}

int report_write_html(const report *r, const html_opts *o, const char *dir, err *e) {
    static const html_opts none = {0};
    if (!o) o = &none;
    char path[4200];
    snprintf(path, sizeof path, "%s/index.html", dir);
    outfile of;
    if (outfile_open(&of, path, e)) return e->code;
    FILE *f = of.f;
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>oodseg: ", f);
    esc(f, r->info.layout && *r->info.layout ? r->info.layout : r->info.dataset ? r->info.dataset : "");
    fputs(", ", f);
    esc(f, r->info.model_arch ? r->info.model_arch : r->info.model ? r->info.model : "");
    fprintf(f, "</title>\n<style>%s</style>\n</head><body>\n<h1>OoD segmentation report</h1>\n", style);
    header(f, r, o);
    metrics_table(f, r);
    fputs("<h2>Curves</h2>\n<div class=\"curves\">\n", f);
    report_svg(f, r, 0);
    report_svg(f, r, 1);
    fputs("</div>\n", f);
    if (r->rows && r->n_rows > 0) {
        hardest_frames(f, r, o, dir);
        per_image(f, r, o, dir);
    } else fputs("<p class=\"note\">No per-image results (merged shard states keep pooled scores only).</p>\n", f);
    fprintf(f, "<script>\n%s</script>\n</body></html>\n", script);
    return outfile_commit(&of, 1, e);
}
