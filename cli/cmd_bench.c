// `oodseg bench`: how fast and how big a model is on this machine, before or after its download.
// --model takes a checkpoint or a random-weight architecture name (models/random_weights.h). One
// warm-up, then R timed runs of the whole per-image journey on a random input at the network size
// (forward + the OoD method, api/pipeline.c); the run with the median total gives the per-family
// split, which the models' profiler brackets measure (nn/prof.h), with the FLOPs the ops counted
// in each family (nominal: a Winograd conv counts as the direct one), and memory: the forward's
// own high-water mark (VmHWM reset through /proc/self/clear_refs, minus the resident size before
// it), the activation arena's slab, the weights, and the process's maxrss.
#include "cli.h"
#include "../core/outfile.h"
#include "../core/procmem.h"
#include "../core/text.h"
#include "../models/random_weights.h"
#include "../nn/prof.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define BENCH_MAX_RUNS 1000

typedef struct bench_opts {
    int runs;
    const char *json;
} bench_opts;

static int bench_flags(void *ctx, int argc, char **argv, int i, err *e) {
    bench_opts *o = ctx;
    const char *a = argv[i];
    if (strcmp(a, "--runs") && strcmp(a, "--json")) return 0;
    if (i + 1 >= argc) { err_set(e, OODSEG_E_ARG, "%s needs a value", a); return -1; }
    const char *v = argv[i + 1];
    if (!strcmp(a, "--runs")) {
        char *end;
        long r = strtol(v, &end, 10);
        if (*end || r < 1 || r > BENCH_MAX_RUNS) {
            err_set(e, OODSEG_E_ARG, "--runs '%s': give a whole number from 1 to %d", v, BENCH_MAX_RUNS);
            return -1;
        }
        o->runs = (int)r;
    } else {
        o->json = v;
    }
    return 2;
}

// ---- the runs -----------------------------------------------------------------------------------

typedef struct bench_result {
    int w, h, runs;
    double total[BENCH_MAX_RUNS];      // each timed run's pipeline time, s
    double median, min, forward, method;   // the median run's total, the fastest, its two halves
    double forward_median;             // the median of the runs' forward times alone
    nn_prof split;                     // the median run's families
    double gflop[PROF_FAMILIES], gflop_total;
    long fwd_peak_kb;                  // -1: not measurable here
    double slab_mb, weights_mb, maxrss_mb;
} bench_result;

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// One warm-up, then r->runs timed runs of the pipeline on input (1, 3, h, w).
static int time_runs(pipeline *p, const float *input, bench_result *r, err *e) {
    nn_prof prof, *keep = calloc((size_t)r->runs, sizeof *keep);
    double fwd[BENCH_MAX_RUNS], met[BENCH_MAX_RUNS];
    if (!keep) return err_set(e, OODSEG_E_NOMEM, "bench: out of memory for %d runs", r->runs);
    p->m->ctx.prof = &prof;
    r->fwd_peak_kb = -1;
    for (int k = -1; k < r->runs; k++) {
        pipeline_out out;
        nn_prof_clear(&prof);
        long rss0 = procmem_status_kb("VmRSS:");
        int hwm = procmem_reset_hwm();
        double t0 = omp_get_wtime();
        int rc = pipeline_run_tensor(p, input, r->h, r->w, &out, e);
        double t = omp_get_wtime() - t0;
        long peak = procmem_status_kb("VmHWM:");
        if (rc) { p->m->ctx.prof = NULL; free(keep); return rc; }
        if (hwm && peak > 0 && rss0 > 0 && peak - rss0 > r->fwd_peak_kb) r->fwd_peak_kb = peak - rss0;
        if (k >= 0) r->total[k] = t, fwd[k] = out.seconds_forward, met[k] = out.seconds_methods, keep[k] = prof;
        pipeline_out_free(&out);
    }
    p->m->ctx.prof = NULL;
    double sorted[BENCH_MAX_RUNS];
    memcpy(sorted, r->total, sizeof(double) * (size_t)r->runs);
    qsort(sorted, (size_t)r->runs, sizeof *sorted, cmp_d);
    r->median = sorted[r->runs / 2], r->min = sorted[0];
    for (int k = 0; k < r->runs; k++)
        if (r->total[k] == r->median) { r->split = keep[k], r->forward = fwd[k], r->method = met[k]; break; }
    qsort(fwd, (size_t)r->runs, sizeof *fwd, cmp_d);
    r->forward_median = fwd[r->runs / 2];
    free(keep);
    return OODSEG_OK;
}

