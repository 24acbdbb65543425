/*
 * tcp_data.c - the tcp transport's data path.
 *
 * A connection is one stream socket carrying both directions.  Each side has
 * nslots send staging slots and nslots receive slots of slot_size bytes.  The
 * algorithm fills a send slot in place (send_get/send_post) and reads a
 * received message in place (recv_get/recv_release), so the only copies are
 * the kernel's, into and out of the socket.
 *
 * Wire format: every message is one frame, a 64-byte header followed by the
 * payload.  The header holds the payload length and a tag, the frame magic
 * xor the frame's sequence number on this direction of the connection: a
 * stream that lost step (or a peer that is not hring) is caught at the first
 * header instead of being read as data.  Header fields are in host byte
 * order, like the payload itself (all ranks must share one byte order, which
 * the set-up handshake checks).
 *
 * Everything is non-blocking and driven by progress(), without a thread:
 * - writing: all posted frames are handed to one sendmsg (header and payload
 *   iovecs of every queued frame), partial writes resume at a byte offset;
 * - reading: one recvmsg reads the rest of the current payload straight into
 *   its slot together with the next frame's header, and never past it, so a
 *   large payload is never copied again; in the steady state that is one
 *   system call per frame.  A read that starts at a header (after an idle
 *   moment) also takes up to a page beyond it into a small stage, from which
 *   small frames are copied into their slots: one call per burst of small
 *   frames instead of two per frame.
 * An idle progress() costs one recvmsg that returns EAGAIN.
 *
 * Notices (wire.h) are found even when the receive slots are full.  A
 * failed peer's notice is the last frame it sends, so it can sit behind
 * frames this rank has no slot for yet; and when the peer's process exits
 * with data of ours still unread, its socket resets, which fails our next
 * write although what it sent before is still readable here.  So, on a
 * write error, a reset or an end of stream, and at a health poll that finds
 * the connection stuck behind full slots, the socket is read ahead into a
 * spill buffer (at most 4 MiB, or the receive slots' size) and the
 * frame headers there are scanned for a notice (look_ahead).  Spilled
 * bytes are the stream's continuation: the regular path takes them, in
 * order, before it reads the socket again.  Reading ahead also opens the
 * receive window, so a notice still in the peer's socket can come in.
 *
 * A peer whose host vanishes (power loss: no FIN, no RST) is found by the
 * health poll: the kernel's keepalive keeps a live peer's acknowledgements
 * coming, and silence of HRING_SOCK_SILENCE_MS on a connection is reported
 * as that rank's death (core/socket.h has the arithmetic).
 *
 * Buffers are allocated on first use (send slots at the first send_get,
 * receive slots at the first frame), so connections a communicator opens but
 * never uses cost no memory.
 */
#include <errno.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <linux/sockios.h>
#include <unistd.h>

#include "core/comm.h"
#include "core/error.h"
#include "core/log.h"
#include "core/socket.h"
#include "transport/tcp.h"
#include "transport/wire.h"

/* Slots are handed out 64-byte aligned (cache line, and what vector kernels
 * want); the whole block is page aligned, so page-multiple slots are too. */
#define TCP_SLOT_ALIGN 64
#define TCP_BLOCK_ALIGN 4096
/* iovecs per sendmsg: two per frame; more frames than this wait for the next
 * call, which happens at once since the previous one was not short. */
#define TCP_IOV_MAX 64
/* Bytes a read that starts at a frame header takes beyond it (see
 * tcp_read); a page, so a small frame and a few more fit. */
#define TCP_STAGE 4096
/* How long a failing rank waits for socket room for its notice: a peer that
 * reads nothing for this long learns of the failure by the close alone. */
#define NOTICE_WAIT_MS 100
/* First allocation of a spill buffer (it doubles up to spill_max), and the
 * most it holds unless the receive slots hold more. */
#define TCP_SPILL_MIN (64 * 1024)
#define TCP_SPILL_MAX (4 * 1024 * 1024)

typedef struct {
  uint32_t len;
  uint32_t tag;
  /* The sender's collective (wire.h); in a notice frame (len 0), kind says
   * which notice and op carries the failed rank's result code. */
  hring_wire_hdr_t w;
  /* Padding to a cache line keeps every payload at the same alignment in
   * the byte stream as in its slot: the kernel's copies into and out of the
   * socket are much slower when source and destination are misaligned to
   * each other (measured on 2 ranks over loopback: with 8-byte headers
   * 1.1-1.3 GB/s busbw at 1-64 MiB, with 64-byte ones 2.3-3.5). */
  uint8_t pad[8];
} tcp_frame_hdr_t;

#define TCP_HDR ((size_t)sizeof(tcp_frame_hdr_t))
_Static_assert(sizeof(tcp_frame_hdr_t) == HRING_TCP_FRAME_HDR, "frame header size");

