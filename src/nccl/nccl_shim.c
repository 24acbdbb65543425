/*
 * nccl_shim.c - NCCL's results, errors, version and communicator calls on top
 * of hring's public API.
 *
 * Buffers are host memory and no CUDA device is used; see docs/nccl-shim.md
 * for what each call does and how it differs from NCCL.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nccl_shim.h"
#include "core/cuda.h"

/* ------------------------------------------------------------------------ */
/* Results and the thread's last error                                       */
/* ------------------------------------------------------------------------ */

/* The shim keeps its own copy of the last failure's text: NCCL's last error
 * lasts until the next failure, while hring_last_error() is only valid until
 * the next hring call, and the shim finds some errors itself (streams, fp8). */
#define HRING__NCCL_ERR_MAX 512
static _Thread_local char last_error[HRING__NCCL_ERR_MAX];

ncclResult_t hring__nccl_result(hring_result_t r) {
  switch (r) {
  case HRING_SUCCESS:
  case HRING_ERR_CUDA:
  case HRING_ERR_SYSTEM:
  case HRING_ERR_INTERNAL:
  case HRING_ERR_INVALID_ARGUMENT:
  case HRING_ERR_INVALID_USAGE:
  case HRING_ERR_REMOTE:
  case HRING_IN_PROGRESS:
    /* Numbered as ncclResult_t (hring.h promises it). */
    return (ncclResult_t)r;
  case HRING_ERR_TIMEOUT:
    /* NCCL has no timeout code; a deadline that expired is a failure of the
     * system around the call, as a broken socket would be. */
    return ncclSystemError;
  case HRING_ERR_NO_MEMORY:
    return ncclSystemError;
  case HRING_ERR_UNSUPPORTED:
    /* Something this build cannot do: the caller's use is what must change. */
    return ncclInvalidUsage;
  default:
    return ncclInternalError;
  }
}

_Static_assert((int)HRING_SUCCESS == (int)ncclSuccess &&
                   (int)HRING_ERR_CUDA == (int)ncclUnhandledCudaError &&
                   (int)HRING_ERR_SYSTEM == (int)ncclSystemError &&
                   (int)HRING_ERR_INTERNAL == (int)ncclInternalError &&
                   (int)HRING_ERR_INVALID_ARGUMENT == (int)ncclInvalidArgument &&
                   (int)HRING_ERR_INVALID_USAGE == (int)ncclInvalidUsage &&
                   (int)HRING_ERR_REMOTE == (int)ncclRemoteError &&
                   (int)HRING_IN_PROGRESS == (int)ncclInProgress,
               "hring result codes 0..7 are numbered as ncclResult_t");

ncclResult_t hring__nccl_err(ncclResult_t code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return code;
}

ncclResult_t hring__nccl_err_hring(hring_result_t r, const char *call) {
  const char *text = hring_last_error();
  if (text == NULL || text[0] == '\0') text = hring_strerror(r);
  /* Copy before anything else can call into hring and replace the text. */
  snprintf(last_error, sizeof last_error, "%s: %s", call, text);
  return hring__nccl_result(r);
}

const char *hring__nccl_last_error(void) { return last_error; }

HRING__NCCL_API const char *ncclGetErrorString(ncclResult_t result) {
  switch (result) {
  case ncclSuccess:
    return "no error";
  case ncclUnhandledCudaError:
    return "unhandled CUDA error (see ncclGetLastError)";
  case ncclSystemError:
    return "system error, timeout or out of memory (see ncclGetLastError)";
  case ncclInternalError:
    return "internal error (see ncclGetLastError)";
  case ncclInvalidArgument:
    return "invalid argument (see ncclGetLastError)";
  case ncclInvalidUsage:
    return "invalid usage (see ncclGetLastError)";
  case ncclRemoteError:
    return "remote error: a peer failed, left or disagreed (see ncclGetLastError)";
  case ncclInProgress:
    return "operation in progress";
  default:
    return "unknown result code";
  }
}

/* NCCL keeps one last error per process and ignores `comm`; the shim keeps it
 * per thread, which is what a thread that just saw a failure wants to read. */
HRING__NCCL_API const char *ncclGetLastError(ncclComm_t comm) {
  (void)comm;
  return last_error;
}

/* The version of the ABI implemented, not hring's own version: a caller
 * checks it against the NCCL_VERSION_CODE it was compiled with. */
