/*
 * test_split.c - hring_comm_split: new communicators from the ranks of one.
 *
 * 4 ranks (mp_run) split their communicator and check:
 *  - even/odd colors with keys in reverse order: the new rank follows the
 *    key, then the parent rank; the size is the color's; an allreduce on
 *    each new communicator, with data distinct per color, gives exactly
 *    that color's sum; the parent still works while the children exist and
 *    after they are destroyed.  Over shm, over tcp, and across two emulated
 *    nodes (MP_NODES=2, colors chosen so that every child spans both);
 *  - HRING_SPLIT_NOCOLOR on one rank (NULL, success), 1-rank children;
 *  - bad arguments on one rank (a color below -1, a NULL newcomm): that
 *    rank gets HRING_ERR_INVALID_ARGUMENT, every other rank
 *    HRING_ERR_REMOTE, within seconds (not at the deadline), nothing is
 *    written and the parent still works;
 *  - a child init that fails on one rank (HRING_BIND set to garbage on it
 *    only): every rank returns an error within seconds and keeps nothing,
 *    the parent still works, and the process holds what it held before
 *    (the bootstrap root of the failed child ended too);
 *  - a child that fails (its members disagree on a count) leaves the
 *    parent and the other child unharmed; a failed parent refuses to split,
 *    at once;
 *  - repeated split/destroy cycles give back every fd, thread and shared
 *    segment (tests/mp/resources.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mp.h"
#include "resources.h"

#define NR 4
#define COUNT 65543 /* large enough for the ring, not a multiple of anything */
#define FAST_S 10.0 /* a failed split must end far below HRING_TIMEOUT_MS */

typedef enum { COLOR_EVEN_ODD, COLOR_HALVES, COLOR_SELF } color_mode_t;

static int color_of(color_mode_t mode, int rank) {
  switch (mode) {
  case COLOR_EVEN_ODD: return rank % 2;
  case COLOR_HALVES: return rank / 2;
  case COLOR_SELF: return rank;
  }
  return 0;
}

/* The new rank and size the split must give: order by key, then rank. */
static void expected_place(const int *colors, const int *keys, int n, int rank, int *crank,
                           int *csize) {
  *crank = 0;
  *csize = 0;
  for (int p = 0; p < n; p++) {
    if (colors[p] != colors[rank]) continue;
    (*csize)++;
    if (keys[p] < keys[rank] || (keys[p] == keys[rank] && p < rank)) (*crank)++;
  }
}

/* An int32 allreduce with values distinct per color and per rank, checked
 * exactly against the sum over the communicator's ranks. */
static void check_allreduce(hring_comm_t comm, int tag, const char *what, int parent_rank) {
  int rank = -1, size = 0;
  HREQUIRE(hring_comm_rank(comm, &rank) == HRING_SUCCESS &&
               hring_comm_size(comm, &size) == HRING_SUCCESS,
           "%s: rank/size: %s", what, hring_last_error());
  int32_t *x = malloc(sizeof *x * COUNT);
  HREQUIRE(x, "malloc");
  for (int i = 0; i < COUNT; i++) x[i] = tag * 100000 + rank * 100 + i % 97;
  hring_result_t r = hring_allreduce(x, x, COUNT, HRING_INT32, HRING_SUM, comm, NULL);
  HREQUIRE(r == HRING_SUCCESS, "rank %d: %s allreduce: %s: %s", parent_rank, what,
           hring_strerror(r), hring_last_error());
  int bad = 0;
  for (int i = 0; i < COUNT && bad < 5; i++) {
    int32_t want = size * (tag * 100000 + i % 97) + 100 * (size * (size - 1) / 2);
    if (x[i] != want) {
      HCHECK(0, "rank %d: %s: x[%d] = %d, want %d", parent_rank, what, i, (int)x[i], (int)want);
      bad++;
    }
  }
  free(x);
}

/* ---- the split itself ---- */

typedef struct {
  color_mode_t mode;
  int nodes; /* expected node count of every child (0: not checked) */
} split_arg_t;

