// What the subcommands share: option parsing, exit codes, progress display, image lists.
#ifndef OODSEG_CLI_CLI_H
#define OODSEG_CLI_CLI_H

#include "../core/err.h"
#include "../models/model.h"
#include "../ood/ood.h"
#include "../api/pipeline.h"

// Options every model-running command accepts: the job's configuration (the model, its options,
// --threads, the methods and every method option; api/config.c gives them their meaning), the
// output and the positional arguments.
typedef struct cli_common {
    pipeline_config cfg;
    const char *out_dir;      // -o / --out
    int n_pos;                // positional arguments
    char **pos;
} cli_common;

// Parses argv[first..argc): -o and positional arguments here, every other "--name value" through
// pipeline_config_set; `extra`
// (may be NULL) gets first pick of each "--flag": it returns the number of argv entries it used
// (0: not its flag, -1: error already in e).
typedef int (*cli_extra_fn)(void *ctx, int argc, char **argv, int i, err *e);
int cli_parse(int argc, char **argv, int first, cli_common *c, cli_extra_fn extra, void *ctx, err *e);
void cli_free(cli_common *c);

// Prints "oodseg: <message>" and returns the exit status for e->code.
int cli_fail(const err *e);
// A progress bar with ETA on stderr when it is a terminal; silent otherwise.
void cli_progress(const char *what, int done, int total, double started);

// Expands files and folders (images: .png .jpg .jpeg .webp, sorted) into a list of paths.
int cli_collect_images(char **args, int n, char ***paths, int *n_paths, err *e);
void cli_free_list(char **paths, int n);
// "dir/name.ext" -> "name"
void cli_stem(const char *path, char *stem, size_t n);
int cli_mkdir_p(const char *dir, err *e);
// The model of c (--model, else the default model) opened with c's options and a context of its
// --threads.
int cli_open_model(const cli_common *c, const char *path, model **m, err *e);

int cmd_info(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_fit_centroids(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);

#endif