HRING__NCCL_API ncclResult_t ncclGetVersion(int *version) {
  if (version == NULL)
    return hring__nccl_err(ncclInvalidArgument, "ncclGetVersion: version is NULL");
  *version = NCCL_VERSION_CODE;
  return ncclSuccess;
}

HRING__NCCL_API ncclResult_t ncclGetUniqueId(ncclUniqueId *uniqueId) {
  if (uniqueId == NULL)
    return hring__nccl_err(ncclInvalidArgument, "ncclGetUniqueId: uniqueId is NULL");
  hring_unique_id_t id;
  hring_result_t r = hring_get_unique_id(&id);
  if (r != HRING_SUCCESS) return hring__nccl_err_hring(r, "ncclGetUniqueId");
  memcpy(uniqueId->internal, id.internal, sizeof uniqueId->internal);
  return ncclSuccess;
}

/* ------------------------------------------------------------------------ */
/* Communicator handles                                                      */
/* ------------------------------------------------------------------------ */

ncclResult_t hring__nccl_comm_check(const struct ncclComm *comm, const char *call) {
  if (comm == NULL) return hring__nccl_err(ncclInvalidArgument, "%s: comm is NULL", call);
  if (comm->magic != HRING__NCCL_COMM_MAGIC)
    return hring__nccl_err(ncclInvalidArgument,
                           "%s: comm %p is not a communicator (destroyed or corrupt)", call,
                           (const void *)comm);
  if (atomic_load(&comm->state) == HRING__NCCL_ABORTED)
    return hring__nccl_err(ncclInvalidArgument, "%s: comm %p was aborted", call,
                           (const void *)comm);
  return ncclSuccess;
}

struct ncclComm *hring__nccl_comm_new(int nranks, int rank) {
  struct ncclComm *comm = calloc(1, sizeof *comm);
  if (comm == NULL) return NULL;
  comm->magic = HRING__NCCL_COMM_MAGIC;
  atomic_init(&comm->state, HRING__NCCL_PENDING);
  comm->nranks = nranks;
  comm->rank = rank;
  comm->init_error = ncclSuccess;
  return comm;
}

void hring__nccl_comm_free(struct ncclComm *comm) {
  if (comm == NULL) return;
  /* A stale handle used after this is then refused while the memory has not
   * been reused (a best effort: nothing can make a dangling pointer safe). */
  comm->magic = 0;
  free(comm);
}

ncclResult_t hring__nccl_comm_init(struct ncclComm *comm, const ncclUniqueId *id) {
  hring_unique_id_t hid;
  memcpy(hid.internal, id->internal, sizeof hid.internal);
  hring_comm_t hcomm = NULL;
  hring_result_t r = hring_comm_init_rank(&hcomm, comm->nranks, hid, comm->rank);
  if (r != HRING_SUCCESS) {
    comm->init_error = hring__nccl_err_hring(r, "ncclCommInitRank");
    int expected = HRING__NCCL_PENDING;
    atomic_compare_exchange_strong(&comm->state, &expected, HRING__NCCL_FAILED);
    return comm->init_error;
  }
  comm->hcomm = hcomm;
  /* NCCL binds a communicator to the device current at init. */
  const hring_cuda_api_t *cu = hring__cuda();
  if (!cu || cu->get_device(&comm->cuda_dev) != 0) comm->cuda_dev = 0;
  int expected = HRING__NCCL_PENDING;
  if (!atomic_compare_exchange_strong(&comm->state, &expected, HRING__NCCL_READY)) {
    /* ncclCommAbort came first: the communicator it could not reach goes. */
    (void)hring_comm_abort(hcomm);
    comm->hcomm = NULL;
    return hring__nccl_err(ncclInvalidUsage, "ncclCommInitRank: comm aborted during its init");
  }
  return ncclSuccess;
}

/* NCCL refuses a config that NCCL_CONFIG_INITIALIZER did not set up; the shim
 * does the same, and checks the one field whose meaning it must honour.  A
 * nonblocking communicator (blocking = 0) is accepted: every call of the shim
 * completes before it returns, which a nonblocking caller also handles (it
 * sees ncclSuccess where NCCL may say ncclInProgress).  The other fields tune
 * GPU kernels and networks that the shim does not use. */
