// The options `oodseg eval` and `oodseg metrics` share: which dataset and which part of it, the
// FPR95 convention, the SMIYC component metrics, the shard state and the HTML page.
#include "cli.h"
#include "commands_eval.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void cli_eval_flags_init(cli_eval_flags *f) {
    memset(f, 0, sizeof *f);
    f->comp = -1;
    f->conn = 8;
    f->comp_thr = NAN;
    f->conv = FPR_FIRST_GE;
}

static int count_arg(const char *flag, const char *v, int *out, err *e) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || end == v || x < 1 || x > 1 << 30)
        return err_set(e, OODSEG_E_ARG, "%s '%s': expected a count of images >= 1 (leave it out for all)", flag, v);
    *out = (int)x;
    return OODSEG_OK;
}

int cli_eval_switch(cli_eval_flags *f, const char *k) {
    if (!strcmp(k, "--components")) f->comp = 1;
    else if (!strcmp(k, "--no-components")) f->comp = 0;
    else if (!strcmp(k, "--no-html")) f->no_html = 1;
    else return 0;
    return 1;
}

int cli_eval_flag(cli_eval_flags *f, const char *k, const char *v, err *e) {
    char *end;
    if (!strcmp(k, "--dataset")) f->spec = v;
    else if (!strcmp(k, "--limit")) return count_arg(k, v, &f->limit, e) ? -1 : 1;
    else if (!strcmp(k, "--shard")) return dataset_parse_shard(v, &f->shard_i, &f->shard_n, e) ? -1 : 1;
    else if (!strcmp(k, "--save-state")) f->save_state = v;
    else if (!strcmp(k, "--fpr-convention")) return fpr_conv_parse(v, &f->conv, e) ? -1 : 1;
    else if (!strcmp(k, "--comp-threshold")) {
        f->comp_thr = strtod(v, &end);
        if (*end || end == v) return err_set(e, OODSEG_E_ARG, "--comp-threshold '%s': expected a number", v), -1;
    } else if (!strcmp(k, "--connectivity")) {
        f->conn = atoi(v);
        if (f->conn != 4 && f->conn != 8) return err_set(e, OODSEG_E_ARG, "--connectivity '%s': use 4 or 8", v), -1;
    } else if (!strcmp(k, "--images")) f->g.images = v;
    else if (!strcmp(k, "--labels")) f->g.labels = v;
    else if (!strcmp(k, "--label-suffix")) f->g.label_suffix = v;
    else if (!strcmp(k, "--ood")) f->g.ood = v;
    else if (!strcmp(k, "--ignore")) f->g.ignore = v;
    else if (!strcmp(k, "--id")) f->g.id = v;
    else return 0;
    return 1;
}

void cli_eval_opts(const cli_eval_flags *f, int smiyc_track, evaluator_opts *eo) {
    evaluator_opts_default(eo, smiyc_track);
    eo->conv = f->conv;
    if (f->comp >= 0) eo->components = f->comp;
    eo->comp.connectivity = f->conn;
    eo->comp.threshold = f->comp_thr;
}

int cli_open_dataset(const cli_eval_flags *f, dataset *ds, err *e) {
    if (dataset_open(f->spec, &f->g, ds, e) || dataset_select(ds, f->limit, f->shard_i, f->shard_n, e)) return e->code;
    if (ds->n == 0)
        return err_set(e, OODSEG_E_ARG, "--shard %d/%d selects no image of the %s dataset", f->shard_i, f->shard_n, ds->name);
    return OODSEG_OK;
}
