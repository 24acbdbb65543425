/*
 * test_topo.c - node queries (local rank and size, node, node count) on
 * emulated nodes, their refusal of bad handles, HRING_BIND pinning, and the
 * topology detection that the pinning relies on.
 */
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/comm.h"
#include "core/topo.h"
#include "mp.h"

/* ---- node queries ---- */

/* With MP_NODES=k rank r is on emulated node r % k; nodes are numbered by
 * their lowest rank, so node r % k is also the node index. */
static void nodes_body(hring_comm_t comm, int rank, int n, void *arg) {
  int k = *(const int *)arg;
  int lr = -1, ls = -1, node = -1, nn = -1;
  HREQUIRE(hring_comm_local_rank(comm, &lr) == HRING_SUCCESS, "local_rank: %s", hring_last_error());
  HREQUIRE(hring_comm_local_size(comm, &ls) == HRING_SUCCESS, "local_size: %s", hring_last_error());
  HREQUIRE(hring_comm_node(comm, &node) == HRING_SUCCESS, "node: %s", hring_last_error());
  HREQUIRE(hring_comm_node_count(comm, &nn) == HRING_SUCCESS, "node_count: %s", hring_last_error());
  int want_nn = n < k ? n : k, want_node = rank % k, want_lr = rank / k;
  int want_ls = (n - rank % k + k - 1) / k;
  HCHECK(nn == want_nn, "%d ranks on %d nodes: rank %d sees %d nodes", n, k, rank, nn);
  HCHECK(node == want_node, "%d ranks on %d nodes: rank %d on node %d, expected %d", n, k, rank,
         node, want_node);
  HCHECK(lr == want_lr, "%d ranks on %d nodes: rank %d has local rank %d, expected %d", n, k, rank,
         lr, want_lr);
  HCHECK(ls == want_ls, "%d ranks on %d nodes: rank %d has local size %d, expected %d", n, k, rank,
         ls, want_ls);
}

/* No collective is run: the expected values above are exact for every
 * rank, and a rank that fails ends the sweep (a later rank inherits the
 * failure count of the test process and could not tell its own). */
static void sweep_nodes(int k) {
  char v[8];
  snprintf(v, sizeof v, "%d", k);
  setenv("MP_NODES", v, 1);
  for (int n = 1; n <= 8; n++)
    HREQUIRE(mp_run(n, nodes_body, &k) == 0, "%d ranks on %d emulated nodes: a rank failed", n, k);
}

HTEST(topo_nodes_1, 60) { sweep_nodes(1); }
HTEST(topo_nodes_2, 60) { sweep_nodes(2); }
HTEST(topo_nodes_3, 60) { sweep_nodes(3); }

/* Without an override every rank of this machine is on one node. */
static void default_node_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg;
  int lr = -1, ls = -1, node = -1, nn = -1;
  HREQUIRE(hring_comm_local_rank(comm, &lr) == HRING_SUCCESS &&
               hring_comm_local_size(comm, &ls) == HRING_SUCCESS &&
               hring_comm_node(comm, &node) == HRING_SUCCESS &&
               hring_comm_node_count(comm, &nn) == HRING_SUCCESS,
           "queries: %s", hring_last_error());
  HCHECK(nn == 1 && node == 0 && lr == rank && ls == n,
         "rank %d of %d: node %d of %d, local %d of %d", rank, n, node, nn, lr, ls);
}

HTEST(topo_nodes_default_identity, 30) {
  unsetenv("MP_NODES");
  unsetenv("HRING_NODE_ID");
  HREQUIRE(mp_run(3, default_node_body, NULL) == 0, "a rank failed");
}

