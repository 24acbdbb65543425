/*
 * exchange.c - every rank's copy of a small record (one message to each
 * peer), the agreement step and barrier of the device paths.
 */
#include <string.h>

#include "algos/device.h"
#include "core/error.h"

hring_result_t hring__exchange_small(struct hring_comm *comm, const void *mine, void *all,
                                     size_t bytes) {
  const int n = comm->nranks, r = comm->rank;
  char *out = all;
  memcpy(out + (size_t)r * bytes, mine, bytes);
  if (n == 1) return HRING_SUCCESS;
  if (bytes > comm->min_slot)
    return hring__err(HRING_ERR_INTERNAL, "exchange of %zu bytes exceeds a slot", bytes);
  hring_engine_t e;
  hring__engine_init(&e, comm);
  for (int i = 1; i < n; i++) {
    hring_conn_t *c = comm->conns[(r + i) % n];
    hring__engine_use(&e, c);
    HRING_CHECK(hring__engine_send_copy(&e, c, mine, bytes));
  }
  for (int i = 1; i < n; i++) {
    int p = (r + n - i) % n;
    void *buf;
    HRING_CHECK(hring__engine_recv_get(&e, comm->conns[p], &buf, bytes));
    memcpy(out + (size_t)p * bytes, buf, bytes);
    HRING_CHECK(hring__recv_release(comm->conns[p]));
  }
  return hring__engine_flush(&e);
}
