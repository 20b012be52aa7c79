// Scores every image of a folder with the paper's K-Means method and MaxLogit, through the public
// API only, and prints each method's AP, AUROC and FPR95 against the folder's labels.
//   cc -std=c11 score_folder.c $(pkg-config --cflags --libs oodseg) -o score_folder
//   ./score_folder IMAGES LABELS OOD_VALUE [IGNORE_VALUE [MODEL]]
// Labels: LABELS/<stem>.png, one value a pixel; OOD_VALUE marks the unknown objects, IGNORE_VALUE
// (default 255) is left out, every other value is in-distribution. MODEL: the default model if
// omitted. E.g. for CamVid-OOD: ./score_folder test_ood testannot_ood 12 11
// check-args: @DEMO@/test_ood @DEMO@/testannot_ood 12 11
#include <oodseg.h>
#include <stdio.h>
#include <stdlib.h>

static int fail(const oodseg_status *st) {
    fprintf(stderr, "score_folder: %s\n", st->message);
    return st->code;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 6) {
        fprintf(stderr, "usage: %s IMAGES LABELS OOD_VALUE [IGNORE_VALUE [MODEL]]\n", argv[0]);
        return 2;
    }
    const char *ds_opts[] = {"images", argv[1], "labels", argv[2], "ood", argv[3],
                             "ignore", argc > 4 ? argv[4] : "255", NULL};
    const char *methods[] = {"maxlogit", "kmeans"};
    oodseg_status st;
    oodseg_dataset *ds = NULL;
    oodseg_model *m = NULL;
    oodseg_scorer *s = NULL;
    oodseg_evaluator *ev = NULL;
    int rc = oodseg_dataset_open("generic", ds_opts, &ds, &st);
    if (!rc) rc = oodseg_model_open(argc > 5 ? argv[5] : NULL, NULL, &m, &st);
    if (!rc) rc = oodseg_scorer_open(m, "maxlogit,kmeans", NULL, &s, &st);
    if (!rc) rc = oodseg_evaluator_open(methods, 2, NULL, &ev, &st);   // labels arrive as 0/1/255
    for (int i = 0; !rc && i < oodseg_dataset_count(ds); i++) {
        oodseg_maps *maps = NULL;
        uint8_t *labels = NULL;
        int w, h;
        rc = oodseg_score_image(s, oodseg_dataset_image(ds, i), &maps, &st);
        if (!rc) rc = oodseg_dataset_label(ds, i, maps->width, maps->height, &labels, &w, &h, &st);
        if (!rc) rc = oodseg_evaluator_add(ev, oodseg_dataset_name(ds, i), maps->score, labels, w, h, &st);
        oodseg_free(labels);
        oodseg_maps_free(maps);
    }
    if (!rc) rc = oodseg_evaluator_finish(ev, &st);
    for (int k = 0; !rc && k < 2; k++) {
        oodseg_metrics r;
        if ((rc = oodseg_evaluator_result(ev, k, &r, &st))) break;
        printf("%-8s AP %6.2f  AUROC %6.2f  FPR95 %6.2f  (%d images)\n", methods[k], 100 * r.ap,
               100 * r.auroc, 100 * r.fpr95, oodseg_dataset_count(ds));
    }
    if (rc) fail(&st);
    oodseg_evaluator_close(ev);
    oodseg_scorer_close(s);
    oodseg_model_close(m);
    oodseg_dataset_close(ds);
    return rc;
}
