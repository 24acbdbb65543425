/*
 * nccl_abi.h - the part of NCCL's public interface that the shim implements,
 * written from the nccl.h of NCCL 2.28.9 (NCCL_VERSION_CODE 22809).
 *
 * The shim must build where no NCCL or CUDA header exists, so it does not
 * include nccl.h: this file restates the types it needs with the same names,
 * the same enumerator values and the same layout, and declares the functions
 * it exports with the same signatures.  The static asserts below pin sizes and
 * offsets; tests/nccl/nccl_shim_test.c asserts the same numbers against the
 * real header, so a mismatch on either side fails a build.
 *
 * Every NCCL enum is passed as an int-sized value (they all fit in int, and
 * ncclRedOp_t is forced to int size by ncclMaxRedOp), and ncclUniqueId is a
 * 128-byte struct passed by value, so the calling convention of each function
 * follows from these definitions.
 */
#ifndef HRING_NCCL_ABI_H
#define HRING_NCCL_ABI_H

#include <limits.h>
#include <stddef.h>

/* The NCCL release whose interface the shim implements, as nccl.h spells it.
 * ncclGetVersion reports this code: it tells a caller which ABI it gets. */
#define NCCL_MAJOR 2
#define NCCL_MINOR 28
#define NCCL_PATCH 9
#define NCCL_VERSION_CODE 22809
#define NCCL_VERSION(X, Y, Z)                                        \
  (((X) <= 2 && (Y) <= 8) ? (X) * 1000 + (Y) * 100 + (Z)             \
                          : (X) * 10000 + (Y) * 100 + (Z))

/* CUDA's stream handle (driver_types.h); only compared with NULL here. */
typedef struct CUstream_st *cudaStream_t;

/* Opaque communicator handle; struct ncclComm is the shim's own struct. */
typedef struct ncclComm *ncclComm_t;

#define NCCL_UNIQUE_ID_BYTES 128
typedef struct {
  char internal[NCCL_UNIQUE_ID_BYTES];
} ncclUniqueId;

typedef enum {
  ncclSuccess = 0,
  ncclUnhandledCudaError = 1,
  ncclSystemError = 2,
  ncclInternalError = 3,
  ncclInvalidArgument = 4,
  ncclInvalidUsage = 5,
  ncclRemoteError = 6,
  ncclInProgress = 7,
  ncclNumResults = 8
} ncclResult_t;

/* nccl.h sizes ncclRedOp_t through this dummy enum, so that ncclMaxRedOp is
 * the largest value that keeps the enum int-sized. */
typedef enum { ncclNumOps_dummy = 5 } ncclRedOp_dummy_t;
typedef enum {
  ncclSum = 0,
  ncclProd = 1,
  ncclMax = 2,
  ncclMin = 3,
  ncclAvg = 4,
  ncclNumOps = 5,
  ncclMaxRedOp = 0x7fffffff >> (32 - 8 * sizeof(ncclRedOp_dummy_t))
} ncclRedOp_t;

typedef enum {
  ncclInt8 = 0, ncclChar = 0,
  ncclUint8 = 1,
  ncclInt32 = 2, ncclInt = 2,
  ncclUint32 = 3,
  ncclInt64 = 4,
  ncclUint64 = 5,
  ncclFloat16 = 6, ncclHalf = 6,
  ncclFloat32 = 7, ncclFloat = 7,
  ncclFloat64 = 8, ncclDouble = 8,
  ncclBfloat16 = 9,
  ncclFloat8e4m3 = 10,
  ncclFloat8e5m2 = 11,
  ncclNumTypes = 12
} ncclDataType_t;

typedef enum {
  ncclScalarDevice = 0,
  ncclScalarHostImmediate = 1
} ncclScalarResidence_t;

/* The color of ncclCommSplit that puts a rank in no new communicator. */
#define NCCL_SPLIT_NOCOLOR -1

/* Communicator configuration (ncclConfig_v22800).  NCCL_CONFIG_INITIALIZER
 * sets size, magic and version and leaves every other field "undefined"; a
 * config from an older release is shorter (smaller size, older version) and
 * only its first fields may be read. */
#define NCCL_CONFIG_MAGIC 0xcafebeefu
#define NCCL_CONFIG_UNDEF_INT INT_MIN
#define NCCL_CONFIG_UNDEF_PTR NULL
typedef struct ncclConfig_v22800 {
  size_t size;
  unsigned int magic;
  unsigned int version;
  int blocking;
  int cgaClusterSize;
  int minCTAs;
  int maxCTAs;
  const char *netName;
  int splitShare;
  int trafficClass;
  const char *commName;
  int collnetEnable;
  int CTAPolicy;
  int shrinkShare;
  int nvlsCTAs;
  int nChannelsPerNetPeer;
  int nvlinkCentricSched;
} ncclConfig_t;

/* ncclGroupSimulateEnd's result (ncclSimInfo_v22200). */
typedef struct ncclSimInfo_v22200 {
  size_t size;
  unsigned int magic;
  unsigned int version;
  float estimatedTime;
} ncclSimInfo_t;

typedef struct ncclWindow_vidmem *ncclWindow_t;

_Static_assert(sizeof(ncclUniqueId) == 128, "ncclUniqueId is 128 bytes");
_Static_assert(sizeof(ncclResult_t) == sizeof(int), "ncclResult_t is int-sized");
_Static_assert(sizeof(ncclRedOp_t) == sizeof(int), "ncclRedOp_t is int-sized");
_Static_assert(sizeof(ncclDataType_t) == sizeof(int), "ncclDataType_t is int-sized");
_Static_assert((int)ncclMaxRedOp == 0x7fffffff, "ncclMaxRedOp as nccl.h computes it");
#if defined(__LP64__)
/* Numbers for LP64 (x86-64, aarch64); tests/nccl/nccl_shim_test.c checks the
 * real header against the same ones. */
