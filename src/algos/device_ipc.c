/*
 * device_ipc.c - device allreduce among ranks that map each other's
 * memory with CUDA IPC (one node): each rank reduces its shard of every
 * rank's input and writes the result into every rank's output, in one
 * kernel (reduce-scatter and allgather fused: per rank, 1 read and 1
 * write of the data, where a ring does 2(n-1)/n steps of each).
 *
 * On the caller's stream, queued at the call:
 *   write READY=seq -> wait GO>=seq -> copy the arguments to the device ->
 *   push kernel -> write KDONE=seq -> wait DONE>=seq
 * The proxy, when READY arrives: exchanges with the peers a record (the
 * call, for agreement, and both buffers' IPC handles), maps the peers'
 * buffers (cached), writes the kernel's arguments, raises GO; when KDONE
 * arrives, meets the peers again (every rank's writes into every output
 * are done) and raises DONE.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "algos/device_impl.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"

/* What every rank states at each call, so that disagreement is an error. */
typedef struct {
  uint64_t seq, count;
  int32_t type, op;
  int32_t pid, ok;
  hring_buf_rec_t buf[2];
} call_rec_t;

/* ---- the probe: can every rank map every other's memory? ---- */

typedef struct {
  int32_t pid, ok;
  uint8_t handle[HRING_CUDA_IPC_BYTES];
} probe_rec_t;

static int probe_open(struct hring_dev_state *st, const probe_rec_t *recs) {
  struct hring_comm *comm = st->comm;
  for (int p = 0; p < comm->nranks; p++) {
    if (p == comm->rank || recs[p].pid == recs[comm->rank].pid) continue;
    void *base;
    if (st->cu->ipc_open(recs[p].handle, &base) != 0) {
      HRING_INFO(HRING_SUB_COLL, "rank %d: cannot map rank %d's device memory: %s", comm->rank, p,
                 st->cu->last_error());
      return 0;
    }
    st->cu->ipc_close(base);
  }
  return 1;
}

hring_result_t hring__dev_ipc_probe(struct hring_dev_state *st) {
  struct hring_comm *comm = st->comm;
  const int n = comm->nranks;
  probe_rec_t me = {.pid = (int32_t)getpid()};
  void *scratch = NULL;
  int want = hring__cfg_int(HRING_CFG_CUDA_IPC) != 0 && comm->nnodes == 1 &&
             n <= HRING_CUDA_MAX_SRCS && n <= HRING_ENGINE_MAX_ACTIVE;
  if (want && st->cu->mem_alloc(&scratch, 256) == 0 && st->cu->ipc_get(scratch, me.handle) == 0)
    me.ok = 1;
  else if (want)
    HRING_INFO(HRING_SUB_COLL, "rank %d: no IPC export: %s", comm->rank, st->cu->last_error());
  hring__coll_begin(comm, HRING_COLL_PROBE, 0, 0, 0, 0, -1);
  probe_rec_t *recs = calloc((size_t)n, sizeof *recs);
  int *oks = calloc((size_t)n, sizeof *oks);
  hring_result_t r = !recs || !oks ? hring__err(HRING_ERR_NO_MEMORY, "device probe")
                                   : hring__exchange_small(comm, &me, recs, sizeof me);
  int ok = r == HRING_SUCCESS;
  for (int p = 0; p < n && ok; p++) ok = recs[p].ok;
  if (ok) ok = probe_open(st, recs);
  /* Second round: a rank that could not map a peer says so. */
  if (r == HRING_SUCCESS) r = hring__exchange_small(comm, &ok, oks, sizeof ok);
  for (int p = 0; p < n && r == HRING_SUCCESS; p++) ok = ok && oks[p];
  free(recs);
  free(oks);
  if (scratch) st->cu->mem_free(scratch);
  HRING_CHECK(r);
  st->ipc = ok ? 1 : -1;
  return HRING_SUCCESS;
}

/* ---- the caller's side ---- */