static void bad_handles_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)rank; (void)n; (void)arg;
  hring_unique_id_t id;
  hring_comm_t gone;
  HREQUIRE(hring_get_unique_id(&id) == HRING_SUCCESS, "id");
  HREQUIRE(hring_comm_init_rank(&gone, 1, id, 0) == HRING_SUCCESS, "solo: %s", hring_last_error());
  HREQUIRE(hring_comm_destroy(gone) == HRING_SUCCESS, "destroy");
  hring_comm_t bad[] = {NULL, (hring_comm_t)(uintptr_t)0x1000, gone};
  const char *names[] = {"NULL", "garbage", "destroyed"};
  typedef hring_result_t (*query_fn)(hring_comm_t, int *);
  query_fn q[] = {hring_comm_local_rank, hring_comm_local_size, hring_comm_node,
                  hring_comm_node_count};
  const char *qn[] = {"local_rank", "local_size", "node", "node_count"};
  for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
      int out = -77;
      hring_result_t r = q[i](bad[b], &out);
      HCHECK(r == HRING_ERR_INVALID_ARGUMENT, "%s on a %s handle: %s", qn[i], names[b],
             hring_strerror(r));
      HCHECK(out == -77, "%s on a %s handle wrote %d", qn[i], names[b], out);
      HCHECK(strstr(hring_last_error(), qn[i]) != NULL, "message does not name the call: %s",
             hring_last_error());
    }
    hring_result_t r = q[i](comm, NULL);
    HCHECK(r == HRING_ERR_INVALID_ARGUMENT, "%s with a NULL pointer: %s", qn[i], hring_strerror(r));
  }
  int nn = 0;
  HCHECK(hring_comm_node_count(comm, &nn) == HRING_SUCCESS && nn == 2, "still usable: %d nodes", nn);
}

HTEST(topo_bad_handles, 30) {
  setenv("MP_NODES", "2", 1);
  HREQUIRE(mp_run(2, bad_handles_body, NULL) == 0, "a rank failed");
}

/* ---- HRING_BIND ---- */

static int sys_core(int cpu, long *pkg, long *core) {
  char path[128];
  FILE *f;
  snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", cpu);
  if (!(f = fopen(path, "r")) || fscanf(f, "%ld", core) != 1) {
    if (f) fclose(f);
    return -1;
  }
  fclose(f);
  snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", cpu);
  if (!(f = fopen(path, "r")) || fscanf(f, "%ld", pkg) != 1) *pkg = 0;
  if (f) fclose(f);
  return 0;
}

typedef struct {
  cpu_set_t before; /* the test process's CPUs, which the ranks inherit */
  int cores;        /* physical cores among them */
} bind_arg_t;

/* The physical cores holding CPUs of a set, from the kernel's files (not
 * from topo.c, which is under test). */
static int count_cores(const cpu_set_t *set, int *first_cpu_of_core) {
  long keys[CPU_SETSIZE];
  int n = 0;
  for (int c = 0; c < CPU_SETSIZE; c++) {
    if (!CPU_ISSET(c, set)) continue;
    long pkg = 0, core = -1 - c;
    sys_core(c, &pkg, &core);
    long k = pkg * 1000000 + core;
    int i = 0;
    while (i < n && keys[i] != k) i++;
    if (i == n) {
      if (first_cpu_of_core) first_cpu_of_core[n] = c;
      keys[n++] = k;
    }
  }
  return n;
}

static void bind_core_body(hring_comm_t comm, int rank, int n, void *arg) {
  const bind_arg_t *a = arg;
  cpu_set_t now;
  HREQUIRE(sched_getaffinity(0, sizeof now, &now) == 0, "sched_getaffinity");
  cpu_set_t outside;
  CPU_XOR(&outside, &now, &a->before);
  CPU_AND(&outside, &outside, &now);
  HCHECK(CPU_COUNT(&outside) == 0, "rank %d pinned outside the CPUs it was allowed", rank);
  int cores = count_cores(&now, NULL);
  HCHECK(cores == 1, "rank %d: HRING_BIND=core left it on %d cores (%d CPUs)", rank, cores,
         CPU_COUNT(&now));
  /* Local rank i gets the i-th core; with more local ranks than cores,
   * core i * cores / local size, so that consecutive ranks share one. */
  int lr = -1, ls = 0, first[CPU_SETSIZE];
  hring_comm_local_rank(comm, &lr);
  hring_comm_local_size(comm, &ls);
  count_cores(&a->before, first);
  int cpu = -1;
  for (int c = 0; c < CPU_SETSIZE && cpu < 0; c++)
    if (CPU_ISSET(c, &now)) cpu = c;
  const int slot = ls > a->cores ? (int)((long)lr * a->cores / ls) : lr;
  long p1 = 0, c1 = -1 - cpu, p2 = 0, want = first[slot], c2 = -1 - want;
  sys_core(cpu, &p1, &c1);
  sys_core((int)want, &p2, &c2);
  HCHECK(p1 == p2 && c1 == c2, "local rank %d on the core of CPU %d, expected that of CPU %ld", lr,
         cpu, want);
  /* A second communicator divides the CPUs the process had, not the one
   * core the first left it: it must not think itself oversubscribed. */
  HCHECK(hring__topo_ncores() == CPU_COUNT(&a->before), "cores before pinning: %d, expected %d",
         hring__topo_ncores(), CPU_COUNT(&a->before));
  /* The pinning is logged at INFO. */
  char path[128], line[1024];
  snprintf(path, sizeof path, "/tmp/hring-topo-test-%d.log", (int)getpid());
  FILE *f = fopen(path, "r");
  int logged = 0;
  while (f && fgets(line, sizeof line, f)) logged |= strstr(line, "bind: rank") != NULL;
  if (f) fclose(f);
  unlink(path);
  HCHECK(logged, "rank %d: no INFO line about the binding in %s", rank, path);
  (void)n;
}