static void split_body(hring_comm_t comm, int rank, int n, void *argp) {
  const split_arg_t *a = argp;
  int colors[NR], keys[NR];
  for (int p = 0; p < n; p++) {
    colors[p] = color_of(a->mode, p);
    keys[p] = n - p; /* reversed */
  }
  int want_rank, want_size;
  expected_place(colors, keys, n, rank, &want_rank, &want_size);

  hring_comm_t child = (hring_comm_t)(uintptr_t)0x1;
  hring_result_t r = hring_comm_split(comm, colors[rank], keys[rank], &child);
  HREQUIRE(r == HRING_SUCCESS, "rank %d: split: %s: %s", rank, hring_strerror(r),
           hring_last_error());
  HREQUIRE(child != NULL && child != comm, "rank %d: no new communicator", rank);
  int crank = -1, csize = -1;
  HCHECK(hring_comm_rank(child, &crank) == HRING_SUCCESS && crank == want_rank,
         "rank %d: new rank %d, want %d", rank, crank, want_rank);
  HCHECK(hring_comm_size(child, &csize) == HRING_SUCCESS && csize == want_size,
         "rank %d: new size %d, want %d", rank, csize, want_size);
  if (a->nodes > 0) {
    int nodes = -1;
    HCHECK(hring_comm_node_count(child, &nodes) == HRING_SUCCESS && nodes == a->nodes,
           "rank %d: the new communicator spans %d nodes, want %d", rank, nodes, a->nodes);
  }

  check_allreduce(child, colors[rank] + 1, "child", rank);
  check_allreduce(comm, 7, "parent while the children exist", rank);
  check_allreduce(child, colors[rank] + 11, "child after the parent", rank);
  HCHECK(hring_comm_destroy(child) == HRING_SUCCESS, "rank %d: destroy child: %s", rank,
         hring_last_error());
  check_allreduce(comm, 8, "parent after the children", rank);
  hring_result_t async = HRING_ERR_INTERNAL;
  HCHECK(hring_comm_get_async_error(comm, &async) == HRING_SUCCESS && async == HRING_SUCCESS,
         "rank %d: parent async error %s", rank, hring_strerror(async));
}

static void run_split(const char *transports, const char *nodes, color_mode_t mode,
                      int want_nodes) {
  if (transports) setenv("HRING_TRANSPORTS", transports, 1);
  if (nodes) setenv("MP_NODES", nodes, 1);
  setenv("HRING_TIMEOUT_MS", "20000", 1);
  split_arg_t a = {mode, want_nodes};
  HREQUIRE(mp_run(NR, split_body, &a) == 0, "a rank failed");
}

HTEST(split_even_odd_shm, 60) { run_split("shm", NULL, COLOR_EVEN_ODD, 1); }
HTEST(split_even_odd_tcp, 60) { run_split("tcp", NULL, COLOR_EVEN_ODD, 0); }
/* Emulated nodes r % 2: colors r / 2 put one rank of each node in every
 * child, which then talks over tcp between its nodes. */
HTEST(split_across_nodes, 60) { run_split(NULL, "2", COLOR_HALVES, 2); }
HTEST(split_one_rank_children, 60) { run_split("shm", NULL, COLOR_SELF, 1); }

/* ---- no color ---- */

static void nocolor_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg;
  hring_comm_t child = (hring_comm_t)(uintptr_t)0x1;
  int color = rank == 1 ? HRING_SPLIT_NOCOLOR : 5;
  hring_result_t r = hring_comm_split(comm, color, 0, &child);
  HREQUIRE(r == HRING_SUCCESS, "rank %d: split: %s: %s", rank, hring_strerror(r),
           hring_last_error());
  if (rank == 1) {
    HCHECK(child == NULL, "rank 1 (no color): got a communicator");
  } else {
    HREQUIRE(child != NULL, "rank %d: no communicator", rank);
    int crank = -1, csize = -1;
    HCHECK(hring_comm_rank(child, &crank) == HRING_SUCCESS && crank == (rank == 0 ? 0 : rank - 1),
           "rank %d: new rank %d", rank, crank);
    HCHECK(hring_comm_size(child, &csize) == HRING_SUCCESS && csize == n - 1,
           "rank %d: new size %d, want %d", rank, csize, n - 1);
    check_allreduce(child, 3, "child without rank 1", rank);
    HCHECK(hring_comm_destroy(child) == HRING_SUCCESS, "destroy: %s", hring_last_error());
  }
  /* Nobody has a color: every rank gets NULL. */
  child = (hring_comm_t)(uintptr_t)0x1;
  r = hring_comm_split(comm, HRING_SPLIT_NOCOLOR, rank, &child);
  HCHECK(r == HRING_SUCCESS && child == NULL, "rank %d: all no-color: %s, %p", rank,
         hring_strerror(r), (void *)child);
  check_allreduce(comm, 4, "parent", rank);
}

