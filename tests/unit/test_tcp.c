/*
 * test_tcp.c - the tcp transport: the data path over a loopback socket pair
 * (ordering, contents, lengths 0..slot size, back-pressure, bad frames, a
 * closing peer, a live peer that is quiet or not reading, which must not be
 * taken for a vanished host) and the collective set-up (handshake between
 * threads, with strangers and an impostor that must be turned away, and the
 * timeout).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../harness.h"
#include "core/comm.h"
#include "core/config.h"
#include "core/socket.h"
#include "core/wait.h"
#include "transport/tcp.h"

#define MAXR 4

/* A hand-made communicator: just what the transport reads. */
typedef struct {
  struct hring_comm comm;
  hring_peer_info_t peers[MAXR];
  hring_conn_t *conns[MAXR];
} tcomm_t;

static uint8_t blob_table[MAXR * HRING_NUM_TRANSPORTS * HRING_TRANSPORT_BLOB];

static void tcomm_init(tcomm_t *t, int rank, int nranks, int64_t timeout_ms) {
  memset(t, 0, sizeof(*t));
  t->comm.magic = HRING_COMM_MAGIC;
  t->comm.rank = rank;
  t->comm.nranks = nranks;
  t->comm.peers = t->peers;
  t->comm.conns = t->conns;
  t->comm.blobs = blob_table;
  t->comm.timeout_ms = timeout_ms;
  t->comm.comm_id = 0x1234567890abcdefull;
  for (int i = 0; i < HRING_SECRET_BYTES; i++) t->comm.secret[i] = (uint8_t)(i * 7 + 1);
  for (int r = 0; r < nranks; r++) {
    hring_peer_info_t *p = &t->peers[r];
    p->rank = r;
    snprintf(p->host, sizeof(p->host), "host%c", 'A' + r);
    struct sockaddr_in *a = (struct sockaddr_in *)&p->addr;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }
}

/* A connected loopback TCP pair; sockbuf > 0 shrinks both buffers. */
static void tcp_pair(int fds[2], int sockbuf) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  int l = socket(AF_INET, SOCK_STREAM, 0);
  HREQUIRE(l >= 0 && bind(l, (struct sockaddr *)&a, len) == 0 && listen(l, 1) == 0 &&
               getsockname(l, (struct sockaddr *)&a, &len) == 0,
           "listener: %s", strerror(errno));
  fds[0] = socket(AF_INET, SOCK_STREAM, 0);
  if (sockbuf > 0) {
    setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sockbuf, sizeof(sockbuf));
    setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &sockbuf, sizeof(sockbuf));
    setsockopt(l, SOL_SOCKET, SO_SNDBUF, &sockbuf, sizeof(sockbuf));
    setsockopt(l, SOL_SOCKET, SO_RCVBUF, &sockbuf, sizeof(sockbuf));
  }
  HREQUIRE(connect(fds[0], (struct sockaddr *)&a, len) == 0, "connect: %s", strerror(errno));
  fds[1] = accept(l, NULL, NULL);
  HREQUIRE(fds[1] >= 0, "accept: %s", strerror(errno));
  close(l);
}

/* Two communicators (ranks 0 and 1) joined by one connection each way. */
typedef struct {
  tcomm_t t[2];
  hring_conn_t *c[2];
  int fd[2];
} pair_t;

static void pair_open(pair_t *p, size_t slot, int nslots, int sockbuf) {
  tcomm_init(&p->t[0], 0, 2, 5000);
  tcomm_init(&p->t[1], 1, 2, 5000);
  tcp_pair(p->fd, sockbuf);
  for (int s = 0; s < 2; s++) {
    hring_result_t r =
        hring__tcp_conn_create(&p->t[s].comm, 1 - s, p->fd[s], slot, nslots, &p->c[s]);
    HREQUIRE(r == HRING_SUCCESS, "conn_create: %s", hring_last_error());
  }
}

static void pair_close(pair_t *p) {
  hring__tcp_conn_free(p->c[0]);
  hring__tcp_conn_free(p->c[1]);
}

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

