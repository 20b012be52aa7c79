// `oodseg eval` (a model + OoD methods on a benchmark, with reports) and `oodseg metrics` (exact
// metrics of score maps saved by any tool; merging shard states).
#ifndef OODSEG_CLI_COMMANDS_EVAL_H
#define OODSEG_CLI_COMMANDS_EVAL_H

#include "../eval/metrics.h"
#include "../eval/datasets.h"
#include "../eval/report.h"
#include "../core/text.h"   // json_append_str

int cmd_eval(int argc, char **argv);
int cmd_metrics(int argc, char **argv);

// ---- shared by cmd_eval.c and cmd_metrics.c (implemented in cmd_metrics.c) --------------------
// Accumulates every method's pooled metrics, per-image rows and component counts over a dataset.
typedef struct eval_acc {
    int n_methods;
    char names[REPORT_MAX_METHODS][MSTATE_NAME];
    macc *acc[REPORT_MAX_METHODS];
    fpr_conv conv;
    int comp_on;                         // SMIYC component metrics wanted
    comp_params cp[REPORT_MAX_METHODS];  // threshold NaN: decided after the pooled pass
    comp_acc comp[REPORT_MAX_METHODS];
    report_row *rows;
    int n_rows, cap_rows;
    metrics_result res[REPORT_MAX_METHODS];
    comp_result comp_res[REPORT_MAX_METHODS];
    int computed;
} eval_acc;

int evacc_init(eval_acc *a, int n_methods, const char *const *names, fpr_conv conv, int comp_on,
               const comp_params *cp, err *e);
// One image: scores[m] are w*h maps, labels mapped to 0/1/255.
int evacc_add(eval_acc *a, const char *stem, const float *const *scores, const uint8_t *labels,
              int w, int h, double seconds, err *e);
// Pooled metrics (with curves); sets the default component thresholds where none was given.
int evacc_compute(eval_acc *a, err *e);
// Component pass over score maps saved as dirs[m]/<stem>.npy (when thresholds came from the pool).
int evacc_comp_pass(eval_acc *a, const dataset *ds, const char *const *dirs, err *e);
void evacc_free(eval_acc *a);
// Finds dir/<stem>.npy (or dir/<stem>_score.npy) and loads it as an h x w float map, with errors
// naming the file for a missing map or a wrong shape.
int load_score_map(const char *dir, const char *stem, int w, int h, const char *label_path,
                   float **out, err *e);
// Writes the report files into out_dir (if not NULL) and prints the Markdown table on stdout.
int eval_finish_report(eval_acc *a, report *r, const char *out_dir, err *e);

#endif
