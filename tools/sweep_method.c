// Sweeps OoD method options on a dataset with the network run once per image: the logits, the
// feature taps and the labels of every image are kept in memory, then each configuration is
// scored and evaluated exactly (eval/metrics). This is how METHOD.md's defaults were chosen.
// It links liboodseg alone: options mean what they mean everywhere (api/config.c).
//
//   build/tools/sweep_method --model M --dataset camvid-ood:PATH [--limit N] [--threads N] CONFIGS
//
// CONFIGS: one configuration a line, "name | options", e.g.
//   maxlogit       | --method maxlogit
//   km-k8-p25-s1   | --method kmeans --k 8 --tau-mode percentile --tau 25 --score s1
// Lines starting with '#' are ignored. Prints a Markdown table (AP / FPR95 / AUROC x100).
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

typedef struct sweep {
    pipeline_config cfg;
    const char *dataset, *configs;
    int limit;
    model *m;
    dataset ds;
    cached *cache;
} sweep;

static int die(const err *e) { fprintf(stderr, "sweep: %s\n", e->msg); return e->code ? e->code : 1; }

// "--name value" pairs into cfg (a configuration line's options, or the command line's);
// the sweep's own flags (when s is given) and one positional argument (*pos) besides.
static int parse(sweep *s, pipeline_config *cfg, int argc, char **argv, const char **pos, err *e) {
    for (int i = 0; i < argc; i++) {
        if (argv[i][0] != '-') {
            if (!pos || *pos) return err_set(e, OODSEG_E_ARG, "unexpected argument '%s'", argv[i]);
            *pos = argv[i];
            continue;
        }
        if (i + 1 >= argc) return err_set(e, OODSEG_E_ARG, "%s needs a value", argv[i]);
        const char *k = argv[i] + (argv[i][1] == '-' ? 2 : 1), *v = argv[++i];
        if (s && !strcmp(k, "dataset")) { s->dataset = v; continue; }
        if (s && !strcmp(k, "limit")) { s->limit = atoi(v); continue; }
        int rc = pipeline_config_set(cfg, k, v, e);
        if (rc == 1) return err_set(e, OODSEG_E_ARG, "unknown option --%s", k);
        if (rc) return rc;
    }
    return OODSEG_OK;
}

// Every image's forward pass (all taps) and label, kept.
static int cache_all(sweep *s, err *e) {
    char want[1024] = "";
    for (int i = 0; i < s->m->desc.num_taps; i++) {
        strncat(want, i ? "," : "", sizeof want - strlen(want) - 1);
        strncat(want, s->m->desc.taps[i].name, sizeof want - strlen(want) - 1);
    }
    if (!(s->cache = err_calloc(e, (size_t)s->ds.n, sizeof *s->cache, "the cache"))) return e->code;
    double t0 = omp_get_wtime();
    for (int i = 0; i < s->ds.n; i++) {
        image img = {0};
        int rc = image_load_rgb(s->ds.items[i].image, &img, e);
        if (!rc) rc = model_forward_image(s->m, &img, s->cfg.size[0] ? s->cfg.size : NULL, want, &s->cache[i].tl, e);
        if (!rc) rc = dataset_load_label(&s->ds, i, img.w, img.h, &s->cache[i].label, e);
        image_free(&img);
        if (rc) return rc;
    }
    fprintf(stderr, "forward passes: %.1f s for %d images\n", omp_get_wtime() - t0, s->ds.n);
    return OODSEG_OK;
}

