/*
 * test_tune.c - the online choice of allreduce algorithm (HRING_TUNE=online,
 * src/algos/tune.c): the first calls of a size try several algorithms, the
 * ranks then settle on one and agree on it; results are right throughout;
 * the tuner runs only where every rank asked for it and HRING_ALGO does not
 * force an algorithm; bad settings fail the init with a message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/comm.h"
#include "mp.h"

#define COUNT 128 /* 512 bytes of int32: trials of up to 5 candidates */
#define CALLS 1000 /* > 5 candidates x 65 calls x 2 rounds (HRING_TUNE_REPS=2) */
#define STABLE 300 /* the last calls, after the trials */

typedef struct {
  int changes;        /* times the named algorithm changed between calls */
  int last_change;    /* call after which it last changed */
  char settled[32];
} trace_t;

/* CALLS allreduces of COUNT int32 on c, each result checked, and the
 * algorithm named after each. */
static void run_calls(hring_comm_t c, int rank, int n, trace_t *t) {
  int32_t in[COUNT], out[COUNT];
  for (int i = 0; i < COUNT; i++) in[i] = (rank + 1) * (i % 5 + 1);
  const int32_t sum = n * (n + 1) / 2;
  const char *prev = NULL, *cur = NULL;
  memset(t, 0, sizeof *t);
  int wrong = 0;
  for (int k = 0; k < CALLS; k++) {
    HREQUIRE(hring_allreduce(in, out, COUNT, HRING_INT32, HRING_SUM, c, NULL) == HRING_SUCCESS,
             "rank %d call %d: %s", rank, k, hring_last_error());
    for (int i = 0; i < COUNT; i++) wrong += out[i] != sum * (i % 5 + 1);
    HREQUIRE(hring_allreduce_algorithm(c, COUNT, HRING_INT32, &cur) == HRING_SUCCESS, "name: %s",
             hring_last_error());
    if (prev && strcmp(prev, cur)) t->changes++, t->last_change = k;
    prev = cur;
  }
  HCHECK(wrong == 0, "rank %d: %d wrong elements", rank, wrong);
  snprintf(t->settled, sizeof t->settled, "%s", cur);
}

/* The same name on every rank: its first letters, min and max. */
static void check_same_everywhere(hring_comm_t c, int rank, const char *name) {
  int64_t code = (int64_t)name[0] << 16 | (int64_t)name[1] << 8 | name[2], lo = code, hi = code;
  HCHECK(hring_allreduce(&lo, &lo, 1, HRING_INT64, HRING_MIN, c, NULL) == HRING_SUCCESS &&
             hring_allreduce(&hi, &hi, 1, HRING_INT64, HRING_MAX, c, NULL) == HRING_SUCCESS &&
             lo == hi, "rank %d: ranks settled on different algorithms (this one: %s)", rank, name);
}

static hring_comm_t split_with(hring_comm_t comm, int rank, const char *tune, const char *algo) {
  hring_comm_t c;
  if (tune) setenv("HRING_TUNE", tune, 1);
  else unsetenv("HRING_TUNE");
  if (algo) setenv("HRING_ALGO", algo, 1);
  else unsetenv("HRING_ALGO");
  HREQUIRE(hring_comm_split(comm, 0, rank, &c) == HRING_SUCCESS, "split: %s", hring_last_error());
  unsetenv("HRING_TUNE");
  unsetenv("HRING_ALGO");
  return c;
}

/* Every rank online: the named algorithm changes while candidates are
 * tried, then stays for the last STABLE calls, the same on every rank.
 * Rank 0 alone online, or HRING_ALGO set: the tuner stays off and the name
 * never changes. */
