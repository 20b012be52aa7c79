// Runs a segmentation model on an image through the public API only, and prints each output's
// shape and the predicted class histogram.
//   cc -std=c11 run_model.c $(pkg-config --cflags --libs oodseg) -o run_model
//   ./run_model espnet_p_2_q_8_camvid.pth frame.png
#include <oodseg.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s CHECKPOINT IMAGE\n", argv[0]);
        return 2;
    }
    oodseg_status st;
    oodseg_model *m;
    if (oodseg_model_open(argv[1], NULL, &m, &st)) {
        fprintf(stderr, "%s\n", st.message);
        return st.code;
    }
    oodseg_model_info info;
    oodseg_model_get_info(m, &info);
    printf("%s (%s), %lld parameters, %d outputs\n", info.arch, info.dataset,
           (long long)info.num_parameters, info.num_outputs);
    oodseg_result *r;
    if (oodseg_run_image(m, argv[2], &r, &st)) {
        fprintf(stderr, "%s\n", st.message);
        oodseg_model_close(m);
        return st.code;
    }
    for (int i = 0; i < oodseg_result_count(r); i++) {
        oodseg_tensor t;
        oodseg_result_at(r, i, &t);
        printf("%-16s", t.name);
        for (int d = 0; d < t.ndim; d++) printf("%s%lld", d ? "x" : " ", (long long)t.shape[d]);
        printf("\n");
    }
    oodseg_tensor lg;
    if (oodseg_result_get(r, "logits", &lg, &st) == OODSEG_OK) {
        long long counts[256] = {0};
        long long hw = lg.shape[2] * lg.shape[3];
        int C = (int)lg.shape[1];
        for (long long p = 0; p < hw; p++) {
            int best = 0;
            for (int c = 1; c < C && c < 256; c++)
                if (lg.data[c * hw + p] > lg.data[best * hw + p]) best = c;
            counts[best]++;
        }
        printf("predicted classes (channel: pixels):");
        for (int c = 0; c < C && c < 256; c++)
            if (counts[c]) printf(" %d:%lld", c, counts[c]);
        printf("\n");
    }
    oodseg_result_free(r);
    oodseg_model_close(m);
    return 0;
}
