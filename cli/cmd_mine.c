// `oodseg mine`: the frames a model understands least, from folders, file lists and videos. The
// work is the library's (api/mine.h); this parses, prints and maps status codes.
#include "cli.h"
#include "../api/mine.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct mine_flags {
    mine_opts o;
    const char *calibration;
    int top_set;
} mine_flags;

static int num(const char *k, const char *v, double lo, double *out, err *e) {
    char *end;
    *out = strtod(v, &end);
    if (*end || end == v || !isfinite(*out) || *out < lo)
        return err_set(e, OODSEG_E_ARG, "%s '%s': expected a number >= %g", k, v, lo);
    return OODSEG_OK;
}

static int mine_extra(void *ctx, int argc, char **argv, int i, err *e) {
    mine_flags *f = ctx;
    const char *k = argv[i];
    if (!strcmp(k, "--resume")) { f->o.resume = 1; return 1; }
    static const char *valued[] = {"--top", "--rank-by", "--threshold", "--calibration", "--percentile",
                                   "--min-region", "--every", "--start", "--end"};
    int ours = 0;
    for (size_t j = 0; j < sizeof valued / sizeof *valued; j++) ours |= !strcmp(k, valued[j]);
    if (!ours) return 0;
    if (i + 1 >= argc) { err_set(e, OODSEG_E_ARG, "%s needs a value", k); return -1; }
    const char *v = argv[i + 1];
    double x;
    int rc = OODSEG_OK;
    if (!strcmp(k, "--top")) { if (!(rc = num(k, v, 1, &x, e))) { f->o.top = (int)x; f->top_set = 1; } }
    else if (!strcmp(k, "--rank-by")) {
        if (!strcmp(v, "area")) f->o.by = MINE_AREA;
        else if (!strcmp(v, "region")) f->o.by = MINE_REGION;
        else if (!strcmp(v, "percentile")) f->o.by = MINE_PERCENTILE;
        else rc = err_set(e, OODSEG_E_ARG, "--rank-by '%s': use area, region or percentile", v);
    }
    else if (!strcmp(k, "--threshold")) { char *end; x = strtod(v, &end); if (*end || end == v || !isfinite(x)) rc = err_set(e, OODSEG_E_ARG, "--threshold '%s': expected a number", v); else { f->o.rule.has_threshold = 1; f->o.rule.threshold = x; } }
    else if (!strcmp(k, "--calibration")) f->calibration = v;
    else if (!strcmp(k, "--percentile")) { if (!(rc = num(k, v, 0, &x, e)) && x > 100) rc = err_set(e, OODSEG_E_ARG, "--percentile %s: at most 100", v); f->o.rule.percentile = x; }
    else if (!strcmp(k, "--min-region")) { if (!(rc = num(k, v, 0, &x, e))) f->o.rule.min_region = x; }
    else if (!strcmp(k, "--every")) { if (!(rc = num(k, v, 1, &x, e))) f->o.frames.every = (int)x; }
    else if (!strcmp(k, "--start")) { if (!(rc = num(k, v, 0, &x, e))) f->o.frames.start = x; }
    else if (!strcmp(k, "--end")) { if (!(rc = num(k, v, 0, &x, e))) f->o.frames.end = x; }
    return rc ? -1 : 2;
}

static void on_fail(void *ctx, const char *name, const err *e) {
    (void)ctx;
    fprintf(stderr, "oodseg: %s (skipped; going on)\n", e->msg[0] ? e->msg : name);
}

static void on_frame(void *ctx, const char *name, long long done) {
    const double *t0 = ctx;
    if (done % 25 == 0) fprintf(stderr, "mine: %lld frames, %.1f s (%s)\n", done, omp_get_wtime() - *t0, name);
}

