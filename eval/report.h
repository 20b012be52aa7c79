// Evaluation reports: metrics.json (machine-readable; each method has "AP", "AUROC", "FPR95" as
// fractions in [0, 1]), metrics.md (a Markdown table, x100 with two decimals), metrics.csv,
// per_image.csv, pr_curve.svg and roc_curve.svg (all methods on one plot). Every file is written
// to a temporary name and renamed, so a reader never sees half a report.
#ifndef OODSEG_EVAL_REPORT_H
#define OODSEG_EVAL_REPORT_H

#include <stdint.h>
#include <stdio.h>
#include "../core/err.h"
#include "metrics.h"
#include "evalmeta.h"
#include "components.h"

#define REPORT_MAX_METHODS 16

typedef struct report_row {      // one image of per_image.csv
    char *stem;                  // owned
    int64_t n_valid, n_ood;      // pixels after removing ignore; OoD pixels
    double ap[REPORT_MAX_METHODS], auroc[REPORT_MAX_METHODS], fpr95[REPORT_MAX_METHODS];   // NaN: undefined
    double seconds;              // network + methods for this image (0 when unknown)
} report_row;

typedef struct report {
    eval_info info;              // what was evaluated: dataset, model, options, images
    fpr_conv conv;
    int n_methods;
    const char *methods[REPORT_MAX_METHODS];
    const metrics_result *res[REPORT_MAX_METHODS];
    int has_comp;                // SMIYC component metrics present
    comp_result comp[REPORT_MAX_METHODS];
    comp_params comp_p[REPORT_MAX_METHODS];
    int n_rows;
    const report_row *rows;      // NULL when there is no per-image table (merged shards)
} report;

// Writes every file into dir (created if missing). Stops at the first failure.
int report_write_all(const report *r, const char *dir, err *e);
int report_write_json(const report *r, const char *path, err *e);
int report_write_md(const report *r, const char *path, err *e);
int report_write_csv(const report *r, const char *path, err *e);
int report_write_per_image(const report *r, const char *path, err *e);
int report_write_svg(const report *r, int roc, const char *path, err *e);   // roc 0: PR curve
// The curve as an <svg> element (no XML prolog), for a file or inline in the HTML page. The title
// names the dataset and the model; each method has its own colour, width and dash pattern.
void report_svg(FILE *f, const report *r, int roc);
// s with <, >, & and " escaped, for XML and HTML text and attribute values.
void report_xml_text(FILE *f, const char *s);
// The Markdown table alone, for printing on the terminal (caller frees).
char *report_table_md(const report *r);
void report_rows_free(report_row *rows, int n);

#endif
