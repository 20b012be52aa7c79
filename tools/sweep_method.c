// Sweeps OoD method options on a dataset with the network run once per image: the logits, the
// feature taps and the labels of every image are kept in memory, then each configuration is
// scored and evaluated exactly (eval/metrics). This is how METHOD.md's defaults were chosen.
//
//   build/tools/sweep_method --model M --dataset camvid-ood:PATH [--limit N] [--threads N] CONFIGS
//
// CONFIGS: one configuration a line, "name | options", e.g.
//   maxlogit       | --method maxlogit
//   km-k8-p25-s1   | --method kmeans --k 8 --tau-mode percentile --tau 25 --score s1
// Lines starting with '#' are ignored. Prints a Markdown table (AP / FPR95 / AUROC x100).
#include "../cli/cli.h"
#include "../api/pipeline.h"
#include "../eval/datasets.h"
#include "../eval/metrics.h"
#include "../nn/nn.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cached {
    tensor_list tl;     // "logits" + every tap of the model
    image label;        // 0/1/255 at image size
} cached;

static int die(const err *e) { fprintf(stderr, "sweep: %s\n", e->msg); return e->code ? e->code : 1; }

typedef struct sweep_args { const char *dataset; int limit; } sweep_args;

static int sweep_flags(void *ctx, int argc, char **argv, int i, err *e) {
    sweep_args *a = ctx;
    if (i + 1 >= argc) return 0;
    if (!strcmp(argv[i], "--dataset")) { a->dataset = argv[i + 1]; return 2; }
    if (!strcmp(argv[i], "--limit")) { a->limit = atoi(argv[i + 1]); return 2; }
    (void)e;
    return 0;
}

// Splits "a b  c" into argv-style words in place.
static int split_words(char *s, char **w, int max) {
    int n = 0;
    for (char *save = NULL, *t = strtok_r(s, " \t\r\n", &save); t && n < max; t = strtok_r(NULL, " \t\r\n", &save))
        w[n++] = t;
    return n;
}

int main(int argc, char **argv) {
    cli_common c;
    sweep_args sa = {0};
    err e = {0};
    if (cli_parse(argc, argv, 1, &c, sweep_flags, &sa, &e)) return die(&e);
    if (!sa.dataset || c.n_pos != 1) {
        fprintf(stderr, "usage: sweep_method --model M --dataset NAME:PATH [--limit N] [--threads N] CONFIGS\n");
        return 2;
    }
    model *m;
    if (model_open(c.model, &c.ctx, &c.mo, &m, &e)) return die(&e);
    dataset ds;
    if (dataset_open(sa.dataset, NULL, &ds, &e) || dataset_select(&ds, sa.limit, 0, 0, &e)) return die(&e);
    char want[1024] = "";
    for (int i = 0; i < m->desc.num_taps; i++) {
        strncat(want, i ? "," : "", sizeof want - strlen(want) - 1);
        strncat(want, m->desc.taps[i].name, sizeof want - strlen(want) - 1);
    }
    cached *cache = calloc((size_t)ds.n, sizeof *cache);
    double t0 = omp_get_wtime();
    for (int i = 0; i < ds.n; i++) {
        image img = {0};
        if (image_load_rgb(ds.items[i].image, &img, &e) ||
            model_forward_image(m, &img, c.mo.size, want, &cache[i].tl, &e) ||
            dataset_load_label(&ds, i, img.w, img.h, &cache[i].label, &e)) return die(&e);
        image_free(&img);
        cli_progress("forward", i + 1, ds.n, t0);
    }
    fprintf(stderr, "forward passes: %.1f s for %d images\n", omp_get_wtime() - t0, ds.n);

    FILE *f = fopen(c.pos[0], "r");
    if (!f) { fprintf(stderr, "sweep: cannot open %s\n", c.pos[0]); return 3; }
    printf("| configuration | options | AP | FPR95 | AUROC |\n|---|---|---|---|---|\n");
    char line[2048];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || !strchr(line, '|')) continue;
        char *bar = strchr(line, '|');
        *bar = 0;
        char name[128], opts[2048];
        sscanf(line, " %127s", name);
        snprintf(opts, sizeof opts, "%s", bar + 1);
        opts[strcspn(opts, "\r\n")] = 0;
        char optcopy[2048];
        snprintf(optcopy, sizeof optcopy, "%s", opts);
        char *w[64];
        int nw = split_words(optcopy, w + 1, 62);
        w[0] = "sweep";
        cli_common cc;
        if (cli_parse(nw + 1, w, 1, &cc, NULL, NULL, &e)) return die(&e);
        ood_method *meth;
        if (ood_method_open(cc.methods ? cc.methods : "maxlogit", &cc.oo, &meth, &e)) return die(&e);
        nn_ctx ctx;
        nn_ctx_init(&ctx, cc.threads);
        const char *taps = cc.oo.taps[0] ? cc.oo.taps : m->desc.default_taps;
        macc *acc;
        if (macc_new(&acc, &e)) return die(&e);
        double t1 = omp_get_wtime();
        for (int i = 0; i < ds.n; i++) {
            ood_input in;
            const tensor *feats[16];
            int strides[16];
            if (pipeline_ood_input(&m->ctx, &m->desc, &cache[i].tl, ood_method_def_of(meth)->flags & OOD_NEEDS_TAPS ? taps : "",
                                   &in, feats, strides, &e)) return die(&e);
            int H = in.h, W = in.w;
            float *score = malloc((size_t)H * W * sizeof(float));
            const image *lab = &cache[i].label;
            float *big = malloc((size_t)lab->w * lab->h * sizeof(float));
            if (ood_method_score(meth, &ctx, &in, score, NULL, &e)) return die(&e);
            resize_bilinear(&m->ctx, score, 1, H, W, big, lab->h, lab->w, 0);
            if (macc_add(acc, big, lab->px, (int64_t)lab->w * lab->h, &e)) return die(&e);
            free(score);
            free(big);
        }
        metrics_result r;
        if (macc_compute(acc, FPR_FIRST_GE, 0, &r, &e)) return die(&e);
        printf("| %s | `%s` | %.2f | %.2f | %.2f |\n", name, opts + strspn(opts, " "), 100 * r.ap, 100 * r.fpr95, 100 * r.auroc);
        fflush(stdout);
        fprintf(stderr, "%s: %.1f s\n", name, omp_get_wtime() - t1);
        metrics_result_free(&r);
        macc_free(acc);
        ood_method_close(meth);
        cli_free(&cc);
    }
    fclose(f);
    for (int i = 0; i < ds.n; i++) { tl_free(&cache[i].tl); image_free(&cache[i].label); }
    free(cache);
    dataset_free(&ds);
    model_close(m);
    cli_free(&c);
    return 0;
}
