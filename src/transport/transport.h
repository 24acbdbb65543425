/*
 * transport.h - the one vtable every transport fills (self-contained: an
 * algorithm sees connections and buffers, never sockets or segments).
 *
 * Data path: a connection to a peer is a pair of bounded FIFOs of slots
 * (one per direction), in the style of NCCL's connectors:
 *
 *   sender:   send_get(c, &p)  -> a slot of c->slot_size bytes to fill
 *             ... write up to slot_size bytes into p (fused reduce/copy) ...
 *             send_post(c, len) -> the slot becomes visible to the peer
 *   receiver: recv_get(c, &p, &len) -> oldest arrived message, read in place
 *             ... reduce/copy from p ...
 *             recv_release(c) -> slot goes back to the sender
 *
 * get/post calls never block: they return HRING_IN_PROGRESS when no slot is
 * free / nothing has arrived; the caller then drives progress (tcp moves
 * bytes there) and waits with the comm's waiter.  Messages arrive in order.
 * A slot obtained by send_get must be posted before the next send_get; the
 * message from recv_get must be released before the next recv_get.
 *
 * Exposing the slots (instead of isend of a user buffer) lets the reduction
 * write its result straight into the outgoing slot: on shared memory that is
 * the single pass the ring needs; a verbs transport maps the same calls to
 * registered slots and RDMA writes with immediate data; tcp stages in
 * cache-sized slots.
 *
 * Set-up is collective at communicator creation:
 *   local_init (before the table exchange: create listeners / segments and
 *   describe them in a blob) -> the blobs of all ranks are exchanged by the
 *   bootstrap -> connect(peers) -> barrier -> after_barrier (unlink names)
 *   -> ... -> comm_close.
 * mem_reg / mem_dereg are for transports that need registered memory (verbs,
 * device memory); others fill them with hring__transport_unsupported_*.
 */
#ifndef HRING_TRANSPORT_H
#define HRING_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "hring.h"

struct hring_comm;
typedef struct hring_conn hring_conn_t;

/* Bytes each transport may publish for its peers at set-up. */
#define HRING_TRANSPORT_BLOB 256

typedef struct hring_transport_ops {
  const char *name;
  /* Can this transport connect comm->rank and peer?  (Called after the
   * first bootstrap round, so node identities are known.) */
  int (*reachable)(struct hring_comm *comm, int peer);
  /* Creates local resources; fills blob (HRING_TRANSPORT_BLOB bytes). */
  hring_result_t (*local_init)(struct hring_comm *comm, void *blob);
  /* Creates comm->conns[p] for every p in peers; blobs of all ranks are in
   * hring__comm_blob(comm, rank, transport index). */
  hring_result_t (*connect)(struct hring_comm *comm, const int *peers, int npeers);
  /* After every rank has connected (names can now be removed). */
  hring_result_t (*after_barrier)(struct hring_comm *comm);
  /* Releases everything local_init and connect created. */
  void (*comm_close)(struct hring_comm *comm);

  hring_result_t (*send_get)(hring_conn_t *c, void **buf);
  hring_result_t (*send_post)(hring_conn_t *c, size_t len);
  hring_result_t (*recv_get)(hring_conn_t *c, void **buf, size_t *len);
  hring_result_t (*recv_release)(hring_conn_t *c);
  /* Moves bytes (tcp) and checks the peer's health; HRING_SUCCESS when all
   * is well (whether or not anything moved), an error naming the peer when
   * the connection is broken or the peer died. */
  hring_result_t (*progress)(hring_conn_t *c);
  /* HRING_SUCCESS once every posted message has left this rank (tcp: is in
   * the socket), HRING_IN_PROGRESS before.  A collective returns only after
   * this, so no data waits in a local queue while the caller computes. */
  hring_result_t (*flush)(hring_conn_t *c);
  /* Optional (NULL: nothing to block on, as for shm, whose peers write
   * memory): a descriptor a waiting rank may block on in poll(), with the
   * events that mean progress may now be possible (data or credits in,
   * room for queued bytes out); -1 when none applies now.  Blocking lets
   * the kernel wake the rank the data is for, instead of every waiting rank
   * yielding in turn: with more ranks than cores that is what a step
   * costs. */
  int (*wait_fd)(hring_conn_t *c, short *events);

  /* Whether the peer is still in the job: HRING_SUCCESS, or an error.
   * level HRING_HEALTH_DEATHS reports only a peer that died (or vanished);
   * HRING_HEALTH_NOTICES also one that failed and said so; HRING_HEALTH_ALL
   * anything, including a connection closed without a notice by a peer
   * whose process still lives.  Called for every connection every ~100 ms
   * while a rank waits, whatever it waits for, level by level, so that the
   * first cause is named rather than a consequence. */
  hring_result_t (*health)(hring_conn_t *c, int level);
  /* Tells the peer this rank leaves (HRING_PEER_LEFT, at destroy) or failed
   * (HRING_PEER_FAILED, with the error code and text); best effort, never
   * blocks. */
  void (*notify)(hring_conn_t *c, int state, hring_result_t code, const char *why);

  hring_result_t (*mem_reg)(struct hring_comm *comm, void *buf, size_t len, void **handle);
  hring_result_t (*mem_dereg)(struct hring_comm *comm, void *handle);
} hring_transport_ops_t;

