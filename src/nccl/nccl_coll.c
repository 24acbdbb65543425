/*
 * nccl_coll.c - NCCL's collectives on top of hring's: ncclAllReduce,
 * ncclReduceScatter, ncclAllGather, ncclBroadcast, ncclBcast and
 * ncclReduce.
 *
 * Arguments are checked when the call is made, inside a group too, so a bad
 * argument is reported by the call that has it and never reaches the peers.
 * Inside ncclGroupStart/ncclGroupEnd every collective is queued and runs at
 * ncclGroupEnd, in issue order per communicator (nccl_group.c); outside a
 * group it runs at the call.
 */
#include <stdint.h>

#include "nccl_shim.h"

_Static_assert((int)ncclInt8 == (int)HRING_INT8 && (int)ncclUint8 == (int)HRING_UINT8 &&
                   (int)ncclInt32 == (int)HRING_INT32 && (int)ncclUint32 == (int)HRING_UINT32 &&
                   (int)ncclInt64 == (int)HRING_INT64 && (int)ncclUint64 == (int)HRING_UINT64 &&
                   (int)ncclFloat16 == (int)HRING_FLOAT16 &&
                   (int)ncclFloat32 == (int)HRING_FLOAT32 &&
                   (int)ncclFloat64 == (int)HRING_FLOAT64 &&
                   (int)ncclBfloat16 == (int)HRING_BFLOAT16,
               "hring data types are numbered as ncclDataType_t");
_Static_assert((int)ncclSum == (int)HRING_SUM && (int)ncclProd == (int)HRING_PROD &&
                   (int)ncclMax == (int)HRING_MAX && (int)ncclMin == (int)HRING_MIN &&
                   (int)ncclAvg == (int)HRING_AVG && (int)ncclNumOps == (int)HRING_NUM_OPS,
               "hring reduction ops are numbered as ncclRedOp_t");

/* What every collective checks: the handle, the type, the op (uses_op),
 * that `elems` elements (count times the ranks it spans) fit a size_t,
 * root (when >= 0 is asked for: root_given), and the communicator's state.
 * Fills *type and *op; records the reason and returns ncclInvalidArgument
 * or ncclInvalidUsage when something is wrong. */
static ncclResult_t check_call(const char *call, ncclComm_t comm, size_t count, int per_rank,
                               ncclDataType_t datatype, int uses_op, ncclRedOp_t redop,
                               int root_given, int root, hring_datatype_t *type,
                               hring_redop_t *op) {
  ncclResult_t r = hring__nccl_comm_check(comm, call);
  if (r != ncclSuccess) return r;
  /* The enums are read as ints: a caller may pass any value. */
  int t = (int)datatype;
  if (t == (int)ncclFloat8e4m3 || t == (int)ncclFloat8e5m2)
    return hring__nccl_err(ncclInvalidArgument,
                           "%s: fp8 datatype %d (ncclFloat8e4m3/ncclFloat8e5m2) not supported",
                           call, t);
  if (t < 0 || t >= (int)HRING_NUM_TYPES)
    return hring__nccl_err(ncclInvalidArgument, "%s: unknown datatype %d", call, t);
  int o = uses_op ? (int)redop : (int)HRING_SUM;
  if (o < 0 || o >= (int)HRING_NUM_OPS)
    return hring__nccl_err(ncclInvalidArgument,
                           "%s: reduction op %d not supported (built-in ops only, no "
                           "ncclRedOpCreatePreMulSum)",
                           call, o);
  size_t esize = hring_type_size((hring_datatype_t)t);
  size_t span = per_rank && comm->nranks > 0 ? (size_t)comm->nranks : 1;
  if (esize == 0 || count > SIZE_MAX / esize / span)
    return hring__nccl_err(ncclInvalidArgument, "%s: count %zu of %zu-byte elements overflows",
                           call, count, esize);
  if (root_given && (root < 0 || root >= comm->nranks))
    return hring__nccl_err(ncclInvalidArgument, "%s: root %d is not a rank of the %d-rank comm",
                           call, root, comm->nranks);
  int state = atomic_load(&comm->state);
  if (state == HRING__NCCL_FAILED)
    return hring__nccl_err(ncclInvalidUsage,
                           "%s: comm %p failed its init (result %d): only destroy or abort apply",
                           call, (void *)comm, (int)comm->init_error);
  *type = (hring_datatype_t)t;
  *op = (hring_redop_t)o;
  return ncclSuccess;
}