HTEST(split_nocolor, 60) {
  setenv("HRING_TRANSPORTS", "shm", 1);
  setenv("HRING_TIMEOUT_MS", "20000", 1);
  HREQUIRE(mp_run(NR, nocolor_body, NULL) == 0, "a rank failed");
}

/* ---- bad arguments on one rank ---- */

static void expect_refused(hring_result_t r, int rank, int culprit, hring_comm_t child,
                           double t0, const char *what) {
  double dt = res_now() - t0;
  hring_result_t want = rank == culprit ? HRING_ERR_INVALID_ARGUMENT : HRING_ERR_REMOTE;
  HCHECK(r == want, "rank %d: %s: got %s (%s), want %s", rank, what, hring_strerror(r),
         hring_last_error(), hring_strerror(want));
  HCHECK(strlen(hring_last_error()) > 0, "rank %d: %s: no message", rank, what);
  HCHECK(child == (hring_comm_t)(uintptr_t)0x1, "rank %d: %s: newcomm was written", rank, what);
  HCHECK(dt < FAST_S, "rank %d: %s: took %.1f s", rank, what, dt);
}

static void bad_args_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg, (void)n;
  hring_comm_t child = (hring_comm_t)(uintptr_t)0x1;
  /* Local refusals: nothing to take part in. */
  HCHECK(hring_comm_split(NULL, 0, 0, &child) == HRING_ERR_INVALID_ARGUMENT, "NULL comm");
  HCHECK(hring_comm_split((hring_comm_t)(uintptr_t)0x1000, 0, 0, &child) ==
             HRING_ERR_INVALID_ARGUMENT,
         "garbage comm");

  double t0 = res_now();
  hring_result_t r = hring_comm_split(comm, rank == 2 ? -5 : 0, 0, &child);
  expect_refused(r, rank, 2, child, t0, "color -5 on rank 2");
  if (rank != 2)
    HCHECK(strstr(hring_last_error(), "rank 2") != NULL, "rank %d: the message does not name "
           "rank 2: %s", rank, hring_last_error());
  check_allreduce(comm, 1, "parent after a refused split", rank);

  t0 = res_now();
  r = hring_comm_split(comm, rank % 2, 0, rank == 0 ? NULL : &child);
  expect_refused(r, rank, 0, child, t0, "NULL newcomm on rank 0");
  check_allreduce(comm, 2, "parent after a refused split", rank);

  /* And a good one afterwards. */
  r = hring_comm_split(comm, rank % 2, rank, &child);
  HREQUIRE(r == HRING_SUCCESS, "rank %d: split after refusals: %s", rank, hring_last_error());
  check_allreduce(child, rank % 2 + 1, "child after refusals", rank);
  HCHECK(hring_comm_destroy(child) == HRING_SUCCESS, "destroy");
}

HTEST(split_bad_color_all_fail, 60) {
  setenv("HRING_TRANSPORTS", "shm", 1);
  setenv("HRING_TIMEOUT_MS", "20000", 1);
  HREQUIRE(mp_run(NR, bad_args_body, NULL) == 0, "a rank failed");
}

HTEST(split_bad_color_all_fail_tcp, 60) {
  setenv("HRING_TRANSPORTS", "tcp", 1);
  setenv("HRING_TIMEOUT_MS", "20000", 1);
  HREQUIRE(mp_run(NR, bad_args_body, NULL) == 0, "a rank failed");
}

/* ---- a child init that fails on one rank ---- */

