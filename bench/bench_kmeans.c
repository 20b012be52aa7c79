// K-Means vs scikit-learn 1.2.1 in the same run: same data, same initial centres, N = 32768,
// D in {160, 256, 1280}, K in {4, 8, 16}, 1 and 2 threads. Prints a Markdown table of median
// times, the speedup and whether the results are equal (labels, inertia).
//
//   build/bench/bench_kmeans [--repeat R] [--n N] [--d 160,256,1280] [--k 4,8,16] [--threads 1,2]
//                            [--exact] [--keep]
// --keep: leave the last configuration's X.npy, init.npy and sklearn output in the temporary
// folder (printed) for a closer look.
//
// sklearn runs through tools/kmeans_ref.py under Debian's /usr/bin/python3, with its OpenMP
// threads limited by threadpoolctl; its time is KMeans.fit alone (no Python start-up). Times are
// wall-clock medians; the CPU-time speedup (process CPU time, all threads) is the steadier number
// on a shared machine. The data
// are L2-normalised Gaussian blobs (2K true centres, overlapping), like per-image deep features.
#include "../ood/kmeans.h"
#include "../io/npy.h"
#include "../nn/nn.h"
#include <malloc.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

static uint64_t rs = 88172645463325252ull;
static double runi(void) {
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    return (double)(rs >> 11) * 0x1.0p-53;
}
static double rnorm(void) {
    double u = runi(), v = runi();
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static float *make_data(int64_t n, int d, int nc) {
    float *c = malloc(sizeof(float) * nc * d), *X = malloc(sizeof(float) * n * d);
    if (!c || !X) { free(c); free(X); return NULL; }
    double spread = 0.3 / sqrt((double)d);   // centre separation comparable to the noise
    for (int i = 0; i < nc * d; i++) c[i] = (float)(rnorm() * spread);
    for (int64_t i = 0; i < n; i++) {
        int j = (int)(runi() * nc);
        double s = 0;
        for (int q = 0; q < d; q++) {
            double v = c[j * d + q] + rnorm() / sqrt((double)d);
            X[i * d + q] = (float)v;
            s += v * v;
        }
        for (int q = 0; q < d; q++) X[i * d + q] = (float)(X[i * d + q] / sqrt(s));
    }
    free(c);
    return X;
}

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int parse_list(const char *s, int *out, int max) {
    int n = 0;
    while (*s && n < max) {
        out[n++] = (int)strtol(s, (char **)&s, 10);
        if (*s == ',') s++;
    }
    return n;
}

typedef struct bench_cfg {
    int repeat, exact, have_sk;
    int64_t n;
    const char *script;   // tools/kmeans_ref.py, or NULL
    const char *dir;      // the temporary folder
} bench_cfg;

typedef struct sk_result {
    double ms, cpu_ms, inertia;
    int iters;
    float *labels;        // n labels, NULL when sklearn did not run
} sk_result;

// scikit-learn on X.npy / init.npy in cfg->dir with `threads` OpenMP threads (tools/kmeans_ref.py).
static sk_result sklearn_fit(const bench_cfg *cfg, const char *xp, const char *ip, int threads) {
    sk_result sk = {NAN, NAN, NAN, -1, NULL};
    if (!cfg->have_sk) return sk;
    char cmd[1024], od[160], rp[200], lp[200];
    snprintf(od, sizeof od, "%s/out", cfg->dir);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s fit %s %s %s --threads %d --repeat %d", cfg->script, xp, ip, od,
             threads, cfg->repeat);
    if (system(cmd) != 0) return sk;
    snprintf(rp, sizeof rp, "%s/result.txt", od);
    FILE *f = fopen(rp, "r");
    double skin, sec, cs;
    if (f && fscanf(f, "inertia %lf inertia64 %lf n_iter %d seconds %lf cpu_seconds %lf", &skin, &sk.inertia,
                    &sk.iters, &sec, &cs) == 5) {
        sk.ms = sec * 1e3;
        sk.cpu_ms = cs * 1e3;
    }
    if (f) fclose(f);
    snprintf(lp, sizeof lp, "%s/labels.npy", od);
    npy_array arr;
    err e = {0};
    if (npy_read(lp, &arr, &e) == 0) { sk.labels = npy_to_f32(&arr, &e); npy_free(&arr); }
    return sk;
}