/* Message i in direction d: lengths cycle through 0, 1, a full slot and
 * random ones; the contents depend on d, i and the position. */
static size_t msg_len(int d, int i, size_t slot) {
  switch (i % 5) {
    case 0:
      return 0;
    case 1:
      return 1;
    case 2:
      return slot;
    default:
      return (size_t)(mix((uint64_t)d << 32 | (uint64_t)i) % (slot + 1));
  }
}

static uint8_t msg_byte(int d, int i, size_t j) {
  return (uint8_t)(mix((uint64_t)d << 40 | (uint64_t)i) + j * 131 + (j >> 9));
}

typedef struct {
  hring_conn_t *c;
  int dir; /* direction this side sends */
  int sent, recvd, nmsg;
  size_t slot;
  int bad;
} side_t;

static int side_send(side_t *s) {
  if (s->sent == s->nmsg) return 0;
  void *buf = NULL;
  hring_result_t r = hring__send_get(s->c, &buf);
  if (r == HRING_IN_PROGRESS) return 0;
  HREQUIRE(r == HRING_SUCCESS, "send_get: %d %s", r, hring_last_error());
  HCHECK((uintptr_t)buf % 64 == 0, "send slot %p not 64-byte aligned", buf);
  size_t len = msg_len(s->dir, s->sent, s->slot);
  for (size_t j = 0; j < len; j++) ((uint8_t *)buf)[j] = msg_byte(s->dir, s->sent, j);
  r = hring__send_post(s->c, len);
  HREQUIRE(r == HRING_SUCCESS, "send_post: %d %s", r, hring_last_error());
  s->sent++;
  return 1;
}

static int side_recv(side_t *s) {
  void *buf = NULL;
  size_t len = 0;
  hring_result_t r = hring__recv_get(s->c, &buf, &len);
  if (r == HRING_IN_PROGRESS) return 0;
  HREQUIRE(r == HRING_SUCCESS, "recv_get: %d %s", r, hring_last_error());
  HREQUIRE(s->recvd < s->nmsg, "more messages than sent");
  int d = 1 - s->dir, i = s->recvd;
  size_t want = msg_len(d, i, s->slot);
  HREQUIRE(len == want, "message %d: length %zu, expected %zu (out of order?)", i, len, want);
  HCHECK(len == 0 || (uintptr_t)buf % 64 == 0, "receive slot %p not 64-byte aligned", buf);
  for (size_t j = 0; j < len; j++) {
    if (((uint8_t *)buf)[j] != msg_byte(d, i, j)) {
      if (s->bad++ < 3) htest_fail(__FILE__, __LINE__, "message %d byte %zu differs", i, j);
      break;
    }
  }
  HREQUIRE(hring__recv_release(s->c) == HRING_SUCCESS, "release: %s", hring_last_error());
  s->recvd++;
  return 1;
}

static double now_s(void) { return (double)hring__now_ns() * 1e-9; }

/* Both sides send nmsg messages to each other, the calls interleaved at
 * random (progress included), until everything arrived. */
static void exchange(hring_conn_t *a, hring_conn_t *b, int nmsg, size_t slot, uint64_t seed) {
  side_t s[2] = {{.c = a, .dir = 0, .nmsg = nmsg, .slot = slot},
                 {.c = b, .dir = 1, .nmsg = nmsg, .slot = slot}};
  double t0 = now_s();
  uint64_t rng = seed;
  while (s[0].recvd < nmsg || s[1].recvd < nmsg) {
    rng = mix(rng + 1);
    side_t *x = &s[rng & 1];
    switch ((rng >> 1) % 4) {
      case 0:
      case 1:
        side_send(x);
        break;
      case 2:
        side_recv(x);
        break;
      default: {
        hring_result_t r = hring__conn_progress(x->c);
        HREQUIRE(r == HRING_SUCCESS, "progress: %s", hring_last_error());
      }
    }
    HREQUIRE(now_s() - t0 < 20, "stalled: sent %d/%d, received %d/%d", s[0].sent, s[1].sent,
             s[1].recvd, s[0].recvd);
  }
  HCHECK(s[0].bad == 0 && s[1].bad == 0, "corrupted messages");
}