static void memory(const model *m, bench_result *r) {
    nn_arena_stats st;
    arena_stats(m->arena, &st);
    r->slab_mb = st.slab / 1048576.0;
    r->weights_mb = (double)m->desc.num_params * 4 / 1048576.0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r->maxrss_mb = ru.ru_maxrss / 1024.0;
}

// ---- output -------------------------------------------------------------------------------------

// The OpenMP wait policy this process runs under (cli/wait_policy.c chose it, or the user did).
static void wait_policy(char *buf, size_t n) {
    const char *wp = getenv("OMP_WAIT_POLICY"), *sc = getenv("GOMP_SPINCOUNT");
    int ours = getenv("OODSEG_WAIT_POLICY_SET") != NULL;
    if (!wp && !sc) snprintf(buf, n, "libgomp's default");
    else snprintf(buf, n, "%s%s%s%s%s (%s)", wp ? "OMP_WAIT_POLICY=" : "", wp ? wp : "", wp && sc ? " " : "",
                  sc ? "GOMP_SPINCOUNT=" : "", sc ? sc : "", ours ? "set by oodseg" : "from the environment");
}

static double gflops(double gflop, double s) { return gflop > 0 && s > 0 ? gflop / s : 0; }

// Four significant digits (a 64x32 ESPNetv2 is 0.005 GFLOP), no exponent above 1000.
static const char *g4(char *buf, size_t n, double v) {
    snprintf(buf, n, v >= 1000 ? "%.0f" : "%.4g", v);
    return buf;
}

static void print_table(const model *m, const char *what, int threads, const char *methods, const bench_result *r) {
    printf("oodseg bench: %s%s\n", m->desc.title, what);
    char wp[160];
    wait_policy(wp, sizeof wp);
    printf("input %dx%d (WxH), %d thread%s (OpenMP wait: %s), %d run%s after one warm-up (the median run's split), "
           "method %s, %s\n\n", r->w, r->h, threads, threads == 1 ? "" : "s", wp, r->runs, r->runs == 1 ? "" : "s", methods,
           m->ctx.precision == NN_BF16 ? "bf16 GEMMs" : "fp32");
    printf("| family | ms | share | GFLOP | GFLOP/s |\n|---|---:|---:|---:|---:|\n");
    double sum = 0;
    for (int f = 0; f < PROF_FAMILIES; f++) {
        double s = r->split.seconds[f];
        if (s <= 0 && r->gflop[f] <= 0) continue;
        sum += s;
        printf("| %s | %.1f | %.1f%% |", nn_prof_name(f), 1e3 * s, 100 * s / r->median);
        char a[32], b[32];
        if (r->gflop[f] > 0) printf(" %s | %s |\n", g4(a, sizeof a, r->gflop[f]), g4(b, sizeof b, gflops(r->gflop[f], s)));
        else printf(" - | - |\n");
    }
    printf("| (outside the brackets) | %.1f | %.1f%% |", 1e3 * (r->median - sum), 100 * (r->median - sum) / r->median);
    char a[32], b[32];
    if (r->split.flop_outside > 0) printf(" %s | |\n", g4(a, sizeof a, r->split.flop_outside / 1e9));
    else printf(" | |\n");
    printf("| **total** (forward %.1f + method %.1f) | **%.1f** | | %s | %s |\n\n", 1e3 * r->forward, 1e3 * r->method,
           1e3 * r->median, r->gflop_total > 0 ? "" : "-", r->gflop_total > 0 ? "" : "-");
    if (r->gflop_total > 0)
        printf("forward: %s GFLOP, %s GFLOP/s\n", g4(a, sizeof a, r->gflop_total),
               g4(b, sizeof b, gflops(r->gflop_total, r->forward)));
    printf("time: median %.1f ms, fastest %.1f ms\n", 1e3 * r->median, 1e3 * r->min);
    if (r->fwd_peak_kb >= 0) printf("memory: forward peak %.1f MB", r->fwd_peak_kb / 1024.0);
    else printf("memory: forward peak n/a (no /proc/self/clear_refs)");
    printf(", arena slab %.1f MB, weights %.1f MB (%lld parameters, fp32), process maxrss %.1f MB\n",
           r->slab_mb, r->weights_mb, (long long)m->desc.num_params, r->maxrss_mb);
}

