// One benchmark image through the pipeline into an evaluator: `oodseg eval`'s per-image step, as
// library code so that a host program, the tools and a cluster job evaluate the same way.
#include "pipeline.h"
#include "../io/npy.h"
#include <omp.h>
#include <stdio.h>

int pipeline_eval_item(pipeline *p, const dataset *ds, int i, evaluator *ev, const eval_save *save,
                       err *e) {
    const ds_item *it = &ds->items[i];
    image img = {0}, lab = {0};
    pipeline_out po = {0};
    double t0 = omp_get_wtime();
    int rc = dataset_load_image_mem(ds, i, p->m->max_memory, &img, e);
    if (!rc) rc = dataset_load_label(ds, i, img.w, img.h, &lab, e);
    if (!rc && (rc = pipeline_run(p, &img, &po, e))) err_prefix(e, "%s: ", it->image);
    if (!rc) rc = evaluator_add(ev, it->stem, (const float *const *)po.scores, lab.px, lab.w, lab.h,
                                omp_get_wtime() - t0, e);
    for (int k = 0; !rc && save && save->score_dirs && k < p->n_methods; k++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s.npy", save->score_dirs[k], it->stem);
        int64_t shape[2] = {po.h, po.w};
        rc = npy_write_f32(path, po.scores[k], 2, shape, e);
    }
    if (!rc && save && save->maps_dir) rc = pipeline_save_pictures_as(p, &img, &po, save->maps_dir, it->stem, save->pictures, e);
    if (!rc && save && save->thumbs_dir) rc = pipeline_save_thumbs(p, &img, lab.px, &po, save->thumbs_dir, it->stem, e);
    pipeline_out_free(&po);
    image_free(&img);
    image_free(&lab);
    return rc;
}
