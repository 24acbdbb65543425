/*
 * nccl_group.c - ncclGroupStart/ncclGroupEnd and the runner that executes
 * queued operations, one thread per communicator.
 *
 * Inside a group, NCCL defers collectives (and communicator inits and splits) to the
 * outermost ncclGroupEnd.  That is what lets one thread drive several ranks
 * of one communicator: NCCL launches them together on their GPUs.  hring's
 * calls are host-synchronous and one communicator is driven by one thread at
 * a time, so the shim gives every communicator of the group its own thread
 * at ncclGroupEnd, each running that communicator's operations in the order
 * they were issued.  A group that uses a single communicator runs inline.
 */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "nccl_shim.h"

/* This thread's group: nesting depth and the operations queued so far. */
static _Thread_local int group_depth;
static _Thread_local hring__nccl_op_t *group_ops;
static _Thread_local int group_nops, group_cap;

int hring__nccl_group_depth(void) { return group_depth; }

ncclResult_t hring__nccl_group_enqueue(const hring__nccl_op_t *op) {
  if (group_nops == group_cap) {
    int cap = group_cap == 0 ? 16 : group_cap <= INT_MAX / 2 ? group_cap * 2 : 0;
    hring__nccl_op_t *ops = cap > 0 ? realloc(group_ops, (size_t)cap * sizeof *ops) : NULL;
    if (ops == NULL)
      return hring__nccl_err(ncclSystemError, "ncclGroup: out of memory queueing operation %d",
                             group_nops);
    group_ops = ops;
    group_cap = cap;
  }
  group_ops[group_nops++] = *op;
  return ncclSuccess;
}

int hring__nccl_group_holds(const struct ncclComm *comm) {
  for (int i = 0; i < group_nops; i++)
    if (group_ops[i].comm == comm) return 1;
  return 0;
}

const char *hring__nccl_op_name(hring__nccl_op_kind_t kind) {
  switch (kind) {
  case HRING__NCCL_OP_INIT: return "ncclCommInitRank";
  case HRING__NCCL_OP_ALLREDUCE: return "ncclAllReduce";
  case HRING__NCCL_OP_REDUCE_SCATTER: return "ncclReduceScatter";
  case HRING__NCCL_OP_ALLGATHER: return "ncclAllGather";
  case HRING__NCCL_OP_BROADCAST: return "ncclBroadcast";
  case HRING__NCCL_OP_REDUCE: return "ncclReduce";
  case HRING__NCCL_OP_SPLIT: return "ncclCommSplit";
  }
  return "?";
}

ncclResult_t hring__nccl_op_run(const hring__nccl_op_t *op) {
  struct ncclComm *comm = op->comm;
  int state = atomic_load(&comm->state);
  switch (op->kind) {
  case HRING__NCCL_OP_INIT:
    if (state != HRING__NCCL_PENDING)
      return hring__nccl_err(ncclInvalidUsage,
                             "ncclCommInitRank: comm %p was aborted before its init ran",
                             (void *)comm);
    return hring__nccl_comm_init(comm, &op->id);
  case HRING__NCCL_OP_SPLIT:
    return hring__nccl_split_run(op);
  default: {
    const char *call = hring__nccl_op_name(op->kind);
    if (state != HRING__NCCL_READY)
      return hring__nccl_err(ncclInvalidUsage, "%s: comm %p is not usable (%s)", call,
                             (void *)comm,
                             state == HRING__NCCL_ABORTED ? "aborted" : "its init failed");
    hring_result_t r = HRING_ERR_INTERNAL;
    hring_comm_t h = comm->hcomm;
    switch (op->kind) {
    case HRING__NCCL_OP_ALLREDUCE:
      r = hring_allreduce(op->sendbuf, op->recvbuf, op->count, op->type, op->op, h, op->stream);
      break;
    case HRING__NCCL_OP_REDUCE_SCATTER:
      r = hring_reduce_scatter(op->sendbuf, op->recvbuf, op->count, op->type, op->op, h,
                               op->stream);
      break;
    case HRING__NCCL_OP_ALLGATHER:
      r = hring_allgather(op->sendbuf, op->recvbuf, op->count, op->type, h, op->stream);
      break;
    case HRING__NCCL_OP_BROADCAST:
      r = hring_broadcast(op->sendbuf, op->recvbuf, op->count, op->type, op->root, h, op->stream);
      break;
    case HRING__NCCL_OP_REDUCE:
      r = hring_reduce(op->sendbuf, op->recvbuf, op->count, op->type, op->op, op->root, h,
                       op->stream);
      break;
    default:
      return hring__nccl_err(ncclInternalError, "ncclGroupEnd: unknown queued operation %d",
                             (int)op->kind);
    }
    return r == HRING_SUCCESS ? ncclSuccess : hring__nccl_err_hring(r, call);
  }
  }
  return hring__nccl_err(ncclInternalError, "ncclGroupEnd: unknown queued operation %d",
                         (int)op->kind);
}

