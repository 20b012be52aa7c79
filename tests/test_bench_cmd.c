// `oodseg bench` end to end (the family times cover the forward and add up to at most the total,
// the JSON parses, bad names and sizes get clear errors), the profiler's bracket arithmetic, and the
// random-weight models: each architecture's key list, made by its own binder from the config, is
// the released checkpoint's (the golden key manifests, when the assets are there), and a forward on
// random weights stays finite; and the CLI's OpenMP wait policy (cli/wait_policy.c).
#include "test.h"
#include "../core/json.h"
#include "../models/flops.h"
#include "../models/random_weights.h"
#include "../nn/nn.h"
#include "../nn/prof.h"
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char bin[1024];

static int exists(const char *p) { struct stat st; return stat(p, &st) == 0; }

// Runs the tool with `args`, stdout and stderr to tmp/out.txt and tmp/err.txt; the exit status.
static int tool(const char *args) {
    return t_sh("%s %s 2>%s/err.txt >%s/out.txt", bin, args, t_tmpdir(), t_tmpdir());
}

static int file_has(const char *name, const char *needle) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", t_tmpdir(), name);
    char *buf = t_slurp(p, NULL);
    int ok = buf && strstr(buf, needle);
    if (!ok) fprintf(stderr, "  %s was: %s\n", name, buf ? buf : "(unreadable)");
    free(buf);
    return ok;
}

static double num(const json *o, const char *k) {
    const json *v = json_get(o, k);
    return v && v->type == JSON_NUMBER ? v->num : -1;
}

TEST(bench_espnetv2_families_cover_the_forward) {
    char args[1024], path[512];
    snprintf(path, sizeof path, "%s/bench.json", t_tmpdir());
    snprintf(args, sizeof args, "bench --model espnetv2-cityscapes --size 256x128 --runs 1 --threads 2 --json %s", path);
    REQUIRE(tool(args) == 0);
    CHECK(file_has("out.txt", "| **total**"));
    CHECK(file_has("out.txt", "| conv blocks |"));
    CHECK(file_has("out.txt", "| ood method |"));
    size_t len;
    char *text = t_slurp(path, &len);
    REQUIRE(text, "no %s", path);
    err e = {0};
    json *j = json_parse(text, len, path, &e);
    free(text);
    REQUIRE(j, "%s", e.msg);
    const json *sec = json_get(j, "seconds"), *fam = json_get(j, "families"), *mem = json_get(j, "memory_mb");
    REQUIRE(sec && fam && fam->type == JSON_ARRAY && mem);
    double total = num(sec, "median"), sum = 0;
    for (int i = 0; i < fam->n; i++) sum += num(&fam->items[i], "seconds");
    fprintf(stderr, "  total %.4f s, families %.4f s (%d)\n", total, sum, fam->n);
    CHECK(total > 0);
    CHECK(sum <= total * (1 + 1e-9), "families %g s > total %g s", sum, total);
    CHECK(sum >= 0.8 * total, "families %g s < 80%% of total %g s: the brackets miss part of the forward", sum, total);
    CHECK(fam->n >= 5, "only %d families", fam->n);
    CHECK(num(sec, "forward") > 0 && num(sec, "method") > 0);
    CHECK(num(mem, "arena_slab") > 0 && num(mem, "weights") > 3 && num(mem, "maxrss") > 0);
    CHECK(num(j, "parameters") == 813804, "%g parameters", num(j, "parameters"));   // the file's 814284 less the 3 unused module_act
    const json *in = json_get(j, "input");
    CHECK(in && in->n == 2 && in->items[0].i64 == 256 && in->items[1].i64 == 128);
    json_free(j);
}

// --precision reaches the model through the shared config: bf16 runs (a CPU with AVX512-BF16) and
// says so in the table and the JSON; elsewhere it is the model-open error naming the fix.
TEST(bench_precision_bf16) {
    char args[1024], path[512];
    snprintf(path, sizeof path, "%s/bench-bf16.json", t_tmpdir());
    snprintf(args, sizeof args, "bench --model internimage-t-cityscapes --size 256x128 --method maxlogit --runs 1 --threads 1 "
             "--precision bf16 --json %s", path);
    int rc = tool(args);
    if (rc == 2 && file_has("err.txt", "AVX512-BF16")) { SKIP("this CPU has no AVX512-BF16"); return; }
    REQUIRE(rc == 0);
    CHECK(file_has("out.txt", "bf16 GEMMs"));
    size_t len;
    char *text = t_slurp(path, &len);
    REQUIRE(text, "no %s", path);
    CHECK(strstr(text, "\"precision\": \"bf16\"") != NULL);
    free(text);
}

