/*
 * colls.c - the public collectives beyond allreduce: reduce_scatter,
 * allgather, broadcast, reduce and barrier (hring.h).
 *
 * Each call follows hring_allreduce's shape: the handle is held for the
 * call (hring__comm_enter/leave); arguments are checked before anything is
 * written or sent (the check part, shared with the nonblocking calls of
 * nonblocking.c, as is the run part); a host-buffer call first takes the
 * executor after the queued nonblocking collectives, then waits for the
 * caller's stream and for the device work queued on the communicator; the
 * collective is stamped on every message (hring__coll_begin), so ranks
 * that disagree get an error; a failure after that point fails the
 * communicator, as it would leave the peers out of step.
 *
 * Schedules: reduce_scatter and allgather are one step (pairwise.c) for
 * parts of a few KiB and the ring of group.h over the whole communicator
 * beyond; broadcast and reduce the chains of rooted.c; the barrier the
 * dissemination of barrier.c (docs/collectives.md).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "algos/coll.h"
#include "algos/colls.h"
#include "algos/group.h"
#include "algos/reduce.h"
#include "core/config.h"
#include "core/cuda.h"
#include "core/error.h"
#include "core/visibility.h"

/* Only hring_allreduce has a device path so far; a device buffer here is
 * refused by name rather than read as host memory. */
static hring_result_t host_only(const char *fn, const void *a, const void *b) {
  int da = hring__cuda_ptr_device(a), db = hring__cuda_ptr_device(b);
  if (da < 0 && db < 0) return HRING_SUCCESS;
  return hring__err(HRING_ERR_UNSUPPORTED,
                    "%s: buffer on device %d: device buffers are not supported by this "
                    "collective yet (only hring_allreduce has a device path); use host buffers",
                    fn, da >= 0 ? da : db);
}

/* Whether the byte ranges [a, a+an) and [b, b+bn) share a byte. */
static int overlap(const void *a, size_t an, const void *b, size_t bn) {
  uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
  return an > 0 && bn > 0 && x < y + bn && y < x + an;
}

static hring_result_t bad_overlap(const char *fn, const char *inplace_rule) {
  return hring__err(HRING_ERR_INVALID_ARGUMENT,
                    "%s: send and receive buffers overlap without being in place (in place "
                    "means %s)",
                    fn, inplace_rule);
}

static hring_result_t check_root(const char *fn, int root, const struct hring_comm *comm) {
  if (root >= 0 && root < comm->nranks) return HRING_SUCCESS;
  return hring__err(HRING_ERR_INVALID_ARGUMENT, "%s: root %d is not a rank of this %d-rank "
                    "communicator", fn, root, comm->nranks);
}

/* The smallest slot any transport is configured with.  A rank's own
 * min_slot depends on which transports its peers need (a rank alone on
 * its node has tcp peers only), but every rank must cut the same chunks,
 * so the chunk is also bounded by what every rank reads the same way: the
 * configuration.  Read once per process. */
static size_t cfg_slot;
static pthread_once_t cfg_slot_once = PTHREAD_ONCE_INIT;
static void cfg_slot_read(void) {
  int64_t shm = hring__cfg_int(HRING_CFG_SHM_SLOT_SIZE);
  int64_t tcp = hring__cfg_int(HRING_CFG_TCP_SLOT_SIZE);
  int64_t m = shm < tcp ? shm : tcp;
  cfg_slot = m >= 4096 ? (size_t)m : 4096;
}

/* Pipeline chunk for a schedule that moves `part` bytes per step: a few
 * chunks per part so that neighbours overlap, at least 4 KiB so that
 * per-message costs stay small, at most one slot.  Unlike the allreduce
 * ring it does not switch to whole slots when ranks outnumber cores: that
 * is a property of one node, and ranks on different nodes must agree on
 * the chunk (parts of 256 KiB and more get whole slots anyway).
 * HRING_CHUNK_SIZE overrides. */
static size_t chunk_for(const struct hring_comm *comm, size_t part) {
  pthread_once(&cfg_slot_once, cfg_slot_read);
  size_t slot = comm->min_slot < cfg_slot ? comm->min_slot : cfg_slot;
  if (comm->chunk_size > 0)
    return (size_t)comm->chunk_size < slot ? (size_t)comm->chunk_size : slot;
  size_t chunk = part / 4;
  if (chunk < 4096) chunk = 4096;
  chunk = (chunk + 63) & ~(size_t)63;
  return chunk < slot ? chunk : slot;
}

/* Parts this small go in one step (pairwise.c) unless HRING_ALGO=ring
 * asks for the ring; HRING_ALGO=allpairs keeps the one-step form wherever
 * it fits.  The bound is allreduce's allpairs bound, measured there
 * (docs/performance.md). */
