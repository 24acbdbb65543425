/*
 * tcp_connect.c - the collective connection set-up of the tcp transport.
 *
 * For every pair the lower rank connects and the higher rank accepts.  All
 * outgoing connections and all incoming handshakes advance together in one
 * poll loop, so no rank waits on a chain of others, and a stranger that
 * connects to the listener and then stays silent or sends garbage delays
 * nobody: it is dropped (logged at WARN) while accepting goes on.
 *
 * Handshake (fixed-size messages, host byte order; a peer of the other byte
 * order fails the magic check):
 *   connector -> acceptor  hello     {magic, version, comm_id, rank, target, nonce[16]}
 *   acceptor  -> connector challenge[16]                      (random)
 *   connector -> acceptor  proof  = auth(secret, challenge || comm_id || rank)
 *   acceptor  -> connector ack       {magic, status, auth(secret, nonce || comm_id || target)}
 * The secret never crosses the wire.  The acceptor checks the proof before it
 * answers with its own, so it gives nothing to a connector that cannot prove
 * the secret; the connector checks the acceptor's proof, so a process that
 * took over the listening address cannot pose as the peer.  The two proofs
 * name different ranks, so one cannot be replayed as the other.
 *
 * The whole set-up is bounded by comm->timeout_ms; an incoming connection
 * must finish its part of the handshake within a shorter per-connection
 * deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/comm.h"
#include "core/error.h"
#include "core/log.h"
#include "core/socket.h"
#include "core/wait.h"
#include "transport/tcp.h"

#define TCP_HELLO_MAGIC 0x68526848u /* "hRhH" */
#define TCP_ACK_MAGIC 0x68526841u   /* "hRhA" */
#define TCP_NONCE 16
#define TCP_PROOF 16
/* An incoming connection gets this long (or a quarter of the communicator's
 * timeout, if shorter) to complete its handshake: a real peer answers within
 * microseconds, since it sends each message as soon as it can. */
#define TCP_HS_MS 2000
/* Incoming handshakes that may be in flight beyond the expected peers (room
 * for strangers without letting them take all the slots). */
#define TCP_HS_EXTRA 16
/* Retry pause after a refused connection, doubled up to the maximum. */
#define TCP_RETRY_MS 10
#define TCP_RETRY_MAX_MS 320
#define TCP_FALLBACK_TIMEOUT_MS 300000

enum { ACK_OK = 0, ACK_REJECT = 1 };
enum { EXPECT_NONE = 0, EXPECT_IN = 1, EXPECT_OUT = 2 };

typedef struct {
  uint32_t magic;
  uint32_t version;
  uint64_t comm_id;
  int32_t rank;
  int32_t target;
  uint8_t nonce[TCP_NONCE];
} tcp_hello_t;

typedef struct {
  uint32_t magic;
  uint32_t status;
  uint8_t proof[TCP_PROOF];
} tcp_ack_t;

_Static_assert(sizeof(tcp_hello_t) == 40, "hello has no padding");
_Static_assert(sizeof(tcp_ack_t) == 24, "ack has no padding");

enum {
  HS_FREE = 0,
  HS_OUT_RETRY,      /* waiting to connect (again) */
  HS_OUT_CONNECTING, /* non-blocking connect in flight */
  HS_OUT_CHALLENGE,  /* hello sent, reading the challenge */
  HS_OUT_ACK,        /* proof sent, reading the ack */
  HS_IN_HELLO,       /* accepted, reading the hello */
  HS_IN_PROOF        /* challenge sent, reading the proof */
};

typedef struct {
  int state;
  int fd;
  int peer;          /* outgoing: the target; incoming: the rank it claims */
  uint64_t timer_ns; /* OUT_RETRY: when to retry; IN_*: the deadline */
  int retries;
  int last_errno;                /* outgoing: why the last attempt failed */
  uint8_t nonce[TCP_NONCE];      /* outgoing: ours; incoming: the challenge */
  uint8_t peer_nonce[TCP_NONCE]; /* incoming: the connector's nonce */
  uint8_t buf[64];
  size_t got, want;
  char from[64]; /* incoming: the remote address, for logs */
} tcp_hs_t;

