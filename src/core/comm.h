/*
 * comm.h - the communicator (internal view).
 */
#ifndef HRING_CORE_COMM_H
#define HRING_CORE_COMM_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "hring.h"
#include "transport/transport.h"
#include "transport/wire.h"

#define HRING_SECRET_BYTES 16
#define HRING_NODE_ID_MAX 96
#define HRING_HOST_MAX 64
#define HRING_CPU_WORDS 16 /* 1024 CPUs, as cpu_set_t */

/* What every rank tells the others in the first bootstrap round. */
typedef struct {
  int32_t rank;
  int32_t pid;
  char node_id[HRING_NODE_ID_MAX]; /* hostname:boot_id, or HRING_NODE_ID */
  char host[HRING_HOST_MAX];
  /* The kernel's boot id: ranks with the same one share the machine's
   * cores, whatever node HRING_NODE_ID puts them on. */
  char machine_id[40];
  struct sockaddr_storage addr; /* address tcp listeners bind on this rank */
  /* The CPUs this rank may run on (its affinity before hring pinned it),
   * one bit each: the ranks of a machine together own the union. */
  uint64_t cpus[HRING_CPU_WORDS];
} hring_peer_info_t;

struct hring_bootstrap;
struct hring_choice;
struct hring_tuner;
struct hring_progress;

struct hring_comm {
  uint64_t magic; /* HRING_COMM_MAGIC while alive */
  int rank, nranks;
  int node, nnodes;            /* index of this rank's node, number of nodes */
  int local_rank, local_size;  /* among ranks of the same node */
  int machine_size;            /* ranks on this machine (machine_id), any node */
  int machine_cores;           /* CPUs those ranks may run on, together */
  int *node_of;                /* [nranks] node index of every rank */
  hring_peer_info_t *peers;    /* [nranks] */
  uint8_t secret[HRING_SECRET_BYTES];
  uint64_t comm_id;            /* random, same on every rank */
  struct hring_bootstrap *bs;  /* only during init */

  /* Transports: conns[p] is the connection to peer p (NULL for self). */
  hring_conn_t **conns;
  uint8_t *blobs;              /* [nranks][HRING_NUM_TRANSPORTS][BLOB] */
  void *tstate[HRING_NUM_TRANSPORTS]; /* per-transport comm state */

  /* Waiting policy (wait.c). */
  int64_t timeout_ms;
  int64_t spin_ns;             /* spin this long before yielding */
  int oversubscribed;          /* machine_size > machine_cores */
  int oversub_any;             /* some machine is oversubscribed (the same on every rank) */
  int mranks_max, cores_min;   /* most ranks on one machine, fewest cores (agreed) */
  int tcp_within_any;          /* some rank reaches a rank of its own node by tcp (agreed) */

  /* Tuning read once at creation (no getenv on the call path). */
  int algo_forced;             /* 0 auto, else an algorithm number (algo.h) */
  int64_t small_max;           /* allpairs up to this many bytes; -1 auto */
  int64_t chunk_size;          /* forced ring chunk, 0 auto */
  int64_t nt_min;              /* non-temporal result stores from this size */
  size_t min_slot;             /* largest message every connection of every rank carries */
  struct hring_choice *choice; /* the allreduce chooser (algos/choose.h) */
  int64_t tune_max;            /* online choice up to this size; 0 off (agreed) */
  int tune_reps;               /* its trials per candidate (agreed) */
  int tune_retry;              /* trials again after this many times their calls; 0 never (agreed) */
  struct hring_tuner *tuner;   /* the online choice (algos/tune.h), or NULL */

  uint64_t seq;                /* collectives issued so far */
  hring_wire_hdr_t coll;       /* the collective running now, sent with every message */
  uint64_t health_ns;          /* last check of every peer (transports_health) */
  int ready;                   /* set up: peers' health is checked while waiting */
  atomic_int aborted;          /* set by hring_comm_abort from any thread */
  atomic_int in_call;          /* calls inside the library (hring__comm_enter) */
  /* Sticky failure: written once (the first failing thread wins `failing`,
   * writes the message, then publishes the code), read by any thread. */
  atomic_int failing;
  _Atomic(hring_result_t) async_error;
  char async_msg[256];

  struct hring_dev_state *dev; /* device collectives (algos/device.h), lazily */
  /* Nonblocking collectives (core/progress.h), from the first one on;
   * atomic because a thread waiting a request reads it while destroy
   * clears it. */
  _Atomic(struct hring_progress *) progress;
};

#define HRING_COMM_MAGIC 0x68726e67636f6d6dULL /* "hrngcomm" */

/* Blob of `rank` for transport t. */
static inline void *hring__comm_blob(struct hring_comm *comm, int rank, int t) {
  return comm->blobs + ((size_t)rank * HRING_NUM_TRANSPORTS + (size_t)t) * HRING_TRANSPORT_BLOB;
}

/* Validates a public handle (NULL, destroyed or garbage pointers are refused
 * without being dereferenced: live communicators are kept in a registry). */
hring_result_t hring__comm_check(struct hring_comm *comm, const char *what);
/* Brackets every collective: checks the handle and holds it against a
 * concurrent hring_comm_abort until leave. */
hring_result_t hring__comm_enter(struct hring_comm *comm, const char *what);
void hring__comm_leave(struct hring_comm *comm);

/* Marks the communicator failed (sticky) with the current last error, and
 * tells every peer (transport notices), so that ranks waiting on other
 * ranks fail at once instead of at their timeout. */
void hring__comm_fail(struct hring_comm *comm, hring_result_t code);

/* Starts a collective: every message sent until the next one carries it,
 * and every message received must carry the same (wire.h). */
static inline void hring__coll_begin(struct hring_comm *comm, uint32_t kind, uint64_t seq,
                                     uint64_t count, int type, int op, int root) {
  comm->coll = (hring_wire_hdr_t){HRING_WIRE_MAGIC, HRING_WIRE_VERSION, kind, (uint32_t)type,
                                  (uint32_t)op, root, comm->comm_id, seq, count};
}

#endif
