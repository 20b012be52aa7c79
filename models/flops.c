// Analytic FLOPs per layer group (flops.h), from the architecture's shapes.
#include "flops.h"
#include "internimage.h"
#include <stdio.h>
#include <string.h>

static flop_row *row(flop_row *rows, int *n, nn_prof_family f, double flop, const char *fmt, int i) {
    flop_row *r = &rows[(*n)++];
    snprintf(r->name, sizeof r->name, fmt, i);
    r->family = f;
    r->gflop = flop;
    return r;
}

// InternImage backbone + UperNet decode head (the auxiliary head does not run at inference).
static int internimage_flops(const ii_model *m, int h, int w, flop_row *rows) {
    const internimage *net = &m->net;
    const upernet *u = &m->head;
    int n = 0, C = net->arch.channels;
    int H = conv2d_out_size(h, 3, 2, 1, 1), W = conv2d_out_size(w, 3, 2, 1, 1);
    double px[4];
    flop_row *stem = row(rows, &n, PROF_STEM, 2.0 * (C / 2) * 27 * H * W, "stem conv1 + conv2", 0);
    H = conv2d_out_size(H, 3, 2, 1, 1), W = conv2d_out_size(W, 3, 2, 1, 1);
    stem->gflop += 2.0 * C * (C / 2) * 9 * H * W;
    for (int i = 0; i < 4; i++) {
        const ii_level *L = &net->levels[i];
        double p = (double)H * W, c = L->channels, g = L->groups, d = L->depth;
        px[i] = p;
        row(rows, &n, PROF_PROJ, d * (2 * 2 * p * c * c + 2 * p * c * 27 * g), "stage %d: DCN linears", i);
        row(rows, &n, PROF_DCN_DW, d * 2 * p * c * 9, "stage %d: DCN dw conv 3x3", i);
        // 4 bilinear corners + the mask, per sampling point
        row(rows, &n, PROF_DCN_GATHER, d * p * c * 9 * (8 + 2), "stage %d: DCN core sampling", i);
        row(rows, &n, PROF_MLP, d * 2 * 2 * p * c * 4 * c, "stage %d: MLP", i);
        if (i < 3) {
            H = conv2d_out_size(H, 3, 2, 1, 1), W = conv2d_out_size(W, 3, 2, 1, 1);
            row(rows, &n, PROF_DOWNSAMPLE, 2.0 * 2 * c * c * 9 * H * W, "stage %d: downsample conv", i);
        }
    }
    double ch = u->channels, top = u->in_channels[3];
    flop_row *ppm = row(rows, &n, PROF_PPM, 2 * ch * (top + 4 * ch) * 9 * px[3], "UperNet PPM + bottleneck 3x3", 0);
    for (int s = 1; s <= 6; s += (s == 3 ? 3 : 1)) ppm->gflop += 2 * ch * top * s * s;
    flop_row *lat = row(rows, &n, PROF_FPN, 0, "UperNet laterals 1x1", 0);
    flop_row *fpn = row(rows, &n, PROF_FPN, 0, "UperNet fpn_convs 3x3", 0);
    for (int l = 0; l < 3; l++) lat->gflop += 2 * ch * u->in_channels[l] * px[l], fpn->gflop += 2 * ch * ch * 9 * px[l];
    row(rows, &n, PROF_FPN, 2 * ch * 4 * ch * 9 * px[0], "UperNet fpn_bottleneck 3x3", 0);
    row(rows, &n, PROF_HEAD, 2.0 * u->num_classes * ch * px[0], "UperNet conv_seg", 0);
    for (int i = 0; i < n; i++) rows[i].gflop /= 1e9;
    return n;
}

int model_flops(const model *m, int h, int w, flop_row *rows) {
    if (!strncmp(m->desc.arch, "internimage-", 12)) return internimage_flops(m->impl, h, w, rows);
    return 0;
}