static ncclResult_t config_check(const ncclConfig_t *config, const char *call) {
  if (config == NULL) return ncclSuccess;
  if (config->magic != NCCL_CONFIG_MAGIC)
    return hring__nccl_err(ncclInvalidArgument,
                           "%s: config not initialized with NCCL_CONFIG_INITIALIZER (magic 0x%x)",
                           call, config->magic);
  /* ncclConfig_t appeared in NCCL 2.14. */
  if (config->version < NCCL_VERSION(2, 14, 0))
    return hring__nccl_err(ncclInvalidArgument,
                           "%s: config version %u predates ncclConfig_t", call,
                           config->version);
  if (config->size < offsetof(ncclConfig_t, blocking) + sizeof config->blocking)
    return hring__nccl_err(ncclInvalidArgument, "%s: config size %zu too small", call,
                           config->size);
  int b = config->blocking;
  if (b != NCCL_CONFIG_UNDEF_INT && b != 0 && b != 1)
    return hring__nccl_err(ncclInvalidArgument,
                           "%s: config blocking %d is not 0 or 1", call, b);
  return ncclSuccess;
}

static ncclResult_t comm_init_rank(const char *call, ncclComm_t *comm, int nranks,
                                   const ncclUniqueId *id, int rank) {
  if (comm == NULL) return hring__nccl_err(ncclInvalidArgument, "%s: comm is NULL", call);
  if (nranks < 1)
    return hring__nccl_err(ncclInvalidArgument, "%s: nranks %d < 1", call, nranks);
  if (rank < 0 || rank >= nranks)
    return hring__nccl_err(ncclInvalidArgument, "%s: rank %d out of range [0, %d)", call, rank,
                           nranks);
  struct ncclComm *c = hring__nccl_comm_new(nranks, rank);
  if (c == NULL) return hring__nccl_err(ncclSystemError, "%s: out of memory", call);

  if (hring__nccl_group_depth() > 0) {
    /* As in NCCL, the handle exists at once and the init runs at the
     * outermost ncclGroupEnd, concurrently with the other inits queued there
     * (several ranks of one communicator driven by one thread). */
    hring__nccl_op_t op = {.kind = HRING__NCCL_OP_INIT, .comm = c, .id = *id};
    ncclResult_t r = hring__nccl_group_enqueue(&op);
    if (r != ncclSuccess) {
      hring__nccl_comm_free(c);
      return r;
    }
    *comm = c;
    return ncclSuccess;
  }
  ncclResult_t r = hring__nccl_comm_init(c, id);
  if (r != ncclSuccess) {
    hring__nccl_comm_free(c);
    *comm = NULL;
    return r;
  }
  *comm = c;
  return ncclSuccess;
}

HRING__NCCL_API ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId commId,
                                              int rank) {
  return comm_init_rank("ncclCommInitRank", comm, nranks, &commId, rank);
}

HRING__NCCL_API ncclResult_t ncclCommInitRankConfig(ncclComm_t *comm, int nranks,
                                                    ncclUniqueId commId, int rank,
                                                    ncclConfig_t *config) {
  ncclResult_t r = config_check(config, "ncclCommInitRankConfig");
  if (r != ncclSuccess) return r;
  return comm_init_rank("ncclCommInitRankConfig", comm, nranks, &commId, rank);
}

/* ndev ranks in this process: one unique id, one thread per rank for the
 * init (hring_comm_init_rank blocks until all ranks have joined).  The
 * devices are not used (buffers are host memory); several entries of devlist
 * may name the same device, which hring allows. */
