/*
 * fuzz_bootstrap.c - libFuzzer target for the decoders of the bootstrap's
 * wire messages (src/core/bootstrap.h, "wire messages"): everything a peer
 * or a unique id can put in front of them.  They must never crash, leak nor
 * read beyond their input, and what they accept must satisfy the checks
 * below (abort() otherwise, which libFuzzer reports as a crash).
 *
 * Input: byte 0 picks the message (mod FZ_KINDS); the rest is laid out as
 * the case says.  tests/fuzz/gen_bootstrap_corpus.c writes valid inputs of
 * every kind into tests/fuzz/corpus/bootstrap/, using the same layout.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "core/bootstrap.h"
#include "core/socket.h"
#include "fuzz_bootstrap.h"

#define CHECK(cond)    \
  do {                 \
    if (!(cond)) abort(); \
  } while (0)

static uint32_t rd32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static uint64_t rd64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/* Every status is one of the enum's, with a message. */
static hring_bs_status_t known(hring_bs_status_t s) {
  CHECK(s >= HRING_BS_OK && s <= HRING_BS_BAD_REPLY);
  const char *m = hring__bs_status_str(s);
  CHECK(m && m[0] && strcmp(m, "unknown bootstrap status") != 0);
  return s;
}

/* Every accepted hello re-encodes to the bytes it came from. */
static void check_hello_roundtrip(const hring_bs_hello_t *h, const uint8_t *msg, size_t len) {
  uint8_t again[HRING_BS_HELLO_BYTES];
  CHECK(len == HRING_BS_HELLO_BYTES);
  hring__bs_hello_encode(h, again);
  CHECK(memcmp(again, msg, sizeof again) == 0);
}

/* Root side, one hello: FZ_HELLO_PREFIX then the message (any length). */
static void fuzz_hello(const uint8_t *d, size_t n) {
  if (n < FZ_HELLO_PREFIX) return;
  uint8_t ctl = d[0];
  int job = (int)(rd32(d + 1) % (FZ_MAX_JOB + 1));
  uint64_t mask = rd64(d + 5);
  const uint8_t *challenge = d + 13;
  const uint8_t *msg = d + FZ_HELLO_PREFIX;
  size_t len = n - FZ_HELLO_PREFIX;
  static int fds[FZ_MAX_JOB];
  const int *fdp = NULL;
  if (ctl & FZ_CTL_RAW_JOB) {
    job = (int)rd32(d + 1); /* any value, without an array (the API allows NULL) */
  } else if (job > 0) {
    for (int r = 0; r < job; r++) fds[r] = (mask >> (r % 64)) & 1 ? 3 : -1;
    fdp = fds;
  }
  uint8_t proof[HRING_BS_PROOF_BYTES], reflected[HRING_BS_PROOF_BYTES];

  hring_bs_hello_t h;
  hring_bs_status_t s = known(hring__bs_hello_decode(msg, len, &h));
  if (s != HRING_BS_OK) return;
  check_hello_roundtrip(&h, msg, len);
  CHECK(h.magic == HRING_BS_MAGIC && h.version == HRING_BS_VERSION);
  hring__bs_proof(fz_secret, HRING_BS_ROLE_RANK, challenge, h.nonce, proof);
  /* The root's proof over the same bytes is never a rank's: a hello that
   * carries it (a stranger reflecting a root's ack) is refused. */
  hring__bs_proof(fz_secret, HRING_BS_ROLE_ROOT, challenge, h.nonce, reflected);
  if (memcmp(h.proof, reflected, sizeof reflected) == 0)
    CHECK(known(hring__bs_hello_admit(&h, proof, job, fdp)) == HRING_BS_BAD_PROOF);
  /* As if the peer knew the secret: the checks after the proof's. */
  if (ctl & FZ_CTL_TRUST_PROOF) memcpy(proof, h.proof, sizeof proof);
  s = known(hring__bs_hello_admit(&h, proof, job, fdp));
  if (s != HRING_BS_OK) return;
  CHECK(memcmp(proof, h.proof, sizeof proof) == 0);
  CHECK(h.nranks >= 1 && h.nranks <= HRING_BS_MAX_RANKS);
  CHECK(h.rank >= 0 && h.rank < h.nranks);
  CHECK(job == 0 || h.nranks == job);
  CHECK(!fdp || fds[h.rank] < 0);
}

