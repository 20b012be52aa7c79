// Thread control. Every parallel region in nn/ passes num_threads(nn_get_threads()) explicitly, so
// the count does not depend on whatever else in the process touched the OpenMP ICVs.
#include "nn.h"
#include <cblas.h>
#include <omp.h>
#include <malloc.h>

static int g_threads;   // 0 until first set

// Forward passes and K-Means malloc their activations and scratch when needed and free them when
// dead. glibc serves large blocks with fresh mmaps and unmaps them at free, so every forward (or
// fit) would page-fault and zero its whole working set again: about 10 % of an ESPNetv2 forward,
// 20 % of a K-Means fit at D = 1280. Keeping freed blocks in the heap lets the next call reuse the
// pages; the peak stays the peak of one call.
static void keep_freed_memory(void) {
    static int done;
    if (done) return;
    done = 1;
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
}

void nn_set_threads(int n) {
    keep_freed_memory();
    if (n <= 0) n = omp_get_num_procs();
    if (n < 1) n = 1;
    // OpenBLAS's OpenMP build resets omp_set_num_threads inside openblas_set_num_threads, so pin BLAS
    // first and set our count after it. With blas_cpu_number == 1 OpenBLAS never forks, also when
    // called outside a parallel region (e.g. a 1-thread run, where our regions are inactive).
    openblas_set_num_threads(1);
    omp_set_num_threads(n);
    g_threads = n;
}

int nn_get_threads(void) {
    if (g_threads <= 0) nn_set_threads(0);
    return g_threads;
}
