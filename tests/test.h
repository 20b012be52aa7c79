// A tiny test harness. Each tests/test_*.c is one binary made of TEST(name) functions registered
// in main() with RUN(name). It prints one line per test and a final
// "RESULT <binary>: N passed, N failed, N skipped" line that tools/run-tests.sh adds up.
//
// Assets come from $OODSEG_ASSETS (default ../shared), then from the repository's small copies in
// tests/fixtures/ (same layout; see its README). A test whose asset is in neither place calls
// SKIP("missing asset %s", path): it is counted and printed, never silently passed.
#ifndef OODSEG_TEST_H
#define OODSEG_TEST_H

#include <stdio.h>
#include <stdint.h>
#include <math.h>

extern int t_failed_now, t_skipped_now;
extern int t_pass, t_fail, t_skip;

void t_run(const char *name, void (*fn)(void));
int t_finish(const char *binary);   // prints RESULT, returns exit status

#define TEST(name) static void name(void)
#define RUN(name) t_run(#name, name)

#define CHECK(cond, ...) do { if (!(cond)) { \
    fprintf(stderr, "  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, " " __VA_ARGS__); fprintf(stderr, "\n"); t_failed_now = 1; } } while (0)
// Stops the current test on failure.
#define REQUIRE(cond, ...) do { if (!(cond)) { \
    fprintf(stderr, "  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, " " __VA_ARGS__); fprintf(stderr, "\n"); t_failed_now = 1; return; } } while (0)
#define SKIP(...) do { fprintf(stderr, "  SKIP: "); fprintf(stderr, __VA_ARGS__); \
    fprintf(stderr, "\n"); t_skipped_now = 1; return; } while (0)
#define CHECK_NEAR(a, b, tol) do { double _a = (a), _b = (b); CHECK(fabs(_a - _b) <= (tol), \
    "%s = %.12g, %s = %.12g, |diff| %.3g > %.3g", #a, _a, #b, _b, fabs(_a - _b), (double)(tol)); } while (0)

// Test data: xorshift64 floats uniform in [-1, 1), one stream per test binary, seeded with
// 0x9E3779B97F4A7C15 unless t_seed sets another, so every run draws the same values.
void t_seed(uint64_t seed);
float t_frand(void);
float *t_rand_buf(int64_t n, float scale);   // malloc'd: n values of t_frand() * scale

// The assets folder ($OODSEG_ASSETS or ../shared), and a path inside it, or else a file inside
// tests/fixtures/; NULL when it is in neither (then SKIP naming it).
const char *t_assets(void);
const char *t_asset(const char *rel);      // static buffer ring (8 entries)
#define ASSET_OR_SKIP(var, rel) const char *var = t_asset(rel); \
    if (!var) SKIP("missing asset %s/%s (set OODSEG_ASSETS)", t_assets(), rel)

// A fresh temporary directory for this process (removed at exit unless OODSEG_KEEP_TMP is set).
const char *t_tmpdir(void);
// 1 when /usr/bin/python3 can import every module in the space-separated list.
int t_python_has(const char *modules);
// Runs a shell command; returns its exit status.
int t_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// The oodseg CLI built beside this test binary: <directory of argv0>/../oodseg (static buffer).
const char *t_cli_path(const char *argv0);

// A whole file, NUL-terminated (malloc; NULL when unreadable); *len gets its size.
char *t_slurp(const char *path, size_t *len);

double t_max_abs_diff(const float *a, const float *b, int64_t n);
// 1 while running under a sanitizer build (heavy tests may use a smaller workload there and say so).
int t_sanitized(void);

#endif