// The pixels called anomalous: --threshold, else --calibration (the ID max-logit 0.5th
// percentile, METHOD.md), else the clusters kmeans flags; the colours follow the calibration too.
static int pixel_rule(mine_flags *f, pipeline *p, err *e) {
    if (f->calibration) {
        char spec[4200];
        snprintf(spec, sizeof spec, "calibrated:%s", f->calibration);
        if (pipeline_set_scale(p, spec, e)) return e->code;
        if (!f->o.rule.has_threshold) { f->o.rule.has_threshold = 1; f->o.rule.threshold = p->scale.hi; }
    }
    f->o.rule.use_clusters = (ood_method_def_of(p->methods[0])->flags & OOD_MAKES_CLUSTERS) != 0;
    if (!f->o.rule.has_threshold && !f->o.rule.use_clusters && f->o.by != MINE_PERCENTILE)
        return err_set(e, OODSEG_E_ARG, "--rank-by %s needs anomalous pixels: give --calibration FILE (from oodseg "
                       "calibrate) or --threshold T, or use --method kmeans or --rank-by percentile", mine_rank_name(f->o.by));
    return OODSEG_OK;
}

int cmd_mine(int argc, char **argv) {
    cli_common c;
    err e = {0};
    pipeline p = {0};
    mine_flags f = {0};
    f.o.top = 20; f.o.by = MINE_AREA; f.o.rule.percentile = 99; f.o.rule.min_region = 0.001;
    char **paths = NULL, cmdline[8192];
    int n_paths = 0, rc;
    const dist *d = cli_dist();
    if ((rc = cli_parse(argc, argv, 2, "mine", &c, mine_extra, &f, &e))) goto done;
    if (!c.out_dir) { rc = err_set(&e, OODSEG_E_ARG, "mine: give an output folder with -o DIR (see oodseg mine --help)"); goto done; }
    if (!c.cfg.methods[0]) snprintf(c.cfg.methods, sizeof c.cfg.methods, "kmeans");
    if (strchr(c.cfg.methods, ',')) { rc = err_set(&e, OODSEG_E_ARG, "mine: one method ranks the frames (--method %s has several)", c.cfg.methods); goto done; }
    if ((rc = cli_collect_inputs(c.pos, c.n_pos, 1, &paths, &n_paths, NULL, &e))) goto done;
    if ((rc = cli_check_stems(paths, n_paths, &e))) goto done;
    cli_rank_threads(&c.cfg);
    if ((rc = pipeline_open(&p, &c.cfg, &e))) goto done;
    if ((rc = pixel_rule(&f, &p, &e))) goto done;
    if ((rc = cli_mkdir_p(c.out_dir, &e))) goto done;
    cli_command_line(argc, argv, cmdline, sizeof cmdline);
    double t0 = omp_get_wtime();
    f.o.out_dir = c.out_dir;
    f.o.command_line = cmdline;
    f.o.on_fail = on_fail;
    f.o.on_frame = on_frame;
    f.o.ctx = &t0;
    mine_summary s;
    if ((rc = mine_run(d, &p, paths, n_paths, &f.o, &s, &e))) goto done;
    if (d->size > 1)
        fprintf(stderr, "mine: rank %d of %d: %.1f s, decoding %.1f s on its thread, waited %.2f s for frames%s\n", d->rank,
                d->size, s.seconds, s.seconds_decode, s.seconds_wait, s.resumed ? " (resumed)" : "");
    if (d->rank == 0) {
        fprintf(stderr, "mine: %lld frames scored, %lld skipped, in %.1f s (decoding %.1f s on its own thread, waited %.2f s); "
                "the %d best by %s in %s/ranking.csv and %s/index.html\n", s.frames, s.failed, s.seconds, s.seconds_decode,
                s.seconds_wait, s.n_top, mine_rank_name(f.o.by), c.out_dir, c.out_dir);
        if (s.resumed) fprintf(stderr, "mine: resumed after %lld frames done before\n", s.resumed);
    }
    if (s.failed && !rc) { e = s.first_failure; rc = -1; }
done:
    pipeline_close(&p);
    cli_free_list(paths, n_paths);
    cli_free(&c);
    if (rc == -1) return e.code ? e.code : OODSEG_E_FORMAT;   // some frames failed; the run went on
    return rc ? cli_fail(&e) : 0;
}
