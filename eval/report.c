// Report writers (see report.h).
#include "report.h"
#include "../core/outfile.h"
#include "../core/text.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef outfile outf;

static int out_open(outf *o, const char *path, err *e) { return outfile_open(o, path, e); }
static int out_close(outf *o, err *e) { return outfile_commit(o, 1, e); }

static void jnum(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.17g", v);
    else fputs("null", f);
}

// x100 with two decimals; empty when undefined.
static void pct(FILE *f, double v) { if (isfinite(v)) fprintf(f, "%.2f", 100 * v); }

static const char *metric_doc =
    "pixel level, pooled over all pixels of the dataset, ignore pixels removed first, positives = OoD, higher score = more "
    "anomalous. AP = sklearn average_precision_score (step sum over distinct scores, ties grouped); AUROC = roc_auc_score "
    "(trapezoidal); exact (no binning).";

int report_write_json(const report *r, const char *path, err *e) {
    outf o;
    if (out_open(&o, path, e)) return e->code;
    FILE *f = o.f;
    fprintf(f, "{\n \"tool\": \"oodseg\",\n \"version\": ");
    json_write_str(f, OODSEG_VERSION);
    fprintf(f, ",\n \"dataset\": {\"spec\": "); json_write_str(f, r->info.dataset);
    fprintf(f, ", \"layout\": "); json_write_str(f, r->info.layout);
    fprintf(f, ", \"labels\": "); json_write_str(f, r->info.labels_doc);
    fprintf(f, ", \"images\": %d},\n \"model\": ", r->info.n_images); json_write_str(f, r->info.model);
    fprintf(f, ",\n \"model_arch\": "); if (r->info.model_arch) json_write_str(f, r->info.model_arch); else fputs("null", f);
    fprintf(f, ",\n \"options\": %s", r->info.options_json && *r->info.options_json ? r->info.options_json : "{}");
    fprintf(f, ",\n \"note\": "); if (r->info.note) json_write_str(f, r->info.note); else fputs("null", f);
    fprintf(f, ",\n \"metrics\": "); json_write_str(f, metric_doc);
    fprintf(f, ",\n \"fpr95_convention\": "); json_write_str(f, fpr_conv_name(r->conv));
    fprintf(f, ",\n \"fpr95_convention_description\": "); json_write_str(f, fpr_conv_describe(r->conv));
    fprintf(f, ",\n \"methods\": {");
    for (int m = 0; m < r->n_methods; m++) {
        const metrics_result *x = r->res[m];
        fprintf(f, "%s\n  ", m ? "," : "");
        json_write_str(f, r->methods[m]);
        fprintf(f, ": {\"AP\": "); jnum(f, x->ap);
        fprintf(f, ", \"AUROC\": "); jnum(f, x->auroc);
        fprintf(f, ", \"FPR95\": "); jnum(f, x->fpr95);
        fprintf(f, ", \"FPR95_threshold\": "); jnum(f, x->fpr95_thr);
        static const char *key[FPR_NUM_CONV] = {"first_ge", "nearest", "first_gt"};
        for (int c = 0; c < FPR_NUM_CONV; c++) {
            fprintf(f, ", \"FPR95_%s\": ", key[c]); jnum(f, x->fpr95_all[c]);
            fprintf(f, ", \"FPR95_%s_threshold\": ", key[c]); jnum(f, x->fpr95_thr_all[c]);
        }
        fprintf(f, ",\n    \"n_pos\": %lld, \"n_neg\": %lld, \"n_distinct_scores\": %lld, \"best_pixel_F1\": ",
                (long long)x->n_pos, (long long)x->n_neg, (long long)x->n_distinct);
        jnum(f, x->best_f1);
        fprintf(f, ", \"best_pixel_F1_threshold\": "); jnum(f, x->best_f1_thr);
        if (r->has_comp) {
            const comp_result *c = &r->comp[m];
            fprintf(f, ",\n    \"components\": {\"threshold\": "); jnum(f, r->comp_p[m].threshold);
            fprintf(f, ", \"rule\": \"score > threshold\", \"connectivity\": %d, \"min_pred_size\": %d, \"min_gt_size\": %d, \"sIoU_gt\": ",
                    r->comp_p[m].connectivity, r->comp_p[m].min_pred_size, r->comp_p[m].min_gt_size);
            jnum(f, c->siou_gt);
            fprintf(f, ", \"PPV\": "); jnum(f, c->ppv);
            fprintf(f, ", \"F1_mean\": "); jnum(f, c->f1_mean);
            fprintf(f, ", \"F1\": {");
            for (int d = 0; d < COMP_NDELTA; d++) { fprintf(f, "%s\"%.2f\": ", d ? ", " : "", comp_delta(d)); jnum(f, c->f1[d]); }
            fprintf(f, "}, \"n_gt_components\": %lld, \"n_pred_components\": %lld}", (long long)c->n_gt, (long long)c->n_pred);
        }
        fputc('}', f);
    }
    fprintf(f, "\n }\n}\n");
    return out_close(&o, e);
}