HTEST(tcp_data_small_slots, 30) {
  pair_t p;
  pair_open(&p, 4096, 4, 0);
  exchange(p.c[0], p.c[1], 3000, 4096, 1);
  pair_close(&p);
}

HTEST(tcp_data_odd_slot_partial_io, 30) {
  /* A slot size that is no multiple of the alignment, larger than the
   * socket buffers, so frames are written and read in pieces. */
  size_t slot = 3 * 65536 + 5;
  pair_t p;
  pair_open(&p, slot, 3, 16384);
  exchange(p.c[0], p.c[1], 200, slot, 2);
  pair_close(&p);
}

HTEST(tcp_data_depth_one, 30) {
  pair_t p;
  pair_open(&p, 1000, 1, 0);
  exchange(p.c[0], p.c[1], 500, 1000, 3);
  pair_close(&p);
}

HTEST(tcp_backpressure, 30) {
  size_t slot = 8192;
  pair_t p;
  pair_open(&p, slot, 4, 4096);
  side_t a = {.c = p.c[0], .dir = 0, .nmsg = 1 << 20, .slot = slot};
  side_t b = {.c = p.c[1], .dir = 1, .nmsg = 1 << 20, .slot = slot};
  /* Nobody reads: the sender must run out of slots and say so. */
  int posted = 0;
  while (posted < 10000 && side_send(&a)) posted++;
  HREQUIRE(posted < 10000, "send_get never reported a full FIFO");
  HCHECK(posted >= 4, "only %d messages posted before the FIFO was full", posted);
  void *buf;
  HCHECK(hring__conn_progress(p.c[0]) == HRING_SUCCESS, "progress while full");
  HCHECK(hring__send_get(p.c[0], &buf) == HRING_IN_PROGRESS, "full FIFO recovered by itself");
  /* The receiver drains; the sender recovers and goes on. */
  int more = posted + 300;
  a.nmsg = more;
  double t0 = now_s();
  while (b.recvd < more) {
    side_recv(&b);
    side_send(&a);
    HREQUIRE(hring__conn_progress(p.c[0]) == HRING_SUCCESS, "progress: %s", hring_last_error());
    HREQUIRE(now_s() - t0 < 20, "stalled at %d of %d", b.recvd, more);
  }
  HCHECK(a.sent == more && b.bad == 0, "sent %d of %d, %d bad", a.sent, more, b.bad);
  pair_close(&p);
}

/* Writes raw bytes where the peer expects frames. */
static void raw_write(int fd, const void *buf, size_t len) {
  HREQUIRE(write(fd, buf, len) == (ssize_t)len, "write: %s", strerror(errno));
}

/* Drives c until it fails; returns the error. */
static hring_result_t until_error(hring_conn_t *c) {
  double t0 = now_s();
  for (;;) {
    void *buf;
    size_t len;
    hring_result_t r = hring__recv_get(c, &buf, &len);
    if (r == HRING_SUCCESS) r = hring__recv_release(c);
    if (r != HRING_SUCCESS && r != HRING_IN_PROGRESS) return r;
    if (now_s() - t0 > 5) return HRING_IN_PROGRESS;
    usleep(100);
  }
}

