/*
 * device_ipc.c - device allreduce among the ranks of one node through CUDA
 * IPC: the probe that decides whether every rank can map every other's
 * memory, the one-shot path for small messages, the reduce-scatter +
 * gather path for large ones, and the caches of IPC handles.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "algos/device_impl.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"

typedef struct {
  int32_t pid, ok;
  uint64_t base; /* the address itself, for ranks in the same process */
  uint8_t handle[HRING_CUDA_IPC_BYTES];
} probe_rec_t;

/* What every rank states at each call, so disagreement is an error. */
typedef struct {
  uint64_t call, count;
  int32_t type, op;
} call_rec_t;

typedef struct {
  uint64_t base, id, off;
  uint8_t handle[HRING_CUDA_IPC_BYTES];
} buf_rec_t;

typedef struct {
  call_rec_t call;
  int32_t pid, ok;
  buf_rec_t buf[2]; /* send, recv */
} twoshot_rec_t;

static hring_result_t check_calls(struct hring_dev_state *st, const void *recs, size_t stride) {
  struct hring_comm *comm = st->comm;
  const call_rec_t *me = (const call_rec_t *)((const char *)recs + (size_t)comm->rank * stride);
  for (int p = 0; p < comm->nranks; p++) {
    const call_rec_t *o = (const call_rec_t *)((const char *)recs + (size_t)p * stride);
    if (o->call != me->call || o->count != me->count || o->type != me->type || o->op != me->op)
      return hring__err(HRING_ERR_INVALID_USAGE,
                        "device allreduce #%llu: rank %d passed count %llu type %d op %d, rank %d "
                        "(call #%llu) passed count %llu type %d op %d",
                        (unsigned long long)me->call, comm->rank, (unsigned long long)me->count,
                        me->type, me->op, p, (unsigned long long)o->call,
                        (unsigned long long)o->count, o->type, o->op);
  }
  return HRING_SUCCESS;
}

static call_rec_t call_rec(struct hring_dev_state *st, const hring_coll_args_t *a) {
  return (call_rec_t){st->ncalls, a->count, (int32_t)a->type, (int32_t)a->op};
}

/* ---- the probe ---- */

static hring_result_t probe_open(struct hring_dev_state *st, const probe_rec_t *recs, int *ok) {
  struct hring_comm *comm = st->comm;
  st->peer_scratch = calloc((size_t)comm->nranks, sizeof(void *));
  st->scratch_mapped = calloc((size_t)comm->nranks, 1);
  if (!st->peer_scratch || !st->scratch_mapped) return hring__err(HRING_ERR_NO_MEMORY, "device probe");
  for (int p = 0; p < comm->nranks && *ok; p++) {
    if (p == comm->rank) st->peer_scratch[p] = st->scratch;
    else if (recs[p].pid == recs[comm->rank].pid) st->peer_scratch[p] = (void *)(uintptr_t)recs[p].base;
    else if (st->cu->ipc_open(recs[p].handle, &st->peer_scratch[p]) == 0)
      st->scratch_mapped[p] = 1;
    else {
      HRING_INFO(HRING_SUB_COLL, "rank %d: cannot map rank %d's device memory: %s", comm->rank, p,
                 st->cu->last_error());
      *ok = 0;
    }
  }
  return HRING_SUCCESS;
}

hring_result_t hring__dev_ipc_probe(struct hring_dev_state *st) {
  struct hring_comm *comm = st->comm;
  const int n = comm->nranks;
  probe_rec_t me = {.pid = (int32_t)getpid()};
  int want = hring__cfg_int(HRING_CFG_CUDA_IPC) != 0 && comm->nnodes == 1;
  size_t half = (st->oneshot_max + 255) & ~(size_t)255;
  if (want && st->cu->mem_alloc(&st->scratch, 2 * (half ? half : 256)) == 0 &&
      st->cu->ipc_get(st->scratch, me.handle) == 0)
    me.ok = 1;
  else if (want)
    HRING_INFO(HRING_SUB_COLL, "rank %d: no IPC scratch: %s", comm->rank, st->cu->last_error());
  me.base = (uint64_t)(uintptr_t)st->scratch;
  probe_rec_t *recs = calloc((size_t)n, sizeof *recs);
  int *oks = calloc((size_t)n, sizeof *oks);
  hring_result_t r = !recs || !oks ? hring__err(HRING_ERR_NO_MEMORY, "device probe")
                                   : hring__exchange_small(comm, &me, recs, sizeof me);
  int ok = r == HRING_SUCCESS;
  for (int p = 0; p < n && ok; p++) ok = recs[p].ok;
  if (ok) r = probe_open(st, recs, &ok);
  /* Second round: a rank that could not map a peer says so. */
  if (r == HRING_SUCCESS) r = hring__exchange_small(comm, &ok, oks, sizeof ok);
  for (int p = 0; p < n && r == HRING_SUCCESS; p++) ok = ok && oks[p];
  free(recs);
  free(oks);
  HRING_CHECK(r);
  st->ipc = ok ? 1 : -1;
  if (!ok) hring__dev_ipc_close(st);
  HRING_INFO(HRING_SUB_COLL, "rank %d: device collectives %s", comm->rank,
             ok ? "over CUDA IPC among the node's ranks" : "staged through host memory");
  return HRING_SUCCESS;
}

