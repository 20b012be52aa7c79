// `oodseg info` and `oodseg forward`: what the engine recognised, and what the network computes.
#include "cli.h"
#include "../nn/nn.h"
#include "../api/pipeline.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *interp_name(pre_interp i) {
    switch (i) {
    case INTERP_CV_LINEAR_U8: return "OpenCV INTER_LINEAR on uint8";
    case INTERP_CV_LINEAR_F32: return "OpenCV INTER_LINEAR on float32";
    default: return "PIL BILINEAR (antialiased)";
    }
}

static void print_size_rule(const preprocess *p) {
    switch (p->size_rule) {
    case SIZE_FIXED: printf("resize to %dx%d", p->size_w, p->size_h); break;
    case SIZE_KEEP_RATIO:
        printf("keep-ratio resize to fit %dx%d", p->size_w, p->size_h);
        if (p->size_divisor) printf(", sides rounded up to a multiple of %d", p->size_divisor);
        break;
    default: printf("no resize"); break;
    }
}

int cmd_info(int argc, char **argv) {
    cli_common c;
    err e = {0};
    if (cli_parse(argc, argv, 2, "info", &c, NULL, NULL, &e)) { cli_free(&c); return cli_fail(&e); }
    const char *path = c.cfg.model[0] ? c.cfg.model : (c.n_pos ? c.pos[0] : NULL);
    if (!path) { cli_free(&c); err_set(&e, OODSEG_E_ARG, "info: give a checkpoint file (oodseg info MODEL)"); return cli_fail(&e); }
    model *m;
    if (pipeline_config_open_model(&c.cfg, path, &m, &e)) { cli_free(&c); return cli_fail(&e); }
    const model_desc *d = &m->desc;
    const preprocess *p = &d->pre;
    printf("file:            %s\n", path);
    printf("architecture:    %s\n", d->arch);
    printf("model:           %s\n", d->title);
    printf("dataset:         %s\n", d->dataset);
    printf("parameters:      %lld\n", (long long)d->num_params);
    printf("source:          %s, %s weights\n", d->source_format, d->source_dtype);
    printf("outputs:         %d channels; in-distribution: %d (", d->num_outputs, d->num_id);
    for (int i = 0; i < d->num_id; i++) {
        if (i && d->id_channels[i] == d->id_channels[i - 1] + 1 && i + 1 < d->num_id &&
            d->id_channels[i + 1] == d->id_channels[i] + 1) continue;
        printf("%s%d", i == 0 ? "" : (d->id_channels[i] == d->id_channels[i - 1] + 1 ? "-" : ","), d->id_channels[i]);
    }
    printf(")\n");
    printf("classes:        ");
    for (int i = 0; i < d->num_outputs && d->class_names; i++) printf(" %s%s", d->class_names[i] ? d->class_names[i] : "?", i + 1 < d->num_outputs ? "," : "\n");
    if (!d->class_names) printf(" (unnamed)\n");
    printf("preprocessing:   %s; ", p->bgr ? "BGR" : "RGB");
    print_size_rule(p);
    printf(" (%s); %smean [%g, %g, %g], std [%g, %g, %g] on %s%s", interp_name(p->interp),
           p->unit_range ? "/255, then " : "", p->mean[0], p->mean[1], p->mean[2], p->std[0], p->std[1], p->std[2],
           p->unit_range ? "0..1" : "0..255",
           p->order == PRE_NORMALISE_THEN_RESIZE ? ", normalised before the resize" : "");
    if (p->div_after > 0) printf(", then /%g", p->div_after);
    else if (p->scale_after != 1.0f && p->scale_after != 0.0f) printf(", then x%g", p->scale_after);
    printf("\n");
    if (d->infer.mode == INFER_SLIDE)
        printf("inference:       slide, crop %dx%d, stride %dx%d (HxW)\n", d->infer.crop_h, d->infer.crop_w,
               d->infer.stride_h, d->infer.stride_w);
    else printf("inference:       whole image\n");
    if (p->h_mod) printf("input sizes:     height and width %% %d must be 0 or %d\n", p->h_mod, p->h_mod - 1);
    printf("feature taps:   ");
    for (int i = 0; i < d->num_taps; i++)
        printf(" %s (stride %d, %d ch)%s", d->taps[i].name, d->taps[i].stride, d->taps[i].channels, i + 1 < d->num_taps ? "," : "\n");
    printf("kmeans default:  %s\n", d->default_taps);
    model_close(m);
    cli_free(&c);
    return 0;
}

typedef struct fwd_extra { const char *save; int all; } fwd_extra;

static int fwd_flags(void *ctx, int argc, char **argv, int i, err *e) {
    fwd_extra *x = ctx;
    if (!strcmp(argv[i], "--all")) { x->all = 1; return 1; }
    if (!strcmp(argv[i], "--save")) {
        if (i + 1 >= argc) { err_set(e, OODSEG_E_ARG, "--save needs a file name"); return -1; }
        x->save = argv[i + 1];
        return 2;
    }
    return 0;
}

int cmd_forward(int argc, char **argv) {
    cli_common c;
    fwd_extra x = {0};
    err e = {0};
    model *m = NULL;
    image img = {0};
    tensor_list tl = {0};
    int rc = OODSEG_OK;
    if ((rc = cli_parse(argc, argv, 2, "forward", &c, fwd_flags, &x, &e))) goto done;
    if (!x.save || c.n_pos != 1) {
        rc = err_set(&e, OODSEG_E_ARG, "forward: usage: oodseg forward --model M [--size S] [--threads N] [--all] --save OUT.safetensors IMAGE");
        goto done;
    }
    if ((rc = pipeline_config_open_model(&c.cfg, NULL, &m, &e))) goto done;
    if ((rc = image_load_rgb_mem(c.pos[0], m->max_memory, &img, &e))) goto done;
    if ((rc = forward_save(m, &img, c.pos[0], c.cfg.size[0] ? c.cfg.size : NULL, x.all, x.save, &tl, &e))) goto done;
    fprintf(stderr, "wrote %d tensors to %s (input %lldx%lld):", tl.n, x.save, (long long)tl.t[0].shape[3],
            (long long)tl.t[0].shape[2]);
    for (int i = 0; i < tl.n; i++) fprintf(stderr, " %s", tl.t[i].name);
    fprintf(stderr, "\n");
done:
    tl_free(&tl);
    image_free(&img);
    if (m) model_close(m);
    cli_free(&c);
    return rc ? cli_fail(&e) : 0;
}