HTEST(tcp_bad_frames, 30) {
  struct {
    const char *what, *msg;
    uint32_t hdr[HRING_TCP_FRAME_HDR / 4];
  } cases[] = {
      {"oversize length", "exceeds the slot size", {4097, HRING_TCP_FRAME_MAGIC}},
      {"bad magic", "bad frame header", {16, 0xdeadbeef}},
      {"wrong sequence", "bad frame header", {16, HRING_TCP_FRAME_MAGIC ^ 5}},
  };
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    pair_t p;
    pair_open(&p, 4096, 4, 0);
    raw_write(p.fd[1], cases[k].hdr, sizeof(cases[k].hdr));
    hring_result_t r = until_error(p.c[0]);
    HCHECK(r == HRING_ERR_REMOTE, "%s: got %d", cases[k].what, r);
    const char *e = hring_last_error();
    HCHECK(strstr(e, cases[k].msg) && strstr(e, "rank 1") && strstr(e, "hostB"),
           "%s: message \"%s\"", cases[k].what, e);
    /* The failure is sticky. */
    HCHECK(hring__conn_progress(p.c[0]) == HRING_ERR_REMOTE, "%s: not sticky", cases[k].what);
    void *buf;
    HCHECK(hring__send_get(p.c[0], &buf) == HRING_ERR_REMOTE, "%s: send after failure",
           cases[k].what);
    pair_close(&p);
  }
  /* Garbage after a good frame (so at sequence number 1) is caught too. */
  pair_t p;
  pair_open(&p, 4096, 4, 0);
  void *buf;
  HREQUIRE(hring__send_get(p.c[1], &buf) == HRING_SUCCESS, "send_get");
  memcpy(buf, "hello", 5);
  HREQUIRE(hring__send_post(p.c[1], 5) == HRING_SUCCESS, "send_post");
  size_t len = 0;
  hring_result_t r;
  double t0 = now_s();
  while ((r = hring__recv_get(p.c[0], &buf, &len)) == HRING_IN_PROGRESS && now_s() - t0 < 5) {
  }
  HREQUIRE(r == HRING_SUCCESS && len == 5 && memcmp(buf, "hello", 5) == 0, "good frame: %d", r);
  hring__recv_release(p.c[0]);
  char garbage[HRING_TCP_FRAME_HDR];
  memset(garbage, 'g', sizeof garbage);
  raw_write(p.fd[1], garbage, sizeof garbage);
  HCHECK(until_error(p.c[0]) == HRING_ERR_REMOTE, "garbage after a good frame accepted");
  pair_close(&p);
}

HTEST(tcp_peer_close, 30) {
  /* Frames sent before the close are delivered, then the close is an
   * error naming the peer. */
  pair_t p;
  pair_open(&p, 4096, 4, 0);
  side_t b = {.c = p.c[1], .dir = 1, .nmsg = 3, .slot = 4096};
  side_t a = {.c = p.c[0], .dir = 0, .nmsg = 3, .slot = 4096};
  while (side_send(&b)) {
  }
  HCHECK(b.sent == 3, "sent %d", b.sent);
  hring__tcp_conn_free(p.c[1]);
  double t0 = now_s();
  while (a.recvd < 3 && now_s() - t0 < 5) side_recv(&a);
  HCHECK(a.recvd == 3 && a.bad == 0, "received %d of 3 before the close", a.recvd);
  HCHECK(until_error(p.c[0]) == HRING_ERR_REMOTE, "close not reported");
  const char *e = hring_last_error();
  HCHECK(strstr(e, "rank 1 (hostB) closed"), "message \"%s\"", e);
  hring__tcp_conn_free(p.c[0]);

  /* A close in the middle of a frame fails progress itself. */
  pair_open(&p, 4096, 4, 0);
  uint32_t hdr[HRING_TCP_FRAME_HDR / 4] = {100, HRING_TCP_FRAME_MAGIC};
  raw_write(p.fd[1], hdr, sizeof(hdr));
  raw_write(p.fd[1], "0123456789", 10);
  hring__tcp_conn_free(p.c[1]);
  hring_result_t r;
  t0 = now_s();
  while ((r = hring__conn_progress(p.c[0])) == HRING_SUCCESS && now_s() - t0 < 5) usleep(100);
  HCHECK(r == HRING_ERR_REMOTE, "truncated frame: %d", r);
  hring__tcp_conn_free(p.c[0]);

  /* Sending to a closed peer fails instead of queueing forever. */
  pair_open(&p, 4096, 4, 0);
  hring__tcp_conn_free(p.c[1]);
  a = (side_t){.c = p.c[0], .dir = 0, .nmsg = 1 << 20, .slot = 4096};
  t0 = now_s();
  r = HRING_SUCCESS;
  while (now_s() - t0 < 5) {
    void *buf;
    r = hring__send_get(p.c[0], &buf);
    if (r == HRING_SUCCESS) r = hring__send_post(p.c[0], 4096);
    if (r == HRING_IN_PROGRESS) r = hring__conn_progress(p.c[0]);
    if (r != HRING_SUCCESS && r != HRING_IN_PROGRESS) break;
  }
  HCHECK(r == HRING_ERR_REMOTE, "send to a closed peer: %d", r);
  hring__tcp_conn_free(p.c[0]);
}