static void init_fail_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg, (void)n;
  /* A warm-up split, so that what the first one leaves for good (caches
   * of the topology) is in the counts. */
  hring_comm_t child = NULL;
  HREQUIRE(hring_comm_split(comm, rank % 2, 0, &child) == HRING_SUCCESS, "warm-up split: %s",
           hring_last_error());
  HREQUIRE(hring_comm_destroy(child) == HRING_SUCCESS, "destroy");
  check_allreduce(comm, 1, "parent", rank);
  int fds = res_fds(0), threads = res_threads(0), shm = res_shm_count(getpid());

  /* Rank 1's init fails before it joins its child's bootstrap (an unknown
   * HRING_BIND is refused first); rank 3, its peer, waits there. */
  if (rank == 1) setenv("HRING_BIND", "garbage", 1);
  child = (hring_comm_t)(uintptr_t)0x1;
  double t0 = res_now();
  hring_result_t r = hring_comm_split(comm, rank % 2, 0, &child);
  double dt = res_now() - t0;
  if (rank == 1) unsetenv("HRING_BIND");
  HCHECK(r != HRING_SUCCESS, "rank %d: the split succeeded", rank);
  HCHECK(rank != 1 || r == HRING_ERR_INVALID_ARGUMENT, "rank 1: got %s (%s)", hring_strerror(r),
         hring_last_error());
  HCHECK(rank == 1 || r == HRING_ERR_REMOTE, "rank %d: got %s (%s)", rank, hring_strerror(r),
         hring_last_error());
  HCHECK(child == (hring_comm_t)(uintptr_t)0x1, "rank %d: newcomm was written", rank);
  HCHECK(dt < FAST_S, "rank %d: the failed split took %.1f s", rank, dt);
  check_allreduce(comm, 2, "parent after a failed split", rank);
  /* Nothing left: the children made were destroyed, and the bootstrap
   * roots (rank 0's and rank 1's) have ended. */
  int settled = res_settle(fds, threads, shm, 5.0);
  HCHECK(settled, "rank %d: fds %d -> %d, threads %d -> %d, shm %d -> %d after a failed split",
         rank, fds, res_fds(0), threads, res_threads(0), shm, res_shm_count(getpid()));
  if (!settled) res_print_fds("after a failed split");

  /* The same split works once the cause is gone. */
  r = hring_comm_split(comm, rank % 2, 0, &child);
  HREQUIRE(r == HRING_SUCCESS, "rank %d: split after the failure: %s", rank, hring_last_error());
  check_allreduce(child, rank % 2 + 1, "child after a failed split", rank);
  HCHECK(hring_comm_destroy(child) == HRING_SUCCESS, "destroy");
}

HTEST(split_init_fails_all_fail, 60) {
  setenv("HRING_TRANSPORTS", "shm", 1);
  setenv("HRING_TIMEOUT_MS", "20000", 1);
  HREQUIRE(mp_run(NR, init_fail_body, NULL) == 0, "a rank failed");
}

/* ---- a failed child leaves the parent alone ---- */

static void child_fails_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg, (void)n;
  hring_comm_t child = NULL;
  HREQUIRE(hring_comm_split(comm, rank % 2, 0, &child) == HRING_SUCCESS, "split: %s",
           hring_last_error());
  /* Color 0 is ranks 0 and 2: they disagree on the count, which fails
   * both their children (docs/reliability.md), and nothing else. */
  if (rank % 2 == 0) {
    int32_t x[32] = {0};
    double t0 = res_now();
    hring_result_t r =
        hring_allreduce(x, x, rank == 0 ? 16 : 32, HRING_INT32, HRING_SUM, child, NULL);
    HCHECK(r != HRING_SUCCESS, "rank %d: mismatched allreduce succeeded", rank);
    HCHECK(res_now() - t0 < FAST_S, "rank %d: the failure took %.1f s", rank, res_now() - t0);
    hring_result_t async = HRING_SUCCESS;
    HCHECK(hring_comm_get_async_error(child, &async) == HRING_SUCCESS && async != HRING_SUCCESS,
           "rank %d: the child is not failed", rank);
  } else {
    check_allreduce(child, 9, "the other child", rank);
  }
  check_allreduce(comm, 5, "parent after a child failed", rank);
  hring_result_t async = HRING_ERR_INTERNAL;
  HCHECK(hring_comm_get_async_error(comm, &async) == HRING_SUCCESS && async == HRING_SUCCESS,
         "rank %d: parent async error %s", rank, hring_strerror(async));
  HCHECK(hring_comm_destroy(child) == HRING_SUCCESS, "destroy");
  check_allreduce(comm, 6, "parent after the children", rank);
}

