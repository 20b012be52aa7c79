// Replays every saved fuzz reproducer (fuzz/regressions/<target>/*) through the same entry points
// the fuzzers drive (fuzz/targets.c), in the normal build and under ASan + UBSan in build-san: each
// input must come back as OK or as an ordinary error, never a crash, a leak, an abort or an
// internal error. Each target's folder must hold at least one input, so a target cannot silently
// stop being replayed.
#include "test.h"
#include "../fuzz/targets.h"
#include "../core/err.h"
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void replay(const fuzz_target *t) {
    char dir[512];
    snprintf(dir, sizeof dir, "fuzz/regressions/%s", t->name);
    DIR *d = opendir(dir);
    REQUIRE(d, "no folder %s (run from the repository root)", dir);
    char *names[4096];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 4096)
        if (de->d_name[0] != '.' && strcmp(de->d_name, "README.md")) names[n++] = strdup(de->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_name);
    CHECK(n > 0, "%s holds no input", dir);
    int ok = 0;
    for (int k = 0; k < n; k++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, names[k]);
        size_t len = 0;
        char *buf = t_slurp(p, &len);
        CHECK(buf, "cannot read %s", p);
        // An exact-size copy, so that a read one byte past the end is caught (t_slurp adds a NUL).
        uint8_t *exact = buf ? malloc(len ? len : 1) : NULL;
        if (exact) memcpy(exact, buf, len);
        if (exact) {
            int rc = t->run(exact, len);
            CHECK(rc == OODSEG_OK || (rc >= OODSEG_E_ARG && rc < OODSEG_E_INTERNAL), "%s: status %d", p, rc);
            ok += rc == OODSEG_OK;
        }
        free(exact);
        free(buf);
        free(names[k]);
    }
    printf("  %s: %d inputs (%d accepted, %d refused)\n", t->name, n, ok, n - ok);
}

TEST(fuzz_regressions) {
    for (int k = 0; k < fuzz_n_targets; k++) replay(&fuzz_targets[k]);
}

int main(int argc, char **argv) {
    (void)argc;
    RUN(fuzz_regressions);
    return t_finish(argv[0]);
}