_Static_assert(offsetof(ncclConfig_t, blocking) == 16, "ncclConfig_t.blocking offset");
_Static_assert(offsetof(ncclConfig_t, netName) == 32, "ncclConfig_t.netName offset");
_Static_assert(offsetof(ncclConfig_t, commName) == 48, "ncclConfig_t.commName offset");
_Static_assert(offsetof(ncclConfig_t, nvlinkCentricSched) == 76,
               "ncclConfig_t.nvlinkCentricSched offset");
_Static_assert(sizeof(ncclConfig_t) == 80, "ncclConfig_t size (NCCL 2.28)");
_Static_assert(sizeof(ncclSimInfo_t) == 24, "ncclSimInfo_t size");
#endif

/*
 * The functions of nccl.h, with its signatures.  Each has a pncclX twin (the
 * profiling entry point) that is an alias of ncclX.  ncclGroupStart and
 * ncclGroupEnd are declared "()" in nccl.h; "(void)" is the same ABI.
 */
ncclResult_t ncclGetVersion(int *version);
ncclResult_t ncclGetUniqueId(ncclUniqueId *uniqueId);
ncclResult_t ncclCommInitRankConfig(ncclComm_t *comm, int nranks, ncclUniqueId commId,
                                    int rank, ncclConfig_t *config);
ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId commId, int rank);
ncclResult_t ncclCommInitAll(ncclComm_t *comm, int ndev, const int *devlist);
ncclResult_t ncclCommFinalize(ncclComm_t comm);
ncclResult_t ncclCommDestroy(ncclComm_t comm);
ncclResult_t ncclCommAbort(ncclComm_t comm);
const char *ncclGetErrorString(ncclResult_t result);
const char *ncclGetLastError(ncclComm_t comm);
ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *asyncError);
ncclResult_t ncclCommCount(const ncclComm_t comm, int *count);
ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int *device);
ncclResult_t ncclCommUserRank(const ncclComm_t comm, int *rank);
ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                           cudaStream_t stream);
ncclResult_t ncclGroupStart(void);
ncclResult_t ncclGroupEnd(void);
ncclResult_t ncclCommSplit(ncclComm_t comm, int color, int key, ncclComm_t *newcomm,
                           ncclConfig_t *config);

/* Declared by nccl.h but not implemented by hring yet: they exist so that a
 * program linked against NCCL loads, and return ncclInvalidUsage with a
 * message (nccl_unsupported.c). */
ncclResult_t ncclMemAlloc(void **ptr, size_t size);
ncclResult_t ncclMemFree(void *ptr);
ncclResult_t ncclCommRevoke(ncclComm_t comm, int revokeFlags);
ncclResult_t ncclCommShrink(ncclComm_t comm, int *excludeRanksList, int excludeRanksCount,
                            ncclComm_t *newcomm, ncclConfig_t *config, int shrinkFlags);
ncclResult_t ncclCommInitRankScalable(ncclComm_t *newcomm, int nranks, int myrank, int nId,
                                      ncclUniqueId *commIds, ncclConfig_t *config);
void ncclResetDebugInit(void);
ncclResult_t ncclCommRegister(const ncclComm_t comm, void *buff, size_t size, void **handle);
ncclResult_t ncclCommDeregister(const ncclComm_t comm, void *handle);
ncclResult_t ncclCommWindowRegister(ncclComm_t comm, void *buff, size_t size, ncclWindow_t *win,
                                    int winFlags);
ncclResult_t ncclCommWindowDeregister(ncclComm_t comm, ncclWindow_t win);
ncclResult_t ncclRedOpCreatePreMulSum(ncclRedOp_t *op, void *scalar, ncclDataType_t datatype,
                                      ncclScalarResidence_t residence, ncclComm_t comm);
ncclResult_t ncclRedOpDestroy(ncclRedOp_t op, ncclComm_t comm);
ncclResult_t ncclReduce(const void *sendbuff, void *recvbuff, size_t count,
                        ncclDataType_t datatype, ncclRedOp_t op, int root, ncclComm_t comm,
                        cudaStream_t stream);
ncclResult_t ncclBcast(void *buff, size_t count, ncclDataType_t datatype, int root,
                       ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclBroadcast(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, int root, ncclComm_t comm,
                           cudaStream_t stream);
ncclResult_t ncclReduceScatter(const void *sendbuff, void *recvbuff, size_t recvcount,
                               ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                               cudaStream_t stream);
ncclResult_t ncclAllGather(const void *sendbuff, void *recvbuff, size_t sendcount,
                           ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclAlltoAll(const void *sendbuff, void *recvbuff, size_t count,
                          ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclGather(const void *sendbuff, void *recvbuff, size_t count,
                        ncclDataType_t datatype, int root, ncclComm_t comm,
                        cudaStream_t stream);
ncclResult_t ncclScatter(const void *sendbuff, void *recvbuff, size_t count,
                         ncclDataType_t datatype, int root, ncclComm_t comm,
                         cudaStream_t stream);
ncclResult_t ncclSend(const void *sendbuff, size_t count, ncclDataType_t datatype, int peer,
                      ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclRecv(void *recvbuff, size_t count, ncclDataType_t datatype, int peer,
                      ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclGroupSimulateEnd(ncclSimInfo_t *simInfo);

#endif /* HRING_NCCL_ABI_H */