HTEST(tcp_small_burst_then_close, 10) {
  /* Many small frames arrive in one burst while the receiver has only two
   * slots: they wait (partly read ahead) and come out in order, and the
   * close that follows them is reported only after the last one. */
  pair_t p;
  pair_open(&p, 4096, 2, 0);
  enum { NMSG = 60 };
  for (int i = 0; i < NMSG; i++) {
    void *buf;
    hring_result_t r;
    double t0 = now_s();
    while ((r = hring__send_get(p.c[1], &buf)) == HRING_IN_PROGRESS && now_s() - t0 < 5) {
    }
    HREQUIRE(r == HRING_SUCCESS, "send_get %d: %d", i, r);
    for (int j = 0; j < i % 23; j++) ((uint8_t *)buf)[j] = msg_byte(1, i, (size_t)j);
    HREQUIRE(hring__send_post(p.c[1], (size_t)(i % 23)) == HRING_SUCCESS, "post %d", i);
  }
  HREQUIRE(hring__conn_flush(p.c[1]) == HRING_SUCCESS, "flush: small frames fit the socket");
  hring__tcp_conn_free(p.c[1]);
  usleep(20000); /* everything, the close included, is in p.c[0]'s socket */
  for (int i = 0; i < NMSG; i++) {
    void *buf;
    size_t len;
    hring_result_t r;
    double t0 = now_s();
    while ((r = hring__recv_get(p.c[0], &buf, &len)) == HRING_IN_PROGRESS && now_s() - t0 < 5) {
    }
    HREQUIRE(r == HRING_SUCCESS, "message %d: %d %s", i, r, hring_last_error());
    HREQUIRE(len == (size_t)(i % 23), "message %d: length %zu", i, len);
    for (size_t j = 0; j < len; j++)
      HREQUIRE(((uint8_t *)buf)[j] == msg_byte(1, i, j), "message %d byte %zu", i, j);
    HREQUIRE(hring__conn_progress(p.c[0]) == HRING_SUCCESS, "close reported before message %d", i);
    hring__recv_release(p.c[0]);
  }
  HCHECK(until_error(p.c[0]) == HRING_ERR_REMOTE, "close not reported");
  hring__tcp_conn_free(p.c[0]);
}

HTEST(tcp_conn_from_fd_config, 10) {
  /* The configured slot size, lowered to the peer's when its blob says
   * so. */
  pair_t p;
  tcomm_init(&p.t[0], 0, 2, 5000);
  tcp_pair(p.fd, 0);
  memset(blob_table, 0, sizeof(blob_table));
  hring_conn_t *c = NULL;
  HREQUIRE(hring__tcp_conn_from_fd(&p.t[0].comm, 1, p.fd[0], &c) == HRING_SUCCESS, "%s",
           hring_last_error());
  HCHECK(c->slot_size == (size_t)hring__cfg_int(HRING_CFG_TCP_SLOT_SIZE) &&
             c->nslots == (int)hring__cfg_int(HRING_CFG_TCP_SLOTS),
         "slot %zu x %d", c->slot_size, c->nslots);
  HCHECK(c->ops == &hring__tcp_ops && c->peer == 1 && c->comm == &p.t[0].comm, "fields");
  hring__tcp_conn_free(c);
  hring_tcp_blob_t b = {
      .magic = HRING_TCP_BLOB_MAGIC, .version = HRING_TCP_VERSION, .slot_size = 8192};
  memcpy(hring__comm_blob(&p.t[0].comm, 1, HRING_TRANSPORT_TCP), &b, sizeof(b));
  HREQUIRE(hring__tcp_conn_from_fd(&p.t[0].comm, 1, p.fd[1], &c) == HRING_SUCCESS, "%s",
           hring_last_error());
  HCHECK(c->slot_size == 8192, "slot %zu, peer's is 8192", c->slot_size);
  hring__tcp_conn_free(c);
}

