// `oodseg bench` end to end (the family times cover the forward and add up to at most the total,
// the JSON parses, bad names and sizes get clear errors), the profiler's bracket arithmetic, and the
// random-weight models: each architecture's key list, made by its own binder from the config, is
// the released checkpoint's (the golden key manifests, when the assets are there), and a forward on
// random weights stays finite; and the CLI's OpenMP wait policy (cli/wait_policy.c).
#include "test.h"
#include "../core/json.h"
#include "../models/random_weights.h"
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
    RUN(bench_espnetv2_families_cover_the_forward);
    RUN(bench_precision_bf16);
    RUN(bench_internimage_counts_flops);
    RUN(bench_errors_name_what_is_valid);
    RUN(wait_policy_is_the_programs_unless_chosen);
    return t_finish(argv[0]);
}