typedef struct {
  hring_conn_t conn; /* first, so one allocation holds both */
  int fd;
  size_t stride;      /* bytes between slots */
  hring_result_t err; /* sticky: once broken, every call returns it */
  int eof;            /* the peer closed its end (seen by a read of 0) */
  int vanished;       /* err is the peer's silence: a death, not a notice */
  int shut;           /* a failure notice was queued and the socket shut */
  int why_logged;     /* the peer's notice has been reported once */

  /* Send FIFO: frames [s_sent, s_posted) are queued; s_off bytes (header
   * included) of frame s_sent are already in the socket. */
  uint8_t *sbuf;
  tcp_frame_hdr_t *shdr;
  uint64_t s_posted, s_sent;
  size_t s_off;

  /* Receive FIFO: frames [r_released, r_done) are complete in their slots.
   * The frame being read is r_done: r_in_payload says its header is complete
   * (its length in r_cur_len, r_pay_got bytes of payload read); otherwise
   * r_hdr_got bytes of its header are in r_hdr. */
  uint8_t *rbuf;
  uint32_t *rlen;
  hring_wire_hdr_t *rwire;  /* the header of each received frame */
  hring_wire_hdr_t r_cur_w;  /* the header of the frame being read (r_hdr
                               may already hold the next one's) */
  int peer_state;           /* HRING_PEER_*, from its notice */
  int32_t peer_code;
  char peer_why[192];       /* the text of a failure notice */
  uint64_t r_done, r_released;
  tcp_frame_hdr_t r_hdr;
  size_t r_hdr_got;
  int r_in_payload;
  uint32_t r_cur_len;
  size_t r_pay_got;
  /* Bytes read past a header that are not yet in their place:
   * stage[st_off, st_len). */
  size_t st_off, st_len;
  /* Bytes read ahead of the slots (look_ahead), after the stage's in the
   * stream: spill[sp_off, sp_len) of sp_cap. */
  uint8_t *spill;
  size_t sp_off, sp_len, sp_cap;
  /* r_released at the previous health poll (stuck behind full slots since
   * then when it has not moved), and whether there was one. */
  uint64_t la_released;
  int la_polled;
  uint8_t stage[TCP_STAGE];
} tcp_conn_t;

static const char *peer_host(const hring_conn_t *c) {
  const struct hring_comm *comm = c->comm;
  if (comm && comm->peers && c->peer >= 0 && c->peer < comm->nranks)
    return comm->peers[c->peer].host;
  return "?";
}

/* Marks the connection broken (sticky) and sets the thread's last error.
 * err_no > 0 appends the errno text. */
static hring_result_t conn_fail(tcp_conn_t *t, hring_result_t code, int err_no, const char *fmt,
                                ...) __attribute__((format(printf, 4, 5)));
