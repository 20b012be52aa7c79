// AvgPool2d(3, 2, 1) with count_include_pad and PyTorch's adaptive average pooling.
#include "nn.h"

void avgpool3x3s2_forward(const float *x, int c, int h, int w, float *y) {
    int ho = (h - 1) / 2 + 1, wo = (w - 1) / 2 + 1;
    #pragma omp parallel for schedule(static) num_threads(nn_get_threads())
    for (int ch = 0; ch < c; ch++) {
        const float *xc = x + (size_t)ch * h * w;
        float *yc = y + (size_t)ch * ho * wo;
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++) {
                float s = 0.0f;
                for (int dy = -1; dy <= 1; dy++) {
                    int iy = 2 * oy + dy;
                    if (iy < 0 || iy >= h) continue;
                    for (int dx = -1; dx <= 1; dx++) {
                        int ix = 2 * ox + dx;
                        if (ix >= 0 && ix < w) s += xc[(size_t)iy * w + ix];
                    }
                }
                yc[(size_t)oy * wo + ox] = s / 9.0f;   // padding zeros count (count_include_pad)
            }
    }
}

void adaptive_avgpool_forward(const float *x, int c, int h, int w, float *y, int oh, int ow) {
    #pragma omp parallel for schedule(static) num_threads(nn_get_threads())
    for (int ch = 0; ch < c; ch++) {
        const float *xc = x + (size_t)ch * h * w;
        float *yc = y + (size_t)ch * oh * ow;
        for (int i = 0; i < oh; i++) {
            int y0 = (int)((int64_t)i * h / oh), y1 = (int)(((int64_t)(i + 1) * h + oh - 1) / oh);
            for (int j = 0; j < ow; j++) {
                int x0 = (int)((int64_t)j * w / ow), x1 = (int)(((int64_t)(j + 1) * w + ow - 1) / ow);
                float s = 0.0f;
                for (int yy = y0; yy < y1; yy++)
                    for (int xx = x0; xx < x1; xx++) s += xc[(size_t)yy * w + xx];
                yc[(size_t)i * ow + j] = s / (float)((y1 - y0) * (x1 - x0));
            }
        }
    }
}
