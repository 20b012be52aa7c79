// `oodseg score`: anomaly maps and pictures for images or folders; `oodseg fit-centroids` and
// `oodseg calibrate`: statistics of in-distribution images for the centroid method and for a
// calibrated tau. The work is the library's pipeline (api/pipeline.h).
#include "cli.h"
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
    if ((rc = pipeline_open(&p, &c.cfg, &e))) goto done;
    double t0 = omp_get_wtime();
    for (int i = 0; i < n_paths && !rc; i++) {
        image img = {0};
        pipeline_out o = {0};
        char stem[512];
        cli_stem(paths[i], stem, sizeof stem);
        if ((rc = image_load_rgb(paths[i], &img, &e))) break;
        if ((rc = pipeline_run(&p, &img, &o, &e))) err_prefix(&e, "%s: ", paths[i]);
        else rc = pipeline_save(&p, &img, &o, c.out_dir, stem, &e);
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
    pipeline p = {0};
    ood_stats *st = NULL;
    if ((rc = cli_parse(argc, argv, 2, &c, NULL, NULL, &e))) goto done;
    if (!c.out_dir) { rc = err_set(&e, OODSEG_E_ARG, "%s: give the output file with -o FILE", what); goto done; }
    if ((rc = cli_collect_images(c.pos, c.n_pos, &paths, &n_paths, &e))) goto done;
    // The statistics need the taps and the logits, not a method: the plainest one is opened.
    snprintf(c.cfg.methods, sizeof c.cfg.methods, "maxlogit");
    if ((rc = pipeline_open(&p, &c.cfg, &e))) goto done;
    if ((rc = ood_stats_new(&st, p.m->desc.num_id, c.cfg.oo.km.k, &e))) goto done;
    double t0 = omp_get_wtime();
    for (int i = 0; i < n_paths && !rc; i++) {
        image img = {0};
        if ((rc = image_load_rgb(paths[i], &img, &e))) break;
        if ((rc = pipeline_stats_add(&p, &img, st, &e))) err_prefix(&e, "%s: ", paths[i]);
        image_free(&img);
        cli_progress(what, i + 1, n_paths, t0);
    }
    if (!rc) rc = ood_stats_save(st, &p.m->ctx, c.out_dir, &e);
    if (!rc) fprintf(stderr, "%s: %d images -> %s\n", what, n_paths, c.out_dir);
done:
    pipeline_close(&p);
    ood_stats_free(st);
    cli_free_list(paths, n_paths);
    cli_free(&c);
    return rc ? cli_fail(&e) : 0;
}

int cmd_fit_centroids(int argc, char **argv) { return run_stats(argc, argv, "fit-centroids"); }
int cmd_calibrate(int argc, char **argv) { return run_stats(argc, argv, "calibrate"); }
