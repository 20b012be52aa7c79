// nn/attention.c against a double-precision reference (the full score matrix, a max-subtracted
// softmax in double), over a table of shapes: n_q != n_kv both ways, one head and several, d not a
// multiple of the vector width, key counts on, just past and well past the 256-key block boundary,
// query counts past the 64-row block, and scores large enough (|s| ~ 60) that the running maximum
// of the online softmax must grow across key blocks. Also: bit-identical for 1, 2 and 3 threads,
// and its argument errors.
//
// Tolerance: |out - ref| <= 1e-5 * sum_j p_j |v_j| + 1e-7 * max_j |s_j| * sum_j p_j |v_j| per output,
// i.e. relative to the magnitude of the weighted sum, plus a term for the float rounding of
// scores of that size (a score s carries an absolute error ~ |s| * 2^-24 that moves its weight
// by that much, relatively).
#include "test.h"
#include "../nn/nn.h"
#include <stdlib.h>
#include <string.h>


typedef struct { int n_q, n_kv, heads, d; float qk_mag; } att_case;

static const att_case cases[] = {
    //n_q  n_kv heads  d  |q|,|k|
    {   1,    1,  1,   1, 1.0f},   // degenerate: the output is v
    {   5,  300,  1,   7, 1.0f},   // n_q < n_kv, one head, odd d, two key blocks
    { 300,   40,  4,  16, 1.0f},   // n_q > n_kv (SegFormer's reduced keys), five query blocks
    {  64,  256,  2,  33, 1.0f},   // exactly one query block and one key block
    {  65,  257,  3,  17, 1.0f},   // one past each block boundary
    { 257,  257,  6,  64, 1.0f},   // ViT-S/14 at 224x224: 256 patches + cls, 6 heads of 64
    { 130,  600,  2,  24, 3.0f},   // |s| up to ~200: the running maximum moves between key blocks
    {  70,  520,  1,   9, 2.5f},
};

// Returns the worst ratio |out - ref| / tolerance over all outputs (<= 1 passes).
static double run_case(const nn_ctx *ctx, const att_case *c) {
    int ld = c->heads * c->d;
    float *q = t_rand_buf((int64_t)c->n_q * ld, c->qk_mag), *k = t_rand_buf((int64_t)c->n_kv * ld, c->qk_mag);
    float *v = t_rand_buf((int64_t)c->n_kv * ld, 2.0f), *out = malloc(sizeof(float) * (size_t)c->n_q * ld);
    float scale = 1.0f / sqrtf((float)c->d);
    err e = {0};
    double worst = 1e30;
    if (attention_forward(ctx, q, k, v, c->n_q, c->n_kv, c->heads, c->d, scale, out, &e)) goto done;
    double *s = malloc(sizeof(double) * (size_t)c->n_kv);
    worst = 0.0;
    for (int h = 0; h < c->heads; h++)
        for (int i = 0; i < c->n_q; i++) {
            double mx = -1e300, smax = 0.0, sum = 0.0;
            for (int j = 0; j < c->n_kv; j++) {
                double t = 0.0;
                for (int x = 0; x < c->d; x++)
                    t += (double)q[(size_t)i * ld + h * c->d + x] * k[(size_t)j * ld + h * c->d + x];
                s[j] = t * scale;
                if (s[j] > mx) mx = s[j];
                if (fabs(s[j]) > smax) smax = fabs(s[j]);
            }
            for (int j = 0; j < c->n_kv; j++) { s[j] = exp(s[j] - mx); sum += s[j]; }
            for (int x = 0; x < c->d; x++) {
                double ref = 0.0, mag = 0.0;
                for (int j = 0; j < c->n_kv; j++) {
                    double w = s[j] / sum, vv = v[(size_t)j * ld + h * c->d + x];
                    ref += w * vv; mag += w * fabs(vv);
                }
                double tol = 1e-5 * mag + 1e-7 * smax * mag + 1e-30;
                double r = fabs(out[(size_t)i * ld + h * c->d + x] - ref) / tol;
                if (r > worst) worst = r;
            }
        }
    free(s);
done:
    free(q); free(k); free(v); free(out);
    return worst;
}