TEST(bench_internimage_counts_flops) {
    if (t_sanitized()) SKIP("InternImage-T (59M parameters) is slow under the sanitizers");
    char args[1024], path[512];
    snprintf(path, sizeof path, "%s/ii.json", t_tmpdir());
    snprintf(args, sizeof args, "bench --model internimage-t-cityscapes --size 64x64 --runs 1 --method maxlogit --json %s", path);
    REQUIRE(tool(args) == 0);
    CHECK(file_has("out.txt", "| dcn gather |"));
    CHECK(file_has("out.txt", "GFLOP/s"));
    size_t len;
    char *text = t_slurp(path, &len);
    err e = {0};
    json *j = text ? json_parse(text, len, path, &e) : NULL;
    free(text);
    REQUIRE(j, "%s", e.msg);
    CHECK(num(j, "gflop_forward") > 1, "%g GFLOP", num(j, "gflop_forward"));
    CHECK(num(j, "parameters") == 58976278, "%g parameters", num(j, "parameters"));   // the manifest's count
    json_free(j);
}

TEST(bench_errors_name_what_is_valid) {
    CHECK(tool("bench --model internimage-q-cityscapes --runs 1") == 2);
    CHECK(file_has("err.txt", "internimage-{t,s,b,l,xl}-{cityscapes,ade20k}"));
    CHECK(file_has("err.txt", "internimage-q-cityscapes"));
    CHECK(tool("bench --model espnetv2-cityscapes --size 250x128 --runs 1") == 2);
    CHECK(file_has("err.txt", "16"));
    CHECK(tool("bench --model espnetv2-cityscapes --size big --runs 1") == 2);
    CHECK(file_has("err.txt", "WxH"));
    CHECK(tool("bench --model espnetv2-cityscapes --runs 0") == 2);
    CHECK(file_has("err.txt", "--runs"));
    CHECK(tool("bench --model espnetv2-cityscapes --precision fp16 --runs 1") == 2);
    CHECK(file_has("err.txt", "fp16") && file_has("err.txt", "bf16"));
    CHECK(tool("bench --size 256x128") == 2);
    CHECK(file_has("err.txt", "espnetv2[-s{0.5,1.0,1.5,2.0}]-cityscapes"));
}

// Brackets nest and the time goes to the innermost family: the families add up to the outer span.
TEST(profiler_charges_the_innermost_family) {
    nn_prof p;
    nn_prof_clear(&p);
    nn_ctx ctx;
    nn_ctx_init(&ctx, 1);
    CHECK(ctx.prof == NULL);
    ctx.prof = &p;
    double t0 = omp_get_wtime();
    PROF_BEGIN(&ctx, PROF_DECODER);
    usleep(20000);
    PROF_BEGIN(&ctx, PROF_RESIZE);
    usleep(20000);
    PROF_END(&ctx);
    PROF_NEXT(&ctx, PROF_HEAD);
    usleep(20000);
    PROF_END(&ctx);
    double span = omp_get_wtime() - t0;
    double sum = 0;
    for (int f = 0; f < PROF_FAMILIES; f++) sum += p.seconds[f];
    CHECK(p.seconds[PROF_DECODER] >= 0.019 && p.seconds[PROF_DECODER] < span, "%g", p.seconds[PROF_DECODER]);
    CHECK(p.seconds[PROF_RESIZE] >= 0.019 && p.seconds[PROF_HEAD] >= 0.019);
    CHECK(sum <= span && sum > 0.9 * span, "families %g s, span %g s", sum, span);
    CHECK(p.depth == 0 && p.calls[PROF_DECODER] == 1 && p.calls[PROF_HEAD] == 1);
    CHECK(!strcmp(nn_prof_name(PROF_OOD), "ood method"));
}

static int ignored(const char *name, const char *const *absent, int n_absent) {
    int skip = strstr(name, "num_batches_tracked") != NULL;
    for (int a = 0; a < n_absent; a++) skip |= strstr(name, absent[a]) != NULL;
    return skip;
}

