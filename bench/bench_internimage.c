// InternImage-T and -L + UperNet forward time and memory at 512x1024 (a Cityscapes training crop;
// the test pipeline runs 1024x2048), with random weights in the shapes of the real checkpoints
// (models/random_weights.h, built in memory), on 1 and 2 threads. Prints Markdown tables: the
// analytic FLOPs per layer group, then per run the median time, GFLOP/s and the fraction of the
// cblas_sgemm peak measured in the same run, and the peak memory.
//
//   build/bench/bench_internimage [--models t,l] [--threads 1,2]
//        [--runs-t 3] [--runs-l 1] [--size 1024x512] [--precision fp32|bf16]
//
// --precision bf16 runs the convs' and linear layers' GEMMs in bf16 (nn/gemm_bf16.h; a CPU with
// AVX512-BF16), with one warm-up forward for L too, which packs the weights as a model's first
// forward does; the "of peak" column stays relative to the fp32 sgemm peak.
//
// Each forward is model->forward's two halves, timed apart (backbone / head columns).
// T runs one warm-up forward first; L (about 2.5x T's FLOPs) does not, so its single run includes
// first-touch page faults. Peak memory: the process's VmHWM, reset before each forward
// (/proc/self/clear_refs), minus the resident size before it = the forward's own high-water mark
// of activations and scratch (pages the model's arena already holds from an earlier forward are
// in the resident size before it); arena MB is the planned slab (the most activation bytes alive
// at once); maxrss (getrusage) is the whole process including the weights.
#include "../models/internimage.h"
#include "../models/flops.h"
#include "../core/procmem.h"
#include "../models/random_weights.h"
#include "../nn/gemm_bf16.h"
#include "common.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sys/resource.h>

// The context every op and model of this program runs on (main sets its threads).
static nn_ctx T;


typedef struct bench_opts {
    const char *models, *threads;
    int runs_t, runs_l, w, h;
    double peak[3];          // sgemm GFLOP/s on 1 and 2 threads
    nn_precision precision;  // --precision: the GEMMs on weights in fp32 or bf16
    nn_bf16_weights *store;  // bf16: the model's packed weights (as model_open makes them)
    const float *x;          // the input (3, h, w)
} bench_opts;

// `runs` forwards of m on `th` threads (after `warm` warm-ups); one Markdown row into row.
// Each forward is model->forward's two halves (on the model's own arena), timed apart.
static int time_runs(model *m, const bench_opts *o, int th, int runs, int warm, double total, char *row, size_t cap) {
    double t[50], tb[50];
    long act_kb = -1;
    const ii_model *im = m->impl;
    err e = {0};
    nn_ctx_init(&T, th);
    T.precision = o->precision;
    T.bf16_weights = o->store;
    for (int r = -warm; r < runs; r++) {
        tensor_list out = {0};
        long rss0 = procmem_status_kb("VmRSS:");
        int hwm_ok = procmem_reset_hwm();
        double s0 = omp_get_wtime();
        float *feats[4];
        int fh[4], fw[4];
        arena_reset(m->arena);
        if (internimage_forward(&T, m->arena, &im->net, o->x, o->h, o->w, NULL, &out, feats, fh, fw, &e)) {
            printf("forward: %s\n", e.msg);
            return 1;
        }
        double s1 = omp_get_wtime();
        if (upernet_forward(&T, m->arena, &im->head, feats, fh, fw, o->h, o->w, NULL, &out, &e)) {
            printf("forward: %s\n", e.msg);
            return 1;
        }
        arena_end(m->arena);
        if (r >= 0) t[r] = omp_get_wtime() - s0, tb[r] = s1 - s0;
        long hwm = procmem_status_kb("VmHWM:");
        if (hwm_ok && hwm > 0 && rss0 > 0 && hwm - rss0 > act_kb) act_kb = hwm - rss0;
        tl_free(&out);
    }
    double unsorted[50];
    memcpy(unsorted, t, sizeof t);
    qsort(t, runs, sizeof t[0], bench_cmp_d);
    double med = t[runs / 2], bb = tb[0];
    for (int r = 0; r < runs; r++) if (unsorted[r] == med) bb = tb[r];   // the median run's split
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    nn_arena_stats st;
    arena_stats(m->arena, &st);
    snprintf(row, cap, "| %s%s | %dx%d | %d | %d | %.2f | %.2f | %.2f / %.2f | %.1f | %.1f | %.1f | %.0f%% | %.0f | %.0f | %.0f |",
             m->desc.arch, o->precision == NN_BF16 ? " bf16" : "", o->w, o->h, th, runs, med, t[0], bb, med - bb, total, total / med, o->peak[th],
             100 * total / med / o->peak[th], act_kb / 1024.0, st.slab / 1048576.0, ru.ru_maxrss / 1024.0);
    return 0;
}