typedef struct {
  struct hring_comm *comm;
  hring_tcp_state_t *st;
  tcp_hs_t *hs;
  int nhs, nout;      /* entries [0, nout) are the outgoing ones */
  uint8_t *expect_in; /* [nranks]: EXPECT_IN while that rank must still connect
                       * to us, EXPECT_OUT for the ranks we connect to */
  int remaining_in, remaining;
  uint64_t deadline_ns, hs_ns;
  long long timeout_ms;
} tcp_ctx_t;

static const char *host_of(struct hring_comm *comm, int rank) {
  return comm->peers ? comm->peers[rank].host : "?";
}

static hring_result_t tcp_random(void *buf, size_t len) {
  uint8_t *p = buf;
  while (len > 0) {
    ssize_t r = getrandom(p, len, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    p += r;
    len -= (size_t)r;
  }
  if (len == 0) return HRING_SUCCESS;
  /* Kernels without getrandom: the device gives the same bytes. */
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return hring__err_errno(HRING_ERR_SYSTEM, errno, "tcp: no random source");
  while (len > 0) {
    ssize_t r = read(fd, p, len);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      int e = r < 0 ? errno : EIO;
      close(fd);
      return hring__err_errno(HRING_ERR_SYSTEM, e, "tcp: cannot read /dev/urandom");
    }
    p += r;
    len -= (size_t)r;
  }
  close(fd);
  return HRING_SUCCESS;
}

/* auth(secret, nonce || comm_id || rank). */
static void make_proof(struct hring_comm *comm, const uint8_t nonce[TCP_NONCE], int32_t rank,
                       uint8_t out[TCP_PROOF]) {
  uint8_t msg[TCP_NONCE + sizeof(uint64_t) + sizeof(int32_t)];
  memcpy(msg, nonce, TCP_NONCE);
  memcpy(msg + TCP_NONCE, &comm->comm_id, sizeof(uint64_t));
  memcpy(msg + TCP_NONCE + sizeof(uint64_t), &rank, sizeof(int32_t));
  hring__auth_proof(comm->secret, HRING_SECRET_BYTES, msg, sizeof(msg), out);
}

/* Compares in time independent of where the first difference is. */
static int proof_equal(const uint8_t *a, const uint8_t *b) {
  uint8_t d = 0;
  for (int i = 0; i < TCP_PROOF; i++) d |= (uint8_t)(a[i] ^ b[i]);
  return d == 0;
}

/* Handshake messages are a few dozen bytes on a fresh socket, which always
 * has room for them: a short write means the connection is broken. */
static int send_small(int fd, const void *buf, size_t len) {
  for (;;) {
    ssize_t w = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w == (ssize_t)len) return 0;
    if (w < 0 && errno == EINTR) continue;
    return w < 0 ? errno : EAGAIN;
  }
}

/* Reads toward h->want bytes: 1 when complete, 0 when more must come, -1 on
 * end of stream or error (errno set; 0 for end of stream). */
