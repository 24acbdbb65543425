/*
 * hring.h - public API of hring, a collective-communication library for the
 * gradient allreduce of data-parallel training.
 *
 * Conventions
 * - Every call returns an hring_result_t; HRING_SUCCESS is 0.  On failure,
 *   hring_last_error() (thread-local) says what failed, where, and on which
 *   peer.
 * - Data types and reduction operations are numbered as NCCL numbers them, so
 *   an ncclDataType_t / ncclRedOp_t can be cast to the hring type.
 * - A bad argument returns HRING_ERR_INVALID_ARGUMENT, writes nothing and
 *   leaves the communicator usable.
 * - No call waits forever: every wait is bounded by HRING_TIMEOUT_MS.  A
 *   communicator that saw a timeout or a remote failure refuses further
 *   collectives (HRING_ERR_INVALID_USAGE) until it is destroyed or aborted.
 *
 * Thread safety: different communicators may be used from different threads
 * at once; one communicator must be used by one thread at a time (as in NCCL),
 * except hring_comm_abort(), which may be called from any thread.
 */
#ifndef HRING_H
#define HRING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HRING_VERSION_MAJOR 0
#define HRING_VERSION_MINOR 1
#define HRING_VERSION_PATCH 0
#define HRING_VERSION_CODE \
  (HRING_VERSION_MAJOR * 10000 + HRING_VERSION_MINOR * 100 + HRING_VERSION_PATCH)

/* Result codes.  0..7 are numbered as ncclResult_t; the rest are hring's own.
 * X(name, value, description) - the one list the enum and the strings come
 * from. */
#define HRING_RESULT_MAP(X)                                                   \
  X(HRING_SUCCESS, 0, "success")                                              \
  X(HRING_ERR_CUDA, 1, "CUDA error")                                          \
  X(HRING_ERR_SYSTEM, 2, "system error")                                      \
  X(HRING_ERR_INTERNAL, 3, "internal error")                                  \
  X(HRING_ERR_INVALID_ARGUMENT, 4, "invalid argument")                        \
  X(HRING_ERR_INVALID_USAGE, 5, "invalid usage")                              \
  X(HRING_ERR_REMOTE, 6, "remote error (a peer failed or disagreed)")         \
  X(HRING_IN_PROGRESS, 7, "operation in progress")                            \
  X(HRING_ERR_TIMEOUT, 8, "timed out")                                        \
  X(HRING_ERR_UNSUPPORTED, 9, "unsupported")                                  \
  X(HRING_ERR_NO_MEMORY, 10, "out of memory")

typedef enum {
#define HRING_X_ENUM(name, value, text) name = value,
  HRING_RESULT_MAP(HRING_X_ENUM)
#undef HRING_X_ENUM
  HRING_NUM_RESULTS
} hring_result_t;

/* Data types, numbered as ncclDataType_t. */
typedef enum {
  HRING_INT8 = 0,
  HRING_UINT8 = 1,
  HRING_INT32 = 2,
  HRING_UINT32 = 3,
  HRING_INT64 = 4,
  HRING_UINT64 = 5,
  HRING_FLOAT16 = 6,
  HRING_FLOAT32 = 7,
  HRING_FLOAT64 = 8,
  HRING_BFLOAT16 = 9,
  HRING_NUM_TYPES = 10
} hring_datatype_t;

/* Reduction operations, numbered as ncclRedOp_t.  AVG is the sum divided by
 * the number of ranks (integer division for integer types). */
typedef enum {
  HRING_SUM = 0,
  HRING_PROD = 1,
  HRING_MAX = 2,
  HRING_MIN = 3,
  HRING_AVG = 4,
  HRING_NUM_OPS = 5
} hring_redop_t;

/* Opaque identifier shared by all ranks of a communicator: the bootstrap
 * root's address and a random job secret.  Same size as ncclUniqueId. */
#define HRING_UNIQUE_ID_BYTES 128
typedef struct {
  char internal[HRING_UNIQUE_ID_BYTES];
} hring_unique_id_t;

typedef struct hring_comm *hring_comm_t;

/* Text for a result code ("unknown result" for values out of range). */
const char *hring_strerror(hring_result_t result);

/* The message of the last failed call in this thread: what failed, where,
 * and the peer (rank, host) and errno text where they apply.  Empty string
 * when nothing failed yet.  The pointer stays valid until the next hring call
 * in this thread. */
const char *hring_last_error(void);

/* HRING_VERSION_CODE of the library (which may differ from the header). */
hring_result_t hring_get_version(int *version);

/* Creates a unique id and starts the bootstrap root in a background thread of
 * the calling process, which must then take part in hring_comm_init_rank.
 * Call it on one rank and pass the bytes to the others (file, MPI, ...). */
