// `oodseg eval` (a model + OoD methods on a benchmark, with reports) and `oodseg metrics` (exact
// metrics of score maps saved by any tool; merging shard states).
#ifndef OODSEG_CLI_COMMANDS_EVAL_H
#define OODSEG_CLI_COMMANDS_EVAL_H

int cmd_eval(int argc, char **argv);
int cmd_metrics(int argc, char **argv);

#endif
