/*
 * algo.h - collective algorithms as schedules over the transport FIFOs.
 *
 * An algorithm sees peers (comm->conns[p]) and buffers only.  The engine
 * helpers below turn the non-blocking FIFO calls into bounded waits that
 * keep every connection the algorithm uses moving (tcp needs its queued
 * bytes pushed while the rank waits for something else).
 */
#ifndef HRING_ALGO_H
#define HRING_ALGO_H

#include <stddef.h>
#include "core/comm.h"
#include "core/wait.h"
#include "hring.h"

typedef struct {
  const void *sendbuf;
  void *recvbuf;
  size_t count;
  size_t esize;
  hring_datatype_t type;
  hring_redop_t op;
  int nt; /* write results with non-temporal stores */
} hring_coll_args_t;

/* Largest vector allpairs reduces: allpairs.c keeps a local copy this large. */
#define HRING_ALLPAIRS_MAX_BYTES 4096

/* Connections in use by one collective call, progressed while waiting. */
#define HRING_ENGINE_MAX_ACTIVE 64
typedef struct {
  struct hring_comm *comm;
  hring_waiter_t waiter;
  hring_conn_t *active[HRING_ENGINE_MAX_ACTIVE];
  int nactive;
} hring_engine_t;

/* Whether one engine reaches every other rank at once: what allpairs, the
 * direct exchange and the pairwise collectives need. */
static inline int hring__engine_reaches_all(int nranks) {
  return nranks - 1 <= HRING_ENGINE_MAX_ACTIVE;
}

void hring__engine_init(hring_engine_t *e, struct hring_comm *comm);
/* Adds a connection to the set progressed while waiting (no duplicates). */
void hring__engine_use(hring_engine_t *e, hring_conn_t *c);
/* One wait for progress on c, after the caller progressed every connection
 * in use and found nothing to do: where c has a descriptor (tcp), blocks in
 * poll() on it and on those of the other connections in use (their queued
 * bytes keep moving); else yields or sleeps (wait.h).  Bounded by the
 * comm's deadline; peer names the awaited rank in a timeout. */
hring_result_t hring__engine_pause(hring_engine_t *e, hring_conn_t *c, const char *what);
/* The same for a caller that serves several connections at once: it blocks
 * only when every connection in use has a descriptor. */
hring_result_t hring__engine_pause_any(hring_engine_t *e, const char *what, int peer);
/* Blocking (bounded) forms of send_get / recv_get. */
hring_result_t hring__engine_send_get(hring_engine_t *e, hring_conn_t *c, void **buf);
hring_result_t hring__engine_recv_get(hring_engine_t *e, hring_conn_t *c, void **buf,
                                      size_t expect_len);
/* The error for a message of len bytes from c where expect_len were due. */
hring_result_t hring__engine_check_len(hring_engine_t *e, hring_conn_t *c, size_t len,
                                       size_t expect_len);
/* Progresses every connection in use, then pauses once on c (NULL: on
 * any, peer naming the awaited rank), for callers that step schedules
 * themselves (group.h's tasks). */
hring_result_t hring__engine_wait(hring_engine_t *e, hring_conn_t *c, const char *what, int peer);
/* Blocking send of a copy of bytes from src to c (a free slot, memcpy, post). */
hring_result_t hring__engine_send_copy(hring_engine_t *e, hring_conn_t *c, const void *src,
                                       size_t bytes);
/* Waits until every posted message of the active connections has left this
 * rank (tcp: written to the socket), so the call can return. */
hring_result_t hring__engine_flush(hring_engine_t *e);

/* Block partition of count elements over n parts: part i starts at
 * *off and holds *cnt elements; the first count % n parts get one more. */
static inline void hring__partition(size_t count, int n, int i, size_t *off, size_t *cnt) {
  size_t base = count / (size_t)n, rem = count % (size_t)n, ui = (size_t)i;
  *off = ui * base + (ui < rem ? ui : rem);
  *cnt = base + (ui < rem ? 1 : 0);
}

/* First element of part i of the block partition (i = n: the end). */
static inline size_t hring__part_start(size_t count, int n, int i) {
  size_t off, cnt;
  if (i >= n) return count;
  hring__partition(count, n, i, &off, &cnt);
  return off;
}

/* Chunk k (of at most ce elements) of part s of the block partition:
 * byte offset *off and element count *cnt (0 once the part is used up). */
static inline void hring__chunk(size_t count, int n, int s, size_t k, size_t ce, size_t es,
                                size_t *off, size_t *cnt) {
  size_t so, sc;
  hring__partition(count, n, s, &so, &sc);
  size_t lo = k * ce < sc ? k * ce : sc;
  size_t hi = lo + ce < sc ? lo + ce : sc;
  *off = (so + lo) * es;
  *cnt = hi - lo;
}

hring_result_t hring__allreduce_ring(struct hring_comm *comm, const hring_coll_args_t *a,
                                     size_t chunk_bytes);
hring_result_t hring__allreduce_allpairs(struct hring_comm *comm, const hring_coll_args_t *a);
hring_result_t hring__allreduce_exchange2(struct hring_comm *comm, const hring_coll_args_t *a,
                                          size_t chunk_bytes);
hring_result_t hring__allreduce_direct(struct hring_comm *comm, const hring_coll_args_t *a,
                                       size_t chunk_bytes);

/* Receives one message of `bytes` from every other rank, reduces them and
 * this rank's own `mine` in rank order into a->recvbuf (a->count elements;
 * AVG divided once), releases the slots and flushes: the second half of
 * allpairs and of the pairwise reduce_scatter (allpairs.c). */
hring_result_t hring__reduce_in_rank_order(hring_engine_t *e, const void *mine, size_t bytes,
                                           const hring_coll_args_t *a);

/* Latency algorithms (latency.h) and the hierarchical ring (hier.h). */
hring_result_t hring__allreduce_rdouble(struct hring_comm *comm, const hring_coll_args_t *a);
hring_result_t hring__allreduce_rabenseifner(struct hring_comm *comm, const hring_coll_args_t *a,
                                             size_t chunk_bytes);
hring_result_t hring__allreduce_tree(struct hring_comm *comm, const hring_coll_args_t *a,
                                     size_t chunk_bytes);
hring_result_t hring__allreduce_hier(struct hring_comm *comm, const hring_coll_args_t *a,
                                     size_t chunk_bytes);
hring_result_t hring__allreduce_hier2d(struct hring_comm *comm, const hring_coll_args_t *a,
                                       size_t chunk_bytes);

/* Algorithms by number (comm->algo_forced; HRING_ALGO names them, in
 * hring__algo_names order). */
enum { HRING_ALGO_AUTO = 0, HRING_ALGO_RING = 1, HRING_ALGO_ALLPAIRS = 2, HRING_ALGO_DIRECT = 3,
       HRING_ALGO_EXCHANGE = 4, HRING_ALGO_RDOUBLE = 5, HRING_ALGO_RABENSEIFNER = 6,
       HRING_ALGO_TREE = 7, HRING_ALGO_HIER = 8, HRING_ALGO_HIER2D = 9, HRING_ALGO_COUNT = 10 };
extern const char *const hring__algo_names[HRING_ALGO_COUNT];

/* The pipeline chunk of the chunked schedules (ring, direct, tree, hier)
 * for a message of `bytes`: the same on every rank. */
size_t hring__ring_chunk(const struct hring_comm *comm, size_t bytes);

/* Reads the tuning variables into comm and caches the smallest slot; called
 * once the connections exist. */
hring_result_t hring__algo_comm_init(struct hring_comm *comm);

#endif