static hring_result_t conn_fail(tcp_conn_t *t, hring_result_t code, int err_no, const char *fmt,
                                ...) {
  char msg[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  t->err = code;
  if (err_no > 0) return hring__err_errno(code, err_no, "%s", msg);
  return hring__err(code, "%s", msg);
}

/* The peer left or failed (its notice), or closed without a notice. */
static hring_result_t peer_gone(tcp_conn_t *t) {
  if (t->peer_state == HRING_PEER_LEFT)
    return hring__err(HRING_ERR_REMOTE, "rank %d (%s) left: it destroyed its communicator",
                      t->conn.peer, peer_host(&t->conn));
  if (t->peer_state == HRING_PEER_FAILED) {
    char msg[320];
    snprintf(msg, sizeof msg, "rank %d (%s) failed (%s): %s", t->conn.peer, peer_host(&t->conn),
             hring_strerror((hring_result_t)t->peer_code),
             t->peer_why[0] ? t->peer_why : "see its log");
    /* Every health poll and every search for the cause asks again: the
     * notice is logged once, and not set again while the thread's last
     * error already says it. */
    if (t->why_logged && strcmp(hring_last_error(), msg) == 0) return HRING_ERR_REMOTE;
    t->why_logged = 1;
    return hring__err(HRING_ERR_REMOTE, "%s", msg);
  }
  return hring__err(HRING_ERR_REMOTE, "rank %d (%s) closed its connection without leaving: "
                    "it died or was killed", t->conn.peer, peer_host(&t->conn));
}

static void look_ahead(tcp_conn_t *t);

/* The connection broke (a write error, a reset, or an end of stream with
 * something left half-way).  The cause may still be in the socket: read
 * what it holds, past full slots, before deciding. */
static hring_result_t conn_closed(tcp_conn_t *t) {
  if (t->peer_state == HRING_PEER_LIVE) look_ahead(t);
  if (t->peer_state == HRING_PEER_FAILED) return peer_gone(t);
  return conn_fail(t, HRING_ERR_REMOTE, 0, "connection to rank %d (%s) closed: peer died?",
                   t->conn.peer, peer_host(&t->conn));
}

/* Nothing heard from the peer's host, not even an acknowledgement, for
 * `ms` (-1: the kernel gave up on it; its timers say how long). */
static hring_result_t conn_silent(tcp_conn_t *t, int ms) {
  t->vanished = 1;
  if (ms < 0)
    return conn_fail(t, HRING_ERR_REMOTE, ETIMEDOUT,
                     "rank %d (%s) stopped answering: its host acknowledged nothing before the "
                     "kernel gave up on the connection (host down or network cut?)",
                     t->conn.peer, peer_host(&t->conn));
  return conn_fail(t, HRING_ERR_REMOTE, 0,
                   "rank %d (%s) stopped answering: its host has sent nothing, not even a tcp "
                   "acknowledgement, for %d ms (host down or network cut?)",
                   t->conn.peer, peer_host(&t->conn), ms);
}

static hring_result_t conn_io_error(tcp_conn_t *t, int err_no, const char *what) {
  if (err_no == EPIPE || err_no == ECONNRESET) return conn_closed(t);
  if (err_no == ETIMEDOUT || err_no == EHOSTUNREACH) return conn_silent(t, -1);
  return conn_fail(t, HRING_ERR_REMOTE, err_no, "tcp %s rank %d (%s) failed", what, t->conn.peer,
                   peer_host(&t->conn));
}

static inline uint8_t *slot_of(const tcp_conn_t *t, uint8_t *base, uint64_t seq) {
  return base + (size_t)(seq % (uint64_t)t->conn.nslots) * t->stride;
}

static void *block_alloc(size_t bytes) {
  void *p = NULL;
  if (posix_memalign(&p, TCP_BLOCK_ALIGN, bytes) != 0) return NULL;
  return p;
}

static hring_result_t alloc_send(tcp_conn_t *t) {
  size_t n = (size_t)t->conn.nslots;
  t->sbuf = block_alloc(n * t->stride);
  if (!t->shdr) t->shdr = calloc(n, sizeof(*t->shdr)); /* a notice may have made it */
  if (!t->sbuf || !t->shdr) {
    free(t->sbuf);
    t->sbuf = NULL;
    return hring__err(HRING_ERR_NO_MEMORY,
                      "tcp: no memory for %d send slots of %zu bytes (rank %d)", t->conn.nslots,
                      t->conn.slot_size, t->conn.peer);
  }
  return HRING_SUCCESS;
}

static hring_result_t alloc_recv(tcp_conn_t *t) {
  size_t n = (size_t)t->conn.nslots;
  t->rbuf = block_alloc(n * t->stride);
  t->rlen = calloc(n, sizeof(*t->rlen));
  t->rwire = calloc(n, sizeof(*t->rwire));
  if (!t->rbuf || !t->rlen || !t->rwire) {
    free(t->rbuf);
    free(t->rlen);
    free(t->rwire);
    t->rbuf = NULL;
    t->rlen = NULL;
    t->rwire = NULL;
    return hring__err(HRING_ERR_NO_MEMORY,
                      "tcp: no memory for %d receive slots of %zu bytes (rank %d)", t->conn.nslots,
                      t->conn.slot_size, t->conn.peer);
  }
  return HRING_SUCCESS;
}

hring_result_t hring__tcp_conn_create(struct hring_comm *comm, int peer, int fd, size_t slot_size,
                                      int nslots, hring_conn_t **out) {
  if (!out || fd < 0 || slot_size == 0 || slot_size > UINT32_MAX || nslots <= 0)
    return hring__err(HRING_ERR_INTERNAL,
                      "tcp: bad connection parameters (fd %d, slot size %zu, %d slots)", fd,
                      slot_size, nslots);
  size_t stride = (slot_size + TCP_SLOT_ALIGN - 1) / TCP_SLOT_ALIGN * TCP_SLOT_ALIGN;
  if (stride > SIZE_MAX / (size_t)nslots)
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "tcp: %d slots of %zu bytes overflow", nslots,
                      slot_size);
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return hring__err_errno(HRING_ERR_SYSTEM, errno,
                            "tcp: cannot make the socket to rank %d non-blocking", peer);
  /* The 4 s of silence are checked by the health poll (conn_silent), not
   * left to the kernel's TCP_USER_TIMEOUT: on Linux that timeout also ends a
   * connection whose peer keeps its receive window closed, which is what a
   * live rank does when it reaches a collective a few seconds after its
   * peers (measured on 6.18: closed after exactly the timeout, although the
   * peer answered every window probe).  The kernel's bound is therefore the
   * communicator's own timeout, a backstop for ranks that stop polling. */
  int64_t ut = comm && comm->timeout_ms > 0 ? comm->timeout_ms : 0;
  hring__sock_keepalive(fd, ut > INT_MAX ? INT_MAX : (int)ut);
  tcp_conn_t *t = calloc(1, sizeof(*t));
  if (!t) return hring__err(HRING_ERR_NO_MEMORY, "tcp: no memory for a connection");
  t->conn.ops = &hring__tcp_ops;
  t->conn.comm = comm;
  t->conn.peer = peer;
  t->conn.slot_size = slot_size;
  t->conn.nslots = nslots;
  t->conn.priv = t;
  t->fd = fd;
  t->stride = stride;
  *out = &t->conn;
  return HRING_SUCCESS;
}

void hring__tcp_conn_free(hring_conn_t *c) {
  if (!c) return;
  tcp_conn_t *t = c->priv;
  if (t->fd >= 0) close(t->fd);
  free(t->sbuf);
  free(t->shdr);
  free(t->rbuf);
  free(t->rlen);
  free(t->rwire);
  free(t->spill);
  free(t);
}

/* Writes as much of the queued frames as the socket takes: 0, or the errno
 * of a failed write. */