static int hs_read(tcp_hs_t *h) {
  while (h->got < h->want) {
    ssize_t r = recv(h->fd, h->buf + h->got, h->want - h->got, MSG_DONTWAIT);
    if (r > 0) {
      h->got += (size_t)r;
      continue;
    }
    if (r == 0) {
      errno = 0;
      return -1;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return -1;
  }
  return 1;
}

static void hs_expect(tcp_hs_t *h, int state, size_t want) {
  h->state = state;
  h->got = 0;
  h->want = want;
}

static void hs_close(tcp_hs_t *h) {
  if (h->fd >= 0) close(h->fd);
  h->fd = -1;
  h->state = HS_FREE;
}

/* Drops an incoming connection that failed a check; set-up goes on. */
static void in_drop(tcp_ctx_t *x, tcp_hs_t *h, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void in_drop(tcp_ctx_t *x, tcp_hs_t *h, const char *fmt, ...) {
  char why[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof(why), fmt, ap);
  va_end(ap);
  HRING_WARN(HRING_SUB_NET, "tcp: rank %d drops the connection from %s: %s", x->comm->rank, h->from,
             why);
  hs_close(h);
}

/* The handshake succeeded: the socket becomes the connection to h->peer. */
static hring_result_t hs_done(tcp_ctx_t *x, tcp_hs_t *h) {
  struct hring_comm *comm = x->comm;
  hring_conn_t *c = NULL;
  HRING_CHECK(hring__tcp_conn_from_fd(comm, h->peer, h->fd, &c));
  comm->conns[h->peer] = c;
  HRING_INFO(HRING_SUB_NET, "tcp: rank %d connected to rank %d (%s)%s", comm->rank, h->peer,
             host_of(comm, h->peer), h->state == HS_IN_PROOF ? " (accepted)" : "");
  h->fd = -1; /* owned by the connection now */
  h->state = HS_FREE;
  x->remaining--;
  return HRING_SUCCESS;
}

/* ---- outgoing ---- */

static void out_retry_later(tcp_ctx_t *x, tcp_hs_t *h, int err) {
  if (h->fd >= 0) close(h->fd);
  h->fd = -1;
  h->last_errno = err;
  int shift = h->retries < 5 ? h->retries : 5;
  uint64_t ms = (uint64_t)TCP_RETRY_MS << shift;
  if (ms > TCP_RETRY_MAX_MS) ms = TCP_RETRY_MAX_MS;
  h->retries++;
  h->timer_ns = hring__now_ns() + ms * 1000000ull;
  h->state = HS_OUT_RETRY;
  HRING_TRACE(HRING_SUB_NET, "tcp: rank %d retries rank %d in %llu ms (%s)", x->comm->rank, h->peer,
              (unsigned long long)ms, strerror(err));
}

static hring_result_t out_send_hello(tcp_ctx_t *x, tcp_hs_t *h) {
  struct hring_comm *comm = x->comm;
  tcp_hello_t m = {.magic = TCP_HELLO_MAGIC,
                   .version = HRING_TCP_VERSION,
                   .comm_id = comm->comm_id,
                   .rank = comm->rank,
                   .target = h->peer};
  HRING_CHECK(tcp_random(h->nonce, TCP_NONCE));
  memcpy(m.nonce, h->nonce, TCP_NONCE);
  int e = send_small(h->fd, &m, sizeof(m));
  if (e)
    out_retry_later(x, h, e);
  else
    hs_expect(h, HS_OUT_CHALLENGE, TCP_NONCE);
  return HRING_SUCCESS;
}

static hring_result_t out_start(tcp_ctx_t *x, tcp_hs_t *h) {
  struct hring_comm *comm = x->comm;
  hring_tcp_blob_t copy;
  const hring_tcp_blob_t *b = hring__tcp_blob(comm, h->peer, &copy);
  if (!b)
    return hring__err(HRING_ERR_INTERNAL, "tcp: rank %d (%s) published no tcp listener", h->peer,
                      host_of(comm, h->peer));
  struct sockaddr_storage addr = comm->peers[h->peer].addr;
  hring__addr_set_port(&addr, b->port);
  h->fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (h->fd < 0)
    return hring__err_errno(HRING_ERR_SYSTEM, errno, "tcp: socket for rank %d (%s)", h->peer,
                            host_of(comm, h->peer));
  hring__sock_tune(h->fd, x->st->sockbuf, x->st->cc);
  if (connect(h->fd, (struct sockaddr *)&addr, hring__addr_len(&addr)) == 0)
    return out_send_hello(x, h);
  if (errno == EINPROGRESS || errno == EINTR) {
    h->state = HS_OUT_CONNECTING;
    return HRING_SUCCESS;
  }
  out_retry_later(x, h, errno);
  return HRING_SUCCESS;
}

static hring_result_t out_event(tcp_ctx_t *x, tcp_hs_t *h) {
  struct hring_comm *comm = x->comm;
  const char *host = host_of(comm, h->peer);
  if (h->state == HS_OUT_CONNECTING) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err) {
      out_retry_later(x, h, err);
      return HRING_SUCCESS;
    }
    return out_send_hello(x, h);
  }
  int r = hs_read(h);
  if (r == 0) return HRING_SUCCESS;
  if (r < 0) {
    if (errno)
      return hring__err_errno(HRING_ERR_REMOTE, errno, "tcp: handshake with rank %d (%s) failed",
                              h->peer, host);
    return hring__err(HRING_ERR_REMOTE,
                      "tcp: rank %d (%s) closed the connection during the handshake "
                      "(another communicator or job secret?)",
                      h->peer, host);
  }
  if (h->state == HS_OUT_CHALLENGE) {
    uint8_t proof[TCP_PROOF];
    make_proof(comm, h->buf, comm->rank, proof);
    int e = send_small(h->fd, proof, sizeof(proof));
    if (e)
      return hring__err_errno(HRING_ERR_REMOTE, e, "tcp: handshake with rank %d (%s) failed",
                              h->peer, host);
    hs_expect(h, HS_OUT_ACK, sizeof(tcp_ack_t));
    return HRING_SUCCESS;
  }
  /* HS_OUT_ACK */
  tcp_ack_t ack;
  memcpy(&ack, h->buf, sizeof(ack));
  if (ack.magic != TCP_ACK_MAGIC)
    return hring__err(HRING_ERR_REMOTE, "tcp: rank %d (%s) sent a bad handshake ack (0x%08x)",
                      h->peer, host, ack.magic);
  if (ack.status != ACK_OK)
    return hring__err(HRING_ERR_REMOTE,
                      "tcp: rank %d (%s) refused our proof of the job secret "
                      "(ranks started with different secrets?)",
                      h->peer, host);
  uint8_t expect[TCP_PROOF];
  make_proof(comm, h->nonce, h->peer, expect);
  if (!proof_equal(expect, ack.proof))
    return hring__err(HRING_ERR_REMOTE,
                      "tcp: the process at rank %d's address (%s) cannot prove the job secret",
                      h->peer, host);
  return hs_done(x, h);
}

