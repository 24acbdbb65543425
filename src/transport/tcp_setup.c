/*
 * tcp_setup.c - the tcp transport's communicator-level parts: the listener
 * and its blob, connections built from sockets, teardown, and the ops table.
 * The authenticated connection handshake is in tcp_connect.c, the data path
 * in tcp_data.c.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/comm.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/socket.h"
#include "core/wait.h"
#include "transport/tcp.h"

/* Bounds for the configured values: a slot must hold a useful chunk and its
 * length must fit the 32-bit frame header; the depth bounds the memory of a
 * connection (2 * depth * slot size). */
#define TCP_SLOT_MIN 4096
#define TCP_SLOT_MAX (256ll << 20)
#define TCP_SLOTS_MIN 2
#define TCP_SLOTS_MAX 256
#define TCP_SOCKBUF_MAX (1ll << 30)
/* A fixed socket buffer smaller than this (when the kernel caps the one
 * asked for) would throttle a stream more than autotuning does. */
#define TCP_SOCKBUF_MIN_FIXED (1 << 20)
/* How long a failed rank's teardown waits for its notices to be
 * acknowledged, all connections together. */
#define NOTICE_LINGER_MS 100

static int64_t cfg_clamped(hring_cfg_id_t id, const char *name, int64_t lo, int64_t hi) {
  int64_t v = hring__cfg_int(id);
  if (v < lo || v > hi) {
    int64_t c = v < lo ? lo : hi;
    HRING_WARN(HRING_SUB_NET, "tcp: %s=%lld is out of range [%lld, %lld]; using %lld", name,
               (long long)v, (long long)lo, (long long)hi, (long long)c);
    v = c;
  }
  return v;
}

const hring_tcp_blob_t *hring__tcp_blob(struct hring_comm *comm, int rank, hring_tcp_blob_t *copy) {
  if (!comm->blobs || rank < 0 || rank >= comm->nranks) return NULL;
  memcpy(copy, hring__comm_blob(comm, rank, HRING_TRANSPORT_TCP), sizeof(*copy));
  if (copy->magic != HRING_TCP_BLOB_MAGIC || copy->version != HRING_TCP_VERSION) return NULL;
  return copy;
}

/* Fixed socket buffers switch the kernel's autotuning off, and the kernel
 * silently caps them at net.core.{r,w}mem_max (often 208 KiB): a capped
 * fixed buffer is worse than autotuning, so a throwaway socket checks what
 * the kernel grants before any real socket is tuned. */
static int sockbuf_granted(int family, int want) {
  if (want <= 0) return 0;
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return want;
  int got_r = 0, got_s = 0;
  socklen_t len = sizeof(int);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got_r, &len);
  len = sizeof(int);
  getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &got_s, &len);
  close(fd);
  /* Linux reports twice the size asked for (the doubling covers its
   * bookkeeping); anything below the size asked for is a cap. */
  if (got_r >= want && got_s >= want) return want;
  int cap = (got_r < got_s ? got_r : got_s) / 2;
  if (cap >= TCP_SOCKBUF_MIN_FIXED) {
    HRING_INFO(HRING_SUB_NET,
               "tcp: HRING_TCP_SOCKBUF=%d is capped by the kernel at %d bytes; using that "
               "(net.core.rmem_max and wmem_max set the cap)",
               want, cap);
    return cap;
  }
  HRING_INFO(HRING_SUB_NET,
             "tcp: HRING_TCP_SOCKBUF=%d is capped by the kernel at %d bytes; using "
             "autotuning instead (raise net.core.rmem_max and wmem_max to use it)",
             want, cap);
  return 0;
}

/* The congestion control of the data sockets (HRING_TCP_CC), tried on the
 * listener, whose accepted sockets inherit it.  auto avoids bbr: it paces
 * to a bandwidth and a round trip it estimates from the flow, and a
 * collective's flows change pattern from one call to the next (recursive
 * doubling after the ring, both directions of an exchange at once, ACKs
 * queued behind the reverse data); on 4 emulated hosts with 1 Gbit/s links
 * the whole-vector exchanges at 128-256 KiB ran 1.1-1.6x their steady time
 * under bbr and within 7% under cubic (docs/performance.md).  Where cubic
 * is not allowed (unprivileged, not in tcp_allowed_congestion_control) auto
 * keeps the default; a name the kernel refuses fails the init. */
