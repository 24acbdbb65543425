/*
 * allreduce.c - hring_allreduce: argument checks, the choice of algorithm,
 * and the communicator's failure state.  The host part is shared with
 * hring_iallreduce (nonblocking.c).
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "algos/algo.h"
#include "algos/choose.h"
#include "algos/coll.h"
#include "algos/device.h"
#include "algos/reduce.h"
#include "algos/tune.h"
#include "core/bootstrap.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/topo.h"
#include "core/wait.h"
#include "core/visibility.h"

const char *const hring__algo_names[HRING_ALGO_COUNT] = {
    "auto", "ring", "allpairs", "direct", "exchange", "rdouble", "rabenseifner", "tree", "hier",
    "hier2d"};

/* What every rank's choice of algorithm and chunk depends on must be the
 * same on every rank, or ranks cut messages differently: a rank alone on
 * its node has only tcp connections (other slot sizes) and nodes may differ
 * in ranks per core.  So the smallest slot and whether any node is
 * oversubscribed are agreed once, through the bootstrap. */
static hring_result_t agree_layout(struct hring_comm *comm) {
  typedef struct {
    uint64_t min_slot;
    int32_t oversubscribed, machine_size, cores, tune_reps, tune_retry, tcp_within;
    int64_t tune_max;
  } layout_t;
  size_t m = SIZE_MAX;
  int32_t tcp_within = 0;
  for (int p = 0; p < comm->nranks; p++) {
    if (comm->conns[p] && comm->conns[p]->slot_size < m) m = comm->conns[p]->slot_size;
    if (comm->conns[p] && comm->conns[p]->ops == &hring__tcp_ops &&
        comm->node_of[p] == comm->node)
      tcp_within = 1;
  }
  layout_t mine = {m, comm->oversubscribed, comm->machine_size, comm->machine_cores,
                   (int32_t)comm->tune_reps, comm->tune_retry, tcp_within, comm->tune_max},
           *all = calloc((size_t)comm->nranks, sizeof *all);
  if (!all) return hring__err(HRING_ERR_NO_MEMORY, "comm init");
  hring_result_t r = hring__bootstrap_allgather(comm->bs, &mine, all, sizeof mine);
  if (r == HRING_SUCCESS) {
    comm->min_slot = m;
    comm->oversub_any = 0;
    comm->tcp_within_any = 0;
    comm->mranks_max = 0;
    comm->cores_min = INT32_MAX;
    for (int p = 0; p < comm->nranks; p++) {
      if (all[p].min_slot < comm->min_slot) comm->min_slot = (size_t)all[p].min_slot;
      comm->oversub_any |= all[p].oversubscribed != 0;
      comm->tcp_within_any |= all[p].tcp_within != 0;
      if (all[p].machine_size > comm->mranks_max) comm->mranks_max = all[p].machine_size;
      if (all[p].cores < comm->cores_min) comm->cores_min = all[p].cores;
      /* The online choice runs only where every rank asked for it, with
       * the smallest settings asked: its trials and agreement are steps
       * of the collective. */
      if (all[p].tune_max < comm->tune_max) comm->tune_max = all[p].tune_max;
      if (all[p].tune_reps < comm->tune_reps) comm->tune_reps = all[p].tune_reps;
      if (all[p].tune_retry < comm->tune_retry) comm->tune_retry = all[p].tune_retry;
    }
  }
  free(all);
  return r;
}

/* HRING_TUNE, HRING_TUNE_MAX and HRING_TUNE_REPS into comm (this rank's;
 * agree_layout makes them common). */
static hring_result_t read_tune(struct hring_comm *comm) {
  const char *mode = hring__cfg_str(HRING_CFG_TUNE);
  int online = mode && strcasecmp(mode, "online") == 0;
  if (!online && mode && strcasecmp(mode, "off") != 0)
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "HRING_TUNE=%s: unknown (off, online)", mode);
  int64_t reps = hring__cfg_int(HRING_CFG_TUNE_REPS), max = hring__cfg_int(HRING_CFG_TUNE_MAX);
  int64_t retry = hring__cfg_int(HRING_CFG_TUNE_RETRY);
  if (online && (reps < 1 || reps > HRING_TUNE_MAX_REPS || max < 0))
    return hring__err(HRING_ERR_INVALID_ARGUMENT,
                      "HRING_TUNE_REPS=%lld, HRING_TUNE_MAX=%lld: need 1-%d trials and a size >= 0",
                      (long long)reps, (long long)max, HRING_TUNE_MAX_REPS);
  if (online && (retry < 0 || retry > HRING_TUNE_MAX_RETRY))
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "HRING_TUNE_RETRY=%lld: need 0-%d",
                      (long long)retry, HRING_TUNE_MAX_RETRY);
  comm->tune_max = online ? max : 0;
  comm->tune_reps = online ? (int)reps : 1;
  comm->tune_retry = online ? (int)retry : 0;
  return HRING_SUCCESS;
}

