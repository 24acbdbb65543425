/*
 * shm.c - shared-memory transport between ranks of one node.
 *
 * Every rank owns one POSIX shared-memory segment holding one receive FIFO
 * per local peer (indexed by the sender's local rank); a sender maps just its
 * FIFO in each peer's segment.  A FIFO is a ring of slots with two counters
 * on their own cache lines: head (messages posted, written by the sender)
 * and tail (messages released, written by the receiver).  The payload is
 * written with ordinary stores and published by a release store of head, so
 * the receiver reduces straight out of the slot the sender filled: on this
 * path data crosses between cores once, through the cache, with no kernel
 * involvement.
 *
 * A segment has no name anyone could leave behind: it is a memfd, and the
 * peers open it through /proc/<owner pid>/fd/<fd>; the owner closes that fd
 * once every rank has mapped it, and the memory goes with the last mapping,
 * however the processes end (SIGKILL during init included).  Where memfds
 * do not exist, a named POSIX segment is used and its name removed after
 * the set-up barrier.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/comm.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/wait.h"
#include "transport/transport.h"
#include "transport/wire.h"

#define SHM_MAX_SLOTS 64
#define SHM_LIVENESS_NS 100000000ull /* check that a silent peer still lives every 100 ms */

typedef struct {
  _Alignas(64) atomic_uint_fast64_t head;
  _Alignas(64) atomic_uint_fast64_t tail;
  _Alignas(64) uint64_t len[SHM_MAX_SLOTS];
  hring_wire_hdr_t hdr[SHM_MAX_SLOTS]; /* the collective of each message */
  /* The sender's notice (wire.h): it left, or failed and why. */
  _Alignas(64) atomic_int state;
  int32_t code;
  char why[192];
  /* slots follow, 64-byte aligned */
  _Alignas(64) char slots[];
} shm_fifo_t;

typedef struct {
  char name[64];
  uint32_t nslots;
  uint32_t slot_size;
  uint64_t fifo_bytes;
  int32_t local_rank; /* the owner's local rank */
} shm_blob_t;

/* Per-comm state. */
typedef struct {
  char name[64];
  void *seg;        /* my segment: FIFOs from each local peer */
  size_t seg_bytes;
  int unlinked;
  int memfd;        /* the memfd peers open until the barrier, or -1 */
  int *local_index; /* [nranks] local rank of each rank on my node, or -1 */
} shm_comm_t;

typedef struct {
  shm_fifo_t *tx;  /* my FIFO in the peer's segment (mapped) */
  char *tx_slots;
  size_t tx_map_bytes;
  uint64_t tx_head, tx_tail_seen;
  uint32_t tx_nslots, tx_slot_size;
  shm_fifo_t *rx;  /* the peer's FIFO in my segment */
  char *rx_slots;
  uint64_t rx_tail, rx_head_seen;
  uint32_t rx_nslots, rx_slot_size;
  uint64_t last_check_ns;
  pid_t pid;
} shm_conn_t;

static size_t fifo_bytes(uint32_t nslots, uint32_t slot_size) {
  size_t b = sizeof(shm_fifo_t) + (size_t)nslots * slot_size;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  return (b + page - 1) / page * page;
}

static int shm_reachable(struct hring_comm *comm, int peer) {
  return comm->node_of[peer] == comm->node;
}

static void shm_drop_name(shm_comm_t *s, int fd);