// The key list each binder makes from its config against the released checkpoint's (manifest);
// keys containing one of `absent` are left out on both sides.
static void same_keys(const char *arch, const char *manifest, const char *const *absent, int n_absent) {
    const char *path = t_asset(manifest);
    if (!path) { fprintf(stderr, "  (no %s: key list not compared)\n", manifest); return; }
    size_t len;
    char *text = t_slurp(path, &len);
    err e = {0};
    json *j = text ? json_parse(text, len, path, &e) : NULL;
    free(text);
    ckpt *ck = random_ckpt(arch, &e);
    const json *keys = j ? json_get(j, "keys") : NULL;
    CHECK(keys && ck, "%s: %s", arch, e.msg);
    if (!keys || !ck) { json_free(j); ckpt_close(ck); return; }
    int matched = 0, expected = 0;
    for (int k = 0; k < keys->n; k++) {
        const char *name = json_get(&keys->items[k], "name")->str;
        const json *sh = json_get(&keys->items[k], "shape");
        if (ignored(name, absent, n_absent)) continue;
        expected++;
        const ckpt_entry *en = ckpt_find(ck, name);
        CHECK(en, "%s: key %s of the release is not made", arch, name);
        if (!en) continue;
        int same = en->ndim == sh->n;
        for (int d = 0; same && d < sh->n; d++) same = en->shape[d] == sh->items[d].i64;
        CHECK(same, "%s: %s has another shape", arch, name);
        matched += same;
    }
    int made = 0;
    for (int k = 0; k < ck->n; k++) made += !ignored(ck->e[k].name, absent, n_absent);
    CHECK(made == expected, "%s: %d keys made, the release has %d", arch, made, expected);
    fprintf(stderr, "  %-26s %d keys as released\n", arch, matched);
    json_free(j);
    ckpt_close(ck);
}

TEST(random_key_lists_are_the_released_ones) {
    same_keys("internimage-t-cityscapes", "golden/manifest-internimage-t-upernet-cityscapes.json", NULL, 0);
    same_keys("internimage-l-ade20k", "golden/manifest-internimage-l-upernet-ade20k.json", NULL, 0);
    same_keys("segformer-b0-ade20k", "golden/manifest-segformer-mit-b0-ade20k.json", NULL, 0);
    same_keys("segformer-b5-cityscapes", "golden/manifest-segformer-mit-b5-cityscapes.json", NULL, 0);
    // backbone manifests: the head keys are not in them, and mask_token (training only) is not made
    const char *head[] = {"decode_head.", "mask_token"};
    same_keys("dinov2-vits14-ade20k", "golden/manifest-dinov2-vits14.json", head, 2);
    same_keys("dinov2-vitg14-ade20k", "golden/manifest-dinov2-vitg14.json", head, 2);
}

// A forward on random weights of every family gives finite logits of the right shape.
TEST(random_models_run_finite) {
    static const struct { const char *arch; int w, h, classes; } cases[] = {
        {"espnet-cityscapes", 64, 32, 20}, {"espnet-camvid", 64, 32, 12}, {"espnetv2-s0.5-cityscapes", 64, 32, 20},
        {"segformer-b0-cityscapes", 64, 64, 19}, {"dinov2-vits14-voc2012-ms", 56, 56, 21},
        {"internimage-t-ade20k", 64, 64, 150}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        err e = {0};
        nn_ctx ctx;
        nn_ctx_init(&ctx, 2);
        model *m = NULL;
        CHECK(random_model_open(cases[c].arch, &ctx, NULL, &m, &e) == 0, "%s: %s", cases[c].arch, e.msg);
        if (!m) continue;
        int w = cases[c].w, h = cases[c].h;
        float *x = malloc(sizeof(float) * 3 * w * h);
        for (int i = 0; i < 3 * w * h; i++) x[i] = (float)((i * 7919) % 200) / 50.0f - 2.0f;
        tensor_list out = {0};
        CHECK(m->forward(m, x, h, w, NULL, &out, &e) == 0, "%s: %s", cases[c].arch, e.msg);
        const tensor *lg = tl_get(&out, "logits");
        CHECK(lg && lg->shape[1] == cases[c].classes && lg->shape[2] == h && lg->shape[3] == w, "%s", cases[c].arch);
        int finite = 1;
        for (int64_t i = 0; lg && i < tensor_numel(lg); i++) finite &= isfinite(lg->data[i]);
        CHECK(finite, "%s: logits not finite", cases[c].arch);
        tl_free(&out);
        free(x);
        model_close(m);
    }
    err e = {0};
    model *m = NULL;
    CHECK(random_model_open("segformer-b9-ade20k", NULL, NULL, &m, &e) == OODSEG_E_ARG && !m);
    CHECK(strstr(e.msg, "segformer-b{0,1,2,3,4,5}") != NULL, "%s", e.msg);
    CHECK(random_model_known("espnetv2-s1.5-cityscapes") && !random_model_known("espnetv2-s1.7-cityscapes"));
}