HTEST(split_child_failure_independent, 60) {
  setenv("HRING_TRANSPORTS", "shm", 1);
  setenv("HRING_TIMEOUT_MS", "20000", 1);
  HREQUIRE(mp_run(NR, child_fails_body, NULL) == 0, "a rank failed");
}

/* ---- a failed parent refuses ---- */

static void failed_parent_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg, (void)n;
  int32_t x[32] = {0};
  /* Rank 0 disagrees on the count: the parent fails on every rank. */
  hring_result_t r =
      hring_allreduce(x, x, rank == 0 ? 16 : 32, HRING_INT32, HRING_SUM, comm, NULL);
  HREQUIRE(r != HRING_SUCCESS, "rank %d: mismatched allreduce succeeded", rank);
  hring_comm_t child = (hring_comm_t)(uintptr_t)0x1;
  double t0 = res_now();
  r = hring_comm_split(comm, 0, 0, &child);
  HCHECK(r == HRING_ERR_INVALID_USAGE, "rank %d: split of a failed parent: %s", rank,
         hring_strerror(r));
  HCHECK(res_now() - t0 < 1.0, "rank %d: the refusal took %.1f s", rank, res_now() - t0);
  HCHECK(child == (hring_comm_t)(uintptr_t)0x1, "rank %d: newcomm was written", rank);
}

HTEST(split_failed_parent_refused, 60) {
  setenv("HRING_TRANSPORTS", "shm", 1);
  setenv("HRING_TIMEOUT_MS", "20000", 1);
  HREQUIRE(mp_run(NR, failed_parent_body, NULL) == 0, "a rank failed");
}

/* ---- resources ---- */

static void cycles_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg, (void)n;
  hring_comm_t child = NULL;
  HREQUIRE(hring_comm_split(comm, rank % 2, 0, &child) == HRING_SUCCESS, "warm-up: %s",
           hring_last_error());
  HREQUIRE(hring_comm_destroy(child) == HRING_SUCCESS, "destroy");
  check_allreduce(comm, 1, "parent", rank);
  int fds = res_fds(0), threads = res_threads(0), shm = res_shm_count(getpid());
  for (int cycle = 0; cycle < 4; cycle++) {
    int color = cycle % 2 ? rank / 2 : rank % 2;
    HREQUIRE(hring_comm_split(comm, color, -rank, &child) == HRING_SUCCESS, "cycle %d: %s", cycle,
             hring_last_error());
    check_allreduce(child, color + 1, "child", rank);
    HREQUIRE(hring_comm_destroy(child) == HRING_SUCCESS, "destroy");
  }
  check_allreduce(comm, 2, "parent", rank);
  int settled = res_settle(fds, threads, shm, 5.0);
  HCHECK(settled, "rank %d: fds %d -> %d, threads %d -> %d, shm %d -> %d after 4 cycles", rank,
         fds, res_fds(0), threads, res_threads(0), shm, res_shm_count(getpid()));
  if (!settled) res_print_fds("after the cycles");
}

HTEST(split_resources_shm, 60) {
  setenv("HRING_TRANSPORTS", "shm", 1);
  setenv("HRING_TIMEOUT_MS", "20000", 1);
  HREQUIRE(mp_run(NR, cycles_body, NULL) == 0, "a rank failed");
}

HTEST(split_resources_tcp, 60) {
  setenv("HRING_TRANSPORTS", "tcp", 1);
  setenv("HRING_TIMEOUT_MS", "20000", 1);
  HREQUIRE(mp_run(NR, cycles_body, NULL) == 0, "a rank failed");
}