static hring_result_t choose_cc(hring_tcp_state_t *st) {
  const char *want = hring__cfg_str(HRING_CFG_TCP_CC);
  char now[16];
  st->cc[0] = '\0';
  if (!want || !want[0] || strcmp(want, "auto") == 0) {
    if (hring__sock_get_cc(st->lfd, now, sizeof now) != 0 || strcmp(now, "bbr") != 0)
      return HRING_SUCCESS;
    int e = hring__sock_set_cc(st->lfd, "cubic");
    if (e == 0) {
      snprintf(st->cc, sizeof st->cc, "cubic");
      HRING_INFO(HRING_SUB_NET, "tcp: data sockets use cubic instead of the kernel's bbr "
                 "(HRING_TCP_CC=system keeps bbr)");
    } else {
      HRING_INFO(HRING_SUB_NET, "tcp: the kernel's bbr stays (cubic refused: %s)", strerror(e));
    }
    return HRING_SUCCESS;
  }
  if (strcmp(want, "system") == 0) return HRING_SUCCESS;
  if (strlen(want) >= sizeof st->cc)
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "HRING_TCP_CC=%s: no congestion control has a "
                      "name that long", want);
  int e = hring__sock_set_cc(st->lfd, want);
  if (e != 0)
    return hring__err(HRING_ERR_INVALID_ARGUMENT,
                      "HRING_TCP_CC=%s: the kernel refused it (%s); its choices are in "
                      "/proc/sys/net/ipv4/tcp_available_congestion_control (unprivileged: "
                      "tcp_allowed_congestion_control), or use auto or system",
                      want, strerror(e));
  snprintf(st->cc, sizeof st->cc, "%s", want);
  return HRING_SUCCESS;
}

static int tcp_reachable(struct hring_comm *comm, int peer) {
  /* A stream socket reaches any other rank; which address it uses (never
   * loopback across hosts) is decided when the local address is chosen. */
  return peer != comm->rank && peer >= 0 && peer < comm->nranks;
}

static hring_result_t tcp_local_init(struct hring_comm *comm, void *blob) {
  hring_result_t res = HRING_SUCCESS;
  hring_tcp_state_t *st = calloc(1, sizeof(*st));
  if (!st) return hring__err(HRING_ERR_NO_MEMORY, "tcp: no memory for the transport state");
  st->lfd = -1;
  st->slot_size = (size_t)cfg_clamped(HRING_CFG_TCP_SLOT_SIZE, "HRING_TCP_SLOT_SIZE", TCP_SLOT_MIN,
                                      TCP_SLOT_MAX);
  st->nslots =
      (int)cfg_clamped(HRING_CFG_TCP_SLOTS, "HRING_TCP_SLOTS", TCP_SLOTS_MIN, TCP_SLOTS_MAX);
  st->sockbuf = (int)cfg_clamped(HRING_CFG_TCP_SOCKBUF, "HRING_TCP_SOCKBUF", 0, TCP_SOCKBUF_MAX);

  st->addr = comm->peers[comm->rank].addr;
  if (st->addr.ss_family != AF_INET && st->addr.ss_family != AF_INET6) {
    res = hring__err(HRING_ERR_INTERNAL, "tcp: rank %d has no local address to listen on",
                     comm->rank);
    goto err_free;
  }
  st->sockbuf = sockbuf_granted(st->addr.ss_family, st->sockbuf);
  HRING_CHECK_GOTO(hring__sock_listen(&st->addr, &st->lfd), res, err_free);
  HRING_CHECK_GOTO(hring__sock_set_nonblock(st->lfd, 1), res, err_close);
  /* Accepted sockets inherit the buffer sizes, which must be set before the
   * connection is established to take effect on the window scale. */
  HRING_CHECK_GOTO(choose_cc(st), res, err_close);
  hring__sock_tune(st->lfd, st->sockbuf, st->cc);

  hring_tcp_blob_t b = {.magic = HRING_TCP_BLOB_MAGIC,
                        .version = HRING_TCP_VERSION,
                        .slot_size = (uint32_t)st->slot_size,
                        .port = hring__addr_port(&st->addr)};
  memset(blob, 0, HRING_TRANSPORT_BLOB);
  memcpy(blob, &b, sizeof(b));
  comm->tstate[HRING_TRANSPORT_TCP] = st;
  HRING_INFO(HRING_SUB_NET, "tcp: rank %d listens on %s (slot %zu bytes x %d, sockbuf %d)",
             comm->rank, hring__addr_str(&st->addr), st->slot_size, st->nslots, st->sockbuf);
  return HRING_SUCCESS;

err_close:
  close(st->lfd);
err_free:
  free(st);
  return res;
}