static void tune_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg;
  trace_t t;
  setenv("HRING_TUNE_REPS", "2", 1);
  hring_comm_t on = split_with(comm, rank, "online", NULL);
  HCHECK(on->tuner != NULL && on->tune_max > 0, "rank %d: tuner off with HRING_TUNE=online", rank);
  run_calls(on, rank, n, &t);
  HCHECK(t.changes >= 2, "rank %d: the algorithm changed %d times while tuning (trials of at "
         "least two candidates change it twice)", rank, t.changes);
  HCHECK(t.last_change < CALLS - STABLE, "rank %d: still changing at call %d of %d", rank,
         t.last_change, CALLS);
  check_same_everywhere(on, rank, t.settled);
  if (rank == 0) printf("  tried %d changes, settled on %s at call %d\n", t.changes, t.settled,
                        t.last_change + 1);
  hring_comm_destroy(on);

  hring_comm_t some = split_with(comm, rank, rank == 0 ? "online" : NULL, NULL);
  HCHECK(some->tuner == NULL && some->tune_max == 0, "rank %d: tuner on though only rank 0 "
         "asked", rank);
  run_calls(some, rank, n, &t);
  HCHECK(t.changes == 0, "rank %d: rank 0 alone online, the algorithm changed %d times", rank,
         t.changes);
  hring_comm_destroy(some);

  hring_comm_t forced = split_with(comm, rank, "online", "tree");
  run_calls(forced, rank, n, &t);
  HCHECK(t.changes == 0 && !strcmp(t.settled, "tree"), "rank %d: HRING_ALGO=tree with the "
         "tuner: %d changes, ran %s", rank, t.changes, t.settled);
  hring_comm_destroy(forced);
  unsetenv("HRING_TUNE_REPS");
}

HTEST(tune_online_tries_then_agrees, 120) {
  HCHECK(mp_run(4, tune_body, NULL) == 0, "ranks failed");
}

/* The same on 4 ranks as 2 emulated nodes (tcp between them), where the
 * candidates are the model's and include the hierarchical algorithms. */
HTEST(tune_online_across_nodes, 120) {
  setenv("MP_NODES", "2", 1);
  HCHECK(mp_run(4, tune_body, NULL) == 0, "ranks failed");
  unsetenv("MP_NODES");
}

/* HRING_TUNE_RETRY: a settled class tries again after that many times its
 * trials' calls.  With 1, the name changes again once the class has run
 * its pick for as many calls as the first trials took (a second round of
 * trials starts with the pick, then changes to the next candidate); with
 * 0 it never does.  Every result right, the same pick on every rank. */
static void retry_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg;
  trace_t once, again;
  setenv("HRING_TUNE_REPS", "1", 1);
  setenv("HRING_TUNE_RETRY", "0", 1);
  hring_comm_t c = split_with(comm, rank, "online", NULL);
  run_calls(c, rank, n, &once);
  hring_comm_destroy(c);
  setenv("HRING_TUNE_RETRY", "1", 1);
  c = split_with(comm, rank, "online", NULL);
  run_calls(c, rank, n, &again);
  check_same_everywhere(c, rank, again.settled);
  hring_comm_destroy(c);
  unsetenv("HRING_TUNE_RETRY");
  unsetenv("HRING_TUNE_REPS");
  const int block = 65; /* 512 bytes: block_of in tune.c */
  HCHECK(once.changes >= 1 && once.last_change < 5 * block,
         "rank %d: without re-trials the name changed %d times, last at call %d", rank,
         once.changes, once.last_change);
  HCHECK(again.last_change > once.last_change + block && again.changes > once.changes,
         "rank %d: with HRING_TUNE_RETRY=1 the name last changed at call %d (%d changes), "
         "without at %d (%d): no second round of trials",
         rank, again.last_change, again.changes, once.last_change, once.changes);
  if (rank == 0)
    printf("  last change at call %d once, %d with re-trials (%d and %d changes)\n",
           once.last_change + 1, again.last_change + 1, once.changes, again.changes);
}

HTEST(tune_online_tries_again, 120) {
  HCHECK(mp_run(4, retry_body, NULL) == 0, "ranks failed");
}