static int write_json(const char *path, const model *m, const char *name, int random, int threads,
                      const char *methods, const char *precision, const bench_result *r, err *e) {
    outfile o;
    if (outfile_open(&o, path, e)) return e->code;
    FILE *f = o.f;
    fprintf(f, "{\n  \"model\": ");
    json_write_str(f, name);
    fprintf(f, ",\n  \"arch\": ");
    json_write_str(f, m->desc.arch);
    fprintf(f, ",\n  \"title\": ");
    json_write_str(f, m->desc.title);
    fprintf(f, ",\n  \"random_weights\": %s,\n  \"input\": [%d, %d],\n  \"threads\": %d,\n  \"runs\": %d,\n",
            random ? "true" : "false", r->w, r->h, threads, r->runs);
    char wp[160];
    wait_policy(wp, sizeof wp);
    fprintf(f, "  \"omp_wait\": ");
    json_write_str(f, wp);
    fprintf(f, ",\n  \"precision\": ");
    json_write_str(f, precision);
    fprintf(f, ",\n  \"method\": ");
    json_write_str(f, methods);
    fprintf(f, ",\n  \"seconds\": {\"median\": %.6f, \"min\": %.6f, \"forward\": %.6f, \"method\": %.6f, "
            "\"forward_median\": %.6f, \"runs\": [", r->median, r->min, r->forward, r->method, r->forward_median);
    for (int k = 0; k < r->runs; k++) fprintf(f, "%s%.6f", k ? ", " : "", r->total[k]);
    fprintf(f, "]},\n  \"families\": [");
    int first = 1;
    for (int fam = 0; fam < PROF_FAMILIES; fam++) {
        double s = r->split.seconds[fam];
        if (s <= 0 && r->gflop[fam] <= 0) continue;
        fprintf(f, "%s\n    {\"name\": \"%s\", \"seconds\": %.6f, \"share\": %.4f", first ? "" : ",", nn_prof_name(fam),
                s, s / r->median);
        if (r->gflop[fam] > 0) fprintf(f, ", \"gflop\": %.10g, \"gflops\": %.6g", r->gflop[fam], gflops(r->gflop[fam], s));
        fprintf(f, "}");
        first = 0;
    }
    fprintf(f, "\n  ],\n  \"gflop_forward\": %.10g,\n", r->gflop_total);
    fprintf(f, "  \"memory_mb\": {\"forward_peak\": ");
    if (r->fwd_peak_kb >= 0) fprintf(f, "%.2f", r->fwd_peak_kb / 1024.0);
    else fprintf(f, "null");
    fprintf(f, ", \"arena_slab\": %.2f, \"weights\": %.2f, \"maxrss\": %.2f},\n  \"parameters\": %lld\n}\n",
            r->slab_mb, r->weights_mb, r->maxrss_mb, (long long)m->desc.num_params);
    return outfile_commit(&o, !ferror(f), e);
}

// ---- the command --------------------------------------------------------------------------------

// The network input size: --size WxH checked against the model's constraints, else the model's
// own test-time size for a 2048x1024 frame (a Cityscapes image).
static int input_size(const model *m, const char *size, int *w, int *h, err *e) {
    int iw = 2048, ih = 1024;
    if (size && *size && !strcmp(size, "native"))
        return err_set(e, OODSEG_E_ARG, "bench: --size native has no image to take the size from; give --size WxH");
    if (size && *size && (sscanf(size, "%dx%d", &iw, &ih) != 2 || iw < 1 || ih < 1 || iw > 16384 || ih > 16384))
        return err_set(e, OODSEG_E_ARG, "bench: --size '%s': give the network input as WxH, e.g. 1024x512 "
                       "(each side 1 to 16384)", size);
    return preprocess_target_size(&m->desc.pre, iw, ih, size && *size ? size : NULL, w, h, e);
}