/* Root side, a whole join: hellos of HRING_BS_HELLO_BYTES each (proof
 * trusted) admitted as root_main does, until every rank has joined; no
 * rank may be admitted twice, nor more ranks than the job's. */
static void fuzz_join(const uint8_t *d, size_t n) {
  int job = 0, joined = 0;
  static int fds[FZ_MAX_JOB];
  int *fdp = NULL;
  for (size_t off = 0; off + HRING_BS_HELLO_BYTES <= n; off += HRING_BS_HELLO_BYTES) {
    hring_bs_hello_t h;
    if (hring__bs_hello_decode(d + off, HRING_BS_HELLO_BYTES, &h) != HRING_BS_OK) continue;
    if (hring__bs_hello_admit(&h, h.proof, job, fdp) != HRING_BS_OK) continue;
    if (!fdp) {
      if (h.nranks > FZ_MAX_JOB) return; /* root_main would allocate nranks fds */
      job = h.nranks;
      for (int r = 0; r < job; r++) fds[r] = -1;
      fdp = fds;
    }
    CHECK(h.nranks == job && h.rank >= 0 && h.rank < job && fds[h.rank] < 0);
    fds[h.rank] = (int)off;
    joined++;
    CHECK(joined <= job);
    if (joined == job) return;
  }
}

/* Client side: the ack (any length) after a hello of nonce to challenge.
 * Accepted only with the root's proof over exactly those bytes; the same
 * ack carrying the rank's own proof (reflected back) is always refused. */
static void fuzz_ack(const uint8_t *d, size_t n) {
  if (n < FZ_ACK_PREFIX) return;
  const uint8_t *challenge = d, *nonce = d + HRING_BS_CHALLENGE_BYTES;
  const uint8_t *msg = d + FZ_ACK_PREFIX;
  size_t len = n - FZ_ACK_PREFIX;
  uint8_t want[HRING_BS_PROOF_BYTES], rank_proof[HRING_BS_PROOF_BYTES];
  hring__bs_proof(fz_secret, HRING_BS_ROLE_ROOT, challenge, nonce, want);
  hring__bs_proof(fz_secret, HRING_BS_ROLE_RANK, challenge, nonce, rank_proof);
  CHECK(memcmp(want, rank_proof, sizeof want) != 0);
  hring_bs_status_t s = known(hring__bs_ack_decode(msg, len, want));
  if (len == HRING_BS_ACK_BYTES && rd32(msg) == HRING_BS_MAGIC) {
    uint8_t reflected[HRING_BS_ACK_BYTES];
    memcpy(reflected, msg, sizeof reflected);
    memcpy(reflected + 8, rank_proof, HRING_BS_PROOF_BYTES);
    CHECK(known(hring__bs_ack_decode(reflected, sizeof reflected, want)) == HRING_BS_BAD_PROOF);
  }
  if (s != HRING_BS_OK) return;
  CHECK(len == HRING_BS_ACK_BYTES && rd32(msg) == HRING_BS_MAGIC && rd32(msg + 4) == 0);
  CHECK(memcmp(msg + 8, want, sizeof want) == 0);
  hring_bs_ack_t a = {HRING_BS_MAGIC, 0, {0}};
  memcpy(a.proof, want, sizeof want);
  uint8_t again[HRING_BS_ACK_BYTES];
  hring__bs_ack_encode(&a, again);
  CHECK(memcmp(again, msg, sizeof again) == 0);
}

/* Root side: a round header.  ctl[1] expect[4] message (any length). */
static void fuzz_round(const uint8_t *d, size_t n) {
  if (n < 5) return;
  int64_t expect = (d[0] & FZ_CTL_FIRST) ? -1 : (int64_t)rd32(d + 1);
  uint32_t size;
  hring_bs_status_t s = known(hring__bs_round_decode(d + 5, n - 5, expect, &size));
  if (s != HRING_BS_OK) return;
  CHECK(n - 5 == HRING_BS_ROUND_BYTES && rd32(d + 5) == HRING_BS_MAGIC);
  CHECK(size == rd32(d + 9));
  CHECK(size == HRING_BS_CLOSE || size <= HRING_BS_ROUND_MAX);
  CHECK(expect < 0 || (uint64_t)expect == size);
  hring_bs_round_t r = {HRING_BS_MAGIC, size};
  uint8_t again[HRING_BS_ROUND_BYTES];
  hring__bs_round_encode(&r, again);
  CHECK(memcmp(again, d + 5, sizeof again) == 0);
}

