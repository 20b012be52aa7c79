// oodseg: the command-line tool. Each subcommand lives in its own file; this one dispatches.
#include "cli.h"
#include "commands_eval.h"
#include <malloc.h>
#include <stdio.h>
#include <string.h>

static const char *usage =
"oodseg " OODSEG_VERSION ": training-free out-of-distribution segmentation\n"
"\n"
"usage: oodseg COMMAND [options]\n"
"\n"
"commands:\n"
"  info MODEL                    what was recognised in a checkpoint (architecture, size,\n"
"                                classes, parameters, format, dtype, preprocessing, taps)\n"
"  forward --model M --save OUT.safetensors IMAGE\n"
"                                run the network; save the input, logits and feature taps\n"
"                                (--all: every intermediate the model names)\n"
"  score [--model M] [--method m1,m2] -o DIR IMAGE|FOLDER...\n"
"                                anomaly maps: <stem>_score.npy (float32, image size),\n"
"                                _heat.png, _overlay.png, _seg.png, _clusters.png\n"
"  eval --model M --dataset NAME:PATH --methods m1,m2 -o DIR\n"
"                                benchmark metrics (AP, AUROC, FPR95) and reports\n"
"  metrics --dataset NAME:PATH --scores DIR [-o DIR] | metrics --merge STATE...\n"
"                                exact metrics of score maps saved by any tool\n"
"  fit-centroids --model M -o FILE FOLDER...\n"
"                                per-class feature centroids of in-distribution images\n"
"                                (for --method centroid --centroids FILE)\n"
"  calibrate --model M -o FILE FOLDER...\n"
"                                max-logit percentiles of in-distribution images\n"
"                                (for --tau-mode calibrated --tau-file FILE)\n"
"\n"
"model options:\n"
"  --model FILE        .pth (zip or legacy), .safetensors; default: ESPNetv2 s=2.0 Cityscapes,\n"
"                      from $OODSEG_ASSETS/models/, else installed beside oodseg (share/oodseg/)\n"
"  --size native|WxH   override the model's test resize\n"
"  --id-channels LIST  in-distribution output channels, e.g. 0-18\n"
"  --offset-scale S    InternImage DCNv3 offset scale (default 1.0 T/S/B, 2.0 L/XL;\n"
"                      custom sizes: 1.0 pre-norm, 2.0 post-norm)\n"
"  --threads N         OpenMP threads (default: all cores); results do not depend on it\n"
"\n"
"methods (--method m1,m2; score's default: maxlogit, eval's: maxlogit,msp,entropy,energy,kmeans)\n"
"and their options (the defaults are frozen in METHOD.md):\n"
"%s"
"\n"
"exit status: 0 ok, 2 bad argument, 3 i/o error, 4 corrupt or unsupported file,\n"
"  5 checkpoint does not fit the architecture, 6 out of memory / input too large,\n"
"  7 dataset error, 8 internal error\n";

int main(int argc, char **argv) {
    // The process's malloc policy is the program's to set, not the library's: keep freed blocks up
    // to 256 MiB in the heap so that each image's K-Means workspace and pictures reuse the pages
    // of the previous image instead of being mapped and zero-filled again (up to 20 % of a fit).
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        printf(usage, ood_options_help());
        return argc < 2 ? OODSEG_E_ARG : 0;
    }
    if (!strcmp(argv[1], "--version")) { printf("oodseg %s\n", OODSEG_VERSION); return 0; }
    const char *c = argv[1];
    if (!strcmp(c, "info")) return cmd_info(argc, argv);
    if (!strcmp(c, "forward")) return cmd_forward(argc, argv);
    if (!strcmp(c, "score")) return cmd_score(argc, argv);
    if (!strcmp(c, "eval")) return cmd_eval(argc, argv);
    if (!strcmp(c, "metrics")) return cmd_metrics(argc, argv);
    if (!strcmp(c, "fit-centroids")) return cmd_fit_centroids(argc, argv);
    if (!strcmp(c, "calibrate")) return cmd_calibrate(argc, argv);
    fprintf(stderr, "oodseg: unknown command '%s' (see oodseg --help)\n", c);
    return OODSEG_E_ARG;
}
