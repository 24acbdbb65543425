/*
 * pmix.h - bootstrap through a PMIx server: OpenMPI's mpirun (4.x and
 * later) and Slurm's `srun --mpi=pmix` start every process as a PMIx client,
 * which gives hring its rank, the job size and a key-value store to pass the
 * unique id from rank 0 to the others (docs/launch.md).
 *
 * libhring never links libpmix: the library is loaded at run time, the first
 * time a process started by a PMIx server calls hring_comm_init_env, so
 * programs linking libhring.a need no -lpmix and run where libpmix is
 * absent.  The support is compiled only where <pmix.h> was found at build
 * time (HRING_HAVE_PMIX_H); a build without it says so when asked to use
 * PMIx.
 */
#ifndef HRING_CORE_PMIX_H
#define HRING_CORE_PMIX_H

#include <stdint.h>

#include "hring.h"

/* Whether this process was started by a PMIx server: servers put
 * PMIX_NAMESPACE and PMIX_RANK in the environment of every client. */
int hring__pmix_present(void);

/* Joins the PMIx job (PMIx_Init, once per process; PMIx_Finalize runs at
 * exit) and agrees on a unique id: rank 0 creates it with
 * hring_get_unique_id and publishes it (PMIx_Put, PMIx_Commit), every rank
 * takes part in a fence, and the others read it (PMIx_Get).  Collective over
 * all processes of the PMIx job: each call publishes under a new key, so
 * every process must call it the same number of times, in the same order.
 * Every wait ends within timeout_ms (a rank that never comes is reported,
 * not waited for).  Writes this process's rank and the job size. */
hring_result_t hring__pmix_unique_id(int64_t timeout_ms, hring_unique_id_t *id, int *rank,
                                     int *nranks);

/* One line on the PMIx support of this build and process, for tools:
 * compiled in or not, library loaded or why not, job joined or not. */
const char *hring__pmix_status(void);

#endif