/* What decides the schedule a call runs, or how it cuts the vector, must
 * be set alike on every rank: ranks that differ would run different
 * schedules into each other and wait for messages that never come.  So
 * these settings are compared once at creation, and a difference fails
 * the init on every rank, naming it. */
typedef struct {
  int64_t algo, chunk, small, stage;
  uint64_t model;
} settings_t;

static hring_result_t settings_differ(const char *what, int p, const char *v0, const char *vp) {
  return hring__err(HRING_ERR_INVALID_ARGUMENT,
                    "comm init: %s differs between ranks (rank 0: %s, rank %d: %s); every rank "
                    "must set it alike",
                    what, v0, p, vp);
}

static hring_result_t compare_settings(const settings_t *all, int nranks) {
  char a[32], b[32];
  for (int p = 1; p < nranks; p++) {
    const settings_t *z = &all[0], *x = &all[p];
    if (x->algo != z->algo)
      return settings_differ("HRING_ALGO", p, hring__algo_names[z->algo], hring__algo_names[x->algo]);
    const struct {
      const char *name;
      int64_t v0, vp;
    } ints[] = {{"HRING_CHUNK_SIZE", z->chunk, x->chunk},
                {"HRING_SMALL_MAX", z->small, x->small},
                {"HRING_CUDA_STAGE_CHUNK", z->stage, x->stage}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
      if (ints[i].v0 != ints[i].vp) {
        snprintf(a, sizeof a, "%lld", (long long)ints[i].v0);
        snprintf(b, sizeof b, "%lld", (long long)ints[i].vp);
        return settings_differ(ints[i].name, p, a, b);
      }
    if (x->model != z->model)
      return hring__err(HRING_ERR_INVALID_ARGUMENT,
                        "comm init: the cost model's parameters (HRING_MODEL_FILE, else the "
                        "built-in ones) differ between rank 0 and rank %d; every rank must load "
                        "the same",
                        p);
  }
  return HRING_SUCCESS;
}

static hring_result_t agree_settings(struct hring_comm *comm) {
  if (comm->nranks == 1) return HRING_SUCCESS;
  int64_t stage = hring__cfg_int(HRING_CFG_CUDA_STAGE_CHUNK);
  settings_t mine = {comm->algo_forced, comm->chunk_size, comm->small_max,
                     stage >= HRING_DEV_STAGE_MIN ? stage : HRING_DEV_STAGE_MIN,
                     hring__choice_digest(comm)};
  settings_t *all = calloc((size_t)comm->nranks, sizeof *all);
  if (!all) return hring__err(HRING_ERR_NO_MEMORY, "comm init");
  hring_result_t r = hring__bootstrap_allgather(comm->bs, &mine, all, sizeof mine);
  if (r == HRING_SUCCESS) r = compare_settings(all, comm->nranks);
  free(all);
  return r;
}

/* HRING_NT_MIN: results from this size are written with non-temporal
 * stores.  auto: from NT_MIN_OVERSUBSCRIBED where this machine's ranks
 * outnumber its cores, never where each has a core.  Measured side by
 * side (hring-choice, ring against ring@HRING_NT_MIN=1G, three rounds;
 * docs/performance.md, thirteenth section): with 2 ranks on 2 cores the
 * streaming stores made the ring 1.9x slower at 4 MiB and 1.05-1.4x at
 * 8-64 MiB (the result stays in cache and the next use finds it there);
 * with 4 and 8 ranks on 2 cores they made it 1.0-1.15x faster at 4-64 MiB
 * (a rank that gives up its core finds its cache refilled by another's
 * data anyway).  The stores are the rank's own: ranks need not agree. */
#define NT_MIN_OVERSUBSCRIBED (4 << 20)
static int64_t nt_min(const struct hring_comm *comm) {
  const char *v = hring__cfg_str(HRING_CFG_NT_MIN);
  const int64_t automatic = comm->oversubscribed ? NT_MIN_OVERSUBSCRIBED : 0;
  int64_t b = 0;
  if (strcasecmp(v, "auto") == 0) return automatic;
  if (hring__cfg_parse_int(v, &b) == 0 && b >= 0) return b;
  HRING_WARN(HRING_SUB_INIT, "HRING_NT_MIN=%s is not a size in bytes or auto; using auto", v);
  return automatic;
}

hring_result_t hring__algo_comm_init(struct hring_comm *comm) {
  HRING_CHECK(read_tune(comm));
  HRING_CHECK(agree_layout(comm));
  const char *forced = hring__cfg_str(HRING_CFG_ALGO);
  comm->algo_forced = HRING_ALGO_AUTO;
  if (forced && *forced) {
    int found = -1;
    for (int k = 0; k < HRING_ALGO_COUNT; k++)
      if (strcasecmp(forced, hring__algo_names[k]) == 0) found = k;
    if (found < 0)
      return hring__err(HRING_ERR_INVALID_ARGUMENT,
                        "HRING_ALGO=%s: unknown (auto, ring, allpairs, direct, exchange, rdouble, "
                        "rabenseifner, tree, hier, hier2d)",
                        forced);
    comm->algo_forced = found;
  }
  comm->small_max = hring__cfg_int(HRING_CFG_SMALL_MAX);
  comm->chunk_size = hring__cfg_int(HRING_CFG_CHUNK_SIZE);
  comm->nt_min = nt_min(comm);
  HRING_CHECK(hring__choice_init(comm));
  HRING_CHECK(agree_settings(comm));
  return hring__tune_init(comm);
}

/* trial (may be NULL): set when the call is one of the online tuner's. */
static int choose(struct hring_comm *comm, size_t bytes, int *trial) {
  int f = comm->algo_forced;
  /* A forced algorithm runs where it can; the ring stands in elsewhere. */
  if (f == HRING_ALGO_EXCHANGE && comm->nranks != 2) f = HRING_ALGO_AUTO;
  if ((f == HRING_ALGO_DIRECT || f == HRING_ALGO_ALLPAIRS) && !hring__engine_reaches_all(comm->nranks))
    f = HRING_ALGO_RING;
  if (f == HRING_ALGO_ALLPAIRS && (bytes > HRING_ALLPAIRS_MAX_BYTES || bytes > comm->min_slot))
    f = HRING_ALGO_AUTO;
  if (trial) *trial = 0;
  if (f != HRING_ALGO_AUTO) return f;
  int t = hring__tune_pick(comm, bytes, trial);
  return t ? t : hring__choose(comm, bytes);
}

size_t hring__ring_chunk(const struct hring_comm *comm, size_t bytes) {
  size_t slot = comm->min_slot;
  if (comm->chunk_size > 0) return (size_t)comm->chunk_size < slot ? (size_t)comm->chunk_size : slot;
  /* Enough chunks per segment that neighbours overlap, but not so small that
   * per-message cost dominates. */
  /* Oversubscribed, every hand-off between neighbours may cost a context
   * switch: fewer, larger chunks win (measured with 4 and 8 ranks on 2
   * cores). */
  if (comm->oversub_any) return slot;
  size_t seg = bytes / (size_t)comm->nranks;
  size_t chunk = seg / 4;
  if (chunk < 4096) chunk = 4096;
  chunk = (chunk + 63) & ~(size_t)63;
  return chunk < slot ? chunk : slot;
}

static hring_result_t run_algo(struct hring_comm *comm, const hring_coll_args_t *a, int algo,
                               size_t bytes) {
  switch (algo) {
    case HRING_ALGO_ALLPAIRS: return hring__allreduce_allpairs(comm, a);
    case HRING_ALGO_DIRECT: return hring__allreduce_direct(comm, a, hring__ring_chunk(comm, bytes));
    case HRING_ALGO_EXCHANGE: return hring__allreduce_exchange2(comm, a, comm->min_slot);
    case HRING_ALGO_RDOUBLE: return hring__allreduce_rdouble(comm, a);
    case HRING_ALGO_RABENSEIFNER: return hring__allreduce_rabenseifner(comm, a, comm->min_slot);
    case HRING_ALGO_TREE: return hring__allreduce_tree(comm, a, hring__ring_chunk(comm, bytes));
    case HRING_ALGO_HIER: return hring__allreduce_hier(comm, a, hring__ring_chunk(comm, bytes));
    case HRING_ALGO_HIER2D: return hring__allreduce_hier2d(comm, a, hring__ring_chunk(comm, bytes));
    default: return hring__allreduce_ring(comm, a, hring__ring_chunk(comm, bytes));
  }
}

hring_result_t hring__allreduce_run(struct hring_comm *comm, const hring_coll_args_t *a0) {
  hring_coll_args_t a = *a0;
  size_t bytes = a.count * a.esize;
  a.nt = comm->nt_min > 0 && bytes >= (size_t)comm->nt_min;
  hring__coll_begin(comm, HRING_COLL_ALLREDUCE, ++comm->seq, a.count, a.type, a.op, -1);
  int trial, algo = choose(comm, bytes, &trial);
  if (!trial) return run_algo(comm, &a, algo, bytes);
  uint64_t t0 = hring__now_ns();
  hring_result_t r = run_algo(comm, &a, algo, bytes);
  if (r == HRING_SUCCESS)
    r = hring__tune_record(comm, bytes, 1e-9 * (double)(hring__now_ns() - t0));
  return r;
}

/* Device buffers: both on one device; enqueued on the stream (device.h). */
static hring_result_t allreduce_device(const hring_coll_args_t *a, hring_comm_t comm,
                                       void *stream, int ds, int dr) {
  if (ds != dr)
    return hring__err(HRING_ERR_INVALID_ARGUMENT,
                      "hring_allreduce: send buffer on %s%d, receive buffer on %s%d (both must be "
                      "on one device, or both in host memory)",
                      ds < 0 ? "host " : "device ", ds, dr < 0 ? "host " : "device ", dr);
  if (comm->nranks == 1) {
    const hring_cuda_api_t *cu = hring__cuda();
    if (a->sendbuf != a->recvbuf &&
        cu->memcpy_async(a->recvbuf, a->sendbuf, a->count * a->esize, stream) != 0)
      return hring__err(HRING_ERR_SYSTEM, "hring_allreduce: %s", cu->last_error());
    return HRING_SUCCESS;
  }
  return hring__dev_allreduce(comm, a, stream, ds);
}

/* A checked host allreduce of count > 0 elements, after the prelude: also
 * the nonblocking one (colls.c, hring__call_run). */
hring_result_t hring__allreduce_host(struct hring_comm *comm, const hring_call_t *c) {
  hring_coll_args_t a = {c->sendbuf, c->recvbuf, c->count, hring_type_size(c->type), c->type,
                         c->op, 0};
  if (comm->nranks == 1) {
    if (c->sendbuf != c->recvbuf) memmove(c->recvbuf, c->sendbuf, c->count * a.esize);
    return HRING_SUCCESS; /* AVG over one rank divides by 1 */
  }
  hring_result_t r = hring__allreduce_run(comm, &a);
  if (r != HRING_SUCCESS) hring__comm_fail(comm, r);
  return r;
}

static hring_result_t allreduce_held(const void *sendbuf, void *recvbuf, size_t count,
                                     hring_datatype_t type, hring_redop_t op, hring_comm_t comm,
                                     void *stream) {
  static const char fn[] = "hring_allreduce";
  HRING_CHECK(hring__coll_check(fn, sendbuf, recvbuf, count, type, 1, op, comm));
  if (count == 0) return HRING_SUCCESS;
  hring_call_t c = {HRING_CALL_ALLREDUCE, fn, sendbuf, recvbuf, count, type, op, -1};
  int ds = hring__cuda_ptr_device(sendbuf), dr = hring__cuda_ptr_device(recvbuf);
  /* After the nonblocking collectives issued before, device or not. */
  int held;
  HRING_CHECK(hring__coll_claim(fn, comm, &held));
  hring_result_t r;
  if (ds >= 0 || dr >= 0) {
    hring_coll_args_t a = {sendbuf, recvbuf, count, hring_type_size(type), type, op, 0};
    r = allreduce_device(&a, comm, stream, ds, dr);
  } else {
    /* Host buffers: run now, after the stream's earlier work and after the
     * device collectives queued on this communicator. */
    r = hring__coll_host_prelude(comm, stream);
    if (r == HRING_SUCCESS) r = hring__allreduce_host(comm, &c);
  }
  hring__coll_release(comm, held);
  return r;
}

HRING_API hring_result_t hring_allreduce(const void *sendbuf, void *recvbuf, size_t count,
                                         hring_datatype_t type, hring_redop_t op,
                                         hring_comm_t comm, void *stream) {
  HRING_CHECK(hring__comm_enter(comm, "hring_allreduce"));
  hring_result_t r = allreduce_held(sendbuf, recvbuf, count, type, op, comm, stream);
  hring__comm_leave(comm);
  return r;
}

HRING_API hring_result_t hring_allreduce_algorithm(hring_comm_t comm, size_t count,
                                                   hring_datatype_t datatype, const char **name) {
  static const char fn[] = "hring_allreduce_algorithm";
  HRING_CHECK(hring__comm_enter(comm, fn));
  hring_result_t r = name ? hring__coll_check_count(fn, count, datatype, comm)
                          : hring__err(HRING_ERR_INVALID_ARGUMENT, "%s: NULL name", fn);
  if (r == HRING_SUCCESS && (count == 0 || comm->nranks == 1))
    *name = "none"; /* nothing is sent (hring__allreduce_host) */
  else if (r == HRING_SUCCESS)
    *name = hring__algo_names[choose(comm, count * hring_type_size(datatype), NULL)];
  hring__comm_leave(comm);
  return r;
}