/* Shard i of n, in whole 64-byte groups so that vector loads stay aligned. */
static void shard(size_t count, size_t es, int n, int i, size_t *off, size_t *cnt) {
  size_t g = 64 / es, groups = (count + g - 1) / g, go, gc;
  hring__partition(groups, n, i, &go, &gc);
  size_t lo = go * g < count ? go * g : count, hi = (go + gc) * g < count ? (go + gc) * g : count;
  *off = lo;
  *cnt = hi - lo;
}

static int export_buf(struct hring_dev_state *st, const void *p, hring_buf_rec_t *out) {
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
  hring_ipc_export_t *e = &st->exports[st->export_clock++ % HRING_DEV_CACHE];
  if (st->cu->ipc_get(base, e->handle) != 0) {
    memset(e, 0, sizeof *e);
    return -1;
  }
  e->base = base;
  e->id = id;
  memcpy(out->handle, e->handle, sizeof out->handle);
  return 0;
}

void hring__dev_ipc_prepare(struct hring_dev_state *st, hring_dev_op_t *op) {
  struct hring_comm *comm = st->comm;
  shard(op->a.count, op->a.esize, comm->nranks, comm->rank, &op->shard_off, &op->shard_cnt);
  op->export_ok = export_buf(st, op->a.sendbuf, &op->buf[0]) == 0 &&
                  export_buf(st, op->a.recvbuf, &op->buf[1]) == 0;
  if (!op->export_ok)
    HRING_WARN(HRING_SUB_COLL, "rank %d: device buffers cannot be shared (%s); the call will fail",
               comm->rank, st->cu->last_error());
}

hring_result_t hring__dev_ipc_enqueue(struct hring_dev_state *st, hring_dev_op_t *op, void *s) {
  const uint32_t seq = op->seq, slot = seq % HRING_DEV_QUEUE;
  if (hring__dev_stream_write(st, s, F_READY, seq) || hring__dev_stream_wait(st, s, F_GO, seq) ||
      st->cu->memcpy_async(&st->dargs[slot], &st->args[slot], sizeof *st->args, s) ||
      st->cu->reduce_push_async(&st->dargs[slot], op->shard_cnt, op->a.type, op->a.op, s) ||
      hring__dev_stream_write(st, s, F_KDONE, seq) || hring__dev_stream_wait(st, s, F_DONE, seq))
    return hring__dev_fail(st, "hring_allreduce: queueing the device work");
  return HRING_SUCCESS;
}

/* ---- the proxy's side ---- */

static hring_result_t check_calls(struct hring_dev_state *st, const call_rec_t *recs) {
  struct hring_comm *comm = st->comm;
  const call_rec_t *me = &recs[comm->rank];
  for (int p = 0; p < comm->nranks; p++) {
    const call_rec_t *o = &recs[p];
    if (o->seq != me->seq || o->count != me->count || o->type != me->type || o->op != me->op)
      return hring__err(HRING_ERR_INVALID_USAGE,
                        "device allreduce #%llu: rank %d passed count %llu type %d op %d, rank %d "
                        "(call #%llu) passed count %llu type %d op %d",
                        (unsigned long long)me->seq, comm->rank, (unsigned long long)me->count,
                        me->type, me->op, p, (unsigned long long)o->seq,
                        (unsigned long long)o->count, o->type, o->op);
    if (!o->ok)
      return hring__err(HRING_ERR_INVALID_USAGE,
                        "device allreduce #%llu: rank %d's buffers cannot be shared by CUDA IPC "
                        "(memory from cudaMallocAsync pools, or a range CUDA does not know?); "
                        "HRING_CUDA_IPC=0 stages them through host memory instead",
                        (unsigned long long)me->seq, p);
  }
  return HRING_SUCCESS;
}

