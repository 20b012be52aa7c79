// Running one job over the ranks of an MPI launch (`mpirun -n N oodseg ...`, `srun -n N oodseg ...`):
// who this process is, and the one collective step the jobs need (agreeing on a status). Built with MPI when compiled with -DOODSEG_MPI (`make MPI=1`); otherwise, and in
// an MPI build started without a launcher, there is one rank and every call is local.
//
// The work itself is split by a fixed assignment (api/disteval.c, api/mine.c): rank r of n takes
// the r-th of n contiguous blocks, so the split depends only on n, and a resumed run finds its own
// files. Results are exchanged through the output folder, which every rank must see (a shared
// filesystem, as on any cluster that runs Slurm), and merged exactly by rank 0.
#ifndef OODSEG_API_DISTRIBUTED_H
#define OODSEG_API_DISTRIBUTED_H

#include "../core/err.h"

typedef struct dist {
    int rank, size;
    int mpi;        // 1: MPI was initialised by dist_init (and is finalised by dist_finalize)
} dist;

// Initialises MPI when this process was started by an MPI launcher (Open MPI's mpirun, PMI or
// PMIx, i.e. srun), else one rank. Call once, from the program (MPI state is process-wide).
int dist_init(int *argc, char ***argv, dist *d, err *e);
void dist_finalize(dist *d);
// Every rank's status code; returns the first non-zero one in rank order (0 when all are 0), and
// *who the rank that had it.
int dist_agree(const dist *d, int code, int *who);

#endif