static int use_pairwise(const struct hring_comm *comm, size_t part) {
  if (comm->algo_forced == HRING_ALGO_RING) return 0;
  return part <= HRING_PAIRWISE_MAX_PART && part <= comm->min_slot &&
         hring__engine_reaches_all(comm->nranks);
}

/* After a schedule ran: a failure leaves the peers out of step. */
static hring_result_t finish(struct hring_comm *comm, hring_result_t r) {
  if (r != HRING_SUCCESS) hring__comm_fail(comm, r);
  return r;
}

/* ---- checks: everything a call can refuse before it sends ---- */

static hring_result_t reduce_scatter_check(const hring_call_t *c, struct hring_comm *comm) {
  HRING_CHECK(hring__coll_check(c->fn, c->sendbuf, c->recvbuf, c->count, c->type, 1, c->op, comm));
  if (c->count == 0) return HRING_SUCCESS;
  const size_t part = c->count * hring_type_size(c->type);
  HRING_CHECK(host_only(c->fn, c->sendbuf, c->recvbuf));
  const char *mine = (const char *)c->sendbuf + (size_t)comm->rank * part;
  if ((const void *)mine != c->recvbuf &&
      overlap(c->sendbuf, part * (size_t)comm->nranks, c->recvbuf, part))
    return bad_overlap(c->fn, "recvbuf == sendbuf + rank * recvcount elements");
  return HRING_SUCCESS;
}

static hring_result_t allgather_check(const hring_call_t *c, struct hring_comm *comm) {
  HRING_CHECK(hring__coll_check(c->fn, c->sendbuf, c->recvbuf, c->count, c->type, 0, HRING_SUM,
                                comm));
  if (c->count == 0) return HRING_SUCCESS;
  const size_t part = c->count * hring_type_size(c->type);
  HRING_CHECK(host_only(c->fn, c->sendbuf, c->recvbuf));
  const char *mine = (const char *)c->recvbuf + (size_t)comm->rank * part;
  if ((const void *)mine != c->sendbuf &&
      overlap(c->sendbuf, part, c->recvbuf, part * (size_t)comm->nranks))
    return bad_overlap(c->fn, "sendbuf == recvbuf + rank * sendcount elements");
  return HRING_SUCCESS;
}

static hring_result_t broadcast_check(const hring_call_t *c, struct hring_comm *comm) {
  HRING_CHECK(check_root(c->fn, c->root, comm));
  const int is_root = comm->rank == c->root;
  /* sendbuf is read on root only, and may be NULL elsewhere. */
  const void *src = is_root ? c->sendbuf : c->recvbuf;
  HRING_CHECK(hring__coll_check(c->fn, src, c->recvbuf, c->count, c->type, 0, HRING_SUM, comm));
  if (c->count == 0) return HRING_SUCCESS;
  const size_t bytes = c->count * hring_type_size(c->type);
  HRING_CHECK(host_only(c->fn, src, c->recvbuf));
  if (is_root && c->sendbuf != c->recvbuf && overlap(c->sendbuf, bytes, c->recvbuf, bytes))
    return bad_overlap(c->fn, "sendbuf == recvbuf");
  return HRING_SUCCESS;
}

static hring_result_t reduce_check(const hring_call_t *c, struct hring_comm *comm) {
  HRING_CHECK(check_root(c->fn, c->root, comm));
  const int is_root = comm->rank == c->root;
  /* recvbuf is written on root only, and may be NULL elsewhere. */
  HRING_CHECK(hring__coll_check(c->fn, c->sendbuf, is_root ? c->recvbuf : c->sendbuf, c->count,
                                c->type, 1, c->op, comm));
  if (c->count == 0) return HRING_SUCCESS;
  const size_t bytes = c->count * hring_type_size(c->type);
  HRING_CHECK(host_only(c->fn, c->sendbuf, is_root ? c->recvbuf : NULL));
  if (is_root && c->sendbuf != c->recvbuf && overlap(c->sendbuf, bytes, c->recvbuf, bytes))
    return bad_overlap(c->fn, "sendbuf == recvbuf");
  return HRING_SUCCESS;
}

