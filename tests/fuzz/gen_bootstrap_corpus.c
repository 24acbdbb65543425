/*
 * gen_bootstrap_corpus.c - writes the seed corpus of fuzz_bootstrap.c: one
 * valid input of every kind (fuzz_bootstrap.h), made with the library's own
 * encoders.  The seeds are committed in tests/fuzz/corpus/bootstrap/; to
 * make them again after a change of the layout:
 *   make fuzz && build/fuzz/gen_bootstrap_corpus tests/fuzz/corpus/bootstrap
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bootstrap.h"
#include "core/socket.h"
#include "fuzz_bootstrap.h"

static const char *dir;

static void put(const char *name, const uint8_t *buf, size_t len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
    perror(path);
    exit(1);
  }
}

/* FZ_HELLO input: a hello of rank/nranks answering `challenge`, with a
 * nonce made from `seed`. */
static size_t hello_input(uint8_t *out, uint8_t ctl, uint32_t job, uint64_t mask, int rank,
                          int nranks, uint8_t seed) {
  size_t n = 0;
  out[n++] = FZ_HELLO;
  out[n++] = ctl;
  memcpy(out + n, &job, 4), n += 4;
  memcpy(out + n, &mask, 8), n += 8;
  uint8_t *challenge = out + n;
  for (int i = 0; i < HRING_BS_CHALLENGE_BYTES; i++) challenge[i] = (uint8_t)(seed + 7 * i);
  n += HRING_BS_CHALLENGE_BYTES;
  hring_bs_hello_t h = {HRING_BS_MAGIC, HRING_BS_VERSION, rank, nranks, {0}, {0}};
  for (int i = 0; i < HRING_BS_NONCE_BYTES; i++) h.nonce[i] = (uint8_t)(seed * 13 + 5 * i);
  hring__bs_proof(fz_secret, HRING_BS_ROLE_RANK, challenge, h.nonce, h.proof);
  hring__bs_hello_encode(&h, out + n);
  return n + HRING_BS_HELLO_BYTES;
}

static size_t round_input(uint8_t *out, uint8_t ctl, uint32_t expect, uint32_t size) {
  out[0] = FZ_ROUND;
  out[1] = ctl;
  memcpy(out + 2, &expect, 4);
  hring_bs_round_t r = {HRING_BS_MAGIC, size};
  hring__bs_round_encode(&r, out + 6);
  return 6 + HRING_BS_ROUND_BYTES;
}

static size_t id_input(uint8_t *out, const char *addr) {
  hring_id_info_t info;
  hring_unique_id_t id;
  memset(&info, 0, sizeof info);
  memcpy(info.secret, fz_secret, sizeof info.secret);
  if (strchr(addr, ':')) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&info.root;
    a->sin6_family = AF_INET6;
    inet_pton(AF_INET6, addr, &a->sin6_addr);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&info.root;
    a->sin_family = AF_INET;
    inet_pton(AF_INET, addr, &a->sin_addr);
  }
  hring__addr_set_port(&info.root, 29500);
  hring__id_pack(&info, &id);
  out[0] = FZ_ID;
  memcpy(out + 1, id.internal, sizeof id.internal);
  return 1 + sizeof id.internal;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  dir = argv[1];
  static uint8_t b[8192];
  size_t n;

  put("hello_first", b, hello_input(b, 0, 0, 0, 0, 4, 1));
  put("hello_last", b, hello_input(b, 0, 4, 0x7, 3, 4, 2));
  put("hello_trusted", b, hello_input(b, FZ_CTL_TRUST_PROOF, 8, 0x15, 5, 8, 3));
  put("hello_duplicate", b, hello_input(b, 0, 4, 0x2, 1, 4, 4));
  put("hello_raw_job", b, hello_input(b, FZ_CTL_RAW_JOB, 2, 0, 1, 2, 5));

  n = 0;
  b[n++] = FZ_JOIN;
  int order[4] = {2, 0, 3, 1};
  for (int i = 0; i < 4; i++) {
    hring_bs_hello_t h = {HRING_BS_MAGIC, HRING_BS_VERSION, order[i], 4, {0}, {0}};
    memset(h.nonce, 0x30 + i, sizeof h.nonce);
    memset(h.proof, 0x40 + i, sizeof h.proof);
    hring__bs_hello_encode(&h, b + n);
    n += HRING_BS_HELLO_BYTES;
  }
  put("join_4", b, n);

  /* The root's ack to a hello, and the same ack reflecting the rank's own
   * proof (which must be refused). */
  n = 0;
  b[n++] = FZ_ACK;
  uint8_t *challenge = b + n, *nonce = b + n + HRING_BS_CHALLENGE_BYTES;
  for (int i = 0; i < HRING_BS_CHALLENGE_BYTES; i++) challenge[i] = (uint8_t)(0x11 * i);
  for (int i = 0; i < HRING_BS_NONCE_BYTES; i++) nonce[i] = (uint8_t)(0xa0 + i);
  n += FZ_ACK_PREFIX;
  hring_bs_ack_t ack = {HRING_BS_MAGIC, 0, {0}};
  hring__bs_proof(fz_secret, HRING_BS_ROLE_ROOT, challenge, nonce, ack.proof);
  hring__bs_ack_encode(&ack, b + n);
  put("ack", b, n + HRING_BS_ACK_BYTES);
  hring__bs_proof(fz_secret, HRING_BS_ROLE_RANK, challenge, nonce, ack.proof);
  hring__bs_ack_encode(&ack, b + n);
  put("ack_reflected", b, n + HRING_BS_ACK_BYTES);

  put("round_first", b, round_input(b, FZ_CTL_FIRST, 0, 200));
  put("round_match", b, round_input(b, 0, 200, 200));
  put("round_max", b, round_input(b, 0, HRING_BS_ROUND_MAX, HRING_BS_ROUND_MAX));
  put("round_close", b, round_input(b, FZ_CTL_FIRST, 0, HRING_BS_CLOSE));

  uint64_t size = 200;
  uint32_t nranks = 4;
  b[0] = FZ_TOTAL;
  memcpy(b + 1, &size, 8);
  memcpy(b + 9, &nranks, 4);
  put("total", b, 13);

  /* 3 ranks of 8 bytes, this is rank 1. */
  n = 0;
  b[n++] = FZ_REPLY;
  b[n++] = 3;
  b[n++] = 1;
  b[n++] = 8;
  b[n++] = 0;
  for (int i = 0; i < 8; i++) b[n++] = (uint8_t)(0x20 + i); /* rank 1's slot below */
  for (int r = 0; r < 3; r++)
    for (int i = 0; i < 8; i++) b[n++] = (uint8_t)(0x10 * (r + 1) + i);
  put("reply", b, n);

  put("id_ipv4", b, id_input(b, "127.0.0.1"));
  put("id_ipv6", b, id_input(b, "::1"));

  b[0] = FZ_PROOF;
  for (int i = 0; i < HRING_BS_CHALLENGE_BYTES + HRING_BS_NONCE_BYTES; i++)
    b[1 + i] = (uint8_t)(3 * i);
  put("proof", b, 1 + HRING_BS_CHALLENGE_BYTES + HRING_BS_NONCE_BYTES);
  return 0;
}