static void bind_setup(bind_arg_t *a, const char *mode) {
  HREQUIRE(sched_getaffinity(0, sizeof a->before, &a->before) == 0, "sched_getaffinity");
  a->cores = count_cores(&a->before, NULL);
  setenv("HRING_BIND", mode, 1);
  setenv("HRING_DEBUG", "INFO", 1);
  setenv("HRING_DEBUG_SUBSYS", "INIT", 1);
  setenv("HRING_DEBUG_FILE", "/tmp/hring-topo-test-%p.log", 1);
}

HTEST(topo_bind_core, 60) {
  bind_arg_t a;
  bind_setup(&a, "core");
  if (a.cores < 2) HSKIP("one core allowed: pinning to one core cannot be told from no pinning");
  unsetenv("MP_NODES");
  /* As many ranks as cores, then one more (in blocks). */
  HREQUIRE(mp_run(a.cores < 8 ? a.cores : 8, bind_core_body, &a) == 0, "a rank failed");
  if (a.cores < 8) HREQUIRE(mp_run(a.cores + 1, bind_core_body, &a) == 0, "oversubscribed: a rank failed");
  /* On emulated nodes local ranks restart at 0 on every node. */
  setenv("MP_NODES", "2", 1);
  HCHECK(mp_run(4, bind_core_body, &a) == 0, "two emulated nodes: a rank failed");
}

static void bind_numa_body(hring_comm_t comm, int rank, int n, void *arg) {
  const bind_arg_t *a = arg;
  (void)n;
  cpu_set_t now, want, node;
  HREQUIRE(sched_getaffinity(0, sizeof now, &now) == 0, "sched_getaffinity");
  int lr = -1;
  hring_comm_local_rank(comm, &lr);
  /* The nodes holding allowed CPUs, read from the kernel's files. */
  int held = 0;
  CPU_ZERO(&want);
  for (int id = 0; id < 1024; id++) {
    char path[96], buf[4096];
    snprintf(path, sizeof path, "/sys/devices/system/node/node%d/cpulist", id);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    int ok = fgets(buf, sizeof buf, f) != NULL;
    fclose(f);
    CPU_ZERO(&node);
    for (char *s = buf; ok && *s && *s != '\n';) {
      long x = strtol(s, &s, 10), y = x;
      if (*s == '-') y = strtol(s + 1, &s, 10);
      for (long c = x; c <= y && c < CPU_SETSIZE; c++) CPU_SET((int)c, &node);
      if (*s == ',') s++;
    }
    CPU_AND(&node, &node, &a->before);
    if (CPU_COUNT(&node) == 0) continue;
    held++;
    if (held - 1 == lr) want = node;
  }
  if (held == 0) want = a->before; /* no NUMA in this kernel: one node */
  else if (lr >= held) return;      /* round-robin: checked on the first ranks */
  HCHECK(CPU_EQUAL(&now, &want), "rank %d (local %d): HRING_BIND=numa gave %d CPUs, expected %d",
         rank, lr, CPU_COUNT(&now), CPU_COUNT(&want));
}