char *report_table_md(const report *r) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    fprintf(f, "| Method | AP | FPR95 | AUROC |\n|:---|---:|---:|---:|\n");
    for (int m = 0; m < r->n_methods; m++) {
        fprintf(f, "| %s | ", r->methods[m]);
        pct(f, r->res[m]->ap); fputs(" | ", f);
        pct(f, r->res[m]->fpr95); fputs(" | ", f);
        pct(f, r->res[m]->auroc); fputs(" |\n", f);
    }
    fclose(f);
    return buf;
}

int report_write_md(const report *r, const char *path, err *e) {
    outf o;
    if (out_open(&o, path, e)) return e->code;
    FILE *f = o.f;
    fprintf(f, "# OoD segmentation metrics\n\n");
    fprintf(f, "- Dataset: `%s` (%s, %d images; labels %s)\n", r->info.dataset, r->info.layout, r->info.n_images, r->info.labels_doc);
    fprintf(f, "- Model: `%s`%s%s%s\n", r->info.model, r->info.model_arch ? " (" : "", r->info.model_arch ? r->info.model_arch : "", r->info.model_arch ? ")" : "");
    if (r->info.options_json && *r->info.options_json) fprintf(f, "- Method options: `%s`\n", r->info.options_json);
    if (r->info.note) fprintf(f, "- Note: %s\n", r->info.note);
    fprintf(f, "- FPR95 convention: **%s**: %s\n", fpr_conv_name(r->conv), fpr_conv_describe(r->conv));
    fprintf(f, "- Metrics: %s Values x100.\n- oodseg %s\n\n", metric_doc, OODSEG_VERSION);
    char *t = report_table_md(r);
    if (t) { fputs(t, f); free(t); }
    if (r->has_comp) {
        fprintf(f, "\n## SegmentMeIfYouCan component metrics\n\n| Method | threshold | sIoU gt | PPV | mean F1 |\n|:---|---:|---:|---:|---:|\n");
        for (int m = 0; m < r->n_methods; m++) {
            fprintf(f, "| %s | %.6g | ", r->methods[m], r->comp_p[m].threshold);
            pct(f, r->comp[m].siou_gt); fputs(" | ", f);
            pct(f, r->comp[m].ppv); fputs(" | ", f);
            pct(f, r->comp[m].f1_mean); fputs(" |\n", f);
        }
    }
    return out_close(&o, e);
}

static void csv_field(FILE *f, const char *s) {
    if (strpbrk(s, ",\"\n")) {
        fputc('"', f);
        for (; *s; s++) { if (*s == '"') fputc('"', f); fputc(*s, f); }
        fputc('"', f);
    } else fputs(s, f);
}

int report_write_csv(const report *r, const char *path, err *e) {
    outf o;
    if (out_open(&o, path, e)) return e->code;
    FILE *f = o.f;
    fprintf(f, "method,AP,FPR95,AUROC,fpr95_convention,FPR95_first_ge,FPR95_nearest,FPR95_first_gt\n");
    for (int m = 0; m < r->n_methods; m++) {
        const metrics_result *x = r->res[m];
        csv_field(f, r->methods[m]);
        fputc(',', f); pct(f, x->ap); fputc(',', f); pct(f, x->fpr95); fputc(',', f); pct(f, x->auroc);
        fprintf(f, ",%s", fpr_conv_name(r->conv));
        for (int c = 0; c < FPR_NUM_CONV; c++) { fputc(',', f); pct(f, x->fpr95_all[c]); }
        fputc('\n', f);
    }
    return out_close(&o, e);
}