TEST(attention_matches_double_reference) {
    nn_ctx ctx;
    nn_ctx_init(&ctx, 2);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const att_case *c = &cases[i];
        double w = run_case(&ctx, c);
        CHECK(w <= 1.0, "n_q %d n_kv %d heads %d d %d |qk| %g: worst error %.3g x the tolerance", c->n_q,
              c->n_kv, c->heads, c->d, c->qk_mag, w);
    }
}

// Rows of a softmax sum to one: with v all ones every output must be 1 up to float rounding, even
// when the scores span hundreds (weights below exp(-87) are dropped, not turned into NaN).
TEST(attention_weights_sum_to_one) {
    nn_ctx ctx;
    nn_ctx_init(&ctx, 2);
    int n_q = 90, n_kv = 700, d = 8;
    float *q = t_rand_buf((int64_t)n_q * d, 10.0f), *k = t_rand_buf((int64_t)n_kv * d, 10.0f);
    float *v = malloc(sizeof(float) * (size_t)n_kv * d), *out = malloc(sizeof(float) * (size_t)n_q * d);
    for (int i = 0; i < n_kv * d; i++) v[i] = 1.0f;
    err e = {0};
    REQUIRE(attention_forward(&ctx, q, k, v, n_q, n_kv, 1, d, 1.0f, out, &e) == OODSEG_OK, "%s", e.msg);
    double worst = 0.0;
    for (int i = 0; i < n_q * d; i++) if (fabs(out[i] - 1.0) > worst || out[i] != out[i]) worst = fabs(out[i] - 1.0);
    CHECK(worst < 1e-5, "worst |out - 1| = %.3g", worst);
    free(q); free(k); free(v); free(out);
}

TEST(attention_threads_bit_identical) {
    int n_q = 300, n_kv = 530, heads = 3, d = 20, ld = heads * d;
    float *q = t_rand_buf((int64_t)n_q * ld, 1.0f), *k = t_rand_buf((int64_t)n_kv * ld, 1.0f);
    float *v = t_rand_buf((int64_t)n_kv * ld, 1.0f);
    float *o[3];
    err e = {0};
    for (int t = 0; t < 3; t++) {
        nn_ctx ctx;
        nn_ctx_init(&ctx, t + 1);
        o[t] = malloc(sizeof(float) * (size_t)n_q * ld);
        CHECK(attention_forward(&ctx, q, k, v, n_q, n_kv, heads, d, 0.2f, o[t], &e) == OODSEG_OK, "%s", e.msg);
    }
    CHECK(memcmp(o[0], o[1], sizeof(float) * (size_t)n_q * ld) == 0, "1 vs 2 threads differ");
    CHECK(memcmp(o[0], o[2], sizeof(float) * (size_t)n_q * ld) == 0, "1 vs 3 threads differ");
    for (int t = 0; t < 3; t++) free(o[t]);
    free(q); free(k); free(v);
}

TEST(attention_rejects_empty_sizes) {
    nn_ctx ctx;
    nn_ctx_init(&ctx, 1);
    float x[4] = {0}, y[4];
    err e = {0};
    CHECK(attention_forward(&ctx, x, x, x, 0, 1, 1, 1, 1.0f, y, &e) == OODSEG_E_ARG);
    CHECK(strstr(e.msg, "n_q 0") != NULL, "message: %s", e.msg);
    CHECK(attention_forward(&ctx, x, x, x, 1, 1, 1, 0, 1.0f, y, &e) == OODSEG_E_ARG);
}

int main(int argc, char **argv) {
    (void)argc;
    RUN(attention_matches_double_reference);
    RUN(attention_weights_sum_to_one);
    RUN(attention_threads_bit_identical);
    RUN(attention_rejects_empty_sizes);
    return t_finish(argv[0]);
}
