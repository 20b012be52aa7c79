// The command line on real folders: a corrupt file among good ones (--keep-going, the default for
// folders), two inputs with one stem, a rerun into the input folder (the tool never reads its own
// outputs), --no-clobber, --help on every subcommand, --limit 0, the one naming rule of score maps
// read back by `oodseg metrics` (--method, --partial), and line progress when stderr is a file.
// Everything runs the default model on the repository's demo frames (assets/demo), at a small
// network input size (--size 256x192): the rules are checked, not the scores.
#include "test.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char bin[1024], demo[1200];

static int exists(const char *p) { struct stat st; return stat(p, &st) == 0; }

// Runs the tool with stdout and stderr captured to tmp/out.txt and tmp/err.txt.
static int tool(const char *args) {
    return t_sh("%s %s >%s/out.txt 2>%s/err.txt", bin, args, t_tmpdir(), t_tmpdir());
}

static char *slurp_tmp(const char *name) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", t_tmpdir(), name);
    size_t n;
    char *s = t_slurp(p, &n);
    return s ? s : strdup("");
}

static int has(const char *file, const char *needle) {
    char *s = slurp_tmp(file);
    int ok = strstr(s, needle) != NULL;
    if (!ok) fprintf(stderr, "  %s lacks '%s'; it was:\n%.2000s\n", file, needle, s);
    free(s);
    return ok;
}

// How many files of dir match the grep pattern (as the shell's exit status: small counts only).
static int lacks(const char *file, const char *needle) {
    char *s = slurp_tmp(file);
    int ok = strstr(s, needle) == NULL;
    if (!ok) fprintf(stderr, "  %s has '%s'\n", file, needle);
    free(s);
    return ok;
}

static int count_files(const char *dir, const char *pattern) {
    return t_sh("exit $(ls %s | grep -c -- '%s')", dir, pattern);
}

// A folder with the three demo frames, as given to score.
static void demo_folder(const char *dir) {
    t_sh("mkdir -p '%s' && cp %s/test_ood/*.png '%s'/", dir, demo, dir);
}

TEST(corrupt_file_in_a_folder_is_reported_and_the_rest_scored) {
    char in[600], out[600], args[4000];
    snprintf(in, sizeof in, "%s/bad_in", t_tmpdir());
    snprintf(out, sizeof out, "%s/bad_out", t_tmpdir());
    demo_folder(in);
    REQUIRE(t_sh("printf 'not a jpeg at all' > '%s/0001TP_008600.jpg'", in) == 0);
    snprintf(args, sizeof args, "score --size 256x192 --method maxlogit -o %s %s", out, in);
    int rc = tool(args);
    CHECK(rc == 4, "exit status %d: the corrupt file's (4) says that some failed", rc);
    CHECK(has("err.txt", "0001TP_008600.jpg") && has("err.txt", "scored 3 of 4 images") && has("err.txt", "1 FAILED"));
    CHECK(count_files(out, "_maxlogit_score.npy$") == 3, "the three good frames are scored");
    // --fail-fast stops at the first bad input
    snprintf(args, sizeof args, "score --size 256x192 --method maxlogit --fail-fast -o %s/ff %s", t_tmpdir(), in);
    CHECK(tool(args) == 4 && has("err.txt", "0001TP_008600.jpg"));
    // a single bad file alone (no folder) fails with its own status
    snprintf(args, sizeof args, "score --size 256x192 --method maxlogit -o %s %s/0001TP_008600.jpg", out, in);
    CHECK(tool(args) == 4);
}

TEST(two_inputs_with_one_stem_are_refused_before_writing) {
    char a[600], b[600], out[600], args[4000];
    snprintf(a, sizeof a, "%s/stem_a", t_tmpdir());
    snprintf(b, sizeof b, "%s/stem_b", t_tmpdir());
    snprintf(out, sizeof out, "%s/stem_out", t_tmpdir());
    REQUIRE(t_sh("mkdir -p %s %s && cp %s/test_ood/0001TP_008550.png %s/x.png && cp %s/test_ood/0001TP_008610.png %s/x.png",
                 a, b, demo, a, demo, b) == 0);
    snprintf(args, sizeof args, "score --size 256x192 --method maxlogit -o %s %s/x.png %s/x.png", out, a, b);
    CHECK(tool(args) == 2);
    CHECK(has("err.txt", "stem_a/x.png") && has("err.txt", "stem_b/x.png") && has("err.txt", "nothing was written"));
    CHECK(!exists(out), "the output folder was created although nothing may be written");
}

