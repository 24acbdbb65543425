/*
 * bootstrap.h - the out-of-band rendezvous used while a communicator is
 * created: a root (a thread in one process) that every rank connects to, and
 * rounds of allgather through it.  Every connection proves the job secret by
 * challenge-response; a connection that fails is dropped and logged, and the
 * root keeps waiting for the real ranks until the deadline.
 */
#ifndef HRING_CORE_BOOTSTRAP_H
#define HRING_CORE_BOOTSTRAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "hring.h"

typedef struct hring_bootstrap hring_bootstrap_t;

/* The contents of a unique id. */
typedef struct {
  struct sockaddr_storage root;
  uint8_t secret[16];
} hring_id_info_t;

hring_result_t hring__id_pack(const hring_id_info_t *info, hring_unique_id_t *id);
hring_result_t hring__id_unpack(const hring_unique_id_t *id, hring_id_info_t *info);

/* Starts the root service in a detached thread, listening on info->root
 * (port 0: any; the bound port is written back).  It serves one job and
 * ends when every rank has closed, or at the timeout. */
hring_result_t hring__bootstrap_root_start(hring_id_info_t *info, int64_t timeout_ms);

hring_result_t hring__bootstrap_connect(const hring_id_info_t *info, int rank, int nranks,
                                        int64_t timeout_ms, hring_bootstrap_t **bs);
/* all[r*size .. ] = rank r's `mine`; every rank must pass the same size. */
hring_result_t hring__bootstrap_allgather(hring_bootstrap_t *bs, const void *mine, void *all,
                                          size_t size);
hring_result_t hring__bootstrap_barrier(hring_bootstrap_t *bs);
void hring__bootstrap_close(hring_bootstrap_t *bs);

/* Random bytes from the kernel (getrandom). */
hring_result_t hring__random(void *buf, size_t len);

/* ---- wire messages ----
 * Every message a peer sends is received whole into a buffer of its fixed
 * size and decoded by the pure functions below (bytes in, struct or status
 * out; no I/O, no allocation, no logging), which the socket code calls and
 * tests/fuzz/fuzz_bootstrap.c drives with arbitrary bytes.  Integers are in
 * host order (bootstrap.c says why); the layouts are those of the structs
 * below without padding.
 *   root -> client : challenge[16]                                     (random)
 *   client -> root : hello {magic, version, rank, nranks, nonce[16], proof[16]}  48 bytes
 *                    proof = auth(secret, "rank" || challenge || nonce)
 *   root -> client : ack   {magic, status = 0, proof[16]}                         24 bytes
 *                    proof = auth(secret, "root" || challenge || nonce)
 *   client -> root : round {magic, size} data[size]                                8 bytes
 *   root -> client : data[nranks * size]
 *   a round with size HRING_BS_CLOSE ends the session.
 * Each side proves the job secret over the other's random bytes, so neither
 * proof can be recorded and played again to another connection; the fixed
 * role prefix makes the two proofs of one connection different functions,
 * so a root that merely echoes the rank's proof back proves nothing.  The
 * proofs cover the handshake, not the rounds: nothing on the wire is
 * encrypted or signed afterwards. */
#define HRING_BS_MAGIC 0x48524e47u /* "HRNG" */
#define HRING_BS_VERSION 2u /* 2: the root proves the secret too */
#define HRING_BS_CLOSE 0xffffffffu
#define HRING_BS_ROUND_MAX (1u << 20) /* per rank; anything larger is an attack or a bug */
#define HRING_BS_MAX_RANKS (1 << 20)
#define HRING_BS_CHALLENGE_BYTES 16
#define HRING_BS_NONCE_BYTES 16
#define HRING_BS_PROOF_BYTES 16
#define HRING_BS_HELLO_BYTES 48
#define HRING_BS_ACK_BYTES 24
#define HRING_BS_ROUND_BYTES 8

typedef struct {
  uint32_t magic, version;
  int32_t rank, nranks;
  uint8_t nonce[HRING_BS_NONCE_BYTES]; /* the rank's random bytes, for the root's proof */
  uint8_t proof[HRING_BS_PROOF_BYTES];
} hring_bs_hello_t;