static int write_frames(tcp_conn_t *t) {
  while (t->s_sent < t->s_posted) {
    struct iovec iov[TCP_IOV_MAX];
    int niov = 0;
    size_t want = 0, off = t->s_off;
    for (uint64_t f = t->s_sent; f < t->s_posted && niov + 2 <= TCP_IOV_MAX; f++) {
      tcp_frame_hdr_t *h = &t->shdr[f % (uint64_t)t->conn.nslots];
      if (off < TCP_HDR) {
        iov[niov++] = (struct iovec){(uint8_t *)h + off, TCP_HDR - off};
        want += TCP_HDR - off;
        off = TCP_HDR;
      }
      if (h->len > off - TCP_HDR) {
        size_t done = off - TCP_HDR;
        iov[niov++] = (struct iovec){slot_of(t, t->sbuf, f) + done, h->len - done};
        want += h->len - done;
      }
      off = 0;
    }
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
    ssize_t w = sendmsg(t->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return errno;
    }
    /* Retire the frames the write completed. */
    size_t n = (size_t)w;
    while (n > 0) {
      size_t total = TCP_HDR + t->shdr[t->s_sent % (uint64_t)t->conn.nslots].len;
      size_t left = total - t->s_off;
      if (n < left) {
        t->s_off += n;
        break;
      }
      n -= left;
      t->s_off = 0;
      t->s_sent++;
    }
    if ((size_t)w < want) return 0; /* socket full */
  }
  return 0;
}

static hring_result_t tcp_write(tcp_conn_t *t) {
  int e = write_frames(t);
  return e ? conn_io_error(t, e, "send to") : HRING_SUCCESS;
}

/* Checks the header in r_hdr and starts its payload. */
static hring_result_t start_payload(tcp_conn_t *t) {
  uint32_t expect = HRING_TCP_FRAME_MAGIC ^ (uint32_t)t->r_done;
  if (t->r_hdr.tag != expect)
    return conn_fail(t, HRING_ERR_REMOTE, 0,
                     "tcp: bad frame header from rank %d (%s): tag 0x%08x, expected 0x%08x "
                     "(not an hring peer, or the stream lost step)",
                     t->conn.peer, peer_host(&t->conn), t->r_hdr.tag, expect);
  if (t->r_hdr.len > t->conn.slot_size)
    return conn_fail(t, HRING_ERR_REMOTE, 0,
                     "tcp: frame of %u bytes from rank %d (%s) exceeds the slot size %zu",
                     t->r_hdr.len, t->conn.peer, peer_host(&t->conn), t->conn.slot_size);
  if (t->r_hdr.w.kind == HRING_WIRE_BYE || t->r_hdr.w.kind == HRING_WIRE_FAIL) {
    t->peer_state = t->r_hdr.w.kind == HRING_WIRE_BYE ? HRING_PEER_LEFT : HRING_PEER_FAILED;
    t->peer_code = (int32_t)t->r_hdr.w.op;
  }
  t->r_cur_len = t->r_hdr.len;
  t->r_cur_w = t->r_hdr.w;
  t->r_pay_got = 0;
  t->r_hdr_got = 0;
  t->r_in_payload = 1;
  return HRING_SUCCESS;
}

static void finish_frame(tcp_conn_t *t) {
  if (t->r_cur_w.kind == HRING_WIRE_FAIL) {
    size_t n = t->r_cur_len < sizeof t->peer_why - 1 ? t->r_cur_len : sizeof t->peer_why - 1;
    memcpy(t->peer_why, slot_of(t, t->rbuf, t->r_done), n);
    t->peer_why[n] = '\0';
  }
  t->rlen[t->r_done % (uint64_t)t->conn.nslots] = t->r_cur_len;
  t->rwire[t->r_done % (uint64_t)t->conn.nslots] = t->r_cur_w;
  t->r_done++;
  t->r_in_payload = 0;
}

/* Moves bytes read ahead (buf[*off, len): the stage or the spill) into the
 * frame being read (header, then payload into its slot); stops when no
 * receive slot is free. */
static hring_result_t feed(tcp_conn_t *t, const uint8_t *buf, size_t *off, size_t len) {
  while (*off < len) {
    const uint8_t *p = buf + *off;
    size_t avail = len - *off, k;
    if (!t->r_in_payload) {
      k = TCP_HDR - t->r_hdr_got < avail ? TCP_HDR - t->r_hdr_got : avail;
      memcpy((uint8_t *)&t->r_hdr + t->r_hdr_got, p, k);
      t->r_hdr_got += k;
      *off += k;
      if (t->r_hdr_got == TCP_HDR) HRING_CHECK(start_payload(t));
      continue;
    }
    if (t->r_done - t->r_released >= (uint64_t)t->conn.nslots) return HRING_SUCCESS;
    if (!t->rbuf) HRING_CHECK(alloc_recv(t));
    k = t->r_cur_len - t->r_pay_got < avail ? t->r_cur_len - t->r_pay_got : avail;
    memcpy(slot_of(t, t->rbuf, t->r_done) + t->r_pay_got, p, k);
    t->r_pay_got += k;
    *off += k;
    if (t->r_pay_got == t->r_cur_len) finish_frame(t);
  }
  return HRING_SUCCESS;
}

