/*
 * comm.c - communicator creation, queries, destruction, and the registry of
 * live handles (so a destroyed or garbage handle is refused, not
 * dereferenced).
 */
#include "core/comm.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/bootstrap.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/pmix.h"
#include "core/progress.h"
#include "core/socket.h"
#include "core/topo.h"
#include "core/visibility.h"
#include "core/wait.h"
#include "algos/algo.h"
#include "algos/choose.h"
#include "algos/device.h"

/* ---- registry of live communicators ---- */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hring_comm **reg;
static size_t reg_n, reg_cap;

static int reg_add(struct hring_comm *c) {
  pthread_mutex_lock(&reg_lock);
  if (reg_n == reg_cap) {
    size_t cap = reg_cap ? reg_cap * 2 : 16;
    struct hring_comm **n = realloc(reg, cap * sizeof *n);
    if (!n) {
      pthread_mutex_unlock(&reg_lock);
      return -1;
    }
    reg = n;
    reg_cap = cap;
  }
  reg[reg_n++] = c;
  pthread_mutex_unlock(&reg_lock);
  return 0;
}

static int reg_remove(struct hring_comm *c) {
  int found = 0;
  pthread_mutex_lock(&reg_lock);
  for (size_t i = 0; i < reg_n; i++)
    if (reg[i] == c) {
      reg[i] = reg[--reg_n];
      found = 1;
      break;
    }
  pthread_mutex_unlock(&reg_lock);
  return found;
}

static int reg_has(struct hring_comm *c) {
  int found = 0;
  pthread_mutex_lock(&reg_lock);
  for (size_t i = 0; i < reg_n && !found; i++) found = reg[i] == c;
  pthread_mutex_unlock(&reg_lock);
  return found;
}

hring_result_t hring__comm_check(struct hring_comm *comm, const char *what) {
  if (!comm) return hring__err(HRING_ERR_INVALID_ARGUMENT, "%s: communicator is NULL", what);
  if (!reg_has(comm))
    return hring__err(HRING_ERR_INVALID_ARGUMENT,
                      "%s: %p is not a live communicator (destroyed, or never created)", what,
                      (void *)comm);
  return HRING_SUCCESS;
}

/* A call holds the communicator from enter to leave: the registry check and
 * the count move together under the registry lock, and hring_comm_abort
 * removes the communicator under that lock only once the count is zero, so
 * an abort racing a call's start either refuses the call (no longer
 * registered) or waits for it to leave; it never frees under it. */
hring_result_t hring__comm_enter(struct hring_comm *comm, const char *what) {
  if (!comm) return hring__err(HRING_ERR_INVALID_ARGUMENT, "%s: communicator is NULL", what);
  int found = 0;
  pthread_mutex_lock(&reg_lock);
  for (size_t i = 0; i < reg_n && !found; i++) found = reg[i] == comm;
  if (found) atomic_fetch_add(&comm->in_call, 1);
  pthread_mutex_unlock(&reg_lock);
  if (!found)
    return hring__err(HRING_ERR_INVALID_ARGUMENT,
                      "%s: %p is not a live communicator (destroyed, or never created)", what,
                      (void *)comm);
  return HRING_SUCCESS;
}

void hring__comm_leave(struct hring_comm *comm) { atomic_fetch_sub(&comm->in_call, 1); }

/* Removes c from the registry when no call holds it; 1 when removed. */
static int reg_remove_idle(struct hring_comm *c, int *gone) {
  int removed = 0;
  *gone = 1;
  pthread_mutex_lock(&reg_lock);
  for (size_t i = 0; i < reg_n; i++)
    if (reg[i] == c) {
      *gone = 0;
      if (atomic_load(&c->in_call) == 0) {
        reg[i] = reg[--reg_n];
        removed = 1;
      }
      break;
    }
  pthread_mutex_unlock(&reg_lock);
  return removed;
}

void hring__comm_fail(struct hring_comm *comm, hring_result_t code) {
  int expect = 0;
  /* A peer's failure notice may come from a rank that saw a death first,
   * and a closed connection from a rank that failed first: name the dead
   * rank, else the failed one, when there is one (its error becomes the
   * last). */
  if (code == HRING_ERR_REMOTE && comm->ready) (void)hring__transports_find_cause(comm);
  if (atomic_compare_exchange_strong(&comm->failing, &expect, 1)) {
    snprintf(comm->async_msg, sizeof comm->async_msg, "%s", hring_last_error());
    atomic_store(&comm->async_error, code);
    /* Ranks waiting on other ranks learn it now, not at their timeout. */
    /* Most messages already start with "rank N: "; name the rank once. */
    char why[192], me[24];
    int ml = snprintf(me, sizeof me, "rank %d: ", comm->rank);
    if (strncmp(comm->async_msg, me, (size_t)ml) == 0)
      snprintf(why, sizeof why, "%.190s", comm->async_msg);
    else
      snprintf(why, sizeof why, "%s%.160s", me, comm->async_msg);
    hring__transports_notify(comm, HRING_PEER_FAILED, code, why);
  }
}

