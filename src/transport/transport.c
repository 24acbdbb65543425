/*
 * transport.c - choosing a transport per peer and setting all of them up.
 *
 * The choice must be the same on both ends of a pair, so it depends only on
 * what both ranks published: the transports each allows (HRING_TRANSPORTS)
 * and whether the pair is reachable (same node for shm).  The first
 * transport in preference order that both allow and that reaches wins.
 */
#include "transport/transport.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/bootstrap.h"
#include "core/comm.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/wait.h"

static const hring_transport_ops_t *const transports[HRING_NUM_TRANSPORTS] = {
    [HRING_TRANSPORT_SHM] = &hring__shm_ops,
    [HRING_TRANSPORT_TCP] = &hring__tcp_ops,
};

const hring_transport_ops_t *hring__transport(int index) {
  return index >= 0 && index < HRING_NUM_TRANSPORTS ? transports[index] : NULL;
}

hring_result_t hring__transport_unsupported_reg(struct hring_comm *comm, void *buf, size_t len,
                                                void **handle) {
  (void)comm; (void)buf; (void)len; (void)handle;
  return hring__err(HRING_ERR_UNSUPPORTED, "memory registration: not supported by this transport");
}

hring_result_t hring__transport_unsupported_dereg(struct hring_comm *comm, void *handle) {
  (void)comm; (void)handle;
  return hring__err(HRING_ERR_UNSUPPORTED, "memory registration: not supported by this transport");
}

/* Bit t set when transport t may be used (HRING_TRANSPORTS, default all). */
static hring_result_t allowed_mask(unsigned *mask) {
  const char *list = hring__cfg_str(HRING_CFG_TRANSPORTS);
  if (!list || !*list) {
    *mask = (1u << HRING_NUM_TRANSPORTS) - 1;
    return HRING_SUCCESS;
  }
  char buf[256];
  snprintf(buf, sizeof buf, "%s", list);
  *mask = 0;
  for (char *save = NULL, *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
    int found = 0;
    for (int t = 0; t < HRING_NUM_TRANSPORTS; t++)
      if (strcasecmp(tok, transports[t]->name) == 0) {
        *mask |= 1u << t;
        found = 1;
      }
    if (!found)
      return hring__err(HRING_ERR_INVALID_ARGUMENT, "HRING_TRANSPORTS: unknown transport '%s' "
                        "(known: shm, tcp)", tok);
  }
  if (!*mask) return hring__err(HRING_ERR_INVALID_ARGUMENT, "HRING_TRANSPORTS: empty list");
  return HRING_SUCCESS;
}

/* What each rank publishes: its mask, then one blob per transport. */
typedef struct {
  uint32_t mask;
  uint32_t pad[15];
} mask_blob_t;