int report_write_per_image(const report *r, const char *path, err *e) {
    outf o;
    if (out_open(&o, path, e)) return e->code;
    FILE *f = o.f;
    fprintf(f, "image,valid_pixels,ood_pixels");
    for (int m = 0; m < r->n_methods; m++)
        fprintf(f, ",%s_AP,%s_FPR95,%s_AUROC", r->methods[m], r->methods[m], r->methods[m]);
    fprintf(f, ",seconds\n");
    for (int i = 0; i < r->n_rows; i++) {
        const report_row *w = &r->rows[i];
        csv_field(f, w->stem ? w->stem : "");
        fprintf(f, ",%lld,%lld", (long long)w->n_valid, (long long)w->n_ood);
        for (int m = 0; m < r->n_methods; m++) {
            fputc(',', f); pct(f, w->ap[m]); fputc(',', f); pct(f, w->fpr95[m]); fputc(',', f); pct(f, w->auroc[m]);
        }
        fprintf(f, ",%.3f\n", w->seconds);
    }
    return out_close(&o, e);
}

// ---- SVG -------------------------------------------------------------------------------------
static const char *colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

void report_xml_text(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

// Method m's line: lines drawn first are wider and each has its own dash pattern, so a curve that
// lies on another (max-logit under energy) still shows as a coloured border or through the gaps.
static double line_width(const report *r, int m) {
    double w = 2.2 + 0.9 * (r->n_methods - 1 - m);
    return w > 6 ? 6 : w;
}
static const char *dashes[] = {"none", "10 4", "3 3", "14 4 3 4", "6 2 2 2", "7 3 1 3", "18 5", "5 2"};

void report_svg(FILE *f, const report *r, int roc) {
    const double W = 640, H = 540, L = 70, R = 20, T = 60, B = 60;   // plot area margins
    const double pw = W - L - R, ph = H - T - B;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
               "font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"13\">\n", W, H, W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    // title: what was measured, on which dataset, with which model
    fprintf(f, "<text x=\"%.1f\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">", L + pw / 2);
    fputs(roc ? "ROC curve: " : "Precision-recall curve: ", f);
    report_xml_text(f, r->info.layout && *r->info.layout ? r->info.layout : r->info.dataset ? r->info.dataset : "");
    fprintf(f, " (%d images)</text>\n", r->info.n_images);
    fprintf(f, "<text x=\"%.1f\" y=\"42\" text-anchor=\"middle\" font-size=\"12\" fill=\"#333\">model: ", L + pw / 2);
    report_xml_text(f, r->info.model_arch && *r->info.model_arch ? r->info.model_arch : r->info.model ? r->info.model : "?");
    if (r->info.model_arch && *r->info.model_arch && r->info.model && *r->info.model && *r->info.model != '(') {
        const char *b = strrchr(r->info.model, '/');
        fputs(" (", f);
        report_xml_text(f, b ? b + 1 : r->info.model);
        fputs(")", f);
    }
    fputs("</text>\n", f);
    // grid, ticks, axis labels
    for (int k = 0; k <= 5; k++) {
        double v = k / 5.0, x = L + v * pw, y = T + ph - v * ph;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x, T, x, T + ph);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, y, L + pw, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.1f</text>\n", x, T + ph + 18, v);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n", L - 6, y + 4, v);
    }
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"black\"/>\n", L, T, pw, ph);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", L + pw / 2, H - 18,
            roc ? "False positive rate" : "Recall");
    fprintf(f, "<text transform=\"translate(20 %.1f) rotate(-90)\" text-anchor=\"middle\">%s</text>\n", T + ph / 2,
            roc ? "True positive rate" : "Precision");
    if (roc)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" stroke-dasharray=\"4 4\"/>\n",
                L, T + ph, L + pw, T);
    // curves, decimated to points at least half a pixel apart
    fprintf(f, "<g fill=\"none\" stroke-linejoin=\"round\">\n");
    for (int m = 0; m < r->n_methods; m++) {
        const metrics_curve *c = &r->res[m]->curve;
        if (c->n < 1) continue;
        fprintf(f, "<polyline stroke=\"%s\" stroke-width=\"%.1f\" stroke-dasharray=\"%s\" points=\"", colors[m % 8],
                line_width(r, m), dashes[m % 8]);
        double lx = -1e9, ly = -1e9;
        for (int i = 0; i < c->n; i++) {
            double xv = roc ? c->fpr[i] : c->recall[i], yv = roc ? c->tpr[i] : c->precision[i];
            double x = L + xv * pw, y = T + ph - yv * ph;
            if (i > 0 && i < c->n - 1 && fabs(x - lx) < 0.5 && fabs(y - ly) < 0.5) continue;
            fprintf(f, "%.1f,%.1f ", x, y);
            lx = x; ly = y;
        }
        fprintf(f, "\"/>\n");
    }
    fprintf(f, "</g>\n");
    // legend, sized to its longest entry (about 7.5 px a character at 13 px)
    size_t longest = 0;
    for (int m = 0; m < r->n_methods; m++) if (strlen(r->methods[m]) > longest) longest = strlen(r->methods[m]);
    double lw = 56 + 7.5 * (double)(longest + (roc ? 28 : 11));
    if (lw > pw - 20) lw = pw - 20;
    double lx0 = L + pw - lw - 10, ly0 = roc ? T + ph - 14 - 20.0 * r->n_methods : T + 10;
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#999\"/>\n",
            lx0, ly0, lw, 20.0 * r->n_methods + 8);
    for (int m = 0; m < r->n_methods; m++) {
        double y = ly0 + 16 + 20.0 * m;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"%.1f\" stroke-dasharray=\"%s\"/>\n",
                lx0 + 8, y - 4, lx0 + 36, y - 4, colors[m % 8], line_width(r, m) < 3 ? 3 : line_width(r, m), dashes[m % 8]);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">", lx0 + 44, y);
        report_xml_text(f, r->methods[m]);
        if (roc) fprintf(f, " (AUROC %.2f, FPR95 %.2f)</text>\n", 100 * r->res[m]->auroc, 100 * r->res[m]->fpr95);
        else fprintf(f, " (AP %.2f)</text>\n", 100 * r->res[m]->ap);
    }
    fprintf(f, "</svg>\n");
}