static ncclResult_t null_buffer(const char *call, const char *which, size_t count) {
  return hring__nccl_err(ncclInvalidArgument, "%s: %s is NULL with count %zu", call, which,
                         count);
}

/* Runs a validated collective now, or queues it in the open group.  A
 * communicator whose init is still queued is usable only in the group that
 * will run that init, where the collective is queued behind it. */
static ncclResult_t submit(hring__nccl_op_t *q) {
  if (atomic_load(&q->comm->state) == HRING__NCCL_PENDING &&
      !(hring__nccl_group_depth() > 0 && hring__nccl_group_holds(q->comm)))
    return hring__nccl_err(ncclInvalidUsage,
                           "%s: comm %p is not initialized yet (its init waits for ncclGroupEnd)",
                           hring__nccl_op_name(q->kind), (void *)q->comm);
  if (hring__nccl_group_depth() > 0) return hring__nccl_group_enqueue(q);
  return hring__nccl_op_run(q);
}

HRING__NCCL_API ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                                           ncclDataType_t datatype, ncclRedOp_t redop,
                                           ncclComm_t comm, cudaStream_t stream) {
  static const char call[] = "ncclAllReduce";
  hring_datatype_t type;
  hring_redop_t op;
  ncclResult_t r = check_call(call, comm, count, 0, datatype, 1, redop, 0, 0, &type, &op);
  if (r != ncclSuccess) return r;
  if (count > 0 && (sendbuff == NULL || recvbuff == NULL))
    return null_buffer(call, sendbuff == NULL ? "sendbuff" : "recvbuff", count);
  hring__nccl_op_t q = {.kind = HRING__NCCL_OP_ALLREDUCE, .comm = comm, .sendbuf = sendbuff,
                       .recvbuf = recvbuff, .count = count, .type = type, .op = op,
                       .stream = (void *)stream};
  return submit(&q);
}

HRING__NCCL_API ncclResult_t ncclReduceScatter(const void *sendbuff, void *recvbuff,
                                               size_t recvcount, ncclDataType_t datatype,
                                               ncclRedOp_t redop, ncclComm_t comm,
                                               cudaStream_t stream) {
  static const char call[] = "ncclReduceScatter";
  hring_datatype_t type;
  hring_redop_t op;
  ncclResult_t r = check_call(call, comm, recvcount, 1, datatype, 1, redop, 0, 0, &type, &op);
  if (r != ncclSuccess) return r;
  if (recvcount > 0 && (sendbuff == NULL || recvbuff == NULL))
    return null_buffer(call, sendbuff == NULL ? "sendbuff" : "recvbuff", recvcount);
  hring__nccl_op_t q = {.kind = HRING__NCCL_OP_REDUCE_SCATTER, .comm = comm,
                       .sendbuf = sendbuff, .recvbuf = recvbuff, .count = recvcount,
                       .type = type, .op = op, .stream = (void *)stream};
  return submit(&q);
}

HRING__NCCL_API ncclResult_t ncclAllGather(const void *sendbuff, void *recvbuff,
                                           size_t sendcount, ncclDataType_t datatype,
                                           ncclComm_t comm, cudaStream_t stream) {
  static const char call[] = "ncclAllGather";
  hring_datatype_t type;
  hring_redop_t op;
  ncclResult_t r = check_call(call, comm, sendcount, 1, datatype, 0, ncclSum, 0, 0, &type, &op);
  if (r != ncclSuccess) return r;
  if (sendcount > 0 && (sendbuff == NULL || recvbuff == NULL))
    return null_buffer(call, sendbuff == NULL ? "sendbuff" : "recvbuff", sendcount);
  hring__nccl_op_t q = {.kind = HRING__NCCL_OP_ALLGATHER, .comm = comm, .sendbuf = sendbuff,
                       .recvbuf = recvbuff, .count = sendcount, .type = type,
                       .stream = (void *)stream};
  return submit(&q);
}