TEST(rerun_into_the_input_folder_never_reads_its_outputs) {
    char d[600], args[4000];
    snprintf(d, sizeof d, "%s/rerun", t_tmpdir());
    demo_folder(d);
    snprintf(args, sizeof args, "score --size 256x192 --method maxlogit -o %s %s", d, d);
    REQUIRE(tool(args) == 0);
    CHECK(has("err.txt", "scored 3 of 3 images"));
    REQUIRE(tool(args) == 0);
    CHECK(has("err.txt", "scored 3 of 3 images") && has("err.txt", "left out 9 files named like oodseg outputs"));
    CHECK(count_files(d, "_heat_") == 0 && count_files(d, "_overlay_") == 0 && count_files(d, "_seg_") == 0,
          "outputs of outputs were written");
    CHECK(count_files(d, "_score.npy$") == 3);
    // files named like outputs, given by name, are not read either
    snprintf(args, sizeof args, "score --size 256x192 --method maxlogit -o %s %s/0001TP_008550_seg.png", d, d);
    CHECK(tool(args) == 2 && has("err.txt", "not read as an input"));
}

TEST(no_clobber_refuses_before_writing) {
    char d[600], out[600], args[4000];
    snprintf(d, sizeof d, "%s/nc_in", t_tmpdir());
    snprintf(out, sizeof out, "%s/nc_out", t_tmpdir());
    demo_folder(d);
    snprintf(args, sizeof args, "score --size 256x192 --method maxlogit -o %s %s", out, d);
    REQUIRE(tool(args) == 0);
    REQUIRE(t_sh("touch -d '2001-01-01' %s/*", out) == 0);
    snprintf(args, sizeof args, "score --size 256x192 --method maxlogit --no-clobber -o %s %s", out, d);
    CHECK(tool(args) == 3 && has("err.txt", "--no-clobber") && has("err.txt", "exists"));
    CHECK(t_sh("test -z \"$(find %s -type f -newermt '2002-01-01')\"", out) == 0, "a file was rewritten despite --no-clobber");
    // another method would rewrite the class pictures <stem>_seg.png: refused too
    snprintf(args, sizeof args, "score --size 256x192 --method entropy --no-clobber -o %s %s", out, d);
    CHECK(tool(args) == 3 && has("err.txt", "_seg.png exists"));
    // a fresh folder: nothing to clobber
    snprintf(args, sizeof args, "score --size 256x192 --method entropy --no-clobber -o %s/nc_fresh %s", t_tmpdir(), d);
    CHECK(tool(args) == 0);
}

// Outputs stay inside -o DIR: a symbolic link in the output folder named like an output, pointing
// outside, is replaced by the output (written to a temporary name and renamed), never written through.
TEST(outputs_never_escape_the_output_folder) {
    char d[600], out[600], outside[700], args[4000];
    snprintf(d, sizeof d, "%s/esc_in", t_tmpdir());
    snprintf(out, sizeof out, "%s/esc_out", t_tmpdir());
    snprintf(outside, sizeof outside, "%s/outside.txt", t_tmpdir());
    demo_folder(d);
    REQUIRE(t_sh("mkdir -p %s && echo precious > %s && ln -s %s %s/0001TP_008550_maxlogit_score.npy && "
                 "ln -s %s %s/0001TP_008550_maxlogit_heat.png", out, outside, outside, out, outside, out) == 0);
    snprintf(args, sizeof args, "score --size 256x192 --method maxlogit -o %s %s", out, d);
    CHECK(tool(args) == 0);
    CHECK(t_sh("grep -qx precious %s", outside) == 0, "a file outside -o was written through a link");
    CHECK(t_sh("test -f %s/0001TP_008550_maxlogit_score.npy && test ! -L %s/0001TP_008550_maxlogit_score.npy", out, out) == 0,
          "the output is not a regular file of its own");
    // mine's per-frame log too
    REQUIRE(t_sh("mkdir -p %s/mine && ln -s %s %s/mine/frames.tsv", out, outside, out) == 0);
    snprintf(args, sizeof args, "mine --size 256x192 --method maxlogit --rank-by percentile --top 2 -o %s/mine %s", out, d);
    CHECK(tool(args) == 3 && has("err.txt", "frames.tsv"), "mine refuses the link, naming the file");
    CHECK(t_sh("grep -qx precious %s", outside) == 0, "mine wrote through a link in its output folder");
}

