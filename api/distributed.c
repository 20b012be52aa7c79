// Ranks of an MPI launch (see distributed.h). Only this file knows about MPI.
#include "distributed.h"
#include <stdlib.h>
#include <string.h>
#ifdef OODSEG_MPI
#include <mpi.h>
#endif

// A launcher leaves its mark in the environment: Open MPI's mpirun, PMI (srun --mpi=pmi2, MPICH)
// or PMIx (srun --mpi=pmix, Open MPI 4+). Without one, MPI is not touched at all, so the MPI
// build started by hand behaves exactly as the plain one.
static int launched(void) {
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

int dist_init(int *argc, char ***argv, dist *d, err *e) {
    memset(d, 0, sizeof *d);
    d->size = 1;
#ifdef OODSEG_MPI
    if (!launched()) return OODSEG_OK;
    int provided;
    // The decoding thread never calls MPI; only the main thread does.
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return err_set(e, OODSEG_E_INTERNAL, "MPI_Init failed; check the launch (mpirun -n N oodseg ...)");
    d->mpi = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
#else
    (void)argc; (void)argv; (void)e; (void)launched;
#endif
    return OODSEG_OK;
}

void dist_finalize(dist *d) {
#ifdef OODSEG_MPI
    if (d->mpi) MPI_Finalize();
#endif
    d->mpi = 0;
}

int dist_agree(const dist *d, int code, int *who) {
    if (who) *who = d->rank;
#ifdef OODSEG_MPI
    if (d->mpi && d->size > 1) {
        // MAXLOC keeps the lowest rank among equal values: the first failing rank in rank order,
        // whose code then goes to everyone.
        int mine[2] = {code ? 1 : 0, d->rank}, best[2], c = code;
        MPI_Allreduce(mine, best, 1, MPI_2INT, MPI_MAXLOC, MPI_COMM_WORLD);
        int root = best[0] ? best[1] : 0;
        MPI_Bcast(&c, 1, MPI_INT, root, MPI_COMM_WORLD);
        if (who) *who = root;
        return best[0] ? c : 0;
    }
#endif
    return code;
}