hring_result_t hring__call_check(const hring_call_t *c, struct hring_comm *comm) {
  switch (c->kind) {
    case HRING_CALL_ALLREDUCE:
      HRING_CHECK(hring__coll_check(c->fn, c->sendbuf, c->recvbuf, c->count, c->type, 1, c->op,
                                    comm));
      return c->count == 0 ? HRING_SUCCESS : host_only(c->fn, c->sendbuf, c->recvbuf);
    case HRING_CALL_REDUCE_SCATTER: return reduce_scatter_check(c, comm);
    case HRING_CALL_ALLGATHER: return allgather_check(c, comm);
    case HRING_CALL_BROADCAST: return broadcast_check(c, comm);
    case HRING_CALL_REDUCE: return reduce_check(c, comm);
    case HRING_CALL_BARRIER:
      /* No buffer: the check is of the communicator's state. */
      return hring__coll_check(c->fn, NULL, NULL, 0, HRING_UINT8, 0, HRING_SUM, comm);
  }
  return hring__err(HRING_ERR_INTERNAL, "%s: unknown collective %d", c->fn, (int)c->kind);
}

/* ---- runs: checked, count > 0, after the prelude ---- */

static hring_result_t reduce_scatter_run(struct hring_comm *comm, const hring_call_t *c) {
  const int n = comm->nranks;
  const size_t es = hring_type_size(c->type), part = c->count * es;
  if (n == 1) {
    if (c->recvbuf != c->sendbuf) memmove(c->recvbuf, c->sendbuf, part);
    return HRING_SUCCESS; /* AVG over one rank divides by 1 */
  }
  if (use_pairwise(comm, part)) {
    hring__coll_begin(comm, HRING_COLL_REDUCE_SCATTER, ++comm->seq, c->count, c->type, c->op, -1);
    hring_coll_args_t a = {c->sendbuf, c->recvbuf, c->count, es, c->type, c->op, 0};
    return finish(comm, hring__reduce_scatter_pairwise(comm, &a));
  }
  int *world = malloc(sizeof(int) * (size_t)n);
  /* The peers are already on their way in: tell them. */
  if (!world)
    return finish(comm, hring__err(HRING_ERR_NO_MEMORY, "%s: group of %d ranks", c->fn, n));
  hring_group_t g;
  hring__group_world(comm, &g, world);
  hring__coll_begin(comm, HRING_COLL_REDUCE_SCATTER, ++comm->seq, c->count, c->type, c->op, -1);
  hring_result_t r = hring__group_reduce_scatter(comm, &g, c->sendbuf, c->recvbuf,
                                                 c->count * (size_t)n, c->type, c->op,
                                                 c->op == HRING_AVG ? n : 1, chunk_for(comm, part));
  free(world);
  return finish(comm, r);
}

static hring_result_t allgather_run(struct hring_comm *comm, const hring_call_t *c) {
  const int n = comm->nranks;
  const size_t es = hring_type_size(c->type), part = c->count * es;
  if (n == 1) {
    if (c->recvbuf != c->sendbuf) memmove(c->recvbuf, c->sendbuf, part);
    return HRING_SUCCESS;
  }
  if (use_pairwise(comm, part)) {
    hring__coll_begin(comm, HRING_COLL_ALLGATHER, ++comm->seq, c->count, c->type, 0, -1);
    return finish(comm, hring__allgather_pairwise(comm, c->sendbuf, c->recvbuf, part));
  }
  int *world = malloc(sizeof(int) * (size_t)n);
  /* The peers are already on their way in: tell them. */
  if (!world)
    return finish(comm, hring__err(HRING_ERR_NO_MEMORY, "%s: group of %d ranks", c->fn, n));
  hring_group_t g;
  hring__group_world(comm, &g, world);
  hring__coll_begin(comm, HRING_COLL_ALLGATHER, ++comm->seq, c->count, c->type, 0, -1);
  /* The ring gathers in place: this rank's part goes to its slot first. */
  char *mine = (char *)c->recvbuf + (size_t)comm->rank * part;
  if ((const void *)mine != c->sendbuf) memcpy(mine, c->sendbuf, part);
  hring_result_t r =
      hring__group_allgather(comm, &g, c->recvbuf, c->count * (size_t)n, es, chunk_for(comm, part));
  free(world);
  return finish(comm, r);
}

static hring_result_t broadcast_run(struct hring_comm *comm, const hring_call_t *c) {
  const size_t bytes = c->count * hring_type_size(c->type);
  const void *src = comm->rank == c->root ? c->sendbuf : c->recvbuf;
  if (comm->nranks == 1) {
    if (c->recvbuf != c->sendbuf) memmove(c->recvbuf, c->sendbuf, bytes);
    return HRING_SUCCESS;
  }
  hring__coll_begin(comm, HRING_COLL_BROADCAST, ++comm->seq, c->count, c->type, 0, c->root);
  return finish(comm, hring__bcast_rooted(comm, src, c->recvbuf, bytes, c->root,
                                          chunk_for(comm, bytes / (size_t)comm->nranks)));
}

