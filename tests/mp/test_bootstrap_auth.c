/*
 * test_bootstrap_auth.c - a rank checks that the bootstrap root it reached
 * knows the job secret (src/core/bootstrap.h).  A small listener in the test
 * plays the root: it speaks the protocol, but proves the secret wrongly (it
 * has another secret, or it echoes the rank's own proof back).  The rank
 * must refuse it at the ack, with a message naming the root's address, long
 * before its timeout.  A listener that does know the secret is the control:
 * its ack passes, and the rank fails only later, for another reason.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/bootstrap.h"
#include "core/socket.h"
#include "core/wait.h"
#include "harness.h"
#include "hring.h"

typedef enum {
  ROOT_WRONG_SECRET, /* proves with a secret of its own */
  ROOT_REFLECTS,     /* sends the rank's proof back as its own */
  ROOT_KNOWS_SECRET, /* the control: a correct ack, then it hangs up */
} root_kind_t;

typedef struct {
  root_kind_t kind;
  int lfd;
  uint8_t secret[16]; /* what this root proves with */
  int acked;          /* it got a well-formed hello and sent its ack */
} fake_root_t;

static const uint8_t job_secret[16] = "the job's secret";
static const uint8_t other_secret[16] = "someone else's!";

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Serves one connection as a root of the given kind, then waits (bounded)
 * for the rank to hang up, so the rank's error is its own, not an EOF. */
static void *fake_root(void *arg) {
  fake_root_t *f = arg;
  uint64_t dl = hring__now_ns() + 10000000000ull;
  int fd;
  if (hring__sock_accept(f->lfd, dl, &fd) != HRING_SUCCESS) return NULL;
  uint8_t challenge[HRING_BS_CHALLENGE_BYTES], msg[HRING_BS_HELLO_BYTES];
  hring_bs_hello_t h;
  hring__random(challenge, sizeof challenge);
  if (hring__sock_send_all(fd, challenge, sizeof challenge, dl) != HRING_SUCCESS ||
      hring__sock_recv_all(fd, msg, sizeof msg, dl) != HRING_SUCCESS ||
      hring__bs_hello_decode(msg, sizeof msg, &h) != HRING_BS_OK) {
    close(fd);
    return NULL;
  }
  hring_bs_ack_t ack = {HRING_BS_MAGIC, 0, {0}};
  if (f->kind == ROOT_REFLECTS)
    memcpy(ack.proof, h.proof, sizeof ack.proof);
  else
    hring__bs_proof(f->secret, HRING_BS_ROLE_ROOT, challenge, h.nonce, ack.proof);
  uint8_t out[HRING_BS_ACK_BYTES];
  hring__bs_ack_encode(&ack, out);
  if (hring__sock_send_all(fd, out, sizeof out, dl) == HRING_SUCCESS) f->acked = 1;
  if (f->kind == ROOT_KNOWS_SECRET) {
    /* Take the first round's header and hang up: a root that dies. */
    uint8_t round[HRING_BS_ROUND_BYTES];
    (void)hring__sock_recv_all(fd, round, sizeof round, dl);
  } else {
    struct pollfd p = {fd, POLLIN, 0};
    char c;
    while (poll(&p, 1, 10000) > 0 && recv(fd, &c, 1, 0) > 0) {
    }
  }
  close(fd);
  return NULL;
}

/* Runs rank 0 of 2 against a root of `kind`; returns its result and the
 * seconds init took; msg gets the error text. */
static hring_result_t join_fake_root(root_kind_t kind, double *secs, char *msg, size_t msg_len,
                                     char *addr_text, size_t addr_len, int *acked) {
  setenv("HRING_TIMEOUT_MS", "20000", 1); /* a hang would show as ~20 s */
  fake_root_t f = {.kind = kind};
  memcpy(f.secret, kind == ROOT_WRONG_SECRET ? other_secret : job_secret, 16);
  hring_id_info_t info;
  memset(&info, 0, sizeof info);
  struct sockaddr_in *a = (struct sockaddr_in *)&info.root;
  a->sin_family = AF_INET;
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  HREQUIRE(hring__sock_listen(&info.root, &f.lfd) == HRING_SUCCESS, "listen: %s",
           hring_last_error());
  snprintf(addr_text, addr_len, "%s", hring__addr_str(&info.root));
  memcpy(info.secret, job_secret, 16);
  hring_unique_id_t id;
  HREQUIRE(hring__id_pack(&info, &id) == HRING_SUCCESS, "id_pack");
  pthread_t t;
  HREQUIRE(pthread_create(&t, NULL, fake_root, &f) == 0, "pthread_create");

  hring_comm_t comm = NULL;
  double t0 = now_s();
  hring_result_t r = hring_comm_init_rank(&comm, 2, id, 0);
  *secs = now_s() - t0;
  snprintf(msg, msg_len, "%s", hring_last_error());
  if (r == HRING_SUCCESS) hring_comm_destroy(comm);
  pthread_join(t, NULL);
  close(f.lfd);
  *acked = f.acked;
  return r;
}

static void expect_refused(root_kind_t kind, const char *what) {
  char msg[1024], addr[80], want[160];
  double secs;
  int acked;
  hring_result_t r = join_fake_root(kind, &secs, msg, sizeof msg, addr, sizeof addr, &acked);
  HREQUIRE(acked, "%s: the fake root never got to send its ack", what);
  HCHECK(r == HRING_ERR_REMOTE, "%s: init returned %s (%s)", what, hring_strerror(r), msg);
  snprintf(want, sizeof want, "the bootstrap root at %s does not know the job secret", addr);
  HCHECK(strstr(msg, want), "%s: the error does not say \"%s\": %s", what, want, msg);
  HCHECK(secs < 2.0, "%s: refusing the root took %.2f s (timeout 20 s)", what, secs);
  printf("  %s: init returned after %.1f ms: %s\n", what, secs * 1e3, msg);
}

HTEST(bootstrap_auth_wrong_secret_root, 30) {
  expect_refused(ROOT_WRONG_SECRET, "a root with another secret");
}

HTEST(bootstrap_auth_reflecting_root, 30) {
  expect_refused(ROOT_REFLECTS, "a root that echoes the rank's proof");
}

/* The control: the same listener with the right secret passes the ack, so
 * the two tests above fail for the proof and nothing else. */
HTEST(bootstrap_auth_true_root_passes_ack, 30) {
  char msg[1024], addr[80];
  double secs;
  int acked;
  hring_result_t r = join_fake_root(ROOT_KNOWS_SECRET, &secs, msg, sizeof msg, addr, sizeof addr,
                                    &acked);
  HREQUIRE(acked, "the fake root never got to send its ack");
  HCHECK(r != HRING_SUCCESS, "init succeeded against a root that hung up");
  HCHECK(!strstr(msg, "does not know the job secret"),
         "a root that knows the secret was refused: %s", msg);
  HCHECK(strstr(msg, "bootstrap"), "the error is not the bootstrap's: %s", msg);
  HCHECK(secs < 2.0, "init took %.2f s", secs);
}