/* ---- set-up ---- */

typedef struct {
  tcomm_t *t;
  int npeers, peers[MAXR];
  pthread_barrier_t *bar;
  int skip_init; /* local_init was done by the test */
  hring_result_t init_r, conn_r;
  char msg[512];
} rank_arg_t;

static void *rank_main(void *p) {
  rank_arg_t *a = p;
  struct hring_comm *comm = &a->t->comm;
  if (!a->skip_init)
    a->init_r =
        hring__tcp_ops.local_init(comm, hring__comm_blob(comm, comm->rank, HRING_TRANSPORT_TCP));
  if (a->bar) pthread_barrier_wait(a->bar); /* the blob exchange */
  a->conn_r = a->init_r ? a->init_r : hring__tcp_ops.connect(comm, a->peers, a->npeers);
  snprintf(a->msg, sizeof(a->msg), "%s", hring_last_error());
  return NULL;
}

HTEST(tcp_setup_ranks, 30) {
  /* Three ranks, every pair connected; then a ring exchange both ways. */
  enum { N = 3 };
  memset(blob_table, 0, sizeof(blob_table));
  static tcomm_t t[N];
  rank_arg_t a[N];
  pthread_t th[N];
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, N);
  for (int r = 0; r < N; r++) {
    tcomm_init(&t[r], r, N, 10000);
    a[r] = (rank_arg_t){.t = &t[r], .bar = &bar};
    for (int p = 0; p < N; p++)
      if (p != r) a[r].peers[a[r].npeers++] = p;
    pthread_create(&th[r], NULL, rank_main, &a[r]);
  }
  for (int r = 0; r < N; r++) pthread_join(th[r], NULL);
  for (int r = 0; r < N; r++) {
    HREQUIRE(a[r].conn_r == HRING_SUCCESS, "rank %d: %d %s", r, a[r].conn_r, a[r].msg);
    for (int p = 0; p < N; p++)
      HCHECK((p == r) == (t[r].conns[p] == NULL), "rank %d conn to %d", r, p);
  }
  for (int r = 0; r < N; r++) {
    int next = (r + 1) % N;
    exchange(t[r].conns[next], t[next].conns[r], 40, t[r].conns[next]->slot_size, (uint64_t)r + 10);
  }
  for (int r = 0; r < N; r++) {
    HCHECK(hring__tcp_ops.after_barrier(&t[r].comm) == HRING_SUCCESS, "after_barrier");
    hring__tcp_ops.comm_close(&t[r].comm);
    for (int p = 0; p < N; p++) HCHECK(t[r].conns[p] == NULL, "conn %d->%d left", r, p);
    HCHECK(t[r].comm.tstate[HRING_TRANSPORT_TCP] == NULL, "state left");
  }
}

static int connect_to(const tcomm_t *t, int rank) {
  hring_tcp_blob_t b;
  memcpy(&b, hring__comm_blob((struct hring_comm *)&t->comm, rank, HRING_TRANSPORT_TCP), sizeof(b));
  struct sockaddr_in a = {
      .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons(b.port)};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  HREQUIRE(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect: %s",
           strerror(errno));
  return fd;
}

