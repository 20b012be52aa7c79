// `oodseg eval` interrupted and resumed: the CLI runs as a child process on the repository's demo
// frames (assets/demo, CamVid-OOD layout) with the default model at a small input size. A first
// interrupt saves the images done (a whole chunk, or the prefix of one) and no report, exits 130
// (SIGINT) or 143 (SIGTERM) and says how to resume; --resume then gives metrics.json, the SMIYC
// components and the --save-state file byte for byte as an uninterrupted run. A second SIGINT
// exits at once, leaving no temporary file. The deterministic cases stop the run with the CLI's
// test hook (OODSEG_TEST_INTERRUPT_AFTER=N: the cancel flag raised once image N is done); the
// real-signal cases use a copy of the frames under 10 names and wait generously for the files.
#include "test.h"
#include "../core/json.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char bin[1024], demo[1200];
static const char *ARGS = "--size 256x192 --methods maxlogit,kmeans --threads 1 --no-html --components";

static int exists(const char *p) { struct stat st; return stat(p, &st) == 0; }

static int exists_in(const char *dir, const char *name) {
    char p[1400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return exists(p);
}

static int has(const char *path, const char *needle) {
    size_t n;
    char *s = t_slurp(path, &n);
    int ok = s && strstr(s, needle);
    if (!ok) fprintf(stderr, "  %s lacks '%s'; it was:\n%.3000s\n", path, needle, s ? s : "(unreadable)");
    free(s);
    return ok;
}

// No report, no state, no temporary file anywhere under out: what an interrupted run may leave.
static void check_nothing_partial(const char *out, const char *state) {
    const char *reports[] = {"metrics.json", "metrics.md", "metrics.csv", "per_image.csv", "pr_curve.svg",
                             "roc_curve.svg", "index.html"};
    for (int i = 0; i < 7; i++) CHECK(!exists_in(out, reports[i]), "an interrupted run wrote %s", reports[i]);
    CHECK(!exists(state), "an interrupted run wrote its --save-state file");
    CHECK(t_sh("test -z \"$(find '%s' -name '*.tmp.*')\"", out) == 0, "temporary files left under %s", out);
}

// eval of dataset into out (and out.state), extra options; its stderr in out.log; the exit status.
static int eval_run(const char *env, const char *dataset, const char *out, const char *extra) {
    return t_sh("%s %s eval --dataset camvid-ood:%s %s %s --save-state %s.state -o %s > /dev/null 2> %s.log", env, bin,
                dataset, ARGS, extra, out, out, out);
}

// The uninterrupted run of dataset (once per dataset).
static void reference(const char *dataset, const char *ref) {
    if (!exists_in(ref, "metrics.json")) eval_run("", dataset, ref, "");
}

static void stop_and_resume(const char *name, int after, int chunk, const char *piece) {
    char ref[700], out[700], extra[200], env[100], log[800], p[1400];
    snprintf(ref, sizeof ref, "%s/ref", t_tmpdir());
    snprintf(out, sizeof out, "%s/%s", t_tmpdir(), name);
    snprintf(log, sizeof log, "%s.log", out);
    snprintf(extra, sizeof extra, "--checkpoint-every %d", chunk);
    snprintf(env, sizeof env, "OODSEG_TEST_INTERRUPT_AFTER=%d", after);
    reference(demo, ref);
    REQUIRE(exists_in(ref, "metrics.json"), "the uninterrupted run failed (see %s.log)", ref);
    snprintf(p, sizeof p, "%s/metrics.json", ref);
    REQUIRE(has(p, "\"sIoU_gt\""), "the reference has no component metrics");
    int rc = eval_run(env, demo, out, extra);
    CHECK(rc == 130, "interrupted eval exited %d, expected 130", rc);
    CHECK(has(log, "eval: interrupted") && has(log, "--resume"), "no word on how to resume");
    snprintf(p, sizeof p, "%s.state", out);
    check_nothing_partial(out, p);
    snprintf(p, sizeof p, "%s/chunks/%s.state", out, piece);
    CHECK(exists(p), "the images done were not saved as %s", piece);
    snprintf(extra, sizeof extra, "--checkpoint-every %d --resume", chunk);
    REQUIRE(eval_run("", demo, out, extra) == 0, "resume failed (see %s)", log);
    char word[64];
    snprintf(word, sizeof word, "resumed %d images", after);
    CHECK(has(log, word));
    CHECK(t_sh("cmp %s/metrics.json %s/metrics.json", ref, out) == 0, "metrics.json after resume differs");
    CHECK(t_sh("cmp %s.state %s.state", ref, out) == 0, "the --save-state file after resume differs");
    CHECK(!exists_in(out, "chunks"), "the chunks of a finished run were not removed");
}

TEST(interrupt_after_the_first_chunk_then_resume_is_bit_identical) {
    stop_and_resume("whole", 2, 2, "chunk-000000-000002");
}

TEST(interrupt_inside_a_chunk_saves_the_images_done) {
    stop_and_resume("prefix", 1, 3, "chunk-000000-000001");
}

// A run without --resume never merges pieces left by another run: it removes them first.
TEST(a_fresh_run_ignores_stale_pieces) {
    char ref[700], out[700];
    snprintf(ref, sizeof ref, "%s/ref", t_tmpdir());
    snprintf(out, sizeof out, "%s/fresh", t_tmpdir());
    reference(demo, ref);
    REQUIRE(t_sh("mkdir -p %s/chunks && echo junk > %s/chunks/chunk-000000-000001.state && "
                 "echo junk > %s/chunks/chunk-000000-000001.rows", out, out, out) == 0);
    REQUIRE(eval_run("", demo, out, "--checkpoint-every 2") == 0, "a fresh run over stale pieces failed");
    CHECK(t_sh("cmp %s/metrics.json %s/metrics.json", ref, out) == 0, "metrics.json differs");
}

static json *load_json(const char *path) {
    size_t n;
    char *s = t_slurp(path, &n);
    err e = {0};
    json *j = s ? json_parse(s, n, path, &e) : NULL;
    free(s);
    return j;
}

// eval's components (rank 0's pass over the saved maps after the merge) against `oodseg metrics`
// on those maps, which runs the in-memory evaluator of one process (evaluator_add, then
// evaluator_finish's component pass): the same numbers, exactly.
TEST(components_equal_the_in_memory_evaluator) {
    char ref[700], m[700], p[1400];
    snprintf(ref, sizeof ref, "%s/ref", t_tmpdir());
    reference(demo, ref);
    snprintf(p, sizeof p, "%s/metrics.json", ref);
    json *a = load_json(p);
    REQUIRE(a, "no metrics.json from eval");
    const char *methods[] = {"maxlogit", "kmeans"};
    const char *keys[] = {"threshold", "sIoU_gt", "PPV", "F1_mean", "n_gt_components", "n_pred_components"};
    for (int k = 0; k < 2; k++) {
        snprintf(m, sizeof m, "%s/mem_%s", t_tmpdir(), methods[k]);
        CHECK(t_sh("%s metrics --dataset camvid-ood:%s --scores %s/scores/%s --components -o %s > /dev/null 2>&1",
                   bin, demo, ref, methods[k], m) == 0, "oodseg metrics failed");
        snprintf(p, sizeof p, "%s/metrics.json", m);
        json *b = load_json(p);
        if (!b) { CHECK(b, "no metrics.json from oodseg metrics"); continue; }
        const json *ca = json_get(json_get(json_get(a, "methods"), methods[k]), "components");
        const json *cb = json_get(json_get(json_get(b, "methods"), methods[k]), "components");
        CHECK(ca && cb, "%s: no components", methods[k]);
        for (int i = 0; ca && cb && i < 6; i++) {
            const json *x = json_get(ca, keys[i]), *y = json_get(cb, keys[i]);
            CHECK(x && y && x->type == JSON_NUMBER && y->type == JSON_NUMBER && x->num == y->num,
                  "%s %s: eval %.17g, in memory %.17g", methods[k], keys[i], x ? x->num : NAN, y ? y->num : NAN);
        }
        json_free(b);
    }
    json_free(a);
}

// ---- real signals -----------------------------------------------------------------------------
// 10 frames (the 3 demo ones under other names), so that a run lasts long enough to be signalled.
static const char *many_frames(void) {
    static char d[700];
    snprintf(d, sizeof d, "%s/many", t_tmpdir());
    if (exists_in(d, "test_ood.txt")) return d;
    t_sh("mkdir -p %s/test_ood %s/testannot_ood && for i in $(seq 10 19); do "
         "f=$(ls %s/test_ood | sed -n \"$(( i %% 3 + 1 ))p\"); cp %s/test_ood/$f %s/test_ood/f$i.png; "
         "cp %s/testannot_ood/$f %s/testannot_ood/f$i.png; echo test_ood/f$i.png testannot_ood/f$i.png >> %s/test_ood.txt; done",
         d, d, demo, demo, d, demo, d, d);
    return d;
}

// Starts eval in the background, waits (up to 60 s) for its first finished chunk, sends the
// signal, and for a second one waits until the first was handled (its message in the log); returns
// the exit status.
static int signalled_run(const char *ds, const char *out, const char *extra, const char *sig, int twice) {
    return t_sh("%s eval --dataset camvid-ood:%s %s %s --checkpoint-every 1 --save-state %s.state -o %s > /dev/null 2> %s.log & "
                "pid=$!; for i in $(seq 1 1200); do [ -e %s/chunks/chunk-000000-000001.state ] && break; sleep 0.05; done; "
                "kill -%s $pid; if [ %d = 1 ]; then for i in $(seq 1 1200); do grep -q 'oodseg: interrupted:' %s.log && break; "
                "sleep 0.01; done; kill -%s $pid; fi; wait $pid",
                bin, ds, ARGS, extra, out, out, out, out, sig, twice, out, sig);
}

static void real_signal(const char *name, const char *sig, int code) {
    const char *ds = many_frames();
    char ref[700], out[700], log[800], st[800];
    snprintf(ref, sizeof ref, "%s/many_ref", t_tmpdir());
    snprintf(out, sizeof out, "%s/%s", t_tmpdir(), name);
    snprintf(log, sizeof log, "%s.log", out);
    snprintf(st, sizeof st, "%s.state", out);
    int rc = signalled_run(ds, out, "", sig, 0);
    CHECK(rc == code, "eval stopped by SIG%s exited %d, expected %d (see %s)", sig, rc, code, log);
    CHECK(has(log, "Resume with the same command and --resume"));
    check_nothing_partial(out, st);
    REQUIRE(eval_run("", ds, out, "--checkpoint-every 1 --resume") == 0, "resume failed (see %s)", log);
    CHECK(has(log, "resumed"));
    reference(ds, ref);
    CHECK(t_sh("cmp %s/metrics.json %s/metrics.json", ref, out) == 0, "metrics.json after resume differs");
    CHECK(t_sh("cmp %s.state %s.state", ref, out) == 0, "the --save-state file after resume differs");
}

// --resume over the pieces of another dataset: refused, naming the image, never merged.
TEST(a_resume_on_other_images_is_refused) {
    const char *many = many_frames();
    char out[700], log[800];
    snprintf(out, sizeof out, "%s/other", t_tmpdir());
    snprintf(log, sizeof log, "%s.log", out);
    REQUIRE(eval_run("OODSEG_TEST_INTERRUPT_AFTER=2", demo, out, "--checkpoint-every 2") == 130);
    char ds[800];
    snprintf(ds, sizeof ds, "%s --limit 3", many);
    int rc = eval_run("", ds, out, "--checkpoint-every 2 --resume");
    CHECK(rc == 4, "resume over another dataset's pieces exited %d, expected 4", rc);
    CHECK(has(log, "another dataset") && has(log, "0001TP_008550"));
    CHECK(!exists_in(out, "metrics.json"), "a report was written");
}

TEST(sigint_then_resume) { real_signal("sigint", "INT", 130); }
TEST(sigterm_exits_143_then_resume) { real_signal("sigterm", "TERM", 143); }

// The second SIGINT comes while an image is being scored (a larger input, so that it lasts): the
// handler removes the live temporary files and exits 130 at once.
TEST(a_second_sigint_stops_at_once) {
    const char *ds = many_frames();
    char out[700], log[800], st[800];
    snprintf(out, sizeof out, "%s/twice", t_tmpdir());
    snprintf(log, sizeof log, "%s.log", out);
    snprintf(st, sizeof st, "%s.state", out);
    int rc = signalled_run(ds, out, "--size 640x480", "INT", 1);
    CHECK(rc == 130, "eval stopped by two SIGINTs exited %d, expected 130 (see %s)", rc, log);
    CHECK(has(log, "interrupted again: stopped at once"));
    check_nothing_partial(out, st);
}

int main(int argc, char **argv) {
    (void)argc;
    snprintf(bin, sizeof bin, "%s", t_cli_path(argv[0]));
    if (!exists(bin)) { fprintf(stderr, "the CLI %s is not built\n", bin); return 1; }
    {   // bin is <build>/oodseg: the repository's demo frames are in <build>/../assets/demo
        char b[1024];
        snprintf(b, sizeof b, "%s", bin);
        char *s = strrchr(b, '/');
        if (s) *s = 0;
        snprintf(demo, sizeof demo, "%s/../assets/demo", b);
    }
    RUN(interrupt_after_the_first_chunk_then_resume_is_bit_identical);
    RUN(interrupt_inside_a_chunk_saves_the_images_done);
    RUN(a_fresh_run_ignores_stale_pieces);
    RUN(components_equal_the_in_memory_evaluator);
    RUN(a_resume_on_other_images_is_refused);
    RUN(sigint_then_resume);
    RUN(sigterm_exits_143_then_resume);
    RUN(a_second_sigint_stops_at_once);
    return t_finish(argv[0]);
}
