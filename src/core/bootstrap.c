/*
 * bootstrap.c - root service and client of the rendezvous (bootstrap.h).
 *
 * Wire protocol (all integers little-endian host order; the bootstrap only
 * runs between hosts of one job, which are all x86-64 or all aarch64):
 *   root -> client : challenge[16]
 *   client -> root : hello {magic, version, rank, nranks, nonce[16], proof[16]}
 *   root -> client : ack {magic, status, proof[16]}   (after every rank has joined)
 *   then rounds:  client -> root {magic, size} data[size]
 *                 root -> client data[nranks * size]
 *   a round with size BS_CLOSE ends the session.
 * Messages are received whole into fixed-size buffers and decoded by the
 * pure functions of "wire messages" below (bootstrap.h), which check every
 * length, rank and count before the socket code uses it.  Both sides prove
 * the job secret (bootstrap.h): the root before it admits a rank, the rank
 * before it trusts anything the root sends.
 */
#include "core/bootstrap.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "core/socket.h"
#include "core/wait.h"

#define BS_MAGIC HRING_BS_MAGIC
#define BS_VERSION HRING_BS_VERSION
#define BS_CLOSE HRING_BS_CLOSE
#define BS_ROUND_MAX HRING_BS_ROUND_MAX
#define BS_HELLO_TIMEOUT_MS 5000 /* a silent stranger costs at most this */
#define BS_MAX_RANKS HRING_BS_MAX_RANKS
#define ID_MAGIC "HRNGUID1"

_Static_assert(sizeof(hring_bs_hello_t) == HRING_BS_HELLO_BYTES, "hello layout");
_Static_assert(sizeof(hring_bs_ack_t) == HRING_BS_ACK_BYTES, "ack layout");
_Static_assert(sizeof(hring_bs_round_t) == HRING_BS_ROUND_BYTES, "round layout");

struct hring_bootstrap {
  int fd;
  int rank, nranks;
  uint64_t deadline_ns;
};

hring_result_t hring__random(void *buf, size_t len) {
  uint8_t *p = buf;
  while (len > 0) {
    ssize_t n = getrandom(p, len, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return hring__err_errno(HRING_ERR_SYSTEM, errno, "getrandom");
    }
    p += n;
    len -= (size_t)n;
  }
  return HRING_SUCCESS;
}

/* id layout: magic[8] secret[16] family[2] port[2] addr[16] */
hring_result_t hring__id_pack(const hring_id_info_t *info, hring_unique_id_t *id) {
  memset(id, 0, sizeof *id);
  char *p = id->internal;
  memcpy(p, ID_MAGIC, 8);
  memcpy(p + 8, info->secret, 16);
  uint16_t fam = (uint16_t)info->root.ss_family, port = hring__addr_port(&info->root);
  memcpy(p + 24, &fam, 2);
  memcpy(p + 26, &port, 2);
  if (fam == AF_INET6)
    memcpy(p + 28, &((const struct sockaddr_in6 *)&info->root)->sin6_addr, 16);
  else
    memcpy(p + 28, &((const struct sockaddr_in *)&info->root)->sin_addr, 4);
  return HRING_SUCCESS;
}

hring_result_t hring__id_unpack(const hring_unique_id_t *id, hring_id_info_t *info) {
  const char *p = id->internal;
  if (memcmp(p, ID_MAGIC, 8) != 0)
    return hring__err(HRING_ERR_INVALID_ARGUMENT,
                      "not a unique id made by hring_get_unique_id (bad magic)");
  memset(info, 0, sizeof *info);
  memcpy(info->secret, p + 8, 16);
  uint16_t fam, port;
  memcpy(&fam, p + 24, 2);
  memcpy(&port, p + 26, 2);
  if (fam == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&info->root;
    a->sin6_family = AF_INET6;
    memcpy(&a->sin6_addr, p + 28, 16);
  } else if (fam == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)&info->root;
    a->sin_family = AF_INET;
    memcpy(&a->sin_addr, p + 28, 4);
  } else {
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "unique id: bad address family %u", fam);
  }
  hring__addr_set_port(&info->root, port);
  if (port == 0) return hring__err(HRING_ERR_INVALID_ARGUMENT, "unique id: port 0");
  return HRING_SUCCESS;
}