/* ---- one shot: everyone reduces everything ---- */

hring_result_t hring__dev_oneshot(struct hring_dev_state *st, const hring_coll_args_t *a) {
  struct hring_comm *comm = st->comm;
  const int n = comm->nranks;
  const size_t bytes = a->count * a->esize;
  size_t half = (st->oneshot_max + 255) & ~(size_t)255;
  size_t off = (st->ncalls & 1) ? half : 0; /* double-buffered: see below */
  /* Safe to overwrite this half: every peer passed the exchange of the
   * previous call, which it enters only after its reduction of the call
   * before (the last reader of this half) has completed. */
  if (st->cu->memcpy_async((char *)st->scratch + off, a->sendbuf, bytes, st->stream) != 0)
    return hring__dev_fail(st, "one-shot input copy");
  HRING_CHECK(hring__dev_sync(st));
  call_rec_t me = call_rec(st, a), *recs = malloc(sizeof me * (size_t)n);
  if (!recs) return hring__err(HRING_ERR_NO_MEMORY, "device allreduce");
  hring_result_t r = hring__exchange_small(comm, &me, recs, sizeof me);
  if (r == HRING_SUCCESS) r = check_calls(st, recs, sizeof me);
  free(recs);
  HRING_CHECK(r);
  const void *srcs[HRING_ENGINE_MAX_ACTIVE];
  if (n > HRING_ENGINE_MAX_ACTIVE) return hring__err(HRING_ERR_UNSUPPORTED, "one-shot: too many ranks");
  for (int p = 0; p < n; p++) srcs[p] = (const char *)st->peer_scratch[p] + off;
  HRING_CHECK(hring__dev_reduce(st, a->recvbuf, srcs, n, a->count, a->type, a->op,
                                a->op == HRING_AVG ? n : 1));
  return hring__dev_sync(st);
}

/* ---- reduce-scatter + gather on the callers' buffers ---- */

/* Shard i of n, in whole 64-byte groups so that vector loads stay aligned. */
static void shard(size_t count, size_t es, int n, int i, size_t *off, size_t *cnt) {
  size_t g = 64 / es, groups = (count + g - 1) / g, go, gc;
  hring__partition(groups, n, i, &go, &gc);
  size_t lo = go * g < count ? go * g : count, hi = (go + gc) * g < count ? (go + gc) * g : count;
  *off = lo;
  *cnt = hi - lo;
}

static int export_buf(struct hring_dev_state *st, const void *p, buf_rec_t *out) {
  void *base;
  size_t size;
  uint64_t id;
  if (st->cu->mem_range(p, &base, &size, &id) != 0) return -1;
  out->base = (uint64_t)(uintptr_t)base;
  out->id = id;
  out->off = (uint64_t)((const char *)p - (const char *)base);
  for (int i = 0; i < HRING_DEV_CACHE; i++)
    if (st->exports[i].base == base && st->exports[i].id == id) {
      memcpy(out->handle, st->exports[i].handle, sizeof out->handle);
      return 0;
    }
  hring_ipc_export_t *e = &st->exports[st->clock++ % HRING_DEV_CACHE];
  if (st->cu->ipc_get(base, e->handle) != 0) {
    memset(e, 0, sizeof *e);
    return -1;
  }
  e->base = base;
  e->id = id;
  e->size = size;
  memcpy(out->handle, e->handle, sizeof out->handle);
  return 0;
}

static hring_result_t import_buf(struct hring_dev_state *st, int peer, int same_process,
                                 const buf_rec_t *b, char **out) {
  if (same_process) {
    *out = (char *)(uintptr_t)b->base + b->off;
    return HRING_SUCCESS;
  }
  hring_ipc_map_t *victim = &st->maps[0];
  for (int i = 0; i < HRING_DEV_CACHE; i++) {
    hring_ipc_map_t *m = &st->maps[i];
    if (m->base && m->peer == peer && m->id == b->id) {
      m->used = ++st->clock;
      *out = (char *)m->base + b->off;
      return HRING_SUCCESS;
    }
    if (m->used < victim->used) victim = m;
  }
  if (victim->base) st->cu->ipc_close(victim->base);
  memset(victim, 0, sizeof *victim);
  void *base;
  if (st->cu->ipc_open(b->handle, &base) != 0) return hring__dev_fail(st, "mapping a peer's buffer");
  *victim = (hring_ipc_map_t){peer, b->id, base, ++st->clock};
  *out = (char *)base + b->off;
  return HRING_SUCCESS;
}

