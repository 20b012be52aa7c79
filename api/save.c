// What `oodseg score` and `oodseg eval` write for one image: the score maps under one naming rule
// (<stem>_<method>_score.npy whatever the number of methods), the pictures that explain
// themselves (io/pictures.h: each heat map names its score and scale), and the HTML report's
// thumbnails. The names live here and nowhere else, so the CLI can tell its own outputs from
// inputs and refuse to overwrite them.
#include "../io/file.h"
#include "pipeline.h"
#include "../eval/html.h"
#include "../io/npy.h"
#include "../io/thumbnail.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

// The suffixes of every file named <stem>_<method>_<suffix> or <stem>_<suffix> (the last, _seg,
// once per image), the pictures in each format --pictures can write.
static const char *const outputs[] = {"_score.npy", "_heat.png", "_overlay.png", "_clusters.png", "_heat.jpg",
                                      "_overlay.jpg", "_clusters.jpg", "_heat.webp", "_overlay.webp", "_clusters.webp",
                                      "_seg.jpg", "_seg.webp", "_seg.png"};
#define N_OUTPUTS (int)(sizeof outputs / sizeof *outputs)
#define N_PER_IMAGE 3   // the last three: <stem>_seg.*

// What each method's colour bar says: the score's name and its unit.
static const struct { const char *method, *label; int logits; } score_labels[] = {
    {"msp", "msp = 1 - max softmax probability (0..1)", 0},
    {"maxlogit", "maxlogit = -max logit (logits)", 1},
    {"entropy", "entropy of the softmax (nats)", 0},
    {"energy", "energy = -T logsumexp(logits/T) (logits)", 1},
    {"kmeans", "kmeans = -max logit + B in OoD clusters (logits)", 1},
    {"centroid", "centroid = distance to the ID class centroids (feature units)", 0},
};

static int label_index(const char *method) {
    for (size_t i = 0; i < sizeof score_labels / sizeof *score_labels; i++)
        if (!strcmp(score_labels[i].method, method)) return (int)i;
    return -1;
}

int pipeline_is_output_name(const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < N_OUTPUTS; i++) {
        size_t l = strlen(outputs[i]);
        if (n > l && !strcmp(name + n - l, outputs[i])) return 1;
    }
    return 0;
}

int pipeline_outputs_exist(const pipeline *p, const char *dir, const char *stem, char *first, size_t n) {
    struct stat st;
    char path[4400];
    for (int k = 0; k < p->n_methods; k++)
        for (int i = 0; i < N_OUTPUTS; i++) {
            if (i >= N_OUTPUTS - N_PER_IMAGE) snprintf(path, sizeof path, "%s/%s%s", dir, stem, outputs[i]);
            else snprintf(path, sizeof path, "%s/%s_%s%s", dir, stem, pipeline_method_name(p, k), outputs[i]);
            if (stat(path, &st) == 0) { snprintf(first, n, "%s", path); return 1; }
        }
    return 0;
}

// The max-logit percentiles of a calibration file ("pct P V P V ..." of `oodseg calibrate`):
// the values at the 0.5th and 99th percentiles.
static int read_calibration(const char *path, double *p_lo, double *p_hi, err *e) {
    FILE *f = io_fopen_regular(path, "calibration", NULL, e);
    if (!f) return e->code;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        if (strncmp(line, "pct ", 4)) continue;
        char *s = line + 4, *end;
        for (;;) {
            double pc = strtod(s, &end);
            if (end == s) break;
            s = end;
            double v = strtod(s, &end);
            if (end == s) break;
            s = end;
            if (pc == 0.5) { *p_lo = v; found |= 1; }
            if (pc == 99) { *p_hi = v; found |= 2; }
        }
        found = found == 3;
    }
    fclose(f);
    if (!found)
        return err_set(e, OODSEG_E_FORMAT, "--scale calibrated:%s: no max-logit percentiles (a 'pct' line with 0.5 and 99) in the file; write it with `oodseg calibrate`", path);
    return OODSEG_OK;
}

int pipeline_set_scale(pipeline *p, const char *spec, err *e) {
    memset(&p->scale, 0, sizeof p->scale);
    p->scale_logits_only = 0;
    if (!spec || !*spec || !strcmp(spec, "image")) return OODSEG_OK;
    if (!strncmp(spec, "fixed:", 6)) {
        char *end;
        double lo = strtod(spec + 6, &end), hi = NAN;
        if (*end == ',') hi = strtod(end + 1, &end);
        if (*end || !isfinite(lo) || !isfinite(hi) || !(hi > lo))
            return err_set(e, OODSEG_E_ARG, "--scale '%s': expected fixed:LO,HI with LO < HI, e.g. fixed:-20,0", spec);
        p->scale = (pictures_scale){1, lo, hi, p->scale_note};
        snprintf(p->scale_note, sizeof p->scale_note, "fixed scale %g..%g", lo, hi);
        return OODSEG_OK;
    }
    if (!strncmp(spec, "calibrated:", 11)) {
        double p_lo, p_hi;
        if (read_calibration(spec + 11, &p_lo, &p_hi, e)) return e->code;
        // scores are -max logit: the high max-logit percentile is the low end of the bar
        p->scale = (pictures_scale){1, -p_hi, -p_lo, p->scale_note};
        p->scale_logits_only = 1;
        snprintf(p->scale_note, sizeof p->scale_note, "fixed scale from calibration (ID max-logit 0.5..99th pct)");
        return OODSEG_OK;
    }
    return err_set(e, OODSEG_E_ARG, "--scale '%s': use image (each image's min..max), fixed:LO,HI or calibrated:FILE", spec);
}