/* ---- wire messages (pure: bootstrap.h) ---- */

const char *hring__bs_status_str(hring_bs_status_t s) {
  switch (s) {
    case HRING_BS_OK: return "ok";
    case HRING_BS_BAD_LENGTH: return "wrong message length";
    case HRING_BS_BAD_MAGIC: return "bad magic";
    case HRING_BS_BAD_VERSION: return "unsupported version";
    case HRING_BS_BAD_PROOF: return "bad proof of the job secret";
    case HRING_BS_BAD_RANK: return "rank or number of ranks out of range";
    case HRING_BS_BAD_SIZE: return "bad round size";
    case HRING_BS_BAD_STATUS: return "error status";
    case HRING_BS_BAD_REPLY: return "result does not hold this rank's data";
  }
  return "unknown bootstrap status";
}

static uint32_t get_u32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* The role prefixes are 4 bytes and the message 36 in all: no other user of
 * hring__auth_proof hashes a message of that length (the tcp handshake's
 * are 28 bytes, the communicator id's 7), and SipHash mixes the length in,
 * so these proofs cannot stand for theirs either. */
void hring__bs_proof(const uint8_t secret[16], hring_bs_role_t role,
                     const uint8_t challenge[HRING_BS_CHALLENGE_BYTES],
                     const uint8_t nonce[HRING_BS_NONCE_BYTES], uint8_t out[HRING_BS_PROOF_BYTES]) {
  uint8_t msg[4 + HRING_BS_CHALLENGE_BYTES + HRING_BS_NONCE_BYTES];
  memcpy(msg, role == HRING_BS_ROLE_ROOT ? "root" : "rank", 4);
  memcpy(msg + 4, challenge, HRING_BS_CHALLENGE_BYTES);
  memcpy(msg + 4 + HRING_BS_CHALLENGE_BYTES, nonce, HRING_BS_NONCE_BYTES);
  hring__auth_proof(secret, 16, msg, sizeof msg, out);
}

void hring__bs_hello_encode(const hring_bs_hello_t *h, uint8_t out[HRING_BS_HELLO_BYTES]) {
  put_u32(out, h->magic);
  put_u32(out + 4, h->version);
  put_u32(out + 8, (uint32_t)h->rank);
  put_u32(out + 12, (uint32_t)h->nranks);
  memcpy(out + 16, h->nonce, HRING_BS_NONCE_BYTES);
  memcpy(out + 32, h->proof, HRING_BS_PROOF_BYTES);
}

hring_bs_status_t hring__bs_hello_decode(const uint8_t *buf, size_t len, hring_bs_hello_t *out) {
  memset(out, 0, sizeof *out);
  if (!buf || len != HRING_BS_HELLO_BYTES) return HRING_BS_BAD_LENGTH;
  out->magic = get_u32(buf);
  out->version = get_u32(buf + 4);
  out->rank = (int32_t)get_u32(buf + 8);
  out->nranks = (int32_t)get_u32(buf + 12);
  memcpy(out->nonce, buf + 16, HRING_BS_NONCE_BYTES);
  memcpy(out->proof, buf + 32, HRING_BS_PROOF_BYTES);
  if (out->magic != BS_MAGIC) return HRING_BS_BAD_MAGIC;
  if (out->version != BS_VERSION) return HRING_BS_BAD_VERSION;
  return HRING_BS_OK;
}

/* Constant time: how long the comparison takes tells nothing of the proof. */
static int proof_equal(const uint8_t *a, const uint8_t *b) {
  uint8_t d = 0;
  for (int i = 0; i < HRING_BS_PROOF_BYTES; i++) d |= (uint8_t)(a[i] ^ b[i]);
  return d == 0;
}

hring_bs_status_t hring__bs_hello_admit(const hring_bs_hello_t *h,
                                        const uint8_t proof[HRING_BS_PROOF_BYTES],
                                        int job_nranks, const int *fds) {
  if (h->magic != BS_MAGIC) return HRING_BS_BAD_MAGIC;
  if (h->version != BS_VERSION) return HRING_BS_BAD_VERSION;
  if (!proof_equal(proof, h->proof)) return HRING_BS_BAD_PROOF;
  if (h->nranks <= 0 || h->nranks > BS_MAX_RANKS || h->rank < 0 || h->rank >= h->nranks)
    return HRING_BS_BAD_RANK;
  if (job_nranks < 0 || job_nranks > BS_MAX_RANKS) return HRING_BS_BAD_RANK; /* caller's bug */
  if (job_nranks != 0 && h->nranks != job_nranks) return HRING_BS_BAD_RANK;
  /* Here rank < nranks == job_nranks, so fds[rank] is inside fds. */
  if (job_nranks != 0 && fds && fds[h->rank] >= 0) return HRING_BS_BAD_RANK;
  return HRING_BS_OK;
}

void hring__bs_round_encode(const hring_bs_round_t *r, uint8_t out[HRING_BS_ROUND_BYTES]) {
  put_u32(out, r->magic);
  put_u32(out + 4, r->size);
}

void hring__bs_ack_encode(const hring_bs_ack_t *a, uint8_t out[HRING_BS_ACK_BYTES]) {
  put_u32(out, a->magic);
  put_u32(out + 4, a->status);
  memcpy(out + 8, a->proof, HRING_BS_PROOF_BYTES);
}

hring_bs_status_t hring__bs_ack_decode(const uint8_t *buf, size_t len,
                                       const uint8_t proof[HRING_BS_PROOF_BYTES]) {
  if (!buf || len != HRING_BS_ACK_BYTES) return HRING_BS_BAD_LENGTH;
  if (get_u32(buf) != BS_MAGIC) return HRING_BS_BAD_MAGIC;
  if (!proof_equal(buf + 8, proof)) return HRING_BS_BAD_PROOF;
  if (get_u32(buf + 4) != 0) return HRING_BS_BAD_STATUS;
  return HRING_BS_OK;
}

hring_bs_status_t hring__bs_round_decode(const uint8_t *buf, size_t len, int64_t expect,
                                         uint32_t *size) {
  *size = 0;
  if (!buf || len != HRING_BS_ROUND_BYTES) return HRING_BS_BAD_LENGTH;
  if (get_u32(buf) != BS_MAGIC) return HRING_BS_BAD_MAGIC;
  uint32_t s = get_u32(buf + 4);
  *size = s; /* for the caller's message, also when refused */
  if (expect >= 0 && (uint64_t)expect != s) return HRING_BS_BAD_SIZE;
  if (s != BS_CLOSE && s > BS_ROUND_MAX) return HRING_BS_BAD_SIZE;
  return HRING_BS_OK;
}

hring_bs_status_t hring__bs_round_total(size_t size, int nranks, size_t *total) {
  *total = 0;
  if (size > BS_ROUND_MAX) return HRING_BS_BAD_SIZE;
  if (nranks <= 0 || nranks > BS_MAX_RANKS) return HRING_BS_BAD_RANK;
  if (size != 0 && (size_t)nranks > SIZE_MAX / size) return HRING_BS_BAD_SIZE;
  *total = size * (size_t)nranks;
  return HRING_BS_OK;
}

hring_bs_status_t hring__bs_reply_check(const void *all, size_t size, int nranks, int rank,
                                        const void *mine) {
  size_t total;
  hring_bs_status_t s = hring__bs_round_total(size, nranks, &total);
  if (s != HRING_BS_OK) return s;
  if (rank < 0 || rank >= nranks) return HRING_BS_BAD_RANK;
  if (size != 0 && memcmp((const uint8_t *)all + (size_t)rank * size, mine, size) != 0)
    return HRING_BS_BAD_REPLY;
  return HRING_BS_OK;
}

/* ---- root service ---- */

typedef struct {
  int lfd;
  uint8_t secret[16];
  uint64_t deadline_ns;
} root_args_t;

/* Authenticates one incoming connection; returns its rank or -1 (dropped).
 * The rank's nonce and the challenge are kept for the root's own proof, in
 * the ack sent once every rank has joined. */
static int root_admit(root_args_t *a, int fd, int *nranks, const int *fds,
                      uint8_t challenge[HRING_BS_CHALLENGE_BYTES],
                      uint8_t nonce[HRING_BS_NONCE_BYTES]) {
  uint8_t proof[HRING_BS_PROOF_BYTES];
  uint8_t msg[HRING_BS_HELLO_BYTES];
  hring_bs_hello_t h;
  uint64_t dl = hring__now_ns() + BS_HELLO_TIMEOUT_MS * 1000000ull;
  if (dl > a->deadline_ns) dl = a->deadline_ns;
  if (hring__random(challenge, HRING_BS_CHALLENGE_BYTES) != HRING_SUCCESS ||
      hring__sock_send_all(fd, challenge, HRING_BS_CHALLENGE_BYTES, dl) != HRING_SUCCESS ||
      hring__sock_recv_all(fd, msg, sizeof msg, dl) != HRING_SUCCESS) {
    HRING_WARN(HRING_SUB_INIT, "bootstrap root: dropped a connection that did not complete the "
               "hello: %s", hring_last_error());
    return -1;
  }
  hring_bs_status_t s = hring__bs_hello_decode(msg, sizeof msg, &h);
  if (s == HRING_BS_OK) {
    hring__bs_proof(a->secret, HRING_BS_ROLE_RANK, challenge, h.nonce, proof);
    s = hring__bs_hello_admit(&h, proof, *nranks, fds);
  }
  switch (s) {
    case HRING_BS_OK:
      *nranks = h.nranks;
      memcpy(nonce, h.nonce, HRING_BS_NONCE_BYTES);
      return h.rank;
    case HRING_BS_BAD_PROOF:
      HRING_WARN(HRING_SUB_INIT, "bootstrap root: dropped a connection that claimed rank %d but "
                 "does not know the job secret", h.rank);
      return -1;
    case HRING_BS_BAD_RANK:
      HRING_WARN(HRING_SUB_INIT, "bootstrap root: dropped rank %d of %d (expected %d ranks, "
                 "or that rank joined already)", h.rank, h.nranks, *nranks);
      return -1;
    default:
      HRING_WARN(HRING_SUB_INIT, "bootstrap root: dropped a connection with a bad hello (magic %#x "
                 "version %u)", h.magic, h.version);
      return -1;
  }
}

static void root_close_all(int *fds, int n) {
  for (int i = 0; i < n; i++)
    if (fds && fds[i] >= 0) close(fds[i]);
  free(fds);
}

/* What the root keeps of each admitted rank until the ack. */
typedef struct {
  uint8_t challenge[HRING_BS_CHALLENGE_BYTES];
  uint8_t nonce[HRING_BS_NONCE_BYTES];
} root_peer_t;

static void *root_main(void *arg) {
  root_args_t *a = arg;
  int nranks = 0, joined = 0, *fds = NULL;
  char *buf = NULL;
  root_peer_t *peers = NULL, cur;
  while (nranks == 0 || joined < nranks) {
    int fd;
    if (hring__sock_accept(a->lfd, a->deadline_ns, &fd) != HRING_SUCCESS) {
      HRING_WARN(HRING_SUB_INIT, "bootstrap root: only %d of %d ranks joined before the "
                 "deadline", joined, nranks);
      goto done;
    }
    int rank = root_admit(a, fd, &nranks, fds, cur.challenge, cur.nonce);
    if (rank < 0) {
      close(fd);
      continue;
    }
    if (!fds) {
      fds = malloc(sizeof(int) * (size_t)nranks);
      peers = malloc(sizeof(*peers) * (size_t)nranks);
      if (!fds || !peers) { close(fd); goto done; }
      for (int i = 0; i < nranks; i++) fds[i] = -1;
    }
    fds[rank] = fd;
    peers[rank] = cur;
    joined++;
  }
  close(a->lfd);
  a->lfd = -1;
  for (int r = 0; r < nranks; r++) {
    hring_bs_ack_t ack = {BS_MAGIC, 0, {0}};
    uint8_t msg[HRING_BS_ACK_BYTES];
    hring__bs_proof(a->secret, HRING_BS_ROLE_ROOT, peers[r].challenge, peers[r].nonce, ack.proof);
    hring__bs_ack_encode(&ack, msg);
    if (hring__sock_send_all(fds[r], msg, sizeof msg, a->deadline_ns) != HRING_SUCCESS) goto done;
  }
  for (;;) {
    uint32_t size = 0;
    size_t total = 0;
    for (int r = 0; r < nranks; r++) {
      uint8_t msg[HRING_BS_ROUND_BYTES];
      uint32_t got;
      if (hring__sock_recv_all(fds[r], msg, sizeof msg, a->deadline_ns) != HRING_SUCCESS) {
        HRING_WARN(HRING_SUB_INIT, "bootstrap root: rank %d left or sent garbage", r);
        goto done;
      }
      hring_bs_status_t s = hring__bs_round_decode(msg, sizeof msg, r == 0 ? -1 : (int64_t)size,
                                                   &got);
      if (s == HRING_BS_BAD_MAGIC || s == HRING_BS_BAD_LENGTH) {
        HRING_WARN(HRING_SUB_INIT, "bootstrap root: rank %d left or sent garbage", r);
        goto done;
      }
      if (r == 0) size = got;
      if (s != HRING_BS_OK) {
        HRING_WARN(HRING_SUB_INIT, "bootstrap root: rank %d sent %u bytes, rank 0 %u", r,
                   got, size);
        goto done;
      }
      if (size == BS_CLOSE) continue;
      if (r == 0) {
        if (hring__bs_round_total(size, nranks, &total) != HRING_BS_OK) goto done;
        free(buf);
        buf = malloc(total + 1);
        if (!buf) goto done;
      }
      if (hring__sock_recv_all(fds[r], buf + (size_t)r * size, size, a->deadline_ns) !=
          HRING_SUCCESS)
        goto done;
    }
    if (size == BS_CLOSE) break;
    for (int r = 0; r < nranks; r++)
      if (hring__sock_send_all(fds[r], buf, total, a->deadline_ns) != HRING_SUCCESS)
        goto done;
  }
done:
  if (a->lfd >= 0) close(a->lfd);
  root_close_all(fds, nranks);
  free(peers);
  free(buf);
  free(a);
  return NULL;
}

hring_result_t hring__bootstrap_root_start(hring_id_info_t *info, int64_t timeout_ms) {
  root_args_t *a = calloc(1, sizeof *a);
  if (!a) return hring__err(HRING_ERR_NO_MEMORY, "bootstrap root");
  memcpy(a->secret, info->secret, 16);
  a->deadline_ns = hring__now_ns() + (uint64_t)timeout_ms * 1000000ull;
  hring_result_t r = hring__sock_listen(&info->root, &a->lfd);
  if (r != HRING_SUCCESS) {
    free(a);
    return r;
  }
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int e = pthread_create(&t, &attr, root_main, a);
  pthread_attr_destroy(&attr);
  if (e != 0) {
    close(a->lfd);
    free(a);
    return hring__err_errno(HRING_ERR_SYSTEM, e, "bootstrap root thread");
  }
  HRING_INFO(HRING_SUB_INIT, "bootstrap root listening on %s", hring__addr_str(&info->root));
  return HRING_SUCCESS;
}

/* ---- client ---- */

hring_result_t hring__bootstrap_connect(const hring_id_info_t *info, int rank, int nranks,
                                        int64_t timeout_ms, hring_bootstrap_t **out) {
  if (nranks <= 0 || nranks > BS_MAX_RANKS || rank < 0 || rank >= nranks)
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "bootstrap: rank %d of %d ranks is out of "
                      "range (at most %d ranks)", rank, nranks, BS_MAX_RANKS);
  hring_bootstrap_t *bs = calloc(1, sizeof *bs);
  if (!bs) return hring__err(HRING_ERR_NO_MEMORY, "bootstrap");
  bs->rank = rank;
  bs->nranks = nranks;
  bs->deadline_ns = hring__now_ns() + (uint64_t)timeout_ms * 1000000ull;
  bs->fd = -1;
  hring_result_t r;
  uint8_t challenge[HRING_BS_CHALLENGE_BYTES], hello[HRING_BS_HELLO_BYTES];
  uint8_t ack[HRING_BS_ACK_BYTES], root_proof[HRING_BS_PROOF_BYTES];
  hring_bs_hello_t h = {BS_MAGIC, BS_VERSION, rank, nranks, {0}, {0}};
  HRING_CHECK_GOTO(hring__random(h.nonce, sizeof h.nonce), r, fail);
  HRING_CHECK_GOTO(hring__sock_connect(&info->root, bs->deadline_ns, &bs->fd), r, fail);
  HRING_CHECK_GOTO(hring__sock_recv_all(bs->fd, challenge, sizeof challenge, bs->deadline_ns), r,
                   fail);
  hring__bs_proof(info->secret, HRING_BS_ROLE_RANK, challenge, h.nonce, h.proof);
  hring__bs_proof(info->secret, HRING_BS_ROLE_ROOT, challenge, h.nonce, root_proof);
  hring__bs_hello_encode(&h, hello);
  HRING_CHECK_GOTO(hring__sock_send_all(bs->fd, hello, sizeof hello, bs->deadline_ns), r, fail);
  /* The ack comes once all ranks have joined: this is where a rank waits
   * for the others to start. */
  HRING_CHECK_GOTO(hring__sock_recv_all(bs->fd, ack, sizeof ack, bs->deadline_ns), r, fail);
  hring_bs_status_t s = hring__bs_ack_decode(ack, sizeof ack, root_proof);
  if (s == HRING_BS_BAD_PROOF) {
    /* Whatever answered at the root's address cannot be the root: nothing
     * it would send next is to be trusted. */
    r = hring__err(HRING_ERR_REMOTE, "rank %d: the bootstrap root at %s does not know the job "
                   "secret (its proof is wrong): another job's root, or a stranger on that "
                   "address", rank, hring__addr_str(&info->root));
    goto out_err;
  }
  if (s != HRING_BS_OK) {
    r = hring__err(HRING_ERR_REMOTE, "bootstrap: bad reply from the root (%s)",
                   hring__bs_status_str(s));
    goto fail;
  }
  *out = bs;
  return HRING_SUCCESS;
fail:
  hring__err(r, "rank %d: joining the bootstrap root at %s failed: %s", rank,
             hring__addr_str(&info->root), hring_last_error());
out_err:
  if (bs->fd >= 0) close(bs->fd);
  free(bs);
  return r;
}

