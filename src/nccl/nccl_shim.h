/*
 * nccl_shim.h - internals shared by the files of the NCCL shim.
 *
 * The shim maps NCCL's API (nccl_abi.h) onto hring's public API (hring.h)
 * and nothing else: it holds no communication code of its own.  Its parts:
 * nccl_shim.c (results, errors, version, communicators), nccl_coll.c
 * (ncclAllReduce and the other collectives), nccl_group.c (ncclGroupStart/End and the concurrent
 * runner that also serves ncclCommInitAll) and nccl_unsupported.c (the rest
 * of nccl.h, refused with a message).
 */
#ifndef HRING_NCCL_SHIM_H
#define HRING_NCCL_SHIM_H

#include <stdatomic.h>
#include <stdint.h>

#include "hring.h"
#include "nccl_abi.h"

_Static_assert(sizeof(ncclUniqueId) == sizeof(hring_unique_id_t),
               "an ncclUniqueId carries an hring_unique_id_t unchanged");

/* The library is built with -fvisibility=hidden; NCCL's entry points are the
 * shim's only exports. */
#define HRING__NCCL_API __attribute__((visibility("default")))

/* Defines pncclX as another name of ncclX (NCCL's profiling interface, which
 * tools interpose on; calling either runs the same code). */
#define HRING__NCCL_ALIAS(ret, name, params) \
  HRING__NCCL_API ret p##name params __attribute__((alias(#name)))

/* Life of a communicator handle. */
enum {
  HRING__NCCL_PENDING = 0, /* init queued in an open group, not run yet */
  HRING__NCCL_READY = 1,   /* hcomm is a live hring communicator */
  HRING__NCCL_FAILED = 2,  /* init ran and failed: only destroy/abort apply */
  HRING__NCCL_ABORTED = 3, /* ncclCommAbort ran: the handle is dead */
};

#define HRING__NCCL_COMM_MAGIC 0x6e63636c73686d31ULL /* "ncclshm1" */

/* What an ncclComm_t points to. */
struct ncclComm {
  uint64_t magic;        /* HRING__NCCL_COMM_MAGIC while the handle is valid */
  atomic_int state;      /* HRING__NCCL_*; atomic because abort may come from
                            another thread */
  int nranks, rank;      /* as given to init */
  hring_comm_t hcomm;    /* set once init succeeded */
  ncclResult_t init_error; /* why init failed (state FAILED) */
  int cuda_dev;          /* the caller's current device at init (0 without CUDA) */
};

/* --- results and errors (nccl_shim.c) --- */

/* hring result -> NCCL result: 0..7 are numbered alike; timeout and out of
 * memory become ncclSystemError, unsupported ncclInvalidUsage. */
ncclResult_t hring__nccl_result(hring_result_t r);

/* Records `code` with a formatted message as this thread's last error (what
 * ncclGetLastError returns) and returns it. */
ncclResult_t hring__nccl_err(ncclResult_t code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* For a failed hring call: records "<call>: <hring_last_error()>" and
 * returns the mapped result. */
ncclResult_t hring__nccl_err_hring(hring_result_t r, const char *call);

/* This thread's last error text ("" when nothing failed yet). */
const char *hring__nccl_last_error(void);

/* Refuses NULL, dead and aborted handles with ncclInvalidArgument. */
ncclResult_t hring__nccl_comm_check(const struct ncclComm *comm, const char *call);

/* --- communicators (nccl_shim.c) --- */

/* A new handle in state PENDING, or NULL when out of memory. */
struct ncclComm *hring__nccl_comm_new(int nranks, int rank);

/* Frees a handle (its hring communicator must be gone already). */
void hring__nccl_comm_free(struct ncclComm *comm);

/* Runs hring_comm_init_rank for a PENDING handle: READY on success, FAILED
 * (with init_error) otherwise. */
ncclResult_t hring__nccl_comm_init(struct ncclComm *comm, const ncclUniqueId *id);

/* --- queued operations and groups (nccl_group.c) --- */

typedef enum {
  HRING__NCCL_OP_INIT,      /* ncclCommInitRank* called inside a group */
  HRING__NCCL_OP_ALLREDUCE, /* validated collectives, run at the call or at ncclGroupEnd */
  HRING__NCCL_OP_REDUCE_SCATTER,
  HRING__NCCL_OP_ALLGATHER,
  HRING__NCCL_OP_BROADCAST,
  HRING__NCCL_OP_REDUCE,
  HRING__NCCL_OP_SPLIT,     /* ncclCommSplit called inside a group: comm is the parent */
} hring__nccl_op_kind_t;

typedef struct {
  hring__nccl_op_kind_t kind;
  struct ncclComm *comm;
  /* the collectives: count is the call's own count argument (recvcount
   * of reduce_scatter, sendcount of allgather); root for broadcast and
   * reduce */
  const void *sendbuf;
  void *recvbuf;
  size_t count;
  hring_datatype_t type;
  hring_redop_t op;
  int root;
  void *stream;           /* cudaStream_t; device buffers are enqueued on it */
  /* HRING__NCCL_OP_INIT */
  ncclUniqueId id;
  /* HRING__NCCL_OP_SPLIT: the color given to hring_comm_split (a refused
   * call passes an invalid one, so that the other ranks fail too), the key,
   * where the new handle goes, and the handle itself, made at the call so
   * that running the split cannot fail for want of memory after the peers
   * have made theirs (NULL for NCCL_SPLIT_NOCOLOR) */
  int color, key;
  ncclComm_t *newcomm;
  struct ncclComm *child;
} hring__nccl_op_t;

/* --- ncclCommSplit (nccl_shim.c) --- */

/* Runs a split (queued or not): hring_comm_split on the parent, and on
 * success the new handle goes READY into *op->newcomm (left NULL for
 * NCCL_SPLIT_NOCOLOR).  op->child stays the caller's: free it with
 * hring__nccl_split_release once the op has run or was skipped. */
ncclResult_t hring__nccl_split_run(const hring__nccl_op_t *op);
/* Frees a split's handle unless the split handed it to the caller. */
void hring__nccl_split_release(struct ncclComm *child);

/* --- groups (nccl_group.c) --- */

/* Depth of this thread's ncclGroupStart nesting (0 outside any group). */
int hring__nccl_group_depth(void);

/* Appends an operation to this thread's open group. */
ncclResult_t hring__nccl_group_enqueue(const hring__nccl_op_t *op);

/* Whether this thread's open group holds an operation on `comm`. */
int hring__nccl_group_holds(const struct ncclComm *comm);

/* Runs one operation in the calling thread. */
ncclResult_t hring__nccl_op_run(const hring__nccl_op_t *op);
/* The NCCL call an operation kind comes from, for messages. */
const char *hring__nccl_op_name(hring__nccl_op_kind_t kind);

/* Runs `ops` in order per communicator: inline when they all use one
 * communicator, else one thread per communicator, all at once, so that ranks
 * of one communicator living in this process can meet.  A communicator's
 * remaining operations are skipped after its first failure.  Returns the
 * first failure, by order of first appearance of the communicators, with its
 * message as this thread's last error. */
ncclResult_t hring__nccl_run_ops(const hring__nccl_op_t *ops, int nops);

#endif /* HRING_NCCL_SHIM_H */