// Method k's view of the pictures: its score, label, scale, and the clusters when it makes them.
static void picture_input(const pipeline *p, const image *img, const pipeline_out *o, int k, pictures_in *in,
                          char *rule, size_t n) {
    const char *name = pipeline_method_name(p, k);
    int li = label_index(name);
    memset(in, 0, sizeof *in);
    in->img = img;
    in->score = o->scores[k];
    in->score_label = li >= 0 ? score_labels[li].label : name;
    if (!p->scale_logits_only || (li >= 0 && score_labels[li].logits)) in->scale = p->scale;
    in->pred = o->pred;
    in->palette = p->m->desc.palette;
    in->class_names = p->m->desc.class_names;
    in->n_classes = p->m->desc.num_outputs;
    if ((ood_method_def_of(p->methods[k])->flags & OOD_MAKES_CLUSTERS) && o->clusters) {
        const ood_options *oo = ood_method_options(p->methods[k]);
        in->clusters = o->clusters;
        in->k = o->k;
        in->ood_flag = o->ood_flag;
        char how[80] = "";
        if (oo->tau_mode == TAU_PERCENTILE) snprintf(how, sizeof how, " (%gth percentile in this image)", oo->tau);
        else if (oo->tau_mode == TAU_CALIBRATED) snprintf(how, sizeof how, " (calibrated)");
        if (oo->stat == STAT_MEAN) snprintf(rule, n, "OoD: cluster mean max-logit < tau = %.4g%s", o->tau_used, how);
        else snprintf(rule, n, "OoD: share of pixels with max-logit < tau = %.4g%s above rho = %g", o->tau_used, how, oo->rho);
        if (oo->score == SCORE_S2) in->score_label = "kmeans S2 = -cluster mean max logit (logits)";
        in->cluster_rule = rule;
    }
}

static int save_pictures(const pipeline *p, const image *img, const pipeline_out *o, const char *dir,
                         const char *stem, pictures_format f, err *e) {
    for (int k = 0; k < p->n_methods && f != PICTURES_NONE; k++) {
        pictures_in in;
        char rule[160];
        picture_input(p, img, o, k, &in, rule, sizeof rule);
        if (pictures_save_as(dir, stem, pipeline_method_name(p, k), &in, k == 0, f, e)) return e->code;
    }
    return OODSEG_OK;
}

int pipeline_save_pictures(const pipeline *p, const image *img, const pipeline_out *o, const char *dir,
                           const char *stem, err *e) {
    return save_pictures(p, img, o, dir, stem, PICTURES_PNG, e);
}

int pipeline_save_pictures_as(const pipeline *p, const image *img, const pipeline_out *o, const char *dir,
                              const char *stem, pictures_format f, err *e) {
    return save_pictures(p, img, o, dir, stem, f ? f : PICTURES_PNG, e);
}

int pipeline_save_with(const pipeline *p, const image *img, const pipeline_out *o, const char *dir,
                       const char *stem, const pipeline_save_opts *so, err *e) {
    for (int k = 0; k < p->n_methods && !(so && so->no_npy); k++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s_%s_score.npy", dir, stem, pipeline_method_name(p, k));
        int64_t shape[2] = {o->h, o->w};
        if (npy_write_f32(path, o->scores[k], 2, shape, e)) return e->code;
    }
    return save_pictures(p, img, o, dir, stem, so && so->pictures ? so->pictures : PICTURES_PNG, e);
}

int pipeline_save(const pipeline *p, const image *img, const pipeline_out *o, const char *dir,
                  const char *stem, err *e) {
    return pipeline_save_with(p, img, o, dir, stem, NULL, e);
}

int pipeline_outputs_complete(const pipeline *p, const pipeline_save_opts *so, const char *dir, const char *stem) {
    struct stat st;
    char path[4400];
    pictures_format f = so && so->pictures ? so->pictures : PICTURES_PNG;
    for (int k = 0; k < p->n_methods; k++) {
        const char *m = pipeline_method_name(p, k);
        snprintf(path, sizeof path, "%s/%s_%s_score.npy", dir, stem, m);
        if (!(so && so->no_npy) && stat(path, &st) != 0) return 0;
        // heat, overlay, and clusters when the method makes them (it always does on an image)
        int clusters = (ood_method_def_of(p->methods[k])->flags & OOD_MAKES_CLUSTERS) != 0;
        for (int q = 0; q < 2 + clusters && f != PICTURES_NONE; q++) {
            snprintf(path, sizeof path, "%s/%s_%s_%s.%s", dir, stem, m, q == 0 ? "heat" : q == 1 ? "overlay" : "clusters",
                     pictures_format_ext(f));
            if (stat(path, &st) != 0) return 0;
        }
    }
    snprintf(path, sizeof path, "%s/%s_seg.%s", dir, stem, pictures_format_ext(f));
    return f == PICTURES_NONE || !p->m->desc.palette || p->m->desc.num_outputs < 1 || stat(path, &st) == 0;
}