/* ---- incoming ---- */

static void in_accept(tcp_ctx_t *x) {
  for (;;) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = accept4(x->st->lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        HRING_WARN(HRING_SUB_NET, "tcp: rank %d: accept failed: %s", x->comm->rank,
                   strerror(errno));
      return;
    }
    tcp_hs_t *h = NULL;
    for (int i = x->nout; i < x->nhs && !h; i++)
      if (x->hs[i].state == HS_FREE) h = &x->hs[i];
    if (!h) {
      HRING_WARN(HRING_SUB_NET,
                 "tcp: rank %d drops the connection from %s: too many handshakes in flight",
                 x->comm->rank, hring__addr_str(&ss));
      close(fd);
      continue;
    }
    memset(h, 0, sizeof(*h));
    h->fd = fd;
    h->peer = -1;
    snprintf(h->from, sizeof(h->from), "%s", hring__addr_str(&ss));
    uint64_t now = hring__now_ns();
    h->timer_ns = now + x->hs_ns < x->deadline_ns ? now + x->hs_ns : x->deadline_ns;
    /* Incoming sockets inherit the listener's options; the call keeps them
     * right whatever the platform inherits. */
    hring__sock_tune(fd, x->st->sockbuf, x->st->cc);
    hs_expect(h, HS_IN_HELLO, sizeof(tcp_hello_t));
  }
}

static hring_result_t in_event(tcp_ctx_t *x, tcp_hs_t *h) {
  struct hring_comm *comm = x->comm;
  int r = hs_read(h);
  if (r == 0) return HRING_SUCCESS;
  if (r < 0) {
    in_drop(x, h, "%s during the handshake", errno ? strerror(errno) : "closed");
    return HRING_SUCCESS;
  }
  if (h->state == HS_IN_HELLO) {
    tcp_hello_t m;
    memcpy(&m, h->buf, sizeof(m));
    if (m.magic != TCP_HELLO_MAGIC) {
      in_drop(x, h, "not an hring peer (magic 0x%08x)", m.magic);
    } else if (m.version != HRING_TCP_VERSION) {
      in_drop(x, h, "protocol version %u, this rank speaks %u", m.version, HRING_TCP_VERSION);
    } else if (m.comm_id != comm->comm_id) {
      in_drop(x, h, "it belongs to another communicator");
    } else if (m.target != comm->rank) {
      in_drop(x, h, "it is meant for rank %d", (int)m.target);
    } else if (m.rank < 0 || m.rank >= comm->nranks || x->expect_in[m.rank] != EXPECT_IN) {
      in_drop(x, h, "rank %d is not expected to connect (or already did)", (int)m.rank);
    } else {
      h->peer = m.rank;
      memcpy(h->peer_nonce, m.nonce, TCP_NONCE);
      HRING_CHECK(tcp_random(h->nonce, TCP_NONCE));
      int e = send_small(h->fd, h->nonce, TCP_NONCE);
      if (e)
        in_drop(x, h, "cannot send the challenge: %s", strerror(e));
      else
        hs_expect(h, HS_IN_PROOF, TCP_PROOF);
    }
    return HRING_SUCCESS;
  }
  /* HS_IN_PROOF */
  uint8_t expect[TCP_PROOF];
  make_proof(comm, h->nonce, h->peer, expect);
  if (!proof_equal(expect, h->buf)) {
    tcp_ack_t nak = {.magic = TCP_ACK_MAGIC, .status = ACK_REJECT};
    (void)send_small(h->fd, &nak, sizeof(nak));
    in_drop(x, h, "claims rank %d but cannot prove the job secret", h->peer);
    return HRING_SUCCESS;
  }
  if (x->expect_in[h->peer] != EXPECT_IN) {
    in_drop(x, h, "rank %d is already connected", h->peer);
    return HRING_SUCCESS;
  }
  tcp_ack_t ack = {.magic = TCP_ACK_MAGIC, .status = ACK_OK};
  make_proof(comm, h->peer_nonce, comm->rank, ack.proof);
  int e = send_small(h->fd, &ack, sizeof(ack));
  if (e) {
    in_drop(x, h, "cannot send the ack: %s", strerror(e));
    return HRING_SUCCESS;
  }
  x->expect_in[h->peer] = EXPECT_NONE;
  x->remaining_in--;
  return hs_done(x, h);
}

