// K-Means against scikit-learn 1.2.1 (Debian's /usr/bin/python3 through tools/kmeans_ref.py):
// from the same initial centres the labels must be equal and the inertia within 1e-6 relative;
// from k-means++ the mean inertia over 300 seeds within 1 % of sklearn's. The k-means++ draws
// (an exponential race, ood/kmeans_race.c) against the D^2 distribution, and their stability
// under a tiny change of the data. Also thread invariance, determinism and the error cases.
#include "test.h"
#include "../ood/kmeans.h"
#include "../ood/kmeans_dist.h"
#include "../ood/kmeans_race.h"
#include "../io/npy.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const nn_ctx ctx2 = {.threads = 2, .device = NN_DEVICE_CPU, .conv_winograd = 1};

// ---- synthetic data -------------------------------------------------------------------------
static uint64_t rs = 88172645463325252ull;
static void rseed(uint64_t s) { rs = s * 2654435761ull + 88172645463325252ull; }
static double runi(void) {
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    return (double)(rs >> 11) * 0x1.0p-53;
}
static double rnorm(void) {
    double u = runi(), v = runi();
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

// Gaussian blobs: nc centres in a box of half-width `spread`, unit noise; l2: normalise rows.
static float *blobs(int64_t n, int d, int nc, double spread, int l2, uint64_t seed) {
    rseed(seed);
    float *c = malloc(sizeof(float) * nc * d), *X = malloc(sizeof(float) * n * d);
    for (int i = 0; i < nc * d; i++) c[i] = (float)((2 * runi() - 1) * spread);
    for (int64_t i = 0; i < n; i++) {
        int j = (int)(runi() * nc);
        double s = 0;
        for (int q = 0; q < d; q++) {
            X[i * d + q] = c[j * d + q] + (float)rnorm();
            s += (double)X[i * d + q] * X[i * d + q];
        }
        if (l2) for (int q = 0; q < d; q++) X[i * d + q] = (float)(X[i * d + q] / sqrt(s));
    }
    free(c);
    return X;
}

static float *uniform(int64_t n, int d, uint64_t seed) {
    rseed(seed);
    float *X = malloc(sizeof(float) * n * d);
    for (int64_t i = 0; i < n * d; i++) X[i] = (float)runi();
    return X;
}

// Initial centres: k distinct rows picked with a fixed stride.
static float *rows_init(const float *X, int64_t n, int d, int k, uint64_t seed) {
    float *C = malloc(sizeof(float) * k * d);
    for (int j = 0; j < k; j++) {
        int64_t r = (int64_t)((seed * 7919 + (uint64_t)j * (uint64_t)(n / k + 1)) % (uint64_t)n);
        memcpy(C + (size_t)j * d, X + r * d, sizeof(float) * d);
    }
    return C;
}

// ---- the reference --------------------------------------------------------------------------
static const char *ref_script(void) {
    static const char *cands[] = {"tools/kmeans_ref.py", "../tools/kmeans_ref.py", "../../tools/kmeans_ref.py"};
    for (int i = 0; i < 3; i++) if (access(cands[i], R_OK) == 0) return cands[i];
    return NULL;
}

static int have_sklearn(void) {
    static int h = -1;
    if (h < 0) h = ref_script() && t_python_has("sklearn numpy threadpoolctl");
    return h;
}

typedef struct { double inertia, inertia64, seconds; int n_iter; int32_t *labels; } skres;

static int write_npy2(const char *path, const float *a, int64_t r, int64_t c) {
    err e = {0};
    int64_t sh[2] = {r, c};
    if (npy_write_f32(path, a, 2, sh, &e)) { fprintf(stderr, "  %s\n", e.msg); return -1; }
    return 0;
}

static int sk_fit(const char *tag, const float *X, int64_t n, int d, const float *init, int k,
                  skres *r) {
    char xp[512], ip[512], od[512], rp[600], lp[600];
    snprintf(xp, sizeof xp, "%s/%s_X.npy", t_tmpdir(), tag);
    snprintf(ip, sizeof ip, "%s/%s_init.npy", t_tmpdir(), tag);
    snprintf(od, sizeof od, "%s/%s_out", t_tmpdir(), tag);
    if (write_npy2(xp, X, n, d) || write_npy2(ip, init, k, d)) return -1;
    if (t_sh("/usr/bin/python3 %s fit %s %s %s", ref_script(), xp, ip, od) != 0) return -1;
    snprintf(rp, sizeof rp, "%s/result.txt", od);
    FILE *f = fopen(rp, "r");
    if (!f) return -1;
    int ok = fscanf(f, "inertia %lf inertia64 %lf n_iter %d seconds %lf", &r->inertia,
                    &r->inertia64, &r->n_iter, &r->seconds) == 4;
    fclose(f);
    if (!ok) return -1;
    snprintf(lp, sizeof lp, "%s/labels.npy", od);
    npy_array a;
    err e = {0};
    if (npy_read(lp, &a, &e)) { fprintf(stderr, "  %s\n", e.msg); return -1; }
    float *lf = npy_to_f32(&a, &e);
    npy_free(&a);
    if (!lf) return -1;
    r->labels = malloc(sizeof(int32_t) * n);
    for (int64_t i = 0; i < n; i++) r->labels[i] = (int32_t)lf[i];
    free(lf);
    return 0;
}

static double sk_pp_mean(const char *tag, const float *X, int64_t n, int d, int k, int seeds) {
    char xp[512], od[512], rp[600];
    snprintf(xp, sizeof xp, "%s/%s_X.npy", t_tmpdir(), tag);
    snprintf(od, sizeof od, "%s/%s_out", t_tmpdir(), tag);
    if (write_npy2(xp, X, n, d)) return -1;
    if (t_sh("/usr/bin/python3 %s pp %s %d %d %s", ref_script(), xp, k, seeds, od) != 0) return -1;
    snprintf(rp, sizeof rp, "%s/result.txt", od);
    FILE *f = fopen(rp, "r");
    double m = -1;
    if (!f || fscanf(f, "mean_inertia %lf", &m) != 1) m = -1;
    if (f) fclose(f);
    return m;
}

// Same init as sklearn, with and without the Hamerly bounds: equal labels, inertia within 1e-6.
static void compare_same_init(const char *tag, const float *X, int64_t n, int d, const float *init,
                              int k) {
    if (!have_sklearn()) SKIP("scikit-learn missing: /usr/bin/python3 cannot import sklearn (apt install python3-sklearn)");
    skres r = {0};
    REQUIRE(sk_fit(tag, X, n, d, init, k, &r) == 0, "reference run failed for %s", tag);
    for (int exact = 0; exact < 2; exact++) {
        kmeans_params p;
        kmeans_params_default(&p);
        p.k = k;
        p.exact_lloyd = exact;
        kmeans_result res;
        err e = {0};
        REQUIRE(kmeans_fit(&ctx2, X, n, d, &p, init, &res, &e) == OODSEG_OK, "%s", e.msg);
        int64_t diff = 0, first = -1;
        for (int64_t i = 0; i < n; i++)
            if (res.labels[i] != r.labels[i]) { diff++; if (first < 0) first = i; }
        CHECK(diff == 0, "%s (exact %d): %lld labels differ from sklearn's (first at %lld: %d vs %d)",
              tag, exact, (long long)diff, (long long)first, first >= 0 ? res.labels[first] : 0,
              first >= 0 ? r.labels[first] : 0);
        double rel = fabs(res.inertia - r.inertia64) / (r.inertia64 > 0 ? r.inertia64 : 1);
        CHECK(rel <= 1e-6, "%s (exact %d): inertia %.10g vs sklearn %.10g (rel %.3g)", tag, exact,
              res.inertia, r.inertia64, rel);
        CHECK(res.n_iter == r.n_iter, "%s (exact %d): n_iter %d vs sklearn %d", tag, exact,
              res.n_iter, r.n_iter);
        kmeans_result_free(&res);
    }
    free(r.labels);
}

TEST(same_init_blobs) {
    float *X = blobs(2000, 16, 6, 4.0, 0, 1);
    float *C = rows_init(X, 2000, 16, 5, 3);
    compare_same_init("blobs", X, 2000, 16, C, 5);
    free(X); free(C);
}

TEST(same_init_blobs_l2_d160) {
    float *X = blobs(3000, 160, 10, 0.3, 1, 2);
    float *C = rows_init(X, 3000, 160, 8, 5);
    compare_same_init("blobs160", X, 3000, 160, C, 8);
    free(X); free(C);
}

// More than 16 centres: the lanes-as-centres kernel in two groups of 16, the second partial.
TEST(same_init_many_centres) {
    float *X = blobs(2400, 40, 24, 3.0, 0, 9);
    float *C = rows_init(X, 2400, 40, 20, 4);
    compare_same_init("many", X, 2400, 40, C, 20);
    free(X); free(C);
}

TEST(same_init_uniform) {
    float *X = uniform(1500, 4, 3);
    float *C = rows_init(X, 1500, 4, 8, 1);
    compare_same_init("uniform", X, 1500, 4, C, 8);
    free(X); free(C);
}

TEST(same_init_duplicates) {
    // 600 rows drawn from 7 distinct points
    float *P = uniform(7, 3, 4), *X = malloc(sizeof(float) * 600 * 3);
    for (int i = 0; i < 600; i++) memcpy(X + i * 3, P + ((i * 5) % 7) * 3, sizeof(float) * 3);
    float C[4 * 3];
    for (int j = 0; j < 4; j++) memcpy(C + j * 3, P + j * 3, sizeof(float) * 3);
    compare_same_init("dups", X, 600, 3, C, 4);
    free(P); free(X);
}

TEST(same_init_empty_cluster) {
    // two of the initial centres lie far away: they get no points and are relocated to the
    // farthest points on the first iteration
    float *X = blobs(1000, 5, 4, 3.0, 0, 7);
    float *C = rows_init(X, 1000, 5, 6, 2);
    for (int q = 0; q < 5; q++) { C[4 * 5 + q] = 100.0f + q; C[5 * 5 + q] = -80.0f - q; }
    compare_same_init("empty", X, 1000, 5, C, 6);
    free(X); free(C);
}

TEST(kmeanspp_mean_inertia_vs_sklearn) {
    if (!have_sklearn()) SKIP("scikit-learn missing: /usr/bin/python3 cannot import sklearn");
    const int64_t n = 2000;
    const int d = 8, k = 8, seeds = 300;   // 20 seeds: a 1.5 % spread of the mean either way
    float *X = blobs(n, d, 12, 3.0, 0, 11);
    double sk = sk_pp_mean("pp", X, n, d, k, seeds);
    REQUIRE(sk > 0, "reference run failed");
    double mine = 0;
    for (int s = 0; s < seeds; s++) {
        kmeans_params p;
        kmeans_params_default(&p);
        p.k = k;
        p.seed = (uint64_t)s;
        kmeans_result r;
        err e = {0};
        REQUIRE(kmeans_fit(&ctx2, X, n, d, &p, NULL, &r, &e) == OODSEG_OK, "%s", e.msg);
        mine += r.inertia / seeds;
        kmeans_result_free(&r);
    }
    fprintf(stderr, "  mean inertia over %d seeds: ours %.6g, sklearn %.6g (%.3f %%)\n", seeds,
            mine, sk, 100 * (mine - sk) / sk);
    CHECK(fabs(mine - sk) <= 0.01 * sk, "ours %.8g vs sklearn %.8g", mine, sk);
    free(X);
}

static void fit_threads(const float *X, int64_t n, int d, const kmeans_params *p, int threads,
                        kmeans_result *r) {
    nn_ctx ctx;
    nn_ctx_init(&ctx, threads);
    err e = {0};
    int rc = kmeans_fit(&ctx, X, n, d, p, NULL, r, &e);
    if (rc) fprintf(stderr, "  %s\n", e.msg);
}

// The race draws i with probability w[i] / sum(w): 10 weights over four orders of magnitude, zeros
// among them, 400000 draws, Pearson's chi-square against that distribution (7 degrees of freedom:
// above 35 has a chance under 1e-5). A zero weight is never drawn, no weight at all gives -1, and
// a race split into ranges merged by the least key (the earlier range on a tie) gives the winner
// of the whole.
TEST(race_draws_d2) {
    const double w[10] = {0, 1, 2, 3, 0, 4, 0.5, 10, 0.001, 2.5};
    double sum = 0;
    for (int i = 0; i < 10; i++) sum += w[i];
    const long N = 400000;
    long cnt[10] = {0};
    int split_ok = 1;
    for (long t = 0; t < N; t++) {
        uint64_t r = (uint64_t)t * 0x2545F4914F6CDD1Dull + 7;
        float key, k1, k2;
        int64_t i = kmeans_race(w, 0, 10, 1 / sum, r, &key);
        REQUIRE(i >= 0 && i < 10 && w[i] > 0, "draw %ld: row %lld has weight 0", t, (long long)i);
        cnt[i]++;
        int64_t a = kmeans_race(w, 0, 4, 1 / sum, r, &k1), b = kmeans_race(w, 4, 10, 1 / sum, r, &k2);
        int64_t m = b >= 0 && (a < 0 || k2 < k1) ? b : a;
        split_ok &= m == i && (m == a ? k1 : k2) == key;
    }
    double chi = 0;
    for (int i = 0; i < 10; i++) {
        double ex = N * w[i] / sum;
        if (ex > 0) chi += (cnt[i] - ex) * (cnt[i] - ex) / ex;
        else CHECK(cnt[i] == 0, "row %d (weight 0) drawn %ld times", i, cnt[i]);
    }
    fprintf(stderr, "  chi-square %.2f over 7 degrees of freedom\n", chi);
    CHECK(chi < 35, "draws do not follow w / sum(w): chi-square %.1f (counts %ld %ld %ld %ld %ld %ld %ld %ld)",
          chi, cnt[1], cnt[2], cnt[3], cnt[5], cnt[6], cnt[7], cnt[8], cnt[9]);
    CHECK(split_ok, "a race split at row 4 does not give the whole race's winner and key");
    const double zeros[5] = {0};
    float key = 0;
    CHECK(kmeans_race(zeros, 0, 5, 1, 1, &key) == -1 && isinf(key), "no weight: -1 and +Inf");
}

// The keys' -ln u (kmeans_neg_ln) holds its stated error for every u the race draws: the odd
// multiples of 2^-24.
TEST(race_keys_neg_ln) {
    double worst = 0, at = 0;
    for (uint32_t k = 0; k < (1u << 23); k++) {
        float u = (float)(2 * k + 1) * 0x1.0p-24f;
        double ref = -log((double)u), rel = fabs(kmeans_neg_ln(u) - ref) / ref;
        if (rel > worst) worst = rel, at = u;
    }
    fprintf(stderr, "  -ln u: worst relative error %.3g (at u = %.9g)\n", worst, at);
    CHECK(worst <= 2.1e-7, "-ln u off by %.3g relative at u = %.9g", worst, at);
}

// The reason for the race: a small change of the weights (features from a bf16 network or another
// device) changes few draws. 3000 weights over two orders of magnitude, each changed by up to
// 0.2 % along a trend, 2000 draws: the winner changes only where the two least keys are within
// that change (1 of 2000). sklearn's searchsorted of a uniform in the cumulative sums moves 769
// of them to another row: the sums before a row shift by up to 0.1 % of the total, three times
// one row's weight.
TEST(race_is_stable_under_small_changes) {
    const int64_t n = 3000;
    double *w = malloc(sizeof(double) * n), *v = malloc(sizeof(double) * n);
    REQUIRE(w && v);
    double sw = 0, sv = 0;
    rseed(17);
    for (int64_t i = 0; i < n; i++) {
        double u = runi() + 0.1;
        w[i] = u * u;
        v[i] = w[i] * (1 + 2e-3 * (double)i / n);
        sw += w[i];
        sv += v[i];
    }
    const int draws = 2000;
    int moved = 0;
    for (int t = 0; t < draws; t++) {
        uint64_t r = (uint64_t)t * 0x9E3779B97F4A7C15ull + 3;
        float k1, k2;
        moved += kmeans_race(w, 0, n, 1 / sw, r, &k1) != kmeans_race(v, 0, n, 1 / sv, r, &k2);
    }
    fprintf(stderr, "  %d of %d draws moved\n", moved, draws);
    CHECK(moved <= draws / 100, "%d of %d draws moved to another row after a 0.2 %% change of the weights",
          moved, draws);
    free(w);
    free(v);
}

TEST(thread_invariance_and_determinism) {
    const int64_t n = 5000;
    const int d = 40;
    float *X = blobs(n, d, 9, 1.0, 1, 5);
    kmeans_params p;
    kmeans_params_default(&p);
    p.k = 9;
    p.n_init = 3;
    p.seed = 42;
    kmeans_result a, b, c;
    fit_threads(X, n, d, &p, 1, &a);
    fit_threads(X, n, d, &p, 2, &b);
    fit_threads(X, n, d, &p, 3, &c);
    REQUIRE(a.labels && b.labels && c.labels);
    CHECK(memcmp(a.labels, b.labels, sizeof(int32_t) * n) == 0, "labels differ 1 vs 2 threads");
    CHECK(memcmp(a.labels, c.labels, sizeof(int32_t) * n) == 0, "labels differ 1 vs 3 threads");
    CHECK(memcmp(a.centers, b.centers, sizeof(float) * p.k * d) == 0, "centres differ 1 vs 2 threads");
    CHECK(memcmp(a.centers, c.centers, sizeof(float) * p.k * d) == 0, "centres differ 1 vs 3 threads");
    CHECK(a.inertia == b.inertia && a.inertia == c.inertia, "%.17g %.17g %.17g", a.inertia,
          b.inertia, c.inertia);
    kmeans_result d2;
    fit_threads(X, n, d, &p, 2, &d2);
    CHECK(memcmp(b.labels, d2.labels, sizeof(int32_t) * n) == 0, "not deterministic");
    // exact Lloyd gives the same result as the bounded one
    kmeans_params pe = p;
    pe.exact_lloyd = 1;
    kmeans_result ex;
    fit_threads(X, n, d, &pe, 2, &ex);
    CHECK(memcmp(b.labels, ex.labels, sizeof(int32_t) * n) == 0, "bounded and exact Lloyd differ");
    CHECK(fabs(b.inertia - ex.inertia) <= 1e-9 * b.inertia, "%.17g vs %.17g", b.inertia, ex.inertia);
    kmeans_result_free(&a); kmeans_result_free(&b); kmeans_result_free(&c);
    kmeans_result_free(&d2); kmeans_result_free(&ex);
    free(X);
    // k-means++ races in blocks of 16384 rows, merged in block order: three blocks, the last short
    const int64_t nb = 40000;
    float *B = blobs(nb, 4, 6, 3.0, 0, 8);
    kmeans_params pb = p;
    pb.k = 8;
    pb.n_init = 2;
    kmeans_result b1, b2, b3;
    fit_threads(B, nb, 4, &pb, 1, &b1);
    fit_threads(B, nb, 4, &pb, 2, &b2);
    fit_threads(B, nb, 4, &pb, 3, &b3);
    REQUIRE(b1.labels && b2.labels && b3.labels);
    CHECK(memcmp(b1.labels, b2.labels, sizeof(int32_t) * nb) == 0 &&
          memcmp(b1.labels, b3.labels, sizeof(int32_t) * nb) == 0, "40000 rows: labels differ with threads");
    CHECK(memcmp(b1.centers, b2.centers, sizeof(float) * pb.k * 4) == 0 &&
          memcmp(b1.centers, b3.centers, sizeof(float) * pb.k * 4) == 0, "40000 rows: centres differ with threads");
    kmeans_result_free(&b1); kmeans_result_free(&b2); kmeans_result_free(&b3);
    free(B);
}

// k-means++ runs side by side (one pass over the data serves the candidates of up to four runs)
// give the bits of the runs one after another: every n_init, k with 2 + floor(ln k) candidates
// on either side of the pair kernel's limit, 1 and 3 threads.
TEST(kmeanspp_side_by_side_equals_one_by_one) {
    const int64_t n = 1700;   // 7 chunks, the last one short
    const int d = 37;
    float *X = blobs(n, d, 12, 1.0, 1, 21);
    static const int ks[] = {2, 5, 9, 16, 21}, inits[] = {1, 2, 3, 4, 5, 9};
    for (int a = 0; a < (int)(sizeof ks / sizeof ks[0]); a++)
        for (int b = 0; b < (int)(sizeof inits / sizeof inits[0]); b++)
            for (int threads = 1; threads <= 3; threads += 2) {
                kmeans_params p;
                kmeans_params_default(&p);
                p.k = ks[a];
                p.n_init = inits[b];
                p.seed = 100 + a * 10 + b;
                p.max_iter = b % 2 ? 2 : 300;   // few iterations: the k-means++ centres show through
                kmeans_result s, o;
                fit_threads(X, n, d, &p, threads, &s);
                p.pp_one_by_one = 1;
                fit_threads(X, n, d, &p, threads, &o);
                REQUIRE(s.labels && o.labels);
                CHECK(memcmp(s.centers, o.centers, sizeof(float) * p.k * d) == 0 &&
                      memcmp(s.labels, o.labels, sizeof(int32_t) * n) == 0 && s.inertia == o.inertia,
                      "k %d, n_init %d, %d threads: side by side %.17g, one by one %.17g", p.k, p.n_init,
                      threads, s.inertia, o.inertia);
                kmeans_result_free(&s);
                kmeans_result_free(&o);
            }
    free(X);
}

TEST(n_init_keeps_best) {
    const int64_t n = 1500;
    float *X = blobs(n, 6, 10, 2.0, 0, 9);
    kmeans_params p;
    kmeans_params_default(&p);
    p.k = 7;
    p.seed = 3;
    kmeans_result one, five;
    err e = {0};
    REQUIRE(kmeans_fit(&ctx2, X, n, 6, &p, NULL, &one, &e) == 0, "%s", e.msg);
    p.n_init = 5;
    REQUIRE(kmeans_fit(&ctx2, X, n, 6, &p, NULL, &five, &e) == 0, "%s", e.msg);
    CHECK(five.inertia <= one.inertia, "%g > %g", five.inertia, one.inertia);
    kmeans_result_free(&one); kmeans_result_free(&five);
    free(X);
}

TEST(edge_cases_k1_and_k_equals_n) {
    float X[5 * 2] = {0, 0, 1, 0, 0, 1, 1, 1, 3, 3};
    kmeans_params p;
    kmeans_params_default(&p);
    p.k = 1;
    kmeans_result r;
    err e = {0};
    REQUIRE(kmeans_fit(&ctx2, X, 5, 2, &p, NULL, &r, &e) == 0, "%s", e.msg);
    CHECK_NEAR(r.centers[0], 1.0, 1e-6);
    CHECK_NEAR(r.centers[1], 1.0, 1e-6);
    CHECK_NEAR(r.inertia, 2 + 1 + 1 + 0 + 8, 1e-9);
    kmeans_result_free(&r);
    p.k = 5;
    REQUIRE(kmeans_fit(&ctx2, X, 5, 2, &p, NULL, &r, &e) == 0, "%s", e.msg);
    CHECK_NEAR(r.inertia, 0, 1e-12);
    int seen[5] = {0};
    for (int i = 0; i < 5; i++) seen[r.labels[i]]++;
    for (int j = 0; j < 5; j++) CHECK(seen[j] == 1, "cluster %d has %d points", j, seen[j]);
    kmeans_result_free(&r);
}

TEST(errors) {
    float X[4 * 3] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    kmeans_params p;
    kmeans_params_default(&p);
    kmeans_result r;
    err e = {0};
    p.k = 0;
    CHECK(kmeans_fit(&ctx2, X, 4, 3, &p, NULL, &r, &e) == OODSEG_E_ARG);
    p.k = 5;
    CHECK(kmeans_fit(&ctx2, X, 4, 3, &p, NULL, &r, &e) == OODSEG_E_ARG);
    CHECK(strstr(e.msg, "k = 5") && strstr(e.msg, "n = 4"), "%s", e.msg);
    p.k = 2;
    CHECK(kmeans_fit(&ctx2, X, 4, 0, &p, NULL, &r, &e) == OODSEG_E_ARG);
    X[2 * 3 + 1] = NAN;
    CHECK(kmeans_fit(&ctx2, X, 4, 3, &p, NULL, &r, &e) == OODSEG_E_ARG);
    CHECK(strstr(e.msg, "sample 2") && strstr(e.msg, "feature 1") && strstr(e.msg, "NaN"), "%s", e.msg);
    X[2 * 3 + 1] = INFINITY;
    CHECK(kmeans_fit(&ctx2, X, 4, 3, &p, NULL, &r, &e) == OODSEG_E_ARG);
    CHECK(strstr(e.msg, "infinite"), "%s", e.msg);
    X[2 * 3 + 1] = 7;
    CHECK(kmeans_fit(NULL, X, 4, 3, &p, NULL, &r, &e) == OODSEG_E_ARG && strstr(e.msg, "context"), "%s", e.msg);
}

// Two fits with different thread counts in two host threads at once: each gives the bits it gives
// alone (the thread count travels in the context, nothing is process-wide).
typedef struct fit_job {
    const float *X;
    int64_t n;
    int d, threads;
    const kmeans_params *p;
    kmeans_result r;
} fit_job;

static void *fit_job_run(void *arg) {
    fit_job *j = arg;
    fit_threads(j->X, j->n, j->d, j->p, j->threads, &j->r);
    return NULL;
}

TEST(two_contexts_in_two_host_threads) {
    const int64_t n = 4000;
    const int d = 24;
    float *X = blobs(n, d, 8, 1.0, 1, 21);
    kmeans_params p;
    kmeans_params_default(&p);
    p.k = 8;
    p.n_init = 2;
    kmeans_result alone;
    fit_threads(X, n, d, &p, 1, &alone);
    REQUIRE(alone.labels);
    fit_job jobs[2] = {{X, n, d, 1, &p, {0}}, {X, n, d, 2, &p, {0}}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) REQUIRE(pthread_create(&th[i], NULL, fit_job_run, &jobs[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        REQUIRE(jobs[i].r.labels);
        CHECK(memcmp(jobs[i].r.labels, alone.labels, sizeof(int32_t) * n) == 0, "labels differ (%d threads)", jobs[i].threads);
        CHECK(memcmp(jobs[i].r.centers, alone.centers, sizeof(float) * p.k * d) == 0, "centres differ");
        CHECK(jobs[i].r.inertia == alone.inertia);
        kmeans_result_free(&jobs[i].r);
    }
    kmeans_result_free(&alone);
    free(X);
}

// The distance kernels against double: every dot product within the error bound the bounds rely
// on (gamma_n (|v|^2 + |c|^2) / 2, n = kmeans_dots_depth()), for d with and without a tail, rows
// with a large mean (centred in float by the kernel), centre counts for every kernel (pair: up to
// 4; lanes as centres with two columns per lane pair: 5-8; one column: above, with partial
// groups of 16) and row counts that leave partial row blocks; the exact norms (the kernel's and kmeans_row_norm2()) and distances against a plain
// double loop.
TEST(distance_kernel_error_bound) {
    const int ds[] = {3, 16, 37, 160, 512, 1000, 1300}, ms[] = {1, 3, 4, 5, 8, 9, 16, 21, 33};
    double worst = 0;
    for (size_t a = 0; a < sizeof ds / sizeof *ds; a++)
        for (size_t b = 0; b < sizeof ms / sizeof *ms; b++) {
            const int d = ds[a], m = ms[b], nr = 21;
            rseed(100 + a * 7 + b);
            float *X = malloc(sizeof(float) * nr * d), *mean = malloc(sizeof(float) * d);
            float *C = malloc(sizeof(float) * m * d), *out = malloc(sizeof(float) * nr * m);
            float *scr = NULL, *P = NULL;
            REQUIRE(posix_memalign((void **)&scr, 64, sizeof(float) * kmeans_dots_scratch(m)) == 0);
            REQUIRE(posix_memalign((void **)&P, 64, sizeof(float) * kmeans_pack_floats(m, d)) == 0);
            for (int q = 0; q < d; q++) mean[q] = (float)(3 * rnorm());
            for (int i = 0; i < nr * d; i++) X[i] = mean[i % d] + (float)rnorm();
            for (int i = 0; i < m * d; i++) C[i] = (float)rnorm();
            kmeans_pack(C, d, m, d, P);
            const float *xr[21];
            for (int i = 0; i < nr; i++) xr[i] = X + (size_t)i * d;
            double kn[21];
            kmeans_dots(xr, nr, mean, P, m, d, scr, out, m, kn);
            const int n = kmeans_dots_depth(m, d);
            const double gam = n * 0x1.0p-24 / (1 - n * 0x1.0p-24);
            for (int i = 0; i < nr; i++) {
                double vn = 0, ref_n = kmeans_row_norm2(xr[i], mean, d);
                for (int q = 0; q < d; q++) { float v = xr[i][q] - mean[q]; vn += (double)v * v; }
                CHECK(fabs(ref_n - vn) <= 1e-12 * vn, "d %d row %d: norm %.17g vs %.17g", d, i, ref_n, vn);
                CHECK(fabs(kn[i] - vn) <= 1e-12 * vn, "d %d m %d row %d: kernel norm %.17g vs %.17g", d, m, i, kn[i], vn);
                for (int j = 0; j < m; j++) {
                    const float *c = C + (size_t)j * d;
                    double dot = 0, cn = 0, d2 = 0;
                    for (int q = 0; q < d; q++) {
                        float v = xr[i][q] - mean[q];
                        dot += (double)v * c[q];
                        cn += (double)c[q] * c[q];
                        d2 += ((double)v - c[q]) * ((double)v - c[q]);
                    }
                    double err = fabs(out[i * m + j] - dot), bound = gam * (vn + cn) / 2;
                    if (err / bound > worst) worst = err / bound;
                    CHECK(err <= bound, "d %d m %d row %d centre %d: dot %.9g vs %.17g (error %.3g > bound %.3g)",
                          d, m, i, j, out[i * m + j], dot, err, bound);
                    double e2 = kmeans_dist2(xr[i], mean, c, d);
                    CHECK(fabs(e2 - d2) <= 1e-12 * d2, "d %d: dist2 %.17g vs %.17g", d, e2, d2);
                }
            }
            free(X); free(mean); free(C); free(out); free(scr); free(P);
        }
    fprintf(stderr, "  largest error / bound: %.3f\n", worst);
    CHECK(worst > 0, "the kernel matched double exactly everywhere: the test data cannot exercise the bound");
}

int main(int argc, char **argv) {
    (void)argc;
    RUN(distance_kernel_error_bound);
    RUN(same_init_blobs);
    RUN(same_init_blobs_l2_d160);
    RUN(same_init_many_centres);
    RUN(same_init_uniform);
    RUN(same_init_duplicates);
    RUN(same_init_empty_cluster);
    RUN(kmeanspp_mean_inertia_vs_sklearn);
    RUN(race_draws_d2);
    RUN(race_keys_neg_ln);
    RUN(race_is_stable_under_small_changes);
    RUN(thread_invariance_and_determinism);
    RUN(kmeanspp_side_by_side_equals_one_by_one);
    RUN(n_init_keeps_best);
    RUN(two_contexts_in_two_host_threads);
    RUN(edge_cases_k1_and_k_equals_n);
    RUN(errors);
    return t_finish(argv[0]);
}
