/*
 * test_netns.c - the same checks across emulated hosts: 4 network
 * namespaces joined by a bridge (tests/netns/cluster.sh), 2 ranks each,
 * shm within a host and tcp between hosts.  Needs root and iproute2; skips
 * with a message where namespaces cannot be made.  Each test removes its
 * namespaces when it ends normally; a failing or killed one leaves them to
 * the next run's "up" (fixed names per test), or to `cluster.sh down`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bodies.h"
#include "mp.h"

#define HOSTS 4

static char prefix[16];
static char script[4200];

static void cluster_down(void) {
  char cmd[4400];
  snprintf(cmd, sizeof cmd, "bash %s down %s >/dev/null 2>&1", script, prefix);
  if (system(cmd) != 0) fprintf(stderr, "  warning: %s failed\n", cmd);
}

/* Makes HOSTS namespaces (rate-limited when rate != NULL) and points the
 * ranks at them; skips the test where that is impossible. */
static void cluster_up(const char *name, const char *rate) {
  if (geteuid() != 0) htest_skip("emulated hosts need root (network namespaces)");
  snprintf(script, sizeof script, "%s/../../tests/netns/cluster.sh", mp_bindir());
  if (access(script, R_OK) != 0) snprintf(script, sizeof script, "tests/netns/cluster.sh");
  if (access(script, R_OK) != 0) htest_skip("tests/netns/cluster.sh not found");
  snprintf(prefix, sizeof prefix, "%s", name);
  char cmd[4400];
  snprintf(cmd, sizeof cmd, "bash %s up %s %d %s > /dev/null 2>&1", script, prefix, HOSTS,
           rate ? rate : "");
  if (system(cmd) != 0) {
    cluster_down();
    htest_skip("cannot create network namespaces here (%s up failed)", script);
  }
  char v[64];
  snprintf(v, sizeof v, "%s:%d", prefix, HOSTS);
  setenv("MP_NETNS", v, 1);
  snprintf(v, sizeof v, "%d", HOSTS);
  setenv("MP_NODES", v, 1);
  setenv("HRING_SOCKET_IFNAME", "eth0", 1);
}

HTEST(netns_allreduce_4x2, 240) {
  cluster_up("hrtm", NULL);
  size_t counts[] = {0, 1, 7, 1001, 65536 + 7, (1u << 20) + 3};
  mp_matrix_t m = {counts, 6, 1};
  int failed = mp_run(2 * HOSTS, mp_allreduce_matrix, &m);
  cluster_down();
  HREQUIRE(failed == 0, "the matrix on 4 hosts x 2 ranks failed");
}

HTEST(netns_peer_death_4x2, 90) {
  cluster_up("hrtd", NULL);
  mp_run_death(NULL, 2 * HOSTS);
  cluster_down();
}