/* ---- creation ---- */

/* The kernel's boot id ("" where it cannot be read). */
static void boot_id(char *out, size_t len) {
  out[0] = '\0';
  FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
  if (f) {
    if (!fgets(out, (int)len, f)) out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
  }
}

/* HRING_NODE_ID, else hostname:boot id (boot, read once by the caller). */
static void node_identity(char *out, size_t len, const char *boot) {
  const char *over = hring__cfg_str(HRING_CFG_NODE_ID);
  if (over && *over) {
    snprintf(out, len, "%s", over);
    return;
  }
  char host[HRING_HOST_MAX] = "";
  gethostname(host, sizeof host - 1);
  snprintf(out, len, "%.60s:%.34s", host, boot);
}

/* Ranks that share this rank's machine: emulated nodes (HRING_NODE_ID,
 * network namespaces) on one machine share its cores, and whether ranks
 * outnumber cores is what decides between spinning and yielding. */
static int same_machine(const struct hring_comm *c, int r) {
  const char *mine = c->peers[c->rank].machine_id;
  return *mine ? strcmp(c->peers[r].machine_id, mine) == 0 : c->node_of[r] == c->node;
}

static int machine_size(const struct hring_comm *c) {
  int n = 0;
  for (int r = 0; r < c->nranks; r++) n += same_machine(c, r);
  return n > c->local_size ? n : c->local_size;
}

/* CPUs the ranks of this machine may run on, together: the union of their
 * affinity sets.  A launcher that pins each rank to a core of its own
 * (mpirun, srun, hring-run) leaves each rank one CPU, yet the ranks do not
 * outnumber the machine's cores; two ranks pinned to the same CPU do. */
static int machine_cores(const struct hring_comm *c) {
  uint64_t u[HRING_CPU_WORDS] = {0};
  for (int r = 0; r < c->nranks; r++)
    if (same_machine(c, r))
      for (int w = 0; w < HRING_CPU_WORDS; w++) u[w] |= c->peers[r].cpus[w];
  int n = 0;
  for (int w = 0; w < HRING_CPU_WORDS; w++) n += __builtin_popcountll(u[w]);
  return n > 0 ? n : hring__topo_ncores();
}

static void comm_free(struct hring_comm *c, int drain) {
  if (!c) return;
  /* Destroy drained the nonblocking queue already; abort fails what is
   * left of it and joins the progress thread. */
  hring__progress_close(c, 0);
  hring__dev_close(c, drain);
  hring__choice_free(c);
  /* Peers tell a rank that left from one that died (wire.h). */
  if (drain && atomic_load(&c->async_error) == HRING_SUCCESS)
    hring__transports_notify(c, HRING_PEER_LEFT, HRING_SUCCESS, "left");
  else
    hring__transports_notify(c, HRING_PEER_FAILED,
                             atomic_load(&c->aborted) ? HRING_ERR_INVALID_USAGE : atomic_load(&c->async_error),
                             atomic_load(&c->aborted) ? "communicator aborted" : c->async_msg);
  hring__transports_close(c);
  if (c->bs) hring__bootstrap_close(c->bs);
  free(c->conns);
  free(c->blobs);
  free(c->peers);
  free(c->node_of);
  c->magic = 0;
  free(c);
}

/* What came from the network is checked before it is compared or printed:
 * strings end inside their fields, ranks sit in their slots, addresses are
 * IPv4 or IPv6. */
static hring_result_t check_peers(struct hring_comm *c) {
  for (int p = 0; p < c->nranks; p++) {
    const hring_peer_info_t *q = &c->peers[p];
    const char *bad = NULL;
    if (q->rank != p) bad = "its rank field";
    else if (!memchr(q->node_id, 0, sizeof q->node_id)) bad = "an unterminated node id";
    else if (!memchr(q->host, 0, sizeof q->host)) bad = "an unterminated host name";
    else if (q->addr.ss_family != AF_INET && q->addr.ss_family != AF_INET6)
      bad = "an address family that is neither IPv4 nor IPv6";
    if (bad)
      return hring__err(HRING_ERR_REMOTE, "bootstrap: the record of rank %d has %s", p, bad);
  }
  return HRING_SUCCESS;
}