HTEST(tcp_setup_rejects_strangers, 30) {
  /* Rank 1 accepts while a silent stranger, a garbage sender and an
   * impostor with the wrong secret knock first; then the real rank 0
   * connects, and rank 1 must not wait for the strangers. */
  memset(blob_table, 0, sizeof(blob_table));
  static tcomm_t t0, t1, imp;
  tcomm_init(&t0, 0, 2, 5000);
  tcomm_init(&t1, 1, 2, 5000);
  tcomm_init(&imp, 0, 2, 5000);
  imp.comm.secret[0] ^= 1;
  struct hring_comm *c0 = &t0.comm, *c1 = &t1.comm;
  HREQUIRE(
      hring__tcp_ops.local_init(c0, hring__comm_blob(c0, 0, HRING_TRANSPORT_TCP)) == HRING_SUCCESS,
      "%s", hring_last_error());
  HREQUIRE(
      hring__tcp_ops.local_init(c1, hring__comm_blob(c1, 1, HRING_TRANSPORT_TCP)) == HRING_SUCCESS,
      "%s", hring_last_error());
  uint8_t imp_blob[HRING_TRANSPORT_BLOB];
  HREQUIRE(hring__tcp_ops.local_init(&imp.comm, imp_blob) == HRING_SUCCESS, "%s",
           hring_last_error());

  int silent = connect_to(&t1, 1);
  int garbage = connect_to(&t1, 1);
  raw_write(garbage, "GET / HTTP/1.0\r\n\r\nxxxxxxxxxxxxxxxxxxxxxx", 40);

  rank_arg_t a1 = {.t = &t1, .npeers = 1, .peers = {0}, .skip_init = 1};
  pthread_t th;
  double start = now_s();
  pthread_create(&th, NULL, rank_main, &a1);
  int one = 1;
  hring_result_t r = hring__tcp_ops.connect(&imp.comm, &one, 1);
  HCHECK(r == HRING_ERR_REMOTE, "impostor connected: %d", r);
  HCHECK(strstr(hring_last_error(), "refused our proof"), "impostor: \"%s\"", hring_last_error());
  HCHECK(imp.conns[1] == NULL, "impostor got a connection");
  r = hring__tcp_ops.connect(c0, &one, 1);
  HCHECK(r == HRING_SUCCESS, "rank 0: %d %s", r, hring_last_error());
  pthread_join(th, NULL);
  double took = now_s() - start;
  HREQUIRE(a1.conn_r == HRING_SUCCESS, "rank 1: %d %s", a1.conn_r, a1.msg);
  /* The strangers' per-connection deadline is 1.25 s here (a quarter of the
   * timeout); rank 1 finishes as soon as rank 0 is in. */
  HCHECK(took < 1.0, "set-up took %.2f s: waited for a stranger?", took);
  HREQUIRE(t0.conns[1] && t1.conns[0], "connections missing");

  /* The strangers were dropped. */
  char b[64];
  HCHECK(read(garbage, b, sizeof(b)) <= 0, "garbage sender still connected");
  struct timeval tv = {.tv_sec = 3};
  setsockopt(silent, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  HCHECK(read(silent, b, sizeof(b)) == 0, "silent stranger not closed");
  close(silent);
  close(garbage);

  exchange(t0.conns[1], t1.conns[0], 50, t0.conns[1]->slot_size, 7);
  hring__tcp_ops.comm_close(c0);
  hring__tcp_ops.comm_close(c1);
  hring__tcp_ops.comm_close(&imp.comm);
}

HTEST(tcp_setup_timeout, 10) {
  /* Rank 1 waits for a rank 0 that never comes: a timeout naming it, within
   * the deadline. */
  memset(blob_table, 0, sizeof(blob_table));
  static tcomm_t t1;
  tcomm_init(&t1, 1, 2, 300);
  rank_arg_t a1 = {.t = &t1, .npeers = 1, .peers = {0}};
  double start = now_s();
  rank_main(&a1);
  double took = now_s() - start;
  HCHECK(a1.conn_r == HRING_ERR_TIMEOUT, "got %d", a1.conn_r);
  HCHECK(strstr(a1.msg, "rank 0 (hostA)"), "message \"%s\"", a1.msg);
  HCHECK(took >= 0.29 && took < 2.0, "took %.2f s for a 0.3 s timeout", took);
  hring__tcp_ops.comm_close(&t1.comm);

  /* Rank 0 connecting to a rank 1 whose listener is gone: the same. */
  static tcomm_t t0;
  tcomm_init(&t0, 0, 2, 300);
  tcomm_init(&t1, 1, 2, 300);
  HREQUIRE(hring__tcp_ops.local_init(
               &t1.comm, hring__comm_blob(&t1.comm, 1, HRING_TRANSPORT_TCP)) == HRING_SUCCESS,
           "%s", hring_last_error());
  hring__tcp_ops.comm_close(&t1.comm);
  rank_arg_t a0 = {.t = &t0, .npeers = 1, .peers = {1}};
  rank_main(&a0);
  HCHECK(a0.conn_r == HRING_ERR_TIMEOUT, "got %d", a0.conn_r);
  HCHECK(strstr(a0.msg, "rank 1 (hostB)"), "message \"%s\"", a0.msg);
  hring__tcp_ops.comm_close(&t0.comm);
}

/* A live peer is never taken for a vanished host (the health check looks
 * for HRING_SOCK_SILENCE_MS of silence, core/socket.h): neither on a quiet
 * connection, where only keepalive probes keep it heard, nor on one whose
 * receiver has stopped reading and closed its window, where the kernel's
 * TCP_USER_TIMEOUT at 4 s would have ended it.  Runs 12 s: the kernel
 * backs its window probes off (0.2, 0.4, 0.8, 1.6, 3.2, 6.4 s apart), so
 * between the probes sent 6.2 and 12.6 s into the closed window the peer
 * is silent for more than 4 s although it is alive. */
HTEST(tcp_live_peer_not_silent, 40) {
  tcomm_t t[2];
  hring_conn_t *quiet[2], *full[2];
  int qfd[2], ffd[2];
  tcomm_init(&t[0], 0, 2, 60000);
  tcomm_init(&t[1], 1, 2, 60000);
  tcp_pair(qfd, 0);
  tcp_pair(ffd, 16384);
  for (int s = 0; s < 2; s++) {
    HREQUIRE(hring__tcp_conn_create(&t[s].comm, 1 - s, qfd[s], 8192, 4, &quiet[s]) ==
                 HRING_SUCCESS, "conn_create: %s", hring_last_error());
    HREQUIRE(hring__tcp_conn_create(&t[s].comm, 1 - s, ffd[s], 8192, 4, &full[s]) ==
                 HRING_SUCCESS, "conn_create: %s", hring_last_error());
  }
  /* Rank 0 fills its FIFO toward rank 1, which never reads. */
  side_t a = {.c = full[0], .dir = 0, .nmsg = 1 << 20, .slot = 8192};
  int posted = 0;
  while (posted < 10000 && side_send(&a)) posted++;
  HREQUIRE(posted < 10000, "the FIFO never filled");
  int max_quiet = -1, max_full = -1, full_uncounted = 0;
  double t0 = now_s();
  while (now_s() - t0 < 12.0) {
    hring_conn_t *all[4] = {quiet[0], quiet[1], full[0], full[1]};
    for (int i = 0; i < 4; i++)
      for (int pass = 1; pass >= 0; pass--) {
        hring_result_t r = hring__tcp_health(all[i], pass);
        HREQUIRE(r == HRING_SUCCESS, "after %.1f s a live peer failed the health check: %s",
                 now_s() - t0, hring_last_error());
      }
    int q = hring__sock_silent_ms(qfd[0]), f = hring__sock_silent_ms(ffd[0]);
    if (q > max_quiet) max_quiet = q;
    if (f > max_full) max_full = f;
    if (f < 0) full_uncounted++;
    usleep(100000);
  }
  /* Keepalive replies keep a quiet peer heard from every 2 s or so. */
  HCHECK(max_quiet >= 0 && max_quiet < HRING_SOCK_SILENCE_MS,
         "the quiet connection's silence reached %d ms", max_quiet);
  printf("  longest silence of a live peer: %d ms quiet, %d ms with a closed window (then "
         "not counted at %d of the polls)\n", max_quiet, max_full, full_uncounted);
  for (int s = 0; s < 2; s++) {
    hring__tcp_conn_free(quiet[s]);
    hring__tcp_conn_free(full[s]);
  }
}