hring_result_t hring__tcp_conn_from_fd(struct hring_comm *comm, int peer, int fd,
                                       hring_conn_t **out) {
  const hring_tcp_state_t *st = comm->tstate[HRING_TRANSPORT_TCP];
  size_t slot_size;
  int nslots;
  if (st) {
    slot_size = st->slot_size;
    nslots = st->nslots;
  } else {
    slot_size = (size_t)cfg_clamped(HRING_CFG_TCP_SLOT_SIZE, "HRING_TCP_SLOT_SIZE", TCP_SLOT_MIN,
                                    TCP_SLOT_MAX);
    nslots = (int)cfg_clamped(HRING_CFG_TCP_SLOTS, "HRING_TCP_SLOTS", TCP_SLOTS_MIN, TCP_SLOTS_MAX);
  }
  /* Both ends must frame messages with the same bound: the smaller of the
   * two configured slot sizes wins. */
  hring_tcp_blob_t copy;
  const hring_tcp_blob_t *b = hring__tcp_blob(comm, peer, &copy);
  if (b && b->slot_size >= TCP_SLOT_MIN && b->slot_size < slot_size) slot_size = b->slot_size;
  return hring__tcp_conn_create(comm, peer, fd, slot_size, nslots, out);
}

static hring_result_t tcp_after_barrier(struct hring_comm *comm) {
  hring_tcp_state_t *st = comm->tstate[HRING_TRANSPORT_TCP];
  /* Every peer is connected: nobody may connect any more. */
  if (st && st->lfd >= 0) {
    close(st->lfd);
    st->lfd = -1;
  }
  return HRING_SUCCESS;
}

/* A failed rank's notices must not die with its sockets: wait, at most
 * NOTICE_LINGER_MS for all connections together, until every peer has
 * acknowledged its notice (hring__tcp_notice_pending). */
static void linger_for_notices(struct hring_comm *comm) {
  uint64_t deadline = hring__now_ns() + (uint64_t)NOTICE_LINGER_MS * 1000000ull;
  for (;;) {
    int pending = 0;
    for (int p = 0; p < comm->nranks; p++) {
      hring_conn_t *c = comm->conns[p];
      if (c && c->ops == &hring__tcp_ops) pending += hring__tcp_notice_pending(c);
    }
    if (!pending || hring__now_ns() >= deadline) return;
    struct timespec ts = {0, 500000};
    nanosleep(&ts, NULL);
  }
}

static void tcp_comm_close(struct hring_comm *comm) {
  if (comm->conns) {
    linger_for_notices(comm);
    for (int p = 0; p < comm->nranks; p++) {
      hring_conn_t *c = comm->conns[p];
      if (c && c->ops == &hring__tcp_ops) {
        hring__tcp_conn_free(c);
        comm->conns[p] = NULL;
      }
    }
  }
  hring_tcp_state_t *st = comm->tstate[HRING_TRANSPORT_TCP];
  if (st) {
    if (st->lfd >= 0) close(st->lfd);
    free(st);
    comm->tstate[HRING_TRANSPORT_TCP] = NULL;
  }
}

const hring_transport_ops_t hring__tcp_ops = {
    .name = "tcp",
    .reachable = tcp_reachable,
    .local_init = tcp_local_init,
    .connect = hring__tcp_connect,
    .after_barrier = tcp_after_barrier,
    .comm_close = tcp_comm_close,
    .send_get = hring__tcp_send_get,
    .send_post = hring__tcp_send_post,
    .recv_get = hring__tcp_recv_get,
    .recv_release = hring__tcp_recv_release,
    .progress = hring__tcp_progress,
    .flush = hring__tcp_flush,
    .wait_fd = hring__tcp_wait_fd,
    .health = hring__tcp_health,
    .notify = hring__tcp_notify,
    .mem_reg = hring__transport_unsupported_reg,
    .mem_dereg = hring__transport_unsupported_dereg,
};