static hring_result_t twoshot_run(struct hring_dev_state *st, const hring_coll_args_t *a,
                                  const twoshot_rec_t *recs, char **send, char **recv) {
  struct hring_comm *comm = st->comm;
  const int n = comm->nranks, r = comm->rank;
  const size_t es = a->esize;
  for (int p = 0; p < n; p++) {
    int same = recs[p].pid == recs[r].pid;
    HRING_CHECK(import_buf(st, p, same || p == r, &recs[p].buf[0], &send[p]));
    HRING_CHECK(import_buf(st, p, same || p == r, &recs[p].buf[1], &recv[p]));
  }
  size_t off, cnt;
  shard(a->count, es, n, r, &off, &cnt);
  if (cnt > 0) {
    /* Starting from this rank's own input lets the output alias it in place. */
    const void *srcs[HRING_ENGINE_MAX_ACTIVE];
    for (int i = 0; i < n; i++) srcs[i] = send[(r + i) % n] + off * es;
    HRING_CHECK(hring__dev_reduce(st, recv[r] + off * es, srcs, n, cnt, a->type, a->op,
                                  a->op == HRING_AVG ? n : 1));
  }
  HRING_CHECK(hring__dev_sync(st));
  int token = 0, *all = calloc((size_t)n, sizeof token);
  if (!all) return hring__err(HRING_ERR_NO_MEMORY, "device allreduce");
  hring_result_t res = hring__exchange_small(comm, &token, all, sizeof token); /* shards done */
  for (int i = 1; i < n && res == HRING_SUCCESS; i++) {
    int p = (r + i) % n;
    shard(a->count, es, n, p, &off, &cnt);
    if (cnt && st->cu->memcpy_async(recv[r] + off * es, recv[p] + off * es, cnt * es, st->stream))
      res = hring__dev_fail(st, "gathering a shard");
  }
  if (res == HRING_SUCCESS) res = hring__dev_sync(st);
  /* Nobody returns while a peer may still read its buffers. */
  if (res == HRING_SUCCESS) res = hring__exchange_small(comm, &token, all, sizeof token);
  free(all);
  return res;
}

hring_result_t hring__dev_twoshot(struct hring_dev_state *st, const hring_coll_args_t *a) {
  struct hring_comm *comm = st->comm;
  const int n = comm->nranks;
  if (n > HRING_ENGINE_MAX_ACTIVE) return HRING_IN_PROGRESS;
  twoshot_rec_t me = {.call = call_rec(st, a), .pid = (int32_t)getpid()};
  me.ok = export_buf(st, a->sendbuf, &me.buf[0]) == 0 && export_buf(st, a->recvbuf, &me.buf[1]) == 0;
  if (!me.ok)
    HRING_INFO(HRING_SUB_COLL, "rank %d: buffers cannot be exported (%s): staging this call",
               comm->rank, st->cu->last_error());
  twoshot_rec_t *recs = calloc((size_t)n, sizeof *recs);
  char **ptrs = calloc(2 * (size_t)n, sizeof *ptrs);
  hring_result_t r = !recs || !ptrs ? hring__err(HRING_ERR_NO_MEMORY, "device allreduce")
                                    : hring__exchange_small(comm, &me, recs, sizeof me);
  if (r == HRING_SUCCESS) r = check_calls(st, recs, sizeof me);
  int ok = 1;
  for (int p = 0; p < n && r == HRING_SUCCESS; p++) ok = ok && recs[p].ok;
  if (r == HRING_SUCCESS) r = ok ? twoshot_run(st, a, recs, ptrs, ptrs + n) : HRING_IN_PROGRESS;
  free(recs);
  free(ptrs);
  return r;
}

void hring__dev_ipc_close(struct hring_dev_state *st) {
  for (int i = 0; i < HRING_DEV_CACHE; i++)
    if (st->maps[i].base) st->cu->ipc_close(st->maps[i].base);
  memset(st->maps, 0, sizeof st->maps);
  memset(st->exports, 0, sizeof st->exports);
  if (st->peer_scratch && st->scratch_mapped)
    for (int p = 0; p < st->comm->nranks; p++)
      if (st->scratch_mapped[p]) st->cu->ipc_close(st->peer_scratch[p]);
  free(st->peer_scratch);
  free(st->scratch_mapped);
  st->peer_scratch = NULL;
  st->scratch_mapped = NULL;
  if (st->scratch) st->cu->mem_free(st->scratch);
  st->scratch = NULL;
}