// ---- FLOPs ----------------------------------------------------------------------------------
// `oodseg bench`'s GFLOP come from the ops as they run (nn/prof.h: PROF_FLOP). Checked op by op
// against each op's formula, and whole networks against counts made elsewhere.

// Random-weight `arch` on `threads` (NULL, with the failure reported, when it does not open).
static model *random_on(const char *arch, int threads) {
    err e = {0};
    nn_ctx ctx;
    nn_ctx_init(&ctx, threads);
    model *m = NULL;
    CHECK(random_model_open(arch, &ctx, NULL, &m, &e) == 0, "%s: %s", arch, e.msg);
    return m;
}

// One forward of m at w x h with a profile: its counts in *p.
static int profiled_forward(model *m, int w, int h, nn_prof *p) {
    err e = {0};
    float *x = t_rand_buf((int64_t)3 * w * h, 2.0f);   // (the counts do not depend on the values)
    tensor_list out = {0};
    nn_prof_clear(p);
    m->ctx.prof = p;
    int rc = m->forward(m, x, h, w, NULL, &out, &e);
    m->ctx.prof = NULL;
    CHECK(rc == 0, "%s: %s", m->desc.arch, e.msg);
    tl_free(&out);
    free(x);
    return rc;
}

static double total_flop(const nn_prof *p) {
    double t = p->flop_outside;
    for (int f = 0; f < PROF_FAMILIES; f++) t += p->flop[f];
    return t;
}

// ESPNet (p 2, q 8) and ESPNetv2 (s 2.0) at 1024x512: the totals of the official PyTorch classes,
// counted by a hook on every Conv2d and ConvTranspose2d (tools/flops_reference.py prints them), on
// 1 and 2 threads. A conv counted twice, or one not counted (ESPNetv2's pyramid branches run on
// worker threads with no profile, and count themselves), moves the total.
TEST(flops_equal_the_pytorch_count) {
    static const struct { const char *arch; double flop; } cases[] = {
        {"espnet-cityscapes", 9418883072.0}, {"espnetv2-cityscapes", 5395485920.0}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int th = 1; th <= 2; th++) {
            nn_prof p;
            model *m = random_on(cases[c].arch, th);
            int rc = m ? profiled_forward(m, 1024, 512, &p) : -1;
            model_close(m);
            if (rc) continue;
            CHECK(total_flop(&p) == cases[c].flop, "%s, %d threads: counted %.0f FLOPs, PyTorch's hooks %.0f",
                  cases[c].arch, th, total_flop(&p), cases[c].flop);
            CHECK(p.flop_outside == 0, "%s: %.0f FLOPs outside every bracket", cases[c].arch, p.flop_outside);
        }
}

// InternImage-T + UperNet: family by family, the analytic count from the architecture's shapes
// (models/flops.c), which knows nothing of the ops or their paths (Winograd, bf16, the fused
// fc1 + GELU).
TEST(flops_equal_the_analytic_count) {
    if (t_sanitized()) SKIP("InternImage-T (59M parameters) is slow under the sanitizers");
    static const struct { int w, h; } sizes[] = {{256, 128}, {200, 136}};
    model *m = random_on("internimage-t-cityscapes", 2);
    REQUIRE(m);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        nn_prof p;
        if (profiled_forward(m, sizes[s].w, sizes[s].h, &p)) continue;
        flop_row rows[FLOP_ROWS_MAX];
        int n = model_flops(m, sizes[s].h, sizes[s].w, rows);
        CHECK(n > 10, "model_flops gave %d rows", n);
        double want[PROF_FAMILIES] = {0};
        for (int i = 0; i < n; i++) want[rows[i].family] += rows[i].gflop * 1e9;
        for (int f = 0; f < PROF_FAMILIES; f++)
            CHECK(fabs(p.flop[f] - want[f]) <= 1e-12 * want[f], "%dx%d, %s: counted %.0f FLOPs, analytic %.0f",
                  sizes[s].w, sizes[s].h, nn_prof_name(f), p.flop[f], want[f]);
        CHECK(p.flop_outside == 0, "%.0f FLOPs outside every bracket", p.flop_outside);
    }
    model_close(m);
}

// Each op's own count, with one bracket open (and with none: then outside), as one table.

