// Interrupting `oodseg score` and resuming it: the library's cancel flag, then the CLI as a child
// process: the first SIGINT (SIGTERM) stops the run after the queued images with exit 130 (143), no temporary file
// and a state file; --resume finishes it with files byte-identical to an uninterrupted run's; a
// second SIGINT exits at once. The CLI's test hooks (cli/cmd_score.c) make the timing certain:
// OODSEG_TEST_INTERRUPT_AFTER raises the flag as a signal would after image K, and
// OODSEG_TEST_PAUSE_AFTER holds the run after image K until a real signal arrives.
#include "test.h"
#include "../api/score_stream.h"
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char bin[1024];
static const char *g_model, *g_image;
#define N_IMAGES 5
#define STATE ".oodseg-score-state.json"

static int exists(const char *p) { struct stat st; return stat(p, &st) == 0; }

// N_IMAGES copies of the fixture image under distinct names: the inputs of every run.
static const char *inputs(void) {
    static char dir[600];
    snprintf(dir, sizeof dir, "%s/in", t_tmpdir());
    if (exists(dir)) return dir;
    if (t_sh("mkdir -p %s", dir)) return NULL;
    for (int i = 0; i < N_IMAGES; i++)
        if (t_sh("cp %s %s/%c.png", g_image, dir, 'a' + i)) return NULL;
    return dir;
}