/* ---- the loop ---- */

static hring_result_t timeout_error(tcp_ctx_t *x) {
  struct hring_comm *comm = x->comm;
  long long ms = x->timeout_ms;
  for (int i = 0; i < x->nout; i++) {
    tcp_hs_t *h = &x->hs[i];
    if (h->state == HS_FREE) continue;
    if (h->last_errno)
      return hring__err_errno(HRING_ERR_TIMEOUT, h->last_errno,
                              "tcp: rank %d could not connect to rank %d (%s) within %lld ms",
                              comm->rank, h->peer, host_of(comm, h->peer), ms);
    return hring__err(HRING_ERR_TIMEOUT,
                      "tcp: rank %d timed out after %lld ms in the handshake with rank %d (%s)",
                      comm->rank, ms, h->peer, host_of(comm, h->peer));
  }
  for (int p = 0; p < comm->nranks; p++)
    if (x->expect_in[p] == EXPECT_IN)
      return hring__err(HRING_ERR_TIMEOUT,
                        "tcp: rank %d timed out after %lld ms waiting for rank %d (%s) to "
                        "connect (%d connection%s missing)",
                        comm->rank, ms, p, host_of(comm, p), x->remaining,
                        x->remaining == 1 ? "" : "s");
  return hring__err(HRING_ERR_TIMEOUT, "tcp: rank %d timed out in the connection set-up",
                    comm->rank);
}

static hring_result_t run_loop(tcp_ctx_t *x, struct pollfd *pfd, int *map) {
  while (x->remaining > 0) {
    uint64_t now = hring__now_ns();
    if (now >= x->deadline_ns) return timeout_error(x);
    uint64_t wake = x->deadline_ns;
    int n = 0;
    if (x->remaining_in > 0) {
      pfd[n] = (struct pollfd){.fd = x->st->lfd, .events = POLLIN};
      map[n++] = -1;
    }
    for (int i = 0; i < x->nhs; i++) {
      tcp_hs_t *h = &x->hs[i];
      if (h->state == HS_OUT_RETRY && h->timer_ns <= now) HRING_CHECK(out_start(x, h));
      if ((h->state == HS_IN_HELLO || h->state == HS_IN_PROOF) && h->timer_ns <= now)
        in_drop(x, h, "silent for %llu ms", (unsigned long long)(x->hs_ns / 1000000));
      if (h->state == HS_FREE) continue;
      if (h->state == HS_OUT_RETRY || h->state >= HS_IN_HELLO)
        if (h->timer_ns < wake) wake = h->timer_ns;
      if (h->state == HS_OUT_RETRY) continue;
      pfd[n] =
          (struct pollfd){.fd = h->fd, .events = h->state == HS_OUT_CONNECTING ? POLLOUT : POLLIN};
      map[n++] = i;
    }
    if (x->remaining == 0) break; /* a connect completed at once */
    uint64_t wait_ns = wake > now ? wake - now : 0;
    uint64_t wait_ms = (wait_ns + 999999) / 1000000;
    int rc = poll(pfd, (nfds_t)n, wait_ms > INT_MAX ? INT_MAX : (int)wait_ms);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return hring__err_errno(HRING_ERR_SYSTEM, errno, "tcp: poll in the connection set-up");
    }
    for (int k = 0; k < n && rc > 0; k++) {
      if (!pfd[k].revents) continue;
      rc--;
      if (map[k] < 0) {
        in_accept(x);
        continue;
      }
      tcp_hs_t *h = &x->hs[map[k]];
      if (h->state >= HS_IN_HELLO)
        HRING_CHECK(in_event(x, h));
      else if (h->state >= HS_OUT_CONNECTING)
        HRING_CHECK(out_event(x, h));
    }
  }
  return HRING_SUCCESS;
}