/* ncclBroadcast and ncclBcast: sendbuff is read on root only. */
static ncclResult_t broadcast(const char *call, const void *sendbuff, void *recvbuff,
                              size_t count, ncclDataType_t datatype, int root, ncclComm_t comm,
                              cudaStream_t stream) {
  hring_datatype_t type;
  hring_redop_t op;
  ncclResult_t r = check_call(call, comm, count, 0, datatype, 0, ncclSum, 1, root, &type, &op);
  if (r != ncclSuccess) return r;
  if (count > 0 && recvbuff == NULL) return null_buffer(call, "recvbuff", count);
  if (count > 0 && sendbuff == NULL && comm->rank == root)
    return null_buffer(call, "sendbuff (on root)", count);
  hring__nccl_op_t q = {.kind = HRING__NCCL_OP_BROADCAST, .comm = comm, .sendbuf = sendbuff,
                       .recvbuf = recvbuff, .count = count, .type = type, .root = root,
                       .stream = (void *)stream};
  return submit(&q);
}

HRING__NCCL_API ncclResult_t ncclBroadcast(const void *sendbuff, void *recvbuff, size_t count,
                                           ncclDataType_t datatype, int root, ncclComm_t comm,
                                           cudaStream_t stream) {
  return broadcast("ncclBroadcast", sendbuff, recvbuff, count, datatype, root, comm, stream);
}

/* The legacy in-place form. */
HRING__NCCL_API ncclResult_t ncclBcast(void *buff, size_t count, ncclDataType_t datatype,
                                       int root, ncclComm_t comm, cudaStream_t stream) {
  return broadcast("ncclBcast", buff, buff, count, datatype, root, comm, stream);
}

HRING__NCCL_API ncclResult_t ncclReduce(const void *sendbuff, void *recvbuff, size_t count,
                                        ncclDataType_t datatype, ncclRedOp_t redop, int root,
                                        ncclComm_t comm, cudaStream_t stream) {
  static const char call[] = "ncclReduce";
  hring_datatype_t type;
  hring_redop_t op;
  ncclResult_t r = check_call(call, comm, count, 0, datatype, 1, redop, 1, root, &type, &op);
  if (r != ncclSuccess) return r;
  if (count > 0 && sendbuff == NULL) return null_buffer(call, "sendbuff", count);
  if (count > 0 && recvbuff == NULL && comm->rank == root)
    return null_buffer(call, "recvbuff (on root)", count);
  hring__nccl_op_t q = {.kind = HRING__NCCL_OP_REDUCE, .comm = comm, .sendbuf = sendbuff,
                       .recvbuf = recvbuff, .count = count, .type = type, .op = op,
                       .root = root, .stream = (void *)stream};
  return submit(&q);
}

HRING__NCCL_ALIAS(ncclResult_t, ncclAllReduce,
                  (const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                   ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream));
HRING__NCCL_ALIAS(ncclResult_t, ncclReduceScatter,
                  (const void *sendbuff, void *recvbuff, size_t recvcount,
                   ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                   cudaStream_t stream));
HRING__NCCL_ALIAS(ncclResult_t, ncclAllGather,
                  (const void *sendbuff, void *recvbuff, size_t sendcount,
                   ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream));
HRING__NCCL_ALIAS(ncclResult_t, ncclBroadcast,
                  (const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                   int root, ncclComm_t comm, cudaStream_t stream));
HRING__NCCL_ALIAS(ncclResult_t, ncclBcast,
                  (void *buff, size_t count, ncclDataType_t datatype, int root, ncclComm_t comm,
                   cudaStream_t stream));
HRING__NCCL_ALIAS(ncclResult_t, ncclReduce,
                  (const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                   ncclRedOp_t op, int root, ncclComm_t comm, cudaStream_t stream));