hring_result_t hring__bootstrap_allgather(hring_bootstrap_t *bs, const void *mine, void *all,
                                          size_t size) {
  size_t total;
  if (hring__bs_round_total(size, bs->nranks, &total) != HRING_BS_OK)
    return hring__err(HRING_ERR_INTERNAL, "bootstrap round too large");
  hring_bs_round_t h = {BS_MAGIC, (uint32_t)size};
  uint8_t msg[HRING_BS_ROUND_BYTES];
  hring__bs_round_encode(&h, msg);
  HRING_CHECK(hring__sock_send_all(bs->fd, msg, sizeof msg, bs->deadline_ns));
  HRING_CHECK(hring__sock_send_all(bs->fd, mine, size, bs->deadline_ns));
  hring_result_t r = hring__sock_recv_all(bs->fd, all, total, bs->deadline_ns);
  if (r != HRING_SUCCESS)
    return hring__err(r, "rank %d: bootstrap exchange failed (another rank failed or left "
                      "during initialisation): %s", bs->rank, hring_last_error());
  if (hring__bs_reply_check(all, size, bs->nranks, bs->rank, mine) != HRING_BS_OK)
    return hring__err(HRING_ERR_REMOTE, "rank %d: bootstrap exchange: the root's result does "
                      "not hold this rank's data", bs->rank);
  return HRING_SUCCESS;
}

hring_result_t hring__bootstrap_barrier(hring_bootstrap_t *bs) {
  char c = 0, *all = malloc((size_t)bs->nranks);
  if (!all) return hring__err(HRING_ERR_NO_MEMORY, "bootstrap barrier");
  hring_result_t r = hring__bootstrap_allgather(bs, &c, all, 1);
  free(all);
  return r;
}

void hring__bootstrap_close(hring_bootstrap_t *bs) {
  if (!bs) return;
  hring_bs_round_t h = {BS_MAGIC, BS_CLOSE};
  uint8_t msg[HRING_BS_ROUND_BYTES];
  hring__bs_round_encode(&h, msg);
  /* Best effort: the root also ends on EOF or its deadline.  The root may
   * be gone already (that may be why the rank is closing): no SIGPIPE. */
  (void)!send(bs->fd, msg, sizeof msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  close(bs->fd);
  free(bs);
}