hring_result_t hring__transports_setup(struct hring_comm *comm) {
  hring_result_t r = HRING_SUCCESS;
  unsigned mine;
  HRING_CHECK(allowed_mask(&mine));
  size_t per_rank = sizeof(mask_blob_t) + (size_t)HRING_NUM_TRANSPORTS * HRING_TRANSPORT_BLOB;
  uint8_t *local = calloc(1, per_rank);
  uint8_t *all = calloc((size_t)comm->nranks, per_rank);
  int *peers = malloc(sizeof(int) * (size_t)comm->nranks * HRING_NUM_TRANSPORTS);
  comm->blobs = calloc((size_t)comm->nranks * HRING_NUM_TRANSPORTS, HRING_TRANSPORT_BLOB);
  int npeers[HRING_NUM_TRANSPORTS] = {0};
  if (!local || !all || !peers || !comm->blobs) {
    r = hring__err(HRING_ERR_NO_MEMORY, "transport set-up");
    goto out;
  }
  ((mask_blob_t *)local)->mask = mine;
  for (int t = 0; t < HRING_NUM_TRANSPORTS; t++)
    if (mine & (1u << t))
      HRING_CHECK_GOTO(transports[t]->local_init(comm, local + sizeof(mask_blob_t) +
                                                           (size_t)t * HRING_TRANSPORT_BLOB),
                       r, out);
  HRING_CHECK_GOTO(hring__bootstrap_allgather(comm->bs, local, all, per_rank), r, out);
  for (int p = 0; p < comm->nranks; p++)
    memcpy(hring__comm_blob(comm, p, 0), all + (size_t)p * per_rank + sizeof(mask_blob_t),
           (size_t)HRING_NUM_TRANSPORTS * HRING_TRANSPORT_BLOB);
  for (int p = 0; p < comm->nranks; p++) {
    if (p == comm->rank) continue;
    unsigned both = mine & ((mask_blob_t *)(all + (size_t)p * per_rank))->mask;
    int chosen = -1;
    for (int t = 0; t < HRING_NUM_TRANSPORTS && chosen < 0; t++)
      if ((both & (1u << t)) && transports[t]->reachable(comm, p)) chosen = t;
    if (chosen < 0) {
      r = hring__err(HRING_ERR_INVALID_USAGE, "rank %d: no transport reaches rank %d (host %s); "
                     "check HRING_TRANSPORTS on both ranks", comm->rank, p, comm->peers[p].host);
      goto out;
    }
    peers[chosen * comm->nranks + npeers[chosen]++] = p;
  }
  for (int t = 0; t < HRING_NUM_TRANSPORTS; t++) {
    if (npeers[t] == 0) continue;
    HRING_INFO(HRING_SUB_INIT, "rank %d: %d peer(s) over %s", comm->rank, npeers[t],
               transports[t]->name);
    HRING_CHECK_GOTO(transports[t]->connect(comm, peers + t * comm->nranks, npeers[t]), r, out);
  }
  HRING_CHECK_GOTO(hring__bootstrap_barrier(comm->bs), r, out);
  for (int t = 0; t < HRING_NUM_TRANSPORTS; t++)
    if (mine & (1u << t)) HRING_CHECK_GOTO(transports[t]->after_barrier(comm), r, out);
out:
  free(local);
  free(all);
  free(peers);
  return r;
}

void hring__transports_close(struct hring_comm *comm) {
  for (int t = 0; t < HRING_NUM_TRANSPORTS; t++) transports[t]->comm_close(comm);
}

hring_result_t hring__transports_health(struct hring_comm *comm) {
  if (!comm->conns) return HRING_SUCCESS;
  uint64_t now = hring__now_ns();
  if (now - comm->health_ns < 100000000ull) return HRING_SUCCESS;
  comm->health_ns = now;
  /* Deaths first: a rank that saw a peer die reports that rank, not the
   * failure notice of another rank that saw it first; then notices, which
   * name the first cause, before connections closed by ranks that failed
   * because of it. */
  for (int level = HRING_HEALTH_DEATHS; level >= HRING_HEALTH_ALL; level--)
    for (int p = 0; p < comm->nranks; p++)
      if (comm->conns[p]) HRING_CHECK(comm->conns[p]->ops->health(comm->conns[p], level));
  return HRING_SUCCESS;
}

hring_result_t hring__transports_find_cause(struct hring_comm *comm) {
  if (!comm->conns) return HRING_SUCCESS;
  for (int level = HRING_HEALTH_DEATHS; level >= HRING_HEALTH_NOTICES; level--)
    for (int p = 0; p < comm->nranks; p++)
      if (comm->conns[p]) HRING_CHECK(comm->conns[p]->ops->health(comm->conns[p], level));
  return HRING_SUCCESS;
}

void hring__transports_notify(struct hring_comm *comm, int state, hring_result_t code,
                              const char *why) {
  if (!comm->conns) return;
  for (int p = 0; p < comm->nranks; p++)
    if (comm->conns[p]) comm->conns[p]->ops->notify(comm->conns[p], state, code, why);
}

int hring__process_dead(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return 1;
  /* A killed process stays a zombie until its parent reaps it. */
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *close_paren = strrchr(buf, ')');
  return close_paren && (close_paren[2] == 'Z' || close_paren[2] == 'X');
}
