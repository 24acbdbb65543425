/*
 * test_tcp_cc.c - HRING_TCP_CC, the congestion control of the tcp data
 * sockets: a name the kernel has is used on every data socket, auto
 * replaces bbr by cubic where the kernel allows it and keeps any other
 * default, system keeps the kernel's default, and a name the kernel
 * refuses fails the communicator's creation naming the setting, leaving
 * the parent communicator working.  Two ranks on two emulated nodes, so
 * they talk over tcp.
 */
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/comm.h"
#include "core/socket.h"
#include "mp.h"
#include "transport/tcp.h"

static uint16_t port_of(int fd, int peer_side) {
  struct sockaddr_storage a;
  socklen_t len = sizeof a;
  memset(&a, 0, sizeof a);
  if ((peer_side ? getpeername(fd, (struct sockaddr *)&a, &len)
                 : getsockname(fd, (struct sockaddr *)&a, &len)) != 0)
    return 0;
  return hring__addr_port(&a);
}

/* Checks the congestion control of comm's tcp data sockets: the process's
 * tcp sockets whose local port is this rank's listener's (accepted) or
 * whose remote port is a peer's listener's (connected).  The number found. */
static int check_data_sockets(hring_comm_t comm, int rank, const char *want) {
  const hring_tcp_state_t *st = comm->tstate[HRING_TRANSPORT_TCP];
  HREQUIRE(st, "rank %d: no tcp state", rank);
  uint16_t mine = hring__addr_port(&st->addr);
  int found = 0;
  DIR *d = opendir("/proc/self/fd");
  HREQUIRE(d, "rank %d: /proc/self/fd", rank);
  for (struct dirent *e; (e = readdir(d));) {
    int fd = atoi(e->d_name);
    char cc[16];
    if (e->d_name[0] == '.' || fd == dirfd(d) || hring__sock_get_cc(fd, cc, sizeof cc) != 0)
      continue;
    int data = port_of(fd, 0) == mine;
    for (int p = 0; p < comm->nranks && !data; p++) {
      hring_tcp_blob_t copy;
      const hring_tcp_blob_t *b = hring__tcp_blob(comm, p, &copy);
      data = p != rank && b && port_of(fd, 1) == b->port;
    }
    if (!data) continue;
    found++;
    HCHECK(strcmp(cc, want) == 0, "rank %d: data socket %d uses %s, not %s", rank, fd, cc, want);
  }
  closedir(d);
  return found;
}

/* The kernel's default, and what auto should give: cubic where the default
 * is bbr and the kernel lets this process set cubic, else the default. */
static void expected(char dflt[16], char autocc[16]) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  HREQUIRE(fd >= 0, "socket");
  HREQUIRE(hring__sock_get_cc(fd, dflt, 16) == 0, "TCP_CONGESTION unreadable");
  int cubic = strcmp(dflt, "bbr") == 0 && hring__sock_set_cc(fd, "cubic") == 0;
  snprintf(autocc, 16, "%s", cubic ? "cubic" : dflt);
  close(fd);
}

static void allreduce_checked(hring_comm_t comm, int rank, int nranks, const char *what) {
  int32_t v[4096];
  for (int i = 0; i < 4096; i++) v[i] = rank + i;
  HCHECK(hring_allreduce(v, v, 4096, HRING_INT32, HRING_SUM, comm, NULL) == HRING_SUCCESS,
         "rank %d: allreduce %s: %s", rank, what, hring_last_error());
  HCHECK(v[4095] == nranks * (nranks - 1) / 2 + nranks * 4095, "rank %d: %s: wrong sum", rank,
         what);
}

/* A communicator split from comm with HRING_TCP_CC=value (NULL: unset). */
static hring_result_t split_with(hring_comm_t comm, int rank, const char *value, hring_comm_t *c) {
  if (value) setenv("HRING_TCP_CC", value, 1);
  else unsetenv("HRING_TCP_CC");
  hring_result_t r = hring_comm_split(comm, 0, rank, c);
  unsetenv("HRING_TCP_CC");
  return r;
}

static void body(hring_comm_t comm, int rank, int nranks, void *arg) {
  (void)arg;
  char dflt[16], autocc[16];
  expected(dflt, autocc);
  const struct {
    const char *value, *want;
  } cases[] = {{"reno", "reno"}, {NULL, autocc}, {"auto", autocc}, {"system", dflt}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hring_comm_t c = NULL;
    const char *v = cases[i].value ? cases[i].value : "(unset)";
    HREQUIRE(split_with(comm, rank, cases[i].value, &c) == HRING_SUCCESS,
             "rank %d: HRING_TCP_CC=%s: %s", rank, v, hring_last_error());
    allreduce_checked(c, rank, nranks, v);
    HCHECK(check_data_sockets(c, rank, cases[i].want) >= 1, "rank %d: HRING_TCP_CC=%s: no data socket found",
           rank, v);
    hring_comm_destroy(c);
  }
  hring_comm_t c = NULL;
  hring_result_t r = split_with(comm, rank, "no-such-cc", &c);
  HCHECK(r == HRING_ERR_INVALID_ARGUMENT && strstr(hring_last_error(), "HRING_TCP_CC=no-such-cc"),
         "rank %d: a congestion control the kernel lacks: %s (%s)", rank, hring_strerror(r),
         r == HRING_SUCCESS ? "no error" : hring_last_error());
  if (r == HRING_SUCCESS) hring_comm_destroy(c);
  allreduce_checked(comm, rank, nranks, "on the parent after a refused split");
}

HTEST(tcp_congestion_control, 60) {
  setenv("MP_NODES", "2", 1);
  HCHECK(mp_run(2, body, NULL) == 0, "a rank failed");
  unsetenv("MP_NODES");
}