// Size `sz` ("t" or "l"): random weights, the FLOP table, then one row per thread count.
static int bench_size(const char *sz, bench_opts *o, char results[][240], int *nres) {
    char arch[64];
    snprintf(arch, sizeof arch, "internimage-%s-cityscapes", sz);
    err e = {0};
    double t0 = omp_get_wtime();
    model *m = NULL;
    if (random_model_open(arch, &T, NULL, &m, &e)) { printf("%s: %s\n", arch, e.msg); return 0; }
    printf("%s: random weights built in %.1f s\n\n", m->desc.title, omp_get_wtime() - t0);
    flop_row rows[FLOP_ROWS_MAX];
    int nr = model_flops(m, o->h, o->w, rows);
    double total = 0;
    for (int i = 0; i < nr; i++) total += rows[i].gflop;
    printf("| %s, %dx%d | GFLOP | share |\n|---|---:|---:|\n", m->desc.arch, o->w, o->h);
    for (int i = 0; i < nr; i++) printf("| %s | %.2f | %.1f%% |\n", rows[i].name, rows[i].gflop, 100 * rows[i].gflop / total);
    printf("| **total** | **%.1f** | |\n\n", total);
    fflush(stdout);
    int runs = !strcmp(sz, "t") ? o->runs_t : o->runs_l, warm = !strcmp(sz, "t");
    // bf16 packs each weight on its first use, as a model does: one warm-up run keeps that out.
    if (o->precision == NN_BF16) {
        warm = 1;
        if (nn_bf16_weights_new(&o->store, &e)) { printf("%s\n", e.msg); model_close(m); return 1; }
    }
    if (runs < 1) runs = 1;
    if (runs > 50) runs = 50;
    for (int th = 1; th <= 2; th++) {
        char tn[4];
        snprintf(tn, sizeof tn, "%d", th);
        if (!strstr(o->threads, tn)) continue;
        if (time_runs(m, o, th, runs, warm, total, results[*nres], sizeof results[0])) {
            model_close(m);
            nn_bf16_weights_free(o->store);
            return 1;
        }
        printf("  %s\n", results[(*nres)++]);
        fflush(stdout);
    }
    model_close(m);
    nn_bf16_weights_free(o->store);
    o->store = NULL;
    printf("\n");
    return 0;
}

int main(int argc, char **argv) {
    nn_ctx_init(&T, 0);   // every core
    bench_opts o = {.models = "t,l", .threads = "1,2", .runs_t = 3, .runs_l = 1, .w = 1024, .h = 512};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--models")) o.models = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) o.threads = argv[i + 1];
        else if (!strcmp(argv[i], "--runs-t")) o.runs_t = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs-l")) o.runs_l = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--size") && sscanf(argv[i + 1], "%dx%d", &o.w, &o.h) == 2) {}
        else if (!strcmp(argv[i], "--precision")) {
            err e = {0};
            nn_ctx c;
            nn_ctx_init(&c, 1);
            if (nn_precision_parse(argv[i + 1], "--precision", &c.precision, &e) || nn_precision_check(&c, &e)) {
                fprintf(stderr, "%s\n", e.msg);
                return 2;
            }
            o.precision = c.precision;
        }
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    for (int th = 1; th <= 2; th++) o.peak[th] = bench_sgemm_peak(1536, th, 5);
    printf("sgemm peak (n=1536, single-threaded BLAS per OpenMP thread): 1 thread %.1f GFLOP/s, 2 threads %.1f GFLOP/s\n\n",
           o.peak[1], o.peak[2]);
    float *x = malloc(sizeof(float) * 3 * (size_t)o.w * o.h);
    for (size_t i = 0; i < 3 * (size_t)o.w * o.h; i++) x[i] = 4.0f * bench_urand();
    o.x = x;
    char results[8][240];
    int nres = 0;
    for (const char *sz = "t"; sz; sz = strcmp(sz, "t") ? NULL : "l")
        if (strstr(o.models, sz) && bench_size(sz, &o, results, &nres)) return 1;
    printf("| model | input | threads | runs | median s | min s | backbone / head s | GFLOP | GFLOP/s | sgemm peak | "
           "of peak | forward peak MB | arena MB | maxrss MB |\n"
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < nres; i++) printf("%s\n", results[i]);
    free(x);
    return 0;
}
