// oodseg: the command-line tool. Each subcommand lives in its own file; this one dispatches.
#include "cli.h"
#include "commands_eval.h"
#include "../core/interrupt.h"
#include <malloc.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    cli_wait_policy(argv);   // may execute the program again, once (cli/wait_policy.c)
    // The process's malloc policy is the program's to set, not the library's: keep freed blocks up
    // to 256 MiB in the heap so that each image's K-Means workspace and pictures reuse the pages
    // of the previous image instead of being mapped and zero-filled again (up to 20 % of a fit).
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        cli_help_all();
        return argc < 2 ? OODSEG_E_ARG : 0;
    }
    if (!strcmp(argv[1], "--version")) { printf("oodseg %s\n", OODSEG_VERSION); return 0; }
    const char *c = argv[1];
    if (!strcmp(c, "eval") || !strcmp(c, "mine")) {   // the commands that spread over MPI ranks
        err e = {0};
        if (cli_dist_init(&argc, &argv, &e)) return cli_fail(&e);
        int rc = !strcmp(c, "eval") ? cmd_eval(argc, argv) : cmd_mine(argc, argv);
        cli_dist_finalize();
        return rc;
    }
    if (!strcmp(c, "info")) return cmd_info(argc, argv);
    if (!strcmp(c, "forward")) return cmd_forward(argc, argv);
    if (!strcmp(c, "score")) { interrupt_install(); return cmd_score(argc, argv); }   // it polls the flag
    if (!strcmp(c, "eval")) return cmd_eval(argc, argv);
    if (!strcmp(c, "metrics")) return cmd_metrics(argc, argv);
    if (!strcmp(c, "fit-centroids")) return cmd_fit_centroids(argc, argv);
    if (!strcmp(c, "calibrate")) return cmd_calibrate(argc, argv);
    if (!strcmp(c, "bench")) return cmd_bench(argc, argv);
    fprintf(stderr, "oodseg: unknown command '%s' (see oodseg --help)\n", c);
    return OODSEG_E_ARG;
}