static hring_result_t find_nodes(struct hring_comm *c) {
  c->node_of = malloc(sizeof(int) * (size_t)c->nranks);
  if (!c->node_of) return hring__err(HRING_ERR_NO_MEMORY, "comm init");
  c->nnodes = 0;
  for (int r = 0; r < c->nranks; r++) {
    c->node_of[r] = -1;
    for (int q = 0; q < r; q++)
      if (strcmp(c->peers[q].node_id, c->peers[r].node_id) == 0) {
        c->node_of[r] = c->node_of[q];
        break;
      }
    if (c->node_of[r] < 0) c->node_of[r] = c->nnodes++;
  }
  c->node = c->node_of[c->rank];
  c->local_size = 0;
  for (int r = 0; r < c->nranks; r++) {
    if (c->node_of[r] != c->node) continue;
    if (r == c->rank) c->local_rank = c->local_size;
    c->local_size++;
  }
  return HRING_SUCCESS;
}

static hring_result_t comm_create(struct hring_comm **out, int nranks, const hring_id_info_t *info,
                                  int rank) {
  hring_result_t r;
  hring_bind_t bind; /* read before any peer is waited for, so a bad value fails at once */
  HRING_CHECK(hring__topo_bind_mode(&bind));
  struct hring_comm *c = calloc(1, sizeof *c);
  if (!c) return hring__err(HRING_ERR_NO_MEMORY, "comm init");
  c->magic = HRING_COMM_MAGIC;
  c->rank = rank;
  c->nranks = nranks;
  c->timeout_ms = hring__cfg_int(HRING_CFG_TIMEOUT_MS);
  if (c->timeout_ms <= 0) c->timeout_ms = 300000;
  memcpy(c->secret, info->secret, sizeof c->secret);
  uint8_t idh[16];
  hring__auth_proof(c->secret, sizeof c->secret, (const uint8_t *)"comm-id", 7, idh);
  memcpy(&c->comm_id, idh, sizeof c->comm_id);
  hring__log_set_rank(rank);

  hring_peer_info_t me;
  memset(&me, 0, sizeof me);
  me.rank = rank;
  me.pid = (int32_t)getpid();
  gethostname(me.host, sizeof me.host - 1);
  boot_id(me.machine_id, sizeof me.machine_id);
  node_identity(me.node_id, sizeof me.node_id, me.machine_id);
  cpu_set_t allowed;
  hring__topo_allowed(&allowed);
  for (int cpu = 0; cpu < CPU_SETSIZE && cpu < 64 * HRING_CPU_WORDS; cpu++)
    if (CPU_ISSET(cpu, &allowed)) me.cpus[cpu / 64] |= 1ull << (cpu % 64);
  c->peers = calloc((size_t)nranks, sizeof *c->peers);
  c->conns = calloc((size_t)nranks, sizeof *c->conns);
  if (!c->peers || !c->conns) {
    r = hring__err(HRING_ERR_NO_MEMORY, "comm init");
    goto fail;
  }
  HRING_CHECK_GOTO(hring__sock_local_addr(&info->root, &me.addr), r, fail);
  HRING_CHECK_GOTO(hring__bootstrap_connect(info, rank, nranks, c->timeout_ms, &c->bs), r, fail);
  HRING_CHECK_GOTO(hring__bootstrap_allgather(c->bs, &me, c->peers, sizeof me), r, fail);
  HRING_CHECK_GOTO(check_peers(c), r, fail);
  HRING_CHECK_GOTO(find_nodes(c), r, fail);
  c->machine_size = machine_size(c);
  c->machine_cores = machine_cores(c);
  c->oversubscribed = c->machine_size > c->machine_cores;
  c->spin_ns = c->oversubscribed ? 0 : hring__cfg_int(HRING_CFG_SPIN_US) * 1000;
  hring__topo_bind(c, bind); /* before the transports, so their memory and threads follow */
  HRING_CHECK_GOTO(hring__transports_setup(c), r, fail);
  HRING_CHECK_GOTO(hring__algo_comm_init(c), r, fail);
  c->ready = 1;
  hring__bootstrap_close(c->bs);
  c->bs = NULL;
  if (reg_add(c) != 0) {
    r = hring__err(HRING_ERR_NO_MEMORY, "comm registry");
    goto fail;
  }
  HRING_INFO(HRING_SUB_INIT, "rank %d/%d up: node %d/%d, local rank %d/%d (%d rank(s) on this machine's %d cores)%s",
             rank, nranks, c->node, c->nnodes, c->local_rank, c->local_size, c->machine_size, c->machine_cores,
             c->oversubscribed ? " (oversubscribed: yielding instead of spinning)" : "");
  *out = c;
  return HRING_SUCCESS;
fail:
  comm_free(c, 0);
  return r;
}