/* Bad settings fail the init and say which. */
HTEST(tune_bad_settings_refused, 30) {
  static const char *const bad[][4] = {
      {"bogus", "5", "100", "HRING_TUNE=bogus"},
      {"online", "0", "100", "HRING_TUNE_REPS=0"},
      {"online", "17", "100", "HRING_TUNE_REPS=17"},
      {"online", "5", "-1", "HRING_TUNE_RETRY=-1"},
      {"online", "5", "1000001", "HRING_TUNE_RETRY=1000001"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    setenv("HRING_TUNE", bad[i][0], 1);
    setenv("HRING_TUNE_REPS", bad[i][1], 1);
    setenv("HRING_TUNE_RETRY", bad[i][2], 1);
    hring_unique_id_t id;
    hring_comm_t c;
    HREQUIRE(hring_get_unique_id(&id) == HRING_SUCCESS, "id");
    hring_result_t r = hring_comm_init_rank(&c, 1, id, 0);
    HCHECK(r == HRING_ERR_INVALID_ARGUMENT && strstr(hring_last_error(), bad[i][3]),
           "%s: %s (%s)", bad[i][3], hring_strerror(r), hring_last_error());
    if (r == HRING_SUCCESS) hring_comm_destroy(c);
  }
  unsetenv("HRING_TUNE");
  unsetenv("HRING_TUNE_REPS");
  unsetenv("HRING_TUNE_RETRY");
}

/* Nonblocking allreduces run on the progress thread, where the tuner times
 * them (and, with HRING_TUNE_RETRY=1, starts its trials again), while this
 * thread asks what runs (hring_allreduce_algorithm reads the tuner's
 * state): every result right, and the ranks end on the same algorithm.  Its name starts with nonblocking_ so that CI runs it under
 * ThreadSanitizer. */
#define NB_BATCH 16
static void nb_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg;
  setenv("HRING_TUNE_REPS", "1", 1);
  setenv("HRING_TUNE_RETRY", "1", 1); /* the trials run again from call 650 */
  hring_comm_t on = split_with(comm, rank, "online", NULL);
  unsetenv("HRING_TUNE_REPS");
  unsetenv("HRING_TUNE_RETRY");
  static int32_t in[NB_BATCH][COUNT], out[NB_BATCH][COUNT];
  for (int b = 0; b < NB_BATCH; b++)
    for (int i = 0; i < COUNT; i++) in[b][i] = (rank + 1) * (b + i % 3 + 1);
  const int32_t sum = n * (n + 1) / 2;
  int wrong = 0;
  const char *name = NULL;
  for (int round = 0; round < 60; round++) { /* 960 calls: trials, settled, trials again */
    hring_request_t req[NB_BATCH];
    for (int b = 0; b < NB_BATCH; b++) {
      HREQUIRE(hring_iallreduce(in[b], out[b], COUNT, HRING_INT32, HRING_SUM, on, &req[b]) ==
                   HRING_SUCCESS, "iallreduce: %s", hring_last_error());
      HREQUIRE(hring_allreduce_algorithm(on, COUNT, HRING_INT32, &name) == HRING_SUCCESS,
               "name: %s", hring_last_error());
    }
    HREQUIRE(hring_waitall(NB_BATCH, req) == HRING_SUCCESS, "waitall: %s", hring_last_error());
    for (int b = 0; b < NB_BATCH; b++)
      for (int i = 0; i < COUNT; i++) wrong += out[b][i] != sum * (b + i % 3 + 1);
  }
  HCHECK(wrong == 0, "rank %d: %d wrong elements", rank, wrong);
  HREQUIRE(hring_allreduce_algorithm(on, COUNT, HRING_INT32, &name) == HRING_SUCCESS, "name");
  check_same_everywhere(on, rank, name);
  hring_comm_destroy(on);
}

HTEST(nonblocking_tuned_in_the_progress_thread, 120) {
  HCHECK(mp_run(3, nb_body, NULL) == 0, "ranks failed");
}
