// The cost of merging evaluation states exactly (what rank 0 does after `mpirun -n N oodseg eval`,
// and `oodseg metrics --merge`): N states of D distinct scores each (random float32 scores, so
// nearly every score is distinct), merged by summing counts per distinct score; against D.
// Prints a Markdown table. Usage: bench_merge [ranks] (default 4); run from the repo root.
#include "../eval/evaluator.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static inline double urand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (rng >> 11) * (1.0 / 9007199254740992.0);
}

int main(int argc, char **argv) {
    int ranks = argc > 1 ? atoi(argv[1]) : 4;
    static const long long sizes[] = {10000, 100000, 1000000, 4000000};
    char dir[] = "/tmp/bench_merge_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    printf("bench_merge %d (one state per rank, D distinct scores each, 1 method; best of 3)\n\n", ranks);
    printf("| distinct scores per state | states | merged distinct | state file | merge time | per distinct score |\n|---:|---:|---:|---:|---:|---:|\n");
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        long long D = sizes[s];
        char *paths[64];
        float *sc = malloc(D * sizeof *sc);
        uint8_t *lab = malloc(D);
        const char *names[1] = {"m"};
        err e = {0};
        for (int r = 0; r < ranks; r++) {
            for (long long i = 0; i < D; i++) { sc[i] = (float)urand(); lab[i] = urand() < 0.1; }
            evaluator *ev;
            if (evaluator_new(&ev, 1, names, NULL, &e) || evaluator_add(ev, "x", (const float *const *)&sc, lab, (int)D, 1, 0, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
            paths[r] = malloc(256);
            snprintf(paths[r], 256, "%s/r%d.state", dir, r);
            if (evaluator_save_state(ev, paths[r], "{}", &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
            evaluator_free(ev);
        }
        double best = 1e30;
        long long merged = 0;
        for (int rep = 0; rep < 3; rep++) {
            evaluator *m;
            double t0 = omp_get_wtime();
            if (evaluator_merge(&m, (const char *const *)paths, ranks, FPR_FIRST_GE, NULL, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
            double t = omp_get_wtime() - t0;
            if (t < best) best = t;
            merged = evaluator_result(m, 0)->n_distinct;
            evaluator_free(m);
        }
        FILE *f = fopen(paths[0], "rb");
        fseek(f, 0, SEEK_END);
        long sz = ftell(f);
        fclose(f);
        printf("| %lld | %d | %lld | %.1f MB | %.3f s | %.0f ns |\n", D, ranks, merged, sz / 1e6, best, best / merged * 1e9);
        for (int r = 0; r < ranks; r++) { unlink(paths[r]); free(paths[r]); }
        free(sc); free(lab);
    }
    rmdir(dir);
    return 0;
}
