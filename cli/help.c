// Every subcommand's help, in one place: `oodseg COMMAND --help` prints its own entry (with the
// option groups it takes), `oodseg --help` prints them all, so the two never disagree.
#include "cli.h"
#include "../eval/datasets.h"
#include <stdio.h>
#include <string.h>

enum { H_MODEL = 1, H_METHODS = 2, H_DATASETS = 4 };

typedef struct cmd_help {
    const char *name;
    const char *summary;   // one line for the command list
    const char *usage;     // the synopsis and the command's own options
    unsigned groups;       // option groups it also takes
} cmd_help;

static const cmd_help cmds[] = {
    {"info", "what was recognised in a checkpoint",
     "usage: oodseg info MODEL [model options]\n"
     "  Prints the architecture, size, classes, parameters, file format and dtype, preprocessing and\n"
     "  feature taps recognised in MODEL.\n", H_MODEL},
    {"forward", "run the network; save the input, logits and feature taps",
     "usage: oodseg forward [--model M] --save OUT.safetensors [--all] [model options] IMAGE\n"
     "  --save FILE         write the input, the logits and the feature taps (NCHW float32)\n"
     "  --all               also every intermediate tensor the model names\n", H_MODEL},
    {"score", "anomaly maps and pictures for images or folders",
     "usage: oodseg score [--model M] [--method m1,m2] [method options] -o DIR IMAGE|FOLDER...\n"
     "  Writes into DIR, for each image and method (one naming rule, whatever the number of methods):\n"
     "    <stem>_<method>_score.npy     float32 (h, w) at image size, higher = more anomalous\n"
     "    <stem>_<method>_heat.png      the score in colour, with a colour bar (name, unit, range)\n"
     "    <stem>_<method>_overlay.png   the heat map over the image, with the same bar\n"
     "    <stem>_<method>_clusters.png  kmeans: its clusters, with a key (OoD flags, threshold)\n"
     "    <stem>_seg.png                the predicted classes, with a legend (once per image)\n"
     "  Each image's files are written on their own thread while the next image's network runs.\n"
     "  --pictures F        the pictures' format: png (default), jpg (quality 90), webp (lossy,\n"
     "                      quality 80; about half JPEG's bytes) or none (score maps only)\n"
     "  --no-npy            no score maps (pictures only)\n"
     "  --resume            after an interruption (Ctrl-C, SIGTERM: the run stops after the images in\n"
     "                      hand and saves DIR/.oodseg-score-state.json), skip the images it finished;\n"
     "                      the same inputs and options are required. A second Ctrl-C stops at once,\n"
     "                      leaving no partial file (every output is written under a temporary name)\n"
     "  --method LIST       comma list of methods (default for score: kmeans, the paper's method)\n"
     "  -o, --out DIR       output folder (created with its parents)\n"
     "  --scale S           heat-map colours: image (each image's own min..max; the default),\n"
     "                      fixed:LO,HI (the same colours for every image), or calibrated:FILE\n"
     "                      (the ID max-logit range of `oodseg calibrate`, for methods in logit units)\n"
     "  --keep-going        report a bad input and go on; the summary counts the failures and the\n"
     "                      exit status is the first failure's (default when a FOLDER is given)\n"
     "  --fail-fast         stop at the first bad input (default when only files are given)\n"
     "  --no-clobber        refuse to run, before writing anything, when an output exists\n"
     "  Videos (.mp4 .mkv .avi .mov, through FFmpeg) give one output per frame, named\n"
     "  <video-stem>_f<frame-index> (six digits); a damaged video keeps the frames before the damage.\n"
     "  --every N           videos: every Nth frame (by frame index)\n"
     "  --start S, --end S  videos: the frames from S to before E seconds\n"
     "  --video-out         videos: also <video-stem>_overlay.mp4, the first method's overlay as a video\n"
     "  Folders give their .png .jpg .jpeg .webp files, sorted; files named like this tool's outputs\n"
     "  (*_heat.png, *_overlay.png, *_clusters.png, *_seg.png, or .jpg, .webp) are never read as\n"
     "  inputs. Two inputs with the same stem (a/x.png, b/x.jpg) are refused before anything is written.\n",
     H_MODEL | H_METHODS},
    {"eval", "benchmark metrics (AP, AUROC, FPR95), reports and an HTML page",
     "usage: oodseg eval [--model M] --dataset NAME:PATH [--methods m1,m2] [method options] -o DIR\n"
     "  Writes DIR/index.html (open it in a browser: header, metrics, curves, hardest frames, a\n"
     "  sortable per-image table with thumbnails in DIR/thumbs/), metrics.json, metrics.md,\n"
     "  metrics.csv, per_image.csv, pr_curve.svg, roc_curve.svg.\n"
     "  --methods LIST      comma list (default for eval: maxlogit,msp,entropy,energy,kmeans)\n"
     "  --limit N           the first N images only (N >= 1)\n"
     "  --shard I/N         the I-th of N equal slices of the dataset (1 <= I <= N)\n"
     "  --save-state FILE   the pooled state, to merge shards with `oodseg metrics --merge`\n"
     "  --save-scores       DIR/scores/<method>/<stem>.npy (inputs of `oodseg metrics`)\n"
     "  --save-maps         DIR/maps/: the pictures of `oodseg score` (none without it)\n"
     "  --pictures F        DIR/maps/ in format F: png, jpg, webp (as for score; implies --save-maps),\n"
     "                      or none\n"
     "  --no-html           no index.html and no thumbnails\n"
     "  --scale S           heat-map colours of the pictures and thumbnails (see score)\n"
     "  --fpr-convention C  first-ge (default, SMIYC), nearest (ADE-OoD) or first-gt (RbA)\n"
     "  --components, --no-components   SegmentMeIfYouCan component metrics (default: on for smiyc-*)\n"
     "  --comp-threshold T  components: predicted = score > T (default: the best-F1 threshold)\n"
     "  --connectivity 4|8  components' pixel connectivity (default 8)\n"
     "  --resume            continue an interrupted or killed run from DIR/chunks/ (same options)\n"
     "  --checkpoint-every N  images per chunk kept in DIR/chunks/ while the run lasts (default 8)\n"
     "  Ctrl-C or SIGTERM: the current image finishes, the images done are saved in DIR/chunks/, no\n"
     "  report is written, exit 130 / 143; run again with --resume for the same results. A second\n"
     "  Ctrl-C stops at once. With components, the score maps are saved in DIR/scores/ (one more\n"
     "  pass reads them at the end).\n"
     "  Under mpirun -n N / srun -n N (make MPI=1): each rank evaluates its contiguous block of images,\n"
     "  rank 0 merges the exact states and writes the same reports as one process; --threads is\n"
     "  per rank; DIR must be a folder every rank sees.\n",
     H_MODEL | H_METHODS | H_DATASETS},
    {"mine", "the most anomalous frames of long footage (folders, lists, videos)",
     "usage: oodseg mine [--model M] [--method kmeans] --top K [options] -o DIR INPUT...\n"
     "  INPUT: images, folders (their images and videos), videos (.mp4 .mkv .avi .mov), and .txt\n"
     "  lists (one path a line). Writes DIR/ranking.csv (the K best, with their scores and the boxes\n"
     "  of their anomalous regions), DIR/index.html (a gallery), DIR/top/ (each kept frame's .npy\n"
     "  map, overlay with boxes, and the frame), DIR/frames.tsv (every frame's scores, as they come).\n"
     "  --top K             frames kept (default 20)\n"
     "  --rank-by S         area (default: share of anomalous pixels), region (largest connected\n"
     "                      anomalous region), percentile (the map's --percentile P, default 99)\n"
     "  --calibration FILE  anomalous = score above the ID max-logit 0.5th percentile of\n"
     "                      `oodseg calibrate` (also fixes the overlay colours); else kmeans' OoD clusters\n"
     "  --threshold T       anomalous = score > T\n"
     "  --min-region F      boxes for regions of at least F of the frame (default 0.001)\n"
     "  --every N, --start S, --end S   videos, as for score\n"
     "  --resume            continue a killed run from DIR/frames.tsv (same options and inputs)\n"
     "  Under mpirun / srun each rank takes its share (a video by frame ranges); the ranking is the\n"
     "  same as one process's. Frames that fail are reported, skipped and counted.\n",
     H_MODEL | H_METHODS},
    {"metrics", "exact metrics of saved score maps; merging shard states",
     "usage: oodseg metrics --dataset NAME:PATH --scores [NAME=]DIR [--scores ...] [-o DIR]\n"
     "       oodseg metrics --merge STATE... [-o DIR] [--save-state FILE] [--fpr-convention C]\n"
     "  Score maps: DIR/<stem>.npy (or <stem>_score.npy), or DIR/<stem>_<method>_score.npy as\n"
     "  `oodseg score` writes them: without --method, every method found for the first image is\n"
     "  evaluated. float32, at label size, higher = more anomalous.\n"
     "  --scores [NAME=]DIR a folder of score maps (NAME: the method's name in the reports)\n"
     "  --method LIST       read DIR/<stem>_<method>_score.npy for these methods\n"
     "  --partial           evaluate the images that have score maps, and say how many were skipped\n"
     "  -o, --out DIR       reports and index.html (without pictures: metrics has none)\n"
     "  --no-html           no index.html\n"
     "  --limit N, --shard I/N, --save-state FILE, --fpr-convention C, --components,\n"
     "  --no-components, --comp-threshold T, --connectivity 4|8   as for eval\n"
     "  --merge STATE...    merge shard states exactly (saved with --save-state)\n",
     H_DATASETS},
    {"fit-centroids", "per-class feature centroids of in-distribution images",
     "usage: oodseg fit-centroids [--model M] [model options] [--k N] [--taps LIST] -o FILE IMAGE|FOLDER...\n"
     "  FILE is the input of --method centroid --centroids FILE.\n", H_MODEL | H_METHODS},
    {"calibrate", "max-logit percentiles of in-distribution images",
     "usage: oodseg calibrate [--model M] [model options] [--tau P] -o FILE IMAGE|FOLDER...\n"
     "  FILE is the input of --tau-mode calibrated --tau-file FILE, and of --scale calibrated:FILE.\n",
     H_MODEL | H_METHODS},
    {"bench", "time and memory of a model on this machine, per layer family",
     "usage: oodseg bench --model FILE|ARCH [--size WxH] [--threads N] [--runs R] [--json FILE]\n"
     "                    [--method m1,m2] [--precision fp32] [model options]\n"
     "  One warm-up, then R runs of the per-image pipeline (the network, then the methods) on a\n"
     "  random input at the network size. Prints a table of the median run: time per layer family\n"
     "  (stem, DCNv3 gather, projections, MLP, norms, PPM, FPN convs, attention, resize, the OoD\n"
     "  method, ...) with the GFLOP its convolutions, linears, attention and DCNv3 sampling did\n"
     "  (2 per multiply-add; a Winograd conv counts as the direct one) and GFLOP/s, and memory: the\n"
     "  forward's own peak, the activation arena, the weights (fp32) and the process's maxrss.\n"
     "  --model ARCH        random weights in the released shapes, no download needed:\n"
     "                      internimage-{t,s,b,l,xl}-{cityscapes,ade20k}, espnet-{cityscapes,camvid},\n"
     "                      espnetv2[-s{0.5,1.0,1.5,2.0}]-cityscapes,\n"
     "                      segformer-b{0,1,2,3,4,5}-{cityscapes,ade20k},\n"
     "                      dinov2-vit{s,b,l,g}14-{ade20k,voc2012}[-ms]\n"
     "  --size WxH          the network input (default: the model's test size for a 2048x1024 frame)\n"
     "  --runs R            timed runs after the warm-up (default 5)\n"
     "  --json FILE         the numbers for machines (seconds, families, GFLOP, memory in MB)\n"
     "  --precision P       fp32 (the only one this build computes in)\n"
     "  --method LIST       the methods timed after the network (default kmeans)\n"
     "  The table names the OpenMP wait policy in effect: every oodseg command sets OMP_WAIT_POLICY=passive\n"
     "  (idle threads sleep, so a busy machine does not slow it down) unless OMP_WAIT_POLICY or\n"
     "  GOMP_SPINCOUNT is set, OODSEG_WAIT_POLICY_SET=1 is set, or an MPI launcher started it.\n",
     H_MODEL},
};
#define N_CMDS (int)(sizeof cmds / sizeof *cmds)