// ---- thumbnails ------------------------------------------------------------------------------
static int save_thumb(const char *dir, const char *stem, const char *method, const char *kind, image *im, err *e) {
    char name[1024], path[4400];
    html_thumb_name(name, sizeof name, stem, method, kind);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = image_save_jpeg(path, im, HTML_THUMB_QUALITY, e);
    image_free(im);
    return rc;
}

// The labels over the image: ID dimmed, OoD red, ignore dark blue.
static void paint_labels(image *t, const uint8_t *lab) {
    static const uint8_t red[3] = {255, 40, 40}, ign[3] = {20, 20, 70};
    for (int64_t q = 0; q < (int64_t)t->w * t->h; q++) {
        uint8_t *px = t->px + q * 3;
        for (int c = 0; c < 3; c++)
            px[c] = lab[q] == 1 ? (uint8_t)((3 * px[c] + 7 * red[c]) / 10) : lab[q] == 255 ? ign[c] : (uint8_t)(px[c] * 2 / 5);
    }
}

int pipeline_save_thumbs(const pipeline *p, const image *img, const uint8_t *labels, const pipeline_out *o,
                         const char *dir, const char *stem, err *e) {
    image rgb = {0}, t = {0}, heat = {0}, over = {0}, lt = {0};
    float *ts = NULL;
    int tw, th, rc;
    thumb_size(img->w, img->h, HTML_THUMB_W, &tw, &th);
    if ((rc = image_downscale(img, tw, th, &t, e))) return rc;
    if (t.c == 1) {   // gray: the pictures and the label colours need RGB
        if ((rc = image_downscale(img, tw, th, &rgb, e))) goto done;
        image_free(&t);
        if (!(t.px = err_malloc(e, (size_t)tw * th * 3, "a thumbnail"))) { rc = e->code; goto done; }
        t.w = tw; t.h = th; t.c = 3;
        for (int64_t q = 0; q < (int64_t)tw * th; q++) memset(t.px + q * 3, rgb.px[q], 3);
    }
    image copy = {tw, th, 3, NULL};
    if (!(copy.px = err_malloc(e, (size_t)tw * th * 3, "a thumbnail"))) { rc = e->code; goto done; }
    memcpy(copy.px, t.px, (size_t)tw * th * 3);
    if ((rc = save_thumb(dir, stem, NULL, "image", &copy, e))) goto done;
    if (labels) {
        image lab = {img->w, img->h, 1, (uint8_t *)labels};
        // nearest labels, not a mean: the box's centre pixel
        if (!(lt.px = err_malloc(e, (size_t)tw * th, "a thumbnail"))) { rc = e->code; goto done; }
        lt.w = tw; lt.h = th; lt.c = 1;
        for (int y = 0; y < th; y++)
            for (int x = 0; x < tw; x++)
                lt.px[(int64_t)y * tw + x] = lab.px[(int64_t)((2 * y + 1) * (int64_t)img->h / (2 * th)) * img->w +
                                                     (2 * x + 1) * (int64_t)img->w / (2 * tw)];
        image l3 = {tw, th, 3, NULL};
        if (!(l3.px = err_malloc(e, (size_t)tw * th * 3, "a thumbnail"))) { rc = e->code; goto done; }
        memcpy(l3.px, t.px, (size_t)tw * th * 3);
        paint_labels(&l3, lt.px);
        if ((rc = save_thumb(dir, stem, NULL, "label", &l3, e))) goto done;
    }
    for (int k = 0; k < p->n_methods && !rc; k++) {
        pictures_in in;
        char rule[160];
        picture_input(p, img, o, k, &in, rule, sizeof rule);
        // the thumbnail's colours follow the full map's range, and its bar says which range that is
        double lo, hi;
        pictures_range(&in, (int64_t)img->w * img->h, &lo, &hi);
        if (!in.scale.fixed) in.scale = (pictures_scale){1, lo, hi, "per-image min..max"};
        if ((rc = score_downscale(o->scores[k], img->w, img->h, tw, th, &ts, e))) break;
        in.img = &t;
        in.score = ts;
        in.clusters = NULL;
        if (!(rc = pictures_heat(&in, &heat, &over, e)) && !(rc = save_thumb(dir, stem, pipeline_method_name(p, k), "heat", &heat, e)))
            rc = save_thumb(dir, stem, pipeline_method_name(p, k), "overlay", &over, e);
        free(ts);
        ts = NULL;
    }
done:
    image_free(&rgb); image_free(&t); image_free(&heat); image_free(&over); image_free(&lt);
    free(ts);
    return rc;
}

void pipeline_pictures_in(const pipeline *p, const image *img, const pipeline_out *o, int k, pictures_in *in,
                          char *rule, size_t n) {
    picture_input(p, img, o, k, in, rule, n);
}