struct hring_conn {
  const hring_transport_ops_t *ops;
  struct hring_comm *comm;
  int peer;
  size_t slot_size; /* largest message */
  int nslots;       /* FIFO depth */
  void *priv;       /* the transport's own state */
};

/* One-line dispatchers for the hot path. */
static inline hring_result_t hring__send_get(hring_conn_t *c, void **buf) {
  return c->ops->send_get(c, buf);
}
static inline hring_result_t hring__send_post(hring_conn_t *c, size_t len) {
  return c->ops->send_post(c, len);
}
static inline hring_result_t hring__recv_get(hring_conn_t *c, void **buf, size_t *len) {
  return c->ops->recv_get(c, buf, len);
}
static inline hring_result_t hring__recv_release(hring_conn_t *c) {
  return c->ops->recv_release(c);
}
static inline hring_result_t hring__conn_progress(hring_conn_t *c) {
  return c->ops->progress(c);
}
static inline hring_result_t hring__conn_flush(hring_conn_t *c) { return c->ops->flush(c); }

/* The registered transports, in order of preference. */
enum { HRING_TRANSPORT_SHM = 0, HRING_TRANSPORT_TCP = 1, HRING_NUM_TRANSPORTS = 2 };
extern const hring_transport_ops_t hring__shm_ops;
extern const hring_transport_ops_t hring__tcp_ops;
const hring_transport_ops_t *hring__transport(int index);

/* Whether process pid (on this node) is gone: no such process, or a
 * zombie not yet reaped. */
int hring__process_dead(pid_t pid);

/* Levels of the health slot, most certain cause first. */
enum { HRING_HEALTH_ALL = 0, HRING_HEALTH_NOTICES = 1, HRING_HEALTH_DEATHS = 2 };

/* Stubs for slots a transport does not support. */
hring_result_t hring__transport_unsupported_reg(struct hring_comm *comm, void *buf,
                                                size_t len, void **handle);
hring_result_t hring__transport_unsupported_dereg(struct hring_comm *comm, void *handle);

/* Collective set-up of all connections of comm (called by comm init), and
 * the teardown. */
hring_result_t hring__transports_setup(struct hring_comm *comm);
void hring__transports_close(struct hring_comm *comm);

/* The health of every peer (transport health), at most every 100 ms. */
hring_result_t hring__transports_health(struct hring_comm *comm);
/* The most certain cause of a remote failure (now, not rate-limited): a
 * peer that died, else a peer's failure notice.  A failure that surfaced as
 * another rank's notice, or as a connection that a failed rank closed, is
 * then reported as the death or failure that caused it. */
hring_result_t hring__transports_find_cause(struct hring_comm *comm);
/* A notice to every peer (transport notify). */
void hring__transports_notify(struct hring_comm *comm, int state, hring_result_t code,
                              const char *why);

#endif
