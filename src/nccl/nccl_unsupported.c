/*
 * nccl_unsupported.c - the rest of nccl.h: entry points that hring does not
 * implement yet.
 *
 * They exist so that a program linked against NCCL loads and runs as long as
 * it only calls what the shim implements (dynamic linking fails on a missing
 * symbol even if it is never called).  Each returns ncclInvalidUsage with a
 * message naming the call, writes nothing through its pointer arguments and
 * leaves every communicator as it was.
 */
#include "nccl_shim.h"

static ncclResult_t unsupported(const char *call) {
  return hring__nccl_err(ncclInvalidUsage,
                         "%s is not supported by hring's NCCL shim (implemented: communicator "
                         "calls, ncclCommSplit, ncclAllReduce, ncclReduceScatter, "
                         "ncclAllGather, "
                         "ncclBroadcast, ncclBcast, ncclReduce, groups, memory and "
                         "registration)",
                         call);
}

HRING__NCCL_API ncclResult_t ncclCommRevoke(ncclComm_t comm, int revokeFlags) {
  (void)comm, (void)revokeFlags;
  return unsupported("ncclCommRevoke");
}

HRING__NCCL_API ncclResult_t ncclCommShrink(ncclComm_t comm, int *excludeRanksList,
                                            int excludeRanksCount, ncclComm_t *newcomm,
                                            ncclConfig_t *config, int shrinkFlags) {
  (void)comm, (void)excludeRanksList, (void)excludeRanksCount, (void)newcomm, (void)config,
      (void)shrinkFlags;
  return unsupported("ncclCommShrink");
}

HRING__NCCL_API ncclResult_t ncclCommInitRankScalable(ncclComm_t *newcomm, int nranks,
                                                      int myrank, int nId,
                                                      ncclUniqueId *commIds,
                                                      ncclConfig_t *config) {
  (void)newcomm, (void)nranks, (void)myrank, (void)nId, (void)commIds, (void)config;
  return unsupported("ncclCommInitRankScalable");
}

/* Logging is configured by HRING_DEBUG and read once; there is nothing to
 * reload, and the call cannot report an error. */
HRING__NCCL_API void ncclResetDebugInit(void) {}

HRING__NCCL_API ncclResult_t ncclCommWindowRegister(ncclComm_t comm, void *buff, size_t size,
                                                    ncclWindow_t *win, int winFlags) {
  (void)comm, (void)buff, (void)size, (void)win, (void)winFlags;
  return unsupported("ncclCommWindowRegister");
}

HRING__NCCL_API ncclResult_t ncclCommWindowDeregister(ncclComm_t comm, ncclWindow_t win) {
  (void)comm, (void)win;
  return unsupported("ncclCommWindowDeregister");
}

HRING__NCCL_API ncclResult_t ncclRedOpCreatePreMulSum(ncclRedOp_t *op, void *scalar,
                                                      ncclDataType_t datatype,
                                                      ncclScalarResidence_t residence,
                                                      ncclComm_t comm) {
  (void)op, (void)scalar, (void)datatype, (void)residence, (void)comm;
  return unsupported("ncclRedOpCreatePreMulSum");
}

HRING__NCCL_API ncclResult_t ncclRedOpDestroy(ncclRedOp_t op, ncclComm_t comm) {
  (void)op, (void)comm;
  return unsupported("ncclRedOpDestroy");
}

HRING__NCCL_API ncclResult_t ncclAlltoAll(const void *sendbuff, void *recvbuff, size_t count,
                                          ncclDataType_t datatype, ncclComm_t comm,
                                          cudaStream_t stream) {
  (void)sendbuff, (void)recvbuff, (void)count, (void)datatype, (void)comm, (void)stream;
  return unsupported("ncclAlltoAll");
}

HRING__NCCL_API ncclResult_t ncclGather(const void *sendbuff, void *recvbuff, size_t count,
                                        ncclDataType_t datatype, int root, ncclComm_t comm,
                                        cudaStream_t stream) {
  (void)sendbuff, (void)recvbuff, (void)count, (void)datatype, (void)root, (void)comm,
      (void)stream;
  return unsupported("ncclGather");
}