/* The bytes of a round's result: size[8] nranks[4]. */
static void fuzz_total(const uint8_t *d, size_t n) {
  if (n < 12) return;
  size_t size = (size_t)rd64(d), total;
  int nranks = (int)rd32(d + 8);
  if (known(hring__bs_round_total(size, nranks, &total)) != HRING_BS_OK) return;
  CHECK(size <= HRING_BS_ROUND_MAX && nranks >= 1 && nranks <= HRING_BS_MAX_RANKS);
  CHECK(total / (size_t)nranks == size && total % (size_t)nranks == 0);
}

/* Client side: a round's result.  nranks[1] rank[1] size[2] mine[size]
 * all[nranks * size]; both are copied into buffers of their exact size, so
 * a read past them is caught. */
static void fuzz_reply(const uint8_t *d, size_t n) {
  if (n < 4) return;
  int nranks = (int)(int8_t)d[0], rank = (int)(int8_t)d[1];
  size_t size = (size_t)(d[2] | d[3] << 8) % 512, total;
  if (hring__bs_round_total(size, nranks, &total) != HRING_BS_OK) return;
  if (n - 4 < size + total) return;
  uint8_t *mine = malloc(size ? size : 1), *all = malloc(total ? total : 1);
  if (!mine || !all) abort();
  memcpy(mine, d + 4, size);
  memcpy(all, d + 4 + size, total);
  hring_bs_status_t s = known(hring__bs_reply_check(all, size, nranks, rank, mine));
  if (s == HRING_BS_OK) {
    CHECK(rank >= 0 && rank < nranks);
    CHECK(size == 0 || memcmp(all + (size_t)rank * size, mine, size) == 0);
  }
  free(mine);
  free(all);
}

/* A unique id (the first HRING_UNIQUE_ID_BYTES bytes, zero-padded). */
static void fuzz_id(const uint8_t *d, size_t n) {
  hring_unique_id_t id, again;
  hring_id_info_t info;
  memset(&id, 0, sizeof id);
  memcpy(id.internal, d, n < sizeof id.internal ? n : sizeof id.internal);
  if (hring__id_unpack(&id, &info) != HRING_SUCCESS) return;
  CHECK(info.root.ss_family == AF_INET || info.root.ss_family == AF_INET6);
  CHECK(hring__addr_port(&info.root) != 0);
  CHECK(memcmp(info.secret, id.internal + 8, sizeof info.secret) == 0);
  hring__id_pack(&info, &again);
  size_t used = 28 + (info.root.ss_family == AF_INET6 ? 16 : 4);
  CHECK(memcmp(id.internal, again.internal, used) == 0);
}

/* The proof of a message of any length is deterministic; the bootstrap's
 * two roles give different proofs of the same challenge and nonce. */
static void fuzz_proof(const uint8_t *d, size_t n) {
  uint8_t a[16], b[16];
  hring__auth_proof(fz_secret, sizeof fz_secret, d, n, a);
  hring__auth_proof(fz_secret, sizeof fz_secret, d, n, b);
  CHECK(memcmp(a, b, sizeof a) == 0);
  if (n < HRING_BS_CHALLENGE_BYTES + HRING_BS_NONCE_BYTES) return;
  hring__bs_proof(fz_secret, HRING_BS_ROLE_RANK, d, d + HRING_BS_CHALLENGE_BYTES, a);
  hring__bs_proof(fz_secret, HRING_BS_ROLE_ROOT, d, d + HRING_BS_CHALLENGE_BYTES, b);
  CHECK(memcmp(a, b, sizeof a) != 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  setenv("HRING_DEBUG", "NONE", 0); /* hring__id_unpack reports its errors */
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const uint8_t *d = data + 1;
  size_t n = size - 1;
  switch (data[0] % FZ_KINDS) {
    case FZ_HELLO: fuzz_hello(d, n); break;
    case FZ_JOIN: fuzz_join(d, n); break;
    case FZ_ACK: fuzz_ack(d, n); break;
    case FZ_ROUND: fuzz_round(d, n); break;
    case FZ_TOTAL: fuzz_total(d, n); break;
    case FZ_REPLY: fuzz_reply(d, n); break;
    case FZ_ID: fuzz_id(d, n); break;
    case FZ_PROOF: fuzz_proof(d, n); break;
  }
  return 0;
}