hring_result_t hring_get_unique_id(hring_unique_id_t *id);

/* Collective over nranks processes: creates the communicator for `rank`
 * (0 <= rank < nranks).  Connects to every peer by the transport chosen for
 * it (shm on one machine, tcp otherwise; HRING_TRANSPORTS restricts). */
hring_result_t hring_comm_init_rank(hring_comm_t *comm, int nranks,
                                    hring_unique_id_t id, int rank);

/* Like hring_comm_init_rank, with rank, size and root read from the launcher's
 * environment: HRING_RANK, HRING_NRANKS, HRING_ROOT=host:port (set by
 * hring-run), or torchrun's RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT.
 * Rank 0 serves the bootstrap root on that port.  HRING_SECRET (hex) is the
 * job secret where the launcher provides one. */
hring_result_t hring_comm_init_env(hring_comm_t *comm);

hring_result_t hring_comm_rank(hring_comm_t comm, int *rank);
hring_result_t hring_comm_size(hring_comm_t comm, int *size);

/* Releases the communicator and everything it holds.  Not collective: peers
 * that still use it see a remote error. */
hring_result_t hring_comm_destroy(hring_comm_t comm);

/* Like destroy, but may be called from another thread while a collective is
 * blocked on this communicator: the blocked call returns
 * HRING_ERR_INVALID_USAGE promptly, then the communicator is released once
 * that call has left. */
hring_result_t hring_comm_abort(hring_comm_t comm);

/* The error that put the communicator in a failed state (timeout, remote
 * failure), or HRING_SUCCESS. */
hring_result_t hring_comm_get_async_error(hring_comm_t comm,
                                          hring_result_t *async_error);

/* ---- split: begin ---- */
/* The color that puts a rank in no new communicator (as NCCL_SPLIT_NOCOLOR
 * and MPI_UNDEFINED). */
#define HRING_SPLIT_NOCOLOR (-1)

/* Collective over every rank of `comm` (as MPI_Comm_split and
 * ncclCommSplit): the ranks that pass the same color form a new
 * communicator, in which they are numbered by key, then by rank in `comm`.
 * HRING_SPLIT_NOCOLOR gives *newcomm = NULL.  The new communicators are
 * independent of `comm` (their own connections and failure state: either
 * may fail, be aborted or be destroyed without the other) and `comm` stays
 * usable; HRING_NODE_ID and the HRING_* settings apply to them as at any
 * creation.  A split never moves the calling thread: with HRING_BIND set it
 * keeps the pinning it had (docs/collectives.md, "Splitting").
 *
 * Every rank returns an error when any rank fails, and *newcomm is written
 * only on success.  A negative color other than HRING_SPLIT_NOCOLOR or a
 * NULL newcomm is refused with HRING_ERR_INVALID_ARGUMENT on that rank, and
 * the rank still takes part in the first exchange, so that the other ranks
 * return HRING_ERR_REMOTE naming it instead of waiting; no communicator is
 * made and `comm` is unchanged.  A NULL, destroyed or aborted `comm` is
 * HRING_ERR_INVALID_ARGUMENT, a failed one HRING_ERR_INVALID_USAGE, both at
 * once and without communication (the other ranks then fail by their
 * deadline, HRING_TIMEOUT_MS, as at any collective a rank skips).  When
 * a new communicator cannot be created on some rank, every rank returns an
 * error and keeps no new communicator, and `comm` stays usable. */
hring_result_t hring_comm_split(hring_comm_t comm, int color, int key, hring_comm_t *newcomm);
/* ---- split: end ---- */

/* Allreduce of `count` elements: recvbuf[i] = op over ranks of sendbuf[i].
 * In place when sendbuf == recvbuf.  count may be 0 and need not divide by
 * the number of ranks.  Every rank obtains bit-identical results.
 *
 * Host buffers: the call is host-synchronous (the result is in recvbuf when
 * it returns); a non-NULL `stream` (cudaStream_t) is waited for first.
 * Device buffers (both on the same device, CUDA loaded at run time: see
 * docs/gpu.md): the collective is queued on `stream` (NULL: the default
 * stream) after the work already there, and the call returns without
 * waiting; later work on the stream sees the result.  Errors found after
 * the call are reported by hring_comm_get_async_error and make later calls
 * fail.  Thread safety: one thread at a time per communicator. */
hring_result_t hring_allreduce(const void *sendbuf, void *recvbuf, size_t count,
                               hring_datatype_t datatype, hring_redop_t op,
                               hring_comm_t comm, void *stream);

