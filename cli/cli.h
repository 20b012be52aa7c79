// What the subcommands share: option parsing, exit codes, progress display, image lists.
#ifndef OODSEG_CLI_CLI_H
#define OODSEG_CLI_CLI_H

#include "../core/err.h"
#include "../models/model.h"
#include "../ood/ood.h"
#include "../api/pipeline.h"
#include "../api/distributed.h"

// Options every model-running command accepts: the job's configuration (the model, its options,
// --threads, the methods and every method option; api/config.c gives them their meaning), the
// output and the positional arguments.
typedef struct cli_common {
    pipeline_config cfg;
    const char *out_dir;      // -o / --out
    int n_pos;                // positional arguments
    char **pos;
} cli_common;

// Not a status code: --help was printed; the command exits 0.
#define CLI_HELP 99

// Parses argv[first..argc) of subcommand cmd: --help / -h prints cmd's help and returns CLI_HELP;
// -o and positional arguments here, every other "--name value" through pipeline_config_set;
// `extra` (may be NULL) gets first pick of each "--flag": it returns the number of argv entries it
// used (0: not its flag, -1: error already in e).
typedef int (*cli_extra_fn)(void *ctx, int argc, char **argv, int i, err *e);
int cli_parse(int argc, char **argv, int first, const char *cmd, cli_common *c, cli_extra_fn extra,
              void *ctx, err *e);
void cli_free(cli_common *c);

// Prints "oodseg: <message>" and returns the exit status for e->code (0 for CLI_HELP).
int cli_fail(const err *e);
// Help (cli/help.c): one subcommand's (OODSEG_E_ARG for an unknown one), or every command's.
int cli_help(const char *cmd);
void cli_help_all(void);
// Progress on stderr: a bar with ETA redrawn in place on a terminal; otherwise one line per image,
// or per total/20 images on long runs (logs stay readable).
void cli_progress(const char *what, int done, int total, double started);

// Expands files and folders (images: .png .jpg .jpeg .webp, sorted) into a list of paths. Files
// named like the tool's own outputs (pipeline_is_output_name) are left out and counted on stderr.
// *any_folder (may be NULL): 1 when a folder was given.
int cli_collect_images(char **args, int n, char ***paths, int *n_paths, int *any_folder, err *e);
// OODSEG_E_ARG naming the first two inputs whose outputs would have the same stem.
int cli_check_stems(char **paths, int n, err *e);
// The command line, each argument shell-quoted where it needs it (for reports).
void cli_command_line(int argc, char **argv, char *buf, size_t n);
void cli_free_list(char **paths, int n);
// "dir/name.ext" -> "name"
void cli_stem(const char *path, char *stem, size_t n);
int cli_mkdir_p(const char *dir, err *e);

// The MPI ranks of this run (api/distributed.h): one rank unless started by mpirun or srun.
int cli_dist_init(int *argc, char ***argv, err *e);
const dist *cli_dist(void);
void cli_dist_finalize(void);
// --threads is per rank: without it, the ranks on one machine share its cores (Open MPI's and
// Slurm's local rank counts say how many there are).
void cli_rank_threads(pipeline_config *cfg);
// Like cli_collect_images, and also videos (.mp4 .mkv .avi .mov) and, with lists 1, file lists
// (a .txt file: one image or video path a line, relative to the list's folder; # comments).
int cli_collect_inputs(char **args, int n, int lists, char ***paths, int *n_paths, int *any_folder, err *e);

int cmd_info(int argc, char **argv);
int cmd_mine(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_fit_centroids(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_bench(int argc, char **argv);
// The OpenMP wait policy of the program (cli/wait_policy.c): sets it and executes the program
// again once, unless the user or a launcher decided; returns only when it did not execute.
void cli_wait_policy(char **argv);

#endif