/* ---- public calls ---- */

HRING_API hring_result_t hring_get_version(int *version) {
  if (!version) return hring__err(HRING_ERR_INVALID_ARGUMENT, "hring_get_version: NULL pointer");
  *version = HRING_VERSION_CODE;
  return HRING_SUCCESS;
}

HRING_API size_t hring_type_size(hring_datatype_t t) {
  static const size_t sz[HRING_NUM_TYPES] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2};
  return (unsigned)t < HRING_NUM_TYPES ? sz[t] : 0;
}

HRING_API hring_result_t hring_get_unique_id(hring_unique_id_t *id) {
  if (!id) return hring__err(HRING_ERR_INVALID_ARGUMENT, "hring_get_unique_id: id is NULL");
  hring_id_info_t info;
  memset(&info, 0, sizeof info);
  HRING_CHECK(hring__random(info.secret, sizeof info.secret));
  HRING_CHECK(hring__sock_local_addr(NULL, &info.root));
  int64_t timeout = hring__cfg_int(HRING_CFG_TIMEOUT_MS);
  HRING_CHECK(hring__bootstrap_root_start(&info, timeout > 0 ? timeout : 300000));
  return hring__id_pack(&info, id);
}

HRING_API hring_result_t hring_comm_init_rank(hring_comm_t *comm, int nranks,
                                              hring_unique_id_t id, int rank) {
  if (!comm) return hring__err(HRING_ERR_INVALID_ARGUMENT, "hring_comm_init_rank: comm is NULL");
  if (nranks < 1 || rank < 0 || rank >= nranks)
    return hring__err(HRING_ERR_INVALID_ARGUMENT,
                      "hring_comm_init_rank: rank %d of %d ranks is out of range", rank, nranks);
  hring_id_info_t info;
  HRING_CHECK(hring__id_unpack(&id, &info));
  HRING_CHECK(comm_create(comm, nranks, &info, rank));
  hring__err_clear();
  return HRING_SUCCESS;
}

static int env_int(const char *a, const char *b, int *out) {
  const char *s = getenv(a);
  if ((!s || !*s) && b) s = getenv(b);
  if (!s || !*s) return 0;
  char *end;
  long v = strtol(s, &end, 10);
  if (*end || v < 0 || v > (1 << 24)) return -1;
  *out = (int)v;
  return 1;
}

static int parse_hex(const char *s, uint8_t *out, size_t n) {
  if (strlen(s) != 2 * n) return -1;
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    if (!isxdigit((unsigned char)s[2 * i]) || !isxdigit((unsigned char)s[2 * i + 1]) ||
        sscanf(s + 2 * i, "%2x", &v) != 1)
      return -1;
    out[i] = (uint8_t)v;
  }
  return 0;
}