/* A peer's buffer, mapped here (cached by the peer's allocation id). */
static hring_result_t import_buf(struct hring_dev_state *st, int peer, int same_process,
                                 const hring_buf_rec_t *b, uint64_t *out) {
  if (same_process) {
    *out = b->base + b->off;
    return HRING_SUCCESS;
  }
  hring_ipc_map_t *victim = &st->maps[0];
  for (int i = 0; i < HRING_DEV_CACHE; i++) {
    hring_ipc_map_t *m = &st->maps[i];
    if (m->base && m->peer == peer && m->id == b->id) {
      m->used = ++st->clock;
      *out = (uint64_t)(uintptr_t)m->base + b->off;
      return HRING_SUCCESS;
    }
    if (m->used < victim->used) victim = m;
  }
  if (victim->base) st->cu->ipc_close(victim->base);
  memset(victim, 0, sizeof *victim);
  void *base;
  if (st->cu->ipc_open(b->handle, &base) != 0) return hring__dev_fail(st, "mapping a peer's buffer");
  *victim = (hring_ipc_map_t){peer, b->id, base, ++st->clock};
  *out = (uint64_t)(uintptr_t)base + b->off;
  return HRING_SUCCESS;
}

/* The kernel's arguments: this rank's shard of every input, starting with
 * its own (so that in place, a destination is at most the first source),
 * into every output. */
static hring_result_t fill_args(struct hring_dev_state *st, const hring_dev_op_t *op,
                                const call_rec_t *recs) {
  struct hring_comm *comm = st->comm;
  const int n = comm->nranks, r = comm->rank;
  hring_cuda_push_t *args = &st->args[op->seq % HRING_DEV_QUEUE];
  const uint64_t off = op->shard_off * op->a.esize;
  for (int i = 0; i < n; i++) {
    int p = (r + i) % n, same = p == r || recs[p].pid == recs[r].pid;
    uint64_t send, recv;
    HRING_CHECK(import_buf(st, p, same, &recs[p].buf[0], &send));
    HRING_CHECK(import_buf(st, p, same, &recs[p].buf[1], &recv));
    args->srcs[i] = send + off;
    args->dsts[i] = recv + off;
  }
  args->n = (uint64_t)n;
  args->ndst = (uint64_t)n;
  args->div = op->a.op == HRING_AVG ? n : 1;
  __atomic_store_n(&args->count, (uint64_t)op->shard_cnt, __ATOMIC_RELEASE);
  return HRING_SUCCESS;
}

hring_result_t hring__dev_ipc_run(struct hring_dev_state *st, const hring_dev_op_t *op) {
  struct hring_comm *comm = st->comm;
  const int n = comm->nranks;
  HRING_CHECK(hring__dev_wait(st, F_READY, op->seq, "the caller's stream to reach the collective",
                              &st->ns_input));
  call_rec_t me = {op->seq, op->a.count, (int32_t)op->a.type, (int32_t)op->a.op,
                   (int32_t)getpid(), op->export_ok, {op->buf[0], op->buf[1]}};
  call_rec_t *recs = calloc((size_t)n, sizeof *recs);
  if (!recs) return hring__err(HRING_ERR_NO_MEMORY, "device allreduce");
  hring__coll_begin(comm, HRING_COLL_DEVICE, op->seq, op->a.count, op->a.type, op->a.op, -1);
  hring_result_t r = hring__exchange_small(comm, &me, recs, sizeof me);
  if (r == HRING_SUCCESS) r = check_calls(st, recs);
  if (r == HRING_SUCCESS) r = fill_args(st, op, recs);
  free(recs);
  HRING_CHECK(r);
  hring__dev_set(st, F_GO, op->seq);
  HRING_CHECK(hring__dev_wait(st, F_KDONE, op->seq, "the reduction kernel", &st->ns_gpu));
  /* Every rank's kernel has written into every output: done everywhere. */
  int token = 0, *all = calloc((size_t)n, sizeof token);
  if (!all) return hring__err(HRING_ERR_NO_MEMORY, "device allreduce");
  r = hring__exchange_small(comm, &token, all, sizeof token);
  free(all);
  HRING_CHECK(r);
  hring__dev_set(st, F_DONE, op->seq);
  return HRING_SUCCESS;
}

void hring__dev_ipc_close(struct hring_dev_state *st) {
  for (int i = 0; i < HRING_DEV_CACHE; i++)
    if (st->maps[i].base) st->cu->ipc_close(st->maps[i].base);
  memset(st->maps, 0, sizeof st->maps);
  memset(st->exports, 0, sizeof st->exports);
}