/* The algorithm a host allreduce of `count` elements of `datatype` runs on
 * this communicator now, by its HRING_ALGO name ("ring", "allpairs",
 * "hier2d", ...): HRING_ALGO's where it is set and applies, else the
 * choice per call (docs/model.md); with HRING_TUNE=online, the candidate
 * the next call tries while that size is tried, then the agreed pick;
 * "none" where nothing is sent (count 0, or one rank).  Local, no
 * communication; every rank of the communicator that has made the same
 * calls gets the same name, a static string.  A NULL name, an unknown datatype
 * or a bad handle is HRING_ERR_INVALID_ARGUMENT, and nothing is written.
 * Thread safety as for hring_allreduce. */
hring_result_t hring_allreduce_algorithm(hring_comm_t comm, size_t count,
                                         hring_datatype_t datatype, const char **name);

/* ---- collectives beyond allreduce: begin ---- */
/* What the calls below share (docs/collectives.md):
 * - NCCL's semantics and in-place rules; counts may be 0 (nothing happens,
 *   no message is sent) and need not divide by the number of ranks.
 * - Host buffers only for now: the call is host-synchronous, after a
 *   non-NULL `stream` (cudaStream_t) has been waited for.  A device buffer
 *   gives HRING_ERR_UNSUPPORTED (only hring_allreduce has a device path).
 * - A bad argument (NULL buffer, unknown type or op, root out of range,
 *   buffers that overlap other than in place) returns
 *   HRING_ERR_INVALID_ARGUMENT and writes nothing.  Ranks that call
 *   different collectives, or the same one with different counts, types,
 *   ops or roots, get an error instead of a hang (a broadcast or reduce
 *   root, which only sends, possibly at its next call), and the
 *   communicator is then failed as after any error. */

/* Reduce-scatter: rank r receives in recvbuf the recvcount elements
 * [r*recvcount, (r+1)*recvcount) of op over ranks of sendbuf, which holds
 * nranks*recvcount elements.  In place when recvbuf == sendbuf +
 * rank*recvcount elements.  AVG divides by nranks.  Every element is
 * reduced by one rank, in an order fixed by the count and nranks. */
hring_result_t hring_reduce_scatter(const void *sendbuf, void *recvbuf, size_t recvcount,
                                    hring_datatype_t datatype, hring_redop_t op,
                                    hring_comm_t comm, void *stream);

/* Allgather: recvbuf (nranks*sendcount elements) receives every rank's
 * sendcount elements, rank r's at r*sendcount.  In place when sendbuf ==
 * recvbuf + rank*sendcount elements. */
hring_result_t hring_allgather(const void *sendbuf, void *recvbuf, size_t sendcount,
                               hring_datatype_t datatype, hring_comm_t comm, void *stream);

/* Broadcast: count elements of root's sendbuf to every rank's recvbuf.
 * sendbuf is read on root only (it may be NULL elsewhere).  In place when
 * sendbuf == recvbuf. */
hring_result_t hring_broadcast(const void *sendbuf, void *recvbuf, size_t count,
                               hring_datatype_t datatype, int root, hring_comm_t comm,
                               void *stream);

/* Reduce: root's recvbuf receives op over ranks of sendbuf (count
 * elements); recvbuf is used on root only (it may be NULL elsewhere).  In
 * place when sendbuf == recvbuf.  AVG divides by nranks.  For a given
 * number of ranks and root the reduction order is fixed, so repeated calls
 * give the same bits. */
hring_result_t hring_reduce(const void *sendbuf, void *recvbuf, size_t count,
                            hring_datatype_t datatype, hring_redop_t op, int root,
                            hring_comm_t comm, void *stream);

/* Barrier: returns on no rank before every rank has entered it. */
hring_result_t hring_barrier(hring_comm_t comm, void *stream);
/* ---- collectives beyond allreduce: end ---- */