static const char *model_opts =
    "model options (info, forward, score, eval, fit-centroids, calibrate, bench):\n"
    "  --model FILE        .pth (zip or legacy), .safetensors; default: ESPNetv2 s=2.0 Cityscapes,\n"
    "                      from $OODSEG_ASSETS/models/, else installed beside oodseg (share/oodseg/)\n"
    "  --size native|WxH   override the model's test resize\n"
    "  --id-channels LIST  in-distribution output channels, e.g. 0-18\n"
    "  --mode whole|slide  the network on the whole input, or on overlapping windows whose\n"
    "                      outputs are averaged (default: the model's official test mode)\n"
    "  --crop HxW          slide window, height x width (or one size S); default: the model's\n"
    "  --stride HxW        step between windows, at most the crop; default: the model's\n"
    "  --backbone FILE     the backbone of a two-file model (DINOv2: --model is the head file,\n"
    "                      FILE dinov2_<arch>_pretrain.pth)\n"
    "  --offset-scale S    InternImage DCNv3 offset scale (default 1.0 T/S/B, 2.0 L/XL;\n"
    "                      custom sizes: 1.0 pre-norm, 2.0 post-norm)\n"
    "  --threads N         threads (default: all cores); results do not depend on it\n"
    "  --precision P       fp32 (default), or bf16: the convolutions' and linear layers' GEMMs\n"
    "                      with bf16 operands and fp32 sums (about twice the GEMM rate; the\n"
    "                      classifiers and Winograd 3x3s stay fp32); needs a CPU with\n"
    "                      AVX512-BF16; scores move slightly (tools/check-bf16-accuracy.sh)\n"
    "  --max-memory SIZE   what one run may allocate, e.g. 8G or 512M (default: the available\n"
    "                      memory less 10% or 256M, whichever is more); a checkpoint, image or\n"
    "                      forward pass that needs more is refused with exit status 6, saying\n"
    "                      how much it needs (use a smaller --size or a higher --max-memory)\n"
    "  --tta               multi-scale (1, 1.32, 1.73, 2.28, 3) + flip test-time augmentation, as the\n"
    "                      DINOv2 'ms' configs: the methods score log(mean softmax); keep-ratio\n"
    "                      models only, not with kmeans or centroid (off by default: 10x the cost)\n";

