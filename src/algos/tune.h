/*
 * tune.h - the online choice of allreduce algorithm (HRING_TUNE=online).
 *
 * The cost model and the one-node rules pick an algorithm from figures
 * measured once; on a machine whose speed shifts between modes (ranks
 * outnumbering cores, docs/performance.md) the best algorithm at some
 * sizes changes with it.  With the tuner on, the first calls of each size
 * class (sizes in (2^(c-1), 2^c] bytes, up to HRING_TUNE_MAX) try the
 * rule's or model's pick and the model's next best in turn, HRING_TUNE_REPS
 * calls each, timed where they run; at the class's last trial the ranks
 * agree on the pick with one small allreduce (the slowest rank's median
 * per candidate), and every later call of the class runs it.  Every rank
 * makes the same calls in the same order, so every rank reaches that
 * agreement at the same call and settles on the same algorithm.  After
 * HRING_TUNE_RETRY times as many calls as the trials took, the class's
 * trials run again (counted in calls, so again at the same call on every
 * rank).
 */
#ifndef HRING_TUNE_H
#define HRING_TUNE_H

#include <stddef.h>
#include "algos/algo.h"

/* Most rounds of trials HRING_TUNE_REPS may ask for. */
#define HRING_TUNE_MAX_REPS 16
/* Largest HRING_TUNE_RETRY (times the trials' calls before trying again). */
#define HRING_TUNE_MAX_RETRY 1000000

/* Sets up the tuner where the agreed settings ask for one (comm->tune_max
 * > 0); called after hring__choice_init. */
hring_result_t hring__tune_init(struct hring_comm *comm);
void hring__tune_free(struct hring_comm *comm);

/* The algorithm the next auto allreduce of `bytes` runs under the tuner:
 * the class's settled pick or the candidate of its next trial; 0 where the
 * tuner has no say (off, or larger than HRING_TUNE_MAX).  `trial` (may be
 * NULL) is set when that call is a timed trial.  Starts the class's trials
 * at its first call. */
int hring__tune_pick(struct hring_comm *comm, size_t bytes, int *trial);

/* Records that the trial hring__tune_pick gave at `bytes` took `secs` on
 * this rank; the class's last trial agrees on its pick (a collective step
 * among every rank, inside the call that made the trial). */
hring_result_t hring__tune_record(struct hring_comm *comm, size_t bytes, double secs);

#endif