TEST(every_subcommand_answers_help_and_the_global_help_lists_every_option) {
    const char *cmds[] = {"info", "forward", "score", "eval", "metrics", "fit-centroids", "calibrate"};
    const char *own[] = {"MODEL", "--save", "--keep-going", "--no-html", "--partial", "-o FILE", "--tau-file"};
    for (int i = 0; i < 7; i++) {
        char args[256], usage[128];
        snprintf(args, sizeof args, "%s --help", cmds[i]);
        CHECK(tool(args) == 0, "%s --help", cmds[i]);
        snprintf(usage, sizeof usage, "usage: oodseg %s", cmds[i]);
        CHECK(has("out.txt", usage) && has("out.txt", own[i]), "%s --help", cmds[i]);
    }
    CHECK(tool("--help") == 0);
    const char *opts[] = {"--limit", "--save-scores", "--save-maps", "--shard", "--save-state", "--keep-going", "--fail-fast",
                          "--no-clobber", "--scale", "--no-html", "--partial", "--method LIST", "--merge", "--model FILE",
                          "--threads", "--k N", "score's default: kmeans", "model options (info, forward, score, eval"};
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++) CHECK(has("out.txt", opts[i]));
}

TEST(limit_zero_is_an_error) {
    char args[4000];
    snprintf(args, sizeof args, "eval --dataset camvid-ood:%s --limit 0 -o %s/l0", demo, t_tmpdir());
    CHECK(tool(args) == 2 && has("err.txt", "--limit"));
    snprintf(args, sizeof args, "metrics --dataset camvid-ood:%s --scores %s --limit 0", demo, t_tmpdir());
    CHECK(tool(args) == 2 && has("err.txt", "--limit"));
}

TEST(metrics_reads_the_naming_rule_and_equals_eval) {
    char s[600], ev[600], m[600], args[4000];
    snprintf(s, sizeof s, "%s/nr_scores", t_tmpdir());
    snprintf(ev, sizeof ev, "%s/nr_eval", t_tmpdir());
    snprintf(m, sizeof m, "%s/nr_metrics", t_tmpdir());
    snprintf(args, sizeof args, "score --size 256x192 --method maxlogit,entropy -o %s %s/test_ood", s, demo);
    REQUIRE(tool(args) == 0);
    CHECK(has("err.txt", "score: 1/3 images") && lacks("err.txt", "\r"), "progress is one line per image off a terminal");
    snprintf(args, sizeof args, "eval --size 256x192 --dataset camvid-ood:%s --methods maxlogit,entropy --no-html -o %s", demo, ev);
    REQUIRE(tool(args) == 0);
    CHECK(!exists(strcat(strcpy(args, ev), "/index.html")), "--no-html wrote index.html");
    // every method found, read directly from <stem>_<method>_score.npy: the same metrics as eval
    snprintf(args, sizeof args, "metrics --dataset camvid-ood:%s --scores %s -o %s", demo, s, m);
    REQUIRE(tool(args) == 0);
    CHECK(t_sh("cmp -s %s/metrics.csv %s/metrics.csv", ev, m) == 0, "metrics of score's maps differ from eval's");
    CHECK(exists(strcat(strcpy(args, m), "/index.html")), "metrics wrote no index.html");
    // --method picks one
    snprintf(args, sizeof args, "metrics --dataset camvid-ood:%s --scores %s --method entropy", demo, s);
    CHECK(tool(args) == 0 && has("out.txt", "| entropy |") && lacks("out.txt", "| maxlogit |"));
    // a partial set: refused, naming --partial; evaluated with it, saying how many were skipped
    REQUIRE(t_sh("rm %s/0001TP_008610_entropy_score.npy", s) == 0);
    snprintf(args, sizeof args, "metrics --dataset camvid-ood:%s --scores %s --method entropy", demo, s);
    CHECK(tool(args) == 7 && has("err.txt", "0001TP_008610") && has("err.txt", "--partial"));
    snprintf(args, sizeof args, "metrics --dataset camvid-ood:%s --scores %s --method entropy --partial", demo, s);
    CHECK(tool(args) == 0 && has("err.txt", "skipped 1") && has("out.txt", "(2 images)"));
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
    RUN(corrupt_file_in_a_folder_is_reported_and_the_rest_scored);
    RUN(two_inputs_with_one_stem_are_refused_before_writing);
    RUN(rerun_into_the_input_folder_never_reads_its_outputs);
    RUN(no_clobber_refuses_before_writing);
    RUN(outputs_never_escape_the_output_folder);
    RUN(every_subcommand_answers_help_and_the_global_help_lists_every_option);
    RUN(limit_zero_is_an_error);
    RUN(metrics_reads_the_naming_rule_and_equals_eval);
    return t_finish(argv[0]);
}