static hring_result_t shm_local_init(struct hring_comm *comm, void *blob) {
  shm_comm_t *s = calloc(1, sizeof *s);
  if (!s) return hring__err(HRING_ERR_NO_MEMORY, "shm");
  s->memfd = -1;
  comm->tstate[HRING_TRANSPORT_SHM] = s;
  int64_t slot = hring__cfg_int(HRING_CFG_SHM_SLOT_SIZE);
  int64_t nslots = hring__cfg_int(HRING_CFG_SHM_SLOTS);
  if (slot < 4096 || slot > (64 << 20) || slot % 64 || nslots < 2 || nslots > SHM_MAX_SLOTS)
    return hring__err(HRING_ERR_INVALID_ARGUMENT,
                      "HRING_SHM_SLOT_SIZE=%lld / HRING_SHM_SLOTS=%lld out of range (slot: "
                      "4K..64M, multiple of 64; slots: 2..%d)",
                      (long long)slot, (long long)nslots, SHM_MAX_SLOTS);
  s->local_index = malloc(sizeof(int) * (size_t)comm->nranks);
  if (!s->local_index) return hring__err(HRING_ERR_NO_MEMORY, "shm");
  int n = 0;
  for (int r = 0; r < comm->nranks; r++)
    s->local_index[r] = comm->node_of[r] == comm->node ? n++ : -1;
  shm_blob_t *b = blob;
  memset(b, 0, sizeof *b);
  b->nslots = (uint32_t)nslots;
  b->slot_size = (uint32_t)slot;
  b->fifo_bytes = fifo_bytes(b->nslots, b->slot_size);
  b->local_rank = comm->local_rank;
  snprintf(s->name, sizeof s->name, "/hring-%016llx-%d-%d", (unsigned long long)comm->comm_id,
           comm->rank, (int)getpid());
  s->seg_bytes = (size_t)b->fifo_bytes * (size_t)comm->local_size;
  s->memfd = memfd_create(s->name + 1, MFD_CLOEXEC);
  int fd = s->memfd;
  if (fd >= 0) {
    s->unlinked = 1; /* nothing named */
    snprintf(b->name, sizeof b->name, "/proc/%d/fd/%d", (int)getpid(), fd);
  } else {
    memcpy(b->name, s->name, sizeof b->name);
    fd = shm_open(s->name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) return hring__err_errno(HRING_ERR_SYSTEM, errno, "shm_open %s", s->name);
  }
  if (ftruncate(fd, (off_t)s->seg_bytes) != 0) {
    int e = errno;
    shm_drop_name(s, fd);
    return hring__err_errno(HRING_ERR_SYSTEM, e, "ftruncate %s to %zu bytes", s->name, s->seg_bytes);
  }
  s->seg = mmap(NULL, s->seg_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (s->seg == MAP_FAILED) {
    int e = errno;
    s->seg = NULL;
    shm_drop_name(s, fd);
    return hring__err_errno(HRING_ERR_SYSTEM, e, "mmap %s", s->name);
  }
  if (s->memfd < 0) close(fd);
  return HRING_SUCCESS;
}

/* Forgets how peers find the segment: the memfd's descriptor, or the
 * POSIX name (fd: the open named segment, closed too; -1 when none). */
static void shm_drop_name(shm_comm_t *s, int fd) {
  if (s->memfd >= 0) {
    close(s->memfd);
    s->memfd = -1;
    return;
  }
  if (fd >= 0) close(fd);
  if (!s->unlinked) shm_unlink(s->name);
  s->unlinked = 1;
}

/* Opens rank p's segment as its blob names it: /proc/<its pid>/fd/<n> for
 * a memfd (only the pid that rank reported at bootstrap is accepted, so a
 * peer cannot make this rank open other files), or a POSIX name. */
static int shm_open_peer(struct hring_comm *comm, int p, const char *name) {
  int pid, fd, n = 0;
  if (strncmp(name, "/proc/", 6) != 0) return shm_open(name, O_RDWR, 0);
  if (sscanf(name, "/proc/%d/fd/%d%n", &pid, &fd, &n) != 2 || name[n] != '\0' ||
      pid != comm->peers[p].pid || fd < 0) {
    errno = EINVAL;
    return -1;
  }
  return open(name, O_RDWR | O_CLOEXEC);
}

static const hring_transport_ops_t *self_ops(void) { return &hring__shm_ops; }

static hring_result_t shm_connect(struct hring_comm *comm, const int *peers, int npeers) {
  shm_comm_t *s = comm->tstate[HRING_TRANSPORT_SHM];
  const shm_blob_t *mine = hring__comm_blob(comm, comm->rank, HRING_TRANSPORT_SHM);
  for (int i = 0; i < npeers; i++) {
    int p = peers[i];
    const shm_blob_t *b = hring__comm_blob(comm, p, HRING_TRANSPORT_SHM);
    if (b->nslots < 2 || b->nslots > SHM_MAX_SLOTS || b->slot_size < 64 ||
        b->fifo_bytes != fifo_bytes(b->nslots, b->slot_size) ||
        b->local_rank != s->local_index[p] || memchr(b->name, 0, sizeof b->name) == NULL)
      return hring__err(HRING_ERR_REMOTE, "shm: rank %d published an invalid segment description",
                        p);
    hring_conn_t *c = calloc(1, sizeof *c);
    shm_conn_t *sc = calloc(1, sizeof *sc);
    if (!c || !sc) {
      free(c);
      free(sc);
      return hring__err(HRING_ERR_NO_MEMORY, "shm");
    }
    c->ops = self_ops();
    c->comm = comm;
    c->peer = p;
    c->priv = sc;
    comm->conns[p] = c;
    int fd = shm_open_peer(comm, p, b->name);
    if (fd < 0)
      return hring__err_errno(HRING_ERR_SYSTEM, errno, "shm: opening rank %d's segment %s", p,
                              b->name);
    sc->tx_map_bytes = b->fifo_bytes;
    void *m = mmap(NULL, sc->tx_map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                   (off_t)(b->fifo_bytes * (uint64_t)comm->local_rank));
    close(fd);
    if (m == MAP_FAILED)
      return hring__err_errno(HRING_ERR_SYSTEM, errno, "shm: mapping rank %d's segment", p);
    sc->tx = m;
    sc->tx_slots = (char *)m + sizeof(shm_fifo_t);
    sc->tx_nslots = b->nslots;
    sc->tx_slot_size = b->slot_size;
    sc->rx = (shm_fifo_t *)((char *)s->seg + mine->fifo_bytes * (uint64_t)s->local_index[p]);
    sc->rx_slots = (char *)sc->rx + sizeof(shm_fifo_t);
    sc->rx_nslots = mine->nslots;
    sc->rx_slot_size = mine->slot_size;
    sc->pid = comm->peers[p].pid;
    /* A message is as large as the smaller of the two directions allows,
     * so an algorithm sizes its chunks the same on both ends. */
    c->slot_size = b->slot_size < mine->slot_size ? b->slot_size : mine->slot_size;
    c->nslots = (int)(b->nslots < mine->nslots ? b->nslots : mine->nslots);
  }
  return HRING_SUCCESS;
}

static hring_result_t shm_after_barrier(struct hring_comm *comm) {
  shm_comm_t *s = comm->tstate[HRING_TRANSPORT_SHM];
  if (s && s->seg) shm_drop_name(s, -1);
  return HRING_SUCCESS;
}

static void shm_comm_close(struct hring_comm *comm) {
  shm_comm_t *s = comm->tstate[HRING_TRANSPORT_SHM];
  if (!s) return;
  for (int p = 0; p < comm->nranks; p++) {
    hring_conn_t *c = comm->conns ? comm->conns[p] : NULL;
    if (!c || c->ops != &hring__shm_ops) continue;
    shm_conn_t *sc = c->priv;
    if (sc && sc->tx) munmap(sc->tx, sc->tx_map_bytes);
    free(sc);
    free(c);
    comm->conns[p] = NULL;
  }
  if (s->seg) {
    munmap(s->seg, s->seg_bytes);
    shm_drop_name(s, -1);
  }
  free(s->local_index);
  free(s);
  comm->tstate[HRING_TRANSPORT_SHM] = NULL;
}

static hring_result_t shm_send_get(hring_conn_t *c, void **buf) {
  shm_conn_t *sc = c->priv;
  if (sc->tx_head - sc->tx_tail_seen >= sc->tx_nslots) {
    sc->tx_tail_seen = atomic_load_explicit(&sc->tx->tail, memory_order_acquire);
    if (sc->tx_head - sc->tx_tail_seen >= sc->tx_nslots) return HRING_IN_PROGRESS;
  }
  *buf = sc->tx_slots + (size_t)(sc->tx_head % sc->tx_nslots) * sc->tx_slot_size;
  return HRING_SUCCESS;
}

static hring_result_t shm_send_post(hring_conn_t *c, size_t len) {
  shm_conn_t *sc = c->priv;
  sc->tx->len[sc->tx_head % sc->tx_nslots] = len;
  sc->tx->hdr[sc->tx_head % sc->tx_nslots] = c->comm->coll;
  sc->tx_head++;
  atomic_store_explicit(&sc->tx->head, sc->tx_head, memory_order_release);
  return HRING_SUCCESS;
}

static hring_result_t shm_recv_get(hring_conn_t *c, void **buf, size_t *len) {
  shm_conn_t *sc = c->priv;
  if (sc->rx_tail == sc->rx_head_seen) {
    sc->rx_head_seen = atomic_load_explicit(&sc->rx->head, memory_order_acquire);
    if (sc->rx_tail == sc->rx_head_seen) return HRING_IN_PROGRESS;
  }
  uint64_t i = sc->rx_tail % sc->rx_nslots;
  uint64_t n = sc->rx->len[i];
  if (n > sc->rx_slot_size)
    return hring__err(HRING_ERR_REMOTE, "shm: rank %d wrote a message of %llu bytes into a slot "
                      "of %u", c->peer, (unsigned long long)n, sc->rx_slot_size);
  HRING_CHECK(hring__wire_check(&sc->rx->hdr[i], &c->comm->coll, c->comm->rank, c->peer,
                                c->comm->peers[c->peer].host));
  *buf = sc->rx_slots + (size_t)i * sc->rx_slot_size;
  *len = (size_t)n;
  return HRING_SUCCESS;
}

static hring_result_t shm_recv_release(hring_conn_t *c) {
  shm_conn_t *sc = c->priv;
  sc->rx_tail++;
  atomic_store_explicit(&sc->rx->tail, sc->rx_tail, memory_order_release);
  return HRING_SUCCESS;
}

static hring_result_t peer_failed(hring_conn_t *c, const shm_fifo_t *rx) {
  char why[sizeof rx->why];
  memcpy(why, rx->why, sizeof why);
  why[sizeof why - 1] = '\0';
  return hring__err(HRING_ERR_REMOTE, "rank %d (%s) failed: %s", c->peer,
                    c->comm->peers[c->peer].host, why);
}

/* A process that exited but was not reaped yet still answers kill(pid, 0). */
/* The peer's process is gone, and it did not leave first: the state is
 * read again after the process is found dead, since a peer that destroyed
 * its communicator and exited in between did leave. */
static int died_without_leaving(shm_conn_t *sc) {
  if (!hring__process_dead(sc->pid)) return 0;
  return atomic_load_explicit(&sc->rx->state, memory_order_acquire) != HRING_PEER_LEFT;
}

static hring_result_t shm_progress(hring_conn_t *c) {
  shm_conn_t *sc = c->priv;
  uint64_t now = hring__now_ns();
  if (now - sc->last_check_ns < SHM_LIVENESS_NS) return HRING_SUCCESS;
  sc->last_check_ns = now;
  int st = atomic_load_explicit(&sc->rx->state, memory_order_acquire);
  if (st == HRING_PEER_FAILED) return peer_failed(c, sc->rx);
  if (st != HRING_PEER_LEFT && died_without_leaving(sc))
    return hring__err(HRING_ERR_REMOTE, "rank %d (pid %d on %s) died", c->peer, (int)sc->pid,
                      c->comm->peers[c->peer].host);
  return HRING_SUCCESS;
}

/* A notice first; then a peer that died without leaving. */
static hring_result_t shm_health(hring_conn_t *c, int level) {
  shm_conn_t *sc = c->priv;
  int st = atomic_load_explicit(&sc->rx->state, memory_order_acquire);
  if (st == HRING_PEER_LEFT) return HRING_SUCCESS;
  if (st == HRING_PEER_FAILED)
    return level >= HRING_HEALTH_DEATHS ? HRING_SUCCESS : peer_failed(c, sc->rx);
  if (died_without_leaving(sc))
    return hring__err(HRING_ERR_REMOTE, "rank %d (pid %d on %s) died", c->peer, (int)sc->pid,
                      c->comm->peers[c->peer].host);
  return HRING_SUCCESS;
}

static void shm_notify(hring_conn_t *c, int state, hring_result_t code, const char *why) {
  shm_conn_t *sc = c->priv;
  if (!sc || !sc->tx) return;
  /* A failure is never turned back into a plain leave. */
  if (atomic_load_explicit(&sc->tx->state, memory_order_acquire) == HRING_PEER_FAILED) return;
  sc->tx->code = (int32_t)code;
  snprintf(sc->tx->why, sizeof sc->tx->why, "%s", why ? why : "");
  atomic_store_explicit(&sc->tx->state, state, memory_order_release);
}

static hring_result_t shm_flush(hring_conn_t *c) {
  (void)c; /* a posted message is already in the peer's memory */
  return HRING_SUCCESS;
}

const hring_transport_ops_t hring__shm_ops = {
    .name = "shm",
    .reachable = shm_reachable,
    .local_init = shm_local_init,
    .connect = shm_connect,
    .after_barrier = shm_after_barrier,
    .comm_close = shm_comm_close,
    .send_get = shm_send_get,
    .send_post = shm_send_post,
    .recv_get = shm_recv_get,
    .recv_release = shm_recv_release,
    .progress = shm_progress,
    .flush = shm_flush,
    .health = shm_health,
    .notify = shm_notify,
    .mem_reg = hring__transport_unsupported_reg,
    .mem_dereg = hring__transport_unsupported_dereg,
};
