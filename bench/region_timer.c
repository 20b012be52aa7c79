// An LD_PRELOAD library for bench/region_times.sh: times every outermost OpenMP parallel region
// (libgomp's GOMP_parallel, which `#pragma omp parallel` compiles to) and, at exit, writes one
// line per region to $REGION_TIMER_OUT: the order, the outlined function's offset in its object
// file, that file, the region's microseconds and the microseconds since the previous region ended
// (serial work between regions). A parallel region's time on 2 threads against 1 says what each
// op loses to the wake-up of sleeping threads and to imbalance, which the per-family table of
// `oodseg bench` cannot tell apart from the op itself. Not part of the library; nested regions
// (inside another) are left out, and at most REGIONS_MAX are kept.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define REGIONS_MAX 1000000

typedef void (*gomp_parallel_fn)(void (*)(void *), void *, unsigned, unsigned);

static struct region { void *fn; float us, gap_us; } *regions;
static long n_regions;
static double last_end;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags) {
    static gomp_parallel_fn real;
    if (!real) real = (gomp_parallel_fn)dlsym(RTLD_NEXT, "GOMP_parallel");
    const int outermost = omp_get_level() == 0;
    const double t0 = now();
    real(fn, data, num_threads, flags);
    const double t1 = now();
    if (!outermost) return;
    if (!regions) regions = malloc(sizeof *regions * REGIONS_MAX);
    if (regions && n_regions < REGIONS_MAX)
        regions[n_regions++] = (struct region){(void *)fn, (float)((t1 - t0) * 1e6),
                                               last_end > 0 ? (float)((t0 - last_end) * 1e6) : 0.0f};
    last_end = t1;
}

__attribute__((destructor)) static void region_timer_write(void) {
    const char *path = getenv("REGION_TIMER_OUT");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (!f) return;
    for (long i = 0; i < n_regions; i++) {
        Dl_info d = {0};
        if (!dladdr(regions[i].fn, &d) || !d.dli_fname) d.dli_fname = "?", d.dli_fbase = NULL;
        fprintf(f, "%ld 0x%lx %s %.1f %.1f\n", i, (unsigned long)((char *)regions[i].fn - (char *)d.dli_fbase),
                d.dli_fname, regions[i].us, regions[i].gap_us);
    }
    fclose(f);
}