HRING_API hring_result_t hring_comm_init_env(hring_comm_t *comm) {
  if (!comm) return hring__err(HRING_ERR_INVALID_ARGUMENT, "hring_comm_init_env: comm is NULL");
  /* A root named in the environment wins; otherwise a PMIx server (mpirun,
   * srun --mpi=pmix) gives the rank, the size and the way to pass the id. */
  const char *hr = hring__cfg_str(HRING_CFG_ROOT), *ma = getenv("MASTER_ADDR");
  if ((!hr || !*hr) && (!ma || !*ma) && hring__pmix_present()) {
    hring_unique_id_t id;
    int rank = -1, nranks = -1;
    int64_t timeout = hring__cfg_int(HRING_CFG_TIMEOUT_MS);
    HRING_CHECK(hring__pmix_unique_id(timeout > 0 ? timeout : 300000, &id, &rank, &nranks));
    return hring_comm_init_rank(comm, nranks, id, rank);
  }
  int rank = -1, nranks = -1;
  if (env_int("HRING_RANK", "RANK", &rank) != 1 || env_int("HRING_NRANKS", "WORLD_SIZE", &nranks) != 1)
    return hring__err(HRING_ERR_INVALID_ARGUMENT,
                      "hring_comm_init_env: set HRING_RANK and HRING_NRANKS (hring-run does), or "
                      "RANK and WORLD_SIZE, or launch with mpirun or srun --mpi=pmix (PMIx)");
  if (nranks < 1 || rank >= nranks)
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "hring_comm_init_env: rank %d of %d is out of range",
                      rank, nranks);
  char root[300];
  if (hr && *hr) {
    snprintf(root, sizeof root, "%s", hr);
  } else {
    const char *mp = getenv("MASTER_PORT");
    if (!ma || !*ma || !mp || !*mp)
      return hring__err(HRING_ERR_INVALID_ARGUMENT,
                        "hring_comm_init_env: set HRING_ROOT=host:port, or MASTER_ADDR and "
                        "MASTER_PORT");
    snprintf(root, sizeof root, strchr(ma, ':') ? "[%s]:%s" : "%s:%s", ma, mp);
  }
  hring_id_info_t info;
  memset(&info, 0, sizeof info);
  HRING_CHECK(hring__addr_parse(root, &info.root));
  if (hring__addr_port(&info.root) == 0)
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "hring_comm_init_env: root '%s' has no port", root);
  const char *sec = hring__cfg_str(HRING_CFG_SECRET);
  if (sec && *sec && parse_hex(sec, info.secret, sizeof info.secret) != 0)
    return hring__err(HRING_ERR_INVALID_ARGUMENT,
                      "hring_comm_init_env: HRING_SECRET must be 32 hex digits");
  if (rank == 0) {
    int64_t timeout = hring__cfg_int(HRING_CFG_TIMEOUT_MS);
    hring_id_info_t bind = info;
    HRING_CHECK(hring__bootstrap_root_start(&bind, timeout > 0 ? timeout : 300000));
  }
  HRING_CHECK(comm_create(comm, nranks, &info, rank));
  hring__err_clear();
  return HRING_SUCCESS;
}

HRING_API hring_result_t hring_comm_rank(hring_comm_t comm, int *rank) {
  HRING_CHECK(hring__comm_check(comm, "hring_comm_rank"));
  if (!rank) return hring__err(HRING_ERR_INVALID_ARGUMENT, "hring_comm_rank: NULL pointer");
  *rank = comm->rank;
  return HRING_SUCCESS;
}

HRING_API hring_result_t hring_comm_size(hring_comm_t comm, int *size) {
  HRING_CHECK(hring__comm_check(comm, "hring_comm_size"));
  if (!size) return hring__err(HRING_ERR_INVALID_ARGUMENT, "hring_comm_size: NULL pointer");
  *size = comm->nranks;
  return HRING_SUCCESS;
}

HRING_API hring_result_t hring_comm_get_async_error(hring_comm_t comm, hring_result_t *err) {
  HRING_CHECK(hring__comm_check(comm, "hring_comm_get_async_error"));
  if (!err)
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "hring_comm_get_async_error: NULL pointer");
  *err = comm->async_error;
  return HRING_SUCCESS;
}

HRING_API hring_result_t hring_comm_destroy(hring_comm_t comm) {
  /* Held while the queued nonblocking collectives finish (they need the
   * handle registered), so a concurrent abort waits for them. */
  HRING_CHECK(hring__comm_enter(comm, "hring_comm_destroy"));
  hring__progress_close(comm, 1);
  int removed = reg_remove(comm);
  hring__comm_leave(comm);
  if (!removed)
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "hring_comm_destroy: already destroyed");
  comm_free(comm, 1);
  return HRING_SUCCESS;
}

HRING_API hring_result_t hring_comm_abort(hring_comm_t comm) {
  HRING_CHECK(hring__comm_check(comm, "hring_comm_abort"));
  atomic_store(&comm->aborted, 1);
  /* A blocked call sees the flag at its next poll (the waiter sleeps at
   * most 1 ms between polls) and leaves; a call just starting sees it in
   * its argument checks. */
  uint64_t deadline = hring__now_ns() + 10ull * 1000000000ull;
  for (;;) {
    int gone;
    if (reg_remove_idle(comm, &gone)) break;
    if (gone) return HRING_SUCCESS; /* another thread destroyed or aborted it meanwhile */
    if (hring__now_ns() > deadline)
      return hring__err(HRING_ERR_INTERNAL, "hring_comm_abort: the blocked call did not leave");
    usleep(100);
  }
  comm_free(comm, 0);
  return HRING_SUCCESS;
}
