/*
 * test_fusion.c - gradient buckets (hring_fusion.h): results equal an
 * unfused reference bit for bit in every mode, arena and packed, with and
 * without averaging; buckets launch in order whatever order tensors become
 * ready in, from several threads; the planned mode replans from measured
 * timing and every rank cuts the same buckets; bad input is refused.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hring_fusion.h"
#include "mp.h"
#include "values.h"

#define NT 23 /* tensors per test model */

/* Sizes of a small model: mixed small and large tensors, like a network's
 * biases and weights. */
static size_t tensor_count(int i) {
  static const size_t c[] = {1, 1000, 7, 4096, 3, 65536 + 5, 64, 1, 20000, 513, 2, 100000};
  return c[i % 12] + (size_t)i;
}

/* Element j of tensor i on rank r: a small integer, exact in any order. */
static float value(int r, int i, size_t j) { return (float)((r + 1) * (int)((i + j) % 7 + 1)); }

typedef struct {
  const char *mode;
  int packed, average, steps, threads, shuffle;
} fuse_case_t;

typedef struct {
  hring_fusion_t f;
  const int *order;
  int from, to;
  hring_result_t r;
} marker_t;

static void *mark_range(void *arg) {
  marker_t *m = arg;
  for (int k = m->from; k < m->to && m->r == HRING_SUCCESS; k++)
    m->r = hring_fusion_ready(m->f, m->order[k]);
  return NULL;
}

/* Marks every tensor ready: in backward order, or shuffled (differently
 * on every rank), from one thread or several. */
static int mark_all(hring_fusion_t f, const fuse_case_t *c, int rank, int step) {
  int order[NT];
  for (int i = 0; i < NT; i++) order[i] = i;
  if (c->shuffle) {
    unsigned s = (unsigned)(rank * 7919 + step * 31 + 1);
    for (int i = NT - 1; i > 0; i--) {
      int j = (int)(rand_r(&s) % (unsigned)(i + 1)), t = order[i];
      order[i] = order[j], order[j] = t;
    }
  }
  int nth = c->threads > 1 ? c->threads : 1;
  marker_t m[4];
  pthread_t th[4];
  for (int t = 0; t < nth; t++) {
    m[t] = (marker_t){f, order, NT * t / nth, NT * (t + 1) / nth, HRING_SUCCESS};
    if (nth > 1) pthread_create(&th[t], NULL, mark_range, &m[t]);
    else mark_range(&m[t]);
  }
  int bad = 0;
  for (int t = 0; t < nth; t++) {
    if (nth > 1) pthread_join(th[t], NULL);
    bad |= m[t].r != HRING_SUCCESS;
  }
  return bad;
}

static void fuse_body(hring_comm_t comm, int rank, int n, void *arg) {
  const fuse_case_t *c = arg;
  float *own[NT] = {0}, *ref[NT];
  hring_fusion_tensor_t t[NT];
  for (int i = 0; i < NT; i++) {
    size_t cnt = tensor_count(i);
    ref[i] = malloc(cnt * sizeof(float));
    if (c->packed) own[i] = malloc(cnt * sizeof(float));
    t[i] = (hring_fusion_tensor_t){own[i], cnt};
  }
  hring_fusion_opts_t o = {HRING_FLOAT32, HRING_SUM, c->average, c->mode, NULL};
  hring_fusion_t f = NULL;
  hring_result_t r = hring_fusion_create(comm, NT, t, &o, &f);
  HREQUIRE(r == HRING_SUCCESS, "rank %d: create %s: %s", rank, c->mode, hring_last_error());
  for (int step = 0; step < c->steps; step++) {
    for (int i = 0; i < NT; i++) {
      float *d = hring_fusion_tensor(f, i);
      HREQUIRE(d != NULL, "rank %d: tensor %d has no place", rank, i);
      for (size_t j = 0; j < t[i].count; j++) d[j] = ref[i][j] = value(rank, i + step, j);
      /* The unfused reference: one blocking allreduce per tensor. */
      HREQUIRE(hring_allreduce(ref[i], ref[i], t[i].count, HRING_FLOAT32,
                               c->average ? HRING_AVG : HRING_SUM, comm, NULL) == HRING_SUCCESS,
               "rank %d: reference: %s", rank, hring_last_error());
    }
    HCHECK(mark_all(f, c, rank, step) == 0, "rank %d step %d: ready: %s", rank, step,
           hring_last_error());
    r = hring_fusion_wait(f);
    HREQUIRE(r == HRING_SUCCESS, "rank %d step %d: wait: %s", rank, step, hring_last_error());
    for (int i = 0; i < NT; i++)
      HCHECK(memcmp(hring_fusion_tensor(f, i), ref[i], t[i].count * sizeof(float)) == 0,
             "rank %d step %d mode %s: tensor %d differs from the unfused reference", rank, step,
             c->mode, i);
  }
  /* Every rank cut the same buckets. */
  int first[NT], k = hring_fusion_buckets(f, first, NT);
  uint64_t h = values_hash(first, sizeof(int) * (size_t)k) ^ (uint64_t)k, all[16];
  HREQUIRE(n <= 16 && hring_allgather(&h, all, 1, HRING_UINT64, comm, NULL) == HRING_SUCCESS,
           "allgather");
  for (int p = 0; p < n; p++) HCHECK(all[p] == all[0], "rank %d cut other buckets than rank 0", p);
  HCHECK(hring_fusion_destroy(f) == HRING_SUCCESS, "destroy");
  for (int i = 0; i < NT; i++) free(ref[i]), free(own[i]);
}