HRING__NCCL_API ncclResult_t ncclCommInitAll(ncclComm_t *comms, int ndev, const int *devlist) {
  if (comms == NULL) return hring__nccl_err(ncclInvalidArgument, "ncclCommInitAll: comm is NULL");
  if (ndev < 1) return hring__nccl_err(ncclInvalidArgument, "ncclCommInitAll: ndev %d < 1", ndev);
  for (int i = 0; devlist != NULL && i < ndev; i++)
    if (devlist[i] < 0)
      return hring__nccl_err(ncclInvalidArgument, "ncclCommInitAll: devlist[%d] = %d is negative",
                             i, devlist[i]);

  ncclResult_t res = ncclSuccess;
  int made = 0;
  ncclUniqueId id;
  hring__nccl_op_t *ops = calloc((size_t)ndev, sizeof *ops);
  if (ops == NULL) return hring__nccl_err(ncclSystemError, "ncclCommInitAll: out of memory");
  res = ncclGetUniqueId(&id);
  if (res != ncclSuccess) goto err_ops;
  for (; made < ndev; made++) {
    ops[made] = (hring__nccl_op_t){.kind = HRING__NCCL_OP_INIT, .id = id};
    ops[made].comm = hring__nccl_comm_new(ndev, made);
    if (ops[made].comm == NULL) {
      res = hring__nccl_err(ncclSystemError, "ncclCommInitAll: out of memory");
      goto err_comms;
    }
  }
  /* The root that ncclGetUniqueId started waits for ndev ranks and would
   * time out alone if the handles could not all be made; that case returns
   * above after freeing them, and the root ends by its own deadline. */
  res = hring__nccl_run_ops(ops, ndev);
  if (res != ncclSuccess) goto err_comms;
  for (int i = 0; i < ndev; i++) comms[i] = ops[i].comm;
  free(ops);
  return ncclSuccess;

err_comms:
  for (int i = 0; i < made; i++) {
    if (ops[i].comm->hcomm != NULL) (void)hring_comm_destroy(ops[i].comm->hcomm);
    hring__nccl_comm_free(ops[i].comm);
  }
  for (int i = 0; i < ndev; i++) comms[i] = NULL;
err_ops:
  free(ops);
  return res;
}

/* Every operation completes before its call (or its group) returns, so there
 * is nothing to flush. */
HRING__NCCL_API ncclResult_t ncclCommFinalize(ncclComm_t comm) {
  return hring__nccl_comm_check(comm, "ncclCommFinalize");
}

HRING__NCCL_API ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (comm == NULL) return ncclSuccess; /* as NCCL does */
  ncclResult_t r = hring__nccl_comm_check(comm, "ncclCommDestroy");
  if (r != ncclSuccess) return r;
  if (hring__nccl_group_holds(comm) || atomic_load(&comm->state) == HRING__NCCL_PENDING)
    return hring__nccl_err(ncclInvalidUsage,
                           "ncclCommDestroy: comm has operations queued in an open group");
  if (comm->hcomm != NULL) {
    hring_result_t hr = hring_comm_destroy(comm->hcomm);
    if (hr != HRING_SUCCESS) r = hring__nccl_err_hring(hr, "ncclCommDestroy");
  }
  hring__nccl_comm_free(comm);
  return r;
}

/* May run while another thread is blocked in a collective on `comm`.  The
 * handle is marked aborted but not freed: the blocked thread still holds it,
 * and a handle is a few dozen bytes, so keeping it is the safe side. */
HRING__NCCL_API ncclResult_t ncclCommAbort(ncclComm_t comm) {
  if (comm == NULL) return ncclSuccess; /* as NCCL does */
  ncclResult_t r = hring__nccl_comm_check(comm, "ncclCommAbort");
  if (r != ncclSuccess) return r;
  int state = atomic_exchange(&comm->state, HRING__NCCL_ABORTED);
  if (state == HRING__NCCL_ABORTED)
    return hring__nccl_err(ncclInvalidArgument, "ncclCommAbort: comm %p was aborted",
                           (void *)comm);
  if (state == HRING__NCCL_READY) {
    hring_result_t hr = hring_comm_abort(comm->hcomm);
    if (hr != HRING_SUCCESS) return hring__nccl_err_hring(hr, "ncclCommAbort");
  }
  return ncclSuccess;
}

HRING__NCCL_API ncclResult_t ncclCommCount(const ncclComm_t comm, int *count) {
  ncclResult_t r = hring__nccl_comm_check(comm, "ncclCommCount");
  if (r != ncclSuccess) return r;
  if (count == NULL) return hring__nccl_err(ncclInvalidArgument, "ncclCommCount: count is NULL");
  if (atomic_load(&comm->state) != HRING__NCCL_READY) {
    *count = comm->nranks; /* what init was asked for */
    return ncclSuccess;
  }
  hring_result_t hr = hring_comm_size(comm->hcomm, count);
  return hr == HRING_SUCCESS ? ncclSuccess : hring__nccl_err_hring(hr, "ncclCommCount");
}