typedef struct {
  uint32_t magic, status;
  uint8_t proof[HRING_BS_PROOF_BYTES];
} hring_bs_ack_t;

typedef struct {
  uint32_t magic, size;
} hring_bs_round_t;

/* Which side a proof speaks for: the first bytes of the hashed message. */
typedef enum { HRING_BS_ROLE_RANK = 0, HRING_BS_ROLE_ROOT = 1 } hring_bs_role_t;

typedef enum {
  HRING_BS_OK = 0,
  HRING_BS_BAD_LENGTH,  /* not the message's size */
  HRING_BS_BAD_MAGIC,
  HRING_BS_BAD_VERSION,
  HRING_BS_BAD_PROOF,   /* does not know the job secret */
  HRING_BS_BAD_RANK,    /* rank/nranks out of range, nranks not the job's, or rank taken */
  HRING_BS_BAD_SIZE,    /* round size above HRING_BS_ROUND_MAX or not rank 0's */
  HRING_BS_BAD_STATUS,  /* ack with a non-zero status */
  HRING_BS_BAD_REPLY,   /* allgather result whose own slot is not what this rank sent */
} hring_bs_status_t;

const char *hring__bs_status_str(hring_bs_status_t s);

/* The proof one side sends: auth(secret, role prefix || challenge || nonce),
 * hring__auth_proof of the 16-byte job secret (pure). */
void hring__bs_proof(const uint8_t secret[16], hring_bs_role_t role,
                     const uint8_t challenge[HRING_BS_CHALLENGE_BYTES],
                     const uint8_t nonce[HRING_BS_NONCE_BYTES], uint8_t out[HRING_BS_PROOF_BYTES]);

void hring__bs_hello_encode(const hring_bs_hello_t *h, uint8_t out[HRING_BS_HELLO_BYTES]);
/* Length, magic and version; rank and nranks are checked by _admit. */
hring_bs_status_t hring__bs_hello_decode(const uint8_t *buf, size_t len, hring_bs_hello_t *out);
/* Whether the root admits a decoded hello: its proof must equal `proof`
 * (compared in constant time), 0 <= rank < nranks <= HRING_BS_MAX_RANKS,
 * nranks must equal job_nranks unless that is 0 (first rank), and the rank
 * must not have joined: fds (job_nranks entries, NULL: nobody yet) holds
 * fds[r] >= 0 for every rank r that has. */
hring_bs_status_t hring__bs_hello_admit(const hring_bs_hello_t *h,
                                        const uint8_t proof[HRING_BS_PROOF_BYTES],
                                        int job_nranks, const int *fds);

void hring__bs_ack_encode(const hring_bs_ack_t *a, uint8_t out[HRING_BS_ACK_BYTES]);
/* The ack, as the rank checks it: length, magic, then the root's proof,
 * which must equal `proof` (the one the rank expects, compared in constant
 * time), then status 0.  The proof comes before the status so that a
 * stranger's word, whatever it says, is reported as a stranger's. */
hring_bs_status_t hring__bs_ack_decode(const uint8_t *buf, size_t len,
                                       const uint8_t proof[HRING_BS_PROOF_BYTES]);

void hring__bs_round_encode(const hring_bs_round_t *r, uint8_t out[HRING_BS_ROUND_BYTES]);
/* A round header: magic, and size <= HRING_BS_ROUND_MAX or HRING_BS_CLOSE;
 * expect >= 0: the size must also equal it (rank 0's size of the round). */
hring_bs_status_t hring__bs_round_decode(const uint8_t *buf, size_t len, int64_t expect,
                                         uint32_t *size);
/* *total = size * nranks, the bytes of a round's result, where size <=
 * HRING_BS_ROUND_MAX and 1 <= nranks <= HRING_BS_MAX_RANKS (no overflow). */
hring_bs_status_t hring__bs_round_total(size_t size, int nranks, size_t *total);
/* A round's result: rank's slot of all[nranks * size] must hold `mine`. */
hring_bs_status_t hring__bs_reply_check(const void *all, size_t size, int nranks, int rank,
                                        const void *mine);

#endif