static const char *exit_status =
    "exit status: 0 ok, 2 bad argument, 3 i/o error, 4 corrupt or unsupported file,\n"
    "  5 checkpoint does not fit the architecture, 6 out of memory / input too large,\n"
    "  7 dataset error, 8 internal error; score --keep-going: the first failed input's status;\n"
    "  score interrupted: 130 (SIGINT) or 143 (SIGTERM), resumable with --resume\n";

static void groups(unsigned g) {
    if (g & H_MODEL) printf("\n%s", model_opts);
    if (g & H_METHODS)
        printf("\nmethods (--method m1,m2; score's default: kmeans, eval's: maxlogit,msp,entropy,energy,kmeans)\n"
               "and their options (score, eval, fit-centroids, calibrate; the defaults are frozen in METHOD.md):\n%s",
               ood_options_help());
    if (g & H_DATASETS) printf("\n%s", dataset_help());
}

int cli_help(const char *cmd) {
    for (int i = 0; i < N_CMDS; i++)
        if (!strcmp(cmds[i].name, cmd)) {
            printf("%s", cmds[i].usage);
            groups(cmds[i].groups);
            printf("\n%s", exit_status);
            return 0;
        }
    return OODSEG_E_ARG;
}

void cli_help_all(void) {
    printf("oodseg " OODSEG_VERSION ": training-free out-of-distribution segmentation\n\n"
           "usage: oodseg COMMAND [options]      (oodseg COMMAND --help: that command's options alone)\n\ncommands:\n");
    for (int i = 0; i < N_CMDS; i++) printf("  %-15s %s\n", cmds[i].name, cmds[i].summary);
    for (int i = 0; i < N_CMDS; i++) printf("\n%s", cmds[i].usage);
    groups(H_MODEL | H_METHODS | H_DATASETS);
    printf("\n%s", exit_status);
}
