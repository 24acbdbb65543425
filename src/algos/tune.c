/*
 * tune.c - the online choice of allreduce algorithm (tune.h).
 */
#include "algos/tune.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algos/choose.h"
#include "core/error.h"
#include "core/log.h"
#include "core/stats.h"

#define CLASSES 65 /* ceil(log2(bytes)): 0..64 */
#define MAX_CAND 5 /* the rule's or model's pick and the model's next four */
/* A trial is a block of calls in a row, the first untimed, long enough to
 * span some scheduling slices: one call timed alone after another
 * algorithm ran measured its latency from a standing start, and with 4
 * ranks on 2 cores that put the tree ahead of allpairs at 64 B where calls
 * back to back ran 2.4x slower with it; blocks of 3 timed calls still
 * picked 1.7-2.2x slow algorithms at 8 and 512 B, and blocks of 4 a tree
 * 1.5x slower than the direct exchange at 32 KiB with 8 ranks.  So a block
 * has 8 to 64 timed calls, about 256 KiB in all. */
static int block_of(size_t hi) {
  size_t b = ((size_t)256 << 10) / (hi ? hi : 1);
  return 1 + (b < 8 ? 8 : b > 64 ? 64 : (int)b);
}

enum { UNSEEN, TRYING, SETTLED };

struct tune_class {
  atomic_int settled; /* the pick once settled, else 0: read without the lock */
  atomic_long left;   /* settled: calls before the trials run again; 0 never */
  int state;
  int ncand, pick;
  int cand[MAX_CAND];
  int block; /* calls per trial (block_of) */
  int calls; /* trial calls made */
  double t[MAX_CAND][HRING_TUNE_MAX_REPS]; /* seconds per block's timed calls */
};

struct hring_tuner {
  pthread_mutex_t mu; /* hring_allreduce_algorithm may look from another thread */
  struct tune_class cls[CLASSES];
};

hring_result_t hring__tune_init(struct hring_comm *comm) {
  comm->tuner = NULL;
  if (comm->tune_max <= 0 || comm->algo_forced != HRING_ALGO_AUTO) return HRING_SUCCESS;
  struct hring_tuner *t = calloc(1, sizeof *t);
  if (!t) return hring__err(HRING_ERR_NO_MEMORY, "comm init");
  pthread_mutex_init(&t->mu, NULL);
  comm->tuner = t;
  return HRING_SUCCESS;
}

void hring__tune_free(struct hring_comm *comm) {
  if (!comm->tuner) return;
  pthread_mutex_destroy(&comm->tuner->mu);
  free(comm->tuner);
  comm->tuner = NULL;
}

static int class_of(size_t bytes) {
  int c = 0;
  while (c < 64 && ((size_t)1 << c) < bytes) c++;
  return c;
}

/* The candidates of class c: what hring__choose picks for its first size,
 * then the algorithms the model predicts fastest, each one that can run
 * every size of the class (hring__choice_ranked). */
static void start_class(struct hring_comm *comm, struct tune_class *k, int c, size_t bytes) {
  size_t hi = c >= 64 ? SIZE_MAX : (size_t)1 << c;
  int ranked[HRING_ALGO_COUNT];
  int n = hring__choice_ranked(comm, hi, ranked);
  k->cand[0] = hring__choose(comm, bytes);
  k->ncand = 1;
  for (int i = 0; i < n && k->ncand < MAX_CAND; i++)
    if (ranked[i] != k->cand[0]) k->cand[k->ncand++] = ranked[i];
  k->calls = 0;
  k->block = block_of(hi);
  k->state = k->ncand > 1 ? TRYING : SETTLED;
  k->pick = k->cand[0];
  if (k->state == SETTLED) atomic_store_explicit(&k->settled, k->pick, memory_order_release);
}

/* A settled class's trials once more, the pick first (it keeps its place
 * unless beaten by more than 3%); the tuner's mu held. */
static void restart_class(struct tune_class *k) {
  for (int i = 1; i < k->ncand; i++)
    if (k->cand[i] == k->pick) k->cand[i] = k->cand[0], k->cand[0] = k->pick;
  memset(k->t, 0, sizeof k->t);
  k->calls = 0;
  k->state = TRYING;
  atomic_store_explicit(&k->settled, 0, memory_order_relaxed);
}