// Opens --model as a random-weight architecture when it names one, else as a file.
static int open_model(const pipeline_config *cfg, model **m, int *random, err *e) {
    *random = random_model_known(cfg->model);
    if (!*random && access(cfg->model, F_OK))
        return err_set(e, OODSEG_E_ARG, "bench: --model '%s' is neither a file nor an architecture; architectures "
                       "for random weights: %s", cfg->model, random_model_names);
    if (!*random) return pipeline_config_open_model(cfg, NULL, m, e);
    model_options mo;
    pipeline_config_model_options(cfg, &mo);
    mo.size = NULL;   // the bench's input size is set on the tensor, not by a resize
    nn_ctx ctx;
    nn_ctx_init(&ctx, cfg->threads);
    ctx.precision = cfg->precision;
    return random_model_open(cfg->model, &ctx, &mo, m, e);
}

static int run_bench(cli_common *c, const bench_opts *o, err *e) {
    pipeline p;
    memset(&p, 0, sizeof p);
    model *m = NULL;
    float *input = NULL;
    bench_result *r = calloc(1, sizeof *r);
    int random, rc;
    if (!r) return err_set(e, OODSEG_E_NOMEM, "bench: out of memory");
    r->runs = o->runs;
    if ((rc = open_model(&c->cfg, &m, &random, e))) goto done;
    if ((rc = input_size(m, c->cfg.size, &r->w, &r->h, e))) goto done;
    if ((rc = pipeline_attach(&p, m, NULL, c->cfg.methods, &c->cfg.oo, e))) goto done;
    int64_t n = (int64_t)3 * r->w * r->h;
    if (!(input = err_malloc(e, sizeof(float) * (size_t)n, "the bench input"))) { rc = e->code; goto done; }
    uint32_t s = 1;
    for (int64_t i = 0; i < n; i++) s = s * 1664525u + 1013904223u, input[i] = 4.0f * ((float)(s >> 8) / 16777216.0f - 0.5f);
    if ((rc = time_runs(&p, input, r, e))) goto done;
    for (int f = 0; f < PROF_FAMILIES; f++) {
        r->gflop[f] = r->split.flop[f] / 1e9;
        if (f != PROF_OOD) r->gflop_total += r->gflop[f];   // the forward's
    }
    r->gflop_total += r->split.flop_outside / 1e9;
    memory(m, r);
    const char *methods = c->cfg.methods[0] ? c->cfg.methods : "kmeans";
    print_table(m, random ? " (random weights)" : "", m->ctx.threads, methods, r);
    if (o->json) rc = write_json(o->json, m, c->cfg.model[0] ? c->cfg.model : m->desc.arch, random, m->ctx.threads,
                                 methods, c->cfg.precision == NN_BF16 ? "bf16" : "fp32", r, e);
done:
    free(input);
    free(r);
    pipeline_close(&p);   // the methods; the model is ours (owns_model 0)
    if (m) model_close(m);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    cli_common c;
    bench_opts o = {.runs = 5};
    err e = {0};
    int rc = cli_parse(argc, argv, 2, "bench", &c, bench_flags, &o, &e);
    if (!rc && c.n_pos) rc = err_set(&e, OODSEG_E_ARG, "bench: unexpected argument '%s' (oodseg bench --model M|ARCH "
                                     "--size WxH [--threads N] [--runs R] [--json FILE])", c.pos[0]);
    if (!rc && !c.cfg.model[0])
        rc = err_set(&e, OODSEG_E_ARG, "bench: give --model, a checkpoint file or an architecture for random "
                     "weights: %s", random_model_names);
    if (!rc) rc = run_bench(&c, &o, &e);
    cli_free(&c);
    return rc ? cli_fail(&e) : 0;
}