/* Bytes read from the socket that the frames have not taken yet. */
static size_t buffered(const tcp_conn_t *t) {
  return (t->st_len - t->st_off) + (t->sp_len - t->sp_off);
}

/* Copies n bytes at offset off of the buffered bytes (stage, then spill). */
static void buffered_copy(const tcp_conn_t *t, size_t off, void *dst, size_t n) {
  uint8_t *d = dst;
  size_t st = t->st_len - t->st_off;
  if (off < st) {
    size_t k = st - off < n ? st - off : n;
    memcpy(d, t->stage + t->st_off + off, k);
    d += k;
    n -= k;
    off = st;
  }
  if (n) memcpy(d, t->spill + t->sp_off + (off - st), n);
}

/* Looks for a notice among the buffered bytes without taking them: walks
 * the frame headers from where the frame being read stands.  Pure reading;
 * the regular path checks the same frames again when it gets to them, and
 * reports a bad one. */
static void scan_notice(tcp_conn_t *t) {
  if (t->peer_state != HRING_PEER_LIVE) return;
  size_t total = buffered(t), off = 0;
  uint64_t seq = t->r_done;
  tcp_frame_hdr_t h;
  if (t->r_in_payload) {
    off = t->r_cur_len - t->r_pay_got;
    seq++;
  }
  size_t have = t->r_in_payload ? 0 : t->r_hdr_got; /* header bytes already in r_hdr */
  if (have) memcpy(&h, &t->r_hdr, have);
  for (;;) {
    if (off > total || total - off < TCP_HDR - have) return;
    buffered_copy(t, off, (uint8_t *)&h + have, TCP_HDR - have);
    off += TCP_HDR - have;
    have = 0;
    if (h.tag != (HRING_TCP_FRAME_MAGIC ^ (uint32_t)seq) || h.len > t->conn.slot_size) return;
    if (h.w.kind == HRING_WIRE_BYE || h.w.kind == HRING_WIRE_FAIL) {
      if (total - off < h.len) return; /* its text is still on the way */
      if (h.w.kind == HRING_WIRE_FAIL) {
        size_t n = h.len < sizeof t->peer_why - 1 ? h.len : sizeof t->peer_why - 1;
        buffered_copy(t, off, t->peer_why, n);
        t->peer_why[n] = '\0';
      }
      t->peer_code = (int32_t)h.w.op;
      t->peer_state = h.w.kind == HRING_WIRE_BYE ? HRING_PEER_LEFT : HRING_PEER_FAILED;
      return;
    }
    off += h.len;
    seq++;
  }
}

/* At most this many bytes wait in the spill: what a socket typically holds
 * on both ends (the bytes a failed peer's notice can be behind), or the
 * receive slots' size when that is larger.  The spill is allocated only
 * when a connection is stuck, and grows with what arrives. */
static size_t spill_max(const tcp_conn_t *t) {
  size_t m = (size_t)t->conn.nslots * t->stride;
  return m < TCP_SPILL_MAX ? TCP_SPILL_MAX : m;
}

/* Reads what the socket holds into the spill (bounded by spill_max), then
 * scans the buffered bytes for a notice.  A reset ends the stream like a
 * close: what the peer sent before it has been read above.  Other errors
 * are left for the regular path, which meets them once the spill is
 * taken. */
static void look_ahead(tcp_conn_t *t) {
  size_t max = spill_max(t);
  while (!t->eof) {
    if (t->sp_off > 0) {
      memmove(t->spill, t->spill + t->sp_off, t->sp_len - t->sp_off);
      t->sp_len -= t->sp_off;
      t->sp_off = 0;
    }
    if (t->sp_len == t->sp_cap) {
      if (t->sp_cap >= max) break;
      size_t cap = t->sp_cap ? 2 * t->sp_cap : TCP_SPILL_MIN;
      if (cap > max) cap = max;
      uint8_t *p = realloc(t->spill, cap);
      if (!p) break;
      t->spill = p;
      t->sp_cap = cap;
    }
    ssize_t r = recv(t->fd, t->spill + t->sp_len, t->sp_cap - t->sp_len, MSG_DONTWAIT);
    if (r > 0) {
      t->sp_len += (size_t)r;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r == 0 || errno == ECONNRESET || errno == EPIPE) t->eof = 1;
    break;
  }
  scan_notice(t);
}

/* Large frames are acknowledged at once.  Ranks that send to each other at
 * the same time look to the kernel like a request and its reply, and it
 * delays its ACKs to ride on the reply (up to 40 ms).  A sender that has
 * filled its congestion window then waits for them: with every rank of 4
 * emulated hosts sending 64 KiB at once (recursive doubling), calls took
 * 5-20 ms instead of 2.5, the kernel counting tens of delayed ACKs and
 * spurious loss probes per host.  TCP_QUICKACK is not sticky, so it is set
 * again after each read of a frame's payload; frames below TCP_QUICKACK_MIN
 * skip it (it cost 2-3 us on an 8-byte allreduce over loopback and 3-5 us
 * at 4 KiB, where the ACKs ride on the replies anyway and a frame fits the
 * initial congestion window). */
