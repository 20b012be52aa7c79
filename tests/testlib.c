#include "test.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

int t_failed_now, t_skipped_now;
int t_pass, t_fail, t_skip;

// OODSEG_TEST_ONLY=a,b runs only the tests of those names (tools/valgrind-check.sh picks the light
// ones of a heavy test program); the others are not run and not counted.
static int selected(const char *name) {
    const char *only = getenv("OODSEG_TEST_ONLY");
    if (!only || !*only) return 1;
    size_t n = strlen(name);
    for (const char *p = only; (p = strstr(p, name)); p += n)
        if ((p == only || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return 1;
    return 0;
}

void t_run(const char *name, void (*fn)(void)) {
    if (!selected(name)) return;
    t_failed_now = t_skipped_now = 0;
    fprintf(stderr, "- %s\n", name);
    fn();
    if (t_failed_now) { t_fail++; fprintf(stderr, "  -> FAILED %s\n", name); }
    else if (t_skipped_now) { t_skip++; fprintf(stderr, "  -> skipped %s\n", name); }
    else t_pass++;
}

static char tmpdir[256];

static void rm_tmp(void) {
    if (tmpdir[0] && !getenv("OODSEG_KEEP_TMP")) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    }
}

int t_finish(const char *binary) {
    const char *b = strrchr(binary, '/');
    b = b ? b + 1 : binary;
    printf("RESULT %s: %d passed, %d failed, %d skipped\n", b, t_pass, t_fail, t_skip);
    fflush(stdout);
    return t_fail ? 1 : 0;
}

const char *t_assets(void) {
    const char *a = getenv("OODSEG_ASSETS");
    return (a && *a) ? a : "../shared";
}

// The full assets first, so a test reads the same file whether or not a fixture copy exists;
// then the repository's small copies (tests run from the repository root). Only files come from
// the fixtures: a test that asks for a folder (e.g. every checkpoint under models/) wants the
// full assets, and the fixtures' folders hold a few files each.
const char *t_asset(const char *rel) {
    static char ring[8][1024];
    static int k;
    char *p = ring[k++ & 7];
    struct stat st;
    snprintf(p, 1024, "%s/%s", t_assets(), rel);
    if (stat(p, &st) == 0) return p;
    snprintf(p, 1024, "tests/fixtures/%s", rel);
    if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) return p;
    return NULL;
}

const char *t_tmpdir(void) {
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/oodseg-test-XXXXXX");
        if (!mkdtemp(tmpdir)) { perror("mkdtemp"); exit(2); }
        atexit(rm_tmp);
    }
    return tmpdir;
}

int t_sh(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int r = system(cmd);
    return r == -1 ? -1 : (WIFEXITED(r) ? WEXITSTATUS(r) : 128);
}

int t_python_has(const char *modules) {
    char buf[512], imp[600] = "";
    snprintf(buf, sizeof buf, "%s", modules);
    for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " ")) {
        strncat(imp, "import ", sizeof imp - strlen(imp) - 1);
        strncat(imp, tok, sizeof imp - strlen(imp) - 1);
        strncat(imp, ";", sizeof imp - strlen(imp) - 1);
    }
    return t_sh("/usr/bin/python3 -c '%s' >/dev/null 2>&1", imp) == 0;
}

double t_max_abs_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || d != d) m = (d != d) ? INFINITY : d;
    }
    return m;
}

int t_sanitized(void) {
#if defined(__SANITIZE_ADDRESS__)
    return 1;
#else
    return 0;
#endif
}

const char *t_cli_path(const char *argv0) {
    static char path[1024];
    snprintf(path, sizeof path, "%s", argv0);
    char *s = strrchr(path, '/');
    if (s) *s = 0; else snprintf(path, sizeof path, ".");
    strncat(path, "/../oodseg", sizeof path - strlen(path) - 1);
    return path;
}

char *t_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    if (b) { b[n] = 0; if (len) *len = (size_t)n; }
    fclose(f);
    return b;
}

static uint64_t t_rng = 0x9E3779B97F4A7C15ull;

void t_seed(uint64_t seed) { t_rng = seed; }

float t_frand(void) {
    t_rng ^= t_rng << 13; t_rng ^= t_rng >> 7; t_rng ^= t_rng << 17;
    return (float)((t_rng >> 40) * (1.0 / 16777216.0) * 2.0 - 1.0);
}

float *t_rand_buf(int64_t n, float scale) {
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) p[i] = t_frand() * scale;
    return p;
}