TEST(ops_count_their_flops) {
    enum { H = 24, W = 20 };
    nn_ctx ctx;
    nn_ctx_init(&ctx, 2);
    nn_prof p;
    ctx.prof = &p;
    float *x = t_rand_buf(64 * H * W, 0.5f), *wt = t_rand_buf(64 * 64 * 9, 0.5f), *y = malloc(sizeof(float) * 64 * 4 * H * W);
    float *y2 = malloc(sizeof(float) * 64 * 4 * H * W);
    err e = {0};
    // conv2d_forward on each path: im2col, 1x1, grouped, depthwise (strided, dilated), Winograd
    static const struct { int ci, co, k, s, pad, d, g; } convs[] = {
        {8, 16, 3, 1, 1, 1, 1}, {16, 8, 1, 1, 0, 1, 1}, {16, 16, 3, 2, 1, 1, 4}, {16, 16, 3, 2, 1, 1, 16},
        {16, 16, 3, 1, 2, 2, 16}, {64, 64, 3, 1, 1, 1, 1}, {3, 8, 5, 2, 2, 1, 1}};
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) {
        conv2d c = {convs[i].ci, convs[i].co, convs[i].k, convs[i].s, convs[i].pad, convs[i].d, convs[i].g,
                    wt, wt + 5, 0, NULL};
        int ho = conv2d_out_size(H, c.k, c.stride, c.pad, c.dilation), wo = conv2d_out_size(W, c.k, c.stride, c.pad, c.dilation);
        double want = 2.0 * c.c_out * (c.c_in / c.groups) * c.k * c.k * ho * wo;
        nn_ctx cc = ctx;
        if (i == 5) cc.conv_winograd = 2;   // Winograd without prepared weights
        nn_prof_clear(&p);
        nn_prof_begin(&p, PROF_FPN);
        CHECK(conv2d_forward(&cc, &c, x, H, W, y, &e) == 0, "%s", e.msg);
        nn_prof_end(&p);
        CHECK(p.flop[PROF_FPN] == want && total_flop(&p) == want, "conv %zu (winograd %d): %.0f FLOPs, want %.0f", i,
              conv2d_takes_winograd(&cc, &c), p.flop[PROF_FPN], want);
        if (i == 5) CHECK(conv2d_takes_winograd(&cc, &c), "conv 5 should take Winograd");
    }
    // conv2d_forward_many: together (depthwise, same output) and one by one (mixed paths)
    conv2d dw1 = {16, 16, 3, 1, 1, 1, 16, wt, NULL, 0, NULL}, dw2 = {16, 16, 3, 1, 2, 2, 16, wt, NULL, 0, NULL};
    conv2d full = {16, 16, 3, 1, 1, 1, 1, wt, NULL, 0, NULL};
    const conv2d *dws[2] = {&dw1, &dw2}, *mixed[2] = {&dw1, &full};
    float *outs[2] = {y, y2};
    nn_prof_clear(&p);
    CHECK(conv2d_forward_many(&ctx, dws, 2, x, H, W, outs, &e) == 0, "%s", e.msg);
    CHECK(p.flop_outside == 2 * 2.0 * 16 * 9 * H * W, "forward_many together: %.0f outside", p.flop_outside);
    nn_prof_clear(&p);
    CHECK(conv2d_forward_many(&ctx, mixed, 2, x, H, W, outs, &e) == 0, "%s", e.msg);
    CHECK(p.flop_outside == 2.0 * 16 * 9 * H * W * 17, "forward_many mixed: %.0f outside", p.flop_outside);
    // Winograd on concatenated inputs (UperNet's fpn_bottleneck), transposed conv, 1x1 accumulate
    conv2d wc = {64, 32, 3, 1, 1, 1, 1, wt, NULL, 0, NULL};
    conv_cat_part parts[2] = {{x, 32, H, W}, {x + 32 * H * W, 32, H, W}};
    nn_prof_clear(&p);
    CHECK(conv2d_winograd_forward_cat(&ctx, &wc, parts, 2, H, W, y, &e) == 0, "%s", e.msg);
    CHECK(p.flop_outside == 2.0 * 32 * 64 * 9 * H * W, "winograd cat: %.0f", p.flop_outside);
    nn_prof_clear(&p);
    CHECK(conv_transpose2x2_forward(&ctx, wt, 16, 8, x, H, W, y, &e) == 0, "%s", e.msg);
    CHECK(p.flop_outside == 2.0 * 16 * 8 * 4 * H * W, "transposed: %.0f", p.flop_outside);
    conv2d acc = {3, 8, 1, 1, 0, 1, 1, wt, wt + 30, 0, NULL};
    nn_prof_clear(&p);
    conv2d_1x1_accumulate(&ctx, &acc, x, (int64_t)H * W, NULL, y);
    CHECK(p.flop_outside == 2.0 * 8 * 3 * H * W, "1x1 accumulate: %.0f", p.flop_outside);
    // linears, attention, DCNv3's sampling, the channels-last depthwise conv
    nn_prof_clear(&p);
    linear_forward(&ctx, x, 100, 48, wt, wt + 1, 40, y);
    linear_gelu_forward(&ctx, x, 100, 48, wt, wt + 1, 40, y);
    CHECK(p.flop_outside == 2 * 2.0 * 100 * 48 * 40, "linears: %.0f", p.flop_outside);
    nn_prof_clear(&p);
    CHECK(attention_forward(&ctx, x, x + 4000, x + 8000, 50, 30, 2, 16, 0.25f, y, &e) == 0, "%s", e.msg);
    CHECK(p.flop_outside == 4.0 * 2 * 50 * 30 * 16, "attention: %.0f", p.flop_outside);
    float *off = t_rand_buf(H * W * 2 * 18, 0.5f), *mask = t_rand_buf(H * W * 2 * 9, 0.5f);
    nn_prof_clear(&p);
    dcnv3_core(&ctx, x, off, mask, H, W, 2, 8, 1.0f, y);
    CHECK(p.flop_outside == 10.0 * H * W * 16 * 9, "dcnv3_core: %.0f", p.flop_outside);
    nn_prof_clear(&p);
    dwconv3x3_cl(&ctx, x, H, W, 16, wt, NULL, y);
    CHECK(p.flop_outside == 2.0 * 9 * H * W * 16, "dwconv3x3_cl: %.0f", p.flop_outside);
    // without a profile nothing is counted (and nothing breaks)
    ctx.prof = NULL;
    linear_forward(&ctx, x, 100, 48, wt, wt + 1, 40, y);
    free(off), free(mask), free(x), free(wt), free(y), free(y2);
}