HRING__NCCL_API ncclResult_t ncclScatter(const void *sendbuff, void *recvbuff, size_t count,
                                         ncclDataType_t datatype, int root, ncclComm_t comm,
                                         cudaStream_t stream) {
  (void)sendbuff, (void)recvbuff, (void)count, (void)datatype, (void)root, (void)comm,
      (void)stream;
  return unsupported("ncclScatter");
}

HRING__NCCL_API ncclResult_t ncclSend(const void *sendbuff, size_t count,
                                      ncclDataType_t datatype, int peer, ncclComm_t comm,
                                      cudaStream_t stream) {
  (void)sendbuff, (void)count, (void)datatype, (void)peer, (void)comm, (void)stream;
  return unsupported("ncclSend");
}

HRING__NCCL_API ncclResult_t ncclRecv(void *recvbuff, size_t count, ncclDataType_t datatype,
                                      int peer, ncclComm_t comm, cudaStream_t stream) {
  (void)recvbuff, (void)count, (void)datatype, (void)peer, (void)comm, (void)stream;
  return unsupported("ncclRecv");
}

HRING__NCCL_API ncclResult_t ncclGroupSimulateEnd(ncclSimInfo_t *simInfo) {
  (void)simInfo;
  return unsupported("ncclGroupSimulateEnd");
}

HRING__NCCL_ALIAS(ncclResult_t, ncclCommRevoke, (ncclComm_t comm, int revokeFlags));
HRING__NCCL_ALIAS(ncclResult_t, ncclCommShrink,
                  (ncclComm_t comm, int *excludeRanksList, int excludeRanksCount,
                   ncclComm_t *newcomm, ncclConfig_t *config, int shrinkFlags));
HRING__NCCL_ALIAS(ncclResult_t, ncclCommInitRankScalable,
                  (ncclComm_t * newcomm, int nranks, int myrank, int nId,
                   ncclUniqueId *commIds, ncclConfig_t *config));
HRING__NCCL_ALIAS(void, ncclResetDebugInit, (void));
HRING__NCCL_ALIAS(ncclResult_t, ncclCommWindowRegister,
                  (ncclComm_t comm, void *buff, size_t size, ncclWindow_t *win, int winFlags));
HRING__NCCL_ALIAS(ncclResult_t, ncclCommWindowDeregister, (ncclComm_t comm, ncclWindow_t win));
HRING__NCCL_ALIAS(ncclResult_t, ncclRedOpCreatePreMulSum,
                  (ncclRedOp_t * op, void *scalar, ncclDataType_t datatype,
                   ncclScalarResidence_t residence, ncclComm_t comm));
HRING__NCCL_ALIAS(ncclResult_t, ncclRedOpDestroy, (ncclRedOp_t op, ncclComm_t comm));
HRING__NCCL_ALIAS(ncclResult_t, ncclAlltoAll,
                  (const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                   ncclComm_t comm, cudaStream_t stream));
HRING__NCCL_ALIAS(ncclResult_t, ncclGather,
                  (const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                   int root, ncclComm_t comm, cudaStream_t stream));
HRING__NCCL_ALIAS(ncclResult_t, ncclScatter,
                  (const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                   int root, ncclComm_t comm, cudaStream_t stream));
HRING__NCCL_ALIAS(ncclResult_t, ncclSend,
                  (const void *sendbuff, size_t count, ncclDataType_t datatype, int peer,
                   ncclComm_t comm, cudaStream_t stream));
HRING__NCCL_ALIAS(ncclResult_t, ncclRecv,
                  (void *recvbuff, size_t count, ncclDataType_t datatype, int peer,
                   ncclComm_t comm, cudaStream_t stream));
HRING__NCCL_ALIAS(ncclResult_t, ncclGroupSimulateEnd, (ncclSimInfo_t * simInfo));