HRING__NCCL_API ncclResult_t ncclCommUserRank(const ncclComm_t comm, int *rank) {
  ncclResult_t r = hring__nccl_comm_check(comm, "ncclCommUserRank");
  if (r != ncclSuccess) return r;
  if (rank == NULL) return hring__nccl_err(ncclInvalidArgument, "ncclCommUserRank: rank is NULL");
  if (atomic_load(&comm->state) != HRING__NCCL_READY) {
    *rank = comm->rank;
    return ncclSuccess;
  }
  hring_result_t hr = hring_comm_rank(comm->hcomm, rank);
  return hr == HRING_SUCCESS ? ncclSuccess : hring__nccl_err_hring(hr, "ncclCommUserRank");
}

/* The device current when the communicator was created (0 without CUDA,
 * so that a program which selects it before allocating keeps working). */
HRING__NCCL_API ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int *device) {
  ncclResult_t r = hring__nccl_comm_check(comm, "ncclCommCuDevice");
  if (r != ncclSuccess) return r;
  if (device == NULL)
    return hring__nccl_err(ncclInvalidArgument, "ncclCommCuDevice: device is NULL");
  *device = comm->cuda_dev;
  return ncclSuccess;
}

HRING__NCCL_API ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *asyncError) {
  ncclResult_t r = hring__nccl_comm_check(comm, "ncclCommGetAsyncError");
  if (r != ncclSuccess) return r;
  if (asyncError == NULL)
    return hring__nccl_err(ncclInvalidArgument, "ncclCommGetAsyncError: asyncError is NULL");
  switch (atomic_load(&comm->state)) {
  case HRING__NCCL_PENDING:
    /* Its init waits for the outermost ncclGroupEnd. */
    *asyncError = ncclInProgress;
    return ncclSuccess;
  case HRING__NCCL_FAILED:
    *asyncError = comm->init_error;
    return ncclSuccess;
  default:
    break;
  }
  hring_result_t async = HRING_SUCCESS;
  hring_result_t hr = hring_comm_get_async_error(comm->hcomm, &async);
  if (hr != HRING_SUCCESS) return hring__nccl_err_hring(hr, "ncclCommGetAsyncError");
  *asyncError = hring__nccl_result(async);
  return ncclSuccess;
}

/* ------------------------------------------------------------------------ */
/* ncclCommSplit                                                             */
/* ------------------------------------------------------------------------ */

/* The color a refused call passes to hring_comm_split: invalid there, so
 * that this rank still takes part in the first exchange and every other
 * rank returns an error instead of waiting for it. */
#define SPLIT_REFUSED INT_MIN

_Static_assert(NCCL_SPLIT_NOCOLOR == HRING_SPLIT_NOCOLOR, "the no-color values agree");

ncclResult_t hring__nccl_split_run(const hring__nccl_op_t *op) {
  struct ncclComm *parent = op->comm;
  int state = atomic_load(&parent->state);
  if (state != HRING__NCCL_READY)
    return hring__nccl_err(ncclInvalidUsage, "ncclCommSplit: comm %p is not usable (%s)",
                           (void *)parent,
                           state == HRING__NCCL_ABORTED  ? "aborted"
                           : state == HRING__NCCL_FAILED ? "its init failed"
                                                         : "its init has not run");
  hring_comm_t child = NULL;
  hring_result_t hr = hring_comm_split(parent->hcomm, op->color, op->key, &child);
  if (hr != HRING_SUCCESS) return hring__nccl_err_hring(hr, "ncclCommSplit");
  if (child == NULL) return ncclSuccess; /* NCCL_SPLIT_NOCOLOR: *newcomm stays NULL */
  struct ncclComm *c = op->child;
  if (c == NULL || op->newcomm == NULL) {
    /* Cannot happen (a color without a handle is refused at the call);
     * the peers keep theirs and see this rank leave. */
    (void)hring_comm_destroy(child);
    return hring__nccl_err(ncclInternalError, "ncclCommSplit: no handle for the new comm");
  }
  (void)hring_comm_size(child, &c->nranks);
  (void)hring_comm_rank(child, &c->rank);
  c->hcomm = child;
  /* NCCL's child uses its parent's device. */
  c->cuda_dev = parent->cuda_dev;
  atomic_store(&c->state, HRING__NCCL_READY);
  *op->newcomm = c;
  return ncclSuccess;
}

void hring__nccl_split_release(struct ncclComm *child) {
  if (child != NULL && atomic_load(&child->state) != HRING__NCCL_READY)
    hring__nccl_comm_free(child);
}