// The program's wait policy (cli/wait_policy.c): chosen and re-executed once when nobody chose,
// the user's own and an MPI launcher's environment left alone.
static void omp_wait_is(const char *env, const char *want) {
    char cmd[3000], path[512];
    snprintf(path, sizeof path, "%s/wait.json", t_tmpdir());
    snprintf(cmd, sizeof cmd, "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u OODSEG_WAIT_POLICY_SET -u OMPI_COMM_WORLD_SIZE "
             "-u PMI_RANK -u PMIX_RANK %s %s bench --model espnetv2-s0.5-cityscapes --size 64x32 --runs 1 --method maxlogit --json %s "
             ">/dev/null 2>&1", env, bin, path);
    unlink(path);
    CHECK(t_sh("%s", cmd) == 0, "%s", cmd);
    char *text = t_slurp(path, NULL);
    CHECK(text && strstr(text, want), "%s: wanted %s in %s", env, want, text ? text : "(no file)");
    free(text);
}

TEST(wait_policy_is_the_programs_unless_chosen) {
    omp_wait_is("", "\"omp_wait\": \"OMP_WAIT_POLICY=passive (set by oodseg)\"");
    omp_wait_is("OMP_WAIT_POLICY=passive", "\"OMP_WAIT_POLICY=passive (from the environment)\"");
    omp_wait_is("GOMP_SPINCOUNT=777", "\"GOMP_SPINCOUNT=777 (from the environment)\"");
    omp_wait_is("OMPI_COMM_WORLD_SIZE=1", "\"libgomp's default\"");
    omp_wait_is("OODSEG_WAIT_POLICY_SET=1", "\"libgomp's default\"");
}

int main(int argc, char **argv) {
    (void)argc;
    snprintf(bin, sizeof bin, "%s", t_cli_path(argv[0]));
    if (!exists(bin)) { fprintf(stderr, "the CLI %s is not built\n", bin); return 1; }
    RUN(profiler_charges_the_innermost_family);
    RUN(random_key_lists_are_the_released_ones);
    RUN(random_models_run_finite);
    RUN(flops_equal_the_pytorch_count);
    RUN(flops_equal_the_analytic_count);
    RUN(ops_count_their_flops);
    RUN(bench_espnetv2_families_cover_the_forward);
    RUN(bench_precision_bf16);
    RUN(bench_internimage_counts_flops);
    RUN(bench_errors_name_what_is_valid);
    RUN(wait_policy_is_the_programs_unless_chosen);
    return t_finish(argv[0]);
}
