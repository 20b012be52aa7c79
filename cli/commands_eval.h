// `oodseg eval` (a model + OoD methods on a benchmark, with reports) and `oodseg metrics` (exact
// metrics of score maps saved by any tool; merging shard states). The evaluation itself is the
// library's evaluator (eval/evaluator.h); these commands parse arguments and print.
#ifndef OODSEG_CLI_COMMANDS_EVAL_H
#define OODSEG_CLI_COMMANDS_EVAL_H

#include "../eval/evaluator.h"
#include "../eval/datasets.h"
#include "../eval/html.h"

int cmd_eval(int argc, char **argv);
int cmd_metrics(int argc, char **argv);

// Shared by both (cmd_metrics.c): writes the reports into out_dir (if not NULL, created with its
// parents) and, when html is not NULL, the page out_dir/index.html; prints the Markdown table on
// stdout and where the reports went on stderr.
int cli_eval_report(const evaluator *ev, const eval_info *info, const char *out_dir, const html_opts *html, err *e);

#endif
