// `oodseg score`: anomaly maps and pictures for images or folders; `oodseg fit-centroids` and
// `oodseg calibrate`: statistics of in-distribution images for the centroid method and for a
// calibrated tau.
#include "cli.h"
#include "../api/pipeline.h"
#include "../io/pictures.h"
#include "../io/npy.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_score(int argc, char **argv) {
    cli_common c;
    err e = {0};
    pipeline p = {0};
    char **paths = NULL;
    int n_paths = 0, rc;
    if ((rc = cli_parse(argc, argv, 2, &c, NULL, NULL, &e))) goto done;
    if (!c.out_dir) { rc = err_set(&e, OODSEG_E_ARG, "score: give an output folder with -o DIR"); goto done; }
    if ((rc = cli_collect_images(c.pos, c.n_pos, &paths, &n_paths, &e))) goto done;
    if ((rc = cli_mkdir_p(c.out_dir, &e))) goto done;
    if ((rc = pipeline_open(&p, &c.ctx, c.model, &c.mo, c.methods, &c.oo, &e))) goto done;
    double t0 = omp_get_wtime();
    for (int i = 0; i < n_paths && !rc; i++) {
        image img = {0};
        pipeline_out o = {0};
        char stem[512], path[4200];
        cli_stem(paths[i], stem, sizeof stem);
        if ((rc = image_load_rgb(paths[i], &img, &e))) break;
        if ((rc = pipeline_run(&p, &img, &o, &e))) { err_prefix(&e, "%s: ", paths[i]); image_free(&img); break; }
        for (int k = 0; k < p.n_methods && !rc; k++) {
            char suffix[64] = "";
            if (p.n_methods > 1) snprintf(suffix, sizeof suffix, "_%s", ood_method_def_of(p.methods[k])->name);
            snprintf(path, sizeof path, "%s/%s%s_score.npy", c.out_dir, stem, suffix);
            int64_t shape[2] = {img.h, img.w};
            if ((rc = npy_write_f32(path, o.scores[k], 2, shape, &e))) break;
            int is_km = (ood_method_def_of(p.methods[k])->flags & OOD_MAKES_CLUSTERS) != 0;
            rc = pictures_save(c.out_dir, stem, suffix, &img, o.scores[k],
                               k == 0 ? o.pred : NULL, p.m->desc.palette, p.m->desc.num_outputs,
                               is_km ? o.clusters : NULL, is_km ? o.k : 0, is_km ? o.ood_flag : NULL, &e);
        }
        pipeline_out_free(&o);
        image_free(&img);
        cli_progress("score", i + 1, n_paths, t0);
    }
    if (!rc) fprintf(stderr, "scored %d image%s with %s into %s (%.2f s)\n", n_paths, n_paths == 1 ? "" : "s",
                     p.m->desc.arch, c.out_dir, omp_get_wtime() - t0);
done:
    pipeline_close(&p);
    cli_free_list(paths, n_paths);
    cli_free(&c);
    return rc ? cli_fail(&e) : 0;
}

// fit-centroids and calibrate run the network over in-distribution images and accumulate
// statistics in an ood_stats, then save it.
static int run_stats(int argc, char **argv, const char *what) {
    cli_common c;
    err e = {0};
    char **paths = NULL;
    int n_paths = 0, rc;
    model *m = NULL;
    ood_stats *st = NULL;
    if ((rc = cli_parse(argc, argv, 2, &c, NULL, NULL, &e))) goto done;
    if (!c.out_dir) { rc = err_set(&e, OODSEG_E_ARG, "%s: give the output file with -o FILE", what); goto done; }
    if ((rc = cli_collect_images(c.pos, c.n_pos, &paths, &n_paths, &e))) goto done;
    pipeline p;
    // (no method to open: the statistics are what the centroid method will read, not the method)
    if ((rc = pipeline_open(&p, &c.ctx, c.model, &c.mo, "maxlogit", &c.oo, &e))) goto done;
    m = p.m;
    snprintf(p.taps, sizeof p.taps, "%s", c.oo.taps[0] ? c.oo.taps : m->desc.default_taps);
    if ((rc = ood_stats_new(&st, m->desc.num_id, c.oo.km.k, &e))) { pipeline_close(&p); goto done; }
    double t0 = omp_get_wtime();
    for (int i = 0; i < n_paths && !rc; i++) {
        image img = {0};
        if ((rc = image_load_rgb(paths[i], &img, &e))) break;
        tensor_list tl = {0};
        if (!(rc = model_forward_image(m, &img, c.mo.size, p.taps, &tl, &e))) {
            ood_input in;
            const tensor *feats[16];
            int strides[16];
            if (!(rc = pipeline_ood_input(&p.ctx, &m->desc, &tl, p.taps, &in, feats, strides, &e)))
                rc = ood_stats_add(st, &p.ctx, &in, &c.oo, &e);
        }
        if (rc) err_prefix(&e, "%s: ", paths[i]);
        tl_free(&tl);
        image_free(&img);
        cli_progress(what, i + 1, n_paths, t0);
    }
    if (!rc) rc = ood_stats_save(st, &p.ctx, c.out_dir, &e);
    if (!rc) fprintf(stderr, "%s: %d images -> %s\n", what, n_paths, c.out_dir);
    pipeline_close(&p);
done:
    ood_stats_free(st);
    cli_free_list(paths, n_paths);
    cli_free(&c);
    return rc ? cli_fail(&e) : 0;
}

int cmd_fit_centroids(int argc, char **argv) { return run_stats(argc, argv, "fit-centroids"); }
int cmd_calibrate(int argc, char **argv) { return run_stats(argc, argv, "calibrate"); }