static hring_result_t reduce_run(struct hring_comm *comm, const hring_call_t *c) {
  const size_t es = hring_type_size(c->type), bytes = c->count * es;
  if (comm->nranks == 1) {
    if (c->recvbuf != c->sendbuf) memmove(c->recvbuf, c->sendbuf, bytes);
    return HRING_SUCCESS;
  }
  hring__coll_begin(comm, HRING_COLL_REDUCE, ++comm->seq, c->count, c->type, c->op, c->root);
  hring_coll_args_t a = {c->sendbuf, comm->rank == c->root ? c->recvbuf : NULL, c->count, es,
                         c->type, c->op, 0};
  return finish(comm, hring__reduce_rooted(comm, &a, c->root,
                                           chunk_for(comm, bytes / (size_t)comm->nranks)));
}

static hring_result_t barrier_run(struct hring_comm *comm, const hring_call_t *c) {
  (void)c;
  if (comm->nranks == 1) return HRING_SUCCESS;
  hring__coll_begin(comm, HRING_COLL_BARRIER, ++comm->seq, 0, HRING_UINT8, 0, -1);
  return finish(comm, hring__barrier_run(comm));
}

hring_result_t hring__call_run(struct hring_comm *comm, const hring_call_t *c) {
  switch (c->kind) {
    case HRING_CALL_ALLREDUCE: return hring__allreduce_host(comm, c);
    case HRING_CALL_REDUCE_SCATTER: return reduce_scatter_run(comm, c);
    case HRING_CALL_ALLGATHER: return allgather_run(comm, c);
    case HRING_CALL_BROADCAST: return broadcast_run(comm, c);
    case HRING_CALL_REDUCE: return reduce_run(comm, c);
    case HRING_CALL_BARRIER: return barrier_run(comm, c);
  }
  return hring__err(HRING_ERR_INTERNAL, "%s: unknown collective %d", c->fn, (int)c->kind);
}

/* ---- the blocking calls ---- */

/* Checks, then (unless there is nothing to move) takes the executor
 * after the queued nonblocking collectives, waits for the stream and the
 * device work, and runs. */
static hring_result_t call_blocking(const hring_call_t *c, hring_comm_t comm, void *stream) {
  HRING_CHECK(hring__comm_enter(comm, c->fn));
  hring_result_t r = hring__call_check(c, comm);
  if (r == HRING_SUCCESS && !hring__call_empty(c)) {
    int held;
    r = hring__coll_claim(c->fn, comm, &held);
    if (r == HRING_SUCCESS) {
      r = hring__coll_host_prelude(comm, stream);
      if (r == HRING_SUCCESS) r = hring__call_run(comm, c);
      hring__coll_release(comm, held);
    }
  }
  hring__comm_leave(comm);
  return r;
}

HRING_API hring_result_t hring_reduce_scatter(const void *sendbuf, void *recvbuf,
                                              size_t recvcount, hring_datatype_t type,
                                              hring_redop_t op, hring_comm_t comm, void *stream) {
  hring_call_t c = {HRING_CALL_REDUCE_SCATTER, "hring_reduce_scatter", sendbuf, recvbuf,
                    recvcount, type, op, -1};
  return call_blocking(&c, comm, stream);
}

HRING_API hring_result_t hring_allgather(const void *sendbuf, void *recvbuf, size_t sendcount,
                                         hring_datatype_t type, hring_comm_t comm, void *stream) {
  hring_call_t c = {HRING_CALL_ALLGATHER, "hring_allgather", sendbuf, recvbuf, sendcount, type,
                    HRING_SUM, -1};
  return call_blocking(&c, comm, stream);
}

HRING_API hring_result_t hring_broadcast(const void *sendbuf, void *recvbuf, size_t count,
                                         hring_datatype_t type, int root, hring_comm_t comm,
                                         void *stream) {
  hring_call_t c = {HRING_CALL_BROADCAST, "hring_broadcast", sendbuf, recvbuf, count, type,
                    HRING_SUM, root};
  return call_blocking(&c, comm, stream);
}

HRING_API hring_result_t hring_reduce(const void *sendbuf, void *recvbuf, size_t count,
                                      hring_datatype_t type, hring_redop_t op, int root,
                                      hring_comm_t comm, void *stream) {
  hring_call_t c = {HRING_CALL_REDUCE, "hring_reduce", sendbuf, recvbuf, count, type, op, root};
  return call_blocking(&c, comm, stream);
}

HRING_API hring_result_t hring_barrier(hring_comm_t comm, void *stream) {
  hring_call_t c = {HRING_CALL_BARRIER, "hring_barrier", NULL, NULL, 0, HRING_UINT8, HRING_SUM, -1};
  return call_blocking(&c, comm, stream);
}
