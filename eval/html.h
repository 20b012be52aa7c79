// The evaluation report as one self-contained HTML page (DIR/index.html) that works from file://
// with no network: inline CSS, the PR and ROC curves as inline SVG, a few lines of plain
// JavaScript to sort the per-image table. It holds the run's header (model, dataset, methods with
// their resolved options, date, command line), the metrics table with the best value per column
// marked, the curves, each method's hardest frames (lowest per-image AP) large, and the per-image
// table sortable by each method's AP and FPR95, with thumbnails (DIR/thumbs/, JPEG, lazy-loaded)
// of the image, its label and each method's heat map and overlay when the run made them
// (`oodseg eval`); `oodseg metrics` has no pictures, and its page leaves them out.
#ifndef OODSEG_EVAL_HTML_H
#define OODSEG_EVAL_HTML_H

#include <stddef.h>
#include "report.h"

#define HTML_THUMB_W 400        // thumbnails at most this wide (RoadAnomaly: 400x225, ~15 KB each)
#define HTML_THUMB_QUALITY 75   // JPEG quality
#define HTML_THUMBS "thumbs"    // their folder beside index.html
#define HTML_HARDEST 8          // frames shown large per method

// The thumbnail file name (in HTML_THUMBS): <stem>_<kind>.jpg for kind "image" and "label"
// (method NULL), <stem>_<method>_<kind>.jpg for "heat" and "overlay".
void html_thumb_name(char *buf, size_t n, const char *stem, const char *method, const char *kind);

typedef struct html_opts {
    const char *command_line;   // as typed, or NULL
    const char *date;           // NULL: now, local time
    int thumbs;                 // 1: the run wrote thumbnails into DIR/thumbs/ (those present are shown)
} html_opts;

// Writes dir/index.html (dir must exist). r->rows NULL (merged shards): no per-image sections.
int report_write_html(const report *r, const html_opts *o, const char *dir, err *e);

#endif