/* As NCCL: collective over `comm`; *newcomm is NULL until the split has
 * run (at once, or at the outermost ncclGroupEnd inside a group, which is
 * how one thread splits several ranks of this process) and stays NULL for
 * NCCL_SPLIT_NOCOLOR.  A call refused here (NULL newcomm, bad config, no
 * memory) still takes part, with an invalid color, so that no peer waits
 * for it; a NULL, dead or aborted comm cannot take part at all. */
HRING__NCCL_API ncclResult_t ncclCommSplit(ncclComm_t comm, int color, int key,
                                           ncclComm_t *newcomm, ncclConfig_t *config) {
  ncclResult_t r = hring__nccl_comm_check(comm, "ncclCommSplit");
  if (r != ncclSuccess) return r;
  ncclResult_t refused = ncclSuccess;
  char why[512] = ""; /* HRING__NCCL_ERR_MAX */
  if (newcomm == NULL)
    refused = hring__nccl_err(ncclInvalidArgument, "ncclCommSplit: newcomm is NULL");
  else
    *newcomm = NULL;
  if (refused == ncclSuccess) refused = config_check(config, "ncclCommSplit");
  hring__nccl_op_t op = {.kind = HRING__NCCL_OP_SPLIT, .comm = comm, .color = color, .key = key,
                         .newcomm = newcomm};
  if (refused == ncclSuccess && color != NCCL_SPLIT_NOCOLOR && color >= 0) {
    op.child = hring__nccl_comm_new(0, 0);
    if (op.child == NULL)
      refused = hring__nccl_err(ncclSystemError, "ncclCommSplit: out of memory");
  }
  if (refused != ncclSuccess) {
    snprintf(why, sizeof why, "%s", hring__nccl_last_error());
    op.color = SPLIT_REFUSED;
  }

  if (hring__nccl_group_depth() > 0) {
    /* Runs at the outermost ncclGroupEnd, in issue order with the other
     * operations on `comm`, which frees op.child if the split does not hand
     * it out. */
    r = hring__nccl_group_enqueue(&op);
    if (r != ncclSuccess) {
      hring__nccl_comm_free(op.child);
      return r;
    }
    return refused != ncclSuccess ? hring__nccl_err(refused, "%s", why) : ncclSuccess;
  }
  r = hring__nccl_split_run(&op);
  hring__nccl_split_release(op.child);
  if (refused != ncclSuccess) return hring__nccl_err(refused, "%s", why);
  return r;
}

HRING__NCCL_ALIAS(const char *, ncclGetErrorString, (ncclResult_t result));
HRING__NCCL_ALIAS(const char *, ncclGetLastError, (ncclComm_t comm));
HRING__NCCL_ALIAS(ncclResult_t, ncclGetVersion, (int *version));
HRING__NCCL_ALIAS(ncclResult_t, ncclGetUniqueId, (ncclUniqueId * uniqueId));
HRING__NCCL_ALIAS(ncclResult_t, ncclCommInitRank,
                  (ncclComm_t * comm, int nranks, ncclUniqueId commId, int rank));
HRING__NCCL_ALIAS(ncclResult_t, ncclCommInitRankConfig,
                  (ncclComm_t * comm, int nranks, ncclUniqueId commId, int rank,
                   ncclConfig_t *config));
HRING__NCCL_ALIAS(ncclResult_t, ncclCommInitAll, (ncclComm_t * comm, int ndev, const int *devlist));
HRING__NCCL_ALIAS(ncclResult_t, ncclCommFinalize, (ncclComm_t comm));
HRING__NCCL_ALIAS(ncclResult_t, ncclCommDestroy, (ncclComm_t comm));
HRING__NCCL_ALIAS(ncclResult_t, ncclCommAbort, (ncclComm_t comm));
HRING__NCCL_ALIAS(ncclResult_t, ncclCommCount, (const ncclComm_t comm, int *count));
HRING__NCCL_ALIAS(ncclResult_t, ncclCommUserRank, (const ncclComm_t comm, int *rank));
HRING__NCCL_ALIAS(ncclResult_t, ncclCommCuDevice, (const ncclComm_t comm, int *device));
HRING__NCCL_ALIAS(ncclResult_t, ncclCommGetAsyncError,
                  (ncclComm_t comm, ncclResult_t *asyncError));
HRING__NCCL_ALIAS(ncclResult_t, ncclCommSplit,
                  (ncclComm_t comm, int color, int key, ncclComm_t *newcomm,
                   ncclConfig_t *config));