int report_write_svg(const report *r, int roc, const char *path, err *e) {
    outf o;
    if (out_open(&o, path, e)) return e->code;
    fprintf(o.f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    report_svg(o.f, r, roc);
    return out_close(&o, e);
}

int report_write_all(const report *r, const char *dir, err *e) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return err_set(e, OODSEG_E_IO, "%s: cannot create the output folder (%s)", dir, strerror(errno));
    static const char *names[] = {"metrics.json", "metrics.md", "metrics.csv", "per_image.csv", "pr_curve.svg", "roc_curve.svg"};
    for (int k = 0; k < 6; k++) {
        if (k == 3 && !r->rows) continue;
        size_t n = strlen(dir) + strlen(names[k]) + 2;
        char *p = malloc(n);
        if (!p) return err_set(e, OODSEG_E_NOMEM, "report: out of memory");
        snprintf(p, n, "%s/%s", dir, names[k]);
        int rc = k == 0 ? report_write_json(r, p, e) : k == 1 ? report_write_md(r, p, e) : k == 2 ? report_write_csv(r, p, e)
               : k == 3 ? report_write_per_image(r, p, e) : report_write_svg(r, k == 5, p, e);
        free(p);
        if (rc) return rc;
    }
    return OODSEG_OK;
}

void report_rows_free(report_row *rows, int n) {
    if (!rows) return;
    for (int i = 0; i < n; i++) free(rows[i].stem);
    free(rows);
}