static void run_cases(int nranks, const fuse_case_t *cases, int ncases) {
  for (int k = 0; k < ncases; k++)
    HCHECK(mp_run(nranks, fuse_body, (void *)&cases[k]) == 0,
           "%d ranks, mode %s, %s%s, threads %d, shuffled %d: a rank failed", nranks,
           cases[k].mode, cases[k].packed ? "packed" : "arena",
           cases[k].average ? ", averaged" : "", cases[k].threads, cases[k].shuffle);
}

static const fuse_case_t modes_cases[] = {
    {"none", 0, 0, 2, 1, 0},        {"threshold:256K", 0, 0, 2, 1, 0},
    {"ddp", 1, 0, 2, 1, 0},         {"planned", 0, 0, 11, 1, 0},
    {"planned", 1, 1, 11, 1, 0},     {"threshold:4K", 1, 1, 2, 1, 0},
};

HTEST(fusion_modes_equal_unfused, 90) {
  run_cases(3, modes_cases, (int)(sizeof modes_cases / sizeof modes_cases[0]));
}

HTEST(fusion_modes_equal_unfused_tcp, 90) {
  setenv("MP_NODES", "2", 1);
  run_cases(4, modes_cases, 4);
}

HTEST(fusion_caller_progress, 90) {
  setenv("HRING_PROGRESS", "caller", 1);
  run_cases(2, modes_cases, (int)(sizeof modes_cases / sizeof modes_cases[0]));
}

/* Tensors ready in a different order on every rank and from several
 * threads: buckets still launch in order, so no rank disagrees. */
HTEST(fusion_any_order_any_thread, 90) {
  static const fuse_case_t c[] = {
      {"threshold:64K", 0, 0, 4, 3, 1}, {"none", 1, 0, 3, 2, 1}, {"planned", 0, 1, 11, 4, 1}};
  run_cases(4, c, 3);
}

/* planned without compute times: DDP's buckets first, then, once the
 * backward is timed (HRING_FUSION_WARMUP steps after the first), the
 * planner's.  Tensors 18..22 become ready 40 ms after the others, all at
 * once: the best plans cut before 18 (a bucket holding 17 and 18 would
 * carry more bytes after the last ready).  Whether 18..22 then go as one
 * bucket or several depends on the measured cost of small allreduces: the
 * plan with slack splits them where that ends no later (seen under ASan). */
/* Whether a bucket of the plan (first tensors first[0..k)) starts at t. */
static int cuts_at(const int *first, int k, int t) {
  for (int j = 0; j < k; j++)
    if (first[j] == t) return 1;
  return 0;
}

static void replan_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)n, (void)arg;
  hring_fusion_tensor_t t[NT];
  for (int i = 0; i < NT; i++) t[i] = (hring_fusion_tensor_t){NULL, tensor_count(i)};
  hring_fusion_opts_t o = {HRING_FLOAT32, HRING_SUM, 0, "planned", NULL};
  hring_fusion_t f;
  HREQUIRE(hring_fusion_create(comm, NT, t, &o, &f) == HRING_SUCCESS, "create: %s",
           hring_last_error());
  int first[NT], k = hring_fusion_buckets(f, first, NT);
  HREQUIRE(k >= 1 && !cuts_at(first, k, 18), "rank %d: DDP's first plan already cuts at 18", rank);
  for (int step = 0; step < 6; step++) {
    for (int i = 0; i < NT; i++) {
      if (i == 18) usleep(40000);
      HREQUIRE(hring_fusion_ready(f, i) == HRING_SUCCESS, "ready: %s", hring_last_error());
    }
    HREQUIRE(hring_fusion_wait(f) == HRING_SUCCESS, "wait: %s", hring_last_error());
  }
  k = hring_fusion_buckets(f, first, NT);
  HCHECK(k >= 2 && cuts_at(first, k, 18) && first[k - 1] >= 18,
         "rank %d: the plan after timing is \"%s\"", rank, hring_fusion_plan(f));
  HCHECK(strstr(hring_fusion_plan(f), "planned") != NULL, "plan text \"%s\"", hring_fusion_plan(f));
  hring_fusion_destroy(f);
}

