// How the program's OpenMP threads wait, chosen by the program and not left to the user's
// environment. libgomp's default lets an idle thread spin (busy-wait) for a while before it sleeps;
// on a machine whose cores are busy with other work, the spinning threads take the cores the
// working ones need, and a 2-thread run measured 3-5x slower than a 1-thread one. libgomp reads
// OMP_WAIT_POLICY and GOMP_SPINCOUNT in its constructor, before main, so setting them in main is
// too late: main sets them and executes the program again (same process, same arguments), once.
//
// The choice, OMP_WAIT_POLICY=passive (an idle thread sleeps at once), by bench/bench_load.sh:
// 2 threads, seconds per pipeline run (forward + kmeans), random-weight InternImage-T + UperNet at
// 512x256 and ESPNetv2 at 1024x512, on a 2-core VM that other jobs kept at a load average of
// 1.6-13 throughout (no quiet machine was to be had: "as is" is already loaded), and with one more
// core kept busy by the script:
//
//   policy                    InternImage-T 512x256    ESPNetv2 1024x512
//                              as is    1 core busy     as is   1 core busy
//   libgomp default (300000)   18.0        26.9          7.61      4.71      round 1 (-r 1 -k 2)
//   GOMP_SPINCOUNT=100000      17.7        18.1          6.33      8.35
//   GOMP_SPINCOUNT=10000        7.43       14.2          2.21      1.48
//   OMP_WAIT_POLICY=passive     8.96       15.2          1.43      1.14
//   --threads 1                 9.40        8.98         1.39      1.90
//   --- round 2, later, less load (-r 1 -k 2, medians of 2) ---
//   GOMP_SPINCOUNT=10000        6.26        8.75         1.25      1.55
//   GOMP_SPINCOUNT=1000         5.79        8.21         0.895     0.830
//   OMP_WAIT_POLICY=passive     5.79        7.46         0.884     0.771
//   --threads 1                 5.61        8.46         0.836     1.24
//   --- round 3, load average 1.6-4.3 (-r 5 -k 2, ESPNetv2 alone) ---
//   libgomp default                                      2.72      2.79
//   GOMP_SPINCOUNT=10000                                 0.938     0.560
//   GOMP_SPINCOUNT=1000                                  0.498     0.433
//   OMP_WAIT_POLICY=passive                              0.409     0.442
//   --threads 1                                          0.492     0.402
//
// Spinning for libgomp's default 300000 loops costs 2-7x once the cores are shared, 10000 still up
// to 2.3x; passive was the fastest or within the noise of the fastest in every cell, and never
// slower than one thread by more than the noise. A short spin (1000) was never better. On a
// quieter machine (load average about 1, BENCHMARKS.md, sixth sitting) passive pays about 50 us
// per parallel region for the futex wake-up (57 us against 8 us with a spin), yet spin1k was
// within 1 % of passive for InternImage-T and ESPNet and 11 % faster for ESPNetv2, and 3-7 %
// slower than passive with one core busy: still no reason to spin.
//
// Not done: when the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT (their choice wins), when
// OODSEG_WAIT_POLICY_SET is set (our guard, so it happens once; set it by hand to keep libgomp's
// defaults), under an MPI launcher (OMPI_COMM_WORLD_SIZE, PMI_RANK, PMIX_RANK: its ranks are
// started and tracked by the launcher, so the program is left exactly as started), and when the
// exec fails (the program runs on with libgomp's defaults). The library never does any of this.
#include "cli.h"
#include <stdlib.h>
#include <unistd.h>

void cli_wait_policy(char **argv) {
    static const char *const leave[] = {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OODSEG_WAIT_POLICY_SET",
                                        "OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof leave / sizeof leave[0]; i++)
        if (getenv(leave[i])) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) || setenv("OODSEG_WAIT_POLICY_SET", "1", 1)) return;
    execv("/proc/self/exe", argv);
    unsetenv("OMP_WAIT_POLICY");   // the exec failed: run on as started, with libgomp's defaults
}