// oodseg's kmeans_fit, cfg->repeat times; one table row. Returns 1 when the result differs from
// sklearn's, -1 on an error.
static int oodseg_row(const bench_cfg *cfg, const float *X, const float *C, int d, int k, int threads,
                      const sk_result *sk) {
    nn_ctx ctx;
    nn_ctx_init(&ctx, threads);
    kmeans_params p;
    kmeans_params_default(&p);
    p.k = k;
    p.exact_lloyd = cfg->exact;
    double ms[64], cms[64];
    kmeans_result r = {0};
    err e = {0};
    int rr = cfg->repeat < 64 ? cfg->repeat : 64;
    for (int q = 0; q < rr; q++) {
        kmeans_result_free(&r);
        double t0 = omp_get_wtime(), c0 = cpu_now();
        if (kmeans_fit(&ctx, X, cfg->n, d, &p, C, &r, &e)) { fprintf(stderr, "%s\n", e.msg); return -1; }
        ms[q] = (omp_get_wtime() - t0) * 1e3;
        cms[q] = (cpu_now() - c0) * 1e3;
    }
    qsort(ms, rr, sizeof(double), cmpd);
    qsort(cms, rr, sizeof(double), cmpd);
    double med = ms[rr / 2], cmed = cms[rr / 2];
    int64_t diff = 0;
    if (sk->labels) for (int64_t i = 0; i < cfg->n; i++) diff += r.labels[i] != (int32_t)sk->labels[i];
    double rel = fabs(r.inertia - sk->inertia) / sk->inertia;
    char eq[32];
    if (sk->labels) snprintf(eq, sizeof eq, diff ? "no (%lld)" : "yes", (long long)diff);
    else snprintf(eq, sizeof eq, "-");
    printf("| %d | %d | %d | %d%s | %.1f | %.1f | %.2fx | %.2fx | %.1e | %s |\n", d, k, threads, r.n_iter,
           (sk->iters >= 0 && sk->iters != r.n_iter) ? " (sklearn differs)" : "", sk->ms, med, sk->ms / med,
           sk->cpu_ms / cmed, rel, eq);
    fflush(stdout);
    kmeans_result_free(&r);
    return sk->labels && (diff || rel > 1e-6);
}

// One (D, K): the data and initial centres (written for sklearn), then a row per thread count.
// Returns the number of rows that differ from sklearn, -1 on an error.
static int bench_config(const bench_cfg *cfg, int d, int k, const int *Ts, int nT) {
    int64_t n = cfg->n;
    rs = 88172645463325252ull + (uint64_t)d * 131 + (uint64_t)k;
    float *X = make_data(n, d, 2 * k);
    float *C = malloc(sizeof(float) * k * d);
    if (!X || !C) { fprintf(stderr, "out of memory\n"); free(X); free(C); return -1; }
    for (int j = 0; j < k; j++) {
        int64_t r = (int64_t)(runi() * n);
        memcpy(C + (size_t)j * d, X + r * d, sizeof(float) * d);
    }
    char xp[128], ip[128];
    snprintf(xp, sizeof xp, "%s/X.npy", cfg->dir);
    snprintf(ip, sizeof ip, "%s/init.npy", cfg->dir);
    err e = {0};
    int64_t sx[2] = {n, d}, sc[2] = {k, d};
    int fails = 0;
    if (npy_write_f32(xp, X, 2, sx, &e) || npy_write_f32(ip, C, 2, sc, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        fails = -1;
    }
    for (int t = 0; t < nT && fails >= 0; t++) {
        sk_result sk = sklearn_fit(cfg, xp, ip, Ts[t]);
        int rc = oodseg_row(cfg, X, C, d, k, Ts[t], &sk);
        free(sk.labels);
        fails = rc < 0 ? -1 : fails + rc;
    }
    free(X);
    free(C);
    return fails;
}

int main(int argc, char **argv) {
    // The CLI's malloc policy (cli/main.c), so that the times are those of `oodseg`.
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    int keep = 0;
    bench_cfg cfg = {.repeat = 3, .n = 32768};
    int Ds[8] = {160, 256, 1280}, nD = 3, Ks[8] = {4, 8, 16}, nK = 3, Ts[8] = {1, 2}, nT = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--repeat") && i + 1 < argc) cfg.repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--n") && i + 1 < argc) cfg.n = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--d") && i + 1 < argc) nD = parse_list(argv[++i], Ds, 8);
        else if (!strcmp(argv[i], "--k") && i + 1 < argc) nK = parse_list(argv[++i], Ks, 8);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) nT = parse_list(argv[++i], Ts, 8);
        else if (!strcmp(argv[i], "--exact")) cfg.exact = 1;
        else if (!strcmp(argv[i], "--keep")) keep = 1;
        else { fprintf(stderr, "usage: %s [--repeat R] [--n N] [--d list] [--k list] [--threads list] [--exact] [--keep]\n", argv[0]); return 2; }
    }
    cfg.script = access("tools/kmeans_ref.py", R_OK) == 0 ? "tools/kmeans_ref.py" : NULL;
    cfg.have_sk = cfg.script && system("/usr/bin/python3 -c 'import sklearn, threadpoolctl' >/dev/null 2>&1") == 0;
    if (!cfg.have_sk) fprintf(stderr, "scikit-learn not found (run from the repository root with python3-sklearn installed); timing oodseg only\n");
    char dir[] = "/tmp/oodseg-bench-kmeans-XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    cfg.dir = dir;

    printf("K-Means, N = %lld, median of %d runs, same data and initial centres%s\n\n", (long long)cfg.n,
           cfg.repeat, cfg.exact ? " (oodseg: exact Lloyd, no bounds)" : "");
    printf("| D | K | threads | iters | sklearn 1.2.1 ms | oodseg ms | speedup | CPU-time speedup | inertia rel. diff | labels equal |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|\n");
    fflush(stdout);
    int fails = 0;
    for (int a = 0; a < nD && fails >= 0; a++)
        for (int b = 0; b < nK && fails >= 0; b++) {
            int f = bench_config(&cfg, Ds[a], Ks[b], Ts, nT);
            fails = f < 0 ? -1 : fails + f;
        }
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (keep) fprintf(stderr, "kept %s\n", dir);
    else if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    if (fails < 0) return 1;
    if (fails) printf("\n%d configurations differ from sklearn\n", fails);
    return 0;
}