int hring__tune_pick(struct hring_comm *comm, size_t bytes, int *trial) {
  struct hring_tuner *t = comm->tuner;
  if (trial) *trial = 0;
  if (!t || bytes > (size_t)comm->tune_max) return 0;
  int c = class_of(bytes), a;
  struct tune_class *k = &t->cls[c];
  /* A settled class's pick without the lock.  Only calls count towards
   * the next trials (trial set; a rank's calls run one at a time), never
   * hring_allreduce_algorithm's look, so every rank counts alike. */
  if ((a = atomic_load_explicit(&k->settled, memory_order_acquire)) != 0 &&
      (!trial || atomic_load_explicit(&k->left, memory_order_relaxed) == 0 ||
       atomic_fetch_sub_explicit(&k->left, 1, memory_order_relaxed) > 1))
    return a;
  pthread_mutex_lock(&t->mu);
  if (k->state == SETTLED && trial) restart_class(k);
  if (k->state == UNSEEN) start_class(comm, k, c, bytes);
  if (k->state == TRYING && k->calls < k->ncand * k->block * comm->tune_reps) {
    /* One block per candidate in turn, round after round, so that every
     * candidate sees the same drift. */
    a = k->cand[k->calls / k->block % k->ncand];
    if (trial) *trial = 1;
  } else {
    a = k->pick;
  }
  pthread_mutex_unlock(&t->mu);
  return a;
}

hring_result_t hring__tune_record(struct hring_comm *comm, size_t bytes, double secs) {
  struct hring_tuner *t = comm->tuner;
  int c = class_of(bytes), reps = comm->tune_reps;
  double med[MAX_CAND];
  pthread_mutex_lock(&t->mu);
  struct tune_class *k = &t->cls[c];
  const int b = k->block;
  int i = k->calls / b % k->ncand, r = k->calls / (b * k->ncand), last;
  if (k->calls % b) k->t[i][r] += secs; /* r < reps <= HRING_TUNE_MAX_REPS */
  last = ++k->calls == k->ncand * b * reps;
  for (int j = 0; last && j < k->ncand; j++) med[j] = hring__median(k->t[j], reps) / (b - 1);
  int ncand = k->ncand;
  pthread_mutex_unlock(&t->mu);
  if (!last) return HRING_SUCCESS;
  /* The slowest rank's median per candidate, on every rank: the ring runs
   * any count on any layout. */
  hring_coll_args_t a = {med, med, (size_t)ncand, sizeof med[0], HRING_FLOAT64, HRING_MAX, 0};
  HRING_CHECK(hring__allreduce_ring(comm, &a, hring__ring_chunk(comm, sizeof med)));
  /* The first candidate (the rule's or model's pick) keeps its place
   * unless another beats it by more than 3%: trials this short cannot
   * tell closer times apart. */
  int best = 0;
  for (int j = 1; j < ncand; j++)
    if (med[j] < med[best] && med[j] < 0.97 * med[0]) best = j;
  pthread_mutex_lock(&t->mu);
  k->pick = k->cand[best];
  k->state = SETTLED;
  /* The machine's modes last minutes: after retry times the trials' calls
   * (about 1% more of them at the default 100), the class tries again. */
  atomic_store_explicit(&k->left, (long)comm->tune_retry * k->ncand * b * reps,
                        memory_order_relaxed);
  atomic_store_explicit(&k->settled, k->pick, memory_order_release);
  pthread_mutex_unlock(&t->mu);
  char line[256]; /* once per class: cheap enough to build unlogged */
  int o = 0;
  for (int j = 0; j < ncand && o < (int)sizeof line - 40; j++)
    o += snprintf(line + o, sizeof line - (size_t)o, " %s %.1f", hring__algo_names[k->cand[j]],
                  med[j] * 1e6);
  HRING_INFO(HRING_SUB_COLL,
             "tuned allreduce of (%zu, %zu] bytes on %d ranks: %s (the slowest rank's median of "
             "%d rounds, us per call:%s)",
             c ? (size_t)1 << (c - 1) : 0, c >= 64 ? SIZE_MAX : (size_t)1 << c, comm->nranks,
             hring__algo_names[k->pick], reps, line);
  return HRING_SUCCESS;
}