HTEST(fusion_replans_from_timing, 60) {
  HCHECK(mp_run(2, replan_body, NULL) == 0, "a rank failed");
}

static void bad_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)n, (void)arg;
  float x[4] = {1, 2, 3, 4};
  hring_fusion_tensor_t t[3] = {{NULL, 4}, {NULL, 1000}, {NULL, 7}};
  hring_fusion_opts_t o = {HRING_FLOAT32, HRING_SUM, 0, "ddp", NULL};
  hring_fusion_t f = (hring_fusion_t)0x1;
  /* Refused at once, on every rank alike, and *f untouched. */
  t[1].data = x;
  HCHECK(hring_fusion_create(comm, 3, t, &o, &f) == HRING_ERR_INVALID_ARGUMENT, "mixed data");
  t[1].data = NULL;
  t[2].count = 0;
  HCHECK(hring_fusion_create(comm, 3, t, &o, &f) == HRING_ERR_INVALID_ARGUMENT, "count 0");
  t[2].count = 7;
  o.average = 1, o.op = HRING_MAX;
  HCHECK(hring_fusion_create(comm, 3, t, &o, &f) == HRING_ERR_INVALID_ARGUMENT, "avg of max");
  o.average = 0, o.op = HRING_SUM;
  const char *bad_modes[] = {"bogus", "threshold:", "threshold:0", "threshold:12Q"};
  for (int m = 0; m < 4; m++) {
    o.mode = bad_modes[m];
    HCHECK(hring_fusion_create(comm, 3, t, &o, &f) == HRING_ERR_INVALID_ARGUMENT, "mode %s",
           bad_modes[m]);
  }
  HCHECK(f == (hring_fusion_t)0x1, "a refused create wrote the handle");
  o.mode = "threshold:64MiB"; /* Horovod's spelling */
  HREQUIRE(hring_fusion_create(comm, 3, t, &o, &f) == HRING_SUCCESS, "threshold:64MiB: %s",
           hring_last_error());
  HCHECK(hring_fusion_destroy(f) == HRING_SUCCESS, "destroy");
  o.mode = "ddp";
  HCHECK(hring_fusion_create(comm, 3, t, &o, NULL) == HRING_ERR_INVALID_ARGUMENT, "NULL out");
  HCHECK(hring_fusion_create(comm, 0, t, &o, &f) == HRING_ERR_INVALID_ARGUMENT, "0 tensors");
  /* Ranks that register different sizes all fail, none hangs. */
  t[1].count = rank == 1 ? 1001 : 1000;
  HCHECK(hring_fusion_create(comm, 3, t, &o, &f) == HRING_ERR_INVALID_ARGUMENT,
         "rank %d: other sizes on rank 1 were accepted", rank);
  t[1].count = 1000;
  /* Replanning is a collective at fixed steps: a rank that would replan at
   * other steps is refused too. */
  if (rank == 1) setenv("HRING_FUSION_REPLAN", "7", 1);
  o.mode = "planned";
  HCHECK(hring_fusion_create(comm, 3, t, &o, &f) == HRING_ERR_INVALID_ARGUMENT &&
             strstr(hring_last_error(), "HRING_FUSION_REPLAN"),
         "rank %d: another HRING_FUSION_REPLAN on rank 1 was accepted (%s)", rank,
         hring_last_error());
  unsetenv("HRING_FUSION_REPLAN");
  o.mode = "ddp";
  HREQUIRE(hring_fusion_create(comm, 3, t, &o, &f) == HRING_SUCCESS, "create: %s",
           hring_last_error());
  HCHECK(hring_fusion_ready(f, -1) == HRING_ERR_INVALID_ARGUMENT, "tensor -1");
  HCHECK(hring_fusion_ready(f, 3) == HRING_ERR_INVALID_ARGUMENT, "tensor 3 of 3");
  HCHECK(hring_fusion_ready(f, 1) == HRING_SUCCESS, "ready 1");
  HCHECK(hring_fusion_ready(f, 1) == HRING_ERR_INVALID_USAGE, "tensor 1 twice");
  HCHECK(hring_fusion_wait(f) == HRING_SUCCESS, "wait: %s", hring_last_error());
  HCHECK(hring_fusion_ready(NULL, 0) == HRING_ERR_INVALID_ARGUMENT, "NULL handle");
  HCHECK(hring_fusion_destroy(f) == HRING_SUCCESS, "destroy");
  HCHECK(hring_fusion_net("vgg") == NULL, "unknown net");
}

HTEST(fusion_bad_arguments, 60) { HCHECK(mp_run(2, bad_body, NULL) == 0, "a rank failed"); }
