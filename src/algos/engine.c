/* engine.c - bounded waits over the FIFO calls (see algo.h). */
#include "algos/algo.h"

#include <string.h>

#include "core/error.h"
#include "transport/transport.h"

void hring__engine_init(hring_engine_t *e, struct hring_comm *comm) {
  e->comm = comm;
  e->nactive = 0;
  hring__waiter_init(&e->waiter, comm);
}

void hring__engine_use(hring_engine_t *e, hring_conn_t *c) {
  for (int i = 0; i < e->nactive; i++)
    if (e->active[i] == c) return;
  if (e->nactive < HRING_ENGINE_MAX_ACTIVE) e->active[e->nactive++] = c;
}

static hring_result_t progress_all(hring_engine_t *e) {
  for (int i = 0; i < e->nactive; i++) HRING_CHECK(hring__conn_progress(e->active[i]));
  return HRING_SUCCESS;
}

hring_result_t hring__engine_send_get(hring_engine_t *e, hring_conn_t *c, void **buf) {
  for (;;) {
    hring_result_t r = hring__send_get(c, buf);
    if (r == HRING_SUCCESS) {
      hring__waiter_progress(&e->waiter);
      return r;
    }
    if (r != HRING_IN_PROGRESS) return r;
    HRING_CHECK(progress_all(e));
    HRING_CHECK(hring__waiter_pause(&e->waiter, "a free send slot", c->peer));
  }
}

hring_result_t hring__engine_send_copy(hring_engine_t *e, hring_conn_t *c, const void *src,
                                       size_t bytes) {
  void *buf;
  HRING_CHECK(hring__engine_send_get(e, c, &buf));
  memcpy(buf, src, bytes);
  return hring__send_post(c, bytes);
}

hring_result_t hring__engine_recv_get(hring_engine_t *e, hring_conn_t *c, void **buf,
                                      size_t expect_len) {
  size_t len = 0;
  for (;;) {
    hring_result_t r = hring__recv_get(c, buf, &len);
    if (r == HRING_SUCCESS) break;
    if (r != HRING_IN_PROGRESS) return r;
    HRING_CHECK(progress_all(e));
    HRING_CHECK(hring__waiter_pause(&e->waiter, "data", c->peer));
  }
  hring__waiter_progress(&e->waiter);
  if (len != expect_len)
    return hring__err(HRING_ERR_REMOTE,
                      "rank %d: received %zu bytes from rank %d where %zu were expected (do all "
                      "ranks call the same collectives with the same count and type?)",
                      e->comm->rank, len, c->peer, expect_len);
  return HRING_SUCCESS;
}

hring_result_t hring__engine_flush(hring_engine_t *e) {
  for (int i = 0; i < e->nactive; i++) {
    hring_conn_t *c = e->active[i];
    for (;;) {
      hring_result_t r = hring__conn_flush(c);
      if (r == HRING_SUCCESS) break;
      if (r != HRING_IN_PROGRESS) return r;
      HRING_CHECK(progress_all(e));
      HRING_CHECK(hring__waiter_pause(&e->waiter, "the send queue to drain", c->peer));
    }
  }
  return HRING_SUCCESS;
}