/* ---- nonblocking collectives: begin ---- */
/* A request is one nonblocking collective in flight (docs/nonblocking.md).
 *
 * hring_iallreduce and its siblings take the arguments of the blocking
 * call, without the stream (host buffers only: a device buffer gives
 * HRING_ERR_UNSUPPORTED), check them at once (a bad argument returns
 * HRING_ERR_INVALID_ARGUMENT, creates no request and changes nothing), queue
 * the collective and return.  The buffers belong to the library until the
 * request completes.
 *
 * Order: the collectives of a communicator run one at a time in the order
 * they were issued, blocking calls included: a blocking collective issued
 * while requests are outstanding runs after them.  Every rank must issue
 * the same collectives in the same order, as for blocking calls.
 *
 * Progress (HRING_PROGRESS): `thread` (default) runs the queue on a
 * background thread of the communicator, started at the first nonblocking
 * call and asleep on a condition variable while the queue is empty;
 * `caller` runs it on the thread that calls hring_test, hring_wait or
 * hring_waitall: such a call runs the queued collectives, oldest first,
 * each to its end, up to and including the request's own (hring_test
 * returns with *done 0 instead of waiting when another thread is running
 * one).  Nothing moves between such calls; a blocking collective or
 * hring_comm_destroy also runs what is queued before it.
 *
 * Completion: hring_test sets *done to 1 when the request has completed,
 * and then returns the collective's result, frees the request and sets
 * *req to NULL; otherwise *done is 0 and it returns HRING_SUCCESS.
 * hring_wait waits for completion (bounded: every collective is bounded by
 * HRING_TIMEOUT_MS), returns the result, frees the request and sets *req
 * to NULL.  hring_waitall waits for all n (NULL entries are skipped),
 * frees them, sets every entry to NULL, and returns the first failure in
 * array order.  A NULL *req is complete with HRING_SUCCESS.  A failed
 * request's message becomes hring_last_error() of the thread that waits
 * or tests it.  Count 0, and a one-rank communicator, complete at issue.
 *
 * Failure: when a queued collective fails, the communicator is failed as
 * after a blocking failure, and every later request of it completes with
 * an error.  hring_comm_abort completes every outstanding request with an
 * error; hring_comm_destroy first lets the queued collectives finish.
 * Requests not yet waited stay valid after either and are still waited
 * or tested to free them.
 *
 * Thread safety: issuing (blocking or not) on one communicator is for one
 * thread at a time; a request may be tested or waited from any thread,
 * by one thread at a time. */
typedef struct hring_request *hring_request_t;

hring_result_t hring_iallreduce(const void *sendbuf, void *recvbuf, size_t count,
                                hring_datatype_t datatype, hring_redop_t op, hring_comm_t comm,
                                hring_request_t *req);
hring_result_t hring_ireduce_scatter(const void *sendbuf, void *recvbuf, size_t recvcount,
                                     hring_datatype_t datatype, hring_redop_t op,
                                     hring_comm_t comm, hring_request_t *req);
hring_result_t hring_iallgather(const void *sendbuf, void *recvbuf, size_t sendcount,
                                hring_datatype_t datatype, hring_comm_t comm,
                                hring_request_t *req);
hring_result_t hring_ibroadcast(const void *sendbuf, void *recvbuf, size_t count,
                                hring_datatype_t datatype, int root, hring_comm_t comm,
                                hring_request_t *req);
hring_result_t hring_ireduce(const void *sendbuf, void *recvbuf, size_t count,
                             hring_datatype_t datatype, hring_redop_t op, int root,
                             hring_comm_t comm, hring_request_t *req);
hring_result_t hring_ibarrier(hring_comm_t comm, hring_request_t *req);

hring_result_t hring_test(hring_request_t *req, int *done);
hring_result_t hring_wait(hring_request_t *req);
hring_result_t hring_waitall(int n, hring_request_t *reqs);
/* ---- nonblocking collectives: end ---- */

/* ---- topology: begin ---- */
/* Nodes.  A node is the set of ranks that can share memory: by default the
 * ranks whose host name and boot id (/proc/sys/kernel/random/boot_id) are
 * equal; HRING_NODE_ID, when set, replaces that identity for the process
 * that has it (so one machine can be split into emulated nodes).  Nodes are
 * numbered 0..count-1 in the order of their lowest rank, and the ranks of a
 * node have local ranks 0..local_size-1 in the order of their ranks.  These
 * calls are local (no communication) and need a live communicator: a NULL,
 * destroyed or unknown handle, or a NULL output pointer, is
 * HRING_ERR_INVALID_ARGUMENT and nothing is written.
 *
 * At creation, HRING_BIND=core pins the creating thread (and the threads it
 * starts afterwards) to the local rank's own core among the cores the
 * process may use (round-robin when there are more local ranks than cores);
 * HRING_BIND=numa to the CPUs of NUMA node (local rank mod the nodes that
 * hold such cores).  A failed pinning is logged and creation goes on; an
 * unknown HRING_BIND value makes creation fail with
 * HRING_ERR_INVALID_ARGUMENT.  See docs/topology.md. */

/* This rank's index among the ranks of its node. */
hring_result_t hring_comm_local_rank(hring_comm_t comm, int *local_rank);
/* The number of ranks on this rank's node. */
hring_result_t hring_comm_local_size(hring_comm_t comm, int *local_size);
/* The index of this rank's node, 0 <= node < hring_comm_node_count. */
hring_result_t hring_comm_node(hring_comm_t comm, int *node);
/* The number of nodes the communicator spans. */
hring_result_t hring_comm_node_count(hring_comm_t comm, int *node_count);
/* ---- topology: end ---- */

/* Size in bytes of one element, 0 for an unknown type. */
size_t hring_type_size(hring_datatype_t datatype);

#ifdef __cplusplus
}
#endif
#endif /* HRING_H */