// Starts `oodseg score` into out with one test-hook variable (name NULL: none); stderr to out.err.
static pid_t start(const char *out, const char *hook, const char *value, const char *extra) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "exec %s score --model %s --method maxlogit,kmeans --threads 2 %s -o %s %s 2>%s.err",
             bin, g_model, extra, out, inputs(), out);
    pid_t pid = fork();
    if (pid == 0) {
        if (hook) setenv(hook, value, 1);
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

// The child's exit status (128 + n for a death by signal n); -1 after timeout_s seconds.
static int finish(pid_t pid, int timeout_s) {
    int st;
    for (int i = 0; i < timeout_s * 100; i++) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

static int run(const char *out, const char *hook, const char *value, const char *extra) {
    return finish(start(out, hook, value, extra), 600);
}

// Entries of dir whose names contain needle (needle "": every one but the hidden state file).
static int count_files(const char *dir, const char *needle) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *x; (x = readdir(d));) {
        if (!strcmp(x->d_name, ".") || !strcmp(x->d_name, "..")) continue;
        n += needle[0] ? strstr(x->d_name, needle) != NULL : x->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

static int same_file(const char *a, const char *b) {
    size_t na, nb;
    char *x = t_slurp(a, &na), *y = t_slurp(b, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

// Every file of ref is in got with the same bytes, and got has no other file.
static void check_identical(const char *ref, const char *got) {
    DIR *d = opendir(ref);
    CHECK(d, "%s", ref);
    if (!d) return;
    int n = 0;
    for (struct dirent *x; (x = readdir(d));) {
        if (x->d_name[0] == '.') continue;
        char a[1200], b[1200];
        snprintf(a, sizeof a, "%s/%s", ref, x->d_name);
        snprintf(b, sizeof b, "%s/%s", got, x->d_name);
        CHECK(same_file(a, b), "%s differs from %s (or is missing)", b, a);
        n++;
    }
    closedir(d);
    CHECK(n == N_IMAGES * 8, "%d files in the uninterrupted run's folder, expected %d", n, N_IMAGES * 8);
    CHECK(count_files(got, "") == n, "%d files after resuming, %d in the uninterrupted run", count_files(got, ""), n);
}

// The uninterrupted run every other is compared with (made once).
static const char *reference(void) {
    static char ref[600];
    snprintf(ref, sizeof ref, "%s/ref", t_tmpdir());
    if (!exists(ref) && run(ref, NULL, NULL, "") != 0) return NULL;
    return ref;
}

static void check_stopped(const char *out, int rc, int expect) {
    char state[700];
    snprintf(state, sizeof state, "%s/" STATE, out);
    CHECK(rc == expect, "exit status %d, expected %d", rc, expect);
    CHECK(count_files(out, ".tmp.") == 0, "temporary files left in %s", out);
    CHECK(exists(state), "no state file %s", state);
    int npy = count_files(out, "_score.npy");
    CHECK(npy >= 2 && npy < 2 * N_IMAGES, "%d score maps after the interruption: expected some, not all", npy);
}

static void interrupt_then_resume(const char *name, const char *hook_value, int expect) {
    const char *ref = reference();
    REQUIRE(ref, "the uninterrupted run failed");
    char out[600], state[700];
    snprintf(out, sizeof out, "%s/%s", t_tmpdir(), name);
    snprintf(state, sizeof state, "%s/" STATE, out);
    check_stopped(out, run(out, "OODSEG_TEST_INTERRUPT_AFTER", hook_value, ""), expect);
    // another method list is refused, the state kept
    CHECK(finish(start(out, NULL, NULL, "--resume --k 8"), 600) == 2 && exists(state), "a resume with other options was not refused");
    // a finished image with a file gone is scored again
    char gone[700];
    snprintf(gone, sizeof gone, "%s/a_seg.png", out);
    CHECK(unlink(gone) == 0, "%s", gone);
    CHECK(run(out, NULL, NULL, "--resume") == 0, "the resumed run failed");
    CHECK(!exists(state), "the state file is left after the run finished");
    check_identical(ref, out);
}

TEST(sigint_flag_then_resume_is_bit_identical) { interrupt_then_resume("int", "1", 130); }
TEST(sigterm_flag_then_resume_is_bit_identical) { interrupt_then_resume("term", "1:TERM", 143); }

// Waits (up to 300 s) for the first image's last picture, then sends signo (twice: `twice`).
static int signal_when_written(pid_t pid, const char *out, int signo, int twice) {
    char first[700];
    snprintf(first, sizeof first, "%s/a_kmeans_clusters.png", out);
    for (int i = 0; i < 30000 && !exists(first); i++) usleep(10000);
    if (!exists(first)) return 0;
    kill(pid, signo);
    if (twice) { usleep(200000); kill(pid, signo); }
    return 1;
}

TEST(real_sigint_then_resume) {
    const char *ref = reference();
    REQUIRE(ref, "the uninterrupted run failed");
    char out[600];
    snprintf(out, sizeof out, "%s/real", t_tmpdir());
    pid_t pid = start(out, "OODSEG_TEST_PAUSE_AFTER", "1", "");
    CHECK(signal_when_written(pid, out, SIGINT, 0), "no output appeared");
    check_stopped(out, finish(pid, 600), 130);
    CHECK(run(out, NULL, NULL, "--resume") == 0, "the resumed run failed");
    check_identical(ref, out);
}

// The hold keeps the run busy after the first signal, as a long image would: the second signal
// must then stop it at once, without the state (it exits from the handler) and without a partial file.
TEST(second_sigint_exits_at_once) {
    char out[600], state[700], err[700];
    snprintf(out, sizeof out, "%s/twice", t_tmpdir());
    snprintf(state, sizeof state, "%s/" STATE, out);
    snprintf(err, sizeof err, "%s.err", out);
    pid_t pid = start(out, "OODSEG_TEST_PAUSE_AFTER", "1:hold", "");
    CHECK(signal_when_written(pid, out, SIGINT, 1), "no output appeared");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = finish(pid, 600);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(rc == 130, "exit status %d, expected 130", rc);
    CHECK(t1.tv_sec - t0.tv_sec < 30, "%lds to exit after the second signal (the hold is 60 s)", (long)(t1.tv_sec - t0.tv_sec));
    CHECK(count_files(out, ".tmp.") == 0, "temporary files left in %s", out);
    CHECK(!exists(state), "the second signal should exit before the state is written");
    char *text = t_slurp(err, NULL);
    CHECK(text && strstr(text, "interrupted again"), "stderr: %s", text ? text : "(none)");
    free(text);
}

// The library's side: score_stream polls the caller's flag (no handler installed), reports every
// frame in input order on the calling thread, and returns OODSEG_E_INTERRUPTED once it is set.
typedef struct order_ctx { volatile sig_atomic_t flag; int n, in_order, saved; char last[FRAME_NAME]; } order_ctx;

static void order_on_frame(void *ctx, const char *name, int done) {
    order_ctx *c = ctx;
    c->in_order &= done == c->n + 1 && strcmp(name, c->last) > 0;
    snprintf(c->last, sizeof c->last, "%s", name);
    if (++c->n == 2) c->flag = SIGINT;
}

static void order_on_saved(void *ctx, const char *name) { (void)name; ((order_ctx *)ctx)->saved++; }

TEST(library_cancel_flag_in_order) {
    char out[600], *paths[N_IMAGES], buf[N_IMAGES][700];
    snprintf(out, sizeof out, "%s/lib", t_tmpdir());
    REQUIRE(inputs() && t_sh("mkdir -p %s", out) == 0);
    for (int i = 0; i < N_IMAGES; i++) {
        snprintf(buf[i], sizeof buf[i], "%s/%c.png", inputs(), 'a' + i);
        paths[i] = buf[i];
    }
    pipeline_config cfg;
    pipeline_config_default(&cfg);
    snprintf(cfg.model, sizeof cfg.model, "%s", g_model);
    snprintf(cfg.methods, sizeof cfg.methods, "maxlogit");
    cfg.threads = 2;
    pipeline p = {0};
    err e = {0};
    REQUIRE(pipeline_open(&p, &cfg, &e) == 0, "%s", e.msg);
    order_ctx c = {0, 0, 1, 0, ""};
    score_stream_opts so = {.dir = out, .keep_going = 1, .on_frame = order_on_frame, .ctx = &c,
                            .save = {PICTURES_NONE, 0}, .queue = 1, .cancel = &c.flag, .on_saved = order_on_saved};
    score_stream_summary ss;
    int rc = score_stream(&p, paths, N_IMAGES, &so, &ss, &e);
    pipeline_close(&p);
    CHECK(rc == OODSEG_E_INTERRUPTED && ss.interrupted, "rc %d: %s", rc, e.msg);
    CHECK(c.in_order, "frames reported out of order");
    CHECK(ss.done == c.n && c.saved == c.n && c.n >= 2 && c.n < N_IMAGES, "%d done, %d reported, %d saved", ss.done, c.n, c.saved);
    CHECK(count_files(out, "_score.npy") == c.n && count_files(out, ".png") == 0, "the files of %d frames", c.n);
}

int main(int argc, char **argv) {
    (void)argc;
    snprintf(bin, sizeof bin, "%s", t_cli_path(argv[0]));
    if (!exists(bin)) { fprintf(stderr, "the CLI %s is not built\n", bin); return 1; }
    g_model = t_asset("models/espnet/pretrained/decoder/espnet_p_2_q_8_camvid.pth");
    g_image = t_asset("data/camvid-ood/test_ood/0001TP_008550.png");
    if (!g_model || !g_image) {
        fprintf(stderr, "  SKIP: missing asset %s/models/espnet/pretrained/decoder/espnet_p_2_q_8_camvid.pth or "
                "data/camvid-ood/test_ood/0001TP_008550.png (set OODSEG_ASSETS)\n", t_assets());
        t_skip += 5;
        return t_finish(argv[0]);
    }
    RUN(library_cancel_flag_in_order);
    RUN(sigint_flag_then_resume_is_bit_identical);
    RUN(sigterm_flag_then_resume_is_bit_identical);
    RUN(real_sigint_then_resume);
    RUN(second_sigint_exits_at_once);
    return t_finish(argv[0]);
}
