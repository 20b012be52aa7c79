// `oodseg eval` (a model + OoD methods on a benchmark, with reports) and `oodseg metrics` (exact
// metrics of score maps saved by any tool; merging shard states). The evaluation itself is the
// library's evaluator (eval/evaluator.h); these commands parse arguments and print.
#ifndef OODSEG_CLI_COMMANDS_EVAL_H
#define OODSEG_CLI_COMMANDS_EVAL_H

#include "../eval/evaluator.h"
#include "../eval/datasets.h"
#include "../eval/html.h"

// ---- the options eval and metrics share (cli/eval_flags.c) -----------------------------------
typedef struct cli_eval_flags {
    const char *spec, *save_state;     // --dataset NAME:PATH, --save-state FILE
    int limit, shard_i, shard_n;       // --limit N, --shard I/N
    int comp, conn, no_html;           // --components / --no-components (-1: the layout's default), --connectivity, --no-html
    double comp_thr;                   // --comp-threshold (NaN: the SMIYC default)
    fpr_conv conv;                     // --fpr-convention
    ds_generic g;                      // --images --labels --label-suffix --ood --ignore --id
} cli_eval_flags;
void cli_eval_flags_init(cli_eval_flags *f);
// A switch of the set: 1 when k is one, else 0.
int cli_eval_switch(cli_eval_flags *f, const char *k);
// A flag of the set with its value: 1 when taken, 0 when k is not one, -1 on a bad value (in e).
int cli_eval_flag(cli_eval_flags *f, const char *k, const char *v, err *e);
// The evaluator's options for a dataset of that SMIYC track.
void cli_eval_opts(const cli_eval_flags *f, int smiyc_track, evaluator_opts *eo);
// --dataset, then --limit and --shard; an empty selection is an error.
int cli_open_dataset(const cli_eval_flags *f, dataset *ds, err *e);

int cmd_eval(int argc, char **argv);
int cmd_metrics(int argc, char **argv);

// Shared by both (cmd_metrics.c): writes the reports into out_dir (if not NULL, created with its
// parents) and, when html is not NULL, the page out_dir/index.html; prints the Markdown table on
// stdout and where the reports went on stderr.
int cli_eval_report(const evaluator *ev, const eval_info *info, const char *out_dir, const html_opts *html, err *e);

#endif