#define TCP_QUICKACK_MIN (16 * 1024)
static void quickack(tcp_conn_t *t) {
  int one = 1;
  (void)setsockopt(t->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

/* Reads frames into free receive slots until the socket is drained or no
 * slot is free.  A payload whose header is known is read straight into its
 * slot together with the next header, and never past it; a read that starts
 * at a header also takes up to TCP_STAGE bytes after it into the stage, so a
 * small frame costs one system call (and several back-to-back ones too). */
static hring_result_t tcp_read(tcp_conn_t *t) {
  int drained = 0;
  for (;;) {
    if (t->st_off < t->st_len) {
      HRING_CHECK(feed(t, t->stage, &t->st_off, t->st_len));
      if (t->st_off < t->st_len) return HRING_SUCCESS; /* waiting for a slot */
      t->st_off = t->st_len = 0;
    }
    if (t->sp_off < t->sp_len) {
      HRING_CHECK(feed(t, t->spill, &t->sp_off, t->sp_len));
      if (t->sp_off < t->sp_len) return HRING_SUCCESS; /* waiting for a slot */
      t->sp_off = t->sp_len = 0;
    }
    if (t->r_in_payload) {
      if (t->r_done - t->r_released >= (uint64_t)t->conn.nslots) return HRING_SUCCESS;
      if (!t->rbuf) HRING_CHECK(alloc_recv(t));
      if (t->r_pay_got == t->r_cur_len) { /* zero-length frame */
        finish_frame(t);
        continue;
      }
    }
    if (drained || t->eof) return HRING_SUCCESS;
    struct iovec iov[2];
    size_t first;
    if (t->r_in_payload) {
      first = t->r_cur_len - t->r_pay_got;
      iov[0] = (struct iovec){slot_of(t, t->rbuf, t->r_done) + t->r_pay_got, first};
      iov[1] = (struct iovec){&t->r_hdr, TCP_HDR};
    } else {
      first = TCP_HDR - t->r_hdr_got;
      iov[0] = (struct iovec){(uint8_t *)&t->r_hdr + t->r_hdr_got, first};
      iov[1] = (struct iovec){t->stage, TCP_STAGE};
    }
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    ssize_t r = recvmsg(t->fd, &msg, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return HRING_SUCCESS;
      return conn_io_error(t, errno, "receive from");
    }
    if (r == 0) {
      t->eof = 1;
      return HRING_SUCCESS;
    }
    size_t n = (size_t)r, k = n < first ? n : first;
    if (t->r_in_payload && t->r_cur_len >= TCP_QUICKACK_MIN) quickack(t);
    drained = n < first + iov[1].iov_len;
    if (t->r_in_payload) {
      /* Payload, then possibly (part of) the next header. */
      t->r_pay_got += k;
      if (t->r_pay_got == t->r_cur_len) finish_frame(t);
      t->r_hdr_got = n - k;
      if (t->r_hdr_got == TCP_HDR) HRING_CHECK(start_payload(t));
    } else {
      /* Header, then possibly staged bytes after it. */
      t->r_hdr_got += k;
      t->st_off = 0;
      t->st_len = n - k;
      if (t->r_hdr_got == TCP_HDR) HRING_CHECK(start_payload(t));
    }
  }
}

/* Bytes of a frame were received, but not the whole frame.  Only known
 * once every buffered byte is taken (look_ahead may see the end of the
 * stream while frames still wait for slots). */
static int partial_frame(const tcp_conn_t *t) {
  if (buffered(t)) return 0;
  if (t->r_in_payload) return t->r_pay_got < t->r_cur_len;
  return t->r_hdr_got > 0;
}

hring_result_t hring__tcp_progress(hring_conn_t *c) {
  tcp_conn_t *t = c->priv;
  if (t->err) return t->err;
  if (t->s_sent < t->s_posted) HRING_CHECK(tcp_write(t));
  HRING_CHECK(tcp_read(t));
  /* A peer that closed at a frame boundary may simply be done (its last
   * frames are still delivered); it is an error only when something is left
   * half-way: a partial frame in, or frames it will never read. */
  if (t->eof && (partial_frame(t) || t->s_sent < t->s_posted)) return conn_closed(t);
  return HRING_SUCCESS;
}

hring_result_t hring__tcp_flush(hring_conn_t *c) {
  tcp_conn_t *t = c->priv;
  if (t->err) return t->err;
  if (t->s_sent < t->s_posted) {
    HRING_CHECK(tcp_write(t));
    if (t->eof && t->s_sent < t->s_posted) return conn_closed(t);
  }
  return t->s_sent == t->s_posted ? HRING_SUCCESS : HRING_IN_PROGRESS;
}

hring_result_t hring__tcp_send_get(hring_conn_t *c, void **buf) {
  tcp_conn_t *t = c->priv;
  if (t->err) return t->err;
  if (t->s_posted - t->s_sent >= (uint64_t)c->nslots) {
    HRING_CHECK(hring__tcp_progress(c));
    if (t->s_posted - t->s_sent >= (uint64_t)c->nslots) return HRING_IN_PROGRESS;
  }
  if (!t->sbuf) HRING_CHECK(alloc_send(t));
  *buf = slot_of(t, t->sbuf, t->s_posted);
  return HRING_SUCCESS;
}

hring_result_t hring__tcp_send_post(hring_conn_t *c, size_t len) {
  tcp_conn_t *t = c->priv;
  if (t->err) return t->err;
  if (len > c->slot_size || !t->sbuf || t->s_posted - t->s_sent >= (uint64_t)c->nslots)
    return hring__err(HRING_ERR_INTERNAL,
                      "tcp: send_post of %zu bytes to rank %d without a slot (slot size %zu)", len,
                      c->peer, c->slot_size);
  tcp_frame_hdr_t *h = &t->shdr[t->s_posted % (uint64_t)c->nslots];
  h->len = (uint32_t)len;
  h->tag = HRING_TCP_FRAME_MAGIC ^ (uint32_t)t->s_posted;
  h->w = c->comm ? c->comm->coll : (hring_wire_hdr_t){0};
  t->s_posted++;
  /* Hand the frame to the kernel now: it moves it while the caller fills the
   * next slot. */
  hring_result_t r = tcp_write(t);
  if (r == HRING_SUCCESS && t->eof && t->s_sent < t->s_posted) r = conn_closed(t);
  return r;
}

hring_result_t hring__tcp_recv_get(hring_conn_t *c, void **buf, size_t *len) {
  tcp_conn_t *t = c->priv;
  if (t->err) return t->err;
  if (t->r_done == t->r_released) {
    HRING_CHECK(hring__tcp_progress(c));
    if (t->r_done == t->r_released) return t->eof ? conn_closed(t) : HRING_IN_PROGRESS;
  }
  const hring_wire_hdr_t *w = &t->rwire[t->r_released % (uint64_t)c->nslots];
  if (w->kind == HRING_WIRE_BYE || w->kind == HRING_WIRE_FAIL) return peer_gone(t);
  if (c->comm)
    HRING_CHECK(hring__wire_check(w, &c->comm->coll, c->comm->rank, c->peer, peer_host(c)));
  *buf = slot_of(t, t->rbuf, t->r_released);
  *len = t->rlen[t->r_released % (uint64_t)c->nslots];
  return HRING_SUCCESS;
}

/* The frame being read waits for a receive slot (bytes behind it wait in
 * the stage or the spill, or in the socket). */
static int receive_blocked(const tcp_conn_t *t) {
  return buffered(t) > 0 ||
         (t->r_in_payload && t->r_done - t->r_released >= (uint64_t)t->conn.nslots);
}

/* Readable: frames, credits or a notice to take (unless the frame being
 * read waits for a slot, which only this rank can free); writable: room for
 * queued frames.  A broken or closed connection has nothing to wait for:
 * progress reports it. */
int hring__tcp_wait_fd(hring_conn_t *c, short *events) {
  tcp_conn_t *t = c->priv;
  if (t->err || t->eof) return -1;
  *events = (short)((receive_blocked(t) ? 0 : POLLIN) | (t->s_sent < t->s_posted ? POLLOUT : 0));
  return t->fd;
}

/* Whether the peer's process is known to live: only a peer on this node
 * can be asked (its pid means nothing elsewhere). */
static int peer_alive_here(const hring_conn_t *c) {
  const struct hring_comm *comm = c->comm;
  if (!comm || !comm->node_of || !comm->peers || comm->node_of[c->peer] != comm->node) return 0;
  pid_t pid = (pid_t)comm->peers[c->peer].pid;
  return pid > 0 && !hring__process_dead(pid);
}

/* Deaths first (a closed connection whose process is gone or cannot be
 * asked, a vanished host); then notices; then a connection closed without
 * a notice by a process that still lives: a rank that failed because of
 * another's failure and could not queue its notice (its send slots were
 * full), whose cause another connection may name. */
hring_result_t hring__tcp_health(hring_conn_t *c, int level) {
  tcp_conn_t *t = c->priv;
  if (t->err) {
    if (t->vanished) return t->err;
    if (t->peer_state == HRING_PEER_FAILED) return level >= HRING_HEALTH_DEATHS ? HRING_SUCCESS : t->err;
    return level > HRING_HEALTH_ALL && peer_alive_here(c) ? HRING_SUCCESS : t->err;
  }
  hring_result_t r = hring__tcp_progress(c);
  /* Frames wait for slots: a notice may be behind them.  The stage is
   * scanned at every poll; the socket is read ahead only when no slot was
   * freed since the previous poll, so a receiver that is merely behind
   * keeps reading straight into its slots. */
  if (!t->err && t->peer_state == HRING_PEER_LIVE && receive_blocked(t)) {
    if (t->la_polled && t->la_released == t->r_released)
      look_ahead(t);
    else
      scan_notice(t);
  }
  t->la_released = t->r_released;
  t->la_polled = 1;
  if (t->eof && t->peer_state == HRING_PEER_LIVE)
    return level > HRING_HEALTH_ALL && peer_alive_here(c) ? HRING_SUCCESS : peer_gone(t);
  if (t->vanished) return r; /* the kernel gave up on the peer during progress */
  /* A vanished host is a death: it sends no notice, so only its silence
   * tells, and it is looked for in the deaths-first pass. */
  if (r == HRING_SUCCESS && !t->eof && t->peer_state == HRING_PEER_LIVE) {
    int ms = hring__sock_silent_ms(t->fd);
    if (ms >= HRING_SOCK_SILENCE_MS) return conn_silent(t, ms);
  }
  if (level >= HRING_HEALTH_DEATHS) return HRING_SUCCESS;
  if (t->peer_state == HRING_PEER_FAILED) return peer_gone(t);
  if (r != HRING_SUCCESS && level > HRING_HEALTH_ALL && peer_alive_here(c)) return HRING_SUCCESS;
  return r;
}

/* A notice frame: a leave notice if a send slot is free and the socket takes
 * it now (never blocks); a failure notice in place of the frames not yet
 * sent, waiting at most NOTICE_WAIT_MS for socket room.  A failing rank then
 * shuts the socket, so a peer that could not read the notice still sees
 * the connection close, and its teardown waits for the notice to be
 * acknowledged (hring__tcp_notice_pending).  One failure notice is sent:
 * destroy after a failure does not send another. */
void hring__tcp_notify(hring_conn_t *c, int state, hring_result_t code, const char *why) {
  tcp_conn_t *t = c->priv;
  if (!t || t->fd < 0 || t->err || t->shut) return;
  /* A failure notice carries its text as payload (a send slot is needed). */
  size_t len = state == HRING_PEER_FAILED && why ? strlen(why) : 0;
  if (len > 191) len = 191;
  if (len && !t->sbuf && alloc_send(t) != HRING_SUCCESS) len = 0;
  if (!t->shdr) t->shdr = calloc((size_t)c->nslots, sizeof(*t->shdr));
  /* A failing rank's queued frames will never be used: the notice takes the
   * place of those not yet started, so it is never lost to full slots (a
   * frame already half in the socket is finished first). */
  if (state == HRING_PEER_FAILED && t->s_posted > t->s_sent)
    t->s_posted = t->s_sent + (t->s_off > 0 ? 1 : 0);
  if (t->shdr && t->s_posted - t->s_sent < (uint64_t)c->nslots) {
    if (len > c->slot_size) len = c->slot_size;
    if (len) memcpy(slot_of(t, t->sbuf, t->s_posted), why, len);
    tcp_frame_hdr_t *h = &t->shdr[t->s_posted % (uint64_t)c->nslots];
    memset(h, 0, sizeof *h);
    h->len = (uint32_t)len;
    h->tag = HRING_TCP_FRAME_MAGIC ^ (uint32_t)t->s_posted;
    h->w.magic = HRING_WIRE_MAGIC;
    h->w.version = HRING_WIRE_VERSION;
    h->w.kind = state == HRING_PEER_LEFT ? HRING_WIRE_BYE : HRING_WIRE_FAIL;
    h->w.op = (uint32_t)code;
    t->s_posted++;
    /* Errors are not reported here: the thread's last error is the failure
     * being told, and the connection's own error comes at its next use. */
    int e = write_frames(t);
    /* The notice must reach the kernel before the shutdown below, or the
     * peer sees only the close: wait for room a little, bounded. */
    for (int i = 0; state == HRING_PEER_FAILED && i < NOTICE_WAIT_MS && !e &&
                    t->s_sent < t->s_posted;
         i++) {
      struct pollfd p = {t->fd, POLLOUT, 0};
      if (poll(&p, 1, 1) > 0) e = write_frames(t);
    }
  }
  if (state == HRING_PEER_FAILED) {
    shutdown(t->fd, SHUT_WR);
    t->shut = 1;
  }
}

/* The peer may not have read our failure notice yet: it is in flight, or
 * waits in our socket for room in the peer's window.  Closing now with
 * bytes of the peer's unread here would reset the connection, and a reset
 * discards what our socket still holds, the notice included (SO_LINGER
 * does not help: the kernel resets whenever unread data is dropped, and a
 * zero linger resets always).  So the peer's bytes are read and dropped
 * (the communicator has failed: nothing will use them), and the notice is
 * pending until the peer has acknowledged every byte we sent, the end of
 * stream included.  A closed socket whose unread data was drained ends
 * gracefully, and the kernel still delivers what it holds after the close. */
int hring__tcp_notice_pending(hring_conn_t *c) {
  tcp_conn_t *t = c ? c->priv : NULL;
  if (!t || t->fd < 0 || !t->shut) return 0;
  uint8_t sink[4096];
  /* A bounded read per call: a peer that keeps sending cannot hold the
   * caller past its deadline. */
  for (int i = 0; i < 64; i++) {
    ssize_t r = recv(t->fd, sink, sizeof sink, MSG_DONTWAIT);
    if (r > 0) continue;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return 0; /* reset: nothing to wait for */
    break;
  }
  int unacked = 0;
  if (ioctl(t->fd, SIOCOUTQ, &unacked) < 0) return 0;
  return unacked > 0;
}

hring_result_t hring__tcp_recv_release(hring_conn_t *c) {
  tcp_conn_t *t = c->priv;
  if (t->err) return t->err;
  if (t->r_done == t->r_released)
    return hring__err(HRING_ERR_INTERNAL, "tcp: recv_release from rank %d with nothing received",
                      c->peer);
  t->r_released++;
  return HRING_SUCCESS;
}