hring_result_t hring__tcp_connect(struct hring_comm *comm, const int *peers, int npeers) {
  hring_result_t res = HRING_SUCCESS;
  tcp_ctx_t x = {.comm = comm, .st = comm->tstate[HRING_TRANSPORT_TCP]};
  if (!x.st || x.st->lfd < 0 || !comm->conns || (npeers > 0 && !peers))
    return hring__err(HRING_ERR_INTERNAL, "tcp: connect without local_init");
  if (npeers == 0) return HRING_SUCCESS;
  uint64_t start = hring__now_ns();
  /* A communicator always has a timeout; the fallback only keeps a
   * half-initialised one from waiting forever. */
  int64_t timeout_ms = comm->timeout_ms > 0 ? comm->timeout_ms : TCP_FALLBACK_TIMEOUT_MS;
  uint64_t timeout_ns = (uint64_t)timeout_ms * 1000000ull;
  x.timeout_ms = (long long)timeout_ms;
  x.deadline_ns = start + timeout_ns;
  x.hs_ns = (uint64_t)TCP_HS_MS * 1000000ull;
  if (x.hs_ns > timeout_ns / 4) x.hs_ns = timeout_ns / 4;

  x.expect_in = calloc((size_t)comm->nranks, 1);
  if (!x.expect_in) return hring__err(HRING_ERR_NO_MEMORY, "tcp: no memory for the set-up");
  for (int i = 0; i < npeers; i++) {
    int p = peers[i];
    if (p < 0 || p >= comm->nranks || p == comm->rank) {
      res = hring__err(HRING_ERR_INTERNAL, "tcp: connect to bad rank %d", p);
      goto out_expect;
    }
    if (x.expect_in[p]) continue; /* listed twice */
    if (p > comm->rank) {
      x.expect_in[p] = EXPECT_OUT;
      x.nout++;
    } else {
      x.expect_in[p] = EXPECT_IN;
      x.remaining_in++;
    }
  }
  x.remaining = x.nout + x.remaining_in;
  x.nhs = x.nout + (x.remaining_in > 0 ? x.remaining_in + TCP_HS_EXTRA : 0);
  x.hs = calloc((size_t)x.nhs, sizeof(*x.hs));
  struct pollfd *pfd = calloc((size_t)x.nhs + 1, sizeof(*pfd));
  int *map = calloc((size_t)x.nhs + 1, sizeof(*map));
  if (!x.hs || !pfd || !map) {
    res = hring__err(HRING_ERR_NO_MEMORY, "tcp: no memory for the set-up");
    goto out_free;
  }
  for (int i = 0; i < x.nhs; i++) x.hs[i].fd = -1;
  for (int p = comm->rank + 1, k = 0; p < comm->nranks; p++) {
    if (x.expect_in[p] != EXPECT_OUT) continue;
    x.hs[k].peer = p;
    x.hs[k].state = HS_OUT_RETRY; /* timer 0: starts at once */
    k++;
  }
  res = run_loop(&x, pfd, map);
  if (res == HRING_SUCCESS)
    HRING_INFO(HRING_SUB_NET, "tcp: rank %d connected to %d peers in %.1f ms", comm->rank, npeers,
               (double)(hring__now_ns() - start) / 1e6);

out_free:
  /* Handshakes still in flight are strangers (or, on failure, unfinished). */
  for (int i = 0; x.hs && i < x.nhs; i++)
    if (x.hs[i].fd >= 0) close(x.hs[i].fd);
  free(map);
  free(pfd);
  free(x.hs);
out_expect:
  free(x.expect_in);
  return res;
}