/* One communicator's share of a group. */
struct worker {
  struct ncclComm *comm;
  const hring__nccl_op_t *ops; /* the whole group, in issue order */
  int nops;
  ncclResult_t res;
  char msg[512]; /* the failure's text, read by the thread that joins */
  pthread_t thread;
  int started;
};

static void worker_run(struct worker *w) {
  w->res = ncclSuccess;
  w->msg[0] = '\0';
  for (int i = 0; i < w->nops; i++) {
    if (w->ops[i].comm != w->comm) continue;
    ncclResult_t r = hring__nccl_op_run(&w->ops[i]);
    if (r != ncclSuccess) {
      /* The last error is thread-local: carry it to the joining thread. */
      w->res = r;
      strncpy(w->msg, hring__nccl_last_error(), sizeof w->msg - 1);
      w->msg[sizeof w->msg - 1] = '\0';
      return;
    }
  }
}

static void *worker_main(void *arg) {
  worker_run(arg);
  return NULL;
}

/* A communicator whose queued init never ran must not stay PENDING forever,
 * or it could be neither used nor destroyed. */
static void fail_pending(struct ncclComm *comm, ncclResult_t why) {
  int expected = HRING__NCCL_PENDING;
  if (atomic_compare_exchange_strong(&comm->state, &expected, HRING__NCCL_FAILED))
    comm->init_error = why;
}

static void worker_not_started(struct worker *w, int err) {
  w->res = hring__nccl_err(ncclSystemError, "ncclGroupEnd: cannot start a thread: %s",
                           strerror(err));
  strncpy(w->msg, hring__nccl_last_error(), sizeof w->msg - 1);
  w->msg[sizeof w->msg - 1] = '\0';
  fail_pending(w->comm, w->res);
}

ncclResult_t hring__nccl_run_ops(const hring__nccl_op_t *ops, int nops) {
  if (nops == 0) return ncclSuccess;
  struct worker *workers = calloc((size_t)nops, sizeof *workers);
  if (workers == NULL) {
    ncclResult_t r =
        hring__nccl_err(ncclSystemError, "ncclGroupEnd: out of memory for %d operations", nops);
    for (int i = 0; i < nops; i++) fail_pending(ops[i].comm, r);
    return r;
  }
  /* Distinct communicators in order of first appearance (groups are small:
   * a quadratic scan is cheaper than anything cleverer). */
  int nw = 0;
  for (int i = 0; i < nops; i++) {
    int seen = 0;
    for (int k = 0; k < nw && !seen; k++) seen = workers[k].comm == ops[i].comm;
    if (!seen) workers[nw++] = (struct worker){.comm = ops[i].comm, .ops = ops, .nops = nops};
  }

  if (nw == 1) {
    worker_run(&workers[0]);
  } else {
    for (int k = 0; k < nw; k++) {
      int err = pthread_create(&workers[k].thread, NULL, worker_main, &workers[k]);
      if (err == 0)
        workers[k].started = 1;
      else
        worker_not_started(&workers[k], err); /* the others end by their deadline */
    }
    for (int k = 0; k < nw; k++)
      if (workers[k].started) pthread_join(workers[k].thread, NULL);
  }

  ncclResult_t res = ncclSuccess;
  for (int k = 0; k < nw && res == ncclSuccess; k++) {
    if (workers[k].res != ncclSuccess)
      res = hring__nccl_err(workers[k].res, "%s", workers[k].msg);
  }
  free(workers);
  return res;
}

HRING__NCCL_API ncclResult_t ncclGroupStart(void) {
  if (group_depth == INT_MAX)
    return hring__nccl_err(ncclInvalidUsage, "ncclGroupStart: groups nested too deep");
  group_depth++;
  return ncclSuccess;
}

HRING__NCCL_API ncclResult_t ncclGroupEnd(void) {
  if (group_depth == 0)
    return hring__nccl_err(ncclInvalidUsage, "ncclGroupEnd: no matching ncclGroupStart");
  if (--group_depth > 0) return ncclSuccess;
  /* Detach the queue first: the group is over whatever happens next. */
  hring__nccl_op_t *ops = group_ops;
  int nops = group_nops;
  group_ops = NULL;
  group_nops = group_cap = 0;
  ncclResult_t res = hring__nccl_run_ops(ops, nops);
  /* The handles of splits that failed or were skipped after an earlier
   * failure on their parent (the others now belong to the caller). */
  for (int i = 0; i < nops; i++)
    if (ops[i].kind == HRING__NCCL_OP_SPLIT) hring__nccl_split_release(ops[i].child);
  free(ops);
  return res;
}

HRING__NCCL_ALIAS(ncclResult_t, ncclGroupStart, (void));
HRING__NCCL_ALIAS(ncclResult_t, ncclGroupEnd, (void));