// One configuration over the cached images: its pooled metrics.
static int run_config(sweep *s, const pipeline_config *cc, metrics_result *r, err *e) {
    pipeline p;
    macc *acc = NULL;
    int rc = pipeline_attach(&p, s->m, NULL, cc->methods, &cc->oo, e);
    if (!rc) rc = macc_new(&acc, e);
    for (int i = 0; i < s->ds.n && !rc; i++) {
        ood_input in;
        const tensor *feats[16];
        int strides[16];
        const image *lab = &s->cache[i].label;
        if ((rc = pipeline_ood_input(s->m, &s->cache[i].tl, p.taps, &in, feats, strides, e))) break;
        float *score = err_malloc(e, (size_t)in.h * in.w * sizeof(float), "a score map");
        float *big = err_malloc(e, (size_t)lab->w * lab->h * sizeof(float), "a score map");
        rc = score && big ? ood_method_score(p.methods[0], &s->m->ctx, &in, score, NULL, e) : e->code;
        if (!rc) resize_bilinear(&s->m->ctx, score, 1, in.h, in.w, big, lab->h, lab->w, 0);
        if (!rc) rc = macc_add(acc, big, lab->px, (int64_t)lab->w * lab->h, e);
        free(score);
        free(big);
    }
    if (!rc) rc = macc_compute(acc, FPR_FIRST_GE, 0, r, e);
    macc_free(acc);
    pipeline_close(&p);
    return rc;
}

// Each "name | options" line of the configurations file: one table row.
static int run_configs(sweep *s, err *e) {
    FILE *f = fopen(s->configs, "r");
    if (!f) return err_set(e, OODSEG_E_IO, "cannot open %s", s->configs);
    printf("| configuration | options | AP | FPR95 | AUROC |\n|---|---|---|---|---|\n");
    char line[2048];
    int rc = OODSEG_OK;
    while (!rc && fgets(line, sizeof line, f)) {
        char *bar = strchr(line, '|');
        if (line[0] == '#' || !bar) continue;
        *bar = 0;
        char name[128] = "", opts[2048], words[2048], *w[64];
        sscanf(line, " %127s", name);
        snprintf(opts, sizeof opts, "%s", bar + 1);
        opts[strcspn(opts, "\r\n")] = 0;
        snprintf(words, sizeof words, "%s", opts);
        int nw = 0;
        for (char *sv = NULL, *t = strtok_r(words, " \t", &sv); t && nw < 64; t = strtok_r(NULL, " \t", &sv)) w[nw++] = t;
        pipeline_config cc;
        pipeline_config_default(&cc);
        metrics_result r;
        double t1 = omp_get_wtime();
        if ((rc = parse(NULL, &cc, nw, w, NULL, e)) || (rc = run_config(s, &cc, &r, e))) break;
        printf("| %s | `%s` | %.2f | %.2f | %.2f |\n", name, opts + strspn(opts, " "), 100 * r.ap, 100 * r.fpr95, 100 * r.auroc);
        fflush(stdout);
        fprintf(stderr, "%s: %.1f s\n", name, omp_get_wtime() - t1);
        metrics_result_free(&r);
    }
    fclose(f);
    return rc;
}

int main(int argc, char **argv) {
    sweep s = {0};
    err e = {0};
    pipeline_config_default(&s.cfg);
    if (parse(&s, &s.cfg, argc - 1, argv + 1, &s.configs, &e)) return die(&e);
    if (!s.dataset || !s.configs) {
        fprintf(stderr, "usage: sweep_method --model M --dataset NAME:PATH [--limit N] [--threads N] CONFIGS\n");
        return 2;
    }
    int rc = pipeline_config_open_model(&s.cfg, NULL, &s.m, &e);
    if (!rc) rc = dataset_open(s.dataset, NULL, &s.ds, &e);
    if (!rc) rc = dataset_select(&s.ds, s.limit, 0, 0, &e);
    if (!rc) rc = cache_all(&s, &e);
    if (!rc) rc = run_configs(&s, &e);
    for (int i = 0; s.cache && i < s.ds.n; i++) { tl_free(&s.cache[i].tl); image_free(&s.cache[i].label); }
    free(s.cache);
    dataset_free(&s.ds);
    model_close(s.m);
    return rc ? die(&e) : 0;
}
