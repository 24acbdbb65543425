/*
 * nccl_coll.c - ncclAllReduce on top of hring_allreduce.
 *
 * Arguments are checked when the call is made, inside a group too, so a bad
 * argument is reported by the call that has it and never reaches the peers.
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

/* Checks an allreduce's arguments and fills `op`; records the reason and
 * returns ncclInvalidArgument / ncclInvalidUsage when they are bad. */
static ncclResult_t allreduce_check(const void *sendbuff, void *recvbuff, size_t count,
                                    ncclDataType_t datatype, ncclRedOp_t redop, ncclComm_t comm,
                                    cudaStream_t stream, hring__nccl_op_t *op) {
  static const char call[] = "ncclAllReduce";
  ncclResult_t r = hring__nccl_comm_check(comm, call);
  if (r != ncclSuccess) return r;
  /* The enum is read as an int: a caller may pass any value. */
  int type = (int)datatype;
  if (type == (int)ncclFloat8e4m3 || type == (int)ncclFloat8e5m2)
    return hring__nccl_err(ncclInvalidArgument,
                           "%s: fp8 datatype %d (ncclFloat8e4m3/ncclFloat8e5m2) not supported",
                           call, type);
  if (type < 0 || type >= (int)HRING_NUM_TYPES)
    return hring__nccl_err(ncclInvalidArgument, "%s: unknown datatype %d", call, type);
  int redop_value = (int)redop;
  if (redop_value < 0 || redop_value >= (int)HRING_NUM_OPS)
    return hring__nccl_err(ncclInvalidArgument,
                           "%s: reduction op %d not supported (built-in ops only, no "
                           "ncclRedOpCreatePreMulSum)",
                           call, redop_value);
  if (count > 0 && (sendbuff == NULL || recvbuff == NULL))
    return hring__nccl_err(ncclInvalidArgument, "%s: %s is NULL with count %zu", call,
                           sendbuff == NULL ? "sendbuff" : "recvbuff", count);
  size_t esize = hring_type_size((hring_datatype_t)type);
  if (esize == 0 || count > SIZE_MAX / esize)
    return hring__nccl_err(ncclInvalidArgument, "%s: count %zu of %zu-byte elements overflows",
                           call, count, esize);

  int state = atomic_load(&comm->state);
  if (state == HRING__NCCL_FAILED)
    return hring__nccl_err(ncclInvalidUsage,
                           "%s: comm %p failed its init (result %d): only destroy or abort apply",
                           call, (void *)comm, (int)comm->init_error);
  /* A pending comm is usable only in the group that will run its init, where
   * the allreduce is queued behind it. */
  if (state == HRING__NCCL_PENDING &&
      !(hring__nccl_group_depth() > 0 && hring__nccl_group_holds(comm)))
    return hring__nccl_err(ncclInvalidUsage,
                           "%s: comm %p is not initialized yet (its init waits for ncclGroupEnd)",
                           call, (void *)comm);

  *op = (hring__nccl_op_t){
      .kind = HRING__NCCL_OP_ALLREDUCE,
      .comm = comm,
      .sendbuf = sendbuff,
      .recvbuf = recvbuff,
      .count = count,
      .type = (hring_datatype_t)type,
      .op = (hring_redop_t)redop_value,
      .stream = (void *)stream,
  };
  return ncclSuccess;
}

HRING__NCCL_API ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                                           ncclDataType_t datatype, ncclRedOp_t op,
                                           ncclComm_t comm, cudaStream_t stream) {
  hring__nccl_op_t qop;
  ncclResult_t r = allreduce_check(sendbuff, recvbuff, count, datatype, op, comm, stream, &qop);
  if (r != ncclSuccess) return r;
  if (hring__nccl_group_depth() > 0) return hring__nccl_group_enqueue(&qop);
  return hring__nccl_op_run(&qop);
}

HRING__NCCL_ALIAS(ncclResult_t, ncclAllReduce,
                  (const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                   ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream));