HTEST(topo_bind_numa, 30) {
  bind_arg_t a;
  bind_setup(&a, "numa");
  unsetenv("HRING_DEBUG_FILE");
  unsetenv("HRING_DEBUG");
  unsetenv("MP_NODES");
  HCHECK(mp_run(2, bind_numa_body, &a) == 0, "a rank failed");
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* A bad value fails creation at once (before waiting for the peer that
 * will never come here) and names the variable and the accepted values. */
HTEST(topo_bind_bad_value, 20) {
  const char *bad[] = {"cores", "CORE", "1", "numa,core"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    setenv("HRING_BIND", bad[i], 1);
    hring_unique_id_t id;
    hring_comm_t comm = NULL;
    HREQUIRE(hring_get_unique_id(&id) == HRING_SUCCESS, "id");
    double t0 = now_s();
    hring_result_t r = hring_comm_init_rank(&comm, 2, id, 0);
    HCHECK(r == HRING_ERR_INVALID_ARGUMENT, "HRING_BIND=%s: %s", bad[i], hring_strerror(r));
    HCHECK(now_s() - t0 < 2.0, "HRING_BIND=%s refused after %.1f s", bad[i], now_s() - t0);
    HCHECK(strstr(hring_last_error(), "HRING_BIND") && strstr(hring_last_error(), "none, core or numa"),
           "message: %s", hring_last_error());
  }
  /* The accepted values, on a one-rank communicator. */
  const char *good[] = {"none", "core", "numa"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    setenv("HRING_BIND", good[i], 1);
    hring_unique_id_t id;
    hring_comm_t comm = NULL;
    HREQUIRE(hring_get_unique_id(&id) == HRING_SUCCESS, "id");
    hring_result_t r = hring_comm_init_rank(&comm, 1, id, 0);
    HCHECK(r == HRING_SUCCESS, "HRING_BIND=%s: %s: %s", good[i], hring_strerror(r), hring_last_error());
    if (r == HRING_SUCCESS) hring_comm_destroy(comm);
  }
}

/* ---- detection ---- */

/* What the binding relies on holds whichever source answered, and hwloc and
 * Linux agree on which allowed CPUs share a core and a NUMA node. */
HTEST(topo_detect, 20) {
  static hring_topo_t lin, hw;
  hring__topo_detect(&lin, 0);
  hring__topo_detect(&hw, 1);
  const hring_topo_t *ts[] = {&lin, &hw};
  for (int k = 0; k < 2; k++) {
    const hring_topo_t *t = ts[k];
    HCHECK(t->ncpus >= CPU_COUNT(&t->allowed) && t->ncores >= 1 && t->ncores <= t->ncpus,
           "%s: %d CPUs, %d cores, %d allowed", t->source, t->ncpus, t->ncores, CPU_COUNT(&t->allowed));
    HCHECK(t->nnuma >= 1, "%s: no NUMA node", t->source);
    for (int c = 0; c < CPU_SETSIZE; c++)
      if (CPU_ISSET(c, &t->allowed)) {
        HCHECK(t->core_of[c] >= 0, "%s: allowed CPU %d has no core", t->source, c);
        HCHECK(hring__topo_numa_of_cpu(t, c) >= 0, "%s: allowed CPU %d has no NUMA node", t->source, c);
      }
    /* Core plans of local ranks 0..cores-1 split the allowed CPUs. */
    cpu_set_t all, one, x;
    CPU_ZERO(&all);
    int cores = 0;
    for (int c = 0; c < CPU_SETSIZE; c++)
      if (CPU_ISSET(c, &t->allowed) && !CPU_ISSET(c, &all)) {
        char what[96];
        HREQUIRE(hring__topo_bind_plan(t, &t->allowed, HRING_BIND_CORE, cores, cores + 1, &one, what,
                                       sizeof what) == 0, "%s: no plan for local rank %d", t->source, cores);
        CPU_AND(&x, &one, &all);
        HCHECK(CPU_COUNT(&x) == 0 && CPU_COUNT(&one) > 0, "%s: local rank %d: %s overlaps or is empty",
               t->source, cores, what);
        CPU_OR(&all, &all, &one);
        cores++;
      }
    HCHECK(CPU_EQUAL(&all, &t->allowed), "%s: the core plans do not cover the allowed CPUs", t->source);
  }
  int nics_up = 0;
  for (int i = 0; i < lin.nnics; i++) nics_up += lin.nics[i].loopback && lin.nics[i].up;
  HCHECK(nics_up == 1, "Linux: %d loopback interfaces up (lo expected)", nics_up);
  if (!hw.hwloc) HSKIP("hwloc not used (%s): Linux checked alone", hw.source);
  for (int a = 0; a < CPU_SETSIZE; a++)
    for (int b = a + 1; b < CPU_SETSIZE; b++) {
      if (!CPU_ISSET(a, &lin.allowed) || !CPU_ISSET(b, &lin.allowed)) continue;
      HCHECK((lin.core_of[a] == lin.core_of[b]) == (hw.core_of[a] == hw.core_of[b]),
             "CPUs %d and %d: same core for %s, not for the other", a, b,
             lin.core_of[a] == lin.core_of[b] ? "Linux" : "hwloc");
      int la = hring__topo_numa_of_cpu(&lin, a), lb = hring__topo_numa_of_cpu(&lin, b);
      int ha = hring__topo_numa_of_cpu(&hw, a), hb = hring__topo_numa_of_cpu(&hw, b);
      HCHECK((la == lb) == (ha == hb), "CPUs %d and %d: NUMA nodes disagree", a, b);
    }
  HCHECK(lin.nnuma == hw.nnuma, "NUMA nodes: Linux %d, hwloc %d", lin.nnuma, hw.nnuma);
}

/* ---- cores of the machine ---- */

/* Whether ranks outnumber cores counts the CPUs of all the machine's ranks
 * together.  Each rank pinned to a CPU of its own (as mpirun, srun and
 * hring-run pin them) is not oversubscribed where the machine has a CPU
 * per rank; every rank pinned to one CPU is.  Before, each rank counted
 * only its own CPUs, and a rank pinned to one thought itself
 * oversubscribed with any second rank. */
typedef struct {
  int want_cores, want_over;
} cores_arg_t;

static void cores_body(hring_comm_t comm, int rank, int n, void *arg) {
  const cores_arg_t *a = arg;
  HCHECK(comm->machine_cores == a->want_cores, "rank %d of %d: %d CPUs for the machine, want %d",
         rank, n, comm->machine_cores, a->want_cores);
  HCHECK(comm->oversubscribed == a->want_over, "rank %d of %d: oversubscribed %d, want %d", rank, n,
         comm->oversubscribed, a->want_over);
  int32_t v = rank + 1;
  HCHECK(hring_allreduce(&v, &v, 1, HRING_INT32, HRING_SUM, comm, NULL) == HRING_SUCCESS &&
             v == n * (n + 1) / 2, "rank %d: allreduce %d", rank, v);
}

HTEST(topo_cores_of_pinned_ranks, 60) {
  cpu_set_t before, one;
  HREQUIRE(sched_getaffinity(0, sizeof before, &before) == 0, "sched_getaffinity");
  const int ncpu = CPU_COUNT(&before);
  /* Unpinned: every rank sees all the CPUs. */
  cores_arg_t a = {ncpu, 2 > ncpu};
  HCHECK(mp_run(2, cores_body, &a) == 0, "2 ranks unpinned: a rank failed");
  /* Each on a CPU of its own (the same one when the machine has one). */
  setenv("MP_PIN_EACH", "1", 1);
  a = (cores_arg_t){ncpu >= 2 ? 2 : 1, ncpu < 2};
  HCHECK(mp_run(2, cores_body, &a) == 0, "2 ranks on CPUs of their own: a rank failed");
  unsetenv("MP_PIN_EACH");
  /* All on the first CPU. */
  CPU_ZERO(&one);
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &before)) {
      CPU_SET(c, &one);
      break;
    }
  HREQUIRE(sched_setaffinity(0, sizeof one, &one) == 0, "sched_setaffinity");
  a = (cores_arg_t){1, 1};
  int failed = mp_run(2, cores_body, &a);
  HREQUIRE(sched_setaffinity(0, sizeof before, &before) == 0, "sched_setaffinity back");
  HCHECK(failed == 0, "2 ranks on one CPU: a rank failed");
}
